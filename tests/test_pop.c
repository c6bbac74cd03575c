#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/model.h"
#include "test.h"

#define DAY 86400
#define T0 (1735689600 + 100 * DAY) /* fixture "now" */

/* Fixture shop: categories 1 Skin Care {items 0,1,2}, 2 Makeup {3,4}, 3 Phones {5}, item 6 without category.
 *   item 0: 3 purchases two days ago + 2 views 30 days ago   counts 5, weighted 26
 *   item 1: 6 views 30 days ago                              counts 6, weighted 6
 *   item 2: 1 view two days ago                              counts 1
 *   item 3: 4 views 20 days ago                              counts 4
 *   item 4: 2 carts 10 days ago                              counts 2, weighted 8
 *   item 5: 1 purchase now + 1 dislike now                   counts 1, weighted 8 - 4 = 4
 *   item 6: nothing */
static const char *const cat_names[] = {"(none)", "Beauty > Skin Care", "Beauty > Makeup", "Electronics > Phones"};
static const uint32_t item_cat[] = {1, 1, 1, 2, 2, 3, 0};

typedef struct fixture {
    mp_interaction ev[64];
    size_t n;
    mp_weighting w;
    mp_train_data d;
} fixture;

static void add(fixture *f, uint32_t user, uint32_t item, int type, int64_t ts) {
    f->ev[f->n++] = (mp_interaction){.user = user, .item = item, .ts = ts, .type = (uint8_t)type};
}

static void fixture_init(fixture *f) {
    memset(f, 0, sizeof *f);
    for (uint32_t u = 0; u < 3; u++) add(f, u, 0, MP_EV_PURCHASE, T0 - 2 * DAY);
    for (uint32_t u = 0; u < 2; u++) add(f, u, 0, MP_EV_VIEW, T0 - 30 * DAY);
    for (uint32_t u = 0; u < 6; u++) add(f, u, 1, MP_EV_VIEW, T0 - 30 * DAY);
    add(f, 4, 2, MP_EV_VIEW, T0 - 2 * DAY);
    for (uint32_t u = 0; u < 4; u++) add(f, u, 3, MP_EV_VIEW, T0 - 20 * DAY);
    for (uint32_t u = 0; u < 2; u++) add(f, u, 4, MP_EV_CART, T0 - 10 * DAY);
    add(f, 5, 5, MP_EV_PURCHASE, T0);
    add(f, 6, 5, MP_EV_DISLIKE, T0);
    for (int k = 0; k < MP_EV_NTYPES; k++) f->w.type_weight[k] = mp_event_type_default_weight(k);
    f->d = (mp_train_data){.n_users = 7,
                           .n_items = 7,
                           .events = f->ev,
                           .n_events = f->n,
                           .weighting = &f->w,
                           .item_category = item_cat,
                           .category_names = cat_names,
                           .n_categories = 4,
                           .now = T0};
}

static int fit_pop(mp_model **m, const fixture *f, const char *params, mp_error *err) {
    int rc = mp_model_create(m, "pop", err);
    if (rc) return rc;
    if (params && (rc = mp_model_set_params(*m, params, err))) return rc;
    return mp_model_fit(*m, &f->d, NULL, err);
}

MP_TEST(pop_counts_events) {
    fixture f;
    fixture_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(fit_pop(&m, &f, NULL, &err), &err);
    float s[7];
    CHECK_OK(mp_model_score_all(m, NULL, s, &err), &err);
    float want[7] = {5, 6, 1, 4, 2, 1, 0}; /* the dislike is not counted */
    for (int i = 0; i < 7; i++) CHECK_NEAR(s[i], want[i], 0);
    uint32_t top[3];
    size_t n;
    CHECK_OK(mp_model_recommend(m, NULL, 3, NULL, 0, 1, NULL, top, NULL, &n, &err), &err);
    CHECK_EQ(n, 3);
    CHECK(top[0] == 1 && top[1] == 0 && top[2] == 3);
    mp_model_destroy(m);
}

MP_TEST(pop_weighted_and_decayed) {
    fixture f;
    fixture_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(fit_pop(&m, &f, "weighted=1", &err), &err);
    float s[7];
    CHECK_OK(mp_model_score_all(m, NULL, s, &err), &err);
    float want[7] = {26, 6, 1, 4, 8, 4, 0};
    for (int i = 0; i < 7; i++) CHECK_NEAR(s[i], want[i], 1e-6);
    mp_model_destroy(m);

    /* Custom type weights come from data->weighting. */
    f.w.type_weight[MP_EV_PURCHASE] = 1;
    CHECK_OK(fit_pop(&m, &f, "weighted=1", &err), &err);
    CHECK_OK(mp_model_score_all(m, NULL, s, &err), &err);
    CHECK_NEAR(s[0], 5, 1e-6);
    mp_model_destroy(m);

    /* Half-life 10 days: an event 30 days old weighs 1/8, two days old 0.5^0.2. */
    fixture_init(&f);
    CHECK_OK(fit_pop(&m, &f, "half_life_days=10", &err), &err);
    CHECK_OK(mp_model_score_all(m, NULL, s, &err), &err);
    CHECK_NEAR(s[0], 3 * pow(0.5, 0.2) + 2 * 0.125, 1e-5);
    CHECK_NEAR(s[1], 6 * 0.125, 1e-6);
    CHECK_NEAR(s[3], 4 * 0.25, 1e-6);
    CHECK_NEAR(s[5], 1, 1e-6);
    mp_model_destroy(m);
}

MP_TEST(pop_category_boost_follows_history) {
    fixture f;
    fixture_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(fit_pop(&m, &f, "category_boost=2", &err), &err);
    /* The user has only browsed Makeup (item 4): Makeup items get x3. */
    mp_interaction hist[2] = {{.user = 9, .item = 4, .ts = T0, .type = MP_EV_VIEW},
                              {.user = 9, .item = 4, .ts = T0 + 1, .type = MP_EV_CLICK}};
    mp_user_ctx ctx = {.user = 9, .history = hist, .n_history = 2};
    float s[7];
    CHECK_OK(mp_model_score_all(m, &ctx, s, &err), &err);
    CHECK_NEAR(s[3], 12, 1e-6);
    CHECK_NEAR(s[1], 6, 1e-6);
    uint32_t top[2];
    size_t n;
    CHECK_OK(mp_model_recommend(m, &ctx, 2, NULL, 0, 1, NULL, top, NULL, &n, &err), &err);
    CHECK_EQ(n, 2);
    CHECK_EQ(top[0], 3); /* 12 beats 6; item 4 is history */
    CHECK_EQ(top[1], 1);
    char why[256];
    CHECK_OK(mp_model_explain(m, &ctx, 3, why, sizeof why, &err), &err);
    CHECK(strcmp(why, "popular in Makeup, which you often browse") == 0);
    /* No history: plain popularity. */
    CHECK_OK(mp_model_score_all(m, NULL, s, &err), &err);
    CHECK_NEAR(s[3], 4, 1e-6);
    mp_model_destroy(m);
}

MP_TEST(pop_explain_texts) {
    fixture f;
    fixture_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(fit_pop(&m, &f, NULL, &err), &err);
    char why[256];
    CHECK_OK(mp_model_explain(m, NULL, 0, why, sizeof why, &err), &err);
    CHECK(strcmp(why, "popular in Skin Care this week (#1 of 3, 3 purchases)") == 0);
    CHECK_OK(mp_model_explain(m, NULL, 2, why, sizeof why, &err), &err);
    CHECK(strcmp(why, "popular in Skin Care this week (#2 of 3, 1 view)") == 0);
    CHECK_OK(mp_model_explain(m, NULL, 1, why, sizeof why, &err), &err);
    CHECK(strcmp(why, "popular in Skin Care (#1 of 3)") == 0);
    CHECK_OK(mp_model_explain(m, NULL, 6, why, sizeof why, &err), &err);
    CHECK(strcmp(why, "ranked #7 of 7 overall by popularity") == 0);
    CHECK_OK(mp_model_explain(m, NULL, 5, why, sizeof why, &err), &err);
    CHECK(strcmp(why, "popular in Phones this week (#1 of 1, 1 purchase)") == 0);
    /* A small buffer truncates but stays terminated. */
    char tiny[8];
    CHECK_OK(mp_model_explain(m, NULL, 0, tiny, sizeof tiny, &err), &err);
    CHECK(strcmp(tiny, "popular") == 0);
    CHECK_EQ(mp_model_explain(m, NULL, 70, why, sizeof why, &err), MP_ENOTFOUND);
    mp_model_destroy(m);

    /* A one-day window: the purchases two days ago no longer count as "today". */
    CHECK_OK(fit_pop(&m, &f, "window_days=1", &err), &err);
    CHECK_OK(mp_model_explain(m, NULL, 0, why, sizeof why, &err), &err);
    CHECK(strcmp(why, "popular in Skin Care (#2 of 3)") == 0);
    CHECK_OK(mp_model_explain(m, NULL, 5, why, sizeof why, &err), &err);
    CHECK(strcmp(why, "popular in Phones today (#1 of 1, 1 purchase)") == 0);
    mp_model_destroy(m);

    /* Without category data everything is "popular overall". */
    f.d.item_category = NULL;
    f.d.category_names = NULL;
    f.d.n_categories = 0;
    CHECK_OK(fit_pop(&m, &f, NULL, &err), &err);
    CHECK_OK(mp_model_explain(m, NULL, 1, why, sizeof why, &err), &err);
    CHECK(strcmp(why, "popular overall (#1 of 7)") == 0);
    mp_model_destroy(m);
}

MP_TEST(pop_similar_same_category) {
    fixture f;
    fixture_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(fit_pop(&m, &f, NULL, &err), &err);
    uint32_t items[10];
    float sc[10];
    size_t n;
    CHECK_OK(mp_model_similar(m, 0, 10, items, sc, &n, &err), &err);
    CHECK_EQ(n, 2);
    CHECK(items[0] == 1 && items[1] == 2);
    CHECK_NEAR(sc[0], 6, 0);
    CHECK_OK(mp_model_similar(m, 6, 3, items, sc, &n, &err), &err); /* no category: overall */
    CHECK_EQ(n, 3);
    CHECK(items[0] == 1 && items[1] == 0 && items[2] == 3);
    mp_model_destroy(m);
}

MP_TEST(pop_update_in_real_time) {
    fixture f;
    fixture_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(fit_pop(&m, &f, NULL, &err), &err);
    mp_interaction ev[11];
    for (int i = 0; i < 10; i++) ev[i] = (mp_interaction){.user = 1, .item = 2, .ts = T0 + 60, .type = MP_EV_VIEW};
    ev[10] = (mp_interaction){.user = 1, .item = 8, .ts = T0 + 60, .type = MP_EV_VIEW}; /* a new item */
    CHECK_OK(mp_model_update(m, ev, 11, &err), &err);
    CHECK_EQ(mp_model_n_items(m), 9);
    float s[9];
    CHECK_OK(mp_model_score_all(m, NULL, s, &err), &err);
    CHECK_NEAR(s[2], 11, 0);
    CHECK_NEAR(s[7], 0, 0);
    CHECK_NEAR(s[8], 1, 0);
    uint32_t top[1];
    size_t n;
    CHECK_OK(mp_model_recommend(m, NULL, 1, NULL, 0, 1, NULL, top, NULL, &n, &err), &err);
    CHECK_EQ(top[0], 2);
    char why[128];
    CHECK_OK(mp_model_explain(m, NULL, 2, why, sizeof why, &err), &err);
    CHECK(strcmp(why, "popular in Skin Care this week (#1 of 3, 11 views)") == 0);
    mp_model_destroy(m);

    /* With decay, moving time forward by one half-life halves the old scores. */
    CHECK_OK(fit_pop(&m, &f, "half_life_days=10", &err), &err);
    float before[7];
    CHECK_OK(mp_model_score_all(m, NULL, before, &err), &err);
    mp_interaction late = {.user = 1, .item = 6, .ts = T0 + 10 * DAY, .type = MP_EV_VIEW};
    CHECK_OK(mp_model_update(m, &late, 1, &err), &err);
    float after[7];
    CHECK_OK(mp_model_score_all(m, NULL, after, &err), &err);
    for (int i = 0; i < 6; i++) CHECK_NEAR(after[i], before[i] / 2, 1e-6);
    CHECK_NEAR(after[6], 1, 1e-6);
    mp_model_destroy(m);
}

MP_TEST(pop_predict_rating_damped_mean) {
    mp_interaction ev[6];
    for (int i = 0; i < 4; i++)
        ev[i] = (mp_interaction){.user = (uint32_t)i, .item = 0, .ts = 10, .value = 5, .type = MP_EV_REVIEW,
                                 .has_value = 1};
    ev[4] = (mp_interaction){.user = 0, .item = 1, .ts = 10, .value = 1, .type = MP_EV_RATING, .has_value = 1};
    ev[5] = (mp_interaction){.user = 0, .item = 2, .ts = 10, .value = 99, .type = MP_EV_PURCHASE, .has_value = 1};
    mp_train_data d = {.n_users = 4, .n_items = 3, .events = ev, .n_events = 6, .now = 10};
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(mp_model_create(&m, "pop", &err), &err);
    CHECK_OK(mp_model_fit(m, &d, NULL, &err), &err);
    double r;
    CHECK_OK(mp_model_predict_rating(m, 0, 0, &r, &err), &err);
    CHECK_NEAR(r, (20 + 5 * 4.2) / 9.0, 1e-9);
    CHECK_OK(mp_model_predict_rating(m, 3, 1, &r, &err), &err);
    CHECK_NEAR(r, (1 + 5 * 4.2) / 6.0, 1e-9);
    CHECK_OK(mp_model_predict_rating(m, 3, 2, &r, &err), &err); /* purchase amounts are not ratings */
    CHECK_NEAR(r, 4.2, 1e-9);
    mp_model_destroy(m);

    fixture f;
    fixture_init(&f);
    CHECK_OK(fit_pop(&m, &f, NULL, &err), &err);
    CHECK_EQ(mp_model_predict_rating(m, 0, 0, &r, &err), MP_EUNSUPPORTED);
    CHECK_CONTAINS(err.msg, "no rating values");
    mp_model_destroy(m);
}

MP_TEST(pop_save_load_round_trip_and_determinism) {
    fixture f;
    fixture_init(&f);
    mp_error err;
    mp_error_clear(&err);
    const char *dir = mp_test_tmpdir(t);
    char p1[600], p2[600], p3[600];
    snprintf(p1, sizeof p1, "%s/a.model", dir);
    snprintf(p2, sizeof p2, "%s/b.model", dir);
    snprintf(p3, sizeof p3, "%s/c.model", dir);
    mp_model *a, *b, *l;
    CHECK_OK(fit_pop(&a, &f, "half_life_days=15,weighted=1,category_boost=0.5,window_days=3", &err), &err);
    CHECK_OK(fit_pop(&b, &f, "half_life_days=15,weighted=1,category_boost=0.5,window_days=3", &err), &err);
    CHECK_OK(mp_model_save(a, p1, &err), &err);
    CHECK_OK(mp_model_save(b, p2, &err), &err);
    size_t l1, l2, l3;
    unsigned char *i1 = mp_test_slurp(p1, &l1), *i2 = mp_test_slurp(p2, &l2);
    CHECK(i1 && i2 && l1 == l2 && memcmp(i1, i2, l1) == 0);

    CHECK_OK(mp_model_load(&l, p1, &err), &err);
    CHECK_EQ(mp_model_n_items(l), 7);
    mp_interaction hist[1] = {{.user = 0, .item = 3, .ts = T0, .type = MP_EV_VIEW}};
    mp_user_ctx ctx = {.user = 0, .history = hist, .n_history = 1};
    float sa[7], sl[7];
    CHECK_OK(mp_model_score_all(a, &ctx, sa, &err), &err);
    CHECK_OK(mp_model_score_all(l, &ctx, sl, &err), &err);
    CHECK(memcmp(sa, sl, sizeof sa) == 0);
    for (uint32_t i = 0; i < 7; i++) {
        char wa[256], wl[256];
        CHECK_OK(mp_model_explain(a, &ctx, i, wa, sizeof wa, &err), &err);
        CHECK_OK(mp_model_explain(l, &ctx, i, wl, sizeof wl, &err), &err);
        CHECK(strcmp(wa, wl) == 0);
    }
    /* Saving the loaded model gives the same bytes. */
    CHECK_OK(mp_model_save(l, p3, &err), &err);
    unsigned char *i3 = mp_test_slurp(p3, &l3);
    CHECK(i3 && l3 == l1 && memcmp(i1, i3, l1) == 0);
    /* Refitting a fitted model starts from scratch. */
    CHECK_OK(mp_model_fit(b, &f.d, NULL, &err), &err);
    float sb[7];
    CHECK_OK(mp_model_score_all(b, &ctx, sb, &err), &err);
    CHECK(memcmp(sa, sb, sizeof sa) == 0);
    free(i1);
    free(i2);
    free(i3);
    mp_model_destroy(a);
    mp_model_destroy(b);
    mp_model_destroy(l);
}

MP_TEST(pop_bad_params_and_data) {
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(mp_model_create(&m, "pop", &err), &err);
    const char *bad[][2] = {{"half_life_days", "-1"}, {"half_life_days", "nan"}, {"category_boost", "abc"},
                            {"window_days", "1e999"}, {"weighted", "2"},          {"weighted", "0.5"},
                            {"category_boost", "3x"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(mp_model_set_param(m, bad[i][0], bad[i][1], &err), MP_EINVAL);
        CHECK_CONTAINS(err.msg, bad[i][0]);
        CHECK_CONTAINS(err.msg, bad[i][1]);
    }
    CHECK_OK(mp_model_set_param(m, "half_life_days", "2.5", &err), &err);
    mp_train_data empty = {.n_users = 1, .n_items = 1};
    CHECK_EQ(mp_model_fit(m, &empty, NULL, &err), MP_EEMPTY);
    CHECK(!mp_model_is_fitted(m));
    mp_interaction ev = {.user = 0, .item = 5, .ts = 1, .type = MP_EV_VIEW};
    mp_train_data out_of_range = {.n_users = 1, .n_items = 2, .events = &ev, .n_events = 1};
    CHECK_EQ(mp_model_fit(m, &out_of_range, NULL, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "item 5");
    mp_model_destroy(m);
}

MP_TEST(pop_explain_unpopular_items_say_their_rank) {
    mp_interaction ev[78];
    uint32_t cats[12];
    size_t n = 0;
    for (uint32_t i = 0; i < 12; i++) {
        cats[i] = 1;
        for (uint32_t k = 0; k <= i; k++)
            ev[n++] = (mp_interaction){.user = k, .item = i, .ts = T0 - 60 * DAY, .type = MP_EV_VIEW};
    }
    mp_train_data d = {.n_users = 12, .n_items = 12, .events = ev, .n_events = n, .item_category = cats,
                       .category_names = cat_names, .n_categories = 2, .now = T0};
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(mp_model_create(&m, "pop", &err), &err);
    CHECK_OK(mp_model_fit(m, &d, NULL, &err), &err);
    char why[128];
    CHECK_OK(mp_model_explain(m, NULL, 0, why, sizeof why, &err), &err);
    CHECK(strcmp(why, "ranked #12 of 12 in Skin Care by popularity") == 0);
    CHECK_OK(mp_model_explain(m, NULL, 7, why, sizeof why, &err), &err); /* #5 is still "popular" */
    CHECK(strcmp(why, "popular in Skin Care (#5 of 12)") == 0);
    mp_model_destroy(m);
}
