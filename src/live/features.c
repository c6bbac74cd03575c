/* src/live/features.c: per-item feature vectors and facts (price, popularity, stock) for re-ranking in serving:
 * the exploration policies' x and the shopper protection's business rules (magpie/live.h). */
#include <math.h>
#include <string.h>

#include "live/live_internal.h"

int mp_live_feat_source_parse(const char *s, mp_live_feat_source *out, mp_error *err) {
    static const char *const names[] = {"none", "model", "text", "auto"};
    for (int i = 0; i < 4; i++)
        if (s && !strcmp(s, names[i])) {
            *out = (mp_live_feat_source)i;
            return MP_OK;
        }
    return mp_error_set(err, MP_EINVAL, "feature source \"%s\" is not one of auto, model, text, none", s ? s : "");
}

/* The source `want` resolves to with holder h (cat read side held), and its dimension. */
static mp_live_feat_source resolve(const mp_live *l, const live_holder *h, mp_live_feat_source want, uint32_t *dim) {
    int model_ok = h && h->model && h->has_vectors && h->dim > 0;
    int text_ok = l->emb && l->emb_dim > 0 && l->n_emb > 0;
    mp_live_feat_source s = want;
    if (s == MP_LIVE_FEAT_AUTO) s = model_ok ? MP_LIVE_FEAT_MODEL : text_ok ? MP_LIVE_FEAT_TEXT : MP_LIVE_FEAT_NONE;
    if ((s == MP_LIVE_FEAT_MODEL && !model_ok) || (s == MP_LIVE_FEAT_TEXT && !text_ok)) s = MP_LIVE_FEAT_NONE;
    *dim = s == MP_LIVE_FEAT_MODEL ? h->dim : s == MP_LIVE_FEAT_TEXT ? l->emb_dim : 0;
    return s;
}

mp_live_feat_source mp_live_feature_source(mp_live *l, mp_live_feat_source want, uint32_t *dim) {
    pthread_rwlock_rdlock(&l->cat);
    live_holder *h = live_holder_acquire(l);
    mp_live_feat_source s = resolve(l, h, want, dim);
    live_holder_release(l, h);
    pthread_rwlock_unlock(&l->cat);
    return s;
}

int mp_live_item_features(mp_live *l, const char *const *items, size_t n, mp_live_feat_source source, uint32_t dim,
                          float *x, mp_live_item_facts *facts, size_t *n_with, mp_error *err) {
    if (n_with) *n_with = 0;
    if (x && dim == 0) return mp_error_set(err, MP_EINVAL, "item features: a feature buffer needs a dimension > 0");
    if (x) memset(x, 0, n * dim * sizeof *x);
    pthread_rwlock_rdlock(&l->cat);
    live_holder *h = live_holder_acquire(l);
    uint32_t have_dim = 0;
    mp_live_feat_source s = x ? resolve(l, h, source, &have_dim) : MP_LIVE_FEAT_NONE;
    if (have_dim != dim) s = MP_LIVE_FEAT_NONE;
    const float *vecs = NULL;
    uint32_t n_vec = 0, vdim = 0;
    int locked = 0;
    if (s == MP_LIVE_FEAT_MODEL) {
        pthread_rwlock_rdlock(&h->lock);
        locked = 1;
        if (mp_model_item_vectors(h->model, &vecs, &n_vec, &vdim, NULL) != MP_OK || vdim != dim) vecs = NULL;
    }
    double shown = l->pop_half_life > 0 ? exp2(-(double)(l->pop_latest - l->pop_ref) / l->pop_half_life) : 1.0;
    size_t with = 0;
    for (size_t k = 0; k < n; k++) {
        const char *id = items[k];
        uint32_t i = id ? mp_strmap_get(l->items, id, strlen(id)) : MP_STRMAP_NONE;
        mp_live_item_facts *f = &facts[k];
        if (i == MP_STRMAP_NONE || i >= l->n_items) {
            *f = (mp_live_item_facts){.price = NAN, .popularity = 0, .available = 0, .known = 0};
            continue;
        }
        *f = (mp_live_item_facts){
            .price = l->price[i], .popularity = l->pop[i] > 0 ? l->pop[i] * shown : 0, .available = l->avail[i],
            .known = 1};
        const float *v = NULL;
        if (s == MP_LIVE_FEAT_MODEL && vecs && i < n_vec) v = vecs + (size_t)i * dim;
        else if (s == MP_LIVE_FEAT_TEXT && l->has_emb[i]) v = l->emb + (size_t)i * dim;
        if (!v) continue;
        double norm = 0;
        for (uint32_t d = 0; d < dim; d++) norm += (double)v[d] * v[d];
        if (!(norm > 0) || !isfinite(norm)) continue;
        float scale = (float)(1.0 / sqrt(norm));
        float *o = x + k * dim;
        for (uint32_t d = 0; d < dim; d++) o[d] = v[d] * scale;
        with++;
    }
    if (locked) pthread_rwlock_unlock(&h->lock);
    live_holder_release(l, h);
    pthread_rwlock_unlock(&l->cat);
    if (n_with) *n_with = with;
    return MP_OK;
}
