/* magpie/embedclient.h: a client for any OpenAI-compatible embeddings endpoint (OpenAI, Ollama's /v1, vLLM,
 * llama.cpp server, text-embeddings-inference, ...), over libcurl.
 *
 * Protocol: POST {base_url}/embeddings with {"model": MODEL, "input": ["text", ...]}; the answer
 * {"data": [{"index": i, "embedding": [...]}, ...]} is put back in input order by `index`. Texts are sent in
 * batches of opts.batch per request. When a key is set (opts.api_key, else $MAGPIE_EMBED_API_KEY, else
 * $OPENAI_API_KEY) it goes as "Authorization: Bearer KEY".
 *
 * Errors: a server that cannot be reached or times out is MP_EIO naming the URL and curl's reason; an HTTP error
 * status is MP_EIO (MP_ENOTFOUND for 404, MP_EINVAL for 400/401/403/422) with the status and the server's own
 * message ({"error":{"message":...}} or {"error":"..."}); an answer that is not the format above (malformed JSON,
 * a wrong number of vectors, an index out of range or repeated, vectors of different lengths, non-numbers) is
 * MP_ECORRUPT saying what was wrong.
 * A 2xx answer without `data` but with an error message is MP_EIO. 429 and 503 are retried with back-off; when the
 * last try still gets one it is MP_EIO like any other status. The codes do not tell a bad key (401/403) from a bad
 * request (400/422), nor an unreachable server from a busy one: only the message does.
 *
 * Thread safety: one client may be used by any number of threads at once (each request has its own curl handle;
 * the learned dimension is guarded by a lock). mp_embed_client_free must not race other calls. */
#ifndef MAGPIE_EMBEDCLIENT_H
#define MAGPIE_EMBEDCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MP_EMBED_CLIENT_MAX_DIM 65536 /* longer vectors in an answer are refused as corrupt */

typedef struct mp_embed_client_opts {
    const char *base_url; /* required, e.g. "http://localhost:11434/v1" (a trailing '/' is fine) */
    const char *model;    /* required, e.g. "nomic-embed-text" */
    const char *api_key;  /* NULL: $MAGPIE_EMBED_API_KEY, then $OPENAI_API_KEY, else no Authorization header */
    size_t batch;         /* texts per request; 0: 64 */
    long timeout_ms;      /* whole-request limit; 0: 120000 */
} mp_embed_client_opts;

typedef struct mp_embed_client mp_embed_client;

/* Creates a client (no request is made). Strings in opts are copied. *out is owned by the caller.
 * Errors: MP_EINVAL (opts NULL, no base URL or model, a URL that is not http:// or https://), MP_EIO (libcurl failed
 * to initialise), MP_ENOMEM. */
MP_EXPORT int mp_embed_client_open(const mp_embed_client_opts *opts, mp_embed_client **out, mp_error *err);
/* NULL is a no-op. */
MP_EXPORT void mp_embed_client_free(mp_embed_client *c);

/* Embeds n texts (lens NULL = NUL-terminated), ceil(n / batch) requests in order. On MP_OK *out is malloc'ed
 * n * *dim floats, row i = text i as the server returned it (not normalised; caller frees). n == 0 is MP_OK with
 * *out NULL and *dim the known dimension (0 if none yet). Every answer must have the dimension of the first one
 * this client saw (else MP_ECORRUPT). Thread-safe: concurrent calls on one client run their requests in
 * parallel.
 * Errors: MP_EIO (unreachable, timed out, an HTTP error status other than those below, an error message instead of
 * data), MP_ENOTFOUND (HTTP 404), MP_EINVAL (HTTP 400, 401, 403, 422), MP_ECORRUPT (a malformed answer, one over
 * the size limit, or vectors of another dimension than before), MP_ENOMEM. */
MP_EXPORT int mp_embed_client_embed(mp_embed_client *c, const char *const *texts, const size_t *lens, size_t n,
                                    float **out, uint32_t *dim, mp_error *err);
/* The dimension of the vectors seen so far; 0 before the first successful call. */
MP_EXPORT uint32_t mp_embed_client_dim(const mp_embed_client *c);
/* The full endpoint URL, "{base}/embeddings" (owned by c). */
MP_EXPORT const char *mp_embed_client_url(const mp_embed_client *c);

#ifdef __cplusplus
}
#endif
#endif
