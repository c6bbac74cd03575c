/* The route table of `magpie serve` (src/serve/routes.h): every route is reachable by its own pattern, the
 * documented endpoints have the documented key level, and a running server (not yet ready) answers each route
 * with 401 / 403 / not-401 exactly as its auth says. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve/config.h"
#include "serve/routes.h"
#include "serve/server.h"
#include "test.h"

/* A concrete path for a pattern: "*" segments become "x". */
static void path_of(const char *pattern, char *out, size_t cap) {
    size_t o = 0;
    for (const char *p = pattern; *p && o + 2 < cap; p++)
        out[o++] = *p == '*' ? 'x' : *p;
    out[o] = 0;
}

MP_TEST(serveroutes_every_route_reachable) {
    static const char *const names[ROUTE_N_METHODS] = ROUTE_METHOD_NAMES;
    CHECK(mp_n_routes > 0);
    for (size_t i = 0; i < mp_n_routes; i++) {
        const route *rt = &mp_routes[i];
        CHECK_MSG(rt->handler && rt->label && rt->pattern && rt->methods, "route %zu is incomplete", i);
        int has_star = strchr(rt->pattern, '*') != NULL;
        CHECK_MSG(!has_star == !rt->seg_field, "%s: a captured id needs its error field, and only then", rt->label);
        CHECK_MSG(!(rt->flags & ROUTE_LIVE) || rt->query, "%s: a live route needs its query whitelist", rt->label);
        char path[128];
        path_of(rt->pattern, path, sizeof path);
        for (int b = 0; b < ROUTE_N_METHODS; b++) {
            if (!(rt->methods & (1u << b))) continue;
            CHECK_EQ(route_method_bit(names[b]), 1u << b);
            const char *cap;
            size_t cap_len;
            unsigned allowed;
            const route *got = route_find(1u << b, path, &cap, &cap_len, &allowed);
            CHECK_MSG(got == rt, "%s /%s reaches %s, not route %zu (%s)", names[b], path, got ? got->label : "nothing",
                      i, rt->label);
            CHECK(allowed & (1u << b));
            CHECK_EQ(has_star, cap != NULL);
            if (cap) CHECK(cap_len == 1 && *cap == 'x');
        }
    }
    const char *cap;
    size_t cap_len;
    unsigned allowed;
    CHECK(route_find(ROUTE_GET, "v1/nothing", &cap, &cap_len, &allowed) == NULL && allowed == 0);
    CHECK(route_find(ROUTE_GET, "v1/recommend/", &cap, &cap_len, &allowed) == NULL); /* "*" needs a segment */
    CHECK(route_find(ROUTE_DELETE, "v1/recommend", &cap, &cap_len, &allowed) == NULL && allowed == ROUTE_POST);
    CHECK_EQ(route_method_bit("PATCH"), 0);
}

/* The documented key levels (docs/api.md, "Authentication"), one row per endpoint. */
static const struct {
    const char *method, *path;
    route_auth auth;
    const char *label;
} documented[] = {
    {"GET", "v1/recommend/u1", ROUTE_AUTH_READ, "GET /v1/recommend/{user}"},
    {"POST", "v1/recommend", ROUTE_AUTH_READ, "POST /v1/recommend"},
    {"GET", "v1/similar/i1", ROUTE_AUTH_READ, "GET /v1/similar/{item}"},
    {"GET", "v1/search", ROUTE_AUTH_READ, "GET /v1/search"},
    {"POST", "v1/embeddings", ROUTE_AUTH_READ, "POST /v1/embeddings"},
    {"GET", "v1/popular", ROUTE_AUTH_READ, "GET /v1/popular"},
    {"GET", "v1/users/u1/history", ROUTE_AUTH_READ, "GET /v1/users/{id}/history"},
    {"POST", "v1/events", ROUTE_AUTH_WRITE, "POST /v1/events"},
    {"POST", "v1/items", ROUTE_AUTH_WRITE, "POST|PUT /v1/items"},
    {"PUT", "v1/items", ROUTE_AUTH_WRITE, "POST|PUT /v1/items"},
    {"PUT", "v1/items/i1", ROUTE_AUTH_WRITE, "PUT /v1/items/{id}"},
    {"DELETE", "v1/items/i1", ROUTE_AUTH_WRITE, "DELETE /v1/items/{id}"},
    {"POST", "v1/users", ROUTE_AUTH_WRITE, "POST /v1/users"},
    {"DELETE", "v1/users/u1", ROUTE_AUTH_WRITE, "DELETE /v1/users/{id}"},
    {"POST", "v1/feedback", ROUTE_AUTH_READ, "POST /v1/feedback"},
    {"GET", "v1/abtest", ROUTE_AUTH_READ, "GET /v1/abtest"},
    {"POST", "v1/admin/reload", ROUTE_AUTH_ADMIN, "POST /v1/admin/reload"},
    {"GET", "v1/stats", ROUTE_AUTH_READ, "GET /v1/stats"},
    {"GET", "v1/model", ROUTE_AUTH_READ, "GET /v1/model"},
    {"GET", "healthz", ROUTE_AUTH_NONE, "GET /healthz"},
    {"HEAD", "healthz", ROUTE_AUTH_NONE, "GET /healthz"},
    {"GET", "readyz", ROUTE_AUTH_NONE, "GET /readyz"},
    {"GET", "metrics", ROUTE_AUTH_READ, "GET /metrics"},
    {"GET", "", ROUTE_AUTH_NONE, "GET /"},
    {"GET", "index.html", ROUTE_AUTH_NONE, "GET /"},
    {"GET", "dashboard.js", ROUTE_AUTH_NONE, "GET /"},
    {"GET", "dashboard.css", ROUTE_AUTH_NONE, "GET /"},
    {"GET", "openapi.yaml", ROUTE_AUTH_NONE, "GET /openapi.yaml"},
    {"HEAD", "openapi.yaml", ROUTE_AUTH_NONE, "GET /openapi.yaml"},
};

MP_TEST(serveroutes_documented_auth_and_labels) {
    size_t n_doc = sizeof documented / sizeof documented[0];
    for (size_t i = 0; i < n_doc; i++) {
        const char *cap;
        size_t cap_len;
        unsigned allowed;
        const route *rt = route_find(route_method_bit(documented[i].method), documented[i].path, &cap, &cap_len,
                                     &allowed);
        CHECK_MSG(rt, "%s /%s: no route", documented[i].method, documented[i].path);
        CHECK_MSG(rt->auth == documented[i].auth, "%s /%s: auth %d, documented %d", documented[i].method,
                  documented[i].path, (int)rt->auth, (int)documented[i].auth);
        CHECK_MSG(!strcmp(rt->label, documented[i].label), "%s /%s: label %s", documented[i].method,
                  documented[i].path, rt->label);
    }
    /* and nothing undocumented: every route is one of the rows above */
    for (size_t r = 0; r < mp_n_routes; r++) {
        int found = 0;
        for (size_t i = 0; i < n_doc && !found; i++)
            found = !strcmp(mp_routes[r].label, documented[i].label);
        CHECK_MSG(found, "route %s is not documented in this test", mp_routes[r].label);
    }
    /* one metrics series per distinct label, then "other" */
    const char *labels[64];
    size_t series[64];
    CHECK(mp_n_routes < 64);
    size_t n = route_series(labels, series);
    CHECK_EQ(n, 24);
    CHECK(!strcmp(labels[n - 1], ROUTE_OTHER_LABEL));
    for (size_t r = 0; r < mp_n_routes; r++) {
        CHECK(series[r] < n - 1);
        CHECK(!strcmp(labels[series[r]], mp_routes[r].label));
    }
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++)
            CHECK_MSG(strcmp(labels[a], labels[b]), "label %s twice", labels[a]);
}

/* Sends one request and returns the status of the answer (-1 on a transport error). */
static int http_status(uint16_t port, const char *method, const char *path, const char *key) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char reqbuf[512];
    int n = snprintf(reqbuf, sizeof reqbuf,
                     "%s /%s HTTP/1.1\r\nHost: localhost\r\n%s%s%sContent-Length: 0\r\nConnection: close\r\n\r\n", method,
                     path, key ? "X-API-Key: " : "", key ? key : "", key ? "\r\n" : "");
    if (send(fd, reqbuf, (size_t)n, 0) != n) {
        close(fd);
        return -1;
    }
    char resp[64] = "";
    size_t got = 0;
    while (got < sizeof resp - 1) {
        ssize_t k = recv(fd, resp + got, sizeof resp - 1 - got, 0);
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    resp[got] = 0;
    int status = -1;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) return -1;
    return status;
}

MP_TEST(serveroutes_server_enforces_each_routes_auth) {
    mp_serve_config cfg;
    mp_error err;
    CHECK_OK(mp_serve_config_init(&cfg, &err), &err);
    int ok = mp_serve_config_set(&cfg, "port", "0", "test", &err) == MP_OK &&
             mp_serve_config_set(&cfg, "listen", "127.0.0.1", "test", &err) == MP_OK &&
             mp_serve_config_set(&cfg, "threads", "2", "test", &err) == MP_OK &&
             mp_serve_config_set(&cfg, "read_keys", "rk-test", "test", &err) == MP_OK &&
             mp_serve_config_set(&cfg, "write_keys", "wk-test", "test", &err) == MP_OK;
    if (!ok) mp_serve_config_free(&cfg);
    CHECK_MSG(ok, "config: %s", err.msg);
    mp_server *srv = NULL;
    if (mp_server_start(&srv, &cfg, &err) != MP_OK) {
        mp_serve_config_free(&cfg);
        CHECK_MSG(0, "server: %s", err.msg);
    }
    uint16_t port = mp_server_port(srv);
    int failed = 0;
    char where[256] = "";
    static const char *const names[ROUTE_N_METHODS] = ROUTE_METHOD_NAMES;
    /* No model is loaded: a request that passes auth gets 503 (live routes), 200 / 404 (health, dashboard, ...),
     * never 401 / 403; one that does not gets exactly those. */
    for (size_t i = 0; i < mp_n_routes && !failed; i++) {
        const route *rt = &mp_routes[i];
        char path[128];
        path_of(rt->pattern, path, sizeof path);
        for (int b = 0; b < ROUTE_N_METHODS && !failed; b++) {
            if (!(rt->methods & (1u << b))) continue;
            int none = http_status(port, names[b], path, NULL);
            int read = http_status(port, names[b], path, "rk-test");
            int write = http_status(port, names[b], path, "wk-test");
            int bad = http_status(port, names[b], path, "not-a-key");
            int want_none = rt->auth == ROUTE_AUTH_NONE ? 0 : 401;
            int want_read = rt->auth >= ROUTE_AUTH_WRITE ? 403 : 0;
            int pass_none = want_none ? none == 401 : none > 0 && none != 401 && none != 403;
            int pass_read = want_read ? read == 403 : read > 0 && read != 401 && read != 403;
            int pass_write = write > 0 && write != 401 && write != 403;
            int pass_bad = rt->auth == ROUTE_AUTH_NONE ? bad != 401 : bad == 401;
            int pass_live = !(rt->flags & ROUTE_LIVE) || write == 503;
            if (!(pass_none && pass_read && pass_write && pass_bad && pass_live)) {
                failed = 1;
                snprintf(where, sizeof where, "%s /%s: no key %d, read key %d, write key %d, bad key %d", names[b],
                         path, none, read, write, bad);
            }
        }
    }
    mp_server_stop(srv);
    mp_serve_config_free(&cfg);
    CHECK_MSG(!failed, "%s", where);
}
