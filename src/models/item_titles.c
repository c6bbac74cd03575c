#include "models/item_titles.h"

#include <stdlib.h>
#include <string.h>

#include "magpie/buf.h"

int mp_item_titles_copy(const char *const *titles, uint32_t n, char ***out) {
    *out = NULL;
    if (!titles || n == 0) return MP_OK;
    char **t = calloc(n, sizeof *t);
    if (!t) return MP_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        if (!titles[i] || !titles[i][0]) continue;
        size_t len = strnlen(titles[i], MP_ITEM_TITLE_MAX);
        if (!(t[i] = malloc(len + 1))) {
            mp_item_titles_free(t, n);
            return MP_ENOMEM;
        }
        memcpy(t[i], titles[i], len);
        t[i][len] = '\0';
    }
    *out = t;
    return MP_OK;
}

void mp_item_titles_free(char **titles, uint32_t n) {
    if (!titles) return;
    for (uint32_t i = 0; i < n; i++) free(titles[i]);
    free(titles);
}

int mp_item_titles_grow(char ***titles, uint32_t old_n, uint32_t new_n) {
    if (!*titles || new_n <= old_n) return MP_OK;
    size_t cap = old_n; /* the array has exactly old_n slots */
    if (mp_grow((void **)titles, &cap, new_n, sizeof **titles) != MP_OK) return MP_ENOMEM;
    memset(*titles + old_n, 0, (size_t)(new_n - old_n) * sizeof **titles);
    return MP_OK;
}

void mp_item_titles_save(mp_mf_writer *w, char *const *titles, uint32_t n) {
    mp_mf_put_u32(w, titles ? 1u : 0u);
    if (titles)
        for (uint32_t i = 0; i < n; i++) mp_mf_put_str(w, titles[i]);
}

int mp_item_titles_load(mp_mf_reader *r, char ***out, uint32_t n, const char *model, mp_error *err) {
    *out = NULL;
    uint32_t has;
    int rc = mp_mf_get_u32(r, &has, err);
    if (rc) return rc;
    if (has > 1) return mp_error_set(err, MP_ECORRUPT, "%s payload: bad title flag %u", model, has);
    if (!has) return MP_OK;
    if ((uint64_t)n * 4 > mp_mf_remaining(r)) /* every title costs at least its 4-byte length */
        return mp_error_set(err, MP_ECORRUPT, "%s payload: truncated item titles", model);
    char **t = calloc(n ? n : 1, sizeof *t);
    if (!t) return mp_error_set(err, MP_ENOMEM, "%s: out of memory loading %u titles", model, n);
    for (uint32_t i = 0; i < n; i++)
        if ((rc = mp_mf_get_str(r, &t[i], MP_ITEM_TITLE_MAX, err))) {
            mp_item_titles_free(t, n);
            return rc;
        }
    *out = t;
    return MP_OK;
}
