/* tests/test_bandit.c: exploration policies, the event log and shopper protection (magpie/bandit.h). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/bandit.h"
#include "magpie/ope.h"
#include "magpie/rng.h"
#include "test.h"

static void make_cands(mp_bandit_cand *c, size_t n, const double *scores) {
    memset(c, 0, n * sizeof *c);
    for (size_t i = 0; i < n; i++) {
        c[i].item = (uint32_t)i;
        c[i].score = scores[i];
        c[i].category = UINT32_MAX;
        c[i].price = NAN;
    }
}

MP_TEST(bandit_parse) {
    mp_error err;
    mp_bandit_opts o;
    mp_bandit_opts_default(&o);
    CHECK_OK(mp_bandit_parse("egreedy:epsilon=0.25,seed=7", &o, &err), &err);
    CHECK_EQ(o.kind, MP_BANDIT_EGREEDY);
    CHECK_NEAR(o.epsilon, 0.25, 1e-15);
    CHECK_EQ(o.seed, 7);
    CHECK_OK(mp_bandit_parse("linucb:alpha=0.5,disjoint=1,intercept=1,lambda=2", &o, &err), &err);
    CHECK_EQ(o.kind, MP_BANDIT_LINUCB);
    CHECK(o.disjoint && o.intercept);
    CHECK_NEAR(o.lambda, 2, 0);
    CHECK_OK(mp_bandit_parse("ts:v=0.1,draws=50", &o, &err), &err);
    CHECK_EQ(o.draws, 50);
    CHECK_OK(mp_bandit_parse("squarecb:gamma=30", &o, &err), &err);
    CHECK_NEAR(o.gamma, 30, 0);
    CHECK_OK(mp_bandit_parse("softmax", &o, &err), &err);
    CHECK_EQ(o.kind, MP_BANDIT_SOFTMAX);
    mp_bandit_opts before = o;
    CHECK_EQ(mp_bandit_parse("egreedy:eps=0.1", &o, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "unknown key `eps`");
    CHECK_CONTAINS(err.msg, "epsilon");
    CHECK_EQ(o.kind, before.kind); /* unchanged on error */
    CHECK_EQ(mp_bandit_parse("egreedy:epsilon=2", &o, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "`epsilon`");
    CHECK_EQ(mp_bandit_parse("softmax:tau=abc", &o, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "key `tau`: expected a number");
    CHECK_EQ(mp_bandit_parse("softmax:tau=0", &o, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "`tau`");
    CHECK_EQ(mp_bandit_parse("linucb:gamma=1", &o, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "unknown key `gamma` for linucb");
    CHECK_EQ(mp_bandit_parse("bandito", &o, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "unknown policy `bandito`");
    CHECK_EQ(mp_bandit_parse("ts:v", &o, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "key=value");
    CHECK_EQ(mp_bandit_parse("linucb:disjoint=2", &o, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "`disjoint`");
}

/* A policy with a trained shared model over dim-2 features, for TS and LinUCB. */
static int trained(mp_bandit_kind kind, mp_bandit **out, mp_error *err) {
    mp_bandit_opts o;
    mp_bandit_opts_default(&o);
    o.kind = kind;
    o.dim = 2;
    o.v = 1.0;
    o.seed = 99;
    int rc = mp_bandit_create(&o, out, err);
    if (rc) return rc;
    mp_rng r;
    mp_rng_seed(&r, 5);
    for (int i = 0; i < 20 && !rc; i++) {
        float x[2] = {(float)mp_rng_normal(&r), (float)mp_rng_normal(&r)};
        rc = mp_bandit_update(*out, NULL, x, 0.0, 0.3 * x[0] - 0.2 * x[1] + 0.3 * mp_rng_normal(&r), err);
    }
    return rc;
}

MP_TEST(bandit_propensities_match_sampling) {
    mp_error err;
    const double scores[6] = {0.5, 0.4, 0.45, 0.1, 0.0, 0.3};
    float xs[6][2] = {{1, 0}, {0, 1}, {1, 1}, {-1, 0}, {0.5f, -1}, {0, 0}};
    mp_bandit_cand c[6];
    make_cands(c, 6, scores);
    for (int i = 0; i < 6; i++)
        c[i].x = xs[i];
    const char *specs[] = {"egreedy:epsilon=0.3", "softmax:tau=0.1", "squarecb:gamma=20", "uniform", "ts:v=1,draws=0"};
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        mp_bandit_opts o;
        mp_bandit_opts_default(&o);
        CHECK_OK(mp_bandit_parse(specs[s], &o, &err), &err);
        mp_bandit *b;
        if (o.kind == MP_BANDIT_TS)
            CHECK_OK(trained(MP_BANDIT_TS, &b, &err), &err);
        else
            CHECK_OK(mp_bandit_create(&o, &b, &err), &err);
        double p[6], sum = 0;
        CHECK_OK(mp_bandit_probs(b, &o, c, 6, NULL, 0, p, &err), &err);
        for (int i = 0; i < 6; i++) {
            CHECK(p[i] >= 0 && p[i] <= 1);
            sum += p[i];
        }
        CHECK_MSG(fabs(sum - 1) < 1e-9, "%s: probabilities sum to %.12g", specs[s], sum);
        /* empirical frequencies of single picks */
        const int N = 20000;
        int cnt[6] = {0};
        for (int it = 0; it < N; it++) {
            mp_bandit_pick pk;
            CHECK_OK(mp_bandit_select(b, &o, c, 6, 1, &pk, &err), &err);
            cnt[pk.index]++;
            if (o.kind != MP_BANDIT_TS)
                CHECK_MSG(fabs(pk.propensity - p[pk.index]) < 1e-12, "%s: propensity %g vs prob %g", specs[s],
                          pk.propensity, p[pk.index]);
            else
                CHECK(isnan(pk.propensity)); /* draws=0: not estimated */
        }
        /* chi-square goodness of fit over the cells with p > 0 (df <= 5; 99.9% quantile of chi2(5) is 20.5);
         * TS's reference probabilities are themselves a 1000-draw estimate: compare by tolerance instead. */
        double chi = 0;
        for (int i = 0; i < 6; i++) {
            double e = p[i] * N;
            if (o.kind == MP_BANDIT_TS) {
                CHECK_MSG(fabs(cnt[i] / (double)N - p[i]) < 0.05, "ts: cell %d freq %g vs %g", i, cnt[i] / (double)N,
                          p[i]);
                continue;
            }
            if (e > 0)
                chi += (cnt[i] - e) * (cnt[i] - e) / e;
            else
                CHECK_EQ(cnt[i], 0);
        }
        CHECK_MSG(chi < 20.5, "%s: chi-square %.2f", specs[s], chi);
        mp_bandit_destroy(b);
    }
}

MP_TEST(bandit_slate_propensity_is_conditional) {
    mp_error err;
    const double scores[5] = {0.3, 0.2, 0.25, 0.0, 0.1};
    mp_bandit_cand c[5];
    make_cands(c, 5, scores);
    mp_bandit_opts o;
    mp_bandit_opts_default(&o);
    CHECK_OK(mp_bandit_parse("softmax:tau=0.1,seed=3", &o, &err), &err);
    mp_bandit *b;
    CHECK_OK(mp_bandit_create(&o, &b, &err), &err);
    for (int it = 0; it < 50; it++) {
        mp_bandit_pick pk[3];
        CHECK_OK(mp_bandit_select(b, NULL, c, 5, 3, pk, &err), &err);
        uint32_t taken[3];
        for (int k = 0; k < 3; k++) {
            double p[5];
            CHECK_OK(mp_bandit_probs(b, NULL, c, 5, taken, (size_t)k, p, &err), &err);
            for (int j = 0; j < k; j++) {
                CHECK(pk[j].index != pk[k].index);
                CHECK_EQ(p[taken[j]], 0);
            }
            CHECK_NEAR(pk[k].propensity, p[pk[k].index], 1e-12);
            taken[k] = pk[k].index;
        }
    }
    /* TS: the Monte Carlo propensity of a pick is close to the pick's probability */
    mp_bandit_destroy(b);
    CHECK_OK(trained(MP_BANDIT_TS, &b, &err), &err);
    float xs[5][2] = {{1, 0}, {0, 1}, {1, 1}, {-1, 0}, {0.5f, -1}};
    for (int i = 0; i < 5; i++)
        c[i].x = xs[i];
    mp_bandit_opts ts = *mp_bandit_get_opts(b);
    ts.draws = 4000;
    double p[5];
    CHECK_OK(mp_bandit_probs(b, &ts, c, 5, NULL, 0, p, &err), &err);
    for (int it = 0; it < 5; it++) {
        mp_bandit_pick pk;
        CHECK_OK(mp_bandit_select(b, &ts, c, 5, 1, &pk, &err), &err);
        CHECK_MSG(fabs(pk.propensity - p[pk.index]) < 0.04, "ts propensity %g vs %g", pk.propensity, p[pk.index]);
    }
    mp_bandit_destroy(b);
}

MP_TEST(bandit_greedy_deterministic) {
    mp_error err;
    const double scores[4] = {0.1, 0.7, 0.7, 0.2};
    mp_bandit_cand c[4];
    make_cands(c, 4, scores);
    mp_bandit_opts o;
    mp_bandit_opts_default(&o);
    mp_bandit *b;
    CHECK_OK(mp_bandit_create(&o, &b, &err), &err);
    for (int it = 0; it < 20; it++) {
        mp_bandit_pick pk[4];
        CHECK_OK(mp_bandit_select(b, NULL, c, 4, 4, pk, &err), &err);
        CHECK_EQ(pk[0].index, 1); /* ties: the earlier candidate */
        CHECK_EQ(pk[1].index, 2);
        CHECK_EQ(pk[2].index, 3);
        CHECK_EQ(pk[3].index, 0);
        for (int k = 0; k < 4; k++)
            CHECK_NEAR(pk[k].propensity, 1.0, 0);
    }
    mp_bandit_pick pk;
    CHECK_EQ(mp_bandit_select(b, NULL, c, 4, 5, &pk, &err), MP_EINVAL);
    CHECK_EQ(mp_bandit_select(b, NULL, c, 0, 0, &pk, &err), MP_EINVAL);
    c[2].score = NAN;
    CHECK_EQ(mp_bandit_select(b, NULL, c, 4, 1, &pk, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "candidate 2 (item `2`) has a non-finite score");
    mp_bandit_destroy(b);
    o.dim = 1;
    CHECK_OK(mp_bandit_create(&o, &b, &err), &err);
    c[2].score = 0.7;
    float bad = NAN;
    c[3].x = &bad;
    CHECK_EQ(mp_bandit_select(b, NULL, c, 4, 1, &pk, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "non-finite features");
    CHECK_EQ(mp_bandit_update(b, NULL, &bad, 0.1, 1, &err), MP_EINVAL);
    CHECK_EQ(mp_bandit_update(b, NULL, NULL, 0.1, INFINITY, &err), MP_EINVAL);
    CHECK_EQ(mp_bandit_updates(b), 0);
    mp_bandit_destroy(b);
}

MP_TEST(bandit_squarecb_formula) {
    mp_error err;
    const double scores[3] = {0.0, 1.0, 0.5};
    mp_bandit_cand c[3];
    make_cands(c, 3, scores);
    mp_bandit_opts o;
    mp_bandit_opts_default(&o);
    CHECK_OK(mp_bandit_parse("squarecb:gamma=10", &o, &err), &err);
    mp_bandit *b;
    CHECK_OK(mp_bandit_create(&o, &b, &err), &err);
    double p[3];
    CHECK_OK(mp_bandit_probs(b, NULL, c, 3, NULL, 0, p, &err), &err);
    /* K = 3, best = item 1: p = 1 / (3 + 10 * gap) for the others, the rest for the best */
    CHECK_NEAR(p[0], 1.0 / 13.0, 1e-15);
    CHECK_NEAR(p[2], 1.0 / 8.0, 1e-15);
    CHECK_NEAR(p[1], 1.0 - 1.0 / 13.0 - 1.0 / 8.0, 1e-15);
    /* after item 1 is taken: K = 2, best = item 2, gap 0.5: p0 = 1 / (2 + 5) */
    uint32_t taken = 1;
    CHECK_OK(mp_bandit_probs(b, NULL, c, 3, &taken, 1, p, &err), &err);
    CHECK_NEAR(p[0], 1.0 / 7.0, 1e-15);
    CHECK_NEAR(p[2], 6.0 / 7.0, 1e-15);
    CHECK_EQ(p[1], 0);
    /* gamma = 0 is uniform */
    mp_bandit_opts u = o;
    u.gamma = 0;
    CHECK_OK(mp_bandit_probs(b, &u, c, 3, NULL, 0, p, &err), &err);
    for (int i = 0; i < 3; i++)
        CHECK_NEAR(p[i], 1.0 / 3.0, 1e-15);
    mp_bandit_destroy(b);
}

/* Cumulative regret over T rounds of a linear-Gaussian contextual problem: each round 10 fresh candidates with
 * random features x (dim 5), mean reward theta*^T x, observed reward + N(0, 0.5^2). */
static double run_regret(const char *spec, int T, int disjoint, mp_error *err, int *rc_out) {
    mp_bandit_opts o;
    mp_bandit_opts_default(&o);
    *rc_out = mp_bandit_parse(spec, &o, err);
    if (*rc_out) return NAN;
    o.dim = 5;
    o.disjoint = disjoint;
    o.seed = 11;
    mp_bandit *b;
    if ((*rc_out = mp_bandit_create(&o, &b, err))) return NAN;
    const double theta[5] = {0.5, -0.3, 0.2, 0.4, -0.1};
    mp_rng r;
    mp_rng_seed(&r, 2024);
    double regret = 0;
    float X[10][5];
    mp_bandit_cand c[10];
    for (int t = 0; t < T; t++) {
        double mean[10], best = -INFINITY;
        memset(c, 0, sizeof c);
        for (int i = 0; i < 10; i++) {
            mean[i] = 0;
            for (int j = 0; j < 5; j++) {
                X[i][j] = (float)mp_rng_normal(&r);
                mean[i] += theta[j] * X[i][j];
            }
            best = fmax(best, mean[i]);
            c[i].item = (uint32_t)i;
            c[i].x = X[i];
        }
        mp_bandit_pick pk;
        if ((*rc_out = mp_bandit_select(b, NULL, c, 10, 1, &pk, err))) break;
        regret += best - mean[pk.index];
        double y = mean[pk.index] + 0.5 * mp_rng_normal(&r);
        char label[16];
        snprintf(label, sizeof label, "%u", pk.index); /* the label a candidate without one gets */
        if ((*rc_out = mp_bandit_update(b, label, X[pk.index], 0.0, y, err))) break;
    }
    mp_bandit_destroy(b);
    return regret;
}

MP_TEST(bandit_linear_policies_learn) {
    mp_error err;
    int rc;
    const int T = 1500;
    double uni = run_regret("uniform", T, 0, &err, &rc);
    CHECK_OK(rc, &err);
    /* egreedy keeps exploring: its regret is about epsilon times uniform's plus the learning cost */
    const char *specs[] = {"linucb:alpha=1", "ts:v=0.5,draws=0", "squarecb:gamma=1000", "egreedy:epsilon=0.05",
                           "linucb:alpha=1"};
    const double bound[] = {0.05, 0.05, 0.05, 0.1, 0.1};
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        double reg = run_regret(specs[s], T, s == 4 /* disjoint: one model per item slot */, &err, &rc);
        CHECK_OK(rc, &err);
        CHECK_MSG(reg < bound[s] * uni, "%s: regret %.1f vs uniform %.1f", specs[s], reg, uni);
    }
}

/* ---- the event log ---- */

typedef struct sinkbuf {
    char buf[8192];
    size_t len;
    int lines;
} sinkbuf;

static int sink_mem(void *ctx, const char *line, size_t len) {
    sinkbuf *s = ctx;
    if (s->len + len + 2 > sizeof s->buf) return -1;
    memcpy(s->buf + s->len, line, len);
    s->len += len;
    s->buf[s->len++] = '\n';
    s->buf[s->len] = 0;
    s->lines++;
    return 0;
}

MP_TEST(bandit_feedback_errors) {
    mp_error err;
    sinkbuf sb;
    memset(&sb, 0, sizeof sb);
    mp_bandit_log *log;
    CHECK_OK(mp_bandit_log_create(4, 60.0, 2, 1, sink_mem, &sb, &log, &err), &err);
    mp_bandit_opts o;
    mp_bandit_opts_default(&o);
    o.dim = 2;
    o.kind = MP_BANDIT_EGREEDY;
    mp_bandit *b;
    CHECK_OK(mp_bandit_create(&o, &b, &err), &err);
    const double scores[3] = {0.3, 0.2, 0.1};
    float xs[3][2] = {{1, 0}, {0, 1}, {1, 1}};
    const char *labels[3] = {"shoe-1", "shoe-2", "hat \"3\""};
    mp_bandit_cand c[3];
    make_cands(c, 3, scores);
    for (int i = 0; i < 3; i++) {
        c[i].x = xs[i];
        c[i].label = labels[i];
    }
    mp_bandit_pick pk[2];
    CHECK_OK(mp_bandit_select(b, NULL, c, 3, 2, pk, &err), &err);
    char id[32];
    CHECK_OK(mp_bandit_log_record(log, "u7", c, pk, 2, 100.0, id, sizeof id, &err), &err);
    CHECK_EQ(mp_bandit_log_size(log), 1);
    const char *shown = labels[pk[0].index], *other = NULL;
    for (int i = 0; i < 3; i++)
        if ((uint32_t)i != pk[0].index && (uint32_t)i != pk[1].index) other = labels[i];

    CHECK_EQ(mp_bandit_feedback(log, b, "nope", shown, 1, 101, NULL, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "unknown event id `nope`");
    char foreign[40];
    snprintf(foreign, sizeof foreign, "%s", id);
    foreign[0] = foreign[0] == '0' ? '1' : '0'; /* another run's nonce */
    CHECK_EQ(mp_bandit_feedback(log, b, foreign, shown, 1, 101, NULL, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "unknown event id");
    char future[40];
    snprintf(future, sizeof future, "%.8s-99", id);
    CHECK_EQ(mp_bandit_feedback(log, b, future, shown, 1, 101, NULL, &err), MP_ENOTFOUND);
    CHECK_EQ(mp_bandit_feedback(log, b, id, other, 1, 101, NULL, &err), MP_ENOTMEMBER);
    CHECK_CONTAINS(err.msg, "was not in event");
    CHECK_CONTAINS(err.msg, "shown: ");
    CHECK_EQ(mp_bandit_feedback(log, b, id, shown, NAN, 101, NULL, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "not a finite number");
    CHECK_EQ(mp_bandit_feedback(log, b, id, shown, 1, 161, NULL, &err), MP_EEXPIRED);
    CHECK_CONTAINS(err.msg, "expired: served 61 s ago, ttl 60 s");
    CHECK_EQ(sb.lines, 0);
    CHECK_EQ(mp_bandit_updates(b), 0);

    uint32_t pos = 0;
    CHECK_OK(mp_bandit_feedback(log, b, id, shown, 1, 110, &pos, &err), &err);
    CHECK_EQ(pos, 1);
    CHECK_EQ(mp_bandit_updates(b), 1);
    CHECK_EQ(sb.lines, 1);
    char want[200];
    snprintf(want, sizeof want, "{\"event_id\":\"%s\",\"user\":\"u7\",\"item\":", id);
    CHECK_CONTAINS(sb.buf, want);
    CHECK_CONTAINS(sb.buf, "\"position\":1,\"propensity\":");
    CHECK_CONTAINS(sb.buf, "\"reward\":1}");
    CHECK(!strstr(sb.buf, "null")); /* egreedy propensities are exact */
    CHECK_EQ(mp_bandit_feedback(log, b, id, shown, 1, 111, NULL, &err), MP_ECONFLICT);
    CHECK_CONTAINS(err.msg, "already has feedback");

    /* expiry flush writes the unrewarded impression with reward 0; afterwards the id reads as expired */
    CHECK_OK(mp_bandit_log_flush(log, 200, 0, &err), &err);
    CHECK_EQ(sb.lines, 2);
    CHECK_CONTAINS(sb.buf, "\"position\":2");
    CHECK_CONTAINS(sb.buf, "\"reward\":0}");
    CHECK_EQ(mp_bandit_log_size(log), 0);
    CHECK_EQ(mp_bandit_feedback(log, b, id, shown, 1, 201, NULL, &err), MP_EEXPIRED);
    CHECK_CONTAINS(err.msg, "expired");

    /* capacity eviction */
    char first[32], last[32];
    CHECK_OK(mp_bandit_log_record(log, "u8", c, pk, 1, 300, first, sizeof first, &err), &err);
    for (int i = 0; i < 5; i++)
        CHECK_OK(mp_bandit_log_record(log, "u8", c, pk, 1, 300, last, sizeof last, &err), &err);
    CHECK_EQ(mp_bandit_log_size(log), 4);
    CHECK_EQ(mp_bandit_feedback(log, b, first, shown, 0, 301, NULL, &err), MP_EEXPIRED);
    CHECK_CONTAINS(err.msg, "was evicted (the log keeps the last 4 events)");
    CHECK_OK(mp_bandit_feedback(log, b, last, shown, 0, 301, NULL, &err), &err);
    mp_bandit_log_destroy(log); /* writes the rest */
    CHECK_EQ(sb.lines, 2 + 6);
    mp_bandit_destroy(b);
}

MP_TEST(bandit_serving_log_reads_as_ope_jsonl) {
    mp_error err;
    const char *dir = mp_test_tmpdir(t);
    char path[512];
    snprintf(path, sizeof path, "%s/serve.jsonl", dir);
    FILE *f = fopen(path, "w");
    CHECK(f);
    mp_bandit_log *log;
    CHECK_OK(mp_bandit_log_create(16, 60.0, 0, 2, mp_bandit_sink_file, f, &log, &err), &err);
    mp_bandit_opts o;
    mp_bandit_opts_default(&o);
    CHECK_OK(mp_bandit_parse("softmax:tau=0.2", &o, &err), &err);
    mp_bandit *b;
    CHECK_OK(mp_bandit_create(&o, &b, &err), &err);
    const double scores[4] = {0.4, 0.3, 0.2, 0.1};
    const char *labels[4] = {"a", "b", "c", "d"};
    mp_bandit_cand c[4];
    make_cands(c, 4, scores);
    for (int i = 0; i < 4; i++)
        c[i].label = labels[i];
    for (int r = 0; r < 5; r++) {
        mp_bandit_pick pk[3];
        char id[32];
        CHECK_OK(mp_bandit_serve(b, NULL, log, "u1", c, 4, 3, r, pk, id, sizeof id, &err), &err);
        CHECK_OK(mp_bandit_feedback(log, b, id, labels[pk[1].index], 1, r + 1, NULL, &err), &err);
    }
    mp_bandit_log_destroy(log);
    fclose(f);
    mp_ope_log ol;
    CHECK_OK(mp_ope_log_read(path, MP_OPE_FORMAT_JSONL, &ol, &err), &err);
    CHECK_EQ(ol.n, 15);
    CHECK_EQ(ol.n_slots, 3);
    double clicks = 0;
    for (size_t i = 0; i < ol.n; i++) {
        clicks += ol.reward[i];
        CHECK(ol.pscore[i] > 0 && ol.pscore[i] <= 1);
    }
    CHECK_NEAR(clicks, 5, 0);
    mp_ope_log_free(&ol);
    mp_bandit_destroy(b);
}

MP_TEST(bandit_save_load) {
    mp_error err;
    mp_bandit_opts o;
    mp_bandit_opts_default(&o);
    CHECK_OK(mp_bandit_parse("linucb:alpha=0.7,disjoint=1,intercept=1", &o, &err), &err);
    o.dim = 2;
    mp_bandit *b;
    CHECK_OK(mp_bandit_create(&o, &b, &err), &err);
    float xs[3][2] = {{1, 0}, {0, 1}, {0.5f, 0.5f}};
    const char *labels[3] = {"x", "y", "z"};
    for (int i = 0; i < 30; i++)
        CHECK_OK(mp_bandit_update(b, labels[i % 2], xs[i % 3], 0.1, (i % 3) ? 1.0 : 0.0, &err), &err);
    const char *dir = mp_test_tmpdir(t);
    char path[512];
    snprintf(path, sizeof path, "%s/bandit.mpm", dir);
    CHECK_OK(mp_bandit_save(b, path, &err), &err);
    mp_bandit *l;
    CHECK_OK(mp_bandit_load(path, &l, &err), &err);
    CHECK_EQ(mp_bandit_updates(l), 30);
    CHECK_EQ(mp_bandit_get_opts(l)->kind, MP_BANDIT_LINUCB);
    mp_bandit_cand c[3];
    const double scores[3] = {0.1, 0.1, 0.1};
    make_cands(c, 3, scores);
    for (int i = 0; i < 3; i++) {
        c[i].x = xs[i];
        c[i].label = labels[i];
    }
    mp_bandit_pick p1[3], p2[3];
    CHECK_OK(mp_bandit_select(b, NULL, c, 3, 3, p1, &err), &err);
    CHECK_OK(mp_bandit_select(l, NULL, c, 3, 3, p2, &err), &err);
    for (int k = 0; k < 3; k++) {
        CHECK_EQ(p1[k].index, p2[k].index);
        CHECK_NEAR(p1[k].estimate, p2[k].estimate, 1e-9);
    }
    mp_bandit_destroy(l);
    mp_bandit_destroy(b);
    CHECK_EQ(mp_bandit_load("/nonexistent/bandit.mpm", &l, &err) != MP_OK, 1);
}

typedef struct thr_arg {
    mp_bandit *b;
    int rc;
} thr_arg;

static void *thr_main(void *p) {
    thr_arg *a = p;
    mp_error err;
    float x[2] = {1, 0.5f};
    mp_bandit_cand c[3];
    const double scores[3] = {0.1, 0.2, 0.3};
    make_cands(c, 3, scores);
    for (int i = 0; i < 3; i++)
        c[i].x = x;
    for (int i = 0; i < 500 && !a->rc; i++) {
        mp_bandit_pick pk;
        a->rc = mp_bandit_select(a->b, NULL, c, 3, 1, &pk, &err);
        if (!a->rc) a->rc = mp_bandit_update(a->b, NULL, x, 0.1, 1.0, &err);
    }
    return NULL;
}

MP_TEST(bandit_threads) {
    mp_error err;
    mp_bandit_opts o;
    mp_bandit_opts_default(&o);
    CHECK_OK(mp_bandit_parse("ts:v=0.5,draws=10", &o, &err), &err);
    o.dim = 2;
    mp_bandit *b;
    CHECK_OK(mp_bandit_create(&o, &b, &err), &err);
    pthread_t th[4];
    thr_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i].b = b;
        a[i].rc = 0;
        CHECK(pthread_create(&th[i], NULL, thr_main, &a[i]) == 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(a[i].rc, 0);
    CHECK_EQ(mp_bandit_updates(b), 2000);
    mp_bandit_destroy(b);
}

/* ---- shopper protection ---- */

MP_TEST(bandit_fatigue_decays) {
    mp_error err;
    mp_shopper *s;
    CHECK_OK(mp_shopper_create(64, 8, &s, &err), &err);
    CHECK_NEAR(mp_shopper_fatigue(s, 5, 100, 0), 0, 0);
    mp_shopper_record(s, MP_SHOP_IMPRESSION, 5, 1, 0);
    CHECK_NEAR(mp_shopper_fatigue(s, 5, 100, 0), 1.0, 1e-12);
    CHECK_NEAR(mp_shopper_fatigue(s, 5, 100, 100), 0.5, 1e-12);
    CHECK_NEAR(mp_shopper_fatigue(s, 5, 100, 200), 0.25, 1e-12);
    CHECK_NEAR(mp_shopper_fatigue(s, 6, 100, 200), 0, 0);
    mp_shopper_record(s, MP_SHOP_IMPRESSION, 5, 1, 100);
    CHECK_NEAR(mp_shopper_fatigue(s, 5, 100, 200), 0.25 + 0.5, 1e-12);
    mp_shopper_record(s, MP_SHOP_CLICK, 5, 1, 150); /* a click resets */
    CHECK_NEAR(mp_shopper_fatigue(s, 5, 100, 200), 0, 0);
    mp_shopper_record(s, MP_SHOP_IMPRESSION, 5, 1, 200);
    CHECK_NEAR(mp_shopper_fatigue(s, 5, 100, 300), 0.5, 1e-12);

    /* in the re-ranking pass the fatigued item falls below a fresh one and recovers over time */
    const double scores[2] = {1.0, 0.9};
    mp_bandit_cand c[2], out[2];
    make_cands(c, 2, scores);
    c[0].item = 5;
    c[1].item = 6;
    mp_protect_opts po;
    mp_protect_opts_default(&po);
    po.fatigue_weight = 0.2;
    po.fatigue_half_life = 100;
    size_t m;
    CHECK_OK(mp_protect_rerank(&po, s, c, 2, 0, 200, out, &m, NULL, &err), &err);
    CHECK_EQ(m, 2);
    CHECK_NEAR(out[0].score, 1.0 - 0.2, 1e-12);
    CHECK(out[0].score < out[1].score);
    CHECK_OK(mp_protect_rerank(&po, s, c, 2, 0, 600, out, &m, NULL, &err), &err);
    CHECK_NEAR(out[0].score, 1.0 - 0.2 / 16, 1e-12);
    CHECK(out[0].score > out[1].score);
    mp_shopper_destroy(s);
}

MP_TEST(bandit_caps) {
    mp_error err;
    mp_shopper *s;
    CHECK_OK(mp_shopper_create(8, 4, &s, &err), &err);
    const double scores[4] = {0.9, 0.8, 0.7, 0.6};
    mp_bandit_cand c[4], out[4];
    make_cands(c, 4, scores);
    c[0].category = 1;
    c[1].category = 1;
    c[2].category = 2;
    mp_protect_opts po;
    mp_protect_opts_default(&po);
    po.item_cap = 2;
    po.item_window = 100;
    po.category_cap = 3;
    po.category_window = 1000;
    mp_shopper_record(s, MP_SHOP_IMPRESSION, 0, 1, 10);
    size_t m;
    mp_protect_stats st;
    CHECK_OK(mp_protect_rerank(&po, s, c, 4, 0, 20, out, &m, &st, &err), &err);
    CHECK_EQ(m, 4);
    mp_shopper_record(s, MP_SHOP_IMPRESSION, 0, 1, 20);
    CHECK_OK(mp_protect_rerank(&po, s, c, 4, 0, 30, out, &m, &st, &err), &err);
    CHECK_EQ(m, 3); /* item 0 shown twice in the window */
    CHECK_EQ(st.item_cap, 1);
    CHECK_EQ(out[0].item, 1);
    CHECK_OK(mp_protect_rerank(&po, s, c, 4, 0, 115, out, &m, &st, &err), &err);
    CHECK_EQ(m, 4); /* the first impression left the window */
    mp_shopper_record(s, MP_SHOP_IMPRESSION, 1, 1, 120);
    CHECK_OK(mp_protect_rerank(&po, s, c, 4, 0, 125, out, &m, &st, &err), &err);
    CHECK_EQ(st.category_cap, 2); /* category 1 has 3 impressions: items 0 and 1 out */
    CHECK_EQ(m, 2);
    CHECK_EQ(out[0].item, 2);
    CHECK_EQ(out[1].item, 3);
    /* bounded state: the ring keeps the last 8 events */
    for (int i = 0; i < 20; i++)
        mp_shopper_record(s, MP_SHOP_IMPRESSION, 9, 3, 200 + i);
    CHECK_EQ(mp_shopper_impressions(s, 9, 0, 1e9, 300), 8);
    CHECK_EQ(mp_shopper_impressions(s, 1, 1, 1e9, 300), 0);
    mp_shopper_destroy(s);
}

MP_TEST(bandit_mmr) {
    mp_error err;
    /* cluster A (items 0-3) along (1, 0), cluster B (items 4-7) along (0, 1); A scores higher */
    const double scores[8] = {1.0, 0.95, 0.9, 0.85, 0.6, 0.55, 0.5, 0.45};
    float xs[8][2] = {{1, 0.05f}, {1, 0.1f}, {1, 0}, {1, 0.02f}, {0.05f, 1}, {0.1f, 1}, {0, 1}, {0.02f, 1}};
    mp_bandit_cand c[8], out[8];
    make_cands(c, 8, scores);
    for (int i = 0; i < 8; i++)
        c[i].x = xs[i];
    mp_protect_opts po;
    mp_protect_opts_default(&po);
    size_t m;
    /* lambda = 1 (and the off switch) give the relevance order with the original scores */
    po.mmr_lambda = 1.0;
    CHECK_OK(mp_protect_rerank(&po, NULL, c, 8, 2, 0, out, &m, NULL, &err), &err);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(out[i].item, i);
        CHECK_NEAR(out[i].score, scores[i], 0);
    }
    po.mmr_lambda = 0.999999;
    CHECK_OK(mp_protect_rerank(&po, NULL, c, 8, 2, 0, out, &m, NULL, &err), &err);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(out[i].item, i);
    /* small lambda alternates between the clusters */
    po.mmr_lambda = 0.3;
    CHECK_OK(mp_protect_rerank(&po, NULL, c, 8, 2, 0, out, &m, NULL, &err), &err);
    CHECK_EQ(m, 8);
    CHECK_EQ(out[0].item, 0);
    CHECK(out[1].item >= 4);
    /* (with lambda = 1 the top 4 were all from cluster A) */
    for (int i = 0; i < 8; i++)
        CHECK_NEAR(out[i].score, scores[i], 0); /* scores keep their scale, MMR order */
    po.mmr_lambda = 2;
    CHECK_EQ(mp_protect_rerank(&po, NULL, c, 8, 2, 0, out, &m, NULL, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "mmr_lambda");
}

MP_TEST(bandit_business_rules) {
    mp_error err;
    mp_shopper *s;
    CHECK_OK(mp_shopper_create(8, 2, &s, &err), &err);
    const double scores[6] = {0.9, 0.8, 0.7, 0.6, 0.5, 0.4};
    mp_bandit_cand c[6], out[6];
    make_cands(c, 6, scores);
    c[1].out_of_stock = 1;
    c[2].price = 500;
    c[3].price = 5;
    c[4].price = 50;
    mp_shopper_record(s, MP_SHOP_PURCHASE, 0, 7, 1);
    CHECK(mp_shopper_purchased(s, 0));
    mp_protect_opts po;
    mp_protect_opts_default(&po);
    po.price_min = 10;
    po.price_max = 100;
    size_t m;
    mp_protect_stats st;
    CHECK_OK(mp_protect_rerank(&po, s, c, 6, 0, 2, out, &m, &st, &err), &err);
    CHECK_EQ(m, 2); /* item 4 (price 50) and item 5 (no price) */
    CHECK_EQ(out[0].item, 4);
    CHECK_EQ(out[1].item, 5);
    CHECK_EQ(st.purchased, 1);
    CHECK_EQ(st.out_of_stock, 1);
    CHECK_EQ(st.price, 2);
    /* the purchased set is bounded: the oldest purchase is forgotten */
    mp_shopper_record(s, MP_SHOP_PURCHASE, 1, 7, 2);
    mp_shopper_record(s, MP_SHOP_PURCHASE, 2, 7, 3);
    CHECK(!mp_shopper_purchased(s, 0));
    CHECK(mp_shopper_purchased(s, 2));
    /* novelty: equal scores, the less popular item gets the larger boost */
    c[4].popularity = 1000;
    c[5].popularity = 0;
    po.novelty_weight = 0.1;
    CHECK_OK(mp_protect_rerank(&po, NULL, c + 4, 2, 0, 2, out, &m, NULL, &err), &err);
    CHECK_NEAR(out[0].score, 0.5 + 0.1 / log(M_E + 1000), 1e-12);
    CHECK_NEAR(out[1].score, 0.4 + 0.1, 1e-12);
    mp_shopper_destroy(s);
}

MP_TEST(bandit_shopper_table) {
    mp_error err;
    mp_shopper_table *tb;
    CHECK_OK(mp_shopper_table_create(2, 16, 4, &tb, &err), &err);
    const double scores[2] = {0.9, 0.8};
    mp_bandit_cand c[2], out[2];
    make_cands(c, 2, scores);
    mp_protect_opts po;
    mp_protect_opts_default(&po);
    po.item_cap = 1;
    size_t m;
    CHECK_OK(mp_shopper_table_record(tb, "u1", MP_SHOP_IMPRESSION, 0, 0, 10, &err), &err);
    CHECK_OK(mp_shopper_table_record(tb, "u2", MP_SHOP_PURCHASE, 1, 0, 10, &err), &err);
    CHECK_OK(mp_shopper_table_rerank(tb, "u1", &po, c, 2, 0, 11, out, &m, NULL, &err), &err);
    CHECK_EQ(m, 1); /* u1 saw item 0 (cap 1) */
    CHECK_EQ(out[0].item, 1);
    CHECK_OK(mp_shopper_table_rerank(tb, "u2", &po, c, 2, 0, 11, out, &m, NULL, &err), &err);
    CHECK_EQ(m, 1); /* u2 bought item 1 */
    CHECK_EQ(out[0].item, 0);
    CHECK_OK(mp_shopper_table_rerank(tb, "nobody", &po, c, 2, 0, 11, out, &m, NULL, &err), &err);
    CHECK_EQ(m, 2);
    /* touching u1 makes u2 the least recently used; a third user drops u2 */
    CHECK_OK(mp_shopper_table_record(tb, "u1", MP_SHOP_CLICK, 0, 0, 12, &err), &err);
    CHECK_OK(mp_shopper_table_record(tb, "u3", MP_SHOP_IMPRESSION, 1, 0, 12, &err), &err);
    CHECK_EQ(mp_shopper_table_size(tb), 2);
    CHECK_OK(mp_shopper_table_rerank(tb, "u2", &po, c, 2, 0, 13, out, &m, NULL, &err), &err);
    CHECK_EQ(m, 2); /* u2's state was dropped */
    CHECK_OK(mp_shopper_table_rerank(tb, "u1", &po, c, 2, 0, 13, out, &m, NULL, &err), &err);
    CHECK_EQ(m, 1); /* u1 kept */
    for (int i = 0; i < 50; i++) {
        char u[16];
        snprintf(u, sizeof u, "x%d", i);
        CHECK_OK(mp_shopper_table_record(tb, u, MP_SHOP_IMPRESSION, 1, 0, 20 + i, &err), &err);
    }
    CHECK_EQ(mp_shopper_table_size(tb), 2);
    mp_shopper_table_destroy(tb);
}
