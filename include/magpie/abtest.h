/* magpie/abtest.h: A/B test analysis: conversion-rate comparison with confidence intervals (two-proportion z-test
 * and bootstrap), sample sizes and A/A simulation: pure statistics. Deterministic variant assignment by hashed user
 * id (mp_abtest_assign) is the live module's, beside the A/B state it serves: magpie/explore.h.
 *
 * Conventions: variant A is the control, B the treatment; diff = pB - pA, lift = diff / pA.
 *   z-test: pooled p = (xA + xB) / (nA + nB), z = diff / sqrt(p (1 - p) (1/nA + 1/nB)), two-sided
 *           p-value = 2 (1 - Phi(|z|)); the interval for diff uses the unpooled standard error
 *           se = sqrt(pA (1 - pA) / nA + pB (1 - pB) / nB): diff +- z_{1-alpha/2} se (Wald);
 *           the interval for lift by the delta method: se_lift = sqrt(pB (1-pB) / (nB pA^2) + pB^2 pA (1-pA) / (nA pA^4)).
 *   bootstrap: B resamples of each arm's users with replacement (seeded); percentile intervals for diff and lift.
 *           With 0/1 outcomes a resample of an arm is a Binomial(n, p_hat) count: drawn exactly below 2000 users or
 *           when n p or n (1 - p) < 30, else by the normal approximation to the binomial.
 *   sample size per arm (Fleiss, no continuity correction), p1 = baseline, p2 = baseline + mde:
 *           n = (z_{1-alpha/2} sqrt(2 pbar (1 - pbar)) + z_{power} sqrt(p1 (1-p1) + p2 (1-p2)))^2 / (p2 - p1)^2,
 *           pbar = (p1 + p2) / 2, rounded up.
 * The library allocates nothing that outlives a call; all structs are caller-owned.
 * Thread safety: every call is pure (randomness from the seed given), so any call may run on any thread at once. */
#ifndef MAGPIE_ABTEST_H
#define MAGPIE_ABTEST_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Standard normal CDF and its inverse (Acklam's rational approximation refined by one Halley step; |error| < 1e-12). */
MP_EXPORT double mp_norm_cdf(double x);
MP_EXPORT double mp_norm_quantile(double p);

typedef struct mp_abtest_arm {
    uint64_t n;         /* users */
    uint64_t conv;      /* users who converted (<= n) */
} mp_abtest_arm;

typedef struct mp_abtest_result {
    double p_a, p_b;        /* conversion rates */
    double diff, lift;      /* pB - pA and (pB - pA) / pA (NAN when pA == 0) */
    double z, p_value;      /* pooled two-proportion z statistic and two-sided p-value */
    double diff_lo, diff_hi; /* z-test (Wald) interval for diff */
    double lift_lo, lift_hi; /* delta-method interval for lift */
    double boot_diff_lo, boot_diff_hi; /* bootstrap percentile intervals (NAN when bootstrap == 0) */
    double boot_lift_lo, boot_lift_hi;
    int significant;        /* p_value < alpha */
} mp_abtest_result;

typedef struct mp_abtest_opts {
    double alpha;       /* 1 - confidence level, default 0.05 */
    uint32_t bootstrap; /* resamples, default 2000 (0: none) */
    uint64_t seed;      /* default 12345 */
} mp_abtest_opts;

MP_EXPORT void mp_abtest_opts_default(mp_abtest_opts *o);

/* Compares two arms. MP_EINVAL when an arm is empty or conv > n.
 * Errors: MP_EINVAL (an arm with no users or conv > n, alpha outside (0, 1)), MP_ENOMEM (bootstrap buffers). */
MP_EXPORT int mp_abtest_compare(const mp_abtest_arm *a, const mp_abtest_arm *b, const mp_abtest_opts *opts,
                                mp_abtest_result *out, mp_error *err);

/* Users per arm to detect an absolute change `mde` from `baseline` with a two-sided test at `alpha` and the
 * given power. MP_EINVAL unless 0 < baseline < 1, 0 < baseline + mde < 1, mde != 0, 0 < alpha < 1,
 * 0 < power < 1.
 * Errors: MP_EINVAL (as said). A tiny mde whose n does not fit a uint64_t is not reported (see abtest.c). */
MP_EXPORT int mp_abtest_sample_size(double baseline, double mde, double alpha, double power, uint64_t *n_per_arm,
                                    mp_error *err);

/* A/A simulation: `n_sims` experiments with `n_per_arm` users in each arm, all converting with probability `rate`;
 * *false_positive_rate = share of experiments whose z-test p-value < alpha. Deterministic for seed.
 * Errors: MP_EINVAL (rate or alpha outside (0, 1), n_per_arm or n_sims 0). */
MP_EXPORT int mp_abtest_aa_simulate(double rate, uint64_t n_per_arm, uint32_t n_sims, double alpha, uint64_t seed,
                                    double *false_positive_rate, mp_error *err);

#ifdef __cplusplus
}
#endif
#endif
