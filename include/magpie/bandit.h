/* magpie/bandit.h: exploration policies for re-ranking (issue 6 section 1), the served-event log that checks
 * feedback and writes the OPE serving log, and shopper protection (issue 6 section 2).
 *
 * ---- Reward estimate ----
 * Every policy ranks candidates by an estimated reward
 *     r_hat(c) = w * score_c + theta^T x_c
 * where score_c is the base model's score (any scale: CF score, CTR estimate), w = score_weight (default 1) and
 * x_c = [features_c..., 1 if intercept] (dimension d = dim + intercept) is the candidate's feature vector, e.g. an
 * item embedding or factors concatenated with context features (neural-linear). theta is learned online by ridge
 * regression of the residual (reward - w * score) on x: A = lambda I + sum x x^T, b = sum (reward - w score) x,
 * theta = A^-1 b. A^-1 is kept by Sherman-Morrison rank-1 updates and recomputed from A by Cholesky every 256
 * updates (no drift). `disjoint` keeps one ridge model per item label (created on first use; LinUCB's "disjoint
 * arms"), else one shared model. With d == 0 nothing is learned and r_hat = w * score.
 *
 * ---- Policies (spec strings, keys after ':' separated by ','; errors name the key) ----
 *   greedy                       argmax r_hat (ties: the earlier candidate).            keys: -
 *   egreedy:epsilon=0.1          with prob. epsilon a uniform candidate, else greedy.    keys: epsilon in [0,1]
 *   softmax:tau=0.1              P(c) proportional to exp(r_hat(c) / tau) (Boltzmann).   keys: tau > 0
 *   linucb:alpha=1               argmax r_hat + alpha sqrt(x^T A^-1 x) (deterministic). keys: alpha >= 0
 *   ts:v=0.5                     linear Thompson sampling: theta~ ~ N(theta, v^2 A^-1), argmax w score + theta~^T x.
 *                                keys: v >= 0, draws (Monte Carlo draws for propensities, 0 = none -> NAN)
 *   squarecb:gamma=100           inverse-gap weighting (Foster & Rakhlin 2020) over the m remaining candidates:
 *                                b = argmax r_hat, p(c) = 1 / (m + gamma (r_hat(b) - r_hat(c))) for c != b,
 *                                p(b) = 1 - sum of the others.                          keys: gamma >= 0
 *   uniform                      every candidate equally likely (egreedy with epsilon = 1).
 * Keys every policy accepts: lambda (ridge, > 0, default 1), w (score_weight), disjoint (0/1), intercept (0/1),
 * seed (integer). Example: "linucb:alpha=0.5,disjoint=1,intercept=1".
 *
 * ---- Slates and propensities ----
 * A slate of K items is chosen position by position without replacement: position k draws from the policy's
 * distribution over the candidates not yet chosen (for TS with a fresh posterior draw per position). The
 * propensity logged for the item at position k is its CONDITIONAL probability of being drawn at position k given
 * the items at positions 0..k-1 (so the slate's probability is the product over positions; for position 0 it is
 * the item's marginal probability of leading the slate). It is exact for greedy, egreedy, softmax, linucb,
 * squarecb and uniform (deterministic policies give 1). For TS it is a Monte Carlo estimate with `draws` seeded
 * posterior draws that include the one actually used: p = (1 + wins) / (1 + draws), never 0.
 * mp_bandit_probs returns the full distribution of one pick (position 0, or after given earlier picks).
 *
 * ---- Threads and ownership ----
 * An mp_bandit is safe to share between threads (one mutex around select, probs, update and save). It copies
 * nothing it does not own: candidates (and their x arrays and labels) are only read during the call. Free with
 * mp_bandit_destroy. The event log (mp_bandit_log) and shopper state (mp_shopper) have their own mutex / none
 * respectively (see below). */
#ifndef MAGPIE_BANDIT_H
#define MAGPIE_BANDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "magpie/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    MP_BANDIT_GREEDY = 0,
    MP_BANDIT_EGREEDY,
    MP_BANDIT_SOFTMAX,
    MP_BANDIT_LINUCB,
    MP_BANDIT_TS,
    MP_BANDIT_SQUARECB,
    MP_BANDIT_UNIFORM,
    MP_BANDIT_N_KINDS
} mp_bandit_kind;

/* "greedy", "egreedy", "softmax", "linucb", "ts", "squarecb", "uniform". */
MP_EXPORT const char *mp_bandit_kind_name(mp_bandit_kind k);

typedef struct mp_bandit_opts {
    mp_bandit_kind kind;  /* default greedy */
    double epsilon;       /* egreedy, default 0.1 */
    double tau;           /* softmax temperature, default 0.1 */
    double alpha;         /* linucb, default 1 */
    double v;             /* ts posterior scale, default 0.5 */
    double gamma;         /* squarecb, default 100 */
    uint32_t draws;       /* ts Monte Carlo draws per propensity, default 1000 (0: propensity NAN) */
    /* The learned model (fixed at create; ignored in a per-call override): */
    uint32_t dim;         /* feature dimension of the candidates' x (0: none) */
    int intercept;        /* append a constant 1 feature, default 0 */
    int disjoint;         /* one ridge model per item label, default 0 (shared) */
    double lambda;        /* ridge regularisation, default 1 */
    double score_weight;  /* w, default 1 */
    uint64_t seed;        /* the policy's random stream, default 1 */
} mp_bandit_opts;

MP_EXPORT void mp_bandit_opts_default(mp_bandit_opts *o);

/* Parses a spec string ("egreedy:epsilon=0.1,seed=7") into *o, starting from the values already in *o (so call
 * mp_bandit_opts_default first, or parse over a config's opts for a per-request override). MP_EINVAL with a
 * message naming the policy or the key ("bandit spec `egreedy:eps=1`: unknown key `eps` for egreedy (keys:
 * epsilon, lambda, w, disjoint, intercept, seed)"). */
MP_EXPORT int mp_bandit_parse(const char *spec, mp_bandit_opts *o, mp_error *err);
/* Checks ranges (the same messages as parse). */
MP_EXPORT int mp_bandit_opts_check(const mp_bandit_opts *o, mp_error *err);

/* One candidate. `item` is the caller's catalog id (used by shopper protection), `label` the item's external id
 * (logging, disjoint models; NULL: the decimal of item). Protection fields are ignored by the policies. */
typedef struct mp_bandit_cand {
    uint32_t item;
    const char *label;
    double score;         /* base model score */
    const float *x;       /* [dim] features, or NULL (zeros) */
    /* for mp_protect_rerank: */
    uint32_t category;    /* category id (UINT32_MAX: none) */
    double price;         /* NAN: unknown (never excluded by a price range) */
    double popularity;    /* e.g. interaction count, >= 0 */
    int out_of_stock;     /* nonzero: out of stock */
} mp_bandit_cand;

/* One chosen item of a slate. */
typedef struct mp_bandit_pick {
    uint32_t index;       /* index into the candidate array */
    double propensity;    /* see "Slates and propensities" above */
    double estimate;      /* r_hat (TS: the sampled value) used for the pick */
} mp_bandit_pick;

typedef struct mp_bandit mp_bandit;

/* Creates a policy (checks opts). */
MP_EXPORT int mp_bandit_create(const mp_bandit_opts *opts, mp_bandit **out, mp_error *err);
MP_EXPORT void mp_bandit_destroy(mp_bandit *b);
/* The options the policy was created (or loaded) with. */
MP_EXPORT const mp_bandit_opts *mp_bandit_get_opts(const mp_bandit *b);
/* Feedback rounds applied so far. */
MP_EXPORT uint64_t mp_bandit_updates(mp_bandit *b);

/* Chooses a slate of k <= n candidates into picks[k]. `override` (may be NULL) replaces the exploration part
 * (kind, epsilon, tau, alpha, v, gamma, draws) for this call only, over the same learned model: per-request
 * policy choice. MP_EINVAL for n == 0, k > n, a non-finite score or bad override. */
MP_EXPORT int mp_bandit_select(mp_bandit *b, const mp_bandit_opts *override, const mp_bandit_cand *cands, size_t n,
                               size_t k, mp_bandit_pick *picks, mp_error *err);

/* The distribution of the next pick: probs[n] (sums to 1; 0 for candidates in `taken`, which lists `n_taken`
 * earlier picks by index). TS: Monte Carlo with max(draws, 1000) draws from the policy's stream. */
MP_EXPORT int mp_bandit_probs(mp_bandit *b, const mp_bandit_opts *override, const mp_bandit_cand *cands, size_t n,
                              const uint32_t *taken, size_t n_taken, double *probs, mp_error *err);

/* Online update with one observed reward for a shown item: x [dim] (NULL: zeros), the base score it had and the
 * item label (required by disjoint policies: the candidate's label, or the decimal of its item when it had none;
 * ignored by shared ones). Rejects a non-finite reward, score or feature (MP_EINVAL). */
MP_EXPORT int mp_bandit_update(mp_bandit *b, const char *label, const float *x, double score, double reward,
                               mp_error *err);

/* Saves / loads the policy (options, models, random stream) as a model file named "bandit", version 1. */
MP_EXPORT int mp_bandit_save(mp_bandit *b, const char *path, mp_error *err);
MP_EXPORT int mp_bandit_load(const char *path, mp_bandit **out, mp_error *err);

/* ---- the event log ----
 * A bounded ring of served lists. Each recorded list gets an event id "<nonce>-<seq>" (nonce: 8 hex digits from
 * the log's seed, so ids from another server run are not mistaken for ours; seq counts from 1). The log keeps the
 * last `capacity` events; an event older than `ttl` seconds is expired. For each shown item it keeps the label,
 * position, propensity, score and a copy of x, so feedback can update the policy without the caller keeping them.
 *
 * Serving log lines (the ope.h JSONL format, one per impression):
 *   {"event_id":"3fa2c1d0-42","user":"u7","item":"shoe-12","position":1,"propensity":0.25,"reward":1}
 * position counts from 1; a propensity that is not known (TS with draws = 0: NAN) is written as null, which the
 * OPE reader rejects, so a server that logs for OPE keeps draws > 0. A line is written when an item gets feedback
 * (its reward) and, for items with no feedback, with reward 0 when the event leaves the log (expired at
 * mp_bandit_log_flush, evicted by capacity, or everything at mp_bandit_log_flush(all = 1) / destroy). So every
 * impression is written exactly once.
 * Thread-safe (own mutex); the sink is called under it. */
typedef struct mp_bandit_log mp_bandit_log;

/* Called with one line (no newline; NUL-terminated) per impression; a nonzero return is reported as MP_EIO. */
typedef int (*mp_bandit_sink)(void *ctx, const char *line, size_t len);
/* A sink writing "line\n" to the FILE* given as ctx (the caller owns the FILE). */
MP_EXPORT int mp_bandit_sink_file(void *ctx, const char *line, size_t len);

/* capacity >= 1 events, ttl > 0 seconds, dim as the policy's (0: x not kept). sink may be NULL (nothing written). */
MP_EXPORT int mp_bandit_log_create(size_t capacity, double ttl, uint32_t dim, uint64_t seed, mp_bandit_sink sink,
                                   void *sink_ctx, mp_bandit_log **out, mp_error *err);
/* Writes the pending lines of every event (reward 0 where none came) and frees. */
MP_EXPORT void mp_bandit_log_destroy(mp_bandit_log *log);

/* Records a served slate (picks as returned by mp_bandit_select over cands) for `user` at time `now` (seconds,
 * any monotone clock) and writes its id into event_id[cap] (32 bytes suffice). When the log is full the oldest
 * event is evicted and its pending lines written; if the sink fails then, the new event is still recorded and
 * its id written, and MP_EIO is returned. */
MP_EXPORT int mp_bandit_log_record(mp_bandit_log *log, const char *user, const mp_bandit_cand *cands,
                                   const mp_bandit_pick *picks, size_t k, double now, char *event_id, size_t cap,
                                   mp_error *err);

/* select + record: chooses a slate of k (k >= 1) with mp_bandit_select and records it in the log under a new
 * event id (event_id[cap], cap >= 32). The usual serving call. */
MP_EXPORT int mp_bandit_serve(mp_bandit *b, const mp_bandit_opts *override, mp_bandit_log *log, const char *user,
                              const mp_bandit_cand *cands, size_t n, size_t k, double now, mp_bandit_pick *picks,
                              char *event_id, size_t cap, mp_error *err);

/* Checks feedback {event_id, item, reward} at time now, writes its log line, and (when b is not NULL) updates the
 * policy with the item's stored x and score. Possible errors (callers branch on the code, never on the text):
 *   MP_ENOTFOUND  "unknown event id `x`": malformed, another run's or another log's, never issued (a caller with
 *                 several logs tries the next one);
 *   MP_EEXPIRED   this log issued the id but holds it no more: "event id `x` was evicted (the log keeps the last N
 *                 events)", "event id `x` expired: served S s ago, ttl T s";
 *   MP_ENOTMEMBER "item `i` was not in event `x` (shown: a, b, c)";
 *   MP_ECONFLICT  "event `x` item `i` already has feedback";
 *   MP_EINVAL     a missing id or item, "reward for event `x` item `i` is not a finite number", a policy whose
 *                 dimension is not the log's (or mp_bandit_update's checks);
 *   MP_EIO        the feedback was applied but the sink failed writing its line.
 * *position (may be NULL) gets the item's 1-based position. */
MP_EXPORT int mp_bandit_feedback(mp_bandit_log *log, mp_bandit *b, const char *event_id, const char *item,
                                 double reward, double now, uint32_t *position, mp_error *err);

/* Copies the user an event held in the log was served to into buf[cap] (truncated, NUL-terminated). MP_ENOTFOUND
 * when the event is not held (unknown, evicted or flushed). Used after feedback to update that shopper's state. */
MP_EXPORT int mp_bandit_log_user(mp_bandit_log *log, const char *event_id, char *buf, size_t cap, mp_error *err);

/* Writes the lines of events that expired by `now` (or of all events when all != 0) and drops them. */
MP_EXPORT int mp_bandit_log_flush(mp_bandit_log *log, double now, int all, mp_error *err);
/* Events currently held (not yet flushed or evicted). */
MP_EXPORT size_t mp_bandit_log_size(mp_bandit_log *log);

/* ---- shopper protection ----
 * Per-user state: a bounded ring of the user's most recent events (impressions and clicks with times) and a
 * bounded set of purchased items. Not thread-safe: one state per user, locked by the caller's user table. */
typedef struct mp_shopper mp_shopper;

typedef enum { MP_SHOP_IMPRESSION = 0, MP_SHOP_CLICK = 1, MP_SHOP_PURCHASE = 2 } mp_shop_event;

/* max_events (>= 1) bounds the ring (the oldest is overwritten), max_purchases (>= 1) the purchased set (oldest
 * dropped). Memory: 16 bytes per event + 4 per purchase. */
MP_EXPORT int mp_shopper_create(uint32_t max_events, uint32_t max_purchases, mp_shopper **out, mp_error *err);
MP_EXPORT void mp_shopper_destroy(mp_shopper *s);
/* Records an event at time t (seconds). A purchase also counts as a click (it resets fatigue). */
MP_EXPORT void mp_shopper_record(mp_shopper *s, mp_shop_event kind, uint32_t item, uint32_t category, double t);
/* Impressions of item (or category, when by_category) at times in (now - window, now]. */
MP_EXPORT uint32_t mp_shopper_impressions(const mp_shopper *s, uint32_t id, int by_category, double window,
                                          double now);
/* Fatigue of an item at time now: sum over its impressions after its last click (or purchase) of
 * 2^(-(now - t) / half_life). 0 for items never shown or clicked since. */
MP_EXPORT double mp_shopper_fatigue(const mp_shopper *s, uint32_t item, double half_life, double now);
MP_EXPORT int mp_shopper_purchased(const mp_shopper *s, uint32_t item);

typedef struct mp_protect_opts {
    uint32_t item_cap;       /* max impressions of an item in item_window seconds (0: no cap), default 0 */
    double item_window;      /* default 86400 */
    uint32_t category_cap;   /* max impressions of a category in category_window seconds (0: no cap) */
    double category_window;  /* default 86400 */
    double fatigue_weight;   /* score -= fatigue_weight * fatigue (0: off), default 0 */
    double fatigue_half_life; /* seconds, default 3600 */
    double novelty_weight;   /* score += novelty_weight / log(e + popularity) (0: off), default 0 */
    double mmr_lambda;       /* MMR trade-off in [0, 1]: 1 = relevance only (off), default 1 */
    size_t mmr_k;            /* positions re-ordered by MMR (0: all), default 0 */
    int exclude_purchased;   /* default 1 */
    int exclude_out_of_stock; /* default 1 */
    double price_min, price_max; /* keep price in [min, max] (NAN: no bound), default NAN, NAN */
} mp_protect_opts;

MP_EXPORT void mp_protect_opts_default(mp_protect_opts *o);

/* What the pass removed. */
typedef struct mp_protect_stats {
    size_t purchased, out_of_stock, price, item_cap, category_cap;
} mp_protect_stats;

/* The re-ranking pass before the policy: copies the candidates that pass the business rules (purchased,
 * out-of-stock, price range) and the frequency caps into out[n] (*n_out of them), with adjusted scores
 *     score' = score - fatigue_weight * fatigue + novelty_weight / log(e + popularity),
 * then, when mmr_lambda < 1, reorders them by Maximal Marginal Relevance over the candidates' x (cosine
 * similarity; dim = length of x; candidates without x have similarity 0): repeatedly pick
 *     argmax  lambda * rel(c) - (1 - lambda) * max_{s picked} cos(x_c, x_s),
 * rel = score' min-max normalised to [0, 1], and give the i-th MMR pick the i-th largest score' (so the scores
 * keep their scale for softmax-type policies and their order is the MMR order). Without MMR the output keeps the
 * input order. state may be NULL (no caps, fatigue or purchases), stats may be NULL. now: seconds. */
/* A bounded table of shopper states by user id for a server: at most max_users states (the least recently used
 * is dropped), each created with max_events / max_purchases. Thread-safe (one mutex); every operation on a user's
 * state goes through the table, so no state is used while it is dropped. */
typedef struct mp_shopper_table mp_shopper_table;

MP_EXPORT int mp_shopper_table_create(size_t max_users, uint32_t max_events, uint32_t max_purchases,
                                      mp_shopper_table **out, mp_error *err);
MP_EXPORT void mp_shopper_table_destroy(mp_shopper_table *t);
/* Records an event for user (creating the user's state). */
MP_EXPORT int mp_shopper_table_record(mp_shopper_table *t, const char *user, mp_shop_event kind, uint32_t item,
                                      uint32_t category, double now, mp_error *err);
/* mp_protect_rerank with the user's state (an unknown user has an empty state; nothing is created). */
MP_EXPORT int mp_shopper_table_rerank(mp_shopper_table *t, const char *user, const mp_protect_opts *o,
                                      const mp_bandit_cand *cands, size_t n, uint32_t dim, double now,
                                      mp_bandit_cand *out, size_t *n_out, mp_protect_stats *stats, mp_error *err);
/* Users currently held. */
MP_EXPORT size_t mp_shopper_table_size(mp_shopper_table *t);

/* out must hold n candidates and must not overlap cands. */
MP_EXPORT int mp_protect_rerank(const mp_protect_opts *o, const mp_shopper *state, const mp_bandit_cand *cands,
                                size_t n, uint32_t dim, double now, mp_bandit_cand *out, size_t *n_out,
                                mp_protect_stats *stats, mp_error *err);

#ifdef __cplusplus
}
#endif
#endif
