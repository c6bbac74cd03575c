#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/linalg.h"
#include "magpie/rng.h"
#include "test.h"

static void fill(mp_rng *rng, float *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = (float)(mp_rng_uniform(rng) * 2 - 1);
}

/* Straight triple loop in double: the oracle for both sgemm paths. */
static double naive_nt(const float *A, size_t lda, const float *B, size_t ldb, size_t i, size_t j, size_t k) {
    double s = 0;
    for (size_t p = 0; p < k; p++) s += (double)A[i * lda + p] * B[j * ldb + p];
    return s;
}

MP_TEST(linalg_sgemm_odd_shapes) {
    mp_rng rng;
    mp_rng_seed(&rng, 7);
    const size_t shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 9, 13}, {33, 65, 31}, {2, 100, 1}, {64, 3, 129}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        size_t lda = k + 3, ldb = k + 1, ldc = n + 5;
        float *A = malloc(m * lda * sizeof *A), *B = malloc(n * ldb * sizeof *B);
        float *C0 = malloc(m * ldc * sizeof *C0), *C1 = malloc(m * ldc * sizeof *C1), *C2 = malloc(m * ldc * 4);
        fill(&rng, A, m * lda);
        fill(&rng, B, n * ldb);
        fill(&rng, C0, m * ldc);
        memcpy(C1, C0, m * ldc * sizeof *C0);
        memcpy(C2, C0, m * ldc * sizeof *C0);
        mp_sgemm_nt(m, n, k, 0.5f, A, lda, B, ldb, 2.0f, C1, ldc);
        mp_sgemm_nt_ref(m, n, k, 0.5f, A, lda, B, ldb, 2.0f, C2, ldc);
        int ok = 1;
        for (size_t i = 0; i < m && ok; i++)
            for (size_t j = 0; j < ldc; j++) {
                double want = j < n ? 0.5 * naive_nt(A, lda, B, ldb, i, j, k) + 2.0 * C0[i * ldc + j] : C0[i * ldc + j];
                if (fabs(C1[i * ldc + j] - want) > 1e-4 * (1 + fabs(want)) ||
                    fabs(C2[i * ldc + j] - want) > 1e-4 * (1 + fabs(want))) {
                    ok = 0;
                    mp_test_fail(t, __FILE__, __LINE__, "shape %zux%zux%zu at (%zu,%zu): blas %g ref %g want %g", m, n,
                                 k, i, j, C1[i * ldc + j], C2[i * ldc + j], want);
                    break;
                }
            }
        free(A);
        free(B);
        free(C0);
        free(C1);
        free(C2);
        if (!ok) return;
    }
}

MP_TEST(linalg_sgemm_beta_zero_overwrites_nan) {
    float A[2] = {1, 2}, B[2] = {3, 4}, C[1] = {NAN};
    mp_sgemm_nt(1, 1, 2, 1.0f, A, 2, B, 2, 0.0f, C, 1);
    CHECK_NEAR(C[0], 11, 1e-6);
    C[0] = NAN;
    mp_sgemm_nt_ref(1, 1, 2, 1.0f, A, 2, B, 2, 0.0f, C, 1);
    CHECK_NEAR(C[0], 11, 1e-6);
}

MP_TEST(linalg_gram_and_gemv) {
    mp_rng rng;
    mp_rng_seed(&rng, 3);
    size_t n = 37, k = 11, lda = 13;
    float *A = malloc(n * lda * sizeof *A), *G = malloc(k * k * sizeof *G);
    fill(&rng, A, n * lda);
    mp_gram(A, n, k, lda, G);
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++) {
            double s = 0;
            for (size_t r = 0; r < n; r++) s += (double)A[r * lda + i] * A[r * lda + j];
            CHECK_NEAR(G[i * k + j], s, 1e-4);
        }
    float x[11], y[37];
    fill(&rng, x, k);
    mp_sgemv(n, k, A, lda, x, y);
    for (size_t r = 0; r < n; r++) {
        double s = 0;
        for (size_t p = 0; p < k; p++) s += (double)A[r * lda + p] * x[p];
        CHECK_NEAR(y[r], s, 1e-5);
    }
    CHECK_NEAR(mp_dot(A, A + lda, 11), naive_nt(A, lda, A, lda, 0, 1, 11), 1e-5);
    free(A);
    free(G);
}

MP_TEST(linalg_cholesky_hand_case) {
    /* A = L L^T with L = [[2,0,0],[1,3,0],[-1,2,1]]; x = (1,-2,3). */
    double A[9] = {4, 2, -2, 2, 10, 5, -2, 5, 6};
    double x[3] = {1, -2, 3}, b[3];
    for (int i = 0; i < 3; i++) b[i] = A[i * 3] * x[0] + A[i * 3 + 1] * x[1] + A[i * 3 + 2] * x[2];
    CHECK_EQ(mp_cholesky_solve(A, b, 3), MP_OK);
    CHECK_NEAR(A[0], 2, 1e-12);
    CHECK_NEAR(A[3], 1, 1e-12);
    CHECK_NEAR(A[4], 3, 1e-12);
    CHECK_NEAR(A[6], -1, 1e-12);
    CHECK_NEAR(A[7], 2, 1e-12);
    CHECK_NEAR(A[8], 1, 1e-12);
    for (int i = 0; i < 3; i++) CHECK_NEAR(b[i], x[i], 1e-12);
    double notpd[4] = {1, 2, 2, 1}, rhs[2] = {1, 1};
    CHECK_EQ(mp_cholesky_solve(notpd, rhs, 2), MP_ERANGE);
    double nanm[1] = {NAN}, r1[1] = {1};
    CHECK_EQ(mp_cholesky_solve(nanm, r1, 1), MP_ERANGE);
}

MP_TEST(linalg_cholesky_random_spd_residual) {
    mp_rng rng;
    mp_rng_seed(&rng, 11);
    const size_t k = 40, n = 60;
    float *M = malloc(n * k * sizeof *M), *G = malloc(k * k * sizeof *G);
    fill(&rng, M, n * k);
    mp_gram(M, n, k, k, G);
    double *A = malloc(k * k * sizeof *A), *A0 = malloc(k * k * sizeof *A0), b[40], b0[40];
    for (size_t i = 0; i < k * k; i++) A0[i] = A[i] = G[i] + (i % (k + 1) == 0 ? 0.1 : 0.0);
    for (size_t i = 0; i < k; i++) b0[i] = b[i] = mp_rng_uniform(&rng) - 0.5;
    CHECK_EQ(mp_cholesky_solve(A, b, k), MP_OK);
    double worst = 0;
    for (size_t i = 0; i < k; i++) {
        double r = -b0[i];
        for (size_t j = 0; j < k; j++) r += A0[i * k + j] * b[j];
        if (fabs(r) > worst) worst = fabs(r);
    }
    CHECK_MSG(worst < 1e-9, "residual %g", worst);
    free(M);
    free(G);
    free(A);
    free(A0);
}

/* The vector kernels against a naive double-precision reference over lengths 0..67 and every start offset 0..7
 * (unaligned loads, all tails of the 32 / 8 blocks). mp_dot_seq is the reference loop itself, bit for bit. */
MP_TEST(linalg_vec_kernels_match_reference) {
    enum { MAXN = 67, PAD = 8 };
    float a[MAXN + PAD], b[MAXN + PAD];
    mp_rng rng;
    mp_rng_seed(&rng, 11);
    for (int i = 0; i < MAXN + PAD; i++) {
        a[i] = (float)(mp_rng_uniform(&rng) * 2 - 1);
        b[i] = (float)(mp_rng_uniform(&rng) * 2 - 1);
    }
    int simd = mp_vec_simd_available();
    for (size_t off = 0; off < PAD; off++) {
        for (size_t n = 0; n <= MAXN; n++) {
            const float *x = a + off, *y = b + (PAD - 1 - off);
            double dot = 0, l2 = 0, abs_sum = 0;
            float seq = 0, seq_l2 = 0;
            for (size_t i = 0; i < n; i++) {
                dot += (double)x[i] * y[i];
                abs_sum += fabs((double)x[i] * y[i]);
                l2 += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
                seq += x[i] * y[i];
                float d = x[i] - y[i];
                seq_l2 += d * d;
            }
            double tol = 1e-6 * (abs_sum + l2 + 1);
            CHECK_MSG(mp_dot_seq(x, y, n) == seq, "seq n %zu off %zu", n, off);
            CHECK_MSG(mp_l2sq_seq(x, y, n) == seq_l2, "seq l2 n %zu off %zu", n, off);
            CHECK_MSG(fabs(mp_dot(x, y, n) - dot) <= tol, "dot n %zu off %zu", n, off);
            if (simd) {
                CHECK_MSG(fabs(mp_dot_simd(x, y, n) - dot) <= tol, "simd dot n %zu off %zu", n, off);
                CHECK_MSG(fabs(mp_l2sq_simd(x, y, n) - l2) <= tol, "simd l2 n %zu off %zu", n, off);
            }
            if (n == 0) CHECK(mp_dot(x, y, 0) == 0 && mp_dot_seq(x, y, 0) == 0 && (!simd || mp_dot_simd(x, y, 0) == 0));
        }
    }
}
