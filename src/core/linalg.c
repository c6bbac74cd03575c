/* Dense kernels shared by the factor models: dot/axpy, C = A B^T, Gram matrices, matrix-vector products and a
 * double-precision Cholesky solver. With MP_HAVE_CBLAS the large kernels call CBLAS (OpenBLAS); the plain-C
 * versions are always compiled and serve as the reference in tests and as the BLAS=none build. */
#include "magpie/linalg.h"

#include <math.h>
#include <string.h>

#ifdef MP_HAVE_CBLAS
#include <cblas.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef MP_HAVE_CBLAS
/* Inside an OpenMP parallel region small BLAS calls are done here instead: the pthread OpenBLAS would start its
 * own threads under every OpenMP thread. */
static int in_parallel(void) {
#ifdef _OPENMP
    return omp_in_parallel();
#else
    return 0;
#endif
}
#endif

int mp_linalg_has_blas(void) {
#ifdef MP_HAVE_CBLAS
    return 1;
#else
    return 0;
#endif
}

/* Eight independent partial sums so the compiler can keep them in one vector register without reassociating
 * a single sum (which it may not do without -ffast-math). */
float mp_dot(const float *a, const float *b, size_t n) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    float tail = 0;
    for (; i < n; i++) tail += a[i] * b[i];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])) + tail;
}

float mp_dot_seq(const float *a, const float *b, size_t n) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

float mp_l2sq_seq(const float *a, const float *b, size_t n) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float t = a[i] - b[i];
        s += t * t;
    }
    return s;
}

/* AVX2 + FMA: four accumulators over 32 floats per step (so the FMA latency is hidden), then 8 at a time, then a
 * scalar tail for lengths that are not a multiple of 8. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define VEC_SIMD 1
#define VEC_SIMD_FN __attribute__((target("avx2,fma")))

VEC_SIMD_FN static inline float hsum8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

VEC_SIMD_FN float mp_dot_simd(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

VEC_SIMD_FN float mp_l2sq_simd(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 t2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 t3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
        s2 = _mm256_fmadd_ps(t2, t2, s2);
        s3 = _mm256_fmadd_ps(t3, t3, s3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 t = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(t, t, s0);
    }
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) {
        float t = a[i] - b[i];
        s += t * t;
    }
    return s;
}
#else
float mp_dot_simd(const float *a, const float *b, size_t n) { return mp_dot_seq(a, b, n); }
float mp_l2sq_simd(const float *a, const float *b, size_t n) { return mp_l2sq_seq(a, b, n); }
#endif

int mp_vec_simd_available(void) {
#ifdef VEC_SIMD
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

void mp_axpy(float alpha, const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

void mp_sgemm_nt_ref(size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda, const float *B,
                     size_t ldb, float beta, float *C, size_t ldc) {
    for (size_t i = 0; i < m; i++) {
        const float *a = A + i * lda;
        float *c = C + i * ldc;
        for (size_t j = 0; j < n; j++) {
            float v = k ? alpha * mp_dot(a, B + j * ldb, k) : 0.0f;
            c[j] = beta == 0.0f ? v : v + beta * c[j]; /* beta 0 overwrites, as BLAS does (even NaN) */
        }
    }
}

void mp_sgemm_nt(size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda, const float *B, size_t ldb,
                 float beta, float *C, size_t ldc) {
    if (m == 0 || n == 0) return;
#ifdef MP_HAVE_CBLAS
    if (k > 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, alpha, A, (int)lda, B,
                    (int)ldb, beta, C, (int)ldc);
        return;
    }
#endif
    mp_sgemm_nt_ref(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

void mp_sgemv(size_t m, size_t n, const float *A, size_t lda, const float *x, float *y) {
    if (m == 0) return;
#ifdef MP_HAVE_CBLAS
    if (n > 0 && !in_parallel()) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)n, 1.0f, A, (int)lda, x, 1, 0.0f, y, 1);
        return;
    }
#endif
    for (size_t i = 0; i < m; i++) y[i] = mp_dot(A + i * lda, x, n);
}

void mp_gram(const float *A, size_t n, size_t k, size_t lda, float *G) {
    if (k == 0) return;
    memset(G, 0, k * k * sizeof *G);
    if (n == 0) return;
#ifdef MP_HAVE_CBLAS
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)k, (int)n, 1.0f, A, (int)lda, 0.0f, G, (int)k);
#else
    /* Rank-1 updates of the upper triangle, row by row of A. */
    for (size_t r = 0; r < n; r++) {
        const float *a = A + r * lda;
        for (size_t i = 0; i < k; i++) {
            float ai = a[i];
            float *g = G + i * k;
            for (size_t j = i; j < k; j++) g[j] += ai * a[j];
        }
    }
#endif
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < i; j++) G[i * k + j] = G[j * k + i];
}

/* Dot products in double for the Cholesky factorisation: with AVX2 + FMA four partial sums, else eight scalar
 * ones (either way the order is fixed, so results do not depend on the thread running them). */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static double dot_d_simd(const double *a, const double *b, size_t n) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = _mm256_fmadd_pd(_mm256_loadu_pd(a + i), _mm256_loadu_pd(b + i), s0);
        s1 = _mm256_fmadd_pd(_mm256_loadu_pd(a + i + 4), _mm256_loadu_pd(b + i + 4), s1);
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(s0, s1));
    double s = (t[0] + t[2]) + (t[1] + t[3]);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}
#define HAVE_DOT_D_SIMD 1
#endif

static double dot_d_plain(const double *a, const double *b, size_t n) {
    double s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) s[j] += a[i + j] * b[i + j];
    double r = (s[0] + s[2]) + (s[1] + s[3]);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

typedef double (*dot_d_fn)(const double *, const double *, size_t);

static dot_d_fn pick_dot_d(void) {
#ifdef HAVE_DOT_D_SIMD
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return dot_d_simd;
#endif
    return dot_d_plain;
}

int mp_cholesky_factor(double *A, size_t k) {
    dot_d_fn dot_d = pick_dot_d();
    for (size_t j = 0; j < k; j++) {
        double *aj = A + j * k;
        double d = aj[j] - dot_d(aj, aj, j);
        if (!(d > 0) || !isfinite(d)) return MP_ERANGE;
        double l = sqrt(d);
        aj[j] = l;
        double inv = 1.0 / l;
        for (size_t i = j + 1; i < k; i++) {
            double *ai = A + i * k;
            ai[j] = (ai[j] - dot_d(ai, aj, j)) * inv;
        }
    }
    return MP_OK;
}

void mp_cholesky_solve_factored(const double *L, double *b, size_t k) {
    /* L y = b */
    for (size_t i = 0; i < k; i++) {
        const double *li = L + i * k;
        double s = b[i];
        for (size_t p = 0; p < i; p++) s -= li[p] * b[p];
        b[i] = s / li[i];
    }
    /* L^T x = y */
    for (size_t i = k; i-- > 0;) {
        double s = b[i];
        for (size_t p = i + 1; p < k; p++) s -= L[p * k + i] * b[p];
        b[i] = s / L[i * k + i];
    }
}

int mp_cholesky_solve(double *A, double *b, size_t k) {
    int rc = mp_cholesky_factor(A, k);
    if (rc) return rc;
    mp_cholesky_solve_factored(A, b, k);
    return MP_OK;
}
