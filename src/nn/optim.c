/* Optimisers and schedules of the neural core (include/magpie/nn.h, section 2), and the sparse row sets that
 * embedding gradients touch. Element-wise updates run on OpenMP threads (no reductions); the norms sum per fixed
 * chunk in double and add the chunks in order, so they do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/nn.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define PAR_MIN 32768
#define NORM_CHUNK 65536 /* floats per partial sum of a norm */

static int par_ok(size_t n) {
#ifdef _OPENMP
    return n >= PAR_MIN && !omp_in_parallel() && omp_get_max_threads() > 1;
#else
    (void)n;
    return 0;
#endif
}

int mp_nn_rows_init(mp_nn_rows *r, size_t n_rows) {
    memset(r, 0, sizeof *r);
    r->mark = calloc(n_rows ? n_rows : 1, 1);
    r->list = malloc((n_rows ? n_rows : 1) * sizeof *r->list);
    if (!r->mark || !r->list) {
        mp_nn_rows_free(r);
        return MP_ENOMEM;
    }
    r->n_rows = n_rows;
    return MP_OK;
}

void mp_nn_rows_free(mp_nn_rows *r) {
    if (!r) return;
    free(r->mark);
    free(r->list);
    memset(r, 0, sizeof *r);
}

void mp_nn_rows_add(mp_nn_rows *r, uint32_t row) {
    if (r->mark[row]) return;
    r->mark[row] = 1;
    r->list[r->n++] = row;
}

void mp_nn_rows_clear(mp_nn_rows *r) {
    for (size_t i = 0; i < r->n; i++) r->mark[r->list[i]] = 0;
    r->n = 0;
}

void mp_nn_rows_all(mp_nn_rows *r) {
    memset(r->mark, 1, r->n_rows);
    for (size_t i = 0; i < r->n_rows; i++) r->list[i] = (uint32_t)i;
    r->n = r->n_rows;
}

/* One AdamW step of element i; bc1 = 1 - b1^t, bc2 = 1 - b2^t. */
static inline void adamw_one(const mp_nn_adamw *o, float bc1, float bc2, float *p, float g, float *m, float *v) {
    float mi = o->beta1 * *m + (1.0f - o->beta1) * g;
    float vi = o->beta2 * *v + (1.0f - o->beta2) * g * g;
    *m = mi;
    *v = vi;
    float mhat = mi / bc1, vhat = vi / bc2;
    *p -= o->lr * (mhat / (sqrtf(vhat) + o->eps) + o->weight_decay * *p);
}

/* params, grads, m, v (n) */
void mp_nn_adamw_update(const mp_nn_adamw *o, uint64_t t, float *params, const float *grads, float *m, float *v,
                        size_t n) {
    float bc1 = (float)(1.0 - pow((double)o->beta1, (double)t)), bc2 = (float)(1.0 - pow((double)o->beta2, (double)t));
#pragma omp parallel for schedule(static) if (par_ok(n))
    for (size_t i = 0; i < n; i++) adamw_one(o, bc1, bc2, params + i, grads[i], m + i, v + i);
}

/* params, grads, m, v (n_rows, C); only rows->list[0..n) */
void mp_nn_adamw_update_rows(const mp_nn_adamw *o, uint64_t t, float *params, const float *grads, float *m, float *v,
                             const mp_nn_rows *rows, size_t C) {
    float bc1 = (float)(1.0 - pow((double)o->beta1, (double)t)), bc2 = (float)(1.0 - pow((double)o->beta2, (double)t));
#pragma omp parallel for schedule(static) if (par_ok(rows->n * C))
    for (size_t k = 0; k < rows->n; k++) {
        size_t off = (size_t)rows->list[k] * C;
        for (size_t c = 0; c < C; c++) adamw_one(o, bc1, bc2, params + off + c, grads[off + c], m + off + c, v + off + c);
    }
}

/* params, grads, mom (n) */
void mp_nn_sgd_update(float lr, float momentum, float weight_decay, float *params, const float *grads, float *mom,
                      size_t n) {
#pragma omp parallel for schedule(static) if (par_ok(n))
    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        if (momentum != 0.0f) {
            mom[i] = momentum * mom[i] + g;
            g = mom[i];
        }
        params[i] -= lr * (g + weight_decay * params[i]);
    }
}

static double sq_chunk(const float *x, size_t n) {
    double s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) s[j] += (double)x[i + j] * x[i + j];
    for (; i < n; i++) s[0] += (double)x[i] * x[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* x (n): fixed chunks summed in order */
double mp_nn_sqnorm(const float *x, size_t n) {
    double total = 0.0;
    size_t chunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
#pragma omp parallel for schedule(static) ordered if (par_ok(n))
    for (size_t ch = 0; ch < chunks; ch++) {
        size_t i0 = ch * NORM_CHUNK, len = n - i0 < NORM_CHUNK ? n - i0 : NORM_CHUNK;
        double s = sq_chunk(x + i0, len);
#pragma omp ordered
        total += s;
    }
    return total;
}

/* x (n_rows, C): listed rows in list order */
double mp_nn_sqnorm_rows(const float *x, const mp_nn_rows *rows, size_t C) {
    double total = 0.0;
    for (size_t k = 0; k < rows->n; k++) total += sq_chunk(x + (size_t)rows->list[k] * C, C);
    return total;
}

void mp_nn_scale(float *x, size_t n, float s) {
#pragma omp parallel for schedule(static) if (par_ok(n))
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

void mp_nn_scale_rows(float *x, const mp_nn_rows *rows, size_t C, float s) {
    for (size_t k = 0; k < rows->n; k++) {
        float *r = x + (size_t)rows->list[k] * C;
        for (size_t c = 0; c < C; c++) r[c] *= s;
    }
}

float mp_nn_clip_factor(double sqnorm, float max_norm) {
    if (max_norm <= 0.0f || sqnorm <= 0.0) return 1.0f;
    double norm = sqrt(sqnorm);
    return norm > max_norm ? (float)(max_norm / norm) : 1.0f;
}

/* Warm-up: step s < warmup gives base * (s + 1) / warmup (base/warmup at step 0, base at step warmup - 1).
 * Decay: the fraction f = (s - warmup) / (total - 1 - warmup) runs 0 -> 1 from step warmup to step total - 1;
 * LINEAR gives base (1 - (1 - min_ratio) f), COSINE base (min_ratio + (1 - min_ratio) (1 + cos(pi f)) / 2). */
float mp_nn_lr_at(float base_lr, uint64_t step, uint64_t warmup, uint64_t total, mp_nn_decay decay, float min_ratio) {
    if (step < warmup) return base_lr * (float)(step + 1) / (float)warmup;
    if (decay == MP_NN_DECAY_NONE || total <= warmup + 1) return base_lr;
    double f = (double)(step - warmup) / (double)(total - 1 - warmup);
    if (f > 1.0) f = 1.0;
    double r = min_ratio;
    if (decay == MP_NN_DECAY_LINEAR) return (float)(base_lr * (1.0 - (1.0 - r) * f));
    return (float)(base_lr * (r + (1.0 - r) * 0.5 * (1.0 + cos(3.14159265358979323846 * f))));
}
