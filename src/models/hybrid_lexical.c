/* hybrid_lexical.c: the lexical channel of "hybrid".
 * score += lexical x (recency-weighted mean over the history (and the request text) of the cosine between the
 * idf-weighted feature vectors of the history item and of the candidate). Exact word overlap is what a factor
 * model of a few dozen dimensions blurs most (a franchise name shared by a handful of items), and it is what ranks
 * a new item whose words match what the user bought. Kept as an inverted index (feature -> items).
 * Successor profiles (transitions > 0) are the same kind of vector for what users took next after an item, and
 * the index also finds an item's content neighbours (neighbours > 0). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/hybrid_internal.h"

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
    if (hyb_pairs_make_room(&p->item, &p->w, p->n, &cap) != MP_OK) return MP_ENOMEM;
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

void hyb_lex_free(hybrid *h) {
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

int hyb_lex_index(hybrid *h) {
    if (!(h->post = calloc((size_t)h->n_feats + 1, sizeof *h->post))) return MP_ENOMEM;
    for (uint32_t i = 0; i < h->n_items; i++)
        for (uint32_t x = 0; x < h->lex[i].n; x++)
            if (lex_post_add(&h->post[h->lex[i].idx[x]], i, h->lex[i].w[x]) != MP_OK) return MP_ENOMEM;
    return MP_OK;
}

int hyb_lex_replace(hybrid *h, uint32_t i, const uint32_t *idx, const float *w, size_t n) {
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
void hyb_lex_neighbour_vector(hybrid *h, uint32_t i, float *acc, uint32_t *touched) {
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

int hyb_lex_build(hybrid *h, const hyb_feats *fs, const mp_train_data *data, mp_error *err) {
    const uint32_t ni = h->n_items;
    if (!(h->lex = calloc((size_t)ni + 1, sizeof *h->lex)))
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for the lexical index");
    for (uint32_t i = 0; i < ni; i++)
        if (lex_item_set(&h->lex[i], fs->idx + fs->ptr[i], fs->w + fs->ptr[i], fs->ptr[i + 1] - fs->ptr[i]) != MP_OK)
            return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for the lexical index");
    if (hyb_lex_index(h) != MP_OK) return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for the lexical index");
    if (h->p.transitions > 0 && data->events && build_successors(h, data->events, data->n_events) != MP_OK)
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for successor profiles");
    float *acc = calloc((size_t)ni + 1, sizeof *acc);
    uint32_t *touched = malloc(((size_t)ni + 1) * sizeof *touched);
    if (!acc || !touched) {
        free(acc);
        free(touched);
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory for content neighbours");
    }
    for (uint32_t i = 0; i < ni; i++)
        if (!h->has_id[i]) hyb_lex_neighbour_vector(h, i, acc, touched);
    free(acc);
    free(touched);
    return MP_OK;
}

/* Adds the lexical channel to scores: the history weighted as in user_vector, the text like one item of weight
 * text_weight; the weights are divided by their sum (a weighted mean of cosines). */
int hyb_lex_score(const hybrid *h, const mp_user_ctx *ctx, float *scores, mp_error *err) {
    feat_list l = {0};
    if (ctx->text && ctx->text_len) {
        if (hyb_add_text(&l, h->vocab, 0, ctx->text, ctx->text_len, (int)h->p.subwords, 0, W_TITLE) != MP_OK) {
            hyb_feat_list_free(&l);
            return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory reading the request text");
        }
        hyb_apply_idf(h, l.idx, l.w, l.n);
    }
    lex_item tl = {0};
    if (l.n && lex_item_set(&tl, l.idx, l.w, l.n) != MP_OK) {
        hyb_feat_list_free(&l);
        return mp_error_set(err, MP_ENOMEM, "hybrid: out of memory reading the request text");
    }
    hyb_feat_list_free(&l);
    uint32_t items[HYB_MAX_HISTORY];
    float w[HYB_MAX_HISTORY];
    double wsum;
    size_t n = hyb_collect_history(h, ctx, items, w, &wsum);
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

void hyb_lex_put_lists(mp_mf_writer *w, const lex_item *a, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        mp_mf_put_u32(w, a[i].n);
        mp_mf_put_u32s(w, a[i].idx, a[i].n);
        mp_mf_put_f32s(w, a[i].w, a[i].n);
    }
}

/* Reads what hyb_lex_put_lists wrote into a new array *out ([ni]); features must be < nf. */
int hyb_lex_get_lists(mp_mf_reader *r, lex_item **out, uint32_t ni, uint32_t nf, mp_error *err) {
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
