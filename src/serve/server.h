/* src/serve/server.h: the HTTP/1.1 front of `magpie serve` (libmicrohttpd, internal epoll thread pool).
 *
 * The server listens before the live recommender is loaded: until mp_server_set_live is called, /healthz answers
 * 200, /readyz 503 and every /v1 call 503 `not_ready`. Routes, auth, limits and the error shape are documented in
 * docs/api.md; the handlers call include/magpie/live.h and src/serve/decode.h. */
#ifndef MAGPIE_SERVE_SERVER_H
#define MAGPIE_SERVE_SERVER_H

#include <stdint.h>
#include <stdio.h>

#include "magpie/error.h"
#include "magpie/live.h"
#include "serve/config.h"
#include "serve/metrics.h"

typedef struct mp_server mp_server;

/* Starts listening with the settings of cfg (borrowed: it must outlive the server). *out owned by the caller:
 * mp_server_stop. */
int mp_server_start(mp_server **out, const mp_serve_config *cfg, mp_error *err);
/* The TCP port actually bound (useful with port 0). */
uint16_t mp_server_port(const mp_server *s);
/* Makes the server ready: requests are answered from `live` (borrowed; it must outlive the server). */
void mp_server_set_live(mp_server *s, mp_live *live);
mp_metrics *mp_server_metrics(mp_server *s);
/* Records a reload outcome and the current model in the metrics. */
void mp_server_note_model(mp_server *s, int reload_ok);
/* Stops accepting connections, lets requests in flight finish, frees everything. NULL is a no-op. */
void mp_server_stop(mp_server *s);

/* Opens the text encoder named by cfg->encoder for the live recommender (search, /v1/embeddings, content models):
 * *out NULL for "" or "none". A missing USE-Lite package is not an error: *out stays NULL and `warning` (cap bytes)
 * gets a line naming the install command, so the server runs without semantic search. Other failures (a bad spec)
 * are errors. *out owned by the caller: mp_encoder_free after mp_live_close. */
struct mp_encoder;
int mp_serve_open_encoder(const mp_serve_config *cfg, struct mp_encoder **out, char *warning, size_t cap,
                          mp_error *err);

/* (routes.c) Writes the route table to f, one line per endpoint and method: "METHOD /PATTERN AUTH QUERY" with
 * AUTH none / read / write / admin, "*" for a captured path segment, QUERY the allowed query parameters separated
 * by commas ("-" when there are none; "any" for routes that do not check their query). What `magpie serve
 * --routes` prints; tests/cli/openapi.sh compares it with docs/openapi.yaml. Reentrant. */
void mp_serve_print_routes(FILE *f);

/* (http.c) Percent-decodes s[0..n) into out (room for n + 1 bytes); `plus_space` turns '+' into ' ' (query strings).
 * Returns the decoded length, or -1 for a bad escape ("%G1", "%4") or a decoded NUL byte. */
long mp_url_decode(const char *s, size_t n, char *out, int plus_space);

#endif
