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

/* Planted ratings: r = 3 + b_u + b_i + p_u . q_i (rank 2) + noise, about 60% observed for training and the
 * rest held out. */
#define MU 80
#define MI 50

typedef struct rated {
    mp_dataset *ds;
    mp_train_set ts;
    mp_interaction test[MU * MI];
    size_t n_test;
} rated;

static int rated_build(rated *r, double noise, mp_error *err) {
    memset(r, 0, sizeof *r);
    mp_rng rng;
    mp_rng_seed(&rng, 3);
    double p[MU][2], q[MI][2], bu[MU], bi[MI];
    for (int u = 0; u < MU; u++) {
        p[u][0] = mp_rng_normal(&rng) * 0.7;
        p[u][1] = mp_rng_normal(&rng) * 0.7;
        bu[u] = mp_rng_normal(&rng) * 0.3;
    }
    for (int i = 0; i < MI; i++) {
        q[i][0] = mp_rng_normal(&rng) * 0.7;
        q[i][1] = mp_rng_normal(&rng) * 0.7;
        bi[i] = mp_rng_normal(&rng) * 0.3;
    }
    mp_interaction *train = malloc(MU * MI * sizeof *train);
    if (!train) return MP_ENOMEM;
    size_t n = 0;
    for (uint32_t u = 0; u < MU; u++)
        for (uint32_t i = 0; i < MI; i++) {
            double v = 3 + bu[u] + bi[i] + p[u][0] * q[i][0] + p[u][1] * q[i][1] + noise * mp_rng_normal(&rng);
            mp_interaction e = {.user = u, .item = i, .ts = 1000, .value = (float)v, .type = MP_EV_RATING,
                                .has_value = 1};
            if (mp_rng_uniform(&rng) < 0.6) train[n++] = e;
            else r->test[r->n_test++] = e;
        }
    int rc = mp_dataset_from_interactions(&r->ds, MU, MI, train, n, err);
    free(train);
    if (rc) return rc;
    return mp_train_set_build(&r->ts, r->ds, r->ds->events, r->ds->n_events, NULL, err);
}

static void rated_free(rated *r) {
    mp_train_set_free(&r->ts);
    mp_dataset_destroy(r->ds);
}

static int fit_mf(mp_model **m, const mp_train_data *d, const char *params, mp_error *err) {
    int rc = mp_model_create(m, "mf", err);
    if (rc) return rc;
    if ((rc = mp_model_set_params(*m, params, err)) || (rc = mp_model_fit(*m, d, NULL, err))) {
        mp_model_destroy(*m);
        *m = NULL;
    }
    return rc;
}

static double test_rmse(const mp_model *m, const rated *r) {
    double se = 0;
    for (size_t i = 0; i < r->n_test; i++) {
        double pred;
        mp_error err;
        if (mp_model_predict_rating(m, r->test[i].user, r->test[i].item, &pred, &err)) return INFINITY;
        se += (pred - r->test[i].value) * (pred - r->test[i].value);
    }
    return sqrt(se / (double)r->n_test);
}

MP_TEST(mf_rating_gradient_matches_finite_differences) {
    enum { K = 5 };
    mp_rng rng;
    mp_rng_seed(&rng, 11);
    float pu[K], qi[K], b[2] = {0.4f, -0.3f};
    for (int f = 0; f < K; f++) {
        pu[f] = (float)mp_rng_normal(&rng);
        qi[f] = (float)mp_rng_normal(&rng);
    }
    const double r = 4, mu = 3.2, reg = 0.07, reg_b = 0.03;
    float g_pu[K], g_qi[K], g_b[2];
    mp_bprmf_rating_grad(r, mu, b[0], b[1], pu, qi, K, reg, reg_b, g_pu, g_qi, &g_b[0], &g_b[1]);
    float *params[] = {pu, qi, b};
    float *grads[] = {g_pu, g_qi, g_b};
    int sizes[] = {K, K, 2};
    const float h = 1e-2f;
    for (int a = 0; a < 3; a++)
        for (int f = 0; f < sizes[a]; f++) {
            float keep = params[a][f];
            params[a][f] = keep + h;
            double lp = mp_bprmf_rating_loss(r, mu, b[0], b[1], pu, qi, K, reg, reg_b);
            params[a][f] = keep - h;
            double lm = mp_bprmf_rating_loss(r, mu, b[0], b[1], pu, qi, K, reg, reg_b);
            params[a][f] = keep;
            double num = (lp - lm) / (2.0 * h);
            CHECK_MSG(fabs(num - grads[a][f]) <= 1e-3 * (1 + fabs(num)), "param %d[%d]: analytic %g, numeric %g", a, f,
                      grads[a][f], num);
        }
}

MP_TEST(mf_recovers_planted_low_rank_ratings) {
    rated r;
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(rated_build(&r, 0.1, &err), &err);
    static const char *const variants[] = {
        "solver=sgd,factors=4,epochs=200,learning_rate=0.02,lr_decay=1,regularization=0.01,init_scale=0.1",
        "solver=als,factors=4,epochs=20,regularization=0.01,threads=2",
    };
    double baseline = 0; /* RMSE of predicting the global mean: the spread of the planted ratings */
    {
        double s = 0, s2 = 0;
        for (size_t i = 0; i < r.n_test; i++) {
            s += r.test[i].value;
            s2 += r.test[i].value * r.test[i].value;
        }
        double mean = s / r.n_test;
        baseline = sqrt(s2 / r.n_test - mean * mean);
    }
    CHECK(baseline > 0.6);
    for (size_t v = 0; v < 2; v++) {
        mp_model *m;
        CHECK_OK(fit_mf(&m, &r.ts.data, variants[v], &err), &err);
        double rmse = test_rmse(m, &r);
        mp_model_destroy(m);
        CHECK_MSG(rmse < 0.2, "%s: held-out RMSE %.3f (global-mean RMSE %.3f), want < 0.2", variants[v], rmse,
                  baseline);
    }
    rated_free(&r);
}

MP_TEST(mf_predictions_are_clipped_to_the_training_range) {
    /* user 0 rates everything 5, item 0 is rated 5 by everyone, the rest is 1..3: the raw prediction for
     * (0, 0) overshoots 5, and the lowest ones undershoot 1. */
    mp_interaction ev[20 * 10];
    size_t n = 0;
    for (uint32_t u = 0; u < 20; u++)
        for (uint32_t i = 0; i < 10; i++) {
            if (u == 0 && i == 0) continue;
            float v = (u == 0 || i == 0) ? 5.0f : (u == 1 || i == 1) ? 1.0f : (float)(1 + (u + i) % 3);
            ev[n++] = (mp_interaction){.user = u, .item = i, .ts = 1, .value = v, .type = MP_EV_RATING,
                                       .has_value = 1};
        }
    mp_dataset *ds;
    mp_train_set ts;
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(mp_dataset_from_interactions(&ds, 20, 10, ev, n, &err), &err);
    CHECK_OK(mp_train_set_build(&ts, ds, ds->events, ds->n_events, NULL, &err), &err);
    mp_model *m;
    CHECK_OK(fit_mf(&m, &ts.data, "factors=2,epochs=100,learning_rate=0.05,regularization=0.001,"
                                  "bias_regularization=0.001,lr_decay=1",
                    &err),
             &err);
    double lo = INFINITY, hi = -INFINITY;
    for (uint32_t u = 0; u < 20; u++)
        for (uint32_t i = 0; i < 10; i++) {
            double p;
            CHECK_OK(mp_model_predict_rating(m, u, i, &p, &err), &err);
            if (p < lo) lo = p;
            if (p > hi) hi = p;
        }
    CHECK_NEAR(hi, 5.0, 0);
    CHECK(lo >= 1.0);
    double p;
    CHECK_OK(mp_model_predict_rating(m, 0, 0, &p, &err), &err);
    CHECK_NEAR(p, 5.0, 0);
    /* an unknown user is predicted from the item side, still within range */
    CHECK_OK(mp_model_predict_rating(m, 1000, 0, &p, &err), &err);
    CHECK(p >= 1.0 && p <= 5.0);
    /* the ranking score is the unclipped prediction: item 0 first for user 0 */
    float s[10];
    mp_user_ctx ctx = {.user = 0, .history = NULL, .n_history = 0};
    CHECK_OK(mp_model_score_all(m, &ctx, s, &err), &err);
    for (int i = 1; i < 10; i++) CHECK(s[0] > s[i]);
    mp_model_destroy(m);
    mp_train_set_free(&ts);
    mp_dataset_destroy(ds);
}

MP_TEST(mf_save_load_round_trip) {
    rated r;
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(rated_build(&r, 0.1, &err), &err);
    mp_model *m, *l;
    CHECK_OK(fit_mf(&m, &r.ts.data, "factors=4,epochs=5,solver=als", &err), &err);
    char path[512];
    snprintf(path, sizeof path, "%s/mf.model", mp_test_tmpdir(t));
    CHECK_OK(mp_model_save(m, path, &err), &err);
    CHECK_OK(mp_model_load(&l, path, &err), &err);
    CHECK(strcmp(mp_model_ops_of(l)->name, "mf") == 0);
    for (size_t i = 0; i < r.n_test; i++) {
        double a, b;
        CHECK_OK(mp_model_predict_rating(m, r.test[i].user, r.test[i].item, &a, &err), &err);
        CHECK_OK(mp_model_predict_rating(l, r.test[i].user, r.test[i].item, &b, &err), &err);
        CHECK(a == b);
    }
    char why[256];
    mp_interaction h = {.user = 0, .item = 1, .type = MP_EV_RATING, .has_value = 1, .value = 4};
    mp_user_ctx ctx = {.user = 0, .history = &h, .n_history = 1};
    CHECK_OK(mp_model_explain(l, &ctx, 2, why, sizeof why, &err), &err);
    CHECK_CONTAINS(why, "predicted rating");
    CHECK_CONTAINS(why, "item #1, which you rated 4");
    mp_model_destroy(m);
    mp_model_destroy(l);
    rated_free(&r);
}

MP_TEST(mf_bad_params_and_missing_ratings) {
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(mp_model_create(&m, "mf", &err), &err);
    static const char *const bad[][2] = {
        {"factors", "-1"}, {"factors", "0"},     {"epochs", "0"},     {"regularization", "nan"},
        {"solver", "cg"},  {"lr_decay", "0"},    {"lr_decay", "1.5"}, {"learning_rate", "-0.1"},
        {"init_scale", "0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = mp_model_set_param(m, bad[i][0], bad[i][1], &err);
        CHECK_MSG(rc == MP_EINVAL, "%s=%s accepted", bad[i][0], bad[i][1]);
        CHECK_CONTAINS(err.msg, bad[i][0]);
        CHECK_CONTAINS(err.msg, "expected");
    }
    /* implicit events only: a clear refusal */
    mp_interaction ev[4] = {{.user = 0, .item = 0, .type = MP_EV_VIEW},
                            {.user = 0, .item = 1, .type = MP_EV_VIEW},
                            {.user = 1, .item = 1, .type = MP_EV_PURCHASE},
                            {.user = 1, .item = 0, .type = MP_EV_VIEW}};
    mp_dataset *ds;
    mp_train_set ts;
    CHECK_OK(mp_dataset_from_interactions(&ds, 2, 2, ev, 4, &err), &err);
    CHECK_OK(mp_train_set_build(&ts, ds, ds->events, ds->n_events, NULL, &err), &err);
    CHECK_EQ(mp_model_fit(m, &ts.data, NULL, &err), MP_EEMPTY);
    CHECK_CONTAINS(err.msg, "rating");
    mp_model_destroy(m);
    mp_train_set_free(&ts);
    mp_dataset_destroy(ds);
}

MP_TEST(mf_update_learns_a_new_users_taste) {
    rated r;
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(rated_build(&r, 0.1, &err), &err);
    mp_model *m;
    CHECK_OK(fit_mf(&m, &r.ts.data, "factors=4,epochs=20,solver=als,regularization=0.01", &err), &err);
    /* a new user who rates everything 1 below the model's mean prediction moves below an unknown user */
    mp_interaction ev[10];
    for (uint32_t i = 0; i < 10; i++) {
        double p;
        CHECK_OK(mp_model_predict_rating(m, MP_NO_USER, i, &p, &err), &err);
        ev[i] = (mp_interaction){.user = MU, .item = i, .ts = 5, .value = (float)(p - 1), .type = MP_EV_RATING,
                                 .has_value = 1};
    }
    CHECK_OK(mp_model_update(m, ev, 10, &err), &err);
    double before, after;
    CHECK_OK(mp_model_predict_rating(m, MP_NO_USER, 20, &before, &err), &err);
    CHECK_OK(mp_model_predict_rating(m, MU, 20, &after, &err), &err);
    CHECK_MSG(after < before - 0.3, "new user's prediction %.2f vs unknown %.2f", after, before);
    mp_model_destroy(m);
    rated_free(&r);
}
