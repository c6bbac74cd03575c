/* magpie/factors.h: latent-factor models' shared parts (ALS, BPR, biased MF): the factor matrices, scoring,
 * batched top-N through sgemm, item-item similarity, and saving/loading them in model files.
 * score(u, i) = user[u] . item[i] (+ global_bias + user_bias[u] + item_bias[i] when biases exist). */
#ifndef MAGPIE_FACTORS_H
#define MAGPIE_FACTORS_H

#include <stdint.h>

#include "magpie/dataset.h"
#include "magpie/modelfile.h"
#include "magpie/rng.h"

typedef struct mp_factors {
    uint32_t n_users, n_items, k;
    float *user;       /* (n_users, k) row-major, owned */
    float *item;       /* (n_items, k) row-major, owned */
    float *user_bias;  /* [n_users] or NULL */
    float *item_bias;  /* [n_items] or NULL */
    double global_bias;
} mp_factors;

/* Allocates zeroed factors (and biases when with_bias). Free with mp_factors_free. */
MP_EXPORT int mp_factors_alloc(mp_factors *f, uint32_t n_users, uint32_t n_items, uint32_t k, int with_bias);
MP_EXPORT void mp_factors_free(mp_factors *f); /* frees the arrays; zeroed structs are fine */
/* Fills user and item factors with N(0, scale^2) from rng (biases stay 0). */
MP_EXPORT void mp_factors_init_normal(mp_factors *f, mp_rng *rng, float scale);

/* scores[i] = uvec . item[i] (+ item_bias[i] + global_bias) for all items; uvec has k floats. User bias is left
 * out (it does not change a ranking); predict adds it. */
MP_EXPORT void mp_factors_score(const mp_factors *f, const float *uvec, float *scores);
/* Full prediction for one pair, biases included. */
MP_EXPORT double mp_factors_predict(const mp_factors *f, uint32_t user, uint32_t item);

/* Top-n items for each of `users` [n_users_q] (internal ids), excluding items in `exclude` (a user x item CSR,
 * e.g. the training matrix; may be NULL), scored in blocks through sgemm and ranked with mp_topk.
 * out_items / out_scores are (n_users_q, n) row-major, caller-allocated; rows with fewer candidates are padded
 * with UINT32_MAX / -INFINITY. Uses up to n_threads threads (0: all cores). */
MP_EXPORT int mp_factors_topn(const mp_factors *f, const uint32_t *users, size_t n_users_q, const mp_csr *exclude,
                              size_t n, uint32_t *out_items, float *out_scores, int n_threads, mp_error *err);

/* The n items most similar to `item` by cosine of item factors (the item itself excluded). *n_out set. */
MP_EXPORT int mp_factors_similar(const mp_factors *f, uint32_t item, size_t n, uint32_t *out_items, float *out_scores,
                                 size_t *n_out, mp_error *err);

/* Appends / reads the factors in a model file payload (shape first, then arrays; the reader checks shapes). */
MP_EXPORT void mp_factors_save(const mp_factors *f, mp_mf_writer *w);
MP_EXPORT int mp_factors_load(mp_factors *f, mp_mf_reader *r, mp_error *err);

/* ---- Implicit-feedback least squares (Hu, Koren and Volinsky 2008), one row at a time ----
 * For one user (or item) with observed columns idx[nnz] and values val[nnz] (r > 0) against fixed factors Y:
 *   confidence c_j = 1 + alpha * r_j, preference p_j = 1, A = YtY + sum_j (c_j - 1) y_j y_j^T + reg I,
 *   x = A^{-1} sum_j c_j y_j.
 * Only the row's non-zeros are touched; YtY (the Gram of all of Y) carries the rest. The row functions are
 * pure: the same inputs give bitwise the same x, whatever thread runs them. On x86-64 CPUs with AVX2 + FMA and k a
 * multiple of 8 they use vector kernels (chosen at run time), otherwise plain C; the two agree to rounding. */
typedef struct mp_ials_problem {
    const float *Y;   /* (n, k) fixed factors, row-major, leading dimension k */
    const float *YtY; /* (k, k) Gram of Y without regularisation, full */
    uint32_t k;
    float alpha;      /* confidence slope, >= 0 */
    float reg;        /* L2 regularisation, >= 0 (> 0 keeps A positive definite) */
} mp_ials_problem;

/* Doubles of scratch (caller-allocated, per thread) that the exact solve and explain need for k factors. */
MP_EXPORT size_t mp_ials_work_doubles(uint32_t k);
/* Exact solve by Cholesky in double precision; x (k) is overwritten. An empty row gives x = 0. work has
 * mp_ials_work_doubles(k) doubles. MP_ERANGE if A is not positive definite (reg 0 and too few observations). */
MP_EXPORT int mp_ials_solve(const mp_ials_problem *p, const uint32_t *idx, const float *val, size_t nnz, float *x,
                            double *work);
/* Conjugate gradient (Takacs et al. 2011): `steps` iterations warm-started from x (k), updated in place.
 * work has 3 * k floats. */
MP_EXPORT void mp_ials_cg(const mp_ials_problem *p, const uint32_t *idx, const float *val, size_t nnz, float *x,
                          unsigned steps, float *work);
/* Item contributions to an exact-solve score (the paper's section 5): with W = A^{-1},
 *   score = target^T x = sum_j c_j (target^T W y_j),
 * writes contrib[j] = c_j * target^T W y_j for each of the row's nnz columns and returns MP_OK; *score gets their
 * sum. work as for mp_ials_solve. */
MP_EXPORT int mp_ials_explain(const mp_ials_problem *p, const uint32_t *idx, const float *val, size_t nnz,
                              const float *target, double *contrib, double *score, double *work);

#endif
