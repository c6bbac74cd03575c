/* src/eval/evaluate.c: the evaluation harness. Users are processed in blocks: worker threads compute each user's
 * ranked list and per-user metrics into a per-block result array (each user's result depends only on that user),
 * then the calling thread folds the block into the sums in user order, so results never depend on thread count. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_internal.h"
#include "magpie/eval.h"
#include "magpie/rng.h"
#include "magpie/topk.h"

#define EVAL_BLOCK 1024

enum { G_OVERALL = 0, G_COLD = 1, G_WARM = 2, N_GROUPS = 3 };

void mp_eval_opts_default(mp_eval_opts *o) {
    memset(o, 0, sizeof *o);
    o->ks[0] = 5;
    o->ks[1] = 10;
    o->ks[2] = 20;
    o->n_ks = 3;
    o->history = MP_HISTORY_EXCLUDE;
    o->sampled_negatives = 0;
    o->seed = 42;
    o->cold_threshold = 5;
    o->n_threads = 2;
}

int mp_eval_parse_ks(mp_eval_opts *o, const char *spec, mp_error *err) {
    uint32_t ks[MP_EVAL_MAX_K];
    size_t n = 0;
    const char *p = spec ? spec : "";
    while (*p) {
        char *end;
        if (*p < '0' || *p > '9')
            return mp_error_set(err, MP_EINVAL, "k: expected a comma-separated list of positive integers, got \"%s\"",
                                spec);
        unsigned long v = strtoul(p, &end, 10);
        if (v == 0 || v > 10000)
            return mp_error_set(err, MP_EINVAL, "k: each cut-off must be between 1 and 10000, got \"%s\"", spec);
        if (*end && *end != ',')
            return mp_error_set(err, MP_EINVAL, "k: expected a comma-separated list of positive integers, got \"%s\"",
                                spec);
        if (n == MP_EVAL_MAX_K)
            return mp_error_set(err, MP_EINVAL, "k: at most %d cut-offs, got \"%s\"", MP_EVAL_MAX_K, spec);
        /* insert sorted, dropping duplicates */
        size_t j = n;
        int dup = 0;
        for (size_t i = 0; i < n; i++) dup |= ks[i] == v;
        if (!dup) {
            while (j > 0 && ks[j - 1] > v) {
                ks[j] = ks[j - 1];
                j--;
            }
            ks[j] = (uint32_t)v;
            n++;
        }
        p = *end ? end + 1 : end;
    }
    if (n == 0) return mp_error_set(err, MP_EINVAL, "k: no cut-offs given (example: 5,10,20)");
    memcpy(o->ks, ks, n * sizeof ks[0]);
    o->n_ks = n;
    return MP_OK;
}

int mp_history_mode_parse(const char *s, mp_history_mode *out) {
    if (!s) return MP_EINVAL;
    if (strcmp(s, "exclude") == 0) *out = MP_HISTORY_EXCLUDE;
    else if (strcmp(s, "zero") == 0) *out = MP_HISTORY_ZERO;
    else if (strcmp(s, "keep") == 0) *out = MP_HISTORY_KEEP;
    else return MP_EINVAL;
    return MP_OK;
}

const char *mp_history_mode_name(mp_history_mode m) {
    switch (m) {
    case MP_HISTORY_EXCLUDE: return "exclude";
    case MP_HISTORY_ZERO: return "zero";
    case MP_HISTORY_KEEP: return "keep";
    }
    return "?";
}

/* ---------------------------------------------------------------------------------------------------------- */

typedef struct user_result {
    uint32_t user;
    uint8_t evaluated; /* 0: skipped (no target left) */
    uint8_t cold;
    uint32_t n_list;
    mp_rank_metrics_ at[MP_EVAL_MAX_K];
    double novelty[MP_EVAL_MAX_K], ild[MP_EVAL_MAX_K];
    double auc;
} user_result;

typedef struct eval_shared {
    const mp_eval_scorer *scorer;
    const mp_eval_data *data;
    const mp_eval_opts *opts;
    uint32_t n_items;        /* items ranked (data->n_items) */
    uint32_t n_scores;       /* size of each score buffer */
    uint32_t kmax;
    const uint64_t *hist_ptr; /* [n_users + 1] into data->history */
    const uint64_t *test_ptr; /* [n_users + 1] into data->test */
    const uint32_t *train_items; /* [n_users] distinct training items per user */
    const uint64_t *item_users;  /* [n_items] distinct training users per item */
    uint64_t n_train_users;
    /* the current block */
    const uint32_t *users;
    size_t n_block;
    user_result *res;      /* [n_block] */
    uint32_t *lists;       /* [n_block * kmax] */
} eval_shared;

typedef struct eval_worker {
    eval_shared *sh;
    uint32_t index, n_workers;
    float *scores;    /* [n_scores] */
    uint8_t *allow;   /* [n_items] candidate mask; all 1 (full) or all 0 (sampled) between users */
    uint32_t *hstamp; /* [n_items] == user + 1: in history */
    uint32_t *rstamp; /* [n_items] == user + 1: a target */
    uint32_t *sstamp; /* [n_items] == user + 1: sampled */
    uint32_t *rel;    /* [n_items] targets of the current user */
    uint32_t *cand;   /* [n_items] sampled negatives / scratch */
    uint8_t *hit;     /* [kmax] */
    int rc;
    mp_error err;
} eval_worker;

static uint64_t user_seed(uint64_t seed, uint32_t user) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * ((uint64_t)user + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    return z ^ (z >> 27);
}

/* Evaluates one user into *r and lists[0..kmax). */
static int eval_user(eval_worker *w, uint32_t u, user_result *r, uint32_t *list) {
    eval_shared *sh = w->sh;
    const mp_eval_data *d = sh->data;
    const mp_eval_opts *o = sh->opts;
    uint32_t n_items = sh->n_items, stamp = u + 1;
    memset(r, 0, sizeof *r);
    r->user = u;
    r->cold = sh->train_items[u] <= o->cold_threshold;

    const mp_interaction *hist = d->history + sh->hist_ptr[u];
    size_t n_hist = sh->hist_ptr[u + 1] - sh->hist_ptr[u];
    size_t n_hist_distinct = 0;
    for (size_t i = 0; i < n_hist; i++)
        if (hist[i].item < n_items && w->hstamp[hist[i].item] != stamp) {
            w->hstamp[hist[i].item] = stamp;
            n_hist_distinct++;
        }

    size_t n_rel = 0;
    for (uint64_t p = sh->test_ptr[u]; p < sh->test_ptr[u + 1]; p++) {
        uint32_t it = d->test[p].item;
        if (it >= n_items || w->rstamp[it] == stamp) continue;
        if (o->history == MP_HISTORY_EXCLUDE && w->hstamp[it] == stamp) continue;
        w->rstamp[it] = stamp;
        w->rel[n_rel++] = it;
    }
    if (n_rel == 0) return MP_OK; /* skipped */

    mp_user_ctx ctx = {.user = u, .history = hist, .n_history = n_hist};
    if (sh->scorer->n_items < n_items) /* items the scorer does not cover score 0 */
        memset(w->scores + sh->scorer->n_items, 0, (size_t)(n_items - sh->scorer->n_items) * sizeof *w->scores);
    int rc = sh->scorer->score_all(sh->scorer->ctx, &ctx, w->scores, &w->err);
    if (rc != MP_OK) {
        mp_error_prefix(&w->err, "scoring user %u", u);
        return rc;
    }
    float *scores = w->scores;

    const uint8_t *allow = NULL;
    size_t n_sampled = 0;
    if (o->sampled_negatives > 0) {
        /* candidates: targets + N negatives drawn uniformly without replacement from non-history non-targets */
        size_t n_rel_in_hist = 0;
        for (size_t j = 0; j < n_rel; j++) n_rel_in_hist += w->hstamp[w->rel[j]] == stamp;
        size_t available = (size_t)n_items - n_hist_distinct - (n_rel - n_rel_in_hist);
        size_t want = o->sampled_negatives < available ? o->sampled_negatives : available;
        mp_rng rng;
        mp_rng_seed(&rng, user_seed(o->seed, u));
        if (want * 2 > available) { /* dense: enumerate then partial shuffle */
            size_t m = 0;
            for (uint32_t i = 0; i < n_items; i++)
                if (w->hstamp[i] != stamp && w->rstamp[i] != stamp) w->cand[m++] = i;
            for (size_t j = 0; j < want; j++) {
                size_t pick = j + (size_t)mp_rng_below(&rng, m - j);
                uint32_t t = w->cand[j];
                w->cand[j] = w->cand[pick];
                w->cand[pick] = t;
            }
        } else { /* sparse: rejection */
            size_t m = 0;
            while (m < want) {
                uint32_t i = (uint32_t)mp_rng_below(&rng, n_items);
                if (w->hstamp[i] == stamp || w->rstamp[i] == stamp || w->sstamp[i] == stamp) continue;
                w->sstamp[i] = stamp;
                w->cand[m++] = i;
            }
        }
        n_sampled = want;
        for (size_t j = 0; j < n_sampled; j++) w->allow[w->cand[j]] = 1;
        for (size_t j = 0; j < n_rel; j++) w->allow[w->rel[j]] = 1;
        allow = w->allow;
    } else if (o->history == MP_HISTORY_EXCLUDE) {
        for (size_t i = 0; i < n_hist; i++)
            if (hist[i].item < n_items) w->allow[hist[i].item] = 0;
        allow = w->allow;
    } else if (o->history == MP_HISTORY_ZERO) {
        for (size_t i = 0; i < n_hist; i++)
            if (hist[i].item < n_items) scores[hist[i].item] = 0.0f;
    }

    size_t n_list;
    rc = mp_topk(scores, n_items, allow, sh->kmax, list, &n_list);
    if (rc != MP_OK)
        return mp_error_set(&w->err, rc, "ranking user %u: cannot rank %u items: %s", u, n_items, mp_strerror(rc));
    r->n_list = (uint32_t)n_list;
    for (size_t i = 0; i < n_list; i++) w->hit[i] = w->rstamp[list[i]] == stamp;
    for (size_t k = 0; k < o->n_ks; k++) {
        size_t kk = o->ks[k], m = n_list < kk ? n_list : kk;
        mp_rank_metrics_from_hits_(w->hit, n_list, n_rel, kk, &r->at[k]);
        r->novelty[k] = mp_metric_novelty(list, m, sh->item_users, sh->n_train_users);
        r->ild[k] = mp_metric_ild(list, m, d->item_category);
    }
    r->auc = mp_metric_auc(scores, n_items, allow, w->rel, n_rel);
    r->evaluated = 1;

    /* restore the masks for the next user */
    if (o->sampled_negatives > 0) {
        for (size_t j = 0; j < n_sampled; j++) w->allow[w->cand[j]] = 0;
        for (size_t j = 0; j < n_rel; j++) w->allow[w->rel[j]] = 0;
    } else if (o->history == MP_HISTORY_EXCLUDE) {
        for (size_t i = 0; i < n_hist; i++)
            if (hist[i].item < n_items) w->allow[hist[i].item] = 1;
    }
    return MP_OK;
}

static void *worker_main(void *arg) {
    eval_worker *w = arg;
    eval_shared *sh = w->sh;
    for (size_t j = w->index; j < sh->n_block && w->rc == MP_OK; j += w->n_workers)
        w->rc = eval_user(w, sh->users[j], &sh->res[j], sh->lists + j * sh->kmax);
    return NULL;
}

static void worker_free(eval_worker *w) {
    free(w->scores);
    free(w->allow);
    free(w->hstamp);
    free(w->rstamp);
    free(w->sstamp);
    free(w->rel);
    free(w->cand);
    free(w->hit);
}

static int worker_init(eval_worker *w, eval_shared *sh, uint32_t index, uint32_t n_workers) {
    memset(w, 0, sizeof *w);
    w->sh = sh;
    w->index = index;
    w->n_workers = n_workers;
    size_t n = sh->n_items ? sh->n_items : 1;
    w->scores = malloc((sh->n_scores ? sh->n_scores : 1) * sizeof *w->scores);
    w->allow = malloc(n);
    w->hstamp = calloc(n, sizeof *w->hstamp);
    w->rstamp = calloc(n, sizeof *w->rstamp);
    w->sstamp = calloc(n, sizeof *w->sstamp);
    w->rel = malloc(n * sizeof *w->rel);
    w->cand = malloc(n * sizeof *w->cand);
    w->hit = malloc(sh->kmax ? sh->kmax : 1);
    if (!w->scores || !w->allow || !w->hstamp || !w->rstamp || !w->sstamp || !w->rel || !w->cand || !w->hit) {
        worker_free(w);
        return MP_ENOMEM;
    }
    memset(w->allow, sh->opts->sampled_negatives > 0 ? 0 : 1, n);
    return MP_OK;
}

/* Per-user start offsets of an array sorted by user; MP_EINVAL if it is not sorted or a user is out of range. */
static int user_offsets(const mp_interaction *ev, size_t n, uint32_t n_users, uint64_t *ptr, const char *what,
                        mp_error *err) {
    memset(ptr, 0, ((size_t)n_users + 1) * sizeof *ptr);
    for (size_t i = 0; i < n; i++) {
        if (ev[i].user >= n_users)
            return mp_error_set(err, MP_EINVAL, "evaluate: %s event %zu has user %u >= n_users %u", what, i,
                                ev[i].user, n_users);
        if (i > 0 && ev[i].user < ev[i - 1].user)
            return mp_error_set(err, MP_EINVAL, "evaluate: %s events must be sorted by user (event %zu)", what, i);
        ptr[ev[i].user + 1]++;
    }
    for (uint32_t u = 0; u < n_users; u++) ptr[u + 1] += ptr[u];
    return MP_OK;
}

typedef struct group_acc {
    uint64_t n_users;
    double sum[MP_EVAL_MAX_K][6];
    double nov_sum[MP_EVAL_MAX_K], ild_sum[MP_EVAL_MAX_K];
    uint64_t nov_n[MP_EVAL_MAX_K], ild_n[MP_EVAL_MAX_K];
    double auc_sum;
    uint64_t auc_n;
    uint32_t *exposure; /* [n_ks * n_items] times each item was in a top-k list */
    double se, ae;      /* rating errors */
    uint64_t n_ratings;
} group_acc;

static void fold_user(group_acc *g, const user_result *r, const uint32_t *list, const mp_eval_opts *o,
                      uint32_t n_items) {
    g->n_users++;
    for (size_t k = 0; k < o->n_ks; k++) {
        const mp_rank_metrics_ *m = &r->at[k];
        g->sum[k][0] += m->hr;
        g->sum[k][1] += m->precision;
        g->sum[k][2] += m->recall;
        g->sum[k][3] += m->ndcg;
        g->sum[k][4] += m->map;
        g->sum[k][5] += m->mrr;
        if (!isnan(r->novelty[k])) {
            g->nov_sum[k] += r->novelty[k];
            g->nov_n[k]++;
        }
        if (!isnan(r->ild[k])) {
            g->ild_sum[k] += r->ild[k];
            g->ild_n[k]++;
        }
        size_t m_k = r->n_list < o->ks[k] ? r->n_list : o->ks[k];
        for (size_t i = 0; i < m_k; i++) g->exposure[k * (size_t)n_items + list[i]]++;
    }
    if (!isnan(r->auc)) {
        g->auc_sum += r->auc;
        g->auc_n++;
    }
}

static int finish_group(const group_acc *g, const mp_eval_opts *o, uint32_t n_items, int ratings_supported,
                        mp_eval_group *out) {
    memset(out, 0, sizeof *out);
    out->n_users = g->n_users;
    double nu = (double)g->n_users;
    uint64_t *counts = malloc((n_items ? n_items : 1) * sizeof *counts);
    if (!counts) return MP_ENOMEM;
    for (size_t k = 0; k < o->n_ks; k++) {
        mp_topk_metrics *t = &out->at[k];
        t->hr = nu ? g->sum[k][0] / nu : NAN;
        t->precision = nu ? g->sum[k][1] / nu : NAN;
        t->recall = nu ? g->sum[k][2] / nu : NAN;
        t->ndcg = nu ? g->sum[k][3] / nu : NAN;
        t->map = nu ? g->sum[k][4] / nu : NAN;
        t->mrr = nu ? g->sum[k][5] / nu : NAN;
        t->novelty = g->nov_n[k] ? g->nov_sum[k] / (double)g->nov_n[k] : NAN;
        t->ild = g->ild_n[k] ? g->ild_sum[k] / (double)g->ild_n[k] : NAN;
        uint64_t distinct = 0;
        for (uint32_t i = 0; i < n_items; i++) {
            counts[i] = g->exposure[k * (size_t)n_items + i];
            distinct += counts[i] > 0;
        }
        t->coverage = g->n_users && n_items ? (double)distinct / (double)n_items : NAN;
        t->gini = g->n_users ? mp_metric_gini(counts, n_items) : NAN;
    }
    free(counts);
    out->auc = g->auc_n ? g->auc_sum / (double)g->auc_n : NAN;
    out->n_ratings = g->n_ratings;
    if (ratings_supported && g->n_ratings) {
        out->rmse = sqrt(g->se / (double)g->n_ratings);
        out->mae = g->ae / (double)g->n_ratings;
    } else {
        out->rmse = out->mae = NAN;
    }
    return MP_OK;
}

int mp_evaluate_scorer(const mp_eval_scorer *s, const mp_eval_data *data, const mp_eval_opts *opts,
                       mp_eval_result *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    mp_eval_opts defo;
    if (!opts) {
        mp_eval_opts_default(&defo);
        opts = &defo;
    }
    if (opts->n_ks == 0 || opts->n_ks > MP_EVAL_MAX_K)
        return mp_error_set(err, MP_EINVAL, "evaluate: between 1 and %d cut-offs needed, got %zu", MP_EVAL_MAX_K,
                            opts->n_ks);
    for (size_t k = 0; k < opts->n_ks; k++)
        if (opts->ks[k] == 0 || (k > 0 && opts->ks[k] <= opts->ks[k - 1]))
            return mp_error_set(err, MP_EINVAL, "evaluate: cut-offs must be positive and ascending");
    if (!s || !s->score_all) return mp_error_set(err, MP_EINVAL, "evaluate: no scorer");
    uint32_t n_users = data->n_users, n_items = data->n_items;
    out->n_ks = opts->n_ks;
    memcpy(out->ks, opts->ks, sizeof out->ks);
    out->sampled = opts->sampled_negatives > 0;
    out->sampled_negatives = opts->sampled_negatives;
    out->history = opts->history;
    out->n_items = n_items;

    int rc = MP_OK;
    uint32_t n_workers = opts->n_threads ? opts->n_threads : 2;
    if (n_workers > 64) n_workers = 64;
    eval_shared sh;
    memset(&sh, 0, sizeof sh);
    eval_worker workers[64];
    uint32_t n_ready = 0;
    group_acc groups[N_GROUPS];
    memset(groups, 0, sizeof groups);
    uint64_t *hist_ptr = malloc(((size_t)n_users + 1) * sizeof *hist_ptr);
    uint64_t *test_ptr = malloc(((size_t)n_users + 1) * sizeof *test_ptr);
    uint32_t *train_items = calloc(n_users ? n_users : 1, sizeof *train_items);
    uint64_t *item_users = calloc(n_items ? n_items : 1, sizeof *item_users);
    uint32_t *stamp = calloc(n_items ? n_items : 1, sizeof *stamp);
    uint32_t *users = malloc(EVAL_BLOCK * sizeof *users);
    user_result *res = malloc(EVAL_BLOCK * sizeof *res);
    uint32_t kmax = opts->ks[opts->n_ks - 1];
    uint32_t *lists = malloc((size_t)EVAL_BLOCK * kmax * sizeof *lists);
    if (!hist_ptr || !test_ptr || !train_items || !item_users || !stamp || !users || !res || !lists) {
        rc = mp_error_set(err, MP_ENOMEM, "evaluate: out of memory for %u users and %u items", n_users, n_items);
        goto done;
    }
    for (int g = 0; g < N_GROUPS; g++) {
        groups[g].exposure = calloc(opts->n_ks * (size_t)(n_items ? n_items : 1), sizeof *groups[g].exposure);
        if (!groups[g].exposure) {
            rc = mp_error_set(err, MP_ENOMEM, "evaluate: out of memory for exposure counts");
            goto done;
        }
    }
    if ((rc = user_offsets(data->history, data->n_history, n_users, hist_ptr, "history", err)) != MP_OK) goto done;
    if ((rc = user_offsets(data->test, data->n_test, n_users, test_ptr, "test", err)) != MP_OK) goto done;
    /* training statistics: distinct items per user (cold / warm) and distinct users per item (novelty) */
    uint64_t n_train_users = 0;
    {
        uint32_t last_user = UINT32_MAX;
        for (size_t i = 0; i < data->n_train; i++) {
            const mp_interaction *e = &data->train[i];
            if (e->user >= n_users || e->item >= n_items) continue;
            if (i > 0 && e->user < data->train[i - 1].user) {
                rc = mp_error_set(err, MP_EINVAL, "evaluate: train events must be sorted by user (event %zu)", i);
                goto done;
            }
            if (e->user != last_user) {
                last_user = e->user;
                n_train_users++;
            }
            if (stamp[e->item] != e->user + 1) {
                stamp[e->item] = e->user + 1;
                train_items[e->user]++;
                item_users[e->item]++;
            }
        }
    }
    sh.scorer = s;
    sh.data = data;
    sh.opts = opts;
    sh.n_items = n_items;
    sh.n_scores = s->n_items > n_items ? s->n_items : n_items;
    sh.kmax = kmax;
    sh.hist_ptr = hist_ptr;
    sh.test_ptr = test_ptr;
    sh.train_items = train_items;
    sh.item_users = item_users;
    sh.n_train_users = n_train_users;
    sh.res = res;
    sh.lists = lists;
    mp_eval_scorer s_local = *s;
    if (s_local.n_items == 0) s_local.n_items = n_items;
    sh.scorer = &s_local;
    for (; n_ready < n_workers; n_ready++)
        if (worker_init(&workers[n_ready], &sh, n_ready, n_workers) != MP_OK) {
            rc = mp_error_set(err, MP_ENOMEM, "evaluate: out of memory for worker buffers (%u items)", n_items);
            goto done;
        }

    uint64_t n_test_users = 0, done_users = 0;
    for (uint32_t u = 0; u < n_users; u++) n_test_users += test_ptr[u + 1] > test_ptr[u];
    uint32_t next = 0;
    while (next < n_users) {
        size_t nb = 0;
        while (next < n_users && nb < EVAL_BLOCK) {
            if (test_ptr[next + 1] > test_ptr[next]) users[nb++] = next;
            next++;
        }
        if (nb == 0) continue;
        sh.users = users;
        sh.n_block = nb;
        pthread_t tids[64];
        uint32_t started = 0;
        for (uint32_t t = 1; t < n_workers; t++) {
            if (pthread_create(&tids[t], NULL, worker_main, &workers[t]) != 0) break;
            started = t;
        }
        /* workers that could not start have their share done here, so the result is the same */
        for (uint32_t t = started + 1; t < n_workers; t++) worker_main(&workers[t]);
        worker_main(&workers[0]);
        for (uint32_t t = 1; t <= started; t++) pthread_join(tids[t], NULL);
        for (uint32_t t = 0; t < n_workers; t++)
            if (workers[t].rc != MP_OK) {
                rc = mp_error_set(err, workers[t].rc, "evaluate: %s", workers[t].err.msg);
                goto done;
            }
        for (size_t j = 0; j < nb; j++) {
            if (!res[j].evaluated) {
                out->n_skipped++;
                continue;
            }
            const uint32_t *list = lists + j * kmax;
            fold_user(&groups[G_OVERALL], &res[j], list, opts, n_items);
            fold_user(&groups[res[j].cold ? G_COLD : G_WARM], &res[j], list, opts, n_items);
        }
        done_users += nb;
        mp_progress_report(opts->progress, "eval", done_users, n_test_users);
    }

    /* rating error over valued test events */
    int ratings_supported = s->predict_rating != NULL;
    for (size_t i = 0; i < data->n_test && ratings_supported; i++) {
        const mp_interaction *e = &data->test[i];
        if (!e->has_value) continue;
        double pred;
        mp_error perr;
        mp_error_clear(&perr);
        int prc = s->predict_rating(s->ctx, e->user, e->item, &pred, &perr);
        if (prc == MP_EUNSUPPORTED) {
            ratings_supported = 0;
            break;
        }
        if (prc != MP_OK) {
            rc = mp_error_set(err, prc, "evaluate: predicting the rating of user %u for item %u: %s", e->user,
                              e->item, perr.msg);
            goto done;
        }
        double diff = pred - (double)e->value;
        int g = train_items[e->user] <= opts->cold_threshold ? G_COLD : G_WARM;
        groups[G_OVERALL].se += diff * diff;
        groups[G_OVERALL].ae += fabs(diff);
        groups[G_OVERALL].n_ratings++;
        groups[g].se += diff * diff;
        groups[g].ae += fabs(diff);
        groups[g].n_ratings++;
    }
    if (!ratings_supported)
        for (int g = 0; g < N_GROUPS; g++) groups[g].n_ratings = 0;

    mp_eval_group *outg[N_GROUPS] = {&out->overall, &out->cold, &out->warm};
    for (int g = 0; g < N_GROUPS; g++)
        if (finish_group(&groups[g], opts, n_items, ratings_supported, outg[g]) != MP_OK) {
            rc = mp_error_set(err, MP_ENOMEM, "evaluate: out of memory");
            goto done;
        }

done:
    for (uint32_t t = 0; t < n_ready; t++) worker_free(&workers[t]);
    for (int g = 0; g < N_GROUPS; g++) free(groups[g].exposure);
    free(hist_ptr);
    free(test_ptr);
    free(train_items);
    free(item_users);
    free(stamp);
    free(users);
    free(res);
    free(lists);
    return rc;
}

static int model_score(const void *ctx, const mp_user_ctx *uctx, float *scores, mp_error *err) {
    return mp_model_score_all((const mp_model *)ctx, uctx, scores, err);
}

static int model_rating(const void *ctx, uint32_t user, uint32_t item, double *out, mp_error *err) {
    return mp_model_predict_rating((const mp_model *)ctx, user, item, out, err);
}

int mp_evaluate(const mp_model *m, const mp_eval_data *data, const mp_eval_opts *opts, mp_eval_result *out,
                mp_error *err) {
    if (!mp_model_is_fitted(m)) {
        memset(out, 0, sizeof *out);
        return mp_error_set(err, MP_EINVAL, "evaluate: model %s is not fitted", mp_model_ops_of(m)->name);
    }
    mp_eval_scorer s = {model_score, model_rating, m, mp_model_n_items(m)};
    return mp_evaluate_scorer(&s, data, opts, out, err);
}
