/* Naive references of the neural core's kernels, in double precision: each written as its definition in
 * include/magpie/nn.h, with no blocking, threads or fused passes. The tests check these against finite
 * differences and the fast float kernels against these. */
#include <math.h>
#include <string.h>

#include "magpie/nn.h"

/* C (M,N) = alpha op(A) op(B) + beta C */
void mp_nn_ref_gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, double alpha, const double *A, size_t lda,
                    const double *B, size_t ldb, double beta, double *C, size_t ldc) {
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double s = 0.0;
            for (size_t k = 0; k < K; k++)
                s += (trans_a ? A[k * lda + i] : A[i * lda + k]) * (trans_b ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * ldc + j] = alpha * s + (beta == 0.0 ? 0.0 : beta * C[i * ldc + j]);
        }
}

/* out (N,OC), inp (N,C), weight (OC,C), bias (OC) */
void mp_nn_ref_linear_fwd(double *out, const double *inp, const double *weight, const double *bias, size_t N,
                          size_t C, size_t OC) {
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            for (size_t c = 0; c < C; c++) s += inp[n * C + c] * weight[o * C + c];
            out[n * OC + o] = s;
        }
}

void mp_nn_ref_linear_bwd(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                          const double *weight, size_t N, size_t C, size_t OC) {
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < OC; o++) {
            double g = dout[n * OC + o];
            for (size_t c = 0; c < C; c++) {
                if (dinp) dinp[n * C + c] += g * weight[o * C + c];
                if (dweight) dweight[o * C + c] += g * inp[n * C + c];
            }
            if (dbias) dbias[o] += g;
        }
}

/* out (N,C), mean (N), rstd (N), inp (N,C), weight (C), bias (C) */
void mp_nn_ref_layernorm_fwd(double *out, double *mean, double *rstd, const double *inp, const double *weight,
                             const double *bias, size_t N, size_t C, double eps) {
    for (size_t n = 0; n < N; n++) {
        const double *x = inp + n * C;
        double m = 0.0, v = 0.0;
        for (size_t c = 0; c < C; c++) m += x[c];
        m /= (double)C;
        for (size_t c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        v /= (double)C;
        double r = 1.0 / sqrt(v + eps);
        for (size_t c = 0; c < C; c++) out[n * C + c] = (x[c] - m) * r * weight[c] + bias[c];
        mean[n] = m;
        rstd[n] = r;
    }
}

/* y = w xhat + b with xhat = (x - m) r: dxhat = w dout; dx = r (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) */
void mp_nn_ref_layernorm_bwd(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                             const double *weight, const double *mean, const double *rstd, size_t N, size_t C) {
    for (size_t n = 0; n < N; n++) {
        const double *x = inp + n * C, *g = dout + n * C;
        double a = 0.0, b = 0.0;
        for (size_t c = 0; c < C; c++) {
            double xhat = (x[c] - mean[n]) * rstd[n];
            a += weight[c] * g[c];
            b += weight[c] * g[c] * xhat;
            dweight[c] += g[c] * xhat;
            dbias[c] += g[c];
        }
        a /= (double)C;
        b /= (double)C;
        for (size_t c = 0; c < C; c++) {
            double xhat = (x[c] - mean[n]) * rstd[n];
            dinp[n * C + c] += rstd[n] * (weight[c] * g[c] - a - xhat * b);
        }
    }
}

static const double GK = 0.79788456080286535588; /* sqrt(2/pi) */

void mp_nn_ref_gelu_fwd(double *out, const double *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        out[i] = 0.5 * x * (1.0 + tanh(GK * (x + 0.044715 * x * x * x)));
    }
}

void mp_nn_ref_gelu_bwd(double *dinp, const double *inp, const double *dout, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = inp[i], th = tanh(GK * (x + 0.044715 * x * x * x));
        double d = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * GK * (1.0 + 3.0 * 0.044715 * x * x);
        dinp[i] += d * dout[i];
    }
}

/* out (B,T,C), att (B,NH,T,T), qkv (B,T,3C), valid (B,T) */
void mp_nn_ref_attention_fwd(double *out, double *att, const double *qkv, const uint8_t *valid, size_t B, size_t T,
                             size_t C, size_t NH) {
    size_t hs = C / NH;
    double scale = 1.0 / sqrt((double)hs);
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++)
            for (size_t t = 0; t < T; t++) {
                double *a = att + ((b * NH + h) * T + t) * T;
                const double *q = qkv + (b * T + t) * 3 * C + h * hs;
                double mx = -INFINITY;
                for (size_t s = 0; s < T; s++) {
                    a[s] = 0.0;
                    if (s > t || !valid[b * T + s]) continue;
                    const double *k = qkv + (b * T + s) * 3 * C + C + h * hs;
                    double d = 0.0;
                    for (size_t i = 0; i < hs; i++) d += q[i] * k[i];
                    a[s] = d * scale;
                    if (a[s] > mx) mx = a[s];
                }
                double sum = 0.0;
                for (size_t s = 0; s <= t; s++)
                    if (valid[b * T + s]) sum += exp(a[s] - mx);
                for (size_t s = 0; s <= t; s++) a[s] = valid[b * T + s] ? exp(a[s] - mx) / sum : 0.0;
                double *o = out + (b * T + t) * C + h * hs;
                for (size_t i = 0; i < hs; i++) {
                    double y = 0.0;
                    for (size_t s = 0; s <= t; s++) y += a[s] * qkv[(b * T + s) * 3 * C + 2 * C + h * hs + i];
                    o[i] = y;
                }
            }
}

void mp_nn_ref_attention_bwd(double *dqkv, const double *dout, const double *qkv, const double *att, size_t B,
                             size_t T, size_t C, size_t NH) {
    size_t hs = C / NH;
    double scale = 1.0 / sqrt((double)hs);
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++)
            for (size_t t = 0; t < T; t++) {
                const double *a = att + ((b * NH + h) * T + t) * T;
                const double *g = dout + (b * T + t) * C + h * hs;
                double dot_ad = 0.0; /* sum_s att[s] (dout_t . v_s) */
                for (size_t s = 0; s <= t; s++) {
                    const double *v = qkv + (b * T + s) * 3 * C + 2 * C + h * hs;
                    double d = 0.0;
                    for (size_t i = 0; i < hs; i++) {
                        d += g[i] * v[i];
                        dqkv[(b * T + s) * 3 * C + 2 * C + h * hs + i] += a[s] * g[i];
                    }
                    dot_ad += a[s] * d;
                }
                for (size_t s = 0; s <= t; s++) {
                    const double *v = qkv + (b * T + s) * 3 * C + 2 * C + h * hs;
                    double d = 0.0;
                    for (size_t i = 0; i < hs; i++) d += g[i] * v[i];
                    double dpre = a[s] * (d - dot_ad) * scale;
                    for (size_t i = 0; i < hs; i++) {
                        dqkv[(b * T + t) * 3 * C + h * hs + i] += dpre * qkv[(b * T + s) * 3 * C + C + h * hs + i];
                        dqkv[(b * T + s) * 3 * C + C + h * hs + i] += dpre * qkv[(b * T + t) * 3 * C + h * hs + i];
                    }
                }
            }
}

/* logits_v = h . table_v; loss = logsumexp - logit_target; d logit_v = gs (p_v - [v == target]) */
void mp_nn_ref_softmax_xent(double *loss_sum, size_t *count, double *dh, double *dtable, const double *h,
                            const double *table, const uint32_t *targets, size_t N, size_t C, size_t V,
                            double grad_scale) {
    for (size_t n = 0; n < N; n++) {
        if (targets[n] == MP_NN_PAD) continue;
        double mx = -INFINITY, sum = 0.0, lt = 0.0;
        for (size_t v = 0; v < V; v++) {
            double l = 0.0;
            for (size_t c = 0; c < C; c++) l += h[n * C + c] * table[v * C + c];
            if (l > mx) mx = l;
            if (v == targets[n]) lt = l;
        }
        for (size_t v = 0; v < V; v++) {
            double l = 0.0;
            for (size_t c = 0; c < C; c++) l += h[n * C + c] * table[v * C + c];
            sum += exp(l - mx);
        }
        *loss_sum += log(sum) + mx - lt;
        (*count)++;
        for (size_t v = 0; v < V; v++) {
            double l = 0.0;
            for (size_t c = 0; c < C; c++) l += h[n * C + c] * table[v * C + c];
            double g = grad_scale * (exp(l - mx) / sum - (v == targets[n] ? 1.0 : 0.0));
            for (size_t c = 0; c < C; c++) {
                if (dh) dh[n * C + c] += g * table[v * C + c];
                if (dtable) dtable[v * C + c] += g * h[n * C + c];
            }
        }
    }
}

/* candidates: the target (j = S below), then neg[j] != target; logit = h . table_row - logq_row */
static double ref_logit(const double *hn, const double *table, const double *logq, uint32_t row, size_t C) {
    double d = 0.0;
    for (size_t c = 0; c < C; c++) d += hn[c] * table[(size_t)row * C + c];
    return d - logq[row];
}

void mp_nn_ref_sampled_xent(double *loss_sum, size_t *count, double *dh, double *dtable, const double *h,
                            const double *table, const uint32_t *targets, const uint32_t *neg, size_t S,
                            const double *logq, size_t N, size_t C, double grad_scale) {
    for (size_t n = 0; n < N; n++) {
        uint32_t tg = targets[n];
        if (tg == MP_NN_PAD) continue;
        const double *hn = h + n * C;
        double lt = ref_logit(hn, table, logq, tg, C), mx = lt, sum = 0.0;
        for (size_t j = 0; j < S; j++)
            if (neg[j] != tg && ref_logit(hn, table, logq, neg[j], C) > mx) mx = ref_logit(hn, table, logq, neg[j], C);
        sum = exp(lt - mx);
        for (size_t j = 0; j < S; j++)
            if (neg[j] != tg) sum += exp(ref_logit(hn, table, logq, neg[j], C) - mx);
        *loss_sum += log(sum) + mx - lt;
        (*count)++;
        for (size_t j = 0; j <= S; j++) {
            uint32_t row = j == S ? tg : neg[j];
            if (j < S && row == tg) continue;
            double g = grad_scale * (exp(ref_logit(hn, table, logq, row, C) - mx) / sum - (j == S ? 1.0 : 0.0));
            for (size_t c = 0; c < C; c++) {
                if (dh) dh[n * C + c] += g * table[(size_t)row * C + c];
                if (dtable) dtable[(size_t)row * C + c] += g * hn[c];
            }
        }
    }
}

void mp_nn_ref_bce(double *loss_sum, double *dlogits, const double *logits, const double *labels,
                   const double *weights, size_t n, double grad_scale) {
    for (size_t i = 0; i < n; i++) {
        double x = logits[i], y = labels[i], w = weights ? weights[i] : 1.0;
        double sp = x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); /* log(1 + e^x) */
        *loss_sum += w * (sp - y * x);
        if (dlogits) dlogits[i] += grad_scale * w * (1.0 / (1.0 + exp(-x)) - y);
    }
}
