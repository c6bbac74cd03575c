/* tests/test_skipgram.c: unsupervised subword skip-gram embeddings. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/rng.h"
#include "magpie/skipgram.h"
#include "test.h"

#define GROUP 8
#define N_TEXTS 400

/* Two topics of GROUP made-up words each (random letters, so the groups share no subwords by construction); every
 * text is 8 words drawn from one topic. */
typedef struct {
    char words[2][GROUP][8];
    char *texts[N_TEXTS];
} corpus;

static void make_corpus(corpus *c, uint64_t seed) {
    mp_rng rng;
    mp_rng_seed(&rng, seed);
    for (int g = 0; g < 2; g++)
        for (int i = 0; i < GROUP; i++) {
            for (int k = 0; k < 6; k++)
                c->words[g][i][k] = (char)('a' + mp_rng_below(&rng, 26));
            c->words[g][i][6] = '\0';
        }
    for (int t = 0; t < N_TEXTS; t++) {
        const int g = t % 2;
        c->texts[t] = malloc(8 * 8);
        c->texts[t][0] = '\0';
        for (int k = 0; k < 8; k++) {
            strcat(c->texts[t], c->words[g][mp_rng_below(&rng, GROUP)]);
            strcat(c->texts[t], " ");
        }
    }
}

static void free_corpus(corpus *c) {
    for (int t = 0; t < N_TEXTS; t++)
        free(c->texts[t]);
}

static mp_skipgram_opts small_opts(void) {
    mp_skipgram_opts o;
    mp_skipgram_default(&o);
    o.dim = 16;
    o.epochs = 5;
    o.window = 3;
    o.min_count = 1;
    o.sample = 0;
    o.lr = 0.05f;
    o.n_buckets = 100000;
    return o;
}

static double cosine(const float *a, const float *b, int dim) {
    double ab = 0, aa = 0, bb = 0;
    for (int j = 0; j < dim; j++)
        ab += (double)a[j] * b[j], aa += (double)a[j] * a[j], bb += (double)b[j] * b[j];
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

MP_TEST(skipgram_topic_groups_are_nearer_within) {
    corpus c;
    make_corpus(&c, 7);
    mp_error err;
    mp_skipgram *m = NULL;
    mp_skipgram_opts o = small_opts();
    CHECK_OK(mp_skipgram_train((const char *const *)c.texts, NULL, N_TEXTS, &o, &m, &err), &err);
    CHECK_EQ(mp_skipgram_dim(m), 16);
    CHECK_EQ(mp_skipgram_vocab_size(m), 2 * GROUP);
    float v[2][GROUP][16];
    for (int g = 0; g < 2; g++)
        for (int i = 0; i < GROUP; i++) {
            int have = 0;
            CHECK_OK(mp_skipgram_word_vector(m, c.words[g][i], 6, v[g][i], &have, &err), &err);
            CHECK(have == 1);
        }
    double within = 0, across = 0;
    int nw = 0, na = 0, nn_right = 0;
    for (int g = 0; g < 2; g++)
        for (int i = 0; i < GROUP; i++) {
            double best = -2;
            int best_g = -1;
            for (int h = 0; h < 2; h++)
                for (int j = 0; j < GROUP; j++) {
                    if (g == h && i == j) continue;
                    const double s = cosine(v[g][i], v[h][j], 16);
                    if (g == h)
                        within += s, nw++;
                    else
                        across += s, na++;
                    if (s > best) best = s, best_g = h;
                }
            nn_right += best_g == g;
        }
    within /= nw;
    across /= na;
    CHECK_MSG(within > across + 0.3, "mean cosine within %.3f, across %.3f", within, across);
    CHECK_MSG(nn_right == 2 * GROUP, "%d of %d nearest neighbours in the same topic", nn_right, 2 * GROUP);
    /* Text vectors: unit length; a text of topic 0 is nearer to topic-0 words than to topic-1 words. */
    float tv[16], tv2[16];
    int have;
    CHECK_OK(mp_skipgram_text_vector(m, c.texts[0], strlen(c.texts[0]), tv, &have, &err), &err);
    CHECK(have);
    double n2 = 0;
    for (int j = 0; j < 16; j++)
        n2 += (double)tv[j] * tv[j];
    CHECK_NEAR(n2, 1.0, 1e-5);
    CHECK_OK(mp_skipgram_text_vector(m, c.texts[2], strlen(c.texts[2]), tv2, &have, &err), &err);
    CHECK(cosine(tv, tv2, 16) > cosine(tv, v[1][0], 16));
    CHECK_OK(mp_skipgram_text_vector(m, "", 0, tv, &have, &err), &err);
    CHECK(!have);
    mp_skipgram_free(m);
    free_corpus(&c);
}

MP_TEST(skipgram_unseen_word_gets_vector_from_subwords) {
    const char *texts[] = {"playstation console games",
                           "playstation controller games",
                           "console games collection",
                           "nintendo switch games",
                           "switch controller pro",
                           "nintendo console classic",
                           "游戏 机 主机",
                           "主机 游戏 手柄"};
    mp_error err;
    mp_skipgram *m = NULL;
    mp_skipgram_opts o = small_opts();
    o.min_count = 2;
    o.epochs = 20;
    CHECK_OK(mp_skipgram_train(texts, NULL, 8, &o, &m, &err), &err);
    const int dim = mp_skipgram_dim(m);
    float a[16], b[16], z[16];
    int have = 0;
    CHECK_OK(mp_skipgram_word_vector(m, "playstation", 11, a, &have, &err), &err);
    CHECK(have == 1);
    /* Never seen, but shares n-grams with "playstation". */
    CHECK_OK(mp_skipgram_word_vector(m, "PlayStations", 12, b, &have, &err), &err);
    CHECK(have == 1);
    CHECK_MSG(cosine(a, b, dim) > 0.5, "cos(playstation, playstations) = %.3f", cosine(a, b, dim));
    /* "collection" occurs once (< min_count): no own row, but its n-grams were trained. */
    CHECK_OK(mp_skipgram_word_vector(m, "collection", 10, b, &have, &err), &err);
    CHECK(have == 1);
    /* A word with no known n-gram and no row. */
    CHECK_OK(mp_skipgram_word_vector(m, "qxjwvz", 6, z, &have, &err), &err);
    CHECK(have == 0);
    for (int j = 0; j < dim; j++)
        CHECK_EQ(z[j], 0);
    CHECK_OK(mp_skipgram_word_vector(m, "", 0, z, &have, &err), &err);
    CHECK(have == 0);
    /* CJK characters are words of their own. */
    CHECK_OK(mp_skipgram_word_vector(m, "游戏", strlen("游戏"), z, &have, &err), &err);
    CHECK(have == 1);
    CHECK_EQ(mp_skipgram_word_vector(m, "\xff", 1, z, &have, &err), MP_EINVAL);
    mp_skipgram_free(m);
}

MP_TEST(skipgram_deterministic_with_one_thread_and_save_load) {
    corpus c;
    make_corpus(&c, 11);
    mp_error err;
    mp_skipgram_opts o = small_opts();
    o.epochs = 2;
    o.sample = 1e-2;
    mp_skipgram *a = NULL, *b = NULL, *d = NULL;
    CHECK_OK(mp_skipgram_train((const char *const *)c.texts, NULL, N_TEXTS, &o, &a, &err), &err);
    CHECK_OK(mp_skipgram_train((const char *const *)c.texts, NULL, N_TEXTS, &o, &b, &err), &err);
    o.seed = 2;
    CHECK_OK(mp_skipgram_train((const char *const *)c.texts, NULL, N_TEXTS, &o, &d, &err), &err);
    float va[16], vb[16], vd[16];
    int have;
    CHECK_OK(mp_skipgram_text_vector(a, c.texts[5], strlen(c.texts[5]), va, &have, &err), &err);
    CHECK_OK(mp_skipgram_text_vector(b, c.texts[5], strlen(c.texts[5]), vb, &have, &err), &err);
    CHECK_OK(mp_skipgram_text_vector(d, c.texts[5], strlen(c.texts[5]), vd, &have, &err), &err);
    CHECK(memcmp(va, vb, sizeof va) == 0);
    CHECK(memcmp(va, vd, sizeof va) != 0);

    mp_mf_writer *w = NULL;
    CHECK_OK(mp_mf_writer_create(&w), &err);
    CHECK_OK(mp_skipgram_save(a, w, &err), &err);
    char path[512];
    snprintf(path, sizeof path, "%s/sg.mf", mp_test_tmpdir(t));
    CHECK_OK(mp_mf_writer_save(w, path, "sgtest", 1, &err), &err);
    mp_mf_writer_destroy(w);
    mp_mf_reader *r = NULL;
    CHECK_OK(mp_mf_reader_open(&r, path, &err), &err);
    mp_skipgram *back = NULL;
    CHECK_OK(mp_skipgram_load(r, &back, &err), &err);
    CHECK_EQ(mp_mf_remaining(r), 0);
    mp_mf_reader_close(r);
    CHECK_EQ(mp_skipgram_vocab_size(back), mp_skipgram_vocab_size(a));
    CHECK_EQ(mp_skipgram_dim(back), 16);
    const char *probe[] = {c.words[0][0], c.words[1][3], "unseenword", c.texts[7]};
    for (int i = 0; i < 4; i++) {
        int h1, h2;
        CHECK_OK(mp_skipgram_text_vector(a, probe[i], strlen(probe[i]), va, &h1, &err), &err);
        CHECK_OK(mp_skipgram_text_vector(back, probe[i], strlen(probe[i]), vb, &h2, &err), &err);
        CHECK_EQ(h1, h2);
        CHECK(memcmp(va, vb, sizeof va) == 0);
        CHECK_OK(mp_skipgram_word_vector(a, probe[i], strlen(probe[i]), va, &h1, &err), &err);
        CHECK_OK(mp_skipgram_word_vector(back, probe[i], strlen(probe[i]), vb, &h2, &err), &err);
        CHECK(memcmp(va, vb, sizeof va) == 0);
    }
    /* A reader at another section is refused naming the file. */
    CHECK_OK(mp_mf_reader_open(&r, path, &err), &err);
    uint32_t skip;
    CHECK_OK(mp_mf_get_u32(r, &skip, &err), &err);
    mp_skipgram *none = NULL;
    CHECK(mp_skipgram_load(r, &none, &err) != MP_OK);
    CHECK(none == NULL);
    CHECK_CONTAINS(err.msg, "sg.mf");
    mp_mf_reader_close(r);

    /* Two Hogwild threads train a usable model too. */
    mp_skipgram *mt = NULL;
    o.threads = 2;
    CHECK_OK(mp_skipgram_train((const char *const *)c.texts, NULL, N_TEXTS, &o, &mt, &err), &err);
    CHECK_EQ(mp_skipgram_vocab_size(mt), 2 * GROUP);
    mp_skipgram_free(mt);
    mp_skipgram_free(back);
    mp_skipgram_free(a);
    mp_skipgram_free(b);
    mp_skipgram_free(d);
    free_corpus(&c);
}

MP_TEST(skipgram_errors) {
    mp_error err;
    mp_skipgram *m = (mp_skipgram *)&err;
    const char *texts[] = {"good text here", "bad \xc3\x28 text", "more"};
    mp_skipgram_opts o = small_opts();
    CHECK_EQ(mp_skipgram_train(texts, NULL, 3, &o, &m, &err), MP_EINVAL);
    CHECK(m == NULL);
    CHECK_CONTAINS(err.msg, "text 1");
    CHECK_CONTAINS(err.msg, "byte offset 4");
    const char *empty[] = {"", NULL, " ,;! "};
    CHECK_EQ(mp_skipgram_train(empty, NULL, 3, &o, &m, &err), MP_EEMPTY);
    CHECK_EQ(mp_skipgram_train(NULL, NULL, 0, &o, &m, &err), MP_EEMPTY);
    o.min_count = 5;
    CHECK_EQ(mp_skipgram_train(texts, NULL, 1, &o, &m, &err), MP_EEMPTY);
    CHECK_CONTAINS(err.msg, "min_count");
    struct {
        int field, value;
        const char *needle;
    } bad[] = {{0, 0, "dim"},       {1, 0, "window"}, {2, 0, "epochs"}, {3, 0, "negatives"},
               {4, 0, "min_count"}, {5, 7, "minn"},   {6, 0, "threads"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = small_opts();
        int *f[] = {&o.dim, &o.window, &o.epochs, &o.negatives, &o.min_count, &o.minn, &o.threads};
        *f[bad[i].field] = bad[i].value;
        CHECK_EQ(mp_skipgram_train(texts, NULL, 1, &o, &m, &err), MP_EINVAL);
        CHECK_CONTAINS(err.msg, bad[i].needle);
    }
    o = small_opts();
    o.lr = 0;
    CHECK_EQ(mp_skipgram_train(texts, NULL, 1, &o, &m, &err), MP_EINVAL);
    o = small_opts();
    o.sample = -1;
    CHECK_EQ(mp_skipgram_train(texts, NULL, 1, &o, &m, &err), MP_EINVAL);
    /* maxn 0: whole words only; an unseen word then has no vector. */
    o = small_opts();
    o.maxn = 0;
    CHECK_OK(mp_skipgram_train(texts, NULL, 1, &o, &m, &err), &err);
    float v[16];
    int have = 1;
    CHECK_OK(mp_skipgram_word_vector(m, "goods", 5, v, &have, &err), &err);
    CHECK(have == 0);
    CHECK_OK(mp_skipgram_word_vector(m, "GOOD", 4, v, &have, &err), &err);
    CHECK(have == 1);
    mp_skipgram_free(m);
}
