/* src/live/write.c: writes to a live recommender (events, items, users, availability, forgetting).
 *
 * Every write runs under write_mu and has three steps:
 *   1. validate everything and resolve external ids (ids new to the store get the next internal ids, in order);
 *   2. one store transaction, committed before anything else happens (on any error it is rolled back and memory is
 *      untouched, so the call changed nothing);
 *   3. apply the committed result to memory under the catalog's write lock (histories, catalog, statistics,
 *      popularity, filters), then to the model under its own write lock (update / forget_user).
 * Exact duplicate events (user, item, type, ts) are detected by the store itself (INSERT OR IGNORE on the events
 * key), both against stored events and within the batch; only inserted events reach memory and the model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live/live_internal.h"

/* Resolves an external id: known to `map`, or new in this batch (`pending`, ids from `bound` on, in order). */
static int resolve_id(const mp_strmap *map, mp_strmap *pending, uint32_t bound, mp_str id, uint32_t *out) {
    uint32_t v = mp_strmap_get(map, id.ptr, id.len);
    if (v != MP_STRMAP_NONE) {
        *out = v;
        return MP_OK;
    }
    uint32_t p;
    if (mp_strmap_intern(pending, id.ptr, id.len, &p, NULL)) return MP_ENOMEM;
    if ((uint64_t)bound + p >= MP_STRMAP_NONE) return MP_ERANGE;
    *out = bound + p;
    return MP_OK;
}

static int resolve_fail(int rc, const char *what, mp_error *err) {
    if (rc == MP_ERANGE) return mp_error_set(err, MP_ERANGE, "live: too many %s (internal ids exhausted)", what);
    return mp_error_set(err, MP_ENOMEM, "live: out of memory resolving %s ids", what);
}

static int users_reserve(mp_live *l, uint32_t n) {
    if (n <= l->users_cap) return MP_OK;
    size_t cap = (size_t)l->users_cap * 2;
    if (cap < n) cap = n;
    if (cap > UINT32_MAX) cap = UINT32_MAX;
    live_hist *h = realloc(l->hist, cap * sizeof *h);
    if (!h) return MP_ENOMEM;
    memset(h + l->users_cap, 0, (cap - l->users_cap) * sizeof *h);
    l->hist = h;
    uint8_t *st = realloc(l->user_state, cap);
    if (!st) return MP_ENOMEM;
    memset(st + l->users_cap, 0, cap - l->users_cap);
    l->user_state = st;
    l->users_cap = (uint32_t)cap;
    return MP_OK;
}

/* Adds users new in this batch (pending ids 0.. -> internal ids from n_users) to the catalog. Caller holds cat. */
static int add_new_users(mp_live *l, const mp_strmap *pending) {
    uint32_t n_new = (uint32_t)mp_strmap_size(pending);
    if (n_new == 0) return MP_OK;
    if (users_reserve(l, l->n_users + n_new)) return MP_ENOMEM;
    for (uint32_t p = 0; p < n_new; p++) {
        size_t len;
        const char *key = mp_strmap_key(pending, p, &len);
        if (mp_strmap_put(l->users, key, len, l->n_users + p)) return MP_ENOMEM;
        l->user_state[l->n_users + p] = LIVE_USER_LIVE;
        l->n_users_live++;
    }
    l->n_users += n_new;
    return MP_OK;
}

/* The same for items (no title, no category, available). */
static int add_new_items(mp_live *l, const mp_strmap *pending) {
    uint32_t n_new = (uint32_t)mp_strmap_size(pending);
    if (n_new == 0) return MP_OK;
    if (live_items_reserve(l, l->n_items + n_new)) return MP_ENOMEM;
    for (uint32_t p = 0; p < n_new; p++) {
        size_t len;
        const char *key = mp_strmap_key(pending, p, &len);
        uint32_t id = l->n_items + p;
        if (mp_strmap_put(l->items, key, len, id)) return MP_ENOMEM;
        l->title[id] = NULL;
        l->item_cat[id] = 0;
        l->avail[id] = 1;
        l->pop[id] = 0;
        l->price[id] = NAN;
        l->n_available++;
        l->n_items_live++;
        live_filters_item_changed(l, id); /* no category: passes no filter, but keeps the masks exact */
    }
    l->n_items += n_new;
    return MP_OK;
}

/* Inserts e into the user's history keeping ts order (equal ts: after the existing ones). */
static int hist_append(mp_live *l, uint32_t u, const mp_interaction *e) {
    live_hist *h = &l->hist[u];
    if (h->cap == 0 || h->n == h->cap) {
        if (h->n == UINT32_MAX) return MP_ERANGE;
        uint64_t want = h->n < 4 ? 8 : (uint64_t)h->n * 2;
        uint32_t cap = want > UINT32_MAX ? UINT32_MAX : (uint32_t)want;
        mp_interaction *ev = h->cap ? realloc(h->ev, (size_t)cap * sizeof *ev) : malloc((size_t)cap * sizeof *ev);
        if (!ev) return MP_ENOMEM;
        if (!h->cap && h->n) memcpy(ev, h->ev, h->n * sizeof *ev); /* leave the shared block */
        h->ev = ev;
        h->cap = cap;
    }
    uint32_t p = h->n;
    while (p > 0 && h->ev[p - 1].ts > e->ts) {
        h->ev[p] = h->ev[p - 1];
        p--;
    }
    h->ev[p] = *e;
    h->n++;
    return MP_OK;
}

static void log_append(mp_live *l, const mp_interaction *ev, size_t n, int64_t at_ns) {
    if (n == 0) return;
    if (l->n_log + n > LIVE_LOG_MAX) { /* keep the newer half */
        size_t drop = l->n_log / 2;
        if (l->n_log + n - drop > LIVE_LOG_MAX) drop = l->n_log + n - LIVE_LOG_MAX;
        if (drop > l->n_log) drop = l->n_log;
        memmove(l->log, l->log + drop, (l->n_log - drop) * sizeof *l->log);
        l->n_log -= drop;
        l->log_first_seq += drop;
    }
    /* out of memory: the events are stored and served, only a later reload's catch-up will not see them */
    if (mp_grow((void **)&l->log, &l->cap_log, l->n_log + n, sizeof *l->log)) return;
    for (size_t k = 0; k < n; k++) {
        l->log[l->n_log].e = ev[k];
        l->log[l->n_log].at_ns = at_ns;
        l->n_log++;
    }
}

static int cmp_event_user(const void *a, const void *b) {
    const mp_interaction *x = a, *y = b;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

/* Teaches the current model the new events (update) under its write lock, one user at a time: an update re-solves
 * each touched user (ALS: a k x k system), so one lock hold per user keeps readers waiting for one solve at most,
 * not for the whole batch. Readers in between see a consistent model (every user is either before or after). */
static void model_update(mp_live *l, const mp_interaction *ev, size_t n) {
    if (n == 0) return;
    live_holder *h = live_holder_acquire(l);
    if (h->model) {
        mp_interaction *byuser = malloc(n * sizeof *byuser);
        if (byuser) {
            memcpy(byuser, ev, n * sizeof *byuser);
            qsort(byuser, n, sizeof *byuser, cmp_event_user);
        }
        const mp_interaction *src = byuser ? byuser : ev;
        for (size_t i = 0; i < n;) {
            size_t j = i + 1;
            if (byuser)
                while (j < n && src[j].user == src[i].user) j++;
            else
                j = n; /* out of memory for the copy: one update of the whole batch */
            pthread_rwlock_wrlock(&h->lock);
            /* An update failure (out of memory, a model without update()) leaves the model as it was: the events
             * are committed and served (histories, popularity); the model learns them at its next training. */
            mp_model_update(h->model, src + i, j - i, NULL);
            pthread_rwlock_unlock(&h->lock);
            i = j;
        }
        free(byuser);
    }
    live_holder_release(l, h);
}

static int after_commit_oom(mp_error *err, const char *what) {
    return mp_error_set(err, MP_ENOMEM,
                        "live: the %s were committed to the store, but memory ran out applying them; they will be "
                        "served after a restart",
                        what);
}

static int check_text(mp_str s) { return s.len == 0 || mp_utf8_valid(s.ptr, s.len, NULL); }

/* Live events may be stamped at most this far ahead of the server's clock (clock skew); a later one is a client
 * bug (milliseconds, a wrong year) and would decay every other item's live popularity to nothing. */
#define LIVE_MAX_FUTURE_S (24 * 3600)

static int check_event(const mp_event *e, size_t i, int64_t now, mp_error *err) {
    const char *why;
    if (e->ts > now + LIVE_MAX_FUTURE_S)
        return mp_error_set(err, MP_EINVAL,
                            "events[%zu]: field `ts`: %lld is %.1f days after the server's clock (%lld); a live event "
                            "may be at most 1 day ahead (seconds since 1970, UTC)",
                            i, (long long)e->ts, (double)(e->ts - now) / 86400.0, (long long)now);
    if ((why = live_id_problem(e->user.ptr, e->user.len)))
        return mp_error_set(err, MP_EINVAL, "events[%zu]: field `user`: %s", i, why);
    if ((why = live_id_problem(e->item.ptr, e->item.len)))
        return mp_error_set(err, MP_EINVAL, "events[%zu]: field `item`: %s", i, why);
    if ((unsigned)e->type >= MP_EV_NTYPES)
        return mp_error_set(err, MP_EINVAL, "events[%zu]: field `type`: %d is not an event type", i, (int)e->type);
    if (e->has_value && !isfinite(e->value))
        return mp_error_set(err, MP_EINVAL, "events[%zu]: field `value`: must be a finite number", i);
    if (!check_text(e->text)) return mp_error_set(err, MP_EINVAL, "events[%zu]: field `text`: not valid UTF-8", i);
    if (!check_text(e->session))
        return mp_error_set(err, MP_EINVAL, "events[%zu]: field `session`: not valid UTF-8", i);
    return MP_OK;
}

int mp_live_add_events(mp_live *l, const mp_event *events, size_t n, mp_live_write_result *res, mp_error *err) {
    mp_live_write_result r = {0};
    if (res) *res = r;
    if (n == 0) return MP_OK;
    if (!events) return mp_error_set(err, MP_EINVAL, "live: add_events: events is NULL");
    int64_t now = live_now_ns() / 1000000000;
    for (size_t i = 0; i < n; i++) {
        int rc = check_event(&events[i], i, now, err);
        if (rc) return rc;
    }
    uint32_t *uid = malloc(n * sizeof *uid), *iid = malloc(n * sizeof *iid);
    mp_interaction *fresh = malloc(n * sizeof *fresh);
    mp_strmap *new_users = NULL, *new_items = NULL;
    int rc = MP_OK;
    if (!uid || !iid || !fresh || mp_strmap_create(&new_users, 16) || mp_strmap_create(&new_items, 16)) {
        rc = mp_error_set(err, MP_ENOMEM, "live: out of memory for %zu events", n);
        goto done;
    }
    pthread_mutex_lock(&l->write_mu);
    for (size_t i = 0; i < n && rc == MP_OK; i++) {
        if ((rc = resolve_id(l->users, new_users, l->n_users, events[i].user, &uid[i])))
            rc = resolve_fail(rc, "user", err);
        else if ((rc = resolve_id(l->items, new_items, l->n_items, events[i].item, &iid[i])))
            rc = resolve_fail(rc, "item", err);
        else if (uid[i] < l->n_users && l->user_state[uid[i]] == LIVE_USER_FORGOTTEN) /* see forget_user's ENOMEM */
            rc = mp_error_set(err, MP_ENOMEM, "events[%zu]: user \"%.*s\" was just forgotten and its id cannot be "
                              "used again before a restart", i, (int)events[i].user.len, events[i].user.ptr);
    }
    size_t n_fresh = 0;
    if (rc == MP_OK) rc = mp_store_begin(l->store, err);
    if (rc == MP_OK) {
        for (uint32_t p = 0; rc == MP_OK && p < mp_strmap_size(new_users); p++) {
            mp_user u = {.id = {NULL, 0}};
            u.id.ptr = mp_strmap_key(new_users, p, &u.id.len);
            rc = mp_store_put_user(l->store, l->n_users + p, &u, err);
        }
        for (uint32_t p = 0; rc == MP_OK && p < mp_strmap_size(new_items); p++) {
            mp_item it = {.available = 1};
            it.id.ptr = mp_strmap_key(new_items, p, &it.id.len);
            rc = mp_store_put_item(l->store, l->n_items + p, &it, err);
        }
        for (size_t i = 0; rc == MP_OK && i < n; i++) {
            const mp_event *e = &events[i];
            mp_event_row row = {.user = uid[i],
                                .item = iid[i],
                                .type = (uint8_t)e->type,
                                .ts = e->ts,
                                .value = e->value,
                                .has_value = e->has_value,
                                .text = e->text,
                                .session = e->session};
            int inserted = 0;
            rc = mp_store_add_event(l->store, &row, &inserted, err);
            if (rc == MP_OK && inserted) {
                mp_interaction *x = &fresh[n_fresh++];
                memset(x, 0, sizeof *x);
                x->user = uid[i];
                x->item = iid[i];
                x->ts = e->ts;
                x->type = (uint8_t)e->type;
                x->has_value = e->has_value ? 1 : 0;
                x->value = e->has_value ? (float)e->value : 0.0f;
            }
        }
        if (rc == MP_OK) rc = mp_store_commit(l->store, err);
        if (rc != MP_OK) mp_store_rollback(l->store, NULL);
    }
    if (rc == MP_OK) {
        r.accepted = n;
        r.inserted = n_fresh;
        r.duplicates = n - n_fresh;
        r.new_users = mp_strmap_size(new_users);
        r.new_items = mp_strmap_size(new_items);
        int mrc = MP_OK;
        pthread_rwlock_wrlock(&l->cat);
        if (add_new_users(l, new_users) || add_new_items(l, new_items)) mrc = MP_ENOMEM;
        for (size_t k = 0; mrc == MP_OK && k < n_fresh; k++) {
            const mp_interaction *e = &fresh[k];
            if ((mrc = hist_append(l, e->user, e))) break;
            if (l->n_events == 0 || e->ts < l->ts_min) l->ts_min = e->ts;
            if (l->n_events == 0 || e->ts > l->ts_max) l->ts_max = e->ts;
            l->n_events++;
            l->per_type[e->type]++;
            live_pop_add(l, e);
        }
        l->events_ingested += n;
        l->events_duplicates += n - n_fresh;
        pthread_rwlock_unlock(&l->cat);
        model_update(l, fresh, n_fresh);
        log_append(l, fresh, n_fresh, live_now_ns());
        if (mrc) rc = after_commit_oom(err, "events");
    }
    pthread_mutex_unlock(&l->write_mu);
done:
    if (res) *res = r;
    mp_strmap_destroy(new_users);
    mp_strmap_destroy(new_items);
    free(uid);
    free(iid);
    free(fresh);
    return rc;
}

static char *dup_slice(mp_str s) {
    if (s.len == 0) return NULL;
    char *p = malloc(s.len + 1);
    if (!p) return NULL;
    memcpy(p, s.ptr, s.len);
    p[s.len] = 0;
    return p;
}

/* A record with only an id (and available = 1): the store keeps an existing item's attributes for it. */
static int item_is_bare(const mp_item *it) {
    return !it->title.len && !it->description.len && !it->category.len && !it->brand.len && !it->has_price &&
           !it->attrs.len && it->available;
}

/* Sets item i's availability in memory (cat held). */
static void set_avail(mp_live *l, uint32_t i, int available) {
    uint8_t a = available ? 1 : 0;
    if (l->avail[i] == a) return;
    l->avail[i] = a;
    if (a) l->n_available++;
    else l->n_available--;
    live_filters_item_changed(l, i);
}

int mp_live_put_items(mp_live *l, const mp_item *items, size_t n, mp_live_write_result *res, mp_error *err) {
    mp_live_write_result r = {0};
    if (res) *res = r;
    if (n == 0) return MP_OK;
    if (!items) return mp_error_set(err, MP_EINVAL, "live: put_items: items is NULL");
    for (size_t i = 0; i < n; i++) {
        const char *why = live_id_problem(items[i].id.ptr, items[i].id.len);
        if (why) return mp_error_set(err, MP_EINVAL, "items[%zu]: field `id`: %s", i, why);
        if (!check_text(items[i].title) || !check_text(items[i].category) || !check_text(items[i].description) ||
            !check_text(items[i].brand) || !check_text(items[i].attrs))
            return mp_error_set(err, MP_EINVAL, "items[%zu]: text is not valid UTF-8", i);
        if (items[i].has_price && !(isfinite(items[i].price) && items[i].price >= 0))
            return mp_error_set(err, MP_EINVAL, "items[%zu]: field `price`: must be a finite number >= 0", i);
    }
    uint32_t *iid = malloc(n * sizeof *iid), *written = malloc(n * sizeof *written);
    size_t n_written = 0;
    mp_strmap *new_items = NULL;
    int rc = MP_OK;
    if (!iid || !written || mp_strmap_create(&new_items, 16)) {
        rc = mp_error_set(err, MP_ENOMEM, "live: out of memory for %zu items", n);
        goto done;
    }
    pthread_mutex_lock(&l->write_mu);
    const uint32_t bound = l->n_items;
    for (size_t i = 0; i < n && rc == MP_OK; i++)
        if ((rc = resolve_id(l->items, new_items, bound, items[i].id, &iid[i]))) rc = resolve_fail(rc, "item", err);
    if (rc == MP_OK) rc = mp_store_begin(l->store, err);
    if (rc == MP_OK) {
        for (size_t i = 0; rc == MP_OK && i < n; i++) {
            rc = mp_store_put_item(l->store, iid[i], &items[i], err);
            if (rc == MP_OK && items[i].embedding_dim)
                rc = mp_store_put_embedding(l->store, MP_KIND_ITEMS, iid[i], MP_EMBEDDING_SOURCE_USER,
                                            items[i].embedding, items[i].embedding_dim, 0, err);
            /* a bare record of a known, unavailable item means "available again" (the store's bare put keeps
             * attributes, availability included) */
            if (rc == MP_OK && iid[i] < bound && item_is_bare(&items[i]) && !l->avail[iid[i]])
                rc = mp_store_set_item_available(l->store, iid[i], 1, err);
        }
        if (rc == MP_OK) rc = mp_store_commit(l->store, err);
        if (rc != MP_OK) mp_store_rollback(l->store, NULL);
    }
    if (rc == MP_OK) {
        r.accepted = n;
        r.inserted = r.new_items = mp_strmap_size(new_items);
        int mrc = MP_OK, moved = 0;
        pthread_rwlock_wrlock(&l->cat);
        if (add_new_items(l, new_items)) mrc = MP_ENOMEM;
        for (size_t i = 0; mrc == MP_OK && i < n; i++) {
            const mp_item *it = &items[i];
            uint32_t id = iid[i];
            if (item_is_bare(it)) { /* attributes kept; new items already have the defaults */
                set_avail(l, id, 1);
                continue;
            }
            char *title = dup_slice(it->title);
            uint32_t cat = 0;
            if ((it->title.len && !title) || (it->category.len && live_cat_intern(l, it->category.ptr,
                                                                                  it->category.len, &cat))) {
                free(title);
                mrc = MP_ENOMEM;
                break;
            }
            char *old_title = l->title[id];
            l->title[id] = title;
            if (l->item_cat[id] != cat) {
                moved |= l->pop[id] > 0;
                l->item_cat[id] = cat;
                live_filters_item_changed(l, id);
            }
            set_avail(l, id, it->available);
            l->price[id] = it->has_price ? it->price : NAN;
            int trc = live_text_set_item(l, id, it, old_title);
            free(old_title);
            if (trc) {
                mrc = MP_ENOMEM;
                break;
            }
            written[n_written++] = id;
        }
        if (moved) live_pop_rebuild(l); /* an item left a category's top list */
        pthread_rwlock_unlock(&l->cat);
        if (mrc) rc = after_commit_oom(err, "items");
    }
    pthread_mutex_unlock(&l->write_mu);
    /* searchable by words already; now by meaning, and known to content-aware models */
    live_text_items_written(l, written, n_written);
done:
    if (res) *res = r;
    mp_strmap_destroy(new_items);
    free(iid);
    free(written);
    return rc;
}

int mp_live_put_users(mp_live *l, const mp_user *users, size_t n, mp_live_write_result *res, mp_error *err) {
    mp_live_write_result r = {0};
    if (res) *res = r;
    if (n == 0) return MP_OK;
    if (!users) return mp_error_set(err, MP_EINVAL, "live: put_users: users is NULL");
    for (size_t i = 0; i < n; i++) {
        const char *why = live_id_problem(users[i].id.ptr, users[i].id.len);
        if (why) return mp_error_set(err, MP_EINVAL, "users[%zu]: field `id`: %s", i, why);
        if (!check_text(users[i].attrs)) return mp_error_set(err, MP_EINVAL, "users[%zu]: field `attrs`: not valid UTF-8", i);
    }
    uint32_t *uid = malloc(n * sizeof *uid);
    mp_strmap *new_users = NULL;
    int rc = MP_OK;
    if (!uid || mp_strmap_create(&new_users, 16)) {
        rc = mp_error_set(err, MP_ENOMEM, "live: out of memory for %zu users", n);
        goto done;
    }
    pthread_mutex_lock(&l->write_mu);
    for (size_t i = 0; i < n && rc == MP_OK; i++)
        if ((rc = resolve_id(l->users, new_users, l->n_users, users[i].id, &uid[i]))) rc = resolve_fail(rc, "user", err);
    if (rc == MP_OK) rc = mp_store_begin(l->store, err);
    if (rc == MP_OK) {
        for (size_t i = 0; rc == MP_OK && i < n; i++) {
            rc = mp_store_put_user(l->store, uid[i], &users[i], err);
            if (rc == MP_OK && users[i].embedding_dim)
                rc = mp_store_put_embedding(l->store, MP_KIND_USERS, uid[i], MP_EMBEDDING_SOURCE_USER,
                                            users[i].embedding, users[i].embedding_dim, 0, err);
        }
        if (rc == MP_OK) rc = mp_store_commit(l->store, err);
        if (rc != MP_OK) mp_store_rollback(l->store, NULL);
    }
    if (rc == MP_OK) {
        r.accepted = n;
        r.inserted = r.new_users = mp_strmap_size(new_users);
        pthread_rwlock_wrlock(&l->cat);
        int mrc = add_new_users(l, new_users);
        for (size_t i = 0; mrc == MP_OK && i < n; i++) /* a record without attrs keeps the stored ones */
            if (users[i].attrs.len) mrc = live_profile_set(l, uid[i], users[i].attrs);
        pthread_rwlock_unlock(&l->cat);
        if (mrc) rc = after_commit_oom(err, "users");
    }
    pthread_mutex_unlock(&l->write_mu);
done:
    if (res) *res = r;
    mp_strmap_destroy(new_users);
    free(uid);
    return rc;
}

int mp_live_set_item_available(mp_live *l, const char *item, size_t len, int available, mp_error *err) {
    if (live_id_problem(item, len)) return mp_error_set(err, MP_ENOTFOUND, "unknown item \"%.*s\"", (int)len, item ? item : "");
    pthread_mutex_lock(&l->write_mu);
    uint32_t id = mp_strmap_get(l->items, item, len);
    int rc;
    if (id == MP_STRMAP_NONE) rc = mp_error_set(err, MP_ENOTFOUND, "unknown item \"%.*s\"", (int)len, item);
    else rc = mp_store_set_item_available(l->store, id, available, err);
    if (rc == MP_OK) {
        pthread_rwlock_wrlock(&l->cat);
        set_avail(l, id, available);
        pthread_rwlock_unlock(&l->cat);
    }
    pthread_mutex_unlock(&l->write_mu);
    return rc;
}

/* A copy of the users map in which `forgotten` is under its tombstone key (NULL when out of memory). */
static mp_strmap *users_map_forgetting(const mp_live *l, uint32_t forgotten) {
    mp_strmap *m;
    if (mp_strmap_create(&m, mp_strmap_size(l->users))) return NULL;
    for (uint32_t u = 0; u < l->n_users; u++) {
        char tomb[48];
        size_t len;
        const char *key;
        if (u == forgotten) {
            len = (size_t)snprintf(tomb, sizeof tomb, MP_STORE_TOMBSTONE_PREFIX "%u", u);
            key = tomb;
        } else if (!(key = mp_strmap_key(l->users, u, &len))) {
            continue;
        }
        if (mp_strmap_put(m, key, len, u)) {
            mp_strmap_destroy(m);
            return NULL;
        }
    }
    return m;
}

int mp_live_forget_user(mp_live *l, const char *user, size_t len, uint64_t *n_events, mp_error *err) {
    if (n_events) *n_events = 0;
    if (live_id_problem(user, len)) return mp_error_set(err, MP_ENOTFOUND, "unknown user \"%.*s\"", (int)len, user ? user : "");
    pthread_mutex_lock(&l->write_mu);
    uint32_t uid = mp_strmap_get(l->users, user, len);
    int rc = MP_OK;
    uint64_t n_del = 0;
    if (uid == MP_STRMAP_NONE || l->user_state[uid] != LIVE_USER_LIVE)
        rc = mp_error_set(err, MP_ENOTFOUND, "unknown user \"%.*s\"", (int)len, user);
    else
        rc = mp_store_forget_user(l->store, uid, &n_del, err);
    if (rc) {
        pthread_mutex_unlock(&l->write_mu);
        return rc;
    }
    /* The external id must map to nothing now (and may come back as a new user): the map has no removal, so it is
     * rebuilt with the tombstone key, off the catalog lock (only writers change the map, and we are the writer). */
    mp_strmap *fresh = users_map_forgetting(l, uid), *old = NULL;
    pthread_rwlock_wrlock(&l->cat);
    live_hist h = l->hist[uid];
    memset(&l->hist[uid], 0, sizeof l->hist[uid]);
    live_profile_set(l, uid, (mp_str){NULL, 0}); /* clearing never fails */
    for (uint32_t k = 0; k < h.n; k++) {
        l->n_events--;
        if (h.ev[k].type < MP_EV_NTYPES) l->per_type[h.ev[k].type]--;
        live_pop_sub(l, &h.ev[k]);
    }
    if (h.n) live_pop_rebuild(l);
    l->user_state[uid] = LIVE_USER_FORGOTTEN; /* also what makes lookups fail if the map could not be rebuilt */
    l->n_users_live--;
    l->users_forgotten++;
    if (fresh) {
        old = l->users;
        l->users = fresh;
    }
    pthread_rwlock_unlock(&l->cat);
    mp_strmap_destroy(old);
    live_holder *hd = live_holder_acquire(l);
    if (hd->model) {
        pthread_rwlock_wrlock(&hd->lock);
        mp_model_forget_user(hd->model, uid, h.ev, h.n, NULL); /* models without per-user state: a no-op */
        pthread_rwlock_unlock(&hd->lock);
    }
    live_holder_release(l, hd);
    for (size_t k = 0; k < l->n_log; k++) /* a later reload must not teach the user back to a model */
        if (l->log[k].e.user == uid) l->log[k].e.user = MP_NO_USER;
    if (mp_grow((void **)&l->forgot, &l->cap_forgot, l->n_forgot + 1, sizeof *l->forgot) == MP_OK)
        l->forgot[l->n_forgot++] = uid;
    if (h.cap) free(h.ev);
    pthread_mutex_unlock(&l->write_mu);
    if (n_events) *n_events = n_del;
    if (!fresh)
        return mp_error_set(err, MP_ENOMEM,
                            "live: user \"%.*s\" was forgotten in the store, but memory ran out updating the id map; "
                            "the id can only be used again after a restart",
                            (int)len, user);
    return MP_OK;
}
