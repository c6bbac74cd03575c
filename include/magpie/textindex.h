/* magpie/textindex.h: lexical retrieval over a catalog: TF-IDF vectors and BM25 ranking.
 *
 * Documents (item titles, descriptions, review text) and queries go through the feature tokenizer of
 * magpie/text.h (so Chinese is indexed by characters and character bigrams, other scripts by words and optionally
 * subword n-grams; opts->feat chooses). Terms are the tokens' 64-bit hashes. Document ids are dense 0..n_docs-1
 * in the order documents were added (callers use item ids, below 2^31; an absent/empty document is allowed and
 * matches nothing). The index can grow (mp_textindex_set) after it was built: new or replaced items are
 * searchable at once.
 *
 * Scoring. N = number of non-empty documents, df(t) = documents containing term t, tf = occurrences of t in the
 * document, dl = tokens in the document, avgdl = mean dl over the non-empty documents.
 *   BM25:   sum over the query's tokens t (a repeated token counts again) of
 *           idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)),  idf(t) = ln(1 + (N - df + 0.5) / (df +
 * 0.5)) (Lucene's idf; the classic Robertson tf part with the (k1 + 1) factor). TF-IDF: weight(t) = w(tf) * (ln((1 + N)
 * / (1 + df)) + 1) (smoothed idf, as scikit-learn), w(tf) = 1 + ln(tf) with sublinear_tf, else tf; cosine of the
 * L2-normalised vectors. Query tokens that no document holds are ignored (as a fitted vocabulary would). Memory: an
 * inverted index (term -> postings (doc, tf), sorted by doc) and each document's (term, tf) list, about 16 bytes per
 * distinct term of each document plus the term table; queries walk the postings of the query's terms only (plus one
 * O(n_docs) pass over the score array).
 *
 * Thread-safety: queries (every const function) are safe concurrently with each other; mp_textindex_set needs
 * exclusive access. BM25 statistics are kept up to date by set itself; the TF-IDF document norms (which depend on
 * every idf) are recomputed once, under an internal mutex, by the first TF-IDF call after a change. */
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
/* An empty index (opts NULL = defaults). Owned by the caller: mp_textindex_free.
 * Errors: MP_EINVAL (k1 < 0 or not a number, b outside 0..1, bad subword lengths), MP_ENOMEM (also: no mutex). */
MP_EXPORT int mp_textindex_create(const mp_textindex_opts *opts, mp_textindex **out, mp_error *err);
MP_EXPORT void mp_textindex_free(mp_textindex *ix);
/* Builds from n documents (docs[i] may be NULL = empty; lens NULL = NUL-terminated). Invalid UTF-8 is MP_EINVAL
 * naming the document index and byte offset.
 * Errors: MP_EINVAL (invalid UTF-8, docs NULL with n > 0, bad options as for create), MP_ERANGE (n >= 2^31, a
 * document of 4 GiB or more, or 2^32 - 1 terms or more), MP_ENOMEM. */
MP_EXPORT int mp_textindex_build(const char *const *docs, const size_t *lens, size_t n, const mp_textindex_opts *opts,
                                 mp_textindex **out, mp_error *err);
/* Sets document `doc` (ids beyond the current count extend the index with empty documents; an existing
 * document is replaced; text NULL or empty empties it). MP_EINVAL for invalid UTF-8 naming the document and byte
 * offset (the index is unchanged then), MP_ERANGE for doc >= 2^31, MP_ENOMEM.
 * Errors: MP_EINVAL (invalid UTF-8), MP_ERANGE (doc >= 2^31, a text of 4 GiB or more, the term table full),
 * MP_ENOMEM. */
MP_EXPORT int mp_textindex_set(mp_textindex *ix, uint32_t doc, const char *text, size_t len, mp_error *err);
MP_EXPORT uint32_t mp_textindex_n_docs(const mp_textindex *ix);

/* BM25 score of every document for the query: scores[n_docs] (0 for documents sharing no term). An empty query
 * scores 0 everywhere. MP_EINVAL for invalid UTF-8 in the query.
 * Errors (all query calls below too): MP_EINVAL (invalid UTF-8 in the query), MP_ERANGE (a query of 4 GiB or
 * more), MP_ENOMEM. */
MP_EXPORT int mp_textindex_bm25_all(const mp_textindex *ix, const char *q, size_t len, float *scores, mp_error *err);
/* Top-k documents by BM25 (allow: optional [n_docs] mask, 1 = allowed; only documents with a score > 0),
 * best first, ties by lower id. */
MP_EXPORT int mp_textindex_bm25_topk(const mp_textindex *ix, const char *q, size_t len, size_t k, const uint8_t *allow,
                                     uint32_t *out_docs, float *out_scores, size_t *n_out, mp_error *err);
/* Cosine similarity of the query's TF-IDF vector with every document's: scores[n_docs].
 * Errors: MP_EINVAL, MP_ERANGE, MP_ENOMEM (as mp_textindex_bm25_all; MP_ENOMEM also for the document norms). */
MP_EXPORT int mp_textindex_tfidf_all(const mp_textindex *ix, const char *q, size_t len, float *scores, mp_error *err);
/* Cosine of the TF-IDF vectors of two indexed documents (0 if either is empty). */
MP_EXPORT float mp_textindex_tfidf_doc_cosine(const mp_textindex *ix, uint32_t a, uint32_t b);
/* For every document d: scores[d] = sum over `docs` (weights w, NULL = 1) of w * cosine(d, docs[i]): a user
 * profile of items they interacted with, matched against the catalog.
 * Errors: MP_EINVAL (an entry of docs is not below n_docs), MP_ENOMEM. */
MP_EXPORT int mp_textindex_tfidf_profile_all(const mp_textindex *ix, const uint32_t *docs, const float *w, size_t n,
                                             float *scores, mp_error *err);

/* Serialises into / restores from a model file section (so a model can carry its index): the options and every
 * document's (term hash, tf) list; the postings are rebuilt on load. Terms no longer in any document are dropped.
 * Load: MP_ECORRUPT (naming the file) for an inconsistent section, MP_EVERSION for a newer section version.
 * Errors (save): MP_ENOMEM (the writer's own out-of-memory is reported by mp_mf_writer_save).
 * Errors (load): MP_ECORRUPT (also a truncated section, or another section where this one should be),
 * MP_EVERSION, MP_ENOMEM. */
MP_EXPORT int mp_textindex_save(const mp_textindex *ix, mp_mf_writer *w, mp_error *err);
MP_EXPORT int mp_textindex_load(mp_mf_reader *r, mp_textindex **out, mp_error *err);

#ifdef __cplusplus
}
#endif
#endif
