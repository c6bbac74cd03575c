/* src/models/hybrid_internal.h: the "hybrid" model (content + behaviour two towers, see the top of hybrid.c for the
 * model itself) shared by its files. Calls go one way only, hybrid.c -> train / adapter / lexical -> features,
 * never back (no two object files call each other):
 *   hybrid.c          the model: parameters, ops table, the fit as named steps, the user tower (history + request
 *                     text), scoring, similar, explain, update / set_item, save / load. Owns struct hybrid and
 *                     every array in it (hyb_release frees them all).
 *   hybrid_train.c    the SGD: a trainer over the fit's feature lists (WARP / BPR samples, sequence or pair mode,
 *                     Hogwild epochs) and the early-stopping snapshots. Writes only the trained parameters
 *                     (id_vec, in_id, feat, in_feat); owns its hyb_trainer buffers.
 *   hybrid_adapter.c  the ridge adapter from item text embeddings to the behaviour space (adapter, adapter_in,
 *                     emb_dim) and an item's content vectors from its feature list (content_vec, in_content).
 *   hybrid_lexical.c  the lexical channel: idf feature vectors of the items (lex), their inverted index (post),
 *                     successor profiles (succ), their scores and model-file encoding; and, through the index, the
 *                     content neighbours of items without events (which replace their content_vec / in_content).
 *                     Owns lex / post / succ (hyb_lex_free).
 *   hybrid_features.c content -> features: the vocabulary (vocab), idf, price buckets (price_edges), the feature
 *                     lists of items and texts (hyb_feats, feat_list), and a user context's history as the towers
 *                     weigh it. Calls no other hybrid file.
 * Not a public header. */
#ifndef MAGPIE_MODELS_HYBRID_INTERNAL_H
#define MAGPIE_MODELS_HYBRID_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "magpie/model.h"
#include "magpie/modelfile.h"
#include "magpie/rng.h"
#include "magpie/strmap.h"
#include "magpie/trainset.h"

#define HYB_MAX_FACTORS 1024
#define HYB_MAX_PRICE_BUCKETS 64
#define HYB_MAX_FEAT_LEN 512 /* longer feature strings are cut */
#define HYB_MAX_VOCAB (1u << 26)
/* The history as scoring sees it is at most this many items; older ones would weigh under
 * recency^HYB_MAX_HISTORY anyway. */
#define HYB_MAX_HISTORY 256

enum { LOSS_BPR, LOSS_WARP };

/* group weights of the content features (see the top of hybrid.c) */
#define W_TITLE 1.0f
#define W_DESC 0.5f
#define W_CAT 0.5f
#define W_BRAND 0.5f
#define W_PRICE 0.25f

/* The lexical channel's idf feature vector of one item (or one text, or one successor profile). */
typedef struct lex_item {
    uint32_t *idx; /* features of the item, ascending */
    float *w;      /* their idf weights, unit L2 norm */
    uint32_t n;
} lex_item;

/* The items having one feature, with the feature's weight in each. */
typedef struct lex_post {
    uint32_t *item;
    float *w;
    uint32_t n, cap;
} lex_post;

typedef struct hyb_params {
    uint32_t factors; /* k */
    uint32_t epochs;
    double learning_rate;
    double regularization; /* L2 on user, id and feature vectors */
    int loss;              /* LOSS_* */
    uint32_t max_trials;   /* warp */
    uint64_t seed;
    uint32_t threads;       /* 0: the training data's n_threads */
    double id_dropout;      /* probability of leaving an item's id vector out of a triple */
    int subwords;           /* 1: character 3..5-grams of title words as features */
    uint32_t desc_tokens;   /* description tokens used per item (0: none) */
    uint32_t price_buckets; /* 0: no price feature */
    double init_scale;      /* user and id vectors start N(0, init_scale^2 / k); features start at 0 */
    double history_norm;    /* a user vector is the sum of its items' input vectors over (count)^history_norm */
    double text_weight;     /* weight of the request text in a fold-in, relative to one history item */
    double adapter_reg;     /* ridge penalty of the embedding adapter */
    double feature_init;    /* feature embeddings start N(0, feature_init^2 / k), equal on both sides */
    int idf;                /* 1: feature weights times their idf */
    int sequence;           /* 1: train each event against the events before it; 0: against the user's other items;
                             * 2 (auto): decided at fit from the data (hyb_fit) */
    double recency;         /* history weight recency^j of the j-th most recent item (1: all equal) */
    int recency_auto;       /* 1: recency was decided at fit from the data (hyb_fit) */
    double lexical;         /* weight of the lexical channel (0: a pure inner-product model) */
    uint32_t neighbours;    /* items without an id vector take the mean vector of this many content neighbours */
    double transitions;     /* weight of the successor-profile channel (0: off) */
    uint32_t patience, eval_every;
} hyb_params;

/* The model (the ops' impl block). Every array is owned by it and freed by hyb_release (hybrid.c); which file
 * writes which is in the map above. */
typedef struct hybrid {
    hyb_params p;
    /* fitted state */
    uint32_t k; /* factors; vectors have k + 1 floats (the last is the bias, 1 for users) */
    int sequence_on; /* the sequence mode this fit trains with (p.sequence, auto resolved) */
    uint32_t n_users, n_items;
    float *in_id;       /* [n_items, k] input-side id vectors (how an item in a history speaks for a user) */
    float *in_content;  /* [n_items, k] input-side content part */
    float *in_vec;      /* [n_items, k] in_id + in_content */
    float *in_feat;     /* [n_feats, k] input-side feature embeddings */
    float *adapter_in;  /* [k, emb_dim] or NULL */
    float *id_vec;      /* [n_items, k + 1] id vector and bias; zero for items without training events */
    float *content_vec; /* [n_items, k + 1] the content part (features, plus the adapter for non-warm items) */
    float *item_vec;    /* [n_items, k + 1] id_vec + content_vec: what scores use */
    uint8_t *has_id;    /* [n_items] 1 for items with training events */
    char **titles;      /* [n_items] or NULL entries */
    char **cats;        /* [n_items] category paths or NULL entries */
    mp_strmap *vocab;   /* feature string -> row of feat */
    uint32_t n_feats;
    float *feat;      /* [n_feats, k + 1] feature embeddings (last: bias) */
    float *idf;       /* [n_feats] inverse document frequency of each feature over the training items */
    lex_item *lex;    /* [n_items] lexical channel: idf feature vectors of the items (NULL: lexical = 0) */
    lex_post *post;   /* [n_feats] its inverted index */
    lex_item *succ;   /* [n_items] content profile of what users took next after the item (or NULL) */
    uint32_t emb_dim; /* 0: no adapter */
    char *emb_source; /* encoder name of the embeddings (may be NULL) */
    float *adapter;   /* [(k + 1), emb_dim] or NULL */
    uint32_t n_price_edges;
    double *price_edges; /* [n_price_edges] ascending log-price bucket edges */
    uint32_t *warm;      /* [n_warm] items with an id vector: negative sampling */
    uint32_t n_warm;
    uint32_t epochs_run, best_epoch;
    double best_valid;
} hybrid;

/* Small helpers of every file, inline so that none of them is a call between the files. */
static inline int nonzero(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (v[i] != 0) return 1;
    return 0;
}

static inline int is_positive(const mp_interaction *e) {
    return e->type != MP_EV_DISLIKE && e->type != MP_EV_RETURN;
}

static inline float dotf(const float *a, const float *b, uint32_t n) {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (uint32_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* 1 / count^history_norm */
static inline float history_scale(const hybrid *h, double count) {
    return count > 0 ? (float)pow(count, -h->p.history_norm) : 0.0f;
}

/* ---- hybrid_features.c ---- */

/* One item's (or one text's) features: rows of the vocabulary with weights. */
typedef struct feat_list {
    uint32_t *idx;
    float *w;
    size_t n, cap;
} feat_list;

/* The feature lists of all training items, in CSR form; built by hyb_features_build, owned by the fit. */
typedef struct hyb_feats {
    uint64_t *ptr; /* [n_items + 1] */
    uint32_t *idx; /* [ptr[n_items]] feature rows */
    float *w;      /* [ptr[n_items]] their weights (idf applied; an item's sum to 1) */
} hyb_feats;

void hyb_feat_list_free(feat_list *l);
void hyb_feats_free(hyb_feats *f);
/* Makes room for one more entry after n in the parallel arrays (*idx, *w) of capacity *cap. */
int hyb_pairs_make_room(uint32_t **idx, float **w, size_t n, size_t *cap);
/* Adds the word tokens of text (at most max_tokens of them, 0: all) as "w:" features sharing group weight gw;
 * `grow` interns new features, otherwise unknown ones are skipped. MP_OK or MP_ENOMEM. */
int hyb_add_text(feat_list *l, mp_strmap *vocab, int grow, const char *text, size_t len, int subwords,
                 size_t max_tokens, float gw);
/* Multiplies the weights by the features' idf (when known) and scales them to sum to 1. */
void hyb_apply_idf(const hybrid *h, const uint32_t *idx, float *w, size_t n);
/* The features of one item's content into l. `grow` interns new features (fit); otherwise unknown ones are
 * skipped. MP_OK or MP_ENOMEM. */
int hyb_item_features(const hybrid *h, mp_strmap *vocab, int grow, const char *title, const char *desc, const char *cat,
                      const char *brand, double price, feat_list *l);
/* out (k + 1) = sum of the listed feature rows of feat (n_feats, K1). */
void hyb_feat_sum(const float *feat, uint32_t K1, const uint32_t *idx, const float *w, size_t n, float *out);
/* h->price_edges: quantiles of log1p(price) over the items with a price (prices [n_items] or NULL). */
int hyb_fit_price_edges(hybrid *h, const double *prices, uint32_t n_items);
/* The feature lists of every training item into *out (the vocabulary h->vocab grows from them; h->cats and
 * h->price_edges must be set), then h->n_feats and h->idf, and the lists reweighted by idf. */
int hyb_features_build(hybrid *h, const mp_train_data *data, const mp_train_content *content, hyb_feats *out,
                       mp_error *err);
/* The history as scoring sees it: distinct positive items the model knows, most recent first (at most
 * HYB_MAX_HISTORY) into items / w (weights recency^j). Returns the count; *wsum gets the sum of the weights. */
size_t hyb_collect_history(const hybrid *h, const mp_user_ctx *ctx, uint32_t *items, float *w, double *wsum);

/* ---- hybrid_adapter.c ---- */

/* out (rows) += A (rows, D) x (D). */
void hyb_adapter_apply(const float *A, uint32_t rows, uint32_t D, const float *x, float *out);
/* Both content parts of item i (content_vec, in_content) from its feature list plus, for items without an id
 * vector, the adapters on emb ([emb_dim] or NULL). */
void hyb_content_from_list(hybrid *h, uint32_t i, const uint32_t *idx, const float *w, size_t n, const float *emb);
/* The adapters (h->adapter, h->adapter_in, h->emb_dim) from the warm items' embeddings emb (n_items, D) to their
 * current item_vec and in_vec. No adapter (MP_OK) when no warm item has an embedding. */
int hyb_fit_adapter(hybrid *h, const float *emb, uint32_t D, mp_error *err);

/* ---- hybrid_lexical.c ---- */

void hyb_lex_free(hybrid *h);
/* The inverted index h->post from the item lists (h->lex). MP_OK or MP_ENOMEM. */
int hyb_lex_index(hybrid *h);
/* The whole channel after training: item lists from fs, the index, the successor profiles (transitions > 0,
 * from data->events) and the content-neighbour vectors of items without events (neighbours > 0). The caller
 * then refreshes the items' scoring vectors. */
int hyb_lex_build(hybrid *h, const hyb_feats *fs, const mp_train_data *data, mp_error *err);
/* Replaces item i's list and its postings. MP_OK or MP_ENOMEM. */
int hyb_lex_replace(hybrid *h, uint32_t i, const uint32_t *idx, const float *w, size_t n);
/* Item i's content vectors from its content neighbours (see hybrid_lexical.c); acc [n_items] is zero on entry and
 * on return, touched is scratch of [n_items]. */
void hyb_lex_neighbour_vector(hybrid *h, uint32_t i, float *acc, uint32_t *touched);
/* Adds the lexical (and transitions) channel of the user context to scores [n_items]. */
int hyb_lex_score(const hybrid *h, const mp_user_ctx *ctx, float *scores, mp_error *err);
/* Model-file encoding of n item lists; get reads them into a new array *out [ni] (features must be < nf). */
void hyb_lex_put_lists(mp_mf_writer *w, const lex_item *a, uint32_t n);
int hyb_lex_get_lists(mp_mf_reader *r, lex_item **out, uint32_t ni, uint32_t nf, mp_error *err);

/* ---- hybrid_train.c ---- */

/* What every SGD sample reads (shared by the threads; the model's parameters are written Hogwild). */
typedef struct train_job {
    hybrid *h;
    const mp_csr *ui;
    const uint32_t *pair_user;    /* [nnz] */
    const mp_interaction *events; /* training events sorted by (user, ts) */
    const uint64_t *usable;       /* [n_usable] events that can be a positive with a preceding history */
    uint64_t n_usable;
    const uint32_t *back; /* [n_events] distance from an event back to its user's first event */
    const uint64_t *fptr; /* [n_items + 1] item feature lists */
    const uint32_t *fidx;
    const float *fw;
    float mean_val;
    float lr, reg;
} train_job;

/* The job and the buffers it points to; zeroed, then hyb_trainer_init; free with hyb_trainer_free. */
typedef struct hyb_trainer {
    train_job J;
    uint64_t nnz; /* pairs of the training matrix */
    int n_threads;
    uint32_t *pair_user; /* [nnz] row of each pair; owned */
    uint64_t *usable;    /* [n_events] (sequence mode) or NULL; owned */
    uint32_t *back;      /* [n_events] (sequence mode) or NULL; owned */
    mp_rng *rngs;        /* [n_threads] */
    float *scratch;      /* [n_threads, 4, k + 1] */
    uint8_t *keep;       /* [n_threads, HYB_TRAIN_HISTORY + 2] */
    uint32_t *hist;      /* [n_threads, HYB_TRAIN_HISTORY + 2] */
    float *hw;           /* [n_threads, HYB_TRAIN_HISTORY + 2] */
} hyb_trainer;

/* Sets up training of h (vectors initialised, warm items known) on data with the item feature lists fs (which must
 * outlive the trainer). */
int hyb_trainer_init(hyb_trainer *tr, hybrid *h, const mp_train_data *data, const hyb_feats *fs, mp_error *err);
/* One epoch: as many samples as usable events (sequence mode) or pairs, split over the threads. */
void hyb_train_epoch(hyb_trainer *tr);
void hyb_trainer_free(hyb_trainer *tr);

/* The trained parameters, for early stopping. */
typedef struct hyb_snapshot {
    float *id_vec, *feat, *in_id, *in_feat;
} hyb_snapshot;

void hyb_snapshot_free(hyb_snapshot *s);
int hyb_snapshot_take(hyb_snapshot *s, const hybrid *h);
void hyb_snapshot_restore(const hyb_snapshot *s, hybrid *h);

#endif
