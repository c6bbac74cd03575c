/* src/serve/jbuf.h: a growable buffer for writing JSON responses (and other text). Errors are sticky: after an
 * allocation failure every append is a no-op and jb_ok() is 0, so a handler checks once at the end. */
#ifndef MAGPIE_SERVE_JBUF_H
#define MAGPIE_SERVE_JBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jbuf {
    char *p;      /* owned; NUL-terminated while ok */
    size_t len, cap;
    int failed;   /* an allocation failed */
} jbuf;

void jb_init(jbuf *b);
void jb_free(jbuf *b);
/* Hands the text over to the caller (who frees it); the buffer is reset. NULL if it failed. */
char *jb_take(jbuf *b, size_t *len);
static inline int jb_ok(const jbuf *b) { return !b->failed; }

void jb_raw(jbuf *b, const char *s, size_t n);
void jb_cstr(jbuf *b, const char *s); /* raw text */
void jb_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal of s[0..n) (escaped; invalid UTF-8 becomes U+FFFD); NULL s writes null. */
void jb_str(jbuf *b, const char *s, size_t n);
void jb_cstr_json(jbuf *b, const char *s); /* jb_str of a NUL-terminated string (NULL -> null) */
/* `"key":` */
void jb_key(jbuf *b, const char *key);
void jb_u64(jbuf *b, uint64_t v);
void jb_i64(jbuf *b, int64_t v);
/* A finite number in the shortest form that reads back as the same float / double; non-finite -> null. */
void jb_f32(jbuf *b, float v);
void jb_f64(jbuf *b, double v);
void jb_bool(jbuf *b, int v);

#endif
