/* "mf": biased matrix factorisation for explicit ratings (Koren, Bell & Volinsky 2009):
 *   r_ui ~ mu + b_u + b_i + p_u . q_i
 * fitted on the training events that carry a value (ratings), minimising squared error plus L2 penalties.
 *
 * Solvers (solver=):
 *   sgd  Funk / Koren SGD: every epoch visits the ratings in a fresh random order; each rating moves b_u, b_i,
 *        p_u and q_i by -learning_rate * gradient; the learning rate is multiplied by lr_decay after each epoch.
 *        threads > 1 runs Hogwild over disjoint parts of the order (not bitwise reproducible; threads=1 is).
 *   als  alternating least squares with the biases folded into the solve: for each user, [p_u, b_u] solves a
 *        (k+1)-dimensional ridge regression on [q_i, 1] against r_ui - mu - b_i, then the same for items.
 *        The penalty is regularization * n_u (and bias_regularization * n_u for the bias) as in ALS-WR (Zhou
 *        et al. 2008), which is what SGD's per-rating penalty amounts to. Deterministic for any thread count.
 *
 * predict_rating is clipped to the range of ratings seen in training; score_all (for ranking) is the unclipped
 * prediction without the user bias. With validation ratings in the training data, RMSE on them is checked after
 * every epoch and the best epoch is kept (patience epochs without improvement stop training).
 * update(events) folds in new ratings by fold_in_steps SGD passes over them on the user's vector and bias only
 * (new users start at zero; new items get a bias and vector trained from the same ratings).
 * Retrieval vectors (item_vectors / query_vector, for an ANN index): [q_i, mu + b_i] and [p_u, 1] (see
 * bpr_internal.h); a user the model does not know queries with p_u = 0 (the item part, as score_all). Forgetting a
 * user zeroes p_u and b_u, so the id scores like an unknown user until update() folds in new ratings. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/factors.h"
#include "magpie/linalg.h"
#include "magpie/model.h"
#include "models/bpr_internal.h"
#include "models/params.h"

#define MF_FILE_VERSION 1
#define MF_MAX_FACTORS 1024

enum { SOLVER_SGD, SOLVER_ALS };
static const char *const solver_names[] = {"sgd", "als"};

typedef struct mf_params {
    uint32_t factors;
    uint32_t epochs;
    int solver;                  /* SOLVER_* */
    double learning_rate;        /* sgd */
    double lr_decay;             /* sgd: multiplier per epoch, (0, 1] */
    double regularization;       /* on p_u, q_i */
    double bias_regularization;  /* on b_u, b_i */
    double init_scale;           /* factors start N(0, init_scale^2) */
    uint64_t seed;
    uint32_t threads;            /* 0: the caller's n_threads; sgd defaults to 1 for reproducibility */
    uint32_t patience;           /* early stopping on validation RMSE (0: never stop) */
    uint32_t fold_in_steps;      /* update: SGD passes over the new ratings */
} mf_params;

typedef struct mf {
    mf_params p;
    /* fitted state */
    mp_factors f;          /* with biases; global_bias = mu; owned */
    char **titles;         /* [f.n_items] or NULL; owned */
    double r_min, r_max;   /* rating range seen in training (predictions are clipped to it) */
    uint32_t epochs_run, best_epoch;
    double best_valid_rmse; /* NaN without validation ratings */
    mp_bprmf_aug aug;       /* retrieval copy of the item rows with the bias, or NULL (see bpr_internal.h); owned */
} mf;

#define MF_P(kind, nm, fld, ...) MP_P_##kind(nm, mf_params, fld, __VA_ARGS__)
static const mp_param_info mf_params_info[] = {
    MF_P(UINT, "factors", factors, "128", 1, MF_MAX_FACTORS, "latent dimensions k (1..1024)", MP_TUNED_LOG(8, 256)),
    MF_P(UINT, "epochs", epochs, "100", 1, 1000000, "maximum passes (sgd) or alternations (als), >= 1"),
    MF_P(CHOICE, "solver", solver, "sgd", solver_names,
         "sgd (Funk/Koren stochastic gradient) or als (alternating least squares)"),
    MF_P(REAL, "learning_rate", learning_rate, "0.005", 0, 10, "sgd step size (> 0)", .lo_open = 1,
         MP_TUNED_LOG(0.002, 0.05)),
    MF_P(REAL, "lr_decay", lr_decay, "0.99", 0, 1, "sgd: learning rate multiplier per epoch (0 < d <= 1)",
         .lo_open = 1),
    MF_P(REAL, "regularization", regularization, "0.1", 0, 1e6,
         "L2 penalty on factors per rating (als: times the user's / item's rating count)",
         MP_TUNED_LOG(0.005, 0.2)),
    MF_P(REAL, "bias_regularization", bias_regularization, "0.02", 0, 1e6,
         "L2 penalty on user and item biases per rating"),
    MF_P(REAL, "init_scale", init_scale, "0.05", 0, 100, "initial factors are N(0, init_scale^2)", .lo_open = 1),
    MF_P(U64, "seed", seed, "1", 0, UINT64_MAX, "random seed (initialisation and rating order)"),
    MF_P(UINT, "threads", threads, "0", 0, 1024,
         "threads (0: as many as the caller allows for als, 1 for sgd, which is then reproducible)"),
    MF_P(UINT, "patience", patience, "3", 0, 1000000,
         "early stopping: epochs without a better validation RMSE before stopping (0: never)"),
    /* every update runs fold_in_steps passes: bounded */
    MF_P(UINT, "fold_in_steps", fold_in_steps, "20", 1, 100000, "update: SGD passes over a user's new ratings"),
    {NULL},
};
#undef MF_P

static void mf_init(void *impl) {
    mf *m = impl;
    m->best_valid_rmse = NAN;
}

static void mf_release(void *impl) {
    mf *m = impl;
    mp_bprmf_aug_free(&m->aug);
    mp_item_titles_free(m->titles, m->f.n_items);
    m->titles = NULL;
    mp_factors_free(&m->f);
    m->r_min = m->r_max = 0;
    m->epochs_run = m->best_epoch = 0;
    m->best_valid_rmse = NAN;
}

static int is_rating(const mp_interaction *e) { return e->has_value && isfinite(e->value); }

/* ---- loss and gradient of one rating (tests check the SGD step against them) ---- */

double mp_bprmf_rating_loss(double r, double mu, float bu, float bi, const float *pu, const float *qi, size_t k,
                            double reg, double reg_bias) {
    double dot = 0, n2 = 0;
    for (size_t f = 0; f < k; f++) {
        dot += (double)pu[f] * qi[f];
        n2 += (double)pu[f] * pu[f] + (double)qi[f] * qi[f];
    }
    double e = r - (mu + bu + bi + dot);
    return 0.5 * e * e + 0.5 * reg * n2 + 0.5 * reg_bias * ((double)bu * bu + (double)bi * bi);
}

void mp_bprmf_rating_grad(double r, double mu, float bu, float bi, const float *pu, const float *qi, size_t k,
                          double reg, double reg_bias, float *g_pu, float *g_qi, float *g_bu, float *g_bi) {
    double dot = 0;
    for (size_t f = 0; f < k; f++) dot += (double)pu[f] * qi[f];
    double e = r - (mu + bu + bi + dot);
    for (size_t f = 0; f < k; f++) {
        g_pu[f] = (float)(-e * qi[f] + reg * pu[f]);
        g_qi[f] = (float)(-e * pu[f] + reg * qi[f]);
    }
    *g_bu = (float)(-e + reg_bias * bu);
    *g_bi = (float)(-e + reg_bias * bi);
}

/* One SGD step on rating r (all gradients from the old values); update_item 0 keeps q_i and b_i fixed. */
static inline void rating_step(float *restrict pu, float *restrict qi, float *bu, float *bi, uint32_t k, float r,
                               float mu, float lr, float reg, float reg_bias, int update_item) {
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (uint32_t f = 0; f < k; f++) dot += pu[f] * qi[f];
    float e = r - (mu + *bu + *bi + dot);
    float b1 = *bu, b2 = *bi;
    *bu = b1 + lr * (e - reg_bias * b1);
    if (update_item) {
        *bi = b2 + lr * (e - reg_bias * b2);
#pragma omp simd
        for (uint32_t f = 0; f < k; f++) {
            float u = pu[f], q = qi[f];
            pu[f] = u + lr * (e * q - reg * u);
            qi[f] = q + lr * (e * u - reg * q);
        }
    } else {
        for (uint32_t f = 0; f < k; f++) pu[f] += lr * (e * qi[f] - reg * pu[f]);
    }
}

/* ---- training ---- */

typedef struct rating {
    uint32_t user, item;
    float value;
} rating;

static double clip(const mf *m, double r) { return r < m->r_min ? m->r_min : r > m->r_max ? m->r_max : r; }

static double predict(const mf *m, uint32_t u, uint32_t i) { return clip(m, mp_factors_predict(&m->f, u, i)); }

/* RMSE over the valued validation events (users / items outside the model predicted from what is known);
 * NaN when there are none. */
static double valid_rmse(const mf *m, const mp_train_data *data) {
    double se = 0;
    size_t n = 0;
    for (size_t i = 0; i < data->n_valid; i++) {
        const mp_interaction *e = &data->valid[i];
        if (!is_rating(e)) continue;
        double d = predict(m, e->user, e->item) - e->value;
        se += d * d;
        n++;
    }
    return n ? sqrt(se / (double)n) : NAN;
}

static void sgd_epoch(mf *m, const rating *r, const uint32_t *order, size_t n, float lr, int nt) {
    mp_factors *f = &m->f;
    const uint32_t k = f->k;
    const float mu = (float)f->global_bias, reg = (float)m->p.regularization,
                reg_b = (float)m->p.bias_regularization;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        size_t lo = n * (size_t)t / (size_t)T, hi = n * ((size_t)t + 1) / (size_t)T;
        for (size_t s = lo; s < hi; s++) {
            const rating *x = &r[order[s]];
            rating_step(f->user + (size_t)x->user * k, f->item + (size_t)x->item * k, &f->user_bias[x->user],
                        &f->item_bias[x->item], k, x->value, mu, lr, reg, reg_b, 1);
        }
    }
}

/* CSR of the ratings by `side` (0: rows are users, 1: rows are items): ptr [n_rows + 1], idx = position in r. */
static int group_by(const rating *r, size_t n, uint32_t n_rows, int side, uint64_t **ptr_out, uint32_t **idx_out) {
    uint64_t *ptr = calloc((size_t)n_rows + 1, sizeof *ptr);
    uint32_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!ptr || !idx) {
        free(ptr);
        free(idx);
        return MP_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) ptr[(side ? r[i].item : r[i].user) + 1]++;
    for (uint32_t u = 0; u < n_rows; u++) ptr[u + 1] += ptr[u];
    uint64_t *fill = malloc(((size_t)n_rows + 1) * sizeof *fill);
    if (!fill) {
        free(ptr);
        free(idx);
        return MP_ENOMEM;
    }
    memcpy(fill, ptr, ((size_t)n_rows + 1) * sizeof *fill);
    for (size_t i = 0; i < n; i++) idx[fill[side ? r[i].item : r[i].user]++] = (uint32_t)i;
    free(fill);
    *ptr_out = ptr;
    *idx_out = idx;
    return MP_OK;
}

/* One ALS half-step: solves every row of `side` (0: users, 1: items) with the other side fixed.
 * For row a with ratings (b, r): [x_a, c_a] = argmin sum (r - mu - c_b - x . y_b - c_a)^2
 *                                             + n_a (reg |x_a|^2 + reg_bias c_a^2). */
static int als_half(mf *m, const rating *r, const uint64_t *ptr, const uint32_t *idx, int side, int nt) {
    mp_factors *f = &m->f;
    const uint32_t k = f->k, d = k + 1;
    const uint32_t n_rows = side ? f->n_items : f->n_users;
    float *X = side ? f->item : f->user, *Y = side ? f->user : f->item;
    float *cx = side ? f->item_bias : f->user_bias, *cy = side ? f->user_bias : f->item_bias;
    const double mu = f->global_bias, reg = m->p.regularization, reg_b = m->p.bias_regularization;
    int failed = 0;
#pragma omp parallel num_threads(nt) reduction(| : failed)
    {
        double *A = malloc((size_t)d * d * sizeof *A), *b = malloc((size_t)d * sizeof *b);
        if (!A || !b) failed = 1;
#pragma omp for schedule(dynamic, 16)
        for (uint32_t a = 0; a < n_rows; a++) {
            if (failed) continue;
            uint64_t lo = ptr[a], hi = ptr[a + 1];
            if (lo == hi) continue; /* no ratings: keep the row as it is (zero bias, initial vector) */
            memset(A, 0, (size_t)d * d * sizeof *A);
            memset(b, 0, (size_t)d * sizeof *b);
            for (uint64_t e = lo; e < hi; e++) {
                const rating *x = &r[idx[e]];
                uint32_t o = side ? x->user : x->item;
                const float *y = Y + (size_t)o * k;
                double t = x->value - mu - cy[o];
                for (uint32_t i = 0; i < k; i++) {
                    double yi = y[i];
                    double *Ai = A + (size_t)i * d;
                    for (uint32_t j = 0; j <= i; j++) Ai[j] += yi * y[j];
                    Ai[k] += yi;
                    b[i] += yi * t;
                }
                A[(size_t)k * d + k] += 1;
                b[k] += t;
            }
            double n_a = (double)(hi - lo);
            /* the loop filled the lower triangle of the k x k block and column k: mirror into a full matrix */
            for (uint32_t i = 0; i < k; i++) A[(size_t)k * d + i] = A[(size_t)i * d + k];
            for (uint32_t i = 0; i < d; i++)
                for (uint32_t j = 0; j < i; j++) A[(size_t)j * d + i] = A[(size_t)i * d + j];
            for (uint32_t i = 0; i < k; i++) A[(size_t)i * d + i] += reg * n_a;
            A[(size_t)k * d + k] += reg_b * n_a;
            if (reg == 0 || reg_b == 0) /* keep the system definite without a penalty */
                for (uint32_t i = 0; i < d; i++) A[(size_t)i * d + i] += 1e-9;
            if (mp_cholesky_solve(A, b, d) != MP_OK) continue; /* singular: keep the old row */
            float *xa = X + (size_t)a * k;
            for (uint32_t i = 0; i < k; i++) xa[i] = (float)b[i];
            cx[a] = (float)b[k];
        }
        free(A);
        free(b);
    }
    return failed ? MP_ENOMEM : MP_OK;
}

/* Copies of the fitted arrays, to keep the best epoch. */
typedef struct mf_snapshot {
    float *user, *item, *ub, *ib;
} mf_snapshot;

static int snap_take(mf_snapshot *s, const mp_factors *f) {
    size_t nu = (size_t)f->n_users * f->k + 1, ni = (size_t)f->n_items * f->k + 1;
    if (!s->user) s->user = malloc(nu * sizeof(float));
    if (!s->item) s->item = malloc(ni * sizeof(float));
    if (!s->ub) s->ub = malloc(((size_t)f->n_users + 1) * sizeof(float));
    if (!s->ib) s->ib = malloc(((size_t)f->n_items + 1) * sizeof(float));
    if (!s->user || !s->item || !s->ub || !s->ib) return MP_ENOMEM;
    memcpy(s->user, f->user, ((size_t)f->n_users * f->k) * sizeof(float));
    memcpy(s->item, f->item, ((size_t)f->n_items * f->k) * sizeof(float));
    memcpy(s->ub, f->user_bias, f->n_users * sizeof(float));
    memcpy(s->ib, f->item_bias, f->n_items * sizeof(float));
    return MP_OK;
}

static void snap_restore(const mf_snapshot *s, mp_factors *f) {
    memcpy(f->user, s->user, ((size_t)f->n_users * f->k) * sizeof(float));
    memcpy(f->item, s->item, ((size_t)f->n_items * f->k) * sizeof(float));
    memcpy(f->user_bias, s->ub, f->n_users * sizeof(float));
    memcpy(f->item_bias, s->ib, f->n_items * sizeof(float));
}

static void snap_free(mf_snapshot *s) {
    free(s->user);
    free(s->item);
    free(s->ub);
    free(s->ib);
    memset(s, 0, sizeof *s);
}

static int mf_fit(void *impl, const mp_train_data *data, const mp_progress *progress, mp_error *err) {
    mf *m = impl;
    const mf_params *p = &m->p;
    mf_release(m);
    size_t n = 0;
    for (size_t i = 0; i < data->n_events; i++) {
        const mp_interaction *e = &data->events[i];
        if (!is_rating(e)) continue;
        if (e->user >= data->n_users || e->item >= data->n_items)
            return mp_error_set(err, MP_EINVAL, "mf: event %zu refers to user %u / item %u outside %u x %u", i,
                                e->user, e->item, data->n_users, data->n_items);
        n++;
    }
    if (n == 0)
        return mp_error_set(err, MP_EEMPTY,
                            "mf: none of the %zu training events carries a rating value; mf models explicit ratings "
                            "(use als, bpr or itemknn for implicit feedback)",
                            data->n_events);
    if (n > UINT32_MAX) return mp_error_set(err, MP_ERANGE, "mf: too many ratings (%zu)", n);
    rating *r = malloc(n * sizeof *r);
    uint32_t *order = malloc(n * sizeof *order);
    uint64_t *uptr = NULL, *iptr = NULL;
    uint32_t *uidx = NULL, *iidx = NULL;
    mf_snapshot best = {NULL, NULL, NULL, NULL};
    int rc = MP_OK;
    if (!r || !order) goto oom;
    double sum = 0;
    m->r_min = INFINITY;
    m->r_max = -INFINITY;
    n = 0;
    for (size_t i = 0; i < data->n_events; i++) {
        const mp_interaction *e = &data->events[i];
        if (!is_rating(e)) continue;
        r[n++] = (rating){e->user, e->item, e->value};
        sum += e->value;
        if (e->value < m->r_min) m->r_min = e->value;
        if (e->value > m->r_max) m->r_max = e->value;
    }
    if (mp_factors_alloc(&m->f, data->n_users, data->n_items, p->factors, 1)) goto oom;
    if (mp_item_titles_copy(data->item_titles, data->n_items, &m->titles) != MP_OK) goto oom;
    m->f.global_bias = sum / (double)n;
    mp_rng rng;
    mp_rng_seed(&rng, p->seed);
    mp_factors_init_normal(&m->f, &rng, (float)p->init_scale);
    for (uint32_t i = 0; i < n; i++) order[i] = i;
    int nt = p->solver == SOLVER_SGD ? (p->threads ? (int)p->threads : 1) : mp_bprmf_threads(p->threads, data);
    if ((size_t)nt > 1 + n / 20000) nt = (int)(1 + n / 20000); /* small problems: threads cost more than they give */
    if (p->solver == SOLVER_ALS &&
        (group_by(r, n, data->n_users, 0, &uptr, &uidx) || group_by(r, n, data->n_items, 1, &iptr, &iidx)))
        goto oom;
    int early = p->patience > 0 && data->valid && data->n_valid > 0;
    uint32_t since_best = 0, best_epoch = 0;
    float lr = (float)p->learning_rate;
    for (uint32_t epoch = 1; epoch <= p->epochs; epoch++) {
        if (p->solver == SOLVER_SGD) {
            mp_rng_shuffle_u32(&rng, order, n);
            sgd_epoch(m, r, order, n, lr, nt);
            lr *= (float)p->lr_decay;
        } else if (als_half(m, r, uptr, uidx, 0, nt) || als_half(m, r, iptr, iidx, 1, nt)) {
            goto oom;
        }
        m->epochs_run = epoch;
        mp_progress_report(progress, "fit", epoch, p->epochs);
        if (!early) continue;
        double v = valid_rmse(m, data);
        if (isnan(v)) {
            early = 0;
            continue;
        }
        if (isnan(m->best_valid_rmse) || v < m->best_valid_rmse) {
            m->best_valid_rmse = v;
            best_epoch = epoch;
            since_best = 0;
            if (snap_take(&best, &m->f)) goto oom;
        } else if (++since_best >= p->patience) {
            break;
        }
    }
    m->best_epoch = m->epochs_run;
    if (best_epoch && best_epoch != m->epochs_run) {
        snap_restore(&best, &m->f);
        m->best_epoch = best_epoch;
    }
    goto done;
oom:
    rc = mp_error_set(err, MP_ENOMEM, "mf: out of memory for %zu ratings and %u x %u factors", n,
                      data->n_users + data->n_items, p->factors);
done:
    snap_free(&best);
    free(r);
    free(order);
    free(uptr);
    free(uidx);
    free(iptr);
    free(iidx);
    if (rc) mf_release(m);
    return rc;
}

/* ---- serving ---- */

static int mf_score_all(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err) {
    const mf *m = impl;
    const mp_factors *f = &m->f;
    if (ctx->user < f->n_users) {
        mp_factors_score(f, f->user + (size_t)ctx->user * f->k, scores);
        return MP_OK;
    }
    /* Unknown user: the item part of the prediction (mu + b_i). */
    float *zero = calloc(f->k, sizeof *zero);
    if (!zero) return mp_error_set(err, MP_ENOMEM, "mf: out of memory");
    mp_factors_score(f, zero, scores);
    free(zero);
    return MP_OK;
}

static int mf_item_vectors(const void *impl, const float **vecs, uint32_t *n, uint32_t *dim, mp_error *err) {
    mf *m = (mf *)impl; /* only the atomic cache is written */
    return mp_bprmf_item_vectors(&m->f, &m->aug, vecs, n, dim, err);
}

static int mf_query_vector(const void *impl, const mp_user_ctx *ctx, float *out, int *have, mp_error *err) {
    const mf *m = impl;
    const mp_factors *f = &m->f;
    (void)err;
    if (ctx->user < f->n_users) memcpy(out, f->user + (size_t)ctx->user * f->k, f->k * sizeof *out);
    else memset(out, 0, f->k * sizeof *out);
    mp_bprmf_query(f, out, out);
    *have = 1; /* score_all always ranks: the item part at least */
    return MP_OK;
}

static int mf_predict_rating(const void *impl, uint32_t user, uint32_t item, double *out, mp_error *err) {
    (void)err;
    *out = predict(impl, user, item);
    return MP_OK;
}

static int mf_similar(const void *impl, uint32_t item, size_t n, uint32_t *out_items, float *out_scores,
                      size_t *n_out, mp_error *err) {
    return mp_factors_similar(&((const mf *)impl)->f, item, n, out_items, out_scores, n_out, err);
}

static int mf_explain(const void *impl, const mp_user_ctx *ctx, uint32_t item, char *buf, size_t cap,
                      mp_error *err) {
    const mf *m = impl;
    if (item >= m->f.n_items) return mp_error_set(err, MP_ENOTFOUND, "mf: unknown item %u", item);
    double pred = predict(m, ctx->user, item), mu = m->f.global_bias, bi = m->f.item_bias[item];
    long h = mp_bprmf_closest_history(&m->f, ctx, item);
    char label[4200];
    if (h >= 0) {
        const mp_interaction *e = &ctx->history[h];
        if (m->titles && m->titles[e->item]) snprintf(label, sizeof label, "\xE2\x80\x98%s\xE2\x80\x99", m->titles[e->item]);
        else snprintf(label, sizeof label, "item #%u", e->item);
        if (is_rating(e))
            snprintf(buf, cap, "predicted rating %.1f; close to %s, which you rated %g", pred, label, e->value);
        else
            snprintf(buf, cap, "predicted rating %.1f; close to %s, which you %s", pred, label,
                     mp_bprmf_verb(e->type));
    } else {
        snprintf(buf, cap, "predicted rating %.1f (average rating %.1f, this item %+.1f)", pred, mu, bi);
    }
    return MP_OK;
}

/* ---- update ---- */

static int grow(mf *m, uint32_t n_users, uint32_t n_items) {
    mp_factors g;
    const mp_factors *f = &m->f;
    const uint32_t k = f->k;
    if (mp_factors_alloc(&g, n_users, n_items, k, 1)) return MP_ENOMEM;
    if (mp_item_titles_grow(&m->titles, f->n_items, n_items) != MP_OK) {
        mp_factors_free(&g);
        return MP_ENOMEM;
    }
    memcpy(g.user, f->user, (size_t)f->n_users * k * sizeof(float));
    memcpy(g.item, f->item, (size_t)f->n_items * k * sizeof(float));
    memcpy(g.user_bias, f->user_bias, f->n_users * sizeof(float));
    memcpy(g.item_bias, f->item_bias, f->n_items * sizeof(float));
    g.global_bias = f->global_bias;
    for (uint32_t i = f->n_items; i < n_items; i++) { /* new items: small random vectors, seeded per item */
        mp_rng rng;
        mp_rng_seed(&rng, m->p.seed ^ 0x9E6C63D0676A9A99ull ^ ((uint64_t)i << 1));
        for (uint32_t d = 0; d < k; d++) g.item[(size_t)i * k + d] = (float)(m->p.init_scale * mp_rng_normal(&rng));
    }
    mp_factors_free(&m->f);
    m->f = g;
    return MP_OK;
}

static int mf_update(void *impl, const mp_interaction *events, size_t n, mp_error *err) {
    mf *m = impl;
    uint32_t max_user = 0, max_item = 0;
    size_t n_r = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_rating(&events[i])) continue;
        if (events[i].user == MP_NO_USER || events[i].item == UINT32_MAX)
            return mp_error_set(err, MP_EINVAL, "mf: update event %zu has no user or no item", i);
        if (events[i].user > max_user) max_user = events[i].user;
        if (events[i].item > max_item) max_item = events[i].item;
        n_r++;
    }
    if (n_r == 0) return MP_OK; /* nothing with a rating: the model has nothing to learn from */
    uint32_t first_new = m->f.n_items;
    uint32_t nu = max_user >= m->f.n_users ? max_user + 1 : m->f.n_users;
    uint32_t ni = max_item >= m->f.n_items ? max_item + 1 : m->f.n_items;
    if ((nu != m->f.n_users || ni != m->f.n_items) && grow(m, nu, ni))
        return mp_error_set(err, MP_ENOMEM, "mf: out of memory growing to %u users and %u items", nu, ni);
    mp_factors *f = &m->f;
    const float mu = (float)f->global_bias, lr = (float)m->p.learning_rate, reg = (float)m->p.regularization,
                reg_b = (float)m->p.bias_regularization;
    /* Passes over the new ratings in the order given: a deterministic fold-in. */
    for (uint32_t pass = 0; pass < m->p.fold_in_steps; pass++)
        for (size_t i = 0; i < n; i++) {
            const mp_interaction *e = &events[i];
            if (!is_rating(e)) continue;
            rating_step(f->user + (size_t)e->user * f->k, f->item + (size_t)e->item * f->k, &f->user_bias[e->user],
                        &f->item_bias[e->item], f->k, e->value, mu, lr, reg, reg_b, e->item >= first_new);
        }
    for (size_t i = 0; i < n; i++) {
        if (!is_rating(&events[i])) continue;
        if (events[i].value < m->r_min) m->r_min = events[i].value;
        if (events[i].value > m->r_max) m->r_max = events[i].value;
    }
    /* only rows of items >= first_new moved; a failed refresh just drops the cache */
    mp_bprmf_aug_refresh(f, &m->aug, first_new);
    return MP_OK;
}

static int mf_forget_user(void *impl, uint32_t u, const mp_interaction *events, size_t n, mp_error *err) {
    mf *m = impl;
    (void)events;
    (void)n;
    (void)err;
    if (u >= m->f.n_users) return MP_OK;
    memset(m->f.user + (size_t)u * m->f.k, 0, m->f.k * sizeof *m->f.user);
    m->f.user_bias[u] = 0;
    return MP_OK;
}

/* ---- save / load ---- */

static int mf_save(const void *impl, mp_mf_writer *w, mp_error *err) {
    const mf *m = impl;
    const mf_params *p = &m->p;
    (void)err;
    mp_params_put(mf_params_info, MP_PARAM_COUNT(mf_params_info), p, w);
    mp_mf_put_f64(w, m->r_min);
    mp_mf_put_f64(w, m->r_max);
    mp_mf_put_u32(w, m->epochs_run);
    mp_mf_put_u32(w, m->best_epoch);
    mp_mf_put_f64(w, m->best_valid_rmse);
    mp_factors_save(&m->f, w);
    mp_item_titles_save(w, m->titles, m->f.n_items);
    return MP_OK;
}

static int mf_load(void *impl, mp_mf_reader *r, mp_error *err) {
    mf *m = impl;
    mf_params *p = &m->p;
    mf_release(m);
    int rc;
    if ((rc = mp_params_get(mf_params_info, MP_PARAM_COUNT(mf_params_info), p, r, "mf", err)) ||
        (rc = mp_mf_get_f64(r, &m->r_min, err)) || (rc = mp_mf_get_f64(r, &m->r_max, err)) ||
        (rc = mp_mf_get_u32(r, &m->epochs_run, err)) || (rc = mp_mf_get_u32(r, &m->best_epoch, err)) ||
        (rc = mp_mf_get_f64(r, &m->best_valid_rmse, err)))
        return rc;
    if (!(isfinite(m->r_min) && isfinite(m->r_max) && m->r_min <= m->r_max))
        return mp_error_set(err, MP_ECORRUPT, "mf payload: bad rating range");
    if ((rc = mp_factors_load(&m->f, r, err))) return rc;
    if (m->f.k != p->factors || !m->f.user_bias) {
        mf_release(m);
        return mp_error_set(err, MP_ECORRUPT, "mf payload: factor shape does not match the parameters");
    }
    if ((rc = mp_item_titles_load(r, &m->titles, m->f.n_items, "mf", err))) {
        mf_release(m);
        return rc;
    }
    return MP_OK;
}

static uint32_t mf_n_items(const void *impl) { return ((const mf *)impl)->f.n_items; }

const mp_model_ops mp_mf_ops = {
    .name = "mf",
    .summary = "biased matrix factorisation for explicit ratings (SGD or ALS), predicts ratings",
    .file_version = MF_FILE_VERSION,
    .impl_size = sizeof(mf),
    .params = mf_params_info,
    .n_params = MP_PARAM_COUNT(mf_params_info),
    .params_offset = offsetof(mf, p),
    .params_size = sizeof(mf_params),
    .init = mf_init,
    .fit = mf_fit,
    .score_all = mf_score_all,
    .predict_rating = mf_predict_rating,
    .similar = mf_similar,
    .explain = mf_explain,
    .update = mf_update,
    .save = mf_save,
    .load = mf_load,
    .release = mf_release,
    .n_items = mf_n_items,
    .item_vectors = mf_item_vectors,
    .query_vector = mf_query_vector,
    .forget_user = mf_forget_user,
};
