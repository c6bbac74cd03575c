/* src/serve/server.c: the transport of `magpie serve` on libmicrohttpd: routing and auth by the route table
 * (routes.h), limits, metrics per request, the head-dribble watchdog and the life cycle. The endpoints are in
 * handlers.c and textapi.c, the response helpers in http.c. */
#include "serve/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "magpie/records.h"
#include "serve/handlers.h"
#include "serve/http_internal.h"
#include "serve/routes.h"

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
 * Path ids and the query whitelist */

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

/* ---------------------------------------------------------------------------------------------------------------
 * Dispatch */

/* The highest route_auth level the request's key grants (ROUTE_AUTH_NONE: no key or an unknown one);
 * *presented: whether a key came at all. */
static int auth_level(const mp_serve_config *cfg, struct MHD_Connection *c, int *presented) {
    if (cfg->n_read_keys == 0 && cfg->n_write_keys == 0) return ROUTE_AUTH_ADMIN; /* no keys configured: open */
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!key && authz && !strncasecmp(authz, "Bearer ", 7)) {
        key = authz + 7;
        while (*key == ' ')
            key++;
    }
    *presented = key != NULL;
    if (!key) return ROUTE_AUTH_NONE;
    size_t len = strlen(key);
    int level = ROUTE_AUTH_NONE;
    /* every configured key is compared (no early exit), each in constant time */
    for (size_t i = 0; i < cfg->n_write_keys; i++)
        if (mp_serve_key_equal(key, len, cfg->write_keys[i])) level = ROUTE_AUTH_ADMIN; /* config.h: write keys administer */
    for (size_t i = 0; i < cfg->n_read_keys; i++)
        if (mp_serve_key_equal(key, len, cfg->read_keys[i]) && level == ROUTE_AUTH_NONE) level = ROUTE_AUTH_READ;
    return level;
}

/* Everything a route needs before its handler runs, in the order the errors take precedence: 404 / 405, auth,
 * the body limits, readiness, the query whitelist, the captured id, the Content-Type. */
static enum MHD_Result dispatch(mp_server *srv, struct MHD_Connection *c, req *r, const char *url,
                                const char *method) {
    const mp_serve_config *cfg = srv->cfg;
    unsigned mbit = route_method_bit(method);
    const char *path = url[0] == '/' ? url + 1 : url;
    const char *cap = NULL;
    size_t cap_len = 0;
    unsigned allowed = 0;
    const route *rt = route_find(mbit, path, &cap, &cap_len, &allowed);
    if (!rt) {
        r->endpoint = srv->other_series;
        if (allowed) {
            char allow[64] = "";
            static const char *const names[ROUTE_N_METHODS] = ROUTE_METHOD_NAMES;
            for (int b = 0; b < ROUTE_N_METHODS; b++)
                if (allowed & (1u << b)) {
                    if (allow[0]) strcat(allow, ", ");
                    strcat(allow, names[b]);
                }
            return http_send_error(c, r, 405, NULL, NULL, "method %s is not allowed on %s (allowed: %s)", method, url,
                                   allow);
        }
        return http_send_error(c, r, 404, NULL, NULL, "no such endpoint: %s %s (see docs/api.md)", method, url);
    }
    r->endpoint = srv->route_series[rt - mp_routes];
    if (rt->auth != ROUTE_AUTH_NONE) {
        int presented = 0, level = auth_level(cfg, c, &presented);
        if (level == ROUTE_AUTH_NONE)
            return http_send_error(c, r, 401, NULL, NULL, "%s",
                                   presented ? "API key not accepted" : "an API key is required (X-API-Key or Bearer)");
        if (level < (int)rt->auth)
            return http_send_error(c, r, 403, NULL, NULL, "this API key may only read; %s %s needs a write key", method,
                                   url);
    }
    if (r->too_big)
        return http_send_error(c, r, 413, NULL, NULL, "request body is larger than max_body (%llu bytes)",
                               (unsigned long long)cfg->max_body);
    if (r->timed_out)
        return http_send_error(c, r, 408, "timeout", NULL, "request body took longer than request_timeout (%lld ms)",
                               (long long)cfg->request_timeout);
    hctx h = {srv, atomic_load(&srv->live), c, r, NULL, 0, NULL, path};
    if (!(rt->flags & ROUTE_LIVE)) return rt->handler(&h);
    if (!h.live)
        return http_send_error(c, r, 503, "not_ready", NULL, "the server is still loading the store and the model");

    qcheck qc = {rt->query, NULL};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_param, &qc);
    if (qc.bad) {
        char name[80];
        snprintf(name, sizeof name, "%.64s", qc.bad);
        return http_send_error(c, r, 400, NULL, name, "unknown query parameter `%s`", name);
    }
    char idbuf[MP_MAX_ID_BYTES * 3 + 8];
    if (cap) {
        const char *why = NULL;
        int st = decode_id(cap, cap_len, idbuf, sizeof idbuf, &h.seg_len, &why);
        if (st) return http_send_error(c, r, st, NULL, rt->seg_field, "%s", why);
        h.seg = idbuf;
    }
    h.content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if ((mbit & (ROUTE_POST | ROUTE_PUT)) && h.content_type && strncasecmp(h.content_type, "application/json", 16) &&
        !http_is_ndjson(h.content_type) && strncasecmp(h.content_type, "text/plain", 10) &&
        strncasecmp(h.content_type, "application/x-www-form-urlencoded", 33))
        return http_send_error(c, r, 415, NULL, NULL,
                               "Content-Type %s is not accepted: send application/json (or application/x-ndjson for "
                               "events)",
                               h.content_type);
    return rt->handler(&h);
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
        r->endpoint = srv->other_series;
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > cfg->max_body) {
            /* answered before the body is read; libmicrohttpd then closes the connection */
            r->endpoint = srv->other_series;
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
    const char **labels = malloc((mp_n_routes + 1) * sizeof *labels);
    s->route_series = malloc(mp_n_routes * sizeof *s->route_series);
    int rc = labels && s->route_series ? MP_OK : mp_error_set(err, MP_ENOMEM, "out of memory");
    if (rc == MP_OK) {
        size_t n_series = route_series(labels, s->route_series);
        s->other_series = n_series - 1;
        rc = mp_metrics_create(&s->metrics, labels, n_series, err);
    }
    free(labels);
    if (rc) {
        free(s->route_series);
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
        free(s->route_series);
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
        free(s->route_series);
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
        free(s->route_series);
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
    mp_metrics_note_model(s->metrics, atomic_load(&s->live), reload_ok);
}

void mp_server_stop(mp_server *s) {
    if (!s) return;
    atomic_store(&s->stopping, 1);
    if (s->watchdog_started) pthread_join(s->watchdog, NULL);
    if (s->daemon) MHD_stop_daemon(s->daemon);
    pthread_mutex_destroy(&s->conns_mu);
    mp_explore_destroy(s->explore);
    mp_metrics_destroy(s->metrics);
    free(s->route_series);
    free(s);
}
