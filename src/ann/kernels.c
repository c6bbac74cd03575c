/* src/ann/kernels.c: the distance functions of the ANN module (core's vector kernels, plain C or AVX2+FMA picked at
 * run time), vector normalisation and the (distance, id) heaps that the exact and the graph search share. */
#include <math.h>
#include <string.h>

#include "ann/ann_internal.h"
#include "magpie/linalg.h"

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

/* The kernels themselves are core's (linalg.h); the ANN distances are their negated dot and squared L2. */

float mp_ann_neg_dot_ref(const float *a, const float *b, size_t dim) { return -mp_dot_seq(a, b, dim); }

float mp_ann_l2sq_ref(const float *a, const float *b, size_t dim) { return mp_l2sq_seq(a, b, dim); }

static float neg_dot_simd(const float *a, const float *b, size_t dim) { return -mp_dot_simd(a, b, dim); }

int mp_ann_simd_available(void) { return mp_vec_simd_available(); }

mp_ann_dist_fn mp_ann_dist_pick(mp_ann_metric metric, int simd) {
    if (simd && mp_vec_simd_available()) return metric == MP_ANN_L2 ? mp_l2sq_simd : neg_dot_simd;
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
