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

#endif
