/* The neural core's kernels: forward/backward pairs over row-major float arrays, shapes beside every array (see
 * include/magpie/nn.h for the contracts, src/nn/kernels_ref.c for the naive double-precision definitions the tests
 * compare against).
 *
 * Threads and determinism: loops over rows run on OpenMP threads when the work is large enough; matrix products go
 * through mp_nn_gemm. No kernel adds into one output from two threads: reductions over rows (dbias, layer norm's
 * dweight/dbias, position_bwd) give each thread whole output columns or rows and sum over n in order, and
 * scatter-adds into a table (embedding_bwd, sampled_xent) give each table row to one thread (row % threads) that
 * applies its updates in input order. So every result is the same at any thread count, except where mp_nn_gemm's
 * blocking is involved, which is fixed too. */
#include <math.h>
#include <string.h>

#include "magpie/linalg.h"
#include "magpie/nn.h"
#include "nn/nn_internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NN_X86 1
#define AVX_FN __attribute__((target("avx2,fma")))
#endif

/* Below this many floats of work a loop runs on the calling thread. */
#define PAR_MIN 32768

static int nn_threads(void) {
#ifdef _OPENMP
    return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}
static int nn_tid(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* ---- vector helpers ---- */

/* exp by range reduction x = n ln2 + r, |r| <= ln2/2, a degree-6 polynomial for e^r (Cephes' expf coefficients)
 * and 2^n built in the exponent bits. Inputs are clamped to [-87.3, 88.7] so 2^n stays a normal float. */
#define EXP_HI 88.3762626647949f
#define EXP_LO -87.3365478515625f
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define P0 1.9875691500e-4f
#define P1 1.3981999507e-3f
#define P2 8.3334519073e-3f
#define P3 4.1665795894e-2f
#define P4 1.6666665459e-1f
#define P5 5.0000001201e-1f

static inline float exp_scalar(float x) {
    x = x > EXP_HI ? EXP_HI : x < EXP_LO ? EXP_LO : x;
    float n = nearbyintf(x * LOG2E);
    float r = x - n * LN2_HI - n * LN2_LO;
    float p = ((((P0 * r + P1) * r + P2) * r + P3) * r + P4) * r + P5;
    p = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}

#ifdef NN_X86
AVX_FN static inline __m256 exp_avx(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(P0), r, _mm256_set1_ps(P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

AVX_FN static float exp_shift_sum_avx(float *x, size_t n, float shift) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, vs = _mm256_set1_ps(shift);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 e0 = exp_avx(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
        __m256 e1 = exp_avx(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vs));
        _mm256_storeu_ps(x + i, e0);
        _mm256_storeu_ps(x + i + 8, e1);
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(s0, s1));
    float s = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    for (; i < n; i++) {
        x[i] = exp_scalar(x[i] - shift);
        s += x[i];
    }
    return s;
}

AVX_FN static float max_avx(const float *x, size_t n) {
    size_t i = 0;
    float m = x[0];
    if (n >= 16) {
        __m256 m0 = _mm256_loadu_ps(x), m1 = _mm256_loadu_ps(x + 8);
        for (i = 16; i + 16 <= n; i += 16) {
            m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
            m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
        }
        float lanes[8];
        _mm256_storeu_ps(lanes, _mm256_max_ps(m0, m1));
        for (int j = 0; j < 8; j++) m = lanes[j] > m ? lanes[j] : m;
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}
#endif

float mp_nn_exp_shift_sum(float *x, size_t n, float shift) {
#ifdef NN_X86
    if (mp_nn_simd()) return exp_shift_sum_avx(x, n, shift);
#endif
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            x[i + j] = exp_scalar(x[i + j] - shift);
            s[j] += x[i + j];
        }
    float sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) {
        x[i] = exp_scalar(x[i] - shift);
        sum += x[i];
    }
    return sum;
}

float mp_nn_max(const float *x, size_t n) {
#ifdef NN_X86
    if (mp_nn_simd()) return max_avx(x, n);
#endif
    float m = x[0];
    for (size_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

void mp_nn_axpy(float *y, const float *x, float a, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

static float dot(const float *a, const float *b, size_t n, int simd) {
    return simd ? mp_dot_simd(a, b, n) : mp_dot(a, b, n);
}

/* ---- embeddings and positions ---- */

/* out (N,C), idx (N), table (V,C) */
void mp_nn_embedding_fwd(float *out, const uint32_t *idx, const float *table, size_t N, size_t C, float scale,
                         int accumulate) {
#pragma omp parallel for schedule(static) if (N * C >= PAR_MIN && nn_threads() > 1)
    for (size_t n = 0; n < N; n++) {
        float *o = out + n * C;
        if (idx[n] == MP_NN_PAD) {
            if (!accumulate) memset(o, 0, C * sizeof *o);
            continue;
        }
        const float *e = table + (size_t)idx[n] * C;
        if (accumulate)
            for (size_t c = 0; c < C; c++) o[c] += scale * e[c];
        else
            for (size_t c = 0; c < C; c++) o[c] = scale * e[c];
    }
}

/* dtable (V,C), dout (N,C), idx (N). Table row r belongs to thread r % threads, which adds in n order. */
void mp_nn_embedding_bwd(float *dtable, mp_nn_rows *rows, const float *dout, const uint32_t *idx, size_t N, size_t C,
                         float scale) {
    if (rows)
        for (size_t n = 0; n < N; n++)
            if (idx[n] != MP_NN_PAD) mp_nn_rows_add(rows, idx[n]);
    int nth = N * C >= PAR_MIN ? nn_threads() : 1;
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        uint32_t tid = (uint32_t)nn_tid(), T = 1;
#ifdef _OPENMP
        T = (uint32_t)omp_get_num_threads();
#endif
        for (size_t n = 0; n < N; n++) {
            uint32_t r = idx[n];
            if (r == MP_NN_PAD || r % T != tid) continue;
            float *d = dtable + (size_t)r * C;
            const float *g = dout + n * C;
            for (size_t c = 0; c < C; c++) d[c] += scale * g[c];
        }
    }
}

/* out (B,T,C), wpe (T,C), valid (B,T) */
void mp_nn_position_fwd(float *out, const float *wpe, const uint8_t *valid, size_t B, size_t T, size_t C) {
#pragma omp parallel for schedule(static) if (B * T * C >= PAR_MIN && nn_threads() > 1)
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            if (!valid[b * T + t]) continue;
            float *o = out + (b * T + t) * C;
            const float *w = wpe + t * C;
            for (size_t c = 0; c < C; c++) o[c] += w[c];
        }
}

/* dwpe (T,C), dout (B,T,C), valid (B,T): each t is one thread's, summed over b in order. */
void mp_nn_position_bwd(float *dwpe, const float *dout, const uint8_t *valid, size_t B, size_t T, size_t C) {
#pragma omp parallel for schedule(static) if (B * T * C >= PAR_MIN && nn_threads() > 1)
    for (size_t t = 0; t < T; t++) {
        float *d = dwpe + t * C;
        for (size_t b = 0; b < B; b++) {
            if (!valid[b * T + t]) continue;
            const float *g = dout + (b * T + t) * C;
            for (size_t c = 0; c < C; c++) d[c] += g[c];
        }
    }
}

/* ---- linear ---- */

/* out (N,OC), inp (N,C), weight (OC,C), bias (OC) */
void mp_nn_linear_fwd(float *out, const float *inp, const float *weight, const float *bias, size_t N, size_t C,
                      size_t OC) {
    if (bias) {
#pragma omp parallel for schedule(static) if (N * OC >= PAR_MIN && nn_threads() > 1)
        for (size_t n = 0; n < N; n++) memcpy(out + n * OC, bias, OC * sizeof *out);
    }
    mp_nn_gemm(0, 1, N, OC, C, 1.0f, inp, C, weight, C, bias ? 1.0f : 0.0f, out, OC);
}

/* Column sums of x (N,W) added into out (W): 16 columns per work item, each summed over n in order in double. */
static void col_sums(float *out, const float *x, size_t N, size_t W) {
    size_t chunks = (W + 15) / 16;
#pragma omp parallel for schedule(static) if (N * W >= PAR_MIN && nn_threads() > 1)
    for (size_t ch = 0; ch < chunks; ch++) {
        size_t c0 = ch * 16, w = W - c0 < 16 ? W - c0 : 16;
        double acc[16] = {0};
        for (size_t n = 0; n < N; n++) {
            const float *row = x + n * W + c0;
            for (size_t c = 0; c < w; c++) acc[c] += row[c];
        }
        for (size_t c = 0; c < w; c++) out[c0 + c] += (float)acc[c];
    }
}

/* dinp (N,C), dweight (OC,C), dbias (OC), dout (N,OC), inp (N,C), weight (OC,C) */
void mp_nn_linear_bwd(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                      const float *weight, size_t N, size_t C, size_t OC) {
    if (dinp) mp_nn_gemm(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    if (dweight) mp_nn_gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) col_sums(dbias, dout, N, OC);
}

/* ---- layer norm ---- */

/* out (N,C), mean (N), rstd (N), inp (N,C), weight (C), bias (C) */
void mp_nn_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                         const float *bias, size_t N, size_t C, float eps) {
#pragma omp parallel for schedule(static) if (N * C >= PAR_MIN && nn_threads() > 1)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float s = 0.0f;
        for (size_t c = 0; c < C; c++) s += x[c];
        float m = s / (float)C, v = 0.0f;
        for (size_t c = 0; c < C; c++) {
            float d = x[c] - m;
            v += d * d;
        }
        float r = 1.0f / sqrtf(v / (float)C + eps);
        float *o = out + n * C;
        for (size_t c = 0; c < C; c++) o[c] = (x[c] - m) * r * weight[c] + bias[c];
        mean[n] = m;
        rstd[n] = r;
    }
}

/* dinp (N,C), dweight (C), dbias (C), dout (N,C), inp (N,C), weight (C), mean (N), rstd (N).
 * dinp row by row; dweight/dbias in a second pass over 16-column chunks (each summed over n in order). */
void mp_nn_layernorm_bwd(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, const float *mean, const float *rstd, size_t N, size_t C) {
    int par = N * C >= PAR_MIN && nn_threads() > 1;
#pragma omp parallel for schedule(static) if (par)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C, *g = dout + n * C;
        float m = mean[n], r = rstd[n], sd = 0.0f, sdn = 0.0f;
        for (size_t c = 0; c < C; c++) {
            float dn = weight[c] * g[c];
            sd += dn;
            sdn += dn * (x[c] - m) * r;
        }
        sd /= (float)C;
        sdn /= (float)C;
        float *d = dinp + n * C;
        for (size_t c = 0; c < C; c++) {
            float norm = (x[c] - m) * r;
            d[c] += (weight[c] * g[c] - sd - norm * sdn) * r;
        }
    }
    size_t chunks = (C + 15) / 16;
#pragma omp parallel for schedule(static) if (par)
    for (size_t ch = 0; ch < chunks; ch++) {
        size_t c0 = ch * 16, w = C - c0 < 16 ? C - c0 : 16;
        double aw[16] = {0}, ab[16] = {0};
        for (size_t n = 0; n < N; n++) {
            const float *x = inp + n * C + c0, *g = dout + n * C + c0;
            float m = mean[n], r = rstd[n];
            for (size_t c = 0; c < w; c++) {
                aw[c] += g[c] * ((x[c] - m) * r);
                ab[c] += g[c];
            }
        }
        for (size_t c = 0; c < w; c++) {
            dweight[c0 + c] += (float)aw[c];
            dbias[c0 + c] += (float)ab[c];
        }
    }
}

/* ---- GELU (tanh approximation) ---- */

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

#ifdef NN_X86
/* tanh(u) = 1 - 2 / (e^{2u} + 1) on the vector exp (absolute error about 1e-7). */
AVX_FN static inline __m256 tanh_avx(__m256 u) {
    __m256 e = exp_avx(_mm256_add_ps(u, u)), one = _mm256_set1_ps(1.0f);
    return _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
}
AVX_FN static void gelu_fwd_avx(float *out, const float *inp, size_t i0, size_t i1) {
    __m256 k = _mm256_set1_ps(GELU_K), a = _mm256_set1_ps(GELU_A), h = _mm256_set1_ps(0.5f),
           one = _mm256_set1_ps(1.0f);
    size_t i = i0;
    for (; i + 8 <= i1; i += 8) {
        __m256 x = _mm256_loadu_ps(inp + i);
        __m256 u = _mm256_mul_ps(k, _mm256_fmadd_ps(_mm256_mul_ps(a, x), _mm256_mul_ps(x, x), x));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(h, x), _mm256_add_ps(one, tanh_avx(u))));
    }
    for (; i < i1; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_A * x * x * x)));
    }
}
AVX_FN static void gelu_bwd_avx(float *dinp, const float *inp, const float *dout, size_t i0, size_t i1) {
    __m256 k = _mm256_set1_ps(GELU_K), a = _mm256_set1_ps(GELU_A), a3 = _mm256_set1_ps(3.0f * GELU_A),
           h = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    size_t i = i0;
    for (; i + 8 <= i1; i += 8) {
        __m256 x = _mm256_loadu_ps(inp + i), x2 = _mm256_mul_ps(x, x);
        __m256 u = _mm256_mul_ps(k, _mm256_fmadd_ps(_mm256_mul_ps(a, x), x2, x));
        __m256 th = tanh_avx(u);
        __m256 sech2 = _mm256_fnmadd_ps(th, th, one);
        __m256 du = _mm256_mul_ps(k, _mm256_fmadd_ps(a3, x2, one));
        __m256 grad = _mm256_fmadd_ps(_mm256_mul_ps(h, x), _mm256_mul_ps(sech2, du), _mm256_mul_ps(h, _mm256_add_ps(one, th)));
        _mm256_storeu_ps(dinp + i, _mm256_fmadd_ps(grad, _mm256_loadu_ps(dout + i), _mm256_loadu_ps(dinp + i)));
    }
    for (; i < i1; i++) {
        float x = inp[i], th = tanhf(GELU_K * (x + GELU_A * x * x * x));
        float grad = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * GELU_K * (1.0f + 3.0f * GELU_A * x * x);
        dinp[i] += grad * dout[i];
    }
}
#endif

#define CHUNK 4096

/* out (n), inp (n); out may alias inp */
void mp_nn_gelu_fwd(float *out, const float *inp, size_t n) {
    int simd = mp_nn_simd();
    size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN && nn_threads() > 1)
    for (size_t ch = 0; ch < chunks; ch++) {
        size_t i0 = ch * CHUNK, i1 = n - i0 < CHUNK ? n : i0 + CHUNK;
#ifdef NN_X86
        if (simd) {
            gelu_fwd_avx(out, inp, i0, i1);
            continue;
        }
#endif
        (void)simd;
        for (size_t i = i0; i < i1; i++) {
            float x = inp[i];
            out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_A * x * x * x)));
        }
    }
}

/* dinp (n), inp (n), dout (n) */
void mp_nn_gelu_bwd(float *dinp, const float *inp, const float *dout, size_t n) {
    int simd = mp_nn_simd();
    size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN && nn_threads() > 1)
    for (size_t ch = 0; ch < chunks; ch++) {
        size_t i0 = ch * CHUNK, i1 = n - i0 < CHUNK ? n : i0 + CHUNK;
#ifdef NN_X86
        if (simd) {
            gelu_bwd_avx(dinp, inp, dout, i0, i1);
            continue;
        }
#endif
        (void)simd;
        for (size_t i = i0; i < i1; i++) {
            float x = inp[i], th = tanhf(GELU_K * (x + GELU_A * x * x * x));
            float grad = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * GELU_K * (1.0f + 3.0f * GELU_A * x * x);
            dinp[i] += grad * dout[i];
        }
    }
}

/* ---- dropout, residual ---- */

/* out (n), mask (n), inp (n); mask[i] = hash(seed, i) >= p */
void mp_nn_dropout_fwd(float *out, uint8_t *mask, const float *inp, size_t n, float p, uint64_t seed) {
    if (p <= 0.0f) {
        if (out != inp) memmove(out, inp, n * sizeof *out);
        memset(mask, 1, n);
        return;
    }
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n >= PAR_MIN && nn_threads() > 1)
    for (size_t i = 0; i < n; i++) {
        uint8_t keep = mp_nn_dropout_u(seed, i) >= p;
        mask[i] = keep;
        out[i] = keep ? inp[i] * scale : 0.0f;
    }
}

/* dinp (n), dout (n), mask (n) */
void mp_nn_dropout_bwd(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p) {
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n >= PAR_MIN && nn_threads() > 1)
    for (size_t i = 0; i < n; i++) dinp[i] += mask[i] ? dout[i] * scale : 0.0f;
}

/* out (n), a (n), b (n) */
void mp_nn_residual_fwd(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN && nn_threads() > 1)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void mp_nn_residual_bwd(float *da, float *db, const float *dout, size_t n) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN && nn_threads() > 1)
    for (size_t i = 0; i < n; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}

/* ---- attention ---- */

/* One (b, h) per work item; its outputs (a head's columns of out and dqkv, its att rows) are disjoint from the
 * others'. With left padding the queries before the first valid position f have no valid key, so each head works
 * on the (T-f) x (T-f) block only, as small products through mp_nn_gemm (single-threaded inside the loop): the
 * scores S = Q K^T (the causal half is computed and masked), out = P V; backward dP = dO V^T, dV += P^T dO,
 * dS = P (dP - rowsum(P dP)) / sqrt(hs), dQ += dS K, dK += dS^T Q. Blocks of at most ATT_DIRECT positions (short
 * histories: Beauty's median is under 10) use dot products and axpys instead, which cost less than setting up
 * five products. */

#define ATT_DIRECT 16 /* heads with at most this many positions from the first valid one skip the products */

/* out (B,T,C), att (B,NH,T,T), qkv (B,T,3C), valid (B,T) */
void mp_nn_attention_fwd(float *out, float *att, const float *qkv, const uint8_t *valid, size_t B, size_t T, size_t C,
                         size_t NH) {
    size_t hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    int simd = mp_nn_simd();
#pragma omp parallel for schedule(dynamic, 4) if (B * NH * T * T * hs >= PAR_MIN && nn_threads() > 1)
    for (size_t bh = 0; bh < B * NH; bh++) {
        size_t b = bh / NH, h = bh % NH, f = 0;
        const uint8_t *vb = valid + b * T;
        const float *base = qkv + b * T * C3;
        float *A = att + bh * T * T;
        while (f < T && !vb[f]) f++;
        memset(A, 0, f * T * sizeof *A);
        for (size_t t = 0; t < f; t++) memset(out + (b * T + t) * C + h * hs, 0, hs * sizeof *out);
        if (f == T) continue;
        size_t L = T - f;
        if (L <= ATT_DIRECT) { /* short: dot products and axpys, no product set-up */
            for (size_t t = f; t < T; t++) {
                float *a = A + t * T, *o = out + (b * T + t) * C + h * hs, mx = -INFINITY;
                const float *q = base + t * C3 + h * hs;
                memset(a, 0, T * sizeof *a);
                for (size_t s2 = f; s2 <= t; s2++)
                    if (vb[s2]) {
                        a[s2] = dot(q, base + s2 * C3 + C + h * hs, hs, simd) * scale;
                        if (a[s2] > mx) mx = a[s2];
                    }
                float sum = 0.0f;
                for (size_t s2 = f; s2 <= t; s2++)
                    if (vb[s2]) {
                        a[s2] = exp_scalar(a[s2] - mx);
                        sum += a[s2];
                    }
                float inv = 1.0f / sum;
                memset(o, 0, hs * sizeof *o);
                for (size_t s2 = f; s2 <= t; s2++)
                    if (vb[s2]) {
                        a[s2] *= inv;
                        mp_nn_axpy(o, base + s2 * C3 + 2 * C + h * hs, a[s2], hs);
                    }
            }
            continue;
        }
        mp_nn_gemm(0, 1, L, L, hs, scale, base + f * C3 + h * hs, C3, base + f * C3 + C + h * hs, C3, 0.0f,
                   A + f * T + f, T);
        for (size_t t = f; t < T; t++) {
            float *a = A + t * T;
            memset(a, 0, f * sizeof *a);
            float mx = -INFINITY;
            for (size_t s = f; s <= t; s++) {
                if (!vb[s]) a[s] = -INFINITY;
                else if (a[s] > mx) mx = a[s];
            }
            float sum = mp_nn_exp_shift_sum(a + f, t - f + 1, mx), inv = 1.0f / sum;
            for (size_t s = f; s <= t; s++) a[s] = vb[s] ? a[s] * inv : 0.0f;
            for (size_t s = t + 1; s < T; s++) a[s] = 0.0f;
        }
        mp_nn_gemm(0, 0, L, hs, L, 1.0f, A + f * T + f, T, base + f * C3 + 2 * C + h * hs, C3, 0.0f,
                   out + (b * T + f) * C + h * hs, C);
    }
}

/* dqkv (B,T,3C), datt (B,NH,T,T) scratch, dout (B,T,C), qkv (B,T,3C), att (B,NH,T,T) */
void mp_nn_attention_bwd(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att, size_t B,
                         size_t T, size_t C, size_t NH) {
    size_t hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    int simd = mp_nn_simd();
#pragma omp parallel for schedule(dynamic, 4) if (B * NH * T * T * hs >= PAR_MIN && nn_threads() > 1)
    for (size_t bh = 0; bh < B * NH; bh++) {
        size_t b = bh / NH, h = bh % NH, f = 0;
        const float *A = att + bh * T * T;
        /* the first query with a valid key: rows before it are all zero */
        for (; f < T; f++) {
            size_t s = 0;
            while (s <= f && A[f * T + s] == 0.0f) s++;
            if (s <= f) break;
        }
        if (f == T) continue;
        size_t L = T - f;
        const float *base = qkv + b * T * C3, *P = A + f * T + f, *dO = dout + (b * T + f) * C + h * hs;
        float *dbase = dqkv + b * T * C3, *dP = datt + bh * T * T + f * T + f;
        const float *Q = base + f * C3 + h * hs, *K = Q + C, *Vv = Q + 2 * C;
        float *dQ = dbase + f * C3 + h * hs, *dK = dQ + C, *dV = dQ + 2 * C;
        if (L <= ATT_DIRECT) {
            for (size_t i = 0; i < L; i++) {
                const float *p = P + i * T, *g = dO + i * C, *q = Q + i * C3;
                float *d = dP + i * T, sum = 0.0f;
                for (size_t s2 = 0; s2 <= i; s2++) {
                    if (p[s2] == 0.0f) {
                        d[s2] = 0.0f;
                        continue;
                    }
                    d[s2] = dot(g, Vv + s2 * C3, hs, simd);
                    mp_nn_axpy(dV + s2 * C3, g, p[s2], hs);
                    sum += p[s2] * d[s2];
                }
                for (size_t s2 = 0; s2 <= i; s2++) {
                    if (p[s2] == 0.0f) continue;
                    float ds = p[s2] * (d[s2] - sum) * scale;
                    mp_nn_axpy(dQ + i * C3, K + s2 * C3, ds, hs);
                    mp_nn_axpy(dK + s2 * C3, q, ds, hs);
                }
            }
            continue;
        }
        mp_nn_gemm(0, 1, L, L, hs, 1.0f, dO, C, Vv, C3, 0.0f, dP, T);
        mp_nn_gemm(1, 0, L, hs, L, 1.0f, P, T, dO, C, 1.0f, dV, C3);
        for (size_t i = 0; i < L; i++) {
            const float *p = P + i * T;
            float *d = dP + i * T, sum = 0.0f;
            for (size_t s = 0; s <= i; s++) sum += p[s] * d[s];
            for (size_t s = 0; s <= i; s++) d[s] = p[s] * (d[s] - sum) * scale;
            for (size_t s = i + 1; s < L; s++) d[s] = 0.0f;
        }
        mp_nn_gemm(0, 0, L, hs, L, 1.0f, dP, T, K, C3, 1.0f, dQ, C3);
        mp_nn_gemm(1, 0, L, hs, L, 1.0f, dP, T, Q, C3, 1.0f, dK, C3);
    }
}

/* ---- losses ---- */

/* The fused full softmax. scratch (scratch_rows * V floats) is cut per block of R rows into: loss (R doubles),
 * logits (R,V), the gathered h (R,C), dh (R,C), grad_scale/sum (R), row numbers (R). R rows with a target are
 * gathered, their logits formed by one product and turned into e^(l - max) in place, and both gradients taken
 * from those unnormalised values: dh_r += (gs/sum_r) E_r . table - gs table[t_r]; dtable += E^T . ((gs/sum_r) h_r),
 * then dtable[t_r] -= gs h_r in row order. When scratch cannot hold one row and its extras, rows go one at a time
 * with only the logits in scratch. The block size changes the rounding of the sums, not the result. */
void mp_nn_softmax_xent(double *loss_sum, size_t *count, float *dh, float *dtable, const float *h, const float *table,
                        const uint32_t *targets, size_t N, size_t C, size_t V, float grad_scale, float *scratch,
                        size_t scratch_rows) {
    size_t R = scratch_rows * V / (V + 2 * C + 5);
    double total = 0.0;
    size_t used = 0;
    if (R == 0) {
        for (size_t n = 0; n < N; n++) {
            uint32_t tg = targets[n];
            if (tg == MP_NN_PAD) continue;
            const float *hn = h + n * C;
            mp_nn_gemm(0, 1, 1, V, C, 1.0f, hn, C, table, C, 0.0f, scratch, V);
            float lt = scratch[tg], mx = mp_nn_max(scratch, V);
            float sum = mp_nn_exp_shift_sum(scratch, V, mx);
            total += log((double)sum) + (double)mx - (double)lt;
            used++;
            float a = grad_scale / sum;
            if (dh) {
                mp_nn_gemm(0, 0, 1, C, V, a, scratch, V, table, C, 1.0f, dh + n * C, C);
                mp_nn_axpy(dh + n * C, table + (size_t)tg * C, -grad_scale, C);
            }
            if (dtable) {
                mp_nn_gemm(1, 0, V, C, 1, a, scratch, V, hn, C, 1.0f, dtable, C);
                mp_nn_axpy(dtable + (size_t)tg * C, hn, -grad_scale, C);
            }
        }
        *loss_sum += total;
        *count += used;
        return;
    }
    double *loss = (double *)(void *)scratch;               /* (R) */
    float *logits = scratch + 2 * R;                         /* (R,V) */
    float *hb = logits + R * V, *dhb = hb + R * C;           /* (R,C) each */
    float *rscale = dhb + R * C;                             /* (R) */
    uint32_t *rown = (uint32_t *)(void *)(rscale + R);       /* (R) */
    size_t n = 0;
    while (n < N) {
        size_t r = 0;
        for (; n < N && r < R; n++) {
            if (targets[n] == MP_NN_PAD) continue;
            rown[r] = (uint32_t)n;
            memcpy(hb + r * C, h + n * C, C * sizeof *hb);
            r++;
        }
        if (r == 0) break;
        mp_nn_gemm(0, 1, r, V, C, 1.0f, hb, C, table, C, 0.0f, logits, V);
#pragma omp parallel for schedule(static) if (r * V >= PAR_MIN && nn_threads() > 1)
        for (size_t i = 0; i < r; i++) {
            float *l = logits + i * V;
            float lt = l[targets[rown[i]]], mx = mp_nn_max(l, V);
            float s = mp_nn_exp_shift_sum(l, V, mx);
            rscale[i] = grad_scale / s;
            loss[i] = log((double)s) + (double)mx - (double)lt;
        }
        for (size_t i = 0; i < r; i++) total += loss[i];
        used += r;
        if (dh) {
            mp_nn_gemm(0, 0, r, C, V, 1.0f, logits, V, table, C, 0.0f, dhb, C);
            for (size_t i = 0; i < r; i++) {
                float *d = dh + (size_t)rown[i] * C;
                const float *e = table + (size_t)targets[rown[i]] * C, *g = dhb + i * C;
                for (size_t c = 0; c < C; c++) d[c] += rscale[i] * g[c] - grad_scale * e[c];
            }
        }
        if (dtable) {
            for (size_t i = 0; i < r; i++)
                for (size_t c = 0; c < C; c++) hb[i * C + c] *= rscale[i];
            mp_nn_gemm(1, 0, V, C, r, 1.0f, logits, V, hb, C, 1.0f, dtable, C);
            for (size_t i = 0; i < r; i++)
                mp_nn_axpy(dtable + (size_t)targets[rown[i]] * C, h + (size_t)rown[i] * C, -grad_scale, C);
        }
    }
    *loss_sum += total;
    *count += used;
}

/* scratch (N, S+1): per row [target logit, S negative logits], turned into probabilities, then into the gradient
 * coefficients. An accidental hit (neg[j] == the row's target) gets probability and coefficient 0. The loss is
 * summed per thread over a fixed contiguous range of rows, the partial sums added in thread order. */
#define MAX_PARTIALS 256
void mp_nn_sampled_xent(double *loss_sum, size_t *count, float *dh, float *dtable, mp_nn_rows *rows, const float *h,
                        const float *table, const uint32_t *targets, const uint32_t *neg, size_t S, const float *logq,
                        size_t N, size_t C, float grad_scale, float *scratch) {
    int simd = mp_nn_simd();
    size_t W = S + 1;
    int nth = N * W * C >= PAR_MIN ? nn_threads() : 1;
    if (nth > MAX_PARTIALS) nth = MAX_PARTIALS;
    double partial[MAX_PARTIALS];
    size_t used[MAX_PARTIALS];
    for (int i = 0; i < nth; i++) {
        partial[i] = 0.0;
        used[i] = 0;
    }
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        int tid = nn_tid(), T = nth;
#ifdef _OPENMP
        T = omp_get_num_threads();
#endif
        size_t n0 = N * (size_t)tid / (size_t)T, n1 = N * (size_t)(tid + 1) / (size_t)T;
        double tot = 0.0;
        size_t u = 0;
        for (size_t n = n0; n < n1; n++) {
            uint32_t tg = targets[n];
            if (tg == MP_NN_PAD) continue;
            float *l = scratch + n * W;
            const float *hn = h + n * C;
            float lt = dot(hn, table + (size_t)tg * C, C, simd) - logq[tg], mx = lt;
            l[0] = lt;
            for (size_t j = 0; j < S; j++) {
                if (neg[j] == tg) {
                    l[1 + j] = -INFINITY;
                    continue;
                }
                l[1 + j] = dot(hn, table + (size_t)neg[j] * C, C, simd) - logq[neg[j]];
                mx = l[1 + j] > mx ? l[1 + j] : mx;
            }
            float sum = 0.0f;
            for (size_t j = 0; j < W; j++) {
                l[j] = l[j] == -INFINITY ? 0.0f : exp_scalar(l[j] - mx);
                sum += l[j];
            }
            tot += log((double)sum) + (double)mx - (double)lt;
            u++;
            float inv = 1.0f / sum;
            l[0] = grad_scale * (l[0] * inv - 1.0f);
            for (size_t j = 1; j < W; j++) l[j] *= inv * grad_scale;
            if (!dh) continue;
            float *d = dh + n * C;
            mp_nn_axpy(d, table + (size_t)tg * C, l[0], C);
            for (size_t j = 0; j < S; j++)
                if (l[1 + j] != 0.0f) mp_nn_axpy(d, table + (size_t)neg[j] * C, l[1 + j], C);
        }
        partial[tid] = tot;
        used[tid] = u;
    }
    for (int i = 0; i < nth; i++) {
        *loss_sum += partial[i];
        *count += used[i];
    }
    if (!dtable) return;
    if (rows) {
        for (size_t n = 0; n < N; n++)
            if (targets[n] != MP_NN_PAD) mp_nn_rows_add(rows, targets[n]);
        for (size_t j = 0; j < S; j++) mp_nn_rows_add(rows, neg[j]);
    }
    /* table row r belongs to thread r % threads: negatives in (j, n) order, then targets in n order */
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        uint32_t tid = (uint32_t)nn_tid(), T = 1;
#ifdef _OPENMP
        T = (uint32_t)omp_get_num_threads();
#endif
        for (size_t j = 0; j < S; j++) {
            if (neg[j] % T != tid) continue;
            float *d = dtable + (size_t)neg[j] * C;
            for (size_t n = 0; n < N; n++) {
                if (targets[n] == MP_NN_PAD) continue;
                float g = scratch[n * W + 1 + j];
                if (g != 0.0f) mp_nn_axpy(d, h + n * C, g, C);
            }
        }
        for (size_t n = 0; n < N; n++) {
            uint32_t tg = targets[n];
            if (tg == MP_NN_PAD || tg % T != tid) continue;
            mp_nn_axpy(dtable + (size_t)tg * C, h + n * C, scratch[n * W], C);
        }
    }
}

/* logits, labels, weights, dlogits (n); loss = w (max(x,0) - x y + log1p(e^-|x|)) */
void mp_nn_bce(double *loss_sum, float *dlogits, const float *logits, const float *labels, const float *weights,
               size_t n, float grad_scale) {
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        float x = logits[i], y = labels[i], w = weights ? weights[i] : 1.0f;
        total += (double)w * ((x > 0 ? (double)x : 0.0) - (double)x * y + log1p(exp(-fabs((double)x))));
        if (dlogits) {
            float sg = x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
            dlogits[i] += grad_scale * w * (sg - y);
        }
    }
    *loss_sum += total;
}
