/* magpie/topk.h: the top-k selection every ranking goes through (models, the evaluator, the dataset's
 * validation NDCG, the text index, the simulator, the live recommender).
 * Highest score first; ties go to the lower index (the project-wide determinism rule); NaN never ranks. */
#ifndef MAGPIE_TOPK_H
#define MAGPIE_TOPK_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"

/* Writes to out_idx[0..*n_out) the indexes of the (at most) k highest scores[i], i < n, for which allow[i] is
 * non-zero (allow may be NULL: every index is allowed), best first, equal scores by lower index. NaN scores are
 * skipped. *n_out <= min(k, n); 0 when nothing qualifies.
 * scores [n], allow [n] or NULL, out_idx [k] (may be NULL when k == 0 or n == 0): all borrowed for the call;
 * nothing is kept. No global state: safe to call from any number of threads at once.
 * Allocates only when k > 128 (a heap of k entries, freed before returning).
 * Possible errors: MP_EINVAL (n_out NULL, scores or out_idx NULL with n > 0 and k > 0, or n > UINT32_MAX:
 * indexes are 32-bit), MP_ENOMEM (the heap for k > 128 could not be allocated). On error *n_out is 0. */
MP_EXPORT int mp_topk(const float *scores, size_t n, const uint8_t *allow, size_t k, uint32_t *out_idx,
                      size_t *n_out);

#endif
