/* magpie/buf.h: the one growable byte buffer (text, JSON, binary images) and the one typed-array growth helper.
 *
 * Errors are sticky (the design of redis' sds and of the server's response buffer): appends never fail one by
 * one; after the first allocation failure every append is a no-op and mp_buf_ok() is 0, so a writer appends
 * freely and checks once at the end (mp_buf_take, mp_buf_ok). JSON appends (strings, keys, numbers) are in json.h
 * (mp_json_put_*), since JSON belongs to io.
 *
 * Ownership: an mp_buf owns `p`; mp_buf_free releases it, mp_buf_take hands it to the caller. A zeroed mp_buf is a
 * valid empty buffer. Thread safety: an mp_buf is used by one thread at a time; the functions keep no other
 * state. */
#ifndef MAGPIE_BUF_H
#define MAGPIE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "magpie/error.h"

typedef struct mp_buf {
    char *p;    /* owned; NUL-terminated while ok and non-empty (NULL before the first append) */
    size_t len; /* bytes written, without the NUL */
    size_t cap; /* bytes allocated */
    int failed; /* an allocation failed: the contents are incomplete, appends are no-ops */
} mp_buf;

/* Sets *b to an empty buffer (no allocation). */
MP_EXPORT void mp_buf_init(mp_buf *b);
/* Frees the contents; *b is empty again. NULL is a no-op. */
MP_EXPORT void mp_buf_free(mp_buf *b);
/* 1 while no allocation has failed. */
static inline int mp_buf_ok(const mp_buf *b) { return !b->failed; }
/* Empties the buffer, keeping its memory and its sticky error. */
static inline void mp_buf_clear(mp_buf *b) {
    b->len = 0;
    if (b->p) b->p[0] = 0;
}
/* Hands the NUL-terminated text to the caller (free() it) and resets *b to empty. *len (may be NULL) gets its
 * length. Returns NULL (and frees the contents) if an append failed; an empty buffer gives "" (allocated), or
 * NULL only when that allocation fails. */
MP_EXPORT char *mp_buf_take(mp_buf *b, size_t *len);
/* Makes room for `extra` more bytes and a NUL; 1 if there is room, 0 after an allocation failure (sticky).
 * Use it to write into p + len directly, then add to len. */
MP_EXPORT int mp_buf_reserve(mp_buf *b, size_t extra);

/* Appends s[0..n) (any bytes). */
MP_EXPORT void mp_buf_add(mp_buf *b, const void *s, size_t n);
/* Appends a NUL-terminated string. */
MP_EXPORT void mp_buf_adds(mp_buf *b, const char *s);
/* Appends one byte. */
MP_EXPORT void mp_buf_addc(mp_buf *b, char c);
/* Appends printf-formatted text (any length; formats of 256 bytes and more are formatted twice).
 * An encoding error of vsnprintf marks the buffer failed. */
MP_EXPORT void mp_buf_printf(mp_buf *b, const char *fmt, ...) MP_PRINTF(2, 3);
MP_EXPORT void mp_buf_vprintf(mp_buf *b, const char *fmt, va_list ap);

/* Appends everything left to read from f (which stays open). MP_OK, MP_EIO (a read error: ferror(f)) or MP_ENOMEM
 * (the buffer failed, now or before). */
MP_EXPORT int mp_buf_add_file(mp_buf *b, FILE *f);

/* Typed-array growth: makes room for at least `need` elements of `elem` bytes in *p (capacity *cap elements),
 * doubling from 16, with realloc; *p and *cap are unchanged on failure. Returns MP_OK (also when there is room
 * already) or MP_ENOMEM (also for a size that overflows). Use as
 *   if (mp_grow((void **)&a, &a_cap, n + 1, sizeof *a)) return MP_ENOMEM;
 * The caller owns *p (free it). */
MP_EXPORT int mp_grow(void **p, size_t *cap, size_t need, size_t elem);
/* The same for two parallel arrays of one capacity (ids and weights): both get room for `need` elements. On
 * MP_ENOMEM *cap is unchanged and both arrays still hold their first *cap elements (one may have grown). */
MP_EXPORT int mp_grow2(void **a, size_t elem_a, void **b, size_t elem_b, size_t *cap, size_t need);

#endif
