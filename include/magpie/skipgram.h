/* magpie/skipgram.h: unsupervised subword skip-gram embeddings (fastText-style) trained on catalog and review
 * text, in C.
 *
 * Tokens come from the feature tokenizer of magpie/text.h (words of non-CJK scripts, CJK characters; the
 * skip-gram context window runs over this unigram sequence). A word's vector is the mean of the input vectors of
 * the word itself and its hashed character n-grams (minn..maxn), so words never seen in training still get a
 * vector from their n-grams. Training: skip-gram with negative sampling (unigram^0.75 table), frequent-word
 * subsampling, linear learning-rate decay, Hogwild threads (deterministic with threads == 1 for a seed). The
 * centre word's input vector is computed once per window and its gradient from all context words applied once.
 *
 * Vocabulary: words seen at least min_count times get their own input row and an output row (they are the
 * context targets and negatives). Rarer words stay in the training sequence as centre words represented by their
 * n-grams only (when maxn > 0), so their n-grams learn from their contexts. Only n-gram buckets met in training
 * get rows: memory is (vocab + used buckets) x dim floats. The tokenizer is the default normalisation with CJK
 * characters as words (no CJK bigrams, no word bigrams). The output rows are dropped after training.
 *
 * Thread safety: a trained or loaded model is immutable: word_vector, text_vector, the accessors and save may run
 * concurrently on one model; free must not race them. */
#ifndef MAGPIE_SKIPGRAM_H
#define MAGPIE_SKIPGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"
#include "magpie/modelfile.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_skipgram_opts {
    int dim;            /* default 100 */
    int window;         /* max context distance (default 5) */
    int epochs;         /* default 5 */
    int negatives;      /* default 5 */
    int min_count;      /* words seen fewer times get no own row, only n-grams (default 2) */
    int minn, maxn;     /* subword n-gram lengths (default 3, 6; maxn 0 = none) */
    uint32_t n_buckets; /* n-gram hash buckets (default 2,000,000; only buckets seen in training are stored) */
    float lr;           /* default 0.05 */
    double sample;      /* subsampling threshold (default 1e-4) */
    int threads;        /* default 1 */
    uint64_t seed;      /* default 1 */
} mp_skipgram_opts;

typedef struct mp_skipgram mp_skipgram;

MP_EXPORT void mp_skipgram_default(mp_skipgram_opts *opts);
/* Trains on n texts (lens NULL = NUL-terminated; NULL texts are skipped; the context window never crosses texts).
 * opts NULL = defaults. MP_EINVAL for bad options or invalid UTF-8 (naming the text index and byte offset),
 * MP_EEMPTY when no text has a token or no word occurs min_count times; MP_ENOMEM. On MP_OK *out is owned by the
 * caller (mp_skipgram_free). Note for small corpora (a catalog's titles): the default sample 1e-4 discards most
 * tokens of frequent words; 1e-3 and 10+ epochs work better there.
 * Errors: MP_EINVAL (bad options, texts NULL with n > 0, invalid UTF-8), MP_EEMPTY (no text has a word, or no word
 * occurs min_count times; also n == 0), MP_ERANGE (a text of 4 GiB or more, 2^32 or more n-gram occurrences in the
 * vocabulary), MP_ENOMEM (also a training thread that could not start). */
MP_EXPORT int mp_skipgram_train(const char *const *texts, const size_t *lens, size_t n, const mp_skipgram_opts *opts,
                                mp_skipgram **out, mp_error *err);
MP_EXPORT void mp_skipgram_free(mp_skipgram *m);
MP_EXPORT int mp_skipgram_dim(const mp_skipgram *m);
/* Words with an own row (seen min_count times). */
MP_EXPORT size_t mp_skipgram_vocab_size(const mp_skipgram *m);
/* Vector of one word (normalised with the model's tokenizer options; of a longer text only its first word is
 * used): out[dim], not normalised. *have = 0 when the word has neither an own row nor a known n-gram (out is
 * zeros). Thread-safe. MP_EINVAL for invalid UTF-8.
 * Errors: MP_EINVAL (invalid UTF-8), MP_ERANGE (a text of 4 GiB or more), MP_ENOMEM. With err NULL these are lost
 * and the call returns MP_OK with *have = 0 (see skipgram.c): pass an mp_error. */
MP_EXPORT int mp_skipgram_word_vector(const mp_skipgram *m, const char *w, size_t len, float *out, int *have,
                                      mp_error *err);
/* Text vector: mean of the unit-length word vectors of its tokens, then L2-normalised; *have as above.
 * Errors: as mp_skipgram_word_vector (MP_EINVAL, MP_ERANGE, MP_ENOMEM; pass an mp_error). */
MP_EXPORT int mp_skipgram_text_vector(const mp_skipgram *m, const char *s, size_t len, float *out, int *have,
                                      mp_error *err);
/* Model file section (options, vocabulary, n-gram buckets, input rows). Load: MP_ECORRUPT naming the file for an
 * inconsistent section, MP_EVERSION for a newer section version.
 * Errors (save): MP_ENOMEM (the writer's own out-of-memory is reported by mp_mf_writer_save).
 * Errors (load): MP_ECORRUPT (also truncated, or another section), MP_EVERSION, MP_ENOMEM. */
MP_EXPORT int mp_skipgram_save(const mp_skipgram *m, mp_mf_writer *w, mp_error *err);
MP_EXPORT int mp_skipgram_load(mp_mf_reader *r, mp_skipgram **out, mp_error *err);

#ifdef __cplusplus
}
#endif
#endif
