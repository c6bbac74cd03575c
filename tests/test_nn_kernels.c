/* Tests of magpie/nn.h sections 1 and 2: the double references against central finite differences of themselves
 * (so the backward formulas are right), the fast float kernels against the references on random inputs (so the
 * blocked, threaded, fused code computes the same thing), the edge cases of the contracts, the optimisers against
 * hand-computed steps.
 *
 * Tolerances. Finite differences: central, step 1e-5, in double: truncation ~h^2 and rounding ~1e-16/h, so a
 * relative error above 1e-6 means a wrong formula. Float kernels: inputs in [-1, 1], sums of at most a few hundred
 * terms of float products: each output within ~K * 6e-8 relative of the exact value (and the exp/tanh
 * approximations within ~2e-7), so 2e-4 relative to the sum of |terms| (we use 1 + |ref| as the scale) leaves
 * margin without hiding a wrong index or a missed term (those give errors of order 1). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/nn.h"
#include "magpie/rng.h"
#include "nn/nn_internal.h"
#include "test.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define FTOL 2e-4

static void fillf(mp_rng *r, float *x, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * mp_rng_uniform(r));
}
static double *to_d(const float *x, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}
static float *zf(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static double *zd(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

/* max over i of |f[i] - d[i]| / (1 + |d[i]|) */
static double max_err(const float *f, const double *d, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)f[i] - d[i]) / (1.0 + fabs(d[i]));
        if (!(e <= m)) m = e; /* NaN wins */
    }
    return m;
}

static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}
static int get_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ---- finite differences ---- */

/* Central differences of f at every x[i] (x is perturbed in place and restored) against analytic[i]:
 * |fd - a| <= 1e-6 * max(|fd|, |a|) + 1e-9. Returns the first failing index or n. */
typedef double (*objective)(void *ctx);
static size_t fd_check(double *x, size_t n, objective f, void *ctx, const double *analytic, double *worst) {
    const double h = 1e-5;
    *worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        double fp = f(ctx);
        x[i] = x0 - h;
        double fm = f(ctx);
        x[i] = x0;
        double fd = (fp - fm) / (2 * h), a = analytic[i];
        double err = fabs(fd - a) / (fmax(fabs(fd), fabs(a)) + 1e-3);
        if (err > *worst) *worst = err;
        if (fabs(fd - a) > 1e-6 * fmax(fabs(fd), fabs(a)) + 1e-9) return i;
    }
    return n;
}

static double dot_d(const double *a, const double *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---- gemm ---- */

MP_TEST(nn_gemm_transpositions_and_leading_dims) {
    mp_rng rng;
    mp_rng_seed(&rng, 11);
    /* shapes around the micro-tile (6 x 16), the K block (256) and the tile (120/264 x 128) */
    const size_t shapes[][3] = {{1, 1, 1}, {5, 17, 3}, {7, 33, 64}, {13, 130, 300}, {130, 20, 64}, {20, 33, 520},
                                {266, 40, 20}};
    const int paths[] = {MP_NN_GEMM_PLAIN, MP_NN_GEMM_AVX2}; /* mp_nn_gemm (AUTO) runs in the other tests */
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (size_t p = 0; p < 2; p++) {
                    size_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                    size_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
                    size_t lda = ac + 3, ldb = bc + 5, ldc = N + 2;
                    float *A = zf(ar * lda), *B = zf(br * ldb), *Cf = zf(M * ldc);
                    fillf(&rng, A, ar * lda, -1, 1);
                    fillf(&rng, B, br * ldb, -1, 1);
                    fillf(&rng, Cf, M * ldc, -1, 1);
                    double *Ad = to_d(A, ar * lda), *Bd = to_d(B, br * ldb), *Cd = to_d(Cf, M * ldc);
                    float beta = (s % 2) ? 0.0f : 0.5f;
                    if (beta == 0.0f)
                        for (size_t i = 0; i < M; i++) Cf[i * ldc] = NAN; /* beta 0 must not read C */
                    mp_nn_gemm_path(paths[p], ta, tb, M, N, K, 1.5f, A, lda, B, ldb, beta, Cf, ldc);
                    mp_nn_ref_gemm(ta, tb, M, N, K, 1.5, Ad, lda, Bd, ldb, beta, Cd, ldc);
                    double worst = 0.0;
                    int pad_ok = 1;
                    for (size_t i = 0; i < M; i++) {
                        double e = max_err(Cf + i * ldc, Cd + i * ldc, N);
                        if (e > worst) worst = e;
                        for (size_t j = N; j < ldc; j++) pad_ok &= Cf[i * ldc + j] == (float)Cd[i * ldc + j];
                    }
                    free(A), free(B), free(Cf), free(Ad), free(Bd), free(Cd);
                    CHECK_MSG(worst < 1e-5 * (1 + K / 64.0), "gemm %zux%zux%zu ta%d tb%d path %d: err %g", M, N, K, ta,
                              tb, paths[p], worst);
                    CHECK_MSG(pad_ok, "gemm wrote past N into the leading-dimension padding");
                }
}

MP_TEST(nn_gemm_same_bits_at_1_and_2_threads) {
    mp_rng rng;
    mp_rng_seed(&rng, 12);
    size_t M = 100, N = 300, K = 300;
    float *A = zf(M * K), *B = zf(N * K), *C1 = zf(M * N), *C2 = zf(M * N);
    fillf(&rng, A, M * K, -1, 1);
    fillf(&rng, B, N * K, -1, 1);
    int saved = get_threads();
    set_threads(1);
    mp_nn_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C1, N);
    set_threads(2);
    mp_nn_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C2, N);
    set_threads(saved);
    int same = memcmp(C1, C2, M * N * sizeof *C1) == 0;
    free(A), free(B), free(C1), free(C2);
    CHECK(same);
}

/* ---- linear ---- */

typedef struct lin_ctx {
    double *inp, *w, *b, *g, *out;
    size_t N, C, OC;
} lin_ctx;
static double lin_obj(void *p) {
    lin_ctx *c = p;
    mp_nn_ref_linear_fwd(c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
    return dot_d(c->out, c->g, c->N * c->OC);
}

MP_TEST(nn_linear_ref_gradients_by_finite_differences) {
    mp_rng rng;
    mp_rng_seed(&rng, 21);
    lin_ctx c = {0};
    c.N = 3, c.C = 4, c.OC = 5;
    c.inp = zd(c.N * c.C), c.w = zd(c.OC * c.C), c.b = zd(c.OC), c.g = zd(c.N * c.OC), c.out = zd(c.N * c.OC);
    for (size_t i = 0; i < c.N * c.C; i++) c.inp[i] = mp_rng_normal(&rng);
    for (size_t i = 0; i < c.OC * c.C; i++) c.w[i] = mp_rng_normal(&rng);
    for (size_t i = 0; i < c.OC; i++) c.b[i] = mp_rng_normal(&rng);
    for (size_t i = 0; i < c.N * c.OC; i++) c.g[i] = mp_rng_normal(&rng);
    double *di = zd(c.N * c.C), *dw = zd(c.OC * c.C), *db = zd(c.OC), worst;
    mp_nn_ref_linear_bwd(di, dw, db, c.g, c.inp, c.w, c.N, c.C, c.OC);
    size_t bad1 = fd_check(c.inp, c.N * c.C, lin_obj, &c, di, &worst);
    size_t bad2 = fd_check(c.w, c.OC * c.C, lin_obj, &c, dw, &worst);
    size_t bad3 = fd_check(c.b, c.OC, lin_obj, &c, db, &worst);
    int ok = bad1 == c.N * c.C && bad2 == c.OC * c.C && bad3 == c.OC;
    free(c.inp), free(c.w), free(c.b), free(c.g), free(c.out), free(di), free(dw), free(db);
    CHECK_MSG(ok, "linear fd mismatch at inp %zu w %zu b %zu", bad1, bad2, bad3);
}

MP_TEST(nn_linear_matches_ref) {
    mp_rng rng;
    mp_rng_seed(&rng, 22);
    size_t N = 37, C = 24, OC = 40;
    float *inp = zf(N * C), *w = zf(OC * C), *b = zf(OC), *g = zf(N * OC), *out = zf(N * OC);
    float *di = zf(N * C), *dw = zf(OC * C), *db = zf(OC);
    fillf(&rng, inp, N * C, -1, 1), fillf(&rng, w, OC * C, -1, 1), fillf(&rng, b, OC, -1, 1);
    fillf(&rng, g, N * OC, -1, 1);
    fillf(&rng, di, N * C, -1, 1), fillf(&rng, dw, OC * C, -1, 1), fillf(&rng, db, OC, -1, 1); /* += */
    double *inpd = to_d(inp, N * C), *wd = to_d(w, OC * C), *bd = to_d(b, OC), *gd = to_d(g, N * OC),
           *outd = zd(N * OC), *did = to_d(di, N * C), *dwd = to_d(dw, OC * C), *dbd = to_d(db, OC);
    mp_nn_linear_fwd(out, inp, w, b, N, C, OC);
    mp_nn_ref_linear_fwd(outd, inpd, wd, bd, N, C, OC);
    mp_nn_linear_bwd(di, dw, db, g, inp, w, N, C, OC);
    mp_nn_ref_linear_bwd(did, dwd, dbd, gd, inpd, wd, N, C, OC);
    double e[4] = {max_err(out, outd, N * OC), max_err(di, did, N * C), max_err(dw, dwd, OC * C),
                   max_err(db, dbd, OC)};
    /* no bias, and NULL gradients */
    mp_nn_linear_fwd(out, inp, w, NULL, N, C, OC);
    mp_nn_ref_linear_fwd(outd, inpd, wd, NULL, N, C, OC);
    double e4 = max_err(out, outd, N * OC);
    mp_nn_linear_bwd(NULL, NULL, db, g, inp, w, N, C, OC);
    mp_nn_ref_linear_bwd(NULL, NULL, dbd, gd, inpd, wd, N, C, OC);
    double e5 = max_err(db, dbd, OC);
    free(inp), free(w), free(b), free(g), free(out), free(di), free(dw), free(db);
    free(inpd), free(wd), free(bd), free(gd), free(outd), free(did), free(dwd), free(dbd);
    CHECK_MSG(e[0] < FTOL && e[1] < FTOL && e[2] < FTOL && e[3] < FTOL && e4 < FTOL && e5 < FTOL,
              "linear: %g %g %g %g %g %g", e[0], e[1], e[2], e[3], e4, e5);
}

/* ---- layer norm ---- */

typedef struct ln_ctx {
    double *inp, *w, *b, *g, *out, *mean, *rstd;
    size_t N, C;
} ln_ctx;
static double ln_obj(void *p) {
    ln_ctx *c = p;
    mp_nn_ref_layernorm_fwd(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C, 1e-5);
    return dot_d(c->out, c->g, c->N * c->C);
}

MP_TEST(nn_layernorm_ref_gradients_by_finite_differences) {
    mp_rng rng;
    mp_rng_seed(&rng, 31);
    ln_ctx c = {0};
    c.N = 3, c.C = 6;
    c.inp = zd(18), c.w = zd(6), c.b = zd(6), c.g = zd(18), c.out = zd(18), c.mean = zd(3), c.rstd = zd(3);
    for (size_t i = 0; i < 18; i++) c.inp[i] = mp_rng_normal(&rng), c.g[i] = mp_rng_normal(&rng);
    for (size_t i = 0; i < 6; i++) c.w[i] = 1 + 0.3 * mp_rng_normal(&rng), c.b[i] = mp_rng_normal(&rng);
    ln_obj(&c);
    double *di = zd(18), *dw = zd(6), *db = zd(6), worst;
    mp_nn_ref_layernorm_bwd(di, dw, db, c.g, c.inp, c.w, c.mean, c.rstd, c.N, c.C);
    size_t b1 = fd_check(c.inp, 18, ln_obj, &c, di, &worst);
    size_t b2 = fd_check(c.w, 6, ln_obj, &c, dw, &worst);
    size_t b3 = fd_check(c.b, 6, ln_obj, &c, db, &worst);
    free(c.inp), free(c.w), free(c.b), free(c.g), free(c.out), free(c.mean), free(c.rstd), free(di), free(dw),
        free(db);
    CHECK_MSG(b1 == 18 && b2 == 6 && b3 == 6, "layernorm fd mismatch at %zu %zu %zu", b1, b2, b3);
}

MP_TEST(nn_layernorm_matches_ref) {
    mp_rng rng;
    mp_rng_seed(&rng, 32);
    size_t N = 300, C = 40; /* N*C above the threading threshold */
    float *inp = zf(N * C), *w = zf(C), *b = zf(C), *g = zf(N * C), *out = zf(N * C), *m = zf(N), *r = zf(N);
    float *di = zf(N * C), *dw = zf(C), *db = zf(C);
    fillf(&rng, inp, N * C, -2, 3), fillf(&rng, w, C, 0.5, 1.5), fillf(&rng, b, C, -1, 1);
    fillf(&rng, g, N * C, -1, 1);
    double *inpd = to_d(inp, N * C), *wd = to_d(w, C), *bd = to_d(b, C), *gd = to_d(g, N * C), *outd = zd(N * C),
           *md = zd(N), *rd = zd(N), *did = zd(N * C), *dwd = zd(C), *dbd = zd(C);
    mp_nn_layernorm_fwd(out, m, r, inp, w, b, N, C, 1e-5f);
    mp_nn_ref_layernorm_fwd(outd, md, rd, inpd, wd, bd, N, C, 1e-5);
    mp_nn_layernorm_bwd(di, dw, db, g, inp, w, m, r, N, C);
    mp_nn_ref_layernorm_bwd(did, dwd, dbd, gd, inpd, wd, md, rd, N, C);
    double e[6] = {max_err(out, outd, N * C), max_err(m, md, N), max_err(r, rd, N), max_err(di, did, N * C),
                   max_err(dw, dwd, C) / N, max_err(db, dbd, C) / N}; /* the column sums run over N rows */
    free(inp), free(w), free(b), free(g), free(out), free(m), free(r), free(di), free(dw), free(db);
    free(inpd), free(wd), free(bd), free(gd), free(outd), free(md), free(rd), free(did), free(dwd), free(dbd);
    for (int i = 0; i < 6; i++) CHECK_MSG(e[i] < FTOL, "layernorm output %d: err %g", i, e[i]);
}

/* ---- GELU ---- */

typedef struct gelu_ctx {
    double *inp, *g, *out;
    size_t n;
} gelu_ctx;
static double gelu_obj(void *p) {
    gelu_ctx *c = p;
    mp_nn_ref_gelu_fwd(c->out, c->inp, c->n);
    return dot_d(c->out, c->g, c->n);
}

MP_TEST(nn_gelu_ref_fd_and_fast_matches_ref) {
    mp_rng rng;
    mp_rng_seed(&rng, 41);
    gelu_ctx c = {zd(20), zd(20), zd(20), 20};
    for (size_t i = 0; i < 20; i++) c.inp[i] = 4 * mp_rng_normal(&rng), c.g[i] = mp_rng_normal(&rng);
    double *di = zd(20), worst;
    mp_nn_ref_gelu_bwd(di, c.inp, c.g, 20);
    size_t bad = fd_check(c.inp, 20, gelu_obj, &c, di, &worst);
    free(c.inp), free(c.g), free(c.out), free(di);
    CHECK_MSG(bad == 20, "gelu fd mismatch at %zu", bad);

    size_t n = 40003; /* threaded, with a vector tail */
    float *x = zf(n), *g = zf(n), *y = zf(n), *dx = zf(n);
    fillf(&rng, x, n, -9, 9), fillf(&rng, g, n, -1, 1);
    double *xd = to_d(x, n), *gd = to_d(g, n), *yd = zd(n), *dxd = zd(n);
    mp_nn_gelu_fwd(y, x, n);
    mp_nn_gelu_bwd(dx, x, g, n);
    mp_nn_ref_gelu_fwd(yd, xd, n);
    mp_nn_ref_gelu_bwd(dxd, xd, gd, n);
    double e1 = max_err(y, yd, n), e2 = max_err(dx, dxd, n);
    mp_nn_gelu_fwd(x, x, n); /* in place */
    double e3 = max_err(x, yd, n);
    free(x), free(g), free(y), free(dx), free(xd), free(gd), free(yd), free(dxd);
    CHECK_MSG(e1 < 1e-5 && e2 < 1e-5 && e3 < 1e-5, "gelu: fwd %g bwd %g in place %g", e1, e2, e3);
}

/* ---- attention ---- */

typedef struct att_ctx {
    double *qkv, *g, *out, *att;
    const uint8_t *valid;
    size_t B, T, C, NH;
} att_ctx;
static double att_obj(void *p) {
    att_ctx *c = p;
    mp_nn_ref_attention_fwd(c->out, c->att, c->qkv, c->valid, c->B, c->T, c->C, c->NH);
    return dot_d(c->out, c->g, c->B * c->T * c->C);
}

MP_TEST(nn_attention_ref_gradients_by_finite_differences) {
    mp_rng rng;
    mp_rng_seed(&rng, 51);
    const uint8_t valid[2 * 4] = {0, 1, 1, 1, 1, 0, 1, 1}; /* a padded start, and a hole */
    att_ctx c = {0};
    c.B = 2, c.T = 4, c.C = 4, c.NH = 2, c.valid = valid;
    size_t nq = c.B * c.T * 3 * c.C, no = c.B * c.T * c.C;
    c.qkv = zd(nq), c.g = zd(no), c.out = zd(no), c.att = zd(c.B * c.NH * c.T * c.T);
    for (size_t i = 0; i < nq; i++) c.qkv[i] = mp_rng_normal(&rng);
    for (size_t i = 0; i < no; i++) c.g[i] = mp_rng_normal(&rng);
    att_obj(&c);
    double *dq = zd(nq), worst;
    mp_nn_ref_attention_bwd(dq, c.g, c.qkv, c.att, c.B, c.T, c.C, c.NH);
    size_t bad = fd_check(c.qkv, nq, att_obj, &c, dq, &worst);
    free(c.qkv), free(c.g), free(c.out), free(c.att), free(dq);
    CHECK_MSG(bad == nq, "attention fd mismatch at %zu", bad);
}

MP_TEST(nn_attention_matches_ref_and_no_valid_key) {
    mp_rng rng;
    mp_rng_seed(&rng, 52);
    for (size_t NH = 1; NH <= 2; NH++) {
        /* T = 9: the direct path; T = 40: the products (more than 16 positions from the first valid one) */
        size_t B = 5, T = NH == 1 ? 9 : 40, C = 32, nq = B * T * 3 * C, no = B * T * C, na = B * NH * T * T;
        uint8_t *valid = calloc(B * T, 1);
        for (size_t b = 0; b < B; b++)
            for (size_t tt = 0; tt < T; tt++) valid[b * T + tt] = tt >= b; /* left padding; row 0 all valid */
        valid[4 * T + 6] = 0;                                         /* and a hole */
        float *qkv = zf(nq), *out = zf(no), *att = zf(na), *g = zf(no), *dq = zf(nq), *datt = zf(na);
        fillf(&rng, qkv, nq, -1, 1), fillf(&rng, g, no, -1, 1), fillf(&rng, dq, nq, -1, 1);
        fillf(&rng, out, no, 5, 6); /* must be overwritten, also with 0 where no key is valid */
        double *qd = to_d(qkv, nq), *gd = to_d(g, no), *od = zd(no), *ad = zd(na), *dqd = to_d(dq, nq);
        mp_nn_attention_fwd(out, att, qkv, valid, B, T, C, NH);
        mp_nn_attention_bwd(dq, datt, g, qkv, att, B, T, C, NH);
        mp_nn_ref_attention_fwd(od, ad, qd, valid, B, T, C, NH);
        mp_nn_ref_attention_bwd(dqd, gd, qd, ad, B, T, C, NH);
        double e1 = max_err(out, od, no), e2 = max_err(att, ad, na), e3 = max_err(dq, dqd, nq);
        /* query t = 0 of sequence 3 has no valid key (positions 0..2 are padding): output and weights 0 */
        int zero = 1;
        for (size_t i = 0; i < C; i++) zero &= out[(3 * T + 0) * C + i] == 0.0f;
        for (size_t h = 0; h < NH; h++)
            for (size_t s = 0; s < T; s++) zero &= att[((3 * NH + h) * T + 2) * T + s] == 0.0f;
        free(valid), free(qkv), free(out), free(att), free(g), free(dq), free(datt), free(qd), free(gd), free(od),
            free(ad), free(dqd);
        CHECK_MSG(e1 < FTOL && e2 < FTOL && e3 < FTOL, "attention NH=%zu: out %g att %g dqkv %g", NH, e1, e2, e3);
        CHECK_MSG(zero, "a query with no valid key must give out 0 and att 0");
    }
}

/* ---- softmax cross-entropy ---- */

typedef struct sx_ctx {
    double *h, *table, *logq;
    const uint32_t *targets, *neg;
    size_t N, C, V, S;
} sx_ctx;
static double sx_obj(void *p) {
    sx_ctx *c = p;
    double loss = 0.0;
    size_t cnt = 0;
    mp_nn_ref_softmax_xent(&loss, &cnt, NULL, NULL, c->h, c->table, c->targets, c->N, c->C, c->V, 1.0);
    return 0.7 * loss;
}
static double ss_obj(void *p) {
    sx_ctx *c = p;
    double loss = 0.0;
    size_t cnt = 0;
    mp_nn_ref_sampled_xent(&loss, &cnt, NULL, NULL, c->h, c->table, c->targets, c->neg, c->S, c->logq, c->N, c->C,
                           1.0);
    return 0.7 * loss;
}

MP_TEST(nn_xent_ref_gradients_by_finite_differences) {
    mp_rng rng;
    mp_rng_seed(&rng, 61);
    const uint32_t targets[4] = {2, MP_NN_PAD, 0, 4};
    const uint32_t neg[4] = {1, 4, 3, 1}; /* row 3's target 4 is an accidental hit; 1 is drawn twice */
    sx_ctx c = {0};
    c.N = 4, c.C = 3, c.V = 6, c.S = 4, c.targets = targets, c.neg = neg;
    c.h = zd(12), c.table = zd(18), c.logq = zd(6);
    for (size_t i = 0; i < 12; i++) c.h[i] = mp_rng_normal(&rng);
    for (size_t i = 0; i < 18; i++) c.table[i] = mp_rng_normal(&rng);
    for (size_t i = 0; i < 6; i++) c.logq[i] = log(0.05 + mp_rng_uniform(&rng));
    double *dh = zd(12), *dt = zd(18), loss = 0, worst;
    size_t cnt = 0;
    mp_nn_ref_softmax_xent(&loss, &cnt, dh, dt, c.h, c.table, targets, c.N, c.C, c.V, 0.7);
    size_t b1 = fd_check(c.h, 12, sx_obj, &c, dh, &worst), b2 = fd_check(c.table, 18, sx_obj, &c, dt, &worst);
    int rows0 = dh[3] == 0.0 && dh[4] == 0.0 && dh[5] == 0.0 && cnt == 3;
    memset(dh, 0, 12 * sizeof *dh), memset(dt, 0, 18 * sizeof *dt), cnt = 0;
    mp_nn_ref_sampled_xent(&loss, &cnt, dh, dt, c.h, c.table, targets, neg, c.S, c.logq, c.N, c.C, 0.7);
    size_t b3 = fd_check(c.h, 12, ss_obj, &c, dh, &worst), b4 = fd_check(c.table, 18, ss_obj, &c, dt, &worst);
    int untouched = dt[5 * 3] == 0.0 && dt[5 * 3 + 1] == 0.0; /* row 5 is no candidate */
    free(c.h), free(c.table), free(c.logq), free(dh), free(dt);
    CHECK_MSG(b1 == 12 && b2 == 18, "softmax_xent fd mismatch at h %zu table %zu", b1, b2);
    CHECK_MSG(rows0 && cnt == 3, "a PAD target must be skipped");
    CHECK_MSG(b3 == 12 && b4 == 18 && untouched, "sampled_xent fd mismatch at h %zu table %zu", b3, b4);
}

MP_TEST(nn_softmax_xent_matches_ref_for_any_scratch) {
    mp_rng rng;
    mp_rng_seed(&rng, 62);
    size_t N = 23, C = 16, V = 301;
    float *h = zf(N * C), *table = zf(V * C);
    fillf(&rng, h, N * C, -1, 1), fillf(&rng, table, V * C, -1, 1);
    uint32_t targets[23];
    for (size_t n = 0; n < N; n++) targets[n] = n % 5 == 1 ? MP_NN_PAD : (uint32_t)(mp_rng_uniform(&rng) * V);
    targets[3] = (uint32_t)V - 1;
    double *hd = to_d(h, N * C), *td = to_d(table, V * C), *dhd = zd(N * C), *dtd = zd(V * C), lref = 0;
    size_t cref = 0;
    float gs = 1.0f / 19;
    mp_nn_ref_softmax_xent(&lref, &cref, dhd, dtd, hd, td, targets, N, C, V, gs);
    const size_t scratch_rows[] = {1, 2, 5, 40}; /* 1: the row-at-a-time path; 2: blocks of one row; 40: one block */
    float *dh1 = NULL, *dt1 = NULL;
    double l1 = 0;
    for (size_t k = 0; k < 4; k++) {
        float *scratch = zf(scratch_rows[k] * V), *dh = zf(N * C), *dt = zf(V * C);
        double loss = 0;
        size_t cnt = 0;
        mp_nn_softmax_xent(&loss, &cnt, dh, dt, h, table, targets, N, C, V, gs, scratch, scratch_rows[k]);
        double e1 = fabs(loss - lref) / lref, e2 = max_err(dh, dhd, N * C), e3 = max_err(dt, dtd, V * C);
        double d1 = 0, d2 = 0;
        if (k == 0) {
            dh1 = dh, dt1 = dt, l1 = loss;
        } else {
            for (size_t i = 0; i < N * C; i++) d1 = fmax(d1, fabs(dh[i] - dh1[i]));
            for (size_t i = 0; i < V * C; i++) d2 = fmax(d2, fabs(dt[i] - dt1[i]));
            d1 = fmax(d1, fabs(loss - l1) / l1);
            free(dh), free(dt);
        }
        free(scratch);
        if (!(cnt == cref && e1 < 1e-5 && e2 < FTOL && e3 < FTOL && d1 < 1e-6 && d2 < 1e-6)) {
            free(dh1), free(dt1), free(h), free(table), free(hd), free(td), free(dhd), free(dtd);
            CHECK_MSG(0, "softmax_xent scratch_rows %zu: count %zu/%zu loss %g dh %g dtable %g vs rows=1: %g %g",
                      scratch_rows[k], cnt, cref, e1, e2, e3, d1, d2);
        }
    }
    /* loss only (no gradients) gives the same loss */
    float *scratch = zf(8 * V);
    double loss = 0;
    size_t cnt = 0;
    mp_nn_softmax_xent(&loss, &cnt, NULL, NULL, h, table, targets, N, C, V, gs, scratch, 8);
    free(scratch), free(dh1), free(dt1), free(h), free(table), free(hd), free(td), free(dhd), free(dtd);
    CHECK_MSG(fabs(loss - lref) / lref < 1e-5 && cnt == cref, "loss-only softmax_xent %g vs %g", loss, lref);
}

MP_TEST(nn_sampled_xent_matches_ref_with_accidental_hit) {
    mp_rng rng;
    mp_rng_seed(&rng, 63);
    size_t N = 30, C = 24, V = 50, S = 12;
    float *h = zf(N * C), *table = zf(V * C), *logq = zf(V), *scratch = zf(N * (S + 1));
    fillf(&rng, h, N * C, -1, 1), fillf(&rng, table, V * C, -1, 1), fillf(&rng, logq, V, -6, -2);
    uint32_t targets[30], neg[12];
    for (size_t j = 0; j < S; j++) neg[j] = (uint32_t)(mp_rng_uniform(&rng) * V);
    neg[5] = neg[2]; /* a repeated negative */
    for (size_t n = 0; n < N; n++) targets[n] = n % 7 == 3 ? MP_NN_PAD : (uint32_t)(mp_rng_uniform(&rng) * V);
    targets[0] = neg[4]; /* accidental hits */
    targets[1] = neg[2];
    double *hd = to_d(h, N * C), *td = to_d(table, V * C), *qd = to_d(logq, V), *dhd = zd(N * C), *dtd = zd(V * C);
    double lref = 0, loss = 0;
    size_t cref = 0, cnt = 0;
    mp_nn_ref_sampled_xent(&lref, &cref, dhd, dtd, hd, td, targets, neg, S, qd, N, C, 0.1);
    float *dh = zf(N * C), *dt = zf(V * C);
    mp_nn_rows rows;
    CHECK_EQ(mp_nn_rows_init(&rows, V), MP_OK);
    mp_nn_sampled_xent(&loss, &cnt, dh, dt, &rows, h, table, targets, neg, S, logq, N, C, 0.1f, scratch);
    double e1 = fabs(loss - lref) / lref, e2 = max_err(dh, dhd, N * C), e3 = max_err(dt, dtd, V * C);
    /* the listed rows are exactly the targets and negatives, and rows not listed have no gradient */
    int rows_ok = 1;
    for (size_t v = 0; v < V; v++) {
        int cand = 0;
        for (size_t n = 0; n < N; n++) cand |= targets[n] == v;
        for (size_t j = 0; j < S; j++) cand |= neg[j] == v;
        rows_ok &= rows.mark[v] == cand;
        if (!cand)
            for (size_t c = 0; c < C; c++) rows_ok &= dt[v * C + c] == 0.0f;
    }
    mp_nn_rows_free(&rows);
    free(h), free(table), free(logq), free(scratch), free(hd), free(td), free(qd), free(dhd), free(dtd), free(dh),
        free(dt);
    CHECK_MSG(cnt == cref && e1 < 1e-5 && e2 < FTOL && e3 < FTOL, "sampled_xent: loss %g dh %g dtable %g", e1, e2,
              e3);
    CHECK(rows_ok);
}

MP_TEST(nn_bce_matches_ref_and_fd) {
    const float x[6] = {-30, -2, -0.1f, 0, 1.5f, 40}, y[6] = {0, 1, 0.3f, 1, 0, 1}, w[6] = {1, 2, 0.5f, 1, 1, 3};
    double xd[6], yd[6], wd[6], dref[6] = {0}, lref = 0, loss = 0;
    float dl[6] = {0};
    for (int i = 0; i < 6; i++) xd[i] = x[i], yd[i] = y[i], wd[i] = w[i];
    mp_nn_ref_bce(&lref, dref, xd, yd, wd, 6, 0.5);
    mp_nn_bce(&loss, dl, x, y, w, 6, 0.5f);
    CHECK_NEAR(loss, lref, 1e-6 * lref);
    for (int i = 0; i < 6; i++) CHECK_NEAR(dl[i], dref[i], 1e-6);
    /* the reference's gradient against finite differences of its loss */
    for (int i = 0; i < 6; i++) {
        double xp[6], xm[6], lp = 0, lm = 0;
        memcpy(xp, xd, sizeof xp), memcpy(xm, xd, sizeof xm);
        xp[i] += 1e-5, xm[i] -= 1e-5;
        mp_nn_ref_bce(&lp, NULL, xp, yd, wd, 6, 0.5);
        mp_nn_ref_bce(&lm, NULL, xm, yd, wd, 6, 0.5);
        CHECK_NEAR(0.5 * (lp - lm) / 2e-5, dref[i], 1e-7 + 1e-6 * fabs(dref[i]));
    }
    /* stable at |x| = 40: loss finite; NULL weights are 1 */
    double l2 = 0;
    mp_nn_bce(&l2, NULL, x, y, NULL, 6, 1.0f);
    CHECK(isfinite(l2) && l2 > 0);
}

/* ---- embeddings, positions, dropout, residual ---- */

MP_TEST(nn_embedding_and_position_with_padding) {
    mp_rng rng;
    mp_rng_seed(&rng, 71);
    size_t N = 700, C = 64, V = 10; /* N*C above the threading threshold, ids repeat */
    float *table = zf(V * C), *out = zf(N * C), *dout = zf(N * C), *dt = zf(V * C);
    uint32_t *idx = malloc(N * sizeof *idx);
    fillf(&rng, table, V * C, -1, 1), fillf(&rng, dout, N * C, -1, 1), fillf(&rng, out, N * C, -1, 1);
    for (size_t n = 0; n < N; n++) idx[n] = n % 9 == 4 ? MP_NN_PAD : (uint32_t)(mp_rng_uniform(&rng) * (V - 1));
    mp_nn_embedding_fwd(out, idx, table, N, C, 2.0f, 0);
    int ok = 1;
    for (size_t n = 0; n < N; n++)
        for (size_t c = 0; c < C; c++)
            ok &= out[n * C + c] == (idx[n] == MP_NN_PAD ? 0.0f : 2.0f * table[idx[n] * C + c]);
    CHECK_MSG(ok, "embedding_fwd");
    mp_nn_embedding_fwd(out, idx, table, N, C, 1.0f, 1);
    for (size_t n = 0; n < N; n++)
        for (size_t c = 0; c < C; c++)
            ok &= out[n * C + c] == (idx[n] == MP_NN_PAD ? 0.0f : 2.0f * table[idx[n] * C + c] + table[idx[n] * C + c]);
    CHECK_MSG(ok, "embedding_fwd accumulate");
    mp_nn_rows rows;
    CHECK_EQ(mp_nn_rows_init(&rows, V), MP_OK);
    int saved = get_threads();
    set_threads(2);
    mp_nn_embedding_bwd(dt, &rows, dout, idx, N, C, 0.5f);
    set_threads(saved);
    double *want = zd(V * C);
    for (size_t n = 0; n < N; n++)
        if (idx[n] != MP_NN_PAD)
            for (size_t c = 0; c < C; c++) want[idx[n] * C + c] += 0.5 * dout[n * C + c];
    double e = max_err(dt, want, V * C);
    int listed = rows.n == V - 1 && rows.mark[V - 1] == 0 && rows.list[0] == idx[0];
    mp_nn_rows_clear(&rows);
    listed &= rows.n == 0 && rows.mark[idx[0]] == 0;
    mp_nn_rows_free(&rows);
    /* positions */
    size_t B = 20, T = 35;
    uint8_t *valid = malloc(B * T);
    for (size_t i = 0; i < B * T; i++) valid[i] = mp_rng_uniform(&rng) < 0.7;
    float *wpe = zf(T * C), *x = zf(B * T * C), *x0 = zf(B * T * C), *dwpe = zf(T * C);
    fillf(&rng, wpe, T * C, -1, 1), fillf(&rng, x, B * T * C, -1, 1);
    memcpy(x0, x, B * T * C * sizeof *x);
    mp_nn_position_fwd(x, wpe, valid, B, T, C);
    int pos_ok = 1;
    for (size_t b = 0; b < B; b++)
        for (size_t tt = 0; tt < T; tt++)
            for (size_t c = 0; c < C; c++)
                pos_ok &= x[(b * T + tt) * C + c] == x0[(b * T + tt) * C + c] + (valid[b * T + tt] ? wpe[tt * C + c] : 0);
    mp_nn_position_bwd(dwpe, x0, valid, B, T, C);
    double *wd = zd(T * C);
    for (size_t b = 0; b < B; b++)
        for (size_t tt = 0; tt < T; tt++)
            if (valid[b * T + tt])
                for (size_t c = 0; c < C; c++) wd[tt * C + c] += x0[(b * T + tt) * C + c];
    double e2 = max_err(dwpe, wd, T * C);
    free(table), free(out), free(dout), free(dt), free(idx), free(want), free(valid), free(wpe), free(x), free(x0),
        free(dwpe), free(wd);
    CHECK_MSG(e < 1e-5, "embedding_bwd err %g", e);
    CHECK_MSG(listed, "rows: the used ids listed in first-touch order, PAD and unused not, clear unmarks");
    CHECK_MSG(pos_ok && e2 < 1e-5, "position fwd %d bwd err %g", pos_ok, e2);
}

MP_TEST(nn_dropout_mask_is_seeded_and_thread_independent) {
    size_t n = 100003;
    float *x = zf(n), *y1 = zf(n), *y2 = zf(n), *dx = zf(n);
    uint8_t *m1 = malloc(n), *m2 = malloc(n);
    for (size_t i = 0; i < n; i++) x[i] = (float)i * 1e-3f - 7.0f;
    int saved = get_threads();
    set_threads(1);
    mp_nn_dropout_fwd(y1, m1, x, n, 0.25f, 99);
    set_threads(2);
    mp_nn_dropout_fwd(y2, m2, x, n, 0.25f, 99);
    set_threads(saved);
    int same = memcmp(m1, m2, n) == 0 && memcmp(y1, y2, n * sizeof *y1) == 0;
    size_t kept = 0;
    int vals = 1;
    for (size_t i = 0; i < n; i++) {
        kept += m1[i];
        vals &= m1[i] == (mp_nn_dropout_u(99, i) >= 0.25f);
        vals &= y1[i] == (m1[i] ? x[i] * (1.0f / 0.75f) : 0.0f);
    }
    double frac = (double)kept / n; /* binomial sd ~ 0.0014 */
    mp_nn_dropout_fwd(y2, m2, x, n, 0.25f, 100);
    int differs = memcmp(m1, m2, n) != 0;
    mp_nn_dropout_bwd(dx, x, m1, n, 0.25f);
    int bwd = 1;
    for (size_t i = 0; i < n; i++) bwd &= dx[i] == (m1[i] ? x[i] * (1.0f / 0.75f) : 0.0f);
    /* p = 0 copies and keeps all, also in place */
    mp_nn_dropout_fwd(y2, m2, x, n, 0.0f, 5);
    int p0 = memcmp(y2, x, n * sizeof *x) == 0;
    for (size_t i = 0; i < n; i++) p0 &= m2[i] == 1;
    memcpy(y1, x, n * sizeof *x);
    mp_nn_dropout_fwd(y1, m2, y1, n, 0.0f, 5);
    p0 &= memcmp(y1, x, n * sizeof *x) == 0;
    free(x), free(y1), free(y2), free(dx), free(m1), free(m2);
    CHECK_MSG(same, "dropout differs between 1 and 2 threads");
    CHECK_MSG(vals, "dropout: keep iff hash >= p, kept values scaled by 1/(1-p)");
    CHECK_MSG(fabs(frac - 0.75) < 0.01, "kept fraction %g", frac);
    CHECK_MSG(differs && bwd && p0, "seed changes the mask %d, bwd %d, p=0 %d", differs, bwd, p0);
}

MP_TEST(nn_residual) {
    float a[5] = {1, 2, 3, 4, 5}, b[5] = {0.5f, -1, 2, 0, 1}, out[5], da[5] = {1, 1, 1, 1, 1}, db[5] = {0};
    mp_nn_residual_fwd(out, a, b, 5);
    for (int i = 0; i < 5; i++) CHECK(out[i] == a[i] + b[i]);
    mp_nn_residual_fwd(a, a, b, 5); /* aliasing */
    CHECK(a[2] == 5.0f);
    mp_nn_residual_bwd(da, db, b, 5);
    for (int i = 0; i < 5; i++) CHECK(da[i] == 1 + b[i] && db[i] == b[i]);
}

MP_TEST(nn_softmax_and_attention_same_bits_at_1_and_2_threads) {
    mp_rng rng;
    mp_rng_seed(&rng, 81);
    size_t N = 64, C = 32, V = 700, B = 16, T = 20;
    float *h = zf(N * C), *table = zf(V * C), *scratch = zf(32 * V);
    float *dh[2] = {zf(N * C), zf(N * C)}, *dt[2] = {zf(V * C), zf(V * C)};
    fillf(&rng, h, N * C, -1, 1), fillf(&rng, table, V * C, -1, 1);
    uint32_t targets[64];
    for (size_t n = 0; n < N; n++) targets[n] = n % 3 ? (uint32_t)(n * 7 % V) : MP_NN_PAD;
    float *qkv = zf(B * T * 3 * C), *out[2] = {zf(B * T * C), zf(B * T * C)}, *att = zf(B * T * T * 2),
          *datt = zf(B * T * T * 2), *g = zf(B * T * C), *dq[2] = {zf(B * T * 3 * C), zf(B * T * 3 * C)};
    uint8_t *valid = malloc(B * T);
    for (size_t i = 0; i < B * T; i++) valid[i] = (i % T) >= (i / T) % 5;
    fillf(&rng, qkv, B * T * 3 * C, -1, 1), fillf(&rng, g, B * T * C, -1, 1);
    double loss[2] = {0, 0};
    size_t cnt[2] = {0, 0};
    int saved = get_threads();
    for (int k = 0; k < 2; k++) {
        set_threads(k + 1);
        mp_nn_softmax_xent(&loss[k], &cnt[k], dh[k], dt[k], h, table, targets, N, C, V, 0.01f, scratch, 32);
        mp_nn_attention_fwd(out[k], att, qkv, valid, B, T, C, 2);
        mp_nn_attention_bwd(dq[k], datt, g, qkv, att, B, T, C, 2);
    }
    set_threads(saved);
    int same = loss[0] == loss[1] && memcmp(dh[0], dh[1], N * C * 4) == 0 && memcmp(dt[0], dt[1], V * C * 4) == 0 &&
               memcmp(out[0], out[1], B * T * C * 4) == 0 && memcmp(dq[0], dq[1], B * T * 3 * C * 4) == 0;
    free(h), free(table), free(scratch), free(dh[0]), free(dh[1]), free(dt[0]), free(dt[1]), free(qkv), free(out[0]),
        free(out[1]), free(att), free(datt), free(g), free(dq[0]), free(dq[1]), free(valid);
    CHECK(same);
}

/* ---- optimisers and schedules ---- */

MP_TEST(nn_adamw_two_steps_by_hand) {
    /* lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.01; p = 1, gradients 0.5 then -0.2.
     * step 1: m = 0.05, v = 0.00025, m^ = 0.5, v^ = 0.25: p = 1 - 0.1 * 0.5/(0.5 + 1e-8) - 0.1 * 0.01 * 1
     *         = 0.899000002
     * step 2: m = 0.025, v = 0.00028975, m^ = 0.025/0.19, v^ = 0.00028975/0.001999:
     *         p = 0.899000002 - 0.1 * 0.1315789/0.3807197 - 0.001 * 0.899000002 = 0.8635404181 */
    mp_nn_adamw o = {0.1f, 0.9f, 0.999f, 1e-8f, 0.01f};
    float p = 1.0f, m = 0.0f, v = 0.0f, g1 = 0.5f, g2 = -0.2f;
    mp_nn_adamw_update(&o, 1, &p, &g1, &m, &v, 1);
    CHECK_NEAR(p, 0.899000002, 1e-6);
    CHECK_NEAR(m, 0.05, 1e-7);
    CHECK_NEAR(v, 0.00025, 1e-8); /* 1 - 0.999f is 1.3e-5 off in float */
    mp_nn_adamw_update(&o, 2, &p, &g2, &m, &v, 1);
    CHECK_NEAR(p, 0.8635404181, 1e-6);
    CHECK_NEAR(m, 0.025, 1e-7);
    CHECK_NEAR(v, 0.00028975, 1e-8);
}

MP_TEST(nn_adamw_rows_equals_dense_when_all_rows_listed) {
    mp_rng rng;
    mp_rng_seed(&rng, 91);
    size_t R = 300, C = 130; /* threaded */
    size_t n = R * C;
    float *p1 = zf(n), *p2 = zf(n), *g = zf(n), *m1 = zf(n), *m2 = zf(n), *v1 = zf(n), *v2 = zf(n);
    fillf(&rng, p1, n, -1, 1), fillf(&rng, g, n, -1, 1);
    memcpy(p2, p1, n * sizeof *p1);
    mp_nn_adamw o = {1e-3f, 0.9f, 0.98f, 1e-8f, 0.1f};
    mp_nn_rows rows;
    CHECK_EQ(mp_nn_rows_init(&rows, R), MP_OK);
    mp_nn_rows_all(&rows);
    int ok = rows.n == R;
    for (uint64_t step = 1; step <= 3; step++) {
        mp_nn_adamw_update(&o, step, p1, g, m1, v1, n);
        mp_nn_adamw_update_rows(&o, step, p2, g, m2, v2, &rows, C);
    }
    ok &= memcmp(p1, p2, n * 4) == 0 && memcmp(m1, m2, n * 4) == 0 && memcmp(v1, v2, n * 4) == 0;
    /* a sparse step moves only the listed rows */
    mp_nn_rows_clear(&rows);
    mp_nn_rows_add(&rows, 7);
    mp_nn_rows_add(&rows, 2);
    mp_nn_rows_add(&rows, 7);
    ok &= rows.n == 2 && rows.list[0] == 7 && rows.list[1] == 2;
    memcpy(p1, p2, n * 4);
    mp_nn_adamw_update_rows(&o, 4, p2, g, m2, v2, &rows, C);
    for (size_t r = 0; r < R; r++) {
        int moved = memcmp(p1 + r * C, p2 + r * C, C * 4) != 0;
        ok &= moved == (r == 7 || r == 2);
    }
    /* norms and scaling, dense and rows */
    double sq = mp_nn_sqnorm(g, n), want = 0, sqr = mp_nn_sqnorm_rows(g, &rows, C), wantr = 0;
    for (size_t i = 0; i < n; i++) want += (double)g[i] * g[i];
    for (size_t c = 0; c < C; c++) wantr += (double)g[7 * C + c] * g[7 * C + c] + (double)g[2 * C + c] * g[2 * C + c];
    ok &= fabs(sq - want) < 1e-9 * want && fabs(sqr - wantr) < 1e-9 * wantr;
    float before = g[2 * C], other = g[3 * C];
    mp_nn_scale_rows(g, &rows, C, 0.5f);
    ok &= g[2 * C] == 0.5f * before && g[3 * C] == other;
    mp_nn_scale(g, n, 2.0f);
    ok &= g[2 * C] == before && g[3 * C] == 2.0f * other;
    mp_nn_rows_free(&rows);
    free(p1), free(p2), free(g), free(m1), free(m2), free(v1), free(v2);
    CHECK(ok);
}

MP_TEST(nn_sgd_clip_and_lr_schedules) {
    /* SGD with momentum 0.9, wd 0.1, lr 0.5: mom = g; p = 1 - 0.5 (0.2 + 0.1) = 0.85; then mom = 0.9*0.2 + 0.2 */
    float p = 1.0f, g = 0.2f, mom = 0.0f;
    mp_nn_sgd_update(0.5f, 0.9f, 0.1f, &p, &g, &mom, 1);
    CHECK_NEAR(p, 0.85, 1e-7);
    mp_nn_sgd_update(0.5f, 0.9f, 0.1f, &p, &g, &mom, 1);
    CHECK_NEAR(mom, 0.38, 1e-7);
    CHECK_NEAR(p, 0.85 - 0.5 * (0.38 + 0.085), 1e-6);
    float q = 1.0f;
    mp_nn_sgd_update(0.5f, 0.0f, 0.0f, &q, &g, NULL, 1); /* no momentum buffer */
    CHECK_NEAR(q, 0.9, 1e-7);
    /* clip: norm 5 to 2 -> 0.4; below the limit, no limit, zero gradient -> 1 */
    CHECK_NEAR(mp_nn_clip_factor(25.0, 2.0f), 0.4, 1e-7);
    CHECK(mp_nn_clip_factor(1.0, 2.0f) == 1.0f);
    CHECK(mp_nn_clip_factor(25.0, 0.0f) == 1.0f);
    CHECK(mp_nn_clip_factor(0.0, 1.0f) == 1.0f);
    /* warm-up 4 of 14 steps: base/4 at 0, base at 3; then decays from base at step 4 to min_ratio base at 13 */
    CHECK_NEAR(mp_nn_lr_at(1.0f, 0, 4, 14, MP_NN_DECAY_COSINE, 0.1f), 0.25, 1e-7);
    CHECK_NEAR(mp_nn_lr_at(1.0f, 1, 4, 14, MP_NN_DECAY_COSINE, 0.1f), 0.5, 1e-7);
    CHECK_NEAR(mp_nn_lr_at(1.0f, 3, 4, 14, MP_NN_DECAY_COSINE, 0.1f), 1.0, 1e-7);
    CHECK_NEAR(mp_nn_lr_at(1.0f, 4, 4, 14, MP_NN_DECAY_COSINE, 0.1f), 1.0, 1e-7);
    CHECK_NEAR(mp_nn_lr_at(1.0f, 13, 4, 14, MP_NN_DECAY_COSINE, 0.1f), 0.1, 1e-7);
    CHECK_NEAR(mp_nn_lr_at(1.0f, 13, 4, 14, MP_NN_DECAY_LINEAR, 0.1f), 0.1, 1e-7);
    /* midpoint (f = 0.5 at step 8.5): linear is exact at step 7 (f = 1/3): 1 - 0.9/3 = 0.7; cosine at f = 1/3:
     * 0.1 + 0.9 * (1 + cos(pi/3)) / 2 = 0.775 */
    CHECK_NEAR(mp_nn_lr_at(1.0f, 7, 4, 14, MP_NN_DECAY_LINEAR, 0.1f), 0.7, 1e-6);
    CHECK_NEAR(mp_nn_lr_at(1.0f, 7, 4, 14, MP_NN_DECAY_COSINE, 0.1f), 0.775, 1e-6);
    CHECK_NEAR(mp_nn_lr_at(2.0f, 10, 4, 14, MP_NN_DECAY_NONE, 0.1f), 2.0, 1e-7);
    CHECK_NEAR(mp_nn_lr_at(2.0f, 0, 0, 14, MP_NN_DECAY_LINEAR, 0.0f), 2.0, 1e-7); /* no warm-up */
    /* monotone decay */
    for (uint64_t s = 4; s < 13; s++)
        CHECK(mp_nn_lr_at(1.0f, s + 1, 4, 14, MP_NN_DECAY_COSINE, 0.0f) < mp_nn_lr_at(1.0f, s, 4, 14, MP_NN_DECAY_COSINE, 0.0f));
}
