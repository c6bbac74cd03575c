#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/model.h"
#include "test.h"

/* Tiny shop, binary user x item matrix:
 *   u0: 0 1      item vectors over users: i0 = {u0 u1 u3}, i1 = {u0 u1 u2}, i2 = {u1 u2}, i3 = {u3}
 *   u1: 0 1 2    dots: (0,1) = 2, (0,2) = 1, (0,3) = 1, (1,2) = 2, (1,3) = (2,3) = 0
 *   u2: 1 2
 *   u3: 0 3 */
static const char *const titles[] = {"Red Lipstick", "Mascara", "Eyeliner", "Phone"};

typedef struct knn_fx {
    mp_interaction ev[64];
    size_t n;
    mp_train_data d;
} knn_fx;

static void fx_add(knn_fx *f, uint32_t u, uint32_t i, int type) {
    f->ev[f->n] = (mp_interaction){.user = u, .item = i, .ts = 1000 + (int64_t)f->n, .type = (uint8_t)type};
    f->n++;
}

static void fx_init(knn_fx *f) {
    memset(f, 0, sizeof *f);
    fx_add(f, 0, 0, MP_EV_VIEW);
    fx_add(f, 0, 1, MP_EV_VIEW);
    fx_add(f, 1, 0, MP_EV_VIEW);
    fx_add(f, 1, 1, MP_EV_PURCHASE);
    fx_add(f, 1, 2, MP_EV_VIEW);
    fx_add(f, 2, 1, MP_EV_CART);
    fx_add(f, 2, 2, MP_EV_VIEW);
    fx_add(f, 3, 0, MP_EV_VIEW);
    fx_add(f, 3, 3, MP_EV_VIEW);
    f->d = (mp_train_data){.n_users = 4, .n_items = 4, .events = f->ev, .n_events = f->n, .item_titles = titles,
                           .n_threads = 2};
}

static int fit_knn(mp_model **m, const mp_train_data *d, const char *params, mp_error *err) {
    int rc = mp_model_create(m, "itemknn", err);
    if (rc) return rc;
    if (params && (rc = mp_model_set_params(*m, params, err))) return rc;
    return mp_model_fit(*m, d, NULL, err);
}

MP_TEST(itemknn_cosine_with_shrinkage_by_hand) {
    knn_fx f;
    fx_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(fit_knn(&m, &f.d, "shrink=1", &err), &err);
    uint32_t items[8];
    float sims[8];
    size_t n;
    CHECK_OK(mp_model_similar(m, 0, 8, items, sims, &n, &err), &err);
    CHECK_EQ(n, 3);
    CHECK_EQ(items[0], 1);
    CHECK_NEAR(sims[0], 2.0 / (3.0 + 1.0), 1e-6);
    CHECK_EQ(items[1], 3);
    CHECK_NEAR(sims[1], 1.0 / (sqrt(3.0) * 1.0 + 1.0), 1e-6);
    CHECK_EQ(items[2], 2);
    CHECK_NEAR(sims[2], 1.0 / (sqrt(3.0) * sqrt(2.0) + 1.0), 1e-6);
    /* item 3 co-occurs with item 0 only */
    CHECK_OK(mp_model_similar(m, 3, 8, items, sims, &n, &err), &err);
    CHECK_EQ(n, 1);
    CHECK_EQ(items[0], 0);
    mp_model_destroy(m);

    /* no shrinkage: plain cosine */
    CHECK_OK(fit_knn(&m, &f.d, "shrink=0", &err), &err);
    CHECK_OK(mp_model_similar(m, 1, 8, items, sims, &n, &err), &err);
    CHECK_EQ(n, 2);
    CHECK_EQ(items[0], 2);
    CHECK_NEAR(sims[0], 2.0 / sqrt(6.0), 1e-6);
    CHECK_NEAR(sims[1], 2.0 / 3.0, 1e-6);
    mp_model_destroy(m);
}

MP_TEST(itemknn_asymmetric_and_tfidf_by_hand) {
    knn_fx f;
    fx_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    /* alpha = 1: sim(i -> j) = dot / (|i|^2 + shrink): a conditional probability for binary data */
    CHECK_OK(fit_knn(&m, &f.d, "shrink=1,alpha=1", &err), &err);
    uint32_t items[8];
    float sims[8];
    size_t n;
    CHECK_OK(mp_model_similar(m, 2, 8, items, sims, &n, &err), &err);
    CHECK_EQ(items[0], 1);
    CHECK_NEAR(sims[0], 2.0 / (2.0 + 1.0), 1e-6);
    mp_model_destroy(m);

    /* tfidf: w_ui = sqrt(x) * log(1 + n_items / |items of u|); users 0, 2, 3 have 2 items, user 1 has 3 */
    CHECK_OK(fit_knn(&m, &f.d, "shrink=1,weighting=tfidf", &err), &err);
    double a = log(1.0 + 4.0 / 2.0), b = log(1.0 + 4.0 / 3.0);
    double dot01 = a * a + b * b, sq0 = 2 * a * a + b * b, sq1 = 2 * a * a + b * b;
    CHECK_OK(mp_model_similar(m, 0, 8, items, sims, &n, &err), &err);
    CHECK_EQ(items[0], 1);
    CHECK_NEAR(sims[0], dot01 / (sqrt(sq0) * sqrt(sq1) + 1.0), 1e-5);
    mp_model_destroy(m);

    /* bm25 runs and keeps the same strongest neighbour */
    CHECK_OK(fit_knn(&m, &f.d, "weighting=bm25", &err), &err);
    CHECK_OK(mp_model_similar(m, 0, 8, items, sims, &n, &err), &err);
    CHECK_EQ(items[0], 1);
    CHECK(sims[0] > 0);
    mp_model_destroy(m);
}

MP_TEST(itemknn_top_n_truncation) {
    knn_fx f;
    fx_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(fit_knn(&m, &f.d, "shrink=1,k=1", &err), &err);
    uint32_t items[8];
    float sims[8];
    size_t n;
    for (uint32_t i = 0; i < 4; i++) {
        CHECK_OK(mp_model_similar(m, i, 8, items, sims, &n, &err), &err);
        CHECK_EQ(n, 1);
    }
    CHECK_OK(mp_model_similar(m, 2, 8, items, sims, &n, &err), &err);
    CHECK_EQ(items[0], 1); /* 2/(sqrt 6 + 1) beats 1/(sqrt 6 + 1) for item 0 */
    /* scoring only sees kept neighbours: history {0} reaches item 1 only */
    mp_interaction h[1] = {{.user = MP_NO_USER, .item = 0, .ts = 5, .type = MP_EV_VIEW}};
    mp_user_ctx ctx = {.user = MP_NO_USER, .history = h, .n_history = 1};
    float s[4];
    CHECK_OK(mp_model_score_all(m, &ctx, s, &err), &err);
    CHECK_NEAR(s[1], 0.5, 1e-6);
    CHECK_EQ(s[2], 0);
    CHECK_EQ(s[3], 0);
    mp_model_destroy(m);
}

MP_TEST(itemknn_scores_and_explains_from_history) {
    knn_fx f;
    fx_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(fit_knn(&m, &f.d, "shrink=1", &err), &err);
    /* an anonymous session: viewed item 0, then bought item 2 */
    mp_interaction h[2] = {{.user = MP_NO_USER, .item = 0, .ts = 5, .type = MP_EV_VIEW},
                           {.user = MP_NO_USER, .item = 2, .ts = 6, .type = MP_EV_PURCHASE}};
    mp_user_ctx ctx = {.user = MP_NO_USER, .history = h, .n_history = 1};
    float s[4];
    CHECK_OK(mp_model_score_all(m, &ctx, s, &err), &err);
    double s02 = 1.0 / (sqrt(6.0) + 1.0), s01 = 0.5, s12 = 2.0 / (sqrt(6.0) + 1.0), s03 = 1.0 / (sqrt(3.0) + 1.0);
    CHECK_NEAR(s[1], s01, 1e-6);
    CHECK_NEAR(s[3], s03, 1e-6);
    char buf[256];
    CHECK_OK(mp_model_explain(m, &ctx, 1, buf, sizeof buf, &err), &err);
    CHECK(strcmp(buf, "because you viewed \xE2\x80\x98Red Lipstick\xE2\x80\x99") == 0);
    /* the purchase arrives: scores react at once, no refit, no update needed */
    ctx.n_history = 2;
    CHECK_OK(mp_model_score_all(m, &ctx, s, &err), &err);
    CHECK_NEAR(s[1], s01 + s12, 1e-6);
    CHECK_NEAR(s[0], s02, 1e-6);
    CHECK_OK(mp_model_explain(m, &ctx, 1, buf, sizeof buf, &err), &err);
    CHECK(strcmp(buf, "because you bought \xE2\x80\x98" "Eyeliner\xE2\x80\x99") == 0);
    CHECK_OK(mp_model_explain(m, &ctx, 3, buf, sizeof buf, &err), &err);
    CHECK(strcmp(buf, "because you viewed \xE2\x80\x98Red Lipstick\xE2\x80\x99") == 0);
    uint32_t top[4];
    size_t n;
    CHECK_OK(mp_model_recommend(m, &ctx, 4, NULL, 0, 1, NULL, top, NULL, &n, &err), &err);
    CHECK_EQ(n, 2);
    CHECK_EQ(top[0], 1);
    CHECK_EQ(top[1], 3);
    CHECK_OK(mp_model_update(m, h, 2, &err), &err);
    /* weighted input: the purchase (weight 8) outweighs the view (weight 1) */
    mp_model_destroy(m);
    CHECK_OK(fit_knn(&m, &f.d, "shrink=1,input=weighted", &err), &err);
    CHECK_OK(mp_model_score_all(m, &ctx, s, &err), &err);
    CHECK(s[1] > 0);
    mp_model_destroy(m);
}

MP_TEST(itemknn_bad_params) {
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(mp_model_create(&m, "itemknn", &err), &err);
    CHECK_EQ(mp_model_set_param(m, "k", "0", &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "k");
    CHECK_EQ(mp_model_set_param(m, "k", "ten", &err), MP_EINVAL);
    CHECK_EQ(mp_model_set_param(m, "shrink", "-1", &err), MP_EINVAL);
    CHECK_EQ(mp_model_set_param(m, "shrink", "nan", &err), MP_EINVAL);
    CHECK_EQ(mp_model_set_param(m, "alpha", "1.5", &err), MP_EINVAL);
    CHECK_EQ(mp_model_set_param(m, "weighting", "idf", &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "none, tfidf or bm25");
    CHECK_EQ(mp_model_set_param(m, "input", "stars", &err), MP_EINVAL);
    CHECK_OK(mp_model_set_params(m, "k=20,shrink=5,weighting=bm25,recency=2", &err), &err);
    mp_model_destroy(m);
}

/* A random user x item set with a few popular items. */
static size_t random_events(mp_interaction *ev, size_t cap, uint32_t n_users, uint32_t n_items, uint64_t seed) {
    size_t n = 0;
    uint64_t s = seed;
    for (uint32_t u = 0; u < n_users; u++)
        for (uint32_t i = 0; i < n_items && n < cap; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            double r = (double)(s >> 11) / 9007199254740992.0;
            double p = 0.05 + 0.4 / (1.0 + i);
            if (r < p) ev[n++] = (mp_interaction){.user = u, .item = i, .ts = (int64_t)n, .type = MP_EV_VIEW};
        }
    return n;
}

MP_TEST(itemknn_thread_count_independent_and_save_load) {
    enum { NU = 150, NI = 60 };
    static mp_interaction ev[NU * NI];
    size_t n = random_events(ev, NU * NI, NU, NI, 7);
    mp_train_data d = {.n_users = NU, .n_items = NI, .events = ev, .n_events = n, .n_threads = 1};
    mp_error err;
    mp_error_clear(&err);
    mp_model *m1, *m3;
    CHECK_OK(fit_knn(&m1, &d, "k=10,shrink=2,weighting=bm25", &err), &err);
    d.n_threads = 3;
    CHECK_OK(fit_knn(&m3, &d, "k=10,shrink=2,weighting=bm25", &err), &err);
    uint32_t a[NI], b[NI];
    float sa[NI], sb[NI];
    size_t na, nb;
    for (uint32_t i = 0; i < NI; i++) {
        CHECK_OK(mp_model_similar(m1, i, NI, a, sa, &na, &err), &err);
        CHECK_OK(mp_model_similar(m3, i, NI, b, sb, &nb, &err), &err);
        CHECK_EQ(na, nb);
        CHECK(na <= 10);
        CHECK(memcmp(a, b, na * sizeof *a) == 0 && memcmp(sa, sb, na * sizeof *sa) == 0);
    }
    const char *dir = mp_test_tmpdir(t);
    char path[512];
    snprintf(path, sizeof path, "%s/knn.mpm", dir);
    CHECK_OK(mp_model_save(m1, path, &err), &err);
    mp_model *l;
    CHECK_OK(mp_model_load(&l, path, &err), &err);
    CHECK_EQ(mp_model_n_items(l), NI);
    mp_user_ctx ctx = {.user = 0, .history = ev, .n_history = 12};
    float s1[NI], s2[NI];
    CHECK_OK(mp_model_score_all(m1, &ctx, s1, &err), &err);
    CHECK_OK(mp_model_score_all(l, &ctx, s2, &err), &err);
    CHECK(memcmp(s1, s2, sizeof s1) == 0);
    mp_model_destroy(l);
    /* a corrupted file is refused */
    FILE *fp = fopen(path, "r+b");
    CHECK(fp != NULL);
    fseek(fp, 100, SEEK_SET);
    fputc(0x5A, fp);
    fclose(fp);
    CHECK(mp_model_load(&l, path, &err) != MP_OK);
    CHECK(l == NULL);
    mp_model_destroy(m1);
    mp_model_destroy(m3);
}
