/* bench/ope_synth: accuracy of the off-policy estimators where the truth is known. Synthetic logs with OBD-like
 * click rates (34 items, 3 slots, 20 shopper types, CTR ~0.5%) from a logging policy, an evaluation policy with a
 * different ranking, and the exact V(pi_e); prints the relative error of every estimator against the log size.
 *
 * usage: ope_synth [MAX_ROWS (default 10000000)] [BOOTSTRAP (default 200)] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "magpie/ope.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    size_t max_rows = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 10000000;
    unsigned boot = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 200;
    size_t sizes[] = {10000, 30000, 100000, 300000, 1000000, 3000000, 10000000};
    mp_ope_synth_opts so;
    mp_ope_synth_opts_default(&so);
    printf("synthetic logs: %u items, %u slots, %u shopper types, uniform-policy CTR %.3f; logistic reward model with "
           "3-fold cross-fitting; Switch-DR tau 10\n",
           so.n_actions, so.n_slots, so.n_ctx, so.ctr);
    printf("relative error |estimate - truth| / truth, mean over seeds (seeds: 5 below 1M rows, 3 at 1M-3M, 1 at "
           "10M)\n\n");
    printf("%9s %5s %9s %9s | %7s %7s %7s %7s %7s %7s | %-23s %-23s %6s\n", "rows", "seeds", "truth", "log mean",
           "dm", "ips", "snips", "dr", "sndr", "sw-dr", "snips 95% CI (seed 1)", "dr 95% CI (seed 1)", "secs");
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        if (n > max_rows) break;
        int seeds = n < 1000000 ? 5 : n < 10000000 ? 3 : 1;
        double err_sum[MP_OPE_N_ESTIMATORS] = {0}, truth = 0, logv = 0, t0 = now();
        mp_ope_result first[MP_OPE_N_ESTIMATORS];
        for (int s = 0; s < seeds; s++) {
            mp_ope_log log;
            mp_ope_table pi, q;
            mp_ope_rounds r;
            mp_error err;
            so.n = n;
            so.log_seed = 100 + (uint64_t)s;
            mp_ope_rm_opts rmo;
            mp_ope_rm_opts_default(&rmo);
            rmo.seed = (uint64_t)s;
            mp_ope_opts o;
            mp_ope_opts_default(&o);
            o.bootstrap = s == 0 && n <= 1000000 ? boot : 0;
            mp_ope_result res[MP_OPE_N_ESTIMATORS];
            if (mp_ope_synth(&so, &log, &pi, &truth, NULL, &err) || mp_ope_reward_model_fit(&log, &rmo, &q, &err) ||
                mp_ope_rounds_build(&log, &pi, &q, &r, &err) || mp_ope_estimate_all(&r, &o, res, &err)) {
                fprintf(stderr, "ope_synth: %s\n", err.msg);
                return 1;
            }
            double lm = 0;
            for (size_t i = 0; i < log.n; i++) lm += log.reward[i];
            logv += lm / (double)log.n / seeds;
            for (int e = 0; e < MP_OPE_N_ESTIMATORS; e++) err_sum[e] += fabs(res[e].value - truth) / truth;
            if (s == 0)
                for (int e = 0; e < MP_OPE_N_ESTIMATORS; e++) first[e] = res[e];
            mp_ope_rounds_free(&r);
            mp_ope_table_free(&q);
            mp_ope_table_free(&pi);
            mp_ope_log_free(&log);
        }
        char ci_s[64] = "-", ci_d[64] = "-";
        if (!isnan(first[MP_OPE_SNIPS].lo)) {
            snprintf(ci_s, sizeof ci_s, "[%.5f, %.5f]", first[MP_OPE_SNIPS].lo, first[MP_OPE_SNIPS].hi);
            snprintf(ci_d, sizeof ci_d, "[%.5f, %.5f]", first[MP_OPE_DR].lo, first[MP_OPE_DR].hi);
        }
        printf("%9zu %5d %9.6f %9.6f |", n, seeds, truth, logv);
        for (int e = 0; e < MP_OPE_N_ESTIMATORS; e++) printf(" %7.4f", err_sum[e] / seeds);
        printf(" | %-23s %-23s %6.1f\n", ci_s, ci_d, now() - t0);
        if (n == 1000000)
            printf("%9s goal at 1M rows: relative error <= 0.05 for SNIPS (%.4f: %s) and DR (%.4f: %s)\n", "",
                   err_sum[MP_OPE_SNIPS] / seeds, err_sum[MP_OPE_SNIPS] / seeds <= 0.05 ? "met" : "NOT met",
                   err_sum[MP_OPE_DR] / seeds, err_sum[MP_OPE_DR] / seeds <= 0.05 ? "met" : "NOT met");
        fflush(stdout);
    }
    printf("\n'log mean' is the naive baseline (the logging policy's own CTR), 'truth' is V(pi_e) computed exactly.\n");

    /* A policy learned from the log: epsilon-greedy on a logistic reward model fitted on one half of a log,
     * evaluated off-policy on the other half, beside its exact value. */
    size_t ln = max_rows < 1000000 ? max_rows : 1000000;
    so.n = ln;
    so.log_seed = 100;
    mp_ope_log log, tr, ev;
    mp_ope_table pi_e, q_tr, pi_g, q_ev;
    mp_ope_rounds r;
    mp_error err;
    double truth_e, truth_b, truth_g;
    mp_ope_rm_opts one;
    mp_ope_rm_opts_default(&one);
    one.folds = 1;
    mp_ope_rm_opts rmo;
    mp_ope_rm_opts_default(&rmo);
    mp_ope_opts o;
    mp_ope_opts_default(&o);
    o.bootstrap = boot;
    mp_ope_result res[MP_OPE_N_ESTIMATORS];
    if (mp_ope_synth(&so, &log, &pi_e, &truth_e, &truth_b, &err) || mp_ope_log_split(&log, 0.5, 7, &tr, &ev, &err) ||
        mp_ope_reward_model_fit(&tr, &one, &q_tr, &err) || mp_ope_policy_greedy(&tr, &q_tr, 0.1, &pi_g, &err) ||
        mp_ope_synth_policy_value(&so, &pi_g, &truth_g, &err)) {
        fprintf(stderr, "ope_synth: %s\n", err.msg);
        return 1;
    }
    free(pi_g.row_of); /* rows are shopper types: point the evaluation half's rounds at theirs */
    pi_g.row_of = malloc(ev.n * sizeof *pi_g.row_of);
    if (!pi_g.row_of) return 1;
    for (size_t i = 0; i < ev.n; i++) pi_g.row_of[i] = ev.ctx[i];
    if (mp_ope_reward_model_fit(&ev, &rmo, &q_ev, &err) || mp_ope_rounds_build(&ev, &pi_g, &q_ev, &r, &err) ||
        mp_ope_estimate_all(&r, &o, res, &err)) {
        fprintf(stderr, "ope_synth: %s\n", err.msg);
        return 1;
    }
    printf("\nlearned policy: epsilon-greedy (eps 0.1) on a logistic reward model of %zu rows, evaluated on the other "
           "%zu rows of the same %zu-row log\n",
           tr.n, ev.n, ln);
    printf("exact values: learned %.6f, logging policy %.6f, the synthetic evaluation policy %.6f\n", truth_g, truth_b,
           truth_e);
    printf("%-10s %9s  %-23s %9s\n", "estimator", "estimate", "95% CI", "rel.error");
    for (int e = 0; e < MP_OPE_N_ESTIMATORS; e++) {
        char ci[64] = "-";
        if (!isnan(res[e].lo)) snprintf(ci, sizeof ci, "[%.5f, %.5f]", res[e].lo, res[e].hi);
        printf("%-10s %9.6f  %-23s %9.4f\n", mp_ope_estimator_name((mp_ope_estimator)e), res[e].value, ci,
               fabs(res[e].value - truth_g) / truth_g);
    }
    mp_ope_rounds_free(&r);
    mp_ope_table_free(&q_ev);
    mp_ope_table_free(&pi_g);
    mp_ope_table_free(&q_tr);
    mp_ope_table_free(&pi_e);
    mp_ope_log_free(&tr);
    mp_ope_log_free(&ev);
    mp_ope_log_free(&log);
    return 0;
}
