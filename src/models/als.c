/* "als": matrix factorisation for implicit feedback (Hu, Koren and Volinsky 2008).
 *
 * Each (user, item) value r of the weighted training matrix (event-type weights, optional decay) gives a
 * preference p = 1 with confidence c = 1 + alpha * r; every other pair has p = 0, c = 1. Alternating least
 * squares solves all users against fixed item factors, then all items against fixed user factors, each row
 * independently (OpenMP over rows, so results never depend on thread scheduling), with either the exact
 * solution (Cholesky in double) or a few conjugate-gradient steps warm-started from the previous vector
 * (Takacs et al. 2011). Both use the YtY trick: A = YtY + Yt (C_u - I) Y + reg I touches only the row's
 * non-zeros. Early stopping on validation NDCG@10 keeps the best factors.
 *
 * The model keeps the user x item matrix it was fitted on, so it can
 *   - fold in a user in real time (update): merge the new events into the user's row and solve exactly,
 *   - fold in a new item from the users that touched it, against fixed user factors,
 *   - explain a score by item contributions (the paper's section 5),
 *   - forget a user (the right to be forgotten): its vector is zeroed and its row emptied, which marks the stored
 *     vector as unusable, so a request for that id folds in from the history it brings (none, once forgotten).
 * Retrieval vectors (item_vectors / query_vector) are the item factors themselves and the request's user vector:
 * score = x_u . y_i exactly, with no bias. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "models/item_titles.h"
#include "magpie/buf.h"
#include "magpie/factors.h"
#include "magpie/linalg.h"
#include "magpie/model.h"
#include "models/params.h"
#include "magpie/trainset.h"

#define ALS_FILE_VERSION 1
#define ALS_MAX_FACTORS 4096u
#define SECONDS_PER_DAY 86400.0
#define VALID_K 10

enum { ALS_SOLVER_CG = 0, ALS_SOLVER_CHOLESKY = 1 };

/* A growable sparse row (ascending columns, values > 0). */
typedef struct als_row {
    uint32_t n, cap;
    uint32_t *idx;
    float *val;
} als_row;

typedef struct als {
    /* parameters */
    uint32_t factors;    /* k */
    uint32_t iterations; /* full sweeps (users then items) */
    double reg;          /* L2 regularisation */
    double alpha;        /* confidence slope: c = 1 + alpha * r */
    int solver;          /* ALS_SOLVER_* */
    uint32_t cg_steps;   /* CG iterations per row and sweep */
    uint64_t seed;
    int threads;         /* 0: what the caller allows (data->n_threads) */
    double init_scale;   /* initial factors ~ N(0, init_scale^2) */
    uint32_t patience;   /* early stopping: sweeps without a better validation NDCG before stopping */
    double reg_exponent; /* a row with n non-zeros is regularised by reg * n^reg_exponent (0: plain reg) */

    /* fitted state (owned) */
    mp_factors f;          /* user (n_users, k), item (n_items, k) */
    mp_csr ui;             /* user x item values r the model was fitted on (or loaded) */
    als_row *rows;         /* [f.n_users] rows changed by update (idx NULL: the row of ui), or NULL */
    uint32_t n_rows_alloc; /* entries of rows */
    als_row *new_items;    /* [f.n_items - ui.n_cols] (user, value) rows of items added by update */
    double *gram_items;    /* (k,k) YtY of f.item, kept current across updates */
    double *gram_users;    /* (k,k) XtX of f.user */
    float *gram_items_f;   /* float copies used by the solvers */
    float *gram_users_f;
    char **titles;         /* [f.n_items] item titles (entries may be NULL), or NULL */
    float type_weight[MP_EV_NTYPES];
    double half_life_days;
    int64_t now;
    int binary;
    uint32_t sweeps_done; /* sweeps of the kept factors */
    double valid_ndcg;    /* validation NDCG@10 of the kept factors, or -1 */
} als;

static const char *const als_solver_names[] = {"cg", "cholesky"}; /* ALS_SOLVER_* order */

/* The parameters are als's first fields: the descriptors' offsets are into als itself. The defaults were chosen on
 * validation NDCG@10 of ML-100K (ratio split) and Beauty (leave-one-out) together. */
static const mp_param_info als_params[] = {
    MP_P_UINT("factors", als, factors, "256", 1, ALS_MAX_FACTORS, "latent factors per user and item",
              MP_TUNED_LOG(16, 256)),
    MP_P_UINT("iterations", als, iterations, "15", 1, 100000, "alternating sweeps (users, then items)"),
    /* the tuned range holds the default: tune's first trial is the defaults, its search must be able to reach
     * beside them (the range was 1e-3..10, below the default) */
    MP_P_REAL("regularization", als, reg, "75", 0, INFINITY, "L2 penalty on the factors (>= 0)", .alias = "reg",
              MP_TUNED_LOG(0.1, 1000)),
    MP_P_REAL("alpha", als, alpha, "5", 0, INFINITY, "confidence slope: c = 1 + alpha * weighted value",
              MP_TUNED_LOG(1, 50)),
    MP_P_CHOICE("solver", als, solver, "cg", als_solver_names,
                "cg (conjugate gradient, fast) or cholesky (exact per row)"),
    MP_P_UINT("cg_steps", als, cg_steps, "3", 1, 1000, "conjugate-gradient steps per row and sweep"),
    MP_P_U64("seed", als, seed, "1", 0, UINT64_MAX, "random seed of the initial factors"),
    MP_P_INT("threads", als, threads, "0", 0, 1024, "threads (0: all cores)"),
    MP_P_REAL("init_scale", als, init_scale, "0.01", 0, INFINITY, "standard deviation of the initial factors",
              .lo_open = 1),
    MP_P_UINT("patience", als, patience, "3", 1, 100000,
              "with validation data: stop after this many sweeps without a better NDCG@10"),
    MP_P_REAL("reg_exponent", als, reg_exponent, "0", 0, 2,
              "scale a row's regularization by (its non-zeros)^reg_exponent (0: the same for all rows)"),
    {NULL},
};
/* Model files hold the first ALS_N_HEAD parameters at the start of the payload and reg_exponent, added later, at
 * its end. */
#define ALS_N_HEAD 10
_Static_assert(MP_PARAM_COUNT(als_params) == ALS_N_HEAD + 1, "als: the file layout puts only reg_exponent last");

static void als_init(void *impl) {
    als *m = impl;
    m->valid_ndcg = -1;
}

static void row_free(als_row *r) {
    free(r->idx);
    free(r->val);
    memset(r, 0, sizeof *r);
}

static void als_release(void *impl) {
    als *m = impl;
    if (m->rows)
        for (uint32_t u = 0; u < m->n_rows_alloc; u++) row_free(&m->rows[u]);
    free(m->rows);
    uint32_t n_new = m->f.n_items > m->ui.n_cols ? m->f.n_items - m->ui.n_cols : 0;
    if (m->new_items)
        for (uint32_t i = 0; i < n_new; i++) row_free(&m->new_items[i]);
    free(m->new_items);
    mp_item_titles_free(m->titles, m->f.n_items);
    free(m->gram_items);
    free(m->gram_users);
    free(m->gram_items_f);
    free(m->gram_users_f);
    mp_factors_free(&m->f);
    mp_csr_free(&m->ui);
    m->rows = NULL;
    m->new_items = NULL;
    m->titles = NULL;
    m->gram_items = m->gram_users = NULL;
    m->gram_items_f = m->gram_users_f = NULL;
    m->n_rows_alloc = 0;
    m->sweeps_done = 0;
    m->valid_ndcg = -1;
}

/* ---- rows ---- */

/* The user's current row: changed by update, else the fitted matrix's, else empty. */
static void user_row(const als *m, uint32_t u, const uint32_t **idx, const float **val, size_t *n) {
    if (m->rows && u < m->n_rows_alloc && m->rows[u].idx) {
        *idx = m->rows[u].idx;
        *val = m->rows[u].val;
        *n = m->rows[u].n;
    } else if (u < m->ui.n_rows) {
        uint64_t b = m->ui.ptr[u];
        *idx = m->ui.idx + b;
        *val = m->ui.val + b;
        *n = (size_t)(m->ui.ptr[u + 1] - b);
    } else {
        *idx = NULL;
        *val = NULL;
        *n = 0;
    }
}

static int row_reserve(als_row *r, uint32_t need) {
    if (need <= r->cap) return MP_OK;
    size_t cap = r->cap;
    if (mp_grow2((void **)&r->idx, sizeof *r->idx, (void **)&r->val, sizeof *r->val, &cap, need) != MP_OK ||
        cap > UINT32_MAX)
        return MP_ENOMEM;
    r->cap = (uint32_t)cap;
    return MP_OK;
}

/* Adds w to column c of r (inserting it in order). Entries whose value drops to <= 0 are removed. */
static int row_add(als_row *r, uint32_t c, float w) {
    uint32_t lo = 0, hi = r->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->idx[mid] < c) lo = mid + 1;
        else hi = mid;
    }
    if (lo < r->n && r->idx[lo] == c) {
        r->val[lo] += w;
        if (!(r->val[lo] > 0)) {
            memmove(r->idx + lo, r->idx + lo + 1, (r->n - lo - 1) * sizeof *r->idx);
            memmove(r->val + lo, r->val + lo + 1, (r->n - lo - 1) * sizeof *r->val);
            r->n--;
        }
        return MP_OK;
    }
    if (!(w > 0)) return MP_OK;
    if (row_reserve(r, r->n + 1)) return MP_ENOMEM;
    memmove(r->idx + lo + 1, r->idx + lo, (r->n - lo) * sizeof *r->idx);
    memmove(r->val + lo + 1, r->val + lo, (r->n - lo) * sizeof *r->val);
    r->idx[lo] = c;
    r->val[lo] = w;
    r->n++;
    return MP_OK;
}

static double event_weight(const als *m, const mp_interaction *e) {
    if (e->type >= MP_EV_NTYPES) return 0;
    double w = m->type_weight[e->type];
    if (m->half_life_days > 0) {
        double age = (double)(m->now - e->ts);
        if (age > 0) w *= exp2(-age / (m->half_life_days * SECONDS_PER_DAY));
    }
    return w;
}

/* Values as the model sees them: binary weighting turns every positive total into 1. */
static void binarize(const als *m, als_row *r) {
    if (m->binary)
        for (uint32_t j = 0; j < r->n; j++) r->val[j] = 1.0f;
}

/* Row of a history (items < n_items only), aggregated like the training matrix. r is zeroed on entry. */
static int history_row(const als *m, const mp_interaction *h, size_t n, als_row *r) {
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < n; i++) {
        if (h[i].item >= m->f.n_items) continue;
        if (row_add(r, h[i].item, (float)event_weight(m, &h[i]))) {
            row_free(r);
            return MP_ENOMEM;
        }
    }
    binarize(m, r);
    return MP_OK;
}

static int row_has(const uint32_t *idx, size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (idx[mid] < c) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && idx[lo] == c;
}

/* 1 when ctx's history holds a positive event on an item the stored row of the user does not have, i.e. the
 * stored vector is stale for this request. */
static int history_is_new(const als *m, const mp_user_ctx *ctx) {
    const uint32_t *idx;
    const float *val;
    size_t n;
    user_row(m, ctx->user, &idx, &val, &n);
    for (size_t i = 0; i < ctx->n_history; i++) {
        const mp_interaction *e = &ctx->history[i];
        if (e->item >= m->f.n_items || e->type >= MP_EV_NTYPES || !(m->type_weight[e->type] > 0)) continue;
        if (!row_has(idx, n, e->item)) return 1;
    }
    return 0;
}

/* 1 when the stored vector of ctx->user may answer the request: the user is in the model, its row is not empty (an
 * empty row means no positive history, or a forgotten user) and the request's history brings nothing new. */
static int stored_usable(const als *m, const mp_user_ctx *ctx) {
    if (ctx->user == MP_NO_USER || ctx->user >= m->f.n_users) return 0;
    const uint32_t *idx;
    const float *val;
    size_t n;
    user_row(m, ctx->user, &idx, &val, &n);
    return n > 0 && !history_is_new(m, ctx);
}

/* Regularisation of a row with nnz non-zeros. */
static float row_reg(const als *m, size_t nnz) {
    if (m->reg_exponent > 0 && nnz > 0) return (float)(m->reg * pow((double)nnz, m->reg_exponent));
    return (float)m->reg;
}

static mp_ials_problem problem_users(const als *m) { /* solving users against fixed items */
    return (mp_ials_problem){m->f.item, m->gram_items_f, m->f.k, (float)m->alpha, (float)m->reg};
}

static mp_ials_problem problem_items(const als *m) { /* solving items against fixed users */
    return (mp_ials_problem){m->f.user, m->gram_users_f, m->f.k, (float)m->alpha, (float)m->reg};
}

/* gram (k,k) in double and float from factors (n, k). */
static void gram_both(const float *F, size_t n, uint32_t k, double *gd, float *gf) {
    mp_gram(F, n, k, k, gf);
    for (size_t i = 0; i < (size_t)k * k; i++) gd[i] = gf[i];
}

static int alloc_grams(als *m) {
    size_t kk = (size_t)m->f.k * m->f.k;
    m->gram_items = malloc(kk * sizeof(double));
    m->gram_users = malloc(kk * sizeof(double));
    m->gram_items_f = malloc(kk * sizeof(float));
    m->gram_users_f = malloc(kk * sizeof(float));
    return m->gram_items && m->gram_users && m->gram_items_f && m->gram_users_f ? MP_OK : MP_ENOMEM;
}

static int n_threads_of(const als *m, int data_threads) {
    int nt = m->threads > 0 ? m->threads : data_threads;
#ifdef _OPENMP
    if (nt <= 0) nt = omp_get_max_threads();
#else
    nt = 1;
#endif
    return nt < 1 ? 1 : nt;
}

/* One half-sweep: every row r of `rows` solves X[r] against fixed factors Y (n_y, k). */
static int solve_side(const als *m, const mp_csr *rows, const float *Y, size_t n_y, float *X, int nt, float *gram,
                      mp_error *err) {
    const uint32_t k = m->f.k;
    mp_gram(Y, n_y, k, k, gram); /* BLAS outside the parallel region */
    mp_ials_problem p = {Y, gram, k, (float)m->alpha, (float)m->reg};
    int rc = MP_OK;
    uint32_t bad_row = 0;
#pragma omp parallel num_threads(nt)
    {
        float *fw = malloc(3 * (size_t)k * sizeof *fw);
        double *dw = m->solver == ALS_SOLVER_CHOLESKY ? malloc(mp_ials_work_doubles(k) * sizeof *dw) : NULL;
        int ok = fw && (m->solver != ALS_SOLVER_CHOLESKY || dw);
        if (!ok) {
#pragma omp critical(als_err)
            if (rc == MP_OK) rc = MP_ENOMEM;
        }
#pragma omp for schedule(dynamic, 64)
        for (uint32_t r = 0; r < rows->n_rows; r++) {
            if (!ok) continue;
            uint64_t b = rows->ptr[r], e = rows->ptr[r + 1];
            float *x = X + (size_t)r * k;
            mp_ials_problem pr = p;
            pr.reg = row_reg(m, e - b);
            if (m->solver == ALS_SOLVER_CHOLESKY) {
                if (mp_ials_solve(&pr, rows->idx + b, rows->val + b, e - b, x, dw) != MP_OK) {
#pragma omp critical(als_err)
                    if (rc == MP_OK) {
                        rc = MP_ERANGE;
                        bad_row = r;
                    }
                }
            } else {
                mp_ials_cg(&pr, rows->idx + b, rows->val + b, e - b, x, m->cg_steps, fw);
            }
        }
        free(fw);
        free(dw);
    }
    if (rc == MP_ENOMEM) return mp_error_set(err, MP_ENOMEM, "als: out of memory for solver scratch");
    if (rc == MP_ERANGE)
        return mp_error_set(err, MP_ERANGE,
                            "als: the system of row %u is not positive definite; use regularization > 0", bad_row);
    return MP_OK;
}

static int als_score_all(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err);
static int als_score_block(const void *impl, const mp_user_ctx *ctxs, size_t n, float *scores, mp_error *err);

static int copy_csr(mp_csr *dst, const mp_csr *src) {
    uint64_t nnz = mp_csr_nnz(src);
    dst->n_rows = src->n_rows;
    dst->n_cols = src->n_cols;
    dst->ptr = malloc(((size_t)src->n_rows + 1) * sizeof *dst->ptr);
    dst->idx = malloc((nnz + 1) * sizeof *dst->idx);
    dst->val = malloc((nnz + 1) * sizeof *dst->val);
    if (!dst->ptr || !dst->idx || !dst->val) {
        mp_csr_free(dst);
        return MP_ENOMEM;
    }
    if (src->ptr) memcpy(dst->ptr, src->ptr, ((size_t)src->n_rows + 1) * sizeof *dst->ptr);
    else memset(dst->ptr, 0, ((size_t)src->n_rows + 1) * sizeof *dst->ptr);
    if (nnz) {
        memcpy(dst->idx, src->idx, nnz * sizeof *dst->idx);
        memcpy(dst->val, src->val, nnz * sizeof *dst->val);
    }
    return MP_OK;
}

static int als_fit(void *impl, const mp_train_data *data, const mp_progress *progress, mp_error *err) {
    als *m = impl;
    als_release(m);
    if (!data->ui || !data->iu)
        return mp_error_set(err, MP_EINVAL, "als: the training data has no interaction matrix");
    if (data->ui->n_rows != data->n_users || data->ui->n_cols != data->n_items || data->iu->n_rows != data->n_items ||
        data->iu->n_cols != data->n_users)
        return mp_error_set(err, MP_EINVAL, "als: matrix shapes (%u x %u, %u x %u) do not match %u users x %u items",
                            data->ui->n_rows, data->ui->n_cols, data->iu->n_rows, data->iu->n_cols, data->n_users,
                            data->n_items);
    if (mp_csr_nnz(data->ui) == 0) return mp_error_set(err, MP_EEMPTY, "als: no positive training interactions");
    const uint32_t k = m->factors;
    const int nt = n_threads_of(m, data->n_threads);
    mp_weighting w;
    if (data->weighting) w = *data->weighting;
    else mp_weighting_default(&w);
    memcpy(m->type_weight, w.type_weight, sizeof m->type_weight);
    m->half_life_days = w.half_life_days;
    m->now = w.now ? w.now : data->now;
    m->binary = w.binary;

    float *best_user = NULL, *best_item = NULL;
    int rc;
    if (mp_factors_alloc(&m->f, data->n_users, data->n_items, k, 0) || alloc_grams(m) || copy_csr(&m->ui, data->ui))
        goto oom;
    if (mp_item_titles_copy(data->item_titles, data->n_items, &m->titles) != MP_OK) goto oom;
    mp_rng rng;
    mp_rng_seed(&rng, m->seed);
    mp_factors_init_normal(&m->f, &rng, (float)m->init_scale);

    const int validate = data->valid && data->n_valid > 0;
    size_t nu = (size_t)data->n_users * k, ni = (size_t)data->n_items * k;
    if (validate) {
        best_user = malloc((nu + 1) * sizeof *best_user);
        best_item = malloc((ni + 1) * sizeof *best_item);
        if (!best_user || !best_item) goto oom;
    }
    double best = -1;
    uint32_t best_sweep = 0, since_best = 0;
    for (uint32_t it = 0; it < m->iterations; it++) {
        if ((rc = solve_side(m, data->ui, m->f.item, data->n_items, m->f.user, nt, m->gram_items_f, err)) ||
            (rc = solve_side(m, data->iu, m->f.user, data->n_users, m->f.item, nt, m->gram_users_f, err)))
            goto fail;
        mp_progress_report(progress, "fit", it + 1, m->iterations);
        if (!validate) continue;
        /* scoring needs the current grams of the item factors (fold-in for users with new history) */
        gram_both(m->f.item, data->n_items, k, m->gram_items, m->gram_items_f);
        double ndcg;
        if ((rc = mp_train_data_valid_ndcg_block(data, als_score_block, m, VALID_K, &ndcg, err))) goto fail;
        if (ndcg > best) {
            best = ndcg;
            best_sweep = it + 1;
            since_best = 0;
            memcpy(best_user, m->f.user, nu * sizeof *best_user);
            memcpy(best_item, m->f.item, ni * sizeof *best_item);
        } else if (++since_best >= m->patience) {
            break;
        }
    }
    if (validate) {
        memcpy(m->f.user, best_user, nu * sizeof *best_user);
        memcpy(m->f.item, best_item, ni * sizeof *best_item);
        m->sweeps_done = best_sweep;
        m->valid_ndcg = best;
    } else {
        m->sweeps_done = m->iterations;
    }
    free(best_user);
    free(best_item);
    gram_both(m->f.item, m->f.n_items, k, m->gram_items, m->gram_items_f);
    gram_both(m->f.user, m->f.n_users, k, m->gram_users, m->gram_users_f);
    return MP_OK;
oom:
    rc = mp_error_set(err, MP_ENOMEM, "als: out of memory for %u users x %u items x %u factors", data->n_users,
                      data->n_items, k);
fail:
    free(best_user);
    free(best_item);
    als_release(m);
    return rc;
}

/* x (k) = the user's vector for this request: stored, or folded in from ctx->history. *have = 0 when there is
 * nothing to go on (no stored vector, no usable history). */
static int request_vector(const als *m, const mp_user_ctx *ctx, float *x, int *have, mp_error *err) {
    const uint32_t k = m->f.k;
    *have = 0;
    if (stored_usable(m, ctx)) {
        memcpy(x, m->f.user + (size_t)ctx->user * k, k * sizeof *x);
        *have = 1;
        return MP_OK;
    }
    if (ctx->n_history == 0) return MP_OK;
    als_row r;
    double *work = malloc(mp_ials_work_doubles(k) * sizeof *work);
    if (!work || history_row(m, ctx->history, ctx->n_history, &r)) {
        free(work);
        return mp_error_set(err, MP_ENOMEM, "als: out of memory folding in a user");
    }
    mp_ials_problem p = problem_users(m);
    p.reg = row_reg(m, r.n);
    int rc = r.n ? mp_ials_solve(&p, r.idx, r.val, r.n, x, work) : MP_OK;
    *have = r.n > 0 && rc == MP_OK;
    row_free(&r);
    free(work);
    if (rc) return mp_error_set(err, rc, "als: fold-in system is not positive definite; use regularization > 0");
    return MP_OK;
}

static int als_score_all(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err) {
    const als *m = impl;
    float *x = malloc(((size_t)m->f.k + 1) * sizeof *x);
    if (!x) return mp_error_set(err, MP_ENOMEM, "als: out of memory");
    int have;
    int rc = request_vector(m, ctx, x, &have, err);
    if (rc == MP_OK) {
        if (have) mp_factors_score(&m->f, x, scores);
        else memset(scores, 0, (size_t)m->f.n_items * sizeof *scores);
    }
    free(x);
    return rc;
}

/* Scores a block of users with one sgemm of their vectors against the item factors (validation during fit):
 * scores (n, n_items). Users without a vector score 0 everywhere, as in als_score_all. */
static int als_score_block(const void *impl, const mp_user_ctx *ctxs, size_t n, float *scores, mp_error *err) {
    const als *m = impl;
    const size_t k = m->f.k;
    float *u = malloc((n * k + 1) * sizeof *u);
    if (!u) return mp_error_set(err, MP_ENOMEM, "als: out of memory");
    int rc = MP_OK;
    for (size_t j = 0; j < n && rc == MP_OK; j++) {
        int have;
        rc = request_vector(m, &ctxs[j], u + j * k, &have, err);
        if (rc == MP_OK && !have) memset(u + j * k, 0, k * sizeof *u);
    }
    if (rc == MP_OK) mp_sgemm_nt(n, m->f.n_items, k, 1.0f, u, k, m->f.item, k, 0.0f, scores, m->f.n_items);
    free(u);
    return rc;
}

static int als_item_vectors(const void *impl, const float **vecs, uint32_t *n, uint32_t *dim, mp_error *err) {
    const als *m = impl;
    (void)err;
    *vecs = m->f.item;
    *n = m->f.n_items;
    *dim = m->f.k;
    return MP_OK;
}

static int als_query_vector(const void *impl, const mp_user_ctx *ctx, float *out, int *have, mp_error *err) {
    return request_vector(impl, ctx, out, have, err);
}

static int als_similar(const void *impl, uint32_t item, size_t n, uint32_t *out_items, float *out_scores,
                       size_t *n_out, mp_error *err) {
    const als *m = impl;
    return mp_factors_similar(&m->f, item, n, out_items, out_scores, n_out, err);
}

/* "bought", "viewed", ...: the strongest thing the history says the user did with item. */
static const char *history_verb(const mp_user_ctx *ctx, uint32_t item) {
    static const int order[] = {MP_EV_PURCHASE, MP_EV_CART, MP_EV_FAV, MP_EV_RATING, MP_EV_REVIEW, MP_EV_CLICK,
                                MP_EV_VIEW};
    static const char *const verbs[] = {"bought", "added to your cart", "saved", "rated", "reviewed", "clicked",
                                        "viewed"};
    int best = -1;
    for (size_t i = 0; i < ctx->n_history; i++) {
        if (ctx->history[i].item != item) continue;
        for (int o = 0; o < (int)(sizeof order / sizeof order[0]); o++)
            if (ctx->history[i].type == order[o] && (best < 0 || o < best)) best = o;
    }
    return best < 0 ? "interacted with" : verbs[best];
}

static int als_explain(const void *impl, const mp_user_ctx *ctx, uint32_t item, char *buf, size_t cap,
                       mp_error *err) {
    const als *m = impl;
    if (item >= m->f.n_items) return mp_error_set(err, MP_ENOTFOUND, "als: unknown item %u", item);
    const uint32_t k = m->f.k;
    const uint32_t *idx;
    const float *val;
    size_t n = 0;
    als_row hist = {0};
    if (stored_usable(m, ctx)) {
        user_row(m, ctx->user, &idx, &val, &n);
    } else {
        if (history_row(m, ctx->history, ctx->n_history, &hist))
            return mp_error_set(err, MP_ENOMEM, "als: out of memory");
        idx = hist.idx;
        val = hist.val;
        n = hist.n;
    }
    if (n == 0) {
        snprintf(buf, cap, "no history to explain from yet; ranked by the item's overall affinity");
        row_free(&hist);
        return MP_OK;
    }
    double *contrib = malloc(n * sizeof *contrib), *work = malloc(mp_ials_work_doubles(k) * sizeof *work);
    if (!contrib || !work) {
        free(contrib);
        free(work);
        row_free(&hist);
        return mp_error_set(err, MP_ENOMEM, "als: out of memory");
    }
    mp_ials_problem p = problem_users(m);
    p.reg = row_reg(m, n);
    double score;
    int rc = mp_ials_explain(&p, idx, val, n, m->f.item + (size_t)item * k, contrib, &score, work);
    if (rc == MP_OK) {
        size_t top = 0;
        double pos = 0;
        for (size_t j = 0; j < n; j++) {
            if (contrib[j] > contrib[top] || (contrib[j] == contrib[top] && idx[j] < idx[top])) top = j;
            if (contrib[j] > 0) pos += contrib[j];
        }
        uint32_t j = idx[top];
        char name[256];
        if (m->titles && m->titles[j] && m->titles[j][0])
            snprintf(name, sizeof name, "\xE2\x80\x98%.240s\xE2\x80\x99", m->titles[j]);
        else snprintf(name, sizeof name, "item %u", j);
        if (contrib[top] > 0 && pos > 0)
            snprintf(buf, cap, "because you %s %s (%.0f%% of the match)", history_verb(ctx, j), name,
                     100.0 * contrib[top] / pos);
        else
            snprintf(buf, cap, "a weak match for your history (closest: you %s %s)", history_verb(ctx, j), name);
    } else {
        rc = mp_error_set(err, rc, "als: explanation system is not positive definite; use regularization > 0");
    }
    free(contrib);
    free(work);
    row_free(&hist);
    return rc;
}

/* ---- real-time updates ---- */

static int grow_users(als *m, uint32_t n_users) {
    const size_t k = m->f.k, old = m->f.n_users;
    float *u = realloc(m->f.user, ((size_t)n_users * k + 1) * sizeof *u);
    if (!u) return MP_ENOMEM;
    m->f.user = u;
    memset(u + old * k, 0, (n_users - old) * k * sizeof *u);
    m->f.n_users = n_users;
    return MP_OK;
}

static int grow_items(als *m, uint32_t n_items) {
    const size_t k = m->f.k, old = m->f.n_items, n_new_old = old - m->ui.n_cols, n_new = n_items - m->ui.n_cols;
    float *it = realloc(m->f.item, ((size_t)n_items * k + 1) * sizeof *it);
    if (!it) return MP_ENOMEM;
    m->f.item = it;
    als_row *nr = realloc(m->new_items, (n_new + 1) * sizeof *nr);
    if (!nr) return MP_ENOMEM;
    m->new_items = nr;
    memset(nr + n_new_old, 0, (n_new - n_new_old) * sizeof *nr);
    if (mp_item_titles_grow(&m->titles, (uint32_t)old, n_items) != MP_OK) return MP_ENOMEM;
    memset(it + old * k, 0, (n_items - old) * k * sizeof *it);
    m->f.n_items = n_items;
    return MP_OK;
}

/* gd += s * v v^T; then refresh the float copy. */
static void gram_rank1(double *gd, const float *v, uint32_t k, double s) {
    for (uint32_t a = 0; a < k; a++)
        for (uint32_t b = 0; b < k; b++) gd[(size_t)a * k + b] += s * (double)v[a] * v[b];
}

static void gram_refresh(const double *gd, float *gf, uint32_t k) {
    for (size_t i = 0; i < (size_t)k * k; i++) gf[i] = (float)gd[i];
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int als_update(void *impl, const mp_interaction *events, size_t n, mp_error *err) {
    als *m = impl;
    if (n == 0) return MP_OK;
    const uint32_t k = m->f.k;
    uint32_t max_user = 0, max_item = 0;
    for (size_t i = 0; i < n; i++) {
        if (events[i].user == MP_NO_USER || events[i].item == UINT32_MAX)
            return mp_error_set(err, MP_EINVAL, "als: update event %zu has no user or no item", i);
        if (events[i].user > max_user) max_user = events[i].user;
        if (events[i].item > max_item) max_item = events[i].item;
    }
    if ((max_user >= m->f.n_users && grow_users(m, max_user + 1)) ||
        (max_item >= m->f.n_items && grow_items(m, max_item + 1)))
        return mp_error_set(err, MP_ENOMEM, "als: out of memory growing to %u users x %u items",
                            max_user >= m->f.n_users ? max_user + 1 : m->f.n_users,
                            max_item >= m->f.n_items ? max_item + 1 : m->f.n_items);
    if (m->n_rows_alloc < m->f.n_users) {
        als_row *r = realloc(m->rows, (size_t)m->f.n_users * sizeof *r);
        if (!r) return mp_error_set(err, MP_ENOMEM, "als: out of memory");
        memset(r + m->n_rows_alloc, 0, (m->f.n_users - m->n_rows_alloc) * sizeof *r);
        m->rows = r;
        m->n_rows_alloc = m->f.n_users;
    }
    uint32_t *users = malloc(n * sizeof *users), *items = malloc(n * sizeof *items);
    float *x = malloc(2 * (size_t)k * sizeof *x);
    double *work = malloc(mp_ials_work_doubles(k) * sizeof *work);
    int rc = MP_OK;
    if (!users || !items || !x || !work) goto oom;
    /* merge the events into the rows */
    size_t n_items_touched = 0;
    for (size_t i = 0; i < n; i++) {
        const mp_interaction *e = &events[i];
        als_row *r = &m->rows[e->user];
        if (!r->idx) { /* first change: copy the fitted row */
            const uint32_t *idx;
            const float *val;
            size_t rn;
            user_row(m, e->user, &idx, &val, &rn);
            if (row_reserve(r, (uint32_t)rn + 1)) goto oom;
            if (rn) {
                memcpy(r->idx, idx, rn * sizeof *idx);
                memcpy(r->val, val, rn * sizeof *val);
            }
            r->n = (uint32_t)rn;
        }
        float w = (float)event_weight(m, e);
        if (row_add(r, e->item, w)) goto oom;
        if (e->item >= m->ui.n_cols) {
            if (row_add(&m->new_items[e->item - m->ui.n_cols], e->user, w)) goto oom;
            items[n_items_touched++] = e->item;
        }
        users[i] = e->user;
    }
    /* re-solve each touched user exactly against the fixed item factors */
    qsort(users, n, sizeof *users, cmp_u32);
    mp_ials_problem pu = problem_users(m);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && users[i] == users[i - 1]) continue;
        als_row *r = &m->rows[users[i]];
        binarize(m, r);
        float *xu = m->f.user + (size_t)users[i] * k;
        memcpy(x, xu, k * sizeof *x);
        pu.reg = row_reg(m, r->n);
        if ((rc = mp_ials_solve(&pu, r->idx, r->val, r->n, x + k, work))) goto notpd;
        gram_rank1(m->gram_users, xu, k, -1.0);
        memcpy(xu, x + k, k * sizeof *x);
        gram_rank1(m->gram_users, xu, k, 1.0);
    }
    gram_refresh(m->gram_users, m->gram_users_f, k);
    /* then each touched new item against the fixed user factors */
    qsort(items, n_items_touched, sizeof *items, cmp_u32);
    mp_ials_problem pi = problem_items(m);
    for (size_t i = 0; i < n_items_touched; i++) {
        if (i > 0 && items[i] == items[i - 1]) continue;
        als_row *r = &m->new_items[items[i] - m->ui.n_cols];
        if (m->binary)
            for (uint32_t j = 0; j < r->n; j++) r->val[j] = 1.0f;
        float *yi = m->f.item + (size_t)items[i] * k;
        pi.reg = row_reg(m, r->n);
        if ((rc = mp_ials_solve(&pi, r->idx, r->val, r->n, x + k, work))) goto notpd;
        gram_rank1(m->gram_items, yi, k, -1.0);
        memcpy(yi, x + k, k * sizeof *x);
        gram_rank1(m->gram_items, yi, k, 1.0);
    }
    gram_refresh(m->gram_items, m->gram_items_f, k);
    goto out;
oom:
    rc = mp_error_set(err, MP_ENOMEM, "als: out of memory applying %zu events", n);
    goto out;
notpd:
    rc = mp_error_set(err, rc, "als: fold-in system is not positive definite; use regularization > 0");
out:
    free(users);
    free(items);
    free(x);
    free(work);
    return rc;
}

/* Forgets user u: its vector becomes zero (the Gram of the user factors follows) and its row an allocated empty row,
 * which user_row prefers to the fitted matrix, so neither fold-in of new items nor a request sees its old events. */
static int als_forget_user(void *impl, uint32_t u, const mp_interaction *events, size_t n, mp_error *err) {
    als *m = impl;
    (void)events;
    (void)n;
    if (u >= m->f.n_users) return MP_OK; /* the model never knew the user */
    const uint32_t k = m->f.k;
    if (m->n_rows_alloc < m->f.n_users) {
        als_row *r = realloc(m->rows, (size_t)m->f.n_users * sizeof *r);
        if (!r) return mp_error_set(err, MP_ENOMEM, "als: out of memory forgetting user %u", u);
        memset(r + m->n_rows_alloc, 0, (m->f.n_users - m->n_rows_alloc) * sizeof *r);
        m->rows = r;
        m->n_rows_alloc = m->f.n_users;
    }
    als_row *r = &m->rows[u];
    if (!r->idx && row_reserve(r, 1)) return mp_error_set(err, MP_ENOMEM, "als: out of memory forgetting user %u", u);
    r->n = 0;
    float *xu = m->f.user + (size_t)u * k;
    gram_rank1(m->gram_users, xu, k, -1.0);
    memset(xu, 0, k * sizeof *xu);
    gram_refresh(m->gram_users, m->gram_users_f, k);
    return MP_OK;
}

/* ---- save / load ---- */

static int als_save(const void *impl, mp_mf_writer *w, mp_error *err) {
    const als *m = impl;
    mp_params_put(als_params, ALS_N_HEAD, m, w);
    mp_mf_put_u32(w, m->sweeps_done);
    mp_mf_put_f64(w, m->valid_ndcg);
    mp_mf_put_f32s(w, m->type_weight, MP_EV_NTYPES);
    mp_mf_put_f64(w, m->half_life_days);
    mp_mf_put_u64(w, (uint64_t)m->now);
    mp_mf_put_u32(w, (uint32_t)m->binary);
    mp_factors_save(&m->f, w);
    /* the current user x item matrix (fitted rows merged with updates), as row lengths + columns + values */
    const uint32_t nu = m->f.n_users;
    uint32_t *len = malloc(((size_t)nu + 1) * sizeof *len);
    if (!len) return mp_error_set(err, MP_ENOMEM, "als: out of memory saving");
    uint64_t nnz = 0;
    for (uint32_t u = 0; u < nu; u++) {
        const uint32_t *idx;
        const float *val;
        size_t rn;
        user_row(m, u, &idx, &val, &rn);
        len[u] = (uint32_t)rn;
        nnz += rn;
    }
    mp_mf_put_u32s(w, len, nu);
    free(len);
    mp_mf_put_u64(w, nnz);
    for (uint32_t u = 0; u < nu; u++) {
        const uint32_t *idx;
        const float *val;
        size_t rn;
        user_row(m, u, &idx, &val, &rn);
        if (rn) mp_mf_put_bytes(w, idx, rn * sizeof *idx);
    }
    for (uint32_t u = 0; u < nu; u++) {
        const uint32_t *idx;
        const float *val;
        size_t rn;
        user_row(m, u, &idx, &val, &rn);
        if (rn) mp_mf_put_bytes(w, val, rn * sizeof *val);
    }
    mp_item_titles_save(w, m->titles, m->f.n_items);
    mp_params_put(als_params + ALS_N_HEAD, MP_PARAM_COUNT(als_params) - ALS_N_HEAD, m, w);
    return MP_OK;
}

static int corrupt(mp_error *err, const char *what) {
    return mp_error_set(err, MP_ECORRUPT, "als payload: %s", what);
}

static int als_load(void *impl, mp_mf_reader *r, mp_error *err) {
    als *m = impl;
    als_release(m);
    uint32_t binary;
    uint64_t now, nnz;
    int rc;
    if ((rc = mp_params_get(als_params, ALS_N_HEAD, m, r, "als", err)) ||
        (rc = mp_mf_get_u32(r, &m->sweeps_done, err)) || (rc = mp_mf_get_f64(r, &m->valid_ndcg, err)) ||
        (rc = mp_mf_get_f32s(r, m->type_weight, MP_EV_NTYPES, err)) ||
        (rc = mp_mf_get_f64(r, &m->half_life_days, err)) || (rc = mp_mf_get_u64(r, &now, err)) ||
        (rc = mp_mf_get_u32(r, &binary, err)))
        goto fail;
    if (binary > 1 || !(m->half_life_days >= 0) || !isfinite(m->half_life_days)) {
        rc = corrupt(err, "parameters out of range");
        goto fail;
    }
    /* the reference time is subtracted from event times: keep it within accepted timestamps (years 1..9999) */
    if ((int64_t)now < -62135596800LL || (int64_t)now > 253402300799LL) {
        rc = corrupt(err, "reference time out of range");
        goto fail;
    }
    m->binary = (int)binary;
    m->now = (int64_t)now;
    if ((rc = mp_factors_load(&m->f, r, err))) goto fail;
    if (m->f.k != m->factors) {
        rc = corrupt(err, "factor count does not match the parameters");
        goto fail;
    }
    const uint32_t nu = m->f.n_users, ni = m->f.n_items;
    if ((uint64_t)nu * 4 > mp_mf_remaining(r)) {
        rc = corrupt(err, "user count does not match the file size");
        goto fail;
    }
    m->ui.n_rows = nu;
    m->ui.n_cols = ni;
    m->ui.ptr = malloc(((size_t)nu + 1) * sizeof *m->ui.ptr);
    uint32_t *len = malloc(((size_t)nu + 1) * sizeof *len);
    if (!m->ui.ptr || !len) {
        free(len);
        goto oom;
    }
    if ((rc = mp_mf_get_u32s(r, len, nu, err)) || (rc = mp_mf_get_u64(r, &nnz, err))) {
        free(len);
        goto fail;
    }
    m->ui.ptr[0] = 0;
    for (uint32_t u = 0; u < nu; u++) m->ui.ptr[u + 1] = m->ui.ptr[u] + len[u];
    free(len);
    if (m->ui.ptr[nu] != nnz || nnz * 8 > mp_mf_remaining(r)) {
        rc = corrupt(err, "matrix size does not match the row lengths or the file size");
        goto fail;
    }
    m->ui.idx = malloc((nnz + 1) * sizeof *m->ui.idx);
    m->ui.val = malloc((nnz + 1) * sizeof *m->ui.val);
    if (!m->ui.idx || !m->ui.val) goto oom;
    if ((rc = mp_mf_get_bytes(r, m->ui.idx, nnz * sizeof *m->ui.idx, err)) ||
        (rc = mp_mf_get_bytes(r, m->ui.val, nnz * sizeof *m->ui.val, err)))
        goto fail;
    for (uint32_t u = 0; u < nu; u++)
        for (uint64_t p = m->ui.ptr[u]; p < m->ui.ptr[u + 1]; p++)
            if (m->ui.idx[p] >= ni || (p > m->ui.ptr[u] && m->ui.idx[p] <= m->ui.idx[p - 1]) ||
                !(m->ui.val[p] > 0) || !isfinite(m->ui.val[p])) {
                rc = corrupt(err, "matrix entry out of range or out of order");
                goto fail;
            }
    if ((rc = mp_item_titles_load(r, &m->titles, ni, "als", err))) goto fail;
    if ((rc = mp_params_get(als_params + ALS_N_HEAD, MP_PARAM_COUNT(als_params) - ALS_N_HEAD, m, r, "als", err)))
        goto fail;
    if (alloc_grams(m)) goto oom;
    gram_both(m->f.item, ni, m->f.k, m->gram_items, m->gram_items_f);
    gram_both(m->f.user, nu, m->f.k, m->gram_users, m->gram_users_f);
    return MP_OK;
oom:
    rc = mp_error_set(err, MP_ENOMEM, "als: out of memory loading the model");
fail:
    als_release(m);
    return rc;
}

static uint32_t als_n_items(const void *impl) { return ((const als *)impl)->f.n_items; }

const mp_model_ops mp_als_ops = {
    .name = "als",
    .summary = "implicit-feedback matrix factorisation (ALS with CG or Cholesky; fold-in, explanations)",
    .file_version = ALS_FILE_VERSION,
    .impl_size = sizeof(als),
    .params = als_params,
    .n_params = MP_PARAM_COUNT(als_params),
    .params_offset = 0,
    .params_size = sizeof(als),
    .init = als_init,
    .fit = als_fit,
    .score_all = als_score_all,
    .similar = als_similar,
    .explain = als_explain,
    .update = als_update,
    .save = als_save,
    .load = als_load,
    .release = als_release,
    .n_items = als_n_items,
    .item_vectors = als_item_vectors,
    .query_vector = als_query_vector,
    .forget_user = als_forget_user,
};
