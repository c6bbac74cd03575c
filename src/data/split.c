/* src/data/split.c: train / validation / test splits. Each split decides a part for every event of the dataset
 * (ds->events, sorted by (user, ts)) and then copies events into the parts in that order, so every part stays
 * sorted by (user, ts) and the parts are disjoint and together hold every event exactly once. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/rng.h"
#include "magpie/split.h"

enum { PART_TRAIN = 0, PART_VALID = 1, PART_TEST = 2 };

void mp_split_opts_default(mp_split_opts *o, mp_split_kind kind) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->seed = 42;
    o->ratio = 0.75;
    o->share = 0.2;
    o->cutoff = 0;
    o->with_valid = kind == MP_SPLIT_LEAVE_LAST;
    o->min_events = 3;
    o->n_folds = 5;
    o->fold = 0;
}

int mp_split_kind_parse(const char *s, mp_split_kind *out) {
    static const struct {
        const char *name;
        mp_split_kind kind;
    } names[] = {{"loo", MP_SPLIT_LEAVE_LAST},     {"leave-last", MP_SPLIT_LEAVE_LAST}, {"temporal", MP_SPLIT_TEMPORAL},
                 {"ratio", MP_SPLIT_RATIO},        {"cold-item", MP_SPLIT_COLD_ITEM},   {"cold-user", MP_SPLIT_COLD_USER},
                 {"kfold", MP_SPLIT_KFOLD}};
    if (!s) return MP_EINVAL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].kind;
            return MP_OK;
        }
    return MP_EINVAL;
}

const char *mp_split_kind_name(mp_split_kind k) {
    switch (k) {
    case MP_SPLIT_LEAVE_LAST: return "loo";
    case MP_SPLIT_TEMPORAL: return "temporal";
    case MP_SPLIT_RATIO: return "ratio";
    case MP_SPLIT_COLD_ITEM: return "cold-item";
    case MP_SPLIT_COLD_USER: return "cold-user";
    case MP_SPLIT_KFOLD: return "kfold";
    }
    return "?";
}

void mp_split_free(mp_split *sp) {
    if (!sp) return;
    free(sp->train);
    free(sp->valid);
    free(sp->test);
    free(sp->cold_item);
    free(sp->cold_user);
    memset(sp, 0, sizeof *sp);
}

/* Round half to even, like Python's round(), so ratio splits match Microsoft Recommenders' group sizes. */
static uint64_t round_half_even(double x) {
    double f = floor(x), d = x - f;
    uint64_t r = (uint64_t)f;
    if (d > 0.5 || (d == 0.5 && (r & 1))) r++;
    return r;
}

/* k-th smallest (0-based) of a[0..n), reordering a (iterative quickselect, median-of-three pivot). */
static int64_t select_kth(int64_t *a, size_t n, size_t k) {
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
    while (lo < hi) {
        int64_t x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi];
        int64_t pivot = (x < y) ? ((y < z) ? y : (x < z ? z : x)) : ((x < z) ? x : (y < z ? z : y));
        ptrdiff_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                int64_t t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        /* now a[lo..j] <= pivot <= a[i..hi] and everything strictly between j and i equals pivot */
        if (kk <= j) hi = j;
        else if (kk >= i) lo = i;
        else return a[kk];
    }
    return a[kk];
}

/* Smallest timestamp such that about `share` of the selected events are at or after it. INT64_MAX when the
 * share rounds to no events. Events tied with the cut-off all fall on the later side. */
static int temporal_cutoff(const mp_interaction *ev, size_t n, const uint8_t *part, uint8_t which, double share,
                           int64_t *cutoff) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!part || part[i] == which) m++;
    uint64_t n_late = round_half_even(share * (double)m);
    if (m == 0 || n_late == 0) {
        *cutoff = INT64_MAX;
        return MP_OK;
    }
    int64_t *ts = malloc(m * sizeof *ts);
    if (!ts) return MP_ENOMEM;
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (!part || part[i] == which) ts[j++] = ev[i].ts;
    size_t k = n_late >= m ? 0 : m - (size_t)n_late;
    *cutoff = select_kth(ts, m, k);
    free(ts);
    return MP_OK;
}

static int split_leave_last(const mp_dataset *ds, const mp_split_opts *o, uint8_t *part, mp_error *err) {
    uint32_t *stamp = calloc(ds->n_items ? ds->n_items : 1, sizeof *stamp);
    if (!stamp) return mp_error_set(err, MP_ENOMEM, "split: out of memory");
    uint32_t need = o->with_valid ? 3 : 2; /* at least one training item must remain */
    if (o->min_events > need) need = o->min_events;
    for (uint32_t u = 0; u < ds->n_users; u++) {
        size_t b = ds->user_ptr[u], e = ds->user_ptr[u + 1];
        if (e == b) continue;
        uint32_t distinct = 0;
        for (size_t i = b; i < e; i++)
            if (stamp[ds->events[i].item] != u + 1) {
                stamp[ds->events[i].item] = u + 1;
                distinct++;
            }
        if (distinct < need) continue; /* keeps everything in train (part already 0) */
        /* Items ordered by their last event: the item of the final event is last, the item of the latest event
         * on another item is second to last. */
        uint32_t test_item = ds->events[e - 1].item, valid_item = UINT32_MAX;
        if (o->with_valid)
            for (size_t i = e - 1; i-- > b;)
                if (ds->events[i].item != test_item) {
                    valid_item = ds->events[i].item;
                    break;
                }
        for (size_t i = b; i < e; i++) {
            uint32_t it = ds->events[i].item;
            part[i] = it == test_item ? PART_TEST : it == valid_item ? PART_VALID : PART_TRAIN;
        }
    }
    free(stamp);
    return MP_OK;
}

static int split_temporal(const mp_dataset *ds, const mp_split_opts *o, uint8_t *part, mp_error *err) {
    int64_t cutoff = o->cutoff;
    if (cutoff == 0 && temporal_cutoff(ds->events, ds->n_events, NULL, 0, o->share, &cutoff) != MP_OK)
        return mp_error_set(err, MP_ENOMEM, "split: out of memory");
    for (size_t i = 0; i < ds->n_events; i++) part[i] = ds->events[i].ts >= cutoff ? PART_TEST : PART_TRAIN;
    if (o->with_valid) {
        int64_t vcut;
        if (temporal_cutoff(ds->events, ds->n_events, part, PART_TRAIN, o->share, &vcut) != MP_OK)
            return mp_error_set(err, MP_ENOMEM, "split: out of memory");
        for (size_t i = 0; i < ds->n_events; i++)
            if (part[i] == PART_TRAIN && ds->events[i].ts >= vcut) part[i] = PART_VALID;
    }
    return MP_OK;
}

/* Per user: the user's distinct items (in order of first event) are shuffled with the seeded generator; the first
 * round(ratio * n) go to train, the rest to test (with_valid: the last round((1 - ratio) * n_train) of the train
 * items go to validation). All events on one item stay in one part. */
static int split_ratio(const mp_dataset *ds, const mp_split_opts *o, uint8_t *part, mp_error *err) {
    uint32_t *stamp = calloc(ds->n_items ? ds->n_items : 1, sizeof *stamp);
    uint8_t *item_part = calloc(ds->n_items ? ds->n_items : 1, 1);
    uint32_t *items = malloc((ds->n_items ? ds->n_items : 1) * sizeof *items);
    if (!stamp || !item_part || !items) {
        free(stamp);
        free(item_part);
        free(items);
        return mp_error_set(err, MP_ENOMEM, "split: out of memory");
    }
    mp_rng rng;
    mp_rng_seed(&rng, o->seed);
    for (uint32_t u = 0; u < ds->n_users; u++) {
        size_t b = ds->user_ptr[u], e = ds->user_ptr[u + 1];
        if (e == b) continue;
        uint32_t n = 0;
        for (size_t i = b; i < e; i++)
            if (stamp[ds->events[i].item] != u + 1) {
                stamp[ds->events[i].item] = u + 1;
                items[n++] = ds->events[i].item;
            }
        mp_rng_shuffle_u32(&rng, items, n);
        uint64_t n_train = round_half_even(o->ratio * n);
        if (n >= 2) { /* every user with two or more items gets something in train and something in test */
            if (n_train < 1) n_train = 1;
            if (n_train > n - 1) n_train = n - 1;
        } else {
            n_train = n; /* a single item stays in train: there is nothing to learn the user from otherwise */
        }
        uint64_t n_valid = 0;
        if (o->with_valid && n_train >= 2) {
            n_valid = round_half_even((1.0 - o->ratio) * (double)n_train);
            if (n_valid > n_train - 1) n_valid = n_train - 1;
        }
        for (uint32_t j = 0; j < n; j++)
            item_part[items[j]] = j < n_train - n_valid ? PART_TRAIN : j < n_train ? PART_VALID : PART_TEST;
        for (size_t i = b; i < e; i++) part[i] = item_part[ds->events[i].item];
    }
    free(stamp);
    free(item_part);
    free(items);
    return MP_OK;
}

/* Marks round(share * active) of the active ids (those with events) as held out, chosen by a seeded shuffle. */
static int pick_cold(uint32_t n, const uint8_t *active, double share, uint64_t seed, uint8_t *cold) {
    uint32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return MP_ENOMEM;
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++)
        if (active[i]) ids[m++] = i;
    mp_rng rng;
    mp_rng_seed(&rng, seed);
    mp_rng_shuffle_u32(&rng, ids, m);
    uint64_t k = round_half_even(share * m);
    if (k > m) k = m;
    for (uint64_t j = 0; j < k; j++) cold[ids[j]] = 1;
    free(ids);
    return MP_OK;
}

static int split_cold(const mp_dataset *ds, const mp_split_opts *o, uint8_t *part, mp_split *sp, mp_error *err) {
    int by_item = o->kind == MP_SPLIT_COLD_ITEM;
    uint32_t n = by_item ? ds->n_items : ds->n_users;
    uint8_t *active = calloc(n ? n : 1, 1);
    uint8_t *cold = calloc(n ? n : 1, 1);
    if (!active || !cold) {
        free(active);
        free(cold);
        return mp_error_set(err, MP_ENOMEM, "split: out of memory");
    }
    for (size_t i = 0; i < ds->n_events; i++) active[by_item ? ds->events[i].item : ds->events[i].user] = 1;
    if (pick_cold(n, active, o->share, o->seed, cold) != MP_OK) {
        free(active);
        free(cold);
        return mp_error_set(err, MP_ENOMEM, "split: out of memory");
    }
    free(active);
    for (size_t i = 0; i < ds->n_events; i++)
        part[i] = cold[by_item ? ds->events[i].item : ds->events[i].user] ? PART_TEST : PART_TRAIN;
    if (by_item) sp->cold_item = cold;
    else sp->cold_user = cold;
    return MP_OK;
}

/* Events dealt into folds by a seeded permutation: position p of the permutation belongs to chunk c when
 * start(c) <= p < start(c + 1), start(c) = c * (n / k) + min(c, n % k). */
static int split_kfold(const mp_dataset *ds, const mp_split_opts *o, uint8_t *part, mp_error *err) {
    size_t n = ds->n_events;
    if (n > UINT32_MAX)
        return mp_error_set(err, MP_ERANGE, "split kfold: %zu events is more than the 2^32 - 1 supported", n);
    uint32_t *perm = malloc((n ? n : 1) * sizeof *perm);
    if (!perm) return mp_error_set(err, MP_ENOMEM, "split kfold: out of memory for %zu events", n);
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    mp_rng rng;
    mp_rng_seed(&rng, o->seed);
    mp_rng_shuffle_u32(&rng, perm, n);
    size_t k = o->n_folds, base = n / k, extra = n % k, pos = 0;
    uint32_t valid_fold = o->with_valid ? (o->fold + 1) % o->n_folds : UINT32_MAX;
    for (uint32_t c = 0; c < o->n_folds; c++) {
        size_t len = base + (c < extra ? 1 : 0);
        uint8_t which = c == o->fold ? PART_TEST : c == valid_fold ? PART_VALID : PART_TRAIN;
        for (size_t j = 0; j < len; j++) part[perm[pos + j]] = which;
        pos += len;
    }
    free(perm);
    return MP_OK;
}

int mp_split_make(const mp_dataset *ds, const mp_split_opts *o, mp_split *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    switch (o->kind) {
    case MP_SPLIT_RATIO:
        if (!(o->ratio > 0 && o->ratio < 1))
            return mp_error_set(err, MP_EINVAL, "split ratio: train share must be between 0 and 1, got %g", o->ratio);
        break;
    case MP_SPLIT_TEMPORAL:
        if (o->cutoff == 0 && !(o->share > 0 && o->share < 1))
            return mp_error_set(err, MP_EINVAL, "split temporal: test share must be between 0 and 1, got %g",
                                o->share);
        if (o->with_valid && !(o->share > 0 && o->share < 1))
            return mp_error_set(err, MP_EINVAL, "split temporal: validation share must be between 0 and 1, got %g",
                                o->share);
        break;
    case MP_SPLIT_COLD_ITEM:
    case MP_SPLIT_COLD_USER:
        if (!(o->share > 0 && o->share < 1))
            return mp_error_set(err, MP_EINVAL, "split %s: held-out share must be between 0 and 1, got %g",
                                mp_split_kind_name(o->kind), o->share);
        if (o->with_valid)
            return mp_error_set(err, MP_EUNSUPPORTED,
                                "split %s: has no validation part (evaluate on test, or use loo/temporal/ratio)",
                                mp_split_kind_name(o->kind));
        break;
    case MP_SPLIT_KFOLD:
        if (o->n_folds < 2 || o->n_folds > 255)
            return mp_error_set(err, MP_EINVAL, "split kfold: the number of folds must be 2 to 255, got %u",
                                o->n_folds);
        if (o->fold >= o->n_folds)
            return mp_error_set(err, MP_EINVAL, "split kfold: fold must be 0 to %u (there are %u folds), got %u",
                                o->n_folds - 1, o->n_folds, o->fold);
        if (o->with_valid && o->n_folds < 3)
            return mp_error_set(err, MP_EINVAL,
                                "split kfold: a validation fold needs at least 3 folds (train, validation, test), "
                                "got %u",
                                o->n_folds);
        break;
    case MP_SPLIT_LEAVE_LAST: break;
    default: return mp_error_set(err, MP_EINVAL, "split: unknown kind %d", (int)o->kind);
    }
    uint8_t *part = calloc(ds->n_events ? ds->n_events : 1, 1);
    if (!part) return mp_error_set(err, MP_ENOMEM, "split: out of memory for %zu events", ds->n_events);
    out->n_users = ds->n_users;
    out->n_items = ds->n_items;
    int rc;
    switch (o->kind) {
    case MP_SPLIT_LEAVE_LAST: rc = split_leave_last(ds, o, part, err); break;
    case MP_SPLIT_TEMPORAL: rc = split_temporal(ds, o, part, err); break;
    case MP_SPLIT_RATIO: rc = split_ratio(ds, o, part, err); break;
    case MP_SPLIT_KFOLD: rc = split_kfold(ds, o, part, err); break;
    default: rc = split_cold(ds, o, part, out, err); break;
    }
    if (rc != MP_OK) {
        free(part);
        mp_split_free(out);
        return rc;
    }
    size_t cnt[3] = {0, 0, 0};
    for (size_t i = 0; i < ds->n_events; i++) cnt[part[i]]++;
    out->train = malloc((cnt[0] ? cnt[0] : 1) * sizeof *out->train);
    out->valid = malloc((cnt[1] ? cnt[1] : 1) * sizeof *out->valid);
    out->test = malloc((cnt[2] ? cnt[2] : 1) * sizeof *out->test);
    if (!out->train || !out->valid || !out->test) {
        free(part);
        mp_split_free(out);
        return mp_error_set(err, MP_ENOMEM, "split: out of memory for %zu events", ds->n_events);
    }
    mp_interaction *dst[3] = {out->train, out->valid, out->test};
    size_t pos[3] = {0, 0, 0};
    for (size_t i = 0; i < ds->n_events; i++) dst[part[i]][pos[part[i]]++] = ds->events[i];
    out->n_train = cnt[0];
    out->n_valid = cnt[1];
    out->n_test = cnt[2];
    free(part);
    return MP_OK;
}

int mp_split_merge(const mp_interaction *a, size_t na, const mp_interaction *b, size_t nb, mp_interaction **out,
                   size_t *n_out, mp_error *err) {
    *out = NULL;
    *n_out = 0;
    mp_interaction *m = malloc((na + nb ? na + nb : 1) * sizeof *m);
    if (!m) return mp_error_set(err, MP_ENOMEM, "split: out of memory merging %zu events", na + nb);
    size_t i = 0, j = 0, o = 0;
    while (i < na && j < nb) {
        int take_b = b[j].user < a[i].user || (b[j].user == a[i].user && b[j].ts < a[i].ts);
        m[o++] = take_b ? b[j++] : a[i++];
    }
    while (i < na) m[o++] = a[i++];
    while (j < nb) m[o++] = b[j++];
    *out = m;
    *n_out = o;
    return MP_OK;
}

int mp_split_user_tail(const mp_interaction *ev, size_t n, double share, mp_interaction **train, size_t *n_train,
                       mp_interaction **valid, size_t *n_valid, mp_error *err) {
    *train = *valid = NULL;
    *n_train = *n_valid = 0;
    if (!(share > 0 && share < 1))
        return mp_error_set(err, MP_EINVAL, "validation share must be between 0 and 1 (exclusive), got %g", share);
    mp_interaction *tr = malloc((n ? n : 1) * sizeof *tr), *va = malloc((n ? n : 1) * sizeof *va);
    if (!tr || !va) {
        free(tr);
        free(va);
        return mp_error_set(err, MP_ENOMEM, "split: out of memory for %zu events", n);
    }
    size_t nt = 0, nv = 0;
    for (size_t b = 0; b < n;) {
        size_t e = b;
        while (e < n && ev[e].user == ev[b].user) e++;
        size_t m = e - b;
        uint64_t tail = round_half_even(share * (double)m);
        if (tail > m - 1) tail = m - 1;
        for (size_t i = b; i < e; i++) {
            if (i < e - tail) tr[nt++] = ev[i];
            else va[nv++] = ev[i];
        }
        b = e;
    }
    *train = tr;
    *valid = va;
    *n_train = nt;
    *n_valid = nv;
    return MP_OK;
}
