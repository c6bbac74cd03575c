/* src/models/cf_input.h: private helpers shared by the item-to-item models (itemknn.c, ease.c).
 *
 * Both models see a user as a set of (item, value) pairs, built the same way from training events at fit time
 * and from ctx->history at scoring time, so that what a model was trained on and what it is asked about agree:
 *   binary    value 1 for every item whose events sum to a positive type weight (dislikes can cancel a view)
 *   weighted  value = that sum of event-type weights (purchase 8 > cart 4 > view 1 with the default weights)
 *   rating    value = the latest rating/review value of the pair when it has one, else the type-weight sum
 * Time decay of the training matrix (--half-life-days) is not applied here: these models weight events
 * themselves. At scoring time a history can additionally be weighted by recency: the k-th most recent distinct
 * item gets weight 0.5^(k / recency) (recency > 0, in items). recency=auto picks the half-life at fit time from
 * CF_RECENCY_CANDIDATES by validation NDCG@10 when the training data carries validation events (sequential data
 * such as Beauty wants a short half-life, randomly split ratings want none), and 0 when it has none.
 * Everything here is static: each model file gets its own copy. */
#ifndef MAGPIE_CF_INPUT_H
#define MAGPIE_CF_INPUT_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/item_titles.h"
#include "magpie/dataset.h"
#include "magpie/model.h"
#include "magpie/modelfile.h"
#include "magpie/trainset.h"

typedef enum { CF_X_BINARY = 0, CF_X_WEIGHTED = 1, CF_X_RATING = 2, CF_X_NMODES } cf_xmode;


/* Parameter choices ("input=") in cf_xmode order. */
static const char *const cf_xmode_names[CF_X_NMODES] = {"binary", "weighted", "rating"};

static inline const char *cf_xmode_name(cf_xmode m) { return m < CF_X_NMODES ? cf_xmode_names[m] : "?"; }

#define CF_RECENCY_CANDIDATES {0.0, 1.0, 2.0, 4.0, 8.0}

/* recency=auto: sets *recency (which lives in impl) to the candidate with the best validation NDCG@10 of fn,
 * preferring the earlier candidate on ties; 0 when data has no validation events. */
static inline int cf_pick_recency(const mp_train_data *data, mp_score_fn fn, const void *impl, double *recency,
                                  mp_error *err) {
    static const double cand[] = CF_RECENCY_CANDIDATES;
    *recency = 0;
    if (!data->valid || data->n_valid == 0) return MP_OK;
    double best = -1, best_r = 0;
    for (size_t c = 0; c < sizeof cand / sizeof *cand; c++) {
        double v = 0;
        *recency = cand[c];
        int rc = mp_train_data_valid_ndcg(data, fn, impl, 10, &v, err);
        if (rc == MP_EEMPTY) {
            *recency = 0;
            return MP_OK;
        }
        if (rc) return rc;
        if (v > best + 1e-12) {
            best = v;
            best_r = cand[c];
        }
    }
    *recency = best_r;
    return MP_OK;
}

/* One item of a user as the models see it. */
typedef struct cf_pair {
    uint32_t item;
    float value;      /* the x_ui of the mode (times the recency weight when asked for) */
    int64_t last_ts;  /* latest event on the item */
    uint32_t last;    /* position of that event in the input (ties of ts keep input order) */
    uint8_t type;     /* strongest event type on the item (largest type weight), for "because you <verb>" */
    uint8_t has_rating;
    float rating;     /* latest rating/review value when has_rating */
} cf_pair;

static inline int cf_pair_by_item(const void *a, const void *b) {
    const mp_interaction *x = *(const mp_interaction *const *)a, *y = *(const mp_interaction *const *)b;
    if (x->item != y->item) return x->item < y->item ? -1 : 1;
    return x < y ? -1 : x > y; /* input order within an item */
}

static inline int cf_pair_by_recency(const void *a, const void *b) {
    const cf_pair *x = a, *y = b;
    if (x->last_ts != y->last_ts) return x->last_ts > y->last_ts ? -1 : 1;
    if (x->last != y->last) return x->last > y->last ? -1 : 1;
    return 0;
}

static inline int cf_pair_cmp_item(const void *a, const void *b) {
    const cf_pair *x = a, *y = b;
    return x->item < y->item ? -1 : x->item > y->item;
}

/* Collapses the events ev[0..n) of one user into pairs sorted by item (items >= n_items and pairs whose
 * type-weight sum is not positive are dropped). scratch: [n] pointers; out: [n] pairs. Returns the count.
 * recency > 0 multiplies values by 0.5^(rank / recency), rank 0 = the most recently touched item. */
static inline size_t cf_collapse(const mp_interaction *ev, size_t n, cf_xmode mode, const float *type_weight,
                                 uint32_t n_items, double recency, const mp_interaction **scratch, cf_pair *out) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (ev[i].item < n_items && ev[i].type < MP_EV_NTYPES) scratch[m++] = &ev[i];
    qsort(scratch, m, sizeof *scratch, cf_pair_by_item);
    size_t k = 0;
    for (size_t a = 0; a < m;) {
        size_t b = a;
        double sum = 0;
        cf_pair p = {.item = scratch[a]->item, .last_ts = INT64_MIN};
        float best_w = -INFINITY;
        for (; b < m && scratch[b]->item == p.item; b++) {
            const mp_interaction *e = scratch[b];
            float w = type_weight[e->type];
            sum += w;
            if (w > best_w) {
                best_w = w;
                p.type = e->type;
            }
            uint32_t pos = (uint32_t)(e - ev);
            if (e->ts > p.last_ts || (e->ts == p.last_ts && pos >= p.last)) {
                p.last_ts = e->ts;
                p.last = pos;
            }
            if (e->has_value && isfinite(e->value) && (e->type == MP_EV_RATING || e->type == MP_EV_REVIEW)) {
                p.has_rating = 1;
                p.rating = e->value; /* events of an item are in input (time) order: the last one wins */
            }
        }
        a = b;
        if (!(sum > 0)) continue;
        p.value = mode == CF_X_BINARY ? 1.0f : mode == CF_X_WEIGHTED ? (float)sum : p.has_rating ? p.rating : (float)sum;
        out[k++] = p;
    }
    if (recency > 0 && k > 1) {
        qsort(out, k, sizeof *out, cf_pair_by_recency);
        for (size_t r = 0; r < k; r++) out[r].value *= (float)exp2(-(double)r / recency);
        qsort(out, k, sizeof *out, cf_pair_cmp_item);
    }
    return k;
}

/* A user's history collapsed into freshly malloc'ed pairs (*out, caller frees; NULL when empty). */
static inline int cf_history_pairs(const mp_user_ctx *ctx, cf_xmode mode, const float *type_weight, uint32_t n_items,
                                   double recency, cf_pair **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    if (!ctx || !ctx->history || ctx->n_history == 0) return MP_OK;
    const mp_interaction **scratch = malloc(ctx->n_history * sizeof *scratch);
    cf_pair *pairs = malloc(ctx->n_history * sizeof *pairs);
    if (!scratch || !pairs) {
        free(scratch);
        free(pairs);
        return MP_ENOMEM;
    }
    *n_out = cf_collapse(ctx->history, ctx->n_history, mode, type_weight, n_items, recency, scratch, pairs);
    free(scratch);
    if (*n_out == 0) free(pairs);
    else *out = pairs;
    return MP_OK;
}

/* The user x item matrix X of the mode from data->events (sorted by user). *x is caller-owned (mp_csr_free). */
static inline int cf_build_x(mp_csr *x, const mp_train_data *data, cf_xmode mode, const float *type_weight,
                             mp_error *err) {
    memset(x, 0, sizeof *x);
    size_t n = data->n_events, longest = 0;
    for (size_t a = 0; a < n;) {
        size_t b = a;
        while (b < n && data->events[b].user == data->events[a].user) b++;
        if (b - a > longest) longest = b - a;
        if (a > 0 && data->events[a].user < data->events[a - 1].user)
            return mp_error_set(err, MP_EINVAL, "training events are not sorted by user (event %zu)", a);
        a = b;
    }
    x->n_rows = data->n_users;
    x->n_cols = data->n_items;
    x->ptr = calloc((size_t)data->n_users + 1, sizeof *x->ptr);
    x->idx = malloc((n ? n : 1) * sizeof *x->idx);
    x->val = malloc((n ? n : 1) * sizeof *x->val);
    const mp_interaction **scratch = malloc((longest ? longest : 1) * sizeof *scratch);
    cf_pair *pairs = malloc((longest ? longest : 1) * sizeof *pairs);
    if (!x->ptr || !x->idx || !x->val || !scratch || !pairs) {
        free(scratch);
        free(pairs);
        mp_csr_free(x);
        return mp_error_set(err, MP_ENOMEM, "out of memory building the %u x %u training matrix", data->n_users,
                            data->n_items);
    }
    uint64_t nnz = 0;
    uint32_t prev_user = 0;
    for (size_t a = 0; a < n;) {
        uint32_t u = data->events[a].user;
        size_t b = a;
        while (b < n && data->events[b].user == u) b++;
        if (u >= data->n_users) {
            free(scratch);
            free(pairs);
            mp_csr_free(x);
            return mp_error_set(err, MP_EINVAL, "training event %zu has user %u, but there are only %u users", a, u,
                                data->n_users);
        }
        for (uint32_t r = prev_user; r <= u; r++) x->ptr[r] = nnz;
        size_t k = cf_collapse(data->events + a, b - a, mode, type_weight, data->n_items, 0, scratch, pairs);
        for (size_t i = 0; i < k; i++) {
            x->idx[nnz] = pairs[i].item;
            x->val[nnz] = pairs[i].value;
            nnz++;
        }
        prev_user = u + 1;
        a = b;
    }
    for (uint32_t r = prev_user; r <= data->n_users; r++) x->ptr[r] = nnz;
    free(scratch);
    free(pairs);
    return MP_OK;
}

/* Type weights of the training weighting (defaults when data has none). */
static inline void cf_type_weights(const mp_train_data *data, float *tw) {
    for (int t = 0; t < MP_EV_NTYPES; t++)
        tw[t] = data->weighting ? data->weighting->type_weight[t] : mp_event_type_default_weight(t);
}

/* "because you bought Lipstick Red": the reason an item-to-item model gives, from the contributing history pair. */
static inline void cf_because(char *buf, size_t cap, const cf_pair *p, char *const *titles) {
    char name[160];
    if (titles && titles[p->item]) snprintf(name, sizeof name, "%s", titles[p->item]);
    else snprintf(name, sizeof name, "item %u", p->item);
    switch (p->type) {
    case MP_EV_VIEW: snprintf(buf, cap, "because you viewed %s", name); break;
    case MP_EV_CLICK: snprintf(buf, cap, "because you clicked %s", name); break;
    case MP_EV_CART: snprintf(buf, cap, "because you added %s to your cart", name); break;
    case MP_EV_FAV: snprintf(buf, cap, "because you saved %s", name); break;
    case MP_EV_PURCHASE: snprintf(buf, cap, "because you bought %s", name); break;
    case MP_EV_REVIEW: snprintf(buf, cap, "because you reviewed %s", name); break;
    case MP_EV_RATING:
        if (p->has_rating) snprintf(buf, cap, "because you rated %s %g", name, (double)p->rating);
        else snprintf(buf, cap, "because you rated %s", name);
        break;
    default: snprintf(buf, cap, "because of %s in your history", name); break;
    }
}

/* cf_because with the title in curly quotes ("because you bought ‘Rose Hand Cream’"), for explanations that name
 * items the way search results and the other models do. */
static inline void cf_because_quoted(char *buf, size_t cap, const cf_pair *p, char *const *titles) {
    char name[176];
    if (titles && titles[p->item]) snprintf(name, sizeof name, "\xE2\x80\x98%.150s\xE2\x80\x99", titles[p->item]);
    else snprintf(name, sizeof name, "item %u", p->item);
    cf_pair q = *p;
    char *const one[1] = {name};
    q.item = 0; /* print `name` through cf_because's phrasing */
    cf_because(buf, cap, &q, one);
}

#endif
