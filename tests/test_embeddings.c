/* Embeddings in the store (put / get / scan / delete, dimension rules, forgetting users), the `embedding` field
 * of item and user records, and the importer storing record vectors. */
#include <float.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>

#include "magpie/encoder.h"
#include "magpie/ingest.h"
#include "magpie/records.h"
#include "magpie/store.h"
#include "test.h"

static mp_str S(const char *s) {
    mp_str r = {s, strlen(s)};
    return r;
}

/* A store at dir/name with items sku-0..sku-(n_items-1) and users u0..u(n_users-1) (ids = their number). */
static int make_store(mp_test_ctx *t, const char *name, int n_items, int n_users, mp_store **out, mp_error *err,
                      char path[1024]) {
    snprintf(path, 1024, "%s/%s", mp_test_tmpdir(t), name);
    int rc = mp_store_open(out, path, MP_STORE_READWRITE, err);
    if (rc) return rc;
    for (int i = 0; rc == MP_OK && i < n_items; i++) {
        char id[32];
        snprintf(id, sizeof id, "sku-%d", i);
        mp_item it = {.id = S(id), .title = S("thing"), .available = 1};
        rc = mp_store_put_item(*out, (uint32_t)i, &it, err);
    }
    for (int i = 0; rc == MP_OK && i < n_users; i++) {
        char id[32];
        snprintf(id, sizeof id, "u%d", i);
        mp_user u = {.id = S(id)};
        rc = mp_store_put_user(*out, (uint32_t)i, &u, err);
    }
    return rc;
}

typedef struct scanned {
    uint32_t ids[16], dims[16];
    float first[16];
    uint64_t hashes[16];
    int n;
} scanned;

static int scan_cb(void *ctx, uint32_t id, const float *v, uint32_t dim, uint64_t text_hash) {
    scanned *s = ctx;
    if (s->n == 16) return 7;
    s->ids[s->n] = id;
    s->dims[s->n] = dim;
    s->first[s->n] = v[0];
    s->hashes[s->n] = text_hash;
    s->n++;
    return 0;
}

static int stop_cb(void *ctx, uint32_t id, const float *v, uint32_t dim, uint64_t text_hash) {
    (*(int *)ctx)++;
    return 42;
}

MP_TEST(embeddings_store_put_get_scan) {
    mp_error err;
    mp_store *s;
    char path[1024];
    CHECK_OK(make_store(t, "e.db", 4, 2, &s, &err, path), &err);
    const float a[3] = {1.0f, -2.5f, 0.25f}, b[3] = {3.0f, 0, 0}, c[3] = {-1.0f, 1e-30f, FLT_MAX};
    /* written out of id order; scans come back in id order */
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 2, "user", a, 3, 0, &err), &err);
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 0, "user", b, 3, 0, &err), &err);
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 3, "user", c, 3, 0, &err), &err);
    /* another source and the users are separate spaces, with their own dimensions */
    const float u[2] = {0.5f, 0.5f};
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 0, "use-lite", u, 2, 77, &err), &err);
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_USERS, 1, "user", u, 2, 0, &err), &err);

    float v[8];
    uint32_t dim = 0;
    uint64_t h = 1;
    CHECK_OK(mp_store_get_embedding(s, MP_KIND_ITEMS, 2, "user", v, 8, &dim, &h, &err), &err);
    CHECK_EQ(dim, 3);
    CHECK_EQ(h, 0);
    CHECK(memcmp(v, a, sizeof a) == 0);
    CHECK_OK(mp_store_get_embedding(s, MP_KIND_ITEMS, 3, "user", v, 3, &dim, NULL, &err), &err);
    CHECK(memcmp(v, c, sizeof c) == 0); /* float32 round trip is exact */
    CHECK_OK(mp_store_get_embedding(s, MP_KIND_ITEMS, 0, "use-lite", v, 8, &dim, &h, &err), &err);
    CHECK_EQ(dim, 2);
    CHECK_EQ(h, 77);
    CHECK_EQ(mp_store_get_embedding(s, MP_KIND_ITEMS, 2, "user", v, 2, &dim, NULL, &err), MP_ERANGE);
    CHECK_EQ(mp_store_get_embedding(s, MP_KIND_ITEMS, 1, "user", v, 8, &dim, NULL, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "item id 1");
    CHECK_EQ(mp_store_get_embedding(s, MP_KIND_USERS, 0, "user", v, 8, &dim, NULL, &err), MP_ENOTFOUND);

    scanned sc = {0};
    CHECK_OK(mp_store_scan_embeddings(s, MP_KIND_ITEMS, "user", scan_cb, &sc, &err), &err);
    CHECK_EQ(sc.n, 3);
    CHECK_EQ(sc.ids[0], 0);
    CHECK_EQ(sc.ids[1], 2);
    CHECK_EQ(sc.ids[2], 3);
    CHECK_NEAR(sc.first[1], 1.0, 0);
    CHECK_EQ(sc.dims[2], 3);
    int calls = 0;
    CHECK_EQ(mp_store_scan_embeddings(s, MP_KIND_ITEMS, "user", stop_cb, &calls, &err), 42);
    CHECK_EQ(calls, 1);
    memset(&sc, 0, sizeof sc);
    CHECK_OK(mp_store_scan_embeddings(s, MP_KIND_ITEMS, "nothing-here", scan_cb, &sc, &err), &err);
    CHECK_EQ(sc.n, 0);

    /* a put replaces */
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 2, "user", b, 3, 5, &err), &err);
    CHECK_OK(mp_store_get_embedding(s, MP_KIND_ITEMS, 2, "user", v, 8, &dim, &h, &err), &err);
    CHECK(memcmp(v, b, sizeof b) == 0);
    CHECK_EQ(h, 5);

    /* bad arguments */
    const float bad[3] = {1.0f, NAN, 0};
    CHECK_EQ(mp_store_put_embedding(s, MP_KIND_ITEMS, 1, "user", bad, 3, 0, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "value 2 of 3 is not finite");
    const float inf[1] = {INFINITY};
    CHECK_EQ(mp_store_put_embedding(s, MP_KIND_ITEMS, 1, "solo", inf, 1, 0, &err), MP_EINVAL);
    CHECK_EQ(mp_store_put_embedding(s, MP_KIND_ITEMS, 1, "user", a, 0, 0, &err), MP_EINVAL);
    CHECK_EQ(mp_store_put_embedding(s, MP_KIND_ITEMS, 1, "", a, 3, 0, &err), MP_EINVAL);
    CHECK_EQ(mp_store_put_embedding(s, MP_KIND_EVENTS, 1, "user", a, 3, 0, &err), MP_EINVAL);
    CHECK_EQ(mp_store_put_embedding(s, MP_KIND_ITEMS, 99, "user", a, 3, 0, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "item id 99");
    CHECK_EQ(mp_store_put_embedding(s, MP_KIND_USERS, 5, "user", a, 3, 0, &err), MP_ENOTFOUND);

    /* still there after reopening */
    mp_store_close(s);
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READONLY, &err), &err);
    CHECK_OK(mp_store_get_embedding(s, MP_KIND_ITEMS, 3, "user", v, 8, &dim, NULL, &err), &err);
    CHECK(memcmp(v, c, sizeof c) == 0);
    mp_store_close(s);
}

MP_TEST(embeddings_store_dim_mismatch) {
    mp_error err;
    mp_store *s;
    char path[1024];
    CHECK_OK(make_store(t, "d.db", 3, 0, &s, &err, path), &err);
    const float v4[4] = {1, 2, 3, 4}, v3[3] = {1, 2, 3};
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 0, "user", v4, 4, 0, &err), &err);
    /* the only vector of a source may change dimension when replaced */
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 0, "user", v3, 3, 0, &err), &err);
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 1, "user", v3, 3, 0, &err), &err);
    /* with another vector there, not */
    CHECK_EQ(mp_store_put_embedding(s, MP_KIND_ITEMS, 2, "user", v4, 4, 0, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "dimension 4");
    CHECK_CONTAINS(err.msg, "dimension 3");
    CHECK_EQ(mp_store_put_embedding(s, MP_KIND_ITEMS, 0, "user", v4, 4, 0, &err), MP_EINVAL);
    /* deleting the source's vectors allows a new dimension */
    uint64_t n = 0;
    CHECK_OK(mp_store_delete_embeddings(s, MP_KIND_ITEMS, "user", &n, &err), &err);
    CHECK_EQ(n, 2);
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 2, "user", v4, 4, 0, &err), &err);
    float v[8];
    uint32_t dim;
    CHECK_EQ(mp_store_get_embedding(s, MP_KIND_ITEMS, 0, "user", v, 8, &dim, NULL, &err), MP_ENOTFOUND);
    mp_store_close(s);
}

MP_TEST(embeddings_forget_user_deletes) {
    mp_error err;
    mp_store *s;
    char path[1024];
    CHECK_OK(make_store(t, "f.db", 1, 3, &s, &err, path), &err);
    const float v[2] = {0.6f, 0.8f};
    for (uint32_t u = 0; u < 3; u++) {
        CHECK_OK(mp_store_put_embedding(s, MP_KIND_USERS, u, "user", v, 2, 0, &err), &err);
        CHECK_OK(mp_store_put_embedding(s, MP_KIND_USERS, u, "openai:m", v, 2, 9, &err), &err);
    }
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 0, "user", v, 2, 0, &err), &err);
    uint64_t n_events = 0;
    CHECK_OK(mp_store_forget_user(s, 0, &n_events, &err), &err);
    float out[4];
    uint32_t dim;
    CHECK_EQ(mp_store_get_embedding(s, MP_KIND_USERS, 0, "user", out, 4, &dim, NULL, &err), MP_ENOTFOUND);
    CHECK_EQ(mp_store_get_embedding(s, MP_KIND_USERS, 0, "openai:m", out, 4, &dim, NULL, &err), MP_ENOTFOUND);
    /* other users and the item with the same internal id keep theirs */
    CHECK_OK(mp_store_get_embedding(s, MP_KIND_USERS, 1, "user", out, 4, &dim, NULL, &err), &err);
    CHECK_OK(mp_store_get_embedding(s, MP_KIND_ITEMS, 0, "user", out, 4, &dim, NULL, &err), &err);
    /* a forgotten user cannot get a vector back */
    CHECK_EQ(mp_store_put_embedding(s, MP_KIND_USERS, 0, "user", v, 2, 0, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "forgotten");
    /* a rolled-back forget keeps them */
    CHECK_OK(mp_store_begin(s, &err), &err);
    CHECK_OK(mp_store_forget_user(s, 2, NULL, &err), &err);
    CHECK_OK(mp_store_rollback(s, &err), &err);
    CHECK_OK(mp_store_get_embedding(s, MP_KIND_USERS, 2, "openai:m", out, 4, &dim, NULL, &err), &err);
    mp_store_close(s);
}

MP_TEST(embeddings_cache_hash) {
    /* the item text and its hash decide whether a cached vector is reused */
    char *t1 = mp_encoder_item_text("Red mug", "Holds tea", "Home > Kitchen", "Acme");
    CHECK(t1 && strcmp(t1, "Red mug . Holds tea . Home > Kitchen . Acme") == 0);
    char *t2 = mp_encoder_item_text("Red mug", NULL, "", "Acme");
    CHECK(t2 && strcmp(t2, "Red mug . Acme") == 0);
    char *t3 = mp_encoder_item_text(NULL, NULL, NULL, NULL);
    CHECK(t3 && t3[0] == 0);
    CHECK(mp_encoder_text_hash(t1, strlen(t1)) != mp_encoder_text_hash(t2, strlen(t2)));
    CHECK_EQ(mp_encoder_text_hash(t2, strlen(t2)), mp_encoder_text_hash("Red mug . Acme", 14));
    CHECK(mp_encoder_text_hash("", 0) == 0xcbf29ce484222325ull); /* FNV-1a offset basis */
    free(t1);
    free(t2);
    free(t3);
    /* long texts are cut at a character boundary */
    char *longt = malloc(MP_ENCODER_MAX_TEXT + 10);
    memset(longt, 'a', MP_ENCODER_MAX_TEXT - 1);
    memcpy(longt + MP_ENCODER_MAX_TEXT - 1, "\xc3\xa9zz", 5); /* an é across the limit */
    char *cut = mp_encoder_item_text(longt, NULL, NULL, NULL);
    CHECK(cut && strlen(cut) == MP_ENCODER_MAX_TEXT - 1);
    free(cut);
    free(longt);

    /* the store keeps the hash with the vector, per source, and a replace updates it */
    mp_error err;
    mp_store *s;
    char path[1024];
    CHECK_OK(make_store(t, "h.db", 2, 0, &s, &err, path), &err);
    const float v[2] = {1, 0};
    uint64_t h = mp_encoder_text_hash("Red mug", 7);
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 1, "use-lite", v, 2, h, &err), &err);
    scanned sc = {0};
    CHECK_OK(mp_store_scan_embeddings(s, MP_KIND_ITEMS, "use-lite", scan_cb, &sc, &err), &err);
    CHECK_EQ(sc.n, 1);
    CHECK(sc.hashes[0] == h);
    uint64_t h2 = mp_encoder_text_hash("Blue mug", 8);
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 1, "use-lite", v, 2, h2, &err), &err);
    uint64_t got = 0;
    float out[2];
    uint32_t dim;
    CHECK_OK(mp_store_get_embedding(s, MP_KIND_ITEMS, 1, "use-lite", out, 2, &dim, &got, &err), &err);
    CHECK(got == h2);
    mp_store_close(s);
}

MP_TEST(embeddings_records_jsonl) {
    const char *text = "{\"id\":\"sku-1\",\"title\":\"Mug\",\"embedding\":[0.5,-1,2e-3]}\n"
                       "{\"id\":\"sku-2\",\"embedding\":null}\n"
                       "{\"id\":\"sku-3\"}\n";
    const char *path = mp_test_write_file(t, "items.jsonl", text);
    mp_error err;
    mp_reader *r;
    CHECK_OK(mp_reader_open(&r, path, MP_KIND_ITEMS, MP_FORMAT_AUTO, &err), &err);
    mp_record rec;
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK_EQ(rec.item.embedding_dim, 3);
    CHECK(rec.item.embedding != NULL);
    CHECK_NEAR(rec.item.embedding[0], 0.5, 0);
    CHECK_NEAR(rec.item.embedding[1], -1.0, 0);
    CHECK_NEAR(rec.item.embedding[2], 2e-3, 1e-9);
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK_EQ(rec.item.embedding_dim, 0);
    CHECK(rec.item.embedding == NULL);
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK_EQ(rec.item.embedding_dim, 0);
    CHECK_EQ(mp_reader_next(r, &rec, &err), 0);
    mp_reader_close(r);

    path = mp_test_write_file(t, "users.jsonl", "{\"id\":\"u1\",\"embedding\":[1,2],\"attrs\":{\"a\":1}}\n");
    CHECK_OK(mp_reader_open(&r, path, MP_KIND_USERS, MP_FORMAT_AUTO, &err), &err);
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK_EQ(rec.user.embedding_dim, 2);
    CHECK_NEAR(rec.user.embedding[1], 2.0, 0);
    mp_reader_close(r);

    /* the in-memory parser (the server's path) reads it the same way */
    mp_reader *p;
    CHECK_OK(mp_record_parser_create(&p, MP_KIND_USERS, "users", &err), &err);
    const char *one = "{\"id\":\"u9\",\"embedding\":[3,4,5]}";
    CHECK_OK(mp_record_parse_json(p, one, strlen(one), 1, &rec, &err), &err);
    CHECK_EQ(rec.user.embedding_dim, 3);
    CHECK_NEAR(rec.user.embedding[2], 5.0, 0);
    const char *bad = "{\"id\":\"u9\",\"embedding\":[3,\"x\"]}";
    CHECK_EQ(mp_record_parse_json(p, bad, strlen(bad), 4, &rec, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "users:4: field `embedding`: value 2 is not a number");
    mp_reader_close(p);
}

/* Reads the one record of `text` as `kind` from file `name`; returns the reader's code, err filled. The
 * embedding (which lives in the reader) is copied to emb[0..8) and rec's pointer cleared. */
static float emb[8];
static int read_one(mp_test_ctx *t, const char *name, const char *text, mp_record_kind kind, mp_record *rec,
                    mp_error *err) {
    const char *path = mp_test_write_file(t, name, text);
    mp_reader *r;
    int rc = mp_reader_open(&r, path, kind, MP_FORMAT_AUTO, err);
    if (rc != MP_OK) return rc;
    rc = mp_reader_next(r, rec, err);
    const float *e = kind == MP_KIND_USERS ? rec->user.embedding : rec->item.embedding;
    uint32_t d = kind == MP_KIND_USERS ? rec->user.embedding_dim : rec->item.embedding_dim;
    if (rc == 1 && kind != MP_KIND_EVENTS && e) memcpy(emb, e, (d < 8 ? d : 8) * sizeof *emb);
    if (kind == MP_KIND_ITEMS) rec->item.embedding = NULL;
    if (kind == MP_KIND_USERS) rec->user.embedding = NULL;
    mp_reader_close(r);
    return rc;
}

MP_TEST(embeddings_records_errors) {
    static const struct {
        const char *line, *want;
    } cases[] = {
        {"{\"id\":\"a\",\"embedding\":\"0.1 0.2\"}", "items.jsonl:1: field `embedding`: expected an array of numbers"},
        {"{\"id\":\"a\",\"embedding\":[]}", "items.jsonl:1: field `embedding`: expected at least one number"},
        {"{\"id\":\"a\",\"embedding\":[1,[2]]}", "items.jsonl:1: field `embedding`: value 2 is not a number"},
        {"{\"id\":\"a\",\"embedding\":[1,true]}", "field `embedding`: value 2 is not a number, got true"},
        {"{\"id\":\"a\",\"embedding\":[1,2,1e39]}", "field `embedding`: value 3 does not fit a 32-bit float"},
        {"{\"id\":\"a\",\"embedding\":[1,1e999]}", "field `embedding`: value 2 is out of range"},
        {"{\"id\":\"a\",\"embedding\":[1,2}", "items.jsonl:1: field `embedding`: "},
        {"{\"id\":\"a\",\"embedding\":{}}", "field `embedding`: expected an array of numbers"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mp_error err;
        mp_record rec;
        char text[256];
        snprintf(text, sizeof text, "%s\n", cases[i].line);
        int rc = read_one(t, "items.jsonl", text, MP_KIND_ITEMS, &rec, &err);
        CHECK_MSG(rc == MP_EBADREC && strstr(err.msg, cases[i].want), "case %zu: rc %d, \"%s\", want \"%s\"", i, rc,
                  err.msg, cases[i].want);
    }
    /* more than MP_MAX_EMBEDDING_DIM values */
    size_t cap = (MP_MAX_EMBEDDING_DIM + 2) * 2 + 64;
    char *big = malloc(cap);
    size_t n = (size_t)snprintf(big, cap, "{\"id\":\"a\",\"embedding\":[");
    for (int i = 0; i <= MP_MAX_EMBEDDING_DIM; i++)
        n += (size_t)snprintf(big + n, cap - n, "%s1", i ? "," : "");
    snprintf(big + n, cap - n, "]}\n");
    mp_error err;
    mp_record rec;
    CHECK_EQ(read_one(t, "items.jsonl", big, MP_KIND_ITEMS, &rec, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "field `embedding`: more than 4096 values");
    /* exactly the maximum is fine */
    n = (size_t)snprintf(big, cap, "{\"id\":\"a\",\"embedding\":[");
    for (int i = 0; i < MP_MAX_EMBEDDING_DIM; i++)
        n += (size_t)snprintf(big + n, cap - n, "%s1", i ? "," : "");
    snprintf(big + n, cap - n, "]}\n");
    CHECK_EQ(read_one(t, "items.jsonl", big, MP_KIND_ITEMS, &rec, &err), 1);
    free(big);

    /* CSV: space-separated numbers in an `embedding` column */
    CHECK_EQ(read_one(t, "items.csv", "id,title,embedding\nsku-1,Mug,0.5  -1 2e-3\n", MP_KIND_ITEMS, &rec, &err), 1);
    CHECK_EQ(rec.item.embedding_dim, 3);
    CHECK_NEAR(emb[1], -1.0, 0);
    CHECK_NEAR(emb[2], 2e-3, 1e-9);
    CHECK_EQ(read_one(t, "items.csv", "id,embedding\nsku-1,\n", MP_KIND_ITEMS, &rec, &err), 1);
    CHECK_EQ(rec.item.embedding_dim, 0);
    CHECK_EQ(read_one(t, "users.csv", "id,embedding\nu1,\"1 2 3\"\n", MP_KIND_USERS, &rec, &err), 1);
    CHECK_EQ(rec.user.embedding_dim, 3);
    CHECK_EQ(read_one(t, "items.csv", "id,embedding\nsku-1,0.5 abc 3\n", MP_KIND_ITEMS, &rec, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "items.csv:2: field `embedding`: value 2 is not a number");
    CHECK_CONTAINS(err.msg, "\"abc\"");
    CHECK_EQ(read_one(t, "items.csv", "id,embedding\nsku-1,1;2;3\n", MP_KIND_ITEMS, &rec, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "field `embedding`: value 1 is not a number");
    CHECK_EQ(read_one(t, "items.csv", "id,embedding\nsku-1,1 1e39\n", MP_KIND_ITEMS, &rec, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "value 2 does not fit a 32-bit float");
    /* events have no such field */
    CHECK_EQ(read_one(t, "events.jsonl", "{\"user\":\"u\",\"item\":\"i\",\"type\":\"view\",\"ts\":1,\"embedding\":[1]}\n",
                      MP_KIND_EVENTS, &rec, &err),
             MP_EBADREC);
    CHECK_CONTAINS(err.msg, "unknown field");
}

MP_TEST(embeddings_import_records) {
    mp_error err;
    char path[1024];
    snprintf(path, sizeof path, "%s/i.db", mp_test_tmpdir(t));
    mp_store *s;
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READWRITE, &err), &err);
    const char *items = mp_test_write_file(t, "items.jsonl",
                                           "{\"id\":\"a\",\"title\":\"A\",\"embedding\":[1,2,3]}\n"
                                           "{\"id\":\"b\",\"title\":\"B\"}\n"
                                           "{\"id\":\"c\",\"embedding\":[4,5,6]}\n");
    mp_import_report rep;
    mp_import_opts opts = {0};
    CHECK_OK(mp_import_files(s, MP_KIND_ITEMS, &items, 1, &opts, &rep, &err), &err);
    CHECK_EQ(rep.written, 3);
    mp_import_report_free(&rep);
    float v[8];
    uint32_t dim;
    CHECK_OK(mp_store_get_embedding(s, MP_KIND_ITEMS, 2, "user", v, 8, &dim, NULL, &err), &err);
    CHECK_EQ(dim, 3);
    CHECK_NEAR(v[2], 6.0, 0);
    CHECK_EQ(mp_store_get_embedding(s, MP_KIND_ITEMS, 1, "user", v, 8, &dim, NULL, &err), MP_ENOTFOUND);

    /* another dimension than the stored ones: a bad record with its line, and nothing of the batch is written */
    const char *more = mp_test_write_file(t, "more.jsonl",
                                          "{\"id\":\"d\",\"embedding\":[7,8,9]}\n"
                                          "{\"id\":\"b\",\"embedding\":[1,2]}\n");
    CHECK_EQ(mp_import_files(s, MP_KIND_ITEMS, &more, 1, &opts, &rep, &err), MP_EBADREC);
    CHECK_EQ(rep.rejected, 1);
    CHECK(rep.n_errors == 1);
    CHECK_CONTAINS(rep.errors[0], "more.jsonl:2: field `embedding`: 2 values, but the items' embeddings have "
                                  "dimension 3");
    mp_import_report_free(&rep);
    mp_strmap *ids;
    CHECK_OK(mp_store_load_ids(s, MP_KIND_ITEMS, &ids, &err), &err);
    CHECK_EQ(mp_strmap_size(ids), 3); /* "d" was rolled back */
    mp_strmap_destroy(ids);

    /* with --skip-bad the good records go in, with their vectors */
    char rej[1024];
    snprintf(rej, sizeof rej, "%s/rejects.jsonl", mp_test_tmpdir(t));
    opts.rejects_path = rej;
    CHECK_OK(mp_import_files(s, MP_KIND_ITEMS, &more, 1, &opts, &rep, &err), &err);
    CHECK_EQ(rep.rejected, 1);
    CHECK_EQ(rep.accepted, 1);
    mp_import_report_free(&rep);
    CHECK_OK(mp_store_get_embedding(s, MP_KIND_ITEMS, 3, "user", v, 8, &dim, NULL, &err), &err);
    CHECK_NEAR(v[0], 7.0, 0);
    CHECK_OK(mp_store_get_embedding(s, MP_KIND_ITEMS, 1, "user", v, 8, &dim, NULL, &err) == MP_ENOTFOUND ? MP_OK : 1,
             &err);

    /* users from CSV */
    const char *users = mp_test_write_file(t, "users.csv", "id,embedding\nu1,0.1 0.2\nu2,\n");
    opts.rejects_path = NULL;
    CHECK_OK(mp_import_files(s, MP_KIND_USERS, &users, 1, &opts, &rep, &err), &err);
    mp_import_report_free(&rep);
    CHECK_OK(mp_store_get_embedding(s, MP_KIND_USERS, 0, "user", v, 8, &dim, NULL, &err), &err);
    CHECK_EQ(dim, 2);
    CHECK_NEAR(v[1], 0.2, 1e-7);
    mp_store_close(s);
}

static int count_cb(void *ctx, uint32_t id, const float *v, uint32_t dim, uint64_t text_hash) {
    (void)id, (void)v, (void)dim, (void)text_hash;
    ++*(int *)ctx;
    return 0;
}

MP_TEST(embeddings_migrate_v1_store) {
    /* a store written before the embeddings table existed (schema version 1) is migrated by a read-write open */
    mp_error err;
    mp_store *s;
    char path[1024];
    CHECK_OK(make_store(t, "old.db", 2, 1, &s, &err, path), &err);
    mp_store_close(s);
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "DROP TABLE embeddings; UPDATE meta SET value = '1' WHERE key = 'schema_version'", 0, 0,
                       0) == SQLITE_OK);
    sqlite3_close(db);
    /* read-only (recommend, train, stats on an old store): opens; it simply has no embeddings yet */
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READONLY, &err), &err);
    float got[2];
    uint32_t dim = 0;
    CHECK_EQ(mp_store_get_embedding(s, MP_KIND_ITEMS, 1, "user", got, 2, &dim, NULL, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "predates embeddings");
    int calls = 0;
    CHECK_OK(mp_store_scan_embeddings(s, MP_KIND_ITEMS, "user", count_cb, &calls, &err), &err);
    CHECK_EQ(calls, 0);
    mp_store_close(s);
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READWRITE, &err), &err);
    const float v[2] = {1, 2};
    CHECK_OK(mp_store_put_embedding(s, MP_KIND_ITEMS, 1, "user", v, 2, 0, &err), &err);
    char *ver = NULL;
    CHECK_OK(mp_store_meta_get(s, "schema_version", &ver, &err), &err);
    CHECK(atoi(ver) == MP_STORE_SCHEMA_VERSION);
    free(ver);
    mp_store_close(s);
    /* the users and items written before are still there */
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READONLY, &err), &err);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_items, 2);
    CHECK_EQ(st.n_users, 1);
    mp_store_close(s);
}
