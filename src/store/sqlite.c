/* The embedded SQLite backend of mp_store.
 *
 * Durability: the database runs in WAL mode with synchronous=NORMAL. A commit appends the transaction's pages
 * to the WAL file with write() before COMMIT returns, so once mp_store_commit returns the data is in the
 * kernel's page cache and survives a crash (kill -9) of this process; a torn or uncommitted tail of the WAL is
 * ignored on the next open, so a killed import leaves exactly the previous commits. What NORMAL gives up
 * compared to FULL is an fsync per commit: after a power loss or kernel crash the last few commits may be
 * rolled back (never half-applied; the WAL is fsynced at each checkpoint). For a recommender's event log that
 * trade is worth the 10-100x faster small commits.
 *
 * Layout (schema version 2):
 *   meta(key PRIMARY KEY, value)                 settings; schema_version lives here
 *   users(id INTEGER PRIMARY KEY, ext UNIQUE, attrs)  a forgotten user keeps its row with ext = a tombstone
 *                                                       ("\xff" "forgotten:ID", see store.h) and attrs NULL
 *   items(id INTEGER PRIMARY KEY, ext UNIQUE, title, description, category, brand, price, attrs, available)
 *   events(user, item, type, ts, value, text, session) WITHOUT ROWID, PRIMARY KEY (user, ts, item, type)
 *   embeddings(kind, source, id, dim, text_hash, vec) WITHOUT ROWID, PRIMARY KEY (kind, source, id), index (kind, id)
 *                                                  vec: dim float32 values, little-endian; kind: mp_record_kind
 * The events primary key is the dedup key (user, item, type, ts) with its columns reordered so that the one
 * B-tree both refuses exact duplicates and stores the rows in scan order (user, ts, item, type): no second index
 * and no sort on scan. Measured on 5M events against a rowid table + UNIQUE index, this layout inserts faster
 * (one tree to update instead of two) and makes the file smaller; see bench/ingest.sh. */
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/backend.h"

/* Cached statements for the hot paths; prepared on first use, finalized at close. */
enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_ADD_EVENT,
    ST_ADD_EVENTS, /* BULK_ROWS rows per statement; SQL built in get_stmt */
    ST_USER_BARE,
    ST_USER_FULL,
    ST_ITEM_BARE,
    ST_ITEM_FULL,
    ST_META_GET,
    ST_META_SET,
    ST_USER_EXT,
    ST_ITEM_EXT,
    ST_FORGET_EVENTS,
    ST_FORGET_USER,
    ST_ITEM_AVAILABLE,
    ST_EMB_PUT,
    ST_EMB_GET,
    ST_EMB_DIM,
    ST_EMB_FORGET,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_ADD_EVENT] = "INSERT OR IGNORE INTO events(user, item, type, ts, value, text, session) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_USER_BARE] = "INSERT OR IGNORE INTO users(id, ext) VALUES (?1, ?2)",
    /* The WHERE makes a clash (same id, different external id) change nothing, which put_user reports. */
    [ST_USER_FULL] = "INSERT INTO users(id, ext, attrs) VALUES (?1, ?2, ?3) "
                     "ON CONFLICT(id) DO UPDATE SET attrs = excluded.attrs WHERE users.ext = excluded.ext",
    [ST_ITEM_BARE] = "INSERT OR IGNORE INTO items(id, ext) VALUES (?1, ?2)",
    [ST_ITEM_FULL] = "INSERT INTO items(id, ext, title, description, category, brand, price, attrs, available) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                     "ON CONFLICT(id) DO UPDATE SET title = excluded.title, description = excluded.description, "
                     "category = excluded.category, brand = excluded.brand, price = excluded.price, "
                     "attrs = excluded.attrs, available = excluded.available WHERE items.ext = excluded.ext",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_SET] = "INSERT INTO meta(key, value) VALUES (?1, ?2) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [ST_USER_EXT] = "SELECT ext FROM users WHERE id = ?1",
    [ST_ITEM_EXT] = "SELECT ext FROM items WHERE id = ?1",
    /* a range delete on the primary key's first column */
    [ST_FORGET_EVENTS] = "DELETE FROM events WHERE user = ?1",
    [ST_FORGET_USER] = "UPDATE users SET ext = ?2, attrs = NULL WHERE id = ?1",
    [ST_ITEM_AVAILABLE] = "UPDATE items SET available = ?2 WHERE id = ?1",
    [ST_EMB_PUT] = "INSERT INTO embeddings(kind, source, id, dim, text_hash, vec) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                   "ON CONFLICT(kind, source, id) DO UPDATE SET dim = excluded.dim, text_hash = excluded.text_hash, "
                   "vec = excluded.vec",
    [ST_EMB_GET] = "SELECT dim, text_hash, vec FROM embeddings WHERE kind = ?1 AND source = ?2 AND id = ?3",
    /* the dimension of the source's other vectors (all equal); the one being replaced does not count */
    [ST_EMB_DIM] = "SELECT dim FROM embeddings WHERE kind = ?1 AND source = ?2 AND id != ?3 LIMIT 1",
    [ST_EMB_FORGET] = "DELETE FROM embeddings WHERE kind = ?1 AND id = ?2",
};

/* Rows per multi-row INSERT. One statement execution per row costs about as much as the B-tree work itself;
 * 32 rows per execution measured 2x faster on 5M sorted events (16 and 64 were within a few percent). */
#define BULK_ROWS 32
#define EVENT_COLS 7

/* Migration N takes schema version N-1 to N; they run in order inside one transaction at open. */
static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE users(id INTEGER PRIMARY KEY, ext TEXT NOT NULL UNIQUE, attrs TEXT);"
    "CREATE TABLE items(id INTEGER PRIMARY KEY, ext TEXT NOT NULL UNIQUE, title TEXT, description TEXT,"
    " category TEXT, brand TEXT, price REAL, attrs TEXT, available INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE events(user INTEGER NOT NULL REFERENCES users(id), item INTEGER NOT NULL REFERENCES items(id),"
    " type INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL, text TEXT, session TEXT,"
    " PRIMARY KEY (user, ts, item, type)) WITHOUT ROWID;",
    /* 2: embedding vectors. The key puts (kind, source) first so that one source's vectors scan in id order
     * without a sort; the index serves forgetting a user (all sources of one id). */
    "CREATE TABLE embeddings(kind INTEGER NOT NULL, source TEXT NOT NULL, id INTEGER NOT NULL,"
    " dim INTEGER NOT NULL, text_hash INTEGER NOT NULL, vec BLOB NOT NULL,"
    " PRIMARY KEY (kind, source, id)) WITHOUT ROWID;"
    "CREATE INDEX embeddings_by_id ON embeddings(kind, id);",
};
#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])
_Static_assert(N_MIGRATIONS == MP_STORE_SCHEMA_VERSION, "one migration per schema version");

typedef struct sqlite_store {
    mp_store base;                /* must be first */
    sqlite3 *db;                  /* the connection (owned) */
    char *path;                   /* file path, for messages (owned) */
    int readonly;                 /* opened with MP_STORE_READONLY */
    int no_embeddings;            /* a read-only store of schema version 1: it has no embeddings table (reads of
                                     embeddings find nothing; the first read-write open migrates it) */
    sqlite3_stmt *stmt[ST_COUNT]; /* cached statements, NULL until first use */
} sqlite_store;

static sqlite_store *impl(mp_store *s) {
    return (sqlite_store *)s;
}

/* Turns the connection's last error into an mp_error. `what` says what was being done. */
static int sq_fail(sqlite_store *q, int rc, mp_error *err, const char *what) {
    int prim = rc & 0xff;
    const char *msg = q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc);
    switch (prim) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return mp_error_set(err, MP_ESTORE,
                            "store \"%s\": %s: the database is locked by another process (is another import "
                            "running?); try again when it finishes",
                            q->path, what);
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return mp_error_set(err, MP_ECORRUPT, "store \"%s\": %s: not a Magpie store or damaged file (%s)", q->path,
                            what, msg);
    case SQLITE_FULL:
        return mp_error_set(err, MP_EIO, "store \"%s\": %s: disk full; free some space and retry", q->path, what);
    case SQLITE_READONLY:
        return mp_error_set(err, MP_ESTORE, "store \"%s\": %s: the store is read-only (%s)", q->path, what, msg);
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        return mp_error_set(err, MP_EIO, "store \"%s\": %s: %s", q->path, what, msg);
    default:
        return mp_error_set(err, MP_ESTORE, "store \"%s\": %s: %s", q->path, what, msg);
    }
}

static int get_stmt(sqlite_store *q, int which, sqlite3_stmt **out, mp_error *err) {
    if (!q->stmt[which]) {
        char bulk[64 + BULK_ROWS * 40];
        const char *sql = stmt_sql[which];
        if (which == ST_ADD_EVENTS) {
            int o = snprintf(bulk, sizeof bulk,
                             "INSERT OR IGNORE INTO events(user, item, type, ts, value, text, session) VALUES ");
            for (int r = 0; r < BULK_ROWS; r++)
                o += snprintf(bulk + o, sizeof bulk - (size_t)o, "%s(?,?,?,?,?,?,?)", r ? "," : "");
            sql = bulk;
        }
        int rc = sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &q->stmt[which], NULL);
        if (rc != SQLITE_OK) return sq_fail(q, rc, err, "preparing a statement");
    }
    *out = q->stmt[which];
    return MP_OK;
}

/* Runs a statement that returns no rows, then resets it (keeping bindings cleared for the next use). */
static int step_done(sqlite_store *q, sqlite3_stmt *st, mp_error *err, const char *what) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return sq_fail(q, rc, err, what);
    return MP_OK;
}

static int exec_sql(sqlite_store *q, const char *sql, mp_error *err, const char *what) {
    int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) return sq_fail(q, rc, err, what);
    return MP_OK;
}

static void bind_str(sqlite3_stmt *st, int col, mp_str v) {
    if (v.len == 0 || !v.ptr)
        sqlite3_bind_null(st, col);
    else
        sqlite3_bind_text(st, col, v.ptr, (int)v.len, SQLITE_STATIC);
}

static mp_str col_str(sqlite3_stmt *st, int col) {
    mp_str r = {"", 0};
    const unsigned char *p = sqlite3_column_text(st, col);
    if (p) {
        r.ptr = (const char *)p;
        r.len = (size_t)sqlite3_column_bytes(st, col);
    }
    return r;
}

/* ---- schema ---- */

/* Reads the schema version: 0 for an empty database, -1 (with err set) for a SQLite file that is not ours. */
static int read_schema_version(sqlite_store *q, long *version, mp_error *err) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &st, NULL);
    if (rc != SQLITE_OK) return sq_fail(q, rc, err, "reading the schema");
    int has_meta = 0, n_tables = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        n_tables++;
        if (!strcmp((const char *)sqlite3_column_text(st, 0), "meta")) has_meta = 1;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sq_fail(q, rc, err, "reading the schema");
    *version = 0;
    if (!has_meta) {
        if (n_tables > 0)
            return mp_error_set(err, MP_ECORRUPT,
                                "store \"%s\": this is an SQLite database but not a Magpie store (no meta table); "
                                "give another --db path",
                                q->path);
        return MP_OK;
    }
    rc = sqlite3_prepare_v2(q->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st, NULL);
    if (rc != SQLITE_OK) return sq_fail(q, rc, err, "reading the schema version");
    rc = sqlite3_step(st);
    int ret = MP_OK;
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        char *end = NULL;
        errno = 0;
        long n = v ? strtol(v, &end, 10) : -1;
        if (!v || errno || *end || n < 0)
            ret = mp_error_set(err, MP_ECORRUPT, "store \"%s\": meta.schema_version is \"%s\", not a number", q->path,
                               v ? v : "(null)");
        else
            *version = n;
    } else if (rc != SQLITE_DONE) {
        ret = sq_fail(q, rc, err, "reading the schema version");
    }
    sqlite3_finalize(st);
    return ret;
}

static int check_version(sqlite_store *q, long version, mp_error *err) {
    if (version > MP_STORE_SCHEMA_VERSION)
        return mp_error_set(err, MP_EVERSION,
                            "store \"%s\" has schema version %ld but this magpie supports up to version %d; "
                            "upgrade magpie to open it",
                            q->path, version, MP_STORE_SCHEMA_VERSION);
    return MP_OK;
}

static int migrate(sqlite_store *q, mp_error *err) {
    /* IMMEDIATE: take the write lock before reading the version, so two processes opening a fresh file do not
     * both try to create the schema. */
    int rc = exec_sql(q, "BEGIN IMMEDIATE", err, "starting the schema check");
    if (rc) return rc;
    long version;
    rc = read_schema_version(q, &version, err);
    if (rc == MP_OK) rc = check_version(q, version, err);
    for (long v = version; rc == MP_OK && v < MP_STORE_SCHEMA_VERSION; v++) {
        char what[64];
        snprintf(what, sizeof what, "migrating the schema to version %ld", v + 1);
        rc = exec_sql(q, migrations[v], err, what);
    }
    if (rc == MP_OK && version < MP_STORE_SCHEMA_VERSION) {
        char sql[160];
        snprintf(sql, sizeof sql,
                 "INSERT INTO meta(key, value) VALUES ('schema_version', '%d') "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                 MP_STORE_SCHEMA_VERSION);
        rc = exec_sql(q, sql, err, "recording the schema version");
        if (rc == MP_OK && version == 0)
            rc = exec_sql(q, "INSERT OR IGNORE INTO meta(key, value) VALUES ('created_at', strftime('%s', 'now'))", err,
                          "recording the creation time");
    }
    if (rc == MP_OK) return exec_sql(q, "COMMIT", err, "committing the schema");
    sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---- open / close ---- */

static const mp_store_ops sqlite_ops;

static void sq_close(mp_store *s) {
    sqlite_store *q = impl(s);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(q->stmt[i]);
    if (q->db) {
        if (!sqlite3_get_autocommit(q->db)) sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close_v2(q->db);
    }
    free(q->path);
    free(q);
}

int mp_sqlite_open(mp_store **out, const char *path, mp_store_mode mode, mp_error *err) {
    *out = NULL;
    struct stat sb;
    int exists = stat(path, &sb) == 0;
    if (mode == MP_STORE_READONLY && !exists)
        return mp_error_set(err, MP_ENOTFOUND,
                            "store \"%s\" does not exist; import data first (magpie import events FILE --db %s)", path,
                            path);
    if (exists && S_ISDIR(sb.st_mode))
        return mp_error_set(err, MP_EINVAL, "store \"%s\" is a directory; give a file path", path);

    sqlite_store *q = calloc(1, sizeof *q);
    if (!q || !(q->path = strdup(path))) {
        free(q);
        return mp_error_set(err, MP_ENOMEM, "out of memory opening store \"%s\"", path);
    }
    q->base.ops = &sqlite_ops;
    q->readonly = mode == MP_STORE_READONLY;
    int flags = (q->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &q->db, flags, NULL);
    if (rc != SQLITE_OK) {
        rc = sq_fail(q, rc, err, "opening");
        sq_close(&q->base);
        return rc;
    }
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, 10000);

    /* page_size only takes effect on a new, empty file (before WAL is switched on). Bulk import time for 5M
     * events went 4.2 s (8 KiB) -> 4.1 s (16 KiB) -> 3.9 s (32 KiB) -> 3.8 s (64 KiB), mostly from fewer WAL
     * write calls; larger pages make every small commit write more, so 16 KiB is the compromise. The page cache
     * (up to 256 MiB, allocated only as used) holds the events tree during a large import so that dirty pages
     * are not spilled to the WAL and rewritten; journal_size_limit truncates the WAL after a big import is
     * checkpointed instead of leaving it at its peak size. */
    const char *pragmas_rw = "PRAGMA page_size = 16384;"
                             "PRAGMA journal_mode = WAL;"
                             "PRAGMA synchronous = NORMAL;"
                             "PRAGMA cache_size = -262144;"
                             "PRAGMA journal_size_limit = 67108864;"
                             "PRAGMA temp_store = MEMORY;"
                             "PRAGMA foreign_keys = OFF;";
    const char *pragmas_ro = "PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;";
    rc = exec_sql(q, q->readonly ? pragmas_ro : pragmas_rw, err, "configuring");
    if (rc == MP_OK) {
        if (q->readonly) {
            long version;
            rc = read_schema_version(q, &version, err);
            if (rc == MP_OK) rc = check_version(q, version, err);
            if (rc == MP_OK && version == 0)
                rc = mp_error_set(err, MP_ECORRUPT,
                                  "store \"%s\" is empty (not a Magpie store yet); import data "
                                  "into it first",
                                  path);
            else if (rc == MP_OK && version < MP_STORE_SCHEMA_VERSION)
                q->no_embeddings = 1; /* version 2 only added the embeddings table */
        } else {
            rc = migrate(q, err);
        }
    }
    if (rc != MP_OK) {
        sq_close(&q->base);
        return rc;
    }
    *out = &q->base;
    return MP_OK;
}

/* ---- transactions ---- */

static int run_cached(sqlite_store *q, int which, mp_error *err, const char *what) {
    sqlite3_stmt *st = NULL;
    int rc = get_stmt(q, which, &st, err);
    if (rc) return rc;
    return step_done(q, st, err, what);
}

static int sq_begin(mp_store *s, mp_error *err) {
    return run_cached(impl(s), ST_BEGIN, err, "begin");
}
static int sq_commit(mp_store *s, mp_error *err) {
    return run_cached(impl(s), ST_COMMIT, err, "commit");
}
static int sq_rollback(mp_store *s, mp_error *err) {
    sqlite_store *q = impl(s);
    if (sqlite3_get_autocommit(q->db)) return MP_OK; /* SQLite already rolled back (e.g. after SQLITE_FULL) */
    return run_cached(q, ST_ROLLBACK, err, "rollback");
}

/* ---- ids, users, items ---- */

static int sq_load_ids(mp_store *s, mp_record_kind kind, mp_strmap **out, mp_error *err) {
    sqlite_store *q = impl(s);
    *out = NULL;
    const char *table = kind == MP_KIND_USERS ? "users" : "items";
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return sq_fail(q, rc, err, "loading ids");
    size_t n = sqlite3_step(st) == SQLITE_ROW ? (size_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);

    mp_strmap *m;
    if (mp_strmap_create(&m, n) != MP_OK) return mp_error_set(err, MP_ENOMEM, "out of memory loading %s ids", table);
    snprintf(sql, sizeof sql, "SELECT id, ext FROM %s ORDER BY id", table);
    rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        mp_strmap_destroy(m);
        return sq_fail(q, rc, err, "loading ids");
    }
    int ret = MP_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 id = sqlite3_column_int64(st, 0);
        mp_str ext = col_str(st, 1);
        if (id < 0 || id >= (sqlite3_int64)MP_STRMAP_NONE) {
            ret = mp_error_set(err, MP_ECORRUPT, "store \"%s\": %s.id %lld is out of range", q->path, table,
                               (long long)id);
            break;
        }
        int prc = mp_strmap_put(m, ext.ptr, ext.len, (uint32_t)id);
        if (prc != MP_OK) {
            ret = prc == MP_ENOMEM ? mp_error_set(err, MP_ENOMEM, "out of memory loading %s ids", table)
                                   : mp_error_set(err, MP_ECORRUPT, "store \"%s\": duplicate %s id \"%.*s\"", q->path,
                                                  table, (int)ext.len, ext.ptr);
            break;
        }
    }
    if (ret == MP_OK && rc != SQLITE_DONE) ret = sq_fail(q, rc, err, "loading ids");
    sqlite3_finalize(st);
    if (ret != MP_OK) {
        mp_strmap_destroy(m);
        return ret;
    }
    *out = m;
    return MP_OK;
}

/* Runs a full (upserting) put and reports an id clash, which the statement's WHERE turns into "no change". */
static int put_full(sqlite_store *q, sqlite3_stmt *st, const char *kind, uint32_t id, mp_str ext, mp_error *err) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_CONSTRAINT_UNIQUE)
            return mp_error_set(err, MP_ESTORE, "store \"%s\": %s \"%.*s\" already exists under another id", q->path,
                                kind, (int)ext.len, ext.ptr);
        return sq_fail(q, rc, err, "writing a row");
    }
    if (sqlite3_changes(q->db) == 0)
        return mp_error_set(err, MP_ESTORE, "store \"%s\": %s id %u belongs to another external id than \"%.*s\"",
                            q->path, kind, id, (int)ext.len, ext.ptr);
    return MP_OK;
}

/* Runs a bare INSERT OR IGNORE. When it inserts nothing, the row must be this very (id, ext) pair (written before,
 * e.g. as a full row): anything else is a clash (the id or the external id taken by another writer of the store),
 * which must not pass silently, or events would be filed under someone else. */
static int put_bare(sqlite_store *q, sqlite3_stmt *st, int which_ext, const char *kind, uint32_t id, mp_str ext,
                    mp_error *err) {
    int rc = step_done(q, st, err, "writing a row");
    if (rc || sqlite3_changes(q->db) > 0) return rc;
    sqlite3_stmt *sel = NULL;
    if ((rc = get_stmt(q, which_ext, &sel, err))) return rc;
    sqlite3_bind_int64(sel, 1, id);
    int src = sqlite3_step(sel);
    int same = src == SQLITE_ROW && (size_t)sqlite3_column_bytes(sel, 0) == ext.len &&
               (ext.len == 0 || !memcmp(sqlite3_column_blob(sel, 0), ext.ptr, ext.len));
    sqlite3_reset(sel);
    sqlite3_clear_bindings(sel);
    if (src != SQLITE_ROW && src != SQLITE_DONE) return sq_fail(q, src, err, "checking a row");
    if (same) return MP_OK;
    if (src == SQLITE_ROW)
        return mp_error_set(err, MP_ESTORE,
                            "store \"%s\": %s id %u belongs to another external id than \"%.*s\" (was the store "
                            "written by another process meanwhile?)",
                            q->path, kind, id, (int)ext.len, ext.ptr);
    return mp_error_set(err, MP_ESTORE,
                        "store \"%s\": %s \"%.*s\" already exists under another id (was the store written by "
                        "another process meanwhile?)",
                        q->path, kind, (int)ext.len, ext.ptr);
}

static int sq_put_user(mp_store *s, uint32_t id, const mp_user *u, mp_error *err) {
    sqlite_store *q = impl(s);
    sqlite3_stmt *st = NULL;
    int bare = u->attrs.len == 0;
    int rc = get_stmt(q, bare ? ST_USER_BARE : ST_USER_FULL, &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, u->id.ptr, (int)u->id.len, SQLITE_STATIC);
    if (bare) return put_bare(q, st, ST_USER_EXT, "user", id, u->id, err);
    bind_str(st, 3, u->attrs);
    return put_full(q, st, "user", id, u->id, err);
}

static int sq_put_item(mp_store *s, uint32_t id, const mp_item *it, mp_error *err) {
    sqlite_store *q = impl(s);
    sqlite3_stmt *st = NULL;
    int bare = !it->title.len && !it->description.len && !it->category.len && !it->brand.len && !it->has_price &&
               !it->attrs.len && it->available;
    int rc = get_stmt(q, bare ? ST_ITEM_BARE : ST_ITEM_FULL, &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, it->id.ptr, (int)it->id.len, SQLITE_STATIC);
    if (bare) return put_bare(q, st, ST_ITEM_EXT, "item", id, it->id, err);
    bind_str(st, 3, it->title);
    bind_str(st, 4, it->description);
    bind_str(st, 5, it->category);
    bind_str(st, 6, it->brand);
    if (it->has_price) sqlite3_bind_double(st, 7, it->price);
    bind_str(st, 8, it->attrs);
    sqlite3_bind_int(st, 9, it->available ? 1 : 0);
    return put_full(q, st, "item", id, it->id, err);
}

/* ---- events ---- */

/* Binds one event to the 7 parameters starting at `first` (1-based). */
static void bind_event(sqlite3_stmt *st, int first, const mp_event_row *e) {
    sqlite3_bind_int64(st, first, e->user);
    sqlite3_bind_int64(st, first + 1, e->item);
    sqlite3_bind_int(st, first + 2, e->type);
    sqlite3_bind_int64(st, first + 3, e->ts);
    if (e->has_value)
        sqlite3_bind_double(st, first + 4, e->value);
    else
        sqlite3_bind_null(st, first + 4);
    bind_str(st, first + 5, e->text);
    bind_str(st, first + 6, e->session);
}

static int sq_add_event(mp_store *s, const mp_event_row *e, int *inserted, mp_error *err) {
    sqlite_store *q = impl(s);
    sqlite3_stmt *st = q->stmt[ST_ADD_EVENT];
    if (!st) {
        int rc = get_stmt(q, ST_ADD_EVENT, &st, err);
        if (rc) return rc;
    }
    bind_event(st, 1, e);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return sq_fail(q, rc, err, "writing an event");
    if (inserted) *inserted = sqlite3_changes(q->db) > 0;
    return MP_OK;
}

static int sq_add_events(mp_store *s, const mp_event_row *rows, size_t n, uint64_t *n_inserted, mp_error *err) {
    sqlite_store *q = impl(s);
    uint64_t added = 0;
    size_t i = 0;
    int rc = MP_OK;
    if (n >= BULK_ROWS) {
        sqlite3_stmt *st = q->stmt[ST_ADD_EVENTS];
        if (!st) rc = get_stmt(q, ST_ADD_EVENTS, &st, err);
        for (; rc == MP_OK && i + BULK_ROWS <= n; i += BULK_ROWS) {
            for (int r = 0; r < BULK_ROWS; r++)
                bind_event(st, 1 + r * EVENT_COLS, &rows[i + (size_t)r]);
            int src = sqlite3_step(st);
            sqlite3_reset(st);
            if (src != SQLITE_DONE)
                rc = sq_fail(q, src, err, "writing events");
            else
                added += (uint64_t)sqlite3_changes(q->db);
        }
    }
    for (; rc == MP_OK && i < n; i++) {
        int ins = 0;
        rc = sq_add_event(s, &rows[i], &ins, err);
        added += (uint64_t)ins;
    }
    if (n_inserted) *n_inserted = added;
    return rc;
}

static int sq_scan_events(mp_store *s, mp_event_cb cb, void *ctx, mp_error *err) {
    sqlite_store *q = impl(s);
    sqlite3_stmt *st = NULL;
    /* The ORDER BY is the primary key order, so SQLite walks the table without sorting. */
    int rc = sqlite3_prepare_v2(q->db,
                                "SELECT user, item, type, ts, value, text, session FROM events "
                                "ORDER BY user, ts, item, type",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) return sq_fail(q, rc, err, "scanning events");
    int ret = MP_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        mp_event_row e;
        e.user = (uint32_t)sqlite3_column_int64(st, 0);
        e.item = (uint32_t)sqlite3_column_int64(st, 1);
        e.type = (uint8_t)sqlite3_column_int(st, 2);
        e.ts = sqlite3_column_int64(st, 3);
        e.has_value = sqlite3_column_type(st, 4) != SQLITE_NULL;
        e.value = e.has_value ? sqlite3_column_double(st, 4) : 0.0;
        e.text = col_str(st, 5);
        e.session = col_str(st, 6);
        if ((ret = cb(ctx, &e)) != 0) break;
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = sq_fail(q, rc, err, "scanning events");
    sqlite3_finalize(st);
    return ret;
}

static int sq_scan_items(mp_store *s, mp_item_cb cb, void *ctx, mp_error *err) {
    sqlite_store *q = impl(s);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db,
                                "SELECT id, ext, title, description, category, brand, price, attrs, available "
                                "FROM items ORDER BY id",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) return sq_fail(q, rc, err, "scanning items");
    int ret = MP_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        mp_item it;
        memset(&it, 0, sizeof it);
        uint32_t id = (uint32_t)sqlite3_column_int64(st, 0);
        it.id = col_str(st, 1);
        it.title = col_str(st, 2);
        it.description = col_str(st, 3);
        it.category = col_str(st, 4);
        it.brand = col_str(st, 5);
        it.has_price = sqlite3_column_type(st, 6) != SQLITE_NULL;
        it.price = it.has_price ? sqlite3_column_double(st, 6) : 0.0;
        it.attrs = col_str(st, 7);
        it.available = sqlite3_column_int(st, 8) != 0;
        if ((ret = cb(ctx, id, &it)) != 0) break;
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = sq_fail(q, rc, err, "scanning items");
    sqlite3_finalize(st);
    return ret;
}

static int sq_scan_users(mp_store *s, mp_user_cb cb, void *ctx, mp_error *err) {
    sqlite_store *q = impl(s);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "SELECT id, ext, attrs FROM users ORDER BY id", -1, &st, NULL);
    if (rc != SQLITE_OK) return sq_fail(q, rc, err, "scanning users");
    int ret = MP_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        mp_user u;
        memset(&u, 0, sizeof u);
        uint32_t id = (uint32_t)sqlite3_column_int64(st, 0);
        u.id = col_str(st, 1);
        u.attrs = col_str(st, 2);
        if (mp_store_is_tombstone(u.id.ptr, u.id.len)) continue; /* a forgotten user */
        if ((ret = cb(ctx, id, &u)) != 0) break;
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = sq_fail(q, rc, err, "scanning users");
    sqlite3_finalize(st);
    return ret;
}

/* ---- stats ---- */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int count_rows(sqlite_store *q, const char *sql, uint64_t *out, mp_error *err) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return sq_fail(q, rc, err, "computing stats");
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return sq_fail(q, rc, err, "computing stats");
    return MP_OK;
}

/* One pass over the events in key order: per-type counts and the ts range directly, distinct (user, item) pairs
 * by sorting each user's items, active items in a bitmap. Much cheaper than COUNT(DISTINCT ...) queries, which
 * would each build a temporary B-tree. Runs in one read transaction so the numbers agree with each other. */
static int sq_stats(mp_store *s, mp_store_stats *out, mp_error *err) {
    sqlite_store *q = impl(s);
    int own_txn = sqlite3_get_autocommit(q->db);
    if (own_txn) {
        int rc = exec_sql(q, "BEGIN", err, "computing stats");
        if (rc) return rc;
    }
    uint64_t *bits = NULL; /* active items, bit per item id */
    size_t n_words = 0;
    uint32_t *items = NULL; /* items of the current user */
    size_t n_it = 0, cap_it = 0;
    sqlite3_stmt *st = NULL;
    /* Tombstones (forgotten users) start with the byte 0xFF, so every other external id sorts below x'ff' in the
     * binary collation: a range on the UNIQUE index of ext. */
    int ret = count_rows(q, "SELECT count(*) FROM users WHERE ext < CAST(x'ff' AS TEXT)", &out->n_users, err);
    if (ret == MP_OK) ret = count_rows(q, "SELECT count(*) FROM items", &out->n_items, err);
    uint64_t max_item = 0;
    if (ret == MP_OK) ret = count_rows(q, "SELECT coalesce(max(id), 0) FROM items", &max_item, err);
    if (ret == MP_OK) {
        n_words = (size_t)(max_item / 64 + 1);
        bits = calloc(n_words, sizeof *bits);
        if (!bits) ret = mp_error_set(err, MP_ENOMEM, "out of memory computing stats");
    }
    if (ret == MP_OK) {
        int rc = sqlite3_prepare_v2(q->db, "SELECT user, item, type, ts FROM events ORDER BY user, ts, item, type", -1,
                                    &st, NULL);
        if (rc != SQLITE_OK) ret = sq_fail(q, rc, err, "computing stats");
    }
    int64_t cur_user = -1;
    while (ret == MP_OK) {
        int rc = sqlite3_step(st);
        int row = rc == SQLITE_ROW;
        if (!row && rc != SQLITE_DONE) {
            ret = sq_fail(q, rc, err, "computing stats");
            break;
        }
        int64_t user = row ? sqlite3_column_int64(st, 0) : -2;
        if (user != cur_user && n_it) { /* close the previous user's group */
            qsort(items, n_it, sizeof *items, cmp_u32);
            uint64_t distinct = 1;
            for (size_t i = 1; i < n_it; i++)
                distinct += items[i] != items[i - 1];
            out->n_pairs += distinct;
            n_it = 0;
        }
        if (!row) break;
        if (user != cur_user) {
            out->n_active_users++;
            cur_user = user;
        }
        uint32_t item = (uint32_t)sqlite3_column_int64(st, 1);
        int type = sqlite3_column_int(st, 2);
        int64_t ts = sqlite3_column_int64(st, 3);
        if (out->n_events == 0 || ts < out->ts_min) out->ts_min = ts;
        if (out->n_events == 0 || ts > out->ts_max) out->ts_max = ts;
        out->n_events++;
        if (type >= 0 && type < MP_EV_NTYPES) out->per_type[type]++;
        if ((size_t)(item / 64) >= n_words) { /* an event on an item id past the items table; keep counting */
            size_t nw = (size_t)(item / 64) + 1;
            uint64_t *nb = realloc(bits, nw * sizeof *bits);
            if (!nb) {
                ret = mp_error_set(err, MP_ENOMEM, "out of memory computing stats");
                break;
            }
            memset(nb + n_words, 0, (nw - n_words) * sizeof *nb);
            bits = nb;
            n_words = nw;
        }
        uint64_t mask = 1ull << (item % 64);
        if (!(bits[item / 64] & mask)) {
            bits[item / 64] |= mask;
            out->n_active_items++;
        }
        if (n_it == cap_it) {
            size_t nc = cap_it ? cap_it * 2 : 256;
            uint32_t *ni = realloc(items, nc * sizeof *ni);
            if (!ni) {
                ret = mp_error_set(err, MP_ENOMEM, "out of memory computing stats");
                break;
            }
            items = ni;
            cap_it = nc;
        }
        items[n_it++] = item;
    }
    sqlite3_finalize(st);
    free(bits);
    free(items);
    if (own_txn) sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
    if (ret == MP_OK && out->n_active_users && out->n_active_items)
        out->density = (double)out->n_pairs / ((double)out->n_active_users * (double)out->n_active_items);
    return ret;
}

/* ---- forgetting users, availability ---- */

static int sq_forget_user(mp_store *s, uint32_t user, uint64_t *n_events, mp_error *err) {
    sqlite_store *q = impl(s);
    sqlite3_stmt *st = NULL;
    int rc = get_stmt(q, ST_USER_EXT, &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, user);
    int src = sqlite3_step(st);
    int found = src == SQLITE_ROW;
    int tomb = found && mp_store_is_tombstone((const char *)sqlite3_column_text(st, 0),
                                              (size_t)sqlite3_column_bytes(st, 0));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (src != SQLITE_ROW && src != SQLITE_DONE) return sq_fail(q, src, err, "looking up a user");
    if (!found || tomb)
        return mp_error_set(err, MP_ENOTFOUND, "store \"%s\": user id %u %s", q->path, user,
                            found ? "was already forgotten" : "does not exist");
    if ((rc = get_stmt(q, ST_FORGET_EVENTS, &st, err))) return rc;
    sqlite3_bind_int64(st, 1, user);
    if ((rc = step_done(q, st, err, "deleting a user's events"))) return rc;
    if (n_events) *n_events = (uint64_t)sqlite3_changes(q->db);
    if ((rc = get_stmt(q, ST_EMB_FORGET, &st, err))) return rc;
    sqlite3_bind_int(st, 1, MP_KIND_USERS);
    sqlite3_bind_int64(st, 2, user);
    if ((rc = step_done(q, st, err, "deleting a user's embeddings"))) return rc;
    char tomb_ext[48];
    int len = snprintf(tomb_ext, sizeof tomb_ext, MP_STORE_TOMBSTONE_PREFIX "%u", user);
    if ((rc = get_stmt(q, ST_FORGET_USER, &st, err))) return rc;
    sqlite3_bind_int64(st, 1, user);
    sqlite3_bind_text(st, 2, tomb_ext, len, SQLITE_STATIC);
    return step_done(q, st, err, "forgetting a user");
}

static int sq_set_item_available(mp_store *s, uint32_t item, int available, mp_error *err) {
    sqlite_store *q = impl(s);
    sqlite3_stmt *st = NULL;
    int rc = get_stmt(q, ST_ITEM_AVAILABLE, &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, item);
    sqlite3_bind_int(st, 2, available);
    if ((rc = step_done(q, st, err, "setting an item's availability"))) return rc;
    if (sqlite3_changes(q->db) == 0)
        return mp_error_set(err, MP_ENOTFOUND, "store \"%s\": item id %u does not exist", q->path, item);
    return MP_OK;
}

/* ---- meta ---- */

static int sq_meta_get(mp_store *s, const char *key, char **value, mp_error *err) {
    sqlite_store *q = impl(s);
    sqlite3_stmt *st = NULL;
    int rc = get_stmt(q, ST_META_GET, &st, err);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    int ret = MP_OK;
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        *value = strdup(v ? v : "");
        if (!*value) ret = mp_error_set(err, MP_ENOMEM, "out of memory reading setting \"%s\"", key);
    } else if (rc == SQLITE_DONE) {
        ret = mp_error_set(err, MP_ENOTFOUND, "store \"%s\": no setting \"%s\"", q->path, key);
    } else {
        ret = sq_fail(q, rc, err, "reading a setting");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

static int sq_meta_set(mp_store *s, const char *key, const char *value, mp_error *err) {
    sqlite_store *q = impl(s);
    if (!strcmp(key, "schema_version"))
        return mp_error_set(err, MP_EINVAL, "store: the setting \"schema_version\" is managed by the store");
    sqlite3_stmt *st = NULL;
    int rc = get_stmt(q, ST_META_SET, &st, err);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    return step_done(q, st, err, "writing a setting");
}

/* ---- embeddings ---- */

static const char *kind_word(mp_record_kind kind) {
    return kind == MP_KIND_USERS ? "user" : "item";
}

/* Vectors are stored as little-endian float32 whatever the host. */
static void floats_to_le(const float *v, uint32_t n, unsigned char *out) {
    for (uint32_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &v[i], 4);
        out[4 * i] = (unsigned char)b;
        out[4 * i + 1] = (unsigned char)(b >> 8);
        out[4 * i + 2] = (unsigned char)(b >> 16);
        out[4 * i + 3] = (unsigned char)(b >> 24);
    }
}

static void floats_from_le(const unsigned char *p, uint32_t n, float *out) {
    for (uint32_t i = 0; i < n; i++) {
        uint32_t b = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                     (uint32_t)p[4 * i + 3] << 24;
        memcpy(&out[i], &b, 4);
    }
}

/* Checks a row's dim against its blob; MP_ECORRUPT names the row. */
static int check_emb_row(sqlite_store *q, sqlite3_stmt *st, int col_dim, int col_vec, mp_record_kind kind,
                         uint32_t id, const char *source, uint32_t *dim, mp_error *err) {
    sqlite3_int64 d = sqlite3_column_int64(st, col_dim);
    int bytes = sqlite3_column_bytes(st, col_vec);
    if (d <= 0 || d > MP_MAX_EMBEDDING_DIM || (sqlite3_int64)bytes != d * 4)
        return mp_error_set(err, MP_ECORRUPT,
                            "store \"%s\": embedding of %s id %u (source \"%s\") is damaged: dim %lld, %d bytes",
                            q->path, kind_word(kind), id, source, (long long)d, bytes);
    *dim = (uint32_t)d;
    return MP_OK;
}

/* MP_OK when the item / user exists (and the user was not forgotten). */
static int check_emb_owner(sqlite_store *q, mp_record_kind kind, uint32_t id, mp_error *err) {
    sqlite3_stmt *st = NULL;
    int rc = get_stmt(q, kind == MP_KIND_USERS ? ST_USER_EXT : ST_ITEM_EXT, &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, id);
    int src = sqlite3_step(st);
    int found = src == SQLITE_ROW;
    int tomb = found && mp_store_is_tombstone((const char *)sqlite3_column_text(st, 0),
                                              (size_t)sqlite3_column_bytes(st, 0));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (src != SQLITE_ROW && src != SQLITE_DONE) return sq_fail(q, src, err, "looking up an embedding's owner");
    if (!found || tomb)
        return mp_error_set(err, MP_ENOTFOUND, "store \"%s\": cannot store an embedding for %s id %u: it %s",
                            q->path, kind_word(kind), id, tomb ? "was forgotten" : "does not exist");
    return MP_OK;
}

static int sq_put_embedding(mp_store *s, mp_record_kind kind, uint32_t id, const char *source, const float *v,
                            uint32_t dim, uint64_t text_hash, mp_error *err) {
    sqlite_store *q = impl(s);
    int rc = check_emb_owner(q, kind, id, err);
    if (rc) return rc;
    sqlite3_stmt *st = NULL;
    if ((rc = get_stmt(q, ST_EMB_DIM, &st, err))) return rc;
    sqlite3_bind_int(st, 1, (int)kind);
    sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, id);
    int src = sqlite3_step(st);
    sqlite3_int64 have = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (src != SQLITE_ROW && src != SQLITE_DONE) return sq_fail(q, src, err, "checking an embedding's dimension");
    if (src == SQLITE_ROW && have != (sqlite3_int64)dim)
        return mp_error_set(err, MP_EINVAL,
                            "store \"%s\": %s id %u: embedding has dimension %u but the %ss' embeddings from source "
                            "\"%s\" have dimension %lld (delete them first to change the dimension)",
                            q->path, kind_word(kind), id, dim, kind_word(kind), source, (long long)have);
    unsigned char stackbuf[1024];
    unsigned char *blob = dim * 4u <= sizeof stackbuf ? stackbuf : malloc((size_t)dim * 4u);
    if (!blob) return mp_error_set(err, MP_ENOMEM, "out of memory storing an embedding");
    floats_to_le(v, dim, blob);
    if ((rc = get_stmt(q, ST_EMB_PUT, &st, err)) == MP_OK) {
        sqlite3_bind_int(st, 1, (int)kind);
        sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, id);
        sqlite3_bind_int64(st, 4, dim);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)text_hash);
        sqlite3_bind_blob(st, 6, blob, (int)(dim * 4u), SQLITE_STATIC);
        rc = step_done(q, st, err, "writing an embedding");
    }
    if (blob != stackbuf) free(blob);
    return rc;
}

static int sq_get_embedding(mp_store *s, mp_record_kind kind, uint32_t id, const char *source, float *v, uint32_t cap,
                            uint32_t *dim, uint64_t *text_hash, mp_error *err) {
    sqlite_store *q = impl(s);
    if (q->no_embeddings)
        return mp_error_set(err, MP_ENOTFOUND, "store \"%s\": no %s embedding %u from \"%s\" (the store predates "
                            "embeddings)", q->path, kind_word(kind), id, source);
    sqlite3_stmt *st = NULL;
    int rc = get_stmt(q, ST_EMB_GET, &st, err);
    if (rc) return rc;
    sqlite3_bind_int(st, 1, (int)kind);
    sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        uint32_t d = 0;
        rc = check_emb_row(q, st, 0, 2, kind, id, source, &d, err);
        if (rc == MP_OK) {
            if (dim) *dim = d;
            if (text_hash) *text_hash = (uint64_t)sqlite3_column_int64(st, 1);
            if (cap < d)
                rc = mp_error_set(err, MP_ERANGE, "store: embedding of %s id %u has dimension %u, room for %u",
                                  kind_word(kind), id, d, cap);
            else
                floats_from_le(sqlite3_column_blob(st, 2), d, v);
        }
    } else if (src == SQLITE_DONE) {
        rc = mp_error_set(err, MP_ENOTFOUND, "store \"%s\": no embedding of %s id %u from source \"%s\"", q->path,
                          kind_word(kind), id, source);
    } else {
        rc = sq_fail(q, src, err, "reading an embedding");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int sq_scan_embeddings(mp_store *s, mp_record_kind kind, const char *source, mp_embedding_cb cb, void *ctx,
                              mp_error *err) {
    sqlite_store *q = impl(s);
    if (q->no_embeddings) return MP_OK; /* an old read-only store: nothing to scan */
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db,
                                "SELECT id, dim, text_hash, vec FROM embeddings WHERE kind = ?1 AND source = ?2 "
                                "ORDER BY id",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) return sq_fail(q, rc, err, "scanning embeddings");
    sqlite3_bind_int(st, 1, (int)kind);
    sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
    float *buf = malloc(MP_MAX_EMBEDDING_DIM * sizeof *buf); /* blobs need not be aligned for float */
    int ret = buf ? MP_OK : mp_error_set(err, MP_ENOMEM, "out of memory scanning embeddings");
    while (ret == MP_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t id = (uint32_t)sqlite3_column_int64(st, 0), dim = 0;
        if ((ret = check_emb_row(q, st, 1, 3, kind, id, source, &dim, err)) != MP_OK) break;
        floats_from_le(sqlite3_column_blob(st, 3), dim, buf);
        ret = cb(ctx, id, buf, dim, (uint64_t)sqlite3_column_int64(st, 2));
    }
    if (ret == MP_OK && rc != SQLITE_DONE) ret = sq_fail(q, rc, err, "scanning embeddings");
    sqlite3_finalize(st);
    free(buf);
    return ret;
}

static int sq_delete_embeddings(mp_store *s, mp_record_kind kind, const char *source, uint64_t *n_deleted,
                                mp_error *err) {
    sqlite_store *q = impl(s);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "DELETE FROM embeddings WHERE kind = ?1 AND source = ?2", -1, &st, NULL);
    if (rc != SQLITE_OK) return sq_fail(q, rc, err, "deleting embeddings");
    sqlite3_bind_int(st, 1, (int)kind);
    sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sq_fail(q, rc, err, "deleting embeddings");
    if (n_deleted) *n_deleted = (uint64_t)sqlite3_changes(q->db);
    return MP_OK;
}

static const mp_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .load_ids = sq_load_ids,
    .put_user = sq_put_user,
    .put_item = sq_put_item,
    .add_event = sq_add_event,
    .add_events = sq_add_events,
    .scan_events = sq_scan_events,
    .scan_items = sq_scan_items,
    .scan_users = sq_scan_users,
    .stats = sq_stats,
    .meta_get = sq_meta_get,
    .meta_set = sq_meta_set,
    .forget_user = sq_forget_user,
    .set_item_available = sq_set_item_available,
    .put_embedding = sq_put_embedding,
    .get_embedding = sq_get_embedding,
    .scan_embeddings = sq_scan_embeddings,
    .delete_embeddings = sq_delete_embeddings,
};
