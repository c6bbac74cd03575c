/* src/bandit/protect.c: shopper protection (frequency caps, fatigue, novelty, MMR diversity, business rules). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/bandit.h"

#define CAT_NONE 0x3fffffffu

typedef struct shop_ev {
    double t;
    uint32_t item;
    uint32_t cat : 30;
    uint32_t kind : 2;
} shop_ev;

struct mp_shopper {
    shop_ev *ev;
    uint32_t cap, n, head; /* head: next write slot; events are ev[(head - n + i) % cap], oldest first */
    uint32_t *bought;
    uint32_t bcap, bn, bhead;
};

int mp_shopper_create(uint32_t max_events, uint32_t max_purchases, mp_shopper **out, mp_error *err) {
    *out = NULL;
    if (max_events == 0 || max_purchases == 0)
        return mp_error_set(err, MP_EINVAL, "shopper state: max_events and max_purchases must be >= 1");
    mp_shopper *s = calloc(1, sizeof *s);
    if (s) {
        s->ev = calloc(max_events, sizeof(shop_ev));
        s->bought = calloc(max_purchases, sizeof(uint32_t));
    }
    if (!s || !s->ev || !s->bought) {
        mp_shopper_destroy(s);
        return mp_error_set(err, MP_ENOMEM, "shopper state: out of memory");
    }
    s->cap = max_events;
    s->bcap = max_purchases;
    *out = s;
    return MP_OK;
}

void mp_shopper_destroy(mp_shopper *s) {
    if (!s) return;
    free(s->ev);
    free(s->bought);
    free(s);
}

void mp_shopper_record(mp_shopper *s, mp_shop_event kind, uint32_t item, uint32_t category, double t) {
    shop_ev *e = &s->ev[s->head];
    e->t = t;
    e->item = item;
    e->cat = category >= CAT_NONE ? CAT_NONE : category;
    e->kind = (uint32_t)kind & 3u;
    s->head = (s->head + 1) % s->cap;
    if (s->n < s->cap) s->n++;
    if (kind == MP_SHOP_PURCHASE && !mp_shopper_purchased(s, item)) {
        s->bought[s->bhead] = item;
        s->bhead = (s->bhead + 1) % s->bcap;
        if (s->bn < s->bcap) s->bn++;
    }
}

/* The i-th newest event (i = 0: the newest). */
static const shop_ev *newest(const mp_shopper *s, uint32_t i) {
    return &s->ev[(s->head + s->cap - 1 - i) % s->cap];
}

uint32_t mp_shopper_impressions(const mp_shopper *s, uint32_t id, int by_category, double window, double now) {
    uint32_t c = 0;
    if (by_category && id >= CAT_NONE) return 0;
    for (uint32_t i = 0; i < s->n; i++) {
        const shop_ev *e = newest(s, i);
        if (e->kind != MP_SHOP_IMPRESSION || e->t > now || !(now - e->t < window)) continue;
        if (by_category ? e->cat == id : e->item == id) c++;
    }
    return c;
}

double mp_shopper_fatigue(const mp_shopper *s, uint32_t item, double half_life, double now) {
    double f = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        const shop_ev *e = newest(s, i);
        if (e->item != item) continue;
        if (e->kind != MP_SHOP_IMPRESSION) break; /* a click or purchase resets: older impressions do not count */
        double age = now - e->t;
        if (age < 0) age = 0;
        f += half_life > 0 ? exp2(-age / half_life) : 0.0;
    }
    return f;
}

int mp_shopper_purchased(const mp_shopper *s, uint32_t item) {
    for (uint32_t i = 0; i < s->bn; i++)
        if (s->bought[i] == item) return 1;
    return 0;
}

void mp_protect_opts_default(mp_protect_opts *o) {
    memset(o, 0, sizeof *o);
    o->item_window = 86400;
    o->category_window = 86400;
    o->fatigue_half_life = 3600;
    o->mmr_lambda = 1.0;
    o->exclude_purchased = 1;
    o->exclude_out_of_stock = 1;
    o->price_min = NAN;
    o->price_max = NAN;
}

static double cosine(const float *a, const float *b, uint32_t dim, double na, double nb) {
    if (!a || !b || na == 0 || nb == 0) return 0;
    double s = 0;
    for (uint32_t i = 0; i < dim; i++)
        s += (double)a[i] * b[i];
    return s / (na * nb);
}

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x > y ? -1 : x < y;
}

int mp_protect_rerank(const mp_protect_opts *o, const mp_shopper *state, const mp_bandit_cand *cands, size_t n,
                      uint32_t dim, double now, mp_bandit_cand *out, size_t *n_out, mp_protect_stats *stats,
                      mp_error *err) {
    *n_out = 0;
    mp_protect_stats st;
    memset(&st, 0, sizeof st);
    if (!(o->mmr_lambda >= 0 && o->mmr_lambda <= 1))
        return mp_error_set(err, MP_EINVAL, "shopper protection: mmr_lambda must be in [0, 1], got %g", o->mmr_lambda);
    if (o->fatigue_weight != 0 && !(o->fatigue_half_life > 0))
        return mp_error_set(err, MP_EINVAL, "shopper protection: fatigue_half_life must be > 0 s, got %g",
                            o->fatigue_half_life);
    if (!isfinite(o->fatigue_weight) || !isfinite(o->novelty_weight))
        return mp_error_set(err, MP_EINVAL, "shopper protection: fatigue and novelty weights must be finite");
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const mp_bandit_cand *c = &cands[i];
        if (!isfinite(c->score))
            return mp_error_set(err, MP_EINVAL, "shopper protection: candidate %zu (item %u) has a non-finite score", i,
                                c->item);
        if (o->exclude_out_of_stock && c->out_of_stock) {
            st.out_of_stock++;
            continue;
        }
        if (state && o->exclude_purchased && mp_shopper_purchased(state, c->item)) {
            st.purchased++;
            continue;
        }
        if (!isnan(c->price) &&
            ((!isnan(o->price_min) && c->price < o->price_min) || (!isnan(o->price_max) && c->price > o->price_max))) {
            st.price++;
            continue;
        }
        if (state && o->item_cap && mp_shopper_impressions(state, c->item, 0, o->item_window, now) >= o->item_cap) {
            st.item_cap++;
            continue;
        }
        if (state && o->category_cap && c->category != UINT32_MAX &&
            mp_shopper_impressions(state, c->category, 1, o->category_window, now) >= o->category_cap) {
            st.category_cap++;
            continue;
        }
        mp_bandit_cand a = *c;
        if (state && o->fatigue_weight != 0)
            a.score -= o->fatigue_weight * mp_shopper_fatigue(state, c->item, o->fatigue_half_life, now);
        if (o->novelty_weight != 0) {
            double pop = c->popularity > 0 && isfinite(c->popularity) ? c->popularity : 0;
            a.score += o->novelty_weight / log(M_E + pop);
        }
        out[m++] = a;
    }
    if (stats) *stats = st;
    *n_out = m;
    if (o->mmr_lambda >= 1 || m < 2) return MP_OK;

    /* MMR over the kept candidates. */
    size_t kk = o->mmr_k && o->mmr_k < m ? o->mmr_k : m;
    mp_bandit_cand *tmp = malloc(m * sizeof *tmp);
    double *rel = malloc(m * sizeof(double)), *norm = malloc(m * sizeof(double)), *maxsim = malloc(m * sizeof(double));
    double *sorted = malloc(m * sizeof(double));
    unsigned char *used = calloc(m, 1);
    int rc = MP_OK;
    if (!tmp || !rel || !norm || !maxsim || !sorted || !used) {
        rc = mp_error_set(err, MP_ENOMEM, "shopper protection: out of memory for %zu candidates", m);
        goto done;
    }
    double lo = out[0].score, hi = out[0].score;
    for (size_t i = 0; i < m; i++) {
        lo = fmin(lo, out[i].score);
        hi = fmax(hi, out[i].score);
        sorted[i] = out[i].score;
        maxsim[i] = -INFINITY;
        double s = 0;
        if (out[i].x)
            for (uint32_t j = 0; j < dim; j++)
                s += (double)out[i].x[j] * out[i].x[j];
        norm[i] = sqrt(s);
    }
    for (size_t i = 0; i < m; i++)
        rel[i] = hi > lo ? (out[i].score - lo) / (hi - lo) : 1.0;
    qsort(sorted, m, sizeof(double), cmp_desc);
    double lam = o->mmr_lambda;
    for (size_t p = 0; p < kk; p++) {
        size_t best = SIZE_MAX;
        double bv = 0;
        for (size_t i = 0; i < m; i++) {
            if (used[i]) continue;
            double v = lam * rel[i] - (1 - lam) * (p == 0 ? 0.0 : maxsim[i]);
            if (best == SIZE_MAX || v > bv) {
                best = i;
                bv = v;
            }
        }
        used[best] = 1;
        tmp[p] = out[best];
        tmp[p].score = sorted[p];
        for (size_t i = 0; i < m; i++)
            if (!used[i]) maxsim[i] = fmax(maxsim[i], cosine(out[i].x, out[best].x, dim, norm[i], norm[best]));
    }
    /* the rest in relevance order with the remaining scores */
    for (size_t p = kk; p < m; p++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < m; i++)
            if (!used[i] && (best == SIZE_MAX || out[i].score > out[best].score)) best = i;
        used[best] = 1;
        tmp[p] = out[best];
        tmp[p].score = sorted[p];
    }
    memcpy(out, tmp, m * sizeof *tmp);
done:
    free(tmp);
    free(rel);
    free(norm);
    free(maxsim);
    free(sorted);
    free(used);
    return rc;
}
