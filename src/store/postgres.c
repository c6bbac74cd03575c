/* The PostgreSQL backend of mp_store (libpq), chosen by a postgres:// or postgresql:// URI. The SQLite backend
 * (sqlite.c) is the reference: the same operations, the same error codes, the same answers.
 *
 * Where the store lives: in the first schema of the connection's search_path (current_schema(); normally
 * "public"), so several stores can share one database: postgres://host/db?options=-csearch_path%3Dshop1. The
 * schema must exist; the tables are created in it on the first read-write open.
 *
 * Durability: every write is committed by the server before the call that made it returns (the session sets
 * synchronous_commit = on, whatever the server's default), so a kill -9 of this process loses nothing it
 * acknowledged; the server rolls back a transaction whose connection dies. What survives a crash of the server or
 * its machine is the server's business (its fsync setting).
 *
 * Writers: mp_store_begin takes a transaction-scoped advisory lock keyed by the schema, so writers of one store
 * take turns the way SQLite's BEGIN IMMEDIATE makes them: an importer reads the id maps after the lock and hands out
 * ids no other writer can take meanwhile. A wait longer than 10 s (lock_timeout) is MP_ESTORE, as with SQLite.
 * PostgreSQL aborts a transaction at its first failed statement; SQLite does not, and Magpie's callers may go on
 * after an MP_ESTORE clash inside a transaction. So no statement here is allowed to fail on a constraint: id clashes
 * and duplicates are detected with ON CONFLICT DO NOTHING and a look at the rows instead.
 *
 * Bulk events (mp_store_add_events) go through COPY FROM STDIN in binary format into a temporary staging table,
 * then one INSERT ... SELECT ... ON CONFLICT DO NOTHING moves them into events in the caller's order (so, as with
 * SQLite, the first of two exact duplicates wins) and reports how many were new.
 *
 * Lost connections: a statement outside a transaction whose connection was lost is retried once on a new
 * connection, and so is a unit this file wraps in a transaction of its own (a bulk write outside the caller's
 * transaction, stats, a scan before its first callback); the second loss is an MP_EIO that says both why's. Inside
 * the caller's transaction nothing is retried (the server has rolled it back): MP_EIO says so, every call fails until
 * the caller rolls back, and the rollback reconnects. A loss during COMMIT is MP_EIO saying the outcome is unknown.
 *
 * Layout (schema version 2), the same tables as sqlite.c with PostgreSQL types:
 *   meta(key text PRIMARY KEY, value text)
 *   users(id bigint PRIMARY KEY, ext bytea UNIQUE, attrs text)      ext: bytea, because tombstones start with 0xFF
 *   items(id bigint PRIMARY KEY, ext bytea UNIQUE, title, description, category, brand text, price float8,
 *         attrs text, available smallint)
 *   events(user_id, item_id bigint, type smallint, ts bigint, value float8, text, session text,
 *          PRIMARY KEY (user_id, ts, item_id, type))               the dedup key in scan order, as in sqlite.c
 *   embeddings(kind smallint, source text, id bigint, dim int, text_hash bigint, vec bytea (float32 LE),
 *              PRIMARY KEY (kind, source, id)), index (kind, id)
 * Text columns cannot hold a NUL byte in PostgreSQL; such a value is refused with MP_EINVAL before it is sent. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/backend.h"

/* Type OIDs of the parameters and results used here (fixed in pg_type.dat since PostgreSQL 7). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25
#define OID_FLOAT8 701

#define LOCK_CLASS 0x4d475049 /* "MGPI": the advisory-lock class of Magpie stores */
#define SCAN_FETCH 20000      /* rows per FETCH of a scan cursor */
#define MAX_PARAMS 10

/* Prepared on first use on each connection (names "mp_<index>"), forgotten at reconnect. */
enum {
    PS_ADD_EVENT,
    PS_USER_BARE,
    PS_USER_FULL,
    PS_ITEM_BARE,
    PS_ITEM_FULL,
    PS_META_GET,
    PS_META_SET,
    PS_USER_EXT,
    PS_ITEM_EXT,
    PS_FORGET_EVENTS,
    PS_FORGET_EMB,
    PS_FORGET_USER,
    PS_ITEM_AVAILABLE,
    PS_EMB_PUT,
    PS_EMB_GET,
    PS_EMB_DIM,
    PS_MOVE_STAGE,
    PS_COUNT
};

typedef struct stmt_def {
    const char *sql;
    int n;
    unsigned types[MAX_PARAMS];
} stmt_def;

/* A bare put inserts (id, ext) unless either is taken; the outer SELECT sees the table as it was before the insert,
 * so when nothing was inserted it shows the row that was there: the same pair (fine) or a clash. */
#define BARE_PUT(T)                                                                                                    \
    "WITH ins AS (INSERT INTO " T "(id, ext) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1) "                   \
    "SELECT (SELECT count(*) FROM ins)::int8, (SELECT count(*) FROM " T " WHERE id = $1 AND ext = $2)::int8, "       \
    "(SELECT count(*) FROM " T " WHERE id = $1)::int8"
/* A full put updates the row of (id, ext) or inserts a new one, and does nothing when the id belongs to another
 * external id or the external id to another id; the counts tell which. */
#define FULL_PUT_GUARD(T)                                                                                              \
    "WITH clash AS (SELECT (count(*) FILTER (WHERE id = $1 AND ext <> $2))::int8 AS id_taken, "                       \
    "(count(*) FILTER (WHERE id <> $1 AND ext = $2))::int8 AS ext_taken FROM " T " WHERE id = $1 OR ext = $2), "      \
    "up AS (INSERT INTO " T
static const stmt_def stmt_defs[PS_COUNT] = {
    [PS_ADD_EVENT] = {"INSERT INTO events(user_id, item_id, type, ts, value, text, session) "
                      "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                      7,
                      {OID_INT8, OID_INT8, OID_INT2, OID_INT8, OID_FLOAT8, OID_TEXT, OID_TEXT}},
    [PS_USER_BARE] = {BARE_PUT("users"), 2, {OID_INT8, OID_BYTEA}},
    [PS_USER_FULL] = {FULL_PUT_GUARD("users") "(id, ext, attrs) SELECT $1, $2, $3 FROM clash "
                                              "WHERE id_taken = 0 AND ext_taken = 0 "
                                              "ON CONFLICT (id) DO UPDATE SET attrs = excluded.attrs RETURNING 1) "
                                              "SELECT id_taken, ext_taken, (SELECT count(*) FROM up)::int8 FROM clash",
                      3,
                      {OID_INT8, OID_BYTEA, OID_TEXT}},
    [PS_ITEM_BARE] = {BARE_PUT("items"), 2, {OID_INT8, OID_BYTEA}},
    [PS_ITEM_FULL] = {FULL_PUT_GUARD("items") "(id, ext, title, description, category, brand, price, attrs, "
                                              "available) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 FROM clash "
                                              "WHERE id_taken = 0 AND ext_taken = 0 ON CONFLICT (id) DO UPDATE SET "
                                              "title = excluded.title, description = excluded.description, "
                                              "category = excluded.category, brand = excluded.brand, "
                                              "price = excluded.price, attrs = excluded.attrs, "
                                              "available = excluded.available RETURNING 1) "
                                              "SELECT id_taken, ext_taken, (SELECT count(*) FROM up)::int8 FROM clash",
                      9,
                      {OID_INT8, OID_BYTEA, OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_FLOAT8, OID_TEXT, OID_INT2}},
    [PS_META_GET] = {"SELECT value FROM meta WHERE key = $1", 1, {OID_TEXT}},
    [PS_META_SET] = {"INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = "
                     "excluded.value",
                     2,
                     {OID_TEXT, OID_TEXT}},
    [PS_USER_EXT] = {"SELECT ext FROM users WHERE id = $1", 1, {OID_INT8}},
    [PS_ITEM_EXT] = {"SELECT ext FROM items WHERE id = $1", 1, {OID_INT8}},
    [PS_FORGET_EVENTS] = {"DELETE FROM events WHERE user_id = $1", 1, {OID_INT8}},
    [PS_FORGET_EMB] = {"DELETE FROM embeddings WHERE kind = $1 AND id = $2", 2, {OID_INT2, OID_INT8}},
    [PS_FORGET_USER] = {"UPDATE users SET ext = $2, attrs = NULL WHERE id = $1", 2, {OID_INT8, OID_BYTEA}},
    [PS_ITEM_AVAILABLE] = {"UPDATE items SET available = $2 WHERE id = $1", 2, {OID_INT8, OID_INT2}},
    [PS_EMB_PUT] = {"INSERT INTO embeddings(kind, source, id, dim, text_hash, vec) VALUES ($1, $2, $3, $4, $5, $6) "
                    "ON CONFLICT (kind, source, id) DO UPDATE SET dim = excluded.dim, text_hash = excluded.text_hash, "
                    "vec = excluded.vec",
                    6,
                    {OID_INT2, OID_TEXT, OID_INT8, OID_INT4, OID_INT8, OID_BYTEA}},
    [PS_EMB_GET] = {"SELECT dim, text_hash, vec FROM embeddings WHERE kind = $1 AND source = $2 AND id = $3",
                    3,
                    {OID_INT2, OID_TEXT, OID_INT8}},
    /* the dimension of the source's other vectors (all equal); the one being replaced does not count */
    [PS_EMB_DIM] = {"SELECT dim FROM embeddings WHERE kind = $1 AND source = $2 AND id <> $3 LIMIT 1",
                    3,
                    {OID_INT2, OID_TEXT, OID_INT8}},
    /* the staged rows into events, in the caller's order, emptying the staging table (see add_events_once) */
    [PS_MOVE_STAGE] = {"WITH d AS (DELETE FROM mp_stage RETURNING *) "
                       "INSERT INTO events(user_id, item_id, type, ts, value, text, session) "
                       "SELECT user_id, item_id, type, ts, value, text, session FROM d ORDER BY seq "
                       "ON CONFLICT DO NOTHING",
                       0,
                       {0}},
};

/* Migration N takes schema version N-1 to N; they run in order inside one transaction at open. */
static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE IF NOT EXISTS meta(key text PRIMARY KEY, value text NOT NULL);"
    "CREATE TABLE users(id bigint PRIMARY KEY, ext bytea NOT NULL UNIQUE, attrs text);"
    "CREATE TABLE items(id bigint PRIMARY KEY, ext bytea NOT NULL UNIQUE, title text, description text,"
    " category text, brand text, price double precision, attrs text, available smallint NOT NULL DEFAULT 1);"
    "CREATE TABLE events(user_id bigint NOT NULL, item_id bigint NOT NULL, type smallint NOT NULL,"
    " ts bigint NOT NULL, value double precision, text text, session text,"
    " PRIMARY KEY (user_id, ts, item_id, type));",
    /* 2: embedding vectors; the key puts (kind, source) first so one source scans in id order, the index serves
     * forgetting a user (all sources of one id). */
    "CREATE TABLE embeddings(kind smallint NOT NULL, source text NOT NULL, id bigint NOT NULL,"
    " dim integer NOT NULL, text_hash bigint NOT NULL, vec bytea NOT NULL, PRIMARY KEY (kind, source, id));"
    "CREATE INDEX embeddings_by_id ON embeddings(kind, id);",
};
#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])
_Static_assert(N_MIGRATIONS == MP_STORE_SCHEMA_VERSION, "one migration per schema version");

typedef struct pg_store {
    mp_store base;        /* must be first */
    PGconn *conn;         /* the connection (owned) */
    char *conninfo;       /* the URI as given, for reconnecting (owned; may hold a password) */
    char *name;           /* the URI with any password masked, for messages (owned) */
    char *addr;           /* "host H port P database D", for connection errors (owned) */
    int readonly;         /* opened with MP_STORE_READONLY */
    int no_embeddings;    /* a read-only store of schema version 1 (no embeddings table) */
    int own_txn;          /* 1 while this file runs a transaction of its own (stats, scans, bulk writes) */
    int txn_lost;         /* the connection died inside the caller's transaction: fail until rollback */
    int lost;             /* the last failure was a lost connection (lets an own transaction retry once) */
    int32_t lock_key;     /* advisory lock of this store: FNV-1a of the schema name */
    char prepared[PS_COUNT]; /* 1 once stmt_defs[i] is prepared on this connection */
    size_t stage_dead;       /* rows deleted from mp_stage since its last TRUNCATE */
} pg_store;

static pg_store *impl(mp_store *s) {
    return (pg_store *)s;
}

/* ---- small helpers ---- */

static void put_be(unsigned char *p, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_be(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

/* The first line of a libpq message, without the "ERROR:  " / "FATAL:  " prefix, into buf. */
static const char *first_line(const char *msg, char *buf, size_t cap) {
    if (!msg || !*msg) msg = "no message from the server";
    for (const char *pre = NULL; (pre = strstr(msg, ":  ")) && pre - msg < 10; msg = pre + 3)
        ;
    size_t n = strcspn(msg, "\n");
    if (n >= cap) n = cap - 1;
    memcpy(buf, msg, n);
    buf[n] = 0;
    return buf;
}

/* The URI with the password masked ("postgres://user:***@host/db", "password=***"), for messages. */
static char *masked_uri(const char *uri) {
    size_t n = strlen(uri);
    char *out = malloc(n + 16);
    if (!out) return NULL;
    const char *auth = strstr(uri, "://");
    auth = auth ? auth + 3 : uri;
    const char *at = strchr(auth, '@'), *slash = strchr(auth, '/'), *colon = strchr(auth, ':');
    size_t o = 0;
    if (at && (!slash || at < slash) && colon && colon < at) { /* user:password@ */
        o = (size_t)(colon - uri);
        memcpy(out, uri, o);
        memcpy(out + o, ":***", 4);
        o += 4;
        uri = at;
    }
    const char *pw = strstr(uri, "password=");
    if (pw) {
        memcpy(out + o, uri, (size_t)(pw - uri) + 9);
        o += (size_t)(pw - uri) + 9;
        memcpy(out + o, "***", 3);
        o += 3;
        uri = pw + 9 + strcspn(pw + 9, "&");
    }
    snprintf(out + o, n + 16 - o, "%s", uri);
    return out;
}

/* "host H port P database D" from the URI (libpq's defaults for what it leaves out). */
static char *address_of(const char *uri) {
    const char *host = NULL, *port = NULL, *db = NULL, *user = NULL;
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(uri, &msg);
    PQfreemem(msg);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!strcmp(o->keyword, "host") && o->val && *o->val) host = o->val;
        if (!strcmp(o->keyword, "hostaddr") && o->val && *o->val && !host) host = o->val;
        if (!strcmp(o->keyword, "port") && o->val && *o->val) port = o->val;
        if (!strcmp(o->keyword, "dbname") && o->val && *o->val) db = o->val;
        if (!strcmp(o->keyword, "user") && o->val && *o->val) user = o->val;
    }
    char buf[768];
    snprintf(buf, sizeof buf, "host %s port %s database %s", host ? host : "localhost (default socket)",
             port ? port : "5432", db ? db : (user ? user : "(the user's name)"));
    PQconninfoFree(opts);
    return strdup(buf);
}

/* ---- errors ---- */

/* Turns a failed result (or a failed connection) into an mp_error. `what` says what was being done. */
static int pq_fail(pg_store *q, const PGresult *r, mp_error *err, const char *what) {
    char line[400];
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : PQerrorMessage(q->conn);
    first_line(msg, line, sizeof line);
    if (!state) state = "";
    if (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3) || PQstatus(q->conn) == CONNECTION_BAD)
        return mp_error_set(err, MP_EIO, "store \"%s\": %s: the connection to PostgreSQL (%s) failed: %s", q->name,
                            what, q->addr, line);
    if (!strcmp(state, "55P03") || !strcmp(state, "40P01") || !strcmp(state, "40001"))
        return mp_error_set(err, MP_ESTORE,
                            "store \"%s\": %s: the store is locked by another writer (is another import "
                            "running?); try again when it finishes (%s)",
                            q->name, what, line);
    if (!strcmp(state, "25006"))
        return mp_error_set(err, MP_ESTORE, "store \"%s\": %s: the store is read-only (%s)", q->name, what, line);
    if (!strcmp(state, "42501"))
        return mp_error_set(err, MP_ESTORE, "store \"%s\": %s: the database user lacks a privilege (%s)", q->name,
                            what, line);
    if (!strcmp(state, "53100"))
        return mp_error_set(err, MP_EIO, "store \"%s\": %s: the database server's disk is full (%s)", q->name, what,
                            line);
    if (!strncmp(state, "53", 2) || !strncmp(state, "58", 2))
        return mp_error_set(err, MP_EIO, "store \"%s\": %s: %s", q->name, what, line);
    if (!strncmp(state, "XX00", 4) || !strcmp(state, "42P01") || !strcmp(state, "42703"))
        return mp_error_set(err, MP_ECORRUPT, "store \"%s\": %s: not a Magpie store or a damaged one (%s)", q->name,
                            what, line);
    if (!strcmp(state, "23505"))
        return mp_error_set(err, MP_ESTORE, "store \"%s\": %s: written by another process meanwhile (%s)", q->name,
                            what, line);
    return mp_error_set(err, MP_ESTORE, "store \"%s\": %s: %s", q->name, what, line);
}

/* ---- connection ---- */

static int exec_simple(pg_store *q, const char *sql, mp_error *err, const char *what);

/* Session settings, after every (re)connect. */
static int setup_session(pg_store *q, mp_error *err) {
    memset(q->prepared, 0, sizeof q->prepared);
    q->stage_dead = 0;
    /* synchronous_commit = on: a commit returns after the server has written it to its WAL (see the top). */
    int rc = exec_simple(q,
                         "SET synchronous_commit = on; SET client_encoding = 'UTF8'; SET lock_timeout = '10s';"
                         "SET client_min_messages = warning",
                         err, "configuring the session");
    if (rc == MP_OK && q->readonly) rc = exec_simple(q, "SET default_transaction_read_only = on", err, "configuring");
    if (rc == MP_OK && !q->readonly)
        rc = exec_simple(q,
                         "CREATE TEMP TABLE IF NOT EXISTS mp_stage(seq int4, user_id int8, item_id int8, type int2,"
                         " ts int8, value float8, text text, session text)",
                         err, "creating the staging table");
    return rc;
}

static int connect_db(pg_store *q, mp_error *err) {
    if (q->conn) PQfinish(q->conn);
    q->conn = PQconnectdb(q->conninfo);
    if (!q->conn) return mp_error_set(err, MP_ENOMEM, "out of memory connecting to store \"%s\"", q->name);
    if (PQstatus(q->conn) != CONNECTION_OK) {
        char line[400];
        first_line(PQerrorMessage(q->conn), line, sizeof line);
        return mp_error_set(err, MP_EIO, "store \"%s\": cannot connect to PostgreSQL at %s: %s", q->name, q->addr,
                            line);
    }
    return setup_session(q, err);
}

/* After a lost connection: a new one, with the session set up again. */
static int reconnect(pg_store *q, mp_error *err) {
    return connect_db(q, err);
}

/* Runs one statement and hands back its result when its status is `want` (*out may be NULL: cleared here).
 * stmt >= 0: the prepared statement stmt_defs[stmt] (params in binary); stmt < 0: `sql`, with params if n > 0
 * (multiple statements only when n == 0 and results are text). Retries once on a new connection when the connection
 * was lost outside any transaction. */
static int run(pg_store *q, int stmt, const char *sql, int n, const char *const *vals, const int *lens,
               const unsigned *types, int binary, ExecStatusType want, PGresult **out, mp_error *err,
               const char *what) {
    if (out) *out = NULL;
    q->lost = 0;
    if (q->txn_lost)
        return mp_error_set(err, MP_EIO,
                            "store \"%s\": %s: the connection was lost inside this transaction, which the server "
                            "rolled back; roll back and start again",
                            q->name, what);
    char why1[400] = "";
    for (int attempt = 0;; attempt++) {
        int in_txn = q->base.in_txn || q->own_txn;
        if (PQstatus(q->conn) == CONNECTION_BAD && !in_txn) {
            mp_error e2;
            if (reconnect(q, &e2) != MP_OK) {
                q->lost = 1;
                return mp_error_set(err, MP_EIO, "%s", e2.msg);
            }
        }
        int fmts[MAX_PARAMS];
        for (int i = 0; i < n && i < MAX_PARAMS; i++)
            fmts[i] = 1;
        PGresult *r = NULL;
        if (stmt >= 0) {
            if (!q->prepared[stmt]) {
                char name[16];
                snprintf(name, sizeof name, "mp_%d", stmt);
                PGresult *pr = PQprepare(q->conn, name, stmt_defs[stmt].sql, stmt_defs[stmt].n,
                                         (const Oid *)stmt_defs[stmt].types);
                if (PQresultStatus(pr) == PGRES_COMMAND_OK) {
                    q->prepared[stmt] = 1;
                    PQclear(pr);
                } else {
                    r = pr;
                }
            }
            if (!r) {
                char name[16];
                snprintf(name, sizeof name, "mp_%d", stmt);
                r = PQexecPrepared(q->conn, name, n, vals, lens, fmts, binary);
            }
        } else if (n == 0 && !binary) {
            r = PQexec(q->conn, sql);
        } else {
            r = PQexecParams(q->conn, sql, n, (const Oid *)types, vals, lens, fmts, binary);
        }
        ExecStatusType st = PQresultStatus(r);
        if (r && st == want) {
            if (out)
                *out = r;
            else
                PQclear(r);
            return MP_OK;
        }
        if (PQstatus(q->conn) != CONNECTION_BAD) {
            int rc = r ? pq_fail(q, r, err, what)
                       : mp_error_set(err, MP_ENOMEM, "store \"%s\": %s: out of memory", q->name, what);
            PQclear(r);
            return rc;
        }
        /* the connection is gone */
        char why[400];
        first_line(r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : PQerrorMessage(q->conn), why,
                   sizeof why);
        PQclear(r);
        q->lost = 1;
        if (q->base.in_txn) {
            q->txn_lost = 1;
            if (sql && !strcmp(sql, "COMMIT"))
                return mp_error_set(err, MP_EIO,
                                    "store \"%s\": the connection to PostgreSQL (%s) was lost during COMMIT (%s): "
                                    "the transaction may or may not have been committed; check before retrying",
                                    q->name, q->addr, why);
            return mp_error_set(err, MP_EIO,
                                "store \"%s\": %s: the connection to PostgreSQL (%s) was lost inside a transaction "
                                "(%s); the server rolled the transaction back, nothing of it was written",
                                q->name, what, q->addr, why);
        }
        if (q->own_txn)
            return mp_error_set(err, MP_EIO, "store \"%s\": %s: the connection to PostgreSQL (%s) was lost (%s)",
                                q->name, what, q->addr, why);
        if (attempt > 0)
            return mp_error_set(err, MP_EIO,
                                "store \"%s\": %s: the connection to PostgreSQL (%s) was lost (%s); reconnected and "
                                "retried once, which failed too (%s)",
                                q->name, what, q->addr, why1, why);
        snprintf(why1, sizeof why1, "%s", why);
        mp_error e2;
        if (reconnect(q, &e2) != MP_OK)
            return mp_error_set(err, MP_EIO, "store \"%s\": %s: the connection to PostgreSQL was lost (%s); "
                                "reconnecting failed: %s",
                                q->name, what, why1, e2.msg);
    }
}

static int exec_simple(pg_store *q, const char *sql, mp_error *err, const char *what) {
    return run(q, -1, sql, 0, NULL, NULL, NULL, 0, PGRES_COMMAND_OK, NULL, err, what);
}

/* A query with text results and no parameters. */
static int query_text(pg_store *q, const char *sql, PGresult **out, mp_error *err, const char *what) {
    return run(q, -1, sql, 0, NULL, NULL, NULL, 0, PGRES_TUPLES_OK, out, err, what);
}

/* ---- parameters (binary format) ---- */

typedef struct params {
    const char *val[MAX_PARAMS];
    int len[MAX_PARAMS];
    unsigned type[MAX_PARAMS];
    unsigned char num[MAX_PARAMS][8];
    int n;
} params;

static void p_int(params *p, int64_t v, unsigned type) {
    int bytes = type == OID_INT2 ? 2 : type == OID_INT4 ? 4 : 8;
    put_be(p->num[p->n], (uint64_t)v, bytes);
    p->val[p->n] = (const char *)p->num[p->n];
    p->len[p->n] = bytes;
    p->type[p->n++] = type;
}

static void p_f64(params *p, double v) {
    uint64_t b;
    memcpy(&b, &v, 8);
    put_be(p->num[p->n], b, 8);
    p->val[p->n] = (const char *)p->num[p->n];
    p->len[p->n] = 8;
    p->type[p->n++] = OID_FLOAT8;
}

static void p_null(params *p, unsigned type) {
    p->val[p->n] = NULL;
    p->len[p->n] = 0;
    p->type[p->n++] = type;
}

static void p_bytes(params *p, const void *v, size_t len, unsigned type) {
    p->val[p->n] = len ? (const char *)v : "";
    p->len[p->n] = (int)len;
    p->type[p->n++] = type;
}

/* An optional text: empty is NULL, as in sqlite.c. */
static void p_str(params *p, mp_str s) {
    if (!s.len || !s.ptr)
        p_null(p, OID_TEXT);
    else
        p_bytes(p, s.ptr, s.len, OID_TEXT);
}

/* MP_EINVAL when one of the texts holds a NUL byte, which PostgreSQL's text type cannot store. */
static int check_nul(pg_store *q, const char *what, uint32_t id, const mp_str *f, int n, mp_error *err) {
    for (int i = 0; i < n; i++)
        if (f[i].len && memchr(f[i].ptr, 0, f[i].len))
            return mp_error_set(err, MP_EINVAL, "store \"%s\": %s %u: a text field holds a NUL byte, which "
                                "PostgreSQL cannot store", q->name, what, id);
    return MP_OK;
}

static int run_stmt(pg_store *q, int stmt, const params *p, ExecStatusType want, PGresult **out, mp_error *err,
                    const char *what) {
    return run(q, stmt, NULL, p->n, p->val, p->len, NULL, 1, want, out, err, what);
}

/* ---- results (binary format) ---- */

static int64_t r_int(const PGresult *r, int row, int col) {
    const unsigned char *v = (const unsigned char *)PQgetvalue(r, row, col);
    int len = PQgetlength(r, row, col);
    if (len == 2) return (int16_t)get_be(v, 2);
    if (len == 4) return (int32_t)get_be(v, 4);
    if (len == 8) return (int64_t)get_be(v, 8);
    return 0;
}

static double r_f64(const PGresult *r, int row, int col) {
    uint64_t b = get_be((const unsigned char *)PQgetvalue(r, row, col), 8);
    double d;
    memcpy(&d, &b, 8);
    return d;
}

static mp_str r_str(const PGresult *r, int row, int col) {
    mp_str s = {"", 0};
    if (!PQgetisnull(r, row, col)) {
        s.ptr = PQgetvalue(r, row, col);
        s.len = (size_t)PQgetlength(r, row, col);
    }
    return s;
}

/* ---- schema ---- */

/* Reads the schema version of the current schema: 0 when it holds no tables; MP_ECORRUPT when it holds tables but
 * no meta table (someone else's schema). */
static int read_schema_version(pg_store *q, long *version, mp_error *err) {
    PGresult *r = NULL;
    *version = 0;
    int rc = query_text(q,
                        "SELECT count(*), count(*) FILTER (WHERE c.relname = 'meta') FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')",
                        &r, err, "reading the schema");
    if (rc) return rc;
    long n_tables = atol(PQgetvalue(r, 0, 0)), has_meta = atol(PQgetvalue(r, 0, 1));
    PQclear(r);
    if (!has_meta) {
        if (n_tables > 0)
            return mp_error_set(err, MP_ECORRUPT,
                                "store \"%s\": the schema holds tables but is not a Magpie store (no meta table); "
                                "give another database or schema",
                                q->name);
        return MP_OK;
    }
    rc = query_text(q, "SELECT value FROM meta WHERE key = 'schema_version'", &r, err, "reading the schema version");
    if (rc) return rc;
    if (PQntuples(r) == 1) {
        const char *v = PQgetvalue(r, 0, 0);
        char *end = NULL;
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < 0)
            rc = mp_error_set(err, MP_ECORRUPT, "store \"%s\": meta.schema_version is \"%s\", not a number", q->name,
                              v);
        else
            *version = n;
    }
    PQclear(r);
    return rc;
}

static int check_version(pg_store *q, long version, mp_error *err) {
    if (version > MP_STORE_SCHEMA_VERSION)
        return mp_error_set(err, MP_EVERSION,
                            "store \"%s\" has schema version %ld but this magpie supports up to version %d; "
                            "upgrade magpie to open it",
                            q->name, version, MP_STORE_SCHEMA_VERSION);
    return MP_OK;
}

/* BEGIN and the store's writer lock (see the top). */
static int begin_write(pg_store *q, mp_error *err) {
    char sql[128];
    snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%d, %d)", LOCK_CLASS, (int)q->lock_key);
    PGresult *r = NULL;
    int rc = run(q, -1, sql, 0, NULL, NULL, NULL, 0, PGRES_TUPLES_OK, &r, err, "begin");
    PQclear(r);
    if (rc && PQtransactionStatus(q->conn) != PQTRANS_IDLE) {
        PGresult *rb = PQexec(q->conn, "ROLLBACK");
        PQclear(rb);
    }
    return rc;
}

static void rollback_quietly(pg_store *q) {
    if (q->conn && PQstatus(q->conn) == CONNECTION_OK && PQtransactionStatus(q->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(q->conn, "ROLLBACK");
        PQclear(r);
    }
}

static int migrate(pg_store *q, mp_error *err) {
    q->own_txn = 1;
    int rc = begin_write(q, err); /* the lock first, so two processes opening a fresh store do not both create it */
    long version = 0;
    if (rc == MP_OK) rc = read_schema_version(q, &version, err);
    if (rc == MP_OK) rc = check_version(q, version, err);
    for (long v = version; rc == MP_OK && v < MP_STORE_SCHEMA_VERSION; v++) {
        char what[64];
        snprintf(what, sizeof what, "migrating the schema to version %ld", v + 1);
        rc = exec_simple(q, migrations[v], err, what);
    }
    if (rc == MP_OK && version < MP_STORE_SCHEMA_VERSION) {
        char sql[200];
        snprintf(sql, sizeof sql,
                 "INSERT INTO meta(key, value) VALUES ('schema_version', '%d') "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 MP_STORE_SCHEMA_VERSION);
        rc = exec_simple(q, sql, err, "recording the schema version");
        if (rc == MP_OK && version == 0)
            rc = exec_simple(q,
                             "INSERT INTO meta(key, value) VALUES ('created_at', "
                             "extract(epoch FROM now())::bigint::text) ON CONFLICT DO NOTHING",
                             err, "recording the creation time");
    }
    if (rc == MP_OK) rc = exec_simple(q, "COMMIT", err, "committing the schema");
    if (rc != MP_OK) rollback_quietly(q);
    q->own_txn = 0;
    return rc;
}

/* ---- open / close ---- */

static const mp_store_ops pg_ops;

static void pg_close(mp_store *s) {
    pg_store *q = impl(s);
    if (q->conn) {
        rollback_quietly(q);
        PQfinish(q->conn);
    }
    free(q->conninfo);
    free(q->name);
    free(q->addr);
    free(q);
}

int mp_postgres_open(mp_store **out, const char *uri, mp_store_mode mode, mp_error *err) {
    *out = NULL;
    pg_store *q = calloc(1, sizeof *q);
    char *msg = NULL;
    PQconninfoOption *parsed = q ? PQconninfoParse(uri, &msg) : NULL;
    if (q && !parsed) {
        char line[400];
        int rc = mp_error_set(err, MP_EINVAL, "store URI \"%.200s\" is not a valid PostgreSQL URI: %s", uri,
                              first_line(msg ? msg : "out of memory", line, sizeof line));
        PQfreemem(msg);
        free(q);
        return rc;
    }
    PQconninfoFree(parsed);
    /* application_name shows the store's connections in pg_stat_activity; the caller's own one wins. */
    size_t ulen = strlen(uri);
    if (q && (q->conninfo = malloc(ulen + 40))) {
        if (strstr(uri, "application_name="))
            memcpy(q->conninfo, uri, ulen + 1);
        else
            snprintf(q->conninfo, ulen + 40, "%s%sapplication_name=magpie", uri, strchr(uri, '?') ? "&" : "?");
    }
    if (!q || !q->conninfo || !(q->name = masked_uri(uri)) || !(q->addr = address_of(uri))) {
        if (q) {
            free(q->conninfo);
            free(q->name);
        }
        free(q);
        return mp_error_set(err, MP_ENOMEM, "out of memory opening a PostgreSQL store");
    }
    q->base.ops = &pg_ops;
    q->readonly = mode == MP_STORE_READONLY;
    int rc = connect_db(q, err);
    PGresult *r = NULL;
    if (rc == MP_OK) rc = query_text(q, "SELECT current_schema()", &r, err, "finding the schema");
    if (rc == MP_OK) {
        if (PQgetisnull(r, 0, 0)) {
            rc = mp_error_set(err, q->readonly ? MP_ENOTFOUND : MP_EINVAL,
                              "store \"%s\": no schema to %s the store in: the search_path names no existing "
                              "schema (create it first: CREATE SCHEMA name)",
                              q->name, q->readonly ? "find" : "create");
        } else {
            uint32_t h = 2166136261u; /* FNV-1a of the schema name */
            for (const char *c = PQgetvalue(r, 0, 0); *c; c++)
                h = (h ^ (unsigned char)*c) * 16777619u;
            q->lock_key = (int32_t)h;
        }
    }
    PQclear(r);
    if (rc == MP_OK) {
        if (q->readonly) {
            long version;
            rc = read_schema_version(q, &version, err);
            if (rc == MP_OK) rc = check_version(q, version, err);
            if (rc == MP_OK && version == 0)
                rc = mp_error_set(err, MP_ENOTFOUND,
                                  "store \"%s\" does not exist yet (no Magpie tables in the schema); import data "
                                  "first (magpie import events FILE --db URI)",
                                  q->name);
            else if (rc == MP_OK && version < MP_STORE_SCHEMA_VERSION)
                q->no_embeddings = 1;
        } else {
            rc = migrate(q, err);
        }
    }
    if (rc != MP_OK) {
        pg_close(&q->base);
        return rc;
    }
    *out = &q->base;
    return MP_OK;
}

/* ---- transactions ---- */

static int pg_begin(mp_store *s, mp_error *err) {
    pg_store *q = impl(s);
    if (q->readonly) return exec_simple(q, "BEGIN", err, "begin");
    return begin_write(q, err);
}

static int pg_commit(mp_store *s, mp_error *err) {
    return exec_simple(impl(s), "COMMIT", err, "commit");
}

static int pg_rollback(mp_store *s, mp_error *err) {
    pg_store *q = impl(s);
    if (q->txn_lost || PQstatus(q->conn) == CONNECTION_BAD) {
        /* the server rolled it back already; a working connection for what comes next */
        q->txn_lost = 0;
        return reconnect(q, err);
    }
    if (PQtransactionStatus(q->conn) == PQTRANS_IDLE) return MP_OK;
    int rc = exec_simple(q, "ROLLBACK", err, "rollback");
    if (q->txn_lost) {
        q->txn_lost = 0;
        reconnect(q, NULL);
    }
    return rc;
}

/* Runs an own transaction around a read when the caller has none (a consistent snapshot, and a cursor needs one). */
static int own_read_begin(pg_store *q, int *own, mp_error *err) {
    *own = !q->base.in_txn;
    if (!*own) return MP_OK;
    int rc = exec_simple(q, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, "starting a read");
    if (rc == MP_OK) q->own_txn = 1;
    return rc;
}

static void own_end(pg_store *q, int own) {
    if (!own) return;
    q->own_txn = 0;
    rollback_quietly(q); /* a read: nothing to commit */
}

/* ---- ids, users, items ---- */

static int pg_load_ids(mp_store *s, mp_record_kind kind, mp_strmap **out, mp_error *err) {
    pg_store *q = impl(s);
    *out = NULL;
    const char *table = kind == MP_KIND_USERS ? "users" : "items";
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT id, ext FROM %s ORDER BY id", table);
    PGresult *r = NULL;
    int rc = run(q, -1, sql, 0, NULL, NULL, NULL, 1, PGRES_TUPLES_OK, &r, err, "loading ids");
    if (rc) return rc;
    int n = PQntuples(r);
    mp_strmap *m;
    if (mp_strmap_create(&m, (size_t)n) != MP_OK) {
        PQclear(r);
        return mp_error_set(err, MP_ENOMEM, "out of memory loading %s ids", table);
    }
    for (int i = 0; i < n && rc == MP_OK; i++) {
        int64_t id = r_int(r, i, 0);
        mp_str ext = r_str(r, i, 1);
        if (id < 0 || id >= (int64_t)MP_STRMAP_NONE) {
            rc = mp_error_set(err, MP_ECORRUPT, "store \"%s\": %s.id %lld is out of range", q->name, table,
                              (long long)id);
            break;
        }
        int prc = mp_strmap_put(m, ext.ptr, ext.len, (uint32_t)id);
        if (prc != MP_OK)
            rc = prc == MP_ENOMEM ? mp_error_set(err, MP_ENOMEM, "out of memory loading %s ids", table)
                                  : mp_error_set(err, MP_ECORRUPT, "store \"%s\": duplicate %s id \"%.*s\"", q->name,
                                                 table, (int)ext.len, ext.ptr);
    }
    PQclear(r);
    if (rc != MP_OK) {
        mp_strmap_destroy(m);
        return rc;
    }
    *out = m;
    return MP_OK;
}

/* The answer of a bare put (inserted, same pair present, id present) as an mp_error. */
static int bare_result(pg_store *q, PGresult *r, const char *kind, uint32_t id, mp_str ext, mp_error *err) {
    int64_t inserted = r_int(r, 0, 0), same = r_int(r, 0, 1), id_taken = r_int(r, 0, 2);
    PQclear(r);
    if (inserted || same) return MP_OK;
    if (id_taken)
        return mp_error_set(err, MP_ESTORE,
                            "store \"%s\": %s id %u belongs to another external id than \"%.*s\" (was the store "
                            "written by another process meanwhile?)",
                            q->name, kind, id, (int)ext.len, ext.ptr);
    return mp_error_set(err, MP_ESTORE,
                        "store \"%s\": %s \"%.*s\" already exists under another id (was the store written by another "
                        "process meanwhile?)",
                        q->name, kind, (int)ext.len, ext.ptr);
}

/* The answer of a full put (id taken, external id taken, rows written) as an mp_error. */
static int full_result(pg_store *q, PGresult *r, const char *kind, uint32_t id, mp_str ext, mp_error *err) {
    int64_t id_taken = r_int(r, 0, 0), ext_taken = r_int(r, 0, 1);
    PQclear(r);
    if (ext_taken)
        return mp_error_set(err, MP_ESTORE, "store \"%s\": %s \"%.*s\" already exists under another id", q->name,
                            kind, (int)ext.len, ext.ptr);
    if (id_taken)
        return mp_error_set(err, MP_ESTORE, "store \"%s\": %s id %u belongs to another external id than \"%.*s\"",
                            q->name, kind, id, (int)ext.len, ext.ptr);
    return MP_OK;
}

static int pg_put_user(mp_store *s, uint32_t id, const mp_user *u, mp_error *err) {
    pg_store *q = impl(s);
    int rc = check_nul(q, "user id", id, &u->attrs, 1, err);
    if (rc) return rc;
    params p = {.n = 0};
    p_int(&p, id, OID_INT8);
    p_bytes(&p, u->id.ptr, u->id.len, OID_BYTEA);
    int bare = u->attrs.len == 0;
    if (!bare) p_str(&p, u->attrs);
    PGresult *r = NULL;
    rc = run_stmt(q, bare ? PS_USER_BARE : PS_USER_FULL, &p, PGRES_TUPLES_OK, &r, err, "writing a user");
    if (rc) return rc;
    return bare ? bare_result(q, r, "user", id, u->id, err) : full_result(q, r, "user", id, u->id, err);
}

static int pg_put_item(mp_store *s, uint32_t id, const mp_item *it, mp_error *err) {
    pg_store *q = impl(s);
    mp_str texts[5] = {it->title, it->description, it->category, it->brand, it->attrs};
    int rc = check_nul(q, "item id", id, texts, 5, err);
    if (rc) return rc;
    int bare = !it->title.len && !it->description.len && !it->category.len && !it->brand.len && !it->has_price &&
               !it->attrs.len && it->available;
    params p = {.n = 0};
    p_int(&p, id, OID_INT8);
    p_bytes(&p, it->id.ptr, it->id.len, OID_BYTEA);
    if (!bare) {
        p_str(&p, it->title);
        p_str(&p, it->description);
        p_str(&p, it->category);
        p_str(&p, it->brand);
        if (it->has_price)
            p_f64(&p, it->price);
        else
            p_null(&p, OID_FLOAT8);
        p_str(&p, it->attrs);
        p_int(&p, it->available ? 1 : 0, OID_INT2);
    }
    PGresult *r = NULL;
    rc = run_stmt(q, bare ? PS_ITEM_BARE : PS_ITEM_FULL, &p, PGRES_TUPLES_OK, &r, err, "writing an item");
    if (rc) return rc;
    return bare ? bare_result(q, r, "item", id, it->id, err) : full_result(q, r, "item", id, it->id, err);
}

/* ---- events ---- */

static int pg_add_event(mp_store *s, const mp_event_row *e, int *inserted, mp_error *err) {
    pg_store *q = impl(s);
    mp_str texts[2] = {e->text, e->session};
    int rc = check_nul(q, "event of user id", e->user, texts, 2, err);
    if (rc) return rc;
    params p = {.n = 0};
    p_int(&p, e->user, OID_INT8);
    p_int(&p, e->item, OID_INT8);
    p_int(&p, e->type, OID_INT2);
    p_int(&p, e->ts, OID_INT8);
    if (e->has_value)
        p_f64(&p, e->value);
    else
        p_null(&p, OID_FLOAT8);
    p_str(&p, e->text);
    p_str(&p, e->session);
    PGresult *r = NULL;
    rc = run_stmt(q, PS_ADD_EVENT, &p, PGRES_COMMAND_OK, &r, err, "writing an event");
    if (rc) return rc;
    if (inserted) *inserted = atoi(PQcmdTuples(r)) > 0;
    PQclear(r);
    return MP_OK;
}

/* A growable buffer of binary COPY data. */
typedef struct copybuf {
    unsigned char *p;
    size_t len, cap;
} copybuf;

static int cb_room(copybuf *b, size_t more) {
    if (b->len + more <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 65536;
    while (nc < b->len + more)
        nc *= 2;
    unsigned char *np = realloc(b->p, nc);
    if (!np) return -1;
    b->p = np;
    b->cap = nc;
    return 0;
}

static void cb_int(copybuf *b, uint64_t v, int bytes) {
    put_be(b->p + b->len, (uint64_t)bytes, 4);
    put_be(b->p + b->len + 4, v, bytes);
    b->len += 4 + (size_t)bytes;
}

static void cb_text(copybuf *b, mp_str s) {
    if (!s.len || !s.ptr) {
        put_be(b->p + b->len, 0xFFFFFFFFu, 4); /* NULL */
        b->len += 4;
        return;
    }
    put_be(b->p + b->len, s.len, 4);
    memcpy(b->p + b->len + 4, s.ptr, s.len);
    b->len += 4 + s.len;
}

/* Sends rows [0, n) as one binary COPY into mp_stage (the caller has emptied it). */
static int copy_rows(pg_store *q, const mp_event_row *rows, size_t n, mp_error *err) {
    PGresult *r = NULL;
    int rc = run(q, -1, "COPY mp_stage FROM STDIN (FORMAT binary)", 0, NULL, NULL, NULL, 0, PGRES_COPY_IN, &r, err,
                 "starting a bulk write");
    PQclear(r);
    if (rc) return rc;
    copybuf b = {0};
    static const unsigned char header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xFF, '\r', '\n', 0};
    const char *fail = NULL;
    if (cb_room(&b, sizeof header) == 0) {
        memcpy(b.p, header, sizeof header); /* signature, flags 0, header extension length 0 */
        b.len = sizeof header;
    } else {
        fail = "out of memory";
    }
    for (size_t i = 0; !fail && i < n; i++) {
        const mp_event_row *e = &rows[i];
        if (cb_room(&b, 2 + 8 * 12 + e->text.len + e->session.len)) {
            fail = "out of memory";
            break;
        }
        put_be(b.p + b.len, 8, 2); /* fields in this tuple */
        b.len += 2;
        cb_int(&b, (uint64_t)i, 4);
        cb_int(&b, e->user, 8);
        cb_int(&b, e->item, 8);
        cb_int(&b, e->type, 2);
        cb_int(&b, (uint64_t)e->ts, 8);
        if (e->has_value) {
            uint64_t bits;
            memcpy(&bits, &e->value, 8);
            cb_int(&b, bits, 8);
        } else {
            cb_text(&b, (mp_str){NULL, 0});
        }
        cb_text(&b, e->text);
        cb_text(&b, e->session);
        if (b.len >= 1 << 20) { /* stream in pieces of about 1 MiB */
            if (PQputCopyData(q->conn, (const char *)b.p, (int)b.len) != 1) fail = PQerrorMessage(q->conn);
            b.len = 0;
        }
    }
    if (!fail && cb_room(&b, 2) == 0) {
        put_be(b.p + b.len, 0xFFFF, 2); /* trailer */
        b.len += 2;
        if (PQputCopyData(q->conn, (const char *)b.p, (int)b.len) != 1) fail = PQerrorMessage(q->conn);
    } else if (!fail) {
        fail = "out of memory";
    }
    free(b.p);
    PQputCopyEnd(q->conn, fail); /* a non-NULL message makes the server abort the COPY */
    rc = MP_OK;
    while ((r = PQgetResult(q->conn)) != NULL) {
        if (rc == MP_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
            if (fail && PQstatus(q->conn) != CONNECTION_BAD)
                rc = mp_error_set(err, MP_ENOMEM, "store \"%s\": writing events: %s", q->name, fail);
            else
                rc = pq_fail(q, r, err, "writing events (COPY)");
            if (PQstatus(q->conn) == CONNECTION_BAD) q->lost = 1;
        }
        PQclear(r);
        if (PQstatus(q->conn) == CONNECTION_BAD) break;
    }
    if (rc == MP_OK && PQstatus(q->conn) == CONNECTION_BAD) {
        q->lost = 1;
        rc = pq_fail(q, NULL, err, "writing events (COPY)");
    }
    if (q->lost && q->base.in_txn) q->txn_lost = 1;
    return rc;
}

/* COPY into the staging table, then one statement that empties it into events in the caller's order. The DELETE
 * leaves dead rows in the temporary table (autovacuum never visits those), so it is truncated every STAGE_TRUNCATE
 * rows: measured on 250k events in batches of 256, moving the rows with DELETE ... RETURNING and truncating now and
 * then is about twice as fast as a TRUNCATE after every batch. */
#define STAGE_TRUNCATE 65536
static int add_events_once(pg_store *q, const mp_event_row *rows, size_t n, uint64_t *added, mp_error *err) {
    int rc = copy_rows(q, rows, n, err);
    PGresult *r = NULL;
    if (rc == MP_OK)
        rc = run(q, PS_MOVE_STAGE, NULL, 0, NULL, NULL, NULL, 0, PGRES_COMMAND_OK, &r, err, "writing events");
    if (rc == MP_OK) {
        *added = (uint64_t)strtoull(PQcmdTuples(r), NULL, 10);
        PQclear(r);
        q->stage_dead += n;
        if (q->stage_dead >= STAGE_TRUNCATE) {
            rc = exec_simple(q, "TRUNCATE mp_stage", err, "emptying the staging table");
            q->stage_dead = 0;
        }
    }
    return rc;
}

static int pg_add_events(mp_store *s, const mp_event_row *rows, size_t n, uint64_t *n_inserted, mp_error *err) {
    pg_store *q = impl(s);
    if (n_inserted) *n_inserted = 0;
    if (n == 0) return MP_OK;
    for (size_t i = 0; i < n; i++) {
        mp_str texts[2] = {rows[i].text, rows[i].session};
        int rc = check_nul(q, "event of user id", rows[i].user, texts, 2, err);
        if (rc) return rc;
    }
    if (n < 4 && q->base.in_txn) { /* a COPY costs more round trips than a few single inserts */
        int rc = MP_OK;
        for (size_t i = 0; rc == MP_OK && i < n; i++) {
            int ins = 0;
            rc = pg_add_event(s, &rows[i], &ins, err);
            if (rc == MP_OK && n_inserted) *n_inserted += (uint64_t)ins;
        }
        return rc;
    }
    uint64_t added = 0;
    if (q->base.in_txn) {
        int rc = add_events_once(q, rows, n, &added, err);
        if (rc == MP_OK && n_inserted) *n_inserted = added;
        return rc;
    }
    /* No caller transaction: one of our own, so the batch is all or nothing; retried once if the connection dies. */
    int rc = MP_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        q->own_txn = 1;
        rc = begin_write(q, err);
        if (rc == MP_OK) rc = add_events_once(q, rows, n, &added, err);
        if (rc == MP_OK) rc = exec_simple(q, "COMMIT", err, "committing events");
        q->own_txn = 0;
        if (rc == MP_OK || !q->lost) break;
        mp_error e2;
        if (attempt == 0 && reconnect(q, &e2) != MP_OK) break;
    }
    if (rc != MP_OK) rollback_quietly(q);
    if (rc == MP_OK && n_inserted) *n_inserted = added;
    return rc;
}

/* ---- scans (a cursor, FETCH in binary) ---- */

typedef int (*row_fn)(void *ctx, const PGresult *r, int row);

/* Runs `select` through a cursor, calling fn for each row; fn's non-zero value stops and is returned. Retried once
 * on a lost connection while no row has been handed out yet. */
static int scan(pg_store *q, const char *select, row_fn fn, void *ctx, mp_error *err, const char *what) {
    size_t len = strlen(select) + 64;
    char *decl = malloc(len);
    if (!decl) return mp_error_set(err, MP_ENOMEM, "out of memory %s", what);
    snprintf(decl, len, "DECLARE mp_scan NO SCROLL CURSOR FOR %s", select);
    char fetch[48];
    snprintf(fetch, sizeof fetch, "FETCH %d FROM mp_scan", SCAN_FETCH);
    int ret = MP_OK, handed = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        int own = 0;
        ret = own_read_begin(q, &own, err);
        if (ret == MP_OK) ret = exec_simple(q, decl, err, what);
        while (ret == MP_OK) {
            PGresult *r = NULL;
            ret = run(q, -1, fetch, 0, NULL, NULL, NULL, 1, PGRES_TUPLES_OK, &r, err, what);
            if (ret) break;
            int n = PQntuples(r);
            for (int i = 0; i < n && ret == 0; i++) {
                handed = 1;
                ret = fn(ctx, r, i);
            }
            PQclear(r);
            if (n < SCAN_FETCH) break;
        }
        int was_lost = ret != MP_OK && q->lost;
        if (!own) {
            if (!q->txn_lost && PQstatus(q->conn) == CONNECTION_OK && PQtransactionStatus(q->conn) == PQTRANS_INTRANS) {
                PGresult *r = PQexec(q->conn, "CLOSE mp_scan");
                PQclear(r);
            }
            break;
        }
        own_end(q, own);
        if (!was_lost || handed) break;
        mp_error e2;
        if (attempt == 0 && reconnect(q, &e2) != MP_OK) break;
    }
    free(decl);
    return ret;
}

typedef struct ev_ctx {
    mp_event_cb cb;
    void *ctx;
} ev_ctx;

static int event_row(void *c, const PGresult *r, int i) {
    ev_ctx *x = c;
    mp_event_row e;
    e.user = (uint32_t)r_int(r, i, 0);
    e.item = (uint32_t)r_int(r, i, 1);
    e.type = (uint8_t)r_int(r, i, 2);
    e.ts = r_int(r, i, 3);
    e.has_value = !PQgetisnull(r, i, 4);
    e.value = e.has_value ? r_f64(r, i, 4) : 0.0;
    e.text = r_str(r, i, 5);
    e.session = r_str(r, i, 6);
    return x->cb(x->ctx, &e);
}

static int pg_scan_events(mp_store *s, mp_event_cb cb, void *ctx, mp_error *err) {
    ev_ctx x = {cb, ctx};
    /* the ORDER BY is the primary key's order: an index scan, no sort */
    return scan(impl(s),
                "SELECT user_id, item_id, type, ts, value, text, session FROM events ORDER BY user_id, ts, item_id, type",
                event_row, &x, err, "scanning events");
}

typedef struct item_ctx {
    mp_item_cb cb;
    void *ctx;
} item_ctx;

static int item_row(void *c, const PGresult *r, int i) {
    item_ctx *x = c;
    mp_item it;
    memset(&it, 0, sizeof it);
    uint32_t id = (uint32_t)r_int(r, i, 0);
    it.id = r_str(r, i, 1);
    it.title = r_str(r, i, 2);
    it.description = r_str(r, i, 3);
    it.category = r_str(r, i, 4);
    it.brand = r_str(r, i, 5);
    it.has_price = !PQgetisnull(r, i, 6);
    it.price = it.has_price ? r_f64(r, i, 6) : 0.0;
    it.attrs = r_str(r, i, 7);
    it.available = r_int(r, i, 8) != 0;
    return x->cb(x->ctx, id, &it);
}

static int pg_scan_items(mp_store *s, mp_item_cb cb, void *ctx, mp_error *err) {
    item_ctx x = {cb, ctx};
    return scan(impl(s),
                "SELECT id, ext, title, description, category, brand, price, attrs, available FROM items ORDER BY id",
                item_row, &x, err, "scanning items");
}

typedef struct user_ctx {
    mp_user_cb cb;
    void *ctx;
} user_ctx;

static int user_row(void *c, const PGresult *r, int i) {
    user_ctx *x = c;
    mp_user u;
    memset(&u, 0, sizeof u);
    uint32_t id = (uint32_t)r_int(r, i, 0);
    u.id = r_str(r, i, 1);
    u.attrs = r_str(r, i, 2);
    if (mp_store_is_tombstone(u.id.ptr, u.id.len)) return 0; /* a forgotten user */
    return x->cb(x->ctx, id, &u);
}

static int pg_scan_users(mp_store *s, mp_user_cb cb, void *ctx, mp_error *err) {
    user_ctx x = {cb, ctx};
    return scan(impl(s), "SELECT id, ext, attrs FROM users ORDER BY id", user_row, &x, err, "scanning users");
}

/* ---- stats ---- */

/* Server-side aggregates in one snapshot (own repeatable-read transaction, or the caller's). Tombstones start with
 * the byte 0xFF, so every other external id sorts below '\xff' in bytea order. Retried once on a lost connection. */
static int pg_stats(mp_store *s, mp_store_stats *out, mp_error *err) {
    pg_store *q = impl(s);
    int rc = MP_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        memset(out, 0, sizeof *out);
        int own = 0;
        PGresult *r = NULL;
        rc = own_read_begin(q, &own, err);
        if (rc == MP_OK)
            rc = query_text(q,
                            "SELECT (SELECT count(*) FROM users WHERE ext < '\\xff'::bytea), "
                            "(SELECT count(*) FROM items)",
                            &r, err, "computing stats");
        if (rc == MP_OK) {
            out->n_users = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
            out->n_items = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
            PQclear(r);
            rc = query_text(q, "SELECT type, count(*), min(ts), max(ts) FROM events GROUP BY type", &r, err,
                            "computing stats");
        }
        if (rc == MP_OK) {
            for (int i = 0; i < PQntuples(r); i++) {
                long type = atol(PQgetvalue(r, i, 0));
                uint64_t c = strtoull(PQgetvalue(r, i, 1), NULL, 10);
                int64_t lo = strtoll(PQgetvalue(r, i, 2), NULL, 10), hi = strtoll(PQgetvalue(r, i, 3), NULL, 10);
                if (out->n_events == 0 || lo < out->ts_min) out->ts_min = lo;
                if (out->n_events == 0 || hi > out->ts_max) out->ts_max = hi;
                out->n_events += c;
                if (type >= 0 && type < MP_EV_NTYPES) out->per_type[type] += c;
            }
            PQclear(r);
            rc = query_text(q,
                            "SELECT count(*), count(DISTINCT user_id), count(DISTINCT item_id) FROM "
                            "(SELECT user_id, item_id FROM events GROUP BY user_id, item_id) p",
                            &r, err, "computing stats");
        }
        if (rc == MP_OK) {
            out->n_pairs = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
            out->n_active_users = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
            out->n_active_items = strtoull(PQgetvalue(r, 0, 2), NULL, 10);
            PQclear(r);
        }
        own_end(q, own);
        if (rc == MP_OK || !q->lost || !own) break;
        mp_error e2;
        if (attempt == 0 && reconnect(q, &e2) != MP_OK) break;
    }
    if (rc == MP_OK && out->n_active_users && out->n_active_items)
        out->density = (double)out->n_pairs / ((double)out->n_active_users * (double)out->n_active_items);
    return rc;
}

/* ---- forgetting users, availability ---- */

/* Looks up the external id of a user / item: *found, and *tomb when it is a tombstone. */
static int lookup_ext(pg_store *q, int stmt, uint32_t id, int *found, int *tomb, mp_error *err) {
    params p = {.n = 0};
    p_int(&p, id, OID_INT8);
    PGresult *r = NULL;
    int rc = run_stmt(q, stmt, &p, PGRES_TUPLES_OK, &r, err, "looking up a row");
    if (rc) return rc;
    *found = PQntuples(r) > 0;
    *tomb = 0;
    if (*found) {
        mp_str ext = r_str(r, 0, 0);
        *tomb = mp_store_is_tombstone(ext.ptr, ext.len);
    }
    PQclear(r);
    return MP_OK;
}

static int pg_forget_user(mp_store *s, uint32_t user, uint64_t *n_events, mp_error *err) {
    pg_store *q = impl(s);
    int found, tomb;
    int rc = lookup_ext(q, PS_USER_EXT, user, &found, &tomb, err);
    if (rc) return rc;
    if (!found || tomb)
        return mp_error_set(err, MP_ENOTFOUND, "store \"%s\": user id %u %s", q->name, user,
                            found ? "was already forgotten" : "does not exist");
    params p = {.n = 0};
    p_int(&p, user, OID_INT8);
    PGresult *r = NULL;
    if ((rc = run_stmt(q, PS_FORGET_EVENTS, &p, PGRES_COMMAND_OK, &r, err, "deleting a user's events"))) return rc;
    if (n_events) *n_events = strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    params pe = {.n = 0};
    p_int(&pe, MP_KIND_USERS, OID_INT2);
    p_int(&pe, user, OID_INT8);
    if ((rc = run_stmt(q, PS_FORGET_EMB, &pe, PGRES_COMMAND_OK, NULL, err, "deleting a user's embeddings"))) return rc;
    char tomb_ext[48];
    int len = snprintf(tomb_ext, sizeof tomb_ext, MP_STORE_TOMBSTONE_PREFIX "%u", user);
    params pu = {.n = 0};
    p_int(&pu, user, OID_INT8);
    p_bytes(&pu, tomb_ext, (size_t)len, OID_BYTEA);
    return run_stmt(q, PS_FORGET_USER, &pu, PGRES_COMMAND_OK, NULL, err, "forgetting a user");
}

static int pg_set_item_available(mp_store *s, uint32_t item, int available, mp_error *err) {
    pg_store *q = impl(s);
    params p = {.n = 0};
    p_int(&p, item, OID_INT8);
    p_int(&p, available, OID_INT2);
    PGresult *r = NULL;
    int rc = run_stmt(q, PS_ITEM_AVAILABLE, &p, PGRES_COMMAND_OK, &r, err, "setting an item's availability");
    if (rc) return rc;
    int changed = atoi(PQcmdTuples(r));
    PQclear(r);
    if (!changed) return mp_error_set(err, MP_ENOTFOUND, "store \"%s\": item id %u does not exist", q->name, item);
    return MP_OK;
}

/* ---- meta ---- */

static int pg_meta_get(mp_store *s, const char *key, char **value, mp_error *err) {
    pg_store *q = impl(s);
    params p = {.n = 0};
    p_bytes(&p, key, strlen(key), OID_TEXT);
    PGresult *r = NULL;
    int rc = run_stmt(q, PS_META_GET, &p, PGRES_TUPLES_OK, &r, err, "reading a setting");
    if (rc) return rc;
    if (PQntuples(r) == 0) {
        rc = mp_error_set(err, MP_ENOTFOUND, "store \"%s\": no setting \"%s\"", q->name, key);
    } else {
        mp_str v = r_str(r, 0, 0);
        *value = malloc(v.len + 1);
        if (!*value) {
            rc = mp_error_set(err, MP_ENOMEM, "out of memory reading setting \"%s\"", key);
        } else {
            memcpy(*value, v.ptr, v.len);
            (*value)[v.len] = 0;
        }
    }
    PQclear(r);
    return rc;
}

static int pg_meta_set(mp_store *s, const char *key, const char *value, mp_error *err) {
    pg_store *q = impl(s);
    if (!strcmp(key, "schema_version"))
        return mp_error_set(err, MP_EINVAL, "store: the setting \"schema_version\" is managed by the store");
    params p = {.n = 0};
    p_bytes(&p, key, strlen(key), OID_TEXT);
    p_bytes(&p, value, strlen(value), OID_TEXT);
    return run_stmt(q, PS_META_SET, &p, PGRES_COMMAND_OK, NULL, err, "writing a setting");
}

/* ---- embeddings ---- */

static const char *kind_word(mp_record_kind kind) {
    return kind == MP_KIND_USERS ? "user" : "item";
}

/* Vectors are stored as little-endian float32 whatever the host, as in sqlite.c (the files are interchangeable). */
static void floats_to_le(const float *v, uint32_t n, unsigned char *out) {
    for (uint32_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &v[i], 4);
        for (int k = 0; k < 4; k++)
            out[4 * i + (uint32_t)k] = (unsigned char)(b >> (8 * k));
    }
}

static void floats_from_le(const unsigned char *p, uint32_t n, float *out) {
    for (uint32_t i = 0; i < n; i++) {
        uint32_t b = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                     (uint32_t)p[4 * i + 3] << 24;
        memcpy(&out[i], &b, 4);
    }
}

/* Checks a row's dim against its vector's bytes; MP_ECORRUPT names the row. */
static int check_emb_row(pg_store *q, const PGresult *r, int row, int col_dim, int col_vec, mp_record_kind kind,
                         uint32_t id, const char *source, uint32_t *dim, mp_error *err) {
    int64_t d = r_int(r, row, col_dim);
    int bytes = PQgetlength(r, row, col_vec);
    if (d <= 0 || d > MP_MAX_EMBEDDING_DIM || (int64_t)bytes != d * 4)
        return mp_error_set(err, MP_ECORRUPT,
                            "store \"%s\": embedding of %s id %u (source \"%s\") is damaged: dim %lld, %d bytes",
                            q->name, kind_word(kind), id, source, (long long)d, bytes);
    *dim = (uint32_t)d;
    return MP_OK;
}

static int pg_put_embedding(mp_store *s, mp_record_kind kind, uint32_t id, const char *source, const float *v,
                            uint32_t dim, uint64_t text_hash, mp_error *err) {
    pg_store *q = impl(s);
    int found, tomb;
    int rc = lookup_ext(q, kind == MP_KIND_USERS ? PS_USER_EXT : PS_ITEM_EXT, id, &found, &tomb, err);
    if (rc) return rc;
    if (!found || tomb)
        return mp_error_set(err, MP_ENOTFOUND, "store \"%s\": cannot store an embedding for %s id %u: it %s",
                            q->name, kind_word(kind), id, tomb ? "was forgotten" : "does not exist");
    params p = {.n = 0};
    p_int(&p, kind, OID_INT2);
    p_bytes(&p, source, strlen(source), OID_TEXT);
    p_int(&p, id, OID_INT8);
    PGresult *r = NULL;
    if ((rc = run_stmt(q, PS_EMB_DIM, &p, PGRES_TUPLES_OK, &r, err, "checking an embedding's dimension"))) return rc;
    int64_t have = PQntuples(r) ? r_int(r, 0, 0) : 0;
    int any = PQntuples(r) > 0;
    PQclear(r);
    if (any && have != (int64_t)dim)
        return mp_error_set(err, MP_EINVAL,
                            "store \"%s\": %s id %u: embedding has dimension %u but the %ss' embeddings from source "
                            "\"%s\" have dimension %lld (delete them first to change the dimension)",
                            q->name, kind_word(kind), id, dim, kind_word(kind), source, (long long)have);
    unsigned char *blob = malloc((size_t)dim * 4u);
    if (!blob) return mp_error_set(err, MP_ENOMEM, "out of memory storing an embedding");
    floats_to_le(v, dim, blob);
    params pp = {.n = 0};
    p_int(&pp, kind, OID_INT2);
    p_bytes(&pp, source, strlen(source), OID_TEXT);
    p_int(&pp, id, OID_INT8);
    p_int(&pp, dim, OID_INT4);
    p_int(&pp, (int64_t)text_hash, OID_INT8);
    p_bytes(&pp, blob, (size_t)dim * 4u, OID_BYTEA);
    rc = run_stmt(q, PS_EMB_PUT, &pp, PGRES_COMMAND_OK, NULL, err, "writing an embedding");
    free(blob);
    return rc;
}

static int pg_get_embedding(mp_store *s, mp_record_kind kind, uint32_t id, const char *source, float *v, uint32_t cap,
                            uint32_t *dim, uint64_t *text_hash, mp_error *err) {
    pg_store *q = impl(s);
    if (q->no_embeddings)
        return mp_error_set(err, MP_ENOTFOUND,
                            "store \"%s\": no %s embedding %u from \"%s\" (the store predates embeddings)", q->name,
                            kind_word(kind), id, source);
    params p = {.n = 0};
    p_int(&p, kind, OID_INT2);
    p_bytes(&p, source, strlen(source), OID_TEXT);
    p_int(&p, id, OID_INT8);
    PGresult *r = NULL;
    int rc = run_stmt(q, PS_EMB_GET, &p, PGRES_TUPLES_OK, &r, err, "reading an embedding");
    if (rc) return rc;
    if (PQntuples(r) == 0) {
        rc = mp_error_set(err, MP_ENOTFOUND, "store \"%s\": no embedding of %s id %u from source \"%s\"", q->name,
                          kind_word(kind), id, source);
    } else {
        uint32_t d = 0;
        rc = check_emb_row(q, r, 0, 0, 2, kind, id, source, &d, err);
        if (rc == MP_OK) {
            if (dim) *dim = d;
            if (text_hash) *text_hash = (uint64_t)r_int(r, 0, 1);
            if (cap < d)
                rc = mp_error_set(err, MP_ERANGE, "store: embedding of %s id %u has dimension %u, room for %u",
                                  kind_word(kind), id, d, cap);
            else
                floats_from_le((const unsigned char *)PQgetvalue(r, 0, 2), d, v);
        }
    }
    PQclear(r);
    return rc;
}

typedef struct emb_ctx {
    pg_store *q;
    mp_record_kind kind;
    const char *source;
    mp_embedding_cb cb;
    void *ctx;
    float *buf;
    mp_error *err;
} emb_ctx;

static int emb_row(void *c, const PGresult *r, int i) {
    emb_ctx *x = c;
    uint32_t id = (uint32_t)r_int(r, i, 0), dim = 0;
    int rc = check_emb_row(x->q, r, i, 1, 3, x->kind, id, x->source, &dim, x->err);
    if (rc) return rc;
    floats_from_le((const unsigned char *)PQgetvalue(r, i, 3), dim, x->buf);
    return x->cb(x->ctx, id, x->buf, dim, (uint64_t)r_int(r, i, 2));
}

static int pg_scan_embeddings(mp_store *s, mp_record_kind kind, const char *source, mp_embedding_cb cb, void *ctx,
                              mp_error *err) {
    pg_store *q = impl(s);
    if (q->no_embeddings) return MP_OK;
    /* The source goes into the cursor's query as a literal (DECLARE takes no parameters): escaped by libpq. */
    char *lit = PQescapeLiteral(q->conn, source, strlen(source));
    if (!lit) return mp_error_set(err, MP_ENOMEM, "store \"%s\": scanning embeddings: cannot quote the source", q->name);
    char sql[MP_MAX_EMBEDDING_SOURCE * 2 + 160];
    snprintf(sql, sizeof sql, "SELECT id, dim, text_hash, vec FROM embeddings WHERE kind = %d AND source = %s ORDER BY id",
             (int)kind, lit);
    PQfreemem(lit);
    emb_ctx x = {q, kind, source, cb, ctx, malloc(MP_MAX_EMBEDDING_DIM * sizeof(float)), err};
    if (!x.buf) return mp_error_set(err, MP_ENOMEM, "out of memory scanning embeddings");
    int rc = scan(q, sql, emb_row, &x, err, "scanning embeddings");
    free(x.buf);
    return rc;
}

static int pg_delete_embeddings(mp_store *s, mp_record_kind kind, const char *source, uint64_t *n_deleted,
                                mp_error *err) {
    pg_store *q = impl(s);
    params p = {.n = 0};
    p_int(&p, kind, OID_INT2);
    p_bytes(&p, source, strlen(source), OID_TEXT);
    PGresult *r = NULL;
    int rc = run(q, -1, "DELETE FROM embeddings WHERE kind = $1 AND source = $2", p.n, p.val, p.len, p.type, 0,
                 PGRES_COMMAND_OK, &r, err, "deleting embeddings");
    if (rc) return rc;
    if (n_deleted) *n_deleted = strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return MP_OK;
}

static const mp_store_ops pg_ops = {
    .name = "postgres",
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .load_ids = pg_load_ids,
    .put_user = pg_put_user,
    .put_item = pg_put_item,
    .add_event = pg_add_event,
    .add_events = pg_add_events,
    .scan_events = pg_scan_events,
    .scan_items = pg_scan_items,
    .scan_users = pg_scan_users,
    .stats = pg_stats,
    .meta_get = pg_meta_get,
    .meta_set = pg_meta_set,
    .forget_user = pg_forget_user,
    .set_item_available = pg_set_item_available,
    .put_embedding = pg_put_embedding,
    .get_embedding = pg_get_embedding,
    .scan_embeddings = pg_scan_embeddings,
    .delete_embeddings = pg_delete_embeddings,
};
