/* src/serve/handlers.h: the endpoints of `magpie serve` (handlers.c; the text ones in textapi.c) and the server
 * state they read, not an API. server.c owns the state (mp_server_start / mp_server_stop) and calls the handlers
 * through the route table; the handlers read the state and answer through http_internal.h, and never call back
 * into server.c.
 *
 * Thread-safety: handlers run on libmicrohttpd's worker threads, many at once. They only read the mp_server
 * fields (set before the daemon starts, or atomic) and call the live recommender, the metrics and the bandit
 * layer, which lock themselves. */
#ifndef MAGPIE_SERVE_HANDLERS_H
#define MAGPIE_SERVE_HANDLERS_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "magpie/live.h"
#include "serve/config.h"
#include "serve/http_internal.h"
#include "serve/metrics.h"
#include "serve/server.h"

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
    size_t *route_series; /* [mp_n_routes] metrics series of each route (routes.h: route_series) */
    size_t other_series;  /* the series of requests that match no route */
};

/* What a handler gets: borrowed for the call. */
typedef struct hctx {
    mp_server *srv;
    mp_live *live; /* NULL until the server is ready (only routes that run before that see NULL) */
    struct MHD_Connection *c;
    req *r;
    const char *seg; /* captured path segment, decoded */
    size_t seg_len;
    const char *content_type;
    const char *path; /* request path without the leading '/' */
} hctx;

typedef enum MHD_Result (*http_handler)(hctx *h);



/* ---- endpoints (handlers.c unless noted); each is one row of the route table (routes.c) ---- */
enum MHD_Result handle_recommend_get(hctx *h);  /* GET /v1/recommend/{user} */
enum MHD_Result handle_recommend_post(hctx *h); /* POST /v1/recommend (a session, text or a profile) */
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
enum MHD_Result handle_model(hctx *h);
enum MHD_Result handle_reload(hctx *h);
enum MHD_Result handle_feedback(hctx *h); /* POST /v1/feedback */
enum MHD_Result handle_abtest(hctx *h);   /* GET /v1/abtest[?format=csv] */
enum MHD_Result handle_stats(hctx *h);
/* These four also answer while the server is loading (h->live NULL). */
enum MHD_Result handle_healthz(hctx *h);
enum MHD_Result handle_readyz(hctx *h);
enum MHD_Result handle_metrics(hctx *h);
enum MHD_Result handle_dashboard(hctx *h); /* the page and its files, by h->path */
enum MHD_Result handle_openapi(hctx *h);   /* docs/openapi.yaml (also with the dashboard off) */

#endif
