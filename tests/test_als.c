#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/dataset.h"
#include "magpie/factors.h"
#include "magpie/linalg.h"
#include "magpie/model.h"
#include "magpie/trainset.h"
#include "test.h"

/* ---- the row solvers against a dense reference ---- */

/* Small random problem: Y (n, k), row of nnz distinct columns. */
typedef struct small_problem {
    float Y[12 * 5], G[25];
    uint32_t idx[6];
    float val[6];
    size_t nnz;
    mp_ials_problem p;
} small_problem;

static void small_problem_init(small_problem *s, uint64_t seed) {
    mp_rng rng;
    mp_rng_seed(&rng, seed);
    for (int i = 0; i < 60; i++) s->Y[i] = (float)(mp_rng_uniform(&rng) - 0.5);
    mp_gram(s->Y, 12, 5, 5, s->G);
    s->nnz = 5;
    const uint32_t cols[5] = {1, 3, 4, 8, 11};
    for (size_t j = 0; j < s->nnz; j++) {
        s->idx[j] = cols[j];
        s->val[j] = (float)(1 + mp_rng_below(&rng, 4));
    }
    s->p = (mp_ials_problem){s->Y, s->G, 5, 2.0f, 0.5f};
}

/* Dense reference: A = Y^T C Y + reg I over all 12 rows, b = Y^T C p. */
static void dense_reference(const small_problem *s, double *x) {
    double A[25] = {0}, b[5] = {0};
    for (uint32_t i = 0; i < 12; i++) {
        double c = 1, pref = 0;
        for (size_t j = 0; j < s->nnz; j++)
            if (s->idx[j] == i) {
                c = 1 + s->p.alpha * s->val[j];
                pref = 1;
            }
        const float *y = s->Y + i * 5;
        for (int a = 0; a < 5; a++) {
            for (int d = 0; d < 5; d++) A[a * 5 + d] += c * y[a] * y[d];
            b[a] += c * pref * y[a];
        }
    }
    for (int a = 0; a < 5; a++) A[a * 5 + a] += s->p.reg;
    mp_cholesky_solve(A, b, 5);
    memcpy(x, b, sizeof b);
}

MP_TEST(als_exact_solve_matches_dense_reference_and_cg_converges) {
    for (uint64_t seed = 1; seed <= 5; seed++) {
        small_problem s;
        small_problem_init(&s, seed);
        double ref[5];
        dense_reference(&s, ref);
        float x[5];
        double work[25 + 10];
        CHECK_EQ(mp_ials_solve(&s.p, s.idx, s.val, s.nnz, x, work), MP_OK);
        for (int a = 0; a < 5; a++) CHECK_NEAR(x[a], ref[a], 1e-5);
        /* CG from zero: one step is not enough, k steps are (up to float rounding) */
        float xc[5] = {0}, fw[15];
        mp_ials_cg(&s.p, s.idx, s.val, s.nnz, xc, 1, fw);
        double err1 = 0;
        for (int a = 0; a < 5; a++) err1 += fabs(xc[a] - ref[a]);
        memset(xc, 0, sizeof xc);
        mp_ials_cg(&s.p, s.idx, s.val, s.nnz, xc, 10, fw);
        double err10 = 0;
        for (int a = 0; a < 5; a++) err10 += fabs(xc[a] - ref[a]);
        CHECK_MSG(err10 < 1e-4, "seed %llu: CG error after 10 steps %g", (unsigned long long)seed, err10);
        CHECK_MSG(err1 > 10 * err10, "seed %llu: CG should improve with steps (%g vs %g)", (unsigned long long)seed,
                  err1, err10);
        /* warm start at the solution stays there */
        for (int a = 0; a < 5; a++) xc[a] = (float)ref[a];
        mp_ials_cg(&s.p, s.idx, s.val, s.nnz, xc, 3, fw);
        for (int a = 0; a < 5; a++) CHECK_NEAR(xc[a], ref[a], 1e-5);
        /* contributions sum to the exact score of every item */
        for (uint32_t i = 0; i < 12; i++) {
            double contrib[6], score;
            CHECK_EQ(mp_ials_explain(&s.p, s.idx, s.val, s.nnz, s.Y + i * 5, contrib, &score, work), MP_OK);
            double sum = 0, want = 0;
            for (size_t j = 0; j < s.nnz; j++) sum += contrib[j];
            for (int a = 0; a < 5; a++) want += ref[a] * s.Y[i * 5 + a];
            CHECK_NEAR(sum, want, 1e-6);
            CHECK_NEAR(score, want, 1e-6);
        }
    }
    /* empty row: x = 0 */
    small_problem s;
    small_problem_init(&s, 9);
    float x[5] = {1, 1, 1, 1, 1};
    double work[35];
    CHECK_EQ(mp_ials_solve(&s.p, s.idx, s.val, 0, x, work), MP_OK);
    for (int a = 0; a < 5; a++) CHECK_EQ(x[a], 0);
    /* reg 0 with fewer rows than factors is singular */
    float Y1[5] = {1, 0, 0, 0, 0}, G1[25] = {0};
    G1[0] = 1;
    mp_ials_problem sing = {Y1, G1, 5, 1.0f, 0.0f};
    uint32_t i0 = 0;
    float v0 = 1;
    CHECK_EQ(mp_ials_solve(&sing, &i0, &v0, 1, x, work), MP_ERANGE);
}

/* ---- the model ---- */

#define NU 80
#define NI 50

/* Two taste groups: users < NU/2 mostly use items < NI/2, the others the rest; a few cross-overs. */
typedef struct fixture {
    mp_dataset *ds;
    mp_train_set ts;
    mp_interaction ev[NU * 12];
    size_t n;
} fixture;

static int fixture_init(fixture *f, mp_error *err) {
    memset(f, 0, sizeof *f);
    mp_rng rng;
    mp_rng_seed(&rng, 77);
    for (uint32_t u = 0; u < NU; u++) {
        uint32_t base = u < NU / 2 ? 0 : NI / 2;
        for (int j = 0; j < 10; j++) {
            uint32_t it = base + (uint32_t)mp_rng_below(&rng, NI / 2);
            if (mp_rng_below(&rng, 10) == 0) it = (uint32_t)mp_rng_below(&rng, NI);
            int type = mp_rng_below(&rng, 4) == 0 ? MP_EV_PURCHASE : MP_EV_VIEW;
            f->ev[f->n++] = (mp_interaction){.user = u, .item = it, .ts = 1000 + j, .type = (uint8_t)type};
        }
    }
    int rc = mp_dataset_from_interactions(&f->ds, NU, NI, f->ev, f->n, err);
    if (rc) return rc;
    return mp_train_set_build(&f->ts, f->ds, f->ds->events, f->ds->n_events, NULL, err);
}

static void fixture_free(fixture *f) {
    mp_train_set_free(&f->ts);
    mp_dataset_destroy(f->ds);
}

static int fit_als(mp_model **m, const mp_train_data *d, const char *params, mp_error *err) {
    int rc = mp_model_create(m, "als", err);
    if (rc) return rc;
    if (params && (rc = mp_model_set_params(*m, params, err))) return rc;
    return mp_model_fit(*m, d, NULL, err);
}

/* The user's events in the dataset (sorted by user). */
static mp_user_ctx user_ctx(const mp_dataset *ds, uint32_t u) {
    return (mp_user_ctx){.user = u, .history = ds->events + ds->user_ptr[u], .n_history = (size_t)(ds->user_ptr[u + 1] - ds->user_ptr[u])};
}

/* Reads the factors back out of a saved als model file (white box: skips the parameter block). */
static int read_factors(const char *path, mp_factors *f, mp_error *err) {
    mp_mf_reader *r;
    int rc = mp_mf_reader_open(&r, path, err);
    if (rc) return rc;
    uint32_t u32;
    uint64_t u64;
    double f64;
    float tw[MP_EV_NTYPES];
    rc = mp_mf_get_u32(r, &u32, err) || mp_mf_get_u32(r, &u32, err) || mp_mf_get_f64(r, &f64, err) ||
         mp_mf_get_f64(r, &f64, err) || mp_mf_get_u32(r, &u32, err) || mp_mf_get_u32(r, &u32, err) ||
         mp_mf_get_u64(r, &u64, err) || mp_mf_get_u32(r, &u32, err) || mp_mf_get_f64(r, &f64, err) ||
         mp_mf_get_u32(r, &u32, err) || mp_mf_get_u32(r, &u32, err) || mp_mf_get_f64(r, &f64, err) ||
         mp_mf_get_f32s(r, tw, MP_EV_NTYPES, err) || mp_mf_get_f64(r, &f64, err) || mp_mf_get_u64(r, &u64, err) ||
         mp_mf_get_u32(r, &u32, err);
    if (!rc) rc = mp_factors_load(f, r, err);
    mp_mf_reader_close(r);
    return rc ? MP_ECORRUPT : MP_OK;
}

MP_TEST(als_same_seed_same_factors_any_thread_count) {
    fixture fx;
    mp_error err;
    CHECK_OK(fixture_init(&fx, &err), &err);
    const char *dir = mp_test_tmpdir(t);
    const char *solvers[2] = {"cg", "cholesky"};
    for (int s = 0; s < 2; s++) {
        mp_factors f[3];
        for (int run = 0; run < 3; run++) {
            char params[128], path[512];
            snprintf(params, sizeof params, "factors=8,iterations=4,seed=%d,threads=%d,solver=%s",
                     run == 2 ? 6 : 5, run == 1 ? 2 : 1, solvers[s]);
            snprintf(path, sizeof path, "%s/m%d.mpm", dir, run);
            mp_model *m;
            CHECK_OK(fit_als(&m, &fx.ts.data, params, &err), &err);
            CHECK_OK(mp_model_save(m, path, &err), &err);
            mp_model_destroy(m);
            CHECK_OK(read_factors(path, &f[run], &err), &err);
        }
        size_t nu = (size_t)NU * 8, ni = (size_t)NI * 8;
        CHECK(memcmp(f[0].user, f[1].user, nu * sizeof(float)) == 0);
        CHECK(memcmp(f[0].item, f[1].item, ni * sizeof(float)) == 0);
        CHECK(memcmp(f[0].item, f[2].item, ni * sizeof(float)) != 0); /* another seed differs */
        for (int run = 0; run < 3; run++) mp_factors_free(&f[run]);
    }
    fixture_free(&fx);
}

MP_TEST(als_fold_in_equals_retraining_the_user) {
    fixture fx;
    mp_error err;
    CHECK_OK(fixture_init(&fx, &err), &err);
    mp_model *m;
    CHECK_OK(fit_als(&m, &fx.ts.data, "factors=6,iterations=5,regularization=0.5,alpha=4", &err), &err);
    char path[512];
    snprintf(path, sizeof path, "%s/m.mpm", mp_test_tmpdir(t));
    CHECK_OK(mp_model_save(m, path, &err), &err);
    mp_factors f;
    CHECK_OK(read_factors(path, &f, &err), &err);
    float G[36];
    mp_gram(f.item, NI, 6, 6, G);
    mp_ials_problem p = {f.item, G, 6, 4.0f, 0.5f};
    const mp_csr *ui = &fx.ts.ui;
    float *scores = malloc(NI * sizeof *scores);
    double work[36 + 12];
    for (uint32_t u = 0; u < NU; u += 7) {
        /* retrain user u with the item factors fixed (one exact solve on the training row) */
        float x[6];
        uint64_t b = ui->ptr[u];
        CHECK_EQ(mp_ials_solve(&p, ui->idx + b, ui->val + b, ui->ptr[u + 1] - b, x, work), MP_OK);
        /* fold-in from the history, as for an anonymous session */
        mp_user_ctx ctx = user_ctx(fx.ds, u);
        ctx.user = MP_NO_USER;
        CHECK_OK(mp_model_score_all(m, &ctx, scores, &err), &err);
        for (uint32_t i = 0; i < NI; i++) {
            double want = 0;
            for (int a = 0; a < 6; a++) want += (double)x[a] * f.item[i * 6 + a];
            CHECK_NEAR(scores[i], want, 1e-4 * (1 + fabs(want)));
        }
        /* explanation's contributions sum to that score */
        double contrib[64], score;
        CHECK_EQ(mp_ials_explain(&p, ui->idx + b, ui->val + b, ui->ptr[u + 1] - b, f.item + 3 * 6, contrib, &score,
                                 work),
                 MP_OK);
        CHECK_NEAR(score, scores[3], 1e-4 * (1 + fabs(score)));
    }
    /* real-time update: new events for user 0 re-solve the user exactly */
    mp_user_ctx c0 = user_ctx(fx.ds, 0);
    mp_interaction extra[3] = {{.user = 0, .item = 40, .ts = 5000, .type = MP_EV_PURCHASE},
                               {.user = 0, .item = 41, .ts = 5001, .type = MP_EV_VIEW},
                               {.user = 0, .item = 40, .ts = 5002, .type = MP_EV_VIEW}};
    CHECK_OK(mp_model_update(m, extra, 3, &err), &err);
    mp_interaction hist[64];
    memcpy(hist, c0.history, c0.n_history * sizeof *hist);
    memcpy(hist + c0.n_history, extra, sizeof extra);
    mp_user_ctx anon = {.user = MP_NO_USER, .history = hist, .n_history = c0.n_history + 3};
    float *s2 = malloc(NI * sizeof *s2);
    CHECK_OK(mp_model_score_all(m, &anon, s2, &err), &err);
    mp_user_ctx known = {.user = 0, .history = hist, .n_history = c0.n_history + 3};
    CHECK_OK(mp_model_score_all(m, &known, scores, &err), &err);
    for (uint32_t i = 0; i < NI; i++) CHECK_NEAR(scores[i], s2[i], 1e-4 * (1 + fabs(s2[i])));
    free(scores);
    free(s2);
    mp_factors_free(&f);
    mp_model_destroy(m);
    fixture_free(&fx);
}

MP_TEST(als_update_folds_in_a_new_item) {
    fixture fx;
    mp_error err;
    CHECK_OK(fixture_init(&fx, &err), &err);
    mp_model *m;
    CHECK_OK(fit_als(&m, &fx.ts.data, "factors=8,iterations=8,regularization=0.1,alpha=5", &err), &err);
    CHECK_EQ(mp_model_n_items(m), NI);
    /* users of the first group buy the new item NI */
    mp_interaction ev[10];
    for (uint32_t j = 0; j < 10; j++)
        ev[j] = (mp_interaction){.user = j, .item = NI, .ts = 9000, .type = MP_EV_PURCHASE};
    CHECK_OK(mp_model_update(m, ev, 10, &err), &err);
    CHECK_EQ(mp_model_n_items(m), NI + 1);
    float *scores = malloc((NI + 1) * sizeof *scores);
    /* a first-group user who did not buy it scores it above a second-group user */
    mp_user_ctx a = user_ctx(fx.ds, 20), b = user_ctx(fx.ds, 60);
    CHECK_OK(mp_model_score_all(m, &a, scores, &err), &err);
    float sa = scores[NI];
    CHECK_OK(mp_model_score_all(m, &b, scores, &err), &err);
    float sb = scores[NI];
    CHECK_MSG(sa > sb && sa > 0, "new item: first group %g vs second group %g", sa, sb);
    uint32_t sim[3];
    float ss[3];
    size_t n;
    CHECK_OK(mp_model_similar(m, NI, 3, sim, ss, &n, &err), &err);
    CHECK_EQ(n, 3);
    CHECK(sim[0] < NI / 2 + 5); /* mostly first-group items (one of the top-3) */
    free(scores);
    mp_model_destroy(m);
    fixture_free(&fx);
}

MP_TEST(als_save_load_round_trip_and_corruption) {
    fixture fx;
    mp_error err;
    CHECK_OK(fixture_init(&fx, &err), &err);
    const char *titles[NI];
    for (int i = 0; i < NI; i++) titles[i] = i == 7 ? "Rose Lip Balm" : NULL;
    fx.ts.data.item_titles = titles;
    mp_model *m, *l;
    CHECK_OK(fit_als(&m, &fx.ts.data, "factors=8,iterations=3", &err), &err);
    mp_interaction upd = {.user = 3, .item = 9, .ts = 7000, .type = MP_EV_CART};
    CHECK_OK(mp_model_update(m, &upd, 1, &err), &err); /* saved state includes updates */
    const char *dir = mp_test_tmpdir(t);
    char path[512], bad[512];
    snprintf(path, sizeof path, "%s/m.mpm", dir);
    CHECK_OK(mp_model_save(m, path, &err), &err);
    CHECK_OK(mp_model_load(&l, path, &err), &err);
    CHECK(strcmp(mp_model_ops_of(l)->name, "als") == 0);
    float *s1 = malloc(NI * sizeof *s1), *s2 = malloc(NI * sizeof *s2);
    char e1[256], e2[256];
    for (uint32_t u = 0; u < NU; u += 9) {
        mp_user_ctx c = user_ctx(fx.ds, u);
        CHECK_OK(mp_model_score_all(m, &c, s1, &err), &err);
        CHECK_OK(mp_model_score_all(l, &c, s2, &err), &err);
        CHECK(memcmp(s1, s2, NI * sizeof *s1) == 0);
        CHECK_OK(mp_model_explain(m, &c, 7, e1, sizeof e1, &err), &err);
        CHECK_OK(mp_model_explain(l, &c, 7, e2, sizeof e2, &err), &err);
        CHECK(strcmp(e1, e2) == 0);
    }
    free(s1);
    free(s2);
    /* truncated and corrupted copies are refused */
    FILE *fp = fopen(path, "rb");
    CHECK(fp);
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len);
    CHECK(fread(buf, 1, (size_t)len, fp) == (size_t)len);
    fclose(fp);
    snprintf(bad, sizeof bad, "%s/trunc.mpm", dir);
    fp = fopen(bad, "wb");
    fwrite(buf, 1, (size_t)len - 100, fp);
    fclose(fp);
    mp_model *x = NULL;
    CHECK_EQ(mp_model_load(&x, bad, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, bad);
    buf[len / 2] ^= 0x40;
    snprintf(bad, sizeof bad, "%s/flip.mpm", dir);
    fp = fopen(bad, "wb");
    fwrite(buf, 1, (size_t)len, fp);
    fclose(fp);
    CHECK_EQ(mp_model_load(&x, bad, &err), MP_ECORRUPT);
    CHECK(x == NULL);
    free(buf);
    mp_model_destroy(m);
    mp_model_destroy(l);
    fixture_free(&fx);
}

MP_TEST(als_explain_names_the_top_contributor) {
    fixture fx;
    mp_error err;
    CHECK_OK(fixture_init(&fx, &err), &err);
    const char *titles[NI] = {0};
    for (int i = 0; i < NI; i++) titles[i] = "Some Item";
    fx.ts.data.item_titles = titles;
    mp_model *m;
    CHECK_OK(fit_als(&m, &fx.ts.data, "factors=8,iterations=5,regularization=0.1", &err), &err);
    char buf[256];
    mp_user_ctx c = user_ctx(fx.ds, 1);
    uint32_t rec[1];
    float sc[1];
    size_t n;
    CHECK_OK(mp_model_recommend(m, &c, 1, NULL, 0, 1, NULL, rec, sc, &n, &err), &err);
    CHECK_EQ(n, 1);
    CHECK_OK(mp_model_explain(m, &c, rec[0], buf, sizeof buf, &err), &err);
    CHECK_CONTAINS(buf, "because you ");
    CHECK_CONTAINS(buf, "\xE2\x80\x98Some Item\xE2\x80\x99");
    mp_user_ctx none = {.user = MP_NO_USER};
    CHECK_OK(mp_model_explain(m, &none, 0, buf, sizeof buf, &err), &err);
    CHECK_CONTAINS(buf, "no history");
    mp_model_destroy(m);
    fixture_free(&fx);
}

MP_TEST(als_bad_params_are_refused) {
    mp_model *m;
    mp_error err;
    CHECK_OK(mp_model_create(&m, "als", &err), &err);
    const char *bad[][2] = {{"factors", "-3"}, {"factors", "0"},         {"iterations", "0"}, {"regularization", "nan"},
                            {"alpha", "-1"},   {"solver", "lu"},         {"cg_steps", "0"},   {"init_scale", "0"},
                            {"factors", "8x"}, {"regularization", "inf"}, {"bogus", "1"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(mp_model_set_param(m, bad[i][0], bad[i][1], &err), MP_EINVAL);
        CHECK_CONTAINS(err.msg, bad[i][0]);
    }
    CHECK_OK(mp_model_set_params(m, "factors=16,solver=cholesky,regularization=0.5,alpha=2", &err), &err);
    mp_model_destroy(m);
}

/* Wider problems exercise the vector kernels (k a multiple of 8: 64 + 8 and 32 + 8 column blocks) and the
 * batching of long rows; CG run long enough must land on the exact solution. */
MP_TEST(als_cg_vector_kernels_converge_to_exact) {
    const uint32_t ks[3] = {72, 40, 16};
    for (int t_ = 0; t_ < 3; t_++) {
        uint32_t k = ks[t_], n = 300;
        float *Y = malloc((size_t)n * k * sizeof *Y), *G = malloc((size_t)k * k * sizeof *G);
        mp_rng rng;
        mp_rng_seed(&rng, k);
        for (size_t i = 0; i < (size_t)n * k; i++) Y[i] = (float)(mp_rng_uniform(&rng) - 0.5);
        mp_gram(Y, n, k, k, G);
        mp_ials_problem p = {Y, G, k, 3.0f, 1.0f};
        uint32_t idx[70];
        float val[70];
        for (uint32_t j = 0; j < 70; j++) { /* 70 > one batch of 32 */
            idx[j] = j * 4 + (uint32_t)mp_rng_below(&rng, 4);
            val[j] = (float)(1 + mp_rng_below(&rng, 3));
        }
        float *x = malloc(k * sizeof *x), *xc = calloc(k, sizeof *xc), *fw = malloc(3 * k * sizeof *fw);
        double *work = malloc(mp_ials_work_doubles(k) * sizeof *work);
        CHECK_EQ(mp_ials_solve(&p, idx, val, 70, x, work), MP_OK);
        mp_ials_cg(&p, idx, val, 70, xc, 3 * k, fw);
        double worst = 0, norm = 0;
        for (uint32_t a = 0; a < k; a++) {
            if (fabs(xc[a] - x[a]) > worst) worst = fabs(xc[a] - x[a]);
            norm += fabs(x[a]);
        }
        CHECK_MSG(norm > 0.01 && worst < 1e-4 * (1 + norm), "k=%u: CG vs exact max diff %g (|x|_1 %g)", k, worst, norm);
        free(Y);
        free(G);
        free(x);
        free(xc);
        free(fw);
        free(work);
    }
}
