/* src/live/live_internal.h: the state of a live recommender (include/magpie/live.h) shared by its files:
 *   live.c     open / close, loading model holders (load, index, reload with catch-up, swap), info and stats,
 *              scratch pools
 *   holder.c   a holder's life: creation, reference count (acquire / release, the last one frees), HNSW scratches
 *   util.c     leaf helpers touching no live state: the clock, id checks (arrays grow with core's mp_grow)
 *   write.c    events, items, users, availability, forgetting
 *   read.c     recommend, similar, popular, history
 *   catalog.c  category matching, cached category filters, the live popularity counters
 *   features.c per-item features and facts for re-ranking (exploration, shopper protection)
 *   text.c     the catalog's text: search index, item embeddings (cache, background embedder), search,
 *              new items for content-aware models
 *   search.c   the search ranking (magpie/search.h; no live state)
 *   explore.c  serving decisions over candidate lists (magpie/explore.h, an mp_explore beside an mp_live):
 *              exploration policies, event logs and feedback, shopper protection, per-variant counters, learned
 *              policies on disk
 *   abtest.c   the A/B part of an mp_explore: hashed assignment, variant specs, per-variant user sets
 * No two object files reference each other's symbols, directly or through a loop: calls go down the order
 *   read.c -> explore.c -> abtest.c, features.c -> holder.c -> util.c
 *   read.c, write.c -> live.c -> catalog.c -> text.c -> search.c, holder.c -> util.c
 * (a file may skip levels; none calls back up: checked with nm over the objects of src/live). Not a public header.
 *
 * Locks (always taken in this order; none is held while waiting for an earlier one):
 *   reload_mu  serialises reloads (held for a whole reload, including the load and the index build).
 *   write_mu   serialises writers: the store connection, the id maps' growth, the ingest log, the forgotten list.
 *              A write holds it from validation to the model update, so a reload's final catch-up (which takes it)
 *              sees every committed event exactly once.
 *   cat        rwlock over the catalog, histories, popularity counters, filters' masks and statistics. Readers
 *              hold the read side for a whole request (so item ids and history pointers stay valid); writers take
 *              the write side only after their store commit, to apply it to memory. Writer-preferring, so a stream
 *              of reads does not starve writes.
 *   holder->lock  rwlock of one model: read side for scoring / explaining / similar, write side for update() and
 *              forget_user() (models are not safe to update while they score).
 *   model_mu   guards the current-holder pointer and holders' reference counts (held for a few instructions).
 *   filter_mu, pool_mu, holder->hs_mu  leaf mutexes of the filter cache and the scratch pools.
 * Readers: cat (read) -> model_mu (acquire the holder) -> holder->lock (read). Writers: write_mu -> cat (write),
 * released -> holder->lock (write).
 *
 * An mp_explore (explore.c, abtest.c) has its own locks, all taken before any of mp_live's above and never while
 * one of those is held (mp_live_recommend calls mp_explore_serve after releasing cat; explore calls into the live
 * instance only through mp_live_item_features / mp_live_feature_source):
 *   x->mu      rwlock: write side for attach (which replaces variants' policies and logs), read side for every
 *              other call for its whole length (serve, feedback, observe, stats, users_each, dim, save).
 *   x->save_mu one save to state_dir at a time (taken under x->mu's read side, or alone at destroy).
 *   then the bandit module's own leaf mutexes (a policy's, an event log's, the shopper table's); an event log
 *   calls its sink under its mutex, and the sink takes
 *   x->log_mu  the serving-log FILE (leaf).
 *   users.mu   each variant's A/B user set (leaf; mp_explore_users_each runs its callback under it).
 * explore: x->mu (read) -> [cat (read) -> model_mu -> holder->lock (read), via mp_live_item_features, released]
 *   -> save_mu -> bandit locks -> log_mu; users.mu alone. */
#ifndef MAGPIE_LIVE_INTERNAL_H
#define MAGPIE_LIVE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "magpie/ann.h"
#include "magpie/buf.h"
#include "magpie/dataset.h"
#include "magpie/encoder.h"
#include "magpie/explore.h"
#include "magpie/live.h"
#include "magpie/model.h"
#include "magpie/search.h"
#include "magpie/store.h"
#include "magpie/strmap.h"
#include "magpie/textindex.h"

#define LIVE_POP_TOP 256       /* items kept per popularity top list (per category, and overall) */
#define LIVE_MAX_FILTERS 512   /* cached category filters; further distinct filters are built per request */
#define LIVE_ANN_MARGIN 16     /* extra candidates asked from the index beyond offset + n (exclusions are filtered inside the search) */
#define LIVE_LOG_MAX (1u << 22) /* ingest-log entries kept for reload catch-up (oldest half dropped beyond) */
/* A filter passing n_in items is served by scoring exactly those items (n_in dot products) rather than by a filtered
 * index search when n_in^2 < LIVE_FILTER_EXACT * n_items: a filtered HNSW search visits about 1/selectivity times
 * the ~4k nodes of an unfiltered one, so scanning the list is cheaper below that. */
#define LIVE_FILTER_EXACT 4096.0

/* An item for the background embedder; tell: also pass it to a content-aware model (set_item) once embedded. */
typedef struct live_embed_job {
    uint32_t id;
    uint8_t tell;
} live_embed_job;

#define LIVE_EMBED_SYNC 64 /* items of one write embedded before it returns; the rest in the background */

/* One user's events, sorted by ts (ties in arrival order). */
typedef struct live_hist {
    mp_interaction *ev; /* cap == 0: points into mp_live.base (not owned); else owned, cap entries */
    uint32_t n, cap;
} live_hist;

enum { LIVE_USER_NONE = 0, LIVE_USER_LIVE = 1, LIVE_USER_FORGOTTEN = 2 };

/* A category filter ("Beauty", "skin care", "Beauty > Skin Care"): which categories match and which items pass. */
typedef struct live_filter {
    char *key;          /* the filter text, ASCII-lowercased; owned */
    uint64_t hash;      /* mp_hash_bytes of key */
    uint8_t *cat_match; /* [cats_cap] 1 if category c matches (c = 0, no category, never does); owned */
    uint32_t *cats;     /* [n_cats] the matching categories, ascending (capacity cats_cap); owned */
    uint32_t n_cats;
    uint8_t *mask;      /* [items_cap] 1 = available and in a matching category; owned */
    uint32_t *items;    /* [n_in] the items whose mask is 1, in no particular order (capacity cap_in); owned */
    uint32_t n_in, cap_in;
} live_filter;

/* The best items of a category (or of all) by live popularity, best first (ties by lower id). */
typedef struct live_toplist {
    uint32_t *items; /* [LIVE_POP_TOP]; owned */
    uint32_t n;
    int overflowed; /* 1 once an item with a positive score was pushed out (the list is then not exhaustive) */
} live_toplist;

/* Per-request buffers, pooled (grown on demand, never shrunk; freed at close). */
typedef struct live_scratch {
    struct live_scratch *next; /* pool link */
    float *scores;             /* exact scoring: one score per item */
    size_t scores_cap;
    uint32_t *ids;             /* candidates */
    size_t ids_cap;
    float *cand;               /* their scores */
    size_t cand_cap;
    uint32_t *excl;            /* excluded item ids, sorted */
    size_t excl_cap;
    mp_interaction *hist;      /* a session turned into a history */
    size_t hist_cap;
    float *q;                  /* query vector */
    size_t q_cap;
    uint32_t *top;             /* popularity slow path: ranked ids */
    size_t top_cap;
    uint32_t *cursor;          /* per-category cursors when merging popularity lists */
    size_t cursor_cap;
    char *key;                 /* a lowercased filter text */
    size_t key_cap;
    uint8_t *mask;             /* search: allowed items */
    size_t mask_cap;
    mp_search_hit *hits;       /* search results */
    size_t hits_cap;
    live_filter tmp;           /* a filter built for this request only (the cache is full) */
    size_t tmp_items_cap, tmp_cats_cap;
} live_scratch;

/* One loaded model with what serves it. Shared by readers through a reference count; freed with the last one. */
typedef struct live_holder {
    int refs;                      /* guarded by mp_live.model_mu */
    mp_model *model;               /* owned; NULL: the built-in live popularity */
    pthread_rwlock_t lock;         /* read: score, explain, similar; write: update, forget_user */
    mp_hnsw *index;                /* inner-product index over the model's item vectors, or NULL; owned */
    uint32_t dim;                  /* length of query vectors (index) */
    int has_vectors;               /* mp_model_query_vector works */
    pthread_mutex_t hs_mu;         /* guards the HNSW scratch stack */
    mp_hnsw_scratch **hs;          /* [n_hs] free scratches of this index; owned */
    size_t n_hs, cap_hs;
    mp_live_model_info info;       /* meta_json owned */
    int64_t mtime_ns;              /* of the file when loaded */
    int64_t since_ns;              /* events committed from this time on are re-applied to it (catch-up): the
                                      training snapshot time from its .meta.json when plausible, else mtime_ns */
    off_t size;
    ino_t ino;
    uint32_t n_items_trained;      /* mp_model_n_items right after loading (items beyond get set_item) */
} live_holder;

/* An event accepted through this instance, kept for the catch-up of a model loaded later. */
typedef struct live_logged {
    mp_interaction e; /* e.user == MP_NO_USER: the user was forgotten since (skipped) */
    int64_t at_ns;    /* wall clock at commit */
} live_logged;

struct mp_live {
    mp_live_opts opts; /* db and model_path point to the copies below; progress is borrowed until close */
    char *db, *model_path;

    pthread_mutex_t reload_mu;
    pthread_mutex_t write_mu;
    mp_store *store; /* the one write connection (write_mu) */

    pthread_rwlock_t cat;
    /* users */
    mp_strmap *users;      /* external -> internal id (forgotten users under their tombstone key) */
    uint32_t n_users, users_cap;
    live_hist *hist;       /* [users_cap] */
    uint8_t *user_state;   /* [users_cap] LIVE_USER_* */
    mp_interaction *base;  /* the events loaded at open; histories point into it until they grow; owned */
    /* items */
    mp_strmap *items;      /* external -> internal id; mp_strmap_key gives the external id */
    uint32_t n_items, items_cap;
    char **title;          /* [items_cap] or NULL entries; owned */
    uint32_t *item_cat;    /* [items_cap] category id, 0 = none */
    uint8_t *avail;        /* [items_cap] 1 = may be recommended */
    double *price;         /* [items_cap] NAN = unknown */
    /* categories */
    mp_strmap *cats;       /* full path -> id; id 0 is "(none)" */
    uint32_t n_cats, cats_cap;
    /* live popularity: score[i] = sum over events of w(type) * 2^((ts - pop_ref) / half_life); the scale grows
     * with time, so adding an event only ever raises one item's score and the top lists stay exact */
    double *pop;           /* [items_cap] */
    double pop_half_life;  /* seconds; 0: no decay */
    int64_t pop_ref;       /* reference time of the scale (moved forward, rescaling all, every 60 half-lives) */
    int64_t pop_latest;    /* newest event counted: scores are shown decayed to it */
    live_toplist pop_all;  /* over all items */
    live_toplist *pop_cat; /* [cats_cap] per category */
    /* filters: entries are added by readers (cat read side + filter_mu) and changed by writers (cat write side) */
    pthread_mutex_t filter_mu;
    live_filter **filters;
    size_t n_filters, cap_filters;
    /* statistics (cat) */
    uint64_t n_events, per_type[MP_EV_NTYPES], n_users_live, n_items_live, n_available;
    int64_t ts_min, ts_max;
    uint64_t events_ingested, events_duplicates, users_forgotten;

    /* the model */
    pthread_mutex_t model_mu;
    live_holder *cur;
    uint64_t next_version; /* reload_mu */

    /* text (cat): every item's description and brand (titles above), the BM25 index (doc = item id) and, with an
     * encoder, item vectors [items_cap * emb_dim] (emb_dim 0 until the first vector is known) */
    char **desc, **brand;  /* [items_cap] or NULL entries; owned */
    const char **catp;     /* [items_cap] the item's category path (a key of `cats`) or NULL */
    char **details;        /* [items_cap] string and number values of the item's attributes, or NULL; owned */
    mp_textindex *tix;
    mp_encoder *enc;       /* borrowed (opts.encoder) */
    float *emb;
    uint8_t *has_emb;      /* [items_cap] */
    uint32_t emb_dim;
    uint64_t n_emb;
    /* users' profile text (cat): the string and number values of their attributes ("女 30 跑步"), for users
     * without history; [uprof_cap] or NULL entries, owned */
    char **uprof;
    size_t uprof_cap;
    /* background embedder (with an encoder, for the instance's lifetime): a FIFO of items to embed, fed at open
     * with the items lacking a cached vector and by large writes (beyond the first LIVE_EMBED_SYNC items) */
    pthread_t embedder;
    int embedder_started, emb_init;
    pthread_mutex_t emb_mu; /* guards the queue and embedder_stop (leaf) */
    pthread_cond_t emb_cv;
    int embedder_stop;
    live_embed_job *jobs;
    size_t n_jobs, cap_jobs, jobs_head;

    /* ingest log and forgotten users (write_mu) */
    live_logged *log;
    size_t n_log, cap_log;
    uint64_t log_first_seq; /* sequence number of log[0] */
    uint32_t *forgot;
    size_t n_forgot, cap_forgot;

    /* scratch pool */
    pthread_mutex_t pool_mu;
    live_scratch *pool;
};

/* ---- util.c ---- */
/* Wall clock, nanoseconds. */
int64_t live_now_ns(void);
/* Validates an external id (non-empty, at most MP_MAX_ID_BYTES, valid UTF-8). NULL if fine, else the reason. */
const char *live_id_problem(const char *id, size_t len);

/* ---- holder.c ---- */
/* An empty holder with one reference (the caller's), or NULL (out of memory). */
live_holder *live_holder_new(void);
/* Frees h and everything it owns (no reference may remain). NULL: no-op. */
void live_holder_free(live_holder *h);
/* The current holder with one more reference (model_mu). */
live_holder *live_holder_acquire(mp_live *l);
/* Drops a reference; the last one frees the holder. NULL: no-op. */
void live_holder_release(mp_live *l, live_holder *h);
mp_hnsw_scratch *live_hnsw_scratch_get(live_holder *h, mp_error *err);
void live_hnsw_scratch_put(live_holder *h, mp_hnsw_scratch *s);

/* ---- live.c ---- */
live_scratch *live_scratch_get(mp_live *l);
void live_scratch_put(mp_live *l, live_scratch *sc);

/* ---- catalog.c (callers hold cat: read side for lookups, write side for changes) ---- */
/* Grows every per-item array (titles, categories, availability, popularity, filter masks) to hold n items. */
int live_items_reserve(mp_live *l, uint32_t n);
/* Grows every per-category array (popularity lists, filters' matches) to hold n categories. */
int live_cats_reserve(mp_live *l, uint32_t n);
/* Id of category path `path` (len bytes), creating it when new (filters learn whether it matches). */
int live_cat_intern(mp_live *l, const char *path, size_t len, uint32_t *id);
/* Recomputes item i in every cached filter (after its availability or category changed). */
void live_filters_item_changed(mp_live *l, uint32_t i);
/* The filter for `text` (cat read side held): cached, or built into sc->tmp when the cache is full. *out is NULL
 * when no category matches. */
int live_filter_get(mp_live *l, live_scratch *sc, const char *text, const live_filter **out, mp_error *err);
void live_filters_free(mp_live *l);

/* Popularity. */
int live_pop_init(mp_live *l);
void live_pop_add(mp_live *l, const mp_interaction *e);
void live_pop_sub(mp_live *l, const mp_interaction *e);
/* Recomputes every top list from the scores (after scores went down or items changed category). */
void live_pop_rebuild(mp_live *l);
void live_pop_free(mp_live *l);
/* The `skip + want` most popular items passing `f` (or availability when f is NULL) and not in excl (sorted
 * [n_excl]), minus the first `skip`: writes up to `want` ids and scores (decayed weights as of the latest event).
 * `cat_only` != UINT32_MAX restricts to that one category instead of a filter. Returns the count or a negative code
 * (out of memory). */
long live_pop_top(mp_live *l, live_scratch *sc, const live_filter *f, uint32_t cat_only, const uint32_t *excl,
                  size_t n_excl, size_t skip, size_t want, uint32_t *out, float *scores);
/* The leaf of a category path ("Skin Care" for "Beauty > Skin Care"); NULL for category 0. */
const char *live_cat_leaf(const mp_live *l, uint32_t c);

/* ---- text.c ---- */
/* Sets user u's profile text from its attributes JSON (cat write side held); attrs.len 0 clears it. MP_ENOMEM. */
int live_profile_set(mp_live *l, uint32_t u, mp_str attrs);
/* User u's profile text or NULL (cat held). */
const char *live_profile_get(const mp_live *l, uint32_t u);
/* Loads descriptions and brands from the store, builds the search index, loads cached item vectors and lists the
 * items to embed (at open, before any other thread runs). */
int live_text_open(mp_live *l, mp_error *err);
/* Starts the background embedder (after open succeeded); a failure to start only means no background embedding. */
void live_text_start(mp_live *l);
/* Stops the embedder and frees the text state (close). */
void live_text_close(mp_live *l);
/* Sets item id's text (cat write side held, after its title and category were set; old_title: the title before,
 * still allocated): description and brand copies, its search document, and drops its vector if the embedded text
 * changed. MP_ENOMEM. */
int live_text_set_item(mp_live *l, uint32_t id, const mp_item *it, const char *old_title);
/* After items were written (no lock held): embeds their text with the encoder, caches the vectors in the store,
 * and tells the current model about them (mp_model_set_item). Best effort (failures leave them unembedded). */
void live_text_items_written(mp_live *l, const uint32_t *ids, size_t n);
/* Tells model m (not yet shared with readers) about items [from, n_items) (new since it was trained): set_item
 * for content-aware models. Takes cat's read side. */
void live_text_model_catch_up(mp_live *l, mp_model *m, uint32_t from);
/* Grows the per-item text arrays from old to cap entries (called by live_items_reserve). */
int live_text_reserve(mp_live *l, size_t old, size_t cap);
/* Embeds a query / profile text with the encoder: *out malloc'ed (caller frees) or NULL when there is no encoder,
 * the text is empty, or an English-only encoder would not understand it. Failures are not errors (NULL). */
float *live_text_embed_query(mp_live *l, const char *text, size_t len, uint32_t *dim);
/* The search catalog view over the live state (cat read side held). */
void live_text_catalog(mp_live *l, mp_search_catalog *c, const uint8_t *allow);
/* "‘running’, ‘shoes’" runs of q found in item's text (see search.c); 0 when nothing matched. */
int live_search_runs(const mp_search_catalog *c, uint32_t item, const char *q, size_t len, char *buf, size_t cap);

/* ---- abtest.c (an mp_explore's A/B state; callers hold x->mu's read side) ---- */
/* One variant of a spec. */
typedef struct live_ab_variant {
    char name[MP_EXPLORE_NAME_MAX];
    double weight;
    mp_bandit_opts opts; /* parsed from its POLICY */
} live_ab_variant;
/* Parses variants ("NAME:WEIGHT:POLICY;...") into out[MP_EXPLORE_MAX_VARIANTS] (*n of them) or, when variants is
 * NULL or empty, the single variant "default" with `policy` (NULL: greedy). MP_EINVAL; *option (may be NULL) gets
 * "variants" or "policy", the message does not repeat it. */
int live_ab_parse(const char *variants, const char *policy, live_ab_variant *out, size_t *n, const char **option,
                  mp_error *err);

/* One user a variant served. */
typedef struct live_abuser {
    uint64_t key; /* live_ab_user_key of the user id (0: empty slot) */
    uint32_t purchases;
    uint8_t converted;
} live_abuser;
/* The users a variant served: an open-addressing set (load < 3/4), at most max of them. */
typedef struct live_abusers {
    pthread_mutex_t mu;  /* guards everything below (leaf) */
    live_abuser *slot;   /* [cap], cap a power of two or 0; owned */
    size_t cap, n, max;
    uint64_t converted;  /* users with converted = 1 */
    uint64_t untracked;  /* exposures of users beyond max */
} live_abusers;
/* 64-bit hash of a user id, never 0. */
uint64_t live_ab_user_key(const char *user);
void live_abusers_init(live_abusers *u, size_t max);
void live_abusers_free(live_abusers *u);
enum { LIVE_AB_SERVED, LIVE_AB_CONVERTED, LIVE_AB_PURCHASE };
/* Records an exposure (LIVE_AB_SERVED: the user is added when there is room), a conversion or a purchase (these
 * count only for a user already in the set). 1 when the user is (now) in the set. */
int live_abusers_note(live_abusers *u, const char *user, int what);
void live_abusers_counts(live_abusers *u, uint64_t *users, uint64_t *converted, uint64_t *untracked);
/* fn over every user (under u->mu); stops at and returns fn's first nonzero return. */
int live_abusers_each(live_abusers *u, const char *variant, mp_explore_user_fn fn, void *ctx);

/* 1 when v is in the ascending array a[0..n) (binary search). */
static inline int live_in_sorted(const uint32_t *a, size_t n, uint32_t v) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && a[lo] == v;
}

#endif
