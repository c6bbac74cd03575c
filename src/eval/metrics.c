/* src/eval/metrics.c: the ranking and beyond-accuracy metrics of eval.h as pure functions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_internal.h"
#include "magpie/eval.h"

void mp_rank_metrics_from_hits_(const uint8_t *hit, size_t n_ranked, size_t n_rel, size_t k, mp_rank_metrics_ *out) {
    memset(out, 0, sizeof *out);
    if (k == 0 || n_rel == 0) return;
    size_t m = n_ranked < k ? n_ranked : k;
    size_t hits = 0;
    double dcg = 0, ap = 0;
    for (size_t r = 0; r < m; r++) {
        if (!hit[r]) continue;
        hits++;
        dcg += 1.0 / log2((double)r + 2.0);
        ap += (double)hits / (double)(r + 1);
        if (hits == 1) out->mrr = 1.0 / (double)(r + 1);
    }
    double idcg = 0;
    size_t ideal = n_rel < k ? n_rel : k;
    for (size_t r = 0; r < ideal; r++) idcg += 1.0 / log2((double)r + 2.0);
    out->hr = hits > 0 ? 1.0 : 0.0;
    out->precision = (double)hits / (double)k;
    out->recall = (double)hits / (double)n_rel;
    out->ndcg = dcg / idcg;
    out->map = ap / (double)n_rel;
}

/* Computes all list metrics for the public single-metric functions. */
static void list_metrics(const uint32_t *ranked, size_t n_ranked, const uint32_t *rel, size_t n_rel, size_t k,
                         mp_rank_metrics_ *out) {
    size_t m = n_ranked < k ? n_ranked : k;
    uint8_t stack[256] = {0};
    uint8_t *hit = m <= sizeof stack ? stack : malloc(m);
    if (!hit) { /* out of memory for k > 256: report NaN rather than a wrong number */
        out->hr = out->precision = out->recall = out->ndcg = out->map = out->mrr = NAN;
        return;
    }
    for (size_t r = 0; r < m; r++) {
        hit[r] = 0;
        for (size_t j = 0; j < n_rel; j++)
            if (rel[j] == ranked[r]) {
                hit[r] = 1;
                break;
            }
    }
    mp_rank_metrics_from_hits_(hit, m, n_rel, k, out);
    if (hit != stack) free(hit);
}

double mp_metric_hr(const uint32_t *ranked, size_t n_ranked, const uint32_t *rel, size_t n_rel, size_t k) {
    mp_rank_metrics_ r;
    list_metrics(ranked, n_ranked, rel, n_rel, k, &r);
    return r.hr;
}

double mp_metric_precision(const uint32_t *ranked, size_t n_ranked, const uint32_t *rel, size_t n_rel, size_t k) {
    mp_rank_metrics_ r;
    list_metrics(ranked, n_ranked, rel, n_rel, k, &r);
    return r.precision;
}

double mp_metric_recall(const uint32_t *ranked, size_t n_ranked, const uint32_t *rel, size_t n_rel, size_t k) {
    mp_rank_metrics_ r;
    list_metrics(ranked, n_ranked, rel, n_rel, k, &r);
    return r.recall;
}

double mp_metric_ndcg(const uint32_t *ranked, size_t n_ranked, const uint32_t *rel, size_t n_rel, size_t k) {
    mp_rank_metrics_ r;
    list_metrics(ranked, n_ranked, rel, n_rel, k, &r);
    return r.ndcg;
}

double mp_metric_map(const uint32_t *ranked, size_t n_ranked, const uint32_t *rel, size_t n_rel, size_t k) {
    mp_rank_metrics_ r;
    list_metrics(ranked, n_ranked, rel, n_rel, k, &r);
    return r.map;
}

double mp_metric_mrr(const uint32_t *ranked, size_t n_ranked, const uint32_t *rel, size_t n_rel, size_t k) {
    mp_rank_metrics_ r;
    list_metrics(ranked, n_ranked, rel, n_rel, k, &r);
    return r.mrr;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* AUC = (sum over positives p of #{candidates c: s_c < s_p} + 1/2 #{c: s_c == s_p}) minus the positive-positive
 * part, over n_pos * n_neg. Counting against every candidate includes each positive pair once in total (1 or
 * 1/2 + 1/2) and each positive against itself 1/2, so that part is exactly n_pos^2 / 2. */
double mp_metric_auc(const float *scores, size_t n_items, const uint8_t *candidate, const uint32_t *rel,
                     size_t n_rel) {
    size_t n_cand = 0;
    if (candidate) {
        for (size_t i = 0; i < n_items; i++) n_cand += candidate[i] != 0;
    } else {
        n_cand = n_items;
    }
    if (n_rel == 0 || n_cand <= n_rel) return NAN;
    double sum = 0;
    if (n_rel <= 16) {
        for (size_t j = 0; j < n_rel; j++) {
            float sp = scores[rel[j]];
            double less = 0, eq = 0;
            for (size_t i = 0; i < n_items; i++) {
                if (candidate && !candidate[i]) continue;
                float s = scores[i];
                less += s < sp;
                eq += s == sp;
            }
            sum += less + 0.5 * eq;
        }
    } else {
        float *sorted = malloc(n_cand * sizeof *sorted);
        if (!sorted) return NAN;
        size_t m = 0;
        for (size_t i = 0; i < n_items; i++)
            if (!candidate || candidate[i]) sorted[m++] = scores[i];
        qsort(sorted, m, sizeof *sorted, cmp_float);
        for (size_t j = 0; j < n_rel; j++) {
            float sp = scores[rel[j]];
            size_t lo = 0, hi = m; /* first index with sorted >= sp */
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (sorted[mid] < sp) lo = mid + 1;
                else hi = mid;
            }
            size_t less = lo;
            hi = m; /* first index with sorted > sp */
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (sorted[mid] <= sp) lo = mid + 1;
                else hi = mid;
            }
            sum += (double)less + 0.5 * (double)(lo - less);
        }
        free(sorted);
    }
    double n_pos = (double)n_rel, n_neg = (double)(n_cand - n_rel);
    return (sum - n_pos * n_pos / 2.0) / (n_pos * n_neg);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* G = sum_i (2i - n - 1) x_(i) / (n sum x) with x sorted ascending and i = 1..n. */
double mp_metric_gini(const uint64_t *counts, size_t n) {
    if (n == 0) return 0.0;
    uint64_t *x = malloc(n * sizeof *x);
    if (!x) return NAN;
    memcpy(x, counts, n * sizeof *x);
    qsort(x, n, sizeof *x, cmp_u64);
    double num = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        num += (2.0 * (double)(i + 1) - (double)n - 1.0) * (double)x[i];
        total += (double)x[i];
    }
    free(x);
    if (total == 0) return 0.0;
    return num / ((double)n * total);
}

double mp_metric_ild(const uint32_t *ranked, size_t n_ranked, const uint32_t *item_category) {
    if (!item_category || n_ranked < 2) return NAN;
    size_t differ = 0, pairs = 0;
    for (size_t a = 0; a < n_ranked; a++)
        for (size_t b = a + 1; b < n_ranked; b++) {
            differ += item_category[ranked[a]] != item_category[ranked[b]];
            pairs++;
        }
    return (double)differ / (double)pairs;
}

double mp_metric_novelty(const uint32_t *ranked, size_t n_ranked, const uint64_t *item_users, uint64_t n_users) {
    if (!item_users || n_users == 0 || n_ranked == 0) return NAN;
    double sum = 0;
    for (size_t r = 0; r < n_ranked; r++) {
        uint64_t c = item_users[ranked[r]];
        if (c == 0) c = 1;
        sum += -log2((double)c / (double)n_users);
    }
    return sum / (double)n_ranked;
}
