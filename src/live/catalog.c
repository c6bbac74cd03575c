/* src/live/catalog.c: category matching, the cache of category filters (which categories match, which items pass)
 * and the live popularity counters with their top lists.
 *
 * Filters: a filter text is matched against every category path once (mp_live_category_matches); the result and an
 * item mask (available and in a matching category) are cached per lowercased text, so a filtered request costs no
 * O(n_items) work after the first. Writers keep the cached masks current item by item (availability or category
 * changes, new items, new categories), so nothing is ever invalidated wholesale.
 *
 * Popularity: score[i] = sum over the item's events of w(type) * 2^((ts - ref) / half_life), with w the default
 * event-type weight (negative types count 0). Scaling by the event time instead of decaying every score as time
 * passes makes the order of scores time-independent, and an event only ever raises one item's score. A top list
 * per category and one over all items then stay exact under additions: an item outside a list can enter only when
 * its own score rises, which is when it is offered to the list. Scores go down only when a user is forgotten or an
 * item changes category; the lists are rebuilt then (O(n_items)). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "live/live_internal.h"
#include "magpie/topk.h"

int mp_live_category_matches(const char *path, const char *filter) {
    if (!path || !filter || !*filter) return 0;
    if (!strcasecmp(path, filter)) return 1;
    size_t fl = strlen(filter);
    if (!strncasecmp(path, filter, fl) && !strncmp(path + fl, " > ", 3)) return 1; /* top level or a leading part */
    const char *leaf = path;
    for (const char *s = path; (s = strstr(s, " > ")) != NULL; s += 3) leaf = s + 3;
    return !strcasecmp(leaf, filter);
}

const char *live_cat_leaf(const mp_live *l, uint32_t c) {
    if (c == 0 || c >= l->n_cats) return NULL;
    const char *name = mp_strmap_key(l->cats, c, NULL);
    if (!name || !*name) return NULL;
    const char *leaf = name;
    for (const char *s = name; (s = strstr(s, " > ")) != NULL; s += 3) leaf = s + 3;
    return *leaf ? leaf : name;
}

/* Reallocates *p from old to n elements of size elem, zeroing the new tail. */
static int grow_zero(void **p, size_t old, size_t n, size_t elem) {
    void *q = realloc(*p, (n ? n : 1) * elem);
    if (!q) return MP_ENOMEM;
    memset((char *)q + old * elem, 0, (n - old) * elem);
    *p = q;
    return MP_OK;
}

int live_items_reserve(mp_live *l, uint32_t n) {
    if (n <= l->items_cap) return MP_OK;
    size_t cap = l->items_cap ? (size_t)l->items_cap * 2 : 1024;
    if (cap < n) cap = n;
    if (cap > UINT32_MAX) cap = UINT32_MAX;
    size_t old = l->items_cap;
    /* arrays that grew stay grown if a later one fails; items_cap only moves when all did */
    if (grow_zero((void **)&l->title, old, cap, sizeof *l->title) ||
        grow_zero((void **)&l->item_cat, old, cap, sizeof *l->item_cat) ||
        grow_zero((void **)&l->avail, old, cap, sizeof *l->avail) ||
        grow_zero((void **)&l->pop, old, cap, sizeof *l->pop) ||
        grow_zero((void **)&l->price, old, cap, sizeof *l->price) || live_text_reserve(l, old, cap))
        return MP_ENOMEM;
    for (size_t i = old; i < cap; i++) l->price[i] = NAN;
    for (size_t k = 0; k < l->n_filters; k++)
        if (grow_zero((void **)&l->filters[k]->mask, old, cap, 1)) return MP_ENOMEM;
    l->items_cap = (uint32_t)cap;
    return MP_OK;
}

int live_cats_reserve(mp_live *l, uint32_t n) {
    if (n <= l->cats_cap) return MP_OK;
    size_t cap = l->cats_cap ? (size_t)l->cats_cap * 2 : 64;
    if (cap < n) cap = n;
    size_t old = l->cats_cap;
    if (grow_zero((void **)&l->pop_cat, old, cap, sizeof *l->pop_cat)) return MP_ENOMEM;
    for (size_t k = 0; k < l->n_filters; k++) {
        live_filter *f = l->filters[k];
        if (grow_zero((void **)&f->cat_match, old, cap, 1) || grow_zero((void **)&f->cats, old, cap, sizeof *f->cats))
            return MP_ENOMEM;
    }
    l->cats_cap = (uint32_t)cap;
    return MP_OK;
}

int live_cat_intern(mp_live *l, const char *path, size_t len, uint32_t *id) {
    uint32_t c = mp_strmap_get(l->cats, path, len);
    if (c != MP_STRMAP_NONE) {
        *id = c;
        return MP_OK;
    }
    c = l->n_cats;
    if (live_cats_reserve(l, c + 1) || mp_strmap_put(l->cats, path, len, c)) return MP_ENOMEM;
    l->n_cats = c + 1;
    const char *name = mp_strmap_key(l->cats, c, NULL);
    for (size_t k = 0; k < l->n_filters; k++) {
        live_filter *f = l->filters[k];
        f->cat_match[c] = (uint8_t)mp_live_category_matches(name, f->key);
        if (f->cat_match[c]) f->cats[f->n_cats++] = c; /* c is the largest id: the list stays ascending */
    }
    *id = c;
    return MP_OK;
}

static inline uint8_t filter_passes(const mp_live *l, const live_filter *f, uint32_t i) {
    return l->avail[i] && f->cat_match[l->item_cat[i]];
}

/* Keeps f->items in step with f->mask[i] becoming `pass`. */
static int filter_list_set(live_filter *f, uint32_t i, uint8_t pass) {
    if (pass) {
        if (f->n_in == f->cap_in) {
            uint32_t cap = f->cap_in ? f->cap_in * 2 : 64;
            uint32_t *it = realloc(f->items, (size_t)cap * sizeof *it);
            if (!it) return MP_ENOMEM;
            f->items = it;
            f->cap_in = cap;
        }
        f->items[f->n_in++] = i;
        return MP_OK;
    }
    for (uint32_t k = 0; k < f->n_in; k++) /* rare (an item leaves a category or becomes unavailable) */
        if (f->items[k] == i) {
            f->items[k] = f->items[--f->n_in];
            break;
        }
    return MP_OK;
}

void live_filters_item_changed(mp_live *l, uint32_t i) {
    for (size_t k = 0; k < l->n_filters; k++) {
        live_filter *f = l->filters[k];
        uint8_t pass = filter_passes(l, f, i);
        if (pass == f->mask[i]) continue;
        if (filter_list_set(f, i, pass)) { /* out of memory: drop the item from the filter rather than be wrong */
            f->mask[i] = 0;
            filter_list_set(f, i, 0);
            continue;
        }
        f->mask[i] = pass;
    }
}

static void filter_free(live_filter *f) {
    if (!f) return;
    free(f->key);
    free(f->cat_match);
    free(f->cats);
    free(f->mask);
    free(f->items);
    free(f);
}

void live_filters_free(mp_live *l) {
    for (size_t k = 0; k < l->n_filters; k++) filter_free(l->filters[k]);
    free(l->filters);
    l->filters = NULL;
    l->n_filters = l->cap_filters = 0;
}

/* Builds a filter for key (lowercased, NUL-terminated) over the current catalog into a new heap object, or *out =
 * NULL when no category matches. Caller holds cat (read side at least). */
static int filter_build(const mp_live *l, const char *key, uint64_t hash, live_filter **out) {
    *out = NULL;
    uint32_t n_match = 0;
    for (uint32_t c = 1; c < l->n_cats; c++)
        n_match += (uint32_t)mp_live_category_matches(mp_strmap_key(l->cats, c, NULL), key);
    if (n_match == 0) return MP_OK;
    live_filter *f = calloc(1, sizeof *f);
    if (!f) return MP_ENOMEM;
    f->hash = hash;
    f->key = strdup(key);
    f->cat_match = calloc(l->cats_cap ? l->cats_cap : 1, 1);
    f->cats = malloc((l->cats_cap ? l->cats_cap : 1) * sizeof *f->cats);
    f->mask = calloc(l->items_cap ? l->items_cap : 1, 1);
    if (!f->key || !f->cat_match || !f->cats || !f->mask) {
        filter_free(f);
        return MP_ENOMEM;
    }
    for (uint32_t c = 1; c < l->n_cats; c++)
        if (mp_live_category_matches(mp_strmap_key(l->cats, c, NULL), key)) {
            f->cat_match[c] = 1;
            f->cats[f->n_cats++] = c;
        }
    for (uint32_t i = 0; i < l->n_items; i++) {
        f->mask[i] = filter_passes(l, f, i);
        if (f->mask[i] && filter_list_set(f, i, 1)) {
            filter_free(f);
            return MP_ENOMEM;
        }
    }
    *out = f;
    return MP_OK;
}

static live_filter *filter_find(mp_live *l, const char *key, uint64_t hash) {
    for (size_t k = 0; k < l->n_filters; k++)
        if (l->filters[k]->hash == hash && !strcmp(l->filters[k]->key, key)) return l->filters[k];
    return NULL;
}

/* Moves f's arrays into the scratch's private filter (replacing what it held) and frees f. */
static const live_filter *adopt_tmp(live_scratch *sc, live_filter *f) {
    free(sc->tmp.key);
    free(sc->tmp.cat_match);
    free(sc->tmp.cats);
    free(sc->tmp.mask);
    free(sc->tmp.items);
    sc->tmp = *f;
    free(f);
    return &sc->tmp;
}

int live_filter_get(mp_live *l, live_scratch *sc, const char *text, const live_filter **out, mp_error *err) {
    *out = NULL;
    size_t len = strlen(text);
    if (mp_grow((void **)&sc->key, &sc->key_cap, len + 1, 1))
        return mp_error_set(err, MP_ENOMEM, "out of memory for a category filter");
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        sc->key[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    sc->key[len] = 0;
    uint64_t hash = mp_hash_bytes(sc->key, len);
    pthread_mutex_lock(&l->filter_mu);
    live_filter *hit = filter_find(l, sc->key, hash);
    pthread_mutex_unlock(&l->filter_mu);
    if (hit) {
        *out = hit;
        return MP_OK;
    }
    live_filter *f;
    if (filter_build(l, sc->key, hash, &f))
        return mp_error_set(err, MP_ENOMEM, "out of memory for the category filter \"%s\"", text);
    if (!f) return MP_OK; /* no category matches */
    pthread_mutex_lock(&l->filter_mu);
    hit = filter_find(l, sc->key, hash); /* another reader may have built it meanwhile */
    if (!hit && l->n_filters < LIVE_MAX_FILTERS) {
        if (l->n_filters == l->cap_filters) {
            size_t cap = l->cap_filters ? l->cap_filters * 2 : 16;
            live_filter **nf = realloc(l->filters, cap * sizeof *nf);
            if (nf) {
                l->filters = nf;
                l->cap_filters = cap;
            }
        }
        if (l->n_filters < l->cap_filters) {
            l->filters[l->n_filters++] = f;
            hit = f;
            f = NULL;
        }
    }
    pthread_mutex_unlock(&l->filter_mu);
    if (hit) {
        filter_free(f);
        *out = hit;
    } else {
        *out = adopt_tmp(sc, f); /* cache full: this request's own copy */
    }
    return MP_OK;
}

/* ---- popularity ---- */

#define POP_REBASE 60.0 /* half-lives between moves of the reference time */

static double pop_weight(int type) {
    float w = mp_event_type_default_weight(type);
    return w > 0 ? w : 0;
}

/* a ranks before b: higher score, then lower id */
static inline int pop_better(const mp_live *l, uint32_t a, uint32_t b) {
    return l->pop[a] > l->pop[b] || (l->pop[a] == l->pop[b] && a < b);
}

/* Offers item i (whose score rose, or which is being inserted at a rebuild) to list t. present: i may be in it. */
static void list_offer(mp_live *l, live_toplist *t, uint32_t i, int present) {
    if (!t->items) { /* lists of categories are allocated when their first item scores */
        t->items = malloc(LIVE_POP_TOP * sizeof *t->items);
        if (!t->items) { /* out of memory: the list stays empty, marked incomplete, so readers scan */
            t->overflowed = 1;
            return;
        }
    }
    uint32_t p = t->n;
    if (present)
        for (uint32_t k = 0; k < t->n; k++)
            if (t->items[k] == i) {
                p = k;
                break;
            }
    if (p == t->n) { /* not in the list */
        if (t->n == LIVE_POP_TOP) {
            if (!pop_better(l, i, t->items[t->n - 1])) {
                t->overflowed = 1;
                return;
            }
            t->overflowed = 1; /* the last one is pushed out */
            p = t->n - 1;
        } else {
            p = t->n++;
        }
        t->items[p] = i;
    }
    while (p > 0 && pop_better(l, i, t->items[p - 1])) {
        t->items[p] = t->items[p - 1];
        p--;
    }
    t->items[p] = i;
}

static void pop_rescale(mp_live *l, int64_t new_ref) {
    double f = exp2(-(double)(new_ref - l->pop_ref) / l->pop_half_life);
    for (uint32_t i = 0; i < l->n_items; i++) l->pop[i] *= f;
    l->pop_ref = new_ref;
}

/* Weight of e on the current scale (0 for items out of range and negative types). */
static double pop_contrib(mp_live *l, const mp_interaction *e) {
    if (e->item >= l->n_items || e->type >= MP_EV_NTYPES) return 0;
    double w = pop_weight(e->type);
    if (w == 0 || l->pop_half_life <= 0) return w;
    return w * exp2((double)(e->ts - l->pop_ref) / l->pop_half_life);
}

int live_pop_init(mp_live *l) {
    l->pop_half_life = l->opts.pop_half_life_days > 0 ? l->opts.pop_half_life_days * 86400.0 : 0;
    l->pop_ref = l->n_events ? l->ts_max : 0;
    l->pop_latest = l->pop_ref;
    l->pop_all.items = malloc(LIVE_POP_TOP * sizeof *l->pop_all.items);
    if (!l->pop_all.items) return MP_ENOMEM;
    for (uint32_t u = 0; u < l->n_users; u++)
        for (uint32_t k = 0; k < l->hist[u].n; k++) l->pop[l->hist[u].ev[k].item] += pop_contrib(l, &l->hist[u].ev[k]);
    live_pop_rebuild(l);
    return MP_OK;
}

void live_pop_add(mp_live *l, const mp_interaction *e) {
    if (e->item >= l->n_items) return;
    if (e->ts > l->pop_latest) l->pop_latest = e->ts;
    if (l->pop_half_life > 0 && (double)(e->ts - l->pop_ref) > POP_REBASE * l->pop_half_life) pop_rescale(l, e->ts);
    double c = pop_contrib(l, e);
    if (!(c > 0)) return;
    l->pop[e->item] += c;
    list_offer(l, &l->pop_all, e->item, 1);
    uint32_t cat = l->item_cat[e->item];
    if (cat) list_offer(l, &l->pop_cat[cat], e->item, 1);
}

void live_pop_sub(mp_live *l, const mp_interaction *e) {
    if (e->item >= l->n_items) return;
    double s = l->pop[e->item] - pop_contrib(l, e);
    l->pop[e->item] = s > 0 ? s : 0; /* rounding must not leave a ghost score */
}

void live_pop_rebuild(mp_live *l) {
    l->pop_all.n = 0;
    l->pop_all.overflowed = 0;
    for (uint32_t c = 0; c < l->n_cats; c++) {
        l->pop_cat[c].n = 0;
        l->pop_cat[c].overflowed = 0;
    }
    for (uint32_t i = 0; i < l->n_items; i++) {
        if (!(l->pop[i] > 0)) continue;
        list_offer(l, &l->pop_all, i, 0);
        if (l->item_cat[i]) list_offer(l, &l->pop_cat[l->item_cat[i]], i, 0);
    }
}

void live_pop_free(mp_live *l) {
    free(l->pop_all.items);
    l->pop_all.items = NULL;
    if (l->pop_cat)
        for (uint32_t c = 0; c < l->cats_cap; c++) free(l->pop_cat[c].items);
    free(l->pop_cat);
    l->pop_cat = NULL;
}

typedef struct pop_query {
    const live_filter *f;
    uint32_t cat_only;
    const uint32_t *excl;
    size_t n_excl;
} pop_query;

static int pop_accept(const mp_live *l, const pop_query *q, uint32_t i) {
    if (!(l->pop[i] > 0)) return 0;
    if (q->f ? !q->f->mask[i] : !l->avail[i]) return 0;
    if (q->cat_only != UINT32_MAX && l->item_cat[i] != q->cat_only) return 0;
    return !live_in_sorted(q->excl, q->n_excl, i);
}

long live_pop_top(mp_live *l, live_scratch *sc, const live_filter *f, uint32_t cat_only, const uint32_t *excl,
                  size_t n_excl, size_t skip, size_t want, uint32_t *out, float *scores) {
    pop_query q = {f, cat_only, excl, n_excl};
    double shown = l->pop_half_life > 0 ? exp2(-(double)(l->pop_latest - l->pop_ref) / l->pop_half_life) : 1.0;
    /* the lists to merge */
    const live_toplist *one = &l->pop_all;
    size_t n_lists = 1;
    if (cat_only != UINT32_MAX) {
        if (cat_only >= l->n_cats) return 0;
        one = &l->pop_cat[cat_only];
    } else if (f) {
        n_lists = f->n_cats;
    }
    if (mp_grow((void **)&sc->cursor, &sc->cursor_cap, n_lists + 1, sizeof *sc->cursor)) return MP_ENOMEM;
    memset(sc->cursor, 0, (n_lists + 1) * sizeof *sc->cursor);
#define LIST(k) ((cat_only == UINT32_MAX && f) ? &l->pop_cat[f->cats[k]] : one)
    size_t got = 0, passed = 0;
    int incomplete = 0;
    while (got < want) {
        long best = -1;
        uint32_t best_item = 0;
        for (size_t k = 0; k < n_lists; k++) {
            const live_toplist *t = LIST(k);
            if (sc->cursor[k] >= t->n) continue;
            uint32_t it = t->items[sc->cursor[k]];
            if (best < 0 || pop_better(l, it, best_item)) {
                best = (long)k;
                best_item = it;
            }
        }
        if (best < 0) break;
        sc->cursor[best]++;
        if (!pop_accept(l, &q, best_item)) continue;
        if (passed++ < skip) continue;
        out[got] = best_item;
        if (scores) scores[got] = (float)(l->pop[best_item] * shown);
        got++;
    }
    if (got == want) return (long)got;
    for (size_t k = 0; k < n_lists; k++) incomplete |= LIST(k)->overflowed;
#undef LIST
    if (!incomplete) return (long)got; /* every item with a score was in the lists */
    /* Slow path: the lists ran out before enough items passed (deep pages, many exclusions or unavailable items):
     * rank every item. O(n_items), rare. */
    if (mp_grow((void **)&sc->scores, &sc->scores_cap, l->n_items + 1, sizeof *sc->scores)) return MP_ENOMEM;
    size_t k_all = skip + want;
    if (mp_grow((void **)&sc->top, &sc->top_cap, k_all + 1, sizeof *sc->top)) return MP_ENOMEM;
    for (uint32_t i = 0; i < l->n_items; i++) sc->scores[i] = pop_accept(l, &q, i) ? (float)(l->pop[i] * shown) : NAN;
    size_t n_top;
    if (mp_topk(sc->scores, l->n_items, NULL, k_all, sc->top, &n_top) != MP_OK) return MP_ENOMEM;
    got = 0;
    for (size_t k = skip; k < n_top; k++) {
        out[got] = sc->top[k];
        if (scores) scores[got] = sc->scores[sc->top[k]];
        got++;
    }
    return (long)got;
}
