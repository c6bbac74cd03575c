/* Splits: sizes, determinism, no leakage, semantics of each protocol. */
#include <stdlib.h>
#include <string.h>

#include "magpie/split.h"
#include "test.h"

static mp_interaction ev(uint32_t u, uint32_t i, int64_t ts) {
    mp_interaction e;
    memset(&e, 0, sizeof e);
    e.user = u;
    e.item = i;
    e.type = MP_EV_VIEW;
    e.ts = ts;
    return e;
}

/* Every event of ds is in exactly one part (multiset equality by counting (user, item, ts)). */
static int parts_partition(const mp_dataset *ds, const mp_split *sp) {
    if (sp->n_train + sp->n_valid + sp->n_test != ds->n_events) return 0;
    const mp_interaction *parts[3] = {sp->train, sp->valid, sp->test};
    size_t ns[3] = {sp->n_train, sp->n_valid, sp->n_test};
    for (int p = 0; p < 3; p++)
        for (size_t i = 1; i < ns[p]; i++) {
            const mp_interaction *a = &parts[p][i - 1], *b = &parts[p][i];
            if (b->user < a->user || (b->user == a->user && b->ts < a->ts)) return 0; /* sorted by (user, ts) */
        }
    for (size_t i = 0; i < ds->n_events; i++) {
        const mp_interaction *e = &ds->events[i];
        size_t want = 0, got = 0;
        for (size_t j = 0; j < ds->n_events; j++)
            want += ds->events[j].user == e->user && ds->events[j].item == e->item && ds->events[j].ts == e->ts;
        for (int p = 0; p < 3; p++)
            for (size_t j = 0; j < ns[p]; j++)
                got += parts[p][j].user == e->user && parts[p][j].item == e->item && parts[p][j].ts == e->ts;
        if (want != got) return 0;
    }
    return 1;
}

/* No (user, item) pair appears in two parts. */
static int no_pair_leak(const mp_split *sp) {
    const mp_interaction *parts[3] = {sp->train, sp->valid, sp->test};
    size_t ns[3] = {sp->n_train, sp->n_valid, sp->n_test};
    for (int p = 0; p < 3; p++)
        for (int q = p + 1; q < 3; q++)
            for (size_t i = 0; i < ns[p]; i++)
                for (size_t j = 0; j < ns[q]; j++)
                    if (parts[p][i].user == parts[q][j].user && parts[p][i].item == parts[q][j].item) return 0;
    return 1;
}

static int same_split(const mp_split *a, const mp_split *b) {
    return a->n_train == b->n_train && a->n_valid == b->n_valid && a->n_test == b->n_test &&
           memcmp(a->train, b->train, a->n_train * sizeof *a->train) == 0 &&
           memcmp(a->valid, b->valid, a->n_valid * sizeof *a->valid) == 0 &&
           memcmp(a->test, b->test, a->n_test * sizeof *a->test) == 0;
}

/* n_users users with a random number of items each, a few repeated events. */
static mp_dataset *random_dataset(uint32_t n_users, uint32_t n_items, uint64_t seed, mp_error *err) {
    size_t cap = (size_t)n_users * 30, n = 0;
    mp_interaction *in = malloc(cap * sizeof *in);
    if (!in) return NULL;
    uint64_t x = seed;
    for (uint32_t u = 0; u < n_users; u++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t len = 1 + (uint32_t)((x >> 33) % 25);
        for (uint32_t k = 0; k < len; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            in[n++] = ev(u, (uint32_t)((x >> 33) % n_items), (int64_t)((x >> 13) % 100000));
        }
    }
    mp_dataset *ds = NULL;
    mp_dataset_from_interactions(&ds, n_users, n_items, in, n, err);
    free(in);
    return ds;
}

MP_TEST(split_loo_on_sequences_is_last_and_second_to_last) {
    /* ts = position, as the s3rec preset imports sequences */
    mp_interaction in[] = {
        ev(0, 1, 0), ev(0, 2, 1), ev(0, 3, 2), ev(0, 4, 3), ev(0, 5, 4), /* user 0: 1 2 3 4 5 */
        ev(1, 7, 0), ev(1, 8, 1),                                        /* user 1: too short */
        ev(2, 10, 0), ev(2, 11, 1), ev(2, 10, 2), ev(2, 12, 3),          /* user 2: a b a c */
        ev(3, 6, 0), ev(3, 7, 1), ev(3, 9, 2),                           /* user 3: exactly 3 */
    };
    size_t n = sizeof in / sizeof in[0];
    mp_dataset *ds;
    mp_error err;
    CHECK_OK(mp_dataset_from_interactions(&ds, 4, 13, in, n, &err), &err);
    mp_split_opts o;
    mp_split_opts_default(&o, MP_SPLIT_LEAVE_LAST);
    CHECK_EQ(o.with_valid, 1);
    CHECK_EQ(o.min_events, 3);
    mp_split sp;
    CHECK_OK(mp_split_make(ds, &o, &sp, &err), &err);
    CHECK(parts_partition(ds, &sp));
    CHECK(no_pair_leak(&sp));
    CHECK_EQ(sp.n_test, 3);
    CHECK_EQ(sp.test[0].user, 0);
    CHECK_EQ(sp.test[0].item, 5);
    CHECK_EQ(sp.test[1].user, 2);
    CHECK_EQ(sp.test[1].item, 12);
    CHECK_EQ(sp.test[2].user, 3);
    CHECK_EQ(sp.test[2].item, 9);
    CHECK_EQ(sp.n_valid, 4);
    CHECK_EQ(sp.valid[0].item, 4);
    CHECK_EQ(sp.valid[1].item, 10); /* both events on item 10 go to validation */
    CHECK_EQ(sp.valid[2].item, 10);
    CHECK_EQ(sp.valid[3].item, 7);
    CHECK_EQ(sp.n_train, 7); /* 1 2 3 | 7 8 | 11 | 6 */
    CHECK_EQ(sp.train[3].user, 1);
    CHECK_EQ(sp.train[5].item, 11);
    CHECK_EQ(sp.train[6].item, 6);
    CHECK(sp.cold_item == NULL && sp.cold_user == NULL);
    mp_split_free(&sp);

    /* without validation: user 1 (2 items) now qualifies when min_events allows it */
    o.with_valid = 0;
    o.min_events = 2;
    CHECK_OK(mp_split_make(ds, &o, &sp, &err), &err);
    CHECK_EQ(sp.n_valid, 0);
    CHECK_EQ(sp.n_test, 4);
    CHECK_EQ(sp.test[1].item, 8);
    CHECK(parts_partition(ds, &sp));
    mp_split_free(&sp);
    mp_dataset_destroy(ds);
}

MP_TEST(split_ratio_stratified_per_user) {
    mp_interaction in[64];
    size_t n = 0;
    const uint32_t lens[] = {8, 2, 1, 5, 4};
    for (uint32_t u = 0; u < 5; u++)
        for (uint32_t k = 0; k < lens[u]; k++) in[n++] = ev(u, 10 + k, k);
    in[n++] = ev(0, 10, 100); /* a repeat of item 10 for user 0: both events must share a part */
    mp_dataset *ds;
    mp_error err;
    CHECK_OK(mp_dataset_from_interactions(&ds, 5, 20, in, n, &err), &err);
    mp_split_opts o;
    mp_split_opts_default(&o, MP_SPLIT_RATIO);
    CHECK_NEAR(o.ratio, 0.75, 0);
    mp_split sp;
    CHECK_OK(mp_split_make(ds, &o, &sp, &err), &err);
    CHECK(parts_partition(ds, &sp));
    CHECK(no_pair_leak(&sp));
    /* distinct train items per user: 8 -> 6, 2 -> round(1.5) = 2 clamped to 1, 1 -> 1, 5 -> round(3.75) = 4,
     * 4 -> 3 */
    const uint32_t want_train[] = {6, 1, 1, 4, 3};
    for (uint32_t u = 0; u < 5; u++) {
        uint32_t tr = 0, te = 0;
        uint8_t seen[20] = {0};
        for (size_t i = 0; i < sp.n_train; i++)
            if (sp.train[i].user == u && !seen[sp.train[i].item]++) tr++;
        for (size_t i = 0; i < sp.n_test; i++)
            if (sp.test[i].user == u && !seen[sp.test[i].item]++) te++;
        CHECK_EQ(tr, want_train[u]);
        CHECK_EQ(tr + te, lens[u]);
    }
    mp_split sp2;
    CHECK_OK(mp_split_make(ds, &o, &sp2, &err), &err);
    CHECK(same_split(&sp, &sp2));
    mp_split_free(&sp2);

    o.with_valid = 1; /* user 0: 6 train items -> round(1.5) = 2 of them to validation */
    CHECK_OK(mp_split_make(ds, &o, &sp2, &err), &err);
    CHECK(parts_partition(ds, &sp2));
    CHECK(no_pair_leak(&sp2));
    uint32_t v0 = 0;
    for (size_t i = 0; i < sp2.n_valid; i++) v0 += sp2.valid[i].user == 0;
    CHECK(v0 == 2 || v0 == 3); /* 3 if the repeated item 10 is one of them */
    CHECK_EQ(sp2.n_test, sp.n_test);
    mp_split_free(&sp2);
    mp_split_free(&sp);

    o.ratio = 1.5;
    CHECK_EQ(mp_split_make(ds, &o, &sp, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "between 0 and 1");
    mp_dataset_destroy(ds);
}

MP_TEST(split_deterministic_by_seed) {
    mp_error err;
    mp_dataset *ds = random_dataset(200, 300, 7, &err);
    CHECK(ds != NULL);
    const mp_split_kind kinds[] = {MP_SPLIT_RATIO, MP_SPLIT_COLD_ITEM, MP_SPLIT_COLD_USER};
    for (int k = 0; k < 3; k++) {
        mp_split_opts o;
        mp_split_opts_default(&o, kinds[k]);
        o.seed = 1;
        mp_split a, b, c;
        CHECK_OK(mp_split_make(ds, &o, &a, &err), &err);
        CHECK_OK(mp_split_make(ds, &o, &b, &err), &err);
        o.seed = 2;
        CHECK_OK(mp_split_make(ds, &o, &c, &err), &err);
        int ab = same_split(&a, &b), ac = same_split(&a, &c);
        int part = a.n_train + a.n_valid + a.n_test == ds->n_events;
        mp_split_free(&a);
        mp_split_free(&b);
        mp_split_free(&c);
        CHECK(ab);
        CHECK(!ac);
        CHECK(part);
    }
    mp_dataset_destroy(ds);
}

MP_TEST(split_temporal_share_and_cutoff) {
    mp_interaction in[100];
    for (int i = 0; i < 100; i++) in[i] = ev((uint32_t)(i % 7), (uint32_t)(i % 13), 1000 + (int64_t)(i * 37 % 100));
    mp_dataset *ds;
    mp_error err;
    CHECK_OK(mp_dataset_from_interactions(&ds, 7, 13, in, 100, &err), &err);
    mp_split_opts o;
    mp_split_opts_default(&o, MP_SPLIT_TEMPORAL);
    mp_split sp;
    CHECK_OK(mp_split_make(ds, &o, &sp, &err), &err);
    CHECK(parts_partition(ds, &sp));
    CHECK_EQ(sp.n_test, 20);
    for (size_t i = 0; i < sp.n_test; i++) CHECK(sp.test[i].ts >= 1080);
    for (size_t i = 0; i < sp.n_train; i++) CHECK(sp.train[i].ts < 1080);
    mp_split_free(&sp);

    o.with_valid = 1; /* the latest 20% of the 80 training events: ts 1064..1079 */
    CHECK_OK(mp_split_make(ds, &o, &sp, &err), &err);
    CHECK(parts_partition(ds, &sp));
    CHECK_EQ(sp.n_test, 20);
    CHECK_EQ(sp.n_valid, 16);
    for (size_t i = 0; i < sp.n_valid; i++) CHECK(sp.valid[i].ts >= 1064 && sp.valid[i].ts < 1080);
    mp_split_free(&sp);

    o.with_valid = 0;
    o.cutoff = 1095;
    CHECK_OK(mp_split_make(ds, &o, &sp, &err), &err);
    CHECK_EQ(sp.n_test, 5);
    mp_split_free(&sp);
    mp_dataset_destroy(ds);
}

MP_TEST(split_cold_item_and_user) {
    mp_error err;
    mp_dataset *ds = random_dataset(50, 40, 3, &err);
    CHECK(ds != NULL);
    mp_split_opts o;
    mp_split_opts_default(&o, MP_SPLIT_COLD_ITEM);
    o.share = 0.25;
    mp_split sp;
    CHECK_OK(mp_split_make(ds, &o, &sp, &err), &err);
    CHECK(parts_partition(ds, &sp));
    CHECK(sp.cold_item != NULL && sp.cold_user == NULL);
    uint32_t active = 0, cold = 0;
    uint8_t act[40] = {0};
    for (size_t i = 0; i < ds->n_events; i++) act[ds->events[i].item] = 1;
    for (uint32_t i = 0; i < 40; i++) {
        active += act[i];
        cold += sp.cold_item[i];
        CHECK(!sp.cold_item[i] || act[i]); /* only items with events are held out */
    }
    CHECK_EQ(active, 40);
    CHECK_EQ(cold, 10); /* round(0.25 * 40) */
    for (size_t i = 0; i < sp.n_train; i++) CHECK(!sp.cold_item[sp.train[i].item]);
    for (size_t i = 0; i < sp.n_test; i++) CHECK(sp.cold_item[sp.test[i].item]);
    mp_split_free(&sp);

    mp_split_opts_default(&o, MP_SPLIT_COLD_USER);
    CHECK_OK(mp_split_make(ds, &o, &sp, &err), &err);
    CHECK(parts_partition(ds, &sp));
    CHECK(sp.cold_user != NULL);
    uint32_t cu = 0;
    for (uint32_t u = 0; u < 50; u++) cu += sp.cold_user[u];
    CHECK_EQ(cu, 10);
    for (size_t i = 0; i < sp.n_train; i++) CHECK(!sp.cold_user[sp.train[i].user]);
    for (size_t i = 0; i < sp.n_test; i++) CHECK(sp.cold_user[sp.test[i].user]);
    mp_split_free(&sp);

    o.with_valid = 1;
    CHECK_EQ(mp_split_make(ds, &o, &sp, &err), MP_EUNSUPPORTED);
    CHECK_CONTAINS(err.msg, "no validation part");
    mp_dataset_destroy(ds);
}

MP_TEST(split_merge_and_parse) {
    mp_interaction a[] = {ev(0, 1, 5), ev(2, 1, 1)}, b[] = {ev(0, 2, 3), ev(1, 0, 9), ev(2, 3, 2)};
    mp_interaction *m;
    size_t n;
    mp_error err;
    CHECK_OK(mp_split_merge(a, 2, b, 3, &m, &n, &err), &err);
    CHECK_EQ(n, 5);
    CHECK_EQ(m[0].item, 2);
    CHECK_EQ(m[1].item, 1);
    CHECK_EQ(m[2].user, 1);
    CHECK_EQ(m[3].item, 1);
    CHECK_EQ(m[4].item, 3);
    free(m);
    mp_split_kind k;
    CHECK_EQ(mp_split_kind_parse("loo", &k), MP_OK);
    CHECK_EQ(k, MP_SPLIT_LEAVE_LAST);
    CHECK_EQ(mp_split_kind_parse("cold-user", &k), MP_OK);
    CHECK_EQ(k, MP_SPLIT_COLD_USER);
    CHECK_EQ(mp_split_kind_parse("random", &k), MP_EINVAL);
    CHECK(strcmp(mp_split_kind_name(MP_SPLIT_TEMPORAL), "temporal") == 0);
}
