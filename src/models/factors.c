/* Latent-factor models' shared parts: factor matrices, scoring, batched top-N through sgemm, cosine item
 * similarity and the model-file encoding of the factors. */
#include "magpie/factors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "magpie/linalg.h"
#include "magpie/model.h"
#include "magpie/topk.h"

#define FACTORS_MAX_K 65536u           /* larger k in a file is taken as corruption */
#define TOPN_SCORE_FLOATS (8u << 20)   /* scores buffer of one block: 32 MiB */
#define TOPN_MAX_BLOCK 256u
#define TOPN_MIN_BLOCK 16u

int mp_factors_alloc(mp_factors *f, uint32_t n_users, uint32_t n_items, uint32_t k, int with_bias) {
    memset(f, 0, sizeof *f);
    f->n_users = n_users;
    f->n_items = n_items;
    f->k = k;
    f->user = calloc((size_t)n_users * k + 1, sizeof *f->user);
    f->item = calloc((size_t)n_items * k + 1, sizeof *f->item);
    if (with_bias) {
        f->user_bias = calloc((size_t)n_users + 1, sizeof *f->user_bias);
        f->item_bias = calloc((size_t)n_items + 1, sizeof *f->item_bias);
    }
    if (!f->user || !f->item || (with_bias && (!f->user_bias || !f->item_bias))) {
        mp_factors_free(f);
        return MP_ENOMEM;
    }
    return MP_OK;
}

void mp_factors_free(mp_factors *f) {
    if (!f) return;
    free(f->user);
    free(f->item);
    free(f->user_bias);
    free(f->item_bias);
    memset(f, 0, sizeof *f);
}

void mp_factors_init_normal(mp_factors *f, mp_rng *rng, float scale) {
    size_t nu = (size_t)f->n_users * f->k, ni = (size_t)f->n_items * f->k;
    for (size_t i = 0; i < nu; i++) f->user[i] = (float)(scale * mp_rng_normal(rng));
    for (size_t i = 0; i < ni; i++) f->item[i] = (float)(scale * mp_rng_normal(rng));
}

void mp_factors_score(const mp_factors *f, const float *uvec, float *scores) {
    mp_sgemv(f->n_items, f->k, f->item, f->k, uvec, scores);
    if (f->item_bias) {
        float g = (float)f->global_bias;
        for (uint32_t i = 0; i < f->n_items; i++) scores[i] += f->item_bias[i] + g;
    }
}

double mp_factors_predict(const mp_factors *f, uint32_t user, uint32_t item) {
    double s = f->global_bias;
    if (item < f->n_items && f->item_bias) s += f->item_bias[item];
    if (user < f->n_users && f->user_bias) s += f->user_bias[user];
    if (user < f->n_users && item < f->n_items)
        s += mp_dot(f->user + (size_t)user * f->k, f->item + (size_t)item * f->k, f->k);
    return s;
}

/* Users per sgemm block: as many as keep the score block near TOPN_SCORE_FLOATS, within [16, 256]. */
static size_t topn_block(uint32_t n_items) {
    size_t b = TOPN_SCORE_FLOATS / (n_items ? n_items : 1);
    if (b > TOPN_MAX_BLOCK) b = TOPN_MAX_BLOCK;
    if (b < TOPN_MIN_BLOCK) b = TOPN_MIN_BLOCK;
    return b;
}

int mp_factors_topn(const mp_factors *f, const uint32_t *users, size_t n_users_q, const mp_csr *exclude, size_t n,
                    uint32_t *out_items, float *out_scores, int n_threads, mp_error *err) {
    if (n_users_q == 0 || n == 0) return MP_OK;
    for (size_t q = 0; q < n_users_q; q++)
        if (users[q] >= f->n_users)
            return mp_error_set(err, MP_EINVAL, "top-n: user %u is out of range (the factors cover %u users)",
                                users[q], f->n_users);
    if (exclude && exclude->n_rows < f->n_users && exclude->ptr)
        for (size_t q = 0; q < n_users_q; q++)
            if (users[q] >= exclude->n_rows)
                return mp_error_set(err, MP_EINVAL,
                                    "top-n: user %u has no row in the exclusion matrix (%u rows)", users[q],
                                    exclude->n_rows);
    const size_t k = f->k, ni = f->n_items;
    const size_t block = topn_block(f->n_items);
    float *scores = malloc(block * (ni ? ni : 1) * sizeof *scores);
    float *ublock = malloc(block * (k ? k : 1) * sizeof *ublock);
    if (!scores || !ublock) {
        free(scores);
        free(ublock);
        return mp_error_set(err, MP_ENOMEM, "top-n: out of memory for a block of %zu users x %zu items", block, ni);
    }
    const float g = (float)f->global_bias;
    int nt = n_threads > 0 ? n_threads : 1;
#ifdef _OPENMP
    if (n_threads <= 0) nt = omp_get_max_threads();
#endif
    for (size_t q0 = 0; q0 < n_users_q; q0 += block) {
        size_t nb = n_users_q - q0 < block ? n_users_q - q0 : block;
        for (size_t b = 0; b < nb; b++) memcpy(ublock + b * k, f->user + (size_t)users[q0 + b] * k, k * sizeof(float));
        /* BLAS is called outside the parallel region: the pthread OpenBLAS runs its own threads. */
        if (k > 0) mp_sgemm_nt(nb, ni, k, 1.0f, ublock, k, f->item, k, 0.0f, scores, ni);
        else memset(scores, 0, nb * ni * sizeof *scores);
        int rank_rc = MP_OK;
#pragma omp parallel for schedule(dynamic, 4) num_threads(nt)
        for (size_t b = 0; b < nb; b++) {
            float *row = scores + b * ni;
            uint32_t u = users[q0 + b];
            if (f->item_bias)
                for (size_t i = 0; i < ni; i++) row[i] += f->item_bias[i] + g;
            if (exclude && exclude->ptr && u < exclude->n_rows)
                for (uint64_t p = exclude->ptr[u]; p < exclude->ptr[u + 1]; p++)
                    if (exclude->idx[p] < ni) row[exclude->idx[p]] = NAN; /* NaN never ranks in mp_topk */
            uint32_t *oi = out_items + (q0 + b) * n;
            size_t got;
            int trc = mp_topk(row, ni, NULL, n, oi, &got);
            if (trc != MP_OK) {
#pragma omp atomic write
                rank_rc = trc;
            }
            for (size_t j = 0; j < got; j++)
                if (out_scores) out_scores[(q0 + b) * n + j] = row[oi[j]];
            for (size_t j = got; j < n; j++) {
                oi[j] = UINT32_MAX;
                if (out_scores) out_scores[(q0 + b) * n + j] = -INFINITY;
            }
        }
        if (rank_rc != MP_OK) {
            free(scores);
            free(ublock);
            return mp_error_set(err, rank_rc, "top-n: cannot rank %zu items: %s", ni, mp_strerror(rank_rc));
        }
    }
    free(scores);
    free(ublock);
    return MP_OK;
}

int mp_factors_similar(const mp_factors *f, uint32_t item, size_t n, uint32_t *out_items, float *out_scores,
                       size_t *n_out, mp_error *err) {
    *n_out = 0;
    if (item >= f->n_items)
        return mp_error_set(err, MP_ENOTFOUND, "similar: unknown item %u (the factors cover %u items)", item,
                            f->n_items);
    if (n == 0) return MP_OK;
    const size_t k = f->k;
    float *scores = malloc(((size_t)f->n_items + 1) * sizeof *scores);
    if (!scores) return mp_error_set(err, MP_ENOMEM, "similar: out of memory for %u items", f->n_items);
    const float *q = f->item + (size_t)item * k;
    mp_sgemv(f->n_items, k, f->item, k, q, scores);
    float qn = sqrtf(mp_dot(q, q, k));
    for (uint32_t i = 0; i < f->n_items; i++) {
        const float *v = f->item + (size_t)i * k;
        float norm = sqrtf(mp_dot(v, v, k)) * qn;
        scores[i] = norm > 0 ? scores[i] / norm : NAN; /* an all-zero vector has no direction */
    }
    scores[item] = NAN;
    int rc = mp_topk(scores, f->n_items, NULL, n, out_items, n_out);
    if (rc) {
        free(scores);
        return mp_error_set(err, rc, "similar: cannot rank %u items: %s", f->n_items, mp_strerror(rc));
    }
    if (out_scores)
        for (size_t j = 0; j < *n_out; j++) out_scores[j] = scores[out_items[j]];
    free(scores);
    return MP_OK;
}

void mp_factors_save(const mp_factors *f, mp_mf_writer *w) {
    mp_mf_put_u32(w, f->n_users);
    mp_mf_put_u32(w, f->n_items);
    mp_mf_put_u32(w, f->k);
    mp_mf_put_u32(w, f->user_bias ? 1u : 0u);
    mp_mf_put_f64(w, f->global_bias);
    mp_mf_put_f32s(w, f->user, (size_t)f->n_users * f->k);
    mp_mf_put_f32s(w, f->item, (size_t)f->n_items * f->k);
    if (f->user_bias) {
        mp_mf_put_f32s(w, f->user_bias, f->n_users);
        mp_mf_put_f32s(w, f->item_bias, f->n_items);
    }
}

int mp_factors_load(mp_factors *f, mp_mf_reader *r, mp_error *err) {
    memset(f, 0, sizeof *f);
    uint32_t nu, ni, k, has_bias;
    double gb;
    int rc;
    if ((rc = mp_mf_get_u32(r, &nu, err)) || (rc = mp_mf_get_u32(r, &ni, err)) || (rc = mp_mf_get_u32(r, &k, err)) ||
        (rc = mp_mf_get_u32(r, &has_bias, err)) || (rc = mp_mf_get_f64(r, &gb, err)))
        return rc;
    if (has_bias > 1 || k == 0 || k > FACTORS_MAX_K || !isfinite(gb))
        return mp_error_set(err, MP_ECORRUPT, "factors: bad header (k %u, bias flag %u)", k, has_bias);
    /* Refuse shapes the payload cannot hold before allocating for them. */
    uint64_t need = ((uint64_t)nu + ni) * k * sizeof(float) + (has_bias ? ((uint64_t)nu + ni) * sizeof(float) : 0);
    if (need > mp_mf_remaining(r))
        return mp_error_set(err, MP_ECORRUPT,
                            "factors: shape %u users x %u items x %u factors needs %llu bytes, the file holds %zu",
                            nu, ni, k, (unsigned long long)need, mp_mf_remaining(r));
    if (mp_factors_alloc(f, nu, ni, k, (int)has_bias))
        return mp_error_set(err, MP_ENOMEM, "factors: out of memory for %u users x %u items x %u factors", nu, ni,
                            k);
    f->global_bias = gb;
    if ((rc = mp_mf_get_f32s(r, f->user, (size_t)nu * k, err)) || (rc = mp_mf_get_f32s(r, f->item, (size_t)ni * k, err)))
        goto fail;
    if (has_bias &&
        ((rc = mp_mf_get_f32s(r, f->user_bias, nu, err)) || (rc = mp_mf_get_f32s(r, f->item_bias, ni, err))))
        goto fail;
    return MP_OK;
fail:
    mp_factors_free(f);
    return rc;
}

/* ---- the same conjugate gradient with AVX2 + FMA kernels (x86-64, k a multiple of 8) ----
 * The hot loop is out = (YtY + reg I) v: YtY is symmetric, so it is computed as a sum of rows scaled by v[a], with
 * up to 64 outputs held in eight registers while YtY streams from L1 (one load per FMA). The sparse part reads
 * each y_j once per step: its dot product with v, then the axpy into out, while the rows a few non-zeros ahead
 * are prefetched (for the item side they are scattered over the user factors, far beyond the caches). */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define IALS_SIMD 1
#define SIMD_FN __attribute__((target("avx2,fma")))


SIMD_FN static inline void axpy8(float s, const float *x, float *y, size_t k) {
    __m256 b = _mm256_set1_ps(s);
    for (size_t i = 0; i < k; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(b, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
}

/* out (k) = init + sum_j coef[j] * row_j, row_j = base + (idx ? idx[j] : j) * k. Up to 64 outputs stay in
 * registers while the rows stream past (one load per FMA); init may alias out. */
#define RA_LOAD(q) __m256 a##q = _mm256_loadu_ps(init + c + 8 * q)
#define RA_FMA(q) a##q = _mm256_fmadd_ps(b, _mm256_loadu_ps(row + 8 * q), a##q)
#define RA_STORE(q) _mm256_storeu_ps(out + c + 8 * q, a##q)
#define RA_ROW const float *row = base + (size_t)(idx ? idx[j] : j) * k + c; __m256 b = _mm256_broadcast_ss(coef + j)

SIMD_FN static void rows_axpy8(const float *base, const uint32_t *idx, const float *coef, size_t n, const float *init,
                               float *out, size_t k) {
    size_t c = 0;
    for (; c + 64 <= k; c += 64) {
        RA_LOAD(0); RA_LOAD(1); RA_LOAD(2); RA_LOAD(3); RA_LOAD(4); RA_LOAD(5); RA_LOAD(6); RA_LOAD(7);
        for (size_t j = 0; j < n; j++) {
            RA_ROW;
            RA_FMA(0); RA_FMA(1); RA_FMA(2); RA_FMA(3); RA_FMA(4); RA_FMA(5); RA_FMA(6); RA_FMA(7);
        }
        RA_STORE(0); RA_STORE(1); RA_STORE(2); RA_STORE(3); RA_STORE(4); RA_STORE(5); RA_STORE(6); RA_STORE(7);
    }
    for (; c + 32 <= k; c += 32) {
        RA_LOAD(0); RA_LOAD(1); RA_LOAD(2); RA_LOAD(3);
        for (size_t j = 0; j < n; j++) {
            RA_ROW;
            RA_FMA(0); RA_FMA(1); RA_FMA(2); RA_FMA(3);
        }
        RA_STORE(0); RA_STORE(1); RA_STORE(2); RA_STORE(3);
    }
    for (; c < k; c += 8) {
        RA_LOAD(0);
        for (size_t j = 0; j < n; j++) {
            RA_ROW;
            RA_FMA(0);
        }
        RA_STORE(0);
    }
}

#define IALS_PREFETCH_AHEAD 4
#define IALS_BATCH 32

SIMD_FN static inline void prefetch_row(const float *y, size_t k) {
    for (size_t i = 0; i < k; i += 16) _mm_prefetch((const char *)(y + i), _MM_HINT_T0);
}

/* out += sum_j w_j y_j with w_j = alpha r_j (y_j . v), or, when x_mode, w_j = c_j - (c_j - 1) (y_j . v).
 * In batches: first the batch's dot products (independent, so they overlap), then one register-blocked pass. */
SIMD_FN static void sparse8(const mp_ials_problem *p, const uint32_t *idx, const float *val, size_t nnz,
                            const float *v, float *out, int x_mode) {
    const size_t k = p->k;
    float coef[IALS_BATCH];
    for (size_t j0 = 0; j0 < nnz; j0 += IALS_BATCH) {
        size_t nb = nnz - j0 < IALS_BATCH ? nnz - j0 : IALS_BATCH;
        for (size_t j = 0; j < nb; j++) {
            if (j0 + j + IALS_PREFETCH_AHEAD < nnz) prefetch_row(p->Y + (size_t)idx[j0 + j + IALS_PREFETCH_AHEAD] * k, k);
            float cm1 = p->alpha * val[j0 + j], d = mp_dot_simd(p->Y + (size_t)idx[j0 + j] * k, v, k);
            coef[j] = x_mode ? 1.0f + cm1 - cm1 * d : cm1 * d;
        }
        rows_axpy8(p->Y, idx + j0, coef, nb, out, out, k);
    }
}

SIMD_FN static void ials_cg_simd(const mp_ials_problem *p, const uint32_t *idx, const float *val, size_t nnz, float *x,
                                 unsigned steps, float *work) {
    const size_t k = p->k;
    float *r = work, *d = work + k, *Ad = work + 2 * k;
    /* r = -(YtY + reg I) x, then the sparse part */
    for (size_t a = 0; a < k; a++) Ad[a] = p->reg * x[a];
    rows_axpy8(p->YtY, NULL, x, k, Ad, Ad, k);
    for (size_t a = 0; a < k; a++) r[a] = -Ad[a];
    sparse8(p, idx, val, nnz, x, r, 1);
    memcpy(d, r, k * sizeof *d);
    float rs = mp_dot_simd(r, r, k);
    for (unsigned s = 0; s < steps; s++) {
        if (!(rs > 1e-20f)) break;
        for (size_t a = 0; a < k; a++) Ad[a] = p->reg * d[a];
        rows_axpy8(p->YtY, NULL, d, k, Ad, Ad, k); /* YtY symmetric: YtY d = sum_a d[a] YtY[a] */
        sparse8(p, idx, val, nnz, d, Ad, 0);
        float dAd = mp_dot_simd(d, Ad, k);
        if (!(dAd > 0)) break;
        float step = rs / dAd;
        axpy8(step, d, x, k);
        axpy8(-step, Ad, r, k);
        float rs_new = mp_dot_simd(r, r, k);
        __m256 beta = _mm256_set1_ps(rs_new / rs);
        for (size_t a = 0; a < k; a += 8)
            _mm256_storeu_ps(d + a, _mm256_fmadd_ps(beta, _mm256_loadu_ps(d + a), _mm256_loadu_ps(r + a)));
        rs = rs_new;
    }
}
/* A (k,k) float, full = sum_j alpha r_j y_j y_j^T (row a is sum_j (alpha r_j y_j[a]) y_j, one register-blocked
 * pass per row of A and batch of non-zeros); b (k) += sum_j c_j y_j. */
SIMD_FN static void ials_normal_simd(const mp_ials_problem *p, const uint32_t *idx, const float *val, size_t nnz,
                                     float *A, double *b) {
    const size_t k = p->k;
    float coef[IALS_BATCH];
    memset(A, 0, k * k * sizeof *A);
    for (size_t j0 = 0; j0 < nnz; j0 += IALS_BATCH) {
        size_t nb = nnz - j0 < IALS_BATCH ? nnz - j0 : IALS_BATCH;
        for (size_t j = 0; j < nb; j++) {
            const float *y = p->Y + (size_t)idx[j0 + j] * k;
            double c = 1.0 + (double)p->alpha * val[j0 + j];
            for (size_t a = 0; a < k; a++) b[a] += c * y[a];
        }
        for (size_t a = 0; a < k; a++) {
            for (size_t j = 0; j < nb; j++) coef[j] = p->alpha * val[j0 + j] * p->Y[(size_t)idx[j0 + j] * k + a];
            rows_axpy8(p->Y, idx + j0, coef, nb, A + a * k, A + a * k, k);
        }
    }
}
#endif

/* 1 when the SIMD kernels can run for k on this CPU. */
static int ials_simd_ok(size_t k) {
#ifdef IALS_SIMD
    return k % 8 == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    (void)k;
    return 0;
#endif
}


/* ---- implicit-feedback least squares, one row ---- */

/* A (k*k doubles), b or z (k), and room for a float copy of A (k*k floats) for the vector kernels. */
size_t mp_ials_work_doubles(uint32_t k) { return (size_t)k * k + 2 * (size_t)k + ((size_t)k * k + 1) / 2 + 1; }

/* Lower triangle of A (k,k) = YtY + reg I + sum_j (c_j - 1) y_j y_j^T and b = sum_j c_j y_j, in double. */
static void ials_normal_equations(const mp_ials_problem *p, const uint32_t *idx, const float *val, size_t nnz,
                                  double *A, double *b) {
    const size_t k = p->k;
    for (size_t a = 0; a < k; a++) {
        for (size_t c = 0; c <= a; c++) A[a * k + c] = p->YtY[a * k + c];
        A[a * k + a] += p->reg;
        b[a] = 0;
    }
#ifdef IALS_SIMD
    if (ials_simd_ok(k)) {
        float *Af = (float *)(b + 2 * k); /* the tail of the work area (see mp_ials_work_doubles) */
        ials_normal_simd(p, idx, val, nnz, Af, b);
        for (size_t a = 0; a < k; a++)
            for (size_t c = 0; c <= a; c++) A[a * k + c] += Af[a * k + c];
        return;
    }
#endif
    for (size_t j = 0; j < nnz; j++) {
        const float *y = p->Y + (size_t)idx[j] * k;
        double cm1 = (double)p->alpha * val[j];
        for (size_t a = 0; a < k; a++) {
            double ya = cm1 * y[a];
            double *row = A + a * k;
            for (size_t c = 0; c <= a; c++) row[c] += ya * y[c];
            b[a] += (1.0 + cm1) * y[a];
        }
    }
}

int mp_ials_solve(const mp_ials_problem *p, const uint32_t *idx, const float *val, size_t nnz, float *x,
                  double *work) {
    const size_t k = p->k;
    if (nnz == 0) {
        memset(x, 0, k * sizeof *x);
        return MP_OK;
    }
    double *A = work, *b = work + k * k;
    ials_normal_equations(p, idx, val, nnz, A, b);
    int rc = mp_cholesky_factor(A, k);
    if (rc) return rc;
    mp_cholesky_solve_factored(A, b, k);
    for (size_t a = 0; a < k; a++) x[a] = (float)b[a];
    return MP_OK;
}

int mp_ials_explain(const mp_ials_problem *p, const uint32_t *idx, const float *val, size_t nnz, const float *target,
                    double *contrib, double *score, double *work) {
    const size_t k = p->k;
    *score = 0;
    if (nnz == 0) return MP_OK;
    double *A = work, *z = work + k * k;
    ials_normal_equations(p, idx, val, nnz, A, z);
    int rc = mp_cholesky_factor(A, k);
    if (rc) return rc;
    for (size_t a = 0; a < k; a++) z[a] = target[a];
    mp_cholesky_solve_factored(A, z, k); /* z = W target (W symmetric) */
    double sum = 0;
    for (size_t j = 0; j < nnz; j++) {
        const float *y = p->Y + (size_t)idx[j] * k;
        double s = 0;
        for (size_t a = 0; a < k; a++) s += z[a] * y[a];
        contrib[j] = (1.0 + (double)p->alpha * val[j]) * s;
        sum += contrib[j];
    }
    *score = sum;
    return MP_OK;
}

/* out = (YtY + reg I) v + sum_j alpha r_j (y_j . v) y_j */
static void ials_apply(const mp_ials_problem *p, const uint32_t *idx, const float *val, size_t nnz, const float *v,
                       float *out) {
    const size_t k = p->k;
    for (size_t a = 0; a < k; a++) out[a] = mp_dot(p->YtY + a * k, v, k) + p->reg * v[a];
    for (size_t j = 0; j < nnz; j++) {
        const float *y = p->Y + (size_t)idx[j] * k;
        mp_axpy(p->alpha * val[j] * mp_dot(y, v, k), y, out, k);
    }
}

static void ials_cg_generic(const mp_ials_problem *p, const uint32_t *idx, const float *val, size_t nnz, float *x,
                            unsigned steps, float *work) {
    const size_t k = p->k;
    float *r = work, *d = work + k, *Ad = work + 2 * k;
    /* r = b - A x = -(YtY + reg I) x + sum_j (c_j - (c_j - 1) y_j . x) y_j */
    for (size_t a = 0; a < k; a++) r[a] = -mp_dot(p->YtY + a * k, x, k) - p->reg * x[a];
    for (size_t j = 0; j < nnz; j++) {
        const float *y = p->Y + (size_t)idx[j] * k;
        float cm1 = p->alpha * val[j];
        mp_axpy(1.0f + cm1 - cm1 * mp_dot(y, x, k), y, r, k);
    }
    memcpy(d, r, k * sizeof *d);
    float rs = mp_dot(r, r, k);
    for (unsigned s = 0; s < steps; s++) {
        if (!(rs > 1e-20f)) break;
        ials_apply(p, idx, val, nnz, d, Ad);
        float dAd = mp_dot(d, Ad, k);
        if (!(dAd > 0)) break;
        float step = rs / dAd;
        mp_axpy(step, d, x, k);
        mp_axpy(-step, Ad, r, k);
        float rs_new = mp_dot(r, r, k);
        float beta = rs_new / rs;
        for (size_t a = 0; a < k; a++) d[a] = r[a] + beta * d[a];
        rs = rs_new;
    }
}

void mp_ials_cg(const mp_ials_problem *p, const uint32_t *idx, const float *val, size_t nnz, float *x, unsigned steps,
                float *work) {
    if (nnz == 0) { /* b = 0: the solution is 0 */
        memset(x, 0, (size_t)p->k * sizeof *x);
        return;
    }
#ifdef IALS_SIMD
    if (ials_simd_ok(p->k)) {
        ials_cg_simd(p, idx, val, nnz, x, steps, work);
        return;
    }
#endif
    ials_cg_generic(p, idx, val, nnz, x, steps, work);
}
