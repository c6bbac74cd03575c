/* The neural core's matrix product, C (M,N) = alpha op(A) op(B) + beta C, and who owns the cores while it runs.
 *
 * OpenMP owns the cores. The output is cut into tiles (a multiple of the micro-tile, MR x NR); OpenMP threads take
 * tiles, and each tile runs a single-threaded packed product: for every K block (KC) pack op(B)'s columns into
 * NR-wide panels and op(A)'s rows into MR-high panels, then a register-blocked micro-kernel (AVX2+FMA intrinsics
 * when the CPU has them, else plain C the compiler vectorises) adds MR x NR at a time. Every element of C is summed
 * over k in the same order (K blocks in turn, k ascending inside) whatever the tiling, so the result does not
 * depend on the number of threads nor on which thread took a tile: same bits at 1 and 2 threads.
 *
 * Why not OpenBLAS: Debian's OpenBLAS is the pthreads build. Its thread count is process-wide
 * (openblas_set_num_threads), and it does not drop to one thread inside an OpenMP region (its OpenMP build checks
 * omp_in_parallel(), this one does not), so cblas_sgemm called from each OpenMP thread on a big block runs its own
 * pool under libgomp's: measured below, 4-25 GFLOP/s, worse than one thread. Pinning it
 * (OPENBLAS_NUM_THREADS=1) would cure that but for the whole process, and ALS and EASE call cblas expecting its
 * threads. Our own kernel on these shapes is about as fast as OpenBLAS's single-threaded sgemm, so the neural core
 * never calls BLAS: OpenBLAS stays the other modules', and the BLAS=none build runs the same code.
 * MP_NN_GEMM_CBLAS (cblas_sgemm per tile inside the OpenMP partition) is kept only for bench/nn_kernels.c.
 *
 * Measured (bench/nn_kernels.c and a CPU-time harness, AMD EPYC (Zen, AVX2) VM with 2 cores shared with other
 * jobs at load average 7-12, so wall-clock numbers are about half of what one core gives; "cpu" = GFLOP per
 * CPU-second of all threads, which the load disturbs far less). GFLOP/s:
 *   product (M x N x K)                 own 1t cpu | own 2t cpu, passive / active wait | OpenBLAS 1 thread cpu
 *   logits  256 x 12101 x 64, B^T          58-70   |   70 / 25                         |   62-80
 *   dh      256 x 64 x 12101               58-65   |   64 / 23                         |   51-63
 *   dtable  12101 x 64 x 256, A^T          45-57   |   43 / 21                         |   50-60
 *   qkv     12800 x 192 x 64, B^T          57-70   |   68 / 20                         |   58-61
 *   dW      192 x 64 x 12800, A^T          40-53   |   38 / 18                         |   48-64
 *   plain-C micro-kernel (no AVX2): 4-8.
 * cblas_sgemm per tile from inside the OpenMP partition (MP_NN_GEMM_CBLAS), 2 threads, wall: 4-25 GFLOP/s with
 * OpenBLAS's own threads left on (they fight libgomp's: below a single cblas call's 15-38), 24-34 with
 * OPENBLAS_NUM_THREADS=1 (as good as ours, but only by pinning the whole process). Fused softmax_xent (C=64,
 * V=12101, 128-row blocks): 52-58 GFLOP per CPU-second at 1 and 2 threads with passive waiting, 13-22 with
 * libgomp's default spinning; the three products alone reach 56. So: our kernel, OpenMP the only pool.
 * The waiting matters on a shared machine: libgomp's threads spin at every barrier by default (GOMP_SPINCOUNT),
 * and when other jobs hold the cores the spinning doubles the CPU time; OMP_WAIT_POLICY=passive (in the
 * environment: libgomp reads it when it loads, before main) removes that. On two cores of one's own the default
 * is fine. */
#include <string.h>

#include "magpie/linalg.h"
#include "magpie/nn.h"
#include "nn/nn_internal.h"

#ifdef MP_HAVE_CBLAS
#include <cblas.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#define MR 6
#define NR 16
#define KC 256
#define MC_SMALL_K 264 /* rows per tile when K <= 128 (A's block stays in L2); multiple of MR */
#define MC 120 /* rows per tile otherwise; MC * KC <= MC_SMALL_K * 128 (the packed A) */
#define NC 128 /* multiple of NR */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NN_X86 1
#endif

int mp_nn_simd(void) {
#ifdef NN_X86
    return mp_vec_simd_available();
#else
    return 0;
#endif
}

/* The micro-kernel reads op(A) in place: element (r, k) of the MR rows at a + r*rs + k*cs (rs, cs = lda, 1 for A,
 * 1, lda for A^T), and op(B)'s 16 columns at row k as b + k*bs (contiguous: B itself when not transposed, with
 * bs = ldb; a packed panel, bs = NR, when transposed or at the right edge). Only two things are copied: a
 * transposed B (into NR-wide panels, once per tile and K block) and the last, partial MR rows (into a zero-padded
 * panel). */
typedef struct ukr_args {
    size_t kc;
    const float *a;
    size_t rs, cs;
    const float *b;
    size_t bs;
    float *c;
    size_t ldc;
    float alpha, beta;
    int first; /* first K block: C = alpha acc + beta C (beta 0: C not read); later: C += alpha acc */
} ukr_args;

static void ukr_plain(const ukr_args *u) {
    float acc[MR * NR];
    memset(acc, 0, sizeof acc);
    for (size_t k = 0; k < u->kc; k++) {
        float bk[NR], ak[MR]; /* local copies: the compiler then knows nothing aliases acc and vectorises */
        memcpy(bk, u->b + k * u->bs, sizeof bk);
        for (size_t i = 0; i < MR; i++) ak[i] = u->a[i * u->rs + k * u->cs];
        for (size_t i = 0; i < MR; i++)
            for (size_t j = 0; j < NR; j++) acc[i * NR + j] += ak[i] * bk[j];
    }
    for (size_t i = 0; i < MR; i++)
        for (size_t j = 0; j < NR; j++) {
            float v = u->alpha * acc[i * NR + j];
            float *cij = u->c + i * u->ldc + j;
            if (!u->first) *cij = v + *cij;
            else if (u->beta == 0.0f) *cij = v;
            else *cij = v + u->beta * *cij;
        }
}

#ifdef NN_X86
#define AVX_FN __attribute__((target("avx2,fma")))
AVX_FN static inline void avx_store_row(float *c, __m256 a0, __m256 a1, __m256 va, __m256 vb, int first, int b0) {
    __m256 x0 = _mm256_mul_ps(va, a0), x1 = _mm256_mul_ps(va, a1);
    if (!first) {
        x0 = _mm256_add_ps(x0, _mm256_loadu_ps(c));
        x1 = _mm256_add_ps(x1, _mm256_loadu_ps(c + 8));
    } else if (!b0) {
        x0 = _mm256_add_ps(x0, _mm256_mul_ps(vb, _mm256_loadu_ps(c)));
        x1 = _mm256_add_ps(x1, _mm256_mul_ps(vb, _mm256_loadu_ps(c + 8)));
    }
    _mm256_storeu_ps(c, x0);
    _mm256_storeu_ps(c + 8, x1);
}

/* 6 x 16 in 12 accumulators; per k two loads of B and six broadcasts of A. The epilogue multiplies and adds
 * without FMA, as the plain kernel does. */
AVX_FN static void ukr_avx2(const ukr_args *u) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int i = 0; i < MR; i++) { /* C's 6 rows are far apart: fetch them while the k loop runs */
        _mm_prefetch((const char *)(u->c + i * u->ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(u->c + i * u->ldc + NR - 1), _MM_HINT_T0);
    }
    const float *a0 = u->a, *a1 = a0 + u->rs, *a2 = a1 + u->rs, *a3 = a2 + u->rs, *a4 = a3 + u->rs,
                *a5 = a4 + u->rs, *b = u->b;
    size_t cs = u->cs, bs = u->bs;
    for (size_t k = 0; k < u->kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 x = _mm256_broadcast_ss(a0);
        c00 = _mm256_fmadd_ps(x, b0, c00);
        c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a1);
        c10 = _mm256_fmadd_ps(x, b0, c10);
        c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a2);
        c20 = _mm256_fmadd_ps(x, b0, c20);
        c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a3);
        c30 = _mm256_fmadd_ps(x, b0, c30);
        c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a4);
        c40 = _mm256_fmadd_ps(x, b0, c40);
        c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a5);
        c50 = _mm256_fmadd_ps(x, b0, c50);
        c51 = _mm256_fmadd_ps(x, b1, c51);
        a0 += cs;
        a1 += cs;
        a2 += cs;
        a3 += cs;
        a4 += cs;
        a5 += cs;
        b += bs;
    }
    __m256 va = _mm256_set1_ps(u->alpha), vb = _mm256_set1_ps(u->beta);
    int b0 = u->beta == 0.0f, first = u->first;
    float *c = u->c;
    size_t ldc = u->ldc;
    avx_store_row(c, c00, c01, va, vb, first, b0);
    avx_store_row(c + ldc, c10, c11, va, vb, first, b0);
    avx_store_row(c + 2 * ldc, c20, c21, va, vb, first, b0);
    avx_store_row(c + 3 * ldc, c30, c31, va, vb, first, b0);
    avx_store_row(c + 4 * ldc, c40, c41, va, vb, first, b0);
    avx_store_row(c + 5 * ldc, c50, c51, va, vb, first, b0);
}
#endif

typedef void (*ukr_fn)(const ukr_args *u);

typedef struct gemm_args {
    int ta, tb;
    size_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
    ukr_fn ukr;
    int simd; /* the AVX2 kernel and packing */
} gemm_args;

#ifdef NN_X86
/* 8 rows (stride ld) x 8 k of B^T into dst[k][NR] columns c0..c0+8: an 8x8 transpose in registers. */
AVX_FN static void transpose8(float *dst, const float *src, size_t ld) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ld), r2 = _mm256_loadu_ps(src + 2 * ld),
           r3 = _mm256_loadu_ps(src + 3 * ld), r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld),
           r6 = _mm256_loadu_ps(src + 6 * ld), r7 = _mm256_loadu_ps(src + 7 * ld);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
           t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
           u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
           u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * NR, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + 1 * NR, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * NR, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * NR, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * NR, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * NR, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * NR, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * NR, _mm256_permute2f128_ps(u3, u7, 0x31));
}
#endif

/* op(B) k [p0, p0+kc), columns [j0, j0+nc) into NR-wide panels Bp[panel][k][NR], zero columns past nc. */
static void pack_b(float *Bp, int trans, const float *B, size_t ldb, size_t j0, size_t nc, size_t p0, size_t kc,
                   int simd) {
    for (size_t jp = 0; jp < nc; jp += NR) {
        size_t nr = nc - jp < NR ? nc - jp : NR;
        float *dst = Bp + jp * kc;
        if (!trans) {
            for (size_t k = 0; k < kc; k++) {
                const float *row = B + (p0 + k) * ldb + j0 + jp;
                size_t c = 0;
                for (; c < nr; c++) dst[k * NR + c] = row[c];
                for (; c < NR; c++) dst[k * NR + c] = 0.0f;
            }
        } else {
            if (nr == NR) { /* 16 rows of B at once: each k row of the panel gathers one float from each */
                const float *r0 = B + (j0 + jp) * ldb + p0;
                size_t k = 0;
#ifdef NN_X86
                if (simd)
                    for (; k + 8 <= kc; k += 8) {
                        transpose8(dst + k * NR, r0 + k, ldb);
                        transpose8(dst + k * NR + 8, r0 + 8 * ldb + k, ldb);
                    }
#endif
                (void)simd;
                for (; k < kc; k++)
                    for (size_t c = 0; c < NR; c++) dst[k * NR + c] = r0[c * ldb + k];
                continue;
            }
            for (size_t c = 0; c < nr; c++) {
                const float *row = B + (j0 + jp + c) * ldb + p0;
                for (size_t k = 0; k < kc; k++) dst[k * NR + c] = row[k];
            }
            for (size_t c = nr; c < NR; c++)
                for (size_t k = 0; k < kc; k++) dst[k * NR + c] = 0.0f;
        }
    }
}

/* One tile [i0, i0+mc) x [j0, j0+nc) of C, all of K. Bp (KC*NC) is this thread's; *packed remembers which
 * (j0, p0) it holds so consecutive tiles of one column block do not pack again. */
static void gemm_tile(const gemm_args *g, size_t i0, size_t mc, size_t j0, size_t nc, float *Ap, float *Bp,
                      size_t *packed) {
    float edge[MR * NR], apad[KC * MR];
    size_t rs = g->ta ? 1 : g->lda, cs = g->ta ? g->lda : 1;
    for (size_t p0 = 0; p0 < g->K; p0 += KC) {
        size_t kc = g->K - p0 < KC ? g->K - p0 : KC;
        int first = p0 == 0;
        /* B in place when it is not transposed and the tile is whole NR panels; else packed */
        int direct_b = !g->tb && nc % NR == 0;
        if (!direct_b && !(packed[0] == j0 + 1 && packed[1] == p0 && packed[2] == nc)) {
            pack_b(Bp, g->tb, g->B, g->ldb, j0, nc, p0, kc, g->simd);
            packed[0] = j0 + 1;
            packed[1] = p0;
            packed[2] = nc;
        }
        size_t mfull = mc / MR * MR, mr_last = mc - mfull;
        if (g->ta) { /* A^T: k runs down A's rows, lda apart; pack the tile's rows into [panel][k][MR] */
            for (size_t k = 0; k < kc; k++) {
                const float *src = g->A + (p0 + k) * g->lda + i0;
                size_t ip = 0;
                for (; ip < mfull; ip += MR) memcpy(Ap + ip * kc + k * MR, src + ip, MR * sizeof *Ap);
                if (mr_last) {
                    float *dst = Ap + ip * kc + k * MR;
                    for (size_t r = 0; r < MR; r++) dst[r] = r < mr_last ? src[ip + r] : 0.0f;
                }
            }
        } else if (mr_last) { /* the last rows, zero-padded to MR: [k][MR], once per K block */
            const float *a = g->A + (i0 + mfull) * rs + p0 * cs;
            for (size_t k = 0; k < kc; k++)
                for (size_t r = 0; r < MR; r++) apad[k * MR + r] = r < mr_last ? a[r * rs + k * cs] : 0.0f;
        }
        for (size_t jr = 0; jr < nc; jr += NR) {
            size_t nr = nc - jr < NR ? nc - jr : NR;
            ukr_args u = {kc, NULL, rs, cs, NULL, NR, NULL, NR, g->alpha, g->beta, first};
            if (direct_b) {
                u.b = g->B + p0 * g->ldb + j0 + jr;
                u.bs = g->ldb;
            } else {
                u.b = Bp + jr * kc;
            }
            for (size_t ir = 0; ir < mc; ir += MR) {
                size_t mr = mc - ir < MR ? mc - ir : MR, i = i0 + ir;
                u.a = g->A + i * rs + p0 * cs;
                u.rs = rs;
                u.cs = cs;
                if (g->ta) {
                    u.a = Ap + ir * kc;
                    u.rs = 1;
                    u.cs = MR;
                } else if (mr < MR) {
                    u.a = apad;
                    u.rs = 1;
                    u.cs = MR;
                }
                float *c = g->C + i * g->ldc + j0 + jr;
                if (mr == MR && nr == NR) {
                    u.c = c;
                    u.ldc = g->ldc;
                    g->ukr(&u);
                } else { /* an edge: the same kernel on a copy, so the arithmetic is the same */
                    memset(edge, 0, sizeof edge);
                    if (!first || g->beta != 0.0f)
                        for (size_t r = 0; r < mr; r++) memcpy(edge + r * NR, c + r * g->ldc, nr * sizeof *c);
                    u.c = edge;
                    u.ldc = NR;
                    g->ukr(&u);
                    for (size_t r = 0; r < mr; r++) memcpy(c + r * g->ldc, edge + r * NR, nr * sizeof *c);
                }
            }
        }
    }
}

#ifdef MP_HAVE_CBLAS
static void cblas_tile(const gemm_args *g, size_t i0, size_t mc, size_t j0, size_t nc) {
    const float *a = g->ta ? g->A + i0 : g->A + i0 * g->lda;
    const float *b = g->tb ? g->B + j0 * g->ldb : g->B + j0;
    cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans, (int)mc,
                (int)nc, (int)g->K, g->alpha, a, (int)g->lda, b, (int)g->ldb, g->beta, g->C + i0 * g->ldc + j0,
                (int)g->ldc);
}
#endif

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

void mp_nn_gemm_path(int path, int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha, const float *A,
                     size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0 || alpha == 0.0f) {
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    gemm_args g = {trans_a, trans_b, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C, ukr_plain, 0};
#ifdef NN_X86
    if ((path == MP_NN_GEMM_AUTO || path == MP_NN_GEMM_AVX2) && mp_nn_simd()) {
        g.ukr = ukr_avx2;
        g.simd = 1;
    }
#endif
#ifndef MP_HAVE_CBLAS
    if (path == MP_NN_GEMM_CBLAS) path = MP_NN_GEMM_AUTO;
#endif
    /* Tiles: start from (MC, NC) cut to the problem, and halve the longer side until there are enough tiles to keep
     * every thread busy (the tiling changes no result, see the top of the file). */
    int nth = 1;
#ifdef _OPENMP
    if (!omp_in_parallel() && (double)M * N * K > 1048576.0) nth = omp_get_max_threads(); /* ~25 us of work */
#endif
    size_t mcap = K <= 128 ? MC_SMALL_K : MC;
    size_t mc = M < mcap ? round_up(M, MR) : mcap, nc = N < NC ? round_up(N, NR) : NC;
    for (;;) {
        size_t tiles = ((M + mc - 1) / mc) * ((N + nc - 1) / nc);
        if (nth == 1 || tiles >= 2 * (size_t)nth) break;
        if (mc / MR >= nc / NR && mc > MR) mc = round_up(mc / 2, MR);
        else if (nc > NR) nc = round_up(nc / 2, NR);
        else if (mc > MR) mc = round_up(mc / 2, MR);
        else break;
    }
    /* Tiles column block by column block (t -> j0 = t / tm), so a thread's consecutive tiles reuse a packed B. */
    size_t tm = (M + mc - 1) / mc, tn = (N + nc - 1) / nc, ntiles = tm * tn;
    if ((size_t)nth > ntiles) nth = (int)ntiles;
#ifdef _OPENMP
#pragma omp parallel num_threads(nth) if (nth > 1)
#endif
    {
        float Bp[KC * NC], Ap[MC_SMALL_K * 128]; /* 128 + 132 KiB of this thread's stack */
        size_t packed[3] = {0, 0, 0};
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (size_t t = 0; t < ntiles; t++) {
            size_t j0 = (t / tm) * nc, i0 = (t % tm) * mc;
            size_t m1 = M - i0 < mc ? M - i0 : mc, n1 = N - j0 < nc ? N - j0 : nc;
#ifdef MP_HAVE_CBLAS
            if (path == MP_NN_GEMM_CBLAS) {
                cblas_tile(&g, i0, m1, j0, n1);
                continue;
            }
#endif
            gemm_tile(&g, i0, m1, j0, n1, Ap, Bp, packed);
        }
    }
}

void mp_nn_gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    mp_nn_gemm_path(MP_NN_GEMM_AUTO, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
