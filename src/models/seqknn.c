/* "seqknn": sequence-aware item-to-item nearest neighbours for e-commerce (what is bought after what).
 *
 * Training events are read per user in time order (types with a positive weight only), giving one item sequence
 * per user. Every pair of positions p < q at distance d = q - p <= window adds to the co-occurrence counts
 *   C(s_p -> s_q) += forward  * d^-decay     (a transition: s_q came after s_p)
 *   C(s_q -> s_p) += backward * d^-decay     (the reverse direction, usually weighted less)
 * (pairs of an item with itself are skipped). With n_i = how often item i occurs in the sequences, the similarity
 * used for scoring divides popular items down (an IDF-like normalisation):
 *   sim(i -> j) = C(i -> j) / (n_i^alpha * n_j^beta + shrink)
 * A user is scored from ctx->history alone: with h_0 the most recent distinct item, h_1 the one before and so on,
 *   score(j) = popularity * n_j / max_i n_i + sum_r 0.5^(r / recency) * sim(h_r -> j)   (recency 0: all weigh 1)
 * so anonymous sessions and events newer than the fit are used at once. The model keeps the raw counts (not a
 * top-k of similarities), so update() can add the transitions of new events exactly: it remembers the last
 * `window` items of every user (their tail) and counts each new event against that tail, as fit would have.
 * forget_user() subtracts what a user's events contributed and drops the user's tail.
 * Defaults were chosen on the validation split of Amazon Games (Games-6k.valid.inter: every user's validation
 * history as training, 3,000 + 8,000 sampled users' validation targets ranked against all items, NDCG@10; see
 * `coldstart_bench tune`), never on its test split: window 10, forward 1, backward 0.75, decay 0.5, alpha 0.5,
 * beta 0.25, shrink 5, recency 2, popularity 0.03 (NDCG@10 0.083 there; itemknn's defaults 0.070). recency is
 * "auto" since: 2 holds for such short histories, but MovieLens-100K's long rating histories want 0 (validation
 * NDCG@10 0.264 against 0.168), so the fit picks it from the mean history length (docs/defaults.md). Games
 * transitions are only mildly directional (backward 0.75 beat 0.25 and 0), full ranking wants popular items damped
 * only a little, and a small popularity prior orders the items that co-occur with nothing in the history (it also
 * won on the validation users of the 20-candidate protocol: N@10 70.8 against 67.2 without it). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_input.h"
#include "magpie/buf.h"
#include "magpie/model.h"
#include "magpie/topk.h"
#include "models/params.h"

#define SK_FILE_VERSION 1
#define SK_MAX_WINDOW 64

typedef struct sk_row {
    uint32_t n, cap;
    uint32_t *nbr; /* ascending */
    float *c;      /* raw counts C(row -> nbr) */
} sk_row;

typedef struct seqknn {
    /* parameters */
    uint32_t window;
    double forward, backward, decay, alpha, beta, shrink, recency, popularity;
    int recency_auto; /* 1: recency is chosen at fit time from the data (sk_auto_recency) */

    /* fitted state (owned) */
    uint32_t n_items, n_users;
    float type_weight[MP_EV_NTYPES];
    sk_row *rows;      /* [n_items] */
    float *cnt;        /* [n_items] occurrences n_i */
    float *pa, *pb;    /* [n_items] n_i^alpha, n_i^beta (derived, not saved) */
    uint32_t *tail;    /* [n_users * window] the last items of each user, most recent last */
    uint8_t *tail_len; /* [n_users] */
    char **titles;     /* [n_items] or NULL */
} seqknn;

/* The parameters are seqknn's first fields: the descriptors' offsets are into seqknn itself. */
static const mp_param_info sk_params[] = {
    MP_P_UINT("window", seqknn, window, "10", 1, SK_MAX_WINDOW,
              "positions either side of an item whose items count as co-occurring (1..64)"),
    MP_P_REAL("forward", seqknn, forward, "1", 0, 1e9, "weight of a transition i -> j where j came after i (>= 0)"),
    MP_P_REAL("backward", seqknn, backward, "0.75", 0, 1e9, "weight of the reverse direction, j came before i (>= 0)"),
    MP_P_REAL("decay", seqknn, decay, "0.5", 0, 10,
              "a pair at distance d counts d^-decay (>= 0; 0: every distance counts the same)"),
    MP_P_REAL("alpha", seqknn, alpha, "0.5", 0, 2,
              "sim(i->j) divides by n_i^alpha n_j^beta + shrink (n = occurrences): alpha in [0, 2]"),
    MP_P_REAL("beta", seqknn, beta, "0.25", 0, 2,
              "popularity damping of the recommended item j, in [0, 2] (0: popular items are not damped)"),
    MP_P_REAL("shrink", seqknn, shrink, "5", 0, 1e9, "added to the similarity denominator (>= 0): damps pairs of rare items",
              MP_TUNED_LINEAR(0, 100)),
    MP_P_REAL_AUTO("recency", seqknn, recency, recency_auto, "auto", 0, 1e9,
                   "history half-life in items: the r-th most recent item weighs 0.5^(r / recency); 0: all equal; "
                   "auto: 2 when users have fewer than 30 items on average (sessions), else 0 (docs/defaults.md)"),
    MP_P_REAL("popularity", seqknn, popularity, "0.03", 0, 1e9,
              "adds popularity * n_j / max n to every score (>= 0): a tie-breaker for items that co-occur with "
              "nothing in the history"),
    {NULL},
};
/* Files hold the window, then the eight real parameters as one array with a u64 count before it. The count is
 * 8 in files written before recency took "auto", 9 since (recency's auto flag follows it as a u32). */
#define SK_N_REALS 8
_Static_assert(MP_PARAM_COUNT(sk_params) == 1 + SK_N_REALS, "seqknn: the file layout is the window and 8 reals");

static void sk_release(void *impl) {
    seqknn *m = impl;
    if (m->rows)
        for (uint32_t i = 0; i < m->n_items; i++) {
            free(m->rows[i].nbr);
            free(m->rows[i].c);
        }
    free(m->rows);
    free(m->cnt);
    free(m->pa);
    free(m->pb);
    free(m->tail);
    free(m->tail_len);
    mp_item_titles_free(m->titles, m->n_items);
    m->rows = NULL;
    m->cnt = m->pa = m->pb = NULL;
    m->tail = NULL;
    m->tail_len = NULL;
    m->titles = NULL;
    m->n_items = m->n_users = 0;
}

static void sk_refresh_norm(seqknn *m, uint32_t i) {
    double c = m->cnt[i] > 0 ? m->cnt[i] : 0;
    m->pa[i] = (float)pow(c, m->alpha);
    m->pb[i] = (float)pow(c, m->beta);
}

/* Pair weights by distance: wd[d] = d^-decay for d = 1..window (wd[0] unused). */
static void sk_dist_weights(const seqknn *m, double *wd) {
    wd[0] = 0;
    for (uint32_t d = 1; d <= m->window; d++) wd[d] = pow((double)d, -m->decay);
}

/* Position of nbr in the row, or where it would go. */
static uint32_t sk_find(const sk_row *r, uint32_t j) {
    uint32_t lo = 0, hi = r->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->nbr[mid] < j) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* C(row -> j) += w (adds the entry when missing). MP_OK or MP_ENOMEM. */
static int sk_row_add(sk_row *r, uint32_t j, float w) {
    uint32_t at = sk_find(r, j);
    if (at < r->n && r->nbr[at] == j) {
        r->c[at] += w;
        return MP_OK;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap;
        if (mp_grow2((void **)&r->nbr, sizeof *r->nbr, (void **)&r->c, sizeof *r->c, &cap, (size_t)r->n + 1) ||
            cap > UINT32_MAX)
            return MP_ENOMEM;
        r->cap = (uint32_t)cap;
    }
    memmove(r->nbr + at + 1, r->nbr + at, (r->n - at) * sizeof *r->nbr);
    memmove(r->c + at + 1, r->c + at, (r->n - at) * sizeof *r->c);
    r->nbr[at] = j;
    r->c[at] = w;
    r->n++;
    return MP_OK;
}

/* Grows the item arrays to n items (new rows empty). */
static int sk_grow_items(seqknn *m, uint32_t n) {
    if (n <= m->n_items) return MP_OK;
    sk_row *rows = realloc(m->rows, (size_t)n * sizeof *rows);
    if (!rows) return MP_ENOMEM;
    m->rows = rows;
    memset(rows + m->n_items, 0, (size_t)(n - m->n_items) * sizeof *rows);
    float *arr[3] = {m->cnt, m->pa, m->pb};
    for (int a = 0; a < 3; a++) {
        float *p = realloc(arr[a], (size_t)n * sizeof *p);
        if (!p) return MP_ENOMEM;
        memset(p + m->n_items, 0, (size_t)(n - m->n_items) * sizeof *p);
        arr[a] = p;
        if (a == 0) m->cnt = p;
        else if (a == 1) m->pa = p;
        else m->pb = p;
    }
    if (m->titles && mp_item_titles_grow(&m->titles, m->n_items, n)) return MP_ENOMEM;
    m->n_items = n;
    return MP_OK;
}

static int sk_grow_users(seqknn *m, uint32_t n) {
    if (n <= m->n_users) return MP_OK;
    uint32_t *t = realloc(m->tail, (size_t)n * m->window * sizeof *t);
    if (!t) return MP_ENOMEM;
    m->tail = t;
    uint8_t *l = realloc(m->tail_len, n);
    if (!l) return MP_ENOMEM;
    memset(l + m->n_users, 0, n - m->n_users);
    m->tail_len = l;
    m->n_users = n;
    return MP_OK;
}

static int sk_u32_cmp(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static inline int sk_keep(const seqknn *m, const mp_interaction *e, uint32_t n_items) {
    return e->item < n_items && e->type < MP_EV_NTYPES && m->type_weight[e->type] > 0;
}

static int sk_fit(void *impl, const mp_train_data *data, const mp_progress *progress, mp_error *err) {
    seqknn *m = impl;
    sk_release(m);
    if (!data->events || data->n_events == 0) return mp_error_set(err, MP_EEMPTY, "seqknn: no training events");
    cf_type_weights(data, m->type_weight);
    /* recency=auto: short histories (sessions of a large catalog) are best read most-recent-first, long rating
     * histories as a set. Chosen on validation splits: Beauty and the demo shop want 2, MovieLens-100K 0. */
    if (m->recency_auto) m->recency = mp_train_data_items_per_user(data) < 30 ? 2 : 0;
    const uint32_t n = data->n_items, W = m->window;
    const size_t ne = data->n_events;
    for (size_t e = 1; e < ne; e++)
        if (data->events[e].user < data->events[e - 1].user)
            return mp_error_set(err, MP_EINVAL, "seqknn: training events are not sorted by user (event %zu)", e);

    /* the filtered sequences: seq[p] with [lo[p], hi[p]) the bounds of p's user */
    uint32_t *seq = malloc((ne ? ne : 1) * sizeof *seq);
    uint64_t *bound = malloc((ne ? ne : 1) * 2 * sizeof *bound);
    uint64_t *optr = calloc((size_t)n + 2, sizeof *optr);
    uint64_t *occ = malloc((ne ? ne : 1) * sizeof *occ);
    sk_row *rows = calloc(n ? n : 1, sizeof *rows);
    int rc = MP_OK;
    if (!seq || !bound || !optr || !occ || !rows) goto oom;
    uint64_t np = 0;
    for (size_t a = 0; a < ne;) {
        size_t b = a;
        uint64_t start = np;
        while (b < ne && data->events[b].user == data->events[a].user) {
            if (sk_keep(m, &data->events[b], n)) seq[np++] = data->events[b].item;
            b++;
        }
        for (uint64_t p = start; p < np; p++) {
            bound[2 * p] = start;
            bound[2 * p + 1] = np;
        }
        a = b;
    }
    for (uint64_t p = 0; p < np; p++) optr[seq[p] + 2]++;
    for (uint32_t i = 0; i < n; i++) optr[i + 2] += optr[i + 1];
    for (uint64_t p = 0; p < np; p++) occ[optr[seq[p] + 1]++] = p;

    double wd[SK_MAX_WINDOW + 1];
    sk_dist_weights(m, wd);
    int nt = data->n_threads > 0 ? data->n_threads : omp_get_max_threads();
    int oom = 0;
#pragma omp parallel num_threads(nt)
    {
        float *acc = calloc(n ? n : 1, sizeof *acc);
        uint32_t *mark = calloc(n ? n : 1, sizeof *mark);
        uint32_t *touched = malloc((n ? n : 1) * sizeof *touched);
        if (!acc || !mark || !touched) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp barrier
        int bail;
#pragma omp atomic read
        bail = oom;
        if (!bail) {
#pragma omp for schedule(dynamic, 64)
            for (uint32_t i = 0; i < n; i++) {
                uint32_t nt_i = 0;
                for (uint64_t o = optr[i]; o < optr[i + 1]; o++) {
                    uint64_t p = occ[o], lo = bound[2 * p], hi = bound[2 * p + 1];
                    uint64_t q0 = p >= lo + W ? p - W : lo, q1 = p + W + 1 < hi ? p + W + 1 : hi;
                    for (uint64_t q = q0; q < q1; q++) {
                        uint32_t j = seq[q];
                        if (q == p || j == i) continue;
                        double w = q > p ? m->forward * wd[q - p] : m->backward * wd[p - q];
                        if (mark[j] != i + 1) {
                            mark[j] = i + 1;
                            acc[j] = 0;
                            touched[nt_i++] = j;
                        }
                        acc[j] += (float)w;
                    }
                }
                sk_row *r = &rows[i];
                if (nt_i) {
                    uint32_t keep = 0;
                    for (uint32_t t = 0; t < nt_i; t++)
                        if (acc[touched[t]] > 0) touched[keep++] = touched[t];
                    nt_i = keep;
                }
                if (nt_i) {
                    r->nbr = malloc((size_t)nt_i * sizeof *r->nbr);
                    r->c = malloc((size_t)nt_i * sizeof *r->c);
                    if (!r->nbr || !r->c) {
#pragma omp atomic write
                        oom = 1;
                    } else {
                        memcpy(r->nbr, touched, (size_t)nt_i * sizeof *r->nbr);
                        qsort(r->nbr, nt_i, sizeof *r->nbr, sk_u32_cmp);
                        for (uint32_t t = 0; t < nt_i; t++) r->c[t] = acc[r->nbr[t]];
                        r->n = r->cap = nt_i;
                    }
                }
                if (omp_get_thread_num() == 0 && (i & 1023) == 0) mp_progress_report(progress, "fit", i, n);
            }
        }
        free(acc);
        free(mark);
        free(touched);
    }
    m->rows = rows;
    m->n_items = n;
    rows = NULL;
    if (oom) goto oom;
    m->cnt = calloc(n ? n : 1, sizeof *m->cnt);
    m->pa = malloc((n ? n : 1) * sizeof *m->pa);
    m->pb = malloc((n ? n : 1) * sizeof *m->pb);
    if (!m->cnt || !m->pa || !m->pb) goto oom;
    for (uint32_t i = 0; i < n; i++) {
        m->cnt[i] = (float)(optr[i + 1] - optr[i]);
        sk_refresh_norm(m, i);
    }
    /* the tails of the users */
    if (sk_grow_users(m, data->n_users)) goto oom;
    for (size_t a = 0; a < ne;) {
        uint32_t u = data->events[a].user;
        size_t b = a;
        uint32_t len = 0;
        while (b < ne && data->events[b].user == u) b++;
        uint32_t kept = 0;
        for (size_t e = a; e < b; e++) kept += (uint32_t)sk_keep(m, &data->events[e], n);
        len = kept < W ? kept : W;
        if (u < m->n_users) {
            uint32_t skip = kept - len, s = 0, w = 0;
            for (size_t e = a; e < b; e++) {
                if (!sk_keep(m, &data->events[e], n)) continue;
                if (s++ >= skip) m->tail[(size_t)u * W + w++] = data->events[e].item;
            }
            m->tail_len[u] = (uint8_t)len;
        }
        a = b;
    }
    if (mp_item_titles_copy(data->item_titles, n, &m->titles)) goto oom;
    mp_progress_report(progress, "fit", n, n);
    goto done;
oom:
    rc = mp_error_set(err, MP_ENOMEM, "seqknn: out of memory counting the transitions of %zu events over %u items",
                      ne, n);
    if (rows) {
        for (uint32_t i = 0; i < n; i++) {
            free(rows[i].nbr);
            free(rows[i].c);
        }
        free(rows);
    }
    sk_release(m);
done:
    free(seq);
    free(bound);
    free(optr);
    free(occ);
    return rc;
}

/* A history as (item, weight) pairs: distinct items, weight 0.5^(r / recency) by recency rank r. */
typedef struct sk_hist {
    uint32_t item;
    uint32_t pos; /* position of the latest event on the item in the history */
    float w;
} sk_hist;

static int sk_hist_by_item_pos(const void *a, const void *b) {
    const sk_hist *x = a, *y = b;
    if (x->item != y->item) return x->item < y->item ? -1 : 1;
    return x->pos > y->pos ? -1 : x->pos < y->pos; /* latest first */
}

static int sk_hist_by_pos(const void *a, const void *b) {
    const sk_hist *x = a, *y = b;
    return x->pos > y->pos ? -1 : x->pos < y->pos;
}

/* Builds the weighted distinct history, most recent first. *out malloc'ed (NULL when empty). */
static int sk_history(const seqknn *m, const mp_user_ctx *ctx, sk_hist **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    if (!ctx || !ctx->history || ctx->n_history == 0) return MP_OK;
    sk_hist *h = malloc(ctx->n_history * sizeof *h);
    if (!h) return MP_ENOMEM;
    size_t k = 0;
    for (size_t e = 0; e < ctx->n_history; e++)
        if (sk_keep(m, &ctx->history[e], m->n_items)) h[k++] = (sk_hist){ctx->history[e].item, (uint32_t)e, 0};
    qsort(h, k, sizeof *h, sk_hist_by_item_pos);
    size_t d = 0;
    for (size_t a = 0; a < k; a++)
        if (d == 0 || h[d - 1].item != h[a].item) h[d++] = h[a];
    qsort(h, d, sizeof *h, sk_hist_by_pos);
    for (size_t r = 0; r < d; r++) h[r].w = m->recency > 0 ? (float)exp2(-(double)r / m->recency) : 1.0f;
    if (d == 0) free(h);
    else *out = h;
    *n_out = d;
    return MP_OK;
}

static int sk_score_all(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err) {
    const seqknn *m = impl;
    memset(scores, 0, (size_t)m->n_items * sizeof *scores);
    sk_hist *h;
    size_t nh;
    if (sk_history(m, ctx, &h, &nh))
        return mp_error_set(err, MP_ENOMEM, "seqknn: out of memory for a history of %zu events", ctx->n_history);
    const float sh = (float)m->shrink;
    if (m->popularity > 0) {
        float mx = 0;
        for (uint32_t i = 0; i < m->n_items; i++)
            if (m->cnt[i] > mx) mx = m->cnt[i];
        if (mx > 0)
            for (uint32_t i = 0; i < m->n_items; i++) scores[i] = (float)(m->popularity * m->cnt[i] / mx);
    }
    for (size_t a = 0; a < nh; a++) {
        const sk_row *r = &m->rows[h[a].item];
        float pa = m->pa[h[a].item], w = h[a].w;
        for (uint32_t t = 0; t < r->n; t++) {
            float den = pa * m->pb[r->nbr[t]] + sh;
            if (den > 0) scores[r->nbr[t]] += w * r->c[t] / den;
        }
    }
    free(h);
    return MP_OK;
}

static float sk_sim(const seqknn *m, uint32_t i, uint32_t j) {
    const sk_row *r = &m->rows[i];
    uint32_t at = sk_find(r, j);
    if (at >= r->n || r->nbr[at] != j) return 0;
    float den = m->pa[i] * m->pb[j] + (float)m->shrink;
    return den > 0 ? r->c[at] / den : 0;
}

static int sk_explain(const void *impl, const mp_user_ctx *ctx, uint32_t item, char *buf, size_t cap, mp_error *err) {
    const seqknn *m = impl;
    if (item >= m->n_items) return mp_error_set(err, MP_ENOTFOUND, "seqknn: unknown item %u", item);
    sk_hist *h;
    size_t nh;
    if (sk_history(m, ctx, &h, &nh))
        return mp_error_set(err, MP_ENOMEM, "seqknn: out of memory for a history of %zu events", ctx->n_history);
    size_t best = SIZE_MAX;
    float best_c = 0;
    for (size_t a = 0; a < nh; a++) {
        float c = h[a].w * sk_sim(m, h[a].item, item);
        if (c > best_c) {
            best_c = c;
            best = a;
        }
    }
    if (best != SIZE_MAX) {
        uint32_t j = h[best].item;
        if (m->titles && m->titles[j]) snprintf(buf, cap, "bought after \xe2\x80\x98%.150s\xe2\x80\x99", m->titles[j]);
        else snprintf(buf, cap, "bought after item %u", j);
    } else if (nh == 0) snprintf(buf, cap, "no history yet: nothing to follow on from");
    else snprintf(buf, cap, "not bought near anything in your history");
    free(h);
    return MP_OK;
}

static int sk_similar(const void *impl, uint32_t item, size_t n, uint32_t *out_items, float *out_scores,
                      size_t *n_out, mp_error *err) {
    const seqknn *m = impl;
    *n_out = 0;
    if (item >= m->n_items) return mp_error_set(err, MP_ENOTFOUND, "seqknn: unknown item %u", item);
    const sk_row *r = &m->rows[item];
    if (r->n == 0 || n == 0) return MP_OK;
    float *s = malloc((size_t)r->n * sizeof *s);
    uint32_t *pos = malloc((size_t)r->n * sizeof *pos);
    if (!s || !pos) {
        free(s);
        free(pos);
        return mp_error_set(err, MP_ENOMEM, "seqknn: out of memory");
    }
    for (uint32_t t = 0; t < r->n; t++) s[t] = sk_sim(m, item, r->nbr[t]);
    size_t got, w = 0;
    int rc = mp_topk(s, r->n, NULL, n, pos, &got);
    if (rc) {
        free(s);
        free(pos);
        return mp_error_set(err, rc, "seqknn: cannot rank %u neighbours: %s", r->n, mp_strerror(rc));
    }
    for (size_t t = 0; t < got; t++) {
        if (!(s[pos[t]] > 0)) break;
        out_items[w] = r->nbr[pos[t]];
        if (out_scores) out_scores[w] = s[pos[t]];
        w++;
    }
    *n_out = w;
    free(s);
    free(pos);
    return MP_OK;
}

/* Counts (sign +1) or uncounts (-1) the pair j (new, at the end) against the item t at distance d before it. */
static int sk_pair(seqknn *m, uint32_t t, uint32_t j, uint32_t d, const double *wd, float sign) {
    if (t == j) return MP_OK;
    if (sk_row_add(&m->rows[t], j, sign * (float)(m->forward * wd[d])) ||
        sk_row_add(&m->rows[j], t, sign * (float)(m->backward * wd[d])))
        return MP_ENOMEM;
    return MP_OK;
}

static int sk_update(void *impl, const mp_interaction *events, size_t n, mp_error *err) {
    seqknn *m = impl;
    const uint32_t W = m->window;
    double wd[SK_MAX_WINDOW + 1];
    sk_dist_weights(m, wd);
    for (size_t e = 0; e < n; e++) {
        const mp_interaction *ev = &events[e];
        if (ev->user == MP_NO_USER || ev->item == UINT32_MAX)
            return mp_error_set(err, MP_EINVAL, "seqknn: update event %zu has no user or no item", e);
        if (ev->type >= MP_EV_NTYPES)
            return mp_error_set(err, MP_EINVAL, "seqknn: update event %zu has unknown type %u", e, ev->type);
    }
    for (size_t e = 0; e < n; e++) {
        const mp_interaction *ev = &events[e];
        if (!(m->type_weight[ev->type] > 0)) continue;
        uint32_t u = ev->user, j = ev->item;
        if ((j >= m->n_items && sk_grow_items(m, j + 1)) || (u >= m->n_users && sk_grow_users(m, u + 1)))
            return mp_error_set(err, MP_ENOMEM, "seqknn: out of memory growing to item %u, user %u", j, u);
        uint32_t *tl = m->tail + (size_t)u * W, len = m->tail_len[u];
        for (uint32_t d = 1; d <= len; d++)
            if (sk_pair(m, tl[len - d], j, d, wd, 1.0f))
                return mp_error_set(err, MP_ENOMEM, "seqknn: out of memory adding event %zu", e);
        m->cnt[j] += 1;
        sk_refresh_norm(m, j);
        if (len == W) {
            memmove(tl, tl + 1, (W - 1) * sizeof *tl);
            len--;
        }
        tl[len++] = j;
        m->tail_len[u] = (uint8_t)len;
    }
    return MP_OK;
}

/* Subtracts what the user's events (in time order) added at fit or update, and drops the user's tail. */
static int sk_forget_user(void *impl, uint32_t u, const mp_interaction *events, size_t n, mp_error *err) {
    seqknn *m = impl;
    const uint32_t W = m->window;
    double wd[SK_MAX_WINDOW + 1];
    sk_dist_weights(m, wd);
    uint32_t *seq = malloc((n ? n : 1) * sizeof *seq);
    if (!seq) return mp_error_set(err, MP_ENOMEM, "seqknn: out of memory forgetting user %u", u);
    size_t k = 0;
    for (size_t e = 0; e < n; e++)
        if (sk_keep(m, &events[e], m->n_items)) seq[k++] = events[e].item;
    for (size_t q = 0; q < k; q++) {
        uint32_t j = seq[q];
        for (uint32_t d = 1; d <= W && d <= q; d++) {
            uint32_t t = seq[q - d];
            if (t == j) continue;
            sk_row *rt = &m->rows[t], *rj = &m->rows[j];
            uint32_t a = sk_find(rt, j), b = sk_find(rj, t);
            if (a < rt->n && rt->nbr[a] == j) {
                rt->c[a] -= (float)(m->forward * wd[d]);
                if (rt->c[a] < 1e-6f) rt->c[a] = 0;
            }
            if (b < rj->n && rj->nbr[b] == t) {
                rj->c[b] -= (float)(m->backward * wd[d]);
                if (rj->c[b] < 1e-6f) rj->c[b] = 0;
            }
        }
        m->cnt[j] = m->cnt[j] > 1 ? m->cnt[j] - 1 : 0;
        sk_refresh_norm(m, j);
    }
    free(seq);
    if (u < m->n_users) m->tail_len[u] = 0;
    return MP_OK;
}

static int sk_save(const void *impl, mp_mf_writer *w, mp_error *err) {
    const seqknn *m = impl;
    (void)err;
    mp_params_put(sk_params, 1, m, w);
    mp_mf_put_u64(w, SK_N_REALS + 1);
    mp_params_put(sk_params + 1, SK_N_REALS, m, w);
    mp_mf_put_u32(w, m->n_items);
    mp_mf_put_u32(w, m->n_users);
    mp_mf_put_f32s(w, m->type_weight, MP_EV_NTYPES);
    mp_mf_put_f32s(w, m->cnt, m->n_items);
    uint64_t nnz = 0;
    for (uint32_t i = 0; i < m->n_items; i++) nnz += m->rows[i].n;
    mp_mf_put_u64(w, nnz);
    for (uint32_t i = 0; i < m->n_items; i++) mp_mf_put_u32(w, m->rows[i].n);
    for (uint32_t i = 0; i < m->n_items; i++) mp_mf_put_u32s(w, m->rows[i].nbr, m->rows[i].n);
    for (uint32_t i = 0; i < m->n_items; i++) mp_mf_put_f32s(w, m->rows[i].c, m->rows[i].n);
    mp_mf_put_bytes(w, m->tail_len, m->n_users);
    for (uint32_t u = 0; u < m->n_users; u++) mp_mf_put_u32s(w, m->tail + (size_t)u * m->window, m->tail_len[u]);
    mp_item_titles_save(w, m->titles, m->n_items);
    return MP_OK;
}

static int sk_bad(mp_error *err, const char *what) { return mp_error_set(err, MP_ECORRUPT, "seqknn payload: %s", what); }

static int sk_load(void *impl, mp_mf_reader *r, mp_error *err) {
    seqknn *m = impl;
    sk_release(m);
    uint32_t n, nu;
    uint64_t nnz, n_reals;
    int rc;
    if ((rc = mp_params_get(sk_params, 1, m, r, "seqknn", err)) || (rc = mp_mf_get_u64(r, &n_reals, err)))
        return rc;
    if (n_reals != SK_N_REALS && n_reals != SK_N_REALS + 1) return sk_bad(err, "parameter block of another layout");
    /* an older file has no auto flag after recency */
    rc = (n_reals == SK_N_REALS ? mp_params_get_flagless : mp_params_get)(sk_params + 1, SK_N_REALS, m, r, "seqknn",
                                                                          err);
    if (rc || (rc = mp_mf_get_u32(r, &n, err)) || (rc = mp_mf_get_u32(r, &nu, err)) ||
        (rc = mp_mf_get_f32s(r, m->type_weight, MP_EV_NTYPES, err)))
        return rc;
    if ((uint64_t)n * 8 + nu > mp_mf_remaining(r)) return sk_bad(err, "item or user count does not fit the file");
    if (sk_grow_items(m, n) || sk_grow_users(m, nu)) {
        sk_release(m);
        return mp_error_set(err, MP_ENOMEM, "seqknn: out of memory loading %u items, %u users", n, nu);
    }
    if ((rc = mp_mf_get_f32s(r, m->cnt, n, err)) || (rc = mp_mf_get_u64(r, &nnz, err))) goto fail;
    if (nnz > mp_mf_remaining(r) / 8) {
        rc = sk_bad(err, "neighbour count does not fit the file");
        goto fail;
    }
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len;
        if ((rc = mp_mf_get_u32(r, &len, err))) goto fail;
        sum += len;
        if (sum > nnz) {
            rc = sk_bad(err, "row lengths exceed the neighbour count");
            goto fail;
        }
        sk_row *row = &m->rows[i];
        if (len) {
            row->nbr = malloc((size_t)len * sizeof *row->nbr);
            row->c = malloc((size_t)len * sizeof *row->c);
            if (!row->nbr || !row->c) {
                rc = mp_error_set(err, MP_ENOMEM, "seqknn: out of memory loading %u neighbours", len);
                goto fail;
            }
        }
        row->n = row->cap = len;
    }
    if (sum != nnz) {
        rc = sk_bad(err, "row lengths do not add up to the neighbour count");
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++)
        if ((rc = mp_mf_get_u32s(r, m->rows[i].nbr, m->rows[i].n, err))) goto fail;
    for (uint32_t i = 0; i < n; i++)
        if ((rc = mp_mf_get_f32s(r, m->rows[i].c, m->rows[i].n, err))) goto fail;
    for (uint32_t i = 0; i < n; i++) {
        const sk_row *row = &m->rows[i];
        if (!(m->cnt[i] >= 0) || !isfinite(m->cnt[i])) {
            rc = sk_bad(err, "item counts out of range");
            goto fail;
        }
        for (uint32_t t = 0; t < row->n; t++)
            if (row->nbr[t] >= n || (t > 0 && row->nbr[t] <= row->nbr[t - 1]) || !isfinite(row->c[t]) ||
                row->c[t] < 0) {
                rc = sk_bad(err, "neighbour ids out of range or out of order");
                goto fail;
            }
        sk_refresh_norm(m, i);
    }
    if ((rc = mp_mf_get_bytes(r, m->tail_len, nu, err))) goto fail;
    for (uint32_t u = 0; u < nu; u++) {
        if (m->tail_len[u] > m->window) {
            rc = sk_bad(err, "user tail longer than the window");
            goto fail;
        }
        if ((rc = mp_mf_get_u32s(r, m->tail + (size_t)u * m->window, m->tail_len[u], err))) goto fail;
        for (uint32_t t = 0; t < m->tail_len[u]; t++)
            if (m->tail[(size_t)u * m->window + t] >= n) {
                rc = sk_bad(err, "user tail names an unknown item");
                goto fail;
            }
    }
    if ((rc = mp_item_titles_load(r, &m->titles, n, "seqknn", err))) goto fail;
    return MP_OK;
fail:
    sk_release(m);
    return rc;
}

static uint32_t sk_n_items(const void *impl) { return ((const seqknn *)impl)->n_items; }

const mp_model_ops mp_seqknn_ops = {
    .name = "seqknn",
    .summary = "sequence-aware item kNN: what is bought after what, within a window, recent history first (real-time)",
    .file_version = SK_FILE_VERSION,
    .impl_size = sizeof(seqknn),
    .params = sk_params,
    .n_params = MP_PARAM_COUNT(sk_params),
    .params_offset = 0,
    .params_size = sizeof(seqknn),
    .fit = sk_fit,
    .score_all = sk_score_all,
    .similar = sk_similar,
    .explain = sk_explain,
    .update = sk_update,
    .save = sk_save,
    .load = sk_load,
    .release = sk_release,
    .n_items = sk_n_items,
    .forget_user = sk_forget_user,
};
