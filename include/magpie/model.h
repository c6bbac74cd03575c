/* magpie/model.h: the recommender interface. Every model answers the same calls, so the CLI, the server and
 * the evaluator never special-case one:
 *   fit(data) · recommend(user context, n, exclusions) · score(user, items) · similar(item, n) ·
 *   explain(user, item) · update(user, new events) · save · load
 * A model is created by name from the registry, configured with string parameters (LIBLINEAR-style:
 * defaults, then set/check; each parameter declared once in a descriptor table, mp_param_info), fitted, and saved
 * to / loaded from the model file format (modelfile.h). Which calls may run at once: see "Threads" below. */
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

/* One parameter of a model, declared once in the model's static table; src/models/params.c derives from it the
 * defaults, parsing of "name=value", the bounds check, the model-file encoding, the --help listing and the default
 * search range of `magpie tune`. A model declares a table and writes no parser. */
typedef enum mp_param_type {
    MP_PARAM_BOOL,   /* int, 0 or 1; u32 on disk */
    MP_PARAM_INT,    /* int in [imin, imax]; u32 on disk */
    MP_PARAM_UINT,   /* uint32_t in [imin, imax]; u32 on disk */
    MP_PARAM_U64,    /* uint64_t in [imin, imax]; u64 on disk */
    MP_PARAM_DOUBLE, /* finite double in [lo, hi] (lo excluded when lo_open); f64 on disk */
    MP_PARAM_CHOICE, /* int, index into choices[n_choices]; u32 on disk */
} mp_param_type;

/* How `magpie tune` searches a parameter by default. Integer types draw integers. */
typedef enum mp_param_scale {
    MP_PARAM_TUNE_NONE,   /* not tuned by default: keeps its value */
    MP_PARAM_TUNE_LINEAR, /* uniform in [tune_lo, tune_hi] */
    MP_PARAM_TUNE_LOG,    /* log-uniform in [tune_lo, tune_hi] (tune_lo > 0) */
    MP_PARAM_TUNE_CHOICES /* one of tune_choices ("0|7|30"), or when NULL every choice (CHOICE) or 0|1 (BOOL) */
} mp_param_scale;

typedef struct mp_param_info {
    const char *name;          /* "half_life_days" */
    const char *default_value; /* "0": the default, written once; init sets it like a user's value */
    const char *help;          /* one line */
    mp_param_type type;
    size_t offset;             /* offsetof(the model's params struct, field) */
    uint64_t imin, imax;       /* integer types: inclusive bounds */
    double lo, hi;             /* DOUBLE: bounds; hi may be INFINITY (any finite value) */
    int lo_open;               /* DOUBLE: lo itself is refused */
    int allow_auto;            /* DOUBLE, UINT: "auto" is accepted: the value becomes 0 and the int at auto_offset 1
                                * (the model derives the value from the data at fit) */
    size_t auto_offset;        /* with allow_auto: offsetof the int flag (saved as u32 after the value) */
    const char *const *choices; /* CHOICE: names, index = stored value */
    uint32_t n_choices;
    const char *alias;         /* another accepted name, or NULL */
    mp_param_scale tune;
    double tune_lo, tune_hi;   /* LINEAR / LOG */
    const char *tune_choices;  /* CHOICES: "a|b|c", or NULL (see mp_param_scale) */
} mp_param_info;

/* Entries in a {NULL}-terminated descriptor table, for mp_model_ops.n_params. */
#define MP_PARAM_COUNT(table) (sizeof(table) / sizeof((table)[0]) - 1)

/* The parameter's bounds or choices as text ("an integer in 1..4096", "one of cg or cholesky"); returns buf. */
MP_EXPORT const char *mp_param_describe(const mp_param_info *p, char *buf, size_t cap);
/* The default search range in the grammar of magpie/tune.h ("16:256:log:int", "none|tfidf|bm25") into buf;
 * returns 0 when the parameter is not tuned by default (buf empty), 1 otherwise. */
MP_EXPORT int mp_param_tune_spec(const mp_param_info *p, char *buf, size_t cap);

/* The operations table each model provides (src/models/<name>.c). `impl` is a zeroed block of impl_size bytes
 * initialised by init. Optional operations may be NULL: the wrapper then answers MP_EUNSUPPORTED. */
typedef struct mp_model_ops {
    const char *name;            /* registry name, also written into model files */
    const char *summary;         /* one line for --help */
    uint32_t file_version;       /* version of this model's payload layout */
    size_t impl_size;
    const mp_param_info *params; /* [n_params] descriptors, also terminated by {NULL} */
    size_t n_params;
    size_t params_offset;        /* where the params struct the descriptors' offsets refer to lies in impl */
    size_t params_size;          /* its size */
    /* Cross-field check of a whole parameter set, after every field passed its own bounds (optional): MP_EINVAL
     * and a message naming the parameters. Called before fit and after load. */
    int (*check_params)(const void *params, mp_error *err);
    void (*init)(void *impl);    /* state other than parameters (which the table's defaults set first); optional */
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

/* Threads. A model is readers-writer: the calls taking a `const mp_model *` (score_all, recommend, predict_rating,
 * similar, explain, item_vectors, query_vector, check_params, n_items, is_fitted, uses_content, save) only read it
 * and may run at the same time from any number of threads. The calls taking a `mp_model *` (set_param,
 * set_params, fit, update, forget_user, set_item, destroy) change it and need exclusive access: no other call on
 * the same model may run during them (the server swaps in a new model, or holds a write lock around update and
 * set_item). Different models share nothing and need no coordination; the registry is static and read-only.
 * fit may use several threads itself (mp_train_data.n_threads), and so may a model's score_all.
 *
 * Errors (LMDB style: the codes below are the ones each call can return; the message in `err` says which input
 * and why). Every call that allocates can also give MP_ENOMEM. */

/* NULL-terminated registry of models (static). */
MP_EXPORT const mp_model_ops *const *mp_model_registry(void);
MP_EXPORT const mp_model_ops *mp_model_find(const char *name);

/* Creates an unfitted model with the default parameters of its descriptor table. Owned by the caller:
 * mp_model_destroy. Possible errors: MP_EINVAL (unknown name; the message lists the known models), MP_ENOMEM. */
MP_EXPORT int mp_model_create(mp_model **out, const char *name, mp_error *err);
MP_EXPORT void mp_model_destroy(mp_model *m); /* NULL is a no-op */
MP_EXPORT const mp_model_ops *mp_model_ops_of(const mp_model *m);
/* Sets one parameter from text (its name or alias, see mp_param_info). The model keeps its previous value on an
 * error. Possible errors: MP_EINVAL (unknown key: the message lists the parameters; a bad value: the message names
 * the parameter, the value and what is allowed). */
MP_EXPORT int mp_model_set_param(mp_model *m, const char *key, const char *value, mp_error *err);
/* The whole parameter set within bounds and consistent (what fit checks first). Possible errors: MP_EINVAL
 * naming the parameter. */
MP_EXPORT int mp_model_check_params(const mp_model *m, mp_error *err);
/* Parses "k=v,k=v" and sets each in order, stopping at the first error (earlier ones stay set). Possible errors:
 * MP_EINVAL (as set_param, or an entry without '='), MP_ENOMEM. */
MP_EXPORT int mp_model_set_params(mp_model *m, const char *spec, mp_error *err);
/* Fits from scratch (a fitted model drops its fitted state first, keeping its parameters). On an error the model
 * is unfitted. Possible errors: MP_EINVAL (parameters that fail check_params, no data, data the model cannot use),
 * MP_EEMPTY (no training events), MP_ERANGE (a numerical failure, e.g. a Gram matrix that is not positive
 * definite), MP_EUNSUPPORTED (a model that cannot be fitted), MP_ENOMEM. */
MP_EXPORT int mp_model_fit(mp_model *m, const mp_train_data *data, const mp_progress *progress, mp_error *err);
MP_EXPORT int mp_model_is_fitted(const mp_model *m);
MP_EXPORT uint32_t mp_model_n_items(const mp_model *m);

/* Possible errors of the reading calls below: MP_EINVAL (the model is not fitted, or a bad argument),
 * MP_EUNSUPPORTED (the model lacks the operation), MP_ENOTFOUND (an item the model does not cover), MP_ENOMEM. */
MP_EXPORT int mp_model_score_all(const mp_model *m, const mp_user_ctx *ctx, float *scores, mp_error *err);
/* Top-n items for ctx: scores all items, drops `exclude` (any order, may contain duplicates) and, when
 * exclude_history is set, every item in ctx->history; optional `allow` mask ([n_items], 1 = allowed) for
 * filters such as category or availability. Ties are broken by lower item id. Writes up to n items, best first. */
MP_EXPORT int mp_model_recommend(const mp_model *m, const mp_user_ctx *ctx, size_t n, const uint32_t *exclude,
                                 size_t n_exclude, int exclude_history, const uint8_t *allow, uint32_t *out_items,
                                 float *out_scores, size_t *n_out, mp_error *err);
/* Top-n for many users in one call (batch scoring: the Python package, whole-catalogue runs): row j of
 * out_items / out_scores ([n_ctx * n], row-major) gets what mp_model_recommend(ctxs[j], n, NULL, 0,
 * exclude_history, allow) writes, n_out[j] its count, and the row's unused slots UINT32_MAX / NaN. Users are
 * ranked on n_threads threads (0: all cores) with one score buffer per thread; rows do not depend on the thread
 * count. progress (may be NULL) gets stage "recommend" with users done of n_ctx, from the calling thread. A reading
 * call (see Threads). Possible errors: as mp_model_recommend (the message names the failing row; other rows are
 * then unspecified), MP_EINVAL (n == 0 or ctxs NULL with n_ctx > 0). */
MP_EXPORT int mp_model_recommend_many(const mp_model *m, const mp_user_ctx *ctxs, size_t n_ctx, size_t n,
                                      int exclude_history, const uint8_t *allow, int n_threads,
                                      const mp_progress *progress, uint32_t *out_items, float *out_scores,
                                      size_t *n_out, mp_error *err);
MP_EXPORT int mp_model_predict_rating(const mp_model *m, uint32_t user, uint32_t item, double *out, mp_error *err);
MP_EXPORT int mp_model_similar(const mp_model *m, uint32_t item, size_t n, uint32_t *out_items, float *out_scores,
                               size_t *n_out, mp_error *err);
MP_EXPORT int mp_model_explain(const mp_model *m, const mp_user_ctx *ctx, uint32_t item, char *buf, size_t cap,
                               mp_error *err);
/* Real-time update (fold-in) with new events; exclusive access. Possible errors: MP_EINVAL (not fitted, a bad
 * event), MP_EUNSUPPORTED, MP_ENOMEM. */
MP_EXPORT int mp_model_update(mp_model *m, const mp_interaction *events, size_t n, mp_error *err);

/* Retrieval vectors (see mp_model_ops.item_vectors / query_vector): MP_EUNSUPPORTED for models without them;
 * MP_EINVAL when not fitted. The vectors stay valid until the next fit, update, set_item or load. */
MP_EXPORT int mp_model_item_vectors(const mp_model *m, const float **vecs, uint32_t *n, uint32_t *dim, mp_error *err);
MP_EXPORT int mp_model_query_vector(const mp_model *m, const mp_user_ctx *ctx, float *out, int *have, mp_error *err);
/* Forgets a user (no-op MP_OK for models without per-user state); exclusive access. Possible errors: MP_EINVAL
 * (not fitted, MP_NO_USER), MP_ENOMEM. */
MP_EXPORT int mp_model_forget_user(mp_model *m, uint32_t user, const mp_interaction *events, size_t n,
                                   mp_error *err);

/* Tells the model about a new or changed item: MP_OK and nothing done for models without set_item; exclusive
 * access. Possible errors: MP_EINVAL (not fitted, no content, content the model cannot use), MP_ENOMEM. */
MP_EXPORT int mp_model_set_item(mp_model *m, uint32_t item, const mp_item_content *content, mp_error *err);
/* 1 if the model uses item content (has set_item). */
MP_EXPORT int mp_model_uses_content(const mp_model *m);

/* Saves to `path` in the model file format (atomic); a reading call. Possible errors: MP_EINVAL (not fitted),
 * MP_EUNSUPPORTED, MP_EIO, MP_ENOMEM. */
MP_EXPORT int mp_model_save(const mp_model *m, const char *path, mp_error *err);
/* Loads any registered model from `path`; the file names the model type. Possible errors: MP_ENOTFOUND (no such
 * file), MP_EIO (cannot read),
 * MP_ECORRUPT (not a model file, a checksum mismatch, a truncated or inconsistent payload, parameters out of
 * range), MP_EVERSION (a newer file format or model version), MP_EUNSUPPORTED (a model this build does not know),
 * MP_ENOMEM. */
MP_EXPORT int mp_model_load(mp_model **out, const char *path, mp_error *err);
/* The same from a complete model file image in memory (fuzzing, tests); `name` is used in messages. */
MP_EXPORT int mp_model_load_mem(mp_model **out, const void *data, size_t len, const char *name, mp_error *err);

#endif
