/* src/store/backend.h: what a storage backend implements. mp_store (store.c) is a thin dispatcher over an
 * operations table, so a backend is one more table (sqlite.c, postgres.c); nothing outside src/store/
 * includes this header. Every operation has the contract of the public function of the same name in
 * include/magpie/store.h. */
#ifndef MAGPIE_STORE_BACKEND_H
#define MAGPIE_STORE_BACKEND_H

#include "magpie/store.h"

typedef struct mp_store_ops {
    const char *name; /* "sqlite", "postgres" */
    void (*close)(mp_store *s);
    int (*begin)(mp_store *s, mp_error *err);
    int (*commit)(mp_store *s, mp_error *err);
    int (*rollback)(mp_store *s, mp_error *err);
    int (*load_ids)(mp_store *s, mp_record_kind kind, mp_strmap **out, mp_error *err);
    int (*put_user)(mp_store *s, uint32_t id, const mp_user *u, mp_error *err);
    int (*put_item)(mp_store *s, uint32_t id, const mp_item *it, mp_error *err);
    int (*add_event)(mp_store *s, const mp_event_row *e, int *inserted, mp_error *err);
    int (*add_events)(mp_store *s, const mp_event_row *rows, size_t n, uint64_t *n_inserted, mp_error *err);
    int (*scan_events)(mp_store *s, mp_event_cb cb, void *ctx, mp_error *err);
    int (*scan_items)(mp_store *s, mp_item_cb cb, void *ctx, mp_error *err);
    int (*scan_users)(mp_store *s, mp_user_cb cb, void *ctx, mp_error *err);
    int (*stats)(mp_store *s, mp_store_stats *out, mp_error *err);
    int (*meta_get)(mp_store *s, const char *key, char **value, mp_error *err);
    int (*meta_set)(mp_store *s, const char *key, const char *value, mp_error *err);
    /* Called inside a transaction (store.c opens one when the caller has none). */
    int (*forget_user)(mp_store *s, uint32_t user, uint64_t *n_events, mp_error *err);
    int (*set_item_available)(mp_store *s, uint32_t item, int available, mp_error *err);
    /* Embeddings: store.c has checked kind, source, dim and finiteness before these are called. */
    int (*put_embedding)(mp_store *s, mp_record_kind kind, uint32_t id, const char *source, const float *v,
                         uint32_t dim, uint64_t text_hash, mp_error *err);
    int (*get_embedding)(mp_store *s, mp_record_kind kind, uint32_t id, const char *source, float *v, uint32_t cap,
                         uint32_t *dim, uint64_t *text_hash, mp_error *err);
    int (*scan_embeddings)(mp_store *s, mp_record_kind kind, const char *source, mp_embedding_cb cb, void *ctx,
                           mp_error *err);
    int (*delete_embeddings)(mp_store *s, mp_record_kind kind, const char *source, uint64_t *n_deleted,
                             mp_error *err);
} mp_store_ops;

/* Every backend's handle starts with this header; store.c only looks at `ops`. */
struct mp_store {
    const mp_store_ops *ops;
    int in_txn; /* 1 between begin and commit/rollback */
};

/* Opens the embedded SQLite backend on `path` (sqlite.c). */
int mp_sqlite_open(mp_store **out, const char *path, mp_store_mode mode, mp_error *err);
/* Opens the PostgreSQL backend on a postgres:// or postgresql:// URI (postgres.c). */
int mp_postgres_open(mp_store **out, const char *uri, mp_store_mode mode, mp_error *err);

#endif
