/* magpie simulate: the long-term shopper simulator (issue 6 sections 4 and 5): fits shoppers' tastes on a store,
 * trains the RL re-rankers (on-policy, or off-policy from a behaviour policy's logs) on training seeds, then runs
 * each policy on the evaluation seeds and prints the metrics with 95% t-intervals over seeds and the ratios against
 * greedy. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "magpie/dataset.h"
#include "magpie/sim.h"

#define CMD "simulate"
#define MAX_POLICIES 32
#define MAX_SEEDS 200

static void usage(FILE *f) {
    fprintf(f,
            "usage: magpie simulate [--db PATH] [--policy SPEC]... [--seeds N] [--seed S] [--sim k=v,...]\n"
            "                       [--model NAME] [--model-params k=v,...] [--rl-epochs N] [--rl-batch N]\n"
            "                       [--rl-lr X] [--rl-seed S] [--rl-argmax] [--rl-behavior SPEC]\n"
            "                       [--rl-is-cap X] [--json] [--threads N] [--quiet]\n\n"
            "Simulates shoppers over 30 days (by default) and compares recommendation policies on long-term\n"
            "metrics. Shoppers' tastes come from a model fitted on every event of the store (ALS by default);\n"
            "their true tastes drift, they get bored of repeats, satiated after purchases, and churn when\n"
            "recommendations are irrelevant or repetitive (see include/magpie/sim.h for the model).\n"
            "Each policy runs on seeds S .. S+N-1; the RL re-ranker is trained first on separate seeds.\n"
            "Printed per policy: 30- and 7-day retention, purchases and clicks per shopper, catalog coverage,\n"
            "exposure Gini and regret per session against an oracle that knows the true utilities, each as\n"
            "mean +- half-width of the 95%% t-interval over seeds, then the ratios to greedy (paired by seed).\n\n"
            "options:\n"
            "  --policy SPEC        a policy to run (repeatable; default: greedy, rl, greedy+protect, egreedy,\n"
            "                       softmax, linucb, ts, squarecb). SPEC is `greedy`, `rl`, `rl-offpolicy[:k=v,..]`\n"
            "                       or a bandit spec\n"
            "                       (egreedy:epsilon=0.1, softmax:tau=0.5, linucb:alpha=1, ts:v=0.5,\n"
            "                       squarecb:gamma=100, uniform) over the simulator's candidate features;\n"
            "                       append `+protect` for shopper protection (fatigue and novelty) first.\n"
            "                       `rl` is trained on-policy (REINFORCE, it acts in its training runs);\n"
            "                       `rl-offpolicy` is the same softmax slate policy trained only from the logged\n"
            "                       slates of a fixed behaviour policy (--rl-behavior) with the top-K off-policy\n"
            "                       correction of Chen et al. 2019: each shown item's REINFORCE term is weighted by\n"
            "                       min(pi/beta, cap) * K (1 - pi)^(K-1). Keys: topk=0 (plain capped importance\n"
            "                       weights, no top-K multiplier), cap=X (0: uncapped), tau=X (behaviour softmax\n"
            "                       temperature, 0: uniform), pos=1 (pi and beta per position of the slate:\n"
            "                       conditional on the items drawn before, instead of single draws over all\n"
            "                       candidates), credit=1 (per-item credit: each shown item's own purchase and\n"
            "                       click reward plus an equal share of the rest of the day's reward plus the\n"
            "                       discounted future return, instead of the day's return for every item),\n"
            "                       e.g. `rl-offpolicy:topk=0` or `rl-offpolicy:pos=1,topk=0`.\n"
            "                       `rl-behavior` runs the behaviour policy itself (for reference)\n"
            "  --seeds N            evaluation seeds (default 5, at least 2 for intervals)\n"
            "  --seed S             first evaluation seed (default 1)\n"
            "  --sim k=v,...        simulator parameters: days, max_users, n_cands, slate, visit_prob, drift,\n"
            "                       taste_noise, rel_weight, bore_item, bore_cat, bore_half_life, sat_weight,\n"
            "                       sat_half_life, click_bias, buy_bias, leak, irr_weight, rep_weight,\n"
            "                       rep_window, click_relief, buy_relief, churn_max, churn_slope, churn_mid,\n"
            "                       click_reward, stay_reward, novel_reward,\n"
            "                       cover_reward\n"
            "  --model NAME         model whose factors give the tastes (default als; needs retrieval vectors)\n"
            "  --model-params k=v   its parameters (default factors=32,iterations=10)\n"
            "  --rl-epochs N        REINFORCE updates (default 60)\n"
            "  --rl-batch N         shoppers per update (default 300)\n"
            "  --rl-lr X            Adam step size (default 0.1)\n"
            "  --rl-argmax          evaluate the RL re-ranker by ranking (argmax of its logits) instead of\n"
            "                       sampling its trained softmax policy\n"
            "  --rl-seed S          training seed base (default 1000; training never uses evaluation seeds)\n"
            "  --rl-behavior SPEC   behaviour policy whose logs train rl-offpolicy: `softmax:tau=X` (Plackett-Luce\n"
            "                       over the standardised model score / X: greedy + noise; default tau=0.5, the\n"
            "                       starting point of the RL policy) or `uniform` (random slates)\n"
            "  --rl-is-cap X        cap of the importance ratio pi/beta for rl-offpolicy (default 10; 0: none)\n"
            "  --json               one JSON object per policy instead of the table\n"
            "  --threads N          threads for the model fit (default: all cores)\n"
            "  --db PATH            store (default: $MAGPIE_DB or ./magpie.db)\n"
            "  --quiet              no progress\n"
            "  --help               this text\n");
}

typedef struct pol_res {
    char spec[256];
    double v[8][MAX_SEEDS]; /* ret30, ret7, purchases/shopper, clicks/shopper, coverage, gini, regret/session, obj */
} pol_res;

static const char *const k_cols[8] = {"ret30", "ret7", "buys/u", "clicks/u", "coverage", "gini", "regret/s", "obj/u"};

/* An RL spec: `rl` (on-policy), `rl-behavior` (the off-policy behaviour, untrained) or
 * `rl-offpolicy[:topk=0|1,cap=X,tau=X,pos=0|1,credit=0|1]`; fills *ro from base. Returns 1 for an RL
 * spec, 0 for another spec, -1 (message in err) for a malformed RL spec. */
static int parse_rl_spec(const char *spec, const mp_sim_rl_opts *base, mp_sim_rl_opts *ro, mp_error *err) {
    *ro = *base;
    if (!strcmp(spec, "rl")) {
        ro->offpolicy = 0;
        return 1;
    }
    if (!strcmp(spec, "rl-behavior")) { /* the behaviour policy itself: no training, always sampled */
        ro->offpolicy = 0;
        ro->epochs = 0;
        ro->explore_eval = 1;
        ro->theta0 = base->behavior_tau > 0 ? 1.0 / base->behavior_tau : 0.0;
        return 1;
    }
    if (strncmp(spec, "rl-offpolicy", 12) || (spec[12] && spec[12] != ':')) return 0;
    ro->offpolicy = 1;
    if (!spec[12]) return 1;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec + 13);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '='), *end = NULL;
        double v = eq ? strtod(eq + 1, &end) : NAN;
        if (!eq || end == eq + 1 || *end || !isfinite(v) || v < 0) {
            mp_error_set(err, MP_EINVAL, "`%s` is not key=value with a number >= 0 (keys: topk, cap, tau, pos, credit)", tok);
            return -1;
        }
        *eq = 0;
        if (!strcmp(tok, "topk") && (v == 0 || v == 1))
            ro->topk_correction = (int)v;
        else if (!strcmp(tok, "cap"))
            ro->is_cap = v;
        else if (!strcmp(tok, "tau"))
            ro->behavior_tau = v;
        else if (!strcmp(tok, "pos") && (v == 0 || v == 1))
            ro->per_position = (int)v;
        else if (!strcmp(tok, "credit") && (v == 0 || v == 1))
            ro->item_credit = (int)v;
        else {
            mp_error_set(err, MP_EINVAL, "unknown key or value `%s=%s` (keys: topk=0|1, cap=X, tau=X, pos=0|1, credit=0|1)", tok, eq + 1);
            return -1;
        }
    }
    return 1;
}

static int run_policy(const char *spec, const mp_sim_world *w, const mp_sim_opts *so, mp_sim_rl *rl,
                      uint64_t seed, mp_sim_result *res, mp_error *err) {
    char base[256];
    snprintf(base, sizeof base, "%s", spec);
    int protect = 0;
    char *plus = strstr(base, "+protect");
    if (plus && plus[8] == 0) {
        protect = 1;
        *plus = 0;
    }
    mp_protect_opts po;
    mp_protect_opts_default(&po);
    po.fatigue_weight = 1.0;
    po.fatigue_half_life = 3 * 86400.0;
    po.novelty_weight = 0.5;
    if (rl) {
        if (protect) return mp_error_set(err, MP_EINVAL, "policy `%s`: the RL re-ranker takes no +protect", spec);
        mp_sim_policy p = mp_sim_rl_policy(rl);
        return mp_sim_run(w, so, &p, seed, res, err);
    }
    if (!strcmp(base, "greedy") && !protect) {
        mp_sim_policy p = mp_sim_policy_greedy();
        return mp_sim_run(w, so, &p, seed, res, err);
    }
    mp_sim_bandit *b = NULL;
    int rc = mp_sim_bandit_create(base, protect ? &po : NULL, mp_sim_world_users(w), &b, err);
    if (rc) return rc;
    mp_sim_policy p = mp_sim_bandit_policy(b);
    rc = mp_sim_run(w, so, &p, seed, res, err);
    mp_sim_bandit_destroy(b);
    return rc;
}

int cmd_simulate(int argc, char **argv) {
    static const struct option longopts[] = {
        {"policy", required_argument, NULL, 'p'},     {"seeds", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},       {"sim", required_argument, NULL, 'S'},
        {"model", required_argument, NULL, 'm'},      {"model-params", required_argument, NULL, 'M'},
        {"rl-epochs", required_argument, NULL, 'e'},  {"rl-batch", required_argument, NULL, 'b'},
        {"rl-lr", required_argument, NULL, 'l'},      {"rl-seed", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},             {"threads", required_argument, NULL, 't'},
        {"db", required_argument, NULL, 'd'},         {"quiet", no_argument, NULL, 'q'},
        {"rl-argmax", no_argument, NULL, 'A'},       {"help", no_argument, NULL, 'h'},
        {"rl-behavior", required_argument, NULL, 'B'}, {"rl-is-cap", required_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    const char *db = cli_default_db(), *model = "als", *mparams = "factors=32,iterations=10";
    const char *specs[MAX_POLICIES];
    size_t n_specs = 0;
    unsigned long long seeds = 5, seed0 = 1, rl_seed = 1000, threads = 0, ull;
    int json = 0, quiet = 0;
    mp_sim_opts so;
    mp_sim_opts_default(&so);
    mp_sim_rl_opts ro;
    mp_sim_rl_opts_default(&ro);
    mp_error err;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hq", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (n_specs == MAX_POLICIES) return cli_usage_error(CMD, "at most %d --policy options", MAX_POLICIES);
            if (strlen(optarg) >= 200) return cli_usage_error(CMD, "--policy `%.40s...` is too long", optarg);
            specs[n_specs++] = optarg;
            break;
        case 'n':
            if (cli_parse_u64(CMD, "--seeds", optarg, &seeds)) return 2;
            if (seeds < 1 || seeds > MAX_SEEDS) return cli_usage_error(CMD, "--seeds must be in [1, %d]", MAX_SEEDS);
            break;
        case 's':
            if (cli_parse_u64(CMD, "--seed", optarg, &seed0)) return 2;
            break;
        case 'S':
            if (mp_sim_opts_parse(&so, optarg, &err)) return cli_usage_error(CMD, "--sim: %s", err.msg);
            break;
        case 'm': model = optarg; break;
        case 'M': mparams = optarg; break;
        case 'e':
            if (cli_parse_u64(CMD, "--rl-epochs", optarg, &ull)) return 2;
            if (ull > 100000) return cli_usage_error(CMD, "--rl-epochs %llu is too many (at most 100000)", ull);
            ro.epochs = (uint32_t)ull;
            break;
        case 'b':
            if (cli_parse_u64(CMD, "--rl-batch", optarg, &ull)) return 2;
            if (ull > UINT32_MAX) return cli_usage_error(CMD, "--rl-batch %llu is too large", ull);
            ro.batch_users = (uint32_t)ull;
            break;
        case 'l':
            if (cli_parse_double(CMD, "--rl-lr", optarg, &ro.lr)) return 2;
            if (!(ro.lr > 0)) return cli_usage_error(CMD, "--rl-lr must be > 0");
            break;
        case 'r':
            if (cli_parse_u64(CMD, "--rl-seed", optarg, &rl_seed)) return 2;
            break;
        case 'j': json = 1; break;
        case 'A': ro.explore_eval = 0; break;
        case 'B':
            if (mp_sim_rl_parse_behavior(&ro, optarg, &err)) return cli_usage_error(CMD, "--rl-behavior: %s", err.msg);
            break;
        case 'C':
            if (cli_parse_double(CMD, "--rl-is-cap", optarg, &ro.is_cap)) return 2;
            if (!(ro.is_cap >= 0) || !isfinite(ro.is_cap))
                return cli_usage_error(CMD, "--rl-is-cap must be a finite number >= 0 (0: no cap)");
            break;
        case 't':
            if (cli_parse_u64(CMD, "--threads", optarg, &threads)) return 2;
            if (threads > 1024) return cli_usage_error(CMD, "--threads %llu is too many", threads);
            break;
        case 'd': db = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: return cli_usage_error(CMD, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(CMD, "unexpected argument `%s`", argv[optind]);
    if (mp_sim_opts_check(&so, &err)) return cli_usage_error(CMD, "--sim: %s", err.msg);
    if (n_specs == 0) {
        static const char *const defaults[] = {"greedy",          "rl",           "greedy+protect", "egreedy:epsilon=0.1",
                                               "softmax:tau=0.5", "linucb:alpha=1", "ts:v=0.5",      "squarecb:gamma=100"};
        for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) specs[n_specs++] = defaults[i];
    }
    /* check the specs before the long part */
    ro.seed = rl_seed;
    mp_sim_rl_opts rl_opts[MAX_POLICIES];
    int is_rl[MAX_POLICIES] = {0};
    for (size_t i = 0; i < n_specs; i++) {
        char base[256];
        snprintf(base, sizeof base, "%s", specs[i]);
        char *plus = strstr(base, "+protect");
        if (plus && plus[8] == 0) *plus = 0;
        int k = parse_rl_spec(base, &ro, &rl_opts[i], &err);
        if (k < 0) return cli_usage_error(CMD, "--policy `%s`: %s", specs[i], err.msg);
        if (k > 0) {
            if (plus && plus[8] == 0)
                return cli_usage_error(CMD, "--policy `%s`: the RL re-ranker takes no +protect", specs[i]);
            is_rl[i] = 1;
            continue;
        }
        if (!strcmp(base, "greedy")) continue;
        mp_bandit_opts bo;
        mp_bandit_opts_default(&bo);
        if (mp_bandit_parse(base, &bo, &err))
            return cli_usage_error(CMD, "--policy `%s`: %s (or use `greedy`, `rl` or `rl-offpolicy`)", specs[i],
                                   err.msg);
    }
    if (rl_seed >= seed0 && rl_seed < seed0 + seeds)
        return cli_usage_error(CMD, "--rl-seed %llu overlaps the evaluation seeds %llu..%llu", rl_seed, seed0,
                               seed0 + seeds - 1);

    cli_progress prog;
    cli_progress_init(&prog, quiet);
    mp_dataset *ds = NULL;
    mp_sim_world *w = NULL;
    mp_sim_rl *rls[MAX_POLICIES] = {NULL};
    pol_res *pr = NULL;
    double *curve = NULL;
    int ret = 1;
    if (cli_load_dataset(CMD, db, "fit shoppers' tastes on", &prog, &ds)) goto done;
    double t0 = cli_now();
    if (mp_sim_world_fit(ds, model, mparams, (int)threads, &w, &err)) {
        cli_fail(CMD, "fitting %s on %s: %s", model, db, err.msg);
        goto done;
    }
    mp_dataset_destroy(ds);
    ds = NULL;
    uint32_t n_users = so.max_users && so.max_users < mp_sim_world_users(w) ? so.max_users : mp_sim_world_users(w);
    cli_log(quiet, "fitted %s in %.1fs: %u shoppers, %u items", model, cli_now() - t0, mp_sim_world_users(w),
            mp_sim_world_items(w));
    for (size_t si = 0; si < n_specs; si++) {
        if (!is_rl[si]) continue;
        const mp_sim_rl_opts *rop = &rl_opts[si];
        if (mp_sim_rl_create(rop, &rls[si], &err)) {
            cli_fail(CMD, "policy `%s`: %s", specs[si], err.msg);
            goto done;
        }
        free(curve);
        curve = calloc(rop->epochs ? rop->epochs : 1, sizeof(double));
        if (!curve) {
            cli_fail(CMD, "out of memory");
            goto done;
        }
        t0 = cli_now();
        if (mp_sim_rl_train(rls[si], w, &so, curve, &err)) {
            cli_fail(CMD, "training the RL re-ranker `%s`: %s", specs[si], err.msg);
            goto done;
        }
        const double *th = mp_sim_rl_theta(rls[si]);
        size_t e = rop->epochs, h = e / 5 ? e / 5 : 1;
        double first = 0, last = 0;
        for (size_t i = 0; i < h && i < e; i++) first += curve[i] / h;
        for (size_t i = e >= h ? e - h : 0; i < e; i++) last += curve[i] / h;
        char how[128];
        if (rop->epochs == 0) {
            cli_log(quiet, "`%s`: not trained; theta score=%.2f (the others 0)", specs[si], th[0]);
            continue;
        }
        if (rop->offpolicy)
            snprintf(how, sizeof how, "off-policy from %s (tau %g) logs, IS cap %g, top-K correction %s; behaviour's",
                     rop->behavior_tau > 0 ? "softmax" : "uniform", rop->behavior_tau, rop->is_cap,
                     rop->topk_correction ? "on" : "off");
        else
            snprintf(how, sizeof how, "on-policy;");
        cli_log(quiet,
                "trained `%s` in %.1fs (%u epochs, seeds from %llu, %s objective per shopper %.3f -> %.3f); "
                "theta score=%.2f recency=%.2f catfatigue=%.2f novelty=%.2f popularity=%.2f satiation=%.2f "
                "clicked=%.2f exposure=%.2f",
                specs[si], cli_now() - t0, rop->epochs, rl_seed, how, first, last, th[0], th[1], th[2], th[3], th[4],
                th[5], th[6], th[7]);
    }
    pr = calloc(n_specs, sizeof *pr);
    if (!pr) {
        cli_fail(CMD, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_specs; i++) {
        snprintf(pr[i].spec, sizeof pr[i].spec, "%s", specs[i]);
        t0 = cli_now();
        for (unsigned long long s = 0; s < seeds; s++) {
            mp_sim_result r;
            if (run_policy(specs[i], w, &so, rls[i], seed0 + s, &r, &err)) {
                cli_fail(CMD, "policy `%s`, seed %llu: %s", specs[i], seed0 + s, err.msg);
                goto done;
            }
            pr[i].v[0][s] = r.retention30;
            pr[i].v[1][s] = r.retention7;
            pr[i].v[2][s] = r.purchases / r.users;
            pr[i].v[3][s] = r.clicks / r.users;
            pr[i].v[4][s] = r.coverage;
            pr[i].v[5][s] = r.gini;
            pr[i].v[6][s] = r.sessions ? r.regret / (double)r.sessions : 0;
            pr[i].v[7][s] = r.objective / r.users;
        }
        cli_log(quiet, "%s: %llu seeds in %.1fs", specs[i], seeds, cli_now() - t0);
    }
    /* the baseline for ratios: the first plain greedy */
    long gi = -1;
    for (size_t i = 0; i < n_specs && gi < 0; i++)
        if (!strcmp(specs[i], "greedy")) gi = (long)i;
    if (!json) {
        printf("shopper simulator: %u shoppers, %u days, %u candidates, slate %u, %llu seeds (%llu..%llu); "
               "mean +- 95%% t-interval half-width\n",
               n_users, so.days, so.n_cands, so.slate, seeds, seed0, seed0 + seeds - 1);
        printf("%-28s", "policy");
        for (int k = 0; k < 8; k++) printf(" %17s", k_cols[k]);
        printf("\n");
    }
    for (size_t i = 0; i < n_specs; i++) {
        double m[8], h[8], rm[3] = {NAN, NAN, NAN}, rh[3] = {NAN, NAN, NAN};
        for (int k = 0; k < 8; k++) mp_sim_ci(pr[i].v[k], seeds, &m[k], &h[k]);
        if (gi >= 0) {
            static const int cols[3] = {0, 2, 4};
            for (int q = 0; q < 3; q++) {
                double ratio[MAX_SEEDS];
                int ok = 1;
                for (unsigned long long s = 0; s < seeds; s++) {
                    double g = pr[gi].v[cols[q]][s];
                    if (!(g > 0)) ok = 0;
                    ratio[s] = ok ? pr[i].v[cols[q]][s] / g : NAN;
                }
                if (ok) mp_sim_ci(ratio, seeds, &rm[q], &rh[q]);
            }
        }
        if (json) {
            printf("{\"policy\":\"%s\",\"seeds\":%llu", pr[i].spec, seeds);
            for (int k = 0; k < 8; k++)
                printf(",\"%s\":%.6g,\"%s_ci\":%.6g", k_cols[k], m[k], k_cols[k], isfinite(h[k]) ? h[k] : 0.0);
            if (gi >= 0)
                printf(",\"ret30_vs_greedy\":%.6g,\"buys_vs_greedy\":%.6g,\"coverage_vs_greedy\":%.6g", rm[0], rm[1],
                       rm[2]);
            printf("}\n");
            continue;
        }
        printf("%-28.28s", pr[i].spec);
        for (int k = 0; k < 8; k++) printf("  %7.4f +- %6.4f", m[k], isfinite(h[k]) ? h[k] : 0.0);
        printf("\n");
    }
    if (!json && gi >= 0) {
        printf("\nagainst greedy (ratio per seed, mean +- 95%% t-interval); goals: ret30 >= 1.10, purchases >= 1.05, "
               "coverage >= 2.00\n");
        printf("%-28s %22s %22s %22s  %s\n", "policy", "ret30 ratio", "purchases ratio", "coverage ratio",
               "goals met (lower CI bound)");
        for (size_t i = 0; i < n_specs; i++) {
            if ((long)i == gi) continue;
            double rm[3], rh[3];
            static const int cols[3] = {0, 2, 4};
            int ok = 1;
            for (int q = 0; q < 3; q++) {
                double ratio[MAX_SEEDS];
                for (unsigned long long s = 0; s < seeds; s++) {
                    double g = pr[gi].v[cols[q]][s];
                    ratio[s] = g > 0 ? pr[i].v[cols[q]][s] / g : NAN;
                }
                mp_sim_ci(ratio, seeds, &rm[q], &rh[q]);
            }
            static const double goal[3] = {1.10, 1.05, 2.0};
            char met[64];
            size_t len = 0;
            for (int q = 0; q < 3; q++) {
                int pass = isfinite(rm[q]) && rm[q] - (isfinite(rh[q]) ? rh[q] : 0) >= goal[q];
                ok &= pass;
                len += (size_t)snprintf(met + len, sizeof met - len, "%s%s", q ? "/" : "", pass ? "yes" : "no");
            }
            printf("%-28.28s %11.3f +- %7.3f %11.3f +- %7.3f %11.3f +- %7.3f  %s%s\n", pr[i].spec, rm[0],
                   isfinite(rh[0]) ? rh[0] : 0.0, rm[1], isfinite(rh[1]) ? rh[1] : 0.0, rm[2],
                   isfinite(rh[2]) ? rh[2] : 0.0, met, ok ? "  ALL" : "");
        }
    }
    ret = 0;
done:
    cli_progress_done(&prog);
    free(pr);
    free(curve);
    for (size_t i = 0; i < n_specs; i++) mp_sim_rl_destroy(rls[i]);
    mp_sim_world_destroy(w);
    mp_dataset_destroy(ds);
    return ret;
}
