/* Internal layout of the Universal Sentence Encoder Lite model (see include/magpie/use.h). Shared by
 * use_load.c (model.json, shards, vocab.json), use_tokenize.c (the JS package's tokenizer) and use.c (forward). */
#ifndef MAGPIE_USE_INTERNAL_H
#define MAGPIE_USE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/strmap.h"
#include "magpie/use.h"

#define USE_EMB_DIM 256 /* token embedding width (Layer_0 input) */
#define USE_HID 512     /* hidden width after Layer_0 */
#define USE_FFN 1536    /* FFN inner width */
#define USE_HEADS 4     /* attention heads in both layers */
#define USE_RESERVED 6  /* vocabulary entries 0..5 never match text (the JS tokenizer's reservedSymbolsCount) */
#define USE_UNK_ID 0    /* id of a character no piece covers */

/* One transformer layer. All matrices are TF's [in, out] row-major: y (T,out) = x (T,in) W (in,out) + b. */
typedef struct use_layer {
    int d_in;            /* 256 for Layer_0, 512 for Layer_1 (attention width == input width) */
    const float *ln1_g;  /* (d_in) pre-attention layer norm scale */
    const float *ln1_b;  /* (d_in) */
    const float *qkv_w;  /* (d_in, 3 d_in): q | k | v, each split into USE_HEADS heads of d_in / USE_HEADS */
    const float *qkv_b;  /* (3 d_in) */
    float q_scale;       /* 1/sqrt(head dim), from the graph */
    const float *out_w;  /* (d_in, 512) */
    const float *out_b;  /* (512) */
    const float *res_w;  /* Layer_0 only: (256, 512) projection of the residual input; NULL in Layer_1 */
    const float *res_b;  /* (512) */
    const float *ln2_g;  /* (512) pre-FFN layer norm */
    const float *ln2_b;  /* (512) */
    const float *ffn1_w; /* (512, 1536), then ReLU */
    const float *ffn1_b; /* (1536) */
    const float *ffn2_w; /* (1536, 512) */
    const float *ffn2_b; /* (512) */
} use_layer;

struct mp_use {
    float *weights; /* all shards concatenated (owned); the pointers below point into it */
    size_t weights_bytes;
    const float *emb; /* (n_emb, 256) token embeddings */
    size_t n_emb;
    const float *inv_timescales; /* (128) timing signal frequencies */
    use_layer layer[2];
    const float *tanh_w; /* (512, 512) */
    const float *tanh_b; /* (512) */
    float ln_eps;        /* layer norm epsilon (1e-6 in the graph) */
    float l2_eps;        /* l2_normalize floor on the squared norm (1e-12) */
    int max_len;         /* tokens after this many are dropped (ClipToMaxLength, 128) */

    /* tokenizer */
    size_t n_vocab;
    mp_strmap *pieces;      /* piece text -> dense key id (vocabulary entries >= USE_RESERVED) */
    uint32_t *key_vocab_id; /* key id -> vocabulary id (a later duplicate wins, as in the JS trie) */
    double *key_score;      /* key id -> score */
    uint32_t *key_cps;      /* key id -> length in code points */
    uint32_t *vocab_utf16;  /* vocabulary id -> JS string length (UTF-16 units), used when backtracking */
    uint32_t max_piece_cps; /* longest piece in code points */
};

/* Tokenizes already validated UTF-8 text; see mp_use_tokenize. */
int use_tokenize_valid(const mp_use *m, const char *s, size_t len, uint32_t **ids, size_t *n, mp_error *err);

#endif
