/* Unicode NFKC through ICU (unorm2_getNFKCInstance): UTF-8 -> UTF-16 -> NFKC -> UTF-8. ASCII text is its own
 * NFKC form and is copied without going through ICU. */
#include <stdlib.h>
#include <string.h>

#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utypes.h>

#include "magpie/text.h"

static int icu_fail(mp_error *err, const char *what, UErrorCode st) {
    mp_error_set(err, MP_EIO, "NFKC normalisation: ICU %s failed: %s", what, u_errorName(st));
    return MP_EIO;
}

int mp_text_nfkc(const char *s, size_t len, char **out, size_t *out_len, mp_error *err) {
    *out = NULL;
    if (out_len) *out_len = 0;
    if (!s && len) {
        mp_error_set(err, MP_EINVAL, "NFKC normalisation: NULL text of length %zu", len);
        return MP_EINVAL;
    }
    int rc = mp_utf8_validate(s, len, NULL, err);
    if (rc != MP_OK) return rc;
    size_t i = 0;
    while (i < len && (unsigned char)s[i] < 0x80)
        i++;
    if (i == len) { /* pure ASCII: already NFKC */
        char *r = malloc(len + 1);
        if (!r) goto nomem;
        if (len) memcpy(r, s, len);
        r[len] = 0;
        *out = r;
        if (out_len) *out_len = len;
        return MP_OK;
    }
    if (len > (size_t)INT32_MAX / 4) {
        mp_error_set(err, MP_ERANGE, "NFKC normalisation: text of %zu bytes is too long for ICU", len);
        return MP_ERANGE;
    }
    UErrorCode st = U_ZERO_ERROR;
    const UNormalizer2 *nfkc = unorm2_getNFKCInstance(&st);
    if (U_FAILURE(st)) return icu_fail(err, "unorm2_getNFKCInstance", st);

    /* UTF-8 -> UTF-16: never more UTF-16 units than UTF-8 bytes. */
    int32_t cap16 = (int32_t)len + 1, n16 = 0;
    UChar *src = malloc((size_t)cap16 * sizeof *src);
    if (!src) goto nomem;
    u_strFromUTF8(src, cap16, &n16, s, (int32_t)len, &st);
    if (U_FAILURE(st)) {
        free(src);
        return icu_fail(err, "u_strFromUTF8", st);
    }
    /* NFKC can expand (U+FDFA becomes 18 units): preflight, then normalise into a buffer of the right size. */
    int32_t need = unorm2_normalize(nfkc, src, n16, NULL, 0, &st);
    if (st != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(st)) {
        free(src);
        return icu_fail(err, "unorm2_normalize", st);
    }
    st = U_ZERO_ERROR;
    UChar *norm = malloc(((size_t)need + 1) * sizeof *norm);
    if (!norm) {
        free(src);
        goto nomem;
    }
    int32_t nn = unorm2_normalize(nfkc, src, n16, norm, need + 1, &st);
    free(src);
    if (U_FAILURE(st)) {
        free(norm);
        return icu_fail(err, "unorm2_normalize", st);
    }
    /* UTF-16 -> UTF-8: at most 3 bytes per unit. */
    size_t cap8 = (size_t)nn * 3 + 1;
    char *r = malloc(cap8);
    if (!r) {
        free(norm);
        goto nomem;
    }
    int32_t n8 = 0;
    u_strToUTF8(r, (int32_t)cap8, &n8, norm, nn, &st);
    free(norm);
    if (U_FAILURE(st)) {
        free(r);
        return icu_fail(err, "u_strToUTF8", st);
    }
    r[n8] = 0;
    *out = r;
    if (out_len) *out_len = (size_t)n8;
    return MP_OK;
nomem:
    mp_error_set(err, MP_ENOMEM, "NFKC normalisation: out of memory for a text of %zu bytes", len);
    return MP_ENOMEM;
}
