/* magpie/search.h: product search over a catalog: lexical retrieval (BM25 over title, description, category and
 * brand, via magpie/textindex.h, so Chinese matches by characters and bigrams), semantic retrieval (cosine between
 * a query embedding and item embeddings of one encoder, magpie/encoder.h), fused into one relevance, then optionally
 * re-ranked for one user by a recommendation model's scores. `magpie search` and GET /v1/search both call
 * mp_live_search (magpie/live.h), which calls mp_search_rank: one ranking code for the CLI and the server.
 *
 * The lexical document of an item is built by the caller (the live recommender: title twice, brand, category,
 * description and the string values of its attributes).
 *
 * Ranking (mp_search_rank):
 *   1. candidates: the `depth` best items by BM25 (score > 0) and the `depth` best by cosine (cosine >=
 *      min_cosine), both among allowed items;
 *   2. relevance = w_lexical * bm25 / max_bm25 + (1 - w_lexical) * (cos - min_cosine) / (max_cos - min_cosine),
 *      maxima over the candidates (a retriever that found nothing, or was not run, gives its weight to the other).
 *      A normalised score blend rather than reciprocal-rank fusion: RRF treats rank 1 vs 2 alike whether the two
 *      items are nearly tied or far apart, so a user's preference could overturn a clear lexical winner or fail to
 *      break a near tie; scores normalised per query keep those gaps, on a scale the user blend can use;
 *   3. with user scores: score = (1 - w_user) * relevance + w_user * user, user = the model's scores min-max
 *      normalised over the candidates (all equal: no effect). Only relevant items are ever returned: the user's
 *      model re-orders matches, it never adds items that do not match;
 *   4. best first, ties by lower item id.
 * Each hit carries a reason naming what matched: "matches ‘running shoes’ in the title" (the longest runs of
 * query words or characters found in the best-matching field: title, brand, category, description, details) or "close in
 * meaning to ‘trainers’" for a semantic-only match. Curly quotes ‘ ’ (U+2018, U+2019) delimit quoted text.
 *
 * Thread-safety: mp_search_rank only reads the catalog; callers serialise it against changes (the textindex's
 * rule). No global state. */
#ifndef MAGPIE_SEARCH_H
#define MAGPIE_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"
#include "magpie/textindex.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What is searched; everything borrowed for the call. Item ids are 0..n_items-1 (textindex doc ids). */
typedef struct mp_search_catalog {
    uint32_t n_items;
    const mp_textindex *index; /* may cover fewer documents than n_items (the rest have no text); NULL: no lexical */
    const float *emb;          /* [n_items * dim] unit-length rows, or NULL: no semantic retrieval */
    const uint8_t *has_emb;    /* [n_items] 1 when row i is set (required with emb) */
    uint32_t dim;
    const uint8_t *allow;      /* [n_items] 1 = may be returned (available, in the filter), or NULL = all */
    /* for reasons; each array and entry may be NULL */
    const char *const *title, *const *brand, *const *category, *const *description;
    const char *const *details; /* other attributes as text ("缓震跑鞋 Size 40"), or NULL */
} mp_search_catalog;

typedef struct mp_search_params {
    size_t depth;     /* candidates per retriever (0: max(100, 4 * wanted)) */
    float w_lexical;  /* BM25's share of relevance (default 0.5) */
    float min_cosine; /* semantic candidates below this cosine are dropped (default 0.4: USE-Lite gives unrelated
                       * short texts 0.1 to 0.35, related ones 0.5 and more) */
    float w_user;     /* the user's share of the final score when user scores are given (default 0.3) */
} mp_search_params;

#define MP_SEARCH_REASON_MAX 320

typedef struct mp_search_hit {
    uint32_t item;
    float score;     /* final score (higher is better) */
    float relevance; /* fused text relevance in [0, 1] */
    float bm25;      /* raw BM25 (0: no lexical match) */
    float cosine;    /* cosine with the query embedding (NaN: not a semantic candidate) */
    float user;      /* the user's normalised model score in [0, 1] (NaN: none) */
    char reason[MP_SEARCH_REASON_MAX];
} mp_search_hit;

MP_EXPORT void mp_search_params_default(mp_search_params *p);

/* Ranks the catalog for query q[0..len) (UTF-8) and its embedding q_emb (dim floats, unit length; NULL: lexical
 * only). user_scores: [n_user_scores] a model's scores for one user (item ids beyond n_user_scores count as the
 * lowest), or NULL. Writes up to `n` hits, best first, into out (caller's array of n). *n_out = hits written. An
 * empty query or one matching nothing gives 0 hits. MP_EINVAL for invalid UTF-8 (with the byte offset), MP_ENOMEM. */
MP_EXPORT int mp_search_rank(const mp_search_catalog *c, const char *q, size_t len, const float *q_emb,
                             const float *user_scores, uint32_t n_user_scores, const mp_search_params *p, size_t n,
                             mp_search_hit *out, size_t *n_out, mp_error *err);

/* The lexical part of a reason for item `item` and query q: "matches ‘running shoes’ in the title" into buf;
 * returns 0 and writes "" when no query word or character occurs in the item's text. */
MP_EXPORT int mp_search_lexical_reason(const mp_search_catalog *c, uint32_t item, const char *q, size_t len, char *buf,
                                       size_t cap);

/* 1 if s[0..len) contains a Han, kana or hangul character (an English-only encoder such as use-lite then embeds
 * the query meaninglessly, so callers skip semantic retrieval for it). */
MP_EXPORT int mp_search_has_cjk(const char *s, size_t len);

#ifdef __cplusplus
}
#endif
#endif
