/* `magpie tune`: hyper-parameter search on the validation part of a split (the library does the work: tune.h). */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "magpie/dataset.h"
#include "magpie/eval.h"
#include "magpie/json.h"
#include "magpie/split.h"
#include "magpie/tune.h"

#define CMD "tune"

static void print_help(void) {
    /* one write at exit: `magpie CMD --help | grep -q usage` must not die of SIGPIPE half-way */
    static char out_buf[1 << 16]; /* lives until exit, when stdout is flushed */
    setvbuf(stdout, out_buf, _IOFBF, sizeof out_buf);
    printf(
        "usage: magpie tune --model NAME [--protocol P] [--trials N] [--space SPEC] [--metric M] [options]\n"
        "\n"
        "Searches a model's hyper-parameters: every trial fits the model on the training part of a split and\n"
        "scores it on the validation part (as `magpie eval --on valid`). The first trial is the model's defaults;\n"
        "then random search, and for the last third local refinement around the best trial so far. The best\n"
        "parameters are refitted and evaluated on the test part (as `magpie eval --on test`). Deterministic given\n"
        "--seed. The table of trials and the test metrics go to stdout, progress to stderr.\n"
        "\n"
        "options:\n"
        "  --db PATH             store (default: $MAGPIE_DB or ./magpie.db)\n"
        "  --model NAME          model to tune (see the list below)\n"
        "  --space SPEC          parameters to search, comma-separated (replaces the model's default space):\n"
        "      name=lo:hi        uniform in [lo, hi] (integers when both bounds and the default are integers)\n"
        "      name=lo:hi:log    log-uniform (lo > 0); add :int or :real to force the type\n"
        "      name=a|b|c        one of the choices\n"
        "      name=v            a fixed value\n"
        "      e.g. 'factors=16:256:log,regularization=1e-4:1:log,alpha=1:50,solver=cg|cholesky'\n"
        "  --param k=v,...       fixed parameters for every trial (not searched)\n"
        "  --trials N            trials to run (default 30; fewer when a small finite space runs out)\n"
        "  --metric M            what trials are ranked by on validation (default ndcg@10): ndcg@K, hr@K,\n"
        "                        precision@K, recall@K, map@K, mrr@K, auc; rmse or mae (minimised)\n"
        "  --seed N              seed of the split and of the search (default 42)\n"
        "  --protocol P          loo (default), ratio, temporal or kfold, as in `magpie eval`; the validation part\n"
        "                        is loo's second-to-last item, ratio/temporal's share carved from training, or\n"
        "                        kfold's fold I+1\n"
        "  --ratio R, --share S, --cutoff TS, --min-events N, --folds N, --fold I   split options as in eval\n"
        "  --history MODE        exclude (default), zero or keep: as in eval, for trials and the test\n"
        "  --k 5,10,20           cut-offs of the final test evaluation (the metric's is added)\n"
        "  --weights t=w,...     event-type weights of the training matrix\n"
        "  --half-life-days D    time decay of the training matrix (0: none)\n"
        "  --threads N           threads for fitting and evaluation (default 2)\n"
        "  --json                print JSON instead of markdown tables\n"
        "  --quiet               no progress or log lines\n"
        "  --help                this text\n"
        "\n"
        "models and their default spaces:\n");
    const mp_model_ops *const *reg = mp_model_registry();
    for (size_t i = 0; reg[i]; i++) {
        mp_tune_space s;
        mp_error e;
        mp_error_clear(&e);
        char *text = NULL;
        if (mp_tune_space_default(&s, reg[i], &e) == MP_OK && mp_tune_space_format(&s, &text) == MP_OK)
            printf("  %-10s %s\n", reg[i]->name, text);
        else
            printf("  %-10s (none: pass --space)\n", reg[i]->name);
        free(text);
        mp_tune_space_free(&s);
    }
    printf("\nexample (MovieLens-100K, Microsoft Recommenders split):\n"
           "  magpie tune --db ml100k.db --model als --protocol ratio --ratio 0.75 --seed 1 --trials 30\n");
}

typedef struct trial_log {
    int quiet;
    const char *metric;
} trial_log;

static void on_trial(void *ctx, const mp_tune_trial *tr, size_t index, size_t best) {
    const trial_log *l = ctx;
    if (tr->rc != MP_OK)
        cli_log(l->quiet, "trial %zu failed: %s [%s]", index + 1, tr->error ? tr->error : "?", tr->params);
    else
        cli_log(l->quiet, "trial %zu: %s %.4f (fit %.2fs)%s [%s]", index + 1, l->metric, tr->value, tr->fit_seconds,
                best == index ? " best so far" : "", tr->params);
}

/* Writes s as a JSON string literal. */
static void put_json_string(FILE *f, const char *s) {
    if (mp_json_write_str(f, s, strlen(s)) == MP_ENOMEM) fputs("\"\"", f);
}

static void put_json_number(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.10g", v);
    else fputs("null", f);
}

static int print_json(const mp_tune_result *r, const char *model, const char *protocol, const char *metric,
                      unsigned long long seed, const char *space, const char *title) {
    char *test = NULL;
    if (r->has_test && mp_eval_result_json(&r->test, title, &test) != MP_OK) return -1;
    printf("{\"model\":");
    put_json_string(stdout, model);
    printf(",\"protocol\":");
    put_json_string(stdout, protocol);
    printf(",\"metric\":");
    put_json_string(stdout, metric);
    printf(",\"seed\":%llu,\"space\":", seed);
    put_json_string(stdout, space);
    printf(",\"trials\":[");
    for (size_t i = 0; i < r->n_trials; i++) {
        const mp_tune_trial *t = &r->trials[i];
        printf("%s{\"trial\":%zu,\"params\":", i ? "," : "", i + 1);
        put_json_string(stdout, t->params);
        printf(",\"value\":");
        put_json_number(stdout, t->value);
        printf(",\"fit_seconds\":%.3f,\"eval_seconds\":%.3f,\"error\":", t->fit_seconds, t->eval_seconds);
        if (t->error) put_json_string(stdout, t->error);
        else fputs("null", stdout);
        putchar('}');
    }
    printf("],\"best\":{\"trial\":%zu,\"params\":", r->best + 1);
    put_json_string(stdout, r->best_params);
    printf(",\"value\":");
    put_json_number(stdout, r->trials[r->best].value);
    printf("},\"test\":");
    if (test) {
        size_t len = strlen(test);
        while (len && (test[len - 1] == '\n' || test[len - 1] == ' ')) test[--len] = 0;
        fputs(test, stdout);
    } else {
        fputs("null", stdout);
    }
    printf("}\n");
    free(test);
    return 0;
}

static int print_tables(const mp_tune_result *r, const char *model, const char *protocol, const char *metric,
                        unsigned long long seed, const char *space, const char *title) {
    printf("## tune %s on %s (seed %llu): %zu trials by %s on validation\n\nspace: %s\n\n", model, protocol, seed,
           r->n_trials, metric, space);
    printf("| trial | %s (valid) | fit s | params |\n|---:|---:|---:|---|\n", metric);
    for (size_t i = 0; i < r->n_trials; i++) {
        const mp_tune_trial *t = &r->trials[i];
        if (t->rc != MP_OK)
            printf("| %zu | failed | %.2f | %s (%s) |\n", i + 1, t->fit_seconds, t->params,
                   t->error ? t->error : "?");
        else
            printf("| %zu%s | %.4f | %.2f | %s |\n", i + 1, i == r->best ? " *" : "", t->value, t->fit_seconds,
                   t->params);
    }
    printf("\nbest: trial %zu, %s %.4f on validation\nbest params: %s\n\n", r->best + 1, metric,
           r->trials[r->best].value, r->best_params);
    if (r->has_test) {
        char *test = NULL;
        if (mp_eval_result_table(&r->test, title, &test) != MP_OK) return -1;
        fputs(test, stdout);
        free(test);
    } else {
        printf("(the split has no test part: no test metrics)\n");
    }
    return 0;
}

/* Adds k to the eval cut-offs (kept ascending) when missing and there is room. */
static void add_k(mp_eval_opts *eo, uint32_t k) {
    for (size_t i = 0; i < eo->n_ks; i++)
        if (eo->ks[i] == k) return;
    if (eo->n_ks == MP_EVAL_MAX_K) return;
    size_t i = eo->n_ks;
    while (i > 0 && eo->ks[i - 1] > k) {
        eo->ks[i] = eo->ks[i - 1];
        i--;
    }
    eo->ks[i] = k;
    eo->n_ks++;
}

int cmd_tune(int argc, char **argv) {
    enum {
        O_DB = 1000, O_MODEL, O_PARAM, O_SPACE, O_TRIALS, O_METRIC, O_SEED, O_PROTOCOL, O_RATIO, O_SHARE, O_CUTOFF,
        O_MIN_EVENTS, O_FOLDS, O_FOLD, O_HISTORY, O_K, O_WEIGHTS, O_HALF, O_THREADS, O_JSON, O_QUIET, O_HELP
    };
    static const struct option longopts[] = {
        {"db", required_argument, 0, O_DB},
        {"model", required_argument, 0, O_MODEL},
        {"param", required_argument, 0, O_PARAM},
        {"space", required_argument, 0, O_SPACE},
        {"trials", required_argument, 0, O_TRIALS},
        {"metric", required_argument, 0, O_METRIC},
        {"seed", required_argument, 0, O_SEED},
        {"protocol", required_argument, 0, O_PROTOCOL},
        {"ratio", required_argument, 0, O_RATIO},
        {"share", required_argument, 0, O_SHARE},
        {"cutoff", required_argument, 0, O_CUTOFF},
        {"min-events", required_argument, 0, O_MIN_EVENTS},
        {"folds", required_argument, 0, O_FOLDS},
        {"fold", required_argument, 0, O_FOLD},
        {"history", required_argument, 0, O_HISTORY},
        {"k", required_argument, 0, O_K},
        {"weights", required_argument, 0, O_WEIGHTS},
        {"half-life-days", required_argument, 0, O_HALF},
        {"threads", required_argument, 0, O_THREADS},
        {"json", no_argument, 0, O_JSON},
        {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    const char *db = cli_default_db(), *model_name = NULL, *params = NULL, *space_spec = NULL, *weights = NULL;
    const char *metric_spec = "ndcg@10";
    cli_split_args sa;
    cli_split_args_init(&sa);
    int json = 0, quiet = 0;
    double half_life = 0;
    unsigned long long trials = 30, v;
    mp_error err;
    mp_error_clear(&err);
    mp_tune_opts to;
    mp_tune_opts_default(&to);

    optind = 1;
    opterr = 0;
    int c, li = 0;
    while ((c = getopt_long(argc, argv, "", longopts, &li)) != -1) {
        switch (c) {
        case O_DB: db = optarg; break;
        case O_PROTOCOL: case O_RATIO: case O_SHARE: case O_CUTOFF: case O_SEED: case O_MIN_EVENTS: case O_FOLDS:
        case O_FOLD:
            if (cli_split_arg(CMD, longopts[li].name, optarg, &sa)) return 2;
            break;
        case O_MODEL: model_name = optarg; break;
        case O_PARAM: params = optarg; break;
        case O_SPACE: space_spec = optarg; break;
        case O_TRIALS:
            if (cli_parse_u64(CMD, "--trials", optarg, &trials)) return 2;
            if (trials < 1 || trials > 100000) return cli_usage_error(CMD, "--trials: expected 1 to 100000, got %s",
                                                                      optarg);
            break;
        case O_METRIC: metric_spec = optarg; break;
        case O_HISTORY:
            if (mp_history_mode_parse(optarg, &to.eval.history) != MP_OK)
                return cli_usage_error(CMD, "--history: expected exclude, zero or keep, got \"%s\"", optarg);
            break;
        case O_K:
            if (mp_eval_parse_ks(&to.eval, optarg, &err) != MP_OK) return cli_usage_error(CMD, "--%s", err.msg);
            break;
        case O_WEIGHTS: weights = optarg; break;
        case O_HALF:
            if (cli_parse_double(CMD, "--half-life-days", optarg, &half_life)) return 2;
            if (half_life < 0) return cli_usage_error(CMD, "--half-life-days: must be >= 0, got %s", optarg);
            break;
        case O_THREADS:
            if (cli_parse_u64(CMD, "--threads", optarg, &v)) return 2;
            if (v < 1 || v > 64) return cli_usage_error(CMD, "--threads: expected 1 to 64, got %s", optarg);
            to.eval.n_threads = (uint32_t)v;
            break;
        case O_JSON: json = 1; break;
        case O_QUIET: quiet = 1; break;
        case O_HELP: print_help(); return 0;
        case ':': return cli_usage_error(CMD, "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error(CMD, "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(CMD, "unexpected argument \"%s\"", argv[optind]);
    if (!model_name) return cli_usage_error(CMD, "--model NAME is required (e.g. --model als)");
    const mp_model_ops *ops = mp_model_find(model_name);
    if (!ops) {
        mp_model *probe = NULL;
        mp_model_create(&probe, model_name, &err); /* its message lists the registered models */
        return cli_usage_error(CMD, "--model: %s", err.msg);
    }
    if (mp_tune_metric_parse(metric_spec, &to.metric, &err) != MP_OK) return cli_usage_error(CMD, "--%s", err.msg);
    char metric_name[32];
    mp_tune_metric_name(&to.metric, metric_name, sizeof metric_name);
    if (to.metric.kind <= MP_TUNE_MRR) add_k(&to.eval, to.metric.k);

    mp_split_opts so;
    if (cli_split_opts_build(CMD, &sa, &so)) return 2;
    const mp_split_kind kind = so.kind;
    if (kind == MP_SPLIT_COLD_ITEM || kind == MP_SPLIT_COLD_USER)
        return cli_usage_error(CMD, "--protocol %s has no validation part to tune on (use loo, ratio, temporal or "
                                    "kfold)",
                               sa.protocol);
    if (kind == MP_SPLIT_KFOLD && so.n_folds < 3)
        return cli_usage_error(CMD, "--folds: tune needs 3 or more folds (train, validation and test), got %u",
                               so.n_folds);
    so.with_valid = 1;
    mp_weighting w;
    mp_weighting_default(&w);
    w.half_life_days = half_life;
    if (weights && mp_weighting_parse(&w, weights, &err) != MP_OK) return cli_usage_error(CMD, "--%s", err.msg);

    /* the space and the fixed parameters first, so mistakes fail before loading data */
    mp_tune_space space;
    int src = space_spec ? mp_tune_space_parse(&space, ops, space_spec, &err)
                         : mp_tune_space_default(&space, ops, &err);
    if (src != MP_OK) return cli_usage_error(CMD, "--space: %s", err.msg);
    if (params) {
        mp_model *probe = NULL;
        int prc = mp_model_create(&probe, model_name, &err);
        if (prc == MP_OK) prc = mp_model_set_params(probe, params, &err);
        mp_model_destroy(probe);
        if (prc != MP_OK) {
            mp_tune_space_free(&space);
            return cli_usage_error(CMD, "--param: %s", err.msg);
        }
    }
    char *space_text = NULL;
    if (mp_tune_space_format(&space, &space_text) != MP_OK) {
        mp_tune_space_free(&space);
        return cli_fail(CMD, "out of memory");
    }

    int ret = 1;
    mp_dataset *ds = NULL;
    mp_split sp;
    memset(&sp, 0, sizeof sp);
    mp_tune_result res;
    memset(&res, 0, sizeof res);
    cli_progress prog;
    cli_progress_init(&prog, quiet);
    trial_log tl = {quiet, metric_name};

    if (cli_load_dataset(CMD, db, "tune on", &prog, &ds)) goto done;
    if (mp_split_make(ds, &so, &sp, &err) != MP_OK) {
        cli_fail(CMD, "%s", err.msg);
        goto done;
    }
    cli_log(quiet, "split %s (seed %llu): train %zu, valid %zu, test %zu events", mp_split_kind_name(kind), sa.seed,
            sp.n_train, sp.n_valid, sp.n_test);
    cli_log(quiet, "space: %s", space_text);

    to.model = model_name;
    to.base_params = params;
    to.space = &space;
    to.n_trials = (uint32_t)trials;
    to.seed = sa.seed;
    to.n_threads = (int)to.eval.n_threads;
    to.on_trial = on_trial;
    to.on_trial_ctx = &tl;
    double t0 = cli_now();
    if (mp_tune_run(ds, &sp, &w, &to, &res, &err) != MP_OK) {
        cli_fail(CMD, "%s", err.msg);
        goto done;
    }
    cli_log(quiet, "%zu trials in %.1fs; best %s %.4f: %s", res.n_trials, cli_now() - t0, metric_name,
            res.trials[res.best].value, res.best_params);

    char title[1024];
    snprintf(title, sizeof title, "%s %s on %s (test), tuned by %s on validation", model_name, res.best_params,
             mp_split_kind_name(kind), metric_name);
    int prc = json ? print_json(&res, model_name, mp_split_kind_name(kind), metric_name, sa.seed, space_text, title)
                   : print_tables(&res, model_name, mp_split_kind_name(kind), metric_name, sa.seed, space_text, title);
    if (prc != 0 || fflush(stdout) != 0) {
        cli_fail(CMD, "writing the result failed");
        goto done;
    }
    ret = 0;
done:
    free(space_text);
    mp_tune_space_free(&space);
    mp_tune_result_free(&res);
    mp_split_free(&sp);
    mp_dataset_destroy(ds);
    return ret;
}
