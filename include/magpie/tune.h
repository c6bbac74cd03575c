/* magpie/tune.h: hyper-parameter search on validation data.
 *
 * A search space names some of a model's parameters with a range or a list of choices:
 *   "factors=16:256:log:int, regularization=1e-4:1:log, alpha=1:50, solver=cg|cholesky, iterations=15"
 *   lo:hi          a real range sampled uniformly (an integer range when both bounds are integers and the
 *                  parameter's default value is an integer, or with the flag :int; :real forces reals)
 *   lo:hi:log      sampled log-uniformly (lo > 0)
 *   a|b|c          one of the choices, uniformly
 *   v              a fixed value
 * Every trial fits the model on the split's training part (without validation events, which are the targets) and
 * scores it on the validation part with history = training part (`magpie eval --on valid`). The search is random
 * for the first two thirds of the trials (the first trial is the model's defaults where they lie in the space)
 * and then refines around the best trial so far with a shrinking radius. The best parameters are refitted on the
 * training part, now with the validation events for early stopping, and evaluated on the test part with history =
 * training + validation (`magpie eval --on test`). Everything is deterministic given the seed. */
#ifndef MAGPIE_TUNE_H
#define MAGPIE_TUNE_H

#include "magpie/dataset.h"
#include "magpie/eval.h"
#include "magpie/model.h"
#include "magpie/split.h"

typedef enum {
    MP_TUNE_REAL,   /* uniform (or log-uniform) real in [lo, hi] */
    MP_TUNE_INT,    /* uniform (or log-uniform) integer in [lo, hi] */
    MP_TUNE_CHOICE, /* one of choices[] (a fixed value is a single choice) */
} mp_tune_kind;

typedef struct mp_tune_param {
    char *name;     /* parameter name, owned */
    mp_tune_kind kind;
    double lo, hi;  /* REAL / INT: inclusive bounds, lo <= hi */
    int log;        /* REAL / INT: sample log-uniformly (lo > 0) */
    char **choices; /* CHOICE: [n_choices] owned strings */
    size_t n_choices;
} mp_tune_param;

typedef struct mp_tune_space {
    mp_tune_param *params; /* [n_params], owned */
    size_t n_params;
} mp_tune_space;

/* Parses a space (grammar above) for the model `ops` and checks it: every name must be one of the model's
 * parameters, and every bound and choice must be accepted by the model's set_param. Errors name the entry and the
 * reason ("space entry \"factors=-1:8\": factors: expected ..."). *out is caller-owned; free with
 * mp_tune_space_free (also fine on a zeroed struct). */
MP_EXPORT int mp_tune_space_parse(mp_tune_space *out, const mp_model_ops *ops, const char *spec, mp_error *err);
/* The default space of a model: the tuning range and scale each of its parameters declares in its descriptor
 * (mp_param_info.tune, see mp_param_tune_spec), in the model's table order. MP_EEMPTY when the model tunes nothing
 * by default (then pass a space). */
MP_EXPORT int mp_tune_space_default(mp_tune_space *out, const mp_model_ops *ops, mp_error *err);
/* The space as text in the grammar above; *out is malloc'ed, caller frees. MP_OK or MP_ENOMEM. */
MP_EXPORT int mp_tune_space_format(const mp_tune_space *s, char **out);
MP_EXPORT void mp_tune_space_free(mp_tune_space *s);

/* What a trial is scored by. */
typedef enum {
    MP_TUNE_NDCG, MP_TUNE_HR, MP_TUNE_PRECISION, MP_TUNE_RECALL, MP_TUNE_MAP, MP_TUNE_MRR,
    MP_TUNE_AUC, MP_TUNE_RMSE, MP_TUNE_MAE,
} mp_tune_metric_kind;

typedef struct mp_tune_metric {
    mp_tune_metric_kind kind;
    uint32_t k; /* cut-off of the ranking metrics (ignored by auc, rmse, mae) */
} mp_tune_metric;

/* Parses "ndcg@10", "hr@5", "precision@10" (or "p@10"), "recall@20" (or "r@20"), "map@10", "mrr@10", "auc",
 * "rmse", "mae". MP_EINVAL with a message listing the accepted names. */
MP_EXPORT int mp_tune_metric_parse(const char *s, mp_tune_metric *out, mp_error *err);
/* "ndcg@10" into buf (NUL-terminated); returns buf. */
MP_EXPORT const char *mp_tune_metric_name(const mp_tune_metric *m, char *buf, size_t cap);
/* 1 for error metrics (rmse, mae), which are minimised; 0 for the rest, maximised. */
MP_EXPORT int mp_tune_metric_minimize(const mp_tune_metric *m);
/* The metric's overall value in r; NaN when r does not hold it (k not evaluated, no ratings). */
MP_EXPORT double mp_tune_metric_value(const mp_tune_metric *m, const mp_eval_result *r);

typedef struct mp_tune_trial {
    char *params;        /* the sampled values, "factors=64,regularization=0.01"; owned */
    double value;        /* the metric on the validation part; NaN when the trial failed */
    double fit_seconds;  /* wall time of the fit */
    double eval_seconds; /* wall time of the validation evaluation */
    int rc;              /* MP_OK, or why the trial failed (the search goes on) */
    char *error;         /* message of a failed trial, owned; NULL otherwise */
} mp_tune_trial;

typedef struct mp_tune_opts {
    const char *model;            /* registry name */
    const char *base_params;      /* "k=v,..." set before each trial's values (fixed parameters), or NULL */
    const mp_tune_space *space;   /* parameters searched (mp_tune_space_parse / _default) */
    uint32_t n_trials;            /* trials to run (default 30); fewer when a finite space runs out */
    uint64_t seed;                /* seed of the search (default 42) */
    mp_tune_metric metric;        /* default ndcg@10 */
    mp_eval_opts eval;            /* history mode, threads and the cut-offs of the final test evaluation; trials
                                     evaluate only the metric's cut-off */
    int n_threads;                /* threads models may use (mp_train_data.n_threads; 0: all cores) */
    int refit;                    /* 1 (default): refit the best parameters and evaluate them on the test part */
    const mp_progress *progress;  /* passed to every fit and evaluation, or NULL */
    /* Called after each trial (index into result->trials) with the index of the best trial so far (SIZE_MAX
     * while none has succeeded). May be NULL. */
    void (*on_trial)(void *ctx, const mp_tune_trial *trial, size_t index, size_t best);
    void *on_trial_ctx;
} mp_tune_opts;

/* Defaults as documented on each field; model, space left NULL. */
MP_EXPORT void mp_tune_opts_default(mp_tune_opts *o);

typedef struct mp_tune_result {
    mp_tune_trial *trials;     /* [n_trials] in the order they ran, owned */
    size_t n_trials;
    size_t best;               /* index of the best trial (ties: the earlier one) */
    char *best_params;         /* base_params and the best trial's values, for mp_model_set_params; owned */
    int has_test;              /* 1 when test holds the refitted model's test metrics */
    mp_eval_result test;       /* the best parameters refitted, on the test part */
    mp_model *model;           /* the refitted model (opts.refit), owned; NULL otherwise */
} mp_tune_result;

/* Runs the search on `sp` (a split of `ds` with a non-empty validation part, e.g. with_valid = 1) with the
 * training matrix weighted by `w` (NULL: defaults). Trials that fail (a value combination the model refuses, a
 * fit error) are recorded with their message and the search continues; MP_EEMPTY when every trial failed, with
 * the first failure's message. *out is caller-owned: free with mp_tune_result_free (also after an error). */
MP_EXPORT int mp_tune_run(const mp_dataset *ds, const mp_split *sp, const mp_weighting *w, const mp_tune_opts *o,
                          mp_tune_result *out, mp_error *err);
MP_EXPORT void mp_tune_result_free(mp_tune_result *r);

#endif
