/* magpie/encoder.h: one interface over every way Magpie turns text into a vector, so the CLI (`magpie embed`),
 * the server (/v1/embeddings, search) and training (hybrid cold-start features) never special-case one.
 *
 * Specs (mp_encoder_open):
 *   "use-lite"             the Universal Sentence Encoder Lite run in C (magpie/use.h), 512-d, English;
 *   "use-lite:DIR"         the same with an explicit model directory;
 *   "openai:MODEL@URL"     any OpenAI-compatible /v1/embeddings endpoint (URL is the base, e.g.
 *                          http://localhost:11434/v1 for Ollama); the key, if any, from $MAGPIE_EMBED_API_KEY or
 *                          $OPENAI_API_KEY;
 * The encoder's name (mp_encoder_name) is the `source` under which its vectors are cached in the store.
 *
 * Threads: for "use-lite" `threads` is the number of cores the forward pass uses (0 = all); for "openai:" it is
 * how many requests mp_encoder_embed_items keeps in flight (0 = 4). Remote requests go in batches of 64 texts.
 *
 * Thread safety: mp_encoder_prepare, mp_encoder_embed, mp_encoder_name and mp_encoder_dim may run concurrently on
 * one encoder (the lazy USE load happens once, under a lock). mp_encoder_embed_items uses the store handle, which
 * is one thread's at a time (store.h). mp_encoder_free must not race any other call.
 *
 * Errors of the embedding calls depend on the kind: "use-lite" gives those of mp_use_load (at the first call) and
 * mp_use_embed; "openai:" gives those of mp_embed_client_embed (MP_EIO, MP_ENOTFOUND, MP_EINVAL, MP_ECORRUPT,
 * MP_ENOMEM; see embedclient.h). A failed USE load is remembered: every later call returns the same code. */
#ifndef MAGPIE_ENCODER_H
#define MAGPIE_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"
#include "magpie/progress.h"
#include "magpie/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_encoder mp_encoder;

/* Opens an encoder from a spec (above). Unknown kinds are MP_EINVAL listing the known ones; a missing USE model
 * package is MP_ENOTFOUND naming the install command. threads 0 = all cores (local encoders). Nothing heavy
 * happens here: the USE model is loaded by the first call that embeds something (a damaged package is reported
 * then), and a remote endpoint is first contacted then too.
 * Errors: MP_EINVAL (spec NULL, empty or unknown, an openai: spec without "@http...", a URL that is not http(s)),
 * MP_ENOTFOUND (no USE model package, or $MAGPIE_USE_DIR is not a directory), MP_EIO (libcurl failed to
 * initialise), MP_ENOMEM. */
MP_EXPORT int mp_encoder_open(const char *spec, int threads, mp_encoder **out, mp_error *err);
MP_EXPORT void mp_encoder_free(mp_encoder *e);
/* Loads a local model now (no-op for remote encoders): a server calls it at startup so that its first request
 * does not pay for the load and a damaged model package fails the start.
 * Errors: as mp_use_load (MP_ENOTFOUND, MP_EIO, MP_ECORRUPT, MP_ENOMEM); always MP_OK for a remote encoder. */
MP_EXPORT int mp_encoder_prepare(mp_encoder *e, mp_error *err);
/* "use-lite", "openai:MODEL". Owned by e. */
MP_EXPORT const char *mp_encoder_name(const mp_encoder *e);
/* Output dimension; 0 for a remote encoder before its first successful call. */
MP_EXPORT uint32_t mp_encoder_dim(const mp_encoder *e);
/* Embeds n texts (lens NULL = NUL-terminated). On MP_OK *out is malloc'ed n * *dim floats (caller frees), rows
 * L2-normalised. Thread-safe for concurrent calls on one encoder.
 * Errors (use-lite): MP_EINVAL (invalid UTF-8, a NULL text of non-zero length), MP_ERANGE, MP_EIO, MP_ENOTFOUND,
 * MP_ECORRUPT (loading the model), MP_ENOMEM. Errors (openai:): MP_EIO, MP_ENOTFOUND, MP_EINVAL, MP_ECORRUPT,
 * MP_ENOMEM as mp_embed_client_embed; invalid UTF-8 is not an error there (it is sent as U+FFFD). */
MP_EXPORT int mp_encoder_embed(mp_encoder *e, const char *const *texts, const size_t *lens, size_t n, float **out,
                               uint32_t *dim, mp_error *err);

/* Embeds every item's text (title, then description, category and brand, joined by " . ") that is not already
 * cached under this encoder's name with the same text hash, in batches, and stores the vectors. *n_computed and
 * *n_cached (may be NULL) count the two cases. Items without any text are skipped. Vectors are committed every
 * few thousand items (each round in its own transaction, so call it with no transaction open), so an interrupted
 * run keeps what it computed. Cached vectors of another dimension than the encoder's (a changed model) are
 * MP_EINVAL asking to delete them (mp_store_delete_embeddings, `magpie embed --recompute`). Progress stage
 * "embed" counts items to compute.
 * Errors: those of mp_encoder_embed, MP_EINVAL (also: cached vectors of another dimension), MP_ECORRUPT (also: a
 * remote encoder answering vectors of two lengths), MP_ENOMEM, and store errors of the scans, begin, put and commit
 * (MP_ESTORE, MP_EIO, MP_ECORRUPT; MP_EINVAL from mp_store_begin when a transaction is open). */
MP_EXPORT int mp_encoder_embed_items(mp_encoder *e, mp_store *s, const mp_progress *progress, uint64_t *n_computed,
                                     uint64_t *n_cached, mp_error *err);
/* The text mp_encoder_embed_items embeds for an item (malloc'ed, NUL-terminated; "" when the item has none; NULL
 * when out of memory). NULL arguments count as empty. The text is cut at MP_ENCODER_MAX_TEXT bytes (at a UTF-8
 * character boundary): encoders only look at the start of a long text anyway. */
#define MP_ENCODER_MAX_TEXT 4096
MP_EXPORT char *mp_encoder_item_text(const char *title, const char *description, const char *category,
                                     const char *brand);
/* The cache key of a text: 64-bit FNV-1a of its bytes (stored as `text_hash` by mp_encoder_embed_items). */
MP_EXPORT uint64_t mp_encoder_text_hash(const char *s, size_t len);

#ifdef __cplusplus
}
#endif
#endif
