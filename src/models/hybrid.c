/* "hybrid": a content + collaborative model (LightFM-style features, two towers) for cold start: items without
 * events are scored the moment their content is known, and users with few or no events are served from those
 * events or from a query / profile text.
 *
 * Features. Every item's content becomes weighted features from a vocabulary built from the training items:
 *     "w:<token>"   title tokens (group weight 1) and description tokens (0.5) from the feature tokenizer of
 *                   text.h (words, CJK characters and bigrams; "s:" subword n-grams of title words with subwords=1);
 *     "c:<path>"    every prefix of the category path ("Beauty", "Beauty > Skin Care") (0.5);
 *     "b:<brand>"   the brand (0.5);
 *     "p:<bucket>"  the price bucket: quantiles of log price over the training items (0.25);
 * a group's weight is split evenly over its features, each weight is multiplied by the feature's idf over the
 * catalog (idf=1) and an item's weights sum to 1.
 *
 * Score of item i for a user = u . q_i + lexical x L(u, i):
 *   q_i (k factors + a bias) = id_i + sum_f w_if e_f, the output tower. id_i exists for items with training events
 *       ("warm") and only when id_dropout < 1; an item without events uses the features alone (plus the adapter).
 *   u = (sum_j r^j v_{h_j} + text_weight t) / (sum of those weights)^history_norm, the input tower: h_0, h_1, ... the
 *       user's distinct positive items, most recent first (r = recency), v_h = in_id_h + sum_f w_hf g_f with a
 *       second set of feature embeddings g_f, and t the request text's features (ctx->text) and adapted embedding.
 *       A user is their history: the model keeps nothing per user, so a new user is served from the first event
 *       and a query alone serves a user with no history.
 *   L(u, i) = the same recency-weighted mean over the history (and text) of the cosine between the idf feature
 *       vectors of the history item and of i: exact word overlap, kept in an inverted index. A factor model of a
 *       few dozen dimensions blurs exactly what ranks a new item best (a franchise or brand name shared by a
 *       handful of items); this channel keeps it. With lexical > 0 the score is not an inner product, so there are
 *       no retrieval vectors (item_vectors / query_vector answer MP_EUNSUPPORTED); lexical=0 gives them.
 *   A (the text-embedding adapter): when the training data carries item text embeddings, ridge regressions from the
 *       embedding to the warm items' trained q (and v); with id vectors (id_dropout < 1) an item without events gets
 *       the mean of A x_i and its feature vector. This maps the language model's space into the behaviour space
 *       ("the encoder fine-tuned on behaviour labels", as a linear head). With id_dropout=1 (no id vectors) every
 *       item's vector is its content part, so A only serves items without events and without any content feature:
 *       averaging the (shrunk) A x_i into featured new items moved them alone toward the mean.
 *   transitions x T(u, i): like L, but against each history item's successor profile: the idf feature vectors of
 *       the items users took next after it (the next event weighs 1, the one after 0.5), summed and cut to the 64
 *       largest features. "Does it look like what people take after what you took?", by content.
 *   neighbours > 0: an item without events takes instead the similarity-weighted mean vector of its most similar
 *       warm items by content (kNN regression from content to the collaborative space).
 *
 * Training: WARP (default) or BPR by Hogwild SGD. With sequence=1 (default) each sample is an event and the user's
 * positive events before it (next-item prediction, which is what a history is used for); with sequence=0 a non-zero
 * pair of the weighted training matrix against the user's other items. Negatives are items with training events. With
 * probability id_dropout an item's id vector is left out of a sample, so the content features alone must rank it
 * (DropoutNet's idea); id_dropout=1 (default) trains content-only item vectors, so old and new items compete on
 * equal terms. Both feature tables start from the same random vectors, so an untrained model already scores by
 * (randomly projected) feature overlap. Early stopping on validation events as in "bpr".
 *
 * Measured on Amazon Games (16,859 titled items, 20% of them cold (seeded), every user's history minus cold items
 * as training sequences; the 9,737 users whose next item is cold rank all items; Recall@20): plain idf cosine to
 * the history 0.072, with recency weights 0.075, the defaults 0.088 (NDCG@20 0.042), with warm-target Recall@20
 * 0.109 (loss=bpr,epochs=10: 0.084 and 0.093). id_dropout=0.5 (id vectors for items with events, bpr) raises
 * warm-target Recall@20 to 0.131 and lowers cold to 0.061, because the collaborative part then favours items with
 * events; lexical=0,id_dropout=0.5 (a pure inner-product model) gives warm 0.116, cold 0.010.
 * bench/coldstart.sh (a) (the same split with USE-Lite embeddings given, users with a non-empty history): on the
 * validation split (cold --split valid, all 9,699 users) the defaults give Recall@20 0.092 against 0.071 for the
 * character n-gram TF-IDF baseline, on the test split (3,000 users) 0.082 against 0.062 (1.32x); before the adapter
 * was limited to featureless items the embeddings cut the hybrid's test Recall@20 from 0.074 to 0.050 (1,500 users).
 * lexical=15, recency=0.6, transitions=2..16, factors=128 moved validation Recall@20 by less than its noise (+-0.005);
 * subwords=1 (0.095 vs 0.103, 7x slower) and neighbours=10 (0.074) were worse, and a z-scored blend with the TF-IDF
 * baseline did not help.
 *
 * Real time: update grows the catalog (new items get vectors from set_item); set_item builds the vectors and the
 * index entry of a new or changed item from the stored vocabulary, idf, feature embeddings and adapter, so it is
 * recommendable at once; forget_user has nothing to forget. All of these are saved, so a loaded model does the
 * same.
 *
 * This file is the model (ops, the fit as steps, the user tower, scoring, explain, set_item, save / load); the
 * features, the lexical channel, the adapter and the SGD have a file each (map in hybrid_internal.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/linalg.h"
#include "magpie/model.h"
#include "magpie/text.h"
#include "magpie/topk.h"
#include "models/bpr_internal.h"
#include "models/hybrid_internal.h"
#include "models/params.h"

/* Version 2: recency may be "auto" (its flag follows it as a u32); version 1 files have no flag. */
#define HYB_FILE_VERSION 2
static const char *const loss_names[] = {"bpr", "warp"};
/* "0" and "1" keep the indices of the boolean this once was, so older model files read the same. */
static const char *const sequence_names[] = {"0", "1", "auto"};

/* In the order of the model file's parameter block. */
#define HYB_P(kind, nm, fld, ...) MP_P_##kind(nm, hyb_params, fld, __VA_ARGS__)
static const mp_param_info hyb_params_info[] = {
    HYB_P(UINT, "factors", factors, "64", 1, HYB_MAX_FACTORS, "latent dimensions k (1..1024)", MP_TUNED_LOG(16, 256)),
    HYB_P(UINT, "epochs", epochs, "20", 1, 1000000, "maximum training epochs (>= 1)"),
    HYB_P(REAL, "learning_rate", learning_rate, "0.05", 0, 10, "SGD step size (> 0)", .lo_open = 1,
          MP_TUNED_LOG(0.001, 0.1)),
    HYB_P(REAL, "regularization", regularization, "0.001", 0, 100,
          "L2 penalty on user, item-id and feature vectors (>= 0)", MP_TUNED_LOG(1e-4, 1)),
    HYB_P(CHOICE, "loss", loss, "warp", loss_names, "warp (rank-weighted hinge) or bpr (pairwise log-sigmoid)"),
    HYB_P(UINT, "max_trials", max_trials, "50", 1, 100000, "warp: negatives tried per positive"),
    HYB_P(U64, "seed", seed, "1", 0, UINT64_MAX, "random seed"),
    HYB_P(UINT, "threads", threads, "0", 0, 1024,
          "Hogwild threads (0: as many as the caller allows); threads=1 is reproducible"),
    HYB_P(REAL, "id_dropout", id_dropout, "0.25", 0, 1,
          "probability of hiding an item's id vector in a training triple (0..1): trains the content "
          "features to rank items alone, as cold items are"),
    HYB_P(BOOL, "subwords", subwords, "0", "1: character 3..5-grams of title words as extra features"),
    HYB_P(UINT, "desc_tokens", desc_tokens, "64", 0, 100000,
          "description tokens used per item (0: ignore descriptions)"),
    HYB_P(UINT, "price_buckets", price_buckets, "8", 0, HYB_MAX_PRICE_BUCKETS,
          "log-price quantile buckets as a feature (0: no price feature)"),
    HYB_P(REAL, "init_scale", init_scale, "0.1", 0, 100, "user and item-id vectors start N(0, init_scale^2 / factors)",
          .lo_open = 1),
    HYB_P(REAL, "history_norm", history_norm, "1", 0, 1,
          "a user's vector is the sum of its history items' vectors / count^history_norm (0..1)"),
    HYB_P(REAL, "text_weight", text_weight, "3", 0, 1000,
          "weight of a request's text (query, profile) in a fold-in, relative to one history item"),
    HYB_P(REAL, "adapter_reg", adapter_reg, "1", 0, 1e9, "ridge penalty of the text-embedding adapter (> 0)",
          .lo_open = 1),
    HYB_P(REAL, "feature_init", feature_init, "1", 0, 100,
          "feature embeddings start N(0, feature_init^2 / factors), equal on the user and item side"),
    HYB_P(BOOL, "idf", idf, "1",
          "1: weigh an item's features by their inverse document frequency (rare words count more)"),
    HYB_P(REAL, "lexical", lexical, "30", 0, 1000,
          "weight of exact feature overlap (idf cosine) with the history and request text; 0: pure factor "
          "model with retrieval vectors"),
    HYB_P(UINT, "neighbours", neighbours, "0", 0, 10000,
          "an item without events takes the similarity-weighted mean vector of this many warm items "
          "with the most similar content (0: its own content features only)"),
    HYB_P(REAL, "transitions", transitions, "8", 0, 1000,
          "weight of the content of what users took next after their history items (successor "
          "profiles; 0: off); adds to the lexical channel"),
    HYB_P(CHOICE, "sequence", sequence, "auto", sequence_names,
          "1: learn to predict each event from the events before it (order matters); 0: from the user's "
          "other items; auto: 1 when users have fewer than 30 items on average (sessions), else 0"),
    HYB_P(REAL_AUTO, "recency", recency, recency_auto, "auto", 0, 1,
          "weight recency^j of the j-th most recent history item in a user's vector (0..1; 1: equal); auto: 0.8 "
          "when users have fewer than 30 items on average, else 1 (docs/defaults.md)",
          .lo_open = 1),
    HYB_P(UINT, "patience", patience, "3", 0, 1000000,
          "early stopping: validation checks without improvement before stopping (0: never)"),
    HYB_P(UINT, "eval_every", eval_every, "0", 0, 1000000, "epochs between validation NDCG@10 checks (0: epochs / 10)"),
    {NULL},
};
#undef HYB_P

static void hyb_init(void *impl) {
    hybrid *h = impl;
    h->best_valid = NAN;
}

void hyb_lex_free(hybrid *h);

static void hyb_release(void *impl) {
    hybrid *h = impl;
    hyb_lex_free(h);
    free(h->in_id);
    free(h->in_content);
    free(h->in_vec);
    free(h->in_feat);
    free(h->adapter_in);
    free(h->id_vec);
    free(h->content_vec);
    free(h->item_vec);
    free(h->has_id);
    mp_item_titles_free(h->titles, h->n_items);
    mp_item_titles_free(h->cats, h->n_items);
    mp_strmap_destroy(h->vocab);
    free(h->feat);
    free(h->idf);
    free(h->emb_source);
    free(h->adapter);
    free(h->price_edges);
    free(h->warm);
    hyb_params p = h->p;
    memset(h, 0, sizeof *h);
    h->p = p;
    h->best_valid = NAN;
}

/* item_vec = id_vec + content_vec and in_vec = in_id + in_content for items [from, to). */
static void refresh_items(hybrid *h, uint32_t from, uint32_t to) {
    const size_t K1 = h->k + 1, k = h->k;
    for (size_t x = (size_t)from * K1; x < (size_t)to * K1; x++)
        h->item_vec[x] = h->id_vec[x] + h->content_vec[x];
    for (size_t x = (size_t)from * k; x < (size_t)to * k; x++)
        h->in_vec[x] = h->in_id[x] + h->in_content[x];
}

static int hyb_score_all(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err);

/* Content vectors of every item (features and the adapters) and the scoring vectors. */
static void build_item_vectors(hybrid *h, const hyb_feats *fs, const float *emb) {
    for (uint32_t i = 0; i < h->n_items; i++)
        hyb_content_from_list(h, i, fs->idx + fs->ptr[i], fs->w + fs->ptr[i], fs->ptr[i + 1] - fs->ptr[i],
                              emb ? emb + (size_t)i * h->emb_dim : NULL);
    refresh_items(h, 0, h->n_items);
}

/* The arrays of n_items items (zeroed). */
static int alloc_items(hybrid *h, uint32_t ni) {
    const size_t K1 = h->k + 1, k = h->k;
    h->id_vec = calloc(((size_t)ni + 1) * K1, sizeof(float));
    h->content_vec = calloc(((size_t)ni + 1) * K1, sizeof(float));
    h->item_vec = calloc(((size_t)ni + 1) * K1, sizeof(float));
    h->in_id = calloc(((size_t)ni + 1) * k, sizeof(float));
    h->in_content = calloc(((size_t)ni + 1) * k, sizeof(float));
    h->in_vec = calloc(((size_t)ni + 1) * k, sizeof(float));
    h->has_id = calloc((size_t)ni + 1, 1);
    h->warm = malloc(((size_t)ni + 1) * sizeof *h->warm);
    if (!h->id_vec || !h->content_vec || !h->item_vec || !h->in_id || !h->in_content || !h->in_vec || !h->has_id ||
        !h->warm)
        return MP_ENOMEM;
    return MP_OK;
}

/* ---- fit, as steps ---- */

/* Titles and category paths of the items (kept for set_item, explain and the model file), the price buckets and
 * an empty vocabulary. */
static int fit_catalog(hybrid *h, const mp_train_data *data, const mp_train_content *content, mp_error *err) {
    const uint32_t ni = h->n_items;
    if (alloc_items(h, ni) != MP_OK || mp_strmap_create(&h->vocab, 1024) != MP_OK ||
        hyb_fit_price_edges(h, content->prices, ni) != MP_OK ||
        mp_item_titles_copy(data->item_titles, ni, &h->titles) != MP_OK)
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for %u items", ni);
    if (data->item_category && data->category_names) {
        if (!(h->cats = calloc((size_t)ni + 1, sizeof *h->cats)))
            return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for item categories");
        for (uint32_t i = 0; i < ni; i++) {
            uint32_t c = data->item_category[i];
            if (c == 0 || c >= data->n_categories || !data->category_names[c]) continue;
            if (!(h->cats[i] = strdup(data->category_names[c])))
                return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for item categories");
        }
    }
    return MP_OK;
}

/* The warm items (those with training events: id vectors and negatives) and the starting vectors from the seed. */
static int fit_init_vectors(hybrid *h, const mp_train_data *data, mp_error *err) {
    const uint32_t k = h->k, K1 = k + 1, ni = h->n_items;
    h->feat = calloc(((size_t)h->n_feats + 1) * K1, sizeof *h->feat);
    h->in_feat = calloc(((size_t)h->n_feats + 1) * k, sizeof *h->in_feat);
    if (!h->feat || !h->in_feat)
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for %u feature embeddings", h->n_feats);
    for (uint32_t i = 0; i < ni; i++)
        if (data->iu && i < data->iu->n_rows && data->iu->ptr[i + 1] > data->iu->ptr[i]) {
            h->has_id[i] = 1;
            h->warm[h->n_warm++] = i;
        }
    if (mp_csr_nnz(data->ui) == 0 || h->n_warm == 0)
        return mp_error_set(err, MP_EEMPTY, "hybrid: no positive training events to learn from");
    mp_rng rng;
    mp_rng_seed(&rng, h->p.seed);
    const float scale = (float)(h->p.init_scale / sqrt((double)k));
    for (uint32_t w = 0; w < h->n_warm && h->p.id_dropout < 1; w++) { /* id_dropout=1: no id vectors */
        float *q = h->id_vec + (size_t)h->warm[w] * K1, *r = h->in_id + (size_t)h->warm[w] * k;
        for (uint32_t d = 0; d < k; d++)
            q[d] = scale * (float)mp_rng_normal(&rng);
        for (uint32_t d = 0; d < k; d++)
            r[d] = scale * (float)mp_rng_normal(&rng);
    }
    /* both sides of a feature start equal, so before any training an item scores a history by the overlap of
     * their features (a random projection of bag-of-words matching), which training then refines */
    const float fscale = (float)(h->p.feature_init / sqrt((double)k));
    for (uint32_t f = 0; f < h->n_feats; f++)
        for (uint32_t d = 0; d < k; d++) {
            float v = fscale * (float)mp_rng_normal(&rng);
            h->in_feat[(size_t)f * k + d] = v;
            h->feat[(size_t)f * K1 + d] = v;
        }
    return MP_OK;
}

/* The epochs, with early stopping on validation NDCG@10 when data has validation events: the best epoch's
 * parameters are restored at the end. */
static int fit_epochs(hybrid *h, const mp_train_data *data, const hyb_feats *fs, hyb_trainer *tr,
                      const mp_progress *progress, mp_error *err) {
    const int validate = data->valid && data->n_valid > 0;
    uint32_t eval_every = h->p.eval_every ? h->p.eval_every : (h->p.epochs >= 10 ? h->p.epochs / 10 : 1);
    uint32_t since_best = 0;
    hyb_snapshot snap = {0};
    int rc = MP_OK;
    h->best_valid = NAN;
    for (uint32_t ep = 0; ep < h->p.epochs; ep++) {
        hyb_train_epoch(tr);
        h->epochs_run = ep + 1;
        mp_progress_report(progress, "fit", ep + 1, h->p.epochs);
        if (validate && ((ep + 1) % eval_every == 0 || ep + 1 == h->p.epochs)) {
            build_item_vectors(h, fs, NULL);
            double v;
            rc = mp_train_data_valid_ndcg(data, hyb_score_all, h, 10, &v, err);
            if (rc == MP_EEMPTY) { /* nothing to validate on: train all epochs */
                rc = MP_OK;
                continue;
            }
            if (rc != MP_OK) break;
            if (isnan(h->best_valid) || v > h->best_valid) {
                h->best_valid = v;
                h->best_epoch = ep + 1;
                since_best = 0;
                if (hyb_snapshot_take(&snap, h) != MP_OK) {
                    rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for the early-stopping snapshot");
                    break;
                }
            } else if (h->p.patience && ++since_best >= h->p.patience) {
                break;
            }
        }
    }
    if (rc == MP_OK) {
        if (snap.id_vec && h->best_epoch != h->epochs_run) hyb_snapshot_restore(&snap, h);
        if (!snap.id_vec) h->best_epoch = h->epochs_run;
    }
    hyb_snapshot_free(&snap);
    return rc;
}

/* The items' content vectors from the trained features, with the embedding adapter fitted on the trained vectors
 * first when the data has embeddings. */
static int fit_content_vectors(hybrid *h, const mp_train_content *content, const hyb_feats *fs, mp_error *err) {
    int rc;
    if (content->embeddings) {
        build_item_vectors(h, fs, NULL); /* the adapter's targets */
        if ((rc = hyb_fit_adapter(h, content->embeddings, content->embedding_dim, err)) != MP_OK) return rc;
        if (h->adapter && content->embedding_source && !(h->emb_source = strdup(content->embedding_source)))
            return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory");
    }
    build_item_vectors(h, fs, h->adapter ? content->embeddings : NULL);
    return MP_OK;
}

static int hyb_fit(void *impl, const mp_train_data *data, const mp_progress *progress, mp_error *err) {
    hybrid *h = impl;
    static const mp_train_content no_content = {0};
    const mp_train_content *content = data && data->content ? data->content : &no_content;
    if (!data || !data->ui || data->n_items == 0)
        return mp_error_set(err, MP_EEMPTY, "hybrid: no training data (the catalog is empty)");
    if (content->embeddings && content->embedding_dim == 0)
        return mp_error_set(err, MP_EINVAL, "hybrid: item embeddings given with dimension 0");
    hyb_release(h);
    /* The data-adaptive defaults (docs/defaults.md): short histories of a large catalog are sequences, long
     * rating histories (MovieLens, about 80 items a user) are sets, read with equal weights. */
    const int long_histories = mp_train_data_items_per_user(data) >= 30;
    h->sequence_on = h->p.sequence == 2 ? !long_histories : h->p.sequence;
    if (h->p.recency_auto) h->p.recency = long_histories ? 1.0 : 0.8;
    h->k = h->p.factors;
    h->n_users = data->n_users;
    h->n_items = data->n_items;
    hyb_feats fs = {0}; /* the items' feature lists, for training and the lexical index */
    hyb_trainer tr = {0};
    int rc;
    if ((rc = fit_catalog(h, data, content, err)) || (rc = hyb_features_build(h, data, content, &fs, err)) ||
        (rc = fit_init_vectors(h, data, err)) || (rc = hyb_trainer_init(&tr, h, data, &fs, err)) ||
        (rc = fit_epochs(h, data, &fs, &tr, progress, err)) || (rc = fit_content_vectors(h, content, &fs, err)) ||
        (rc = hyb_lex_build(h, &fs, data, err)))
        hyb_release(h);
    else
        refresh_items(h, 0, h->n_items); /* content neighbours changed items without events */
    hyb_trainer_free(&tr);
    hyb_feats_free(&fs);
    return rc;
}

/* ---- users ---- */

/* Adds the request text's input vector (its tokens' features and the adapter on its embedding) times s to out (k).
 * *have = 1 when the text contributed. */
static int add_text_vector(const hybrid *h, const mp_user_ctx *ctx, float s, float *out, int *have, mp_error *err) {
    const uint32_t k = h->k;
    *have = 0;
    if (ctx->text && ctx->text_len) {
        feat_list l = {0};
        int rc = hyb_add_text(&l, h->vocab, 0, ctx->text, ctx->text_len, (int)h->p.subwords, 0, W_TITLE);
        if (rc != MP_OK) {
            hyb_feat_list_free(&l);
            return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory reading the request text");
        }
        hyb_apply_idf(h, l.idx, l.w, l.n);
        for (size_t x = 0; x < l.n; x++) {
            const float *row = h->in_feat + (size_t)l.idx[x] * k;
            for (uint32_t d = 0; d < k; d++)
                out[d] += s * l.w[x] * row[d];
        }
        *have = l.n > 0;
        hyb_feat_list_free(&l);
    }
    if (h->adapter_in && ctx->text_embedding && ctx->text_embedding_dim == h->emb_dim &&
        nonzero(ctx->text_embedding, h->emb_dim)) {
        float *tmp = calloc(k, sizeof *tmp);
        if (!tmp) return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory reading the request text");
        hyb_adapter_apply(h->adapter_in, k, h->emb_dim, ctx->text_embedding, tmp);
        for (uint32_t d = 0; d < k; d++)
            out[d] += s * tmp[d];
        free(tmp);
        *have = 1;
    }
    return MP_OK;
}

/* The user vector (k + 1): the history items' input vectors (distinct positive items the model knows) and the
 * request text, over count^history_norm; the last component is 1 (the bias). */
static int user_vector(const hybrid *h, const mp_user_ctx *ctx, float *pu, mp_error *err) {
    const uint32_t k = h->k;
    memset(pu, 0, ((size_t)k + 1) * sizeof *pu);
    uint32_t items[HYB_MAX_HISTORY];
    float w[HYB_MAX_HISTORY];
    double wsum;
    size_t n = hyb_collect_history(h, ctx, items, w, &wsum);
    for (size_t x = 0; x < n; x++) {
        const float *v = h->in_vec + (size_t)items[x] * k;
        for (uint32_t d = 0; d < k; d++)
            pu[d] += w[x] * v[d];
    }
    int have_text = 0;
    int rc = add_text_vector(h, ctx, (float)h->p.text_weight, pu, &have_text, err);
    if (rc != MP_OK) return rc;
    double count = wsum + (have_text ? h->p.text_weight : 0);
    float s = history_scale(h, count);
    for (uint32_t d = 0; d < k; d++)
        pu[d] *= s;
    pu[k] = 1.0f;
    return MP_OK;
}

static int check_fitted(const hybrid *h, mp_error *err) {
    if (!h->item_vec) return mp_error_set(err, MP_EINVAL, "hybrid: the model is not fitted");
    return MP_OK;
}

static int hyb_score_all(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err) {
    const hybrid *h = impl;
    int rc = check_fitted(h, err);
    if (rc) return rc;
    float *pu = malloc(((size_t)h->k + 1) * sizeof *pu);
    if (!pu) return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory scoring");
    rc = user_vector(h, ctx, pu, err);
    if (rc == MP_OK) mp_sgemv(h->n_items, h->k + 1, h->item_vec, h->k + 1, pu, scores);
    free(pu);
    if (rc == MP_OK && h->lex && h->p.lexical > 0) rc = hyb_lex_score(h, ctx, scores, err);
    return rc;
}

static int no_inner_product(mp_error *err) {
    return mp_error_set(err, MP_EUNSUPPORTED,
                        "hybrid: with lexical > 0 the score is not an inner product (no "
                        "retrieval vectors); train with lexical=0 for an ANN index");
}

static int hyb_item_vectors(const void *impl, const float **vecs, uint32_t *n, uint32_t *dim, mp_error *err) {
    const hybrid *h = impl;
    int rc = check_fitted(h, err);
    if (rc) return rc;
    if (h->p.lexical > 0) return no_inner_product(err);
    *vecs = h->item_vec;
    *n = h->n_items;
    *dim = h->k + 1;
    return MP_OK;
}

static int hyb_query_vector(const void *impl, const mp_user_ctx *ctx, float *out, int *have, mp_error *err) {
    const hybrid *h = impl;
    *have = 0;
    int rc = check_fitted(h, err);
    if (rc) return rc;
    if (h->p.lexical > 0) return no_inner_product(err);
    if ((rc = user_vector(h, ctx, out, err))) return rc;
    *have = 1; /* with no personal signal the biases still rank items */
    return MP_OK;
}

/* Cosine of the factor parts (biases left out). */
static int hyb_similar(const void *impl, uint32_t item, size_t n, uint32_t *out_items, float *out_scores, size_t *n_out,
                       mp_error *err) {
    const hybrid *h = impl;
    *n_out = 0;
    int rc = check_fitted(h, err);
    if (rc) return rc;
    if (item >= h->n_items) return mp_error_set(err, MP_ENOTFOUND, "hybrid: unknown item %u", item);
    const uint32_t k = h->k, K1 = k + 1;
    float *s = malloc(((size_t)h->n_items + 1) * sizeof *s);
    uint8_t *allow = malloc((size_t)h->n_items + 1);
    uint32_t *top = malloc((n ? n : 1) * sizeof *top);
    if (!s || !allow || !top) {
        free(s);
        free(allow);
        free(top);
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for similar items");
    }
    const float *q = h->item_vec + (size_t)item * K1;
    float nq = sqrtf(dotf(q, q, k));
    for (uint32_t i = 0; i < h->n_items; i++) {
        const float *r = h->item_vec + (size_t)i * K1;
        float nr = sqrtf(dotf(r, r, k));
        allow[i] = i != item && nr > 0 && nq > 0;
        s[i] = allow[i] ? dotf(q, r, k) / (nq * nr) : 0;
    }
    size_t m;
    rc = mp_topk(s, h->n_items, allow, n, top, &m);
    if (rc) {
        free(s);
        free(allow);
        free(top);
        return mp_error_set(err, rc, "hybrid: cannot rank %u items: %s", h->n_items, mp_strerror(rc));
    }
    for (size_t x = 0; x < m; x++) {
        out_items[x] = top[x];
        out_scores[x] = s[top[x]];
    }
    *n_out = m;
    free(s);
    free(allow);
    free(top);
    return MP_OK;
}

/* Query words (words and CJK tokens) of the text that occur in the item's title, joined by ' ' into buf.
 * Returns how many. */
static size_t matching_words(const char *query, size_t qlen, const char *title, char *buf, size_t cap) {
    buf[0] = 0;
    if (!query || !qlen || !title) return 0;
    mp_text_tokens *q = NULL, *t = NULL;
    mp_error e;
    size_t found = 0, len = 0;
    if (mp_text_features(query, qlen, NULL, &q, &e) == MP_OK &&
        mp_text_features(title, strlen(title), NULL, &t, &e) == MP_OK) {
        for (size_t i = 0; i < q->n; i++) {
            const mp_text_token *a = &q->toks[i];
            if (a->kind != MP_TOK_WORD && a->kind != MP_TOK_CJK) continue;
            int in_title = 0, dup = 0;
            for (size_t j = 0; j < t->n && !in_title; j++)
                in_title = t->toks[j].hash == a->hash;
            for (size_t j = 0; j < i && !dup; j++)
                dup = q->toks[j].hash == a->hash;
            if (!in_title || dup) continue;
            int w = snprintf(buf + len, cap - len, "%s%.*s", found ? " " : "", (int)a->len, q->buf + a->off);
            if (w < 0 || (size_t)w >= cap - len) break;
            len += (size_t)w;
            found++;
        }
    }
    mp_text_tokens_free(q);
    mp_text_tokens_free(t);
    return found;
}

static int hyb_explain(const void *impl, const mp_user_ctx *ctx, uint32_t item, char *buf, size_t cap, mp_error *err) {
    const hybrid *h = impl;
    int rc = check_fitted(h, err);
    if (rc) return rc;
    if (item >= h->n_items) return mp_error_set(err, MP_ENOTFOUND, "hybrid: unknown item %u", item);
    if (cap == 0) return MP_OK;
    char words[256];
    if (matching_words(ctx->text, ctx->text_len, h->titles ? h->titles[item] : NULL, words, sizeof words)) {
        snprintf(buf, cap, "matches your interest in \xE2\x80\x98%s\xE2\x80\x99", words);
        return MP_OK;
    }
    const uint32_t k = h->k;
    long best = -1;
    float best_s = -INFINITY;
    const float *q = h->item_vec + (size_t)item * (k + 1);
    for (size_t x = 0; x < ctx->n_history; x++) { /* the history item that adds most to the score */
        const mp_interaction *e = &ctx->history[x];
        if (e->item >= h->n_items || e->item == item || !is_positive(e)) continue;
        float s = dotf(q, h->in_vec + (size_t)e->item * k, k);
        if (best < 0 || s > best_s) {
            best_s = s;
            best = (long)x;
        }
    }
    if (!(best >= 0 && best_s > 0) && h->titles && h->titles[item]) {
        /* the towers do not explain it: the lexical channel may (the history item sharing most title words) */
        size_t most = 0;
        char w[256];
        for (size_t x = 0; x < ctx->n_history; x++) {
            const mp_interaction *e = &ctx->history[x];
            if (e->item >= h->n_items || e->item == item || !is_positive(e) || !h->titles[e->item]) continue;
            size_t m = matching_words(h->titles[e->item], strlen(h->titles[e->item]), h->titles[item], w, sizeof w);
            if (m > most) {
                most = m;
                best = (long)x;
                best_s = 1;
            }
        }
    }
    if (best >= 0 && best_s > 0) {
        const mp_interaction *e = &ctx->history[best];
        if (h->titles && h->titles[e->item])
            snprintf(buf, cap, "similar to \xE2\x80\x98%.150s\xE2\x80\x99 that you %s", h->titles[e->item],
                     mp_bprmf_verb(e->type));
        else
            snprintf(buf, cap, "similar to item %u that you %s", e->item, mp_bprmf_verb(e->type));
    } else if (!h->has_id[item] && h->cats && h->cats[item]) {
        snprintf(buf, cap, "new in %s", h->cats[item]);
    } else if (!h->has_id[item]) {
        snprintf(buf, cap, "new arrival");
    } else if (best >= 0) {
        snprintf(buf, cap, "matches the tastes shown by your past activity");
    } else {
        snprintf(buf, cap, "popular with shoppers (no history to personalise from yet)");
    }
    return MP_OK;
}

/* ---- growing, update, set_item ---- */

static int grow_f32(float **a, size_t old_n, size_t new_n) {
    float *g = realloc(*a, (new_n + 1) * sizeof *g);
    if (!g) return MP_ENOMEM;
    memset(g + old_n, 0, (new_n - old_n) * sizeof *g);
    *a = g;
    return MP_OK;
}

static int grow_items(hybrid *h, uint32_t n_items) {
    const size_t K1 = h->k + 1, k = h->k, on = h->n_items;
    if (n_items <= h->n_items) return MP_OK;
    if (grow_f32(&h->id_vec, on * K1, n_items * K1) || grow_f32(&h->content_vec, on * K1, n_items * K1) ||
        grow_f32(&h->item_vec, on * K1, n_items * K1) || grow_f32(&h->in_id, on * k, n_items * k) ||
        grow_f32(&h->in_content, on * k, n_items * k) || grow_f32(&h->in_vec, on * k, n_items * k))
        return MP_ENOMEM;
    if (h->lex) {
        lex_item *li = realloc(h->lex, ((size_t)n_items + 1) * sizeof *li);
        if (!li) return MP_ENOMEM;
        memset(li + on, 0, (n_items - on) * sizeof *li);
        h->lex = li;
    }
    if (h->succ) {
        lex_item *si = realloc(h->succ, ((size_t)n_items + 1) * sizeof *si);
        if (!si) return MP_ENOMEM;
        memset(si + on, 0, (n_items - on) * sizeof *si);
        h->succ = si;
    }
    uint8_t *d = realloc(h->has_id, (size_t)n_items + 1);
    if (!d) return MP_ENOMEM;
    memset(d + on, 0, n_items - on);
    h->has_id = d;
    if (h->titles && mp_item_titles_grow(&h->titles, h->n_items, n_items) != MP_OK) return MP_ENOMEM;
    if (!h->titles && !(h->titles = calloc((size_t)n_items + 1, sizeof *h->titles))) return MP_ENOMEM;
    if (h->cats && mp_item_titles_grow(&h->cats, h->n_items, n_items) != MP_OK) return MP_ENOMEM;
    if (!h->cats && !(h->cats = calloc((size_t)n_items + 1, sizeof *h->cats))) return MP_ENOMEM;
    h->n_items = n_items;
    return MP_OK;
}

/* The model keeps nothing per user (a user is their history), so new events need no training: items new to the
 * model get zero vectors until set_item gives their content. */
static int hyb_update(void *impl, const mp_interaction *events, size_t n, mp_error *err) {
    hybrid *h = impl;
    int rc = check_fitted(h, err);
    if (rc) return rc;
    uint32_t max_item = 0, max_user = 0;
    for (size_t i = 0; i < n; i++) {
        if (events[i].user == MP_NO_USER || events[i].item == UINT32_MAX)
            return mp_error_set(err, MP_EINVAL, "hybrid: update event %zu has no user or no item", i);
        if (events[i].item > max_item) max_item = events[i].item;
        if (events[i].user > max_user) max_user = events[i].user;
    }
    if (n && grow_items(h, max_item + 1) != MP_OK)
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory growing to %u items", max_item + 1);
    if (n && max_user >= h->n_users) h->n_users = max_user + 1;
    return MP_OK;
}

static int hyb_set_item(void *impl, uint32_t item, const mp_item_content *c, mp_error *err) {
    hybrid *h = impl;
    int rc = check_fitted(h, err);
    if (rc) return rc;
    if (!c) return mp_error_set(err, MP_EINVAL, "hybrid: set_item for item %u without content", item);
    if (item == UINT32_MAX || item >= HYB_MAX_VOCAB * 4u)
        return mp_error_set(err, MP_EINVAL, "hybrid: item id %u out of range", item);
    if (c->embedding && h->adapter && c->embedding_dim != h->emb_dim)
        return mp_error_set(err, MP_EINVAL,
                            "hybrid: item %u has an embedding of dimension %u, the model was trained on %u (source "
                            "\"%s\"); embed it with the same encoder",
                            item, c->embedding_dim, h->emb_dim, h->emb_source ? h->emb_source : "?");
    feat_list l = {0};
    char *title = c->title ? strdup(c->title) : NULL;
    char *cat = c->category && *c->category ? strdup(c->category) : NULL;
    if (grow_items(h, item + 1) != MP_OK || (c->title && !title) || (c->category && *c->category && !cat) ||
        hyb_item_features(h, h->vocab, 0, c->title, c->description, c->category, c->brand, c->price, &l) != MP_OK) {
        free(title);
        free(cat);
        hyb_feat_list_free(&l);
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory adding item %u", item);
    }
    hyb_content_from_list(h, item, l.idx, l.w, l.n, c->embedding_dim == h->emb_dim ? c->embedding : NULL);
    if (h->lex && hyb_lex_replace(h, item, l.idx, l.w, l.n) != MP_OK) {
        free(title);
        free(cat);
        hyb_feat_list_free(&l);
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory indexing item %u", item);
    }
    hyb_feat_list_free(&l);
    if (!h->has_id[item] && h->p.neighbours) {
        float *acc = calloc((size_t)h->n_items + 1, sizeof *acc);
        uint32_t *touched = malloc(((size_t)h->n_items + 1) * sizeof *touched);
        if (!acc || !touched) {
            free(acc);
            free(touched);
            free(title);
            free(cat);
            return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory adding item %u", item);
        }
        hyb_lex_neighbour_vector(h, item, acc, touched);
        free(acc);
        free(touched);
    }
    free(h->titles[item]);
    h->titles[item] = title;
    free(h->cats[item]);
    h->cats[item] = cat;
    refresh_items(h, item, item + 1);
    return MP_OK;
}

/* ---- save / load ---- */

static int hyb_save(const void *impl, mp_mf_writer *w, mp_error *err) {
    const hybrid *h = impl;
    int rc = check_fitted(h, err);
    if (rc) return rc;
    const size_t K1 = h->k + 1;
    mp_params_put(hyb_params_info, MP_PARAM_COUNT(hyb_params_info), &h->p, w);
    mp_mf_put_u32(w, h->epochs_run);
    mp_mf_put_u32(w, h->best_epoch);
    mp_mf_put_f64(w, h->best_valid);
    mp_mf_put_u32(w, h->n_users);
    mp_mf_put_u32(w, h->n_items);
    mp_mf_put_u32(w, h->n_feats);
    mp_mf_put_u32(w, h->emb_dim);
    mp_mf_put_u32(w, h->n_price_edges);
    for (uint32_t f = 0; f < h->n_feats; f++)
        mp_mf_put_str(w, mp_strmap_key(h->vocab, f, NULL));
    mp_mf_put_f32s(w, h->feat, (size_t)h->n_feats * K1);
    mp_mf_put_f32s(w, h->in_feat, (size_t)h->n_feats * h->k);
    mp_mf_put_f32s(w, h->idf, h->n_feats);
    mp_mf_put_f32s(w, h->id_vec, (size_t)h->n_items * K1);
    mp_mf_put_f32s(w, h->content_vec, (size_t)h->n_items * K1);
    mp_mf_put_f32s(w, h->in_id, (size_t)h->n_items * h->k);
    mp_mf_put_f32s(w, h->in_content, (size_t)h->n_items * h->k);
    mp_mf_put_bytes(w, h->has_id, h->n_items);
    if (h->emb_dim) {
        mp_mf_put_str(w, h->emb_source);
        mp_mf_put_f32s(w, h->adapter, K1 * h->emb_dim);
        mp_mf_put_f32s(w, h->adapter_in, (size_t)h->k * h->emb_dim);
    }
    mp_mf_put_f64s(w, h->price_edges, h->n_price_edges);
    mp_item_titles_save(w, h->titles, h->n_items);
    mp_item_titles_save(w, h->cats, h->n_items);
    mp_mf_put_u32(w, h->lex ? 1 : 0);
    if (h->lex) hyb_lex_put_lists(w, h->lex, h->n_items);
    mp_mf_put_u32(w, h->succ ? 1 : 0);
    if (h->succ) hyb_lex_put_lists(w, h->succ, h->n_items);
    return MP_OK;
}

static int hyb_load(void *impl, mp_mf_reader *r, mp_error *err) {
    hybrid *h = impl;
    hyb_release(h);
    int rc;
    /* a version 1 file has no auto flag after recency */
    rc = (mp_mf_reader_model_version(r) < 2 ? mp_params_get_flagless : mp_params_get)(
        hyb_params_info, MP_PARAM_COUNT(hyb_params_info), &h->p, r, "hybrid", err);
    if (rc || (rc = mp_mf_get_u32(r, &h->epochs_run, err)) || (rc = mp_mf_get_u32(r, &h->best_epoch, err)) ||
        (rc = mp_mf_get_f64(r, &h->best_valid, err)))
        return rc;
    uint32_t nu, ni, nf, ed, npe;
    if ((rc = mp_mf_get_u32(r, &nu, err)) || (rc = mp_mf_get_u32(r, &ni, err)) || (rc = mp_mf_get_u32(r, &nf, err)) ||
        (rc = mp_mf_get_u32(r, &ed, err)) || (rc = mp_mf_get_u32(r, &npe, err)))
        return rc;
    const uint32_t k = h->p.factors;
    const size_t K1 = (size_t)k + 1;
    /* every array below is stored in full: sizes the payload cannot hold are corrupt, not allocations to try */
    size_t rem = mp_mf_remaining(r);
    if ((uint64_t)nf > rem / 4 || (uint64_t)nf * K1 > rem / 8 || (uint64_t)ni * K1 > rem / 16 ||
        (uint64_t)ed * K1 > rem / 4 || npe > HYB_MAX_PRICE_BUCKETS || ed > MP_MAX_EMBEDDING_DIM || nf > HYB_MAX_VOCAB)
        return mp_error_set(err, MP_ECORRUPT, "hybrid payload: sizes (%u users, %u items, %u features) exceed the file",
                            nu, ni, nf);
    h->k = k;
    h->n_users = nu;
    h->n_items = ni;
    h->n_feats = nf;
    h->emb_dim = ed;
    h->n_price_edges = npe;
    if (mp_strmap_create(&h->vocab, nf + 16) != MP_OK) {
        rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory loading the vocabulary");
        goto fail;
    }
    for (uint32_t f = 0; f < nf; f++) {
        char *s = NULL;
        if ((rc = mp_mf_get_str(r, &s, HYB_MAX_FEAT_LEN + 8, err))) goto fail;
        uint32_t id;
        int inserted = 0;
        if (!s || mp_strmap_intern(h->vocab, s, strlen(s), &id, &inserted) != MP_OK || !inserted || id != f) {
            free(s);
            rc = mp_error_set(err, MP_ECORRUPT, "hybrid payload: feature %u is missing or repeated", f);
            goto fail;
        }
        free(s);
    }
    h->feat = malloc(((size_t)nf + 1) * K1 * sizeof *h->feat);
    h->in_feat = malloc(((size_t)nf + 1) * k * sizeof *h->in_feat);
    h->idf = malloc(((size_t)nf + 1) * sizeof *h->idf);
    if (alloc_items(h, ni) != MP_OK || !h->feat || !h->in_feat || !h->idf) {
        rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory loading %u items and %u features", ni, nf);
        goto fail;
    }
    if ((rc = mp_mf_get_f32s(r, h->feat, (size_t)nf * K1, err)) ||
        (rc = mp_mf_get_f32s(r, h->in_feat, (size_t)nf * k, err)) || (rc = mp_mf_get_f32s(r, h->idf, nf, err)) ||
        (rc = mp_mf_get_f32s(r, h->id_vec, (size_t)ni * K1, err)) ||
        (rc = mp_mf_get_f32s(r, h->content_vec, (size_t)ni * K1, err)) ||
        (rc = mp_mf_get_f32s(r, h->in_id, (size_t)ni * k, err)) ||
        (rc = mp_mf_get_f32s(r, h->in_content, (size_t)ni * k, err)) || (rc = mp_mf_get_bytes(r, h->has_id, ni, err)))
        goto fail;
    if (ed) {
        if ((rc = mp_mf_get_str(r, &h->emb_source, MP_MAX_EMBEDDING_SOURCE, err))) goto fail;
        if (!(h->adapter = malloc(K1 * ed * sizeof *h->adapter))) {
            rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory loading the adapter");
            goto fail;
        }
        if (!(h->adapter_in = malloc((size_t)k * ed * sizeof *h->adapter_in))) {
            rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory loading the adapter");
            goto fail;
        }
        if ((rc = mp_mf_get_f32s(r, h->adapter, K1 * ed, err)) ||
            (rc = mp_mf_get_f32s(r, h->adapter_in, (size_t)k * ed, err)))
            goto fail;
    }
    if (!(h->price_edges = malloc((npe + 1) * sizeof *h->price_edges))) {
        rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory");
        goto fail;
    }
    if ((rc = mp_mf_get_f64s(r, h->price_edges, npe, err))) goto fail;
    if ((rc = mp_item_titles_load(r, &h->titles, ni, "hybrid", err)) ||
        (rc = mp_item_titles_load(r, &h->cats, ni, "hybrid", err)))
        goto fail;
    uint32_t has_lex;
    if ((rc = mp_mf_get_u32(r, &has_lex, err))) goto fail;
    if (has_lex != 1) {
        rc = mp_error_set(err, MP_ECORRUPT, "hybrid payload: lexical index flag does not match the parameters");
        goto fail;
    }
    if (has_lex) {
        if ((rc = hyb_lex_get_lists(r, &h->lex, ni, nf, err))) goto fail;
        if (hyb_lex_index(h) != MP_OK) {
            rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory loading the lexical index");
            goto fail;
        }
    }
    uint32_t has_succ;
    if ((rc = mp_mf_get_u32(r, &has_succ, err))) goto fail;
    if (has_succ > 1) {
        rc = mp_error_set(err, MP_ECORRUPT, "hybrid payload: bad successor-profile flag");
        goto fail;
    }
    if (has_succ && (rc = hyb_lex_get_lists(r, &h->succ, ni, nf, err))) goto fail;
    for (uint32_t i = 0; i < ni; i++) {
        if (h->has_id[i] > 1) {
            rc = mp_error_set(err, MP_ECORRUPT, "hybrid payload: bad warm flag of item %u", i);
            goto fail;
        }
        if (h->has_id[i]) h->warm[h->n_warm++] = i;
    }
    refresh_items(h, 0, ni);
    return MP_OK;
fail:
    hyb_release(h);
    return rc;
}

static uint32_t hyb_n_items(const void *impl) {
    return ((const hybrid *)impl)->n_items;
}

const mp_model_ops mp_hybrid_ops = {
    .name = "hybrid",
    .summary = "content + collaborative factorisation (LightFM-style) for cold items, new users and query text",
    .file_version = HYB_FILE_VERSION,
    .impl_size = sizeof(hybrid),
    .params = hyb_params_info,
    .n_params = MP_PARAM_COUNT(hyb_params_info),
    .params_offset = offsetof(hybrid, p),
    .params_size = sizeof(hyb_params),
    .init = hyb_init,
    .fit = hyb_fit,
    .score_all = hyb_score_all,
    .predict_rating = NULL,
    .similar = hyb_similar,
    .explain = hyb_explain,
    .update = hyb_update,
    .save = hyb_save,
    .load = hyb_load,
    .release = hyb_release,
    .n_items = hyb_n_items,
    .item_vectors = hyb_item_vectors,
    .query_vector = hyb_query_vector,
    .forget_user = NULL, /* nothing is kept per user */
    .set_item = hyb_set_item,
};
