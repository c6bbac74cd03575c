/* hybrid_features.c: an item's content (title and description tokens, category path, brand, price bucket) or a
 * request's text as weighted rows of the model's vocabulary. Every kind of content becomes a "<kind>:<string>"
 * feature of one vocabulary, so a brand, a category and a rare title word are all learned (and matched by the
 * lexical channel) the same way; a group's weight is split over its features so that a long description does not
 * outweigh the title, and idf makes rare features count more (see the top of hybrid.c). The vocabulary, idf and
 * price edges are fixed at fit: set_item and requests map new content onto them and skip unknown features. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/buf.h"
#include "magpie/text.h"
#include "models/hybrid_internal.h"

void hyb_feat_list_free(feat_list *l) {
    free(l->idx);
    free(l->w);
    memset(l, 0, sizeof *l);
}

int hyb_pairs_make_room(uint32_t **idx, float **w, size_t n, size_t *cap) {
    return mp_grow2((void **)idx, sizeof **idx, (void **)w, sizeof **w, cap, n + 1);
}

static int feat_list_push(feat_list *l, uint32_t idx, float w) {
    for (size_t i = 0; i < l->n; i++) /* lists are short: merge repeats by a scan */
        if (l->idx[i] == idx) {
            l->w[i] += w;
            return MP_OK;
        }
    if (hyb_pairs_make_room(&l->idx, &l->w, l->n, &l->cap) != MP_OK) return MP_ENOMEM;
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
int hyb_add_text(feat_list *l, mp_strmap *vocab, int grow, const char *text, size_t len, int subwords,
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

void hyb_apply_idf(const hybrid *h, const uint32_t *idx, float *w, size_t n) {
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
int hyb_item_features(const hybrid *h, mp_strmap *vocab, int grow, const char *title, const char *desc, const char *cat,
                      const char *brand, double price, feat_list *l) {
    l->n = 0;
    int rc;
    if (title && (rc = hyb_add_text(l, vocab, grow, title, strlen(title), (int)h->p.subwords, 0, W_TITLE))) return rc;
    if (desc && h->p.desc_tokens &&
        (rc = hyb_add_text(l, vocab, grow, desc, strlen(desc), 0, h->p.desc_tokens, W_DESC)))
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
    hyb_apply_idf(h, l->idx, l->w, l->n);
    return MP_OK;
}

void hyb_feat_sum(const float *feat, uint32_t K1, const uint32_t *idx, const float *w, size_t n, float *out) {
    memset(out, 0, K1 * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        const float *row = feat + (size_t)idx[i] * K1;
        const float wi = w[i];
#pragma omp simd
        for (uint32_t d = 0; d < K1; d++)
            out[d] += wi * row[d];
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int hyb_fit_price_edges(hybrid *h, const double *prices, uint32_t n_items) {
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

void hyb_feats_free(hyb_feats *f) {
    free(f->ptr);
    free(f->idx);
    free(f->w);
    memset(f, 0, sizeof *f);
}

int hyb_features_build(hybrid *h, const mp_train_data *data, const mp_train_content *content, hyb_feats *out,
                       mp_error *err) {
    const uint32_t ni = h->n_items;
    feat_list fl = {0};
    int rc = MP_OK;
    memset(out, 0, sizeof *out);
    if (!(out->ptr = malloc(((size_t)ni + 1) * sizeof *out->ptr)))
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for %u items", ni);
    /* feature lists of all items (the vocabulary grows from them) */
    size_t cap = (size_t)ni * 8 + 16, nnzf = 0;
    uint64_t *fptr = out->ptr;
    uint32_t *fidx = out->idx = malloc(cap * sizeof *fidx);
    float *fw = out->w = malloc(cap * sizeof *fw);
    if (!fidx || !fw) {
        rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for item features");
        goto done;
    }
    fptr[0] = 0;
    for (uint32_t i = 0; i < ni; i++) {
        const char *title = data->item_titles ? data->item_titles[i] : NULL;
        const char *desc = content->descriptions ? content->descriptions[i] : NULL;
        const char *brand = content->brands ? content->brands[i] : NULL;
        const char *cat = h->cats ? h->cats[i] : NULL;
        double price = content->prices ? content->prices[i] : NAN;
        if (hyb_item_features(h, h->vocab, 1, title, desc, cat, brand, price, &fl) != MP_OK) {
            rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for item features");
            goto done;
        }
        if (nnzf + fl.n > cap) {
            size_t c2 = (nnzf + fl.n) * 2;
            uint32_t *a = realloc(fidx, c2 * sizeof *a);
            if (a) fidx = out->idx = a;
            float *b = realloc(fw, c2 * sizeof *b);
            if (b) fw = out->w = b;
            if (!a || !b) {
                rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for item features");
                goto done;
            }
            cap = c2;
        }
        if (fl.n) { /* an item without any content has no list (fl.idx may be NULL) */
            memcpy(fidx + nnzf, fl.idx, fl.n * sizeof *fidx);
            memcpy(fw + nnzf, fl.w, fl.n * sizeof *fw);
            nnzf += fl.n;
        }
        fptr[i + 1] = nnzf;
    }
    h->n_feats = (uint32_t)mp_strmap_size(h->vocab);
    /* idf over the items, then the weights of the lists built without it */
    if (!(h->idf = calloc((size_t)h->n_feats + 1, sizeof *h->idf))) {
        rc = mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for %u features", h->n_feats);
        goto done;
    }
    for (size_t x = 0; x < nnzf; x++)
        h->idf[fidx[x]] += 1.0f;
    for (uint32_t f = 0; f < h->n_feats; f++)
        h->idf[f] = (float)(log((1.0 + ni) / (1.0 + h->idf[f])) + 1.0);
    for (uint32_t i = 0; i < ni; i++)
        hyb_apply_idf(h, fidx + fptr[i], fw + fptr[i], fptr[i + 1] - fptr[i]);
done:
    hyb_feat_list_free(&fl);
    if (rc != MP_OK) hyb_feats_free(out);
    return rc;
}

/* ---- the user context ----
 * Not content, but the other input both towers and the lexical channel read the same way, kept here so that they
 * share it without calling each other. */

/* The history as scoring sees it: distinct positive items the model knows, most recent first (at most
 * HYB_MAX_HISTORY; older ones would weigh under recency^HYB_MAX_HISTORY anyway) with weights recency^j. Returns the
 * count; *wsum gets the sum of the weights. */
size_t hyb_collect_history(const hybrid *h, const mp_user_ctx *ctx, uint32_t *items, float *w, double *wsum) {
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
