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
 * was limited to featureless items the embeddings cut the hybrid's test Recall@20 from 0.074 to 0.050 (1,500 users). lexical=15, recency=0.6, transitions=2..16, factors=128
 * moved validation Recall@20 by less than its noise (+-0.005); subwords=1 (0.095 vs 0.103, 7x slower) and
 * neighbours=10 (0.074) were worse, and a z-scored blend with the TF-IDF baseline did not help.
 *
 * Real time: update grows the catalog (new items get vectors from set_item); set_item builds the vectors and the
 * index entry of a new or changed item from the stored vocabulary, idf, feature embeddings and adapter, so it is
 * recommendable at once; forget_user has nothing to forget. All of these are saved, so a loaded model does the
 * same. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/buf.h"
#include "magpie/linalg.h"
#include "magpie/model.h"
#include "magpie/rng.h"
#include "magpie/strmap.h"
#include "magpie/text.h"
#include "magpie/topk.h"
#include "magpie/trainset.h"
#include "models/bpr_internal.h"
#include "models/params.h"

#define HYB_FILE_VERSION 1
#define HYB_MAX_FACTORS 1024
#define HYB_MAX_PRICE_BUCKETS 64
#define HYB_MAX_FEAT_LEN 512 /* longer feature strings are cut */
#define HYB_MAX_VOCAB (1u << 26)
#define HYB_REDRAWS 16

enum { LOSS_BPR, LOSS_WARP };
static const char *const loss_names[] = {"bpr", "warp"};

/* group weights of the content features (see the top of the file) */
#define W_TITLE 1.0f
#define W_DESC 0.5f
#define W_CAT 0.5f
#define W_BRAND 0.5f
#define W_PRICE 0.25f

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
    int sequence;           /* 1: train each event against the events before it; 0: against the user's other items */
    double recency;         /* history weight recency^j of the j-th most recent item (1: all equal) */
    double lexical;         /* weight of the lexical channel (0: a pure inner-product model) */
    uint32_t neighbours;    /* items without an id vector take the mean vector of this many content neighbours */
    double transitions;     /* weight of the successor-profile channel (0: off) */
    uint32_t patience, eval_every;
} hyb_params;

typedef struct hybrid {
    hyb_params p;
    /* fitted state */
    uint32_t k; /* factors; vectors have k + 1 floats (the last is the bias, 1 for users) */
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
    float *feat;           /* [n_feats, k + 1] feature embeddings (last: bias) */
    float *idf;            /* [n_feats] inverse document frequency of each feature over the training items */
    struct lex_item *lex;  /* [n_items] lexical channel: idf feature vectors of the items (NULL: lexical = 0) */
    struct lex_post *post; /* [n_feats] its inverted index */
    struct lex_item *succ; /* [n_items] content profile of what users took next after the item (or NULL) */
    uint32_t emb_dim;      /* 0: no adapter */
    char *emb_source;      /* encoder name of the embeddings (may be NULL) */
    float *adapter;        /* [(k + 1), emb_dim] or NULL */
    uint32_t n_price_edges;
    double *price_edges; /* [n_price_edges] ascending log-price bucket edges */
    uint32_t *warm;      /* [n_warm] items with an id vector: negative sampling */
    uint32_t n_warm;
    uint32_t epochs_run, best_epoch;
    double best_valid;
} hybrid;

/* In the order of the model file's parameter block. */
#define HYB_P(kind, nm, fld, ...) MP_P_##kind(nm, hyb_params, fld, __VA_ARGS__)
static const mp_param_info hyb_params_info[] = {
    HYB_P(UINT, "factors", factors, "64", 1, HYB_MAX_FACTORS, "latent dimensions k (1..1024)", MP_TUNED_LOG(16, 256)),
    HYB_P(UINT, "epochs", epochs, "20", 1, 1000000, "maximum training epochs (>= 1)"),
    HYB_P(REAL, "learning_rate", learning_rate, "0.2", 0, 10, "SGD step size (> 0)", .lo_open = 1,
          MP_TUNED_LOG(0.001, 0.1)),
    HYB_P(REAL, "regularization", regularization, "0.001", 0, 100,
          "L2 penalty on user, item-id and feature vectors (>= 0)", MP_TUNED_LOG(1e-4, 1)),
    HYB_P(CHOICE, "loss", loss, "warp", loss_names, "warp (rank-weighted hinge) or bpr (pairwise log-sigmoid)"),
    HYB_P(UINT, "max_trials", max_trials, "50", 1, 100000, "warp: negatives tried per positive"),
    HYB_P(U64, "seed", seed, "1", 0, UINT64_MAX, "random seed"),
    HYB_P(UINT, "threads", threads, "0", 0, 1024,
          "Hogwild threads (0: as many as the caller allows); threads=1 is reproducible"),
    HYB_P(REAL, "id_dropout", id_dropout, "1", 0, 1,
          "probability of hiding an item's id vector in a training triple (0..1): trains the content "
          "features to rank items alone, as cold items are"),
    HYB_P(BOOL, "subwords", subwords, "0", "1: character 3..5-grams of title words as extra features"),
    HYB_P(UINT, "desc_tokens", desc_tokens, "64", 0, 100000, "description tokens used per item (0: ignore descriptions)"),
    HYB_P(UINT, "price_buckets", price_buckets, "8", 0, HYB_MAX_PRICE_BUCKETS,
          "log-price quantile buckets as a feature (0: no price feature)"),
    HYB_P(REAL, "init_scale", init_scale, "0.1", 0, 100, "user and item-id vectors start N(0, init_scale^2 / factors)",
          .lo_open = 1),
    HYB_P(REAL, "history_norm", history_norm, "0.25", 0, 1,
          "a user's vector is the sum of its history items' vectors / count^history_norm (0..1)"),
    HYB_P(REAL, "text_weight", text_weight, "3", 0, 1000,
          "weight of a request's text (query, profile) in a fold-in, relative to one history item"),
    HYB_P(REAL, "adapter_reg", adapter_reg, "1", 0, 1e9, "ridge penalty of the text-embedding adapter (> 0)",
          .lo_open = 1),
    HYB_P(REAL, "feature_init", feature_init, "1", 0, 100,
          "feature embeddings start N(0, feature_init^2 / factors), equal on the user and item side"),
    HYB_P(BOOL, "idf", idf, "1", "1: weigh an item's features by their inverse document frequency (rare words count more)"),
    HYB_P(REAL, "lexical", lexical, "30", 0, 1000,
          "weight of exact feature overlap (idf cosine) with the history and request text; 0: pure factor "
          "model with retrieval vectors"),
    HYB_P(UINT, "neighbours", neighbours, "0", 0, 10000,
          "an item without events takes the similarity-weighted mean vector of this many warm items "
          "with the most similar content (0: its own content features only)"),
    HYB_P(REAL, "transitions", transitions, "8", 0, 1000,
          "weight of the content of what users took next after their history items (successor "
          "profiles; 0: off); adds to the lexical channel"),
    HYB_P(BOOL, "sequence", sequence, "1",
          "1: learn to predict each event from the events before it (order matters); 0: from the user's "
          "other items"),
    HYB_P(REAL, "recency", recency, "0.8", 0, 1,
          "weight recency^j of the j-th most recent history item in a user's vector (0..1; 1: equal)", .lo_open = 1),
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

static void lex_free(hybrid *h);

static void hyb_release(void *impl) {
    hybrid *h = impl;
    lex_free(h);
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

/* ---- content features ---- */

/* One item's (or one text's) features: rows of the vocabulary with weights. */
typedef struct feat_list {
    uint32_t *idx;
    float *w;
    size_t n, cap;
} feat_list;

static void feat_list_free(feat_list *l) {
    free(l->idx);
    free(l->w);
    memset(l, 0, sizeof *l);
}

/* Makes room for one more entry after n in the parallel arrays (*idx, *w) of capacity *cap. */
static int pairs_make_room(uint32_t **idx, float **w, size_t n, size_t *cap) {
    return mp_grow2((void **)idx, sizeof **idx, (void **)w, sizeof **w, cap, n + 1);
}

static int feat_list_push(feat_list *l, uint32_t idx, float w) {
    for (size_t i = 0; i < l->n; i++) /* lists are short: merge repeats by a scan */
        if (l->idx[i] == idx) {
            l->w[i] += w;
            return MP_OK;
        }
    if (pairs_make_room(&l->idx, &l->w, l->n, &l->cap) != MP_OK) return MP_ENOMEM;
    l->idx[l->n] = idx;
    l->w[l->n] = w;
    l->n++;
    return MP_OK;
}

/* Looks up (or, with `grow`, interns) the feature "<prefix><s[0..len)>"; returns its row or MP_STRMAP_NONE. */
static int feature_id(mp_strmap *vocab, int grow, const char *prefix, const char *s, size_t len, uint32_t *id) {
    char buf[HYB_MAX_FEAT_LEN + 8];
    size_t pl = strlen(prefix);
    if (len > HYB_MAX_FEAT_LEN) len = HYB_MAX_FEAT_LEN;
    memcpy(buf, prefix, pl);
    memcpy(buf + pl, s, len);
    if (!grow) {
        *id = mp_strmap_get(vocab, buf, pl + len);
        return MP_OK;
    }
    if (mp_strmap_size(vocab) >= HYB_MAX_VOCAB) {
        *id = mp_strmap_get(vocab, buf, pl + len);
        return MP_OK;
    }
    return mp_strmap_intern(vocab, buf, pl + len, id, NULL);
}

/* Adds the word tokens of text (at most max_tokens of them, 0: all) as "w:" features sharing group weight gw. */
static int add_text(feat_list *l, mp_strmap *vocab, int grow, const char *text, size_t len, int subwords,
                    size_t max_tokens, float gw) {
    if (!text || len == 0 || gw <= 0) return MP_OK;
    mp_text_feat_opts o;
    mp_text_feat_default(&o);
    if (subwords) {
        o.minn = 3;
        o.maxn = 5;
    }
    mp_text_tokens *t = NULL;
    mp_error e;
    if (mp_text_features(text, len, &o, &t, &e) != MP_OK) return MP_OK; /* invalid text: no features from it */
    uint32_t *ids = malloc((t->n ? t->n : 1) * sizeof *ids);
    if (!ids) {
        mp_text_tokens_free(t);
        return MP_ENOMEM;
    }
    size_t m = 0, words = 0;
    int rc = MP_OK;
    for (size_t i = 0; i < t->n && rc == MP_OK; i++) {
        const mp_text_token *tok = &t->toks[i];
        if (tok->kind != MP_TOK_SUBWORD && max_tokens && ++words > max_tokens) break;
        uint32_t id;
        rc = feature_id(vocab, grow, tok->kind == MP_TOK_SUBWORD ? "s:" : "w:", t->buf + tok->off, tok->len, &id);
        if (rc == MP_OK && id != MP_STRMAP_NONE) ids[m++] = id;
    }
    for (size_t i = 0; i < m && rc == MP_OK; i++)
        rc = feat_list_push(l, ids[i], gw / (float)m);
    free(ids);
    mp_text_tokens_free(t);
    return rc;
}

/* Bucket of a price: the number of edges below log1p(price). */
static uint32_t price_bucket(const hybrid *h, double price) {
    double lp = log1p(price);
    uint32_t b = 0;
    while (b < h->n_price_edges && h->price_edges[b] < lp)
        b++;
    return b;
}

/* Multiplies the weights by the features' idf (when known) and scales them to sum to 1. */
static void apply_idf(const hybrid *h, const uint32_t *idx, float *w, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        if (h->idf && h->p.idf && idx[i] < h->n_feats) w[i] *= h->idf[idx[i]];
        s += w[i];
    }
    if (s > 0)
        for (size_t i = 0; i < n; i++)
            w[i] = (float)(w[i] / s);
}

/* The features of one item's content. `grow` interns new features (fit); otherwise unknown ones are skipped. */
static int item_features(const hybrid *h, mp_strmap *vocab, int grow, const char *title, const char *desc,
                         const char *cat, const char *brand, double price, feat_list *l) {
    l->n = 0;
    int rc;
    if (title && (rc = add_text(l, vocab, grow, title, strlen(title), (int)h->p.subwords, 0, W_TITLE))) return rc;
    if (desc && h->p.desc_tokens && (rc = add_text(l, vocab, grow, desc, strlen(desc), 0, h->p.desc_tokens, W_DESC)))
        return rc;
    if (cat && *cat) { /* every prefix of "A > B > C" */
        uint32_t ids[32];
        size_t m = 0, len = strlen(cat);
        for (size_t i = 0; i <= len && m < 32; i++) {
            if (i == len || (i + 3 <= len && !memcmp(cat + i, " > ", 3))) {
                uint32_t id;
                if ((rc = feature_id(vocab, grow, "c:", cat, i, &id))) return rc;
                if (id != MP_STRMAP_NONE) ids[m++] = id;
            }
        }
        for (size_t i = 0; i < m; i++)
            if ((rc = feat_list_push(l, ids[i], W_CAT / (float)m))) return rc;
    }
    if (brand && *brand) {
        uint32_t id;
        if ((rc = feature_id(vocab, grow, "b:", brand, strlen(brand), &id))) return rc;
        if (id != MP_STRMAP_NONE && (rc = feat_list_push(l, id, W_BRAND))) return rc;
    }
    if (h->n_price_edges && isfinite(price) && price >= 0) {
        char b[16];
        int n = snprintf(b, sizeof b, "%u", price_bucket(h, price));
        uint32_t id;
        if ((rc = feature_id(vocab, grow, "p:", b, (size_t)n, &id))) return rc;
        if (id != MP_STRMAP_NONE && (rc = feat_list_push(l, id, W_PRICE))) return rc;
    }
    apply_idf(h, l->idx, l->w, l->n);
    return MP_OK;
}

/* out (k + 1) = sum of the listed feature rows. */
static void feat_sum(const float *feat, uint32_t K1, const uint32_t *idx, const float *w, size_t n, float *out) {
    memset(out, 0, K1 * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        const float *row = feat + (size_t)idx[i] * K1;
        const float wi = w[i];
#pragma omp simd
        for (uint32_t d = 0; d < K1; d++)
            out[d] += wi * row[d];
    }
}

/* out (rows) += A (rows, D) x (D). */
static void adapter_apply(const float *A, uint32_t rows, uint32_t D, const float *x, float *out) {
    for (uint32_t d = 0; d < rows; d++) {
        const float *row = A + (size_t)d * D;
        float s = 0;
        for (uint32_t j = 0; j < D; j++)
            s += row[j] * x[j];
        out[d] += s;
    }
}

static int nonzero(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (v[i] != 0) return 1;
    return 0;
}

static int is_positive(const mp_interaction *e) {
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
static float history_scale(const hybrid *h, double count) {
    return count > 0 ? (float)pow(count, -h->p.history_norm) : 0.0f;
}

/* ---- the lexical channel ----
 * score += lexical x (recency-weighted mean over the history (and the request text) of the cosine between the
 * idf-weighted feature vectors of the history item and of the candidate). Exact word overlap is what a factor
 * model of a few dozen dimensions blurs most (a franchise name shared by a handful of items), and it is what ranks
 * a new item whose words match what the user bought. Kept as an inverted index (feature -> items). */

struct lex_item {
    uint32_t *idx; /* features of the item, ascending */
    float *w;      /* their idf weights, unit L2 norm */
    uint32_t n;
};
typedef struct lex_item lex_item;

struct lex_post {
    uint32_t *item;
    float *w;
    uint32_t n, cap;
};
typedef struct lex_post lex_post;

static void lex_item_free(lex_item *li) {
    free(li->idx);
    free(li->w);
    memset(li, 0, sizeof *li);
}

/* li = the list (idx, w) rescaled to unit L2 norm (w are the model's weights, which sum to 1). */
static int lex_item_set(lex_item *li, const uint32_t *idx, const float *w, size_t n) {
    lex_item_free(li);
    if (n == 0) return MP_OK;
    li->idx = malloc(n * sizeof *li->idx);
    li->w = malloc(n * sizeof *li->w);
    if (!li->idx || !li->w) {
        lex_item_free(li);
        return MP_ENOMEM;
    }
    double s = 0;
    for (size_t x = 0; x < n; x++)
        s += (double)w[x] * w[x];
    s = s > 0 ? 1.0 / sqrt(s) : 0;
    for (size_t x = 0; x < n; x++) {
        li->idx[x] = idx[x];
        li->w[x] = (float)(w[x] * s);
    }
    li->n = (uint32_t)n;
    return MP_OK;
}

static int lex_post_add(lex_post *p, uint32_t item, float w) {
    size_t cap = p->cap; /* postings keep 32-bit counts to stay small */
    if (pairs_make_room(&p->item, &p->w, p->n, &cap) != MP_OK) return MP_ENOMEM;
    p->cap = (uint32_t)cap;
    p->item[p->n] = item;
    p->w[p->n] = w;
    p->n++;
    return MP_OK;
}

static void lex_post_remove(lex_post *p, uint32_t item) {
    for (uint32_t x = 0; x < p->n; x++)
        if (p->item[x] == item) {
            p->item[x] = p->item[p->n - 1];
            p->w[x] = p->w[p->n - 1];
            p->n--;
            return;
        }
}

static void lex_free(hybrid *h) {
    if (h->lex)
        for (uint32_t i = 0; i < h->n_items; i++)
            lex_item_free(&h->lex[i]);
    free(h->lex);
    h->lex = NULL;
    if (h->succ)
        for (uint32_t i = 0; i < h->n_items; i++)
            lex_item_free(&h->succ[i]);
    free(h->succ);
    h->succ = NULL;
    if (h->post)
        for (uint32_t f = 0; f < h->n_feats; f++) {
            free(h->post[f].item);
            free(h->post[f].w);
        }
    free(h->post);
    h->post = NULL;
}

/* The inverted index from the item lists (h->lex). */
static int lex_index(hybrid *h) {
    if (!(h->post = calloc((size_t)h->n_feats + 1, sizeof *h->post))) return MP_ENOMEM;
    for (uint32_t i = 0; i < h->n_items; i++)
        for (uint32_t x = 0; x < h->lex[i].n; x++)
            if (lex_post_add(&h->post[h->lex[i].idx[x]], i, h->lex[i].w[x]) != MP_OK) return MP_ENOMEM;
    return MP_OK;
}

/* Replaces item i's list and its postings. */
static int lex_replace(hybrid *h, uint32_t i, const uint32_t *idx, const float *w, size_t n) {
    lex_item *li = &h->lex[i];
    for (uint32_t x = 0; x < li->n; x++)
        lex_post_remove(&h->post[li->idx[x]], i);
    if (lex_item_set(li, idx, w, n) != MP_OK) return MP_ENOMEM;
    for (uint32_t x = 0; x < li->n; x++)
        if (lex_post_add(&h->post[li->idx[x]], i, li->w[x]) != MP_OK) return MP_ENOMEM;
    return MP_OK;
}

/* The vector of an item without an id vector from its content neighbours: the mean of the full vectors of the
 * `neighbours` warm items whose idf feature vectors are most similar to it (cosine), weighted by the similarity,
 * replaces its content vectors (kNN regression from content to the collaborative space: a new "Halo 5" borrows
 * what was learned about "Halo 4"). acc is scratch of n_items floats, all zero on entry and on return. */
static void lex_neighbour_vector(hybrid *h, uint32_t i, float *acc, uint32_t *touched) {
    const lex_item *li = &h->lex[i];
    const uint32_t K = h->p.neighbours, k = h->k, K1 = k + 1;
    if (K == 0 || li->n == 0) return;
    uint32_t nt = 0;
    for (uint32_t x = 0; x < li->n; x++) {
        const lex_post *p = &h->post[li->idx[x]];
        for (uint32_t y = 0; y < p->n; y++) {
            uint32_t j = p->item[y];
            if (j == i || !h->has_id[j]) continue;
            if (acc[j] == 0) touched[nt++] = j;
            acc[j] += li->w[x] * p->w[y];
            if (acc[j] == 0) acc[j] = 1e-30f; /* stays marked */
        }
    }
    if (nt == 0) return;
    /* the K largest by partial selection */
    uint32_t m = nt < K ? nt : K;
    for (uint32_t a = 0; a < m; a++) {
        uint32_t best = a;
        for (uint32_t b = a + 1; b < nt; b++)
            if (acc[touched[b]] > acc[touched[best]]) best = b;
        uint32_t tmp = touched[a];
        touched[a] = touched[best];
        touched[best] = tmp;
    }
    float *c = h->content_vec + (size_t)i * K1, *ci = h->in_content + (size_t)i * k;
    double wsum = 0;
    for (uint32_t a = 0; a < m; a++)
        wsum += acc[touched[a]];
    if (wsum > 0) {
        memset(c, 0, K1 * sizeof *c);
        memset(ci, 0, k * sizeof *ci);
        for (uint32_t a = 0; a < m; a++) {
            const uint32_t j = touched[a];
            const float w = (float)(acc[j] / wsum);
            const float *qj = h->id_vec + (size_t)j * K1, *cj = h->content_vec + (size_t)j * K1;
            const float *rj = h->in_id + (size_t)j * k, *dj = h->in_content + (size_t)j * k;
            for (uint32_t d = 0; d < K1; d++)
                c[d] += w * (qj[d] + cj[d]);
            for (uint32_t d = 0; d < k; d++)
                ci[d] += w * (rj[d] + dj[d]);
        }
    }
    for (uint32_t a = 0; a < nt; a++)
        acc[touched[a]] = 0;
}

/* Successor profiles: for every item a, the idf feature vectors of the items that followed it in the users'
 * sequences (the next positive event weighs 1, the one after 0.5), summed, cut to the HYB_SUCC_FEATS largest
 * features and scaled to unit norm. Scoring a candidate against the profiles of the user's history asks "does it
 * look like what people take after what you took?" by content, which reaches items without events. */
#define HYB_SUCC_FEATS 64
typedef struct succ_pair {
    uint32_t a, b;
    float w;
} succ_pair;

static int cmp_succ(const void *x, const void *y) {
    const succ_pair *p = x, *q = y;
    return (p->a > q->a) - (p->a < q->a);
}

static int build_successors(hybrid *h, const mp_interaction *ev, size_t n) {
    const uint32_t ni = h->n_items;
    if (!(h->succ = calloc((size_t)ni + 1, sizeof *h->succ))) return MP_ENOMEM;
    succ_pair *pairs = malloc((2 * n + 1) * sizeof *pairs);
    float *acc = calloc((size_t)h->n_feats + 1, sizeof *acc);
    uint32_t *touched = malloc(((size_t)h->n_feats + 1) * sizeof *touched);
    float *tw = malloc(((size_t)h->n_feats + 1) * sizeof *tw);
    int rc = MP_OK;
    if (!pairs || !acc || !touched || !tw) {
        rc = MP_ENOMEM;
        goto done;
    }
    size_t np = 0;
    for (size_t e = 0; e < n; e++) {
        const mp_interaction *x = &ev[e];
        if (!is_positive(x) || x->grade < 0 || x->item >= ni) continue;
        int found = 0;
        for (size_t f = e + 1; f < n && ev[f].user == x->user && found < 2; f++) {
            const mp_interaction *y = &ev[f];
            if (!is_positive(y) || y->grade < 0 || y->item >= ni || y->item == x->item) continue;
            pairs[np++] = (succ_pair){x->item, y->item, found ? 0.5f : 1.0f};
            found++;
        }
    }
    qsort(pairs, np, sizeof *pairs, cmp_succ);
    for (size_t s0 = 0; s0 < np;) {
        size_t s1 = s0;
        uint32_t a = pairs[s0].a, nt = 0;
        for (; s1 < np && pairs[s1].a == a; s1++) {
            const lex_item *lb = &h->lex[pairs[s1].b];
            for (uint32_t x = 0; x < lb->n; x++) {
                uint32_t f = lb->idx[x];
                if (acc[f] == 0) touched[nt++] = f;
                acc[f] += pairs[s1].w * lb->w[x];
                if (acc[f] == 0) acc[f] = 1e-30f;
            }
        }
        /* keep the largest HYB_SUCC_FEATS */
        uint32_t m = nt < HYB_SUCC_FEATS ? nt : HYB_SUCC_FEATS;
        for (uint32_t x = 0; x < m; x++) {
            uint32_t best = x;
            for (uint32_t y = x + 1; y < nt; y++)
                if (acc[touched[y]] > acc[touched[best]]) best = y;
            uint32_t t = touched[x];
            touched[x] = touched[best];
            touched[best] = t;
        }
        for (uint32_t x = 0; x < m; x++)
            tw[x] = acc[touched[x]];
        if (m && lex_item_set(&h->succ[a], touched, tw, m) != MP_OK) rc = MP_ENOMEM;
        for (uint32_t x = 0; x < nt; x++)
            acc[touched[x]] = 0;
        if (rc != MP_OK) break;
        s0 = s1;
    }
done:
    free(pairs);
    free(acc);
    free(touched);
    free(tw);
    return rc;
}

/* scores[i] += s * cosine(list, item i) over the items sharing a feature with the list. */
static void lex_accumulate(const hybrid *h, const uint32_t *idx, const float *w, uint32_t n, float s, float *scores) {
    for (uint32_t x = 0; x < n; x++) {
        const lex_post *p = &h->post[idx[x]];
        const float a = s * w[x];
        for (uint32_t y = 0; y < p->n; y++)
            scores[p->item[y]] += a * p->w[y];
    }
}

/* ---- training ---- */

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

/* Per-thread scratch. */
typedef struct train_scratch {
    float *qi, *qj, *pu, *gu; /* [k + 1] each */
    uint8_t *keep;            /* [max history] id kept for each history item */
    uint32_t *hist;           /* [max history] history items (sequence mode) */
    float *hw;                /* [max history] their weights */
} train_scratch;

/* Output-side vector of item i in training: content features, plus the id vector unless dropped. */
static void train_item_vec(const train_job *J, uint32_t i, int with_id, float *out) {
    const hybrid *h = J->h;
    const uint32_t K1 = h->k + 1;
    feat_sum(h->feat, K1, J->fidx + J->fptr[i], J->fw + J->fptr[i], J->fptr[i + 1] - J->fptr[i], out);
    if (with_id && h->has_id[i]) {
        const float *id = h->id_vec + (size_t)i * K1;
#pragma omp simd
        for (uint32_t d = 0; d < K1; d++)
            out[d] += id[d];
    }
}

/* Adds the input-side vector of item i (k) times s to out. */
static void train_in_add(const train_job *J, uint32_t i, int with_id, float s, float *out) {
    const hybrid *h = J->h;
    const uint32_t k = h->k;
    for (uint64_t p = J->fptr[i]; p < J->fptr[i + 1]; p++) {
        const float *row = h->in_feat + (size_t)J->fidx[p] * k;
        const float w = s * J->fw[p];
#pragma omp simd
        for (uint32_t d = 0; d < k; d++)
            out[d] += w * row[d];
    }
    if (with_id && h->has_id[i]) {
        const float *id = h->in_id + (size_t)i * k;
#pragma omp simd
        for (uint32_t d = 0; d < k; d++)
            out[d] += s * id[d];
    }
}

/* Moves item i's output parameters by lr * (g * pu - reg * param) (pu's bias slot is 1). */
static void train_item_step(const train_job *J, uint32_t i, int with_id, const float *pu, float g) {
    hybrid *h = J->h;
    const uint32_t K1 = h->k + 1;
    const float lr = J->lr, reg = J->reg;
    for (uint64_t p = J->fptr[i]; p < J->fptr[i + 1]; p++) {
        float *row = h->feat + (size_t)J->fidx[p] * K1;
        const float w = J->fw[p];
#pragma omp simd
        for (uint32_t d = 0; d < K1; d++)
            row[d] += lr * w * (g * pu[d] - reg * row[d]);
    }
    if (with_id && h->has_id[i]) {
        float *id = h->id_vec + (size_t)i * K1;
#pragma omp simd
        for (uint32_t d = 0; d < K1; d++)
            id[d] += lr * (g * pu[d] - reg * id[d]);
    }
}

/* Moves item i's input parameters along gu (the loss gradient's negative with respect to the user vector, already
 * times the history scale). */
static void train_in_step(const train_job *J, uint32_t i, int with_id, const float *gu) {
    hybrid *h = J->h;
    const uint32_t k = h->k;
    const float lr = J->lr, reg = J->reg;
    for (uint64_t p = J->fptr[i]; p < J->fptr[i + 1]; p++) {
        float *row = h->in_feat + (size_t)J->fidx[p] * k;
        const float w = J->fw[p];
#pragma omp simd
        for (uint32_t d = 0; d < k; d++)
            row[d] += lr * w * (gu[d] - reg * row[d]);
    }
    if (with_id && h->has_id[i]) {
        float *id = h->in_id + (size_t)i * k;
#pragma omp simd
        for (uint32_t d = 0; d < k; d++)
            id[d] += lr * (gu[d] - reg * id[d]);
    }
}

static int user_has(const mp_csr *ui, uint32_t u, uint32_t item) {
    uint64_t lo = ui->ptr[u], hi = ui->ptr[u + 1];
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (ui->idx[mid] < item)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ui->ptr[u + 1] && ui->idx[lo] == item;
}

static uint32_t draw_negative(const train_job *J, mp_rng *rng, uint32_t u) {
    const hybrid *h = J->h;
    uint32_t j = h->warm[mp_rng_below(rng, h->n_warm)];
    for (int r = 0; r < HYB_REDRAWS && user_has(J->ui, u, j); r++)
        j = h->warm[mp_rng_below(rng, h->n_warm)];
    return j;
}

/* The user's history used for a training pair: the user's other items (at most HYB_TRAIN_HISTORY, the ones
 * nearest the positive in the row, which is sorted by item id, so an arbitrary but fixed subset). */
#define HYB_TRAIN_HISTORY 64

/* One sample (u, i, j). */
static void train_sample(const train_job *J, mp_rng *rng, train_scratch *S) {
    hybrid *h = J->h;
    const uint32_t k = h->k, K1 = k + 1;
    const uint64_t nnz = mp_csr_nnz(J->ui);
    uint64_t p = mp_rng_below(rng, nnz);
    uint32_t u = J->pair_user[p], i = J->ui->idx[p];
    uint64_t rb = J->ui->ptr[u], re = J->ui->ptr[u + 1];
    if (re - rb < 2) return;               /* no other item to speak for the user */
    if (re - rb > HYB_TRAIN_HISTORY + 1) { /* a window of the row around p */
        uint64_t lo = p > rb + HYB_TRAIN_HISTORY / 2 ? p - HYB_TRAIN_HISTORY / 2 : rb;
        if (lo + HYB_TRAIN_HISTORY + 1 > re) lo = re - HYB_TRAIN_HISTORY - 1;
        rb = lo;
        re = lo + HYB_TRAIN_HISTORY + 1;
    }
    float scale = J->ui->val[p] / J->mean_val;
    if (scale < 0.25f) scale = 0.25f;
    if (scale > 4.0f) scale = 4.0f;
    const double drop = h->p.id_dropout;
    /* user vector from the other items */
    float *pu = S->pu;
    memset(pu, 0, K1 * sizeof *pu);
    const float hs = history_scale(h, (double)(re - rb - 1));
    for (uint64_t x = rb; x < re; x++) {
        if (x == p) continue;
        S->keep[x - rb] = !(mp_rng_uniform(rng) < drop);
        train_in_add(J, J->ui->idx[x], S->keep[x - rb], hs, pu);
    }
    pu[k] = 1.0f;
    int id_i = !(mp_rng_uniform(rng) < drop);
    train_item_vec(J, i, id_i, S->qi);
    float xi = dotf(pu, S->qi, K1);
    uint32_t j;
    int id_j;
    float g;
    if (h->p.loss == LOSS_BPR) {
        j = draw_negative(J, rng, u);
        id_j = !(mp_rng_uniform(rng) < drop);
        train_item_vec(J, j, id_j, S->qj);
        float x = xi - dotf(pu, S->qj, K1);
        g = scale / (1.0f + expf(x));
    } else {
        uint32_t trials = 0;
        float x = 0;
        for (;;) {
            j = draw_negative(J, rng, u);
            id_j = !(mp_rng_uniform(rng) < drop);
            train_item_vec(J, j, id_j, S->qj);
            trials++;
            x = xi - dotf(pu, S->qj, K1);
            if (x < 1.0f || trials >= h->p.max_trials) break;
        }
        if (x >= 1.0f) return; /* no violation found */
        double n1 = (double)h->n_warm - 1;
        if (n1 < 2) n1 = 2;
        double rank = floor(n1 / trials);
        g = scale * (float)(log(rank > 1 ? rank : 1) / log(n1));
        if (g <= 0) g = scale * 0.01f;
    }
    /* input side: d loss / d pu = -g (qi - qj); each history item moves by its share hs */
    for (uint32_t d = 0; d < k; d++)
        S->gu[d] = g * hs * (S->qi[d] - S->qj[d]);
    for (uint64_t x = rb; x < re; x++)
        if (x != p) train_in_step(J, J->ui->idx[x], S->keep[x - rb], S->gu);
    train_item_step(J, i, id_i, pu, g);
    train_item_step(J, j, id_j, pu, -g);
}

/* One sample in sequence mode: a positive event and, as the user's history, the positive events before it (most
 * recent first, at most HYB_TRAIN_HISTORY, repeats of the positive skipped), weighted recency^j. */
static void train_sample_seq(const train_job *J, mp_rng *rng, train_scratch *S) {
    hybrid *h = J->h;
    const uint32_t k = h->k, K1 = k + 1;
    const uint64_t e = J->usable[mp_rng_below(rng, J->n_usable)];
    const mp_interaction *ev = J->events;
    const uint32_t u = ev[e].user, i = ev[e].item;
    const uint64_t start = e - J->back[e];
    size_t nh = 0;
    float wsum = 0, wj = 1;
    const float r = (float)h->p.recency;
    for (uint64_t x = e; x > start && nh < HYB_TRAIN_HISTORY; x--) {
        const mp_interaction *he = &ev[x - 1];
        if (!is_positive(he) || he->grade < 0 || he->item == i || he->item >= h->n_items) continue;
        int dup = 0;
        for (size_t y = 0; y < nh && !dup; y++)
            dup = S->hist[y] == he->item;
        if (dup) continue;
        S->hist[nh] = he->item;
        S->hw[nh] = wj;
        wsum += wj;
        wj *= r;
        nh++;
    }
    if (nh == 0) return;
    const double drop = h->p.id_dropout;
    float *pu = S->pu;
    memset(pu, 0, K1 * sizeof *pu);
    const float hs = history_scale(h, wsum);
    for (size_t x = 0; x < nh; x++) {
        S->keep[x] = !(mp_rng_uniform(rng) < drop);
        train_in_add(J, S->hist[x], S->keep[x], hs * S->hw[x], pu);
    }
    pu[k] = 1.0f;
    int id_i = !(mp_rng_uniform(rng) < drop);
    train_item_vec(J, i, id_i, S->qi);
    float xi = dotf(pu, S->qi, K1);
    uint32_t j;
    int id_j;
    float g;
    if (h->p.loss == LOSS_BPR) {
        j = draw_negative(J, rng, u);
        id_j = !(mp_rng_uniform(rng) < drop);
        train_item_vec(J, j, id_j, S->qj);
        g = 1.0f / (1.0f + expf(xi - dotf(pu, S->qj, K1)));
    } else {
        uint32_t trials = 0;
        float x = 0;
        for (;;) {
            j = draw_negative(J, rng, u);
            id_j = !(mp_rng_uniform(rng) < drop);
            train_item_vec(J, j, id_j, S->qj);
            trials++;
            x = xi - dotf(pu, S->qj, K1);
            if (x < 1.0f || trials >= h->p.max_trials) break;
        }
        if (x >= 1.0f) return;
        double n1 = (double)h->n_warm - 1;
        if (n1 < 2) n1 = 2;
        double rank = floor(n1 / trials);
        g = (float)(log(rank > 1 ? rank : 1) / log(n1));
        if (g <= 0) g = 0.01f;
    }
    for (size_t x = 0; x < nh; x++) {
        for (uint32_t d = 0; d < k; d++)
            S->gu[d] = g * hs * S->hw[x] * (S->qi[d] - S->qj[d]);
        train_in_step(J, S->hist[x], S->keep[x], S->gu);
    }
    train_item_step(J, i, id_i, pu, g);
    train_item_step(J, j, id_j, pu, -g);
}

/* item_vec = id_vec + content_vec and in_vec = in_id + in_content for items [from, to). */
static void refresh_items(hybrid *h, uint32_t from, uint32_t to) {
    const size_t K1 = h->k + 1, k = h->k;
    for (size_t x = (size_t)from * K1; x < (size_t)to * K1; x++)
        h->item_vec[x] = h->id_vec[x] + h->content_vec[x];
    for (size_t x = (size_t)from * k; x < (size_t)to * k; x++)
        h->in_vec[x] = h->in_id[x] + h->in_content[x];
}

/* Both content parts of item i from its feature list plus, for items without an id vector, the adapters. */
static void content_from_list(hybrid *h, uint32_t i, const uint32_t *idx, const float *w, size_t n, const float *emb) {
    const uint32_t k = h->k, K1 = k + 1;
    float *c = h->content_vec + (size_t)i * K1, *ci = h->in_content + (size_t)i * k;
    feat_sum(h->feat, K1, idx, w, n, c);
    feat_sum(h->in_feat, k, idx, w, n, ci);
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
        adapter_apply(h->adapter, K1, h->emb_dim, emb, tmp);
        for (uint32_t d = 0; d < K1; d++)
            c[d] = keep * c[d] + add * tmp[d];
        memset(tmp, 0, K1 * sizeof *tmp);
        adapter_apply(h->adapter_in, k, h->emb_dim, emb, tmp);
        for (uint32_t d = 0; d < k; d++)
            ci[d] = keep * ci[d] + add * tmp[d];
        free(tmp);
    }
}

static int hyb_score_all(const void *impl, const mp_user_ctx *ctx, float *scores, mp_error *err);

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

static int fit_adapter(hybrid *h, const float *emb, uint32_t D, mp_error *err) {
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

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Price bucket edges: quantiles of log1p(price) over the items with a price. */
static int fit_price_edges(hybrid *h, const double *prices, uint32_t n_items) {
    if (!prices || h->p.price_buckets < 2) return MP_OK;
    double *v = malloc(((size_t)n_items + 1) * sizeof *v);
    if (!v) return MP_ENOMEM;
    size_t n = 0;
    for (uint32_t i = 0; i < n_items; i++)
        if (isfinite(prices[i]) && prices[i] >= 0) v[n++] = log1p(prices[i]);
    if (n < 2) {
        free(v);
        return MP_OK;
    }
    qsort(v, n, sizeof *v, cmp_double);
    h->price_edges = malloc(h->p.price_buckets * sizeof *h->price_edges);
    if (!h->price_edges) {
        free(v);
        return MP_ENOMEM;
    }
    uint32_t m = 0;
    for (uint32_t b = 1; b < h->p.price_buckets; b++) {
        double e = v[(size_t)((double)b / h->p.price_buckets * (double)(n - 1))];
        if (m == 0 || e > h->price_edges[m - 1]) h->price_edges[m++] = e;
    }
    h->n_price_edges = m;
    free(v);
    return MP_OK;
}

/* The trained parameters, for early stopping. */
typedef struct snapshot {
    float *id_vec, *feat, *in_id, *in_feat;
} snapshot;

static void snapshot_free(snapshot *s) {
    free(s->id_vec);
    free(s->feat);
    free(s->in_id);
    free(s->in_feat);
    memset(s, 0, sizeof *s);
}

static int snapshot_take(snapshot *s, const hybrid *h) {
    const size_t K1 = h->k + 1, k = h->k;
    size_t ni = (size_t)h->n_items, nf = (size_t)h->n_feats;
    if (!s->id_vec) {
        s->id_vec = malloc((ni * K1 + 1) * sizeof(float));
        s->feat = malloc((nf * K1 + 1) * sizeof(float));
        s->in_id = malloc((ni * k + 1) * sizeof(float));
        s->in_feat = malloc((nf * k + 1) * sizeof(float));
        if (!s->id_vec || !s->feat || !s->in_id || !s->in_feat) return MP_ENOMEM;
    }
    memcpy(s->id_vec, h->id_vec, ni * K1 * sizeof(float));
    memcpy(s->feat, h->feat, nf * K1 * sizeof(float));
    memcpy(s->in_id, h->in_id, ni * k * sizeof(float));
    memcpy(s->in_feat, h->in_feat, nf * k * sizeof(float));
    return MP_OK;
}

static void snapshot_restore(const snapshot *s, hybrid *h) {
    const size_t K1 = h->k + 1, k = h->k;
    memcpy(h->id_vec, s->id_vec, (size_t)h->n_items * K1 * sizeof(float));
    memcpy(h->feat, s->feat, (size_t)h->n_feats * K1 * sizeof(float));
    memcpy(h->in_id, s->in_id, (size_t)h->n_items * k * sizeof(float));
    memcpy(h->in_feat, s->in_feat, (size_t)h->n_feats * k * sizeof(float));
}

/* Content vectors of every item (features and the adapters) and the scoring vectors. */
static void build_item_vectors(hybrid *h, const train_job *J, const float *emb) {
    for (uint32_t i = 0; i < h->n_items; i++)
        content_from_list(h, i, J->fidx + J->fptr[i], J->fw + J->fptr[i], J->fptr[i + 1] - J->fptr[i],
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

static int hyb_fit(void *impl, const mp_train_data *data, const mp_progress *progress, mp_error *err) {
    hybrid *h = impl;
    if (!data || !data->ui || data->n_items == 0)
        return mp_error_set(err, MP_EEMPTY, "hybrid: no training data (the catalog is empty)");
    static const mp_train_content no_content = {0};
    const mp_train_content *content = data->content ? data->content : &no_content;
    if (content->embeddings && content->embedding_dim == 0)
        return mp_error_set(err, MP_EINVAL, "hybrid: item embeddings given with dimension 0");
    hyb_release(h);
    const uint32_t k = h->p.factors, K1 = k + 1;
    h->k = k;
    h->n_users = data->n_users;
    h->n_items = data->n_items;
    const uint32_t ni = h->n_items;
    int rc = MP_OK;
    uint64_t *fptr = NULL;
    uint32_t *fidx = NULL, *pair_user = NULL;
    float *fw = NULL, *scratch = NULL;
    uint8_t *keep = NULL;
    uint64_t *usable = NULL, n_usable = 0;
    uint32_t *back = NULL, *hist = NULL;
    float *hw = NULL;
    feat_list fl = {0};
    snapshot snap = {0};
    mp_rng *rngs = NULL;

    fptr = malloc(((size_t)ni + 1) * sizeof *fptr);
    if (alloc_items(h, ni) != MP_OK || !fptr || mp_strmap_create(&h->vocab, 1024) != MP_OK ||
        fit_price_edges(h, content->prices, ni) != MP_OK || mp_item_titles_copy(data->item_titles, ni, &h->titles) != MP_OK) {
        rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for %u items", ni);
        goto fail;
    }
    if (data->item_category && data->category_names) {
        if (!(h->cats = calloc((size_t)ni + 1, sizeof *h->cats))) {
            rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for item categories");
            goto fail;
        }
        for (uint32_t i = 0; i < ni; i++) {
            uint32_t c = data->item_category[i];
            if (c == 0 || c >= data->n_categories || !data->category_names[c]) continue;
            if (!(h->cats[i] = strdup(data->category_names[c]))) {
                rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for item categories");
                goto fail;
            }
        }
    }
    /* feature lists of all items (the vocabulary grows from them) */
    size_t cap = (size_t)ni * 8 + 16, nnzf = 0;
    fidx = malloc(cap * sizeof *fidx);
    fw = malloc(cap * sizeof *fw);
    if (!fidx || !fw) {
        rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for item features");
        goto fail;
    }
    fptr[0] = 0;
    for (uint32_t i = 0; i < ni; i++) {
        const char *title = data->item_titles ? data->item_titles[i] : NULL;
        const char *desc = content->descriptions ? content->descriptions[i] : NULL;
        const char *brand = content->brands ? content->brands[i] : NULL;
        const char *cat = h->cats ? h->cats[i] : NULL;
        double price = content->prices ? content->prices[i] : NAN;
        if (item_features(h, h->vocab, 1, title, desc, cat, brand, price, &fl) != MP_OK) {
            rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for item features");
            goto fail;
        }
        if (nnzf + fl.n > cap) {
            size_t c2 = (nnzf + fl.n) * 2;
            uint32_t *a = realloc(fidx, c2 * sizeof *a);
            if (a) fidx = a;
            float *b = realloc(fw, c2 * sizeof *b);
            if (b) fw = b;
            if (!a || !b) {
                rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for item features");
                goto fail;
            }
            cap = c2;
        }
        memcpy(fidx + nnzf, fl.idx, fl.n * sizeof *fidx);
        memcpy(fw + nnzf, fl.w, fl.n * sizeof *fw);
        nnzf += fl.n;
        fptr[i + 1] = nnzf;
    }
    h->n_feats = (uint32_t)mp_strmap_size(h->vocab);
    /* idf over the items, then the weights of the lists built without it */
    if (!(h->idf = calloc((size_t)h->n_feats + 1, sizeof *h->idf))) {
        rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for %u features", h->n_feats);
        goto fail;
    }
    for (size_t x = 0; x < nnzf; x++)
        h->idf[fidx[x]] += 1.0f;
    for (uint32_t f = 0; f < h->n_feats; f++)
        h->idf[f] = (float)(log((1.0 + ni) / (1.0 + h->idf[f])) + 1.0);
    for (uint32_t i = 0; i < ni; i++)
        apply_idf(h, fidx + fptr[i], fw + fptr[i], fptr[i + 1] - fptr[i]);
    h->feat = calloc(((size_t)h->n_feats + 1) * K1, sizeof *h->feat);
    h->in_feat = calloc(((size_t)h->n_feats + 1) * k, sizeof *h->in_feat);
    if (!h->feat || !h->in_feat) {
        rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for %u feature embeddings", h->n_feats);
        goto fail;
    }
    /* warm items, pair owners, initial vectors */
    for (uint32_t i = 0; i < ni; i++)
        if (data->iu && i < data->iu->n_rows && data->iu->ptr[i + 1] > data->iu->ptr[i]) {
            h->has_id[i] = 1;
            h->warm[h->n_warm++] = i;
        }
    const uint64_t nnz = mp_csr_nnz(data->ui);
    if (nnz == 0 || h->n_warm == 0) {
        rc = mp_error_set(err, MP_EEMPTY, "hybrid: no positive training events to learn from");
        goto fail;
    }
    if (!(pair_user = malloc(nnz * sizeof *pair_user))) {
        rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for %llu training pairs", (unsigned long long)nnz);
        goto fail;
    }
    double val_sum = 0;
    for (uint32_t u = 0; u < data->ui->n_rows; u++)
        for (uint64_t p = data->ui->ptr[u]; p < data->ui->ptr[u + 1]; p++) {
            pair_user[p] = u;
            val_sum += data->ui->val[p];
        }
    {
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
    }
    /* sequence mode: the events that have a positive event of their user before them */
    if (h->p.sequence && data->events && data->n_events) {
        usable = malloc(data->n_events * sizeof *usable);
        back = malloc(data->n_events * sizeof *back);
        if (!usable || !back) {
            rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for %zu events", data->n_events);
            goto fail;
        }
        uint64_t start = 0;
        for (size_t e = 0; e < data->n_events; e++) {
            if (e == 0 || data->events[e].user != data->events[e - 1].user) start = e;
            uint64_t d = e - start;
            back[e] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
            const mp_interaction *x = &data->events[e];
            if (d > 0 && is_positive(x) && x->grade >= 0 && x->item < ni && h->has_id[x->item]) usable[n_usable++] = e;
        }
    }
    train_job J = {.h = h,
                   .events = data->events,
                   .usable = usable,
                   .n_usable = n_usable,
                   .back = back,
                   .ui = data->ui,
                   .pair_user = pair_user,
                   .fptr = fptr,
                   .fidx = fidx,
                   .fw = fw,
                   .mean_val = (float)(val_sum / (double)nnz),
                   .lr = (float)h->p.learning_rate,
                   .reg = (float)h->p.regularization};
    if (!(J.mean_val > 0)) J.mean_val = 1;
    const int n_threads = mp_bprmf_threads(h->p.threads, data);
    rngs = malloc((size_t)n_threads * sizeof *rngs);
    scratch = malloc((size_t)n_threads * 4 * K1 * sizeof *scratch);
    keep = malloc((size_t)n_threads * (HYB_TRAIN_HISTORY + 2));
    hist = malloc((size_t)n_threads * (HYB_TRAIN_HISTORY + 2) * sizeof *hist);
    hw = malloc((size_t)n_threads * (HYB_TRAIN_HISTORY + 2) * sizeof *hw);
    if (!rngs || !scratch || !keep || !hist || !hw) {
        rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for training threads");
        goto fail;
    }
    for (int t = 0; t < n_threads; t++)
        mp_rng_seed(&rngs[t], h->p.seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(t + 2)));
    const int validate = data->valid && data->n_valid > 0;
    uint32_t eval_every = h->p.eval_every ? h->p.eval_every : (h->p.epochs >= 10 ? h->p.epochs / 10 : 1);
    uint32_t since_best = 0;
    h->best_valid = NAN;
    for (uint32_t ep = 0; ep < h->p.epochs; ep++) {
#pragma omp parallel num_threads(n_threads)
        {
            int t = omp_get_thread_num();
            float *base = scratch + (size_t)t * 4 * K1;
            const size_t off = (size_t)t * (HYB_TRAIN_HISTORY + 2);
            train_scratch S = {base, base + K1, base + 2 * K1, base + 3 * K1, keep + off, hist + off, hw + off};
            const uint64_t total = J.n_usable ? J.n_usable : nnz;
            uint64_t share = total / (uint64_t)n_threads + ((uint64_t)t < total % (uint64_t)n_threads);
            if (J.n_usable)
                for (uint64_t s = 0; s < share; s++)
                    train_sample_seq(&J, &rngs[t], &S);
            else
                for (uint64_t s = 0; s < share; s++)
                    train_sample(&J, &rngs[t], &S);
        }
        h->epochs_run = ep + 1;
        mp_progress_report(progress, "fit", ep + 1, h->p.epochs);
        if (validate && ((ep + 1) % eval_every == 0 || ep + 1 == h->p.epochs)) {
            build_item_vectors(h, &J, NULL);
            double v;
            rc = mp_train_data_valid_ndcg(data, hyb_score_all, h, 10, &v, err);
            if (rc == MP_EEMPTY) { /* nothing to validate on: train all epochs */
                rc = MP_OK;
                continue;
            }
            if (rc != MP_OK) goto fail;
            if (isnan(h->best_valid) || v > h->best_valid) {
                h->best_valid = v;
                h->best_epoch = ep + 1;
                since_best = 0;
                if (snapshot_take(&snap, h) != MP_OK) {
                    rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for the early-stopping snapshot");
                    goto fail;
                }
            } else if (h->p.patience && ++since_best >= h->p.patience) {
                break;
            }
        }
    }
    if (snap.id_vec && h->best_epoch != h->epochs_run) snapshot_restore(&snap, h);
    if (!snap.id_vec) h->best_epoch = h->epochs_run;
    if (content->embeddings) {
        build_item_vectors(h, &J, NULL); /* the adapter's targets */
        if ((rc = fit_adapter(h, content->embeddings, content->embedding_dim, err)) != MP_OK) goto fail;
        if (h->adapter && content->embedding_source && !(h->emb_source = strdup(content->embedding_source))) {
            rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory");
            goto fail;
        }
    }
    build_item_vectors(h, &J, h->adapter ? content->embeddings : NULL);
    {
        if (!(h->lex = calloc((size_t)ni + 1, sizeof *h->lex))) {
            rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for the lexical index");
            goto fail;
        }
        for (uint32_t i = 0; i < ni; i++)
            if (lex_item_set(&h->lex[i], fidx + fptr[i], fw + fptr[i], fptr[i + 1] - fptr[i]) != MP_OK) {
                rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for the lexical index");
                goto fail;
            }
        if (lex_index(h) != MP_OK) {
            rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for the lexical index");
            goto fail;
        }
        if (h->p.transitions > 0 && data->events && build_successors(h, data->events, data->n_events) != MP_OK) {
            rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for successor profiles");
            goto fail;
        }
        float *acc = calloc((size_t)ni + 1, sizeof *acc);
        uint32_t *touched = malloc(((size_t)ni + 1) * sizeof *touched);
        if (!acc || !touched) {
            free(acc);
            free(touched);
            rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for content neighbours");
            goto fail;
        }
        for (uint32_t i = 0; i < ni; i++)
            if (!h->has_id[i]) lex_neighbour_vector(h, i, acc, touched);
        free(acc);
        free(touched);
        refresh_items(h, 0, ni);
    }
    goto done;
fail:
    hyb_release(h);
done:
    snapshot_free(&snap);
    feat_list_free(&fl);
    free(fptr);
    free(fidx);
    free(fw);
    free(pair_user);
    free(rngs);
    free(scratch);
    free(keep);
    free(hist);
    free(hw);
    free(usable);
    free(back);
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
        int rc = add_text(&l, h->vocab, 0, ctx->text, ctx->text_len, (int)h->p.subwords, 0, W_TITLE);
        if (rc != MP_OK) {
            feat_list_free(&l);
            return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory reading the request text");
        }
        apply_idf(h, l.idx, l.w, l.n);
        for (size_t x = 0; x < l.n; x++) {
            const float *row = h->in_feat + (size_t)l.idx[x] * k;
            for (uint32_t d = 0; d < k; d++)
                out[d] += s * l.w[x] * row[d];
        }
        *have = l.n > 0;
        feat_list_free(&l);
    }
    if (h->adapter_in && ctx->text_embedding && ctx->text_embedding_dim == h->emb_dim &&
        nonzero(ctx->text_embedding, h->emb_dim)) {
        float *tmp = calloc(k, sizeof *tmp);
        if (!tmp) return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory reading the request text");
        adapter_apply(h->adapter_in, k, h->emb_dim, ctx->text_embedding, tmp);
        for (uint32_t d = 0; d < k; d++)
            out[d] += s * tmp[d];
        free(tmp);
        *have = 1;
    }
    return MP_OK;
}

/* The history as scoring sees it: distinct positive items the model knows, most recent first (at most
 * HYB_MAX_HISTORY; older ones would weigh under recency^HYB_MAX_HISTORY anyway) with weights recency^j. Returns the
 * count; *wsum gets the sum of the weights. */
#define HYB_MAX_HISTORY 256
static size_t collect_history(const hybrid *h, const mp_user_ctx *ctx, uint32_t *items, float *w, double *wsum) {
    size_t n = 0;
    double wj = 1;
    *wsum = 0;
    for (size_t x = ctx->n_history; x-- > 0 && n < HYB_MAX_HISTORY;) {
        const mp_interaction *e = &ctx->history[x];
        if (e->item >= h->n_items || !is_positive(e) || e->grade < 0) continue;
        int dup = 0;
        for (size_t y = 0; y < n && !dup; y++)
            dup = items[y] == e->item;
        if (dup) continue;
        items[n] = e->item;
        w[n] = (float)wj;
        *wsum += wj;
        wj *= h->p.recency;
        n++;
    }
    return n;
}

/* The user vector (k + 1): the history items' input vectors (distinct positive items the model knows) and the
 * request text, over count^history_norm; the last component is 1 (the bias). */
static int user_vector(const hybrid *h, const mp_user_ctx *ctx, float *pu, mp_error *err) {
    const uint32_t k = h->k;
    memset(pu, 0, ((size_t)k + 1) * sizeof *pu);
    uint32_t items[HYB_MAX_HISTORY];
    float w[HYB_MAX_HISTORY];
    double wsum;
    size_t n = collect_history(h, ctx, items, w, &wsum);
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

/* Adds the lexical channel to scores: the history weighted as in user_vector, the text like one item of weight
 * text_weight; the weights are divided by their sum (a weighted mean of cosines). */
static int lex_score(const hybrid *h, const mp_user_ctx *ctx, float *scores, mp_error *err) {
    feat_list l = {0};
    if (ctx->text && ctx->text_len) {
        if (add_text(&l, h->vocab, 0, ctx->text, ctx->text_len, (int)h->p.subwords, 0, W_TITLE) != MP_OK) {
            feat_list_free(&l);
            return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory reading the request text");
        }
        apply_idf(h, l.idx, l.w, l.n);
    }
    lex_item tl = {0};
    if (l.n && lex_item_set(&tl, l.idx, l.w, l.n) != MP_OK) {
        feat_list_free(&l);
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory reading the request text");
    }
    feat_list_free(&l);
    uint32_t items[HYB_MAX_HISTORY];
    float w[HYB_MAX_HISTORY];
    double wsum;
    size_t n = collect_history(h, ctx, items, w, &wsum);
    if (tl.n) wsum += h->p.text_weight;
    if (wsum > 0) {
        for (size_t x = 0; x < n; x++) {
            const lex_item *li = &h->lex[items[x]];
            lex_accumulate(h, li->idx, li->w, li->n, (float)(h->p.lexical * w[x] / wsum), scores);
            if (h->succ) {
                const lex_item *si = &h->succ[items[x]];
                lex_accumulate(h, si->idx, si->w, si->n, (float)(h->p.transitions * w[x] / wsum), scores);
            }
        }
        if (tl.n) lex_accumulate(h, tl.idx, tl.w, tl.n, (float)(h->p.lexical * h->p.text_weight / wsum), scores);
    }
    lex_item_free(&tl);
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
    if (rc == MP_OK && h->lex && h->p.lexical > 0) rc = lex_score(h, ctx, scores, err);
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
        else snprintf(buf, cap, "similar to item %u that you %s", e->item, mp_bprmf_verb(e->type));
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
        item_features(h, h->vocab, 0, c->title, c->description, c->category, c->brand, c->price, &l) != MP_OK) {
        free(title);
        free(cat);
        feat_list_free(&l);
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory adding item %u", item);
    }
    content_from_list(h, item, l.idx, l.w, l.n, c->embedding_dim == h->emb_dim ? c->embedding : NULL);
    if (h->lex && lex_replace(h, item, l.idx, l.w, l.n) != MP_OK) {
        free(title);
        free(cat);
        feat_list_free(&l);
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory indexing item %u", item);
    }
    feat_list_free(&l);
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
        lex_neighbour_vector(h, item, acc, touched);
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

static void put_lists(mp_mf_writer *w, const lex_item *a, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        mp_mf_put_u32(w, a[i].n);
        mp_mf_put_u32s(w, a[i].idx, a[i].n);
        mp_mf_put_f32s(w, a[i].w, a[i].n);
    }
}

/* Reads what put_lists wrote into a new array *out ([ni]); features must be < nf. */
static int get_lists(mp_mf_reader *r, lex_item **out, uint32_t ni, uint32_t nf, mp_error *err) {
    lex_item *a = calloc((size_t)ni + 1, sizeof *a);
    *out = a;
    if (!a) return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory loading the lexical index");
    for (uint32_t i = 0; i < ni; i++) {
        uint32_t n;
        int rc;
        if ((rc = mp_mf_get_u32(r, &n, err))) return rc;
        if ((uint64_t)n * 8 > mp_mf_remaining(r))
            return mp_error_set(err, MP_ECORRUPT, "hybrid payload: feature list of item %u exceeds the file", i);
        lex_item *li = &a[i];
        li->idx = malloc(((size_t)n + 1) * sizeof *li->idx);
        li->w = malloc(((size_t)n + 1) * sizeof *li->w);
        if (!li->idx || !li->w) return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory loading the lexical index");
        li->n = n;
        if ((rc = mp_mf_get_u32s(r, li->idx, n, err)) || (rc = mp_mf_get_f32s(r, li->w, n, err))) return rc;
        for (uint32_t x = 0; x < n; x++)
            if (li->idx[x] >= nf)
                return mp_error_set(err, MP_ECORRUPT, "hybrid payload: feature out of range in the list of item %u", i);
    }
    return MP_OK;
}

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
    if (h->lex) put_lists(w, h->lex, h->n_items);
    mp_mf_put_u32(w, h->succ ? 1 : 0);
    if (h->succ) put_lists(w, h->succ, h->n_items);
    return MP_OK;
}

static int hyb_load(void *impl, mp_mf_reader *r, mp_error *err) {
    hybrid *h = impl;
    hyb_release(h);
    int rc;
    if ((rc = mp_params_get(hyb_params_info, MP_PARAM_COUNT(hyb_params_info), &h->p, r, "hybrid", err)) || (rc = mp_mf_get_u32(r, &h->epochs_run, err)) ||
        (rc = mp_mf_get_u32(r, &h->best_epoch, err)) || (rc = mp_mf_get_f64(r, &h->best_valid, err)))
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
        if ((rc = get_lists(r, &h->lex, ni, nf, err))) goto fail;
        if (lex_index(h) != MP_OK) {
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
    if (has_succ && (rc = get_lists(r, &h->succ, ni, nf, err))) goto fail;
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
