/* The transformer of magpie/nn.h section 3 against PyTorch: one full training step (forward, tied full-softmax
 * cross-entropy, backward, clipping, AdamW) compared with tests/nn/golden_step.bin, which tests/nn/make_golden.py
 * computes in float64 (format: tests/nn/README.md). Every tensor must agree to 1e-4 in relative max-norm,
 * max|c - torch| / max|torch|; a mismatch names the tensor and its worst element. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/nn.h"
#include "test.h"

#define GOLDEN_PATH "tests/nn/golden_step.bin"
#define GOLDEN_TOL 1e-4

/* A bounds-checked little-endian reader over the file's bytes. */
typedef struct golden_rd {
    const unsigned char *p;
    size_t left;
    int short_read;
} golden_rd;

static const unsigned char *rd_take(golden_rd *r, size_t n) {
    if (r->short_read || r->left < n) {
        r->short_read = 1;
        return NULL;
    }
    const unsigned char *q = r->p;
    r->p += n;
    r->left -= n;
    return q;
}

static uint32_t rd_u32(golden_rd *r) {
    const unsigned char *q = rd_take(r, 4);
    return q ? (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24 : 0;
}

static uint64_t rd_u64(golden_rd *r) {
    uint64_t lo = rd_u32(r);
    uint64_t hi = rd_u32(r);
    return lo | hi << 32;
}

static float rd_f32(golden_rd *r) {
    uint32_t u = rd_u32(r);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static double rd_f64(golden_rd *r) {
    uint64_t u = rd_u64(r);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void rd_f32s(golden_rd *r, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = rd_f32(r);
}

/* The 16 tensors in MP_NN_TFM order: names, shapes and views into a parameter set. */
static const char *const tensor_names[MP_NN_TFM_N_TENSORS] = {
    "wte",  "wpe",  "ln1w", "ln1b", "qkvw", "qkvb",    "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw",  "fcb",  "fcprojw", "fcprojb", "lnfw",     "lnfb"};

typedef struct tensor_shape {
    size_t dims[3];
    int nd;
} tensor_shape;

static void tensor_shapes(const mp_nn_tfm_config *c, tensor_shape s[MP_NN_TFM_N_TENSORS]) {
    size_t V = c->n_vocab, T = c->max_len, C = c->dim, L = c->n_layers, F = c->ffn_dim;
    const tensor_shape tab[MP_NN_TFM_N_TENSORS] = {
        {{V, C, 0}, 2},     {{T, C, 0}, 2},  {{L, C, 0}, 2},     {{L, C, 0}, 2},
        {{L, 3 * C, C}, 3}, {{L, 3 * C, 0}, 2}, {{L, C, C}, 3},  {{L, C, 0}, 2},
        {{L, C, 0}, 2},     {{L, C, 0}, 2},  {{L, F, C}, 3},     {{L, F, 0}, 2},
        {{L, C, F}, 3},     {{L, C, 0}, 2},  {{C, 0, 0}, 1},     {{C, 0, 0}, 1}};
    memcpy(s, tab, sizeof tab);
}

static size_t shape_numel(const tensor_shape *s) {
    size_t n = 1;
    for (int d = 0; d < s->nd; d++) n *= s->dims[d];
    return n;
}

static void tensor_views(const mp_nn_tfm_params *p, float *v[MP_NN_TFM_N_TENSORS]) {
    float *const tab[MP_NN_TFM_N_TENSORS] = {p->wte,  p->wpe,  p->ln1w, p->ln1b,     p->qkvw,    p->qkvb,
                                             p->attprojw, p->attprojb, p->ln2w, p->ln2b, p->fcw, p->fcb,
                                             p->fcprojw,  p->fcprojb,  p->lnfw, p->lnfb};
    memcpy(v, tab, sizeof tab);
}

/* "[1][35][4]" for flat index i of a tensor of shape s. */
static void format_index(char *buf, size_t cap, const tensor_shape *s, size_t i) {
    size_t idx[3] = {0, 0, 0}, rest = i;
    for (int d = s->nd - 1; d >= 0; d--) {
        idx[d] = rest % s->dims[d];
        rest /= s->dims[d];
    }
    size_t used = 0;
    buf[0] = 0;
    for (int d = 0; d < s->nd && used < cap; d++) used += (size_t)snprintf(buf + used, cap - used, "[%zu]", idx[d]);
}

/* Relative max-norm error of got against want (n); NaN in either counts as infinitely wrong. Returns 1 when within
 * tol; otherwise prints the tensor and its worst element to stderr, records the first failure in t, returns 0. */
static int compare_tensor(mp_test_ctx *t, const char *stage, const char *name, const tensor_shape *s,
                          const float *got, const float *want, size_t n, double tol) {
    double maxref = 0, maxerr = 0;
    size_t worst = 0;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        double a = got[i], b = want[i];
        if (isnan(a) || isnan(b) || isinf(a) || isinf(b)) {
            if (!nan) worst = i;
            nan = 1;
            continue;
        }
        if (fabs(b) > maxref) maxref = fabs(b);
        if (!nan && fabs(a - b) > maxerr) {
            maxerr = fabs(a - b);
            worst = i;
        }
    }
    double rel = nan ? INFINITY : maxerr / (maxref > 1e-30 ? maxref : 1e-30);
    if (rel <= tol) return 1;
    char where[64];
    format_index(where, sizeof where, s, worst);
    char msg[400];
    snprintf(msg, sizeof msg,
             "%s %s: max|c - torch| / max|torch| = %.3g > %.0e (max|torch| %.4g); worst element %s%s: c %.8g, "
             "torch %.8g",
             stage, name, rel, tol, maxref, name, where, (double)got[worst], (double)want[worst]);
    fprintf(stderr, "nn_golden_step: %s\n", msg);
    if (!t->failed) mp_test_fail(t, __FILE__, __LINE__, "%s", msg);
    return 0;
}

static int compare_scalar(mp_test_ctx *t, const char *what, double got, double want, double tol) {
    double rel = fabs(got - want) / (fabs(want) > 1e-30 ? fabs(want) : 1e-30);
    if (rel <= tol) return 1;
    char msg[200];
    snprintf(msg, sizeof msg, "%s: c %.9g, torch %.9g, relative error %.3g > %.0e", what, got, want, rel, tol);
    fprintf(stderr, "nn_golden_step: %s\n", msg);
    if (!t->failed) mp_test_fail(t, __FILE__, __LINE__, "%s", msg);
    return 0;
}

MP_TEST(nn_golden_step) {
    size_t len = 0;
    unsigned char *file = mp_test_slurp(GOLDEN_PATH, &len);
    CHECK_MSG(file != NULL, "cannot read %s (tests run from the repository root; it is written by "
                            "/usr/bin/python3 tests/nn/make_golden.py)",
              GOLDEN_PATH);
    golden_rd r = {file, len, 0};
    mp_nn_tfm m;
    memset(&m, 0, sizeof m);
    uint32_t *inp = NULL, *targets = NULL;
    float *golden = NULL, *dlnf = NULL, *scratch = NULL;
    mp_error err;
    mp_error_clear(&err);

    const unsigned char *magic = rd_take(&r, 8);
    uint32_t version = rd_u32(&r);
    if (!magic || memcmp(magic, "MPNNGOLD", 8) != 0 || version != 1) {
        mp_test_fail(t, __FILE__, __LINE__, "%s: not a version-1 golden file (magic MPNNGOLD, version %u)",
                     GOLDEN_PATH, (unsigned)version);
        goto done;
    }
    mp_nn_tfm_config cfg;
    cfg.n_vocab = rd_u32(&r);
    cfg.max_len = rd_u32(&r);
    cfg.dim = rd_u32(&r);
    cfg.n_layers = rd_u32(&r);
    cfg.n_heads = rd_u32(&r);
    cfg.ffn_dim = rd_u32(&r);
    cfg.dropout = rd_f32(&r);
    cfg.ln_eps = rd_f32(&r);
    cfg.emb_scale = rd_f32(&r);
    size_t B = rd_u32(&r);
    size_t T = cfg.max_len, C = cfg.dim, V = cfg.n_vocab;
    if (r.short_read || B == 0 || B > 64 || T == 0 || T > 1024 || C == 0 || C > 1024 || V == 0 || V > 100000) {
        mp_test_fail(t, __FILE__, __LINE__, "%s: truncated or implausible header (B %zu, T %zu, C %zu, V %zu)",
                     GOLDEN_PATH, B, T, C, V);
        goto done;
    }
    inp = malloc(B * T * sizeof *inp);
    targets = malloc(B * T * sizeof *targets);
    if (!inp || !targets) goto oom;
    for (size_t i = 0; i < B * T; i++) inp[i] = rd_u32(&r);
    for (size_t i = 0; i < B * T; i++) targets[i] = rd_u32(&r);
    mp_nn_adamw opt;
    opt.lr = rd_f32(&r);
    opt.beta1 = rd_f32(&r);
    opt.beta2 = rd_f32(&r);
    opt.eps = rd_f32(&r);
    opt.weight_decay = rd_f32(&r);
    float max_norm = rd_f32(&r);
    uint32_t step = rd_u32(&r);

    tensor_shape shp[MP_NN_TFM_N_TENSORS];
    tensor_shapes(&cfg, shp);
    size_t numel[MP_NN_TFM_N_TENSORS], n_params = 0;
    for (int k = 0; k < MP_NN_TFM_N_TENSORS; k++) n_params += numel[k] = shape_numel(&shp[k]);
    size_t n_out = B * T * C;
    /* init (n_params), out (B,T,C), grads (n_params), after (n_params); loss and norm are read separately. */
    golden = malloc((3 * n_params + n_out) * sizeof *golden);
    if (!golden) goto oom;
    float *g_init = golden, *g_out = golden + n_params, *g_grad = g_out + n_out, *g_after = g_grad + n_params;
    rd_f32s(&r, g_init, n_params);
    rd_f32s(&r, g_out, n_out);
    double g_loss = rd_f64(&r);
    rd_f32s(&r, g_grad, n_params);
    double g_norm = rd_f64(&r);
    rd_f32s(&r, g_after, n_params);
    if (r.short_read || r.left != 0 || step != 1) {
        mp_test_fail(t, __FILE__, __LINE__, "%s: %s", GOLDEN_PATH,
                     r.short_read ? "truncated" : r.left ? "trailing bytes" : "only step 1 is supported");
        goto done;
    }

    /* The model, with activations for more sequences than the batch (a last, partial batch). */
    int rc = mp_nn_tfm_create(&m, &cfg, &err);
    if (rc != MP_OK) {
        mp_test_fail(t, __FILE__, __LINE__, "mp_nn_tfm_create: %s: %s", mp_err_name(rc), err.msg);
        goto done;
    }
    if (m.n_params != n_params) {
        mp_test_fail(t, __FILE__, __LINE__, "n_params %zu, the golden file's tensors hold %zu", m.n_params,
                     n_params);
        goto done;
    }
    rc = mp_nn_tfm_alloc(&m, B + 2, 1, &err);
    if (rc != MP_OK) {
        mp_test_fail(t, __FILE__, __LINE__, "mp_nn_tfm_alloc: %s: %s", mp_err_name(rc), err.msg);
        goto done;
    }
    float *pv[MP_NN_TFM_N_TENSORS], *gv[MP_NN_TFM_N_TENSORS];
    tensor_views(&m.params, pv);
    tensor_views(&m.grads, gv);
    size_t off = 0;
    for (int k = 0; k < MP_NN_TFM_N_TENSORS; k++) {
        memcpy(pv[k], g_init + off, numel[k] * sizeof(float));
        off += numel[k];
    }
    mp_nn_tfm_zero_grad(&m);

    /* Forward (the training path; dropout is 0 in the file, so it is the identity). */
    rc = mp_nn_tfm_forward(&m, inp, NULL, B, 1, 12345, &err);
    if (rc != MP_OK) {
        mp_test_fail(t, __FILE__, __LINE__, "mp_nn_tfm_forward: %s: %s", mp_err_name(rc), err.msg);
        goto done;
    }
    tensor_shape out_shape = {{B, T, C}, 3};
    int ok = compare_tensor(t, "forward", "out (lnf)", &out_shape, m.acts.lnf, g_out, n_out, GOLDEN_TOL);

    /* The loss: the mean over non-padded targets, so grad_scale = 1 / their count. */
    size_t expect_count = 0;
    for (size_t i = 0; i < B * T; i++) expect_count += targets[i] != MP_NN_PAD;
    dlnf = calloc(n_out, sizeof *dlnf);
    size_t scratch_rows = 4; /* fewer than B*T rows: the blocked path */
    scratch = malloc(scratch_rows * V * sizeof *scratch);
    if (!dlnf || !scratch) goto oom;
    if (expect_count == 0) {
        mp_test_fail(t, __FILE__, __LINE__, "%s: every target is padding", GOLDEN_PATH);
        goto done;
    }
    double loss_sum = 0;
    size_t count = 0;
    mp_nn_softmax_xent(&loss_sum, &count, dlnf, m.grads.wte, m.acts.lnf, m.params.wte, targets, B * T, C, V,
                       1.0f / (float)expect_count, scratch, scratch_rows);
    mp_nn_rows_all(&m.wte_rows); /* the full softmax gave every row of wte a gradient (nn.h, mp_nn_tfm_zero_grad) */
    if (count != expect_count) {
        mp_test_fail(t, __FILE__, __LINE__, "softmax_xent counted %zu targets, the file has %zu non-padded", count,
                     expect_count);
        goto done;
    }
    ok &= compare_scalar(t, "loss", loss_sum / (double)count, g_loss, GOLDEN_TOL);

    /* Backward, and every gradient before clipping. */
    mp_nn_tfm_backward(&m, inp, dlnf, NULL);
    off = 0;
    for (int k = 0; k < MP_NN_TFM_N_TENSORS; k++) {
        ok &= compare_tensor(t, "gradient", tensor_names[k], &shp[k], gv[k], g_grad + off, numel[k], GOLDEN_TOL);
        off += numel[k];
    }

    /* Clipping and one AdamW step (dense wte). */
    float norm = mp_nn_tfm_update(&m, &opt, max_norm, 0);
    ok &= compare_scalar(t, "gradient norm returned by mp_nn_tfm_update", norm, g_norm, GOLDEN_TOL);
    if (m.step != 1) {
        mp_test_fail(t, __FILE__, __LINE__, "m.step after one update: %llu", (unsigned long long)m.step);
        goto done;
    }
    off = 0;
    for (int k = 0; k < MP_NN_TFM_N_TENSORS; k++) {
        ok &= compare_tensor(t, "after the update", tensor_names[k], &shp[k], pv[k], g_after + off, numel[k],
                             GOLDEN_TOL);
        off += numel[k];
    }
    if (!ok && !t->failed) mp_test_fail(t, __FILE__, __LINE__, "mismatch (see stderr)");
    goto done;
oom:
    mp_test_fail(t, __FILE__, __LINE__, "out of memory");
done:
    mp_nn_tfm_free(&m);
    free(scratch);
    free(dlnf);
    free(golden);
    free(targets);
    free(inp);
    free(file);
}
