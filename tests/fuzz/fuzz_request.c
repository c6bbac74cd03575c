/* tests/fuzz/fuzz_request.c: libFuzzer target for the HTTP write-request decoder (src/serve/decode.c) and the
 * JSON pull parser under it (src/io/json.c, the record parser of src/io/records.c).
 *
 * Every input is decoded as events, items and users, as a JSON body and as JSON Lines, and checked for the
 * decoder's promises: counts add up, every message names its record ("events[3]: ..."), every kept slice is
 * valid UTF-8, NUL-terminated and owned by the result (the input copy is wiped before the records are read).
 * Bodies are also decoded as PUT /v1/items/{id} bodies (mp_decode_item_at) and by the table-driven decoder of
 * JSON request bodies (src/serve/jsonbody.c) over a table of every field type, which must either fill values
 * within their bounds or refuse with a status and a message. It is also given to mp_json_validate and
 * mp_json_escape (whose output must always be a valid JSON string). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/json.h"
#include "magpie/records.h"
#include "serve/decode.h"
#include "serve/jsonbody.h"

#define NOW 1735689600
#define MAX_RECORDS 500

static void check_slice(mp_str s, int required) {
    if (required && (s.len == 0 || s.len > MP_MAX_ID_BYTES)) abort();
    if (!s.ptr) abort();
    if (s.ptr[s.len] != 0) abort(); /* kept slices are NUL-terminated (and readable, or ASan says so) */
    if (!mp_utf8_valid(s.ptr, s.len, NULL)) abort();
}

static void check_decoded(const mp_decoded *d, mp_record_kind kind, size_t max_errors) {
    static const char *const names[] = {"events[", "items[", "users["};
    if (d->n + d->n_bad != d->n_total) abort();
    if (d->n_errors > d->n_bad || d->n_errors > max_errors) abort();
    if (d->n_total > MAX_RECORDS) abort();
    for (size_t i = 0; i < d->n; i++) {
        if (d->index[i] >= d->n_total || (i && d->index[i] <= d->index[i - 1])) abort();
        const mp_record *r = &d->records[i];
        if (kind == MP_KIND_EVENTS) {
            check_slice(r->event.user, 1);
            check_slice(r->event.item, 1);
            check_slice(r->event.text, 0);
            check_slice(r->event.session, 0);
            if ((unsigned)r->event.type >= MP_EV_NTYPES) abort();
        } else if (kind == MP_KIND_ITEMS) {
            check_slice(r->item.id, 1);
            check_slice(r->item.title, 0);
            check_slice(r->item.description, 0);
            check_slice(r->item.category, 0);
            check_slice(r->item.brand, 0);
            check_slice(r->item.attrs, 0);
            if (r->item.attrs.len && mp_json_validate(r->item.attrs.ptr, r->item.attrs.len, NULL) != MP_OK) abort();
            if (r->item.has_price && !(r->item.price >= 0)) abort();
        } else {
            check_slice(r->user.id, 1);
            check_slice(r->user.attrs, 0);
        }
    }
    for (size_t i = 0; i < d->n_errors; i++) {
        const mp_decode_error *e = &d->errors[i];
        char want[48];
        snprintf(want, sizeof want, "%s%zu]: ", names[kind], e->index);
        if (strncmp(e->message, want, strlen(want)) != 0) abort();
        if (!memchr(e->message, 0, sizeof e->message) || !memchr(e->field, 0, sizeof e->field)) abort();
        if (e->index >= d->n_total || (i && e->index <= d->errors[i - 1].index)) abort();
    }
}

typedef struct fuzz_body {
    char name[8];
    long count;
    double price;
    int flag, format, n_list;
} fuzz_body;

/* counts array elements, at most f->hi */
static int read_list(mp_json_cur *cur, char **scratch, void *dst, const jbody_field *f, jbody_error *e) {
    if (mp_json_peek(cur) != MP_JSON_ARRAY || mp_json_array_begin(cur) != MP_OK) {
        snprintf(e->why, sizeof e->why, "field `list` must be an array");
        return 400;
    }
    for (;;) {
        int done;
        mp_str s;
        if (mp_json_array_next(cur, &done) != MP_OK) return 400;
        if (done) return 0;
        if (mp_json_peek(cur) == MP_JSON_STRING ? mp_json_string(cur, scratch, &s) : mp_json_skip(cur, NULL)) return 400;
        if (++*(int *)dst > (int)f->hi) {
            snprintf(e->why, sizeof e->why, "field `list`: too long");
            return 422;
        }
    }
}

static void check_jbody(const char *s, size_t size) {
    static const char *const choices[] = {"a", "bb", NULL};
    static const jbody_field fields[] = {
        {.name = "name", .type = JBODY_STRING, .offset = offsetof(fuzz_body, name), .flags = JBODY_REQUIRED, .lo = 1,
         .cap = 8},
        {.name = "count", .type = JBODY_INT, .offset = offsetof(fuzz_body, count), .lo = -5, .hi = 1000},
        {.name = "price", .type = JBODY_NUMBER, .offset = offsetof(fuzz_body, price),
         .flags = JBODY_BOOL_NUMBER | JBODY_NULLABLE, .lo = 0, .hi = 1e6, .status = 422},
        {.name = "flag", .type = JBODY_BOOL, .offset = offsetof(fuzz_body, flag)},
        {.name = "format", .type = JBODY_ENUM, .offset = offsetof(fuzz_body, format), .choices = choices},
        {.name = "list", .type = JBODY_CUSTOM, .offset = offsetof(fuzz_body, n_list), .hi = 50, .read = read_list},
        {.name = "any", .type = JBODY_ANY},
    };
    static const jbody_spec spec = {fields, sizeof fields / sizeof fields[0], "body: expected", NULL, "(hint)"};
    fuzz_body fb;
    memset(&fb, 0, sizeof fb);
    jbody_result res;
    jbody_error e;
    int st = jbody_decode(&spec, s, size, &fb, &res, &e);
    if (st == 0) {
        if (!(res.seen & 1) || !memchr(fb.name, 0, sizeof fb.name) || !fb.name[0]) abort();
        if (fb.count < -5 || fb.count > 1000 || !(fb.price >= 0 && fb.price <= 1e6)) abort();
        if ((unsigned)fb.flag > 1 || (unsigned)fb.format > 1 || fb.n_list > 50) abort();
        if (e.field[0]) abort();
    } else if (st != 400 && st != 422 && st != 500) {
        abort();
    } else if (!e.why[0] || !memchr(e.why, 0, sizeof e.why) || !memchr(e.field, 0, sizeof e.field)) {
        abort();
    }
    jbody_result_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    const char *why = NULL;
    int valid = mp_json_validate(s, size, &why);
    if (valid != MP_OK && !why) abort();

    /* The escaper turns any bytes into one valid JSON string literal (NUL bytes become \u0000, which the parser
     * deliberately refuses in text, so inputs holding them are left out here). */
    if (size <= 4096 && !memchr(s, 0, size)) {
        size_t need = mp_json_escape(NULL, 0, s, size);
        char *lit = malloc(need + 1);
        if (lit) {
            if (mp_json_escape(lit, need + 1, s, size) != need || strlen(lit) != need) abort();
            if (mp_json_validate(lit, need, &why) != MP_OK) abort();
            free(lit);
        }
    }

    check_jbody(s, size);

    /* A private copy, wiped after decoding: kept records must not point into the body. */
    char *body = malloc(size ? size : 1);
    if (!body) return 0;
    for (int kind = 0; kind < 3; kind++) {
        for (int ndjson = 0; ndjson < 2; ndjson++) {
            memcpy(body, data, size);
            mp_decoded d;
            mp_error err;
            mp_error_clear(&err);
            size_t max_errors = (size_t)(kind + 1) * 3;
            int rc =
                mp_decode_records(&d, (mp_record_kind)kind, body, size, ndjson, MAX_RECORDS, max_errors, NOW, &err);
            memset(body, 0xA5, size);
            if (rc == MP_OK) {
                check_decoded(&d, (mp_record_kind)kind, max_errors);
                /* A JSON body the decoder understood is valid JSON. */
                if (!ndjson && valid != MP_OK) abort();
            } else if (rc != MP_EINVAL && rc != MP_ERANGE && rc != MP_ENOMEM) {
                abort();
            } else if (err.msg[0] == 0) {
                abort();
            }
            mp_decoded_free(&d);
        }
    }
    /* PUT /v1/items/{id}: a lone item without an id takes the path's; the result keeps the decoder's promises,
     * and an item given the id owns its copy. */
    for (int ndjson = 0; ndjson < 2; ndjson++) {
        memcpy(body, data, size);
        mp_decoded d;
        mp_error err;
        mp_error_clear(&err);
        int rc = mp_decode_item_at(&d, body, size, ndjson, MAX_RECORDS, "path-id", 7, &err);
        memset(body, 0xA5, size);
        if (rc == MP_OK) check_decoded(&d, MP_KIND_ITEMS, 20);
        else if ((rc != MP_EINVAL && rc != MP_ERANGE && rc != MP_ENOMEM) || err.msg[0] == 0) abort();
        mp_decoded_free(&d);
    }
    free(body);
    return 0;
}
