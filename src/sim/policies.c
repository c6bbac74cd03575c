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
}

int mp_sim_rl_create(const mp_sim_rl_opts *o, mp_sim_rl **out, mp_error *err) {
    *out = NULL;
    if (!(o->lr > 0) || !(o->gamma >= 0 && o->gamma <= 1))
        return mp_error_set(err, MP_EINVAL, "RL re-ranker: lr must be > 0 and gamma in [0, 1] (got %g, %g)", o->lr,
                            o->gamma);
    mp_sim_rl *r = calloc(1, sizeof *r);
    if (!r) return mp_error_set(err, MP_ENOMEM, "RL re-ranker: out of memory");
    r->o = *o;
    r->theta[0] = 2.0;
    *out = r;
    return MP_OK;
}

static void rl_free_batch(mp_sim_rl *r) {
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
    int sample = r->training || r->o.explore_eval;
    if (!sample) {
        topk_desc(r->logit, n, k, out, r->taken);
        return MP_OK;
    }
    double g[MP_SIM_NFEAT] = {0};
    memset(r->taken, 0, n);
    for (size_t q = 0; q < k; q++) {
        double mx = -INFINITY, z = 0;
        for (size_t i = 0; i < n; i++)
            if (!r->taken[i] && r->logit[i] > mx) mx = r->logit[i];
        for (size_t i = 0; i < n; i++) {
            r->prob[i] = r->taken[i] ? 0 : exp(r->logit[i] - mx);
            z += r->prob[i];
        }
        double u = mp_rng_uniform(rng) * z, acc = 0;
        size_t pick = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
            if (r->taken[i]) continue;
            acc += r->prob[i];
            pick = i;
            if (u < acc) break;
        }
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

mp_sim_policy mp_sim_rl_policy(mp_sim_rl *r) {
    mp_sim_policy p = {rl_choose, NULL, rl_day_end, r};
    return p;
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
        double grad[MP_SIM_NFEAT] = {0};
        for (uint32_t s = 0; s < bs; s++)
            for (uint32_t d = 0; d < o->days; d++) {
                size_t at = (size_t)s * o->days + d;
                if (!r->alive[at]) continue;
                double a = (ret[at] - base[d]) / adv_sd;
                for (int f = 0; f < MP_SIM_NFEAT; f++) grad[f] += a * r->grad[at * MP_SIM_NFEAT + f];
            }
        /* Adam ascent */
        r->t++;
        const double b1 = 0.9, b2 = 0.999;
        for (int f = 0; f < MP_SIM_NFEAT; f++) {
            double gf = grad[f] / bs;
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
