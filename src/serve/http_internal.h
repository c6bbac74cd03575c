/* src/serve/http_internal.h: the HTTP helpers of `magpie serve` (http.c), not an API. Every answer goes through
 * them, so every error has the documented shape {"error":{"code","message","field"}} (docs/api.md).
 *
 * This is the bottom of the server's layers: server.c (transport, routing), routes.c (the route table),
 * handlers.c and textapi.c (the endpoints) call down into http.c, and http.c calls none of them.
 * Thread-safety: every function here is reentrant; a req and its connection belong to one request, which
 * libmicrohttpd runs on one thread at a time. */
#ifndef MAGPIE_SERVE_HTTP_INTERNAL_H
#define MAGPIE_SERVE_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <stddef.h>

#include "magpie/buf.h"
#include "magpie/error.h"
#include "magpie/json.h"

/* One request's state, from the first callback to the completion notice. Owned by server.c (allocated on the
 * first callback, freed on completion); the handlers read the body and the helpers set status. */
typedef struct req {
    double t0;
    size_t endpoint; /* metrics series of the matched route (routes.h); the "other" series until one matches */
    int status;      /* of the queued response (for metrics) */
    char *body;      /* NUL-terminated at len; NULL when no body came */
    size_t len, cap;
    int too_big;   /* body exceeded max_body: rest discarded */
    int timed_out; /* request_timeout passed while the body was arriving */
} req;

/* ---- responses ---- */
/* Queues text (must_free: the response owns and frees it) with Content-Type `type`; records the status in r. */
enum MHD_Result http_send_text(struct MHD_Connection *c, req *r, int status, const char *type, char *text, size_t len,
                               int must_free);
/* Queues the JSON in b (taken; a newline is appended). */
enum MHD_Result http_send_json(struct MHD_Connection *c, req *r, int status, mp_buf *b);
/* {"code":..,"message":..,"field":..} (code NULL: the status's default code). */
void http_error_object(mp_buf *b, int status, const char *code, const char *message, const char *field);
/* Queues {"error":{...}} with a printf message. */
enum MHD_Result http_send_error(struct MHD_Connection *c, req *r, int status, const char *code, const char *field,
                                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Maps a library error to its status by the code alone (MP_ENOTFOUND, MP_EEXPIRED 404; MP_EINVAL, MP_ERANGE,
 * MP_EUNSUPPORTED 400; MP_EBADREC, MP_ENOTMEMBER 422; MP_ECONFLICT 409; else 500); field NULL: read from the
 * message. */
enum MHD_Result http_send_mp_error(struct MHD_Connection *c, req *r, const mp_error *err, const char *field);

/* ---- query parameters and headers ---- */
/* Decoded query parameter `name` into buf, or NULL if absent; *bad set when it does not decode. */
const char *http_qarg(struct MHD_Connection *c, const char *name, char *buf, size_t cap, int *bad);
/* Integer parameter in [lo, hi] (absent: def); 0 or 400 with why filled. */
int http_qint(struct MHD_Connection *c, const char *name, long lo, long hi, long def, long *out, char *why,
              size_t why_cap);
/* Boolean parameter (1/true/yes/empty, 0/false/no); 0 or 400 with why filled. */
int http_qbool(struct MHD_Connection *c, const char *name, int *out, char *why, size_t why_cap);
/* 1 when the Content-Type (may be NULL) names JSON Lines. */
int http_is_ndjson(const char *content_type);

#endif
