/* "sasrec": a self-attentive sequential recommender (Kang & McAuley, ICDM 2018) on the neural core (magpie/nn.h),
 * trained as the later work found best: pre-LN causal transformer blocks, the input and output item embeddings
 * shared, and a softmax cross-entropy over the whole catalog at every position of a user's sequence (Petrov &
 * Macdonald, RecSys 2023: the loss that lifts SASRec on Beauty from NDCG@10 0.032 with sampled BCE to about 0.053).
 * For catalogs too large for the full softmax, loss=sampled draws shared negatives from the items' popularity and
 * corrects the logits by log Q (Yi et al., RecSys 2019).
 *
 * A user is their item sequence: training events in time order, dislikes and returns left out. Fit trains on each
 * user's sequence once per epoch (input s[0..n-2], targets s[1..n-1], the newest max_len kept, left-padded), in
 * batches of users of similar length (so a batch runs over the window its longest sequence needs), with AdamW, and
 * stops early on the validation events (NDCG@10; the best epoch's weights are kept).
 *
 * Scoring reads ctx->history only (the newest max_len known items), so a user's next list changes with each
 * event and an anonymous session is served from its items; the query vector is the transformer's output at the
 * newest position and score(i) = query . wte[i], which is also the retrieval contract (item_vectors = wte).
 * explain names the history item that the newest position attends to most, weighted by its similarity to the
 * recommended item; similar ranks items by the cosine of their embeddings. set_item gives a new item an embedding
 * from its content (category, brand, price, text embedding) through a ridge projection fitted from the content of
 * the trained items to their embeddings, so it can be recommended at once.
 *
 * Defaults (docs/defaults.md): the PyTorch reference's architecture (2 blocks of 64, 1 head, feed-forward 256, dropout
 * 0.5, AdamW lr 1e-3, batch 256, 50 positions), with every position of an epoch weighing the same (row_weight=epoch:
 * the length-bucketed batches hold 10x different row counts, and a per-batch mean made the short batches' rows count
 * ten times more), no clipping and patience 10; chosen on Beauty's validation split (NDCG@10 0.0716 against 0.0654
 * for per-batch means, clipping at 1 and patience 5).
 *
 * Threads: fit runs the kernels on data->n_threads OpenMP threads; score_all, explain and query_vector each use
 * their own activations (mp_nn_tfm_view), so they may run concurrently. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/linalg.h"
#include "magpie/model.h"
#include "magpie/nn.h"
#include "magpie/rng.h"
#include "magpie/topk.h"
#include "models/bpr_internal.h"
#include "models/item_titles.h"
#include "models/params.h"

#define SR_FILE_VERSION 1
#define SR_VALID_K 10
/* The full softmax keeps a dense gradient and two moments of the item table and scores every item at every
 * position; above this many items loss=auto samples and loss=full is refused. */
#define SR_FULL_MAX_ITEMS 262144u
/* Content features for set_item: category one-hot, hashed brand, price buckets, text embedding. */
#define SR_BRAND_BUCKETS 256
#define SR_PRICE_BUCKETS 12

typedef enum { SR_LOSS_AUTO, SR_LOSS_FULL, SR_LOSS_SAMPLED } sr_loss;
static const char *const sr_loss_names[] = {"auto", "full", "sampled"};
typedef enum { SR_FEAT_NONE, SR_FEAT_CONTENT } sr_feat_mode;
static const char *const sr_feat_names[] = {"none", "content"};
/* How a batch's loss is scaled: by its own row count (each batch a mean), or by the epoch's mean rows per batch (every
 * row of the epoch weighs the same although the length-bucketed batches hold very different row counts). */
typedef enum { SR_ROWS_BATCH, SR_ROWS_EPOCH } sr_row_weight;
static const char *const sr_row_weight_names[] = {"batch", "epoch"};

typedef struct sr_params {
    uint32_t dim, layers, heads, ffn, max_len, batch, epochs, patience, eval_every, negatives, warmup;
    int ffn_auto;
    double dropout, lr, weight_decay, clip;
    uint64_t seed;
    int loss, features, row_weight;
} sr_params;

/* Item features added to the input embedding (features=content): each item has up to three ids into one table Wf
 * (its category, its hashed brand, its price bucket) and optionally a text embedding that a block of Wf projects:
 *   extra(i) = Wf[cat_i] + Wf[n_cat + brand_i] + Wf[n_cat + B + price_i] + text_i . Wf[n_cat + B + P ..]   (C)
 * learned with the transformer (AdamW). */
#define SR_NFID 3
typedef struct sr_inputs {
    uint32_t n_cat, text_dim, rows; /* rows of Wf: n_cat + SR_BRAND_BUCKETS + SR_PRICE_BUCKETS + text_dim */
    uint32_t *fid;                  /* (n_items, 3) row ids into Wf, MP_NN_PAD when absent */
    float *text;                    /* (n_items, text_dim) or NULL */
    float *W;                       /* (rows, C); NULL: no input features */
    float *gW, *mW, *vW;            /* training only (dense AdamW: the table is small) */
} sr_inputs;

/* Ridge projection content features (D) -> embedding (C), for items added after training. */
typedef struct sr_content {
    uint32_t n_categories, text_dim, D; /* D = n_categories + brand + price buckets + text_dim + 1 (bias) */
    float *W;                           /* (D, C) */
    char **cat_names;                   /* [n_categories] the trained categories' names (set_item matches by name) */
} sr_content;

typedef struct sasrec {
    sr_params p;
    mp_nn_tfm t;       /* the network; t.cfg.n_vocab = n_items */
    uint32_t n_items;
    uint32_t epochs_run, best_epoch;
    double best_valid; /* NaN when not measured */
    int loss_used;     /* SR_LOSS_FULL or SR_LOSS_SAMPLED */
    sr_content content; /* W NULL: no content projection */
    sr_inputs in;      /* W NULL: no input features */
    char **titles;     /* [n_items] or NULL */
} sasrec;

static const mp_param_info sr_param_table[] = {
    MP_P_UINT("dim", sr_params, dim, "64", 4, 1024, "embedding and hidden size (divisible by heads)"),
    MP_P_UINT("layers", sr_params, layers, "2", 1, 16, "transformer blocks"),
    MP_P_UINT("heads", sr_params, heads, "1", 1, 64, "attention heads per block (must divide dim)"),
    MP_P_UINT_AUTO("ffn", sr_params, ffn, ffn_auto, "auto", 1, 16384,
                   "hidden width of each block's feed-forward part; auto: 4 x dim"),
    MP_P_UINT("max_len", sr_params, max_len, "50", 2, 1024, "newest items of a history the model reads"),
    MP_P_REAL("dropout", sr_params, dropout, "0.5", 0, 0.95, "dropout at the input and after each block's branches"),
    MP_P_REAL("learning_rate", sr_params, lr, "0.001", 0, 1, "AdamW learning rate", .lo_open = 1, .alias = "lr",
              MP_TUNED_LOG(1e-4, 1e-2)),
    MP_P_REAL("weight_decay", sr_params, weight_decay, "0", 0, 10,
              "AdamW's decoupled weight decay (layer norms excluded)"),
    MP_P_REAL("clip", sr_params, clip, "0", 0, 1e6, "clips the gradient's global norm to this (0: no clipping)"),
    MP_P_UINT("batch", sr_params, batch, "256", 1, 65536, "sequences per update"),
    MP_P_UINT("epochs", sr_params, epochs, "200", 1, 100000, "most passes over the users (early stopping ends sooner)"),
    MP_P_UINT("patience", sr_params, patience, "10", 0, 100000,
              "early stopping: validation checks without improvement before stopping (0: never stop)"),
    MP_P_UINT("eval_every", sr_params, eval_every, "1", 1, 100000, "epochs between validation NDCG@10 checks"),
    MP_P_UINT("warmup", sr_params, warmup, "0", 0, 1000000000, "updates of linear learning-rate warm-up"),
    MP_P_CHOICE("loss", sr_params, loss, "auto", sr_loss_names,
                "full: softmax over every item; sampled: shared popularity negatives with the log-Q correction; "
                "auto: full up to 262144 items"),
    MP_P_UINT("negatives", sr_params, negatives, "1024", 1, 1000000, "negatives per batch with loss=sampled"),
    MP_P_CHOICE("features", sr_params, features, "none", sr_feat_names,
                "content: add each item's category, brand, price bucket and text embedding (when the data has them) "
                "to its input embedding; none: item ids only"),
    MP_P_CHOICE("row_weight", sr_params, row_weight, "epoch", sr_row_weight_names,
                "batch: each batch's loss is the mean over its positions; epoch: divided by the epoch's mean positions "
                "per batch, so every position weighs the same in batches of very different lengths"),
    MP_P_U64("seed", sr_params, seed, "42", 0, UINT64_MAX, "random seed (weights, batches, dropout)"),
    {NULL},
};

static int sr_check_params(const void *params, mp_error *err) {
    const sr_params *p = params;
    if (p->dim % p->heads != 0)
        return mp_error_set(err, MP_EINVAL, "sasrec: heads (%u) must divide dim (%u)", p->heads, p->dim);
    return MP_OK;
}

static void sr_inputs_free(sr_inputs *in) {
    free(in->fid), free(in->text), free(in->W), free(in->gW), free(in->mW), free(in->vW);
    memset(in, 0, sizeof *in);
}

static void sr_release(void *impl) {
    sasrec *m = impl;
    mp_nn_tfm_free(&m->t);
    free(m->content.W);
    mp_item_titles_free(m->content.cat_names, m->content.n_categories);
    memset(&m->content, 0, sizeof m->content);
    sr_inputs_free(&m->in);
    mp_item_titles_free(m->titles, m->n_items);
    m->titles = NULL;
    m->n_items = 0;
    m->epochs_run = m->best_epoch = 0;
    m->best_valid = NAN;
}

static void sr_init(void *impl) { ((sasrec *)impl)->best_valid = NAN; }

static mp_nn_tfm_config sr_config(const sr_params *p, uint32_t n_items) {
    mp_nn_tfm_config c = {.n_vocab = n_items,
                          .max_len = p->max_len,
                          .dim = p->dim,
                          .n_layers = p->layers,
                          .n_heads = p->heads,
                          .ffn_dim = p->ffn_auto ? 4 * p->dim : p->ffn,
                          .dropout = (float)p->dropout,
                          .ln_eps = 1e-5f,
                          .emb_scale = sqrtf((float)p->dim)};
    return c;
}

/* Events that make a user's sequence: everything but dislikes and returns, of items the model covers; a repeat of
 * the item just before (a view, then a click and a cart of the same item) is one step of the sequence. */
static int sr_keep(const mp_interaction *e, uint32_t n_items) {
    return e->item < n_items && e->type != MP_EV_DISLIKE && e->type != MP_EV_RETURN;
}

/* The newest max_len kept items of a history (repeats of the item before dropped), oldest first, into seq; returns
 * the count. When pos is given,
 * pos[j] is the history index of seq[j]. */
static size_t sr_history(const sasrec *m, const mp_user_ctx *ctx, uint32_t *seq, size_t *pos) {
    size_t n = 0, T = m->p.max_len;
    for (size_t i = ctx->n_history; i-- > 0 && n < T;)
        if (sr_keep(&ctx->history[i], m->n_items) && (n == 0 || seq[T - n] != ctx->history[i].item)) {
            seq[T - 1 - n] = ctx->history[i].item;
            if (pos) pos[T - 1 - n] = i;
            n++;
        }
    memmove(seq, seq + (T - n), n * sizeof *seq);
    if (pos) memmove(pos, pos + (T - n), n * sizeof *pos);
    return n;
}

static uint32_t sr_hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* ---- input features -------------------------------------------------------------------------------------- */

static uint32_t sr_price_bucket(double price) {
    if (!(isfinite(price) && price > 0)) return MP_NN_PAD;
    int b = (int)floor(log2(price + 1));
    return (uint32_t)(b < 0 ? 0 : b >= SR_PRICE_BUCKETS ? SR_PRICE_BUCKETS - 1 : b);
}

/* extra (N,C) += the features of items inp[0..N) (MP_NN_PAD and items without features add nothing). idx (N) is
 * scratch; xt (N, text_dim) scratch when there are text embeddings. */
static void sr_extra_fwd(const sr_inputs *in, const uint32_t *inp, size_t N, size_t C, float *extra, uint32_t *idx,
                         float *xt) {
    memset(extra, 0, N * C * sizeof *extra);
    for (int f = 0; f < SR_NFID; f++) {
        for (size_t i = 0; i < N; i++) idx[i] = inp[i] == MP_NN_PAD ? MP_NN_PAD : in->fid[(size_t)inp[i] * SR_NFID + f];
        mp_nn_embedding_fwd(extra, idx, in->W, N, C, 1.0f, 1);
    }
    if (in->text) {
        size_t D = in->text_dim, off = (size_t)in->rows - D;
        for (size_t i = 0; i < N; i++) {
            if (inp[i] == MP_NN_PAD) memset(xt + i * D, 0, D * sizeof *xt);
            else memcpy(xt + i * D, in->text + (size_t)inp[i] * D, D * sizeof *xt);
        }
        mp_nn_gemm(0, 0, N, C, D, 1.0f, xt, D, in->W + off * C, C, 1.0f, extra, C);
    }
}

/* gW += the gradient of extra's forward, given dextra (N,C); xt still holds the forward's text rows. */
static void sr_extra_bwd(sr_inputs *in, const uint32_t *inp, size_t N, size_t C, const float *dextra, uint32_t *idx,
                         const float *xt) {
    for (int f = 0; f < SR_NFID; f++) {
        for (size_t i = 0; i < N; i++) idx[i] = inp[i] == MP_NN_PAD ? MP_NN_PAD : in->fid[(size_t)inp[i] * SR_NFID + f];
        mp_nn_embedding_bwd(in->gW, NULL, dextra, idx, N, C, 1.0f);
    }
    if (in->text) {
        size_t D = in->text_dim, off = (size_t)in->rows - D;
        mp_nn_gemm(1, 0, D, C, N, 1.0f, xt, D, dextra, C, 1.0f, in->gW + off * C, C);
    }
}

/* Builds the feature ids of the training items and allocates Wf (small random values) with its training state.
 * Leaves in->W NULL when the data has no content at all. */
static int sr_inputs_build(sasrec *m, const mp_train_data *data, mp_error *err) {
    sr_inputs *in = &m->in;
    const mp_train_content *tc = data->content;
    size_t V = data->n_items, C = m->p.dim;
    int has_cat = data->item_category && data->n_categories > 1, has_brand = tc && tc->brands,
        has_price = tc && tc->prices, has_text = tc && tc->embeddings && tc->embedding_dim > 0;
    if (!has_cat && !has_brand && !has_price && !has_text) return MP_OK;
    in->n_cat = has_cat ? data->n_categories : 0;
    in->text_dim = has_text ? tc->embedding_dim : 0;
    in->rows = in->n_cat + SR_BRAND_BUCKETS + SR_PRICE_BUCKETS + in->text_dim;
    in->fid = malloc(V * SR_NFID * sizeof *in->fid);
    in->W = malloc((size_t)in->rows * C * sizeof *in->W);
    in->gW = calloc((size_t)in->rows * C, sizeof *in->gW);
    in->mW = calloc((size_t)in->rows * C, sizeof *in->mW);
    in->vW = calloc((size_t)in->rows * C, sizeof *in->vW);
    if (has_text) in->text = malloc(V * in->text_dim * sizeof *in->text);
    if (!in->fid || !in->W || !in->gW || !in->mW || !in->vW || (has_text && !in->text)) {
        sr_inputs_free(in);
        return mp_error_set(err, MP_ENOMEM, "sasrec: out of memory for the item features");
    }
    for (size_t i = 0; i < V; i++) {
        uint32_t *f = in->fid + i * SR_NFID;
        f[0] = has_cat && data->item_category[i] > 0 && data->item_category[i] < in->n_cat ? data->item_category[i]
                                                                                          : MP_NN_PAD;
        f[1] = has_brand && tc->brands[i] && *tc->brands[i] ? in->n_cat + sr_hash(tc->brands[i]) % SR_BRAND_BUCKETS
                                                            : MP_NN_PAD;
        uint32_t pb = has_price ? sr_price_bucket(tc->prices[i]) : MP_NN_PAD;
        f[2] = pb == MP_NN_PAD ? MP_NN_PAD : in->n_cat + SR_BRAND_BUCKETS + pb;
        if (has_text) memcpy(in->text + i * in->text_dim, tc->embeddings + i * in->text_dim, in->text_dim * sizeof(float));
    }
    mp_rng rng;
    mp_rng_seed(&rng, m->p.seed ^ 0xFEA7u);
    for (size_t i = 0; i < (size_t)in->rows * C; i++) in->W[i] = (float)(0.02 * mp_rng_normal(&rng));
    return MP_OK;
}

/* ---- scoring ---------------------------------------------------------------------------------------------- */

/* Query vectors (n, C) of n contexts: the network's output at each history's newest position, on a view of the
 * weights (so callers may run at once). have[j] = 0 (and a zero query) for a context without known items. */
static int sr_queries(const sasrec *m, const mp_user_ctx *ctxs, size_t n, float *q, int *have, mp_error *err) {
    size_t T = m->p.max_len, C = m->p.dim;
    const size_t block = 64;
    mp_nn_tfm v;
    int rc = mp_nn_tfm_view(&v, &m->t, n < block ? n : block, err);
    if (rc) return rc;
    uint32_t *inp = malloc(block * T * sizeof *inp), *seq = malloc(T * sizeof *seq);
    size_t *len = malloc(block * sizeof *len);
    const sr_inputs *in = &m->in;
    float *extra = in->W ? malloc(block * T * C * sizeof *extra) : NULL;
    uint32_t *idx = in->W ? malloc(block * T * sizeof *idx) : NULL;
    float *xt = in->text ? malloc(block * T * in->text_dim * sizeof *xt) : NULL;
    if (!inp || !seq || !len || (in->W && (!extra || !idx)) || (in->text && !xt)) {
        rc = mp_error_set(err, MP_ENOMEM, "sasrec: out of memory scoring");
        goto done;
    }
    for (size_t b0 = 0; b0 < n; b0 += block) {
        size_t B = n - b0 < block ? n - b0 : block, Tw = 1;
        for (size_t j = 0; j < B; j++) {
            len[j] = sr_history(m, &ctxs[b0 + j], seq, NULL);
            if (len[j] > Tw) Tw = len[j];
        }
        for (size_t j = 0; j < B; j++) {
            uint32_t *row = inp + j * Tw;
            size_t L = len[j];
            for (size_t t = 0; t < Tw - L; t++) row[t] = MP_NN_PAD;
            sr_history(m, &ctxs[b0 + j], seq, NULL); /* seq holds max_len ids; the first L are the history */
            memcpy(row + (Tw - L), seq, L * sizeof *seq);
        }
        if (in->W) sr_extra_fwd(in, inp, B * Tw, C, extra, idx, xt);
        if ((rc = mp_nn_tfm_forward_len(&v, inp, in->W ? extra : NULL, B, Tw, 0, 0, err))) goto done;
        for (size_t j = 0; j < B; j++) {
            have[b0 + j] = len[j] > 0;
            if (len[j]) memcpy(q + (b0 + j) * C, v.acts.lnf + (j * Tw + Tw - 1) * C, C * sizeof(float));
            else memset(q + (b0 + j) * C, 0, C * sizeof(float));
        }
    }
done:
    free(inp);
    free(seq);
    free(len);
    free(extra);
    free(idx);
    free(xt);
    mp_nn_tfm_free(&v);
    return rc;
}

static int sr_score_block(const void *impl, const mp_user_ctx *ctxs, size_t n, float *scores, mp_error *err) {
    const sasrec *m = impl;
    size_t C = m->p.dim, V = m->n_items;
    float *q = malloc(n * C * sizeof *q);
    int *have = malloc(n * sizeof *have);
    int rc = q && have ? sr_queries(m, ctxs, n, q, have, err) : mp_error_set(err, MP_ENOMEM, "sasrec: out of memory");
    if (rc == MP_OK) mp_nn_gemm(0, 1, n, V, C, 1.0f, q, C, m->t.params.wte, C, 0.0f, scores, V);
    free(q);
    free(have);
    return rc;
}

static int sr_score_all(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err) {
    return sr_score_block(impl, ctx, 1, scores, err);
}

static int sr_query_vector(const void *impl, const mp_user_ctx *ctx, float *out, int *have, mp_error *err) {
    return sr_queries(impl, ctx, 1, out, have, err);
}

static int sr_item_vectors(const void *impl, const float **vecs, uint32_t *n, uint32_t *dim, mp_error *err) {
    const sasrec *m = impl;
    (void)err;
    *vecs = m->t.params.wte;
    *n = m->n_items;
    *dim = m->p.dim;
    return MP_OK;
}

static float sr_cosine(const float *a, const float *b, size_t C) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t k = 0; k < C; k++) ab += (double)a[k] * b[k], aa += (double)a[k] * a[k], bb += (double)b[k] * b[k];
    return aa > 0 && bb > 0 ? (float)(ab / sqrt(aa * bb)) : 0.0f;
}

static int sr_similar(const void *impl, uint32_t item, size_t n, uint32_t *out_items, float *out_scores,
                      size_t *n_out, mp_error *err) {
    const sasrec *m = impl;
    size_t C = m->p.dim, V = m->n_items;
    float *s = malloc(V * sizeof *s);
    if (!s) return mp_error_set(err, MP_ENOMEM, "sasrec: out of memory");
    const float *e = m->t.params.wte + (size_t)item * C;
    for (size_t i = 0; i < V; i++) s[i] = sr_cosine(e, m->t.params.wte + i * C, C);
    s[item] = -INFINITY;
    int rc = mp_topk(s, V, NULL, n, out_items, n_out);
    if (rc) rc = mp_error_set(err, rc, "sasrec: ranking similar items failed");
    for (size_t i = 0; rc == MP_OK && i < *n_out; i++) out_scores[i] = s[out_items[i]];
    free(s);
    return rc;
}

/* The history item the newest position attends to most (mean over the last block's heads), each weight times the
 * item's similarity to `item` when that is positive, so the reason is the past item that both drives the query
 * and resembles the recommendation. */
static int sr_explain(const void *impl, const mp_user_ctx *ctx, uint32_t item, char *buf, size_t cap,
                      mp_error *err) {
    const sasrec *m = impl;
    if (item >= m->n_items) return mp_error_set(err, MP_ENOTFOUND, "sasrec: unknown item %u", item);
    size_t T = m->p.max_len, C = m->p.dim, NH = m->p.heads;
    uint32_t *seq = malloc(T * sizeof *seq);
    size_t *pos = malloc(T * sizeof *pos);
    mp_nn_tfm v;
    memset(&v, 0, sizeof v);
    float *extra = NULL, *xt = NULL;
    uint32_t *idx = NULL;
    int rc = seq && pos ? MP_OK : mp_error_set(err, MP_ENOMEM, "sasrec: out of memory");
    size_t L = rc ? 0 : sr_history(m, ctx, seq, pos);
    if (rc == MP_OK && L == 0) {
        snprintf(buf, cap, ctx->user == MP_NO_USER ? "popular right now (no history in this session yet)"
                                                   : "popular right now (no history to personalise from yet)");
        goto done;
    }
    if (rc == MP_OK && m->in.W) {
        extra = malloc(L * C * sizeof *extra);
        idx = malloc(L * sizeof *idx);
        xt = m->in.text ? malloc(L * m->in.text_dim * sizeof *xt) : NULL;
        if (!extra || !idx || (m->in.text && !xt)) rc = mp_error_set(err, MP_ENOMEM, "sasrec: out of memory");
        else sr_extra_fwd(&m->in, seq, L, C, extra, idx, xt);
    }
    if (rc == MP_OK) rc = mp_nn_tfm_view(&v, &m->t, 1, err);
    if (rc == MP_OK) rc = mp_nn_tfm_forward_len(&v, seq, extra, 1, L, 0, 0, err);
    if (rc == MP_OK) {
        /* att (L_layers, 1, NH, L, L): the last layer, query row L-1 */
        const float *att = v.acts.att + (size_t)(m->p.layers - 1) * v.max_batch * NH * T * T;
        const float *e = m->t.params.wte + (size_t)item * C;
        double best = -1;
        size_t best_j = L - 1;
        for (size_t j = 0; j < L; j++) {
            double a = 0;
            for (size_t h = 0; h < NH; h++) a += att[(h * L + (L - 1)) * L + j];
            a /= (double)NH;
            if (seq[j] == item) continue;
            double sim = sr_cosine(e, m->t.params.wte + (size_t)seq[j] * C, C);
            double w = a * (sim > 0 ? sim : 0.01);
            if (w > best) best = w, best_j = j;
        }
        char label[MP_ITEM_TITLE_MAX + 16];
        const mp_interaction *ev = &ctx->history[pos[best_j]];
        mp_bprmf_item_label(m->titles, ev->item, label, sizeof label);
        size_t ago = L - 1 - best_j;
        if (ago == 0) snprintf(buf, cap, "because you %s %s just now", mp_bprmf_verb(ev->type), label);
        else snprintf(buf, cap, "because you %s %s (%zu item%s ago)", mp_bprmf_verb(ev->type), label, ago,
                      ago == 1 ? "" : "s");
    }
done:
    mp_nn_tfm_free(&v);
    free(seq);
    free(pos);
    free(extra);
    free(idx);
    free(xt);
    return rc;
}

/* ---- content projection (set_item) ------------------------------------------------------------------------ */

/* Feature vector x (D) of one item's content; returns how many features are present (0: none). */
static size_t sr_features(const sr_content *c, uint32_t category, const char *brand, double price, const float *emb,
                          uint32_t emb_dim, float *x) {
    memset(x, 0, c->D * sizeof *x);
    size_t n = 0, off = 0;
    if (category < c->n_categories) x[off + category] = 1, n++;
    off += c->n_categories;
    if (brand && *brand) x[off + sr_hash(brand) % SR_BRAND_BUCKETS] = 1, n++;
    off += SR_BRAND_BUCKETS;
    if (isfinite(price) && price > 0) {
        int b = (int)floor(log2(price + 1));
        x[off + (b < 0 ? 0 : b >= SR_PRICE_BUCKETS ? SR_PRICE_BUCKETS - 1 : b)] = 1, n++;
    }
    off += SR_PRICE_BUCKETS;
    if (emb && emb_dim == c->text_dim && c->text_dim) {
        int any = 0;
        for (uint32_t k = 0; k < emb_dim; k++) x[off + k] = emb[k], any |= emb[k] != 0;
        n += any;
    }
    off += c->text_dim;
    x[off] = 1; /* bias */
    return n;
}

/* Fits W (D, C) by ridge regression of the trained embeddings on the items' content: (X^T X + lambda I) W = X^T E. */
static int sr_fit_content(sasrec *m, const mp_train_data *data, mp_error *err) {
    const mp_train_content *tc = data->content;
    sr_content c = {.n_categories = data->item_category ? data->n_categories : 0,
                    .text_dim = tc && tc->embeddings ? tc->embedding_dim : 0};
    c.D = c.n_categories + SR_BRAND_BUCKETS + SR_PRICE_BUCKETS + c.text_dim + 1;
    if (c.D > 2048) c.text_dim = 0, c.D = c.n_categories + SR_BRAND_BUCKETS + SR_PRICE_BUCKETS + 1;
    if (c.D > 2048 || (c.n_categories == 0 && !(tc && (tc->brands || tc->prices)) && c.text_dim == 0)) return MP_OK;
    size_t D = c.D, C = m->p.dim, V = m->n_items;
    double *A = calloc(D * D, sizeof *A), *B = calloc(D * C, sizeof *B), *col = malloc(D * sizeof *col);
    float *x = malloc(D * sizeof *x);
    int rc = MP_OK;
    if (!A || !B || !col || !x) {
        rc = mp_error_set(err, MP_ENOMEM, "sasrec: out of memory for the content projection");
        goto done;
    }
    size_t used = 0;
    for (size_t i = 0; i < V; i++) {
        size_t nf = sr_features(&c, data->item_category ? data->item_category[i] : UINT32_MAX,
                                tc && tc->brands ? tc->brands[i] : NULL, tc && tc->prices ? tc->prices[i] : NAN,
                                tc && tc->embeddings && c.text_dim ? tc->embeddings + i * c.text_dim : NULL, c.text_dim,
                                x);
        if (nf == 0) continue;
        used++;
        const float *e = m->t.params.wte + i * C;
        for (size_t a = 0; a < D; a++) {
            if (x[a] == 0) continue;
            for (size_t b = 0; b < D; b++) A[a * D + b] += (double)x[a] * x[b];
            for (size_t k = 0; k < C; k++) B[a * C + k] += (double)x[a] * e[k];
        }
    }
    if (used < 2) goto done;
    for (size_t a = 0; a < D; a++) A[a * D + a] += 1.0; /* ridge */
    if ((rc = mp_cholesky_factor(A, D))) {
        rc = mp_error_set(err, MP_ERANGE, "sasrec: content projection system is not positive definite");
        goto done;
    }
    c.W = malloc(D * C * sizeof *c.W);
    if (!c.W || (data->category_names &&
                 mp_item_titles_copy(data->category_names, c.n_categories, &c.cat_names) != MP_OK)) {
        free(c.W);
        rc = mp_error_set(err, MP_ENOMEM, "sasrec: out of memory for the content projection");
        goto done;
    }
    for (size_t k = 0; k < C; k++) {
        for (size_t a = 0; a < D; a++) col[a] = B[a * C + k];
        mp_cholesky_solve_factored(A, col, D);
        for (size_t a = 0; a < D; a++) c.W[a * C + k] = (float)col[a];
    }
    m->content = c;
done:
    free(A);
    free(B);
    free(col);
    free(x);
    return rc;
}

/* Grows the feature ids (and text rows) of the input features to n items; new items have none. */
static int sr_inputs_grow(sr_inputs *in, uint32_t old_n, uint32_t n) {
    if (!in->W) return MP_OK;
    uint32_t *fid = realloc(in->fid, (size_t)n * SR_NFID * sizeof *fid);
    if (!fid) return MP_ENOMEM;
    in->fid = fid;
    for (size_t i = (size_t)old_n * SR_NFID; i < (size_t)n * SR_NFID; i++) fid[i] = MP_NN_PAD;
    if (in->text) {
        float *t = realloc(in->text, (size_t)n * in->text_dim * sizeof *t);
        if (!t) return MP_ENOMEM;
        in->text = t;
        memset(t + (size_t)old_n * in->text_dim, 0, (size_t)(n - old_n) * in->text_dim * sizeof *t);
    }
    return MP_OK;
}

/* The input features of one item from its content (category id cat or UINT32_MAX). */
static void sr_inputs_set(sr_inputs *in, uint32_t item, uint32_t cat, const mp_item_content *c) {
    uint32_t *f = in->fid + (size_t)item * SR_NFID;
    f[0] = cat > 0 && cat < in->n_cat ? cat : MP_NN_PAD;
    f[1] = c->brand && *c->brand ? in->n_cat + sr_hash(c->brand) % SR_BRAND_BUCKETS : MP_NN_PAD;
    uint32_t pb = sr_price_bucket(c->price);
    f[2] = pb == MP_NN_PAD ? MP_NN_PAD : in->n_cat + SR_BRAND_BUCKETS + pb;
    if (in->text && c->embedding && c->embedding_dim == in->text_dim)
        memcpy(in->text + (size_t)item * in->text_dim, c->embedding, in->text_dim * sizeof(float));
}

static int sr_set_item(void *impl, uint32_t item, const mp_item_content *content, mp_error *err) {
    sasrec *m = impl;
    const sr_content *c = &m->content;
    if (!c->W)
        return mp_error_set(err, MP_EINVAL,
                            "sasrec: the model was trained without item content (categories, brands, prices or text "
                            "embeddings), so it cannot place a new item; retrain with content");
    uint32_t cat = UINT32_MAX;
    if (content->category && c->cat_names)
        for (uint32_t k = 0; k < c->n_categories; k++)
            if (c->cat_names[k] && strcmp(c->cat_names[k], content->category) == 0) cat = k;
    float *x = malloc(c->D * sizeof *x);
    if (!x) return mp_error_set(err, MP_ENOMEM, "sasrec: out of memory");
    size_t nf = sr_features(c, cat, content->brand, content->price, content->embedding, content->embedding_dim, x);
    int rc = MP_OK;
    if (nf == 0) {
        rc = mp_error_set(err, MP_EINVAL,
                          "sasrec: item %u has no content the model can use (a trained category, a brand, a price or "
                          "a %u-d text embedding)",
                          item, c->text_dim);
        goto done;
    }
    if (item >= m->n_items) {
        if ((rc = mp_item_titles_grow(&m->titles, m->n_items, item + 1)) ||
            (rc = sr_inputs_grow(&m->in, m->n_items, item + 1))) {
            rc = mp_error_set(err, rc, "sasrec: out of memory");
            goto done;
        }
        if ((rc = mp_nn_tfm_grow_vocab(&m->t, item + 1, err))) goto done;
        m->n_items = item + 1;
    }
    if (m->in.W) sr_inputs_set(&m->in, item, cat, content);
    size_t C = m->p.dim;
    float *e = m->t.params.wte + (size_t)item * C;
    for (size_t k = 0; k < C; k++) {
        double acc = 0;
        for (size_t a = 0; a < c->D; a++) acc += (double)x[a] * c->W[a * C + k];
        e[k] = (float)acc;
    }
    if (content->title && m->titles) {
        char *t = strdup(content->title);
        if (t) {
            free(m->titles[item]);
            m->titles[item] = t;
        }
    }
done:
    free(x);
    return rc;
}

/* ---- training --------------------------------------------------------------------------------------------- */

typedef struct sr_seqs {
    size_t n_items;   /* kept events in items[] */
    uint32_t *items;  /* all kept items, user by user */
    size_t *start;    /* [n_users + 1] */
    uint32_t *users;  /* users with at least 2 items */
    size_t n_train;
} sr_seqs;

static void sr_seqs_free(sr_seqs *s) {
    free(s->items);
    free(s->start);
    free(s->users);
}

static int sr_build_seqs(const mp_train_data *data, sr_seqs *s, mp_error *err) {
    memset(s, 0, sizeof *s);
    s->items = malloc((data->n_events ? data->n_events : 1) * sizeof *s->items);
    s->start = calloc((size_t)data->n_users + 1, sizeof *s->start);
    s->users = malloc(((size_t)data->n_users + 1) * sizeof *s->users);
    if (!s->items || !s->start || !s->users) {
        sr_seqs_free(s);
        return mp_error_set(err, MP_ENOMEM, "sasrec: out of memory for the sequences");
    }
    size_t n = 0, e = 0;
    for (uint32_t u = 0; u < data->n_users; u++) {
        s->start[u] = n;
        for (; e < data->n_events && data->events[e].user == u; e++)
            if (sr_keep(&data->events[e], data->n_items) &&
                (n == s->start[u] || s->items[n - 1] != data->events[e].item))
                s->items[n++] = data->events[e].item;
        if (n - s->start[u] >= 2) s->users[s->n_train++] = u;
    }
    s->start[data->n_users] = n;
    s->n_items = n;
    return MP_OK;
}

static int sr_len_desc(const void *a, const void *b) {
    const size_t *x = a, *y = b; /* pairs (length, user) */
    return x[0] < y[0] ? 1 : x[0] > y[0] ? -1 : (x[1] > y[1]) - (x[1] < y[1]);
}

/* Batches of one epoch: users shuffled, then sorted by length within groups of 32 batches (so a batch's window is
 * its longest sequence), the batches themselves in shuffled order. order[] gets the users, bstart[] the batches. */
static void sr_epoch_batches(const sr_seqs *s, size_t batch, mp_rng *rng, size_t *pairs, uint32_t *order,
                             size_t *bstart, size_t *n_batches, uint32_t *bperm) {
    size_t n = s->n_train;
    memcpy(order, s->users, n * sizeof *order);
    mp_rng_shuffle_u32(rng, order, n);
    size_t group = batch * 32;
    for (size_t g = 0; g < n; g += group) {
        size_t m = n - g < group ? n - g : group;
        for (size_t i = 0; i < m; i++) {
            uint32_t u = order[g + i];
            pairs[2 * i] = s->start[u + 1] - s->start[u];
            pairs[2 * i + 1] = u;
        }
        qsort(pairs, m, 2 * sizeof *pairs, sr_len_desc);
        for (size_t i = 0; i < m; i++) order[g + i] = (uint32_t)pairs[2 * i + 1];
    }
    size_t nb = (n + batch - 1) / batch;
    for (size_t b = 0; b < nb; b++) bperm[b] = (uint32_t)b;
    mp_rng_shuffle_u32(rng, bperm, nb);
    for (size_t b = 0; b < nb; b++) bstart[b] = (size_t)bperm[b] * batch;
    *n_batches = nb;
}

/* Popularity^0.75 proposal for the sampled softmax: cumulative weights (V) and log-probabilities (V). */
static int sr_proposal(const sr_seqs *s, size_t V, double **cum_out, float **logq_out, mp_error *err) {
    double *cum = calloc(V, sizeof *cum);
    float *logq = malloc(V * sizeof *logq);
    if (!cum || !logq) {
        free(cum), free(logq);
        return mp_error_set(err, MP_ENOMEM, "sasrec: out of memory for the sampling proposal");
    }
    for (size_t i = 0; i < s->n_items; i++) cum[s->items[i]] += 1;
    double total = 0;
    for (size_t i = 0; i < V; i++) {
        double w = pow(cum[i] + 1, 0.75);
        total += w;
        cum[i] = w;
    }
    double acc = 0;
    for (size_t i = 0; i < V; i++) {
        logq[i] = (float)log(cum[i] / total);
        acc += cum[i];
        cum[i] = acc;
    }
    *cum_out = cum;
    *logq_out = logq;
    return MP_OK;
}

static uint32_t sr_draw(const double *cum, size_t V, mp_rng *rng) {
    double u = mp_rng_uniform(rng) * cum[V - 1];
    size_t lo = 0, hi = V - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cum[mid] > u) hi = mid;
        else lo = mid + 1;
    }
    return (uint32_t)lo;
}

typedef struct sr_work {
    uint32_t *inp, *tgt, *vtgt; /* (B,T) input and targets; (N) targets of the rows with one */
    float *hv, *dhv, *dlnf;     /* (N,C) gathered outputs and their gradients; (B,T,C) */
    float *scratch;             /* full: (rows, V); sampled: (N, S+1) */
    size_t scratch_rows;
    uint32_t *neg;
    size_t *pairs;
    uint32_t *order, *bperm;
    size_t *bstart;
    float *best;                /* snapshot of the best epoch's parameters */
    float *extra, *dextra, *xt; /* (B,T,C) input features and their gradient; (B,T,text_dim) text rows */
    uint32_t *fidx;             /* (B,T) scratch ids */
    float *best_in;             /* snapshot of the feature table */
} sr_work;

static void sr_work_free(sr_work *w) {
    free(w->inp), free(w->tgt), free(w->vtgt), free(w->hv), free(w->dhv), free(w->dlnf), free(w->scratch);
    free(w->neg), free(w->pairs), free(w->order), free(w->bperm), free(w->bstart), free(w->best);
    free(w->extra), free(w->dextra), free(w->xt), free(w->fidx), free(w->best_in);
}

/* One batch: forward, loss, backward, update. Returns the batch's summed loss in *loss, rows in *rows. */
static int sr_step(sasrec *m, const sr_seqs *s, sr_work *w, const uint32_t *users, size_t B, int sampled,
                   const double *cum, const float *logq, mp_rng *rng, uint64_t seed, const mp_nn_adamw *opt,
                   double rows_per_batch, double *loss, size_t *rows, mp_error *err) {
    size_t T = m->p.max_len, C = m->p.dim, V = m->n_items, Tw = 1;
    for (size_t j = 0; j < B; j++) {
        size_t n = s->start[users[j] + 1] - s->start[users[j]] - 1; /* inputs: all but the newest */
        if (n > Tw) Tw = n;
    }
    if (Tw > T) Tw = T;
    size_t N = 0;
    for (size_t j = 0; j < B; j++) {
        const uint32_t *q = s->items + s->start[users[j]];
        size_t n = s->start[users[j] + 1] - s->start[users[j]] - 1, keep = n < Tw ? n : Tw, pad = Tw - keep;
        const uint32_t *src = q + (n - keep);
        for (size_t t = 0; t < pad; t++) w->inp[j * Tw + t] = MP_NN_PAD, w->tgt[j * Tw + t] = MP_NN_PAD;
        for (size_t t = 0; t < keep; t++) {
            w->inp[j * Tw + pad + t] = src[t];
            w->tgt[j * Tw + pad + t] = src[t + 1];
        }
        N += keep;
    }
    sr_inputs *in = &m->in;
    if (in->W) sr_extra_fwd(in, w->inp, B * Tw, C, w->extra, w->fidx, w->xt);
    int rc = mp_nn_tfm_forward_len(&m->t, w->inp, in->W ? w->extra : NULL, B, Tw, 1, seed, err);
    if (rc) return rc;
    size_t r = 0;
    for (size_t i = 0; i < B * Tw; i++)
        if (w->tgt[i] != MP_NN_PAD) {
            memcpy(w->hv + r * C, m->t.acts.lnf + i * C, C * sizeof(float));
            w->vtgt[r++] = w->tgt[i];
        }
    mp_nn_tfm_zero_grad(&m->t);
    memset(w->dhv, 0, N * C * sizeof(float));
    float scale = m->p.row_weight == SR_ROWS_EPOCH ? (float)(1.0 / rows_per_batch) : 1.0f / (float)N;
    double l = 0;
    size_t cnt = 0;
    if (!sampled) {
        mp_nn_softmax_xent(&l, &cnt, w->dhv, m->t.grads.wte, w->hv, m->t.params.wte, w->vtgt, N, C, V,
                           scale, w->scratch, w->scratch_rows);
        mp_nn_rows_all(&m->t.wte_rows);
    } else {
        size_t S = m->p.negatives;
        for (size_t k = 0; k < S; k++) w->neg[k] = sr_draw(cum, V, rng);
        mp_nn_sampled_xent(&l, &cnt, w->dhv, m->t.grads.wte, &m->t.wte_rows, w->hv, m->t.params.wte, w->vtgt, w->neg,
                           S, logq, N, C, scale, w->scratch);
    }
    memset(w->dlnf, 0, B * Tw * C * sizeof(float));
    r = 0;
    for (size_t i = 0; i < B * Tw; i++)
        if (w->tgt[i] != MP_NN_PAD) memcpy(w->dlnf + i * C, w->dhv + (r++) * C, C * sizeof(float));
    if (in->W) memset(w->dextra, 0, B * Tw * C * sizeof(float));
    mp_nn_tfm_backward(&m->t, w->inp, w->dlnf, in->W ? w->dextra : NULL);
    mp_nn_tfm_update(&m->t, opt, (float)m->p.clip, sampled);
    if (in->W) {
        size_t nw = (size_t)in->rows * C;
        memset(in->gW, 0, nw * sizeof(float));
        sr_extra_bwd(in, w->inp, B * Tw, C, w->dextra, w->fidx, w->xt);
        float f = mp_nn_clip_factor(mp_nn_sqnorm(in->gW, nw), (float)m->p.clip);
        if (f != 1.0f) mp_nn_scale(in->gW, nw, f);
        mp_nn_adamw_update(opt, m->t.step, in->W, in->gW, in->mW, in->vW, nw);
    }
    *loss += l;
    *rows += cnt;
    return MP_OK;
}

static int sr_fit(void *impl, const mp_train_data *data, const mp_progress *progress, mp_error *err) {
    sasrec *m = impl;
    const sr_params *p = &m->p;
    size_t V = data->n_items, T = p->max_len, C = p->dim, B = p->batch;
    if (V < 2) return mp_error_set(err, MP_EINVAL, "sasrec: needs at least 2 items, the data has %zu", V);
    int sampled = p->loss == SR_LOSS_SAMPLED || (p->loss == SR_LOSS_AUTO && V > SR_FULL_MAX_ITEMS);
    if (p->loss == SR_LOSS_FULL && V > SR_FULL_MAX_ITEMS)
        return mp_error_set(err, MP_EINVAL,
                            "sasrec: loss=full over %zu items would keep a dense gradient and two moments of the item "
                            "table (%.0f MiB more) and score every item at every position; the limit is %u items: use "
                            "loss=sampled (or loss=auto)",
                            V, (double)V * C * 12 / 1048576.0, SR_FULL_MAX_ITEMS);
    sr_seqs s;
    int rc = sr_build_seqs(data, &s, err);
    if (rc) return rc;
    if (s.n_train == 0) {
        sr_seqs_free(&s);
        return mp_error_set(err, MP_EEMPTY, "sasrec: no user has two or more items in order to learn from");
    }
    mp_nn_tfm_config cfg = sr_config(p, (uint32_t)V);
    sr_work w;
    memset(&w, 0, sizeof w);
    double *cum = NULL;
    float *logq = NULL;
    int saved_threads = omp_get_max_threads();
    if (data->n_threads > 0) omp_set_num_threads(data->n_threads);
    if ((rc = mp_nn_tfm_create(&m->t, &cfg, err))) goto fail;
    mp_nn_tfm_init_weights(&m->t, p->seed);
    if ((rc = mp_nn_tfm_alloc(&m->t, B, 1, err))) goto fail;
    m->n_items = (uint32_t)V;
    m->loss_used = sampled ? SR_LOSS_SAMPLED : SR_LOSS_FULL;
    size_t N = B * T, S = p->negatives;
    w.scratch_rows = sampled ? 0 : (size_t)(16u << 20) / (V * sizeof(float));
    if (!sampled && w.scratch_rows < 1) w.scratch_rows = 1;
    if (w.scratch_rows > N) w.scratch_rows = N;
    w.inp = malloc(N * sizeof *w.inp);
    w.tgt = malloc(N * sizeof *w.tgt);
    w.vtgt = malloc(N * sizeof *w.vtgt);
    w.hv = malloc(N * C * sizeof *w.hv);
    w.dhv = malloc(N * C * sizeof *w.dhv);
    w.dlnf = malloc(N * C * sizeof *w.dlnf);
    w.scratch = malloc((sampled ? N * (S + 1) : w.scratch_rows * V) * sizeof *w.scratch);
    w.neg = malloc((sampled ? S : 1) * sizeof *w.neg);
    w.pairs = malloc(2 * B * 32 * sizeof *w.pairs);
    w.order = malloc(s.n_train * sizeof *w.order);
    w.bperm = malloc((s.n_train / B + 2) * sizeof *w.bperm);
    w.bstart = malloc((s.n_train / B + 2) * sizeof *w.bstart);
    w.best = malloc(m->t.n_params * sizeof *w.best);
    if (!w.inp || !w.tgt || !w.vtgt || !w.hv || !w.dhv || !w.dlnf || !w.scratch || !w.neg || !w.pairs || !w.order ||
        !w.bperm || !w.bstart || !w.best) {
        rc = mp_error_set(err, MP_ENOMEM, "sasrec: out of memory for training buffers");
        goto fail;
    }
    if (sampled && (rc = sr_proposal(&s, V, &cum, &logq, err))) goto fail;
    if (p->features == SR_FEAT_CONTENT) {
        if ((rc = sr_inputs_build(m, data, err))) goto fail;
        if (m->in.W) {
            w.extra = malloc(N * C * sizeof *w.extra);
            w.dextra = malloc(N * C * sizeof *w.dextra);
            w.fidx = malloc(N * sizeof *w.fidx);
            w.best_in = malloc((size_t)m->in.rows * C * sizeof *w.best_in);
            w.xt = m->in.text ? malloc(N * m->in.text_dim * sizeof *w.xt) : NULL;
            if (!w.extra || !w.dextra || !w.fidx || !w.best_in || (m->in.text && !w.xt)) {
                rc = mp_error_set(err, MP_ENOMEM, "sasrec: out of memory for the item features");
                goto fail;
            }
        }
    }
    if ((rc = mp_item_titles_copy(data->item_titles, (uint32_t)V, &m->titles))) {
        rc = mp_error_set(err, rc, "sasrec: out of memory for titles");
        goto fail;
    }

    mp_rng rng;
    mp_rng_seed(&rng, p->seed ^ 0x5A5A5A5Au);
    int early = data->valid && data->n_valid > 0 && p->patience > 0;
    uint32_t since_best = 0;
    m->best_valid = NAN;
    m->best_epoch = 0;
    size_t n_batches = 0, steps_per_epoch = (s.n_train + B - 1) / B;
    /* targets per epoch (inputs are capped at max_len) over batches: the row weight of row_weight=epoch */
    double total_rows = 0;
    for (size_t i = 0; i < s.n_train; i++) {
        size_t n = s.start[s.users[i] + 1] - s.start[s.users[i]] - 1;
        total_rows += (double)(n < T ? n : T);
    }
    double rows_per_batch = total_rows / (double)steps_per_epoch;
    uint64_t total_steps = (uint64_t)steps_per_epoch * p->epochs;
    for (uint32_t epoch = 1; epoch <= p->epochs; epoch++) {
        sr_epoch_batches(&s, B, &rng, w.pairs, w.order, w.bstart, &n_batches, w.bperm);
        double loss = 0;
        size_t rows = 0;
        for (size_t b = 0; b < n_batches; b++) {
            size_t b0 = w.bstart[b], nb = s.n_train - b0 < B ? s.n_train - b0 : B;
            mp_nn_adamw opt = {.lr = mp_nn_lr_at((float)p->lr, m->t.step, p->warmup, total_steps, MP_NN_DECAY_NONE, 1),
                               .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-8f, .weight_decay = (float)p->weight_decay};
            uint64_t seed = p->seed * 0x9E3779B97F4A7C15ull + m->t.step + 1;
            if ((rc = sr_step(m, &s, &w, w.order + b0, nb, sampled, cum, logq, &rng, seed, &opt, rows_per_batch, &loss,
                               &rows, err)))
                goto fail;
        }
        m->epochs_run = epoch;
        if (!isfinite(loss)) {
            rc = mp_error_set(err, MP_ERANGE, "sasrec: the loss diverged at epoch %u (lower learning_rate)", epoch);
            goto fail;
        }
        mp_progress_report(progress, "fit", epoch, p->epochs);
        if (!early || (epoch % p->eval_every != 0 && epoch != p->epochs)) continue;
        double v;
        rc = mp_train_data_valid_ndcg_block(data, sr_score_block, m, SR_VALID_K, &v, err);
        if (rc == MP_EEMPTY) {
            early = 0;
            rc = MP_OK;
            continue;
        }
        if (rc) goto fail;
        if (isnan(m->best_valid) || v > m->best_valid) {
            m->best_valid = v;
            m->best_epoch = epoch;
            since_best = 0;
            memcpy(w.best, m->t.params_memory, m->t.n_params * sizeof(float));
            if (m->in.W) memcpy(w.best_in, m->in.W, (size_t)m->in.rows * C * sizeof(float));
        } else if (++since_best >= p->patience) {
            break;
        }
    }
    if (m->best_epoch && m->best_epoch != m->epochs_run) {
        memcpy(m->t.params_memory, w.best, m->t.n_params * sizeof(float));
        if (m->in.W) memcpy(m->in.W, w.best_in, (size_t)m->in.rows * C * sizeof(float));
    }
    if (m->in.W) { /* training state of the feature table */
        free(m->in.gW), free(m->in.mW), free(m->in.vW);
        m->in.gW = m->in.mW = m->in.vW = NULL;
    }
    if (!m->best_epoch) m->best_epoch = m->epochs_run;
    if ((rc = sr_fit_content(m, data, err))) goto fail;
    /* keep the parameters only: gradients, moments and activations are training state */
    {
        mp_nn_tfm keep;
        if ((rc = mp_nn_tfm_create(&keep, &cfg, err))) goto fail;
        memcpy(keep.params_memory, m->t.params_memory, keep.n_params * sizeof(float));
        mp_nn_tfm_free(&m->t);
        m->t = keep;
    }
    rc = MP_OK;
    goto done;
fail:
    sr_release(m);
done:
    omp_set_num_threads(saved_threads);
    sr_work_free(&w);
    free(cum);
    free(logq);
    sr_seqs_free(&s);
    return rc;
}

/* ---- files ------------------------------------------------------------------------------------------------ */

static int sr_save(const void *impl, mp_mf_writer *w, mp_error *err) {
    const sasrec *m = impl;
    (void)err;
    mp_params_put(sr_param_table, MP_PARAM_COUNT(sr_param_table), &m->p, w);
    mp_mf_put_u32(w, m->n_items);
    mp_mf_put_u32(w, m->epochs_run);
    mp_mf_put_u32(w, m->best_epoch);
    mp_mf_put_f64(w, m->best_valid);
    mp_mf_put_u32(w, (uint32_t)m->loss_used);
    mp_nn_tfm_save(&m->t, w);
    const sr_content *c = &m->content;
    mp_mf_put_u32(w, c->W ? 1 : 0);
    if (c->W) {
        mp_mf_put_u32(w, c->n_categories);
        mp_mf_put_u32(w, c->text_dim);
        mp_mf_put_f32s(w, c->W, (size_t)c->D * m->p.dim);
        mp_item_titles_save(w, c->cat_names, c->n_categories);
    }
    const sr_inputs *in = &m->in;
    mp_mf_put_u32(w, in->W ? 1 : 0);
    if (in->W) {
        mp_mf_put_u32(w, in->n_cat);
        mp_mf_put_u32(w, in->text_dim);
        mp_mf_put_u32s(w, in->fid, (size_t)m->n_items * SR_NFID);
        mp_mf_put_f32s(w, in->W, (size_t)in->rows * m->p.dim);
        if (in->text_dim) mp_mf_put_f32s(w, in->text, (size_t)m->n_items * in->text_dim);
    }
    mp_item_titles_save(w, m->titles, m->n_items);
    return MP_OK;
}

static int sr_load(void *impl, mp_mf_reader *r, mp_error *err) {
    sasrec *m = impl;
    sr_release(m);
    int rc = mp_params_get(sr_param_table, MP_PARAM_COUNT(sr_param_table), &m->p, r, "sasrec", err);
    if (rc) return rc;
    if ((rc = sr_check_params(&m->p, err))) return mp_error_set(err, MP_ECORRUPT, "sasrec payload: %s", err->msg);
    uint32_t n, loss, has_w;
    if ((rc = mp_mf_get_u32(r, &n, err)) || (rc = mp_mf_get_u32(r, &m->epochs_run, err)) ||
        (rc = mp_mf_get_u32(r, &m->best_epoch, err)) || (rc = mp_mf_get_f64(r, &m->best_valid, err)) ||
        (rc = mp_mf_get_u32(r, &loss, err)))
        return rc;
    if (n < 2 || (loss != SR_LOSS_FULL && loss != SR_LOSS_SAMPLED))
        return mp_error_set(err, MP_ECORRUPT, "sasrec payload: bad item count or loss");
    m->loss_used = (int)loss;
    mp_nn_tfm_config expect = sr_config(&m->p, n);
    if ((rc = mp_nn_tfm_load(&m->t, r, &expect, err))) return rc;
    m->n_items = n;
    if ((rc = mp_mf_get_u32(r, &has_w, err))) goto fail;
    if (has_w) {
        sr_content *c = &m->content;
        if ((rc = mp_mf_get_u32(r, &c->n_categories, err)) || (rc = mp_mf_get_u32(r, &c->text_dim, err))) goto fail;
        if (c->n_categories > 2048 || c->text_dim > 2048) {
            rc = mp_error_set(err, MP_ECORRUPT, "sasrec payload: content projection too large");
            goto fail;
        }
        c->D = c->n_categories + SR_BRAND_BUCKETS + SR_PRICE_BUCKETS + c->text_dim + 1;
        c->W = malloc((size_t)c->D * m->p.dim * sizeof *c->W);
        if (!c->W) {
            rc = mp_error_set(err, MP_ENOMEM, "sasrec: out of memory");
            goto fail;
        }
        if ((rc = mp_mf_get_f32s(r, c->W, (size_t)c->D * m->p.dim, err))) goto fail;
        if ((rc = mp_item_titles_load(r, &c->cat_names, c->n_categories, "sasrec", err))) goto fail;
    }
    uint32_t has_in;
    if ((rc = mp_mf_get_u32(r, &has_in, err))) goto fail;
    if (has_in) {
        sr_inputs *in = &m->in;
        if ((rc = mp_mf_get_u32(r, &in->n_cat, err)) || (rc = mp_mf_get_u32(r, &in->text_dim, err))) goto fail;
        if (in->n_cat > (1u << 24) || in->text_dim > 4096) {
            rc = mp_error_set(err, MP_ECORRUPT, "sasrec payload: input feature table too large");
            goto fail;
        }
        in->rows = in->n_cat + SR_BRAND_BUCKETS + SR_PRICE_BUCKETS + in->text_dim;
        size_t C = m->p.dim;
        in->fid = malloc((size_t)n * SR_NFID * sizeof *in->fid);
        in->W = malloc((size_t)in->rows * C * sizeof *in->W);
        in->text = in->text_dim ? malloc((size_t)n * in->text_dim * sizeof *in->text) : NULL;
        if (!in->fid || !in->W || (in->text_dim && !in->text)) {
            rc = mp_error_set(err, MP_ENOMEM, "sasrec: out of memory");
            goto fail;
        }
        if ((rc = mp_mf_get_u32s(r, in->fid, (size_t)n * SR_NFID, err)) ||
            (rc = mp_mf_get_f32s(r, in->W, (size_t)in->rows * C, err)) ||
            (in->text_dim && (rc = mp_mf_get_f32s(r, in->text, (size_t)n * in->text_dim, err))))
            goto fail;
        for (size_t i = 0; i < (size_t)n * SR_NFID; i++)
            if (in->fid[i] != MP_NN_PAD && in->fid[i] >= in->rows - in->text_dim) {
                rc = mp_error_set(err, MP_ECORRUPT, "sasrec payload: an item feature id is out of range");
                goto fail;
            }
    }
    if ((rc = mp_item_titles_load(r, &m->titles, n, "sasrec", err))) goto fail;
    return MP_OK;
fail:
    sr_release(m);
    return rc;
}

static uint32_t sr_n_items(const void *impl) { return ((const sasrec *)impl)->n_items; }

const mp_model_ops mp_sasrec_ops = {
    .name = "sasrec",
    .summary = "self-attentive sequential transformer (pre-LN, shared embeddings, full-softmax loss): the next item "
               "from the order of the history (real-time)",
    .file_version = SR_FILE_VERSION,
    .impl_size = sizeof(sasrec),
    .params = sr_param_table,
    .n_params = MP_PARAM_COUNT(sr_param_table),
    .params_offset = offsetof(sasrec, p),
    .params_size = sizeof(sr_params),
    .check_params = sr_check_params,
    .init = sr_init,
    .fit = sr_fit,
    .score_all = sr_score_all,
    .similar = sr_similar,
    .explain = sr_explain,
    .save = sr_save,
    .load = sr_load,
    .release = sr_release,
    .n_items = sr_n_items,
    .item_vectors = sr_item_vectors,
    .query_vector = sr_query_vector,
    .set_item = sr_set_item,
};
