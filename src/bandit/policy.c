/* src/bandit/policy.c: exploration policies over candidate lists (see magpie/bandit.h). */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/bandit.h"
#include "magpie/linalg.h"
#include "magpie/modelfile.h"
#include "magpie/rng.h"
#include "magpie/strmap.h"

#define REFRESH_EVERY 256u
#define LABEL_MAX 4096

typedef struct ridge {
    double *A;     /* [d*d] lambda I + sum x x^T */
    double *Ainv;  /* [d*d] */
    double *b;     /* [d] */
    double *theta; /* [d] */
    uint64_t n;
    uint32_t since_refresh;
} ridge;

struct mp_bandit {
    mp_bandit_opts o;
    uint32_t d;
    pthread_mutex_t mu;
    mp_rng rng;
    uint64_t updates;
    ridge shared; /* the shared model, or the prior for unseen labels of disjoint models */
    ridge *models;
    size_t n_models, cap_models;
    mp_strmap *labels; /* label -> index into models (disjoint only) */
};

static const char *const kind_names[MP_BANDIT_N_KINDS] = {"greedy", "egreedy",  "softmax", "linucb",
                                                          "ts",     "squarecb", "uniform"};

const char *mp_bandit_kind_name(mp_bandit_kind k) {
    return (unsigned)k < MP_BANDIT_N_KINDS ? kind_names[k] : "?";
}

void mp_bandit_opts_default(mp_bandit_opts *o) {
    memset(o, 0, sizeof *o);
    o->kind = MP_BANDIT_GREEDY;
    o->epsilon = 0.1;
    o->tau = 0.1;
    o->alpha = 1.0;
    o->v = 0.5;
    o->gamma = 100.0;
    o->draws = 1000;
    o->lambda = 1.0;
    o->score_weight = 1.0;
    o->seed = 1;
}

/* ---- spec parsing ---- */

static int kind_from_name(const char *s, size_t len) {
    static const struct {
        const char *name;
        mp_bandit_kind kind;
    } names[] = {
        {"greedy", MP_BANDIT_GREEDY},   {"egreedy", MP_BANDIT_EGREEDY},   {"epsilon-greedy", MP_BANDIT_EGREEDY},
        {"softmax", MP_BANDIT_SOFTMAX}, {"boltzmann", MP_BANDIT_SOFTMAX}, {"linucb", MP_BANDIT_LINUCB},
        {"ts", MP_BANDIT_TS},           {"thompson", MP_BANDIT_TS},       {"squarecb", MP_BANDIT_SQUARECB},
        {"uniform", MP_BANDIT_UNIFORM}, {"random", MP_BANDIT_UNIFORM}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && strncmp(names[i].name, s, len) == 0) return (int)names[i].kind;
    return -1;
}

/* The policy-specific keys of each kind (common keys are accepted by all). */
static const char *const kind_keys[MP_BANDIT_N_KINDS] = {"", "epsilon", "tau", "alpha", "v, draws", "gamma", ""};

static int key_allowed(mp_bandit_kind k, const char *key) {
    if (!strcmp(key, "lambda") || !strcmp(key, "w") || !strcmp(key, "disjoint") || !strcmp(key, "intercept") ||
        !strcmp(key, "seed"))
        return 1;
    switch (k) {
    case MP_BANDIT_EGREEDY:
        return !strcmp(key, "epsilon");
    case MP_BANDIT_SOFTMAX:
        return !strcmp(key, "tau");
    case MP_BANDIT_LINUCB:
        return !strcmp(key, "alpha");
    case MP_BANDIT_TS:
        return !strcmp(key, "v") || !strcmp(key, "draws");
    case MP_BANDIT_SQUARECB:
        return !strcmp(key, "gamma");
    default:
        return 0;
    }
}

int mp_bandit_opts_check(const mp_bandit_opts *o, mp_error *err) {
    if ((unsigned)o->kind >= MP_BANDIT_N_KINDS)
        return mp_error_set(err, MP_EINVAL, "bandit: unknown policy kind %d", (int)o->kind);
    if (!(o->epsilon >= 0 && o->epsilon <= 1))
        return mp_error_set(err, MP_EINVAL, "bandit: key `epsilon` must be in [0, 1], got %g", o->epsilon);
    if (!(o->tau > 0 && isfinite(o->tau)))
        return mp_error_set(err, MP_EINVAL, "bandit: key `tau` must be a positive number, got %g", o->tau);
    if (!(o->alpha >= 0 && isfinite(o->alpha)))
        return mp_error_set(err, MP_EINVAL, "bandit: key `alpha` must be >= 0, got %g", o->alpha);
    if (!(o->v >= 0 && isfinite(o->v)))
        return mp_error_set(err, MP_EINVAL, "bandit: key `v` must be >= 0, got %g", o->v);
    if (!(o->gamma >= 0 && isfinite(o->gamma)))
        return mp_error_set(err, MP_EINVAL, "bandit: key `gamma` must be >= 0, got %g", o->gamma);
    if (!(o->lambda > 0 && isfinite(o->lambda)))
        return mp_error_set(err, MP_EINVAL, "bandit: key `lambda` must be a positive number, got %g", o->lambda);
    if (!isfinite(o->score_weight))
        return mp_error_set(err, MP_EINVAL, "bandit: key `w` must be a finite number, got %g", o->score_weight);
    if (o->dim > 4096) return mp_error_set(err, MP_EINVAL, "bandit: dim %u is too large (at most 4096)", o->dim);
    return MP_OK;
}

int mp_bandit_parse(const char *spec, mp_bandit_opts *o, mp_error *err) {
    if (!spec || !*spec) return mp_error_set(err, MP_EINVAL, "bandit spec is empty (try \"egreedy:epsilon=0.1\")");
    const char *colon = strchr(spec, ':');
    size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
    int kind = kind_from_name(spec, nlen);
    if (kind < 0)
        return mp_error_set(err, MP_EINVAL,
                            "bandit spec `%s`: unknown policy `%.*s` (policies: greedy, egreedy, softmax, linucb, ts, "
                            "squarecb, uniform)",
                            spec, (int)nlen, spec);
    mp_bandit_opts t = *o;
    t.kind = (mp_bandit_kind)kind;
    if (kind == MP_BANDIT_UNIFORM) t.epsilon = 1.0;
    const char *p = colon ? colon + 1 : NULL;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        char key[32], val[64];
        if (!eq || eq == p || (size_t)(eq - p) >= sizeof key || len - (size_t)(eq - p) - 1 >= sizeof val ||
            len - (size_t)(eq - p) - 1 == 0)
            return mp_error_set(err, MP_EINVAL, "bandit spec `%s`: expected key=value, got `%.*s`", spec, (int)len, p);
        memcpy(key, p, (size_t)(eq - p));
        key[eq - p] = 0;
        size_t vlen = len - (size_t)(eq - p) - 1;
        memcpy(val, eq + 1, vlen);
        val[vlen] = 0;
        if (!key_allowed(t.kind, key))
            return mp_error_set(err, MP_EINVAL,
                                "bandit spec `%s`: unknown key `%s` for %s (keys: %s%slambda, w, disjoint, intercept, "
                                "seed)",
                                spec, key, kind_names[t.kind], kind_keys[t.kind], *kind_keys[t.kind] ? ", " : "");
        char *e = NULL;
        errno = 0;
        double x = strtod(val, &e);
        if (e == val || *e || errno == ERANGE || !isfinite(x))
            return mp_error_set(err, MP_EINVAL, "bandit spec `%s`: key `%s`: expected a number, got `%s`", spec, key,
                                val);
        int is_int = x == floor(x) && x >= 0 && x <= 1.8e19;
        if (!strcmp(key, "epsilon"))
            t.epsilon = x;
        else if (!strcmp(key, "tau"))
            t.tau = x;
        else if (!strcmp(key, "alpha"))
            t.alpha = x;
        else if (!strcmp(key, "v"))
            t.v = x;
        else if (!strcmp(key, "gamma"))
            t.gamma = x;
        else if (!strcmp(key, "lambda"))
            t.lambda = x;
        else if (!strcmp(key, "w"))
            t.score_weight = x;
        else if (!strcmp(key, "draws") || !strcmp(key, "seed") || !strcmp(key, "disjoint") ||
                 !strcmp(key, "intercept")) {
            if (!is_int || ((!strcmp(key, "disjoint") || !strcmp(key, "intercept")) && x > 1) ||
                (!strcmp(key, "draws") && x > 1e8))
                return mp_error_set(
                    err, MP_EINVAL, "bandit spec `%s`: key `%s`: expected %s, got `%s`", spec, key,
                    !strcmp(key, "disjoint") || !strcmp(key, "intercept") ? "0 or 1" : "a non-negative integer", val);
            if (!strcmp(key, "draws"))
                t.draws = (uint32_t)x;
            else if (!strcmp(key, "seed"))
                t.seed = (uint64_t)x;
            else if (!strcmp(key, "disjoint"))
                t.disjoint = (int)x;
            else
                t.intercept = (int)x;
        }
        p = end ? end + 1 : NULL;
    }
    int rc = mp_bandit_opts_check(&t, err);
    if (rc) {
        mp_error_prefix(err, "bandit spec `%s`", spec);
        return rc;
    }
    *o = t;
    return MP_OK;
}

/* ---- ridge models ---- */

static void ridge_free(ridge *r) {
    free(r->A);
    free(r->Ainv);
    free(r->b);
    free(r->theta);
    memset(r, 0, sizeof *r);
}

static int ridge_init(ridge *r, uint32_t d, double lambda) {
    memset(r, 0, sizeof *r);
    size_t dd = (size_t)d * d;
    r->A = calloc(dd ? dd : 1, sizeof(double));
    r->Ainv = calloc(dd ? dd : 1, sizeof(double));
    r->b = calloc(d ? d : 1, sizeof(double));
    r->theta = calloc(d ? d : 1, sizeof(double));
    if (!r->A || !r->Ainv || !r->b || !r->theta) {
        ridge_free(r);
        return MP_ENOMEM;
    }
    for (uint32_t i = 0; i < d; i++) {
        r->A[(size_t)i * d + i] = lambda;
        r->Ainv[(size_t)i * d + i] = 1.0 / lambda;
    }
    return MP_OK;
}

static void ridge_theta(ridge *r, uint32_t d) {
    for (uint32_t i = 0; i < d; i++) {
        double s = 0;
        for (uint32_t j = 0; j < d; j++)
            s += r->Ainv[(size_t)i * d + j] * r->b[j];
        r->theta[i] = s;
    }
}

/* Ainv and theta from A by Cholesky. */
static int ridge_refresh(ridge *r, uint32_t d) {
    size_t dd = (size_t)d * d;
    double *L = malloc((dd ? dd : 1) * sizeof(double));
    if (!L) return MP_ENOMEM;
    memcpy(L, r->A, dd * sizeof(double));
    int rc = mp_cholesky_factor(L, d);
    if (rc == MP_OK) {
        double *col = malloc((d ? d : 1) * sizeof(double));
        if (!col) {
            free(L);
            return MP_ENOMEM;
        }
        for (uint32_t j = 0; j < d; j++) {
            memset(col, 0, d * sizeof(double));
            col[j] = 1.0;
            mp_cholesky_solve_factored(L, col, d);
            for (uint32_t i = 0; i < d; i++)
                r->Ainv[(size_t)i * d + j] = col[i];
        }
        free(col);
        ridge_theta(r, d);
        r->since_refresh = 0;
    }
    free(L);
    return rc;
}

static void ridge_update(ridge *r, uint32_t d, const double *x, double y, double *tmp) {
    for (uint32_t i = 0; i < d; i++) {
        for (uint32_t j = 0; j < d; j++)
            r->A[(size_t)i * d + j] += x[i] * x[j];
        r->b[i] += y * x[i];
    }
    /* Sherman-Morrison: Ainv -= (Ainv x)(Ainv x)^T / (1 + x^T Ainv x) (Ainv symmetric). */
    double den = 1.0;
    for (uint32_t i = 0; i < d; i++) {
        double s = 0;
        for (uint32_t j = 0; j < d; j++)
            s += r->Ainv[(size_t)i * d + j] * x[j];
        tmp[i] = s;
        den += x[i] * s;
    }
    for (uint32_t i = 0; i < d; i++)
        for (uint32_t j = 0; j < d; j++)
            r->Ainv[(size_t)i * d + j] -= tmp[i] * tmp[j] / den;
    r->n++;
    if (++r->since_refresh >= REFRESH_EVERY && ridge_refresh(r, d) == MP_OK) return;
    ridge_theta(r, d);
}

/* ---- create / destroy ---- */

int mp_bandit_create(const mp_bandit_opts *opts, mp_bandit **out, mp_error *err) {
    *out = NULL;
    int rc = mp_bandit_opts_check(opts, err);
    if (rc) return rc;
    mp_bandit *b = calloc(1, sizeof *b);
    if (!b) return mp_error_set(err, MP_ENOMEM, "bandit: out of memory");
    b->o = *opts;
    b->d = opts->dim + (opts->intercept ? 1u : 0u);
    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        free(b);
        return mp_error_set(err, MP_ENOMEM, "bandit: cannot create a mutex");
    }
    mp_rng_seed(&b->rng, opts->seed);
    if (ridge_init(&b->shared, b->d, opts->lambda) != MP_OK ||
        (opts->disjoint && mp_strmap_create(&b->labels, 64) != MP_OK)) {
        mp_bandit_destroy(b);
        return mp_error_set(err, MP_ENOMEM, "bandit: out of memory");
    }
    *out = b;
    return MP_OK;
}

void mp_bandit_destroy(mp_bandit *b) {
    if (!b) return;
    ridge_free(&b->shared);
    for (size_t i = 0; i < b->n_models; i++)
        ridge_free(&b->models[i]);
    free(b->models);
    mp_strmap_destroy(b->labels);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

const mp_bandit_opts *mp_bandit_get_opts(const mp_bandit *b) {
    return &b->o;
}

uint64_t mp_bandit_updates(mp_bandit *b) {
    pthread_mutex_lock(&b->mu);
    uint64_t n = b->updates;
    pthread_mutex_unlock(&b->mu);
    return n;
}

/* ---- scoring ---- */

static const char *cand_label(const mp_bandit_cand *c, char *buf, size_t cap) {
    if (c->label) return c->label;
    snprintf(buf, cap, "%u", c->item);
    return buf;
}

/* The model a candidate is scored with (the shared one; the prior for an unseen disjoint label). */
static const ridge *model_for(const mp_bandit *b, const mp_bandit_cand *c) {
    if (!b->o.disjoint) return &b->shared;
    char buf[16];
    const char *l = cand_label(c, buf, sizeof buf);
    uint32_t id = mp_strmap_get(b->labels, l, strlen(l));
    return id == MP_STRMAP_NONE ? &b->shared : &b->models[id];
}

static void fill_x(const mp_bandit *b, const float *x, double *xx) {
    for (uint32_t i = 0; i < b->o.dim; i++)
        xx[i] = x ? (double)x[i] : 0.0;
    if (b->o.intercept) xx[b->o.dim] = 1.0;
}

typedef struct scratch {
    double *mean;         /* [n] w s + theta^T x */
    double *width;        /* [n] sqrt(x^T Ainv x) */
    double *X;            /* [n*d] */
    double *L;            /* [n_models_used * d*d]: Cholesky factors of Ainv (TS) */
    uint32_t *lof;        /* [n] which L each candidate uses */
    double *z, *th;       /* [d] */
    double *est;          /* [n] */
    unsigned char *avail; /* [n] */
    size_t n_L;
} scratch;

static void scratch_free(scratch *s) {
    free(s->mean);
    free(s->width);
    free(s->X);
    free(s->L);
    free(s->lof);
    free(s->z);
    free(s->th);
    free(s->est);
    free(s->avail);
}

/* Cholesky factor of Ainv (lower), jittered if needed. */
static void chol_of_inverse(const ridge *r, uint32_t d, double *L) {
    memcpy(L, r->Ainv, (size_t)d * d * sizeof(double));
    if (mp_cholesky_factor(L, d) != MP_OK) {
        memcpy(L, r->Ainv, (size_t)d * d * sizeof(double));
        for (uint32_t i = 0; i < d; i++)
            L[(size_t)i * d + i] += 1e-9;
        if (mp_cholesky_factor(L, d) != MP_OK) memset(L, 0, (size_t)d * d * sizeof(double));
    }
}

static int scratch_build(const mp_bandit *b, const mp_bandit_opts *e, const mp_bandit_cand *c, size_t n, scratch *s,
                         mp_error *err) {
    memset(s, 0, sizeof *s);
    uint32_t d = b->d;
    s->mean = malloc(n * sizeof(double));
    s->width = malloc(n * sizeof(double));
    s->est = malloc(n * sizeof(double));
    s->avail = malloc(n);
    s->X = malloc((d ? n * d : 1) * sizeof(double));
    s->lof = calloc(n, sizeof(uint32_t));
    s->z = malloc((d ? d : 1) * sizeof(double));
    s->th = malloc((d ? d : 1) * sizeof(double));
    if (!s->mean || !s->width || !s->est || !s->avail || !s->X || !s->lof || !s->z || !s->th) goto oom;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(c[i].score)) {
            char buf[16];
            return mp_error_set(err, MP_EINVAL, "bandit: candidate %zu (item `%s`) has a non-finite score", i,
                                cand_label(&c[i], buf, sizeof buf));
        }
        double *x = s->X + i * d;
        fill_x(b, c[i].x, x);
        const ridge *r = model_for(b, &c[i]);
        double m = b->o.score_weight * c[i].score, q = 0;
        for (uint32_t j = 0; j < d; j++) {
            m += r->theta[j] * x[j];
            double t = 0;
            for (uint32_t k = 0; k < d; k++)
                t += r->Ainv[(size_t)j * d + k] * x[k];
            q += x[j] * t;
        }
        if (!isfinite(m) || !isfinite(q)) {
            char buf[16];
            return mp_error_set(err, MP_EINVAL, "bandit: candidate %zu (item `%s`) has non-finite features", i,
                                cand_label(&c[i], buf, sizeof buf));
        }
        s->mean[i] = m;
        s->width[i] = sqrt(q > 0 ? q : 0);
    }
    if (e->kind == MP_BANDIT_TS && d > 0) {
        size_t nl = b->o.disjoint ? n : 1;
        s->L = malloc(nl * d * d * sizeof(double));
        if (!s->L) goto oom;
        s->n_L = nl;
        for (size_t i = 0; i < nl; i++) {
            chol_of_inverse(b->o.disjoint ? model_for(b, &c[i]) : &b->shared, d, s->L + i * d * d);
            if (b->o.disjoint) s->lof[i] = (uint32_t)i;
        }
    }
    return MP_OK;
oom:
    return mp_error_set(err, MP_ENOMEM, "bandit: out of memory for %zu candidates", n);
}

/* One TS draw: est[i] = w s + theta~^T x for available i; returns the argmax. */
static size_t ts_draw(mp_bandit *b, const mp_bandit_opts *e, const mp_bandit_cand *c, size_t n, scratch *s) {
    uint32_t d = b->d;
    size_t best = SIZE_MAX;
    if (d == 0 || e->v == 0) {
        for (size_t i = 0; i < n; i++)
            if (s->avail[i] && (best == SIZE_MAX || s->mean[i] > s->mean[best])) best = i;
        for (size_t i = 0; i < n; i++)
            s->est[i] = s->mean[i];
        return best;
    }
    /* shared: one draw of delta = v L z applied to every candidate; disjoint: an independent draw per candidate */
    for (size_t i = 0; i < n; i++) {
        if (!s->avail[i]) continue;
        if (b->o.disjoint || best == SIZE_MAX) {
            const double *L = s->L + (size_t)s->lof[i] * d * d;
            for (uint32_t j = 0; j < d; j++)
                s->z[j] = mp_rng_normal(&b->rng);
            for (uint32_t j = 0; j < d; j++) {
                double t = 0;
                for (uint32_t k = 0; k <= j; k++)
                    t += L[(size_t)j * d + k] * s->z[k];
                s->th[j] = e->v * t;
            }
        }
        const double *x = s->X + i * d;
        double v = s->mean[i];
        for (uint32_t j = 0; j < d; j++)
            v += s->th[j] * x[j];
        s->est[i] = v;
        if (best == SIZE_MAX || v > s->est[best]) best = i;
    }
    return best;
}

/* Probabilities of the next pick for the non-TS policies over the available candidates. */
static void pick_probs(const mp_bandit_opts *e, const scratch *s, size_t n, double *p) {
    size_t m = 0, best = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        p[i] = 0;
        if (!s->avail[i]) continue;
        m++;
        if (best == SIZE_MAX || s->est[i] > s->est[best]) best = i;
    }
    if (m == 0) return;
    switch (e->kind) {
    case MP_BANDIT_EGREEDY:
    case MP_BANDIT_UNIFORM: {
        double eps = e->kind == MP_BANDIT_UNIFORM ? 1.0 : e->epsilon;
        for (size_t i = 0; i < n; i++)
            if (s->avail[i]) p[i] = eps / (double)m;
        p[best] += 1.0 - eps;
        break;
    }
    case MP_BANDIT_SOFTMAX: {
        double z = 0;
        for (size_t i = 0; i < n; i++)
            if (s->avail[i]) z += p[i] = exp((s->est[i] - s->est[best]) / e->tau);
        for (size_t i = 0; i < n; i++)
            p[i] /= z;
        break;
    }
    case MP_BANDIT_SQUARECB: {
        double rest = 0;
        for (size_t i = 0; i < n; i++)
            if (s->avail[i] && i != best) rest += p[i] = 1.0 / ((double)m + e->gamma * (s->est[best] - s->est[i]));
        p[best] = 1.0 - rest;
        break;
    }
    default:
        p[best] = 1.0;
        break; /* greedy, linucb */
    }
}

static void set_estimates(const mp_bandit_opts *e, scratch *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        s->est[i] = e->kind == MP_BANDIT_LINUCB ? s->mean[i] + e->alpha * s->width[i] : s->mean[i];
}

static int explore_opts(const mp_bandit *b, const mp_bandit_opts *override, mp_bandit_opts *e, mp_error *err) {
    *e = b->o;
    if (override) {
        int rc = mp_bandit_opts_check(override, err);
        if (rc) return rc;
        e->kind = override->kind;
        e->epsilon = override->kind == MP_BANDIT_UNIFORM ? 1.0 : override->epsilon;
        e->tau = override->tau;
        e->alpha = override->alpha;
        e->v = override->v;
        e->gamma = override->gamma;
        e->draws = override->draws;
    }
    return MP_OK;
}

int mp_bandit_select(mp_bandit *b, const mp_bandit_opts *override, const mp_bandit_cand *cands, size_t n, size_t k,
                     mp_bandit_pick *picks, mp_error *err) {
    if (n == 0) return mp_error_set(err, MP_EINVAL, "bandit: no candidates to choose from");
    if (k > n) return mp_error_set(err, MP_EINVAL, "bandit: asked for %zu items from %zu candidates", k, n);
    mp_bandit_opts e;
    int rc = explore_opts(b, override, &e, err);
    if (rc) return rc;
    pthread_mutex_lock(&b->mu);
    scratch s;
    double *p = malloc(n * sizeof(double));
    rc = scratch_build(b, &e, cands, n, &s, err);
    if (rc == MP_OK && !p) rc = mp_error_set(err, MP_ENOMEM, "bandit: out of memory");
    if (rc == MP_OK) {
        memset(s.avail, 1, n);
        for (size_t pos = 0; pos < k; pos++) {
            size_t chosen;
            double prop;
            if (e.kind == MP_BANDIT_TS) {
                chosen = ts_draw(b, &e, cands, n, &s);
                double est = s.est[chosen];
                if (e.draws == 0)
                    prop = NAN;
                else if (b->d == 0 || e.v == 0)
                    prop = 1.0;
                else {
                    uint64_t wins = 0;
                    for (uint32_t t = 0; t < e.draws; t++)
                        wins += ts_draw(b, &e, cands, n, &s) == chosen;
                    prop = (1.0 + (double)wins) / (1.0 + (double)e.draws);
                }
                picks[pos].estimate = est;
            } else {
                set_estimates(&e, &s, n);
                pick_probs(&e, &s, n, p);
                double u = mp_rng_uniform(&b->rng), acc = 0;
                chosen = SIZE_MAX;
                size_t last = SIZE_MAX;
                for (size_t i = 0; i < n; i++) {
                    if (!s.avail[i] || p[i] <= 0) continue;
                    last = i;
                    acc += p[i];
                    if (u < acc) {
                        chosen = i;
                        break;
                    }
                }
                if (chosen == SIZE_MAX) chosen = last; /* rounding: acc < u <= 1 */
                prop = p[chosen];
                picks[pos].estimate = s.est[chosen];
            }
            picks[pos].index = (uint32_t)chosen;
            picks[pos].propensity = prop;
            s.avail[chosen] = 0;
        }
    }
    free(p);
    scratch_free(&s);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

int mp_bandit_probs(mp_bandit *b, const mp_bandit_opts *override, const mp_bandit_cand *cands, size_t n,
                    const uint32_t *taken, size_t n_taken, double *probs, mp_error *err) {
    if (n == 0) return mp_error_set(err, MP_EINVAL, "bandit: no candidates");
    if (n_taken >= n) return mp_error_set(err, MP_EINVAL, "bandit: all %zu candidates are taken", n);
    mp_bandit_opts e;
    int rc = explore_opts(b, override, &e, err);
    if (rc) return rc;
    for (size_t i = 0; i < n_taken; i++)
        if (taken[i] >= n) return mp_error_set(err, MP_EINVAL, "bandit: taken index %u out of range", taken[i]);
    pthread_mutex_lock(&b->mu);
    scratch s;
    rc = scratch_build(b, &e, cands, n, &s, err);
    if (rc == MP_OK) {
        memset(s.avail, 1, n);
        for (size_t i = 0; i < n_taken; i++)
            s.avail[taken[i]] = 0;
        if (e.kind == MP_BANDIT_TS) {
            uint32_t draws = e.draws > 1000 ? e.draws : 1000;
            for (size_t i = 0; i < n; i++)
                probs[i] = 0;
            for (uint32_t t = 0; t < draws; t++)
                probs[ts_draw(b, &e, cands, n, &s)] += 1.0 / draws;
        } else {
            set_estimates(&e, &s, n);
            pick_probs(&e, &s, n, probs);
        }
    }
    scratch_free(&s);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

int mp_bandit_update(mp_bandit *b, const char *label, const float *x, double score, double reward, mp_error *err) {
    if (!isfinite(reward)) return mp_error_set(err, MP_EINVAL, "bandit update: reward is not a finite number");
    if (!isfinite(score)) return mp_error_set(err, MP_EINVAL, "bandit update: score is not a finite number");
    if (b->d == 0) {
        pthread_mutex_lock(&b->mu);
        b->updates++;
        pthread_mutex_unlock(&b->mu);
        return MP_OK;
    }
    double *xx = malloc(2 * (size_t)b->d * sizeof(double));
    if (!xx) return mp_error_set(err, MP_ENOMEM, "bandit update: out of memory");
    fill_x(b, x, xx);
    for (uint32_t i = 0; i < b->o.dim; i++)
        if (!isfinite(xx[i])) {
            free(xx);
            return mp_error_set(err, MP_EINVAL, "bandit update: feature %u is not finite", i);
        }
    if (b->o.disjoint && (!label || !*label)) {
        free(xx);
        return mp_error_set(err, MP_EINVAL, "bandit update: a disjoint policy needs the item label");
    }
    int rc = MP_OK;
    pthread_mutex_lock(&b->mu);
    ridge *r = &b->shared;
    if (b->o.disjoint) {
        uint32_t id = mp_strmap_get(b->labels, label, strlen(label));
        if (id == MP_STRMAP_NONE) {
            /* the model first, then the label, so a label always has a model */
            if (b->n_models == b->cap_models) {
                size_t cap = b->cap_models ? 2 * b->cap_models : 16;
                ridge *m = realloc(b->models, cap * sizeof *m);
                if (!m)
                    rc = MP_ENOMEM;
                else {
                    b->models = m;
                    b->cap_models = cap;
                }
            }
            if (rc == MP_OK) rc = ridge_init(&b->models[b->n_models], b->d, b->o.lambda);
            if (rc == MP_OK) {
                if (mp_strmap_intern(b->labels, label, strlen(label), &id, NULL) != MP_OK || id != b->n_models) {
                    ridge_free(&b->models[b->n_models]);
                    rc = MP_ENOMEM;
                } else
                    b->n_models++;
            }
        }
        if (rc == MP_OK) r = &b->models[id];
    }
    if (rc == MP_OK) {
        ridge_update(r, b->d, xx, reward - b->o.score_weight * score, xx + b->d);
        b->updates++;
    }
    pthread_mutex_unlock(&b->mu);
    free(xx);
    return rc ? mp_error_set(err, rc, "bandit update: out of memory") : MP_OK;
}

/* ---- save / load ---- */

static void put_ridge(mp_mf_writer *w, const ridge *r, uint32_t d) {
    mp_mf_put_f64s(w, r->A, (size_t)d * d);
    mp_mf_put_f64s(w, r->b, d);
    mp_mf_put_u64(w, r->n);
}

static int get_ridge(mp_mf_reader *rd, ridge *r, uint32_t d, mp_error *err) {
    int rc = mp_mf_get_f64s(rd, r->A, (size_t)d * d, err);
    if (!rc) rc = mp_mf_get_f64s(rd, r->b, d, err);
    if (!rc) rc = mp_mf_get_u64(rd, &r->n, err);
    if (!rc && ridge_refresh(r, d) != MP_OK)
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s: a ridge matrix is not positive definite",
                          mp_mf_reader_path(rd));
    return rc;
}

int mp_bandit_save(mp_bandit *b, const char *path, mp_error *err) {
    mp_mf_writer *w;
    if (mp_mf_writer_create(&w) != MP_OK) return mp_error_set(err, MP_ENOMEM, "bandit save: out of memory");
    pthread_mutex_lock(&b->mu);
    const mp_bandit_opts *o = &b->o;
    mp_mf_put_u32(w, (uint32_t)o->kind);
    mp_mf_put_f64(w, o->epsilon);
    mp_mf_put_f64(w, o->tau);
    mp_mf_put_f64(w, o->alpha);
    mp_mf_put_f64(w, o->v);
    mp_mf_put_f64(w, o->gamma);
    mp_mf_put_u32(w, o->draws);
    mp_mf_put_u32(w, o->dim);
    mp_mf_put_u32(w, (uint32_t)o->intercept);
    mp_mf_put_u32(w, (uint32_t)o->disjoint);
    mp_mf_put_f64(w, o->lambda);
    mp_mf_put_f64(w, o->score_weight);
    mp_mf_put_u64(w, o->seed);
    mp_mf_put_u64(w, b->updates);
    for (int i = 0; i < 4; i++)
        mp_mf_put_u64(w, b->rng.s[i]);
    put_ridge(w, &b->shared, b->d);
    mp_mf_put_u64(w, b->n_models);
    for (size_t i = 0; i < b->n_models; i++) {
        mp_mf_put_str(w, mp_strmap_key(b->labels, (uint32_t)i, NULL));
        put_ridge(w, &b->models[i], b->d);
    }
    pthread_mutex_unlock(&b->mu);
    int rc = mp_mf_writer_save(w, path, "bandit", 1, err);
    mp_mf_writer_destroy(w);
    return rc;
}

int mp_bandit_load(const char *path, mp_bandit **out, mp_error *err) {
    *out = NULL;
    mp_mf_reader *rd;
    int rc = mp_mf_reader_open(&rd, path, err);
    if (rc) return rc;
    if (strcmp(mp_mf_reader_model(rd), "bandit") != 0 || mp_mf_reader_model_version(rd) != 1) {
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s holds a `%s` model (version %u), not a bandit policy", path,
                          mp_mf_reader_model(rd), mp_mf_reader_model_version(rd));
        mp_mf_reader_close(rd);
        return rc;
    }
    mp_bandit_opts o;
    mp_bandit_opts_default(&o);
    uint32_t kind = 0, icpt = 0, disj = 0;
    uint64_t updates = 0, st[4] = {0}, nm = 0;
    rc = mp_mf_get_u32(rd, &kind, err);
    if (!rc) rc = mp_mf_get_f64(rd, &o.epsilon, err);
    if (!rc) rc = mp_mf_get_f64(rd, &o.tau, err);
    if (!rc) rc = mp_mf_get_f64(rd, &o.alpha, err);
    if (!rc) rc = mp_mf_get_f64(rd, &o.v, err);
    if (!rc) rc = mp_mf_get_f64(rd, &o.gamma, err);
    if (!rc) rc = mp_mf_get_u32(rd, &o.draws, err);
    if (!rc) rc = mp_mf_get_u32(rd, &o.dim, err);
    if (!rc) rc = mp_mf_get_u32(rd, &icpt, err);
    if (!rc) rc = mp_mf_get_u32(rd, &disj, err);
    if (!rc) rc = mp_mf_get_f64(rd, &o.lambda, err);
    if (!rc) rc = mp_mf_get_f64(rd, &o.score_weight, err);
    if (!rc) rc = mp_mf_get_u64(rd, &o.seed, err);
    if (!rc) rc = mp_mf_get_u64(rd, &updates, err);
    for (int i = 0; i < 4 && !rc; i++)
        rc = mp_mf_get_u64(rd, &st[i], err);
    mp_bandit *b = NULL;
    if (!rc) {
        o.kind = (mp_bandit_kind)kind;
        o.intercept = icpt != 0;
        o.disjoint = disj != 0;
        rc = mp_bandit_create(&o, &b, err);
        if (rc) mp_error_prefix(err, "model file %s", path);
    }
    if (!rc) {
        b->updates = updates;
        if (st[0] | st[1] | st[2] | st[3]) memcpy(b->rng.s, st, sizeof st);
        rc = get_ridge(rd, &b->shared, b->d, err);
    }
    if (!rc) rc = mp_mf_get_u64(rd, &nm, err);
    if (!rc && (!o.disjoint && nm))
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s: per-item models in a shared policy", path);
    for (uint64_t i = 0; i < nm && !rc; i++) {
        char *label = NULL;
        rc = mp_mf_get_str(rd, &label, LABEL_MAX, err);
        uint32_t id = 0;
        int inserted = 0;
        if (!rc && (!label || mp_strmap_intern(b->labels, label, strlen(label), &id, &inserted) != MP_OK || !inserted ||
                    id != i))
            rc = mp_error_set(err, MP_ECORRUPT, "model file %s: bad or duplicate item label in model %llu", path,
                              (unsigned long long)i);
        free(label);
        if (!rc) {
            if (b->n_models == b->cap_models) {
                size_t cap = b->cap_models ? 2 * b->cap_models : 16;
                ridge *m = realloc(b->models, cap * sizeof *m);
                if (!m)
                    rc = mp_error_set(err, MP_ENOMEM, "bandit load: out of memory");
                else {
                    b->models = m;
                    b->cap_models = cap;
                }
            }
        }
        if (!rc && ridge_init(&b->models[b->n_models], b->d, o.lambda) != MP_OK)
            rc = mp_error_set(err, MP_ENOMEM, "bandit load: out of memory");
        if (!rc) {
            b->n_models++;
            rc = get_ridge(rd, &b->models[b->n_models - 1], b->d, err);
        }
    }
    if (!rc && mp_mf_remaining(rd) != 0)
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s: %zu unexpected bytes after the bandit policy", path,
                          mp_mf_remaining(rd));
    mp_mf_reader_close(rd);
    if (rc) {
        mp_bandit_destroy(b);
        return rc;
    }
    *out = b;
    return MP_OK;
}
