/* src/serve/routes.c: the endpoints of `magpie serve`, one row each (routes.h says what derives from a row).
 * Order matters only where two patterns match one path: the first route that matches the method wins. */
#include "serve/routes.h"

#include <stdio.h>
#include <string.h>

#include "serve/server.h"

static const char *const q_none[] = {NULL};
static const char *const q_n[] = {"n", NULL};
static const char *const q_list[] = {"n", "offset", "category", NULL};
static const char *const q_recommend[] = {"n", "offset", "category", "exclude", "explain", "include_seen",
                                          "q", "policy",  "price_min", "price_max", NULL};
static const char *const q_search[] = {"q", "user", "n", "offset", "category", NULL};
static const char *const q_format[] = {"format", NULL};

enum { GET = ROUTE_GET, POST = ROUTE_POST, PUT = ROUTE_PUT, DELETE = ROUTE_DELETE, HEAD = ROUTE_HEAD };
#define NONE ROUTE_AUTH_NONE
#define READ ROUTE_AUTH_READ
#define WRITE ROUTE_AUTH_WRITE
#define ADMIN ROUTE_AUTH_ADMIN
#define LIVE ROUTE_LIVE

const route mp_routes[] = {
    /* methods   pattern                 metrics label                     auth   flags query        id field */
    {GET, "v1/recommend/*", "GET /v1/recommend/{user}", READ, LIVE, q_recommend, "user", handle_recommend_get},
    {POST, "v1/recommend", "POST /v1/recommend", READ, LIVE, q_none, NULL, handle_recommend_post},
    {GET, "v1/similar/*", "GET /v1/similar/{item}", READ, LIVE, q_n, "item", handle_similar},
    {GET, "v1/search", "GET /v1/search", READ, LIVE, q_search, NULL, handle_search},
    {POST, "v1/embeddings", "POST /v1/embeddings", READ, LIVE, q_none, NULL, handle_embeddings},
    {GET, "v1/popular", "GET /v1/popular", READ, LIVE, q_list, NULL, handle_popular},
    {GET, "v1/users/*/history", "GET /v1/users/{id}/history", READ, LIVE, q_n, "user", handle_history},
    {POST, "v1/events", "POST /v1/events", WRITE, LIVE, q_none, NULL, handle_events},
    {POST | PUT, "v1/items", "POST|PUT /v1/items", WRITE, LIVE, q_none, NULL, handle_items},
    {PUT, "v1/items/*", "PUT /v1/items/{id}", WRITE, LIVE, q_none, "item", handle_item_put},
    {DELETE, "v1/items/*", "DELETE /v1/items/{id}", WRITE, LIVE, q_none, "item", handle_item_delete},
    {POST, "v1/users", "POST /v1/users", WRITE, LIVE, q_none, NULL, handle_users},
    {DELETE, "v1/users/*", "DELETE /v1/users/{id}", WRITE, LIVE, q_none, "user", handle_user_delete},
    /* feedback is a read: the clients that may ask for recommendations report what their users did with them */
    {POST, "v1/feedback", "POST /v1/feedback", READ, LIVE, q_none, NULL, handle_feedback},
    {GET, "v1/abtest", "GET /v1/abtest", READ, LIVE, q_format, NULL, handle_abtest},
    {POST, "v1/admin/reload", "POST /v1/admin/reload", ADMIN, LIVE, q_none, NULL, handle_reload},
    {GET, "v1/stats", "GET /v1/stats", READ, LIVE, q_none, NULL, handle_stats},
    {GET, "v1/model", "GET /v1/model", READ, LIVE, q_none, NULL, handle_model},
    {GET | HEAD, "healthz", "GET /healthz", NONE, 0, NULL, NULL, handle_healthz},
    {GET | HEAD, "readyz", "GET /readyz", NONE, 0, NULL, NULL, handle_readyz},
    {GET, "metrics", "GET /metrics", READ, 0, NULL, NULL, handle_metrics},
    {GET | HEAD, "", "GET /", NONE, 0, NULL, NULL, handle_dashboard},
    {GET | HEAD, "index.html", "GET /", NONE, 0, NULL, NULL, handle_dashboard},
    {GET | HEAD, "dashboard.js", "GET /", NONE, 0, NULL, NULL, handle_dashboard},
    {GET | HEAD, "dashboard.css", "GET /", NONE, 0, NULL, NULL, handle_dashboard},
    {GET | HEAD, "openapi.yaml", "GET /openapi.yaml", NONE, 0, NULL, NULL, handle_openapi},
};
const size_t mp_n_routes = sizeof mp_routes / sizeof mp_routes[0];

unsigned route_method_bit(const char *m) {
    static const char *const names[ROUTE_N_METHODS] = ROUTE_METHOD_NAMES;
    for (unsigned b = 0; b < ROUTE_N_METHODS; b++)
        if (!strcmp(m, names[b])) return 1u << b;
    return 0;
}

/* Matches path against pattern segment by segment; a "*" segment captures into cap / cap_len. */
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

const route *route_find(unsigned method_bit, const char *path, const char **cap, size_t *cap_len,
                        unsigned *allowed) {
    *cap = NULL;
    *cap_len = 0;
    *allowed = 0;
    for (size_t i = 0; i < mp_n_routes; i++) {
        const char *cp = NULL;
        size_t cl = 0;
        if (!match(mp_routes[i].pattern, path, &cp, &cl)) continue;
        *allowed |= mp_routes[i].methods;
        if (mp_routes[i].methods & method_bit) {
            *cap = cp;
            *cap_len = cl;
            return &mp_routes[i];
        }
    }
    return NULL;
}

size_t route_series(const char **labels, size_t *series) {
    size_t n = 0;
    for (size_t i = 0; i < mp_n_routes; i++) {
        size_t k = 0;
        while (k < n && strcmp(labels[k], mp_routes[i].label))
            k++;
        if (k == n) labels[n++] = mp_routes[i].label;
        series[i] = k;
    }
    labels[n++] = ROUTE_OTHER_LABEL;
    return n;
}

void mp_serve_print_routes(FILE *f) {
    static const char *const names[ROUTE_N_METHODS] = ROUTE_METHOD_NAMES;
    static const char *const auth[] = {"none", "read", "write", "admin"};
    for (size_t i = 0; i < mp_n_routes; i++) {
        const route *rt = &mp_routes[i];
        for (unsigned b = 0; b < ROUTE_N_METHODS; b++) {
            if (!(rt->methods & (1u << b))) continue;
            fprintf(f, "%s /%s %s ", names[b], rt->pattern, auth[rt->auth]);
            if (!(rt->flags & ROUTE_LIVE)) {
                fputs("any", f);
            } else if (!rt->query[0]) {
                fputs("-", f);
            } else {
                for (size_t q = 0; rt->query[q]; q++)
                    fprintf(f, "%s%s", q ? "," : "", rt->query[q]);
            }
            fputc('\n', f);
        }
    }
}
