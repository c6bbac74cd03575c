/* src/eval/abtest.c: two-proportion comparisons, sample sizes and A/A simulation (formulas in
 * include/magpie/abtest.h). Variant assignment lives beside the A/B state, in the live module (src/live/abtest.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/abtest.h"
#include "magpie/rng.h"

double mp_norm_cdf(double x) {
    return 0.5 * erfc(-x / sqrt(2.0));
}

/* Acklam's algorithm for the normal quantile, then one Halley step against erfc. */
double mp_norm_quantile(double p) {
    if (!(p > 0 && p < 1)) return p == 0 ? -INFINITY : p == 1 ? INFINITY : NAN;
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                               1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                               6.680131188771972e+01,  -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                               -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    double x, q, r;
    if (p < 0.02425) {
        q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p <= 1 - 0.02425) {
        q = p - 0.5;
        r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    } else {
        q = sqrt(-2 * log(1 - p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    double e = mp_norm_cdf(x) - p, u = e * sqrt(2 * M_PI) * exp(x * x / 2);
    return x - u / (1 + x * u / 2);
}

void mp_abtest_opts_default(mp_abtest_opts *o) {
    o->alpha = 0.05;
    o->bootstrap = 2000;
    o->seed = 12345;
}

/* Binomial(n, p) draw: exact Bernoulli sum for small n, normal approximation (rounded, clamped) for large n p. */
static uint64_t binomial_draw(mp_rng *rng, uint64_t n, double p) {
    if (n < 2000) {
        uint64_t k = 0;
        for (uint64_t i = 0; i < n; i++) k += mp_rng_uniform(rng) < p;
        return k;
    }
    double mean = (double)n * p, sd = sqrt(mean * (1 - p));
    if (mean < 30 || (double)n - mean < 30) { /* rare events: count by geometric gaps (exact) */
        uint64_t k = 0;
        double i = 0, lq = log1p(-p);
        if (p <= 0) return 0;
        if (p >= 1) return n;
        for (;;) {
            double u = mp_rng_uniform(rng);
            i += floor(log(1 - u) / lq) + 1;
            if (i > (double)n) return k;
            k++;
        }
    }
    double x = floor(mean + sd * mp_rng_normal(rng) + 0.5);
    return x < 0 ? 0 : x > (double)n ? n : (uint64_t)x;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double pct(const double *v, size_t n, double q) {
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)floor(pos);
    if (lo + 1 >= n) return v[n - 1];
    return v[lo] + (pos - (double)lo) * (v[lo + 1] - v[lo]);
}

int mp_abtest_compare(const mp_abtest_arm *a, const mp_abtest_arm *b, const mp_abtest_opts *opts,
                      mp_abtest_result *out, mp_error *err) {
    mp_abtest_opts def;
    if (!opts) {
        mp_abtest_opts_default(&def);
        opts = &def;
    }
    if (a->n == 0 || b->n == 0)
        return mp_error_set(err, MP_EINVAL, "A/B test: variant %s has no users", a->n == 0 ? "A" : "B");
    if (a->conv > a->n || b->conv > b->n)
        return mp_error_set(err, MP_EINVAL, "A/B test: variant %s has more conversions (%llu) than users (%llu)",
                            a->conv > a->n ? "A" : "B",
                            (unsigned long long)(a->conv > a->n ? a->conv : b->conv),
                            (unsigned long long)(a->conv > a->n ? a->n : b->n));
    if (!(opts->alpha > 0 && opts->alpha < 1))
        return mp_error_set(err, MP_EINVAL, "A/B test: alpha %g must be in (0, 1)", opts->alpha);
    memset(out, 0, sizeof *out);
    double na = (double)a->n, nb = (double)b->n, pa = (double)a->conv / na, pb = (double)b->conv / nb;
    double zq = mp_norm_quantile(1 - opts->alpha / 2);
    out->p_a = pa;
    out->p_b = pb;
    out->diff = pb - pa;
    out->lift = pa > 0 ? (pb - pa) / pa : NAN;
    double pool = (double)(a->conv + b->conv) / (na + nb);
    double se0 = sqrt(pool * (1 - pool) * (1 / na + 1 / nb));
    out->z = se0 > 0 ? out->diff / se0 : 0.0;
    out->p_value = se0 > 0 ? 2 * (1 - mp_norm_cdf(fabs(out->z))) : 1.0;
    out->significant = out->p_value < opts->alpha;
    double se = sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb);
    out->diff_lo = out->diff - zq * se;
    out->diff_hi = out->diff + zq * se;
    if (pa > 0) {
        double sl = sqrt(pb * (1 - pb) / (nb * pa * pa) + pb * pb * pa * (1 - pa) / (na * pa * pa * pa * pa));
        out->lift_lo = out->lift - zq * sl;
        out->lift_hi = out->lift + zq * sl;
    } else {
        out->lift_lo = out->lift_hi = NAN;
    }
    out->boot_diff_lo = out->boot_diff_hi = out->boot_lift_lo = out->boot_lift_hi = NAN;
    size_t B = opts->bootstrap;
    if (B == 0) return MP_OK;
    double *d = malloc(2 * B * sizeof *d), *l = d ? d + B : NULL;
    if (!d) return mp_error_set(err, MP_ENOMEM, "A/B test: out of memory for %zu bootstrap resamples", B);
    mp_rng rng;
    mp_rng_seed(&rng, opts->seed);
    size_t nl = 0;
    for (size_t k = 0; k < B; k++) {
        /* Resampling an arm's users with replacement = drawing its conversions from Binomial(n, p_hat). */
        double qa = (double)binomial_draw(&rng, a->n, pa) / na, qb = (double)binomial_draw(&rng, b->n, pb) / nb;
        d[k] = qb - qa;
        if (qa > 0) l[nl++] = (qb - qa) / qa;
    }
    qsort(d, B, sizeof *d, cmp_double);
    out->boot_diff_lo = pct(d, B, opts->alpha / 2);
    out->boot_diff_hi = pct(d, B, 1 - opts->alpha / 2);
    if (nl > 0) {
        qsort(l, nl, sizeof *l, cmp_double);
        out->boot_lift_lo = pct(l, nl, opts->alpha / 2);
        out->boot_lift_hi = pct(l, nl, 1 - opts->alpha / 2);
    }
    free(d);
    return MP_OK;
}

int mp_abtest_sample_size(double baseline, double mde, double alpha, double power, uint64_t *n_per_arm,
                          mp_error *err) {
    double p1 = baseline, p2 = baseline + mde;
    if (!(p1 > 0 && p1 < 1) || !(p2 > 0 && p2 < 1) || mde == 0 || isnan(mde))
        return mp_error_set(err, MP_EINVAL,
                            "sample size: need 0 < baseline (%g) < 1, a non-zero effect (%g) and 0 < baseline + "
                            "effect < 1",
                            p1, mde);
    if (!(alpha > 0 && alpha < 1) || !(power > 0 && power < 1))
        return mp_error_set(err, MP_EINVAL, "sample size: alpha (%g) and power (%g) must be in (0, 1)", alpha, power);
    double za = mp_norm_quantile(1 - alpha / 2), zb = mp_norm_quantile(power), pbar = (p1 + p2) / 2;
    double num = za * sqrt(2 * pbar * (1 - pbar)) + zb * sqrt(p1 * (1 - p1) + p2 * (1 - p2));
    double n = num * num / (mde * mde);
    /* Round up, but do not let a last-bit rounding error add a whole user. */
    *n_per_arm = (uint64_t)ceil(n - 1e-9);
    return MP_OK;
}

int mp_abtest_aa_simulate(double rate, uint64_t n_per_arm, uint32_t n_sims, double alpha, uint64_t seed,
                          double *false_positive_rate, mp_error *err) {
    if (!(rate > 0 && rate < 1) || n_per_arm == 0 || n_sims == 0 || !(alpha > 0 && alpha < 1))
        return mp_error_set(err, MP_EINVAL,
                            "A/A simulation: need 0 < rate < 1, users per arm > 0, simulations > 0, 0 < alpha < 1");
    mp_rng rng;
    mp_rng_seed(&rng, seed);
    mp_abtest_opts o = {alpha, 0, seed};
    uint32_t hits = 0;
    for (uint32_t s = 0; s < n_sims; s++) {
        mp_abtest_arm a = {n_per_arm, binomial_draw(&rng, n_per_arm, rate)};
        mp_abtest_arm b = {n_per_arm, binomial_draw(&rng, n_per_arm, rate)};
        mp_abtest_result r;
        int rc = mp_abtest_compare(&a, &b, &o, &r, err);
        if (rc) return rc;
        hits += r.significant;
    }
    *false_positive_rate = (double)hits / (double)n_sims;
    return MP_OK;
}
