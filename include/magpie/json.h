/* magpie/json.h: a small, fast JSON pull parser over a byte range (no allocation) and a string escaper.
 *
 * The parser is a cursor: the caller asks for the next value of the type it expects, so a record with known
 * fields is parsed in one pass without building a tree. Strings are returned as slices of the input when they
 * hold no escapes, else decoded (\uXXXX with surrogate pairs into UTF-8) into caller-provided scratch memory.
 * All text is checked to be valid UTF-8. Used by the record reader, the dataset presets and the HTTP server.
 *
 * Errors: every call returns MP_OK or MP_EINVAL; on MP_EINVAL the cursor's `why` holds a static reason
 * ("expected ',' or '}'") and `err_at` the input position it refers to. The code does not tell syntax from a
 * number out of range or nesting deeper than MP_JSON_MAX_DEPTH: only `why` does.
 *
 * Thread safety: nothing here has global state. A cursor is used by one thread at a time; different cursors (also
 * over one input, which is never written) may be used concurrently. */
#ifndef MAGPIE_JSON_H
#define MAGPIE_JSON_H

#include <stddef.h>

#include "magpie/error.h"
#include "magpie/records.h"

typedef enum {
    MP_JSON_NONE = 0, /* end of input or a byte that cannot start a value */
    MP_JSON_NULL,
    MP_JSON_BOOL,
    MP_JSON_NUMBER,
    MP_JSON_STRING,
    MP_JSON_ARRAY,
    MP_JSON_OBJECT,
} mp_json_type;

#define MP_JSON_MAX_DEPTH 128 /* nesting deeper than this is rejected */

/* Caller-owned cursor over [p, end). The input is never written. */
typedef struct mp_json_cur {
    const char *p;                          /* next unread byte */
    const char *end;                        /* one past the last byte */
    const char *err_at;                     /* where the last error was found */
    const char *why;                        /* static text of the last error, or NULL */
    int depth;                              /* open objects/arrays being iterated with *_begin / *_next */
    unsigned char first[MP_JSON_MAX_DEPTH]; /* per open container: no element read yet */
} mp_json_cur;

/* Starts a cursor over s[0..len). */
MP_EXPORT void mp_json_init(mp_json_cur *c, const char *s, size_t len);
/* Skips whitespace and returns the type of the value starting there (by its first byte; nothing is consumed). */
MP_EXPORT mp_json_type mp_json_peek(mp_json_cur *c);
/* Skips whitespace; consumes `ch` if it is next and returns 1, else returns 0 and consumes nothing. */
MP_EXPORT int mp_json_accept(mp_json_cur *c, char ch);
/* Skips whitespace; returns 1 if nothing but whitespace is left. */
MP_EXPORT int mp_json_at_end(mp_json_cur *c);

/* Reads a string. *out is a slice of the input when the string has no escapes; otherwise the decoded text is
 * written at *scratch (which must have room for at least the raw length of the string) and *scratch is advanced
 * past it. So a scratch area as large as the whole input is always enough for all strings of that input.
 * Errors: MP_EINVAL (not a string, unterminated, a bad escape or invalid UTF-8, or an escaped string with scratch
 * NULL). */
MP_EXPORT int mp_json_string(mp_json_cur *c, char **scratch, mp_str *out);
/* Reads a number; *raw gets its text (a slice of the input), *is_int whether it has no fraction or exponent.
 * `value` may be NULL; when set it gets the number as a double (MP_EINVAL if it overflows to infinity).
 * Errors: MP_EINVAL (not a number, malformed, or with `value`: out of double range or 400 characters or longer). */
MP_EXPORT int mp_json_number(mp_json_cur *c, mp_str *raw, int *is_int, double *value);
/* Reads true / false into *out. Errors: MP_EINVAL (not true or false). */
MP_EXPORT int mp_json_bool(mp_json_cur *c, int *out);
/* Reads null. Errors: MP_EINVAL (not null). */
MP_EXPORT int mp_json_null(mp_json_cur *c);
/* Validates and skips one value of any type; *raw (may be NULL) gets its text.
 * Errors: MP_EINVAL (invalid JSON, or nested deeper than MP_JSON_MAX_DEPTH). */
MP_EXPORT int mp_json_skip(mp_json_cur *c, mp_str *raw);
/* Validates that s[0..len) is exactly one JSON value (surrounding whitespace allowed). *why (may be NULL) gets
 * a static reason on failure.
 * Errors: MP_EINVAL (invalid JSON, too deep, or something after the value). */
MP_EXPORT int mp_json_validate(const char *s, size_t len, const char **why);

/* Object iteration: call mp_json_object_begin at '{', then mp_json_object_next until it sets *done. Each call
 * that returns a key leaves the cursor at the key's value, which the caller must consume (or mp_json_skip).
 * Keys are decoded like strings (scratch as in mp_json_string).
 * Errors: MP_EINVAL (begin: not at '{', or already MP_JSON_MAX_DEPTH containers open; next: not inside an object,
 * a missing ',' ':' or '}', a key that is not a valid string). */
MP_EXPORT int mp_json_object_begin(mp_json_cur *c);
MP_EXPORT int mp_json_object_next(mp_json_cur *c, char **scratch, mp_str *key, int *done);
/* Array iteration in the same shape: after mp_json_array_begin, mp_json_array_next sets *done or leaves the
 * cursor at the next element.
 * Errors: MP_EINVAL (begin: not at '[', or too deep; next: not inside an array, a missing ',' or ']'). */
MP_EXPORT int mp_json_array_begin(mp_json_cur *c);
MP_EXPORT int mp_json_array_next(mp_json_cur *c, int *done);

/* Parses a number in JSON syntax (also a leading '+') from s[0..len) exactly, no surrounding space.
 * Rejects inf/nan/hex and overflow.
 * Errors: MP_EINVAL (empty, not a JSON number, overflow to infinity, or a non-integer 400 characters or longer). */
MP_EXPORT int mp_parse_double(const char *s, size_t len, double *out);

/* Writes s[0..len) as a JSON string literal with quotes into dst (at most cap bytes, NUL-terminated if cap > 0).
 * Control characters and '"' '\\' are escaped; invalid UTF-8 bytes become U+FFFD. Returns the length the full
 * literal needs (excluding the NUL), so a caller can size its buffer by calling with cap 0 first. */
MP_EXPORT size_t mp_json_escape(char *dst, size_t cap, const char *s, size_t len);

#endif
