/* src/serve/server.c: the transport of `magpie serve` on libmicrohttpd: routing, auth, limits, the error shape,
 * metrics per request, the head-dribble watchdog and the life cycle. The endpoints are in handlers.c. */
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
#include "serve/decode.h"
#include "serve/http_internal.h"

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
    {M_GET, "v1/search", EP_SEARCH, AUTH_READ},
    {M_POST, "v1/embeddings", EP_EMBEDDINGS, AUTH_READ},
    {M_GET, "v1/popular", EP_POPULAR, AUTH_READ},
    {M_GET, "v1/users/*/history", EP_HISTORY, AUTH_READ},
    {M_POST, "v1/events", EP_EVENTS, AUTH_WRITE},
    {M_POST | M_PUT, "v1/items", EP_ITEMS, AUTH_WRITE},
    {M_PUT, "v1/items/*", EP_ITEM_PUT, AUTH_WRITE},
    {M_DELETE, "v1/items/*", EP_ITEM_DELETE, AUTH_WRITE},
    {M_POST, "v1/users", EP_USERS, AUTH_WRITE},
    {M_DELETE, "v1/users/*", EP_USER_DELETE, AUTH_WRITE},
    {M_POST, "v1/feedback", EP_FEEDBACK, AUTH_READ},
    {M_GET, "v1/abtest", EP_ABTEST, AUTH_READ},
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

enum MHD_Result http_send_text(struct MHD_Connection *c, req *r, int status, const char *type, char *text,
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

enum MHD_Result http_send_json(struct MHD_Connection *c, req *r, int status, jbuf *b) {
    jb_raw(b, "\n", 1);
    size_t len;
    char *text = jb_take(b, &len);
    if (!text) {
        static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\",\"field\":null}}\n";
        return http_send_text(c, r, 500, "application/json; charset=utf-8", (char *)oom, sizeof oom - 1, 0);
    }
    return http_send_text(c, r, status, "application/json; charset=utf-8", text, len, 1);
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

void http_error_object(jbuf *b, int status, const char *code, const char *message, const char *field) {
    jb_cstr(b, "{\"code\":");
    jb_cstr_json(b, code ? code : code_of_status(status));
    jb_cstr(b, ",\"message\":");
    jb_cstr_json(b, message);
    jb_cstr(b, ",\"field\":");
    if (field && *field) jb_cstr_json(b, field);
    else jb_cstr(b, "null");
    jb_cstr(b, "}");
}

enum MHD_Result http_send_error(struct MHD_Connection *c, req *r, int status, const char *code, const char *field,
                                  const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jbuf b;
    jb_init(&b);
    jb_cstr(&b, "{\"error\":");
    http_error_object(&b, status, code, msg, field);
    jb_cstr(&b, "}");
    return http_send_json(c, r, status, &b);
}

/* Maps a library error to an HTTP answer. */
enum MHD_Result http_send_mp_error(struct MHD_Connection *c, req *r, const mp_error *err, const char *field) {
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
    return http_send_error(c, r, status, NULL, field, "%s", err->msg[0] ? err->msg : mp_strerror(err->code));
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
const char *http_qarg(struct MHD_Connection *c, const char *name, char *buf, size_t cap, int *bad) {
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
int http_qint(struct MHD_Connection *c, const char *name, long lo, long hi, long def, long *out, char *why,
                size_t why_cap) {
    char buf[64];
    int bad = 0;
    const char *v = http_qarg(c, name, buf, sizeof buf, &bad);
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

int http_qbool(struct MHD_Connection *c, const char *name, int *out, char *why, size_t why_cap) {
    char buf[16];
    int bad = 0;
    const char *v = http_qarg(c, name, buf, sizeof buf, &bad);
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
            return http_send_error(c, r, 405, NULL, NULL, "method %s is not allowed on %s (allowed: %s)", method, url,
                              allow);
        }
        return http_send_error(c, r, 404, NULL, NULL, "no such endpoint: %s %s (see docs/api.md)", method, url);
    }
    r->endpoint = found->endpoint;
    if (found->auth != AUTH_NONE) {
        int presented = 0, level = auth_level(cfg, c, &presented);
        if (level == AUTH_NONE)
            return http_send_error(c, r, 401, NULL, NULL, "%s",
                              presented ? "API key not accepted" : "an API key is required (X-API-Key or Bearer)");
        if (found->auth == AUTH_WRITE && level != AUTH_WRITE)
            return http_send_error(c, r, 403, NULL, NULL, "this API key may only read; %s %s needs a write key", method,
                              url);
    }
    if (r->too_big)
        return http_send_error(c, r, 413, NULL, NULL, "request body is larger than max_body (%llu bytes)",
                          (unsigned long long)cfg->max_body);
    if (r->timed_out)
        return http_send_error(c, r, 408, "timeout", NULL, "request body took longer than request_timeout (%lld ms)",
                          (long long)cfg->request_timeout);
    switch (found->endpoint) {
    case EP_HEALTHZ: {
        static const char ok[] = "{\"status\":\"ok\"}\n";
        return http_send_text(c, r, 200, "application/json; charset=utf-8", (char *)ok, sizeof ok - 1, 0);
    }
    case EP_DASHBOARD: {
        hctx h = {srv, NULL, c, r, NULL, 0, NULL};
        return handle_dashboard(&h, path);
    }
    default: break;
    }
    mp_live *live = atomic_load(&srv->live);
    if (found->endpoint == EP_READYZ) {
        if (!live) return http_send_error(c, r, 503, "not_ready", NULL, "loading the store and the model");
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
        return http_send_json(c, r, 200, &b);
    }
    if (found->endpoint == EP_METRICS) {
        hctx h = {srv, live, c, r, NULL, 0, NULL};
        return handle_metrics(&h);
    }
    if (!live) return http_send_error(c, r, 503, "not_ready", NULL, "the server is still loading the store and the model");

    /* query parameters: only the documented ones */
    static const char *const q_rec[] = {"n", "offset", "category", "exclude", "explain", "include_seen",
                                       "q", "policy", "price_min", "price_max", NULL};
    static const char *const q_format[] = {"format", NULL};
    static const char *const q_search[] = {"q", "user", "n", "offset", "category", NULL};
    static const char *const q_n[] = {"n", NULL};
    static const char *const q_pop[] = {"n", "offset", "category", NULL};
    static const char *const q_none[] = {NULL};
    const char *const *qallowed = q_none;
    if (found->endpoint == EP_RECOMMEND_GET) qallowed = q_rec;
    else if (found->endpoint == EP_SIMILAR || found->endpoint == EP_HISTORY) qallowed = q_n;
    else if (found->endpoint == EP_POPULAR) qallowed = q_pop;
    else if (found->endpoint == EP_SEARCH) qallowed = q_search;
    else if (found->endpoint == EP_ABTEST) qallowed = q_format;
    qcheck qc = {qallowed, NULL};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_param, &qc);
    if (qc.bad) {
        char name[80];
        snprintf(name, sizeof name, "%.64s", qc.bad);
        return http_send_error(c, r, 400, NULL, name, "unknown query parameter `%s`", name);
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
            return http_send_error(c, r, st, NULL, f, "%s", why);
        }
        h.seg = idbuf;
    }
    if ((mbit & (M_POST | M_PUT)) && h.content_type && strncasecmp(h.content_type, "application/json", 16) &&
        !http_is_ndjson(h.content_type) && strncasecmp(h.content_type, "text/plain", 10) &&
        strncasecmp(h.content_type, "application/x-www-form-urlencoded", 33))
        return http_send_error(c, r, 415, NULL, NULL,
                          "Content-Type %s is not accepted: send application/json (or application/x-ndjson for "
                          "events)",
                          h.content_type);
    switch (found->endpoint) {
    case EP_RECOMMEND_GET: return handle_recommend_get(&h);
    case EP_RECOMMEND_POST: return handle_recommend_post(&h);
    case EP_SIMILAR: return handle_similar(&h);
    case EP_SEARCH: return handle_search(&h);
    case EP_EMBEDDINGS: return handle_embeddings(&h);
    case EP_POPULAR: return handle_popular(&h);
    case EP_HISTORY: return handle_history(&h);
    case EP_EVENTS: return handle_events(&h);
    case EP_ITEMS: return handle_items(&h);
    case EP_ITEM_PUT: return handle_item_put(&h);
    case EP_ITEM_DELETE: return handle_item_delete(&h);
    case EP_USERS: return handle_users(&h);
    case EP_USER_DELETE: return handle_user_delete(&h);
    case EP_RELOAD: return handle_reload(&h);
    case EP_FEEDBACK: return handle_feedback(&h);
    case EP_ABTEST: return handle_abtest(&h);
    case EP_STATS: return handle_stats(&h);
    case EP_MODEL: return handle_model(&h, 0);
    default: return http_send_error(c, r, 404, NULL, NULL, "no such endpoint");
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
            return http_send_error(c, r, 413, NULL, NULL, "request body is larger than max_body (%llu bytes)",
                              (unsigned long long)cfg->max_body);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (cfg->request_timeout > 0 && (now_seconds() - r->t0) * 1000.0 > (double)cfg->request_timeout) {
            r->timed_out = 1; /* a client dribbling its body is answered 408 and cut off */
            return http_send_error(c, r, 408, "timeout", NULL, "request body took longer than request_timeout (%lld ms)",
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

/* Warnings of the explore state (a saved policy that does not fit, a serving-log line not written). */
static void on_explore_warn(void *ctx, const char *msg) {
    (void)ctx;
    fprintf(stderr, "magpie serve: %s\n", msg);
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
    struct timespec seed_ts;
    clock_gettime(CLOCK_REALTIME, &seed_ts);
    mp_explore_opts xo;
    rc = mp_serve_config_explore_opts(cfg, &xo, err);
    xo.seed = (uint64_t)seed_ts.tv_sec * 1000000007ULL ^ (uint64_t)seed_ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    xo.warn = on_explore_warn;
    if (rc == MP_OK) rc = mp_explore_create(&xo, &s->explore, err);
    if (rc) {
        mp_metrics_destroy(s->metrics);
        pthread_mutex_destroy(&s->conns_mu);
        free(s);
        return rc;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->listen, &addr.sin_addr) != 1) {
        mp_explore_destroy(s->explore);
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
        mp_explore_destroy(s->explore);
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
    mp_error err;
    mp_error_clear(&err);
    if (mp_explore_attach(s->explore, live, &err) != MP_OK)
        fprintf(stderr, "magpie serve: exploration features: %s (serving without them)\n", err.msg);
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
    mp_explore_destroy(s->explore);
    mp_metrics_destroy(s->metrics);
    free(s);
}
