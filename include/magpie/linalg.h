/* magpie/linalg.h: the dense kernels models share. Row-major float matrices unless said otherwise.
 * Built with MP_HAVE_CBLAS (make BLAS=openblas, the default) the large ones call CBLAS; with BLAS=none they run
 * plain-C kernels, which are also kept as the reference in tests. Nothing here allocates unless it says so. */
#ifndef MAGPIE_LINALG_H
#define MAGPIE_LINALG_H

#include <stddef.h>

#include "magpie/error.h"

/* Small vector kernels. Each has one fixed summation order, so a result never depends on the thread or the run;
 * different kernels round differently. Pure functions: safe from any thread; no allocation, no errors.
 *   mp_dot        a . b with eight interleaved partial sums (plain C the compiler vectorises); the default.
 *   mp_dot_seq    a . b as one running sum in index order (the reference); mp_l2sq_seq |a - b|^2 likewise.
 *   mp_dot_simd   a . b with AVX2 + FMA (4 x 8 lanes, then 8, then a scalar tail); mp_l2sq_simd likewise.
 *                 Call them only where mp_vec_simd_available() is 1 (the CPU has AVX2 and FMA); on builds for
 *                 other architectures they are mp_dot_seq / mp_l2sq_seq. Any alignment, any n (0 gives 0). */
MP_EXPORT float mp_dot(const float *a, const float *b, size_t n);
MP_EXPORT float mp_dot_seq(const float *a, const float *b, size_t n);
MP_EXPORT float mp_l2sq_seq(const float *a, const float *b, size_t n);
MP_EXPORT float mp_dot_simd(const float *a, const float *b, size_t n);
MP_EXPORT float mp_l2sq_simd(const float *a, const float *b, size_t n);
/* 1 if this CPU runs mp_dot_simd / mp_l2sq_simd (x86-64 with AVX2 and FMA, checked at run time). */
MP_EXPORT int mp_vec_simd_available(void);
/* y += alpha * x */
MP_EXPORT void mp_axpy(float alpha, const float *x, float *y, size_t n);

/* C (m,n) = alpha * A (m,k) * B (n,k)^T + beta * C; leading dimensions lda, ldb, ldc (row-major).
 * The scoring shape: users x factors times (items x factors)^T. */
MP_EXPORT void mp_sgemm_nt(size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda, const float *B,
                           size_t ldb, float beta, float *C, size_t ldc);
/* Plain-C reference of the same (always available). */
MP_EXPORT void mp_sgemm_nt_ref(size_t m, size_t n, size_t k, float alpha, const float *A, size_t lda, const float *B,
                               size_t ldb, float beta, float *C, size_t ldc);

/* G (k,k) = A^T A for A (n,k) with leading dimension lda; G is full (both triangles). */
MP_EXPORT void mp_gram(const float *A, size_t n, size_t k, size_t lda, float *G);

/* Solves A x = b for a symmetric positive definite A (k,k) by Cholesky, in double precision.
 * A and b are overwritten (A by its factor, b by x). MP_ERANGE if A is not positive definite. */
MP_EXPORT int mp_cholesky_solve(double *A, double *b, size_t k);

/* The two halves of mp_cholesky_solve, for solving several right-hand sides with one matrix:
 * mp_cholesky_factor overwrites the lower triangle of A (k,k) with L (A = L L^T; the upper triangle is left
 * as it was) and gives MP_ERANGE if A is not positive definite; mp_cholesky_solve_factored solves L L^T x = b
 * in place using only the lower triangle of L. */
MP_EXPORT int mp_cholesky_factor(double *A, size_t k);
MP_EXPORT void mp_cholesky_solve_factored(const double *L, double *b, size_t k);

/* y (m) = A (m,n) x (n), A row-major with leading dimension lda. Called inside an OpenMP parallel region it runs
 * the plain-C kernel on the calling thread (no nested BLAS threads). */
MP_EXPORT void mp_sgemv(size_t m, size_t n, const float *A, size_t lda, const float *x, float *y);

/* 1 when built with CBLAS. */
MP_EXPORT int mp_linalg_has_blas(void);

#endif
