#include <stdlib.h>

#include "magpie/ingest.h"
#include "test.h"

static mp_str S(const char *s) {
    mp_str r = {s, strlen(s)};
    return r;
}

static mp_store *open_store(mp_test_ctx *t, const char *name, mp_error *err) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", mp_test_tmpdir(t), name);
    mp_store *s = NULL;
    if (mp_store_open(&s, path, MP_STORE_READWRITE, err) != MP_OK) return NULL;
    return s;
}

static mp_event ev(const char *user, const char *item, mp_event_type type, int64_t ts) {
    mp_event e;
    memset(&e, 0, sizeof e);
    e.user = S(user);
    e.item = S(item);
    e.type = type;
    e.ts = ts;
    return e;
}

static uint64_t n_events(mp_store *s) {
    mp_store_stats st;
    mp_error err;
    if (mp_store_stats_get(s, &st, &err) != MP_OK) return 999999;
    return st.n_events;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

MP_TEST(ingest_commits_events_and_creates_bare_ids) {
    mp_error err;
    mp_store *s = open_store(t, "a.db", &err);
    CHECK_MSG(s, "%s", err.msg);
    mp_importer *im;
    mp_import_opts o = {0};
    CHECK_OK(mp_importer_begin(&im, s, &o, &err), &err);
    mp_event e = ev("u1", "sku-1", MP_EV_PURCHASE, 100);
    e.has_value = 1;
    e.value = 19.5;
    e.text = S("great \"mug\"");
    e.session = S("s1");
    CHECK_OK(mp_importer_add_event(im, &e, &err), &err);
    mp_event e2 = ev("u2", "sku-1", MP_EV_VIEW, 50);
    CHECK_OK(mp_importer_add_event(im, &e2, &err), &err);
    mp_import_report rep;
    CHECK_OK(mp_importer_finish(im, &rep, &err), &err);
    CHECK_EQ(rep.read, 2);
    CHECK_EQ(rep.accepted, 2);
    CHECK_EQ(rep.written, 2);
    CHECK_EQ(rep.new_users, 2);
    CHECK_EQ(rep.new_items, 1);
    CHECK_EQ(rep.committed, 1);
    CHECK(rep.total_seconds >= rep.parse_seconds && rep.parse_seconds >= 0);
    mp_import_report_free(&rep);

    mp_strmap *users;
    CHECK_OK(mp_store_load_ids(s, MP_KIND_USERS, &users, &err), &err);
    CHECK_EQ(mp_strmap_get(users, "u1", 2), 0);
    CHECK_EQ(mp_strmap_get(users, "u2", 2), 1);
    mp_strmap_destroy(users);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 2);
    CHECK_EQ(st.n_items, 1);
    CHECK_EQ(st.per_type[MP_EV_PURCHASE], 1);

    /* a second batch reuses the ids */
    CHECK_OK(mp_importer_begin(&im, s, &o, &err), &err);
    mp_event e3 = ev("u2", "sku-2", MP_EV_CART, 60);
    CHECK_OK(mp_importer_add_event(im, &e3, &err), &err);
    CHECK_OK(mp_importer_finish(im, &rep, &err), &err);
    CHECK_EQ(rep.new_users, 0);
    CHECK_EQ(rep.new_items, 1);
    mp_import_report_free(&rep);
    CHECK_OK(mp_store_load_ids(s, MP_KIND_ITEMS, &users, &err), &err);
    CHECK_EQ(mp_strmap_get(users, "sku-2", 5), 1);
    mp_strmap_destroy(users);
    mp_store_close(s);
}

MP_TEST(ingest_all_or_nothing_leaves_store_unchanged) {
    mp_error err;
    mp_store *s = open_store(t, "b.db", &err);
    CHECK_MSG(s, "%s", err.msg);
    mp_importer *im;
    mp_import_opts o = {0};
    CHECK_OK(mp_importer_begin(&im, s, &o, &err), &err);
    mp_event e = ev("u1", "i1", MP_EV_VIEW, 1);
    CHECK_OK(mp_importer_add_event(im, &e, &err), &err);
    mp_import_report rep;
    CHECK_OK(mp_importer_finish(im, &rep, &err), &err);
    mp_import_report_free(&rep);
    CHECK_EQ(n_events(s), 1);

    CHECK_OK(mp_importer_begin(&im, s, &o, &err), &err);
    for (int i = 0; i < 1000; i++) {
        char u[16];
        snprintf(u, sizeof u, "new%d", i);
        e = ev(u, "i9", MP_EV_CLICK, i);
        CHECK_OK(mp_importer_add_event(im, &e, &err), &err);
        if (i == 500)
            CHECK_OK(
                mp_importer_reject(im, "ev.jsonl", 502, "ev.jsonl:502: field `ts`: expected a number", S("{}"), &err),
                &err);
    }
    CHECK_EQ(mp_importer_finish(im, &rep, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "ev.jsonl:502: field `ts`");
    CHECK_CONTAINS(err.msg, "nothing was written");
    CHECK_EQ(rep.read, 1001);
    CHECK_EQ(rep.rejected, 1);
    CHECK_EQ(rep.written, 0);
    CHECK_EQ(rep.committed, 0);
    CHECK_EQ(rep.n_errors, 1);
    CHECK(strcmp(rep.errors[0], "ev.jsonl:502: field `ts`: expected a number") == 0);
    mp_import_report_free(&rep);
    CHECK_EQ(n_events(s), 1);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_users, 1);
    CHECK_EQ(st.n_items, 1);
    mp_store_close(s);
}

MP_TEST(ingest_skip_bad_writes_rejects_with_reasons) {
    mp_error err;
    mp_store *s = open_store(t, "c.db", &err);
    CHECK_MSG(s, "%s", err.msg);
    char rej[1024];
    snprintf(rej, sizeof rej, "%s/rejects.jsonl", mp_test_tmpdir(t));
    mp_importer *im;
    mp_import_opts o = {.rejects_path = rej, .max_errors = 2};
    CHECK_OK(mp_importer_begin(&im, s, &o, &err), &err);
    mp_event e = ev("u1", "i1", MP_EV_VIEW, 1);
    CHECK_OK(mp_importer_add_event(im, &e, &err), &err);
    CHECK_OK(mp_importer_reject(im, "ev.jsonl", 2, "ev.jsonl:2: field `type`: unknown event type \"buy\"",
                                S("{\"type\":\"buy\"}"), &err),
             &err);
    /* invalid UTF-8 in the raw line must still give a valid JSON line */
    CHECK_OK(mp_importer_reject(im, "ev.jsonl", 3, "ev.jsonl:3: invalid UTF-8", S("a\xff\tb"), &err), &err);
    CHECK_OK(mp_importer_reject(im, "ev.jsonl", 4, "ev.jsonl:4: third", S(""), &err), &err);
    mp_event e2 = ev("u2", "i1", MP_EV_VIEW, 1);
    CHECK_OK(mp_importer_add_event(im, &e2, &err), &err);
    mp_import_report rep;
    CHECK_OK(mp_importer_finish(im, &rep, &err), &err);
    CHECK_EQ(rep.read, 5);
    CHECK_EQ(rep.rejected, 3);
    CHECK_EQ(rep.written, 2);
    CHECK_EQ(rep.committed, 1);
    CHECK_EQ(rep.n_errors, 2); /* max_errors */
    mp_import_report_free(&rep);
    CHECK_EQ(n_events(s), 2);
    const char *text = slurp(rej);
    CHECK(text != NULL);
    CHECK_CONTAINS(text, "{\"file\":\"ev.jsonl\",\"line\":2,\"error\":\"field `type`: unknown event type \\\"buy\\\"\","
                         "\"record\":\"{\\\"type\\\":\\\"buy\\\"}\"}\n");
    CHECK_CONTAINS(text, "\"line\":3,\"error\":\"invalid UTF-8\",\"record\":\"a\xEF\xBF\xBD\\tb\"}\n");
    CHECK_CONTAINS(text, "\"line\":4,\"error\":\"third\",\"record\":\"\"}\n");
    mp_store_close(s);
}

MP_TEST(ingest_duplicates_inside_and_across_batches) {
    mp_error err;
    mp_store *s = open_store(t, "d.db", &err);
    CHECK_MSG(s, "%s", err.msg);
    mp_importer *im;
    mp_import_opts o = {0};
    mp_import_report rep;
    CHECK_OK(mp_importer_begin(&im, s, &o, &err), &err);
    mp_event a = ev("u1", "i1", MP_EV_VIEW, 10);
    mp_event b = ev("u1", "i1", MP_EV_CLICK, 10); /* other type: not a duplicate */
    mp_event c = ev("u1", "i2", MP_EV_VIEW, 10);  /* other item */
    a.text = S("first");
    CHECK_OK(mp_importer_add_event(im, &a, &err), &err);
    CHECK_OK(mp_importer_add_event(im, &b, &err), &err);
    mp_event a2 = a;
    a2.text = S("second");
    CHECK_OK(mp_importer_add_event(im, &a2, &err), &err);
    CHECK_OK(mp_importer_add_event(im, &c, &err), &err);
    CHECK_OK(mp_importer_add_event(im, &a, &err), &err);
    CHECK_OK(mp_importer_finish(im, &rep, &err), &err);
    CHECK_EQ(rep.read, 5);
    CHECK_EQ(rep.duplicates, 2);
    CHECK_EQ(rep.written, 3);
    mp_import_report_free(&rep);
    CHECK_EQ(n_events(s), 3);

    /* against the store: two old, one new */
    CHECK_OK(mp_importer_begin(&im, s, &o, &err), &err);
    CHECK_OK(mp_importer_add_event(im, &b, &err), &err);
    mp_event d = ev("u1", "i1", MP_EV_VIEW, 11);
    CHECK_OK(mp_importer_add_event(im, &d, &err), &err);
    CHECK_OK(mp_importer_add_event(im, &c, &err), &err);
    CHECK_OK(mp_importer_finish(im, &rep, &err), &err);
    CHECK_EQ(rep.duplicates, 2);
    CHECK_EQ(rep.written, 1);
    mp_import_report_free(&rep);
    CHECK_EQ(n_events(s), 4);
    mp_store_close(s);
}

typedef struct {
    int n;
    char first_text[32];
    uint32_t last_user;
    int64_t last_ts;
    int ordered;
} scan_check;

static int check_cb(void *ctx, const mp_event_row *e) {
    scan_check *c = ctx;
    if (c->n == 0)
        snprintf(c->first_text, sizeof c->first_text, "%.*s", (int)e->text.len, e->text.ptr);
    else if (e->user < c->last_user || (e->user == c->last_user && e->ts < c->last_ts))
        c->ordered = 0;
    c->last_user = e->user;
    c->last_ts = e->ts;
    c->n++;
    return 0;
}

MP_TEST(ingest_many_events_sorted_and_deduplicated) {
    /* Enough events to exercise the sort paths: shuffled times, and every 10th event repeated. */
    mp_error err;
    mp_store *s = open_store(t, "e.db", &err);
    CHECK_MSG(s, "%s", err.msg);
    mp_importer *im;
    mp_import_opts o = {.chunk_events = 1000}; /* many chunks: exercises the flush thread hand-offs */
    CHECK_OK(mp_importer_begin(&im, s, &o, &err), &err);
    int n = 20000, dups = 0;
    for (int i = 0; i < n; i++) {
        char u[16], it[16];
        snprintf(u, sizeof u, "u%d", i % 97);
        snprintf(it, sizeof it, "i%d", i % 31);
        mp_event e = ev(u, it, MP_EV_VIEW, (int64_t)((i * 7919L) % 100003));
        e.text = S(i == 0 ? "zero" : "");
        CHECK_OK(mp_importer_add_event(im, &e, &err), &err);
        if (i % 10 == 0) {
            e.text = S("again");
            CHECK_OK(mp_importer_add_event(im, &e, &err), &err);
            dups++;
        }
    }
    mp_import_report rep;
    CHECK_OK(mp_importer_finish(im, &rep, &err), &err);
    CHECK_EQ(rep.duplicates, dups);
    CHECK_EQ(rep.written, n);
    CHECK_EQ(rep.new_users, 97);
    CHECK_EQ(rep.new_items, 31);
    mp_import_report_free(&rep);
    scan_check c = {.ordered = 1};
    CHECK_OK(mp_store_scan_events(s, check_cb, &c, &err), &err);
    CHECK_EQ(c.n, n);
    CHECK(c.ordered);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_users, 97);
    CHECK_EQ(st.n_items, 31);

    /* the same events again, in other chunk sizes: all duplicates, nothing new */
    o.chunk_events = 333;
    CHECK_OK(mp_importer_begin(&im, s, &o, &err), &err);
    for (int i = 0; i < n; i++) {
        char u[16], it[16];
        snprintf(u, sizeof u, "u%d", i % 97);
        snprintf(it, sizeof it, "i%d", i % 31);
        mp_event e = ev(u, it, MP_EV_VIEW, (int64_t)((i * 7919L) % 100003));
        CHECK_OK(mp_importer_add_event(im, &e, &err), &err);
    }
    CHECK_OK(mp_importer_finish(im, &rep, &err), &err);
    CHECK_EQ(rep.duplicates, n);
    CHECK_EQ(rep.written, 0);
    mp_import_report_free(&rep);
    CHECK_EQ(n_events(s), n);
    mp_store_close(s);
}

MP_TEST(ingest_dry_run_writes_nothing) {
    mp_error err;
    mp_store *s = open_store(t, "f.db", &err);
    CHECK_MSG(s, "%s", err.msg);
    mp_importer *im;
    mp_import_opts o = {.dry_run = 1};
    CHECK_OK(mp_importer_begin(&im, s, &o, &err), &err);
    mp_event e = ev("u1", "i1", MP_EV_VIEW, 1);
    CHECK_OK(mp_importer_add_event(im, &e, &err), &err);
    mp_item it = {.id = S("i2"), .title = S("T"), .available = 1};
    CHECK_OK(mp_importer_add_item(im, &it, &err), &err);
    mp_import_report rep;
    CHECK_OK(mp_importer_finish(im, &rep, &err), &err);
    CHECK_EQ(rep.read, 2);
    CHECK_EQ(rep.accepted, 2);
    CHECK_EQ(rep.written, 0);
    CHECK_EQ(rep.committed, 0);
    CHECK_EQ(rep.new_users, 1);
    CHECK_EQ(rep.new_items, 2);
    mp_import_report_free(&rep);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 0);
    CHECK_EQ(st.n_users, 0);
    CHECK_EQ(st.n_items, 0);

    /* a dry run with a bad record reports it (EBADREC) and still writes nothing */
    CHECK_OK(mp_importer_begin(&im, s, &o, &err), &err);
    CHECK_OK(mp_importer_add_event(im, &e, &err), &err);
    CHECK_OK(mp_importer_reject(im, "x.csv", 3, "x.csv:3: bad", S("a,b"), &err), &err);
    CHECK_EQ(mp_importer_finish(im, &rep, &err), MP_EBADREC);
    mp_import_report_free(&rep);
    CHECK_EQ(n_events(s), 0);

    /* abort discards too */
    o.dry_run = 0;
    CHECK_OK(mp_importer_begin(&im, s, &o, &err), &err);
    CHECK_OK(mp_importer_add_event(im, &e, &err), &err);
    mp_importer_abort(im);
    mp_importer_abort(NULL);
    CHECK_EQ(n_events(s), 0);
    mp_store_close(s);
}

MP_TEST(ingest_items_and_users_upsert) {
    mp_error err;
    mp_store *s = open_store(t, "g.db", &err);
    CHECK_MSG(s, "%s", err.msg);
    mp_importer *im;
    mp_import_opts o = {0};
    mp_import_report rep;
    /* events first create a bare item; the items file then fills it in under the same id */
    CHECK_OK(mp_importer_begin(&im, s, &o, &err), &err);
    mp_event e = ev("u1", "sku-7", MP_EV_VIEW, 1);
    CHECK_OK(mp_importer_add_event(im, &e, &err), &err);
    CHECK_OK(mp_importer_finish(im, &rep, &err), &err);
    mp_import_report_free(&rep);
    CHECK_OK(mp_importer_begin(&im, s, &o, &err), &err);
    mp_item it = {.id = S("sku-7"), .title = S("Lamp"), .category = S("Home > Light"), .available = 0};
    CHECK_OK(mp_importer_add_item(im, &it, &err), &err);
    mp_user u = {.id = S("u1"), .attrs = S("{\"tier\":\"gold\"}")};
    CHECK_OK(mp_importer_add_user(im, &u, &err), &err);
    CHECK_OK(mp_importer_finish(im, &rep, &err), &err);
    CHECK_EQ(rep.new_items, 0);
    CHECK_EQ(rep.new_users, 0);
    CHECK_EQ(rep.written, 2);
    mp_import_report_free(&rep);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_items, 1);
    CHECK_EQ(st.n_users, 1);
    mp_store_close(s);
}
