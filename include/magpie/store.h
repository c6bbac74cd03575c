/* magpie/store.h: the storage interface. Two backends behind one operations table: embedded SQLite (a file path;
 * WAL, crash-safe; the default) and PostgreSQL (a postgres:// URI), so nothing above this header knows which is used.
 *
 * Ids: every user and item has an external string id and a dense internal uint32 id assigned by the store in
 * insertion order (0, 1, 2, ...). Internal ids never change and are never reused, so model files can refer
 * to them. Acknowledged (committed) writes survive a kill -9 of the process; after a power loss or OS crash the
 * last few commits may be rolled back, never half-applied (SQLite WAL, synchronous=NORMAL; see src/store/sqlite.c).
 * With PostgreSQL a commit returns once the server has it (synchronous_commit=on); what survives a crash of the
 * server is the server's fsync setting (src/store/postgres.c).
 * Thread safety: a handle is used by one thread at a time (the SQLite connection is opened without a mutex; a libpq
 * connection is one socket), for reads too; open one handle per thread for concurrent reads. Different handles, also
 * on one store, may be used at once from different threads or processes; writers (mp_store_begin) then take turns:
 * one waits for the other's lock up to 10 s, then MP_ESTORE.
 * Callbacks of the scans below must not call into the handle that is scanning.
 *
 * Errors: every call that reaches the database can fail with what the database reports, mapped as
 *   MP_ESTORE (the store is locked by another writer, the store is read-only, or another database error),
 *   MP_EIO (an I/O error, the disk is full, the file cannot be opened; PostgreSQL: the server cannot be reached or
 *           the connection was lost: a call outside a transaction is retried once on a new connection first, inside
 *           one the transaction is gone and every call fails until mp_store_rollback, which reconnects) and
 *   MP_ECORRUPT (not a Magpie store, or a damaged file); the message tells which.
 * These three are written "store errors" below, and the Errors lines add what else each call can return. */
#ifndef MAGPIE_STORE_H
#define MAGPIE_STORE_H

#include <stdint.h>

#include "magpie/records.h"
#include "magpie/strmap.h"

typedef struct mp_store mp_store;

#define MP_STORE_SCHEMA_VERSION 2 /* 2: the embeddings table */

typedef enum {
    MP_STORE_READWRITE = 0, /* open or create */
    MP_STORE_READONLY = 1,  /* fail if missing */
} mp_store_mode;

/* Opens a store. `uri` is a file path or "sqlite:PATH" (embedded SQLite), or a libpq URI "postgres://..." /
 * "postgresql://..." (PostgreSQL; the store lives in the first schema of the search_path, e.g.
 * "postgres://u@host/db?options=-csearch_path%3Dshop"; the schema must exist). Creates the schema or migrates an
 * older one (read-write; a read-only open of a version-1 store works and simply has no embeddings). A database from a
 * newer Magpie is refused with MP_EVERSION. *out is owned by the caller: mp_store_close it.
 * Errors: MP_EINVAL (out NULL, empty path, the path is a directory, a malformed postgres URI, no schema on the
 * search_path to create the store in), MP_EUNSUPPORTED (another URI scheme), MP_ENOTFOUND (READONLY and the file
 * does not exist / the schema holds no store yet), MP_EVERSION (schema newer than this Magpie; the message names both
 * versions), MP_ECORRUPT (a database that is not a Magpie store, a bad schema_version, READONLY on an empty SQLite
 * file), MP_ENOMEM, store errors (MP_ESTORE, MP_EIO: also the PostgreSQL server cannot be reached, the message names
 * its host, port and database). */
MP_EXPORT int mp_store_open(mp_store **out, const char *uri, mp_store_mode mode, mp_error *err);
/* 1 when `uri` names a PostgreSQL store (postgres:// or postgresql://). Thread-safe (no state). */
MP_EXPORT int mp_store_uri_is_postgres(const char *uri);
/* The file path of an SQLite store URI (a plain path, or what follows "sqlite:" / "sqlite://"), a pointer into uri;
 * NULL for a server URI (postgres://) or an unknown scheme. For callers that check the file before opening (stat,
 * the -wal file): a NULL answer means there is no file to look at. Thread-safe (no state). */
MP_EXPORT const char *mp_store_uri_file(const char *uri);
/* Closes; NULL is a no-op. An open transaction is rolled back. */
MP_EXPORT void mp_store_close(mp_store *s);

/* Transactions. Nothing written between begin and commit is visible to other connections or survives a crash
 * until commit returns MP_OK. */
/* Errors: MP_EINVAL (a transaction is already open on this handle), store errors (MP_ESTORE when another process
 * holds the write lock for more than 10 s). */
MP_EXPORT int mp_store_begin(mp_store *s, mp_error *err);
/* Errors: MP_EINVAL (no transaction is open), store errors (MP_ESTORE, MP_EIO, MP_ECORRUPT). */
MP_EXPORT int mp_store_commit(mp_store *s, mp_error *err);
/* MP_OK when no transaction is open. The transaction counts as closed afterwards even on failure.
 * Errors: store errors (MP_ESTORE, MP_EIO, MP_ECORRUPT). */
MP_EXPORT int mp_store_rollback(mp_store *s, mp_error *err);

/* Loads the external -> internal id map of users or items (kind MP_KIND_USERS or MP_KIND_ITEMS) into a new map
 * owned by the caller (mp_strmap_destroy). Ids in the map are the store's internal ids. Forgotten users are in it
 * under their tombstone key (see mp_store_forget_user), which keeps the id bound and matches no real id.
 * Errors: MP_EINVAL (kind is not users or items), MP_ECORRUPT (an id out of range or a duplicate external id in the
 * table), MP_ENOMEM, store errors (MP_ESTORE, MP_EIO, MP_ECORRUPT). */
MP_EXPORT int mp_store_load_ids(mp_store *s, mp_record_kind kind, mp_strmap **out, mp_error *err);

/* Inserts or replaces a user / item row under internal id `id` (the caller allocates ids from the map above,
 * next id = mp_strmap_id_bound). A bare id (only `id` set) never overwrites existing attributes.
 * Errors: MP_EINVAL (the external id starts with 0xFF, i.e. looks like a tombstone), MP_ESTORE (the id belongs to
 * another external id, or the external id exists under another id; also a store error), MP_EIO, MP_ECORRUPT. */
MP_EXPORT int mp_store_put_user(mp_store *s, uint32_t id, const mp_user *u, mp_error *err);
MP_EXPORT int mp_store_put_item(mp_store *s, uint32_t id, const mp_item *it, mp_error *err);

/* One stored event, with internal ids. Slices are valid only during a callback / call. */
typedef struct mp_event_row {
    uint32_t user, item;
    uint8_t type; /* mp_event_type */
    int64_t ts;
    double value;
    int has_value;
    mp_str text;
    mp_str session;
} mp_event_row;

/* Inserts an event; an exact duplicate (user, item, type, ts) is not inserted and *inserted is set to 0.
 * Ids are not checked against the users / items tables.
 * Errors: store errors (MP_ESTORE, MP_EIO, MP_ECORRUPT). */
MP_EXPORT int mp_store_add_event(mp_store *s, const mp_event_row *e, int *inserted, mp_error *err);
/* Inserts n events (the bulk path of the importer; much faster than n calls above, best with rows sorted by
 * (user, ts, item, type)). Exact duplicates are skipped; *n_inserted (may be NULL) gets how many were new (on
 * failure: how many were new before it; the caller's transaction decides whether they stay).
 * Errors: store errors (MP_ESTORE, MP_EIO, MP_ECORRUPT). */
MP_EXPORT int mp_store_add_events(mp_store *s, const mp_event_row *rows, size_t n, uint64_t *n_inserted,
                                  mp_error *err);

/* Scans. The callback returns 0 to go on, non-zero to stop (that value is returned). Events come ordered by
 * (user, ts, item, type): by time within a user, and events of one user at the same ts by internal item id, then
 * type code (the key is unique, so the order is total). Data whose ts is a position in a sequence (S3-Rec style)
 * therefore scans in sequence order. Items and users come by internal id.
 * Errors: store errors (MP_ESTORE, MP_EIO, MP_ECORRUPT), or whatever non-zero value the callback returned (which
 * the caller cannot tell apart from a store error of the same value: return a code of your own). */
typedef int (*mp_event_cb)(void *ctx, const mp_event_row *e);
typedef int (*mp_item_cb)(void *ctx, uint32_t id, const mp_item *it);
typedef int (*mp_user_cb)(void *ctx, uint32_t id, const mp_user *u);
MP_EXPORT int mp_store_scan_events(mp_store *s, mp_event_cb cb, void *ctx, mp_error *err);
MP_EXPORT int mp_store_scan_items(mp_store *s, mp_item_cb cb, void *ctx, mp_error *err);
MP_EXPORT int mp_store_scan_users(mp_store *s, mp_user_cb cb, void *ctx, mp_error *err);

typedef struct mp_store_stats {
    uint64_t n_events;
    uint64_t per_type[MP_EV_NTYPES];
    uint64_t n_users, n_items;  /* rows in users / items */
    uint64_t n_active_users;    /* users with at least one event */
    uint64_t n_active_items;    /* items with at least one event */
    uint64_t n_pairs;           /* distinct (user, item) pairs with events */
    int64_t ts_min, ts_max;     /* 0, 0 when there are no events */
    double density;             /* n_pairs / (n_active_users * n_active_items), 0 when empty */
} mp_store_stats;

/* Counts in one read transaction (or in the caller's open one). Errors: MP_ENOMEM, store errors (MP_ESTORE, MP_EIO,
 * MP_ECORRUPT). */
MP_EXPORT int mp_store_stats_get(mp_store *s, mp_store_stats *out, mp_error *err);

/* ---- forgetting users, availability ----
 * The right to be forgotten: mp_store_forget_user deletes every event of internal user `user`, clears its
 * attributes and replaces its external id by a tombstone: MP_STORE_TOMBSTONE_PREFIX followed by the decimal internal
 * id. The prefix starts with the byte 0xFF, which never occurs in UTF-8, and external ids are always valid UTF-8, so
 * no real external id equals a tombstone: the old external id maps to nothing (if it comes back it is a new user
 * with a new internal id), while the row stays, so the internal id remains reserved and is never reused.
 * Tombstones are skipped by mp_store_scan_users (so datasets never see them) and by the user count of
 * mp_store_stats_get; mp_store_load_ids keeps them in the map under their tombstone key, so mp_strmap_id_bound stays
 * one past the largest id ever given out. put_user / put_item refuse ids that look like tombstones (MP_EINVAL).
 * Both calls below run inside the caller's transaction when one is open, else in their own. */
#define MP_STORE_TOMBSTONE_PREFIX "\xff" "forgotten:"
/* 1 if ext[0..len) is a tombstone (starts with the byte 0xFF). */
MP_EXPORT int mp_store_is_tombstone(const char *ext, size_t len);
/* Forgets internal user `user` as described above; *n_events (may be NULL) gets how many events were deleted.
 * MP_ENOTFOUND when there is no such user or it was already forgotten (nothing is changed then).
 * Errors: MP_ENOTFOUND (as said), store errors (MP_ESTORE, MP_EIO, MP_ECORRUPT; also from the begin / commit of its
 * own transaction). */
MP_EXPORT int mp_store_forget_user(mp_store *s, uint32_t user, uint64_t *n_events, mp_error *err);
/* Sets the `available` flag of internal item `item` (other attributes are kept).
 * Errors: MP_ENOTFOUND (no such item), store errors (MP_ESTORE, MP_EIO, MP_ECORRUPT; also from the begin / commit
 * of its own transaction). */
MP_EXPORT int mp_store_set_item_available(mp_store *s, uint32_t item, int available, mp_error *err);

/* Embedding vectors of items and users, keyed by (kind, internal id, source). `source` names where a vector came
 * from: "user" for vectors supplied with the records or by `magpie import embeddings`, or an encoder name such as
 * "use-lite" or "openai:<model>" for computed ones, which are a cache: `text_hash` is a hash of the text the vector
 * was computed from, so a changed title is re-embedded and an unchanged one is not. All vectors of one (kind,
 * source) have the same dimension: put refuses a different one (MP_EINVAL naming both). Non-finite values are
 * MP_EINVAL. Forgetting a user deletes their embeddings. kind is MP_KIND_ITEMS or MP_KIND_USERS. */
#define MP_EMBEDDING_SOURCE_USER "user" /* vectors supplied with records or by `magpie import embeddings` */
/* Errors: MP_EINVAL (bad kind or source, dim outside 1..MP_MAX_EMBEDDING_DIM, v NULL, a non-finite value, a dimension
 * other than that of the source's other vectors), MP_ENOTFOUND (no such item / user, or the user was forgotten),
 * MP_ENOMEM, store errors (MP_ESTORE, MP_EIO, MP_ECORRUPT). */
MP_EXPORT int mp_store_put_embedding(mp_store *s, mp_record_kind kind, uint32_t id, const char *source, const float *v,
                                     uint32_t dim, uint64_t text_hash, mp_error *err);
/* Copies the vector into v[cap] (*dim gets its dimension; cap < dim is MP_ERANGE); MP_ENOTFOUND when absent.
 * text_hash may be NULL. On MP_ERANGE *dim and *text_hash are set, so the caller can retry with room for *dim.
 * Errors: MP_EINVAL (bad kind or source), MP_ENOTFOUND (no such vector; always on a read-only version-1 store),
 * MP_ERANGE (cap < dim), MP_ECORRUPT (the stored row is damaged), store errors (MP_ESTORE, MP_EIO). */
MP_EXPORT int mp_store_get_embedding(mp_store *s, mp_record_kind kind, uint32_t id, const char *source, float *v,
                                     uint32_t cap, uint32_t *dim, uint64_t *text_hash, mp_error *err);
/* Calls cb for every stored vector of (kind, source) in id order; a non-zero return from cb stops the scan and is
 * returned. The vector is valid only during the call. A read-only version-1 store has none (MP_OK, no calls).
 * Errors: MP_EINVAL (bad kind or source), MP_ENOMEM, MP_ECORRUPT (a damaged row), store errors (MP_ESTORE, MP_EIO),
 * or the callback's non-zero value. */
typedef int (*mp_embedding_cb)(void *ctx, uint32_t id, const float *v, uint32_t dim, uint64_t text_hash);
MP_EXPORT int mp_store_scan_embeddings(mp_store *s, mp_record_kind kind, const char *source, mp_embedding_cb cb,
                                       void *ctx, mp_error *err);
/* Deletes every vector of (kind, source) (e.g. before importing vectors of another dimension); *n_deleted (may be
 * NULL) gets how many.
 * Errors: MP_EINVAL (bad kind or source), store errors (MP_ESTORE, MP_EIO, MP_ECORRUPT). */
MP_EXPORT int mp_store_delete_embeddings(mp_store *s, mp_record_kind kind, const char *source, uint64_t *n_deleted,
                                         mp_error *err);
/* Further rules of the calls above: dim is 1..MP_MAX_EMBEDDING_DIM; source is a non-empty string of at most
 * MP_MAX_EMBEDDING_SOURCE bytes; put needs an existing item / a user that was not forgotten (MP_ENOTFOUND); a
 * put under an existing (kind, id, source) replaces the vector, and the dimension check ignores the vector being
 * replaced (so the only vector of a source can change dimension). Vectors are stored as float32. */
#define MP_MAX_EMBEDDING_SOURCE 256

/* Small persistent key/value settings (e.g. event-type weights). get returns MP_ENOTFOUND if absent;
 * on success *value is malloc'ed and owned by the caller.
 * Errors (get): MP_ENOTFOUND (no such key), MP_ENOMEM, store errors (MP_ESTORE, MP_EIO, MP_ECORRUPT).
 * Errors (set): MP_EINVAL (key "schema_version", which the store manages), store errors. */
MP_EXPORT int mp_store_meta_get(mp_store *s, const char *key, char **value, mp_error *err);
MP_EXPORT int mp_store_meta_set(mp_store *s, const char *key, const char *value, mp_error *err);

#endif
