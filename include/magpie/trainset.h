/* magpie/trainset.h: turns a set of training events into what models fit on (mp_train_data): the weighted
 * user x item matrix, its transpose and the item metadata of the dataset. Shared by `train`, `eval` and the
 * server so they build training input the same way. */
#ifndef MAGPIE_TRAINSET_H
#define MAGPIE_TRAINSET_H

#include "magpie/dataset.h"
#include "magpie/model.h"

typedef struct mp_train_set {
    mp_train_data data;   /* points into the members below and into the dataset (which must outlive this) */
    mp_csr ui, iu;        /* owned */
    mp_weighting weighting;
} mp_train_set;

/* Builds from `events` (sorted by user, ts; e.g. a split's train part or all of ds->events) with weighting `w`
 * (NULL: defaults; a weighting with now == 0 decays from the latest ts in events). ts->data borrows `events`, the
 * dataset's item metadata and ts's own members, so do not move *ts while data is in use; free with
 * mp_train_set_free (also fine on a zeroed struct). */
MP_EXPORT int mp_train_set_build(mp_train_set *ts, const mp_dataset *ds, const mp_interaction *events, size_t n,
                                 const mp_weighting *w, mp_error *err);
MP_EXPORT void mp_train_set_free(mp_train_set *ts);

/* Validation NDCG@k for early stopping: for each user with events in data->valid, scores all items with `fn`
 * (ctx.history = the user's training events), excludes training items, ranks (mp_topk) and averages NDCG@k
 * against the user's validation items. MP_EEMPTY when there are no validation events. Users are scored in parallel
 * on data->n_threads threads (0: all cores), one score buffer per thread, so fn must be safe to call concurrently;
 * the mean is summed in user order, so the result does not depend on the thread count. Users whose validation
 * items are all in their training history are left out of the mean. */
typedef int (*mp_score_fn)(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err);
MP_EXPORT int mp_train_data_valid_ndcg(const mp_train_data *data, mp_score_fn fn, const void *impl, size_t k,
                                       double *out, mp_error *err);

/* The same with users scored a block at a time, for models that score many users fastest together (one sgemm of a
 * block of user factors against the item factors): fn writes scores[j * n_items + i] for the j-th of the n users
 * in ctxs (ctxs[j].user, .history as above). fn is called from the calling thread, outside any parallel region, so
 * it may use BLAS or OpenMP threads itself; ranking runs on data->n_threads threads. Blocks hold about 16 MiB of
 * scores. Same result as mp_train_data_valid_ndcg given the same scores. */
typedef int (*mp_score_block_fn)(const void *impl, const mp_user_ctx *ctxs, size_t n, float *scores, mp_error *err);
MP_EXPORT int mp_train_data_valid_ndcg_block(const mp_train_data *data, mp_score_block_fn fn, const void *impl,
                                             size_t k, double *out, mp_error *err);

#endif
