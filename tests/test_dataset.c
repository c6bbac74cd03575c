/* Dataset, weighting, CSR build / transpose and the train set. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/dataset.h"
#include "magpie/store.h"
#include "magpie/trainset.h"
#include "test.h"

static mp_interaction ev(uint32_t u, uint32_t i, int type, int64_t ts) {
    mp_interaction e;
    memset(&e, 0, sizeof e);
    e.user = u;
    e.item = i;
    e.type = (uint8_t)type;
    e.ts = ts;
    return e;
}

MP_TEST(dataset_from_interactions_sorts_by_user_ts) {
    mp_interaction in[] = {ev(2, 0, MP_EV_VIEW, 50), ev(0, 1, MP_EV_VIEW, 30), ev(0, 2, MP_EV_CLICK, 10),
                           ev(2, 1, MP_EV_VIEW, 40), ev(0, 3, MP_EV_VIEW, 30), ev(1, 0, MP_EV_VIEW, 5)};
    mp_dataset *ds;
    mp_error err;
    CHECK_OK(mp_dataset_from_interactions(&ds, 4, 5, in, 6, &err), &err);
    CHECK_EQ(ds->n_events, 6);
    CHECK_EQ(ds->user_ptr[0], 0);
    CHECK_EQ(ds->user_ptr[1], 3);
    CHECK_EQ(ds->user_ptr[2], 4);
    CHECK_EQ(ds->user_ptr[3], 6);
    CHECK_EQ(ds->user_ptr[4], 6); /* user 3 has no events */
    /* user 0: ts 10, then the two ts-30 events in input order (item 1 before item 3) */
    CHECK_EQ(ds->events[0].item, 2);
    CHECK_EQ(ds->events[1].item, 1);
    CHECK_EQ(ds->events[2].item, 3);
    CHECK_EQ(ds->events[4].item, 1);
    CHECK_EQ(ds->events[5].item, 0);
    CHECK_EQ(ds->ts_min, 5);
    CHECK_EQ(ds->ts_max, 50);
    CHECK_EQ(ds->n_categories, 1);
    CHECK(strcmp(ds->category_names[0], "(none)") == 0);
    CHECK_EQ(ds->item_category[4], 0);
    CHECK_EQ(ds->item_available[4], 1);
    mp_dataset_destroy(ds);

    in[3].item = 9;
    CHECK_EQ(mp_dataset_from_interactions(&ds, 4, 5, in, 6, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "item 9 out of range");
    CHECK(ds == NULL);
}

MP_TEST(dataset_weighting_parse) {
    mp_weighting w;
    mp_error err;
    mp_weighting_default(&w);
    CHECK_NEAR(w.type_weight[MP_EV_PURCHASE], mp_event_type_default_weight(MP_EV_PURCHASE), 0);
    CHECK_OK(mp_weighting_parse(&w, "view=2,purchase=10.5", &err), &err);
    CHECK_NEAR(w.type_weight[MP_EV_VIEW], 2.0, 0);
    CHECK_NEAR(w.type_weight[MP_EV_PURCHASE], 10.5, 0);
    CHECK_NEAR(w.type_weight[MP_EV_CLICK], mp_event_type_default_weight(MP_EV_CLICK), 0);
    CHECK_EQ(mp_weighting_parse(&w, "view=1,bogus=3", &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "unknown event type \"bogus\"");
    CHECK_NEAR(w.type_weight[MP_EV_VIEW], 2.0, 0); /* a failed parse changes nothing */
    CHECK_EQ(mp_weighting_parse(&w, "view", &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "TYPE=WEIGHT");
    CHECK_EQ(mp_weighting_parse(&w, "view=abc", &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "expected a number");
}

MP_TEST(dataset_csr_build_weights_and_negative_feedback) {
    mp_interaction in[] = {
        ev(0, 1, MP_EV_VIEW, 0),    ev(0, 1, MP_EV_PURCHASE, 0), ev(0, 0, MP_EV_CLICK, 0),
        ev(1, 0, MP_EV_DISLIKE, 0), ev(1, 0, MP_EV_VIEW, 0),     ev(1, 2, MP_EV_VIEW, 0),
        ev(2, 2, MP_EV_PURCHASE, 0), ev(2, 2, MP_EV_RETURN, 0), /* 8 - 6 = 2 stays */
    };
    mp_weighting w;
    mp_weighting_default(&w);
    mp_csr m, tr;
    mp_error err;
    CHECK_OK(mp_csr_build(&m, in, 8, 3, 3, &w, &err), &err);
    CHECK_EQ(m.n_rows, 3);
    CHECK_EQ(m.n_cols, 3);
    CHECK_EQ(mp_csr_nnz(&m), 4);
    /* row 0: item 0 = click (2), item 1 = view + purchase (9); ascending columns */
    CHECK_EQ(m.ptr[1], 2);
    CHECK_EQ(m.idx[0], 0);
    CHECK_NEAR(m.val[0], 2.0, 1e-6);
    CHECK_EQ(m.idx[1], 1);
    CHECK_NEAR(m.val[1], 9.0, 1e-6);
    /* row 1: item 0 = -4 + 1 <= 0 is dropped; item 2 = 1 */
    CHECK_EQ(m.ptr[2], 3);
    CHECK_EQ(m.idx[2], 2);
    CHECK_NEAR(m.val[2], 1.0, 1e-6);
    CHECK_EQ(m.idx[3], 2);
    CHECK_NEAR(m.val[3], 2.0, 1e-6);

    CHECK_OK(mp_csr_transpose(&tr, &m, &err), &err);
    CHECK_EQ(tr.n_rows, 3);
    CHECK_EQ(tr.n_cols, 3);
    CHECK_EQ(mp_csr_nnz(&tr), 4);
    /* column 2 has users 1 and 2, ascending */
    CHECK_EQ(tr.ptr[2], 2);
    CHECK_EQ(tr.ptr[3], 4);
    CHECK_EQ(tr.idx[2], 1);
    CHECK_EQ(tr.idx[3], 2);
    CHECK_NEAR(tr.val[3], 2.0, 1e-6);
    CHECK_EQ(tr.idx[1], 0); /* column 1: user 0 with 9 */
    CHECK_NEAR(tr.val[1], 9.0, 1e-6);
    mp_csr_free(&tr);
    mp_csr_free(&m);

    w.binary = 1;
    CHECK_OK(mp_csr_build(&m, in, 8, 3, 3, &w, &err), &err);
    CHECK_EQ(mp_csr_nnz(&m), 4);
    for (uint64_t p = 0; p < 4; p++) CHECK_NEAR(m.val[p], 1.0, 0);
    mp_csr_free(&m);

    in[0].user = 7;
    CHECK_EQ(mp_csr_build(&m, in, 8, 3, 3, &w, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "outside 3 x 3");
    mp_csr_free(&m); /* zeroed on failure: harmless */
}

MP_TEST(dataset_csr_time_decay) {
    const int64_t day = 86400;
    mp_interaction in[] = {ev(0, 0, MP_EV_VIEW, 0), ev(0, 1, MP_EV_VIEW, 2 * day), ev(0, 2, MP_EV_PURCHASE, day),
                           ev(0, 3, MP_EV_VIEW, 3 * day)};
    mp_weighting w;
    mp_weighting_default(&w);
    w.half_life_days = 1;
    w.now = 2 * day;
    mp_csr m;
    mp_error err;
    CHECK_OK(mp_csr_build(&m, in, 4, 1, 4, &w, &err), &err);
    CHECK_EQ(mp_csr_nnz(&m), 4);
    CHECK_NEAR(m.val[0], 0.25, 1e-6); /* two half-lives old */
    CHECK_NEAR(m.val[1], 1.0, 1e-6);
    CHECK_NEAR(m.val[2], 8.0 * 0.5, 1e-5);
    CHECK_NEAR(m.val[3], 1.0, 1e-6); /* after `now`: not boosted */
    mp_csr_free(&m);
}

MP_TEST(dataset_csr_many_random_events_match_dense) {
    enum { U = 37, I = 23, N = 5000 };
    mp_interaction *in = malloc(N * sizeof *in);
    double *dense = calloc(U * I, sizeof *dense);
    CHECK(in && dense);
    uint64_t x = 12345;
    mp_weighting w;
    mp_weighting_default(&w);
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        in[i] = ev((uint32_t)((x >> 33) % U), (uint32_t)((x >> 20) % I), (int)((x >> 8) % MP_EV_NTYPES), 0);
        dense[in[i].user * I + in[i].item] += w.type_weight[in[i].type];
    }
    mp_csr m;
    mp_error err;
    int rc = mp_csr_build(&m, in, N, U, I, &w, &err);
    free(in);
    CHECK_OK(rc, &err);
    uint64_t nnz = 0;
    int ok = 1;
    for (uint32_t u = 0; u < U; u++) {
        uint64_t p = m.ptr[u];
        for (uint32_t i = 0; i < I; i++) {
            double d = dense[u * I + i];
            if (d > 0) {
                nnz++;
                if (p >= m.ptr[u + 1] || m.idx[p] != i || fabs(m.val[p] - d) > 1e-3 * fabs(d)) ok = 0;
                p++;
            }
        }
        if (p != m.ptr[u + 1]) ok = 0;
    }
    free(dense);
    uint64_t got = mp_csr_nnz(&m);
    mp_csr_free(&m);
    CHECK(ok);
    CHECK_EQ(got, nnz);
}

MP_TEST(dataset_train_set_build) {
    mp_interaction in[] = {ev(0, 0, MP_EV_VIEW, 10), ev(0, 1, MP_EV_PURCHASE, 20), ev(1, 1, MP_EV_VIEW, 30)};
    mp_dataset *ds;
    mp_error err;
    CHECK_OK(mp_dataset_from_interactions(&ds, 2, 3, in, 3, &err), &err);
    mp_train_set ts;
    CHECK_OK(mp_train_set_build(&ts, ds, ds->events, ds->n_events, NULL, &err), &err);
    CHECK_EQ(ts.data.n_users, 2);
    CHECK_EQ(ts.data.n_items, 3);
    CHECK_EQ(ts.data.now, 30);
    CHECK_EQ(ts.weighting.now, 30);
    CHECK(ts.data.ui == &ts.ui && ts.data.iu == &ts.iu);
    CHECK_EQ(mp_csr_nnz(&ts.ui), 3);
    CHECK_EQ(ts.iu.n_rows, 3);
    CHECK_EQ(ts.iu.ptr[2] - ts.iu.ptr[1], 2); /* item 1 has two users */
    CHECK(ts.data.item_category == ds->item_category);
    CHECK_EQ(ts.data.n_categories, 1);
    mp_train_set_free(&ts);
    mp_dataset_destroy(ds);
}

static mp_str S(const char *s) {
    mp_str r = {s, strlen(s)};
    return r;
}

MP_TEST(dataset_load_from_store) {
    const char *dir = mp_test_tmpdir(t);
    char path[1024];
    snprintf(path, sizeof path, "%s/ds.db", dir);
    mp_store *s;
    mp_error err;
    CHECK_OK(mp_store_open(&s, path, MP_STORE_READWRITE, &err), &err);
    CHECK_OK(mp_store_begin(s, &err), &err);
    const char *cats[] = {"Beauty > Skin", "", "Beauty > Hair", "Beauty > Skin"};
    for (uint32_t i = 0; i < 4; i++) {
        mp_item it;
        memset(&it, 0, sizeof it);
        char id[16];
        snprintf(id, sizeof id, "sku-%u", i);
        it.id = S(id);
        it.title = S(i == 0 ? "Face cream" : "");
        it.category = S(cats[i]);
        it.available = i != 2;
        CHECK_OK(mp_store_put_item(s, i, &it, &err), &err);
    }
    for (uint32_t u = 0; u < 2; u++) {
        mp_user us;
        memset(&us, 0, sizeof us);
        us.id = S(u ? "bob" : "alice");
        CHECK_OK(mp_store_put_user(s, u, &us, &err), &err);
    }
    const struct { uint32_t u, i; int type; int64_t ts; } rows[] = {
        {1, 3, MP_EV_VIEW, 300}, {0, 1, MP_EV_PURCHASE, 200}, {0, 0, MP_EV_VIEW, 100}, {1, 2, MP_EV_CART, 50}};
    for (int k = 0; k < 4; k++) {
        mp_event_row r;
        memset(&r, 0, sizeof r);
        r.user = rows[k].u;
        r.item = rows[k].i;
        r.type = (uint8_t)rows[k].type;
        r.ts = rows[k].ts;
        if (k == 1) {
            r.value = 4.5;
            r.has_value = 1;
        }
        int ins;
        CHECK_OK(mp_store_add_event(s, &r, &ins, &err), &err);
    }
    CHECK_OK(mp_store_commit(s, &err), &err);
    mp_store_close(s);

    CHECK_OK(mp_store_open(&s, path, MP_STORE_READONLY, &err), &err);
    mp_dataset *ds;
    int rc = mp_dataset_load(&ds, s, NULL, &err);
    mp_store_close(s);
    CHECK_OK(rc, &err);
    CHECK_EQ(ds->n_users, 2);
    CHECK_EQ(ds->n_items, 4);
    CHECK_EQ(ds->n_events, 4);
    CHECK_EQ(ds->events[0].user, 0);
    CHECK_EQ(ds->events[0].item, 0);
    CHECK_EQ(ds->events[1].item, 1);
    CHECK_EQ(ds->events[1].has_value, 1);
    CHECK_NEAR(ds->events[1].value, 4.5, 1e-6);
    CHECK_EQ(ds->events[1].type, MP_EV_PURCHASE);
    CHECK_EQ(ds->events[2].item, 2); /* user 1: ts 50 first */
    CHECK_EQ(ds->user_ptr[1], 2);
    CHECK(strcmp(ds->user_ext[1], "bob") == 0);
    CHECK(strcmp(ds->item_ext[3], "sku-3") == 0);
    CHECK(strcmp(ds->item_title[0], "Face cream") == 0);
    CHECK(ds->item_title[1] == NULL);
    CHECK_EQ(ds->n_categories, 3);
    CHECK(strcmp(ds->category_names[0], "(none)") == 0);
    CHECK_EQ(ds->item_category[1], 0);
    CHECK_EQ(ds->item_category[0], ds->item_category[3]);
    CHECK(ds->item_category[0] != ds->item_category[2]);
    CHECK(strcmp(ds->category_names[ds->item_category[2]], "Beauty > Hair") == 0);
    CHECK_EQ(ds->item_available[2], 0);
    CHECK_EQ(ds->item_available[3], 1);
    CHECK_EQ(ds->ts_min, 50);
    CHECK_EQ(ds->ts_max, 300);
    mp_dataset_destroy(ds);
}
