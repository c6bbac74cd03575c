/* src/live/text.c: the catalog's text in a live recommender: descriptions and brands, the BM25 search index (one
 * document per item: title twice, so a title match outweighs the same words in a long description, then brand,
 * category and description), and the item vectors of the configured encoder.
 *
 * Item vectors: the store caches them per encoder name with a hash of the text they were computed from
 * (mp_encoder_item_text, hashed with mp_encoder_text_hash). At open the cached vectors whose hash matches the item's current
 * text are loaded; the others (and items never embedded) are embedded by a background thread, 32 at a time, each
 * batch cached in the store (under write_mu) and then published in memory (cat write side). Items written through
 * the instance are embedded at once, before the write returns, so a new item is found by semantic search and
 * reaches content-aware models (mp_model_set_item) immediately. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live/live_internal.h"
#include "magpie/json.h"

#define EMBED_BATCH 32

static void enqueue(mp_live *l, const uint32_t *ids, size_t n, int tell);

static int grow_zero(void **p, size_t old, size_t n, size_t elem) {
    void *q = realloc(*p, (n ? n : 1) * elem);
    if (!q) return MP_ENOMEM;
    memset((char *)q + old * elem, 0, (n - old) * elem);
    *p = q;
    return MP_OK;
}

int live_text_reserve(mp_live *l, size_t old, size_t cap) {
    if (grow_zero((void **)&l->desc, old, cap, sizeof *l->desc) ||
        grow_zero((void **)&l->brand, old, cap, sizeof *l->brand) ||
        grow_zero((void **)&l->catp, old, cap, sizeof *l->catp) ||
        grow_zero((void **)&l->details, old, cap, sizeof *l->details) ||
        grow_zero((void **)&l->has_emb, old, cap, sizeof *l->has_emb))
        return MP_ENOMEM;
    if (l->emb_dim && grow_zero((void **)&l->emb, old * l->emb_dim, cap * l->emb_dim, sizeof *l->emb))
        return MP_ENOMEM;
    return MP_OK;
}

/* The search document of item id (malloc'ed; NULL when it has no text or out of memory). */
static char *item_doc(const mp_live *l, uint32_t id) {
    const char *parts[6] = {l->title[id], l->title[id], l->brand[id], l->catp[id], l->desc[id], l->details[id]};
    size_t len = 0;
    for (int k = 0; k < 6; k++)
        if (parts[k]) len += strlen(parts[k]) + 3;
    if (len == 0) return NULL;
    char *doc = malloc(len + 1), *p = doc;
    if (!doc) return NULL;
    for (int k = 0; k < 6; k++) {
        if (!parts[k]) continue;
        size_t n = strlen(parts[k]);
        if (p != doc) {
            memcpy(p, " . ", 3);
            p += 3;
        }
        memcpy(p, parts[k], n);
        p += n;
    }
    *p = 0;
    return doc;
}

/* The text the encoder embeds for item id (malloc'ed, "" when none; NULL: out of memory). */
static char *item_embed_text(const mp_live *l, uint32_t id) {
    return mp_encoder_item_text(l->title[id], l->desc[id], l->catp[id], l->brand[id]);
}

static int flatten(mp_json_cur *c, char **scratch, char **out, size_t *len, size_t *cap, int depth);

/* The string and number values of an attributes JSON object as one text (*out NULL when none or not JSON).
 * MP_OK or MP_ENOMEM. */
static int attrs_text(mp_str attrs, char **out) {
    *out = NULL;
    if (attrs.len == 0) return MP_OK;
    char *scratch_mem = malloc(attrs.len + 1), *scratch = scratch_mem, *text = NULL;
    size_t len = 0, cap = 0;
    if (!scratch_mem) return MP_ENOMEM;
    mp_json_cur c;
    mp_json_init(&c, attrs.ptr, attrs.len);
    int rc = flatten(&c, &scratch, &text, &len, &cap, 0);
    free(scratch_mem);
    if (rc == MP_ENOMEM) {
        free(text);
        return rc;
    }
    if (rc || len == 0) { /* not JSON (the store keeps attributes verbatim): nothing */
        free(text);
        return MP_OK;
    }
    *out = text;
    return MP_OK;
}

static char *dup_n(const char *s, size_t n) {
    if (n == 0) return NULL;
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* Publishes a vector for item id (cat write side held). The first vector fixes the dimension; others are refused. */
static int emb_set(mp_live *l, uint32_t id, const float *v, uint32_t dim) {
    if (id >= l->n_items || dim == 0) return MP_OK;
    if (l->emb_dim == 0) {
        float *e = calloc((size_t)l->items_cap * dim + 1, sizeof *e);
        if (!e) return MP_ENOMEM;
        free(l->emb);
        l->emb = e;
        l->emb_dim = dim;
    }
    if (dim != l->emb_dim) return MP_EINVAL;
    memcpy(l->emb + (size_t)id * dim, v, dim * sizeof *v);
    if (!l->has_emb[id]) l->n_emb++;
    l->has_emb[id] = 1;
    return MP_OK;
}

/* Hash of the text the encoder embeds for item id (0 when it has none or out of memory). */
static uint64_t embed_text_hash(const mp_live *l, uint32_t id) {
    char *t = item_embed_text(l, id);
    uint64_t h = t && t[0] ? mp_encoder_text_hash(t, strlen(t)) : 0;
    free(t);
    return h;
}

int live_text_set_item(mp_live *l, uint32_t id, const mp_item *it, const char *old_title) {
    char *d = dup_n(it->description.ptr, it->description.len), *b = dup_n(it->brand.ptr, it->brand.len), *x = NULL;
    if ((it->description.len && !d) || (it->brand.len && !b) || attrs_text(it->attrs, &x)) {
        free(d);
        free(b);
        return MP_ENOMEM;
    }
    free(l->details[id]);
    l->details[id] = x;
    uint64_t before = 0;
    if (l->has_emb[id]) { /* the text before the change (the title has already been replaced) */
        char *t = mp_encoder_item_text(old_title, l->desc[id], l->catp[id], l->brand[id]);
        before = t && t[0] ? mp_encoder_text_hash(t, strlen(t)) : 0;
        free(t);
    }
    free(l->desc[id]);
    free(l->brand[id]);
    l->desc[id] = d;
    l->brand[id] = b;
    l->catp[id] = l->item_cat[id] ? mp_strmap_key(l->cats, l->item_cat[id], NULL) : NULL;
    if (l->has_emb[id] && (before == 0 || embed_text_hash(l, id) != before)) {
        l->has_emb[id] = 0; /* the text changed: the vector is re-made by live_text_items_written */
        l->n_emb--;
    }
    if (!l->tix) return MP_OK;
    char *doc = item_doc(l, id);
    int rc = mp_textindex_set(l->tix, id, doc ? doc : "", doc ? strlen(doc) : 0, NULL);
    free(doc);
    return rc == MP_OK ? MP_OK : MP_ENOMEM;
}

/* ---- open ---- */

static int scan_item(void *ctx, uint32_t id, const mp_item *it) {
    mp_live *l = ctx;
    if (id >= l->n_items) return 0;
    char *d = dup_n(it->description.ptr, it->description.len), *b = dup_n(it->brand.ptr, it->brand.len), *x = NULL;
    if ((it->description.len && !d) || (it->brand.len && !b) || attrs_text(it->attrs, &x)) {
        free(d);
        free(b);
        return MP_ENOMEM;
    }
    free(l->details[id]);
    l->details[id] = x;
    free(l->desc[id]);
    free(l->brand[id]);
    l->desc[id] = d;
    l->brand[id] = b;
    return 0;
}

static int scan_emb(void *ctx, uint32_t id, const float *v, uint32_t dim, uint64_t text_hash) {
    mp_live *l = ctx;
    if (id >= l->n_items) return 0;
    char *t = item_embed_text(l, id);
    if (!t) return MP_ENOMEM;
    int same = t[0] && mp_encoder_text_hash(t, strlen(t)) == text_hash;
    free(t);
    if (!same) return 0; /* stale: the text changed since; re-embedded in the background */
    int rc = emb_set(l, id, v, dim);
    return rc == MP_ENOMEM ? rc : 0;
}

/* ---- user profiles ---- */

/* Appends the string and number values of the JSON value at the cursor to *out (space-separated). */
static int flatten(mp_json_cur *c, char **scratch, char **out, size_t *len, size_t *cap, int depth) {
    mp_json_type t = mp_json_peek(c);
    mp_str s;
    if (t == MP_JSON_STRING || t == MP_JSON_NUMBER) {
        if ((t == MP_JSON_STRING ? mp_json_string(c, scratch, &s) : mp_json_number(c, &s, NULL, NULL)) != MP_OK)
            return MP_EINVAL;
        if (s.len == 0) return MP_OK;
        if (mp_grow((void **)out, cap, *len + s.len + 2, 1)) return MP_ENOMEM;
        if (*len) (*out)[(*len)++] = ' ';
        memcpy(*out + *len, s.ptr, s.len);
        *len += s.len;
        (*out)[*len] = 0;
        return MP_OK;
    }
    if ((t == MP_JSON_OBJECT || t == MP_JSON_ARRAY) && depth < 8) {
        int obj = t == MP_JSON_OBJECT;
        if ((obj ? mp_json_object_begin(c) : mp_json_array_begin(c)) != MP_OK) return MP_EINVAL;
        for (;;) {
            mp_str key;
            int done, rc;
            if ((obj ? mp_json_object_next(c, scratch, &key, &done) : mp_json_array_next(c, &done)) != MP_OK)
                return MP_EINVAL;
            if (done) return MP_OK;
            if ((rc = flatten(c, scratch, out, len, cap, depth + 1))) return rc;
        }
    }
    return mp_json_skip(c, NULL) == MP_OK ? MP_OK : MP_EINVAL;
}

int live_profile_set(mp_live *l, uint32_t u, mp_str attrs) {
    char *text = NULL;
    if (attrs_text(attrs, &text)) return MP_ENOMEM;
    if (u >= l->uprof_cap) {
        if (!text) return MP_OK;
        size_t old = l->uprof_cap, want = (size_t)u + 1;
        if (mp_grow((void **)&l->uprof, &l->uprof_cap, want, sizeof *l->uprof)) {
            free(text);
            return MP_ENOMEM;
        }
        memset(l->uprof + old, 0, (l->uprof_cap - old) * sizeof *l->uprof);
    }
    free(l->uprof[u]);
    l->uprof[u] = text;
    return MP_OK;
}

const char *live_profile_get(const mp_live *l, uint32_t u) { return u < l->uprof_cap ? l->uprof[u] : NULL; }

static int scan_user(void *ctx, uint32_t id, const mp_user *u) {
    return u->attrs.len ? live_profile_set(ctx, id, u->attrs) : 0;
}

int live_text_open(mp_live *l, mp_error *err) {
    int rc = mp_store_scan_items(l->store, scan_item, l, err);
    if (rc) return rc;
    if ((rc = mp_store_scan_users(l->store, scan_user, l, err))) {
        if (rc == MP_ENOMEM) return mp_error_set(err, MP_ENOMEM, "live: out of memory loading user profiles");
        return rc;
    }
    for (uint32_t i = 0; i < l->n_items; i++)
        l->catp[i] = l->item_cat[i] ? mp_strmap_key(l->cats, l->item_cat[i], NULL) : NULL;
    char **docs = calloc((size_t)l->n_items + 1, sizeof *docs);
    if (!docs) return mp_error_set(err, MP_ENOMEM, "live: out of memory for the search index");
    for (uint32_t i = 0; i < l->n_items; i++) docs[i] = item_doc(l, i);
    rc = mp_textindex_build((const char *const *)docs, NULL, l->n_items, NULL, &l->tix, err);
    for (uint32_t i = 0; i < l->n_items; i++) free(docs[i]);
    free(docs);
    if (rc) {
        mp_error_prefix(err, "live: building the search index of store \"%s\"", l->db);
        return rc;
    }
    l->enc = l->opts.encoder;
    if (!l->enc) return MP_OK;
    const char *name = mp_encoder_name(l->enc);
    if ((rc = mp_store_scan_embeddings(l->store, MP_KIND_ITEMS, name, scan_emb, l, err))) {
        if (rc == MP_ENOMEM) return mp_error_set(err, MP_ENOMEM, "live: out of memory loading item vectors");
        mp_error_prefix(err, "live: loading the item vectors of encoder \"%s\"", name);
        return rc;
    }
    if (pthread_mutex_init(&l->emb_mu, NULL) != 0) return mp_error_set(err, MP_ENOMEM, "live: cannot create a mutex");
    if (pthread_cond_init(&l->emb_cv, NULL) != 0) {
        pthread_mutex_destroy(&l->emb_mu);
        return mp_error_set(err, MP_ENOMEM, "live: cannot create a condition variable");
    }
    l->emb_init = 1;
    if (!l->opts.embed_missing) return MP_OK;
    for (uint32_t i = 0; i < l->n_items; i++)
        if (!l->has_emb[i] && mp_strmap_key(l->items, i, NULL) &&
            (l->title[i] || l->desc[i] || l->brand[i] || l->catp[i]))
            enqueue(l, &i, 1, 0);
    return MP_OK;
}

/* ---- embedding ---- */

/* Embeds items ids[0..n) (no lock held), caches the vectors in the store and publishes them. Items whose text
 * changed meanwhile are left for the write that changed them. */
static int embed_batch(mp_live *l, const uint32_t *ids, size_t n) {
    if (!l->enc || n == 0) return MP_OK;
    char **texts = calloc(n, sizeof *texts);
    uint32_t *which = malloc(n * sizeof *which);
    uint64_t *hash = malloc(n * sizeof *hash);
    float *vecs = NULL;
    uint32_t dim = 0;
    size_t m = 0;
    int rc = MP_OK;
    if (!texts || !which || !hash) {
        rc = MP_ENOMEM;
        goto out;
    }
    pthread_rwlock_rdlock(&l->cat);
    for (size_t k = 0; k < n; k++) {
        if (ids[k] >= l->n_items || l->has_emb[ids[k]]) continue; /* current already */
        char *t = item_embed_text(l, ids[k]);
        if (!t || !t[0]) {
            free(t);
            continue;
        }
        texts[m] = t;
        which[m] = ids[k];
        hash[m] = mp_encoder_text_hash(t, strlen(t));
        m++;
    }
    pthread_rwlock_unlock(&l->cat);
    if (m == 0) goto out;
    mp_error e;
    if ((rc = mp_encoder_embed(l->enc, (const char *const *)texts, NULL, m, &vecs, &dim, &e))) goto out;
    const char *name = mp_encoder_name(l->enc);
    pthread_mutex_lock(&l->write_mu);
    if (mp_store_begin(l->store, NULL) == MP_OK) {
        int src = MP_OK;
        for (size_t k = 0; src == MP_OK && k < m; k++)
            src = mp_store_put_embedding(l->store, MP_KIND_ITEMS, which[k], name, vecs + k * dim, dim, hash[k], NULL);
        if (src == MP_OK) src = mp_store_commit(l->store, NULL);
        if (src != MP_OK) mp_store_rollback(l->store, NULL); /* not cached; still served from memory */
    }
    pthread_rwlock_wrlock(&l->cat);
    for (size_t k = 0; k < m; k++) {
        char *t = item_embed_text(l, which[k]);
        int same = t && mp_encoder_text_hash(t, strlen(t)) == hash[k];
        free(t);
        if (same) emb_set(l, which[k], vecs + k * dim, dim);
    }
    pthread_rwlock_unlock(&l->cat);
    pthread_mutex_unlock(&l->write_mu);
out:
    for (size_t k = 0; texts && k < m; k++) free(texts[k]);
    free(texts);
    free(which);
    free(hash);
    free(vecs);
    return rc;
}

/* Appends jobs to the queue (n ids, all with `tell`) and wakes the embedder. Out of memory: the items are left
 * unembedded (embedded at the next open). */
static void enqueue(mp_live *l, const uint32_t *ids, size_t n, int tell) {
    if (!l->emb_init || n == 0) return;
    pthread_mutex_lock(&l->emb_mu);
    if (mp_grow((void **)&l->jobs, &l->cap_jobs, l->n_jobs + n, sizeof *l->jobs) == MP_OK) {
        for (size_t k = 0; k < n; k++) l->jobs[l->n_jobs++] = (live_embed_job){ids[k], (uint8_t)tell};
        pthread_cond_signal(&l->emb_cv);
    }
    pthread_mutex_unlock(&l->emb_mu);
}

static void tell_model(mp_live *l, const uint32_t *ids, size_t n);

static void *embedder_main(void *arg) {
    mp_live *l = arg;
    uint32_t ids[EMBED_BATCH], told[EMBED_BATCH];
    for (;;) {
        pthread_mutex_lock(&l->emb_mu);
        while (l->jobs_head == l->n_jobs && !l->embedder_stop) pthread_cond_wait(&l->emb_cv, &l->emb_mu);
        if (l->embedder_stop) {
            pthread_mutex_unlock(&l->emb_mu);
            return NULL;
        }
        size_t m = 0, nt = 0;
        while (m < EMBED_BATCH && l->jobs_head < l->n_jobs) {
            const live_embed_job *j = &l->jobs[l->jobs_head++];
            ids[m++] = j->id;
            if (j->tell) told[nt++] = j->id;
        }
        if (l->jobs_head == l->n_jobs) l->jobs_head = l->n_jobs = 0;
        pthread_mutex_unlock(&l->emb_mu);
        embed_batch(l, ids, m); /* a failing encoder (remote down) leaves these unembedded */
        tell_model(l, told, nt);
    }
}

void live_text_start(mp_live *l) {
    if (!l->enc || !l->emb_init) return;
    l->embedder_started = pthread_create(&l->embedder, NULL, embedder_main, l) == 0;
}

void live_text_close(mp_live *l) {
    if (l->embedder_started) {
        pthread_mutex_lock(&l->emb_mu);
        l->embedder_stop = 1;
        pthread_cond_broadcast(&l->emb_cv);
        pthread_mutex_unlock(&l->emb_mu);
        pthread_join(l->embedder, NULL);
        l->embedder_started = 0;
    }
    if (l->emb_init) {
        pthread_mutex_destroy(&l->emb_mu);
        pthread_cond_destroy(&l->emb_cv);
        l->emb_init = 0;
    }
    free(l->jobs);
    l->jobs = NULL;
    l->n_jobs = l->cap_jobs = l->jobs_head = 0;
    if (l->desc)
        for (uint32_t i = 0; i < l->items_cap; i++) free(l->desc[i]);
    if (l->brand)
        for (uint32_t i = 0; i < l->items_cap; i++) free(l->brand[i]);
    for (size_t u = 0; u < l->uprof_cap; u++) free(l->uprof[u]);
    free(l->uprof);
    l->uprof = NULL;
    l->uprof_cap = 0;
    if (l->details)
        for (uint32_t i = 0; i < l->items_cap; i++) free(l->details[i]);
    free(l->details);
    l->details = NULL;
    free(l->desc);
    free(l->brand);
    free(l->catp);
    free(l->emb);
    free(l->has_emb);
    mp_textindex_free(l->tix);
    l->desc = l->brand = NULL;
    l->catp = NULL;
    l->emb = NULL;
    l->has_emb = NULL;
    l->tix = NULL;
}

/* Content of item i for set_item (strings borrowed from the catalog: hold write_mu or cat). */
static void item_content(const mp_live *l, uint32_t i, mp_item_content *c) {
    memset(c, 0, sizeof *c);
    c->title = l->title[i];
    c->description = l->desc[i];
    c->category = l->catp[i];
    c->brand = l->brand[i];
    c->price = NAN;
    if (l->emb && l->has_emb[i]) {
        c->embedding = l->emb + (size_t)i * l->emb_dim;
        c->embedding_dim = l->emb_dim;
    }
}

void live_text_items_written(mp_live *l, const uint32_t *ids, size_t n) {
    if (n == 0) return;
    /* the first LIVE_EMBED_SYNC now (a write of a few items is searchable by meaning when it returns); a bulk
     * write does not wait for all of its items to be embedded: the rest go to the background embedder, and
     * content-aware models hear of them again once they have their vectors */
    size_t now = n < LIVE_EMBED_SYNC || !l->embedder_started ? n : LIVE_EMBED_SYNC;
    for (size_t k = 0; l->enc && k < now; k += EMBED_BATCH)
        embed_batch(l, ids + k, now - k < EMBED_BATCH ? now - k : EMBED_BATCH);
    tell_model(l, ids, n);
    if (now < n) enqueue(l, ids + now, n - now, 1);
}

/* Passes items to the current model's set_item (content-aware models only). */
static void tell_model(mp_live *l, const uint32_t *ids, size_t n) {
    if (n == 0) return;
    live_holder *h = live_holder_acquire(l);
    if (h->model && mp_model_uses_content(h->model)) {
        pthread_mutex_lock(&l->write_mu); /* the catalog's strings and vectors change only under write_mu */
        pthread_rwlock_wrlock(&h->lock);
        for (size_t k = 0; k < n; k++) {
            if (ids[k] >= l->n_items) continue;
            mp_item_content c;
            item_content(l, ids[k], &c);
            mp_model_set_item(h->model, ids[k], &c, NULL); /* best effort: served by search until retrained */
        }
        pthread_rwlock_unlock(&h->lock);
        pthread_mutex_unlock(&l->write_mu);
    }
    live_holder_release(l, h);
}

void live_text_model_catch_up(mp_live *l, mp_model *m, uint32_t from) {
    if (!m || !mp_model_uses_content(m)) return;
    pthread_rwlock_rdlock(&l->cat);
    for (uint32_t i = from; i < l->n_items; i++) {
        if (!l->title[i] && !l->desc[i] && !l->brand[i] && !l->catp[i]) continue;
        mp_item_content c;
        item_content(l, i, &c);
        mp_model_set_item(m, i, &c, NULL);
    }
    pthread_rwlock_unlock(&l->cat);
}

float *live_text_embed_query(mp_live *l, const char *text, size_t len, uint32_t *dim) {
    *dim = 0;
    if (!l->enc || !text || len == 0) return NULL;
    if (!strncmp(mp_encoder_name(l->enc), "use-lite", 8) && mp_search_has_cjk(text, len)) return NULL;
    float *v = NULL;
    uint32_t d = 0;
    mp_error e;
    if (mp_encoder_embed(l->enc, &text, &len, 1, &v, &d, &e) != MP_OK) return NULL;
    *dim = d;
    return v;
}

void live_text_catalog(mp_live *l, mp_search_catalog *c, const uint8_t *allow) {
    memset(c, 0, sizeof *c);
    c->n_items = l->n_items;
    c->index = l->tix;
    if (l->emb && l->emb_dim && l->n_emb) {
        c->emb = l->emb;
        c->has_emb = l->has_emb;
        c->dim = l->emb_dim;
    }
    c->allow = allow;
    c->title = (const char *const *)l->title;
    c->brand = (const char *const *)l->brand;
    c->category = l->catp;
    c->description = (const char *const *)l->desc;
    c->details = (const char *const *)l->details;
}

struct mp_encoder *mp_live_encoder(mp_live *l) { return l->enc; }

void mp_live_embedding_stats(mp_live *l, uint64_t *n_items_embedded, uint32_t *dim) {
    pthread_rwlock_rdlock(&l->cat);
    if (n_items_embedded) *n_items_embedded = l->n_emb;
    if (dim) *dim = l->emb_dim;
    pthread_rwlock_unlock(&l->cat);
}
