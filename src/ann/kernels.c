/* src/ann/kernels.c: the distance kernels of the ANN module (plain C and AVX2+FMA, picked at run time), vector
 * normalisation and the (distance, id) heaps that the exact and the graph search share. */
#include <math.h>
#include <string.h>

#include "ann/ann_internal.h"

int mp_ann_metric_parse(const char *s, mp_ann_metric *out) {
    if (!s || !out) return MP_EINVAL;
    if (!strcmp(s, "ip"))
        *out = MP_ANN_IP;
    else if (!strcmp(s, "cosine"))
        *out = MP_ANN_COSINE;
    else if (!strcmp(s, "l2"))
        *out = MP_ANN_L2;
    else
        return MP_EINVAL;
    return MP_OK;
}

/* ---- plain C ---- */

float mp_ann_neg_dot_ref(const float *a, const float *b, size_t dim) {
    float s = 0.0f;
    for (size_t i = 0; i < dim; i++)
        s += a[i] * b[i];
    return -s;
}

float mp_ann_l2sq_ref(const float *a, const float *b, size_t dim) {
    float s = 0.0f;
    for (size_t i = 0; i < dim; i++) {
        float t = a[i] - b[i];
        s += t * t;
    }
    return s;
}

/* ---- AVX2 + FMA ----
 * Four accumulators over 32 floats per step (so the FMA latency is hidden), then 8 at a time, then a scalar tail
 * for dimensions that are not a multiple of 8. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ANN_SIMD 1
#define ANN_SIMD_FN __attribute__((target("avx2,fma")))

ANN_SIMD_FN static inline float hsum8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

ANN_SIMD_FN static float neg_dot_avx2(const float *a, const float *b, size_t dim) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= dim; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < dim; i++)
        s += a[i] * b[i];
    return -s;
}

ANN_SIMD_FN static float l2sq_avx2(const float *a, const float *b, size_t dim) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 t2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 t3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
        s2 = _mm256_fmadd_ps(t2, t2, s2);
        s3 = _mm256_fmadd_ps(t3, t3, s3);
    }
    for (; i + 8 <= dim; i += 8) {
        __m256 t = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(t, t, s0);
    }
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < dim; i++) {
        float t = a[i] - b[i];
        s += t * t;
    }
    return s;
}
#endif

int mp_ann_simd_available(void) {
#ifdef ANN_SIMD
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

mp_ann_dist_fn mp_ann_dist_pick(mp_ann_metric metric, int simd) {
#ifdef ANN_SIMD
    if (simd && mp_ann_simd_available()) return metric == MP_ANN_L2 ? l2sq_avx2 : neg_dot_avx2;
#else
    (void)simd;
#endif
    return metric == MP_ANN_L2 ? mp_ann_l2sq_ref : mp_ann_neg_dot_ref;
}

void mp_ann_normalise(float *dst, const float *src, size_t dim) {
    double s = 0.0;
    for (size_t i = 0; i < dim; i++)
        s += (double)src[i] * src[i];
    float inv = s > 0.0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    for (size_t i = 0; i < dim; i++)
        dst[i] = src[i] * inv;
}

int mp_ann_all_finite(const float *a, size_t n, size_t *bad) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) {
            if (bad) *bad = i;
            return 0;
        }
    }
    return 1;
}
