/* magpie/trainset.h: turns a set of training events into what models fit on (mp_train_data): the weighted
 * user x item matrix, its transpose and the item metadata of the dataset. Shared by `train`, `eval` and the
 * server so they build training input the same way. */
#ifndef MAGPIE_TRAINSET_H
#define MAGPIE_TRAINSET_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/dataset.h"

#define MP_NO_USER UINT32_MAX

/* The content of the training items, which only content-aware (hybrid, cold-start) models read; every member is
 * optional (NULL). Kept apart from mp_train_data so that the models that ignore content see none of it. (Not
 * mp_item_content of model.h: that is one item's content, given after training.) */
typedef struct mp_train_content {
    const char *const *descriptions; /* [n_items], entries may be NULL */
    const char *const *brands;       /* [n_items], entries may be NULL */
    const double *prices;            /* [n_items], NaN = unknown */
    const float *embeddings;         /* [n_items * embedding_dim] text embeddings (a row of zeros = none) */
    uint32_t embedding_dim;
    const char *embedding_source;    /* encoder name the embeddings came from ("use-lite", ...) or NULL */
} mp_train_content;

/* What a model is trained on. All arrays are borrowed for the duration of fit. */
typedef struct mp_train_data {
    uint32_t n_users, n_items;
    const mp_interaction *events;     /* [n_events] training events sorted by (user, ts) */
    size_t n_events;
    const mp_csr *ui;                 /* user x item weighted matrix of the training events */
    const mp_csr *iu;                 /* its transpose */
    const mp_weighting *weighting;    /* how `ui` was weighted (models may reweight events themselves) */
    const uint32_t *item_category;    /* [n_items] or NULL */
    const char *const *category_names; /* [n_categories] or NULL */
    uint32_t n_categories;
    const char *const *item_titles;   /* [n_items] or NULL (entries may be NULL) */
    const mp_train_content *content;  /* the items' content for content-aware models; NULL: none */
    int64_t now;                      /* reference time (latest training ts) */
    const mp_interaction *valid;      /* [n_valid] optional validation events (sorted by user) for early stopping */
    size_t n_valid;
    int n_threads;                    /* threads a model may use (0: all cores) */
} mp_train_data;

/* Who is asking. `user` may be MP_NO_USER (an anonymous session); history is what is known about them now
 * (training events plus anything newer), sorted by ts. Borrowed for the call. */
typedef struct mp_user_ctx {
    uint32_t user;
    const mp_interaction *history;
    size_t n_history;
    /* Optional text about the user when there is little or no history: a search query or profile attributes
     * ("running shoes", "女 30岁 跑步"), and its embedding by the model's embedding source. Content-aware models
     * use them; others ignore them. NULL / 0 when absent. */
    const char *text;
    size_t text_len;
    const float *text_embedding;
    uint32_t text_embedding_dim;
} mp_user_ctx;


typedef struct mp_train_set {
    mp_train_data data;   /* points into the members below and into the dataset (which must outlive this) */
    mp_train_content content; /* data.content points here: the dataset's descriptions, brands and prices; a caller
                                 may add embeddings (embeddings, embedding_dim, embedding_source) before fitting */
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

/* Mean distinct items per user of the training matrix: nnz(ui) over the users with at least one item (0 when there
 * are none; without ui, events per user). The statistic the data-adaptive defaults read (docs/defaults.md): short sessions of a large catalog
 * (Amazon reviews, about 7) and long rating histories (MovieLens, about 80) want different settings. Pure. */
MP_EXPORT double mp_train_data_items_per_user(const mp_train_data *data);

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
