/* src/serve/banditsrv.c: the exploration / feedback / protection / A/B layer of `magpie serve` (see banditsrv.h). */
#include "serve/banditsrv.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "magpie/abtest.h"
#include "magpie/explore.h"
#include "magpie/bandit.h"
#include "magpie/strmap.h"

#define MAX_VARIANTS 16
#define NAME_MAX_ 48

/* The users a variant served: an open-addressing set keyed by a 64-bit hash of the user id (never 0). */
typedef struct urec {
    uint64_t key;
    uint32_t purchases;
    uint8_t converted;
} urec;

typedef struct uset {
    pthread_mutex_t mu;
    urec *slot;
    size_t cap, n, max; /* max: users tracked (ab_users) */
    uint64_t converted, untracked;
} uset;

typedef struct variant {
    char name[NAME_MAX_];
    double weight;
    mp_bandit_opts opts;
    mp_bandit *b;
    mp_bandit_log *log;
    uset users;
    _Atomic uint64_t requests, impressions, feedback, clicks, purchases;
    _Atomic uint64_t reward_micros; /* sum of positive rewards * 1e6 */
    _Atomic int64_t next_flush_ms;  /* expired events are written out at most once a second (a flush scans the log) */
    uint64_t saved_updates;         /* mp_bandit_updates at the last save (save_mu) */
} variant;

struct mp_serve_bandit {
    const mp_serve_config *cfg;
    pthread_rwlock_t mu; /* write: attach; read: everything else */
    int enabled;
    uint64_t seed;
    variant v[MAX_VARIANTS];
    size_t nv;
    double weights[MAX_VARIANTS];
    mp_shopper_table *shoppers;
    mp_protect_opts prot;
    int protect_on;
    double price_min, price_max; /* the config's rule (NAN: none) */
    mp_live *live;               /* borrowed; NULL until attached */
    mp_live_feat_source src;     /* resolved at attach */
    uint32_t dim;
    FILE *logf;
    pthread_mutex_t log_mu;
    pthread_mutex_t save_mu;
    _Atomic int64_t next_save_ms;
};

/* ---- per-variant user sets -------------------------------------------------------------------------------------- */

static uint64_t user_key(const char *user) {
    uint64_t h = mp_hash_bytes(user, strlen(user));
    return h ? h : 1;
}

static void uset_init(uset *u, size_t max) {
    memset(u, 0, sizeof *u);
    pthread_mutex_init(&u->mu, NULL);
    u->max = max;
}

static void uset_free(uset *u) {
    free(u->slot);
    pthread_mutex_destroy(&u->mu);
}

/* The record of key (u->mu held), created when `create` and there is room; NULL otherwise. */
static urec *uset_find(uset *u, uint64_t key, int create) {
    if (u->cap) {
        for (size_t i = (size_t)key & (u->cap - 1);; i = (i + 1) & (u->cap - 1)) {
            if (u->slot[i].key == key) return &u->slot[i];
            if (!u->slot[i].key) break;
        }
    }
    if (!create) return NULL;
    if (u->n >= u->max) {
        u->untracked++;
        return NULL;
    }
    if ((u->n + 1) * 4 > u->cap * 3) { /* grow to keep the load under 3/4 */
        size_t cap = u->cap ? u->cap * 2 : 1024;
        urec *s = calloc(cap, sizeof *s);
        if (!s) return NULL;
        for (size_t j = 0; j < u->cap; j++) {
            if (!u->slot[j].key) continue;
            size_t i = (size_t)u->slot[j].key & (cap - 1);
            while (s[i].key) i = (i + 1) & (cap - 1);
            s[i] = u->slot[j];
        }
        free(u->slot);
        u->slot = s;
        u->cap = cap;
    }
    size_t i = (size_t)key & (u->cap - 1);
    while (u->slot[i].key) i = (i + 1) & (u->cap - 1);
    u->slot[i].key = key;
    u->n++;
    return &u->slot[i];
}

/* Records an exposure (served), a conversion (positive feedback) or a purchase of user in u. A conversion or a
 * purchase counts only for a user the variant served (exposed). */
enum { U_SERVED, U_CONVERTED, U_PURCHASE };
static int uset_note(uset *u, const char *user, int what) {
    pthread_mutex_lock(&u->mu);
    urec *r = uset_find(u, user_key(user), what == U_SERVED);
    if (r && what != U_SERVED) {
        if (!r->converted) u->converted++;
        r->converted = 1;
        if (what == U_PURCHASE) r->purchases++;
    }
    pthread_mutex_unlock(&u->mu);
    return r != NULL;
}

/* ---- config parsing -------------------------------------------------------------------------------------------- */

static int parse_double(const char *s, double lo, double hi, double *out) {
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || *e || errno || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* One parsed variant spec. */
typedef struct vspec {
    char name[NAME_MAX_];
    double weight;
    mp_bandit_opts opts;
} vspec;

/* Parses ab_variants ("NAME:WEIGHT:POLICY;...") or, when empty, the single variant "default" with `bandit`. */
static int parse_variants(const mp_serve_config *c, vspec *out, size_t *n, mp_error *err) {
    *n = 0;
    if (!c->ab_variants[0]) {
        snprintf(out[0].name, sizeof out[0].name, "default");
        out[0].weight = 1;
        mp_bandit_opts_default(&out[0].opts);
        if (mp_bandit_parse(c->bandit, &out[0].opts, err) != MP_OK)
            return mp_error_set(err, MP_EINVAL, "setting `bandit`: %s", err->msg);
        *n = 1;
        return MP_OK;
    }
    const char *p = c->ab_variants;
    double total = 0;
    while (*p) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char part[512];
        if (len == 0) {
            p += 1;
            continue;
        }
        if (len >= sizeof part)
            return mp_error_set(err, MP_EINVAL, "setting `ab_variants`: a variant is longer than %zu bytes",
                                sizeof part - 1);
        memcpy(part, p, len);
        part[len] = 0;
        p += len + (end ? 1 : 0);
        if (*n == MAX_VARIANTS)
            return mp_error_set(err, MP_EINVAL, "setting `ab_variants`: more than %d variants", MAX_VARIANTS);
        char *c1 = strchr(part, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c1 || !c2 || c1 == part)
            return mp_error_set(err, MP_EINVAL,
                                "setting `ab_variants`: \"%s\" is not NAME:WEIGHT:POLICY (e.g. "
                                "control:50:greedy;explore:50:egreedy:epsilon=0.1)",
                                part);
        *c1 = 0;
        *c2 = 0;
        vspec *v = &out[*n];
        if (strlen(part) >= sizeof v->name)
            return mp_error_set(err, MP_EINVAL, "setting `ab_variants`: variant name `%s` is too long", part);
        for (size_t i = 0; i < *n; i++)
            if (!strcmp(out[i].name, part))
                return mp_error_set(err, MP_EINVAL, "setting `ab_variants`: variant `%s` is named twice", part);
        for (const char *q = part; *q; q++)
            if (*q == '"' || *q == '\\' || *q == '{' || *q == '}' || *q == ',' || (unsigned char)*q < 0x21)
                return mp_error_set(err, MP_EINVAL,
                                    "setting `ab_variants`: variant name `%s` may not contain blanks, quotes, "
                                    "braces, commas or backslashes",
                                    part);
        snprintf(v->name, sizeof v->name, "%s", part);
        if (parse_double(c1 + 1, 0, 1e12, &v->weight))
            return mp_error_set(err, MP_EINVAL,
                                "setting `ab_variants`: variant `%s`: weight \"%s\" is not a non-negative number",
                                part, c1 + 1);
        mp_bandit_opts_default(&v->opts);
        if (mp_bandit_parse(c2 + 1, &v->opts, err) != MP_OK)
            return mp_error_set(err, MP_EINVAL, "setting `ab_variants`: variant `%s`: %s", part, err->msg);
        total += v->weight;
        (*n)++;
    }
    if (*n == 0) return mp_error_set(err, MP_EINVAL, "setting `ab_variants`: no variant given");
    if (!(total > 0)) return mp_error_set(err, MP_EINVAL, "setting `ab_variants`: the weights sum to 0");
    return MP_OK;
}

static int parse_protect(const mp_serve_config *c, mp_protect_opts *o, int *on, mp_error *err) {
    mp_protect_opts_default(o);
    if (parse_double(c->fatigue_weight, 0, 1e9, &o->fatigue_weight))
        return mp_error_set(err, MP_EINVAL, "setting `fatigue_weight`: \"%s\" is not a number >= 0",
                            c->fatigue_weight);
    if (parse_double(c->mmr_lambda, 0, 1, &o->mmr_lambda))
        return mp_error_set(err, MP_EINVAL, "setting `mmr_lambda`: \"%s\" is not a number in [0, 1]", c->mmr_lambda);
    if (parse_double(c->novelty_weight, 0, 1e9, &o->novelty_weight))
        return mp_error_set(err, MP_EINVAL, "setting `novelty_weight`: \"%s\" is not a number >= 0",
                            c->novelty_weight);
    if (c->fatigue_half_life <= 0)
        return mp_error_set(err, MP_EINVAL, "setting `fatigue_half_life`: must be positive (e.g. 1h)");
    if (c->cap_window <= 0) return mp_error_set(err, MP_EINVAL, "setting `cap_window`: must be positive (e.g. 24h)");
    o->fatigue_half_life = (double)c->fatigue_half_life / 1000.0;
    o->item_cap = (uint32_t)c->item_cap;
    o->category_cap = (uint32_t)c->category_cap;
    o->item_window = o->category_window = (double)c->cap_window / 1000.0;
    *on = o->fatigue_weight > 0 || o->mmr_lambda < 1 || o->novelty_weight > 0 || o->item_cap > 0 ||
          o->category_cap > 0;
    return MP_OK;
}

int mp_serve_parse_price(const char *s, double *out) {
    if (!s || !*s) {
        *out = NAN;
        return 0;
    }
    return parse_double(s, 0, 1e300, out);
}

int mp_serve_bandit_check_config(const mp_serve_config *c, mp_error *err) {
    vspec vs[MAX_VARIANTS];
    size_t n;
    int rc = parse_variants(c, vs, &n, err);
    if (rc) return rc;
    mp_protect_opts o;
    int on;
    rc = parse_protect(c, &o, &on, err);
    if (rc) return rc;
    if (c->bandit_ttl <= 0) return mp_error_set(err, MP_EINVAL, "setting `bandit_ttl`: must be positive (e.g. 1h)");
    double lo, hi;
    if (mp_serve_parse_price(c->price_min, &lo))
        return mp_error_set(err, MP_EINVAL, "setting `price_min`: \"%s\" is not a price (a number >= 0)", c->price_min);
    if (mp_serve_parse_price(c->price_max, &hi))
        return mp_error_set(err, MP_EINVAL, "setting `price_max`: \"%s\" is not a price (a number >= 0)", c->price_max);
    if (lo > hi) return mp_error_set(err, MP_EINVAL, "settings `price_min` %g and `price_max` %g: empty range", lo, hi);
    mp_live_feat_source fs;
    if (mp_live_feat_source_parse(c->bandit_features, &fs, err) != MP_OK)
        return mp_error_set(err, MP_EINVAL, "setting `bandit_features`: %s", err->msg);
    return MP_OK;
}

/* ---- life cycle ------------------------------------------------------------------------------------------------ */

/* One line per impression, written whole under the layer's mutex and flushed (readers see complete lines). */
static int sink_line(void *ctx, const char *line, size_t len) {
    mp_serve_bandit *sb = ctx;
    pthread_mutex_lock(&sb->log_mu);
    int bad = fwrite(line, 1, len, sb->logf) != len || fputc('\n', sb->logf) == EOF || fflush(sb->logf) != 0;
    pthread_mutex_unlock(&sb->log_mu);
    return bad ? -1 : 0;
}

int mp_serve_bandit_create(const mp_serve_config *cfg, uint64_t seed, mp_serve_bandit **out, mp_error *err) {
    *out = NULL;
    vspec vs[MAX_VARIANTS];
    size_t n;
    int rc = mp_serve_bandit_check_config(cfg, err);
    if (rc) return rc;
    rc = parse_variants(cfg, vs, &n, err);
    if (rc) return rc;
    mp_serve_bandit *sb = calloc(1, sizeof *sb);
    if (!sb) return mp_error_set(err, MP_ENOMEM, "bandit layer: out of memory");
    sb->cfg = cfg;
    sb->seed = seed;
    pthread_rwlock_init(&sb->mu, NULL);
    pthread_mutex_init(&sb->log_mu, NULL);
    pthread_mutex_init(&sb->save_mu, NULL);
    for (size_t i = 0; i < MAX_VARIANTS; i++) uset_init(&sb->v[i].users, (size_t)cfg->ab_users);
    parse_protect(cfg, &sb->prot, &sb->protect_on, err);
    mp_serve_parse_price(cfg->price_min, &sb->price_min);
    mp_serve_parse_price(cfg->price_max, &sb->price_max);
    sb->enabled = strcmp(cfg->bandit, "greedy") != 0 || cfg->bandit_log[0] || cfg->ab_variants[0] ||
                  sb->protect_on || !isnan(sb->price_min) || !isnan(sb->price_max);
    if (cfg->bandit_state[0] && mkdir(cfg->bandit_state, 0777) != 0 && errno != EEXIST) {
        int e = errno;
        mp_serve_bandit_destroy(sb);
        return mp_error_set(err, MP_EIO, "setting `bandit_state`: cannot create directory %s: %s",
                            cfg->bandit_state, strerror(e));
    }
    if (cfg->bandit_log[0]) {
        sb->logf = fopen(cfg->bandit_log, "a");
        if (!sb->logf) {
            int e = errno;
            mp_serve_bandit_destroy(sb);
            return mp_error_set(err, MP_EIO, "setting `bandit_log`: cannot open %s for appending: %s",
                                cfg->bandit_log, strerror(e));
        }
    }
    for (size_t i = 0; i < n; i++) {
        variant *v = &sb->v[i];
        snprintf(v->name, sizeof v->name, "%s", vs[i].name);
        v->weight = vs[i].weight;
        sb->weights[i] = vs[i].weight;
        v->opts = vs[i].opts;
        /* a spec without seed= gets one from the run's seed, so two runs explore differently */
        if (v->opts.seed == 1) v->opts.seed = seed * 0x9E3779B97F4A7C15ULL + i + 1;
        v->opts.dim = 1; /* the normalised score; attach adds the item features */
        sb->nv = i + 1;
        rc = mp_bandit_create(&v->opts, &v->b, err);
        if (!rc)
            rc = mp_bandit_log_create((size_t)cfg->bandit_capacity, (double)cfg->bandit_ttl / 1000.0, v->opts.dim,
                                      seed ^ (0xA5A5A5A5ULL * (i + 1)), sb->logf ? sink_line : NULL, sb, &v->log,
                                      err);
        if (rc) {
            mp_serve_bandit_destroy(sb);
            return rc;
        }
    }
    rc = mp_shopper_table_create((size_t)cfg->shopper_users, 256, 64, &sb->shoppers, err);
    if (rc) {
        mp_serve_bandit_destroy(sb);
        return rc;
    }
    *out = sb;
    return MP_OK;
}

void mp_serve_bandit_destroy(mp_serve_bandit *sb) {
    if (!sb) return;
    mp_error err;
    mp_error_clear(&err);
    if (sb->nv && mp_serve_bandit_save(sb, &err) != MP_OK) fprintf(stderr, "magpie serve: bandit_state: %s\n", err.msg);
    for (size_t i = 0; i < sb->nv; i++) {
        mp_bandit_log_destroy(sb->v[i].log);
        mp_bandit_destroy(sb->v[i].b);
    }
    for (size_t i = 0; i < MAX_VARIANTS; i++) uset_free(&sb->v[i].users);
    mp_shopper_table_destroy(sb->shoppers);
    if (sb->logf) fclose(sb->logf);
    pthread_mutex_destroy(&sb->log_mu);
    pthread_mutex_destroy(&sb->save_mu);
    pthread_rwlock_destroy(&sb->mu);
    free(sb);
}

/* DIR/<variant>.bandit */
static void state_path(const mp_serve_bandit *sb, const variant *v, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s.bandit", sb->cfg->bandit_state, v->name);
}

int mp_serve_bandit_save(mp_serve_bandit *sb, mp_error *err) {
    if (!sb || !sb->cfg->bandit_state[0]) return MP_OK;
    int rc = MP_OK;
    pthread_mutex_lock(&sb->save_mu);
    for (size_t i = 0; i < sb->nv && rc == MP_OK; i++) {
        variant *v = &sb->v[i];
        uint64_t u = mp_bandit_updates(v->b);
        char path[4096];
        state_path(sb, v, path, sizeof path);
        struct stat st;
        if (u == v->saved_updates && stat(path, &st) == 0) continue; /* nothing new */
        rc = mp_bandit_save(v->b, path, err);
        if (rc == MP_OK) v->saved_updates = u;
    }
    pthread_mutex_unlock(&sb->save_mu);
    return rc;
}

/* The learned-model settings of a and b agree (a saved policy can go on learning under b's). */
static int same_model(const mp_bandit_opts *a, const mp_bandit_opts *b) {
    return a->dim == b->dim && a->intercept == b->intercept && a->disjoint == b->disjoint && a->lambda == b->lambda &&
           a->score_weight == b->score_weight;
}

int mp_serve_bandit_attach(mp_serve_bandit *sb, mp_live *live, mp_error *err) {
    mp_live_feat_source want = MP_LIVE_FEAT_AUTO, src = MP_LIVE_FEAT_NONE;
    uint32_t dim = 0;
    mp_live_feat_source_parse(sb->cfg->bandit_features, &want, NULL);
    if (live) src = mp_live_feature_source(live, want, &dim);
    pthread_rwlock_wrlock(&sb->mu);
    sb->live = live;
    sb->src = src;
    sb->dim = dim;
    int rc = MP_OK;
    for (size_t i = 0; i < sb->nv && rc == MP_OK; i++) {
        variant *v = &sb->v[i];
        mp_bandit_opts o = v->opts;
        o.dim = dim + 1;
        mp_bandit *nb = NULL;
        if (sb->cfg->bandit_state[0]) {
            char path[4096];
            state_path(sb, v, path, sizeof path);
            struct stat st;
            mp_error lerr;
            mp_error_clear(&lerr);
            if (stat(path, &st) == 0) {
                if (mp_bandit_load(path, &nb, &lerr) != MP_OK) {
                    fprintf(stderr, "magpie serve: bandit_state: variant `%s` starts fresh: %s\n", v->name, lerr.msg);
                    nb = NULL;
                } else if (!same_model(mp_bandit_get_opts(nb), &o)) {
                    const mp_bandit_opts *so = mp_bandit_get_opts(nb);
                    fprintf(stderr,
                            "magpie serve: bandit_state: variant `%s` starts fresh: %s was learned with %u features "
                            "(lambda %g, intercept %d, disjoint %d, w %g), the server now has %u (lambda %g, "
                            "intercept %d, disjoint %d, w %g)\n",
                            v->name, path, so->dim, so->lambda, so->intercept, so->disjoint, so->score_weight, o.dim,
                            o.lambda, o.intercept, o.disjoint, o.score_weight);
                    mp_bandit_destroy(nb);
                    nb = NULL;
                } else {
                    fprintf(stderr, "magpie serve: bandit_state: variant `%s` resumes from %s (%llu updates)\n",
                            v->name, path, (unsigned long long)mp_bandit_updates(nb));
                    v->saved_updates = mp_bandit_updates(nb);
                }
            }
        }
        if (!nb && o.dim == v->opts.dim) continue; /* the policy made at create is the right one */
        mp_bandit_log *nl = NULL;
        if (!nb) rc = mp_bandit_create(&o, &nb, err);
        if (rc == MP_OK)
            rc = mp_bandit_log_create((size_t)sb->cfg->bandit_capacity, (double)sb->cfg->bandit_ttl / 1000.0, o.dim,
                                      sb->seed ^ (0x5A5A5A5AULL * (i + 1)), sb->logf ? sink_line : NULL, sb, &nl,
                                      err);
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
    pthread_rwlock_unlock(&sb->mu);
    return rc;
}

uint32_t mp_serve_bandit_dim(const mp_serve_bandit *sb, const char **source) {
    static const char *const names[] = {"none", "model", "text", "auto"};
    if (source) *source = names[sb ? sb->src : 0];
    return sb ? sb->dim : 0;
}

int mp_serve_bandit_enabled(const mp_serve_bandit *sb) { return sb && sb->enabled; }

/* Writes the lines of v's expired events, at most once a second across threads. */
static void maybe_flush(variant *v, double now) {
    int64_t now_ms = (int64_t)(now * 1000.0), next = atomic_load(&v->next_flush_ms);
    if (now_ms < next || !atomic_compare_exchange_strong(&v->next_flush_ms, &next, now_ms + 1000)) return;
    mp_error ferr;
    mp_error_clear(&ferr);
    if (mp_bandit_log_flush(v->log, now, 0, &ferr) == MP_EIO)
        fprintf(stderr, "magpie serve: bandit_log: %s\n", ferr.msg);
}

/* ---- serving ----------------------------------------------------------------------------------------------------- */

static uint32_t hash_id(const char *s) {
    uint64_t h = mp_hash_bytes(s, strlen(s));
    uint32_t v = (uint32_t)(h ^ (h >> 32));
    return v == UINT32_MAX ? 0 : v;
}

/* Saves the learned policies when bandit_save_every has passed (at most one thread at a time). */
static void maybe_save(mp_serve_bandit *sb, double now) {
    if (!sb->cfg->bandit_state[0] || sb->cfg->bandit_save_every <= 0) return;
    int64_t now_ms = (int64_t)(now * 1000.0), next = atomic_load(&sb->next_save_ms);
    if (next == 0) { /* the first call starts the clock */
        atomic_compare_exchange_strong(&sb->next_save_ms, &next, now_ms + sb->cfg->bandit_save_every);
        return;
    }
    if (now_ms < next ||
        !atomic_compare_exchange_strong(&sb->next_save_ms, &next, now_ms + sb->cfg->bandit_save_every))
        return;
    mp_error serr;
    mp_error_clear(&serr);
    if (mp_serve_bandit_save(sb, &serr) != MP_OK) fprintf(stderr, "magpie serve: bandit_state: %s\n", serr.msg);
}

/* Fills the candidates' x (x[n * xdim]: the item's features when xdim == dim + 1, then the score min-max
 * normalised over the candidates, last) and facts from the live recommender. */
static int fill_facts(mp_serve_bandit *sb, mp_live_list *l, mp_bandit_cand *cands, float *x, size_t xdim,
                      mp_error *err) {
    size_t n = l->n;
    uint32_t fdim = xdim == (size_t)sb->dim + 1 ? sb->dim : 0; /* a policy not rebuilt at attach: the score only */
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (cands[i].score < lo) lo = cands[i].score;
        if (cands[i].score > hi) hi = cands[i].score;
    }
    for (size_t i = 0; i < n; i++) {
        double s = hi > lo ? (cands[i].score - lo) / (hi - lo) : 1.0;
        cands[i].score = s; /* the policies see scores on [0, 1] whatever the model's scale */
        x[i * xdim + xdim - 1] = (float)s;
        cands[i].x = x + i * xdim;
    }
    if (!sb->live) return MP_OK;
    const char **ids = malloc(n * sizeof *ids);
    mp_live_item_facts *f = malloc(n * sizeof *f);
    float *feat = fdim ? malloc(n * fdim * sizeof *feat) : NULL;
    int rc = MP_OK;
    if (!ids || !f || (fdim && !feat)) {
        rc = mp_error_set(err, MP_ENOMEM, "bandit layer: out of memory for %zu candidates", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) ids[i] = l->items[i].item;
    rc = mp_live_item_features(sb->live, ids, n, sb->src, fdim, feat, f, NULL, err);
    if (rc) goto out;
    for (size_t i = 0; i < n; i++) {
        cands[i].price = f[i].price;
        cands[i].popularity = f[i].popularity;
        cands[i].out_of_stock = f[i].known && !f[i].available;
        if (feat) memcpy(x + i * xdim, feat + i * fdim, fdim * sizeof *feat);
    }
out:
    free(ids);
    free(f);
    free(feat);
    return rc;
}

int mp_serve_bandit_serve(mp_serve_bandit *sb, const char *user, size_t user_len, const char *policy_spec,
                          const mp_serve_rules *rules, mp_live_list *l, size_t k, double now, mp_serve_slate *out,
                          mp_error *err) {
    memset(out, 0, sizeof *out);
    char ubuf[1024];
    if (user_len >= sizeof ubuf) user_len = sizeof ubuf - 1;
    if (user) memcpy(ubuf, user, user_len);
    ubuf[user ? user_len : 0] = 0;
    pthread_rwlock_rdlock(&sb->mu);
    int vi = mp_abtest_assign(ubuf, sb->cfg->ab_salt, sb->weights, sb->nv);
    if (vi < 0) vi = 0;
    variant *v = &sb->v[vi];
    out->variant = v->name;
    /* the exploration part always comes from the config (a policy loaded from bandit_state keeps only its model) */
    mp_bandit_opts ov = v->opts;
    if (policy_spec && mp_bandit_parse(policy_spec, &ov, err) != MP_OK) {
        pthread_rwlock_unlock(&sb->mu);
        return err->code ? err->code : MP_EINVAL;
    }
    out->policy = mp_bandit_kind_name(ov.kind);
    mp_protect_opts po = sb->prot;
    po.price_min = rules && !isnan(rules->price_min) ? rules->price_min : sb->price_min;
    po.price_max = rules && !isnan(rules->price_max) ? rules->price_max : sb->price_max;
    int protect = sb->protect_on || !isnan(po.price_min) || !isnan(po.price_max);
    size_t n = l->n;
    if (k > n) k = n;
    if (k == 0) {
        pthread_rwlock_unlock(&sb->mu);
        return MP_OK;
    }
    uint32_t dim = sb->dim;         /* item features (for MMR's similarities) */
    size_t xdim = v->opts.dim >= 1 ? v->opts.dim : 1; /* the policy's x: the features and the normalised score */
    mp_bandit_cand *cands = calloc(n, sizeof *cands), *prot = NULL;
    mp_bandit_pick *picks = calloc(k, sizeof *picks);
    size_t *order = calloc(n, sizeof *order); /* candidate index -> index into l->items */
    mp_live_item *tmp = calloc(n, sizeof *tmp);
    unsigned char *used = calloc(n, 1);
    double *props = calloc(k, sizeof *props);
    float *x = calloc(n * xdim, sizeof *x);
    int rc = MP_OK;
    if (!cands || !picks || !order || !tmp || !used || !props || !x) {
        rc = mp_error_set(err, MP_ENOMEM, "bandit layer: out of memory for %zu candidates", n);
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
    if ((rc = fill_facts(sb, l, cands, x, xdim, err))) goto out;
    if (xdim != (size_t)dim + 1) dim = 0; /* no features in x (see fill_facts) */
    const mp_bandit_cand *use = cands;
    size_t m = n;
    if (protect) {
        prot = calloc(n, sizeof *prot);
        if (!prot) {
            rc = mp_error_set(err, MP_ENOMEM, "bandit layer: out of memory");
            goto out;
        }
        /* anonymous sessions have no shopper state: only the business rules and the score adjustments apply */
        if (user)
            rc = mp_shopper_table_rerank(sb->shoppers, ubuf, &po, cands, n, dim, now, prot, &m, NULL, err);
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
        fprintf(stderr, "magpie serve: bandit_log: %s\n", err->msg);
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
            mp_shopper_table_record(sb->shoppers, ubuf, MP_SHOP_IMPRESSION, cands[j].item, cands[j].category, now,
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
    if (user && ubuf[0]) uset_note(&v->users, ubuf, U_SERVED);
    maybe_flush(v, now);
    maybe_save(sb, now);
out:
    pthread_rwlock_unlock(&sb->mu);
    free(cands);
    free(prot);
    free(picks);
    free(order);
    free(tmp);
    free(used);
    free(props);
    free(x);
    return rc;
}

int mp_serve_bandit_feedback(mp_serve_bandit *sb, const char *event_id, const char *item, double reward, double now,
                             const char **variant_name, mp_error *err) {
    int rc = MP_ENOTFOUND;
    pthread_rwlock_rdlock(&sb->mu);
    for (size_t i = 0; i < sb->nv; i++) {
        variant *v = &sb->v[i];
        mp_error_clear(err);
        rc = mp_bandit_feedback(v->log, v->b, event_id, item, reward, now, NULL, err);
        if (rc == MP_ENOTFOUND) continue; /* not this variant's event id */
        if (rc == MP_EIO) {
            fprintf(stderr, "magpie serve: bandit_log: %s\n", err->msg);
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
                mp_shopper_table_record(sb->shoppers, user, MP_SHOP_CLICK, hash_id(item), UINT32_MAX, now, NULL);
                uset_note(&v->users, user, U_CONVERTED);
            }
        }
        if (variant_name) *variant_name = v->name;
        maybe_flush(v, now); /* expired events leave the log (their lines are written), not only at shutdown */
        maybe_save(sb, now);
        break;
    }
    pthread_rwlock_unlock(&sb->mu);
    if (rc != MP_ENOTFOUND) return rc;
    mp_error_clear(err);
    return mp_error_set(err, MP_ENOTFOUND,
                        "feedback: unknown event id `%.64s` (not served by this server run; ids come from "
                        "the `event_id` of /v1/recommend)",
                        event_id);
}

void mp_serve_bandit_observe(mp_serve_bandit *sb, const mp_event *ev, size_t n, double now) {
    if (!sb) return;
    pthread_rwlock_rdlock(&sb->mu);
    for (size_t i = 0; i < n; i++) {
        mp_event_type t = ev[i].type;
        if (t != MP_EV_CLICK && t != MP_EV_CART && t != MP_EV_FAV && t != MP_EV_PURCHASE) continue;
        char user[1024], item[1024];
        if (ev[i].user.len >= sizeof user || ev[i].item.len >= sizeof item || ev[i].user.len == 0) continue;
        memcpy(user, ev[i].user.ptr, ev[i].user.len);
        user[ev[i].user.len] = 0;
        memcpy(item, ev[i].item.ptr, ev[i].item.len);
        item[ev[i].item.len] = 0;
        if (sb->protect_on)
            mp_shopper_table_record(sb->shoppers, user, t == MP_EV_PURCHASE ? MP_SHOP_PURCHASE : MP_SHOP_CLICK,
                                    hash_id(item), UINT32_MAX, now, NULL);
        if (t == MP_EV_PURCHASE) { /* a purchase by a user the variant served (also through policy=) */
            int vi = mp_abtest_assign(user, sb->cfg->ab_salt, sb->weights, sb->nv);
            variant *v = &sb->v[vi < 0 ? 0 : vi];
            if (uset_note(&v->users, user, U_PURCHASE)) atomic_fetch_add(&v->purchases, 1);
        }
    }
    pthread_rwlock_unlock(&sb->mu);
}

/* ---- counters ---------------------------------------------------------------------------------------------------- */

static void uset_counts(uset *u, uint64_t *users, uint64_t *converted, uint64_t *untracked) {
    pthread_mutex_lock(&u->mu);
    *users = u->n;
    *converted = u->converted;
    *untracked = u->untracked;
    pthread_mutex_unlock(&u->mu);
}

void mp_serve_bandit_stats_json(mp_serve_bandit *sb, jbuf *b) {
    if (!sb) return;
    pthread_rwlock_rdlock(&sb->mu);
    const char *src;
    uint32_t dim = mp_serve_bandit_dim(sb, &src);
    jb_cstr(b, ",\"bandit\":{\"enabled\":");
    jb_bool(b, sb->enabled);
    jb_printf(b, ",\"features\":\"%s\",\"dim\":%u", src, dim);
    jb_cstr(b, ",\"protection\":");
    jb_bool(b, sb->protect_on);
    jb_printf(b, ",\"shoppers\":%zu,\"salt\":", mp_shopper_table_size(sb->shoppers));
    jb_cstr_json(b, sb->cfg->ab_salt);
    jb_cstr(b, ",\"variants\":[");
    for (size_t i = 0; i < sb->nv; i++) {
        variant *v = &sb->v[i];
        if (i) jb_raw(b, ",", 1);
        jb_cstr(b, "{\"name\":");
        jb_cstr_json(b, v->name);
        jb_cstr(b, ",\"policy\":");
        jb_cstr_json(b, mp_bandit_kind_name(v->opts.kind));
        jb_cstr(b, ",\"weight\":");
        jb_f64(b, v->weight);
        uint64_t users, converted, untracked;
        uset_counts(&v->users, &users, &converted, &untracked);
        jb_printf(b,
                  ",\"requests\":%llu,\"impressions\":%llu,\"feedback\":%llu,\"clicks\":%llu,\"reward_sum\":%.6f,"
                  "\"updates\":%llu,\"events_held\":%zu,\"users\":%llu,\"converted_users\":%llu,"
                  "\"purchases\":%llu,\"untracked_users\":%llu}",
                  (unsigned long long)atomic_load(&v->requests), (unsigned long long)atomic_load(&v->impressions),
                  (unsigned long long)atomic_load(&v->feedback), (unsigned long long)atomic_load(&v->clicks),
                  (double)atomic_load(&v->reward_micros) / 1e6, (unsigned long long)mp_bandit_updates(v->b),
                  mp_bandit_log_size(v->log), (unsigned long long)users, (unsigned long long)converted,
                  (unsigned long long)atomic_load(&v->purchases), (unsigned long long)untracked);
    }
    jb_cstr(b, "]}");
    pthread_rwlock_unlock(&sb->mu);
}

void mp_serve_bandit_metrics(mp_serve_bandit *sb, jbuf *b) {
    if (!sb) return;
    pthread_rwlock_rdlock(&sb->mu);
    static const char *const names[] = {"requests", "impressions", "feedback", "clicks", "purchases"};
    static const char *const helps[] = {"lists served", "items served", "feedback calls accepted",
                                        "feedback with reward > 0", "purchase events by users the variant served"};
    for (int s = 0; s < 5; s++) {
        jb_printf(b, "# HELP magpie_ab_%s_total A/B variant %s.\n# TYPE magpie_ab_%s_total counter\n", names[s],
                  helps[s], names[s]);
        for (size_t i = 0; i < sb->nv; i++) {
            variant *v = &sb->v[i];
            uint64_t x = s == 0   ? atomic_load(&v->requests)
                         : s == 1 ? atomic_load(&v->impressions)
                         : s == 2 ? atomic_load(&v->feedback)
                         : s == 3 ? atomic_load(&v->clicks)
                                  : atomic_load(&v->purchases);
            jb_printf(b, "magpie_ab_%s_total{variant=\"%s\"} %llu\n", names[s], v->name, (unsigned long long)x);
        }
    }
    jb_cstr(b, "# HELP magpie_ab_users Distinct users a variant served (tracked).\n# TYPE magpie_ab_users gauge\n"
               "# HELP magpie_ab_converted_users Served users with positive feedback or a purchase.\n"
               "# TYPE magpie_ab_converted_users gauge\n");
    for (size_t i = 0; i < sb->nv; i++) {
        uint64_t users, converted, untracked;
        uset_counts(&sb->v[i].users, &users, &converted, &untracked);
        jb_printf(b, "magpie_ab_users{variant=\"%s\"} %llu\nmagpie_ab_converted_users{variant=\"%s\"} %llu\n",
                  sb->v[i].name, (unsigned long long)users, sb->v[i].name, (unsigned long long)converted);
    }
    jb_cstr(b, "# HELP magpie_ab_reward_sum Sum of positive feedback rewards per A/B variant.\n"
               "# TYPE magpie_ab_reward_sum counter\n");
    for (size_t i = 0; i < sb->nv; i++)
        jb_printf(b, "magpie_ab_reward_sum{variant=\"%s\"} %.6f\n", sb->v[i].name,
                  (double)atomic_load(&sb->v[i].reward_micros) / 1e6);
    jb_cstr(b, "# HELP magpie_bandit_events_held Served lists that still accept feedback.\n"
               "# TYPE magpie_bandit_events_held gauge\n");
    for (size_t i = 0; i < sb->nv; i++)
        jb_printf(b, "magpie_bandit_events_held{variant=\"%s\"} %zu\n", sb->v[i].name,
                  mp_bandit_log_size(sb->v[i].log));
    pthread_rwlock_unlock(&sb->mu);
}

void mp_serve_bandit_abtest_json(mp_serve_bandit *sb, jbuf *b) {
    pthread_rwlock_rdlock(&sb->mu);
    mp_abtest_arm arms[MAX_VARIANTS];
    jb_cstr(b, "{\"salt\":");
    jb_cstr_json(b, sb->cfg->ab_salt);
    jb_cstr(b, ",\"conversion\":\"a served user converts with positive feedback or a purchase\",\"variants\":[");
    for (size_t i = 0; i < sb->nv; i++) {
        variant *v = &sb->v[i];
        uint64_t untracked;
        uset_counts(&v->users, &arms[i].n, &arms[i].conv, &untracked);
        if (i) jb_raw(b, ",", 1);
        jb_cstr(b, "{\"name\":");
        jb_cstr_json(b, v->name);
        jb_cstr(b, ",\"policy\":");
        jb_cstr_json(b, mp_bandit_kind_name(v->opts.kind));
        jb_printf(b, ",\"users\":%llu,\"converted_users\":%llu,\"rate\":", (unsigned long long)arms[i].n,
                  (unsigned long long)arms[i].conv);
        jb_f64(b, arms[i].n ? (double)arms[i].conv / (double)arms[i].n : 0.0);
        jb_printf(b, ",\"purchases\":%llu,\"untracked_users\":%llu}",
                  (unsigned long long)atomic_load(&v->purchases), (unsigned long long)untracked);
    }
    jb_cstr(b, "],\"comparisons\":[");
    mp_abtest_opts ao;
    mp_abtest_opts_default(&ao);
    ao.bootstrap = 0;
    for (size_t i = 1; i < sb->nv; i++) {
        if (i > 1) jb_raw(b, ",", 1);
        jb_cstr(b, "{\"control\":");
        jb_cstr_json(b, sb->v[0].name);
        jb_cstr(b, ",\"treatment\":");
        jb_cstr_json(b, sb->v[i].name);
        mp_abtest_result r;
        mp_error e;
        mp_error_clear(&e);
        if (mp_abtest_compare(&arms[0], &arms[i], &ao, &r, &e) != MP_OK) {
            jb_cstr(b, ",\"error\":");
            jb_cstr_json(b, e.msg);
        } else {
            const double f[] = {r.diff, r.diff_lo, r.diff_hi, r.lift, r.lift_lo, r.lift_hi, r.z, r.p_value};
            static const char *const k[] = {"diff", "diff_lo", "diff_hi", "lift", "lift_lo", "lift_hi", "z", "p_value"};
            for (int j = 0; j < 8; j++) {
                jb_printf(b, ",\"%s\":", k[j]);
                if (isfinite(f[j])) jb_f64(b, f[j]);
                else jb_cstr(b, "null");
            }
            jb_cstr(b, ",\"significant\":");
            jb_bool(b, r.significant);
        }
        jb_raw(b, "}", 1);
    }
    jb_cstr(b, "]}");
    pthread_rwlock_unlock(&sb->mu);
}

void mp_serve_bandit_abtest_csv(mp_serve_bandit *sb, jbuf *b) {
    pthread_rwlock_rdlock(&sb->mu);
    jb_cstr(b, "variant,user,converted,value\n");
    for (size_t i = 0; i < sb->nv; i++) {
        uset *u = &sb->v[i].users;
        pthread_mutex_lock(&u->mu);
        for (size_t j = 0; j < u->cap; j++)
            if (u->slot[j].key)
                jb_printf(b, "%s,%016llx,%d,%u\n", sb->v[i].name, (unsigned long long)u->slot[j].key,
                          u->slot[j].converted, u->slot[j].purchases);
        pthread_mutex_unlock(&u->mu);
    }
    pthread_rwlock_unlock(&sb->mu);
}
