/* src/io/json.c: the JSON pull parser of magpie/json.h. */
#include "magpie/json.h"

#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_internal.h"

static int fail(mp_json_cur *c, const char *at, const char *why) {
    c->err_at = at;
    c->why = why;
    return MP_EINVAL;
}

static inline void skip_ws(mp_json_cur *c) {
    const char *p = c->p, *end = c->end;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    c->p = p;
}

void mp_json_init(mp_json_cur *c, const char *s, size_t len) {
    c->p = s;
    c->end = s + len;
    c->err_at = NULL;
    c->why = NULL;
    c->depth = 0;
}

mp_json_type mp_json_peek(mp_json_cur *c) {
    skip_ws(c);
    if (c->p >= c->end) return MP_JSON_NONE;
    switch (*c->p) {
    case '"':
        return MP_JSON_STRING;
    case '{':
        return MP_JSON_OBJECT;
    case '[':
        return MP_JSON_ARRAY;
    case 't':
    case 'f':
        return MP_JSON_BOOL;
    case 'n':
        return MP_JSON_NULL;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        return MP_JSON_NUMBER;
    default:
        return MP_JSON_NONE;
    }
}

int mp_json_accept(mp_json_cur *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

int mp_json_at_end(mp_json_cur *c) {
    skip_ws(c);
    return c->p >= c->end;
}

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9')
            v |= (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            v |= (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            v |= (unsigned)(ch - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

static char *put_utf8(char *d, unsigned cp) {
    if (cp < 0x80) {
        *d++ = (char)cp;
    } else if (cp < 0x800) {
        *d++ = (char)(0xC0 | (cp >> 6));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *d++ = (char)(0xE0 | (cp >> 12));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *d++ = (char)(0xF0 | (cp >> 18));
        *d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    }
    return d;
}

/* Scans a string body starting after the opening quote. With dst == NULL only validates. Returns the position
 * after the closing quote or NULL on error. */
static const char *scan_string(mp_json_cur *c, const char *p, char **dst_io) {
    const unsigned char *u = (const unsigned char *)p, *end = (const unsigned char *)c->end;
    char *d = dst_io ? *dst_io : NULL;
    while (u < end) {
        unsigned ch = *u;
        if (ch == '"') {
            if (dst_io) *dst_io = d;
            return (const char *)u + 1;
        }
        if (ch == '\\') {
            if (end - u < 2) break;
            unsigned cp;
            switch (u[1]) {
            case '"':
                cp = '"';
                break;
            case '\\':
                cp = '\\';
                break;
            case '/':
                cp = '/';
                break;
            case 'b':
                cp = '\b';
                break;
            case 'f':
                cp = '\f';
                break;
            case 'n':
                cp = '\n';
                break;
            case 'r':
                cp = '\r';
                break;
            case 't':
                cp = '\t';
                break;
            case 'u':
                if (end - u < 6 || !hex4((const char *)u + 2, &cp)) {
                    fail(c, (const char *)u, "invalid \\u escape (expected 4 hex digits)");
                    return NULL;
                }
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    fail(c, (const char *)u, "invalid \\u escape: lone low surrogate");
                    return NULL;
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (end - u < 12 || u[6] != '\\' || u[7] != 'u' || !hex4((const char *)u + 8, &lo) || lo < 0xDC00 ||
                        lo > 0xDFFF) {
                        fail(c, (const char *)u, "invalid \\u escape: high surrogate without a low surrogate");
                        return NULL;
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    u += 6;
                }
                if (cp == 0) {
                    fail(c, (const char *)u, "\\u0000 (NUL) is not allowed in text");
                    return NULL;
                }
                if (d) d = put_utf8(d, cp);
                u += 6;
                continue;
            default:
                fail(c, (const char *)u, "invalid escape in string");
                return NULL;
            }
            if (d) *d++ = (char)cp;
            u += 2;
            continue;
        }
        if (ch < 0x20) {
            fail(c, (const char *)u, "control character in string (must be escaped)");
            return NULL;
        }
        if (ch < 0x80) {
            if (d) *d++ = (char)ch;
            u++;
            continue;
        }
        int n = mp_utf8_seq_len(u, end);
        if (!n) {
            fail(c, (const char *)u, "invalid UTF-8");
            return NULL;
        }
        if (d) {
            memcpy(d, u, (size_t)n);
            d += n;
        }
        u += n;
    }
    fail(c, p - 1, "unterminated string");
    return NULL;
}

int mp_json_string(mp_json_cur *c, char **scratch, mp_str *out) {
    skip_ws(c);
    if (c->p >= c->end || *c->p != '"') return fail(c, c->p, "expected a string");
    const unsigned char *start = (const unsigned char *)c->p + 1, *u = start, *end = (const unsigned char *)c->end;
    /* Fast path: plain ASCII and valid UTF-8 without escapes is returned as a slice of the input. */
    for (;;) {
        while (u < end && *u >= 0x20 && *u < 0x80 && *u != '"' && *u != '\\')
            u++;
        if (u >= end) return fail(c, c->p, "unterminated string");
        if (*u == '"') {
            out->ptr = (const char *)start;
            out->len = (size_t)(u - start);
            c->p = (const char *)u + 1;
            return MP_OK;
        }
        if (*u >= 0x80) {
            int n = mp_utf8_seq_len(u, end);
            if (!n) return fail(c, (const char *)u, "invalid UTF-8");
            u += n;
            continue;
        }
        break; /* escape or control character: decode */
    }
    if (!scratch || !*scratch) return fail(c, (const char *)u, "escaped string without scratch space");
    char *d0 = *scratch, *d = d0;
    size_t plain = (size_t)(u - start);
    memcpy(d, start, plain);
    d += plain;
    const char *after = scan_string(c, (const char *)u, &d);
    if (!after) return MP_EINVAL;
    out->ptr = d0;
    out->len = (size_t)(d - d0);
    *scratch = d;
    c->p = after;
    return MP_OK;
}

/* Scans the JSON number grammar at p; returns the end or NULL. */
static const char *scan_number(const char *p, const char *end, int *is_int) {
    int integer = 1;
    if (p < end && *p == '-') p++;
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        integer = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    *is_int = integer;
    return p;
}

/* Converts a number already checked against the grammar. */
static int number_value(const char *s, size_t len, int is_int, double *out) {
    if (is_int && len <= 16) {
        const char *p = s;
        int neg = 0;
        if (*p == '-') {
            neg = 1;
            p++;
        }
        int64_t v = 0;
        for (; p < s + len; p++)
            v = v * 10 + (*p - '0');
        *out = neg ? -(double)v : (double)v;
        return MP_OK;
    }
    char buf[400];
    if (len >= sizeof buf) return MP_EINVAL;
    memcpy(buf, s, len);
    buf[len] = 0;
    double v = strtod(buf, NULL);
    if (!isfinite(v)) return MP_EINVAL;
    *out = v;
    return MP_OK;
}

int mp_json_number(mp_json_cur *c, mp_str *raw, int *is_int, double *value) {
    skip_ws(c);
    int integer = 0;
    const char *e = scan_number(c->p, c->end, &integer);
    if (!e) return fail(c, c->p, "expected a number");
    if (e < c->end && ((*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') || *e == '.' || *e == '_'))
        return fail(c, c->p, "malformed number");
    if (value && number_value(c->p, (size_t)(e - c->p), integer, value) != MP_OK)
        return fail(c, c->p, "number out of range");
    if (raw) {
        raw->ptr = c->p;
        raw->len = (size_t)(e - c->p);
    }
    if (is_int) *is_int = integer;
    c->p = e;
    return MP_OK;
}

static int match_word(mp_json_cur *c, const char *w, size_t n) {
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0) return 0;
    const char *e = c->p + n;
    if (e < c->end && ((*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') || (*e >= '0' && *e <= '9'))) return 0;
    c->p = e;
    return 1;
}

int mp_json_bool(mp_json_cur *c, int *out) {
    skip_ws(c);
    if (match_word(c, "true", 4)) {
        *out = 1;
        return MP_OK;
    }
    if (match_word(c, "false", 5)) {
        *out = 0;
        return MP_OK;
    }
    return fail(c, c->p, "expected true or false");
}

int mp_json_null(mp_json_cur *c) {
    skip_ws(c);
    if (match_word(c, "null", 4)) return MP_OK;
    return fail(c, c->p, "expected null");
}

static int skip_value(mp_json_cur *c, int depth) {
    if (depth > MP_JSON_MAX_DEPTH) return fail(c, c->p, "nested too deeply");
    skip_ws(c);
    if (c->p >= c->end) return fail(c, c->p, "unexpected end of input, expected a value");
    switch (*c->p) {
    case '"': {
        const char *after = scan_string(c, c->p + 1, NULL);
        if (!after) return MP_EINVAL;
        c->p = after;
        return MP_OK;
    }
    case '{':
        c->p++;
        if (mp_json_accept(c, '}')) return MP_OK;
        for (;;) {
            skip_ws(c);
            if (c->p >= c->end || *c->p != '"') return fail(c, c->p, "expected a string key");
            const char *after = scan_string(c, c->p + 1, NULL);
            if (!after) return MP_EINVAL;
            c->p = after;
            if (!mp_json_accept(c, ':')) return fail(c, c->p, "expected ':' after key");
            if (skip_value(c, depth + 1) != MP_OK) return MP_EINVAL;
            if (mp_json_accept(c, ',')) continue;
            if (mp_json_accept(c, '}')) return MP_OK;
            return fail(c, c->p, "expected ',' or '}'");
        }
    case '[':
        c->p++;
        if (mp_json_accept(c, ']')) return MP_OK;
        for (;;) {
            if (skip_value(c, depth + 1) != MP_OK) return MP_EINVAL;
            if (mp_json_accept(c, ',')) continue;
            if (mp_json_accept(c, ']')) return MP_OK;
            return fail(c, c->p, "expected ',' or ']'");
        }
    case 't':
    case 'f': {
        int b;
        return mp_json_bool(c, &b);
    }
    case 'n':
        return mp_json_null(c);
    default:
        if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) return mp_json_number(c, NULL, NULL, NULL);
        if ((unsigned char)*c->p >= 0x80 &&
            !mp_utf8_seq_len((const unsigned char *)c->p, (const unsigned char *)c->end))
            return fail(c, c->p, "invalid UTF-8");
        return fail(c, c->p, "unexpected character, expected a value");
    }
}

int mp_json_skip(mp_json_cur *c, mp_str *raw) {
    skip_ws(c);
    const char *start = c->p;
    int rc = skip_value(c, 0);
    if (rc == MP_OK && raw) {
        raw->ptr = start;
        raw->len = (size_t)(c->p - start);
    }
    return rc;
}

int mp_json_validate(const char *s, size_t len, const char **why) {
    mp_json_cur c;
    mp_json_init(&c, s, len);
    if (mp_json_skip(&c, NULL) != MP_OK) {
        if (why) *why = c.why;
        return MP_EINVAL;
    }
    if (!mp_json_at_end(&c)) {
        if (why) *why = "unexpected content after the value";
        return MP_EINVAL;
    }
    return MP_OK;
}

int mp_json_object_begin(mp_json_cur *c) {
    if (c->depth >= MP_JSON_MAX_DEPTH) return fail(c, c->p, "nested too deeply");
    if (!mp_json_accept(c, '{')) return fail(c, c->p, "expected an object");
    c->first[c->depth++] = 1;
    return MP_OK;
}

int mp_json_object_next(mp_json_cur *c, char **scratch, mp_str *key, int *done) {
    *done = 0;
    if (c->depth <= 0) return fail(c, c->p, "not inside an object");
    int first = c->first[c->depth - 1];
    if (mp_json_accept(c, '}')) {
        c->depth--;
        *done = 1;
        return MP_OK;
    }
    if (!first && !mp_json_accept(c, ',')) return fail(c, c->p, "expected ',' or '}'");
    c->first[c->depth - 1] = 0;
    skip_ws(c);
    if (c->p >= c->end || *c->p != '"')
        return fail(c, c->p, first ? "expected a string key or '}'" : "expected a string key");
    if (mp_json_string(c, scratch, key) != MP_OK) return MP_EINVAL;
    if (!mp_json_accept(c, ':')) return fail(c, c->p, "expected ':' after key");
    skip_ws(c);
    return MP_OK;
}

int mp_json_array_begin(mp_json_cur *c) {
    if (c->depth >= MP_JSON_MAX_DEPTH) return fail(c, c->p, "nested too deeply");
    if (!mp_json_accept(c, '[')) return fail(c, c->p, "expected an array");
    c->first[c->depth++] = 1;
    return MP_OK;
}

int mp_json_array_next(mp_json_cur *c, int *done) {
    *done = 0;
    if (c->depth <= 0) return fail(c, c->p, "not inside an array");
    int first = c->first[c->depth - 1];
    if (mp_json_accept(c, ']')) {
        c->depth--;
        *done = 1;
        return MP_OK;
    }
    if (!first && !mp_json_accept(c, ',')) return fail(c, c->p, "expected ',' or ']'");
    c->first[c->depth - 1] = 0;
    skip_ws(c);
    return MP_OK;
}

int mp_parse_double(const char *s, size_t len, double *out) {
    if (len == 0) return MP_EINVAL;
    size_t off = (s[0] == '+') ? 1 : 0;
    int is_int = 0;
    const char *e = scan_number(s + off, s + len, &is_int);
    if (!e || e != s + len) return MP_EINVAL;
    return number_value(s + off, len - off, is_int, out);
}

size_t mp_json_escape(char *dst, size_t cap, const char *s, size_t len) {
    static const char hexd[] = "0123456789abcdef";
    size_t n = 0;
#define PUT(ch)                                                                                                        \
    do {                                                                                                               \
        if (n + 1 < cap) dst[n] = (char)(ch);                                                                          \
        n++;                                                                                                           \
    } while (0)
    PUT('"');
    const unsigned char *u = (const unsigned char *)s, *end = u + len;
    while (u < end) {
        unsigned ch = *u;
        if (ch == '"' || ch == '\\') {
            PUT('\\');
            PUT(ch);
            u++;
        } else if (ch < 0x20) {
            PUT('\\');
            switch (ch) {
            case '\n':
                PUT('n');
                break;
            case '\r':
                PUT('r');
                break;
            case '\t':
                PUT('t');
                break;
            case '\b':
                PUT('b');
                break;
            case '\f':
                PUT('f');
                break;
            default:
                PUT('u');
                PUT('0');
                PUT('0');
                PUT(hexd[ch >> 4]);
                PUT(hexd[ch & 15]);
            }
            u++;
        } else if (ch < 0x80) {
            PUT(ch);
            u++;
        } else {
            int k = mp_utf8_seq_len(u, end);
            if (!k) {
                PUT(0xEF); /* U+FFFD */
                PUT(0xBF);
                PUT(0xBD);
                u++;
            } else {
                for (int i = 0; i < k; i++)
                    PUT(u[i]);
                u += k;
            }
        }
    }
    PUT('"');
#undef PUT
    if (cap > 0) dst[n < cap ? n : cap - 1] = 0;
    return n;
}

/* ---- writing into an mp_buf ---- */

void mp_json_put_str(mp_buf *b, const char *s, size_t n) {
    if (!s) {
        mp_buf_add(b, "null", 4);
        return;
    }
    size_t need = mp_json_escape(NULL, 0, s, n);
    if (!mp_buf_reserve(b, need)) return;
    mp_json_escape(b->p + b->len, need + 1, s, n);
    b->len += need;
}

void mp_json_put_cstr(mp_buf *b, const char *s) { mp_json_put_str(b, s, s ? strlen(s) : 0); }

void mp_json_put_key(mp_buf *b, const char *key) {
    mp_json_put_cstr(b, key);
    mp_buf_add(b, ":", 1);
}

void mp_json_put_u64(mp_buf *b, uint64_t v) { mp_buf_printf(b, "%llu", (unsigned long long)v); }
void mp_json_put_i64(mp_buf *b, int64_t v) { mp_buf_printf(b, "%lld", (long long)v); }

void mp_json_put_f32(mp_buf *b, float v) {
    if (!isfinite(v)) {
        mp_buf_add(b, "null", 4);
        return;
    }
    char s[32];
    for (int prec = 6; prec <= 9; prec++) { /* shortest that round-trips */
        snprintf(s, sizeof s, "%.*g", prec, (double)v);
        if (strtof(s, NULL) == v) break;
    }
    mp_buf_adds(b, s);
}

void mp_json_put_f64(mp_buf *b, double v) {
    if (!isfinite(v)) {
        mp_buf_add(b, "null", 4);
        return;
    }
    char s[40];
    for (int prec = 10; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v) break;
    }
    mp_buf_adds(b, s);
}

void mp_json_put_bool(mp_buf *b, int v) { mp_buf_adds(b, v ? "true" : "false"); }

int mp_json_write_str(FILE *f, const char *s, size_t n) {
    if (!s) return fputs("null", f) < 0 ? MP_EIO : MP_OK;
    char stack[1024];
    size_t need = mp_json_escape(stack, sizeof stack, s, n);
    char *p = stack;
    if (need >= sizeof stack) {
        if (!(p = malloc(need + 1))) return MP_ENOMEM;
        mp_json_escape(p, need + 1, s, n);
    }
    int rc = fwrite(p, 1, need, f) == need ? MP_OK : MP_EIO;
    if (p != stack) free(p);
    return rc;
}
