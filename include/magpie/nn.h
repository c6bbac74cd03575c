/* magpie/nn.h: the neural-network core (src/nn/), in llm.c's manner. Row-major float32 arrays; the shape of every
 * array is written beside it: (B,T,C) = batch, time (positions), channels. Three layers, lowest first:
 *   1. kernels: forward/backward pairs (src/nn/kernels.c), each with a naive reference (src/nn/kernels_ref.c);
 *   2. optimisers and schedules (src/nn/optim.c): AdamW, SGD, clipping by global norm, warm-up and decay;
 *   3. a causal transformer encoder (src/nn/transformer.c): one allocation for parameters, one for gradients, one
 *      for activations; forward to the final layer norm's output, backward from its gradient. Losses are kernels
 *      the caller applies to that output, so a model chooses full softmax, sampled softmax or BCE.
 *
 * Conventions. Backward kernels ADD into their gradient outputs (d* +=), so gradients of shared tensors accumulate;
 * callers zero gradients before a step. Kernels never allocate, never fail and return nothing: their preconditions
 * (sizes > 0 unless said, arrays of the stated shapes, no aliasing unless said) are the caller's. Kernels are safe
 * to call from any thread on disjoint outputs; each may use OpenMP threads itself (see "Threads").
 *
 * Threads: OpenMP owns the cores. Kernels split their outer loops over OpenMP threads and call matrix products
 * through mp_nn_gemm, which partitions the output over the same threads and runs its own packed single-threaded
 * product on each tile (never OpenBLAS), so no BLAS pool runs beside libgomp's (src/nn/gemm.c has the measurements).
 * Every kernel has a fixed summation order for a given thread count: the same inputs give the same bits at the
 * same thread count; at one thread a training run is reproducible from its seed. */
#ifndef MAGPIE_NN_H
#define MAGPIE_NN_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"
#include "magpie/modelfile.h"

/* An index that means "no item here" (padding), in inputs and targets. */
#define MP_NN_PAD UINT32_MAX

/* ---- 1. Kernels ------------------------------------------------------------------------------------------- */

/* C (M,N) = alpha * op(A) . op(B) + beta * C, row-major with leading dimensions; op(X) = X, or X^T when trans_X.
 * A is (M,K) or, transposed, (K,M); B is (K,N) or, transposed, (N,K). beta == 0 ignores C's old contents.
 * The same bits at any thread count. Uses about 270 KiB of the stack of the calling thread (and of each OpenMP
 * thread it runs on). */
MP_EXPORT void mp_nn_gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha, const float *A,
                          size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);

/* Rows of a table touched by a sparse gradient (embedding lookups, sampled softmax), so that zeroing and the
 * optimiser visit only those rows. mark (n_rows) is 1 for a listed row; list[0..n) the rows in first-touch order.
 * Owned by the caller: init allocates (MP_ENOMEM), free releases; not thread-safe (one writer). */
typedef struct mp_nn_rows {
    uint8_t *mark;  /* (n_rows) */
    uint32_t *list; /* (n_rows) capacity; n used */
    size_t n, n_rows;
} mp_nn_rows;
MP_EXPORT int mp_nn_rows_init(mp_nn_rows *r, size_t n_rows);
MP_EXPORT void mp_nn_rows_free(mp_nn_rows *r);
MP_EXPORT void mp_nn_rows_add(mp_nn_rows *r, uint32_t row); /* no-op when already listed */
MP_EXPORT void mp_nn_rows_clear(mp_nn_rows *r);             /* unmarks the listed rows: O(n), not O(n_rows) */
MP_EXPORT void mp_nn_rows_all(mp_nn_rows *r);               /* lists every row (a dense gradient) */

/* Embedding lookup. out (N,C) = scale * table[idx[n]] (V,C), or += when accumulate; idx[n] == MP_NN_PAD gives a
 * zero row (or adds nothing). Backward: dtable[idx[n]] += scale * dout[n] for idx[n] != MP_NN_PAD, and each such
 * row is added to `rows` (may be NULL). */
MP_EXPORT void mp_nn_embedding_fwd(float *out, const uint32_t *idx, const float *table, size_t N, size_t C,
                                   float scale, int accumulate);
MP_EXPORT void mp_nn_embedding_bwd(float *dtable, mp_nn_rows *rows, const float *dout, const uint32_t *idx, size_t N,
                                   size_t C, float scale);

/* Learned positions. out (B,T,C) += wpe (T,C) at every position where valid (B,T) is 1. Backward:
 * dwpe[t] += sum over b with valid[b,t] of dout[b,t]. */
MP_EXPORT void mp_nn_position_fwd(float *out, const float *wpe, const uint8_t *valid, size_t B, size_t T, size_t C);
MP_EXPORT void mp_nn_position_bwd(float *dwpe, const float *dout, const uint8_t *valid, size_t B, size_t T, size_t C);

/* Linear layer. out (N,OC) = inp (N,C) . weight (OC,C)^T + bias (OC) (bias may be NULL). Backward:
 * dinp (N,C) += dout (N,OC) . weight; dweight (OC,C) += dout^T . inp; dbias (OC) += sum_n dout[n].
 * dinp, dweight and dbias may each be NULL (not wanted). */
MP_EXPORT void mp_nn_linear_fwd(float *out, const float *inp, const float *weight, const float *bias, size_t N,
                                size_t C, size_t OC);
MP_EXPORT void mp_nn_linear_bwd(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                const float *weight, size_t N, size_t C, size_t OC);

/* Layer norm over the last dimension. out (N,C) = (inp - mean) * rstd * weight + bias, with mean (N) and
 * rstd (N) = 1/sqrt(var + eps) (biased variance, as PyTorch) saved for backward. Backward adds into dinp (N,C),
 * dweight (C), dbias (C). */
MP_EXPORT void mp_nn_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                   const float *bias, size_t N, size_t C, float eps);
MP_EXPORT void mp_nn_layernorm_bwd(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                   const float *weight, const float *mean, const float *rstd, size_t N, size_t C);

/* GELU, tanh approximation (PyTorch's gelu(x, approximate="tanh")). out (n) may alias inp. Backward:
 * dinp (n) += gelu'(inp) * dout. */
MP_EXPORT void mp_nn_gelu_fwd(float *out, const float *inp, size_t n);
MP_EXPORT void mp_nn_gelu_bwd(float *dinp, const float *inp, const float *dout, size_t n);

/* Inverted dropout with a seeded, counter-based mask: element i is kept when hash(seed, i) is at or above p,
 * so the mask depends only on (seed, i), never on threads. out (n) = kept ? inp / (1 - p) : 0, mask (n) 1 = kept;
 * p in [0, 1): p == 0 copies and keeps all. out may alias inp. Backward: dinp (n) += mask ? dout / (1 - p) : 0. */
MP_EXPORT void mp_nn_dropout_fwd(float *out, uint8_t *mask, const float *inp, size_t n, float p, uint64_t seed);
MP_EXPORT void mp_nn_dropout_bwd(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p);

/* Residual add. out (n) = a + b (out may alias a or b). Backward: da += dout; db += dout. */
MP_EXPORT void mp_nn_residual_fwd(float *out, const float *a, const float *b, size_t n);
MP_EXPORT void mp_nn_residual_bwd(float *da, float *db, const float *dout, size_t n);

/* Causal multi-head self-attention with a key padding mask.
 * qkv (B,T,3C): per position the query, key and value, [q (C) | k (C) | v (C)], heads NH, head size hs = C/NH
 * (C % NH == 0). valid (B,T): 1 = a real position. Query t attends to keys s <= t with valid[b,s], with weights
 * softmax_s(q_t . k_s / sqrt(hs)). out (B,T,C) = the weighted values, heads concatenated. att (B,NH,T,T) keeps the
 * weights for backward (0 where masked). A query with no valid key gets out 0 and att 0.
 * Backward: dqkv (B,T,3C) += ; datt (B,NH,T,T) is scratch the kernel overwrites. */
MP_EXPORT void mp_nn_attention_fwd(float *out, float *att, const float *qkv, const uint8_t *valid, size_t B, size_t T,
                                   size_t C, size_t NH);
MP_EXPORT void mp_nn_attention_bwd(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                                   size_t B, size_t T, size_t C, size_t NH);

/* Full-softmax cross-entropy with the output layer tied to a table (the item embeddings):
 *   logits (N,V) = h (N,C) . table (V,C)^T;  loss_n = logsumexp(logits_n) - logits_n[target_n].
 * Rows with target == MP_NN_PAD are skipped. *loss_sum += the sum of loss_n (in double), *count += the rows used.
 * The logits are formed block by block in scratch (scratch_rows, V), never whole (N,V); scratch_rows >= 1 (the
 * rows with a target are gathered into blocks of about scratch_rows; 128 was the fastest measured at V = 12101;
 * the block size changes only the rounding).
 * When dh / dtable are not NULL, adds the gradient of grad_scale * sum_n loss_n (grad_scale = 1/total rows for a
 * mean): dh (N,C) +=, dtable (V,C) += (dense: every row of the table gets a gradient). */
MP_EXPORT void mp_nn_softmax_xent(double *loss_sum, size_t *count, float *dh, float *dtable, const float *h,
                                  const float *table, const uint32_t *targets, size_t N, size_t C, size_t V,
                                  float grad_scale, float *scratch, size_t scratch_rows);

/* Sampled softmax with the log-Q correction (Bengio & Senecal 2008; Yi et al. 2019), for catalogs too large for
 * the full softmax. Row n's candidates are its target and S negatives neg[0..S) shared by all rows, drawn by the
 * caller from a proposal Q with log-probabilities logq (V): logit_j = h_n . table[j] - logq[j];
 * loss_n = logsumexp over candidates - logit_target. A negative equal to the row's target is left out of that
 * row (an accidental hit). Rows with target == MP_NN_PAD are skipped; *loss_sum, *count as above.
 * scratch (N, S+1). Gradients as above, but only the target and negative rows of dtable get one; those rows are
 * added to `rows` (may be NULL). */
MP_EXPORT void mp_nn_sampled_xent(double *loss_sum, size_t *count, float *dh, float *dtable, mp_nn_rows *rows,
                                  const float *h, const float *table, const uint32_t *targets, const uint32_t *neg,
                                  size_t S, const float *logq, size_t N, size_t C, float grad_scale, float *scratch);

/* Binary cross-entropy on logits. loss_n = w_n * (log(1 + e^x_n) - y_n x_n) with y_n = labels[n] in [0,1] and
 * w_n = weights[n] (weights NULL = all 1), computed stably; *loss_sum += the sum. dlogits (may be NULL) +=
 * grad_scale * w_n * (sigmoid(x_n) - y_n). */
MP_EXPORT void mp_nn_bce(double *loss_sum, float *dlogits, const float *logits, const float *labels,
                         const float *weights, size_t n, float grad_scale);

/* Naive references of the kernels above, in double precision, for the tests: the same contracts, written as the
 * definitions with no blocking, threads or fused passes. (src/nn/kernels_ref.c.) */
MP_EXPORT void mp_nn_ref_gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, double alpha, const double *A,
                              size_t lda, const double *B, size_t ldb, double beta, double *C, size_t ldc);
MP_EXPORT void mp_nn_ref_linear_fwd(double *out, const double *inp, const double *weight, const double *bias,
                                    size_t N, size_t C, size_t OC);
MP_EXPORT void mp_nn_ref_linear_bwd(double *dinp, double *dweight, double *dbias, const double *dout,
                                    const double *inp, const double *weight, size_t N, size_t C, size_t OC);
MP_EXPORT void mp_nn_ref_layernorm_fwd(double *out, double *mean, double *rstd, const double *inp,
                                       const double *weight, const double *bias, size_t N, size_t C, double eps);
MP_EXPORT void mp_nn_ref_layernorm_bwd(double *dinp, double *dweight, double *dbias, const double *dout,
                                       const double *inp, const double *weight, const double *mean,
                                       const double *rstd, size_t N, size_t C);
MP_EXPORT void mp_nn_ref_gelu_fwd(double *out, const double *inp, size_t n);
MP_EXPORT void mp_nn_ref_gelu_bwd(double *dinp, const double *inp, const double *dout, size_t n);
MP_EXPORT void mp_nn_ref_attention_fwd(double *out, double *att, const double *qkv, const uint8_t *valid, size_t B,
                                       size_t T, size_t C, size_t NH);
MP_EXPORT void mp_nn_ref_attention_bwd(double *dqkv, const double *dout, const double *qkv, const double *att,
                                       size_t B, size_t T, size_t C, size_t NH);
MP_EXPORT void mp_nn_ref_softmax_xent(double *loss_sum, size_t *count, double *dh, double *dtable, const double *h,
                                      const double *table, const uint32_t *targets, size_t N, size_t C, size_t V,
                                      double grad_scale);
MP_EXPORT void mp_nn_ref_sampled_xent(double *loss_sum, size_t *count, double *dh, double *dtable, const double *h,
                                      const double *table, const uint32_t *targets, const uint32_t *neg, size_t S,
                                      const double *logq, size_t N, size_t C, double grad_scale);
MP_EXPORT void mp_nn_ref_bce(double *loss_sum, double *dlogits, const double *logits, const double *labels,
                             const double *weights, size_t n, double grad_scale);

/* ---- 2. Optimisers and schedules ------------------------------------------------------------------------- */

/* AdamW (Loshchilov & Hutter): decoupled weight decay, bias-corrected moments. step t >= 1 (the count of updates
 * including this one). For each i: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + lr * weight_decay * p. */
typedef struct mp_nn_adamw {
    float lr, beta1, beta2, eps, weight_decay;
} mp_nn_adamw;
/* Dense: params, grads, m, v (n). */
MP_EXPORT void mp_nn_adamw_update(const mp_nn_adamw *o, uint64_t t, float *params, const float *grads, float *m,
                                  float *v, size_t n);
/* Sparse rows of a (n_rows, C) table: only the listed rows move (lazy Adam: a row's moments decay only when it is
 * touched; its bias correction uses the global t). */
MP_EXPORT void mp_nn_adamw_update_rows(const mp_nn_adamw *o, uint64_t t, float *params, const float *grads, float *m,
                                       float *v, const mp_nn_rows *rows, size_t C);
/* SGD with optional momentum (mom may be NULL when momentum == 0): mom = momentum mom + g; p -= lr (mom + wd p). */
MP_EXPORT void mp_nn_sgd_update(float lr, float momentum, float weight_decay, float *params, const float *grads,
                                float *mom, size_t n);

/* Sum of squares, in double: of a dense gradient, and of the listed rows of a (n_rows, C) one. */
MP_EXPORT double mp_nn_sqnorm(const float *x, size_t n);
MP_EXPORT double mp_nn_sqnorm_rows(const float *x, const mp_nn_rows *rows, size_t C);
/* x *= s, dense and rows. */
MP_EXPORT void mp_nn_scale(float *x, size_t n, float s);
MP_EXPORT void mp_nn_scale_rows(float *x, const mp_nn_rows *rows, size_t C, float s);
/* The factor that clips a gradient of global norm sqrt(sqnorm) to max_norm: min(1, max_norm / norm) (1 when
 * max_norm <= 0, meaning no clipping, or the norm is 0). */
MP_EXPORT float mp_nn_clip_factor(double sqnorm, float max_norm);

typedef enum mp_nn_decay { MP_NN_DECAY_NONE, MP_NN_DECAY_LINEAR, MP_NN_DECAY_COSINE } mp_nn_decay;
/* Learning rate at update `step` (0-based) of `total`: linear warm-up from base_lr/warmup to base_lr over the first
 * `warmup` steps, then constant (NONE) or decaying (LINEAR, COSINE) to min_ratio * base_lr at step total-1. */
MP_EXPORT float mp_nn_lr_at(float base_lr, uint64_t step, uint64_t warmup, uint64_t total, mp_nn_decay decay,
                            float min_ratio);

/* ---- 3. The causal transformer encoder -------------------------------------------------------------------- */

/* Pre-LN transformer over sequences of item ids, left-padded with MP_NN_PAD (the newest item at t = T-1):
 *   x = emb_scale * wte[inp] + wpe[t] (+ extra)  at real positions, 0 at padding; x = dropout(x)
 *   per layer l:  x = x + dropout(attproj(attention(qkv(ln1(x)))))
 *                 x = x + dropout(fcproj(gelu(fc(ln2(x)))))
 *   out = lnf(x) (B,T,C); a loss kernel then ties it to wte (the output layer is the input embedding table). */
typedef struct mp_nn_tfm_config {
    uint32_t n_vocab;  /* V: items */
    uint32_t max_len;  /* T: positions */
    uint32_t dim;      /* C */
    uint32_t n_layers; /* L */
    uint32_t n_heads;  /* NH, divides C */
    uint32_t ffn_dim;  /* F: hidden width of the feed-forward part */
    float dropout;     /* p in [0, 1) at the input and after each residual branch */
    float ln_eps;      /* layer norm epsilon */
    float emb_scale;   /* input multiplier of wte (sqrt(C) in SASRec; 1 = none) */
} mp_nn_tfm_config;

/* Parameter tensors, in this order in one allocation (the order of the golden file and of checkpoints). */
#define MP_NN_TFM_N_TENSORS 16
typedef struct mp_nn_tfm_params {
    float *wte;      /* (V, C) */
    float *wpe;      /* (T, C) */
    float *ln1w;     /* (L, C) */
    float *ln1b;     /* (L, C) */
    float *qkvw;     /* (L, 3C, C) */
    float *qkvb;     /* (L, 3C) */
    float *attprojw; /* (L, C, C) */
    float *attprojb; /* (L, C) */
    float *ln2w;     /* (L, C) */
    float *ln2b;     /* (L, C) */
    float *fcw;      /* (L, F, C) */
    float *fcb;      /* (L, F) */
    float *fcprojw;  /* (L, C, F) */
    float *fcprojb;  /* (L, C) */
    float *lnfw;     /* (C) */
    float *lnfb;     /* (C) */
} mp_nn_tfm_params;

/* Activations of one forward pass for a batch of up to max_batch sequences (B <= max_batch). */
typedef struct mp_nn_tfm_acts {
    float *encoded;   /* (B, T, C) x after the input dropout */
    float *ln1;       /* (L, B, T, C) */
    float *ln1_mean;  /* (L, B, T) */
    float *ln1_rstd;  /* (L, B, T) */
    float *qkv;       /* (L, B, T, 3C) */
    float *atty;      /* (L, B, T, C) */
    float *att;       /* (L, B, NH, T, T) */
    float *attproj;   /* (L, B, T, C) after its dropout */
    float *residual2; /* (L, B, T, C) */
    float *ln2;       /* (L, B, T, C) */
    float *ln2_mean;  /* (L, B, T) */
    float *ln2_rstd;  /* (L, B, T) */
    float *fch;       /* (L, B, T, F) */
    float *fch_gelu;  /* (L, B, T, F) */
    float *fcproj;    /* (L, B, T, C) after its dropout */
    float *residual3; /* (L, B, T, C) */
    float *lnf;       /* (B, T, C) the output */
    float *lnf_mean;  /* (B, T) */
    float *lnf_rstd;  /* (B, T) */
    uint8_t *valid;   /* (B, T) */
    uint8_t *masks;   /* dropout masks: input (B,T,C), then per layer attproj and fcproj (L, 2, B, T, C) */
} mp_nn_tfm_acts;

/* The model. Owned by the caller (mp_nn_tfm_create / _load fill it, mp_nn_tfm_free releases everything it owns).
 * Threads: every call on one mp_nn_tfm needs exclusive access (forward writes its activations); to run inference
 * from several threads, give each its own mp_nn_tfm_view over the same weights.
 * Fields are readable; change them only through the calls below (params' values may be written
 * directly: loading, tests). grads and the AdamW moments have the params' layout. */
typedef struct mp_nn_tfm {
    mp_nn_tfm_config cfg;
    size_t n_params;          /* floats in one parameter set */
    float *params_memory;     /* (n_params) */
    mp_nn_tfm_params params;  /* views into params_memory */
    float *grads_memory;      /* (n_params) or NULL before mp_nn_tfm_alloc_train */
    mp_nn_tfm_params grads;
    float *m_memory, *v_memory; /* AdamW moments (n_params) */
    mp_nn_rows wte_rows;      /* rows of grads.wte touched since the last zero_grad */
    size_t max_batch;         /* activations allocated for this many sequences (0: none) */
    float *acts_memory;
    mp_nn_tfm_acts acts;
    float *dacts_memory;      /* backward scratch */
    size_t batch;             /* B of the last forward */
    size_t seq_len;           /* T of the last forward (max_len unless mp_nn_tfm_forward_len) */
    float train_dropout;      /* dropout p the last forward applied (0 at inference) */
    int is_view;              /* 1: params_memory is borrowed (mp_nn_tfm_view) */
    uint64_t step;            /* optimiser updates so far */
} mp_nn_tfm;

/* Validates cfg and allocates the parameters (zeroed). Possible errors: MP_EINVAL (a zero size, heads not dividing
 * dim, dropout outside [0,1), a parameter count that overflows; the message names the field), MP_ENOMEM.
 * On error *m is left freed. */
MP_EXPORT int mp_nn_tfm_create(mp_nn_tfm *m, const mp_nn_tfm_config *cfg, mp_error *err);
MP_EXPORT void mp_nn_tfm_free(mp_nn_tfm *m); /* frees everything; a zeroed struct is a no-op */
/* GPT-2 style initialisation from seed: weights normal(0, 0.02) (wte, wpe, qkvw, attprojw, fcw, fcprojw), layer
 * norm weights 1, biases 0. Deterministic for a seed. */
MP_EXPORT void mp_nn_tfm_init_weights(mp_nn_tfm *m, uint64_t seed);
/* Allocates gradients, AdamW moments and activations for batches of up to max_batch sequences (also for inference:
 * grads = 0 allocates only activations). Idempotent for the same or a smaller batch. Possible errors: MP_ENOMEM,
 * MP_EINVAL (max_batch 0). */
MP_EXPORT int mp_nn_tfm_alloc(mp_nn_tfm *m, size_t max_batch, int grads, mp_error *err);

/* Forward over inp (B,T) item ids (< V, or MP_NN_PAD); extra (B,T,C) is added to the input at real positions
 * (item features; NULL = none). train = 1 applies dropout from dropout_seed. Output in m->acts.lnf (B,T,C).
 * Possible errors: MP_EINVAL (B > max_batch, an id >= V). */
MP_EXPORT int mp_nn_tfm_forward(mp_nn_tfm *m, const uint32_t *inp, const float *extra, size_t B, int train,
                                uint64_t dropout_seed, mp_error *err);
/* The same over the newest T <= max_len positions only: inp (B,T), extra (B,T,C), output (B,T,C); position t of
 * the window uses wpe[max_len - T + t], so the newest item keeps the last position whatever T is. A batch whose
 * sequences are all short runs in a fraction of the time. Possible errors as above, and MP_EINVAL for T == 0 or
 * T > max_len. The backward and the loss then use the same T. */
MP_EXPORT int mp_nn_tfm_forward_len(mp_nn_tfm *m, const uint32_t *inp, const float *extra, size_t B, size_t T,
                                    int train, uint64_t dropout_seed, mp_error *err);
/* Sets gradients to zero: grads.wte only on the rows listed in wte_rows (a loss that gives every row of wte a
 * gradient, such as mp_nn_softmax_xent, calls mp_nn_rows_all(&m->wte_rows) so that all of it is cleared). */
MP_EXPORT void mp_nn_tfm_zero_grad(mp_nn_tfm *m);
/* Backward of the last forward (its B and T), from dlnf (B,T,C) (the loss's gradient at the output; may be overwritten).
 * Adds into m->grads; dextra (B,T,C) += the gradient at `extra` when not NULL. */
MP_EXPORT void mp_nn_tfm_backward(mp_nn_tfm *m, const uint32_t *inp, float *dlnf, float *dextra);
/* One AdamW update of every parameter (wte densely, or only its rows in wte_rows when sparse_wte), after clipping the
 * global gradient norm to max_norm (<= 0: no clipping); increments m->step. Returns the norm before clipping.
 * Layer-norm weights and biases get no weight decay. */
MP_EXPORT float mp_nn_tfm_update(mp_nn_tfm *m, const mp_nn_adamw *opt, float max_norm, int sparse_wte);

/* A view for inference: shares m's parameters (read-only; m must outlive the view and not change while it is used)
 * and owns activations for max_batch sequences, so that several threads can each run forward on their own view.
 * Free with mp_nn_tfm_free, which then frees only what the view owns. Possible errors: MP_ENOMEM, MP_EINVAL. */
MP_EXPORT int mp_nn_tfm_view(mp_nn_tfm *view, const mp_nn_tfm *m, size_t max_batch, mp_error *err);
/* Grows the item table to n_vocab rows (>= cfg.n_vocab): the old rows are kept, the new ones are zero for the
 * caller to fill. Gradients, moments and activations are dropped (a trained model grows between fits). Possible
 * errors: MP_EINVAL (a smaller n_vocab), MP_ENOMEM (then m is unchanged). */
MP_EXPORT int mp_nn_tfm_grow_vocab(mp_nn_tfm *m, uint32_t n_vocab, mp_error *err);

/* Checkpoints inside a model file (modelfile.h carries the version and checksum): the config, then the tensors.
 * load checks the stored config against `expect` (NULL = accept any) and refuses another architecture with
 * MP_ECORRUPT naming the field and both values; MP_ECORRUPT also for a truncated payload; MP_ENOMEM.
 * On success *m is created (parameters only; call mp_nn_tfm_alloc before forward). */
MP_EXPORT void mp_nn_tfm_save(const mp_nn_tfm *m, mp_mf_writer *w);
MP_EXPORT int mp_nn_tfm_load(mp_nn_tfm *m, mp_mf_reader *r, const mp_nn_tfm_config *expect, mp_error *err);

#endif
