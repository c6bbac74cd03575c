/* magpie/ope.h: off-policy evaluation (OPE) of a recommendation policy from logged bandit feedback.
 *
 * A log holds n rounds (one shown item each): the action a_i (item), an optional slot s_i (position in the list),
 * the reward r_i (click: 0/1, or any real), the logging policy's propensity pi_b(a_i | x_i, s_i) and an optional
 * context id c_i (a user type: a distinct tuple of categorical user features, used by the reward model).
 * The evaluation policy pi_e is given as a dense table pi_e(a | x, s) and a reward model as a dense table
 * q(x, a, s) = estimated E[r | x, a, s]; both are matrices of shape (rows, S, A) with a row chosen per round.
 *
 * Per round, with w_i = pi_e(a_i | x_i, s_i) / pi_b(a_i | x_i, s_i), q_i = q(x_i, a_i, s_i) and
 * m_i = sum_a pi_e(a | x_i, s_i) q(x_i, a, s_i), the estimators of V(pi_e) = E[r] under pi_e are
 * (as in the obp library and the OPE literature; obp's names in brackets):
 *   DM        = mean(m)                                         (DirectMethod)
 *   IPS       = mean(w r)                                       (InverseProbabilityWeighting)
 *   SNIPS     = sum(w r) / sum(w)                               (SelfNormalizedInverseProbabilityWeighting)
 *   DR        = mean(m + w (r - q))                             (DoublyRobust)
 *   SNDR      = mean(m) + sum(w (r - q)) / sum(w)               (SelfNormalizedDoublyRobust: the correction
 *                                                                divided by mean(w) instead of 1)
 *   Switch-DR = mean(m + 1[w <= tau] w (r - q))                 (SwitchDoublyRobust, lambda_ = tau: the IPS-style
 *                                                                correction only where w <= tau, DM elsewhere;
 *                                                                tau = inf gives DR, tau = 0 gives DM)
 * For slate logs (OBD) each (round, slot) impression is one row, and V is the mean reward per impression.
 *
 * Confidence intervals: a nonparametric bootstrap over rows (B resamples with replacement, seeded, all estimators
 * computed on the same resamples), percentile interval [q(alpha/2), q(1 - alpha/2)]. As in obp, the reward model is
 * not refitted per resample, so DM's interval holds only the sampling variance of the rounds, not the model's bias
 * (it is typically far too narrow); the weighted estimators' intervals are the meaningful ones.
 *
 * Ownership: every struct filled by an mp_ope_* call owns its arrays (malloc'ed) and is released with its
 * *_free function; a struct the caller fills by hand stays the caller's (do not pass it to *_free unless its
 * arrays came from malloc). No call keeps a pointer to its inputs.
 *
 * Thread safety: no call has hidden state (randomness comes from the seeds given); every call only reads its
 * inputs and writes its outputs, so calls may run concurrently as long as no thread writes a log, table or rounds
 * struct that another is reading. */
#ifndef MAGPIE_OPE_H
#define MAGPIE_OPE_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"
#include "magpie/strmap.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the log ---- */

typedef struct mp_ope_log {
    size_t n;           /* rounds (rows) */
    uint32_t n_actions; /* A: action ids are 0..A-1 */
    uint32_t n_slots;   /* S >= 1: slot ids are 0..S-1 (1 when the log has no positions) */
    uint32_t *action;   /* [n] action ids */
    uint32_t *slot;     /* [n] slot ids, or NULL (all rounds in slot 0; requires S == 1) */
    double *reward;     /* [n] rewards */
    double *pscore;     /* [n] pi_b(a_i | x_i, s_i), in (0, 1] */
    /* Contexts for the reward model (optional: n_ctx == 0 and ctx == NULL means one shared context). */
    uint32_t n_ctx;     /* C: distinct contexts */
    uint32_t *ctx;      /* [n] context ids 0..C-1, or NULL */
    uint32_t n_feat;    /* F: categorical features per context (0: the context id is not described) */
    uint32_t n_values;  /* V: feature value ids are 0..V-1 (each (column, value) pair has its own id) */
    uint32_t *ctx_feat; /* [C * F] feature value ids of each context, or NULL */
    /* Labels as they appear in the file (owned; NULL for hand-built logs). */
    mp_strmap *action_labels; /* action id -> label ("14" for OBD item 14) */
    int64_t *slot_labels;     /* [S] the file's position value of each slot (OBD: 1, 2, 3), or NULL */
} mp_ope_log;

/* Frees the arrays of a log filled by an mp_ope_* reader or generator and zeroes it; NULL is a no-op. */
MP_EXPORT void mp_ope_log_free(mp_ope_log *log);

/* Checks shapes and values: ids in range, propensities finite and in (0, 1], rewards finite, slot == NULL only
 * when S == 1, ctx == NULL only when n_ctx <= 1. `what` names the log in messages. MP_EINVAL / MP_ERANGE.
 * Errors: MP_EINVAL (log NULL, a missing array, zero actions or slots), MP_EEMPTY (n == 0), MP_ERANGE (an id out
 * of range, a propensity outside (0, 1], a non-finite reward). */
MP_EXPORT int mp_ope_log_check(const mp_ope_log *log, const char *what, mp_error *err);

/* ---- readers ----
 * Formats (all with rows in any order):
 *  MP_OPE_FORMAT_CSV: header row naming columns; `action` (item label), `reward` (number), `propensity` (number in
 *    (0, 1]) are required, `position` (integer) optional; every other column is a categorical context feature
 *    (its text is the category) except `event_id`, `user`, `timestamp` and an unnamed row-index column, which
 *    are ignored. Fields may be double-quoted ("" inside quotes is a quote). Example:
 *      action,position,reward,propensity,user_segment
 *      shoe-12,1,0,0.2,young
 *  MP_OPE_FORMAT_OBD: the Open Bandit Dataset's <campaign>.csv (",timestamp,item_id,position,click,
 *    propensity_score,user_feature_0..3,user-item_affinity_*"): action = item_id, reward = click,
 *    propensity = propensity_score, slot = position (1..3 -> slots 0..2), context = the user_feature_* tuple.
 *  MP_OPE_FORMAT_JSONL: Magpie's serving feedback log, one object per line:
 *      {"event_id":"e1","user":"u7","item":"shoe-12","position":1,"propensity":0.25,"reward":1}
 *    event_id and user (strings) are required but only checked; the log has no context features (users are too
 *    many for one-hot features), so the reward model uses the item and the position.
 * Action ids: when every label is a non-negative integer (< 2^24) the id is that integer and A = max + 1 (so OBD
 * items keep their numbers); otherwise ids follow first appearance. Slots: the distinct position values in
 * increasing order (obp's dense rank). Errors name "file:line: column `x`: why". */
typedef enum { MP_OPE_FORMAT_CSV = 0, MP_OPE_FORMAT_OBD = 1, MP_OPE_FORMAT_JSONL = 2 } mp_ope_format;

/* Parses "csv" / "obd" / "jsonl"; -1 when unknown (not an error code: -1 is also MP_ENOMEM's value). */
MP_EXPORT int mp_ope_format_parse(const char *name);
/* Reads a log file into *out (caller frees with mp_ope_log_free). On failure *out is zeroed.
 * Errors: MP_EIO (cannot open or read, also a missing file), MP_EBADREC (a malformed line or header, a missing
 * column or field; fatal here, unlike mp_reader_next), MP_ERANGE (a propensity outside (0, 1], a non-finite
 * reward), MP_EINVAL (unknown format, more than 63 feature columns or 1000 positions), MP_EEMPTY (no header or no
 * rows), MP_ENOMEM. */
MP_EXPORT int mp_ope_log_read(const char *path, mp_ope_format format, mp_ope_log *out, mp_error *err);

/* ---- dense per-round tables (evaluation policy, reward model) ---- */

/* A matrix of shape (rows, S, A), row-major: v[(row * S + s) * A + a]. Round i uses row row_of[i] when row_of is
 * set, else row i when rows == n, else row 0 (rows == 1: the same for every round). */
typedef struct mp_ope_table {
    double *v;        /* [rows * S * A] */
    size_t rows;      /* number of rows */
    uint32_t *row_of; /* [n] or NULL */
} mp_ope_table;

MP_EXPORT void mp_ope_table_free(mp_ope_table *t);

/* Checks that pi_e has rows of probabilities: every entry in [0, 1] and each (row, slot) summing to 1 within
 * 1e-6, and that row_of is in range. MP_EINVAL / MP_ERANGE naming the first bad row.
 * Errors: MP_EINVAL (an empty table, or rows neither 1 nor n without row_of), MP_ERANGE (row_of out of range, a
 * probability outside [0, 1], a row not summing to 1). */
MP_EXPORT int mp_ope_policy_check(const mp_ope_log *log, const mp_ope_table *pi_e, mp_error *err);

/* Bernoulli Thompson sampling's ranking distribution, as obp's BernoulliTS.compute_batch_action_dist: n_sim
 * times draw theta_a ~ Beta(alpha_a, beta_a) for every action, rank by theta descending, and count which action
 * lands in each of the top `n_slots` positions; pi(a | s) = count / n_sim. Fills a 1-row table (caller frees).
 * alpha, beta: [n_actions], positive. Deterministic for a seed.
 * Errors: MP_EINVAL (n_slots outside 1..n_actions, n_sim == 0), MP_ERANGE (an alpha or beta not positive),
 * MP_ENOMEM. */
MP_EXPORT int mp_ope_policy_bts(const double *alpha, const double *beta, uint32_t n_actions, uint32_t n_slots,
                                uint64_t n_sim, uint64_t seed, mp_ope_table *out, mp_error *err);

/* Reads obp's prior_bts.yaml: the `alpha:` and `beta:` lists of `campaign` ("men", "women", "all").
 * *alpha and *beta are malloc'ed [*n] (caller frees). Errors name file:line.
 * Errors: MP_EIO (cannot open or read, also a missing file), MP_EBADREC (a line that does not parse, unequal or
 * empty lists), MP_ENOTFOUND (no such campaign), MP_ENOMEM. */
MP_EXPORT int mp_ope_read_bts_prior(const char *path, const char *campaign, double **alpha, double **beta,
                                    uint32_t *n, mp_error *err);

/* ---- reward model ---- */

typedef enum {
    MP_OPE_RM_LOGISTIC = 0, /* L2-regularised logistic regression on one-hot action, slot, action x slot and context
                               features (Newton's method) */
    MP_OPE_RM_CTR = 1,      /* per-(action, slot) click rate smoothed towards the overall mean */
} mp_ope_reward_model;

typedef struct mp_ope_rm_opts {
    mp_ope_reward_model kind;
    uint32_t folds;     /* K-fold cross-fitting: q for a round comes from a model fitted without its fold; 1: none */
    uint64_t seed;      /* fold assignment */
    double l2;          /* logistic: L2 penalty on the weights (not the bias), default 1.0 */
    double smoothing;   /* ctr: prior strength in pseudo-impressions, default 100 */
    uint32_t max_iter;  /* logistic: Newton iterations, default 25 */
} mp_ope_rm_opts;

MP_EXPORT void mp_ope_rm_opts_default(mp_ope_rm_opts *o);

/* Fits the reward model with cross-fitting and fills *q (caller frees) with rows = folds * max(C, 1) and
 * row_of[i] = fold(i) * C + c_i, so q(x_i, a, s) for round i comes from the model that did not see round i.
 * Errors: those of mp_ope_log_check (MP_EINVAL, MP_EEMPTY, MP_ERANGE), MP_EINVAL (more folds than rounds;
 * logistic with more than 40 context features or 4000 one-hot features), MP_ERANGE
 * (logistic: a reward outside [0, 1], a Newton system that is not positive definite), MP_ENOMEM. */
MP_EXPORT int mp_ope_reward_model_fit(const mp_ope_log *log, const mp_ope_rm_opts *opts, mp_ope_table *q,
                                      mp_error *err);

/* ---- estimators ---- */

typedef enum {
    MP_OPE_DM = 0,
    MP_OPE_IPS,
    MP_OPE_SNIPS,
    MP_OPE_DR,
    MP_OPE_SNDR,
    MP_OPE_SWITCH_DR,
    MP_OPE_N_ESTIMATORS
} mp_ope_estimator;

/* "dm", "ips", "snips", "dr", "sndr", "switch-dr". */
MP_EXPORT const char *mp_ope_estimator_name(mp_ope_estimator e);
/* -1 when unknown (case-insensitive; also accepts "ipw", "snipw", "switch_dr", "switchdr"). Not an error code:
 * -1 is also MP_ENOMEM's value. */
MP_EXPORT int mp_ope_estimator_parse(const char *name);
/* True when the estimator needs a reward model (DM, DR, SNDR, Switch-DR). */
MP_EXPORT int mp_ope_estimator_needs_q(mp_ope_estimator e);

/* The per-round quantities every estimator is a function of (see the top of this file). */
typedef struct mp_ope_rounds {
    size_t n;
    double *w; /* [n] importance weights pi_e / pi_b */
    double *r; /* [n] rewards */
    double *q; /* [n] q(x_i, a_i, s_i), or NULL without a reward model */
    double *m; /* [n] sum_a pi_e(a | x_i, s_i) q(x_i, a, s_i), or NULL without a reward model */
} mp_ope_rounds;

/* Checks the log, pi_e (mp_ope_policy_check) and q (may be NULL; entries must be finite) and computes the rounds.
 * Caller frees with mp_ope_rounds_free.
 * Errors: those of mp_ope_log_check and mp_ope_policy_check (MP_EINVAL, MP_EEMPTY, MP_ERANGE), the same shape
 * checks on q, MP_ERANGE (a non-finite entry of q), MP_ENOMEM. */
MP_EXPORT int mp_ope_rounds_build(const mp_ope_log *log, const mp_ope_table *pi_e, const mp_ope_table *q,
                                  mp_ope_rounds *out, mp_error *err);
MP_EXPORT void mp_ope_rounds_free(mp_ope_rounds *r);

typedef struct mp_ope_opts {
    double tau;           /* Switch-DR threshold on w, default 10 (INFINITY: Switch-DR = DR) */
    uint32_t bootstrap;   /* B resamples (0: no intervals), default 1000 */
    double alpha;         /* interval level 1 - alpha, default 0.05 */
    uint64_t seed;        /* bootstrap seed, default 12345 */
} mp_ope_opts;

MP_EXPORT void mp_ope_opts_default(mp_ope_opts *o);

typedef struct mp_ope_result {
    int available;          /* 0 when the estimator needs q and none was given */
    double value;           /* the estimate on the whole log */
    double lo, hi;          /* bootstrap percentile interval (NAN without bootstrap) */
    double boot_mean, boot_sd; /* mean and standard deviation of the bootstrap estimates (NAN without) */
} mp_ope_result;

/* One estimator on the whole log (no interval). MP_EINVAL when it needs q and rounds have none, MP_EEMPTY for
 * n == 0 or sum(w) == 0 with a self-normalised estimator.
 * Errors: MP_EINVAL (unknown estimator, or it needs q and there is none), MP_EEMPTY (as said). */
MP_EXPORT int mp_ope_estimate(const mp_ope_rounds *r, mp_ope_estimator e, double tau, double *value, mp_error *err);
/* All estimators with bootstrap intervals; out[MP_OPE_N_ESTIMATORS]. Deterministic for opts->seed. An estimator
 * that needs q without one is `available = 0`, not an error.
 * Errors: MP_EEMPTY (r NULL or n == 0), MP_EINVAL (alpha outside (0, 1), tau negative or NaN), MP_ENOMEM. */
MP_EXPORT int mp_ope_estimate_all(const mp_ope_rounds *r, const mp_ope_opts *opts, mp_ope_result *out,
                                  mp_error *err);

/* ---- synthetic logs with a known truth ---- */

/* Shoppers of `n_ctx` types see `n_slots` slots of an `n_actions`-item shelf; the click probability is
 * p(c, a, s) = base_a * type_c,a * slot_s (OBD-like rates around 0.5%). The logging policy and the evaluation
 * policy are per-(context, slot) softmaxes over noisy versions of p with different temperatures. Each row draws a
 * context and a slot uniformly, an action from pi_b, and a click from p. */
typedef struct mp_ope_synth_opts {
    size_t n;          /* rows */
    uint32_t n_actions, n_slots, n_ctx;
    double ctr;        /* mean click rate under the uniform policy, default 0.005 */
    uint64_t world_seed; /* the shoppers and the two policies */
    uint64_t log_seed;   /* the rows */
} mp_ope_synth_opts;

MP_EXPORT void mp_ope_synth_opts_default(mp_ope_synth_opts *o);

/* Fills *log (rows; contexts with one feature = the type id), *pi_e (rows = C, row_of = log->ctx; caller frees)
 * and *truth = V(pi_e) computed exactly from p; *logging_value = V(pi_b).
 * Errors: MP_EINVAL (n == 0, fewer than 2 actions, no slots or contexts, ctr outside (0, 0.2)), MP_ENOMEM. */
MP_EXPORT int mp_ope_synth(const mp_ope_synth_opts *o, mp_ope_log *log, mp_ope_table *pi_e, double *truth,
                           double *logging_value, mp_error *err);
/* The exact value in the world of o->world_seed of any policy given as a table with 1 row (the same for every
 * shopper type) or n_ctx rows (row = shopper type). MP_EINVAL for other shapes.
 * Errors: MP_EINVAL (bad options as for mp_ope_synth, or the shape), MP_ENOMEM. */
MP_EXPORT int mp_ope_synth_policy_value(const mp_ope_synth_opts *o, const mp_ope_table *pi, double *value,
                                        mp_error *err);

/* ---- learning a policy from a log ---- */

/* An epsilon-greedy slate policy learned from a table q (rows R, e.g. a reward model): for every row and slot the
 * actions are ranked by q(row, a, s); slot s gets the s-th best action with probability 1 - eps (ties by id) and
 * the rest is spread uniformly. Fills *out with rows = q->rows, row_of copied from q (q's shape is not checked).
 * Errors: MP_EINVAL (eps outside [0, 1], more slots than actions), MP_ENOMEM. */
MP_EXPORT int mp_ope_policy_greedy(const mp_ope_log *log, const mp_ope_table *q, double eps, mp_ope_table *out,
                                   mp_error *err);

/* Splits a log's rows into two logs by a seeded coin with probability `share` for *a (the rest in *b). Contexts,
 * labels and feature tables are copied to both.
 * Errors: those of mp_ope_log_check (MP_EINVAL, MP_EEMPTY, MP_ERANGE), MP_ENOMEM. */
MP_EXPORT int mp_ope_log_split(const mp_ope_log *log, double share, uint64_t seed, mp_ope_log *a, mp_ope_log *b,
                               mp_error *err);

#ifdef __cplusplus
}
#endif
#endif
