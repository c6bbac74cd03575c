/* magpie/ann.h: approximate nearest-neighbour search over dense vectors with an HNSW graph
 * (Malkov and Yashunin 2016/2018), written in C, plus the exact search it is measured against.
 *
 * Used by the server to retrieve the top items of latent-factor models (inner product of a user vector with item
 * vectors) without scoring every item, and by `similar` (cosine). Scores returned are "higher is better" for all
 * metrics: IP -> dot product, COSINE -> cosine similarity, L2 -> minus the squared distance.
 *
 * Threads: after build (or load) an index is immutable; any number of threads may search it at once, each with
 * its own scratch (mp_hnsw_scratch). A scratch is used by one thread at a time (search writes it); mp_hnsw_save
 * only reads the index, so it may run while others search. destroy must not race any other call on the index.
 * mp_ann_exact and mp_ann_exact_batch keep no state. Build uses up to n_threads threads.
 * Determinism: with n_threads = 1 the same vectors, parameters and seed give the same graph. */
#ifndef MAGPIE_ANN_H
#define MAGPIE_ANN_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"
#include "magpie/progress.h"

typedef enum {
    MP_ANN_IP = 0,     /* maximum inner product */
    MP_ANN_COSINE = 1, /* vectors normalised at build; queries normalised at search */
    MP_ANN_L2 = 2,     /* smallest Euclidean distance */
} mp_ann_metric;

/* Parses "ip" / "cosine" / "l2".
 * Errors: MP_EINVAL (s or out NULL, or another name). */
MP_EXPORT int mp_ann_metric_parse(const char *s, mp_ann_metric *out);

typedef struct mp_hnsw_params {
    uint32_t M;               /* links per node on upper layers (layer 0 has 2*M); default 16 */
    uint32_t ef_construction; /* candidate list while building; default 200 */
    uint64_t seed;            /* level draws; default 42 */
    int n_threads;            /* 0: all cores */
} mp_hnsw_params;

/* M 16, ef_construction 200, seed 42, n_threads 0. */
MP_EXPORT void mp_hnsw_params_default(mp_hnsw_params *p);

typedef struct mp_hnsw mp_hnsw;

/* Builds an index over vecs (n rows of dim floats, row-major; copied, so the caller may free them after). Row i is
 * item id i. Reports progress as stage "index" (vectors inserted). Non-finite values: MP_EINVAL naming the row.
 * n = 0: MP_EEMPTY. params NULL means the defaults; M outside 2..512, ef_construction 0 or n_threads < 0:
 * MP_EINVAL (ef_construction below M is raised to M).
 * *out is owned by the caller: mp_hnsw_destroy.
 * Errors: MP_EINVAL (out or vecs NULL, dim outside 1..MP_ANN_MAX_DIM, unknown metric, bad params, a non-finite
 * value), MP_EEMPTY (n = 0), MP_ENOMEM. */
MP_EXPORT int mp_hnsw_build(mp_hnsw **out, const float *vecs, uint32_t n, uint32_t dim, mp_ann_metric metric,
                            const mp_hnsw_params *params, const mp_progress *progress, mp_error *err);
MP_EXPORT void mp_hnsw_destroy(mp_hnsw *h); /* NULL is a no-op */

MP_EXPORT uint32_t mp_hnsw_size(const mp_hnsw *h);
MP_EXPORT uint32_t mp_hnsw_dim(const mp_hnsw *h);
MP_EXPORT mp_ann_metric mp_hnsw_metric(const mp_hnsw *h);
/* The indexed vectors (n x dim, row-major, normalised for COSINE), borrowed for the index's lifetime. */
MP_EXPORT const float *mp_hnsw_vectors(const mp_hnsw *h);
/* The parameters it was built with (n_threads 0). */
MP_EXPORT void mp_hnsw_params_of(const mp_hnsw *h, mp_hnsw_params *out);
/* Bytes the index holds (vectors + graph), for /metrics and benchmarks. */
MP_EXPORT size_t mp_hnsw_memory(const mp_hnsw *h);

/* Per-thread search state (visited marks, heaps). Owned by the caller: mp_hnsw_scratch_destroy. */
typedef struct mp_hnsw_scratch mp_hnsw_scratch;
/* Errors: MP_EINVAL (out or h NULL), MP_ENOMEM. */
MP_EXPORT int mp_hnsw_scratch_create(mp_hnsw_scratch **out, const mp_hnsw *h, mp_error *err);
MP_EXPORT void mp_hnsw_scratch_destroy(mp_hnsw_scratch *s);
/* Distances computed on layer 0 by all searches made with s so far (the work a search does, for metrics and
 * benchmarks). */
MP_EXPORT uint64_t mp_hnsw_scratch_distances(const mp_hnsw_scratch *s);

/* The k best ids for query q (dim floats), best first, with their scores; ties by lower id. ef (>= k; 0 means
 * max(k, 64); below k it is raised to k) is the candidate list size: larger is slower and more exact. `allow`
 * ([n] or NULL, 1 = may be returned) filters results without cutting the graph: filtered nodes are still
 * traversed, and the search goes on until it holds ef allowed candidates. *n_out (<= k) is smaller than k only
 * when fewer than k allowed items are reachable. scratch must come from this index (one made for an index of
 * another shape gives MP_EINVAL); out_scores may be NULL. A non-finite query value: MP_EINVAL.
 * Errors: MP_EINVAL (h, scratch, q, out_ids or n_out NULL, a scratch of another index, a non-finite query value),
 * MP_ENOMEM (growing the scratch for ef). */
MP_EXPORT int mp_hnsw_search(const mp_hnsw *h, mp_hnsw_scratch *scratch, const float *q, size_t k, size_t ef,
                             const uint8_t *allow, uint32_t *out_ids, float *out_scores, size_t *n_out, mp_error *err);

/* mp_hnsw_search that also never returns the ids in exclude[0..n_exclude) (ascending, e.g. a user's history):
 * like `allow`, excluded nodes are traversed but not returned, so k need not grow with the exclusions.
 * Errors: as mp_hnsw_search (MP_EINVAL, MP_ENOMEM). */
MP_EXPORT int mp_hnsw_search_excluding(const mp_hnsw *h, mp_hnsw_scratch *scratch, const float *q, size_t k,
                                       size_t ef, const uint8_t *allow, const uint32_t *exclude, size_t n_exclude,
                                       uint32_t *out_ids, float *out_scores, size_t *n_out, mp_error *err);

/* Saves / loads the index (vectors, graph, parameters) in the model file format (modelfile.h) under the name
 * "hnsw", atomically. load checks every link is in range (and not to a node absent from its layer), every level
 * and the entry point, and that the vectors are finite: a damaged or forged file gives MP_ECORRUPT (another model's
 * file too), another hnsw version MP_EVERSION, a missing file MP_ENOTFOUND. *out as for build.
 * Errors (save): MP_EINVAL (h or path NULL, an empty path), MP_ENOMEM, MP_EIO (as mp_mf_writer_save).
 * Errors (load): MP_EINVAL (out or path NULL), MP_ENOTFOUND, MP_EIO (cannot open or not a regular file),
 * MP_ECORRUPT, MP_EVERSION (a newer model-file format, or another hnsw version), MP_ENOMEM. */
MP_EXPORT int mp_hnsw_save(const mp_hnsw *h, const char *path, mp_error *err);
MP_EXPORT int mp_hnsw_load(mp_hnsw **out, const char *path, mp_error *err);

/* Exact top-k by brute force (the reference for recall; same scores, order and `allow` rule as mp_hnsw_search).
 * Blocked and vectorised, one thread. vecs are the raw rows (for COSINE each row is normalised as it is scored,
 * exactly as the index stores it). n = 0 gives no results; a non-finite query value, or an allowed row whose
 * score is not finite: MP_EINVAL. out_scores may be NULL.
 * Errors: MP_EINVAL (vecs, q, out_ids or n_out NULL, dim outside 1..MP_ANN_MAX_DIM, unknown metric, a non-finite
 * query value or score), MP_ENOMEM. */
MP_EXPORT int mp_ann_exact(const float *vecs, uint32_t n, uint32_t dim, mp_ann_metric metric, const float *q, size_t k,
                           const uint8_t *allow, uint32_t *out_ids, float *out_scores, size_t *n_out, mp_error *err);

/* mp_ann_exact for n_queries queries at once (queries [n_queries x dim]): the same results, with a block of rows
 * kept in cache while a group of queries is scored against it, over up to n_threads threads (0: all cores).
 * Query i's results are out_ids[i*k .. i*k + *n_out) (and out_scores, which may be NULL); *n_out is the same for
 * every query (the allowed rows, at most k). For ground truth in benchmarks and recall checks.
 * Errors: as mp_ann_exact (MP_EINVAL, also for n_threads < 0; MP_ENOMEM). */
MP_EXPORT int mp_ann_exact_batch(const float *vecs, uint32_t n, uint32_t dim, mp_ann_metric metric,
                                 const float *queries, size_t n_queries, size_t k, const uint8_t *allow,
                                 uint32_t *out_ids, float *out_scores, size_t *n_out, int n_threads, mp_error *err);

#endif
