/* src/ann/hnsw_io.c: an HNSW index in a model file (modelfile.h), name "hnsw", version 1.
 *
 * Payload, in order:
 *   u32 n | u32 dim | u32 metric | u32 M | u32 ef_construction | u64 seed | u32 entry | u32 max_level |
 *   bytes levels[n] | u32s link0[n * (2M + 1)] | u32s upper[n_upper * (M + 1)] | f32s vecs[n * dim]
 * (the u32s / f32s arrays carry their element count). The upper-layer offsets are recomputed from the levels.
 * The checksums of the file format catch damage; load also checks what a well-formed but wrong file could hold,
 * so a search never reads out of bounds: every count within its cap, every link < n and not the node itself,
 * every level <= max_level with the entry on the top layer, finite vectors, and nothing left over. */
#include <stdlib.h>
#include <string.h>

#include "ann/ann_internal.h"
#include "magpie/modelfile.h"

#define HNSW_FILE_NAME "hnsw"
#define HNSW_FILE_VERSION 1u

int mp_hnsw_save(const mp_hnsw *h, const char *path, mp_error *err) {
    if (!h || !path) return mp_error_set(err, MP_EINVAL, "hnsw save: index and path must not be NULL");
    mp_mf_writer *w;
    if (mp_mf_writer_create(&w)) return mp_error_set(err, MP_ENOMEM, "hnsw save: out of memory");
    mp_mf_put_u32(w, h->n);
    mp_mf_put_u32(w, h->dim);
    mp_mf_put_u32(w, (uint32_t)h->metric);
    mp_mf_put_u32(w, h->M);
    mp_mf_put_u32(w, h->ef_construction);
    mp_mf_put_u64(w, h->seed);
    mp_mf_put_u32(w, h->entry);
    mp_mf_put_u32(w, h->max_level);
    mp_mf_put_bytes(w, h->levels, h->n);
    mp_mf_put_u32s(w, h->link0, (size_t)h->n * (h->M0 + 1));
    mp_mf_put_u32s(w, h->upper, h->n_upper * (h->M + 1));
    mp_mf_put_f32s(w, h->vecs, (size_t)h->n * h->dim);
    int rc = mp_mf_writer_save(w, path, HNSW_FILE_NAME, HNSW_FILE_VERSION, err);
    mp_mf_writer_destroy(w);
    return rc;
}

/* Checks one link list of node i on `level` (cap entries at most). */
static int check_list(const mp_hnsw *h, const char *path, uint32_t i, uint32_t level, uint32_t cap, mp_error *err) {
    const uint32_t *l = mp_hnsw_links(h, i, level);
    if (l[0] > cap)
        return mp_error_set(err, MP_ECORRUPT, "model file %s: hnsw node %u, layer %u: %u links (at most %u)", path, i,
                            level, l[0], cap);
    for (uint32_t j = 1; j <= l[0]; j++) {
        if (l[j] >= h->n || l[j] == i)
            return mp_error_set(err, MP_ECORRUPT, "model file %s: hnsw node %u, layer %u: link to %u (n = %u)", path, i,
                                level, l[j], h->n);
        if (level > 0 && h->levels[l[j]] < level)
            return mp_error_set(err, MP_ECORRUPT,
                                "model file %s: hnsw node %u, layer %u: link to %u, which is only "
                                "on layers 0..%u",
                                path, i, level, l[j], h->levels[l[j]]);
    }
    return MP_OK;
}

static int load_body(mp_hnsw *h, mp_mf_reader *r, const char *path, mp_error *err) {
    uint32_t metric;
    int rc;
    if ((rc = mp_mf_get_u32(r, &h->n, err)) || (rc = mp_mf_get_u32(r, &h->dim, err)) ||
        (rc = mp_mf_get_u32(r, &metric, err)) || (rc = mp_mf_get_u32(r, &h->M, err)) ||
        (rc = mp_mf_get_u32(r, &h->ef_construction, err)) || (rc = mp_mf_get_u64(r, &h->seed, err)) ||
        (rc = mp_mf_get_u32(r, &h->entry, err)) || (rc = mp_mf_get_u32(r, &h->max_level, err)))
        return rc;
    if (h->n == 0 || h->dim == 0 || h->dim > MP_ANN_MAX_DIM || metric > (uint32_t)MP_ANN_L2 || h->M < 2 ||
        h->M > MP_ANN_MAX_M || h->entry >= h->n || h->max_level > MP_ANN_MAX_LEVEL)
        return mp_error_set(err, MP_ECORRUPT,
                            "model file %s: hnsw header out of range (n %u, dim %u, metric %u, M %u, entry %u, top "
                            "layer %u)",
                            path, h->n, h->dim, metric, h->M, h->entry, h->max_level);
    h->metric = (mp_ann_metric)metric;
    /* the fixed-size parts must fit in what is left before anything that large is allocated */
    uint64_t need = (uint64_t)h->n + (uint64_t)h->n * (2ull * h->M + 1) * 4 + (uint64_t)h->n * h->dim * 4;
    if (need > mp_mf_remaining(r))
        return mp_error_set(err, MP_ECORRUPT, "model file %s: hnsw of %u x %u needs %llu bytes, %zu are left", path,
                            h->n, h->dim, (unsigned long long)need, mp_mf_remaining(r));
    uint8_t *levels = malloc(h->n);
    if (!levels) return mp_error_set(err, MP_ENOMEM, "model file %s: out of memory", path);
    if ((rc = mp_mf_get_bytes(r, levels, h->n, err))) {
        free(levels);
        return rc;
    }
    for (uint32_t i = 0; i < h->n; i++) {
        if (levels[i] > h->max_level) {
            rc = mp_error_set(err, MP_ECORRUPT, "model file %s: hnsw node %u is on layer %u, above the top %u", path, i,
                              levels[i], h->max_level);
            free(levels);
            return rc;
        }
    }
    if (levels[h->entry] != h->max_level) {
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s: hnsw entry %u is on layer %u, not the top %u", path,
                          h->entry, levels[h->entry], h->max_level);
        free(levels);
        return rc;
    }
    rc = mp_hnsw_alloc_graph(h, levels, err);
    free(levels);
    if (rc) return rc;
    if ((rc = mp_mf_get_u32s(r, h->link0, (size_t)h->n * (h->M0 + 1), err)) ||
        (rc = mp_mf_get_u32s(r, h->upper, h->n_upper * (h->M + 1), err)) ||
        (rc = mp_mf_get_f32s(r, h->vecs, (size_t)h->n * h->dim, err)))
        return rc;
    if (mp_mf_remaining(r) != 0)
        return mp_error_set(err, MP_ECORRUPT, "model file %s: %zu unexpected bytes after the hnsw index", path,
                            mp_mf_remaining(r));
    for (uint32_t i = 0; i < h->n; i++) {
        for (uint32_t level = 0; level <= h->levels[i]; level++)
            if ((rc = check_list(h, path, i, level, level ? h->M : h->M0, err))) return rc;
    }
    size_t bad;
    if (!mp_ann_all_finite(h->vecs, (size_t)h->n * h->dim, &bad))
        return mp_error_set(err, MP_ECORRUPT, "model file %s: hnsw vector %zu holds a non-finite value", path,
                            bad / h->dim);
    return MP_OK;
}

int mp_hnsw_load(mp_hnsw **out, const char *path, mp_error *err) {
    if (!out || !path) return mp_error_set(err, MP_EINVAL, "hnsw load: out and path must not be NULL");
    *out = NULL;
    mp_mf_reader *r;
    int rc = mp_mf_reader_open(&r, path, err);
    if (rc) return rc;
    if (strcmp(mp_mf_reader_model(r), HNSW_FILE_NAME) != 0) {
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s holds a \"%s\" model, not an hnsw index", path,
                          mp_mf_reader_model(r));
        mp_mf_reader_close(r);
        return rc;
    }
    if (mp_mf_reader_model_version(r) != HNSW_FILE_VERSION) {
        rc = mp_error_set(err, MP_EVERSION, "model file %s: hnsw version %u (this build reads version %u)", path,
                          mp_mf_reader_model_version(r), HNSW_FILE_VERSION);
        mp_mf_reader_close(r);
        return rc;
    }
    mp_hnsw *h = calloc(1, sizeof *h);
    if (!h) {
        mp_mf_reader_close(r);
        return mp_error_set(err, MP_ENOMEM, "hnsw load: out of memory");
    }
    rc = load_body(h, r, path, err);
    mp_mf_reader_close(r);
    if (rc) {
        mp_hnsw_destroy(h);
        return rc;
    }
    h->dist = mp_ann_dist_pick(h->metric, 1);
    *out = h;
    return MP_OK;
}
