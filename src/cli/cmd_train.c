/* magpie train: fit a model on every event of a store and save it to a model file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "magpie/dataset.h"
#include "magpie/eval.h"
#include "magpie/json.h"
#include "magpie/model.h"
#include "magpie/split.h"
#include "magpie/store.h"
#include "magpie/textclf.h"
#include "magpie/trainset.h"

/* `only`: the model named with --model, whose parameters are listed in detail (NULL: every model, briefly). */
static void usage(FILE *f, const char *only) {
    /* one write at exit: `magpie train --help | grep -q usage` must not die of SIGPIPE half-way */
    static char out_buf[1 << 16]; /* lives until exit, when stdout is flushed */
    if (f == stdout) setvbuf(stdout, out_buf, _IOFBF, sizeof out_buf);
    fprintf(f,
            "usage: magpie train --model NAME --out MODEL_FILE [--param k=v,...] [--weights type=w,...]\n"
            "                    [--half-life-days D] [--valid-share S|loo] [--threads N] [--db PATH] [--quiet]\n"
            "                    [--embeddings SOURCE] [--review-model TEXTCLF_FILE [--review-positive-label L]]\n\n"
            "Loads every event of the store, fits the model and saves it (atomically) to MODEL_FILE, which\n"
            "`magpie recommend` and the server can load. Beside it, MODEL_FILE.meta.json records the parameters,\n"
            "sizes and fit time and, with --valid-share, the offline metrics on the held-out part (HR, NDCG,\n"
            "MAP, recall, coverage at 10); `magpie serve` shows them with the model version.\n\n"
            "options:\n"
            "  --model NAME           model to train (see below)\n"
            "  --out MODEL_FILE       where to write the model\n"
            "  --param k=v,...        model parameters (repeatable)\n"
            "  --weights type=w,...   event-type weights of the interaction matrix, e.g. view=1,purchase=10\n"
            "                         (types not named keep their default)\n"
            "  --half-life-days D     time decay of event weights; also sets the model's half_life_days\n"
            "                         parameter when it has one and --param does not set it\n"
            "  --valid-share S|loo    hold out each user's latest share S of events (0 < S < 1), or with \"loo\" the\n"
            "                         item of their last event (users with 3+ items), as validation events that\n"
            "                         models stopping early watch; the model is then fitted on the rest only.\n"
            "                         Default: none (fit on every event)\n"
            "  --threads N            threads the model may use (default: all cores)\n"
            "  --embeddings SOURCE    give content-aware models (hybrid) the item text embeddings stored under\n"
            "                         SOURCE (e.g. use-lite, computed by `magpie embed`)\n"
            "  --review-model FILE    a sentiment classifier (`magpie textclf train`): each review, and each rating\n"
            "                         with text, weighs type weight x (2 p(positive) - 1), so negative reviews\n"
            "                         become negative feedback\n"
            "  --review-positive-label L  the classifier's positive label (default: positive or\n"
            "                         __label__positive)\n"
            "  --db PATH, --store URI store: file or postgres:// URI (default: $MAGPIE_DB or ./magpie.db)\n"
            "  --quiet                no progress or summary\n"
            "  --help                 show this help\n\n"
            "models%s:\n",
            only ? "" : " (`magpie train --model NAME --help`: a model's parameter bounds and tuning ranges)");
    cli_print_models(f, only, only != NULL);
}

static int model_has_param(const mp_model *m, const char *name) {
    const mp_model_ops *ops = mp_model_ops_of(m);
    for (size_t i = 0; i < ops->n_params; i++)
        if (!strcmp(ops->params[i].name, name)) return 1;
    return 0;
}

/* Writes MODEL_FILE.meta.json beside the model (atomically): what was trained, on what, how long it took and, when a
 * validation part was held out, the model's offline metrics on it (HR/NDCG/MAP/recall at 10, full ranking, history
 * excluded). The server shows it with the model version. */
static int write_meta(const char *out, const char *name, const char *const *params, size_t n_params, const char *db,
                      double snapshot_at, const mp_dataset *ds, size_t n_fit, size_t n_valid, const char *validation,
                      double t_fit,
                      const mp_model *m, const mp_interaction *fit_ev, const mp_interaction *valid_ev, int threads,
                      mp_error *err) {
    char path[4096], tmp[4200];
    if (snprintf(path, sizeof path, "%s.meta.json", out) >= (int)sizeof path)
        return mp_error_set(err, MP_EINVAL, "model path too long");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return mp_error_set(err, MP_EIO, "cannot write %s", tmp);
    char esc[2048];
    mp_json_escape(esc, sizeof esc, name, strlen(name));
    fprintf(f, "{\"model\":%s,\"params\":[", esc);
    for (size_t i = 0; i < n_params; i++) {
        mp_json_escape(esc, sizeof esc, params[i], strlen(params[i]));
        fprintf(f, "%s%s", i ? "," : "", esc);
    }
    mp_json_escape(esc, sizeof esc, db, strlen(db));
    /* snapshot_at: wall clock when the store was read; the server re-applies events it took in after it */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    fprintf(f, "],\"store\":%s,\"snapshot_at\":%.6f,\"train_seconds\":%.3f,\"trained_at\":%lld,",
            esc, snapshot_at, (double)now.tv_sec + now.tv_nsec * 1e-9 - snapshot_at, (long long)time(NULL));
    fprintf(f, "\"users\":%u,\"items\":%u,\"events_fit\":%zu,"
               "\"events_valid\":%zu,\"fit_seconds\":%.3f,\"validation\":",
            ds->n_users, ds->n_items, n_fit, n_valid, t_fit);
    if (validation) fprintf(f, "\"%s\"", validation);
    else fputs("null", f);
    fputs(",\"metrics\":", f);
    int rc = MP_OK;
    if (n_valid) {
        mp_eval_data ed;
        memset(&ed, 0, sizeof ed);
        ed.n_users = ds->n_users;
        ed.n_items = ds->n_items;
        ed.history = fit_ev;
        ed.n_history = n_fit;
        ed.train = fit_ev;
        ed.n_train = n_fit;
        ed.test = valid_ev;
        ed.n_test = n_valid;
        ed.item_category = ds->item_category;
        mp_eval_opts eo;
        mp_eval_opts_default(&eo);
        eo.n_threads = threads;
        mp_eval_result res;
        rc = mp_eval_parse_ks(&eo, "10", err);
        if (rc == MP_OK) rc = mp_evaluate(m, &ed, &eo, &res, err);
        if (rc == MP_OK) {
            const mp_topk_metrics *t = &res.overall.at[0];
            fprintf(f, "{\"hr@10\":%.6f,\"ndcg@10\":%.6f,\"map@10\":%.6f,\"recall@10\":%.6f,\"coverage@10\":%.6f,"
                       "\"users\":%llu}",
                    t->hr, t->ndcg, t->map, t->recall, t->coverage, (unsigned long long)res.overall.n_users);
        }
    } else {
        fputs("null", f);
    }
    fputs("}\n", f);
    if (rc == MP_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0)) rc = mp_error_set(err, MP_EIO, "cannot write %s", tmp);
    if (fclose(f) != 0 && rc == MP_OK) rc = mp_error_set(err, MP_EIO, "cannot write %s", tmp);
    if (rc == MP_OK && rename(tmp, path) != 0) rc = mp_error_set(err, MP_EIO, "cannot rename %s to %s", tmp, path);
    if (rc != MP_OK) unlink(tmp);
    return rc;
}

/* Item text embeddings of one source, as rows of a dense (n_items, dim) matrix (zero rows: none). */
typedef struct item_embeddings {
    float *v;
    uint32_t dim, n_items;
    size_t n_found;
    int rc;
} item_embeddings;

static int embedding_cb(void *ctx, uint32_t id, const float *v, uint32_t dim, uint64_t text_hash) {
    item_embeddings *e = ctx;
    (void)text_hash;
    if (!e->v) {
        e->dim = dim;
        e->v = calloc((size_t)e->n_items * dim + 1, sizeof *e->v);
        if (!e->v) {
            e->rc = MP_ENOMEM;
            return 1;
        }
    }
    if (dim != e->dim) {
        e->rc = MP_ECORRUPT;
        return 1;
    }
    if (id < e->n_items) {
        memcpy(e->v + (size_t)id * dim, v, dim * sizeof *v);
        e->n_found++;
    }
    return 0;
}

static int load_item_embeddings(mp_store *s, const char *source, uint32_t n_items, item_embeddings *e,
                                mp_error *err) {
    memset(e, 0, sizeof *e);
    e->n_items = n_items;
    int rc = mp_store_scan_embeddings(s, MP_KIND_ITEMS, source, embedding_cb, e, err);
    if (e->rc == MP_ENOMEM) rc = mp_error_set(err, MP_ENOMEM, "--embeddings %s: out of memory", source);
    else if (e->rc) rc = mp_error_set(err, MP_ECORRUPT, "--embeddings %s: the store holds vectors of two dimensions",
                                      source);
    else if (rc != MP_OK) mp_error_prefix(err, "--embeddings %s", source);
    else if (e->n_found == 0)
        rc = mp_error_set(err, MP_ENOTFOUND,
                          "--embeddings %s: the store has no item embeddings from that source (compute them with "
                          "`magpie embed`, or import vectors with the items)",
                          source);
    if (rc != MP_OK) {
        free(e->v);
        memset(e, 0, sizeof *e);
    }
    return rc;
}

int cmd_train(int argc, char **argv) {
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'D'},     {"store", required_argument, NULL, 'D'},
        {"model", required_argument, NULL, 'M'},
        {"param", required_argument, NULL, 'p'},  {"weights", required_argument, NULL, 'w'},
        {"half-life-days", required_argument, NULL, 'H'}, {"out", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {"valid-share", required_argument, NULL, 'V'}, {"threads", required_argument, NULL, 'T'},
        {"embeddings", required_argument, NULL, 'E'}, {"review-model", required_argument, NULL, 'R'},
        {"review-positive-label", required_argument, NULL, 'L'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "train";
    const char *db = cli_default_db(), *name = NULL, *out = NULL, *weights = NULL;
    const char *emb_source = NULL, *review_path = NULL, *review_label = NULL;
    const char *params[32];
    size_t n_params = 0;
    double half_life = -1, valid_share = 0;
    int valid_loo = 0;
    unsigned long long threads = 0;
    int quiet = 0, help = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hq", opts, NULL)) != -1) {
        switch (c) {
        case 'D': db = optarg; break;
        case 'M': name = optarg; break;
        case 'p':
            if (n_params == sizeof params / sizeof params[0]) return cli_usage_error(cmd, "too many --param options");
            params[n_params++] = optarg;
            break;
        case 'w': weights = optarg; break;
        case 'H':
            if (cli_parse_double(cmd, "--half-life-days", optarg, &half_life)) return 2;
            if (half_life < 0) return cli_usage_error(cmd, "--half-life-days: expected a number >= 0");
            break;
        case 'o': out = optarg; break;
        case 'V':
            if (!strcmp(optarg, "loo")) {
                valid_loo = 1;
                break;
            }
            if (cli_parse_double(cmd, "--valid-share", optarg, &valid_share)) return 2;
            if (!(valid_share > 0 && valid_share < 1))
                return cli_usage_error(cmd, "--valid-share: expected a share between 0 and 1 (exclusive) or loo, "
                                            "got %s",
                                       optarg);
            break;
        case 'T':
            if (cli_parse_u64(cmd, "--threads", optarg, &threads)) return 2;
            if (threads < 1 || threads > 1024)
                return cli_usage_error(cmd, "--threads: expected 1 to 1024, got %s", optarg);
            break;
        case 'E': emb_source = optarg; break;
        case 'R': review_path = optarg; break;
        case 'L': review_label = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': help = 1; break;
        case ':': return cli_usage_error(cmd, "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option %s", argv[optind - 1]);
        }
    }
    if (help) {
        /* after the other options, so that `--help --model X` lists X as well */
        usage(stdout, mp_model_find(name) ? name : NULL);
        return 0;
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (!name) return cli_usage_error(cmd, "--model NAME is required");
    if (!out) return cli_usage_error(cmd, "--out MODEL_FILE is required");
    if (review_label && !review_path) return cli_usage_error(cmd, "--review-positive-label needs --review-model");

    mp_error err;
    mp_error_clear(&err);
    mp_model *m = NULL;
    if (mp_model_create(&m, name, &err)) return cli_usage_error(cmd, "%s", err.msg);
    for (size_t i = 0; i < n_params; i++)
        if (mp_model_set_params(m, params[i], &err)) {
            mp_model_destroy(m);
            return cli_usage_error(cmd, "%s", err.msg);
        }
    mp_weighting w;
    mp_weighting_default(&w);
    if (weights && mp_weighting_parse(&w, weights, &err)) {
        mp_model_destroy(m);
        return cli_usage_error(cmd, "--weights: %s", err.msg);
    }
    if (half_life >= 0) {
        w.half_life_days = half_life;
        int set_by_param = 0;
        for (size_t i = 0; i < n_params; i++)
            if (strstr(params[i], "half_life_days")) set_by_param = 1;
        if (!set_by_param && model_has_param(m, "half_life_days")) {
            char v[64];
            snprintf(v, sizeof v, "%.17g", half_life);
            if (mp_model_set_param(m, "half_life_days", v, &err)) {
                mp_model_destroy(m);
                return cli_usage_error(cmd, "%s", err.msg);
            }
        }
    }

    struct stat st;
    const char *db_file = mp_store_uri_file(db); /* NULL for a server store: the open below reports it */
    if (db_file && stat(db_file, &st) != 0) {
        mp_model_destroy(m);
        return cli_fail(cmd, "no store at %s (import data first with `magpie import`, or pass --db PATH)", db);
    }
    double t0 = cli_now();
    struct timespec snap;
    clock_gettime(CLOCK_REALTIME, &snap);
    cli_progress prog;
    cli_progress_init(&prog, quiet);
    mp_store *s = NULL;
    mp_dataset *ds = NULL;
    mp_train_set ts;
    memset(&ts, 0, sizeof ts);
    mp_textclf *review_model = NULL;
    item_embeddings emb = {0};
    int rc = MP_OK;
    if (review_path && (rc = mp_textclf_load(review_path, &review_model, &err)) != MP_OK)
        mp_error_prefix(&err, "--review-model %s", review_path);
    if (rc == MP_OK) rc = mp_store_open(&s, db, MP_STORE_READONLY, &err);
    if (rc == MP_OK) {
        mp_textclf_grader grader;
        mp_dataset_opts dopts = {0};
        if (review_model && (rc = mp_textclf_grader_init(&grader, review_model, review_label, &err)) == MP_OK) {
            dopts.review_grader = mp_textclf_review_grade;
            dopts.review_grader_state = &grader;
        }
        if (rc == MP_OK) rc = mp_dataset_load_opts(&ds, s, &dopts, &prog.iface, &err);
    }
    if (rc == MP_OK && emb_source) rc = load_item_embeddings(s, emb_source, ds->n_items, &emb, &err);
    mp_store_close(s);
    mp_textclf_free(review_model);
    if (rc) {
        cli_progress_done(&prog);
        mp_dataset_destroy(ds);
        free(emb.v);
        mp_model_destroy(m);
        return cli_fail(cmd, "%s", err.msg);
    }
    if (ds->n_events == 0) {
        cli_progress_done(&prog);
        mp_dataset_destroy(ds);
        mp_model_destroy(m);
        return cli_fail(cmd, "the store %s has no events to train on (import events first)", db);
    }
    double t_load = cli_now() - t0;
    /* With a validation part the model is fitted on the rest and watches the held-out events. */
    mp_split held;
    memset(&held, 0, sizeof held);
    mp_interaction *fit_ev = ds->events, *valid_ev = NULL, *tail_train = NULL;
    size_t n_fit = ds->n_events, n_valid_ev = 0;
    if (valid_loo) {
        mp_split_opts so;
        mp_split_opts_default(&so, MP_SPLIT_LEAVE_LAST);
        so.with_valid = 0;
        rc = mp_split_make(ds, &so, &held, &err);
        if (rc == MP_OK) {
            fit_ev = held.train;
            n_fit = held.n_train;
            valid_ev = held.test;
            n_valid_ev = held.n_test;
        }
    } else if (valid_share > 0) {
        rc = mp_split_user_tail(ds->events, ds->n_events, valid_share, &tail_train, &n_fit, &valid_ev, &n_valid_ev,
                                &err);
        if (rc == MP_OK) fit_ev = tail_train;
    }
    if (rc == MP_OK && (valid_loo || valid_share > 0))
        cli_log(quiet, "validation: %zu events held out, fitting on %zu", n_valid_ev, n_fit);
    if (rc == MP_OK) rc = mp_train_set_build(&ts, ds, fit_ev, n_fit, &w, &err);
    if (rc == MP_OK) {
        ts.data.valid = n_valid_ev ? valid_ev : NULL;
        ts.data.n_valid = n_valid_ev;
        ts.data.n_threads = (int)threads;
        if (emb.v) {
            ts.content.embeddings = emb.v;
            ts.content.embedding_dim = emb.dim;
            ts.content.embedding_source = emb_source;
        }
    }
    double t1 = cli_now();
    if (rc == MP_OK) rc = mp_model_fit(m, &ts.data, &prog.iface, &err);
    double t_fit = cli_now() - t1;
    if (rc == MP_OK) {
        char vdesc[64];
        if (valid_loo) snprintf(vdesc, sizeof vdesc, "leave-last-one-out");
        else snprintf(vdesc, sizeof vdesc, "latest %.3g of each user's events", valid_share);
        /* the metadata first: a server reloading on the model file's change then finds the matching metadata */
        rc = write_meta(out, name, params, n_params, db, (double)snap.tv_sec + snap.tv_nsec * 1e-9, ds, n_fit, n_valid_ev,
                        (valid_loo || valid_share > 0) ? vdesc : NULL, t_fit, m, fit_ev, valid_ev, (int)threads, &err);
    }
    if (rc == MP_OK) rc = mp_model_save(m, out, &err);
    cli_progress_done(&prog);
    if (rc) {
        free(emb.v);
        mp_split_free(&held);
        free(tail_train);
        if (!valid_loo) free(valid_ev);
        mp_train_set_free(&ts);
        mp_dataset_destroy(ds);
        mp_model_destroy(m);
        return cli_fail(cmd, "%s", err.msg);
    }
    if (!quiet) {
        long long size = stat(out, &st) == 0 ? (long long)st.st_size : -1;
        cli_log(0, "trained %s on %zu events (%u users, %u items, %llu user-item pairs): load %.2f s, fit %.2f s",
                name, n_fit, ds->n_users, ds->n_items, (unsigned long long)mp_csr_nnz(&ts.ui), t_load,
                t_fit);
        cli_log(0, "saved %s (%lld bytes)", out, size);
    }
    free(emb.v);
    mp_split_free(&held);
    free(tail_train);
    if (!valid_loo) free(valid_ev);
    mp_train_set_free(&ts);
    mp_dataset_destroy(ds);
    mp_model_destroy(m);
    return 0;
}
