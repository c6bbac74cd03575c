#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "magpie/dataset.h"
#include "magpie/model.h"
#include "magpie/split.h"

const char *cli_default_db(void) {
    const char *e = getenv("MAGPIE_DB");
    return e && *e ? e : "magpie.db";
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void human(double v, int bytes, char *buf, size_t cap) {
    if (bytes) {
        if (v >= 1 << 30) snprintf(buf, cap, "%.2f GiB", v / (1 << 30));
        else if (v >= 1 << 20) snprintf(buf, cap, "%.1f MiB", v / (1 << 20));
        else if (v >= 1024) snprintf(buf, cap, "%.0f KiB", v / 1024);
        else snprintf(buf, cap, "%.0f B", v);
        return;
    }
    if (v >= 1e9) snprintf(buf, cap, "%.2fG", v / 1e9);
    else if (v >= 1e6) snprintf(buf, cap, "%.2fM", v / 1e6);
    else if (v >= 1e4) snprintf(buf, cap, "%.1fk", v / 1e3);
    else snprintf(buf, cap, "%.0f", v);
}

static void progress_update(void *ctx, const char *stage, uint64_t done, uint64_t total, const char *unit) {
    cli_progress *p = ctx;
    if (p->quiet) return;
    double now = cli_now();
    if (strncmp(p->stage, stage, sizeof p->stage) != 0) {
        if (p->tty && p->stage[0]) fputc('\n', stderr);
        snprintf(p->stage, sizeof p->stage, "%s", stage);
        p->stage_start = now;
        p->last_print = now; /* first line after one interval, not at once */
    }
    int finished = total && done >= total;
    double interval = p->tty ? 0.1 : 2.0;
    if (!finished && now - p->last_print < interval) return;
    p->last_print = now;
    double el = now - p->stage_start;
    int bytes = unit && strcmp(unit, MP_PROGRESS_BYTES) == 0;
    double rate = el > 0.05 ? done / el : 0; /* too early for a meaningful rate: shown as "-" */
    char d[32], tot[32], r[40];
    human((double)done, bytes, d, sizeof d);
    human((double)total, bytes, tot, sizeof tot);
    if (rate > 0) {
        human(rate, bytes, r, sizeof r - 2);
        strcat(r, "/s");
    } else {
        snprintf(r, sizeof r, "-/s");
    }
    if (p->tty) {
        if (total) {
            double frac = (double)done / (double)total;
            if (frac > 1) frac = 1;
            int w = 30, fill = (int)(frac * w);
            char bar[64];
            for (int i = 0; i < w; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
            bar[w] = 0;
            double eta = rate > 0 ? (total - done) / rate : 0;
            fprintf(stderr, "\r%-8s [%s] %3.0f%% %s/%s %s ETA %.0fs   ", stage, bar, frac * 100, d, tot, r,
                    finished ? 0.0 : eta);
        } else {
            fprintf(stderr, "\r%-8s %s %s %.1fs   ", stage, d, r, el);
        }
        if (finished) {
            fputc('\n', stderr);
            p->stage[0] = 0;
        }
    } else {
        if (total)
            fprintf(stderr, "magpie: %s: %s/%s (%.0f%%), %s, %.1fs elapsed\n", stage, d, tot,
                    100.0 * done / total, r, el);
        else
            fprintf(stderr, "magpie: %s: %s, %s, %.1fs elapsed\n", stage, d, r, el);
        if (finished) p->stage[0] = 0;
    }
}

void cli_progress_init(cli_progress *p, int quiet) {
    memset(p, 0, sizeof *p);
    p->quiet = quiet;
    p->tty = isatty(2);
    p->start = cli_now();
    p->iface.update = progress_update;
    p->iface.ctx = p;
}

void cli_progress_done(cli_progress *p) {
    if (!p->quiet && p->tty && p->stage[0]) fputc('\n', stderr);
    p->stage[0] = 0;
}

void cli_log(int quiet, const char *fmt, ...) {
    if (quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("magpie: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "magpie %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "magpie %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see `magpie %s --help`)\n", cmd);
    va_end(ap);
    return 2;
}

int cli_parse_u64(const char *cmd, const char *opt, const char *s, unsigned long long *out) {
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-') return cli_usage_error(cmd, "%s: expected a non-negative integer, got \"%s\"", opt, s ? s : "");
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return cli_usage_error(cmd, "%s: expected a non-negative integer, got \"%s\"", opt, s);
    *out = v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : NAN;
    if (!s || !*s || errno || *end || !isfinite(v))
        return cli_usage_error(cmd, "%s: expected a number, got \"%s\"", opt, s ? s : "");
    *out = v;
    return 0;
}

int cli_load_dataset(const char *cmd, const char *db, const char *purpose, cli_progress *prog, mp_dataset **out) {
    mp_error err;
    mp_store *s = NULL;
    mp_dataset *ds = NULL;
    *out = NULL;
    double t0 = cli_now();
    int rc = mp_store_open(&s, db, MP_STORE_READONLY, &err);
    if (rc == MP_OK) rc = mp_dataset_load(&ds, s, &prog->iface, &err);
    mp_store_close(s);
    cli_progress_done(prog);
    if (rc != MP_OK) return cli_fail(cmd, "%s: %s", db, err.msg);
    if (ds->n_events == 0) {
        mp_dataset_destroy(ds);
        return cli_fail(cmd, "the store %s has no events to %s (import some with `magpie import`)", db, purpose);
    }
    cli_log(prog->quiet, "loaded %zu events, %u users, %u items in %.1fs", ds->n_events, ds->n_users, ds->n_items,
            cli_now() - t0);
    *out = ds;
    return 0;
}

void cli_split_args_init(cli_split_args *a) {
    a->protocol = "loo";
    a->ratio = a->share = -1;
    a->cutoff = 0;
    a->seed = 42;
    a->min_events = a->folds = a->fold = -1;
}

int cli_split_arg(const char *cmd, const char *name, const char *value, cli_split_args *a) {
    unsigned long long v;
    if (!strcmp(name, "protocol")) {
        a->protocol = value;
    } else if (!strcmp(name, "ratio")) {
        if (cli_parse_double(cmd, "--ratio", value, &a->ratio)) return 2;
    } else if (!strcmp(name, "share")) {
        if (cli_parse_double(cmd, "--share", value, &a->share)) return 2;
    } else if (!strcmp(name, "cutoff")) {
        char *end;
        long long t = strtoll(value, &end, 10);
        if (*value && !*end) a->cutoff = t;
        else if (mp_parse_rfc3339(value, strlen(value), &a->cutoff) != MP_OK)
            return cli_usage_error(cmd, "--cutoff: expected epoch seconds or an RFC 3339 time, got \"%s\"", value);
    } else if (!strcmp(name, "seed")) {
        if (cli_parse_u64(cmd, "--seed", value, &a->seed)) return 2;
    } else if (!strcmp(name, "min-events")) {
        if (cli_parse_u64(cmd, "--min-events", value, &v)) return 2;
        a->min_events = v > UINT32_MAX ? UINT32_MAX : (long long)v;
    } else if (!strcmp(name, "folds")) {
        if (cli_parse_u64(cmd, "--folds", value, &v)) return 2;
        if (v < 2 || v > 255) return cli_usage_error(cmd, "--folds: expected 2 to 255, got %s", value);
        a->folds = (long long)v;
    } else if (!strcmp(name, "fold")) {
        if (cli_parse_u64(cmd, "--fold", value, &v)) return 2;
        if (v > 254) return cli_usage_error(cmd, "--fold: expected 0 to --folds minus 1, got %s", value);
        a->fold = (long long)v;
    } else {
        return cli_usage_error(cmd, "--%s is not a split option", name);
    }
    return 0;
}

int cli_split_opts_build(const char *cmd, const cli_split_args *a, mp_split_opts *so) {
    mp_split_kind kind;
    if (mp_split_kind_parse(a->protocol, &kind) != MP_OK)
        return cli_usage_error(cmd,
                               "--protocol: expected loo, temporal, ratio, cold-item, cold-user or kfold, got \"%s\"",
                               a->protocol);
    if ((a->folds >= 0 || a->fold >= 0) && kind != MP_SPLIT_KFOLD)
        return cli_usage_error(cmd, "--folds and --fold go with --protocol kfold");
    mp_split_opts_default(so, kind);
    so->seed = a->seed;
    if (a->ratio >= 0) so->ratio = a->ratio;
    if (a->share >= 0) so->share = a->share;
    so->cutoff = a->cutoff;
    if (a->min_events >= 0) so->min_events = (uint32_t)a->min_events;
    if (a->folds >= 0) so->n_folds = (uint32_t)a->folds;
    if (a->fold >= 0) so->fold = (uint32_t)a->fold;
    if (kind == MP_SPLIT_KFOLD && so->fold >= so->n_folds)
        return cli_usage_error(cmd, "--fold: expected 0 to %u with %u folds, got %u", so->n_folds - 1, so->n_folds,
                               so->fold);
    return 0;
}

void cli_print_models(FILE *f, const char *only, int detail) {
    const mp_model_ops *const *reg = mp_model_registry();
    for (size_t i = 0; reg[i]; i++) {
        const mp_model_ops *ops = reg[i];
        if (only && strcmp(only, ops->name)) continue;
        fprintf(f, "  %-10s %s\n", ops->name, ops->summary ? ops->summary : "");
        for (size_t k = 0; k < ops->n_params; k++) {
            const mp_param_info *p = &ops->params[k];
            fprintf(f, "      %s=%s  %s\n", p->name, p->default_value, p->help);
            if (!detail) continue;
            char what[256], tune[256];
            mp_param_describe(p, what, sizeof what);
            if (mp_param_tune_spec(p, tune, sizeof tune))
                fprintf(f, "          %s%s%s; magpie tune searches %s\n", what, p->alias ? "; also " : "",
                        p->alias ? p->alias : "", tune);
            else
                fprintf(f, "          %s%s%s\n", what, p->alias ? "; also " : "", p->alias ? p->alias : "");
        }
    }
}
