/* src/serve/textapi.c: the text endpoints of `magpie serve`: GET /v1/search (mp_live_search) and the
 * OpenAI-compatible POST /v1/embeddings over the server's encoder (magpie/encoder.h), plus opening that encoder.
 * Contract: docs/api.md. */
#include <math.h>
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
    jbuf b;
    jb_init(&b);
    jb_cstr(&b, "{\"query\":");
    jb_cstr_json(&b, q);
    jb_cstr(&b, ",\"user\":");
    jb_cstr_json(&b, user);
    jb_cstr(&b, ",\"model\":");
    jb_cstr_json(&b, l.model);
    jb_cstr(&b, ",\"model_version\":");
    jb_u64(&b, l.model_version);
    jb_cstr(&b, ",\"history\":");
    jb_u64(&b, l.n_history);
    jb_cstr(&b, ",\"items\":[");
    for (size_t i = 0; i < l.n; i++) {
        const mp_live_item *it = &l.items[i];
        if (i) jb_raw(&b, ",", 1);
        jb_cstr(&b, "{\"item\":");
        jb_cstr_json(&b, it->item);
        jb_cstr(&b, ",\"title\":");
        jb_cstr_json(&b, it->title);
        jb_cstr(&b, ",\"category\":");
        jb_cstr_json(&b, it->category);
        jb_cstr(&b, ",\"score\":");
        jb_f32(&b, it->score);
        jb_cstr(&b, ",\"reason\":");
        jb_cstr_json(&b, it->reason ? it->reason : "");
        jb_raw(&b, "}", 1);
    }
    jb_cstr(&b, "]}");
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
    jbuf b;
    jb_init(&b);
    jb_cstr(&b, "{\"error\":{\"code\":");
    jb_cstr_json(&b, code);
    jb_cstr(&b, ",\"message\":");
    jb_cstr_json(&b, msg);
    jb_cstr(&b, ",\"field\":");
    jb_cstr_json(&b, field);
    jb_cstr(&b, ",\"type\":");
    jb_cstr_json(&b, status >= 500 ? "server_error" : "invalid_request_error");
    jb_cstr(&b, ",\"param\":");
    jb_cstr_json(&b, field);
    jb_cstr(&b, "}}");
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

static void base64_floats(jbuf *b, const float *v, uint32_t dim) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)v; /* little-endian float32, as OpenAI sends */
    size_t n = (size_t)dim * 4;
    jb_raw(b, "\"", 1);
    for (size_t i = 0; i < n; i += 3) {
        unsigned x = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        char out[4] = {tab[x >> 18 & 63], tab[x >> 12 & 63], i + 1 < n ? tab[x >> 6 & 63] : '=',
                       i + 2 < n ? tab[x & 63] : '='};
        jb_raw(b, out, 4);
    }
    jb_raw(b, "\"", 1);
}

enum MHD_Result handle_embeddings(hctx *h) {
    req *r = h->r;
    mp_encoder *enc = mp_live_encoder(h->live);
    if (r->len == 0)
        return emb_error(h, 400, "bad_request", NULL, "body: expected a JSON object {\"input\": \"text\" or [\"a\", \"b\"]}");
    const char *why_json = NULL;
    if (mp_json_validate(r->body, r->len, &why_json) != MP_OK)
        return emb_error(h, 400, "bad_request", NULL, "body: malformed JSON: %s", why_json ? why_json : "syntax error");
    char *scratch_mem = malloc(r->len + 1);
    const char **texts = malloc(EMB_MAX_INPUTS * sizeof *texts);
    size_t *lens = malloc(EMB_MAX_INPUTS * sizeof *lens);
    if (!scratch_mem || !texts || !lens) {
        free(scratch_mem);
        free(texts);
        free(lens);
        return emb_error(h, 500, "internal", NULL, "out of memory");
    }
    char *scratch = scratch_mem;
    mp_json_cur cur;
    mp_json_init(&cur, r->body, r->len);
    size_t n = 0;
    int have_input = 0, b64 = 0, status = 0;
    long dims = 0;
    char why[512] = "", field[32] = "", model[256] = "";
    const char *code = "bad_request";
    if (mp_json_peek(&cur) != MP_JSON_OBJECT) {
        status = 400;
        snprintf(why, sizeof why, "body: expected a JSON object {\"input\": ..., \"model\": ...}");
        goto done;
    }
    mp_json_object_begin(&cur);
    for (;;) {
        mp_str key;
        int fin;
        if (mp_json_object_next(&cur, &scratch, &key, &fin) != MP_OK) {
            status = 400;
            snprintf(why, sizeof why, "body: malformed JSON");
            goto done;
        }
        if (fin) break;
        snprintf(field, sizeof field, "%.*s", (int)(key.len < 31 ? key.len : 31), key.ptr);
        mp_json_type t = mp_json_peek(&cur);
        mp_str s;
        if (!strcmp(field, "input")) {
            have_input = 1;
            if (t == MP_JSON_STRING) {
                if (mp_json_string(&cur, &scratch, &s) != MP_OK) goto bad_json;
                texts[n] = s.ptr;
                lens[n++] = s.len;
            } else if (t == MP_JSON_ARRAY) {
                if (mp_json_array_begin(&cur) != MP_OK) goto bad_json;
                for (;;) {
                    int end;
                    if (mp_json_array_next(&cur, &end) != MP_OK) goto bad_json;
                    if (end) break;
                    if (mp_json_peek(&cur) != MP_JSON_STRING) {
                        status = 400;
                        snprintf(why, sizeof why,
                                 "field `input`: every element must be a string (token arrays are not accepted)");
                        goto done;
                    }
                    if (n == EMB_MAX_INPUTS) {
                        status = 400;
                        snprintf(why, sizeof why, "field `input`: at most %d texts per request", EMB_MAX_INPUTS);
                        goto done;
                    }
                    if (mp_json_string(&cur, &scratch, &s) != MP_OK) goto bad_json;
                    texts[n] = s.ptr;
                    lens[n++] = s.len;
                }
            } else {
                status = 400;
                snprintf(why, sizeof why, "field `input` must be a string or an array of strings");
                goto done;
            }
        } else if (!strcmp(field, "model")) {
            if (t != MP_JSON_STRING || mp_json_string(&cur, &scratch, &s) != MP_OK || s.len >= sizeof model) {
                status = 400;
                snprintf(why, sizeof why, "field `model` must be a string (the encoder's name, e.g. \"use-lite\")");
                goto done;
            }
            memcpy(model, s.ptr, s.len);
            model[s.len] = 0;
        } else if (!strcmp(field, "encoding_format")) {
            if (t != MP_JSON_STRING || mp_json_string(&cur, &scratch, &s) != MP_OK ||
                !((s.len == 5 && !memcmp(s.ptr, "float", 5)) || (s.len == 6 && !memcmp(s.ptr, "base64", 6)))) {
                status = 400;
                snprintf(why, sizeof why, "field `encoding_format` must be \"float\" or \"base64\"");
                goto done;
            }
            b64 = s.len == 6;
        } else if (!strcmp(field, "dimensions")) {
            double v;
            int is_int;
            mp_str raw;
            if (t != MP_JSON_NUMBER || mp_json_number(&cur, &raw, &is_int, &v) != MP_OK || !is_int || v < 1 ||
                v > 65536) {
                status = 400;
                snprintf(why, sizeof why, "field `dimensions` must be a positive integer");
                goto done;
            }
            dims = (long)v;
        } else if (!strcmp(field, "user")) { /* OpenAI's end-user tag: accepted and ignored */
            if (mp_json_skip(&cur, NULL) != MP_OK) goto bad_json;
        } else {
            status = 400;
            snprintf(why, sizeof why,
                     "unknown field `%s` (known: input, model, encoding_format, dimensions, user)", field);
            goto done;
        }
    }
    field[0] = 0;
    if (!have_input) {
        status = 400;
        snprintf(field, sizeof field, "input");
        snprintf(why, sizeof why, "missing required field `input` (a string or an array of strings)");
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
    jbuf b;
    jb_init(&b);
    jb_cstr(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) jb_raw(&b, ",", 1);
        jb_cstr(&b, "{\"object\":\"embedding\",\"index\":");
        jb_u64(&b, i);
        jb_cstr(&b, ",\"embedding\":");
        const float *v = vecs + i * dim;
        if (b64) {
            base64_floats(&b, v, dim);
        } else {
            jb_raw(&b, "[", 1);
            for (uint32_t d = 0; d < dim; d++) {
                if (d) jb_raw(&b, ",", 1);
                jb_f32(&b, v[d]);
            }
            jb_raw(&b, "]", 1);
        }
        jb_raw(&b, "}", 1);
    }
    jb_cstr(&b, "],\"model\":");
    jb_cstr_json(&b, name);
    jb_printf(&b, ",\"usage\":{\"prompt_tokens\":%llu,\"total_tokens\":%llu}}", (unsigned long long)tokens,
              (unsigned long long)tokens);
    free(vecs);
    free(scratch_mem);
    free(texts);
    free(lens);
    return http_send_json(h->c, r, 200, &b);
bad_json:
    status = 400;
    snprintf(why, sizeof why, "malformed JSON in field `%s`: %s", field, cur.why ? cur.why : "syntax error");
done:
    free(scratch_mem);
    free(texts);
    free(lens);
    return emb_error(h, status, code, field[0] ? field : NULL, "%s", why);
}
