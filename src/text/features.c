/* src/text/features.c: the feature tokenizer (CJK characters and bigrams, words, subword n-grams, word bigrams). */
#include <stdlib.h>
#include <string.h>

#include "magpie/strmap.h"
#include "magpie/text.h"
#include "text/text_internal.h"

void mp_text_feat_default(mp_text_feat_opts *opts) {
    mp_text_norm_default(&opts->norm);
    opts->cjk_unigrams = 1;
    opts->cjk_bigrams = 1;
    opts->word_bigrams = 0;
    opts->minn = 0;
    opts->maxn = 0;
}

void mp_text_tokens_free(mp_text_tokens *toks) {
    if (!toks) return;
    free(toks->buf);
    free(toks->toks);
    free(toks);
}

/* Makes room for `add` more bytes (plus a NUL) at the end of buf. */
static int reserve_bytes(mp_text_tokens *r, size_t add, mp_error *err) {
    if (r->buf_len + add >= UINT32_MAX)
        return mp_error_set(err, MP_ERANGE, "tokenize: token buffer would exceed 4 GiB");
    if (r->buf_len + add + 1 <= r->buf_cap) return MP_OK;
    size_t ncap = r->buf_cap * 2 + add + 1;
    char *nb = realloc(r->buf, ncap);
    if (!nb) return mp_error_set(err, MP_ENOMEM, "tokenize: out of memory for %zu bytes", ncap);
    r->buf = nb;
    r->buf_cap = ncap;
    return MP_OK;
}

static int push_token(mp_text_tokens *r, size_t off, size_t len, mp_text_tok_kind kind, mp_error *err) {
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 64;
        mp_text_token *nt = realloc(r->toks, ncap * sizeof *nt);
        if (!nt) return mp_error_set(err, MP_ENOMEM, "tokenize: out of memory for %zu tokens", ncap);
        r->toks = nt;
        r->cap = ncap;
    }
    uint64_t h = mp_hash_bytes(r->buf + off, len);
    if (kind == MP_TOK_SUBWORD || kind == MP_TOK_CJK_BIGRAM || kind == MP_TOK_WORD_BIGRAM)
        h ^= (uint64_t)kind * 0x9E3779B97F4A7C15ull;
    r->toks[r->n++] = (mp_text_token){.off = (uint32_t)off, .len = (uint32_t)len, .kind = (uint32_t)kind, .hash = h};
    return MP_OK;
}

/* Appends bytes (which must not point into r->buf) as a synthesised token. */
static int push_synth(mp_text_tokens *r, const char *p, size_t len, mp_text_tok_kind kind, mp_error *err) {
    int rc = reserve_bytes(r, len, err);
    if (rc != MP_OK) return rc;
    size_t off = r->buf_len;
    memcpy(r->buf + off, p, len);
    r->buf_len += len;
    r->buf[r->buf_len] = '\0';
    return push_token(r, off, len, kind, err);
}

/* Scratch space reused across words: "<word>" bytes and its code point boundaries. */
typedef struct scratch {
    char *bytes;
    size_t bytes_cap;
    uint32_t *bounds; /* bounds[i] = byte offset of code point i; bounds[nc] = length */
    size_t bounds_cap;
} scratch;

static int emit_subwords(mp_text_tokens *r, size_t woff, size_t wlen, const mp_text_feat_opts *o, scratch *sc,
                         mp_error *err) {
    if (wlen + 3 > sc->bytes_cap || wlen + 3 > sc->bounds_cap) {
        size_t ncap = wlen + 3;
        char *nb = realloc(sc->bytes, ncap);
        if (nb) sc->bytes = nb;
        uint32_t *nbo = realloc(sc->bounds, ncap * sizeof *nbo);
        if (nbo) sc->bounds = nbo;
        if (!nb || !nbo) return mp_error_set(err, MP_ENOMEM, "tokenize: out of memory for a %zu-byte word", wlen);
        sc->bytes_cap = sc->bounds_cap = ncap;
    }
    sc->bytes[0] = '<';
    memcpy(sc->bytes + 1, r->buf + woff, wlen);
    sc->bytes[wlen + 1] = '>';
    size_t total = wlen + 2, nc = 0;
    for (size_t i = 0; i < total;) {
        sc->bounds[nc++] = (uint32_t)i;
        uint32_t cp;
        int k = mp_utf8_decode(sc->bytes + i, total - i, &cp);
        i += k > 0 ? (size_t)k : 1; /* the normalised text is valid UTF-8 */
    }
    sc->bounds[nc] = (uint32_t)total;
    for (size_t i = 0; i < nc; i++) {
        for (size_t n = (size_t)o->minn; n <= (size_t)o->maxn && i + n <= nc; n++) {
            if (n == 1 && (i == 0 || i == nc - 1)) continue; /* a lone boundary marker */
            int rc = push_synth(r, sc->bytes + sc->bounds[i], sc->bounds[i + n] - sc->bounds[i], MP_TOK_SUBWORD, err);
            if (rc != MP_OK) return rc;
        }
    }
    return MP_OK;
}

/* The previous unigram unit, for word bigrams. */
typedef struct unit {
    size_t off, len;
    int valid, cjk;
} unit;

static int emit_word_bigram(mp_text_tokens *r, unit *prev, size_t off, size_t len, int cjk, const mp_text_feat_opts *o,
                            mp_error *err) {
    int rc = MP_OK;
    if (o->word_bigrams && prev->valid && !(cjk && prev->cjk && o->cjk_bigrams)) {
        rc = reserve_bytes(r, prev->len + 1 + len, err);
        if (rc != MP_OK) return rc;
        size_t at = r->buf_len;
        memcpy(r->buf + at, r->buf + prev->off, prev->len);
        r->buf[at + prev->len] = ' ';
        memcpy(r->buf + at + prev->len + 1, r->buf + off, len);
        r->buf_len += prev->len + 1 + len;
        r->buf[r->buf_len] = '\0';
        rc = push_token(r, at, prev->len + 1 + len, MP_TOK_WORD_BIGRAM, err);
    }
    *prev = (unit){.off = off, .len = len, .valid = 1, .cjk = cjk};
    return rc;
}

static int end_word(mp_text_tokens *r, size_t *wstart, size_t end, unit *prev, const mp_text_feat_opts *o, scratch *sc,
                    mp_error *err) {
    if (*wstart == SIZE_MAX) return MP_OK;
    size_t off = *wstart, len = end - off;
    *wstart = SIZE_MAX;
    int rc = push_token(r, off, len, MP_TOK_WORD, err);
    if (rc == MP_OK && o->maxn > 0) rc = emit_subwords(r, off, len, o, sc, err);
    if (rc == MP_OK) rc = emit_word_bigram(r, prev, off, len, 0, o, err);
    return rc;
}

static int tokenize(mp_text_tokens *r, const mp_text_feat_opts *o, mp_error *err) {
    scratch sc = {0};
    size_t wstart = SIZE_MAX;   /* start of the current word, or SIZE_MAX */
    size_t prev_cjk = SIZE_MAX; /* offset of the previous CJK character when adjacent, or SIZE_MAX */
    unit prev = {0};
    int rc = MP_OK;
    const size_t end = r->norm_len;
    for (size_t i = 0; i < end && rc == MP_OK;) {
        uint32_t cp;
        int k = mp_utf8_decode(r->buf + i, end - i, &cp);
        if (k <= 0) k = 1, cp = 0xFFFD; /* cannot happen: the normalised text is valid */
        txt_class c = txt_char_class(cp);
        if (c == TXT_ALNUM) {
            if (wstart == SIZE_MAX) wstart = i;
            prev_cjk = SIZE_MAX;
        } else {
            rc = end_word(r, &wstart, i, &prev, o, &sc, err);
            if (rc == MP_OK && c == TXT_CJK) {
                if (o->cjk_unigrams) rc = push_token(r, i, (size_t)k, MP_TOK_CJK, err);
                if (rc == MP_OK && o->cjk_bigrams && prev_cjk != SIZE_MAX)
                    rc = push_token(r, prev_cjk, i + (size_t)k - prev_cjk, MP_TOK_CJK_BIGRAM, err);
                if (rc == MP_OK && o->cjk_unigrams) rc = emit_word_bigram(r, &prev, i, (size_t)k, 1, o, err);
                prev_cjk = i;
            } else if (rc == MP_OK && c == TXT_SYMBOL) {
                rc = push_token(r, i, (size_t)k, MP_TOK_SYMBOL, err);
                if (rc == MP_OK) rc = emit_word_bigram(r, &prev, i, (size_t)k, 0, o, err);
                prev_cjk = SIZE_MAX;
            } else {
                prev_cjk = SIZE_MAX;
            }
        }
        i += (size_t)k;
    }
    if (rc == MP_OK) rc = end_word(r, &wstart, end, &prev, o, &sc, err);
    free(sc.bytes);
    free(sc.bounds);
    return rc;
}

int mp_text_features(const char *s, size_t len, const mp_text_feat_opts *opts, mp_text_tokens **out, mp_error *err) {
    mp_text_feat_opts def;
    if (!opts) {
        mp_text_feat_default(&def);
        opts = &def;
    }
    *out = NULL;
    if (opts->maxn > 0 && (opts->minn < 1 || opts->minn > opts->maxn))
        return mp_error_set(err, MP_EINVAL, "tokenize: subword lengths minn=%d maxn=%d: need 1 <= minn <= maxn",
                            opts->minn, opts->maxn);
    if (len >= UINT32_MAX) return mp_error_set(err, MP_ERANGE, "tokenize: text of %zu bytes exceeds 4 GiB", len);
    mp_text_tokens *r = calloc(1, sizeof *r);
    if (!r) return mp_error_set(err, MP_ENOMEM, "tokenize: out of memory");
    int rc = mp_text_normalize(s, len, &opts->norm, &r->buf, &r->norm_len, err);
    if (rc != MP_OK) {
        free(r);
        return rc;
    }
    r->buf_len = r->norm_len;
    r->buf_cap = r->norm_len + 1;
    rc = tokenize(r, opts, err);
    if (rc != MP_OK) {
        mp_text_tokens_free(r);
        return rc;
    }
    *out = r;
    return MP_OK;
}
