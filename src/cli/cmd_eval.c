/* `magpie eval`: load a store, split it, fit a model on the training part and evaluate it offline. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "magpie/dataset.h"
#include "magpie/eval.h"
#include "magpie/model.h"
#include "magpie/split.h"
#include "magpie/trainset.h"

#define CMD "eval"

static void print_help(void) {
    /* one write at exit: `magpie CMD --help | grep -q usage` must not die of SIGPIPE half-way */
    static char out_buf[1 << 16]; /* lives until exit, when stdout is flushed */
    setvbuf(stdout, out_buf, _IOFBF, sizeof out_buf);
    printf(
        "usage: magpie eval --model NAME [options]\n"
        "\n"
        "Splits the events of a store into train / validation / test, fits a model on the training part and\n"
        "evaluates its top-k recommendations on the held-out part. The table goes to stdout, logs to stderr.\n"
        "\n"
        "options:\n"
        "  --db PATH             store (default: $MAGPIE_DB or ./magpie.db)\n"
        "  --model NAME          model to evaluate (see the list below)\n"
        "  --param k=v,...       model parameters, e.g. --param half_life_days=30,weighted=1\n"
        "  --protocol P          how to split (default loo):\n"
        "      loo        leave-last-one-out: per user, the item of the last event is the test target, the item\n"
        "                 before it the validation target, the rest is training (users with fewer than\n"
        "                 --min-events distinct items stay in training). On sequence data this is exactly\n"
        "                 S3-Rec's split. At test time the validation item is part of the history, not of the\n"
        "                 training data.\n"
        "      temporal   global cut-off: events at or after --cutoff TS (or the latest --share of events) are test\n"
        "      ratio      per user, a seeded random --ratio of the user's items go to train, the rest to test\n"
        "                 (stratified like Microsoft Recommenders' python_stratified_split)\n"
        "      cold-item  a --share of items is held out entirely; all their events are test\n"
        "      cold-user  a --share of users is held out entirely; they are evaluated with no history\n"
        "      kfold      events are dealt into --folds folds by a seeded permutation; fold --fold is the test part\n"
        "                 (run --fold 0 .. N-1 with one seed for k-fold cross-validation, e.g. RMSE on ratings)\n"
        "  --ratio R             ratio: train share per user (default 0.75)\n"
        "  --share S             temporal / cold-*: held-out share (default 0.2)\n"
        "  --cutoff TS           temporal: epoch seconds or RFC 3339 time (overrides --share)\n"
        "  --min-events N        loo: fewest distinct items a user needs to be held out (default 3)\n"
        "  --folds N             kfold: number of folds (default 5)\n"
        "  --fold I              kfold: the test fold, 0 .. N-1 (default 0); --on valid uses fold I+1 mod N\n"
        "  --seed N              seed of the split and of sampled negatives (default 42)\n"
        "  --on test|valid       evaluate on the test part (history = train + validation; default) or on the\n"
        "                        validation part (history = train). For temporal and ratio, --on valid carves the\n"
        "                        validation part from the training part; cold-* have none.\n"
        "                        Models that stop early are given the validation part while fitting when testing\n"
        "                        on test with a protocol that has one (loo); with --on valid they get none.\n"
        "  --k 5,10,20           cut-offs (at most %d)\n"
        "  --history MODE        what happens to items the user already has (default exclude):\n"
        "      exclude    they are not ranked (the usual choice for recommending new items)\n"
        "      zero       their scores are set to 0 and they stay in the ranking: this is what the S3-Rec code\n"
        "                 does, so use --protocol loo --history zero to reproduce the S3-Rec / ICLRec tables\n"
        "      keep       they are ranked with their scores (for re-consumption)\n"
        "  --sampled N           rank each user's targets against N sampled negatives (drawn uniformly from items\n"
        "                        the user never had) instead of all items; results are labelled SAMPLED and are\n"
        "                        not comparable with full-ranking numbers\n"
        "  --weights t=w,...     event-type weights of the training matrix, e.g. view=1,purchase=8\n"
        "  --half-life-days D    time decay of the training matrix (0: none)\n"
        "  --cold-threshold N    users with at most N distinct training items form the \"cold\" group (default 5)\n"
        "  --fit-on WHAT         what the model is fitted on (default train):\n"
        "      train        the training part only; the validation part (if any) is given to the model for\n"
        "                   early stopping\n"
        "      train+valid  training and validation parts (test runs only): the usual refit after model\n"
        "                   selection, and honest, since the validation events are the user's history at test\n"
        "                   time anyway; no early stopping then\n"
        "      all          every event including the held-out targets. This leaks the targets into the model\n"
        "                   and is labelled LEAKY; it exists to reproduce published baselines computed that way\n"
        "                   (S3-Rec's PopRec row counts popularity over whole sequences: --model pop --fit-on all)\n"
        "  --threads N           threads for fitting and evaluation (default 2; evaluation results do not depend\n"
        "                        on it, a model's fit may)\n"
        "  --json                print the result as JSON instead of a markdown table\n"
        "  --quiet               no progress or log lines\n"
        "  --help                this text\n"
        "\n"
        "metrics (averaged over users; ties in scores go to the lower item id):\n"
        "  HR@k hit rate, Precision@k, Recall@k, NDCG@k (binary gains), MAP@k (as Microsoft Recommenders), MRR@k,\n"
        "  AUC over the candidate items (ties count 1/2), Coverage@k (share of the catalog recommended),\n"
        "  Novelty@k (mean -log2 of an item's share of training users), ILD@k (share of list pairs in different\n"
        "  categories), Gini@k (concentration of exposure; 0 = even), RMSE/MAE when the model predicts ratings.\n"
        "  Groups: overall, cold (<= --cold-threshold training items), warm.\n"
        "\n"
        "models:\n",
        MP_EVAL_MAX_K);
    cli_print_models(stdout, NULL, 0);
    printf("\nexample (S3-Rec Beauty, full ranking):\n"
           "  magpie import --db beauty.db --preset s3rec ../shared/data/amazon-s3rec/Beauty.txt\n"
           "  magpie eval --db beauty.db --model pop --protocol loo --history zero --k 5,10,20\n");
}

int cmd_eval(int argc, char **argv) {
    enum {
        O_DB = 1000, O_MODEL, O_PARAM, O_PROTOCOL, O_RATIO, O_SHARE, O_CUTOFF, O_SEED, O_K, O_HISTORY, O_ON,
        O_SAMPLED, O_WEIGHTS, O_HALF, O_COLD, O_FIT_ON, O_JSON, O_QUIET, O_HELP, O_THREADS, O_MIN_EVENTS,
        O_FOLDS, O_FOLD
    };
    static const struct option longopts[] = {
        {"db", required_argument, 0, O_DB},
        {"model", required_argument, 0, O_MODEL},
        {"param", required_argument, 0, O_PARAM},
        {"protocol", required_argument, 0, O_PROTOCOL},
        {"ratio", required_argument, 0, O_RATIO},
        {"share", required_argument, 0, O_SHARE},
        {"cutoff", required_argument, 0, O_CUTOFF},
        {"seed", required_argument, 0, O_SEED},
        {"k", required_argument, 0, O_K},
        {"history", required_argument, 0, O_HISTORY},
        {"on", required_argument, 0, O_ON},
        {"sampled", required_argument, 0, O_SAMPLED},
        {"weights", required_argument, 0, O_WEIGHTS},
        {"half-life-days", required_argument, 0, O_HALF},
        {"cold-threshold", required_argument, 0, O_COLD},
        {"fit-on", required_argument, 0, O_FIT_ON},
        {"threads", required_argument, 0, O_THREADS},
        {"min-events", required_argument, 0, O_MIN_EVENTS},
        {"folds", required_argument, 0, O_FOLDS},
        {"fold", required_argument, 0, O_FOLD},
        {"json", no_argument, 0, O_JSON},
        {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    const char *db = cli_default_db(), *model_name = NULL, *params = NULL, *weights = NULL;
    cli_split_args sa;
    cli_split_args_init(&sa);
    int json = 0, quiet = 0, on_valid = 0, fit_all = 0, fit_valid = 0;
    double half_life = 0;
    unsigned long long v;
    mp_error err;
    mp_error_clear(&err);
    mp_eval_opts eo;
    mp_eval_opts_default(&eo);

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
        case O_K:
            if (mp_eval_parse_ks(&eo, optarg, &err) != MP_OK) return cli_usage_error(CMD, "--%s", err.msg);
            break;
        case O_HISTORY:
            if (mp_history_mode_parse(optarg, &eo.history) != MP_OK)
                return cli_usage_error(CMD, "--history: expected exclude, zero or keep, got \"%s\"", optarg);
            break;
        case O_ON:
            if (strcmp(optarg, "test") == 0) on_valid = 0;
            else if (strcmp(optarg, "valid") == 0) on_valid = 1;
            else return cli_usage_error(CMD, "--on: expected test or valid, got \"%s\"", optarg);
            break;
        case O_SAMPLED:
            if (cli_parse_u64(CMD, "--sampled", optarg, &v)) return 2;
            if (v > UINT32_MAX) return cli_usage_error(CMD, "--sampled: %llu is too many", v);
            eo.sampled_negatives = (uint32_t)v;
            break;
        case O_WEIGHTS: weights = optarg; break;
        case O_HALF:
            if (cli_parse_double(CMD, "--half-life-days", optarg, &half_life)) return 2;
            if (half_life < 0) return cli_usage_error(CMD, "--half-life-days: must be >= 0, got %s", optarg);
            break;
        case O_COLD:
            if (cli_parse_u64(CMD, "--cold-threshold", optarg, &v)) return 2;
            eo.cold_threshold = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
            break;
        case O_FIT_ON:
            if (strcmp(optarg, "train") == 0) fit_all = 0, fit_valid = 0;
            else if (strcmp(optarg, "train+valid") == 0) fit_all = 0, fit_valid = 1;
            else if (strcmp(optarg, "all") == 0) fit_all = 1, fit_valid = 0;
            else return cli_usage_error(CMD, "--fit-on: expected train, train+valid or all, got \"%s\"", optarg);
            break;
        case O_THREADS:
            if (cli_parse_u64(CMD, "--threads", optarg, &v)) return 2;
            if (v < 1 || v > 64) return cli_usage_error(CMD, "--threads: expected 1 to 64, got %s", optarg);
            eo.n_threads = (uint32_t)v;
            break;
        case O_JSON: json = 1; break;
        case O_QUIET: quiet = 1; break;
        case O_HELP: print_help(); return 0;
        case ':': return cli_usage_error(CMD, "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error(CMD, "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(CMD, "unexpected argument \"%s\"", argv[optind]);
    if (!model_name) return cli_usage_error(CMD, "--model is required (e.g. --model pop)");
    mp_split_opts so;
    if (cli_split_opts_build(CMD, &sa, &so)) return 2;
    const mp_split_kind kind = so.kind;
    if (kind == MP_SPLIT_KFOLD && on_valid && so.n_folds < 3)
        return cli_usage_error(CMD, "--on valid with kfold needs --folds 3 or more (train, validation, test)");
    so.with_valid = kind == MP_SPLIT_LEAVE_LAST || on_valid;
    if (on_valid && (kind == MP_SPLIT_COLD_ITEM || kind == MP_SPLIT_COLD_USER))
        return cli_usage_error(CMD, "--on valid: the %s protocol has no validation part", sa.protocol);
    eo.seed = sa.seed;
    mp_weighting w;
    mp_weighting_default(&w);
    w.half_life_days = half_life;
    if (weights && mp_weighting_parse(&w, weights, &err) != MP_OK) return cli_usage_error(CMD, "--%s", err.msg);

    /* the model first, so a bad name or parameter fails before loading data */
    mp_model *model = NULL;
    if (mp_model_create(&model, model_name, &err) != MP_OK) return cli_usage_error(CMD, "--model: %s", err.msg);
    if (params && mp_model_set_params(model, params, &err) != MP_OK) {
        mp_model_destroy(model);
        return cli_usage_error(CMD, "--param: %s", err.msg);
    }

    int ret = 1;
    mp_dataset *ds = NULL;
    mp_split sp;
    memset(&sp, 0, sizeof sp);
    mp_train_set ts;
    memset(&ts, 0, sizeof ts);
    mp_interaction *history = NULL;
    size_t n_history = 0;
    char *text = NULL;
    cli_progress prog;
    cli_progress_init(&prog, quiet);

    if (cli_load_dataset(CMD, db, "evaluate on", &prog, &ds)) goto done;
    double t0;

    if (mp_split_make(ds, &so, &sp, &err) != MP_OK) {
        cli_fail(CMD, "%s", err.msg);
        goto done;
    }
    cli_log(quiet, "split %s (seed %llu): train %zu, valid %zu, test %zu events", mp_split_kind_name(kind), sa.seed,
            sp.n_train, sp.n_valid, sp.n_test);
    const mp_interaction *target = on_valid ? sp.valid : sp.test;
    size_t n_target = on_valid ? sp.n_valid : sp.n_test;
    if (n_target == 0) {
        cli_fail(CMD, "the %s part of the %s split is empty: nothing to evaluate (too few events per user, or "
                      "--share / --cutoff leave nothing out)",
                 on_valid ? "validation" : "test", mp_split_kind_name(kind));
        goto done;
    }
    if (on_valid) {
        history = NULL;
    } else if (mp_split_merge(sp.train, sp.n_train, sp.valid, sp.n_valid, &history, &n_history, &err) != MP_OK) {
        cli_fail(CMD, "%s", err.msg);
        goto done;
    }

    if (fit_valid && on_valid) {
        cli_usage_error(CMD, "--fit-on train+valid cannot be combined with --on valid (the targets would be fitted)");
        goto done;
    }
    /* When testing, `history` is exactly train + valid. */
    const mp_interaction *fit_ev = fit_all ? ds->events : fit_valid ? history : sp.train;
    size_t n_fit = fit_all ? ds->n_events : fit_valid ? n_history : sp.n_train;
    if (fit_all)
        cli_log(quiet, "LEAKY: fitting on all %zu events, including the held-out ones (--fit-on all)", n_fit);
    if (mp_train_set_build(&ts, ds, fit_ev, n_fit, &w, &err) != MP_OK) {
        cli_fail(CMD, "%s", err.msg);
        goto done;
    }
    /* Validation events for early stopping: only when testing on test (the validation part is then history, not
     * a target) and only on an honest fit; with --on valid they are the targets, so giving them would leak. */
    if (!on_valid && !fit_all && !fit_valid && sp.n_valid > 0) {
        ts.data.valid = sp.valid;
        ts.data.n_valid = sp.n_valid;
    }
    ts.data.n_threads = (int)eo.n_threads;
    t0 = cli_now();
    if (mp_model_fit(model, &ts.data, &prog.iface, &err) != MP_OK) {
        cli_progress_done(&prog);
        cli_fail(CMD, "fitting %s: %s", model_name, err.msg);
        goto done;
    }
    cli_progress_done(&prog);
    cli_log(quiet, "fitted %s in %.2fs", model_name, cli_now() - t0);

    mp_eval_data ed;
    memset(&ed, 0, sizeof ed);
    ed.n_users = ds->n_users;
    ed.n_items = ds->n_items;
    ed.history = on_valid ? sp.train : history;
    ed.n_history = on_valid ? sp.n_train : n_history;
    ed.train = sp.train;
    ed.n_train = sp.n_train;
    ed.test = target;
    ed.n_test = n_target;
    ed.item_category = ds->n_categories > 1 ? ds->item_category : NULL;
    eo.progress = &prog.iface;
    mp_eval_result res;
    t0 = cli_now();
    if (mp_evaluate(model, &ed, &eo, &res, &err) != MP_OK) {
        cli_progress_done(&prog);
        cli_fail(CMD, "%s", err.msg);
        goto done;
    }
    cli_progress_done(&prog);
    cli_log(quiet, "evaluated %llu users in %.2fs", (unsigned long long)res.overall.n_users, cli_now() - t0);

    char title[512];
    snprintf(title, sizeof title, "%s%s%s on %s (%s)%s%s", model_name, params ? " " : "", params ? params : "",
             sa.protocol, on_valid ? "validation" : "test", fit_valid ? ", fitted on train+valid" : "",
             fit_all ? " LEAKY: fitted on all events including the held-out ones" : "");
    int rc = json ? mp_eval_result_json(&res, title, &text) : mp_eval_result_table(&res, title, &text);
    if (rc != MP_OK) {
        cli_fail(CMD, "out of memory formatting the result");
        goto done;
    }
    if (json && fit_all) { /* make the leak visible to machines too */
        size_t len = strlen(text);
        char *j = malloc(len + 32);
        if (!j) {
            cli_fail(CMD, "out of memory formatting the result");
            goto done;
        }
        snprintf(j, len + 32, "{\"leaky\":true,%s", text + 1);
        free(text);
        text = j;
    }
    fputs(text, stdout);
    if (fflush(stdout) != 0) {
        cli_fail(CMD, "writing the result failed");
        goto done;
    }
    ret = 0;
done:
    free(text);
    free(history);
    mp_train_set_free(&ts);
    mp_split_free(&sp);
    mp_dataset_destroy(ds);
    mp_model_destroy(model);
    return ret;
}
