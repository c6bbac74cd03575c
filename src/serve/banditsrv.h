/* src/serve/banditsrv.h: exploration, feedback, shopper protection and A/B variants in `magpie serve` (issue 6;
 * the contract is docs/api.md, "Exploration and feedback").
 *
 * The layer sits between mp_live_recommend and the response. It is active for a request when the config names a
 * policy other than greedy, a serving log, A/B variants or a protection setting, or when the request passes
 * `policy=SPEC`. Then:
 *   1. the user is assigned a variant (mp_abtest_assign over "salt" and the user id; anonymous POST sessions use
 *      the id ""), each variant with its own mp_bandit (learned model and random stream) and event log;
 *   2. the model's top n * bandit_pool candidates pass shopper protection (caps, fatigue, MMR, novelty from the
 *      user's recent impressions kept in an LRU mp_shopper_table) when any protection setting is on;
 *   3. the variant's policy (or the request's override of its exploration part) chooses n of them; the slate is
 *      recorded in the variant's event log with each item's propensity and the impressions in the shopper table;
 *   4. POST /v1/feedback finds the event in the variant log that issued it, checks it and updates that policy.
 * Items are identified in the shopper state by a 32-bit hash of their external id (categories likewise).
 *
 * Scores and features: the policies see each candidate's model score min-max normalised over the candidates (so
 * w and tau mean the same whatever the model's scale) and x = [item features, normalised score]: the learned
 * ridge model can re-weigh the score on the reward scale. Once attached to the live recommender
 * (mp_serve_bandit_attach) the item features are setting bandit_features: the model's item factors or the items'
 * text embeddings, unit length (the dimension is fixed at attach; a reload to a model of another dimension serves
 * zero features until restart); without them x is the score alone. Every candidate also gets its price (for the
 * price-range rule), its live popularity (novelty boost) and its stock state. Positive feedback also counts as a
 * click in the shopper's state (it resets that item's fatigue).
 *
 * Persistence: with bandit_state set, each variant's learned policy is saved to DIR/<variant>.bandit every
 * bandit_save_every and at exit, and loaded at attach when its learned-model settings (dim, lambda, intercept,
 * disjoint, w) still match (else it starts fresh, with a warning on stderr).
 *
 * A/B metrics: every variant counts the distinct users it served (up to ab_users, then "untracked"), the users
 * who converted (positive feedback on a served item, or a purchase event after being served) and their
 * purchases; GET /v1/abtest reports them with the z-test against the first variant, and ?format=csv gives the
 * per-user rows (users as 16-hex hashes) that `magpie abtest --csv` reads.
 * Thread-safe: one rwlock (attach writes; everything else reads), the bandits, logs and shopper table lock
 * themselves; counters are atomic; the user sets and the serving-log file have their own mutexes. */
#ifndef MAGPIE_SERVE_BANDITSRV_H
#define MAGPIE_SERVE_BANDITSRV_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"
#include "magpie/live.h"
#include "magpie/records.h"
#include "serve/config.h"
#include "serve/jbuf.h"

typedef struct mp_serve_bandit mp_serve_bandit;

/* Checks the bandit settings of c (policy spec, ab_variants syntax and weights, the float settings' ranges).
 * MP_EINVAL naming the setting. Called by mp_serve_config_validate. */
int mp_serve_bandit_check_config(const mp_serve_config *c, mp_error *err);

/* Creates the layer from cfg (borrowed; checked as above) and opens the serving log for appending when
 * cfg->bandit_log is set (MP_EIO naming the path). seed: the random streams and event-id nonces (use the clock so
 * ids of another run are not mistaken). *out: mp_serve_bandit_destroy. */
int mp_serve_bandit_create(const mp_serve_config *cfg, uint64_t seed, mp_serve_bandit **out, mp_error *err);
/* Writes the pending serving-log lines (reward 0 where no feedback came), closes the log, frees. NULL: no-op. */
void mp_serve_bandit_destroy(mp_serve_bandit *sb);

/* Binds the layer to the live recommender (borrowed; NULL: no features or facts): resolves the feature source and
 * dimension, and (re)creates each variant's policy and event log for it, loading saved state. Called once, before
 * requests are served (mp_server_set_live); problems with saved state are warnings on stderr, not errors.
 * MP_ENOMEM only. */
int mp_serve_bandit_attach(mp_serve_bandit *sb, mp_live *live, mp_error *err);
/* Feature dimension in use (0: none) and the source's name ("model", "text", "none"). */
uint32_t mp_serve_bandit_dim(const mp_serve_bandit *sb, const char **source);
/* Saves every variant's policy to bandit_state (no-op without it). MP_EIO naming the file. */
int mp_serve_bandit_save(mp_serve_bandit *sb, mp_error *err);

/* 1 when the config turns the layer on for every request (see above). */
int mp_serve_bandit_enabled(const mp_serve_bandit *sb);

/* What one served list got. */
typedef struct mp_serve_slate {
    size_t k;              /* items served (the first k of the reordered list) */
    double *propensity;    /* [k], owned: free() */
    char event_id[40];     /* "" when k == 0 (nothing recorded) */
    const char *variant;   /* variant name (static for the layer's life) */
    const char *policy;    /* policy kind name used ("egreedy", ...) */
} mp_serve_slate;

/* Chooses k <= n of the candidate list l (the model's order) for user[0..user_len) (NULL: anonymous) with the
 * variant's policy or, when policy_spec is not NULL, that spec parsed over the variant's options (a bad spec:
 * MP_EINVAL naming the key, nothing recorded). Reorders l->items so the served ones come first (l->n unchanged:
 * mp_live_list_free still frees all) and fills *out. now: monotonic seconds. */
/* Per-request business rules (NAN: the config's price_min / price_max). */
typedef struct mp_serve_rules {
    double price_min, price_max;
} mp_serve_rules;
/* Parses a price bound ("" -> NAN; else a finite number >= 0). -1 when malformed. */
int mp_serve_parse_price(const char *s, double *out);

int mp_serve_bandit_serve(mp_serve_bandit *sb, const char *user, size_t user_len, const char *policy_spec,
                          const mp_serve_rules *rules, mp_live_list *l, size_t k, double now, mp_serve_slate *out,
                          mp_error *err);

/* Feedback {event_id, item, reward} at now. Possible errors: MP_ENOTFOUND (an event id no variant issued),
 * MP_EEXPIRED (evicted or expired), MP_ENOTMEMBER (the item was not in the event), MP_ECONFLICT (feedback given
 * twice), MP_EINVAL (non-finite reward). *variant gets the variant name on success. */
int mp_serve_bandit_feedback(mp_serve_bandit *sb, const char *event_id, const char *item, double reward, double now,
                             const char **variant, mp_error *err);

/* Shopper state from stored events (POST /v1/events), when protection is on: a click, cart or fav resets the
 * item's fatigue (MP_SHOP_CLICK), a purchase also marks it purchased (MP_SHOP_PURCHASE); other types are ignored.
 * Times are `now` (monotonic seconds), not the events' timestamps. */
void mp_serve_bandit_observe(mp_serve_bandit *sb, const mp_event *ev, size_t n, double now);

/* Appends ,"bandit":{...} (policy, per-variant counters) to a /v1/stats object being written. */
void mp_serve_bandit_stats_json(mp_serve_bandit *sb, jbuf *b);
/* Appends the per-variant Prometheus series (magpie_ab_*) to b. */
void mp_serve_bandit_metrics(mp_serve_bandit *sb, jbuf *b);
/* GET /v1/abtest: the per-variant users / conversions / purchases and each variant's comparison with the first
 * (mp_abtest_compare, bootstrap off) as a JSON object. */
void mp_serve_bandit_abtest_json(mp_serve_bandit *sb, jbuf *b);
/* The per-user rows "variant,user,converted,value" (header first; value = purchases) for `magpie abtest --csv`. */
void mp_serve_bandit_abtest_csv(mp_serve_bandit *sb, jbuf *b);

#endif
