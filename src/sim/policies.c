/* src/sim/policies.c: slate choosers for the simulator: greedy, the bandit.h policies (with optional shopper
 * protection) and the REINFORCE-trained softmax re-ranker. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim_internal.h"

/* ---------------- greedy ---------------- */

/* top k of key[n] by descending value, ties by lower index (selection: n is small) */
static void topk_desc(const double *key, size_t n, size_t k, uint32_t *out, uint8_t *taken) {
    memset(taken, 0, n);
    for (size_t q = 0; q < k; q++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < n; i++)
            if (!taken[i] && (best == SIZE_MAX || key[i] > key[best])) best = i;
        taken[best] = 1;
        out[q] = (uint32_t)best;
    }
}

static int greedy_choose(void *ctx, const mp_sim_state *st, const mp_sim_cand *cands, size_t n, size_t k,
                         mp_rng *rng, uint32_t *out, mp_error *err) {
    double *key = malloc(n * sizeof(double));
    uint8_t *taken = malloc(n);
    if (!key || !taken) {
        free(key);
        free(taken);
        return mp_error_set(err, MP_ENOMEM, "greedy policy: out of memory");
    }
    for (size_t i = 0; i < n; i++) key[i] = cands[i].score;
    topk_desc(key, n, k, out, taken);
    free(key);
    free(taken);
    return MP_OK;
}

mp_sim_policy mp_sim_policy_greedy(void) {
    mp_sim_policy p = {greedy_choose, NULL, NULL, NULL};
    return p;
}

/* ---------------- bandits ---------------- */

struct mp_sim_bandit {
    mp_bandit *b;
    int protect;
    mp_protect_opts popts;
    mp_shopper **shoppers; /* [n_users], created on first use */
    uint32_t n_users;
    mp_bandit_cand *bc, *pc;
    mp_bandit_pick *picks;
    uint32_t *map;
    size_t cap, kcap;
};

void mp_sim_bandit_destroy(mp_sim_bandit *b) {
    if (!b) return;
    mp_bandit_destroy(b->b);
    if (b->shoppers)
        for (uint32_t i = 0; i < b->n_users; i++) mp_shopper_destroy(b->shoppers[i]);
    free(b->shoppers);
    free(b->bc);
    free(b->pc);
    free(b->picks);
    free(b->map);
    free(b);
}

int mp_sim_bandit_create(const char *spec, const mp_protect_opts *protect, uint32_t n_users, mp_sim_bandit **out,
                         mp_error *err) {
    *out = NULL;
    mp_bandit_opts bo;
    mp_bandit_opts_default(&bo);
    bo.dim = MP_SIM_NFEAT;
    bo.intercept = 1;
    bo.draws = 0; /* the simulator needs no TS propensities */
    int rc = mp_bandit_parse(spec, &bo, err);
    if (rc) return rc;
    bo.dim = MP_SIM_NFEAT; /* the features are fixed by the simulator */
    mp_sim_bandit *b = calloc(1, sizeof *b);
    if (!b) return mp_error_set(err, MP_ENOMEM, "simulator bandit: out of memory");
    if ((rc = mp_bandit_create(&bo, &b->b, err))) {
        free(b);
        return rc;
    }
    if (protect) {
        b->protect = 1;
        b->popts = *protect;
        b->n_users = n_users;
        b->shoppers = calloc(n_users ? n_users : 1, sizeof(mp_shopper *));
        if (!b->shoppers) {
            mp_sim_bandit_destroy(b);
            return mp_error_set(err, MP_ENOMEM, "simulator bandit: out of memory");
        }
    }
    *out = b;
    return MP_OK;
}

static int bandit_grow(mp_sim_bandit *b, size_t n, size_t k, mp_error *err) {
    if (n > b->cap) {
        free(b->bc);
        free(b->pc);
        free(b->map);
        b->bc = malloc(n * sizeof *b->bc);
        b->pc = malloc(n * sizeof *b->pc);
        b->map = malloc(n * sizeof *b->map);
        b->cap = b->bc && b->pc && b->map ? n : 0;
        if (!b->cap) return mp_error_set(err, MP_ENOMEM, "simulator bandit: out of memory");
    }
    if (k > b->kcap) {
        free(b->picks);
        b->picks = malloc(k * sizeof *b->picks);
        b->kcap = b->picks ? k : 0;
        if (!b->kcap) return mp_error_set(err, MP_ENOMEM, "simulator bandit: out of memory");
    }
    return MP_OK;
}

static int shopper_of(mp_sim_bandit *b, uint32_t user, mp_shopper **s, mp_error *err) {
    *s = NULL;
    if (!b->protect) return MP_OK;
    if (user >= b->n_users)
        return mp_error_set(err, MP_EINVAL, "simulator bandit: shopper %u beyond the %u it was created for", user,
                            b->n_users);
    if (!b->shoppers[user]) {
        int rc = mp_shopper_create(512, 256, &b->shoppers[user], err);
        if (rc) return rc;
    }
    *s = b->shoppers[user];
    return MP_OK;
}

static int bandit_choose(void *ctx, const mp_sim_state *st, const mp_sim_cand *cands, size_t n, size_t k,
                         mp_rng *rng, uint32_t *out, mp_error *err) {
    mp_sim_bandit *b = ctx;
    int rc = bandit_grow(b, n, k, err);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        mp_bandit_cand *c = &b->bc[i];
        memset(c, 0, sizeof *c);
        c->item = (uint32_t)i; /* index: mapped back below */
        c->score = cands[i].f[0];
        c->x = cands[i].f;
        c->category = cands[i].category;
        c->price = NAN;
        c->popularity = cands[i].popularity;
    }
    const mp_bandit_cand *use = b->bc;
    size_t m = n;
    if (b->protect) {
        mp_shopper *s;
        if ((rc = shopper_of(b, st->user, &s, err))) return rc;
        /* the shopper state is keyed by catalog item: give the protection pass the catalog ids */
        for (size_t i = 0; i < n; i++) b->bc[i].item = cands[i].item;
        if ((rc = mp_protect_rerank(&b->popts, s, b->bc, n, MP_SIM_NFEAT, st->now, b->pc, &m, NULL, err)))
            return rc;
        for (size_t i = 0; i < m; i++) {
            size_t j = 0;
            while (j < n && cands[j].item != b->pc[i].item) j++;
            b->map[i] = (uint32_t)j;
        }
        use = b->pc;
    } else {
        for (size_t i = 0; i < n; i++) b->map[i] = (uint32_t)i;
    }
    size_t kk = k < m ? k : m;
    if (kk > 0 && (rc = mp_bandit_select(b->b, NULL, use, m, kk, b->picks, err))) return rc;
    uint8_t *taken = calloc(n, 1);
    if (!taken) return mp_error_set(err, MP_ENOMEM, "simulator bandit: out of memory");
    for (size_t q = 0; q < kk; q++) {
        out[q] = b->map[b->picks[q].index];
        taken[out[q]] = 1;
    }
    /* caps removed too many: fill up with the best remaining fitted scores */
    for (size_t q = kk; q < k; q++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < n; i++)
            if (!taken[i] && (best == SIZE_MAX || cands[i].score > cands[best].score)) best = i;
        out[q] = (uint32_t)best;
        taken[best] = 1;
    }
    free(taken);
    return MP_OK;
}

static int bandit_feedback(void *ctx, const mp_sim_state *st, const mp_sim_cand *cand, uint32_t position,
                           int clicked, int purchased, mp_error *err) {
    mp_sim_bandit *b = ctx;
    char label[16];
    snprintf(label, sizeof label, "%u", cand->item);
    int rc = mp_bandit_update(b->b, label, cand->f, cand->f[0], clicked ? 1.0 : 0.0, err);
    if (rc) return rc;
    if (b->protect) {
        mp_shopper *s;
        if ((rc = shopper_of(b, st->user, &s, err))) return rc;
        mp_shopper_record(s, MP_SHOP_IMPRESSION, cand->item, cand->category, st->now);
        if (clicked) mp_shopper_record(s, MP_SHOP_CLICK, cand->item, cand->category, st->now);
        if (purchased) mp_shopper_record(s, MP_SHOP_PURCHASE, cand->item, cand->category, st->now);
    }
    return MP_OK;
}

mp_sim_policy mp_sim_bandit_policy(mp_sim_bandit *b) {
    mp_sim_policy p = {bandit_choose, bandit_feedback, NULL, b};
    return p;
}

/* ---------------- the REINFORCE re-ranker ---------------- */

struct mp_sim_rl {
    mp_sim_rl_opts o;
    double theta[MP_SIM_NFEAT];
    double m1[MP_SIM_NFEAT], m2[MP_SIM_NFEAT];
    uint64_t t;
    int training;
    /* trajectory of the current batch: per (slot, day) */
    uint32_t *slot_of;  /* [world users] -> batch slot (UINT32_MAX: none) */
    uint32_t n_slots, days;
    double *grad;       /* [slots * days * NFEAT] score-function gradient of the day's slate */
    /* off-policy with item_credit: per shown item (kmax per day) its term and own reward */
    uint32_t kmax;
    double *igrad;      /* [slots * days * kmax * NFEAT] */
    double *irew;       /* [slots * days * kmax] */
    uint8_t *ik;        /* [slots * days] items shown that day */
    double click_reward; /* of the simulator options being trained on */
    double gsum[MP_SIM_NFEAT]; /* the epoch's summed gradient */
    double *reward;     /* [slots * days] */
    uint8_t *alive;     /* [slots * days] 1 if the shopper was active at the start of the day */
    double *logit, *prob;
    uint8_t *taken;
    size_t cap;
};

void mp_sim_rl_opts_default(mp_sim_rl_opts *o) {
    memset(o, 0, sizeof *o);
    o->epochs = 60;
    o->batch_users = 300;
    o->lr = 0.1;
    o->gamma = 0.95;
    o->seed = 1;
    o->explore_eval = 1;
    o->theta0 = 2.0;
    o->offpolicy = 0;
    o->behavior_tau = 0.5;
    o->is_cap = 10.0;
    o->topk_correction = 1;
    o->per_position = 0;
    o->item_credit = 0;
}

int mp_sim_rl_parse_behavior(mp_sim_rl_opts *o, const char *spec, mp_error *err) {
    if (!spec) return mp_error_set(err, MP_EINVAL, "RL behaviour policy: missing spec (uniform or softmax:tau=X)");
    if (!strcmp(spec, "uniform")) {
        o->behavior_tau = 0;
        return MP_OK;
    }
    if (!strncmp(spec, "softmax:tau=", 12)) {
        char *end = NULL;
        double t = strtod(spec + 12, &end);
        if (end != spec + 12 && !*end && isfinite(t) && t > 0) {
            o->behavior_tau = t;
            return MP_OK;
        }
    }
    return mp_error_set(err, MP_EINVAL, "RL behaviour policy `%s`: expected `uniform` or `softmax:tau=X` with X > 0",
                        spec);
}

double mp_sim_topk_multiplier(double pi, uint32_t k) {
    if (k == 0) return 0;
    return (double)k * pow(1.0 - pi, (double)(k - 1));
}

double mp_sim_is_weight(double pi, double beta, double cap) {
    if (!(beta > 0)) return cap > 0 ? cap : INFINITY;
    double w = pi / beta;
    return cap > 0 && w > cap ? cap : w;
}

void mp_sim_offpolicy_grad(const mp_sim_rl_opts *o, const double *theta, const mp_sim_cand *cands, size_t n,
                           const uint32_t *shown, const double *beta, size_t k, double *g, double *g_items,
                           double *pi_out) {
    for (int f = 0; f < MP_SIM_NFEAT; f++) g[f] = 0;
    if (g_items) memset(g_items, 0, k * MP_SIM_NFEAT * sizeof(double));
    if (n == 0 || k == 0) return;
    if (o->per_position) {
        /* position q: softmax over the candidates not shown at positions < q */
        for (size_t q = 0; q < k; q++) {
            double mx = -INFINITY, z = 0, ef[MP_SIM_NFEAT] = {0}, la = 0;
            for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < n; i++) {
                    size_t j = 0;
                    while (j < q && shown[j] != i) j++;
                    if (j < q) continue;
                    double l = 0;
                    for (int f = 0; f < MP_SIM_NFEAT; f++) l += theta[f] * cands[i].f[f];
                    if (pass == 0) {
                        if (l > mx) mx = l;
                        continue;
                    }
                    double e = exp(l - mx);
                    z += e;
                    for (int f = 0; f < MP_SIM_NFEAT; f++) ef[f] += e * cands[i].f[f];
                    if (i == shown[q]) la = l;
                }
            const mp_sim_cand *c = &cands[shown[q]];
            double pi = exp(la - mx) / z;
            if (pi_out) pi_out[q] = pi;
            double wt = mp_sim_is_weight(pi, beta[q], o->is_cap);
            if (o->topk_correction) wt *= mp_sim_topk_multiplier(pi, (uint32_t)k);
            if (!isfinite(wt)) continue;
            for (int f = 0; f < MP_SIM_NFEAT; f++) {
                double t = wt * (c->f[f] - ef[f] / z);
                g[f] += t;
                if (g_items) g_items[q * MP_SIM_NFEAT + f] = t;
            }
        }
        return;
    }
    /* softmax over all candidates: max logit, normaliser, E_pi[f] */
    double mx = -INFINITY, z = 0, ef[MP_SIM_NFEAT] = {0};
    for (size_t i = 0; i < n; i++) {
        double l = 0;
        for (int f = 0; f < MP_SIM_NFEAT; f++) l += theta[f] * cands[i].f[f];
        if (l > mx) mx = l;
    }
    for (size_t i = 0; i < n; i++) {
        double l = 0;
        for (int f = 0; f < MP_SIM_NFEAT; f++) l += theta[f] * cands[i].f[f];
        double e = exp(l - mx);
        z += e;
        for (int f = 0; f < MP_SIM_NFEAT; f++) ef[f] += e * cands[i].f[f];
    }
    for (int f = 0; f < MP_SIM_NFEAT; f++) ef[f] /= z;
    for (size_t q = 0; q < k; q++) {
        const mp_sim_cand *c = &cands[shown[q]];
        double l = 0;
        for (int f = 0; f < MP_SIM_NFEAT; f++) l += theta[f] * c->f[f];
        double pi = exp(l - mx) / z;
        if (pi_out) pi_out[q] = pi;
        double wt = mp_sim_is_weight(pi, beta[q], o->is_cap);
        if (o->topk_correction) wt *= mp_sim_topk_multiplier(pi, (uint32_t)k);
        if (!isfinite(wt)) continue; /* uncapped with a zero propensity: no usable term */
        for (int f = 0; f < MP_SIM_NFEAT; f++) {
            double t = wt * (c->f[f] - ef[f]);
            g[f] += t;
            if (g_items) g_items[q * MP_SIM_NFEAT + f] = t;
        }
    }
}

int mp_sim_rl_create(const mp_sim_rl_opts *o, mp_sim_rl **out, mp_error *err) {
    *out = NULL;
    if (!(o->lr > 0) || !(o->gamma >= 0 && o->gamma <= 1))
        return mp_error_set(err, MP_EINVAL, "RL re-ranker: lr must be > 0 and gamma in [0, 1] (got %g, %g)", o->lr,
                            o->gamma);
    if (!isfinite(o->theta0) || !(o->behavior_tau >= 0) || !isfinite(o->behavior_tau) || !(o->is_cap >= 0) ||
        !isfinite(o->is_cap))
        return mp_error_set(err, MP_EINVAL, "RL re-ranker: theta0 must be finite, behavior_tau and is_cap finite and "
                            ">= 0 (got %g, %g, %g)", o->theta0, o->behavior_tau, o->is_cap);
    mp_sim_rl *r = calloc(1, sizeof *r);
    if (!r) return mp_error_set(err, MP_ENOMEM, "RL re-ranker: out of memory");
    r->o = *o;
    r->theta[0] = o->theta0;
    *out = r;
    return MP_OK;
}

static void rl_free_batch(mp_sim_rl *r) {
    free(r->igrad);
    free(r->irew);
    free(r->ik);
    r->igrad = r->irew = NULL;
    r->ik = NULL;
    free(r->slot_of);
    free(r->grad);
    free(r->reward);
    free(r->alive);
    r->slot_of = NULL;
    r->grad = r->reward = NULL;
    r->alive = NULL;
}

void mp_sim_rl_destroy(mp_sim_rl *r) {
    if (!r) return;
    rl_free_batch(r);
    free(r->logit);
    free(r->prob);
    free(r->taken);
    free(r);
}

const double *mp_sim_rl_theta(const mp_sim_rl *r) { return r->theta; }

/* One Plackett-Luce draw among the candidates not taken: prob[i] = exp(logit[i] - mx) (0 for taken ones), *z their
 * sum; returns the index drawn with probability prob / z (the caller marks it taken). */
static size_t pl_draw(const double *logit, const uint8_t *taken, size_t n, double mx, double *prob, double *z,
                      mp_rng *rng) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        prob[i] = taken[i] ? 0 : exp(logit[i] - mx);
        sum += prob[i];
    }
    double u = mp_rng_uniform(rng) * sum, acc = 0;
    size_t pick = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        if (taken[i]) continue;
        acc += prob[i];
        pick = i;
        if (u < acc) break;
    }
    *z = sum;
    return pick;
}

/* Off-policy training: the behaviour policy draws the slate (Plackett-Luce over f_score / tau, or uniform), logs
 * each shown item's single-draw propensity, and the off-policy term of pi_theta is stored for the update. */
static int rl_behavior_choose(mp_sim_rl *r, const mp_sim_state *st, const mp_sim_cand *cands, size_t n, size_t k,
                              mp_rng *rng, uint32_t *out) {
    double tau = r->o.behavior_tau;
    double mx = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        r->logit[i] = tau > 0 ? cands[i].f[0] / tau : 0.0;
        if (r->logit[i] > mx) mx = r->logit[i];
    }
    double z0 = 0;
    for (size_t i = 0; i < n; i++) z0 += exp(r->logit[i] - mx);
    double beta[256];
    int cond = r->o.per_position;
    memset(r->taken, 0, n);
    for (size_t q = 0; q < k; q++) {
        double z;
        size_t pick = pl_draw(r->logit, r->taken, n, mx, r->prob, &z, rng);
        r->taken[pick] = 1;
        out[q] = (uint32_t)pick;
        beta[q] = cond ? r->prob[pick] / z : exp(r->logit[pick] - mx) / z0;
    }
    if (r->slot_of && st->user < UINT32_MAX) {
        uint32_t slot = r->slot_of[st->user];
        if (slot != UINT32_MAX && st->day < r->days) {
            size_t at = (size_t)slot * r->days + st->day;
            double *gi = NULL;
            if (r->igrad && k <= r->kmax) {
                gi = r->igrad + at * r->kmax * MP_SIM_NFEAT;
                r->ik[at] = (uint8_t)k;
            }
            mp_sim_offpolicy_grad(&r->o, r->theta, cands, n, out, beta, k, r->grad + at * MP_SIM_NFEAT, gi, NULL);
        }
    }
    return MP_OK;
}

static int rl_choose(void *ctx, const mp_sim_state *st, const mp_sim_cand *cands, size_t n, size_t k, mp_rng *rng,
                     uint32_t *out, mp_error *err) {
    mp_sim_rl *r = ctx;
    if (n > r->cap) {
        free(r->logit);
        free(r->prob);
        free(r->taken);
        r->logit = malloc(n * sizeof(double));
        r->prob = malloc(n * sizeof(double));
        r->taken = malloc(n);
        r->cap = r->logit && r->prob && r->taken ? n : 0;
        if (!r->cap) return mp_error_set(err, MP_ENOMEM, "RL re-ranker: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        double l = 0;
        for (int f = 0; f < MP_SIM_NFEAT; f++) l += r->theta[f] * cands[i].f[f];
        r->logit[i] = l;
    }
    if (r->training && r->o.offpolicy) return rl_behavior_choose(r, st, cands, n, k, rng, out);
    int sample = r->training || r->o.explore_eval;
    if (!sample) {
        topk_desc(r->logit, n, k, out, r->taken);
        return MP_OK;
    }
    double g[MP_SIM_NFEAT] = {0};
    memset(r->taken, 0, n);
    for (size_t q = 0; q < k; q++) {
        double mx = -INFINITY, z;
        for (size_t i = 0; i < n; i++)
            if (!r->taken[i] && r->logit[i] > mx) mx = r->logit[i];
        size_t pick = pl_draw(r->logit, r->taken, n, mx, r->prob, &z, rng);
        /* d log P(pick) / d theta = f_pick - E_p[f] */
        for (size_t i = 0; i < n; i++) {
            if (r->taken[i]) continue;
            double pi = r->prob[i] / z;
            for (int f = 0; f < MP_SIM_NFEAT; f++) g[f] -= pi * cands[i].f[f];
        }
        for (int f = 0; f < MP_SIM_NFEAT; f++) g[f] += cands[pick].f[f];
        r->taken[pick] = 1;
        out[q] = (uint32_t)pick;
    }
    if (r->training && r->slot_of && st->user < UINT32_MAX) {
        uint32_t slot = r->slot_of[st->user];
        if (slot != UINT32_MAX && st->day < r->days)
            memcpy(r->grad + ((size_t)slot * r->days + st->day) * MP_SIM_NFEAT, g, sizeof g);
    }
    return MP_OK;
}

static void rl_day_end(void *ctx, uint32_t user, uint32_t day, int visited, double reward, int churned) {
    mp_sim_rl *r = ctx;
    if (!r->training || !r->slot_of) return;
    uint32_t slot = r->slot_of[user];
    if (slot == UINT32_MAX || day >= r->days) return;
    r->reward[(size_t)slot * r->days + day] = reward;
    r->alive[(size_t)slot * r->days + day] = 1;
}

/* item_credit: the shown item's own reward (purchase + click_reward * click) */
static int rl_feedback(void *ctx, const mp_sim_state *st, const mp_sim_cand *cand, uint32_t position, int clicked,
                       int purchased, mp_error *err) {
    mp_sim_rl *r = ctx;
    if (!r->training || !r->irew || !r->slot_of) return MP_OK;
    uint32_t slot = r->slot_of[st->user];
    if (slot == UINT32_MAX || st->day >= r->days || position >= r->kmax) return MP_OK;
    r->irew[((size_t)slot * r->days + st->day) * r->kmax + position] =
        (purchased ? 1.0 : 0.0) + r->click_reward * (clicked ? 1.0 : 0.0);
    return MP_OK;
}

mp_sim_policy mp_sim_rl_policy(mp_sim_rl *r) {
    mp_sim_policy p = {rl_choose, rl_feedback, rl_day_end, r};
    return p;
}

/* Per-item credit (off-policy, item_credit): item a shown on day t gets R_a = own_a + (r_t - sum own) / k +
 * gamma * G_{t+1}; baseline: the mean R of the day's shown items over the batch; normalised by their sd. Sums
 * (R_a - b_t) / sd * (term of a) into r->gsum. */
static void rl_item_credit_grad(mp_sim_rl *r, const mp_sim_opts *o, const double *ret, double *base, uint32_t bs) {
    const uint32_t D = o->days, K = r->kmax;
    memset(r->gsum, 0, sizeof r->gsum);
    double var = 0;
    size_t cnt_all = 0;
    for (int pass = 0; pass < 3; pass++) {
        double sd = pass == 2 ? (cnt_all > 1 && var > 0 ? sqrt(var / (double)cnt_all) : 1) : 0;
        if (pass == 2 && !(sd > 1e-12)) sd = 1;
        for (uint32_t d = 0; d < D; d++) {
            double sum = 0;
            size_t c = 0;
            for (uint32_t s = 0; s < bs; s++) {
                size_t at = (size_t)s * D + d;
                uint32_t k = r->ik[at];
                if (!r->alive[at] || k == 0) continue;
                double own = 0;
                for (uint32_t q = 0; q < k; q++) own += r->irew[at * K + q];
                double rest = (r->reward[at] - own) / k, next = d + 1 < D ? r->o.gamma * ret[at + 1] : 0;
                for (uint32_t q = 0; q < k; q++) {
                    double R = r->irew[at * K + q] + rest + next;
                    if (pass == 0) {
                        sum += R;
                        c++;
                    } else if (pass == 1) {
                        var += (R - base[d]) * (R - base[d]);
                        cnt_all++;
                    } else {
                        double a = (R - base[d]) / sd;
                        for (int f = 0; f < MP_SIM_NFEAT; f++) r->gsum[f] += a * r->igrad[(at * K + q) * MP_SIM_NFEAT + f];
                    }
                }
            }
            if (pass == 0) base[d] = c ? sum / c : 0;
        }
    }
}

int mp_sim_rl_train(mp_sim_rl *r, const mp_sim_world *w, const mp_sim_opts *o, double *curve, mp_error *err) {
    int rc = mp_sim_opts_check(o, err);
    if (rc) return rc;
    uint32_t nu = o->max_users && o->max_users < mp_sim_world_users(w) ? o->max_users : mp_sim_world_users(w);
    uint32_t bs = r->o.batch_users && r->o.batch_users < nu ? r->o.batch_users : nu;
    uint32_t *all = malloc((size_t)nu * sizeof(uint32_t));
    rl_free_batch(r);
    r->days = o->days;
    r->n_slots = bs;
    r->slot_of = malloc((size_t)mp_sim_world_users(w) * sizeof(uint32_t));
    r->grad = malloc((size_t)bs * o->days * MP_SIM_NFEAT * sizeof(double));
    r->reward = malloc((size_t)bs * o->days * sizeof(double));
    r->alive = malloc((size_t)bs * o->days);
    double *ret = malloc((size_t)bs * o->days * sizeof(double));
    double *base = malloc((size_t)o->days * sizeof(double));
    if (!all || !r->slot_of || !r->grad || !r->reward || !r->alive || !ret || !base) {
        rc = mp_error_set(err, MP_ENOMEM, "RL re-ranker: out of memory for a batch of %u shoppers", bs);
        goto done;
    }
    int icredit = r->o.offpolicy && r->o.item_credit;
    if (icredit) {
        r->kmax = o->slate;
        r->click_reward = o->click_reward;
        r->igrad = malloc((size_t)bs * o->days * r->kmax * MP_SIM_NFEAT * sizeof(double));
        r->irew = malloc((size_t)bs * o->days * r->kmax * sizeof(double));
        r->ik = malloc((size_t)bs * o->days);
        if (!r->igrad || !r->irew || !r->ik) {
            rc = mp_error_set(err, MP_ENOMEM, "RL re-ranker: out of memory for per-item credit of %u shoppers", bs);
            goto done;
        }
    }
    for (uint32_t i = 0; i < nu; i++) all[i] = i;
    mp_sim_policy pol = mp_sim_rl_policy(r);
    for (uint32_t ep = 0; ep < r->o.epochs; ep++) {
        uint64_t tseed = r->o.seed * 1000003ULL + ep + 1;
        mp_rng rng;
        mp_rng_seed(&rng, tseed ^ 0xa11ce5ULL);
        mp_rng_shuffle_u32(&rng, all, nu);
        for (uint32_t i = 0; i < mp_sim_world_users(w); i++) r->slot_of[i] = UINT32_MAX;
        for (uint32_t i = 0; i < bs; i++) r->slot_of[all[i]] = i;
        memset(r->grad, 0, (size_t)bs * o->days * MP_SIM_NFEAT * sizeof(double));
        memset(r->reward, 0, (size_t)bs * o->days * sizeof(double));
        memset(r->alive, 0, (size_t)bs * o->days);
        if (icredit) {
            memset(r->irew, 0, (size_t)bs * o->days * r->kmax * sizeof(double));
            memset(r->ik, 0, (size_t)bs * o->days);
        }
        mp_sim_result res;
        r->training = 1;
        rc = mp_sim_run_users(w, o, &pol, tseed, all, bs, &res, err);
        r->training = 0;
        if (rc) goto done;
        if (curve) curve[ep] = res.objective / bs;
        /* discounted returns-to-go; baseline: their mean per day over the shoppers active that day */
        for (uint32_t s = 0; s < bs; s++) {
            double g = 0;
            for (uint32_t d = o->days; d-- > 0;) {
                size_t at = (size_t)s * o->days + d;
                g = r->alive[at] ? r->reward[at] + r->o.gamma * g : 0;
                ret[at] = g;
            }
        }
        if (icredit) {
            rl_item_credit_grad(r, o, ret, base, bs);
            goto step;
        }
        double adv_var = 0;
        size_t adv_n = 0;
        for (uint32_t d = 0; d < o->days; d++) {
            double sum = 0;
            size_t c = 0;
            for (uint32_t s = 0; s < bs; s++)
                if (r->alive[(size_t)s * o->days + d]) {
                    sum += ret[(size_t)s * o->days + d];
                    c++;
                }
            base[d] = c ? sum / c : 0;
            for (uint32_t s = 0; s < bs; s++)
                if (r->alive[(size_t)s * o->days + d]) {
                    double a = ret[(size_t)s * o->days + d] - base[d];
                    adv_var += a * a;
                    adv_n++;
                }
        }
        double adv_sd = adv_n > 1 ? sqrt(adv_var / adv_n) : 1;
        if (!(adv_sd > 1e-12)) adv_sd = 1;
        memset(r->gsum, 0, sizeof r->gsum);
        double *grad = r->gsum;
        for (uint32_t s = 0; s < bs; s++)
            for (uint32_t d = 0; d < o->days; d++) {
                size_t at = (size_t)s * o->days + d;
                if (!r->alive[at]) continue;
                double a = (ret[at] - base[d]) / adv_sd;
                for (int f = 0; f < MP_SIM_NFEAT; f++) grad[f] += a * r->grad[at * MP_SIM_NFEAT + f];
            }
    step:
        /* Adam ascent */
        r->t++;
        const double b1 = 0.9, b2 = 0.999;
        for (int f = 0; f < MP_SIM_NFEAT; f++) {
            double gf = r->gsum[f] / bs;
            r->m1[f] = b1 * r->m1[f] + (1 - b1) * gf;
            r->m2[f] = b2 * r->m2[f] + (1 - b2) * gf * gf;
            double mh = r->m1[f] / (1 - pow(b1, (double)r->t)), vh = r->m2[f] / (1 - pow(b2, (double)r->t));
            r->theta[f] += r->o.lr * mh / (sqrt(vh) + 1e-8);
        }
    }
done:
    rl_free_batch(r);
    free(all);
    free(ret);
    free(base);
    return rc;
}
