/* src/serve/http.c: the HTTP helpers every part of `magpie serve` answers through (http_internal.h): one place
 * that writes the documented error shape, maps library errors to statuses and decodes query parameters. They
 * only need libmicrohttpd and the request record, so the transport (server.c) and the endpoints (handlers.c,
 * textapi.c) both call down into this file and never into each other's. */
#include "serve/http_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "magpie/records.h"
#include "serve/decode.h"
#include "serve/server.h"

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

enum MHD_Result http_send_json(struct MHD_Connection *c, req *r, int status, mp_buf *b) {
    mp_buf_add(b, "\n", 1);
    size_t len;
    char *text = mp_buf_take(b, &len);
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
    case 409: return "conflict";
    case 413: return "payload_too_large";
    case 415: return "unsupported_media_type";
    case 422: return "unprocessable";
    case 503: return "not_ready";
    default: return status >= 500 ? "internal" : "bad_request";
    }
}

void http_error_object(mp_buf *b, int status, const char *code, const char *message, const char *field) {
    mp_buf_adds(b, "{\"code\":");
    mp_json_put_cstr(b, code ? code : code_of_status(status));
    mp_buf_adds(b, ",\"message\":");
    mp_json_put_cstr(b, message);
    mp_buf_adds(b, ",\"field\":");
    if (field && *field)
        mp_json_put_cstr(b, field);
    else
        mp_buf_adds(b, "null");
    mp_buf_adds(b, "}");
}

enum MHD_Result http_send_error(struct MHD_Connection *c, req *r, int status, const char *code, const char *field,
                                  const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_adds(&b, "{\"error\":");
    http_error_object(&b, status, code, msg, field);
    mp_buf_adds(&b, "}");
    return http_send_json(c, r, status, &b);
}

/* Maps a library error to an HTTP answer. */
enum MHD_Result http_send_mp_error(struct MHD_Connection *c, req *r, const mp_error *err, const char *field) {
    int status;
    switch (err->code) {
    case MP_ENOTFOUND:
    case MP_EEXPIRED: status = 404; break;
    case MP_ECONFLICT: status = 409; break;
    case MP_ENOTMEMBER: status = 422; break;
    case MP_EINVAL:
    case MP_ERANGE: status = 400; break;
    case MP_EBADREC: status = 422; break;
    case MP_EUNSUPPORTED: status = 400; break;
    default: status = 500; break;
    }
    if (!field) field = err->field;
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

int http_is_ndjson(const char *ct) {
    return ct && (!strncasecmp(ct, "application/x-ndjson", 20) || !strncasecmp(ct, "application/jsonl", 17) ||
                  !strncasecmp(ct, "application/x-jsonlines", 23));
}
