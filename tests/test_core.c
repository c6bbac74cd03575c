#include <stdlib.h>

#include "magpie/error.h"
#include "magpie/rng.h"
#include "magpie/strmap.h"
#include "test.h"

MP_TEST(error_set_and_prefix) {
    mp_error err;
    mp_error_clear(&err);
    CHECK_EQ(mp_error_set(&err, MP_EBADREC, "field `%s`: bad", "ts"), MP_EBADREC);
    mp_error_prefix(&err, "events.jsonl:%d", 7);
    CHECK(strcmp(err.msg, "events.jsonl:7: field `ts`: bad") == 0);
    CHECK(strcmp(mp_err_name(MP_ECORRUPT), "MP_ECORRUPT") == 0);
    CHECK(strcmp(mp_strerror(MP_ENOMEM), "out of memory") == 0);
    CHECK(strcmp(mp_strerror(12345), "unknown error") == 0);
    CHECK_EQ(mp_error_set(NULL, MP_EIO, "x"), MP_EIO);
}

MP_TEST(rng_deterministic_and_bounded) {
    mp_rng a, b;
    mp_rng_seed(&a, 42);
    mp_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++) CHECK(mp_rng_next(&a) == mp_rng_next(&b));
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++) counts[mp_rng_below(&a, 7)]++;
    for (int i = 0; i < 7; i++) CHECK(counts[i] > 9500 && counts[i] < 10500);
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) {
        double x = mp_rng_normal(&a);
        s += x;
        s2 += x * x;
    }
    CHECK_NEAR(s / 100000, 0.0, 0.02);
    CHECK_NEAR(s2 / 100000, 1.0, 0.03);
}

MP_TEST(strmap_intern_get_key) {
    mp_strmap *m;
    CHECK(mp_strmap_create(&m, 4) == MP_OK);
    char key[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "user-%d", i);
        uint32_t id;
        int ins;
        CHECK(mp_strmap_intern(m, key, strlen(key), &id, &ins) == MP_OK);
        CHECK_EQ(id, i);
        CHECK_EQ(ins, 1);
    }
    uint32_t id;
    int ins;
    CHECK(mp_strmap_intern(m, "user-77", 7, &id, &ins) == MP_OK);
    CHECK_EQ(id, 77);
    CHECK_EQ(ins, 0);
    CHECK_EQ(mp_strmap_get(m, "user-9999", 9), 9999);
    CHECK_EQ(mp_strmap_get(m, "nobody", 6), MP_STRMAP_NONE);
    size_t len;
    CHECK(strcmp(mp_strmap_key(m, 123, &len), "user-123") == 0);
    CHECK_EQ(len, 8);
    CHECK_EQ(mp_strmap_size(m), 10000);
    CHECK_EQ(mp_strmap_put(m, "user-5", 6, 99999), MP_EINVAL);
    CHECK_EQ(mp_strmap_put(m, "sparse", 6, 50000), MP_OK);
    CHECK_EQ(mp_strmap_id_bound(m), 50001);
    CHECK_EQ(mp_strmap_get(m, "sparse", 6), 50000);
    mp_strmap_destroy(m);
    mp_strmap_destroy(NULL);
}
