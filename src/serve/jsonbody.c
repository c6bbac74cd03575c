/* src/serve/jsonbody.c: the table-driven decoder of JSON request bodies (jsonbody.h). The body is validated as a
 * whole first (mp_json_validate), so the walk below only meets type and range problems, each reported once with
 * the field's name. */
#include "serve/jsonbody.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const jbody_field *find_field(const jbody_spec *spec, mp_str key, size_t *index) {
    for (size_t i = 0; i < spec->n_fields; i++) {
        const char *name = spec->fields[i].name;
        if (strlen(name) == key.len && !memcmp(name, key.ptr, key.len)) {
            *index = i;
            return &spec->fields[i];
        }
    }
    return NULL;
}

static int fail(jbody_error *e, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(jbody_error *e, int status, const char *fmt, ...) {
    e->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->why, sizeof e->why, fmt, ap);
    va_end(ap);
    return status;
}

/* "field `x` " followed by the field's own words or the type's. */
static int refuse(const jbody_field *f, jbody_error *e) {
    char own[256];
    const char *why = f->why;
    if (!why) {
        switch (f->type) {
        case JBODY_STRING:
            snprintf(own, sizeof own, "must be a %sstring of at most %zu bytes", f->lo >= 1 ? "non-empty " : "",
                     f->cap ? f->cap - 1 : 0);
            break;
        case JBODY_INT: snprintf(own, sizeof own, "must be an integer from %ld to %ld", (long)f->lo, (long)f->hi); break;
        case JBODY_NUMBER: snprintf(own, sizeof own, "must be a number from %g to %g", f->lo, f->hi); break;
        case JBODY_BOOL: snprintf(own, sizeof own, "must be true or false"); break;
        case JBODY_ENUM: {
            size_t n = 0, o = (size_t)snprintf(own, sizeof own, "must be ");
            while (f->choices[n])
                n++;
            for (size_t i = 0; i < n && o < sizeof own; i++)
                o += (size_t)snprintf(own + o, sizeof own - o, "%s\"%s\"", i == 0 ? "" : i + 1 == n ? " or " : ", ",
                                      f->choices[i]);
            break;
        }
        default: snprintf(own, sizeof own, "has a value that is not accepted"); break;
        }
        why = own;
    }
    return fail(e, f->status ? f->status : 400, "field `%s` %s", f->name, why);
}

/* Reads the value at cur for field f into dst. 0 or a status with e filled. */
static int read_value(mp_json_cur *cur, char **scratch, const jbody_field *f, void *dst, jbody_error *e) {
    mp_json_type t = mp_json_peek(cur);
    if (t == MP_JSON_NULL && (f->flags & JBODY_NULLABLE)) return mp_json_null(cur) == MP_OK ? 0 : refuse(f, e);
    mp_str s, raw;
    double v;
    int is_int, b;
    switch (f->type) {
    case JBODY_STRING:
        if (t != MP_JSON_STRING || mp_json_string(cur, scratch, &s) != MP_OK || s.len < (size_t)f->lo ||
            s.len >= f->cap)
            return refuse(f, e);
        memcpy(dst, s.ptr, s.len);
        ((char *)dst)[s.len] = 0;
        return 0;
    case JBODY_INT:
        if (t != MP_JSON_NUMBER || mp_json_number(cur, &raw, &is_int, &v) != MP_OK || !is_int || v < f->lo ||
            v > f->hi)
            return refuse(f, e);
        *(long *)dst = (long)v;
        return 0;
    case JBODY_NUMBER:
        if (t == MP_JSON_BOOL && (f->flags & JBODY_BOOL_NUMBER) && mp_json_bool(cur, &b) == MP_OK) {
            *(double *)dst = b ? 1 : 0;
            return 0;
        }
        if (t != MP_JSON_NUMBER || mp_json_number(cur, &raw, &is_int, &v) != MP_OK || !isfinite(v) || v < f->lo ||
            v > f->hi)
            return refuse(f, e);
        *(double *)dst = v;
        return 0;
    case JBODY_BOOL:
        if (t != MP_JSON_BOOL || mp_json_bool(cur, &b) != MP_OK) return refuse(f, e);
        *(int *)dst = b;
        return 0;
    case JBODY_ENUM:
        if (t != MP_JSON_STRING || mp_json_string(cur, scratch, &s) != MP_OK) return refuse(f, e);
        for (int i = 0; f->choices[i]; i++)
            if (strlen(f->choices[i]) == s.len && !memcmp(f->choices[i], s.ptr, s.len)) {
                *(int *)dst = i;
                return 0;
            }
        return refuse(f, e);
    case JBODY_ANY:
        if (mp_json_skip(cur, NULL) != MP_OK)
            return fail(e, 400, "malformed JSON in field `%s`: %s", f->name, cur->why ? cur->why : "syntax error");
        return 0;
    case JBODY_CUSTOM: {
        int st = f->read(cur, scratch, dst, f, e);
        if (st) e->status = st;
        return st;
    }
    }
    return refuse(f, e);
}

int jbody_decode(const jbody_spec *spec, const char *body, size_t len, void *out, jbody_result *res, jbody_error *e) {
    memset(res, 0, sizeof *res);
    memset(e, 0, sizeof *e);
    if (!body || len == 0) return fail(e, 400, "%s", spec->expected);
    const char *why_json = NULL;
    if (mp_json_validate(body, len, &why_json) != MP_OK)
        return fail(e, 400, "body: malformed JSON: %s", why_json ? why_json : "syntax error");
    res->scratch_mem_ = malloc(len + 1);
    if (!res->scratch_mem_) return fail(e, 500, "out of memory");
    char *scratch = res->scratch_mem_;
    mp_json_cur cur;
    mp_json_init(&cur, body, len);
    if (mp_json_peek(&cur) != MP_JSON_OBJECT)
        return fail(e, 400, "%s", spec->not_object ? spec->not_object : spec->expected);
    mp_json_object_begin(&cur);
    for (;;) {
        mp_str key;
        int done;
        if (mp_json_object_next(&cur, &scratch, &key, &done) != MP_OK) return fail(e, 400, "body: malformed JSON");
        if (done) break;
        snprintf(e->field, sizeof e->field, "%.*s", (int)(key.len < sizeof e->field - 1 ? key.len : sizeof e->field - 1),
                 key.ptr);
        size_t index = 0;
        const jbody_field *f = find_field(spec, key, &index);
        if (!f) {
            char known[512];
            size_t o = 0;
            known[0] = 0;
            for (size_t i = 0; i < spec->n_fields && o < sizeof known; i++)
                o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "", spec->fields[i].name);
            return fail(e, 400, "unknown field `%s` (known: %s)", e->field, known);
        }
        int st = read_value(&cur, &scratch, f, (char *)out + f->offset, e);
        if (st) return st;
        if (index < 64) res->seen |= (uint64_t)1 << index;
    }
    for (size_t i = 0; i < spec->n_fields && i < 64; i++) {
        const jbody_field *f = &spec->fields[i];
        if (!(f->flags & JBODY_REQUIRED) || (res->seen >> i & 1)) continue;
        snprintf(e->field, sizeof e->field, "%s", f->name);
        return fail(e, 400, "missing required field `%s`%s%s", f->name, spec->missing_hint ? " " : "",
                    spec->missing_hint ? spec->missing_hint : "");
    }
    e->field[0] = 0;
    return 0;
}

int jbody_seen(const jbody_spec *spec, const jbody_result *res, const char *name) {
    for (size_t i = 0; i < spec->n_fields && i < 64; i++)
        if (!strcmp(spec->fields[i].name, name)) return (int)(res->seen >> i & 1);
    return 0;
}

void jbody_result_free(jbody_result *res) {
    if (!res) return;
    free(res->scratch_mem_);
    res->scratch_mem_ = NULL;
}
