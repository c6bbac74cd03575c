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
 * Thread-safe: the bandits, logs and shopper table lock themselves; counters are atomic; the serving-log file is
 * written under one mutex. */
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
int mp_serve_bandit_serve(mp_serve_bandit *sb, const char *user, size_t user_len, const char *policy_spec,
                          mp_live_list *l, size_t k, double now, mp_serve_slate *out, mp_error *err);

/* Feedback {event_id, item, reward} at now. MP_ENOTFOUND: unknown / evicted / expired event, or an item not in
 * the event (message starting "item `"); MP_EINVAL: non-finite reward, feedback given twice. *variant gets the
 * variant name on success. */
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

#endif
