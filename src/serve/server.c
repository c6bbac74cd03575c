/* src/serve/server.c: HTTP front of `magpie serve` on libmicrohttpd: routing, auth, limits, the error shape, and
 * the endpoint handlers over mp_live (see docs/api.md for the contract). */
#include "serve/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "magpie/json.h"
#include "serve/assets.h"
#include "serve/decode.h"
#include "serve/jbuf.h"

/* ---------------------------------------------------------------------------------------------------------------
 * Endpoints */

#define ENDPOINTS(X)                                                                                                  \
    X(RECOMMEND_GET, "GET /v1/recommend/{user}")                                                                      \
    X(RECOMMEND_POST, "POST /v1/recommend")                                                                           \
    X(SIMILAR, "GET /v1/similar/{item}")                                                                              \
    X(POPULAR, "GET /v1/popular")                                                                                     \
    X(HISTORY, "GET /v1/users/{id}/history")                                                                          \
    X(EVENTS, "POST /v1/events")                                                                                      \
    X(ITEMS, "POST|PUT /v1/items")                                                                                    \
    X(ITEM_PUT, "PUT /v1/items/{id}")                                                                                 \
    X(ITEM_DELETE, "DELETE /v1/items/{id}")                                                                           \
    X(USERS, "POST /v1/users")                                                                                        \
    X(USER_DELETE, "DELETE /v1/users/{id}")                                                                           \
    X(RELOAD, "POST /v1/admin/reload")                                                                                \
    X(STATS, "GET /v1/stats")                                                                                         \
    X(MODEL, "GET /v1/model")                                                                                         \
    X(HEALTHZ, "GET /healthz")                                                                                        \
    X(READYZ, "GET /readyz")                                                                                          \
    X(METRICS, "GET /metrics")                                                                                        \
    X(DASHBOARD, "GET /")                                                                                             \
    X(OTHER, "other")

enum {
#define EP_ENUM_(e, name) EP_##e,
    ENDPOINTS(EP_ENUM_)
#undef EP_ENUM_
        EP_COUNT
};

static const char *const endpoint_names[] = {
#define EP_NAME_(e, name) name,
    ENDPOINTS(EP_NAME_)
#undef EP_NAME_
};

enum { M_GET = 1, M_POST = 2, M_PUT = 4, M_DELETE = 8, M_HEAD = 16 };
enum { AUTH_NONE, AUTH_READ, AUTH_WRITE };

/* A route: method mask and path pattern of segments ("*" captures one). */
typedef struct route {
    int methods;
    const char *pattern; /* segments after the leading '/', '/'-separated */
    int endpoint;
    int auth;
} route;

static const route routes[] = {
    {M_GET, "v1/recommend/*", EP_RECOMMEND_GET, AUTH_READ},
    {M_POST, "v1/recommend", EP_RECOMMEND_POST, AUTH_READ},
    {M_GET, "v1/similar/*", EP_SIMILAR, AUTH_READ},
    {M_GET, "v1/popular", EP_POPULAR, AUTH_READ},
    {M_GET, "v1/users/*/history", EP_HISTORY, AUTH_READ},
    {M_POST, "v1/events", EP_EVENTS, AUTH_WRITE},
    {M_POST | M_PUT, "v1/items", EP_ITEMS, AUTH_WRITE},
    {M_PUT, "v1/items/*", EP_ITEM_PUT, AUTH_WRITE},
    {M_DELETE, "v1/items/*", EP_ITEM_DELETE, AUTH_WRITE},
    {M_POST, "v1/users", EP_USERS, AUTH_WRITE},
    {M_DELETE, "v1/users/*", EP_USER_DELETE, AUTH_WRITE},
    {M_POST, "v1/admin/reload", EP_RELOAD, AUTH_WRITE},
    {M_GET, "v1/stats", EP_STATS, AUTH_READ},
    {M_GET, "v1/model", EP_MODEL, AUTH_READ},
    {M_GET | M_HEAD, "healthz", EP_HEALTHZ, AUTH_NONE},
    {M_GET | M_HEAD, "readyz", EP_READYZ, AUTH_NONE},
    {M_GET, "metrics", EP_METRICS, AUTH_READ},
    {M_GET | M_HEAD, "", EP_DASHBOARD, AUTH_NONE},
    {M_GET | M_HEAD, "index.html", EP_DASHBOARD, AUTH_NONE},
    {M_GET | M_HEAD, "dashboard.js", EP_DASHBOARD, AUTH_NONE},
    {M_GET | M_HEAD, "dashboard.css", EP_DASHBOARD, AUTH_NONE},
};

/* One open connection, for the watchdog that cuts clients dribbling a request head (libmicrohttpd's own timeout
 * only notices silence, and the handlers run only once the head is complete). */
typedef struct conn {
    int fd;
    _Atomic int64_t head_since_ns; /* when the connection started waiting for a request head; 0: head complete */
    struct conn *prev, *next;      /* in mp_server.conns, under conns_mu */
} conn;

struct mp_server {
    const mp_serve_config *cfg;
    struct MHD_Daemon *daemon;
    _Atomic(mp_live *) live;
    mp_metrics *metrics;
    uint16_t port;
    time_t started;
    atomic_int open_connections;
    pthread_mutex_t conns_mu;
    conn *conns;             /* open connections */
    pthread_t watchdog;
    int watchdog_started;
    atomic_int stopping;
};

/* One request's state, from the first callback to the completion notice. */
typedef struct req {
    double t0;
    int endpoint;
    int status; /* of the queued response (for metrics) */
    char *body;
    size_t len, cap;
    int too_big;   /* body exceeded max_body: rest discarded */
    int timed_out; /* request_timeout passed while the body was arriving */
} req;

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Responses */

static enum MHD_Result send_text(struct MHD_Connection *c, req *r, int status, const char *type, char *text,
                                 size_t len, int must_free) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, text, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        if (must_free) free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"magpie\"");
    r->status = status;
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *c, req *r, int status, jbuf *b) {
    jb_raw(b, "\n", 1);
    size_t len;
    char *text = jb_take(b, &len);
    if (!text) {
        static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\",\"field\":null}}\n";
        return send_text(c, r, 500, "application/json; charset=utf-8", (char *)oom, sizeof oom - 1, 0);
    }
    return send_text(c, r, status, "application/json; charset=utf-8", text, len, 1);
}

static const char *code_of_status(int status) {
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "timeout";
    case 413: return "payload_too_large";
    case 415: return "unsupported_media_type";
    case 422: return "unprocessable";
    case 503: return "not_ready";
    default: return status >= 500 ? "internal" : "bad_request";
    }
}

static void jb_error_object(jbuf *b, int status, const char *code, const char *message, const char *field) {
    jb_cstr(b, "{\"code\":");
    jb_cstr_json(b, code ? code : code_of_status(status));
    jb_cstr(b, ",\"message\":");
    jb_cstr_json(b, message);
    jb_cstr(b, ",\"field\":");
    if (field && *field) jb_cstr_json(b, field);
    else jb_cstr(b, "null");
    jb_cstr(b, "}");
}

static enum MHD_Result send_error(struct MHD_Connection *c, req *r, int status, const char *code, const char *field,
                                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static enum MHD_Result send_error(struct MHD_Connection *c, req *r, int status, const char *code, const char *field,
                                  const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jbuf b;
    jb_init(&b);
    jb_cstr(&b, "{\"error\":");
    jb_error_object(&b, status, code, msg, field);
    jb_cstr(&b, "}");
    return send_json(c, r, status, &b);
}

/* Maps a library error to an HTTP answer. */
static enum MHD_Result send_mp_error(struct MHD_Connection *c, req *r, const mp_error *err, const char *field) {
    int status;
    switch (err->code) {
    case MP_ENOTFOUND: status = 404; break;
    case MP_EINVAL:
    case MP_ERANGE: status = 400; break;
    case MP_EBADREC: status = 422; break;
    case MP_EUNSUPPORTED: status = 400; break;
    default: status = 500; break;
    }
    char f[64] = "";
    if (!field) {
        mp_decode_field_of(err->msg, f, sizeof f);
        field = f;
    }
    return send_error(c, r, status, NULL, field, "%s", err->msg[0] ? err->msg : mp_strerror(err->code));
}

/* ---------------------------------------------------------------------------------------------------------------
 * URL decoding and query parameters */

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

long mp_url_decode(const char *s, size_t n, char *out, int plus_space) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n) return -1;
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            ch = (char)(hi * 16 + lo);
            if (ch == 0) return -1;
            i += 2;
        } else if (ch == '+' && plus_space) {
            ch = ' ';
        } else if (ch == 0) {
            return -1;
        }
        out[o++] = ch;
    }
    out[o] = 0;
    return (long)o;
}

/* The identity unescaper: MHD hands the raw path and query values to the handlers, which decode them once
 * themselves (so "%2F" inside an id is never mistaken for a path separator). */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s) {
    (void)cls;
    (void)c;
    return strlen(s);
}

/* A decoded id (path segment) in buf (cap > MP_MAX_ID_BYTES * 3). Returns 0, or the HTTP status of an error
 * already described in *why. */
static int decode_id(const char *raw, size_t n, char *buf, size_t cap, size_t *len, const char **why) {
    if (n >= cap) {
        *why = "id is longer than 256 bytes";
        return 400;
    }
    long d = mp_url_decode(raw, n, buf, 0);
    if (d < 0) {
        *why = "id has a bad percent-escape or a NUL byte";
        return 400;
    }
    if (d == 0) {
        *why = "id is empty";
        return 400;
    }
    if (d > MP_MAX_ID_BYTES) {
        *why = "id is longer than 256 bytes";
        return 400;
    }
    if (!mp_utf8_valid(buf, (size_t)d, NULL)) {
        *why = "id is not valid UTF-8";
        return 400;
    }
    *len = (size_t)d;
    return 0;
}

typedef struct qcheck {
    const char *const *allowed;
    const char *bad; /* first unknown parameter (points into MHD's memory) */
} qcheck;

static enum MHD_Result check_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    (void)value;
    qcheck *q = cls;
    for (const char *const *a = q->allowed; *a; a++)
        if (!strcmp(*a, key)) return MHD_YES;
    q->bad = key;
    return MHD_NO;
}

/* Decoded query parameter `name` into buf, or NULL if absent. *bad set when it does not decode. */
static const char *qarg(struct MHD_Connection *c, const char *name, char *buf, size_t cap, int *bad) {
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    if (!v) return NULL;
    size_t n = strlen(v);
    if (n >= cap || mp_url_decode(v, n, buf, 1) < 0 || !mp_utf8_valid(buf, strlen(buf), NULL)) {
        *bad = 1;
        return NULL;
    }
    return buf;
}

/* Integer query parameter in [lo, hi]; absent -> def. Returns 0 or 400 (message in why). */
static int qint(struct MHD_Connection *c, const char *name, long lo, long hi, long def, long *out, char *why,
                size_t why_cap) {
    char buf[64];
    int bad = 0;
    const char *v = qarg(c, name, buf, sizeof buf, &bad);
    *out = def;
    if (!v && !bad) return 0;
    char *end = NULL;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (bad || !*v || *end || errno || x < lo || x > hi) {
        snprintf(why, why_cap, "query parameter `%s` must be an integer from %ld to %ld", name, lo, hi);
        return 400;
    }
    *out = x;
    return 0;
}

static int qbool(struct MHD_Connection *c, const char *name, int *out, char *why, size_t why_cap) {
    char buf[16];
    int bad = 0;
    const char *v = qarg(c, name, buf, sizeof buf, &bad);
    *out = 0;
    if (!v && !bad) return 0;
    if (!bad && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !*v)) {
        *out = 1;
        return 0;
    }
    if (!bad && (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no"))) return 0;
    snprintf(why, why_cap, "query parameter `%s` must be 1/true or 0/false", name);
    return 400;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Handlers */

typedef struct hctx {
    mp_server *srv;
    mp_live *live;
    struct MHD_Connection *c;
    req *r;
    const char *seg; /* captured path segment, decoded */
    size_t seg_len;
    const char *content_type;
} hctx;

static void write_list_items(jbuf *b, const mp_live_list *l, int with_reason) {
    jb_cstr(b, "\"items\":[");
    for (size_t i = 0; i < l->n; i++) {
        const mp_live_item *it = &l->items[i];
        if (i) jb_raw(b, ",", 1);
        jb_cstr(b, "{\"item\":");
        jb_cstr_json(b, it->item);
        jb_cstr(b, ",\"title\":");
        jb_cstr_json(b, it->title);
        jb_cstr(b, ",\"category\":");
        jb_cstr_json(b, it->category);
        jb_cstr(b, ",\"score\":");
        jb_f32(b, it->score);
        if (with_reason) {
            jb_cstr(b, ",\"reason\":");
            jb_cstr_json(b, it->reason ? it->reason : "");
        }
        jb_raw(b, "}", 1);
    }
    jb_raw(b, "]", 1);
}

static enum MHD_Result answer_list(hctx *h, const char *user, size_t user_len, const mp_live_list *l, int explain,
                                   long unknown_session) {
    jbuf b;
    jb_init(&b);
    jb_cstr(&b, "{\"user\":");
    jb_str(&b, user, user_len);
    jb_cstr(&b, ",\"model\":");
    jb_cstr_json(&b, l->model);
    jb_cstr(&b, ",\"model_version\":");
    jb_u64(&b, l->model_version);
    jb_cstr(&b, ",\"fallback\":");
    jb_bool(&b, l->fallback);
    jb_cstr(&b, ",\"history\":");
    jb_u64(&b, l->n_history);
    if (unknown_session >= 0) {
        jb_cstr(&b, ",\"unknown_items\":");
        jb_u64(&b, (uint64_t)unknown_session);
    }
    jb_raw(&b, ",", 1);
    write_list_items(&b, l, explain);
    jb_raw(&b, "}", 1);
    return send_json(h->c, h->r, 200, &b);
}

/* Splits a comma-separated list of ids (decoded text in buf, modified) into ids[] (at most cap). */
static size_t split_ids(char *buf, const char **ids, size_t cap) {
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t && n < cap; t = strtok_r(NULL, ",", &save))
        if (*t) ids[n++] = t;
    return n;
}

#define MAX_EXCLUDE 1000

static enum MHD_Result h_recommend_get(hctx *h) {
    char why[256];
    long n, offset;
    int explain, include_seen;
    const mp_serve_config *cfg = h->srv->cfg;
    if (qint(h->c, "n", 1, (long)cfg->max_n, 10, &n, why, sizeof why))
        return send_error(h->c, h->r, 400, NULL, "n", "%s", why);
    if (qint(h->c, "offset", 0, 1000000, 0, &offset, why, sizeof why))
        return send_error(h->c, h->r, 400, NULL, "offset", "%s", why);
    if (qbool(h->c, "explain", &explain, why, sizeof why))
        return send_error(h->c, h->r, 400, NULL, "explain", "%s", why);
    if (qbool(h->c, "include_seen", &include_seen, why, sizeof why))
        return send_error(h->c, h->r, 400, NULL, "include_seen", "%s", why);
    char catbuf[1024], exbuf[64 * 1024];
    int bad = 0;
    const char *category = qarg(h->c, "category", catbuf, sizeof catbuf, &bad);
    if (bad) return send_error(h->c, h->r, 400, NULL, "category", "query parameter `category` is not valid text");
    const char *ex = qarg(h->c, "exclude", exbuf, sizeof exbuf, &bad);
    if (bad) return send_error(h->c, h->r, 400, NULL, "exclude", "query parameter `exclude` is not valid text");
    const char *ids[MAX_EXCLUDE];
    size_t n_ex = ex ? split_ids(exbuf, ids, MAX_EXCLUDE) : 0;
    mp_live_query q = {0};
    q.user = h->seg;
    q.user_len = h->seg_len;
    q.n = (size_t)n;
    q.offset = (size_t)offset;
    q.category = category && *category ? category : NULL;
    q.exclude = ids;
    q.n_exclude = n_ex;
    q.explain = explain;
    q.include_seen = include_seen;
    mp_live_list l = {0};
    mp_error err;
    mp_error_clear(&err);
    if (mp_live_recommend(h->live, &q, &l, NULL, &err) != MP_OK) {
        mp_live_list_free(&l);
        return send_mp_error(h->c, h->r, &err, err.code == MP_ENOTFOUND ? "user" : NULL);
    }
    enum MHD_Result rc = answer_list(h, h->seg, h->seg_len, &l, explain, -1);
    mp_live_list_free(&l);
    return rc;
}

/* Reads a JSON array of strings (ids) into a new array of NUL-terminated copies stored in `store` (a jbuf used as
 * an arena; offsets first, pointers fixed at the end). */
typedef struct idlist {
    char **ids;
    size_t n, cap;
} idlist;

static void idlist_free(idlist *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->ids[i]);
    free(l->ids);
    memset(l, 0, sizeof *l);
}

static int idlist_push(idlist *l, const char *s, size_t n) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **p = realloc(l->ids, cap * sizeof *p);
        if (!p) return MP_ENOMEM;
        l->ids = p;
        l->cap = cap;
    }
    char *d = malloc(n + 1);
    if (!d) return MP_ENOMEM;
    memcpy(d, s, n);
    d[n] = 0;
    l->ids[l->n++] = d;
    return MP_OK;
}

/* Parses an array of id strings at the cursor. Returns 0 or an HTTP status with why filled. */
static int parse_id_array(mp_json_cur *cur, char **scratch, idlist *out, size_t max, const char *field, char *why,
                          size_t cap) {
    if (mp_json_peek(cur) != MP_JSON_ARRAY) {
        snprintf(why, cap, "field `%s` must be an array of item ids", field);
        return 400;
    }
    if (mp_json_array_begin(cur) != MP_OK) goto bad_json;
    for (;;) {
        int done;
        if (mp_json_array_next(cur, &done) != MP_OK) goto bad_json;
        if (done) break;
        mp_str s;
        if (mp_json_peek(cur) != MP_JSON_STRING) {
            snprintf(why, cap, "field `%s`: every element must be a string (an item id)", field);
            return 400;
        }
        if (mp_json_string(cur, scratch, &s) != MP_OK) goto bad_json;
        if (s.len == 0 || s.len > MP_MAX_ID_BYTES) {
            snprintf(why, cap, "field `%s`: ids must be 1 to 256 bytes", field);
            return 400;
        }
        if (out->n >= max) {
            snprintf(why, cap, "field `%s`: at most %zu ids", field, max);
            return 400;
        }
        if (idlist_push(out, s.ptr, s.len)) {
            snprintf(why, cap, "out of memory");
            return 500;
        }
    }
    return 0;
bad_json:
    snprintf(why, cap, "malformed JSON in field `%s`: %s", field, cur->why ? cur->why : "syntax error");
    return 400;
}

static enum MHD_Result h_recommend_post(hctx *h) {
    const mp_serve_config *cfg = h->srv->cfg;
    req *r = h->r;
    if (r->len == 0) return send_error(h->c, r, 400, NULL, NULL, "body: expected a JSON object {\"items\": [...]}");
    const char *why_json = NULL;
    if (mp_json_validate(r->body, r->len, &why_json) != MP_OK)
        return send_error(h->c, r, 400, NULL, NULL, "body: malformed JSON: %s", why_json ? why_json : "syntax error");
    char *scratch_mem = malloc(r->len + 1);
    if (!scratch_mem) return send_error(h->c, r, 500, NULL, NULL, "out of memory");
    char *scratch = scratch_mem;
    mp_json_cur cur;
    mp_json_init(&cur, r->body, r->len);
    idlist items = {0}, exclude = {0};
    long n = 10, offset = 0;
    int explain = 0, status = 0, have_items = 0;
    char why[512] = "", field[32] = "", category[1024] = "";
    if (mp_json_peek(&cur) != MP_JSON_OBJECT) {
        status = 400;
        snprintf(why, sizeof why, "body: expected a JSON object {\"items\": [...]}");
        goto done;
    }
    mp_json_object_begin(&cur);
    for (;;) {
        mp_str key;
        int done;
        if (mp_json_object_next(&cur, &scratch, &key, &done) != MP_OK) {
            status = 400;
            snprintf(why, sizeof why, "body: malformed JSON");
            goto done;
        }
        if (done) break;
        snprintf(field, sizeof field, "%.*s", (int)(key.len < 31 ? key.len : 31), key.ptr);
        if (!strcmp(field, "items")) {
            have_items = 1;
            status = parse_id_array(&cur, &scratch, &items, 10000, "items", why, sizeof why);
        } else if (!strcmp(field, "exclude")) {
            status = parse_id_array(&cur, &scratch, &exclude, MAX_EXCLUDE, "exclude", why, sizeof why);
        } else if (!strcmp(field, "n") || !strcmp(field, "offset")) {
            double v;
            int is_int;
            mp_str raw;
            long hi = !strcmp(field, "n") ? (long)cfg->max_n : 1000000, lo = !strcmp(field, "n") ? 1 : 0;
            if (mp_json_peek(&cur) != MP_JSON_NUMBER || mp_json_number(&cur, &raw, &is_int, &v) != MP_OK || !is_int ||
                v < (double)lo || v > (double)hi) {
                status = 400;
                snprintf(why, sizeof why, "field `%s` must be an integer from %ld to %ld", field, lo, hi);
            } else if (field[0] == 'n') {
                n = (long)v;
            } else {
                offset = (long)v;
            }
        } else if (!strcmp(field, "explain")) {
            if (mp_json_peek(&cur) != MP_JSON_BOOL || mp_json_bool(&cur, &explain) != MP_OK) {
                status = 400;
                snprintf(why, sizeof why, "field `explain` must be true or false");
            }
        } else if (!strcmp(field, "category")) {
            mp_json_type t = mp_json_peek(&cur);
            mp_str s;
            if (t == MP_JSON_NULL) {
                mp_json_null(&cur);
            } else if (t != MP_JSON_STRING || mp_json_string(&cur, &scratch, &s) != MP_OK || s.len >= sizeof category) {
                status = 400;
                snprintf(why, sizeof why, "field `category` must be a string (or null)");
            } else {
                memcpy(category, s.ptr, s.len);
                category[s.len] = 0;
            }
        } else {
            status = 400;
            snprintf(why, sizeof why,
                     "unknown field `%s` (known: items, n, offset, category, exclude, explain)", field);
        }
        if (status) goto done;
    }
    if (!have_items) {
        status = 400;
        snprintf(field, sizeof field, "items");
        snprintf(why, sizeof why, "missing required field `items` (the session's recent item ids, oldest first)");
        goto done;
    }
    mp_live_query q = {0};
    q.session = (const char *const *)items.ids;
    q.n_session = items.n;
    q.n = (size_t)n;
    q.offset = (size_t)offset;
    q.category = category[0] ? category : NULL;
    q.exclude = (const char *const *)exclude.ids;
    q.n_exclude = exclude.n;
    q.explain = explain;
    mp_live_list l = {0};
    mp_error err;
    mp_error_clear(&err);
    size_t unknown = 0;
    enum MHD_Result rc;
    if (mp_live_recommend(h->live, &q, &l, &unknown, &err) != MP_OK) rc = send_mp_error(h->c, r, &err, NULL);
    else rc = answer_list(h, NULL, 0, &l, explain, (long)unknown);
    mp_live_list_free(&l);
    idlist_free(&items);
    idlist_free(&exclude);
    free(scratch_mem);
    return rc;
done:
    idlist_free(&items);
    idlist_free(&exclude);
    free(scratch_mem);
    return send_error(h->c, r, status, NULL, field[0] ? field : NULL, "%s", why);
}

static enum MHD_Result h_similar(hctx *h) {
    char why[256];
    long n;
    if (qint(h->c, "n", 1, (long)h->srv->cfg->max_n, 10, &n, why, sizeof why))
        return send_error(h->c, h->r, 400, NULL, "n", "%s", why);
    mp_live_list l = {0};
    mp_error err;
    mp_error_clear(&err);
    if (mp_live_similar(h->live, h->seg, h->seg_len, (size_t)n, &l, &err) != MP_OK) {
        mp_live_list_free(&l);
        return send_mp_error(h->c, h->r, &err, err.code == MP_ENOTFOUND ? "item" : NULL);
    }
    jbuf b;
    jb_init(&b);
    jb_cstr(&b, "{\"item\":");
    jb_str(&b, h->seg, h->seg_len);
    jb_cstr(&b, ",\"model\":");
    jb_cstr_json(&b, l.model);
    jb_raw(&b, ",", 1);
    write_list_items(&b, &l, 0);
    jb_raw(&b, "}", 1);
    mp_live_list_free(&l);
    return send_json(h->c, h->r, 200, &b);
}

static enum MHD_Result h_popular(hctx *h) {
    char why[256];
    long n, offset;
    if (qint(h->c, "n", 1, (long)h->srv->cfg->max_n, 10, &n, why, sizeof why))
        return send_error(h->c, h->r, 400, NULL, "n", "%s", why);
    if (qint(h->c, "offset", 0, 1000000, 0, &offset, why, sizeof why))
        return send_error(h->c, h->r, 400, NULL, "offset", "%s", why);
    char catbuf[1024];
    int bad = 0;
    const char *category = qarg(h->c, "category", catbuf, sizeof catbuf, &bad);
    if (bad) return send_error(h->c, h->r, 400, NULL, "category", "query parameter `category` is not valid text");
    if (category && !*category) category = NULL;
    mp_live_list l = {0};
    mp_error err;
    mp_error_clear(&err);
    if (mp_live_popular(h->live, category, (size_t)n, (size_t)offset, &l, &err) != MP_OK) {
        mp_live_list_free(&l);
        return send_mp_error(h->c, h->r, &err, NULL);
    }
    jbuf b;
    jb_init(&b);
    jb_cstr(&b, "{\"category\":");
    jb_cstr_json(&b, category);
    jb_raw(&b, ",", 1);
    write_list_items(&b, &l, 0);
    jb_raw(&b, "}", 1);
    mp_live_list_free(&l);
    return send_json(h->c, h->r, 200, &b);
}

static enum MHD_Result h_history(hctx *h) {
    char why[256];
    long n;
    if (qint(h->c, "n", 1, 100000, 50, &n, why, sizeof why)) return send_error(h->c, h->r, 400, NULL, "n", "%s", why);
    mp_live_history hist = {0};
    mp_error err;
    mp_error_clear(&err);
    if (mp_live_history_get(h->live, h->seg, h->seg_len, (size_t)n, &hist, &err) != MP_OK) {
        mp_live_history_free(&hist);
        return send_mp_error(h->c, h->r, &err, err.code == MP_ENOTFOUND ? "user" : NULL);
    }
    jbuf b;
    jb_init(&b);
    jb_cstr(&b, "{\"user\":");
    jb_str(&b, h->seg, h->seg_len);
    jb_cstr(&b, ",\"total\":");
    jb_u64(&b, hist.total);
    jb_cstr(&b, ",\"events\":[");
    for (size_t i = 0; i < hist.n; i++) {
        const mp_live_event *e = &hist.events[i];
        if (i) jb_raw(&b, ",", 1);
        jb_cstr(&b, "{\"item\":");
        jb_cstr_json(&b, e->item);
        jb_cstr(&b, ",\"type\":");
        jb_cstr_json(&b, e->type);
        jb_cstr(&b, ",\"ts\":");
        jb_i64(&b, e->ts);
        if (e->has_value) {
            jb_cstr(&b, ",\"value\":");
            jb_f64(&b, e->value);
        }
        jb_raw(&b, "}", 1);
    }
    jb_cstr(&b, "]}");
    mp_live_history_free(&hist);
    return send_json(h->c, h->r, 200, &b);
}

static int is_ndjson(const char *ct) {
    return ct && (!strncasecmp(ct, "application/x-ndjson", 20) || !strncasecmp(ct, "application/jsonl", 17) ||
                  !strncasecmp(ct, "application/x-jsonlines", 23));
}

/* Decodes the body into records of `kind`; on a problem answers (400 / 413 / 422) and returns 0 with *answered. */
static int decode_body(hctx *h, mp_record_kind kind, mp_decoded *d, enum MHD_Result *answered) {
    const mp_serve_config *cfg = h->srv->cfg;
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_decode_records(d, kind, h->r->body ? h->r->body : "", h->r->len, is_ndjson(h->content_type),
                               (size_t)cfg->max_batch, 20, (int64_t)time(NULL), &err);
    if (rc == MP_ERANGE) {
        *answered = send_error(h->c, h->r, 413, NULL, NULL, "%s", err.msg);
        return 0;
    }
    if (rc != MP_OK) {
        *answered = send_error(h->c, h->r, rc == MP_ENOMEM ? 500 : 400, NULL, NULL, "%s", err.msg);
        return 0;
    }
    if (d->n_total == 0) {
        *answered = send_error(h->c, h->r, 400, NULL, NULL, "body: no records (send a JSON array of records)");
        return 0;
    }
    if (d->n_bad) {
        jbuf b;
        jb_init(&b);
        jb_cstr(&b, "{\"error\":");
        char msg[700];
        snprintf(msg, sizeof msg, "%zu of %zu records are invalid; nothing was written. First: %s", d->n_bad,
                 d->n_total, d->n_errors ? d->errors[0].message : "");
        jb_error_object(&b, 422, NULL, msg, d->n_errors ? d->errors[0].field : NULL);
        jb_cstr(&b, ",\"errors\":[");
        for (size_t i = 0; i < d->n_errors; i++) {
            if (i) jb_raw(&b, ",", 1);
            jb_cstr(&b, "{\"index\":");
            jb_u64(&b, d->errors[i].index);
            jb_cstr(&b, ",\"message\":");
            jb_cstr_json(&b, d->errors[i].message);
            jb_cstr(&b, ",\"field\":");
            if (d->errors[i].field[0]) jb_cstr_json(&b, d->errors[i].field);
            else jb_cstr(&b, "null");
            jb_raw(&b, "}", 1);
        }
        jb_cstr(&b, "]}");
        *answered = send_json(h->c, h->r, 422, &b);
        return 0;
    }
    return 1;
}

static enum MHD_Result answer_write(hctx *h, const mp_live_write_result *res, int events) {
    jbuf b;
    jb_init(&b);
    jb_cstr(&b, "{\"accepted\":");
    jb_u64(&b, res->accepted);
    jb_cstr(&b, ",\"inserted\":");
    jb_u64(&b, res->inserted);
    if (events) {
        jb_cstr(&b, ",\"duplicates\":");
        jb_u64(&b, res->duplicates);
        jb_cstr(&b, ",\"new_users\":");
        jb_u64(&b, res->new_users);
        jb_cstr(&b, ",\"new_items\":");
        jb_u64(&b, res->new_items);
    }
    jb_raw(&b, "}", 1);
    return send_json(h->c, h->r, 200, &b);
}

static enum MHD_Result h_events(hctx *h) {
    mp_decoded d = {0};
    enum MHD_Result answered = MHD_YES;
    if (!decode_body(h, MP_KIND_EVENTS, &d, &answered)) {
        mp_metrics_add_events(h->srv->metrics, 0, 0, d.n_bad);
        mp_decoded_free(&d);
        return answered;
    }
    mp_event *ev = malloc((d.n ? d.n : 1) * sizeof *ev);
    if (!ev) {
        mp_decoded_free(&d);
        return send_error(h->c, h->r, 500, NULL, NULL, "out of memory");
    }
    for (size_t i = 0; i < d.n; i++)
        ev[i] = d.records[i].event;
    mp_live_write_result res = {0};
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_live_add_events(h->live, ev, d.n, &res, &err);
    free(ev);
    mp_decoded_free(&d);
    if (rc != MP_OK) return send_mp_error(h->c, h->r, &err, NULL);
    mp_metrics_add_events(h->srv->metrics, res.accepted, res.duplicates, 0);
    return answer_write(h, &res, 1);
}

static enum MHD_Result h_items(hctx *h) {
    mp_decoded d = {0};
    enum MHD_Result answered = MHD_YES;
    if (!decode_body(h, MP_KIND_ITEMS, &d, &answered)) {
        mp_decoded_free(&d);
        return answered;
    }
    if (h->seg) { /* PUT /v1/items/{id}: one item, whose id (if given) must be the path's */
        if (d.n != 1) {
            mp_decoded_free(&d);
            return send_error(h->c, h->r, 400, NULL, NULL, "PUT /v1/items/{id} takes exactly one item object");
        }
        mp_str id = d.records[0].item.id;
        if (id.len != h->seg_len || memcmp(id.ptr, h->seg, id.len)) {
            mp_decoded_free(&d);
            return send_error(h->c, h->r, 400, NULL, "id", "the body's `id` differs from the id in the path");
        }
    }
    mp_item *items = malloc((d.n ? d.n : 1) * sizeof *items);
    if (!items) {
        mp_decoded_free(&d);
        return send_error(h->c, h->r, 500, NULL, NULL, "out of memory");
    }
    for (size_t i = 0; i < d.n; i++)
        items[i] = d.records[i].item;
    mp_live_write_result res = {0};
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_live_put_items(h->live, items, d.n, &res, &err);
    free(items);
    mp_decoded_free(&d);
    if (rc != MP_OK) return send_mp_error(h->c, h->r, &err, NULL);
    return answer_write(h, &res, 0);
}

/* PUT /v1/items/{id} with a body that leaves out "id": the path's id is added. */
static enum MHD_Result h_item_put(hctx *h) {
    req *r = h->r;
    mp_json_cur cur;
    mp_json_init(&cur, r->body ? r->body : "", r->len);
    int has_id = 0;
    if (mp_json_peek(&cur) == MP_JSON_OBJECT) {
        char *scratch_mem = malloc(r->len + 1), *scratch = scratch_mem;
        if (!scratch_mem) return send_error(h->c, r, 500, NULL, NULL, "out of memory");
        mp_json_object_begin(&cur);
        for (;;) {
            mp_str key;
            int done;
            if (mp_json_object_next(&cur, &scratch, &key, &done) != MP_OK || done) break;
            if (key.len == 2 && !memcmp(key.ptr, "id", 2)) has_id = 1;
            if (mp_json_skip(&cur, NULL) != MP_OK) break;
        }
        free(scratch_mem);
        if (!has_id) { /* rewrite as {"id":"...", <rest>} */
            const char *open = memchr(r->body, '{', r->len);
            size_t rest = r->len - (size_t)(open + 1 - r->body);
            jbuf b;
            jb_init(&b);
            jb_cstr(&b, "{\"id\":");
            jb_str(&b, h->seg, h->seg_len);
            const char *p = open + 1;
            size_t k = 0;
            while (k < rest && (p[k] == ' ' || p[k] == '\n' || p[k] == '\t' || p[k] == '\r'))
                k++;
            if (k < rest && p[k] != '}') jb_raw(&b, ",", 1);
            jb_raw(&b, p, rest);
            size_t len;
            char *nb = jb_take(&b, &len);
            if (!nb) return send_error(h->c, r, 500, NULL, NULL, "out of memory");
            free(r->body);
            r->body = nb;
            r->len = len;
            r->cap = len + 1;
        }
    }
    return h_items(h);
}

static enum MHD_Result h_item_delete(hctx *h) {
    mp_error err;
    mp_error_clear(&err);
    if (mp_live_set_item_available(h->live, h->seg, h->seg_len, 0, &err) != MP_OK)
        return send_mp_error(h->c, h->r, &err, err.code == MP_ENOTFOUND ? "item" : NULL);
    jbuf b;
    jb_init(&b);
    jb_cstr(&b, "{\"item\":");
    jb_str(&b, h->seg, h->seg_len);
    jb_cstr(&b, ",\"available\":false}");
    return send_json(h->c, h->r, 200, &b);
}

static enum MHD_Result h_users(hctx *h) {
    mp_decoded d = {0};
    enum MHD_Result answered = MHD_YES;
    if (!decode_body(h, MP_KIND_USERS, &d, &answered)) {
        mp_decoded_free(&d);
        return answered;
    }
    mp_user *users = malloc((d.n ? d.n : 1) * sizeof *users);
    if (!users) {
        mp_decoded_free(&d);
        return send_error(h->c, h->r, 500, NULL, NULL, "out of memory");
    }
    for (size_t i = 0; i < d.n; i++)
        users[i] = d.records[i].user;
    mp_live_write_result res = {0};
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_live_put_users(h->live, users, d.n, &res, &err);
    free(users);
    mp_decoded_free(&d);
    if (rc != MP_OK) return send_mp_error(h->c, h->r, &err, NULL);
    return answer_write(h, &res, 0);
}

static enum MHD_Result h_user_delete(hctx *h) {
    mp_error err;
    mp_error_clear(&err);
    uint64_t n = 0;
    if (mp_live_forget_user(h->live, h->seg, h->seg_len, &n, &err) != MP_OK)
        return send_mp_error(h->c, h->r, &err, err.code == MP_ENOTFOUND ? "user" : NULL);
    jbuf b;
    jb_init(&b);
    jb_cstr(&b, "{\"user\":");
    jb_str(&b, h->seg, h->seg_len);
    jb_cstr(&b, ",\"deleted_events\":");
    jb_u64(&b, n);
    jb_raw(&b, "}", 1);
    return send_json(h->c, h->r, 200, &b);
}

static void write_model_info(jbuf *b, const mp_live_model_info *mi) {
    jb_cstr(b, "{\"name\":");
    jb_cstr_json(b, mi->name);
    jb_cstr(b, ",\"version\":");
    jb_u64(b, mi->version);
    jb_cstr(b, ",\"path\":");
    jb_cstr_json(b, mi->path);
    jb_cstr(b, ",\"file_mtime\":");
    jb_i64(b, mi->file_mtime);
    jb_printf(b, ",\"checksum\":\"%016llx\"", (unsigned long long)mi->checksum);
    jb_cstr(b, ",\"loaded_at\":");
    jb_i64(b, mi->loaded_at);
    jb_cstr(b, ",\"items\":");
    jb_u64(b, mi->n_items);
    jb_cstr(b, ",\"index\":");
    jb_bool(b, mi->has_index);
    jb_cstr(b, ",\"index_seconds\":");
    jb_f64(b, mi->index_seconds);
    jb_cstr(b, ",\"meta\":");
    if (mi->meta_json && mp_json_validate(mi->meta_json, strlen(mi->meta_json), NULL) == MP_OK)
        jb_cstr(b, mi->meta_json);
    else jb_cstr(b, "null");
    jb_raw(b, "}", 1);
}

static enum MHD_Result answer_model(hctx *h, int wrap) {
    mp_live_model_info mi;
    mp_error err;
    mp_error_clear(&err);
    if (mp_live_model_info_get(h->live, &mi, &err) != MP_OK) return send_mp_error(h->c, h->r, &err, NULL);
    jbuf b;
    jb_init(&b);
    if (wrap) jb_cstr(&b, "{\"model\":");
    write_model_info(&b, &mi);
    if (wrap) jb_raw(&b, "}", 1);
    mp_live_model_info_free(&mi);
    return send_json(h->c, h->r, 200, &b);
}

static enum MHD_Result h_reload(hctx *h) {
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_live_reload(h->live, NULL, &err);
    mp_server_note_model(h->srv, rc == MP_OK);
    if (rc != MP_OK)
        return send_error(h->c, h->r, 500, "reload_failed", NULL, "reload failed, the previous model keeps serving: %s",
                          err.msg);
    return answer_model(h, 1);
}

static enum MHD_Result h_stats(hctx *h) {
    mp_live_stats st;
    mp_live_stats_get(h->live, &st);
    jbuf b;
    jb_init(&b);
    jb_printf(&b,
              "{\"users\":%llu,\"items\":%llu,\"available_items\":%llu,\"events\":%llu,\"categories\":%llu,"
              "\"per_type\":{",
              (unsigned long long)st.n_users, (unsigned long long)st.n_items, (unsigned long long)st.n_available_items,
              (unsigned long long)st.n_events, (unsigned long long)st.n_categories);
    for (int t = 0; t < MP_EV_NTYPES; t++)
        jb_printf(&b, "%s\"%s\":%llu", t ? "," : "", mp_event_type_name(t), (unsigned long long)st.per_type[t]);
    jb_printf(&b,
              "},\"events_ingested\":%llu,\"events_duplicates\":%llu,\"users_forgotten\":%llu,\"ts_min\":%lld,"
              "\"ts_max\":%lld,\"uptime_seconds\":%lld,\"event_rate\":[",
              (unsigned long long)st.events_ingested, (unsigned long long)st.events_duplicates,
              (unsigned long long)st.users_forgotten, (long long)st.ts_min, (long long)st.ts_max,
              (long long)(time(NULL) - h->srv->started));
    double rate[120];
    size_t nr = mp_metrics_event_rate(h->srv->metrics, rate, 120);
    for (size_t i = 0; i < nr; i++) {
        if (i) jb_raw(&b, ",", 1);
        jb_f64(&b, rate[i]);
    }
    jb_cstr(&b, "]}");
    return send_json(h->c, h->r, 200, &b);
}

static enum MHD_Result h_metrics(hctx *h) {
    char *text = NULL;
    size_t len = 0;
    mp_error err;
    mp_error_clear(&err);
    mp_metrics_set_connections(h->srv->metrics, atomic_load(&h->srv->open_connections));
    if (mp_metrics_render(h->srv->metrics, &text, &len, &err) != MP_OK) return send_mp_error(h->c, h->r, &err, NULL);
    return send_text(h->c, h->r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, 1);
}

static enum MHD_Result h_dashboard(hctx *h, const char *path) {
    mp_asset a;
    if (!h->srv->cfg->dashboard || !mp_asset_find(*path ? path : "index.html", &a))
        return send_error(h->c, h->r, 404, NULL, NULL, "no such page");
    return send_text(h->c, h->r, 200, a.content_type, (char *)a.data, a.len, 0);
}

/* ---------------------------------------------------------------------------------------------------------------
 * Dispatch */

static int method_bit(const char *m) {
    if (!strcmp(m, "GET")) return M_GET;
    if (!strcmp(m, "POST")) return M_POST;
    if (!strcmp(m, "PUT")) return M_PUT;
    if (!strcmp(m, "DELETE")) return M_DELETE;
    if (!strcmp(m, "HEAD")) return M_HEAD;
    return 0;
}

/* Matches path (without the leading '/') against pattern; on a match with a star segment, cap and cap_len get it. */
static int match(const char *pattern, const char *path, const char **cap, size_t *cap_len) {
    const char *p = pattern, *s = path;
    for (;;) {
        const char *pe = strchr(p, '/'), *se = strchr(s, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p), sl = se ? (size_t)(se - s) : strlen(s);
        if (pl == 1 && *p == '*') {
            if (sl == 0) return 0;
            *cap = s;
            *cap_len = sl;
        } else if (pl != sl || memcmp(p, s, pl)) {
            return 0;
        }
        if (!pe || !se) return !pe && !se;
        p = pe + 1;
        s = se + 1;
    }
}

static int auth_level(const mp_serve_config *cfg, struct MHD_Connection *c, int *presented) {
    if (cfg->n_read_keys == 0 && cfg->n_write_keys == 0) return AUTH_WRITE; /* no keys configured: open */
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!key && authz && !strncasecmp(authz, "Bearer ", 7)) {
        key = authz + 7;
        while (*key == ' ')
            key++;
    }
    *presented = key != NULL;
    if (!key) return AUTH_NONE;
    size_t len = strlen(key);
    int level = AUTH_NONE;
    /* every configured key is compared (no early exit), each in constant time */
    for (size_t i = 0; i < cfg->n_write_keys; i++)
        if (mp_serve_key_equal(key, len, cfg->write_keys[i])) level = AUTH_WRITE;
    for (size_t i = 0; i < cfg->n_read_keys; i++)
        if (mp_serve_key_equal(key, len, cfg->read_keys[i]) && level == AUTH_NONE) level = AUTH_READ;
    return level;
}

static enum MHD_Result dispatch(mp_server *srv, struct MHD_Connection *c, req *r, const char *url,
                                const char *method) {
    const mp_serve_config *cfg = srv->cfg;
    int mbit = method_bit(method);
    const char *path = url[0] == '/' ? url + 1 : url;
    const route *found = NULL;
    const char *cap = NULL;
    size_t cap_len = 0;
    int allowed = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const char *cp = NULL;
        size_t cl = 0;
        if (!match(routes[i].pattern, path, &cp, &cl)) continue;
        allowed |= routes[i].methods;
        if (routes[i].methods & mbit) {
            found = &routes[i];
            cap = cp;
            cap_len = cl;
            break;
        }
    }
    if (!found) {
        r->endpoint = EP_OTHER;
        if (allowed) {
            char allow[64] = "";
            static const char *const names[] = {"GET", "POST", "PUT", "DELETE", "HEAD"};
            for (int b = 0; b < 5; b++)
                if (allowed & (1 << b)) {
                    if (allow[0]) strcat(allow, ", ");
                    strcat(allow, names[b]);
                }
            return send_error(c, r, 405, NULL, NULL, "method %s is not allowed on %s (allowed: %s)", method, url,
                              allow);
        }
        return send_error(c, r, 404, NULL, NULL, "no such endpoint: %s %s (see docs/api.md)", method, url);
    }
    r->endpoint = found->endpoint;
    if (found->auth != AUTH_NONE) {
        int presented = 0, level = auth_level(cfg, c, &presented);
        if (level == AUTH_NONE)
            return send_error(c, r, 401, NULL, NULL, "%s",
                              presented ? "API key not accepted" : "an API key is required (X-API-Key or Bearer)");
        if (found->auth == AUTH_WRITE && level != AUTH_WRITE)
            return send_error(c, r, 403, NULL, NULL, "this API key may only read; %s %s needs a write key", method,
                              url);
    }
    if (r->too_big)
        return send_error(c, r, 413, NULL, NULL, "request body is larger than max_body (%llu bytes)",
                          (unsigned long long)cfg->max_body);
    if (r->timed_out)
        return send_error(c, r, 408, "timeout", NULL, "request body took longer than request_timeout (%lld ms)",
                          (long long)cfg->request_timeout);
    switch (found->endpoint) {
    case EP_HEALTHZ: {
        static const char ok[] = "{\"status\":\"ok\"}\n";
        return send_text(c, r, 200, "application/json; charset=utf-8", (char *)ok, sizeof ok - 1, 0);
    }
    case EP_DASHBOARD: {
        hctx h = {srv, NULL, c, r, NULL, 0, NULL};
        return h_dashboard(&h, path);
    }
    default: break;
    }
    mp_live *live = atomic_load(&srv->live);
    if (found->endpoint == EP_READYZ) {
        if (!live) return send_error(c, r, 503, "not_ready", NULL, "loading the store and the model");
        mp_live_model_info mi;
        mp_error err;
        mp_error_clear(&err);
        uint64_t version = 0;
        if (mp_live_model_info_get(live, &mi, &err) == MP_OK) {
            version = mi.version;
            mp_live_model_info_free(&mi);
        }
        jbuf b;
        jb_init(&b);
        jb_printf(&b, "{\"status\":\"ready\",\"model_version\":%llu}", (unsigned long long)version);
        return send_json(c, r, 200, &b);
    }
    if (found->endpoint == EP_METRICS) {
        hctx h = {srv, live, c, r, NULL, 0, NULL};
        return h_metrics(&h);
    }
    if (!live) return send_error(c, r, 503, "not_ready", NULL, "the server is still loading the store and the model");

    /* query parameters: only the documented ones */
    static const char *const q_rec[] = {"n", "offset", "category", "exclude", "explain", "include_seen", NULL};
    static const char *const q_n[] = {"n", NULL};
    static const char *const q_pop[] = {"n", "offset", "category", NULL};
    static const char *const q_none[] = {NULL};
    const char *const *qallowed = q_none;
    if (found->endpoint == EP_RECOMMEND_GET) qallowed = q_rec;
    else if (found->endpoint == EP_SIMILAR || found->endpoint == EP_HISTORY) qallowed = q_n;
    else if (found->endpoint == EP_POPULAR) qallowed = q_pop;
    qcheck qc = {qallowed, NULL};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_param, &qc);
    if (qc.bad) {
        char name[80];
        snprintf(name, sizeof name, "%.64s", qc.bad);
        return send_error(c, r, 400, NULL, name, "unknown query parameter `%s`", name);
    }

    char idbuf[MP_MAX_ID_BYTES * 3 + 8];
    hctx h = {srv, live, c, r, NULL, 0, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)};
    if (cap) {
        const char *why = NULL;
        int st = decode_id(cap, cap_len, idbuf, sizeof idbuf, &h.seg_len, &why);
        if (st) {
            const char *f = found->endpoint == EP_SIMILAR || found->endpoint == EP_ITEM_PUT ||
                                    found->endpoint == EP_ITEM_DELETE
                                ? "item"
                                : "user";
            return send_error(c, r, st, NULL, f, "%s", why);
        }
        h.seg = idbuf;
    }
    if ((mbit & (M_POST | M_PUT)) && h.content_type && strncasecmp(h.content_type, "application/json", 16) &&
        !is_ndjson(h.content_type) && strncasecmp(h.content_type, "text/plain", 10) &&
        strncasecmp(h.content_type, "application/x-www-form-urlencoded", 33))
        return send_error(c, r, 415, NULL, NULL,
                          "Content-Type %s is not accepted: send application/json (or application/x-ndjson for "
                          "events)",
                          h.content_type);
    switch (found->endpoint) {
    case EP_RECOMMEND_GET: return h_recommend_get(&h);
    case EP_RECOMMEND_POST: return h_recommend_post(&h);
    case EP_SIMILAR: return h_similar(&h);
    case EP_POPULAR: return h_popular(&h);
    case EP_HISTORY: return h_history(&h);
    case EP_EVENTS: return h_events(&h);
    case EP_ITEMS: return h_items(&h);
    case EP_ITEM_PUT: return h_item_put(&h);
    case EP_ITEM_DELETE: return h_item_delete(&h);
    case EP_USERS: return h_users(&h);
    case EP_USER_DELETE: return h_user_delete(&h);
    case EP_RELOAD: return h_reload(&h);
    case EP_STATS: return h_stats(&h);
    case EP_MODEL: return answer_model(&h, 0);
    default: return send_error(c, r, 404, NULL, NULL, "no such endpoint");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    mp_server *srv = cls;
    const mp_serve_config *cfg = srv->cfg;
    req *r = *con_cls;
    if (!r) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        conn *cn = ci ? (conn *)ci->socket_context : NULL;
        if (cn) atomic_store(&cn->head_since_ns, 0);
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->t0 = now_seconds();
        r->endpoint = EP_OTHER;
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > cfg->max_body) {
            /* answered before the body is read; libmicrohttpd then closes the connection */
            r->endpoint = EP_OTHER;
            return send_error(c, r, 413, NULL, NULL, "request body is larger than max_body (%llu bytes)",
                              (unsigned long long)cfg->max_body);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (cfg->request_timeout > 0 && (now_seconds() - r->t0) * 1000.0 > (double)cfg->request_timeout) {
            r->timed_out = 1; /* a client dribbling its body is answered 408 and cut off */
            return send_error(c, r, 408, "timeout", NULL, "request body took longer than request_timeout (%lld ms)",
                              (long long)cfg->request_timeout);
        }
        if (r->too_big || r->len + n > cfg->max_body) {
            r->too_big = 1;
            return MHD_YES; /* discard; answered 413 at the end */
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n + 1)
                cap *= 2;
            char *p = realloc(r->body, cap);
            if (!p) return MHD_NO;
            r->body = p;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        r->body[r->len] = 0;
        return MHD_YES;
    }
    enum MHD_Result rc = dispatch(srv, c, r, url, method);
    if (cfg->access_log)
        fprintf(stderr, "magpie serve: %s %s -> %d (%.3f ms)\n", method, url, r->status,
                (now_seconds() - r->t0) * 1000.0);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    mp_server *srv = cls;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn *cn = ci ? (conn *)ci->socket_context : NULL;
    if (cn) atomic_store(&cn->head_since_ns, mono_ns()); /* waiting for the next request head */
    req *r = *con_cls;
    if (!r) return;
    int status = r->status ? r->status : (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED || r->timed_out ? 408 : 499);
    mp_metrics_observe(srv->metrics, (size_t)r->endpoint, status, now_seconds() - r->t0);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    mp_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add(&srv->open_connections, 1);
        conn *cn = calloc(1, sizeof *cn);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!cn || !ci) {
            free(cn);
            *socket_context = NULL;
            return;
        }
        cn->fd = ci->connect_fd;
        atomic_init(&cn->head_since_ns, mono_ns());
        pthread_mutex_lock(&srv->conns_mu);
        cn->next = srv->conns;
        if (srv->conns) srv->conns->prev = cn;
        srv->conns = cn;
        pthread_mutex_unlock(&srv->conns_mu);
        *socket_context = cn;
        return;
    }
    atomic_fetch_sub(&srv->open_connections, 1);
    conn *cn = *socket_context;
    if (!cn) return;
    pthread_mutex_lock(&srv->conns_mu); /* the socket is still open here: the watchdog never sees a reused fd */
    if (cn->prev) cn->prev->next = cn->next;
    else srv->conns = cn->next;
    if (cn->next) cn->next->prev = cn->prev;
    pthread_mutex_unlock(&srv->conns_mu);
    free(cn);
    *socket_context = NULL;
}

/* Every 200 ms: a connection that has spent longer than max(request_timeout, idle_timeout) waiting for a complete
 * request head is shut down (an honest idle keep-alive connection is closed by libmicrohttpd at idle_timeout
 * before that; a client sending a byte now and then is not, and would hold its connection for ever). */
static void *watchdog_main(void *arg) {
    mp_server *srv = arg;
    const mp_serve_config *cfg = srv->cfg;
    int64_t limit_ms = cfg->request_timeout > cfg->idle_timeout ? cfg->request_timeout : cfg->idle_timeout;
    while (!atomic_load(&srv->stopping)) {
        struct timespec nap = {0, 200 * 1000 * 1000};
        nanosleep(&nap, NULL);
        if (limit_ms <= 0) continue;
        int64_t now = mono_ns();
        pthread_mutex_lock(&srv->conns_mu);
        for (conn *cn = srv->conns; cn; cn = cn->next) {
            int64_t since = atomic_load(&cn->head_since_ns);
            if (since && (now - since) / 1000000 > limit_ms) {
                shutdown(cn->fd, SHUT_RDWR);
                atomic_store(&cn->head_since_ns, 0);
            }
        }
        pthread_mutex_unlock(&srv->conns_mu);
    }
    return NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    fputs("magpie serve: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* ---------------------------------------------------------------------------------------------------------------
 * Life cycle */

int mp_server_start(mp_server **out, const mp_serve_config *cfg, mp_error *err) {
    *out = NULL;
    mp_server *s = calloc(1, sizeof *s);
    if (!s) return mp_error_set(err, MP_ENOMEM, "out of memory");
    s->cfg = cfg;
    s->started = time(NULL);
    atomic_init(&s->live, NULL);
    atomic_init(&s->open_connections, 0);
    atomic_init(&s->stopping, 0);
    pthread_mutex_init(&s->conns_mu, NULL);
    int rc = mp_metrics_create(&s->metrics, endpoint_names, EP_COUNT, err);
    if (rc) {
        pthread_mutex_destroy(&s->conns_mu);
        free(s);
        return rc;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->listen, &addr.sin_addr) != 1) {
        mp_metrics_destroy(s->metrics);
        free(s);
        return mp_error_set(err, MP_EINVAL, "listen: \"%s\" is not an IPv4 address (e.g. 127.0.0.1 or 0.0.0.0)",
                            cfg->listen);
    }
    long threads = cfg->threads > 0 ? cfg->threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    unsigned idle = (unsigned)((cfg->idle_timeout + 999) / 1000);
    if (idle == 0 && cfg->idle_timeout > 0) idle = 1;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_CONNECTION_TIMEOUT, idle,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
        MHD_OPTION_END);
    if (!s->daemon) {
        int e = errno;
        mp_metrics_destroy(s->metrics);
        free(s);
        return mp_error_set(err, MP_EIO, "cannot listen on %s:%lld: %s", cfg->listen, (long long)cfg->port,
                            e ? strerror(e) : "libmicrohttpd refused to start");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : (uint16_t)cfg->port;
    s->watchdog_started = pthread_create(&s->watchdog, NULL, watchdog_main, s) == 0;
    *out = s;
    return MP_OK;
}

uint16_t mp_server_port(const mp_server *s) { return s->port; }

void mp_server_set_live(mp_server *s, mp_live *live) {
    atomic_store(&s->live, live);
    mp_server_note_model(s, -1);
}

mp_metrics *mp_server_metrics(mp_server *s) { return s->metrics; }

void mp_server_note_model(mp_server *s, int reload_ok) {
    if (reload_ok >= 0) mp_metrics_add_reload(s->metrics, reload_ok);
    mp_live *live = atomic_load(&s->live);
    if (!live) return;
    mp_live_model_info mi;
    mp_error err;
    mp_error_clear(&err);
    if (mp_live_model_info_get(live, &mi, &err) != MP_OK) return;
    mp_metrics_set_model(s->metrics, mi.name, mi.version, mi.loaded_at, mi.n_items, mi.has_index);
    mp_live_model_info_free(&mi);
}

void mp_server_stop(mp_server *s) {
    if (!s) return;
    atomic_store(&s->stopping, 1);
    if (s->watchdog_started) pthread_join(s->watchdog, NULL);
    if (s->daemon) MHD_stop_daemon(s->daemon);
    pthread_mutex_destroy(&s->conns_mu);
    mp_metrics_destroy(s->metrics);
    free(s);
}
