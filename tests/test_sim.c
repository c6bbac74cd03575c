/* tests/test_sim.c: the shopper simulator and its policies (magpie/sim.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/dataset.h"
#include "magpie/rng.h"
#include "magpie/sim.h"
#include "test.h"

/* A small generated world: users and items in 4 taste clusters, 5 categories, popularity from cluster size. */
static int small_world(uint32_t nu, uint32_t ni, mp_sim_world **w, mp_error *err) {
    enum { D = 8 };
    float *uv = malloc((size_t)nu * D * sizeof(float)), *iv = malloc((size_t)ni * D * sizeof(float));
    uint32_t *cat = malloc(ni * sizeof(uint32_t));
    double *pop = malloc(ni * sizeof(double));
    mp_rng rng;
    mp_rng_seed(&rng, 99);
    for (uint32_t u = 0; u < nu; u++)
        for (int d = 0; d < D; d++) uv[(size_t)u * D + d] = (float)((d == (int)(u % 4) ? 1.0 : 0.0) + 0.3 * mp_rng_normal(&rng));
    for (uint32_t i = 0; i < ni; i++) {
        for (int d = 0; d < D; d++) iv[(size_t)i * D + d] = (float)((d == (int)(i % 4) ? 1.0 : 0.0) + 0.3 * mp_rng_normal(&rng));
        cat[i] = i % 5;
        pop[i] = (double)(i % 17);
    }
    int rc = mp_sim_world_create(nu, ni, D, uv, iv, cat, 5, pop, w, err);
    free(uv);
    free(iv);
    free(cat);
    free(pop);
    return rc;
}

static void small_opts(mp_sim_opts *o) {
    mp_sim_opts_default(o);
    o->n_cands = 30;
    o->slate = 5;
}

MP_TEST(sim_deterministic_with_seed) {
    mp_error err;
    mp_sim_world *w = NULL;
    CHECK_OK(small_world(60, 120, &w, &err), &err);
    mp_sim_opts o;
    small_opts(&o);
    mp_sim_policy g = mp_sim_policy_greedy();
    mp_sim_result a, b, c;
    CHECK_OK(mp_sim_run(w, &o, &g, 7, &a, &err), &err);
    CHECK_OK(mp_sim_run(w, &o, &g, 7, &b, &err), &err);
    CHECK_OK(mp_sim_run(w, &o, &g, 8, &c, &err), &err);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    CHECK(a.clicks != c.clicks || a.purchases != c.purchases || a.retention30 != c.retention30);
    CHECK_EQ(a.users, 60);
    CHECK_EQ(a.days, 30);
    CHECK(a.sessions > 0 && a.impressions == a.sessions * 5);
    CHECK(a.coverage > 0 && a.coverage <= 1);
    CHECK(a.gini >= 0 && a.gini <= 1);
    CHECK(a.regret >= -1e-9);
    CHECK(a.retention30 <= a.retention7);
    /* a stochastic bandit is deterministic with a seed too (its own stream) */
    mp_sim_bandit *b1 = NULL, *b2 = NULL;
    CHECK_OK(mp_sim_bandit_create("softmax:tau=0.5", NULL, 60, &b1, &err), &err);
    CHECK_OK(mp_sim_bandit_create("softmax:tau=0.5", NULL, 60, &b2, &err), &err);
    mp_sim_policy p1 = mp_sim_bandit_policy(b1), p2 = mp_sim_bandit_policy(b2);
    CHECK_OK(mp_sim_run(w, &o, &p1, 3, &a, &err), &err);
    CHECK_OK(mp_sim_run(w, &o, &p2, 3, &b, &err), &err);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    mp_sim_bandit_destroy(b1);
    mp_sim_bandit_destroy(b2);
    mp_sim_world_destroy(w);
}

/* Shows the same slate (the first k candidates by item id order of the first visit) every day. */
typedef struct {
    uint32_t fixed[8];
    int have[512];
    uint32_t per_user[512][8];
} same_ctx;

static int same_choose(void *ctx, const mp_sim_state *st, const mp_sim_cand *cands, size_t n, size_t k, mp_rng *rng,
                       uint32_t *out, mp_error *err) {
    same_ctx *s = ctx;
    if (!s->have[st->user]) {
        for (size_t q = 0; q < k; q++) s->per_user[st->user][q] = cands[q].item;
        s->have[st->user] = 1;
    }
    /* the same items when still candidates (not bought), else fill with the best others */
    uint8_t taken[256] = {0};
    size_t m = 0;
    for (size_t q = 0; q < k; q++)
        for (size_t i = 0; i < n; i++)
            if (cands[i].item == s->per_user[st->user][q] && !taken[i]) {
                out[m++] = (uint32_t)i;
                taken[i] = 1;
                break;
            }
    for (size_t i = 0; i < n && m < k; i++)
        if (!taken[i]) {
            out[m++] = (uint32_t)i;
            taken[i] = 1;
        }
    return MP_OK;
}

/* Rotates through the relevant candidates: day d shows candidates d*k .. d*k+k-1 of the top 3k (cyclic). */
static int vary_choose(void *ctx, const mp_sim_state *st, const mp_sim_cand *cands, size_t n, size_t k, mp_rng *rng,
                       uint32_t *out, mp_error *err) {
    size_t span = 3 * k < n ? 3 * k : n;
    for (size_t q = 0; q < k; q++) out[q] = (uint32_t)((st->day * k + q) % span);
    return MP_OK;
}

MP_TEST(sim_repeats_churn_faster_than_variety) {
    mp_error err;
    mp_sim_world *w = NULL;
    CHECK_OK(small_world(400, 200, &w, &err), &err);
    mp_sim_opts o;
    small_opts(&o);
    same_ctx *sc = calloc(1, sizeof *sc);
    CHECK(sc);
    mp_sim_policy same = {same_choose, NULL, NULL, sc}, vary = {vary_choose, NULL, NULL, NULL};
    double rs = 0, rv = 0, bs = 0, bv = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        memset(sc, 0, sizeof *sc);
        mp_sim_result a, b;
        CHECK_OK(mp_sim_run(w, &o, &same, seed, &a, &err), &err);
        CHECK_OK(mp_sim_run(w, &o, &vary, seed, &b, &err), &err);
        rs += a.retention30;
        rv += b.retention30;
        bs += a.retention7;
        bv += b.retention7;
    }
    free(sc);
    CHECK_MSG(rs + 0.3 < rv, "30-day retention: same items %.3f vs varied %.3f (3 seeds summed)", rs, rv);
    CHECK_MSG(bs < bv, "7-day retention: same items %.3f vs varied %.3f", bs, bv);
    mp_sim_world_destroy(w);
}

MP_TEST(sim_metrics_hand_made) {
    double eq[4] = {2, 2, 2, 2}, conc[4] = {0, 0, 0, 1}, zero[3] = {0, 0, 0}, two[2] = {1, 3};
    CHECK_NEAR(mp_sim_gini(eq, 4), 0.0, 1e-12);
    CHECK_NEAR(mp_sim_gini(conc, 4), 0.75, 1e-12);
    CHECK_NEAR(mp_sim_gini(zero, 3), 0.0, 1e-12);
    /* (2*1-3)*1 + (2*2-3)*3 = 2; 2 / (2 * 4) */
    CHECK_NEAR(mp_sim_gini(two, 2), 0.25, 1e-12);
    uint64_t counts[4] = {0, 2, 0, 1};
    CHECK_NEAR(mp_sim_coverage(counts, 4), 0.5, 1e-12);
    CHECK_NEAR(mp_sim_coverage(counts, 0), 0.0, 1e-12);
    uint32_t churn[4] = {0, 3, 8, 30};
    CHECK_NEAR(mp_sim_retention(churn, 4, 7), 0.75, 1e-12);
    CHECK_NEAR(mp_sim_retention(churn, 4, 30), 0.25, 1e-12);
    CHECK_NEAR(mp_sim_retention(churn, 4, 2), 1.0, 1e-12);
    double x[3] = {1, 2, 3}, m, h;
    mp_sim_ci(x, 3, &m, &h);
    CHECK_NEAR(m, 2.0, 1e-12);
    CHECK_NEAR(h, 4.303 / sqrt(3.0), 1e-9);
    mp_sim_ci(x, 1, &m, &h);
    CHECK_NEAR(m, 1.0, 1e-12);
    CHECK(isnan(h));
}

MP_TEST(sim_rl_training_improves_objective) {
    mp_error err;
    mp_sim_world *w = NULL;
    CHECK_OK(small_world(150, 150, &w, &err), &err);
    mp_sim_opts o;
    small_opts(&o);
    o.days = 20;
    mp_sim_rl_opts ro;
    mp_sim_rl_opts_default(&ro);
    ro.epochs = 40;
    ro.batch_users = 0;
    ro.seed = 500;
    mp_sim_rl *r = NULL;
    CHECK_OK(mp_sim_rl_create(&ro, &r, &err), &err);
    mp_sim_policy p = mp_sim_rl_policy(r);
    /* the training objective: the stochastic policy's mean objective on training-distribution seeds */
    double before = 0, after = 0;
    mp_sim_result res;
    for (uint64_t s = 0; s < 4; s++) {
        CHECK_OK(mp_sim_run(w, &o, &p, 900 + s, &res, &err), &err);
        before += res.objective / res.users;
    }
    double curve[40];
    CHECK_OK(mp_sim_rl_train(r, w, &o, curve, &err), &err);
    for (uint64_t s = 0; s < 4; s++) {
        CHECK_OK(mp_sim_run(w, &o, &p, 900 + s, &res, &err), &err);
        after += res.objective / res.users;
    }
    const double *th = mp_sim_rl_theta(r);
    CHECK_MSG(after > before * 1.05, "objective per shopper before %.3f, after %.3f (theta recency %.2f)", before / 4,
              after / 4, th[1]);
    double c0 = 0, c1 = 0;
    for (int e = 0; e < 10; e++) {
        c0 += curve[e] / 10;
        c1 += curve[30 + e] / 10;
    }
    CHECK_MSG(c1 > c0, "training curve %.3f -> %.3f", c0, c1);
    /* it learned that repeating recently shown items hurts */
    CHECK(th[1] < 0);
    mp_sim_rl_destroy(r);
    mp_sim_world_destroy(w);
}

MP_TEST(sim_world_from_fitted_als) {
    mp_error err;
    enum { NU = 40, NI = 60 };
    mp_interaction ev[NU * 10];
    size_t n = 0;
    mp_rng rng;
    mp_rng_seed(&rng, 5);
    for (uint32_t u = 0; u < NU; u++)
        for (int j = 0; j < 10; j++) {
            uint32_t base = u < NU / 2 ? 0 : NI / 2;
            ev[n++] = (mp_interaction){.user = u, .item = base + (uint32_t)mp_rng_below(&rng, NI / 2),
                                       .ts = 1000 + j, .type = MP_EV_VIEW};
        }
    mp_dataset *ds = NULL;
    CHECK_OK(mp_dataset_from_interactions(&ds, NU, NI, ev, n, &err), &err);
    mp_sim_world *w = NULL;
    CHECK_OK(mp_sim_world_fit(ds, "als", "factors=8,iterations=4,threads=1", 1, &w, &err), &err);
    CHECK_EQ(mp_sim_world_users(w), NU);
    CHECK_EQ(mp_sim_world_items(w), NI);
    mp_sim_opts o;
    small_opts(&o);
    o.days = 10;
    mp_sim_policy g = mp_sim_policy_greedy();
    mp_sim_result r;
    CHECK_OK(mp_sim_run(w, &o, &g, 1, &r, &err), &err);
    CHECK(r.sessions > 0);
    /* a model without retrieval vectors is refused */
    mp_sim_world *w2 = NULL;
    int rc = mp_sim_world_fit(ds, "itemknn", NULL, 1, &w2, &err);
    CHECK(rc != MP_OK && w2 == NULL);
    mp_sim_world_destroy(w);
    mp_dataset_destroy(ds);
}

MP_TEST(sim_bandits_and_protection_run) {
    mp_error err;
    mp_sim_world *w = NULL;
    CHECK_OK(small_world(50, 100, &w, &err), &err);
    mp_sim_opts o;
    small_opts(&o);
    o.days = 10;
    mp_protect_opts po;
    mp_protect_opts_default(&po);
    po.fatigue_weight = 1;
    po.fatigue_half_life = 3 * 86400.0;
    const char *specs[] = {"greedy", "egreedy:epsilon=0.2", "linucb:alpha=1", "ts:v=0.5", "squarecb:gamma=50"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        for (int prot = 0; prot < 2; prot++) {
            mp_sim_bandit *b = NULL;
            CHECK_OK(mp_sim_bandit_create(specs[i], prot ? &po : NULL, 50, &b, &err), &err);
            mp_sim_policy p = mp_sim_bandit_policy(b);
            mp_sim_result r;
            CHECK_OK(mp_sim_run(w, &o, &p, 11, &r, &err), &err);
            CHECK(r.sessions > 0 && r.impressions == r.sessions * 5);
            mp_sim_bandit_destroy(b);
        }
    mp_sim_bandit *b = NULL;
    CHECK(mp_sim_bandit_create("nosuch:x=1", NULL, 50, &b, &err) == MP_EINVAL && b == NULL);
    mp_sim_world_destroy(w);
}

static int bad_choose(void *ctx, const mp_sim_state *st, const mp_sim_cand *cands, size_t n, size_t k, mp_rng *rng,
                      uint32_t *out, mp_error *err) {
    for (size_t q = 0; q < k; q++) out[q] = 0; /* duplicates */
    return MP_OK;
}

MP_TEST(sim_errors) {
    mp_error err;
    mp_sim_opts o;
    mp_sim_opts_default(&o);
    CHECK(mp_sim_opts_set(&o, "bogus", "1", &err) == MP_EINVAL);
    CHECK_CONTAINS(err.msg, "unknown simulator option `bogus`");
    CHECK_CONTAINS(err.msg, "churn_mid");
    CHECK(mp_sim_opts_set(&o, "drift", "abc", &err) == MP_EINVAL);
    CHECK_CONTAINS(err.msg, "`drift`");
    CHECK(mp_sim_opts_set(&o, "days", "-3", &err) == MP_EINVAL);
    CHECK(mp_sim_opts_parse(&o, "days=5,slate", &err) == MP_EINVAL);
    CHECK_CONTAINS(err.msg, "key=value");
    CHECK_OK(mp_sim_opts_parse(&o, "days=5,slate=4,n_cands=20", &err), &err);
    CHECK_EQ(o.days, 5);
    CHECK_EQ(o.slate, 4);
    o.n_cands = 3;
    CHECK(mp_sim_opts_check(&o, &err) == MP_EINVAL);
    CHECK_CONTAINS(err.msg, "n_cands");
    float v[2] = {1, NAN};
    mp_sim_world *w = NULL;
    CHECK(mp_sim_world_create(1, 1, 2, v, v, NULL, 1, NULL, &w, &err) == MP_EINVAL && w == NULL);
    CHECK_OK(small_world(10, 40, &w, &err), &err);
    small_opts(&o);
    mp_sim_policy bad = {bad_choose, NULL, NULL, NULL};
    mp_sim_result r;
    CHECK(mp_sim_run(w, &o, &bad, 1, &r, &err) == MP_EINVAL);
    CHECK_CONTAINS(err.msg, "twice");
    mp_sim_rl_opts ro;
    mp_sim_rl_opts_default(&ro);
    ro.lr = 0;
    mp_sim_rl *rl = NULL;
    CHECK(mp_sim_rl_create(&ro, &rl, &err) == MP_EINVAL && rl == NULL);
    mp_sim_world_destroy(w);
}

/* ---- off-policy REINFORCE with the top-K correction ---- */

MP_TEST(sim_offpolicy_weights_hand_example) {
    /* lambda_K = K (1 - pi)^(K - 1) */
    CHECK_NEAR(mp_sim_topk_multiplier(0.2, 3), 3 * 0.8 * 0.8, 1e-12);
    CHECK_NEAR(mp_sim_topk_multiplier(0.5, 1), 1.0, 1e-12);
    CHECK_NEAR(mp_sim_topk_multiplier(0.0, 10), 10.0, 1e-12);
    CHECK_NEAR(mp_sim_topk_multiplier(1.0, 4), 0.0, 1e-12);
    /* min(pi / beta, cap) */
    CHECK_NEAR(mp_sim_is_weight(0.3, 0.1, 10), 3.0, 1e-12);
    CHECK_NEAR(mp_sim_is_weight(0.9, 0.05, 10), 10.0, 1e-12);
    CHECK_NEAR(mp_sim_is_weight(0.9, 0.05, 0), 18.0, 1e-12);
    /* the whole per-slate term on 3 candidates: logits theta . f = f_score (theta = e_0) */
    mp_sim_cand c[3];
    memset(c, 0, sizeof c);
    c[0].f[0] = 0;
    c[1].f[0] = 1;
    c[2].f[0] = 2;
    c[0].f[3] = 1; /* a second feature, so the gradient is not just along score */
    double theta[MP_SIM_NFEAT] = {1};
    uint32_t shown[2] = {2, 0};
    double beta[2] = {0.05, 0.5};
    double z = 1 + exp(1.0) + exp(2.0), p[3] = {1 / z, exp(1.0) / z, exp(2.0) / z};
    double ef0 = p[1] * 1 + p[2] * 2, ef3 = p[0];
    mp_sim_rl_opts o;
    mp_sim_rl_opts_default(&o);
    CHECK_NEAR(o.is_cap, 10.0, 0);
    CHECK_EQ(o.topk_correction, 1);
    CHECK_EQ(o.offpolicy, 0);
    double g[MP_SIM_NFEAT], pi[2];
    mp_sim_offpolicy_grad(&o, theta, c, 3, shown, beta, 2, g, NULL, pi);
    CHECK_NEAR(pi[0], p[2], 1e-12);
    CHECK_NEAR(pi[1], p[0], 1e-12);
    /* item 2: pi / beta = 13.3 -> capped at 10; item 0: 0.18 */
    double w2 = 10.0 * 2 * (1 - p[2]), w0 = (p[0] / 0.5) * 2 * (1 - p[0]);
    CHECK(p[2] / 0.05 > 10);
    CHECK_NEAR(g[0], w2 * (2 - ef0) + w0 * (0 - ef0), 1e-9);
    CHECK_NEAR(g[3], w2 * (0 - ef3) + w0 * (1 - ef3), 1e-9);
    CHECK_NEAR(g[1], 0.0, 1e-12);
    /* without the top-K correction: plain capped IS */
    o.topk_correction = 0;
    mp_sim_offpolicy_grad(&o, theta, c, 3, shown, beta, 2, g, NULL, NULL);
    CHECK_NEAR(g[0], 10.0 * (2 - ef0) + (p[0] / 0.5) * (0 - ef0), 1e-9);
    /* uncapped */
    o.is_cap = 0;
    mp_sim_offpolicy_grad(&o, theta, c, 3, shown, beta, 2, g, NULL, NULL);
    CHECK_NEAR(g[0], (p[2] / 0.05) * (2 - ef0) + (p[0] / 0.5) * (0 - ef0), 1e-9);
    /* per position of the slate: position 1 is a softmax over the candidates left after position 0 ({0, 1}) */
    o.is_cap = 10;
    o.topk_correction = 0;
    o.per_position = 1;
    double bc[2] = {0.5, 0.4};
    mp_sim_offpolicy_grad(&o, theta, c, 3, shown, bc, 2, g, NULL, pi);
    double q1 = 1 / (1 + exp(1.0)), e0 = exp(1.0) / (1 + exp(1.0)), e3 = q1;
    CHECK_NEAR(pi[0], p[2], 1e-12);
    CHECK_NEAR(pi[1], q1, 1e-12);
    CHECK_NEAR(g[0], (p[2] / 0.5) * (2 - ef0) + (q1 / 0.4) * (0 - e0), 1e-9);
    CHECK_NEAR(g[3], (p[2] / 0.5) * (0 - ef3) + (q1 / 0.4) * (1 - e3), 1e-9);
    /* with beta = pi it is the on-policy Plackett-Luce score function */
    bc[0] = p[2];
    bc[1] = q1;
    o.is_cap = 0;
    mp_sim_offpolicy_grad(&o, theta, c, 3, shown, bc, 2, g, NULL, NULL);
    CHECK_NEAR(g[0], (2 - ef0) + (0 - e0), 1e-9);
    /* behaviour specs */
    mp_error err;
    mp_sim_rl_opts_default(&o);
    CHECK_OK(mp_sim_rl_parse_behavior(&o, "uniform", &err), &err);
    CHECK_NEAR(o.behavior_tau, 0.0, 0);
    CHECK_OK(mp_sim_rl_parse_behavior(&o, "softmax:tau=0.25", &err), &err);
    CHECK_NEAR(o.behavior_tau, 0.25, 0);
    CHECK(mp_sim_rl_parse_behavior(&o, "softmax:tau=0", &err) == MP_EINVAL);
    CHECK(mp_sim_rl_parse_behavior(&o, "greedy", &err) == MP_EINVAL);
    CHECK_CONTAINS(err.msg, "softmax:tau=X");
    o.is_cap = -1;
    mp_sim_rl *r = NULL;
    CHECK(mp_sim_rl_create(&o, &r, &err) == MP_EINVAL && r == NULL);
}

/* A world where only relevance pays: no boredom, satiation or churn, no per-day or novelty rewards, exact tastes.
 * The reward then follows the fitted score (feature 0) alone. */
static void relevance_only_opts(mp_sim_opts *o) {
    small_opts(o);
    o->days = 6;
    o->taste_noise = 0;
    o->drift = 0;
    o->rel_weight = 3;
    o->bore_item = o->bore_cat = 0;
    o->sat_weight = 0;
    o->irr_weight = o->rep_weight = 0;
    o->churn_max = 0;
    o->stay_reward = 0;
    o->novel_reward = 0;
    o->click_reward = 1;
}

/* mode 0: the paper's estimator (top-K on); 1: capped IS only; 2: capped IS per slate position; 3: mode 0 with
 * per-item credit */
static void train_offpolicy(const mp_sim_world *w, const mp_sim_opts *o, uint64_t seed, int mode, double *theta,
                            double *curve_first, mp_error *err, int *rc) {
    mp_sim_rl_opts ro;
    mp_sim_rl_opts_default(&ro);
    ro.epochs = 25;
    ro.batch_users = 60;
    ro.seed = seed;
    ro.theta0 = 0; /* start uniform, like the behaviour */
    ro.offpolicy = 1;
    ro.behavior_tau = 0; /* uniform behaviour */
    ro.topk_correction = mode == 0 || mode == 3;
    ro.per_position = mode == 2;
    ro.item_credit = mode == 3;
    mp_sim_rl *r = NULL;
    double curve[25];
    *rc = mp_sim_rl_create(&ro, &r, err);
    if (*rc) return;
    *rc = mp_sim_rl_train(r, w, o, curve, err);
    memcpy(theta, mp_sim_rl_theta(r), MP_SIM_NFEAT * sizeof(double));
    *curve_first = curve[0];
    mp_sim_rl_destroy(r);
}

MP_TEST(sim_offpolicy_learns_rewarded_feature_from_uniform_logs) {
    mp_error err;
    mp_sim_world *w = NULL;
    CHECK_OK(small_world(120, 150, &w, &err), &err);
    mp_sim_opts o;
    relevance_only_opts(&o);
    for (int mode = 0; mode < 4; mode++) {
        double th[MP_SIM_NFEAT], c0;
        int rc;
        train_offpolicy(w, &o, 77, mode, th, &c0, &err, &rc);
        CHECK_OK(rc, &err);
        /* theta started at 0; the logs are uniform, so only the importance-weighted gradient can find the score */
        CHECK_MSG(th[0] > 1.0, "mode %d: theta score %.3f (started at 0)", mode, th[0]);
        for (int f = 1; f < MP_SIM_NFEAT; f++)
            CHECK_MSG(fabs(th[f]) < th[0], "mode %d: theta[%d] = %.3f vs score %.3f", mode, f, th[f], th[0]);
        /* the learned policy beats the uniform behaviour it learned from on fresh seeds */
        mp_sim_rl_opts ro;
        mp_sim_rl_opts_default(&ro);
        ro.theta0 = 0;
        mp_sim_rl *uni = NULL, *learned = NULL;
        CHECK_OK(mp_sim_rl_create(&ro, &uni, &err), &err);
        ro.theta0 = th[0];
        CHECK_OK(mp_sim_rl_create(&ro, &learned, &err), &err);
        mp_sim_policy pu = mp_sim_rl_policy(uni), pl = mp_sim_rl_policy(learned);
        mp_sim_result a, b;
        CHECK_OK(mp_sim_run(w, &o, &pu, 5, &a, &err), &err);
        CHECK_OK(mp_sim_run(w, &o, &pl, 5, &b, &err), &err);
        CHECK_MSG(b.clicks > a.clicks * 1.2, "clicks: uniform %.0f, learned %.0f", a.clicks, b.clicks);
        mp_sim_rl_destroy(uni);
        mp_sim_rl_destroy(learned);
    }
    mp_sim_world_destroy(w);
}

MP_TEST(sim_offpolicy_deterministic_with_seed) {
    mp_error err;
    mp_sim_world *w = NULL;
    CHECK_OK(small_world(60, 100, &w, &err), &err);
    mp_sim_opts o;
    small_opts(&o);
    o.days = 5;
    double a[MP_SIM_NFEAT], b[MP_SIM_NFEAT], c[MP_SIM_NFEAT], ca, cb, cc;
    int rc;
    train_offpolicy(w, &o, 3, 0, a, &ca, &err, &rc);
    CHECK_OK(rc, &err);
    train_offpolicy(w, &o, 3, 0, b, &cb, &err, &rc);
    CHECK_OK(rc, &err);
    train_offpolicy(w, &o, 4, 0, c, &cc, &err, &rc);
    CHECK_OK(rc, &err);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(ca == cb);
    CHECK(memcmp(a, c, sizeof a) != 0);
    mp_sim_world_destroy(w);
}
