/* src/serve/config.c: the settings of `magpie serve` (see config.h). Every setting is described once, by the
 * MP_SERVE_SETTINGS table; this file turns that table into a descriptor array (field offsets, types) and all the
 * parsing, help and printing work from it. */
#include "serve/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- the descriptor table ---------------------------------------------------------------------------------- */

/* The C type of each setting type, to check at compile time that every field matches its declared type. */
#define MP_CFG_CTYPE_STR char *
#define MP_CFG_CTYPE_INT int64_t
#define MP_CFG_CTYPE_SIZE uint64_t
#define MP_CFG_CTYPE_BOOL int
#define MP_CFG_CTYPE_KEYS char **
#define MP_CFG_CTYPE_DUR int64_t

/* KEYS settings keep their count in n_<field>; other types have no count. */
#define MP_CFG_COUNT_OFF_STR(field) 0
#define MP_CFG_COUNT_OFF_INT(field) 0
#define MP_CFG_COUNT_OFF_SIZE(field) 0
#define MP_CFG_COUNT_OFF_BOOL(field) 0
#define MP_CFG_COUNT_OFF_KEYS(field) offsetof(mp_serve_config, n_##field)
#define MP_CFG_COUNT_OFF_DUR(field) 0

typedef struct setting {
    const char *key;  /* "max_body" */
    mp_cfg_type type; /* how the text is parsed and where it is stored */
    const char *def;  /* default, as text */
    const char *help; /* one line */
    size_t off;       /* offsetof the field in mp_serve_config */
    size_t count_off; /* KEYS: offsetof the n_<field> count; else 0 */
} setting;

static const setting settings[] = {
#define MP_CFG_DESC_(field, type, key, def, help)                                                                      \
    {key, MP_CFG_##type, def, help, offsetof(mp_serve_config, field), MP_CFG_COUNT_OFF_##type(field)},
    MP_SERVE_SETTINGS(MP_CFG_DESC_)
#undef MP_CFG_DESC_
};

#define N_SETTINGS (sizeof settings / sizeof settings[0])

/* Never called: fails to compile (incompatible pointer types under -Werror) if a field's C type does not match
 * the type named in the table, so the offsets above are always used with the right type. */
static inline void check_field_types(mp_serve_config *c) {
#define MP_CFG_CHECK_(field, type, key, def, help)                                                                     \
    {                                                                                                                  \
        MP_CFG_CTYPE_##type *p_ = &c->field;                                                                           \
        (void)p_;                                                                                                      \
    }
    MP_SERVE_SETTINGS(MP_CFG_CHECK_)
#undef MP_CFG_CHECK_
}

/* Bounds of the INT settings (inclusive). Checked by mp_serve_config_set and again by validate. */
typedef struct int_range {
    const char *key;
    int64_t lo, hi;
} int_range;

static const int_range int_ranges[] = {
    {"port", 0, 65535},
    {"threads", 0, 4096},
    {"max_n", 1, 1000000},
    {"max_batch", 1, 100000000},
    {"max_connections", 1, 1000000},
    {"ann_min_items", 0, 4294967295LL},
    {"ann_m", 2, 256},
    {"ann_ef_construction", 1, 100000},
    {"ann_ef_search", 1, 100000},
    {"bandit_capacity", 1, 100000000},
    {"bandit_pool", 1, 100},
    {"item_cap", 0, 1000000},
    {"category_cap", 0, 1000000},
    {"shopper_users", 1, 100000000},
    {"ab_users", 1, 10000000},
};

/* Fixed choices of STR settings that have them (NULL-terminated). */
static const char *const ann_choices[] = {"auto", "on", "off", NULL};
static const char *const feature_choices[] = {"auto", "model", "text", "none", NULL};

static void range_of(const char *key, int64_t *lo, int64_t *hi) {
    *lo = INT64_MIN;
    *hi = INT64_MAX;
    for (size_t i = 0; i < sizeof int_ranges / sizeof int_ranges[0]; i++)
        if (strcmp(int_ranges[i].key, key) == 0) {
            *lo = int_ranges[i].lo;
            *hi = int_ranges[i].hi;
        }
}

static const char *const *choices_of(const char *key) {
    return strcmp(key, "ann") == 0 ? ann_choices : strcmp(key, "bandit_features") == 0 ? feature_choices : NULL;
}

static int index_of_key(const char *key) {
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strcmp(settings[i].key, key) == 0) return (int)i;
    return -1;
}

static void *field_ptr(mp_serve_config *c, const setting *s) {
    return (char *)c + s->off;
}
static const void *field_cptr(const mp_serve_config *c, const setting *s) {
    return (const char *)c + s->off;
}

/* ---- small helpers ------------------------------------------------------------------------------------------- */

static char *dup_range(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static char *dup_str(const char *s) {
    return dup_range(s, strlen(s));
}

static void free_keys(char **keys) {
    if (!keys) return;
    for (char **k = keys; *k; k++)
        free(*k);
    free(keys);
}

/* Levenshtein distance of two short strings (for "did you mean"); strings longer than 63 give a large value. */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 1000;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int unknown_key(mp_error *err, const char *key) {
    const char *best = NULL;
    size_t best_d = 3; /* suggest only close names */
    char dashed[64];
    snprintf(dashed, sizeof dashed, "%s", key);
    for (char *p = dashed; *p; p++)
        if (*p == '-') *p = '_';
    for (size_t i = 0; i < N_SETTINGS; i++) {
        size_t d = edit_distance(dashed, settings[i].key);
        if (d < best_d) {
            best_d = d;
            best = settings[i].key;
        }
    }
    if (best) return mp_error_set(err, MP_EINVAL, "unknown setting `%s` (did you mean `%s`?)", key, best);
    return mp_error_set(err, MP_EINVAL, "unknown setting `%s` (`magpie serve --help` lists the settings)", key);
}

/* Trims blanks at both ends of value[0..*len) in place; returns the new start. */
static const char *trim(const char *v, size_t *len) {
    size_t n = *len;
    while (n && isspace((unsigned char)*v))
        v++, n--;
    while (n && isspace((unsigned char)v[n - 1]))
        n--;
    *len = n;
    return v;
}

static int lower_eq(const char *a, size_t n, const char *b) {
    if (strlen(b) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)a[i]) != b[i]) return 0;
    return 1;
}

/* ---- value parsers: text[0..n) (already trimmed) -> value; 0 on success, -1 if malformed or out of range --- */

static int parse_int(const char *t, size_t n, int64_t *out) {
    if (n == 0 || n > 20) return -1;
    size_t i = 0;
    int neg = 0;
    if (t[0] == '+' || t[0] == '-') neg = t[i++] == '-';
    if (i == n) return -1;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (t[i] < '0' || t[i] > '9') return -1;
        if (v > (UINT64_MAX - 9) / 10) return -1;
        v = v * 10 + (uint64_t)(t[i] - '0');
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return -1;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)v;
    }
    return 0;
}

static int parse_size(const char *t, size_t n, uint64_t *out) {
    size_t i = 0;
    uint64_t v = 0;
    if (n == 0 || t[0] < '0' || t[0] > '9') return -1;
    for (; i < n && t[i] >= '0' && t[i] <= '9'; i++) {
        if (v > (UINT64_MAX - 9) / 10) return -1;
        v = v * 10 + (uint64_t)(t[i] - '0');
    }
    while (i < n && isspace((unsigned char)t[i]))
        i++;
    const char *u = t + i;
    size_t un = n - i;
    unsigned shift = 0;
    if (un == 0 || lower_eq(u, un, "b"))
        shift = 0;
    else if (lower_eq(u, un, "k") || lower_eq(u, un, "kb") || lower_eq(u, un, "kib"))
        shift = 10;
    else if (lower_eq(u, un, "m") || lower_eq(u, un, "mb") || lower_eq(u, un, "mib"))
        shift = 20;
    else if (lower_eq(u, un, "g") || lower_eq(u, un, "gb") || lower_eq(u, un, "gib"))
        shift = 30;
    else if (lower_eq(u, un, "t") || lower_eq(u, un, "tb") || lower_eq(u, un, "tib"))
        shift = 40;
    else
        return -1;
    if (shift && v > (UINT64_MAX >> shift)) return -1;
    *out = v << shift;
    return 0;
}

/* Durations: a decimal number of units, exact to the millisecond. */
static int parse_dur(const char *t, size_t n, int64_t *out_ms) {
    size_t i = 0;
    uint64_t whole = 0, frac = 0, frac_scale = 1;
    int digits = 0;
    for (; i < n && t[i] >= '0' && t[i] <= '9'; i++, digits++) {
        if (whole > (UINT64_MAX - 9) / 10) return -1;
        whole = whole * 10 + (uint64_t)(t[i] - '0');
    }
    if (i < n && t[i] == '.') {
        i++;
        for (; i < n && t[i] >= '0' && t[i] <= '9'; i++, digits++) {
            if (frac_scale >= 1000000000000ULL) return -1; /* more decimals than any unit can use */
            frac = frac * 10 + (uint64_t)(t[i] - '0');
            frac_scale *= 10;
        }
    }
    if (digits == 0) return -1;
    while (i < n && isspace((unsigned char)t[i]))
        i++;
    const char *u = t + i;
    size_t un = n - i;
    uint64_t unit_ms;
    if (un == 0 || lower_eq(u, un, "s"))
        unit_ms = 1000;
    else if (lower_eq(u, un, "ms"))
        unit_ms = 1;
    else if (lower_eq(u, un, "m") || lower_eq(u, un, "min"))
        unit_ms = 60000;
    else if (lower_eq(u, un, "h"))
        unit_ms = 3600000;
    else
        return -1;
    if (whole > (uint64_t)INT64_MAX / unit_ms) return -1;
    uint64_t ms = whole * unit_ms;
    if ((frac * unit_ms) % frac_scale != 0) return -1; /* not a whole number of milliseconds */
    uint64_t extra = frac * unit_ms / frac_scale;
    if (ms > (uint64_t)INT64_MAX - extra) return -1;
    *out_ms = (int64_t)(ms + extra);
    return 0;
}

static int parse_bool(const char *t, size_t n, int *out) {
    static const char *const yes[] = {"true", "1", "yes", "on"}, *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (lower_eq(t, n, yes[i])) return *out = 1, 0;
        if (lower_eq(t, n, no[i])) return *out = 0, 0;
    }
    return -1;
}

/* Splits a comma list into a NULL-terminated array of owned keys. Returns MP_OK, MP_EINVAL (bad key, *bad set
 * to its 1-based position) or MP_ENOMEM. */
static int parse_keys(const char *t, size_t n, char ***out, size_t *count, size_t *bad) {
    size_t cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += t[i] == ',';
    char **keys = calloc(cap + 1, sizeof *keys);
    if (!keys) return MP_ENOMEM;
    size_t k = 0, pos = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && t[i] != ',') continue;
        pos++;
        size_t len = i - start;
        const char *s = trim(t + start, &len);
        start = i + 1;
        if (len == 0) continue;
        for (size_t j = 0; j < len; j++) {
            unsigned char ch = (unsigned char)s[j];
            if (ch <= ' ' || ch == 0x7f || ch == '"') {
                free_keys(keys);
                *bad = pos;
                return MP_EINVAL;
            }
        }
        if (!(keys[k] = dup_range(s, len))) {
            free_keys(keys);
            return MP_ENOMEM;
        }
        k++;
    }
    *out = keys;
    *count = k;
    return MP_OK;
}

static const char *expected_form(const setting *s) {
    switch (s->type) {
    case MP_CFG_STR:
        return "text";
    case MP_CFG_INT:
        return "a whole number";
    case MP_CFG_SIZE:
        return "a size in bytes with an optional unit k, m, g, t (e.g. 1048576, 64k, 8m)";
    case MP_CFG_BOOL:
        return "true/false, yes/no, on/off or 1/0";
    case MP_CFG_KEYS:
        return "a comma-separated list of keys without blanks, control characters or '\"'";
    case MP_CFG_DUR:
        return "a duration in whole milliseconds: seconds, or a number with ms, s, m or h (e.g. 30, 500ms, 1.5s, 5m, "
               "1h)";
    }
    return "?";
}

/* ---- public API ---------------------------------------------------------------------------------------------- */

int mp_serve_config_set(mp_serve_config *c, const char *key, const char *value, const char *origin, mp_error *err) {
    if (!key || !value)
        return mp_error_set(err, MP_EINVAL, "setting %s: %s is NULL", key ? key : "(null)", key ? "value" : "key");
    int idx = index_of_key(key);
    if (idx < 0) return unknown_key(err, key);
    const setting *s = &settings[idx];
    size_t n = strlen(value);
    const char *t = s->type == MP_CFG_STR ? value : trim(value, &n);
    char *new_origin = dup_str(origin ? origin : "flag");
    if (!new_origin) return mp_error_set(err, MP_ENOMEM, "setting `%s`: out of memory", key);
    int rc = MP_OK;
    void *f = field_ptr(c, s);
    switch (s->type) {
    case MP_CFG_STR: {
        const char *const *ch = choices_of(key);
        if (ch) {
            int ok = 0;
            for (const char *const *p = ch; *p; p++)
                ok |= strcmp(*p, value) == 0;
            if (!ok) {
                rc =
                    mp_error_set(err, MP_EINVAL, "setting `%s`: expected one of auto, on, off, got \"%s\"", key, value);
                break;
            }
        }
        char *v = dup_str(value);
        if (!v) {
            rc = mp_error_set(err, MP_ENOMEM, "setting `%s`: out of memory", key);
            break;
        }
        free(*(char **)f);
        *(char **)f = v;
        break;
    }
    case MP_CFG_INT: {
        int64_t v, lo, hi;
        range_of(key, &lo, &hi);
        if (parse_int(t, n, &v) != 0) {
            rc = mp_error_set(err, MP_EINVAL, "setting `%s`: expected a whole number from %lld to %lld, got \"%s\"",
                              key, (long long)lo, (long long)hi, value);
        } else if (v < lo || v > hi) {
            rc = mp_error_set(err, MP_EINVAL, "setting `%s`: %lld is out of range (expected %lld to %lld)", key,
                              (long long)v, (long long)lo, (long long)hi);
        } else {
            *(int64_t *)f = v;
        }
        break;
    }
    case MP_CFG_SIZE: {
        uint64_t v;
        if (parse_size(t, n, &v) != 0)
            rc = mp_error_set(err, MP_EINVAL, "setting `%s`: expected %s, got \"%s\"", key, expected_form(s), value);
        else
            *(uint64_t *)f = v;
        break;
    }
    case MP_CFG_DUR: {
        int64_t v;
        if (parse_dur(t, n, &v) != 0)
            rc = mp_error_set(err, MP_EINVAL, "setting `%s`: expected %s, got \"%s\"", key, expected_form(s), value);
        else
            *(int64_t *)f = v;
        break;
    }
    case MP_CFG_BOOL: {
        int v;
        if (parse_bool(t, n, &v) != 0)
            rc = mp_error_set(err, MP_EINVAL, "setting `%s`: expected %s, got \"%s\"", key, expected_form(s), value);
        else
            *(int *)f = v;
        break;
    }
    case MP_CFG_KEYS: {
        char **keys = NULL;
        size_t count = 0, bad = 0;
        rc = parse_keys(t, n, &keys, &count, &bad);
        if (rc == MP_ENOMEM) {
            mp_error_set(err, rc, "setting `%s`: out of memory", key);
        } else if (rc != MP_OK) {
            /* never echo the value: it holds secrets */
            mp_error_set(err, rc, "setting `%s`: key %zu of the list: expected %s", key, bad, expected_form(s));
        } else {
            free_keys(*(char ***)f);
            *(char ***)f = keys;
            *(size_t *)((char *)c + s->count_off) = count;
        }
        break;
    }
    }
    if (rc != MP_OK) {
        free(new_origin);
        return rc;
    }
    free((char *)c->origin[idx]);
    c->origin[idx] = new_origin;
    return MP_OK;
}

int mp_serve_config_init(mp_serve_config *c, mp_error *err) {
    _Static_assert(sizeof settings / sizeof settings[0] <= sizeof c->origin / sizeof c->origin[0],
                   "mp_serve_config.origin is too small for MP_SERVE_SETTINGS");
    (void)check_field_types;
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        int rc = mp_serve_config_set(c, settings[i].key, settings[i].def, "default", err);
        if (rc != MP_OK) {
            mp_serve_config_free(c);
            return rc;
        }
    }
    return MP_OK;
}

void mp_serve_config_free(mp_serve_config *c) {
    if (!c) return;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        void *f = field_ptr(c, &settings[i]);
        if (settings[i].type == MP_CFG_STR) free(*(char **)f);
        if (settings[i].type == MP_CFG_KEYS) free_keys(*(char ***)f);
        free((char *)c->origin[i]);
    }
    memset(c, 0, sizeof *c);
}

/* Parses one value of a config line: v[0..n) after the '='. Quoted values are unescaped into *out (owned).
 * Returns MP_OK, MP_EINVAL (err says why, without location) or MP_ENOMEM. */
static int parse_file_value(const char *v, size_t n, char **out, mp_error *err) {
    size_t i = 0;
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (i < n && v[i] == '"') {
        char *buf = malloc(n + 1);
        if (!buf) return mp_error_set(err, MP_ENOMEM, "out of memory");
        size_t o = 0;
        for (i++;; i++) {
            if (i >= n) {
                free(buf);
                return mp_error_set(err, MP_EINVAL, "unterminated quoted value (missing closing '\"')");
            }
            if (v[i] == '"') break;
            if (v[i] != '\\') {
                buf[o++] = v[i];
                continue;
            }
            if (++i >= n) continue; /* reported as unterminated on the next turn */
            char e = v[i];
            if (e == '"' || e == '\\')
                buf[o++] = e;
            else if (e == 'n')
                buf[o++] = '\n';
            else if (e == 't')
                buf[o++] = '\t';
            else {
                free(buf);
                return mp_error_set(err, MP_EINVAL, "unknown escape '\\%c' in quoted value (use \\\" \\\\ \\n \\t)", e);
            }
        }
        buf[o] = '\0';
        for (i++; i < n && (v[i] == ' ' || v[i] == '\t'); i++) {
        }
        if (i < n && v[i] != '#') {
            free(buf);
            return mp_error_set(err, MP_EINVAL, "unexpected text after the closing quote (start a comment with #)");
        }
        *out = buf;
        return MP_OK;
    }
    size_t end = i;
    while (end < n && v[end] != '#')
        end++;
    while (end > i && (v[end - 1] == ' ' || v[end - 1] == '\t'))
        end--;
    if (!(*out = dup_range(v + i, end - i))) return mp_error_set(err, MP_ENOMEM, "out of memory");
    return MP_OK;
}

int mp_serve_config_load_file(mp_serve_config *c, const char *path, mp_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return mp_error_set(err, MP_EIO, "cannot open config file %s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    int rc = MP_OK;
    while (text) {
        if (len == cap) {
            char *bigger = cap > SIZE_MAX / 2 ? NULL : realloc(text, cap * 2);
            if (!bigger) {
                free(text);
                text = NULL;
                break;
            }
            text = bigger;
            cap *= 2;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int read_error = ferror(f);
    fclose(f);
    if (!text) return mp_error_set(err, MP_ENOMEM, "%s: out of memory reading the config file", path);
    if (read_error) {
        free(text);
        return mp_error_set(err, MP_EIO, "cannot read config file %s", path);
    }

    int first_line[N_SETTINGS] = {0}; /* line where each key was set in this file; 0 = not yet */
    size_t pos = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) pos = 3;
    for (int line = 1; pos < len && rc == MP_OK; line++) {
        const char *ln = text + pos;
        const char *nl = memchr(ln, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - ln) : len - pos;
        pos += n + 1;
        if (n && ln[n - 1] == '\r') n--;
        if (memchr(ln, '\0', n)) {
            rc = mp_error_set(err, MP_EINVAL, "%s:%d: NUL byte in the line (is this a text file?)", path, line);
            break;
        }
        size_t i = 0;
        while (i < n && (ln[i] == ' ' || ln[i] == '\t'))
            i++;
        if (i == n || ln[i] == '#') continue;
        const char *eq = memchr(ln, '=', n);
        if (!eq) {
            rc = mp_error_set(err, MP_EINVAL, "%s:%d: expected `key = value`, got \"%.*s\"", path, line,
                              (int)(n - i > 80 ? 80 : n - i), ln + i);
            break;
        }
        size_t klen = (size_t)(eq - (ln + i));
        while (klen && (ln[i + klen - 1] == ' ' || ln[i + klen - 1] == '\t'))
            klen--;
        char key[64];
        if (klen == 0 || klen >= sizeof key) {
            rc = mp_error_set(err, MP_EINVAL, "%s:%d: expected a setting name before '='", path, line);
            break;
        }
        memcpy(key, ln + i, klen);
        key[klen] = '\0';
        int idx = index_of_key(key);
        if (idx < 0) {
            rc = unknown_key(err, key);
            mp_error_prefix(err, "%s:%d", path, line);
            break;
        }
        if (first_line[idx]) {
            rc = mp_error_set(err, MP_EINVAL, "%s:%d: setting `%s` given twice (first at line %d); keep one", path,
                              line, key, first_line[idx]);
            break;
        }
        first_line[idx] = line;
        char *value = NULL;
        rc = parse_file_value(eq + 1, n - (size_t)(eq + 1 - ln), &value, err);
        if (rc != MP_OK) {
            mp_error_prefix(err, "%s:%d: setting `%s`", path, line, key);
            break;
        }
        char origin[600];
        snprintf(origin, sizeof origin, "%s:%d", path, line);
        rc = mp_serve_config_set(c, key, value, origin, err);
        free(value);
        if (rc != MP_OK) mp_error_prefix(err, "%s:%d", path, line);
    }
    free(text);
    return rc;
}

int mp_serve_config_apply_env(mp_serve_config *c, char *const *envp, mp_error *err) {
    if (!envp) return MP_OK;
    for (char *const *e = envp; *e; e++) {
        if (strncmp(*e, "MAGPIE_", 7) != 0) continue;
        const char *name = *e + 7, *eq = strchr(name, '=');
        if (!eq) continue;
        size_t n = (size_t)(eq - name);
        char key[64];
        if (n == 0 || n >= sizeof key) continue;
        for (size_t i = 0; i < n; i++)
            key[i] = (char)tolower((unsigned char)name[i]);
        key[n] = '\0';
        /* only the exact upper-case spelling counts: MAGPIE_PORT, not MAGPIE_Port */
        int idx = index_of_key(key);
        if (idx < 0) continue;
        int upper = 1;
        for (size_t i = 0; i < n; i++)
            upper &= !islower((unsigned char)name[i]);
        if (!upper) continue;
        int rc = mp_serve_config_set(c, key, eq + 1, "env", err);
        if (rc != MP_OK) {
            mp_error_prefix(err, "environment variable MAGPIE_%.*s", (int)n, name);
            return rc;
        }
    }
    return MP_OK;
}

int mp_serve_config_validate(const mp_serve_config *c, mp_error *err) {
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        if (s->type == MP_CFG_INT) {
            int64_t v = *(const int64_t *)field_cptr(c, s), lo, hi;
            range_of(s->key, &lo, &hi);
            if (v < lo || v > hi)
                return mp_error_set(err, MP_EINVAL, "setting `%s`: %lld is out of range (expected %lld to %lld)",
                                    s->key, (long long)v, (long long)lo, (long long)hi);
        } else if (s->type == MP_CFG_DUR) {
            if (*(const int64_t *)field_cptr(c, s) < 0)
                return mp_error_set(err, MP_EINVAL, "setting `%s`: a duration cannot be negative", s->key);
        } else if (s->type == MP_CFG_STR) {
            if (!*(char *const *)field_cptr(c, s))
                return mp_error_set(err, MP_EINVAL, "setting `%s` is unset (initialize with mp_serve_config_init)",
                                    s->key);
        }
    }
    if (!c->db[0]) return mp_error_set(err, MP_EINVAL, "setting `db`: the store path is empty (give --db FILE or --store postgres://...)");
    if (!c->listen[0])
        return mp_error_set(err, MP_EINVAL, "setting `listen`: the address is empty (e.g. 127.0.0.1 or 0.0.0.0)");
    if (strcmp(c->ann, "auto") != 0 && strcmp(c->ann, "on") != 0 && strcmp(c->ann, "off") != 0)
        return mp_error_set(err, MP_EINVAL, "setting `ann`: expected auto, on or off, got \"%s\"", c->ann);
    if (c->encoder[0] && strcmp(c->encoder, "none") && strncmp(c->encoder, "use-lite", 8) &&
        strncmp(c->encoder, "openai:", 7))
        return mp_error_set(err, MP_EINVAL,
                            "setting `encoder`: expected use-lite, use-lite:DIR, openai:MODEL@URL or none, got \"%s\"",
                            c->encoder);
    if (c->max_body == 0) return mp_error_set(err, MP_EINVAL, "setting `max_body`: must be at least 1 byte (e.g. 8m)");
    if (c->max_body > (1ULL << 30))
        return mp_error_set(err, MP_EINVAL,
                            "setting `max_body`: %llu bytes is more than the 1g a request body may hold in memory; "
                            "load bulk data with `magpie import`",
                            (unsigned long long)c->max_body);
    if (c->request_timeout <= 0)
        return mp_error_set(err, MP_EINVAL, "setting `request_timeout`: must be positive (e.g. 10s)");
    if (c->idle_timeout <= 0)
        return mp_error_set(err, MP_EINVAL, "setting `idle_timeout`: must be positive (e.g. 15s)");
    if (c->retrain_every > 0 && !c->model[0])
        return mp_error_set(err, MP_EINVAL,
                            "setting `retrain_every`: a scheduled retrain needs `model` (the file it writes and the "
                            "server reloads)");
    mp_explore_opts xo;
    int brc = mp_serve_config_explore_opts(c, &xo, err);
    if (brc) return brc;
    if (c->retrain_args[0] && c->retrain_every == 0)
        return mp_error_set(err, MP_EINVAL, "setting `retrain_args` is given but `retrain_every` is 0 (never)");
    return MP_OK;
}

/* ---- exploration settings -> the live module's explore options ------------------------------------------------ */

static int parse_float(const char *s, double lo, double hi, double *out) {
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || *e || errno || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int mp_serve_parse_price(const char *s, double *out) {
    if (!s || !*s) {
        *out = NAN;
        return 0;
    }
    return parse_float(s, 0, 1e300, out);
}

int mp_serve_config_explore_opts(const mp_serve_config *c, mp_explore_opts *o, mp_error *err) {
    mp_explore_opts_default(o);
    o->policy = c->bandit;
    o->variants = c->ab_variants;
    o->salt = c->ab_salt;
    o->log_path = c->bandit_log;
    o->state_dir = c->bandit_state;
    o->save_every = (double)c->bandit_save_every / 1000.0;
    o->ttl = (double)c->bandit_ttl / 1000.0;
    o->capacity = (size_t)c->bandit_capacity;
    o->pool = (uint32_t)c->bandit_pool;
    o->shopper_users = (size_t)c->shopper_users;
    o->ab_users = (size_t)c->ab_users;
    mp_protect_opts *p = &o->protect;
    if (parse_float(c->fatigue_weight, 0, 1e9, &p->fatigue_weight))
        return mp_error_set(err, MP_EINVAL, "setting `fatigue_weight`: \"%s\" is not a number >= 0", c->fatigue_weight);
    if (parse_float(c->mmr_lambda, 0, 1, &p->mmr_lambda))
        return mp_error_set(err, MP_EINVAL, "setting `mmr_lambda`: \"%s\" is not a number in [0, 1]", c->mmr_lambda);
    if (parse_float(c->novelty_weight, 0, 1e9, &p->novelty_weight))
        return mp_error_set(err, MP_EINVAL, "setting `novelty_weight`: \"%s\" is not a number >= 0", c->novelty_weight);
    if (c->fatigue_half_life <= 0)
        return mp_error_set(err, MP_EINVAL, "setting `fatigue_half_life`: must be positive (e.g. 1h)");
    if (c->cap_window <= 0) return mp_error_set(err, MP_EINVAL, "setting `cap_window`: must be positive (e.g. 24h)");
    p->fatigue_half_life = (double)c->fatigue_half_life / 1000.0;
    p->item_cap = (uint32_t)c->item_cap;
    p->category_cap = (uint32_t)c->category_cap;
    p->item_window = p->category_window = (double)c->cap_window / 1000.0;
    if (c->bandit_ttl <= 0) return mp_error_set(err, MP_EINVAL, "setting `bandit_ttl`: must be positive (e.g. 1h)");
    if (mp_serve_parse_price(c->price_min, &p->price_min))
        return mp_error_set(err, MP_EINVAL, "setting `price_min`: \"%s\" is not a price (a number >= 0)", c->price_min);
    if (mp_serve_parse_price(c->price_max, &p->price_max))
        return mp_error_set(err, MP_EINVAL, "setting `price_max`: \"%s\" is not a price (a number >= 0)", c->price_max);
    if (p->price_min > p->price_max)
        return mp_error_set(err, MP_EINVAL, "settings `price_min` %g and `price_max` %g: empty range", p->price_min,
                            p->price_max);
    if (mp_live_feat_source_parse(c->bandit_features, &o->features, err) != MP_OK)
        return mp_error_set(err, MP_EINVAL, "setting `bandit_features`: %s", err->msg);
    /* the specs and the remaining ranges are the live module's to check; name our setting for its option */
    static const char *const names[][2] = {
        {"policy", "bandit"},           {"variants", "ab_variants"},     {"ttl", "bandit_ttl"},
        {"capacity", "bandit_capacity"}, {"pool", "bandit_pool"},         {"shopper_users", "shopper_users"},
        {"price_min", "price_min"},      {"price_max", "price_max"},     {"features", "bandit_features"},
        {"protect.fatigue_weight", "fatigue_weight"}, {"protect.mmr_lambda", "mmr_lambda"},
        {"protect.novelty_weight", "novelty_weight"}, {"protect.fatigue_half_life", "fatigue_half_life"},
        {"protect.item_window", "cap_window"},        {"protect.category_window", "cap_window"},
    };
    const char *option = NULL;
    mp_error xerr;
    mp_error_clear(&xerr);
    int rc = mp_explore_opts_check(o, &option, &xerr);
    if (rc == MP_OK) return MP_OK;
    const char *key = option ? option : "bandit";
    for (size_t i = 0; option && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(names[i][0], option)) key = names[i][1];
    return mp_error_set(err, rc, "setting `%s`: %s", key, xerr.msg);
}

/* ---- help and printing --------------------------------------------------------------------------------------- */

static const char *placeholder(mp_cfg_type t) {
    switch (t) {
    case MP_CFG_STR:
        return "TEXT";
    case MP_CFG_INT:
        return "N";
    case MP_CFG_SIZE:
        return "SIZE";
    case MP_CFG_BOOL:
        return "BOOL";
    case MP_CFG_KEYS:
        return "KEY,...";
    case MP_CFG_DUR:
        return "DURATION";
    }
    return "VALUE";
}

/* Writes `text` word-wrapped so no line passes `width` columns, each line indented by `indent` spaces. */
static void write_wrapped(FILE *f, const char *text, int indent, int width) {
    int col = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        size_t w = strcspn(p, " ");
        if (col > indent && col + 1 + (int)w > width) {
            fputc('\n', f);
            col = 0;
        }
        if (col == 0)
            col = fprintf(f, "%*s", indent, "");
        else
            col += fprintf(f, " ");
        col += fprintf(f, "%.*s", (int)w, p);
        p += w;
    }
    if (col) fputc('\n', f);
}

void mp_serve_config_help(FILE *f) {
    fprintf(f, "Settings (precedence: defaults < config file < environment < flags):\n");
    fprintf(f, "  %-26s %-27s %-20s %s\n", "FLAG", "ENVIRONMENT", "FILE KEY", "DEFAULT");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        char flag[80], env[80]; /* "--max-body SIZE", "MAGPIE_MAX_BODY" */
        snprintf(flag, sizeof flag, "--%s %s", s->key, placeholder(s->type));
        for (char *p = flag + 2; *p && *p != ' '; p++)
            if (*p == '_') *p = '-';
        snprintf(env, sizeof env, "MAGPIE_%s", s->key);
        for (char *p = env; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        char line[600];
        /* widest: 2 + 26 + 1 + 27 + 1 + 20 + 1 + "default: 50000 (0 to 4294967295)" = 110 columns */
        int n = snprintf(line, sizeof line, "  %-26s %-27s %-20s default: %s", flag, env, s->key,
                         s->def[0] ? s->def : "\"\"");
        if (s->type == MP_CFG_INT && n > 0 && (size_t)n < sizeof line) {
            int64_t lo, hi;
            range_of(s->key, &lo, &hi);
            snprintf(line + n, sizeof line - (size_t)n, " (%lld to %lld)", (long long)lo, (long long)hi);
        }
        fprintf(f, "%s\n", line);
        write_wrapped(f, s->help, 6, 110);
    }
    write_wrapped(f,
                  "Config file (--config FILE or MAGPIE_CONFIG): `key = value` lines, e.g. max_body = 8m; # starts a "
                  "comment; \"quoted\" values keep #. SIZE: bytes, or with a unit k, m, g, t (powers of 1024): "
                  "1048576, 64k, 8m. DURATION: seconds, "
                  "or a number with ms, s, m, h: 30, 500ms, 1.5s, 5m, 1h. BOOL: true/false, yes/no, on/off, 1/0 "
                  "(a BOOL flag alone means true). KEY,...: comma-separated API keys.",
                  0, 110);
}

static void format_size(uint64_t v, char *buf, size_t cap) {
    static const char units[] = "tgmk";
    for (int i = 0; i < 4; i++) {
        unsigned shift = (unsigned)(40 - 10 * i);
        uint64_t unit = 1ULL << shift;
        if (v && v % unit == 0) {
            snprintf(buf, cap, "%llu%c", (unsigned long long)(v >> shift), units[i]);
            return;
        }
    }
    snprintf(buf, cap, "%llu", (unsigned long long)v);
}

static void format_dur(int64_t ms, char *buf, size_t cap) {
    if (ms == 0)
        snprintf(buf, cap, "0");
    else if (ms % 3600000 == 0)
        snprintf(buf, cap, "%lldh", (long long)(ms / 3600000));
    else if (ms % 60000 == 0)
        snprintf(buf, cap, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, cap, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, cap, "%lldms", (long long)ms);
}

/* Writes s as a quoted config value, with the escapes the parser understands. */
static int write_quoted(FILE *f, const char *s) {
    int n = fprintf(f, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            n += fprintf(f, "\\%c", *s);
        else if (*s == '\n')
            n += fprintf(f, "\\n");
        else if (*s == '\t')
            n += fprintf(f, "\\t");
        else
            n += fprintf(f, "%c", *s);
    }
    return n + fprintf(f, "\"");
}

void mp_serve_config_print(const mp_serve_config *c, FILE *f) {
    fprintf(f, "# magpie serve: effective settings (API keys redacted as ***)\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        const void *p = field_cptr(c, s);
        char buf[64];
        int col = fprintf(f, "%s = ", s->key);
        switch (s->type) {
        case MP_CFG_STR:
            col += write_quoted(f, *(char *const *)p ? *(char *const *)p : "");
            break;
        case MP_CFG_INT:
            col += fprintf(f, "%lld", (long long)*(const int64_t *)p);
            break;
        case MP_CFG_SIZE:
            format_size(*(const uint64_t *)p, buf, sizeof buf);
            col += fprintf(f, "%s", buf);
            break;
        case MP_CFG_DUR:
            format_dur(*(const int64_t *)p, buf, sizeof buf);
            col += fprintf(f, "%s", buf);
            break;
        case MP_CFG_BOOL:
            col += fprintf(f, "%s", *(const int *)p ? "true" : "false");
            break;
        case MP_CFG_KEYS: {
            size_t count = *(const size_t *)((const char *)c + s->count_off);
            col += fprintf(f, "\"");
            for (size_t k = 0; k < count; k++)
                col += fprintf(f, "%s***", k ? "," : "");
            col += fprintf(f, "\"");
            break;
        }
        }
        fprintf(f, "%*s# %s\n", col < 40 ? 40 - col : 1, "", c->origin[i] ? c->origin[i] : "default");
    }
}

const char *mp_serve_config_key_of_flag(const char *flag) {
    if (!flag) return NULL;
    if (!strcmp(flag, "store")) return "db"; /* --store URI, as the other commands take it */
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *k = settings[i].key, *g = flag;
        for (; *k && *g; k++, g++)
            if (*k != *g && !(*k == '_' && *g == '-')) break;
        if (!*k && !*g) return settings[i].key;
    }
    return NULL;
}

int mp_serve_config_is_bool(const char *key) {
    int idx = key ? index_of_key(key) : -1;
    return idx >= 0 && settings[idx].type == MP_CFG_BOOL;
}

/* ---- constant-time key comparison ---------------------------------------------------------------------------
 *
 * The loop runs exactly presented_len times and does the same work every time, whatever the bytes are, so its
 * duration depends only on presented_len. It never computes the configured key's length (strlen would take time
 * proportional to it): instead a cursor j walks the configured key and stops, without branching, on its NUL
 * terminator. In each step:
 *   - diff collects presented[i] XOR configured[j]: non-zero as soon as any byte differs;
 *   - diff also collects "configured[j] is the NUL" (computed arithmetically): the presented key is longer than
 *     the configured one, which also catches a presented key with an embedded NUL;
 *   - j advances by 1 unless configured[j] is the NUL (again arithmetic, no branch).
 * After the loop, configured[j] must be the NUL, else the configured key is longer (presented is a prefix).
 * Every step reads configured[j] at most one byte past the previous read, so once the configured key ends the
 * same byte is read over and over: no out-of-bounds access. The accumulator is volatile so the compiler cannot
 * turn the loop into an early exit on the first difference. */
int mp_serve_key_equal(const char *presented, size_t presented_len, const char *configured) {
    if (!configured || !configured[0]) return 0;
    static const char empty[1] = "";
    const unsigned char *p = (const unsigned char *)(presented ? presented : empty);
    if (!presented) presented_len = 0;
    const unsigned char *k = (const unsigned char *)configured;
    volatile unsigned diff = 0;
    size_t j = 0;
    for (size_t i = 0; i < presented_len; i++) {
        unsigned kc = k[j];
        unsigned at_end = (kc - 1u) >> 31; /* 1 iff kc == 0 (kc is 0..255) */
        diff |= (p[i] ^ kc) | at_end;
        j += 1u - at_end;
    }
    diff |= k[j];
    return diff == 0;
}
