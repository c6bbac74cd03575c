/* tests/test_explore.c: the live module's serving decisions (include/magpie/explore.h) through libmagpie alone, with
 * no HTTP: a live recommender over a small shop serves through an mp_explore (exploration, A/B variants, price
 * rule), takes feedback and purchases, and reports per-variant counts. This is what a front end other than
 * `magpie serve` would do. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "magpie/explore.h"
#include "magpie/live.h"
#include "test.h"

static mp_str S(const char *s) {
    mp_str r = {s, strlen(s)};
    return r;
}

/* Hashing stays bit-identical to the assignment that moved here from src/eval (golden values of that version). */
MP_TEST(explore_abtest_assign_golden) {
    const double w[3] = {1, 2, 3};
    const char *users[] = {"user-42", "alice", "", "u\xc3\xa9", "0123456789"};
    const int want3[5] = {1, 0, 1, 1, 0};
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(mp_abtest_assign(users[i], "exp1", w, 3), want3[i]);
        CHECK_EQ(mp_abtest_assign(users[i], "magpie", w, 2), 1);
    }
    unsigned long long s = 0;
    char buf[32];
    for (int u = 0; u < 1000; u++) {
        snprintf(buf, sizeof buf, "user-%d", u);
        s = s * 3 + (unsigned)mp_abtest_assign(buf, "s1", w, 3);
    }
    CHECK(s == 7996372423999530017ULL);
}

MP_TEST(explore_opts_check_names_the_option) {
    mp_explore_opts o;
    mp_explore_opts_default(&o);
    mp_error err;
    const char *option = "x";
    CHECK_OK(mp_explore_opts_check(&o, &option, &err), &err);
    CHECK(option == NULL);
    o.policy = "egreedy:eps=1";
    CHECK_EQ(mp_explore_opts_check(&o, &option, &err), MP_EINVAL);
    CHECK(option && !strcmp(option, "policy"));
    CHECK_CONTAINS(err.msg, "eps");
    o.policy = "greedy";
    o.variants = "a:1:greedy;a:1:uniform";
    CHECK_EQ(mp_explore_opts_check(&o, &option, &err), MP_EINVAL);
    CHECK(option && !strcmp(option, "variants"));
    CHECK_CONTAINS(err.msg, "named twice");
    o.variants = NULL;
    o.protect.mmr_lambda = 1.5;
    CHECK_EQ(mp_explore_opts_check(&o, &option, &err), MP_EINVAL);
    CHECK(option && !strcmp(option, "protect.mmr_lambda"));
    o.protect.mmr_lambda = 1;
    o.ttl = 0;
    CHECK_EQ(mp_explore_opts_check(&o, &option, &err), MP_EINVAL);
    CHECK(option && !strcmp(option, "ttl"));
    mp_explore *x = NULL;
    CHECK_EQ(mp_explore_create(&o, &x, &err), MP_EINVAL);
    CHECK(x == NULL);
    CHECK_CONTAINS(err.msg, "`ttl`");
}

typedef struct rows {
    size_t n, converted;
} rows;

static int count_row(void *ctx, const char *variant, uint64_t user_key, int converted, uint32_t purchases) {
    rows *r = ctx;
    r->n++;
    r->converted += converted != 0;
    return variant && user_key && purchases < 1000 ? 0 : 1;
}

MP_TEST(explore_over_live_without_http) {
    char db[600];
    snprintf(db, sizeof db, "%s/shop.db", mp_test_tmpdir(t));
    mp_live_opts lo;
    mp_live_opts_default(&lo);
    lo.db = db;
    lo.embed_missing = 0;
    mp_live *live = NULL;
    mp_error err;
    CHECK_OK(mp_live_open(&live, &lo, &err), &err);
    if (!live) return;
    /* 12 items priced 1..12; every shopper views items 0..7 (more views for lower ids), so popularity ranks them */
    mp_item items[12];
    char ids[12][8];
    memset(items, 0, sizeof items);
    for (int i = 0; i < 12; i++) {
        snprintf(ids[i], sizeof ids[i], "i%d", i);
        items[i].id = S(ids[i]);
        items[i].category = S("Shoes");
        items[i].price = i + 1;
        items[i].has_price = 1;
        items[i].available = 1;
    }
    mp_live_write_result wr;
    CHECK_OK(mp_live_put_items(live, items, 12, &wr, &err), &err);
    int64_t now_s = (int64_t)time(NULL) - 3600;
    mp_event ev[64];
    char users[8][8];
    size_t ne = 0;
    for (int u = 0; u < 8; u++) {
        snprintf(users[u], sizeof users[u], "u%d", u);
        for (int i = 0; i < 8 - u; i++) {
            memset(&ev[ne], 0, sizeof ev[ne]);
            ev[ne].user = S(users[u]);
            ev[ne].item = S(ids[i]);
            ev[ne].type = MP_EV_VIEW;
            ev[ne].ts = now_s + u * 10 + i;
            ne++;
        }
    }
    CHECK_OK(mp_live_add_events(live, ev, ne, &wr, &err), &err);

    mp_explore_opts xo;
    mp_explore_opts_default(&xo);
    xo.variants = "control:1:greedy;explore:1:uniform";
    xo.salt = "s";
    xo.ttl = 60;
    xo.pool = 2;
    xo.seed = 7;
    mp_explore *x = NULL;
    CHECK_OK(mp_explore_create(&xo, &x, &err), &err);
    CHECK(mp_explore_enabled(x));
    CHECK_OK(mp_explore_attach(x, live, &err), &err);

    const double w[2] = {1, 1};
    int served[2] = {0, 0};
    char ev_id[8][40], first[8][16];
    for (int u = 0; u < 8; u++) {
        mp_explore_request rq;
        mp_explore_request_default(&rq);
        rq.now = 100.0;
        mp_explore_slate sl;
        mp_live_query q = {0};
        q.user = users[u];
        q.user_len = strlen(users[u]);
        q.n = 2;
        q.include_seen = 1;
        q.explore = x;
        q.explore_req = &rq;
        q.slate = &sl;
        mp_live_list l;
        CHECK_OK(mp_live_recommend(live, &q, &l, NULL, &err), &err);
        int want = mp_abtest_assign(users[u], "s", w, 2);
        CHECK(sl.active);
        CHECK_EQ(sl.k, 2);
        CHECK_EQ(l.n, 4); /* n * pool candidates, the served ones first */
        CHECK(sl.event_id[0]);
        CHECK(!strcmp(sl.variant, want == 0 ? "control" : "explore"));
        CHECK(!strcmp(sl.policy, want == 0 ? "greedy" : "uniform"));
        CHECK_NEAR(sl.propensity[0], want == 0 ? 1.0 : 1.0 / 4, 1e-12);
        served[want]++;
        snprintf(ev_id[u], sizeof ev_id[u], "%s", sl.event_id);
        snprintf(first[u], sizeof first[u], "%s", l.items[0].item);
        mp_explore_slate_free(&sl);
        mp_live_list_free(&l);
    }
    CHECK(served[0] > 0 && served[1] > 0);

    /* feedback: the codes a front end maps to its statuses */
    const char *variant = NULL;
    CHECK_OK(mp_explore_feedback(x, ev_id[0], first[0], 1.0, 101.0, &variant, &err), &err);
    CHECK(variant && !strcmp(variant, mp_abtest_assign("u0", "s", w, 2) == 0 ? "control" : "explore"));
    CHECK_EQ(mp_explore_feedback(x, ev_id[0], first[0], 1.0, 101.0, NULL, &err), MP_ECONFLICT);
    CHECK_EQ(mp_explore_feedback(x, ev_id[0], "i11", 1.0, 101.0, NULL, &err), MP_ENOTMEMBER);
    CHECK_EQ(mp_explore_feedback(x, "0badc0de-1", first[0], 1.0, 101.0, NULL, &err), MP_ENOTFOUND);
    CHECK_EQ(mp_explore_feedback(x, ev_id[1], first[1], 1.0, 500.0, NULL, &err), MP_EEXPIRED);
    CHECK_OK(mp_explore_feedback(x, ev_id[2], first[2], 0.0, 102.0, NULL, &err), &err);

    /* a purchase posted through the live recommender converts the buyer in the variant that served it */
    mp_event buy = {0};
    buy.user = S("u3");
    buy.item = S("i9");
    buy.type = MP_EV_PURCHASE;
    buy.ts = now_s + 500;
    CHECK_OK(mp_live_add_events(live, &buy, 1, &wr, &err), &err);
    mp_explore_observe(x, &buy, 1, 103.0);

    /* a price rule for one request, and a bad per-request policy */
    mp_explore_request rq;
    mp_explore_request_default(&rq);
    rq.now = 104.0;
    rq.price_max = 2.5;
    mp_explore_slate sl;
    mp_live_query q = {0};
    q.user = "u7";
    q.user_len = 2;
    q.n = 3;
    q.include_seen = 1;
    q.explore = x;
    q.explore_req = &rq;
    q.slate = &sl;
    mp_live_list l;
    CHECK_OK(mp_live_recommend(live, &q, &l, NULL, &err), &err);
    CHECK(sl.active && sl.k <= 2);
    for (size_t i = 0; i < sl.k; i++) CHECK(!strcmp(l.items[i].item, "i0") || !strcmp(l.items[i].item, "i1"));
    mp_explore_slate_free(&sl);
    mp_live_list_free(&l);
    rq.price_max = NAN;
    rq.policy = "egreedy:eps=1";
    CHECK_EQ(mp_live_recommend(live, &q, &l, NULL, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "policy: ");
    CHECK(sl.bad_field && !strcmp(sl.bad_field, "policy"));
    mp_explore_slate_free(&sl);
    mp_live_list_free(&l);

    mp_explore_stats st;
    mp_explore_stats_get(x, &st);
    CHECK_EQ(st.n_variants, 2);
    uint64_t requests = 0, impressions = 0, feedback = 0, clicks = 0, users_n = 0, converted = 0, purchases = 0;
    for (size_t i = 0; i < st.n_variants; i++) {
        requests += st.variants[i].requests;
        impressions += st.variants[i].impressions;
        feedback += st.variants[i].feedback;
        clicks += st.variants[i].clicks;
        users_n += st.variants[i].users;
        converted += st.variants[i].converted_users;
        purchases += st.variants[i].purchases;
    }
    CHECK_EQ(requests, 9);
    CHECK_EQ(impressions, 16 + 2);
    CHECK_EQ(feedback, 2);
    CHECK_EQ(clicks, 1);
    CHECK_EQ(users_n, 8);
    CHECK_EQ(converted, 2); /* u0 clicked, u3 bought */
    CHECK_EQ(purchases, 1);
    rows r = {0, 0};
    CHECK_EQ(mp_explore_users_each(x, count_row, &r), 0);
    CHECK_EQ(r.n, 8);
    CHECK_EQ(r.converted, 2);

    /* an explore state that is not active for a request leaves the model's list as is */
    mp_explore *plain = NULL;
    mp_explore_opts po;
    mp_explore_opts_default(&po);
    CHECK_OK(mp_explore_create(&po, &plain, &err), &err);
    CHECK(!mp_explore_enabled(plain));
    q.explore = plain;
    q.explore_req = NULL;
    CHECK_OK(mp_live_recommend(live, &q, &l, NULL, &err), &err);
    CHECK(!sl.active);
    CHECK_EQ(l.n, 3);
    mp_live_list_free(&l);
    mp_explore_destroy(plain);

    mp_explore_destroy(x);
    mp_live_close(live);
}
