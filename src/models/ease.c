/* "ease": Embarrassingly Shallow Autoencoder (Steck 2019), closed form.
 *
 *   G = X^T X                               (n_items x n_items Gram of the user x item matrix X, cf_input.h)
 *   P = (G + diag(lambda + dropout / (1 - dropout) * G_ii))^{-1}
 *   B = I - P diag(1 / diag(P))             i.e. B[j][i] = -P[j][i] / P[i][i] for j != i, B[i][i] = 0
 * dropout = 0 is plain EASE; dropout > 0 adds the emphasised-denoising penalty of Steck's EDLAE (2020), which
 * regularises popular items more. A user is scored from ctx->history: score = x_u^T B (row combination of B),
 * so the model reacts to new events at once and serves anonymous sessions; update() has nothing to do.
 *
 * The inverse goes through a Cholesky factorisation: LAPACK ?potrf/?potri when built with OpenBLAS, else a
 * plain-C blocked-free kernel (solver=plain forces it). Everything happens in one n x n buffer (Gram, factor,
 * inverse and B in place; with precision=double the result is narrowed to float in place), so the peak is
 * n^2 * (8 or 4) bytes. fit estimates that before allocating and refuses above max_memory_gb or above the
 * memory the system has available, with a message naming both. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_input.h"
#include "magpie/model.h"
#include "models/params.h"

#define EASE_FILE_VERSION 1
#define GIB (1024.0 * 1024.0 * 1024.0)

typedef struct ease {
    /* parameters */
    double lambda;        /* > 0: L2 regularisation */
    double dropout;       /* [0, 0.95]: EDLAE emphasis */
    int input;            /* cf_xmode: how events become x_ui */
    int use_double;       /* 1: Gram and inverse in double precision (index into precision_names) */
    int plain;            /* 1: plain-C inverse even when LAPACK is available (index into solver_names) */
    double max_memory_gb; /* refuse to fit above this estimate */
    double recency;       /* > 0: history weight half-life in items at scoring time */
    int recency_auto;     /* 1: recency chosen at fit time on validation events (cf_pick_recency) */

    /* fitted state (owned) */
    uint32_t n_items;
    float type_weight[MP_EV_NTYPES];
    float *b;      /* [n_items * n_items] row-major: b[j * n + i] = B[j][i], weight of history item j for item i */
    char **titles; /* [n_items] or NULL */
} ease;

static const char *const precision_names[] = {"float", "double"};
static const char *const solver_names[] = {"auto", "plain"};

/* The parameters are ease's first fields: the descriptors' offsets are into ease itself. */
static const mp_param_info ease_params[] = {
    MP_P_REAL("lambda", ease, lambda, "300", 0, 1e15, "L2 regularisation added to the Gram diagonal (> 0)",
              .lo_open = 1, MP_TUNED_LOG(10, 3000)),
    MP_P_REAL("dropout", ease, dropout, "0", 0, 0.95,
              "EDLAE emphasis in [0, 0.95): adds dropout/(1-dropout) * item count to the diagonal",
              MP_TUNED_LINEAR(0, 0.5)),
    MP_P_CHOICE("input", ease, input, "binary", cf_xmode_names,
                "user-item values: binary, weighted (sum of event-type weights) or rating (rating value)"),
    MP_P_CHOICE("precision", ease, use_double, "float", precision_names,
                "arithmetic of the Gram and its inverse: double or float (half the memory)"),
    MP_P_CHOICE("solver", ease, plain, "auto", solver_names,
                "auto (LAPACK when built with BLAS) or plain (the plain-C Cholesky inverse)"),
    MP_P_REAL("max_memory_gb", ease, max_memory_gb, "16", 0, 1e9,
              "refuse to fit when the n_items^2 matrix would need more than this many GiB", .lo_open = 1),
    MP_P_REAL_AUTO("recency", ease, recency, recency_auto, "auto", 0, 1e9,
                   "history half-life in items: the r-th most recent item weighs 0.5^(r / recency); 0: all "
                   "equal; auto: chosen from 0, 1, 2, 4, 8 on validation events when there are any, else 0"),
    {NULL},
};

static void ease_release(void *impl) {
    ease *m = impl;
    free(m->b);
    mp_item_titles_free(m->titles, m->n_items);
    m->b = NULL;
    m->titles = NULL;
    m->n_items = 0;
}

/* Bytes the system can still give us (MemAvailable), or 0 when unknown. */
static double available_bytes(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        unsigned long long kb = 0;
        int found = 0;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                found = 1;
                break;
            }
        fclose(f);
        if (found) return (double)kb * 1024.0;
    }
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (double)pages * (double)page : 0;
}

#ifdef MP_HAVE_CBLAS
/* LAPACK (Fortran interface, in libopenblas). Column-major; our matrices are symmetric, so row-major 'U' is
 * column-major 'L'. */
extern void spotrf_(const char *uplo, const int *n, float *a, const int *lda, int *info);
extern void spotri_(const char *uplo, const int *n, float *a, const int *lda, int *info);
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);
#endif

/* The numeric kernels, once per precision T:
 *   gram_T(a, xt, x, n, nt)       a (n,n) = X^T X from xt (item x user) and x (user x item), full
 *   inverse_plain_T(a, n, d, nt)  a (n,n) SPD -> its inverse, full; d: [n] scratch. MP_ERANGE if not SPD
 *   to_b_T(a, n, nt)              a = P -> B (zero diagonal)
 * The plain inverse works in place:
 *   1. Cholesky A = L L^T by columns: L strictly below the diagonal in a, diag(L) in d.
 *   2. M = L^{-1} (lower), written transposed (M^T is upper) into the upper triangle and diagonal of a; column j
 *      of M only reads rows of L to the left of the diagonal, so the two never collide.
 *   3. P = M^T M: P[r][c] = sum_{k >= max(r,c)} M^T[r][k] M^T[c][k] reads only the upper triangle; the strictly
 *      lower part of P is written below the diagonal, diag(P) into d, then mirrored. */
#define EASE_KERNELS(T, SUF)                                                                                          \
    static void gram_##SUF(T *a, const mp_csr *xt, const mp_csr *x, uint32_t n, int nt) {                            \
        _Pragma("omp parallel for schedule(dynamic, 16) num_threads(nt)") for (uint32_t i = 0; i < n; i++) {        \
            T *row = a + (size_t)i * n;                                                                               \
            memset(row, 0, (size_t)n * sizeof *row);                                                                  \
            for (uint64_t p = xt->ptr[i]; p < xt->ptr[i + 1]; p++) {                                                  \
                uint32_t u = xt->idx[p];                                                                              \
                T xi = (T)xt->val[p];                                                                                 \
                for (uint64_t q = x->ptr[u]; q < x->ptr[u + 1]; q++) row[x->idx[q]] += xi * (T)x->val[q];             \
            }                                                                                                         \
        }                                                                                                             \
    }                                                                                                                 \
    static T dot_##SUF(const T *p, const T *q, size_t len) {                                                          \
        T s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                                                             \
        size_t k = 0;                                                                                                 \
        for (; k + 4 <= len; k += 4) {                                                                                \
            s0 += p[k] * q[k];                                                                                        \
            s1 += p[k + 1] * q[k + 1];                                                                                \
            s2 += p[k + 2] * q[k + 2];                                                                                \
            s3 += p[k + 3] * q[k + 3];                                                                                \
        }                                                                                                             \
        for (; k < len; k++) s0 += p[k] * q[k];                                                                       \
        return (s0 + s1) + (s2 + s3);                                                                                 \
    }                                                                                                                 \
    static int inverse_plain_##SUF(T *a, size_t n, T *d, int nt) {                                                    \
        int bad = 0;                                                                                                  \
        for (size_t j = 0; j < n && !bad; j++) {                                                                      \
            T *rj = a + j * n;                                                                                        \
            T s = rj[j] - dot_##SUF(rj, rj, j);                                                                       \
            if (!(s > 0)) {                                                                                           \
                bad = 1;                                                                                              \
                break;                                                                                                \
            }                                                                                                         \
            d[j] = (T)sqrt((double)s);                                                                                \
            T inv = (T)1 / d[j];                                                                                      \
            _Pragma("omp parallel for schedule(static) num_threads(nt)") for (size_t i = j + 1; i < n; i++) {       \
                T *ri = a + i * n;                                                                                    \
                ri[j] = (ri[j] - dot_##SUF(ri, rj, j)) * inv;                                                         \
            }                                                                                                         \
        }                                                                                                             \
        if (bad) return MP_ERANGE;                                                                                    \
        /* column j of M = L^{-1} into row j of the upper triangle */                                                \
        _Pragma("omp parallel for schedule(dynamic, 8) num_threads(nt)") for (size_t j = 0; j < n; j++) {           \
            T *mj = a + j * n; /* mj[i] = M[i][j], i >= j */                                                          \
            mj[j] = (T)1 / d[j];                                                                                      \
            for (size_t i = j + 1; i < n; i++) {                                                                      \
                const T *li = a + i * n; /* L[i][k], k < i */                                                         \
                mj[i] = -dot_##SUF(li + j, mj + j, i - j) / d[i];                                                     \
            }                                                                                                         \
        }                                                                                                             \
        _Pragma("omp parallel for schedule(dynamic, 8) num_threads(nt)") for (size_t r = 0; r < n; r++) {           \
            const T *mr = a + r * n;                                                                                  \
            for (size_t c = 0; c < r; c++) {                                                                          \
                const T *mc = a + c * n;                                                                              \
                a[r * n + c] = dot_##SUF(mr + r, mc + r, n - r);                                                      \
            }                                                                                                         \
        }                                                                                                             \
        /* the diagonal last: row r's dot above read a[r][r] (= M[r][r]) */                                          \
        for (size_t r = 0; r < n; r++) d[r] = dot_##SUF(a + r * n + r, a + r * n + r, n - r);                         \
        for (size_t r = 0; r < n; r++) {                                                                              \
            a[r * n + r] = d[r];                                                                                      \
            for (size_t c = 0; c < r; c++) a[c * n + r] = a[r * n + c];                                               \
        }                                                                                                             \
        return MP_OK;                                                                                                 \
    }                                                                                                                 \
    static void to_b_##SUF(T *a, size_t n, T *d, int nt) {                                                            \
        for (size_t i = 0; i < n; i++) d[i] = (T)-1 / a[i * n + i];                                                   \
        _Pragma("omp parallel for schedule(static) num_threads(nt)") for (size_t j = 0; j < n; j++) {               \
            T *row = a + j * n;                                                                                       \
            for (size_t i = 0; i < n; i++) row[i] *= d[i];                                                            \
            row[j] = 0;                                                                                               \
        }                                                                                                             \
    }

EASE_KERNELS(double, d)
EASE_KERNELS(float, s)

/* Mirrors the (row-major) upper triangle into the lower one. */
#define EASE_MIRROR_UPPER(T, a, n)                                                                                    \
    do {                                                                                                              \
        for (size_t r_ = 0; r_ < (n); r_++)                                                                           \
            for (size_t c_ = r_ + 1; c_ < (n); c_++) (a)[c_ * (n) + r_] = (a)[r_ * (n) + c_];                        \
    } while (0)

/* a (n,n) SPD -> inverse, full. MP_ERANGE if not positive definite. */
static int inverse_d(double *a, size_t n, double *d, int plain, int nt) {
#ifdef MP_HAVE_CBLAS
    if (!plain) {
        int ni = (int)n, info = 0;
        dpotrf_("L", &ni, a, &ni, &info);
        if (info != 0) return MP_ERANGE;
        dpotri_("L", &ni, a, &ni, &info);
        if (info != 0) return MP_ERANGE;
        EASE_MIRROR_UPPER(double, a, n);
        return MP_OK;
    }
#endif
    (void)plain;
    return inverse_plain_d(a, n, d, nt);
}

static int inverse_s(float *a, size_t n, float *d, int plain, int nt) {
#ifdef MP_HAVE_CBLAS
    if (!plain) {
        int ni = (int)n, info = 0;
        spotrf_("L", &ni, a, &ni, &info);
        if (info != 0) return MP_ERANGE;
        spotri_("L", &ni, a, &ni, &info);
        if (info != 0) return MP_ERANGE;
        EASE_MIRROR_UPPER(float, a, n);
        return MP_OK;
    }
#endif
    (void)plain;
    return inverse_plain_s(a, n, d, nt);
}

/* Narrows n2 doubles at buf to floats at the start of the same buffer, front to back: float k occupies bytes
 * [4k, 4k + 4), inside double k/2, which has already been read. memcpy keeps it free of aliasing questions. */
static void narrow_in_place(void *buf, size_t n2) {
    unsigned char *p = buf;
    for (size_t k = 0; k < n2; k++) {
        double v;
        memcpy(&v, p + k * sizeof v, sizeof v);
        float f = (float)v;
        memcpy(p + k * sizeof f, &f, sizeof f);
    }
}

/* Bytes fit needs for n items at this precision (the one n x n buffer; X is small beside it). */
static double ease_fit_bytes(uint32_t n, int use_double) {
    return (double)n * (double)n * (use_double ? 8.0 : 4.0);
}

static int ease_score_all(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err);

static int ease_fit(void *impl, const mp_train_data *data, const mp_progress *progress, mp_error *err) {
    ease *m = impl;
    ease_release(m);
    if (!data->events || data->n_events == 0) return mp_error_set(err, MP_EEMPTY, "ease: no training events");
    uint32_t n = data->n_items;
    if (n == 0) return mp_error_set(err, MP_EEMPTY, "ease: no items");
    double need = ease_fit_bytes(n, m->use_double), limit = m->max_memory_gb * GIB;
    if (need > limit)
        return mp_error_set(err, MP_ERANGE,
                            "ease: the %u x %u item-item matrix needs about %.2f GiB in %s precision, above "
                            "max_memory_gb=%g; raise max_memory_gb, use precision=float (%.2f GiB) or train on "
                            "fewer items",
                            n, n, need / GIB, m->use_double ? "double" : "float", m->max_memory_gb,
                            ease_fit_bytes(n, 0) / GIB);
    double avail = available_bytes();
    if (avail > 0 && need > avail)
        return mp_error_set(err, MP_ENOMEM,
                            "ease: the %u x %u item-item matrix needs about %.2f GiB in %s precision, but only "
                            "%.2f GiB of memory is available; use precision=float (%.2f GiB) or fewer items",
                            n, n, need / GIB, m->use_double ? "double" : "float", avail / GIB,
                            ease_fit_bytes(n, 0) / GIB);

    cf_type_weights(data, m->type_weight);
    mp_csr x = {0}, xt = {0};
    int rc = cf_build_x(&x, data, m->input, m->type_weight, err);
    if (rc) return mp_error_prefix(err, "ease");
    if ((rc = mp_csr_transpose(&xt, &x, err))) {
        mp_csr_free(&x);
        return mp_error_prefix(err, "ease");
    }
    size_t nn = (size_t)n * n, es = m->use_double ? sizeof(double) : sizeof(float);
    void *a = malloc(nn * es);
    void *d = malloc((size_t)n * es);
    if (!a || !d) {
        free(a);
        free(d);
        mp_csr_free(&x);
        mp_csr_free(&xt);
        return mp_error_set(err, MP_ENOMEM, "ease: out of memory for the %u x %u item-item matrix (%.2f GiB)", n, n,
                            need / GIB);
    }
    int nt = data->n_threads > 0 ? data->n_threads : omp_get_max_threads();
    double pen = m->dropout / (1.0 - m->dropout);
    mp_progress_report(progress, "gram", 0, n);
    if (m->use_double) {
        double *g = a;
        gram_d(g, &xt, &x, n, nt);
        for (size_t i = 0; i < n; i++) g[i * n + i] += m->lambda + pen * g[i * n + i];
    } else {
        float *g = a;
        gram_s(g, &xt, &x, n, nt);
        for (size_t i = 0; i < n; i++) g[i * n + i] += (float)(m->lambda + pen * g[i * n + i]);
    }
    mp_csr_free(&x);
    mp_csr_free(&xt);
    mp_progress_report(progress, "gram", n, n);
    mp_progress_report(progress, "inverse", 0, n);
    rc = m->use_double ? inverse_d(a, n, d, m->plain, nt) : inverse_s(a, n, d, m->plain, nt);
    if (rc) {
        free(a);
        free(d);
        return mp_error_set(err, MP_ERANGE,
                            "ease: the regularised Gram matrix is not positive definite in %s precision "
                            "(lambda=%g); raise lambda or use precision=double",
                            m->use_double ? "double" : "float", m->lambda);
    }
    mp_progress_report(progress, "inverse", n, n);
    if (m->use_double) {
        to_b_d(a, n, d, nt);
        narrow_in_place(a, nn);
        float *shrunk = realloc(a, nn * sizeof(float));
        if (shrunk) a = shrunk;
    } else {
        to_b_s(a, n, d, nt);
    }
    free(d);
    if (mp_item_titles_copy(data->item_titles, data->n_items, &m->titles)) {
        free(a);
        return mp_error_set(err, MP_ENOMEM, "ease: out of memory copying %u titles", n);
    }
    m->b = a;
    m->n_items = n;
    if (m->recency_auto && (rc = cf_pick_recency(data, ease_score_all, m, &m->recency, err))) {
        ease_release(m);
        return mp_error_prefix(err, "ease: choosing recency");
    }
    mp_progress_report(progress, "fit", n, n);
    return MP_OK;
}

static int ease_score_all(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err) {
    const ease *m = impl;
    size_t n = m->n_items;
    memset(scores, 0, n * sizeof *scores);
    cf_pair *h;
    size_t nh;
    if (cf_history_pairs(ctx, m->input, m->type_weight, m->n_items, m->recency, &h, &nh))
        return mp_error_set(err, MP_ENOMEM, "ease: out of memory for a history of %zu events", ctx->n_history);
    for (size_t a = 0; a < nh; a++) {
        const float *row = m->b + (size_t)h[a].item * n;
        float x = h[a].value;
        for (size_t i = 0; i < n; i++) scores[i] += x * row[i];
    }
    free(h);
    return MP_OK;
}

static int ease_explain(const void *impl, const mp_user_ctx *ctx, uint32_t item, char *buf, size_t cap,
                        mp_error *err) {
    const ease *m = impl;
    if (item >= m->n_items) return mp_error_set(err, MP_ENOTFOUND, "ease: unknown item %u", item);
    cf_pair *h;
    size_t nh;
    if (cf_history_pairs(ctx, m->input, m->type_weight, m->n_items, m->recency, &h, &nh))
        return mp_error_set(err, MP_ENOMEM, "ease: out of memory for a history of %zu events", ctx->n_history);
    size_t best = SIZE_MAX;
    float best_c = 0;
    for (size_t a = 0; a < nh; a++) {
        float c = h[a].value * m->b[(size_t)h[a].item * m->n_items + item];
        if (c > best_c) {
            best_c = c;
            best = a;
        }
    }
    if (best != SIZE_MAX) cf_because_quoted(buf, cap, &h[best], m->titles);
    else if (nh == 0) snprintf(buf, cap, "no history yet: nothing to compare it with");
    else snprintf(buf, cap, "nothing in your history points to it");
    free(h);
    return MP_OK;
}

/* The items whose scores item's presence raises most: the largest positive entries of row `item` of B. */
static int ease_similar(const void *impl, uint32_t item, size_t n, uint32_t *out_items, float *out_scores,
                        size_t *n_out, mp_error *err) {
    const ease *m = impl;
    *n_out = 0;
    if (item >= m->n_items) return mp_error_set(err, MP_ENOTFOUND, "ease: unknown item %u", item);
    float *row = malloc((size_t)m->n_items * sizeof *row);
    if (!row) return mp_error_set(err, MP_ENOMEM, "ease: out of memory");
    const float *b = m->b + (size_t)item * m->n_items;
    for (uint32_t i = 0; i < m->n_items; i++) row[i] = b[i] > 0 ? b[i] : NAN;
    row[item] = NAN;
    size_t got = mp_topk(row, m->n_items, NULL, n, out_items);
    if (out_scores)
        for (size_t t = 0; t < got; t++) out_scores[t] = row[out_items[t]];
    *n_out = got;
    free(row);
    return MP_OK;
}

/* Nothing to do: scores come from ctx->history, which already holds the new events. Checks the events only. */
static int ease_update(void *impl, const mp_interaction *events, size_t n, mp_error *err) {
    (void)impl;
    for (size_t i = 0; i < n; i++)
        if (events[i].type >= MP_EV_NTYPES)
            return mp_error_set(err, MP_EINVAL, "ease: event %zu has unknown type %u", i, events[i].type);
    return MP_OK;
}

static int ease_save(const void *impl, mp_mf_writer *w, mp_error *err) {
    const ease *m = impl;
    (void)err;
    mp_params_put(ease_params, MP_PARAM_COUNT(ease_params), m, w);
    mp_mf_put_u32(w, m->n_items);
    mp_mf_put_f32s(w, m->type_weight, MP_EV_NTYPES);
    mp_mf_put_f32s(w, m->b, (size_t)m->n_items * m->n_items);
    mp_item_titles_save(w, m->titles, m->n_items);
    return MP_OK;
}

static int ease_load(void *impl, mp_mf_reader *r, mp_error *err) {
    ease *m = impl;
    ease_release(m);
    uint32_t n;
    int rc;
    if ((rc = mp_params_get(ease_params, MP_PARAM_COUNT(ease_params), m, r, "ease", err)) ||
        (rc = mp_mf_get_u32(r, &n, err)) || (rc = mp_mf_get_f32s(r, m->type_weight, MP_EV_NTYPES, err)))
        return rc;
    if ((double)n * n * 4.0 > (double)mp_mf_remaining(r))
        return mp_error_set(err, MP_ECORRUPT, "ease payload: item count %u does not fit the file", n);
    size_t nn = (size_t)n * n;
    m->b = malloc((nn ? nn : 1) * sizeof *m->b);
    if (!m->b) return mp_error_set(err, MP_ENOMEM, "ease: out of memory loading a %u x %u matrix", n, n);
    m->n_items = n;
    if ((rc = mp_mf_get_f32s(r, m->b, nn, err)) || (rc = mp_item_titles_load(r, &m->titles, n, "ease", err))) {
        ease_release(m);
        return rc;
    }
    return MP_OK;
}

static uint32_t ease_n_items(const void *impl) { return ((const ease *)impl)->n_items; }

const mp_model_ops mp_ease_ops = {
    .name = "ease",
    .summary = "EASE linear item-item autoencoder (Steck 2019), closed form; optional EDLAE dropout; real-time",
    .file_version = EASE_FILE_VERSION,
    .impl_size = sizeof(ease),
    .params = ease_params,
    .n_params = MP_PARAM_COUNT(ease_params),
    .params_offset = 0,
    .params_size = sizeof(ease),
    .fit = ease_fit,
    .score_all = ease_score_all,
    .similar = ease_similar,
    .explain = ease_explain,
    .update = ease_update,
    .save = ease_save,
    .load = ease_load,
    .release = ease_release,
    .n_items = ease_n_items,
};
