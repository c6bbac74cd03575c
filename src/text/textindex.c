/* src/text/textindex.c: lexical retrieval over a catalog: an inverted index (term -> postings of (doc, tf)) plus
 * per-document term lists, scored with BM25 and TF-IDF cosine by traversing the postings of the query's terms. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/textindex.h"
#include "magpie/topk.h"
#include "text/text_internal.h"

#define TI_SECTION_VERSION 1u
#define TI_MAX_DOCS 0x80000000u /* document ids are below 2^31 */
#define TI_LOGTAB 64            /* 1 + log(tf) is tabulated for tf < TI_LOGTAB */

typedef struct {
    uint32_t doc, tf;
} posting;

typedef struct {
    posting *p; /* n entries sorted by doc */
    uint32_t n, cap;
} plist;

typedef struct {
    uint32_t term, tf;
} dterm;

typedef struct {
    dterm *t;     /* n entries sorted by term id */
    uint32_t n;   /* distinct terms */
    uint32_t len; /* tokens (sum of tf): the BM25 document length */
} docrec;

struct mp_textindex {
    mp_textindex_opts o;
    txt_u64map term_of;  /* token hash -> term id */
    uint64_t *term_hash; /* n_terms */
    plist *post;         /* n_terms; df of a term = post[t].n (0 once every document holding it was replaced) */
    size_t n_terms, terms_cap;
    docrec *docs; /* n_docs */
    uint32_t n_docs;
    size_t docs_cap;
    uint32_t n_nonempty; /* documents with at least one token: N of the IDF formulas */
    uint64_t total_len;  /* sum of docs[].len: avgdl = total_len / n_nonempty */
    uint64_t version;    /* bumped by every set */
    /* TF-IDF document norms depend on every IDF, so they are recomputed lazily (under mu) by the first TF-IDF
     * call after a change; queries only read them afterwards, and set needs exclusive access. */
    pthread_mutex_t mu;
    uint64_t norm_version; /* version the norms were computed for; UINT64_MAX: never */
    float *norm;           /* n_docs, valid when norm_version == version */
    size_t norm_cap;
};

void mp_textindex_default(mp_textindex_opts *opts) {
    mp_text_feat_default(&opts->feat);
    opts->k1 = 1.2f;
    opts->b = 0.75f;
    opts->sublinear_tf = 1;
}

static int check_opts(const mp_textindex_opts *o, mp_error *err) {
    if (!(o->k1 >= 0) || !isfinite(o->k1))
        return mp_error_set(err, MP_EINVAL, "textindex: k1 must be a number >= 0, got %g", (double)o->k1);
    if (!(o->b >= 0 && o->b <= 1))
        return mp_error_set(err, MP_EINVAL, "textindex: b must be in 0..1, got %g", (double)o->b);
    if (o->feat.maxn > 0 && (o->feat.minn < 1 || o->feat.minn > o->feat.maxn))
        return mp_error_set(err, MP_EINVAL, "textindex: subword lengths minn=%d maxn=%d: need 1 <= minn <= maxn",
                            o->feat.minn, o->feat.maxn);
    if (o->feat.maxn < 0 || o->feat.minn < 0)
        return mp_error_set(err, MP_EINVAL, "textindex: subword lengths must be >= 0");
    return MP_OK;
}

int mp_textindex_create(const mp_textindex_opts *opts, mp_textindex **out, mp_error *err) {
    *out = NULL;
    mp_textindex_opts o;
    if (opts)
        o = *opts;
    else
        mp_textindex_default(&o);
    int rc = check_opts(&o, err);
    if (rc) return rc;
    mp_textindex *ix = calloc(1, sizeof *ix);
    if (!ix) return mp_error_set(err, MP_ENOMEM, "textindex: out of memory");
    if (pthread_mutex_init(&ix->mu, NULL) != 0) {
        free(ix);
        return mp_error_set(err, MP_ENOMEM, "textindex: cannot create a mutex");
    }
    ix->o = o;
    ix->norm_version = UINT64_MAX;
    *out = ix;
    return MP_OK;
}

void mp_textindex_free(mp_textindex *ix) {
    if (!ix) return;
    for (size_t t = 0; t < ix->n_terms; t++)
        free(ix->post[t].p);
    for (uint32_t d = 0; d < ix->n_docs; d++)
        free(ix->docs[d].t);
    free(ix->post);
    free(ix->term_hash);
    free(ix->docs);
    free(ix->norm);
    txt_u64map_free(&ix->term_of);
    pthread_mutex_destroy(&ix->mu);
    free(ix);
}

uint32_t mp_textindex_n_docs(const mp_textindex *ix) {
    return ix->n_docs;
}

/* ---- tokens -> terms ------------------------------------------------------------------------------------------ */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int new_term(mp_textindex *ix, uint64_t h, uint32_t *id) {
    if (ix->n_terms == ix->terms_cap) {
        size_t nc = ix->terms_cap ? ix->terms_cap * 2 : 1024;
        uint64_t *nh = realloc(ix->term_hash, nc * sizeof *nh);
        if (!nh) return MP_ENOMEM;
        ix->term_hash = nh;
        plist *np = realloc(ix->post, nc * sizeof *np);
        if (!np) return MP_ENOMEM;
        ix->post = np;
        ix->terms_cap = nc;
    }
    if (ix->n_terms >= TXT_MAP_NONE - 1) return MP_ERANGE;
    int ins;
    if (txt_u64map_intern(&ix->term_of, h, (uint32_t)ix->n_terms, id, &ins) != MP_OK) return MP_ENOMEM;
    if (ins) {
        ix->term_hash[ix->n_terms] = h;
        ix->post[ix->n_terms] = (plist){0};
        ix->n_terms++;
    }
    return MP_OK;
}

/* Tokenizes text into distinct (term, tf) sorted by term id (*out malloc'ed, NULL when *n == 0) and *len tokens.
 * intern: new terms get ids (documents); otherwise unknown tokens are dropped (queries). */
static int to_terms(mp_textindex *ix, const char *text, size_t len, int intern, dterm **out, uint32_t *n,
                    uint32_t *ntok, mp_error *err) {
    *out = NULL;
    *n = 0;
    if (ntok) *ntok = 0;
    if (!text || len == 0) return MP_OK;
    mp_text_tokens *tk = NULL;
    int rc = mp_text_features(text, len, &ix->o.feat, &tk, err);
    if (rc) return rc;
    if (tk->n == 0) {
        mp_text_tokens_free(tk);
        return MP_OK;
    }
    if (tk->n >= UINT32_MAX) {
        mp_text_tokens_free(tk);
        return mp_error_set(err, MP_ERANGE, "textindex: text has too many tokens");
    }
    uint32_t *ids = malloc(tk->n * sizeof *ids);
    if (!ids) {
        mp_text_tokens_free(tk);
        return mp_error_set(err, MP_ENOMEM, "textindex: out of memory for %zu tokens", tk->n);
    }
    size_t m = 0;
    for (size_t i = 0; i < tk->n; i++) {
        uint32_t id;
        if (intern) {
            rc = new_term(ix, tk->toks[i].hash, &id);
            if (rc) {
                free(ids);
                mp_text_tokens_free(tk);
                return mp_error_set(err, rc, "textindex: %s for the term table (%zu terms)",
                                    rc == MP_ERANGE ? "too many terms" : "out of memory", ix->n_terms);
            }
        } else {
            id = txt_u64map_get(&ix->term_of, tk->toks[i].hash);
            if (id == TXT_MAP_NONE) continue;
        }
        ids[m++] = id;
    }
    mp_text_tokens_free(tk);
    if (ntok) *ntok = (uint32_t)m;
    if (m == 0) {
        free(ids);
        return MP_OK;
    }
    qsort(ids, m, sizeof *ids, cmp_u32);
    size_t nd = 1;
    for (size_t i = 1; i < m; i++)
        nd += ids[i] != ids[i - 1];
    dterm *dt = malloc(nd * sizeof *dt);
    if (!dt) {
        free(ids);
        return mp_error_set(err, MP_ENOMEM, "textindex: out of memory for %zu terms", nd);
    }
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        if (i > 0 && ids[i] == ids[i - 1])
            dt[k - 1].tf++;
        else
            dt[k++] = (dterm){ids[i], 1};
    }
    free(ids);
    *out = dt;
    *n = (uint32_t)nd;
    return MP_OK;
}

/* ---- building and growing --------------------------------------------------------------------------------------- */

static int plist_reserve(plist *pl, uint32_t add) {
    if ((uint64_t)pl->n + add <= pl->cap) return MP_OK;
    uint64_t nc = (uint64_t)pl->cap * 2 + add + 3;
    if (nc > UINT32_MAX) nc = UINT32_MAX;
    if (nc < (uint64_t)pl->n + add) return MP_ENOMEM;
    posting *np = realloc(pl->p, (size_t)nc * sizeof *np);
    if (!np) return MP_ENOMEM;
    pl->p = np;
    pl->cap = (uint32_t)nc;
    return MP_OK;
}

/* Position of doc in the sorted list, or where it would go. */
static uint32_t plist_find(const plist *pl, uint32_t doc) {
    uint32_t lo = 0, hi = pl->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (pl->p[mid].doc < doc)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int ensure_docs(mp_textindex *ix, size_t want, mp_error *err) {
    if (want <= ix->docs_cap) return MP_OK;
    size_t nc = ix->docs_cap * 2 > want ? ix->docs_cap * 2 : want;
    if (nc < 1024) nc = 1024;
    docrec *nd = realloc(ix->docs, nc * sizeof *nd);
    if (!nd) return mp_error_set(err, MP_ENOMEM, "textindex: out of memory for %zu documents", want);
    memset(nd + ix->docs_cap, 0, (nc - ix->docs_cap) * sizeof *nd);
    ix->docs = nd;
    ix->docs_cap = nc;
    return MP_OK;
}

int mp_textindex_set(mp_textindex *ix, uint32_t doc, const char *text, size_t len, mp_error *err) {
    if (doc >= TI_MAX_DOCS)
        return mp_error_set(err, MP_ERANGE, "textindex: document id %u is too large (ids must be below 2^31)", doc);
    dterm *nt = NULL;
    uint32_t nn = 0, ntok = 0;
    int rc = to_terms(ix, text, text ? len : 0, 1, &nt, &nn, &ntok, err);
    if (rc) {
        mp_error_prefix(err, "textindex: document %u", doc);
        return rc;
    }
    rc = ensure_docs(ix, (size_t)doc + 1, err);
    if (rc) {
        free(nt);
        return rc;
    }
    /* Reserve every posting list first so that nothing below can fail half-way. */
    for (uint32_t i = 0; i < nn; i++)
        if (plist_reserve(&ix->post[nt[i].term], 1) != MP_OK) {
            free(nt);
            return mp_error_set(err, MP_ENOMEM, "textindex: out of memory for postings");
        }
    if (doc >= ix->n_docs) ix->n_docs = doc + 1;
    docrec *dr = &ix->docs[doc];
    for (uint32_t i = 0; i < dr->n; i++) {
        plist *pl = &ix->post[dr->t[i].term];
        uint32_t at = plist_find(pl, doc);
        if (at < pl->n && pl->p[at].doc == doc) {
            memmove(pl->p + at, pl->p + at + 1, (size_t)(pl->n - at - 1) * sizeof *pl->p);
            pl->n--;
        }
    }
    if (dr->len) {
        ix->n_nonempty--;
        ix->total_len -= dr->len;
    }
    free(dr->t);
    for (uint32_t i = 0; i < nn; i++) {
        plist *pl = &ix->post[nt[i].term];
        uint32_t at = (pl->n == 0 || pl->p[pl->n - 1].doc < doc) ? pl->n : plist_find(pl, doc);
        memmove(pl->p + at + 1, pl->p + at, (size_t)(pl->n - at) * sizeof *pl->p);
        pl->p[at] = (posting){doc, nt[i].tf};
        pl->n++;
    }
    *dr = (docrec){.t = nt, .n = nn, .len = ntok};
    if (ntok) {
        ix->n_nonempty++;
        ix->total_len += ntok;
    }
    ix->version++;
    return MP_OK;
}

int mp_textindex_build(const char *const *docs, const size_t *lens, size_t n, const mp_textindex_opts *opts,
                       mp_textindex **out, mp_error *err) {
    *out = NULL;
    if (n >= TI_MAX_DOCS) return mp_error_set(err, MP_ERANGE, "textindex: too many documents (%zu)", n);
    if (n && !docs) return mp_error_set(err, MP_EINVAL, "textindex: docs must not be NULL");
    mp_textindex *ix;
    int rc = mp_textindex_create(opts, &ix, err);
    if (rc) return rc;
    rc = ensure_docs(ix, n, err);
    for (size_t i = 0; i < n && rc == MP_OK; i++) {
        const char *s = docs[i];
        rc = mp_textindex_set(ix, (uint32_t)i, s, s ? (lens ? lens[i] : strlen(s)) : 0, err);
    }
    if (rc == MP_OK && ix->n_docs < n) ix->n_docs = (uint32_t)n; /* trailing empty documents */
    if (rc) {
        mp_textindex_free(ix);
        return rc;
    }
    *out = ix;
    return MP_OK;
}

/* ---- scoring ------------------------------------------------------------------------------------------------- */

static double bm25_idf(double N, double df) {
    return log(1.0 + (N - df + 0.5) / (df + 0.5));
}
static double tfidf_idf(double N, double df) {
    return log((1.0 + N) / (1.0 + df)) + 1.0;
}

static void tf_table(const mp_textindex *ix, float *tab) {
    for (int i = 0; i < TI_LOGTAB; i++)
        tab[i] = ix->o.sublinear_tf ? (i ? 1.0f + logf((float)i) : 0.0f) : (float)i;
}

static inline float tf_weight(const mp_textindex *ix, const float *tab, uint32_t tf) {
    if (tf < TI_LOGTAB) return tab[tf];
    return ix->o.sublinear_tf ? 1.0f + logf((float)tf) : (float)tf;
}

/* Recomputes the TF-IDF document norms if a set happened since they were computed. */
static int ensure_norms(const mp_textindex *cix, mp_error *err) {
    mp_textindex *ix = (mp_textindex *)cix; /* the norms are a cache; mu serialises their recomputation */
    int rc = MP_OK;
    pthread_mutex_lock(&ix->mu);
    if (ix->norm_version != ix->version) {
        if (ix->norm_cap < ix->n_docs) {
            float *nn = realloc(ix->norm, (size_t)ix->n_docs * sizeof *nn);
            if (!nn) {
                rc = mp_error_set(err, MP_ENOMEM, "textindex: out of memory for %u document norms", ix->n_docs);
                goto done;
            }
            ix->norm = nn;
            ix->norm_cap = ix->n_docs;
        }
        float tab[TI_LOGTAB];
        tf_table(ix, tab);
        const double N = ix->n_nonempty;
        if (ix->n_docs) memset(ix->norm, 0, (size_t)ix->n_docs * sizeof *ix->norm);
        for (size_t t = 0; t < ix->n_terms; t++) {
            const plist *pl = &ix->post[t];
            if (!pl->n) continue;
            const float idf = (float)tfidf_idf(N, pl->n);
            for (uint32_t i = 0; i < pl->n; i++) {
                const float w = tf_weight(ix, tab, pl->p[i].tf) * idf;
                ix->norm[pl->p[i].doc] += w * w;
            }
        }
        for (uint32_t d = 0; d < ix->n_docs; d++)
            ix->norm[d] = sqrtf(ix->norm[d]);
        ix->norm_version = ix->version;
    }
done:
    pthread_mutex_unlock(&ix->mu);
    return rc;
}

static int query_terms(const mp_textindex *ix, const char *q, size_t len, dterm **qt, uint32_t *nq, mp_error *err) {
    int rc = to_terms((mp_textindex *)ix, q, q ? len : 0, 0, qt, nq, NULL, err);
    if (rc) mp_error_prefix(err, "textindex query");
    return rc;
}

int mp_textindex_bm25_all(const mp_textindex *ix, const char *q, size_t len, float *scores, mp_error *err) {
    dterm *qt;
    uint32_t nq;
    int rc = query_terms(ix, q, len, &qt, &nq, err);
    if (rc) return rc;
    if (ix->n_docs) memset(scores, 0, (size_t)ix->n_docs * sizeof *scores);
    if (nq && ix->n_nonempty) {
        const double N = ix->n_nonempty;
        const float k1 = ix->o.k1, b = ix->o.b;
        const float inv_avgdl = (float)((double)ix->n_nonempty / (double)ix->total_len);
        const docrec *docs = ix->docs;
        for (uint32_t i = 0; i < nq; i++) {
            const plist *pl = &ix->post[qt[i].term];
            if (!pl->n) continue;
            const float w = (float)(bm25_idf(N, pl->n) * qt[i].tf);
            const posting *p = pl->p;
            for (uint32_t j = 0; j < pl->n; j++) {
                const float tf = (float)p[j].tf;
                const float dl = (float)docs[p[j].doc].len;
                scores[p[j].doc] += w * tf * (k1 + 1.0f) / (tf + k1 * (1.0f - b + b * dl * inv_avgdl));
            }
        }
    }
    free(qt);
    return MP_OK;
}

int mp_textindex_bm25_topk(const mp_textindex *ix, const char *q, size_t len, size_t k, const uint8_t *allow,
                           uint32_t *out_docs, float *out_scores, size_t *n_out, mp_error *err) {
    *n_out = 0;
    if (k == 0 || ix->n_docs == 0) {
        dterm *qt;
        uint32_t nq;
        int rc = query_terms(ix, q, len, &qt, &nq, err); /* still report invalid UTF-8 */
        free(qt);
        return rc;
    }
    float *scores = malloc((size_t)ix->n_docs * sizeof *scores);
    if (!scores) return mp_error_set(err, MP_ENOMEM, "textindex: out of memory for %u scores", ix->n_docs);
    int rc = mp_textindex_bm25_all(ix, q, len, scores, err);
    if (rc == MP_OK) {
        size_t got;
        rc = mp_topk(scores, ix->n_docs, allow, k, out_docs, &got);
        if (rc) {
            free(scores);
            return mp_error_set(err, rc, "textindex: cannot rank %u documents: %s", ix->n_docs, mp_strerror(rc));
        }
        while (got > 0 && !(scores[out_docs[got - 1]] > 0))
            got--;
        if (out_scores)
            for (size_t i = 0; i < got; i++)
                out_scores[i] = scores[out_docs[i]];
        *n_out = got;
    }
    free(scores);
    return rc;
}

int mp_textindex_tfidf_all(const mp_textindex *ix, const char *q, size_t len, float *scores, mp_error *err) {
    dterm *qt;
    uint32_t nq;
    int rc = query_terms(ix, q, len, &qt, &nq, err);
    if (rc) return rc;
    rc = ensure_norms(ix, err);
    if (rc) {
        free(qt);
        return rc;
    }
    if (ix->n_docs) memset(scores, 0, (size_t)ix->n_docs * sizeof *scores);
    float tab[TI_LOGTAB];
    tf_table(ix, tab);
    const double N = ix->n_nonempty;
    double qn = 0;
    for (uint32_t i = 0; i < nq; i++) {
        const plist *pl = &ix->post[qt[i].term];
        if (!pl->n) continue;
        const float idf = (float)tfidf_idf(N, pl->n);
        const float qw = tf_weight(ix, tab, qt[i].tf) * idf;
        qn += (double)qw * qw;
        for (uint32_t j = 0; j < pl->n; j++)
            scores[pl->p[j].doc] += qw * tf_weight(ix, tab, pl->p[j].tf) * idf;
    }
    if (qn > 0) {
        const float iq = (float)(1.0 / sqrt(qn));
        for (uint32_t d = 0; d < ix->n_docs; d++)
            if (scores[d] != 0) scores[d] = scores[d] * iq / ix->norm[d];
    }
    free(qt);
    return MP_OK;
}

float mp_textindex_tfidf_doc_cosine(const mp_textindex *ix, uint32_t a, uint32_t b) {
    if (a >= ix->n_docs || b >= ix->n_docs) return 0;
    const docrec *da = &ix->docs[a], *db = &ix->docs[b];
    if (!da->n || !db->n) return 0;
    if (ensure_norms(ix, NULL) != MP_OK) return 0;
    float tab[TI_LOGTAB];
    tf_table(ix, tab);
    const double N = ix->n_nonempty;
    double dot = 0;
    for (uint32_t i = 0, j = 0; i < da->n && j < db->n;) {
        if (da->t[i].term < db->t[j].term)
            i++;
        else if (da->t[i].term > db->t[j].term)
            j++;
        else {
            const double idf = tfidf_idf(N, ix->post[da->t[i].term].n);
            dot += (double)tf_weight(ix, tab, da->t[i].tf) * tf_weight(ix, tab, db->t[j].tf) * idf * idf;
            i++, j++;
        }
    }
    return (float)(dot / ((double)ix->norm[a] * ix->norm[b]));
}

typedef struct {
    uint32_t term;
    float w;
} tw;

static int cmp_tw(const void *a, const void *b) {
    uint32_t x = ((const tw *)a)->term, y = ((const tw *)b)->term;
    return x < y ? -1 : x > y;
}

int mp_textindex_tfidf_profile_all(const mp_textindex *ix, const uint32_t *docs, const float *w, size_t n,
                                   float *scores, mp_error *err) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (docs[i] >= ix->n_docs)
            return mp_error_set(err, MP_EINVAL,
                                "textindex profile: document %u of entry %zu is not in the index "
                                "(%u documents)",
                                docs[i], i, ix->n_docs);
        total += ix->docs[docs[i]].n;
    }
    int rc = ensure_norms(ix, err);
    if (rc) return rc;
    if (ix->n_docs) memset(scores, 0, (size_t)ix->n_docs * sizeof *scores);
    if (total == 0) return MP_OK;
    /* The profile vector: sum of w_i * (unit TF-IDF vector of docs[i]), as (term, weight) merged by term. */
    tw *pv = malloc(total * sizeof *pv);
    if (!pv) return mp_error_set(err, MP_ENOMEM, "textindex profile: out of memory for %zu terms", total);
    float tab[TI_LOGTAB];
    tf_table(ix, tab);
    const double N = ix->n_nonempty;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const docrec *dr = &ix->docs[docs[i]];
        if (!dr->n) continue;
        const float s = (w ? w[i] : 1.0f) / ix->norm[docs[i]];
        for (uint32_t j = 0; j < dr->n; j++) {
            const float idf = (float)tfidf_idf(N, ix->post[dr->t[j].term].n);
            pv[m++] = (tw){dr->t[j].term, s * tf_weight(ix, tab, dr->t[j].tf) * idf};
        }
    }
    qsort(pv, m, sizeof *pv, cmp_tw);
    for (size_t i = 0; i < m;) {
        const uint32_t t = pv[i].term;
        float pw = 0;
        for (; i < m && pv[i].term == t; i++)
            pw += pv[i].w;
        const plist *pl = &ix->post[t];
        const float idf = (float)tfidf_idf(N, pl->n);
        for (uint32_t j = 0; j < pl->n; j++)
            scores[pl->p[j].doc] += pw * tf_weight(ix, tab, pl->p[j].tf) * idf;
    }
    free(pv);
    for (uint32_t d = 0; d < ix->n_docs; d++)
        if (scores[d] != 0) scores[d] /= ix->norm[d];
    return MP_OK;
}

/* ---- model file section ----------------------------------------------------------------------------------------
 * "textindex" | u32 section version | tokenizer options (8 x u32) | k1, b (f64) | sublinear (u32) |
 * live terms: u32s hash low halves, u32s hash high halves | u32 n_docs | u32s distinct terms per document |
 * u32s term ids (indices into the live terms), u32s tfs: every document's list in document order. */

int mp_textindex_save(const mp_textindex *ix, mp_mf_writer *w, mp_error *err) {
    const mp_text_feat_opts *f = &ix->o.feat;
    uint32_t *remap = malloc((ix->n_terms ? ix->n_terms : 1) * sizeof *remap);
    size_t total = 0;
    for (uint32_t d = 0; d < ix->n_docs; d++)
        total += ix->docs[d].n;
    uint32_t *lo = NULL, *hi = NULL, *cnt = malloc(((size_t)ix->n_docs + 1) * sizeof *cnt);
    uint32_t *tid = malloc((total + 1) * sizeof *tid), *tfs = malloc((total + 1) * sizeof *tfs);
    size_t live = 0;
    if (remap) {
        for (size_t t = 0; t < ix->n_terms; t++)
            remap[t] = ix->post[t].n ? (uint32_t)live++ : TXT_MAP_NONE;
        lo = malloc((live + 1) * sizeof *lo);
        hi = malloc((live + 1) * sizeof *hi);
    }
    if (!remap || !lo || !hi || !cnt || !tid || !tfs) {
        free(remap), free(lo), free(hi), free(cnt), free(tid), free(tfs);
        return mp_error_set(err, MP_ENOMEM, "textindex save: out of memory");
    }
    for (size_t t = 0; t < ix->n_terms; t++)
        if (remap[t] != TXT_MAP_NONE) {
            lo[remap[t]] = (uint32_t)ix->term_hash[t];
            hi[remap[t]] = (uint32_t)(ix->term_hash[t] >> 32);
        }
    size_t k = 0;
    for (uint32_t d = 0; d < ix->n_docs; d++) {
        cnt[d] = ix->docs[d].n;
        for (uint32_t j = 0; j < ix->docs[d].n; j++) {
            tid[k] = remap[ix->docs[d].t[j].term];
            tfs[k++] = ix->docs[d].t[j].tf;
        }
    }
    mp_mf_put_str(w, "textindex");
    mp_mf_put_u32(w, TI_SECTION_VERSION);
    const int fo[8] = {f->norm.halfwidth, f->norm.casefold, f->norm.collapse_space,
                       f->cjk_unigrams,   f->cjk_bigrams,   f->word_bigrams,
                       f->minn,           f->maxn};
    for (int i = 0; i < 8; i++)
        mp_mf_put_u32(w, (uint32_t)fo[i]);
    mp_mf_put_f64(w, ix->o.k1);
    mp_mf_put_f64(w, ix->o.b);
    mp_mf_put_u32(w, (uint32_t)ix->o.sublinear_tf);
    mp_mf_put_u32s(w, lo, live);
    mp_mf_put_u32s(w, hi, live);
    mp_mf_put_u32(w, ix->n_docs);
    mp_mf_put_u32s(w, cnt, ix->n_docs);
    mp_mf_put_u32s(w, tid, total);
    mp_mf_put_u32s(w, tfs, total);
    free(remap), free(lo), free(hi), free(cnt), free(tid), free(tfs);
    return MP_OK;
}

int mp_textindex_load(mp_mf_reader *r, mp_textindex **out, mp_error *err) {
    *out = NULL;
    const char *path = mp_mf_reader_path(r);
    char *tag = NULL;
    int rc = mp_mf_get_str(r, &tag, 64, err);
    if (rc) return rc;
    int bad = !tag || strcmp(tag, "textindex") != 0;
    free(tag);
    if (bad) return mp_error_set(err, MP_ECORRUPT, "model file %s: expected a textindex section", path);
    uint32_t ver, fo[8], sub, n_docs;
    double k1, b;
    if ((rc = mp_mf_get_u32(r, &ver, err))) return rc;
    if (ver != TI_SECTION_VERSION)
        return mp_error_set(err, MP_EVERSION, "model file %s: textindex section version %u, this build reads %u", path,
                            ver, TI_SECTION_VERSION);
    for (int i = 0; i < 8; i++)
        if ((rc = mp_mf_get_u32(r, &fo[i], err))) return rc;
    if ((rc = mp_mf_get_f64(r, &k1, err)) || (rc = mp_mf_get_f64(r, &b, err)) || (rc = mp_mf_get_u32(r, &sub, err)))
        return rc;
    mp_textindex_opts o;
    mp_textindex_default(&o);
    o.feat.norm.halfwidth = fo[0] != 0;
    o.feat.norm.casefold = fo[1] != 0;
    o.feat.norm.collapse_space = fo[2] != 0;
    o.feat.cjk_unigrams = fo[3] != 0;
    o.feat.cjk_bigrams = fo[4] != 0;
    o.feat.word_bigrams = fo[5] != 0;
    if (fo[6] > 64 || fo[7] > 64)
        return mp_error_set(err, MP_ECORRUPT, "model file %s: textindex: bad subword lengths %u..%u", path, fo[6],
                            fo[7]);
    o.feat.minn = (int)fo[6];
    o.feat.maxn = (int)fo[7];
    o.k1 = (float)k1;
    o.b = (float)b;
    o.sublinear_tf = sub != 0;
    mp_error e2;
    if (check_opts(&o, &e2) != MP_OK)
        return mp_error_set(err, MP_ECORRUPT, "model file %s: textindex: %s", path, e2.msg);

    const uint64_t maxn = mp_mf_remaining(r) / 4 + 1;
    uint64_t n_live, n_cnt, total;
    uint32_t *lo = NULL, *hi = NULL, *cnt = NULL, *tid = NULL, *tfs = NULL;
    mp_textindex *ix = NULL;
    if ((rc = mp_mf_peek_count(r, &n_live, maxn, err))) goto fail;
    lo = malloc((n_live + 1) * sizeof *lo);
    hi = malloc((n_live + 1) * sizeof *hi);
    if (!lo || !hi) goto oom;
    if ((rc = mp_mf_get_u32s(r, lo, n_live, err)) || (rc = mp_mf_get_u32s(r, hi, n_live, err)) ||
        (rc = mp_mf_get_u32(r, &n_docs, err)))
        goto fail;
    if (n_docs >= TI_MAX_DOCS) {
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textindex: bad document count %u", path, n_docs);
        goto fail;
    }
    if ((rc = mp_mf_peek_count(r, &n_cnt, maxn, err))) goto fail;
    if (n_cnt != n_docs) {
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textindex: %llu term counts for %u documents", path,
                          (unsigned long long)n_cnt, n_docs);
        goto fail;
    }
    cnt = malloc(((size_t)n_docs + 1) * sizeof *cnt);
    if (!cnt) goto oom;
    if ((rc = mp_mf_get_u32s(r, cnt, n_docs, err))) goto fail;
    if ((rc = mp_mf_peek_count(r, &total, maxn, err))) goto fail;
    tid = malloc((total + 1) * sizeof *tid);
    tfs = malloc((total + 1) * sizeof *tfs);
    if (!tid || !tfs) goto oom;
    if ((rc = mp_mf_get_u32s(r, tid, total, err)) || (rc = mp_mf_get_u32s(r, tfs, total, err))) goto fail;
    uint64_t sum = 0;
    for (uint32_t d = 0; d < n_docs; d++)
        sum += cnt[d];
    if (sum != total) {
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textindex: term lists hold %llu entries, counts say %llu",
                          path, (unsigned long long)total, (unsigned long long)sum);
        goto fail;
    }
    if ((rc = mp_textindex_create(&o, &ix, err))) goto fail;
    for (uint64_t t = 0; t < n_live; t++) {
        uint32_t id;
        rc = new_term(ix, (uint64_t)lo[t] | (uint64_t)hi[t] << 32, &id);
        if (rc == MP_OK && id != t) {
            rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textindex: duplicate term %llu", path,
                              (unsigned long long)t);
            goto fail;
        }
        if (rc) goto oom;
    }
    /* Document lengths first, then the postings (documents in increasing order: appends). */
    for (uint32_t t = 0; t < n_live; t++)
        ix->post[t].n = 0;
    if ((rc = ensure_docs(ix, n_docs, err))) goto fail;
    ix->n_docs = n_docs;
    size_t k = 0;
    for (uint32_t d = 0; d < n_docs; d++) {
        docrec *dr = &ix->docs[d];
        if (cnt[d] == 0) continue;
        dr->t = malloc(cnt[d] * sizeof *dr->t);
        if (!dr->t) goto oom;
        dr->n = cnt[d];
        uint64_t len = 0;
        for (uint32_t j = 0; j < cnt[d]; j++, k++) {
            if (tid[k] >= n_live || tfs[k] == 0 || (j > 0 && tid[k] <= dr->t[j - 1].term)) {
                rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textindex: bad term list of document %u", path, d);
                goto fail;
            }
            dr->t[j] = (dterm){tid[k], tfs[k]};
            len += tfs[k];
            if (plist_reserve(&ix->post[tid[k]], 1) != MP_OK) goto oom;
            plist *pl = &ix->post[tid[k]];
            pl->p[pl->n++] = (posting){d, tfs[k]};
        }
        if (len >= UINT32_MAX) {
            rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textindex: document %u is too long", path, d);
            goto fail;
        }
        dr->len = (uint32_t)len;
        ix->n_nonempty++;
        ix->total_len += len;
    }
    for (uint32_t t = 0; t < n_live; t++)
        if (!ix->post[t].n) {
            rc = mp_error_set(err, MP_ECORRUPT, "model file %s: textindex: term %u is in no document", path, t);
            goto fail;
        }
    ix->version = 1;
    free(lo), free(hi), free(cnt), free(tid), free(tfs);
    *out = ix;
    return MP_OK;
oom:
    rc = mp_error_set(err, MP_ENOMEM, "model file %s: textindex: out of memory", path);
fail:
    free(lo), free(hi), free(cnt), free(tid), free(tfs);
    mp_textindex_free(ix);
    return rc;
}
