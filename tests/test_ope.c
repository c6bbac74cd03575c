/* Tests of magpie/ope.h: estimators on hand-made logs with values computed by hand, against the reference formulas
 * on random inputs, bootstrap determinism and coverage, the BTS policy, reward models and the readers' errors. */
#include <stdlib.h>

#include "magpie/ope.h"
#include "magpie/rng.h"
#include "test.h"

/* The 4-round log of the hand computations below: 2 actions, 1 slot, one context.
 *   round  a  pi_b  r     pi_e = (0.8, 0.2) everywhere, q = (0.6, 0.3) everywhere
 *   0      0  0.50  1     w = 1.6
 *   1      1  0.50  0     w = 0.4
 *   2      0  0.25  0     w = 3.2
 *   3      1  0.75  1     w = 0.2 / 0.75 = 4/15 */
static uint32_t hand_action[4] = {0, 1, 0, 1};
static double hand_reward[4] = {1, 0, 0, 1};
static double hand_ps[4] = {0.5, 0.5, 0.25, 0.75};
static double hand_pi[2] = {0.8, 0.2};
static double hand_q[2] = {0.6, 0.3};

static mp_ope_log hand_log(void) {
    mp_ope_log log = {0};
    log.n = 4;
    log.n_actions = 2;
    log.n_slots = 1;
    log.action = hand_action;
    log.reward = hand_reward;
    log.pscore = hand_ps;
    return log;
}

MP_TEST(ope_estimators_hand_values) {
    mp_error err;
    mp_ope_log log = hand_log();
    mp_ope_table pi = {hand_pi, 1, NULL}, q = {hand_q, 1, NULL};
    mp_ope_rounds r;
    CHECK_OK(mp_ope_rounds_build(&log, &pi, &q, &r, &err), &err);
    double v;
    /* IPS = (1.6 + 4/15) / 4 = (28/15) / 4 = 7/15. */
    CHECK_OK(mp_ope_estimate(&r, MP_OPE_IPS, 10, &v, &err), &err);
    CHECK_NEAR(v, 7.0 / 15.0, 1e-12);
    /* SNIPS = (28/15) / (1.6 + 0.4 + 3.2 + 4/15) = (28/15) / (82/15) = 14/41. */
    CHECK_OK(mp_ope_estimate(&r, MP_OPE_SNIPS, 10, &v, &err), &err);
    CHECK_NEAR(v, 14.0 / 41.0, 1e-12);
    /* DM: m = 0.8 * 0.6 + 0.2 * 0.3 = 0.54 in every round. */
    CHECK_OK(mp_ope_estimate(&r, MP_OPE_DM, 10, &v, &err), &err);
    CHECK_NEAR(v, 0.54, 1e-12);
    /* Corrections w (r - q): 1.6 * 0.4 = 0.64, 0.4 * -0.3 = -0.12, 3.2 * -0.6 = -1.92, (4/15) * 0.7 = 2.8/15;
     * their sum is -18.2/15. DR = 0.54 - 18.2/60. */
    CHECK_OK(mp_ope_estimate(&r, MP_OPE_DR, 10, &v, &err), &err);
    CHECK_NEAR(v, 0.54 - 18.2 / 60.0, 1e-12);
    /* SNDR = 0.54 + (-18.2/15) / (82/15) = 0.54 - 18.2/82. */
    CHECK_OK(mp_ope_estimate(&r, MP_OPE_SNDR, 10, &v, &err), &err);
    CHECK_NEAR(v, 0.54 - 18.2 / 82.0, 1e-12);
    /* Switch-DR with tau = 2 drops round 2 (w = 3.2): 0.54 + (0.64 - 0.12 + 2.8/15) / 4. */
    CHECK_OK(mp_ope_estimate(&r, MP_OPE_SWITCH_DR, 2, &v, &err), &err);
    CHECK_NEAR(v, 0.54 + (0.52 + 2.8 / 15.0) / 4.0, 1e-12);
    /* tau = inf is DR, tau = 0 is DM. */
    CHECK_OK(mp_ope_estimate(&r, MP_OPE_SWITCH_DR, INFINITY, &v, &err), &err);
    CHECK_NEAR(v, 0.54 - 18.2 / 60.0, 1e-12);
    CHECK_OK(mp_ope_estimate(&r, MP_OPE_SWITCH_DR, 0, &v, &err), &err);
    CHECK_NEAR(v, 0.54, 1e-12);
    mp_ope_rounds_free(&r);
    /* Without a reward model, DM and DR are clear errors. */
    CHECK_OK(mp_ope_rounds_build(&log, &pi, NULL, &r, &err), &err);
    CHECK_EQ(mp_ope_estimate(&r, MP_OPE_DR, 10, &v, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "needs a reward model");
    mp_ope_rounds_free(&r);
}

/* A log whose rows occur exactly in proportion to pi_b (a0 twice, a1 and a2 once for pi_b = (.5, .25, .25)) with
 * deterministic rewards r = (1, 0, 1): every unbiased estimator must give the true V(pi_e) = 0.2 + 0.5 = 0.7, and DR
 * must do so for any reward model. */
MP_TEST(ope_exact_log_true_value) {
    uint32_t act[4] = {0, 0, 1, 2};
    double rew[4] = {1, 1, 0, 1}, ps[4] = {0.5, 0.5, 0.25, 0.25}, pe[3] = {0.2, 0.3, 0.5};
    double qbad[3] = {0.9, 0.7, 0.1}, qtrue[3] = {1, 0, 1};
    mp_ope_log log = {0};
    log.n = 4, log.n_actions = 3, log.n_slots = 1, log.action = act, log.reward = rew, log.pscore = ps;
    mp_ope_table pi = {pe, 1, NULL}, q1 = {qbad, 1, NULL}, q2 = {qtrue, 1, NULL};
    mp_error err;
    mp_ope_rounds r;
    mp_ope_result res[MP_OPE_N_ESTIMATORS];
    mp_ope_opts o;
    mp_ope_opts_default(&o);
    o.bootstrap = 0;
    o.tau = INFINITY;
    CHECK_OK(mp_ope_rounds_build(&log, &pi, &q1, &r, &err), &err);
    CHECK_OK(mp_ope_estimate_all(&r, &o, res, &err), &err);
    CHECK_NEAR(res[MP_OPE_IPS].value, 0.7, 1e-12);
    CHECK_NEAR(res[MP_OPE_SNIPS].value, 0.7, 1e-12);
    CHECK_NEAR(res[MP_OPE_DR].value, 0.7, 1e-12);
    CHECK_NEAR(res[MP_OPE_SNDR].value, 0.7, 1e-12);
    CHECK_NEAR(res[MP_OPE_SWITCH_DR].value, 0.7, 1e-12);
    CHECK(fabs(res[MP_OPE_DM].value - 0.7) > 0.1); /* DM with a wrong model is biased: 0.18+0.21+0.05 = 0.44 */
    CHECK_NEAR(res[MP_OPE_DM].value, 0.44, 1e-12);
    mp_ope_rounds_free(&r);
    /* With the true reward model DM is exact too. */
    CHECK_OK(mp_ope_rounds_build(&log, &pi, &q2, &r, &err), &err);
    CHECK_OK(mp_ope_estimate_all(&r, &o, res, &err), &err);
    CHECK_NEAR(res[MP_OPE_DM].value, 0.7, 1e-12);
    CHECK_NEAR(res[MP_OPE_DR].value, 0.7, 1e-12);
    mp_ope_rounds_free(&r);
}

/* Random slate log with a different pi_e and q per round: the library equals straightforward reference loops. */
MP_TEST(ope_reference_formulas) {
    enum { N = 700, A = 6, S = 3 };
    static uint32_t act[N], slot[N];
    static double rew[N], ps[N], pe[N * S * A], qv[N * S * A];
    mp_rng rng;
    mp_rng_seed(&rng, 99);
    for (size_t j = 0; j < (size_t)N * S; j++) {
        double sum = 0;
        for (size_t a = 0; a < A; a++) sum += pe[j * A + a] = mp_rng_uniform(&rng) + (a == j % A ? 3 : 0);
        for (size_t a = 0; a < A; a++) pe[j * A + a] /= sum, qv[j * A + a] = mp_rng_uniform(&rng);
    }
    for (size_t i = 0; i < N; i++) {
        act[i] = (uint32_t)mp_rng_below(&rng, A);
        slot[i] = (uint32_t)mp_rng_below(&rng, S);
        ps[i] = 0.05 + 0.9 * mp_rng_uniform(&rng);
        rew[i] = mp_rng_uniform(&rng) < 0.3 ? 1 : 0;
    }
    mp_ope_log log = {0};
    log.n = N, log.n_actions = A, log.n_slots = S, log.action = act, log.slot = slot, log.reward = rew;
    log.pscore = ps;
    mp_ope_table pi = {pe, N, NULL}, q = {qv, N, NULL};
    mp_error err;
    mp_ope_rounds r;
    CHECK_OK(mp_ope_rounds_build(&log, &pi, &q, &r, &err), &err);
    double tau = 2.5;
    double sw = 0, swr = 0, sm = 0, sc = 0, ssw = 0;
    for (size_t i = 0; i < N; i++) {
        const double *p = pe + ((size_t)i * S + slot[i]) * A, *qq = qv + ((size_t)i * S + slot[i]) * A;
        double w = p[act[i]] / ps[i], m = 0;
        for (size_t a = 0; a < A; a++) m += p[a] * qq[a];
        sw += w;
        swr += w * rew[i];
        sm += m;
        sc += w * (rew[i] - qq[act[i]]);
        if (w <= tau) ssw += w * (rew[i] - qq[act[i]]);
    }
    double ref[MP_OPE_N_ESTIMATORS];
    ref[MP_OPE_DM] = sm / N;
    ref[MP_OPE_IPS] = swr / N;
    ref[MP_OPE_SNIPS] = swr / sw;
    ref[MP_OPE_DR] = sm / N + sc / N;
    ref[MP_OPE_SNDR] = sm / N + sc / N / (sw / N);
    ref[MP_OPE_SWITCH_DR] = (sm + ssw) / N;
    mp_ope_opts o;
    mp_ope_opts_default(&o);
    o.tau = tau;
    o.bootstrap = 50;
    mp_ope_result res[MP_OPE_N_ESTIMATORS];
    CHECK_OK(mp_ope_estimate_all(&r, &o, res, &err), &err);
    for (int e = 0; e < MP_OPE_N_ESTIMATORS; e++) {
        double v;
        CHECK_OK(mp_ope_estimate(&r, (mp_ope_estimator)e, tau, &v, &err), &err);
        CHECK_MSG(fabs(v - ref[e]) <= 1e-9, "%s: %.15g vs %.15g", mp_ope_estimator_name((mp_ope_estimator)e), v,
                  ref[e]);
        CHECK_NEAR(res[e].value, ref[e], 1e-9);
        CHECK(res[e].lo <= res[e].hi);
        CHECK(mp_ope_estimator_parse(mp_ope_estimator_name((mp_ope_estimator)e)) == e);
    }
    CHECK(ref[MP_OPE_SWITCH_DR] != ref[MP_OPE_DR]); /* tau matters on this log */
    mp_ope_rounds_free(&r);
}

MP_TEST(ope_bootstrap_deterministic) {
    mp_error err;
    mp_ope_log log = hand_log();
    mp_ope_table pi = {hand_pi, 1, NULL}, q = {hand_q, 1, NULL};
    mp_ope_rounds r;
    CHECK_OK(mp_ope_rounds_build(&log, &pi, &q, &r, &err), &err);
    mp_ope_opts o;
    mp_ope_opts_default(&o);
    o.bootstrap = 300;
    mp_ope_result a[MP_OPE_N_ESTIMATORS], b[MP_OPE_N_ESTIMATORS], c[MP_OPE_N_ESTIMATORS];
    CHECK_OK(mp_ope_estimate_all(&r, &o, a, &err), &err);
    CHECK_OK(mp_ope_estimate_all(&r, &o, b, &err), &err);
    o.seed = 777;
    CHECK_OK(mp_ope_estimate_all(&r, &o, c, &err), &err);
    int differs = 0;
    for (int e = 0; e < MP_OPE_N_ESTIMATORS; e++) {
        CHECK(a[e].lo == b[e].lo && a[e].hi == b[e].hi && a[e].boot_sd == b[e].boot_sd);
        CHECK(a[e].lo <= a[e].value + 1e-12 || a[e].lo <= a[e].hi);
        differs |= a[e].boot_mean != c[e].boot_mean;
    }
    CHECK(differs);
    mp_ope_rounds_free(&r);
}

/* Coverage on synthetic logs with a known truth: the 90% intervals of SNIPS and DR cover V(pi_e) in about 90% of
 * 60 independent logs. */
MP_TEST(ope_bootstrap_coverage) {
    mp_ope_synth_opts so;
    mp_ope_synth_opts_default(&so);
    so.n = 4000;
    so.n_actions = 8;
    so.n_ctx = 4;
    so.n_slots = 2;
    so.ctr = 0.08;
    int cover_snips = 0, cover_dr = 0, runs = 60;
    for (int run = 0; run < runs; run++) {
        so.log_seed = 1000 + (uint64_t)run;
        mp_ope_log log;
        mp_ope_table pi, q;
        double truth;
        mp_error err;
        CHECK_OK(mp_ope_synth(&so, &log, &pi, &truth, NULL, &err), &err);
        mp_ope_rm_opts rmo;
        mp_ope_rm_opts_default(&rmo);
        rmo.kind = MP_OPE_RM_CTR;
        CHECK_OK(mp_ope_reward_model_fit(&log, &rmo, &q, &err), &err);
        mp_ope_rounds r;
        CHECK_OK(mp_ope_rounds_build(&log, &pi, &q, &r, &err), &err);
        mp_ope_opts o;
        mp_ope_opts_default(&o);
        o.bootstrap = 200;
        o.alpha = 0.1;
        o.seed = (uint64_t)run;
        mp_ope_result res[MP_OPE_N_ESTIMATORS];
        CHECK_OK(mp_ope_estimate_all(&r, &o, res, &err), &err);
        cover_snips += res[MP_OPE_SNIPS].lo <= truth && truth <= res[MP_OPE_SNIPS].hi;
        cover_dr += res[MP_OPE_DR].lo <= truth && truth <= res[MP_OPE_DR].hi;
        mp_ope_rounds_free(&r);
        mp_ope_table_free(&q);
        mp_ope_table_free(&pi);
        mp_ope_log_free(&log);
    }
    /* Binomial(60, 0.9): mean 54, sd 2.3. */
    CHECK_MSG(cover_snips >= 47 && cover_snips <= 60, "SNIPS covered %d of %d", cover_snips, runs);
    CHECK_MSG(cover_dr >= 47 && cover_dr <= 60, "DR covered %d of %d", cover_dr, runs);
}

MP_TEST(ope_errors_propensity_and_dimensions) {
    mp_error err;
    mp_ope_log log = hand_log();
    mp_ope_table pi = {hand_pi, 1, NULL};
    mp_ope_rounds r;
    double ps_bad[4] = {0.5, 0.0, 0.25, 0.75};
    log.pscore = ps_bad;
    CHECK_EQ(mp_ope_rounds_build(&log, &pi, NULL, &r, &err), MP_ERANGE);
    CHECK_CONTAINS(err.msg, "round 1: propensity 0 is not in (0, 1]");
    ps_bad[1] = 1.5;
    CHECK_EQ(mp_ope_rounds_build(&log, &pi, NULL, &r, &err), MP_ERANGE);
    CHECK_CONTAINS(err.msg, "propensity 1.5");
    ps_bad[1] = NAN;
    CHECK_EQ(mp_ope_rounds_build(&log, &pi, NULL, &r, &err), MP_ERANGE);
    log = hand_log();
    /* pi_e with 3 rows for a 4-round log. */
    double pi3[6] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    mp_ope_table bad = {pi3, 3, NULL};
    CHECK_EQ(mp_ope_rounds_build(&log, &bad, NULL, &r, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "3 rows do not match the log's 4 rounds");
    /* A row index past the table. */
    uint32_t row_of[4] = {0, 1, 2, 3};
    mp_ope_table bad2 = {pi3, 3, row_of};
    CHECK_EQ(mp_ope_rounds_build(&log, &bad2, NULL, &r, &err), MP_ERANGE);
    CHECK_CONTAINS(err.msg, "round 3 uses row 3");
    /* Probabilities that do not sum to 1. */
    double pi_sum[2] = {0.7, 0.2};
    mp_ope_table bad3 = {pi_sum, 1, NULL};
    CHECK_EQ(mp_ope_rounds_build(&log, &bad3, NULL, &r, &err), MP_ERANGE);
    CHECK_CONTAINS(err.msg, "sum to 0.9");
    /* An action outside n_actions. */
    uint32_t act_bad[4] = {0, 1, 2, 1};
    log.action = act_bad;
    CHECK_EQ(mp_ope_rounds_build(&log, &pi, NULL, &r, &err), MP_ERANGE);
    CHECK_CONTAINS(err.msg, "action 2 out of range");
    /* Slots without a slot array. */
    log = hand_log();
    log.n_slots = 2;
    CHECK_EQ(mp_ope_rounds_build(&log, &pi, NULL, &r, &err), MP_EINVAL);
    /* A reward model with the wrong number of rows. */
    log = hand_log();
    mp_ope_table q_bad = {pi3, 3, NULL};
    CHECK_EQ(mp_ope_rounds_build(&log, &pi, &q_bad, &r, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "reward model");
}

MP_TEST(ope_bts_policy) {
    mp_error err;
    mp_ope_table tb;
    /* Far apart priors: item 0 always ranks first, item 2 second, item 1 last. */
    double a1[3] = {900, 1, 500}, b1[3] = {100, 999, 500};
    CHECK_OK(mp_ope_policy_bts(a1, b1, 3, 2, 2000, 1, &tb, &err), &err);
    CHECK_EQ(tb.rows, 1);
    CHECK_NEAR(tb.v[0 * 3 + 0], 1.0, 1e-12);
    CHECK_NEAR(tb.v[1 * 3 + 2], 1.0, 1e-12);
    CHECK_NEAR(tb.v[1 * 3 + 1], 0.0, 1e-12);
    mp_ope_table_free(&tb);
    /* Equal priors: each of 4 items is first a quarter of the time; each slot sums to 1 and no item exceeds 1 over
     * the slots (drawn without replacement). Seeded: the same table twice. */
    double a2[4] = {2, 2, 2, 2}, b2[4] = {50, 50, 50, 50};
    mp_ope_table t2;
    CHECK_OK(mp_ope_policy_bts(a2, b2, 4, 3, 40000, 7, &tb, &err), &err);
    CHECK_OK(mp_ope_policy_bts(a2, b2, 4, 3, 40000, 7, &t2, &err), &err);
    for (int s = 0; s < 3; s++) {
        double sum = 0;
        for (int a = 0; a < 4; a++) {
            sum += tb.v[s * 4 + a];
            CHECK_NEAR(tb.v[s * 4 + a], 0.25, 0.015);
            CHECK(tb.v[s * 4 + a] == t2.v[s * 4 + a]);
        }
        CHECK_NEAR(sum, 1.0, 1e-12);
    }
    for (int a = 0; a < 4; a++) CHECK(tb.v[a] + tb.v[4 + a] + tb.v[8 + a] <= 1.0 + 1e-12);
    mp_ope_table_free(&tb);
    mp_ope_table_free(&t2);
    /* The mean of a Beta(3, 7) draw is 0.3: with one item against a fixed Beta(300, 700) twin, the first slot is
     * a coin flip. Alpha 0.5 exercises the shape < 1 path. */
    double a3[2] = {0.5, 0.5}, b3[2] = {0.5, 0.5};
    CHECK_OK(mp_ope_policy_bts(a3, b3, 2, 1, 20000, 3, &tb, &err), &err);
    CHECK_NEAR(tb.v[0], 0.5, 0.02);
    mp_ope_table_free(&tb);
    CHECK_EQ(mp_ope_policy_bts(a3, b3, 2, 3, 10, 3, &tb, &err), MP_EINVAL);
    double bad[2] = {0, 1};
    CHECK_EQ(mp_ope_policy_bts(bad, b3, 2, 1, 10, 3, &tb, &err), MP_ERANGE);
}

MP_TEST(ope_bts_prior_yaml) {
    mp_test_tmpdir(t);
    const char *path = mp_test_write_file(t, "prior.yaml",
                                          "all:\n  alpha:\n    - 1.0\n  beta:\n    - 2.0\n"
                                          "men:\n  alpha:\n    - 47.0\n    - 8.0\n  beta:\n    - 12198.0\n"
                                          "    - 3566.0\n");
    double *a, *b;
    uint32_t n;
    mp_error err;
    CHECK_OK(mp_ope_read_bts_prior(path, "men", &a, &b, &n, &err), &err);
    CHECK_EQ(n, 2);
    CHECK(a[0] == 47 && a[1] == 8 && b[0] == 12198 && b[1] == 3566);
    free(a);
    free(b);
    CHECK_EQ(mp_ope_read_bts_prior(path, "women", &a, &b, &n, &err), MP_ENOTFOUND);
    const char *bad = mp_test_write_file(t, "bad.yaml", "men:\n  alpha:\n    - x\n");
    CHECK_EQ(mp_ope_read_bts_prior(bad, "men", &a, &b, &n, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "bad.yaml:3:");
    const char *path_real = mp_test_shared_data("open-bandit-dataset/prior_bts.yaml");
    if (path_real) {
        CHECK_OK(mp_ope_read_bts_prior(path_real, "men", &a, &b, &n, &err), &err);
        CHECK_EQ(n, 34);
        CHECK(a[0] == 47 && b[33] == 14506);
        free(a);
        free(b);
    }
}

MP_TEST(ope_csv_reader) {
    mp_test_tmpdir(t);
    const char *path = mp_test_write_file(t, "log.csv",
                                          "action,position,reward,propensity,segment,user\n"
                                          "shoe,1,0,0.5,young,u1\n"
                                          "hat,2,1,0.25,old,u2\n"
                                          "\"shoe\",2,1,0.5,young,u3\n"
                                          "bag,1,0,1,old,u1\n");
    mp_ope_log log;
    mp_error err;
    CHECK_OK(mp_ope_log_read(path, MP_OPE_FORMAT_CSV, &log, &err), &err);
    CHECK_EQ(log.n, 4);
    CHECK_EQ(log.n_actions, 3);
    CHECK_EQ(log.n_slots, 2);
    CHECK_EQ(log.action[0], 0);
    CHECK_EQ(log.action[1], 1);
    CHECK_EQ(log.action[2], 0); /* the quoted label is the same item */
    CHECK_EQ(log.action[3], 2);
    CHECK_EQ(log.slot[1], 1);
    CHECK(log.slot_labels[0] == 1 && log.slot_labels[1] == 2);
    CHECK_EQ(log.n_ctx, 2); /* segment only: `user` is not a feature */
    CHECK_EQ(log.n_feat, 1);
    CHECK_EQ(log.ctx[0], log.ctx[2]);
    CHECK(log.pscore[3] == 1.0 && log.reward[1] == 1.0);
    CHECK(!strcmp(mp_strmap_key(log.action_labels, 1, NULL), "hat"));
    mp_ope_log_free(&log);
    const char *bad = mp_test_write_file(t, "bad.csv", "action,reward,propensity\nshoe,0,0.5\nhat,1,0\n");
    CHECK_EQ(mp_ope_log_read(bad, MP_OPE_FORMAT_CSV, &log, &err), MP_ERANGE);
    CHECK_CONTAINS(err.msg, "bad.csv:3: column `propensity`: propensity 0 is not in (0, 1]");
    const char *bad2 = mp_test_write_file(t, "bad2.csv", "action,reward,propensity\nshoe,0,2\n");
    CHECK_EQ(mp_ope_log_read(bad2, MP_OPE_FORMAT_CSV, &log, &err), MP_ERANGE);
    CHECK_CONTAINS(err.msg, "bad2.csv:2:");
    const char *bad3 = mp_test_write_file(t, "bad3.csv", "item,reward,propensity\nshoe,0,0.5\n");
    CHECK_EQ(mp_ope_log_read(bad3, MP_OPE_FORMAT_CSV, &log, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "bad3.csv:1: no column `action`");
    const char *bad4 = mp_test_write_file(t, "bad4.csv", "action,reward,propensity\nshoe,yes,0.5\n");
    CHECK_EQ(mp_ope_log_read(bad4, MP_OPE_FORMAT_CSV, &log, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "bad4.csv:2: column `reward`: expected a number, got \"yes\"");
}

MP_TEST(ope_obd_reader_errors) {
    mp_test_tmpdir(t);
    const char *hdr = ",timestamp,item_id,position,click,propensity_score,user_feature_0,user_feature_1,"
                      "user-item_affinity_0\n";
    char buf[1024];
    snprintf(buf, sizeof buf, "%s0,2019-11-24,3,1,0,0.5,a,b,0.0\n1,2019-11-24,1,3,1,0.25,a,c,0.0\n", hdr);
    const char *good = mp_test_write_file(t, "good.csv", buf);
    mp_ope_log log;
    mp_error err;
    CHECK_OK(mp_ope_log_read(good, MP_OPE_FORMAT_OBD, &log, &err), &err);
    CHECK_EQ(log.n, 2);
    CHECK_EQ(log.n_actions, 4); /* integer item ids keep their numbers */
    CHECK_EQ(log.action[0], 3);
    CHECK_EQ(log.n_slots, 2);
    CHECK_EQ(log.slot[0], 0);
    CHECK_EQ(log.slot[1], 1);
    CHECK_EQ(log.n_feat, 2);
    CHECK_EQ(log.n_ctx, 2);
    mp_ope_log_free(&log);
    snprintf(buf, sizeof buf, "%s0,2019-11-24,3,1,0,0.5,a,b,0.0\n1,2019-11-24,1,3,1,0.25,a,c\n", hdr);
    const char *short_row = mp_test_write_file(t, "short.csv", buf);
    CHECK_EQ(mp_ope_log_read(short_row, MP_OPE_FORMAT_OBD, &log, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "short.csv:3: 8 fields, but the header has 9");
    snprintf(buf, sizeof buf, "%s0,2019-11-24,3,1,0,0,a,b,0.0\n", hdr);
    const char *zero = mp_test_write_file(t, "zero.csv", buf);
    CHECK_EQ(mp_ope_log_read(zero, MP_OPE_FORMAT_OBD, &log, &err), MP_ERANGE);
    CHECK_CONTAINS(err.msg, "zero.csv:2: column `propensity_score`");
    snprintf(buf, sizeof buf, "%s0,2019-11-24,3,x,0,0.5,a,b,0.0\n", hdr);
    const char *pos = mp_test_write_file(t, "pos.csv", buf);
    CHECK_EQ(mp_ope_log_read(pos, MP_OPE_FORMAT_OBD, &log, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "pos.csv:2: column `position`: expected an integer");
    const char *nohdr = mp_test_write_file(t, "nohdr.csv", "action,reward,propensity\nshoe,0,0.5\n");
    CHECK_EQ(mp_ope_log_read(nohdr, MP_OPE_FORMAT_OBD, &log, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "nohdr.csv:1: no column `item_id`");
    CHECK_EQ(mp_ope_log_read("/nonexistent/x.csv", MP_OPE_FORMAT_OBD, &log, &err), MP_EIO);
}

MP_TEST(ope_jsonl_reader) {
    mp_test_tmpdir(t);
    const char *path = mp_test_write_file(
        t, "feedback.jsonl",
        "{\"event_id\":\"e1\",\"user\":\"u7\",\"item\":\"shoe-12\",\"position\":1,\"propensity\":0.25,\"reward\":1}\n"
        "\n"
        "{\"event_id\":\"e1\",\"user\":\"u8\",\"item\":\"hat\",\"position\":2,\"propensity\":0.5,\"reward\":0,"
        "\"extra\":[1,2]}\n");
    mp_ope_log log;
    mp_error err;
    CHECK_OK(mp_ope_log_read(path, MP_OPE_FORMAT_JSONL, &log, &err), &err);
    CHECK_EQ(log.n, 2);
    CHECK_EQ(log.n_actions, 2);
    CHECK_EQ(log.n_slots, 2);
    CHECK(log.reward[0] == 1 && log.pscore[1] == 0.5);
    mp_ope_log_free(&log);
    const char *miss = mp_test_write_file(t, "miss.jsonl",
                                          "{\"event_id\":\"e1\",\"user\":\"u7\",\"item\":\"a\",\"position\":1,"
                                          "\"reward\":1}\n");
    CHECK_EQ(mp_ope_log_read(miss, MP_OPE_FORMAT_JSONL, &log, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "miss.jsonl:1: missing field `propensity`");
    const char *badp = mp_test_write_file(t, "badp.jsonl",
                                          "{\"event_id\":\"e1\",\"user\":\"u7\",\"item\":\"a\",\"position\":1,"
                                          "\"propensity\":0,\"reward\":1}\n");
    CHECK_EQ(mp_ope_log_read(badp, MP_OPE_FORMAT_JSONL, &log, &err), MP_ERANGE);
    CHECK_CONTAINS(err.msg, "badp.jsonl:1: propensity 0");
    const char *badj = mp_test_write_file(t, "badj.jsonl", "{\"event_id\":\"e1\",\n");
    CHECK_EQ(mp_ope_log_read(badj, MP_OPE_FORMAT_JSONL, &log, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "badj.jsonl:1: invalid JSON");
    const char *badt = mp_test_write_file(t, "badt.jsonl",
                                          "{\"event_id\":\"e1\",\"user\":\"u7\",\"item\":\"a\",\"position\":\"1\"}\n");
    CHECK_EQ(mp_ope_log_read(badt, MP_OPE_FORMAT_JSONL, &log, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "field `position`: expected an integer");
}

MP_TEST(ope_reward_models) {
    /* 2 actions, 1 slot: action 0 clicked 3 of 4 times, action 1 once of 4; overall mean 0.5. */
    uint32_t act[8] = {0, 0, 0, 0, 1, 1, 1, 1};
    double rew[8] = {1, 1, 1, 0, 1, 0, 0, 0}, ps[8] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    mp_ope_log log = {0};
    log.n = 8, log.n_actions = 2, log.n_slots = 1, log.action = act, log.reward = rew, log.pscore = ps;
    mp_ope_rm_opts o;
    mp_ope_rm_opts_default(&o);
    o.kind = MP_OPE_RM_CTR;
    o.folds = 1;
    o.smoothing = 4;
    mp_ope_table q;
    mp_error err;
    CHECK_OK(mp_ope_reward_model_fit(&log, &o, &q, &err), &err);
    /* (3 + 4 * 0.5) / (4 + 4) = 0.625 and (1 + 2) / 8 = 0.375. */
    CHECK_EQ(q.rows, 1);
    CHECK_NEAR(q.v[0], 0.625, 1e-12);
    CHECK_NEAR(q.v[1], 0.375, 1e-12);
    mp_ope_table_free(&q);
    /* Logistic, no folds: ranks action 0 above action 1, between the smoothed and raw rates. */
    o.kind = MP_OPE_RM_LOGISTIC;
    o.l2 = 0.5;
    CHECK_OK(mp_ope_reward_model_fit(&log, &o, &q, &err), &err);
    CHECK(q.v[0] > 0.5 && q.v[0] < 0.75 && q.v[1] < 0.5 && q.v[1] > 0.25);
    mp_ope_table_free(&q);
    /* Cross-fitting: 4 folds, each round's row is its fold's; the model that left round i out differs. */
    o.folds = 4;
    CHECK_OK(mp_ope_reward_model_fit(&log, &o, &q, &err), &err);
    CHECK_EQ(q.rows, 4);
    int seen[4] = {0};
    for (int i = 0; i < 8; i++) seen[q.row_of[i]]++;
    for (int k = 0; k < 4; k++) CHECK_EQ(seen[k], 2);
    mp_ope_table_free(&q);
    /* Rewards outside [0, 1] are refused by the logistic model. */
    rew[0] = 3;
    CHECK_EQ(mp_ope_reward_model_fit(&log, &o, &q, &err), MP_ERANGE);
    CHECK_CONTAINS(err.msg, "outside [0, 1]");
}

/* At 300k synthetic rows, SNIPS and DR land within 10% of the known truth (bench/ope.sh prints the curve). */
MP_TEST(ope_synthetic_accuracy) {
    mp_ope_synth_opts so;
    mp_ope_synth_opts_default(&so);
    so.n = 300000;
    mp_ope_log log;
    mp_ope_table pi, q;
    double truth, vb;
    mp_error err;
    CHECK_OK(mp_ope_synth(&so, &log, &pi, &truth, &vb, &err), &err);
    CHECK(truth > 0.001 && truth < 0.05 && fabs(truth - vb) > 0.1 * truth); /* the policies differ */
    mp_ope_rm_opts rmo;
    mp_ope_rm_opts_default(&rmo);
    rmo.kind = MP_OPE_RM_CTR;
    CHECK_OK(mp_ope_reward_model_fit(&log, &rmo, &q, &err), &err);
    mp_ope_rounds r;
    CHECK_OK(mp_ope_rounds_build(&log, &pi, &q, &r, &err), &err);
    double v;
    CHECK_OK(mp_ope_estimate(&r, MP_OPE_SNIPS, 10, &v, &err), &err);
    CHECK_MSG(fabs(v - truth) / truth < 0.1, "SNIPS %g vs truth %g", v, truth);
    CHECK_OK(mp_ope_estimate(&r, MP_OPE_DR, 10, &v, &err), &err);
    CHECK_MSG(fabs(v - truth) / truth < 0.1, "DR %g vs truth %g", v, truth);
    mp_ope_rounds_free(&r);
    mp_ope_table_free(&q);
    mp_ope_table_free(&pi);
    mp_ope_log_free(&log);
}

MP_TEST(ope_greedy_policy_and_split) {
    double qv[2 * 3] = {0.1, 0.5, 0.3, /* slot 0 */ 0.2, 0.1, 0.9 /* slot 1 */};
    uint32_t act[2] = {0, 1}, slot[2] = {0, 1};
    double rew[2] = {0, 1}, ps[2] = {0.5, 0.5};
    mp_ope_log log = {0};
    log.n = 2, log.n_actions = 3, log.n_slots = 2, log.action = act, log.slot = slot, log.reward = rew;
    log.pscore = ps;
    mp_ope_table q = {qv, 1, NULL}, pi;
    mp_error err;
    CHECK_OK(mp_ope_policy_greedy(&log, &q, 0.3, &pi, &err), &err);
    /* Slot 0 shows its best item (1), slot 1 its second best (0). */
    CHECK_NEAR(pi.v[1], 0.7 + 0.1, 1e-12);
    CHECK_NEAR(pi.v[0], 0.1, 1e-12);
    CHECK_NEAR(pi.v[3 + 0], 0.8, 1e-12);
    CHECK_OK(mp_ope_policy_check(&log, &pi, &err), &err);
    mp_ope_table_free(&pi);
    mp_ope_synth_opts so;
    mp_ope_synth_opts_default(&so);
    so.n = 1000;
    mp_ope_log big, a, b;
    double truth;
    CHECK_OK(mp_ope_synth(&so, &big, &pi, &truth, NULL, &err), &err);
    /* The exact value of a policy in the synthetic world: the evaluation policy's is the truth returned above. */
    double v;
    CHECK_OK(mp_ope_synth_policy_value(&so, &pi, &v, &err), &err);
    CHECK_NEAR(v, truth, 1e-15);
    mp_ope_table two = {pi.v, 2, NULL};
    CHECK_EQ(mp_ope_synth_policy_value(&so, &two, &v, &err), MP_EINVAL);
    CHECK_OK(mp_ope_log_split(&big, 0.5, 3, &a, &b, &err), &err);
    CHECK_EQ(a.n + b.n, 1000);
    CHECK(a.n > 400 && a.n < 600);
    CHECK_OK(mp_ope_log_check(&a, "a", &err), &err);
    CHECK_OK(mp_ope_log_check(&b, "b", &err), &err);
    mp_ope_log_free(&a);
    mp_ope_log_free(&b);
    mp_ope_log_free(&big);
    mp_ope_table_free(&pi);
}

/* The Open Bandit Dataset (Men's): the reader's counts match SOURCE.md and, for BTS evaluated from the random
 * log, every estimator equals the reference formula on the same inputs and the intervals of IPS, SNIPS and DR
 * cover the on-policy CTR of the BTS log (0.0069; it lies near their upper ends, as the issue's own IPW check
 * found). Skipped when the data is absent. */
MP_TEST(ope_obd_men) {
    const char *rnd = mp_test_shared_data("open-bandit-dataset/random/men/men.csv");
    const char *bts = mp_test_shared_data("open-bandit-dataset/bts/men/men.csv");
    const char *prior = mp_test_shared_data("open-bandit-dataset/prior_bts.yaml");
    if (!rnd || !bts || !prior) return;
    char rnd_path[1024], bts_path[1024], prior_path[1024];
    snprintf(rnd_path, sizeof rnd_path, "%s", rnd);
    snprintf(bts_path, sizeof bts_path, "%s", bts);
    snprintf(prior_path, sizeof prior_path, "%s", prior);
    mp_ope_log log, on;
    mp_error err;
    CHECK_OK(mp_ope_log_read(rnd_path, MP_OPE_FORMAT_OBD, &log, &err), &err);
    CHECK_EQ(log.n, 10000);
    CHECK_EQ(log.n_actions, 34);
    CHECK_EQ(log.n_slots, 3);
    double clicks = 0, clicks_pos[3] = {0};
    for (size_t i = 0; i < log.n; i++) clicks += log.reward[i], clicks_pos[log.slot[i]] += log.reward[i];
    CHECK_EQ((long long)clicks, 46);
    CHECK(clicks_pos[0] == 10 && clicks_pos[1] == 22 && clicks_pos[2] == 14);
    CHECK_OK(mp_ope_log_read(bts_path, MP_OPE_FORMAT_OBD, &on, &err), &err);
    double on_clicks = 0;
    for (size_t i = 0; i < on.n; i++) on_clicks += on.reward[i];
    CHECK_EQ((long long)on_clicks, 69);
    double *al, *be;
    uint32_t na;
    CHECK_OK(mp_ope_read_bts_prior(prior_path, "men", &al, &be, &na, &err), &err);
    mp_ope_table pi, q;
    CHECK_OK(mp_ope_policy_bts(al, be, na, 3, 100000, 12345, &pi, &err), &err); /* as `magpie ope` */
    free(al);
    free(be);
    mp_ope_rm_opts rmo;
    mp_ope_rm_opts_default(&rmo);
    CHECK_OK(mp_ope_reward_model_fit(&log, &rmo, &q, &err), &err);
    mp_ope_rounds r;
    CHECK_OK(mp_ope_rounds_build(&log, &pi, &q, &r, &err), &err);
    double sw = 0, swr = 0, sm = 0, sc = 0;
    for (size_t i = 0; i < log.n; i++) {
        const double *p = pi.v + log.slot[i] * 34, *qq = q.v + ((size_t)q.row_of[i] * 3 + log.slot[i]) * 34;
        double w = p[log.action[i]] / log.pscore[i], m = 0;
        for (int a = 0; a < 34; a++) m += p[a] * qq[a];
        sw += w, swr += w * log.reward[i], sm += m, sc += w * (log.reward[i] - qq[log.action[i]]);
    }
    double n = (double)log.n, v;
    CHECK_OK(mp_ope_estimate(&r, MP_OPE_IPS, 10, &v, &err), &err);
    CHECK_NEAR(v, swr / n, 1e-9);
    CHECK_OK(mp_ope_estimate(&r, MP_OPE_SNIPS, 10, &v, &err), &err);
    CHECK_NEAR(v, swr / sw, 1e-9);
    CHECK_OK(mp_ope_estimate(&r, MP_OPE_DM, 10, &v, &err), &err);
    CHECK_NEAR(v, sm / n, 1e-9);
    CHECK_OK(mp_ope_estimate(&r, MP_OPE_DR, 10, &v, &err), &err);
    CHECK_NEAR(v, (sm + sc) / n, 1e-9);
    CHECK_OK(mp_ope_estimate(&r, MP_OPE_SNDR, 10, &v, &err), &err);
    CHECK_NEAR(v, sm / n + sc / sw, 1e-9);
    mp_ope_opts o;
    mp_ope_opts_default(&o);
    mp_ope_result res[MP_OPE_N_ESTIMATORS];
    CHECK_OK(mp_ope_estimate_all(&r, &o, res, &err), &err); /* the defaults of `magpie ope`: B = 1000, seed 12345 */
    double truth = on_clicks / (double)on.n;
    CHECK_MSG(res[MP_OPE_IPS].lo <= truth && truth <= res[MP_OPE_IPS].hi, "IPS [%g, %g] vs %g", res[MP_OPE_IPS].lo,
              res[MP_OPE_IPS].hi, truth);
    CHECK(res[MP_OPE_SNIPS].lo <= truth && truth <= res[MP_OPE_SNIPS].hi);
    CHECK(res[MP_OPE_DR].lo <= truth && truth <= res[MP_OPE_DR].hi);
    mp_ope_rounds_free(&r);
    mp_ope_table_free(&q);
    mp_ope_table_free(&pi);
    mp_ope_log_free(&log);
    mp_ope_log_free(&on);
}
