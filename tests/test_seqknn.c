#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/model.h"
#include "test.h"

/* Hand-made sequences (one user each, in time order):
 *   u0, u1:      0 -> 1          (1 is bought after 0)
 *   u2, u3, u4:  2 -> 0          (2 is bought before 0: symmetric co-occurrence would prefer 2 for a 0-buyer)
 *   u5, u6:      3 -> 5
 *   u7, u8:      4 -> 6
 * Item 7 is in the catalog with no events. Counts with forward 1, backward 0.5, window 3:
 *   C(0->1) = 2, C(0->2) = 3 * 0.5 = 1.5; occurrences n0 = 5, n1 = 2, n2 = 3. */
static const char *const titles[] = {"Console", "Controller", "Old Game", "Racing Game", "Puzzle Game",
                                     "Racing Wheel", "Puzzle Book", "Headset"};

typedef struct sk_fx {
    mp_interaction ev[64];
    size_t n;
    mp_train_data d;
} sk_fx;

static void fx_add(sk_fx *f, uint32_t u, uint32_t i) {
    f->ev[f->n] = (mp_interaction){.user = u, .item = i, .ts = 1000 + (int64_t)f->n, .type = MP_EV_PURCHASE};
    f->n++;
}

static void fx_init(sk_fx *f) {
    memset(f, 0, sizeof *f);
    static const uint32_t seqs[9][2] = {{0, 1}, {0, 1}, {2, 0}, {2, 0}, {2, 0}, {3, 5}, {3, 5}, {4, 6}, {4, 6}};
    for (uint32_t u = 0; u < 9; u++) {
        fx_add(f, u, seqs[u][0]);
        fx_add(f, u, seqs[u][1]);
    }
    f->d = (mp_train_data){.n_users = 9, .n_items = 8, .events = f->ev, .n_events = f->n, .item_titles = titles,
                           .n_threads = 2};
}

static int fit_sk(mp_model **m, const mp_train_data *d, const char *params, mp_error *err) {
    int rc = mp_model_create(m, "seqknn", err);
    if (rc) return rc;
    if (params && (rc = mp_model_set_params(*m, params, err))) return rc;
    return mp_model_fit(*m, d, NULL, err);
}

static mp_user_ctx ctx_of(const mp_interaction *h, size_t n) {
    return (mp_user_ctx){.user = MP_NO_USER, .history = h, .n_history = n};
}

MP_TEST(seqknn_transitions_rank_the_next_item_first) {
    sk_fx f;
    fx_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(fit_sk(&m, &f.d, "window=3,forward=1,backward=0.5,decay=1,alpha=0.5,beta=0.5,shrink=1", &err), &err);
    uint32_t items[8];
    float sims[8];
    size_t n;
    CHECK_OK(mp_model_similar(m, 0, 8, items, sims, &n, &err), &err);
    CHECK_EQ(n, 2);
    CHECK_EQ(items[0], 1);
    CHECK_NEAR(sims[0], 2.0 / (sqrt(5.0) * sqrt(2.0) + 1.0), 1e-5);
    CHECK_EQ(items[1], 2);
    CHECK_NEAR(sims[1], 1.5 / (sqrt(5.0) * sqrt(3.0) + 1.0), 1e-5);

    /* a user who just bought the console gets the controller first, not the game bought before consoles */
    mp_interaction h[1] = {{.user = MP_NO_USER, .item = 0, .ts = 5000, .type = MP_EV_PURCHASE}};
    mp_user_ctx ctx = ctx_of(h, 1);
    uint32_t top[3];
    CHECK_OK(mp_model_recommend(m, &ctx, 3, NULL, 0, 1, NULL, top, NULL, &n, &err), &err);
    CHECK(n >= 2);
    CHECK_EQ(top[0], 1);
    CHECK_EQ(top[1], 2);
    char buf[256];
    CHECK_OK(mp_model_explain(m, &ctx, 1, buf, sizeof buf, &err), &err);
    CHECK_CONTAINS(buf, "bought after \xe2\x80\x98" "Console\xe2\x80\x99");

    /* a history that co-occurs with nothing falls back on popularity (item 0 occurs 5 times) */
    mp_interaction lone[1] = {{.user = MP_NO_USER, .item = 7, .ts = 5000, .type = MP_EV_PURCHASE}};
    mp_user_ctx lctx = ctx_of(lone, 1);
    float sp[8];
    CHECK_OK(mp_model_score_all(m, &lctx, sp, &err), &err);
    CHECK(sp[0] > sp[2] && sp[2] > sp[1] && sp[1] > 0); /* 5, 3, 2 occurrences */
    CHECK_NEAR(sp[0], 0.03, 1e-6);                      /* the default weight times n_0 / max n = 1 */
    mp_model_destroy(m);
    CHECK_OK(fit_sk(&m, &f.d, "popularity=0", &err), &err);
    float s0[8];
    CHECK_OK(mp_model_score_all(m, &lctx, s0, &err), &err);
    for (int i = 0; i < 8; i++) CHECK_EQ(s0[i], 0);
    mp_model_destroy(m);

    /* symmetric weights: the more frequent co-occurrence wins again (so direction is what made the difference) */
    CHECK_OK(fit_sk(&m, &f.d, "forward=1,backward=1,beta=0,alpha=0,shrink=0", &err), &err);
    CHECK_OK(mp_model_recommend(m, &ctx, 3, NULL, 0, 1, NULL, top, NULL, &n, &err), &err);
    CHECK_EQ(top[0], 2);
    mp_model_destroy(m);
}

MP_TEST(seqknn_recent_items_weigh_more) {
    sk_fx f;
    fx_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(fit_sk(&m, &f.d, "recency=1,popularity=0", &err), &err);
    mp_interaction h[2] = {{.user = MP_NO_USER, .item = 3, .ts = 5000, .type = MP_EV_PURCHASE},
                           {.user = MP_NO_USER, .item = 4, .ts = 5001, .type = MP_EV_PURCHASE}};
    mp_user_ctx ctx = ctx_of(h, 2);
    float s[8];
    CHECK_OK(mp_model_score_all(m, &ctx, s, &err), &err);
    CHECK(s[6] > s[5]); /* 4 is the latest: what follows 4 comes first */
    CHECK_NEAR(s[5], 0.5f * s[6], 1e-6);
    h[0].item = 4;
    h[1].item = 3;
    CHECK_OK(mp_model_score_all(m, &ctx, s, &err), &err);
    CHECK(s[5] > s[6]);
    mp_model_destroy(m);

    CHECK_OK(fit_sk(&m, &f.d, "recency=0", &err), &err);
    CHECK_OK(mp_model_score_all(m, &ctx, s, &err), &err);
    CHECK_NEAR(s[5], s[6], 1e-7);
    CHECK(s[5] > 0);
    mp_model_destroy(m);
}

MP_TEST(seqknn_window_and_distance_decay) {
    /* one sequence 0 1 2 3: with window 1 only neighbours count; with window 3 and decay 1, 0->3 counts 1/3 */
    mp_interaction ev[4];
    for (uint32_t i = 0; i < 4; i++)
        ev[i] = (mp_interaction){.user = 0, .item = i, .ts = 10 + i, .type = MP_EV_PURCHASE};
    mp_train_data d = {.n_users = 1, .n_items = 4, .events = ev, .n_events = 4, .n_threads = 1};
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    uint32_t items[4];
    float sims[4];
    size_t n;
    CHECK_OK(fit_sk(&m, &d, "window=1,alpha=0,beta=0,shrink=0,backward=0", &err), &err);
    CHECK_OK(mp_model_similar(m, 0, 4, items, sims, &n, &err), &err);
    CHECK_EQ(n, 1);
    CHECK_EQ(items[0], 1);
    mp_model_destroy(m);
    CHECK_OK(fit_sk(&m, &d, "window=3,decay=1,alpha=0,beta=0,shrink=0,backward=0", &err), &err);
    CHECK_OK(mp_model_similar(m, 0, 4, items, sims, &n, &err), &err);
    CHECK_EQ(n, 3);
    CHECK_EQ(items[2], 3);
    CHECK_NEAR(sims[2], 1.0 / 3.0, 1e-6);
    /* nothing follows the last item */
    CHECK_OK(mp_model_similar(m, 3, 4, items, sims, &n, &err), &err);
    CHECK_EQ(n, 0);
    mp_model_destroy(m);
}

MP_TEST(seqknn_save_load_round_trip) {
    sk_fx f;
    fx_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m, *l;
    CHECK_OK(fit_sk(&m, &f.d, "window=2,recency=3,beta=0.3", &err), &err);
    char path[512];
    snprintf(path, sizeof path, "%s/seqknn.mpm", mp_test_tmpdir(t));
    CHECK_OK(mp_model_save(m, path, &err), &err);
    CHECK_OK(mp_model_load(&l, path, &err), &err);
    CHECK(!strcmp(mp_model_ops_of(l)->name, "seqknn"));
    mp_interaction h[2] = {{.user = 0, .item = 2, .ts = 1, .type = MP_EV_PURCHASE},
                           {.user = 0, .item = 3, .ts = 2, .type = MP_EV_PURCHASE}};
    mp_user_ctx ctx = ctx_of(h, 2);
    float a[8], b[8];
    CHECK_OK(mp_model_score_all(m, &ctx, a, &err), &err);
    CHECK_OK(mp_model_score_all(l, &ctx, b, &err), &err);
    for (int i = 0; i < 8; i++) CHECK_NEAR(a[i], b[i], 0);
    char buf[256];
    CHECK_OK(mp_model_explain(l, &ctx, 5, buf, sizeof buf, &err), &err);
    CHECK_CONTAINS(buf, "Racing Game");
    /* the user tails survive too: an update on the loaded model counts against u0's last items */
    mp_interaction up = {.user = 0, .item = 7, .ts = 9000, .type = MP_EV_PURCHASE};
    CHECK_OK(mp_model_update(m, &up, 1, &err), &err);
    CHECK_OK(mp_model_update(l, &up, 1, &err), &err);
    CHECK_OK(mp_model_score_all(m, &ctx, a, &err), &err);
    CHECK_OK(mp_model_score_all(l, &ctx, b, &err), &err);
    for (int i = 0; i < 8; i++) CHECK_NEAR(a[i], b[i], 0);
    mp_model_destroy(m);
    mp_model_destroy(l);

    /* a truncated file is rejected, not misread */
    size_t len;
    unsigned char *img = mp_test_slurp(path, &len);
    CHECK(img != NULL);
    for (size_t cut = 8; cut < len; cut += len / 7 + 1) {
        mp_model *bad = NULL;
        CHECK(mp_model_load_mem(&bad, img, cut, "cut", &err) != MP_OK);
        CHECK(bad == NULL);
    }
    free(img);
}

MP_TEST(seqknn_update_learns_new_transitions_and_forget_undoes_them) {
    sk_fx f;
    fx_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(fit_sk(&m, &f.d, "window=3,recency=0", &err), &err);
    mp_interaction h[1] = {{.user = MP_NO_USER, .item = 0, .ts = 5000, .type = MP_EV_PURCHASE}};
    mp_user_ctx ctx = ctx_of(h, 1);
    float base[10], s[10];
    CHECK_OK(mp_model_score_all(m, &ctx, base, &err), &err);
    CHECK_EQ(base[7], 0);

    /* three new users buy the headset right after the console; one also buys a brand-new item 9 */
    mp_interaction up[7];
    size_t nu = 0;
    for (uint32_t u = 20; u < 23; u++) {
        up[nu++] = (mp_interaction){.user = u, .item = 0, .ts = 6000 + u, .type = MP_EV_PURCHASE};
        up[nu++] = (mp_interaction){.user = u, .item = 7, .ts = 6100 + u, .type = MP_EV_PURCHASE};
    }
    up[nu++] = (mp_interaction){.user = 22, .item = 9, .ts = 6200, .type = MP_EV_PURCHASE};
    CHECK_OK(mp_model_update(m, up, nu, &err), &err);
    CHECK_EQ(mp_model_n_items(m), 10);
    uint32_t top[2];
    size_t n;
    CHECK_OK(mp_model_recommend(m, &ctx, 2, NULL, 0, 1, NULL, top, NULL, &n, &err), &err);
    CHECK_EQ(n, 2);
    CHECK_EQ(top[0], 7);
    CHECK_OK(mp_model_score_all(m, &ctx, s, &err), &err);
    CHECK(s[9] > 0); /* the new item follows the console at distance 2 for user 22 */
    char buf[256];
    CHECK_OK(mp_model_explain(m, &ctx, 7, buf, sizeof buf, &err), &err);
    CHECK_CONTAINS(buf, "Console");

    /* forgetting the three users restores the fitted scores */
    for (uint32_t u = 20; u < 23; u++) {
        mp_interaction mine[3];
        size_t k = 0;
        for (size_t e = 0; e < nu; e++)
            if (up[e].user == u) mine[k++] = up[e];
        CHECK_OK(mp_model_forget_user(m, u, mine, k, &err), &err);
    }
    CHECK_OK(mp_model_score_all(m, &ctx, s, &err), &err);
    for (int i = 0; i < 8; i++) CHECK_NEAR(s[i], base[i], 1e-6);
    CHECK_NEAR(s[7], 0, 1e-7);
    CHECK_NEAR(s[9], 0, 1e-7);

    /* bad input */
    mp_interaction bad = {.user = MP_NO_USER, .item = 1, .type = MP_EV_PURCHASE};
    CHECK(mp_model_update(m, &bad, 1, &err) == MP_EINVAL);
    CHECK(mp_model_set_param(m, "window", "0", &err) == MP_EINVAL);
    CHECK(mp_model_set_param(m, "nope", "1", &err) == MP_EINVAL);
    mp_model_destroy(m);
}

/* recency=auto (the default) reads the data: users with fewer than 30 items on average (sessions) weigh their
 * history by recency 2, users with long histories (ratings) weigh it equally (recency 0); the scores match the
 * explicit settings exactly. */
MP_TEST(seqknn_recency_auto_follows_history_length) {
    enum { NU = 40, NI = 60 };
    static mp_interaction ev[NU * NI];
    for (int longer = 0; longer < 2; longer++) {
        const uint32_t per_user = longer ? 40 : 6;
        size_t n = 0;
        for (uint32_t u = 0; u < NU; u++)
            for (uint32_t j = 0; j < per_user; j++)
                ev[n++] = (mp_interaction){.user = u, .item = (u * 7 + j * 3) % NI, .ts = 1000 + (int64_t)j,
                                           .type = MP_EV_PURCHASE};
        mp_train_data d = {.n_users = NU, .n_items = NI, .events = ev, .n_events = n, .n_threads = 1};
        CHECK_NEAR(mp_train_data_items_per_user(&d), per_user, 1e-9);
        mp_error err;
        mp_error_clear(&err);
        mp_model *a = NULL, *b = NULL;
        CHECK_OK(fit_sk(&a, &d, NULL, &err), &err);
        CHECK_OK(fit_sk(&b, &d, longer ? "recency=0" : "recency=2", &err), &err);
        mp_user_ctx ctx = ctx_of(ev, 5);
        float sa[NI], sb[NI];
        CHECK_OK(mp_model_score_all(a, &ctx, sa, &err), &err);
        CHECK_OK(mp_model_score_all(b, &ctx, sb, &err), &err);
        for (uint32_t i = 0; i < NI; i++) CHECK_MSG(sa[i] == sb[i], "item %u: auto %g, explicit %g", i, sa[i], sb[i]);
        mp_model_destroy(a);
        mp_model_destroy(b);
    }
}
