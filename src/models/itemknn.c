/* "itemknn": item-to-item nearest neighbours.
 *
 * Item vectors are the columns of the user x item matrix X (cf_input.h: binary, weighted or rating values),
 * optionally re-weighted per entry before comparing:
 *   none    w_ui = x_ui
 *   tfidf   w_ui = sqrt(x_ui) * idf_u
 *   bm25    w_ui = x_ui (k1 + 1) / (x_ui + k1 (1 - b + b len_i / avg_len)) * idf_u
 * with idf_u = log(1 + n_items / |items of u|) (heavy users say less about any one pair) and len_i = sum_u x_ui.
 * Similarity of item i to item j (asymmetric cosine with shrinkage; alpha = 0.5 is the plain cosine):
 *   sim(i -> j) = <w_i, w_j> / (|w_i|^(2 alpha) |w_j|^(2 (1 - alpha)) + shrink)
 * Each item keeps its k most similar items (positive similarities only) as a sparse row; rows are computed
 * independently (OpenMP over items, one dense accumulator per thread over co-occurring items: the sparse-sparse
 * product X^T X restricted to one row), so the result does not depend on the thread count.
 * A user is scored from ctx->history alone: score(i) = sum over history items j of x_uj * sim(j -> i), with x_uj
 * built from the history exactly as X was built from the training events (times a recency weight when
 * recency > 0). That makes the model real-time by construction: new events change the next recommendation
 * without any update call, and anonymous sessions work the same way. update() therefore only checks its input;
 * similarities are refreshed by the next fit. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_input.h"
#include "magpie/model.h"
#include "models/params.h"

#define KNN_FILE_VERSION 1
#define KNN_MAX_K 100000

enum { KNN_W_NONE = 0, KNN_W_TFIDF = 1, KNN_W_BM25 = 2 };
static const char *const knn_weighting_names[] = {"none", "tfidf", "bm25"};

typedef struct knn {
    /* parameters */
    uint32_t k;         /* neighbours kept per item */
    double shrink;      /* >= 0, added to the similarity denominator */
    int weighting;      /* KNN_W_* */
    double bm25_k1;     /* > 0 */
    double bm25_b;      /* in [0, 1] */
    double alpha;       /* in [0, 1]: asymmetric cosine exponent */
    int input;          /* cf_xmode: how events become x_ui */
    double recency;     /* > 0: history weight half-life in items at scoring time; 0: none */
    int recency_auto;   /* 1: recency chosen at fit time on validation events (cf_pick_recency) */

    /* fitted state (arrays owned) */
    uint32_t n_items;
    float type_weight[MP_EV_NTYPES]; /* event-type weights used to build X (applied to histories too) */
    uint64_t *ptr;                   /* [n_items + 1] neighbour rows */
    uint32_t *nbr;                   /* [nnz] neighbour item ids, ascending within a row */
    float *sim;                      /* [nnz] sim(row item -> neighbour) */
    char **titles;                   /* [n_items] or NULL; entries may be NULL */
} knn;

/* The parameters are knn's first fields: the descriptors' offsets are into knn itself. */
static const mp_param_info knn_params[] = {
    MP_P_UINT("k", knn, k, "100", 1, KNN_MAX_K, "neighbours kept per item (1..100000)", MP_TUNED_LOG(10, 500)),
    MP_P_REAL("shrink", knn, shrink, "10", 0, 1e12,
              "shrinkage added to the similarity denominator (>= 0): damps pairs seen by few users",
              MP_TUNED_LINEAR(0, 100)),
    MP_P_CHOICE("weighting", knn, weighting, "none", knn_weighting_names,
                "re-weighting of user-item entries before comparing items: none (cosine), tfidf, bm25",
                MP_TUNED_CHOICES(NULL)),
    MP_P_REAL("bm25_k1", knn, bm25_k1, "1.2", 1e-9, 1e9, "BM25 saturation (> 0)"),
    MP_P_REAL("bm25_b", knn, bm25_b, "0.75", 0, 1, "BM25 item-length normalisation (0..1)"),
    MP_P_REAL("alpha", knn, alpha, "0.5", 0, 1,
              "asymmetric cosine: sim(i->j) divides by |i|^(2 alpha) |j|^(2 - 2 alpha); 0.5 = cosine",
              MP_TUNED_LINEAR(0.2, 0.8)),
    MP_P_CHOICE("input", knn, input, "binary", cf_xmode_names,
                "user-item values: binary, weighted (sum of event-type weights) or rating (rating value)"),
    MP_P_REAL_AUTO("recency", knn, recency, recency_auto, "auto", 0, 1e9,
                   "history half-life in items: the r-th most recent item weighs 0.5^(r / recency); 0: all "
                   "equal; auto: chosen from 0, 1, 2, 4, 8 on validation events when there are any, else 0"),
    {NULL},
};

static void knn_release(void *impl) {
    knn *m = impl;
    free(m->ptr);
    free(m->nbr);
    free(m->sim);
    mp_item_titles_free(m->titles, m->n_items);
    m->ptr = NULL;
    m->nbr = NULL;
    m->sim = NULL;
    m->titles = NULL;
    m->n_items = 0;
}

/* ---- top-k selection of one row: a min-heap whose root is the worst kept neighbour ---- */

typedef struct knn_ent {
    float s;
    uint32_t j;
} knn_ent;

static inline int knn_worse(knn_ent a, knn_ent b) { return a.s < b.s || (a.s == b.s && a.j > b.j); }

static void knn_sift_down(knn_ent *h, size_t n, size_t at) {
    knn_ent x = h[at];
    for (;;) {
        size_t c = 2 * at + 1;
        if (c >= n) break;
        if (c + 1 < n && knn_worse(h[c + 1], h[c])) c++;
        if (!knn_worse(h[c], x)) break;
        h[at] = h[c];
        at = c;
    }
    h[at] = x;
}

static void knn_sift_up(knn_ent *h, size_t at) {
    knn_ent x = h[at];
    while (at > 0) {
        size_t p = (at - 1) / 2;
        if (!knn_worse(x, h[p])) break;
        h[at] = h[p];
        at = p;
    }
    h[at] = x;
}

static int knn_ent_by_item(const void *a, const void *b) {
    const knn_ent *x = a, *y = b;
    return x->j < y->j ? -1 : x->j > y->j;
}

/* Re-weights the item x user matrix W in place (weighting != none). X is user x item (for |items of u|). */
static void knn_reweight(const knn *m, mp_csr *w, const mp_csr *x) {
    if (m->weighting == KNN_W_NONE) return;
    double avg_len = 0;
    uint32_t n_active = 0;
    for (uint32_t i = 0; i < w->n_rows; i++) {
        double len = 0;
        for (uint64_t p = w->ptr[i]; p < w->ptr[i + 1]; p++) len += w->val[p];
        if (w->ptr[i + 1] > w->ptr[i]) {
            avg_len += len;
            n_active++;
        }
    }
    avg_len = n_active ? avg_len / n_active : 1;
    if (!(avg_len > 0)) avg_len = 1;
    for (uint32_t i = 0; i < w->n_rows; i++) {
        double len = 0;
        for (uint64_t p = w->ptr[i]; p < w->ptr[i + 1]; p++) len += w->val[p];
        double norm = m->bm25_k1 * (1.0 - m->bm25_b + m->bm25_b * len / avg_len);
        for (uint64_t p = w->ptr[i]; p < w->ptr[i + 1]; p++) {
            uint32_t u = w->idx[p];
            double df = (double)(x->ptr[u + 1] - x->ptr[u]);
            double idf = log(1.0 + (double)w->n_rows / (df > 0 ? df : 1));
            double v = w->val[p];
            if (m->weighting == KNN_W_TFIDF) v = sqrt(v > 0 ? v : 0) * idf;
            else v = v * (m->bm25_k1 + 1.0) / (v + norm) * idf;
            w->val[p] = (float)v;
        }
    }
}

static int knn_score_all(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err);

static int knn_fit(void *impl, const mp_train_data *data, const mp_progress *progress, mp_error *err) {
    knn *m = impl;
    knn_release(m);
    if (!data->events || data->n_events == 0) return mp_error_set(err, MP_EEMPTY, "itemknn: no training events");
    cf_type_weights(data, m->type_weight);
    mp_csr x = {0}, w = {0}, wu = {0};
    int rc = cf_build_x(&x, data, m->input, m->type_weight, err);
    if (rc) return mp_error_prefix(err, "itemknn");
    if ((rc = mp_csr_transpose(&w, &x, err)) == MP_OK) {
        knn_reweight(m, &w, &x);
        rc = mp_csr_transpose(&wu, &w, err);
    }
    mp_csr_free(&x);
    if (rc) {
        mp_csr_free(&w);
        return mp_error_prefix(err, "itemknn");
    }

    uint32_t n = data->n_items;
    uint32_t k = m->k < n ? m->k : (n > 1 ? n - 1 : 1);
    double *pa = malloc((n ? n : 1) * sizeof *pa), *pb = malloc((n ? n : 1) * sizeof *pb);
    uint32_t *cnt = calloc(n ? n : 1, sizeof *cnt);
    size_t n_slots = (size_t)n * k;
    knn_ent *slots = malloc((n_slots > 0 ? n_slots : 1) * sizeof *slots);
    if (!pa || !pb || !cnt || !slots) {
        rc = mp_error_set(err, MP_ENOMEM, "itemknn: out of memory for %u items x %u neighbours", n, k);
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        double sq = 0;
        for (uint64_t p = w.ptr[i]; p < w.ptr[i + 1]; p++) sq += (double)w.val[p] * w.val[p];
        pa[i] = pow(sq, m->alpha);
        pb[i] = pow(sq, 1.0 - m->alpha);
    }

    int nt = data->n_threads > 0 ? data->n_threads : omp_get_max_threads();
    int oom = 0;
    uint64_t done_rows = 0;
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
#pragma omp for schedule(dynamic, 16)
            for (uint32_t i = 0; i < n; i++) {
                size_t nt_i = 0;
                for (uint64_t p = w.ptr[i]; p < w.ptr[i + 1]; p++) {
                    uint32_t u = w.idx[p];
                    float wi = w.val[p];
                    for (uint64_t q = wu.ptr[u]; q < wu.ptr[u + 1]; q++) {
                        uint32_t j = wu.idx[q];
                        if (mark[j] != i + 1) {
                            mark[j] = i + 1;
                            acc[j] = 0;
                            touched[nt_i++] = j;
                        }
                        acc[j] += wi * wu.val[q];
                    }
                }
                knn_ent *h = slots + (size_t)i * k;
                size_t size = 0;
                for (size_t t = 0; t < nt_i; t++) {
                    uint32_t j = touched[t];
                    if (j == i) continue;
                    double den = pa[i] * pb[j] + m->shrink;
                    if (!(den > 0)) continue;
                    knn_ent e = {(float)(acc[j] / den), j};
                    if (!(e.s > 0)) continue;
                    if (size < k) {
                        h[size] = e;
                        knn_sift_up(h, size);
                        size++;
                    } else if (knn_worse(h[0], e)) {
                        h[0] = e;
                        knn_sift_down(h, size, 0);
                    }
                }
                qsort(h, size, sizeof *h, knn_ent_by_item);
                cnt[i] = (uint32_t)size;
                uint64_t d;
#pragma omp atomic capture
                d = ++done_rows;
                if (omp_get_thread_num() == 0 && (d & 1023) == 0) mp_progress_report(progress, "fit", d, n);
            }
        }
        free(acc);
        free(mark);
        free(touched);
    }
    if (oom) {
        rc = mp_error_set(err, MP_ENOMEM, "itemknn: out of memory for the per-thread accumulators (%u items)", n);
        goto done;
    }
    uint64_t nnz = 0;
    for (uint32_t i = 0; i < n; i++) nnz += cnt[i];
    m->ptr = malloc(((size_t)n + 1) * sizeof *m->ptr);
    m->nbr = malloc((nnz ? nnz : 1) * sizeof *m->nbr);
    m->sim = malloc((nnz ? nnz : 1) * sizeof *m->sim);
    if (!m->ptr || !m->nbr || !m->sim || mp_item_titles_copy(data->item_titles, data->n_items, &m->titles)) {
        knn_release(m);
        rc = mp_error_set(err, MP_ENOMEM, "itemknn: out of memory for %llu neighbours", (unsigned long long)nnz);
        goto done;
    }
    m->n_items = n;
    uint64_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        m->ptr[i] = at;
        for (uint32_t t = 0; t < cnt[i]; t++) {
            m->nbr[at] = slots[(size_t)i * k + t].j;
            m->sim[at] = slots[(size_t)i * k + t].s;
            at++;
        }
    }
    m->ptr[n] = at;
    if (m->recency_auto && (rc = cf_pick_recency(data, knn_score_all, m, &m->recency, err))) {
        knn_release(m);
        mp_error_prefix(err, "itemknn: choosing recency");
        goto done;
    }
    mp_progress_report(progress, "fit", n, n);
done:
    free(pa);
    free(pb);
    free(cnt);
    free(slots);
    mp_csr_free(&w);
    mp_csr_free(&wu);
    return rc;
}

static int knn_score_all(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err) {
    const knn *m = impl;
    memset(scores, 0, (size_t)m->n_items * sizeof *scores);
    cf_pair *h;
    size_t nh;
    if (cf_history_pairs(ctx, m->input, m->type_weight, m->n_items, m->recency, &h, &nh))
        return mp_error_set(err, MP_ENOMEM, "itemknn: out of memory for a history of %zu events", ctx->n_history);
    for (size_t a = 0; a < nh; a++) {
        uint32_t j = h[a].item;
        float x = h[a].value;
        for (uint64_t p = m->ptr[j]; p < m->ptr[j + 1]; p++) scores[m->nbr[p]] += x * m->sim[p];
    }
    free(h);
    return MP_OK;
}

/* sim(j -> i), 0 when i is not among j's neighbours. */
static float knn_lookup(const knn *m, uint32_t j, uint32_t i) {
    uint64_t lo = m->ptr[j], hi = m->ptr[j + 1];
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (m->nbr[mid] < i) lo = mid + 1;
        else hi = mid;
    }
    return lo < m->ptr[j + 1] && m->nbr[lo] == i ? m->sim[lo] : 0.0f;
}

static int knn_explain(const void *impl, const mp_user_ctx *ctx, uint32_t item, char *buf, size_t cap,
                       mp_error *err) {
    const knn *m = impl;
    if (item >= m->n_items) return mp_error_set(err, MP_ENOTFOUND, "itemknn: unknown item %u", item);
    cf_pair *h;
    size_t nh;
    if (cf_history_pairs(ctx, m->input, m->type_weight, m->n_items, m->recency, &h, &nh))
        return mp_error_set(err, MP_ENOMEM, "itemknn: out of memory for a history of %zu events", ctx->n_history);
    size_t best = SIZE_MAX;
    float best_c = 0;
    for (size_t a = 0; a < nh; a++) {
        float c = h[a].value * knn_lookup(m, h[a].item, item);
        if (c > best_c) {
            best_c = c;
            best = a;
        }
    }
    if (best != SIZE_MAX) cf_because_quoted(buf, cap, &h[best], m->titles);
    else if (nh == 0) snprintf(buf, cap, "no history yet: nothing to compare it with");
    else snprintf(buf, cap, "not similar to anything in your history");
    free(h);
    return MP_OK;
}

static int knn_similar(const void *impl, uint32_t item, size_t n, uint32_t *out_items, float *out_scores,
                       size_t *n_out, mp_error *err) {
    const knn *m = impl;
    *n_out = 0;
    if (item >= m->n_items) return mp_error_set(err, MP_ENOTFOUND, "itemknn: unknown item %u", item);
    size_t len = (size_t)(m->ptr[item + 1] - m->ptr[item]);
    if (len == 0 || n == 0) return MP_OK;
    uint32_t *pos = malloc(len * sizeof *pos);
    if (!pos) return mp_error_set(err, MP_ENOMEM, "itemknn: out of memory");
    /* Rows are sorted by item id, so mp_topk's tie rule (lower index) is the lower item id. */
    size_t got = mp_topk(m->sim + m->ptr[item], len, NULL, n, pos);
    for (size_t t = 0; t < got; t++) {
        out_items[t] = m->nbr[m->ptr[item] + pos[t]];
        if (out_scores) out_scores[t] = m->sim[m->ptr[item] + pos[t]];
    }
    *n_out = got;
    free(pos);
    return MP_OK;
}

/* Nothing to do: scores come from ctx->history, which already holds the new events. Checks the events only. */
static int knn_update(void *impl, const mp_interaction *events, size_t n, mp_error *err) {
    (void)impl;
    for (size_t i = 0; i < n; i++)
        if (events[i].type >= MP_EV_NTYPES)
            return mp_error_set(err, MP_EINVAL, "itemknn: event %zu has unknown type %u", i, events[i].type);
    return MP_OK;
}

static int knn_save(const void *impl, mp_mf_writer *w, mp_error *err) {
    const knn *m = impl;
    (void)err;
    mp_params_put(knn_params, MP_PARAM_COUNT(knn_params), m, w);
    mp_mf_put_u32(w, m->n_items);
    mp_mf_put_f32s(w, m->type_weight, MP_EV_NTYPES);
    mp_mf_put_u64(w, m->ptr[m->n_items]);
    for (uint32_t i = 0; i < m->n_items; i++) mp_mf_put_u32(w, (uint32_t)(m->ptr[i + 1] - m->ptr[i]));
    mp_mf_put_u32s(w, m->nbr, m->ptr[m->n_items]);
    mp_mf_put_f32s(w, m->sim, m->ptr[m->n_items]);
    mp_item_titles_save(w, m->titles, m->n_items);
    return MP_OK;
}

static int knn_bad(mp_error *err, const char *what) {
    return mp_error_set(err, MP_ECORRUPT, "itemknn payload: %s", what);
}

static int knn_load(void *impl, mp_mf_reader *r, mp_error *err) {
    knn *m = impl;
    knn_release(m);
    uint32_t n;
    uint64_t nnz;
    int rc;
    if ((rc = mp_params_get(knn_params, MP_PARAM_COUNT(knn_params), m, r, "itemknn", err)) ||
        (rc = mp_mf_get_u32(r, &n, err)) || (rc = mp_mf_get_f32s(r, m->type_weight, MP_EV_NTYPES, err)) ||
        (rc = mp_mf_get_u64(r, &nnz, err)))
        return rc;
    if (nnz > mp_mf_remaining(r) / 8 || (uint64_t)n * 4 + nnz * 8 > mp_mf_remaining(r)) /* no wrap-around */
        return knn_bad(err, "item or neighbour count does not fit the file");
    m->ptr = malloc(((size_t)n + 1) * sizeof *m->ptr);
    m->nbr = malloc((nnz ? nnz : 1) * sizeof *m->nbr);
    m->sim = malloc((nnz ? nnz : 1) * sizeof *m->sim);
    if (!m->ptr || !m->nbr || !m->sim) {
        knn_release(m);
        return mp_error_set(err, MP_ENOMEM, "itemknn: out of memory loading %u items", n);
    }
    m->ptr[0] = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len;
        if ((rc = mp_mf_get_u32(r, &len, err))) goto fail;
        m->ptr[i + 1] = m->ptr[i] + len;
    }
    if (m->ptr[n] != nnz) {
        rc = knn_bad(err, "row lengths do not add up to the neighbour count");
        goto fail;
    }
    if ((rc = mp_mf_get_u32s(r, m->nbr, nnz, err)) || (rc = mp_mf_get_f32s(r, m->sim, nnz, err))) goto fail;
    for (uint32_t i = 0; i < n; i++)
        for (uint64_t p = m->ptr[i]; p < m->ptr[i + 1]; p++)
            if (m->nbr[p] >= n || (p > m->ptr[i] && m->nbr[p] <= m->nbr[p - 1]) || !isfinite(m->sim[p])) {
                rc = knn_bad(err, "neighbour ids out of range or out of order");
                goto fail;
            }
    m->n_items = n;
    if ((rc = mp_item_titles_load(r, &m->titles, n, "itemknn", err))) goto fail;
    return MP_OK;
fail:
    m->n_items = n;
    knn_release(m);
    return rc;
}

static uint32_t knn_n_items(const void *impl) { return ((const knn *)impl)->n_items; }

const mp_model_ops mp_itemknn_ops = {
    .name = "itemknn",
    .summary = "item-to-item nearest neighbours (cosine / tf-idf / bm25, shrinkage, top-k sparse; real-time)",
    .file_version = KNN_FILE_VERSION,
    .impl_size = sizeof(knn),
    .params = knn_params,
    .n_params = MP_PARAM_COUNT(knn_params),
    .params_offset = 0,
    .params_size = sizeof(knn),
    .fit = knn_fit,
    .score_all = knn_score_all,
    .similar = knn_similar,
    .explain = knn_explain,
    .update = knn_update,
    .save = knn_save,
    .load = knn_load,
    .release = knn_release,
    .n_items = knn_n_items,
};
