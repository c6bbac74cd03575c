#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/modelfile.h"
#include "magpie/strmap.h"
#include "test.h"

/* Writes a sample model file with every value type to path. */
static int write_sample(const char *path, mp_error *err) {
    mp_mf_writer *w;
    if (mp_mf_writer_create(&w)) return MP_ENOMEM;
    mp_mf_put_u32(w, 0xDEADBEEFu);
    mp_mf_put_u64(w, 0x0123456789ABCDEFull);
    mp_mf_put_f64(w, -0.0);
    mp_mf_put_f64(w, 3.141592653589793);
    mp_mf_put_f64(w, NAN);
    mp_mf_put_bytes(w, "raw!", 4);
    mp_mf_put_str(w, "Lumière 保湿面霜");
    mp_mf_put_str(w, NULL);
    mp_mf_put_str(w, "");
    float f[5] = {1.5f, -2.25f, 0.0f, 1e30f, INFINITY};
    mp_mf_put_f32s(w, f, 5);
    uint32_t u[3] = {0, 7, UINT32_MAX};
    mp_mf_put_u32s(w, u, 3);
    double d[2] = {1e-300, -42.5};
    mp_mf_put_f64s(w, d, 2);
    mp_mf_put_f32s(w, NULL, 0);
    int rc = mp_mf_writer_save(w, path, "sample", 3, err);
    mp_mf_writer_destroy(w);
    return rc;
}

MP_TEST(modelfile_round_trip_every_type) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", mp_test_tmpdir(t));
    snprintf(path, sizeof path, "%s/m.bin", dir);
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(write_sample(path, &err), &err);

    mp_mf_reader *r;
    CHECK_OK(mp_mf_reader_open(&r, path, &err), &err);
    CHECK(strcmp(mp_mf_reader_model(r), "sample") == 0);
    CHECK_EQ(mp_mf_reader_model_version(r), 3);
    uint32_t u32;
    uint64_t u64;
    double f64;
    CHECK_OK(mp_mf_get_u32(r, &u32, &err), &err);
    CHECK(u32 == 0xDEADBEEFu);
    CHECK_OK(mp_mf_get_u64(r, &u64, &err), &err);
    CHECK(u64 == 0x0123456789ABCDEFull);
    CHECK_OK(mp_mf_get_f64(r, &f64, &err), &err);
    CHECK(f64 == 0.0 && signbit(f64));
    CHECK_OK(mp_mf_get_f64(r, &f64, &err), &err);
    CHECK(f64 == 3.141592653589793);
    CHECK_OK(mp_mf_get_f64(r, &f64, &err), &err);
    CHECK(isnan(f64));
    char raw[4];
    CHECK_OK(mp_mf_get_bytes(r, raw, 4, &err), &err);
    CHECK(memcmp(raw, "raw!", 4) == 0);
    char *s;
    CHECK_OK(mp_mf_get_str(r, &s, 100, &err), &err);
    CHECK(s && strcmp(s, "Lumière 保湿面霜") == 0);
    free(s);
    CHECK_OK(mp_mf_get_str(r, &s, 100, &err), &err);
    CHECK(s == NULL);
    CHECK_OK(mp_mf_get_str(r, &s, 100, &err), &err);
    CHECK(s && s[0] == 0);
    free(s);
    float f[5];
    CHECK_OK(mp_mf_get_f32s(r, f, 5, &err), &err);
    CHECK(f[0] == 1.5f && f[1] == -2.25f && f[2] == 0.0f && f[3] == 1e30f && isinf(f[4]));
    uint32_t u[3];
    uint64_t count;
    CHECK_OK(mp_mf_peek_count(r, &count, 10, &err), &err);
    CHECK_EQ(count, 3);
    CHECK_OK(mp_mf_get_u32s(r, u, 3, &err), &err);
    CHECK(u[0] == 0 && u[1] == 7 && u[2] == UINT32_MAX);
    double d[2];
    CHECK_OK(mp_mf_get_f64s(r, d, 2, &err), &err);
    CHECK(d[0] == 1e-300 && d[1] == -42.5);
    CHECK_OK(mp_mf_get_f32s(r, NULL, 0, &err), &err);
    CHECK_EQ(mp_mf_remaining(r), 0);

    /* Reading past the end is refused and names the file. */
    CHECK_EQ(mp_mf_get_u32(r, &u32, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "truncated payload");
    CHECK_CONTAINS(err.msg, path);
    CHECK_EQ(mp_mf_get_bytes(r, raw, 1, &err), MP_ECORRUPT);
    mp_mf_reader_close(r);

    /* No temporary file is left next to the model. */
    DIR *dh = opendir(dir);
    CHECK(dh != NULL);
    int entries = 0;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL)
        if (de->d_name[0] != '.') entries++;
    closedir(dh);
    CHECK_EQ(entries, 1);
}

MP_TEST(modelfile_overwrite_replaces_atomically) {
    char path[600];
    snprintf(path, sizeof path, "%s/m.bin", mp_test_tmpdir(t));
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(write_sample(path, &err), &err);
    mp_mf_writer *w;
    CHECK_OK(mp_mf_writer_create(&w), &err);
    mp_mf_put_u32(w, 5);
    CHECK_OK(mp_mf_writer_save(w, path, "other", 1, &err), &err);
    mp_mf_writer_destroy(w);
    mp_mf_reader *r;
    CHECK_OK(mp_mf_reader_open(&r, path, &err), &err);
    CHECK(strcmp(mp_mf_reader_model(r), "other") == 0);
    CHECK_EQ(mp_mf_remaining(r), 4);
    mp_mf_reader_close(r);
    /* A directory that does not exist: a clear I/O error, not a crash. */
    CHECK_OK(mp_mf_writer_create(&w), &err);
    CHECK_EQ(mp_mf_writer_save(w, "/nonexistent-dir/x/m.bin", "other", 1, &err), MP_EIO);
    CHECK_CONTAINS(err.msg, "/nonexistent-dir/x/m.bin");
    /* Model names must fit the header. */
    CHECK_EQ(mp_mf_writer_save(w, path, "a-model-name-that-is-much-too-long-for-32", 1, &err), MP_EINVAL);
    mp_mf_writer_destroy(w);
}

MP_TEST(modelfile_truncated_at_every_offset) {
    char path[600];
    snprintf(path, sizeof path, "%s/m.bin", mp_test_tmpdir(t));
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(write_sample(path, &err), &err);
    size_t len;
    unsigned char *img = mp_test_slurp(path, &len);
    CHECK(img != NULL && len > 72);
    for (size_t cut = 0; cut < len; cut++) {
        mp_mf_reader *r = NULL;
        int rc = mp_mf_reader_open_mem(&r, img, cut, "cut.bin", &err);
        CHECK_MSG(rc == MP_ECORRUPT, "cut at %zu: rc %d", cut, rc);
        CHECK(r == NULL);
        CHECK_CONTAINS(err.msg, "cut.bin");
    }
    /* The truncated file on disk too, with a message saying so. */
    mp_test_write_bytes(path, img, len - 10);
    mp_mf_reader *r = NULL;
    CHECK_EQ(mp_mf_reader_open(&r, path, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "truncated");
    CHECK_CONTAINS(err.msg, path);
    mp_test_write_bytes(path, img, 40);
    CHECK_EQ(mp_mf_reader_open(&r, path, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "truncated header");
    /* Trailing bytes are refused as well. */
    unsigned char *longer = malloc(len + 3);
    memcpy(longer, img, len);
    memcpy(longer + len, "xyz", 3);
    CHECK_EQ(mp_mf_reader_open_mem(&r, longer, len + 3, "long.bin", &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "unexpected bytes");
    free(longer);
    free(img);
}

MP_TEST(modelfile_every_single_bit_flip_is_refused) {
    char path[600];
    snprintf(path, sizeof path, "%s/m.bin", mp_test_tmpdir(t));
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(write_sample(path, &err), &err);
    size_t len;
    unsigned char *img = mp_test_slurp(path, &len);
    CHECK(img != NULL);
    int header_msgs = 0, payload_msgs = 0;
    for (size_t i = 0; i < len; i++) {
        for (int b = 0; b < 8; b++) {
            img[i] ^= (unsigned char)(1u << b);
            mp_mf_reader *r = NULL;
            int rc = mp_mf_reader_open_mem(&r, img, len, "flip.bin", &err);
            img[i] ^= (unsigned char)(1u << b);
            CHECK_MSG(rc == MP_ECORRUPT || rc == MP_EVERSION, "flip byte %zu bit %d accepted (rc %d)", i, b, rc);
            CHECK(r == NULL);
            CHECK_CONTAINS(err.msg, "flip.bin");
            if (strstr(err.msg, "header checksum")) header_msgs++;
            if (strstr(err.msg, "payload checksum")) payload_msgs++;
        }
    }
    CHECK(header_msgs > 0);
    CHECK_EQ(payload_msgs, (int)(len - 72) * 8);
    free(img);
}

MP_TEST(modelfile_foreign_files_are_refused) {
    mp_error err;
    mp_error_clear(&err);
    mp_mf_reader *r = NULL;
    const char *txt = mp_test_write_file(t, "notes.txt", "user,item,type,ts\nu1,i1,view,1\n");
    CHECK_EQ(mp_mf_reader_open(&r, txt, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, txt);
    CHECK_CONTAINS(err.msg, "text file");

    char sqlite[256];
    memset(sqlite, 0, sizeof sqlite);
    memcpy(sqlite, "SQLite format 3", 16);
    sqlite[16] = 0x10;
    CHECK_EQ(mp_mf_reader_open_mem(&r, sqlite, sizeof sqlite, "magpie.db", &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "magpie.db");
    CHECK_CONTAINS(err.msg, "SQLite database");

    const char *empty = mp_test_write_file(t, "empty.bin", "");
    CHECK_EQ(mp_mf_reader_open(&r, empty, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "empty");

    unsigned char bin[100];
    for (int i = 0; i < 100; i++) bin[i] = (unsigned char)(i * 37 + 1);
    bin[0] = 0;
    CHECK_EQ(mp_mf_reader_open_mem(&r, bin, sizeof bin, "x.bin", &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "magic");

    CHECK_EQ(mp_mf_reader_open(&r, "/nonexistent/model.bin", &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "/nonexistent/model.bin");
    CHECK(r == NULL);
}

MP_TEST(modelfile_newer_format_version_is_refused) {
    char path[600];
    snprintf(path, sizeof path, "%s/m.bin", mp_test_tmpdir(t));
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(write_sample(path, &err), &err);
    size_t len;
    unsigned char *img = mp_test_slurp(path, &len);
    CHECK(img != NULL);
    /* A well-formed header from a future Magpie: format 2 with a valid header checksum. */
    img[8] = 2;
    uint64_t h = mp_hash_bytes(img, 64);
    for (int i = 0; i < 8; i++) img[64 + i] = (unsigned char)(h >> (8 * i));
    mp_mf_reader *r = NULL;
    CHECK_EQ(mp_mf_reader_open_mem(&r, img, len, "future.bin", &err), MP_EVERSION);
    CHECK_CONTAINS(err.msg, "future.bin");
    CHECK_CONTAINS(err.msg, "newer");
    /* Even a future file whose payload we could not understand is refused by version, not crashed on. */
    CHECK_EQ(mp_mf_reader_open_mem(&r, img, 72, "future.bin", &err), MP_EVERSION);
    free(img);
}

MP_TEST(modelfile_bad_lengths_in_payload) {
    mp_error err;
    mp_error_clear(&err);
    mp_mf_writer *w;
    CHECK_OK(mp_mf_writer_create(&w), &err);
    mp_mf_put_str(w, "a long string value");
    uint32_t u[4] = {1, 2, 3, 4};
    mp_mf_put_u32s(w, u, 4);
    mp_mf_put_u32(w, 1000000); /* a string length far beyond the payload */
    char path[600];
    snprintf(path, sizeof path, "%s/m.bin", mp_test_tmpdir(t));
    CHECK_OK(mp_mf_writer_save(w, path, "x", 1, &err), &err);
    size_t plen;
    CHECK(mp_mf_writer_data(w, &plen) != NULL);
    mp_mf_writer_destroy(w);

    mp_mf_reader *r;
    CHECK_OK(mp_mf_reader_open(&r, path, &err), &err);
    CHECK_EQ(mp_mf_remaining(r), plen);
    char *s = NULL;
    CHECK_EQ(mp_mf_get_str(r, &s, 5, &err), MP_ECORRUPT); /* over max_len */
    CHECK(s == NULL);
    CHECK_CONTAINS(err.msg, "exceeds");
    mp_mf_reader_close(r);

    CHECK_OK(mp_mf_reader_open(&r, path, &err), &err);
    CHECK_OK(mp_mf_get_str(r, &s, 100, &err), &err);
    free(s);
    uint32_t got[3];
    CHECK_EQ(mp_mf_get_u32s(r, got, 3, &err), MP_ECORRUPT); /* count mismatch */
    CHECK_CONTAINS(err.msg, "expected 3");
    mp_mf_reader_close(r);

    CHECK_OK(mp_mf_reader_open(&r, path, &err), &err);
    CHECK_OK(mp_mf_get_str(r, &s, 100, &err), &err);
    free(s);
    uint64_t count;
    CHECK_EQ(mp_mf_peek_count(r, &count, 2, &err), MP_ECORRUPT);
    uint32_t got4[4];
    CHECK_OK(mp_mf_get_u32s(r, got4, 4, &err), &err);
    CHECK(got4[3] == 4);
    CHECK_EQ(mp_mf_get_str(r, &s, SIZE_MAX, &err), MP_ECORRUPT); /* length past the end */
    CHECK_CONTAINS(err.msg, "truncated payload");
    mp_mf_reader_close(r);
}
