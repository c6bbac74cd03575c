#include <sqlite3.h>
#include <stdlib.h>

#include "magpie/dataset.h"
#include "magpie/ingest.h"
#include "magpie/store.h"
#include "test.h"

static mp_str S(const char *s) {
    mp_str r = {s, strlen(s)};
    return r;
}

static const char *db_path(mp_test_ctx *t, const char *name) {
    static char buf[4][1024];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 1024, "%s/%s", mp_test_tmpdir(t), name);
    return b;
}

typedef struct {
    mp_event_row rows[64];
    char text[64][32];
    int n;
} collected;

static int collect_cb(void *ctx, const mp_event_row *e) {
    collected *c = ctx;
    if (c->n >= 64) return 1;
    c->rows[c->n] = *e;
    snprintf(c->text[c->n], sizeof c->text[0], "%.*s", (int)e->text.len, e->text.ptr);
    c->n++;
    return 0;
}

static int add_ev(mp_store *s, uint32_t user, uint32_t item, int type, int64_t ts, const char *text, mp_error *err,
                  int *inserted) {
    mp_event_row e = {.user = user, .item = item, .type = (uint8_t)type, .ts = ts, .text = S(text ? text : "")};
    return mp_store_add_event(s, &e, inserted, err);
}

MP_TEST(store_open_creates_schema_and_reopens) {
    mp_error err;
    mp_store *s;
    const char *path = db_path(t, "a.db");
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READWRITE, &err), &err);
    char *v = NULL;
    CHECK_EQ(mp_store_meta_get(s, "nope", &v, &err), MP_ENOTFOUND);
    CHECK_OK(mp_store_meta_set(s, "weights", "view=1", &err), &err);
    CHECK_EQ(mp_store_meta_set(s, "schema_version", "7", &err), MP_EINVAL);
    mp_store_close(s);
    mp_store_close(NULL);
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READONLY, &err), &err);
    CHECK_OK(mp_store_meta_get(s, "weights", &v, &err), &err);
    CHECK(strcmp(v, "view=1") == 0);
    free(v);
    CHECK_OK(mp_store_meta_get(s, "schema_version", &v, &err), &err);
    CHECK_EQ(atoi(v), MP_STORE_SCHEMA_VERSION);
    free(v);
    mp_store_close(s);
    /* the sqlite: prefix names the same file */
    char uri[1100];
    snprintf(uri, sizeof uri, "sqlite:%s", path);
    CHECK_OK(mp_store_open(&s, uri, MP_STORE_READONLY, &err), &err);
    mp_store_close(s);
}

MP_TEST(store_refuses_newer_version_and_foreign_files) {
    mp_error err;
    mp_store *s;
    const char *path = db_path(t, "v.db");
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READWRITE, &err), &err);
    mp_store_close(s);
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "UPDATE meta SET value = '99' WHERE key = 'schema_version'", 0, 0, 0) == SQLITE_OK);
    sqlite3_close(db);
    CHECK_EQ(mp_store_open(&s, path, MP_STORE_READWRITE, &err), MP_EVERSION);
    CHECK(s == NULL);
    CHECK_CONTAINS(err.msg, "schema version 99");
    CHECK_EQ(mp_store_open(&s, path, MP_STORE_READONLY, &err), MP_EVERSION);

    /* an SQLite file of someone else's is not silently taken over */
    const char *other = db_path(t, "other.db");
    CHECK(sqlite3_open(other, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "CREATE TABLE t(x)", 0, 0, 0) == SQLITE_OK);
    sqlite3_close(db);
    CHECK_EQ(mp_store_open(&s, other, MP_STORE_READWRITE, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "not a Magpie store");

    /* a text file is not a database */
    const char *txt = mp_test_write_file(t, "notes.db", "hello, this is not a database at all.................\n");
    CHECK_EQ(mp_store_open(&s, txt, MP_STORE_READWRITE, &err), MP_ECORRUPT);
}

MP_TEST(store_migrates_from_version_zero) {
    /* A file holding only an empty meta table (version 0) gets every migration applied in order. */
    mp_error err;
    const char *path = db_path(t, "m.db");
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)", 0, 0, 0) == SQLITE_OK);
    sqlite3_close(db);
    mp_store *s;
    CHECK_EQ(mp_store_open(&s, path, MP_STORE_READONLY, &err), MP_ECORRUPT); /* read-only cannot migrate */
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READWRITE, &err), &err);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 0);
    mp_store_close(s);
}

MP_TEST(store_readonly_missing_and_unsupported_uris) {
    mp_error err;
    mp_store *s = (mp_store *)&err; /* must be reset to NULL on failure */
    const char *path = db_path(t, "missing.db");
    CHECK_EQ(mp_store_open(&s, path, MP_STORE_READONLY, &err), MP_ENOTFOUND);
    CHECK(s == NULL);
    CHECK_CONTAINS(err.msg, "does not exist");
    FILE *f = fopen(path, "r");
    CHECK(f == NULL); /* a read-only open must not create the file */
    CHECK_EQ(mp_store_open(&s, "postgres://localhost/magpie", MP_STORE_READWRITE, &err), MP_EUNSUPPORTED);
    CHECK_CONTAINS(err.msg, "PostgreSQL");
    CHECK_EQ(mp_store_open(&s, "mysql://x", MP_STORE_READWRITE, &err), MP_EUNSUPPORTED);
    CHECK_EQ(mp_store_open(&s, mp_test_tmpdir(t), MP_STORE_READWRITE, &err), MP_EINVAL);
}

MP_TEST(store_events_scan_order_and_duplicates) {
    mp_error err;
    mp_store *s;
    CHECK_OK(mp_store_open(&s, db_path(t, "e.db"), MP_STORE_READWRITE, &err), &err);
    CHECK_OK(mp_store_begin(s, &err), &err);
    int ins;
    /* inserted out of order on purpose */
    CHECK_OK(add_ev(s, 1, 5, MP_EV_VIEW, 300, "c", &err, &ins), &err);
    CHECK_EQ(ins, 1);
    CHECK_OK(add_ev(s, 0, 9, MP_EV_CLICK, 200, "b", &err, &ins), &err);
    CHECK_OK(add_ev(s, 0, 7, MP_EV_VIEW, 100, "a", &err, &ins), &err);
    CHECK_OK(add_ev(s, 1, 2, MP_EV_PURCHASE, 300, "d", &err, &ins), &err); /* same ts as (1,5): item breaks tie */
    CHECK_OK(add_ev(s, 1, 2, MP_EV_VIEW, 300, "e", &err, &ins), &err);     /* then type */
    CHECK_EQ(ins, 1);
    /* exact duplicate of (0,7,view,100), different text: refused, first one kept */
    CHECK_OK(add_ev(s, 0, 7, MP_EV_VIEW, 100, "dup", &err, &ins), &err);
    CHECK_EQ(ins, 0);
    CHECK_OK(mp_store_commit(s, &err), &err);

    collected c = {.n = 0};
    CHECK_OK(mp_store_scan_events(s, collect_cb, &c, &err), &err);
    CHECK_EQ(c.n, 5);
    const char *order = "abedc";
    for (int i = 0; i < 5; i++)
        CHECK_MSG(c.text[i][0] == order[i], "row %d is %s", i, c.text[i]);
    CHECK_EQ(c.rows[2].type, MP_EV_VIEW);
    CHECK_EQ(c.rows[3].type, MP_EV_PURCHASE);
    CHECK_EQ(c.rows[0].has_value, 0);
    mp_store_close(s);
}

static int stop_after_two(void *ctx, const mp_event_row *e) {
    int *n = ctx;
    (void)e;
    return ++*n == 2 ? 42 : 0;
}

MP_TEST(store_rollback_discards_and_scan_stops) {
    mp_error err;
    mp_store *s;
    const char *path = db_path(t, "r.db");
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READWRITE, &err), &err);
    CHECK_OK(mp_store_begin(s, &err), &err);
    int ins;
    for (int i = 0; i < 5; i++)
        CHECK_OK(add_ev(s, 0, (uint32_t)i, MP_EV_VIEW, i, NULL, &err, &ins), &err);
    CHECK_OK(mp_store_commit(s, &err), &err);
    CHECK_OK(mp_store_begin(s, &err), &err);
    CHECK_EQ(mp_store_begin(s, &err), MP_EINVAL);
    CHECK_OK(add_ev(s, 3, 3, MP_EV_VIEW, 9, NULL, &err, &ins), &err);
    CHECK_OK(mp_store_rollback(s, &err), &err);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 5);
    int n = 0;
    CHECK_EQ(mp_store_scan_events(s, stop_after_two, &n, &err), 42);
    CHECK_EQ(n, 2);
    /* an open transaction is rolled back by close */
    CHECK_OK(mp_store_begin(s, &err), &err);
    CHECK_OK(add_ev(s, 4, 4, MP_EV_VIEW, 9, NULL, &err, &ins), &err);
    mp_store_close(s);
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READONLY, &err), &err);
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 5);
    mp_store_close(s);
}

typedef struct {
    int n;
    char ext[8][16];
    char title[8][32];
    double price[8];
    int has_price[8];
} item_list;

static int item_cb(void *ctx, uint32_t id, const mp_item *it) {
    item_list *l = ctx;
    if (id != (uint32_t)l->n) return -100;
    snprintf(l->ext[l->n], 16, "%.*s", (int)it->id.len, it->id.ptr);
    snprintf(l->title[l->n], 32, "%.*s", (int)it->title.len, it->title.ptr);
    l->price[l->n] = it->price;
    l->has_price[l->n] = it->has_price;
    l->n++;
    return 0;
}

MP_TEST(store_users_items_ids_and_bare_puts) {
    mp_error err;
    mp_store *s;
    CHECK_OK(mp_store_open(&s, db_path(t, "i.db"), MP_STORE_READWRITE, &err), &err);
    CHECK_OK(mp_store_begin(s, &err), &err);
    mp_item full = {.id = S("sku-1"), .title = S("Red mug"), .price = 9.5, .has_price = 1, .available = 1};
    mp_item bare = {.id = S("sku-1"), .available = 1};
    mp_item other = {.id = S("sku-2"), .available = 1};
    CHECK_OK(mp_store_put_item(s, 0, &full, &err), &err);
    CHECK_OK(mp_store_put_item(s, 0, &bare, &err), &err); /* must not wipe the title */
    CHECK_OK(mp_store_put_item(s, 1, &other, &err), &err);
    mp_item clash = {.id = S("sku-2"), .title = S("x"), .available = 1};
    CHECK_EQ(mp_store_put_item(s, 0, &clash, &err), MP_ESTORE); /* id 0 is sku-1 */
    CHECK_EQ(mp_store_put_item(s, 5, &clash, &err), MP_ESTORE); /* sku-2 is id 1 */
    CHECK_CONTAINS(err.msg, "sku-2");
    mp_user u = {.id = S("alice"), .attrs = S("{\"age\":30}")};
    CHECK_OK(mp_store_put_user(s, 0, &u, &err), &err);
    CHECK_OK(mp_store_commit(s, &err), &err);

    mp_strmap *m;
    CHECK_OK(mp_store_load_ids(s, MP_KIND_ITEMS, &m, &err), &err);
    CHECK_EQ(mp_strmap_size(m), 2);
    CHECK_EQ(mp_strmap_get(m, "sku-2", 5), 1);
    CHECK_EQ(mp_strmap_id_bound(m), 2);
    mp_strmap_destroy(m);
    CHECK_OK(mp_store_load_ids(s, MP_KIND_USERS, &m, &err), &err);
    CHECK_EQ(mp_strmap_get(m, "alice", 5), 0);
    mp_strmap_destroy(m);

    item_list l = {.n = 0};
    CHECK_OK(mp_store_scan_items(s, item_cb, &l, &err), &err);
    CHECK_EQ(l.n, 2);
    CHECK(strcmp(l.title[0], "Red mug") == 0);
    CHECK_NEAR(l.price[0], 9.5, 1e-12);
    CHECK_EQ(l.has_price[1], 0);
    mp_store_close(s);
}

MP_TEST(store_stats_counts) {
    mp_error err;
    mp_store *s;
    CHECK_OK(mp_store_open(&s, db_path(t, "s.db"), MP_STORE_READWRITE, &err), &err);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 0);
    CHECK_EQ(st.ts_min, 0);
    CHECK_NEAR(st.density, 0.0, 0);
    CHECK_OK(mp_store_begin(s, &err), &err);
    const char *names[] = {"u0", "u1", "u2"};
    for (uint32_t i = 0; i < 3; i++) {
        mp_user u = {.id = S(names[i])};
        CHECK_OK(mp_store_put_user(s, i, &u, &err), &err);
    }
    const char *inames[] = {"a", "b", "c", "d"};
    for (uint32_t i = 0; i < 4; i++) {
        mp_item it = {.id = S(inames[i]), .available = 1};
        CHECK_OK(mp_store_put_item(s, i, &it, &err), &err);
    }
    int ins;
    /* user 0: items 0,0,1 (two pairs); user 1: item 1 (one pair); user 2: no events; item 2,3 inactive */
    CHECK_OK(add_ev(s, 0, 0, MP_EV_VIEW, 1000, NULL, &err, &ins), &err);
    CHECK_OK(add_ev(s, 0, 0, MP_EV_PURCHASE, 1001, NULL, &err, &ins), &err);
    CHECK_OK(add_ev(s, 0, 1, MP_EV_VIEW, 500, NULL, &err, &ins), &err);
    CHECK_OK(add_ev(s, 1, 1, MP_EV_CART, 2000, NULL, &err, &ins), &err);
    CHECK_OK(mp_store_commit(s, &err), &err);
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 4);
    CHECK_EQ(st.per_type[MP_EV_VIEW], 2);
    CHECK_EQ(st.per_type[MP_EV_PURCHASE], 1);
    CHECK_EQ(st.per_type[MP_EV_CART], 1);
    CHECK_EQ(st.n_users, 3);
    CHECK_EQ(st.n_items, 4);
    CHECK_EQ(st.n_active_users, 2);
    CHECK_EQ(st.n_active_items, 2);
    CHECK_EQ(st.n_pairs, 3);
    CHECK_EQ(st.ts_min, 500);
    CHECK_EQ(st.ts_max, 2000);
    CHECK_NEAR(st.density, 3.0 / 4.0, 1e-12);
    mp_store_close(s);
}

MP_TEST(store_reader_sees_only_committed) {
    /* A second (read-only) connection sees only committed rows. */
    mp_error err;
    mp_store *a, *b;
    const char *path = db_path(t, "w.db");
    CHECK_OK(mp_store_open(&a, path, MP_STORE_READWRITE, &err), &err);
    CHECK_OK(mp_store_open(&b, path, MP_STORE_READONLY, &err), &err);
    CHECK_OK(mp_store_begin(a, &err), &err);
    int ins;
    CHECK_OK(add_ev(a, 0, 0, MP_EV_VIEW, 1, NULL, &err, &ins), &err);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(b, &st, &err), &err);
    CHECK_EQ(st.n_events, 0); /* not committed yet */
    CHECK_OK(mp_store_commit(a, &err), &err);
    CHECK_OK(mp_store_stats_get(b, &st, &err), &err);
    CHECK_EQ(st.n_events, 1);
    mp_store_close(a);
    mp_store_close(b);
}

typedef struct {
    int n;
    uint32_t id[8];
    char ext[8][32];
} user_list;

static int user_cb(void *ctx, uint32_t id, const mp_user *u) {
    user_list *l = ctx;
    if (l->n >= 8) return 1;
    l->id[l->n] = id;
    snprintf(l->ext[l->n], 32, "%.*s", (int)u->id.len, u->id.ptr);
    l->n++;
    return 0;
}

/* Imports one event through the importer (which allocates ids from mp_store_load_ids). */
static int import_event(mp_store *s, const char *user, const char *item, int64_t ts, mp_error *err) {
    mp_importer *im;
    mp_import_opts o = {0};
    int rc = mp_importer_begin(&im, s, &o, err);
    if (rc) return rc;
    mp_event e = {.user = S(user), .item = S(item), .type = MP_EV_PURCHASE, .ts = ts};
    rc = mp_importer_add_event(im, &e, err);
    if (rc) {
        mp_importer_abort(im);
        return rc;
    }
    mp_import_report rep;
    rc = mp_importer_finish(im, &rep, err);
    mp_import_report_free(&rep);
    return rc;
}

MP_TEST(store_forget_user_tombstone_keeps_id_reserved) {
    mp_error err;
    mp_store *s;
    const char *path = db_path(t, "f.db");
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READWRITE, &err), &err);
    CHECK_OK(import_event(s, "alice", "a", 10, &err), &err);
    CHECK_OK(import_event(s, "bob", "a", 11, &err), &err);
    CHECK_OK(import_event(s, "bob", "b", 12, &err), &err);
    CHECK_OK(import_event(s, "bob", "c", 13, &err), &err);
    mp_user attrs = {.id = S("bob"), .attrs = S("{\"vip\":true}")};
    CHECK_OK(mp_store_put_user(s, 1, &attrs, &err), &err);
    /* bob is the last id: forgetting him must not let the next user take id 1 */
    uint64_t n_del = 99;
    CHECK_OK(mp_store_forget_user(s, 1, &n_del, &err), &err);
    CHECK_EQ(n_del, 3);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 1);
    CHECK_EQ(st.n_users, 1);
    CHECK_EQ(st.n_active_users, 1);
    /* again, or an id that never existed: not found, nothing changes */
    CHECK_EQ(mp_store_forget_user(s, 1, &n_del, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "already forgotten");
    CHECK_EQ(n_del, 0);
    CHECK_EQ(mp_store_forget_user(s, 7, NULL, &err), MP_ENOTFOUND);
    /* the external id maps to nothing; the bound still covers the reserved id */
    mp_strmap *m;
    CHECK_OK(mp_store_load_ids(s, MP_KIND_USERS, &m, &err), &err);
    CHECK_EQ(mp_strmap_get(m, "bob", 3), MP_STRMAP_NONE);
    CHECK_EQ(mp_strmap_id_bound(m), 2);
    size_t klen;
    const char *key = mp_strmap_key(m, 1, &klen);
    CHECK(key && mp_store_is_tombstone(key, klen));
    CHECK(!mp_store_is_tombstone("bob", 3) && !mp_store_is_tombstone("", 0));
    mp_strmap_destroy(m);
    user_list l = {.n = 0};
    CHECK_OK(mp_store_scan_users(s, user_cb, &l, &err), &err);
    CHECK_EQ(l.n, 1);
    CHECK(strcmp(l.ext[0], "alice") == 0);
    /* the same external id comes back: a new user with a new internal id */
    CHECK_OK(import_event(s, "bob", "b", 20, &err), &err);
    CHECK_OK(import_event(s, "carol", "b", 21, &err), &err);
    CHECK_OK(mp_store_load_ids(s, MP_KIND_USERS, &m, &err), &err);
    CHECK_EQ(mp_strmap_get(m, "bob", 3), 2);
    CHECK_EQ(mp_strmap_get(m, "carol", 5), 3);
    mp_strmap_destroy(m);
    /* ids that look like tombstones are refused */
    mp_user fake = {.id = S(MP_STORE_TOMBSTONE_PREFIX "1")};
    CHECK_OK(mp_store_begin(s, &err), &err);
    CHECK_EQ(mp_store_put_user(s, 9, &fake, &err), MP_EINVAL);
    CHECK_OK(mp_store_rollback(s, &err), &err);
    mp_store_close(s);

    /* reopened: the dataset sees no trace of the forgotten user, and ids keep their meaning */
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READONLY, &err), &err);
    mp_dataset *ds;
    CHECK_OK(mp_dataset_load(&ds, s, NULL, &err), &err);
    CHECK_EQ(ds->n_events, 3);
    CHECK_EQ(ds->n_users, 4);
    CHECK(ds->user_ext[1] == NULL);
    CHECK(strcmp(ds->user_ext[2], "bob") == 0);
    CHECK_EQ(ds->user_ptr[2] - ds->user_ptr[1], 0);
    mp_dataset_destroy(ds);
    mp_store_close(s);
}

MP_TEST(store_set_item_available) {
    mp_error err;
    mp_store *s;
    CHECK_OK(mp_store_open(&s, db_path(t, "av.db"), MP_STORE_READWRITE, &err), &err);
    CHECK_OK(mp_store_begin(s, &err), &err);
    mp_item it = {.id = S("sku-1"), .title = S("Mug"), .available = 1};
    CHECK_OK(mp_store_put_item(s, 0, &it, &err), &err);
    CHECK_OK(mp_store_commit(s, &err), &err);
    CHECK_OK(mp_store_set_item_available(s, 0, 0, &err), &err); /* its own transaction */
    CHECK_EQ(mp_store_set_item_available(s, 5, 0, &err), MP_ENOTFOUND);
    mp_dataset *ds;
    CHECK_OK(mp_dataset_load(&ds, s, NULL, &err), &err);
    CHECK_EQ(ds->item_available[0], 0);
    CHECK(strcmp(ds->item_title[0], "Mug") == 0); /* other attributes kept */
    mp_dataset_destroy(ds);
    /* inside a caller's transaction: rolled back with it */
    CHECK_OK(mp_store_begin(s, &err), &err);
    CHECK_OK(mp_store_set_item_available(s, 0, 1, &err), &err);
    CHECK_OK(mp_store_rollback(s, &err), &err);
    CHECK_OK(mp_dataset_load(&ds, s, NULL, &err), &err);
    CHECK_EQ(ds->item_available[0], 0);
    mp_dataset_destroy(ds);
    mp_store_close(s);
}

MP_TEST(store_bare_put_refuses_clashes) {
    /* Two writers handing out ids from their own memory (a server and an import) must not mix rows up. */
    mp_error err;
    mp_store *s;
    CHECK_OK(mp_store_open(&s, db_path(t, "c.db"), MP_STORE_READWRITE, &err), &err);
    CHECK_OK(mp_store_begin(s, &err), &err);
    mp_user a = {.id = S("alice")}, b = {.id = S("bob")};
    CHECK_OK(mp_store_put_user(s, 0, &a, &err), &err);
    CHECK_OK(mp_store_put_user(s, 0, &a, &err), &err); /* the same pair again: fine */
    CHECK_EQ(mp_store_put_user(s, 0, &b, &err), MP_ESTORE);
    CHECK_CONTAINS(err.msg, "user id 0 belongs to another external id");
    CHECK_EQ(mp_store_put_user(s, 3, &a, &err), MP_ESTORE);
    CHECK_CONTAINS(err.msg, "\"alice\" already exists under another id");
    mp_item i1 = {.id = S("sku-1"), .available = 1}, i2 = {.id = S("sku-2"), .available = 1};
    CHECK_OK(mp_store_put_item(s, 0, &i1, &err), &err);
    CHECK_EQ(mp_store_put_item(s, 0, &i2, &err), MP_ESTORE);
    CHECK_OK(mp_store_commit(s, &err), &err);
    mp_store_close(s);
}
