/* The public mp_store_* functions: pick a backend by URI, then dispatch through its operations table. */
#include <math.h>
#include <string.h>

#include "store/backend.h"

int mp_store_open(mp_store **out, const char *uri, mp_store_mode mode, mp_error *err) {
    if (!out) return mp_error_set(err, MP_EINVAL, "mp_store_open: out is NULL");
    *out = NULL;
    if (!uri || !*uri) return mp_error_set(err, MP_EINVAL, "store: empty path (give --db PATH or set MAGPIE_DB)");
    if (mp_store_uri_is_postgres(uri)) return mp_postgres_open(out, uri, mode, err);
    const char *path = mp_store_uri_file(uri);
    if (!path)
        return mp_error_set(err, MP_EUNSUPPORTED,
                            "store \"%s\": unknown URI scheme (use a file path, sqlite:PATH or postgres://...)", uri);
    if (!*path) return mp_error_set(err, MP_EINVAL, "store \"%s\": empty path", uri);
    return mp_sqlite_open(out, path, mode, err);
}

int mp_store_uri_is_postgres(const char *uri) {
    return uri && (!strncmp(uri, "postgres://", 11) || !strncmp(uri, "postgresql://", 13));
}

const char *mp_store_uri_file(const char *uri) {
    if (!uri || mp_store_uri_is_postgres(uri)) return NULL;
    if (!strncmp(uri, "sqlite:", 7)) {
        const char *path = uri + 7;
        if (!strncmp(path, "//", 2)) path += 2; /* sqlite:///abs/path and sqlite://rel both work */
        return path;
    }
    return strstr(uri, "://") ? NULL : uri;
}

void mp_store_close(mp_store *s) {
    if (s) s->ops->close(s);
}

int mp_store_begin(mp_store *s, mp_error *err) {
    if (s->in_txn) return mp_error_set(err, MP_EINVAL, "store: a transaction is already open");
    int rc = s->ops->begin(s, err);
    if (rc == MP_OK) s->in_txn = 1;
    return rc;
}

int mp_store_commit(mp_store *s, mp_error *err) {
    if (!s->in_txn) return mp_error_set(err, MP_EINVAL, "store: commit without begin");
    int rc = s->ops->commit(s, err);
    if (rc == MP_OK) s->in_txn = 0;
    return rc;
}

int mp_store_rollback(mp_store *s, mp_error *err) {
    if (!s->in_txn) return MP_OK;
    int rc = s->ops->rollback(s, err);
    s->in_txn = 0;
    return rc;
}

int mp_store_load_ids(mp_store *s, mp_record_kind kind, mp_strmap **out, mp_error *err) {
    if (kind != MP_KIND_USERS && kind != MP_KIND_ITEMS)
        return mp_error_set(err, MP_EINVAL, "mp_store_load_ids: kind must be users or items");
    return s->ops->load_ids(s, kind, out, err);
}

int mp_store_put_user(mp_store *s, uint32_t id, const mp_user *u, mp_error *err) {
    if (mp_store_is_tombstone(u->id.ptr, u->id.len))
        return mp_error_set(err, MP_EINVAL, "store: user id %u: an external id must be valid UTF-8", id);
    return s->ops->put_user(s, id, u, err);
}

int mp_store_put_item(mp_store *s, uint32_t id, const mp_item *it, mp_error *err) {
    if (mp_store_is_tombstone(it->id.ptr, it->id.len))
        return mp_error_set(err, MP_EINVAL, "store: item id %u: an external id must be valid UTF-8", id);
    return s->ops->put_item(s, id, it, err);
}

/* Forget and availability run inside the caller's transaction, or inside one of their own (committed on success,
 * else rolled back): `own` says which. */
static int own_begin(mp_store *s, int *own, mp_error *err) {
    *own = !s->in_txn;
    return *own ? mp_store_begin(s, err) : MP_OK;
}

static int own_end(mp_store *s, int own, int rc, mp_error *err) {
    if (!own) return rc;
    if (rc == MP_OK) rc = mp_store_commit(s, err);
    if (rc != MP_OK) mp_store_rollback(s, NULL);
    return rc;
}

int mp_store_forget_user(mp_store *s, uint32_t user, uint64_t *n_events, mp_error *err) {
    if (n_events) *n_events = 0;
    int own;
    int rc = own_begin(s, &own, err);
    if (rc) return rc;
    rc = own_end(s, own, s->ops->forget_user(s, user, n_events, err), err);
    if (rc != MP_OK && n_events) *n_events = 0;
    return rc;
}

int mp_store_set_item_available(mp_store *s, uint32_t item, int available, mp_error *err) {
    int own;
    int rc = own_begin(s, &own, err);
    if (rc) return rc;
    return own_end(s, own, s->ops->set_item_available(s, item, available ? 1 : 0, err), err);
}

int mp_store_add_event(mp_store *s, const mp_event_row *e, int *inserted, mp_error *err) {
    return s->ops->add_event(s, e, inserted, err);
}

int mp_store_add_events(mp_store *s, const mp_event_row *rows, size_t n, uint64_t *n_inserted, mp_error *err) {
    return s->ops->add_events(s, rows, n, n_inserted, err);
}

int mp_store_scan_events(mp_store *s, mp_event_cb cb, void *ctx, mp_error *err) {
    return s->ops->scan_events(s, cb, ctx, err);
}

int mp_store_scan_items(mp_store *s, mp_item_cb cb, void *ctx, mp_error *err) {
    return s->ops->scan_items(s, cb, ctx, err);
}

int mp_store_scan_users(mp_store *s, mp_user_cb cb, void *ctx, mp_error *err) {
    return s->ops->scan_users(s, cb, ctx, err);
}

int mp_store_stats_get(mp_store *s, mp_store_stats *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    return s->ops->stats(s, out, err);
}

int mp_store_meta_get(mp_store *s, const char *key, char **value, mp_error *err) {
    *value = NULL;
    return s->ops->meta_get(s, key, value, err);
}

int mp_store_meta_set(mp_store *s, const char *key, const char *value, mp_error *err) {
    return s->ops->meta_set(s, key, value, err);
}

/* ---- embeddings: argument checks shared by every backend ---- */

static int check_emb_args(mp_record_kind kind, const char *source, const char *fn, mp_error *err) {
    if (kind != MP_KIND_ITEMS && kind != MP_KIND_USERS)
        return mp_error_set(err, MP_EINVAL, "%s: kind must be items or users", fn);
    if (!source || !*source)
        return mp_error_set(err, MP_EINVAL, "%s: empty source (use \"user\" for supplied vectors)", fn);
    if (strlen(source) > MP_MAX_EMBEDDING_SOURCE)
        return mp_error_set(err, MP_EINVAL, "%s: source \"%.40s...\" is longer than %d bytes", fn, source,
                            MP_MAX_EMBEDDING_SOURCE);
    return MP_OK;
}

int mp_store_put_embedding(mp_store *s, mp_record_kind kind, uint32_t id, const char *source, const float *v,
                           uint32_t dim, uint64_t text_hash, mp_error *err) {
    int rc = check_emb_args(kind, source, "store: put embedding", err);
    if (rc) return rc;
    if (dim == 0 || dim > MP_MAX_EMBEDDING_DIM || !v)
        return mp_error_set(err, MP_EINVAL, "store: %s id %u: embedding dimension %u is outside 1..%d",
                            kind == MP_KIND_ITEMS ? "item" : "user", id, dim, MP_MAX_EMBEDDING_DIM);
    for (uint32_t i = 0; i < dim; i++)
        if (!isfinite(v[i]))
            return mp_error_set(err, MP_EINVAL, "store: %s id %u: embedding value %u of %u is not finite",
                                kind == MP_KIND_ITEMS ? "item" : "user", id, i + 1, dim);
    return s->ops->put_embedding(s, kind, id, source, v, dim, text_hash, err);
}

int mp_store_get_embedding(mp_store *s, mp_record_kind kind, uint32_t id, const char *source, float *v, uint32_t cap,
                           uint32_t *dim, uint64_t *text_hash, mp_error *err) {
    int rc = check_emb_args(kind, source, "store: get embedding", err);
    if (rc) return rc;
    return s->ops->get_embedding(s, kind, id, source, v, cap, dim, text_hash, err);
}

int mp_store_scan_embeddings(mp_store *s, mp_record_kind kind, const char *source, mp_embedding_cb cb, void *ctx,
                             mp_error *err) {
    int rc = check_emb_args(kind, source, "store: scan embeddings", err);
    if (rc) return rc;
    return s->ops->scan_embeddings(s, kind, source, cb, ctx, err);
}

int mp_store_delete_embeddings(mp_store *s, mp_record_kind kind, const char *source, uint64_t *n_deleted,
                               mp_error *err) {
    if (n_deleted) *n_deleted = 0;
    int rc = check_emb_args(kind, source, "store: delete embeddings", err);
    if (rc) return rc;
    return s->ops->delete_embeddings(s, kind, source, n_deleted, err);
}
