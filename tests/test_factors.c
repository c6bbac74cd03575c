#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/factors.h"
#include "magpie/model.h"
#include "test.h"

/* Small integer factors: every score is exact in float, so ties are real ties and the brute-force order is
 * unambiguous. */
static void int_factors(mp_factors *f, uint64_t seed) {
    mp_rng rng;
    mp_rng_seed(&rng, seed);
    for (size_t i = 0; i < (size_t)f->n_users * f->k; i++) f->user[i] = (float)((int)mp_rng_below(&rng, 7) - 3);
    for (size_t i = 0; i < (size_t)f->n_items * f->k; i++) f->item[i] = (float)((int)mp_rng_below(&rng, 5) - 2);
}

/* Random exclusion CSR: each user excludes about 1/8 of the items. */
static void random_csr(mp_csr *m, uint32_t rows, uint32_t cols, uint64_t seed) {
    mp_rng rng;
    mp_rng_seed(&rng, seed);
    m->n_rows = rows;
    m->n_cols = cols;
    m->ptr = calloc(rows + 1, sizeof *m->ptr);
    m->idx = malloc((size_t)rows * cols * sizeof *m->idx);
    m->val = malloc((size_t)rows * cols * sizeof *m->val);
    uint64_t nnz = 0;
    for (uint32_t r = 0; r < rows; r++) {
        for (uint32_t c = 0; c < cols; c++)
            if (mp_rng_below(&rng, 8) == 0) {
                m->idx[nnz] = c;
                m->val[nnz++] = 1;
            }
        m->ptr[r + 1] = nnz;
    }
}

static int excluded(const mp_csr *m, uint32_t u, uint32_t i) {
    for (uint64_t p = m->ptr[u]; p < m->ptr[u + 1]; p++)
        if (m->idx[p] == i) return 1;
    return 0;
}

static int check_topn(mp_test_ctx *t, const mp_factors *f, const mp_csr *ex, size_t n, int threads) {
    uint32_t nq = f->n_users;
    uint32_t *users = calloc(nq + 1, sizeof *users);
    for (uint32_t q = 0; q < nq; q++) users[q] = nq - 1 - q; /* reversed: query order is not user order */
    uint32_t *items = malloc(nq * n * sizeof *items);
    float *scores = malloc(nq * n * sizeof *scores);
    mp_error err;
    int rc = mp_factors_topn(f, users, nq, ex, n, items, scores, threads, &err);
    if (rc) {
        mp_test_fail(t, __FILE__, __LINE__, "topn: %s", err.msg);
        goto out;
    }
    for (uint32_t q = 0; q < nq && !rc; q++) {
        uint32_t u = users[q];
        /* brute force: repeatedly pick the best remaining (highest score, then lowest id) */
        uint8_t *taken = calloc(f->n_items, 1);
        for (size_t j = 0; j < n; j++) {
            uint32_t best = UINT32_MAX;
            double bs = -INFINITY;
            for (uint32_t i = 0; i < f->n_items; i++) {
                if (taken[i] || (ex && excluded(ex, u, i))) continue;
                double s = mp_factors_predict(f, u, i);
                if (best == UINT32_MAX || s > bs) {
                    best = i;
                    bs = s;
                }
            }
            uint32_t got = items[q * n + j];
            if (got != best) {
                mp_test_fail(t, __FILE__, __LINE__, "user %u rank %zu: got item %u, want %u", u, j, got, best);
                rc = 1;
                break;
            }
            if (best != UINT32_MAX) {
                taken[best] = 1;
                if (fabs(scores[q * n + j] - bs) > 1e-4) {
                    mp_test_fail(t, __FILE__, __LINE__, "user %u rank %zu: score %g want %g", u, j, scores[q * n + j], bs);
                    rc = 1;
                    break;
                }
            } else if (!(isinf(scores[q * n + j]) && scores[q * n + j] < 0)) {
                mp_test_fail(t, __FILE__, __LINE__, "padding score is %g", scores[q * n + j]);
                rc = 1;
                break;
            }
        }
        free(taken);
    }
out:
    free(users);
    free(items);
    free(scores);
    return rc;
}

MP_TEST(factors_topn_matches_brute_force_with_exclusions_and_ties) {
    mp_factors f;
    CHECK_EQ(mp_factors_alloc(&f, 600, 300, 5, 0), MP_OK); /* 600 users: more than one sgemm block */
    int_factors(&f, 1);
    mp_csr ex;
    random_csr(&ex, 600, 300, 2);
    int bad = check_topn(t, &f, &ex, 10, 2);
    if (!bad) bad = check_topn(t, &f, NULL, 7, 1);
    mp_csr_free(&ex);
    mp_factors_free(&f);
}

MP_TEST(factors_topn_biases_and_padding) {
    mp_factors f;
    CHECK_EQ(mp_factors_alloc(&f, 20, 6, 3, 1), MP_OK);
    int_factors(&f, 5);
    for (uint32_t i = 0; i < 6; i++) f.item_bias[i] = (float)i;
    f.global_bias = 1.5;
    mp_csr ex;
    random_csr(&ex, 20, 6, 9);
    int bad = check_topn(t, &f, &ex, 8, 0); /* n > candidates: padded */
    mp_csr_free(&ex);
    mp_factors_free(&f);
    if (bad) return;
    uint32_t u = 20, it[2];
    float sc[2];
    mp_error err;
    CHECK_EQ(mp_factors_topn(&f, &u, 1, NULL, 2, it, sc, 1, &err), MP_EINVAL);
}

MP_TEST(factors_similar_cosine) {
    mp_factors f;
    CHECK_EQ(mp_factors_alloc(&f, 1, 4, 2, 0), MP_OK);
    float items[8] = {1, 0, 2, 0.1f, 0, 1, -1, 0};
    memcpy(f.item, items, sizeof items);
    uint32_t out[4];
    float sc[4];
    size_t n;
    mp_error err;
    CHECK_OK(mp_factors_similar(&f, 0, 4, out, sc, &n, &err), &err);
    CHECK_EQ(n, 3);
    CHECK_EQ(out[0], 1);
    CHECK_EQ(out[1], 2);
    CHECK_EQ(out[2], 3);
    CHECK_NEAR(sc[0], 2 / sqrt(4.01), 1e-6);
    CHECK_NEAR(sc[2], -1, 1e-6);
    CHECK_EQ(mp_factors_similar(&f, 4, 2, out, sc, &n, &err), MP_ENOTFOUND);
    mp_factors_free(&f);
}

static int save_factors(const mp_factors *f, const char *path, mp_error *err) {
    mp_mf_writer *w;
    if (mp_mf_writer_create(&w)) return MP_ENOMEM;
    mp_factors_save(f, w);
    mp_mf_put_u32(w, 0xABCD); /* trailer to check the reader stops exactly after the factors */
    int rc = mp_mf_writer_save(w, path, "test", 1, err);
    mp_mf_writer_destroy(w);
    return rc;
}

MP_TEST(factors_save_load_round_trip) {
    mp_factors f, g;
    CHECK_EQ(mp_factors_alloc(&f, 7, 5, 3, 1), MP_OK);
    mp_rng rng;
    mp_rng_seed(&rng, 4);
    mp_factors_init_normal(&f, &rng, 0.5f);
    for (int i = 0; i < 5; i++) f.item_bias[i] = (float)i * 0.25f;
    for (int i = 0; i < 7; i++) f.user_bias[i] = -(float)i;
    f.global_bias = 3.25;
    char path[512];
    snprintf(path, sizeof path, "%s/f.mpm", mp_test_tmpdir(t));
    mp_error err;
    CHECK_OK(save_factors(&f, path, &err), &err);
    mp_mf_reader *r;
    CHECK_OK(mp_mf_reader_open(&r, path, &err), &err);
    CHECK_OK(mp_factors_load(&g, r, &err), &err);
    uint32_t trailer = 0;
    CHECK_OK(mp_mf_get_u32(r, &trailer, &err), &err);
    CHECK_EQ(trailer, 0xABCD);
    mp_mf_reader_close(r);
    CHECK_EQ(g.n_users, 7);
    CHECK_EQ(g.n_items, 5);
    CHECK_EQ(g.k, 3);
    CHECK(g.user_bias && g.item_bias);
    CHECK(memcmp(f.user, g.user, 21 * sizeof(float)) == 0);
    CHECK(memcmp(f.item, g.item, 15 * sizeof(float)) == 0);
    CHECK(memcmp(f.user_bias, g.user_bias, 7 * sizeof(float)) == 0);
    CHECK(memcmp(f.item_bias, g.item_bias, 5 * sizeof(float)) == 0);
    CHECK_EQ(g.global_bias, 3.25);
    CHECK_NEAR(mp_factors_predict(&g, 2, 3), mp_factors_predict(&f, 2, 3), 0);
    mp_factors_free(&f);
    mp_factors_free(&g);
}

MP_TEST(factors_load_refuses_shape_mismatch) {
    char path[512];
    snprintf(path, sizeof path, "%s/bad.mpm", mp_test_tmpdir(t));
    mp_error err;
    /* Header claims 1000 users x 5 items x 3 factors but only a few floats follow. */
    mp_mf_writer *w;
    CHECK_EQ(mp_mf_writer_create(&w), MP_OK);
    mp_mf_put_u32(w, 1000);
    mp_mf_put_u32(w, 5);
    mp_mf_put_u32(w, 3);
    mp_mf_put_u32(w, 0);
    mp_mf_put_f64(w, 0);
    float junk[6] = {0};
    mp_mf_put_f32s(w, junk, 6);
    CHECK_OK(mp_mf_writer_save(w, path, "test", 1, &err), &err);
    mp_mf_writer_destroy(w);
    mp_mf_reader *r;
    mp_factors g;
    CHECK_OK(mp_mf_reader_open(&r, path, &err), &err);
    CHECK_EQ(mp_factors_load(&g, r, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "1000 users");
    mp_mf_reader_close(r);
    CHECK(g.user == NULL);

    /* Right byte count but the arrays are split differently (users 2x3 written as 3x2 + ...): count check. */
    CHECK_EQ(mp_mf_writer_create(&w), MP_OK);
    mp_mf_put_u32(w, 2);
    mp_mf_put_u32(w, 2);
    mp_mf_put_u32(w, 3);
    mp_mf_put_u32(w, 0);
    mp_mf_put_f64(w, 0);
    float a[12] = {0};
    mp_mf_put_f32s(w, a, 4);
    mp_mf_put_f32s(w, a, 8);
    CHECK_OK(mp_mf_writer_save(w, path, "test", 1, &err), &err);
    mp_mf_writer_destroy(w);
    CHECK_OK(mp_mf_reader_open(&r, path, &err), &err);
    CHECK(mp_factors_load(&g, r, &err) != MP_OK);
    mp_mf_reader_close(r);
    CHECK(g.user == NULL);
}
