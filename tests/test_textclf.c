/* tests/test_textclf.c: the fastText-class text classifier. */
#include <stdlib.h>
#include <string.h>

#include "magpie/modelfile.h"
#include "magpie/textclf.h"
#include "test.h"

/* A separable toy problem: positive texts contain 好/喜欢/great/love, negative ones 差/讨厌/bad/awful, mixed with
 * shared filler words. */
static const char *const TOY_TEXT[] = {
    "质量很好，非常喜欢",     "东西很好用",     "喜欢这个颜色", "物流快，很好",
    "great product, love it", "love the color", "great value",  "really great and fast",
    "质量很差，讨厌",         "东西太差了",     "讨厌这个颜色", "物流慢，很差",
    "bad product, awful",     "awful color",    "bad value",    "really bad and slow",
};
static const char *const TOY_LABEL[] = {"pos", "pos", "pos", "pos", "pos", "pos", "pos", "pos",
                                        "neg", "neg", "neg", "neg", "neg", "neg", "neg", "neg"};
#define TOY_N 16

static mp_textclf_opts toy_opts(void) {
    mp_textclf_opts o;
    mp_textclf_default(&o);
    o.dim = 16;
    o.epochs = 50;
    o.lr = 0.5f;
    o.n_buckets = 1 << 16;
    o.word_bigrams = 1;
    return o;
}

MP_TEST(textclf_learns_toy_problem_both_languages) {
    mp_error err;
    mp_textclf_opts o = toy_opts();
    mp_textclf *m = NULL;
    CHECK_OK(mp_textclf_train(TOY_TEXT, NULL, TOY_LABEL, TOY_N, &o, &m, &err), &err);
    CHECK_EQ(mp_textclf_n_labels(m), 2);
    CHECK(strcmp(mp_textclf_label(m, 0), "pos") == 0);
    CHECK(strcmp(mp_textclf_label(m, 1), "neg") == 0);
    CHECK(mp_textclf_label(m, 2) == NULL);
    CHECK(mp_textclf_n_rows(m) > 10);
    for (int i = 0; i < TOY_N; i++) {
        size_t k = 9;
        float p = 0;
        CHECK_OK(mp_textclf_predict(m, TOY_TEXT[i], strlen(TOY_TEXT[i]), &k, &p, &err), &err);
        CHECK_MSG(strcmp(mp_textclf_label(m, k), TOY_LABEL[i]) == 0, "text %d \"%s\" predicted %s", i, TOY_TEXT[i],
                  mp_textclf_label(m, k));
        CHECK(p > 0.5f && p <= 1.0f);
    }
    /* Unseen texts built from the signal words. */
    const char *pos_new[] = {"很喜欢", "GREAT, love"}, *neg_new[] = {"讨厌，很差", "Awful, bad"};
    for (int i = 0; i < 2; i++) {
        size_t k;
        CHECK_OK(mp_textclf_predict(m, pos_new[i], strlen(pos_new[i]), &k, NULL, &err), &err);
        CHECK_MSG(k == 0, "\"%s\" predicted %s", pos_new[i], mp_textclf_label(m, k));
        CHECK_OK(mp_textclf_predict(m, neg_new[i], strlen(neg_new[i]), &k, NULL, &err), &err);
        CHECK_MSG(k == 1, "\"%s\" predicted %s", neg_new[i], mp_textclf_label(m, k));
    }
    /* A text with no known feature: uniform distribution. */
    size_t k = 9;
    float p = 0;
    CHECK_OK(mp_textclf_predict(m, "", 0, &k, &p, &err), &err);
    CHECK_EQ(k, 0);
    CHECK_NEAR(p, 0.5, 1e-6);
    mp_textclf_free(m);
}

MP_TEST(textclf_deterministic_with_one_thread) {
    mp_error err;
    mp_textclf_opts o = toy_opts();
    o.epochs = 5;
    mp_textclf *a = NULL, *b = NULL;
    CHECK_OK(mp_textclf_train(TOY_TEXT, NULL, TOY_LABEL, TOY_N, &o, &a, &err), &err);
    CHECK_OK(mp_textclf_train(TOY_TEXT, NULL, TOY_LABEL, TOY_N, &o, &b, &err), &err);
    const char *q[] = {"质量很好", "bad and slow", "物流", "color"};
    for (int i = 0; i < 4; i++) {
        float pa = 0, pb = 1;
        size_t ka = 0, kb = 1;
        CHECK_OK(mp_textclf_predict(a, q[i], strlen(q[i]), &ka, &pa, &err), &err);
        CHECK_OK(mp_textclf_predict(b, q[i], strlen(q[i]), &kb, &pb, &err), &err);
        CHECK_EQ(ka, kb);
        CHECK(pa == pb);
    }
    mp_textclf_free(a);
    mp_textclf_free(b);
}

MP_TEST(textclf_multithreaded_learns_toy_problem) {
    mp_error err;
    mp_textclf_opts o = toy_opts();
    o.threads = 2;
    mp_textclf *m = NULL;
    CHECK_OK(mp_textclf_train(TOY_TEXT, NULL, TOY_LABEL, TOY_N, &o, &m, &err), &err);
    int right = 0;
    for (int i = 0; i < TOY_N; i++) {
        size_t k;
        CHECK_OK(mp_textclf_predict(m, TOY_TEXT[i], strlen(TOY_TEXT[i]), &k, NULL, &err), &err);
        right += strcmp(mp_textclf_label(m, k), TOY_LABEL[i]) == 0;
    }
    CHECK_EQ(right, TOY_N);
    mp_textclf_free(m);
}

MP_TEST(textclf_bad_inputs_clear_errors) {
    mp_error err;
    mp_textclf *m = (mp_textclf *)1;
    const char *texts[] = {"好", "差"};
    const char *one_label[] = {"pos", "pos"};
    const char *no_label[] = {"pos", ""};
    const char *labels[] = {"pos", "neg"};
    CHECK_EQ(mp_textclf_train(texts, NULL, labels, 0, NULL, &m, &err), MP_EINVAL);
    CHECK(m == NULL);
    CHECK_CONTAINS(err.msg, "no training texts");
    CHECK_EQ(mp_textclf_train(texts, NULL, no_label, 2, NULL, &m, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "text 1 has no label");
    CHECK_EQ(mp_textclf_train(texts, NULL, one_label, 2, NULL, &m, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "at least 2 distinct labels");
    const char *empty[] = {"", "  "};
    CHECK_EQ(mp_textclf_train(empty, NULL, labels, 2, NULL, &m, &err), MP_EEMPTY);
    CHECK_CONTAINS(err.msg, "any feature");
    const char *bad[] = {"好", "ok \xff\xfe"};
    CHECK_EQ(mp_textclf_train(bad, NULL, labels, 2, NULL, &m, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "text 1");
    CHECK_CONTAINS(err.msg, "byte offset 3");
    mp_textclf_opts o;
    mp_textclf_default(&o);
    o.dim = 0;
    CHECK_EQ(mp_textclf_train(texts, NULL, labels, 2, &o, &m, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "dim");
    mp_textclf_default(&o);
    o.lr = -1;
    CHECK_EQ(mp_textclf_train(texts, NULL, labels, 2, &o, &m, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "lr");
    /* Empty texts among others are fine; invalid UTF-8 at prediction is an error. */
    const char *some_empty[] = {"好", "", "差"};
    const char *l3[] = {"pos", "neg", "neg"};
    mp_textclf_default(&o);
    o.dim = 8;
    o.n_buckets = 1024;
    CHECK_OK(mp_textclf_train(some_empty, NULL, l3, 3, &o, &m, &err), &err);
    size_t k;
    CHECK_EQ(mp_textclf_predict(m, "a\xc3", 2, &k, NULL, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "invalid UTF-8");
    CHECK_EQ(mp_textclf_predict(m, "a\xc3", 2, &k, NULL, NULL), MP_EINVAL);
    mp_textclf_free(m);
}

MP_TEST(textclf_punct_option_adds_punctuation_features) {
    mp_error err;
    const char *texts[] = {"好！！", "行！", "可以！", "好？？", "行？", "可以？"};
    const char *labels[] = {"pos", "pos", "pos", "neg", "neg", "neg"};
    mp_textclf_opts o = toy_opts();
    o.word_bigrams = 0;
    o.punct = 1;
    mp_textclf *m = NULL;
    CHECK_OK(mp_textclf_train(texts, NULL, labels, 6, &o, &m, &err), &err);
    size_t k;
    CHECK_OK(mp_textclf_predict(m, "嗯！", strlen("嗯！"), &k, NULL, &err), &err);
    CHECK_EQ(k, 0);
    CHECK_OK(mp_textclf_predict(m, "嗯？", strlen("嗯？"), &k, NULL, &err), &err);
    CHECK_EQ(k, 1);
    size_t rows_punct = mp_textclf_n_rows(m);
    mp_textclf_free(m);
    o.punct = 0; /* without the option the two kinds of texts share all their features */
    CHECK_OK(mp_textclf_train(texts, NULL, labels, 6, &o, &m, &err), &err);
    CHECK_EQ(mp_textclf_n_rows(m) + 2, rows_punct);
    mp_textclf_free(m);
}

MP_TEST(textclf_save_load_round_trip) {
    mp_error err;
    mp_textclf_opts o = toy_opts();
    o.epochs = 10;
    o.minn = 2;
    o.maxn = 4;
    o.punct = 1;
    mp_textclf *m = NULL, *back = NULL;
    CHECK_OK(mp_textclf_train(TOY_TEXT, NULL, TOY_LABEL, TOY_N, &o, &m, &err), &err);
    char path[512];
    snprintf(path, sizeof path, "%s/clf.mpm", mp_test_tmpdir(t));
    CHECK_OK(mp_textclf_save(m, path, &err), &err);
    CHECK_OK(mp_textclf_load(path, &back, &err), &err);
    CHECK_EQ(mp_textclf_n_labels(back), 2);
    CHECK_EQ(mp_textclf_n_rows(back), mp_textclf_n_rows(m));
    CHECK(strcmp(mp_textclf_label(back, 0), "pos") == 0 && strcmp(mp_textclf_label(back, 1), "neg") == 0);
    mp_textclf_opts ob;
    mp_textclf_get_opts(back, &ob);
    CHECK(ob.dim == o.dim && ob.n_buckets == o.n_buckets && ob.word_bigrams == 1 && ob.minn == 2 && ob.maxn == 4 &&
          ob.punct == 1 && ob.seed == o.seed && ob.lr == o.lr);
    const char *probe[] = {"质量很好！", "awful, bad", "never seen words", "", "Great!!", "讨厌这个"};
    for (int i = 0; i < 6; i++) {
        float pa[2], pb[2];
        CHECK_OK(mp_textclf_predict_proba(m, probe[i], strlen(probe[i]), pa, &err), &err);
        CHECK_OK(mp_textclf_predict_proba(back, probe[i], strlen(probe[i]), pb, &err), &err);
        CHECK(memcmp(pa, pb, sizeof pa) == 0);
        CHECK_NEAR(pa[0] + pa[1], 1.0, 1e-6);
        size_t k;
        float p;
        CHECK_OK(mp_textclf_predict(back, probe[i], strlen(probe[i]), &k, &p, &err), &err);
        CHECK_EQ(k, pb[1] > pb[0] ? 1 : 0);
        CHECK_NEAR(p, pb[k], 1e-6);
    }
    mp_textclf_free(back);
    mp_textclf_free(m);
}

MP_TEST(textclf_load_refuses_bad_files) {
    mp_error err;
    mp_textclf_opts o = toy_opts();
    o.epochs = 1;
    mp_textclf *m = NULL, *back = (mp_textclf *)&err;
    CHECK_OK(mp_textclf_train(TOY_TEXT, NULL, TOY_LABEL, TOY_N, &o, &m, &err), &err);
    const char *dir = mp_test_tmpdir(t);
    char path[512], cut[512];
    snprintf(path, sizeof path, "%s/good.mpm", dir);
    snprintf(cut, sizeof cut, "%s/cut.mpm", dir);
    CHECK_OK(mp_textclf_save(m, path, &err), &err);
    mp_textclf_free(m);
    size_t len;
    unsigned char *img = mp_test_slurp(path, &len);
    CHECK(img && len > 200);
    /* Truncated: the header's payload length no longer matches. */
    CHECK(mp_test_write_bytes(cut, img, len - 10) == 0);
    CHECK_EQ(mp_textclf_load(cut, &back, &err), MP_ECORRUPT);
    CHECK(back == NULL);
    CHECK_CONTAINS(err.msg, "cut.mpm");
    /* A flipped payload byte: checksum mismatch. */
    img[len / 2] ^= 0x40;
    CHECK(mp_test_write_bytes(cut, img, len) == 0);
    CHECK_EQ(mp_textclf_load(cut, &back, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "cut.mpm");
    free(img);
    /* Another model's file. */
    mp_mf_writer *w = NULL;
    CHECK_OK(mp_mf_writer_create(&w), &err);
    mp_mf_put_u32(w, 1);
    CHECK_OK(mp_mf_writer_save(w, cut, "pop", 1, &err), &err);
    mp_mf_writer_destroy(w);
    CHECK_EQ(mp_textclf_load(cut, &back, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "not a textclf");
    /* A textclf file whose payload stops early (valid checksums, short content). */
    CHECK_OK(mp_mf_writer_create(&w), &err);
    for (int i = 0; i < 5; i++)
        mp_mf_put_u32(w, 16);
    CHECK_OK(mp_mf_writer_save(w, cut, "textclf", 1, &err), &err);
    mp_mf_writer_destroy(w);
    CHECK_EQ(mp_textclf_load(cut, &back, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "cut.mpm");
    /* Missing file. */
    snprintf(cut, sizeof cut, "%s/none.mpm", dir);
    CHECK_EQ(mp_textclf_load(cut, &back, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "none.mpm");
    CHECK(back == NULL);
}
