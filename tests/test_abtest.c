/* Tests of magpie/abtest.h: z-test numbers computed by hand, the sample-size formula, assignment and A/A. */
#include <stdio.h>

#include "magpie/abtest.h"
#include "magpie/explore.h"
#include "test.h"

MP_TEST(abtest_normal_quantiles) {
    CHECK_NEAR(mp_norm_quantile(0.975), 1.959963984540054, 1e-12);
    CHECK_NEAR(mp_norm_quantile(0.8), 0.8416212335729143, 1e-12);
    CHECK_NEAR(mp_norm_quantile(0.999), 3.090232306167813, 1e-11);
    CHECK_NEAR(mp_norm_quantile(1e-5), -4.264890793922825, 1e-10);
    CHECK_NEAR(mp_norm_cdf(1.959963984540054), 0.975, 1e-12);
    CHECK_NEAR(mp_norm_cdf(0), 0.5, 1e-15);
}

/* A: 100 of 1000, B: 130 of 1000.
 *   pooled p = 230/2000 = 0.115, se0 = sqrt(0.115 * 0.885 * 2/1000) = 0.0142671..., z = 0.03 / se0 = 2.1027406
 *   p-value = 2 (1 - Phi(2.1027406)) = 0.0354885
 *   se = sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000) = sqrt(0.0002031) = 0.0142513...
 *   diff interval 0.03 -+ 1.959964 se = [0.0020679, 0.0579321]
 *   lift 0.3; se_lift = sqrt(0.13 * 0.87 / (1000 * 0.01) + 0.0169 * 0.09 / (1000 * 0.0001)) = 0.16774...,
 *   interval [-0.0191794, 0.6191794]. */
MP_TEST(abtest_ztest_hand_values) {
    mp_abtest_arm a = {1000, 100}, b = {1000, 130};
    mp_abtest_opts o;
    mp_abtest_opts_default(&o);
    o.bootstrap = 4000;
    mp_abtest_result r;
    mp_error err;
    CHECK_OK(mp_abtest_compare(&a, &b, &o, &r, &err), &err);
    CHECK_NEAR(r.p_a, 0.1, 1e-15);
    CHECK_NEAR(r.p_b, 0.13, 1e-15);
    CHECK_NEAR(r.diff, 0.03, 1e-15);
    CHECK_NEAR(r.lift, 0.3, 1e-12);
    CHECK_NEAR(r.z, 2.102740605622114, 1e-9);
    CHECK_NEAR(r.p_value, 0.03548845046647475, 1e-9);
    CHECK(r.significant);
    CHECK_NEAR(r.diff_lo, 0.0020679344393763725, 1e-9);
    CHECK_NEAR(r.diff_hi, 0.05793206556062362, 1e-9);
    CHECK_NEAR(r.lift_lo, -0.01917939771358701, 1e-9);
    CHECK_NEAR(r.lift_hi, 0.619179397713587, 1e-9);
    /* The bootstrap interval of the difference is close to the Wald interval at this size. */
    CHECK_NEAR(r.boot_diff_lo, r.diff_lo, 0.004);
    CHECK_NEAR(r.boot_diff_hi, r.diff_hi, 0.004);
    CHECK(r.boot_lift_lo < 0.3 && r.boot_lift_hi > 0.3);
    /* Deterministic for the seed. */
    mp_abtest_result r2;
    CHECK_OK(mp_abtest_compare(&a, &b, &o, &r2, &err), &err);
    CHECK(r2.boot_diff_lo == r.boot_diff_lo && r2.boot_lift_hi == r.boot_lift_hi);
    /* At alpha 0.01 the same data is not significant (p = 0.035). */
    o.alpha = 0.01;
    o.bootstrap = 0;
    CHECK_OK(mp_abtest_compare(&a, &b, &o, &r, &err), &err);
    CHECK(!r.significant);
    CHECK(isnan(r.boot_diff_lo));
    /* Errors. */
    mp_abtest_arm empty = {0, 0}, over = {10, 11};
    CHECK_EQ(mp_abtest_compare(&empty, &b, &o, &r, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "variant A has no users");
    CHECK_EQ(mp_abtest_compare(&a, &over, &o, &r, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "more conversions");
}

/* Baseline 10% -> 12% at alpha 0.05 (two-sided), power 0.8: the Fleiss formula without continuity correction gives
 * (1.959964 sqrt(2 * 0.11 * 0.89) + 0.841621 sqrt(0.09 + 0.1056))^2 / 0.02^2 = 3840.85 -> 3841 per arm, the
 * textbook value for this case; 5% -> 6% gives 8157.7 -> 8158. */
MP_TEST(abtest_sample_size_textbook) {
    uint64_t n;
    mp_error err;
    CHECK_OK(mp_abtest_sample_size(0.10, 0.02, 0.05, 0.8, &n, &err), &err);
    CHECK_EQ(n, 3841);
    CHECK_OK(mp_abtest_sample_size(0.05, 0.01, 0.05, 0.8, &n, &err), &err);
    CHECK_EQ(n, 8158);
    /* A decrease needs the same formula with p2 < p1. */
    CHECK_OK(mp_abtest_sample_size(0.12, -0.02, 0.05, 0.8, &n, &err), &err);
    CHECK_EQ(n, 3841);
    CHECK_EQ(mp_abtest_sample_size(0.10, 0, 0.05, 0.8, &n, &err), MP_EINVAL);
    CHECK_EQ(mp_abtest_sample_size(0.95, 0.1, 0.05, 0.8, &n, &err), MP_EINVAL);
    CHECK_EQ(mp_abtest_sample_size(0.1, 0.02, 0.05, 1.0, &n, &err), MP_EINVAL);
}

MP_TEST(abtest_assign_deterministic_and_split) {
    double w50[2] = {50, 50}, w28[2] = {0.2, 0.8}, w3[3] = {1, 0, 1};
    int v1 = mp_abtest_assign("user-42", "exp1", w50, 2);
    CHECK(v1 == 0 || v1 == 1);
    for (int k = 0; k < 10; k++) CHECK_EQ(mp_abtest_assign("user-42", "exp1", w50, 2), v1);
    int count[2] = {0, 0}, count28[2] = {0, 0}, moved = 0, zero_used = 0;
    char id[32];
    const int N = 100000;
    for (int u = 0; u < N; u++) {
        snprintf(id, sizeof id, "u%d", u);
        int v = mp_abtest_assign(id, "exp1", w50, 2);
        count[v]++;
        count28[mp_abtest_assign(id, "exp1", w28, 2)]++;
        moved += mp_abtest_assign(id, "exp2", w50, 2) != v;
        zero_used += mp_abtest_assign(id, "exp1", w3, 3) == 1;
    }
    /* Binomial sd at N = 1e5 is 0.0016 for 50/50: allow 4 sd. */
    CHECK_NEAR((double)count[0] / N, 0.5, 0.0064);
    CHECK_NEAR((double)count28[0] / N, 0.2, 0.0051);
    CHECK_NEAR((double)moved / N, 0.5, 0.0064); /* a new salt reshuffles independently */
    CHECK_EQ(zero_used, 0);
    CHECK_EQ(mp_abtest_assign("u", "s", w50, 0), -1);
    double bad[2] = {-1, 2}, zero[2] = {0, 0};
    CHECK_EQ(mp_abtest_assign("u", "s", bad, 2), -1);
    CHECK_EQ(mp_abtest_assign("u", "s", zero, 2), -1);
}

/* 2000 seeded A/A experiments at alpha 0.05: the false-positive rate is within 3 standard errors (0.0146) of 5%. */
MP_TEST(abtest_aa_false_positive_rate) {
    double fpr, fpr2;
    mp_error err;
    CHECK_OK(mp_abtest_aa_simulate(0.05, 1000, 2000, 0.05, 7, &fpr, &err), &err);
    CHECK_MSG(fabs(fpr - 0.05) < 0.0146, "false-positive rate %g", fpr);
    CHECK_OK(mp_abtest_aa_simulate(0.05, 1000, 2000, 0.05, 7, &fpr2, &err), &err);
    CHECK(fpr == fpr2);
    /* The large-arm path (normal draws) too. */
    CHECK_OK(mp_abtest_aa_simulate(0.1, 50000, 2000, 0.05, 8, &fpr, &err), &err);
    CHECK_MSG(fabs(fpr - 0.05) < 0.0146, "false-positive rate %g", fpr);
    CHECK_EQ(mp_abtest_aa_simulate(0, 1000, 10, 0.05, 7, &fpr, &err), MP_EINVAL);
}
