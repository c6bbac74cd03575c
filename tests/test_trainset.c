/* Training input: validation NDCG for early stopping (mp_train_data_valid_ndcg) against hand-computed values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/trainset.h"
#include "test.h"

static mp_interaction tev(uint32_t u, uint32_t i, int64_t ts) {
    mp_interaction e;
    memset(&e, 0, sizeof e);
    e.user = u;
    e.item = i;
    e.ts = ts;
    e.type = MP_EV_VIEW;
    return e;
}

/* A fake model: the same fixed score per item for every user; fails for user `fail_user` when set. */
typedef struct fake_scorer {
    const float *item_scores;
    uint32_t n_items;
    uint32_t fail_user; /* UINT32_MAX: never */
} fake_scorer;

static int fake_score(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err) {
    const fake_scorer *f = impl;
    if (ctx->user == f->fail_user) return mp_error_set(err, MP_EINVAL, "fake scorer refuses user %u", ctx->user);
    memcpy(scores, f->item_scores, f->n_items * sizeof *scores);
    return MP_OK;
}

/* 5 items scored 5,4,3,2,1 (item 0 best).
 *   u0: trains on 0, validates on 2:        ranking without 0 = [1 2 ...]; k=2 hit at rank 2 -> 1/log2(3)
 *   u1: trains on 1, validates on 0, 4, 4:  ranking without 1 = [0 2 ...]; one hit at rank 1 of two targets
 *                                           -> 1 / (1 + 1/log2(3))
 *   u2: trains on 0..3, validates on 0:     the target is history: skipped
 *   u3: trains only. */
static void fixture(mp_interaction *train, size_t *n_train, mp_interaction *valid, size_t *n_valid) {
    size_t n = 0;
    train[n++] = tev(0, 0, 1);
    train[n++] = tev(1, 1, 1);
    for (uint32_t i = 0; i < 4; i++) train[n++] = tev(2, i, 1 + i);
    train[n++] = tev(3, 4, 1);
    *n_train = n;
    n = 0;
    valid[n++] = tev(0, 2, 10);
    valid[n++] = tev(1, 0, 10);
    valid[n++] = tev(1, 4, 11);
    valid[n++] = tev(1, 4, 12); /* a repeated target counts once */
    valid[n++] = tev(2, 0, 10);
    *n_valid = n;
}

MP_TEST(trainset_valid_ndcg_hand_computed) {
    static const float item_scores[5] = {5, 4, 3, 2, 1};
    fake_scorer f = {item_scores, 5, UINT32_MAX};
    mp_interaction train[16], valid[16];
    size_t n_train, n_valid;
    fixture(train, &n_train, valid, &n_valid);
    mp_train_data d;
    memset(&d, 0, sizeof d);
    d.n_users = 4;
    d.n_items = 5;
    d.events = train;
    d.n_events = n_train;
    d.valid = valid;
    d.n_valid = n_valid;
    mp_error err;
    mp_error_clear(&err);
    double want = (1.0 / log2(3.0) + 1.0 / (1.0 + 1.0 / log2(3.0))) / 2.0;
    for (int threads = 1; threads <= 3; threads++) { /* the thread count never changes the result */
        d.n_threads = threads;
        double got = -1;
        CHECK_OK(mp_train_data_valid_ndcg(&d, fake_score, &f, 2, &got, &err), &err);
        CHECK_NEAR(got, want, 1e-12);
    }
    /* k = 1: u0 misses (rank 2), u1 hits at rank 1 with ideal 1 -> (0 + 1) / 2 */
    double got = -1;
    CHECK_OK(mp_train_data_valid_ndcg(&d, fake_score, &f, 1, &got, &err), &err);
    CHECK_NEAR(got, 0.5, 1e-12);
    /* k larger than the catalog: u0's target at rank 2 of 4, u1's targets at ranks 1 and 4 of 4 */
    CHECK_OK(mp_train_data_valid_ndcg(&d, fake_score, &f, 50, &got, &err), &err);
    double u1 = (1.0 + 1.0 / log2(5.0)) / (1.0 + 1.0 / log2(3.0));
    CHECK_NEAR(got, (1.0 / log2(3.0) + u1) / 2.0, 1e-12);
}

MP_TEST(trainset_valid_ndcg_errors) {
    static const float item_scores[5] = {5, 4, 3, 2, 1};
    fake_scorer f = {item_scores, 5, 1};
    mp_interaction train[16], valid[16];
    size_t n_train, n_valid;
    fixture(train, &n_train, valid, &n_valid);
    mp_train_data d;
    memset(&d, 0, sizeof d);
    d.n_users = 4;
    d.n_items = 5;
    d.events = train;
    d.n_events = n_train;
    d.valid = valid;
    d.n_valid = n_valid;
    d.n_threads = 2;
    mp_error err;
    mp_error_clear(&err);
    double got = -1;
    /* the scorer's error comes back with its message */
    CHECK_EQ(mp_train_data_valid_ndcg(&d, fake_score, &f, 2, &got, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "fake scorer refuses user 1");
    CHECK_CONTAINS(err.msg, "validation NDCG");
    /* no validation events */
    f.fail_user = UINT32_MAX;
    d.n_valid = 0;
    CHECK_EQ(mp_train_data_valid_ndcg(&d, fake_score, &f, 2, &got, &err), MP_EEMPTY);
    CHECK_CONTAINS(err.msg, "no validation events");
    /* only u2, whose target is already history */
    d.valid = valid + 4;
    d.n_valid = 1;
    CHECK_EQ(mp_train_data_valid_ndcg(&d, fake_score, &f, 2, &got, &err), MP_EEMPTY);
    CHECK_CONTAINS(err.msg, "already in its user's training history");
    d.valid = valid;
    d.n_valid = n_valid;
    CHECK_EQ(mp_train_data_valid_ndcg(&d, fake_score, &f, 0, &got, &err), MP_EINVAL);
}

/* Many users, two threads vs one: identical to the last bit, and equal to a plain per-user reference. */
MP_TEST(trainset_valid_ndcg_threads_match_reference) {
    enum { NU = 300, NI = 64 };
    float item_scores[NI];
    for (int i = 0; i < NI; i++) item_scores[i] = (float)((i * 37) % NI);
    fake_scorer f = {item_scores, NI, UINT32_MAX};
    mp_interaction *train = malloc(NU * 6 * sizeof *train), *valid = malloc(NU * 2 * sizeof *valid);
    CHECK(train && valid);
    size_t nt = 0, nv = 0;
    for (uint32_t u = 0; u < NU; u++) {
        for (uint32_t j = 0; j < 6; j++) train[nt++] = tev(u, (u * 7 + j * 11) % NI, j);
        for (uint32_t j = 0; j < 2; j++) valid[nv++] = tev(u, (u * 13 + j * 5 + 3) % NI, 10 + j);
    }
    mp_train_data d;
    memset(&d, 0, sizeof d);
    d.n_users = NU;
    d.n_items = NI;
    d.events = train;
    d.n_events = nt;
    d.valid = valid;
    d.n_valid = nv;
    mp_error err;
    mp_error_clear(&err);
    double one = 0, two = 0;
    d.n_threads = 1;
    int rc = mp_train_data_valid_ndcg(&d, fake_score, &f, 10, &one, &err);
    d.n_threads = 2;
    if (rc == MP_OK) rc = mp_train_data_valid_ndcg(&d, fake_score, &f, 10, &two, &err);
    /* reference: rank by score descending, ties by id, skipping the user's training items */
    double sum = 0;
    size_t counted = 0;
    for (uint32_t u = 0; u < NU && rc == MP_OK; u++) {
        uint8_t hist[NI] = {0}, target[NI] = {0};
        for (uint32_t j = 0; j < 6; j++) hist[train[u * 6 + j].item] = 1;
        size_t n_rel = 0;
        for (uint32_t j = 0; j < 2; j++) {
            uint32_t it = valid[u * 2 + j].item;
            if (!hist[it] && !target[it]) {
                target[it] = 1;
                n_rel++;
            }
        }
        if (!n_rel) continue;
        double dcg = 0, ideal = 0;
        size_t r = 0;
        for (int s = NI - 1; s >= 0 && r < 10; s--) /* scores are a permutation of 0..NI-1 */
            for (int i = 0; i < NI; i++)
                if (item_scores[i] == (float)s && !hist[i]) {
                    if (target[i]) dcg += 1.0 / log2((double)r + 2.0);
                    r++;
                }
        for (size_t j = 0; j < n_rel && j < 10; j++) ideal += 1.0 / log2((double)j + 2.0);
        sum += dcg / ideal;
        counted++;
    }
    free(train);
    free(valid);
    CHECK_OK(rc, &err);
    CHECK(one == two);
    CHECK(counted > 0);
    CHECK_NEAR(one, sum / (double)counted, 1e-12);
    CHECK(one > 0 && one < 1);
}

/* Block scoring: the fake model writes row j for ctxs[j].user; scores depend on the user. */
typedef struct perm_scorer {
    uint32_t n_items;
    size_t calls; /* block calls made */
} perm_scorer;

static float perm_score(uint32_t user, uint32_t item, uint32_t n_items) {
    return (float)(((uint64_t)item * 37 + (uint64_t)user * 11) % n_items);
}

static int perm_score_one(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err) {
    const perm_scorer *p = impl;
    (void)err;
    for (uint32_t i = 0; i < p->n_items; i++) scores[i] = perm_score(ctx->user, i, p->n_items);
    return MP_OK;
}

static int perm_score_block(const void *impl, const mp_user_ctx *ctxs, size_t n, float *scores, mp_error *err) {
    perm_scorer *p = (perm_scorer *)impl;
    p->calls++;
    for (size_t j = 0; j < n; j++) perm_score_one(impl, &ctxs[j], scores + j * p->n_items, err);
    return MP_OK;
}

static int failing_block(const void *impl, const mp_user_ctx *ctxs, size_t n, float *scores, mp_error *err) {
    (void)impl, (void)ctxs, (void)n, (void)scores;
    return mp_error_set(err, MP_EIO, "block scorer broke");
}

MP_TEST(trainset_valid_ndcg_block_matches_single) {
    /* 600k items make blocks of 8 users (16 MiB of scores), so 30 users take 4 blocks */
    enum { NU = 30, NI = 600000 };
    mp_interaction train[NU * 3], valid[NU * 2];
    size_t nt = 0, nv = 0;
    for (uint32_t u = 0; u < NU; u++) {
        for (uint32_t j = 0; j < 3; j++) train[nt++] = tev(u, (u * 7919 + j * 104729) % NI, j);
        /* targets near the top of the user's ranking so some hits happen: items whose score is NI-1-t */
        for (uint32_t j = 0; j < 2; j++) {
            uint32_t want = NI - 1 - (u % 5) - 3 * j, item = 0;
            for (uint32_t i = 0; i < NI; i++)
                if (perm_score(u, i, NI) == (float)want) {
                    item = i;
                    break;
                }
            valid[nv++] = tev(u, item, 10 + j);
        }
    }
    mp_train_data d;
    memset(&d, 0, sizeof d);
    d.n_users = NU;
    d.n_items = NI;
    d.events = train;
    d.n_events = nt;
    d.valid = valid;
    d.n_valid = nv;
    d.n_threads = 2;
    perm_scorer p = {NI, 0};
    mp_error err;
    mp_error_clear(&err);
    double single = -1, block = -2;
    CHECK_OK(mp_train_data_valid_ndcg(&d, perm_score_one, &p, 10, &single, &err), &err);
    CHECK_OK(mp_train_data_valid_ndcg_block(&d, perm_score_block, &p, 10, &block, &err), &err);
    CHECK(single == block);
    CHECK(single > 0.3 && single < 1);
    CHECK_EQ(p.calls, 4);
    CHECK_EQ(mp_train_data_valid_ndcg_block(&d, failing_block, &p, 10, &block, &err), MP_EIO);
    CHECK_CONTAINS(err.msg, "block scorer broke");
    d.n_valid = 0;
    CHECK_EQ(mp_train_data_valid_ndcg_block(&d, perm_score_block, &p, 10, &block, &err), MP_EEMPTY);
}
