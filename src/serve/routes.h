/* src/serve/routes.h: the route table of `magpie serve` (routes.c), not an API. Each endpoint is declared once,
 * in mp_routes[]: method, path pattern, the key it needs, the query parameters it takes, the metrics series it
 * counts in and its handler. server.c derives routing, the 404 / 405 answers, auth, the query whitelist, the
 * metrics labels and dispatch from it; tests/test_serve_routes.c checks it. docs/api.md documents the same list.
 *
 * Everything here is constant (no state); every function is reentrant. */
#ifndef MAGPIE_SERVE_ROUTES_H
#define MAGPIE_SERVE_ROUTES_H

#include <stddef.h>

#include "serve/handlers.h"

/* Method bits of route.methods (ROUTE_METHOD_NAMES in bit order, for the Allow list of a 405). */
enum { ROUTE_GET = 1, ROUTE_POST = 2, ROUTE_PUT = 4, ROUTE_DELETE = 8, ROUTE_HEAD = 16 };
#define ROUTE_METHOD_NAMES {"GET", "POST", "PUT", "DELETE", "HEAD"}
#define ROUTE_N_METHODS 5

/* The key a route needs. Write keys may also administer (config.h: write_keys), so ADMIN asks for a write key
 * today; it is its own level so that admin keys can come without touching the table. */
typedef enum route_auth { ROUTE_AUTH_NONE, ROUTE_AUTH_READ, ROUTE_AUTH_WRITE, ROUTE_AUTH_ADMIN } route_auth;

/* route.flags */
enum {
    /* Served from the live recommender: 503 `not_ready` until it is loaded; the query parameters are checked
     * against route.query, a captured id is decoded, a POST / PUT body's Content-Type is checked. Routes without
     * it (health, readiness, metrics, the dashboard) answer while loading and take whatever query they get. */
    ROUTE_LIVE = 1,
};

typedef struct route {
    unsigned methods;          /* ROUTE_GET | ... */
    const char *pattern;       /* path segments after the leading '/'; a "*" segment captures one (non-empty) */
    const char *label;         /* metrics series ("GET /v1/recommend/{user}"); routes with one label share it */
    route_auth auth;           /* key needed */
    unsigned flags;            /* ROUTE_LIVE */
    const char *const *query;  /* allowed query parameters (NULL-terminated); read only with ROUTE_LIVE */
    const char *seg_field;     /* the error's `field` when the captured id is bad ("item", "user"); NULL: none */
    http_handler handler;
} route;

extern const route mp_routes[];
extern const size_t mp_n_routes;
/* The metrics series of requests that match no route (and of those answered before routing, e.g. a 413 on the
 * Content-Length). */
#define ROUTE_OTHER_LABEL "other"

/* The ROUTE_* bit of an HTTP method name, 0 for any other method. */
unsigned route_method_bit(const char *method);
/* The first route whose pattern matches path (no leading '/') and whose methods include method_bit, or NULL.
 * *allowed gets the methods of every route whose pattern matches (for 405 vs 404); on a match with a "*"
 * segment, *cap / *cap_len get the raw (still percent-encoded) segment, else NULL / 0. */
const route *route_find(unsigned method_bit, const char *path, const char **cap, size_t *cap_len,
                        unsigned *allowed);
/* The metrics series: labels[0..n) the distinct route labels in table order, then ROUTE_OTHER_LABEL; series[i]
 * the index in labels of mp_routes[i]'s label. labels: room for mp_n_routes + 1, series: mp_n_routes (both owned
 * by the caller; labels point into the constant table). Returns n (the "other" series included). */
size_t route_series(const char **labels, size_t *series);

#endif
