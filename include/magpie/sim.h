/* magpie/sim.h: a long-term shopper simulator (issue 6 section 4) and a reinforcement-learned re-ranker trained in
 * it (issue 6 section 5).
 *
 * ---- The world ----
 * Shoppers' tastes and items come from latent factors of a model fitted on real data (mp_sim_world_fit: ALS on a
 * dataset, e.g. MovieLens-100K or Tianchi; or mp_sim_world_create from any user / item vectors). For shopper u the
 * recommender knows the fitted score s0(u, i) = u0 . v_i; each shopper's TRUE taste starts at u0 plus noise and
 * drifts (a random walk), so the fitted model is right on day 0 and gets stale.
 *
 * ---- One shopper, one day ----
 * An active shopper visits with probability visit_prob. A visit is one session: the recommender gets N candidates
 * (the shopper's best items by s0 that it has not bought, from a pool of the 2N + K best) with observable features
 * and shows a slate of K. The true taste starts at u0 + taste_noise * rms(u0) * N(0, I) and moves by
 * drift * rms(u0) * N(0, I) per day.
 * The true utility of item i (category c) is
 *     a_i = rel_weight * z_i - bore_item * B_i - bore_cat * C_c - sat_weight * S_c
 * with z_i = (u_t . v_i - mean) / sd (mean, sd of s0 over the shopper's first N pool items), B_i / C_c the shopper's
 * impressions of the item / category decayed with bore_half_life days (boredom from repeats), S_c the purchases
 * in the category decayed with sat_half_life days (satiation). Position k (from 0) is examined with probability
 * 1 / log2(k + 2); an examined item is clicked with probability sigmoid(a_i + click_bias), and a click becomes a
 * purchase with probability sigmoid(a_i + buy_bias). After the session the shopper's dissatisfaction
 *     D <- leak * D + irr_weight * (1 - mean_k sigmoid(a_k)) + rep_weight * (share of the slate shown in the last
 *          rep_window days) - click_relief * clicks - buy_relief * purchases          (floored at 0)
 * and a day without a visit leaks D too. After each day the shopper churns (leaves for good) with hazard
 *     h = churn_max * sigmoid(churn_slope * (D - churn_mid)).
 * A fixed seed gives the same run; each shopper has an own random stream (so policies see common random numbers
 * as long as they act alike) and the policy gets its own stream (mp_sim_policy.rng).
 *
 * ---- Metrics ----
 * clicks, purchases (totals), retention at day 7 and 30 (share of shoppers not churned after that many days; with
 * fewer days, after the last), catalog coverage (share of the catalog shown at least once), exposure Gini over all
 * items' impression counts, and regret against an oracle that knows the true utilities: per session the expected
 * clicks of the oracle's slate (the N candidates sorted by a_i) minus those of the shown slate, summed (a myopic,
 * per-session oracle on the same state). Also the RL objective: purchases + click_reward * clicks + novel_reward *
 * (shown items new to the shopper) + cover_reward * (shown items new to the platform) + stay_reward per day a
 * shopper is still active.
 *
 * ---- Policies ----
 * A policy is a slate chooser callback (state, candidates -> K indices) plus an optional feedback callback per shown
 * item. Provided: greedy (top model score), any bandit.h policy (with optional shopper protection: caps, fatigue,
 * novelty, MMR) over the candidates' features, and the RL re-ranker: a softmax (Plackett-Luce) slate policy over
 * the per-item features, logits = theta . f, trained by REINFORCE with a per-day baseline on training seeds, either
 * on-policy (it acts in the training runs itself) or off-policy from the logged slates of a fixed behaviour policy
 * with the top-K off-policy correction of Chen et al. 2019 (see mp_sim_rl_opts.offpolicy).
 *
 * Ownership and threads: a world owns copies of its arrays and is read-only during runs (share it freely); a
 * policy object (mp_sim_bandit, mp_sim_rl) is used by one run at a time. Every *_create / mp_sim_world_fit gives
 * *out to the caller, who frees it with the matching *_destroy; the mp_sim_policy values returned by
 * mp_sim_bandit_policy / mp_sim_rl_policy and the array from mp_sim_rl_theta borrow their object (valid until it
 * is destroyed). Results are plain structs. Nothing here prints or keeps globals.
 * Thread safety, in short: concurrent mp_sim_run calls may share one world, never one mp_sim_bandit or mp_sim_rl
 * (their choose / feedback callbacks and mp_sim_rl_train write the object); the metric functions, the opts
 * functions on different structs and mp_sim_offpolicy_grad are pure.
 *
 * Errors: a run stops at the first non-zero code a policy callback returns and returns that code unchanged (so a
 * callback should return MP_E* codes only: a positive value would come back as the result of mp_sim_run). */
#ifndef MAGPIE_SIM_H
#define MAGPIE_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/bandit.h"
#include "magpie/dataset.h"
#include "magpie/error.h"
#include "magpie/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-candidate features (observable by the recommender: its own model and its own log of what it showed):
 *   0 score      fitted model score, standardised over the shopper's candidates
 *   1 recency    impressions of the item to this shopper, decayed (half-life 3 days)
 *   2 catfatigue impressions of the item's category to this shopper in the last sessions, decayed, / K
 *   3 novelty    1 if never shown to this shopper, else 0
 *   4 popularity log(1 + count) / log(1 + max count) over the catalog
 *   5 satiation  purchases of this shopper in the item's category, decayed (half-life 5 days)
 *   6 clicked    clicks of this shopper on the item, decayed (half-life 3 days)
 *   7 exposure   the platform's impressions of the item so far in this run (all shoppers), log(1 + count) /
 *                log(1 + the largest count) (0 before any impression): lets a policy spread exposure */
#define MP_SIM_NFEAT 8

typedef struct mp_sim_world mp_sim_world;

/* Copies the arrays: user_vecs [n_users * dim], item_vecs [n_items * dim], item_category [n_items] (NULL: all 0;
 * ids < n_categories), item_pop [n_items] (NULL: all 0). MP_EINVAL for empty sizes or non-finite values.
 * Errors: MP_EINVAL (a size 0, a vector array NULL, a non-finite value, a category >= n_categories), MP_ENOMEM. */
MP_EXPORT int mp_sim_world_create(uint32_t n_users, uint32_t n_items, uint32_t dim, const float *user_vecs,
                                  const float *item_vecs, const uint32_t *item_category, uint32_t n_categories,
                                  const double *item_pop, mp_sim_world **out, mp_error *err);
/* Fits model `model` (e.g. "als") with parameters `params` ("factors=32,iterations=10"; NULL: defaults) on every
 * event of ds and builds the world from its retrieval vectors (mp_model_item_vectors / mp_model_query_vector of
 * each user with events); item popularity = events per item, categories from ds. The model must provide
 * retrieval vectors (MP_EUNSUPPORTED otherwise).
 * Errors: MP_EEMPTY (ds NULL or without events; no user got a taste vector), MP_EUNSUPPORTED (as said), MP_EINVAL
 * (as mp_sim_world_create), MP_ENOMEM, and whatever mp_train_set_build, mp_model_create, mp_model_set_params and
 * mp_model_fit return (passed through; see trainset.h and model.h: e.g. MP_EINVAL for an unknown model or bad
 * params). */
MP_EXPORT int mp_sim_world_fit(const mp_dataset *ds, const char *model, const char *params, int threads,
                               mp_sim_world **out, mp_error *err);
MP_EXPORT void mp_sim_world_destroy(mp_sim_world *w);
MP_EXPORT uint32_t mp_sim_world_users(const mp_sim_world *w);
MP_EXPORT uint32_t mp_sim_world_items(const mp_sim_world *w);

/* Simulator parameters. */
typedef struct mp_sim_opts {
    uint32_t days;          /* default 30 */
    uint32_t max_users;     /* simulate the first max_users shoppers (0: all), default 0 */
    uint32_t n_cands;       /* N, default 100 */
    uint32_t slate;         /* K, default 10 */
    double visit_prob;      /* default 0.8 */
    double taste_noise;     /* sd of the initial taste error, relative to the taste's per-dimension rms, default 0.3 */
    double drift;           /* sd of the daily taste step, relative as above, default 0.1 */
    double rel_weight;      /* default 2 */
    double bore_item, bore_cat, bore_half_life; /* default 1, 0.15, 3 days */
    double sat_weight, sat_half_life;           /* default 1, 5 days */
    double click_bias, buy_bias;                /* default -2, -1.5 */
    double leak;            /* default 0.7 */
    double irr_weight, rep_weight, rep_window;  /* default 1, 1, 3 days */
    double click_relief, buy_relief;            /* default 0.1, 0.3 */
    double churn_max, churn_slope, churn_mid;   /* default 0.08, 2, 3 */
    double click_reward, stay_reward;           /* RL objective weights, default 0.1, 0.05 */
    double novel_reward;    /* RL objective: per shown item new to the shopper, default 0.02 */
    double cover_reward;    /* RL objective: per shown item never shown to anyone before (catalog coverage), default 0 */
} mp_sim_opts;

MP_EXPORT void mp_sim_opts_default(mp_sim_opts *o);
/* Sets one parameter by name (the field names above: "days", "slate", "drift", ...). MP_EINVAL naming the key.
 * Errors: MP_EINVAL (unknown key, missing value, not a non-negative integer / finite number). Ranges are checked
 * by mp_sim_opts_check, not here. */
MP_EXPORT int mp_sim_opts_set(mp_sim_opts *o, const char *key, const char *value, mp_error *err);
/* Parses "k=v,k=v" (spec NULL: no change; the keys before a bad one stay set).
 * Errors: MP_EINVAL (a token without '=', a spec of 1024 bytes or more, or as mp_sim_opts_set). */
MP_EXPORT int mp_sim_opts_parse(mp_sim_opts *o, const char *spec, mp_error *err);
/* Errors: MP_EINVAL (days outside 1..3650, slate outside 1..256, n_cands < slate, visit_prob / leak / churn_max
 * outside [0, 1], half-lives <= 0, taste_noise or drift < 0). */
MP_EXPORT int mp_sim_opts_check(const mp_sim_opts *o, mp_error *err);

/* One candidate as a policy sees it. */
typedef struct mp_sim_cand {
    uint32_t item, category;
    double score;                 /* fitted model score (raw) */
    double popularity;            /* the item's event count in the data the world was fitted on */
    float f[MP_SIM_NFEAT];        /* features, see above */
} mp_sim_cand;

/* Who is asking. */
typedef struct mp_sim_state {
    uint32_t user;   /* shopper index */
    uint32_t day;    /* 0-based */
    double now;      /* seconds since the start (day * 86400 + 43200) */
} mp_sim_state;

/* A slate chooser: writes k distinct indices into cands (n >= k) to out[k]. rng: the policy's stream. */
typedef int (*mp_sim_choose_fn)(void *ctx, const mp_sim_state *st, const mp_sim_cand *cands, size_t n, size_t k,
                                mp_rng *rng, uint32_t *out, mp_error *err);
/* Feedback per shown item (click 0/1, purchase 0/1), after the session. */
typedef int (*mp_sim_feedback_fn)(void *ctx, const mp_sim_state *st, const mp_sim_cand *cand, uint32_t position,
                                  int clicked, int purchased, mp_error *err);
/* Called after each day of each shopper that was active at its start: reward of the day (the RL objective's
 * terms) and whether the shopper churned at its end. */
typedef void (*mp_sim_day_fn)(void *ctx, uint32_t user, uint32_t day, int visited, double reward, int churned);

typedef struct mp_sim_policy {
    mp_sim_choose_fn choose;
    mp_sim_feedback_fn feedback; /* may be NULL */
    mp_sim_day_fn day_end;       /* may be NULL */
    void *ctx;
} mp_sim_policy;

typedef struct mp_sim_result {
    uint32_t users, days;
    double clicks, purchases;
    double retention7, retention30;
    double coverage, gini;
    double regret;            /* summed over sessions */
    double objective;         /* the RL objective, summed over shoppers */
    uint64_t sessions, impressions;
} mp_sim_result;

/* Runs the simulation: days outer, shoppers inner (so an online policy learns across shoppers over time).
 * Errors: MP_EINVAL (as mp_sim_opts_check; p or p->choose NULL; the policy chose an index twice or out of range),
 * MP_ENOMEM, and any code the policy's choose or feedback returns (the bandit policy: those of mp_bandit_select,
 * mp_bandit_update and mp_protect_rerank, MP_EINVAL and MP_ENOMEM, see bandit.h; greedy and RL: MP_ENOMEM). */
MP_EXPORT int mp_sim_run(const mp_sim_world *w, const mp_sim_opts *o, const mp_sim_policy *p, uint64_t seed,
                         mp_sim_result *res, mp_error *err);

/* ---- metrics on plain arrays (also used by mp_sim_run) ---- */
/* Gini coefficient of non-negative values x[n] (0: equal, -> 1: concentrated); 0 for all zeros or n == 0. */
MP_EXPORT double mp_sim_gini(const double *x, size_t n);
/* Share of the n entries with count > 0. */
MP_EXPORT double mp_sim_coverage(const uint64_t *counts, size_t n);
/* Share of shoppers still active after `day` days: churn_day[i] is the 1-based day at whose end shopper i churned
 * (0: never). A shopper churned at the end of day d is retained at day < d. */
MP_EXPORT double mp_sim_retention(const uint32_t *churn_day, size_t n, uint32_t day);
/* Mean and half-width of the 95% Student-t interval of x[n] (n >= 2; n == 1: half = NAN). */
MP_EXPORT void mp_sim_ci(const double *x, size_t n, double *mean, double *half);

/* ---- ready-made policies ---- */
/* Greedy: the K highest fitted scores (ties: lower index). ctx unused (NULL). */
MP_EXPORT mp_sim_policy mp_sim_policy_greedy(void);

/* A bandit.h policy over the candidates (score = standardised model score, x = the features; learns online from
 * clicks), optionally after shopper protection (protect != NULL: caps, fatigue, novelty, MMR over the features,
 * with one mp_shopper state per simulated shopper). */
typedef struct mp_sim_bandit mp_sim_bandit;
/* Errors: MP_EINVAL (a bad spec or bandit options, as mp_bandit_parse / mp_bandit_create), MP_ENOMEM. A shopper
 * index >= n_users met during a run is MP_EINVAL from the policy's callbacks. */
MP_EXPORT int mp_sim_bandit_create(const char *spec, const mp_protect_opts *protect, uint32_t n_users,
                                   mp_sim_bandit **out, mp_error *err);
MP_EXPORT void mp_sim_bandit_destroy(mp_sim_bandit *b);
MP_EXPORT mp_sim_policy mp_sim_bandit_policy(mp_sim_bandit *b);

/* The RL re-ranker: softmax slate policy P(i) ~ exp(theta . f_i) drawn position by position without replacement
 * (Plackett-Luce); at evaluation it samples the same way (explore_eval = 1) or ranks by theta . f.
 *
 * ---- Training ----
 * Each epoch simulates a batch of shoppers over the days on a training seed and takes one Adam ascent step on
 *     grad = (1 / B) sum_{shopper, day active} A_t * g_t,      A_t = (G_t - b_t) / sd(G - b)
 * where G_t = r_t + gamma * G_{t+1} is the discounted return-to-go of the shopper from day t (r_t: the day's RL
 * objective, see mp_sim_opts), b_t the per-day baseline (mean of G_t over the batch's shoppers active on day t),
 * sd the batch standard deviation of the advantages, and g_t the score-function term of the day's slate:
 *
 * on-policy (offpolicy = 0, the default): the policy pi_theta draws the slate itself and
 *     g_t = grad_theta log P_PL(slate) = sum_k (f_{a_k} - E_{i ~ softmax over the not-yet-drawn}[f_i]).
 *
 * off-policy (offpolicy = 1, Chen et al. 2019, "Top-K Off-Policy Correction for a REINFORCE Recommender System"):
 * the slates come from a fixed behaviour policy beta (a Plackett-Luce softmax over the standardised model score,
 * logits f_score / behavior_tau: "greedy + noise"; behavior_tau = 0: uniformly random slates), which logs for each
 * shown item a its propensity beta(a|s) = exp(f_score,a / tau) / sum_j exp(f_score,j / tau) (the single-draw
 * softmax over all N candidates of the session; 1 / N when uniform; with per_position: its conditional probability
 * at its position, see below). pi_theta never acts in training. With the
 * single-draw softmax pi(a|s) = exp(theta . f_a) / sum_j exp(theta . f_j) over the same candidates,
 *     g_t = sum_{a in slate} w(a) * lambda_K(a) * grad_theta log pi(a|s),   grad log pi(a|s) = f_a - E_pi[f]
 *     w(a) = min(pi(a|s) / beta(a|s), is_cap)                  (capped importance ratio; is_cap = 0: no cap)
 *     lambda_K(a) = K * (1 - pi(a|s))^(K - 1)                   (top-K correction, K = slate size; with
 *                                                               topk_correction = 0: lambda = 1, plain IS REINFORCE)
 * lambda_K is d alpha / d pi for alpha(a|s) = 1 - (1 - pi(a|s))^K, the chance that a is in a top-K slate of K
 * independent draws from pi. As in the paper, the per-step ratio is used (not the product over the trajectory).
 * The logged data are epochs x batch_users shopper-trajectories of beta; each update uses one logged batch,
 * regenerated from its training seed rather than stored (beta does not depend on theta, so this is the same log).
 * See mp_sim_offpolicy_grad for the per-slate term. */
typedef struct mp_sim_rl_opts {
    uint32_t epochs;        /* REINFORCE updates, default 60 */
    uint32_t batch_users;   /* shoppers per update (0: all), default 300 */
    double lr;              /* Adam step size, default 0.1 */
    double gamma;           /* discount per day, default 0.95 */
    uint64_t seed;          /* training seeds are derived from it (keep them apart from evaluation seeds) */
    int explore_eval;       /* 1 (default): evaluate the trained stochastic policy (sample from the softmax, as in
                             * training); 0: rank by theta . f deterministically */
    double theta0;          /* starting weight of the score feature (theta = (theta0, 0, ..., 0)), default 2 */
    int offpolicy;          /* 0 (default): on-policy REINFORCE; 1: off-policy from behaviour logs (see above) */
    double behavior_tau;    /* off-policy behaviour: softmax temperature over the standardised score, default 0.5
                             * (the starting policy's; 0: uniformly random slates) */
    double is_cap;          /* off-policy: cap of the importance ratio pi / beta, default 10 (0: no cap) */
    int topk_correction;    /* off-policy: 1 (default) multiply by lambda_K; 0: plain capped IS */
    int per_position;       /* off-policy: 0 (default, the paper): pi, beta are single-draw probabilities over all
                             * N candidates; 1: per position of the Plackett-Luce slate, pi and beta are the
                             * conditional probabilities of the item drawn at position q among the candidates not
                             * drawn before it, and E_pi[f] is over those (with beta = pi and no cap or lambda this
                             * is exactly the on-policy term) */
    int item_credit;        /* off-policy: 0 (default): every shown item's term is weighted by the day's advantage
                             * A_t; 1: per item, as in the paper's per-item rewards: item a shown on day t gets
                             * R_a = own_a + (r_t - sum_slate own) / K + gamma * G_{t+1} (own_a = purchase +
                             * click_reward * click of a; the rest of the day's reward shared equally), advantage
                             * (R_a - b_t) / sd with b_t the mean R of day t's shown items over the batch */
} mp_sim_rl_opts;

MP_EXPORT void mp_sim_rl_opts_default(mp_sim_rl_opts *o);
/* Parses an off-policy behaviour spec into o: "uniform" (behavior_tau = 0) or "softmax:tau=X" (X > 0). MP_EINVAL
 * otherwise.
 * Errors: MP_EINVAL (spec NULL or not one of those forms). */
MP_EXPORT int mp_sim_rl_parse_behavior(mp_sim_rl_opts *o, const char *spec, mp_error *err);

/* The top-K multiplier lambda_K = K * (1 - pi)^(K - 1) (pi in [0, 1], K >= 1). */
MP_EXPORT double mp_sim_topk_multiplier(double pi, uint32_t k);
/* The capped importance weight min(pi / beta, cap) (cap <= 0: uncapped; beta <= 0 gives cap, or +inf uncapped). */
MP_EXPORT double mp_sim_is_weight(double pi, double beta, double cap);
/* The off-policy term g of one logged slate (see above): logits theta . f over cands[n], the shown indices
 * shown[k] with their logged propensities beta[k]; uses o->is_cap, o->topk_correction and o->per_position, K = k.
 * Writes g[MP_SIM_NFEAT] (the sum over the shown items), when g_items is not NULL each item's term to
 * g_items[k * MP_SIM_NFEAT], and when pi_out is not NULL pi(a|s) of each shown item to pi_out[k]. */
MP_EXPORT void mp_sim_offpolicy_grad(const mp_sim_rl_opts *o, const double *theta, const mp_sim_cand *cands, size_t n,
                                     const uint32_t *shown, const double *beta, size_t k, double *g, double *g_items,
                                     double *pi_out);

typedef struct mp_sim_rl mp_sim_rl;
/* Starts from theta = (theta0, 0, ..., 0): the greedy ranking with softmax noise. MP_EINVAL for lr <= 0, gamma
 * outside [0, 1], behavior_tau < 0, is_cap < 0 or non-finite values.
 * Errors: MP_EINVAL (as said), MP_ENOMEM. */
MP_EXPORT int mp_sim_rl_create(const mp_sim_rl_opts *o, mp_sim_rl **out, mp_error *err);
MP_EXPORT void mp_sim_rl_destroy(mp_sim_rl *r);
/* Trains in the simulator (on-policy, or from behaviour logs when o->offpolicy). curve (may be NULL) gets the mean
 * objective per shopper of each epoch's batch (epochs entries; off-policy: the behaviour's objective, since the
 * logs are the behaviour's). Training shoppers and seeds: batch shoppers are drawn from the world with the
 * training seed of each epoch (seed * 1000003 + epoch + 1).
 * Errors: MP_EINVAL (as mp_sim_opts_check, or from the runs as mp_sim_run), MP_ENOMEM. */
MP_EXPORT int mp_sim_rl_train(mp_sim_rl *r, const mp_sim_world *w, const mp_sim_opts *o, double *curve,
                              mp_error *err);
/* theta[MP_SIM_NFEAT] (read-only view). */
MP_EXPORT const double *mp_sim_rl_theta(const mp_sim_rl *r);
MP_EXPORT mp_sim_policy mp_sim_rl_policy(mp_sim_rl *r);

#ifdef __cplusplus
}
#endif
#endif
