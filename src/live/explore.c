/* src/live/explore.c: exploration, feedback, shopper protection, per-variant counters and learned-policy state of
 * an mp_explore (magpie/explore.h); the A/B assignment and user sets are abtest.c's. Locks: live_internal.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "live/live_internal.h"
#include "magpie/strmap.h"

typedef struct variant {
    char name[MP_EXPLORE_NAME_MAX];
    double weight;
    mp_bandit_opts opts; /* the spec's, seeded; dim: that of b and log */
    mp_bandit *b;        /* owned; replaced only under the write side of mp_explore.mu */
    mp_bandit_log *log;  /* owned; likewise */
    live_abusers users;
    _Atomic uint64_t requests, impressions, feedback, clicks, purchases;
    _Atomic uint64_t reward_micros; /* sum of positive rewards * 1e6 */
    _Atomic int64_t next_flush_ms;  /* expired events are written out at most once a second (a flush scans the log) */
    uint64_t saved_updates;         /* mp_bandit_updates at the last save (save_mu) */
} variant;

struct mp_explore {
    mp_explore_opts o;   /* its strings point to the owned copies below (never NULL) */
    char *policy, *variants, *salt, *log_path, *state_dir;
    pthread_rwlock_t mu; /* write: attach; read: everything else */
    int enabled, protect_on;
    variant v[MP_EXPLORE_MAX_VARIANTS];
    size_t nv;
    double weights[MP_EXPLORE_MAX_VARIANTS];
    mp_shopper_table *shoppers;
    mp_live *live;           /* borrowed; NULL until attached */
    mp_live_feat_source src; /* resolved at attach */
    uint32_t dim;
    FILE *logf;              /* the serving log, or NULL */
    pthread_mutex_t log_mu;  /* guards logf (leaf) */
    pthread_mutex_t save_mu; /* one save at a time */
    _Atomic int64_t next_save_ms;
};

static int save_locked(mp_explore *x, mp_error *err);
static void warn(const mp_explore *x, const char *fmt, ...) MP_PRINTF(2, 3);
static void warn(const mp_explore *x, const char *fmt, ...) {
    if (!x->o.warn) return;
    char msg[MP_ERROR_MSG_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    x->o.warn(x->o.warn_ctx, msg);
}

static double mono_now(double now) {
    if (now > 0) return now;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- options ---------------------------------------------------------------------------------------------------- */

void mp_explore_opts_default(mp_explore_opts *o) {
    memset(o, 0, sizeof *o);
    o->policy = "greedy";
    o->salt = "magpie";
    o->save_every = 300;
    o->ttl = 3600;
    o->capacity = 100000;
    o->pool = 3;
    o->features = MP_LIVE_FEAT_AUTO;
    mp_protect_opts_default(&o->protect);
    o->shopper_users = 100000;
    o->ab_users = 1000000;
    o->seed = 1;
}

static int protect_on(const mp_protect_opts *p) {
    return p->fatigue_weight > 0 || p->mmr_lambda < 1 || p->novelty_weight > 0 || p->item_cap > 0 ||
           p->category_cap > 0;
}

static int bad(const char **option, const char *name, mp_error *err, const char *fmt, double v) {
    if (option) *option = name;
    return mp_error_set(err, MP_EINVAL, fmt, v);
}

int mp_explore_opts_check(const mp_explore_opts *o, const char **option, mp_error *err) {
    if (option) *option = NULL;
    live_ab_variant vs[MP_EXPLORE_MAX_VARIANTS];
    size_t n;
    int rc = live_ab_parse(o->variants, o->policy, vs, &n, option, err);
    if (rc) return rc;
    if (option) *option = NULL;
    const mp_protect_opts *p = &o->protect;
    if (!(p->fatigue_weight >= 0) || !isfinite(p->fatigue_weight))
        return bad(option, "protect.fatigue_weight", err, "%g is not a number >= 0", p->fatigue_weight);
    if (!(p->mmr_lambda >= 0 && p->mmr_lambda <= 1))
        return bad(option, "protect.mmr_lambda", err, "%g is not a number in [0, 1]", p->mmr_lambda);
    if (!(p->novelty_weight >= 0) || !isfinite(p->novelty_weight))
        return bad(option, "protect.novelty_weight", err, "%g is not a number >= 0", p->novelty_weight);
    if (!(p->fatigue_half_life > 0))
        return bad(option, "protect.fatigue_half_life", err, "must be positive seconds, got %g", p->fatigue_half_life);
    if (!(p->item_window > 0))
        return bad(option, "protect.item_window", err, "must be positive seconds, got %g", p->item_window);
    if (!(p->category_window > 0))
        return bad(option, "protect.category_window", err, "must be positive seconds, got %g", p->category_window);
    if (!(o->ttl > 0)) return bad(option, "ttl", err, "must be positive seconds, got %g", o->ttl);
    if (o->capacity < 1 || o->capacity > UINT32_MAX)
        return bad(option, "capacity", err, "must be in 1..2^32 events, got %g", (double)o->capacity);
    if (o->pool < 1 || o->pool > 100) return bad(option, "pool", err, "must be in 1..100, got %g", (double)o->pool);
    if (o->shopper_users < 1)
        return bad(option, "shopper_users", err, "must be at least 1, got %g", (double)o->shopper_users);
    if (!isnan(p->price_min) && !(p->price_min >= 0 && isfinite(p->price_min)))
        return bad(option, "price_min", err, "%g is not a price (a number >= 0)", p->price_min);
    if (!isnan(p->price_max) && !(p->price_max >= 0 && isfinite(p->price_max)))
        return bad(option, "price_max", err, "%g is not a price (a number >= 0)", p->price_max);
    if (p->price_min > p->price_max)
        return bad(option, "price_max", err, "%g is below price_min: an empty range", p->price_max);
    if ((unsigned)o->features > MP_LIVE_FEAT_AUTO)
        return bad(option, "features", err, "%g is not an mp_live_feat_source", (double)o->features);
    return MP_OK;
}

/* ---- life cycle ------------------------------------------------------------------------------------------------- */

/* One line per impression, written whole under log_mu and flushed (readers see complete lines). */
static int sink_line(void *ctx, const char *line, size_t len) {
    mp_explore *x = ctx;
    pthread_mutex_lock(&x->log_mu);
    int failed = fwrite(line, 1, len, x->logf) != len || fputc('\n', x->logf) == EOF || fflush(x->logf) != 0;
    pthread_mutex_unlock(&x->log_mu);
    return failed ? -1 : 0;
}

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

int mp_explore_create(const mp_explore_opts *o, mp_explore **out, mp_error *err) {
    *out = NULL;
    const char *option = NULL;
    int rc = mp_explore_opts_check(o, &option, err);
    if (rc) {
        mp_error_prefix(err, "explore option `%s`", option ? option : "?");
        return rc;
    }
    live_ab_variant vs[MP_EXPLORE_MAX_VARIANTS];
    size_t n;
    live_ab_parse(o->variants, o->policy, vs, &n, NULL, NULL);
    mp_explore *x = calloc(1, sizeof *x);
    if (!x) return mp_error_set(err, MP_ENOMEM, "explore: out of memory");
    x->o = *o;
    x->policy = strdup(o->policy ? o->policy : "greedy");
    x->variants = dup_or_empty(o->variants);
    x->salt = dup_or_empty(o->salt);
    x->log_path = dup_or_empty(o->log_path);
    x->state_dir = dup_or_empty(o->state_dir);
    pthread_rwlock_init(&x->mu, NULL);
    pthread_mutex_init(&x->log_mu, NULL);
    pthread_mutex_init(&x->save_mu, NULL);
    for (size_t i = 0; i < MP_EXPLORE_MAX_VARIANTS; i++) live_abusers_init(&x->v[i].users, o->ab_users);
    if (!x->policy || !x->variants || !x->salt || !x->log_path || !x->state_dir) {
        mp_explore_destroy(x);
        return mp_error_set(err, MP_ENOMEM, "explore: out of memory");
    }
    x->o.policy = x->policy;
    x->o.variants = x->variants;
    x->o.salt = x->salt;
    x->o.log_path = x->log_path;
    x->o.state_dir = x->state_dir;
    x->protect_on = protect_on(&o->protect);
    x->enabled = strcmp(x->policy, "greedy") != 0 || x->log_path[0] || x->variants[0] || x->protect_on ||
                 !isnan(o->protect.price_min) || !isnan(o->protect.price_max);
    if (x->state_dir[0] && mkdir(x->state_dir, 0777) != 0 && errno != EEXIST) {
        int e = errno;
        mp_error_set(err, MP_EIO, "explore option `state_dir`: cannot create directory %s: %s", x->state_dir,
                     strerror(e));
        mp_explore_destroy(x);
        return MP_EIO;
    }
    if (x->log_path[0]) {
        x->logf = fopen(x->log_path, "a");
        if (!x->logf) {
            int e = errno;
            mp_error_set(err, MP_EIO, "explore option `log_path`: cannot open %s for appending: %s", x->log_path,
                         strerror(e));
            mp_explore_destroy(x);
            return MP_EIO;
        }
    }
    uint64_t seed = o->seed;
    for (size_t i = 0; i < n; i++) {
        variant *v = &x->v[i];
        snprintf(v->name, sizeof v->name, "%s", vs[i].name);
        v->weight = vs[i].weight;
        x->weights[i] = vs[i].weight;
        v->opts = vs[i].opts;
        /* a spec without seed= gets one from the run's seed, so two runs explore differently */
        if (v->opts.seed == 1) v->opts.seed = seed * 0x9E3779B97F4A7C15ULL + i + 1;
        v->opts.dim = 1; /* the normalised score; attach adds the item features */
        x->nv = i + 1;
        rc = mp_bandit_create(&v->opts, &v->b, err);
        if (!rc)
            rc = mp_bandit_log_create(o->capacity, o->ttl, v->opts.dim, seed ^ (0xA5A5A5A5ULL * (i + 1)),
                                      x->logf ? sink_line : NULL, x, &v->log, err);
        if (rc) {
            mp_explore_destroy(x);
            return rc;
        }
    }
    rc = mp_shopper_table_create(o->shopper_users, 256, 64, &x->shoppers, err);
    if (rc) {
        mp_explore_destroy(x);
        return rc;
    }
    *out = x;
    return MP_OK;
}

void mp_explore_destroy(mp_explore *x) {
    if (!x) return;
    mp_error err;
    mp_error_clear(&err);
    if (x->nv && save_locked(x, &err) != MP_OK) warn(x, "explore: saving learned policies: %s", err.msg);
    for (size_t i = 0; i < x->nv; i++) {
        mp_bandit_log_destroy(x->v[i].log);
        mp_bandit_destroy(x->v[i].b);
    }
    for (size_t i = 0; i < MP_EXPLORE_MAX_VARIANTS; i++) live_abusers_free(&x->v[i].users);
    mp_shopper_table_destroy(x->shoppers);
    if (x->logf) fclose(x->logf);
    pthread_mutex_destroy(&x->log_mu);
    pthread_mutex_destroy(&x->save_mu);
    pthread_rwlock_destroy(&x->mu);
    free(x->policy);
    free(x->variants);
    free(x->salt);
    free(x->log_path);
    free(x->state_dir);
    free(x);
}

/* DIR/<variant>.bandit */
static void state_path(const mp_explore *x, const variant *v, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s.bandit", x->state_dir, v->name);
}

/* mp_explore_save with x->mu's read side held (or at destroy, alone). */
static int save_locked(mp_explore *x, mp_error *err) {
    if (!x->state_dir[0]) return MP_OK;
    int rc = MP_OK;
    pthread_mutex_lock(&x->save_mu);
    for (size_t i = 0; i < x->nv && rc == MP_OK; i++) {
        variant *v = &x->v[i];
        uint64_t u = mp_bandit_updates(v->b);
        char path[4096];
        state_path(x, v, path, sizeof path);
        struct stat st;
        if (u == v->saved_updates && stat(path, &st) == 0) continue; /* nothing new */
        rc = mp_bandit_save(v->b, path, err);
        if (rc == MP_OK) v->saved_updates = u;
    }
    pthread_mutex_unlock(&x->save_mu);
    return rc;
}

int mp_explore_save(mp_explore *x, mp_error *err) {
    if (!x) return MP_OK;
    pthread_rwlock_rdlock(&x->mu); /* attach does not replace a policy while it is written */
    int rc = save_locked(x, err);
    pthread_rwlock_unlock(&x->mu);
    return rc;
}

/* The learned-model settings of a and b agree (a saved policy can go on learning under b's). */
static int same_model(const mp_bandit_opts *a, const mp_bandit_opts *b) {
    return a->dim == b->dim && a->intercept == b->intercept && a->disjoint == b->disjoint && a->lambda == b->lambda &&
           a->score_weight == b->score_weight;
}

int mp_explore_attach(mp_explore *x, mp_live *live, mp_error *err) {
    mp_live_feat_source src = MP_LIVE_FEAT_NONE;
    uint32_t dim = 0;
    if (live) src = mp_live_feature_source(live, x->o.features, &dim);
    pthread_rwlock_wrlock(&x->mu);
    x->live = live;
    x->src = src;
    x->dim = dim;
    int rc = MP_OK;
    for (size_t i = 0; i < x->nv && rc == MP_OK; i++) {
        variant *v = &x->v[i];
        mp_bandit_opts o = v->opts;
        o.dim = dim + 1;
        mp_bandit *nb = NULL;
        if (x->state_dir[0]) {
            char path[4096];
            state_path(x, v, path, sizeof path);
            struct stat st;
            mp_error lerr;
            mp_error_clear(&lerr);
            if (stat(path, &st) == 0) {
                if (mp_bandit_load(path, &nb, &lerr) != MP_OK) {
                    warn(x, "explore: variant `%s` starts fresh: %s", v->name, lerr.msg);
                    nb = NULL;
                } else if (!same_model(mp_bandit_get_opts(nb), &o)) {
                    const mp_bandit_opts *so = mp_bandit_get_opts(nb);
                    warn(x,
                         "explore: variant `%s` starts fresh: %s was learned with %u features (lambda %g, intercept "
                         "%d, disjoint %d, w %g), the policy now has %u (lambda %g, intercept %d, disjoint %d, w %g)",
                         v->name, path, so->dim, so->lambda, so->intercept, so->disjoint, so->score_weight, o.dim,
                         o.lambda, o.intercept, o.disjoint, o.score_weight);
                    mp_bandit_destroy(nb);
                    nb = NULL;
                } else {
                    warn(x, "explore: variant `%s` resumes from %s (%llu updates)", v->name, path,
                         (unsigned long long)mp_bandit_updates(nb));
                    v->saved_updates = mp_bandit_updates(nb);
                }
            }
        }
        if (!nb && o.dim == v->opts.dim) continue; /* the policy made at create is the right one */
        mp_bandit_log *nl = NULL;
        if (!nb) rc = mp_bandit_create(&o, &nb, err);
        if (rc == MP_OK)
            rc = mp_bandit_log_create(x->o.capacity, x->o.ttl, o.dim, x->o.seed ^ (0x5A5A5A5AULL * (i + 1)),
                                      x->logf ? sink_line : NULL, x, &nl, err);
        if (rc != MP_OK) {
            mp_bandit_destroy(nb);
            break;
        }
        mp_bandit_log_destroy(v->log);
        mp_bandit_destroy(v->b);
        v->b = nb;
        v->log = nl;
        v->opts.dim = o.dim;
    }
    pthread_rwlock_unlock(&x->mu);
    return rc;
}

static const char *source_name(mp_live_feat_source s) {
    static const char *const names[] = {"none", "model", "text", "auto"};
    return names[(unsigned)s <= MP_LIVE_FEAT_AUTO ? s : 0];
}

uint32_t mp_explore_dim(mp_explore *x, const char **source) {
    if (!x) {
        if (source) *source = "none";
        return 0;
    }
    pthread_rwlock_rdlock(&x->mu);
    uint32_t dim = x->dim;
    if (source) *source = source_name(x->src);
    pthread_rwlock_unlock(&x->mu);
    return dim;
}

int mp_explore_enabled(const mp_explore *x) { return x && x->enabled; }

void mp_explore_request_default(mp_explore_request *r) {
    r->policy = NULL;
    r->price_min = r->price_max = NAN;
    r->now = 0;
}

int mp_explore_wants(const mp_explore *x, const mp_explore_request *r) {
    return x && (x->enabled || (r && (r->policy || !isnan(r->price_min) || !isnan(r->price_max))));
}

size_t mp_explore_pool(const mp_explore *x, size_t n) {
    size_t pool = x ? n * (size_t)x->o.pool : n;
    return pool > n ? pool : n;
}

void mp_explore_slate_free(mp_explore_slate *s) {
    if (!s) return;
    free(s->propensity);
    s->propensity = NULL;
    s->k = 0;
}

/* Writes the lines of v's expired events, at most once a second across threads. */
static void maybe_flush(const mp_explore *x, variant *v, double now) {
    int64_t now_ms = (int64_t)(now * 1000.0), next = atomic_load(&v->next_flush_ms);
    if (now_ms < next || !atomic_compare_exchange_strong(&v->next_flush_ms, &next, now_ms + 1000)) return;
    mp_error ferr;
    mp_error_clear(&ferr);
    if (mp_bandit_log_flush(v->log, now, 0, &ferr) == MP_EIO) warn(x, "explore: serving log: %s", ferr.msg);
}

/* Saves the learned policies when save_every has passed (at most one thread at a time). */
static void maybe_save(mp_explore *x, double now) {
    if (!x->state_dir[0] || !(x->o.save_every > 0)) return;
    int64_t every_ms = (int64_t)(x->o.save_every * 1000.0);
    int64_t now_ms = (int64_t)(now * 1000.0), next = atomic_load(&x->next_save_ms);
    if (next == 0) { /* the first call starts the clock */
        atomic_compare_exchange_strong(&x->next_save_ms, &next, now_ms + every_ms);
        return;
    }
    if (now_ms < next || !atomic_compare_exchange_strong(&x->next_save_ms, &next, now_ms + every_ms)) return;
    mp_error serr;
    mp_error_clear(&serr);
    if (save_locked(x, &serr) != MP_OK) warn(x, "explore: saving learned policies: %s", serr.msg);
}

/* ---- serving ---------------------------------------------------------------------------------------------------- */

static uint32_t hash_id(const char *s) {
    uint64_t h = mp_hash_bytes(s, strlen(s));
    uint32_t v = (uint32_t)(h ^ (h >> 32));
    return v == UINT32_MAX ? 0 : v;
}

/* Fills the candidates' x (x[n * xdim]: the item's features when xdim == dim + 1, then the score min-max
 * normalised over the candidates, last) and facts from the live recommender (x->mu read side held). */
static int fill_facts(mp_explore *x, mp_live_list *l, mp_bandit_cand *cands, float *xv, size_t xdim, mp_error *err) {
    size_t n = l->n;
    uint32_t fdim = xdim == (size_t)x->dim + 1 ? x->dim : 0; /* a policy not rebuilt at attach: the score only */
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (cands[i].score < lo) lo = cands[i].score;
        if (cands[i].score > hi) hi = cands[i].score;
    }
    for (size_t i = 0; i < n; i++) {
        double s = hi > lo ? (cands[i].score - lo) / (hi - lo) : 1.0;
        cands[i].score = s; /* the policies see scores on [0, 1] whatever the model's scale */
        xv[i * xdim + xdim - 1] = (float)s;
        cands[i].x = xv + i * xdim;
    }
    if (!x->live) return MP_OK;
    const char **ids = malloc(n * sizeof *ids);
    mp_live_item_facts *f = malloc(n * sizeof *f);
    float *feat = fdim ? malloc(n * fdim * sizeof *feat) : NULL;
    int rc = MP_OK;
    if (!ids || !f || (fdim && !feat)) {
        rc = mp_error_set(err, MP_ENOMEM, "explore: out of memory for %zu candidates", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) ids[i] = l->items[i].item;
    rc = mp_live_item_features(x->live, ids, n, x->src, fdim, feat, f, NULL, err);
    if (rc) goto out;
    for (size_t i = 0; i < n; i++) {
        cands[i].price = f[i].price;
        cands[i].popularity = f[i].popularity;
        cands[i].out_of_stock = f[i].known && !f[i].available;
        if (feat) memcpy(xv + i * xdim, feat + i * fdim, fdim * sizeof *feat);
    }
out:
    free(ids);
    free(f);
    free(feat);
    return rc;
}

int mp_explore_serve(mp_explore *x, const char *user, size_t user_len, const mp_explore_request *r, mp_live_list *l,
                     size_t k, mp_explore_slate *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    out->active = 1;
    double now = mono_now(r ? r->now : 0);
    char ubuf[1024];
    if (user_len >= sizeof ubuf) user_len = sizeof ubuf - 1;
    if (user) memcpy(ubuf, user, user_len);
    ubuf[user ? user_len : 0] = 0;
    pthread_rwlock_rdlock(&x->mu);
    int vi = mp_abtest_assign(ubuf, x->salt, x->weights, x->nv);
    if (vi < 0) vi = 0;
    variant *v = &x->v[vi];
    out->variant = v->name;
    /* the exploration part always comes from the options (a policy loaded from state_dir keeps only its model) */
    mp_bandit_opts ov = v->opts;
    if (r && r->policy && mp_bandit_parse(r->policy, &ov, err) != MP_OK) {
        pthread_rwlock_unlock(&x->mu);
        mp_error_prefix(err, "policy");
        out->bad_field = "policy";
        return MP_EINVAL;
    }
    out->policy = mp_bandit_kind_name(ov.kind);
    mp_protect_opts po = x->o.protect;
    if (r && !isnan(r->price_min)) po.price_min = r->price_min;
    if (r && !isnan(r->price_max)) po.price_max = r->price_max;
    int protect = x->protect_on || !isnan(po.price_min) || !isnan(po.price_max);
    size_t n = l->n;
    if (k > n) k = n;
    if (k == 0) {
        pthread_rwlock_unlock(&x->mu);
        return MP_OK;
    }
    uint32_t dim = x->dim;                            /* item features (for MMR's similarities) */
    size_t xdim = v->opts.dim >= 1 ? v->opts.dim : 1; /* the policy's x: the features and the normalised score */
    mp_bandit_cand *cands = calloc(n, sizeof *cands), *prot = NULL;
    mp_bandit_pick *picks = calloc(k, sizeof *picks);
    size_t *order = calloc(n, sizeof *order); /* candidate index -> index into l->items */
    mp_live_item *tmp = calloc(n, sizeof *tmp);
    unsigned char *used = calloc(n, 1);
    double *props = calloc(k, sizeof *props);
    float *xv = calloc(n * xdim, sizeof *xv);
    int rc = MP_OK;
    if (!cands || !picks || !order || !tmp || !used || !props || !xv) {
        rc = mp_error_set(err, MP_ENOMEM, "explore: out of memory for %zu candidates", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const mp_live_item *it = &l->items[i];
        cands[i].item = hash_id(it->item);
        cands[i].label = it->item;
        cands[i].score = isfinite(it->score) ? (double)it->score : 0.0;
        cands[i].category = it->category ? hash_id(it->category) : UINT32_MAX;
        cands[i].price = NAN;
        cands[i].popularity = 0;
        order[i] = i;
    }
    if ((rc = fill_facts(x, l, cands, xv, xdim, err))) goto out;
    if (xdim != (size_t)dim + 1) dim = 0; /* no features in x (see fill_facts) */
    const mp_bandit_cand *use = cands;
    size_t m = n;
    if (protect) {
        prot = calloc(n, sizeof *prot);
        if (!prot) {
            rc = mp_error_set(err, MP_ENOMEM, "explore: out of memory");
            goto out;
        }
        /* anonymous sessions have no shopper state: only the business rules and the score adjustments apply */
        if (user)
            rc = mp_shopper_table_rerank(x->shoppers, ubuf, &po, cands, n, dim, now, prot, &m, NULL, err);
        else
            rc = mp_protect_rerank(&po, NULL, cands, n, dim, now, prot, &m, NULL, err);
        if (rc) goto out;
        for (size_t i = 0; i < m; i++) /* map back by the label pointer (the items' own strings) */
            for (size_t j = 0; j < n; j++)
                if (prot[i].label == cands[j].label) {
                    order[i] = j;
                    break;
                }
        use = prot;
        if (k > m) k = m;
        if (k == 0) goto out; /* every candidate was ruled out: an empty list (out->k = 0) */
    }
    rc = mp_bandit_serve(v->b, &ov, v->log, ubuf, use, m, k, now, picks, out->event_id, sizeof out->event_id, err);
    if (rc == MP_EIO) {
        /* the event was recorded; only writing an evicted event's lines failed */
        warn(x, "explore: serving log: %s", err ? err->msg : "write failed");
        mp_error_clear(err);
        rc = MP_OK;
    }
    if (rc) {
        out->event_id[0] = 0;
        goto out;
    }
    /* served items first, in slate order, then the rest (so mp_live_list_free frees every item) */
    size_t w = 0;
    for (size_t i = 0; i < k; i++) {
        size_t j = order[picks[i].index];
        tmp[w++] = l->items[j];
        used[j] = 1;
        props[i] = picks[i].propensity;
        if (user)
            mp_shopper_table_record(x->shoppers, ubuf, MP_SHOP_IMPRESSION, cands[j].item, cands[j].category, now,
                                    NULL);
    }
    for (size_t j = 0; j < n; j++)
        if (!used[j]) tmp[w++] = l->items[j];
    memcpy(l->items, tmp, n * sizeof *tmp);
    out->k = k;
    out->propensity = props;
    props = NULL;
    atomic_fetch_add(&v->requests, 1);
    atomic_fetch_add(&v->impressions, k);
    if (user && ubuf[0]) live_abusers_note(&v->users, ubuf, LIVE_AB_SERVED);
    maybe_flush(x, v, now);
    maybe_save(x, now);
out:
    pthread_rwlock_unlock(&x->mu);
    free(cands);
    free(prot);
    free(picks);
    free(order);
    free(tmp);
    free(used);
    free(props);
    free(xv);
    return rc;
}

int mp_explore_feedback(mp_explore *x, const char *event_id, const char *item, double reward, double now,
                        const char **variant_name, mp_error *err) {
    now = mono_now(now);
    mp_error local;
    if (!err) err = &local; /* the messages of the variants' logs are read below */
    int rc = MP_ENOTFOUND;
    pthread_rwlock_rdlock(&x->mu);
    for (size_t i = 0; i < x->nv; i++) {
        variant *v = &x->v[i];
        mp_error_clear(err);
        rc = mp_bandit_feedback(v->log, v->b, event_id, item, reward, now, NULL, err);
        if (rc == MP_ENOTFOUND) continue; /* not this variant's event id */
        if (rc == MP_EIO) {
            warn(x, "explore: serving log: %s", err->msg);
            mp_error_clear(err);
            rc = MP_OK;
        }
        if (rc) break;
        atomic_fetch_add(&v->feedback, 1);
        if (reward > 0) {
            atomic_fetch_add(&v->clicks, 1);
            atomic_fetch_add(&v->reward_micros, (uint64_t)llround(reward * 1e6));
            /* the shopper engaged: the item's fatigue is reset, and the user converted in this variant */
            char user[1024];
            if (mp_bandit_log_user(v->log, event_id, user, sizeof user, NULL) == MP_OK && user[0]) {
                mp_shopper_table_record(x->shoppers, user, MP_SHOP_CLICK, hash_id(item), UINT32_MAX, now, NULL);
                live_abusers_note(&v->users, user, LIVE_AB_CONVERTED);
            }
        }
        if (variant_name) *variant_name = v->name;
        maybe_flush(x, v, now); /* expired events leave the log (their lines are written), not only at shutdown */
        maybe_save(x, now);
        break;
    }
    pthread_rwlock_unlock(&x->mu);
    if (rc != MP_ENOTFOUND) return rc;
    mp_error_clear(err);
    return mp_error_set(err, MP_ENOTFOUND,
                        "feedback: unknown event id `%.64s` (not served by this server run; ids come from "
                        "the `event_id` of /v1/recommend)",
                        event_id ? event_id : "");
}

void mp_explore_observe(mp_explore *x, const mp_event *ev, size_t n, double now) {
    if (!x) return;
    now = mono_now(now);
    pthread_rwlock_rdlock(&x->mu);
    for (size_t i = 0; i < n; i++) {
        mp_event_type t = ev[i].type;
        if (t != MP_EV_CLICK && t != MP_EV_CART && t != MP_EV_FAV && t != MP_EV_PURCHASE) continue;
        char user[1024], item[1024];
        if (ev[i].user.len >= sizeof user || ev[i].item.len >= sizeof item || ev[i].user.len == 0) continue;
        memcpy(user, ev[i].user.ptr, ev[i].user.len);
        user[ev[i].user.len] = 0;
        memcpy(item, ev[i].item.ptr, ev[i].item.len);
        item[ev[i].item.len] = 0;
        if (x->protect_on)
            mp_shopper_table_record(x->shoppers, user, t == MP_EV_PURCHASE ? MP_SHOP_PURCHASE : MP_SHOP_CLICK,
                                    hash_id(item), UINT32_MAX, now, NULL);
        if (t == MP_EV_PURCHASE) { /* a purchase by a user the variant served (also through a request's policy) */
            int vi = mp_abtest_assign(user, x->salt, x->weights, x->nv);
            variant *v = &x->v[vi < 0 ? 0 : vi];
            if (live_abusers_note(&v->users, user, LIVE_AB_PURCHASE)) atomic_fetch_add(&v->purchases, 1);
        }
    }
    pthread_rwlock_unlock(&x->mu);
}

/* ---- counters --------------------------------------------------------------------------------------------------- */

void mp_explore_stats_get(mp_explore *x, mp_explore_stats *out) {
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&x->mu);
    out->enabled = x->enabled;
    out->protection = x->protect_on;
    out->features = source_name(x->src);
    out->dim = x->dim;
    out->shoppers = mp_shopper_table_size(x->shoppers);
    out->salt = x->salt;
    out->n_variants = x->nv;
    for (size_t i = 0; i < x->nv; i++) {
        variant *v = &x->v[i];
        mp_explore_variant_stats *s = &out->variants[i];
        s->name = v->name;
        s->policy = mp_bandit_kind_name(v->opts.kind);
        s->weight = v->weight;
        s->requests = atomic_load(&v->requests);
        s->impressions = atomic_load(&v->impressions);
        s->feedback = atomic_load(&v->feedback);
        s->clicks = atomic_load(&v->clicks);
        s->reward_sum = (double)atomic_load(&v->reward_micros) / 1e6;
        s->updates = mp_bandit_updates(v->b);
        s->events_held = mp_bandit_log_size(v->log);
        live_abusers_counts(&v->users, &s->users, &s->converted_users, &s->untracked_users);
        s->purchases = atomic_load(&v->purchases);
    }
    pthread_rwlock_unlock(&x->mu);
}

int mp_explore_users_each(mp_explore *x, mp_explore_user_fn fn, void *ctx) {
    int rc = 0;
    pthread_rwlock_rdlock(&x->mu);
    for (size_t i = 0; i < x->nv && rc == 0; i++) rc = live_abusers_each(&x->v[i].users, x->v[i].name, fn, ctx);
    pthread_rwlock_unlock(&x->mu);
    return rc;
}
