/* src/text/skipgram.c: unsupervised subword skip-gram embeddings with negative sampling (fastText's skipgram mode).
 *
 * Input rows: [0, nv) one per frequent word (count >= min_count, ordered by count), then one per hashed
 * character n-gram bucket seen in training (rows are handed out as buckets are first met, as textclf does, so
 * memory is rows_used x dim). A word's input vector is the mean of its own row (if frequent) and its n-gram rows;
 * output rows exist for frequent words only (the context targets and negatives). */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/linalg.h"
#include "magpie/rng.h"
#include "magpie/skipgram.h"
#include "magpie/strmap.h"
#include "magpie/text.h"
#include "text/text_internal.h"

#define SG_SECTION_VERSION 1u
#define SG_NO_WORD UINT32_MAX

struct mp_skipgram {
    mp_skipgram_opts o;
    mp_text_feat_opts fo; /* unigrams (words, CJK characters, symbols) with their subwords minn..maxn */
    mp_strmap *words;     /* frequent word -> id = its input row, 0..nv-1 */
    size_t nv;
    txt_u64map row_of; /* n-gram bucket -> input row (nv..n_rows-1) */
    size_t n_rows;
    float *in; /* n_rows x dim */
};

void mp_skipgram_default(mp_skipgram_opts *opts) {
    opts->dim = 100;
    opts->window = 5;
    opts->epochs = 5;
    opts->negatives = 5;
    opts->min_count = 2;
    opts->minn = 3;
    opts->maxn = 6;
    opts->n_buckets = 2000000;
    opts->lr = 0.05f;
    opts->sample = 1e-4;
    opts->threads = 1;
    opts->seed = 1;
}

void mp_skipgram_free(mp_skipgram *m) {
    if (!m) return;
    mp_strmap_destroy(m->words);
    txt_u64map_free(&m->row_of);
    free(m->in);
    free(m);
}

int mp_skipgram_dim(const mp_skipgram *m) {
    return m->o.dim;
}
size_t mp_skipgram_vocab_size(const mp_skipgram *m) {
    return m->nv;
}

static void feat_opts(const mp_skipgram_opts *o, mp_text_feat_opts *fo) {
    mp_text_feat_default(fo);
    fo->cjk_bigrams = 0;
    fo->word_bigrams = 0;
    fo->minn = o->maxn > 0 ? o->minn : 0;
    fo->maxn = o->maxn;
}

static int check_opts(const mp_skipgram_opts *o, mp_error *err) {
    if (o->dim < 1 || o->dim > 4096)
        return mp_error_set(err, MP_EINVAL, "skipgram: dim must be in 1..4096, got %d", o->dim);
    if (o->window < 1 || o->window > 1000)
        return mp_error_set(err, MP_EINVAL, "skipgram: window must be in 1..1000, got %d", o->window);
    if (o->epochs < 1) return mp_error_set(err, MP_EINVAL, "skipgram: epochs must be >= 1, got %d", o->epochs);
    if (o->negatives < 1 || o->negatives > 1000)
        return mp_error_set(err, MP_EINVAL, "skipgram: negatives must be in 1..1000, got %d", o->negatives);
    if (o->min_count < 1) return mp_error_set(err, MP_EINVAL, "skipgram: min_count must be >= 1, got %d", o->min_count);
    if (o->maxn < 0 || o->maxn > 64 || (o->maxn > 0 && (o->minn < 1 || o->minn > o->maxn)))
        return mp_error_set(err, MP_EINVAL,
                            "skipgram: subword lengths minn=%d maxn=%d: need 1 <= minn <= maxn <= 64 (or maxn 0)",
                            o->minn, o->maxn);
    if (o->maxn > 0 && (o->n_buckets < 1 || o->n_buckets >= TXT_MAP_NONE))
        return mp_error_set(err, MP_EINVAL, "skipgram: n_buckets must be in 1..%u, got %u", TXT_MAP_NONE - 1,
                            o->n_buckets);
    if (!(o->lr > 0) || !isfinite(o->lr))
        return mp_error_set(err, MP_EINVAL, "skipgram: lr must be a positive number, got %g", (double)o->lr);
    if (!(o->sample >= 0) || !isfinite(o->sample))
        return mp_error_set(err, MP_EINVAL, "skipgram: sample must be >= 0 (0 = no subsampling), got %g", o->sample);
    if (o->threads < 1 || o->threads > 256)
        return mp_error_set(err, MP_EINVAL, "skipgram: threads must be in 1..256, got %d", o->threads);
    return MP_OK;
}

static int is_unigram(uint32_t kind) {
    return kind == MP_TOK_WORD || kind == MP_TOK_CJK || kind == MP_TOK_SYMBOL;
}

/* ---- training ------------------------------------------------------------------------------------------------- */

typedef struct {
    mp_skipgram *m;
    float *out;              /* nv x dim output rows */
    const size_t *text_off;  /* n_texts + 1 offsets into seq */
    const uint32_t *seq;     /* all-word ids */
    const uint32_t *w_off;   /* n_all + 1 offsets into w_rows */
    const uint32_t *w_rows;  /* input rows of each all-word */
    const uint32_t *w_model; /* all-word -> frequent id, or SG_NO_WORD */
    const float *keep;       /* n_all keep probabilities (subsampling) */
    const uint32_t *table;   /* negative sampling table */
    size_t table_n;
    size_t t_lo, t_hi; /* this thread's texts */
    uint64_t seed;
    double work_total; /* tokens this thread processes over all epochs */
    int status;
} worker;

static inline float sigmoidf(float x) {
    if (x > 16) return 1.0f;
    if (x < -16) return 0.0f;
    return 1.0f / (1.0f + expf(-x));
}

static void *train_worker(void *arg) {
    worker *w = arg;
    mp_skipgram *m = w->m;
    const size_t dim = (size_t)m->o.dim;
    size_t maxlen = 0;
    for (size_t t = w->t_lo; t < w->t_hi; t++)
        if (w->text_off[t + 1] - w->text_off[t] > maxlen) maxlen = w->text_off[t + 1] - w->text_off[t];
    float *hid = malloc(2 * dim * sizeof *hid);
    uint32_t *line = malloc((maxlen + 1) * sizeof *line);
    if (!hid || !line) {
        free(hid);
        free(line);
        w->status = MP_ENOMEM;
        return NULL;
    }
    float *grad = hid + dim;
    mp_rng rng;
    mp_rng_seed(&rng, w->seed);
    double done = 0;
    const int win = m->o.window, neg = m->o.negatives;
    for (int ep = 0; ep < m->o.epochs; ep++) {
        for (size_t t = w->t_lo; t < w->t_hi; t++) {
            const size_t a = w->text_off[t], b = w->text_off[t + 1];
            double frac = 1.0 - done / w->work_total;
            if (frac < 0) frac = 0;
            const float lr = (float)(m->o.lr * frac);
            done += (double)(b - a);
            size_t n = 0;
            for (size_t i = a; i < b; i++) {
                const uint32_t id = w->seq[i];
                if (w->w_off[id] == w->w_off[id + 1]) continue; /* no input row at all */
                if (w->keep[id] < 1.0f && mp_rng_uniform(&rng) > w->keep[id]) continue;
                line[n++] = id;
            }
            for (size_t c = 0; c < n; c++) {
                const uint32_t *rows = w->w_rows + w->w_off[line[c]];
                const size_t nr = w->w_off[line[c] + 1] - w->w_off[line[c]];
                const int bw = 1 + (int)mp_rng_below(&rng, (uint64_t)win);
                /* hidden = mean of the centre word's input rows, computed once for its window; the input gradient
                 * of all its context words is summed and applied once (the output rows are updated at once). */
                int any = 0;
                for (int d = -bw; d <= bw; d++) {
                    const ptrdiff_t at = (ptrdiff_t)c + d;
                    if (d == 0 || at < 0 || at >= (ptrdiff_t)n) continue;
                    const uint32_t target = w->w_model[line[at]];
                    if (target == SG_NO_WORD) continue;
                    if (!any) {
                        memset(hid, 0, dim * sizeof *hid);
                        for (size_t r = 0; r < nr; r++) {
                            const float *e = m->in + (size_t)rows[r] * dim;
                            for (size_t j = 0; j < dim; j++)
                                hid[j] += e[j];
                        }
                        const float inv = 1.0f / (float)nr;
                        for (size_t j = 0; j < dim; j++)
                            hid[j] *= inv;
                        memset(grad, 0, dim * sizeof *grad);
                        any = 1;
                    }
                    for (int s = 0; s <= neg; s++) {
                        uint32_t o;
                        float label;
                        if (s == 0) {
                            o = target;
                            label = 1.0f;
                        } else {
                            if (m->nv < 2) break;
                            do
                                o = w->table[mp_rng_below(&rng, w->table_n)];
                            while (o == target);
                            label = 0.0f;
                        }
                        float *ov = w->out + (size_t)o * dim;
                        float dot = mp_dot_seq(ov, hid, dim);
                        const float g = lr * (label - sigmoidf(dot));
                        for (size_t j = 0; j < dim; j++) {
                            grad[j] += g * ov[j];
                            ov[j] += g * hid[j];
                        }
                    }
                }
                if (!any) continue;
                for (size_t r = 0; r < nr; r++) {
                    float *e = m->in + (size_t)rows[r] * dim;
                    for (size_t j = 0; j < dim; j++)
                        e[j] += grad[j];
                }
            }
        }
    }
    free(hid);
    free(line);
    w->status = MP_OK;
    return NULL;
}

typedef struct {
    uint32_t id;
    uint64_t count;
} wc;

static int cmp_wc(const void *a, const void *b) {
    const wc *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Appends to a growable uint32 array. */
static int push_u32(uint32_t **a, size_t *n, size_t *cap, uint32_t v) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 1024;
        uint32_t *na = realloc(*a, nc * sizeof *na);
        if (!na) return MP_ENOMEM;
        *a = na;
        *cap = nc;
    }
    (*a)[(*n)++] = v;
    return MP_OK;
}

int mp_skipgram_train(const char *const *texts, const size_t *lens, size_t n, const mp_skipgram_opts *opts,
                      mp_skipgram **out, mp_error *err) {
    *out = NULL;
    mp_skipgram_opts o;
    if (opts)
        o = *opts;
    else
        mp_skipgram_default(&o);
    int rc = check_opts(&o, err);
    if (rc) return rc;
    if (n && !texts) return mp_error_set(err, MP_EINVAL, "skipgram: texts must not be NULL");

    mp_skipgram *m = calloc(1, sizeof *m);
    mp_strmap *all = NULL;
    size_t *text_off = malloc((n + 1) * sizeof *text_off);
    uint32_t *seq = NULL, *counts = NULL, *w_off = NULL, *w_rows = NULL, *w_model = NULL, *table = NULL;
    size_t n_seq = 0, cap_seq = 0, n_cnt = 0, cap_cnt = 0, n_wr = 0, cap_wr = 0;
    float *keep = NULL, *outm = NULL;
    wc *order = NULL;
    worker *ws = NULL;
    pthread_t *tids = NULL;
    if (!m || !text_off || mp_strmap_create(&all, 1024) != MP_OK) goto oom;
    m->o = o;
    feat_opts(&o, &m->fo);
    mp_text_feat_opts fo_words = m->fo;
    fo_words.minn = fo_words.maxn = 0;

    /* 1. The corpus as a sequence of word ids; counts. */
    for (size_t i = 0; i < n; i++) {
        text_off[i] = n_seq;
        if (!texts[i]) continue;
        mp_text_tokens *tk = NULL;
        rc = mp_text_features(texts[i], lens ? lens[i] : strlen(texts[i]), &fo_words, &tk, err);
        if (rc) {
            mp_error_prefix(err, "skipgram: text %zu", i);
            goto fail;
        }
        for (size_t t = 0; t < tk->n; t++) {
            if (!is_unigram(tk->toks[t].kind)) continue;
            uint32_t id;
            int ins;
            if (mp_strmap_intern(all, tk->buf + tk->toks[t].off, tk->toks[t].len, &id, &ins) != MP_OK ||
                (ins && push_u32(&counts, &n_cnt, &cap_cnt, 0) != MP_OK) || push_u32(&seq, &n_seq, &cap_seq, id)) {
                mp_text_tokens_free(tk);
                goto oom;
            }
            counts[id]++;
        }
        mp_text_tokens_free(tk);
    }
    text_off[n] = n_seq;
    if (n_seq == 0) {
        rc = mp_error_set(err, MP_EEMPTY, "skipgram: none of the %zu texts has a word", n);
        goto fail;
    }
    const size_t n_all = n_cnt;

    /* 2. Frequent words, most frequent first, become the vocabulary. */
    order = malloc(n_all * sizeof *order);
    w_model = malloc(n_all * sizeof *w_model);
    if (!order || !w_model || mp_strmap_create(&m->words, 1024) != MP_OK) goto oom;
    size_t nv = 0;
    for (size_t i = 0; i < n_all; i++) {
        w_model[i] = SG_NO_WORD;
        if (counts[i] >= (uint32_t)o.min_count) order[nv++] = (wc){(uint32_t)i, counts[i]};
    }
    if (nv == 0) {
        rc = mp_error_set(err, MP_EEMPTY, "skipgram: no word occurs min_count=%d times (%zu distinct words)",
                          o.min_count, n_all);
        goto fail;
    }
    qsort(order, nv, sizeof *order, cmp_wc);
    for (size_t i = 0; i < nv; i++) {
        size_t klen;
        const char *key = mp_strmap_key(all, order[i].id, &klen);
        uint32_t id;
        if (mp_strmap_intern(m->words, key, klen, &id, NULL) != MP_OK) goto oom;
        w_model[order[i].id] = id;
    }
    m->nv = nv;
    m->n_rows = nv;

    /* 3. Input rows of every word: its own row (frequent words) and its n-gram buckets. */
    w_off = malloc((n_all + 1) * sizeof *w_off);
    if (!w_off) goto oom;
    for (size_t i = 0; i < n_all; i++) {
        w_off[i] = (uint32_t)n_wr;
        if (w_model[i] != SG_NO_WORD && push_u32(&w_rows, &n_wr, &cap_wr, w_model[i]) != MP_OK) goto oom;
        if (o.maxn == 0) continue;
        size_t klen;
        const char *key = mp_strmap_key(all, (uint32_t)i, &klen);
        mp_text_tokens *tk = NULL;
        rc = mp_text_features(key, klen, &m->fo, &tk, err);
        if (rc) goto fail;
        for (size_t t = 0; t < tk->n; t++) {
            if (tk->toks[t].kind != MP_TOK_SUBWORD) continue;
            uint32_t row;
            int ins;
            if (txt_u64map_intern(&m->row_of, tk->toks[t].hash % o.n_buckets, (uint32_t)m->n_rows, &row, &ins) !=
                    MP_OK ||
                push_u32(&w_rows, &n_wr, &cap_wr, row) != MP_OK) {
                mp_text_tokens_free(tk);
                goto oom;
            }
            if (ins) m->n_rows++;
        }
        mp_text_tokens_free(tk);
        if (n_wr >= UINT32_MAX) {
            rc = mp_error_set(err, MP_ERANGE, "skipgram: too many n-gram occurrences in the vocabulary");
            goto fail;
        }
    }
    w_off[n_all] = (uint32_t)n_wr;

    /* 4. Subsampling (fastText: keep with probability sqrt(t/f) + t/f) and the negative table (count^0.75). */
    keep = malloc(n_all * sizeof *keep);
    if (!keep) goto oom;
    for (size_t i = 0; i < n_all; i++) {
        const double f = (double)counts[i] / (double)n_seq;
        keep[i] = o.sample > 0 ? (float)fmin(1.0, sqrt(o.sample / f) + o.sample / f) : 1.0f;
    }
    double z = 0;
    for (size_t i = 0; i < nv; i++)
        z += pow((double)order[i].count, 0.75);
    size_t table_n = nv * 100;
    if (table_n < 100000) table_n = 100000;
    if (table_n > 10000000) table_n = 10000000;
    table = malloc(table_n * sizeof *table);
    if (!table) goto oom;
    {
        size_t k = 0;
        double cum = 0;
        for (size_t i = 0; i < nv && k < table_n; i++) {
            cum += pow((double)order[i].count, 0.75) / z;
            const size_t until = i + 1 == nv ? table_n : (size_t)(cum * (double)table_n);
            while (k < until && k < table_n)
                table[k++] = (uint32_t)i;
        }
        /* every frequent word's slots are proportional to count^0.75 (rare ones may get none) */
    }

    /* 5. Parameters, then Hogwild training over shards of the texts. */
    const size_t dim = (size_t)o.dim;
    m->in = malloc(m->n_rows * dim * sizeof *m->in);
    outm = calloc(nv * dim, sizeof *outm);
    if (!m->in || !outm) goto oom;
    mp_rng rng;
    mp_rng_seed(&rng, o.seed);
    const float a = 1.0f / (float)dim;
    for (size_t i = 0; i < m->n_rows * dim; i++)
        m->in[i] = (float)((2.0 * mp_rng_uniform(&rng) - 1.0) * a);

    const int T = o.threads;
    ws = calloc((size_t)T, sizeof *ws);
    tids = calloc((size_t)T, sizeof *tids);
    if (!ws || !tids) goto oom;
    for (int t = 0; t < T; t++) {
        const size_t lo = n * (size_t)t / (size_t)T, hi = n * (size_t)(t + 1) / (size_t)T;
        const double toks = (double)(text_off[hi] - text_off[lo]);
        ws[t] = (worker){.m = m,
                         .out = outm,
                         .text_off = text_off,
                         .seq = seq,
                         .w_off = w_off,
                         .w_rows = w_rows,
                         .w_model = w_model,
                         .keep = keep,
                         .table = table,
                         .table_n = table_n,
                         .t_lo = lo,
                         .t_hi = hi,
                         .seed = o.seed * 0x9E3779B97F4A7C15ULL + (uint64_t)t + 1,
                         .work_total = toks > 0 ? toks * o.epochs : 1,
                         .status = MP_OK};
    }
    int ran = txt_run_workers(train_worker, ws, sizeof *ws, T, tids);
    for (int t = 0; t < T; t++)
        if (t >= ran || ws[t].status != MP_OK) {
            rc = mp_error_set(err, MP_ENOMEM, "skipgram: training thread %d failed (out of memory or threads)", t);
            goto fail;
        }
    rc = MP_OK;
    goto done;
oom:
    rc = mp_error_set(err, MP_ENOMEM, "skipgram: out of memory");
fail:
    mp_skipgram_free(m);
    m = NULL;
done:
    mp_strmap_destroy(all);
    free(text_off), free(seq), free(counts), free(w_off), free(w_rows), free(w_model), free(table);
    free(keep), free(outm), free(order), free(ws), free(tids);
    *out = m;
    return rc;
}

/* ---- vectors -------------------------------------------------------------------------------------------------- */

/* Mean input vector of the unigram token toks[i] and the subwords following it; returns rows used. */
static size_t unit_vector(const mp_skipgram *m, const mp_text_tokens *tk, size_t i, float *out) {
    const size_t dim = (size_t)m->o.dim;
    memset(out, 0, dim * sizeof *out);
    size_t cnt = 0;
    const uint32_t own = mp_strmap_get(m->words, tk->buf + tk->toks[i].off, tk->toks[i].len);
    if (own != MP_STRMAP_NONE) {
        const float *e = m->in + (size_t)own * dim;
        for (size_t j = 0; j < dim; j++)
            out[j] += e[j];
        cnt++;
    }
    for (size_t t = i + 1; t < tk->n && tk->toks[t].kind == MP_TOK_SUBWORD; t++) {
        const uint32_t r = txt_u64map_get(&m->row_of, tk->toks[t].hash % m->o.n_buckets);
        if (r == TXT_MAP_NONE) continue;
        const float *e = m->in + (size_t)r * dim;
        for (size_t j = 0; j < dim; j++)
            out[j] += e[j];
        cnt++;
    }
    if (cnt)
        for (size_t j = 0; j < dim; j++)
            out[j] /= (float)cnt;
    return cnt;
}

int mp_skipgram_word_vector(const mp_skipgram *m, const char *w, size_t len, float *out, int *have, mp_error *err) {
    const size_t dim = (size_t)m->o.dim;
    *have = 0;
    memset(out, 0, dim * sizeof *out);
    mp_text_tokens *tk = NULL;
    int rc = mp_text_features(w ? w : "", w ? len : 0, &m->fo, &tk, err);
    if (rc) {
        mp_error_prefix(err, "skipgram word vector");
        return rc;
    }
    for (size_t i = 0; i < tk->n; i++)
        if (is_unigram(tk->toks[i].kind)) {
            *have = unit_vector(m, tk, i, out) > 0;
            break;
        }
    mp_text_tokens_free(tk);
    return MP_OK;
}

int mp_skipgram_text_vector(const mp_skipgram *m, const char *s, size_t len, float *out, int *have, mp_error *err) {
    const size_t dim = (size_t)m->o.dim;
    *have = 0;
    memset(out, 0, dim * sizeof *out);
    mp_text_tokens *tk = NULL;
    int rc = mp_text_features(s ? s : "", s ? len : 0, &m->fo, &tk, err);
    if (rc) {
        mp_error_prefix(err, "skipgram text vector");
        return rc;
    }
    float *v = malloc(dim * sizeof *v);
    if (!v) {
        mp_text_tokens_free(tk);
        return mp_error_set(err, MP_ENOMEM, "skipgram text vector: out of memory");
    }
    for (size_t i = 0; i < tk->n; i++) {
        if (!is_unigram(tk->toks[i].kind) || !unit_vector(m, tk, i, v)) continue;
        double nn = 0;
        for (size_t j = 0; j < dim; j++)
            nn += (double)v[j] * v[j];
        if (!(nn > 0)) continue;
        const float s1 = (float)(1.0 / sqrt(nn));
        for (size_t j = 0; j < dim; j++)
            out[j] += v[j] * s1;
        *have = 1;
    }
    free(v);
    mp_text_tokens_free(tk);
    double nn = 0;
    for (size_t j = 0; j < dim; j++)
        nn += (double)out[j] * out[j];
    if (nn > 0) {
        const float s1 = (float)(1.0 / sqrt(nn));
        for (size_t j = 0; j < dim; j++)
            out[j] *= s1;
    }
    return MP_OK;
}

/* ---- model file section ----------------------------------------------------------------------------------------
 * "skipgram" | u32 version | options: dim window epochs negatives min_count minn maxn n_buckets threads (u32),
 * lr sample (f64), seed (u64) | u32 nv, nv word strings (id order) | u32s bucket of each n-gram row (row order) |
 * f32s input rows (n_rows x dim). */

int mp_skipgram_save(const mp_skipgram *m, mp_mf_writer *w, mp_error *err) {
    const size_t ng = m->n_rows - m->nv;
    uint32_t *bucket = malloc((ng + 1) * sizeof *bucket);
    if (!bucket) return mp_error_set(err, MP_ENOMEM, "skipgram save: out of memory");
    for (size_t i = 0; i < m->row_of.cap; i++)
        if (m->row_of.vals[i] != TXT_MAP_NONE) bucket[m->row_of.vals[i] - m->nv] = (uint32_t)m->row_of.keys[i];
    const mp_skipgram_opts *o = &m->o;
    mp_mf_put_str(w, "skipgram");
    mp_mf_put_u32(w, SG_SECTION_VERSION);
    const int iv[9] = {o->dim, o->window, o->epochs, o->negatives, o->min_count, o->minn, o->maxn, 0, o->threads};
    for (int i = 0; i < 9; i++)
        mp_mf_put_u32(w, i == 7 ? o->n_buckets : (uint32_t)iv[i]);
    mp_mf_put_f64(w, o->lr);
    mp_mf_put_f64(w, o->sample);
    mp_mf_put_u64(w, o->seed);
    mp_mf_put_u32(w, (uint32_t)m->nv);
    for (size_t i = 0; i < m->nv; i++)
        mp_mf_put_str(w, mp_strmap_key(m->words, (uint32_t)i, NULL));
    mp_mf_put_u32s(w, bucket, ng);
    mp_mf_put_f32s(w, m->in, m->n_rows * (size_t)o->dim);
    free(bucket);
    return MP_OK;
}

int mp_skipgram_load(mp_mf_reader *r, mp_skipgram **out, mp_error *err) {
    *out = NULL;
    const char *path = mp_mf_reader_path(r);
    char *tag = NULL;
    int rc = mp_mf_get_str(r, &tag, 64, err);
    if (rc) return rc;
    int bad = !tag || strcmp(tag, "skipgram") != 0;
    free(tag);
    if (bad) return mp_error_set(err, MP_ECORRUPT, "model file %s: expected a skipgram section", path);
    uint32_t ver, iv[9], nv;
    if ((rc = mp_mf_get_u32(r, &ver, err))) return rc;
    if (ver != SG_SECTION_VERSION)
        return mp_error_set(err, MP_EVERSION, "model file %s: skipgram section version %u, this build reads %u", path,
                            ver, SG_SECTION_VERSION);
    for (int i = 0; i < 9; i++)
        if ((rc = mp_mf_get_u32(r, &iv[i], err))) return rc;
    mp_skipgram_opts o;
    double lr, sample;
    if ((rc = mp_mf_get_f64(r, &lr, err)) || (rc = mp_mf_get_f64(r, &sample, err)) ||
        (rc = mp_mf_get_u64(r, &o.seed, err)) || (rc = mp_mf_get_u32(r, &nv, err)))
        return rc;
    for (int i = 0; i < 9; i++)
        if (i != 7 && iv[i] > 1000000)
            return mp_error_set(err, MP_ECORRUPT, "model file %s: skipgram: bad option value %u", path, iv[i]);
    o.dim = (int)iv[0], o.window = (int)iv[1], o.epochs = (int)iv[2], o.negatives = (int)iv[3];
    o.min_count = (int)iv[4], o.minn = (int)iv[5], o.maxn = (int)iv[6], o.n_buckets = iv[7], o.threads = (int)iv[8];
    o.lr = (float)lr;
    o.sample = sample;
    mp_error e2;
    if (check_opts(&o, &e2) != MP_OK) return mp_error_set(err, MP_ECORRUPT, "model file %s: %s", path, e2.msg);
    if ((size_t)nv > mp_mf_remaining(r) / 4)
        return mp_error_set(err, MP_ECORRUPT, "model file %s: skipgram: bad vocabulary size %u", path, nv);

    mp_skipgram *m = calloc(1, sizeof *m);
    uint32_t *bucket = NULL;
    if (!m || mp_strmap_create(&m->words, nv + 16) != MP_OK) goto oom;
    m->o = o;
    feat_opts(&o, &m->fo);
    m->nv = nv;
    for (uint32_t i = 0; i < nv; i++) {
        char *s = NULL;
        if ((rc = mp_mf_get_str(r, &s, 1 << 20, err))) goto fail;
        uint32_t id;
        int ins = 0;
        if (!s || mp_strmap_intern(m->words, s, strlen(s), &id, &ins) != MP_OK || !ins) {
            free(s);
            rc = mp_error_set(err, MP_ECORRUPT, "model file %s: skipgram: missing or duplicate word %u", path, i);
            goto fail;
        }
        free(s);
    }
    uint64_t ng;
    if ((rc = mp_mf_peek_count(r, &ng, mp_mf_remaining(r) / 4, err))) goto fail;
    if (ng && o.maxn == 0) {
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s: skipgram: n-gram rows without n-grams", path);
        goto fail;
    }
    bucket = malloc((ng + 1) * sizeof *bucket);
    if (!bucket) goto oom;
    if ((rc = mp_mf_get_u32s(r, bucket, ng, err))) goto fail;
    m->n_rows = nv + ng;
    if (txt_u64map_reserve(&m->row_of, ng) != MP_OK) goto oom;
    for (uint64_t i = 0; i < ng; i++) {
        uint32_t row;
        int ins;
        if (bucket[i] >= o.n_buckets || txt_u64map_intern(&m->row_of, bucket[i], (uint32_t)(nv + i), &row, &ins) ||
            !ins) {
            rc = mp_error_set(err, MP_ECORRUPT, "model file %s: skipgram: bad or duplicate bucket of n-gram row %llu",
                              path, (unsigned long long)i);
            goto fail;
        }
    }
    const size_t nin = m->n_rows * (size_t)o.dim;
    if (nin / (size_t)o.dim != m->n_rows || nin > mp_mf_remaining(r) / 4) {
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s: skipgram: truncated input matrix", path);
        goto fail;
    }
    m->in = malloc((nin + 1) * sizeof *m->in);
    if (!m->in) goto oom;
    if ((rc = mp_mf_get_f32s(r, m->in, nin, err))) goto fail;
    free(bucket);
    *out = m;
    return MP_OK;
oom:
    rc = mp_error_set(err, MP_ENOMEM, "model file %s: skipgram: out of memory", path);
fail:
    free(bucket);
    mp_skipgram_free(m);
    return rc;
}
