/* src/io/io_internal.h: helpers shared by the files of src/io (not part of the public API). */
#ifndef MAGPIE_IO_INTERNAL_H
#define MAGPIE_IO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "magpie/records.h"

/* Length (1..4) of the valid UTF-8 sequence starting at s, or 0 if the bytes there are not valid UTF-8
 * (overlong forms, surrogates, values above U+10FFFF, truncated sequences). Requires s < end. */
static inline int mp_utf8_seq_len(const unsigned char *s, const unsigned char *end) {
    unsigned c0 = s[0];
    if (c0 < 0x80) return 1;
    if (c0 < 0xC2) return 0;
    if (c0 < 0xE0) return (end - s >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c0 < 0xF0) {
        if (end - s < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c0 == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
        if (c0 == 0xED && s[1] >= 0xA0) return 0; /* UTF-16 surrogate */
        return 3;
    }
    if (c0 < 0xF5) {
        if (end - s < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        if (c0 == 0xF0 && s[1] < 0x90) return 0;  /* overlong */
        if (c0 == 0xF4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

/* Writes a printable, quoted, shortened copy of s[0..len) (at most ~48 bytes of it) into out (cap bytes),
 * escaping quotes, control characters and invalid UTF-8 as \xNN. Always NUL-terminates. */
void mp_io_snippet(char *out, size_t cap, const char *s, size_t len, int quote);

/* mp_csv_split, mp_parse_ts_text and MP_TS_MIN / MP_TS_MAX are public (records.h): the presets use them. */

#endif
