/* tests/test_text.c: UTF-8 normalisation, the feature tokenizer, WordPiece and SentencePiece unigram. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/strmap.h"
#include "magpie/text.h"
#include "test.h"

/* "K:token|K:token|..." with K one of W C B S N G (word, CJK, CJK bigram, symbol, n-gram, word bigram). */
static void tokens_str(const mp_text_tokens *r, char *out, size_t cap) {
    static const char kinds[] = "WCBSNG";
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->n && o + 8 < cap; i++) {
        const mp_text_token *k = &r->toks[i];
        int w = snprintf(out + o, cap - o, "%s%c:%.*s", i ? "|" : "", kinds[k->kind], (int)k->len, r->buf + k->off);
        if (w < 0) break;
        o += (size_t)w;
        if (o >= cap) o = cap - 1;
    }
}

static int features_str(const char *s, const mp_text_feat_opts *o, char *out, size_t cap, mp_error *err) {
    mp_text_tokens *r;
    int rc = mp_text_features(s, strlen(s), o, &r, err);
    if (rc != MP_OK) return rc;
    tokens_str(r, out, cap);
    mp_text_tokens_free(r);
    return MP_OK;
}

static int norm_eq(const char *in, const mp_text_norm_opts *o, const char *want) {
    char *out;
    size_t n;
    mp_error err;
    if (mp_text_normalize(in, strlen(in), o, &out, &n, &err) != MP_OK) return 0;
    int ok = n == strlen(want) && strcmp(out, want) == 0;
    if (!ok) fprintf(stderr, "normalize(\"%s\") = \"%s\", want \"%s\"\n", in, out, want);
    free(out);
    return ok;
}

MP_TEST(text_utf8_decode_encode) {
    uint32_t cp;
    CHECK_EQ(mp_utf8_decode("A", 1, &cp), 1);
    CHECK_EQ(cp, 'A');
    CHECK_EQ(mp_utf8_decode("\xC3\xA9", 2, &cp), 2);
    CHECK_EQ(cp, 0xE9);
    CHECK_EQ(mp_utf8_decode("\xE6\x89\x8B", 3, &cp), 3); /* 手 */
    CHECK_EQ(cp, 0x624B);
    CHECK_EQ(mp_utf8_decode("\xF0\x9F\x98\x80", 4, &cp), 4); /* 😀 */
    CHECK_EQ(cp, 0x1F600);
    CHECK_EQ(mp_utf8_decode("\xC0\xAF", 2, &cp), 0);         /* overlong '/' */
    CHECK_EQ(mp_utf8_decode("\xE0\x80\xAF", 3, &cp), 0);     /* overlong */
    CHECK_EQ(mp_utf8_decode("\xED\xA0\x80", 3, &cp), 0);     /* surrogate */
    CHECK_EQ(mp_utf8_decode("\xF4\x90\x80\x80", 4, &cp), 0); /* > U+10FFFF */
    CHECK_EQ(mp_utf8_decode("\xE6\x89", 2, &cp), 0);         /* truncated */
    CHECK_EQ(mp_utf8_decode("\x80", 1, &cp), 0);             /* lone continuation */
    char buf[4];
    uint32_t samples[] = {0x24, 0xA2, 0x20AC, 0x10348, 0x2581, 0x10FFFF};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        int k = mp_utf8_encode(samples[i], buf);
        CHECK(k > 0);
        CHECK_EQ(mp_utf8_decode(buf, (size_t)k, &cp), k);
        CHECK_EQ(cp, samples[i]);
    }
    CHECK_EQ(mp_utf8_encode(0xD800, buf), 0);
    CHECK_EQ(mp_utf8_encode(0x110000, buf), 0);
}

MP_TEST(text_invalid_utf8_rejected_with_offset) {
    mp_error err;
    size_t bad = 0;
    CHECK_EQ(mp_utf8_validate("ok \xE6\x89\x8B", 6, &bad, &err), MP_OK);
    CHECK_EQ(mp_utf8_validate("ab\xC3(", 4, &bad, &err), MP_EINVAL);
    CHECK_EQ(bad, 2);
    CHECK_CONTAINS(err.msg, "invalid UTF-8 at byte offset 2 (byte 0xC3)");
    char *out = (char *)1;
    const char *text = "手机\xFF";
    CHECK_EQ(mp_text_normalize(text, strlen(text), NULL, &out, NULL, &err), MP_EINVAL);
    CHECK(out == NULL);
    CHECK_CONTAINS(err.msg, "byte offset 6 (byte 0xFF)");
    mp_text_tokens *r = NULL;
    const char *t2 = "good \xED\xA0\x80 bad";
    CHECK_EQ(mp_text_features(t2, strlen(t2), NULL, &r, &err), MP_EINVAL);
    CHECK(r == NULL);
    CHECK_CONTAINS(err.msg, "byte offset 5");
    /* truncated at the very end */
    CHECK_EQ(mp_utf8_validate("abc\xE6\x89", 5, &bad, &err), MP_EINVAL);
    CHECK_EQ(bad, 3);
}

MP_TEST(text_normalize_fullwidth_to_halfwidth) {
    mp_text_norm_opts o;
    mp_text_norm_default(&o);
    CHECK(norm_eq("ＡＢＣ１２３！\xE3\x80\x80ｘ（ｙ）", &o, "abc123! x(y)"));
    o.casefold = 0;
    CHECK(norm_eq("ＮＩＫＥ\xE3\x80\x80Ａｉｒ～", &o, "NIKE Air~"));
    o.halfwidth = 0;
    CHECK(norm_eq("ＮＩＫＥ", &o, "ＮＩＫＥ"));
    CHECK_EQ(mp_text_halfwidth(0xFF01), '!');
    CHECK_EQ(mp_text_halfwidth(0xFF5E), '~');
    CHECK_EQ(mp_text_halfwidth(0xFF5F), 0xFF5F);
    CHECK_EQ(mp_text_halfwidth(0x3000), ' ');
}

MP_TEST(text_normalize_case_folding_non_ascii) {
    CHECK(norm_eq("ÉCOLE Ärger ÖÜ Ñ Ç", NULL, "école ärger öü ñ ç"));
    CHECK(norm_eq("ΣΟΦΙΑ Ά Ώ σοφός", NULL, "σοφια ά ώ σοφόσ"));
    CHECK(norm_eq("МОСКВА Ёж Ї", NULL, "москва ёж ї"));
    CHECK(norm_eq("ŁÓDŹ ŒUVRE İ Ÿ ß", NULL, "łódź œuvre i ÿ ß"));
    CHECK(norm_eq("×÷", NULL, "×÷"));
    CHECK_EQ(mp_text_fold_case(0xC9), 0xE9);   /* É -> é */
    CHECK_EQ(mp_text_fold_case(0xC4), 0xE4);   /* Ä -> ä */
    CHECK_EQ(mp_text_fold_case(0x3A3), 0x3C3); /* Σ -> σ */
    CHECK_EQ(mp_text_fold_case(0x3C2), 0x3C3); /* ς -> σ */
    CHECK_EQ(mp_text_fold_case(0x141), 0x142); /* Ł -> ł */
    CHECK_EQ(mp_text_fold_case(0x17D), 0x17E); /* Ž -> ž */
    CHECK_EQ(mp_text_fold_case(0x624B), 0x624B);
}

MP_TEST(text_normalize_whitespace_and_empty) {
    CHECK(norm_eq("", NULL, ""));
    CHECK(norm_eq(" \t\n ", NULL, ""));
    CHECK(norm_eq("  a \t\r\n b\xC2\xA0\xE3\x80\x80 c  ", NULL, "a b c"));
    mp_text_norm_opts o = {.halfwidth = 1, .casefold = 1, .collapse_space = 0};
    CHECK(norm_eq(" A  B ", &o, " a  b "));
    mp_text_tokens *r;
    mp_error err;
    CHECK_OK(mp_text_features("", 0, NULL, &r, &err), &err);
    CHECK_EQ(r->n, 0);
    CHECK_EQ(r->norm_len, 0);
    mp_text_tokens_free(r);
    CHECK_OK(mp_text_features("  ,.!? ", 7, NULL, &r, &err), &err);
    CHECK_EQ(r->n, 0);
    mp_text_tokens_free(r);
    mp_text_tokens_free(NULL);
}

MP_TEST(text_features_mixed_scripts_and_cjk_bigrams) {
    char s[1024];
    mp_error err;
    CHECK_OK(features_str("iPhone 15 手机壳很好用", NULL, s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "W:iphone|W:15|C:手|C:机|B:手机|C:壳|B:机壳|C:很|B:壳很|C:好|B:很好|C:用|B:好用") == 0, "%s",
              s);
    /* Punctuation breaks CJK runs; digits stay in words; kana and hangul are CJK. */
    CHECK_OK(features_str("好评，USB3.0线 カメラ 한국", NULL, s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "C:好|C:评|B:好评|W:usb3|W:0|C:线|C:カ|C:メ|B:カメ|C:ラ|B:メラ|C:한|C:국|B:한국") == 0, "%s",
              s);
    mp_text_feat_opts o;
    mp_text_feat_default(&o);
    o.cjk_bigrams = 0;
    CHECK_OK(features_str("手机壳", &o, s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "C:手|C:机|C:壳") == 0, "%s", s);
    /* Full-width Latin in Chinese text becomes ordinary words. */
    mp_text_feat_default(&o);
    CHECK_OK(features_str("ＮＩＫＥ　Ａｉｒ跑鞋", &o, s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "W:nike|W:air|C:跑|C:鞋|B:跑鞋") == 0, "%s", s);
    /* Cyrillic and accented Latin are words. */
    CHECK_OK(features_str("Café МОСКВА", &o, s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "W:café|W:москва") == 0, "%s", s);
}

MP_TEST(text_features_emoji) {
    char s[1024];
    mp_error err;
    CHECK_OK(features_str("好评👍👍 great😀 👍🏻!", NULL, s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "C:好|C:评|B:好评|S:👍|S:👍|W:great|S:😀|S:👍") == 0, "%s", s);
    /* An emoji between CJK characters breaks the bigram run. */
    CHECK_OK(features_str("好😀评", NULL, s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "C:好|S:😀|C:评") == 0, "%s", s);
}

MP_TEST(text_features_subword_ngrams_exact) {
    char s[1024];
    mp_error err;
    mp_text_feat_opts o;
    mp_text_feat_default(&o);
    o.minn = 3;
    o.maxn = 3;
    CHECK_OK(features_str("where", &o, s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "W:where|N:<wh|N:whe|N:her|N:ere|N:re>") == 0, "%s", s);
    o.minn = 2;
    o.maxn = 4;
    CHECK_OK(features_str("Öl 手", &o, s, sizeof s, &err), &err);
    /* n-grams of "<öl>" by start then length; CJK characters get none */
    CHECK_MSG(strcmp(s, "W:öl|N:<ö|N:<öl|N:<öl>|N:öl|N:öl>|N:l>|C:手") == 0, "%s", s);
    o.minn = 1;
    o.maxn = 1;
    CHECK_OK(features_str("ab", &o, s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "W:ab|N:a|N:b") == 0, "%s", s);
    /* the subword "her" hashes differently from the word "her"; words hash as mp_hash_bytes */
    mp_text_tokens *a, *b;
    o.minn = 3;
    o.maxn = 3;
    CHECK_OK(mp_text_features("where", 5, &o, &a, &err), &err);
    CHECK_OK(mp_text_features("her", 3, NULL, &b, &err), &err);
    CHECK_EQ(b->n, 1);
    CHECK(b->toks[0].hash == mp_hash_bytes("her", 3));
    CHECK(a->toks[3].len == 3 && memcmp(a->buf + a->toks[3].off, "her", 3) == 0);
    CHECK(a->toks[3].hash != b->toks[0].hash);
    CHECK(a->toks[0].hash == mp_hash_bytes("where", 5));
    mp_text_tokens_free(a);
    mp_text_tokens_free(b);
    o.minn = 4;
    o.maxn = 3;
    CHECK_EQ(features_str("x", &o, s, sizeof s, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "minn=4 maxn=3");
}

MP_TEST(text_features_word_bigrams) {
    char s[1024];
    mp_error err;
    mp_text_feat_opts o;
    mp_text_feat_default(&o);
    o.word_bigrams = 1;
    CHECK_OK(features_str("Red shoes, 跑鞋", &o, s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "W:red|W:shoes|G:red shoes|C:跑|G:shoes 跑|C:鞋|B:跑鞋") == 0, "%s", s);
}

MP_TEST(text_features_long_text) {
    const char *unit = "Hello 世界 wörld! ";
    size_t ul = strlen(unit), reps = (1u << 20) / ul + 1;
    char *big = malloc(reps * ul + 1);
    CHECK(big);
    for (size_t i = 0; i < reps; i++)
        memcpy(big + i * ul, unit, ul);
    big[reps * ul] = '\0';
    mp_text_tokens *r;
    mp_error err;
    int rc = mp_text_features(big, reps * ul, NULL, &r, &err);
    free(big);
    CHECK_OK(rc, &err);
    CHECK_EQ(r->n, reps * 5); /* hello 世 界 世界 wörld */
    CHECK_EQ(r->norm_len, reps * ul - 1);
    const mp_text_token *last = &r->toks[r->n - 1];
    CHECK(last->len == 6 && memcmp(r->buf + last->off, "wörld", 6) == 0);
    mp_text_tokens_free(r);
    /* one 256 KB word with subwords */
    size_t wl = 1u << 18;
    char *word = malloc(wl);
    CHECK(word);
    memset(word, 'a', wl);
    mp_text_feat_opts o;
    mp_text_feat_default(&o);
    o.minn = 3;
    o.maxn = 3;
    rc = mp_text_features(word, wl, &o, &r, &err);
    free(word);
    CHECK_OK(rc, &err);
    CHECK_EQ(r->n, 1 + wl); /* the word + (wl + 2) - 3 + 1 trigrams */
    mp_text_tokens_free(r);
}

/* ---- WordPiece ---- */

static const char WP_VOCAB[] = "[PAD]\n[UNK]\n[CLS]\nun\n##aff\n##able\nhello\n,\n!\n手\n机\n##s\nrun\n##ning\n"
                               "aff\n##a\n";

static void join_wp(const mp_wordpiece *wp, const uint32_t *ids, size_t n, char *out, size_t cap) {
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(out + o, cap - o, "%s%s", i ? " " : "", mp_wordpiece_token(wp, ids[i]));
        if (w < 0 || (size_t)w >= cap - o) return;
        o += (size_t)w;
    }
}

static int wp_str(const mp_wordpiece *wp, const char *text, char *out, size_t cap, mp_error *err) {
    uint32_t *ids;
    size_t n;
    int rc = mp_wordpiece_encode(wp, text, strlen(text), &ids, &n, err);
    if (rc != MP_OK) return rc;
    join_wp(wp, ids, n, out, cap);
    free(ids);
    return MP_OK;
}

MP_TEST(text_wordpiece_greedy_longest_match) {
    mp_wordpiece *wp;
    mp_error err;
    CHECK_OK(mp_wordpiece_load_mem(WP_VOCAB, strlen(WP_VOCAB), "vocab.txt", NULL, &wp, &err), &err);
    CHECK_EQ(mp_wordpiece_size(wp), 16);
    CHECK_EQ(mp_wordpiece_id(wp, "##aff", 5), 4);
    CHECK_EQ(mp_wordpiece_id(wp, "nope", 4), -1);
    uint32_t *ids;
    size_t n;
    CHECK_OK(mp_wordpiece_encode(wp, "unaffable", 9, &ids, &n, &err), &err);
    CHECK_EQ(n, 3);
    CHECK(ids[0] == 3 && ids[1] == 4 && ids[2] == 5); /* un ##aff ##able */
    free(ids);
    char s[512];
    CHECK_OK(wp_str(wp, "Hello, RUNNING runs!", s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "hello , run ##ning run ##s !") == 0, "%s", s);
    /* unsplittable words become one [UNK], even when a prefix matched */
    CHECK_OK(wp_str(wp, "xyz unaffablex hello", s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "[UNK] [UNK] hello") == 0, "%s", s);
    /* Chinese: one word per character */
    CHECK_OK(wp_str(wp, "手机壳", s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "手 机 [UNK]") == 0, "%s", s);
    CHECK_OK(mp_wordpiece_encode(wp, "", 0, &ids, &n, &err), &err);
    CHECK_EQ(n, 0);
    CHECK(ids == NULL);
    CHECK_OK(wp_str(wp, "😀", s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "[UNK]") == 0, "%s", s);
    CHECK_EQ(mp_wordpiece_encode(wp, "ab\xFF", 3, &ids, &n, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "byte offset 2");
    mp_wordpiece_free(wp);
    /* max chars per word; cased */
    mp_wordpiece_opts o;
    mp_wordpiece_default(&o);
    o.max_chars_per_word = 5;
    o.lowercase = 0;
    CHECK_OK(mp_wordpiece_load_mem(WP_VOCAB, strlen(WP_VOCAB), NULL, &o, &wp, &err), &err);
    CHECK_OK(wp_str(wp, "unaffable affa Hello", s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "[UNK] aff ##a [UNK]") == 0, "%s", s);
    mp_wordpiece_free(wp);
    mp_wordpiece_free(NULL);
}

MP_TEST(text_wordpiece_vocab_errors_name_file_line) {
    mp_wordpiece *wp = NULL;
    mp_error err;
    const char *v1 = "[UNK]\na\n\nb\n";
    CHECK_EQ(mp_wordpiece_load_mem(v1, strlen(v1), "v.txt", NULL, &wp, &err), MP_EINVAL);
    CHECK(wp == NULL);
    CHECK_CONTAINS(err.msg, "v.txt:3: empty token");
    const char *v2 = "[UNK]\na\r\nb\na\n";
    CHECK_EQ(mp_wordpiece_load_mem(v2, strlen(v2), "v.txt", NULL, &wp, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "v.txt:4: duplicate token \"a\"");
    const char *v3 = "a\nb";
    CHECK_EQ(mp_wordpiece_load_mem(v3, strlen(v3), "v.txt", NULL, &wp, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "\"[UNK]\" is not in the vocabulary");
    const char *v4 = "[UNK]\nok\nb\xC3\n";
    CHECK_EQ(mp_wordpiece_load_mem(v4, strlen(v4), "v.txt", NULL, &wp, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "v.txt:3: invalid UTF-8 at byte offset 1");
    const char *path = mp_test_write_file(t, "vocab.txt", "[UNK]\nhello\n\n");
    CHECK_EQ(mp_wordpiece_load(path, NULL, &wp, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "vocab.txt:3: empty token");
    path = mp_test_write_file(t, "vocab2.txt", "[UNK]\r\nhello\r\n");
    CHECK_OK(mp_wordpiece_load(path, NULL, &wp, &err), &err);
    CHECK_EQ(mp_wordpiece_id(wp, "hello", 5), 1);
    mp_wordpiece_free(wp);
    CHECK_EQ(mp_wordpiece_load("/nonexistent/vocab.txt", NULL, &wp, &err), MP_EIO);
    CHECK_CONTAINS(err.msg, "/nonexistent/vocab.txt");
}

/* ---- SentencePiece unigram ---- */

static const char UNI_VOCAB[] = "<unk>\t0\n<s>\t0\n</s>\t0\n▁\t-2\n▁the\t-3\n▁th\t-4\ne\t-3\n▁he\t-4\nllo\t-5\n"
                                "▁hello\t-6\nh\t-5\nl\t-6\no\t-6\n▁world\t-7\n▁wor\t-3\nld\t-3\n"
                                "手\t-5\n机\t-5\n壳\t-6\n手机\t-6\n手机壳\t-13\n机壳\t-8\n好\t-4\n很\t-4\n很好\t-6\n"
                                "用\t-5\n好用\t-5\n";

static int uni_str(const mp_unigram *u, const char *text, char *out, size_t cap, mp_error *err) {
    uint32_t *ids;
    size_t n, o = 0;
    int rc = mp_unigram_encode(u, text, strlen(text), &ids, &n, err);
    if (rc != MP_OK) return rc;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(out + o, cap - o, "%s%s", i ? " " : "", mp_unigram_piece(u, ids[i], NULL));
        if (w < 0 || (size_t)w >= cap - o) break;
        o += (size_t)w;
    }
    free(ids);
    return MP_OK;
}

MP_TEST(text_unigram_viterbi_english_and_chinese) {
    mp_unigram *u;
    mp_error err;
    CHECK_OK(mp_unigram_load_mem(UNI_VOCAB, strlen(UNI_VOCAB), "spm.vocab", NULL, &u, &err), &err);
    CHECK_EQ(mp_unigram_size(u), 27);
    float sc;
    CHECK(strcmp(mp_unigram_piece(u, 9, &sc), "▁hello") == 0);
    CHECK_NEAR(sc, -6, 1e-6);
    CHECK(mp_unigram_piece(u, 27, NULL) == NULL);
    char s[512];
    /* ▁hello (-6) beats ▁he + llo (-9); ▁wor + ld (-6) beats the longer ▁world (-7); ▁the beats ▁th + e */
    CHECK_OK(uni_str(u, "hello  world the", s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "▁hello ▁wor ld ▁the") == 0, "%s", s);
    /* 手机+壳 (-12) beats 手机壳 (-13) and 手+机壳 (-13); 很+好用 (-9) beats 很好+用 (-11) */
    CHECK_OK(uni_str(u, "手机壳很好用", s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "▁ 手机 壳 很 好用") == 0, "%s", s);
    /* unknown characters -> <unk>, consecutive ones merged; control pieces never match text */
    CHECK_OK(uni_str(u, "hello zz<s>", s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "▁hello ▁ <unk>") == 0, "%s", s);
    CHECK_OK(uni_str(u, "好😀好", s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "▁ 好 <unk> 好") == 0, "%s", s);
    /* full-width input is normalised first; empty text gives no pieces */
    CHECK_OK(uni_str(u, "ｈｅｌｌｏ", s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "▁hello") == 0, "%s", s);
    uint32_t *ids;
    size_t n;
    CHECK_OK(mp_unigram_encode(u, "  ", 2, &ids, &n, &err), &err);
    CHECK_EQ(n, 0);
    CHECK_EQ(mp_unigram_encode(u, "a\xC3", 2, &ids, &n, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "byte offset 1");
    mp_unigram_free(u);
    /* a configurable unk id, no prefix mark */
    mp_unigram_opts o;
    mp_unigram_default(&o);
    o.unk_id = 3;
    o.add_prefix_space = 0;
    CHECK_OK(mp_unigram_load_mem(UNI_VOCAB, strlen(UNI_VOCAB), NULL, &o, &u, &err), &err);
    CHECK_OK(uni_str(u, "x好", s, sizeof s, &err), &err);
    CHECK_MSG(strcmp(s, "▁ 好") == 0, "%s", s); /* id 3 is "▁": x became the configured unk id */
    mp_unigram_free(u);
    mp_unigram_free(NULL);
}

MP_TEST(text_unigram_long_text) {
    const char *unit = "hello world 手机壳很好用 ";
    size_t ul = strlen(unit), reps = (1u << 20) / ul + 1;
    char *big = malloc(reps * ul + 1);
    CHECK(big);
    for (size_t i = 0; i < reps; i++)
        memcpy(big + i * ul, unit, ul);
    mp_unigram *u;
    mp_error err;
    CHECK_OK(mp_unigram_load_mem(UNI_VOCAB, strlen(UNI_VOCAB), NULL, NULL, &u, &err), &err);
    uint32_t *ids;
    size_t n;
    int rc = mp_unigram_encode(u, big, reps * ul, &ids, &n, &err);
    free(big);
    CHECK_OK(rc, &err);
    CHECK_EQ(n, reps * 8); /* ▁hello ▁wor ld ▁ 手机 壳 很 好用 */
    CHECK_EQ(ids[n - 1], mp_unigram_id(u, "好用", strlen("好用")));
    free(ids);
    mp_unigram_free(u);
}

MP_TEST(text_unigram_vocab_errors_name_file_line) {
    mp_unigram *u = NULL;
    mp_error err;
    const char *v1 = "<unk>\t0\na\t-1\nb -2\n";
    CHECK_EQ(mp_unigram_load_mem(v1, strlen(v1), "m.vocab", NULL, &u, &err), MP_EINVAL);
    CHECK(u == NULL);
    CHECK_CONTAINS(err.msg, "m.vocab:3: expected \"piece<TAB>score\"");
    const char *v2 = "<unk>\t0\na\tabc\n";
    CHECK_EQ(mp_unigram_load_mem(v2, strlen(v2), "m.vocab", NULL, &u, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "m.vocab:2: score: expected a finite number, got \"abc\"");
    const char *v3 = "<unk>\t0\na\t-1\na\t-2\n";
    CHECK_EQ(mp_unigram_load_mem(v3, strlen(v3), "m.vocab", NULL, &u, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "m.vocab:3: duplicate piece \"a\"");
    const char *v4 = "a\t-1\n";
    CHECK_EQ(mp_unigram_load_mem(v4, strlen(v4), "m.vocab", NULL, &u, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "\"<unk>\" is not in the vocabulary");
    CHECK_EQ(mp_unigram_load_mem("", 0, "m.vocab", NULL, &u, &err), MP_EEMPTY);
    const char *path = mp_test_write_file(t, "zh.vocab", "<unk>\t0\n好\t-1\n\t-2\n");
    CHECK_EQ(mp_unigram_load(path, NULL, &u, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "zh.vocab:3: empty piece");
    path = mp_test_write_file(t, "ok.vocab", "<unk>\t0\n▁好\t-1.5\n");
    CHECK_OK(mp_unigram_load(path, NULL, &u, &err), &err);
    CHECK_EQ(mp_unigram_id(u, "▁好", strlen("▁好")), 1);
    mp_unigram_free(u);
}
