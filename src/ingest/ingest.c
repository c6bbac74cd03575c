/* The importer: one batch of validated records into a store, as one transaction.
 *
 * Speed: events are not written one by one as they arrive. They are buffered in a chunk (up to CHUNK_EVENTS,
 * text in an arena), sorted by the store's key order (user, ts, item, type) and inserted in multi-row groups.
 * Sorted inserts touch each B-tree page once per chunk instead of once per event (5M unsorted single-row
 * inserts took 10.3 s, sorted 32-row inserts 2.6 s); duplicates inside a chunk end up adjacent and are dropped
 * before reaching the store, duplicates across chunks or against the store are refused by the store's key.
 * Users and items first seen in a chunk are written (bare) by that chunk's flush. The caller's hot path per
 * event is two hash lookups and a buffer append.
 *
 * Two chunks alternate: while the caller parses into one, a flush thread sorts and writes the other, so
 * parsing and SQLite overlap. Only one thread uses the store at any time: every direct store call on the
 * caller's thread first joins the flush thread. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "magpie/ingest.h"
#include "magpie/json.h"

#define CHUNK_EVENTS (1u << 20)              /* default events buffered before a sorted flush */
#define CHUNK_TEXT_BYTES ((size_t)128 << 20) /* or this much review text / session ids */
#define FLUSH_GROUP 256                      /* events handed to the store per call */
#define PREFETCH_AHEAD 8                     /* rows prefetched ahead when inserting in sorted order */

/* One buffered event; text and session live in the chunk's arena at text_off (session right after the text). */
typedef struct pending {
    uint32_t user, item;
    int64_t ts;
    double value;
    uint32_t text_off; /* < CHUNK_TEXT_BYTES + one record */
    uint32_t text_len, session_len;
    uint8_t type, has_value;
} pending;

/* A user or item first seen in a chunk, to be written (bare) by that chunk's flush. The key points into the id
 * map's arena, whose strings never move, so the flush thread can read it while the map keeps growing. */
typedef struct fresh_id {
    const char *key;
    uint32_t len, id;
} fresh_id;

/* A buffer of events and the users / items they introduced. While one chunk fills on the caller's thread, the
 * previous one may be sorted and written by a flush thread: parsing and SQLite work overlap on two cores. */
typedef struct chunk {
    pending *buf; /* [n] buffered events */
    size_t n, cap;
    char *arena; /* [arena_len] text and session bytes */
    size_t arena_len, arena_cap;
    uint32_t *perm;   /* [cap] sort permutation */
    uint32_t *counts; /* [n_counts] counting-sort buckets by user */
    size_t n_counts;
    fresh_id *fresh[2]; /* [n_fresh[k]] users (0) and items (1) first seen in this chunk */
    size_t n_fresh[2], cap_fresh[2];
    uint32_t n_users; /* user id bound when the chunk was handed off (for the counting sort) */
    /* flush results, written by whoever flushes, read after it is joined */
    mp_store *s;
    int rc;
    mp_error err;
    uint64_t written, duplicates;
} chunk;

struct mp_importer {
    mp_store *s;         /* the store (borrowed) */
    mp_import_opts opts; /* copy of the caller's options */
    mp_strmap *ids[2];   /* external -> internal ids of users [0] and items [1] (owned) */
    uint32_t bound0[2];  /* id bounds when the batch began (ids >= bound0 are new) */
    int in_txn;          /* a store transaction is open */
    int writing;         /* 0 in a dry run, or once an all-or-nothing batch saw a reject */
    chunk chunks[2];     /* chunks[filling] takes new events; the other may be in flight */
    int filling;
    size_t chunk_events; /* chunk capacity in events */
    pthread_t flusher;   /* flushes the other chunk while flushing is set */
    int flushing;
    FILE *rejects;        /* rejects file (owned) or NULL */
    mp_import_report rep; /* counters and kept messages (messages owned until handed to the caller) */
    size_t max_errors;
    char first_error[MP_ERROR_MSG_MAX];
    double t_start;       /* wall clock at begin */
    double store_seconds; /* time the caller's thread spent in or waiting for the store */
    uint32_t emb_dim[2];  /* dimension of the users' [0] / items' [1] embeddings from source "user" (0: none yet) */
    uint64_t events_written, rows_written;
};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void mp_import_report_free(mp_import_report *rep) {
    if (!rep) return;
    for (size_t i = 0; i < rep->n_errors; i++)
        free(rep->errors[i]);
    free(rep->errors);
    rep->errors = NULL;
    rep->n_errors = 0;
}

static void chunk_free(chunk *c) {
    free(c->buf);
    free(c->arena);
    free(c->perm);
    free(c->counts);
    free(c->fresh[0]);
    free(c->fresh[1]);
}

static void chunk_reset(chunk *c) {
    c->n = c->arena_len = 0;
    c->n_fresh[0] = c->n_fresh[1] = 0;
    c->rc = MP_OK;
    c->written = c->duplicates = 0;
}

/* Waits for the flush thread, if any, and takes over its results. */
static int join_flush(mp_importer *im, mp_error *err) {
    if (!im->flushing) return MP_OK;
    double t0 = now_seconds();
    pthread_join(im->flusher, NULL);
    im->store_seconds += now_seconds() - t0;
    im->flushing = 0;
    chunk *c = &im->chunks[!im->filling];
    im->events_written += c->written;
    im->rep.duplicates += c->duplicates;
    int rc = c->rc;
    if (rc != MP_OK && err) *err = c->err;
    chunk_reset(c);
    return rc;
}

static void importer_free(mp_importer *im) {
    join_flush(im, NULL);
    mp_strmap_destroy(im->ids[0]);
    mp_strmap_destroy(im->ids[1]);
    chunk_free(&im->chunks[0]);
    chunk_free(&im->chunks[1]);
    if (im->rejects) fclose(im->rejects);
    mp_import_report_free(&im->rep);
    free(im);
}

void mp_importer_abort(mp_importer *im) {
    if (!im) return;
    join_flush(im, NULL);
    if (im->in_txn) mp_store_rollback(im->s, NULL);
    importer_free(im);
}

/* Records carry embeddings stored under this source. */
#define RECORD_EMB_SOURCE MP_EMBEDDING_SOURCE_USER

static int first_dim_cb(void *ctx, uint32_t id, const float *v, uint32_t dim, uint64_t text_hash) {
    *(uint32_t *)ctx = dim;
    return 1; /* one is enough: all vectors of a source have the same dimension */
}

/* Reads the dimension of the stored record embeddings of users (k 0) or items (k 1), so that a record with another
 * dimension is a bad record (with its line) rather than a failed write. */
static int load_emb_dim(mp_importer *im, int k, mp_error *err) {
    uint32_t dim = 0;
    int rc = mp_store_scan_embeddings(im->s, k ? MP_KIND_ITEMS : MP_KIND_USERS, RECORD_EMB_SOURCE, first_dim_cb, &dim,
                                      err);
    if (rc < 0) return rc;
    im->emb_dim[k] = dim;
    return MP_OK;
}

/* MP_EBADREC (err: "field `embedding`: ...") when a record's embedding does not match the dimension of the others
 * (in the store or earlier in the batch). */
static int check_emb_dim(mp_importer *im, int k, uint32_t dim, mp_error *err) {
    if (dim == 0) return MP_OK;
    if (im->emb_dim[k] == 0) {
        im->emb_dim[k] = dim;
        return MP_OK;
    }
    if (im->emb_dim[k] == dim) return MP_OK;
    return mp_error_set(err, MP_EBADREC,
                        "field `embedding`: %u values, but the %s embeddings have dimension %u (all vectors of one "
                        "kind must have the same dimension; to change it, load the new vectors with `magpie import "
                        "embeddings FILE --replace`)",
                        dim, k ? "items'" : "users'", im->emb_dim[k]);
}

int mp_importer_begin(mp_importer **out, mp_store *s, const mp_import_opts *opts, mp_error *err) {
    *out = NULL;
    mp_importer *im = calloc(1, sizeof *im);
    if (!im) return mp_error_set(err, MP_ENOMEM, "out of memory starting an import");
    im->s = s;
    if (opts) im->opts = *opts;
    im->max_errors = im->opts.max_errors ? im->opts.max_errors : 20;
    im->writing = !im->opts.dry_run;
    im->t_start = now_seconds();
    im->chunks[0].s = im->chunks[1].s = s;
    im->chunk_events = im->opts.chunk_events ? im->opts.chunk_events : CHUNK_EVENTS;
    if (im->chunk_events > UINT32_MAX / 2) im->chunk_events = UINT32_MAX / 2;
    int rc = MP_OK;
    if (im->opts.rejects_path && !im->opts.dry_run) {
        im->rejects = fopen(im->opts.rejects_path, "w");
        if (!im->rejects)
            rc = mp_error_set(err, MP_EIO, "cannot create rejects file \"%s\": %s", im->opts.rejects_path,
                              strerror(errno));
    }
    /* The write transaction is taken before the id maps are read, so the ids we hand out cannot collide with
     * another importer's. A dry run only reads. */
    if (rc == MP_OK && !im->opts.dry_run) {
        rc = mp_store_begin(s, err);
        if (rc == MP_OK) im->in_txn = 1;
    }
    if (rc == MP_OK) rc = mp_store_load_ids(s, MP_KIND_USERS, &im->ids[0], err);
    if (rc == MP_OK) rc = mp_store_load_ids(s, MP_KIND_ITEMS, &im->ids[1], err);
    if (rc != MP_OK) {
        mp_importer_abort(im);
        return rc;
    }
    for (int k = 0; k < 2; k++)
        im->bound0[k] = mp_strmap_id_bound(im->ids[k]);
    if (rc == MP_OK) rc = load_emb_dim(im, 0, err);
    if (rc == MP_OK) rc = load_emb_dim(im, 1, err);
    if (rc != MP_OK) {
        mp_importer_abort(im);
        return rc;
    }
    *out = im;
    return MP_OK;
}

/* ---- sorting and flushing a chunk (on the flush thread, or the caller's for the last one) ---- */

static int key_cmp(const pending *a, const pending *b) {
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    if (a->item != b->item) return a->item < b->item ? -1 : 1;
    if (a->type != b->type) return a->type < b->type ? -1 : 1;
    return 0;
}

/* C11 qsort has no context argument, so the comparators reach the chunk's events through this thread-local
 * pointer, set just before each qsort call on the same thread. */
static _Thread_local const pending *sort_buf;

static int perm_cmp_full(const void *pa, const void *pb) {
    uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
    const pending *a = &sort_buf[ia], *b = &sort_buf[ib];
    if (a->user != b->user) return a->user < b->user ? -1 : 1;
    int c = key_cmp(a, b);
    if (c) return c;
    return (ia > ib) - (ia < ib); /* stable: first seen wins among duplicates */
}

static int perm_cmp_in_user(const void *pa, const void *pb) {
    uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
    int c = key_cmp(&sort_buf[ia], &sort_buf[ib]);
    if (c) return c;
    return (ia > ib) - (ia < ib);
}

/* Orders c->perm[0..n) by (user, ts, item, type, arrival). A stable counting sort by user when the user id
 * range is small compared to the chunk (the usual case), then each user's run, which logs usually deliver in
 * time order already, by insertion sort (qsort for long unsorted runs). */
static int sort_chunk(chunk *c) {
    size_t n = c->n;
    uint32_t n_users = c->n_users;
    sort_buf = c->buf;
    if ((size_t)n_users > 4 * n + 4096) {
        for (size_t i = 0; i < n; i++)
            c->perm[i] = (uint32_t)i;
        qsort(c->perm, n, sizeof *c->perm, perm_cmp_full);
        return MP_OK;
    }
    if (c->n_counts < (size_t)n_users + 1) {
        free(c->counts);
        c->counts = malloc(((size_t)n_users + 1) * sizeof *c->counts);
        if (!c->counts) {
            c->n_counts = 0;
            return mp_error_set(&c->err, MP_ENOMEM, "out of memory sorting events");
        }
        c->n_counts = (size_t)n_users + 1;
    }
    uint32_t *cnt = c->counts;
    memset(cnt, 0, ((size_t)n_users + 1) * sizeof *cnt);
    for (size_t i = 0; i < n; i++)
        cnt[c->buf[i].user + 1]++;
    for (uint32_t u = 0; u < n_users; u++)
        cnt[u + 1] += cnt[u];
    for (size_t i = 0; i < n; i++)
        c->perm[cnt[c->buf[i].user]++] = (uint32_t)i;
    /* cnt[u] is now the end of user u's run. */
    size_t start = 0;
    for (uint32_t u = 0; u < n_users && start < n; u++) {
        size_t end = cnt[u];
        size_t len = end - start;
        if (len > 1) {
            uint32_t *p = c->perm + start;
            size_t inversions = 0;
            for (size_t i = 1; i < len && inversions < 64; i++)
                inversions += key_cmp(&c->buf[p[i - 1]], &c->buf[p[i]]) > 0;
            if (inversions >= 64 && len > 64) {
                qsort(p, len, sizeof *p, perm_cmp_in_user);
            } else if (inversions) {
                for (size_t i = 1; i < len; i++) { /* stable insertion sort */
                    uint32_t x = p[i];
                    size_t j = i;
                    while (j > 0 && key_cmp(&c->buf[p[j - 1]], &c->buf[x]) > 0) {
                        p[j] = p[j - 1];
                        j--;
                    }
                    p[j] = x;
                }
            }
        }
        start = end;
    }
    return MP_OK;
}

/* Writes the users / items first seen in this chunk as bare ids. */
static int write_fresh_ids(chunk *c) {
    for (size_t i = 0; i < c->n_fresh[0]; i++) {
        const fresh_id *f = &c->fresh[0][i];
        mp_user u = {.id = {f->key, f->len}};
        int rc = mp_store_put_user(c->s, f->id, &u, &c->err);
        if (rc) return rc;
    }
    for (size_t i = 0; i < c->n_fresh[1]; i++) {
        const fresh_id *f = &c->fresh[1][i];
        mp_item it;
        memset(&it, 0, sizeof it);
        it.id.ptr = f->key;
        it.id.len = f->len;
        it.available = 1;
        int rc = mp_store_put_item(c->s, f->id, &it, &c->err);
        if (rc) return rc;
    }
    return MP_OK;
}

static int flush_chunk(chunk *c) {
    int rc = write_fresh_ids(c);
    if (rc == MP_OK && c->n) rc = sort_chunk(c);
    /* Rows go to the store in groups, in key order, duplicates inside the chunk dropped here. */
    mp_event_row rows[FLUSH_GROUP];
    size_t n_rows = 0;
    const pending *prev = NULL;
    for (size_t i = 0; rc == MP_OK && i <= c->n; i++) {
        if (i == c->n || n_rows == FLUSH_GROUP) {
            uint64_t added = 0;
            if (n_rows) rc = mp_store_add_events(c->s, rows, n_rows, &added, &c->err);
            c->written += added;
            c->duplicates += n_rows - added;
            n_rows = 0;
            if (i == c->n || rc) break;
        }
        /* The permuted reads miss the cache; fetch a few rows ahead. */
        if (i + PREFETCH_AHEAD < c->n) __builtin_prefetch(&c->buf[c->perm[i + PREFETCH_AHEAD]]);
        const pending *p = &c->buf[c->perm[i]];
        if (prev && prev->user == p->user && key_cmp(prev, p) == 0) {
            c->duplicates++;
            continue;
        }
        prev = p;
        mp_event_row *row = &rows[n_rows++];
        row->user = p->user;
        row->item = p->item;
        row->type = p->type;
        row->ts = p->ts;
        row->value = p->value;
        row->has_value = p->has_value;
        row->text.ptr = c->arena + p->text_off;
        row->text.len = p->text_len;
        row->session.ptr = c->arena + p->text_off + p->text_len;
        row->session.len = p->session_len;
    }
    c->rc = rc;
    return rc;
}

static void *flush_thread(void *arg) {
    flush_chunk(arg);
    return NULL;
}

/* Hands the filling chunk to a flush thread (after the previous flush finished) and starts filling the other. */
static int hand_off(mp_importer *im, mp_error *err) {
    int rc = join_flush(im, err);
    if (rc) return rc;
    chunk *c = &im->chunks[im->filling];
    c->n_users = mp_strmap_id_bound(im->ids[0]);
    if (pthread_create(&im->flusher, NULL, flush_thread, c) == 0) {
        im->flushing = 1;
        im->filling = !im->filling;
        return MP_OK;
    }
    /* No thread: flush here. */
    double t0 = now_seconds();
    rc = flush_chunk(c);
    im->store_seconds += now_seconds() - t0;
    im->events_written += c->written;
    im->rep.duplicates += c->duplicates;
    if (rc && err) *err = c->err;
    chunk_reset(c);
    return rc;
}

/* Flushes everything buffered on the caller's thread (before direct store calls and at finish). */
static int flush_all(mp_importer *im, mp_error *err) {
    int rc = join_flush(im, err);
    if (rc || !im->writing) return rc;
    chunk *c = &im->chunks[im->filling];
    if (!c->n && !c->n_fresh[0] && !c->n_fresh[1]) return MP_OK;
    c->n_users = mp_strmap_id_bound(im->ids[0]);
    double t0 = now_seconds();
    rc = flush_chunk(c);
    im->store_seconds += now_seconds() - t0;
    im->events_written += c->written;
    im->rep.duplicates += c->duplicates;
    if (rc && err) *err = c->err;
    chunk_reset(c);
    return rc;
}

/* ---- adding records (caller's thread) ---- */

static int grow_chunk(chunk *c, size_t max, mp_error *err) {
    size_t nc = c->cap ? c->cap * 2 : 4096;
    if (nc > max) nc = max;
    pending *nb = realloc(c->buf, nc * sizeof *nb);
    if (!nb) return mp_error_set(err, MP_ENOMEM, "out of memory buffering events");
    c->buf = nb;
    uint32_t *np = realloc(c->perm, nc * sizeof *np);
    if (!np) return mp_error_set(err, MP_ENOMEM, "out of memory buffering events");
    c->perm = np;
    c->cap = nc;
    return MP_OK;
}

/* Id of an external user (k 0) or item (k 1) id. With `bare`, a new one is remembered in the filling chunk, whose
 * flush writes it as a bare row. */
static int intern(mp_importer *im, int k, mp_str ext, int bare, uint32_t *out, mp_error *err) {
    int inserted = 0;
    if (mp_strmap_intern(im->ids[k], ext.ptr, ext.len, out, &inserted) != MP_OK)
        return mp_error_set(err, MP_ENOMEM, "out of memory interning %s ids", k ? "item" : "user");
    if (!inserted || !bare || !im->writing) return MP_OK;
    chunk *c = &im->chunks[im->filling];
    if (c->n_fresh[k] == c->cap_fresh[k]) {
        size_t nc = c->cap_fresh[k] ? c->cap_fresh[k] * 2 : 1024;
        fresh_id *nf = realloc(c->fresh[k], nc * sizeof *nf);
        if (!nf) return mp_error_set(err, MP_ENOMEM, "out of memory interning %s ids", k ? "item" : "user");
        c->fresh[k] = nf;
        c->cap_fresh[k] = nc;
    }
    size_t len = 0;
    const char *key = mp_strmap_key(im->ids[k], *out, &len);
    c->fresh[k][c->n_fresh[k]++] = (fresh_id){key, (uint32_t)len, *out};
    return MP_OK;
}

int mp_importer_add_event(mp_importer *im, const mp_event *e, mp_error *err) {
    im->rep.read++;
    im->rep.accepted++;
    uint32_t user, item;
    int rc = intern(im, 0, e->user, 1, &user, err);
    if (rc == MP_OK) rc = intern(im, 1, e->item, 1, &item, err);
    if (rc || !im->writing) return rc;
    chunk *c = &im->chunks[im->filling];
    size_t extra = e->text.len + e->session.len;
    if (c->n >= im->chunk_events || (extra && c->arena_len + extra > CHUNK_TEXT_BYTES && c->n)) {
        rc = hand_off(im, err);
        if (rc) return rc;
        c = &im->chunks[im->filling];
    }
    if (c->n == c->cap && (rc = grow_chunk(c, im->chunk_events, err)) != MP_OK) return rc;
    if (extra) {
        if (c->arena_len + extra > c->arena_cap) {
            size_t nc = c->arena_cap ? c->arena_cap : 1 << 16;
            while (nc < c->arena_len + extra)
                nc *= 2;
            char *na = realloc(c->arena, nc);
            if (!na) return mp_error_set(err, MP_ENOMEM, "out of memory buffering event text");
            c->arena = na;
            c->arena_cap = nc;
        }
        if (e->text.len) memcpy(c->arena + c->arena_len, e->text.ptr, e->text.len);
        if (e->session.len) memcpy(c->arena + c->arena_len + e->text.len, e->session.ptr, e->session.len);
    }
    pending *p = &c->buf[c->n++];
    p->user = user;
    p->item = item;
    p->ts = e->ts;
    p->value = e->has_value ? e->value : 0.0;
    p->has_value = e->has_value ? 1 : 0;
    p->type = (uint8_t)e->type;
    p->text_off = (uint32_t)c->arena_len;
    p->text_len = (uint32_t)e->text.len;
    p->session_len = (uint32_t)e->session.len;
    c->arena_len += extra;
    return MP_OK;
}

int mp_importer_add_item(mp_importer *im, const mp_item *it, mp_error *err) {
    int rc = check_emb_dim(im, 1, it->embedding_dim, err);
    if (rc) return rc;
    im->rep.read++;
    im->rep.accepted++;
    uint32_t id;
    rc = intern(im, 1, it->id, 0, &id, err);
    if (rc || !im->writing) return rc;
    /* The store is used by one thread at a time. The filling chunk need not be flushed first: its bare rows
     * never overwrite, so this full row wins whichever is written first. */
    rc = join_flush(im, err);
    if (rc) return rc;
    double t0 = now_seconds();
    rc = mp_store_put_item(im->s, id, it, err);
    if (rc == MP_OK && it->embedding_dim)
        rc = mp_store_put_embedding(im->s, MP_KIND_ITEMS, id, RECORD_EMB_SOURCE, it->embedding, it->embedding_dim, 0,
                                    err);
    im->store_seconds += now_seconds() - t0;
    if (rc == MP_OK) im->rows_written++;
    return rc;
}

int mp_importer_add_user(mp_importer *im, const mp_user *u, mp_error *err) {
    int rc = check_emb_dim(im, 0, u->embedding_dim, err);
    if (rc) return rc;
    im->rep.read++;
    im->rep.accepted++;
    uint32_t id;
    rc = intern(im, 0, u->id, 0, &id, err);
    if (rc || !im->writing) return rc;
    rc = join_flush(im, err);
    if (rc) return rc;
    double t0 = now_seconds();
    rc = mp_store_put_user(im->s, id, u, err);
    if (rc == MP_OK && u->embedding_dim)
        rc = mp_store_put_embedding(im->s, MP_KIND_USERS, id, RECORD_EMB_SOURCE, u->embedding, u->embedding_dim, 0,
                                    err);
    im->store_seconds += now_seconds() - t0;
    if (rc == MP_OK) im->rows_written++;
    return rc;
}

/* ---- rejects ---- */

/* Writes s[0..len) as a JSON string literal (mp_json_escape: invalid UTF-8 bytes become U+FFFD, so the rejects file
 * is itself valid JSON; file and line point at the original). */
static void json_write_str(FILE *f, const char *s, size_t len) {
    if (mp_json_write_str(f, s, len) == MP_ENOMEM) fputs("\"\"", f);
}

int mp_importer_reject(mp_importer *im, const char *file, uint64_t line, const char *message, mp_str raw,
                       mp_error *err) {
    im->rep.read++;
    im->rep.rejected++;
    if (!message) message = "bad record";
    if (im->rep.rejected == 1) snprintf(im->first_error, sizeof im->first_error, "%s", message);
    if (im->rep.n_errors < im->max_errors) {
        if (!im->rep.errors) {
            im->rep.errors = calloc(im->max_errors, sizeof *im->rep.errors);
            if (!im->rep.errors) return mp_error_set(err, MP_ENOMEM, "out of memory keeping error messages");
        }
        char *m = strdup(message);
        if (!m) return mp_error_set(err, MP_ENOMEM, "out of memory keeping error messages");
        im->rep.errors[im->rep.n_errors++] = m;
    }
    if (!im->opts.rejects_path) {
        /* All-or-nothing: this batch will be rolled back, so stop doing store work; keep validating to report
         * every bad record. */
        im->writing = 0;
        chunk_reset(&im->chunks[im->filling]);
        return MP_OK;
    }
    if (!im->rejects) return MP_OK; /* dry run */
    /* The "error" field drops the "file:line: " prefix readers put on messages; file and line have fields. */
    const char *reason = message;
    if (file) {
        char prefix[64];
        size_t fl = strlen(file);
        int pl = snprintf(prefix, sizeof prefix, ":%llu: ", (unsigned long long)line);
        if (!strncmp(message, file, fl) && !strncmp(message + fl, prefix, (size_t)pl)) reason = message + fl + pl;
    }
    FILE *f = im->rejects;
    fputs("{\"file\":", f);
    json_write_str(f, file ? file : "", file ? strlen(file) : 0);
    fprintf(f, ",\"line\":%llu,\"error\":", (unsigned long long)line);
    json_write_str(f, reason, strlen(reason));
    fputs(",\"record\":", f);
    json_write_str(f, raw.ptr ? raw.ptr : "", raw.ptr ? raw.len : 0);
    fputs("}\n", f);
    if (ferror(f))
        return mp_error_set(err, MP_EIO, "writing rejects file \"%s\" failed: %s", im->opts.rejects_path,
                            strerror(errno));
    return MP_OK;
}

/* ---- finish ---- */

int mp_importer_finish(mp_importer *im, mp_import_report *rep, mp_error *err) {
    int rc = flush_all(im, err); /* also writes the new users / items */
    int bad_batch = im->rep.rejected > 0 && (!im->opts.rejects_path || im->opts.dry_run);
    if (rc == MP_OK && im->rejects) {
        int closed = fclose(im->rejects);
        im->rejects = NULL;
        if (closed != 0)
            rc = mp_error_set(err, MP_EIO, "writing rejects file \"%s\" failed: %s", im->opts.rejects_path,
                              strerror(errno));
    }
    if (rc == MP_OK && im->in_txn && !bad_batch) {
        double t0 = now_seconds();
        rc = mp_store_commit(im->s, err);
        im->store_seconds += now_seconds() - t0;
        if (rc == MP_OK) {
            im->in_txn = 0;
            im->rep.committed = 1;
        }
    }
    if (im->in_txn) {
        mp_store_rollback(im->s, NULL);
        im->in_txn = 0;
    }
    for (int k = 0; k < 2; k++) {
        uint32_t n = mp_strmap_id_bound(im->ids[k]) - im->bound0[k];
        if (k == 0)
            im->rep.new_users = n;
        else
            im->rep.new_items = n;
    }
    im->rep.written = im->rep.committed ? im->events_written + im->rows_written : 0;
    im->rep.total_seconds = now_seconds() - im->t_start;
    im->rep.parse_seconds = im->rep.total_seconds - im->store_seconds;
    if (rc == MP_OK && bad_batch) {
        rc = mp_error_set(err, MP_EBADREC, "%s (%llu of %llu records rejected; nothing was written)", im->first_error,
                          (unsigned long long)im->rep.rejected, (unsigned long long)im->rep.read);
    }
    *rep = im->rep;
    memset(&im->rep, 0, sizeof im->rep); /* the messages now belong to *rep */
    importer_free(im);
    return rc;
}

/* ---- files ---- */

#define PROGRESS_EVERY 65536 /* records between progress reports */

int mp_import_files(mp_store *s, mp_record_kind kind, const char *const *paths, size_t n_paths,
                    const mp_import_opts *opts, mp_import_report *rep, mp_error *err) {
    memset(rep, 0, sizeof *rep);
    if (n_paths == 0) return mp_error_set(err, MP_EINVAL, "import: no input files given");
    mp_format fmt = opts ? opts->format : MP_FORMAT_AUTO;
    const mp_progress *progress = opts ? opts->progress : NULL;
    /* The total for progress is the sum of the file sizes; missing files fail below with a clear message. */
    uint64_t total = 0, done_before = 0;
    for (size_t i = 0; i < n_paths; i++) {
        struct stat sb;
        if (stat(paths[i], &sb) == 0) total += (uint64_t)sb.st_size;
    }
    mp_importer *im;
    int rc = mp_importer_begin(&im, s, opts, err);
    if (rc) return rc;
    for (size_t i = 0; i < n_paths && rc == MP_OK; i++) {
        mp_reader *r;
        rc = mp_reader_open(&r, paths[i], kind, fmt, err);
        if (rc) break;
        mp_record rec;
        mp_error rerr;
        uint64_t n = 0;
        for (;;) {
            int got = mp_reader_next(r, &rec, &rerr);
            if (got == 0) break;
            if (got == 1) {
                if (kind == MP_KIND_EVENTS)
                    rc = mp_importer_add_event(im, &rec.event, err);
                else if (kind == MP_KIND_ITEMS)
                    rc = mp_importer_add_item(im, &rec.item, &rerr);
                else
                    rc = mp_importer_add_user(im, &rec.user, &rerr);
                if (rc == MP_EBADREC) { /* an embedding of another dimension: a bad record, with its line */
                    char msg[MP_ERROR_MSG_MAX + 64];
                    snprintf(msg, sizeof msg, "%s:%llu: %s", paths[i], (unsigned long long)mp_reader_lineno(r),
                             rerr.msg);
                    rc = mp_importer_reject(im, paths[i], mp_reader_lineno(r), msg, mp_reader_line(r), err);
                } else if (rc != MP_OK) {
                    *err = rerr;
                }
            } else if (got == MP_EBADREC) {
                rc = mp_importer_reject(im, paths[i], mp_reader_lineno(r), rerr.msg, mp_reader_line(r), err);
            } else {
                *err = rerr;
                rc = got;
            }
            if (rc) break;
            if (++n % PROGRESS_EVERY == 0)
                mp_progress_report_bytes(progress, "import", done_before + mp_reader_offset(r), total);
        }
        done_before += mp_reader_size(r);
        mp_reader_close(r);
    }
    if (rc != MP_OK) {
        mp_importer_abort(im);
        return rc;
    }
    mp_progress_report_bytes(progress, "import", total, total);
    return mp_importer_finish(im, rep, err);
}
