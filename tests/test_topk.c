/* tests/test_topk.c: mp_topk's contract (core/topk.c): empty input, k > n, ties, the allow mask, argument errors.
 * The ENOMEM path (k > 128 and malloc fails) cannot be forced here; it returns before touching out_idx. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "magpie/topk.h"
#include "test.h"

MP_TEST(topk_empty_and_zero_k) {
    float s[3] = {1, 2, 3};
    uint32_t out[3] = {7, 7, 7};
    size_t got = 99;
    CHECK_EQ(mp_topk(s, 0, NULL, 5, out, &got), MP_OK);
    CHECK_EQ(got, 0);
    got = 99;
    CHECK_EQ(mp_topk(s, 3, NULL, 0, out, &got), MP_OK);
    CHECK_EQ(got, 0);
    CHECK_EQ(out[0], 7); /* nothing written */
    /* NULL arrays are fine when there is nothing to rank */
    CHECK_EQ(mp_topk(NULL, 0, NULL, 5, NULL, &got), MP_OK);
    CHECK_EQ(got, 0);
}

MP_TEST(topk_k_larger_than_n_and_large_k) {
    float s[5] = {3, 1, 4, 1, 5};
    uint32_t out[5];
    size_t got;
    CHECK_EQ(mp_topk(s, 5, NULL, 1000, out, &got), MP_OK);
    CHECK_EQ(got, 5);
    uint32_t want[5] = {4, 2, 0, 1, 3};
    for (int i = 0; i < 5; i++) CHECK_EQ(out[i], want[i]);
    /* k > 128 takes the heap path: same answer as the stack path would give (descending, ties low index) */
    size_t n = 1000;
    float *big = malloc(n * sizeof *big);
    uint32_t *o = malloc(n * sizeof *o);
    CHECK(big && o);
    for (size_t i = 0; i < n; i++) big[i] = (float)(i % 10);
    CHECK_EQ(mp_topk(big, n, NULL, 300, o, &got), MP_OK);
    CHECK_EQ(got, 300);
    for (size_t i = 0; i < 100; i++) CHECK_EQ(o[i], 9 + 10 * i);       /* all the 9s in index order */
    for (size_t i = 100; i < 200; i++) CHECK_EQ(o[i], 8 + 10 * (i - 100)); /* then the 8s */
    free(big);
    free(o);
}

MP_TEST(topk_ties_go_to_lower_index) {
    float s[6] = {1, 2, 2, 1, 2, 0};
    uint32_t out[6];
    size_t got;
    CHECK_EQ(mp_topk(s, 6, NULL, 2, out, &got), MP_OK);
    CHECK_EQ(got, 2);
    CHECK(out[0] == 1 && out[1] == 2);
    CHECK_EQ(mp_topk(s, 6, NULL, 4, out, &got), MP_OK);
    CHECK_EQ(got, 4);
    CHECK(out[0] == 1 && out[1] == 2 && out[2] == 4 && out[3] == 0);
}

MP_TEST(topk_allow_mask_and_nan) {
    float s[6] = {9, NAN, 7, 6, 5, 4};
    uint8_t allow[6] = {0, 1, 1, 0, 1, 1};
    uint32_t out[6];
    size_t got;
    CHECK_EQ(mp_topk(s, 6, allow, 6, out, &got), MP_OK);
    CHECK_EQ(got, 3); /* 0 and 3 masked, 1 NaN */
    CHECK(out[0] == 2 && out[1] == 4 && out[2] == 5);
    uint8_t none[6] = {0};
    CHECK_EQ(mp_topk(s, 6, none, 3, out, &got), MP_OK);
    CHECK_EQ(got, 0);
}

MP_TEST(topk_invalid_arguments) {
    float s[2] = {1, 2};
    uint32_t out[2];
    size_t got = 5;
    CHECK_EQ(mp_topk(s, 2, NULL, 2, out, NULL), MP_EINVAL);
    CHECK_EQ(mp_topk(NULL, 2, NULL, 2, out, &got), MP_EINVAL);
    CHECK_EQ(got, 0);
    got = 5;
    CHECK_EQ(mp_topk(s, 2, NULL, 2, NULL, &got), MP_EINVAL);
    CHECK_EQ(got, 0);
#if SIZE_MAX > UINT32_MAX
    CHECK_EQ(mp_topk(s, (size_t)UINT32_MAX + 1, NULL, 2, out, &got), MP_EINVAL);
#endif
}
