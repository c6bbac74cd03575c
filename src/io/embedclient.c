/* src/io/embedclient.c: the OpenAI-compatible embeddings client (see magpie/embedclient.h).
 *
 * Each call makes its own curl easy handle, so concurrent calls share nothing but the dimension seen so far
 * (under a mutex). Answers are parsed with the JSON pull parser in one pass, straight into the output rows. */
#include "magpie/embedclient.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "magpie/json.h"

#define DEFAULT_BATCH 64
#define DEFAULT_TIMEOUT_MS 120000L
#define MAX_RESPONSE_BYTES ((size_t)512 << 20) /* an answer larger than this is refused */
#define MAX_ATTEMPTS 3                         /* for 429 / 503 (busy server) */

struct mp_embed_client {
    char *url;     /* "{base}/embeddings" (owned) */
    char *model;   /* (owned) */
    char *auth;    /* "Authorization: Bearer KEY" or NULL (owned) */
    size_t batch;  /* texts per request */
    long timeout_ms;
    pthread_mutex_t lock; /* guards dim */
    int lock_ready;       /* lock was initialised */
    uint32_t dim;         /* dimension of the answers so far, 0 before the first */
};

/* libcurl wants curl_global_init once per process before any handle; this is the one piece of process state. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void) {
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_str(const char *s) {
    return s ? strdup(s) : NULL;
}

int mp_embed_client_open(const mp_embed_client_opts *opts, mp_embed_client **out, mp_error *err) {
    *out = NULL;
    if (!opts || !opts->base_url || !*opts->base_url)
        return mp_error_set(err, MP_EINVAL, "embeddings client: no base URL (e.g. http://localhost:11434/v1)");
    if (!opts->model || !*opts->model)
        return mp_error_set(err, MP_EINVAL, "embeddings client: no model name");
    if (strncmp(opts->base_url, "http://", 7) && strncmp(opts->base_url, "https://", 8))
        return mp_error_set(err, MP_EINVAL, "embeddings client: base URL \"%s\" must start with http:// or https://",
                            opts->base_url);
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return mp_error_set(err, MP_EIO, "embeddings client: libcurl failed to initialise: %s",
                            curl_easy_strerror(curl_init_rc));
    mp_embed_client *c = calloc(1, sizeof *c);
    if (!c) return mp_error_set(err, MP_ENOMEM, "out of memory");
    size_t bl = strlen(opts->base_url);
    while (bl > 0 && opts->base_url[bl - 1] == '/')
        bl--;
    c->url = malloc(bl + sizeof "/embeddings");
    c->model = dup_str(opts->model);
    const char *key = opts->api_key;
    if (!key || !*key) key = getenv("MAGPIE_EMBED_API_KEY");
    if (!key || !*key) key = getenv("OPENAI_API_KEY");
    if (key && *key) {
        size_t n = strlen(key) + 32;
        if ((c->auth = malloc(n))) snprintf(c->auth, n, "Authorization: Bearer %s", key);
    }
    if (!c->url || !c->model || (key && *key && !c->auth)) {
        mp_embed_client_free(c);
        return mp_error_set(err, MP_ENOMEM, "out of memory");
    }
    memcpy(c->url, opts->base_url, bl);
    memcpy(c->url + bl, "/embeddings", sizeof "/embeddings");
    c->batch = opts->batch ? opts->batch : DEFAULT_BATCH;
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    pthread_mutex_init(&c->lock, NULL);
    c->lock_ready = 1;
    *out = c;
    return MP_OK;
}

void mp_embed_client_free(mp_embed_client *c) {
    if (!c) return;
    if (c->lock_ready) pthread_mutex_destroy(&c->lock);
    free(c->url);
    free(c->model);
    free(c->auth);
    free(c);
}

uint32_t mp_embed_client_dim(const mp_embed_client *c) {
    mp_embed_client *m = (mp_embed_client *)c;
    pthread_mutex_lock(&m->lock);
    uint32_t d = m->dim;
    pthread_mutex_unlock(&m->lock);
    return d;
}

const char *mp_embed_client_url(const mp_embed_client *c) {
    return c->url;
}

/* ---- the request ---- */

/* The answer being received: a sticky-error buffer and whether it passed MAX_RESPONSE_BYTES. */
typedef struct response {
    mp_buf b;
    int too_big;
} response;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx) {
    response *r = ctx;
    size_t n = size * nmemb;
    if (r->b.len + n > MAX_RESPONSE_BYTES) {
        r->too_big = 1;
        return 0; /* makes curl fail the transfer */
    }
    mp_buf_add(&r->b, data, n);
    return mp_buf_ok(&r->b) ? n : 0;
}

/* ---- parsing answers ---- */

/* The server's own error message out of {"error":{"message":"..."}} or {"error":"..."} into msg (cap bytes);
 * "" when the body has neither. */
static void error_message(const char *body, size_t len, char *msg, size_t cap) {
    msg[0] = 0;
    char *scratch0 = malloc(len + 16), *scratch = scratch0;
    if (!scratch0) return;
    mp_json_cur c;
    mp_json_init(&c, body, len);
    mp_str key, val;
    int done;
    if (mp_json_peek(&c) != MP_JSON_OBJECT || mp_json_object_begin(&c) != MP_OK) goto out;
    while (mp_json_object_next(&c, &scratch, &key, &done) == MP_OK && !done) {
        int is_err = key.len == 5 && !memcmp(key.ptr, "error", 5);
        int is_msg = key.len == 7 && !memcmp(key.ptr, "message", 7); /* some servers put it at the top */
        if ((is_err || is_msg) && mp_json_peek(&c) == MP_JSON_STRING) {
            if (mp_json_string(&c, &scratch, &val) == MP_OK) snprintf(msg, cap, "%.*s", (int)val.len, val.ptr);
            if (is_err) goto out;
            continue;
        }
        if (is_err && mp_json_peek(&c) == MP_JSON_OBJECT) {
            mp_json_object_begin(&c);
            while (mp_json_object_next(&c, &scratch, &key, &done) == MP_OK && !done) {
                if (key.len == 7 && !memcmp(key.ptr, "message", 7) && mp_json_peek(&c) == MP_JSON_STRING) {
                    if (mp_json_string(&c, &scratch, &val) == MP_OK)
                        snprintf(msg, cap, "%.*s", (int)val.len, val.ptr);
                    goto out;
                }
                if (mp_json_skip(&c, NULL) != MP_OK) goto out;
            }
            goto out;
        }
        if (mp_json_skip(&c, NULL) != MP_OK) goto out;
    }
out:
    free(scratch0);
}

/* A short printable excerpt of a body for messages. */
static void excerpt(const char *body, size_t len, char *out, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < cap && i < 200; i++) {
        unsigned char ch = (unsigned char)body[i];
        out[n++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    if (len > 200 && n + 4 < cap) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = 0;
}

typedef struct parse_ctx {
    const char *url;
    size_t n;       /* vectors expected */
    uint32_t dim;   /* known dimension (0: take the first) */
    float *rows;    /* [n * dim], allocated at the first vector */
    float *tmp;     /* [MP_EMBED_CLIENT_MAX_DIM] the vector being read */
    uint8_t *seen;  /* [n] index already given */
} parse_ctx;

static int corrupt(const parse_ctx *p, mp_error *err, const char *what, long long at) {
    if (at >= 0)
        return mp_error_set(err, MP_ECORRUPT, "embeddings server %s: unexpected answer: data[%lld]: %s", p->url, at,
                            what);
    return mp_error_set(err, MP_ECORRUPT, "embeddings server %s: unexpected answer: %s", p->url, what);
}

static int corrupt_json(const parse_ctx *p, mp_error *err, const mp_json_cur *c, const char *body) {
    return mp_error_set(err, MP_ECORRUPT, "embeddings server %s: malformed JSON in the answer: %s (byte %zu)", p->url,
                        c->why ? c->why : "syntax error", (size_t)((c->err_at ? c->err_at : c->p) - body) + 1);
}

/* Reads one element of "data" (cursor at its '{'); `pos` is its position in the array. */
static int parse_item(parse_ctx *p, mp_json_cur *c, char **scratch, size_t pos, const char *body, mp_error *err) {
    long long at = (long long)pos;
    if (mp_json_peek(c) != MP_JSON_OBJECT) return corrupt(p, err, "expected an object", at);
    if (mp_json_object_begin(c) != MP_OK) return corrupt_json(p, err, c, body);
    long long index = -1;
    uint32_t n = 0;
    int have_vec = 0;
    for (;;) {
        mp_str key;
        int done;
        if (mp_json_object_next(c, scratch, &key, &done) != MP_OK) return corrupt_json(p, err, c, body);
        if (done) break;
        if (key.len == 5 && !memcmp(key.ptr, "index", 5)) {
            mp_str raw;
            int is_int = 0;
            if (mp_json_peek(c) != MP_JSON_NUMBER) return corrupt(p, err, "`index` is not a number", at);
            if (mp_json_number(c, &raw, &is_int, NULL) != MP_OK) return corrupt_json(p, err, c, body);
            char tmp[32];
            if (!is_int || raw.len >= sizeof tmp || raw.ptr[0] == '-')
                return corrupt(p, err, "`index` is not a non-negative integer", at);
            memcpy(tmp, raw.ptr, raw.len);
            tmp[raw.len] = 0;
            index = strtoll(tmp, NULL, 10);
        } else if (key.len == 9 && !memcmp(key.ptr, "embedding", 9)) {
            mp_json_type t = mp_json_peek(c);
            if (t == MP_JSON_STRING)
                return corrupt(p, err, "`embedding` is a string (base64?); expected an array of numbers", at);
            if (t != MP_JSON_ARRAY) return corrupt(p, err, "`embedding` is not an array of numbers", at);
            if (mp_json_array_begin(c) != MP_OK) return corrupt_json(p, err, c, body);
            for (;;) {
                int end;
                if (mp_json_array_next(c, &end) != MP_OK) return corrupt_json(p, err, c, body);
                if (end) break;
                if (n == MP_EMBED_CLIENT_MAX_DIM) return corrupt(p, err, "`embedding` has too many values", at);
                double d;
                if (mp_json_peek(c) != MP_JSON_NUMBER)
                    return corrupt(p, err, "`embedding` holds something that is not a number", at);
                if (mp_json_number(c, NULL, NULL, &d) != MP_OK || !isfinite((float)d))
                    return corrupt(p, err, "`embedding` holds a number out of range", at);
                p->tmp[n++] = (float)d;
            }
            have_vec = 1;
        } else if (mp_json_skip(c, NULL) != MP_OK) {
            return corrupt_json(p, err, c, body);
        }
    }
    if (!have_vec) return corrupt(p, err, "no `embedding`", at);
    if (n == 0) return corrupt(p, err, "`embedding` is empty", at);
    if (index < 0) index = (long long)pos; /* servers that leave `index` out answer in order */
    if ((unsigned long long)index >= p->n) {
        char why[96];
        snprintf(why, sizeof why, "`index` %lld is out of range for %zu inputs", index, p->n);
        return corrupt(p, err, why, at);
    }
    if (p->seen[index]) {
        char why[64];
        snprintf(why, sizeof why, "`index` %lld appears twice", index);
        return corrupt(p, err, why, at);
    }
    if (p->dim == 0) p->dim = n;
    if (n != p->dim) {
        char why[128];
        snprintf(why, sizeof why, "the vector has %u values, the vectors before it %u", n, p->dim);
        return corrupt(p, err, why, at);
    }
    if (!p->rows && !(p->rows = malloc(p->n * (size_t)p->dim * sizeof *p->rows)))
        return mp_error_set(err, MP_ENOMEM, "out of memory reading embeddings");
    memcpy(p->rows + (size_t)index * p->dim, p->tmp, (size_t)n * sizeof *p->tmp);
    p->seen[index] = 1;
    return MP_OK;
}

static int parse_answer(parse_ctx *p, const char *body, size_t len, mp_error *err) {
    char *scratch0 = malloc(len + 16), *scratch = scratch0;
    p->tmp = malloc(MP_EMBED_CLIENT_MAX_DIM * sizeof *p->tmp);
    p->seen = calloc(p->n ? p->n : 1, 1);
    int rc = MP_OK;
    if (!scratch0 || !p->tmp || !p->seen) {
        rc = mp_error_set(err, MP_ENOMEM, "out of memory reading embeddings");
        goto out;
    }
    mp_json_cur c;
    mp_json_init(&c, body, len);
    if (mp_json_peek(&c) != MP_JSON_OBJECT) {
        char ex[256];
        excerpt(body, len, ex, sizeof ex);
        rc = mp_error_set(err, MP_ECORRUPT, "embeddings server %s: the answer is not a JSON object: \"%s\"", p->url,
                          ex);
        goto out;
    }
    mp_json_object_begin(&c);
    int have_data = 0;
    size_t count = 0;
    for (;;) {
        mp_str key;
        int done;
        if (mp_json_object_next(&c, &scratch, &key, &done) != MP_OK) {
            rc = corrupt_json(p, err, &c, body);
            goto out;
        }
        if (done) break;
        if (key.len == 4 && !memcmp(key.ptr, "data", 4)) {
            if (mp_json_peek(&c) != MP_JSON_ARRAY) {
                rc = corrupt(p, err, "`data` is not an array", -1);
                goto out;
            }
            if (mp_json_array_begin(&c) != MP_OK) {
                rc = corrupt_json(p, err, &c, body);
                goto out;
            }
            for (;;) {
                int end;
                if (mp_json_array_next(&c, &end) != MP_OK) {
                    rc = corrupt_json(p, err, &c, body);
                    goto out;
                }
                if (end) break;
                if (count >= p->n) {
                    char why[96];
                    snprintf(why, sizeof why, "more than the %zu vectors asked for", p->n);
                    rc = corrupt(p, err, why, -1);
                    goto out;
                }
                if ((rc = parse_item(p, &c, &scratch, count, body, err)) != MP_OK) goto out;
                count++;
            }
            have_data = 1;
        } else if (mp_json_skip(&c, NULL) != MP_OK) {
            rc = corrupt_json(p, err, &c, body);
            goto out;
        }
    }
    if (!mp_json_at_end(&c)) {
        rc = corrupt(p, err, "content after the JSON object", -1);
    } else if (!have_data) {
        char msg[300];
        error_message(body, len, msg, sizeof msg);
        rc = msg[0] ? mp_error_set(err, MP_EIO, "embeddings server %s: %s", p->url, msg)
                    : corrupt(p, err, "no `data` array", -1);
    } else if (count != p->n) {
        char why[96];
        snprintf(why, sizeof why, "%zu vectors for %zu inputs", count, p->n);
        rc = corrupt(p, err, why, -1);
    }
out:
    free(scratch0);
    free(p->tmp);
    free(p->seen);
    p->tmp = NULL;
    p->seen = NULL;
    return rc;
}

/* ---- one request ---- */

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* POSTs texts[0..n) and fills rows (malloc'ed n * *dim). */
static int embed_batch(mp_embed_client *cl, const char *const *texts, const size_t *lens, size_t n, uint32_t want_dim,
                       float **rows, uint32_t *dim, mp_error *err) {
    mp_buf req;
    mp_buf_init(&req);
    response resp = {0};
    mp_buf_add(&req, "{\"model\":", 9);
    mp_json_put_str(&req, cl->model, strlen(cl->model));
    mp_buf_add(&req, ",\"input\":[", 10);
    for (size_t i = 0; i < n; i++) {
        if (i) mp_buf_add(&req, ",", 1);
        mp_json_put_str(&req, texts[i], lens ? lens[i] : strlen(texts[i]));
    }
    mp_buf_add(&req, "]}", 2);
    if (!mp_buf_ok(&req)) {
        mp_buf_free(&req);
        return mp_error_set(err, MP_ENOMEM, "out of memory building an embeddings request");
    }
    int rc = MP_OK;
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = NULL;
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Accept: application/json");
    hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip for large bodies */
    if (cl->auth) hdr = curl_slist_append(hdr, cl->auth);
    if (!h || !hdr) {
        rc = mp_error_set(err, MP_ENOMEM, "out of memory starting an embeddings request");
        goto out;
    }
    char curl_err[CURL_ERROR_SIZE];
    curl_easy_setopt(h, CURLOPT_URL, cl->url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.p);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req.len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, cl->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cl->timeout_ms < 10000 ? cl->timeout_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM for timeouts: we run in threads */
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "magpie");
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* whatever compression curl supports */
    long status = 0;
    for (int attempt = 1;; attempt++) {
        mp_buf_clear(&resp.b);
        resp.too_big = 0;
        curl_err[0] = 0;
        CURLcode cc = curl_easy_perform(h);
        if (cc != CURLE_OK) {
            if (resp.too_big)
                rc = mp_error_set(err, MP_ECORRUPT, "embeddings server %s: the answer is larger than %zu MiB",
                                  cl->url, MAX_RESPONSE_BYTES >> 20);
            else
                rc = mp_error_set(err, MP_EIO, "embeddings server %s: %s (is the server running and the URL right?)",
                                  cl->url, curl_err[0] ? curl_err : curl_easy_strerror(cc));
            goto out;
        }
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if ((status == 429 || status == 503) && attempt < MAX_ATTEMPTS) {
            sleep_ms(1000L * attempt); /* busy: back off and try again */
            continue;
        }
        break;
    }
    if (status < 200 || status >= 300) {
        char msg[400];
        error_message(resp.b.p ? resp.b.p : "", resp.b.len, msg, sizeof msg);
        if (!msg[0]) excerpt(resp.b.p ? resp.b.p : "", resp.b.len, msg, sizeof msg);
        int code = status == 404                                                    ? MP_ENOTFOUND
                   : (status == 400 || status == 401 || status == 403 || status == 422) ? MP_EINVAL
                                                                                      : MP_EIO;
        const char *hint = status == 401 || status == 403 ? " (set MAGPIE_EMBED_API_KEY or OPENAI_API_KEY)"
                           : status == 404                ? " (check the base URL and the model name)"
                                                          : "";
        rc = mp_error_set(err, code, "embeddings server %s: HTTP %ld: %s%s", cl->url, status,
                          msg[0] ? msg : "(no message)", hint);
        goto out;
    }
    parse_ctx p = {.url = cl->url, .n = n, .dim = want_dim};
    rc = parse_answer(&p, resp.b.p ? resp.b.p : "", resp.b.len, err);
    if (rc == MP_OK) {
        *rows = p.rows;
        *dim = p.dim;
    } else {
        free(p.rows);
    }
out:
    curl_slist_free_all(hdr);
    if (h) curl_easy_cleanup(h);
    mp_buf_free(&req);
    mp_buf_free(&resp.b);
    return rc;
}

int mp_embed_client_embed(mp_embed_client *c, const char *const *texts, const size_t *lens, size_t n, float **out,
                          uint32_t *dim, mp_error *err) {
    *out = NULL;
    uint32_t known = mp_embed_client_dim(c);
    *dim = known;
    if (n == 0) return MP_OK;
    float *all = NULL;
    for (size_t at = 0; at < n; at += c->batch) {
        size_t m = n - at < c->batch ? n - at : c->batch;
        float *rows = NULL;
        uint32_t d = 0;
        int rc = embed_batch(c, texts + at, lens ? lens + at : NULL, m, known, &rows, &d, err);
        if (rc != MP_OK) {
            free(all);
            return rc;
        }
        if (!known) {
            pthread_mutex_lock(&c->lock);
            if (!c->dim) c->dim = d; /* a concurrent call may have set it first */
            known = c->dim;
            pthread_mutex_unlock(&c->lock);
            if (d != known) {
                free(rows);
                free(all);
                return mp_error_set(err, MP_ECORRUPT,
                                    "embeddings server %s: vectors of %u values, earlier answers had %u", c->url, d,
                                    known);
            }
        }
        if (!all && !(all = malloc(n * (size_t)known * sizeof *all))) {
            free(rows);
            return mp_error_set(err, MP_ENOMEM, "out of memory holding %zu embeddings", n);
        }
        memcpy(all + at * known, rows, m * (size_t)known * sizeof *rows);
        free(rows);
    }
    *out = all;
    *dim = known;
    return MP_OK;
}
