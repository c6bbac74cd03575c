/* Regression tests for bugs found by the fuzz targets (tests/fuzz/): one test per bug, named after it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/dataset.h"
#include "magpie/model.h"
#include "magpie/strmap.h"
#include "magpie/trainset.h"
#include "serve/decode.h"
#include "test.h"

/* A tiny fitted model of `name` with the given parameters, saved and read back as a file image (*img, malloc'ed). */
static int tiny_model_image(mp_test_ctx *t, const char *name, const char *params, unsigned char **img, size_t *len,
                            mp_error *err) {
    mp_interaction ev[60];
    size_t n = 0;
    for (uint32_t u = 0; u < 10; u++)
        for (uint32_t j = 0; j < 6; j++, n++)
            ev[n] = (mp_interaction){.user = u,
                                     .item = (u + j * 3) % 8,
                                     .ts = 1700000001 + (int64_t)n,
                                     .type = MP_EV_RATING,
                                     .value = (float)(1 + (u + j) % 5),
                                     .has_value = 1};
    mp_dataset *ds = NULL;
    mp_train_set ts;
    memset(&ts, 0, sizeof ts);
    mp_model *m = NULL;
    int rc = mp_dataset_from_interactions(&ds, 10, 8, ev, n, err);
    if (!rc) rc = mp_train_set_build(&ts, ds, ds->events, ds->n_events, NULL, err);
    if (!rc) rc = mp_model_create(&m, name, err);
    if (!rc) rc = mp_model_set_params(m, params, err);
    if (!rc) {
        ts.data.n_threads = 1;
        rc = mp_model_fit(m, &ts.data, NULL, err);
    }
    char path[600];
    snprintf(path, sizeof path, "%s/%s.model", mp_test_tmpdir(t), name);
    if (!rc) rc = mp_model_save(m, path, err);
    mp_model_destroy(m);
    mp_train_set_free(&ts);
    mp_dataset_destroy(ds);
    if (rc) return rc;
    FILE *f = fopen(path, "rb");
    if (!f) return mp_error_set(err, MP_EIO, "cannot open %s", path);
    *img = malloc(1 << 20);
    *len = *img ? fread(*img, 1, 1 << 20, f) : 0;
    fclose(f);
    return *img ? MP_OK : MP_ENOMEM;
}

static void le32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Replaces the first u32 `from` in the payload's first `within` bytes by `to` and fixes both checksums (the
 * header layout of magpie/modelfile.h). Returns 0 when `from` is not there. */
static int patch_u32(unsigned char *img, size_t len, size_t within, uint32_t from, uint32_t to) {
    for (size_t off = 72; off + 4 <= len && off < 72 + within; off++) {
        uint32_t v = (uint32_t)img[off] | (uint32_t)img[off + 1] << 8 | (uint32_t)img[off + 2] << 16 |
                     (uint32_t)img[off + 3] << 24;
        if (v != from) continue;
        le32(img + off, to);
        le64(img + 56, mp_hash_bytes(img + 72, len - 72));
        le64(img + 64, mp_hash_bytes(img, 64));
        return 1;
    }
    return 0;
}

static uint64_t rd64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void fix_checksums(unsigned char *img, size_t len) {
    le64(img + 56, mp_hash_bytes(img + 72, len - 72));
    le64(img + 64, mp_hash_bytes(img, 64));
}

/* Offset of the first u64 in the payload's first `within` bytes with from <= value <= to, or 0. */
static size_t find_u64(const unsigned char *img, size_t len, size_t within, uint64_t from, uint64_t to) {
    for (size_t off = 72; off + 8 <= len && off < 72 + within; off++)
        if (rd64(img + off) >= from && rd64(img + off) <= to) return off;
    return 0;
}

/* fuzz_modelfile timeout: a model file with fold_in_steps = 4e9 loaded, and then every fold-in (mf: update; bpr:
 * scoring a user the model has no vector for) ran 4e9 SGD passes. Loading now refuses what set_param refuses. */
static void check_fold_in_bound(mp_test_ctx *t, const char *name, const char *params) {
    mp_error err;
    mp_error_clear(&err);
    unsigned char *img = NULL;
    size_t len = 0;
    CHECK_OK(tiny_model_image(t, name, params, &img, &len, &err), &err);
    unsigned char *copy = malloc(len);
    CHECK(copy);
    memcpy(copy, img, len);
    mp_model *m = NULL;
    int found = patch_u32(copy, len, 256, 12345, 0xFFFFFFF0u);
    int rc = mp_model_load_mem(&m, copy, len, name, &err);
    int found_max = patch_u32(img, len, 256, 12345, 100000);
    mp_model *ok = NULL;
    int rc_max = mp_model_load_mem(&ok, img, len, name, &err);
    free(copy);
    free(img);
    mp_model_destroy(m);
    mp_model_destroy(ok);
    CHECK(found && found_max);
    CHECK_EQ(rc, MP_ECORRUPT);
    CHECK(m == NULL);
    CHECK_OK(rc_max, &err);
}

MP_TEST(fuzz_regress_mf_fold_in_steps_bounded_on_load) {
    check_fold_in_bound(t, "mf", "factors=2,epochs=2,threads=1,fold_in_steps=12345");
}

MP_TEST(fuzz_regress_bpr_fold_in_steps_bounded_on_load) {
    check_fold_in_bound(t, "bpr", "factors=2,epochs=1,threads=1,fold_in_steps=12345");
}

/* fuzz_request, UBSan: an unknown field made the record parser build its "got ..." snippet from (NULL, 0), and
 * NULL + 0 is undefined (src/io/records.c mp_io_snippet). The message must still name the field. */
MP_TEST(fuzz_regress_unknown_field_message_without_value) {
    const char body[] = "{\"users\":[{\"id\":\"u1\"}]}\n";
    mp_decoded d;
    mp_error err;
    CHECK_OK(mp_decode_records(&d, MP_KIND_USERS, body, sizeof body - 1, 1, 0, 0, 1735689600, &err), &err);
    CHECK_EQ(d.n_bad, 1);
    CHECK_CONTAINS(d.errors[0].message, "users[0]: field `users`: unknown field; expected one of");
    CHECK(strcmp(d.errors[0].field, "users") == 0);
    mp_decoded_free(&d);
}

/* fuzz_modelfile (systematic u64 mutation), UBSan: pop and als accepted any reference time `now`, and pop's update
 * then computed (latest - now) with now = INT64_MIN: signed overflow. Loading now refuses times outside years
 * 1..9999. */
static void check_now_bound(mp_test_ctx *t, const char *name, const char *params) {
    mp_error err;
    mp_error_clear(&err);
    unsigned char *img = NULL;
    size_t len = 0;
    CHECK_OK(tiny_model_image(t, name, params, &img, &len, &err), &err);
    size_t at = find_u64(img, len, 256, 1700000000, 1700000100); /* the latest training event */
    mp_model *m = NULL;
    int rc = MP_OK;
    if (at) {
        le64(img + at, 0x8000000000000000ull);
        fix_checksums(img, len);
        rc = mp_model_load_mem(&m, img, len, name, &err);
    }
    free(img);
    mp_model_destroy(m);
    CHECK(at != 0);
    CHECK_EQ(rc, MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "reference time out of range");
}

MP_TEST(fuzz_regress_pop_reference_time_bounded_on_load) {
    check_now_bound(t, "pop", "half_life_days=1");
}

MP_TEST(fuzz_regress_als_reference_time_bounded_on_load) {
    check_now_bound(t, "als", "factors=2,iterations=1,threads=1");
}

/* fuzz_modelfile (systematic u64 mutation), ASan allocation-size-too-big: itemknn's size check
 * n * 4 + nnz * 8 <= remaining wrapped around for nnz near 2^61..2^64, so a 2 KB file made it allocate nnz * 4
 * bytes (exabytes, or a wrapped small size). */
MP_TEST(fuzz_regress_itemknn_neighbour_count_overflow) {
    mp_error err;
    mp_error_clear(&err);
    unsigned char *img = NULL;
    size_t len = 0;
    CHECK_OK(tiny_model_image(t, "itemknn", "k=3", &img, &len, &err), &err);
    /* nnz follows the type weights: u64 count 9, then 9 floats starting with view = 1.0f */
    size_t at = 0;
    for (size_t off = 72; off + 8 + 36 + 8 <= len && off < 72 + 256; off++)
        if (rd64(img + off) == MP_EV_NTYPES && img[off + 8] == 0 && img[off + 9] == 0 && img[off + 10] == 0x80 &&
            img[off + 11] == 0x3f) {
            at = off + 8 + 4 * MP_EV_NTYPES;
            break;
        }
    int rc[3] = {MP_OK, MP_OK, MP_OK};
    if (at) {
        uint64_t nnz = rd64(img + at);
        const uint64_t bad[3] = {UINT64_MAX, (1ull << 61) + nnz, (1ull << 62) + nnz};
        for (int i = 0; i < 3; i++) {
            le64(img + at, bad[i]);
            fix_checksums(img, len);
            mp_model *m = NULL;
            rc[i] = mp_model_load_mem(&m, img, len, "itemknn", &err);
            mp_model_destroy(m);
        }
    }
    free(img);
    CHECK(at != 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(rc[i], MP_ECORRUPT);
}
