/* src/core/buf.c: see magpie/buf.h. */
#include "magpie/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_FIRST_CAP 256

void mp_buf_init(mp_buf *b) { memset(b, 0, sizeof *b); }

void mp_buf_free(mp_buf *b) {
    if (!b) return;
    free(b->p);
    memset(b, 0, sizeof *b);
}

char *mp_buf_take(mp_buf *b, size_t *len) {
    if (!b->failed && !b->p) mp_buf_reserve(b, 0); /* an empty buffer still gives "" */
    char *p = b->failed ? NULL : b->p;
    if (p) p[b->len] = 0;
    if (len) *len = p ? b->len : 0;
    if (!p) free(b->p);
    memset(b, 0, sizeof *b);
    return p;
}

int mp_buf_reserve(mp_buf *b, size_t extra) {
    if (b->failed) return 0;
    if (extra > SIZE_MAX / 2 - b->len - 1) {
        b->failed = 1;
        return 0;
    }
    if (b->len + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : BUF_FIRST_CAP;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return 0;
    }
    if (!b->p) p[0] = 0;
    b->p = p;
    b->cap = cap;
    return 1;
}

void mp_buf_add(mp_buf *b, const void *s, size_t n) {
    if (!mp_buf_reserve(b, n)) return;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void mp_buf_adds(mp_buf *b, const char *s) { mp_buf_add(b, s, strlen(s)); }

void mp_buf_addc(mp_buf *b, char c) { mp_buf_add(b, &c, 1); }

void mp_buf_vprintf(mp_buf *b, const char *fmt, va_list ap) {
    if (b->failed) return;
    char stack[256];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(stack, sizeof stack, fmt, ap);
    if (n < 0) {
        b->failed = 1;
    } else if ((size_t)n < sizeof stack) {
        mp_buf_add(b, stack, (size_t)n);
    } else if (mp_buf_reserve(b, (size_t)n)) {
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

void mp_buf_printf(mp_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    mp_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

/* The capacity mp_grow moves to for `need` (doubling from 16), or 0 if it overflows elem-sized elements. */
static size_t grown_cap(size_t cap, size_t need, size_t elem) {
    size_t c = cap ? cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2) return 0;
        c *= 2;
    }
    return elem && c > SIZE_MAX / elem ? 0 : c;
}

int mp_buf_add_file(mp_buf *b, FILE *f) {
    while (mp_buf_reserve(b, (size_t)1 << 16)) {
        size_t got = fread(b->p + b->len, 1, b->cap - b->len - 1, f);
        b->len += got;
        b->p[b->len] = 0;
        if (got == 0) break;
    }
    if (b->failed) return MP_ENOMEM;
    return ferror(f) ? MP_EIO : MP_OK;
}

int mp_grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap && *p) return MP_OK;
    size_t c = grown_cap(*cap, need, elem);
    if (!c) return MP_ENOMEM;
    void *q = realloc(*p, c * elem);
    if (!q) return MP_ENOMEM;
    *p = q;
    *cap = c;
    return MP_OK;
}

int mp_grow2(void **a, size_t elem_a, void **b, size_t elem_b, size_t *cap, size_t need) {
    if (need <= *cap && *a && *b) return MP_OK;
    size_t c = grown_cap(*cap, need, elem_a > elem_b ? elem_a : elem_b);
    if (!c) return MP_ENOMEM;
    void *qa = realloc(*a, c * elem_a);
    if (!qa) return MP_ENOMEM;
    *a = qa;
    void *qb = realloc(*b, c * elem_b);
    if (!qb) return MP_ENOMEM;
    *b = qb;
    *cap = c;
    return MP_OK;
}
