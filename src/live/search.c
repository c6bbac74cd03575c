/* src/live/search.c: product search ranking (include/magpie/search.h): BM25 and embedding candidates, a normalised
 * score blend, the user re-ranking and the reasons. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/ann.h"
#include "magpie/search.h"
#include "magpie/text.h"

#include "live/live_internal.h"

#define LQ "\xE2\x80\x98" /* ‘ */
#define RQ "\xE2\x80\x99" /* ’ */

void mp_search_params_default(mp_search_params *p) {
    p->depth = 0;
    p->w_lexical = 0.5f;
    p->min_cosine = 0.4f;
    p->w_user = 0.3f;
}

static int is_cjk(uint32_t cp) {
    return (cp >= 0x3040 && cp <= 0x30FF) ||  /* kana */
           (cp >= 0x3400 && cp <= 0x4DBF) ||  /* Han extension A */
           (cp >= 0x4E00 && cp <= 0x9FFF) ||  /* Han */
           (cp >= 0xAC00 && cp <= 0xD7AF) ||  /* hangul */
           (cp >= 0xF900 && cp <= 0xFAFF) ||  /* compatibility ideographs */
           (cp >= 0x20000 && cp <= 0x2FA1F); /* Han extensions B.. */
}

int mp_search_has_cjk(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        int k = mp_utf8_decode(s + i, len - i, &cp);
        if (k <= 0) {
            i++;
            continue;
        }
        if (is_cjk(cp)) return 1;
        i += (size_t)k;
    }
    return 0;
}

/* ---- reasons ---- */

static int is_unigram(uint32_t kind) { return kind == MP_TOK_WORD || kind == MP_TOK_CJK || kind == MP_TOK_SYMBOL; }

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int has_u64(const uint64_t *a, size_t n, uint64_t v) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && a[lo] == v;
}

/* Appends s[0..len) to buf (cap), cutting at a UTF-8 boundary when full. */
static void append(char *buf, size_t cap, size_t *at, const char *s, size_t len) {
    if (*at + 1 >= cap) return;
    size_t room = cap - 1 - *at;
    if (len > room) {
        len = room;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80) len--; /* do not split a character */
    }
    memcpy(buf + *at, s, len);
    *at += len;
    buf[*at] = 0;
}

/* Matches the query's words and characters against one field: writes "‘run’, ‘run’" (the maximal runs of
 * consecutive query unigrams found in the field) into buf and returns how many unigrams matched. */
static int field_runs(const mp_text_tokens *qt, const char *field, char *buf, size_t cap) {
    buf[0] = 0;
    if (!field || !*field) return 0;
    mp_text_tokens *ft = NULL;
    if (mp_text_features(field, strlen(field), NULL, &ft, NULL) != MP_OK) return 0;
    uint64_t *set = malloc((ft->n + 1) * sizeof *set);
    if (!set) {
        mp_text_tokens_free(ft);
        return 0;
    }
    size_t ns = 0;
    for (size_t k = 0; k < ft->n; k++)
        if (is_unigram(ft->toks[k].kind)) set[ns++] = ft->toks[k].hash;
    qsort(set, ns, sizeof *set, cmp_u64);
    int matched = 0;
    size_t at = 0;
    long run_first = -1, run_last = -1;
    for (size_t k = 0; k <= qt->n; k++) {
        int hit = 0;
        if (k < qt->n) {
            if (!is_unigram(qt->toks[k].kind)) continue;
            hit = has_u64(set, ns, qt->toks[k].hash);
        }
        if (hit) {
            matched++;
            if (run_first < 0) run_first = (long)k;
            run_last = (long)k;
            continue;
        }
        if (run_first >= 0) { /* a run ended: quote the query text it spans */
            const mp_text_token *a = &qt->toks[run_first], *b = &qt->toks[run_last];
            if (at) append(buf, cap, &at, ", ", 2);
            append(buf, cap, &at, LQ, strlen(LQ));
            append(buf, cap, &at, qt->buf + a->off, b->off + b->len - a->off);
            append(buf, cap, &at, RQ, strlen(RQ));
            run_first = run_last = -1;
        }
    }
    free(set);
    mp_text_tokens_free(ft);
    return matched;
}

static const char *entry(const char *const *a, uint32_t i) { return a ? a[i] : NULL; }

/* The runs of the best-matching field into buf; returns its index (0 title, 1 brand, 2 category, 3 description,
 * 4 details) or -1 when nothing matched. */
static int best_field_runs(const mp_search_catalog *c, uint32_t item, const char *q, size_t len, char *buf,
                           size_t cap) {
    buf[0] = 0;
    if (item >= c->n_items) return -1;
    mp_text_tokens *qt = NULL;
    if (mp_text_features(q, len, NULL, &qt, NULL) != MP_OK) return -1;
    const char *fields[5] = {entry(c->title, item), entry(c->brand, item), entry(c->category, item),
                             entry(c->description, item), entry(c->details, item)};
    int best = -1, best_n = 0;
    for (int f = 0; f < 5; f++) {
        int m = field_runs(qt, fields[f], buf, cap);
        if (m > best_n) {
            best_n = m;
            best = f;
        }
    }
    if (best >= 0) field_runs(qt, fields[best], buf, cap);
    else buf[0] = 0;
    mp_text_tokens_free(qt);
    return best;
}

int live_search_runs(const mp_search_catalog *c, uint32_t item, const char *q, size_t len, char *buf, size_t cap) {
    if (cap == 0) return 0;
    return best_field_runs(c, item, q, len, buf, cap) >= 0;
}

int mp_search_lexical_reason(const mp_search_catalog *c, uint32_t item, const char *q, size_t len, char *buf,
                             size_t cap) {
    if (cap == 0) return 0;
    static const char *const names[] = {"the title", "the brand", "the category", "the description", "the details"};
    char runs[MP_SEARCH_REASON_MAX];
    int f = best_field_runs(c, item, q, len, runs, sizeof runs);
    buf[0] = 0;
    if (f < 0) return 0;
    snprintf(buf, cap, "matches %s in %s", runs, names[f]);
    return 1;
}

/* "close in meaning to ‘query’" (the query cut to 80 bytes). */
static void semantic_reason(const char *q, size_t len, char *buf, size_t cap) {
    size_t at = 0;
    buf[0] = 0;
    while (len > 0 && (q[0] == ' ' || q[0] == '\t')) q++, len--;
    char quoted[128];
    size_t qa = 0;
    quoted[0] = 0;
    append(quoted, 84, &qa, q, len);
    append(buf, cap, &at, "close in meaning to " LQ, strlen("close in meaning to " LQ));
    append(buf, cap, &at, quoted, qa);
    append(buf, cap, &at, RQ, strlen(RQ));
}

/* ---- ranking ---- */

typedef struct cand {
    uint32_t item;
    float bm25, cos, user, rel, score;
} cand;

static int cmp_cand_item(const void *a, const void *b) {
    const cand *x = a, *y = b;
    return (x->item > y->item) - (x->item < y->item);
}

static int cmp_cand_score(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

static int blank(const char *q, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (q[i] != ' ' && q[i] != '\t' && q[i] != '\n' && q[i] != '\r') return 0;
    return 1;
}

int mp_search_rank(const mp_search_catalog *c, const char *q, size_t len, const float *q_emb,
                   const float *user_scores, uint32_t n_user_scores, const mp_search_params *p, size_t n,
                   mp_search_hit *out, size_t *n_out, mp_error *err) {
    *n_out = 0;
    mp_search_params P;
    if (p) P = *p;
    else mp_search_params_default(&P);
    if (!c || n == 0 || c->n_items == 0) return MP_OK;
    if (!q) q = "", len = 0;
    int rc = mp_utf8_validate(q, len, NULL, err);
    if (rc) {
        mp_error_prefix(err, "search query");
        return rc;
    }
    if (blank(q, len)) return MP_OK;
    size_t depth = P.depth ? P.depth : (4 * n > 100 ? 4 * n : 100);
    if (depth > c->n_items) depth = c->n_items;

    uint32_t nd = c->index ? mp_textindex_n_docs(c->index) : 0;
    size_t mask_n = nd > c->n_items ? nd : c->n_items;
    uint8_t *mask = malloc(mask_n + 1);
    cand *cs = malloc((2 * depth + 1) * sizeof *cs);
    uint32_t *ids = malloc((depth + 1) * sizeof *ids);
    float *sc = malloc((depth + 1) * sizeof *sc);
    if (!mask || !cs || !ids || !sc) {
        rc = mp_error_set(err, MP_ENOMEM, "search: out of memory for %zu candidates", depth);
        goto out;
    }
    size_t nc = 0;
    /* lexical candidates */
    if (nd > 0) {
        for (size_t i = 0; i < mask_n; i++) mask[i] = i < c->n_items && (!c->allow || c->allow[i]);
        size_t got = 0;
        if ((rc = mp_textindex_bm25_topk(c->index, q, len, depth, mask, ids, sc, &got, err))) goto out;
        for (size_t k = 0; k < got; k++)
            if (ids[k] < c->n_items && sc[k] > 0)
                cs[nc++] = (cand){.item = ids[k], .bm25 = sc[k], .cos = NAN, .user = NAN};
    }
    /* semantic candidates */
    if (c->emb && c->has_emb && q_emb && c->dim > 0) {
        size_t n_allowed = 0;
        for (uint32_t i = 0; i < c->n_items; i++) {
            mask[i] = c->has_emb[i] && (!c->allow || c->allow[i]);
            n_allowed += mask[i];
        }
        size_t got = 0;
        if (n_allowed > 0 &&
            (rc = mp_ann_exact(c->emb, c->n_items, c->dim, MP_ANN_IP, q_emb, depth, mask, ids, sc, &got, err)))
            goto out;
        for (size_t k = 0; k < got; k++)
            if (sc[k] >= P.min_cosine) cs[nc++] = (cand){.item = ids[k], .bm25 = 0, .cos = sc[k], .user = NAN};
    }
    if (nc == 0) goto out;
    /* merge the two lists (an item in both keeps both scores) */
    qsort(cs, nc, sizeof *cs, cmp_cand_item);
    size_t m = 0;
    for (size_t k = 0; k < nc; k++) {
        if (m > 0 && cs[m - 1].item == cs[k].item) {
            if (cs[k].bm25 > cs[m - 1].bm25) cs[m - 1].bm25 = cs[k].bm25;
            if (!isnan(cs[k].cos)) cs[m - 1].cos = cs[k].cos;
            continue;
        }
        cs[m++] = cs[k];
    }
    nc = m;
    /* relevance: normalised blend */
    float max_bm = 0, max_cos = -INFINITY;
    for (size_t k = 0; k < nc; k++) {
        if (cs[k].bm25 > max_bm) max_bm = cs[k].bm25;
        if (!isnan(cs[k].cos) && cs[k].cos > max_cos) max_cos = cs[k].cos;
    }
    int have_sem = max_cos > -INFINITY, have_lex = max_bm > 0;
    float wl = have_lex && have_sem ? P.w_lexical : have_lex ? 1.0f : 0.0f;
    for (size_t k = 0; k < nc; k++) {
        float lex = have_lex ? cs[k].bm25 / max_bm : 0;
        float sem = 0;
        if (have_sem && !isnan(cs[k].cos)) {
            float span = max_cos - P.min_cosine;
            sem = span > 1e-6f ? (cs[k].cos - P.min_cosine) / span : 1.0f;
            if (sem < 0) sem = 0;
        }
        cs[k].rel = wl * lex + (1 - wl) * sem;
        cs[k].score = cs[k].rel;
    }
    /* the user's re-ranking */
    if (user_scores && P.w_user > 0) {
        float lo = INFINITY, hi = -INFINITY;
        for (size_t k = 0; k < nc; k++) {
            if (cs[k].item >= n_user_scores) continue;
            float u = user_scores[cs[k].item];
            if (!isfinite(u)) continue;
            if (u < lo) lo = u;
            if (u > hi) hi = u;
        }
        if (hi > lo) {
            for (size_t k = 0; k < nc; k++) {
                float u = cs[k].item < n_user_scores ? user_scores[cs[k].item] : NAN;
                cs[k].user = isfinite(u) ? (u - lo) / (hi - lo) : 0.0f;
                cs[k].score = (1 - P.w_user) * cs[k].rel + P.w_user * cs[k].user;
            }
        }
    }
    qsort(cs, nc, sizeof *cs, cmp_cand_score);
    size_t take = nc < n ? nc : n;
    for (size_t k = 0; k < take; k++) {
        mp_search_hit *h = &out[k];
        h->item = cs[k].item;
        h->score = cs[k].score;
        h->relevance = cs[k].rel;
        h->bm25 = cs[k].bm25;
        h->cosine = cs[k].cos;
        h->user = cs[k].user;
        h->reason[0] = 0;
        if (!(h->bm25 > 0 && mp_search_lexical_reason(c, h->item, q, len, h->reason, sizeof h->reason))) {
            if (!isnan(h->cosine)) semantic_reason(q, len, h->reason, sizeof h->reason);
            else snprintf(h->reason, sizeof h->reason, "matches your search");
        }
    }
    *n_out = take;
out:
    free(mask);
    free(cs);
    free(ids);
    free(sc);
    return rc;
}
