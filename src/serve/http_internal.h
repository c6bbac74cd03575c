/* src/serve/http_internal.h: what the two halves of the HTTP server share (not an API): server.c owns the
 * transport (libmicrohttpd glue, routing, auth, limits, the watchdog, life cycle) and handlers.c the endpoints
 * over mp_live. Both answer through the response helpers below, so every error has the documented shape. */
#ifndef MAGPIE_SERVE_HTTP_INTERNAL_H
#define MAGPIE_SERVE_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "magpie/error.h"
#include "magpie/live.h"
#include "serve/config.h"
#include "serve/jbuf.h"
#include "serve/metrics.h"
#include "serve/server.h"

#define ENDPOINTS(X)                                                                                                  \
    X(RECOMMEND_GET, "GET /v1/recommend/{user}")                                                                      \
    X(RECOMMEND_POST, "POST /v1/recommend")                                                                           \
    X(SIMILAR, "GET /v1/similar/{item}")                                                                              \
    X(SEARCH, "GET /v1/search")                                                                                       \
    X(EMBEDDINGS, "POST /v1/embeddings")                                                                              \
    X(POPULAR, "GET /v1/popular")                                                                                     \
    X(HISTORY, "GET /v1/users/{id}/history")                                                                          \
    X(EVENTS, "POST /v1/events")                                                                                      \
    X(ITEMS, "POST|PUT /v1/items")                                                                                    \
    X(ITEM_PUT, "PUT /v1/items/{id}")                                                                                 \
    X(ITEM_DELETE, "DELETE /v1/items/{id}")                                                                           \
    X(USERS, "POST /v1/users")                                                                                        \
    X(USER_DELETE, "DELETE /v1/users/{id}")                                                                           \
    X(FEEDBACK, "POST /v1/feedback")                                                                                  \
    X(ABTEST, "GET /v1/abtest")                                                                                       \
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
    struct mp_explore *explore; /* exploration, feedback, protection, A/B (the live module's magpie/explore.h) */
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

typedef struct hctx {
    mp_server *srv;
    mp_live *live;
    struct MHD_Connection *c;
    req *r;
    const char *seg; /* captured path segment, decoded */
    size_t seg_len;
    const char *content_type;
} hctx;

/* ---- responses (server.c) ---- */
/* Queues text (must_free: the response owns and frees it) with Content-Type `type`; records the status in r. */
enum MHD_Result http_send_text(struct MHD_Connection *c, req *r, int status, const char *type, char *text, size_t len,
                               int must_free);
/* Queues the JSON in b (taken; a newline is appended). */
enum MHD_Result http_send_json(struct MHD_Connection *c, req *r, int status, jbuf *b);
/* {"code":..,"message":..,"field":..} (code NULL: the status's default code). */
void http_error_object(jbuf *b, int status, const char *code, const char *message, const char *field);
/* Queues {"error":{...}} with a printf message. */
enum MHD_Result http_send_error(struct MHD_Connection *c, req *r, int status, const char *code, const char *field,
                                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Maps a library error to its status (404 / 400 / 422 / 500); field NULL: read from the message. */
enum MHD_Result http_send_mp_error(struct MHD_Connection *c, req *r, const mp_error *err, const char *field);
/* ---- query parameters (server.c) ---- */
/* Decoded query parameter `name` into buf, or NULL if absent; *bad set when it does not decode. */
const char *http_qarg(struct MHD_Connection *c, const char *name, char *buf, size_t cap, int *bad);
/* Integer parameter in [lo, hi] (absent: def); 0 or 400 with why filled. */
int http_qint(struct MHD_Connection *c, const char *name, long lo, long hi, long def, long *out, char *why,
              size_t why_cap);
/* Boolean parameter (1/true/yes/empty, 0/false/no); 0 or 400 with why filled. */
int http_qbool(struct MHD_Connection *c, const char *name, int *out, char *why, size_t why_cap);

/* ---- endpoints (handlers.c) ---- */
int http_is_ndjson(const char *content_type);
enum MHD_Result handle_recommend_get(hctx *h);
enum MHD_Result handle_recommend_post(hctx *h);
enum MHD_Result handle_similar(hctx *h);
enum MHD_Result handle_search(hctx *h);     /* textapi.c */
enum MHD_Result handle_embeddings(hctx *h); /* textapi.c */
enum MHD_Result handle_popular(hctx *h);
enum MHD_Result handle_history(hctx *h);
enum MHD_Result handle_events(hctx *h);
enum MHD_Result handle_items(hctx *h);
enum MHD_Result handle_item_put(hctx *h);
enum MHD_Result handle_item_delete(hctx *h);
enum MHD_Result handle_users(hctx *h);
enum MHD_Result handle_user_delete(hctx *h);
enum MHD_Result handle_model(hctx *h, int wrap);
enum MHD_Result handle_reload(hctx *h);
enum MHD_Result handle_feedback(hctx *h); /* POST /v1/feedback */
enum MHD_Result handle_abtest(hctx *h);   /* GET /v1/abtest[?format=csv] */
enum MHD_Result handle_stats(hctx *h);
enum MHD_Result handle_metrics(hctx *h);
enum MHD_Result handle_dashboard(hctx *h, const char *path);

#endif
