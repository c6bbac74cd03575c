/* bench/nn_kernels.c: speed of the neural core's hot kernels on the shapes of a 2-block, 64-dim SASRec over 12,101
 * items (Beauty), batch 256, T = 50. Prints one table:
 *   - mp_nn_gemm GFLOP/s at 1 and 2 OpenMP threads, against cblas_sgemm as one call (OpenBLAS with its own
 *     threads) and cblas_sgemm called per tile from inside the OpenMP partition (what gemm.c rejects);
 *   - the fused full softmax (loss + dh + dtable): rows/s and GFLOP/s (3 products of 2*C*V flops per row);
 *   - attention forward + backward time at B=256, T=50, C=64, NH=1 and 2 (all positions valid, and
 *     Beauty-like: the last 9 positions of each sequence valid).
 * usage: nn_kernels [seconds per measurement, default 0.3] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "magpie/nn.h"
#include "magpie/rng.h"
#include "nn/nn_internal.h"

#ifdef MP_HAVE_CBLAS
#include <cblas.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
/* CPU seconds of all this process's threads: with it, "GFLOP per CPU second" shows the cost of spinning threads
 * and is less disturbed than wall time by other jobs on a shared machine. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
static double last_cpu; /* CPU seconds per call of the last time_gemm */
/* The machine's load average: timings on a shared machine mean little when it is above the core count. */
static void print_load(const char *when) {
    char buf[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
        fclose(f);
    }
    printf("load average %s: %s", when, buf);
}

static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}
static float *rnd(mp_rng *r, size_t n, float s) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)((mp_rng_uniform(r) * 2 - 1) * s);
    return x;
}

typedef struct shape {
    const char *what;
    size_t M, N, K;
    int ta, tb;
} shape;

/* seconds per call of `path` (-1: cblas_sgemm directly) */
static double time_gemm(const shape *s, int path, const float *A, const float *B, float *C, double budget) {
    size_t lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    int reps = 0;
    double t0 = now(), c0 = cpu_now(), t;
    do {
        if (path < 0) {
#ifdef MP_HAVE_CBLAS
            cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
                        (int)s->M, (int)s->N, (int)s->K, 1.0f, A, (int)lda, B, (int)ldb, 1.0f, C, (int)s->N);
#endif
        } else {
            mp_nn_gemm_path(path, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 1.0f, C, s->N);
        }
        reps++;
    } while ((t = now() - t0) < budget);
    last_cpu = (cpu_now() - c0) / reps;
    return t / reps;
}

int main(int argc, char **argv) {
    double budget = argc > 1 ? atof(argv[1]) : 0.3;
    mp_rng rng;
    mp_rng_seed(&rng, 1);
    const size_t V = 12101, C = 64, R = 256, BT = 12800;
    const shape shapes[] = {
        {"logits h.table^T", R, V, C, 0, 1},   {"dh     dl.table", R, C, V, 0, 0},
        {"dtable dl^T.h", V, C, R, 1, 0},      {"qkv fwd x.W^T", BT, 3 * C, C, 0, 1},
        {"dinp   dout.W", BT, C, 3 * C, 0, 0}, {"dW     dout^T.x", 3 * C, C, BT, 1, 0},
        {"dW     64x64xBT", C, C, BT, 1, 0},
    };
    float *A = rnd(&rng, V * R > BT * 3 * C ? V * R : BT * 3 * C, 1), *B = rnd(&rng, V * C > BT * C ? V * C : BT * C, 1);
    float *Cm = calloc(R * V > BT * 3 * C ? R * V : BT * 3 * C, sizeof(float)); /* the largest C: logits (R,V) */
    int has_blas = 0;
#ifdef MP_HAVE_CBLAS
    has_blas = 1;
#endif
    print_load("at start");
    printf("mp_nn_gemm vs OpenBLAS, GFLOP/s (%s)\n", mp_nn_simd() ? "AVX2+FMA micro-kernel" : "plain-C micro-kernel");
    printf("wall-clock GFLOP/s; [cpu]: GFLOP per CPU second of all threads\n");
    printf("%-18s %22s %8s %7s %7s %7s %7s %10s %7s %8s\n", "product", "M x N x K", "plain 1t", "own 1t", "[cpu]",
           "own 2t", "[cpu]", "cblas call", "[cpu]", "tile 2t");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        double fl = 2.0 * s->M * s->N * s->K / 1e9;
        set_threads(1);
        double pl = fl / time_gemm(s, MP_NN_GEMM_PLAIN, A, B, Cm, budget);
        double o1 = fl / time_gemm(s, MP_NN_GEMM_AUTO, A, B, Cm, budget), o1c = fl / last_cpu;
        set_threads(2);
        double o2 = fl / time_gemm(s, MP_NN_GEMM_AUTO, A, B, Cm, budget), o2c = fl / last_cpu;
        double cb = has_blas ? fl / time_gemm(s, -1, A, B, Cm, budget) : 0, cbc = has_blas ? fl / last_cpu : 0;
        double ct = has_blas ? fl / time_gemm(s, MP_NN_GEMM_CBLAS, A, B, Cm, budget) : 0;
        char dims[64];
        snprintf(dims, sizeof dims, "%zu x %zu x %zu%s%s", s->M, s->N, s->K, s->ta ? " tA" : "", s->tb ? " tB" : "");
        printf("%-18s %22s %8.1f %7.1f %7.1f %7.1f %7.1f %10.1f %7.1f %8.1f\n", s->what, dims, pl, o1, o1c, o2, o2c, cb,
               cbc, ct);
    }
    free(A), free(B), free(Cm);

    /* fused softmax: N rows all with a target */
    size_t N = 2048;
    float *h = rnd(&rng, N * C, 1), *table = rnd(&rng, V * C, 0.1f), *dh = calloc(N * C, 4), *dt = calloc(V * C, 4);
    uint32_t *tg = malloc(N * sizeof *tg);
    for (size_t n = 0; n < N; n++) tg[n] = (uint32_t)(mp_rng_uniform(&rng) * V);
    printf("\nfused softmax_xent (C=64, V=12101, loss + dh + dtable)\n%-14s %8s %12s %9s %7s\n", "scratch_rows",
           "threads", "rows/s", "GFLOP/s", "[cpu]");
    const size_t srows[] = {64, 128, 256};
    for (size_t k = 0; k < 3; k++) {
        float *scratch = malloc(srows[k] * V * sizeof *scratch);
        for (int th = 1; th <= 2; th++) {
            set_threads(th);
            double loss = 0, t0 = now(), c0 = cpu_now(), t;
            size_t cnt = 0, reps = 0;
            do {
                mp_nn_softmax_xent(&loss, &cnt, dh, dt, h, table, tg, N, C, V, 1.0f / N, scratch, srows[k]);
                reps++;
            } while ((t = now() - t0) < budget);
            double rps = (double)N * reps / t, rpc = (double)N * reps / (cpu_now() - c0);
            printf("%-14zu %8d %12.0f %9.1f %7.1f\n", srows[k], th, rps, rps * 6.0 * C * V / 1e9, rpc * 6.0 * C * V / 1e9);
        }
        free(scratch);
    }
    free(h), free(table), free(dh), free(dt), free(tg);

    /* attention */
    size_t Bn = 256, T = 50;
    float *qkv = rnd(&rng, Bn * T * 3 * C, 1), *out = malloc(Bn * T * C * 4), *att = malloc(Bn * 2 * T * T * 4),
          *datt = malloc(Bn * 2 * T * T * 4), *g = rnd(&rng, Bn * T * C, 1), *dq = calloc(Bn * T * 3 * C, 4);
    uint8_t *valid = malloc(Bn * T);
    printf("\nattention fwd+bwd, B=256 T=50 C=64, ms per call\n%-4s %-12s %8s %8s\n", "NH", "valid", "1t", "2t");
    for (size_t NH = 1; NH <= 2; NH++)
        for (int beauty = 0; beauty < 2; beauty++) {
            for (size_t i = 0; i < Bn * T; i++) valid[i] = !beauty || i % T >= T - 9;
            double ms[2];
            for (int th = 1; th <= 2; th++) {
                set_threads(th);
                size_t reps = 0;
                double t0 = now(), t;
                do {
                    mp_nn_attention_fwd(out, att, qkv, valid, Bn, T, C, NH);
                    mp_nn_attention_bwd(dq, datt, g, qkv, att, Bn, T, C, NH);
                    reps++;
                } while ((t = now() - t0) < budget);
                ms[th - 1] = 1e3 * t / reps;
            }
            printf("%-4zu %-12s %8.2f %8.2f\n", NH, beauty ? "last 9 of 50" : "all", ms[0], ms[1]);
        }
    free(qkv), free(out), free(att), free(datt), free(g), free(dq), free(valid);
    print_load("at end");
    return 0;
}
