/* src/serve/handlers.c: the endpoints of `magpie serve` over mp_live (the contract is docs/api.md): each reads
 * its parameters or body, calls the live recommender and answers JSON through the helpers of http_internal.h. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "magpie/encoder.h"
#include "magpie/json.h"
#include "serve/assets.h"
#include "serve/explorejson.h"
#include "serve/decode.h"
#include "serve/handlers.h"
#include "serve/http_internal.h"
#include "serve/jsonbody.h"

/* ---------------------------------------------------------------------------------------------------------------
 * Handlers */

static void write_list_items(mp_buf *b, const mp_live_list *l, int with_reason, const mp_explore_slate *sl) {
    mp_buf_adds(b, "\"items\":[");
    size_t n = sl ? sl->k : l->n;
    for (size_t i = 0; i < n; i++) {
        const mp_live_item *it = &l->items[i];
        if (i) mp_buf_add(b, ",", 1);
        mp_buf_adds(b, "{\"item\":");
        mp_json_put_cstr(b, it->item);
        mp_buf_adds(b, ",\"title\":");
        mp_json_put_cstr(b, it->title);
        mp_buf_adds(b, ",\"category\":");
        mp_json_put_cstr(b, it->category);
        mp_buf_adds(b, ",\"score\":");
        mp_json_put_f32(b, it->score);
        if (with_reason) {
            mp_buf_adds(b, ",\"reason\":");
            mp_json_put_cstr(b, it->reason ? it->reason : "");
        }
        if (sl) {
            mp_buf_adds(b, ",\"propensity\":");
            if (isfinite(sl->propensity[i]))
                mp_json_put_f64(b, sl->propensity[i]);
            else
                mp_buf_adds(b, "null");
        }
        mp_buf_add(b, "}", 1);
    }
    mp_buf_add(b, "]", 1);
}

static enum MHD_Result answer_list(hctx *h, const char *user, size_t user_len, const mp_live_list *l, int explain,
                                   long unknown_session, const mp_explore_slate *sl) {
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_adds(&b, "{\"user\":");
    mp_json_put_str(&b, user, user_len);
    mp_buf_adds(&b, ",\"model\":");
    mp_json_put_cstr(&b, l->model);
    mp_buf_adds(&b, ",\"model_version\":");
    mp_json_put_u64(&b, l->model_version);
    mp_buf_adds(&b, ",\"fallback\":");
    mp_json_put_bool(&b, l->fallback);
    mp_buf_adds(&b, ",\"history\":");
    mp_json_put_u64(&b, l->n_history);
    if (unknown_session >= 0) {
        mp_buf_adds(&b, ",\"unknown_items\":");
        mp_json_put_u64(&b, (uint64_t)unknown_session);
    }
    if (sl) {
        mp_buf_adds(&b, ",\"event_id\":");
        mp_json_put_cstr(&b, sl->event_id[0] ? sl->event_id : NULL);
        mp_buf_adds(&b, ",\"variant\":");
        mp_json_put_cstr(&b, sl->variant);
        mp_buf_adds(&b, ",\"policy\":");
        mp_json_put_cstr(&b, sl->policy);
    }
    mp_buf_add(&b, ",", 1);
    write_list_items(&b, l, explain, sl);
    mp_buf_add(&b, "}", 1);
    return http_send_json(h->c, h->r, 200, &b);
}

/* Splits a comma-separated list of ids (decoded text in buf, modified) into ids[] (at most cap). */
static size_t split_ids(char *buf, const char **ids, size_t cap) {
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t && n < cap; t = strtok_r(NULL, ",", &save))
        if (*t) ids[n++] = t;
    return n;
}

#define MAX_EXCLUDE 1000

static double mono_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Recommends for q and answers: through the explore state (magpie/explore.h) when it is active for this request
 * (the model's top n * bandit_pool candidates, of which the policy serves n), else the model's list as is. */
static enum MHD_Result recommend_and_answer(hctx *h, mp_live_query *q, const char *user, size_t user_len,
                                            const char *policy_spec, const mp_serve_rules *rules, int session) {
    if (rules->price_min > rules->price_max) /* both given (a comparison with NAN is false) */
        return http_send_error(h->c, h->r, 400, NULL, "price_min", "price_min %g is above price_max %g",
                               rules->price_min, rules->price_max);
    mp_explore_request xr = {policy_spec, rules->price_min, rules->price_max, mono_seconds()};
    mp_explore_slate sl;
    q->explore = h->srv->explore;
    q->explore_req = &xr;
    q->slate = &sl;
    mp_live_list l = {0};
    mp_error err;
    mp_error_clear(&err);
    size_t unknown = 0;
    if (mp_live_recommend(h->live, q, &l, session ? &unknown : NULL, &err) != MP_OK) {
        const char *field = sl.bad_field ? sl.bad_field : !session && err.code == MP_ENOTFOUND ? "user" : NULL;
        mp_explore_slate_free(&sl);
        mp_live_list_free(&l);
        return http_send_mp_error(h->c, h->r, &err, field);
    }
    enum MHD_Result rc = answer_list(h, user, user_len, &l, q->explain, session ? (long)unknown : -1,
                                     sl.active ? &sl : NULL);
    mp_explore_slate_free(&sl);
    mp_live_list_free(&l);
    return rc;
}

enum MHD_Result handle_recommend_get(hctx *h) {
    char why[256];
    long n, offset;
    int explain, include_seen;
    const mp_serve_config *cfg = h->srv->cfg;
    if (http_qint(h->c, "n", 1, (long)cfg->max_n, 10, &n, why, sizeof why))
        return http_send_error(h->c, h->r, 400, NULL, "n", "%s", why);
    if (http_qint(h->c, "offset", 0, 1000000, 0, &offset, why, sizeof why))
        return http_send_error(h->c, h->r, 400, NULL, "offset", "%s", why);
    if (http_qbool(h->c, "explain", &explain, why, sizeof why))
        return http_send_error(h->c, h->r, 400, NULL, "explain", "%s", why);
    if (http_qbool(h->c, "include_seen", &include_seen, why, sizeof why))
        return http_send_error(h->c, h->r, 400, NULL, "include_seen", "%s", why);
    char catbuf[1024], exbuf[64 * 1024];
    int bad = 0;
    const char *category = http_qarg(h->c, "category", catbuf, sizeof catbuf, &bad);
    if (bad) return http_send_error(h->c, h->r, 400, NULL, "category", "query parameter `category` is not valid text");
    const char *ex = http_qarg(h->c, "exclude", exbuf, sizeof exbuf, &bad);
    if (bad) return http_send_error(h->c, h->r, 400, NULL, "exclude", "query parameter `exclude` is not valid text");
    char textbuf[4096];
    const char *text = http_qarg(h->c, "q", textbuf, sizeof textbuf, &bad);
    if (bad) return http_send_error(h->c, h->r, 400, NULL, "q", "query parameter `q` is not valid text (or longer than 4 KiB)");
    char polbuf[512];
    const char *policy = http_qarg(h->c, "policy", polbuf, sizeof polbuf, &bad);
    if (bad) return http_send_error(h->c, h->r, 400, NULL, "policy", "query parameter `policy` is not valid text");
    mp_serve_rules rules = {NAN, NAN};
    static const char *const pnames[2] = {"price_min", "price_max"};
    for (int i = 0; i < 2; i++) {
        char pbuf[64];
        const char *pv = http_qarg(h->c, pnames[i], pbuf, sizeof pbuf, &bad);
        if (bad || (pv && (!*pv || mp_serve_parse_price(pv, i ? &rules.price_max : &rules.price_min))))
            return http_send_error(h->c, h->r, 400, NULL, pnames[i], "query parameter `%s` must be a price (a number >= 0)",
                                   pnames[i]);
    }
    const char *ids[MAX_EXCLUDE];
    size_t n_ex = ex ? split_ids(exbuf, ids, MAX_EXCLUDE) : 0;
    mp_live_query q = {0};
    q.text = text && *text ? text : NULL;
    q.text_len = q.text ? strlen(q.text) : 0;
    q.user = h->seg;
    q.user_len = h->seg_len;
    q.n = (size_t)n;
    q.offset = (size_t)offset;
    q.category = category && *category ? category : NULL;
    q.exclude = ids;
    q.n_exclude = n_ex;
    q.explain = explain;
    q.include_seen = include_seen;
    return recommend_and_answer(h, &q, h->seg, h->seg_len, policy && *policy ? policy : NULL, &rules, 0);
}

/* Reads a JSON array of strings (ids) into a new array of NUL-terminated copies stored in `store` (a mp_buf used as
 * an arena; offsets first, pointers fixed at the end). */
typedef struct idlist {
    char **ids;
    size_t n, cap;
} idlist;

static void idlist_free(idlist *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->ids[i]);
    free(l->ids);
    memset(l, 0, sizeof *l);
}

static int idlist_push(idlist *l, const char *s, size_t n) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **p = realloc(l->ids, cap * sizeof *p);
        if (!p) return MP_ENOMEM;
        l->ids = p;
        l->cap = cap;
    }
    char *d = malloc(n + 1);
    if (!d) return MP_ENOMEM;
    memcpy(d, s, n);
    d[n] = 0;
    l->ids[l->n++] = d;
    return MP_OK;
}

/* Parses an array of id strings at the cursor. Returns 0 or an HTTP status with why filled. */
static int parse_id_array(mp_json_cur *cur, char **scratch, idlist *out, size_t max, const char *field, char *why,
                          size_t cap) {
    if (mp_json_peek(cur) != MP_JSON_ARRAY) {
        snprintf(why, cap, "field `%s` must be an array of item ids", field);
        return 400;
    }
    if (mp_json_array_begin(cur) != MP_OK) goto bad_json;
    for (;;) {
        int done;
        if (mp_json_array_next(cur, &done) != MP_OK) goto bad_json;
        if (done) break;
        mp_str s;
        if (mp_json_peek(cur) != MP_JSON_STRING) {
            snprintf(why, cap, "field `%s`: every element must be a string (an item id)", field);
            return 400;
        }
        if (mp_json_string(cur, scratch, &s) != MP_OK) goto bad_json;
        if (s.len == 0 || s.len > MP_MAX_ID_BYTES) {
            snprintf(why, cap, "field `%s`: ids must be 1 to 256 bytes", field);
            return 400;
        }
        if (out->n >= max) {
            snprintf(why, cap, "field `%s`: at most %zu ids", field, max);
            return 400;
        }
        if (idlist_push(out, s.ptr, s.len)) {
            snprintf(why, cap, "out of memory");
            return 500;
        }
    }
    return 0;
bad_json:
    snprintf(why, cap, "malformed JSON in field `%s`: %s", field, cur->why ? cur->why : "syntax error");
    return 400;
}

/* Appends a text field to `text` (space-separated): `q` a string; `profile` a string or an object of attributes
 * whose string and number values are taken ({"gender": "女", "age": 30, "likes": ["跑步"]} -> "女 30 跑步"). */
static int parse_text_value(mp_json_cur *cur, char **scratch, mp_buf *text, int depth) {
    mp_json_type t = mp_json_peek(cur);
    mp_str s;
    if (t == MP_JSON_STRING) {
        if (mp_json_string(cur, scratch, &s) != MP_OK) return -1;
        if (s.len == 0) return 0;
        if (text->len) mp_buf_add(text, " ", 1);
        mp_buf_add(text, s.ptr, s.len);
        return 0;
    }
    if (t == MP_JSON_NUMBER) {
        if (mp_json_number(cur, &s, NULL, NULL) != MP_OK) return -1;
        if (text->len) mp_buf_add(text, " ", 1);
        mp_buf_add(text, s.ptr, s.len);
        return 0;
    }
    if ((t == MP_JSON_OBJECT || t == MP_JSON_ARRAY) && depth < 4) {
        int obj = t == MP_JSON_OBJECT;
        if ((obj ? mp_json_object_begin(cur) : mp_json_array_begin(cur)) != MP_OK) return -1;
        for (;;) {
            mp_str key;
            int done;
            if ((obj ? mp_json_object_next(cur, scratch, &key, &done) : mp_json_array_next(cur, &done)) != MP_OK)
                return -1;
            if (done) return 0;
            if (parse_text_value(cur, scratch, text, depth + 1)) return -1;
        }
    }
    return mp_json_skip(cur, NULL) == MP_OK ? 0 : -1; /* true/false/null, or nested too deep */
}

static int parse_text_field(mp_json_cur *cur, char **scratch, mp_buf *text, const char *field, char *why, size_t cap) {
    mp_json_type t = mp_json_peek(cur);
    if (t == MP_JSON_NULL) return mp_json_null(cur) == MP_OK ? 0 : 400;
    int is_q = !strcmp(field, "q");
    if (is_q ? t != MP_JSON_STRING : (t != MP_JSON_STRING && t != MP_JSON_OBJECT)) {
        snprintf(why, cap, is_q ? "field `q` must be a string (a search query or interests)"
                                : "field `profile` must be a string or an object of attributes");
        return 400;
    }
    if (parse_text_value(cur, scratch, text, 0)) {
        snprintf(why, cap, "malformed JSON in field `%s`: %s", field, cur->why ? cur->why : "syntax error");
        return 400;
    }
    if (text->len > 4096) {
        snprintf(why, cap, "fields `q` and `profile`: at most 4096 bytes of text");
        return 400;
    }
    return 0;
}

/* The body of POST /v1/recommend, as jbody_decode fills it. */
typedef struct recommend_body {
    idlist items, exclude; /* owned: idlist_free */
    long n, offset;
    int explain;
    char category[1024], policy[512];
    mp_buf text; /* q and profile, joined; owned: mp_buf_free */
    mp_serve_rules rules;
} recommend_body;

/* jbody readers: an id array (f->hi: at most that many) into an idlist, a text field appended to a mp_buf. */
static int read_ids(mp_json_cur *cur, char **scratch, void *dst, const jbody_field *f, jbody_error *e) {
    return parse_id_array(cur, scratch, dst, (size_t)f->hi, f->name, e->why, sizeof e->why);
}

static int read_text(mp_json_cur *cur, char **scratch, void *dst, const jbody_field *f, jbody_error *e) {
    return parse_text_field(cur, scratch, dst, f->name, e->why, sizeof e->why);
}

enum MHD_Result handle_recommend_post(hctx *h) {
    const mp_serve_config *cfg = h->srv->cfg;
    req *r = h->r;
    /* a local table: the bound of n is the server's max_n */
    const jbody_field fields[] = {
        {.name = "items", .type = JBODY_CUSTOM, .offset = offsetof(recommend_body, items), .hi = 10000,
         .read = read_ids},
        {.name = "n", .type = JBODY_INT, .offset = offsetof(recommend_body, n), .lo = 1, .hi = (double)cfg->max_n},
        {.name = "offset", .type = JBODY_INT, .offset = offsetof(recommend_body, offset), .lo = 0, .hi = 1000000},
        {.name = "category", .type = JBODY_STRING, .offset = offsetof(recommend_body, category),
         .flags = JBODY_NULLABLE, .cap = sizeof(((recommend_body *)0)->category), .why = "must be a string (or null)"},
        {.name = "exclude", .type = JBODY_CUSTOM, .offset = offsetof(recommend_body, exclude), .hi = MAX_EXCLUDE,
         .read = read_ids},
        {.name = "explain", .type = JBODY_BOOL, .offset = offsetof(recommend_body, explain)},
        {.name = "q", .type = JBODY_CUSTOM, .offset = offsetof(recommend_body, text), .read = read_text},
        {.name = "profile", .type = JBODY_CUSTOM, .offset = offsetof(recommend_body, text), .read = read_text},
        {.name = "policy", .type = JBODY_STRING, .offset = offsetof(recommend_body, policy), .lo = 1,
         .cap = sizeof(((recommend_body *)0)->policy),
         .why = "must be a policy spec string (e.g. \"egreedy:epsilon=0.1\")"},
        {.name = "price_min", .type = JBODY_NUMBER, .offset = offsetof(recommend_body, rules.price_min), .lo = 0,
         .hi = INFINITY, .why = "must be a price (a number >= 0)"},
        {.name = "price_max", .type = JBODY_NUMBER, .offset = offsetof(recommend_body, rules.price_max), .lo = 0,
         .hi = INFINITY, .why = "must be a price (a number >= 0)"},
    };
    const jbody_spec spec = {fields, sizeof fields / sizeof fields[0],
                             "body: expected a JSON object {\"items\": [...]}", NULL, NULL};
    recommend_body rb;
    memset(&rb, 0, sizeof rb);
    rb.n = 10;
    rb.rules.price_min = rb.rules.price_max = NAN;
    mp_buf_init(&rb.text);
    jbody_result res;
    jbody_error je;
    int status = jbody_decode(&spec, r->body, r->len, &rb, &res, &je);
    if (!status && !mp_buf_ok(&rb.text)) {
        status = 500;
        snprintf(je.why, sizeof je.why, "out of memory");
    } else if (!status && !jbody_seen(&spec, &res, "items") && rb.text.len == 0) {
        status = 400;
        snprintf(je.field, sizeof je.field, "items");
        snprintf(je.why, sizeof je.why,
                 "missing required field `items` (the session's recent item ids, oldest first), or `q` / `profile`");
    }
    enum MHD_Result rc;
    if (status) {
        rc = http_send_error(h->c, r, status, NULL, je.field[0] ? je.field : NULL, "%s", je.why);
    } else {
        mp_live_query q = {0};
        q.session = (const char *const *)rb.items.ids;
        q.n_session = rb.items.n;
        q.n = (size_t)rb.n;
        q.offset = (size_t)rb.offset;
        q.category = rb.category[0] ? rb.category : NULL;
        q.exclude = (const char *const *)rb.exclude.ids;
        q.n_exclude = rb.exclude.n;
        q.explain = rb.explain;
        q.text = rb.text.len ? rb.text.p : NULL;
        q.text_len = rb.text.len;
        rc = recommend_and_answer(h, &q, NULL, 0, rb.policy[0] ? rb.policy : NULL, &rb.rules, 1);
    }
    idlist_free(&rb.items);
    idlist_free(&rb.exclude);
    mp_buf_free(&rb.text);
    jbody_result_free(&res);
    return rc;
}

enum MHD_Result handle_similar(hctx *h) {
    char why[256];
    long n;
    if (http_qint(h->c, "n", 1, (long)h->srv->cfg->max_n, 10, &n, why, sizeof why))
        return http_send_error(h->c, h->r, 400, NULL, "n", "%s", why);
    mp_live_list l = {0};
    mp_error err;
    mp_error_clear(&err);
    if (mp_live_similar(h->live, h->seg, h->seg_len, (size_t)n, &l, &err) != MP_OK) {
        mp_live_list_free(&l);
        return http_send_mp_error(h->c, h->r, &err, err.code == MP_ENOTFOUND ? "item" : NULL);
    }
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_adds(&b, "{\"item\":");
    mp_json_put_str(&b, h->seg, h->seg_len);
    mp_buf_adds(&b, ",\"model\":");
    mp_json_put_cstr(&b, l.model);
    mp_buf_add(&b, ",", 1);
    write_list_items(&b, &l, 0, NULL);
    mp_buf_add(&b, "}", 1);
    mp_live_list_free(&l);
    return http_send_json(h->c, h->r, 200, &b);
}

enum MHD_Result handle_popular(hctx *h) {
    char why[256];
    long n, offset;
    if (http_qint(h->c, "n", 1, (long)h->srv->cfg->max_n, 10, &n, why, sizeof why))
        return http_send_error(h->c, h->r, 400, NULL, "n", "%s", why);
    if (http_qint(h->c, "offset", 0, 1000000, 0, &offset, why, sizeof why))
        return http_send_error(h->c, h->r, 400, NULL, "offset", "%s", why);
    char catbuf[1024];
    int bad = 0;
    const char *category = http_qarg(h->c, "category", catbuf, sizeof catbuf, &bad);
    if (bad) return http_send_error(h->c, h->r, 400, NULL, "category", "query parameter `category` is not valid text");
    if (category && !*category) category = NULL;
    mp_live_list l = {0};
    mp_error err;
    mp_error_clear(&err);
    if (mp_live_popular(h->live, category, (size_t)n, (size_t)offset, &l, &err) != MP_OK) {
        mp_live_list_free(&l);
        return http_send_mp_error(h->c, h->r, &err, NULL);
    }
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_adds(&b, "{\"category\":");
    mp_json_put_cstr(&b, category);
    mp_buf_add(&b, ",", 1);
    write_list_items(&b, &l, 0, NULL);
    mp_buf_add(&b, "}", 1);
    mp_live_list_free(&l);
    return http_send_json(h->c, h->r, 200, &b);
}

enum MHD_Result handle_history(hctx *h) {
    char why[256];
    long n;
    if (http_qint(h->c, "n", 1, 100000, 50, &n, why, sizeof why)) return http_send_error(h->c, h->r, 400, NULL, "n", "%s", why);
    mp_live_history hist = {0};
    mp_error err;
    mp_error_clear(&err);
    if (mp_live_history_get(h->live, h->seg, h->seg_len, (size_t)n, &hist, &err) != MP_OK) {
        mp_live_history_free(&hist);
        return http_send_mp_error(h->c, h->r, &err, err.code == MP_ENOTFOUND ? "user" : NULL);
    }
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_adds(&b, "{\"user\":");
    mp_json_put_str(&b, h->seg, h->seg_len);
    mp_buf_adds(&b, ",\"total\":");
    mp_json_put_u64(&b, hist.total);
    mp_buf_adds(&b, ",\"events\":[");
    for (size_t i = 0; i < hist.n; i++) {
        const mp_live_event *e = &hist.events[i];
        if (i) mp_buf_add(&b, ",", 1);
        mp_buf_adds(&b, "{\"item\":");
        mp_json_put_cstr(&b, e->item);
        mp_buf_adds(&b, ",\"type\":");
        mp_json_put_cstr(&b, e->type);
        mp_buf_adds(&b, ",\"ts\":");
        mp_json_put_i64(&b, e->ts);
        if (e->has_value) {
            mp_buf_adds(&b, ",\"value\":");
            mp_json_put_f64(&b, e->value);
        }
        mp_buf_add(&b, "}", 1);
    }
    mp_buf_adds(&b, "]}");
    mp_live_history_free(&hist);
    return http_send_json(h->c, h->r, 200, &b);
}

/* Decodes the body into records of `kind` (items with path_id: PUT /v1/items/{id}, whose lone item may leave the
 * id out); on a problem answers (400 / 413 / 422) and returns 0 with *answered. */
static int decode_body(hctx *h, mp_record_kind kind, const char *path_id, size_t path_id_len, mp_decoded *d,
                       enum MHD_Result *answered) {
    const mp_serve_config *cfg = h->srv->cfg;
    mp_error err;
    mp_error_clear(&err);
    const char *body = h->r->body ? h->r->body : "";
    int ndjson = http_is_ndjson(h->content_type);
    int rc = path_id ? mp_decode_item_at(d, body, h->r->len, ndjson, (size_t)cfg->max_batch, path_id, path_id_len,
                                         &err)
                     : mp_decode_records(d, kind, body, h->r->len, ndjson, (size_t)cfg->max_batch, 20,
                                         (int64_t)time(NULL), &err);
    if (rc == MP_ERANGE) {
        *answered = http_send_error(h->c, h->r, 413, NULL, NULL, "%s", err.msg);
        return 0;
    }
    if (rc != MP_OK) {
        *answered = http_send_error(h->c, h->r, rc == MP_ENOMEM ? 500 : 400, NULL, NULL, "%s", err.msg);
        return 0;
    }
    if (d->n_total == 0) {
        *answered = http_send_error(h->c, h->r, 400, NULL, NULL, "body: no records (send a JSON array of records)");
        return 0;
    }
    if (d->n_bad) {
        mp_buf b;
        mp_buf_init(&b);
        mp_buf_adds(&b, "{\"error\":");
        char msg[700];
        snprintf(msg, sizeof msg, "%zu of %zu records are invalid; nothing was written. First: %s", d->n_bad,
                 d->n_total, d->n_errors ? d->errors[0].message : "");
        http_error_object(&b, 422, NULL, msg, d->n_errors ? d->errors[0].field : NULL);
        mp_buf_adds(&b, ",\"errors\":[");
        for (size_t i = 0; i < d->n_errors; i++) {
            if (i) mp_buf_add(&b, ",", 1);
            mp_buf_adds(&b, "{\"index\":");
            mp_json_put_u64(&b, d->errors[i].index);
            mp_buf_adds(&b, ",\"message\":");
            mp_json_put_cstr(&b, d->errors[i].message);
            mp_buf_adds(&b, ",\"field\":");
            if (d->errors[i].field[0])
                mp_json_put_cstr(&b, d->errors[i].field);
            else
                mp_buf_adds(&b, "null");
            mp_buf_add(&b, "}", 1);
        }
        mp_buf_adds(&b, "]}");
        *answered = http_send_json(h->c, h->r, 422, &b);
        return 0;
    }
    return 1;
}

static enum MHD_Result answer_write(hctx *h, const mp_live_write_result *res, int events) {
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_adds(&b, "{\"accepted\":");
    mp_json_put_u64(&b, res->accepted);
    mp_buf_adds(&b, ",\"inserted\":");
    mp_json_put_u64(&b, res->inserted);
    if (events) {
        mp_buf_adds(&b, ",\"duplicates\":");
        mp_json_put_u64(&b, res->duplicates);
        mp_buf_adds(&b, ",\"new_users\":");
        mp_json_put_u64(&b, res->new_users);
        mp_buf_adds(&b, ",\"new_items\":");
        mp_json_put_u64(&b, res->new_items);
    }
    mp_buf_add(&b, "}", 1);
    return http_send_json(h->c, h->r, 200, &b);
}

enum MHD_Result handle_events(hctx *h) {
    mp_decoded d = {0};
    enum MHD_Result answered = MHD_YES;
    if (!decode_body(h, MP_KIND_EVENTS, NULL, 0, &d, &answered)) {
        mp_metrics_add_events(h->srv->metrics, 0, 0, d.n_bad);
        mp_decoded_free(&d);
        return answered;
    }
    mp_event *ev = malloc((d.n ? d.n : 1) * sizeof *ev);
    if (!ev) {
        mp_decoded_free(&d);
        return http_send_error(h->c, h->r, 500, NULL, NULL, "out of memory");
    }
    for (size_t i = 0; i < d.n; i++)
        ev[i] = d.records[i].event;
    mp_live_write_result res = {0};
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_live_add_events(h->live, ev, d.n, &res, &err);
    if (rc == MP_OK) mp_explore_observe(h->srv->explore, ev, d.n, mono_seconds());
    free(ev);
    mp_decoded_free(&d);
    if (rc != MP_OK) return http_send_mp_error(h->c, h->r, &err, NULL);
    mp_metrics_add_events(h->srv->metrics, res.accepted, res.duplicates, 0);
    return answer_write(h, &res, 1);
}

/* Writes decoded item or user records through the live recommender and answers; frees d. */
static enum MHD_Result put_decoded(hctx *h, mp_record_kind kind, mp_decoded *d) {
    int items = kind == MP_KIND_ITEMS;
    void *arr = malloc((d->n ? d->n : 1) * (items ? sizeof(mp_item) : sizeof(mp_user)));
    if (!arr) {
        mp_decoded_free(d);
        return http_send_error(h->c, h->r, 500, NULL, NULL, "out of memory");
    }
    for (size_t i = 0; i < d->n; i++) {
        if (items) ((mp_item *)arr)[i] = d->records[i].item;
        else ((mp_user *)arr)[i] = d->records[i].user;
    }
    mp_live_write_result res = {0};
    mp_error err;
    mp_error_clear(&err);
    int rc = items ? mp_live_put_items(h->live, arr, d->n, &res, &err)
                   : mp_live_put_users(h->live, arr, d->n, &res, &err);
    free(arr);
    mp_decoded_free(d);
    if (rc != MP_OK) return http_send_mp_error(h->c, h->r, &err, NULL);
    return answer_write(h, &res, 0);
}

enum MHD_Result handle_items(hctx *h) {
    mp_decoded d = {0};
    enum MHD_Result answered = MHD_YES;
    if (!decode_body(h, MP_KIND_ITEMS, NULL, 0, &d, &answered)) {
        mp_decoded_free(&d);
        return answered;
    }
    return put_decoded(h, MP_KIND_ITEMS, &d);
}

/* PUT /v1/items/{id}: one item, whose id is the path's (the body may leave it out, or must repeat it). */
enum MHD_Result handle_item_put(hctx *h) {
    mp_decoded d = {0};
    enum MHD_Result answered = MHD_YES;
    if (!decode_body(h, MP_KIND_ITEMS, h->seg, h->seg_len, &d, &answered)) {
        mp_decoded_free(&d);
        return answered;
    }
    if (d.n != 1) {
        mp_decoded_free(&d);
        return http_send_error(h->c, h->r, 400, NULL, NULL, "PUT /v1/items/{id} takes exactly one item object");
    }
    mp_str id = d.records[0].item.id;
    if (id.len != h->seg_len || memcmp(id.ptr, h->seg, id.len)) {
        mp_decoded_free(&d);
        return http_send_error(h->c, h->r, 400, NULL, "id", "the body's `id` differs from the id in the path");
    }
    return put_decoded(h, MP_KIND_ITEMS, &d);
}

enum MHD_Result handle_item_delete(hctx *h) {
    mp_error err;
    mp_error_clear(&err);
    if (mp_live_set_item_available(h->live, h->seg, h->seg_len, 0, &err) != MP_OK)
        return http_send_mp_error(h->c, h->r, &err, err.code == MP_ENOTFOUND ? "item" : NULL);
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_adds(&b, "{\"item\":");
    mp_json_put_str(&b, h->seg, h->seg_len);
    mp_buf_adds(&b, ",\"available\":false}");
    return http_send_json(h->c, h->r, 200, &b);
}

enum MHD_Result handle_users(hctx *h) {
    mp_decoded d = {0};
    enum MHD_Result answered = MHD_YES;
    if (!decode_body(h, MP_KIND_USERS, NULL, 0, &d, &answered)) {
        mp_decoded_free(&d);
        return answered;
    }
    return put_decoded(h, MP_KIND_USERS, &d);
}

enum MHD_Result handle_user_delete(hctx *h) {
    mp_error err;
    mp_error_clear(&err);
    uint64_t n = 0;
    if (mp_live_forget_user(h->live, h->seg, h->seg_len, &n, &err) != MP_OK)
        return http_send_mp_error(h->c, h->r, &err, err.code == MP_ENOTFOUND ? "user" : NULL);
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_adds(&b, "{\"user\":");
    mp_json_put_str(&b, h->seg, h->seg_len);
    mp_buf_adds(&b, ",\"deleted_events\":");
    mp_json_put_u64(&b, n);
    mp_buf_add(&b, "}", 1);
    return http_send_json(h->c, h->r, 200, &b);
}

static void write_model_info(mp_buf *b, const mp_live_model_info *mi) {
    mp_buf_adds(b, "{\"name\":");
    mp_json_put_cstr(b, mi->name);
    mp_buf_adds(b, ",\"version\":");
    mp_json_put_u64(b, mi->version);
    mp_buf_adds(b, ",\"path\":");
    mp_json_put_cstr(b, mi->path);
    mp_buf_adds(b, ",\"file_mtime\":");
    mp_json_put_i64(b, mi->file_mtime);
    mp_buf_printf(b, ",\"checksum\":\"%016llx\"", (unsigned long long)mi->checksum);
    mp_buf_adds(b, ",\"loaded_at\":");
    mp_json_put_i64(b, mi->loaded_at);
    mp_buf_adds(b, ",\"items\":");
    mp_json_put_u64(b, mi->n_items);
    mp_buf_adds(b, ",\"index\":");
    mp_json_put_bool(b, mi->has_index);
    mp_buf_adds(b, ",\"index_seconds\":");
    mp_json_put_f64(b, mi->index_seconds);
    mp_buf_adds(b, ",\"meta\":");
    if (mi->meta_json && mp_json_validate(mi->meta_json, strlen(mi->meta_json), NULL) == MP_OK)
        mp_buf_adds(b, mi->meta_json);
    else
        mp_buf_adds(b, "null");
    mp_buf_add(b, "}", 1);
}

static enum MHD_Result answer_model(hctx *h, int wrap) {
    mp_live_model_info mi;
    mp_error err;
    mp_error_clear(&err);
    if (mp_live_model_info_get(h->live, &mi, &err) != MP_OK) return http_send_mp_error(h->c, h->r, &err, NULL);
    mp_buf b;
    mp_buf_init(&b);
    if (wrap) mp_buf_adds(&b, "{\"model\":");
    write_model_info(&b, &mi);
    if (wrap) mp_buf_add(&b, "}", 1);
    mp_live_model_info_free(&mi);
    return http_send_json(h->c, h->r, 200, &b);
}

enum MHD_Result handle_reload(hctx *h) {
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_live_reload(h->live, NULL, &err);
    mp_metrics_note_model(h->srv->metrics, h->live, rc == MP_OK);
    if (rc != MP_OK)
        return http_send_error(h->c, h->r, 500, "reload_failed", NULL, "reload failed, the previous model keeps serving: %s",
                          err.msg);
    return answer_model(h, 1);
}

enum MHD_Result handle_model(hctx *h) { return answer_model(h, 0); }

enum MHD_Result handle_stats(hctx *h) {
    mp_live_stats st;
    mp_live_stats_get(h->live, &st);
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_printf(&b,
                  "{\"users\":%llu,\"items\":%llu,\"available_items\":%llu,\"events\":%llu,\"categories\":%llu,"
                  "\"per_type\":{",
                  (unsigned long long)st.n_users, (unsigned long long)st.n_items,
                  (unsigned long long)st.n_available_items, (unsigned long long)st.n_events,
                  (unsigned long long)st.n_categories);
    for (int t = 0; t < MP_EV_NTYPES; t++)
        mp_buf_printf(&b, "%s\"%s\":%llu", t ? "," : "", mp_event_type_name(t), (unsigned long long)st.per_type[t]);
    mp_buf_printf(&b,
                  "},\"events_ingested\":%llu,\"events_duplicates\":%llu,\"users_forgotten\":%llu,\"ts_min\":%lld,"
                  "\"ts_max\":%lld,\"uptime_seconds\":%lld,\"event_rate\":[",
                  (unsigned long long)st.events_ingested, (unsigned long long)st.events_duplicates,
                  (unsigned long long)st.users_forgotten, (long long)st.ts_min, (long long)st.ts_max,
                  (long long)(time(NULL) - h->srv->started));
    double rate[120];
    size_t nr = mp_metrics_event_rate(h->srv->metrics, rate, 120);
    for (size_t i = 0; i < nr; i++) {
        if (i) mp_buf_add(&b, ",", 1);
        mp_json_put_f64(&b, rate[i]);
    }
    mp_buf_adds(&b, "],\"encoder\":");
    struct mp_encoder *enc = mp_live_encoder(h->live);
    mp_json_put_cstr(&b, enc ? mp_encoder_name(enc) : NULL);
    uint64_t n_emb = 0;
    uint32_t dim = 0;
    mp_live_embedding_stats(h->live, &n_emb, &dim);
    mp_buf_printf(&b, ",\"items_embedded\":%llu,\"embedding_dim\":%u", (unsigned long long)n_emb, (unsigned)dim);
    mp_serve_explore_stats_json(h->srv->explore, &b);
    mp_buf_add(&b, "}", 1);
    return http_send_json(h->c, h->r, 200, &b);
}

enum MHD_Result handle_metrics(hctx *h) {
    char *text = NULL;
    size_t len = 0;
    mp_error err;
    mp_error_clear(&err);
    mp_metrics_set_connections(h->srv->metrics, atomic_load(&h->srv->open_connections));
    if (mp_metrics_render(h->srv->metrics, &text, &len, &err) != MP_OK) return http_send_mp_error(h->c, h->r, &err, NULL);
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_add(&b, text, len);
    free(text);
    mp_serve_explore_metrics(h->srv->explore, &b);
    if (!mp_buf_ok(&b)) {
        mp_buf_free(&b);
        return http_send_error(h->c, h->r, 500, NULL, NULL, "out of memory rendering /metrics");
    }
    text = mp_buf_take(&b, &len);
    return http_send_text(h->c, h->r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, 1);
}

enum MHD_Result handle_healthz(hctx *h) {
    static const char ok[] = "{\"status\":\"ok\"}\n";
    return http_send_text(h->c, h->r, 200, "application/json; charset=utf-8", (char *)ok, sizeof ok - 1, 0);
}

enum MHD_Result handle_readyz(hctx *h) {
    if (!h->live) return http_send_error(h->c, h->r, 503, "not_ready", NULL, "loading the store and the model");
    mp_live_model_info mi;
    mp_error err;
    mp_error_clear(&err);
    uint64_t version = 0;
    if (mp_live_model_info_get(h->live, &mi, &err) == MP_OK) {
        version = mi.version;
        mp_live_model_info_free(&mi);
    }
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_printf(&b, "{\"status\":\"ready\",\"model_version\":%llu}", (unsigned long long)version);
    return http_send_json(h->c, h->r, 200, &b);
}

enum MHD_Result handle_dashboard(hctx *h) {
    mp_asset a;
    if (!h->srv->cfg->dashboard || !mp_asset_find(*h->path ? h->path : "index.html", &a))
        return http_send_error(h->c, h->r, 404, NULL, NULL, "no such page");
    return http_send_text(h->c, h->r, 200, a.content_type, (char *)a.data, a.len, 0);
}

/* GET /openapi.yaml: the API's OpenAPI 3.1 description, embedded at build time. */
enum MHD_Result handle_openapi(hctx *h) {
    mp_asset a;
    if (!mp_asset_find("openapi.yaml", &a)) return http_send_error(h->c, h->r, 404, NULL, NULL, "no such page");
    return http_send_text(h->c, h->r, 200, a.content_type, (char *)a.data, a.len, 0);
}


/* GET /v1/abtest: per-variant conversion counts and comparisons (JSON), or with format=csv the per-user rows that
 * `magpie abtest --csv` reads. */
enum MHD_Result handle_abtest(hctx *h) {
    char fbuf[16];
    int bad = 0;
    const char *format = http_qarg(h->c, "format", fbuf, sizeof fbuf, &bad);
    int csv = format && !strcmp(format, "csv");
    if (bad || (format && !csv && strcmp(format, "json")))
        return http_send_error(h->c, h->r, 400, NULL, "format", "query parameter `format` must be json or csv");
    mp_buf b;
    mp_buf_init(&b);
    if (csv) mp_serve_explore_abtest_csv(h->srv->explore, &b);
    else mp_serve_explore_abtest_json(h->srv->explore, &b);
    if (!mp_buf_ok(&b)) {
        mp_buf_free(&b);
        return http_send_error(h->c, h->r, 500, NULL, NULL, "out of memory rendering /v1/abtest");
    }
    if (!csv) return http_send_json(h->c, h->r, 200, &b);
    size_t len;
    char *text = mp_buf_take(&b, &len);
    return http_send_text(h->c, h->r, 200, "text/csv; charset=utf-8", text, len, 1);
}

/* POST /v1/feedback {"event_id": "...", "item": "...", "reward": 1}: a reward for one served item (explore.h). */
typedef struct feedback_body {
    char event_id[128], item[MP_MAX_ID_BYTES + 1];
    double reward;
} feedback_body;

static const jbody_field feedback_fields[] = {
    {.name = "event_id", .type = JBODY_STRING, .offset = offsetof(feedback_body, event_id),
     .flags = JBODY_REQUIRED, .lo = 1, .cap = sizeof(((feedback_body *)0)->event_id)},
    {.name = "item", .type = JBODY_STRING, .offset = offsetof(feedback_body, item),
     .flags = JBODY_REQUIRED, .lo = 1, .cap = sizeof(((feedback_body *)0)->item)},
    {.name = "reward", .type = JBODY_NUMBER, .offset = offsetof(feedback_body, reward),
     .flags = JBODY_REQUIRED | JBODY_BOOL_NUMBER, .lo = -INFINITY, .hi = INFINITY,
     .why = "must be a finite number (e.g. 1 for a click, 0 for none)", .status = 422},
};
static const jbody_spec feedback_spec = {
    feedback_fields, sizeof feedback_fields / sizeof feedback_fields[0],
    "body: expected a JSON object {\"event_id\", \"item\", \"reward\"}", NULL,
    "(body: {\"event_id\", \"item\", \"reward\"})"};

enum MHD_Result handle_feedback(hctx *h) {
    req *r = h->r;
    feedback_body fb = {"", "", 0};
    jbody_result res;
    jbody_error je;
    int status = jbody_decode(&feedback_spec, r->body, r->len, &fb, &res, &je);
    jbody_result_free(&res);
    if (status) return http_send_error(h->c, r, status, NULL, je.field[0] ? je.field : NULL, "%s", je.why);
    const char *event_id = fb.event_id, *item = fb.item;
    double reward = fb.reward;
    mp_error err;
    mp_error_clear(&err);
    const char *variant = NULL;
    if (mp_explore_feedback(h->srv->explore, event_id, item, reward, mono_seconds(), &variant, &err) != MP_OK) {
        if (err.code == MP_ENOTMEMBER) return http_send_error(h->c, r, 422, NULL, "item", "%s", err.msg);
        if (err.code == MP_ENOTFOUND || err.code == MP_EEXPIRED)
            return http_send_error(h->c, r, 404, NULL, "event_id", "%s", err.msg);
        if (err.code == MP_ECONFLICT) return http_send_error(h->c, r, 409, "conflict", "item", "%s", err.msg);
        if (err.code == MP_EINVAL) return http_send_error(h->c, r, 422, NULL, "reward", "%s", err.msg);
        return http_send_mp_error(h->c, r, &err, NULL);
    }
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_adds(&b, "{\"accepted\":true,\"event_id\":");
    mp_json_put_cstr(&b, event_id);
    mp_buf_adds(&b, ",\"item\":");
    mp_json_put_cstr(&b, item);
    mp_buf_adds(&b, ",\"reward\":");
    mp_json_put_f64(&b, reward);
    mp_buf_adds(&b, ",\"variant\":");
    mp_json_put_cstr(&b, variant);
    mp_buf_add(&b, "}", 1);
    return http_send_json(h->c, r, 200, &b);
}
