/* The generic parameter layer: everything a model used to write by hand for each parameter (parser, default, bounds
 * check, save/load, help, tune range) derived from its descriptor table, so that the four copies cannot disagree. */
#include "models/params.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *field(const mp_param_info *p, void *params) { return (char *)params + p->offset; }
static const void *cfield(const mp_param_info *p, const void *params) { return (const char *)params + p->offset; }

static int is_integer_type(mp_param_type t) { return t == MP_PARAM_INT || t == MP_PARAM_UINT || t == MP_PARAM_U64; }

/* "a, b or c" */
static void choice_list(const mp_param_info *p, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < p->n_choices && len < cap; i++) {
        const char *sep = i == 0 ? "" : i + 1 == p->n_choices ? " or " : ", ";
        int k = snprintf(buf + len, cap - len, "%s%s", sep, p->choices[i]);
        if (k < 0) break;
        len += (size_t)k;
    }
}

/* What a value must be, after "expected ". */
static const char *expectation(const mp_param_info *p, char *buf, size_t cap) {
    switch (p->type) {
    case MP_PARAM_BOOL: snprintf(buf, cap, "0 or 1"); break;
    case MP_PARAM_INT:
    case MP_PARAM_UINT:
    case MP_PARAM_U64:
        snprintf(buf, cap, "%san integer in %llu..%llu", p->allow_auto ? "auto or " : "", (unsigned long long)p->imin,
                 (unsigned long long)p->imax);
        break;
    case MP_PARAM_DOUBLE:
        if (isinf(p->hi))
            snprintf(buf, cap, "%sa finite number %s %g", p->allow_auto ? "auto or " : "", p->lo_open ? ">" : ">=",
                     p->lo);
        else
            snprintf(buf, cap, "%sa finite number in %c%g, %g]", p->allow_auto ? "auto or " : "", p->lo_open ? '(' : '[',
                     p->lo, p->hi);
        break;
    case MP_PARAM_CHOICE: choice_list(p, buf, cap); break;
    }
    return buf;
}

const char *mp_param_describe(const mp_param_info *p, char *buf, size_t cap) {
    if (cap == 0) return buf;
    if (p->type == MP_PARAM_CHOICE) {
        char list[256];
        choice_list(p, list, sizeof list);
        snprintf(buf, cap, "one of %s", list);
        return buf;
    }
    return expectation(p, buf, cap);
}

static int bad_value(const mp_param_info *p, const char *value, mp_error *err) {
    char want[256];
    return mp_error_set(err, MP_EINVAL, "expected %s, got \"%s\"", expectation(p, want, sizeof want), value);
}

static int real_in_bounds(const mp_param_info *p, double v) {
    return isfinite(v) && v >= p->lo && !(p->lo_open && v == p->lo) && v <= p->hi;
}

const mp_param_info *mp_params_find(const mp_param_info *table, size_t n, const char *key) {
    if (!table || !key) return NULL;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(table[i].name, key) || (table[i].alias && !strcmp(table[i].alias, key))) return &table[i];
    return NULL;
}

int mp_param_set(const mp_param_info *p, void *params, const char *value, mp_error *err) {
    void *f = field(p, params);
    switch (p->type) {
    case MP_PARAM_BOOL: {
        /* "1.0" is accepted as it always was; anything else than 0 and 1 is not */
        char *end;
        double v = strtod(value, &end);
        if (end == value || *end || !(v == 0 || v == 1)) return bad_value(p, value, err);
        *(int *)f = v == 1;
        return MP_OK;
    }
    case MP_PARAM_INT:
    case MP_PARAM_UINT:
    case MP_PARAM_U64: {
        if (p->allow_auto && p->type == MP_PARAM_UINT && !strcmp(value, "auto")) {
            *(uint32_t *)f = 0;
            *(int *)((char *)params + p->auto_offset) = 1;
            return MP_OK;
        }
        /* strtoull would wrap "-1" round to a huge value: only digits are numbers here */
        if (!(value[0] >= '0' && value[0] <= '9')) return bad_value(p, value, err);
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (*end || errno || v < p->imin || v > p->imax) return bad_value(p, value, err);
        if (p->type == MP_PARAM_INT) *(int *)f = (int)v;
        else if (p->type == MP_PARAM_UINT) *(uint32_t *)f = (uint32_t)v;
        else *(uint64_t *)f = (uint64_t)v;
        if (p->allow_auto) *(int *)((char *)params + p->auto_offset) = 0;
        return MP_OK;
    }
    case MP_PARAM_DOUBLE: {
        if (p->allow_auto && !strcmp(value, "auto")) {
            *(double *)f = 0;
            *(int *)((char *)params + p->auto_offset) = 1;
            return MP_OK;
        }
        char *end;
        double v = strtod(value, &end);
        if (end == value || *end || !real_in_bounds(p, v)) return bad_value(p, value, err);
        *(double *)f = v;
        if (p->allow_auto) *(int *)((char *)params + p->auto_offset) = 0;
        return MP_OK;
    }
    case MP_PARAM_CHOICE:
        for (uint32_t i = 0; i < p->n_choices; i++)
            if (!strcmp(value, p->choices[i])) {
                *(int *)f = (int)i;
                return MP_OK;
            }
        return bad_value(p, value, err);
    }
    return mp_error_set(err, MP_EINVAL, "unknown parameter type %d", (int)p->type);
}

int mp_params_defaults(const mp_param_info *table, size_t n, void *params, mp_error *err) {
    for (size_t i = 0; i < n; i++) {
        int rc = mp_param_set(&table[i], params, table[i].default_value, err);
        if (rc) {
            mp_error_prefix(err, "default of parameter %s", table[i].name);
            return rc;
        }
    }
    return MP_OK;
}

/* 1 when the field's current value is one mp_param_set could have stored. */
static int field_ok(const mp_param_info *p, const void *params) {
    const void *f = cfield(p, params);
    switch (p->type) {
    case MP_PARAM_BOOL: return *(const int *)f == 0 || *(const int *)f == 1;
    case MP_PARAM_INT: return *(const int *)f >= 0 && (uint64_t)*(const int *)f >= p->imin &&
                              (uint64_t)*(const int *)f <= p->imax;
    case MP_PARAM_UINT: {
        uint32_t v = *(const uint32_t *)f;
        if (p->allow_auto) {
            int a = *(const int *)((const char *)params + p->auto_offset);
            if (a != 0 && a != 1) return 0;
            if (a) return v == 0; /* the model derives the value at fit and keeps 0 here */
        }
        return v >= p->imin && v <= p->imax;
    }
    case MP_PARAM_U64: return *(const uint64_t *)f >= p->imin && *(const uint64_t *)f <= p->imax;
    case MP_PARAM_DOUBLE: {
        double v = *(const double *)f;
        /* with "auto" the value is 0 until a fit chooses it, then what the fit chose: within the bounds */
        if (p->allow_auto) {
            int a = *(const int *)((const char *)params + p->auto_offset);
            if (a != 0 && a != 1) return 0;
            if (a && v == 0) return 1;
        }
        return real_in_bounds(p, v);
    }
    case MP_PARAM_CHOICE: return *(const int *)f >= 0 && (uint32_t)*(const int *)f < p->n_choices;
    }
    return 0;
}

const char *mp_param_format(const mp_param_info *p, const void *params, char *buf, size_t cap) {
    const void *f = cfield(p, params);
    switch (p->type) {
    case MP_PARAM_BOOL:
    case MP_PARAM_INT: snprintf(buf, cap, "%d", *(const int *)f); break;
    case MP_PARAM_UINT:
        if (p->allow_auto && *(const int *)((const char *)params + p->auto_offset)) snprintf(buf, cap, "auto");
        else snprintf(buf, cap, "%u", (unsigned)*(const uint32_t *)f);
        break;
    case MP_PARAM_U64: snprintf(buf, cap, "%llu", (unsigned long long)*(const uint64_t *)f); break;
    case MP_PARAM_DOUBLE:
        if (p->allow_auto && *(const int *)((const char *)params + p->auto_offset)) snprintf(buf, cap, "auto");
        else snprintf(buf, cap, "%.17g", *(const double *)f);
        break;
    case MP_PARAM_CHOICE: {
        int i = *(const int *)f;
        snprintf(buf, cap, "%s", i >= 0 && (uint32_t)i < p->n_choices ? p->choices[i] : "?");
        break;
    }
    }
    return buf;
}

int mp_params_check(const mp_param_info *table, size_t n, const void *params, mp_error *err) {
    for (size_t i = 0; i < n; i++)
        if (!field_ok(&table[i], params)) {
            char got[64], want[256];
            return mp_error_set(err, MP_EINVAL, "parameter %s: %s is out of range (expected %s)", table[i].name,
                                mp_param_format(&table[i], params, got, sizeof got),
                                expectation(&table[i], want, sizeof want));
        }
    return MP_OK;
}

void mp_params_put(const mp_param_info *table, size_t n, const void *params, mp_mf_writer *w) {
    for (size_t i = 0; i < n; i++) {
        const mp_param_info *p = &table[i];
        const void *f = cfield(p, params);
        switch (p->type) {
        case MP_PARAM_BOOL:
        case MP_PARAM_INT:
        case MP_PARAM_CHOICE: mp_mf_put_u32(w, (uint32_t)*(const int *)f); break;
        case MP_PARAM_UINT:
            mp_mf_put_u32(w, *(const uint32_t *)f);
            if (p->allow_auto) mp_mf_put_u32(w, (uint32_t)*(const int *)((const char *)params + p->auto_offset));
            break;
        case MP_PARAM_U64: mp_mf_put_u64(w, *(const uint64_t *)f); break;
        case MP_PARAM_DOUBLE:
            mp_mf_put_f64(w, *(const double *)f);
            if (p->allow_auto) mp_mf_put_u32(w, (uint32_t)*(const int *)((const char *)params + p->auto_offset));
            break;
        }
    }
}

static int params_read(const mp_param_info *table, size_t n, void *params, mp_mf_reader *r, const char *what,
                       int with_auto_flags, mp_error *err) {
    for (size_t i = 0; i < n; i++) {
        const mp_param_info *p = &table[i];
        void *f = field(p, params);
        uint32_t u = 0;
        int rc = MP_OK;
        switch (p->type) {
        case MP_PARAM_BOOL:
        case MP_PARAM_INT:
        case MP_PARAM_CHOICE:
            rc = mp_mf_get_u32(r, &u, err);
            /* a value above INT_MAX is out of every int field's range: keep it negative so the check refuses it */
            if (rc == MP_OK) *(int *)f = u > INT32_MAX ? -1 : (int)u;
            break;
        case MP_PARAM_UINT:
            rc = mp_mf_get_u32(r, (uint32_t *)f, err);
            break;
        case MP_PARAM_U64: rc = mp_mf_get_u64(r, (uint64_t *)f, err); break;
        case MP_PARAM_DOUBLE:
            rc = mp_mf_get_f64(r, (double *)f, err);
            break;
        }
        if (rc == MP_OK && p->allow_auto) { /* only UINT and DOUBLE take "auto" */
            u = 0;
            if (with_auto_flags) rc = mp_mf_get_u32(r, &u, err);
            if (rc == MP_OK) *(int *)((char *)params + p->auto_offset) = u > 1 ? -1 : (int)u;
        }
        if (rc) return rc;
        if (!field_ok(p, params)) {
            char got[64], want[256];
            return mp_error_set(err, MP_ECORRUPT, "%s payload: parameter %s: %s is out of range (expected %s)", what,
                                p->name, mp_param_format(p, params, got, sizeof got),
                                expectation(p, want, sizeof want));
        }
    }
    return MP_OK;
}

int mp_params_get(const mp_param_info *table, size_t n, void *params, mp_mf_reader *r, const char *what,
                  mp_error *err) {
    return params_read(table, n, params, r, what, 1, err);
}

int mp_params_get_flagless(const mp_param_info *table, size_t n, void *params, mp_mf_reader *r, const char *what,
                           mp_error *err) {
    return params_read(table, n, params, r, what, 0, err);
}

/* A number as written in a table: 15 significant digits give back the literal (0.2, not 0.20000000000000001). */
static void put_number(char *buf, size_t cap, double v) { snprintf(buf, cap, "%.15g", v); }

int mp_param_tune_spec(const mp_param_info *p, char *buf, size_t cap) {
    if (cap == 0) return 0;
    buf[0] = 0;
    switch (p->tune) {
    case MP_PARAM_TUNE_NONE: return 0;
    case MP_PARAM_TUNE_CHOICES:
        if (p->tune_choices) snprintf(buf, cap, "%s", p->tune_choices);
        else if (p->type == MP_PARAM_BOOL) snprintf(buf, cap, "0|1");
        else if (p->type == MP_PARAM_CHOICE) {
            size_t len = 0;
            for (uint32_t i = 0; i < p->n_choices && len < cap; i++) {
                int k = snprintf(buf + len, cap - len, "%s%s", i ? "|" : "", p->choices[i]);
                if (k < 0) break;
                len += (size_t)k;
            }
        } else return 0;
        return 1;
    case MP_PARAM_TUNE_LINEAR:
    case MP_PARAM_TUNE_LOG: {
        char lo[40], hi[40];
        put_number(lo, sizeof lo, p->tune_lo);
        put_number(hi, sizeof hi, p->tune_hi);
        /* the flags say the kind outright: the grammar would otherwise guess it from how the bounds are written */
        snprintf(buf, cap, "%s:%s%s:%s", lo, hi, p->tune == MP_PARAM_TUNE_LOG ? ":log" : "",
                 is_integer_type(p->type) ? "int" : "real");
        return 1;
    }
    }
    return 0;
}
