/* magpie/textindex.h: lexical retrieval over a catalog: TF-IDF vectors and BM25 ranking.
 *
 * Documents (item titles, descriptions, review text) and queries go through the feature tokenizer of
 * magpie/text.h (so Chinese is indexed by characters and character bigrams, other scripts by words and optionally
 * subword n-grams; opts->feat chooses). Terms are the tokens' 64-bit hashes. Document ids are dense 0..n_docs-1
 * in the order documents were added (callers use item ids; an absent/empty document is allowed and matches
 * nothing). The index can grow (mp_textindex_add) after it was built: new items are searchable at once; IDF and
 * the average document length are recomputed lazily at the next query.
 *
 * Thread-safety: queries are safe concurrently with each other; add needs exclusive access. */
#ifndef MAGPIE_TEXTINDEX_H
#define MAGPIE_TEXTINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"
#include "magpie/modelfile.h"
#include "magpie/text.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_textindex_opts {
    mp_text_feat_opts feat; /* tokenizer (default: mp_text_feat_default, i.e. words, CJK chars + bigrams) */
    float k1, b;            /* BM25 parameters (default 1.2, 0.75) */
    int sublinear_tf;       /* TF-IDF: 1 + log(tf) instead of tf (default 1) */
} mp_textindex_opts;

typedef struct mp_textindex mp_textindex;

MP_EXPORT void mp_textindex_default(mp_textindex_opts *opts);
/* An empty index (opts NULL = defaults). Owned by the caller: mp_textindex_free. */
MP_EXPORT int mp_textindex_create(const mp_textindex_opts *opts, mp_textindex **out, mp_error *err);
MP_EXPORT void mp_textindex_free(mp_textindex *ix);
/* Builds from n documents (docs[i] may be NULL = empty; lens NULL = NUL-terminated). Invalid UTF-8 is MP_EINVAL
 * naming the document index and byte offset. */
MP_EXPORT int mp_textindex_build(const char *const *docs, const size_t *lens, size_t n, const mp_textindex_opts *opts,
                                 mp_textindex **out, mp_error *err);
/* Sets document `doc` (ids beyond the current count extend the index with empty documents; an existing
 * document is replaced). */
MP_EXPORT int mp_textindex_set(mp_textindex *ix, uint32_t doc, const char *text, size_t len, mp_error *err);
MP_EXPORT uint32_t mp_textindex_n_docs(const mp_textindex *ix);

/* BM25 score of every document for the query: scores[n_docs] (0 for documents sharing no term). */
MP_EXPORT int mp_textindex_bm25_all(const mp_textindex *ix, const char *q, size_t len, float *scores, mp_error *err);
/* Top-k documents by BM25 (allow: optional [n_docs] mask, 1 = allowed; only documents with a score > 0),
 * best first, ties by lower id. */
MP_EXPORT int mp_textindex_bm25_topk(const mp_textindex *ix, const char *q, size_t len, size_t k, const uint8_t *allow,
                                     uint32_t *out_docs, float *out_scores, size_t *n_out, mp_error *err);
/* Cosine similarity of the query's TF-IDF vector with every document's: scores[n_docs]. */
MP_EXPORT int mp_textindex_tfidf_all(const mp_textindex *ix, const char *q, size_t len, float *scores, mp_error *err);
/* Cosine of the TF-IDF vectors of two indexed documents (0 if either is empty). */
MP_EXPORT float mp_textindex_tfidf_doc_cosine(const mp_textindex *ix, uint32_t a, uint32_t b);
/* For every document d: scores[d] = sum over `docs` (weights w, NULL = 1) of w * cosine(d, docs[i]): a user
 * profile of items they interacted with, matched against the catalog. */
MP_EXPORT int mp_textindex_tfidf_profile_all(const mp_textindex *ix, const uint32_t *docs, const float *w, size_t n,
                                             float *scores, mp_error *err);

/* Serialises into / restores from a model file section (so a model can carry its index). */
MP_EXPORT int mp_textindex_save(const mp_textindex *ix, mp_mf_writer *w, mp_error *err);
MP_EXPORT int mp_textindex_load(mp_mf_reader *r, mp_textindex **out, mp_error *err);

#ifdef __cplusplus
}
#endif
#endif
