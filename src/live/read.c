/* src/live/read.c: reads from a live recommender: recommend, similar, popular and history.
 *
 * A request holds the catalog's read lock for its whole duration (item ids, titles and the user's history stay
 * valid and consistent) and the model's read lock while the model ranks and explains. Buffers come from the
 * scratch pools, so the index path does no work and no allocation proportional to the catalog.
 *
 * Ranking for a user (or a session): the model ranks first (offset + n items). Latent-factor models with an index
 * ask it for offset + n + |exclusions| + a margin items among the allowed ones (available, in the category) and drop
 * the excluded ones (the history unless include_seen, and `exclude`); if fewer than needed remain, every item the
 * model covers is scored exactly. Other models score every item (one pooled buffer per request) and keep only
 * positive scores. What the model cannot fill is filled with live popular items (score 0, never above a model
 * item); a context the model cannot rank at all (no history, no usable vector, nothing scored) gets popular items
 * only, with fallback = 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "live/live_internal.h"
#include "magpie/topk.h"

#define REASON_MAX 512

void mp_live_list_free(mp_live_list *r) {
    if (!r) return;
    for (size_t k = 0; k < r->n; k++) {
        free(r->items[k].item);
        free(r->items[k].title);
        free(r->items[k].category);
        free(r->items[k].reason);
    }
    free(r->items);
    r->items = NULL;
    r->n = 0;
}

void mp_live_history_free(mp_live_history *h) {
    if (!h) return;
    for (size_t k = 0; k < h->n; k++) free(h->events[k].item);
    free(h->events);
    h->events = NULL;
    h->n = 0;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static size_t sort_unique(uint32_t *a, size_t n) {
    if (n < 2) return n;
    qsort(a, n, sizeof *a, cmp_u32);
    size_t m = 1;
    for (size_t i = 1; i < n; i++)
        if (a[i] != a[m - 1]) a[m++] = a[i];
    return m;
}

/* Room for n candidates (ids and scores). */
static int reserve_cand(live_scratch *sc, size_t n) {
    if (mp_grow((void **)&sc->ids, &sc->ids_cap, n + 1, sizeof *sc->ids) ||
        mp_grow((void **)&sc->cand, &sc->cand_cap, n + 1, sizeof *sc->cand))
        return MP_ENOMEM;
    return MP_OK;
}

static char *dup_str(const char *s, int *oom) {
    if (!s) return NULL;
    char *p = strdup(s);
    if (!p) *oom = 1;
    return p;
}

/* Copies the strings of item id into it. */
static int fill_item(const mp_live *l, mp_live_item *it, uint32_t id, float score) {
    int oom = 0;
    const char *ext = mp_strmap_key(l->items, id, NULL);
    it->item = dup_str(ext ? ext : "", &oom);
    it->title = dup_str(l->title[id], &oom);
    it->category = l->item_cat[id] ? dup_str(mp_strmap_key(l->cats, l->item_cat[id], NULL), &oom) : NULL;
    it->score = score;
    return oom ? MP_ENOMEM : MP_OK;
}

/* Allocates out->items for n entries and copies ids[0..n) with their scores. */
static int fill_list(const mp_live *l, mp_live_list *out, const uint32_t *ids, const float *scores, size_t n,
                     mp_error *err) {
    if (n == 0) return MP_OK;
    out->items = calloc(n, sizeof *out->items);
    if (!out->items) return mp_error_set(err, MP_ENOMEM, "live: out of memory for %zu results", n);
    for (size_t k = 0; k < n; k++) {
        out->n = k + 1;
        if (fill_item(l, &out->items[k], ids[k], scores[k]))
            return mp_error_set(err, MP_ENOMEM, "live: out of memory for %zu results", n);
    }
    return MP_OK;
}

static void pop_reason(const mp_live *l, uint32_t id, int no_history, char *buf, size_t cap) {
    const char *leaf = live_cat_leaf(l, l->item_cat[id]);
    const char *tail = no_history ? " (no history to personalise from yet)" : "";
    if (leaf) snprintf(buf, cap, "popular in %s right now%s", leaf, tail);
    else snprintf(buf, cap, "popular right now%s", tail);
}

/* A min-heap of the best k (ids, scores) seen so far; its root is the worst of them: a lower score, or an equal
 * score and a higher id. */
static inline int worse(float sa, uint32_t ia, float sb, uint32_t ib) { return sa < sb || (sa == sb && ia > ib); }

static void heap_down(uint32_t *ids, float *sc, size_t n, size_t i) {
    for (;;) {
        size_t w = i, a = 2 * i + 1, b = a + 1;
        if (a < n && worse(sc[a], ids[a], sc[w], ids[w])) w = a;
        if (b < n && worse(sc[b], ids[b], sc[w], ids[w])) w = b;
        if (w == i) return;
        uint32_t ti = ids[i];
        float ts = sc[i];
        ids[i] = ids[w];
        sc[i] = sc[w];
        ids[w] = ti;
        sc[w] = ts;
        i = w;
    }
}

static void heap_offer(uint32_t *ids, float *sc, size_t *n, size_t k, uint32_t id, float s) {
    if (*n < k) {
        size_t i = (*n)++;
        while (i > 0 && worse(s, id, sc[(i - 1) / 2], ids[(i - 1) / 2])) {
            ids[i] = ids[(i - 1) / 2];
            sc[i] = sc[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        ids[i] = id;
        sc[i] = s;
    } else if (k > 0 && worse(sc[0], ids[0], s, id)) {
        ids[0] = id;
        sc[0] = s;
        heap_down(ids, sc, *n, 0);
    }
}

/* Sorts a heap best first (the worst goes to the end, repeatedly). */
static void heap_sort(uint32_t *ids, float *sc, size_t n) {
    for (size_t end = n; end > 1; end--) {
        uint32_t ti = ids[0];
        float ts = sc[0];
        ids[0] = ids[end - 1];
        sc[0] = sc[end - 1];
        ids[end - 1] = ti;
        sc[end - 1] = ts;
        heap_down(ids, sc, end - 1, 0);
    }
}

/* q . v in one vectorised pass (a BLAS call per item costs more than the arithmetic at these lengths). */
static inline float dot_f(const float *q, const float *v, uint32_t dim) {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (uint32_t d = 0; d < dim; d++) s += q[d] * v[d];
    return s;
}

/* Exact ranking of a narrow filter's items by query . item vector (no index, no full score array). */
static int rank_filter_list(const live_holder *h, live_scratch *sc, const live_filter *f, const uint32_t *excl,
                            size_t n_excl, size_t want, size_t *n_out, mp_error *err) {
    const float *V;
    uint32_t nv, dim;
    int rc = mp_model_item_vectors(h->model, &V, &nv, &dim, err);
    if (rc) return rc;
    if (reserve_cand(sc, want)) return mp_error_set(err, MP_ENOMEM, "live: out of memory for %zu results", want);
    size_t n = 0;
    for (uint32_t k = 0; k < f->n_in; k++) {
        uint32_t id = f->items[k];
        if (id >= nv || live_in_sorted(excl, n_excl, id)) continue;
        heap_offer(sc->ids, sc->cand, &n, want, id, dot_f(sc->q, V + (size_t)id * dim, dim));
    }
    heap_sort(sc->ids, sc->cand, n);
    *n_out = n;
    return MP_OK;
}

/* The model of h (read lock held) ranks the first `want` items for ctx into sc->ids / sc->cand, among the items of
 * `allow` (f's mask, or availability when f is NULL). *n_out may be smaller than want (the caller fills the rest
 * with popular items); *fallback = 1 when it cannot rank ctx at all. */
static int model_rank(mp_live *l, live_holder *h, live_scratch *sc, const mp_user_ctx *ctx, const live_filter *f,
                      const uint8_t *allow, const uint32_t *excl, size_t n_excl, size_t want, size_t *n_out,
                      int *fallback, mp_error *err) {
    *n_out = 0;
    *fallback = 0;
    const mp_model *m = h->model;
    int rc;
    if (h->has_vectors) {
        if (mp_grow((void **)&sc->q, &sc->q_cap, (size_t)h->dim + 1, sizeof *sc->q))
            return mp_error_set(err, MP_ENOMEM, "live: out of memory for a query vector");
        int have = 0;
        if ((rc = mp_model_query_vector(m, ctx, sc->q, &have, err))) return rc;
        if (!have) {
            *fallback = 1;
            return MP_OK;
        }
        if (f && (double)f->n_in * f->n_in < LIVE_FILTER_EXACT * (double)l->n_items)
            return rank_filter_list(h, sc, f, excl, n_excl, want, n_out, err);
        if (h->index) {
            size_t k = want + LIVE_ANN_MARGIN, n_index = mp_hnsw_size(h->index);
            if (k > n_index) k = n_index;
            if (reserve_cand(sc, k)) return mp_error_set(err, MP_ENOMEM, "live: out of memory for %zu candidates", k);
            size_t ef = l->opts.ann_ef_search > k ? l->opts.ann_ef_search : k;
            mp_hnsw_scratch *hs = live_hnsw_scratch_get(h, err);
            if (!hs) return MP_ENOMEM;
            size_t got = 0;
            /* the exclusions (history, asked) are filtered inside the search, so k and ef stay small */
            rc = mp_hnsw_search_excluding(h->index, hs, sc->q, k, ef, allow, excl, n_excl, sc->ids, sc->cand, &got,
                                          err);
            live_hnsw_scratch_put(h, hs);
            if (rc) return rc;
            size_t kept = 0;
            for (size_t j = 0; j < got; j++)
                if (!live_in_sorted(excl, n_excl, sc->ids[j])) {
                    sc->ids[kept] = sc->ids[j];
                    sc->cand[kept] = sc->cand[j];
                    kept++;
                }
            if (kept >= want) {
                *n_out = want;
                return MP_OK;
            }
            /* short (heavy filtering or exclusions): score everything below */
        }
    }
    uint32_t nm = mp_model_n_items(m);
    if (mp_grow((void **)&sc->scores, &sc->scores_cap, (size_t)nm + 1, sizeof *sc->scores) || reserve_cand(sc, want))
        return mp_error_set(err, MP_ENOMEM, "live: out of memory scoring %u items", nm);
    if ((rc = mp_model_score_all(m, ctx, sc->scores, err))) return rc;
    for (size_t j = 0; j < n_excl; j++) /* NaN never ranks */
        if (excl[j] < nm) sc->scores[excl[j]] = NAN;
    size_t got;
    if ((rc = mp_topk(sc->scores, nm, allow, want, sc->ids, &got)))
        return mp_error_set(err, rc, "live: cannot rank %u items: %s", nm, mp_strerror(rc));
    for (size_t j = 0; j < got; j++) sc->cand[j] = sc->scores[sc->ids[j]];
    if (!h->has_vectors) { /* neighbourhood and popularity scores: zero means "no evidence" */
        size_t pos = 0;
        while (pos < got && sc->cand[pos] > 0) pos++;
        got = pos;
        if (got == 0) *fallback = 1;
    }
    *n_out = got;
    return MP_OK;
}

/* Turns a session (external item ids, oldest first) into a history in sc->hist. */
static int session_history(const mp_live *l, live_scratch *sc, const mp_live_query *q, mp_user_ctx *ctx,
                           size_t *n_unknown, mp_error *err) {
    if (mp_grow((void **)&sc->hist, &sc->hist_cap, q->n_session + 1, sizeof *sc->hist))
        return mp_error_set(err, MP_ENOMEM, "live: out of memory for a session of %zu items", q->n_session);
    int64_t now = (int64_t)time(NULL);
    size_t m = 0, unknown = 0;
    for (size_t k = 0; k < q->n_session; k++) {
        const char *id = q->session ? q->session[k] : NULL;
        uint32_t iid = id ? mp_strmap_get(l->items, id, strlen(id)) : MP_STRMAP_NONE;
        if (iid == MP_STRMAP_NONE) {
            unknown++;
            continue;
        }
        mp_interaction *e = &sc->hist[m++];
        memset(e, 0, sizeof *e);
        e->user = MP_NO_USER;
        e->item = iid;
        e->type = MP_EV_VIEW;
        e->ts = now - (int64_t)(q->n_session - 1 - k); /* oldest first, one second apart, ending now */
    }
    ctx->user = MP_NO_USER;
    ctx->history = sc->hist;
    ctx->n_history = m;
    *n_unknown = unknown;
    return MP_OK;
}

/* Search ranking (magpie/search.h) of `want` items among `allow` minus the exclusions, into sc->hits and
 * sc->ids / sc->cand (cat read side held). qv: the text's embedding (dim qdim) or NULL. */
static int search_fill(mp_live *l, live_scratch *sc, const char *text, size_t len, const float *qv, uint32_t qdim,
                       const uint8_t *allow, const uint32_t *excl, size_t n_excl, const float *user_scores,
                       uint32_t n_user_scores, size_t want, size_t *n_out, mp_error *err) {
    *n_out = 0;
    if (mp_grow((void **)&sc->mask, &sc->mask_cap, (size_t)l->n_items + 1, 1) ||
        mp_grow((void **)&sc->hits, &sc->hits_cap, want + 1, sizeof *sc->hits) || reserve_cand(sc, want))
        return mp_error_set(err, MP_ENOMEM, "live: out of memory for a search of %zu items", want);
    memcpy(sc->mask, allow, l->n_items);
    for (size_t k = 0; k < n_excl; k++)
        if (excl[k] < l->n_items) sc->mask[excl[k]] = 0;
    mp_search_catalog c;
    live_text_catalog(l, &c, sc->mask);
    if (!qv || qdim != c.dim) qv = NULL;
    size_t got = 0;
    int rc = mp_search_rank(&c, text, len, qv, user_scores, n_user_scores, NULL, want, sc->hits, &got, err);
    if (rc) return rc;
    for (size_t k = 0; k < got; k++) {
        sc->ids[k] = sc->hits[k].item;
        sc->cand[k] = sc->hits[k].score;
    }
    *n_out = got;
    return MP_OK;
}

/* The reason of a recommendation that came from the user's text: "matches your interest in ‘running shoes’". */
static void text_reason(mp_live *l, live_scratch *sc, size_t k, const char *text, size_t len, char *buf,
                        size_t cap) {
    mp_search_catalog c;
    live_text_catalog(l, &c, NULL);
    char runs[MP_SEARCH_REASON_MAX];
    if (live_search_runs(&c, sc->hits[k].item, text, len, runs, sizeof runs))
        snprintf(buf, cap, "matches your interest in %s", runs);
    else
        snprintf(buf, cap, "%s", sc->hits[k].reason);
}

static int recommend_locked(mp_live *l, const mp_live_query *q, live_scratch *sc, const float *qv, uint32_t qdim,
                            mp_live_list *out, size_t *n_unknown_session, mp_error *err) {
    mp_user_ctx ctx = {.user = MP_NO_USER};
    int rc;
    int has_text = q->text && q->text_len > 0;
    uint32_t uid = q->user ? mp_strmap_get(l->users, q->user, q->user_len) : MP_STRMAP_NONE;
    int known = uid != MP_STRMAP_NONE && l->user_state[uid] == LIVE_USER_LIVE;
    if (q->user && (known || !has_text)) { /* an unknown user with a text is served like an anonymous session */
        if (!known)
            return mp_error_set(err, MP_ENOTFOUND, "unknown user \"%.*s\"", (int)q->user_len, q->user);
        ctx.user = uid;
        ctx.history = l->hist[uid].ev;
        ctx.n_history = l->hist[uid].n;
    } else {
        size_t unknown = 0;
        if ((rc = session_history(l, sc, q, &ctx, &unknown, err))) return rc;
        if (n_unknown_session) *n_unknown_session = unknown;
    }
    if (has_text) {
        ctx.text = q->text;
        ctx.text_len = q->text_len;
        ctx.text_embedding = qv;
        ctx.text_embedding_dim = qv ? qdim : 0;
    }
    out->n_history = ctx.n_history;
    out->known_user = ctx.n_history > 0;
    size_t want = q->offset < l->n_items ? q->offset + (q->n < l->n_items ? q->n : l->n_items) : 0;
    if (want > l->n_items) want = l->n_items;
    /* exclusions (sorted), with room for the model's picks when popular items fill the rest */
    size_t n_seen = q->include_seen ? 0 : ctx.n_history;
    if (mp_grow((void **)&sc->excl, &sc->excl_cap, n_seen + q->n_exclude + want + 1, sizeof *sc->excl))
        return mp_error_set(err, MP_ENOMEM, "live: out of memory for %zu exclusions", n_seen + q->n_exclude);
    size_t n_excl = 0;
    for (size_t k = 0; k < n_seen; k++) sc->excl[n_excl++] = ctx.history[k].item;
    for (size_t k = 0; q->exclude && k < q->n_exclude; k++) {
        uint32_t iid = q->exclude[k] ? mp_strmap_get(l->items, q->exclude[k], strlen(q->exclude[k])) : MP_STRMAP_NONE;
        if (iid != MP_STRMAP_NONE) sc->excl[n_excl++] = iid;
    }
    n_excl = sort_unique(sc->excl, n_excl);
    const live_filter *f = NULL;
    if (q->category && *q->category) {
        if ((rc = live_filter_get(l, sc, q->category, &f, err))) return rc;
        if (!f) want = 0; /* no category matches: nothing passes */
    }
    const uint8_t *allow = f ? f->mask : l->avail;

    live_holder *h = live_holder_acquire(l);
    out->model_version = h->info.version;
    size_t got = 0, n_model = 0, n_text = 0;
    /* a content-aware model may rank a context known only by its text */
    int fallback = ctx.n_history == 0 && !(has_text && h->model && mp_model_uses_content(h->model)), locked = 0;
    if (want > 0 && !fallback && h->model) {
        pthread_rwlock_rdlock(&h->lock);
        locked = 1;
        if ((rc = model_rank(l, h, sc, &ctx, f, allow, sc->excl, n_excl, want, &got, &fallback, err))) goto out;
        n_model = got;
    }
    if (want > 0 && got == 0 && ctx.n_history == 0 && has_text) { /* served by search over the catalog */
        if ((rc = search_fill(l, sc, q->text, q->text_len, qv, qdim, allow, sc->excl, n_excl, NULL, 0, want, &got,
                              err)))
            goto out;
        n_text = got;
    }
    if (got < want) { /* popular items: all of the list, or the rest after the model's */
        if (reserve_cand(sc, want)) {
            rc = mp_error_set(err, MP_ENOMEM, "live: out of memory for %zu results", want);
            goto out;
        }
        size_t n_ex2 = n_excl;
        for (size_t j = 0; j < got; j++) sc->excl[n_ex2++] = sc->ids[j];
        n_ex2 = sort_unique(sc->excl, n_ex2);
        long pg = live_pop_top(l, sc, f, UINT32_MAX, sc->excl, n_ex2, 0, want - got, sc->ids + got, sc->cand + got);
        if (pg < 0) {
            rc = mp_error_set(err, MP_ENOMEM, "live: out of memory ranking popular items");
            goto out;
        }
        if (got > 0) { /* filling after the model: never above its last item */
            float floor = sc->cand[got - 1] < 0 ? sc->cand[got - 1] : 0.0f;
            for (size_t j = got; j < got + (size_t)pg; j++) sc->cand[j] = floor;
        }
        got += (size_t)pg;
    }
    out->fallback = n_text == 0 && (h->model ? n_model == 0 : ctx.n_history == 0);
    snprintf(out->model, sizeof out->model, "%s",
             n_text ? "search" : out->fallback || !h->model ? "pop" : h->info.name);
    size_t first = q->offset < got ? q->offset : got;
    if ((rc = fill_list(l, out, sc->ids + first, sc->cand + first, got - first, err))) goto out;
    if (q->explain) {
        char buf[REASON_MAX];
        for (size_t k = 0; k < out->n; k++) {
            uint32_t id = sc->ids[first + k];
            buf[0] = 0;
            if (first + k < n_model) {
                if (mp_model_explain(h->model, &ctx, id, buf, sizeof buf, NULL) != MP_OK) buf[0] = 0;
            } else if (first + k < n_text) {
                text_reason(l, sc, first + k, q->text, q->text_len, buf, sizeof buf);
            } else {
                pop_reason(l, id, ctx.n_history == 0, buf, sizeof buf);
            }
            if (buf[0] && !(out->items[k].reason = strdup(buf))) {
                rc = mp_error_set(err, MP_ENOMEM, "live: out of memory for reasons");
                goto out;
            }
        }
    }
out:
    if (locked) pthread_rwlock_unlock(&h->lock);
    live_holder_release(l, h);
    return rc;
}

/* mp_live_recommend without the explore step. */
static int recommend_model(mp_live *l, const mp_live_query *q, mp_live_list *out, size_t *n_unknown_session,
                           mp_error *err) {
    memset(out, 0, sizeof *out);
    if (n_unknown_session) *n_unknown_session = 0;
    if (!q || q->n == 0) return mp_error_set(err, MP_EINVAL, "live: recommend: n must be at least 1");
    if (q->text && q->text_len && !mp_utf8_valid(q->text, q->text_len, NULL))
        return mp_error_set(err, MP_EINVAL, "field `q`: not valid UTF-8");
    /* a known user without history and without a text: their profile attributes, if any */
    mp_live_query qp = *q;
    char *profile = NULL;
    if (q->user && !(q->text && q->text_len)) {
        pthread_rwlock_rdlock(&l->cat);
        uint32_t uid = mp_strmap_get(l->users, q->user, q->user_len);
        if (uid != MP_STRMAP_NONE && l->user_state[uid] == LIVE_USER_LIVE && l->hist[uid].n == 0 &&
            live_profile_get(l, uid))
            profile = strdup(live_profile_get(l, uid));
        pthread_rwlock_unlock(&l->cat);
        if (profile) {
            qp.text = profile;
            qp.text_len = strlen(profile);
        }
    }
    uint32_t qdim = 0;
    float *qv = qp.text && qp.text_len ? live_text_embed_query(l, qp.text, qp.text_len, &qdim) : NULL;
    live_scratch *sc = live_scratch_get(l);
    if (!sc) {
        free(qv);
        free(profile);
        return mp_error_set(err, MP_ENOMEM, "live: out of memory");
    }
    pthread_rwlock_rdlock(&l->cat);
    int rc = recommend_locked(l, &qp, sc, qv, qdim, out, n_unknown_session, err);
    pthread_rwlock_unlock(&l->cat);
    live_scratch_put(l, sc);
    free(qv);
    free(profile);
    if (rc) mp_live_list_free(out);
    return rc;
}

int mp_live_recommend(mp_live *l, const mp_live_query *q, mp_live_list *out, size_t *n_unknown_session,
                      mp_error *err) {
    if (q && q->slate) memset(q->slate, 0, sizeof *q->slate);
    if (!q || !q->explore || !mp_explore_wants(q->explore, q->explore_req))
        return recommend_model(l, q, out, n_unknown_session, err);
    if (!q->slate) {
        memset(out, 0, sizeof *out);
        return mp_error_set(err, MP_EINVAL, "live: recommend: an explore state needs a slate for its answer");
    }
    mp_live_query qp = *q;
    qp.n = mp_explore_pool(q->explore, q->n); /* the policy serves n of the model's best n * pool */
    int rc = recommend_model(l, &qp, out, n_unknown_session, err);
    if (rc == MP_OK)
        rc = mp_explore_serve(q->explore, q->user, q->user_len, q->explore_req, out, q->n, q->slate, err);
    if (rc) mp_live_list_free(out);
    return rc;
}

/* ---- search ---- */

static int search_locked(mp_live *l, const mp_live_search_query *q, live_scratch *sc, const float *qv,
                         uint32_t qdim, mp_live_list *out, mp_error *err) {
    mp_user_ctx ctx = {.user = MP_NO_USER};
    if (q->user) {
        uint32_t uid = mp_strmap_get(l->users, q->user, q->user_len);
        if (uid != MP_STRMAP_NONE && l->user_state[uid] == LIVE_USER_LIVE) { /* unknown: an anonymous search */
            ctx.user = uid;
            ctx.history = l->hist[uid].ev;
            ctx.n_history = l->hist[uid].n;
        }
    }
    out->n_history = ctx.n_history;
    out->known_user = ctx.n_history > 0;
    int rc = MP_OK;
    const live_filter *f = NULL;
    if (q->category && *q->category) {
        if ((rc = live_filter_get(l, sc, q->category, &f, err))) return rc;
        if (!f) return MP_OK; /* no category matches */
    }
    const uint8_t *allow = f ? f->mask : l->avail;
    size_t want = q->offset + q->n;
    if (want > l->n_items) want = l->n_items;
    live_holder *h = live_holder_acquire(l);
    out->model_version = h->info.version;
    int locked = 0, reranked = 0;
    const float *user_scores = NULL;
    uint32_t nm = 0;
    if (h->model && ctx.n_history > 0) {
        pthread_rwlock_rdlock(&h->lock);
        locked = 1;
        nm = mp_model_n_items(h->model);
        if (mp_grow((void **)&sc->scores, &sc->scores_cap, (size_t)nm + 1, sizeof *sc->scores)) {
            rc = mp_error_set(err, MP_ENOMEM, "live: out of memory scoring %u items", nm);
            goto out;
        }
        if (mp_model_score_all(h->model, &ctx, sc->scores, NULL) == MP_OK) user_scores = sc->scores;
    }
    size_t got = 0;
    if (want > 0 &&
        (rc = search_fill(l, sc, q->q, q->q_len, qv, qdim, allow, NULL, 0, user_scores, nm, want, &got, err)))
        goto out;
    for (size_t k = 0; k < got; k++) reranked |= !isnan(sc->hits[k].user);
    snprintf(out->model, sizeof out->model, "%s", reranked ? h->info.name : "search");
    size_t first = q->offset < got ? q->offset : got;
    if ((rc = fill_list(l, out, sc->ids + first, sc->cand + first, got - first, err))) goto out;
    for (size_t k = 0; k < out->n; k++) {
        const mp_search_hit *hit = &sc->hits[first + k];
        char buf[REASON_MAX + MP_SEARCH_REASON_MAX], why[REASON_MAX];
        snprintf(buf, sizeof buf, "%s", hit->reason);
        /* the user's model lifted it: say why */
        if (!isnan(hit->user) && hit->user >= 0.5f &&
            mp_model_explain(h->model, &ctx, hit->item, why, sizeof why, NULL) == MP_OK && why[0]) {
            size_t at = strlen(buf);
            snprintf(buf + at, sizeof buf - at, "; %s", why);
        }
        if (!(out->items[k].reason = strdup(buf))) {
            rc = mp_error_set(err, MP_ENOMEM, "live: out of memory for reasons");
            goto out;
        }
    }
out:
    if (locked) pthread_rwlock_unlock(&h->lock);
    live_holder_release(l, h);
    return rc;
}

int mp_live_search(mp_live *l, const mp_live_search_query *q, mp_live_list *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    if (!q || q->n == 0) return mp_error_set(err, MP_EINVAL, "live: search: n must be at least 1");
    if (!q->q || q->q_len == 0) return mp_error_set(err, MP_EINVAL, "field `q`: the search query is empty");
    if (!mp_utf8_valid(q->q, q->q_len, NULL)) return mp_error_set(err, MP_EINVAL, "field `q`: not valid UTF-8");
    uint32_t qdim = 0;
    float *qv = live_text_embed_query(l, q->q, q->q_len, &qdim);
    live_scratch *sc = live_scratch_get(l);
    if (!sc) {
        free(qv);
        return mp_error_set(err, MP_ENOMEM, "live: out of memory");
    }
    pthread_rwlock_rdlock(&l->cat);
    int rc = search_locked(l, q, sc, qv, qdim, out, err);
    pthread_rwlock_unlock(&l->cat);
    live_scratch_put(l, sc);
    free(qv);
    if (rc) mp_live_list_free(out);
    return rc;
}

/* ---- similar ---- */

/* Index path: candidates by inner product with the item's vector, reranked by cosine. */
static int similar_index(mp_live *l, live_holder *h, live_scratch *sc, uint32_t item, size_t n, size_t *n_out,
                         mp_error *err) {
    const float *V;
    uint32_t nv, dim;
    int rc = mp_model_item_vectors(h->model, &V, &nv, &dim, err);
    if (rc) return rc;
    size_t n_index = mp_hnsw_size(h->index), k = 10 * (n + 1);
    if (k < 64) k = 64;
    if (k > n_index) k = n_index;
    if (reserve_cand(sc, k)) return mp_error_set(err, MP_ENOMEM, "live: out of memory for %zu candidates", k);
    mp_hnsw_scratch *hs = live_hnsw_scratch_get(h, err);
    if (!hs) return MP_ENOMEM;
    const float *qv = V + (size_t)item * dim;
    size_t got = 0;
    rc = mp_hnsw_search(h->index, hs, qv, k, k, l->avail, sc->ids, sc->cand, &got, err);
    live_hnsw_scratch_put(h, hs);
    if (rc) return rc;
    double qn = 0;
    for (uint32_t d = 0; d < dim; d++) qn += (double)qv[d] * qv[d];
    size_t m = 0;
    for (size_t j = 0; j < got; j++) {
        uint32_t id = sc->ids[j];
        if (id == item || id >= nv) continue;
        const float *v = V + (size_t)id * dim;
        double dot = 0, vn = 0;
        for (uint32_t d = 0; d < dim; d++) {
            dot += (double)qv[d] * v[d];
            vn += (double)v[d] * v[d];
        }
        if (!(qn > 0 && vn > 0)) continue;
        sc->ids[m] = id;
        sc->cand[m] = (float)(dot / sqrt(qn * vn));
        m++;
    }
    /* partial selection sort: best cosine first, ties by lower id */
    size_t keep = m < n ? m : n;
    for (size_t a = 0; a < keep; a++) {
        size_t best = a;
        for (size_t b = a + 1; b < m; b++)
            if (sc->cand[b] > sc->cand[best] || (sc->cand[b] == sc->cand[best] && sc->ids[b] < sc->ids[best]))
                best = b;
        uint32_t ti = sc->ids[a];
        float ts = sc->cand[a];
        sc->ids[a] = sc->ids[best];
        sc->cand[a] = sc->cand[best];
        sc->ids[best] = ti;
        sc->cand[best] = ts;
    }
    *n_out = keep;
    return MP_OK;
}

/* The model's own similar(), asking for more until n available items come back. *fallback = 1 when the model has
 * no similar() or does not know the item. */
static int similar_model(mp_live *l, live_holder *h, live_scratch *sc, uint32_t item, size_t n, size_t *n_out,
                         int *fallback, mp_error *err) {
    *n_out = 0;
    uint32_t nm = mp_model_n_items(h->model);
    size_t ask = n + 8;
    for (;;) {
        if (ask > nm) ask = nm;
        if (reserve_cand(sc, ask)) return mp_error_set(err, MP_ENOMEM, "live: out of memory for %zu candidates", ask);
        size_t got = 0;
        mp_error e;
        int rc = mp_model_similar(h->model, item, ask, sc->ids, sc->cand, &got, &e);
        if (rc == MP_EUNSUPPORTED || rc == MP_ENOTFOUND) {
            *fallback = 1;
            return MP_OK;
        }
        if (rc) return mp_error_set(err, rc, "%s", e.msg);
        size_t m = 0;
        for (size_t j = 0; j < got; j++) {
            uint32_t id = sc->ids[j];
            if (id == item || id >= l->n_items || !l->avail[id]) continue;
            sc->ids[m] = id;
            sc->cand[m] = sc->cand[j];
            m++;
        }
        if (m >= n || got < ask || ask >= nm) {
            *n_out = m < n ? m : n;
            return MP_OK;
        }
        ask *= 4;
    }
}

int mp_live_similar(mp_live *l, const char *item, size_t len, size_t n, mp_live_list *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    if (n == 0) return mp_error_set(err, MP_EINVAL, "live: similar: n must be at least 1");
    live_scratch *sc = live_scratch_get(l);
    if (!sc) return mp_error_set(err, MP_ENOMEM, "live: out of memory");
    pthread_rwlock_rdlock(&l->cat);
    int rc = MP_OK;
    live_holder *h = NULL;
    uint32_t iid = item ? mp_strmap_get(l->items, item, len) : MP_STRMAP_NONE;
    if (iid == MP_STRMAP_NONE) {
        rc = mp_error_set(err, MP_ENOTFOUND, "unknown item \"%.*s\"", (int)len, item ? item : "");
        goto out;
    }
    if (n > l->n_items) n = l->n_items;
    h = live_holder_acquire(l);
    out->model_version = h->info.version;
    size_t got = 0;
    int fallback = !h->model;
    if (h->model) {
        pthread_rwlock_rdlock(&h->lock);
        if (h->index && iid < mp_hnsw_size(h->index)) rc = similar_index(l, h, sc, iid, n, &got, err);
        else rc = similar_model(l, h, sc, iid, n, &got, &fallback, err);
        pthread_rwlock_unlock(&h->lock);
        if (rc) goto out;
    }
    if (fallback) { /* popular items of the same category */
        if (reserve_cand(sc, n)) {
            rc = mp_error_set(err, MP_ENOMEM, "live: out of memory");
            goto out;
        }
        uint32_t cat = l->item_cat[iid];
        long pg = live_pop_top(l, sc, NULL, cat ? cat : UINT32_MAX, &iid, 1, 0, n, sc->ids, sc->cand);
        if (pg < 0) {
            rc = mp_error_set(err, MP_ENOMEM, "live: out of memory ranking popular items");
            goto out;
        }
        got = (size_t)pg;
    }
    out->fallback = fallback;
    snprintf(out->model, sizeof out->model, "%s", fallback ? "pop" : h->info.name);
    rc = fill_list(l, out, sc->ids, sc->cand, got, err);
out:
    live_holder_release(l, h);
    pthread_rwlock_unlock(&l->cat);
    live_scratch_put(l, sc);
    if (rc) mp_live_list_free(out);
    return rc;
}

/* ---- popular, history ---- */

int mp_live_popular(mp_live *l, const char *category, size_t n, size_t offset, mp_live_list *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    if (n == 0) return mp_error_set(err, MP_EINVAL, "live: popular: n must be at least 1");
    live_scratch *sc = live_scratch_get(l);
    if (!sc) return mp_error_set(err, MP_ENOMEM, "live: out of memory");
    pthread_rwlock_rdlock(&l->cat);
    live_holder *h = live_holder_acquire(l);
    out->model_version = h->info.version;
    live_holder_release(l, h);
    snprintf(out->model, sizeof out->model, "pop");
    const live_filter *f = NULL;
    int rc = MP_OK;
    if (category && *category) {
        if ((rc = live_filter_get(l, sc, category, &f, err))) goto out;
        if (!f) goto out; /* no category matches */
    }
    if (offset >= l->n_items) goto out;
    if (n > l->n_items) n = l->n_items;
    if (reserve_cand(sc, n)) {
        rc = mp_error_set(err, MP_ENOMEM, "live: out of memory");
        goto out;
    }
    long got = live_pop_top(l, sc, f, UINT32_MAX, NULL, 0, offset, n, sc->ids, sc->cand);
    if (got < 0) rc = mp_error_set(err, MP_ENOMEM, "live: out of memory ranking popular items");
    else rc = fill_list(l, out, sc->ids, sc->cand, (size_t)got, err);
out:
    pthread_rwlock_unlock(&l->cat);
    live_scratch_put(l, sc);
    if (rc) mp_live_list_free(out);
    return rc;
}

int mp_live_history_get(mp_live *l, const char *user, size_t len, size_t limit, mp_live_history *out,
                        mp_error *err) {
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&l->cat);
    int rc = MP_OK;
    uint32_t uid = user ? mp_strmap_get(l->users, user, len) : MP_STRMAP_NONE;
    if (uid == MP_STRMAP_NONE || l->user_state[uid] != LIVE_USER_LIVE) {
        rc = mp_error_set(err, MP_ENOTFOUND, "unknown user \"%.*s\"", (int)len, user ? user : "");
        goto out;
    }
    const live_hist *h = &l->hist[uid];
    out->total = h->n;
    size_t m = limit < h->n ? limit : h->n;
    if (m == 0) goto out;
    if (!(out->events = calloc(m, sizeof *out->events))) {
        rc = mp_error_set(err, MP_ENOMEM, "live: out of memory for %zu events", m);
        goto out;
    }
    for (size_t k = 0; k < m; k++) {
        const mp_interaction *e = &h->ev[h->n - 1 - k];
        mp_live_event *o = &out->events[k];
        const char *ext = mp_strmap_key(l->items, e->item, NULL);
        out->n = k + 1;
        if (!(o->item = strdup(ext ? ext : ""))) {
            rc = mp_error_set(err, MP_ENOMEM, "live: out of memory for %zu events", m);
            goto out;
        }
        o->type = (char *)mp_event_type_name(e->type);
        o->ts = e->ts;
        o->has_value = e->has_value;
        o->value = e->has_value ? e->value : 0;
    }
out:
    pthread_rwlock_unlock(&l->cat);
    if (rc) mp_live_history_free(out);
    return rc;
}
