/* src/models/bpr_internal.h: the pieces of the "bpr" and "mf" models that unit tests call directly: the loss and
 * gradient of one BPR triple and the in-place SGD step used by training, and the loss and gradient of one explicit
 * rating under biased MF. Not part of the public API. */
#ifndef MAGPIE_MODELS_BPR_INTERNAL_H
#define MAGPIE_MODELS_BPR_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "models/item_titles.h"
#include "magpie/factors.h"
#include "magpie/model.h"

/* BPR loss of one (user u, positive i, negative j) triple, in double precision:
 *   x   = (bi - bj) + pu . (qi - qj)
 *   L   = -log sigmoid(x) + reg/2 (|pu|^2 + |qi|^2 + |qj|^2) + reg_bias/2 (bi^2 + bj^2)
 * pu, qi, qj: [k]. bi, bj: the item biases, or NULL both when the model has none (their terms vanish). */
double mp_bprmf_triple_loss(const float *pu, const float *qi, const float *qj, const float *bi, const float *bj,
                            size_t k, double reg, double reg_bias);

/* Gradient of mp_bprmf_triple_loss with respect to pu, qi, qj ([k] each, written) and bi, bj (written when not
 * NULL). The reference for mp_bprmf_triple_step and for the finite-difference test. */
void mp_bprmf_triple_grad(const float *pu, const float *qi, const float *qj, const float *bi, const float *bj,
                          size_t k, double reg, double reg_bias, float *g_pu, float *g_qi, float *g_qj, float *g_bi,
                          float *g_bj);

/* The step training takes: every parameter moves by -lr * its gradient (all from the values before the step), in
 * single precision, in place. pu, qi and qj must not overlap. bi, bj may be NULL (both). Returns x before the
 * step (so callers can count correctly ordered pairs). */
float mp_bprmf_triple_step(float *pu, float *qi, float *qj, float *bi, float *bj, size_t k, float lr, float reg,
                           float reg_bias);

/* Squared-error loss of one rating under biased MF, in double precision:
 *   e = r - (mu + bu + bi + pu . qi)
 *   L = e^2 / 2 + reg/2 (|pu|^2 + |qi|^2) + reg_bias/2 (bu^2 + bi^2) */
double mp_bprmf_rating_loss(double r, double mu, float bu, float bi, const float *pu, const float *qi, size_t k,
                            double reg, double reg_bias);
/* Its gradient with respect to pu, qi ([k] each), bu and bi. */
void mp_bprmf_rating_grad(double r, double mu, float bu, float bi, const float *pu, const float *qi, size_t k,
                          double reg, double reg_bias, float *g_pu, float *g_qi, float *g_bu, float *g_bi);

/* Threads to use: the parameter if set, else the training data's n_threads, else all cores (data may be NULL). */
int mp_bprmf_threads(uint32_t param, const mp_train_data *data);
/* Index into ctx->history of the item whose factor row has the largest dot product with `item`'s (the item itself,
 * items outside f and dislikes/returns skipped), or -1. */
long mp_bprmf_closest_history(const mp_factors *f, const mp_user_ctx *ctx, uint32_t item);

/* Retrieval vectors of factors with biases (inner-product search, mp_model_ops.item_vectors): with item biases or a
 * global bias, the rows are [q_i, item_bias[i] + global_bias] ((n_items, k + 1)) and the query is [p_u, 1], so that
 * query . row == mp_factors_score's score; without biases they are the item factors themselves (no copy).
 * The augmented copy is a cache owned by the model: built on the first item_vectors call (published with an atomic
 * compare-and-swap, so concurrent first calls are safe; the loser frees its copy), kept current by the model's
 * update (mp_bprmf_aug_refresh) and freed at fit, load and release (mp_bprmf_aug_free). It costs n_items * (k + 1)
 * floats, only in processes that ask for retrieval vectors (the server, to build its ANN index). */
typedef _Atomic(float *) mp_bprmf_aug;
/* 1 when f needs the extra bias dimension. */
int mp_bprmf_aug_needed(const mp_factors *f);
int mp_bprmf_item_vectors(const mp_factors *f, mp_bprmf_aug *aug, const float **vecs, uint32_t *n, uint32_t *dim,
                          mp_error *err);
/* After an update that grew f or changed item rows >= first_changed: resizes an existing copy to f->n_items rows and
 * rewrites rows >= first_changed. No-op when no copy exists. Exclusive use of the model (update) required. */
int mp_bprmf_aug_refresh(const mp_factors *f, mp_bprmf_aug *aug, uint32_t first_changed);
void mp_bprmf_aug_free(mp_bprmf_aug *aug);
/* out (k or k + 1 floats, see above) = the query for user vector pu (k). */
void mp_bprmf_query(const mp_factors *f, const float *pu, float *out);

/* Item titles (kept, saved and loaded with models/item_titles.h) name items in reasons. */
/* `"Title"` or `item #id` into buf. */
void mp_bprmf_item_label(char *const *titles, uint32_t item, char *buf, size_t cap);
/* "bought" for a purchase, "rated" for a rating: how a reason names what the user did. Static storage. */
const char *mp_bprmf_verb(int type);

#endif
