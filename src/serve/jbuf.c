/* src/serve/jbuf.c: see jbuf.h. */
#include "serve/jbuf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/json.h"

void jb_init(jbuf *b) { memset(b, 0, sizeof *b); }

void jb_free(jbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

char *jb_take(jbuf *b, size_t *len) {
    char *p = b->failed ? NULL : b->p;
    if (len) *len = p ? b->len : 0;
    if (!p) free(b->p);
    memset(b, 0, sizeof *b);
    return p;
}

static int grow(jbuf *b, size_t extra) {
    if (b->failed) return 0;
    if (b->len + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void jb_raw(jbuf *b, const char *s, size_t n) {
    if (!grow(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void jb_cstr(jbuf *b, const char *s) { jb_raw(b, s, strlen(s)); }

void jb_printf(jbuf *b, const char *fmt, ...) {
    char stack[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(stack, sizeof stack, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof stack) {
        jb_raw(b, stack, (size_t)n);
        return;
    }
    if (!grow(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void jb_str(jbuf *b, const char *s, size_t n) {
    if (!s) {
        jb_raw(b, "null", 4);
        return;
    }
    size_t need = mp_json_escape(NULL, 0, s, n);
    if (!grow(b, need)) return;
    mp_json_escape(b->p + b->len, need + 1, s, n);
    b->len += need;
}

void jb_cstr_json(jbuf *b, const char *s) { jb_str(b, s, s ? strlen(s) : 0); }

void jb_key(jbuf *b, const char *key) {
    jb_cstr_json(b, key);
    jb_raw(b, ":", 1);
}

void jb_u64(jbuf *b, uint64_t v) { jb_printf(b, "%llu", (unsigned long long)v); }
void jb_i64(jbuf *b, int64_t v) { jb_printf(b, "%lld", (long long)v); }

void jb_f32(jbuf *b, float v) {
    if (!isfinite(v)) {
        jb_raw(b, "null", 4);
        return;
    }
    char s[32];
    for (int prec = 6; prec <= 9; prec++) { /* shortest that round-trips */
        snprintf(s, sizeof s, "%.*g", prec, (double)v);
        if (strtof(s, NULL) == v) break;
    }
    jb_cstr(b, s);
}

void jb_f64(jbuf *b, double v) {
    if (!isfinite(v)) {
        jb_raw(b, "null", 4);
        return;
    }
    char s[40];
    for (int prec = 10; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v) break;
    }
    jb_cstr(b, s);
}

void jb_bool(jbuf *b, int v) { jb_cstr(b, v ? "true" : "false"); }
