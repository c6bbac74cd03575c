/* magpie/explore.h: the serving decisions of the live module: exploration policies over a recommender's candidates
 * with propensities and event ids, feedback, shopper protection, A/B variants with per-variant counters and
 * per-user conversions, and learned policies kept on disk (src/live/explore.c, src/live/abtest.c). `magpie serve`
 * reaches it through mp_live_recommend (mp_live_query.explore) and the calls below; any other front end can too.
 *
 * An mp_explore is active for a request when its options name a policy other than greedy, a serving log, A/B
 * variants, a protection setting or a price rule, or when the request passes a policy or a price bound
 * (mp_explore_wants). Then:
 *   1. the user is assigned a variant (mp_abtest_assign over salt and the user id; anonymous sessions use the id
 *      ""), each variant with its own mp_bandit (learned model and random stream) and event log;
 *   2. the model's top n * pool candidates pass shopper protection (caps, fatigue, MMR, novelty from the user's
 *      recent impressions kept in an LRU mp_shopper_table) when any protection setting is on, and the price rule;
 *   3. the variant's policy (or the request's override of its exploration part) chooses n of them; the slate is
 *      recorded in the variant's event log with each item's propensity and the impressions in the shopper table;
 *   4. mp_explore_feedback finds the event in the variant log that issued it, checks it and updates that policy.
 * Items are identified in the shopper state by a 32-bit hash of their external id (categories likewise).
 *
 * Scores and features: the policies see each candidate's model score min-max normalised over the candidates (so w
 * and tau mean the same whatever the model's scale) and x = [item features, normalised score]: the learned ridge
 * model can re-weigh the score on the reward scale. Once attached to a live recommender (mp_explore_attach) the item
 * features are opts.features: the model's item factors or the items' text embeddings, unit length (the dimension is
 * fixed at attach; a reload to a model of another dimension serves zero features until the next attach); without
 * them x is the score alone. Every candidate also gets its price (price rule), its live popularity (novelty boost)
 * and its stock state. Positive feedback also counts as a click in the shopper's state (it resets the item's
 * fatigue).
 *
 * Persistence: with state_dir, each variant's learned policy is saved to DIR/<variant>.bandit every save_every
 * seconds and at destroy, and loaded at attach when its learned-model settings (dim, lambda, intercept, disjoint,
 * w) still match (else it starts fresh, with a warning).
 *
 * A/B metrics: every variant counts the distinct users it served (up to ab_users, then "untracked"), the users who
 * converted (positive feedback on a served item, or a purchase event after being served) and their purchases.
 *
 * Threads: every call may run from any number of threads at once, except mp_explore_destroy (no other call on the
 * handle may overlap it) and mp_explore_attach (may overlap the others: they wait). No global state. Warnings
 * (problems that fail no call: a saved policy that does not fit, a serving-log line that could not be written)
 * go to opts.warn; the library never prints. */
#ifndef MAGPIE_EXPLORE_H
#define MAGPIE_EXPLORE_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/bandit.h"
#include "magpie/error.h"
#include "magpie/live.h"
#include "magpie/records.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MP_EXPLORE_MAX_VARIANTS 16
#define MP_EXPLORE_NAME_MAX 48 /* bytes of a variant name, NUL included */

typedef struct mp_explore mp_explore;

/* A warning: msg is NUL-terminated, valid during the call only. Called from the thread that hit the problem. */
typedef void (*mp_explore_warn_fn)(void *ctx, const char *msg);

typedef struct mp_explore_opts {
    const char *policy;     /* bandit spec (magpie/bandit.h) of the single variant "default" when `variants` is
                               empty; default "greedy" */
    const char *variants;   /* "NAME:WEIGHT:POLICY;..." (e.g. "control:50:greedy;explore:50:egreedy:epsilon=0.1"),
                               or NULL / "": one variant */
    const char *salt;       /* A/B assignment salt (a new salt reshuffles users); default "magpie" */
    const char *log_path;   /* JSONL serving log appended for `magpie ope --format jsonl`; NULL / "": none */
    const char *state_dir;  /* directory of learned policies (created if missing); NULL / "": none */
    double save_every;      /* seconds between saves to state_dir (<= 0: only at destroy); default 300 */
    double ttl;             /* seconds a served list accepts feedback (> 0); default 3600 */
    size_t capacity;        /* served lists kept per variant for feedback (oldest evicted, >= 1); default 100000 */
    uint32_t pool;          /* mp_live_recommend asks the model for n * pool candidates (1..100); default 3 */
    mp_live_feat_source features; /* item vectors for the policies and MMR; default MP_LIVE_FEAT_AUTO */
    mp_protect_opts protect; /* shopper protection; default mp_protect_opts_default (off). Its price_min /
                                price_max are the default price rule (NAN: no bound) */
    size_t shopper_users;   /* users whose recent impressions are kept (least recent dropped); default 100000 */
    size_t ab_users;        /* users tracked per variant for conversions (more count as untracked); default 1000000 */
    uint64_t seed;          /* random streams and event-id nonces (a server uses the clock so ids of another run are
                               not mistaken for its own); default 1 */
    mp_explore_warn_fn warn; /* NULL: warnings are dropped */
    void *warn_ctx;
} mp_explore_opts;

/* Defaults as documented above. */
MP_EXPORT void mp_explore_opts_default(mp_explore_opts *o);
/* Checks o (the policy and variant specs, the ranges) without creating anything. *option (may be NULL) gets the
 * name of the field at fault ("policy", "variants", "ttl", "capacity", "pool", "price_min", "price_max",
 * "protect.mmr_lambda", ...: a static string) and the message does not repeat it, so a front end can name its own
 * setting. Possible errors: MP_EINVAL. */
MP_EXPORT int mp_explore_opts_check(const mp_explore_opts *o, const char **option, mp_error *err);

/* Creates the state from o (copied; checked as above, the message then starts with "OPTION: "), creates
 * state_dir and opens log_path for appending. *out is the caller's: mp_explore_destroy. Possible errors:
 * MP_EINVAL, MP_EIO (naming the directory or file), MP_ENOMEM. */
MP_EXPORT int mp_explore_create(const mp_explore_opts *o, mp_explore **out, mp_error *err);
/* Saves the learned policies (a failure is a warning), writes the pending serving-log lines (reward 0 where no
 * feedback came), closes the log, frees. NULL is a no-op. */
MP_EXPORT void mp_explore_destroy(mp_explore *x);

/* Binds x to a live recommender (borrowed until destroy or the next attach; NULL: no features or facts): resolves
 * the feature source and dimension and (re)creates each variant's policy and event log for it, loading saved state
 * (problems with saved state are warnings). Events served before an attach that changes the dimension no longer
 * accept feedback. Possible errors: MP_ENOMEM (x keeps serving with what it had). */
MP_EXPORT int mp_explore_attach(mp_explore *x, mp_live *live, mp_error *err);
/* Feature dimension in use (0: none) and, when source is not NULL, its name ("none", "model", "text"). */
MP_EXPORT uint32_t mp_explore_dim(mp_explore *x, const char **source);
/* 1 when the options turn exploration on for every request (see above); 0 for NULL. */
MP_EXPORT int mp_explore_enabled(const mp_explore *x);
/* Saves every variant's learned policy that changed to state_dir (no-op without one). Possible errors: MP_EIO
 * naming the file. */
MP_EXPORT int mp_explore_save(mp_explore *x, mp_error *err);

/* Per-request choices. */
typedef struct mp_explore_request {
    const char *policy;          /* a bandit spec parsed over the variant's options (its exploration part), or NULL */
    double price_min, price_max; /* price rule for this request; NAN: the options' */
    double now;                  /* monotonic seconds (event times, ttl, fatigue); <= 0: the monotonic clock */
} mp_explore_request;
/* policy NULL, no price bounds, now 0. */
MP_EXPORT void mp_explore_request_default(mp_explore_request *r);
/* 1 when x is active for a request r (may be NULL): mp_explore_enabled, or r names a policy or a price bound. */
MP_EXPORT int mp_explore_wants(const mp_explore *x, const mp_explore_request *r);
/* Candidates mp_live_recommend asks for when x serves n items: n * pool. */
MP_EXPORT size_t mp_explore_pool(const mp_explore *x, size_t n);

/* What one served list got. */
typedef struct mp_explore_slate {
    int active;                /* 1: the list went through x (the fields below are set); 0: the model's list as is */
    size_t k;                  /* items served: the first k of the reordered list */
    double *propensity;        /* [k] each item's probability of its position; owned: mp_explore_slate_free */
    char event_id[40];         /* the id feedback refers to; "" when k == 0 (nothing recorded) */
    const char *variant;       /* variant name (valid until mp_explore_destroy) */
    const char *policy;        /* policy kind used ("egreedy", ...; static) */
    const char *bad_field;     /* after an error caused by the request: the mp_explore_request field at fault
                                  ("policy"; static), so a front end can name its own input; else NULL */
} mp_explore_slate;
/* Frees what the slate owns (the struct is the caller's); a zeroed or NULL slate is a no-op. */
MP_EXPORT void mp_explore_slate_free(mp_explore_slate *s);

/* Chooses k <= l->n of the candidate list l (the model's order, as mp_live_recommend returns it) for
 * user[0..user_len) (NULL: an anonymous session) with the variant's policy or r->policy, after shopper protection
 * and the price rule. Reorders l->items so the served ones come first (l->n unchanged: mp_live_list_free still
 * frees all) and fills *out (out->active = 1; free it with mp_explore_slate_free, also after an error). Items are
 * looked up in the attached live recommender for features, price, popularity and stock. Possible errors:
 * MP_EINVAL "policy: ..." (a bad r->policy: out->bad_field = "policy", nothing recorded), MP_ENOMEM, and the live
 * recommender's errors from mp_live_item_features. */
MP_EXPORT int mp_explore_serve(mp_explore *x, const char *user, size_t user_len, const mp_explore_request *r,
                               mp_live_list *l, size_t k, mp_explore_slate *out, mp_error *err);

/* Feedback {event_id, item, reward} at now (monotonic seconds, <= 0: the clock): updates the policy of the variant
 * that served the event, writes its serving-log line, and counts a click (reward > 0: the user converted, the
 * item's fatigue is reset). *variant (may be NULL) gets the variant's name on success. Possible errors:
 *   MP_ENOTFOUND  no variant issued the event id ("unknown event id");
 *   MP_EEXPIRED   the event was evicted or its ttl passed;
 *   MP_ENOTMEMBER the item was not in the event;
 *   MP_ECONFLICT  the item already has feedback;
 *   MP_EINVAL     a missing id or item, a non-finite reward. */
MP_EXPORT int mp_explore_feedback(mp_explore *x, const char *event_id, const char *item, double reward, double now,
                                  const char **variant, mp_error *err);

/* Events stored through the live recommender (call after mp_live_add_events succeeded; now as above): with
 * protection on, a click, cart or fav resets the item's fatigue and a purchase also marks it purchased for that
 * user; a purchase by a user a variant served counts as that variant's conversion and purchase. Other types are
 * ignored. Times are `now`, not the events' timestamps. NULL x: no-op. */
MP_EXPORT void mp_explore_observe(mp_explore *x, const mp_event *events, size_t n, double now);

/* Counters of one variant (a snapshot: each counter is read atomically, not all at one instant). */
typedef struct mp_explore_variant_stats {
    const char *name;     /* valid until mp_explore_destroy */
    const char *policy;   /* policy kind name (static) */
    double weight;
    uint64_t requests;    /* lists served */
    uint64_t impressions; /* items served */
    uint64_t feedback;    /* feedback calls accepted */
    uint64_t clicks;      /* feedback with reward > 0 */
    double reward_sum;    /* sum of positive rewards (micro-unit precision) */
    uint64_t updates;     /* policy updates */
    size_t events_held;   /* served lists that still accept feedback */
    uint64_t users;       /* distinct users served (tracked) */
    uint64_t converted_users; /* of those, with positive feedback or a purchase after being served */
    uint64_t purchases;   /* purchase events by users the variant served */
    uint64_t untracked_users; /* users beyond ab_users */
} mp_explore_variant_stats;

typedef struct mp_explore_stats {
    int enabled;          /* mp_explore_enabled */
    int protection;       /* a protection setting is on */
    const char *features; /* "none", "model", "text" */
    uint32_t dim;
    size_t shoppers;      /* users with shopper state */
    const char *salt;     /* valid until mp_explore_destroy */
    size_t n_variants;
    mp_explore_variant_stats variants[MP_EXPLORE_MAX_VARIANTS];
} mp_explore_stats;
/* Fills *out (caller-owned). */
MP_EXPORT void mp_explore_stats_get(mp_explore *x, mp_explore_stats *out);

/* One tracked user of a variant: user_key is the 64-bit hash of the user id (never 0), converted 0/1, purchases
 * the purchase events counted. A nonzero return stops the walk. */
typedef int (*mp_explore_user_fn)(void *ctx, const char *variant, uint64_t user_key, int converted,
                                  uint32_t purchases);
/* Calls fn for every tracked user, variant by variant (in no particular order within one), for per-user A/B
 * analysis (`magpie abtest --csv`). fn runs under the variant's user-set mutex: it must not call back into x.
 * Returns fn's nonzero return, or 0. */
MP_EXPORT int mp_explore_users_each(mp_explore *x, mp_explore_user_fn fn, void *ctx);

/* Deterministic assignment: hashes "salt" NUL "user_id" (64-bit, stable across runs and machines) to u in [0, 1)
 * and returns the first variant v with u < (w_0 + ... + w_v) / sum(w), so a user keeps the variant as long as salt
 * and weights stay; a new salt reshuffles everyone. weights: [n_variants], non-negative, positive sum.
 * Returns the variant index, or -1 for bad weights. No mp_error: -1 also means out of memory (a salt and id
 * longer than 255 bytes together are copied to the heap), and -1 is MP_ENOMEM's value, not MP_EINVAL's.
 * Pure; thread-safe. */
MP_EXPORT int mp_abtest_assign(const char *user_id, const char *salt, const double *weights, size_t n_variants);

#ifdef __cplusplus
}
#endif
#endif
