/* src/text/unigram.c: SentencePiece unigram segmentation (Viterbi over piece log-probabilities). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/strmap.h"
#include "magpie/text.h"
#include "text/text_internal.h"

#define UNK_PENALTY 10.0f

struct mp_unigram {
    mp_strmap *vocab;      /* piece -> id (= line number) */
    float *scores;         /* [size] log-probability per id */
    unsigned char *usable; /* [size] 1 if the piece may match text (not a control piece) */
    size_t size;
    uint32_t unk_id;
    float unk_score;      /* lowest score - UNK_PENALTY */
    size_t max_piece_len; /* longest piece in bytes */
    mp_text_norm_opts norm;
    int add_prefix_space;
};

void mp_unigram_default(mp_unigram_opts *opts) {
    mp_text_norm_default(&opts->norm);
    opts->norm.casefold = 0;
    opts->unk_piece = "<unk>";
    opts->unk_id = -1;
    opts->add_prefix_space = 1;
}

void mp_unigram_free(mp_unigram *u) {
    if (!u) return;
    mp_strmap_destroy(u->vocab);
    free(u->scores);
    free(u->usable);
    free(u);
}

static int is_control_piece(const char *p, size_t n) {
    static const char *const names[] = {"<unk>", "<s>", "</s>", "<pad>"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && memcmp(names[i], p, n) == 0) return 1;
    return 0;
}

static int parse_line(mp_unigram *u, const char *line, size_t n, const char *name, size_t lineno, size_t *cap,
                      mp_error *err) {
    const char *tab = memchr(line, '\t', n);
    if (!tab) return mp_error_set(err, MP_EINVAL, "%s:%zu: expected \"piece<TAB>score\", found no tab", name, lineno);
    size_t plen = (size_t)(tab - line), slen = n - plen - 1;
    if (plen == 0) return mp_error_set(err, MP_EINVAL, "%s:%zu: empty piece", name, lineno);
    size_t bad;
    int rc = mp_utf8_validate(line, plen, &bad, err);
    if (rc != MP_OK) {
        mp_error_prefix(err, "%s:%zu", name, lineno);
        return rc;
    }
    char num[64];
    if (slen == 0 || slen >= sizeof num)
        return mp_error_set(err, MP_EINVAL, "%s:%zu: score: expected a number, got \"%.*s\"", name, lineno,
                            (int)(slen > 32 ? 32 : slen), tab + 1);
    memcpy(num, tab + 1, slen);
    num[slen] = '\0';
    char *endp;
    errno = 0;
    float score = strtof(num, &endp);
    if (endp == num || *endp != '\0' || !isfinite(score))
        return mp_error_set(err, MP_EINVAL, "%s:%zu: score: expected a finite number, got \"%s\"", name, lineno, num);
    if (mp_strmap_get(u->vocab, line, plen) != MP_STRMAP_NONE)
        return mp_error_set(err, MP_EINVAL, "%s:%zu: duplicate piece \"%.*s\"", name, lineno,
                            (int)(plen > 64 ? 64 : plen), line);
    if (u->size == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        float *ns = realloc(u->scores, ncap * sizeof *ns);
        if (ns) u->scores = ns;
        unsigned char *nu = realloc(u->usable, ncap);
        if (nu) u->usable = nu;
        if (!ns || !nu) return mp_error_set(err, MP_ENOMEM, "%s:%zu: out of memory", name, lineno);
        *cap = ncap;
    }
    rc = mp_strmap_put(u->vocab, line, plen, (uint32_t)u->size);
    if (rc != MP_OK) return mp_error_set(err, rc, "%s:%zu: cannot add piece: %s", name, lineno, mp_strerror(rc));
    u->scores[u->size] = score;
    u->usable[u->size] = !is_control_piece(line, plen);
    u->size++;
    if (plen > u->max_piece_len) u->max_piece_len = plen;
    return MP_OK;
}

int mp_unigram_load_mem(const char *data, size_t len, const char *name, const mp_unigram_opts *opts, mp_unigram **out,
                        mp_error *err) {
    mp_unigram_opts def;
    if (!opts) {
        mp_unigram_default(&def);
        opts = &def;
    }
    if (!name) name = "<memory>";
    *out = NULL;
    mp_unigram *u = calloc(1, sizeof *u);
    if (!u) return mp_error_set(err, MP_ENOMEM, "%s: out of memory", name);
    u->norm = opts->norm;
    u->add_prefix_space = opts->add_prefix_space;
    int rc = mp_strmap_create(&u->vocab, len / 12 + 16);
    if (rc != MP_OK) rc = mp_error_set(err, MP_ENOMEM, "%s: out of memory", name);
    size_t pos = 0, lineno = 0, n, cap = 0;
    const char *line;
    while (rc == MP_OK && txt_next_line(data, len, &pos, &line, &n)) {
        lineno++;
        if (lineno > UINT32_MAX - 1)
            rc = mp_error_set(err, MP_ERANGE, "%s:%zu: too many pieces", name, lineno);
        else
            rc = parse_line(u, line, n, name, lineno, &cap, err);
    }
    if (rc == MP_OK && u->size == 0) rc = mp_error_set(err, MP_EEMPTY, "%s: no pieces in the vocabulary", name);
    if (rc == MP_OK) {
        if (opts->unk_id >= 0) {
            if ((uint64_t)opts->unk_id >= u->size)
                rc = mp_error_set(err, MP_EINVAL, "%s: unk id %lld is out of range (%zu pieces)", name,
                                  (long long)opts->unk_id, u->size);
            else
                u->unk_id = (uint32_t)opts->unk_id;
        } else {
            const char *up = opts->unk_piece ? opts->unk_piece : "<unk>";
            u->unk_id = mp_strmap_get(u->vocab, up, strlen(up));
            if (u->unk_id == MP_STRMAP_NONE)
                rc = mp_error_set(err, MP_EINVAL, "%s: unknown piece \"%s\" is not in the vocabulary (set unk_id)",
                                  name, up);
        }
    }
    if (rc != MP_OK) {
        mp_unigram_free(u);
        return rc;
    }
    u->usable[u->unk_id] = 0;
    float lo = INFINITY;
    for (size_t i = 0; i < u->size; i++)
        if (u->usable[i] && u->scores[i] < lo) lo = u->scores[i];
    u->unk_score = (isfinite(lo) ? lo : 0.0f) - UNK_PENALTY;
    *out = u;
    return MP_OK;
}

int mp_unigram_load(const char *path, const mp_unigram_opts *opts, mp_unigram **out, mp_error *err) {
    char *data;
    size_t len;
    *out = NULL;
    int rc = txt_read_file(path, &data, &len, err);
    if (rc != MP_OK) return rc;
    rc = mp_unigram_load_mem(data, len, path, opts, out, err);
    free(data);
    return rc;
}

size_t mp_unigram_size(const mp_unigram *u) {
    return u->size;
}

int64_t mp_unigram_id(const mp_unigram *u, const char *piece, size_t len) {
    uint32_t id = mp_strmap_get(u->vocab, piece, len);
    return id == MP_STRMAP_NONE ? -1 : (int64_t)id;
}

const char *mp_unigram_piece(const mp_unigram *u, uint32_t id, float *score) {
    if (id >= u->size) return NULL;
    if (score) *score = u->scores[id];
    return mp_strmap_key(u->vocab, id, NULL);
}

static const char SPACE_MARK[] = "\xE2\x96\x81"; /* U+2581 */

/* Builds the string that is segmented: optional leading mark, spaces replaced by the mark. Caller frees. */
static int mark_spaces(const mp_unigram *u, const char *t, size_t tlen, char **out, size_t *out_len, mp_error *err) {
    size_t spaces = u->add_prefix_space ? 1 : 0;
    for (size_t i = 0; i < tlen; i++)
        spaces += t[i] == ' ';
    size_t cap = tlen + 3 * spaces + 1; /* each mark is 3 bytes; a replaced space gave 1 of them */
    char *m = malloc(cap);
    if (!m) return mp_error_set(err, MP_ENOMEM, "tokenize: out of memory for %zu bytes", cap);
    size_t o = 0;
    if (u->add_prefix_space) memcpy(m, SPACE_MARK, 3), o = 3;
    for (size_t i = 0; i < tlen; i++) {
        if (t[i] == ' ')
            memcpy(m + o, SPACE_MARK, 3), o += 3;
        else
            m[o++] = t[i];
    }
    m[o] = '\0';
    *out = m;
    *out_len = o;
    return MP_OK;
}

int mp_unigram_encode(const mp_unigram *u, const char *s, size_t len, uint32_t **ids, size_t *n, mp_error *err) {
    *ids = NULL;
    *n = 0;
    char *t, *m = NULL;
    size_t tlen, mlen = 0;
    int rc = mp_text_normalize(s, len, &u->norm, &t, &tlen, err);
    if (rc != MP_OK) return rc;
    if (tlen == 0) { /* nothing to segment: no pieces, not even the prefix mark */
        free(t);
        return MP_OK;
    }
    rc = mark_spaces(u, t, tlen, &m, &mlen, err);
    free(t);
    if (rc != MP_OK) return rc;
    /* best[j]: best score of a segmentation of m[0..j); from[j]: start of its last piece; piece[j]: its id
     * (UINT32_MAX = unknown character). Only code point boundaries are reachable. */
    double *best = malloc((mlen + 1) * sizeof *best);
    size_t *from = malloc((mlen + 1) * sizeof *from);
    uint32_t *piece = malloc((mlen + 1) * sizeof *piece);
    uint32_t *outv = NULL;
    if (!best || !from || !piece) {
        rc = mp_error_set(err, MP_ENOMEM, "tokenize: out of memory for a %zu-byte text", mlen);
        goto done;
    }
    for (size_t j = 0; j <= mlen; j++)
        best[j] = -INFINITY;
    best[0] = 0;
    for (size_t i = 0; i < mlen; i++) {
        if (best[i] == -INFINITY) continue;
        uint32_t cp;
        int k0 = mp_utf8_decode(m + i, mlen - i, &cp);
        if (k0 <= 0) k0 = 1; /* cannot happen: the text is valid */
        int single = 0;
        for (size_t j = i + (size_t)k0; j <= mlen && j - i <= u->max_piece_len;) {
            uint32_t id = mp_strmap_get(u->vocab, m + i, j - i);
            if (id != MP_STRMAP_NONE && u->usable[id]) {
                if (j == i + (size_t)k0) single = 1;
                double sc = best[i] + u->scores[id];
                if (sc > best[j]) best[j] = sc, from[j] = i, piece[j] = id;
            }
            if (j == mlen) break;
            int k = mp_utf8_decode(m + j, mlen - j, &cp);
            j += k > 0 ? (size_t)k : 1;
        }
        if (!single) {
            size_t j = i + (size_t)k0;
            double sc = best[i] + u->unk_score;
            if (sc > best[j]) best[j] = sc, from[j] = i, piece[j] = UINT32_MAX;
        }
    }
    /* Back-trace, counting first, merging runs of unknown characters into one unk. */
    size_t count = 0;
    for (size_t j = mlen; j > 0; j = from[j])
        if (!(piece[j] == UINT32_MAX && from[j] > 0 && piece[from[j]] == UINT32_MAX)) count++;
    outv = malloc(count * sizeof *outv);
    if (!outv) {
        rc = mp_error_set(err, MP_ENOMEM, "tokenize: out of memory for %zu ids", count);
        goto done;
    }
    size_t w = count;
    for (size_t j = mlen; j > 0; j = from[j]) {
        if (piece[j] == UINT32_MAX && from[j] > 0 && piece[from[j]] == UINT32_MAX) continue;
        outv[--w] = piece[j] == UINT32_MAX ? u->unk_id : piece[j];
    }
    *ids = outv;
    *n = count;
    outv = NULL;
done:
    free(outv);
    free(best);
    free(from);
    free(piece);
    free(m);
    return rc;
}
