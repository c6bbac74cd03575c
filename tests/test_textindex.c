/* tests/test_textindex.c: TF-IDF and BM25 over a catalog (inverted index, growth, save/load). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/textindex.h"
#include "test.h"

#define Q(ix, s, out, errp) mp_textindex_bm25_all((ix), (s), strlen(s), (out), (errp))

/* d0 "apple banana", d1 "apple apple cherry", d2 "banana cherry date", d3 empty. */
static const char *const FRUIT[] = {"apple banana", "Apple APPLE, cherry!", "banana cherry date", ""};

MP_TEST(textindex_bm25_hand_computed) {
    mp_error err;
    mp_textindex *ix = NULL;
    CHECK_OK(mp_textindex_build(FRUIT, NULL, 4, NULL, &ix, &err), &err);
    CHECK_EQ(mp_textindex_n_docs(ix), 4);
    float s[4];
    CHECK_OK(Q(ix, "apple", s, &err), &err);
    /* N = 3 non-empty documents, df(apple) = 2, dl = 2, 3, 3, avgdl = 8/3, k1 = 1.2, b = 0.75. */
    const double idf = log(1.0 + (3 - 2 + 0.5) / (2 + 0.5)); /* ln 1.6 = 0.4700036 */
    const double avgdl = 8.0 / 3.0;
    const double s0 = idf * 1 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 2 / avgdl));
    const double s1 = idf * 2 * 2.2 / (2 + 1.2 * (0.25 + 0.75 * 3 / avgdl));
    CHECK_NEAR(s0, 0.5235483465, 1e-9); /* the formula itself, worked out by hand */
    CHECK_NEAR(s[0], s0, 1e-5);
    CHECK_NEAR(s[1], s1, 1e-5);
    CHECK_NEAR(s[1], 0.6243067075, 1e-5);
    CHECK_EQ(s[2], 0);
    CHECK_EQ(s[3], 0);
    /* Two terms add up; a repeated query token counts twice. */
    float s2[4];
    CHECK_OK(Q(ix, "apple date", s2, &err), &err);
    CHECK_NEAR(s2[0], s[0], 1e-6);
    CHECK(s2[2] > 0);
    CHECK_OK(Q(ix, "apple apple", s2, &err), &err);
    CHECK_NEAR(s2[1], 2 * s[1], 1e-5);

    uint32_t docs[4];
    float sc[4];
    size_t n = 9;
    CHECK_OK(mp_textindex_bm25_topk(ix, "apple", 5, 10, NULL, docs, sc, &n, &err), &err);
    CHECK_EQ(n, 2); /* only documents with a score > 0 */
    CHECK_EQ(docs[0], 1);
    CHECK_EQ(docs[1], 0);
    CHECK_NEAR(sc[0], s1, 1e-5);
    const uint8_t allow[4] = {1, 0, 1, 1};
    CHECK_OK(mp_textindex_bm25_topk(ix, "apple", 5, 10, allow, docs, sc, &n, &err), &err);
    CHECK_EQ(n, 1);
    CHECK_EQ(docs[0], 0);
    CHECK_OK(mp_textindex_bm25_topk(ix, "apple", 5, 1, NULL, docs, sc, &n, &err), &err);
    CHECK_EQ(n, 1);
    CHECK_EQ(docs[0], 1);
    /* Ties go to the lower id: "cherry" is in d1 (dl 3) and d2 (dl 3) once each. */
    CHECK_OK(mp_textindex_bm25_topk(ix, "cherry", 6, 2, NULL, docs, sc, &n, &err), &err);
    CHECK_EQ(n, 2);
    CHECK_EQ(docs[0], 1);
    CHECK_EQ(docs[1], 2);
    CHECK_NEAR(sc[0], sc[1], 1e-7);
    mp_textindex_free(ix);
}

MP_TEST(textindex_tfidf_hand_computed) {
    mp_error err;
    const char *docs[] = {"red blue", "red green", "yellow"};
    mp_textindex *ix = NULL;
    CHECK_OK(mp_textindex_build(docs, NULL, 3, NULL, &ix, &err), &err);
    /* N = 3: idf(red) = ln(4/3) + 1, idf(blue) = idf(green) = ln(4/2) + 1. */
    const double ir = log(4.0 / 3.0) + 1, ib = log(2.0) + 1;
    CHECK_NEAR(mp_textindex_tfidf_doc_cosine(ix, 0, 1), ir * ir / (ir * ir + ib * ib), 1e-6);
    CHECK_NEAR(mp_textindex_tfidf_doc_cosine(ix, 0, 0), 1.0, 1e-6);
    CHECK_EQ(mp_textindex_tfidf_doc_cosine(ix, 0, 2), 0);
    CHECK_EQ(mp_textindex_tfidf_doc_cosine(ix, 0, 7), 0); /* out of range */
    float s[3];
    CHECK_OK(mp_textindex_tfidf_all(ix, "red", 3, s, &err), &err);
    CHECK_NEAR(s[0], ir / sqrt(ir * ir + ib * ib), 1e-6);
    CHECK_NEAR(s[1], s[0], 1e-7);
    CHECK_EQ(s[2], 0);
    /* Unknown query words are ignored; sublinear tf: "red red blue" weighs red by 1 + ln 2. */
    CHECK_OK(mp_textindex_tfidf_all(ix, "blue zzz", 8, s, &err), &err);
    CHECK_NEAR(s[0], ib / sqrt(ir * ir + ib * ib), 1e-6);
    CHECK_OK(mp_textindex_tfidf_all(ix, "red red blue", 12, s, &err), &err);
    const double qr = (1 + log(2.0)) * ir;
    CHECK_NEAR(s[0], (qr * ir + ib * ib) / (sqrt(qr * qr + ib * ib) * sqrt(ir * ir + ib * ib)), 1e-6);
    mp_textindex_free(ix);

    /* Raw tf when sublinear_tf is off. */
    mp_textindex_opts o;
    mp_textindex_default(&o);
    o.sublinear_tf = 0;
    const char *d2[] = {"red red blue", "green"};
    CHECK_OK(mp_textindex_build(d2, NULL, 2, &o, &ix, &err), &err);
    CHECK_OK(mp_textindex_tfidf_all(ix, "red", 3, s, &err), &err);
    const double i2 = log(3.0 / 2.0) + 1;
    CHECK_NEAR(s[0], 2 * i2 / sqrt(4 * i2 * i2 + i2 * i2), 1e-6);
    mp_textindex_free(ix);
}

MP_TEST(textindex_chinese_and_english_queries) {
    mp_error err;
    const char *docs[] = {
        "The Legend of Zelda: Breath of the Wild - Nintendo Switch",
        "索尼 PlayStation 5 游戏主机 光驱版",
        "塞尔达传说 旷野之息 Switch 中文版",
        "Xbox Wireless Controller",
        "马里奥赛车8 豪华版",
    };
    mp_textindex *ix = NULL;
    CHECK_OK(mp_textindex_build(docs, NULL, 5, NULL, &ix, &err), &err);
    struct {
        const char *q;
        uint32_t want;
    } cases[] = {
        {"塞尔达", 2}, {"旷野之息", 2},   {"游戏主机", 1}, {"ＰＬＡＹＳＴＡＴＩＯＮ", 1}, /* full-width, folded */
        {"zelda", 0},  {"controller", 3}, {"马里奥", 4},   {"赛车", 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t top[5];
        float sc[5];
        size_t n = 0;
        CHECK_OK(mp_textindex_bm25_topk(ix, cases[i].q, strlen(cases[i].q), 5, NULL, top, sc, &n, &err), &err);
        CHECK_MSG(n >= 1 && top[0] == cases[i].want, "bm25 \"%s\": got %zu results, top %u, want %u", cases[i].q, n,
                  n ? top[0] : 99, cases[i].want);
        float s[5];
        CHECK_OK(mp_textindex_tfidf_all(ix, cases[i].q, strlen(cases[i].q), s, &err), &err);
        uint32_t best = 0;
        for (uint32_t d = 1; d < 5; d++)
            if (s[d] > s[best]) best = d;
        CHECK_MSG(best == cases[i].want, "tfidf \"%s\": best %u, want %u", cases[i].q, best, cases[i].want);
    }
    /* A Chinese query matches by characters too: "塞尔达传说" shares 传说's characters with nothing else; a single
     * character of a bigram still finds the document. */
    float s[5];
    CHECK_OK(Q(ix, "达", s, &err), &err);
    CHECK(s[2] > 0);
    CHECK_EQ(s[0], 0);
    /* "Switch" is in two documents: both match, and the bigram-rich Chinese query prefers the Chinese one. */
    CHECK_OK(Q(ix, "switch 塞尔达", s, &err), &err);
    CHECK(s[0] > 0 && s[2] > s[0]);
    mp_textindex_free(ix);
}

MP_TEST(textindex_empty_query_and_empty_docs) {
    mp_error err;
    mp_textindex *ix = NULL;
    CHECK_OK(mp_textindex_build(NULL, NULL, 0, NULL, &ix, &err), &err);
    CHECK_EQ(mp_textindex_n_docs(ix), 0);
    float s[1] = {7};
    CHECK_OK(Q(ix, "anything", s, &err), &err);
    CHECK_OK(mp_textindex_tfidf_all(ix, "anything", 8, s, &err), &err);
    uint32_t top[2];
    size_t n = 5;
    CHECK_OK(mp_textindex_bm25_topk(ix, "anything", 8, 2, NULL, top, NULL, &n, &err), &err);
    CHECK_EQ(n, 0);
    mp_textindex_free(ix);

    const char *docs[] = {NULL, "", "  ,,, !!  ", "word"};
    CHECK_OK(mp_textindex_build(docs, NULL, 4, NULL, &ix, &err), &err);
    CHECK_EQ(mp_textindex_n_docs(ix), 4);
    float s4[4];
    for (int i = 0; i < 2; i++) {
        const char *q = i ? "   " : "";
        memset(s4, 0x7f, sizeof s4);
        CHECK_OK(Q(ix, q, s4, &err), &err);
        for (int d = 0; d < 4; d++)
            CHECK_EQ(s4[d], 0);
        memset(s4, 0x7f, sizeof s4);
        CHECK_OK(mp_textindex_tfidf_all(ix, q, strlen(q), s4, &err), &err);
        for (int d = 0; d < 4; d++)
            CHECK_EQ(s4[d], 0);
    }
    CHECK_OK(mp_textindex_bm25_all(ix, NULL, 0, s4, &err), &err);
    CHECK_OK(Q(ix, "word", s4, &err), &err);
    CHECK(s4[3] > 0 && s4[0] == 0 && s4[1] == 0 && s4[2] == 0);
    CHECK_EQ(mp_textindex_tfidf_doc_cosine(ix, 0, 3), 0);
    CHECK_EQ(mp_textindex_tfidf_doc_cosine(ix, 2, 2), 0);
    /* Trailing empty documents count: lens given explicitly. */
    const size_t lens[] = {0, 0, 10, 4};
    mp_textindex *ix2 = NULL;
    CHECK_OK(mp_textindex_build(docs, lens, 4, NULL, &ix2, &err), &err);
    CHECK_EQ(mp_textindex_n_docs(ix2), 4);
    mp_textindex_free(ix2);
    const char *tail[] = {"word", NULL, NULL};
    CHECK_OK(mp_textindex_build(tail, NULL, 3, NULL, &ix2, &err), &err);
    CHECK_EQ(mp_textindex_n_docs(ix2), 3);
    mp_textindex_free(ix2);
    mp_textindex_free(ix);
}

MP_TEST(textindex_invalid_utf8_names_document) {
    mp_error err;
    const char *docs[] = {"fine", "also fine", "bad \xff byte", "never reached"};
    mp_textindex *ix = (mp_textindex *)&err;
    CHECK_EQ(mp_textindex_build(docs, NULL, 4, NULL, &ix, &err), MP_EINVAL);
    CHECK(ix == NULL);
    CHECK_CONTAINS(err.msg, "document 2");
    CHECK_CONTAINS(err.msg, "byte offset 4");

    CHECK_OK(mp_textindex_build(docs, NULL, 2, NULL, &ix, &err), &err);
    CHECK_EQ(mp_textindex_set(ix, 1, "x\xc3", 2, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "document 1");
    /* Without an mp_error the code still comes back (adding context to the message must not turn it into MP_OK). */
    CHECK_EQ(mp_textindex_set(ix, 1, "x\xc3", 2, NULL), MP_EINVAL);
    float s[2];
    CHECK_OK(Q(ix, "also", s, &err), &err); /* document 1 kept its text */
    CHECK(s[1] > 0);
    CHECK_EQ(Q(ix, "q\xfe", s, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "byte offset 1");
    CHECK_EQ(mp_textindex_tfidf_all(ix, "\xc0\x80", 2, s, &err), MP_EINVAL);
    CHECK_EQ(mp_textindex_set(ix, 0x80000000u, "x", 1, &err), MP_ERANGE);
    mp_textindex_opts o;
    mp_textindex_default(&o);
    o.b = 2;
    mp_textindex *bad = NULL;
    CHECK_EQ(mp_textindex_create(&o, &bad, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "b must be");
    mp_textindex_free(ix);
}

MP_TEST(textindex_grows_and_replaces_after_build) {
    mp_error err;
    const char *docs[] = {"red shoes", "blue shirt", "green hat"};
    mp_textindex *ix = NULL;
    CHECK_OK(mp_textindex_build(docs, NULL, 3, NULL, &ix, &err), &err);
    float s[8];
    CHECK_OK(mp_textindex_tfidf_all(ix, "red", 3, s, &err), &err); /* norms computed for version 1 */
    const float red_before = s[0];

    /* A new document beyond the end extends the index (3 and 4 stay empty) and is found at once. */
    CHECK_OK(mp_textindex_set(ix, 5, "red gadget", 10, &err), &err);
    CHECK_EQ(mp_textindex_n_docs(ix), 6);
    uint32_t top[6];
    size_t n;
    CHECK_OK(mp_textindex_bm25_topk(ix, "gadget", 6, 6, NULL, top, NULL, &n, &err), &err);
    CHECK_EQ(n, 1);
    CHECK_EQ(top[0], 5);
    CHECK_OK(mp_textindex_tfidf_all(ix, "gadget", 6, s, &err), &err);
    CHECK(s[5] > 0);
    CHECK_EQ(s[3], 0);
    CHECK_OK(mp_textindex_tfidf_all(ix, "red", 3, s, &err), &err);
    CHECK(s[0] != red_before); /* idf(red) changed: N and df grew */
    CHECK(s[5] > 0 && s[5] < s[0] + 1e-6f);

    /* Replacing a document changes the results; the old text is gone. */
    CHECK_OK(mp_textindex_set(ix, 0, "purple gadget", 13, &err), &err);
    CHECK_OK(mp_textindex_bm25_topk(ix, "red", 3, 6, NULL, top, NULL, &n, &err), &err);
    CHECK_EQ(n, 1);
    CHECK_EQ(top[0], 5);
    CHECK_OK(mp_textindex_bm25_topk(ix, "gadget", 6, 6, NULL, top, NULL, &n, &err), &err);
    CHECK_EQ(n, 2);
    CHECK_OK(mp_textindex_tfidf_all(ix, "shoes", 5, s, &err), &err);
    for (int d = 0; d < 6; d++)
        CHECK_EQ(s[d], 0);
    CHECK_NEAR(mp_textindex_tfidf_doc_cosine(ix, 0, 0), 1.0, 1e-6);
    CHECK(mp_textindex_tfidf_doc_cosine(ix, 0, 5) > 0);
    /* Emptying a document. */
    CHECK_OK(mp_textindex_set(ix, 5, NULL, 0, &err), &err);
    CHECK_OK(mp_textindex_bm25_topk(ix, "gadget", 6, 6, NULL, top, NULL, &n, &err), &err);
    CHECK_EQ(n, 1);
    CHECK_EQ(top[0], 0);

    /* A grown index scores exactly like one built from the same texts. */
    const char *same[] = {"purple gadget", "blue shirt", "green hat", NULL, NULL, NULL};
    mp_textindex *fresh = NULL;
    CHECK_OK(mp_textindex_build(same, NULL, 6, NULL, &fresh, &err), &err);
    float a[6], b[6];
    const char *qs[] = {"gadget", "blue hat", "purple"};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(Q(ix, qs[i], a, &err), &err);
        CHECK_OK(Q(fresh, qs[i], b, &err), &err);
        for (int d = 0; d < 6; d++)
            CHECK_NEAR(a[d], b[d], 1e-6);
        CHECK_OK(mp_textindex_tfidf_all(ix, qs[i], strlen(qs[i]), a, &err), &err);
        CHECK_OK(mp_textindex_tfidf_all(fresh, qs[i], strlen(qs[i]), b, &err), &err);
        for (int d = 0; d < 6; d++)
            CHECK_NEAR(a[d], b[d], 1e-6);
    }
    mp_textindex_free(fresh);
    mp_textindex_free(ix);
}

MP_TEST(textindex_profile_scoring) {
    mp_error err;
    const char *docs[] = {"wireless mouse", "wireless keyboard", "gaming mouse pad", "coffee mug", "mouse"};
    mp_textindex *ix = NULL;
    CHECK_OK(mp_textindex_build(docs, NULL, 5, NULL, &ix, &err), &err);
    float s[5];
    const uint32_t one[] = {0};
    CHECK_OK(mp_textindex_tfidf_profile_all(ix, one, NULL, 1, s, &err), &err);
    for (uint32_t d = 0; d < 5; d++)
        CHECK_NEAR(s[d], mp_textindex_tfidf_doc_cosine(ix, 0, d), 1e-6);
    CHECK_NEAR(s[0], 1.0, 1e-6);
    CHECK_EQ(s[3], 0);
    const uint32_t two[] = {0, 2};
    const float w[] = {0.5f, 2.0f};
    CHECK_OK(mp_textindex_tfidf_profile_all(ix, two, w, 2, s, &err), &err);
    for (uint32_t d = 0; d < 5; d++)
        CHECK_NEAR(s[d], 0.5 * mp_textindex_tfidf_doc_cosine(ix, 0, d) + 2.0 * mp_textindex_tfidf_doc_cosine(ix, 2, d),
                   1e-5);
    /* The profile of a mouse buyer ranks the plain "mouse" above the keyboard and the mug. */
    CHECK(s[4] > s[1] && s[1] > s[3]);
    CHECK_OK(mp_textindex_tfidf_profile_all(ix, NULL, NULL, 0, s, &err), &err);
    for (int d = 0; d < 5; d++)
        CHECK_EQ(s[d], 0);
    const uint32_t bad[] = {9};
    CHECK_EQ(mp_textindex_tfidf_profile_all(ix, bad, NULL, 1, s, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "document 9");
    mp_textindex_free(ix);
}

MP_TEST(textindex_save_load_round_trip) {
    mp_error err;
    const char *docs[] = {"Nintendo Switch 塞尔达传说", "PlayStation 5 console", NULL, "switch case",
                          "the the the switch"};
    mp_textindex_opts o;
    mp_textindex_default(&o);
    o.k1 = 1.5f;
    o.b = 0.6f;
    o.feat.word_bigrams = 1;
    mp_textindex *ix = NULL;
    CHECK_OK(mp_textindex_build(docs, NULL, 5, &o, &ix, &err), &err);
    CHECK_OK(mp_textindex_set(ix, 1, "PlayStation 4 controller", 24, &err), &err); /* leaves dead terms */
    CHECK_OK(mp_textindex_set(ix, 6, "塞尔达 amiibo", strlen("塞尔达 amiibo"), &err), &err);

    mp_mf_writer *w = NULL;
    CHECK_OK(mp_mf_writer_create(&w), &err);
    mp_mf_put_u32(w, 12345); /* the section may follow other model data */
    CHECK_OK(mp_textindex_save(ix, w, &err), &err);
    mp_mf_put_u32(w, 777);
    const char *dir = mp_test_tmpdir(t);
    char path[512];
    snprintf(path, sizeof path, "%s/ix.mf", dir);
    CHECK_OK(mp_mf_writer_save(w, path, "testidx", 1, &err), &err);
    mp_mf_writer_destroy(w);

    mp_mf_reader *r = NULL;
    CHECK_OK(mp_mf_reader_open(&r, path, &err), &err);
    uint32_t v;
    CHECK_OK(mp_mf_get_u32(r, &v, &err), &err);
    mp_textindex *back = NULL;
    CHECK_OK(mp_textindex_load(r, &back, &err), &err);
    CHECK_OK(mp_mf_get_u32(r, &v, &err), &err);
    CHECK_EQ(v, 777);
    CHECK_EQ(mp_mf_remaining(r), 0);
    mp_mf_reader_close(r);

    CHECK_EQ(mp_textindex_n_docs(back), 7);
    const char *qs[] = {"switch", "塞尔达", "playstation controller", "the switch", "amiibo", "nintendo switch"};
    float a[7], b[7];
    for (int i = 0; i < 6; i++) {
        CHECK_OK(Q(ix, qs[i], a, &err), &err);
        CHECK_OK(Q(back, qs[i], b, &err), &err);
        CHECK(memcmp(a, b, sizeof a) == 0);
        CHECK_OK(mp_textindex_tfidf_all(ix, qs[i], strlen(qs[i]), a, &err), &err);
        CHECK_OK(mp_textindex_tfidf_all(back, qs[i], strlen(qs[i]), b, &err), &err);
        for (int d = 0; d < 7; d++)
            CHECK_NEAR(a[d], b[d], 1e-6);
    }
    for (uint32_t d = 0; d < 7; d++)
        CHECK_NEAR(mp_textindex_tfidf_doc_cosine(ix, 0, d), mp_textindex_tfidf_doc_cosine(back, 0, d), 1e-6);
    /* The loaded index still grows. */
    CHECK_OK(mp_textindex_set(back, 2, "amiibo figure", 13, &err), &err);
    uint32_t top[7];
    size_t n;
    CHECK_OK(mp_textindex_bm25_topk(back, "amiibo", 6, 7, NULL, top, NULL, &n, &err), &err);
    CHECK_EQ(n, 2);

    /* A reader positioned at something else is refused, naming the file. */
    CHECK_OK(mp_mf_reader_open(&r, path, &err), &err);
    mp_textindex *none = NULL;
    CHECK_EQ(mp_textindex_load(r, &none, &err), MP_ECORRUPT);
    CHECK(none == NULL);
    mp_mf_reader_close(r);
    mp_textindex_free(back);
    mp_textindex_free(ix);
}

typedef struct {
    const mp_textindex *ix;
    float out[4];
    int rc;
} qarg;

static void *query_thread(void *p) {
    qarg *a = p;
    mp_error err;
    a->rc = mp_textindex_tfidf_all(a->ix, "blue shirt", 10, a->out, &err);
    return NULL;
}

MP_TEST(textindex_concurrent_queries_after_growth) {
    mp_error err;
    const char *docs[] = {"red shoes", "blue shirt", "green hat"};
    mp_textindex *ix = NULL;
    CHECK_OK(mp_textindex_build(docs, NULL, 3, NULL, &ix, &err), &err);
    CHECK_OK(mp_textindex_set(ix, 3, "blue hat", 8, &err), &err);
    /* The first TF-IDF queries after the change race to recompute the norms. */
    pthread_t th[4];
    qarg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (qarg){.ix = ix};
        CHECK(pthread_create(&th[i], NULL, query_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(args[i].rc, MP_OK);
        CHECK(memcmp(args[i].out, args[0].out, sizeof args[0].out) == 0);
    }
    CHECK(args[0].out[1] > args[0].out[3] && args[0].out[3] > 0);
    mp_textindex_free(ix);
}
