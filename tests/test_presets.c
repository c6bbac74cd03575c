#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "magpie/ingest.h"
#include "magpie/store.h"
#include "test.h"

/* Writes dir/name with text; returns 0 on failure. */
static int put_file(const char *dir, const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

/* Opens a fresh store in its own folder; *dir gets a copy of a fresh data folder path. */
static int fresh(mp_test_ctx *t, mp_store **s, char *dir, size_t cap, mp_error *err) {
    snprintf(dir, cap, "%s", mp_test_tmpdir(t));
    char db[1100];
    snprintf(db, sizeof db, "%s/magpie.db", dir);
    return mp_store_open(s, db, MP_STORE_READWRITE, err);
}

typedef struct item_probe {
    const char *id;  /* which item to look at */
    char title[128]; /* its title */
    char category[128];
    char attrs[512];
    char brand[64];
    double price;
    int found;
} item_probe;

static int probe_item(void *ctx, uint32_t id, const mp_item *it) {
    (void)id;
    item_probe *p = ctx;
    if (it->id.len != strlen(p->id) || memcmp(it->id.ptr, p->id, it->id.len) != 0) return 0;
    snprintf(p->title, sizeof p->title, "%.*s", (int)it->title.len, it->title.ptr);
    snprintf(p->category, sizeof p->category, "%.*s", (int)it->category.len, it->category.ptr);
    snprintf(p->attrs, sizeof p->attrs, "%.*s", (int)it->attrs.len, it->attrs.ptr);
    snprintf(p->brand, sizeof p->brand, "%.*s", (int)it->brand.len, it->brand.ptr);
    p->price = it->has_price ? it->price : -1;
    p->found = 1;
    return 1;
}

typedef struct user_probe {
    const char *id;
    char attrs[512];
    int found;
} user_probe;

static int probe_user(void *ctx, uint32_t id, const mp_user *u) {
    (void)id;
    user_probe *p = ctx;
    if (u->id.len != strlen(p->id) || memcmp(u->id.ptr, p->id, u->id.len) != 0) return 0;
    snprintf(p->attrs, sizeof p->attrs, "%.*s", (int)u->attrs.len, u->attrs.ptr);
    p->found = 1;
    return 1;
}

typedef struct event_sum {
    int64_t ts_sum;
    double value_sum;
    size_t n_text;
    char first_text[256];
} event_sum;

static int sum_events(void *ctx, const mp_event_row *e) {
    event_sum *s = ctx;
    s->ts_sum += e->ts;
    if (e->has_value) s->value_sum += e->value;
    if (e->text.len) {
        if (!s->n_text) snprintf(s->first_text, sizeof s->first_text, "%.*s", (int)e->text.len, e->text.ptr);
        s->n_text++;
    }
    return 0;
}

MP_TEST(presets_names_and_unknown) {
    const char *const *names = mp_preset_names();
    size_t n = 0;
    while (names[n])
        n++;
    CHECK_EQ(n, 7);
    CHECK(strcmp(names[0], "movielens") == 0);
    CHECK(strcmp(names[6], "reviews-en") == 0);
    mp_error err;
    mp_import_report rep;
    CHECK_EQ(mp_import_preset(NULL, "netflix", "/tmp", NULL, &rep, &err), MP_EINVAL);
    CHECK(strcmp(err.msg, "unknown preset \"netflix\"; known presets: movielens, s3rec, tianchi, obd, amazon-games, "
                          "reviews-zh, reviews-en") == 0);
    CHECK_EQ(rep.read, 0);
}

MP_TEST(presets_missing_path) {
    mp_error err;
    mp_store *s;
    char dir[1024];
    CHECK_OK(fresh(t, &s, dir, sizeof dir, &err), &err);
    mp_import_report rep;
    CHECK_EQ(mp_import_preset(s, "movielens", "/nonexistent/ml-100k", NULL, &rep, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "/nonexistent/ml-100k");
    /* a folder without the expected file */
    CHECK_EQ(mp_import_preset(s, "tianchi", dir, NULL, &rep, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "ecomm_edge_train.txt");
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 0);
    mp_store_close(s);
}

MP_TEST(presets_movielens_tiny) {
    mp_error err;
    mp_store *s;
    char dir[1024];
    CHECK_OK(fresh(t, &s, dir, sizeof dir, &err), &err);
    CHECK(put_file(dir, "u.data", "1\t10\t5\t881250949\n2\t10\t3\t891717742\n1\t20\t4\t878887116\n"));
    CHECK(put_file(dir, "u.item",
                   "10|Toy Story (1995)|01-Jan-1995||http://x/toy|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
                   "20|Mis\xe9rables, Les (1995)|01-Jan-1995||http://x/ge|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n"));
    CHECK(put_file(dir, "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n"));
    mp_import_report rep;
    CHECK_OK(mp_import_preset(s, "movielens", dir, NULL, &rep, &err), &err);
    CHECK_EQ(rep.rejected, 0);
    CHECK(rep.committed);
    mp_import_report_free(&rep);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 3);
    CHECK_EQ(st.per_type[MP_EV_RATING], 3);
    CHECK_EQ(st.n_users, 2);
    CHECK_EQ(st.n_items, 2);
    CHECK_EQ(st.ts_min, 878887116);
    event_sum es = {0};
    CHECK_OK(mp_store_scan_events(s, sum_events, &es, &err), &err);
    CHECK_NEAR(es.value_sum, 12.0, 1e-9);
    item_probe ip = {.id = "10"};
    CHECK_OK(mp_store_scan_items(s, probe_item, &ip, &err) < 0 ? -1 : 0, &err);
    CHECK(ip.found);
    CHECK(strcmp(ip.title, "Toy Story (1995)") == 0);
    CHECK(strcmp(ip.category, "Animation") == 0);
    CHECK_CONTAINS(ip.attrs, "\"genres\":[\"Animation\",\"Children's\",\"Comedy\"]");
    CHECK_CONTAINS(ip.attrs, "\"release_date\":\"01-Jan-1995\"");
    item_probe ip2 = {.id = "20"}; /* u.item is Latin-1: transcoded to UTF-8 */
    mp_store_scan_items(s, probe_item, &ip2, &err);
    CHECK(strcmp(ip2.title, "Mis\xc3\xa9rables, Les (1995)") == 0);
    CHECK(strcmp(ip2.category, "Action") == 0);
    user_probe up = {.id = "2"};
    CHECK_OK(mp_store_scan_users(s, probe_user, &up, &err) < 0 ? -1 : 0, &err);
    CHECK(up.found);
    CHECK(strcmp(up.attrs, "{\"age\":53,\"gender\":\"F\",\"occupation\":\"other\",\"zip\":\"94043\"}") == 0);
    mp_store_close(s);
}

MP_TEST(presets_movielens_bad_row_rejected) {
    mp_error err;
    mp_store *s;
    char dir[1024];
    CHECK_OK(fresh(t, &s, dir, sizeof dir, &err), &err);
    CHECK(put_file(dir, "u.data", "1\t10\t5\t881250949\n2\t10\tfive\t891717742\n1\t20\t4\t878887116\n"));
    mp_import_report rep;
    /* all-or-nothing: the bad row rolls the batch back */
    CHECK_EQ(mp_import_preset(s, "movielens", dir, NULL, &rep, &err), MP_EBADREC);
    CHECK_EQ(rep.rejected, 1);
    CHECK_EQ(rep.committed, 0);
    CHECK(rep.n_errors == 1);
    CHECK_CONTAINS(rep.errors[0], "u.data:2: field `rating`: expected a number");
    mp_import_report_free(&rep);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 0);
    /* with a rejects file the good rows are kept */
    char rej[1100];
    snprintf(rej, sizeof rej, "%s/rejects.jsonl", dir);
    mp_import_opts o = {0};
    o.rejects_path = rej;
    CHECK_OK(mp_import_preset(s, "movielens", dir, &o, &rep, &err), &err);
    CHECK_EQ(rep.rejected, 1);
    mp_import_report_free(&rep);
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 2);
    mp_store_close(s);
}

MP_TEST(presets_s3rec_tiny) {
    mp_error err;
    mp_store *s;
    char dir[1024];
    CHECK_OK(fresh(t, &s, dir, sizeof dir, &err), &err);
    CHECK(put_file(dir, "Toy.txt", "1 1 2 3\n2 3 1\n3 2 2 4 1\n"));
    CHECK(put_file(dir, "Toy_item2attributes.json", "{\"3\": [7, 8], \"1\": [5], \"2\": [6, 9, 1], \"4\": []}"));
    char path[1100];
    snprintf(path, sizeof path, "%s/Toy.txt", dir);
    mp_import_report rep;
    CHECK_OK(mp_import_preset(s, "s3rec", path, NULL, &rep, &err), &err);
    mp_import_report_free(&rep);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 9);
    CHECK_EQ(st.per_type[MP_EV_PURCHASE], 9);
    CHECK_EQ(st.n_users, 3);
    CHECK_EQ(st.n_items, 4);
    CHECK_EQ(st.ts_min, 1);
    CHECK_EQ(st.ts_max, 4);
    event_sum es = {0};
    CHECK_OK(mp_store_scan_events(s, sum_events, &es, &err), &err);
    CHECK_EQ(es.ts_sum, (1 + 2 + 3) + (1 + 2) + (1 + 2 + 3 + 4));
    item_probe ip = {.id = "2"};
    mp_store_scan_items(s, probe_item, &ip, &err);
    CHECK(ip.found);
    CHECK(strcmp(ip.category, "attr-6") == 0);
    CHECK(strcmp(ip.attrs, "{\"attributes\":[6, 9, 1]}") == 0);
    mp_store_close(s);
}

MP_TEST(presets_tianchi_tiny) {
    mp_error err;
    mp_store *s;
    char dir[1024];
    CHECK_OK(fresh(t, &s, dir, sizeof dir, &err), &err);
    CHECK(put_file(dir, "ecomm_edge_train.txt",
                   "100\t7\t1\t20190616\n100\t7\t4\t20190617\n200\t8\t2\t20190610\n"
                   "200\t9\t3\t20190610\n"));
    CHECK(put_file(dir, "ecomm_item_feature.txt",
                   "7\t33\t50002833\t0\t21.8\n8\t33\t50002835\t12\t145\n"
                   "9\t33\t50004892\t0\t27.5\n"));
    CHECK(put_file(dir, "ecomm_user_feature.txt", "100\t1\t5\t-1\t10\t15203.1\t1,6,4\n200\t0\t5\t-1\t-1\t7210.5\t1\n"));
    mp_import_report rep;
    CHECK_OK(mp_import_preset(s, "tianchi", dir, NULL, &rep, &err), &err);
    mp_import_report_free(&rep);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 4);
    CHECK_EQ(st.per_type[MP_EV_CLICK], 1);
    CHECK_EQ(st.per_type[MP_EV_FAV], 1);
    CHECK_EQ(st.per_type[MP_EV_CART], 1);
    CHECK_EQ(st.per_type[MP_EV_PURCHASE], 1);
    CHECK_EQ(st.n_items, 3);
    CHECK_EQ(st.n_users, 2);
    CHECK_EQ(st.ts_min, 1560124800); /* 2019-06-10T00:00:00Z */
    CHECK_EQ(st.ts_max, 1560729600); /* 2019-06-17T00:00:00Z */
    item_probe ip = {.id = "8"};
    mp_store_scan_items(s, probe_item, &ip, &err);
    CHECK(ip.found);
    CHECK(strcmp(ip.category, "33 > 50002835") == 0);
    CHECK(strcmp(ip.brand, "12") == 0);
    CHECK_NEAR(ip.price, 145.0, 1e-9);
    user_probe up = {.id = "100"};
    mp_store_scan_users(s, probe_user, &up, &err);
    CHECK(strcmp(up.attrs, "{\"gender\":1,\"age_level\":5,\"career_type\":10,\"income\":15203.1,\"stage\":[1,6,4]}") ==
          0);
    mp_store_close(s);
}

MP_TEST(presets_obd_tiny) {
    mp_error err;
    mp_store *s;
    char dir[1024], camp[1100];
    CHECK_OK(fresh(t, &s, dir, sizeof dir, &err), &err);
    snprintf(camp, sizeof camp, "%s/men", dir);
    CHECK(mkdir(camp, 0700) == 0);
    CHECK(put_file(camp, "men.csv",
                   ",timestamp,item_id,position,click,propensity_score,user_feature_0,user_feature_1,"
                   "user_feature_2,user_feature_3,user-item_affinity_0\n"
                   "0,2019-11-24 00:03:13.442536+00:00,14,3,0,0.0294,aa,bb,cc,dd,0.0\n"
                   "1,2019-11-24 00:03:36.705207+00:00,10,1,1,0.0294,aa,bb,cc,dd,0.0\n"
                   "2,2019-11-24 00:04:00.000000+00:00,14,2,0,0.0294,ee,bb,cc,dd,0.0\n"));
    CHECK(put_file(camp, "item_context.csv", ",item_id,item_feature_0,item_feature_1\n0,10,-0.5,abc\n1,14,0.25,def\n"));
    mp_import_report rep;
    CHECK_OK(mp_import_preset(s, "obd", camp, NULL, &rep, &err), &err);
    mp_import_report_free(&rep);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.per_type[MP_EV_VIEW], 3);
    CHECK_EQ(st.per_type[MP_EV_CLICK], 1);
    CHECK_EQ(st.n_events, 4);
    CHECK_EQ(st.n_users, 2);
    CHECK_EQ(st.n_items, 2);
    CHECK_EQ(st.ts_min, 1574553793);
    user_probe up = {.id = "aa-bb-cc-dd"};
    mp_store_scan_users(s, probe_user, &up, &err);
    CHECK(up.found);
    CHECK_CONTAINS(up.attrs, "\"user_feature_3\":\"dd\"");
    item_probe ip = {.id = "14"};
    mp_store_scan_items(s, probe_item, &ip, &err);
    CHECK(ip.found);
    CHECK_MSG(strcmp(ip.attrs, "{\"item_feature_0\":0.25,\"item_feature_1\":\"def\"}") == 0, "attrs %s", ip.attrs);
    mp_store_close(s);
}

MP_TEST(presets_amazon_games_tiny) {
    mp_error err;
    mp_store *s;
    char dir[1024];
    CHECK_OK(fresh(t, &s, dir, sizeof dir, &err), &err);
    CHECK(put_file(dir, "Games-6k.item",
                   "item_id:token\ttitle:token_seq\n0\tFire Emblem\n1\tGBA Case &amp; more\n"
                   "2\tZelda\n"));
    CHECK(put_file(dir, "Games-6k.test.inter",
                   "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t0 1\t2\n1\t2\t0\n"));
    mp_import_report rep;
    CHECK_OK(mp_import_preset(s, "amazon-games", dir, NULL, &rep, &err), &err);
    mp_import_report_free(&rep);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_events, 5);
    CHECK_EQ(st.n_items, 3);
    CHECK_EQ(st.n_users, 2);
    CHECK_EQ(st.ts_max, 3); /* user 0: 0 1 then target 2 at position 3 */
    item_probe ip = {.id = "1"};
    mp_store_scan_items(s, probe_item, &ip, &err);
    CHECK(strcmp(ip.title, "GBA Case &amp; more") == 0);
    mp_store_close(s);
}

MP_TEST(presets_reviews_zh_tiny) {
    mp_error err;
    mp_store *s;
    char dir[1024], data[1100];
    CHECK_OK(fresh(t, &s, dir, sizeof dir, &err), &err);
    snprintf(data, sizeof data, "%s/zh", dir);
    CHECK(mkdir(data, 0700) == 0);
    CHECK(put_file(data, "p.part1.csv",
                   "cat,label,review\n\xe4\xb9\xa6\xe7\xb1\x8d,1,\xEF\xBB\xBF\xe5\xa5\xbd\n"
                   "\xe4\xb9\xa6\xe7\xb1\x8d,0,\"\xe5\x9d\x8f,\xe5\xbe\x88\"\n"));
    CHECK(put_file(data, "p.part2.csv", "cat,label,review\n\xe9\x85\x92\xe5\xba\x97,1,\n"));
    mp_import_report rep;
    CHECK_OK(mp_import_preset(s, "reviews-zh", data, NULL, &rep, &err), &err);
    mp_import_report_free(&rep);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.per_type[MP_EV_REVIEW], 3);
    CHECK_EQ(st.n_users, 3);
    CHECK_EQ(st.n_items, 2);
    event_sum es = {0};
    CHECK_OK(mp_store_scan_events(s, sum_events, &es, &err), &err);
    CHECK_NEAR(es.value_sum, 2.0, 1e-9);
    CHECK_EQ(es.n_text, 2);
    CHECK(strcmp(es.first_text, "\xe5\xa5\xbd") == 0); /* the BOM inside the field is gone */
    mp_store_close(s);
}

MP_TEST(presets_reviews_en_tiny) {
    mp_error err;
    mp_store *s;
    char dir[1024];
    CHECK_OK(fresh(t, &s, dir, sizeof dir, &err), &err);
    CHECK(put_file(dir, "AMAZON_FASHION_5.json",
                   "{\"overall\": 5.0, \"verified\": true, \"reviewerID\": \"A1\", \"asin\": \"B1\", \"style\": "
                   "{\"Size:\": \" Big\"}, \"reviewText\": \"Great \\u00e9\", \"unixReviewTime\": 1441324800}\n"
                   "{\"overall\": null, \"reviewerID\": \"A2\", \"asin\": \"B1\", \"unixReviewTime\": 1441324800}\n"
                   "{\"overall\": 2.0, \"reviewerID\": \"A2\", \"asin\": \"B2\", \"unixReviewTime\": 1441324801}\n"));
    mp_import_report rep;
    char rej[1100];
    snprintf(rej, sizeof rej, "%s/rejects.jsonl", dir);
    mp_import_opts o = {0};
    o.rejects_path = rej;
    CHECK_OK(mp_import_preset(s, "reviews-en", dir, &o, &rep, &err), &err);
    CHECK_EQ(rep.rejected, 1);
    CHECK(rep.n_errors == 1);
    CHECK_CONTAINS(rep.errors[0], "AMAZON_FASHION_5.json:2: field `overall`: is null (required)");
    mp_import_report_free(&rep);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.per_type[MP_EV_REVIEW], 2);
    event_sum es = {0};
    CHECK_OK(mp_store_scan_events(s, sum_events, &es, &err), &err);
    CHECK_NEAR(es.value_sum, 7.0, 1e-9);
    CHECK(strcmp(es.first_text, "Great \xc3\xa9") == 0);
    mp_store_close(s);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

MP_TEST(presets_real_s3rec_and_movielens) {
    const char *udata = mp_test_shared_data("ml-100k/u.data");
    if (!udata) return; /* the shared datasets are not on this machine */
    char ml[600], beauty[600];
    snprintf(ml, sizeof ml, "%s", udata);
    *strrchr(ml, '/') = 0;
    const char *b = mp_test_shared_data("amazon-s3rec/Beauty.txt");
    CHECK(b != NULL);
    snprintf(beauty, sizeof beauty, "%s", b);

    mp_error err;
    mp_store *s;
    char dir[1024];
    CHECK_OK(fresh(t, &s, dir, sizeof dir, &err), &err);
    mp_import_report rep;
    double t0 = now_s();
    CHECK_OK(mp_import_preset(s, "s3rec", beauty, NULL, &rep, &err), &err);
    CHECK_EQ(rep.rejected, 0);
    mp_import_report_free(&rep);
    mp_store_stats st;
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_users, 22363);
    CHECK_EQ(st.n_items, 12101);
    CHECK_EQ(st.n_events, 198502);
    mp_store_close(s);
    double t1 = now_s();

    CHECK_OK(fresh(t, &s, dir, sizeof dir, &err), &err);
    CHECK_OK(mp_import_preset(s, "movielens", ml, NULL, &rep, &err), &err);
    CHECK_EQ(rep.rejected, 0);
    mp_import_report_free(&rep);
    CHECK_OK(mp_store_stats_get(s, &st, &err), &err);
    CHECK_EQ(st.n_users, 943);
    CHECK_EQ(st.n_items, 1682);
    CHECK_EQ(st.n_events, 100000);
    CHECK_EQ(st.per_type[MP_EV_RATING], 100000);
    mp_store_close(s);
    double t2 = now_s();
    CHECK_MSG(t1 - t0 < 10 && t2 - t1 < 10, "too slow: s3rec %.1f s, movielens %.1f s", t1 - t0, t2 - t1);
}
