/* magpie ope: off-policy evaluation of a policy from a log with propensities (DM, IPS, SNIPS, DR, SNDR, Switch-DR
 * with bootstrap intervals). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "magpie/json.h"
#include "magpie/ope.h"

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: magpie ope --log FILE --policy SPEC [options]\n"
        "\n"
        "Estimates the value (mean reward per shown item, e.g. CTR) that the policy SPEC would have had, from a log\n"
        "written by another (logging) policy that recorded the probability of what it showed. Prints each\n"
        "estimator with its bootstrap confidence interval:\n"
        "  dm         mean over rounds of sum_a pi_e(a|x) q(x,a)               (reward model only)\n"
        "  ips        mean(w r), w = pi_e(a|x) / pi_b(a|x)                     (importance weighting)\n"
        "  snips      sum(w r) / sum(w)                                        (self-normalised IPS)\n"
        "  dr         dm + mean(w (r - q(x,a)))                                (doubly robust)\n"
        "  sndr       dm + sum(w (r - q(x,a))) / sum(w)                         (self-normalised DR)\n"
        "  switch-dr  dm + mean(1[w <= tau] w (r - q(x,a)))                     (DR correction only where w <= tau)\n"
        "q is a reward model fitted with K-fold cross-fitting (each round's q comes from a model that did not see it).\n"
        "\n"
        "log formats (--format, default: jsonl for *.jsonl, else csv):\n"
        "  csv    header row; columns action (item), reward (number), propensity (pi_b of the shown item, in (0,1]),\n"
        "         optional position (integer slot); every other column except event_id, user, timestamp and an\n"
        "         unnamed index is a categorical user feature for the reward model. Example:\n"
        "           action,position,reward,propensity,segment\n"
        "           shoe-12,1,0,0.2,young\n"
        "  obd    the Open Bandit Dataset's <campaign>.csv (item_id, position 1..3, click, propensity_score,\n"
        "         user_feature_0..3 as features)\n"
        "  jsonl  Magpie's serving feedback log, one object per line:\n"
        "           {\"event_id\":\"e1\",\"user\":\"u7\",\"item\":\"shoe-12\",\"position\":1,\"propensity\":0.25,"
        "\"reward\":1}\n"
        "\n"
        "policies (--policy):\n"
        "  uniform                 every item equally likely in every slot\n"
        "  bts:YAML[:CAMPAIGN]     Bernoulli Thompson sampling with the Beta priors of obp's prior_bts.yaml\n"
        "                          (campaign default men); the slot distribution by Monte Carlo as obp builds it\n"
        "  matrix:FILE             a CSV with header action,position,prob (position omitted for 1-slot logs);\n"
        "                          missing pairs are 0, each slot must sum to 1\n"
        "  greedy[:EPS]            learn a policy: fit the reward model (no cross-fitting) on --train FILE, or\n"
        "                          else on a random half of the log; slot k shows the k-th best item by the\n"
        "                          model with probability 1-EPS (default 0.1), else a uniform item; evaluated on\n"
        "                          the log (or its other half)\n"
        "\n"
        "options:\n"
        "  --log FILE            the logged feedback (required)\n"
        "  --format F            csv | obd | jsonl\n"
        "  --policy SPEC         the evaluation policy (required)\n"
        "  --estimators LIST     comma-separated subset of dm,ips,snips,dr,sndr,switch-dr, or all (default)\n"
        "  --bootstrap B         bootstrap resamples for the intervals (default 1000; 0: none)\n"
        "  --alpha A             interval level 1-A (default 0.05)\n"
        "  --seed N              seed for the bootstrap, folds, splits and Monte Carlo (default 12345)\n"
        "  --tau T               Switch-DR threshold on w (default 10)\n"
        "  --reward-model M      logistic (default) | ctr (per item and slot, smoothed)\n"
        "  --folds K             cross-fitting folds (default 3)\n"
        "  --n-sim N             Monte Carlo draws for bts (default 100000)\n"
        "  --on-policy FILE      a log written by the evaluated policy itself (same --format): its mean reward\n"
        "                        and bootstrap interval are printed beside the estimates, with relative errors\n"
        "  --train FILE          the log greedy learns from (same --format; default: half of --log)\n"
        "  --json                one JSON object instead of the table\n"
        "  -h, --help            this text\n"
        "\n"
        "example (Open Bandit Dataset, BTS evaluated from the random policy's log):\n"
        "  magpie ope --format obd --log random/men/men.csv --policy bts:prior_bts.yaml:men \\\n"
        "             --on-policy bts/men/men.csv\n");
}

static int default_format(const char *path) {
    size_t l = strlen(path);
    return l > 6 && !strcmp(path + l - 6, ".jsonl") ? MP_OPE_FORMAT_JSONL : MP_OPE_FORMAT_CSV;
}

/* The matrix policy file: action,position,prob. */
static int read_matrix_policy(const char *path, const mp_ope_log *log, mp_ope_table *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f) return mp_error_set(err, MP_EIO, "%s: cannot open", path);
    size_t A = log->n_actions, S = log->n_slots;
    out->rows = 1;
    out->v = calloc(S * A, sizeof *out->v);
    if (!out->v) {
        fclose(f);
        return mp_error_set(err, MP_ENOMEM, "out of memory");
    }
    char line[4096];
    size_t ln = 0;
    int has_pos = -1, rc = MP_OK;
    while (fgets(line, sizeof line, f)) {
        ln++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) continue;
        if (has_pos < 0) {
            if (!strcmp(line, "action,position,prob")) has_pos = 1;
            else if (!strcmp(line, "action,prob")) has_pos = 0;
            else {
                rc = mp_error_set(err, MP_EBADREC, "%s:%zu: expected the header action,position,prob", path, ln);
                break;
            }
            continue;
        }
        char *c1 = strchr(line, ','), *c2 = c1 && has_pos ? strchr(c1 + 1, ',') : c1;
        if (!c1 || !c2) {
            rc = mp_error_set(err, MP_EBADREC, "%s:%zu: expected %d fields", path, ln, has_pos ? 3 : 2);
            break;
        }
        *c1 = 0;
        uint32_t a = log->action_labels ? mp_strmap_get(log->action_labels, line, strlen(line)) : MP_STRMAP_NONE;
        if (!log->action_labels) {
            char *e;
            unsigned long v = strtoul(line, &e, 10);
            if (!*e && v < A) a = (uint32_t)v;
        }
        if (a == MP_STRMAP_NONE || a >= A) {
            rc = mp_error_set(err, MP_ENOTFOUND, "%s:%zu: action \"%s\" does not occur in the log", path, ln, line);
            break;
        }
        size_t s = 0;
        if (has_pos) {
            *c2 = 0;
            char *e;
            long long pv = strtoll(c1 + 1, &e, 10);
            size_t k = 0;
            if (log->slot_labels)
                while (k < S && log->slot_labels[k] != pv) k++;
            else k = pv == 0 ? 0 : S;
            if (*e || k == S) {
                rc = mp_error_set(err, MP_ENOTFOUND, "%s:%zu: position \"%s\" does not occur in the log", path, ln,
                                  c1 + 1);
                break;
            }
            s = k;
        }
        char *e;
        double p = strtod(c2 + 1, &e);
        if (*e || !(p >= 0 && p <= 1)) {
            rc = mp_error_set(err, MP_EBADREC, "%s:%zu: prob \"%s\" is not a number in [0, 1]", path, ln, c2 + 1);
            break;
        }
        out->v[s * A + a] = p;
    }
    fclose(f);
    if (rc) mp_ope_table_free(out);
    return rc;
}

typedef struct {
    double value, lo, hi;
    size_t n;
    int ok;
} on_policy;

/* Mean reward of a log with a bootstrap interval (IPS with w = 1 on the same resampler). */
static int on_policy_value(const mp_ope_log *log, const mp_ope_opts *o, on_policy *out, mp_error *err) {
    mp_ope_rounds r = {log->n, malloc(log->n * sizeof(double)), log->reward, NULL, NULL};
    if (!r.w) return mp_error_set(err, MP_ENOMEM, "out of memory");
    for (size_t i = 0; i < log->n; i++) r.w[i] = 1.0;
    mp_ope_result res[MP_OPE_N_ESTIMATORS];
    int rc = mp_ope_estimate_all(&r, o, res, err);
    free(r.w);
    if (rc) return rc;
    out->value = res[MP_OPE_IPS].value;
    out->lo = res[MP_OPE_IPS].lo;
    out->hi = res[MP_OPE_IPS].hi;
    out->n = log->n;
    out->ok = 1;
    return MP_OK;
}

/* A JSON string literal of s (static buffer, one use per printf argument list is enough: callers copy). */
static const char *jstr(char *buf, size_t cap, const char *s) {
    mp_json_escape(buf, cap, s, strlen(s));
    return buf;
}

/* A JSON number, or null when not finite (a self-normalised estimate whose weights sum to 0). */
static const char *jnum(char *buf, double v) {
    if (isfinite(v)) snprintf(buf, 32, "%.10g", v);
    else snprintf(buf, 32, "null");
    return buf;
}

static double log_mean_reward(const mp_ope_log *log) {
    double s = 0;
    for (size_t i = 0; i < log->n; i++) s += log->reward[i];
    return s / (double)log->n;
}

int cmd_ope(int argc, char **argv) {
    static const struct option longopts[] = {
        {"log", required_argument, NULL, 'l'},       {"format", required_argument, NULL, 'f'},
        {"policy", required_argument, NULL, 'p'},    {"estimators", required_argument, NULL, 'e'},
        {"bootstrap", required_argument, NULL, 'b'}, {"alpha", required_argument, NULL, 'a'},
        {"seed", required_argument, NULL, 's'},      {"tau", required_argument, NULL, 't'},
        {"reward-model", required_argument, NULL, 'r'}, {"folds", required_argument, NULL, 'k'},
        {"n-sim", required_argument, NULL, 'n'},     {"on-policy", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, 'j'},            {"help", no_argument, NULL, 'h'},
        {"train", required_argument, NULL, 'T'},
        {NULL, 0, NULL, 0},
    };
    const char *log_path = NULL, *policy = NULL, *on_path = NULL, *train_path = NULL, *estimators = "all", *rm_name = "logistic";
    int format = -1, json = 0, c;
    unsigned long long boot = 1000, seed = 12345, folds = 3, n_sim = 100000;
    double alpha = 0.05, tau = 10;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'l': log_path = optarg; break;
        case 'f':
            if ((format = mp_ope_format_parse(optarg)) < 0)
                return cli_usage_error("ope", "--format: expected csv, obd or jsonl, got \"%s\"", optarg);
            break;
        case 'p': policy = optarg; break;
        case 'e': estimators = optarg; break;
        case 'b':
            if (cli_parse_u64("ope", "--bootstrap", optarg, &boot)) return 2;
            if (boot > 1000000) return cli_usage_error("ope", "--bootstrap: at most 1000000");
            break;
        case 'a':
            if (cli_parse_double("ope", "--alpha", optarg, &alpha)) return 2;
            if (!(alpha > 0 && alpha < 1)) return cli_usage_error("ope", "--alpha: must be in (0, 1)");
            break;
        case 's':
            if (cli_parse_u64("ope", "--seed", optarg, &seed)) return 2;
            break;
        case 't':
            if (cli_parse_double("ope", "--tau", optarg, &tau)) return 2;
            if (tau < 0) return cli_usage_error("ope", "--tau: must be >= 0");
            break;
        case 'r': rm_name = optarg; break;
        case 'k':
            if (cli_parse_u64("ope", "--folds", optarg, &folds)) return 2;
            if (folds < 1 || folds > 100) return cli_usage_error("ope", "--folds: must be 1..100");
            break;
        case 'n':
            if (cli_parse_u64("ope", "--n-sim", optarg, &n_sim)) return 2;
            if (n_sim < 1) return cli_usage_error("ope", "--n-sim: must be positive");
            break;
        case 'o': on_path = optarg; break;
        case 'T': train_path = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: return cli_usage_error("ope", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("ope", "unexpected argument \"%s\"", argv[optind]);
    if (!log_path) return cli_usage_error("ope", "--log FILE is required");
    if (!policy) return cli_usage_error("ope", "--policy SPEC is required (uniform, bts:YAML[:CAMPAIGN], "
                                               "matrix:FILE, greedy[:EPS])");
    int want[MP_OPE_N_ESTIMATORS] = {0};
    if (!strcmp(estimators, "all")) {
        for (int e = 0; e < MP_OPE_N_ESTIMATORS; e++) want[e] = 1;
    } else {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", estimators);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            int e = mp_ope_estimator_parse(tok);
            if (e < 0)
                return cli_usage_error("ope", "--estimators: unknown estimator \"%s\" (dm, ips, snips, dr, sndr, "
                                              "switch-dr, all)",
                                       tok);
            want[e] = 1;
        }
    }
    mp_ope_rm_opts rmo;
    mp_ope_rm_opts_default(&rmo);
    rmo.folds = (uint32_t)folds;
    rmo.seed = seed;
    if (!strcmp(rm_name, "logistic")) rmo.kind = MP_OPE_RM_LOGISTIC;
    else if (!strcmp(rm_name, "ctr")) rmo.kind = MP_OPE_RM_CTR;
    else return cli_usage_error("ope", "--reward-model: expected logistic or ctr, got \"%s\"", rm_name);
    if (format < 0) format = default_format(log_path);

    mp_error err;
    mp_error_clear(&err);
    mp_ope_log full = {0}, train = {0}, eval = {0}, on = {0};
    mp_ope_table pi_e = {0}, q = {0}, q_train = {0};
    mp_ope_rounds rounds = {0};
    int rc = 1;
    double *alpha_p = NULL, *beta_p = NULL;
    char policy_desc[512];
    if (mp_ope_log_read(log_path, (mp_ope_format)format, &full, &err)) {
        cli_fail("ope", "%s", err.msg);
        goto done;
    }
    const mp_ope_log *log = &full;
    if (!strcmp(policy, "uniform")) {
        pi_e.rows = 1;
        pi_e.v = malloc((size_t)full.n_slots * full.n_actions * sizeof *pi_e.v);
        if (!pi_e.v) goto oom;
        for (size_t j = 0; j < (size_t)full.n_slots * full.n_actions; j++) pi_e.v[j] = 1.0 / full.n_actions;
        snprintf(policy_desc, sizeof policy_desc, "uniform over %u items", full.n_actions);
    } else if (!strncmp(policy, "bts:", 4)) {
        char path[400], campaign[64] = "men";
        snprintf(path, sizeof path, "%s", policy + 4);
        char *colon = strrchr(path, ':');
        if (colon && !strchr(colon, '/')) {
            snprintf(campaign, sizeof campaign, "%s", colon + 1);
            *colon = 0;
        }
        uint32_t na;
        if (mp_ope_read_bts_prior(path, campaign, &alpha_p, &beta_p, &na, &err)) {
            cli_fail("ope", "%s", err.msg);
            goto done;
        }
        if (na != full.n_actions) {
            cli_fail("ope", "%s: campaign `%s` has priors for %u items but the log has %u items", path, campaign, na,
                     full.n_actions);
            goto done;
        }
        if (mp_ope_policy_bts(alpha_p, beta_p, na, full.n_slots, n_sim, seed, &pi_e, &err)) {
            cli_fail("ope", "%s", err.msg);
            goto done;
        }
        snprintf(policy_desc, sizeof policy_desc, "Bernoulli TS, priors %s:%s, %llu Monte Carlo draws", path,
                 campaign, n_sim);
    } else if (!strncmp(policy, "matrix:", 7)) {
        if (read_matrix_policy(policy + 7, &full, &pi_e, &err)) {
            cli_fail("ope", "%s", err.msg);
            goto done;
        }
        snprintf(policy_desc, sizeof policy_desc, "matrix %s", policy + 7);
    } else if (!strncmp(policy, "greedy", 6) && (policy[6] == 0 || policy[6] == ':')) {
        double eps = 0.1;
        if (policy[6] == ':' && cli_parse_double("ope", "--policy greedy:EPS", policy + 7, &eps)) return 2;
        if (!(eps >= 0 && eps <= 1)) return cli_usage_error("ope", "--policy greedy:EPS: EPS must be in [0, 1]");
        mp_ope_rm_opts one = rmo;
        one.folds = 1;
        if (train_path) {
            if (mp_ope_log_read(train_path, (mp_ope_format)format, &train, &err)) {
                cli_fail("ope", "%s", err.msg);
                goto done;
            }
            if (train.n_actions != full.n_actions || train.n_slots != full.n_slots) {
                cli_fail("ope", "--train %s has %u items and %u slots, the log %u and %u", train_path,
                         train.n_actions, train.n_slots, full.n_actions, full.n_slots);
                goto done;
            }
        } else if (mp_ope_log_split(&full, 0.5, seed, &train, &eval, &err)) {
            cli_fail("ope", "%s", err.msg);
            goto done;
        }
        if (mp_ope_reward_model_fit(&train, &one, &q_train, &err)) {
            cli_fail("ope", "%s", err.msg);
            goto done;
        }
        /* Both reward models are additive in the context features, so every context ranks the items of a slot
         * alike: the learned policy is context-free and its first row serves every round of the evaluated log. */
        free(q_train.row_of);
        q_train.row_of = NULL;
        q_train.rows = 1;
        if (mp_ope_policy_greedy(&train, &q_train, eps, &pi_e, &err)) {
            cli_fail("ope", "%s", err.msg);
            goto done;
        }
        if (!train_path) log = &eval;
        snprintf(policy_desc, sizeof policy_desc,
                 "greedy (eps %g) on a %s reward model learned from %zu rounds of %s, evaluated on %s%zu rounds", eps,
                 rm_name, train.n, train_path ? train_path : "a random half of the log",
                 train_path ? "" : "the other ", log->n);
    } else {
        rc = cli_usage_error("ope", "--policy: unknown policy \"%s\" (uniform, bts:YAML[:CAMPAIGN], matrix:FILE, "
                                    "greedy[:EPS])",
                             policy);
        goto done;
    }
    int need_q = want[MP_OPE_DM] || want[MP_OPE_DR] || want[MP_OPE_SNDR] || want[MP_OPE_SWITCH_DR];
    if (need_q && mp_ope_reward_model_fit(log, &rmo, &q, &err)) {
        cli_fail("ope", "%s", err.msg);
        goto done;
    }
    if (mp_ope_rounds_build(log, &pi_e, need_q ? &q : NULL, &rounds, &err)) {
        cli_fail("ope", "%s", err.msg);
        goto done;
    }
    mp_ope_opts oo = {tau, (uint32_t)boot, alpha, seed};
    mp_ope_result res[MP_OPE_N_ESTIMATORS];
    if (mp_ope_estimate_all(&rounds, &oo, res, &err)) {
        cli_fail("ope", "%s", err.msg);
        goto done;
    }
    on_policy onv = {0};
    if (on_path) {
        if (mp_ope_log_read(on_path, (mp_ope_format)format, &on, &err) || on_policy_value(&on, &oo, &onv, &err)) {
            cli_fail("ope", "%s", err.msg);
            goto done;
        }
    }
    double wsum = 0, wmax = 0;
    for (size_t i = 0; i < rounds.n; i++) {
        wsum += rounds.w[i];
        if (rounds.w[i] > wmax) wmax = rounds.w[i];
    }
    double logging = log_mean_reward(log);
    int level = (int)lround(100 * (1 - alpha));
    if (json) {
        char jb1[2048], jb2[2048];
        printf("{\"log\":{\"path\":%s,\"rounds\":%zu,\"actions\":%u,\"slots\":%u,\"value\":%.10g},"
               "\"policy\":%s,\"mean_w\":%.10g,\"max_w\":%.10g,\"estimates\":{",
               jstr(jb1, sizeof jb1, log_path), log->n, log->n_actions, log->n_slots, logging,
               jstr(jb2, sizeof jb2, policy), wsum / (double)rounds.n, wmax);
        int first = 1;
        for (int e = 0; e < MP_OPE_N_ESTIMATORS; e++) {
            if (!want[e]) continue;
            printf("%s\"%s\":{\"value\":%s", first ? "" : ",", mp_ope_estimator_name((mp_ope_estimator)e),
                   jnum(jb1, res[e].value));
            if (boot) printf(",\"lo\":%s,\"hi\":%s", jnum(jb1, res[e].lo), jnum(jb2, res[e].hi));
            if (onv.ok) printf(",\"rel_error\":%s", jnum(jb1, fabs(res[e].value - onv.value) / onv.value));
            printf("}");
            first = 0;
        }
        printf("}");
        if (onv.ok) {
            printf(",\"on_policy\":{\"path\":%s,\"rounds\":%zu,\"value\":%.10g", jstr(jb1, sizeof jb1, on_path),
                   onv.n, onv.value);
            if (boot) printf(",\"lo\":%s,\"hi\":%s", jnum(jb1, onv.lo), jnum(jb2, onv.hi));
            printf("}");
        }
        printf("}\n");
    } else {
        printf("log:          %s (%zu rounds, %u items, %u slots); its own mean reward %.6f\n", log_path, log->n,
               log->n_actions, log->n_slots, logging);
        printf("policy:       %s\n", policy_desc);
        printf("weights:      mean w %.4f (1 when the policy's support is covered), max w %.4g\n",
               wsum / (double)rounds.n, wmax);
        if (need_q) printf("reward model: %s, %llu-fold cross-fitting\n", rm_name, folds);
        printf("intervals:    %d%% bootstrap percentile, %llu resamples, seed %llu\n\n", level, boot, seed);
        printf("%-10s %12s   %-25s%s\n", "estimator", "estimate", boot ? "interval" : "",
               onv.ok ? "  rel.error  covers on-policy  overlaps its CI" : "");
        for (int e = 0; e < MP_OPE_N_ESTIMATORS; e++) {
            if (!want[e]) continue;
            char iv[64] = "";
            if (boot) snprintf(iv, sizeof iv, "[%.6f, %.6f]", res[e].lo, res[e].hi);
            printf("%-10s %12.6f   %-25s", mp_ope_estimator_name((mp_ope_estimator)e), res[e].value, iv);
            if (onv.ok)
                printf("  %9.3f  %-16s %s", fabs(res[e].value - onv.value) / onv.value,
                       !boot ? "-" : (res[e].lo <= onv.value && onv.value <= res[e].hi) ? "yes" : "no",
                       !boot ? "-" : (res[e].lo <= onv.hi && onv.lo <= res[e].hi) ? "yes" : "no");
            printf("\n");
        }
        if (onv.ok) {
            char iv[64] = "";
            if (boot) snprintf(iv, sizeof iv, "[%.6f, %.6f]", onv.lo, onv.hi);
            printf("%-10s %12.6f   %-25s  (mean reward of %s, %zu rounds)\n", "on-policy", onv.value, iv, on_path,
                   onv.n);
        }
    }
    rc = 0;
    goto done;
oom:
    cli_fail("ope", "out of memory");
done:
    free(alpha_p);
    free(beta_p);
    mp_ope_rounds_free(&rounds);
    mp_ope_table_free(&pi_e);
    mp_ope_table_free(&q);
    mp_ope_table_free(&q_train);
    mp_ope_log_free(&full);
    mp_ope_log_free(&train);
    mp_ope_log_free(&eval);
    mp_ope_log_free(&on);
    return rc;
}
