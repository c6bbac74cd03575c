/* magpie/textclf.h: a fastText-class supervised text classifier (review sentiment, product category).
 *
 * Features come from the feature tokenizer of magpie/text.h: CJK characters and bigrams of consecutive CJK
 * characters, words of other scripts, optionally word bigrams and subword n-grams. A feature's id is its token
 * hash mod n_buckets (fastText's -bucket). Only buckets that occur in the training texts get an embedding row
 * (a bucket never seen in training carries no information, so it is skipped at prediction time); memory is
 * therefore rows_used x dim floats, not n_buckets x dim.
 *
 * Model (as fastText's supervised mode): document vector = mean of its features' embeddings; a linear layer to the
 * labels (no bias); every non-empty text also has an end-of-text feature (fastText's "</s>"), shared by all
 * texts; softmax cross-entropy; SGD whose learning rate decays linearly from lr to 0 over all epochs;
 * embeddings initialised uniform in [-1/dim, 1/dim], the output layer at zero; Hogwild threads. With threads == 1
 * training is deterministic for a given seed.
 *
 * Thread safety: a trained or loaded model is immutable. predict, predict_proba, the accessors and save may run
 * concurrently on one model from any number of threads; free must not race them. */
#ifndef MAGPIE_TEXTCLF_H
#define MAGPIE_TEXTCLF_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_textclf_opts {
    int dim;            /* embedding size (default 100) */
    int epochs;         /* passes over the data (default 5) */
    float lr;           /* initial learning rate, > 0 (default 0.1) */
    int threads;        /* Hogwild threads (default 1) */
    uint64_t seed;      /* initialisation and shuffling (default 1) */
    uint32_t n_buckets; /* feature hash buckets (default 2,000,000) */
    int word_bigrams;   /* also hashed bigrams of consecutive tokens (default 0) */
    int minn, maxn;     /* subword n-grams of non-CJK words, as mp_text_feat_opts (default 0, 0 = none) */
    int punct;          /* also each punctuation character of the normalised text as a feature, as fastText
                           sees it in character-split text (default 0) */
} mp_textclf_opts;

typedef struct mp_textclf mp_textclf;

MP_EXPORT void mp_textclf_default(mp_textclf_opts *opts);

/* Trains on n texts (texts[i] is UTF-8 of length lens[i]; lens NULL = NUL-terminated) with labels[i] (any
 * non-empty string; the distinct labels become the classes in order of first appearance). opts NULL = defaults.
 * Errors: MP_EINVAL for n == 0, a NULL or empty label, fewer than 2 distinct labels, bad options, or invalid UTF-8
 * (the message names the text index and byte offset); MP_EEMPTY when no text has any feature; MP_ENOMEM.
 * Errors: MP_EINVAL (as said; also texts or labels NULL), MP_ERANGE (n >= 2^32 - 1, or a text of 4 GiB or more),
 * MP_EEMPTY, MP_ENOMEM (also a training thread that could not start).
 * Empty texts are allowed (they are skipped in training). On MP_OK *out is owned by the caller (mp_textclf_free). */
MP_EXPORT int mp_textclf_train(const char *const *texts, const size_t *lens, const char *const *labels, size_t n,
                               const mp_textclf_opts *opts, mp_textclf **out, mp_error *err);
MP_EXPORT void mp_textclf_free(mp_textclf *m);

MP_EXPORT size_t mp_textclf_n_labels(const mp_textclf *m);
/* Label text of class i (owned by m), or NULL when out of range. */
MP_EXPORT const char *mp_textclf_label(const mp_textclf *m, size_t i);
/* Number of embedding rows (distinct feature buckets seen in training, plus 1 for the end-of-text feature). */
MP_EXPORT size_t mp_textclf_n_rows(const mp_textclf *m);

/* Predicts the top-1 class of s[0..len): *label_idx (may be NULL) its index, *prob (may be NULL) its softmax
 * probability. A text with no known feature gets the uniform distribution (class 0). Thread-safe for concurrent
 * calls on one model. MP_EINVAL for invalid UTF-8 (byte offset in err); MP_ENOMEM.
 * Errors: MP_EINVAL (invalid UTF-8), MP_ERANGE (a text of 4 GiB or more), MP_ENOMEM. */
MP_EXPORT int mp_textclf_predict(const mp_textclf *m, const char *s, size_t len, size_t *label_idx, float *prob,
                                 mp_error *err);

/* All class probabilities (softmax) of s[0..len) into probs[n_labels], in class order; the uniform distribution
 * for a text with no known feature. Thread-safe like mp_textclf_predict. MP_EINVAL for invalid UTF-8; MP_ENOMEM.
 * Errors: as mp_textclf_predict (MP_EINVAL, MP_ERANGE, MP_ENOMEM). */
MP_EXPORT int mp_textclf_predict_proba(const mp_textclf *m, const char *s, size_t len, float *probs, mp_error *err);
/* The options the model was trained with (as stored in its file for a loaded model). */
MP_EXPORT void mp_textclf_get_opts(const mp_textclf *m, mp_textclf_opts *opts);

/* Writes the model to `path` as a model file (magpie/modelfile.h, model name "textclf", version 1): options and
 * tokenizer settings, labels, the bucket of every embedding row, both matrices. Atomic (temp file + rename).
 * MP_EIO naming the path; MP_ENOMEM.
 * Errors: MP_EINVAL (empty path), MP_EIO (cannot create, write, fsync or rename), MP_ENOMEM. */
MP_EXPORT int mp_textclf_save(const mp_textclf *m, const char *path, mp_error *err);
/* Loads a model written by mp_textclf_save; on MP_OK *out is owned by the caller (mp_textclf_free). A missing
 * file is MP_ENOTFOUND (unreadable: MP_EIO); a truncated, corrupt or foreign file (another model name) MP_ECORRUPT and
 * a newer version MP_EVERSION, each with a message naming the file. Memory: n_buckets x 4 bytes for the bucket map plus
 * the matrices.
 * Errors: MP_ENOTFOUND, MP_EIO, MP_ECORRUPT, MP_EVERSION (as said; MP_EVERSION also for a newer model-file format),
 * MP_ENOMEM. */
MP_EXPORT int mp_textclf_load(const char *path, mp_textclf **out, mp_error *err);

#ifdef __cplusplus
}
#endif
#endif
