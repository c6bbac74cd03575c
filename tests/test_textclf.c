/* tests/test_textclf.c: the fastText-class text classifier. */
#include <stdlib.h>
#include <string.h>

#include "magpie/textclf.h"
#include "test.h"

/* A separable toy problem: positive texts contain 好/喜欢/great/love, negative ones 差/讨厌/bad/awful, mixed with
 * shared filler words. */
static const char *const TOY_TEXT[] = {
    "质量很好，非常喜欢", "东西很好用", "喜欢这个颜色", "物流快，很好",
    "great product, love it", "love the color", "great value", "really great and fast",
    "质量很差，讨厌", "东西太差了", "讨厌这个颜色", "物流慢，很差",
    "bad product, awful", "awful color", "bad value", "really bad and slow",
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
