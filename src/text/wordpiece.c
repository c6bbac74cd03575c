/* src/text/wordpiece.c: BERT WordPiece (greedy longest-match-first with a continuation prefix). */
#include <stdlib.h>
#include <string.h>

#include "magpie/strmap.h"
#include "magpie/text.h"
#include "text/text_internal.h"

struct mp_wordpiece {
    mp_strmap *vocab;  /* token -> id (= line number) */
    uint32_t unk_id;   /* id of the unk token */
    char *cont_prefix; /* owned copy, e.g. "##" */
    size_t cont_len;
    int max_chars;
    int lowercase;
};

void mp_wordpiece_default(mp_wordpiece_opts *opts) {
    opts->unk_token = "[UNK]";
    opts->cont_prefix = "##";
    opts->max_chars_per_word = 100;
    opts->lowercase = 1;
}

void mp_wordpiece_free(mp_wordpiece *wp) {
    if (!wp) return;
    mp_strmap_destroy(wp->vocab);
    free(wp->cont_prefix);
    free(wp);
}

int mp_wordpiece_load_mem(const char *data, size_t len, const char *name, const mp_wordpiece_opts *opts,
                          mp_wordpiece **out, mp_error *err) {
    mp_wordpiece_opts def;
    if (!opts) {
        mp_wordpiece_default(&def);
        opts = &def;
    }
    if (!name) name = "<memory>";
    *out = NULL;
    if (!opts->unk_token || !opts->cont_prefix || opts->max_chars_per_word < 1)
        return mp_error_set(err, MP_EINVAL, "%s: wordpiece options: need unk_token, cont_prefix, max_chars >= 1", name);
    mp_wordpiece *wp = calloc(1, sizeof *wp);
    if (!wp) return mp_error_set(err, MP_ENOMEM, "%s: out of memory", name);
    wp->cont_len = strlen(opts->cont_prefix);
    wp->cont_prefix = malloc(wp->cont_len + 1);
    wp->max_chars = opts->max_chars_per_word;
    wp->lowercase = opts->lowercase;
    int rc = wp->cont_prefix ? mp_strmap_create(&wp->vocab, len / 8 + 16) : MP_ENOMEM;
    if (rc != MP_OK) {
        mp_wordpiece_free(wp);
        return mp_error_set(err, MP_ENOMEM, "%s: out of memory", name);
    }
    memcpy(wp->cont_prefix, opts->cont_prefix, wp->cont_len + 1);
    size_t pos = 0, lineno = 0, n;
    const char *line;
    while (txt_next_line(data, len, &pos, &line, &n)) {
        lineno++;
        if (lineno > UINT32_MAX - 1) {
            rc = mp_error_set(err, MP_ERANGE, "%s:%zu: too many tokens", name, lineno);
            break;
        }
        size_t bad;
        if (n == 0) {
            rc = mp_error_set(err, MP_EINVAL, "%s:%zu: empty token (one token per line, id = line number - 1)", name,
                              lineno);
            break;
        }
        if ((rc = mp_utf8_validate(line, n, &bad, err)) != MP_OK) {
            mp_error_prefix(err, "%s:%zu", name, lineno);
            break;
        }
        if (mp_strmap_get(wp->vocab, line, n) != MP_STRMAP_NONE) {
            rc = mp_error_set(err, MP_EINVAL, "%s:%zu: duplicate token \"%.*s\"", name, lineno, (int)(n > 64 ? 64 : n),
                              line);
            break;
        }
        rc = mp_strmap_put(wp->vocab, line, n, (uint32_t)(lineno - 1));
        if (rc != MP_OK) {
            rc = mp_error_set(err, rc, "%s:%zu: cannot add token: %s", name, lineno, mp_strerror(rc));
            break;
        }
    }
    if (rc == MP_OK) {
        wp->unk_id = mp_strmap_get(wp->vocab, opts->unk_token, strlen(opts->unk_token));
        if (wp->unk_id == MP_STRMAP_NONE)
            rc = mp_error_set(err, MP_EINVAL, "%s: unknown-word token \"%s\" is not in the vocabulary", name,
                              opts->unk_token);
    }
    if (rc != MP_OK) {
        mp_wordpiece_free(wp);
        return rc;
    }
    *out = wp;
    return MP_OK;
}

int mp_wordpiece_load(const char *path, const mp_wordpiece_opts *opts, mp_wordpiece **out, mp_error *err) {
    char *data;
    size_t len;
    *out = NULL;
    int rc = txt_read_file(path, &data, &len, err);
    if (rc != MP_OK) return rc;
    rc = mp_wordpiece_load_mem(data, len, path, opts, out, err);
    free(data);
    return rc;
}

size_t mp_wordpiece_size(const mp_wordpiece *wp) {
    return mp_strmap_size(wp->vocab);
}

int64_t mp_wordpiece_id(const mp_wordpiece *wp, const char *token, size_t len) {
    uint32_t id = mp_strmap_get(wp->vocab, token, len);
    return id == MP_STRMAP_NONE ? -1 : (int64_t)id;
}

const char *mp_wordpiece_token(const mp_wordpiece *wp, uint32_t id) {
    return mp_strmap_key(wp->vocab, id, NULL);
}

typedef struct idvec {
    uint32_t *v;
    size_t n, cap;
} idvec;

static int idvec_push(idvec *a, uint32_t id, mp_error *err) {
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 32;
        uint32_t *nv = realloc(a->v, ncap * sizeof *nv);
        if (!nv) return mp_error_set(err, MP_ENOMEM, "tokenize: out of memory for %zu ids", ncap);
        a->v = nv;
        a->cap = ncap;
    }
    a->v[a->n++] = id;
    return MP_OK;
}

/* Greedy longest-match-first over one word w[0..len) (valid UTF-8). scratch holds cont_len + 4*max_chars bytes. */
static int encode_word(const mp_wordpiece *wp, const char *w, size_t len, char *scratch, idvec *ids, mp_error *err) {
    size_t nchars = 0;
    for (size_t i = 0; i < len; i++)
        nchars += ((unsigned char)w[i] & 0xC0) != 0x80;
    if (nchars > (size_t)wp->max_chars) return idvec_push(ids, wp->unk_id, err);
    size_t first = ids->n, start = 0;
    memcpy(scratch, wp->cont_prefix, wp->cont_len);
    while (start < len) {
        size_t end = len;
        uint32_t found = MP_STRMAP_NONE;
        while (end > start) {
            if (start == 0) {
                found = mp_strmap_get(wp->vocab, w, end);
            } else {
                memcpy(scratch + wp->cont_len, w + start, end - start);
                found = mp_strmap_get(wp->vocab, scratch, wp->cont_len + end - start);
            }
            if (found != MP_STRMAP_NONE) break;
            end--; /* back one code point */
            while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80)
                end--;
        }
        if (found == MP_STRMAP_NONE) {
            ids->n = first; /* the whole word is unknown */
            return idvec_push(ids, wp->unk_id, err);
        }
        int rc = idvec_push(ids, found, err);
        if (rc != MP_OK) return rc;
        start = end;
    }
    return MP_OK;
}

int mp_wordpiece_encode(const mp_wordpiece *wp, const char *s, size_t len, uint32_t **ids, size_t *n, mp_error *err) {
    *ids = NULL;
    *n = 0;
    mp_text_norm_opts no = {.halfwidth = 1, .casefold = wp->lowercase, .collapse_space = 1};
    char *t;
    size_t tlen;
    int rc = mp_text_normalize(s, len, &no, &t, &tlen, err);
    if (rc != MP_OK) return rc;
    char *scratch = malloc(wp->cont_len + 4 * (size_t)wp->max_chars + 4);
    if (!scratch) {
        free(t);
        return mp_error_set(err, MP_ENOMEM, "tokenize: out of memory");
    }
    idvec out = {0};
    size_t wstart = SIZE_MAX;
    for (size_t i = 0; i <= tlen && rc == MP_OK;) {
        uint32_t cp = 0;
        int k = 1;
        txt_class c = TXT_SPACE;
        if (i < tlen) {
            k = mp_utf8_decode(t + i, tlen - i, &cp);
            if (k <= 0) k = 1; /* cannot happen: normalised text is valid */
            c = txt_char_class(cp);
        }
        if (c == TXT_ALNUM) {
            if (wstart == SIZE_MAX) wstart = i;
        } else {
            if (wstart != SIZE_MAX) rc = encode_word(wp, t + wstart, i - wstart, scratch, &out, err);
            wstart = SIZE_MAX;
            /* punctuation, CJK characters and symbols are words of their own */
            if (rc == MP_OK && (c == TXT_PUNCT || c == TXT_CJK || c == TXT_SYMBOL))
                rc = encode_word(wp, t + i, (size_t)k, scratch, &out, err);
        }
        i += (size_t)k;
    }
    free(scratch);
    free(t);
    if (rc != MP_OK) {
        free(out.v);
        return rc;
    }
    if (out.n == 0) {
        free(out.v);
        out.v = NULL;
    }
    *ids = out.v;
    *n = out.n;
    return MP_OK;
}
