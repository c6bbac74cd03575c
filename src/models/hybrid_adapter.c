/* hybrid_adapter.c: the text-embedding adapter. When the training data carries item text embeddings, ridge
 * regressions from the embedding to the warm items' trained vectors (q: k + 1 with the bias, and the input side's
 * k) map the language model's space into the behaviour space (a linear head on the encoder, fitted once after
 * training); an item without events then takes A x_i in place of (or averaged with) its feature vector. Also the
 * rule of when an item's content vectors take the adapter at all (hyb_content_from_list), which is where the
 * adapter's measured harm on featured cold items is avoided. */
#include <stdlib.h>
#include <string.h>

#include "magpie/linalg.h"
#include "models/hybrid_internal.h"

void hyb_adapter_apply(const float *A, uint32_t rows, uint32_t D, const float *x, float *out) {
    for (uint32_t d = 0; d < rows; d++) {
        const float *row = A + (size_t)d * D;
        float s = 0;
        for (uint32_t j = 0; j < D; j++)
            s += row[j] * x[j];
        out[d] += s;
    }
}

void hyb_content_from_list(hybrid *h, uint32_t i, const uint32_t *idx, const float *w, size_t n, const float *emb) {
    const uint32_t k = h->k, K1 = k + 1;
    float *c = h->content_vec + (size_t)i * K1, *ci = h->in_content + (size_t)i * k;
    hyb_feat_sum(h->feat, K1, idx, w, n, c);
    hyb_feat_sum(h->in_feat, k, idx, w, n, ci);
    /* Without id vectors (id_dropout=1) every item's vector is its content part, and the adapter only predicts that
     * part from the embedding: mixing that shrunk prediction into items without events would move them, and them
     * only, toward the mean (on Games cold items it cut Recall@20 from 0.074 to 0.050), so it then serves only
     * items without any content features. */
    const int adapt = h->p.id_dropout < 1 || n == 0;
    if (adapt && h->adapter && emb && !h->has_id[i] && nonzero(emb, h->emb_dim)) {
        /* the adapter predicts a warm item's whole vector: an item with features averages the two predictions */
        const float keep = n ? 0.5f : 0.0f, add = n ? 0.5f : 1.0f;
        float *tmp = calloc(K1, sizeof *tmp);
        if (!tmp) return;
        hyb_adapter_apply(h->adapter, K1, h->emb_dim, emb, tmp);
        for (uint32_t d = 0; d < K1; d++)
            c[d] = keep * c[d] + add * tmp[d];
        memset(tmp, 0, K1 * sizeof *tmp);
        hyb_adapter_apply(h->adapter_in, k, h->emb_dim, emb, tmp);
        for (uint32_t d = 0; d < k; d++)
            ci[d] = keep * ci[d] + add * tmp[d];
        free(tmp);
    }
}

/* Ridge regressions from the warm items' text embeddings X (n_warm, D) to their id vectors: out (rows, D) with
 * (X^T X + lambda I) a_d = X^T t_d for every output d, t_d the d-th column of target (n_items, ld). */
static int ridge_adapter(const hybrid *h, const float *X, const uint32_t *rows_of, size_t nw, uint32_t D,
                         const double *Lfac, const float *target, uint32_t rows, uint32_t ld, float *out) {
    double *b = malloc((size_t)D * sizeof *b);
    if (!b) return MP_ENOMEM;
    for (uint32_t d = 0; d < rows; d++) {
        memset(b, 0, (size_t)D * sizeof *b);
        for (size_t r = 0; r < nw; r++) {
            const double t = target[(size_t)rows_of[r] * ld + d];
            const float *x = X + r * D;
            for (uint32_t j = 0; j < D; j++)
                b[j] += t * x[j];
        }
        mp_cholesky_solve_factored(Lfac, b, D);
        for (uint32_t j = 0; j < D; j++)
            out[(size_t)d * D + j] = (float)b[j];
    }
    (void)h;
    free(b);
    return MP_OK;
}

int hyb_fit_adapter(hybrid *h, const float *emb, uint32_t D, mp_error *err) {
    const uint32_t k = h->k, K1 = k + 1;
    size_t nw = 0;
    for (uint32_t w = 0; w < h->n_warm; w++)
        if (nonzero(emb + (size_t)h->warm[w] * D, D)) nw++;
    if (nw == 0) return MP_OK;
    float *X = malloc(nw * D * sizeof *X);
    uint32_t *rows_of = malloc(nw * sizeof *rows_of);
    float *G = malloc((size_t)D * D * sizeof *G);
    double *A = malloc((size_t)D * D * sizeof *A);
    h->adapter = calloc((size_t)K1 * D, sizeof *h->adapter);
    h->adapter_in = calloc((size_t)k * D, sizeof *h->adapter_in);
    int rc = MP_OK;
    if (!X || !rows_of || !G || !A || !h->adapter || !h->adapter_in) {
        rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory fitting the embedding adapter (%u dimensions)", D);
        goto done;
    }
    size_t r = 0;
    for (uint32_t w = 0; w < h->n_warm; w++) {
        const float *x = emb + (size_t)h->warm[w] * D;
        if (!nonzero(x, D)) continue;
        memcpy(X + r * D, x, D * sizeof *x);
        rows_of[r++] = h->warm[w];
    }
    mp_gram(X, nw, D, D, G);
    for (size_t x = 0; x < (size_t)D * D; x++)
        A[x] = G[x];
    for (uint32_t j = 0; j < D; j++)
        A[(size_t)j * D + j] += h->p.adapter_reg;
    if (mp_cholesky_factor(A, D) != MP_OK) {
        rc = mp_error_set(err, MP_ERANGE,
                          "hybrid: the embedding adapter's system is not positive definite; "
                          "raise adapter_reg");
        goto done;
    }
    if (ridge_adapter(h, X, rows_of, nw, D, A, h->item_vec, K1, K1, h->adapter) != MP_OK ||
        ridge_adapter(h, X, rows_of, nw, D, A, h->in_vec, k, k, h->adapter_in) != MP_OK) {
        rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory fitting the embedding adapter");
        goto done;
    }
    h->emb_dim = D;
done:
    if (rc != MP_OK) {
        free(h->adapter);
        free(h->adapter_in);
        h->adapter = h->adapter_in = NULL;
    }
    free(X);
    free(rows_of);
    free(G);
    free(A);
    return rc;
}
