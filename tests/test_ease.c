#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "magpie/model.h"
#include "test.h"

enum { EU = 40, EI = 15 };

/* A seeded random binary user x item set (each user's events in time order). */
static size_t ease_events(mp_interaction *ev, uint64_t seed) {
    size_t n = 0;
    uint64_t s = seed;
    for (uint32_t u = 0; u < EU; u++)
        for (uint32_t i = 0; i < EI; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            if ((double)(s >> 11) / 9007199254740992.0 < 0.1 + 0.3 / (1.0 + i % 5))
                ev[n++] = (mp_interaction){.user = u, .item = i, .ts = (int64_t)n, .type = MP_EV_VIEW};
        }
    return n;
}

/* Reference EASE in double: Gauss-Jordan inverse with partial pivoting of X^T X + diag(lambda + pen * G_ii),
 * B = I - P diag(1 / diag P). b: [EI * EI]. */
static void ease_reference(const mp_interaction *ev, size_t n, double lambda, double dropout, double *b) {
    static double g[EI][EI], inv[EI][EI];
    static double x[EU][EI];
    memset(x, 0, sizeof x);
    for (size_t k = 0; k < n; k++) x[ev[k].user][ev[k].item] = 1;
    for (int i = 0; i < EI; i++)
        for (int j = 0; j < EI; j++) {
            double s = 0;
            for (int u = 0; u < EU; u++) s += x[u][i] * x[u][j];
            g[i][j] = s;
            inv[i][j] = i == j;
        }
    for (int i = 0; i < EI; i++) g[i][i] += lambda + dropout / (1 - dropout) * g[i][i];
    for (int c = 0; c < EI; c++) {
        int p = c;
        for (int r = c + 1; r < EI; r++)
            if (fabs(g[r][c]) > fabs(g[p][c])) p = r;
        for (int k = 0; k < EI; k++) {
            double t = g[c][k];
            g[c][k] = g[p][k];
            g[p][k] = t;
            t = inv[c][k];
            inv[c][k] = inv[p][k];
            inv[p][k] = t;
        }
        double d = g[c][c];
        for (int k = 0; k < EI; k++) {
            g[c][k] /= d;
            inv[c][k] /= d;
        }
        for (int r = 0; r < EI; r++) {
            if (r == c) continue;
            double f = g[r][c];
            for (int k = 0; k < EI; k++) {
                g[r][k] -= f * g[c][k];
                inv[r][k] -= f * inv[c][k];
            }
        }
    }
    for (int j = 0; j < EI; j++)
        for (int i = 0; i < EI; i++) b[j * EI + i] = i == j ? 0 : -inv[j][i] / inv[i][i];
}

static int fit_ease(mp_model **m, const mp_train_data *d, const char *params, mp_error *err) {
    int rc = mp_model_create(m, "ease", err);
    if (rc) return rc;
    if (params && (rc = mp_model_set_params(*m, params, err))) return rc;
    return mp_model_fit(*m, d, NULL, err);
}

/* Row j of the model's B: the scores of a history made of item j alone. */
static int ease_row(const mp_model *m, uint32_t j, float *row, mp_error *err) {
    mp_interaction h = {.user = MP_NO_USER, .item = j, .ts = 1, .type = MP_EV_VIEW};
    mp_user_ctx ctx = {.user = MP_NO_USER, .history = &h, .n_history = 1};
    return mp_model_score_all(m, &ctx, row, err);
}

MP_TEST(ease_matches_dense_reference) {
    static mp_interaction ev[EU * EI];
    size_t n = ease_events(ev, 11);
    mp_train_data d = {.n_users = EU, .n_items = EI, .events = ev, .n_events = n, .n_threads = 2};
    static double ref[EI * EI], ref_drop[EI * EI];
    ease_reference(ev, n, 3.0, 0.0, ref);
    ease_reference(ev, n, 3.0, 0.25, ref_drop);
    const char *const variants[] = {"lambda=3,precision=double",      "lambda=3,precision=float",
                                    "lambda=3,precision=double,solver=plain", "lambda=3,precision=float,solver=plain",
                                    "lambda=3,dropout=0.25,precision=double"};
    mp_error err;
    mp_error_clear(&err);
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
        mp_model *m;
        CHECK_OK(fit_ease(&m, &d, variants[v], &err), &err);
        const double *want = strstr(variants[v], "dropout") ? ref_drop : ref;
        double tol = strstr(variants[v], "float") ? 2e-5 : 2e-8; /* B is stored as float */
        double max_abs = 0;
        for (uint32_t j = 0; j < EI; j++) {
            float row[EI];
            CHECK_OK(ease_row(m, j, row, &err), &err);
            CHECK_EQ(row[j], 0); /* zero diagonal */
            for (uint32_t i = 0; i < EI; i++) {
                CHECK_MSG(fabs(row[i] - want[j * EI + i]) <= tol + 1e-6 * fabs(want[j * EI + i]),
                          "%s: B[%u][%u] = %.9g, reference %.9g", variants[v], j, i, row[i], want[j * EI + i]);
                if (fabs(want[j * EI + i]) > max_abs) max_abs = fabs(want[j * EI + i]);
            }
        }
        CHECK(max_abs > 0.01); /* the reference is not trivially zero */
        mp_model_destroy(m);
    }
}

MP_TEST(ease_scores_sum_rows_and_explains) {
    static mp_interaction ev[EU * EI];
    size_t n = ease_events(ev, 5);
    static const char *titles[EI] = {"Toy Story (1995)", "GoldenEye (1995)", "Four Rooms (1995)"};
    mp_train_data d = {.n_users = EU, .n_items = EI, .events = ev, .n_events = n, .item_titles = titles};
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(fit_ease(&m, &d, "lambda=2", &err), &err);
    float r0[EI], r2[EI], s[EI];
    CHECK_OK(ease_row(m, 0, r0, &err), &err);
    CHECK_OK(ease_row(m, 2, r2, &err), &err);
    mp_interaction h[3] = {{.user = 0, .item = 0, .ts = 1, .type = MP_EV_RATING, .value = 5, .has_value = 1},
                           {.user = 0, .item = 2, .ts = 2, .type = MP_EV_PURCHASE},
                           {.user = 0, .item = 2, .ts = 3, .type = MP_EV_VIEW}};
    mp_user_ctx ctx = {.user = 0, .history = h, .n_history = 3};
    CHECK_OK(mp_model_score_all(m, &ctx, s, &err), &err);
    uint32_t best = 1;
    for (uint32_t i = 0; i < EI; i++) {
        CHECK_NEAR(s[i], r0[i] + r2[i], 1e-6);
        if (i != 0 && i != 2 && s[i] > s[best]) best = i;
    }
    char buf[256];
    CHECK_OK(mp_model_explain(m, &ctx, best, buf, sizeof buf, &err), &err);
    if (r0[best] > r2[best]) CHECK(strcmp(buf, "because you rated \xE2\x80\x98Toy Story (1995)\xE2\x80\x99 5") == 0);
    else CHECK(strcmp(buf, "because you bought \xE2\x80\x98" "Four Rooms (1995)\xE2\x80\x99") == 0);
    uint32_t items[EI];
    float sims[EI];
    size_t got;
    CHECK_OK(mp_model_similar(m, 0, 3, items, sims, &got, &err), &err);
    CHECK(got >= 1);
    CHECK(items[0] != 0 && sims[0] == r0[items[0]]);
    mp_model_destroy(m);
}

MP_TEST(ease_refuses_above_memory_limit) {
    static mp_interaction ev[EU * EI];
    size_t n = ease_events(ev, 3);
    mp_train_data d = {.n_users = EU, .n_items = EI, .events = ev, .n_events = n};
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(mp_model_create(&m, "ease", &err), &err);
    /* 15 x 15 floats = 900 bytes > 1e-7 GiB (107 bytes) */
    CHECK_OK(mp_model_set_params(m, "max_memory_gb=1e-7", &err), &err);
    CHECK_EQ(mp_model_fit(m, &d, NULL, &err), MP_ERANGE);
    CHECK_CONTAINS(err.msg, "15 x 15 item-item matrix needs about");
    CHECK_CONTAINS(err.msg, "max_memory_gb=1e-07");
    CHECK(!mp_model_is_fitted(m));
    CHECK_OK(mp_model_set_params(m, "max_memory_gb=1", &err), &err);
    CHECK_OK(mp_model_fit(m, &d, NULL, &err), &err);
    mp_model_destroy(m);
}

MP_TEST(ease_bad_params) {
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(mp_model_create(&m, "ease", &err), &err);
    CHECK_EQ(mp_model_set_param(m, "lambda", "0", &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "lambda");
    CHECK_EQ(mp_model_set_param(m, "lambda", "nan", &err), MP_EINVAL);
    CHECK_EQ(mp_model_set_param(m, "lambda", "-5", &err), MP_EINVAL);
    CHECK_EQ(mp_model_set_param(m, "dropout", "1", &err), MP_EINVAL);
    CHECK_EQ(mp_model_set_param(m, "precision", "half", &err), MP_EINVAL);
    CHECK_EQ(mp_model_set_param(m, "max_memory_gb", "0", &err), MP_EINVAL);
    CHECK_EQ(mp_model_set_param(m, "solver", "magic", &err), MP_EINVAL);
    CHECK_OK(mp_model_set_params(m, "lambda=250,dropout=0.1,input=weighted,recency=3", &err), &err);
    mp_model_destroy(m);
}

MP_TEST(ease_save_load_round_trip) {
    static mp_interaction ev[EU * EI];
    size_t n = ease_events(ev, 9);
    static const char *titles[EI] = {"A", NULL, "C"};
    mp_train_data d = {.n_users = EU, .n_items = EI, .events = ev, .n_events = n, .item_titles = titles};
    mp_error err;
    mp_error_clear(&err);
    mp_model *m, *l;
    CHECK_OK(fit_ease(&m, &d, "lambda=4,recency=2", &err), &err);
    char path[512];
    snprintf(path, sizeof path, "%s/ease.mpm", mp_test_tmpdir(t));
    CHECK_OK(mp_model_save(m, path, &err), &err);
    CHECK_OK(mp_model_load(&l, path, &err), &err);
    CHECK_EQ(mp_model_n_items(l), EI);
    mp_user_ctx ctx = {.user = 3, .history = ev, .n_history = 9};
    float a[EI], b[EI];
    CHECK_OK(mp_model_score_all(m, &ctx, a, &err), &err);
    CHECK_OK(mp_model_score_all(l, &ctx, b, &err), &err);
    CHECK(memcmp(a, b, sizeof a) == 0);
    char ea[256], eb[256];
    for (uint32_t i = 0; i < EI; i++) {
        CHECK_OK(mp_model_explain(m, &ctx, i, ea, sizeof ea, &err), &err);
        CHECK_OK(mp_model_explain(l, &ctx, i, eb, sizeof eb, &err), &err);
        CHECK(strcmp(ea, eb) == 0);
    }
    mp_model_destroy(l);
    /* truncated: refused with a message naming the file */
    FILE *fp = fopen(path, "r+b");
    CHECK(fp != NULL);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fclose(fp);
    CHECK(truncate(path, size - 10) == 0);
    CHECK(mp_model_load(&l, path, &err) != MP_OK);
    CHECK_CONTAINS(err.msg, path);
    mp_model_destroy(m);
}
