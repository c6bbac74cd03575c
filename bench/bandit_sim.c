/* bench/bandit_sim.c: the exploration policies of magpie/bandit.h on a seeded synthetic shop with OBD-like click
 * rates (issue 6 section 1).
 *
 * The world: 34 items (as OBD's Men's campaign), slates of 3 positions with position bias 1, 0.75, 0.55. Each
 * round a shopper with a context u (8 numbers, N(0, 1/8)) arrives; item i has an embedding v_i (8 numbers).
 * The click probability is linear in the features x(u, i) = [u * v_i (elementwise), v_i] (16 numbers):
 *     p(u, i, pos) = bias_pos * clamp(ctr0 (1 + theta* . x(u, i)), 0.0002, 0.05),  ctr0 = 0.005
 * The base model score is a fixed per-item estimate of the item's mean click rate with multiplicative noise (an
 * offline model that ignores the shopper's context). Policies see (score, x) per candidate and learn the residual
 * online (intercept on) from each impression's click. Regret: expected clicks of the oracle slate (the 3 best
 * items for u in order) minus the expected clicks of the shown slate, summed over rounds.
 *
 * Usage: bandit_sim [rounds=200000] [seeds=3]     prints one table, mean over seeds +- standard deviation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "magpie/bandit.h"
#include "magpie/rng.h"

#define NI 34
#define DU 8
#define DX 16
#define K 3

typedef struct world {
    float v[NI][DU];
    double theta[DX];
    double score[NI];
} world;

static const double pos_bias[K] = {1.0, 0.75, 0.55};
static const double ctr0 = 0.005;

static double click_p(const float *x, const double *theta) {
    double s = 0;
    for (int j = 0; j < DX; j++)
        s += theta[j] * x[j];
    double p = ctr0 * (1 + s);
    return p < 0.0002 ? 0.0002 : p > 0.05 ? 0.05 : p;
}

static void make_world(world *w, uint64_t seed) {
    mp_rng r;
    mp_rng_seed(&r, seed);
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < DU; j++)
            w->v[i][j] = (float)mp_rng_normal(&r);
    for (int j = 0; j < DX; j++)
        w->theta[j] = (j < DU ? 0.9 : 0.35) * mp_rng_normal(&r);
    /* the base score: the item's mean click rate over shoppers (Monte Carlo) times log-normal noise */
    for (int i = 0; i < NI; i++) {
        double s = 0;
        for (int t = 0; t < 2000; t++) {
            float x[DX];
            for (int j = 0; j < DU; j++) {
                x[j] = (float)(mp_rng_normal(&r) / sqrt(DU)) * w->v[i][j];
                x[DU + j] = w->v[i][j];
            }
            s += click_p(x, w->theta);
        }
        w->score[i] = s / 2000 * exp(0.3 * mp_rng_normal(&r));
    }
}

typedef struct result {
    double clicks, regret, secs;
} result;

static int run(const world *w, const char *spec, int base_only, long T, uint64_t seed, result *res) {
    mp_error err;
    mp_bandit_opts o;
    mp_bandit_opts_default(&o);
    if (mp_bandit_parse(spec, &o, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (!base_only) {
        o.dim = DX;
        o.intercept = 1;
    }
    o.draws = 0;
    o.seed = seed * 7919 + 1;
    mp_bandit *b;
    if (mp_bandit_create(&o, &b, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    mp_rng r;
    mp_rng_seed(&r, seed);
    static float X[NI][DX];
    mp_bandit_cand c[NI];
    memset(c, 0, sizeof c);
    double clicks = 0, regret = 0;
    clock_t t0 = clock();
    for (long t = 0; t < T; t++) {
        double u[DU], p[NI];
        for (int j = 0; j < DU; j++)
            u[j] = mp_rng_normal(&r) / sqrt(DU);
        for (int i = 0; i < NI; i++) {
            for (int j = 0; j < DU; j++) {
                X[i][j] = (float)(u[j] * w->v[i][j]);
                X[i][DU + j] = w->v[i][j];
            }
            p[i] = click_p(X[i], w->theta);
            c[i].item = (uint32_t)i;
            c[i].score = w->score[i];
            c[i].x = base_only ? NULL : X[i];
        }
        /* oracle: the 3 largest p in order */
        double best[K] = {-1, -1, -1};
        for (int i = 0; i < NI; i++) {
            double q = p[i];
            for (int k = 0; k < K; k++)
                if (q > best[k]) {
                    double tmp = best[k];
                    best[k] = q;
                    q = tmp;
                }
        }
        mp_bandit_pick pk[K];
        if (mp_bandit_select(b, NULL, c, NI, K, pk, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            mp_bandit_destroy(b);
            return 1;
        }
        for (int k = 0; k < K; k++) {
            double pc = pos_bias[k] * p[pk[k].index];
            regret += pos_bias[k] * best[k] - pc;
            double y = mp_rng_uniform(&r) < pc ? 1.0 : 0.0;
            clicks += y;
            if (mp_bandit_update(b, NULL, c[pk[k].index].x, c[pk[k].index].score, y, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                mp_bandit_destroy(b);
                return 1;
            }
        }
    }
    res->secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    res->clicks = clicks;
    res->regret = regret;
    mp_bandit_destroy(b);
    return 0;
}

int main(int argc, char **argv) {
    long T = argc > 1 ? atol(argv[1]) : 200000;
    int seeds = argc > 2 ? atoi(argv[2]) : 3;
    if (T <= 0 || seeds <= 0) {
        fprintf(stderr, "usage: bandit_sim [rounds] [seeds]\n");
        return 2;
    }
    struct {
        const char *name, *spec;
        int base_only;
    } pol[] = {
        {"uniform", "uniform", 1},
        {"greedy (base model only)", "greedy", 1},
        {"greedy (base + online ridge)", "greedy", 0},
        {"egreedy eps=0.05", "egreedy:epsilon=0.05", 0},
        {"softmax tau=0.002", "softmax:tau=0.002", 0},
        {"linucb alpha=0.05", "linucb:alpha=0.05", 0},
        {"ts v=0.05", "ts:v=0.05", 0},
        {"squarecb gamma=20000", "squarecb:gamma=20000", 0},
        {"squarecb gamma=100000", "squarecb:gamma=100000", 0},
    };
    size_t np = sizeof pol / sizeof pol[0];
    printf("# bandit_sim: %d items, slates of %d (position bias 1, 0.75, 0.55), %ld rounds, %d seeds\n", NI, K, T,
           seeds);
    printf("# OBD-like click rates (ctr0 = %.3f); regret = oracle's expected clicks - the policy's\n\n", ctr0);
    printf("| %-30s | %14s | %9s | %16s | %12s | %8s |\n", "policy", "clicks", "CTR", "regret", "regret/unif", "s/run");
    printf("|%s|%s|%s|%s|%s|%s|\n", "--------------------------------", "----------------", "-----------",
           "------------------", "--------------", "----------");
    double uni_regret = NAN;
    double oracle_ctr = 0;
    for (size_t k = 0; k < np; k++) {
        double sc = 0, sc2 = 0, sr = 0, sr2 = 0, ss = 0;
        for (int s = 0; s < seeds; s++) {
            world w;
            make_world(&w, 1000 + (uint64_t)s);
            result res;
            if (run(&w, pol[k].spec, pol[k].base_only, T, 77 + (uint64_t)s, &res)) return 1;
            sc += res.clicks;
            sc2 += res.clicks * res.clicks;
            sr += res.regret;
            sr2 += res.regret * res.regret;
            ss += res.secs;
            if (k == 0) oracle_ctr += (res.clicks + res.regret) / ((double)T * K) / seeds;
        }
        double mc = sc / seeds, mr = sr / seeds;
        double sdc = seeds > 1 ? sqrt(fmax(0, (sc2 - seeds * mc * mc) / (seeds - 1))) : 0;
        double sdr = seeds > 1 ? sqrt(fmax(0, (sr2 - seeds * mr * mr) / (seeds - 1))) : 0;
        if (k == 0) uni_regret = mr;
        printf("| %-30s | %7.0f +- %4.0f | %9.5f | %8.0f +- %5.0f | %12.3f | %8.2f |\n", pol[k].name, mc, sdc,
               mc / ((double)T * K), mr, sdr, mr / uni_regret, ss / seeds);
    }
    printf("\n(the oracle's expected CTR per impression: about %.5f)\n", oracle_ctr);
    return 0;
}
