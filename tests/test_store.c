/* tests/test_store.c: the store's contract, run against both backends. Every test body takes a fixture and runs
 * twice: MP_TEST(store_X_sqlite) on files in the test's temporary directory, MP_TEST(store_X_pg) on PostgreSQL, in
 * schemas of their own (so tests never see each other's data) of the database named by MAGPIE_TEST_PG, a postgres://
 * URI. scripts/test.sh starts a throwaway server (tests/pg.sh) and sets MAGPIE_TEST_PG and MAGPIE_TEST_PG_REQUIRED=1;
 * there a missing MAGPIE_TEST_PG makes every PostgreSQL variant FAIL. Run alone without it (a developer running
 * build/magpie-tests), they report "not run" instead, counted apart from passed and failed.
 *   eval "$(tests/pg.sh start)"; build/magpie-tests store_; tests/pg.sh stop "$MAGPIE_TEST_PG_DIR" */
#include <libpq-fe.h>
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

typedef struct fx {
    mp_test_ctx *t;
    int pg;          /* 1: PostgreSQL, 0: SQLite */
    char uris[6][1024]; /* the stores made by fx_store, rotated */
    char schemas[6][64];
    int n;
} fx;

/* The admin connection to the PostgreSQL test database (one per test process, reachable until exit). */
static PGconn *pg_admin(mp_test_ctx *t) {
    static PGconn *conn;
    if (conn && PQstatus(conn) == CONNECTION_OK) return conn;
    if (conn) PQfinish(conn);
    conn = PQconnectdb(getenv("MAGPIE_TEST_PG"));
    if (PQstatus(conn) != CONNECTION_OK) {
        mp_test_fail(t, __FILE__, __LINE__, "cannot connect to MAGPIE_TEST_PG: %s", PQerrorMessage(conn));
        return NULL;
    }
    PGresult *r = PQexec(conn, "SET client_min_messages = warning");
    PQclear(r);
    return conn;
}

/* Runs SQL on the admin connection; 0 on success (else the test is marked failed). */
static int pg_exec(mp_test_ctx *t, const char *sql) {
    PGconn *c = pg_admin(t);
    if (!c) return -1;
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) mp_test_fail(t, __FILE__, __LINE__, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

/* The URI of a new, empty store called `name` in this test: a file path, or a fresh schema. `extra` (may be NULL)
 * is appended to a PostgreSQL URI's parameters ("application_name=x"). NULL (test failed) when it cannot be made. */
static const char *fx_store_ex(fx *f, const char *name, const char *extra) {
    int k = f->n++ % 6;
    char *uri = f->uris[k];
    if (!f->pg) {
        snprintf(uri, 1024, "%s/%s", mp_test_tmpdir(f->t), name);
        return uri;
    }
    uint32_t h = 2166136261u;
    for (const char *c = f->t->name; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    char schema[64];
    int o = snprintf(schema, sizeof schema, "t_%08x_", h);
    for (const char *c = name; *c && o < 60; c++)
        schema[o++] = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ? *c : '_';
    schema[o] = 0;
    memcpy(f->schemas[k], schema, sizeof schema);
    char sql[256];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
    if (pg_exec(f->t, sql)) return NULL;
    const char *base = getenv("MAGPIE_TEST_PG");
    snprintf(uri, 1024, "%s%soptions=-csearch_path%%3D%s%s%s", base, strchr(base, '?') ? "&" : "?", schema,
             extra ? "&" : "", extra ? extra : "");
    return uri;
}

static const char *fx_store(fx *f, const char *name) {
    return fx_store_ex(f, name, NULL);
}

/* Runs SQL directly in the store made by the last fx_store call (outside Magpie): sqlite3 on the file, or the admin
 * connection with the store's schema first on the search_path. 0 on success. */
static int fx_sql(fx *f, const char *sql) {
    int k = (f->n - 1) % 6;
    if (!f->pg) {
        sqlite3 *db;
        if (sqlite3_open(f->uris[k], &db) != SQLITE_OK) return -1;
        char *msg = NULL;
        int rc = sqlite3_exec(db, sql, 0, 0, &msg);
        if (rc != SQLITE_OK) mp_test_fail(f->t, __FILE__, __LINE__, "%s: %s", sql, msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(db);
        return rc == SQLITE_OK ? 0 : -1;
    }
    char path[128];
    snprintf(path, sizeof path, "SET search_path = %s", f->schemas[k]);
    int rc = pg_exec(f->t, path);
    if (rc == 0) rc = pg_exec(f->t, sql);
    pg_exec(f->t, "RESET search_path");
    return rc;
}

typedef void (*store_body)(mp_test_ctx *t, fx *f);

static void run_sqlite(mp_test_ctx *t, store_body body) {
    fx f = {.t = t, .pg = 0};
    body(t, &f);
}

static void run_pg(mp_test_ctx *t, store_body body) {
    const char *uri = getenv("MAGPIE_TEST_PG");
    if (!uri || !*uri) {
        const char *req = getenv("MAGPIE_TEST_PG_REQUIRED");
        if (req && *req && strcmp(req, "0"))
            mp_test_fail(t, __FILE__, __LINE__,
                         "MAGPIE_TEST_PG is not set, but this run requires the PostgreSQL variants "
                         "(MAGPIE_TEST_PG_REQUIRED): did tests/pg.sh start fail?");
        else
            mp_test_not_run(t, "MAGPIE_TEST_PG is unset (eval \"$(tests/pg.sh start)\" to run the PostgreSQL "
                               "variants; scripts/test.sh always does)");
        return;
    }
    fx f = {.t = t, .pg = 1};
    if (!pg_admin(t)) return;
    body(t, &f);
}

/* One test body, two registered tests (the Makefile collects MP_TEST lines, so they are written out). */
#define BOTH(name) static void body_##name(mp_test_ctx *t, fx *f)

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

BOTH(open_creates_schema_and_reopens) {
    mp_error err;
    mp_store *s;
    const char *path = fx_store(f, "a.db");
    CHECK(path);
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READWRITE, &err), &err);
    char *v = NULL;
    CHECK_EQ(mp_store_meta_get(s, "nope", &v, &err), MP_ENOTFOUND);
    CHECK_OK(mp_store_meta_set(s, "weights", "view=1", &err), &err);
    CHECK_OK(mp_store_meta_set(s, "weights", "view=2", &err), &err); /* replaces */
    CHECK_EQ(mp_store_meta_set(s, "schema_version", "7", &err), MP_EINVAL);
    mp_store_close(s);
    mp_store_close(NULL);
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READONLY, &err), &err);
    CHECK_OK(mp_store_meta_get(s, "weights", &v, &err), &err);
    CHECK(strcmp(v, "view=2") == 0);
    free(v);
    CHECK_OK(mp_store_meta_get(s, "schema_version", &v, &err), &err);
    CHECK_EQ(atoi(v), MP_STORE_SCHEMA_VERSION);
    free(v);
    CHECK_OK(mp_store_meta_get(s, "created_at", &v, &err), &err);
    CHECK(atol(v) > 1600000000);
    free(v);
    /* a read-only handle cannot write */
    CHECK_EQ(mp_store_meta_set(s, "weights", "x", &err), MP_ESTORE);
    mp_store_close(s);
    if (!f->pg) { /* the sqlite: prefix names the same file */
        char uri[1100];
        snprintf(uri, sizeof uri, "sqlite:%s", path);
        CHECK_OK(mp_store_open(&s, uri, MP_STORE_READONLY, &err), &err);
        mp_store_close(s);
        CHECK(mp_store_uri_file(uri) && strcmp(mp_store_uri_file(uri), path) == 0);
    } else {
        CHECK(mp_store_uri_is_postgres(path));
        CHECK(mp_store_uri_file(path) == NULL);
    }
}
MP_TEST(store_open_creates_schema_and_reopens_sqlite) { run_sqlite(t, body_open_creates_schema_and_reopens); }
MP_TEST(store_open_creates_schema_and_reopens_pg) { run_pg(t, body_open_creates_schema_and_reopens); }

BOTH(refuses_newer_version_and_foreign_stores) {
    mp_error err;
    mp_store *s;
    const char *path = fx_store(f, "v.db");
    CHECK(path);
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READWRITE, &err), &err);
    mp_store_close(s);
    CHECK(fx_sql(f, "UPDATE meta SET value = '99' WHERE key = 'schema_version'") == 0);
    CHECK_EQ(mp_store_open(&s, path, MP_STORE_READWRITE, &err), MP_EVERSION);
    CHECK(s == NULL);
    CHECK_CONTAINS(err.msg, "schema version 99");
    char supported[64];
    snprintf(supported, sizeof supported, "up to version %d", MP_STORE_SCHEMA_VERSION);
    CHECK_CONTAINS(err.msg, supported);
    CHECK_EQ(mp_store_open(&s, path, MP_STORE_READONLY, &err), MP_EVERSION);
    CHECK(fx_sql(f, "UPDATE meta SET value = 'two' WHERE key = 'schema_version'") == 0);
    CHECK_EQ(mp_store_open(&s, path, MP_STORE_READWRITE, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "not a number");

    /* a database of someone else's is not silently taken over */
    const char *other = fx_store(f, "other.db");
    CHECK(other);
    CHECK(fx_sql(f, "CREATE TABLE t(x integer)") == 0);
    CHECK_EQ(mp_store_open(&s, other, MP_STORE_READWRITE, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "not a Magpie store");

    if (!f->pg) { /* a text file is not a database */
        const char *txt = mp_test_write_file(t, "notes.db", "hello, this is not a database at all.................\n");
        CHECK_EQ(mp_store_open(&s, txt, MP_STORE_READWRITE, &err), MP_ECORRUPT);
    }
}
MP_TEST(store_refuses_newer_version_and_foreign_stores_sqlite) { run_sqlite(t, body_refuses_newer_version_and_foreign_stores); }
MP_TEST(store_refuses_newer_version_and_foreign_stores_pg) { run_pg(t, body_refuses_newer_version_and_foreign_stores); }

BOTH(migrates_from_version_zero) {
    /* A store holding only an empty meta table (version 0) gets every migration applied in order. */
    mp_error err;
    const char *path = fx_store(f, "m.db");
    CHECK(path);
    CHECK(fx_sql(f, "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)") == 0);
    mp_store *s;
    /* read-only cannot migrate (SQLite: an empty file is damaged; PostgreSQL: no store in the schema yet) */
    CHECK_EQ(mp_store_open(&s, path, MP_STORE_READONLY, &err), f->pg ? MP_ENOTFOUND : MP_ECORRUPT);
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READWRITE, &err), &err);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 0);
    float v[2] = {1, 2};
    mp_item it = {.id = S("x"), .available = 1};
    CHECK_OK(mp_store_put_item(s, 0, &it, &err), &err);
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 0, "user", v, 2, 0, &err), &err); /* version 2's table */
    mp_store_close(s);
}
MP_TEST(store_migrates_from_version_zero_sqlite) { run_sqlite(t, body_migrates_from_version_zero); }
MP_TEST(store_migrates_from_version_zero_pg) { run_pg(t, body_migrates_from_version_zero); }

BOTH(migrates_from_version_one) {
    /* A version-1 store (no embeddings table): read-only it has no embeddings; read-write migrates it. */
    mp_error err;
    const char *path = fx_store(f, "one.db");
    CHECK(path);
    mp_store *s;
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READWRITE, &err), &err);
    mp_item it = {.id = S("x"), .available = 1};
    CHECK_OK(mp_store_put_item(s, 0, &it, &err), &err);
    mp_store_close(s);
    CHECK(fx_sql(f, "DROP TABLE embeddings; UPDATE meta SET value = '1' WHERE key = 'schema_version'") == 0);
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READONLY, &err), &err);
    float v[2];
    uint32_t dim;
    CHECK_EQ(mp_store_get_embedding(s, MP_KIND_ITEMS, 0, "user", v, 2, &dim, NULL, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "predates embeddings");
    mp_store_close(s);
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READWRITE, &err), &err);
    const float w[2] = {3, 4};
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 0, "user", w, 2, 0, &err), &err);
    char *ver = NULL;
    CHECK_OK(mp_store_meta_get(s, "schema_version", &ver, &err), &err);
    CHECK_EQ(atoi(ver), MP_STORE_SCHEMA_VERSION);
    free(ver);
    mp_store_close(s);
}
MP_TEST(store_migrates_from_version_one_sqlite) { run_sqlite(t, body_migrates_from_version_one); }
MP_TEST(store_migrates_from_version_one_pg) { run_pg(t, body_migrates_from_version_one); }

BOTH(readonly_missing) {
    mp_error err;
    mp_store *s = (mp_store *)&err; /* must be reset to NULL on failure */
    const char *path = fx_store(f, "missing.db");
    CHECK(path);
    CHECK_EQ(mp_store_open(&s, path, MP_STORE_READONLY, &err), MP_ENOTFOUND);
    CHECK(s == NULL);
    CHECK_CONTAINS(err.msg, "does not exist");
    CHECK_CONTAINS(err.msg, "import data first");
    /* a read-only open must not create anything: a read-write open afterwards finds an empty store */
    CHECK_EQ(mp_store_open(&s, path, MP_STORE_READONLY, &err), MP_ENOTFOUND);
    if (!f->pg) {
        FILE *fp = fopen(path, "r");
        CHECK(fp == NULL);
        CHECK_EQ(mp_store_open(&s, mp_test_tmpdir(t), MP_STORE_READWRITE, &err), MP_EINVAL);
    }
    CHECK_EQ(mp_store_open(&s, "mysql://x", MP_STORE_READWRITE, &err), MP_EUNSUPPORTED);
    CHECK_EQ(mp_store_open(&s, "", MP_STORE_READWRITE, &err), MP_EINVAL);
}
MP_TEST(store_readonly_missing_sqlite) { run_sqlite(t, body_readonly_missing); }
MP_TEST(store_readonly_missing_pg) { run_pg(t, body_readonly_missing); }

BOTH(events_scan_order_and_duplicates) {
    mp_error err;
    mp_store *s;
    CHECK_OK(mp_store_open(&s, fx_store(f, "e.db"), MP_STORE_READWRITE, &err), &err);
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
MP_TEST(store_events_scan_order_and_duplicates_sqlite) { run_sqlite(t, body_events_scan_order_and_duplicates); }
MP_TEST(store_events_scan_order_and_duplicates_pg) { run_pg(t, body_events_scan_order_and_duplicates); }

static int stop_after_two(void *ctx, const mp_event_row *e) {
    int *n = ctx;
    (void)e;
    return ++*n == 2 ? 42 : 0;
}

BOTH(rollback_discards_and_scan_stops) {
    mp_error err;
    mp_store *s;
    const char *path = fx_store(f, "r.db");
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
MP_TEST(store_rollback_discards_and_scan_stops_sqlite) { run_sqlite(t, body_rollback_discards_and_scan_stops); }
MP_TEST(store_rollback_discards_and_scan_stops_pg) { run_pg(t, body_rollback_discards_and_scan_stops); }

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

BOTH(users_items_ids_and_bare_puts) {
    mp_error err;
    mp_store *s;
    CHECK_OK(mp_store_open(&s, fx_store(f, "i.db"), MP_STORE_READWRITE, &err), &err);
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
MP_TEST(store_users_items_ids_and_bare_puts_sqlite) { run_sqlite(t, body_users_items_ids_and_bare_puts); }
MP_TEST(store_users_items_ids_and_bare_puts_pg) { run_pg(t, body_users_items_ids_and_bare_puts); }

BOTH(stats_counts) {
    mp_error err;
    mp_store *s;
    CHECK_OK(mp_store_open(&s, fx_store(f, "s.db"), MP_STORE_READWRITE, &err), &err);
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
MP_TEST(store_stats_counts_sqlite) { run_sqlite(t, body_stats_counts); }
MP_TEST(store_stats_counts_pg) { run_pg(t, body_stats_counts); }

BOTH(reader_sees_only_committed) {
    /* A second (read-only) connection sees only committed rows. */
    mp_error err;
    mp_store *a, *b;
    const char *path = fx_store(f, "w.db");
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
MP_TEST(store_reader_sees_only_committed_sqlite) { run_sqlite(t, body_reader_sees_only_committed); }
MP_TEST(store_reader_sees_only_committed_pg) { run_pg(t, body_reader_sees_only_committed); }

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

BOTH(forget_user_tombstone_keeps_id_reserved) {
    mp_error err;
    mp_store *s;
    const char *path = fx_store(f, "f.db");
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
MP_TEST(store_forget_user_tombstone_keeps_id_reserved_sqlite) { run_sqlite(t, body_forget_user_tombstone_keeps_id_reserved); }
MP_TEST(store_forget_user_tombstone_keeps_id_reserved_pg) { run_pg(t, body_forget_user_tombstone_keeps_id_reserved); }

BOTH(set_item_available) {
    mp_error err;
    mp_store *s;
    CHECK_OK(mp_store_open(&s, fx_store(f, "av.db"), MP_STORE_READWRITE, &err), &err);
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
MP_TEST(store_set_item_available_sqlite) { run_sqlite(t, body_set_item_available); }
MP_TEST(store_set_item_available_pg) { run_pg(t, body_set_item_available); }

BOTH(bare_put_refuses_clashes) {
    /* Two writers handing out ids from their own memory (a server and an import) must not mix rows up. */
    mp_error err;
    mp_store *s;
    CHECK_OK(mp_store_open(&s, fx_store(f, "c.db"), MP_STORE_READWRITE, &err), &err);
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
MP_TEST(store_bare_put_refuses_clashes_sqlite) { run_sqlite(t, body_bare_put_refuses_clashes); }
MP_TEST(store_bare_put_refuses_clashes_pg) { run_pg(t, body_bare_put_refuses_clashes); }

typedef struct {
    uint64_t n;
    int in_order;
    uint32_t last_user;
    int64_t last_ts;
    char first_text[16];
} scan_count;

static int count_cb(void *ctx, const mp_event_row *e) {
    scan_count *c = ctx;
    if (c->n && (e->user < c->last_user || (e->user == c->last_user && e->ts < c->last_ts))) c->in_order = 0;
    if (c->n == 0) snprintf(c->first_text, sizeof c->first_text, "%.*s", (int)e->text.len, e->text.ptr);
    c->last_user = e->user;
    c->last_ts = e->ts;
    c->n++;
    return 0;
}

BOTH(bulk_events_dedup_all_or_nothing) {
    /* The bulk path (COPY with PostgreSQL): duplicates inside a batch and against the store collapse, the first
     * of two exact duplicates wins, a rolled-back batch leaves nothing, and scans page through large results. */
    mp_error err;
    mp_store *s;
    const char *path = fx_store(f, "bulk.db");
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READWRITE, &err), &err);
    enum { N = 25000 };
    mp_event_row *rows = calloc(N + 10, sizeof *rows);
    CHECK(rows);
    for (int i = 0; i < N; i++) /* written in reverse key order on purpose */
        rows[i] = (mp_event_row){.user = (uint32_t)(N - 1 - i) / 100, .item = (uint32_t)i % 97, .type = MP_EV_VIEW,
                                 .ts = 1000 + (N - i), .value = i * 0.5, .has_value = i % 2, .text = S("")};
    rows[0].text = S("first");
    for (int k = 0; k < 10; k++) { /* ten exact duplicates at the end, with other text */
        rows[N + k] = rows[k];
        rows[N + k].text = S("second");
    }
    uint64_t added = 0;
    CHECK_OK(mp_store_begin(s, &err), &err);
    CHECK_OK(mp_store_add_events(s, rows, N + 10, &added, &err), &err);
    CHECK_EQ(added, N);
    CHECK_OK(mp_store_commit(s, &err), &err);
    /* again, outside a transaction: nothing new */
    CHECK_OK(mp_store_add_events(s, rows, 300, &added, &err), &err);
    CHECK_EQ(added, 0);
    /* a rolled-back batch leaves nothing */
    mp_event_row more[50];
    for (int i = 0; i < 50; i++)
        more[i] = (mp_event_row){.user = 900, .item = (uint32_t)i, .type = MP_EV_CLICK, .ts = i};
    CHECK_OK(mp_store_begin(s, &err), &err);
    CHECK_OK(mp_store_add_events(s, more, 50, &added, &err), &err);
    CHECK_EQ(added, 50);
    CHECK_OK(mp_store_rollback(s, &err), &err);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, N);
    CHECK_EQ(st.per_type[MP_EV_VIEW], N);
    CHECK_EQ(st.ts_min, 1001);
    CHECK_EQ(st.ts_max, 1000 + N);
    CHECK_EQ(st.n_active_users, N / 100);
    /* outside a transaction a batch commits on its own (a new handle sees it) */
    CHECK_OK(mp_store_add_events(s, more, 50, &added, &err), &err);
    CHECK_EQ(added, 50);
    mp_store *r;
    CHECK_OK(mp_store_open(&r, path, MP_STORE_READONLY, &err), &err);
    scan_count c = {.in_order = 1};
    CHECK_OK(mp_store_scan_events(r, count_cb, &c, &err), &err);
    CHECK_EQ(c.n, N + 50);
    CHECK(c.in_order);
    mp_store_close(r);
    /* the first of two exact duplicates won */
    mp_event_row probe = rows[0];
    probe.text = S("third");
    int ins = 1;
    CHECK_OK(mp_store_add_event(s, &probe, &ins, &err), &err);
    CHECK_EQ(ins, 0);
    mp_store_close(s);
    free(rows);
    if (f->pg) {
        CHECK(fx_sql(f, "DO $$ BEGIN IF (SELECT text FROM events WHERE user_id = 249 AND item_id = 0 AND ts = 26000) "
                        "IS DISTINCT FROM 'first' THEN RAISE 'the first duplicate did not win'; END IF; END $$") == 0);
    } else {
        CHECK(fx_sql(f, "CREATE TABLE chk(x CHECK (x = 'first')); INSERT INTO chk SELECT text FROM events "
                        "WHERE user = 249 AND item = 0 AND ts = 26000") == 0);
    }
}
MP_TEST(store_bulk_events_dedup_all_or_nothing_sqlite) { run_sqlite(t, body_bulk_events_dedup_all_or_nothing); }
MP_TEST(store_bulk_events_dedup_all_or_nothing_pg) { run_pg(t, body_bulk_events_dedup_all_or_nothing); }

typedef struct {
    int n;
    uint32_t ids[8];
    float first[8];
} emb_seen;

static int emb_cb(void *ctx, uint32_t id, const float *v, uint32_t dim, uint64_t text_hash) {
    emb_seen *e = ctx;
    (void)dim;
    (void)text_hash;
    if (e->n >= 8) return 1;
    e->ids[e->n] = id;
    e->first[e->n++] = v[0];
    return 0;
}

BOTH(embeddings_round_trip) {
    mp_error err;
    mp_store *s;
    const char *path = fx_store(f, "emb.db");
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READWRITE, &err), &err);
    const char *names[] = {"a", "b", "c", "d"};
    for (uint32_t i = 0; i < 4; i++) {
        mp_item it = {.id = S(names[i]), .available = 1};
        mp_user u = {.id = S(names[i])};
        CHECK_OK(mp_store_put_item(s, i, &it, &err), &err);
        CHECK_OK(mp_store_put_user(s, i, &u, &err), &err);
    }
    const float a[3] = {1.0f, -2.5f, 0.25f}, b[3] = {3.0f, 0, 0}, c[3] = {-1.0f, 1e-30f, 3.4e38f};
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 2, "user", a, 3, 0, &err), &err);
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 0, "user", b, 3, 0, &err), &err);
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 3, "user", c, 3, 0xFFFFFFFFFFFFFFF0ull, &err), &err);
    const float u2[2] = {0.5f, 0.5f};
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 0, "it's-quoted", u2, 2, 77, &err), &err);
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_USERS, 1, "user", u2, 2, 0, &err), &err);
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_USERS, 2, "user", u2, 2, 0, &err), &err);
    float v[8];
    uint32_t dim = 0;
    uint64_t h = 1;
    CHECK_OK(mp_store_get_embedding(s, MP_KIND_ITEMS, 3, "user", v, 8, &dim, &h, &err), &err);
    CHECK_EQ(dim, 3);
    CHECK(h == 0xFFFFFFFFFFFFFFF0ull); /* the full 64 bits survive */
    CHECK(memcmp(v, c, sizeof c) == 0);
    CHECK_EQ(mp_store_get_embedding(s, MP_KIND_ITEMS, 2, "user", v, 2, &dim, NULL, &err), MP_ERANGE);
    CHECK_EQ(dim, 3);
    CHECK_EQ(mp_store_get_embedding(s, MP_KIND_ITEMS, 1, "user", v, 8, &dim, NULL, &err), MP_ENOTFOUND);
    CHECK_EQ(mp_store_put_embedding(s, MP_KIND_ITEMS, 1, "user", u2, 2, 0, &err), MP_EINVAL); /* dim 2 vs 3 */
    CHECK_CONTAINS(err.msg, "dimension 3");
    CHECK_EQ(mp_store_put_embedding(s, MP_KIND_ITEMS, 9, "user", a, 3, 0, &err), MP_ENOTFOUND);
    emb_seen e = {0};
    CHECK_OK(mp_store_scan_embeddings(s, MP_KIND_ITEMS, "user", emb_cb, &e, &err), &err);
    CHECK_EQ(e.n, 3);
    CHECK_EQ(e.ids[0], 0);
    CHECK_EQ(e.ids[1], 2);
    CHECK_EQ(e.ids[2], 3);
    CHECK_NEAR(e.first[1], 1.0, 0);
    memset(&e, 0, sizeof e);
    CHECK_OK(mp_store_scan_embeddings(s, MP_KIND_ITEMS, "it's-quoted", emb_cb, &e, &err), &err);
    CHECK_EQ(e.n, 1);
    /* forgetting a user deletes their vectors, and no vector comes back for them */
    CHECK_OK(mp_store_forget_user(s, 1, NULL, &err), &err);
    CHECK_EQ(mp_store_get_embedding(s, MP_KIND_USERS, 1, "user", v, 8, &dim, NULL, &err), MP_ENOTFOUND);
    CHECK_EQ(mp_store_put_embedding(s, MP_KIND_USERS, 1, "user", u2, 2, 0, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "forgotten");
    CHECK_OK(mp_store_get_embedding(s, MP_KIND_USERS, 2, "user", v, 8, &dim, NULL, &err), &err);
    uint64_t n = 0;
    CHECK_OK(mp_store_delete_embeddings(s, MP_KIND_ITEMS, "user", &n, &err), &err);
    CHECK_EQ(n, 3);
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 1, "user", u2, 2, 0, &err), &err); /* a new dimension now */
    mp_store_close(s);
}
MP_TEST(store_embeddings_round_trip_sqlite) { run_sqlite(t, body_embeddings_round_trip); }
MP_TEST(store_embeddings_round_trip_pg) { run_pg(t, body_embeddings_round_trip); }

/* ---- PostgreSQL only: connection faults and URIs ---- */

BOTH(pg_unreachable_and_bad_uris) {
    mp_error err;
    mp_store *s = (mp_store *)&err;
    /* nothing listens on port 1: MP_EIO naming the address; the password never shows */
    CHECK_EQ(mp_store_open(&s, "postgresql://magpie:s3cret@127.0.0.1:1/nowhere?connect_timeout=3", MP_STORE_READWRITE,
                           &err),
             MP_EIO);
    CHECK(s == NULL);
    CHECK_CONTAINS(err.msg, "cannot connect to PostgreSQL at host 127.0.0.1 port 1 database nowhere");
    CHECK(!strstr(err.msg, "s3cret"));
    CHECK_EQ(mp_store_open(&s, "postgres://127.0.0.1:1/x?password=s3cret&connect_timeout=3", MP_STORE_READONLY, &err),
             MP_EIO);
    CHECK(!strstr(err.msg, "s3cret"));
    CHECK_EQ(mp_store_open(&s, "postgres://x/y?nosuchoption=1", MP_STORE_READONLY, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "not a valid PostgreSQL URI");
    /* a search_path naming no existing schema: nowhere to create the store */
    char uri[1200];
    const char *base = getenv("MAGPIE_TEST_PG");
    snprintf(uri, sizeof uri, "%s%soptions=-csearch_path%%3Dno_such_schema_here", base, strchr(base, '?') ? "&" : "?");
    CHECK_EQ(mp_store_open(&s, uri, MP_STORE_READWRITE, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "CREATE SCHEMA");
    CHECK_EQ(mp_store_open(&s, uri, MP_STORE_READONLY, &err), MP_ENOTFOUND);
    (void)f;
}
MP_TEST(store_pg_unreachable_and_bad_uris) { run_pg(t, body_pg_unreachable_and_bad_uris); }

/* Ends the server side of every connection whose application_name is `app` (waits until they are gone). */
static int kill_backends(mp_test_ctx *t, const char *app) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = '%s'", app);
    return pg_exec(t, sql);
}

#define DROP_LOST_ROLE                                                                                                 \
    "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mp_test_lost_role') THEN "                        \
    "DROP OWNED BY mp_test_lost_role; DROP ROLE mp_test_lost_role; END IF; END $$"

BOTH(pg_connection_lost) {
    mp_error err;
    mp_store *s;
    const char *uri = fx_store_ex(f, "lost", "application_name=mp_test_lost");
    CHECK(uri);
    CHECK_OK(mp_store_open(&s, uri, MP_STORE_READWRITE, &err), &err);
    int ins;
    CHECK_OK(add_ev(s, 0, 0, MP_EV_VIEW, 1, NULL, &err, &ins), &err);
    /* outside a transaction: retried once on a new connection, the caller sees nothing */
    CHECK(kill_backends(t, "mp_test_lost") == 0);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 1);
    CHECK(kill_backends(t, "mp_test_lost") == 0);
    CHECK_OK(add_ev(s, 0, 1, MP_EV_VIEW, 2, NULL, &err, &ins), &err); /* a prepared statement, prepared again */
    CHECK_EQ(ins, 1);
    CHECK(kill_backends(t, "mp_test_lost") == 0);
    mp_event_row rows[8];
    for (int i = 0; i < 8; i++)
        rows[i] = (mp_event_row){.user = 1, .item = (uint32_t)i, .type = MP_EV_CLICK, .ts = i};
    uint64_t added = 0;
    CHECK_OK(mp_store_add_events(s, rows, 8, &added, &err), &err); /* the COPY path, its own transaction */
    CHECK_EQ(added, 8);
    /* inside a transaction: gone, said so, and refused until the rollback, which reconnects */
    CHECK_OK(mp_store_begin(s, &err), &err);
    CHECK_OK(add_ev(s, 2, 0, MP_EV_VIEW, 3, NULL, &err, &ins), &err);
    CHECK(kill_backends(t, "mp_test_lost") == 0);
    CHECK_EQ(add_ev(s, 2, 1, MP_EV_VIEW, 4, NULL, &err, &ins), MP_EIO);
    CHECK_CONTAINS(err.msg, "lost inside a transaction");
    CHECK_CONTAINS(err.msg, "nothing of it was written");
    CHECK_EQ(mp_store_add_events(s, rows, 8, &added, &err), MP_EIO);
    CHECK_CONTAINS(err.msg, "roll back");
    CHECK_EQ(mp_store_commit(s, &err), MP_EIO);
    CHECK_OK(mp_store_rollback(s, &err), &err);
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 10); /* the lost transaction's event is not there */
    CHECK_OK(mp_store_begin(s, &err), &err);
    CHECK_OK(add_ev(s, 2, 0, MP_EV_VIEW, 3, NULL, &err, &ins), &err);
    CHECK_OK(mp_store_commit(s, &err), &err);
    mp_store_close(s);

    /* when the new connection cannot be made either: an error that says both why's */
    CHECK(pg_exec(t, DROP_LOST_ROLE "; CREATE ROLE mp_test_lost_role LOGIN") == 0);
    int k = (f->n - 1) % 6;
    char sql[300], uri2[1200];
    snprintf(sql, sizeof sql, "GRANT ALL ON SCHEMA %s TO mp_test_lost_role; GRANT SELECT ON ALL TABLES IN SCHEMA %s TO mp_test_lost_role",
             f->schemas[k], f->schemas[k]);
    CHECK(pg_exec(t, sql) == 0);
    snprintf(uri2, sizeof uri2, "%s&user=mp_test_lost_role", uri);
    CHECK_OK(mp_store_open(&s, uri2, MP_STORE_READONLY, &err), &err);
    CHECK(pg_exec(t, "ALTER ROLE mp_test_lost_role NOLOGIN") == 0);
    CHECK(kill_backends(t, "mp_test_lost") == 0);
    int rc = mp_store_stats_get(s, &st, &err);
    mp_store_close(s);
    pg_exec(t, DROP_LOST_ROLE);
    CHECK_EQ(rc, MP_EIO);
    CHECK_CONTAINS(err.msg, "connection to PostgreSQL was lost");
    CHECK_CONTAINS(err.msg, "reconnecting failed");
    CHECK_CONTAINS(err.msg, "not permitted to log in");
}
MP_TEST(store_pg_connection_lost) { run_pg(t, body_pg_connection_lost); }
