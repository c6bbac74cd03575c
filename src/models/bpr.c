/* "bpr": matrix factorisation for implicit feedback trained by SGD on sampled (user, positive, negative) triples.
 *
 * Losses (loss=):
 *   bpr   Rendle et al. 2009: maximise log sigmoid(x_uij), x_uij = b_i - b_j + p_u . (q_i - q_j).
 *   warp  Weston et al. 2011: for a positive (u, i), draw negatives until one violates the margin
 *         (x_uj > x_ui - 1), then take a hinge step weighted by log(floor((n_items - 1) / trials)), which
 *         approximates the rank of i and so weighs mistakes at the top of the list most. The weight is divided
 *         by log(n_items - 1) (its value at the first trial) so one learning rate suits both losses. Each positive
 *         may cost up to max_trials scored negatives, so WARP is several times slower per sample than BPR.
 * Negatives (sampling=):
 *   uniform   every item equally likely;
 *   pop       proportional to popularity (an item of a random training pair), which puts more mass on the
 *             hard, popular negatives;
 *   adaptive  draw `candidates` items uniformly and keep the one the model currently scores highest: a cheap
 *             rank-aware sampler in the spirit of Rendle & Freudenthaler 2014 (informative negatives are the
 *             ones ranked high).
 * Positives are the non-zero pairs of the training matrix, drawn uniformly with replacement; an epoch is
 * samples_per_epoch draws (default: one per pair). With verify_negatives=1 a drawn negative the user has in the
 * training matrix is redrawn.
 *
 * Threads: Hogwild (Recht et al. 2011). Each thread draws its own samples with its own generator seeded from
 * (seed, thread) and writes the shared factor rows without locks. With threads=1 a seed gives a bitwise
 * identical model; with more threads the interleaving of writes is up to the scheduler, so runs differ in the
 * last bits (and the model depends on the thread count). Partitioning users and items between threads would
 * make it reproducible but serialises the popular items, so it is not done.
 *
 * The inner loop is single precision, vectorised (omp simd; one clone per x86-64 level is picked at run time),
 * and keeps BPR_AHEAD samples in flight: a sample's pair index is drawn two stages ahead and its three factor rows
 * are prefetched one stage ahead, so the cache misses of the next samples overlap the arithmetic of this one.
 *
 * Early stopping: with validation events in the training data, NDCG@10 on them is measured every eval_every
 * epochs (default: a tenth of the epochs); training stops after `patience` evaluations without improvement and
 * the best epoch's factors are kept.
 *
 * Fold-in (update; scoring a user the model has not seen, or whose history holds more distinct items than their
 * vector was trained on, from that history): fold_in_steps passes of SGD over the user's items, each against a
 * uniform negative, moving only the user's vector (and the vectors of items new to the model, which start small
 * and random). Items already in the model keep their vectors. The model does
 * not store training histories, so an update folds in the events it is given, starting from the user's current
 * vector.
 *
 * Retrieval vectors (item_vectors / query_vector, for an ANN index): [q_i, b_i] and [p_u, 1] (see bpr_internal.h),
 * p_u being the vector score_all would use. Forgetting a user zeroes its vector, which is also the mark of "no
 * vector": a later request with that id folds in from the history it brings. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/factors.h"
#include "magpie/linalg.h"
#include "magpie/model.h"
#include "magpie/trainset.h"
#include "models/bpr_internal.h"
#include "models/params.h"

/* Version 2: epochs may be "auto" (its flag follows it as a u32); version 1 files have no flag. */
#define BPR_FILE_VERSION 2
#define BPR_MAX_FACTORS 4096
#define BPR_MAX_CANDIDATES 64
#define BPR_MAX_TRIALS 100000
#define BPR_AHEAD 8   /* samples between prefetching a sample's rows and using them */
#define BPR_RING 32   /* ring of samples in flight (> 2 * BPR_AHEAD, a power of two) */
#define BPR_REDRAWS 32 /* negative redraws before accepting a positive as negative (dense users) */

/* (not under sanitizers: ifunc resolvers run before their runtimes start) */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) &&           \
    !defined(__SANITIZE_THREAD__)
#define BPR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BPR_CLONES
#endif

enum { SAMPLING_UNIFORM, SAMPLING_POP, SAMPLING_ADAPTIVE };
enum { LOSS_BPR, LOSS_WARP };

static const char *const sampling_names[] = {"uniform", "pop", "adaptive"};
static const char *const loss_names[] = {"bpr", "warp"};

typedef struct bpr_params {
    uint32_t factors;         /* k */
    uint32_t epochs;          /* maximum passes (0 with epochs_auto) */
    int epochs_auto;          /* 1: the fit derives the epochs from the catalog (bpr_epochs) */
    double learning_rate;     /* SGD step */
    double regularization;    /* L2 on factor rows, applied at every touch */
    double bias_regularization; /* L2 on item biases */
    int item_bias;            /* 1: learn an item bias */
    uint64_t seed;
    uint32_t threads;         /* 0: the training data's n_threads (or all cores) */
    int sampling;             /* SAMPLING_* */
    uint32_t candidates;      /* adaptive: negatives drawn per sample */
    int loss;                 /* LOSS_* */
    uint32_t max_trials;      /* warp: negatives tried per positive */
    uint64_t samples_per_epoch; /* 0: one per training pair */
    double init_scale;        /* factors start N(0, init_scale^2 / k) */
    uint32_t patience;        /* early stopping: evaluations without improvement */
    uint32_t eval_every;      /* epochs between validation evaluations */
    uint32_t fold_in_steps;   /* passes over a user's items when folding in */
    int verify_negatives;     /* 1: redraw negatives the user has */
} bpr_params;

typedef struct bpr {
    bpr_params p;
    /* fitted state */
    mp_factors f;        /* user (n_users, k), item (n_items, k), item_bias when p.item_bias; owned */
    char **titles;       /* [f.n_items] item titles for reasons, entries may be NULL; owned (may be NULL) */
    uint32_t *n_trained; /* [f.n_users] distinct items each user's vector was trained on; owned */
    uint32_t epochs_run; /* epochs actually trained */
    uint32_t best_epoch; /* epoch whose factors were kept (== epochs_run without early stopping) */
    double best_valid;   /* validation NDCG@10 of best_epoch, NaN if none */
    mp_bprmf_aug aug;    /* retrieval copy of the item rows with the bias, or NULL (see bpr_internal.h); owned */
} bpr;

#define BPR_P(kind, nm, fld, ...) MP_P_##kind(nm, bpr_params, fld, __VA_ARGS__)
static const mp_param_info bpr_params_info[] = {
    BPR_P(UINT, "factors", factors, "64", 1, BPR_MAX_FACTORS, "latent dimensions k (1..4096)", MP_TUNED_LOG(16, 256)),
    BPR_P(UINT_AUTO, "epochs", epochs, epochs_auto, "auto", 1, 1000000,
          "maximum training epochs (>= 1); auto: from the catalog, clamp(n_items / 40, 30, 300) (docs/defaults.md)"),
    BPR_P(REAL, "learning_rate", learning_rate, "0.05", 0, 10, "SGD step size (> 0)", .lo_open = 1,
          MP_TUNED_LOG(0.005, 0.2)),
    BPR_P(REAL, "regularization", regularization, "0.04", 0, 100, "L2 penalty on user and item factors (>= 0)",
          MP_TUNED_LOG(1e-5, 0.1)),
    BPR_P(REAL, "bias_regularization", bias_regularization, "0.002", 0, 100, "L2 penalty on item biases (>= 0)"),
    BPR_P(BOOL, "item_bias", item_bias, "1", "1: learn an item bias; 0: dot product only"),
    BPR_P(U64, "seed", seed, "1", 0, UINT64_MAX, "random seed (initialisation and sampling)"),
    BPR_P(UINT, "threads", threads, "0", 0, 1024,
          "Hogwild threads (0: as many as the caller allows); only threads=1 is bitwise reproducible"),
    BPR_P(CHOICE, "sampling", sampling, "adaptive", sampling_names,
          "negative sampling: uniform, pop (popularity-proportional) or adaptive"),
    BPR_P(UINT, "candidates", candidates, "8", 1, BPR_MAX_CANDIDATES,
          "adaptive sampling: negatives drawn per sample, the highest-scored is used (1..64)"),
    BPR_P(CHOICE, "loss", loss, "bpr", loss_names, "bpr (pairwise log-sigmoid) or warp (rank-weighted hinge)"),
    BPR_P(UINT, "max_trials", max_trials, "100", 1, BPR_MAX_TRIALS, "warp: negatives tried per positive before giving up"),
    BPR_P(U64, "samples_per_epoch", samples_per_epoch, "0", 0, UINT64_MAX / 4,
          "positive samples per epoch (0: one per training pair)"),
    BPR_P(REAL, "init_scale", init_scale, "0.1", 0, 100, "initial factors are N(0, init_scale^2 / factors)",
          .lo_open = 1),
    BPR_P(UINT, "patience", patience, "3", 0, 1000000,
          "early stopping: validation checks without improvement before stopping (0: never stop)"),
    BPR_P(UINT, "eval_every", eval_every, "0", 0, 1000000,
          "epochs between validation NDCG@10 checks (0: epochs / 10, so about ten checks)"),
    /* every fold-in (scoring a new user) runs fold_in_steps passes: bounded */
    BPR_P(UINT, "fold_in_steps", fold_in_steps, "20", 1, 100000,
          "SGD passes over a user's items when folding in new events or an unseen user"),
    BPR_P(BOOL, "verify_negatives", verify_negatives, "1",
          "1: redraw a negative the user already has; 0: accept it (faster)"),
    {NULL},
};
#undef BPR_P

/* epochs=auto (the default): one pass over every training pair per epoch reaches each item about nnz / n_items
 * times, so a large sparse catalog needs more passes than a small dense one. clamp(n_items / 40, 30, 300) was
 * chosen on validation splits of MovieLens-100K (42 epochs), Beauty and Games (300) and the demo shop (30); see
 * docs/defaults.md. Early stopping still ends the fit sooner when validation events are given. */
static uint32_t bpr_epochs(uint32_t n_items) {
    uint32_t e = (uint32_t)((n_items + 20) / 40);
    return e < 30 ? 30 : e > 300 ? 300 : e;
}

static void bpr_init(void *impl) {
    bpr *b = impl;
    b->best_valid = NAN;
}

static void bpr_release(void *impl) {
    bpr *b = impl;
    mp_bprmf_aug_free(&b->aug);
    mp_item_titles_free(b->titles, b->f.n_items);
    b->titles = NULL;
    free(b->n_trained);
    b->n_trained = NULL;
    mp_factors_free(&b->f);
    memset(&b->f, 0, sizeof b->f);
    b->epochs_run = b->best_epoch = 0;
    b->best_valid = NAN;
}

int mp_bprmf_threads(uint32_t param, const mp_train_data *data) {
    int nt = param ? (int)param : (data && data->n_threads > 0 ? data->n_threads : omp_get_max_threads());
    return nt < 1 ? 1 : nt;
}

/* ---- kernels ---- */

static inline float dot_k(const float *a, const float *b, uint32_t k) {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (uint32_t f = 0; f < k; f++) s += a[f] * b[f];
    return s;
}

/* Descent step on a pair loss whose derivative with respect to x_uij is -g (g = sigmoid(-x) for BPR, the WARP
 * weight for a violated hinge): every parameter moves by -lr * gradient, all gradients from the old values. */
static inline void pair_step(float *restrict pu, float *restrict qi, float *restrict qj, float *bi, float *bj,
                             uint32_t k, float g, float lr, float reg, float reg_bias) {
    const float decay = 1.0f - lr * reg, lg = lr * g;
#pragma omp simd
    for (uint32_t f = 0; f < k; f++) {
        float u = pu[f], a = qi[f], c = qj[f];
        pu[f] = decay * u + lg * (a - c);
        qi[f] = decay * a + lg * u;
        qj[f] = decay * c - lg * u;
    }
    if (bi) {
        float b1 = *bi, b2 = *bj;
        *bi = b1 + lr * (g - reg_bias * b1);
        *bj = b2 + lr * (-g - reg_bias * b2);
    }
}

static inline float sigmoid_neg(float x) { return 1.0f / (1.0f + expf(x)); } /* sigmoid(-x) */

double mp_bprmf_triple_loss(const float *pu, const float *qi, const float *qj, const float *bi, const float *bj,
                            size_t k, double reg, double reg_bias) {
    double x = 0, n2 = 0;
    for (size_t f = 0; f < k; f++) {
        x += (double)pu[f] * ((double)qi[f] - (double)qj[f]);
        n2 += (double)pu[f] * pu[f] + (double)qi[f] * qi[f] + (double)qj[f] * qj[f];
    }
    double b2 = 0;
    if (bi && bj) {
        x += (double)*bi - (double)*bj;
        b2 = (double)*bi * *bi + (double)*bj * *bj;
    }
    /* -log sigmoid(x) = log(1 + e^-x), written to stay finite for large |x|. */
    double nll = x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x));
    return nll + 0.5 * reg * n2 + 0.5 * reg_bias * b2;
}

void mp_bprmf_triple_grad(const float *pu, const float *qi, const float *qj, const float *bi, const float *bj,
                          size_t k, double reg, double reg_bias, float *g_pu, float *g_qi, float *g_qj, float *g_bi,
                          float *g_bj) {
    double x = 0;
    for (size_t f = 0; f < k; f++) x += (double)pu[f] * ((double)qi[f] - (double)qj[f]);
    if (bi && bj) x += (double)*bi - (double)*bj;
    double s = 1.0 / (1.0 + exp(x)); /* sigmoid(-x) = -dL/dx */
    for (size_t f = 0; f < k; f++) {
        g_pu[f] = (float)(-s * ((double)qi[f] - (double)qj[f]) + reg * pu[f]);
        g_qi[f] = (float)(-s * pu[f] + reg * qi[f]);
        g_qj[f] = (float)(s * pu[f] + reg * qj[f]);
    }
    if (g_bi) *g_bi = (float)(-s + (bi ? reg_bias * *bi : 0));
    if (g_bj) *g_bj = (float)(s + (bj ? reg_bias * *bj : 0));
}

float mp_bprmf_triple_step(float *pu, float *qi, float *qj, float *bi, float *bj, size_t k, float lr, float reg,
                           float reg_bias) {
    float x = dot_k(pu, qi, (uint32_t)k) - dot_k(pu, qj, (uint32_t)k);
    if (bi && bj) x += *bi - *bj;
    pair_step(pu, qi, qj, bi && bj ? bi : NULL, bj, (uint32_t)k, sigmoid_neg(x), lr, reg, reg_bias);
    return x;
}

/* ---- training ---- */

typedef struct bpr_job {
    const uint64_t *ptr; /* [n_users + 1] rows of the positive pairs */
    const uint32_t *col; /* [nnz] item of each pair, ascending within a row */
    const uint32_t *row; /* [nnz] user of each pair */
    uint64_t nnz;
    uint32_t n_items, k;
    float *P, *Q;        /* (n_users, k), (n_items, k) */
    float *bias;         /* [n_items] or NULL */
    float lr, reg, reg_bias;
    uint32_t sampling, loss, candidates, max_trials, verify;
    const float *warp_weight; /* [max_trials + 1]: weight of a violation found at trial t */
} bpr_job;

typedef struct bpr_slot {
    uint64_t pair;                      /* index of the positive pair */
    uint64_t neg_pair;                  /* pop sampling: the pair whose item is the negative */
    uint32_t u, i;
    uint32_t n_neg;
    uint32_t neg[BPR_MAX_CANDIDATES];   /* negative candidates */
} bpr_slot;

static inline int has_item(const bpr_job *J, uint32_t u, uint32_t item) {
    const uint32_t *lo = J->col + J->ptr[u], *hi = J->col + J->ptr[u + 1];
    if (hi - lo <= 32) { /* short rows: a branch-free scan beats mispredicted bisection */
        int hit = 0;
        for (const uint32_t *p = lo; p < hi; p++) hit |= *p == item;
        return hit;
    }
    while (lo < hi) {
        const uint32_t *mid = lo + (hi - lo) / 2;
        if (*mid < item) lo = mid + 1;
        else if (*mid > item) hi = mid;
        else return 1;
    }
    return 0;
}

static inline void prefetch_row(const float *row, uint32_t k) {
    const char *p = (const char *)row;
    size_t bytes = (size_t)k * sizeof(float);
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 1, 3);
    __builtin_prefetch(p + bytes - 1, 1, 3);
}

/* The generator of rng.h (xoshiro256**, same stream as mp_rng_next) inlined for the sampling loop, with
 * Lemire's multiply-shift for a bounded draw (the bias for n < 2^32 is below 2^-32, so no rejection step). */
static inline uint64_t rng_next(mp_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3] << 45 | s[3] >> 19;
    return result;
}

static inline uint64_t rng_below(mp_rng *rng, uint64_t n) {
    return (uint64_t)(((unsigned __int128)rng_next(rng) * n) >> 64);
}

static inline uint32_t draw_negative(const bpr_job *J, mp_rng *rng) {
    if (J->sampling == SAMPLING_POP) return J->col[rng_below(rng, J->nnz)];
    return (uint32_t)rng_below(rng, J->n_items);
}

static inline float item_score(const bpr_job *J, const float *pu, uint32_t j) {
    float s = dot_k(pu, J->Q + (size_t)j * J->k, J->k);
    return J->bias ? s + J->bias[j] : s;
}

/* A negative for u: redrawn while the user has it (up to BPR_REDRAWS times) when verifying. */
static inline uint32_t fresh_negative(const bpr_job *J, mp_rng *rng, uint32_t u, uint32_t j) {
    if (!J->verify) return j;
    for (int t = 0; t < BPR_REDRAWS && has_item(J, u, j); t++) j = draw_negative(J, rng);
    return j;
}

/* Stage A: draw the sample's positive pair (and the pair of a popularity-drawn negative) and prefetch them. */
static inline void stage_draw(const bpr_job *J, mp_rng *rng, bpr_slot *s) {
    s->pair = rng_below(rng, J->nnz);
    __builtin_prefetch(J->row + s->pair, 0, 3);
    __builtin_prefetch(J->col + s->pair, 0, 3);
    if (J->sampling == SAMPLING_POP) {
        s->neg_pair = rng_below(rng, J->nnz);
        __builtin_prefetch(J->col + s->neg_pair, 0, 3);
    }
}

/* Stage B: resolve user, positive and negative candidates; prefetch their factor rows. */
static inline void stage_resolve(const bpr_job *J, mp_rng *rng, bpr_slot *s) {
    s->u = J->row[s->pair];
    s->i = J->col[s->pair];
    if (J->sampling == SAMPLING_POP) {
        s->neg[0] = J->col[s->neg_pair];
        s->n_neg = 1;
    } else {
        s->n_neg = J->sampling == SAMPLING_ADAPTIVE && J->loss == LOSS_BPR ? J->candidates : 1;
        for (uint32_t c = 0; c < s->n_neg; c++) s->neg[c] = (uint32_t)rng_below(rng, J->n_items);
    }
    prefetch_row(J->P + (size_t)s->u * J->k, J->k);
    prefetch_row(J->Q + (size_t)s->i * J->k, J->k);
    for (uint32_t c = 0; c < s->n_neg; c++) prefetch_row(J->Q + (size_t)s->neg[c] * J->k, J->k);
    if (J->verify) __builtin_prefetch(J->ptr + s->u, 0, 3);
}

typedef struct bpr_stats {
    uint64_t samples; /* positives processed */
    uint64_t updates; /* SGD steps taken */
    uint64_t ordered; /* samples whose positive already outscored the negative (x_uij > 0) */
} bpr_stats;

/* Stage C: one SGD step on the sample. */
static inline void stage_update(const bpr_job *J, mp_rng *rng, bpr_slot *s, bpr_stats *st) {
    const uint32_t k = J->k, u = s->u, i = s->i;
    float *pu = J->P + (size_t)u * k, *qi = J->Q + (size_t)i * k;
    float *bi = J->bias ? J->bias + i : NULL;
    st->samples++;
    if (J->loss == LOSS_BPR) {
        uint32_t j = fresh_negative(J, rng, u, s->neg[0]);
        if (s->n_neg > 1) {
            /* adaptive: the highest-scored of the candidates the user does not have */
            float best = -INFINITY;
            for (uint32_t c = 0; c < s->n_neg; c++) {
                uint32_t cj = s->neg[c];
                if (J->verify && has_item(J, u, cj)) continue;
                float sc = item_score(J, pu, cj);
                if (sc > best) {
                    best = sc;
                    j = cj;
                }
            }
        }
        if (j == i) return;
        float *qj = J->Q + (size_t)j * k;
        float x = 0;
#pragma omp simd reduction(+ : x)
        for (uint32_t f = 0; f < k; f++) x += pu[f] * (qi[f] - qj[f]);
        if (bi) x += *bi - J->bias[j];
        st->ordered += x > 0;
        st->updates++;
        pair_step(pu, qi, qj, bi, bi ? J->bias + j : NULL, k, sigmoid_neg(x), J->lr, J->reg, J->reg_bias);
        return;
    }
    /* WARP */
    float xi = item_score(J, pu, i);
    for (uint32_t t = 1; t <= J->max_trials; t++) {
        uint32_t j = t == 1 ? s->neg[0] : draw_negative(J, rng);
        if (j == i || (J->verify && has_item(J, u, j))) continue;
        float xj = item_score(J, pu, j);
        if (xj > xi - 1.0f) {
            st->updates++;
            pair_step(pu, qi, J->Q + (size_t)j * k, bi, bi ? J->bias + j : NULL, k, J->warp_weight[t], J->lr, J->reg,
                      J->reg_bias);
            return;
        }
    }
    st->ordered++;
}

/* Runs n samples through the three-stage pipeline. One clone per x86-64 level (AVX-512, AVX2, baseline). */
BPR_CLONES
static void run_samples(const bpr_job *J, mp_rng *rng, uint64_t n, bpr_stats *st) {
    bpr_slot ring[BPR_RING];
    const int64_t ahead = BPR_AHEAD, total = (int64_t)n;
    for (int64_t t = -2 * ahead; t < total; t++) {
        if (t + 2 * ahead < total) stage_draw(J, rng, &ring[(t + 2 * ahead) & (BPR_RING - 1)]);
        if (t + ahead >= 0 && t + ahead < total) stage_resolve(J, rng, &ring[(t + ahead) & (BPR_RING - 1)]);
        if (t >= 0) stage_update(J, rng, &ring[t & (BPR_RING - 1)], st);
    }
}

/* Seed of thread t's generator: distinct streams per (seed, thread). */
static uint64_t thread_seed(uint64_t seed, int t) { return seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(t + 1)); }

static uint64_t run_epoch(const void *job, mp_rng *rngs, int n_threads, uint64_t n_samples, uint64_t *ordered) {
    const bpr_job *J = job;
    uint64_t upd = 0, ord = 0;
#pragma omp parallel num_threads(n_threads) reduction(+ : upd, ord)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        uint64_t mine = n_samples / (uint64_t)nt + ((uint64_t)t < n_samples % (uint64_t)nt);
        bpr_stats st = {0, 0, 0};
        run_samples(J, &rngs[t], mine, &st);
        upd += st.updates;
        ord += st.ordered;
    }
    if (ordered) *ordered = ord;
    return upd;
}

static int bpr_score_all(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err);

/* Copies of the factor arrays for keeping the best epoch. */
typedef struct snapshot {
    float *user, *item, *bias;
} snapshot;

static int snapshot_take(snapshot *s, const mp_factors *f) {
    size_t nu = (size_t)f->n_users * f->k, ni = (size_t)f->n_items * f->k;
    if (!s->user) s->user = malloc((nu ? nu : 1) * sizeof(float));
    if (!s->item) s->item = malloc((ni ? ni : 1) * sizeof(float));
    if (f->item_bias && !s->bias) s->bias = malloc((f->n_items ? f->n_items : 1) * sizeof(float));
    if (!s->user || !s->item || (f->item_bias && !s->bias)) return MP_ENOMEM;
    memcpy(s->user, f->user, nu * sizeof(float));
    memcpy(s->item, f->item, ni * sizeof(float));
    if (f->item_bias) memcpy(s->bias, f->item_bias, f->n_items * sizeof(float));
    return MP_OK;
}

static void snapshot_restore(const snapshot *s, mp_factors *f) {
    memcpy(f->user, s->user, (size_t)f->n_users * f->k * sizeof(float));
    memcpy(f->item, s->item, (size_t)f->n_items * f->k * sizeof(float));
    if (f->item_bias) memcpy(f->item_bias, s->bias, f->n_items * sizeof(float));
}

static void snapshot_free(snapshot *s) {
    free(s->user);
    free(s->item);
    free(s->bias);
    memset(s, 0, sizeof *s);
}

static int bpr_fit(void *impl, const mp_train_data *data, const mp_progress *progress, mp_error *err) {
    bpr *b = impl;
    const bpr_params *p = &b->p;
    bpr_release(b);
    const mp_csr *ui = data->ui;
    uint64_t nnz = ui ? mp_csr_nnz(ui) : 0;
    if (!ui || nnz == 0) return mp_error_set(err, MP_EEMPTY, "bpr: no positive training pairs");
    if (ui->n_rows != data->n_users || ui->n_cols != data->n_items)
        return mp_error_set(err, MP_EINVAL, "bpr: training matrix is %ux%u but the data has %u users and %u items",
                            ui->n_rows, ui->n_cols, data->n_users, data->n_items);
    if (data->n_items < 2) return mp_error_set(err, MP_EINVAL, "bpr: needs at least 2 items, got %u", data->n_items);
    const uint32_t k = p->factors;
    int rc = mp_factors_alloc(&b->f, data->n_users, data->n_items, k, p->item_bias ? 1 : 0);
    if (rc) return mp_error_set(err, MP_ENOMEM, "bpr: out of memory for %u x %u factors", data->n_users + data->n_items, k);
    mp_rng init_rng;
    mp_rng_seed(&init_rng, p->seed);
    mp_factors_init_normal(&b->f, &init_rng, (float)(p->init_scale / sqrt((double)k)));
    /* A user without training pairs is never sampled: a zero vector marks them as unknown (scored by fold-in). */
    for (uint32_t u = 0; u < ui->n_rows; u++)
        if (ui->ptr[u] == ui->ptr[u + 1]) memset(b->f.user + (size_t)u * k, 0, k * sizeof(float));

    int nt = mp_bprmf_threads(p->threads, data);
    uint32_t *row = malloc(nnz * sizeof *row);
    mp_rng *rngs = malloc((size_t)nt * sizeof *rngs);
    float *warp_weight = malloc(((size_t)p->max_trials + 1) * sizeof *warp_weight);
    snapshot best = {NULL};
    if (mp_item_titles_copy(data->item_titles, data->n_items, &b->titles) != MP_OK) b->titles = NULL;
    b->n_trained = malloc(((size_t)data->n_users + 1) * sizeof *b->n_trained);
    if (!row || !rngs || !warp_weight || (data->item_titles && !b->titles) || !b->n_trained) {
        rc = mp_error_set(err, MP_ENOMEM, "bpr: out of memory for %llu training pairs", (unsigned long long)nnz);
        goto done;
    }
    for (uint32_t u = 0; u < ui->n_rows; u++) {
        for (uint64_t e = ui->ptr[u]; e < ui->ptr[u + 1]; e++) row[e] = u;
        b->n_trained[u] = (uint32_t)(ui->ptr[u + 1] - ui->ptr[u]);
    }
    for (int t = 0; t < nt; t++) mp_rng_seed(&rngs[t], thread_seed(p->seed, t));
    /* WARP's rank weight log(floor((n - 1) / trials)), divided by its largest value log(n - 1) so that one
     * learning rate suits both losses. */
    for (uint32_t t = 0; t <= p->max_trials; t++) {
        double r = t ? floor((double)(data->n_items - 1) / t) : 1, top = log((double)(data->n_items - 1));
        warp_weight[t] = (float)(r > 1 && top > 0 ? log(r) / top : 0.0);
    }
    bpr_job J = {.ptr = ui->ptr,
                 .col = ui->idx,
                 .row = row,
                 .nnz = nnz,
                 .n_items = data->n_items,
                 .k = k,
                 .P = b->f.user,
                 .Q = b->f.item,
                 .bias = b->f.item_bias,
                 .lr = (float)p->learning_rate,
                 .reg = (float)p->regularization,
                 .reg_bias = (float)p->bias_regularization,
                 .sampling = p->sampling,
                 .loss = p->loss,
                 .candidates = p->candidates,
                 .max_trials = p->max_trials,
                 .verify = p->verify_negatives,
                 .warp_weight = warp_weight};
    uint64_t per_epoch = p->samples_per_epoch ? p->samples_per_epoch : nnz;
    if ((uint64_t)nt > 1 + per_epoch / 20000) nt = (int)(1 + per_epoch / 20000); /* tiny epochs: one thread */
    int early = data->valid && data->n_valid > 0 && p->patience > 0;
    uint32_t since_best = 0, best_epoch = 0;
    const uint32_t epochs = p->epochs_auto ? bpr_epochs(data->n_items) : p->epochs;
    uint32_t eval_every = p->eval_every ? p->eval_every : (epochs / 10 ? epochs / 10 : 1);
    b->best_valid = NAN;
    for (uint32_t epoch = 1; epoch <= epochs; epoch++) {
        run_epoch(&J, rngs, nt, per_epoch, NULL);
        b->epochs_run = epoch;
        mp_progress_report(progress, "fit", epoch, epochs);
        if (!early || (epoch % eval_every != 0 && epoch != epochs)) continue;
        double v;
        rc = mp_train_data_valid_ndcg(data, bpr_score_all, b, 10, &v, err);
        if (rc == MP_EEMPTY) { /* no validation user the model can rank: train all epochs */
            early = 0;
            rc = MP_OK;
            continue;
        }
        if (rc) goto done;
        if (isnan(b->best_valid) || v > b->best_valid) {
            b->best_valid = v;
            best_epoch = epoch;
            since_best = 0;
            if (snapshot_take(&best, &b->f)) {
                rc = mp_error_set(err, MP_ENOMEM, "bpr: out of memory keeping the best epoch");
                goto done;
            }
        } else if (++since_best >= p->patience) {
            break;
        }
    }
    b->best_epoch = b->epochs_run;
    if (best_epoch && best_epoch != b->epochs_run) {
        snapshot_restore(&best, &b->f);
        b->best_epoch = best_epoch;
    }
    rc = MP_OK;
done:
    snapshot_free(&best);
    free(row);
    free(rngs);
    free(warp_weight);
    if (rc) bpr_release(b);
    return rc;
}

/* ---- fold-in, scoring, reasons ---- */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int in_sorted(const uint32_t *a, size_t n, uint32_t v) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v) lo = mid + 1;
        else if (a[mid] > v) hi = mid;
        else return 1;
    }
    return 0;
}

/* Positive feedback: everything but dislikes and returns. */
static int is_positive(const mp_interaction *e) { return e->type != MP_EV_DISLIKE && e->type != MP_EV_RETURN; }

/* SGD fold-in of the user vector pu [k] on `items` [n] (distinct, ascending, < f->n_items): fold_in_steps * n
 * BPR steps, each on a random item of the list against a uniform negative outside it. Only pu moves, plus the
 * rows of items >= first_new when item_rw (the writable item matrix, f->item) is given. */
static void fold_in(const bpr *b, float *item_rw, uint32_t first_new, float *pu, const uint32_t *items, size_t n,
                    mp_rng *rng) {
    const mp_factors *f = &b->f;
    const uint32_t k = f->k;
    if (n == 0 || n >= f->n_items) return;
    const float lr = (float)b->p.learning_rate, reg = (float)b->p.regularization;
    uint64_t steps = (uint64_t)b->p.fold_in_steps * n;
    for (uint64_t s = 0; s < steps; s++) {
        uint32_t i = items[mp_rng_below(rng, n)];
        uint32_t j = (uint32_t)mp_rng_below(rng, f->n_items);
        for (int t = 0; t < BPR_REDRAWS && in_sorted(items, n, j); t++) j = (uint32_t)mp_rng_below(rng, f->n_items);
        if (in_sorted(items, n, j)) continue;
        const float *qi = f->item + (size_t)i * k, *qj = f->item + (size_t)j * k;
        float x = dot_k(pu, qi, k) - dot_k(pu, qj, k);
        if (f->item_bias) x += f->item_bias[i] - f->item_bias[j];
        float g = sigmoid_neg(x);
        if (item_rw && (i >= first_new || j >= first_new)) {
            float *wi = item_rw + (size_t)i * k, *wj = item_rw + (size_t)j * k;
            for (uint32_t d = 0; d < k; d++) {
                float u = pu[d], a = wi[d], c = wj[d];
                pu[d] = u + lr * (g * (a - c) - reg * u);
                if (i >= first_new) wi[d] = a + lr * (g * u - reg * a);
                if (j >= first_new) wj[d] = c + lr * (-g * u - reg * c);
            }
        } else {
            const float decay = 1.0f - lr * reg, lg = lr * g;
            for (uint32_t d = 0; d < k; d++) pu[d] = decay * pu[d] + lg * (qi[d] - qj[d]);
        }
    }
}

/* Distinct positive items of a history that the model covers, ascending. Returns the count; *out is malloc'ed
 * (caller frees; NULL when the count is 0). -1 when out of memory. */
static long history_items(const mp_interaction *h, size_t n, uint32_t n_items, uint32_t **out) {
    *out = NULL;
    if (n == 0) return 0;
    uint32_t *a = malloc(n * sizeof *a);
    if (!a) return -1;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (h[i].item < n_items && is_positive(&h[i])) a[m++] = h[i].item;
    qsort(a, m, sizeof *a, cmp_u32);
    size_t d = 0;
    for (size_t i = 0; i < m; i++)
        if (d == 0 || a[i] != a[d - 1]) a[d++] = a[i];
    if (d == 0) {
        free(a);
        return 0;
    }
    *out = a;
    return (long)d;
}

static int zero_vector(const float *v, uint32_t k) {
    for (uint32_t d = 0; d < k; d++)
        if (v[d] != 0) return 0;
    return 1;
}

/* Seed of the generator folding in user u (scoring and updates give the same vector for the same history). */
static uint64_t fold_seed(uint64_t seed, uint32_t u) { return seed ^ 0x5851F42D4C957F2Dull ^ ((uint64_t)u << 1); }

/* pu (k) = the vector that scores ctx: the trained one, or a fold-in of the history (from the trained vector when
 * there is one) for a user the model has no vector for or whose history has grown since training; zero with no
 * vector and no history (item biases alone then rank). */
static int user_vector(const bpr *b, const mp_user_ctx *ctx, float *pu, mp_error *err) {
    const mp_factors *f = &b->f;
    const uint32_t k = f->k;
    int known = ctx->user < f->n_users && !zero_vector(f->user + (size_t)ctx->user * k, k);
    if (known && (ctx->n_history == 0 || ctx->n_history <= b->n_trained[ctx->user])) {
        memcpy(pu, f->user + (size_t)ctx->user * k, k * sizeof *pu);
        return MP_OK;
    }
    uint32_t *items = NULL;
    long n = history_items(ctx->history, ctx->n_history, f->n_items, &items);
    if (n < 0) return mp_error_set(err, MP_ENOMEM, "bpr: out of memory folding in a user");
    if (known) memcpy(pu, f->user + (size_t)ctx->user * k, k * sizeof *pu);
    else memset(pu, 0, k * sizeof *pu);
    if (!known || (uint64_t)n > b->n_trained[ctx->user]) { /* else repeats of trained items only: nothing new */
        mp_rng rng;
        mp_rng_seed(&rng, fold_seed(b->p.seed, ctx->user));
        fold_in(b, NULL, UINT32_MAX, pu, items, (size_t)n, &rng);
    }
    free(items);
    return MP_OK;
}

static int bpr_score_all(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err) {
    const bpr *b = impl;
    float *pu = malloc(((size_t)b->f.k + 1) * sizeof *pu);
    if (!pu) return mp_error_set(err, MP_ENOMEM, "bpr: out of memory folding in a user");
    int rc = user_vector(b, ctx, pu, err);
    if (rc == MP_OK) mp_factors_score(&b->f, pu, scores);
    free(pu);
    return rc;
}

/* ---- retrieval vectors (shared with mf.c through bpr_internal.h) ---- */

int mp_bprmf_aug_needed(const mp_factors *f) { return f->item_bias != NULL || f->global_bias != 0; }

/* Rows [from, f->n_items) of the augmented copy a (which has room for f->n_items rows). */
static void aug_fill(const mp_factors *f, float *a, uint32_t from) {
    const size_t k = f->k;
    for (uint32_t i = from; i < f->n_items; i++) {
        float *row = a + (size_t)i * (k + 1);
        memcpy(row, f->item + (size_t)i * k, k * sizeof *row);
        row[k] = (float)((f->item_bias ? f->item_bias[i] : 0.0f) + f->global_bias);
    }
}

int mp_bprmf_item_vectors(const mp_factors *f, mp_bprmf_aug *aug, const float **vecs, uint32_t *n, uint32_t *dim,
                          mp_error *err) {
    *n = f->n_items;
    if (!mp_bprmf_aug_needed(f)) {
        *vecs = f->item;
        *dim = f->k;
        return MP_OK;
    }
    *dim = f->k + 1;
    float *a = atomic_load_explicit(aug, memory_order_acquire);
    if (!a) {
        float *mine = malloc(((size_t)f->n_items * (f->k + 1) + 1) * sizeof *mine);
        if (!mine) return mp_error_set(err, MP_ENOMEM, "out of memory for %u retrieval vectors", f->n_items);
        aug_fill(f, mine, 0);
        float *expected = NULL;
        if (atomic_compare_exchange_strong_explicit(aug, &expected, mine, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            a = mine;
        } else { /* another thread published first */
            free(mine);
            a = expected;
        }
    }
    *vecs = a;
    return MP_OK;
}

int mp_bprmf_aug_refresh(const mp_factors *f, mp_bprmf_aug *aug, uint32_t first_changed) {
    float *a = atomic_load_explicit(aug, memory_order_relaxed);
    if (!a) return MP_OK;
    if (!mp_bprmf_aug_needed(f)) { /* cannot happen for a fitted model, but keep the cache honest */
        mp_bprmf_aug_free(aug);
        return MP_OK;
    }
    float *g = realloc(a, ((size_t)f->n_items * (f->k + 1) + 1) * sizeof *g);
    if (!g) { /* drop the cache: the next item_vectors call rebuilds it */
        mp_bprmf_aug_free(aug);
        return MP_ENOMEM;
    }
    aug_fill(f, g, first_changed);
    atomic_store_explicit(aug, g, memory_order_release);
    return MP_OK;
}

void mp_bprmf_aug_free(mp_bprmf_aug *aug) { free(atomic_exchange_explicit(aug, NULL, memory_order_acq_rel)); }

void mp_bprmf_query(const mp_factors *f, const float *pu, float *out) {
    if (out != pu) memcpy(out, pu, f->k * sizeof *out);
    if (mp_bprmf_aug_needed(f)) out[f->k] = 1.0f;
}

static int bpr_item_vectors(const void *impl, const float **vecs, uint32_t *n, uint32_t *dim, mp_error *err) {
    bpr *b = (bpr *)impl; /* only the atomic cache is written */
    return mp_bprmf_item_vectors(&b->f, &b->aug, vecs, n, dim, err);
}

static int bpr_query_vector(const void *impl, const mp_user_ctx *ctx, float *out, int *have, mp_error *err) {
    const bpr *b = impl;
    *have = 0;
    int rc = user_vector(b, ctx, out, err);
    if (rc) return rc;
    /* no vector and no biases: score_all gives zeros */
    *have = !zero_vector(out, b->f.k) || mp_bprmf_aug_needed(&b->f);
    mp_bprmf_query(&b->f, out, out);
    return MP_OK;
}

static int bpr_similar(const void *impl, uint32_t item, size_t n, uint32_t *out_items, float *out_scores,
                       size_t *n_out, mp_error *err) {
    return mp_factors_similar(&((const bpr *)impl)->f, item, n, out_items, out_scores, n_out, err);
}

/* "bought" for a purchase: how a reason names what the user did with an item. */
const char *mp_bprmf_verb(int type) {
    switch (type) {
    case MP_EV_PURCHASE: return "bought";
    case MP_EV_VIEW: return "viewed";
    case MP_EV_CLICK: return "clicked on";
    case MP_EV_CART: return "added to your cart";
    case MP_EV_FAV: return "saved";
    case MP_EV_REVIEW: return "reviewed";
    case MP_EV_RATING: return "rated";
    default: return "interacted with";
    }
}

/* Writes `"Title"` or `item #id` into buf. */
void mp_bprmf_item_label(char *const *titles, uint32_t item, char *buf, size_t cap) {
    if (titles && titles[item]) snprintf(buf, cap, "\"%s\"", titles[item]);
    else snprintf(buf, cap, "item #%u", item);
}

/* Shared with mf.c: the history item whose factor row has the largest dot product with `item`'s (the item
 * itself, unknown items and negative feedback skipped). Returns the history index or -1. */
long mp_bprmf_closest_history(const mp_factors *f, const mp_user_ctx *ctx, uint32_t item) {
    long best = -1;
    float best_s = -INFINITY;
    const float *q = f->item + (size_t)item * f->k;
    for (size_t h = 0; h < ctx->n_history; h++) {
        const mp_interaction *e = &ctx->history[h];
        if (e->item >= f->n_items || e->item == item || !is_positive(e)) continue;
        float s = dot_k(q, f->item + (size_t)e->item * f->k, f->k);
        if (s > best_s || best < 0) {
            best_s = s;
            best = (long)h;
        }
    }
    return best;
}

static int bpr_explain(const void *impl, const mp_user_ctx *ctx, uint32_t item, char *buf, size_t cap,
                       mp_error *err) {
    const bpr *b = impl;
    if (item >= b->f.n_items) return mp_error_set(err, MP_ENOTFOUND, "bpr: unknown item %u", item);
    long h = mp_bprmf_closest_history(&b->f, ctx, item);
    if (h >= 0) {
        char label[MP_ITEM_TITLE_MAX + 16];
        const mp_interaction *e = &ctx->history[h];
        if (b->titles && b->titles[e->item]) snprintf(label, sizeof label, "\xE2\x80\x98%s\xE2\x80\x99", b->titles[e->item]);
        else snprintf(label, sizeof label, "item #%u", e->item);
        snprintf(buf, cap, "because you %s %s", mp_bprmf_verb(e->type), label);
    } else if (ctx->user < b->f.n_users) {
        snprintf(buf, cap, "matches the tastes learned from your past activity");
    } else {
        snprintf(buf, cap, "widely liked (no history to personalise from yet)");
    }
    return MP_OK;
}

/* ---- real-time update ---- */

/* Grows the factors to n_users x n_items: old rows copied, new users zero, new items N(0, scale^2 / k) from a
 * generator seeded by (seed, item) so the result does not depend on how updates are batched. */
static int grow(bpr *b, uint32_t n_users, uint32_t n_items) {
    mp_factors g;
    const mp_factors *f = &b->f;
    const uint32_t k = f->k;
    if (mp_factors_alloc(&g, n_users, n_items, k, f->user_bias ? 1 : 0)) return MP_ENOMEM;
    if (mp_item_titles_grow(&b->titles, f->n_items, n_items) != MP_OK) {
        mp_factors_free(&g);
        return MP_ENOMEM;
    }
    memcpy(g.user, f->user, (size_t)f->n_users * k * sizeof(float));
    memcpy(g.item, f->item, (size_t)f->n_items * k * sizeof(float));
    if (f->user_bias) {
        memcpy(g.user_bias, f->user_bias, f->n_users * sizeof(float));
        memcpy(g.item_bias, f->item_bias, f->n_items * sizeof(float));
    }
    g.global_bias = f->global_bias;
    float scale = (float)(b->p.init_scale / sqrt((double)k));
    for (uint32_t i = f->n_items; i < n_items; i++) {
        mp_rng rng;
        mp_rng_seed(&rng, b->p.seed ^ 0x9E6C63D0676A9A99ull ^ ((uint64_t)i << 1));
        for (uint32_t d = 0; d < k; d++) g.item[(size_t)i * k + d] = (float)(scale * mp_rng_normal(&rng));
    }
    uint32_t *n_trained = realloc(b->n_trained, ((size_t)n_users + 1) * sizeof *n_trained);
    if (!n_trained) {
        mp_factors_free(&g);
        return MP_ENOMEM;
    }
    memset(n_trained + f->n_users, 0, ((size_t)n_users - f->n_users) * sizeof *n_trained);
    b->n_trained = n_trained;
    mp_factors_free(&b->f);
    b->f = g;
    return MP_OK;
}

typedef struct pair_ui {
    uint32_t user, item;
} pair_ui;

static int cmp_pair(const void *a, const void *b) {
    const pair_ui *x = a, *y = b;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    return x->item < y->item ? -1 : x->item > y->item;
}

static int bpr_update(void *impl, const mp_interaction *events, size_t n, mp_error *err) {
    bpr *b = impl;
    if (n == 0) return MP_OK;
    uint32_t max_user = 0, max_item = 0;
    for (size_t i = 0; i < n; i++) {
        if (events[i].user == MP_NO_USER || events[i].item == UINT32_MAX)
            return mp_error_set(err, MP_EINVAL, "bpr: update event %zu has no user or no item", i);
        if (events[i].user > max_user) max_user = events[i].user;
        if (events[i].item > max_item) max_item = events[i].item;
    }
    uint32_t first_new = b->f.n_items;
    uint32_t nu = max_user >= b->f.n_users ? max_user + 1 : b->f.n_users;
    uint32_t ni = max_item >= b->f.n_items ? max_item + 1 : b->f.n_items;
    if ((nu != b->f.n_users || ni != b->f.n_items) && grow(b, nu, ni))
        return mp_error_set(err, MP_ENOMEM, "bpr: out of memory growing to %u users and %u items", nu, ni);
    pair_ui *pairs = malloc(n * sizeof *pairs);
    if (!pairs) return mp_error_set(err, MP_ENOMEM, "bpr: out of memory for %zu update events", n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (is_positive(&events[i])) pairs[m++] = (pair_ui){events[i].user, events[i].item};
    qsort(pairs, m, sizeof *pairs, cmp_pair);
    uint32_t *items = malloc((m ? m : 1) * sizeof *items);
    if (!items) {
        free(pairs);
        return mp_error_set(err, MP_ENOMEM, "bpr: out of memory for %zu update events", n);
    }
    const uint32_t k = b->f.k;
    for (size_t s = 0; s < m;) {
        size_t e = s, d = 0;
        uint32_t u = pairs[s].user;
        for (; e < m && pairs[e].user == u; e++)
            if (d == 0 || items[d - 1] != pairs[e].item) items[d++] = pairs[e].item;
        mp_rng rng;
        mp_rng_seed(&rng, fold_seed(b->p.seed, u));
        fold_in(b, b->f.item, first_new, b->f.user + (size_t)u * k, items, d, &rng);
        b->n_trained[u] += (uint32_t)d; /* an upper bound: some may repeat trained items */
        s = e;
    }
    free(items);
    free(pairs);
    /* fold_in moved only rows of items >= first_new; a failed refresh just drops the cache */
    mp_bprmf_aug_refresh(&b->f, &b->aug, first_new);
    return MP_OK;
}

/* Zeroes the user's vector, the mark of "no vector" (see user_vector); item rows are untouched. */
static int bpr_forget_user(void *impl, uint32_t u, const mp_interaction *events, size_t n, mp_error *err) {
    bpr *b = impl;
    (void)events;
    (void)n;
    (void)err;
    if (u >= b->f.n_users) return MP_OK;
    memset(b->f.user + (size_t)u * b->f.k, 0, b->f.k * sizeof *b->f.user);
    b->n_trained[u] = 0;
    return MP_OK;
}

/* ---- save / load ---- */

static int bpr_save(const void *impl, mp_mf_writer *w, mp_error *err) {
    const bpr *b = impl;
    (void)err;
    mp_params_put(bpr_params_info, MP_PARAM_COUNT(bpr_params_info), &b->p, w);
    mp_mf_put_u32(w, b->epochs_run);
    mp_mf_put_u32(w, b->best_epoch);
    mp_mf_put_f64(w, b->best_valid);
    mp_factors_save(&b->f, w);
    mp_mf_put_u32s(w, b->n_trained, b->f.n_users);
    mp_item_titles_save(w, b->titles, b->f.n_items);
    return MP_OK;
}

static int bpr_load(void *impl, mp_mf_reader *r, mp_error *err) {
    bpr *b = impl;
    bpr_release(b);
    int rc;
    /* a version 1 file has no auto flag after epochs */
    rc = (mp_mf_reader_model_version(r) < 2 ? mp_params_get_flagless : mp_params_get)(
        bpr_params_info, MP_PARAM_COUNT(bpr_params_info), &b->p, r, "bpr", err);
    if (rc || (rc = mp_mf_get_u32(r, &b->epochs_run, err)) || (rc = mp_mf_get_u32(r, &b->best_epoch, err)) ||
        (rc = mp_mf_get_f64(r, &b->best_valid, err)))
        return rc;
    if ((rc = mp_factors_load(&b->f, r, err))) return rc;
    if (b->f.k != b->p.factors || (b->f.item_bias != NULL) != (b->p.item_bias != 0)) {
        bpr_release(b);
        return mp_error_set(err, MP_ECORRUPT, "bpr payload: factor shape does not match the parameters");
    }
    if (!(b->n_trained = malloc(((size_t)b->f.n_users + 1) * sizeof *b->n_trained))) {
        rc = mp_error_set(err, MP_ENOMEM, "bpr: out of memory loading %u users", b->f.n_users);
        goto fail;
    }
    if ((rc = mp_mf_get_u32s(r, b->n_trained, b->f.n_users, err))) goto fail;
    if ((rc = mp_item_titles_load(r, &b->titles, b->f.n_items, "bpr", err))) goto fail;
    return MP_OK;
fail:
    bpr_release(b);
    return rc;
}

static uint32_t bpr_n_items(const void *impl) { return ((const bpr *)impl)->f.n_items; }

const mp_model_ops mp_bpr_ops = {
    .name = "bpr",
    .summary = "BPR / WARP matrix factorisation for implicit feedback (Hogwild SGD, adaptive negatives)",
    .file_version = BPR_FILE_VERSION,
    .impl_size = sizeof(bpr),
    .params = bpr_params_info,
    .n_params = MP_PARAM_COUNT(bpr_params_info),
    .params_offset = offsetof(bpr, p),
    .params_size = sizeof(bpr_params),
    .init = bpr_init,
    .fit = bpr_fit,
    .score_all = bpr_score_all,
    .predict_rating = NULL,
    .similar = bpr_similar,
    .explain = bpr_explain,
    .update = bpr_update,
    .save = bpr_save,
    .load = bpr_load,
    .release = bpr_release,
    .n_items = bpr_n_items,
    .item_vectors = bpr_item_vectors,
    .query_vector = bpr_query_vector,
    .forget_user = bpr_forget_user,
};
