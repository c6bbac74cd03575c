/* "pop": popularity, optionally time-decayed, weighted by event type and boosted per category.
 *
 * score(item) = sum over training events of w(type) * 0.5^(age / half_life), where w is 1 per event
 * (weighted=0; dislike and return events are not counted) or the event-type weight (weighted=1), and age is
 * measured from data->now. With category_boost > 0 a user's score is multiplied by
 * (1 + boost * share of the user's history in the item's category). The model also keeps per-type event
 * counts of the last window_days (for "popular in Skin Care this week" reasons) and per-item rating sums (for
 * predict_rating on explicit datasets). Everything is O(events) to fit and O(items) to score.
 * forget_user subtracts the events it is given (the user's, as the caller knows them) from every counter. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/model.h"
#include "models/params.h"

#define POP_FILE_VERSION 1
#define POP_SHRINK 5.0         /* pseudo-ratings pulling an item's mean rating towards the global mean */
#define POP_OFTEN_SHARE 0.2    /* a category with at least this share of a user's history is "often browsed" */
#define POP_MAX_NAME 4096      /* longest category name accepted from a model file */
#define SECONDS_PER_DAY 86400.0

typedef struct pop {
    /* parameters */
    double half_life_days; /* > 0: exponential decay of event weight with age; 0: none */
    int weighted;          /* 1: event-type weights; 0: count events */
    double category_boost; /* >= 0 */
    double window_days;    /* span of the "this week" counts; 0 disables them */

    /* fitted state (all arrays owned) */
    uint32_t n_items, n_categories;
    int64_t now;                      /* reference time of `score` (decay is relative to it) */
    float type_weight[MP_EV_NTYPES];  /* weight per event type used at fit (kept for update) */
    double *score;                    /* [n_items] popularity */
    uint32_t *item_cat;               /* [n_items] category index < n_categories; 0 = none */
    char **cat_names;                 /* [n_categories] full paths, entries may be NULL */
    uint32_t *window;                 /* [n_items * MP_EV_NTYPES] events per type in the last window_days */
    double *rating_sum;               /* [n_items] sum of rating values */
    uint32_t *rating_n;               /* [n_items] number of rating values */
    double rating_total;              /* sum over all items */
    uint64_t n_ratings;               /* 0: predict_rating unsupported */
    uint32_t *cat_size;               /* [n_categories] items per category (derived) */
    uint32_t *window_tot;             /* [n_items] sum of `window` over types (derived; ranks for reasons) */
} pop;

/* The parameters are pop's first fields: the descriptors' offsets are into pop itself. */
static const mp_param_info pop_params[] = {
    MP_P_REAL("half_life_days", pop, half_life_days, "0", 0, INFINITY,
              "half-life of an event's weight in days (0: no time decay)", MP_TUNED_CHOICES("0|7|30|90|365")),
    MP_P_BOOL("weighted", pop, weighted, "0", "1: sum event-type weights (purchase > cart > view); 0: count events",
              MP_TUNED_CHOICES(NULL)),
    MP_P_REAL("category_boost", pop, category_boost, "0", 0, INFINITY,
              "multiply scores by (1 + boost * share of the user's history in the item's category)",
              MP_TUNED_LINEAR(0, 2)),
    MP_P_REAL("window_days", pop, window_days, "7", 0, INFINITY,
              "span in days of the recent counts used in reasons (\"popular ... this week\")"),
    {NULL},
};

static void pop_release(void *impl) {
    pop *p = impl;
    free(p->score);
    free(p->item_cat);
    if (p->cat_names)
        for (uint32_t c = 0; c < p->n_categories; c++) free(p->cat_names[c]);
    free(p->cat_names);
    free(p->window);
    free(p->rating_sum);
    free(p->rating_n);
    free(p->cat_size);
    free(p->window_tot);
    p->window_tot = NULL;
    p->score = NULL;
    p->item_cat = NULL;
    p->cat_names = NULL;
    p->window = NULL;
    p->rating_sum = NULL;
    p->rating_n = NULL;
    p->cat_size = NULL;
    p->n_items = p->n_categories = 0;
    p->n_ratings = 0;
    p->rating_total = 0;
}

/* Weight of one event before decay. */
static double event_weight(const pop *p, uint8_t type) {
    if (type >= MP_EV_NTYPES) return 0;
    if (p->weighted) return p->type_weight[type];
    return (type == MP_EV_DISLIKE || type == MP_EV_RETURN) ? 0.0 : 1.0;
}

static double decay(const pop *p, int64_t ts) {
    if (p->half_life_days <= 0) return 1.0;
    double age = (double)(p->now - ts);
    if (age <= 0) return 1.0;
    return exp2(-age / (p->half_life_days * SECONDS_PER_DAY));
}

static int in_window(const pop *p, int64_t ts) {
    if (p->window_days <= 0) return 0;
    double age = (double)(p->now - ts);
    return age >= 0 && age < p->window_days * SECONDS_PER_DAY;
}

static int is_rating(const mp_interaction *e) {
    return e->has_value && (e->type == MP_EV_RATING || e->type == MP_EV_REVIEW) && isfinite(e->value);
}

/* Adds one event to the counters (item < n_items). */
static void add_event(pop *p, const mp_interaction *e) {
    p->score[e->item] += event_weight(p, e->type) * decay(p, e->ts);
    if (e->type < MP_EV_NTYPES && in_window(p, e->ts)) {
        p->window[(size_t)e->item * MP_EV_NTYPES + e->type]++;
        if (p->window_tot) p->window_tot[e->item]++;
    }
    if (is_rating(e)) {
        p->rating_sum[e->item] += e->value;
        p->rating_n[e->item]++;
        p->rating_total += e->value;
        p->n_ratings++;
    }
}

/* Takes one event back out of the counters (the inverse of add_event, clamped at zero against rounding and events
 * the model never counted). */
static void remove_event(pop *p, const mp_interaction *e) {
    double s = p->score[e->item] - event_weight(p, e->type) * decay(p, e->ts);
    p->score[e->item] = s > 0 ? s : 0;
    if (e->type < MP_EV_NTYPES && in_window(p, e->ts)) {
        uint32_t *w = &p->window[(size_t)e->item * MP_EV_NTYPES + e->type];
        if (*w > 0) {
            (*w)--;
            if (p->window_tot && p->window_tot[e->item] > 0) p->window_tot[e->item]--;
        }
    }
    if (is_rating(e) && p->rating_n[e->item] > 0) {
        p->rating_sum[e->item] -= e->value;
        p->rating_n[e->item]--;
        p->rating_total -= e->value;
        p->n_ratings--;
    }
}

static int alloc_items(pop *p, uint32_t n_items) {
    size_t n = n_items ? n_items : 1;
    p->score = calloc(n, sizeof *p->score);
    p->item_cat = calloc(n, sizeof *p->item_cat);
    p->window = calloc(n * MP_EV_NTYPES, sizeof *p->window);
    p->rating_sum = calloc(n, sizeof *p->rating_sum);
    p->rating_n = calloc(n, sizeof *p->rating_n);
    return p->score && p->item_cat && p->window && p->rating_sum && p->rating_n ? MP_OK : MP_ENOMEM;
}

static int derive(pop *p) {
    free(p->cat_size);
    free(p->window_tot);
    p->cat_size = calloc(p->n_categories ? p->n_categories : 1, sizeof *p->cat_size);
    p->window_tot = calloc(p->n_items ? p->n_items : 1, sizeof *p->window_tot);
    if (!p->cat_size || !p->window_tot) return MP_ENOMEM;
    for (uint32_t i = 0; i < p->n_items; i++) {
        p->cat_size[p->item_cat[i]]++;
        for (int k = 0; k < MP_EV_NTYPES; k++) p->window_tot[i] += p->window[(size_t)i * MP_EV_NTYPES + k];
    }
    return MP_OK;
}

static int pop_fit(void *impl, const mp_train_data *data, const mp_progress *progress, mp_error *err) {
    pop *p = impl;
    pop_release(p);
    if (data->n_events == 0 || !data->events) return mp_error_set(err, MP_EEMPTY, "pop: no training events");
    p->n_items = data->n_items;
    p->n_categories = data->item_category && data->n_categories > 0 ? data->n_categories : 1;
    for (int t = 0; t < MP_EV_NTYPES; t++)
        p->type_weight[t] = data->weighting ? data->weighting->type_weight[t] : mp_event_type_default_weight(t);
    if (alloc_items(p, p->n_items)) goto oom;
    p->cat_names = calloc(p->n_categories, sizeof *p->cat_names);
    if (!p->cat_names) goto oom;
    if (data->item_category && data->n_categories > 0) {
        for (uint32_t i = 0; i < p->n_items; i++) {
            if (data->item_category[i] >= data->n_categories) {
                pop_release(p);
                return mp_error_set(err, MP_EINVAL, "pop: item %u has category %u, but there are only %u", i,
                                    data->item_category[i], data->n_categories);
            }
            p->item_cat[i] = data->item_category[i];
        }
        if (data->category_names)
            for (uint32_t c = 0; c < p->n_categories; c++)
                if (data->category_names[c] && !(p->cat_names[c] = strdup(data->category_names[c]))) goto oom;
    }
    int64_t latest = INT64_MIN;
    for (size_t i = 0; i < data->n_events; i++) {
        const mp_interaction *e = &data->events[i];
        if (e->item >= p->n_items) {
            uint32_t item = e->item;
            pop_release(p);
            return mp_error_set(err, MP_EINVAL, "pop: event %zu refers to item %u, but there are only %u items", i,
                                item, data->n_items);
        }
        if (e->ts > latest) latest = e->ts;
    }
    p->now = data->now ? data->now : latest;
    for (size_t i = 0; i < data->n_events; i++) {
        add_event(p, &data->events[i]);
        if ((i & 0xFFFFF) == 0xFFFFF) mp_progress_report(progress, "fit", i + 1, data->n_events);
    }
    mp_progress_report(progress, "fit", data->n_events, data->n_events);
    if (derive(p)) goto oom;
    return MP_OK;
oom:
    pop_release(p);
    return mp_error_set(err, MP_ENOMEM, "pop: out of memory for %u items", data->n_items);
}

/* share[c] = fraction of the user's known history events in category c (c > 0). Returns a malloc'ed array
 * [n_categories] or NULL when there is nothing to share (no history, no categories, or out of memory). */
static double *category_shares(const pop *p, const mp_user_ctx *ctx) {
    if (!ctx || ctx->n_history == 0 || p->n_categories <= 1) return NULL;
    double *share = calloc(p->n_categories, sizeof *share);
    if (!share) return NULL;
    size_t total = 0;
    for (size_t i = 0; i < ctx->n_history; i++) {
        uint32_t it = ctx->history[i].item;
        if (it >= p->n_items) continue;
        share[p->item_cat[it]] += 1;
        total++;
    }
    if (total == 0) {
        free(share);
        return NULL;
    }
    for (uint32_t c = 0; c < p->n_categories; c++) share[c] /= (double)total;
    share[0] = 0;
    return share;
}

static int pop_score_all(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err) {
    const pop *p = impl;
    for (uint32_t i = 0; i < p->n_items; i++) scores[i] = (float)p->score[i];
    if (p->category_boost > 0) {
        double *share = category_shares(p, ctx);
        if (share) {
            for (uint32_t i = 0; i < p->n_items; i++) {
                double f = 1.0 + p->category_boost * share[p->item_cat[i]];
                scores[i] = (float)(p->score[i] * f);
            }
            free(share);
        }
    }
    (void)err;
    return MP_OK;
}

static int pop_predict_rating(const void *impl, uint32_t user, uint32_t item, double *out, mp_error *err) {
    const pop *p = impl;
    (void)user;
    if (p->n_ratings == 0)
        return mp_error_set(err, MP_EUNSUPPORTED,
                            "pop: the training events carry no rating values, so ratings cannot be predicted");
    double mu = p->rating_total / (double)p->n_ratings;
    if (item >= p->n_items) {
        *out = mu;
        return MP_OK;
    }
    *out = (p->rating_sum[item] + POP_SHRINK * mu) / ((double)p->rating_n[item] + POP_SHRINK);
    return MP_OK;
}

static int pop_similar(const void *impl, uint32_t item, size_t n, uint32_t *out_items, float *out_scores,
                       size_t *n_out, mp_error *err) {
    const pop *p = impl;
    *n_out = 0;
    if (item >= p->n_items) return mp_error_set(err, MP_ENOTFOUND, "pop: unknown item %u", item);
    float *scores = malloc((size_t)p->n_items * sizeof *scores);
    if (!scores) return mp_error_set(err, MP_ENOMEM, "pop: out of memory");
    uint32_t cat = p->item_cat[item];
    for (uint32_t i = 0; i < p->n_items; i++)
        scores[i] = (cat == 0 || p->item_cat[i] == cat) ? (float)p->score[i] : NAN;
    scores[item] = NAN;
    *n_out = mp_topk(scores, p->n_items, NULL, n, out_items);
    if (out_scores)
        for (size_t k = 0; k < *n_out; k++) out_scores[k] = scores[out_items[k]];
    free(scores);
    return MP_OK;
}

/* The last component of "Beauty > Skin Care", or NULL for no / unnamed category. */
static const char *leaf_name(const pop *p, uint32_t cat) {
    if (cat == 0 || cat >= p->n_categories || !p->cat_names || !p->cat_names[cat] || !p->cat_names[cat][0])
        return NULL;
    const char *name = p->cat_names[cat], *leaf = name;
    for (const char *s = name; (s = strstr(s, " > ")) != NULL; s += 3) leaf = s + 3;
    return *leaf ? leaf : name;
}

static uint32_t window_total(const pop *p, uint32_t item) { return p->window_tot[item]; }

/* 1-based rank of `item` by key among items of category cat (cat == UINT32_MAX: all); ties by lower id. */
static uint32_t rank_in(const pop *p, uint32_t item, uint32_t cat, int by_window) {
    double mine = by_window ? window_total(p, item) : p->score[item];
    uint32_t rank = 1;
    for (uint32_t i = 0; i < p->n_items; i++) {
        if (i == item || (cat != UINT32_MAX && p->item_cat[i] != cat)) continue;
        double v = by_window ? window_total(p, i) : p->score[i];
        if (v > mine || (v == mine && i < item)) rank++;
    }
    return rank;
}

static void window_phrase(double days, char *buf, size_t cap) {
    if (days == 1) snprintf(buf, cap, "today");
    else if (days == 7) snprintf(buf, cap, "this week");
    else if (days == 30 || days == 31) snprintf(buf, cap, "this month");
    else snprintf(buf, cap, "in the last %g days", days);
}

/* "35 purchases", "12 views": purchases when there are at least two (the strongest signal), else the most
 * frequent positive type. */
static void count_phrase(const pop *p, uint32_t item, char *buf, size_t cap) {
    const uint32_t *w = p->window + (size_t)item * MP_EV_NTYPES;
    int best = MP_EV_PURCHASE;
    if (w[MP_EV_PURCHASE] < 2)
        for (int k = 0; k < MP_EV_NTYPES; k++)
            if (k != MP_EV_DISLIKE && k != MP_EV_RETURN && w[k] > w[best]) best = k;
    snprintf(buf, cap, "%u %s%s", w[best], mp_event_type_name(best), w[best] == 1 ? "" : "s");
}

/* Popular means ranked within the top fifth of the group (and at least the top 5). */
static int is_top(uint32_t rank, uint32_t group) {
    uint32_t cut = (group + 4) / 5;
    if (cut < 5) cut = 5;
    return rank <= cut;
}

static int pop_explain(const void *impl, const mp_user_ctx *ctx, uint32_t item, char *buf, size_t cap,
                       mp_error *err) {
    const pop *p = impl;
    if (item >= p->n_items) return mp_error_set(err, MP_ENOTFOUND, "pop: unknown item %u", item);
    uint32_t cat = p->item_cat[item];
    const char *name = leaf_name(p, cat);
    if (name && p->category_boost > 0) {
        double *share = category_shares(p, ctx);
        int often = share && share[cat] >= POP_OFTEN_SHARE;
        free(share);
        if (often) {
            snprintf(buf, cap, "popular in %s, which you often browse", name);
            return MP_OK;
        }
    }
    if (name) {
        uint32_t recent = window_total(p, item);
        if (recent > 0) {
            uint32_t r = rank_in(p, item, cat, 1);
            if (is_top(r, p->cat_size[cat])) {
                char when[48], what[64];
                window_phrase(p->window_days, when, sizeof when);
                count_phrase(p, item, what, sizeof what);
                snprintf(buf, cap, "popular in %s %s (#%u of %u, %s)", name, when, r, p->cat_size[cat], what);
                return MP_OK;
            }
        }
        uint32_t r = rank_in(p, item, cat, 0);
        if (is_top(r, p->cat_size[cat])) snprintf(buf, cap, "popular in %s (#%u of %u)", name, r, p->cat_size[cat]);
        else snprintf(buf, cap, "ranked #%u of %u in %s by popularity", r, p->cat_size[cat], name);
        return MP_OK;
    }
    uint32_t r = rank_in(p, item, UINT32_MAX, 0);
    if (is_top(r, p->n_items)) snprintf(buf, cap, "popular overall (#%u of %u)", r, p->n_items);
    else snprintf(buf, cap, "ranked #%u of %u overall by popularity", r, p->n_items);
    return MP_OK;
}

/* Grows the item arrays to n_items (new items have no category and no counts). */
static int grow_items(pop *p, uint32_t n_items) {
    size_t old = p->n_items, n = n_items;
    double *score = realloc(p->score, n * sizeof *score);
    if (score) p->score = score;
    uint32_t *cat = realloc(p->item_cat, n * sizeof *cat);
    if (cat) p->item_cat = cat;
    uint32_t *window = realloc(p->window, n * MP_EV_NTYPES * sizeof *window);
    if (window) p->window = window;
    double *rs = realloc(p->rating_sum, n * sizeof *rs);
    if (rs) p->rating_sum = rs;
    uint32_t *rn = realloc(p->rating_n, n * sizeof *rn);
    if (rn) p->rating_n = rn;
    uint32_t *wt = realloc(p->window_tot, n * sizeof *wt);
    if (wt) p->window_tot = wt;
    if (!score || !cat || !window || !rs || !rn || !wt) return MP_ENOMEM; /* arrays stay valid at their old size */
    memset(score + old, 0, (n - old) * sizeof *score);
    memset(cat + old, 0, (n - old) * sizeof *cat);
    memset(window + old * MP_EV_NTYPES, 0, (n - old) * MP_EV_NTYPES * sizeof *window);
    memset(rs + old, 0, (n - old) * sizeof *rs);
    memset(rn + old, 0, (n - old) * sizeof *rn);
    memset(wt + old, 0, (n - old) * sizeof *wt);
    p->cat_size[0] += (uint32_t)(n - old);
    p->n_items = n_items;
    return MP_OK;
}

static int pop_update(void *impl, const mp_interaction *events, size_t n, mp_error *err) {
    pop *p = impl;
    if (n == 0) return MP_OK;
    uint32_t max_item = 0;
    int64_t latest = p->now;
    for (size_t i = 0; i < n; i++) {
        if (events[i].item == UINT32_MAX) return mp_error_set(err, MP_EINVAL, "pop: event %zu has no item", i);
        if (events[i].item > max_item) max_item = events[i].item;
        if (events[i].ts > latest) latest = events[i].ts;
    }
    if (max_item >= p->n_items && grow_items(p, max_item + 1))
        return mp_error_set(err, MP_ENOMEM, "pop: out of memory growing to %u items", max_item + 1);
    if (latest > p->now) {
        /* Move the reference time forward: every stored score ages by the same factor, so ranks stay exact.
         * Recent-window counts are not expired here (they describe the window before the last fit or load). */
        if (p->half_life_days > 0) {
            double f = exp2(-(double)(latest - p->now) / (p->half_life_days * SECONDS_PER_DAY));
            for (uint32_t i = 0; i < p->n_items; i++) p->score[i] *= f;
        }
        p->now = latest;
    }
    for (size_t i = 0; i < n; i++) add_event(p, &events[i]);
    return MP_OK;
}

static int pop_forget_user(void *impl, uint32_t user, const mp_interaction *events, size_t n, mp_error *err) {
    pop *p = impl;
    (void)user;
    (void)err;
    for (size_t i = 0; i < n; i++)
        if (events[i].item < p->n_items) remove_event(p, &events[i]);
    return MP_OK;
}

static int pop_save(const void *impl, mp_mf_writer *w, mp_error *err) {
    const pop *p = impl;
    (void)err;
    mp_params_put(pop_params, MP_PARAM_COUNT(pop_params), p, w);
    mp_mf_put_u32(w, p->n_items);
    mp_mf_put_u32(w, p->n_categories);
    mp_mf_put_u64(w, (uint64_t)p->now);
    mp_mf_put_f32s(w, p->type_weight, MP_EV_NTYPES);
    mp_mf_put_f64s(w, p->score, p->n_items);
    mp_mf_put_u32s(w, p->item_cat, p->n_items);
    for (uint32_t c = 0; c < p->n_categories; c++) mp_mf_put_str(w, p->cat_names ? p->cat_names[c] : NULL);
    mp_mf_put_u32s(w, p->window, (size_t)p->n_items * MP_EV_NTYPES);
    mp_mf_put_f64s(w, p->rating_sum, p->n_items);
    mp_mf_put_u32s(w, p->rating_n, p->n_items);
    mp_mf_put_f64(w, p->rating_total);
    mp_mf_put_u64(w, p->n_ratings);
    return MP_OK;
}

static int bad(mp_error *err, const char *what) {
    return mp_error_set(err, MP_ECORRUPT, "pop payload: %s", what);
}

static int pop_load(void *impl, mp_mf_reader *r, mp_error *err) {
    pop *p = impl;
    pop_release(p);
    uint32_t n_items, n_cat;
    uint64_t now;
    int rc;
    if ((rc = mp_params_get(pop_params, MP_PARAM_COUNT(pop_params), p, r, "pop", err)) ||
        (rc = mp_mf_get_u32(r, &n_items, err)) || (rc = mp_mf_get_u32(r, &n_cat, err)) ||
        (rc = mp_mf_get_u64(r, &now, err)))
        return rc;
    /* the reference time is subtracted from event times: keep it within accepted timestamps (years 1..9999) */
    if ((int64_t)now < -62135596800LL || (int64_t)now > 253402300799LL) return bad(err, "reference time out of range");
    /* Every item costs at least 8 + 4 + 36 + 8 + 4 bytes of payload: refuse counts the file cannot hold before
     * allocating for them. */
    if (n_cat == 0 || (uint64_t)n_items * 60 > mp_mf_remaining(r) || (uint64_t)n_cat * 4 > mp_mf_remaining(r))
        return bad(err, "item or category count does not match the file size");
    if ((rc = mp_mf_get_f32s(r, p->type_weight, MP_EV_NTYPES, err))) return rc;
    p->n_items = n_items;
    p->n_categories = n_cat;
    p->now = (int64_t)now;
    p->cat_names = calloc(n_cat, sizeof *p->cat_names);
    if (alloc_items(p, n_items) || !p->cat_names) {
        pop_release(p);
        return mp_error_set(err, MP_ENOMEM, "pop: out of memory loading %u items", n_items);
    }
    if ((rc = mp_mf_get_f64s(r, p->score, n_items, err)) || (rc = mp_mf_get_u32s(r, p->item_cat, n_items, err)))
        goto fail;
    for (uint32_t i = 0; i < n_items; i++)
        if (p->item_cat[i] >= n_cat) {
            rc = bad(err, "item category out of range");
            goto fail;
        }
    for (uint32_t c = 0; c < n_cat; c++)
        if ((rc = mp_mf_get_str(r, &p->cat_names[c], POP_MAX_NAME, err))) goto fail;
    if ((rc = mp_mf_get_u32s(r, p->window, (size_t)n_items * MP_EV_NTYPES, err)) ||
        (rc = mp_mf_get_f64s(r, p->rating_sum, n_items, err)) || (rc = mp_mf_get_u32s(r, p->rating_n, n_items, err)) ||
        (rc = mp_mf_get_f64(r, &p->rating_total, err)) || (rc = mp_mf_get_u64(r, &p->n_ratings, err)))
        goto fail;
    if (derive(p)) {
        rc = mp_error_set(err, MP_ENOMEM, "pop: out of memory");
        goto fail;
    }
    return MP_OK;
fail:
    pop_release(p);
    return rc;
}

static uint32_t pop_n_items(const void *impl) { return ((const pop *)impl)->n_items; }

const mp_model_ops mp_pop_ops = {
    .name = "pop",
    .summary = "popularity (event counts or type weights, optional time decay and per-category boost)",
    .file_version = POP_FILE_VERSION,
    .impl_size = sizeof(pop),
    .params = pop_params,
    .n_params = MP_PARAM_COUNT(pop_params),
    .params_offset = 0,
    .params_size = sizeof(pop),
    .fit = pop_fit,
    .score_all = pop_score_all,
    .predict_rating = pop_predict_rating,
    .similar = pop_similar,
    .explain = pop_explain,
    .update = pop_update,
    .save = pop_save,
    .load = pop_load,
    .release = pop_release,
    .n_items = pop_n_items,
    .forget_user = pop_forget_user,
};
