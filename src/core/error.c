#include "magpie/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *mp_strerror(int code) {
    switch (code) {
#define MP_ERR_TEXT_(name, value, text)                                                                                \
    case value:                                                                                                        \
        return text;
        MP_ERRNO_MAP(MP_ERR_TEXT_)
#undef MP_ERR_TEXT_
    }
    return "unknown error";
}

const char *mp_err_name(int code) {
    switch (code) {
#define MP_ERR_NAME_(name, value, text)                                                                                \
    case value:                                                                                                        \
        return "MP_" #name;
        MP_ERRNO_MAP(MP_ERR_NAME_)
#undef MP_ERR_NAME_
    }
    return "MP_EUNKNOWN";
}

void mp_error_clear(mp_error *err) {
    if (!err) return;
    err->code = MP_OK;
    err->msg[0] = '\0';
    err->field[0] = '\0';
}

int mp_error_set(mp_error *err, int code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    err->field[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void mp_error_prefix(mp_error *err, const char *fmt, ...) {
    if (!err) return;
    char prefix[MP_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[MP_ERROR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
}
