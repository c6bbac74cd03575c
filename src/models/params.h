/* src/models/params.h: the generic parameter layer every model uses (params.c). A model declares its parameters in a
 * static {NULL}-terminated mp_param_info table with the MP_P_* macros below, points its ops at it, and calls
 * mp_params_put / mp_params_get from its save and load; defaults, parsing, checks, --help and tune ranges come from
 * the table. `params` below is the model's params struct, the one the descriptors' offsets refer to. */
#ifndef MAGPIE_MODELS_PARAMS_H
#define MAGPIE_MODELS_PARAMS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "magpie/model.h"
#include "magpie/modelfile.h"

/* Table entries. The trailing arguments add fields: a tuning range (MP_TUNED_*), .lo_open = 1, .alias = "reg". */
#define MP_P_BOOL(nm, st, fld, def, hlp, ...)                                                                         \
    {.name = (nm), .default_value = (def), .help = (hlp), .type = MP_PARAM_BOOL, .offset = offsetof(st, fld),          \
     __VA_ARGS__}
#define MP_P_INT(nm, st, fld, def, lo_, hi_, hlp, ...)                                                                 \
    {.name = (nm), .default_value = (def), .help = (hlp), .type = MP_PARAM_INT, .offset = offsetof(st, fld),           \
     .imin = (lo_), .imax = (hi_), __VA_ARGS__}
#define MP_P_UINT(nm, st, fld, def, lo_, hi_, hlp, ...)                                                                \
    {.name = (nm), .default_value = (def), .help = (hlp), .type = MP_PARAM_UINT, .offset = offsetof(st, fld),          \
     .imin = (lo_), .imax = (hi_), __VA_ARGS__}
#define MP_P_U64(nm, st, fld, def, lo_, hi_, hlp, ...)                                                                 \
    {.name = (nm), .default_value = (def), .help = (hlp), .type = MP_PARAM_U64, .offset = offsetof(st, fld),           \
     .imin = (lo_), .imax = (hi_), __VA_ARGS__}
#define MP_P_REAL(nm, st, fld, def, lo_, hi_, hlp, ...)                                                                \
    {.name = (nm), .default_value = (def), .help = (hlp), .type = MP_PARAM_DOUBLE, .offset = offsetof(st, fld),        \
     .lo = (lo_), .hi = (hi_), __VA_ARGS__}
/* A double that also takes "auto" (value 0, flag 1; a number sets the flag to 0). */
#define MP_P_REAL_AUTO(nm, st, fld, flag, def, lo_, hi_, hlp, ...)                                                     \
    {.name = (nm), .default_value = (def), .help = (hlp), .type = MP_PARAM_DOUBLE, .offset = offsetof(st, fld),        \
     .lo = (lo_), .hi = (hi_), .allow_auto = 1, .auto_offset = offsetof(st, flag), __VA_ARGS__}
/* A uint32 that also takes "auto" (value 0, flag 1; a number sets the flag to 0). */
#define MP_P_UINT_AUTO(nm, st, fld, flag, def, lo_, hi_, hlp, ...)                                                     \
    {.name = (nm), .default_value = (def), .help = (hlp), .type = MP_PARAM_UINT, .offset = offsetof(st, fld),          \
     .imin = (lo_), .imax = (hi_), .allow_auto = 1, .auto_offset = offsetof(st, flag), __VA_ARGS__}
/* `names` must be an array (its length is taken with sizeof). */
#define MP_P_CHOICE(nm, st, fld, def, names, hlp, ...)                                                                 \
    {.name = (nm), .default_value = (def), .help = (hlp), .type = MP_PARAM_CHOICE, .offset = offsetof(st, fld),        \
     .choices = (names), .n_choices = (uint32_t)(sizeof(names) / sizeof((names)[0])), __VA_ARGS__}

#define MP_TUNED_LINEAR(a, b) .tune = MP_PARAM_TUNE_LINEAR, .tune_lo = (a), .tune_hi = (b)
#define MP_TUNED_LOG(a, b) .tune = MP_PARAM_TUNE_LOG, .tune_lo = (a), .tune_hi = (b)
#define MP_TUNED_CHOICES(s) .tune = MP_PARAM_TUNE_CHOICES, .tune_choices = (s)

/* Descriptor of `key` (its name or alias) in table[n], or NULL. */
const mp_param_info *mp_params_find(const mp_param_info *table, size_t n, const char *key);
/* Parses `value` into the field: MP_EINVAL "expected ..., got \"value\"" (the caller names the parameter). */
int mp_param_set(const mp_param_info *p, void *params, const char *value, mp_error *err);
/* Every field to its default. MP_EINVAL (naming the parameter) only for a table whose default does not parse. */
int mp_params_defaults(const mp_param_info *table, size_t n, void *params, mp_error *err);
/* Every field within its bounds: MP_EINVAL "parameter NAME: VALUE is out of range (expected ...)". */
int mp_params_check(const mp_param_info *table, size_t n, const void *params, mp_error *err);
/* The field's value as text that mp_param_set reads back to the same value ("auto", "cg", "0.002"). */
const char *mp_param_format(const mp_param_info *p, const void *params, char *buf, size_t cap);

/* Model-file encoding of table[0..n) in table order (see mp_param_type for each type's encoding; an "auto" double is
 * followed by its flag as u32). get checks each field's bounds: MP_ECORRUPT "WHAT payload: parameter NAME ...". A
 * model may save its table in slices where an older file layout put a parameter later in the payload. */
void mp_params_put(const mp_param_info *table, size_t n, const void *params, mp_mf_writer *w);
int mp_params_get(const mp_param_info *table, size_t n, void *params, mp_mf_reader *r, const char *what,
                  mp_error *err);
/* The same for a file written before its model's parameters took "auto": no flag follows any value, and every
 * auto flag is set to 0 (the file holds the number that was used). */
int mp_params_get_flagless(const mp_param_info *table, size_t n, void *params, mp_mf_reader *r, const char *what,
                           mp_error *err);

#endif
