/* magpie/model.h: the recommender interface. Every model answers the same calls, so the CLI, the server and
 * the evaluator never special-case one:
 *   fit(data) · recommend(user context, n, exclusions) · score(user, items) · similar(item, n) ·
 *   explain(user, item) · update(user, new events) · save · load
 * A model is created by name from the registry, configured with string parameters (LIBLINEAR-style:
 * defaults, then set/check), fitted, and saved to / loaded from the model file format (modelfile.h). */
#ifndef MAGPIE_MODEL_H
#define MAGPIE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/dataset.h"
#include "magpie/modelfile.h"
#include "magpie/progress.h"
#include "magpie/trainset.h"

/* mp_train_data, mp_user_ctx and MP_NO_USER are in trainset.h (the data layer builds them). */

/* The content of one item, for adding or changing an item after training (a new item is recommendable at once by
 * content-aware models). Strings are NUL-terminated or NULL; borrowed for the call. */
typedef struct mp_item_content {
    const char *title, *description, *category, *brand;
    double price; /* NaN = unknown */
    const float *embedding; /* text embedding by the model's embedding source, or NULL */
    uint32_t embedding_dim;
} mp_item_content;

/* One tunable parameter, for --help and validation. */
typedef struct mp_param_info {
    const char *name;          /* "half_life_days" */
    const char *default_value; /* "0" */
    const char *help;          /* one line */
} mp_param_info;

/* The operations table each model provides (src/models/<name>.c). `impl` is a zeroed block of impl_size bytes
 * initialised by init. Optional operations may be NULL: the wrapper then answers MP_EUNSUPPORTED. */
typedef struct mp_model_ops {
    const char *name;            /* registry name, also written into model files */
    const char *summary;         /* one line for --help */
    uint32_t file_version;       /* version of this model's payload layout */
    size_t impl_size;
    const mp_param_info *params; /* terminated by {NULL} */
    void (*init)(void *impl);    /* sets default parameters */
    int (*set_param)(void *impl, const char *key, const char *value, mp_error *err);
    int (*fit)(void *impl, const mp_train_data *data, const mp_progress *progress, mp_error *err);
    /* scores[i] for every item i < n_items (higher is better); items the model knows nothing about get 0. */
    int (*score_all)(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err);
    /* Predicted rating for explicit-feedback evaluation (RMSE/MAE); optional. */
    int (*predict_rating)(const void *impl, uint32_t user, uint32_t item, double *out, mp_error *err);
    /* Items similar to `item` written to out_items/out_scores (capacity n); *n_out set. Optional. */
    int (*similar)(const void *impl, uint32_t item, size_t n, uint32_t *out_items, float *out_scores, size_t *n_out,
                   mp_error *err);
    /* A short reason ("popular in Skin Care this week"), written NUL-terminated into buf. */
    int (*explain)(const void *impl, const mp_user_ctx *ctx, uint32_t item, char *buf, size_t cap, mp_error *err);
    /* Real-time update with new events (already stored); optional. */
    int (*update)(void *impl, const mp_interaction *events, size_t n, mp_error *err);
    int (*save)(const void *impl, mp_mf_writer *w, mp_error *err);
    int (*load)(void *impl, mp_mf_reader *r, mp_error *err);
    /* Frees what the impl owns (not the impl block) and keeps the parameters: mp_model_fit calls it before
     * refitting a fitted model, mp_model_destroy before freeing the block. */
    void (*release)(void *impl);
    uint32_t (*n_items)(const void *impl); /* item count the fitted model covers */
    /* Inner-product retrieval (optional; latent-factor models). item_vectors gives the item matrix (*n x *dim,
     * row-major; borrowed, valid until the model is next changed by fit/update/load) and query_vector the vector
     * (dim floats) of a context, such that score_all(ctx)[i] == query . item[i] up to float rounding: an ANN index
     * over the item vectors then finds the top items without scoring them all. Models with item biases fold the
     * bias into an extra dimension (query 1). *have = 0 when the model cannot rank ctx (score_all gives zeros). */
    int (*item_vectors)(const void *impl, const float **vecs, uint32_t *n, uint32_t *dim, mp_error *err);
    int (*query_vector)(const void *impl, const mp_user_ctx *ctx, float *out, int *have, mp_error *err);
    /* The right to be forgotten: drops what the model keeps about `user` (its factor row; counters built from
     * its `events`, which are the user's events as the caller knows them). Optional: models that keep nothing
     * per user leave it NULL (what they learnt from the user is gone at the next fit). */
    int (*forget_user)(void *impl, uint32_t user, const mp_interaction *events, size_t n, mp_error *err);
    /* A new or changed item (id may be >= n_items: the model grows). Optional: models without content features
     * leave it NULL. */
    int (*set_item)(void *impl, uint32_t item, const mp_item_content *content, mp_error *err);
} mp_model_ops;

typedef struct mp_model mp_model;

/* NULL-terminated registry of models (static). */
MP_EXPORT const mp_model_ops *const *mp_model_registry(void);
MP_EXPORT const mp_model_ops *mp_model_find(const char *name);

/* Creates an unfitted model with default parameters. Unknown name: MP_EINVAL listing known models.
 * Owned by the caller: mp_model_destroy. */
MP_EXPORT int mp_model_create(mp_model **out, const char *name, mp_error *err);
MP_EXPORT void mp_model_destroy(mp_model *m); /* NULL is a no-op */
MP_EXPORT const mp_model_ops *mp_model_ops_of(const mp_model *m);
/* Sets one parameter from text; unknown keys and bad values give MP_EINVAL naming the key and the reason. */
MP_EXPORT int mp_model_set_param(mp_model *m, const char *key, const char *value, mp_error *err);
/* Parses "k=v,k=v". */
MP_EXPORT int mp_model_set_params(mp_model *m, const char *spec, mp_error *err);
MP_EXPORT int mp_model_fit(mp_model *m, const mp_train_data *data, const mp_progress *progress, mp_error *err);
MP_EXPORT int mp_model_is_fitted(const mp_model *m);
MP_EXPORT uint32_t mp_model_n_items(const mp_model *m);

MP_EXPORT int mp_model_score_all(const mp_model *m, const mp_user_ctx *ctx, float *scores, mp_error *err);
/* Top-n items for ctx: scores all items, drops `exclude` (any order, may contain duplicates) and, when
 * exclude_history is set, every item in ctx->history; optional `allow` mask ([n_items], 1 = allowed) for
 * filters such as category or availability. Ties are broken by lower item id. Writes up to n items, best first. */
MP_EXPORT int mp_model_recommend(const mp_model *m, const mp_user_ctx *ctx, size_t n, const uint32_t *exclude,
                                 size_t n_exclude, int exclude_history, const uint8_t *allow, uint32_t *out_items,
                                 float *out_scores, size_t *n_out, mp_error *err);
MP_EXPORT int mp_model_predict_rating(const mp_model *m, uint32_t user, uint32_t item, double *out, mp_error *err);
MP_EXPORT int mp_model_similar(const mp_model *m, uint32_t item, size_t n, uint32_t *out_items, float *out_scores,
                               size_t *n_out, mp_error *err);
MP_EXPORT int mp_model_explain(const mp_model *m, const mp_user_ctx *ctx, uint32_t item, char *buf, size_t cap,
                               mp_error *err);
MP_EXPORT int mp_model_update(mp_model *m, const mp_interaction *events, size_t n, mp_error *err);

/* Retrieval vectors (see mp_model_ops.item_vectors / query_vector): MP_EUNSUPPORTED for models without them. */
MP_EXPORT int mp_model_item_vectors(const mp_model *m, const float **vecs, uint32_t *n, uint32_t *dim, mp_error *err);
MP_EXPORT int mp_model_query_vector(const mp_model *m, const mp_user_ctx *ctx, float *out, int *have, mp_error *err);
/* Forgets a user (no-op MP_OK for models without per-user state). */
MP_EXPORT int mp_model_forget_user(mp_model *m, uint32_t user, const mp_interaction *events, size_t n,
                                   mp_error *err);

/* Tells the model about a new or changed item: MP_OK and nothing done for models without set_item. */
MP_EXPORT int mp_model_set_item(mp_model *m, uint32_t item, const mp_item_content *content, mp_error *err);
/* 1 if the model uses item content (has set_item). */
MP_EXPORT int mp_model_uses_content(const mp_model *m);

/* Saves to `path` in the model file format (atomic). */
MP_EXPORT int mp_model_save(const mp_model *m, const char *path, mp_error *err);
/* Loads any registered model from `path`; the file names the model type. */
MP_EXPORT int mp_model_load(mp_model **out, const char *path, mp_error *err);
/* The same from a complete model file image in memory (fuzzing, tests); `name` is used in messages. */
MP_EXPORT int mp_model_load_mem(mp_model **out, const void *data, size_t len, const char *name, mp_error *err);

#endif
