/* src/data/dataset.c: the in-memory training view of a store (mp_dataset), event weighting and the CSR
 * interaction matrices. Everything here is linear in the number of events: events are ordered by counting sort
 * on the user (then a stable merge sort by ts only inside users whose events are out of order), and matrices are
 * built by two counting-sort passes (by item, then by user) so no global comparison sort is ever run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/buf.h"
#include "magpie/dataset.h"
#include "magpie/strmap.h"

/* ---------------------------------------------------------------------------------------------------------- */
/* Sorting events by (user, ts, original order)                                                                */

static void merge_by_ts(mp_interaction *a, mp_interaction *tmp, size_t n) {
    if (n < 2) return;
    if (n <= 16) { /* stable insertion sort */
        for (size_t i = 1; i < n; i++) {
            mp_interaction x = a[i];
            size_t j = i;
            while (j > 0 && a[j - 1].ts > x.ts) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = x;
        }
        return;
    }
    size_t h = n / 2;
    merge_by_ts(a, tmp, h);
    merge_by_ts(a + h, tmp, n - h);
    if (a[h - 1].ts <= a[h].ts) return;
    memcpy(tmp, a, h * sizeof *a);
    size_t i = 0, j = h, o = 0;
    while (i < h && j < n) a[o++] = (a[j].ts < tmp[i].ts) ? a[j++] : tmp[i++];
    while (i < h) a[o++] = tmp[i++];
}

/* Puts the events in (user, ts, original order) into ds->events and fills ds->user_ptr[n_users + 1].
 * src == NULL: the events are already in ds->events (possibly unsorted); otherwise ds->events has room for
 * ds->n_events and src holds them. Users must be < n_users. Store scans arrive sorted, so the common case is one
 * counting pass; otherwise one stable scatter by user (no global comparison sort) and a merge sort by ts only
 * inside users whose events are out of order. */
static int order_events(mp_dataset *ds, const mp_interaction *src) {
    size_t n = ds->n_events;
    uint32_t n_users = ds->n_users;
    uint64_t *ptr = ds->user_ptr;
    const mp_interaction *in = src ? src : ds->events;
    memset(ptr, 0, ((size_t)n_users + 1) * sizeof *ptr);
    int by_user = 1;
    for (size_t i = 0; i < n; i++) {
        ptr[in[i].user + 1]++;
        if (i > 0 && in[i].user < in[i - 1].user) by_user = 0;
    }
    for (uint32_t u = 0; u < n_users; u++) ptr[u + 1] += ptr[u];
    if (by_user) {
        if (src && n) memcpy(ds->events, src, n * sizeof *src);
    } else {
        mp_interaction *dst = src ? ds->events : malloc((n ? n : 1) * sizeof *dst);
        if (!dst) return MP_ENOMEM;
        /* ptr[u] serves as the cursor of user u, then is shifted back to the start */
        for (size_t i = 0; i < n; i++) dst[ptr[in[i].user]++] = in[i];
        for (uint32_t u = n_users; u > 0; u--) ptr[u] = ptr[u - 1];
        ptr[0] = 0;
        if (!src) {
            free(ds->events);
            ds->events = dst;
        }
    }
    /* ts order inside each user */
    mp_interaction *ev = ds->events, *tmp = NULL;
    size_t tmp_cap = 0;
    for (uint32_t u = 0; u < n_users; u++) {
        size_t b = ptr[u], e = ptr[u + 1];
        int ok = 1;
        for (size_t i = b + 1; i < e && ok; i++)
            if (ev[i].ts < ev[i - 1].ts) ok = 0;
        if (ok) continue;
        if (e - b > tmp_cap) {
            free(tmp);
            tmp_cap = e - b;
            tmp = malloc(tmp_cap * sizeof *tmp);
            if (!tmp) return MP_ENOMEM;
        }
        merge_by_ts(ev + b, tmp, e - b);
    }
    free(tmp);
    return MP_OK;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Dataset                                                                                                     */

void mp_dataset_destroy(mp_dataset *ds) {
    if (!ds) return;
    free(ds->events);
    free(ds->user_ptr);
    if (ds->user_ext)
        for (uint32_t u = 0; u < ds->n_users; u++) free(ds->user_ext[u]);
    free(ds->user_ext);
    if (ds->item_ext)
        for (uint32_t i = 0; i < ds->n_items; i++) free(ds->item_ext[i]);
    free(ds->item_ext);
    if (ds->item_title)
        for (uint32_t i = 0; i < ds->n_items; i++) free(ds->item_title[i]);
    free(ds->item_title);
    if (ds->item_description)
        for (uint32_t i = 0; i < ds->n_items; i++) free(ds->item_description[i]);
    free(ds->item_description);
    if (ds->item_brand)
        for (uint32_t i = 0; i < ds->n_items; i++) free(ds->item_brand[i]);
    free(ds->item_brand);
    free(ds->item_price);
    free(ds->item_category);
    if (ds->category_names)
        for (uint32_t c = 0; c < ds->n_categories; c++) free(ds->category_names[c]);
    free(ds->category_names);
    free(ds->item_available);
    free(ds);
}

/* Allocates the per-user and per-item arrays for the given bounds (ext ids NULL, category 0, available 1) and
 * orders the events (see order_events for `src`). */
static int finish_dataset(mp_dataset *ds, const mp_interaction *src, mp_error *err) {
    uint32_t nu = ds->n_users, ni = ds->n_items;
    ds->user_ptr = malloc(((size_t)nu + 1) * sizeof *ds->user_ptr);
    if (!ds->user_ext) ds->user_ext = calloc(nu ? nu : 1, sizeof *ds->user_ext);
    if (!ds->item_ext) ds->item_ext = calloc(ni ? ni : 1, sizeof *ds->item_ext);
    if (!ds->item_title) ds->item_title = calloc(ni ? ni : 1, sizeof *ds->item_title);
    if (!ds->item_category) ds->item_category = calloc(ni ? ni : 1, sizeof *ds->item_category);
    if (!ds->item_description) ds->item_description = calloc(ni ? ni : 1, sizeof *ds->item_description);
    if (!ds->item_brand) ds->item_brand = calloc(ni ? ni : 1, sizeof *ds->item_brand);
    if (!ds->item_price) {
        ds->item_price = malloc((ni ? ni : 1) * sizeof *ds->item_price);
        if (ds->item_price)
            for (uint32_t i = 0; i < ni; i++) ds->item_price[i] = NAN;
    }
    if (!ds->item_available) {
        ds->item_available = malloc(ni ? ni : 1);
        if (ds->item_available) memset(ds->item_available, 1, ni);
    }
    if (!ds->category_names) {
        ds->category_names = calloc(1, sizeof *ds->category_names);
        if (ds->category_names) {
            ds->category_names[0] = strdup("(none)");
            ds->n_categories = ds->category_names[0] ? 1 : 0;
        }
    }
    if (!ds->user_ptr || !ds->user_ext || !ds->item_ext || !ds->item_title || !ds->item_category ||
        !ds->item_description || !ds->item_brand || !ds->item_price || !ds->item_available || !ds->category_names ||
        ds->n_categories == 0)
        return mp_error_set(err, MP_ENOMEM, "dataset: out of memory for %u users and %u items", nu, ni);
    if (order_events(ds, src) != MP_OK)
        return mp_error_set(err, MP_ENOMEM, "dataset: out of memory sorting %zu events", ds->n_events);
    ds->ts_min = ds->ts_max = 0;
    for (size_t i = 0; i < ds->n_events; i++) {
        int64_t t = ds->events[i].ts;
        if (i == 0 || t < ds->ts_min) ds->ts_min = t;
        if (i == 0 || t > ds->ts_max) ds->ts_max = t;
    }
    return MP_OK;
}

int mp_dataset_from_interactions(mp_dataset **out, uint32_t n_users, uint32_t n_items, const mp_interaction *events,
                                 size_t n_events, mp_error *err) {
    *out = NULL;
    for (size_t i = 0; i < n_events; i++) {
        if (events[i].user >= n_users)
            return mp_error_set(err, MP_EINVAL, "event %zu: user %u out of range (n_users = %u)", i, events[i].user,
                                n_users);
        if (events[i].item >= n_items)
            return mp_error_set(err, MP_EINVAL, "event %zu: item %u out of range (n_items = %u)", i, events[i].item,
                                n_items);
        if (events[i].type >= MP_EV_NTYPES)
            return mp_error_set(err, MP_EINVAL, "event %zu: type %u is not an event type", i, events[i].type);
    }
    mp_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return mp_error_set(err, MP_ENOMEM, "dataset: out of memory");
    ds->n_users = n_users;
    ds->n_items = n_items;
    ds->n_events = n_events;
    ds->events = malloc((n_events ? n_events : 1) * sizeof *ds->events);
    if (!ds->events) {
        mp_dataset_destroy(ds);
        return mp_error_set(err, MP_ENOMEM, "dataset: out of memory for %zu events", n_events);
    }
    int rc = finish_dataset(ds, events, err);
    if (rc != MP_OK) {
        mp_dataset_destroy(ds);
        return rc;
    }
    *out = ds;
    return MP_OK;
}

/* Loading from the store: events first (to learn the id bounds), then items and users. */
typedef struct load_ctx {
    mp_dataset *ds;
    size_t cap;
    uint32_t max_user, max_item; /* one past the largest id seen */
    mp_strmap *cats;             /* category path -> index (0 = "(none)") */
    int rc;
    const mp_progress *progress;
    mp_review_grader grader; /* or NULL */
    void *grader_state;
    char msg[256];
} load_ctx;

static int load_event_cb(void *vctx, const mp_event_row *e) {
    load_ctx *c = vctx;
    mp_dataset *ds = c->ds;
    if (e->type >= MP_EV_NTYPES) {
        snprintf(c->msg, sizeof c->msg, "stored event of user %u has unknown type code %u", e->user, e->type);
        c->rc = MP_ECORRUPT;
        return 1;
    }
    if (mp_grow((void **)&ds->events, &c->cap, ds->n_events + 1, sizeof *ds->events) != MP_OK) {
        snprintf(c->msg, sizeof c->msg, "out of memory after %zu events", ds->n_events);
        c->rc = MP_ENOMEM;
        return 1;
    }
    mp_interaction *x = &ds->events[ds->n_events++];
    memset(x, 0, sizeof *x);
    x->user = e->user;
    x->item = e->item;
    x->ts = e->ts;
    x->type = e->type;
    x->has_value = e->has_value ? 1 : 0;
    x->value = e->has_value ? (float)e->value : 0.0f;
    if (c->grader && e->text.len && (e->type == MP_EV_REVIEW || e->type == MP_EV_RATING)) {
        double g;
        if (c->grader(c->grader_state, e->text.ptr, e->text.len, &g) == MP_OK) x->grade = mp_interaction_grade(g);
        /* text the grader cannot read (invalid UTF-8) keeps the plain weight */
    }
    if (e->user >= c->max_user) c->max_user = e->user + 1;
    if (e->item >= c->max_item) c->max_item = e->item + 1;
    if ((ds->n_events & 0xFFFF) == 0) mp_progress_report(c->progress, "load", ds->n_events, 0);
    return 0;
}

static char *dup_slice(mp_str s) {
    char *p = malloc(s.len + 1);
    if (!p) return NULL;
    if (s.len) memcpy(p, s.ptr, s.len);
    p[s.len] = 0;
    return p;
}

/* Grows the item arrays so that index `id` exists; new slots are zero/NULL (available = 1). */
static int grow_items(mp_dataset *ds, uint32_t need) {
    if (need <= ds->n_items) return MP_OK;
    uint32_t old = ds->n_items;
    size_t n = need;
    char **ext = realloc(ds->item_ext, n * sizeof *ext);
    if (!ext) return MP_ENOMEM;
    ds->item_ext = ext;
    char **title = realloc(ds->item_title, n * sizeof *title);
    if (!title) return MP_ENOMEM;
    ds->item_title = title;
    uint32_t *cat = realloc(ds->item_category, n * sizeof *cat);
    if (!cat) return MP_ENOMEM;
    ds->item_category = cat;
    uint8_t *av = realloc(ds->item_available, n);
    if (!av) return MP_ENOMEM;
    ds->item_available = av;
    char **desc = realloc(ds->item_description, n * sizeof *desc);
    if (!desc) return MP_ENOMEM;
    ds->item_description = desc;
    char **brand = realloc(ds->item_brand, n * sizeof *brand);
    if (!brand) return MP_ENOMEM;
    ds->item_brand = brand;
    double *price = realloc(ds->item_price, n * sizeof *price);
    if (!price) return MP_ENOMEM;
    ds->item_price = price;
    for (size_t i = old; i < n; i++) {
        desc[i] = NULL;
        brand[i] = NULL;
        price[i] = NAN;
        ext[i] = NULL;
        title[i] = NULL;
        cat[i] = 0;
        av[i] = 1;
    }
    ds->n_items = need;
    return MP_OK;
}

static int load_item_cb(void *vctx, uint32_t id, const mp_item *it) {
    load_ctx *c = vctx;
    mp_dataset *ds = c->ds;
    if (id == UINT32_MAX || grow_items(ds, id + 1) != MP_OK) goto oom;
    free(ds->item_ext[id]);
    free(ds->item_title[id]);
    ds->item_ext[id] = dup_slice(it->id);
    ds->item_title[id] = it->title.len ? dup_slice(it->title) : NULL;
    if (!ds->item_ext[id] || (it->title.len && !ds->item_title[id])) goto oom;
    free(ds->item_description[id]);
    free(ds->item_brand[id]);
    ds->item_description[id] = it->description.len ? dup_slice(it->description) : NULL;
    ds->item_brand[id] = it->brand.len ? dup_slice(it->brand) : NULL;
    if ((it->description.len && !ds->item_description[id]) || (it->brand.len && !ds->item_brand[id])) goto oom;
    ds->item_price[id] = it->has_price ? it->price : NAN;
    ds->item_available[id] = it->available ? 1 : 0;
    ds->item_category[id] = 0;
    if (it->category.len) {
        uint32_t cid;
        if (mp_strmap_intern(c->cats, it->category.ptr, it->category.len, &cid, NULL) != MP_OK) goto oom;
        ds->item_category[id] = cid;
    }
    return 0;
oom:
    snprintf(c->msg, sizeof c->msg, "out of memory loading item %u", id);
    c->rc = MP_ENOMEM;
    return 1;
}

static int load_user_cb(void *vctx, uint32_t id, const mp_user *u) {
    load_ctx *c = vctx;
    mp_dataset *ds = c->ds;
    if (id >= ds->n_users) {
        if (id == UINT32_MAX) goto oom;
        char **p = realloc(ds->user_ext, ((size_t)id + 1) * sizeof *p);
        if (!p) goto oom;
        for (size_t i = ds->n_users; i <= id; i++) p[i] = NULL;
        ds->user_ext = p;
        ds->n_users = id + 1;
    }
    free(ds->user_ext[id]);
    ds->user_ext[id] = dup_slice(u->id);
    if (!ds->user_ext[id]) goto oom;
    return 0;
oom:
    snprintf(c->msg, sizeof c->msg, "out of memory loading user %u", id);
    c->rc = MP_ENOMEM;
    return 1;
}

int mp_dataset_load(mp_dataset **out, mp_store *s, const mp_progress *progress, mp_error *err) {
    return mp_dataset_load_opts(out, s, NULL, progress, err);
}

int mp_dataset_load_opts(mp_dataset **out, mp_store *s, const mp_dataset_opts *opts, const mp_progress *progress,
                         mp_error *err) {
    *out = NULL;
    load_ctx c;
    memset(&c, 0, sizeof c);
    if (opts && opts->review_grader) {
        c.grader = opts->review_grader;
        c.grader_state = opts->review_grader_state;
    }
    mp_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return mp_error_set(err, MP_ENOMEM, "dataset: out of memory");
    c.ds = ds;
    c.progress = progress;
    int rc = MP_OK;
    if (mp_strmap_create(&c.cats, 64) != MP_OK) {
        rc = mp_error_set(err, MP_ENOMEM, "dataset: out of memory");
        goto fail;
    }
    uint32_t none_id;
    if (mp_strmap_intern(c.cats, "(none)", 6, &none_id, NULL) != MP_OK) {
        rc = mp_error_set(err, MP_ENOMEM, "dataset: out of memory");
        goto fail;
    }

    rc = mp_store_scan_events(s, load_event_cb, &c, err);
    if (c.rc) {
        rc = mp_error_set(err, c.rc, "loading events: %s", c.msg);
        goto fail;
    }
    if (rc != MP_OK) {
        mp_error_prefix(err, "loading events");
        goto fail;
    }
    mp_progress_report(progress, "load", ds->n_events, ds->n_events);

    ds->n_users = c.max_user;
    ds->user_ext = calloc(ds->n_users ? ds->n_users : 1, sizeof *ds->user_ext);
    if (!ds->user_ext || grow_items(ds, c.max_item) != MP_OK) {
        rc = mp_error_set(err, MP_ENOMEM, "dataset: out of memory for %u users and %u items", c.max_user,
                          c.max_item);
        goto fail;
    }
    if (!ds->item_ext) { /* no items at all: still allocate the arrays */
        ds->item_ext = calloc(1, sizeof *ds->item_ext);
        ds->item_title = calloc(1, sizeof *ds->item_title);
        ds->item_category = calloc(1, sizeof *ds->item_category);
        ds->item_available = calloc(1, 1);
    }

    rc = mp_store_scan_items(s, load_item_cb, &c, err);
    if (c.rc) {
        rc = mp_error_set(err, c.rc, "loading items: %s", c.msg);
        goto fail;
    }
    if (rc != MP_OK) {
        mp_error_prefix(err, "loading items");
        goto fail;
    }
    rc = mp_store_scan_users(s, load_user_cb, &c, err);
    if (c.rc) {
        rc = mp_error_set(err, c.rc, "loading users: %s", c.msg);
        goto fail;
    }
    if (rc != MP_OK) {
        mp_error_prefix(err, "loading users");
        goto fail;
    }

    /* categories: strmap ids are dense in insertion order, "(none)" first */
    size_t nc = mp_strmap_size(c.cats);
    ds->category_names = calloc(nc, sizeof *ds->category_names);
    if (!ds->category_names) {
        rc = mp_error_set(err, MP_ENOMEM, "dataset: out of memory");
        goto fail;
    }
    ds->n_categories = (uint32_t)nc;
    for (size_t i = 0; i < nc; i++) {
        ds->category_names[i] = strdup(mp_strmap_key(c.cats, (uint32_t)i, NULL));
        if (!ds->category_names[i]) {
            rc = mp_error_set(err, MP_ENOMEM, "dataset: out of memory");
            goto fail;
        }
    }
    mp_strmap_destroy(c.cats);
    c.cats = NULL;

    rc = finish_dataset(ds, NULL, err);
    if (rc != MP_OK) goto fail;
    *out = ds;
    return MP_OK;
fail:
    mp_strmap_destroy(c.cats);
    mp_dataset_destroy(ds);
    return rc;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Weighting                                                                                                   */

void mp_weighting_default(mp_weighting *w) {
    memset(w, 0, sizeof *w);
    for (int t = 0; t < MP_EV_NTYPES; t++) w->type_weight[t] = mp_event_type_default_weight(t);
}

int mp_weighting_parse(mp_weighting *w, const char *spec, mp_error *err) {
    if (!spec) return MP_OK;
    float tmpw[MP_EV_NTYPES];
    memcpy(tmpw, w->type_weight, sizeof tmpw);
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0) {
            p = end ? end + 1 : p + len;
            continue;
        }
        const char *eq = memchr(p, '=', len);
        if (!eq)
            return mp_error_set(err, MP_EINVAL, "weights: expected TYPE=WEIGHT, got \"%.*s\"", (int)len, p);
        mp_event_type t;
        if (mp_event_type_parse(p, (size_t)(eq - p), &t) != MP_OK) {
            char known[256] = "";
            for (int i = 0; i < MP_EV_NTYPES; i++) {
                strncat(known, mp_event_type_name(i), sizeof known - strlen(known) - 1);
                if (i + 1 < MP_EV_NTYPES) strncat(known, ", ", sizeof known - strlen(known) - 1);
            }
            return mp_error_set(err, MP_EINVAL, "weights: unknown event type \"%.*s\" (known: %s)", (int)(eq - p), p,
                                known);
        }
        char num[64];
        size_t nl = len - (size_t)(eq + 1 - p);
        if (nl == 0 || nl >= sizeof num)
            return mp_error_set(err, MP_EINVAL, "weights: type %s: expected a number after '='",
                                mp_event_type_name(t));
        memcpy(num, eq + 1, nl);
        num[nl] = 0;
        char *e;
        double v = strtod(num, &e);
        if (*e || !isfinite(v))
            return mp_error_set(err, MP_EINVAL, "weights: type %s: expected a number, got \"%s\"",
                                mp_event_type_name(t), num);
        tmpw[t] = (float)v;
        p = end ? end + 1 : p + len;
    }
    memcpy(w->type_weight, tmpw, sizeof tmpw);
    return MP_OK;
}

/* Weight of one event under w. Ages are clamped at 0 (events after `now` are not boosted). */
static inline double event_weight(const mp_weighting *w, const mp_interaction *e, double decay_rate) {
    double x = w->type_weight[e->type < MP_EV_NTYPES ? e->type : 0];
    if (e->grade) x *= e->grade / 32767.0;
    if (decay_rate > 0) {
        double age = (double)(w->now - e->ts);
        if (age > 0) x *= exp2(-age * decay_rate);
    }
    return x;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* CSR                                                                                                         */

void mp_csr_free(mp_csr *m) {
    if (!m) return;
    free(m->ptr);
    free(m->idx);
    free(m->val);
    m->ptr = NULL;
    m->idx = NULL;
    m->val = NULL;
}

int mp_csr_build(mp_csr *out, const mp_interaction *events, size_t n_events, uint32_t n_users, uint32_t n_items,
                 const mp_weighting *w, mp_error *err) {
    memset(out, 0, sizeof *out);
    mp_weighting defw;
    if (!w) {
        mp_weighting_default(&defw);
        w = &defw;
    }
    for (size_t i = 0; i < n_events; i++)
        if (events[i].user >= n_users || events[i].item >= n_items)
            return mp_error_set(err, MP_EINVAL, "csr: event %zu (user %u, item %u) outside %u x %u", i,
                                events[i].user, events[i].item, n_users, n_items);
    double decay_rate = w->half_life_days > 0 ? 1.0 / (w->half_life_days * 86400.0) : 0.0;
    size_t n = n_events;
    uint64_t *iptr = calloc((size_t)n_items + 1, sizeof *iptr);
    uint64_t *uptr = calloc((size_t)n_users + 1, sizeof *uptr);
    uint32_t *a_user = malloc((n ? n : 1) * sizeof *a_user);
    float *a_w = malloc((n ? n : 1) * sizeof *a_w); /* float halves the memory of 20M-event builds */
    uint32_t *b_item = malloc((n ? n : 1) * sizeof *b_item);
    float *b_w = malloc((n ? n : 1) * sizeof *b_w);
    if (!iptr || !uptr || !a_user || !a_w || !b_item || !b_w) {
        free(iptr);
        free(uptr);
        free(a_user);
        free(a_w);
        free(b_item);
        free(b_w);
        return mp_error_set(err, MP_ENOMEM, "csr: out of memory for %zu events", n);
    }
    /* pass 1: bucket by item (stable) */
    for (size_t i = 0; i < n; i++) iptr[events[i].item + 1]++;
    for (uint32_t i = 0; i < n_items; i++) iptr[i + 1] += iptr[i];
    for (size_t i = 0; i < n; i++) {
        uint64_t p = iptr[events[i].item]++;
        a_user[p] = events[i].user;
        a_w[p] = (float)event_weight(w, &events[i], decay_rate);
        uptr[events[i].user + 1]++;
    }
    /* iptr[i] is now the end of bucket i = start of bucket i+1 */
    for (uint32_t u = 0; u < n_users; u++) uptr[u + 1] += uptr[u];
    /* pass 2: bucket by user, visiting items in ascending order -> rows sorted by item, duplicates adjacent */
    uint64_t start = 0;
    for (uint32_t it = 0; it < n_items; it++) {
        uint64_t end = iptr[it];
        for (uint64_t p = start; p < end; p++) {
            uint64_t q = uptr[a_user[p]]++;
            b_item[q] = it;
            b_w[q] = a_w[p];
        }
        start = end;
    }
    free(a_user);
    free(a_w);
    free(iptr);
    /* uptr[u] is now the end of row u; compact: sum duplicates, drop totals <= 0 */
    uint64_t *ptr = malloc(((size_t)n_users + 1) * sizeof *ptr);
    uint32_t *idx = malloc((n ? n : 1) * sizeof *idx);
    float *val = malloc((n ? n : 1) * sizeof *val);
    if (!ptr || !idx || !val) {
        free(ptr);
        free(idx);
        free(val);
        free(uptr);
        free(b_item);
        free(b_w);
        return mp_error_set(err, MP_ENOMEM, "csr: out of memory for %zu events", n);
    }
    uint64_t o = 0, rs = 0;
    ptr[0] = 0;
    for (uint32_t u = 0; u < n_users; u++) {
        uint64_t re = uptr[u];
        uint64_t p = rs;
        while (p < re) {
            uint32_t it = b_item[p];
            double sum = 0;
            while (p < re && b_item[p] == it) sum += b_w[p++];
            if (sum > 0) {
                idx[o] = it;
                val[o] = w->binary ? 1.0f : (float)sum;
                o++;
            }
        }
        ptr[u + 1] = o;
        rs = re;
    }
    free(uptr);
    free(b_item);
    free(b_w);
    if (o < n && o > 0) { /* give back the slack; failure to shrink is harmless */
        uint32_t *i2 = realloc(idx, o * sizeof *i2);
        if (i2) idx = i2;
        float *v2 = realloc(val, o * sizeof *v2);
        if (v2) val = v2;
    }
    out->n_rows = n_users;
    out->n_cols = n_items;
    out->ptr = ptr;
    out->idx = idx;
    out->val = val;
    return MP_OK;
}

int mp_csr_transpose(mp_csr *out, const mp_csr *in, mp_error *err) {
    memset(out, 0, sizeof *out);
    uint64_t nnz = mp_csr_nnz(in);
    uint64_t *ptr = calloc((size_t)in->n_cols + 1, sizeof *ptr);
    uint32_t *idx = malloc((nnz ? nnz : 1) * sizeof *idx);
    float *val = malloc((nnz ? nnz : 1) * sizeof *val);
    if (!ptr || !idx || !val) {
        free(ptr);
        free(idx);
        free(val);
        return mp_error_set(err, MP_ENOMEM, "csr transpose: out of memory for %llu entries",
                            (unsigned long long)nnz);
    }
    for (uint64_t p = 0; p < nnz; p++) ptr[in->idx[p] + 1]++;
    for (uint32_t c = 0; c < in->n_cols; c++) ptr[c + 1] += ptr[c];
    /* scatter rows in ascending order so each output row has ascending column indices */
    uint64_t *pos = malloc(((size_t)in->n_cols + 1) * sizeof *pos);
    if (!pos) {
        free(ptr);
        free(idx);
        free(val);
        return mp_error_set(err, MP_ENOMEM, "csr transpose: out of memory");
    }
    memcpy(pos, ptr, ((size_t)in->n_cols + 1) * sizeof *pos);
    for (uint32_t r = 0; r < in->n_rows; r++) {
        for (uint64_t p = in->ptr[r]; p < in->ptr[r + 1]; p++) {
            uint64_t q = pos[in->idx[p]]++;
            idx[q] = r;
            val[q] = in->val[p];
        }
    }
    free(pos);
    out->n_rows = in->n_cols;
    out->n_cols = in->n_rows;
    out->ptr = ptr;
    out->idx = idx;
    out->val = val;
    return MP_OK;
}
