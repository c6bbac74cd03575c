/* hybrid_train.c: the SGD of "hybrid" (see the top of hybrid.c for the model). Each sample is a positive item,
 * the user's history as the input tower sees it (sequence mode: the positive events before it, recency-weighted;
 * pair mode: the user's other items) and a negative drawn from the warm items, with a WARP or BPR step through
 * both towers. With probability id_dropout an item's id vector is left out of a sample, so the features alone must
 * rank it, as they must for a cold item. Threads run Hogwild over the model's parameters; threads=1 is
 * reproducible, which is what the bit-identity of model files rests on. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "models/bpr_internal.h"
#include "models/hybrid_internal.h"

#define HYB_REDRAWS 16

/* Per-thread scratch. */
typedef struct train_scratch {
    float *qi, *qj, *pu, *gu; /* [k + 1] each */
    uint8_t *keep;            /* [max history] id kept for each history item */
    uint32_t *hist;           /* [max history] history items (sequence mode) */
    float *hw;                /* [max history] their weights */
} train_scratch;

/* Output-side vector of item i in training: content features, plus the id vector unless dropped. */
static void train_item_vec(const train_job *J, uint32_t i, int with_id, float *out) {
    const hybrid *h = J->h;
    const uint32_t K1 = h->k + 1;
    hyb_feat_sum(h->feat, K1, J->fidx + J->fptr[i], J->fw + J->fptr[i], J->fptr[i + 1] - J->fptr[i], out);
    if (with_id && h->has_id[i]) {
        const float *id = h->id_vec + (size_t)i * K1;
#pragma omp simd
        for (uint32_t d = 0; d < K1; d++)
            out[d] += id[d];
    }
}

/* Adds the input-side vector of item i (k) times s to out. */
static void train_in_add(const train_job *J, uint32_t i, int with_id, float s, float *out) {
    const hybrid *h = J->h;
    const uint32_t k = h->k;
    for (uint64_t p = J->fptr[i]; p < J->fptr[i + 1]; p++) {
        const float *row = h->in_feat + (size_t)J->fidx[p] * k;
        const float w = s * J->fw[p];
#pragma omp simd
        for (uint32_t d = 0; d < k; d++)
            out[d] += w * row[d];
    }
    if (with_id && h->has_id[i]) {
        const float *id = h->in_id + (size_t)i * k;
#pragma omp simd
        for (uint32_t d = 0; d < k; d++)
            out[d] += s * id[d];
    }
}

/* Moves item i's output parameters by lr * (g * pu - reg * param) (pu's bias slot is 1). */
static void train_item_step(const train_job *J, uint32_t i, int with_id, const float *pu, float g) {
    hybrid *h = J->h;
    const uint32_t K1 = h->k + 1;
    const float lr = J->lr, reg = J->reg;
    for (uint64_t p = J->fptr[i]; p < J->fptr[i + 1]; p++) {
        float *row = h->feat + (size_t)J->fidx[p] * K1;
        const float w = J->fw[p];
#pragma omp simd
        for (uint32_t d = 0; d < K1; d++)
            row[d] += lr * w * (g * pu[d] - reg * row[d]);
    }
    if (with_id && h->has_id[i]) {
        float *id = h->id_vec + (size_t)i * K1;
#pragma omp simd
        for (uint32_t d = 0; d < K1; d++)
            id[d] += lr * (g * pu[d] - reg * id[d]);
    }
}

/* Moves item i's input parameters along gu (the loss gradient's negative with respect to the user vector, already
 * times the history scale). */
static void train_in_step(const train_job *J, uint32_t i, int with_id, const float *gu) {
    hybrid *h = J->h;
    const uint32_t k = h->k;
    const float lr = J->lr, reg = J->reg;
    for (uint64_t p = J->fptr[i]; p < J->fptr[i + 1]; p++) {
        float *row = h->in_feat + (size_t)J->fidx[p] * k;
        const float w = J->fw[p];
#pragma omp simd
        for (uint32_t d = 0; d < k; d++)
            row[d] += lr * w * (gu[d] - reg * row[d]);
    }
    if (with_id && h->has_id[i]) {
        float *id = h->in_id + (size_t)i * k;
#pragma omp simd
        for (uint32_t d = 0; d < k; d++)
            id[d] += lr * (gu[d] - reg * id[d]);
    }
}

static int user_has(const mp_csr *ui, uint32_t u, uint32_t item) {
    uint64_t lo = ui->ptr[u], hi = ui->ptr[u + 1];
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (ui->idx[mid] < item)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ui->ptr[u + 1] && ui->idx[lo] == item;
}

static uint32_t draw_negative(const train_job *J, mp_rng *rng, uint32_t u) {
    const hybrid *h = J->h;
    uint32_t j = h->warm[mp_rng_below(rng, h->n_warm)];
    for (int r = 0; r < HYB_REDRAWS && user_has(J->ui, u, j); r++)
        j = h->warm[mp_rng_below(rng, h->n_warm)];
    return j;
}

/* The user's history used for a training pair: the user's other items (at most HYB_TRAIN_HISTORY, the ones
 * nearest the positive in the row, which is sorted by item id, so an arbitrary but fixed subset). */
#define HYB_TRAIN_HISTORY 64

/* One sample (u, i, j). */
static void train_sample(const train_job *J, mp_rng *rng, train_scratch *S) {
    hybrid *h = J->h;
    const uint32_t k = h->k, K1 = k + 1;
    const uint64_t nnz = mp_csr_nnz(J->ui);
    uint64_t p = mp_rng_below(rng, nnz);
    uint32_t u = J->pair_user[p], i = J->ui->idx[p];
    uint64_t rb = J->ui->ptr[u], re = J->ui->ptr[u + 1];
    if (re - rb < 2) return;               /* no other item to speak for the user */
    if (re - rb > HYB_TRAIN_HISTORY + 1) { /* a window of the row around p */
        uint64_t lo = p > rb + HYB_TRAIN_HISTORY / 2 ? p - HYB_TRAIN_HISTORY / 2 : rb;
        if (lo + HYB_TRAIN_HISTORY + 1 > re) lo = re - HYB_TRAIN_HISTORY - 1;
        rb = lo;
        re = lo + HYB_TRAIN_HISTORY + 1;
    }
    float scale = J->ui->val[p] / J->mean_val;
    if (scale < 0.25f) scale = 0.25f;
    if (scale > 4.0f) scale = 4.0f;
    const double drop = h->p.id_dropout;
    /* user vector from the other items */
    float *pu = S->pu;
    memset(pu, 0, K1 * sizeof *pu);
    const float hs = history_scale(h, (double)(re - rb - 1));
    for (uint64_t x = rb; x < re; x++) {
        if (x == p) continue;
        S->keep[x - rb] = !(mp_rng_uniform(rng) < drop);
        train_in_add(J, J->ui->idx[x], S->keep[x - rb], hs, pu);
    }
    pu[k] = 1.0f;
    int id_i = !(mp_rng_uniform(rng) < drop);
    train_item_vec(J, i, id_i, S->qi);
    float xi = dotf(pu, S->qi, K1);
    uint32_t j;
    int id_j;
    float g;
    if (h->p.loss == LOSS_BPR) {
        j = draw_negative(J, rng, u);
        id_j = !(mp_rng_uniform(rng) < drop);
        train_item_vec(J, j, id_j, S->qj);
        float x = xi - dotf(pu, S->qj, K1);
        g = scale / (1.0f + expf(x));
    } else {
        uint32_t trials = 0;
        float x = 0;
        for (;;) {
            j = draw_negative(J, rng, u);
            id_j = !(mp_rng_uniform(rng) < drop);
            train_item_vec(J, j, id_j, S->qj);
            trials++;
            x = xi - dotf(pu, S->qj, K1);
            if (x < 1.0f || trials >= h->p.max_trials) break;
        }
        if (x >= 1.0f) return; /* no violation found */
        double n1 = (double)h->n_warm - 1;
        if (n1 < 2) n1 = 2;
        double rank = floor(n1 / trials);
        g = scale * (float)(log(rank > 1 ? rank : 1) / log(n1));
        if (g <= 0) g = scale * 0.01f;
    }
    /* input side: d loss / d pu = -g (qi - qj); each history item moves by its share hs */
    for (uint32_t d = 0; d < k; d++)
        S->gu[d] = g * hs * (S->qi[d] - S->qj[d]);
    for (uint64_t x = rb; x < re; x++)
        if (x != p) train_in_step(J, J->ui->idx[x], S->keep[x - rb], S->gu);
    train_item_step(J, i, id_i, pu, g);
    train_item_step(J, j, id_j, pu, -g);
}

/* One sample in sequence mode: a positive event and, as the user's history, the positive events before it (most
 * recent first, at most HYB_TRAIN_HISTORY, repeats of the positive skipped), weighted recency^j. */
static void train_sample_seq(const train_job *J, mp_rng *rng, train_scratch *S) {
    hybrid *h = J->h;
    const uint32_t k = h->k, K1 = k + 1;
    const uint64_t e = J->usable[mp_rng_below(rng, J->n_usable)];
    const mp_interaction *ev = J->events;
    const uint32_t u = ev[e].user, i = ev[e].item;
    const uint64_t start = e - J->back[e];
    size_t nh = 0;
    float wsum = 0, wj = 1;
    const float r = (float)h->p.recency;
    for (uint64_t x = e; x > start && nh < HYB_TRAIN_HISTORY; x--) {
        const mp_interaction *he = &ev[x - 1];
        if (!is_positive(he) || he->grade < 0 || he->item == i || he->item >= h->n_items) continue;
        int dup = 0;
        for (size_t y = 0; y < nh && !dup; y++)
            dup = S->hist[y] == he->item;
        if (dup) continue;
        S->hist[nh] = he->item;
        S->hw[nh] = wj;
        wsum += wj;
        wj *= r;
        nh++;
    }
    if (nh == 0) return;
    const double drop = h->p.id_dropout;
    float *pu = S->pu;
    memset(pu, 0, K1 * sizeof *pu);
    const float hs = history_scale(h, wsum);
    for (size_t x = 0; x < nh; x++) {
        S->keep[x] = !(mp_rng_uniform(rng) < drop);
        train_in_add(J, S->hist[x], S->keep[x], hs * S->hw[x], pu);
    }
    pu[k] = 1.0f;
    int id_i = !(mp_rng_uniform(rng) < drop);
    train_item_vec(J, i, id_i, S->qi);
    float xi = dotf(pu, S->qi, K1);
    uint32_t j;
    int id_j;
    float g;
    if (h->p.loss == LOSS_BPR) {
        j = draw_negative(J, rng, u);
        id_j = !(mp_rng_uniform(rng) < drop);
        train_item_vec(J, j, id_j, S->qj);
        g = 1.0f / (1.0f + expf(xi - dotf(pu, S->qj, K1)));
    } else {
        uint32_t trials = 0;
        float x = 0;
        for (;;) {
            j = draw_negative(J, rng, u);
            id_j = !(mp_rng_uniform(rng) < drop);
            train_item_vec(J, j, id_j, S->qj);
            trials++;
            x = xi - dotf(pu, S->qj, K1);
            if (x < 1.0f || trials >= h->p.max_trials) break;
        }
        if (x >= 1.0f) return;
        double n1 = (double)h->n_warm - 1;
        if (n1 < 2) n1 = 2;
        double rank = floor(n1 / trials);
        g = (float)(log(rank > 1 ? rank : 1) / log(n1));
        if (g <= 0) g = 0.01f;
    }
    for (size_t x = 0; x < nh; x++) {
        for (uint32_t d = 0; d < k; d++)
            S->gu[d] = g * hs * S->hw[x] * (S->qi[d] - S->qj[d]);
        train_in_step(J, S->hist[x], S->keep[x], S->gu);
    }
    train_item_step(J, i, id_i, pu, g);
    train_item_step(J, j, id_j, pu, -g);
}

int hyb_trainer_init(hyb_trainer *tr, hybrid *h, const mp_train_data *data, const hyb_feats *fs, mp_error *err) {
    const uint32_t K1 = h->k + 1, ni = h->n_items;
    memset(tr, 0, sizeof *tr);
    const uint64_t nnz = tr->nnz = mp_csr_nnz(data->ui);
    if (!(tr->pair_user = malloc(nnz * sizeof *tr->pair_user)))
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for %llu training pairs", (unsigned long long)nnz);
    double val_sum = 0;
    for (uint32_t u = 0; u < data->ui->n_rows; u++)
        for (uint64_t p = data->ui->ptr[u]; p < data->ui->ptr[u + 1]; p++) {
            tr->pair_user[p] = u;
            val_sum += data->ui->val[p];
        }
    /* sequence mode: the events that have a positive event of their user before them */
    uint64_t n_usable = 0;
    if (h->sequence_on && data->events && data->n_events) {
        tr->usable = malloc(data->n_events * sizeof *tr->usable);
        tr->back = malloc(data->n_events * sizeof *tr->back);
        if (!tr->usable || !tr->back)
            return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for %zu events", data->n_events);
        uint64_t start = 0;
        for (size_t e = 0; e < data->n_events; e++) {
            if (e == 0 || data->events[e].user != data->events[e - 1].user) start = e;
            uint64_t d = e - start;
            tr->back[e] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
            const mp_interaction *x = &data->events[e];
            if (d > 0 && is_positive(x) && x->grade >= 0 && x->item < ni && h->has_id[x->item])
                tr->usable[n_usable++] = e;
        }
    }
    tr->J = (train_job){.h = h,
                        .events = data->events,
                        .usable = tr->usable,
                        .n_usable = n_usable,
                        .back = tr->back,
                        .ui = data->ui,
                        .pair_user = tr->pair_user,
                        .fptr = fs->ptr,
                        .fidx = fs->idx,
                        .fw = fs->w,
                        .mean_val = (float)(val_sum / (double)nnz),
                        .lr = (float)h->p.learning_rate,
                        .reg = (float)h->p.regularization};
    if (!(tr->J.mean_val > 0)) tr->J.mean_val = 1;
    const int n_threads = tr->n_threads = mp_bprmf_threads(h->p.threads, data);
    tr->rngs = malloc((size_t)n_threads * sizeof *tr->rngs);
    tr->scratch = malloc((size_t)n_threads * 4 * K1 * sizeof *tr->scratch);
    tr->keep = malloc((size_t)n_threads * (HYB_TRAIN_HISTORY + 2));
    tr->hist = malloc((size_t)n_threads * (HYB_TRAIN_HISTORY + 2) * sizeof *tr->hist);
    tr->hw = malloc((size_t)n_threads * (HYB_TRAIN_HISTORY + 2) * sizeof *tr->hw);
    if (!tr->rngs || !tr->scratch || !tr->keep || !tr->hist || !tr->hw)
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for training threads");
    for (int t = 0; t < n_threads; t++)
        mp_rng_seed(&tr->rngs[t], h->p.seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(t + 2)));
    return MP_OK;
}

void hyb_train_epoch(hyb_trainer *tr) {
    const uint32_t K1 = tr->J.h->k + 1;
    const int n_threads = tr->n_threads;
    const train_job *J = &tr->J;
#pragma omp parallel num_threads(n_threads)
    {
        int t = omp_get_thread_num();
        float *base = tr->scratch + (size_t)t * 4 * K1;
        const size_t off = (size_t)t * (HYB_TRAIN_HISTORY + 2);
        train_scratch S = {base, base + K1, base + 2 * K1, base + 3 * K1, tr->keep + off, tr->hist + off, tr->hw + off};
        const uint64_t total = J->n_usable ? J->n_usable : tr->nnz;
        uint64_t share = total / (uint64_t)n_threads + ((uint64_t)t < total % (uint64_t)n_threads);
        if (J->n_usable)
            for (uint64_t s = 0; s < share; s++)
                train_sample_seq(J, &tr->rngs[t], &S);
        else
            for (uint64_t s = 0; s < share; s++)
                train_sample(J, &tr->rngs[t], &S);
    }
}

void hyb_trainer_free(hyb_trainer *tr) {
    free(tr->pair_user);
    free(tr->usable);
    free(tr->back);
    free(tr->rngs);
    free(tr->scratch);
    free(tr->keep);
    free(tr->hist);
    free(tr->hw);
    memset(tr, 0, sizeof *tr);
}

/* ---- early-stopping snapshots ---- */

void hyb_snapshot_free(hyb_snapshot *s) {
    free(s->id_vec);
    free(s->feat);
    free(s->in_id);
    free(s->in_feat);
    memset(s, 0, sizeof *s);
}

int hyb_snapshot_take(hyb_snapshot *s, const hybrid *h) {
    const size_t K1 = h->k + 1, k = h->k;
    size_t ni = (size_t)h->n_items, nf = (size_t)h->n_feats;
    if (!s->id_vec) {
        s->id_vec = malloc((ni * K1 + 1) * sizeof(float));
        s->feat = malloc((nf * K1 + 1) * sizeof(float));
        s->in_id = malloc((ni * k + 1) * sizeof(float));
        s->in_feat = malloc((nf * k + 1) * sizeof(float));
        if (!s->id_vec || !s->feat || !s->in_id || !s->in_feat) return MP_ENOMEM;
    }
    memcpy(s->id_vec, h->id_vec, ni * K1 * sizeof(float));
    memcpy(s->feat, h->feat, nf * K1 * sizeof(float));
    memcpy(s->in_id, h->in_id, ni * k * sizeof(float));
    memcpy(s->in_feat, h->in_feat, nf * k * sizeof(float));
    return MP_OK;
}

void hyb_snapshot_restore(const hyb_snapshot *s, hybrid *h) {
    const size_t K1 = h->k + 1, k = h->k;
    memcpy(h->id_vec, s->id_vec, (size_t)h->n_items * K1 * sizeof(float));
    memcpy(h->feat, s->feat, (size_t)h->n_feats * K1 * sizeof(float));
    memcpy(h->in_id, s->in_id, (size_t)h->n_items * k * sizeof(float));
    memcpy(h->in_feat, s->in_feat, (size_t)h->n_feats * k * sizeof(float));
}
