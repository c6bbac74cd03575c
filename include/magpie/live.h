/* magpie/live.h: the live recommender behind `magpie serve`.
 *
 * A live instance holds the store, the catalog (item ids, titles, categories, availability), every user's
 * history in memory, and the current model (plus, for latent-factor models with many items, an HNSW index over
 * the item vectors). It takes writes as they arrive and answers reads at once:
 *   - an acknowledged write is committed to the store before the call returns (it survives kill -9);
 *   - an event changes that user's next recommendations immediately: seen items are filtered from the live
 *     history, the model's update() runs (ALS fold-in, kNN recency through the history, popularity counters);
 *   - a model reload swaps the model atomically: calls in flight finish on the old one, the next call uses the
 *     new one, no call fails because of the swap.
 *
 * Threads: every function may be called from any number of threads at once (reads run in parallel; writes are
 * serialised on one store connection), except mp_live_close, which must not overlap any other call. No global
 * state: two instances on two stores are independent.
 * Strings in results are copies owned by the result (free it with the matching *_free).
 * While an instance serves a store, write to that store through the instance: ids are handed out from its memory,
 * so a concurrent `magpie import` into the same store would clash with them (they are refused, not mixed up).
 *
 * Latent-factor models (those with retrieval vectors: als, bpr, mf) get an HNSW index (inner product) over their
 * item vectors when they cover at least ann_min_items items (or ann = 1); a recommendation then costs a query
 * vector and an index search, with no work proportional to the catalog. A category filter passing few items
 * (k items with k^2 < 4096 * catalog size) is served by scoring exactly those k items instead. Items added after
 * the model was loaded are not in the index, so the model recommends them only when the index comes back short
 * and every item is scored exactly. Other models score every item per request (into pooled buffers).
 * The index is cached beside the model file as MODEL.hnsw (best effort) and reused at the next open or reload of
 * the same file when it indexes exactly the model's item vectors with the same parameters; otherwise rebuilt. */
#ifndef MAGPIE_LIVE_H
#define MAGPIE_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"
#include "magpie/progress.h"
#include "magpie/records.h"

typedef struct mp_live mp_live;

typedef struct mp_live_opts {
    const char *db;            /* store uri (required) */
    const char *model_path;    /* model file written by `magpie train`; NULL: serve popularity computed at open */
    int ann;                   /* -1 auto: index factor models with >= ann_min_items items; 0 never; 1 always */
    uint32_t ann_min_items;    /* default 50000 */
    uint32_t ann_M;            /* default 16 */
    uint32_t ann_ef_construction; /* default 200 */
    uint32_t ann_ef_search;    /* default 64 (raised to offset + n + 16 when larger; exclusions are filtered in the search) */
    int n_threads;             /* for loading / index building (0: all cores) */
    const mp_progress *progress; /* may be NULL: stages "load", "index" at open and reload; borrowed until close */
    double pop_half_life_days; /* half-life of the live popularity counters (default 7; 0: no decay) */
    /* Text: a search index (BM25) over every item's title, brand, category and description is always kept.
     * encoder (borrowed until close, NULL: none) embeds items and queries for semantic search and content-aware
     * models: item vectors cached in the store under its name are loaded at open, items without one (or whose text
     * changed) are embedded by a background thread when embed_missing is set (default 1), and items written
     * through the instance are embedded at once. */
    struct mp_encoder *encoder;
    int embed_missing;
} mp_live_opts;

/* Defaults as documented above (db and model_path NULL). */
MP_EXPORT void mp_live_opts_default(mp_live_opts *o);

/* Opens the store (read-write, created if missing), loads the dataset and the model, builds the index if wanted.
 * *out is owned by the caller: mp_live_close. A missing (MP_ENOTFOUND) or corrupt model file, or one covering more
 * items than the store has (trained on another store), is an error naming the file. */
MP_EXPORT int mp_live_open(mp_live **out, const mp_live_opts *opts, mp_error *err);
MP_EXPORT void mp_live_close(mp_live *l); /* NULL is a no-op */

/* ---- writes ---- */

typedef struct mp_live_write_result {
    uint64_t accepted;   /* records committed (events: new + duplicates) */
    uint64_t inserted;   /* new rows */
    uint64_t duplicates; /* exact duplicate events (user, item, type, ts) already stored or repeated in the batch */
    uint64_t new_users, new_items;
} mp_live_write_result;

/* Adds events (external ids; unknown users and items are created, bare) in one transaction. Records are checked
 * first (ids non-empty, <= 256 bytes, valid UTF-8; a known type; a finite value): MP_EINVAL naming the first bad
 * one ("events[2]: field `user`: id must not be empty"). On any error nothing is written. Duplicates are not an
 * error (retries are safe: nothing is doubled): accepted = n = inserted + duplicates. Only inserted events reach
 * the history, the popularity counters and the model's update(). */
MP_EXPORT int mp_live_add_events(mp_live *l, const mp_event *events, size_t n, mp_live_write_result *res,
                                 mp_error *err);
/* Inserts or replaces items (attributes as given; a new item gets the next internal id). One transaction.
 * A record with only an id (and available true) keeps a known item's attributes and makes it available again.
 * res: accepted = n, inserted = new_items = items new to the store. */
MP_EXPORT int mp_live_put_items(mp_live *l, const mp_item *items, size_t n, mp_live_write_result *res,
                                mp_error *err);
/* Inserts users or replaces their attributes. res: accepted = n, inserted = new_users. */
MP_EXPORT int mp_live_put_users(mp_live *l, const mp_user *users, size_t n, mp_live_write_result *res,
                                mp_error *err);
/* Marks an item (un)available: unavailable items are never recommended. MP_ENOTFOUND for unknown ids. */
MP_EXPORT int mp_live_set_item_available(mp_live *l, const char *item, size_t len, int available, mp_error *err);
/* The right to be forgotten: deletes every event of the user from the store, the user's attributes and the
 * external id (the internal id stays reserved, never reused), the in-memory history, and the user's state in the
 * model (factor row / counters). *n_events gets how many events were deleted. MP_ENOTFOUND for unknown ids. */
MP_EXPORT int mp_live_forget_user(mp_live *l, const char *user, size_t len, uint64_t *n_events, mp_error *err);

/* ---- reads ---- */

typedef struct mp_live_item {
    char *item;     /* external id */
    char *title;    /* or NULL */
    char *category; /* full path or NULL */
    float score;
    char *reason;   /* NULL unless explain was asked */
} mp_live_item;

typedef struct mp_live_list {
    mp_live_item *items;
    size_t n;
    int known_user;         /* the user had a history (or a session was given) */
    int fallback;           /* the model could not rank for this context: popular items were served */
    size_t n_history;       /* events in the history used */
    uint64_t model_version; /* of the model that answered (see mp_live_model_info) */
    char model[32];         /* its name ("als"), or "pop" for the fallback */
} mp_live_list;
MP_EXPORT void mp_live_list_free(mp_live_list *r); /* frees what it owns; the struct is the caller's */

typedef struct mp_live_query {
    const char *user;             /* external user id, or NULL for an anonymous session */
    size_t user_len;
    const char *const *session;   /* anonymous session: recent external item ids, oldest first (unknown ids are
                                     skipped and counted in n_unknown_session) */
    size_t n_session;
    size_t n;                     /* items wanted (>= 1) */
    size_t offset;                /* skip this many of the ranking first (paging) */
    const char *category;         /* only this category (full path, leaf or top level, case-insensitive) or NULL */
    const char *const *exclude;   /* external item ids never to return */
    size_t n_exclude;
    int explain;                  /* fill reasons */
    int include_seen;             /* 0 (default): items in the history are never returned */
    const char *text;             /* a search query or profile text ("running shoes", "女 30岁 跑步") for a user
                                     with little or no history, or NULL; see mp_live_recommend */
    size_t text_len;
    /* Serving decisions (magpie/explore.h): exploration, shopper protection, A/B variants. NULL: the model's
     * ranking as is. */
    struct mp_explore *explore;                  /* borrowed for the call */
    const struct mp_explore_request *explore_req; /* this request's policy, price bounds and time; may be NULL */
    struct mp_explore_slate *slate;              /* required with explore: what was served (see mp_live_recommend);
                                                    free with mp_explore_slate_free, also after an error */
} mp_live_query;

/* Recommendations for a user (q->user) or an anonymous session (q->user NULL, q->session). A user id the store
 * does not know: MP_ENOTFOUND ("unknown user \"x\""). A known user without history, or a context the model
 * cannot rank, gets popular items with out->fallback = 1 and model "pop". Unknown ids in exclude are ignored.
 * Never returned: unavailable items, items outside the category, excluded items and (unless include_seen) items in
 * the history. Items are best first; when the model ranks fewer than offset + n items (a kNN model with few
 * neighbours, a narrow category) the rest are live popular items with score 0 (never above a model item). A
 * category that matches nothing gives an empty list. Reasons (explain) come from the model's explain() for its
 * items and say "popular in ... right now" for popular ones. out is the caller's struct: free its contents with
 * mp_live_list_free (also after an error).
 * Text (q->text): passed to the model with its embedding (mp_user_ctx.text; content-aware models use it). A
 * context without history whose model cannot rank it is then served by search over the catalog (the ranking of
 * mp_live_search, model "search", reasons "matches your interest in ‘running shoes’") before popular items; a user
 * id the store does not know is then served as an anonymous session instead of MP_ENOTFOUND.
 * Explore (q->explore): when mp_explore_wants(q->explore, q->explore_req), the model's best
 * mp_explore_pool(explore, n) items are ranked as above and mp_explore_serve chooses n of them for q->user (or
 * the anonymous session): the served ones come first in out (out->n counts every candidate; q->slate->k are
 * served, with their propensities and the event id feedback refers to), q->slate->active = 1. Otherwise the list
 * is the model's and q->slate->active = 0. Call only after the live recommender was attached to the explore state
 * (mp_explore_attach) if its features should be used.
 * Possible errors: MP_EINVAL (n == 0, a text that is not UTF-8 "field `q`: ...", a bad explore_req->policy
 * "policy: ...", with q->slate->bad_field = "policy"), MP_ENOTFOUND (an unknown user, see above), MP_ENOMEM,
 * MP_ESTORE. */
MP_EXPORT int mp_live_recommend(mp_live *l, const mp_live_query *q, mp_live_list *out, size_t *n_unknown_session,
                                mp_error *err);
/* Items similar to `item`, available ones only, never the item itself: for an indexed model, candidates by inner
 * product from the index reranked by the cosine of the retrieval vectors; otherwise the model's similar(). A
 * model without similar(), or an item it does not cover: popular items of the same category (fallback = 1).
 * MP_ENOTFOUND for an unknown id. */
MP_EXPORT int mp_live_similar(mp_live *l, const char *item, size_t len, size_t n, mp_live_list *out, mp_error *err);
/* Popular items now, optionally in one category: the instance's own counters (sum of event-type weights, negative
 * types excluded, halving every pop_half_life_days), updated by every event, whatever the model. Only items with
 * some popularity are listed, best first; score = the decayed weight as of the latest event. */
MP_EXPORT int mp_live_popular(mp_live *l, const char *category, size_t n, size_t offset, mp_live_list *out,
                              mp_error *err);

/* Search (magpie/search.h for the ranking): BM25 over title, brand, category and description plus, with an encoder,
 * embedding retrieval, fused, filtered to available items (and the category), and re-ranked by the current model
 * for q->user when the model scores that user. Items in the user's history are not excluded. Every item has a
 * reason ("matches ‘running shoes’ in the title", "...; because you bought ‘Trail Socks’"). A user id the store does
 * not know searches anonymously. out->model is the model's name when it re-ranked, else "search"; out->fallback 0.
 * An English-only encoder ("use-lite") is not asked to embed queries with Chinese/Japanese/Korean characters. */
typedef struct mp_live_search_query {
    const char *q; /* UTF-8 query (required) */
    size_t q_len;
    const char *user; /* external user id or NULL */
    size_t user_len;
    size_t n, offset;
    const char *category; /* as in mp_live_query, or NULL */
} mp_live_search_query;
MP_EXPORT int mp_live_search(mp_live *l, const mp_live_search_query *q, mp_live_list *out, mp_error *err);

/* The encoder given at open (borrowed; NULL when none). */
MP_EXPORT struct mp_encoder *mp_live_encoder(mp_live *l);
/* Item vectors held for semantic search: how many items have one, and the dimension (0: none yet). */
MP_EXPORT void mp_live_embedding_stats(mp_live *l, uint64_t *n_items_embedded, uint32_t *dim);

/* ---- features for re-ranking (exploration policies and shopper protection in serving) ---- */
/* Where item feature vectors come from. */
typedef enum {
    MP_LIVE_FEAT_NONE = 0, /* no vectors (dimension 0) */
    MP_LIVE_FEAT_MODEL,    /* the current model's item vectors (its factors: "neural-linear"), L2-normalised */
    MP_LIVE_FEAT_TEXT,     /* the cached text embeddings of the items (already unit length) */
    MP_LIVE_FEAT_AUTO      /* MODEL when the current model has item vectors, else TEXT when items are embedded */
} mp_live_feat_source;
/* Parses "none" / "model" / "text" / "auto". MP_EINVAL naming the choices. */
MP_EXPORT int mp_live_feat_source_parse(const char *s, mp_live_feat_source *out, mp_error *err);
/* The source AUTO resolves to now (NONE, MODEL or TEXT) and its dimension (0 for NONE). A model reload or the
 * first embedded item may change the answer, so callers that fix a dimension pass it to mp_live_item_features. */
MP_EXPORT mp_live_feat_source mp_live_feature_source(mp_live *l, mp_live_feat_source want, uint32_t *dim);

/* What re-ranking needs to know of an item. */
typedef struct mp_live_item_facts {
    double price;      /* NAN: unknown */
    double popularity; /* live popularity (decayed event weights as of the latest event, as mp_live_popular), >= 0 */
    int available;     /* 0: out of stock / not recommendable; also 0 for an unknown id */
    int known;         /* 1 when the id is in the catalog */
} mp_live_item_facts;

/* For items[n] (external ids, NUL-terminated): facts[n] and, when x is not NULL, x[n * dim] feature vectors from
 * `source` (AUTO resolved as above). An item without a vector, an unknown id, or a source whose dimension is not
 * `dim` (after a reload to another model) gets zeros; *n_with (may be NULL) counts the items that got a vector.
 * Thread-safe like every read. MP_EINVAL for x != NULL with dim == 0. */
MP_EXPORT int mp_live_item_features(mp_live *l, const char *const *items, size_t n, mp_live_feat_source source,
                                    uint32_t dim, float *x, mp_live_item_facts *facts, size_t *n_with,
                                    mp_error *err);

typedef struct mp_live_event {
    char *item;
    char *type; /* static name ("purchase"); not owned */
    int64_t ts;
    double value;
    int has_value;
} mp_live_event;
typedef struct mp_live_history {
    mp_live_event *events; /* newest first */
    size_t n;
    size_t total; /* events the user has (n <= limit) */
} mp_live_history;
MP_EXPORT void mp_live_history_free(mp_live_history *h);
/* The user's most recent `limit` events (newest first; total = all of them). MP_ENOTFOUND for unknown ids. */
MP_EXPORT int mp_live_history_get(mp_live *l, const char *user, size_t len, size_t limit, mp_live_history *out,
                                  mp_error *err);

/* ---- model ---- */

typedef struct mp_live_model_info {
    uint64_t version;    /* 1 for the model loaded at open, +1 at each successful reload */
    char name[32];       /* "als" */
    char path[1024];     /* file it came from ("" for the built-in popularity) */
    int64_t file_mtime;  /* seconds */
    uint64_t checksum;   /* payload checksum of the file */
    int64_t loaded_at;   /* wall clock seconds */
    uint32_t n_items;    /* items the model covers */
    int has_index;       /* served through the HNSW index */
    double index_seconds; /* time to build / load the index */
    char *meta_json;     /* the text of MODEL.meta.json written by `magpie train` beside the model (params,
                            offline metrics), or NULL; owned: mp_live_model_info_free */
} mp_live_model_info;
MP_EXPORT void mp_live_model_info_free(mp_live_model_info *mi);
MP_EXPORT int mp_live_model_info_get(mp_live *l, mp_live_model_info *out, mp_error *err);

/* Loads `path` (NULL: the current model path; a given path becomes the current one) into a new model (and index),
 * then swaps it in atomically. On error the current model keeps serving. Events accepted through this instance
 * since the model's training snapshot (`snapshot_at` in MODEL.meta.json, written by `magpie train`, when it belongs
 * to this file; else the file's mtime) are applied to the new model with update() before the swap (the last ones with writes
 * held back for a moment, so none is missed), and users forgotten since open lose their factor rows in it (a
 * popularity model trained before a user was forgotten keeps that user's events in its counters until it is
 * retrained). Concurrent reloads are serialised. MP_EINVAL when there is no path at all (built-in popularity). */
MP_EXPORT int mp_live_reload(mp_live *l, const char *path, mp_error *err);
/* 1 if the model file changed on disk (mtime or size) since it was loaded (for the reload watcher). */
MP_EXPORT int mp_live_model_changed(mp_live *l);

/* The category filter rule of recommend and popular (shared with `magpie recommend --category`): does the
 * category path `path` ("Beauty > Skin Care") match `filter`: the full path, its leaf ("Skin Care"), its top level
 * or any leading part ("Beauty"), ASCII case-insensitive. 0 for a NULL path or an empty filter. */
MP_EXPORT int mp_live_category_matches(const char *path, const char *filter);

/* ---- statistics ---- */
typedef struct mp_live_stats {
    uint64_t n_users, n_items, n_available_items, n_events, n_categories;
    uint64_t per_type[MP_EV_NTYPES];
    uint64_t events_ingested;   /* accepted through this instance since open */
    uint64_t events_duplicates; /* of those, duplicates */
    uint64_t users_forgotten;
    int64_t ts_min, ts_max;
} mp_live_stats;
MP_EXPORT void mp_live_stats_get(mp_live *l, mp_live_stats *out);

#endif
