/* src/live/live.c: opening and closing a live recommender, the model holder (load, HNSW index, reload with
 * catch-up, atomic swap), model info, statistics and the scratch pools. See live_internal.h for the locks. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "live/live_internal.h"
#include "magpie/json.h"

#define META_MAX_BYTES (1u << 20) /* a MODEL.meta.json larger than this is not served */
#define MF_HEADER_BYTES 72        /* model file header (modelfile.h); the payload checksum is at offset 56 */

void mp_live_opts_default(mp_live_opts *o) {
    memset(o, 0, sizeof *o);
    o->ann = -1;
    o->ann_min_items = 50000;
    o->ann_M = 16;
    o->ann_ef_construction = 200;
    o->ann_ef_search = 64;
    o->pop_half_life_days = 7;
    o->embed_missing = 1;
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- scratch pools ---- */

live_scratch *live_scratch_get(mp_live *l) {
    pthread_mutex_lock(&l->pool_mu);
    live_scratch *sc = l->pool;
    if (sc) l->pool = sc->next;
    pthread_mutex_unlock(&l->pool_mu);
    if (!sc) sc = calloc(1, sizeof *sc);
    return sc;
}

void live_scratch_put(mp_live *l, live_scratch *sc) {
    if (!sc) return;
    pthread_mutex_lock(&l->pool_mu);
    sc->next = l->pool;
    l->pool = sc;
    pthread_mutex_unlock(&l->pool_mu);
}

static void scratch_free(live_scratch *sc) {
    free(sc->scores);
    free(sc->ids);
    free(sc->cand);
    free(sc->excl);
    free(sc->hist);
    free(sc->q);
    free(sc->top);
    free(sc->cursor);
    free(sc->key);
    free(sc->mask);
    free(sc->hits);
    free(sc->tmp.key);
    free(sc->tmp.cat_match);
    free(sc->tmp.cats);
    free(sc->tmp.mask);
    free(sc->tmp.items);
    free(sc);
}

typedef struct file_id {
    int64_t mtime_ns;
    off_t size;
    ino_t ino;
} file_id;

static int file_stat(const char *path, file_id *id, mp_error *err) {
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return mp_error_set(err, MP_ENOTFOUND, "model file \"%s\" does not exist (train one with magpie train)",
                                path);
        return mp_error_set(err, MP_EIO, "model file \"%s\": %s", path, strerror(errno));
    }
    id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    id->size = st.st_size;
    id->ino = st.st_ino;
    return MP_OK;
}

static int same_file(const file_id *a, const file_id *b) {
    return a->mtime_ns == b->mtime_ns && a->size == b->size && a->ino == b->ino;
}

/* The payload checksum recorded in a model file's header (0 if unreadable; the loader reports why). */
static uint64_t header_checksum(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    unsigned char h[MF_HEADER_BYTES];
    ssize_t got = read(fd, h, sizeof h);
    close(fd);
    if (got != (ssize_t)sizeof h) return 0;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | h[56 + i];
    return v;
}

/* The text of PATH.meta.json, or NULL when absent, unreadable or too large. */
static char *read_meta(const char *path) {
    size_t n = strlen(path);
    char *mp = malloc(n + 11);
    if (!mp) return NULL;
    memcpy(mp, path, n);
    memcpy(mp + n, ".meta.json", 11);
    FILE *f = fopen(mp, "rb");
    free(mp);
    if (!f) return NULL;
    char *buf = malloc(META_MAX_BYTES + 1);
    size_t got = buf ? fread(buf, 1, META_MAX_BYTES + 1, f) : 0;
    int bad = ferror(f) || got > META_MAX_BYTES || got == 0;
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[got] = 0;
    char *shrunk = realloc(buf, got + 1);
    return shrunk ? shrunk : buf;
}

/* The index of a model is cached beside its file as MODEL.hnsw, so a restart or a reload of the same file does not
 * rebuild it (minutes for a million items). A cached index is used only when it indexes exactly the model's item
 * vectors (same count, width and bytes) with the wanted metric and parameters; anything else is rebuilt. */
static char *index_cache_path(const char *model_path) {
    size_t n = strlen(model_path);
    char *p = malloc(n + 6);
    if (p) {
        memcpy(p, model_path, n);
        memcpy(p + n, ".hnsw", 6);
    }
    return p;
}

static mp_hnsw *index_cache_load(const char *model_path, const float *vecs, uint32_t n, uint32_t dim,
                                 const mp_hnsw_params *want) {
    char *path = index_cache_path(model_path);
    mp_hnsw *h = NULL;
    if (!path || mp_hnsw_load(&h, path, NULL) != MP_OK) {
        free(path);
        return NULL;
    }
    free(path);
    mp_hnsw_params got;
    mp_hnsw_params_of(h, &got);
    if (mp_hnsw_size(h) != n || mp_hnsw_dim(h) != dim || mp_hnsw_metric(h) != MP_ANN_IP || got.M != want->M ||
        got.ef_construction != want->ef_construction ||
        memcmp(mp_hnsw_vectors(h), vecs, (size_t)n * dim * sizeof *vecs) != 0) {
        mp_hnsw_destroy(h);
        return NULL;
    }
    return h;
}

/* Best effort: a model directory that cannot be written to only costs a rebuild at the next start. */
static void index_cache_save(const char *model_path, const mp_hnsw *h) {
    char *path = index_cache_path(model_path);
    if (path) mp_hnsw_save(h, path, NULL);
    free(path);
}

/* The training snapshot time recorded by `magpie train` in the model's metadata ("snapshot_at", epoch seconds, and
 * "train_seconds" from the snapshot to the metadata write), in ns; 0 when absent or implausible for a file written
 * at mtime_ns (a stale metadata file from an earlier training would re-apply events the model already has). */
static int64_t meta_snapshot_ns(const char *meta, int64_t mtime_ns) {
    if (!meta) return 0;
    mp_json_cur c;
    mp_json_init(&c, meta, strlen(meta));
    if (mp_json_peek(&c) != MP_JSON_OBJECT || mp_json_object_begin(&c) != MP_OK) return 0;
    size_t n = strlen(meta);
    char *scratch_mem = malloc(n + 1), *scratch = scratch_mem;
    if (!scratch_mem) return 0;
    double snap = 0, took = -1;
    for (;;) {
        mp_str key;
        int done;
        if (mp_json_object_next(&c, &scratch, &key, &done) != MP_OK || done) break;
        double *dst = NULL;
        if (key.len == 11 && !memcmp(key.ptr, "snapshot_at", 11)) dst = &snap;
        else if (key.len == 13 && !memcmp(key.ptr, "train_seconds", 13)) dst = &took;
        mp_str raw;
        int is_int;
        if (dst && mp_json_peek(&c) == MP_JSON_NUMBER) {
            if (mp_json_number(&c, &raw, &is_int, dst) != MP_OK) break;
        } else if (mp_json_skip(&c, NULL) != MP_OK) {
            break;
        }
    }
    free(scratch_mem);
    int64_t snap_ns = (int64_t)(snap * 1e9);
    /* written by the same training: the snapshot precedes the file by about the training time */
    if (snap <= 0 || took < 0 || snap_ns > mtime_ns || (double)(mtime_ns - snap_ns) > (took + 60.0) * 1e9) return 0;
    return snap_ns;
}

/* Loads `path` into a new holder (refs 1, version 0): the model, its index when wanted, and its info. The file is
 * stat'ed before and after loading and loaded again if it changed meanwhile, so info describes what was loaded. */
static int holder_load(mp_live *l, const char *path, live_holder **out, mp_error *err) {
    *out = NULL;
    live_holder *h = live_holder_new();
    if (!h) return mp_error_set(err, MP_ENOMEM, "out of memory loading model \"%s\"", path);
    file_id a, b;
    uint64_t checksum = 0;
    int rc;
    for (int attempt = 0;; attempt++) {
        if ((rc = file_stat(path, &a, err))) goto fail;
        checksum = header_checksum(path);
        if ((rc = mp_model_load(&h->model, path, err))) goto fail;
        if ((rc = file_stat(path, &b, err))) goto fail;
        if (same_file(&a, &b) && header_checksum(path) == checksum) break;
        if (attempt == 2) { /* the file keeps changing: serve what was read, described by the last stat */
            a = b;
            checksum = header_checksum(path);
            break;
        }
        mp_model_destroy(h->model);
        h->model = NULL;
    }
    uint32_t model_items = mp_model_n_items(h->model);
    pthread_rwlock_rdlock(&l->cat);
    uint32_t catalog_items = l->n_items;
    pthread_rwlock_unlock(&l->cat);
    if (model_items > catalog_items) {
        rc = mp_error_set(err, MP_ECORRUPT,
                          "model file \"%s\" covers %u items but the store \"%s\" has only %u: it was trained on "
                          "another store",
                          path, model_items, l->db, catalog_items);
        goto fail;
    }
    const float *vecs;
    uint32_t n_vec = 0, dim = 0;
    h->has_vectors = mp_model_item_vectors(h->model, &vecs, &n_vec, &dim, NULL) == MP_OK && dim > 0;
    h->dim = dim;
    int want_index = h->has_vectors && n_vec > 0 && l->opts.ann != 0 &&
                     (l->opts.ann == 1 || n_vec >= l->opts.ann_min_items);
    if (want_index) {
        mp_hnsw_params p;
        mp_hnsw_params_default(&p);
        p.M = l->opts.ann_M;
        p.ef_construction = l->opts.ann_ef_construction;
        p.n_threads = l->opts.n_threads;
        int64_t t0 = mono_ns();
        h->index = index_cache_load(path, vecs, n_vec, dim, &p);
        if (!h->index) {
            if ((rc = mp_hnsw_build(&h->index, vecs, n_vec, dim, MP_ANN_IP, &p, l->opts.progress, err))) {
                mp_error_prefix(err, "model file \"%s\": building the index", path);
                goto fail;
            }
            index_cache_save(path, h->index);
        }
        h->info.index_seconds = (double)(mono_ns() - t0) / 1e9;
        h->info.has_index = 1;
    }
    const char *name = mp_model_ops_of(h->model)->name;
    snprintf(h->info.name, sizeof h->info.name, "%s", name);
    snprintf(h->info.path, sizeof h->info.path, "%s", path);
    h->info.file_mtime = a.mtime_ns / 1000000000;
    h->info.checksum = checksum;
    h->info.loaded_at = (int64_t)time(NULL);
    h->info.n_items = model_items;
    h->n_items_trained = model_items;
    h->info.meta_json = read_meta(path);
    h->mtime_ns = a.mtime_ns;
    h->since_ns = meta_snapshot_ns(h->info.meta_json, a.mtime_ns);
    if (!h->since_ns) h->since_ns = a.mtime_ns;
    h->size = a.size;
    h->ino = a.ino;
    *out = h;
    return MP_OK;
fail:
    live_holder_free(h);
    return rc;
}

/* The holder of the built-in live popularity (no model file). */
static live_holder *holder_builtin(void) {
    live_holder *h = live_holder_new();
    if (!h) return NULL;
    snprintf(h->info.name, sizeof h->info.name, "pop");
    h->info.loaded_at = (int64_t)time(NULL);
    return h;
}

/* Applies the catch-up events to a holder's model (not yet shared, so no lock). Models without update() keep
 * what they were trained on. */
static int holder_catch_up(live_holder *h, const mp_interaction *ev, size_t n, mp_error *err) {
    if (!h->model || n == 0) return MP_OK;
    mp_error e;
    int rc = mp_model_update(h->model, ev, n, &e);
    if (rc == MP_EUNSUPPORTED) return MP_OK;
    if (rc) return mp_error_set(err, rc, "model \"%s\": applying %zu events accepted since it was written: %s",
                                h->info.path, n, e.msg);
    return MP_OK;
}

/* Copies the live log entries from sequence number `from` committed at or after `since_ns` into *out (malloc'ed).
 * Caller holds write_mu. */
static int log_slice(mp_live *l, uint64_t from, int64_t since_ns, mp_interaction **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    size_t start = from > l->log_first_seq ? (size_t)(from - l->log_first_seq) : 0;
    if (start >= l->n_log) return MP_OK;
    mp_interaction *ev = malloc((l->n_log - start) * sizeof *ev);
    if (!ev) return MP_ENOMEM;
    size_t m = 0;
    for (size_t k = start; k < l->n_log; k++)
        if (l->log[k].at_ns >= since_ns && l->log[k].e.user != MP_NO_USER) ev[m++] = l->log[k].e;
    *out = ev;
    *n_out = m;
    return MP_OK;
}

int mp_live_reload(mp_live *l, const char *path, mp_error *err) {
    pthread_mutex_lock(&l->reload_mu);
    const char *p = path && *path ? path : l->model_path;
    int rc;
    if (!p) {
        rc = mp_error_set(err, MP_EINVAL,
                          "live: no model file to reload (serving the built-in popularity); give the path of a model "
                          "written by magpie train");
        goto out;
    }
    live_holder *h;
    if ((rc = holder_load(l, p, &h, err))) goto out;
    /* Catch-up in two passes: the bulk without blocking writers, then the tail and the swap under write_mu, so
     * no event committed meanwhile is missed or applied twice. */
    mp_interaction *ev;
    size_t n_ev;
    pthread_mutex_lock(&l->write_mu);
    uint64_t mark = l->log_first_seq + l->n_log;
    rc = log_slice(l, 0, h->since_ns, &ev, &n_ev);
    pthread_mutex_unlock(&l->write_mu);
    if (rc) {
        rc = mp_error_set(err, MP_ENOMEM, "live: out of memory reloading \"%s\"", p);
        live_holder_free(h);
        goto out;
    }
    rc = holder_catch_up(h, ev, n_ev, err);
    free(ev);
    if (rc) {
        live_holder_free(h);
        goto out;
    }
    pthread_mutex_lock(&l->write_mu);
    rc = log_slice(l, mark, h->since_ns, &ev, &n_ev);
    if (rc) rc = mp_error_set(err, MP_ENOMEM, "live: out of memory reloading \"%s\"", p);
    else rc = holder_catch_up(h, ev, n_ev, err);
    free(ev);
    for (size_t k = 0; rc == MP_OK && k < l->n_forgot; k++) /* a file trained before a user was forgotten */
        rc = mp_model_forget_user(h->model, l->forgot[k], NULL, 0, err);
    if (rc == MP_OK) live_text_model_catch_up(l, h->model, h->n_items_trained); /* items added since training */
    if (rc) {
        pthread_mutex_unlock(&l->write_mu);
        live_holder_free(h);
        goto out;
    }
    h->info.version = l->next_version++;
    pthread_mutex_lock(&l->model_mu);
    live_holder *old = l->cur;
    l->cur = h;
    pthread_mutex_unlock(&l->model_mu);
    /* entries older than the file served now are no longer needed (the log is in commit order) */
    size_t drop = 0;
    while (drop < l->n_log && l->log[drop].at_ns < h->since_ns) drop++;
    if (drop) {
        memmove(l->log, l->log + drop, (l->n_log - drop) * sizeof *l->log);
        l->n_log -= drop;
        l->log_first_seq += drop;
    }
    pthread_mutex_unlock(&l->write_mu);
    live_holder_release(l, old); /* freed here, or by the last request still using it */
    if (path && *path && path != l->model_path) {
        char *np = strdup(path);
        if (np) {
            free(l->model_path);
            l->model_path = np;
        }
    }
out:
    pthread_mutex_unlock(&l->reload_mu);
    return rc;
}

int mp_live_model_changed(mp_live *l) {
    live_holder *h = live_holder_acquire(l);
    int changed = 0;
    if (h->model) {
        file_id now;
        changed = file_stat(h->info.path, &now, NULL) == MP_OK &&
                  (now.mtime_ns != h->mtime_ns || now.size != h->size || now.ino != h->ino);
    }
    live_holder_release(l, h);
    return changed;
}

void mp_live_model_info_free(mp_live_model_info *mi) {
    if (!mi) return;
    free(mi->meta_json);
    mi->meta_json = NULL;
}

int mp_live_model_info_get(mp_live *l, mp_live_model_info *out, mp_error *err) {
    live_holder *h = live_holder_acquire(l);
    *out = h->info;
    out->meta_json = NULL;
    if (h->info.meta_json && !(out->meta_json = strdup(h->info.meta_json))) {
        live_holder_release(l, h);
        return mp_error_set(err, MP_ENOMEM, "out of memory copying the model info");
    }
    if (!h->model) {
        pthread_rwlock_rdlock(&l->cat);
        out->n_items = l->n_items;
        pthread_rwlock_unlock(&l->cat);
    }
    live_holder_release(l, h);
    return MP_OK;
}

/* ---- statistics ---- */

void mp_live_stats_get(mp_live *l, mp_live_stats *out) {
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&l->cat);
    out->n_users = l->n_users_live;
    out->n_items = l->n_items_live;
    out->n_available_items = l->n_available;
    out->n_events = l->n_events;
    out->n_categories = l->n_cats > 0 ? l->n_cats - 1 : 0;
    memcpy(out->per_type, l->per_type, sizeof out->per_type);
    out->events_ingested = l->events_ingested;
    out->events_duplicates = l->events_duplicates;
    out->users_forgotten = l->users_forgotten;
    out->ts_min = l->ts_min;
    out->ts_max = l->ts_max;
    pthread_rwlock_unlock(&l->cat);
}

/* ---- open / close ---- */

/* Fills the catalog, histories, statistics and popularity from the store. */
static int load_catalog(mp_live *l, mp_error *err) {
    mp_dataset *ds = NULL;
    int rc = mp_dataset_load(&ds, l->store, l->opts.progress, err);
    if (rc) return rc;
    if ((rc = mp_store_load_ids(l->store, MP_KIND_USERS, &l->users, err)) ||
        (rc = mp_store_load_ids(l->store, MP_KIND_ITEMS, &l->items, err)))
        goto out;
    uint32_t nu = ds->n_users, ni = ds->n_items;
    if (mp_strmap_id_bound(l->users) > nu) nu = mp_strmap_id_bound(l->users);
    if (mp_strmap_id_bound(l->items) > ni) ni = mp_strmap_id_bound(l->items);
    l->users_cap = nu > 1024 ? nu : 1024;
    l->hist = calloc(l->users_cap, sizeof *l->hist);
    l->user_state = calloc(l->users_cap, 1);
    if (mp_strmap_create(&l->cats, ds->n_categories) || !l->hist || !l->user_state ||
        live_cats_reserve(l, ds->n_categories) || live_items_reserve(l, ni))
        goto oom;
    l->n_users = nu;
    l->n_items = ni;
    /* users and their histories (pointing into the loaded event block, which the instance takes over) */
    l->base = ds->events;
    ds->events = NULL;
    for (uint32_t u = 0; u < nu; u++) {
        size_t klen;
        const char *key = mp_strmap_key(l->users, u, &klen);
        l->user_state[u] = !key ? LIVE_USER_NONE : mp_store_is_tombstone(key, klen) ? LIVE_USER_FORGOTTEN
                                                                                    : LIVE_USER_LIVE;
        l->n_users_live += l->user_state[u] == LIVE_USER_LIVE;
        if (u < ds->n_users) {
            l->hist[u].ev = l->base + ds->user_ptr[u];
            l->hist[u].n = (uint32_t)(ds->user_ptr[u + 1] - ds->user_ptr[u]);
        }
    }
    /* items and categories */
    for (uint32_t c = 0; c < ds->n_categories; c++) {
        const char *name = ds->category_names[c] ? ds->category_names[c] : "";
        if (mp_strmap_put(l->cats, name, strlen(name), c) != MP_OK) goto oom;
    }
    l->n_cats = ds->n_categories;
    for (uint32_t i = 0; i < ni; i++) {
        int known = mp_strmap_key(l->items, i, NULL) != NULL; /* items without an external id cannot be named */
        if (i < ds->n_items) {
            l->title[i] = ds->item_title[i];
            ds->item_title[i] = NULL;
            l->item_cat[i] = ds->item_category[i] < l->n_cats ? ds->item_category[i] : 0;
            if (ds->item_price) l->price[i] = ds->item_price[i];
            l->avail[i] = (uint8_t)(known && ds->item_available[i]);
        } else {
            l->avail[i] = (uint8_t)known;
        }
        l->n_items_live += (uint64_t)known;
        l->n_available += l->avail[i];
    }
    /* statistics */
    l->n_events = ds->n_events;
    for (size_t k = 0; k < ds->n_events; k++)
        if (l->base[k].type < MP_EV_NTYPES) l->per_type[l->base[k].type]++;
    l->ts_min = ds->ts_min;
    l->ts_max = ds->ts_max;
    if (live_pop_init(l)) goto oom;
    goto out;
oom:
    rc = mp_error_set(err, MP_ENOMEM, "live: out of memory loading the catalog of store \"%s\"", l->db);
out:
    mp_dataset_destroy(ds);
    return rc;
}

int mp_live_open(mp_live **out, const mp_live_opts *opts, mp_error *err) {
    if (!out) return mp_error_set(err, MP_EINVAL, "mp_live_open: out is NULL");
    *out = NULL;
    if (!opts || !opts->db || !*opts->db)
        return mp_error_set(err, MP_EINVAL, "live: no store given (set opts.db to the store path)");
    mp_live *l = calloc(1, sizeof *l);
    if (!l) return mp_error_set(err, MP_ENOMEM, "live: out of memory");
    l->opts = *opts;
    l->db = strdup(opts->db);
    l->model_path = opts->model_path && *opts->model_path ? strdup(opts->model_path) : NULL;
    l->opts.db = l->db;
    l->opts.model_path = l->model_path;
    if (l->opts.ann_M < 2) l->opts.ann_M = 16;
    if (l->opts.ann_ef_construction == 0) l->opts.ann_ef_construction = 200;
    if (l->opts.ann_ef_search == 0) l->opts.ann_ef_search = 64;
    pthread_mutex_init(&l->reload_mu, NULL);
    pthread_mutex_init(&l->write_mu, NULL);
    pthread_mutex_init(&l->model_mu, NULL);
    pthread_mutex_init(&l->filter_mu, NULL);
    pthread_mutex_init(&l->pool_mu, NULL);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&l->cat, &ra);
    pthread_rwlockattr_destroy(&ra);
    int rc;
    if (!l->db || (opts->model_path && *opts->model_path && !l->model_path)) {
        rc = mp_error_set(err, MP_ENOMEM, "live: out of memory");
        goto fail;
    }
    if ((rc = mp_store_open(&l->store, l->db, MP_STORE_READWRITE, err))) goto fail;
    if ((rc = load_catalog(l, err))) goto fail;
    if ((rc = live_text_open(l, err))) goto fail;
    live_holder *h = NULL;
    if (l->model_path) {
        if ((rc = holder_load(l, l->model_path, &h, err))) goto fail;
        live_text_model_catch_up(l, h->model, h->n_items_trained);
    } else if (!(h = holder_builtin())) {
        rc = mp_error_set(err, MP_ENOMEM, "live: out of memory");
        goto fail;
    }
    h->info.version = 1;
    l->next_version = 2;
    l->cur = h;
    live_text_start(l);
    *out = l;
    return MP_OK;
fail:
    mp_live_close(l);
    return rc;
}

void mp_live_close(mp_live *l) {
    if (!l) return;
    live_text_close(l); /* stops the embedder first: it uses everything below */
    if (l->cur) live_holder_release(l, l->cur);
    mp_store_close(l->store);
    if (l->hist)
        for (uint32_t u = 0; u < l->users_cap; u++)
            if (l->hist[u].cap) free(l->hist[u].ev);
    free(l->hist);
    free(l->user_state);
    free(l->base);
    if (l->title)
        for (uint32_t i = 0; i < l->items_cap; i++) free(l->title[i]);
    free(l->title);
    free(l->item_cat);
    free(l->avail);
    free(l->pop);
    free(l->price);
    live_pop_free(l);
    live_filters_free(l);
    mp_strmap_destroy(l->users);
    mp_strmap_destroy(l->items);
    mp_strmap_destroy(l->cats);
    free(l->log);
    free(l->forgot);
    while (l->pool) {
        live_scratch *n = l->pool->next;
        scratch_free(l->pool);
        l->pool = n;
    }
    pthread_rwlock_destroy(&l->cat);
    pthread_mutex_destroy(&l->reload_mu);
    pthread_mutex_destroy(&l->write_mu);
    pthread_mutex_destroy(&l->model_mu);
    pthread_mutex_destroy(&l->filter_mu);
    pthread_mutex_destroy(&l->pool_mu);
    free(l->db);
    free(l->model_path);
    free(l);
}
