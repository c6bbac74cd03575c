/* The tokenizer of @energetic-ai/embeddings 0.2.0 (lib/tokenizer.ts), reproduced exactly, quirks included, so that
 * the model sees the same ids as under TensorFlow.js:
 *   - NFKC; when the result is not empty, "▁" + the text with every U+0020 replaced by "▁";
 *   - for each code point position, the pieces (vocabulary entries from index 6 on) that start there; when none
 *     does, an unknown piece (id 0, score 0) of one code point;
 *   - a Viterbi pass in order of end position, then start position, keeping a candidate when the best score so
 *     far is exactly 0 (JS treats 0 as "unset") or the candidate's score is >= it (ties go to the later start);
 *   - backtracking from the end by the JavaScript length (UTF-16 units) of each chosen piece's vocabulary string;
 *   - consecutive unknown ids merged into one. */
#include <stdlib.h>
#include <string.h>

#include "magpie/text.h"
#include "text/use_internal.h"

#define SEP_UTF8 "\xE2\x96\x81" /* U+2581 */

int use_tokenize_valid(const mp_use *m, const char *s, size_t len, uint32_t **ids, size_t *n, mp_error *err) {
    *ids = NULL;
    *n = 0;
    char *norm;
    size_t nlen;
    int rc = mp_text_nfkc(s, len, &norm, &nlen, err);
    if (rc != MP_OK) return rc;
    if (nlen == 0) {
        free(norm);
        return MP_OK;
    }
    /* t = "▁" + norm with ' ' -> "▁"; off[i] = byte offset of code point i in t. */
    size_t spaces = 0;
    for (size_t i = 0; i < nlen; i++)
        spaces += norm[i] == ' ';
    size_t tlen = 3 + nlen + 2 * spaces;
    char *t = malloc(tlen + 1);
    size_t *off = malloc((tlen + 2) * sizeof *off);
    double *best = NULL;
    uint32_t *words = NULL, *res = NULL;
    if (!t || !off) goto nomem;
    memcpy(t, SEP_UTF8, 3);
    size_t w = 3;
    for (size_t i = 0; i < nlen; i++) {
        if (norm[i] == ' ') {
            memcpy(t + w, SEP_UTF8, 3);
            w += 3;
        } else {
            t[w++] = norm[i];
        }
    }
    t[w] = 0;
    free(norm);
    norm = NULL;
    size_t ncp = 0;
    for (size_t i = 0; i < tlen;) {
        uint32_t cp;
        int k = mp_utf8_decode(t + i, tlen - i, &cp);
        if (k <= 0) k = 1; /* cannot happen: ICU wrote valid UTF-8 */
        off[ncp++] = i;
        i += (size_t)k;
    }
    off[ncp] = tlen;

    best = calloc(ncp + 1, sizeof *best);
    words = calloc(ncp + 1, sizeof *words);
    res = malloc((ncp + 1) * sizeof *res);
    if (!best || !words || !res) goto nomem;
    const size_t maxp = m->max_piece_cps;
    /* Pieces ending at `end` are visited by ascending start; a start where no piece begins contributes the
     * unknown piece [start, start + 1) instead, so first find which starts have a piece. */
    unsigned char *has_piece = calloc(ncp + 1, 1);
    if (!has_piece) goto nomem;
    for (size_t start = 0; start < ncp; start++) {
        for (size_t l = 1; l <= maxp && start + l <= ncp; l++) {
            if (mp_strmap_get(m->pieces, t + off[start], off[start + l] - off[start]) != MP_STRMAP_NONE) {
                has_piece[start] = 1;
                break;
            }
        }
    }
    for (size_t end = 1; end <= ncp; end++) {
        size_t lo = end > maxp ? end - maxp : 0;
        for (size_t start = lo; start < end; start++) {
            double score;
            uint32_t id;
            if (has_piece[start]) {
                uint32_t key = mp_strmap_get(m->pieces, t + off[start], off[end] - off[start]);
                if (key == MP_STRMAP_NONE) continue;
                score = m->key_score[key];
                id = m->key_vocab_id[key];
            } else {
                if (end != start + 1) continue;
                score = 0.0;
                id = USE_UNK_ID;
            }
            double cand = score + best[start];
            if (best[end] == 0.0 || cand >= best[end]) {
                best[end] = cand;
                words[end] = id;
            }
        }
    }
    free(has_piece);
    /* Backtrack by the JS string length of the chosen vocabulary entry. */
    size_t nr = 0;
    long iter = (long)ncp;
    while (iter > 0) {
        uint32_t id = words[iter];
        res[nr++] = id;
        uint32_t step = m->vocab_utf16[id];
        iter -= step ? (long)step : 1; /* an empty string (only in a foreign vocabulary) would loop forever */
    }
    /* Merge runs of unknowns (in backtracking order, as the JS does), then reverse. */
    size_t nm = 0;
    int prev_unk = 0;
    for (size_t i = 0; i < nr; i++) {
        uint32_t id = res[i];
        if (!(prev_unk && id == USE_UNK_ID)) res[nm++] = id;
        prev_unk = id == USE_UNK_ID;
    }
    for (size_t i = 0; i < nm / 2; i++) {
        uint32_t x = res[i];
        res[i] = res[nm - 1 - i];
        res[nm - 1 - i] = x;
    }
    free(t);
    free(off);
    free(best);
    free(words);
    if (nm == 0) {
        free(res);
        res = NULL;
    }
    *ids = res;
    *n = nm;
    return MP_OK;
nomem:
    free(norm);
    free(t);
    free(off);
    free(best);
    free(words);
    free(res);
    return mp_error_set(err, MP_ENOMEM, "USE tokenizer: out of memory for a text of %zu bytes", len);
}

int mp_use_tokenize(const mp_use *m, const char *s, size_t len, uint32_t **ids, size_t *n, mp_error *err) {
    *ids = NULL;
    *n = 0;
    size_t bad;
    int rc = mp_utf8_validate(s, len, &bad, err);
    if (rc != MP_OK) return rc;
    return use_tokenize_valid(m, s, len, ids, n, err);
}
