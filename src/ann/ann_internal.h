/* src/ann/ann_internal.h: what the ANN files (kernels.c, exact.c, hnsw.c, hnsw_io.c) share, and the kernels the
 * tests compare. Not part of the public API. */
#ifndef MAGPIE_ANN_INTERNAL_H
#define MAGPIE_ANN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/ann.h"

#define MP_ANN_MAX_DIM 65536u /* larger dimensions are refused (and taken as corruption in files) */
#define MP_ANN_MAX_M 512u     /* links per node on upper layers */
#define MP_ANN_MAX_LEVEL 64u  /* -ln(U)/ln(M) stays far below this for any U a double can hold */

/* A distance: smaller is closer. IP and COSINE use minus the dot product (like hnswlib's InnerProductSpace, so
 * the score is exactly -distance); L2 uses the squared Euclidean distance (score = -distance). */
typedef float (*mp_ann_dist_fn)(const float *a, const float *b, size_t dim);

/* The kernel for a metric: the AVX2+FMA one when `simd` and the CPU has it, else plain C. Both sum in a
 * different order, so they agree to rounding, not bit for bit; one process always picks the same one, so the
 * index and mp_ann_exact see identical distances. */
mp_ann_dist_fn mp_ann_dist_pick(mp_ann_metric metric, int simd);
/* 1 when the AVX2+FMA kernels can run on this CPU. */
int mp_ann_simd_available(void);
/* Plain-C reference kernels (what the vector ones must agree with). */
float mp_ann_neg_dot_ref(const float *a, const float *b, size_t dim);
float mp_ann_l2sq_ref(const float *a, const float *b, size_t dim);

/* dst (dim) = src / |src| (norm in double precision, so it does not depend on the kernel); a zero vector stays
 * zero. dst may alias src. */
void mp_ann_normalise(float *dst, const float *src, size_t dim);

/* 1 when every one of the n floats is finite; else 0 and *bad is the index of the first that is not. */
int mp_ann_all_finite(const float *a, size_t n, size_t *bad);

/* A candidate: distance and id. Ordered by distance, then id (so every ranking is deterministic and ties go to
 * the lower id). */
typedef struct mp_ann_pair {
    float d;
    uint32_t id;
} mp_ann_pair;

static inline int mp_ann_pair_less(mp_ann_pair a, mp_ann_pair b) {
    return a.d < b.d || (a.d == b.d && a.id < b.id);
}

/* Max-heap on (d, id): the worst of the best-so-far at [0]. Inline: these run in the inner loop of every search. */
static inline void mp_ann_maxheap_push(mp_ann_pair *h, size_t *n, mp_ann_pair p) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!mp_ann_pair_less(h[parent], p)) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = p;
}

/* Replaces the top (the worst) with p and restores the heap of n entries. */
static inline void mp_ann_maxheap_replace_top(mp_ann_pair *h, size_t n, mp_ann_pair p) {
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && mp_ann_pair_less(h[c], h[c + 1])) c++;
        if (!mp_ann_pair_less(p, h[c])) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = p;
}

static inline void mp_ann_maxheap_pop(mp_ann_pair *h, size_t *n) {
    if (*n == 0) return;
    (*n)--;
    if (*n > 0) mp_ann_maxheap_replace_top(h, *n, h[*n]);
}

/* Empties the max-heap h (n entries) into out (n) in increasing (d, id) order; out may be h. */
static inline void mp_ann_maxheap_drain_sorted(mp_ann_pair *h, size_t n, mp_ann_pair *out) {
    while (n > 0) {
        mp_ann_pair top = h[0];
        mp_ann_maxheap_pop(h, &n);
        out[n] = top; /* the slot the heap just gave up, so out may be h itself */
    }
}

/* The index. Links of node i on layer l: a count followed by up to cap ids (cap = M0 on layer 0, M above). */
struct mp_hnsw {
    uint32_t n, dim;
    mp_ann_metric metric;
    uint32_t M, M0;           /* link caps: upper layers, layer 0 (2M) */
    uint32_t ef_construction; /* as built (kept for the file and for reporting) */
    uint64_t seed;            /* level draws */
    uint32_t entry;           /* a node on the top layer */
    uint32_t max_level;       /* top layer */
    float *vecs;              /* [n * dim], 64-byte aligned; normalised for COSINE */
    uint32_t *link0;          /* [n * (M0 + 1)] layer 0, flat */
    uint8_t *levels;          /* [n] top layer of each node */
    uint32_t *upper_at;       /* [n] first block of node i in `upper` (its layers 1..levels[i] follow in order) */
    uint32_t *upper;          /* [n_upper * (M + 1)] layers above 0 */
    size_t n_upper;           /* blocks in `upper` (the sum of levels) */
    mp_ann_dist_fn dist;      /* picked at build / load */
};

static inline uint32_t *mp_hnsw_links(const mp_hnsw *h, uint32_t i, uint32_t level) {
    if (level == 0) return h->link0 + (size_t)i * (h->M0 + 1);
    return h->upper + ((size_t)h->upper_at[i] + level - 1) * (h->M + 1);
}

/* Allocates the arrays of h for h->n, h->dim, h->M (set M0 too) and the given levels (copied; NULL: all zero),
 * computing upper_at and n_upper; everything zeroed. MP_ENOMEM or MP_EINVAL (too many upper blocks). */
int mp_hnsw_alloc_graph(mp_hnsw *h, const uint8_t *levels, mp_error *err);

#endif
