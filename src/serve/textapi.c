/* src/serve/textapi.c: the text endpoints of `magpie serve`: GET /v1/search (mp_live_search) and the
 * OpenAI-compatible POST /v1/embeddings over the server's encoder (magpie/encoder.h), plus opening that encoder.
 * Contract: docs/api.md. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "magpie/encoder.h"
#include "magpie/json.h"
#include "magpie/text.h"
#include "magpie/use.h"
#include "serve/handlers.h"
#include "serve/http_internal.h"
#include "serve/jsonbody.h"

#define EMB_MAX_INPUTS 2048 /* OpenAI's limit per request */

int mp_serve_open_encoder(const mp_serve_config *cfg, struct mp_encoder **out, char *warning, size_t cap,
                          mp_error *err) {
    *out = NULL;
    if (cap) warning[0] = 0;
    if (!cfg->encoder || !cfg->encoder[0] || !strcmp(cfg->encoder, "none")) return MP_OK;
    mp_error e;
    mp_error_clear(&e);
    /* one thread: queries are single texts, and the background embedder must not starve the HTTP workers */
    int rc = mp_encoder_open(cfg->encoder, 1, out, &e);
    if (rc == MP_OK) return MP_OK;
    *out = NULL;
    if (rc == MP_ENOTFOUND && !strncmp(cfg->encoder, "use-lite", 8)) {
        int hinted = strstr(e.msg, "npm install") != NULL;
        snprintf(warning, cap, "text encoder %s not available: %s; search is lexical only and /v1/embeddings answers 503%s%s",
                 cfg->encoder, e.msg, hinted ? "" : ". Install it with: ", hinted ? "" : MP_USE_INSTALL_HINT);
        return MP_OK;
    }
    return mp_error_set(err, rc, "encoder \"%s\": %s", cfg->encoder, e.msg);
}

/* ---- GET /v1/search ---- */

enum MHD_Result handle_search(hctx *h) {
    char why[256];
    long n, offset;
    const mp_serve_config *cfg = h->srv->cfg;
    if (http_qint(h->c, "n", 1, (long)cfg->max_n, 10, &n, why, sizeof why))
        return http_send_error(h->c, h->r, 400, NULL, "n", "%s", why);
    if (http_qint(h->c, "offset", 0, 1000000, 0, &offset, why, sizeof why))
        return http_send_error(h->c, h->r, 400, NULL, "offset", "%s", why);
    char qbuf[4096], ubuf[MP_MAX_ID_BYTES * 3 + 8], catbuf[1024];
    int bad = 0;
    const char *q = http_qarg(h->c, "q", qbuf, sizeof qbuf, &bad);
    if (bad) return http_send_error(h->c, h->r, 400, NULL, "q", "query parameter `q` is not valid text (or longer than 4 KiB)");
    if (!q || !*q) return http_send_error(h->c, h->r, 400, NULL, "q", "query parameter `q` (the search text) is required");
    const char *user = http_qarg(h->c, "user", ubuf, sizeof ubuf, &bad);
    if (bad || (user && strlen(user) > MP_MAX_ID_BYTES))
        return http_send_error(h->c, h->r, 400, NULL, "user", "query parameter `user` is not a valid id");
    if (user && !*user) user = NULL;
    const char *category = http_qarg(h->c, "category", catbuf, sizeof catbuf, &bad);
    if (bad) return http_send_error(h->c, h->r, 400, NULL, "category", "query parameter `category` is not valid text");
    mp_live_search_query sq = {0};
    sq.q = q;
    sq.q_len = strlen(q);
    sq.user = user;
    sq.user_len = user ? strlen(user) : 0;
    sq.n = (size_t)n;
    sq.offset = (size_t)offset;
    sq.category = category && *category ? category : NULL;
    mp_live_list l = {0};
    mp_error err;
    mp_error_clear(&err);
    if (mp_live_search(h->live, &sq, &l, &err) != MP_OK) {
        mp_live_list_free(&l);
        return http_send_mp_error(h->c, h->r, &err, NULL);
    }
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_adds(&b, "{\"query\":");
    mp_json_put_cstr(&b, q);
    mp_buf_adds(&b, ",\"user\":");
    mp_json_put_cstr(&b, user);
    mp_buf_adds(&b, ",\"model\":");
    mp_json_put_cstr(&b, l.model);
    mp_buf_adds(&b, ",\"model_version\":");
    mp_json_put_u64(&b, l.model_version);
    mp_buf_adds(&b, ",\"history\":");
    mp_json_put_u64(&b, l.n_history);
    mp_buf_adds(&b, ",\"items\":[");
    for (size_t i = 0; i < l.n; i++) {
        const mp_live_item *it = &l.items[i];
        if (i) mp_buf_add(&b, ",", 1);
        mp_buf_adds(&b, "{\"item\":");
        mp_json_put_cstr(&b, it->item);
        mp_buf_adds(&b, ",\"title\":");
        mp_json_put_cstr(&b, it->title);
        mp_buf_adds(&b, ",\"category\":");
        mp_json_put_cstr(&b, it->category);
        mp_buf_adds(&b, ",\"score\":");
        mp_json_put_f32(&b, it->score);
        mp_buf_adds(&b, ",\"reason\":");
        mp_json_put_cstr(&b, it->reason ? it->reason : "");
        mp_buf_add(&b, "}", 1);
    }
    mp_buf_adds(&b, "]}");
    mp_live_list_free(&l);
    return http_send_json(h->c, h->r, 200, &b);
}

/* ---- POST /v1/embeddings ---- */

/* The server's error object plus OpenAI's `type` and `param`, so both kinds of client read it. */
static enum MHD_Result emb_error(hctx *h, int status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum MHD_Result emb_error(hctx *h, int status, const char *code, const char *field, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_adds(&b, "{\"error\":{\"code\":");
    mp_json_put_cstr(&b, code);
    mp_buf_adds(&b, ",\"message\":");
    mp_json_put_cstr(&b, msg);
    mp_buf_adds(&b, ",\"field\":");
    mp_json_put_cstr(&b, field);
    mp_buf_adds(&b, ",\"type\":");
    mp_json_put_cstr(&b, status >= 500 ? "server_error" : "invalid_request_error");
    mp_buf_adds(&b, ",\"param\":");
    mp_json_put_cstr(&b, field);
    mp_buf_adds(&b, "}}");
    return http_send_json(h->c, h->r, status, &b);
}

/* Tokens of a text as counted in `usage`: words and CJK characters (the feature tokenizer's unigrams). */
static uint64_t count_tokens(const char *s, size_t len) {
    mp_text_tokens *t = NULL;
    if (mp_text_features(s, len, NULL, &t, NULL) != MP_OK) return 0;
    uint64_t n = 0;
    for (size_t k = 0; k < t->n; k++)
        n += t->toks[k].kind == MP_TOK_WORD || t->toks[k].kind == MP_TOK_CJK || t->toks[k].kind == MP_TOK_SYMBOL;
    mp_text_tokens_free(t);
    return n;
}

static void base64_floats(mp_buf *b, const float *v, uint32_t dim) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)v; /* little-endian float32, as OpenAI sends */
    size_t n = (size_t)dim * 4;
    mp_buf_add(b, "\"", 1);
    for (size_t i = 0; i < n; i += 3) {
        unsigned x = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        char out[4] = {tab[x >> 18 & 63], tab[x >> 12 & 63], i + 1 < n ? tab[x >> 6 & 63] : '=',
                       i + 2 < n ? tab[x & 63] : '='};
        mp_buf_add(b, out, 4);
    }
    mp_buf_add(b, "\"", 1);
}

/* The body of POST /v1/embeddings, as jbody_decode fills it. */
typedef struct emb_body {
    const char **texts; /* [EMB_MAX_INPUTS], pointing into the body or the decoder's scratch */
    size_t *lens;       /* [EMB_MAX_INPUTS] */
    size_t n;
    char model[256];
    int b64; /* index in emb_formats */
    long dims;
} emb_body;

/* `input`: one string or an array of strings (OpenAI's token arrays are not accepted). */
static int read_input(mp_json_cur *cur, char **scratch, void *dst, const jbody_field *f, jbody_error *e) {
    emb_body *eb = dst;
    mp_json_type t = mp_json_peek(cur);
    mp_str s;
    if (t == MP_JSON_STRING) {
        if (mp_json_string(cur, scratch, &s) != MP_OK) goto bad_json;
        if (eb->n == EMB_MAX_INPUTS) goto too_many;
        eb->texts[eb->n] = s.ptr;
        eb->lens[eb->n++] = s.len;
        return 0;
    }
    if (t != MP_JSON_ARRAY) {
        snprintf(e->why, sizeof e->why, "field `input` must be a string or an array of strings");
        return 400;
    }
    if (mp_json_array_begin(cur) != MP_OK) goto bad_json;
    for (;;) {
        int end;
        if (mp_json_array_next(cur, &end) != MP_OK) goto bad_json;
        if (end) return 0;
        if (mp_json_peek(cur) != MP_JSON_STRING) {
            snprintf(e->why, sizeof e->why, "field `input`: every element must be a string (token arrays are not accepted)");
            return 400;
        }
        if (eb->n == EMB_MAX_INPUTS) goto too_many;
        if (mp_json_string(cur, scratch, &s) != MP_OK) goto bad_json;
        eb->texts[eb->n] = s.ptr;
        eb->lens[eb->n++] = s.len;
    }
too_many:
    snprintf(e->why, sizeof e->why, "field `input`: at most %d texts per request", EMB_MAX_INPUTS);
    return 400;
bad_json:
    snprintf(e->why, sizeof e->why, "malformed JSON in field `%s`: %s", f->name, cur->why ? cur->why : "syntax error");
    return 400;
}

static const char *const emb_formats[] = {"float", "base64", NULL};
static const jbody_field emb_fields[] = {
    /* offset 0: the reader fills texts, lens and n together */
    {.name = "input", .type = JBODY_CUSTOM, .offset = 0, .flags = JBODY_REQUIRED, .read = read_input},
    {.name = "model", .type = JBODY_STRING, .offset = offsetof(emb_body, model), .cap = sizeof(((emb_body *)0)->model),
     .why = "must be a string (the encoder's name, e.g. \"use-lite\")"},
    {.name = "encoding_format", .type = JBODY_ENUM, .offset = offsetof(emb_body, b64), .choices = emb_formats},
    {.name = "dimensions", .type = JBODY_INT, .offset = offsetof(emb_body, dims), .lo = 1, .hi = 65536,
     .why = "must be a positive integer"},
    {.name = "user", .type = JBODY_ANY}, /* OpenAI's end-user tag: accepted and ignored */
};
static const jbody_spec emb_spec = {emb_fields, sizeof emb_fields / sizeof emb_fields[0],
                                    "body: expected a JSON object {\"input\": \"text\" or [\"a\", \"b\"]}",
                                    "body: expected a JSON object {\"input\": ..., \"model\": ...}",
                                    "(a string or an array of strings)"};

enum MHD_Result handle_embeddings(hctx *h) {
    req *r = h->r;
    mp_encoder *enc = mp_live_encoder(h->live);
    emb_body eb;
    memset(&eb, 0, sizeof eb);
    eb.texts = malloc(EMB_MAX_INPUTS * sizeof *eb.texts);
    eb.lens = malloc(EMB_MAX_INPUTS * sizeof *eb.lens);
    if (!eb.texts || !eb.lens) {
        free(eb.texts);
        free(eb.lens);
        return emb_error(h, 500, "internal", NULL, "out of memory");
    }
    jbody_result res;
    jbody_error je;
    int status = jbody_decode(&emb_spec, r->body, r->len, &eb, &res, &je);
    const char **texts = eb.texts;
    size_t *lens = eb.lens, n = eb.n;
    int b64 = eb.b64 == 1;
    long dims = eb.dims;
    const char *model = eb.model;
    char why[512] = "", field[32] = "";
    const char *code = "bad_request";
    if (status) {
        code = status >= 500 ? "internal" : "bad_request";
        snprintf(field, sizeof field, "%s", je.field);
        snprintf(why, sizeof why, "%s", je.why);
        goto done;
    }
    snprintf(field, sizeof field, "input");
    if (n == 0) {
        status = 400;
        snprintf(why, sizeof why, "field `input`: give at least one text");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (lens[i] == 0) {
            status = 400;
            snprintf(why, sizeof why, "field `input`: text %zu is empty", i);
            goto done;
        }
    if (!enc) {
        status = 503;
        code = "no_encoder";
        field[0] = 0;
        snprintf(why, sizeof why,
                 "this server has no text encoder (start it with --encoder use-lite after: %s, or "
                 "--encoder openai:MODEL@URL)",
                 MP_USE_INSTALL_HINT);
        goto done;
    }
    const char *name = mp_encoder_name(enc);
    if (model[0] && strcmp(model, name)) {
        status = 404;
        code = "model_not_found";
        snprintf(field, sizeof field, "model");
        snprintf(why, sizeof why, "model \"%s\" is not served here; this server embeds with \"%s\"", model, name);
        goto done;
    }
    float *vecs = NULL;
    uint32_t dim = 0;
    mp_error err;
    mp_error_clear(&err);
    if (mp_encoder_embed(enc, texts, lens, n, &vecs, &dim, &err) != MP_OK) {
        status = err.code == MP_EINVAL ? 400 : 500;
        code = status == 400 ? "bad_request" : "internal";
        snprintf(why, sizeof why, "%s", err.msg);
        goto done;
    }
    if (dims && (uint32_t)dims != dim) {
        free(vecs);
        status = 400;
        snprintf(field, sizeof field, "dimensions");
        snprintf(why, sizeof why, "field `dimensions`: encoder \"%s\" gives %u, not %ld", name, dim, dims);
        goto done;
    }
    uint64_t tokens = 0;
    for (size_t i = 0; i < n; i++) tokens += count_tokens(texts[i], lens[i]);
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_adds(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) mp_buf_add(&b, ",", 1);
        mp_buf_adds(&b, "{\"object\":\"embedding\",\"index\":");
        mp_json_put_u64(&b, i);
        mp_buf_adds(&b, ",\"embedding\":");
        const float *v = vecs + i * dim;
        if (b64) {
            base64_floats(&b, v, dim);
        } else {
            mp_buf_add(&b, "[", 1);
            for (uint32_t d = 0; d < dim; d++) {
                if (d) mp_buf_add(&b, ",", 1);
                mp_json_put_f32(&b, v[d]);
            }
            mp_buf_add(&b, "]", 1);
        }
        mp_buf_add(&b, "}", 1);
    }
    mp_buf_adds(&b, "],\"model\":");
    mp_json_put_cstr(&b, name);
    mp_buf_printf(&b, ",\"usage\":{\"prompt_tokens\":%llu,\"total_tokens\":%llu}}", (unsigned long long)tokens,
                  (unsigned long long)tokens);
    free(vecs);
    jbody_result_free(&res);
    free(texts);
    free(lens);
    return http_send_json(h->c, r, 200, &b);
done:
    jbody_result_free(&res);
    free(texts);
    free(lens);
    return emb_error(h, status, code, field[0] ? field : NULL, "%s", why);
}
