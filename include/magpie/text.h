/* magpie/text.h: text normalisation and tokenizers for product titles, descriptions, reviews and queries
 * (Chinese and English, and mixed).
 *
 * - Normalisation: strict UTF-8 decoding (invalid input is an error naming the byte offset, never passed
 *   through), full-width ASCII variants to half-width, case folding, whitespace collapsing.
 * - Feature tokenizer (for hashed-feature classifiers and search): CJK characters and bigrams of consecutive
 *   CJK characters; words of other scripts split on non-alphanumerics, with optional fastText-style subword
 *   character n-grams and word bigrams; each token carries a stable 64-bit hash.
 * - WordPiece (BERT) and SentencePiece-unigram tokenizers over pretrained vocabularies loaded from text files.
 *
 * Case folding covers: ASCII, Latin-1 Supplement (U+00C0..U+00DE), Latin Extended-A (U+0100..U+017F), Greek
 * (U+0386..U+03AB, final sigma folded to sigma) and Cyrillic (U+0400..U+052F) simple lowercase mappings. Other
 * scripts are left as they are; mp_text_normalize applies no Unicode normalisation form (NFC/NFKC) and strips no
 * accents. Unicode NFKC itself is available separately as mp_text_nfkc (ICU), for tokenizers that need it.
 *
 * Thread safety: the free functions keep no state and may run on any thread. A loaded mp_wordpiece / mp_unigram is
 * immutable: any number of threads may encode with (and look up in) one at once; free must not race them. */
#ifndef MAGPIE_TEXT_H
#define MAGPIE_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- UTF-8 ---------------------------------------------------------------------------------------------------- */

/* Decodes one code point from s[0..len). Returns the bytes used (1..4), or 0 for an invalid or truncated sequence
 * (overlong forms, surrogates and values above U+10FFFF are invalid). */
MP_EXPORT int mp_utf8_decode(const char *s, size_t len, uint32_t *cp);
/* Encodes cp into out (at least 4 bytes). Returns the bytes written, or 0 if cp is not a scalar value. */
MP_EXPORT int mp_utf8_encode(uint32_t cp, char *out);
/* MP_OK if s[0..len) is valid UTF-8; otherwise MP_EINVAL, *bad_offset (may be NULL) = offset of the first bad
 * byte, and err says "invalid UTF-8 at byte offset N (byte 0xXX)".
 * Errors: MP_EINVAL (invalid UTF-8). */
MP_EXPORT int mp_utf8_validate(const char *s, size_t len, size_t *bad_offset, mp_error *err);

/* Full-width ASCII variant (U+FF01..U+FF5E) -> ASCII, ideographic space U+3000 -> ' '; others unchanged. */
MP_EXPORT uint32_t mp_text_halfwidth(uint32_t cp);
/* Simple lowercase mapping for the scripts listed at the top of this header; others unchanged. */
MP_EXPORT uint32_t mp_text_fold_case(uint32_t cp);

/* ---- normalisation -------------------------------------------------------------------------------------------- */

typedef struct mp_text_norm_opts {
    int halfwidth;      /* full-width ASCII variants and U+3000 to half-width (default 1) */
    int casefold;       /* lowercase (default 1) */
    int collapse_space; /* whitespace and control runs -> one ' ', trimmed at both ends (default 1) */
} mp_text_norm_opts;

MP_EXPORT void mp_text_norm_default(mp_text_norm_opts *opts);

/* Normalises s[0..len) (opts NULL = defaults). On MP_OK *out is a new NUL-terminated string owned by the caller
 * (free()), *out_len its length (may be NULL). Invalid UTF-8 -> MP_EINVAL naming the byte offset; MP_ENOMEM.
 * Errors: MP_EINVAL (invalid UTF-8, or s NULL with len > 0), MP_ENOMEM. */
MP_EXPORT int mp_text_normalize(const char *s, size_t len, const mp_text_norm_opts *opts, char **out, size_t *out_len,
                                mp_error *err);

/* ---- feature tokenizer ---------------------------------------------------------------------------------------- */

typedef enum {
    MP_TOK_WORD = 0,        /* a word of a non-CJK script (letters and digits) */
    MP_TOK_CJK = 1,         /* one Han ideograph, kana or hangul character */
    MP_TOK_CJK_BIGRAM = 2,  /* two consecutive CJK characters */
    MP_TOK_SYMBOL = 3,      /* one emoji or pictographic symbol */
    MP_TOK_SUBWORD = 4,     /* a character n-gram of "<word>" */
    MP_TOK_WORD_BIGRAM = 5, /* two consecutive tokens joined by ' ' (words, CJK characters or symbols) */
} mp_text_tok_kind;

typedef struct mp_text_token {
    uint32_t off, len; /* slice of mp_text_tokens.buf */
    uint32_t kind;     /* mp_text_tok_kind */
    uint64_t hash;     /* mp_hash_bytes of the slice for WORD/CJK/SYMBOL; for the other kinds mixed with the kind,
                          so the subword "her" and the word "her" are different features */
} mp_text_token;

typedef struct mp_text_feat_opts {
    mp_text_norm_opts norm;
    int cjk_unigrams; /* emit each CJK character (default 1) */
    int cjk_bigrams;  /* emit bigrams of consecutive CJK characters (default 1) */
    int word_bigrams; /* emit bigrams of consecutive unigram tokens (default 0) */
    int minn, maxn;   /* subword n-gram lengths in code points incl. the '<' '>' markers; maxn 0 = none
                         (default 0, 0; fastText uses 3, 6) */
} mp_text_feat_opts;

/* The result: owned by the caller, freed with mp_text_tokens_free. buf holds the normalised text
 * (buf[0..norm_len), NUL-terminated) followed by synthesised token strings (subwords, word bigrams). Tokens are
 * in text order: each unigram followed by its subwords; CJK bigrams after the character that ends them; word
 * bigrams after their second token. */
typedef struct mp_text_tokens {
    char *buf;
    size_t norm_len, buf_len, buf_cap;
    mp_text_token *toks;
    size_t n, cap;
} mp_text_tokens;

MP_EXPORT void mp_text_feat_default(mp_text_feat_opts *opts);
/* Normalises and tokenizes s[0..len) (opts NULL = defaults). On MP_OK *out is a new result (possibly with n == 0).
 * MP_EINVAL for invalid UTF-8 (byte offset in err) or bad options (minn < 1 or minn > maxn when maxn > 0),
 * MP_ERANGE for text of 4 GiB or more, MP_ENOMEM.
 * Errors: MP_EINVAL (invalid UTF-8, bad subword options), MP_ERANGE (text or token buffer of 4 GiB or more),
 * MP_ENOMEM. */
MP_EXPORT int mp_text_features(const char *s, size_t len, const mp_text_feat_opts *opts, mp_text_tokens **out,
                               mp_error *err);
/* Frees a result; NULL is a no-op. */
MP_EXPORT void mp_text_tokens_free(mp_text_tokens *toks);

/* ---- WordPiece (BERT) ----------------------------------------------------------------------------------------- */

typedef struct mp_wordpiece mp_wordpiece;

typedef struct mp_wordpiece_opts {
    const char *unk_token;   /* default "[UNK]"; must be in the vocabulary */
    const char *cont_prefix; /* default "##" */
    int max_chars_per_word;  /* longer words -> [UNK]; default 100 */
    int lowercase;           /* case folding before splitting (uncased models); default 1 */
} mp_wordpiece_opts;

MP_EXPORT void mp_wordpiece_default(mp_wordpiece_opts *opts);
/* Loads a vocabulary: one token per line, id = line number from 0 ('\r' before '\n' is ignored). Errors name
 * "file:line": empty token, duplicate token, invalid UTF-8; a missing unk token is MP_EINVAL. On MP_OK *out is
 * owned by the caller (mp_wordpiece_free). opts NULL = defaults; the strings in opts are copied.
 * Errors: MP_EINVAL (empty or duplicate token, invalid UTF-8, the unk token missing, unk_token or cont_prefix NULL,
 * max_chars_per_word < 1), MP_ERANGE (2^32 - 1 lines or more), MP_EIO (load: the file cannot be opened or read;
 * also a missing file), MP_ENOMEM. An empty file gives MP_EINVAL (the unk token is missing). */
MP_EXPORT int mp_wordpiece_load(const char *path, const mp_wordpiece_opts *opts, mp_wordpiece **out, mp_error *err);
/* The same from memory; `name` (may be NULL: "<memory>") is used in error messages.
 * Errors: as mp_wordpiece_load without MP_EIO. */
MP_EXPORT int mp_wordpiece_load_mem(const char *data, size_t len, const char *name, const mp_wordpiece_opts *opts,
                                    mp_wordpiece **out, mp_error *err);
MP_EXPORT void mp_wordpiece_free(mp_wordpiece *wp);
MP_EXPORT size_t mp_wordpiece_size(const mp_wordpiece *wp);
/* Id of a token, or -1. */
MP_EXPORT int64_t mp_wordpiece_id(const mp_wordpiece *wp, const char *token, size_t len);
/* Token text for an id (NUL-terminated, owned by wp), or NULL. */
MP_EXPORT const char *mp_wordpiece_token(const mp_wordpiece *wp, uint32_t id);
/* BERT basic tokenization (normalisation, split on whitespace, punctuation and around each CJK character) then
 * greedy longest-match-first WordPiece per word; a word that cannot be split entirely is one [UNK].
 * On MP_OK *ids (caller frees; NULL when *n == 0) holds *n token ids. MP_EINVAL for invalid UTF-8; MP_ENOMEM.
 * Errors: MP_EINVAL (invalid UTF-8), MP_ENOMEM. */
MP_EXPORT int mp_wordpiece_encode(const mp_wordpiece *wp, const char *s, size_t len, uint32_t **ids, size_t *n,
                                  mp_error *err);

/* ---- SentencePiece unigram ------------------------------------------------------------------------------------ */

typedef struct mp_unigram mp_unigram;

typedef struct mp_unigram_opts {
    mp_text_norm_opts norm; /* default: half-width 1, casefold 0, collapse 1 */
    const char *unk_piece;  /* used when unk_id < 0; default "<unk>" */
    int64_t unk_id;         /* id for unknown characters; -1 (default) = the id of unk_piece */
    int add_prefix_space;   /* prepend "▁" (default 1) */
} mp_unigram_opts;

MP_EXPORT void mp_unigram_default(mp_unigram_opts *opts);
/* Loads "piece<TAB>score" lines (a SentencePiece .vocab file); id = line number from 0. Errors name "file:line":
 * missing tab, bad score, empty or duplicate piece, invalid UTF-8 (MP_EINVAL); no lines at all is MP_EEMPTY. The
 * unk piece must exist (or unk_id be in range). Pieces "<unk>", "<s>", "</s>", "<pad>" and the unk piece never match
 * text. On MP_OK *out is owned by the caller (mp_unigram_free).
 * Errors: MP_EINVAL (a bad line as listed, the unk piece missing, unk_id out of range), MP_EEMPTY (no lines),
 * MP_ERANGE (2^32 - 1 lines or more), MP_EIO (load only: the file cannot be opened or read, also a missing file),
 * MP_ENOMEM. load_mem: the same without MP_EIO; `name` as for mp_wordpiece_load_mem. */
MP_EXPORT int mp_unigram_load(const char *path, const mp_unigram_opts *opts, mp_unigram **out, mp_error *err);
MP_EXPORT int mp_unigram_load_mem(const char *data, size_t len, const char *name, const mp_unigram_opts *opts,
                                  mp_unigram **out, mp_error *err);
MP_EXPORT void mp_unigram_free(mp_unigram *u);
MP_EXPORT size_t mp_unigram_size(const mp_unigram *u);
MP_EXPORT int64_t mp_unigram_id(const mp_unigram *u, const char *piece, size_t len);
/* Piece text for an id (NUL-terminated, owned by u), or NULL; *score (may be NULL) gets its score. */
MP_EXPORT const char *mp_unigram_piece(const mp_unigram *u, uint32_t id, float *score);
/* Normalises, replaces ' ' by "▁" (U+2581), prepends "▁", and finds the segmentation with the largest sum of
 * scores (Viterbi). A character no piece covers becomes the unk id (score: lowest score - 10); consecutive unknown
 * characters are merged into one unk. On MP_OK *ids (caller frees; NULL when *n == 0) holds *n ids.
 * Errors: MP_EINVAL (invalid UTF-8), MP_ENOMEM. */
MP_EXPORT int mp_unigram_encode(const mp_unigram *u, const char *s, size_t len, uint32_t **ids, size_t *n,
                                mp_error *err);

/* ---- Unicode NFKC ------------------------------------------------------------------------------------------------ */

/* Unicode NFKC (compatibility decomposition, canonical composition) of s[0..len) by ICU, as JavaScript's
 * String.prototype.normalize("NFKC") gives it. On MP_OK *out is a new NUL-terminated string owned by the caller
 * (free()), *out_len its length (may be NULL). Invalid UTF-8 -> MP_EINVAL naming the byte offset; MP_ENOMEM;
 * MP_EIO if ICU fails (its error name in the message).
 * Errors: MP_EINVAL (invalid UTF-8, or s NULL with len > 0), MP_ERANGE (non-ASCII text over 512 MiB, too long for
 * ICU's 32-bit lengths), MP_EIO (ICU failed), MP_ENOMEM. */
MP_EXPORT int mp_text_nfkc(const char *s, size_t len, char **out, size_t *out_len, mp_error *err);

#ifdef __cplusplus
}
#endif
#endif
