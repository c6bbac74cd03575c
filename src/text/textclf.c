/* src/text/textclf.c: fastText-class supervised classifier (hashed features, mean embedding, softmax, Hogwild). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/linalg.h"
#include "magpie/modelfile.h"
#include "magpie/rng.h"
#include "magpie/strmap.h"
#include "magpie/text.h"
#include "magpie/textclf.h"
#include "text/text_internal.h"

#define NO_ROW UINT32_MAX

struct mp_textclf {
    mp_textclf_opts opts;
    mp_text_feat_opts fo; /* tokenizer settings (from opts at training; as stored in a loaded file) */
    mp_strmap *labels;    /* label text -> class id */
    size_t n_labels;
    uint32_t *row_of; /* n_buckets entries: embedding row of a bucket, or NO_ROW */
    size_t n_rows;
    float *emb; /* n_rows x dim */
    float *out; /* n_labels x dim */
};

void mp_textclf_default(mp_textclf_opts *opts) {
    opts->dim = 100;
    opts->epochs = 5;
    opts->lr = 0.1f;
    opts->threads = 1;
    opts->seed = 1;
    opts->n_buckets = 2000000;
    opts->word_bigrams = 0;
    opts->minn = 0;
    opts->maxn = 0;
    opts->punct = 0;
}

void mp_textclf_free(mp_textclf *m) {
    if (!m) return;
    mp_strmap_destroy(m->labels);
    free(m->row_of);
    free(m->emb);
    free(m->out);
    free(m);
}

size_t mp_textclf_n_labels(const mp_textclf *m) {
    return m->n_labels;
}
size_t mp_textclf_n_rows(const mp_textclf *m) {
    return m->n_rows;
}

const char *mp_textclf_label(const mp_textclf *m, size_t i) {
    if (i >= m->n_labels) return NULL;
    return mp_strmap_key(m->labels, (uint32_t)i, NULL);
}

static void feat_opts(const mp_textclf_opts *o, mp_text_feat_opts *fo) {
    mp_text_feat_default(fo);
    fo->word_bigrams = o->word_bigrams;
    fo->minn = o->minn;
    fo->maxn = o->maxn;
}

/* Iterates the punctuation characters of the normalised text tk->buf[0..norm_len) from *pos: on 1, *h is the
 * feature hash of the next one (kept apart from token hashes by a mix constant); 0 at the end. */
static int next_punct(const mp_text_tokens *tk, size_t *pos, uint64_t *h) {
    while (*pos < tk->norm_len) {
        uint32_t cp;
        int k = mp_utf8_decode(tk->buf + *pos, tk->norm_len - *pos, &cp);
        if (k <= 0) k = 1, cp = 0;
        const size_t at = *pos;
        *pos += (size_t)k;
        if (cp && txt_char_class(cp) == TXT_PUNCT) {
            *h = (mp_hash_bytes(tk->buf + at, (size_t)k) ^ 0x70756E6374ULL) * 0x9E3779B97F4A7C15ULL;
            return 1;
        }
    }
    return 0;
}

/* ---- training ------------------------------------------------------------------------------------------------- */

typedef struct {
    mp_textclf *m;
    const size_t *doc_off; /* n_docs + 1 offsets into rows */
    const uint32_t *rows;
    const uint32_t *doc_label;
    const uint32_t *docs; /* indices of this thread's documents */
    size_t n_docs;
    uint64_t seed;
    double work_total, work_start; /* learning-rate schedule in documents processed */
    int status;
} worker;

/* One SGD step on one document: hidden = mean embedding; softmax; update output rows and the embedding rows. */
static void sgd_step(mp_textclf *m, const uint32_t *rows, size_t nr, uint32_t label, float lr, float *hid, float *grad,
                     float *prob) {
    const int dim = m->opts.dim;
    const size_t L = m->n_labels;
    memset(hid, 0, sizeof(float) * (size_t)dim);
    for (size_t i = 0; i < nr; i++) {
        const float *e = m->emb + (size_t)rows[i] * (size_t)dim;
        for (int j = 0; j < dim; j++)
            hid[j] += e[j];
    }
    const float inv = 1.0f / (float)nr;
    for (int j = 0; j < dim; j++)
        hid[j] *= inv;
    float mx = -INFINITY;
    for (size_t k = 0; k < L; k++) {
        const float *w = m->out + k * (size_t)dim;
        float s = mp_dot_seq(w, hid, (size_t)dim);
        prob[k] = s;
        if (s > mx) mx = s;
    }
    float z = 0;
    for (size_t k = 0; k < L; k++) {
        prob[k] = expf(prob[k] - mx);
        z += prob[k];
    }
    memset(grad, 0, sizeof(float) * (size_t)dim);
    for (size_t k = 0; k < L; k++) {
        const float g = lr * ((k == label ? 1.0f : 0.0f) - prob[k] / z);
        float *w = m->out + k * (size_t)dim;
        for (int j = 0; j < dim; j++) {
            grad[j] += g * w[j];
            w[j] += g * hid[j];
        }
    }
    for (int j = 0; j < dim; j++)
        grad[j] *= inv;
    for (size_t i = 0; i < nr; i++) {
        float *e = m->emb + (size_t)rows[i] * (size_t)dim;
        for (int j = 0; j < dim; j++)
            e[j] += grad[j];
    }
}

static void *train_worker(void *arg) {
    worker *w = arg;
    mp_textclf *m = w->m;
    const size_t dim = (size_t)m->opts.dim;
    float *buf = malloc(sizeof(float) * (2 * dim + m->n_labels));
    uint32_t *order = malloc(sizeof(uint32_t) * (w->n_docs ? w->n_docs : 1));
    if (!buf || !order) {
        free(buf);
        free(order);
        w->status = MP_ENOMEM;
        return NULL;
    }
    memcpy(order, w->docs, sizeof(uint32_t) * w->n_docs);
    mp_rng rng;
    mp_rng_seed(&rng, w->seed);
    double done = w->work_start;
    for (int ep = 0; ep < m->opts.epochs; ep++) {
        mp_rng_shuffle_u32(&rng, order, w->n_docs);
        for (size_t i = 0; i < w->n_docs; i++, done += 1.0) {
            const uint32_t d = order[i];
            const size_t nr = w->doc_off[d + 1] - w->doc_off[d];
            if (nr == 0) continue;
            double frac = 1.0 - done / w->work_total;
            if (frac < 0) frac = 0;
            const float lr = (float)(m->opts.lr * frac);
            sgd_step(m, w->rows + w->doc_off[d], nr, w->doc_label[d], lr, buf, buf + dim, buf + 2 * dim);
        }
    }
    free(buf);
    free(order);
    w->status = MP_OK;
    return NULL;
}

static int check_opts(const mp_textclf_opts *o, mp_error *err) {
    if (o->dim < 1 || o->dim > 4096)
        return mp_error_set(err, MP_EINVAL, "textclf: dim must be in 1..4096, got %d", o->dim);
    if (o->epochs < 1) return mp_error_set(err, MP_EINVAL, "textclf: epochs must be >= 1, got %d", o->epochs);
    if (!(o->lr > 0) || !isfinite(o->lr))
        return mp_error_set(err, MP_EINVAL, "textclf: lr must be a positive number, got %g", (double)o->lr);
    if (o->threads < 1 || o->threads > 256)
        return mp_error_set(err, MP_EINVAL, "textclf: threads must be in 1..256, got %d", o->threads);
    if (o->n_buckets < 1 || o->n_buckets >= NO_ROW)
        return mp_error_set(err, MP_EINVAL, "textclf: n_buckets must be in 1..%u, got %u", NO_ROW - 1, o->n_buckets);
    return MP_OK;
}

int mp_textclf_train(const char *const *texts, const size_t *lens, const char *const *labels, size_t n,
                     const mp_textclf_opts *opts, mp_textclf **out, mp_error *err) {
    *out = NULL;
    mp_textclf_opts o;
    if (opts)
        o = *opts;
    else
        mp_textclf_default(&o);
    int rc = check_opts(&o, err);
    if (rc) return rc;
    if (n == 0) return mp_error_set(err, MP_EINVAL, "textclf: no training texts");
    if (n >= UINT32_MAX) return mp_error_set(err, MP_ERANGE, "textclf: too many training texts (%zu)", n);
    if (!texts || !labels) return mp_error_set(err, MP_EINVAL, "textclf: texts and labels must not be NULL");

    mp_textclf *m = calloc(1, sizeof(*m));
    size_t *doc_off = malloc(sizeof(size_t) * (n + 1));
    uint32_t *doc_label = malloc(sizeof(uint32_t) * n);
    uint32_t *rows = NULL;
    size_t n_feat = 0, cap_feat = 0;
    worker *ws = NULL;
    pthread_t *tids = NULL;
    uint32_t *all_docs = NULL;
    if (!m || !doc_off || !doc_label) {
        rc = mp_error_set(err, MP_ENOMEM, "textclf: out of memory for %zu texts", n);
        goto fail;
    }
    m->opts = o;
    feat_opts(&o, &m->fo);
    if (mp_strmap_create(&m->labels, 16) != MP_OK) {
        rc = mp_error_set(err, MP_ENOMEM, "textclf: out of memory");
        goto fail;
    }
    m->row_of = malloc(sizeof(uint32_t) * o.n_buckets);
    if (!m->row_of) {
        rc = mp_error_set(err, MP_ENOMEM, "textclf: out of memory for %u buckets", o.n_buckets);
        goto fail;
    }
    memset(m->row_of, 0xff, sizeof(uint32_t) * o.n_buckets);
    m->n_rows = 1; /* row 0: the end-of-text feature every non-empty text has (fastText's "</s>") */

    /* Labels and features; each bucket seen gets the next embedding row. */
    mp_text_feat_opts fo;
    feat_opts(&o, &fo);
    for (size_t i = 0; i < n; i++) {
        if (!labels[i] || !labels[i][0]) {
            rc = mp_error_set(err, MP_EINVAL, "textclf: text %zu has no label (labels must be non-empty)", i);
            goto fail;
        }
        uint32_t lid;
        if (mp_strmap_intern(m->labels, labels[i], strlen(labels[i]), &lid, NULL) != MP_OK) {
            rc = mp_error_set(err, MP_ENOMEM, "textclf: out of memory for labels");
            goto fail;
        }
        doc_label[i] = lid;
        doc_off[i] = n_feat;
        if (!texts[i]) continue;
        const size_t len = lens ? lens[i] : strlen(texts[i]);
        mp_text_tokens *tk = NULL;
        rc = mp_text_features(texts[i], len, &fo, &tk, err);
        if (rc) {
            mp_error_prefix(err, "textclf: text %zu", i);
            goto fail;
        }
        if (n_feat + tk->n + 1 > cap_feat) {
            size_t nc = cap_feat * 2 + tk->n + 1024;
            uint32_t *nr = realloc(rows, sizeof(uint32_t) * nc);
            if (!nr) {
                mp_text_tokens_free(tk);
                rc = mp_error_set(err, MP_ENOMEM, "textclf: out of memory for %zu features", nc);
                goto fail;
            }
            rows = nr;
            cap_feat = nc;
        }
        for (size_t t = 0; t < tk->n; t++) {
            const uint32_t b = (uint32_t)(tk->toks[t].hash % o.n_buckets);
            if (m->row_of[b] == NO_ROW) m->row_of[b] = (uint32_t)m->n_rows++;
            rows[n_feat++] = m->row_of[b];
        }
        size_t pos = 0;
        uint64_t h;
        while (o.punct && next_punct(tk, &pos, &h)) {
            if (n_feat + 2 > cap_feat) {
                size_t nc = cap_feat * 2 + 1024;
                uint32_t *nr = realloc(rows, sizeof(uint32_t) * nc);
                if (!nr) {
                    mp_text_tokens_free(tk);
                    rc = mp_error_set(err, MP_ENOMEM, "textclf: out of memory for %zu features", nc);
                    goto fail;
                }
                rows = nr;
                cap_feat = nc;
            }
            const uint32_t b = (uint32_t)(h % o.n_buckets);
            if (m->row_of[b] == NO_ROW) m->row_of[b] = (uint32_t)m->n_rows++;
            rows[n_feat++] = m->row_of[b];
        }
        if (n_feat > doc_off[i]) rows[n_feat++] = 0;
        mp_text_tokens_free(tk);
    }
    doc_off[n] = n_feat;
    m->n_labels = mp_strmap_size(m->labels);
    if (m->n_labels < 2) {
        rc = mp_error_set(err, MP_EINVAL, "textclf: need at least 2 distinct labels, got %zu (\"%s\")", m->n_labels,
                          mp_textclf_label(m, 0));
        goto fail;
    }
    if (m->n_rows == 1) {
        rc = mp_error_set(err, MP_EEMPTY, "textclf: none of the %zu texts has any feature (all empty?)", n);
        goto fail;
    }

    const size_t dim = (size_t)o.dim;
    m->emb = malloc(sizeof(float) * m->n_rows * dim);
    m->out = calloc(m->n_labels * dim, sizeof(float));
    all_docs = malloc(sizeof(uint32_t) * n);
    if (!m->emb || !m->out || !all_docs) {
        rc = mp_error_set(err, MP_ENOMEM, "textclf: out of memory for %zu x %zu embeddings", m->n_rows, dim);
        goto fail;
    }
    mp_rng rng;
    mp_rng_seed(&rng, o.seed);
    const float a = 1.0f / (float)dim;
    for (size_t i = 0; i < m->n_rows * dim; i++)
        m->emb[i] = (float)((2.0 * mp_rng_uniform(&rng) - 1.0) * a);
    for (size_t i = 0; i < n; i++)
        all_docs[i] = (uint32_t)i;
    mp_rng_shuffle_u32(&rng, all_docs, n);

    /* Hogwild: each thread owns a shard of the (shuffled) documents; the learning rate decays with the share of
     * its own work done, so all threads reach 0 together. */
    const int T = o.threads;
    ws = calloc((size_t)T, sizeof(*ws));
    tids = calloc((size_t)T, sizeof(*tids));
    if (!ws || !tids) {
        rc = mp_error_set(err, MP_ENOMEM, "textclf: out of memory for %d threads", T);
        goto fail;
    }
    for (int t = 0; t < T; t++) {
        const size_t lo = n * (size_t)t / (size_t)T, hi = n * (size_t)(t + 1) / (size_t)T;
        ws[t] = (worker){.m = m,
                         .doc_off = doc_off,
                         .rows = rows,
                         .doc_label = doc_label,
                         .docs = all_docs + lo,
                         .n_docs = hi - lo,
                         .seed = o.seed * 0x9E3779B97F4A7C15ULL + (uint64_t)t + 1,
                         .work_total = (double)(hi - lo) * o.epochs,
                         .work_start = 0,
                         .status = MP_OK};
    }
    int ran = txt_run_workers(train_worker, ws, sizeof *ws, T, tids);
    for (int t = 0; t < T; t++)
        if (t >= ran || ws[t].status != MP_OK) {
            rc = mp_error_set(err, MP_ENOMEM, "textclf: training thread %d failed (out of memory or threads)", t);
            goto fail;
        }
    free(ws);
    free(tids);
    free(all_docs);
    free(rows);
    free(doc_off);
    free(doc_label);
    *out = m;
    return MP_OK;
fail:
    free(ws);
    free(tids);
    free(all_docs);
    free(rows);
    free(doc_off);
    free(doc_label);
    mp_textclf_free(m);
    return rc;
}

/* ---- prediction ----------------------------------------------------------------------------------------------- */

/* Class scores (logits) of s[0..len) into sc[n_labels]; a text with no known feature scores 0 everywhere. */
static int class_scores(const mp_textclf *m, const char *s, size_t len, float *sc, mp_error *err) {
    mp_text_tokens *tk = NULL;
    int rc = mp_text_features(s ? s : "", s ? len : 0, &m->fo, &tk, err);
    if (rc) {
        mp_error_prefix(err, "textclf predict");
        return rc;
    }
    const size_t dim = (size_t)m->opts.dim, L = m->n_labels;
    float *hid = calloc(dim, sizeof(float));
    if (!hid) {
        mp_text_tokens_free(tk);
        return mp_error_set(err, MP_ENOMEM, "textclf predict: out of memory");
    }
    size_t cnt = 0;
    for (size_t t = 0; t < tk->n; t++) {
        const uint32_t r = m->row_of[tk->toks[t].hash % m->opts.n_buckets];
        if (r == NO_ROW) continue;
        const float *e = m->emb + (size_t)r * dim;
        for (size_t j = 0; j < dim; j++)
            hid[j] += e[j];
        cnt++;
    }
    size_t pos = 0;
    uint64_t h;
    while (m->opts.punct && next_punct(tk, &pos, &h)) {
        const uint32_t r = m->row_of[h % m->opts.n_buckets];
        if (r == NO_ROW) continue;
        const float *e = m->emb + (size_t)r * dim;
        for (size_t j = 0; j < dim; j++)
            hid[j] += e[j];
        cnt++;
    }
    if (cnt) {
        for (size_t j = 0; j < dim; j++)
            hid[j] += m->emb[j];
        cnt++;
    }
    mp_text_tokens_free(tk);
    if (cnt)
        for (size_t j = 0; j < dim; j++)
            hid[j] /= (float)cnt;
    for (size_t k = 0; k < L; k++) {
        const float *w = m->out + k * dim;
        sc[k] = mp_dot_seq(w, hid, dim);
    }
    free(hid);
    return MP_OK;
}

int mp_textclf_predict(const mp_textclf *m, const char *s, size_t len, size_t *label_idx, float *prob, mp_error *err) {
    float *sc = malloc(m->n_labels * sizeof *sc);
    if (!sc) return mp_error_set(err, MP_ENOMEM, "textclf predict: out of memory");
    int rc = class_scores(m, s, len, sc, err);
    if (rc) {
        free(sc);
        return rc;
    }
    size_t best = 0;
    for (size_t k = 1; k < m->n_labels; k++)
        if (sc[k] > sc[best]) best = k;
    double z = 0;
    for (size_t k = 0; k < m->n_labels; k++)
        z += exp((double)sc[k] - sc[best]);
    if (label_idx) *label_idx = best;
    if (prob) *prob = (float)(1.0 / z);
    free(sc);
    return MP_OK;
}

int mp_textclf_predict_proba(const mp_textclf *m, const char *s, size_t len, float *probs, mp_error *err) {
    int rc = class_scores(m, s, len, probs, err);
    if (rc) return rc;
    float mx = probs[0];
    for (size_t k = 1; k < m->n_labels; k++)
        if (probs[k] > mx) mx = probs[k];
    double z = 0;
    for (size_t k = 0; k < m->n_labels; k++)
        z += exp((double)probs[k] - mx);
    for (size_t k = 0; k < m->n_labels; k++)
        probs[k] = (float)(exp((double)probs[k] - mx) / z);
    return MP_OK;
}

void mp_textclf_get_opts(const mp_textclf *m, mp_textclf_opts *opts) {
    *opts = m->opts;
}

/* ---- model file -----------------------------------------------------------------------------------------------
 * Model "textclf", version 1. Payload: options dim epochs threads n_buckets word_bigrams minn maxn punct (u32),
 * lr (f64), seed (u64) | tokenizer settings halfwidth casefold collapse_space cjk_unigrams cjk_bigrams
 * word_bigrams minn maxn (u32) | u32 n_labels, the label strings in class order | u32s bucket of each embedding row
 * (row 0, the end-of-text feature, has none: UINT32_MAX) | f32s embeddings n_rows x dim | f32s output n_labels x dim */

#define TEXTCLF_FILE_VERSION 1u

int mp_textclf_save(const mp_textclf *m, const char *path, mp_error *err) {
    uint32_t *bucket = malloc(m->n_rows * sizeof *bucket);
    mp_mf_writer *w = NULL;
    if (!bucket || mp_mf_writer_create(&w) != MP_OK) {
        free(bucket);
        return mp_error_set(err, MP_ENOMEM, "textclf save %s: out of memory", path);
    }
    bucket[0] = NO_ROW;
    for (uint32_t b = 0; b < m->opts.n_buckets; b++)
        if (m->row_of[b] != NO_ROW) bucket[m->row_of[b]] = b;
    const mp_textclf_opts *o = &m->opts;
    const uint32_t iv[8] = {(uint32_t)o->dim,          (uint32_t)o->epochs, (uint32_t)o->threads, o->n_buckets,
                            (uint32_t)o->word_bigrams, (uint32_t)o->minn,   (uint32_t)o->maxn,    (uint32_t)o->punct};
    for (int i = 0; i < 8; i++)
        mp_mf_put_u32(w, iv[i]);
    mp_mf_put_f64(w, o->lr);
    mp_mf_put_u64(w, o->seed);
    const mp_text_feat_opts *f = &m->fo;
    const int fv[8] = {f->norm.halfwidth, f->norm.casefold, f->norm.collapse_space,
                       f->cjk_unigrams,   f->cjk_bigrams,   f->word_bigrams,
                       f->minn,           f->maxn};
    for (int i = 0; i < 8; i++)
        mp_mf_put_u32(w, (uint32_t)fv[i]);
    mp_mf_put_u32(w, (uint32_t)m->n_labels);
    for (size_t k = 0; k < m->n_labels; k++)
        mp_mf_put_str(w, mp_textclf_label(m, k));
    mp_mf_put_u32s(w, bucket, m->n_rows);
    mp_mf_put_f32s(w, m->emb, m->n_rows * (size_t)o->dim);
    mp_mf_put_f32s(w, m->out, m->n_labels * (size_t)o->dim);
    free(bucket);
    int rc = mp_mf_writer_save(w, path, "textclf", TEXTCLF_FILE_VERSION, err);
    mp_mf_writer_destroy(w);
    return rc;
}

int mp_textclf_load(const char *path, mp_textclf **out, mp_error *err) {
    *out = NULL;
    mp_mf_reader *r = NULL;
    int rc = mp_mf_reader_open(&r, path, err);
    if (rc) return rc;
    mp_textclf *m = NULL;
    uint32_t *bucket = NULL;
    if (strcmp(mp_mf_reader_model(r), "textclf") != 0) {
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s holds a \"%s\" model, not a textclf model", path,
                          mp_mf_reader_model(r));
        goto fail;
    }
    if (mp_mf_reader_model_version(r) != TEXTCLF_FILE_VERSION) {
        rc = mp_error_set(err, MP_EVERSION, "model file %s: textclf version %u, this build reads version %u", path,
                          mp_mf_reader_model_version(r), TEXTCLF_FILE_VERSION);
        goto fail;
    }
    uint32_t iv[8], fv[8], nl;
    double lr;
    mp_textclf_opts o;
    for (int i = 0; i < 8 && rc == MP_OK; i++)
        rc = mp_mf_get_u32(r, &iv[i], err);
    if (rc || (rc = mp_mf_get_f64(r, &lr, err)) || (rc = mp_mf_get_u64(r, &o.seed, err))) goto fail;
    for (int i = 0; i < 8 && rc == MP_OK; i++)
        rc = mp_mf_get_u32(r, &fv[i], err);
    if (rc || (rc = mp_mf_get_u32(r, &nl, err))) goto fail;
    for (int i = 0; i < 8; i++)
        if ((i != 3 && iv[i] > 65536) || fv[i] > 65536) {
            rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textclf: bad option values", path);
            goto fail;
        }
    o.dim = (int)iv[0], o.epochs = (int)iv[1], o.threads = (int)iv[2], o.n_buckets = iv[3];
    o.word_bigrams = (int)iv[4], o.minn = (int)iv[5], o.maxn = (int)iv[6], o.punct = (int)iv[7];
    o.lr = (float)lr;
    mp_error e2;
    if (check_opts(&o, &e2) != MP_OK || nl < 2 || nl > mp_mf_remaining(r)) {
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textclf: bad options or label count (%s)", path,
                          nl < 2 || nl > mp_mf_remaining(r) ? "labels" : e2.msg);
        goto fail;
    }
    m = calloc(1, sizeof *m);
    if (!m || mp_strmap_create(&m->labels, nl) != MP_OK) goto oom;
    m->opts = o;
    mp_text_feat_default(&m->fo);
    m->fo.norm.halfwidth = (int)fv[0], m->fo.norm.casefold = (int)fv[1], m->fo.norm.collapse_space = (int)fv[2];
    m->fo.cjk_unigrams = (int)fv[3], m->fo.cjk_bigrams = (int)fv[4], m->fo.word_bigrams = (int)fv[5];
    m->fo.minn = (int)fv[6], m->fo.maxn = (int)fv[7];
    if (m->fo.maxn > 0 && (m->fo.minn < 1 || m->fo.minn > m->fo.maxn)) {
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textclf: bad subword lengths", path);
        goto fail;
    }
    for (uint32_t k = 0; k < nl; k++) {
        char *s = NULL;
        if ((rc = mp_mf_get_str(r, &s, 1 << 16, err))) goto fail;
        uint32_t id;
        int ins = 0;
        if (!s || !s[0] || mp_strmap_intern(m->labels, s, strlen(s), &id, &ins) != MP_OK || !ins) {
            free(s);
            rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textclf: empty or duplicate label %u", path, k);
            goto fail;
        }
        free(s);
    }
    m->n_labels = nl;
    uint64_t nr;
    if ((rc = mp_mf_peek_count(r, &nr, mp_mf_remaining(r) / 4, err))) goto fail;
    if (nr < 2 || nr > (uint64_t)o.n_buckets + 1) {
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textclf: bad embedding row count %llu", path,
                          (unsigned long long)nr);
        goto fail;
    }
    m->n_rows = (size_t)nr;
    bucket = malloc(m->n_rows * sizeof *bucket);
    m->row_of = malloc(sizeof(uint32_t) * o.n_buckets);
    if (!bucket || !m->row_of) goto oom;
    if ((rc = mp_mf_get_u32s(r, bucket, m->n_rows, err))) goto fail;
    memset(m->row_of, 0xff, sizeof(uint32_t) * o.n_buckets);
    if (bucket[0] != NO_ROW) goto bad_rows;
    for (size_t i = 1; i < m->n_rows; i++) {
        if (bucket[i] >= o.n_buckets || m->row_of[bucket[i]] != NO_ROW) goto bad_rows;
        m->row_of[bucket[i]] = (uint32_t)i;
    }
    const size_t dim = (size_t)o.dim;
    if (m->n_rows * dim + m->n_labels * dim > mp_mf_remaining(r) / 4) {
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textclf: truncated matrices", path);
        goto fail;
    }
    m->emb = malloc(m->n_rows * dim * sizeof *m->emb);
    m->out = malloc(m->n_labels * dim * sizeof *m->out);
    if (!m->emb || !m->out) goto oom;
    if ((rc = mp_mf_get_f32s(r, m->emb, m->n_rows * dim, err)) ||
        (rc = mp_mf_get_f32s(r, m->out, m->n_labels * dim, err)))
        goto fail;
    if (mp_mf_remaining(r) != 0) {
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textclf: %zu unexpected bytes after the model", path,
                          mp_mf_remaining(r));
        goto fail;
    }
    for (size_t i = 0; i < (m->n_rows + m->n_labels) * dim; i++) {
        const float v = i < m->n_rows * dim ? m->emb[i] : m->out[i - m->n_rows * dim];
        if (!isfinite(v)) {
            rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textclf: non-finite weight", path);
            goto fail;
        }
    }
    free(bucket);
    mp_mf_reader_close(r);
    *out = m;
    return MP_OK;
bad_rows:
    rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textclf: bad or duplicate feature bucket", path);
    goto fail;
oom:
    rc = mp_error_set(err, MP_ENOMEM, "model file %s: textclf: out of memory", path);
fail:
    if (err && !strstr(err->msg, path)) mp_error_prefix(err, "model file %s", path);
    free(bucket);
    mp_textclf_free(m);
    mp_mf_reader_close(r);
    return rc;
}

int mp_textclf_grader_init(mp_textclf_grader *g, const mp_textclf *m, const char *positive_label, mp_error *err) {
    memset(g, 0, sizeof *g);
    size_t nl = mp_textclf_n_labels(m), found = nl;
    const char *want[2] = {positive_label, NULL};
    if (!want[0]) {
        want[0] = "positive";
        want[1] = "__label__positive";
    }
    for (int w = 0; w < 2 && found == nl; w++)
        for (size_t i = 0; want[w] && i < nl && found == nl; i++)
            if (!strcmp(mp_textclf_label(m, i), want[w])) found = i;
    if (found == nl || nl < 2) {
        char list[256];
        size_t len = 0;
        list[0] = 0;
        for (size_t i = 0; i < nl && len + 1 < sizeof list; i++) {
            int n = snprintf(list + len, sizeof list - len, "%s\"%s\"", i ? ", " : "", mp_textclf_label(m, i));
            if (n < 0) break;
            len += (size_t)n < sizeof list - len ? (size_t)n : sizeof list - len - 1;
        }
        return mp_error_set(err, MP_EINVAL,
                            "review sentiment: the classifier has no label \"%s\" (its labels: %s); name the "
                            "positive one with --review-positive-label",
                            want[0], list);
    }
    g->clf = m;
    g->positive = found;
    g->n_labels = nl;
    return MP_OK;
}

int mp_textclf_review_grade(void *state, const char *text, size_t len, double *grade) {
    const mp_textclf_grader *g = state;
    size_t label;
    float prob;
    mp_error perr;
    int rc = mp_textclf_predict(g->clf, text, len, &label, &prob, &perr);
    if (rc != MP_OK) return rc;
    double p = label == g->positive ? prob : (1.0 - prob) / (double)(g->n_labels - 1);
    *grade = 2.0 * p - 1.0;
    return MP_OK;
}
