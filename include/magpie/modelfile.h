/* magpie/modelfile.h: the versioned, checksummed model file format.
 *
 * Layout (little-endian):
 *   magic "MAGPIEMF" (8) | format version u32 | model name char[32] (NUL-padded) | model version u32 |
 *   payload length u64 | payload checksum u64 (mp_hash_bytes of the payload) | header checksum u64 | payload
 * (72 header bytes; the header checksum is mp_hash_bytes of the 64 bytes before it.)
 * The payload is whatever the model wrote through the put calls, in order; readers get it back in the same order.
 * Files are written to a temporary name, fsync'ed and renamed, so a reader never sees a half-written model.
 * A file with another magic, a newer format version, a wrong length or a checksum mismatch is refused
 * with MP_ECORRUPT or MP_EVERSION and a message naming the file and what is wrong.
 *
 * Thread safety: writers and readers have no shared state; each handle is used by one thread at a time (the get
 * calls advance the reader's position, so even reads of one reader must not run concurrently). */
#ifndef MAGPIE_MODELFILE_H
#define MAGPIE_MODELFILE_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"

#define MP_MODELFILE_FORMAT 1
#define MP_MODELFILE_NAME_MAX 32

typedef struct mp_mf_writer mp_mf_writer;
typedef struct mp_mf_reader mp_mf_reader;

/* A writer buffers the payload in memory. Owned by the caller: mp_mf_writer_destroy.
 * Errors: MP_ENOMEM. */
MP_EXPORT int mp_mf_writer_create(mp_mf_writer **out);
MP_EXPORT void mp_mf_writer_destroy(mp_mf_writer *w);
/* Appends. Errors (out of memory) are sticky and reported by mp_mf_writer_save. */
MP_EXPORT void mp_mf_put_u32(mp_mf_writer *w, uint32_t v);
MP_EXPORT void mp_mf_put_u64(mp_mf_writer *w, uint64_t v);
MP_EXPORT void mp_mf_put_f64(mp_mf_writer *w, double v);
MP_EXPORT void mp_mf_put_bytes(mp_mf_writer *w, const void *p, size_t n);
MP_EXPORT void mp_mf_put_str(mp_mf_writer *w, const char *s); /* u32 length + bytes; NULL is written as absent */
MP_EXPORT void mp_mf_put_f32s(mp_mf_writer *w, const float *a, size_t n);
MP_EXPORT void mp_mf_put_u32s(mp_mf_writer *w, const uint32_t *a, size_t n);
MP_EXPORT void mp_mf_put_f64s(mp_mf_writer *w, const double *a, size_t n);
/* The array puts write a u64 element count before the elements; the matching get checks it equals `n`. */
/* Writes the file atomically (temp file, fsync, rename). On failure the old file at `path` (if any) is kept.
 * Errors: MP_EINVAL (empty path, model name empty or 32 bytes or longer), MP_ENOMEM (also a put that ran out of
 * memory earlier), MP_EIO (cannot create the temporary file; write, fsync, close or rename failed). */
MP_EXPORT int mp_mf_writer_save(mp_mf_writer *w, const char *path, const char *model_name, uint32_t model_version,
                                mp_error *err);
/* The payload so far (for tests and fuzzing). */
MP_EXPORT const void *mp_mf_writer_data(const mp_mf_writer *w, size_t *len);

/* Opens and fully validates a model file. Owned by the caller: mp_mf_reader_close.
 * Errors: MP_ENOTFOUND (no such file), MP_EIO (cannot open, not a regular file), MP_ECORRUPT (empty, another magic,
 * truncated, a checksum mismatch, a bad name field, bytes after the payload; also a read error part way, which
 * shows as truncation), MP_EVERSION (a newer format version), MP_ENOMEM. */
MP_EXPORT int mp_mf_reader_open(mp_mf_reader **out, const char *path, mp_error *err);
/* Same, over a complete file image in memory (copied). `name` is used in messages.
 * Errors: MP_ECORRUPT, MP_EVERSION (as for mp_mf_reader_open), MP_ENOMEM. */
MP_EXPORT int mp_mf_reader_open_mem(mp_mf_reader **out, const void *data, size_t len, const char *name,
                                    mp_error *err);
MP_EXPORT void mp_mf_reader_close(mp_mf_reader *r);
MP_EXPORT const char *mp_mf_reader_model(const mp_mf_reader *r);
MP_EXPORT uint32_t mp_mf_reader_model_version(const mp_mf_reader *r);
/* Reads in write order. Reading past the payload gives MP_ECORRUPT ("model file X: truncated payload").
 * Errors (u32, u64, f64, bytes): MP_ECORRUPT (past the end of the payload). */
MP_EXPORT int mp_mf_get_u32(mp_mf_reader *r, uint32_t *v, mp_error *err);
MP_EXPORT int mp_mf_get_u64(mp_mf_reader *r, uint64_t *v, mp_error *err);
MP_EXPORT int mp_mf_get_f64(mp_mf_reader *r, double *v, mp_error *err);
MP_EXPORT int mp_mf_get_bytes(mp_mf_reader *r, void *p, size_t n, mp_error *err);
/* *s is malloc'ed (caller frees), or NULL if written as absent. max_len guards against corrupt lengths.
 * Errors: MP_ECORRUPT (truncated, longer than max_len, or holding a NUL byte), MP_ENOMEM. */
MP_EXPORT int mp_mf_get_str(mp_mf_reader *r, char **s, size_t max_len, mp_error *err);
/* Errors (f32s, u32s, f64s): MP_ECORRUPT (truncated, or the stored count is not n). */
MP_EXPORT int mp_mf_get_f32s(mp_mf_reader *r, float *a, size_t n, mp_error *err);
MP_EXPORT int mp_mf_get_u32s(mp_mf_reader *r, uint32_t *a, size_t n, mp_error *err);
MP_EXPORT int mp_mf_get_f64s(mp_mf_reader *r, double *a, size_t n, mp_error *err);
/* Reads the u64 element count of the next array without consuming it (to size a buffer before get_*s).
 * Gives MP_ECORRUPT if it is larger than max_n.
 * Errors: MP_ECORRUPT (truncated, or the count exceeds max_n). */
MP_EXPORT int mp_mf_peek_count(mp_mf_reader *r, uint64_t *n, uint64_t max_n, mp_error *err);
/* The name given to open (the path), for messages. Owned by the reader. */
MP_EXPORT const char *mp_mf_reader_path(const mp_mf_reader *r);
/* Bytes of payload not yet read (a model checks this is 0 at the end). */
MP_EXPORT size_t mp_mf_remaining(const mp_mf_reader *r);

#endif
