/* magpie/error.h: error codes and error messages shared by every module.
 *
 * Every fallible call returns an int: MP_OK (0) on success, a negative MP_E* code on failure. Calls that can
 * say more take an `mp_error *err` (may be NULL) and fill it with a message a user can act on, for example
 *   "events.jsonl:1042: field `ts`: expected a number or RFC 3339 time, got \"yesterday\"".
 * The library never prints and never exits. */
#ifndef MAGPIE_ERROR_H
#define MAGPIE_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MP_EXPORT __attribute__((visibility("default")))
#define MP_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define MP_EXPORT
#define MP_PRINTF(fmt, args)
#endif

/* X(name, value, text): one table for codes, names and texts. */
#define MP_ERRNO_MAP(X)                                                                                               \
    X(OK, 0, "success")                                                                                               \
    X(ENOMEM, -1, "out of memory")                                                                                    \
    X(EINVAL, -2, "invalid argument")                                                                                 \
    X(EIO, -3, "input/output error")                                                                                  \
    X(EBADREC, -4, "bad record")                                                                                      \
    X(ENOTFOUND, -5, "not found")                                                                                     \
    X(ECORRUPT, -6, "corrupt or foreign file")                                                                        \
    X(ESTORE, -7, "storage error")                                                                                    \
    X(EUNSUPPORTED, -8, "not supported")                                                                              \
    X(ERANGE, -9, "value out of range")                                                                               \
    X(EEMPTY, -10, "no data")                                                                                         \
    X(EVERSION, -11, "version mismatch")                                                                              \
    X(EINTERRUPTED, -12, "interrupted")                                                                               \
    X(ECONFLICT, -13, "conflicts with what was already recorded")                                                     \
    X(EEXPIRED, -14, "no longer held (expired or evicted)")                                                           \
    X(ENOTMEMBER, -15, "not part of the record it refers to")

typedef enum {
#define MP_ERR_ENUM_(name, value, text) MP_##name = value,
    MP_ERRNO_MAP(MP_ERR_ENUM_)
#undef MP_ERR_ENUM_
} mp_errno;

/* Static text for a code ("bad record"); never NULL. */
MP_EXPORT const char *mp_strerror(int code);
/* Static name for a code ("MP_EBADREC"); never NULL. */
MP_EXPORT const char *mp_err_name(int code);

#define MP_ERROR_MSG_MAX 1024

/* Caller-owned; no allocation. `msg` is always NUL-terminated after any mp_error_* call. */
typedef struct mp_error {
    int code;                   /* last code set (MP_OK when clear) */
    char msg[MP_ERROR_MSG_MAX]; /* human-readable, actionable message */
    char field[64];             /* the input field the error is about ("ts"), or "" (set by the record parser, so
                                 * a caller can name it without reading msg) */
} mp_error;

/* Clears `err` (no-op on NULL). */
MP_EXPORT void mp_error_clear(mp_error *err);
/* Sets code and printf-formatted message and clears `field`; returns `code` so callers can
 * `return mp_error_set(...)`. `err` may be NULL (the code is still returned). */
MP_EXPORT int mp_error_set(mp_error *err, int code, const char *fmt, ...) MP_PRINTF(3, 4);
/* Prepends "prefix: " to the current message (for adding file or context); no-op on NULL. It returns nothing on
 * purpose: `return mp_error_prefix(err, ...)` once returned MP_OK for a caller that passed no mp_error, turning a
 * failure into success; keep the callee's code and return that. */
MP_EXPORT void mp_error_prefix(mp_error *err, const char *fmt, ...) MP_PRINTF(2, 3);

#ifdef __cplusplus
}
#endif
#endif
