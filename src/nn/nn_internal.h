/* nn_internal.h: what the files of src/nn share and the tests reach: the gemm paths and the vector exp. */
#ifndef MAGPIE_NN_INTERNAL_H
#define MAGPIE_NN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Which product mp_nn_gemm runs: the best one for this CPU (AVX2+FMA micro-kernel when the CPU has it), or one
 * forced (tests compare them; a forced AVX2 path on a CPU without it falls back to the plain one). */
enum { MP_NN_GEMM_AUTO = 0, MP_NN_GEMM_PLAIN = 1, MP_NN_GEMM_AVX2 = 2, MP_NN_GEMM_CBLAS = 3 };
void mp_nn_gemm_path(int path, int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha, const float *A,
                     size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);

/* 1 when the AVX2 + FMA paths run on this CPU (checked once per call; cheap). */
int mp_nn_simd(void);

/* x[i] = exp(x[i] - shift) for i < n; returns the sum of the new x in a fixed order (8 lanes, then the lanes
 * added pairwise, then the tail). Relative error of each exp about 2 ulp; arguments below -87.3 give about 1e-38
 * instead of a denormal or 0. */
float mp_nn_exp_shift_sum(float *x, size_t n, float shift);
/* max of x[0..n), n >= 1. */
float mp_nn_max(const float *x, size_t n);
/* y[i] += a * x[i]. */
void mp_nn_axpy(float *y, const float *x, float a, size_t n);

/* The dropout hash: uniform in [0, 1) from (seed, i), 24 bits. */
static inline float mp_nn_dropout_u(uint64_t seed, uint64_t i) {
    uint64_t z = seed ^ (i * 0x9E3779B97F4A7C15ull);
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

#endif
