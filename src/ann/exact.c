/* src/ann/exact.c: exact top-k by brute force, the reference the HNSW index is measured against.
 *
 * Rows are scanned in blocks: first the block's distances (the vectorised kernel, streaming the rows), then one
 * pass that keeps the k best in a max-heap, where almost every row is rejected by one compare with the current
 * k-th best. Distances come from the same kernel as the index's, so scores agree bit for bit with
 * mp_hnsw_search's for the same item. The batch form keeps a block of rows in cache while a group of queries
 * is scored against it (compute-bound instead of memory-bound), with one thread per group of queries. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "ann/ann_internal.h"

#define EXACT_BLOCK 256            /* rows per distance block (single query) */
#define EXACT_BATCH_QUERIES 16     /* queries sharing one pass over a block of rows */
#define EXACT_BATCH_FLOATS 262144u /* a block of rows in the batch form: 1 MiB, about one core's L2 */

static int check_args(const float *vecs, uint32_t n, uint32_t dim, mp_ann_metric metric, const void *q,
                      const void *out_ids, const void *n_out, mp_error *err) {
    if ((n > 0 && !vecs) || !q || !out_ids || !n_out)
        return mp_error_set(err, MP_EINVAL, "ann exact: vecs, query, out_ids and n_out must not be NULL");
    if (dim == 0 || dim > MP_ANN_MAX_DIM)
        return mp_error_set(err, MP_EINVAL, "ann exact: dimension %u is outside 1..%u", dim, MP_ANN_MAX_DIM);
    if (metric != MP_ANN_IP && metric != MP_ANN_COSINE && metric != MP_ANN_L2)
        return mp_error_set(err, MP_EINVAL, "ann exact: unknown metric %d (expected ip, cosine or l2)", (int)metric);
    return MP_OK;
}

/* Offers rows first..first+m-1 with distances d[0..m) to the top-kk max-heap (*hn entries). Returns 0, or 1 with
 * *bad set to the first allowed row whose distance is not finite (a NaN or infinity in the vectors). */
static int offer_block(const float *d, uint32_t first, size_t m, const uint8_t *allow, mp_ann_pair *heap, size_t *hn,
                       size_t kk, uint32_t *bad) {
    for (size_t j = 0; j < m; j++) {
        uint32_t id = first + (uint32_t)j;
        if (allow && !allow[id]) continue;
        float dj = d[j];
        if (!isfinite(dj)) {
            *bad = id;
            return 1;
        }
        /* rows come in increasing id, so an equal distance never displaces: ties stay with the lower id */
        if (*hn < kk)
            mp_ann_maxheap_push(heap, hn, (mp_ann_pair){dj, id});
        else if (dj < heap[0].d)
            mp_ann_maxheap_replace_top(heap, kk, (mp_ann_pair){dj, id});
    }
    return 0;
}

static void write_out(mp_ann_pair *heap, size_t hn, uint32_t *ids, float *scores) {
    mp_ann_maxheap_drain_sorted(heap, hn, heap);
    for (size_t j = 0; j < hn; j++) {
        ids[j] = heap[j].id;
        if (scores) scores[j] = -heap[j].d;
    }
}

int mp_ann_exact(const float *vecs, uint32_t n, uint32_t dim, mp_ann_metric metric, const float *q, size_t k,
                 const uint8_t *allow, uint32_t *out_ids, float *out_scores, size_t *n_out, mp_error *err) {
    if (n_out) *n_out = 0;
    int rc = check_args(vecs, n, dim, metric, q, out_ids, n_out, err);
    if (rc) return rc;
    size_t bad;
    if (!mp_ann_all_finite(q, dim, &bad))
        return mp_error_set(err, MP_EINVAL, "ann exact: query value %zu is not finite", bad);
    if (k == 0 || n == 0) return MP_OK;
    size_t kk = k < n ? k : n;
    int cosine = metric == MP_ANN_COSINE;
    mp_ann_pair *heap = malloc(kk * sizeof *heap);
    float *buf = cosine ? malloc(2 * (size_t)dim * sizeof *buf) : NULL; /* normalised query, then one row */
    if (!heap || (cosine && !buf)) {
        free(heap);
        free(buf);
        return mp_error_set(err, MP_ENOMEM, "ann exact: out of memory for k = %zu", k);
    }
    const float *qv = q;
    if (cosine) {
        mp_ann_normalise(buf, q, dim);
        qv = buf;
    }
    mp_ann_dist_fn dist = mp_ann_dist_pick(metric, 1);
    float d[EXACT_BLOCK];
    size_t hn = 0;
    uint32_t bad_row = 0;
    int failed = 0;
    for (uint32_t b = 0; b < n && !failed; b += EXACT_BLOCK) {
        size_t m = n - b < EXACT_BLOCK ? n - b : EXACT_BLOCK;
        const float *row = vecs + (size_t)b * dim;
        if (cosine) {
            for (size_t j = 0; j < m; j++, row += dim) {
                mp_ann_normalise(buf + dim, row, dim);
                d[j] = dist(qv, buf + dim, dim);
            }
        } else {
            for (size_t j = 0; j < m; j++, row += dim)
                d[j] = dist(qv, row, dim);
        }
        failed = offer_block(d, b, m, allow, heap, &hn, kk, &bad_row);
    }
    if (failed) {
        free(heap);
        free(buf);
        return mp_error_set(err, MP_EINVAL,
                            "ann exact: row %u: non-finite score (the vectors hold a NaN, an infinity "
                            "or values too large for float)",
                            bad_row);
    }
    write_out(heap, hn, out_ids, out_scores);
    *n_out = hn;
    free(heap);
    free(buf);
    return MP_OK;
}

int mp_ann_exact_batch(const float *vecs, uint32_t n, uint32_t dim, mp_ann_metric metric, const float *queries,
                       size_t n_queries, size_t k, const uint8_t *allow, uint32_t *out_ids, float *out_scores,
                       size_t *n_out, int n_threads, mp_error *err) {
    if (n_out) *n_out = 0;
    int rc =
        check_args(vecs, n, dim, metric, n_queries ? (const void *)queries : (const void *)"", out_ids, n_out, err);
    if (rc) return rc;
    if (n_threads < 0) return mp_error_set(err, MP_EINVAL, "ann exact: n_threads %d is negative", n_threads);
    size_t bad;
    if (!mp_ann_all_finite(queries, n_queries * dim, &bad))
        return mp_error_set(err, MP_EINVAL, "ann exact: query %zu, value %zu is not finite", bad / dim, bad % dim);
    if (k == 0 || n == 0 || n_queries == 0) return MP_OK;
    size_t kk = k < n ? k : n;
    int cosine = metric == MP_ANN_COSINE;
    float *qn = NULL;
    if (cosine) {
        if (!(qn = malloc(n_queries * dim * sizeof *qn)))
            return mp_error_set(err, MP_ENOMEM, "ann exact: out of memory for %zu queries", n_queries);
        for (size_t i = 0; i < n_queries; i++)
            mp_ann_normalise(qn + i * dim, queries + i * dim, dim);
    }
    const float *qs = cosine ? qn : queries;
    mp_ann_dist_fn dist = mp_ann_dist_pick(metric, 1);
    size_t block = EXACT_BATCH_FLOATS / dim;
    if (block < 1) block = 1;
    size_t n_groups = (n_queries + EXACT_BATCH_QUERIES - 1) / EXACT_BATCH_QUERIES;
#ifdef _OPENMP
    int nt = n_threads > 0 ? n_threads : omp_get_max_threads();
    if ((size_t)nt > n_groups) nt = (int)n_groups;
#endif
    int fail = MP_OK;
    uint32_t bad_row = 0;
    size_t found = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
        mp_ann_pair *heaps = malloc(EXACT_BATCH_QUERIES * kk * sizeof *heaps);
        float *d = malloc(block * sizeof *d);
        float *rows_n = cosine ? malloc(block * dim * sizeof *rows_n) : NULL;
        int ok = heaps && d && (!cosine || rows_n);
        if (!ok) {
#ifdef _OPENMP
#pragma omp critical(ann_exact_batch)
#endif
            fail = MP_ENOMEM;
        }
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (size_t g = 0; g < n_groups; g++) {
            if (!ok) continue;
            size_t q0 = g * EXACT_BATCH_QUERIES,
                   nq = n_queries - q0 < EXACT_BATCH_QUERIES ? n_queries - q0 : EXACT_BATCH_QUERIES;
            size_t hn[EXACT_BATCH_QUERIES] = {0};
            int failed = 0;
            uint32_t bad_here = 0;
            for (uint32_t b = 0; b < n && !failed; b += (uint32_t)block) {
                size_t m = n - b < block ? n - b : block;
                const float *rows = vecs + (size_t)b * dim;
                if (cosine) {
                    for (size_t j = 0; j < m; j++)
                        mp_ann_normalise(rows_n + j * dim, rows + j * dim, dim);
                    rows = rows_n;
                }
                for (size_t qi = 0; qi < nq && !failed; qi++) {
                    const float *qv = qs + (q0 + qi) * dim;
                    for (size_t j = 0; j < m; j++)
                        d[j] = dist(qv, rows + j * dim, dim);
                    failed = offer_block(d, b, m, allow, heaps + qi * kk, &hn[qi], kk, &bad_here);
                }
            }
            if (failed) {
#ifdef _OPENMP
#pragma omp critical(ann_exact_batch)
#endif
                {
                    fail = MP_EINVAL;
                    bad_row = bad_here;
                }
                continue;
            }
            for (size_t qi = 0; qi < nq; qi++)
                write_out(heaps + qi * kk, hn[qi], out_ids + (q0 + qi) * k,
                          out_scores ? out_scores + (q0 + qi) * k : NULL);
            if (g == 0) found = hn[0]; /* the same for every query: the allowed rows, at most k */
        }
        free(heaps);
        free(d);
        free(rows_n);
    }
    free(qn);
    if (fail == MP_ENOMEM) return mp_error_set(err, MP_ENOMEM, "ann exact: out of memory for k = %zu", k);
    if (fail)
        return mp_error_set(err, MP_EINVAL,
                            "ann exact: row %u: non-finite score (the vectors hold a NaN, an infinity "
                            "or values too large for float)",
                            bad_row);
    *n_out = found;
    return MP_OK;
}
