/* tests/fuzz/fuzz_modelfile.c: libFuzzer target for the model-file reader (src/io/modelfile.c) and every model's
 * load function (src/models/<name>.c, through mp_model_load_mem).
 *
 * The input is a model file image. It is given to the reader as it is (header checks, checksums, the get calls),
 * and then, when it starts with the magic, once more with its payload length and both checksums recomputed, so
 * that mutations of the payload reach the model loaders instead of stopping at the checksum. A model that loads
 * is then used: scored for known, unknown and anonymous users with histories that include items it does not know,
 * asked for recommendations, similar items, reasons, ratings and retrieval vectors, updated, and saved and loaded
 * again; a loader that accepts shapes the rest of the model cannot handle shows up as a sanitizer report. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "magpie/model.h"
#include "magpie/modelfile.h"
#include "magpie/strmap.h"

#define HEADER 72
#define MAX_ITEMS_USED (1u << 22) /* larger models are loaded but not scored (too slow for fuzzing) */

static void store64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Walks the payload with get calls chosen by the payload itself (the reader must never read out of bounds). */
static void walk_reader(mp_mf_reader *r) {
    mp_error err;
    for (int steps = 0; steps < 256; steps++) {
        uint32_t op;
        if (mp_mf_get_u32(r, &op, &err) != MP_OK) return;
        int rc = MP_OK;
        switch (op % 8) {
        case 0: {
            uint64_t v;
            rc = mp_mf_get_u64(r, &v, &err);
            break;
        }
        case 1: {
            double v;
            rc = mp_mf_get_f64(r, &v, &err);
            break;
        }
        case 2: {
            char *s = NULL;
            rc = mp_mf_get_str(r, &s, 1u << 16, &err);
            if (rc == MP_OK && s && strlen(s) > (1u << 16)) abort();
            free(s);
            break;
        }
        case 3:
        case 4:
        case 5: {
            uint64_t n;
            if ((rc = mp_mf_peek_count(r, &n, 1u << 16, &err)) != MP_OK) break;
            void *a = malloc(n * 8 + 1);
            if (!a) return;
            if (op % 8 == 3)
                rc = mp_mf_get_f32s(r, a, (size_t)n, &err);
            else if (op % 8 == 4)
                rc = mp_mf_get_u32s(r, a, (size_t)n, &err);
            else
                rc = mp_mf_get_f64s(r, a, (size_t)n, &err);
            free(a);
            break;
        }
        case 6: {
            unsigned char b[64];
            rc = mp_mf_get_bytes(r, b, (op >> 8) % sizeof b, &err);
            break;
        }
        default:
            if (mp_mf_remaining(r) > (size_t)1 << 40) abort();
            break;
        }
        if (rc != MP_OK) {
            if (err.msg[0] == 0) abort(); /* every failure says why */
            return;
        }
    }
}

/* Uses a loaded model the way the CLI and the server do. */
static void exercise(mp_model *m) {
    mp_error err;
    uint32_t n = mp_model_n_items(m);
    if (n > MAX_ITEMS_USED) return;
    size_t cap = n > 16 ? n : 16;
    float *scores = malloc(cap * sizeof *scores);
    uint32_t *items = malloc(cap * sizeof *items);
    float *sc = malloc(cap * sizeof *sc);
    if (!scores || !items || !sc) goto out;

    /* Histories hold items the model knows and items added after training (ids >= n). */
    mp_interaction hist[4] = {
        {.user = 0, .item = 0, .ts = 1735689600, .type = MP_EV_VIEW},
        {.user = 0, .item = n ? n - 1 : 0, .ts = 1735689700, .type = MP_EV_PURCHASE},
        {.user = 0, .item = n + 3, .ts = 1735689800, .type = MP_EV_CART},
        {.user = 0, .item = n / 2, .ts = 1735689900, .type = MP_EV_RATING, .value = 4, .has_value = 1},
    };
    const uint32_t users[3] = {0, MP_NO_USER, 1000000};
    for (int u = 0; u < 3; u++) {
        mp_user_ctx ctx = {.user = users[u], .history = hist, .n_history = u == 1 ? 4 : (size_t)(u + 1)};
        for (size_t k = 0; k < ctx.n_history; k++)
            hist[k].user = users[u];
        mp_model_score_all(m, &ctx, scores, &err);
        size_t got = 0;
        uint32_t excl[2] = {1, n + 10};
        if (mp_model_recommend(m, &ctx, 10, excl, 2, 1, NULL, items, sc, &got, &err) == MP_OK && got > 10) abort();
        for (size_t k = 0; k < got; k++)
            if (items[k] >= n) abort();
        char reason[256];
        if (n) {
            if (mp_model_explain(m, &ctx, 0, reason, sizeof reason, &err) == MP_OK && !memchr(reason, 0, sizeof reason))
                abort();
            mp_model_explain(m, &ctx, n - 1, reason, sizeof reason, &err);
        }
        mp_model_explain(m, &ctx, n + 7, reason, sizeof reason, &err);
        float q[4096];
        int have = 0;
        const float *vecs;
        uint32_t vn = 0, dim = 0;
        if (mp_model_item_vectors(m, &vecs, &vn, &dim, &err) == MP_OK && dim > 0 && dim <= 4096) {
            volatile float sink = 0;
            for (uint32_t i = 0; i < vn; i++)
                sink += vecs[(size_t)i * dim] + vecs[(size_t)i * dim + dim - 1];
            (void)sink;
            mp_model_query_vector(m, &ctx, q, &have, &err);
        }
    }
    double rating;
    mp_model_predict_rating(m, 0, 0, &rating, &err);
    mp_model_predict_rating(m, 1000000, n + 1, &rating, &err);
    size_t got = 0;
    if (n) {
        if (mp_model_similar(m, 0, 5, items, sc, &got, &err) == MP_OK && got > 5) abort();
        mp_model_similar(m, n - 1, cap, items, sc, &got, &err);
    }
    mp_model_similar(m, n, 3, items, sc, &got, &err);

    /* Save and load again: what a loader accepted must be saved in a form it accepts again. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/magpie-fuzz-%d.model", (int)getpid());
    if (mp_model_save(m, path, &err) == MP_OK) {
        mp_model *again = NULL;
        if (mp_model_load(&again, path, &err) != MP_OK) {
            fprintf(stderr, "fuzz_modelfile: a loaded model saved a file it cannot load: %s\n", err.msg);
            abort();
        }
        if (mp_model_n_items(again) != n) abort();
        mp_model_destroy(again);
    }
    unlink(path);

    /* Real-time updates and forgetting change the model last. */
    mp_interaction upd[3] = {
        {.user = 0, .item = 0, .ts = 1735690000, .type = MP_EV_PURCHASE},
        {.user = 2, .item = n ? n - 1 : 0, .ts = 1735690001, .type = MP_EV_RATING, .value = 5, .has_value = 1},
        {.user = 1, .item = n + 2, .ts = 1735690002, .type = MP_EV_VIEW},
    };
    mp_model_update(m, upd, 3, &err);
    mp_model_forget_user(m, 0, upd, 1, &err);
    uint32_t n2 = mp_model_n_items(m); /* an update may add the new items */
    if (n2 < n) abort();
    if (n2 > cap) {
        float *grown = realloc(scores, (size_t)n2 * sizeof *scores);
        if (!grown) goto out;
        scores = grown;
    }
    mp_user_ctx ctx = {.user = 0, .history = upd, .n_history = 1};
    mp_model_score_all(m, &ctx, scores, &err);
out:
    free(scores);
    free(items);
    free(sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mp_error err;
    mp_error_clear(&err);
    mp_mf_reader *r = NULL;
    if (mp_mf_reader_open_mem(&r, data, size, "fuzz", &err) == MP_OK) {
        if (mp_mf_reader_model(r)[0] == 0) abort();
        walk_reader(r);
        mp_mf_reader_close(r);
    } else if (err.msg[0] == 0) {
        abort();
    }

    if (size < HEADER || memcmp(data, "MAGPIEMF", 8) != 0) return 0;
    unsigned char *img = malloc(size);
    if (!img) return 0;
    memcpy(img, data, size);
    store64(img + 48, (uint64_t)(size - HEADER));
    store64(img + 56, mp_hash_bytes(img + HEADER, size - HEADER));
    store64(img + 64, mp_hash_bytes(img, 64));
    mp_model *m = NULL;
    int rc = mp_model_load_mem(&m, img, size, "fuzz", &err);
    free(img);
    if (rc == MP_OK) {
        if (!m || !mp_model_is_fitted(m)) abort();
        exercise(m);
        mp_model_destroy(m);
    } else if (m != NULL || err.msg[0] == 0) {
        abort();
    }
    return 0;
}
