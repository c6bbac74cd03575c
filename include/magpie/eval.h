/* magpie/eval.h: offline evaluation: ranking metrics (pure functions, unit-tested by hand) and the harness
 * that runs a fitted model over a split.
 *
 * Definitions (binary relevance; `rel` = the user's held-out items, `ranked` = the top-k list best first):
 *   HR@k        1 if any of the top k is relevant
 *   Precision@k hits / k
 *   Recall@k    hits / |rel|
 *   NDCG@k      sum_{hit at rank r<=k} 1/log2(r+1)  /  sum_{r=1..min(|rel|,k)} 1/log2(r+1)
 *   MAP@k       sum_{hit at rank r<=k} (hits in top r)/r  /  |rel|   (as Microsoft Recommenders' map_at_k)
 *   MRR@k       1/rank of the first hit within k, else 0
 *   AUC         per user, over candidate items: P(score(pos) > score(neg)), ties count 1/2
 *   coverage@k  distinct items recommended / catalog items
 *   novelty@k   mean over recommended items of -log2(train users of item / train users); unseen items count 1 user
 *   ILD@k       mean over pairs in a list of [category differs]
 *   Gini@k      Gini coefficient of how often each catalog item is recommended (0 = even exposure)
 * Ties in scores are broken by lower item id everywhere, so results are deterministic.
 *
 * Thread safety: the metric functions and the formatters are pure and may run on any thread. mp_evaluate only
 * reads the model and the data, so several evaluations of one fitted model may run at once (as long as nothing
 * refits it meanwhile); it calls score_all from its own worker threads. */
#ifndef MAGPIE_EVAL_H
#define MAGPIE_EVAL_H

#include "magpie/dataset.h"
#include "magpie/model.h"
#include "magpie/progress.h"

MP_EXPORT double mp_metric_hr(const uint32_t *ranked, size_t n_ranked, const uint32_t *rel, size_t n_rel, size_t k);
MP_EXPORT double mp_metric_precision(const uint32_t *ranked, size_t n_ranked, const uint32_t *rel, size_t n_rel,
                                     size_t k);
MP_EXPORT double mp_metric_recall(const uint32_t *ranked, size_t n_ranked, const uint32_t *rel, size_t n_rel,
                                  size_t k);
MP_EXPORT double mp_metric_ndcg(const uint32_t *ranked, size_t n_ranked, const uint32_t *rel, size_t n_rel, size_t k);
MP_EXPORT double mp_metric_map(const uint32_t *ranked, size_t n_ranked, const uint32_t *rel, size_t n_rel, size_t k);
MP_EXPORT double mp_metric_mrr(const uint32_t *ranked, size_t n_ranked, const uint32_t *rel, size_t n_rel, size_t k);
/* scores[n_items]; candidate mask (NULL = all); rel must be candidates. Returns NaN if no pos or no neg. */
MP_EXPORT double mp_metric_auc(const float *scores, size_t n_items, const uint8_t *candidate, const uint32_t *rel,
                               size_t n_rel);
MP_EXPORT double mp_metric_gini(const uint64_t *counts, size_t n);
MP_EXPORT double mp_metric_ild(const uint32_t *ranked, size_t n_ranked, const uint32_t *item_category);
MP_EXPORT double mp_metric_novelty(const uint32_t *ranked, size_t n_ranked, const uint64_t *item_users,
                                   uint64_t n_users);

/* How items the user already has (history) are treated when ranking. */
typedef enum {
    MP_HISTORY_EXCLUDE, /* removed from the ranking (default) */
    MP_HISTORY_ZERO,    /* score set to 0 and kept, as the S3-Rec code does (reproduces its tables) */
    MP_HISTORY_KEEP,    /* left as scored */
} mp_history_mode;

/* Errors: MP_EINVAL (s is NULL or not one of those names). */
MP_EXPORT int mp_history_mode_parse(const char *s, mp_history_mode *out); /* "exclude", "zero", "keep" */
MP_EXPORT const char *mp_history_mode_name(mp_history_mode m);             /* static storage */

#define MP_EVAL_MAX_K 8

typedef struct mp_eval_opts {
    uint32_t ks[MP_EVAL_MAX_K];   /* cut-offs, ascending */
    size_t n_ks;
    mp_history_mode history;
    uint32_t sampled_negatives;   /* 0: full ranking over all items; N: target vs N sampled non-history items */
    uint64_t seed;                /* for sampled negatives */
    uint32_t cold_threshold;      /* users with <= this many distinct training items form the "cold" group (5) */
    const mp_progress *progress;
    uint32_t n_threads;           /* worker threads over users (0: 2); results do not depend on it */
} mp_eval_opts;

MP_EXPORT void mp_eval_opts_default(mp_eval_opts *o); /* k = 5,10,20; exclude; full ranking; cold <= 5 */
/* Parses "5,10,20" into o->ks (ascending and de-duplicated; o is unchanged on failure).
 * Errors: MP_EINVAL (not a comma-separated list of integers 1..10000, none, or more than MP_EVAL_MAX_K). */
MP_EXPORT int mp_eval_parse_ks(mp_eval_opts *o, const char *spec, mp_error *err);

typedef struct mp_eval_data {
    uint32_t n_users, n_items;
    const mp_interaction *history; /* [n_history] sorted by user: what each user has at evaluation time */
    size_t n_history;
    const mp_interaction *train;   /* [n_train] the model's training events (popularity for novelty, cold/warm) */
    size_t n_train;
    const mp_interaction *test;    /* [n_test] sorted by user: held-out events; their items are the targets */
    size_t n_test;
    const uint32_t *item_category; /* [n_items] or NULL (ILD then not reported) */
} mp_eval_data;

typedef struct mp_topk_metrics {
    double hr, precision, recall, ndcg, map, mrr;
    double coverage, novelty, ild, gini;
} mp_topk_metrics;

typedef struct mp_eval_group {
    uint64_t n_users;              /* users evaluated in this group */
    mp_topk_metrics at[MP_EVAL_MAX_K];
    double auc;
    uint64_t n_ratings;            /* test events with a value that were predicted */
    double rmse, mae;              /* NaN when the model does not predict ratings or there are none */
} mp_eval_group;

typedef struct mp_eval_result {
    uint32_t ks[MP_EVAL_MAX_K];
    size_t n_ks;
    mp_eval_group overall, cold, warm;
    int sampled;                   /* 1 if sampled negatives were used: label results as such */
    uint32_t sampled_negatives;    /* N when sampled */
    mp_history_mode history;
    uint32_t n_items;              /* catalog size (denominator of coverage) */
    uint64_t n_skipped;            /* users with test items not evaluated: every target was already in their
                                      history and the history mode is exclude */
} mp_eval_result;

/* Evaluates a fitted model: for every user with test items, scores all items (with ctx.history = their history),
 * applies the history mode, ranks, and accumulates metrics; then rating error on valued test events when the
 * model predicts ratings (MP_EUNSUPPORTED from the model gives NaN, not an error).
 *
 * Per user: the targets are the user's distinct test items; with MP_HISTORY_EXCLUDE targets already in the history
 * are dropped (they could never be ranked) and a user left without targets is counted in n_skipped. Metrics are
 * averaged over users. AUC is over the candidate set (all items, less the history with EXCLUDE; the targets plus
 * the sampled negatives when sampled). Sampled mode: negatives are drawn uniformly without replacement from the
 * items that are neither history nor target, with a generator seeded from (seed, user), so results depend only on
 * the seed. Coverage, Gini and the cold / warm groups use data->train; cold = <= cold_threshold distinct training
 * items. Users are scored by opts->n_threads threads but summed in user order, so results never depend on the
 * thread count. The model's score_all must be safe to call from several threads at once (it is const).
 * Errors: MP_EINVAL (the model is not fitted; n_ks outside 1..MP_EVAL_MAX_K or cut-offs not positive and
 * ascending; history, test or train events not sorted by user or with a user >= n_users), MP_ENOMEM, and any code
 * the model's score_all or predict_rating returns (passed through, see model.h; MP_EUNSUPPORTED from
 * predict_rating is not an error). */
MP_EXPORT int mp_evaluate(const mp_model *m, const mp_eval_data *data, const mp_eval_opts *opts,
                          mp_eval_result *out, mp_error *err);

/* Anything that can score: mp_evaluate wraps a model in this; tests and experiments can pass their own. */
typedef struct mp_eval_scorer {
    /* Writes scores[i] for i < n_items (as mp_model_ops.score_all); called concurrently from worker threads. */
    int (*score_all)(const void *ctx, const mp_user_ctx *uctx, float *scores, mp_error *err);
    /* Predicted rating; NULL or MP_EUNSUPPORTED: no rating metrics. */
    int (*predict_rating)(const void *ctx, uint32_t user, uint32_t item, double *out, mp_error *err);
    const void *ctx;
    uint32_t n_items; /* how many scores score_all writes (0: data->n_items); items of data beyond it score 0 */
} mp_eval_scorer;

/* mp_evaluate over any scorer. Errors: as mp_evaluate (MP_EINVAL also for s or s->score_all NULL), with the
 * scorer's own codes passed through. */
MP_EXPORT int mp_evaluate_scorer(const mp_eval_scorer *s, const mp_eval_data *data, const mp_eval_opts *opts,
                                 mp_eval_result *out, mp_error *err);

/* Formats a result as a markdown table (human) or JSON; *out is malloc'ed, caller frees. `title` labels it.
 * Sampled results are labelled "SAMPLED" in the table and `"sampled": true` in JSON; NaN is "n/a" / null.
 * Errors: MP_ENOMEM. */
MP_EXPORT int mp_eval_result_table(const mp_eval_result *r, const char *title, char **out);
MP_EXPORT int mp_eval_result_json(const mp_eval_result *r, const char *title, char **out);

#endif
