/* Tests of the live recommender (include/magpie/live.h): a generated demo shop is imported into a store, small ALS
 * and popularity models are trained and saved, and a live instance serves them while events, items and users
 * change. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "magpie/gen.h"
#include "magpie/ingest.h"
#include "magpie/ann.h"
#include "magpie/live.h"
#include "magpie/model.h"
#include "magpie/trainset.h"
#include "test.h"

#define SHOP_USERS 150
#define SHOP_ITEMS 120
#define MAX_SAMPLE 32

typedef struct shop {
    char db[700], als[700], pop[700], dir[600];
    char users[MAX_SAMPLE][64]; /* users with at least 5 events */
    size_t n_users;
} shop;

static mp_str S(const char *s) {
    mp_str r = {s, strlen(s)};
    return r;
}

static int save_model(const mp_train_set *ts, const char *name, const char *params, const char *path,
                      mp_error *err) {
    mp_model *m;
    int rc = mp_model_create(&m, name, err);
    if (rc == MP_OK && params) rc = mp_model_set_params(m, params, err);
    if (rc == MP_OK) rc = mp_model_fit(m, &ts->data, NULL, err);
    if (rc == MP_OK) rc = mp_model_save(m, path, err);
    mp_model_destroy(m);
    return rc;
}

/* Generates a shop, imports it into a store, and trains ALS (als_params) and pop models on it. */
static int shop_build(mp_test_ctx *t, shop *s, const char *als_params, mp_error *err) {
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", mp_test_tmpdir(t));
    snprintf(s->db, sizeof s->db, "%s/shop.db", s->dir);
    snprintf(s->als, sizeof s->als, "%s/als.model", s->dir);
    snprintf(s->pop, sizeof s->pop, "%s/pop.model", s->dir);
    char gen_dir[700], items[800], users[800], events[800];
    snprintf(gen_dir, sizeof gen_dir, "%s/gen", s->dir);
    mp_gen_opts go;
    mp_gen_opts_default(&go);
    go.n_users = SHOP_USERS;
    go.n_items = SHOP_ITEMS;
    go.seed = 11;
    mp_gen_report gr;
    int rc = mp_gen_demo(gen_dir, &go, NULL, &gr, err);
    if (rc) return rc;
    snprintf(items, sizeof items, "%s/items.jsonl", gen_dir);
    snprintf(users, sizeof users, "%s/users.jsonl", gen_dir);
    snprintf(events, sizeof events, "%s/events.jsonl", gen_dir);
    mp_store *st;
    if ((rc = mp_store_open(&st, s->db, MP_STORE_READWRITE, err))) return rc;
    mp_import_opts io = {0};
    const char *paths[3] = {items, users, events};
    const mp_record_kind kinds[3] = {MP_KIND_ITEMS, MP_KIND_USERS, MP_KIND_EVENTS};
    for (int k = 0; k < 3 && rc == MP_OK; k++) {
        mp_import_report rep;
        rc = mp_import_files(st, kinds[k], &paths[k], 1, &io, &rep, err);
        mp_import_report_free(&rep);
    }
    mp_dataset *ds = NULL;
    if (rc == MP_OK) rc = mp_dataset_load(&ds, st, NULL, err);
    mp_store_close(st);
    if (rc) return rc;
    mp_train_set ts = {0};
    rc = mp_train_set_build(&ts, ds, ds->events, ds->n_events, NULL, err);
    if (rc == MP_OK) rc = save_model(&ts, "als", als_params, s->als, err);
    if (rc == MP_OK) rc = save_model(&ts, "pop", NULL, s->pop, err);
    for (uint32_t u = 0; u < ds->n_users && s->n_users < MAX_SAMPLE; u++)
        if (ds->user_ext[u] && ds->user_ptr[u + 1] - ds->user_ptr[u] >= 5)
            snprintf(s->users[s->n_users++], sizeof s->users[0], "%s", ds->user_ext[u]);
    mp_train_set_free(&ts);
    mp_dataset_destroy(ds);
    return rc;
}

static int open_live(mp_live **l, const char *db, const char *model, int ann, mp_error *err) {
    mp_live_opts o;
    mp_live_opts_default(&o);
    o.db = db;
    o.model_path = model;
    o.ann = ann;
    o.n_threads = 1;
    return mp_live_open(l, &o, err);
}

static mp_live_query user_query(const char *user, size_t n) {
    mp_live_query q;
    memset(&q, 0, sizeof q);
    q.user = user;
    q.user_len = strlen(user);
    q.n = n;
    return q;
}

static uint64_t store_events(const char *db) {
    mp_store *st;
    mp_error err;
    if (mp_store_open(&st, db, MP_STORE_READONLY, &err)) return UINT64_MAX;
    mp_store_stats ss;
    uint64_t n = mp_store_stats_get(st, &ss, &err) == MP_OK ? ss.n_events : UINT64_MAX;
    mp_store_close(st);
    return n;
}

static int list_has(const mp_live_list *r, const char *item) {
    for (size_t k = 0; k < r->n; k++)
        if (!strcmp(r->items[k].item, item)) return 1;
    return 0;
}

/* 1 if any item of r is in the user's history. */
static int overlaps_history(mp_live *l, const mp_live_list *r, const char *user) {
    mp_live_history h;
    mp_error err;
    if (mp_live_history_get(l, user, strlen(user), 100000, &h, &err)) return 1;
    int hit = 0;
    for (size_t k = 0; k < h.n && !hit; k++) hit = list_has(r, h.events[k].item);
    mp_live_history_free(&h);
    return hit;
}

static mp_event purchase(const char *user, const char *item, int64_t ts) {
    mp_event e;
    memset(&e, 0, sizeof e);
    e.user = S(user);
    e.item = S(item);
    e.type = MP_EV_PURCHASE;
    e.ts = ts;
    return e;
}

MP_TEST(live_category_matches_rule) {
    CHECK(mp_live_category_matches("Beauty > Skin Care", "beauty > skin care"));
    CHECK(mp_live_category_matches("Beauty > Skin Care", "Skin care"));
    CHECK(mp_live_category_matches("Beauty > Skin Care", "BEAUTY"));
    CHECK(mp_live_category_matches("A > B > C", "a > b"));
    CHECK(!mp_live_category_matches("Beauty > Skin Care", "Skin"));
    CHECK(!mp_live_category_matches("Beauty > Skin Care", "Beau"));
    CHECK(!mp_live_category_matches(NULL, "Beauty"));
    CHECK(!mp_live_category_matches("Beauty", ""));
}

MP_TEST(live_recommend_excludes_history_and_reacts_at_once) {
    mp_error err;
    shop s;
    CHECK_OK(shop_build(t, &s, "factors=16,iterations=6,threads=1,regularization=1", &err), &err);
    CHECK(s.n_users >= 4);
    mp_live *l;
    CHECK_OK(open_live(&l, s.db, s.als, 0, &err), &err);
    const char *u = s.users[0];
    mp_live_query q = user_query(u, 10);
    q.explain = 1;
    mp_live_list r1;
    CHECK_OK(mp_live_recommend(l, &q, &r1, NULL, &err), &err);
    CHECK_EQ(r1.n, 10);
    CHECK(!r1.fallback && r1.known_user && r1.n_history >= 5);
    CHECK(!strcmp(r1.model, "als"));
    CHECK_EQ(r1.model_version, 1);
    CHECK(!overlaps_history(l, &r1, u));
    for (size_t k = 0; k < r1.n; k++) {
        CHECK(r1.items[k].reason && r1.items[k].reason[0]);
        CHECK(k == 0 || r1.items[k].score <= r1.items[k - 1].score);
    }
    /* the user buys the top item: it disappears at once, and the user's vector (so every score) moves */
    char bought[64];
    snprintf(bought, sizeof bought, "%s", r1.items[0].item);
    float old_second = r1.items[1].score;
    char second[64];
    snprintf(second, sizeof second, "%s", r1.items[1].item);
    mp_event e = purchase(u, bought, (int64_t)time(NULL));
    mp_live_write_result wr;
    CHECK_OK(mp_live_add_events(l, &e, 1, &wr, &err), &err);
    CHECK_EQ(wr.inserted, 1);
    mp_live_list r2;
    CHECK_OK(mp_live_recommend(l, &q, &r2, NULL, &err), &err);
    CHECK(!list_has(&r2, bought));
    CHECK_EQ(r2.n_history, r1.n_history + 1);
    CHECK(!overlaps_history(l, &r2, u));
    int moved = 0;
    for (size_t k = 0; k < r2.n; k++)
        if (!strcmp(r2.items[k].item, second)) moved = r2.items[k].score != old_second;
    CHECK_MSG(moved || !list_has(&r2, second), "the ALS vector did not change after the purchase");
    /* include_seen brings history back; exclude removes items; offset pages */
    mp_live_query q2 = user_query(u, 5);
    q2.include_seen = 1;
    mp_live_list r3;
    CHECK_OK(mp_live_recommend(l, &q2, &r3, NULL, &err), &err);
    CHECK_EQ(r3.n, 5);
    mp_live_list_free(&r3);
    const char *ex[1] = {r2.items[0].item};
    mp_live_query q3 = user_query(u, 3);
    q3.exclude = ex;
    q3.n_exclude = 1;
    q3.offset = 1;
    CHECK_OK(mp_live_recommend(l, &q3, &r3, NULL, &err), &err);
    CHECK_EQ(r3.n, 3);
    CHECK(!list_has(&r3, r2.items[0].item));
    CHECK(!strcmp(r3.items[0].item, r2.items[2].item)); /* without items[0], offset 1 starts at items[2] */
    mp_live_list_free(&r3);
    /* unknown user */
    mp_live_query q4 = user_query("nobody-here", 5);
    CHECK_EQ(mp_live_recommend(l, &q4, &r3, NULL, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "nobody-here");
    mp_live_list_free(&r1);
    mp_live_list_free(&r2);
    mp_live_close(l);
}

MP_TEST(live_duplicates_counted_not_doubled) {
    mp_error err;
    shop s;
    CHECK_OK(shop_build(t, &s, "factors=8,iterations=3,threads=1", &err), &err);
    mp_live *l;
    CHECK_OK(open_live(&l, s.db, s.als, 0, &err), &err);
    uint64_t before = store_events(s.db);
    mp_live_history h;
    CHECK_OK(mp_live_history_get(l, s.users[1], strlen(s.users[1]), 1, &h, &err), &err);
    CHECK_EQ(h.n, 1);
    mp_event old;
    memset(&old, 0, sizeof old);
    old.user = S(s.users[1]);
    old.item = S(h.events[0].item);
    CHECK_OK(mp_event_type_parse(h.events[0].type, strlen(h.events[0].type), &old.type), &err);
    old.ts = h.events[0].ts;
    mp_event batch[4] = {purchase("brand-new-user", "sku-brand-new", 1000), purchase(s.users[1], "sku-brand-new", 1001),
                         purchase("brand-new-user", "sku-brand-new", 1000), old};
    mp_live_write_result r;
    CHECK_OK(mp_live_add_events(l, batch, 4, &r, &err), &err);
    CHECK_EQ(r.accepted, 4);
    CHECK_EQ(r.inserted, 2);
    CHECK_EQ(r.duplicates, 2); /* one within the batch, one already stored */
    CHECK_EQ(r.new_users, 1);
    CHECK_EQ(r.new_items, 1);
    CHECK_EQ(store_events(s.db), before + 2);
    /* a retry inserts nothing */
    CHECK_OK(mp_live_add_events(l, batch, 4, &r, &err), &err);
    CHECK_EQ(r.inserted, 0);
    CHECK_EQ(r.duplicates, 4);
    CHECK_EQ(r.new_users + r.new_items, 0);
    CHECK_EQ(store_events(s.db), before + 2);
    mp_live_history_free(&h);
    CHECK_OK(mp_live_history_get(l, "brand-new-user", 14, 10, &h, &err), &err);
    CHECK_EQ(h.total, 1);
    CHECK(!strcmp(h.events[0].item, "sku-brand-new") && !strcmp(h.events[0].type, "purchase"));
    mp_live_history_free(&h);
    mp_live_stats st;
    mp_live_stats_get(l, &st);
    CHECK_EQ(st.events_ingested, 8);
    CHECK_EQ(st.events_duplicates, 6);
    CHECK_EQ(st.n_events, before + 2);
    /* a bad record: nothing of the batch is written */
    mp_event bad[2] = {purchase("x-user", "sku-x", 5), purchase("", "sku-x", 6)};
    CHECK_EQ(mp_live_add_events(l, bad, 2, &r, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "events[1]: field `user`");
    CHECK_EQ(store_events(s.db), before + 2);
    CHECK_EQ(mp_live_history_get(l, "x-user", 6, 10, &h, &err), MP_ENOTFOUND);
    mp_live_close(l);
    /* everything acknowledged is in the store: a new instance sees it */
    CHECK_OK(open_live(&l, s.db, NULL, 0, &err), &err);
    CHECK_OK(mp_live_history_get(l, "brand-new-user", 14, 10, &h, &err), &err);
    CHECK_EQ(h.total, 1);
    mp_live_history_free(&h);
    mp_live_close(l);
}

MP_TEST(live_forget_user) {
    mp_error err;
    shop s;
    CHECK_OK(shop_build(t, &s, "factors=8,iterations=3,threads=1", &err), &err);
    mp_live *l;
    CHECK_OK(open_live(&l, s.db, s.als, 0, &err), &err);
    const char *u = s.users[2];
    mp_live_history h;
    CHECK_OK(mp_live_history_get(l, u, strlen(u), 0, &h, &err), &err);
    uint64_t total = h.total, before = store_events(s.db);
    CHECK(total >= 5);
    mp_live_stats st0, st1;
    mp_live_stats_get(l, &st0);
    uint64_t n_del = 0;
    CHECK_OK(mp_live_forget_user(l, u, strlen(u), &n_del, &err), &err);
    CHECK_EQ(n_del, total);
    CHECK_EQ(store_events(s.db), before - total);
    mp_live_stats_get(l, &st1);
    CHECK_EQ(st1.n_users, st0.n_users - 1);
    CHECK_EQ(st1.n_events, st0.n_events - total);
    CHECK_EQ(st1.users_forgotten, 1);
    mp_live_query q = user_query(u, 5);
    mp_live_list r;
    CHECK_EQ(mp_live_recommend(l, &q, &r, NULL, &err), MP_ENOTFOUND);
    CHECK_EQ(mp_live_history_get(l, u, strlen(u), 10, &h, &err), MP_ENOTFOUND);
    CHECK_EQ(mp_live_forget_user(l, u, strlen(u), &n_del, &err), MP_ENOTFOUND);
    CHECK_EQ(n_del, 0);
    /* other users are untouched and still served by the model */
    mp_live_query q2 = user_query(s.users[3], 5);
    CHECK_OK(mp_live_recommend(l, &q2, &r, NULL, &err), &err);
    CHECK(!r.fallback && r.n == 5);
    mp_live_list_free(&r);
    /* the id comes back: a new user (new internal id), with only the new event */
    mp_store *st;
    CHECK_OK(mp_store_open(&st, s.db, MP_STORE_READONLY, &err), &err);
    mp_strmap *ids;
    CHECK_OK(mp_store_load_ids(st, MP_KIND_USERS, &ids, &err), &err);
    uint32_t bound = mp_strmap_id_bound(ids);
    CHECK_EQ(mp_strmap_get(ids, u, strlen(u)), MP_STRMAP_NONE);
    mp_strmap_destroy(ids);
    mp_store_close(st);
    mp_event e = purchase(u, "sku-000003", 5000);
    mp_live_write_result wr;
    CHECK_OK(mp_live_add_events(l, &e, 1, &wr, &err), &err);
    CHECK_EQ(wr.new_users, 1);
    CHECK_OK(mp_live_history_get(l, u, strlen(u), 10, &h, &err), &err);
    CHECK_EQ(h.total, 1);
    mp_live_history_free(&h);
    mp_live_close(l);
    /* reopened: consistent, the new user has the next id, the old one stays reserved */
    CHECK_OK(mp_store_open(&st, s.db, MP_STORE_READONLY, &err), &err);
    CHECK_OK(mp_store_load_ids(st, MP_KIND_USERS, &ids, &err), &err);
    CHECK_EQ(mp_strmap_get(ids, u, strlen(u)), bound);
    CHECK_EQ(mp_strmap_id_bound(ids), bound + 1);
    mp_strmap_destroy(ids);
    mp_store_close(st);
    CHECK_OK(open_live(&l, s.db, s.als, 0, &err), &err);
    CHECK_OK(mp_live_history_get(l, u, strlen(u), 10, &h, &err), &err);
    CHECK_EQ(h.total, 1);
    mp_live_history_free(&h);
    mp_live_stats_get(l, &st1);
    CHECK_EQ(st1.n_users, st0.n_users);
    CHECK_EQ(st1.n_events, before - total + 1);
    mp_live_close(l);
}

/* Popularity counters forget too: a pop model and the live popular list both lose the user's purchases. */
MP_TEST(live_forget_user_pop_counters) {
    mp_error err;
    char db[600], model[600];
    const char *dir = mp_test_tmpdir(t);
    snprintf(db, sizeof db, "%s/p.db", dir);
    snprintf(model, sizeof model, "%s/pop.model", dir);
    mp_live *l;
    CHECK_OK(open_live(&l, db, NULL, 0, &err), &err); /* an empty store: built-in popularity */
    mp_event ev[10];
    size_t n = 0;
    for (int k = 0; k < 5; k++) ev[n++] = purchase("heavy", "A", 100 + k);
    for (int k = 0; k < 3; k++) ev[n++] = purchase("light", "B", 100 + k);
    ev[n++] = purchase("reader", "C", 100);
    ev[n++] = purchase("other", "C", 101);
    mp_live_write_result wr;
    CHECK_OK(mp_live_add_events(l, ev, n, &wr, &err), &err);
    CHECK_EQ(wr.inserted, n);
    mp_live_list r;
    CHECK_OK(mp_live_popular(l, NULL, 3, 0, &r, &err), &err);
    CHECK_EQ(r.n, 3);
    CHECK(!strcmp(r.items[0].item, "A") && !strcmp(r.items[1].item, "B"));
    mp_live_list_free(&r);
    mp_live_close(l);
    /* train pop on the store, serve it */
    mp_store *st;
    CHECK_OK(mp_store_open(&st, db, MP_STORE_READONLY, &err), &err);
    mp_dataset *ds;
    CHECK_OK(mp_dataset_load(&ds, st, NULL, &err), &err);
    mp_store_close(st);
    mp_train_set ts = {0};
    CHECK_OK(mp_train_set_build(&ts, ds, ds->events, ds->n_events, NULL, &err), &err);
    CHECK_OK(save_model(&ts, "pop", NULL, model, &err), &err);
    mp_train_set_free(&ts);
    mp_dataset_destroy(ds);
    CHECK_OK(open_live(&l, db, model, 0, &err), &err);
    mp_live_query q = user_query("reader", 2);
    CHECK_OK(mp_live_recommend(l, &q, &r, NULL, &err), &err);
    CHECK(!strcmp(r.model, "pop") && !r.fallback && r.n == 2);
    CHECK(!strcmp(r.items[0].item, "A"));
    mp_live_list_free(&r);
    uint64_t n_del;
    CHECK_OK(mp_live_forget_user(l, "heavy", 5, &n_del, &err), &err);
    CHECK_EQ(n_del, 5);
    CHECK_OK(mp_live_recommend(l, &q, &r, NULL, &err), &err);
    CHECK(r.n >= 1 && !strcmp(r.items[0].item, "B")); /* A's counters are gone from the model */
    CHECK(!list_has(&r, "A"));                        /* (no score left: not recommended at all) */
    mp_live_list_free(&r);
    CHECK_OK(mp_live_popular(l, NULL, 3, 0, &r, &err), &err);
    CHECK(r.n >= 1 && !strcmp(r.items[0].item, "B"));
    CHECK(!list_has(&r, "A"));
    mp_live_list_free(&r);
    mp_live_close(l);
}

MP_TEST(live_unavailable_never_recommended) {
    mp_error err;
    shop s;
    CHECK_OK(shop_build(t, &s, "factors=8,iterations=3,threads=1", &err), &err);
    mp_live *l;
    CHECK_OK(open_live(&l, s.db, s.als, 0, &err), &err);
    mp_live_list r;
    mp_live_query q = user_query(s.users[0], 5);
    CHECK_OK(mp_live_recommend(l, &q, &r, NULL, &err), &err);
    char top[64];
    snprintf(top, sizeof top, "%s", r.items[0].item);
    mp_live_list_free(&r);
    mp_live_stats st0;
    mp_live_stats_get(l, &st0);
    CHECK_OK(mp_live_set_item_available(l, top, strlen(top), 0, &err), &err);
    CHECK_EQ(mp_live_set_item_available(l, "no-such-sku", 11, 0, &err), MP_ENOTFOUND);
    /* never recommended, to anyone, by any path */
    for (size_t k = 0; k < s.n_users; k++) {
        mp_live_query qk = user_query(s.users[k], 20);
        CHECK_OK(mp_live_recommend(l, &qk, &r, NULL, &err), &err);
        CHECK(!list_has(&r, top));
        mp_live_list_free(&r);
    }
    CHECK_OK(mp_live_popular(l, NULL, SHOP_ITEMS, 0, &r, &err), &err);
    CHECK(!list_has(&r, top));
    mp_live_list_free(&r);
    mp_live_query anon;
    memset(&anon, 0, sizeof anon);
    anon.n = 20;
    CHECK_OK(mp_live_recommend(l, &anon, &r, NULL, &err), &err);
    CHECK(r.fallback && !list_has(&r, top));
    mp_live_list_free(&r);
    mp_live_stats st;
    mp_live_stats_get(l, &st);
    CHECK_EQ(st.n_available_items, st0.n_available_items - 1);
    /* a bare put of the item makes it available again; a put with available = false hides it */
    mp_item it;
    memset(&it, 0, sizeof it);
    it.id = S(top);
    it.available = 1;
    mp_live_write_result wr;
    CHECK_OK(mp_live_put_items(l, &it, 1, &wr, &err), &err);
    CHECK_EQ(wr.inserted, 0);
    mp_live_stats_get(l, &st);
    CHECK_EQ(st.n_available_items, st0.n_available_items);
    CHECK_OK(mp_live_recommend(l, &q, &r, NULL, &err), &err);
    CHECK(list_has(&r, top));
    mp_live_list_free(&r);
    it.title = S("Gone for good");
    it.available = 0;
    CHECK_OK(mp_live_put_items(l, &it, 1, &wr, &err), &err);
    CHECK_OK(mp_live_recommend(l, &q, &r, NULL, &err), &err);
    CHECK(!list_has(&r, top));
    mp_live_list_free(&r);
    mp_live_close(l);
    /* the store has it too */
    CHECK_OK(open_live(&l, s.db, s.als, 0, &err), &err);
    mp_live_stats_get(l, &st);
    CHECK_EQ(st.n_available_items, st0.n_available_items - 1);
    CHECK_OK(mp_live_recommend(l, &q, &r, NULL, &err), &err);
    CHECK(!list_has(&r, top));
    mp_live_list_free(&r);
    mp_live_close(l);
}

MP_TEST(live_category_filter) {
    mp_error err;
    shop s;
    CHECK_OK(shop_build(t, &s, "factors=8,iterations=3,threads=1", &err), &err);
    mp_live *l;
    CHECK_OK(open_live(&l, s.db, s.als, 0, &err), &err);
    mp_live_list r;
    CHECK_OK(mp_live_popular(l, NULL, 1, 0, &r, &err), &err);
    CHECK(r.n == 1 && r.items[0].category);
    char path[256], top[128], leaf[128];
    snprintf(path, sizeof path, "%s", r.items[0].category);
    mp_live_list_free(&r);
    const char *gt = strstr(path, " > ");
    CHECK(gt);
    snprintf(top, sizeof top, "%.*s", (int)(gt - path), path);
    snprintf(leaf, sizeof leaf, "%s", strrchr(path, '>') + 2);
    for (char *p = leaf; *p; p++) *p = (char)((*p >= 'a' && *p <= 'z') ? *p - 32 : *p); /* case does not matter */
    const char *filters[3] = {path, top, leaf};
    for (int f = 0; f < 3; f++) {
        for (size_t k = 0; k < 4; k++) {
            mp_live_query q = user_query(s.users[k], 8);
            q.category = filters[f];
            CHECK_OK(mp_live_recommend(l, &q, &r, NULL, &err), &err);
            CHECK_MSG(r.n > 0, "no items for category \"%s\"", filters[f]);
            for (size_t j = 0; j < r.n; j++)
                CHECK_MSG(r.items[j].category && mp_live_category_matches(r.items[j].category, filters[f]),
                          "\"%s\" is not in \"%s\"", r.items[j].category ? r.items[j].category : "-", filters[f]);
            mp_live_list_free(&r);
        }
        CHECK_OK(mp_live_popular(l, filters[f], 5, 0, &r, &err), &err);
        CHECK(r.n > 0);
        for (size_t j = 0; j < r.n; j++) CHECK(mp_live_category_matches(r.items[j].category, filters[f]));
        for (size_t j = 1; j < r.n; j++) CHECK(r.items[j].score <= r.items[j - 1].score);
        mp_live_list_free(&r);
    }
    /* a category nobody has: nothing (not an error, not other items) */
    mp_live_query q = user_query(s.users[0], 8);
    q.category = "No Such Category";
    CHECK_OK(mp_live_recommend(l, &q, &r, NULL, &err), &err);
    CHECK_EQ(r.n, 0);
    mp_live_list_free(&r);
    /* an item moved into the category by put_items shows up under the filter's popular list */
    mp_live_history h;
    CHECK_OK(mp_live_history_get(l, s.users[0], strlen(s.users[0]), 1, &h, &err), &err);
    mp_item it;
    memset(&it, 0, sizeof it);
    it.id = S("sku-fresh");
    it.title = S("Fresh thing");
    it.category = S("Brand New Dept > Gadgets");
    it.available = 1;
    mp_live_write_result wr;
    CHECK_OK(mp_live_put_items(l, &it, 1, &wr, &err), &err);
    CHECK_EQ(wr.inserted, 1);
    mp_event e = purchase(s.users[0], "sku-fresh", (int64_t)time(NULL));
    CHECK_OK(mp_live_add_events(l, &e, 1, &wr, &err), &err);
    CHECK_OK(mp_live_popular(l, "gadgets", 5, 0, &r, &err), &err);
    CHECK(r.n == 1 && !strcmp(r.items[0].item, "sku-fresh") && !strcmp(r.items[0].title, "Fresh thing"));
    mp_live_list_free(&r);
    mp_live_history_free(&h);
    mp_live_stats st;
    mp_live_stats_get(l, &st);
    CHECK(st.n_categories >= 2);
    mp_live_close(l);
}

MP_TEST(live_anonymous_session_and_new_users) {
    mp_error err;
    shop s;
    CHECK_OK(shop_build(t, &s, "factors=8,iterations=3,threads=1", &err), &err);
    mp_live *l;
    CHECK_OK(open_live(&l, s.db, s.als, 0, &err), &err);
    const char *session[4] = {"sku-000001", "sku-000002", "not-a-sku", "sku-000003"};
    mp_live_query q;
    memset(&q, 0, sizeof q);
    q.session = session;
    q.n_session = 4;
    q.n = 10;
    q.explain = 1;
    mp_live_list r;
    size_t unknown = 99;
    CHECK_OK(mp_live_recommend(l, &q, &r, &unknown, &err), &err);
    CHECK_EQ(unknown, 1);
    CHECK(r.known_user && !r.fallback && r.n == 10 && r.n_history == 3);
    for (int k = 0; k < 4; k++) CHECK(!list_has(&r, session[k]));
    for (size_t k = 0; k < r.n; k++) CHECK(r.items[k].reason != NULL);
    mp_live_list_free(&r);
    /* nothing known: popular items, marked as a fallback, with a reason that says so */
    q.n_session = 0;
    CHECK_OK(mp_live_recommend(l, &q, &r, &unknown, &err), &err);
    CHECK(r.fallback && !r.known_user && r.n == 10 && !strcmp(r.model, "pop"));
    CHECK_CONTAINS(r.items[0].reason, "popular");
    mp_live_list_free(&r);
    /* a user created without events: known, but served popular items */
    mp_user u;
    memset(&u, 0, sizeof u);
    u.id = S("fresh-user");
    u.attrs = S("{\"tier\":\"gold\"}");
    mp_live_write_result wr;
    CHECK_OK(mp_live_put_users(l, &u, 1, &wr, &err), &err);
    CHECK_EQ(wr.inserted, 1);
    CHECK_OK(mp_live_put_users(l, &u, 1, &wr, &err), &err);
    CHECK_EQ(wr.inserted, 0);
    mp_live_query qu = user_query("fresh-user", 4);
    CHECK_OK(mp_live_recommend(l, &qu, &r, NULL, &err), &err);
    CHECK(r.fallback && r.n == 4 && r.n_history == 0);
    mp_live_list_free(&r);
    /* one event later the model ranks for them (ALS folds the new history in) */
    mp_event e = purchase("fresh-user", "sku-000005", (int64_t)time(NULL));
    CHECK_OK(mp_live_add_events(l, &e, 1, &wr, &err), &err);
    CHECK_OK(mp_live_recommend(l, &qu, &r, NULL, &err), &err);
    CHECK(!r.fallback && !strcmp(r.model, "als") && r.n == 4 && !list_has(&r, "sku-000005"));
    mp_live_list_free(&r);
    /* similar items: known item, never itself, available only */
    CHECK_OK(mp_live_similar(l, "sku-000005", 10, 5, &r, &err), &err);
    CHECK(r.n == 5 && !list_has(&r, "sku-000005"));
    mp_live_list_free(&r);
    CHECK_EQ(mp_live_similar(l, "nope", 4, 5, &r, &err), MP_ENOTFOUND);
    mp_live_close(l);
}

typedef struct reader_arg {
    mp_live *l;
    const shop *s;
    atomic_int *stop;
    long calls, failures;
    uint64_t max_version;
} reader_arg;

static void *reader_main(void *p) {
    reader_arg *a = p;
    size_t k = 0;
    while (!atomic_load(a->stop) || a->calls < 20) {
        mp_live_query q = user_query(a->s->users[k++ % a->s->n_users], 10);
        q.explain = (k % 3) == 0;
        mp_live_list r;
        mp_error err;
        if (mp_live_recommend(a->l, &q, &r, NULL, &err) != MP_OK || r.n != 10) a->failures++;
        if (r.model_version > a->max_version) a->max_version = r.model_version;
        mp_live_list_free(&r);
        a->calls++;
    }
    return NULL;
}

MP_TEST(live_reload_swaps_while_serving) {
    mp_error err;
    shop s;
    CHECK_OK(shop_build(t, &s, "factors=8,iterations=3,threads=1", &err), &err);
    char meta[800];
    snprintf(meta, sizeof meta, "%s.meta.json", s.als);
    FILE *f = fopen(meta, "w");
    CHECK(f);
    fputs("{\"model\":\"als\",\"metrics\":{\"ndcg@10\":0.25}}", f);
    fclose(f);
    mp_live *l;
    CHECK_OK(open_live(&l, s.db, s.als, 0, &err), &err);
    mp_live_model_info mi;
    CHECK_OK(mp_live_model_info_get(l, &mi, &err), &err);
    CHECK(mi.version == 1 && !strcmp(mi.name, "als") && !strcmp(mi.path, s.als) && mi.checksum != 0);
    CHECK(mi.n_items == SHOP_ITEMS && !mi.has_index && mi.file_mtime > 0);
    CHECK(mi.meta_json && strstr(mi.meta_json, "ndcg@10"));
    mp_live_model_info_free(&mi);
    CHECK_EQ(mp_live_model_changed(l), 0);

    atomic_int stop = 0;
    reader_arg ra[2] = {{.l = l, .s = &s, .stop = &stop}, {.l = l, .s = &s, .stop = &stop}};
    pthread_t th[2];
    for (int k = 0; k < 2; k++) CHECK(pthread_create(&th[k], NULL, reader_main, &ra[k]) == 0);
    int reload_fail = 0;
    for (int k = 0; k < 5; k++) {
        /* alternate the two files; a write in between is applied to the reloaded model too */
        mp_event e = purchase(s.users[k], "sku-000007", (int64_t)time(NULL) + k);
        mp_live_write_result wr;
        if (mp_live_add_events(l, &e, 1, &wr, &err)) reload_fail++;
        if (mp_live_reload(l, k % 2 ? s.als : s.pop, &err)) reload_fail++;
    }
    atomic_store(&stop, 1);
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    CHECK_MSG(reload_fail == 0, "reload failed: %s", err.msg);
    CHECK_EQ(ra[0].failures + ra[1].failures, 0);
    CHECK(ra[0].calls >= 20 && ra[1].calls >= 20);
    CHECK(ra[0].max_version >= 1 && ra[0].max_version <= 6);
    CHECK_OK(mp_live_model_info_get(l, &mi, &err), &err);
    CHECK(mi.version == 6 && !strcmp(mi.name, "pop") && !strcmp(mi.path, s.pop) && !mi.meta_json);
    mp_live_model_info_free(&mi);
    /* a corrupt file: the reload fails, naming the file, and the current model keeps serving */
    char bad[800];
    snprintf(bad, sizeof bad, "%s/bad.model", s.dir);
    f = fopen(bad, "w");
    CHECK(f);
    fputs("not a model", f);
    fclose(f);
    CHECK(mp_live_reload(l, bad, &err) != MP_OK);
    CHECK_CONTAINS(err.msg, "bad.model");
    CHECK_EQ(mp_live_reload(l, "/nonexistent/m.model", &err), MP_ENOTFOUND);
    mp_live_list r;
    mp_live_query q = user_query(s.users[0], 3);
    CHECK_OK(mp_live_recommend(l, &q, &r, NULL, &err), &err);
    CHECK(r.model_version == 6 && !strcmp(r.model, "pop") && r.n == 3);
    mp_live_list_free(&r);
    /* the file changes on disk: noticed; a reload with no path reloads the current file */
    struct timespec times[2] = {{.tv_sec = 1, .tv_nsec = 0}, {.tv_sec = 1, .tv_nsec = 0}};
    CHECK(utimensat(AT_FDCWD, s.pop, times, 0) == 0);
    CHECK_EQ(mp_live_model_changed(l), 1);
    CHECK_OK(mp_live_reload(l, NULL, &err), &err);
    CHECK_EQ(mp_live_model_changed(l), 0);
    CHECK_OK(mp_live_model_info_get(l, &mi, &err), &err);
    CHECK(mi.version == 7 && mi.file_mtime == 1);
    mp_live_model_info_free(&mi);
    mp_live_close(l);
}

MP_TEST(live_index_matches_exact) {
    mp_error err;
    shop s;
    CHECK_OK(shop_build(t, &s, "factors=16,iterations=6,threads=1,regularization=1", &err), &err);
    mp_live *exact, *ann;
    CHECK_OK(open_live(&exact, s.db, s.als, 0, &err), &err);
    CHECK_OK(open_live(&ann, s.db, s.als, 1, &err), &err);
    mp_live_model_info mi;
    CHECK_OK(mp_live_model_info_get(ann, &mi, &err), &err);
    CHECK(mi.has_index && mi.index_seconds >= 0);
    mp_live_model_info_free(&mi);
    size_t hits = 0, total = 0;
    for (size_t k = 0; k < s.n_users; k++) {
        mp_live_query q = user_query(s.users[k], 10);
        mp_live_list a, b;
        CHECK_OK(mp_live_recommend(exact, &q, &a, NULL, &err), &err);
        CHECK_OK(mp_live_recommend(ann, &q, &b, NULL, &err), &err);
        CHECK_EQ(a.n, b.n);
        CHECK(!overlaps_history(ann, &b, s.users[k]));
        for (size_t j = 0; j < a.n; j++) hits += (size_t)list_has(&b, a.items[j].item);
        total += a.n;
        mp_live_list_free(&a);
        mp_live_list_free(&b);
    }
    CHECK_MSG(hits >= total * 9 / 10, "recall %zu / %zu", hits, total);
    /* through the index too: a category filter and unavailable items hold */
    mp_live_query q = user_query(s.users[0], 5);
    mp_live_list r;
    CHECK_OK(mp_live_recommend(ann, &q, &r, NULL, &err), &err);
    char top[64];
    snprintf(top, sizeof top, "%s", r.items[0].item);
    mp_live_list_free(&r);
    CHECK_OK(mp_live_set_item_available(ann, top, strlen(top), 0, &err), &err);
    CHECK_OK(mp_live_recommend(ann, &q, &r, NULL, &err), &err);
    CHECK(r.n == 5 && !list_has(&r, top));
    mp_live_list_free(&r);
    CHECK_OK(mp_live_similar(ann, "sku-000010", 10, 5, &r, &err), &err);
    CHECK(r.n == 5 && !list_has(&r, "sku-000010") && !list_has(&r, top));
    for (size_t j = 1; j < r.n; j++) CHECK(r.items[j].score <= r.items[j - 1].score);
    mp_live_list_free(&r);
    mp_live_close(exact);
    mp_live_close(ann);
}

/* The index is cached beside the model file (MODEL.hnsw) and reused when it indexes exactly the model's vectors; a
 * cache that does not match (garbage, or another model's index) is ignored and rebuilt, never trusted. */
MP_TEST(live_index_cache) {
    mp_error err;
    shop s;
    CHECK_OK(shop_build(t, &s, "factors=16,iterations=4,threads=1,regularization=1", &err), &err);
    char cache[1100];
    snprintf(cache, sizeof cache, "%s.hnsw", s.als);
    mp_live *a, *b;
    CHECK_OK(open_live(&a, s.db, s.als, 1, &err), &err);
    struct stat st1, st2;
    CHECK(stat(cache, &st1) == 0); /* written at the first open */
    CHECK_OK(open_live(&b, s.db, s.als, 1, &err), &err);
    CHECK(stat(cache, &st2) == 0);
    CHECK(st1.st_ino == st2.st_ino); /* the second open reused it (a rebuild is saved by rename: a new inode) */
    mp_live_query q = user_query(s.users[0], 10);
    mp_live_list ra, rb;
    CHECK_OK(mp_live_recommend(a, &q, &ra, NULL, &err), &err);
    CHECK_OK(mp_live_recommend(b, &q, &rb, NULL, &err), &err);
    CHECK_EQ(ra.n, rb.n);
    for (size_t j = 0; j < ra.n && j < rb.n; j++) CHECK(!strcmp(ra.items[j].item, rb.items[j].item));
    mp_live_list_free(&rb);
    mp_live_close(b);
    /* a cache that is not an index at all, then an index of other vectors: both rebuilt and replaced */
    FILE *f = fopen(cache, "wb");
    CHECK(f != NULL);
    if (f) {
        fputs("not an index", f);
        fclose(f);
    }
    CHECK_OK(open_live(&b, s.db, s.als, 1, &err), &err);
    CHECK_OK(mp_live_recommend(b, &q, &rb, NULL, &err), &err);
    CHECK_EQ(ra.n, rb.n);
    mp_live_list_free(&rb);
    mp_live_close(b);
    CHECK(stat(cache, &st1) == 0 && st1.st_size > 100); /* replaced by a real index */
    float other[8 * 16];
    for (size_t j = 0; j < 8 * 16; j++) other[j] = (float)(j % 7) - 3.0f;
    mp_hnsw *h;
    CHECK_OK(mp_hnsw_build(&h, other, 8, 16, MP_ANN_IP, NULL, NULL, &err), &err);
    CHECK_OK(mp_hnsw_save(h, cache, &err), &err);
    mp_hnsw_destroy(h);
    CHECK(stat(cache, &st1) == 0);
    CHECK_OK(open_live(&b, s.db, s.als, 1, &err), &err);
    CHECK(stat(cache, &st2) == 0 && st2.st_ino != st1.st_ino); /* not trusted: rebuilt and saved */
    CHECK_OK(mp_live_recommend(b, &q, &rb, NULL, &err), &err);
    CHECK_EQ(ra.n, rb.n);
    for (size_t j = 0; j < ra.n && j < rb.n; j++) CHECK(!strcmp(ra.items[j].item, rb.items[j].item));
    mp_live_list_free(&rb);
    mp_live_close(b);
    mp_live_list_free(&ra);
    mp_live_close(a);
}

MP_TEST(live_builtin_popularity_and_errors) {
    mp_error err;
    shop s;
    CHECK_OK(shop_build(t, &s, "factors=8,iterations=2,threads=1", &err), &err);
    mp_live *l;
    mp_live_opts o;
    mp_live_opts_default(&o);
    CHECK_EQ(mp_live_open(&l, &o, &err), MP_EINVAL); /* no store */
    char missing[800];
    snprintf(missing, sizeof missing, "%s/missing.model", s.dir);
    CHECK_EQ(open_live(&l, s.db, missing, 0, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "missing.model");
    CHECK_OK(open_live(&l, s.db, NULL, 0, &err), &err);
    mp_live_query q = user_query(s.users[0], 6);
    mp_live_list r;
    CHECK_OK(mp_live_recommend(l, &q, &r, NULL, &err), &err);
    CHECK(!strcmp(r.model, "pop") && !r.fallback && r.n == 6 && r.model_version == 1);
    CHECK(!overlaps_history(l, &r, s.users[0]));
    for (size_t j = 1; j < r.n; j++) CHECK(r.items[j].score <= r.items[j - 1].score);
    mp_live_list_free(&r);
    /* a burst of purchases makes an item the most popular at once */
    mp_event ev[40];
    char names[40][16];
    for (int k = 0; k < 40; k++) {
        snprintf(names[k], sizeof names[k], "buyer-%d", k);
        ev[k] = purchase(names[k], "sku-000042", (int64_t)time(NULL));
    }
    mp_live_write_result wr;
    CHECK_OK(mp_live_add_events(l, ev, 40, &wr, &err), &err);
    CHECK_OK(mp_live_popular(l, NULL, 3, 0, &r, &err), &err);
    CHECK(r.n == 3 && !strcmp(r.items[0].item, "sku-000042"));
    mp_live_list_free(&r);
    CHECK_OK(mp_live_popular(l, NULL, 3, 1, &r, &err), &err); /* paging */
    CHECK(r.n == 3 && !list_has(&r, "sku-000042"));
    mp_live_list_free(&r);
    mp_live_model_info mi;
    CHECK_OK(mp_live_model_info_get(l, &mi, &err), &err);
    CHECK(!strcmp(mi.name, "pop") && mi.path[0] == 0 && mi.n_items > 0);
    mp_live_model_info_free(&mi);
    CHECK_EQ(mp_live_reload(l, NULL, &err), MP_EINVAL);
    CHECK_EQ(mp_live_model_changed(l), 0);
    q.n = 0;
    CHECK_EQ(mp_live_recommend(l, &q, &r, NULL, &err), MP_EINVAL);
    mp_live_close(l);
    mp_live_close(NULL);
}

/* The retrieval ops the index relies on: score_all(ctx)[i] == query_vector(ctx) . item_vectors[i] for every factor
 * model (with the bias dimension for BPR and MF), before and after an update that adds items; and forget_user. */
MP_TEST(live_model_retrieval_vectors_match_scores) {
    enum { NU = 30, NI = 24 };
    mp_interaction ev[NU * 6];
    size_t n = 0;
    for (uint32_t u = 0; u < NU; u++)
        for (uint32_t j = 0; j < 6; j++) {
            uint32_t it = (u * 7 + j * 5) % NI;
            ev[n++] = (mp_interaction){.user = u, .item = it, .ts = 100 + j, .type = MP_EV_PURCHASE,
                                       .has_value = 1, .value = (float)(1 + (u + j) % 5)};
        }
    mp_error err;
    mp_dataset *ds;
    CHECK_OK(mp_dataset_from_interactions(&ds, NU, NI, ev, n, &err), &err);
    mp_train_set ts = {0};
    CHECK_OK(mp_train_set_build(&ts, ds, ds->events, ds->n_events, NULL, &err), &err);
    const char *names[3] = {"als", "bpr", "mf"};
    const char *params[3] = {"factors=8,iterations=4,threads=1", "factors=8,epochs=5,threads=1",
                             "factors=8,epochs=5,threads=1"};
    for (int k = 0; k < 3; k++) {
        mp_model *m;
        CHECK_OK(mp_model_create(&m, names[k], &err), &err);
        CHECK_OK(mp_model_set_params(m, params[k], &err), &err);
        CHECK_OK(mp_model_fit(m, &ts.data, NULL, &err), &err);
        for (int round = 0; round < 2; round++) {
            const float *V;
            uint32_t nv, dim;
            CHECK_OK(mp_model_item_vectors(m, &V, &nv, &dim, &err), &err);
            CHECK_EQ(nv, mp_model_n_items(m));
            CHECK(dim == 8 || (k > 0 && dim == 9));
            float q[9], scores[NI + 1];
            int have;
            for (uint32_t u = 0; u < 3; u++) {
                mp_user_ctx ctx = {.user = u, .history = ds->events + ds->user_ptr[u], .n_history = (size_t)(ds->user_ptr[u + 1] - ds->user_ptr[u])};
                CHECK_OK(mp_model_query_vector(m, &ctx, q, &have, &err), &err);
                CHECK(have);
                CHECK_OK(mp_model_score_all(m, &ctx, scores, &err), &err);
                for (uint32_t i = 0; i < nv; i++) {
                    double dot = 0;
                    for (uint32_t d = 0; d < dim; d++) dot += (double)q[d] * V[(size_t)i * dim + d];
                    CHECK_MSG(fabs(dot - scores[i]) <= 1e-4 * (1 + fabs(scores[i])), "%s item %u: %g vs %g",
                              names[k], i, dot, (double)scores[i]);
                }
            }
            /* an update with a new item (24) and a new user (30): the vectors follow */
            mp_interaction up[2] = {{.user = 0, .item = NI, .ts = 200, .type = MP_EV_PURCHASE, .has_value = 1,
                                     .value = 4},
                                    {.user = NU, .item = 3, .ts = 201, .type = MP_EV_PURCHASE, .has_value = 1,
                                     .value = 5}};
            if (round == 0) CHECK_OK(mp_model_update(m, up, 2, &err), &err);
        }
        /* forgetting user 1: no vector left (ALS and BPR fold in from the history given, none here) */
        mp_interaction none[1];
        CHECK_OK(mp_model_forget_user(m, 1, none, 0, &err), &err);
        mp_user_ctx ctx = {.user = 1, .history = NULL, .n_history = 0};
        float q[9];
        int have = 1;
        CHECK_OK(mp_model_query_vector(m, &ctx, q, &have, &err), &err);
        if (k == 0) CHECK(!have); /* ALS: nothing to go on */
        for (int d = 0; d < 8; d++) CHECK(q[d] == 0 || k == 0);
        mp_model_destroy(m);
    }
    /* pop: forget_user subtracts the user's events from the counters */
    mp_model *p;
    CHECK_OK(mp_model_create(&p, "pop", &err), &err);
    CHECK_OK(mp_model_fit(p, &ts.data, NULL, &err), &err);
    float before[NI], after[NI];
    CHECK_OK(mp_model_score_all(p, NULL, before, &err), &err);
    uint32_t u = 4;
    const mp_interaction *h = ds->events + ds->user_ptr[u];
    size_t nh = (size_t)(ds->user_ptr[u + 1] - ds->user_ptr[u]);
    CHECK_OK(mp_model_forget_user(p, u, h, nh, &err), &err);
    CHECK_OK(mp_model_score_all(p, NULL, after, &err), &err);
    float drop = 0;
    for (uint32_t i = 0; i < NI; i++) drop += before[i] - after[i];
    CHECK_NEAR(drop, (double)nh, 1e-4);
    CHECK_EQ(mp_model_query_vector(p, NULL, after, &(int){0}, &err), MP_EUNSUPPORTED);
    mp_model_destroy(p);
    mp_train_set_free(&ts);
    mp_dataset_destroy(ds);
}

/* Features and facts for re-ranking: unit-length model factors, prices from the store and from new item records,
 * live popularity, and zeros where the source has no vector or another dimension. */
MP_TEST(live_item_features_and_facts) {
    shop s;
    mp_error err;
    CHECK_OK(shop_build(t, &s, "factors=8,iterations=3", &err), &err);
    mp_live *l;
    CHECK_OK(open_live(&l, s.db, s.als, 0, &err), &err);
    uint32_t dim = 0;
    CHECK_EQ(mp_live_feature_source(l, MP_LIVE_FEAT_AUTO, &dim), MP_LIVE_FEAT_MODEL);
    CHECK_EQ(dim, 8);
    uint32_t tdim = 7;
    CHECK_EQ(mp_live_feature_source(l, MP_LIVE_FEAT_TEXT, &tdim), MP_LIVE_FEAT_NONE); /* no encoder: no vectors */
    CHECK_EQ(tdim, 0);
    mp_live_feat_source fs;
    CHECK_EQ(mp_live_feat_source_parse("factors", &fs, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "auto, model, text, none");
    /* a new item with a price, one of the generated items and an unknown id */
    mp_item it = {0};
    it.id = S("new-priced");
    it.title = S("Priced Thing");
    it.price = 12.5;
    it.has_price = 1;
    it.available = 1;
    CHECK_OK(mp_live_put_items(l, &it, 1, NULL, &err), &err);
    mp_live_list pop = {0};
    CHECK_OK(mp_live_popular(l, NULL, 1, 0, &pop, &err), &err);
    CHECK_EQ(pop.n, 1);
    const char *ids[3] = {pop.items[0].item, "new-priced", "no-such-item"};
    float x[3 * 8];
    mp_live_item_facts f[3];
    size_t with = 99;
    CHECK_OK(mp_live_item_features(l, ids, 3, MP_LIVE_FEAT_AUTO, 8, x, f, &with, &err), &err);
    CHECK_EQ(with, 1); /* the new item is not in the model (yet), the unknown id is nowhere */
    double norm = 0;
    for (int d = 0; d < 8; d++) norm += (double)x[d] * x[d];
    CHECK_NEAR(norm, 1.0, 1e-5);
    for (int d = 8; d < 24; d++) CHECK(x[d] == 0.0f);
    CHECK(f[0].known && f[0].available && isfinite(f[0].price) && f[0].price > 0); /* generated items have prices */
    CHECK_NEAR(f[0].popularity, pop.items[0].score, 1e-3 * pop.items[0].score);
    CHECK(f[1].known && f[1].price == 12.5 && f[1].popularity == 0);
    CHECK(!f[2].known && !f[2].available && isnan(f[2].price));
    /* out of stock shows; a dimension the source does not have gives zeros */
    CHECK_OK(mp_live_set_item_available(l, "new-priced", 10, 0, &err), &err);
    float y[2 * 4];
    CHECK_OK(mp_live_item_features(l, ids, 2, MP_LIVE_FEAT_MODEL, 4, y, f, &with, &err), &err);
    CHECK_EQ(with, 0);
    CHECK(!f[1].available && f[1].known);
    for (int d = 0; d < 8; d++) CHECK(y[d] == 0.0f);
    CHECK_EQ(mp_live_item_features(l, ids, 2, MP_LIVE_FEAT_MODEL, 0, y, f, NULL, &err), MP_EINVAL);
    /* facts only (x NULL) work for any source */
    CHECK_OK(mp_live_item_features(l, ids, 2, MP_LIVE_FEAT_NONE, 0, NULL, f, NULL, &err), &err);
    CHECK(f[1].price == 12.5);
    mp_live_list_free(&pop);
    mp_live_close(l);
}

/* A live event stamped more than a day after the clock is refused, naming the field (it would decay every other
 * item's live popularity to nothing); a day of clock skew is accepted. */
MP_TEST(live_refuses_events_from_the_future) {
    shop s;
    mp_error err;
    CHECK_OK(shop_build(t, &s, "factors=4,iterations=1", &err), &err);
    mp_live *l;
    CHECK_OK(open_live(&l, s.db, s.pop, 0, &err), &err);
    mp_live_list before = {0};
    CHECK_OK(mp_live_popular(l, NULL, 3, 0, &before, &err), &err);
    int64_t now = (int64_t)time(NULL);
    mp_event e[2] = {purchase(s.users[0], before.items[1].item, now + 3600),
                     purchase(s.users[1], before.items[2].item, now + 40 * 86400)};
    CHECK_EQ(mp_live_add_events(l, e, 2, NULL, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "events[1]: field `ts`");
    CHECK_CONTAINS(err.msg, "days after the server's clock");
    CHECK_OK(mp_live_add_events(l, e, 1, NULL, &err), &err); /* an hour of skew is fine */
    mp_live_list_free(&before);
    mp_live_close(l);
}
