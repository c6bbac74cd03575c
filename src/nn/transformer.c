/* The causal transformer encoder of magpie/nn.h, section 3: a composition of the kernels, llm.c-style. One
 * allocation each for the parameters, the gradients (and AdamW's two moments, same layout), the activations of a
 * forward pass and the backward pass's scratch. Shapes: B batch, T positions of the current window, C channels,
 * L layers, NH heads, F feed-forward width, V items. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/nn.h"
#include "magpie/rng.h"

/* ---- sizes ----------------------------------------------------------------------------------------------- */

/* a * b into *out, 0 on overflow. */
static int mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* The 16 tensors' sizes in floats, in MP_NN_TFM order; 0 on overflow. */
static int param_sizes(const mp_nn_tfm_config *c, size_t sizes[MP_NN_TFM_N_TENSORS]) {
    size_t V = c->n_vocab, T = c->max_len, C = c->dim, L = c->n_layers, F = c->ffn_dim, VC, CC, FC;
    if (!mul_ok(V, C, &VC) || !mul_ok(C, C, &CC) || !mul_ok(F, C, &FC)) return 0;
    size_t l3cc, lcc, lfc;
    if (!mul_ok(L * 3, CC, &l3cc) || !mul_ok(L, CC, &lcc) || !mul_ok(L, FC, &lfc)) return 0;
    size_t s[MP_NN_TFM_N_TENSORS] = {VC,    T * C, L * C, L * C, l3cc,  L * 3 * C, lcc, L * C,
                                     L * C, L * C, lfc,   L * F, lfc,   L * C,     C,   C};
    memcpy(sizes, s, sizeof s);
    return 1;
}

static void point_params(mp_nn_tfm_params *p, float *mem, const size_t sizes[MP_NN_TFM_N_TENSORS]) {
    float **ptrs[MP_NN_TFM_N_TENSORS] = {&p->wte,  &p->wpe,  &p->ln1w, &p->ln1b, &p->qkvw,     &p->qkvb,
                                         &p->attprojw, &p->attprojb, &p->ln2w, &p->ln2b, &p->fcw,
                                         &p->fcb, &p->fcprojw, &p->fcprojb, &p->lnfw, &p->lnfb};
    for (int i = 0; i < MP_NN_TFM_N_TENSORS; i++) {
        *ptrs[i] = mem;
        mem += sizes[i];
    }
}

/* Tensors without weight decay: the layer norms' weights and biases (indices in MP_NN_TFM order). */
static int is_layernorm_tensor(int i) { return i == 2 || i == 3 || i == 8 || i == 9 || i == 14 || i == 15; }

static int check_config(const mp_nn_tfm_config *c, mp_error *err) {
    const struct {
        const char *name;
        uint32_t v;
    } sizes[] = {{"n_vocab", c->n_vocab}, {"max_len", c->max_len},   {"dim", c->dim},
                 {"n_layers", c->n_layers}, {"n_heads", c->n_heads}, {"ffn_dim", c->ffn_dim}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].v == 0) return mp_error_set(err, MP_EINVAL, "transformer: %s must be at least 1", sizes[i].name);
    if (c->dim % c->n_heads != 0)
        return mp_error_set(err, MP_EINVAL, "transformer: n_heads (%u) must divide dim (%u)", c->n_heads, c->dim);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return mp_error_set(err, MP_EINVAL, "transformer: dropout must be in [0, 1), got %g", (double)c->dropout);
    if (!(c->ln_eps > 0.0f && isfinite(c->ln_eps)))
        return mp_error_set(err, MP_EINVAL, "transformer: ln_eps must be positive, got %g", (double)c->ln_eps);
    if (!(c->emb_scale > 0.0f && isfinite(c->emb_scale)))
        return mp_error_set(err, MP_EINVAL, "transformer: emb_scale must be positive, got %g", (double)c->emb_scale);
    if (c->max_len > 4096)
        return mp_error_set(err, MP_EINVAL, "transformer: max_len %u is above 4096 (attention is O(T^2) per head)",
                            c->max_len);
    return MP_OK;
}

int mp_nn_tfm_create(mp_nn_tfm *m, const mp_nn_tfm_config *cfg, mp_error *err) {
    memset(m, 0, sizeof *m);
    int rc = check_config(cfg, err);
    if (rc) return rc;
    size_t sizes[MP_NN_TFM_N_TENSORS], total = 0;
    if (!param_sizes(cfg, sizes)) return mp_error_set(err, MP_EINVAL, "transformer: parameter count overflows");
    for (int i = 0; i < MP_NN_TFM_N_TENSORS; i++) {
        if (total > SIZE_MAX / sizeof(float) - sizes[i])
            return mp_error_set(err, MP_EINVAL, "transformer: parameter count overflows");
        total += sizes[i];
    }
    m->cfg = *cfg;
    m->n_params = total;
    m->params_memory = calloc(total, sizeof(float));
    if (!m->params_memory)
        return mp_error_set(err, MP_ENOMEM, "transformer: out of memory for %zu parameters (%.1f MiB)", total,
                            (double)total * 4 / 1048576.0);
    point_params(&m->params, m->params_memory, sizes);
    return MP_OK;
}

void mp_nn_tfm_free(mp_nn_tfm *m) {
    if (!m) return;
    if (!m->is_view) free(m->params_memory);
    free(m->grads_memory);
    free(m->m_memory);
    free(m->v_memory);
    mp_nn_rows_free(&m->wte_rows);
    free(m->acts_memory);
    free(m->acts.valid);
    free(m->acts.masks);
    free(m->dacts_memory);
    memset(m, 0, sizeof *m);
}

void mp_nn_tfm_init_weights(mp_nn_tfm *m, uint64_t seed) {
    size_t sizes[MP_NN_TFM_N_TENSORS];
    param_sizes(&m->cfg, sizes);
    mp_rng rng;
    mp_rng_seed(&rng, seed);
    float *p = m->params_memory;
    for (int i = 0; i < MP_NN_TFM_N_TENSORS; i++) {
        /* weights (matrices and the two tables) normal(0, 0.02); layer norm weights 1; biases and LN biases 0 */
        int is_matrix = i == 0 || i == 1 || i == 4 || i == 6 || i == 10 || i == 12;
        int is_ln_weight = i == 2 || i == 8 || i == 14;
        for (size_t j = 0; j < sizes[i]; j++)
            p[j] = is_matrix ? (float)(0.02 * mp_rng_normal(&rng)) : is_ln_weight ? 1.0f : 0.0f;
        p += sizes[i];
    }
}

/* ---- activations ----------------------------------------------------------------------------------------- */

/* Float counts of the activation arrays for batch B at the full window, in mp_nn_tfm_acts order (valid and masks
 * are bytes, allocated apart). */
#define N_ACT_FLOATS 19
static void act_sizes(const mp_nn_tfm_config *c, size_t B, size_t s[N_ACT_FLOATS]) {
    size_t T = c->max_len, C = c->dim, L = c->n_layers, NH = c->n_heads, F = c->ffn_dim, BT = B * T;
    size_t v[N_ACT_FLOATS] = {BT * C,     L * BT * C, L * BT,     L * BT,     L * BT * 3 * C, L * BT * C, L * B * NH * T * T,
                              L * BT * C, L * BT * C, L * BT * C, L * BT,     L * BT,         L * BT * F, L * BT * F,
                              L * BT * C, L * BT * C, BT * C,     BT,         BT};
    memcpy(s, v, sizeof v);
}

/* Backward scratch: dres (B,T,C), dln (B,T,C), dbranch (B,T,C), dqkv (B,T,3C), datty (B,T,C), datt (B,NH,T,T),
 * dfch (B,T,F), dfchg (B,T,F). */
static size_t dact_floats(const mp_nn_tfm_config *c, size_t B) {
    size_t T = c->max_len, C = c->dim, F = c->ffn_dim, BT = B * T;
    return BT * C * 4 + BT * 3 * C + B * c->n_heads * T * T + BT * F * 2;
}

int mp_nn_tfm_alloc(mp_nn_tfm *m, size_t max_batch, int grads, mp_error *err) {
    if (max_batch == 0) return mp_error_set(err, MP_EINVAL, "transformer: max_batch must be at least 1");
    const mp_nn_tfm_config *c = &m->cfg;
    if (grads && !m->grads_memory) {
        size_t sizes[MP_NN_TFM_N_TENSORS];
        param_sizes(c, sizes);
        m->grads_memory = calloc(m->n_params, sizeof(float));
        m->m_memory = calloc(m->n_params, sizeof(float));
        m->v_memory = calloc(m->n_params, sizeof(float));
        if (!m->grads_memory || !m->m_memory || !m->v_memory || mp_nn_rows_init(&m->wte_rows, c->n_vocab) != MP_OK) {
            free(m->grads_memory), free(m->m_memory), free(m->v_memory);
            m->grads_memory = m->m_memory = m->v_memory = NULL;
            return mp_error_set(err, MP_ENOMEM, "transformer: out of memory for gradients and optimiser state (%.1f MiB)",
                                (double)m->n_params * 12 / 1048576.0);
        }
        point_params(&m->grads, m->grads_memory, sizes);
    }
    if (max_batch <= m->max_batch && (!grads || m->dacts_memory)) return MP_OK;
    size_t B = max_batch > m->max_batch ? max_batch : m->max_batch;
    size_t s[N_ACT_FLOATS], total = 0;
    act_sizes(c, B, s);
    for (int i = 0; i < N_ACT_FLOATS; i++) total += s[i];
    size_t BT = B * c->max_len, n_masks = BT * c->dim * (1 + 2 * (size_t)c->n_layers);
    float *acts = malloc(total * sizeof(float));
    uint8_t *valid = malloc(BT), *masks = malloc(n_masks);
    float *dacts = grads || m->dacts_memory ? malloc(dact_floats(c, B) * sizeof(float)) : NULL;
    if (!acts || !valid || !masks || ((grads || m->dacts_memory) && !dacts)) {
        free(acts), free(valid), free(masks), free(dacts);
        return mp_error_set(err, MP_ENOMEM, "transformer: out of memory for the activations of %zu sequences (%.1f MiB)",
                            B, (double)total * 4 / 1048576.0);
    }
    free(m->acts_memory), free(m->acts.valid), free(m->acts.masks), free(m->dacts_memory);
    m->acts_memory = acts;
    m->dacts_memory = dacts;
    float **ptrs[N_ACT_FLOATS] = {&m->acts.encoded,  &m->acts.ln1,       &m->acts.ln1_mean, &m->acts.ln1_rstd,
                                  &m->acts.qkv,      &m->acts.atty,      &m->acts.att,      &m->acts.attproj,
                                  &m->acts.residual2, &m->acts.ln2,      &m->acts.ln2_mean, &m->acts.ln2_rstd,
                                  &m->acts.fch,      &m->acts.fch_gelu,  &m->acts.fcproj,   &m->acts.residual3,
                                  &m->acts.lnf,      &m->acts.lnf_mean,  &m->acts.lnf_rstd};
    for (int i = 0; i < N_ACT_FLOATS; i++) {
        *ptrs[i] = acts;
        acts += s[i];
    }
    m->acts.valid = valid;
    m->acts.masks = masks;
    m->max_batch = B;
    return MP_OK;
}

int mp_nn_tfm_view(mp_nn_tfm *view, const mp_nn_tfm *m, size_t max_batch, mp_error *err) {
    memset(view, 0, sizeof *view);
    view->cfg = m->cfg;
    view->n_params = m->n_params;
    view->params_memory = m->params_memory;
    view->params = m->params;
    view->is_view = 1;
    int rc = mp_nn_tfm_alloc(view, max_batch, 0, err);
    if (rc) mp_nn_tfm_free(view);
    return rc;
}

int mp_nn_tfm_grow_vocab(mp_nn_tfm *m, uint32_t n_vocab, mp_error *err) {
    if (m->is_view) return mp_error_set(err, MP_EINVAL, "transformer: a view cannot grow");
    if (n_vocab < m->cfg.n_vocab)
        return mp_error_set(err, MP_EINVAL, "transformer: cannot shrink the item table from %u to %u rows",
                            m->cfg.n_vocab, n_vocab);
    if (n_vocab == m->cfg.n_vocab) return MP_OK;
    mp_nn_tfm_config c = m->cfg;
    c.n_vocab = n_vocab;
    mp_nn_tfm g;
    int rc = mp_nn_tfm_create(&g, &c, err);
    if (rc) return rc;
    size_t old_wte = (size_t)m->cfg.n_vocab * c.dim, new_wte = (size_t)n_vocab * c.dim;
    memcpy(g.params_memory, m->params_memory, old_wte * sizeof(float));
    memcpy(g.params_memory + new_wte, m->params_memory + old_wte, (m->n_params - old_wte) * sizeof(float));
    g.step = m->step;
    mp_nn_tfm_free(m);
    *m = g;
    return MP_OK;
}

/* ---- forward --------------------------------------------------------------------------------------------- */

/* A per-site dropout seed from the step's seed (site 0 = input, 1 + 2l = attention branch, 2 + 2l = MLP). */
static uint64_t site_seed(uint64_t seed, uint64_t site) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (site + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Per-layer views of the activations at window T (arrays are packed for the current B and T, with the layer
 * stride of the allocation's full window so that a layer's slices never overlap). */
typedef struct layer_view {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *att, *attproj, *residual2, *ln2, *ln2_mean, *ln2_rstd, *fch,
        *fch_gelu, *fcproj, *residual3;
    uint8_t *mask_att, *mask_mlp;
    const float *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw, *fcb, *fcprojw, *fcprojb;
} layer_view;

static layer_view view_layer(const mp_nn_tfm *m, size_t l) {
    const mp_nn_tfm_config *c = &m->cfg;
    size_t Bm = m->max_batch, Tm = c->max_len, C = c->dim, F = c->ffn_dim, NH = c->n_heads;
    size_t BTm = Bm * Tm;
    const mp_nn_tfm_acts *a = &m->acts;
    const mp_nn_tfm_params *p = &m->params;
    layer_view v = {
        .ln1 = a->ln1 + l * BTm * C,
        .ln1_mean = a->ln1_mean + l * BTm,
        .ln1_rstd = a->ln1_rstd + l * BTm,
        .qkv = a->qkv + l * BTm * 3 * C,
        .atty = a->atty + l * BTm * C,
        .att = a->att + l * Bm * NH * Tm * Tm,
        .attproj = a->attproj + l * BTm * C,
        .residual2 = a->residual2 + l * BTm * C,
        .ln2 = a->ln2 + l * BTm * C,
        .ln2_mean = a->ln2_mean + l * BTm,
        .ln2_rstd = a->ln2_rstd + l * BTm,
        .fch = a->fch + l * BTm * F,
        .fch_gelu = a->fch_gelu + l * BTm * F,
        .fcproj = a->fcproj + l * BTm * C,
        .residual3 = a->residual3 + l * BTm * C,
        .mask_att = a->masks + (1 + 2 * l) * BTm * C,
        .mask_mlp = a->masks + (2 + 2 * l) * BTm * C,
        .ln1w = p->ln1w + l * C,
        .ln1b = p->ln1b + l * C,
        .qkvw = p->qkvw + l * 3 * C * C,
        .qkvb = p->qkvb + l * 3 * C,
        .attprojw = p->attprojw + l * C * C,
        .attprojb = p->attprojb + l * C,
        .ln2w = p->ln2w + l * C,
        .ln2b = p->ln2b + l * C,
        .fcw = p->fcw + l * F * C,
        .fcb = p->fcb + l * F,
        .fcprojw = p->fcprojw + l * C * F,
        .fcprojb = p->fcprojb + l * C,
    };
    return v;
}

int mp_nn_tfm_forward_len(mp_nn_tfm *m, const uint32_t *inp, const float *extra, size_t B, size_t T, int train,
                          uint64_t dropout_seed, mp_error *err) {
    const mp_nn_tfm_config *c = &m->cfg;
    if (B == 0 || B > m->max_batch)
        return mp_error_set(err, MP_EINVAL, "transformer: batch of %zu sequences, allocated for %zu", B, m->max_batch);
    if (T == 0 || T > c->max_len)
        return mp_error_set(err, MP_EINVAL, "transformer: window of %zu positions, the model has 1..%u", T, c->max_len);
    size_t C = c->dim, F = c->ffn_dim, NH = c->n_heads, BT = B * T, V = c->n_vocab;
    for (size_t i = 0; i < BT; i++)
        if (inp[i] != MP_NN_PAD && inp[i] >= V)
            return mp_error_set(err, MP_EINVAL, "transformer: item %u at sequence %zu, position %zu: the model has %zu items",
                                inp[i], i / T, i % T, V);
    float p = train ? c->dropout : 0.0f;
    mp_nn_tfm_acts *a = &m->acts;
    for (size_t i = 0; i < BT; i++) a->valid[i] = inp[i] != MP_NN_PAD;

    /* encoded (B,T,C) = emb_scale * wte[inp] + wpe[max_len - T + t] (+ extra), 0 at padding */
    mp_nn_embedding_fwd(a->encoded, inp, m->params.wte, BT, C, c->emb_scale, 0);
    if (extra)
        for (size_t i = 0; i < BT; i++)
            if (a->valid[i])
                for (size_t k = 0; k < C; k++) a->encoded[i * C + k] += extra[i * C + k];
    mp_nn_position_fwd(a->encoded, m->params.wpe + (c->max_len - T) * C, a->valid, B, T, C);
    if (p > 0) mp_nn_dropout_fwd(a->encoded, a->masks, a->encoded, BT * C, p, site_seed(dropout_seed, 0));

    const float *residual = a->encoded;
    for (size_t l = 0; l < c->n_layers; l++) {
        layer_view v = view_layer(m, l);
        mp_nn_layernorm_fwd(v.ln1, v.ln1_mean, v.ln1_rstd, residual, v.ln1w, v.ln1b, BT, C, c->ln_eps);
        mp_nn_linear_fwd(v.qkv, v.ln1, v.qkvw, v.qkvb, BT, C, 3 * C);
        mp_nn_attention_fwd(v.atty, v.att, v.qkv, a->valid, B, T, C, NH);
        mp_nn_linear_fwd(v.attproj, v.atty, v.attprojw, v.attprojb, BT, C, C);
        if (p > 0) mp_nn_dropout_fwd(v.attproj, v.mask_att, v.attproj, BT * C, p, site_seed(dropout_seed, 1 + 2 * l));
        mp_nn_residual_fwd(v.residual2, residual, v.attproj, BT * C);
        mp_nn_layernorm_fwd(v.ln2, v.ln2_mean, v.ln2_rstd, v.residual2, v.ln2w, v.ln2b, BT, C, c->ln_eps);
        mp_nn_linear_fwd(v.fch, v.ln2, v.fcw, v.fcb, BT, C, F);
        mp_nn_gelu_fwd(v.fch_gelu, v.fch, BT * F);
        mp_nn_linear_fwd(v.fcproj, v.fch_gelu, v.fcprojw, v.fcprojb, BT, F, C);
        if (p > 0) mp_nn_dropout_fwd(v.fcproj, v.mask_mlp, v.fcproj, BT * C, p, site_seed(dropout_seed, 2 + 2 * l));
        mp_nn_residual_fwd(v.residual3, v.residual2, v.fcproj, BT * C);
        residual = v.residual3;
    }
    mp_nn_layernorm_fwd(a->lnf, a->lnf_mean, a->lnf_rstd, residual, m->params.lnfw, m->params.lnfb, BT, C, c->ln_eps);
    m->batch = B;
    m->seq_len = T;
    m->train_dropout = p;
    return MP_OK;
}

int mp_nn_tfm_forward(mp_nn_tfm *m, const uint32_t *inp, const float *extra, size_t B, int train,
                      uint64_t dropout_seed, mp_error *err) {
    return mp_nn_tfm_forward_len(m, inp, extra, B, m->cfg.max_len, train, dropout_seed, err);
}

/* ---- backward -------------------------------------------------------------------------------------------- */

void mp_nn_tfm_zero_grad(mp_nn_tfm *m) {
    if (!m->grads_memory) return;
    size_t C = m->cfg.dim, VC = (size_t)m->cfg.n_vocab * C;
    memset(m->grads_memory + VC, 0, (m->n_params - VC) * sizeof(float));
    if (m->wte_rows.n == m->wte_rows.n_rows)
        memset(m->grads_memory, 0, VC * sizeof(float));
    else
        for (size_t i = 0; i < m->wte_rows.n; i++) memset(m->grads.wte + (size_t)m->wte_rows.list[i] * C, 0, C * sizeof(float));
    mp_nn_rows_clear(&m->wte_rows);
}

static void zero(float *x, size_t n) { memset(x, 0, n * sizeof(float)); }

void mp_nn_tfm_backward(mp_nn_tfm *m, const uint32_t *inp, float *dlnf, float *dextra) {
    const mp_nn_tfm_config *c = &m->cfg;
    size_t B = m->batch, T = m->seq_len, C = c->dim, F = c->ffn_dim, NH = c->n_heads, L = c->n_layers;
    size_t BT = B * T, BTC = BT * C;
    float p = m->train_dropout;
    const mp_nn_tfm_acts *a = &m->acts;
    mp_nn_tfm_params *g = &m->grads;
    /* scratch, packed at the current B and T */
    float *dres = m->dacts_memory, *dln = dres + BTC, *dbranch = dln + BTC, *dqkv = dbranch + BTC;
    float *datty = dqkv + 3 * BTC, *datt = datty + BTC, *dfch = datt + B * NH * T * T, *dfchg = dfch + BT * F;

    const float *last = L ? view_layer(m, L - 1).residual3 : a->encoded;
    zero(dres, BTC);
    mp_nn_layernorm_bwd(dres, g->lnfw, g->lnfb, dlnf, last, m->params.lnfw, a->lnf_mean, a->lnf_rstd, BT, C);
    for (size_t l = L; l-- > 0;) {
        layer_view v = view_layer(m, l);
        const float *residual = l == 0 ? a->encoded : view_layer(m, l - 1).residual3;
        float *gln1w = g->ln1w + l * C, *gln1b = g->ln1b + l * C, *gqkvw = g->qkvw + l * 3 * C * C;
        float *gqkvb = g->qkvb + l * 3 * C, *gattprojw = g->attprojw + l * C * C, *gattprojb = g->attprojb + l * C;
        float *gln2w = g->ln2w + l * C, *gln2b = g->ln2b + l * C, *gfcw = g->fcw + l * F * C, *gfcb = g->fcb + l * F;
        float *gfcprojw = g->fcprojw + l * C * F, *gfcprojb = g->fcprojb + l * C;

        /* residual3 = residual2 + dropout(fcproj(gelu(fc(ln2(residual2))))): dres flows to residual2 as it is */
        const float *dfcproj = dres;
        if (p > 0) {
            zero(dbranch, BTC);
            mp_nn_dropout_bwd(dbranch, dres, v.mask_mlp, BTC, p);
            dfcproj = dbranch;
        }
        zero(dfchg, BT * F);
        mp_nn_linear_bwd(dfchg, gfcprojw, gfcprojb, dfcproj, v.fch_gelu, v.fcprojw, BT, F, C);
        zero(dfch, BT * F);
        mp_nn_gelu_bwd(dfch, v.fch, dfchg, BT * F);
        zero(dln, BTC);
        mp_nn_linear_bwd(dln, gfcw, gfcb, dfch, v.ln2, v.fcw, BT, C, F);
        mp_nn_layernorm_bwd(dres, gln2w, gln2b, dln, v.residual2, v.ln2w, v.ln2_mean, v.ln2_rstd, BT, C);

        /* residual2 = residual + dropout(attproj(attention(qkv(ln1(residual))))) */
        const float *dattproj = dres;
        if (p > 0) {
            zero(dbranch, BTC);
            mp_nn_dropout_bwd(dbranch, dres, v.mask_att, BTC, p);
            dattproj = dbranch;
        }
        zero(datty, BTC);
        mp_nn_linear_bwd(datty, gattprojw, gattprojb, dattproj, v.atty, v.attprojw, BT, C, C);
        zero(dqkv, 3 * BTC);
        mp_nn_attention_bwd(dqkv, datt, datty, v.qkv, v.att, B, T, C, NH);
        zero(dln, BTC);
        mp_nn_linear_bwd(dln, gqkvw, gqkvb, dqkv, v.ln1, v.qkvw, BT, C, 3 * C);
        mp_nn_layernorm_bwd(dres, gln1w, gln1b, dln, residual, v.ln1w, v.ln1_mean, v.ln1_rstd, BT, C);
    }
    /* dres = d(encoded after the input dropout) */
    const float *denc = dres;
    if (p > 0) {
        zero(dbranch, BTC);
        mp_nn_dropout_bwd(dbranch, dres, a->masks, BTC, p);
        denc = dbranch;
    }
    mp_nn_embedding_bwd(g->wte, &m->wte_rows, denc, inp, BT, C, c->emb_scale);
    mp_nn_position_bwd(g->wpe + (c->max_len - T) * C, denc, a->valid, B, T, C);
    if (dextra)
        for (size_t i = 0; i < BT; i++)
            if (a->valid[i])
                for (size_t k = 0; k < C; k++) dextra[i * C + k] += denc[i * C + k];
}

/* ---- update ---------------------------------------------------------------------------------------------- */

float mp_nn_tfm_update(mp_nn_tfm *m, const mp_nn_adamw *opt, float max_norm, int sparse_wte) {
    size_t sizes[MP_NN_TFM_N_TENSORS];
    param_sizes(&m->cfg, sizes);
    size_t C = m->cfg.dim, VC = sizes[0];
    int rows_only = sparse_wte && m->wte_rows.n < m->wte_rows.n_rows;
    double sq = mp_nn_sqnorm(m->grads_memory + VC, m->n_params - VC) +
                (rows_only ? mp_nn_sqnorm_rows(m->grads.wte, &m->wte_rows, C) : mp_nn_sqnorm(m->grads.wte, VC));
    float f = mp_nn_clip_factor(sq, max_norm);
    if (f != 1.0f) {
        mp_nn_scale(m->grads_memory + VC, m->n_params - VC, f);
        if (rows_only)
            mp_nn_scale_rows(m->grads.wte, &m->wte_rows, C, f);
        else
            mp_nn_scale(m->grads.wte, VC, f);
    }
    m->step++;
    mp_nn_adamw o = *opt;
    size_t off = 0;
    for (int i = 0; i < MP_NN_TFM_N_TENSORS; i++) {
        o.weight_decay = is_layernorm_tensor(i) ? 0.0f : opt->weight_decay;
        if (i == 0 && rows_only)
            mp_nn_adamw_update_rows(&o, m->step, m->params_memory, m->grads_memory, m->m_memory, m->v_memory,
                                    &m->wte_rows, C);
        else
            mp_nn_adamw_update(&o, m->step, m->params_memory + off, m->grads_memory + off, m->m_memory + off,
                               m->v_memory + off, sizes[i]);
        off += sizes[i];
    }
    return (float)sqrt(sq);
}

/* ---- checkpoints ----------------------------------------------------------------------------------------- */

#define TFM_CKPT_VERSION 1

void mp_nn_tfm_save(const mp_nn_tfm *m, mp_mf_writer *w) {
    const mp_nn_tfm_config *c = &m->cfg;
    mp_mf_put_u32(w, TFM_CKPT_VERSION);
    mp_mf_put_u32(w, c->n_vocab);
    mp_mf_put_u32(w, c->max_len);
    mp_mf_put_u32(w, c->dim);
    mp_mf_put_u32(w, c->n_layers);
    mp_mf_put_u32(w, c->n_heads);
    mp_mf_put_u32(w, c->ffn_dim);
    mp_mf_put_f64(w, c->dropout);
    mp_mf_put_f64(w, c->ln_eps);
    mp_mf_put_f64(w, c->emb_scale);
    mp_mf_put_u64(w, m->n_params);
    mp_mf_put_f32s(w, m->params_memory, m->n_params);
}

int mp_nn_tfm_load(mp_nn_tfm *m, mp_mf_reader *r, const mp_nn_tfm_config *expect, mp_error *err) {
    memset(m, 0, sizeof *m);
    uint32_t version, u[6];
    double d[3];
    int rc = mp_mf_get_u32(r, &version, err);
    if (rc) return rc;
    if (version != TFM_CKPT_VERSION)
        return mp_error_set(err, MP_ECORRUPT, "%s: transformer checkpoint version %u, this build reads %u",
                            mp_mf_reader_path(r), version, TFM_CKPT_VERSION);
    for (int i = 0; i < 6; i++)
        if ((rc = mp_mf_get_u32(r, &u[i], err))) return rc;
    for (int i = 0; i < 3; i++)
        if ((rc = mp_mf_get_f64(r, &d[i], err))) return rc;
    mp_nn_tfm_config c = {.n_vocab = u[0], .max_len = u[1], .dim = u[2], .n_layers = u[3], .n_heads = u[4],
                          .ffn_dim = u[5], .dropout = (float)d[0], .ln_eps = (float)d[1], .emb_scale = (float)d[2]};
    if (expect) {
        const char *names[6] = {"n_vocab", "max_len", "dim", "n_layers", "n_heads", "ffn_dim"};
        uint32_t want[6] = {expect->n_vocab, expect->max_len, expect->dim, expect->n_layers, expect->n_heads,
                            expect->ffn_dim};
        for (int i = 0; i < 6; i++)
            if (u[i] != want[i])
                return mp_error_set(err, MP_ECORRUPT,
                                    "%s: a transformer of another architecture: %s is %u in the file, %u expected",
                                    mp_mf_reader_path(r), names[i], u[i], want[i]);
    }
    mp_error sub;
    mp_error_clear(&sub);
    rc = mp_nn_tfm_create(m, &c, &sub);
    if (rc) return mp_error_set(err, MP_ECORRUPT, "%s: bad transformer config: %s", mp_mf_reader_path(r), sub.msg);
    uint64_t n;
    if ((rc = mp_mf_get_u64(r, &n, err))) goto fail;
    if (n != m->n_params) {
        rc = mp_error_set(err, MP_ECORRUPT, "%s: transformer has %llu parameters, its config gives %zu",
                          mp_mf_reader_path(r), (unsigned long long)n, m->n_params);
        goto fail;
    }
    if ((rc = mp_mf_get_f32s(r, m->params_memory, m->n_params, err))) goto fail;
    for (size_t i = 0; i < m->n_params; i++)
        if (!isfinite(m->params_memory[i])) {
            rc = mp_error_set(err, MP_ECORRUPT, "%s: transformer parameter %zu is not finite", mp_mf_reader_path(r), i);
            goto fail;
        }
    return MP_OK;
fail:
    mp_nn_tfm_free(m);
    return rc;
}
