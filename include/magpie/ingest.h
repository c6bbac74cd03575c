/* magpie/ingest.h: validated ingestion of records into a store.
 *
 * An importer wraps one batch: everything added between mp_importer_begin and mp_importer_finish is one
 * transaction. Default policy is all-or-nothing: if any record was rejected, finish rolls back and nothing is
 * written. With opts.rejects_path set (--skip-bad), the good records are committed and each rejected record is
 * written to that file as one JSON line {"file":..,"line":..,"error":..,"record":"<raw line>"}.
 * Exact duplicate events (user, item, type, ts), inside the batch or against the store, are collapsed and counted.
 *
 * Threads: call an importer's functions from one thread. Events are buffered and written in sorted chunks by a
 * helper thread while the caller goes on parsing, so between mp_importer_begin and finish / abort the store
 * belongs to the importer: do not use `s` directly until the batch ends. */
#ifndef MAGPIE_INGEST_H
#define MAGPIE_INGEST_H

#include "magpie/progress.h"
#include "magpie/records.h"
#include "magpie/store.h"

typedef struct mp_import_opts {
    mp_format format;              /* for mp_import_files; MP_FORMAT_AUTO by file name */
    const char *rejects_path;      /* NULL: all-or-nothing; else keep good records, write rejects here */
    int dry_run;                   /* validate and count only; the store is not written */
    size_t max_errors;             /* how many error messages to keep in the report (0: 20) */
    const mp_progress *progress;   /* may be NULL */
    size_t chunk_events;           /* events buffered per sorted write to the store (0: 1M); memory ~56 B each,
                                      twice (one chunk fills while the other is written) */
} mp_import_opts;

typedef struct mp_import_report {
    uint64_t read;        /* records read (good + bad) */
    uint64_t accepted;    /* good records */
    uint64_t rejected;    /* bad records */
    uint64_t duplicates;  /* good events not inserted: exact duplicates (user, item, type, ts) within the batch or
                             of stored events; the first one wins. Not counted in a dry run. */
    uint64_t written;     /* records committed: new events, items and users rows from the files (users and items
                             created implicitly by events are counted in new_users / new_items instead);
                             0 after a rollback or dry run */
    uint64_t new_users, new_items;
    int committed;        /* 1 if the batch was committed */
    char **errors;        /* the first max_errors messages, "file:line: field `f`: reason" (owned) */
    size_t n_errors;
    double parse_seconds; /* time the caller's thread spent reading and validating (the rest of total_seconds
                             it waited for the store; store writes overlap with parsing) */
    double total_seconds; /* wall time of the whole batch, commit included */
} mp_import_report;

/* Frees the messages in a report (the struct itself is caller-owned). */
MP_EXPORT void mp_import_report_free(mp_import_report *rep);

typedef struct mp_importer mp_importer;

/* Starts a batch on `s` (begins a transaction, loads id maps). `opts` is copied. */
MP_EXPORT int mp_importer_begin(mp_importer **out, mp_store *s, const mp_import_opts *opts, mp_error *err);
/* Adds one validated record. Unknown users and items referenced by events are created with bare ids.
 * Returns MP_OK, or a fatal error (storage); validation errors are the reader's job, except one: an item / user
 * whose `embedding` has another dimension than the ones before it (in the store or the batch) is MP_EBADREC
 * (err: "field `embedding`: ..."; nothing is counted or written: report it with mp_importer_reject). A record's
 * embedding is stored under the source "user" (mp_store_put_embedding). */
MP_EXPORT int mp_importer_add_event(mp_importer *im, const mp_event *e, mp_error *err);
MP_EXPORT int mp_importer_add_item(mp_importer *im, const mp_item *it, mp_error *err);
MP_EXPORT int mp_importer_add_user(mp_importer *im, const mp_user *u, mp_error *err);
/* Records a rejected record: `message` is the error text, `raw` the raw input line (may be empty). */
MP_EXPORT int mp_importer_reject(mp_importer *im, const char *file, uint64_t line, const char *message, mp_str raw,
                                 mp_error *err);
/* Ends the batch: commits (if no rejects, or rejects_path is set, and not dry_run) or rolls back; fills *rep
 * (caller frees with mp_import_report_free) and frees the importer. Returns MP_EBADREC when the batch was
 * rejected because of bad records (err names the first), MP_OK when committed. */
MP_EXPORT int mp_importer_finish(mp_importer *im, mp_import_report *rep, mp_error *err);
/* Abandons the batch (rollback) and frees. NULL is a no-op. */
MP_EXPORT void mp_importer_abort(mp_importer *im);

/* Reads and imports files of one kind as one batch (readers + importer). */
MP_EXPORT int mp_import_files(mp_store *s, mp_record_kind kind, const char *const *paths, size_t n_paths,
                              const mp_import_opts *opts, mp_import_report *rep, mp_error *err);

/* Importers for the real public datasets (see ../shared/data/<name>/SOURCE.md), one batch each:
 *   movielens    PATH = ml-100k folder: u.data (rating events with value), u.item (titles, genres), u.user
 *   s3rec        PATH = Beauty.txt (or its folder): sequences; ts = position; categories from *_item2attributes.json
 *   tianchi      PATH = folder: ecomm_edge_train.txt (click/fav/cart/purchase by day), ecomm_item_feature.txt
 *   obd          PATH = open-bandit-dataset/<policy>/<campaign> folder or csv: impressions as view, clicks as click
 *   amazon-games PATH = folder: Games-6k.test.inter sequences (ts = position), Games-6k.item titles
 *   reviews-zh   PATH = folder or csv parts: each review a review event (value = label) on its category
 *   reviews-en   PATH = AMAZON_FASHION_5.json (or folder): review events with rating value and text
 * Unknown names give MP_EINVAL listing the known ones. */
MP_EXPORT int mp_import_preset(mp_store *s, const char *preset, const char *path, const mp_import_opts *opts,
                               mp_import_report *rep, mp_error *err);
/* NULL-terminated list of preset names (static). */
MP_EXPORT const char *const *mp_preset_names(void);

#endif
