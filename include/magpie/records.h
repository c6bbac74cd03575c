/* magpie/records.h: the external data contracts (events, items, users) as parsed records, and the
 * streaming reader that validates JSONL and CSV files into them.
 *
 * Event JSONL: {"user":"u1","item":"sku-9","type":"purchase","ts":1735689600,"value":5,"text":"...","session":"s1"}
 * Item JSONL:  {"id":"sku-9","title":"...","description":"...","category":["Beauty","Skin Care"],"brand":"...",
 *               "price":19.9,"attrs":{...},"available":true}
 * User JSONL:  {"id":"u1","attrs":{...}}
 * CSV: a header naming the same fields (any order, unknown columns are an error); for items `category` is
 * a path "Beauty > Skin Care" and `attrs` a JSON object text.
 *
 * Items and users may carry a vector of their own: JSONL `"embedding":[0.12,-0.5,...]` (an array of finite numbers,
 * 1..MP_MAX_EMBEDDING_DIM of them; null = none), CSV a column `embedding` of space-separated numbers. The reader
 * hands it out as float32 in reader-owned memory valid until the next record (like the slices); the importer
 * stores it under the source "user" (see mp_store_put_embedding).
 *
 * Rules: ids are non-empty strings of at most 256 bytes (JSON numbers are accepted for ids and kept as their text);
 * `ts` is epoch seconds (integer or decimal) or RFC 3339; all text must be valid UTF-8 and is kept verbatim;
 * unknown JSON fields are an error in events and ignored nowhere (typos must not lose data).
 *
 * Thread safety: a reader (or parser) is used by one thread at a time; different readers may run concurrently.
 * The free functions (type / kind / format parsing, mp_utf8_valid, mp_parse_rfc3339) keep no state and may be
 * called from any thread. */
#ifndef MAGPIE_RECORDS_H
#define MAGPIE_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"

/* X(enum suffix, name in files, default weight). Order matters: it is the stored numeric code. */
#define MP_EVENT_TYPE_MAP(X)                                                                                          \
    X(VIEW, "view", 1.0f)                                                                                             \
    X(CLICK, "click", 2.0f)                                                                                           \
    X(CART, "cart", 4.0f)                                                                                             \
    X(FAV, "fav", 5.0f)                                                                                               \
    X(PURCHASE, "purchase", 8.0f)                                                                                     \
    X(REVIEW, "review", 3.0f)                                                                                         \
    X(RATING, "rating", 3.0f)                                                                                         \
    X(DISLIKE, "dislike", -4.0f)                                                                                      \
    X(RETURN, "return", -6.0f)

typedef enum {
#define MP_EV_ENUM_(e, name, w) MP_EV_##e,
    MP_EVENT_TYPE_MAP(MP_EV_ENUM_)
#undef MP_EV_ENUM_
        MP_EV_NTYPES
} mp_event_type;

/* "purchase" for MP_EV_PURCHASE; "?" for out-of-range values. Static storage. */
MP_EXPORT const char *mp_event_type_name(int type);
/* Parses a type name (case-sensitive, as in files).
 * Errors: MP_EINVAL (s is NULL or not a type name). */
MP_EXPORT int mp_event_type_parse(const char *s, size_t len, mp_event_type *out);
/* Default weight of a type (view < click < cart < fav < purchase; dislike and return negative). */
MP_EXPORT float mp_event_type_default_weight(int type);

/* A string slice. Not NUL-terminated unless said so. */
typedef struct mp_str {
    const char *ptr;
    size_t len;
} mp_str;

/* One behaviour event. Slices point into reader-owned memory valid until the next mp_reader_next call. */
typedef struct mp_event {
    mp_str user;        /* external user id, required */
    mp_str item;        /* external item id, required */
    mp_event_type type; /* required */
    int64_t ts;         /* seconds since epoch (UTC), required */
    double value;       /* rating or amount; meaningful only if has_value */
    int has_value;
    mp_str text;        /* review text; len 0 if absent */
    mp_str session;     /* session id; len 0 if absent */
} mp_event;

typedef struct mp_item {
    mp_str id;          /* required */
    mp_str title;       /* optional (len 0) */
    mp_str description; /* optional */
    mp_str category;    /* category path joined with " > " ("Beauty > Skin Care"); optional */
    mp_str brand;       /* optional */
    double price;       /* meaningful only if has_price; must be finite and >= 0 */
    int has_price;
    mp_str attrs;       /* verbatim JSON object text, or len 0 */
    int available;      /* 1 unless the record says false */
    const float *embedding;  /* [embedding_dim] a vector supplied with the record, or NULL (dim 0) */
    uint32_t embedding_dim;
} mp_item;

typedef struct mp_user {
    mp_str id;    /* required */
    mp_str attrs; /* verbatim JSON object text, or len 0 */
    const float *embedding; /* [embedding_dim] as for items */
    uint32_t embedding_dim;
} mp_user;

typedef enum { MP_KIND_EVENTS, MP_KIND_ITEMS, MP_KIND_USERS } mp_record_kind;
typedef enum { MP_FORMAT_AUTO, MP_FORMAT_JSONL, MP_FORMAT_CSV } mp_format;

/* Parses "events" / "items" / "users" and "jsonl" / "csv" / "auto".
 * Errors: MP_EINVAL (s is NULL or not one of those names). */
MP_EXPORT int mp_record_kind_parse(const char *s, mp_record_kind *out);
MP_EXPORT int mp_format_parse(const char *s, mp_format *out);

#define MP_MAX_LINE_BYTES (1u << 20) /* a record line longer than 1 MiB is rejected */
#define MP_MAX_ID_BYTES 256
#define MP_MAX_EMBEDDING_DIM 4096 /* values in one embedding vector */

typedef struct mp_reader mp_reader;

/* Opens `path` for streaming records of `kind`. MP_FORMAT_AUTO picks CSV for names ending in .csv/.tsv and JSONL
 * otherwise. A CSV header is read and checked here. An empty file is an error (MP_EEMPTY, "file is empty").
 * On success *out is owned by the caller: mp_reader_close it.
 * Errors: MP_EINVAL (path NULL, a directory, or a bad CSV header: unknown, duplicate or missing required column,
 * invalid UTF-8 or bad quoting in it, a header over 1 MiB), MP_ENOTFOUND (no such file), MP_EIO (cannot open or
 * read it), MP_EEMPTY (the file is empty; for CSV also: blank lines only), MP_ENOMEM. */
MP_EXPORT int mp_reader_open(mp_reader **out, const char *path, mp_record_kind kind, mp_format fmt, mp_error *err);
/* Closes; NULL is a no-op. */
MP_EXPORT void mp_reader_close(mp_reader *r);

/* Reads the next record into the union member matching the reader's kind.
 * Returns 1 when a record was read, 0 at end of file, MP_EBADREC for a bad record (err says
 * "file:line: field `x`: reason"; the reader has moved past it, so the caller may go on), or another negative
 * code for a fatal error (I/O). Blank lines are skipped.
 * Note the success value is 1, not MP_OK: test `rc > 0`, `rc == 0`, `rc == MP_EBADREC`, then `rc < 0`.
 * Errors: MP_EBADREC (a bad or over-long record; not fatal), MP_EIO (read failed), MP_ENOMEM. */
typedef union mp_record {
    mp_event event;
    mp_item item;
    mp_user user;
} mp_record;
MP_EXPORT int mp_reader_next(mp_reader *r, mp_record *rec, mp_error *err);

/* The raw text of the line last returned (without the newline), for writing rejects; valid until the next call.
 * For a line over MP_MAX_LINE_BYTES only its first MP_MAX_LINE_BYTES bytes are kept. */
MP_EXPORT mp_str mp_reader_line(const mp_reader *r);
/* 1-based line number of the record last returned. */
MP_EXPORT uint64_t mp_reader_lineno(const mp_reader *r);
/* Bytes consumed so far and total file size (for progress). */
MP_EXPORT uint64_t mp_reader_offset(const mp_reader *r);
MP_EXPORT uint64_t mp_reader_size(const mp_reader *r);

/* Single JSON records from memory, with exactly the validation of the JSONL reader (the server's request decoder
 * and the fuzz target use it). A parser is a reader without a file: create it once (kind, and `name` used as the
 * file name in messages, e.g. "events"), then parse any number of records; `index` is reported as the line number
 * ("events:3: field `ts`: ..."). Slices in *rec point into s or into the parser's scratch, valid until the next
 * parse. Returns MP_OK or MP_EBADREC (err says why). Free with mp_reader_close.
 * Errors (create): MP_ENOMEM.
 * Errors (parse): MP_EBADREC (the record is invalid or longer than 1 MiB), MP_EINVAL (p is a file reader, not a
 * parser), MP_ENOMEM. */
MP_EXPORT int mp_record_parser_create(mp_reader **out, mp_record_kind kind, const char *name, mp_error *err);
MP_EXPORT int mp_record_parse_json(mp_reader *p, const char *s, size_t len, uint64_t index, mp_record *rec,
                                   mp_error *err);
/* Makes `ts` optional for events parsed afterwards with p: an event without it gets `ts` (the server's clock).
 * MP_EINVAL if p is not a parser, MP_ERANGE if ts is outside the accepted range (years 1..9999).
 * Errors: MP_EINVAL, MP_ERANGE (as said; there is no mp_error, the code is all). */
MP_EXPORT int mp_record_parser_default_ts(mp_reader *p, int64_t ts);

/* Helpers shared with presets and the server. */
/* Returns 1 if s[0..len) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). *bad_at gets the offset of the
 * first bad byte (may be NULL). */
MP_EXPORT int mp_utf8_valid(const char *s, size_t len, size_t *bad_at);
/* Parses an RFC 3339 time ("2025-01-01T00:00:00Z", offsets, fractional seconds, also ' ' for 'T') to epoch
 * seconds (fraction truncated toward negative infinity).
 * Errors: MP_EINVAL (not an RFC 3339 time, or a field out of range such as month 13 or Feb 30). */
MP_EXPORT int mp_parse_rfc3339(const char *s, size_t len, int64_t *out);

#endif
