/* tests/test_buf.c: the core growable buffer (magpie/buf.h) and its JSON appends (json.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/buf.h"
#include "magpie/json.h"
#include "test.h"

MP_TEST(buf_append_and_take) {
    mp_buf b;
    mp_buf_init(&b);
    CHECK(mp_buf_ok(&b));
    mp_buf_add(&b, "ab", 2);
    mp_buf_adds(&b, "cd");
    mp_buf_addc(&b, 'e');
    mp_buf_add(&b, NULL, 0);
    CHECK_EQ(b.len, 5);
    CHECK(!strcmp(b.p, "abcde"));
    size_t len = 99;
    char *s = mp_buf_take(&b, &len);
    CHECK(s && !strcmp(s, "abcde"));
    CHECK_EQ(len, 5);
    CHECK(b.p == NULL && b.len == 0 && b.cap == 0);
    free(s);
    /* an empty buffer still gives "" */
    s = mp_buf_take(&b, &len);
    CHECK(s && s[0] == 0);
    CHECK_EQ(len, 0);
    free(s);
    mp_buf_free(&b);
    mp_buf_free(NULL);
}

MP_TEST(buf_printf_grows_past_the_stack_format) {
    mp_buf b;
    mp_buf_init(&b);
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    mp_buf_printf(&b, "[%d]", 7);
    for (int i = 0; i < 10; i++) mp_buf_printf(&b, "%s|%d", big, i); /* 3 KB each: the two-pass path */
    CHECK(mp_buf_ok(&b));
    CHECK_EQ(b.len, 3 + 10 * (2999 + 2));
    CHECK(!memcmp(b.p, "[7]xxx", 6));
    CHECK(!strcmp(b.p + b.len - 2, "|9"));
    CHECK_EQ(strlen(b.p), b.len);
    mp_buf_clear(&b);
    CHECK_EQ(b.len, 0);
    CHECK(b.p[0] == 0);
    mp_buf_free(&b);
}

MP_TEST(buf_error_is_sticky) {
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_adds(&b, "kept");
    /* a size that cannot be allocated marks the buffer failed (the same path as a failed realloc) */
    CHECK(!mp_buf_reserve(&b, SIZE_MAX - 8));
    CHECK(!mp_buf_ok(&b));
    mp_buf_adds(&b, "more"); /* no-ops now */
    mp_buf_printf(&b, "%d", 1);
    mp_json_put_str(&b, "x", 1);
    CHECK_EQ(b.len, 4);
    mp_buf_clear(&b);
    CHECK(!mp_buf_ok(&b)); /* clear keeps the error */
    size_t len = 7;
    CHECK(mp_buf_take(&b, &len) == NULL);
    CHECK_EQ(len, 0);
    CHECK(mp_buf_ok(&b)); /* take resets */
    mp_buf_free(&b);
}

MP_TEST(buf_json_appends) {
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_addc(&b, '{');
    mp_json_put_key(&b, "a\"b");
    mp_json_put_str(&b, "x\ny", 3);
    mp_buf_addc(&b, ',');
    mp_json_put_key(&b, "n");
    mp_json_put_cstr(&b, NULL);
    mp_buf_addc(&b, ',');
    mp_json_put_key(&b, "f");
    mp_json_put_f32(&b, 0.1f);
    mp_buf_addc(&b, ',');
    mp_json_put_f64(&b, 0.1);
    mp_buf_addc(&b, ',');
    mp_json_put_f64(&b, NAN);
    mp_buf_addc(&b, ',');
    mp_json_put_i64(&b, -5);
    mp_buf_addc(&b, ',');
    mp_json_put_u64(&b, UINT64_MAX);
    mp_buf_addc(&b, ',');
    mp_json_put_bool(&b, 1);
    mp_buf_addc(&b, '}');
    CHECK(mp_buf_ok(&b));
    CHECK_MSG(!strcmp(b.p, "{\"a\\\"b\":\"x\\ny\",\"n\":null,\"f\":0.1,0.1,null,-5,18446744073709551615,true}"), "%s",
              b.p);
    mp_buf_free(&b);
}

MP_TEST(buf_array_growth) {
    uint32_t *a = NULL;
    size_t cap = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        CHECK_EQ(mp_grow((void **)&a, &cap, (size_t)i + 1, sizeof *a), MP_OK);
        CHECK(cap >= (size_t)i + 1);
        a[i] = i * 3;
    }
    for (uint32_t i = 0; i < 1000; i++) CHECK_EQ(a[i], i * 3);
    size_t before = cap;
    CHECK_EQ(mp_grow((void **)&a, &cap, 10, sizeof *a), MP_OK); /* room already: unchanged */
    CHECK_EQ(cap, before);
    CHECK_EQ(mp_grow((void **)&a, &cap, SIZE_MAX / 2, sizeof *a), MP_ENOMEM); /* overflow refused, a kept */
    CHECK_EQ(cap, before);
    CHECK_EQ(a[999], 2997);
    free(a);

    uint32_t *ids = NULL;
    float *w = NULL;
    cap = 0;
    for (uint32_t i = 0; i < 100; i++) {
        CHECK_EQ(mp_grow2((void **)&ids, sizeof *ids, (void **)&w, sizeof *w, &cap, (size_t)i + 1), MP_OK);
        ids[i] = i;
        w[i] = (float)i / 2;
    }
    CHECK(cap >= 100);
    for (uint32_t i = 0; i < 100; i++) CHECK(ids[i] == i && w[i] == (float)i / 2);
    free(ids);
    free(w);
}
