/* mp_topk: bounded heap selection, O(n log k), no allocation for k <= 128. */
#include "magpie/topk.h"

#include <stdlib.h>

/* A min-heap of the k best seen so far whose root is the worst of them. "a worse than b" means a lower score,
 * or an equal score and a higher index. Most items fail the first comparison against the root, so the scan is
 * one load and one compare per item. */

typedef struct {
    float s;
    uint32_t i;
} topk_ent;

static inline int topk_worse(topk_ent a, topk_ent b) { return a.s < b.s || (a.s == b.s && a.i > b.i); }

static void topk_sift_down(topk_ent *h, size_t n, size_t at) {
    topk_ent x = h[at];
    for (;;) {
        size_t c = 2 * at + 1;
        if (c >= n) break;
        if (c + 1 < n && topk_worse(h[c + 1], h[c])) c++;
        if (!topk_worse(h[c], x)) break;
        h[at] = h[c];
        at = c;
    }
    h[at] = x;
}

static void topk_sift_up(topk_ent *h, size_t at) {
    topk_ent x = h[at];
    while (at > 0) {
        size_t p = (at - 1) / 2;
        if (!topk_worse(x, h[p])) break;
        h[at] = h[p];
        at = p;
    }
    h[at] = x;
}

#define TOPK_STACK 128

int mp_topk(const float *scores, size_t n, const uint8_t *allow, size_t k, uint32_t *out_idx, size_t *n_out) {
    if (!n_out) return MP_EINVAL;
    *n_out = 0;
    if (k == 0 || n == 0) return MP_OK;
    if (!scores || !out_idx || n > UINT32_MAX) return MP_EINVAL;
    if (k > n) k = n;
    topk_ent stack[TOPK_STACK];
    topk_ent *h = stack;
    if (k > TOPK_STACK) {
        h = malloc(k * sizeof *h);
        if (!h) return MP_ENOMEM;
    }
    size_t size = 0;
    size_t i = 0;
    /* Fill phase. */
    for (; i < n && size < k; i++) {
        float s = scores[i];
        if (s != s || (allow && !allow[i])) continue;
        h[size].s = s;
        h[size].i = (uint32_t)i;
        topk_sift_up(h, size);
        size++;
    }
    /* Replace phase: an index later than all heap entries can only enter with a strictly higher score. */
    float root = size ? h[0].s : 0;
    if (allow) {
        for (; i < n; i++) {
            float s = scores[i];
            if (!(s > root) || !allow[i]) continue; /* NaN fails s > root */
            h[0].s = s;
            h[0].i = (uint32_t)i;
            topk_sift_down(h, size, 0);
            root = h[0].s;
        }
    } else {
        for (; i < n; i++) {
            float s = scores[i];
            if (!(s > root)) continue;
            h[0].s = s;
            h[0].i = (uint32_t)i;
            topk_sift_down(h, size, 0);
            root = h[0].s;
        }
    }
    /* Pop worst-first into the tail of out_idx so out_idx ends best first. */
    size_t got = size;
    while (size > 0) {
        out_idx[size - 1] = h[0].i;
        h[0] = h[size - 1];
        size--;
        if (size) topk_sift_down(h, size, 0);
    }
    if (h != stack) free(h);
    *n_out = got;
    return MP_OK;
}
