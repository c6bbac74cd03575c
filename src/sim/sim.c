/* src/sim/sim.c: the shopper simulator (see magpie/sim.h): the world, the options, the run loop and the metrics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/linalg.h"
#include "magpie/model.h"
#include "magpie/topk.h"
#include "magpie/trainset.h"
#include "sim/sim_internal.h"

struct mp_sim_world {
    uint32_t n_users, n_items, dim, n_categories;
    float *user_vecs, *item_vecs;
    uint32_t *item_category;
    double *item_pop;
    float *pop_feat; /* [n_items] log(1 + pop) / log(1 + max pop) */
};

/* ---------------- world ---------------- */

void mp_sim_world_destroy(mp_sim_world *w) {
    if (!w) return;
    free(w->user_vecs);
    free(w->item_vecs);
    free(w->item_category);
    free(w->item_pop);
    free(w->pop_feat);
    free(w);
}

uint32_t mp_sim_world_users(const mp_sim_world *w) { return w->n_users; }
uint32_t mp_sim_world_items(const mp_sim_world *w) { return w->n_items; }

int mp_sim_world_create(uint32_t n_users, uint32_t n_items, uint32_t dim, const float *user_vecs,
                        const float *item_vecs, const uint32_t *item_category, uint32_t n_categories,
                        const double *item_pop, mp_sim_world **out, mp_error *err) {
    *out = NULL;
    if (!n_users || !n_items || !dim || !user_vecs || !item_vecs)
        return mp_error_set(err, MP_EINVAL, "simulator world: need shoppers, items and vectors (got %u users, %u "
                                            "items, dim %u)", n_users, n_items, dim);
    if (n_categories == 0) n_categories = 1;
    for (size_t i = 0; i < (size_t)n_users * dim; i++)
        if (!isfinite(user_vecs[i]))
            return mp_error_set(err, MP_EINVAL, "simulator world: user vector %zu has a non-finite value", i / dim);
    for (size_t i = 0; i < (size_t)n_items * dim; i++)
        if (!isfinite(item_vecs[i]))
            return mp_error_set(err, MP_EINVAL, "simulator world: item vector %zu has a non-finite value", i / dim);
    if (item_category)
        for (uint32_t i = 0; i < n_items; i++)
            if (item_category[i] >= n_categories)
                return mp_error_set(err, MP_EINVAL, "simulator world: item %u has category %u >= %u categories", i,
                                    item_category[i], n_categories);
    mp_sim_world *w = calloc(1, sizeof *w);
    if (!w) return mp_error_set(err, MP_ENOMEM, "simulator world: out of memory");
    w->n_users = n_users;
    w->n_items = n_items;
    w->dim = dim;
    w->n_categories = n_categories;
    w->user_vecs = malloc((size_t)n_users * dim * sizeof(float));
    w->item_vecs = malloc((size_t)n_items * dim * sizeof(float));
    w->item_category = calloc(n_items, sizeof(uint32_t));
    w->item_pop = calloc(n_items, sizeof(double));
    w->pop_feat = calloc(n_items, sizeof(float));
    if (!w->user_vecs || !w->item_vecs || !w->item_category || !w->item_pop || !w->pop_feat) {
        mp_sim_world_destroy(w);
        return mp_error_set(err, MP_ENOMEM, "simulator world: out of memory for %u users x %u items", n_users,
                            n_items);
    }
    memcpy(w->user_vecs, user_vecs, (size_t)n_users * dim * sizeof(float));
    memcpy(w->item_vecs, item_vecs, (size_t)n_items * dim * sizeof(float));
    if (item_category) memcpy(w->item_category, item_category, n_items * sizeof(uint32_t));
    double maxp = 0;
    for (uint32_t i = 0; i < n_items; i++) {
        double p = item_pop && isfinite(item_pop[i]) && item_pop[i] > 0 ? item_pop[i] : 0;
        w->item_pop[i] = p;
        if (p > maxp) maxp = p;
    }
    for (uint32_t i = 0; i < n_items; i++)
        w->pop_feat[i] = maxp > 0 ? (float)(log1p(w->item_pop[i]) / log1p(maxp)) : 0.0f;
    *out = w;
    return MP_OK;
}

int mp_sim_world_fit(const mp_dataset *ds, const char *model, const char *params, int threads, mp_sim_world **out,
                     mp_error *err) {
    *out = NULL;
    if (!ds || ds->n_events == 0)
        return mp_error_set(err, MP_EEMPTY, "simulator world: the dataset has no events to fit shoppers' tastes on");
    mp_train_set ts;
    memset(&ts, 0, sizeof ts);
    mp_model *m = NULL;
    float *uv = NULL, *qv = NULL;
    double *pop = NULL;
    int rc = mp_train_set_build(&ts, ds, ds->events, ds->n_events, NULL, err);
    if (rc) goto done;
    ts.data.n_threads = threads;
    if ((rc = mp_model_create(&m, model ? model : "als", err))) goto done;
    if (params && *params && (rc = mp_model_set_params(m, params, err))) goto done;
    if ((rc = mp_model_fit(m, &ts.data, NULL, err))) goto done;
    const float *iv;
    uint32_t ni, dim;
    if ((rc = mp_model_item_vectors(m, &iv, &ni, &dim, err))) goto done;
    /* shoppers: users with events */
    uint32_t nu = 0;
    for (uint32_t u = 0; u < ds->n_users; u++)
        if (ds->user_ptr[u + 1] > ds->user_ptr[u]) nu++;
    uv = malloc((size_t)(nu ? nu : 1) * dim * sizeof(float));
    qv = malloc((size_t)dim * sizeof(float));
    pop = calloc(ni, sizeof(double));
    if (!uv || !qv || !pop) {
        rc = mp_error_set(err, MP_ENOMEM, "simulator world: out of memory");
        goto done;
    }
    uint32_t k = 0;
    for (uint32_t u = 0; u < ds->n_users; u++) {
        uint64_t a = ds->user_ptr[u], b = ds->user_ptr[u + 1];
        if (b == a) continue;
        mp_user_ctx ctx;
        memset(&ctx, 0, sizeof ctx);
        ctx.user = u;
        ctx.history = ds->events + a;
        ctx.n_history = (size_t)(b - a);
        int have = 0;
        if ((rc = mp_model_query_vector(m, &ctx, qv, &have, err))) goto done;
        if (!have) continue;
        memcpy(uv + (size_t)k * dim, qv, dim * sizeof(float));
        k++;
    }
    for (size_t e = 0; e < ds->n_events; e++)
        if (ds->events[e].item < ni) pop[ds->events[e].item] += 1;
    uint32_t *cat = NULL;
    if (ds->item_category && ds->n_categories > 0) {
        cat = malloc((size_t)ni * sizeof(uint32_t));
        if (!cat) {
            rc = mp_error_set(err, MP_ENOMEM, "simulator world: out of memory");
            goto done;
        }
        for (uint32_t i = 0; i < ni; i++)
            cat[i] = i < ds->n_items && ds->item_category[i] < ds->n_categories ? ds->item_category[i] : 0;
    }
    if (k == 0)
        rc = mp_error_set(err, MP_EEMPTY, "simulator world: model `%s` gave no user a taste vector",
                          model ? model : "als");
    else
        rc = mp_sim_world_create(k, ni, dim, uv, iv, cat, ds->n_categories, pop, out, err);
    free(cat);
done:
    free(uv);
    free(qv);
    free(pop);
    mp_model_destroy(m);
    mp_train_set_free(&ts);
    return rc;
}

/* ---------------- options ---------------- */

void mp_sim_opts_default(mp_sim_opts *o) {
    memset(o, 0, sizeof *o);
    o->days = 30;
    o->n_cands = 100;
    o->slate = 10;
    o->visit_prob = 0.8;
    o->taste_noise = 0.3;
    o->drift = 0.1;
    o->rel_weight = 2;
    o->bore_item = 1;
    o->bore_cat = 0.15;
    o->bore_half_life = 3;
    o->sat_weight = 1;
    o->sat_half_life = 5;
    o->click_bias = -2;
    o->buy_bias = -1.5;
    o->leak = 0.7;
    o->irr_weight = 1;
    o->rep_weight = 1;
    o->rep_window = 3;
    o->click_relief = 0.1;
    o->buy_relief = 0.3;
    o->churn_max = 0.08;
    o->churn_slope = 2;
    o->churn_mid = 3;
    o->click_reward = 0.1;
    o->stay_reward = 0.05;
    o->novel_reward = 0.02;
}

typedef struct {
    const char *name;
    size_t off;
    int is_u32;
} opt_field;

#define F_D(n) {#n, offsetof(mp_sim_opts, n), 0}
#define F_U(n) {#n, offsetof(mp_sim_opts, n), 1}
static const opt_field k_fields[] = {
    F_U(days),        F_U(max_users),  F_U(n_cands),    F_U(slate),        F_D(visit_prob),   F_D(taste_noise),
    F_D(drift),       F_D(rel_weight), F_D(bore_item),  F_D(bore_cat),     F_D(bore_half_life), F_D(sat_weight),
    F_D(sat_half_life), F_D(click_bias), F_D(buy_bias), F_D(leak),         F_D(irr_weight),   F_D(rep_weight),
    F_D(rep_window),  F_D(click_relief), F_D(buy_relief), F_D(churn_max),  F_D(churn_slope),  F_D(churn_mid),
    F_D(click_reward), F_D(stay_reward), F_D(novel_reward), F_D(cover_reward),
};

int mp_sim_opts_set(mp_sim_opts *o, const char *key, const char *value, mp_error *err) {
    for (size_t i = 0; i < sizeof k_fields / sizeof k_fields[0]; i++) {
        if (strcmp(k_fields[i].name, key)) continue;
        char *end = NULL;
        if (!value || !*value)
            return mp_error_set(err, MP_EINVAL, "simulator option `%s`: missing value", key);
        if (k_fields[i].is_u32) {
            unsigned long long v = strtoull(value, &end, 10);
            if (*end || value[0] == '-' || v > UINT32_MAX)
                return mp_error_set(err, MP_EINVAL, "simulator option `%s`: `%s` is not a non-negative integer", key,
                                    value);
            *(uint32_t *)((char *)o + k_fields[i].off) = (uint32_t)v;
        } else {
            double v = strtod(value, &end);
            if (*end || !isfinite(v))
                return mp_error_set(err, MP_EINVAL, "simulator option `%s`: `%s` is not a finite number", key, value);
            *(double *)((char *)o + k_fields[i].off) = v;
        }
        return MP_OK;
    }
    char known[1024];
    size_t len = 0;
    known[0] = 0;
    for (size_t i = 0; i < sizeof k_fields / sizeof k_fields[0] && len < sizeof known - 40; i++)
        len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", k_fields[i].name);
    return mp_error_set(err, MP_EINVAL, "unknown simulator option `%s` (options: %s)", key, known);
}

int mp_sim_opts_parse(mp_sim_opts *o, const char *spec, mp_error *err) {
    if (!spec) return MP_OK;
    char buf[1024];
    if (strlen(spec) >= sizeof buf) return mp_error_set(err, MP_EINVAL, "simulator options: spec too long");
    strcpy(buf, spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) return mp_error_set(err, MP_EINVAL, "simulator options: `%s` is not key=value", tok);
        *eq = 0;
        int rc = mp_sim_opts_set(o, tok, eq + 1, err);
        if (rc) return rc;
    }
    return MP_OK;
}

int mp_sim_opts_check(const mp_sim_opts *o, mp_error *err) {
    if (o->days < 1 || o->days > 3650)
        return mp_error_set(err, MP_EINVAL, "simulator option `days`: %u is not in [1, 3650]", o->days);
    if (o->slate < 1 || o->slate > 256)
        return mp_error_set(err, MP_EINVAL, "simulator option `slate`: %u is not in [1, 256]", o->slate);
    if (o->n_cands < o->slate)
        return mp_error_set(err, MP_EINVAL, "simulator option `n_cands`: %u is smaller than the slate (%u)",
                            o->n_cands, o->slate);
    if (!(o->visit_prob >= 0 && o->visit_prob <= 1))
        return mp_error_set(err, MP_EINVAL, "simulator option `visit_prob`: must be in [0, 1]");
    if (!(o->leak >= 0 && o->leak <= 1))
        return mp_error_set(err, MP_EINVAL, "simulator option `leak`: must be in [0, 1]");
    if (!(o->churn_max >= 0 && o->churn_max <= 1))
        return mp_error_set(err, MP_EINVAL, "simulator option `churn_max`: must be in [0, 1]");
    if (!(o->bore_half_life > 0) || !(o->sat_half_life > 0))
        return mp_error_set(err, MP_EINVAL, "simulator options `bore_half_life`, `sat_half_life`: must be > 0");
    if (o->taste_noise < 0 || o->drift < 0)
        return mp_error_set(err, MP_EINVAL, "simulator options `taste_noise`, `drift`: must be >= 0");
    return MP_OK;
}

/* ---------------- metrics ---------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double mp_sim_gini(const double *x, size_t n) {
    if (n == 0) return 0;
    double *s = malloc(n * sizeof(double));
    if (!s) return NAN;
    memcpy(s, x, n * sizeof(double));
    qsort(s, n, sizeof(double), cmp_double);
    /* G = sum_i (2i - n - 1) x_(i) / (n sum x), i = 1..n ascending */
    double num = 0, tot = 0;
    for (size_t i = 0; i < n; i++) {
        num += (2.0 * (double)(i + 1) - (double)n - 1.0) * s[i];
        tot += s[i];
    }
    free(s);
    return tot > 0 ? num / ((double)n * tot) : 0;
}

double mp_sim_coverage(const uint64_t *counts, size_t n) {
    if (n == 0) return 0;
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += counts[i] > 0;
    return (double)c / (double)n;
}

double mp_sim_retention(const uint32_t *churn_day, size_t n, uint32_t day) {
    if (n == 0) return 0;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) kept += churn_day[i] == 0 || churn_day[i] > day;
    return (double)kept / (double)n;
}

/* two-sided 97.5% quantiles of Student's t for df 1..30 */
static const double k_t975[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                  2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                  2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};

void mp_sim_ci(const double *x, size_t n, double *mean, double *half) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m += x[i];
    m = n ? m / (double)n : NAN;
    *mean = m;
    if (n < 2) {
        *half = NAN;
        return;
    }
    double v = 0;
    for (size_t i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    v /= (double)(n - 1);
    size_t df = n - 1;
    double t = df <= 30 ? k_t975[df - 1] : (df <= 60 ? 2.000 : (df <= 120 ? 1.980 : 1.960));
    *half = t * sqrt(v / (double)n);
}

/* ---------------- the run ---------------- */

typedef struct shopper {
    uint32_t user;
    uint32_t m;              /* candidate pool size */
    uint32_t *pool;          /* [m] items by fitted score, best first */
    uint32_t *lcat;          /* [m] local category of each pool item */
    uint32_t nlc;            /* local categories */
    double mean, sd;         /* of the fitted score over the first n_cands pool items */
    double *taste;           /* [dim] true taste */
    double *imp_true, *imp_feat, *clk_feat; /* [m] decayed impressions / clicks */
    double *last_shown;      /* [m] day last shown, -1e9 never */
    uint8_t *purchased;      /* [m] */
    double *cat_true, *cat_feat, *sat_true, *sat_feat; /* [nlc] */
    double dis;              /* dissatisfaction */
    int active;
    uint32_t churn_day;
    mp_rng rng;
} shopper;

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void shopper_free(shopper *s) {
    free(s->pool);
    free(s->lcat);
    free(s->taste);
    free(s->imp_true);
    free(s->imp_feat);
    free(s->clk_feat);
    free(s->last_shown);
    free(s->purchased);
    free(s->cat_true);
    free(s->cat_feat);
    free(s->sat_true);
    free(s->sat_feat);
}

static int shopper_init(shopper *s, const mp_sim_world *w, const mp_sim_opts *o, uint32_t user, uint64_t seed,
                        float *scores, mp_error *err) {
    memset(s, 0, sizeof *s);
    s->user = user;
    s->active = 1;
    mp_rng_seed(&s->rng, mix64(seed * 0x100000001b3ULL + user + 1));
    const float *u0 = w->user_vecs + (size_t)user * w->dim;
    for (uint32_t i = 0; i < w->n_items; i++) scores[i] = mp_dot(u0, w->item_vecs + (size_t)i * w->dim, w->dim);
    uint32_t want = o->n_cands * 2 + o->slate;
    if (want > w->n_items) want = w->n_items;
    s->pool = malloc((size_t)want * sizeof(uint32_t));
    s->lcat = malloc((size_t)want * sizeof(uint32_t));
    s->taste = malloc((size_t)w->dim * sizeof(double));
    s->imp_true = calloc(want, sizeof(double));
    s->imp_feat = calloc(want, sizeof(double));
    s->clk_feat = calloc(want, sizeof(double));
    s->last_shown = malloc((size_t)want * sizeof(double));
    s->purchased = calloc(want, 1);
    s->cat_true = calloc(want, sizeof(double));
    s->cat_feat = calloc(want, sizeof(double));
    s->sat_true = calloc(want, sizeof(double));
    s->sat_feat = calloc(want, sizeof(double));
    if (!s->pool || !s->lcat || !s->taste || !s->imp_true || !s->imp_feat || !s->clk_feat || !s->last_shown ||
        !s->purchased || !s->cat_true || !s->cat_feat || !s->sat_true || !s->sat_feat)
        return mp_error_set(err, MP_ENOMEM, "simulator: out of memory for shopper %u", user);
    size_t n_pool;
    int rc = mp_topk(scores, w->n_items, NULL, want, s->pool, &n_pool);
    if (rc) return mp_error_set(err, rc, "simulator: cannot rank the pool of shopper %u: %s", user, mp_strerror(rc));
    s->m = (uint32_t)n_pool;
    for (uint32_t j = 0; j < s->m; j++) {
        s->last_shown[j] = -1e9;
        uint32_t c = w->item_category[s->pool[j]], l;
        for (l = 0; l < j; l++)
            if (w->item_category[s->pool[l]] == c) break;
        s->lcat[j] = l < j ? s->lcat[l] : s->nlc++;
    }
    uint32_t nc = s->m < o->n_cands ? s->m : o->n_cands;
    double mean = 0, var = 0;
    for (uint32_t j = 0; j < nc; j++) mean += scores[s->pool[j]];
    mean /= nc;
    for (uint32_t j = 0; j < nc; j++) var += (scores[s->pool[j]] - mean) * (scores[s->pool[j]] - mean);
    s->mean = mean;
    s->sd = nc > 1 ? sqrt(var / (nc - 1)) : 1;
    if (!(s->sd > 1e-12)) s->sd = 1;
    double rms = 0;
    for (uint32_t d = 0; d < w->dim; d++) rms += (double)u0[d] * u0[d];
    rms = sqrt(rms / w->dim);
    for (uint32_t d = 0; d < w->dim; d++) s->taste[d] = u0[d] + o->taste_noise * rms * mp_rng_normal(&s->rng);
    return MP_OK;
}

/* expected clicks of a slate given utilities */
static double exam(uint32_t k) { return 1.0 / log2((double)k + 2.0); }

typedef struct run_ctx {
    const mp_sim_world *w;
    const mp_sim_opts *o;
    shopper *sh;
    uint32_t n;
    uint64_t *exposure;
    mp_sim_cand *cands;
    uint32_t *cand_pool; /* [n_cands] pool index of each candidate */
    double *util;        /* [n_cands] */
    double *sorted;      /* [n_cands] */
    uint32_t *slate;
} run_ctx;

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

int mp_sim_run_users(const mp_sim_world *w, const mp_sim_opts *o, const mp_sim_policy *p, uint64_t seed,
                     const uint32_t *users, uint32_t n, mp_sim_result *res, mp_error *err) {
    memset(res, 0, sizeof *res);
    int rc = mp_sim_opts_check(o, err);
    if (rc) return rc;
    if (!p || !p->choose) return mp_error_set(err, MP_EINVAL, "simulator: the policy has no slate chooser");
    if (n == 0) return mp_error_set(err, MP_EINVAL, "simulator: no shoppers to simulate");
    const uint32_t K = o->slate, N = o->n_cands, dim = w->dim;
    shopper *sh = calloc(n, sizeof *sh);
    uint64_t *exposure = calloc(w->n_items, sizeof(uint64_t));
    float *scores = malloc((size_t)w->n_items * sizeof(float));
    mp_sim_cand *cands = malloc((size_t)N * sizeof *cands);
    uint32_t *cand_pool = malloc((size_t)N * sizeof(uint32_t));
    double *util = malloc((size_t)N * sizeof(double));
    double *sorted = malloc((size_t)N * sizeof(double));
    uint32_t *slate = malloc((size_t)K * sizeof(uint32_t));
    uint8_t *taken = malloc(N);
    uint32_t *churn = calloc(n, sizeof(uint32_t));
    if (!sh || !exposure || !scores || !cands || !cand_pool || !util || !sorted || !slate || !taken || !churn) {
        rc = mp_error_set(err, MP_ENOMEM, "simulator: out of memory for %u shoppers", n);
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (users[i] >= w->n_users) {
            rc = mp_error_set(err, MP_EINVAL, "simulator: shopper %u out of range (%u shoppers)", users[i],
                              w->n_users);
            goto done;
        }
        if ((rc = shopper_init(&sh[i], w, o, users[i], seed, scores, err))) goto done;
    }
    uint64_t max_exp = 0;
    mp_rng prng;
    mp_rng_seed(&prng, mix64(seed ^ 0x5eed5eed5eedULL));
    const double dec_bore = pow(0.5, 1.0 / o->bore_half_life), dec_sat = pow(0.5, 1.0 / o->sat_half_life);
    const double dec_f3 = pow(0.5, 1.0 / 3.0), dec_f5 = pow(0.5, 1.0 / 5.0);
    for (uint32_t day = 0; day < o->days; day++) {
        for (uint32_t si = 0; si < n; si++) {
            shopper *s = &sh[si];
            if (!s->active) continue;
            if (day > 0) {
                for (uint32_t j = 0; j < s->m; j++) {
                    s->imp_true[j] *= dec_bore;
                    s->imp_feat[j] *= dec_f3;
                    s->clk_feat[j] *= dec_f3;
                }
                for (uint32_t c = 0; c < s->nlc; c++) {
                    s->cat_true[c] *= dec_bore;
                    s->cat_feat[c] *= dec_f3;
                    s->sat_true[c] *= dec_sat;
                    s->sat_feat[c] *= dec_f5;
                }
                /* interest drift */
                const float *u0 = w->user_vecs + (size_t)s->user * dim;
                double rms = 0;
                for (uint32_t d = 0; d < dim; d++) rms += (double)u0[d] * u0[d];
                rms = sqrt(rms / dim);
                for (uint32_t d = 0; d < dim; d++) s->taste[d] += o->drift * rms * mp_rng_normal(&s->rng);
            }
            mp_sim_state st = {s->user, day, day * 86400.0 + 43200.0};
            int visited = mp_rng_uniform(&s->rng) < o->visit_prob;
            double reward = 0;
            if (visited) {
                /* candidates: the first N pool items not purchased */
                uint32_t nc = 0;
                for (uint32_t j = 0; j < s->m && nc < N; j++) {
                    if (s->purchased[j]) continue;
                    uint32_t it = s->pool[j];
                    const float *v = w->item_vecs + (size_t)it * dim;
                    double fitted = 0, truth = 0;
                    const float *u0 = w->user_vecs + (size_t)s->user * dim;
                    for (uint32_t d = 0; d < dim; d++) {
                        fitted += (double)u0[d] * v[d];
                        truth += s->taste[d] * v[d];
                    }
                    uint32_t lc = s->lcat[j];
                    mp_sim_cand *c = &cands[nc];
                    c->item = it;
                    c->category = w->item_category[it];
                    c->score = fitted;
                    c->popularity = w->item_pop[it];
                    c->f[0] = (float)((fitted - s->mean) / s->sd);
                    c->f[1] = (float)s->imp_feat[j];
                    c->f[2] = (float)(s->cat_feat[lc] / K);
                    c->f[3] = s->last_shown[j] < -1e8 ? 1.0f : 0.0f;
                    c->f[4] = w->pop_feat[it];
                    c->f[5] = (float)s->sat_feat[lc];
                    c->f[6] = (float)s->clk_feat[j];
                    c->f[7] = max_exp ? (float)(log1p((double)exposure[it]) / log1p((double)max_exp)) : 0.0f;
                    util[nc] = o->rel_weight * (truth - s->mean) / s->sd - o->bore_item * s->imp_true[j] -
                               o->bore_cat * s->cat_true[lc] - o->sat_weight * s->sat_true[lc];
                    cand_pool[nc] = j;
                    nc++;
                }
                uint32_t k = K < nc ? K : nc;
                if (k == 0) {
                    visited = 0;
                } else {
                    if ((rc = p->choose(p->ctx, &st, cands, nc, k, &prng, slate, err))) goto done;
                    memset(taken, 0, nc);
                    for (uint32_t q = 0; q < k; q++) {
                        if (slate[q] >= nc || taken[slate[q]]) {
                            rc = mp_error_set(err, MP_EINVAL, "simulator: the policy chose index %u twice or out of "
                                              "range (%u candidates)", slate[q], nc);
                            goto done;
                        }
                        taken[slate[q]] = 1;
                    }
                    /* regret against the myopic oracle */
                    memcpy(sorted, util, nc * sizeof(double));
                    qsort(sorted, nc, sizeof(double), cmp_desc);
                    double best = 0, got = 0, sat_sum = 0, repeated = 0;
                    for (uint32_t q = 0; q < k; q++) {
                        best += exam(q) * sigm(sorted[q] + o->click_bias);
                        got += exam(q) * sigm(util[slate[q]] + o->click_bias);
                    }
                    res->regret += best - got;
                    uint32_t clicks = 0, buys = 0, novel = 0, first = 0;
                    int clicked[256], bought[256];
                    for (uint32_t q = 0; q < k; q++) {
                        uint32_t ci = slate[q], j = cand_pool[ci];
                        double a = util[ci];
                        sat_sum += sigm(a);
                        if (s->last_shown[j] >= (double)day - o->rep_window) repeated += 1;
                        if (s->last_shown[j] < -1e8) novel++;
                        int c = mp_rng_uniform(&s->rng) < exam(q) * sigm(a + o->click_bias);
                        int b = c && mp_rng_uniform(&s->rng) < sigm(a + o->buy_bias);
                        clicked[q] = c;
                        bought[q] = b;
                        clicks += (uint32_t)c;
                        buys += (uint32_t)b;
                    }
                    /* the shopper's memory of this session */
                    for (uint32_t q = 0; q < k; q++) {
                        uint32_t ci = slate[q], j = cand_pool[ci], lc = s->lcat[j];
                        s->imp_true[j] += 1;
                        s->imp_feat[j] += 1;
                        s->cat_true[lc] += 1;
                        s->cat_feat[lc] += 1;
                        s->last_shown[j] = day;
                        if (exposure[cands[ci].item] == 0) first++;
                        if (++exposure[cands[ci].item] > max_exp) max_exp = exposure[cands[ci].item];
                        int c = clicked[q], b = bought[q];
                        if (c) s->clk_feat[j] += 1;
                        if (b) {
                            s->purchased[j] = 1;
                            s->sat_true[lc] += 1;
                            s->sat_feat[lc] += 1;
                        }
                        if (p->feedback && (rc = p->feedback(p->ctx, &st, &cands[ci], q, c, b, err))) goto done;
                    }
                    s->dis = o->leak * s->dis + o->irr_weight * (1.0 - sat_sum / k) + o->rep_weight * repeated / k -
                             o->click_relief * clicks - o->buy_relief * buys;
                    if (s->dis < 0) s->dis = 0;
                    res->clicks += clicks;
                    res->purchases += buys;
                    res->sessions++;
                    res->impressions += k;
                    reward += buys + o->click_reward * clicks + o->novel_reward * novel + o->cover_reward * first;
                }
            }
            if (!visited) s->dis *= o->leak;
            double h = o->churn_max * sigm(o->churn_slope * (s->dis - o->churn_mid));
            int churned = mp_rng_uniform(&s->rng) < h;
            if (churned) {
                s->active = 0;
                s->churn_day = day + 1;
                churn[si] = day + 1;
            } else {
                reward += o->stay_reward;
            }
            res->objective += reward;
            if (p->day_end) p->day_end(p->ctx, s->user, day, visited, reward, churned);
        }
    }
    res->users = n;
    res->days = o->days;
    res->retention7 = mp_sim_retention(churn, n, o->days < 7 ? o->days : 7);
    res->retention30 = mp_sim_retention(churn, n, o->days < 30 ? o->days : 30);
    res->coverage = mp_sim_coverage(exposure, w->n_items);
    {
        double *ex = malloc((size_t)w->n_items * sizeof(double));
        if (!ex) {
            rc = mp_error_set(err, MP_ENOMEM, "simulator: out of memory");
            goto done;
        }
        for (uint32_t i = 0; i < w->n_items; i++) ex[i] = (double)exposure[i];
        res->gini = mp_sim_gini(ex, w->n_items);
        free(ex);
    }
done:
    if (sh)
        for (uint32_t i = 0; i < n; i++) shopper_free(&sh[i]);
    free(sh);
    free(exposure);
    free(scores);
    free(cands);
    free(cand_pool);
    free(util);
    free(sorted);
    free(slate);
    free(taken);
    free(churn);
    return rc;
}

int mp_sim_run(const mp_sim_world *w, const mp_sim_opts *o, const mp_sim_policy *p, uint64_t seed,
               mp_sim_result *res, mp_error *err) {
    uint32_t n = o->max_users && o->max_users < w->n_users ? o->max_users : w->n_users;
    uint32_t *users = malloc((size_t)n * sizeof(uint32_t));
    if (!users) return mp_error_set(err, MP_ENOMEM, "simulator: out of memory");
    for (uint32_t i = 0; i < n; i++) users[i] = i;
    int rc = mp_sim_run_users(w, o, p, seed, users, n, res, err);
    free(users);
    return rc;
}
