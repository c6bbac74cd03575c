/* src/ann/hnsw.c: the HNSW graph (Malkov and Yashunin, "Efficient and robust approximate nearest neighbor search
 * using Hierarchical Navigable Small World graphs"): build, search and the small accessors.
 *
 * Layout: vectors in one contiguous 64-byte aligned array; layer 0 links in one flat array of n * (2M + 1)
 * uint32 (a count, then up to 2M ids); the upper layers (about n / (M - 1) nodes in all) in one pool of blocks of
 * M + 1, where a node's layers 1..level are consecutive blocks.
 *
 * Build: levels are drawn up front from one seeded stream (level = floor(-ln(U) / ln(M))), so they do not depend
 * on the thread count. Node 0 is inserted first; the rest in order, in parallel chunks. Each insertion descends
 * greedily to its own top layer, then on each layer below runs a best-first search with ef_construction
 * candidates, keeps up to M of them with the neighbour-selection heuristic (the paper's Algorithm 4, without the
 * optional extension and kept-pruned steps, as hnswlib does) and links both ways; a neighbour whose list is full
 * is re-pruned with the same heuristic (cap 2M on layer 0, M above). While building, a node's link list is read
 * and written only under its own lock (a byte spinlock that yields when contended: the build may share a busy
 * machine); a node that raises the top layer holds the entry-point lock for its whole insertion, so nobody
 * enters through it half-linked. With one thread the insertion order, and so the graph, is fixed.
 *
 * Search: greedy descent through the upper layers, then the best-first search on layer 0 with ef candidates.
 * Visited marks are uint16 epochs in the scratch (cleared only when the epoch wraps). Each expanded node's
 * unvisited neighbours are collected first, with their vectors prefetched, and then scored, so the memory
 * fetches overlap. With an `allow` filter, refused nodes are traversed like the others but never enter the result
 * list, and the search stops only when that list holds ef allowed nodes (or the reachable graph is exhausted), so
 * ef effectively grows with the share filtered out. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "ann/ann_internal.h"
#include "magpie/rng.h"

#define HNSW_CHUNK 4096u   /* insertions between progress reports (and parallel regions) */
#define HNSW_SPINS 64      /* lock attempts before yielding the CPU */
#define HNSW_DEFAULT_EF 64 /* ef when the caller passes 0 (and k is smaller) */
/* The search loops are inlined into the query path and the build path separately, so the query path carries no
 * locking branches. */
#define ANN_INLINE static inline __attribute__((always_inline))

void mp_hnsw_params_default(mp_hnsw_params *p) {
    p->M = 16;
    p->ef_construction = 200;
    p->seed = 42;
    p->n_threads = 0;
}

/* ---- scratch ---- */

struct mp_hnsw_scratch {
    uint32_t n, dim, M0; /* the shape it was made for */
    uint16_t *tags;      /* [n] visited when == epoch */
    uint16_t epoch;
    mp_ann_pair *cand; /* min-heap of candidates to expand, [cand_cap] (grows) */
    size_t cand_cap;
    mp_ann_pair *res; /* max-heap of the best ef found, [res_cap] (grows) */
    size_t res_cap;
    uint32_t *fresh;     /* [M0 + 1] unvisited neighbours of the node being expanded */
    uint32_t *copy;      /* [M0 + 1] a neighbour list copied under its lock (build) */
    mp_ann_pair *sorted; /* [res_cap] results in increasing order (build) */
    mp_ann_pair *sel;    /* [M0 + 1] selected neighbours (build) */
    mp_ann_pair *prune;  /* [M0 + 1] a full list plus the new node, being re-pruned (build) */
    mp_ann_pair *kept;   /* [M0 + 1] what the re-pruning keeps (build) */
    float *qbuf;         /* [dim] the normalised query (cosine) */
    uint64_t n_dist;     /* distances computed by searches with this scratch */
};

static int scratch_alloc(mp_hnsw_scratch **out, uint32_t n, uint32_t dim, uint32_t M0, size_t ef) {
    mp_hnsw_scratch *s = calloc(1, sizeof *s);
    if (!s) return MP_ENOMEM;
    s->n = n;
    s->dim = dim;
    s->M0 = M0;
    s->epoch = 0;
    s->res_cap = ef + 1;
    s->cand_cap = 4 * ef + 64;
    s->tags = calloc(n, sizeof *s->tags);
    s->cand = malloc(s->cand_cap * sizeof *s->cand);
    s->res = malloc(s->res_cap * sizeof *s->res);
    s->sorted = malloc(s->res_cap * sizeof *s->sorted);
    s->fresh = malloc(((size_t)M0 + 1) * sizeof *s->fresh);
    s->copy = malloc(((size_t)M0 + 1) * sizeof *s->copy);
    s->sel = malloc(((size_t)M0 + 1) * sizeof *s->sel);
    s->prune = malloc(((size_t)M0 + 1) * sizeof *s->prune);
    s->kept = malloc(((size_t)M0 + 1) * sizeof *s->kept);
    s->qbuf = malloc((size_t)dim * sizeof *s->qbuf);
    if (!s->tags || !s->cand || !s->res || !s->sorted || !s->fresh || !s->copy || !s->sel || !s->prune || !s->kept ||
        !s->qbuf) {
        mp_hnsw_scratch_destroy(s);
        return MP_ENOMEM;
    }
    *out = s;
    return MP_OK;
}

int mp_hnsw_scratch_create(mp_hnsw_scratch **out, const mp_hnsw *h, mp_error *err) {
    if (!out || !h) return mp_error_set(err, MP_EINVAL, "hnsw scratch: out and index must not be NULL");
    *out = NULL;
    if (scratch_alloc(out, h->n, h->dim, h->M0, HNSW_DEFAULT_EF))
        return mp_error_set(err, MP_ENOMEM, "hnsw scratch: out of memory for %u visited marks", h->n);
    return MP_OK;
}

void mp_hnsw_scratch_destroy(mp_hnsw_scratch *s) {
    if (!s) return;
    free(s->tags);
    free(s->cand);
    free(s->res);
    free(s->sorted);
    free(s->fresh);
    free(s->copy);
    free(s->sel);
    free(s->prune);
    free(s->kept);
    free(s->qbuf);
    free(s);
}

uint64_t mp_hnsw_scratch_distances(const mp_hnsw_scratch *s) {
    return s ? s->n_dist : 0;
}

/* Room for ef results. MP_ENOMEM leaves the scratch as it was. */
static int scratch_reserve(mp_hnsw_scratch *s, size_t ef) {
    if (ef + 1 <= s->res_cap) return MP_OK;
    size_t cap = ef + 1;
    mp_ann_pair *r = realloc(s->res, cap * sizeof *r);
    if (!r) return MP_ENOMEM;
    s->res = r;
    mp_ann_pair *so = realloc(s->sorted, cap * sizeof *so);
    if (!so) return MP_ENOMEM;
    s->sorted = so;
    s->res_cap = cap;
    return MP_OK;
}

static void new_epoch(mp_hnsw_scratch *s) {
    if (++s->epoch == 0) {
        memset(s->tags, 0, (size_t)s->n * sizeof *s->tags);
        s->epoch = 1;
    }
}

/* ---- candidate min-heap (the best to expand at [0]) ---- */

static inline int cand_push(mp_hnsw_scratch *s, size_t *n, mp_ann_pair p) {
    if (*n == s->cand_cap) {
        size_t cap = 2 * s->cand_cap;
        mp_ann_pair *c = realloc(s->cand, cap * sizeof *c);
        if (!c) return MP_ENOMEM;
        s->cand = c;
        s->cand_cap = cap;
    }
    mp_ann_pair *h = s->cand;
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!mp_ann_pair_less(p, h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = p;
    return MP_OK;
}

static inline void cand_pop(mp_hnsw_scratch *s, size_t *n) {
    mp_ann_pair *h = s->cand;
    size_t m = --(*n);
    if (m == 0) return;
    mp_ann_pair p = h[m];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && mp_ann_pair_less(h[c + 1], h[c])) c++;
        if (!mp_ann_pair_less(h[c], p)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = p;
}

/* ---- per-node locks (build only) ---- */

typedef struct build_ctx {
    mp_hnsw *h;
    atomic_uchar *locks;     /* [n] */
    pthread_mutex_t ep_lock; /* guards h->entry and h->max_level */
} build_ctx;

static inline void node_lock(build_ctx *b, uint32_t i) {
    atomic_uchar *l = &b->locks[i];
    for (int spins = 0;; spins++) {
        if (!atomic_load_explicit(l, memory_order_relaxed) && !atomic_exchange_explicit(l, 1, memory_order_acquire))
            return;
        if (spins >= HNSW_SPINS) sched_yield();
    }
}

static inline void node_unlock(build_ctx *b, uint32_t i) {
    atomic_store_explicit(&b->locks[i], 0, memory_order_release);
}

/* ---- search ---- */

static inline const float *vec_of(const mp_hnsw *h, uint32_t i) {
    return h->vecs + (size_t)i * h->dim;
}

static inline void prefetch_vec(const mp_hnsw *h, uint32_t i) {
    const char *p = (const char *)vec_of(h, i);
    size_t bytes = (size_t)h->dim * sizeof(float);
    for (size_t off = 0; off < bytes; off += 64)
        __builtin_prefetch(p + off);
}

/* The neighbours of node i on `level`: a pointer to the ids and their count. While building (b set), the list
 * is copied into s->copy under the node's lock. */
ANN_INLINE const uint32_t *neighbours(const mp_hnsw *h, build_ctx *b, mp_hnsw_scratch *s, uint32_t i, uint32_t level,
                                      uint32_t *count) {
    const uint32_t *l = mp_hnsw_links(h, i, level);
    if (!b) {
        *count = l[0];
        return l + 1;
    }
    node_lock(b, i);
    uint32_t c = l[0];
    memcpy(s->copy, l + 1, (size_t)c * sizeof *l);
    node_unlock(b, i);
    *count = c;
    return s->copy;
}

/* Greedy descent from *cur (distance *cur_d) through layers top..stop+1: on each, move to the closest neighbour
 * while that improves. */
ANN_INLINE void descend(const mp_hnsw *h, build_ctx *b, mp_hnsw_scratch *s, const float *q, uint32_t top, uint32_t stop,
                        uint32_t *cur, float *cur_d) {
    for (uint32_t level = top; level > stop; level--) {
        int moved = 1;
        while (moved) {
            moved = 0;
            uint32_t cnt;
            const uint32_t *nb = neighbours(h, b, s, *cur, level, &cnt);
            for (uint32_t j = 0; j < cnt; j++)
                prefetch_vec(h, nb[j]);
            for (uint32_t j = 0; j < cnt; j++) {
                float d = h->dist(q, vec_of(h, nb[j]), h->dim);
                if (d < *cur_d || (d == *cur_d && nb[j] < *cur)) {
                    *cur_d = d;
                    *cur = nb[j];
                    moved = 1;
                }
            }
        }
    }
}

/* 1 when id is in the ascending array deny[0..n). */
static inline int denied(const uint32_t *deny, size_t n, uint32_t id) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (deny[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && deny[lo] == id;
}

/* Best-first search on `level` from ep (distance ep_d) with ef results: on return s->res is a max-heap of *n_res
 * (<= ef) nodes, only allowed ones when `allow` / `deny` filter (allow[id] != 0 and id not in the ascending deny
 * list). `skip` (or UINT32_MAX) is never visited. MP_OK or MP_ENOMEM. */
ANN_INLINE int search_layer(const mp_hnsw *h, build_ctx *b, mp_hnsw_scratch *s, const float *q, uint32_t ep, float ep_d,
                            uint32_t level, size_t ef, const uint8_t *allow, const uint32_t *deny, size_t n_deny,
                            uint32_t skip, size_t *n_res) {
    new_epoch(s);
    uint16_t *tags = s->tags;
    const uint16_t epoch = s->epoch;
    const uint32_t dim = h->dim;
    mp_ann_pair *res = s->res;
    size_t nc = 0, nr = 0;
    if (skip != UINT32_MAX) tags[skip] = epoch;
    tags[ep] = epoch;
    if (cand_push(s, &nc, (mp_ann_pair){ep_d, ep})) return MP_ENOMEM;
    if ((!allow || allow[ep]) && !(n_deny && denied(deny, n_deny, ep)))
        mp_ann_maxheap_push(res, &nr, (mp_ann_pair){ep_d, ep});
    float bound = nr >= ef ? res[0].d : INFINITY;
    while (nc > 0) {
        mp_ann_pair c = s->cand[0];
        if (c.d > bound) break;
        cand_pop(s, &nc);
        uint32_t cnt;
        const uint32_t *nb = neighbours(h, b, s, c.id, level, &cnt);
        for (uint32_t j = 0; j < cnt; j++)
            __builtin_prefetch(&tags[nb[j]]);
        uint32_t m = 0;
        for (uint32_t j = 0; j < cnt; j++) {
            uint32_t u = nb[j];
            if (tags[u] == epoch) continue;
            tags[u] = epoch;
            s->fresh[m++] = u;
            prefetch_vec(h, u);
        }
        s->n_dist += m;
        for (uint32_t j = 0; j < m; j++) {
            uint32_t u = s->fresh[j];
            float d = h->dist(q, vec_of(h, u), dim);
            if (nr < ef || d < bound) {
                if (cand_push(s, &nc, (mp_ann_pair){d, u})) return MP_ENOMEM;
                if ((!allow || allow[u]) && !(n_deny && denied(deny, n_deny, u))) {
                    if (nr < ef)
                        mp_ann_maxheap_push(res, &nr, (mp_ann_pair){d, u});
                    else
                        mp_ann_maxheap_replace_top(res, nr, (mp_ann_pair){d, u});
                    if (nr >= ef) bound = res[0].d;
                }
            }
        }
    }
    *n_res = nr;
    return MP_OK;
}

int mp_hnsw_search(const mp_hnsw *h, mp_hnsw_scratch *s, const float *q, size_t k, size_t ef, const uint8_t *allow,
                   uint32_t *out_ids, float *out_scores, size_t *n_out, mp_error *err) {
    return mp_hnsw_search_excluding(h, s, q, k, ef, allow, NULL, 0, out_ids, out_scores, n_out, err);
}

int mp_hnsw_search_excluding(const mp_hnsw *h, mp_hnsw_scratch *s, const float *q, size_t k, size_t ef,
                             const uint8_t *allow, const uint32_t *exclude, size_t n_exclude, uint32_t *out_ids,
                             float *out_scores, size_t *n_out, mp_error *err) {
    if (n_out) *n_out = 0;
    if (!h || !s || !q || !out_ids || !n_out)
        return mp_error_set(err, MP_EINVAL, "hnsw search: index, scratch, query, out_ids and n_out must not be NULL");
    if (s->n != h->n || s->dim != h->dim || s->M0 < h->M0)
        return mp_error_set(err, MP_EINVAL,
                            "hnsw search: the scratch was made for another index (%u x %u, not %u x %u); create one "
                            "with mp_hnsw_scratch_create for this index",
                            s->n, s->dim, h->n, h->dim);
    size_t bad;
    if (!mp_ann_all_finite(q, h->dim, &bad))
        return mp_error_set(err, MP_EINVAL, "hnsw search: query value %zu is not finite", bad);
    if (k == 0) return MP_OK;
    if (ef == 0) ef = k > HNSW_DEFAULT_EF ? k : HNSW_DEFAULT_EF;
    if (ef < k) ef = k;
    if (ef > h->n) ef = h->n;
    if (scratch_reserve(s, ef)) return mp_error_set(err, MP_ENOMEM, "hnsw search: out of memory for ef = %zu", ef);
    const float *qv = q;
    if (h->metric == MP_ANN_COSINE) {
        mp_ann_normalise(s->qbuf, q, h->dim);
        qv = s->qbuf;
    }
    uint32_t cur = h->entry;
    float cur_d = h->dist(qv, vec_of(h, cur), h->dim);
    descend(h, NULL, s, qv, h->max_level, 0, &cur, &cur_d);
    size_t nr;
    if (search_layer(h, NULL, s, qv, cur, cur_d, 0, ef, allow, exclude, exclude ? n_exclude : 0, UINT32_MAX, &nr))
        return mp_error_set(err, MP_ENOMEM, "hnsw search: out of memory for the candidate list");
    while (nr > k)
        mp_ann_maxheap_pop(s->res, &nr);
    mp_ann_maxheap_drain_sorted(s->res, nr, s->sorted);
    for (size_t j = 0; j < nr; j++) {
        out_ids[j] = s->sorted[j].id;
        if (out_scores) out_scores[j] = -s->sorted[j].d;
    }
    *n_out = nr;
    return MP_OK;
}

/* ---- build ---- */

/* The paper's Algorithm 4 (simple form): walk the candidates (increasing distance to the new node) and keep one
 * only if it is closer to the new node than to every one kept so far, up to cap. Fewer than cap candidates are
 * all kept. Returns the number written to out.
 * One addition: a candidate identical to one already kept is dropped. Without it, many equal vectors (cold items
 * with zero or default embeddings are common) keep each other with ties and fill their lists with one another,
 * until they form a closed clique that traps any search entering it. */
static size_t select_heuristic(const mp_hnsw *h, const mp_ann_pair *cand, size_t nc, size_t cap, mp_ann_pair *out) {
    if (nc <= cap) {
        memcpy(out, cand, nc * sizeof *cand);
        return nc;
    }
    size_t m = 0;
    for (size_t i = 0; i < nc && m < cap; i++) {
        const float *v = vec_of(h, cand[i].id);
        int keep = 1;
        for (size_t j = 0; j < m; j++) {
            const float *w = vec_of(h, out[j].id);
            if (h->dist(v, w, h->dim) < cand[i].d || !memcmp(v, w, (size_t)h->dim * sizeof *v)) {
                keep = 0;
                break;
            }
        }
        if (keep) out[m++] = cand[i];
    }
    return m;
}

static void sort_pairs(mp_ann_pair *a, size_t n) {
    for (size_t i = 1; i < n; i++) {
        mp_ann_pair p = a[i];
        size_t j = i;
        while (j > 0 && mp_ann_pair_less(p, a[j - 1])) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = p;
    }
}

/* Links cur to its selected neighbours on `level` and each of them back to cur (re-pruning full lists). */
static void connect(build_ctx *b, mp_hnsw_scratch *s, uint32_t cur, uint32_t level, const mp_ann_pair *sel,
                    size_t nsel) {
    mp_hnsw *h = b->h;
    uint32_t cap = level ? h->M : h->M0;
    uint32_t *mine = mp_hnsw_links(h, cur, level);
    node_lock(b, cur);
    for (size_t j = 0; j < nsel; j++)
        mine[1 + j] = sel[j].id;
    mine[0] = (uint32_t)nsel;
    node_unlock(b, cur);
    const float *v = vec_of(h, cur);
    for (size_t j = 0; j < nsel; j++) {
        uint32_t u = sel[j].id;
        uint32_t *theirs = mp_hnsw_links(h, u, level);
        node_lock(b, u);
        uint32_t cnt = theirs[0];
        if (cnt < cap) {
            theirs[1 + cnt] = cur;
            theirs[0] = cnt + 1;
        } else {
            const float *vu = vec_of(h, u);
            for (uint32_t t = 0; t < cnt; t++)
                s->prune[t] = (mp_ann_pair){h->dist(vu, vec_of(h, theirs[1 + t]), h->dim), theirs[1 + t]};
            s->prune[cnt] = (mp_ann_pair){h->dist(vu, v, h->dim), cur};
            sort_pairs(s->prune, (size_t)cnt + 1);
            size_t kept = select_heuristic(h, s->prune, (size_t)cnt + 1, cap, s->kept);
            for (size_t t = 0; t < kept; t++)
                theirs[1 + t] = s->kept[t].id;
            theirs[0] = (uint32_t)kept;
        }
        node_unlock(b, u);
    }
}

/* Inserts node cur (its vector and level already in place). MP_OK or MP_ENOMEM. */
static int insert(build_ctx *b, mp_hnsw_scratch *s, uint32_t cur) {
    mp_hnsw *h = b->h;
    uint32_t lc = h->levels[cur];
    pthread_mutex_lock(&b->ep_lock);
    uint32_t ep = h->entry, top = h->max_level;
    int raises = lc > top; /* keep the entry lock until cur is linked, then make it the entry */
    if (!raises) pthread_mutex_unlock(&b->ep_lock);
    const float *v = vec_of(h, cur);
    float ep_d = h->dist(v, vec_of(h, ep), h->dim);
    if (top > lc) descend(h, b, s, v, top, lc, &ep, &ep_d);
    int rc = MP_OK;
    for (uint32_t level = lc < top ? lc : top;; level--) {
        size_t nr;
        if ((rc = search_layer(h, b, s, v, ep, ep_d, level, h->ef_construction, NULL, NULL, 0, cur, &nr))) break;
        mp_ann_maxheap_drain_sorted(s->res, nr, s->sorted);
        size_t nsel = select_heuristic(h, s->sorted, nr, h->M, s->sel);
        ep = s->sorted[0].id;
        ep_d = s->sorted[0].d;
        connect(b, s, cur, level, s->sel, nsel);
        if (level == 0) break;
    }
    if (raises) {
        if (rc == MP_OK) {
            h->entry = cur;
            h->max_level = lc;
        }
        pthread_mutex_unlock(&b->ep_lock);
    }
    return rc;
}

int mp_hnsw_alloc_graph(mp_hnsw *h, const uint8_t *levels, mp_error *err) {
    h->M0 = 2 * h->M;
    size_t n = h->n, dim = h->dim;
    size_t vec_bytes = (n * dim * sizeof(float) + 63) / 64 * 64;
    h->vecs = aligned_alloc(64, vec_bytes ? vec_bytes : 64);
    size_t l0_bytes = (n * (h->M0 + 1) * sizeof(uint32_t) + 63) / 64 * 64;
    h->link0 = aligned_alloc(64, l0_bytes ? l0_bytes : 64);
    h->levels = calloc(n ? n : 1, 1);
    h->upper_at = calloc(n ? n : 1, sizeof *h->upper_at);
    if (!h->vecs || !h->link0 || !h->levels || !h->upper_at)
        return mp_error_set(err, MP_ENOMEM, "hnsw: out of memory for %zu vectors of dimension %zu", n, dim);
    memset(h->link0, 0, l0_bytes);
    if (levels) memcpy(h->levels, levels, n);
    size_t blocks = 0;
    for (size_t i = 0; i < n; i++) {
        h->upper_at[i] = (uint32_t)blocks;
        blocks += h->levels[i];
        if (blocks >= UINT32_MAX) return mp_error_set(err, MP_EINVAL, "hnsw: too many upper-layer nodes (%zu)", blocks);
    }
    h->n_upper = blocks;
    h->upper = calloc(blocks * (h->M + 1) + 1, sizeof *h->upper);
    if (!h->upper) return mp_error_set(err, MP_ENOMEM, "hnsw: out of memory for %zu upper-layer lists", blocks);
    return MP_OK;
}

void mp_hnsw_destroy(mp_hnsw *h) {
    if (!h) return;
    free(h->vecs);
    free(h->link0);
    free(h->levels);
    free(h->upper_at);
    free(h->upper);
    free(h);
}

int mp_hnsw_build(mp_hnsw **out, const float *vecs, uint32_t n, uint32_t dim, mp_ann_metric metric,
                  const mp_hnsw_params *params, const mp_progress *progress, mp_error *err) {
    if (!out) return mp_error_set(err, MP_EINVAL, "hnsw build: out must not be NULL");
    *out = NULL;
    mp_hnsw_params p;
    if (params)
        p = *params;
    else
        mp_hnsw_params_default(&p);
    if (n == 0) return mp_error_set(err, MP_EEMPTY, "hnsw build: no vectors to index (n = 0)");
    if (!vecs) return mp_error_set(err, MP_EINVAL, "hnsw build: vecs must not be NULL");
    if (dim == 0 || dim > MP_ANN_MAX_DIM)
        return mp_error_set(err, MP_EINVAL, "hnsw build: dimension %u is outside 1..%u", dim, MP_ANN_MAX_DIM);
    if (metric != MP_ANN_IP && metric != MP_ANN_COSINE && metric != MP_ANN_L2)
        return mp_error_set(err, MP_EINVAL, "hnsw build: unknown metric %d (expected ip, cosine or l2)", (int)metric);
    if (p.M < 2 || p.M > MP_ANN_MAX_M)
        return mp_error_set(err, MP_EINVAL, "hnsw build: M = %u is outside 2..%u", p.M, MP_ANN_MAX_M);
    if (p.ef_construction == 0) return mp_error_set(err, MP_EINVAL, "hnsw build: ef_construction must be at least 1");
    if (p.n_threads < 0) return mp_error_set(err, MP_EINVAL, "hnsw build: n_threads %d is negative", p.n_threads);
    size_t bad;
    if (!mp_ann_all_finite(vecs, (size_t)n * dim, &bad))
        return mp_error_set(err, MP_EINVAL, "hnsw build: row %zu, column %zu: value is not finite (NaN or infinity)",
                            bad / dim, bad % dim);

    mp_hnsw *h = calloc(1, sizeof *h);
    if (!h) return mp_error_set(err, MP_ENOMEM, "hnsw build: out of memory");
    h->n = n;
    h->dim = dim;
    h->metric = metric;
    h->M = p.M;
    h->ef_construction = p.ef_construction < p.M ? p.M : p.ef_construction;
    h->seed = p.seed;
    h->dist = mp_ann_dist_pick(metric, 1);
    uint8_t *levels = malloc(n);
    if (!levels) {
        mp_hnsw_destroy(h);
        return mp_error_set(err, MP_ENOMEM, "hnsw build: out of memory");
    }
    mp_rng rng;
    mp_rng_seed(&rng, p.seed);
    double ml = 1.0 / log((double)p.M);
    for (uint32_t i = 0; i < n; i++) {
        double level = floor(-log(1.0 - mp_rng_uniform(&rng)) * ml); /* 1 - U is in (0, 1] */
        levels[i] = (uint8_t)(level < MP_ANN_MAX_LEVEL ? level : MP_ANN_MAX_LEVEL);
    }
    int rc = mp_hnsw_alloc_graph(h, levels, err);
    free(levels);
    if (rc) {
        mp_hnsw_destroy(h);
        return rc;
    }
    if (metric == MP_ANN_COSINE) {
        for (uint32_t i = 0; i < n; i++)
            mp_ann_normalise(h->vecs + (size_t)i * dim, vecs + (size_t)i * dim, dim);
    } else {
        memcpy(h->vecs, vecs, (size_t)n * dim * sizeof *vecs);
    }

    int nt = p.n_threads;
#ifdef _OPENMP
    if (nt == 0) nt = omp_get_max_threads();
#else
    nt = 1;
#endif
    if (nt < 1) nt = 1;
    if ((uint32_t)nt > n) nt = (int)n;
    build_ctx b;
    b.h = h;
    b.locks = calloc(n, sizeof *b.locks);
    mp_hnsw_scratch **scr = calloc((size_t)nt, sizeof *scr);
    int ok = b.locks && scr;
    for (int t = 0; ok && t < nt; t++)
        ok = scratch_alloc(&scr[t], n, dim, h->M0, h->ef_construction) == MP_OK;
    if (!ok || pthread_mutex_init(&b.ep_lock, NULL) != 0) {
        for (int t = 0; scr && t < nt; t++)
            mp_hnsw_scratch_destroy(scr[t]);
        free(scr);
        free(b.locks);
        mp_hnsw_destroy(h);
        return mp_error_set(err, MP_ENOMEM, "hnsw build: out of memory for %d threads' search state", nt);
    }
    h->entry = 0;
    h->max_level = h->levels[0];
    rc = MP_OK;
    for (uint32_t start = 1; start < n && rc == MP_OK; start += HNSW_CHUNK) {
        uint32_t end = n - start < HNSW_CHUNK ? n : start + HNSW_CHUNK;
        if (nt == 1) {
            for (uint32_t i = start; i < end && rc == MP_OK; i++)
                rc = insert(&b, scr[0], i);
        } else {
            int chunk_rc = MP_OK;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 16)
#endif
            for (uint32_t i = start; i < end; i++) {
#ifdef _OPENMP
                int t = omp_get_thread_num();
#else
                int t = 0;
#endif
                if (insert(&b, scr[t], i) != MP_OK) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
                    chunk_rc = MP_ENOMEM;
                }
            }
            rc = chunk_rc;
        }
        mp_progress_report(progress, "index", end, n);
    }
    if (n == 1) mp_progress_report(progress, "index", 1, 1);
    pthread_mutex_destroy(&b.ep_lock);
    for (int t = 0; t < nt; t++)
        mp_hnsw_scratch_destroy(scr[t]);
    free(scr);
    free(b.locks);
    if (rc) {
        mp_hnsw_destroy(h);
        return mp_error_set(err, MP_ENOMEM, "hnsw build: out of memory for the candidate lists");
    }
    *out = h;
    return MP_OK;
}

/* ---- accessors ---- */

uint32_t mp_hnsw_size(const mp_hnsw *h) {
    return h ? h->n : 0;
}
const float *mp_hnsw_vectors(const mp_hnsw *h) { return h->vecs; }

void mp_hnsw_params_of(const mp_hnsw *h, mp_hnsw_params *out) {
    mp_hnsw_params_default(out);
    out->M = h->M;
    out->ef_construction = h->ef_construction;
    out->seed = h->seed;
    out->n_threads = 0;
}

uint32_t mp_hnsw_dim(const mp_hnsw *h) {
    return h ? h->dim : 0;
}
mp_ann_metric mp_hnsw_metric(const mp_hnsw *h) {
    return h ? h->metric : MP_ANN_IP;
}

size_t mp_hnsw_memory(const mp_hnsw *h) {
    if (!h) return 0;
    return sizeof *h + (size_t)h->n * h->dim * sizeof(float) + (size_t)h->n * (h->M0 + 1) * sizeof(uint32_t) +
           (size_t)h->n * (1 + sizeof(uint32_t)) + h->n_upper * (h->M + 1) * sizeof(uint32_t);
}
