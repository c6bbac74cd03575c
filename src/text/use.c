/* The forward pass of the Universal Sentence Encoder Lite, as traced from the TF.js graph in model.json:
 *
 *   ids (per text, the first max_len=128 kept) -> emb (T,256) = Embeddings_en[id]
 *   x0 = 2 emb + timing(pos)          (the graph adds AddTimingSignal's output, itself emb + signal, to emb again;
 *                                      timing = [sin(pos inv_timescales) | cos(pos inv_timescales)], 128 + 128)
 *   Layer_0 (width 256 -> 512):
 *     h  = x0 Wdense + bdense                                   (AdjustResidualInput)
 *        + MHA(LN(x0)) Wout + bout                              (4 heads of 64, q scaled by 1/8)
 *     h += FFN(LN(h))                                           (512 -> 1536 ReLU -> 512)
 *   Layer_1 (width 512):
 *     h += MHA(LN(h)) Wout + bout                               (4 heads of 128, q scaled by 1/sqrt(128))
 *     h += FFN(LN(h))
 *   pooled = mean of h over the text's tokens (0 for an empty text: the graph divides by max(len, 1))
 *   out = l2_normalize(tanh(pooled Wtanh + btanh))            (x / sqrt(max(|x|^2, 1e-12)))
 *
 * LN is pre-norm: scale (x - mean) / sqrt(var + 1e-6) + bias over the last axis. Attention only sees the tokens
 * of its own text (the graph's -1e9 padding bias), so a text's embedding does not depend on its batch.
 *
 * Texts are processed in chunks of up to CHUNK_TOKENS tokens: the dense products run on all tokens of a chunk at
 * once. With MP_HAVE_CBLAS they are CBLAS sgemm calls, threaded by OpenBLAS itself, and the rest (tokenizing, layer
 * norms, attention, pooling: a few percent of the work) runs on the calling thread; without BLAS the plain-C
 * kernel below and all the rest run on `threads` OpenMP threads. Every call allocates its own work memory, so
 * concurrent calls on one model are safe. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef MP_HAVE_CBLAS
#include <cblas.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "magpie/linalg.h"
#include "magpie/text.h"
#include "text/use_internal.h"

#define CHUNK_TOKENS 1024

/* ---- kernels -------------------------------------------------------------------------------------------------- */

#ifndef MP_HAVE_CBLAS
/* The plain-C product for builds without BLAS: C (m,n) = A (m,k) W (k,n) + beta C, row-major, dense. A 4 x 16
 * register tile (GCC vector extensions, AVX2 clone where the CPU has it) walks k; rows are taken in blocks of
 * USE_ROW_BLOCK so the k x 16 panel of W being used stays in cache across the block. */
typedef float use_v8 __attribute__((vector_size(32)));
#define USE_ROW_BLOCK 64

/* Macros, not functions: passing 32-byte vectors by value changes the ABI between the AVX2 clone and the default. */
#define LD8(v, p) memcpy(&(v), (p), sizeof(use_v8))
#define ST8_BETA(p, v)                                                                                                 \
    do {                                                                                                               \
        use_v8 old_;                                                                                                   \
        if (beta != 0.0f) {                                                                                            \
            LD8(old_, (p));                                                                                            \
            (v) += beta * old_;                                                                                        \
        }                                                                                                              \
        memcpy((p), &(v), sizeof(use_v8));                                                                             \
    } while (0)

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define USE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define USE_CLONES
#endif

USE_CLONES static void gemm_plain_rows(size_t r0, size_t r1, size_t n, size_t k, const float *A, const float *W,
                                       float beta, float *C) {
    size_t i_end4 = r0 + (r1 - r0) / 4 * 4, n16 = n / 16 * 16;
    for (size_t j = 0; j < n16; j += 16) {
        for (size_t i = r0; i < i_end4; i += 4) {
            const float *a0 = A + i * k, *a1 = a0 + k, *a2 = a1 + k, *a3 = a2 + k, *w = W + j;
            use_v8 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
            for (size_t kk = 0; kk < k; kk++, w += n) {
                use_v8 w0, w1;
                LD8(w0, w);
                LD8(w1, w + 8);
                c00 += a0[kk] * w0;
                c01 += a0[kk] * w1;
                c10 += a1[kk] * w0;
                c11 += a1[kk] * w1;
                c20 += a2[kk] * w0;
                c21 += a2[kk] * w1;
                c30 += a3[kk] * w0;
                c31 += a3[kk] * w1;
            }
            float *c = C + i * n + j;
            ST8_BETA(c, c00);
            ST8_BETA(c + 8, c01);
            ST8_BETA(c + n, c10);
            ST8_BETA(c + n + 8, c11);
            ST8_BETA(c + 2 * n, c20);
            ST8_BETA(c + 2 * n + 8, c21);
            ST8_BETA(c + 3 * n, c30);
            ST8_BETA(c + 3 * n + 8, c31);
        }
    }
    /* leftovers: rows past the last 4-row group (all columns), columns past the last 16 (4-row groups) */
    for (size_t i = r0; i < r1; i++) {
        size_t j0 = i < i_end4 ? n16 : 0;
        for (size_t j = j0; j < n; j++) {
            float sum = 0.0f;
            for (size_t kk = 0; kk < k; kk++)
                sum += A[i * k + kk] * W[kk * n + j];
            C[i * n + j] = beta == 0.0f ? sum : sum + beta * C[i * n + j];
        }
    }
}
#endif

static void gemm(size_t m, size_t n, size_t k, const float *A, const float *W, float beta, float *C, int nt) {
    if (m == 0) return;
#ifdef MP_HAVE_CBLAS
    (void)nt;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, A, (int)k, W, (int)n, beta, C,
                (int)n);
#else
    size_t blocks = (m + USE_ROW_BLOCK - 1) / USE_ROW_BLOCK;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (size_t b = 0; b < blocks; b++) {
        size_t r0 = b * USE_ROW_BLOCK, r1 = r0 + USE_ROW_BLOCK < m ? r0 + USE_ROW_BLOCK : m;
        gemm_plain_rows(r0, r1, n, k, A, W, beta, C);
    }
#endif
}

/* out (T,d) = LN(x) (T,d): g (x - mean) / sqrt(var + eps) + b, statistics in double. */
static void layer_norm(size_t T, size_t d, const float *x, const float *g, const float *b, float eps, float *out,
                       int nt) {
#pragma omp parallel for schedule(static) num_threads(nt)
    for (size_t t = 0; t < T; t++) {
        const float *xr = x + t * d;
        float *o = out + t * d;
        double mean = 0, var = 0;
        for (size_t j = 0; j < d; j++)
            mean += xr[j];
        mean /= (double)d;
        for (size_t j = 0; j < d; j++)
            var += ((double)xr[j] - mean) * ((double)xr[j] - mean);
        var /= (double)d;
        float inv = (float)(1.0 / sqrt(var + (double)eps));
        for (size_t j = 0; j < d; j++)
            o[j] = g[j] * inv * (float)((double)xr[j] - mean) + b[j];
    }
}

/* x (T,d) += b (d) [+ b2 (d)]; relu: then max(x, 0). */
static void add_bias(size_t T, size_t d, float *x, const float *b, const float *b2, int relu, int nt) {
#pragma omp parallel for schedule(static) num_threads(nt)
    for (size_t t = 0; t < T; t++) {
        float *r = x + t * d;
        for (size_t j = 0; j < d; j++) {
            float v = r[j] + b[j] + (b2 ? b2[j] : 0.0f);
            r[j] = relu && v < 0.0f ? 0.0f : v;
        }
    }
}

/* Multi-head self-attention within each text. qkv (T, 3d) rows = [q | k | v]; ctx (T, d). scratch: nt * max_len. */
static void attention(size_t S, const size_t *off, const size_t *len, size_t d, float q_scale, const float *qkv,
                      float *ctx, float *scratch, size_t max_len, int nt) {
    const size_t dh = d / USE_HEADS, stride = 3 * d;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (size_t task = 0; task < S * USE_HEADS; task++) {
        size_t s = task / USE_HEADS, h = task % USE_HEADS, L = len[s];
        if (L == 0) continue;
#ifdef _OPENMP
        float *p = scratch + (size_t)omp_get_thread_num() * max_len;
#else
        float *p = scratch;
#endif
        const float *base = qkv + off[s] * stride;
        for (size_t i = 0; i < L; i++) {
            const float *q = base + i * stride + h * dh;
            float mx = -INFINITY;
            for (size_t j = 0; j < L; j++) {
                const float *kj = base + j * stride + d + h * dh;
                p[j] = mp_dot_seq(q, kj, dh) * q_scale;
                if (p[j] > mx) mx = p[j];
            }
            double sum = 0;
            for (size_t j = 0; j < L; j++) {
                p[j] = expf(p[j] - mx);
                sum += p[j];
            }
            float inv = (float)(1.0 / sum);
            float *o = ctx + (off[s] + i) * d + h * dh;
            memset(o, 0, dh * sizeof *o);
            for (size_t j = 0; j < L; j++) {
                const float *vj = base + j * stride + 2 * d + h * dh;
                float w = p[j] * inv;
                for (size_t c = 0; c < dh; c++)
                    o[c] += w * vj[c];
            }
        }
    }
}

/* ---- one chunk of texts --------------------------------------------------------------------------------------- */

typedef struct use_ws {
    float *x0;      /* (T, 256) */
    float *a;       /* (T, 512) layer-norm output */
    float *qkv;     /* (T, 1536) */
    float *ctx;     /* (T, 512) */
    float *h;       /* (T, 512) residual stream */
    float *u;       /* (T, 1536) FFN inner */
    float *pool;    /* (S, 512) */
    float *scratch; /* (nt, max_len) attention probabilities */
} use_ws;

static void ffn(const mp_use *m, const use_layer *L, size_t T, use_ws *w, int nt) {
    layer_norm(T, USE_HID, w->h, L->ln2_g, L->ln2_b, m->ln_eps, w->a, nt);
    gemm(T, USE_FFN, USE_HID, w->a, L->ffn1_w, 0.0f, w->u, nt);
    add_bias(T, USE_FFN, w->u, L->ffn1_b, NULL, 1, nt);
    gemm(T, USE_HID, USE_FFN, w->u, L->ffn2_w, 1.0f, w->h, nt);
    add_bias(T, USE_HID, w->h, L->ffn2_b, NULL, 0, nt);
}

/* Embeds S texts whose ids are ids[s][0..len[s]) into out (S, 512). */
static void forward_chunk(const mp_use *m, size_t S, uint32_t *const *ids, const size_t *len, const size_t *off,
                          size_t T, use_ws *w, float *out, int nt) {
    /* x0 = 2 emb + timing signal */
#pragma omp parallel for schedule(dynamic, 4) num_threads(nt)
    for (size_t s = 0; s < S; s++) {
        for (size_t i = 0; i < len[s]; i++) {
            const float *e = m->emb + (size_t)ids[s][i] * USE_EMB_DIM;
            float *x = w->x0 + (off[s] + i) * USE_EMB_DIM;
            for (size_t j = 0; j < USE_EMB_DIM / 2; j++) {
                float arg = (float)i * m->inv_timescales[j];
                x[j] = 2.0f * e[j] + (float)sin((double)arg);
                x[j + USE_EMB_DIM / 2] = 2.0f * e[j + USE_EMB_DIM / 2] + (float)cos((double)arg);
            }
        }
    }
    for (int l = 0; l < 2; l++) {
        const use_layer *L = &m->layer[l];
        const size_t d = (size_t)L->d_in;
        const float *in = l == 0 ? w->x0 : w->h;
        if (l == 0) gemm(T, USE_HID, USE_EMB_DIM, w->x0, L->res_w, 0.0f, w->h, nt); /* residual projection */
        layer_norm(T, d, in, L->ln1_g, L->ln1_b, m->ln_eps, w->a, nt);
        gemm(T, 3 * d, d, w->a, L->qkv_w, 0.0f, w->qkv, nt);
        add_bias(T, 3 * d, w->qkv, L->qkv_b, NULL, 0, nt);
        attention(S, off, len, d, L->q_scale, w->qkv, w->ctx, w->scratch, (size_t)m->max_len, nt);
        gemm(T, USE_HID, d, w->ctx, L->out_w, 1.0f, w->h, nt);
        add_bias(T, USE_HID, w->h, L->out_b, L->res_b, 0, nt);
        ffn(m, L, T, w, nt);
    }
    /* mean pooling, tanh layer, l2 normalisation */
#pragma omp parallel for schedule(static) num_threads(nt)
    for (size_t s = 0; s < S; s++) {
        float *p = w->pool + s * USE_HID;
        double acc[USE_HID];
        memset(acc, 0, sizeof acc);
        for (size_t i = 0; i < len[s]; i++) {
            const float *r = w->h + (off[s] + i) * USE_HID;
            for (size_t j = 0; j < USE_HID; j++)
                acc[j] += r[j];
        }
        double div = len[s] > 0 ? (double)len[s] : 1.0;
        for (size_t j = 0; j < USE_HID; j++)
            p[j] = (float)(acc[j] / div);
    }
    gemm(S, USE_HID, USE_HID, w->pool, m->tanh_w, 0.0f, out, nt);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (size_t s = 0; s < S; s++) {
        float *o = out + s * USE_HID;
        double ss = 0;
        for (size_t j = 0; j < USE_HID; j++) {
            o[j] = tanhf(o[j] + m->tanh_b[j]);
            ss += (double)o[j] * o[j];
        }
        if (ss < (double)m->l2_eps) ss = (double)m->l2_eps;
        float inv = (float)(1.0 / sqrt(ss));
        for (size_t j = 0; j < USE_HID; j++)
            o[j] *= inv;
    }
}

/* ---- public --------------------------------------------------------------------------------------------------- */

int mp_use_embed(const mp_use *m, const char *const *texts, const size_t *lens, size_t n, int threads, float *out,
                 mp_error *err) {
    if (n == 0) return MP_OK;
    if (!m || !texts || !out) return mp_error_set(err, MP_EINVAL, "mp_use_embed: NULL model, texts or output");
    int nt = threads;
#ifdef _OPENMP
    if (nt <= 0) nt = omp_get_max_threads();
#else
    nt = 1;
#endif
    if (nt < 1) nt = 1;
#ifdef MP_HAVE_CBLAS
    /* The dense products (over 95% of the work) run in OpenBLAS, which threads itself; everything else stays on
     * the calling thread, because idle OpenMP workers spinning between regions would take the cores OpenBLAS's
     * threads need. */
    nt = 1;
#endif
    for (size_t i = 0; i < n; i++) {
        if (!texts[i] && (!lens || lens[i])) return mp_error_set(err, MP_EINVAL, "mp_use_embed: text %zu is NULL", i);
        size_t l = lens ? lens[i] : strlen(texts[i]);
        size_t bad;
        int rc = mp_utf8_validate(texts[i] ? texts[i] : "", l, &bad, err);
        if (rc != MP_OK) {
            mp_error_prefix(err, "mp_use_embed: text %zu", i);
            return rc;
        }
    }
    uint32_t **ids = calloc(n, sizeof *ids);
    size_t *ntok = calloc(n, sizeof *ntok);
    if (!ids || !ntok) {
        free(ids);
        free(ntok);
        return mp_error_set(err, MP_ENOMEM, "mp_use_embed: out of memory for %zu texts", n);
    }
    /* Tokenize in parallel; remember the first failure. */
    int fail_rc = MP_OK;
    size_t fail_at = n;
    mp_error ferr;
    mp_error_clear(&ferr);
#pragma omp parallel for schedule(dynamic, 16) num_threads(nt)
    for (size_t i = 0; i < n; i++) {
        mp_error e;
        mp_error_clear(&e);
        size_t l = lens ? lens[i] : strlen(texts[i]);
        int rc = use_tokenize_valid(m, texts[i] ? texts[i] : "", l, &ids[i], &ntok[i], &e);
        if (rc != MP_OK) {
#pragma omp critical(use_fail)
            if (i < fail_at) {
                fail_at = i;
                fail_rc = rc;
                ferr = e;
            }
        }
        if (ntok[i] > (size_t)m->max_len) ntok[i] = (size_t)m->max_len; /* ClipToMaxLength */
    }
    int rc = fail_rc;
    if (rc != MP_OK) {
        mp_error_set(err, rc, "mp_use_embed: text %zu: %s", fail_at, ferr.msg);
    } else {
        size_t cap = CHUNK_TOKENS > (size_t)m->max_len ? CHUNK_TOKENS : (size_t)m->max_len;
        size_t max_s = cap; /* empty texts take no tokens; bound the chunk's text count too */
        use_ws w;
        memset(&w, 0, sizeof w);
        w.x0 = malloc(cap * USE_EMB_DIM * sizeof(float));
        w.a = malloc(cap * USE_HID * sizeof(float));
        w.qkv = malloc(cap * 3 * USE_HID * sizeof(float));
        w.ctx = malloc(cap * USE_HID * sizeof(float));
        w.h = malloc(cap * USE_HID * sizeof(float));
        w.u = malloc(cap * USE_FFN * sizeof(float));
        w.pool = malloc(max_s * USE_HID * sizeof(float));
        w.scratch = malloc((size_t)nt * (size_t)m->max_len * sizeof(float));
        size_t *off = malloc(max_s * sizeof *off);
        if (!w.x0 || !w.a || !w.qkv || !w.ctx || !w.h || !w.u || !w.pool || !w.scratch || !off) {
            rc = mp_error_set(err, MP_ENOMEM, "mp_use_embed: out of memory for work buffers");
        } else {
            size_t i = 0;
            while (i < n) {
                size_t S = 0, T = 0;
                while (i + S < n && S < max_s && T + ntok[i + S] <= cap) {
                    off[S] = T;
                    T += ntok[i + S];
                    S++;
                }
                forward_chunk(m, S, ids + i, ntok + i, off, T, &w, out + i * USE_HID, nt);
                i += S;
            }
        }
        free(w.x0);
        free(w.a);
        free(w.qkv);
        free(w.ctx);
        free(w.h);
        free(w.u);
        free(w.pool);
        free(w.scratch);
        free(off);
    }
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(ntok);
    return rc;
}
