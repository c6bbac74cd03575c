/* src/eval/eval_internal.h: pieces shared by metrics.c, evaluate.c and report.c (not public). */
#ifndef MAGPIE_EVAL_INTERNAL_H
#define MAGPIE_EVAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Accuracy of one ranked list at one cut-off. */
typedef struct mp_rank_metrics_ {
    double hr, precision, recall, ndcg, map, mrr;
} mp_rank_metrics_;

/* hit[r] (r < n_ranked) says whether the item at rank r + 1 is relevant; n_rel relevant items in total.
 * Implements the definitions in eval.h for cut-off k. */
void mp_rank_metrics_from_hits_(const uint8_t *hit, size_t n_ranked, size_t n_rel, size_t k, mp_rank_metrics_ *out);

#endif
