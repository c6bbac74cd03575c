/* src/eval/tune.c: hyper-parameter search (random search, then local refinement around the best trial) scored on
 * the validation part of a split. See magpie/tune.h for the protocol. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "magpie/rng.h"
#include "magpie/trainset.h"
#include "magpie/tune.h"

#define TUNE_MAX_TRIALS 100000
#define TUNE_RESAMPLES 64      /* tries to draw a configuration not run before */
#define TUNE_RANDOM_SHARE 0.66 /* share of trials drawn at random before refining around the best */

/* ---------------------------------------------------------------------------------------------------------------
 * Spaces */

static void param_free(mp_tune_param *p) {
    free(p->name);
    for (size_t i = 0; i < p->n_choices; i++) free(p->choices[i]);
    free(p->choices);
    memset(p, 0, sizeof *p);
}

void mp_tune_space_free(mp_tune_space *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_params; i++) param_free(&s->params[i]);
    free(s->params);
    memset(s, 0, sizeof *s);
}

/* Copy of [b, e) with surrounding white space removed; NULL on out of memory. */
static char *trimmed_dup(const char *b, const char *e) {
    while (b < e && isspace((unsigned char)*b)) b++;
    while (e > b && isspace((unsigned char)e[-1])) e--;
    char *s = malloc((size_t)(e - b) + 1);
    if (!s) return NULL;
    memcpy(s, b, (size_t)(e - b));
    s[e - b] = 0;
    return s;
}

static int parse_number(const char *s, double *out) {
    char *end;
    if (!*s) return -1;
    double v = strtod(s, &end);
    if (*end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* An optional sign and digits only. */
static int is_integer_literal(const char *s) {
    if (!s) return 0;
    if (*s == '-' || *s == '+') s++;
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

/* The text a value is set with, and shown as: integers plainly, reals with 4 significant digits. */
static void format_value(const mp_tune_param *p, double v, char *buf, size_t cap) {
    if (p->kind == MP_TUNE_INT) snprintf(buf, cap, "%.0f", v);
    else snprintf(buf, cap, "%.4g", v);
}

static const mp_param_info *find_param_info(const mp_model_ops *ops, const char *name) {
    for (size_t i = 0; i < ops->n_params; i++)
        if (!strcmp(ops->params[i].name, name)) return &ops->params[i];
    return NULL;
}

static void list_params(const mp_model_ops *ops, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    for (size_t i = 0; i < ops->n_params && len < cap; i++) {
        int n = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", ops->params[i].name);
        if (n < 0) break;
        len += (size_t)n;
    }
    if (!len) snprintf(buf, cap, "(none)");
}

/* Sets name=value on a scratch model to learn whether the model accepts it. */
static int check_value(mp_model *scratch, const char *name, const char *value, mp_error *err) {
    return mp_model_set_param(scratch, name, value, err);
}

/* Parses one "name=spec" entry (text without surrounding blanks) into *p. With `lenient` (built-in defaults)
 * choices the model refuses are dropped instead of failing. */
static int parse_entry(mp_tune_param *p, const mp_model_ops *ops, mp_model *scratch, const char *entry, int lenient,
                       mp_error *err) {
    memset(p, 0, sizeof *p);
    const char *eq = strchr(entry, '=');
    if (!eq)
        return mp_error_set(err, MP_EINVAL,
                            "space entry \"%s\": expected name=lo:hi[:log][:int], name=a|b|c or name=value", entry);
    p->name = trimmed_dup(entry, eq);
    char *spec = trimmed_dup(eq + 1, eq + strlen(eq));
    int rc = MP_OK;
    if (!p->name || !spec) {
        rc = mp_error_set(err, MP_ENOMEM, "space: out of memory");
        goto out;
    }
    const mp_param_info *pi = find_param_info(ops, p->name);
    if (!pi) {
        char names[512];
        list_params(ops, names, sizeof names);
        rc = mp_error_set(err, MP_EINVAL, "space entry \"%s\": model %s has no parameter \"%s\" (its parameters: %s)",
                          entry, ops->name, p->name, names);
        goto out;
    }
    if (!*spec) {
        rc = mp_error_set(err, MP_EINVAL, "space entry \"%s\": no value after '='", entry);
        goto out;
    }
    if (strchr(spec, ':') && !strchr(spec, '|')) {
        /* lo:hi[:flag...] */
        char *tok[8];
        size_t nt = 0;
        for (char *s = spec; nt < 8;) {
            char *c = strchr(s, ':');
            tok[nt++] = s;
            if (!c) break;
            *c = 0;
            s = c + 1;
        }
        double lo, hi;
        if (nt < 2 || parse_number(tok[0], &lo) || parse_number(tok[1], &hi)) {
            rc = mp_error_set(err, MP_EINVAL, "space entry \"%s\": expected numbers lo:hi, e.g. %s=0.001:1:log", entry,
                              p->name);
            goto out;
        }
        int force_int = 0, force_real = 0;
        for (size_t i = 2; i < nt; i++) {
            if (!strcmp(tok[i], "log")) p->log = 1;
            else if (!strcmp(tok[i], "int")) force_int = 1;
            else if (!strcmp(tok[i], "real")) force_real = 1;
            else {
                rc = mp_error_set(err, MP_EINVAL, "space entry \"%s\": unknown flag \"%s\" (expected log, int or real)",
                                  entry, tok[i]);
                goto out;
            }
        }
        if (force_int && force_real) {
            rc = mp_error_set(err, MP_EINVAL, "space entry \"%s\": int and real exclude each other", entry);
            goto out;
        }
        int is_int = force_int || (!force_real && is_integer_literal(tok[0]) && is_integer_literal(tok[1]) &&
                                   is_integer_literal(pi->default_value));
        if (lo > hi) {
            rc = mp_error_set(err, MP_EINVAL, "space entry \"%s\": the lower bound %g is above the upper bound %g",
                              entry, lo, hi);
            goto out;
        }
        if (p->log && lo <= 0) {
            rc = mp_error_set(err, MP_EINVAL,
                              "space entry \"%s\": a log range needs a lower bound above 0, got %g (drop :log, or "
                              "start at a small positive value)",
                              entry, lo);
            goto out;
        }
        if (is_int) {
            lo = ceil(lo);
            hi = floor(hi);
            if (lo > hi) {
                rc = mp_error_set(err, MP_EINVAL, "space entry \"%s\": no integer lies in the range", entry);
                goto out;
            }
        }
        p->kind = is_int ? MP_TUNE_INT : MP_TUNE_REAL;
        p->lo = lo;
        p->hi = hi;
        char v[64];
        for (int side = 0; side < 2; side++) {
            format_value(p, side ? hi : lo, v, sizeof v);
            if ((rc = check_value(scratch, p->name, v, err)) != MP_OK) {
                mp_error_prefix(err, "space entry \"%s\": the %s bound", entry, side ? "upper" : "lower");
                goto out;
            }
        }
    } else {
        /* a|b|c, or a single fixed value */
        size_t n = 1;
        for (const char *s = spec; *s; s++) n += *s == '|';
        p->kind = MP_TUNE_CHOICE;
        p->choices = calloc(n, sizeof *p->choices);
        if (!p->choices) {
            rc = mp_error_set(err, MP_ENOMEM, "space: out of memory");
            goto out;
        }
        const char *s = spec;
        for (size_t i = 0; i < n; i++) {
            const char *bar = strchr(s, '|');
            const char *e = bar ? bar : s + strlen(s);
            char *c = trimmed_dup(s, e);
            if (!c) {
                rc = mp_error_set(err, MP_ENOMEM, "space: out of memory");
                goto out;
            }
            s = bar ? bar + 1 : e;
            if (!*c) {
                free(c);
                rc = mp_error_set(err, MP_EINVAL, "space entry \"%s\": empty choice", entry);
                goto out;
            }
            int dup = 0;
            for (size_t j = 0; j < p->n_choices; j++) dup |= !strcmp(p->choices[j], c);
            mp_error cerr;
            mp_error_clear(&cerr);
            int crc = dup ? MP_OK : check_value(scratch, p->name, c, &cerr);
            if (dup || crc != MP_OK) {
                free(c);
                if (dup || lenient) continue;
                if (err) *err = cerr;
                rc = mp_error_prefix(err, "space entry \"%s\": choice", entry);
                goto out;
            }
            p->choices[p->n_choices++] = c;
        }
        if (p->n_choices == 0) {
            rc = mp_error_set(err, MP_EINVAL, "space entry \"%s\": the model accepts none of the choices", entry);
            goto out;
        }
    }
out:
    free(spec);
    if (rc != MP_OK) param_free(p);
    return rc;
}

static int space_add(mp_tune_space *s, const mp_tune_param *p) {
    mp_tune_param *np = realloc(s->params, (s->n_params + 1) * sizeof *np);
    if (!np) return MP_ENOMEM;
    s->params = np;
    s->params[s->n_params++] = *p;
    return MP_OK;
}

int mp_tune_space_parse(mp_tune_space *out, const mp_model_ops *ops, const char *spec, mp_error *err) {
    memset(out, 0, sizeof *out);
    if (!ops) return mp_error_set(err, MP_EINVAL, "space: no model");
    if (!spec) return mp_error_set(err, MP_EINVAL, "space: empty");
    mp_model *scratch = NULL;
    int rc = mp_model_create(&scratch, ops->name, err);
    if (rc != MP_OK) return rc;
    const char *s = spec;
    while (rc == MP_OK && *s) {
        const char *comma = strchr(s, ',');
        const char *e = comma ? comma : s + strlen(s);
        char *entry = trimmed_dup(s, e);
        s = comma ? comma + 1 : e;
        if (!entry) {
            rc = mp_error_set(err, MP_ENOMEM, "space: out of memory");
            break;
        }
        if (!*entry) { /* tolerate "a=1:2, " and doubled commas */
            free(entry);
            continue;
        }
        mp_tune_param p;
        rc = parse_entry(&p, ops, scratch, entry, 0, err);
        if (rc == MP_OK) {
            for (size_t i = 0; i < out->n_params; i++)
                if (!strcmp(out->params[i].name, p.name)) {
                    rc = mp_error_set(err, MP_EINVAL, "space: parameter \"%s\" is given twice", p.name);
                    break;
                }
            if (rc == MP_OK && space_add(out, &p) != MP_OK) rc = mp_error_set(err, MP_ENOMEM, "space: out of memory");
            if (rc != MP_OK) param_free(&p);
        }
        free(entry);
    }
    mp_model_destroy(scratch);
    if (rc == MP_OK && out->n_params == 0)
        rc = mp_error_set(err, MP_EINVAL, "space: no parameters given (expected e.g. \"factors=16:256:log\")");
    if (rc != MP_OK) mp_tune_space_free(out);
    return rc;
}

int mp_tune_space_default(mp_tune_space *out, const mp_model_ops *ops, mp_error *err) {
    memset(out, 0, sizeof *out);
    if (!ops) return mp_error_set(err, MP_EINVAL, "space: no model");
    mp_model *scratch = NULL;
    int rc = mp_model_create(&scratch, ops->name, err);
    if (rc != MP_OK) return rc;
    /* the ranges are the models' own (the tuning range and scale in each parameter's descriptor) */
    for (size_t i = 0; i < ops->n_params; i++) {
        const mp_param_info *pi = &ops->params[i];
        char spec[400], entry[512];
        if (!mp_param_tune_spec(pi, spec, sizeof spec)) continue;
        snprintf(entry, sizeof entry, "%s=%s", pi->name, spec);
        mp_tune_param p;
        mp_error perr;
        mp_error_clear(&perr);
        int prc = parse_entry(&p, ops, scratch, entry, 1, &perr);
        if (prc == MP_ENOMEM) {
            rc = mp_error_set(err, MP_ENOMEM, "space: out of memory");
            break;
        }
        if (prc != MP_OK) continue; /* the model does not take this built-in range: leave its default */
        if (space_add(out, &p) != MP_OK) {
            param_free(&p);
            rc = mp_error_set(err, MP_ENOMEM, "space: out of memory");
            break;
        }
    }
    mp_model_destroy(scratch);
    if (rc == MP_OK && out->n_params == 0) {
        char names[512];
        list_params(ops, names, sizeof names);
        rc = mp_error_set(err, MP_EEMPTY,
                          "model %s has no default search space: pass one with --space (its parameters: %s)",
                          ops->name, names);
    }
    if (rc != MP_OK) mp_tune_space_free(out);
    return rc;
}

/* Appends printf output to a growing buffer; returns -1 on out of memory. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

static int sb_printf(sbuf *b, const char *fmt, ...) MP_PRINTF(2, 3);
static int sb_printf(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return -1;
        if (b->s && (size_t)n < room) {
            b->len += (size_t)n;
            return 0;
        }
        size_t cap = b->cap ? b->cap * 2 : 128;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) return -1;
        b->s = ns;
        b->cap = cap;
    }
}

int mp_tune_space_format(const mp_tune_space *s, char **out) {
    sbuf b = {0};
    int bad = sb_printf(&b, "%s", "");
    for (size_t i = 0; i < s->n_params && !bad; i++) {
        const mp_tune_param *p = &s->params[i];
        bad |= sb_printf(&b, "%s%s=", i ? "," : "", p->name);
        if (p->kind == MP_TUNE_CHOICE) {
            for (size_t j = 0; j < p->n_choices && !bad; j++) bad |= sb_printf(&b, "%s%s", j ? "|" : "", p->choices[j]);
        } else {
            char lo[64], hi[64];
            format_value(p, p->lo, lo, sizeof lo);
            format_value(p, p->hi, hi, sizeof hi);
            bad |= sb_printf(&b, "%s:%s%s%s", lo, hi, p->log ? ":log" : "", p->kind == MP_TUNE_INT ? ":int" : ":real");
        }
    }
    if (bad) {
        free(b.s);
        *out = NULL;
        return MP_ENOMEM;
    }
    *out = b.s;
    return MP_OK;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Metrics */

static const struct {
    const char *name;
    mp_tune_metric_kind kind;
    int ranked; /* takes @k */
} metric_names[] = {
    {"ndcg", MP_TUNE_NDCG, 1},      {"hr", MP_TUNE_HR, 1},         {"precision", MP_TUNE_PRECISION, 1},
    {"p", MP_TUNE_PRECISION, 1},    {"recall", MP_TUNE_RECALL, 1}, {"r", MP_TUNE_RECALL, 1},
    {"map", MP_TUNE_MAP, 1},        {"mrr", MP_TUNE_MRR, 1},       {"auc", MP_TUNE_AUC, 0},
    {"rmse", MP_TUNE_RMSE, 0},      {"mae", MP_TUNE_MAE, 0},
};

int mp_tune_metric_parse(const char *s, mp_tune_metric *out, mp_error *err) {
    static const char accepted[] = "ndcg@K, hr@K, precision@K, recall@K, map@K, mrr@K, auc, rmse or mae";
    if (!s || !*s) return mp_error_set(err, MP_EINVAL, "metric: expected %s", accepted);
    const char *at = strchr(s, '@');
    size_t nlen = at ? (size_t)(at - s) : strlen(s);
    for (size_t i = 0; i < sizeof metric_names / sizeof metric_names[0]; i++) {
        if (strlen(metric_names[i].name) != nlen || strncasecmp(s, metric_names[i].name, nlen) != 0) continue;
        out->kind = metric_names[i].kind;
        out->k = 10;
        if (!metric_names[i].ranked) {
            if (at) return mp_error_set(err, MP_EINVAL, "metric \"%s\": %s takes no @k", s, metric_names[i].name);
            return MP_OK;
        }
        if (!at) return mp_error_set(err, MP_EINVAL, "metric \"%s\": expected a cut-off, e.g. %s@10", s,
                                     metric_names[i].name);
        char *end;
        unsigned long k = strtoul(at + 1, &end, 10);
        if (end == at + 1 || *end || k < 1 || k > 100000)
            return mp_error_set(err, MP_EINVAL, "metric \"%s\": the cut-off after @ must be 1 to 100000", s);
        out->k = (uint32_t)k;
        return MP_OK;
    }
    return mp_error_set(err, MP_EINVAL, "metric \"%s\": expected %s", s, accepted);
}

const char *mp_tune_metric_name(const mp_tune_metric *m, char *buf, size_t cap) {
    const char *n = "?";
    int ranked = 0;
    for (size_t i = 0; i < sizeof metric_names / sizeof metric_names[0]; i++)
        if (metric_names[i].kind == m->kind) {
            n = metric_names[i].name;
            ranked = metric_names[i].ranked;
            break;
        }
    if (ranked) snprintf(buf, cap, "%s@%u", n, m->k);
    else snprintf(buf, cap, "%s", n);
    return buf;
}

int mp_tune_metric_minimize(const mp_tune_metric *m) { return m->kind == MP_TUNE_RMSE || m->kind == MP_TUNE_MAE; }

double mp_tune_metric_value(const mp_tune_metric *m, const mp_eval_result *r) {
    const mp_eval_group *g = &r->overall;
    switch (m->kind) {
    case MP_TUNE_AUC: return g->auc;
    case MP_TUNE_RMSE: return g->n_ratings ? g->rmse : NAN;
    case MP_TUNE_MAE: return g->n_ratings ? g->mae : NAN;
    default: break;
    }
    for (size_t i = 0; i < r->n_ks; i++) {
        if (r->ks[i] != m->k) continue;
        const mp_topk_metrics *t = &g->at[i];
        switch (m->kind) {
        case MP_TUNE_NDCG: return t->ndcg;
        case MP_TUNE_HR: return t->hr;
        case MP_TUNE_PRECISION: return t->precision;
        case MP_TUNE_RECALL: return t->recall;
        case MP_TUNE_MAP: return t->map;
        case MP_TUNE_MRR: return t->mrr;
        default: return NAN;
        }
    }
    return NAN;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Search */

void mp_tune_opts_default(mp_tune_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_trials = 30;
    o->seed = 42;
    o->metric.kind = MP_TUNE_NDCG;
    o->metric.k = 10;
    mp_eval_opts_default(&o->eval);
    o->refit = 1;
}

void mp_tune_result_free(mp_tune_result *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_trials; i++) {
        free(r->trials[i].params);
        free(r->trials[i].error);
    }
    free(r->trials);
    free(r->best_params);
    mp_model_destroy(r->model);
    memset(r, 0, sizeof *r);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A point of the space: per parameter a position u in [0, 1] (REAL / INT: along the possibly logarithmic range)
 * or a choice index. */
static double to_value(const mp_tune_param *p, double u) {
    double v;
    if (p->log) v = exp(log(p->lo) + u * (log(p->hi) - log(p->lo)));
    else v = p->lo + u * (p->hi - p->lo);
    if (p->kind == MP_TUNE_INT) v = round(v);
    if (v < p->lo) v = p->lo;
    if (v > p->hi) v = p->hi;
    return v;
}

static double to_unit(const mp_tune_param *p, double v) {
    if (p->hi <= p->lo) return 0;
    double u = p->log ? (log(v) - log(p->lo)) / (log(p->hi) - log(p->lo)) : (v - p->lo) / (p->hi - p->lo);
    return u < 0 ? 0 : u > 1 ? 1 : u;
}

/* The model's default for p as a point, or -1 when it is outside the space. */
static double default_point(const mp_model_ops *ops, const mp_tune_param *p) {
    const mp_param_info *pi = find_param_info(ops, p->name);
    if (!pi || !pi->default_value) return -1;
    if (p->kind == MP_TUNE_CHOICE) {
        double dv, cv;
        int dnum = parse_number(pi->default_value, &dv) == 0;
        for (size_t j = 0; j < p->n_choices; j++)
            if (!strcmp(p->choices[j], pi->default_value) ||
                (dnum && parse_number(p->choices[j], &cv) == 0 && cv == dv))
                return (double)j;
        return -1;
    }
    double v;
    if (parse_number(pi->default_value, &v) || v < p->lo || v > p->hi) return -1;
    if (p->kind == MP_TUNE_INT && v != round(v)) return -1;
    return to_unit(p, v);
}

/* Writes "a=1,b=0.01" for the point into b (reset first). */
static int point_text(const mp_tune_space *s, const double *pt, sbuf *b) {
    b->len = 0;
    int bad = sb_printf(b, "%s", "");
    for (size_t i = 0; i < s->n_params && !bad; i++) {
        const mp_tune_param *p = &s->params[i];
        if (p->kind == MP_TUNE_CHOICE) {
            bad |= sb_printf(b, "%s%s=%s", i ? "," : "", p->name, p->choices[(size_t)pt[i]]);
        } else {
            char v[64];
            format_value(p, to_value(p, pt[i]), v, sizeof v);
            bad |= sb_printf(b, "%s%s=%s", i ? "," : "", p->name, v);
        }
    }
    return bad ? MP_ENOMEM : MP_OK;
}

/* Draws a point: uniformly at random, or (best != NULL) near `best` within `radius` of each range (choices keep
 * the best one with probability 0.75). */
static void draw_point(const mp_tune_space *s, mp_rng *rng, const double *best, double radius, double *pt) {
    for (size_t i = 0; i < s->n_params; i++) {
        const mp_tune_param *p = &s->params[i];
        if (p->kind == MP_TUNE_CHOICE) {
            if (best && mp_rng_uniform(rng) < 0.75) pt[i] = best[i];
            else pt[i] = (double)mp_rng_below(rng, p->n_choices);
            continue;
        }
        if (!best) {
            pt[i] = mp_rng_uniform(rng);
            continue;
        }
        double u = best[i] + radius * (2.0 * mp_rng_uniform(rng) - 1.0);
        if (u < 0) u = -u; /* reflect at the edges so they are not over-sampled */
        if (u > 1) u = 2.0 - u;
        pt[i] = u < 0 ? 0 : u > 1 ? 1 : u;
    }
}

/* Snaps integer parameters to the position of their rounded value, so two points with equal text are equal. */
static void snap_point(const mp_tune_space *s, double *pt) {
    for (size_t i = 0; i < s->n_params; i++)
        if (s->params[i].kind == MP_TUNE_INT) pt[i] = to_unit(&s->params[i], to_value(&s->params[i], pt[i]));
}

/* Is `better` better than `than` for this metric (NaN is worst)? */
static int better(const mp_tune_metric *m, double a, double than) {
    if (isnan(a)) return 0;
    if (isnan(than)) return 1;
    return mp_tune_metric_minimize(m) ? a < than : a > than;
}

/* Creates the model named o->model with base parameters and then `params`. */
static int make_model(const mp_tune_opts *o, const char *params, mp_model **out, mp_error *err) {
    int rc = mp_model_create(out, o->model, err);
    if (rc == MP_OK && o->base_params && *o->base_params) rc = mp_model_set_params(*out, o->base_params, err);
    if (rc == MP_OK && params && *params) rc = mp_model_set_params(*out, params, err);
    if (rc != MP_OK) {
        mp_model_destroy(*out);
        *out = NULL;
    }
    return rc;
}

/* One trial: fit on the training part without validation events, score the metric on the validation part. */
static int run_trial(const mp_tune_opts *o, const mp_train_set *ts, const mp_split *sp, const mp_dataset *ds,
                     const char *params, mp_tune_trial *tr, mp_error *err) {
    mp_model *m = NULL;
    tr->value = NAN;
    int rc = make_model(o, params, &m, err);
    if (rc != MP_OK) return rc;
    mp_train_data data = ts->data;
    data.valid = NULL;
    data.n_valid = 0;
    data.n_threads = o->n_threads;
    double t0 = now_seconds();
    rc = mp_model_fit(m, &data, o->progress, err);
    tr->fit_seconds = now_seconds() - t0;
    if (rc != MP_OK) {
        mp_model_destroy(m);
        return rc;
    }
    mp_eval_data ed;
    memset(&ed, 0, sizeof ed);
    ed.n_users = ds->n_users;
    ed.n_items = ds->n_items;
    ed.history = sp->train;
    ed.n_history = sp->n_train;
    ed.train = sp->train;
    ed.n_train = sp->n_train;
    ed.test = sp->valid;
    ed.n_test = sp->n_valid;
    ed.item_category = NULL;
    mp_eval_opts eo = o->eval;
    eo.ks[0] = o->metric.kind <= MP_TUNE_MRR ? o->metric.k : 10;
    eo.n_ks = 1;
    eo.progress = o->progress;
    mp_eval_result res;
    t0 = now_seconds();
    rc = mp_evaluate(m, &ed, &eo, &res, err);
    tr->eval_seconds = now_seconds() - t0;
    mp_model_destroy(m);
    if (rc != MP_OK) return rc;
    tr->value = mp_tune_metric_value(&o->metric, &res);
    if (isnan(tr->value)) {
        char name[32];
        return mp_error_set(err, MP_EUNSUPPORTED, "%s is not available on the validation part%s",
                            mp_tune_metric_name(&o->metric, name, sizeof name),
                            mp_tune_metric_minimize(&o->metric) ? " (the model does not predict ratings, or the "
                                                                  "validation events carry no rating values)"
                                                                : "");
    }
    return MP_OK;
}

/* The best parameters refitted (validation events given for early stopping) and evaluated on the test part with
 * history = training + validation. */
static int refit_and_test(const mp_tune_opts *o, const mp_train_set *ts, const mp_split *sp, const mp_dataset *ds,
                          mp_tune_result *out, mp_error *err) {
    int rc = make_model(o, out->trials[out->best].params, &out->model, err);
    if (rc != MP_OK) return rc;
    mp_train_data data = ts->data;
    data.valid = sp->valid;
    data.n_valid = sp->n_valid;
    data.n_threads = o->n_threads;
    rc = mp_model_fit(out->model, &data, o->progress, err);
    if (rc != MP_OK) return mp_error_prefix(err, "refitting the best parameters");
    if (sp->n_test == 0) return MP_OK;
    mp_interaction *history = NULL;
    size_t n_history = 0;
    rc = mp_split_merge(sp->train, sp->n_train, sp->valid, sp->n_valid, &history, &n_history, err);
    if (rc != MP_OK) return rc;
    mp_eval_data ed;
    memset(&ed, 0, sizeof ed);
    ed.n_users = ds->n_users;
    ed.n_items = ds->n_items;
    ed.history = history;
    ed.n_history = n_history;
    ed.train = sp->train;
    ed.n_train = sp->n_train;
    ed.test = sp->test;
    ed.n_test = sp->n_test;
    ed.item_category = ds->n_categories > 1 ? ds->item_category : NULL;
    mp_eval_opts eo = o->eval;
    eo.progress = o->progress;
    rc = mp_evaluate(out->model, &ed, &eo, &out->test, err);
    free(history);
    if (rc == MP_OK) out->has_test = 1;
    return rc;
}

int mp_tune_run(const mp_dataset *ds, const mp_split *sp, const mp_weighting *w, const mp_tune_opts *o,
                mp_tune_result *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    out->best = SIZE_MAX;
    const mp_model_ops *ops = o->model ? mp_model_find(o->model) : NULL;
    if (!ops) {
        mp_model *probe = NULL;
        int prc = mp_model_create(&probe, o->model ? o->model : "", err); /* for the message listing models */
        mp_model_destroy(probe);
        return prc != MP_OK ? prc : mp_error_set(err, MP_EINVAL, "tune: no model given");
    }
    if (!o->space) return mp_error_set(err, MP_EINVAL, "tune: no search space");
    if (o->n_trials < 1 || o->n_trials > TUNE_MAX_TRIALS)
        return mp_error_set(err, MP_EINVAL, "tune: the number of trials must be 1 to %d, got %u", TUNE_MAX_TRIALS,
                            o->n_trials);
    if (sp->n_valid == 0)
        return mp_error_set(err, MP_EEMPTY,
                            "tune: the split has no validation events to score trials on (split with a validation "
                            "part, or with more events per user)");
    if (sp->n_train == 0) return mp_error_set(err, MP_EEMPTY, "tune: the split has no training events");
    /* the base parameters must be valid on their own */
    mp_model *probe = NULL;
    int rc = make_model(o, NULL, &probe, err);
    mp_model_destroy(probe);
    if (rc != MP_OK) return mp_error_prefix(err, "tune: fixed parameters");

    const mp_tune_space *s = o->space;
    size_t np = s->n_params, nt = o->n_trials;
    mp_train_set ts;
    memset(&ts, 0, sizeof ts);
    out->trials = calloc(nt, sizeof *out->trials);
    double *points = calloc(nt * (np ? np : 1), sizeof *points);
    double *pt = calloc(np ? np : 1, sizeof *pt);
    sbuf text = {0};
    if (!out->trials || !points || !pt) {
        rc = mp_error_set(err, MP_ENOMEM, "tune: out of memory for %zu trials", nt);
        goto done;
    }
    rc = mp_train_set_build(&ts, ds, sp->train, sp->n_train, w, err);
    if (rc != MP_OK) goto done;

    mp_rng rng;
    mp_rng_seed(&rng, o->seed);
    size_t n_random = (size_t)ceil(TUNE_RANDOM_SHARE * (double)nt);
    if (n_random < 1) n_random = 1;
    mp_error first_fail;
    mp_error_clear(&first_fail);
    int first_fail_rc = MP_OK;
    for (size_t t = 0; t < nt; t++) {
        /* choose a configuration not run before */
        int fresh = 0;
        for (int attempt = 0; attempt < TUNE_RESAMPLES && !fresh; attempt++) {
            if (t == 0 && attempt == 0) {
                /* the model's defaults where they lie in the space, drawn values elsewhere */
                draw_point(s, &rng, NULL, 0, pt);
                for (size_t i = 0; i < np; i++) {
                    double d = default_point(ops, &s->params[i]);
                    if (d >= 0) pt[i] = d;
                }
            } else if (t < n_random || out->best == SIZE_MAX) {
                draw_point(s, &rng, NULL, 0, pt);
            } else {
                double f = (double)(t - n_random) / (double)(nt - n_random);
                double radius = 0.25 * (1.0 - f) + 0.03;
                draw_point(s, &rng, points + out->best * np, radius, pt);
            }
            snap_point(s, pt);
            if ((rc = point_text(s, pt, &text)) != MP_OK) {
                rc = mp_error_set(err, MP_ENOMEM, "tune: out of memory");
                goto done;
            }
            fresh = 1;
            for (size_t j = 0; j < t && fresh; j++)
                if (!strcmp(out->trials[j].params, text.s)) fresh = 0;
        }
        if (!fresh) break; /* the space is exhausted (a small finite space) */
        mp_tune_trial *tr = &out->trials[t];
        memcpy(points + t * np, pt, np * sizeof *pt);
        tr->params = strdup(text.s);
        if (!tr->params) {
            rc = mp_error_set(err, MP_ENOMEM, "tune: out of memory");
            goto done;
        }
        out->n_trials = t + 1;
        mp_error terr;
        mp_error_clear(&terr);
        tr->rc = run_trial(o, &ts, sp, ds, tr->params, tr, &terr);
        if (tr->rc == MP_ENOMEM) {
            *err = terr;
            rc = MP_ENOMEM;
            goto done;
        }
        if (tr->rc != MP_OK) {
            tr->value = NAN;
            tr->error = strdup(terr.msg);
            if (first_fail_rc == MP_OK) {
                first_fail_rc = tr->rc;
                first_fail = terr;
            }
        } else if (out->best == SIZE_MAX || better(&o->metric, tr->value, out->trials[out->best].value)) {
            out->best = t;
        }
        if (o->on_trial) o->on_trial(o->on_trial_ctx, tr, t, out->best);
    }
    if (out->best == SIZE_MAX) {
        if (err) *err = first_fail;
        rc = mp_error_prefix(err, "tune: every trial failed; the first");
        if (err) err->code = MP_EEMPTY;
        rc = MP_EEMPTY;
        goto done;
    }
    {
        sbuf bp = {0};
        int bad = sb_printf(&bp, "%s", "");
        if (o->base_params && *o->base_params) bad |= sb_printf(&bp, "%s", o->base_params);
        if (*out->trials[out->best].params)
            bad |= sb_printf(&bp, "%s%s", bp.len ? "," : "", out->trials[out->best].params);
        if (bad) {
            free(bp.s);
            rc = mp_error_set(err, MP_ENOMEM, "tune: out of memory");
            goto done;
        }
        out->best_params = bp.s;
    }
    if (o->refit) rc = refit_and_test(o, &ts, sp, ds, out, err);
done:
    free(text.s);
    free(points);
    free(pt);
    mp_train_set_free(&ts);
    return rc;
}
