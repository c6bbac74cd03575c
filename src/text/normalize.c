/* src/text/normalize.c: strict UTF-8, half-width and case-folding maps, normalisation, character classes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/records.h"
#include "magpie/text.h"
#include "text/text_internal.h"

int mp_utf8_decode(const char *s, size_t len, uint32_t *cp) {
    const unsigned char *p = (const unsigned char *)s;
    if (len == 0) return 0;
    unsigned c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < (size_t)n) return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

int mp_utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF) return 0;
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static int bad_utf8(const char *s, size_t off, size_t *bad_offset, mp_error *err) {
    if (bad_offset) *bad_offset = off;
    return mp_error_set(err, MP_EINVAL, "invalid UTF-8 at byte offset %zu (byte 0x%02X)", off,
                        (unsigned)(unsigned char)s[off]);
}

int mp_utf8_validate(const char *s, size_t len, size_t *bad_offset, mp_error *err) {
    size_t bad; /* one UTF-8 rule for the whole project: the record reader's */
    if (mp_utf8_valid(s, len, &bad)) return MP_OK;
    return bad_utf8(s, bad, bad_offset, err);
}

uint32_t mp_text_halfwidth(uint32_t cp) {
    if (cp >= 0xFF01 && cp <= 0xFF5E) return cp - 0xFEE0;
    if (cp == 0x3000) return 0x20;
    return cp;
}

uint32_t mp_text_fold_case(uint32_t cp) {
    if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    if (cp < 0x100) return (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) ? cp + 32 : cp;
    if (cp < 0x180) { /* Latin Extended-A: mostly upper/lower pairs */
        if (cp == 0x130) return 'i';
        if (cp == 0x178) return 0xFF;
        if ((cp <= 0x137 || (cp >= 0x14A && cp <= 0x177)) && cp != 0x131) return cp | 1;
        if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) return (cp & 1) ? cp + 1 : cp;
        return cp;
    }
    if (cp >= 0x386 && cp <= 0x3AB) { /* Greek capitals */
        if (cp == 0x386) return 0x3AC;
        if (cp >= 0x388 && cp <= 0x38A) return cp + 37;
        if (cp == 0x38C) return 0x3CC;
        if (cp == 0x38E || cp == 0x38F) return cp + 63;
        if (cp >= 0x391 && cp != 0x3A2) return cp + 32;
        return cp;
    }
    if (cp == 0x3C2) return 0x3C3;    /* final sigma folds to sigma */
    if (cp >= 0x400 && cp <= 0x52F) { /* Cyrillic */
        if (cp <= 0x40F) return cp + 0x50;
        if (cp <= 0x42F) return cp + 0x20;
        if ((cp >= 0x460 && cp <= 0x481) || (cp >= 0x48A && cp <= 0x4BF) || cp >= 0x4D0) return cp | 1;
        if (cp == 0x4C0) return 0x4CF;
        if (cp >= 0x4C1 && cp <= 0x4CE) return (cp & 1) ? cp + 1 : cp;
    }
    return cp;
}

txt_class txt_char_class(uint32_t cp) {
    if (cp < 0x80) {
        if (cp <= 0x20 || cp == 0x7F) return TXT_SPACE;
        if ((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return TXT_ALNUM;
        return TXT_PUNCT;
    }
    if (cp < 0xA0) return TXT_SPACE; /* C1 controls incl. U+0085 */
    if (cp < 0xC0) return (cp == 0xAA || cp == 0xB5 || cp == 0xBA) ? TXT_ALNUM : (cp == 0xA0 ? TXT_SPACE : TXT_PUNCT);
    if (cp == 0xD7 || cp == 0xF7) return TXT_PUNCT;
    if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
        cp == 0x205F || cp == 0x3000 || cp == 0xFEFF)
        return TXT_SPACE;
    if ((cp >= 0x200B && cp <= 0x200D) || cp == 0x2060 || (cp >= 0xFE00 && cp <= 0xFE0F) ||
        (cp >= 0xE0100 && cp <= 0xE01EF) || (cp >= 0x1F3FB && cp <= 0x1F3FF))
        return TXT_IGNORE;
    if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
        (cp >= 0x20000 && cp <= 0x2FA1F) || (cp >= 0x3040 && cp <= 0x30FF && cp != 0x30FB) ||
        (cp >= 0x31F0 && cp <= 0x31FF) || (cp >= 0xAC00 && cp <= 0xD7AF) || (cp >= 0x1100 && cp <= 0x11FF) ||
        (cp >= 0x3130 && cp <= 0x318F) || (cp >= 0xFF66 && cp <= 0xFF9F) || cp == 0x3005)
        return TXT_CJK;
    if ((cp >= 0x1F000 && cp <= 0x1FAFF) || (cp >= 0x2600 && cp <= 0x27BF) || (cp >= 0x2B00 && cp <= 0x2BFF))
        return TXT_SYMBOL;
    if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFE10 && cp <= 0xFE6F) ||
        (cp >= 0xFF00 && cp <= 0xFF65) || (cp >= 0xFFE0 && cp <= 0xFFFD) || cp == 0x30FB || cp == 0x37E ||
        cp == 0x387 || (cp >= 0x55A && cp <= 0x55F) || cp == 0x589 || (cp >= 0x5BE && cp <= 0x5C6 && cp != 0x5BF) ||
        (cp >= 0x60C && cp <= 0x60D) || cp == 0x61B || cp == 0x61F || cp == 0x6D4 || (cp >= 0x964 && cp <= 0x965) ||
        (cp >= 0xE000 && cp <= 0xF8FF))
        return TXT_PUNCT;
    return TXT_ALNUM;
}

void mp_text_norm_default(mp_text_norm_opts *opts) {
    opts->halfwidth = 1;
    opts->casefold = 1;
    opts->collapse_space = 1;
}

int mp_text_normalize(const char *s, size_t len, const mp_text_norm_opts *opts, char **out, size_t *out_len,
                      mp_error *err) {
    mp_text_norm_opts def;
    if (!opts) {
        mp_text_norm_default(&def);
        opts = &def;
    }
    *out = NULL;
    if (out_len) *out_len = 0;
    if (!s && len > 0) return mp_error_set(err, MP_EINVAL, "normalize: NULL text with length %zu", len);
    /* Output is usually no longer than the input; the buffer grows when a mapping lengthens a character. */
    size_t cap = len + 1;
    char *buf = malloc(cap);
    if (!buf) return mp_error_set(err, MP_ENOMEM, "normalize: out of memory for %zu bytes", cap);
    size_t o = 0, i = 0;
    int pending_space = 0;
    while (i < len) {
        uint32_t cp;
        int k;
        if ((unsigned char)s[i] < 0x80) {
            cp = (unsigned char)s[i];
            k = 1;
        } else {
            k = mp_utf8_decode(s + i, len - i, &cp);
            if (k == 0) {
                free(buf);
                return bad_utf8(s, i, NULL, err);
            }
        }
        i += (size_t)k;
        if (opts->halfwidth) cp = mp_text_halfwidth(cp);
        if (opts->casefold) cp = mp_text_fold_case(cp);
        if (opts->collapse_space && txt_char_class(cp) == TXT_SPACE) {
            pending_space = 1;
            continue;
        }
        char enc[4];
        int m = mp_utf8_encode(cp, enc);
        if (o + (size_t)m + 2 > cap) {
            size_t ncap = cap * 2 + (size_t)m + 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return mp_error_set(err, MP_ENOMEM, "normalize: out of memory for %zu bytes", ncap);
            }
            buf = nb, cap = ncap;
        }
        if (pending_space && o > 0) buf[o++] = ' ';
        pending_space = 0;
        memcpy(buf + o, enc, (size_t)m);
        o += (size_t)m;
    }
    buf[o] = '\0';
    *out = buf;
    if (out_len) *out_len = o;
    return MP_OK;
}

int txt_read_file(const char *path, char **data, size_t *len, mp_error *err) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return mp_error_set(err, MP_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return mp_error_set(err, MP_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return mp_error_set(err, MP_ENOMEM, "%s: out of memory for %zu bytes", path, cap * 2);
            }
            buf = nb, cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return mp_error_set(err, MP_EIO, "%s: read error", path);
    }
    *data = buf;
    *len = n;
    return MP_OK;
}
