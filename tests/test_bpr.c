#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/dataset.h"
#include "magpie/model.h"
#include "magpie/rng.h"
#include "magpie/trainset.h"
#include "models/bpr_internal.h"
#include "test.h"

/* Planted structure: users of group g = u % 2 only touch items of group g (items [g * GI, (g + 1) * GI)); each user
 * has SEEN random items of their group in training. */
#define NU 100
#define GI 20
#define NI (2 * GI)
#define SEEN 8

typedef struct planted {
    mp_dataset *ds;
    mp_train_set ts;
    uint8_t seen[NU][NI];
} planted;

static int planted_build(planted *pl, mp_error *err) {
    memset(pl, 0, sizeof *pl);
    mp_interaction ev[NU * SEEN];
    size_t n = 0;
    mp_rng rng;
    mp_rng_seed(&rng, 42);
    for (uint32_t u = 0; u < NU; u++) {
        uint32_t items[GI];
        for (uint32_t i = 0; i < GI; i++) items[i] = (u % 2) * GI + i;
        mp_rng_shuffle_u32(&rng, items, GI);
        for (int s = 0; s < SEEN; s++) {
            ev[n++] = (mp_interaction){.user = u, .item = items[s], .ts = 1000 + s, .type = MP_EV_PURCHASE};
            pl->seen[u][items[s]] = 1;
        }
    }
    int rc = mp_dataset_from_interactions(&pl->ds, NU, NI, ev, n, err);
    if (rc) return rc;
    return mp_train_set_build(&pl->ts, pl->ds, pl->ds->events, pl->ds->n_events, NULL, err);
}

static void planted_free(planted *pl) {
    mp_train_set_free(&pl->ts);
    mp_dataset_destroy(pl->ds);
}

static int fit(mp_model **m, const mp_train_data *d, const char *params, mp_error *err) {
    int rc = mp_model_create(m, "bpr", err);
    if (rc) return rc;
    if ((rc = mp_model_set_params(*m, params, err)) || (rc = mp_model_fit(*m, d, NULL, err))) {
        mp_model_destroy(*m);
        *m = NULL;
    }
    return rc;
}

/* Mean over users of P(unseen own-group item outscores other-group item). */
static double planted_auc(const mp_model *m, const planted *pl) {
    double total = 0;
    float s[NI];
    for (uint32_t u = 0; u < NU; u++) {
        mp_user_ctx ctx = {.user = u, .history = NULL, .n_history = 0};
        mp_error err;
        if (mp_model_score_all(m, &ctx, s, &err)) return -1;
        uint32_t g = u % 2;
        double good = 0, pairs = 0;
        for (uint32_t i = g * GI; i < (g + 1) * GI; i++) {
            if (pl->seen[u][i]) continue;
            for (uint32_t j = (1 - g) * GI; j < (2 - g) * GI; j++) {
                good += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
                pairs++;
            }
        }
        total += good / pairs;
    }
    return total / NU;
}

MP_TEST(bpr_gradient_matches_finite_differences) {
    enum { K = 6 };
    mp_rng rng;
    mp_rng_seed(&rng, 7);
    float pu[K], qi[K], qj[K], b[2];
    for (int f = 0; f < K; f++) {
        pu[f] = (float)mp_rng_normal(&rng);
        qi[f] = (float)mp_rng_normal(&rng);
        qj[f] = (float)mp_rng_normal(&rng);
    }
    b[0] = 0.3f;
    b[1] = -0.2f;
    const double reg = 0.05, reg_b = 0.02;
    float g_pu[K], g_qi[K], g_qj[K], g_b[2];
    mp_bprmf_triple_grad(pu, qi, qj, &b[0], &b[1], K, reg, reg_b, g_pu, g_qi, g_qj, &g_b[0], &g_b[1]);
    /* Central differences on every parameter (the loss is evaluated in double precision). */
    float *params[] = {pu, qi, qj, b};
    float *grads[] = {g_pu, g_qi, g_qj, g_b};
    int sizes[] = {K, K, K, 2};
    const float h = 1e-2f;
    for (int a = 0; a < 4; a++)
        for (int f = 0; f < sizes[a]; f++) {
            float keep = params[a][f];
            params[a][f] = keep + h;
            double lp = mp_bprmf_triple_loss(pu, qi, qj, &b[0], &b[1], K, reg, reg_b);
            params[a][f] = keep - h;
            double lm = mp_bprmf_triple_loss(pu, qi, qj, &b[0], &b[1], K, reg, reg_b);
            params[a][f] = keep;
            double num = (lp - lm) / (2.0 * h);
            CHECK_MSG(fabs(num - grads[a][f]) <= 1e-3 * (1 + fabs(num)), "param %d[%d]: analytic %g, numeric %g", a, f,
                      grads[a][f], num);
        }
    /* Without biases the bias terms vanish. */
    double with = mp_bprmf_triple_loss(pu, qi, qj, NULL, NULL, K, 0, 0);
    double x = 0;
    for (int f = 0; f < K; f++) x += (double)pu[f] * (qi[f] - qj[f]);
    CHECK_NEAR(with, log1p(exp(-x)), 1e-6);
    /* The in-place step training takes equals params - lr * gradient. */
    const float lr = 0.1f;
    float pu2[K], qi2[K], qj2[K], b2[2] = {b[0], b[1]};
    memcpy(pu2, pu, sizeof pu);
    memcpy(qi2, qi, sizeof qi);
    memcpy(qj2, qj, sizeof qj);
    mp_bprmf_triple_step(pu2, qi2, qj2, &b2[0], &b2[1], K, lr, (float)reg, (float)reg_b);
    for (int f = 0; f < K; f++) {
        CHECK_NEAR(pu2[f], pu[f] - lr * g_pu[f], 1e-5);
        CHECK_NEAR(qi2[f], qi[f] - lr * g_qi[f], 1e-5);
        CHECK_NEAR(qj2[f], qj[f] - lr * g_qj[f], 1e-5);
    }
    CHECK_NEAR(b2[0], b[0] - lr * g_b[0], 1e-5);
    CHECK_NEAR(b2[1], b[1] - lr * g_b[1], 1e-5);
    /* The step lowers the loss. */
    CHECK(mp_bprmf_triple_loss(pu2, qi2, qj2, &b2[0], &b2[1], K, reg, reg_b) <
          mp_bprmf_triple_loss(pu, qi, qj, &b[0], &b[1], K, reg, reg_b));
}

MP_TEST(bpr_learns_planted_groups) {
    planted pl;
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(planted_build(&pl, &err), &err);
    static const char *const variants[] = {
        "factors=8,epochs=60,threads=1",
        "factors=8,epochs=60,threads=1,sampling=adaptive,candidates=4",
        "factors=8,epochs=60,threads=1,loss=warp,learning_rate=0.05",
        "factors=8,epochs=60,threads=2,sampling=pop",
    };
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
        mp_model *m;
        CHECK_OK(fit(&m, &pl.ts.data, variants[v], &err), &err);
        double auc = planted_auc(m, &pl);
        mp_model_destroy(m);
        CHECK_MSG(auc > 0.9, "%s: planted AUC %.3f, want > 0.9", variants[v], auc);
    }
    planted_free(&pl);
}

MP_TEST(bpr_same_seed_one_thread_is_identical) {
    planted pl;
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(planted_build(&pl, &err), &err);
    mp_model *a, *b, *c;
    CHECK_OK(fit(&a, &pl.ts.data, "factors=8,epochs=5,threads=1,seed=9", &err), &err);
    CHECK_OK(fit(&b, &pl.ts.data, "factors=8,epochs=5,threads=1,seed=9", &err), &err);
    CHECK_OK(fit(&c, &pl.ts.data, "factors=8,epochs=5,threads=1,seed=10", &err), &err);
    int same_ab = 1, same_ac = 1;
    for (uint32_t u = 0; u < NU; u++) {
        float sa[NI], sb[NI], sc[NI];
        mp_user_ctx ctx = {.user = u, .history = NULL, .n_history = 0};
        CHECK_OK(mp_model_score_all(a, &ctx, sa, &err), &err);
        CHECK_OK(mp_model_score_all(b, &ctx, sb, &err), &err);
        CHECK_OK(mp_model_score_all(c, &ctx, sc, &err), &err);
        if (memcmp(sa, sb, sizeof sa)) same_ab = 0;
        if (memcmp(sa, sc, sizeof sa)) same_ac = 0;
    }
    CHECK(same_ab);
    CHECK(!same_ac);
    mp_model_destroy(a);
    mp_model_destroy(b);
    mp_model_destroy(c);
    planted_free(&pl);
}

MP_TEST(bpr_bad_params_are_refused) {
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(mp_model_create(&m, "bpr", &err), &err);
    static const char *const bad[][2] = {
        {"factors", "-4"},         {"factors", "0"},          {"epochs", "0"},          {"learning_rate", "0"},
        {"learning_rate", "nan"},  {"regularization", "-1"},  {"regularization", "NaN"}, {"sampling", "random"},
        {"loss", "hinge"},         {"candidates", "0"},       {"item_bias", "2"},       {"seed", "x"},
        {"factors", "12abc"},      {"max_trials", "0"},       {"init_scale", "inf"},    {"eval_every", "-1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = mp_model_set_param(m, bad[i][0], bad[i][1], &err);
        CHECK_MSG(rc == MP_EINVAL, "%s=%s accepted", bad[i][0], bad[i][1]);
        CHECK_CONTAINS(err.msg, bad[i][0]);
        CHECK_CONTAINS(err.msg, "expected");
    }
    CHECK_EQ(mp_model_set_param(m, "factor", "8", &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "unknown parameter");
    CHECK_OK(mp_model_set_params(m, "factors=16,loss=warp,sampling=adaptive,candidates=64", &err), &err);
    mp_model_destroy(m);
}

MP_TEST(bpr_save_load_round_trip) {
    planted pl;
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(planted_build(&pl, &err), &err);
    const char *titles[NI] = {NULL};
    titles[3] = "Rose Hand Cream";
    pl.ts.data.item_titles = titles;
    mp_model *m, *l;
    CHECK_OK(fit(&m, &pl.ts.data, "factors=8,epochs=10,threads=1,item_bias=0", &err), &err);
    char path[512];
    snprintf(path, sizeof path, "%s/bpr.model", mp_test_tmpdir(t));
    CHECK_OK(mp_model_save(m, path, &err), &err);
    CHECK_OK(mp_model_load(&l, path, &err), &err);
    CHECK(strcmp(mp_model_ops_of(l)->name, "bpr") == 0);
    CHECK_EQ(mp_model_n_items(l), NI);
    for (uint32_t u = 0; u < NU; u++) {
        float a[NI], b[NI];
        mp_user_ctx ctx = {.user = u, .history = NULL, .n_history = 0};
        CHECK_OK(mp_model_score_all(m, &ctx, a, &err), &err);
        CHECK_OK(mp_model_score_all(l, &ctx, b, &err), &err);
        CHECK(memcmp(a, b, sizeof a) == 0);
    }
    /* titles survive: a reason naming item 3 quotes its title */
    mp_interaction h = {.user = 0, .item = 3, .type = MP_EV_PURCHASE};
    mp_user_ctx ctx = {.user = 0, .history = &h, .n_history = 1};
    char why[256];
    CHECK_OK(mp_model_explain(l, &ctx, 5, why, sizeof why, &err), &err);
    CHECK_CONTAINS(why, "because you bought \xE2\x80\x98Rose Hand Cream\xE2\x80\x99");
    /* a truncated file is refused */
    FILE *fp = fopen(path, "rb");
    CHECK(fp);
    char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    char cut[512];
    snprintf(cut, sizeof cut, "%s/cut.model", mp_test_tmpdir(t));
    fp = fopen(cut, "wb");
    CHECK(fp);
    fwrite(buf, 1, len / 2, fp);
    fclose(fp);
    mp_model *bad = NULL;
    CHECK(mp_model_load(&bad, cut, &err) != MP_OK);
    CHECK(bad == NULL);
    mp_model_destroy(m);
    mp_model_destroy(l);
    planted_free(&pl);
}

MP_TEST(bpr_explain_and_similar_follow_the_groups) {
    planted pl;
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(planted_build(&pl, &err), &err);
    mp_model *m;
    CHECK_OK(fit(&m, &pl.ts.data, "factors=8,epochs=60,threads=1", &err), &err);
    /* similar items of an item of group 0 are mostly in group 0 */
    uint32_t sim[5];
    size_t n;
    CHECK_OK(mp_model_similar(m, 2, 5, sim, NULL, &n, &err), &err);
    CHECK_EQ(n, 5);
    int in_group = 0;
    for (size_t i = 0; i < n; i++) in_group += sim[i] < GI && sim[i] != 2;
    CHECK_MSG(in_group >= 4, "%d of 5 similar items in the group", in_group);
    /* the reason for an item of group 1 names the group-1 item of a mixed history */
    mp_interaction h[2] = {{.user = 1, .item = 0, .type = MP_EV_VIEW}, {.user = 1, .item = GI + 1, .type = MP_EV_VIEW}};
    mp_user_ctx ctx = {.user = 1, .history = h, .n_history = 2};
    char why[128];
    CHECK_OK(mp_model_explain(m, &ctx, GI + 5, why, sizeof why, &err), &err);
    CHECK_CONTAINS(why, "because you viewed item #21");
    mp_model_destroy(m);
    planted_free(&pl);
}

MP_TEST(bpr_update_folds_in_new_users_and_items) {
    planted pl;
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(planted_build(&pl, &err), &err);
    mp_model *m;
    CHECK_OK(fit(&m, &pl.ts.data, "factors=8,epochs=60,threads=1", &err), &err);
    /* a new user (id NU) who bought three group-1 items, and a new item (id NI) bought by group-1 users */
    mp_interaction ev[3 + 10];
    size_t n = 0;
    for (uint32_t i = 0; i < 3; i++)
        ev[n++] = (mp_interaction){.user = NU, .item = GI + i, .ts = 5000, .type = MP_EV_PURCHASE};
    for (uint32_t u = 1; u < 20; u += 2)
        ev[n++] = (mp_interaction){.user = u, .item = NI, .ts = 5000, .type = MP_EV_PURCHASE};
    CHECK_OK(mp_model_update(m, ev, n, &err), &err);
    CHECK_EQ(mp_model_n_items(m), NI + 1);
    uint32_t top[5];
    size_t got;
    mp_user_ctx ctx = {.user = NU, .history = ev, .n_history = 3};
    CHECK_OK(mp_model_recommend(m, &ctx, 5, NULL, 0, 1, NULL, top, NULL, &got, &err), &err);
    CHECK_EQ(got, 5);
    int in_group = 0;
    for (size_t i = 0; i < got; i++) in_group += top[i] >= GI;
    CHECK_MSG(in_group >= 4, "%d of 5 recommendations for the new user in group 1", in_group);
    /* an unknown user scored from their history alone (no update) leans the same way */
    mp_user_ctx anon = {.user = MP_NO_USER, .history = ev, .n_history = 3};
    CHECK_OK(mp_model_recommend(m, &anon, 5, NULL, 0, 1, NULL, top, NULL, &got, &err), &err);
    in_group = 0;
    for (size_t i = 0; i < got; i++) in_group += top[i] >= GI;
    CHECK_MSG(in_group >= 4, "%d of 5 recommendations for an anonymous history in group 1", in_group);
    mp_model_destroy(m);
    planted_free(&pl);
}

MP_TEST(bpr_early_stopping_with_validation_events) {
    planted pl;
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(planted_build(&pl, &err), &err);
    /* validation: two unseen own-group items per user */
    mp_interaction valid[NU * 2];
    size_t n = 0;
    for (uint32_t u = 0; u < NU; u++) {
        int added = 0;
        for (uint32_t i = (u % 2) * GI; i < (u % 2 + 1) * GI && added < 2; i++)
            if (!pl.seen[u][i]) {
                valid[n++] = (mp_interaction){.user = u, .item = i, .ts = 9000, .type = MP_EV_PURCHASE};
                added++;
            }
    }
    pl.ts.data.valid = valid;
    pl.ts.data.n_valid = n;
    mp_model *m;
    CHECK_OK(fit(&m, &pl.ts.data, "factors=8,epochs=40,threads=1,patience=3,samples_per_epoch=8000", &err), &err);
    double auc = planted_auc(m, &pl);
    CHECK_MSG(auc > 0.85, "planted AUC %.3f with early stopping", auc);
    mp_model_destroy(m);
    planted_free(&pl);
}
