/* src/live/holder.c: the model holder's life: creation, the reference count that lets a replaced model finish
 * the calls in flight (the last reader frees it), and its pool of HNSW search scratches. Loading and swapping
 * holders is live.c's; the locks are described in live_internal.h. */
#include <stdlib.h>

#include "live/live_internal.h"

live_holder *live_holder_new(void) {
    live_holder *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->refs = 1;
    pthread_rwlock_init(&h->lock, NULL);
    pthread_mutex_init(&h->hs_mu, NULL);
    return h;
}

void live_holder_free(live_holder *h) {
    if (!h) return;
    mp_model_destroy(h->model);
    for (size_t k = 0; k < h->n_hs; k++) mp_hnsw_scratch_destroy(h->hs[k]);
    free(h->hs);
    mp_hnsw_destroy(h->index);
    free(h->info.meta_json);
    pthread_rwlock_destroy(&h->lock);
    pthread_mutex_destroy(&h->hs_mu);
    free(h);
}

live_holder *live_holder_acquire(mp_live *l) {
    pthread_mutex_lock(&l->model_mu);
    live_holder *h = l->cur;
    h->refs++;
    pthread_mutex_unlock(&l->model_mu);
    return h;
}

void live_holder_release(mp_live *l, live_holder *h) {
    if (!h) return;
    pthread_mutex_lock(&l->model_mu);
    int last = --h->refs == 0;
    pthread_mutex_unlock(&l->model_mu);
    if (last) live_holder_free(h); /* the last reader of a replaced model frees it */
}

mp_hnsw_scratch *live_hnsw_scratch_get(live_holder *h, mp_error *err) {
    mp_hnsw_scratch *s = NULL;
    pthread_mutex_lock(&h->hs_mu);
    if (h->n_hs) s = h->hs[--h->n_hs];
    pthread_mutex_unlock(&h->hs_mu);
    if (!s && mp_hnsw_scratch_create(&s, h->index, err) != MP_OK) return NULL;
    return s;
}

void live_hnsw_scratch_put(live_holder *h, mp_hnsw_scratch *s) {
    pthread_mutex_lock(&h->hs_mu);
    if (mp_grow((void **)&h->hs, &h->cap_hs, h->n_hs + 1, sizeof *h->hs) == MP_OK) {
        h->hs[h->n_hs++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&h->hs_mu);
    mp_hnsw_scratch_destroy(s); /* only when the stack could not grow */
}
