/* src/serve/decode.h: decoding of write-request bodies into validated records, with exactly the validation of
 * `magpie import` (mp_record_parse_json) and one error per bad record.
 *
 * Accepted body shapes, for kind k in events / items / users:
 *   [ {...}, {...} ]            a JSON array of records
 *   {"events": [ ... ]}         an object whose only key is the kind's plural name ("events", "items", "users")
 *   { ...one record... }        a single record object (any kind)
 *   JSON Lines (ndjson = 1)     one record object per line; blank lines skipped
 * Events may leave out "ts": it is then `now` (the server's clock).
 * A JSON body must be well-formed as a whole (valid UTF-8, nesting up to MP_JSON_MAX_DEPTH, numbers that fit a
 * double), else nothing is decoded (MP_EINVAL); in JSON Lines each line stands alone, so a malformed line is one
 * bad record. Array elements that are not objects are bad records too ("events[3]: malformed JSON: expected an
 * object ..."). A record longer than MP_MAX_LINE_BYTES is a bad record, as in `magpie import`. */
#ifndef MAGPIE_SERVE_DECODE_H
#define MAGPIE_SERVE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"
#include "magpie/records.h"

typedef struct mp_decode_error {
    size_t index;      /* 0-based position of the record in the body (JSON Lines: among non-blank lines) */
    char message[600]; /* "events[2]: field `ts`: expected ..., got \"x\"" */
    char field[64];    /* the field to blame ("ts"), or "" */
} mp_decode_error;

typedef struct mp_decoded {
    mp_record *records; /* [n] the good records, in body order; every slice points into memory owned here
                         * (NUL-terminated there; empty slices are a static ""), valid until mp_decoded_free */
    size_t *index;      /* [n] body position of each good record */
    size_t n;
    mp_decode_error *errors; /* [n_errors] the first max_errors bad records */
    size_t n_errors;
    size_t n_bad;   /* all bad records (may exceed n_errors) */
    size_t n_total; /* records in the body */
    void *arena_;   /* private */
} mp_decoded;

/* Decodes body[0..len). Returns MP_OK when the body's shape was understood (then per-record problems are in
 * out->errors / n_bad); MP_EINVAL when it is not JSON of an accepted shape (err: what and at which byte, e.g.
 * "body: malformed JSON: expected ',' or ']' (byte 120)"); MP_ERANGE when it holds more than max_records records
 * (err says how many are allowed); MP_ENOMEM. The body need not be NUL-terminated and may hold any bytes.
 * An empty body (or only whitespace / blank lines) is MP_EINVAL; an empty array [] is MP_OK with no records.
 * max_records 0 means no limit; max_errors 0 means 20. For events `now` must be a valid timestamp (years
 * 1..9999), else MP_EINVAL. out is caller-owned and overwritten; free with mp_decoded_free (also after an error,
 * when its contents are partial and must not be used). */
int mp_decode_records(mp_decoded *out, mp_record_kind kind, const char *body, size_t len, int ndjson,
                      size_t max_records, size_t max_errors, int64_t now, mp_error *err);
/* The same for items, for PUT /v1/items/{id}: when the body's only record (a single object, or the first line of
 * JSON Lines) has no `id`, it gets id[0..id_len) (1 to MP_MAX_ID_BYTES bytes, else MP_EINVAL), copied into out;
 * every other field is validated as above. A record that has an `id` keeps it (the caller compares it with the
 * path). The body is not modified. */
int mp_decode_item_at(mp_decoded *out, const char *body, size_t len, int ndjson, size_t max_records, const char *id,
                      size_t id_len, mp_error *err);
void mp_decoded_free(mp_decoded *d);

#endif
