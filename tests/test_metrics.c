/* Metrics of eval.h against hand-computed values. */
#include <math.h>
#include <stdlib.h>

#include "magpie/eval.h"
#include "magpie/model.h"
#include "magpie/topk.h"
#include "test.h"

MP_TEST(metrics_list_hand_computed) {
    const uint32_t ranked[] = {3, 1, 4, 5, 9};
    const uint32_t rel[] = {1, 9, 7};
    /* hits at ranks 2 and 5 */
    CHECK_NEAR(mp_metric_hr(ranked, 5, rel, 3, 5), 1.0, 1e-12);
    CHECK_NEAR(mp_metric_precision(ranked, 5, rel, 3, 5), 0.4, 1e-12);
    CHECK_NEAR(mp_metric_recall(ranked, 5, rel, 3, 5), 2.0 / 3.0, 1e-12);
    double dcg = 1 / log2(3.0) + 1 / log2(6.0), idcg = 1 + 1 / log2(3.0) + 1 / log2(4.0);
    CHECK_NEAR(mp_metric_ndcg(ranked, 5, rel, 3, 5), dcg / idcg, 1e-12);
    CHECK_NEAR(mp_metric_ndcg(ranked, 5, rel, 3, 5), 0.4776243, 1e-6);
    CHECK_NEAR(mp_metric_map(ranked, 5, rel, 3, 5), (1.0 / 2 + 2.0 / 5) / 3, 1e-12);
    CHECK_NEAR(mp_metric_mrr(ranked, 5, rel, 3, 5), 0.5, 1e-12);
    /* k = 1: the first item is not relevant */
    CHECK_NEAR(mp_metric_hr(ranked, 5, rel, 3, 1), 0.0, 0);
    CHECK_NEAR(mp_metric_ndcg(ranked, 5, rel, 3, 1), 0.0, 0);
    CHECK_NEAR(mp_metric_mrr(ranked, 5, rel, 3, 1), 0.0, 0);
    CHECK_NEAR(mp_metric_map(ranked, 5, rel, 3, 1), 0.0, 0);
    /* k larger than the list: precision still divides by k */
    CHECK_NEAR(mp_metric_precision(ranked, 5, rel, 3, 10), 0.2, 1e-12);
    CHECK_NEAR(mp_metric_ndcg(ranked, 5, rel, 3, 10), dcg / idcg, 1e-12);
}

MP_TEST(metrics_more_relevant_than_k) {
    const uint32_t ranked[] = {3, 1, 4};
    const uint32_t rel[] = {3, 1, 4, 5, 9, 2};
    CHECK_NEAR(mp_metric_ndcg(ranked, 3, rel, 6, 2), 1.0, 1e-12); /* ideal DCG only counts min(|rel|, k) */
    CHECK_NEAR(mp_metric_recall(ranked, 3, rel, 6, 2), 2.0 / 6.0, 1e-12);
    CHECK_NEAR(mp_metric_precision(ranked, 3, rel, 6, 2), 1.0, 1e-12);
    CHECK_NEAR(mp_metric_map(ranked, 3, rel, 6, 2), 2.0 / 6.0, 1e-12);
    CHECK_NEAR(mp_metric_mrr(ranked, 3, rel, 6, 2), 1.0, 1e-12);
}

MP_TEST(metrics_no_hits_and_empty) {
    const uint32_t ranked[] = {3, 1, 4};
    const uint32_t rel[] = {100};
    CHECK_NEAR(mp_metric_hr(ranked, 3, rel, 1, 3), 0, 0);
    CHECK_NEAR(mp_metric_precision(ranked, 3, rel, 1, 3), 0, 0);
    CHECK_NEAR(mp_metric_recall(ranked, 3, rel, 1, 3), 0, 0);
    CHECK_NEAR(mp_metric_ndcg(ranked, 3, rel, 1, 3), 0, 0);
    CHECK_NEAR(mp_metric_map(ranked, 3, rel, 1, 3), 0, 0);
    CHECK_NEAR(mp_metric_mrr(ranked, 3, rel, 1, 3), 0, 0);
    CHECK_NEAR(mp_metric_hr(ranked, 0, rel, 1, 3), 0, 0);
}

MP_TEST(metrics_topk_ties_lower_id_first) {
    const float scores[] = {0.5f, 0.9f, 0.9f, 0.1f, 0.9f};
    uint32_t out[3];
    size_t got;
    CHECK_EQ(mp_topk(scores, 5, NULL, 3, out, &got), MP_OK);
    CHECK_EQ(got, 3);
    CHECK_EQ(out[0], 1);
    CHECK_EQ(out[1], 2);
    CHECK_EQ(out[2], 4);
    const uint8_t allow[] = {1, 0, 1, 1, 1};
    CHECK_EQ(mp_topk(scores, 5, allow, 3, out, &got), MP_OK);
    CHECK_EQ(got, 3);
    CHECK_EQ(out[0], 2);
    CHECK_EQ(out[1], 4);
    CHECK_EQ(out[2], 0);
}

MP_TEST(metrics_auc_ties_and_candidates) {
    const float scores[] = {0.1f, 0.5f, 0.5f, 0.9f};
    const uint32_t r1[] = {1}, r3[] = {3}, r13[] = {1, 3};
    CHECK_NEAR(mp_metric_auc(scores, 4, NULL, r1, 1), 1.5 / 3.0, 1e-12); /* beats 0, ties 2, loses to 3 */
    CHECK_NEAR(mp_metric_auc(scores, 4, NULL, r3, 1), 1.0, 1e-12);
    CHECK_NEAR(mp_metric_auc(scores, 4, NULL, r13, 2), 3.5 / 4.0, 1e-12);
    const uint8_t cand[] = {0, 1, 1, 1};
    CHECK_NEAR(mp_metric_auc(scores, 4, cand, r1, 1), 0.25, 1e-12);
    const uint8_t only_pos[] = {0, 1, 0, 0};
    CHECK(isnan(mp_metric_auc(scores, 4, only_pos, r1, 1)));
    CHECK(isnan(mp_metric_auc(scores, 4, NULL, r1, 0)));
}

static double auc_pairs(const float *scores, int n, const uint32_t *rel, size_t n_rel) {
    double num = 0, pairs = 0;
    for (int i = 0; i < n; i++) {
        int pos = 0;
        for (size_t j = 0; j < n_rel; j++) pos |= rel[j] == (uint32_t)i;
        if (pos) continue;
        for (size_t j = 0; j < n_rel; j++) {
            float sp = scores[rel[j]];
            num += sp > scores[i] ? 1.0 : sp == scores[i] ? 0.5 : 0.0;
            pairs++;
        }
    }
    return num / pairs;
}

MP_TEST(metrics_auc_many_positives_matches_pairs) {
    /* more than 16 positives takes the sorted path, up to 16 the direct one: both equal the pairwise definition */
    enum { N = 60 };
    float scores[N];
    uint32_t rel[25];
    size_t n_rel = 0;
    for (int i = 0; i < N; i++) scores[i] = (float)((i * 37) % 11); /* many ties */
    for (int i = 0; i < N && n_rel < 25; i += 2) rel[n_rel++] = (uint32_t)i;
    double want = auc_pairs(scores, N, rel, n_rel);
    CHECK(want > 0.3 && want < 0.7);
    CHECK_NEAR(mp_metric_auc(scores, N, NULL, rel, n_rel), want, 1e-12);
    CHECK_NEAR(mp_metric_auc(scores, N, NULL, rel, 10), auc_pairs(scores, N, rel, 10), 1e-12);
}

MP_TEST(metrics_gini) {
    const uint64_t equal[] = {5, 5, 5, 5}, conc[] = {0, 0, 0, 10}, ramp[] = {4, 1, 3, 2}, zero[] = {0, 0};
    CHECK_NEAR(mp_metric_gini(equal, 4), 0.0, 1e-12);
    CHECK_NEAR(mp_metric_gini(conc, 4), 0.75, 1e-12); /* (n - 1) / n */
    CHECK_NEAR(mp_metric_gini(ramp, 4), 0.25, 1e-12);
    CHECK_NEAR(mp_metric_gini(zero, 2), 0.0, 0);
}

MP_TEST(metrics_ild_and_novelty) {
    const uint32_t cat[] = {1, 1, 2};
    const uint32_t list[] = {0, 1, 2};
    CHECK_NEAR(mp_metric_ild(list, 3, cat), 2.0 / 3.0, 1e-12);
    CHECK_NEAR(mp_metric_ild(list, 2, cat), 0.0, 0);
    CHECK(isnan(mp_metric_ild(list, 1, cat)));
    CHECK(isnan(mp_metric_ild(list, 3, NULL)));
    const uint64_t users[] = {10, 1, 0};
    /* item 0 is seen by everyone (0 bits), item 1 by one user, item 2 by nobody (counts as one) */
    CHECK_NEAR(mp_metric_novelty(list, 3, users, 10), 2.0 * log2(10.0) / 3.0, 1e-12);
    CHECK_NEAR(mp_metric_novelty(list, 1, users, 10), 0.0, 1e-12);
    CHECK(isnan(mp_metric_novelty(list, 0, users, 10)));
}
