/* src/data/trainset.c: training input (mp_train_data) from a set of events plus the dataset's item metadata. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/topk.h"
#include "magpie/trainset.h"

void mp_train_set_free(mp_train_set *ts) {
    if (!ts) return;
    mp_csr_free(&ts->ui);
    mp_csr_free(&ts->iu);
    memset(ts, 0, sizeof *ts);
}

int mp_train_set_build(mp_train_set *ts, const mp_dataset *ds, const mp_interaction *events, size_t n,
                       const mp_weighting *w, mp_error *err) {
    memset(ts, 0, sizeof *ts);
    int64_t latest = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || events[i].ts > latest) latest = events[i].ts;
    if (w) ts->weighting = *w;
    else mp_weighting_default(&ts->weighting);
    /* A weighting without a reference time decays from the latest training event. */
    if (ts->weighting.now == 0) ts->weighting.now = latest;

    int rc = mp_csr_build(&ts->ui, events, n, ds->n_users, ds->n_items, &ts->weighting, err);
    if (rc != MP_OK) {
        mp_train_set_free(ts);
        mp_error_prefix(err, "building the training matrix");
        return rc;
    }
    rc = mp_csr_transpose(&ts->iu, &ts->ui, err);
    if (rc != MP_OK) {
        mp_train_set_free(ts);
        mp_error_prefix(err, "building the training matrix");
        return rc;
    }
    mp_train_data *d = &ts->data;
    d->n_users = ds->n_users;
    d->n_items = ds->n_items;
    d->events = events;
    d->n_events = n;
    d->ui = &ts->ui;
    d->iu = &ts->iu;
    d->weighting = &ts->weighting;
    d->item_category = ds->item_category;
    d->category_names = (const char *const *)ds->category_names;
    d->n_categories = ds->n_categories;
    d->item_titles = (const char *const *)ds->item_title;
    ts->content.descriptions = (const char *const *)ds->item_description;
    ts->content.brands = (const char *const *)ds->item_brand;
    ts->content.prices = ds->item_price;
    d->content = &ts->content;
    d->now = latest;
    return MP_OK;
}

/* First index of user u in events[0..n) sorted by user (n when absent past the end). */
static size_t lower_bound_user(const mp_interaction *ev, size_t n, uint32_t u) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ev[mid].user < u) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* One validation user: [vb, ve) of data->valid and [hb, he) of data->events. */
typedef struct valid_user {
    size_t vb, ve, hb, he;
} valid_user;

/* Per-thread scratch: scores and allow are [n_items]; stamp marks items already taken as targets / ranked. */
typedef struct valid_scratch {
    float *scores;
    uint8_t *allow;
    uint32_t *ranked; /* [k] */
    uint32_t *rel;    /* [n_items] distinct targets of the user */
} valid_scratch;

static void valid_scratch_free(valid_scratch *s) {
    free(s->scores);
    free(s->allow);
    free(s->ranked);
    free(s->rel);
}

/* Marks the user's training items 0 and collects the distinct validation targets not in history into s->rel;
 * returns their number (0: nothing to rank for this user). Leaves s->allow = 1 for rankable items. */
static size_t collect_targets(const mp_train_data *d, const valid_user *vu, valid_scratch *s) {
    uint32_t ni = d->n_items;
    memset(s->allow, 1, ni);
    for (size_t i = vu->hb; i < vu->he; i++)
        if (d->events[i].item < ni) s->allow[d->events[i].item] = 0;
    size_t n_rel = 0; /* allow marks 2 while collecting, to drop repeated targets */
    for (size_t i = vu->vb; i < vu->ve; i++) {
        uint32_t it = d->valid[i].item;
        if (it < ni && s->allow[it] == 1) {
            s->allow[it] = 2;
            s->rel[n_rel++] = it;
        }
    }
    for (size_t j = 0; j < n_rel; j++) s->allow[s->rel[j]] = 1;
    return n_rel;
}

/* NDCG@k (as mp_metric_ndcg in eval.h, computed here so the data module stands alone) of `scores` [n_items]
 * against the n_rel targets collected by collect_targets, into *out. MP_OK or mp_topk's code. */
static int rank_ndcg(const mp_train_data *d, const float *scores, size_t n_rel, size_t k, valid_scratch *s,
                     double *out) {
    size_t n_ranked;
    int rc = mp_topk(scores, d->n_items, s->allow, k, s->ranked, &n_ranked);
    if (rc != MP_OK) return rc;
    for (size_t j = 0; j < n_rel; j++) s->allow[s->rel[j]] = 3; /* membership in O(1) */
    double dcg = 0, ideal = 0;
    for (size_t r = 0; r < n_ranked; r++)
        if (s->allow[s->ranked[r]] == 3) dcg += 1.0 / log2((double)r + 2.0);
    for (size_t r = 0; r < n_rel && r < k; r++) ideal += 1.0 / log2((double)r + 2.0);
    *out = dcg / ideal;
    return MP_OK;
}

/* NDCG@k of one user, scored alone. -1 when the user has no rankable target (every validation item is already in
 * their training history). */
static double valid_user_ndcg(const mp_train_data *d, const valid_user *vu, mp_score_fn fn, const void *impl,
                              size_t k, valid_scratch *s, int *rc, mp_error *err) {
    size_t n_rel = collect_targets(d, vu, s);
    if (n_rel == 0) return -1;
    mp_user_ctx ctx = {.user = d->valid[vu->vb].user, .history = d->events + vu->hb, .n_history = vu->he - vu->hb};
    *rc = fn(impl, &ctx, s->scores, err);
    if (*rc != MP_OK) return 0;
    double ndcg = 0;
    if ((*rc = rank_ndcg(d, s->scores, n_rel, k, s, &ndcg)) != MP_OK)
        mp_error_set(err, *rc, "cannot rank %u items: %s", d->n_items, mp_strerror(*rc));
    return ndcg;
}

/* The users of data->valid with their spans; *users and *ndcg malloc'ed ([n]). */
static int valid_users(const mp_train_data *data, valid_user **users_out, double **ndcg_out, size_t *n_out,
                       mp_error *err) {
    size_t n_users = 0;
    for (size_t i = 0; i < data->n_valid; i++)
        if (i == 0 || data->valid[i].user != data->valid[i - 1].user) n_users++;
    valid_user *users = malloc(n_users * sizeof *users);
    double *ndcg = malloc(n_users * sizeof *ndcg);
    if (!users || !ndcg) {
        free(users);
        free(ndcg);
        return mp_error_set(err, MP_ENOMEM, "validation NDCG: out of memory for %zu users", n_users);
    }
    size_t nu = 0;
    for (size_t i = 0; i < data->n_valid;) {
        size_t j = i;
        while (j < data->n_valid && data->valid[j].user == data->valid[i].user) j++;
        valid_user *vu = &users[nu++];
        vu->vb = i;
        vu->ve = j;
        vu->hb = lower_bound_user(data->events, data->n_events, data->valid[i].user);
        vu->he = vu->hb;
        while (vu->he < data->n_events && data->events[vu->he].user == data->valid[i].user) vu->he++;
        i = j;
    }
    *users_out = users;
    *ndcg_out = ndcg;
    *n_out = nu;
    return MP_OK;
}

static int check_args(const mp_train_data *data, const void *fn, size_t k, mp_error *err) {
    if (!data || !fn) return mp_error_set(err, MP_EINVAL, "validation NDCG: no data or no scoring function");
    if (k == 0) return mp_error_set(err, MP_EINVAL, "validation NDCG: k must be at least 1");
    if (!data->valid || data->n_valid == 0)
        return mp_error_set(err, MP_EEMPTY, "validation NDCG: there are no validation events");
    if (data->n_items == 0) return mp_error_set(err, MP_EEMPTY, "validation NDCG: the catalog is empty");
    return MP_OK;
}

/* Mean over users with targets, summed in user order so the result never depends on the thread count. */
static int mean_ndcg(const double *ndcg, size_t nu, double *out, mp_error *err) {
    double sum = 0;
    size_t counted = 0;
    for (size_t i = 0; i < nu; i++)
        if (ndcg[i] >= 0) {
            sum += ndcg[i];
            counted++;
        }
    if (counted == 0)
        return mp_error_set(err, MP_EEMPTY,
                            "validation NDCG: every validation item is already in its user's training history");
    *out = sum / (double)counted;
    return MP_OK;
}

static int scratch_alloc(valid_scratch *s, uint32_t n_items, size_t k, int with_scores) {
    s->scores = with_scores ? malloc((size_t)n_items * sizeof *s->scores) : NULL;
    s->allow = malloc(n_items);
    s->ranked = malloc(k * sizeof *s->ranked);
    s->rel = malloc((size_t)n_items * sizeof *s->rel);
    return (s->scores || !with_scores) && s->allow && s->ranked && s->rel;
}

int mp_train_data_valid_ndcg(const mp_train_data *data, mp_score_fn fn, const void *impl, size_t k, double *out,
                             mp_error *err) {
    *out = 0;
    int rc = check_args(data, (const void *)fn, k, err);
    if (rc != MP_OK) return rc;
    valid_user *users;
    double *ndcg;
    size_t nu;
    if ((rc = valid_users(data, &users, &ndcg, &nu, err)) != MP_OK) return rc;
    if (k > data->n_items) k = data->n_items;

    mp_error first_err;
    mp_error_clear(&first_err);
    int n_threads = data->n_threads > 0 ? data->n_threads : omp_get_max_threads();
    if ((size_t)n_threads > nu) n_threads = (int)nu;
    if (n_threads < 1) n_threads = 1;
#pragma omp parallel num_threads(n_threads)
    {
        valid_scratch s;
        int ok = scratch_alloc(&s, data->n_items, k, 1);
        if (!ok) {
#pragma omp critical(mp_valid_ndcg_err)
            if (rc == MP_OK) rc = mp_error_set(&first_err, MP_ENOMEM, "out of memory");
        }
        mp_error local;
        mp_error_clear(&local);
#pragma omp for schedule(dynamic, 16)
        for (size_t i = 0; i < nu; i++) {
            int failed;
#pragma omp atomic read
            failed = rc;
            if (!ok || failed != MP_OK) continue;
            int urc = MP_OK;
            ndcg[i] = valid_user_ndcg(data, &users[i], fn, impl, k, &s, &urc, &local);
            if (urc != MP_OK) {
#pragma omp critical(mp_valid_ndcg_err)
                if (rc == MP_OK) {
                    first_err = local;
                    rc = urc;
                }
            }
        }
        valid_scratch_free(&s);
    }
    if (rc == MP_OK) rc = mean_ndcg(ndcg, nu, out, err);
    else if (err) {
        *err = first_err;
        mp_error_prefix(err, "validation NDCG");
    }
    free(users);
    free(ndcg);
    return rc;
}

int mp_train_data_valid_ndcg_block(const mp_train_data *data, mp_score_block_fn fn, const void *impl, size_t k,
                                   double *out, mp_error *err) {
    *out = 0;
    int rc = check_args(data, (const void *)fn, k, err);
    if (rc != MP_OK) return rc;
    valid_user *users;
    double *ndcg;
    size_t nu;
    if ((rc = valid_users(data, &users, &ndcg, &nu, err)) != MP_OK) return rc;
    if (k > data->n_items) k = data->n_items;
    size_t ni = data->n_items;
    /* a block of users' scores in about 16 MiB, at least 8 users */
    size_t block = ((size_t)16 << 20) / (ni * sizeof(float));
    if (block < 8) block = 8;
    if (block > nu) block = nu;
    float *scores = malloc(block * ni * sizeof *scores);
    mp_user_ctx *ctxs = malloc(block * sizeof *ctxs);
    if (!scores || !ctxs) {
        free(scores);
        free(ctxs);
        free(users);
        free(ndcg);
        return mp_error_set(err, MP_ENOMEM, "validation NDCG: out of memory for a block of %zu x %zu scores", block,
                            ni);
    }
    int n_threads = data->n_threads > 0 ? data->n_threads : omp_get_max_threads();
    if (n_threads < 1) n_threads = 1;
    for (size_t b = 0; b < nu && rc == MP_OK; b += block) {
        size_t nb = nu - b < block ? nu - b : block;
        for (size_t j = 0; j < nb; j++) {
            const valid_user *vu = &users[b + j];
            ctxs[j].user = data->valid[vu->vb].user;
            ctxs[j].history = data->events + vu->hb;
            ctxs[j].n_history = vu->he - vu->hb;
        }
        /* outside any parallel region: the model may use BLAS threads */
        rc = fn(impl, ctxs, nb, scores, err);
        if (rc != MP_OK) {
            mp_error_prefix(err, "validation NDCG");
            break;
        }
        int alloc_failed = 0, rank_rc = MP_OK;
#pragma omp parallel num_threads(n_threads)
        {
            valid_scratch s;
            int ok = scratch_alloc(&s, data->n_items, k, 0);
            if (!ok) {
#pragma omp atomic write
                alloc_failed = 1;
            }
#pragma omp for schedule(dynamic, 8)
            for (size_t j = 0; j < nb; j++) {
                if (!ok) continue;
                size_t n_rel = collect_targets(data, &users[b + j], &s);
                ndcg[b + j] = -1;
                int urc = n_rel ? rank_ndcg(data, scores + j * ni, n_rel, k, &s, &ndcg[b + j]) : MP_OK;
                if (urc != MP_OK) {
#pragma omp atomic write
                    rank_rc = urc;
                }
            }
            valid_scratch_free(&s);
        }
        if (alloc_failed) rc = mp_error_set(err, MP_ENOMEM, "validation NDCG: out of memory");
        else if (rank_rc != MP_OK)
            rc = mp_error_set(err, rank_rc, "validation NDCG: cannot rank %zu items: %s", ni, mp_strerror(rank_rc));
    }
    if (rc == MP_OK) rc = mean_ndcg(ndcg, nu, out, err);
    free(scores);
    free(ctxs);
    free(users);
    free(ndcg);
    return rc;
}

double mp_train_data_items_per_user(const mp_train_data *data) {
    if (!data) return 0;
    if (!data->ui || !data->ui->ptr) { /* no matrix (hand-made input): events per user, sorted by user */
        uint64_t users = 0;
        for (size_t e = 0; e < data->n_events; e++) users += e == 0 || data->events[e].user != data->events[e - 1].user;
        return users ? (double)data->n_events / (double)users : 0;
    }
    const mp_csr *ui = data->ui;
    uint64_t users = 0;
    for (uint32_t u = 0; u < ui->n_rows; u++) users += ui->ptr[u + 1] > ui->ptr[u];
    return users ? (double)mp_csr_nnz(ui) / (double)users : 0;
}
