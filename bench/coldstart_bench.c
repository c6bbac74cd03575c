/* bench/coldstart_bench.c: the cold-start benchmarks of issue 5 (run them with bench/coldstart.sh).
 *
 *   coldstart_bench cold    GAMES_DIR [--seed S] [--users N] [--cache DIR]   (a) cold items, Amazon Games titles
 *   coldstart_bench llmrank GAMES_DIR [--seed S] [--tune-users N] [--cache DIR] (b) LLMRank 20-candidate protocol
 *   coldstart_bench short   BEAUTY_DIR [--seed S] [--users N]                (c) users with <= 3 events, Beauty
 *   coldstart_bench tune    GAMES_DIR [--seed S] [--users N]                 seqknn defaults on Games validation
 * --models a,b limits the trained models (and the hybrid of cold) to that subset; --hybrid k=v,... sets hybrid parameters.
 * cold --split valid runs (a) on Games-6k.valid.inter (history -> validation target, same cold items): the split on
 * which the hybrid's parameters are chosen (the test targets are never used for a choice).
 *
 * Each prints one markdown section (protocol, sizes, timings, table) on stdout; progress goes to stderr.
 * Everything comes from the library: models by name (model.h), training input (dataset.h, trainset.h), metrics
 * (topk.h: mp_topk; eval.h: mp_metric_*), TF-IDF / BM25 (textindex.h), skip-gram (skipgram.h), USE-Lite (use.h).
 * The protocols are described in bench/coldstart.sh and in the printed sections. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "magpie/dataset.h"
#include "magpie/eval.h"
#include "magpie/linalg.h"
#include "magpie/model.h"
#include "magpie/rng.h"
#include "magpie/skipgram.h"
#include "magpie/textindex.h"
#include "magpie/topk.h"
#include "magpie/trainset.h"
#include "magpie/use.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void logf_(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "coldstart: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void die(const char *what, const mp_error *err) {
    fprintf(stderr, "coldstart_bench: %s: %s\n", what, err ? err->msg : strerror(errno));
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory", NULL);
    return p;
}

static void *xcalloc(size_t n, size_t s) {
    void *p = calloc(n ? n : 1, s ? s : 1);
    if (!p) die("out of memory", NULL);
    return p;
}

/* ---- sequences ---------------------------------------------------------------------------------------------- */

typedef struct seqs {
    uint32_t n;      /* sequences */
    uint64_t *ptr;   /* [n + 1] */
    uint32_t *items; /* [ptr[n]] */
    uint64_t cap;
} seqs;

static void seqs_init(seqs *s, uint32_t n) {
    s->n = 0;
    s->ptr = xcalloc((size_t)n + 1, sizeof *s->ptr);
    s->cap = 1024;
    s->items = xmalloc(s->cap * sizeof *s->items);
}

static void seqs_push(seqs *s, uint32_t item) {
    if (s->ptr[s->n] + (s->ptr[s->n + 1] - s->ptr[s->n]) >= s->cap) {
        s->cap *= 2;
        uint32_t *p = realloc(s->items, s->cap * sizeof *p);
        if (!p) die("out of memory", NULL);
        s->items = p;
    }
    s->items[s->ptr[s->n + 1]++] = item;
}

/* Starts sequence s->n (call seqs_end to close it). The ptr array must have room (seqs_init(n_max)). */
static void seqs_begin(seqs *s) { s->ptr[s->n + 1] = s->ptr[s->n]; }
static void seqs_end(seqs *s) { s->n++; }

static void seqs_free(seqs *s) {
    free(s->ptr);
    free(s->items);
    memset(s, 0, sizeof *s);
}

static inline uint32_t seq_len(const seqs *s, uint32_t u) { return (uint32_t)(s->ptr[u + 1] - s->ptr[u]); }
static inline const uint32_t *seq_at(const seqs *s, uint32_t u) { return s->items + s->ptr[u]; }

/* ---- files -------------------------------------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "coldstart_bench: cannot open %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = xmalloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) die(path, NULL);
    b[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

/* Games-6k.item: "id \t title"; ids 0..n-1. */
static char **read_games_items(const char *dir, uint32_t *n_items) {
    char path[1024];
    snprintf(path, sizeof path, "%s/Games-6k.item", dir);
    char *b = slurp(path, NULL);
    uint32_t cap = 20000, n = 0;
    char **titles = xcalloc(cap, sizeof *titles);
    char *line = strchr(b, '\n'); /* skip the header */
    while (line && *++line) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        char *tab = strchr(line, '\t');
        if (tab) {
            long id = strtol(line, NULL, 10);
            if (id < 0 || id >= 1000000) die("bad item id in Games-6k.item", NULL);
            if ((uint32_t)id >= cap) {
                uint32_t nc = (uint32_t)id * 2;
                char **t = realloc(titles, nc * sizeof *t);
                if (!t) die("out of memory", NULL);
                memset(t + cap, 0, (nc - cap) * sizeof *t);
                titles = t;
                cap = nc;
            }
            size_t l = strlen(tab + 1);
            if (l && tab[l] == '\r') tab[l] = 0;
            titles[id] = strdup(tab + 1);
            if ((uint32_t)id + 1 > n) n = (uint32_t)id + 1;
        }
        line = end;
    }
    free(b);
    *n_items = n;
    return titles;
}

/* A RecBole .inter file "user \t i1 i2 ... \t target": user tokens, histories and targets in file order. */
typedef struct inter {
    uint32_t n;
    uint32_t *user; /* raw user token */
    seqs hist;
    uint32_t *target;
} inter;

static void read_inter(const char *path, inter *in) {
    char *b = slurp(path, NULL);
    uint32_t cap = 1;
    for (char *p = b; *p; p++) cap += *p == '\n';
    in->user = xmalloc(cap * sizeof *in->user);
    in->target = xmalloc(cap * sizeof *in->target);
    seqs_init(&in->hist, cap);
    in->n = 0;
    char *line = strchr(b, '\n');
    while (line && *++line) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (t1 && t2) {
            in->user[in->n] = (uint32_t)strtoul(line, NULL, 10);
            seqs_begin(&in->hist);
            char *p = t1 + 1;
            while (p < t2) {
                char *q;
                unsigned long v = strtoul(p, &q, 10);
                if (q == p) break;
                seqs_push(&in->hist, (uint32_t)v);
                p = q;
                while (*p == ' ') p++;
            }
            seqs_end(&in->hist);
            in->target[in->n] = (uint32_t)strtoul(t2 + 1, NULL, 10);
            in->n++;
        }
        line = end;
    }
    free(b);
}

static void inter_free(inter *in) {
    free(in->user);
    free(in->target);
    seqs_free(&in->hist);
}

/* ---- training data from sequences ---------------------------------------------------------------------------- */

/* A fitted-data bundle: dataset + train set built from sequences (one user per sequence, ts = position). */
typedef struct trainbuf {
    mp_dataset *ds;
    mp_train_set ts;
} trainbuf;

static void trainbuf_build(trainbuf *tb, const seqs *s, uint32_t n_items, char *const *titles) {
    mp_error err;
    mp_error_clear(&err);
    size_t ne = s->ptr[s->n];
    mp_interaction *ev = xmalloc(ne * sizeof *ev);
    size_t k = 0;
    for (uint32_t u = 0; u < s->n; u++)
        for (uint32_t p = 0; p < seq_len(s, u); p++)
            ev[k++] = (mp_interaction){.user = u, .item = seq_at(s, u)[p], .ts = 1000 + p, .type = MP_EV_PURCHASE};
    if (mp_dataset_from_interactions(&tb->ds, s->n, n_items, ev, k, &err)) die("building the dataset", &err);
    free(ev);
    memset(&tb->ts, 0, sizeof tb->ts);
    if (mp_train_set_build(&tb->ts, tb->ds, tb->ds->events, tb->ds->n_events, NULL, &err))
        die("building the training set", &err);
    tb->ts.data.item_titles = (const char *const *)titles;
    tb->ts.data.n_threads = 2;
}

static void trainbuf_free(trainbuf *tb) {
    mp_train_set_free(&tb->ts);
    mp_dataset_destroy(tb->ds);
}

static mp_model *fit_model(const char *name, const char *params, const mp_train_data *d, double *secs) {
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    double t0 = now_s();
    if (mp_model_create(&m, name, &err)) die(name, &err);
    if (params && params[0] && mp_model_set_params(m, params, &err)) die(name, &err);
    if (mp_model_fit(m, d, NULL, &err)) die(name, &err);
    if (secs) *secs = now_s() - t0;
    logf_("fitted %s %s in %.1f s", name, params ? params : "", now_s() - t0);
    return m;
}

/* ---- scorers ------------------------------------------------------------------------------------------------- */

enum { SC_MODEL, SC_RANDOM, SC_TFIDF, SC_BM25, SC_EMB, SC_BLEND };
enum { AGG_MEAN, AGG_MAX, AGG_RECENT };

typedef struct scorer scorer;
struct scorer {
    int kind;
    uint32_t n_items;
    const mp_model *model;       /* SC_MODEL */
    uint64_t seed;               /* SC_RANDOM */
    const mp_textindex *ix;      /* SC_TFIDF, SC_BM25 */
    char *const *titles;         /* SC_BM25 (query text) */
    const float *emb;            /* SC_EMB [n_items * dim], rows unit length (zero rows = none) */
    uint32_t dim;
    int agg;                     /* SC_EMB, SC_TFIDF: how history items combine */
    double half_life;            /* AGG_RECENT / SC_TFIDF: 0.5^(r / half_life) for the r-th most recent item */
    const scorer *const *parts;  /* SC_BLEND */
    const double *weights;
    size_t n_parts;
};

static double recent_w(double half_life, size_t r) { return half_life > 0 ? exp2(-(double)r / half_life) : 1.0; }

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* out[c] for the candidates cand[0..nc) (cand NULL: every item, out[n_items]). hist in time order. */
static int score(const scorer *s, uint32_t user, const uint32_t *hist, size_t nh, const uint32_t *cand, size_t nc,
                 float *out, float *work, mp_error *err) {
    size_t n_out = cand ? nc : s->n_items;
    switch (s->kind) {
    case SC_MODEL: {
        mp_interaction *h = xmalloc((nh ? nh : 1) * sizeof *h);
        for (size_t i = 0; i < nh; i++)
            h[i] = (mp_interaction){.user = user, .item = hist[i], .ts = 1000 + (int64_t)i, .type = MP_EV_PURCHASE};
        mp_user_ctx ctx = {.user = user, .history = h, .n_history = nh};
        float *all = cand ? work : out;
        int rc = mp_model_score_all(s->model, &ctx, all, err);
        free(h);
        if (rc) return rc;
        uint32_t mn = mp_model_n_items(s->model);
        if (!cand)
            for (uint32_t i = mn; i < s->n_items; i++) out[i] = 0;
        else
            for (size_t c = 0; c < nc; c++) out[c] = cand[c] < mn ? all[cand[c]] : 0;
        return MP_OK;
    }
    case SC_RANDOM:
        for (size_t c = 0; c < n_out; c++) {
            uint32_t i = cand ? cand[c] : (uint32_t)c;
            out[c] = (float)((mix64(s->seed ^ ((uint64_t)user << 32) ^ i) >> 11) * 0x1.0p-53);
        }
        return MP_OK;
    case SC_TFIDF: {
        float *w = xmalloc((nh ? nh : 1) * sizeof *w);
        for (size_t i = 0; i < nh; i++) w[i] = (float)recent_w(s->half_life, nh - 1 - i);
        int rc = MP_OK;
        if (!cand) rc = mp_textindex_tfidf_profile_all(s->ix, hist, w, nh, out, err);
        else
            for (size_t c = 0; c < nc; c++) {
                double acc = 0;
                for (size_t i = 0; i < nh; i++) acc += w[i] * mp_textindex_tfidf_doc_cosine(s->ix, hist[i], cand[c]);
                out[c] = (float)acc;
            }
        free(w);
        return rc;
    }
    case SC_BM25: {
        size_t len = 1;
        for (size_t i = 0; i < nh; i++) len += (s->titles[hist[i]] ? strlen(s->titles[hist[i]]) : 0) + 1;
        char *q = xmalloc(len);
        size_t at = 0;
        for (size_t i = 0; i < nh; i++)
            if (s->titles[hist[i]]) {
                size_t l = strlen(s->titles[hist[i]]);
                memcpy(q + at, s->titles[hist[i]], l);
                at += l;
                q[at++] = ' ';
            }
        q[at] = 0;
        float *all = cand ? work : out;
        int rc = mp_textindex_bm25_all(s->ix, q, at, all, err);
        free(q);
        if (rc) return rc;
        if (cand)
            for (size_t c = 0; c < nc; c++) out[c] = all[cand[c]];
        return MP_OK;
    }
    case SC_EMB:
        if (s->agg != AGG_MAX && (!cand || nc > 64)) {
            /* a (weighted) mean of cosines is the cosine sum with the mean history vector: one sgemv */
            float *pv = xcalloc(s->dim, sizeof *pv);
            double wsum = 0;
            for (size_t k = 0; k < nh; k++) {
                double w = s->agg == AGG_RECENT ? recent_w(s->half_life, nh - 1 - k) : 1.0;
                mp_axpy((float)w, s->emb + (size_t)hist[k] * s->dim, pv, s->dim);
                wsum += w;
            }
            if (wsum > 0)
                for (uint32_t d = 0; d < s->dim; d++) pv[d] = (float)(pv[d] / wsum);
            float *all = cand ? work : out;
            mp_sgemv(s->n_items, s->dim, s->emb, s->dim, pv, all);
            free(pv);
            if (cand)
                for (size_t c = 0; c < nc; c++) out[c] = all[cand[c]];
            return MP_OK;
        }
        for (size_t c = 0; c < n_out; c++) {
            uint32_t i = cand ? cand[c] : (uint32_t)c;
            const float *e = s->emb + (size_t)i * s->dim;
            double acc = s->agg == AGG_MAX ? -1e30 : 0, wsum = 0;
            for (size_t k = 0; k < nh; k++) {
                const float *h = s->emb + (size_t)hist[k] * s->dim;
                double dot = 0;
                for (uint32_t d = 0; d < s->dim; d++) dot += (double)e[d] * h[d];
                if (s->agg == AGG_MAX) {
                    if (dot > acc) acc = dot;
                } else {
                    double w = s->agg == AGG_RECENT ? recent_w(s->half_life, nh - 1 - k) : 1.0;
                    acc += w * dot;
                    wsum += w;
                }
            }
            if (nh == 0) acc = 0;
            else if (s->agg != AGG_MAX && wsum > 0) acc /= wsum;
            out[c] = (float)acc;
        }
        return MP_OK;
    case SC_BLEND: {
        float *part = xmalloc(n_out * sizeof *part);
        float *pw = cand ? work : xmalloc(n_out * sizeof *pw);
        memset(out, 0, n_out * sizeof *out);
        int rc = MP_OK;
        for (size_t p = 0; p < s->n_parts && rc == MP_OK; p++) {
            if (s->weights[p] == 0) continue;
            if ((rc = score(s->parts[p], user, hist, nh, cand, nc, part, pw, err))) break;
            /* z-normalise over the scored items so parts on different scales add up */
            double mean = 0, sq = 0;
            for (size_t c = 0; c < n_out; c++) mean += part[c];
            mean /= (double)n_out;
            for (size_t c = 0; c < n_out; c++) sq += (part[c] - mean) * (part[c] - mean);
            double sd = sqrt(sq / (double)n_out);
            if (!(sd > 0)) continue;
            for (size_t c = 0; c < n_out; c++) out[c] += (float)(s->weights[p] * (part[c] - mean) / sd);
        }
        free(part);
        if (!cand) free(pw);
        return rc;
    }
    }
    return mp_error_set(err, MP_EINVAL, "unknown scorer");
}

static scorer sc_model(const mp_model *m, uint32_t n_items) {
    return (scorer){.kind = SC_MODEL, .n_items = n_items, .model = m};
}

/* ---- evaluation ----------------------------------------------------------------------------------------------- */

/* One evaluation case: a user's history (time order), the target, and the user id models know them by. */
typedef struct ecase {
    uint32_t user; /* MP_NO_USER when the user is not in the model's training data */
    const uint32_t *hist;
    uint32_t nh;
    uint32_t target;
    uint32_t cand[20]; /* candidate protocol only: the 20 candidates in shuffled order */
} ecase;

typedef struct metrics {
    double ndcg[4], hr[4]; /* at K = 1, 5, 10, 20 */
    double n;
} metrics;

static const uint32_t KS[4] = {1, 5, 10, 20};

/* Full ranking over all items less the history: NDCG / HR at 1, 5, 10, 20 (Recall@K = HR@K: one target). */
static metrics eval_full(const scorer *s, const ecase *cs, size_t n, uint32_t n_items) {
    double *nd = xcalloc(n * 4, sizeof *nd), *hr = xcalloc(n * 4, sizeof *hr);
    int failed = 0;
    mp_error err0;
    mp_error_clear(&err0);
#pragma omp parallel num_threads(2)
    {
        float *sc = xmalloc((size_t)n_items * sizeof *sc), *work = xmalloc((size_t)n_items * sizeof *work);
        uint8_t *allow = xmalloc(n_items);
        memset(allow, 1, n_items);
        mp_error err;
        mp_error_clear(&err);
#pragma omp for schedule(dynamic, 8)
        for (size_t c = 0; c < n; c++) {
            if (score(s, cs[c].user, cs[c].hist, cs[c].nh, NULL, 0, sc, work, &err)) {
#pragma omp critical
                {
                    failed = 1;
                    err0 = err;
                }
                continue;
            }
            for (uint32_t i = 0; i < cs[c].nh; i++) allow[cs[c].hist[i]] = 0;
            uint32_t top[20];
            size_t got;
            int trc = mp_topk(sc, n_items, allow, 20, top, &got);
            for (uint32_t i = 0; i < cs[c].nh; i++) allow[cs[c].hist[i]] = 1;
            if (trc != MP_OK) {
#pragma omp critical
                {
                    failed = 1;
                    mp_error_set(&err0, trc, "ranking %u items: %s", n_items, mp_strerror(trc));
                }
                continue;
            }
            for (int k = 0; k < 4; k++) {
                nd[c * 4 + k] = mp_metric_ndcg(top, got, &cs[c].target, 1, KS[k]);
                hr[c * 4 + k] = mp_metric_hr(top, got, &cs[c].target, 1, KS[k]);
            }
        }
        free(sc);
        free(work);
        free(allow);
    }
    if (failed) die("scoring", &err0);
    metrics m = {.n = (double)n};
    for (size_t c = 0; c < n; c++)
        for (int k = 0; k < 4; k++) {
            m.ndcg[k] += nd[c * 4 + k];
            m.hr[k] += hr[c * 4 + k];
        }
    for (int k = 0; k < 4; k++) {
        m.ndcg[k] /= n ? (double)n : 1;
        m.hr[k] /= n ? (double)n : 1;
    }
    free(nd);
    free(hr);
    return m;
}

/* Candidate scores for every case: out[c * 20 + j] (so blends can be tuned without re-scoring). */
static void cand_scores(const scorer *s, const ecase *cs, size_t n, uint32_t n_items, float *out) {
    int failed = 0;
    mp_error err0;
    mp_error_clear(&err0);
#pragma omp parallel num_threads(2)
    {
        float *work = xmalloc((size_t)n_items * sizeof *work);
        mp_error err;
        mp_error_clear(&err);
#pragma omp for schedule(dynamic, 4)
        for (size_t c = 0; c < n; c++)
            if (score(s, cs[c].user, cs[c].hist, cs[c].nh, cs[c].cand, 20, out + c * 20, work, &err)) {
#pragma omp critical
                {
                    failed = 1;
                    err0 = err;
                }
            }
        free(work);
    }
    if (failed) die("scoring", &err0);
}

/* Ranks the 20 candidates of each case by sc (ties: the shuffled order, i.e. at random) -> NDCG / HR. */
static metrics eval_cands(const ecase *cs, size_t n, const float *sc) {
    metrics m = {.n = (double)n};
    for (size_t c = 0; c < n; c++) {
        uint32_t pos[20], ranked[20];
        size_t got;
        if (mp_topk(sc + c * 20, 20, NULL, 20, pos, &got) != MP_OK) { /* k <= 128 never allocates */
            fprintf(stderr, "coldstart_bench: ranking 20 candidates failed\n");
            exit(1);
        }
        for (size_t j = 0; j < got; j++) ranked[j] = cs[c].cand[pos[j]];
        for (int k = 0; k < 4; k++) {
            m.ndcg[k] += mp_metric_ndcg(ranked, got, &cs[c].target, 1, KS[k]);
            m.hr[k] += mp_metric_hr(ranked, got, &cs[c].target, 1, KS[k]);
        }
    }
    for (int k = 0; k < 4; k++) {
        m.ndcg[k] /= n ? (double)n : 1;
        m.hr[k] /= n ? (double)n : 1;
    }
    return m;
}

/* z-normalised weighted sum of per-candidate score sets (as SC_BLEND does). */
static void blend_cands(const float *const *parts, const double *w, size_t np, size_t n, float *out) {
    memset(out, 0, n * 20 * sizeof *out);
    for (size_t p = 0; p < np; p++) {
        if (w[p] == 0) continue;
        for (size_t c = 0; c < n; c++) {
            const float *s = parts[p] + c * 20;
            double mean = 0, sq = 0;
            for (int j = 0; j < 20; j++) mean += s[j];
            mean /= 20;
            for (int j = 0; j < 20; j++) sq += (s[j] - mean) * (s[j] - mean);
            double sd = sqrt(sq / 20);
            if (!(sd > 0)) continue;
            for (int j = 0; j < 20; j++) out[c * 20 + j] += (float)(w[p] * (s[j] - mean) / sd);
        }
    }
}

/* ---- text encoders ---------------------------------------------------------------------------------------------- */

static mp_textindex *build_index(char *const *titles, uint32_t n, int char_ngrams) {
    mp_textindex_opts o;
    mp_textindex_default(&o);
    if (char_ngrams) {
        o.feat.minn = 3;
        o.feat.maxn = 5;
    }
    mp_textindex *ix;
    mp_error err;
    mp_error_clear(&err);
    if (mp_textindex_build((const char *const *)titles, NULL, n, &o, &ix, &err)) die("building the text index", &err);
    return ix;
}

/* USE-Lite embeddings of the titles, cached in cache_dir (the cache is only reused when its size matches). */
static float *use_embed(char *const *titles, uint32_t n, const char *cache_dir, const char *tag, double *secs) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s_use.f32", cache_dir, tag);
    float *e = xmalloc((size_t)n * MP_USE_DIM * sizeof *e);
    FILE *f = fopen(path, "rb");
    if (f) {
        size_t got = fread(e, sizeof *e, (size_t)n * MP_USE_DIM + 1, f);
        fclose(f);
        if (got == (size_t)n * MP_USE_DIM) {
            *secs = 0;
            logf_("USE-Lite embeddings from the cache %s", path);
            return e;
        }
    }
    mp_error err;
    mp_error_clear(&err);
    mp_use *m;
    double t0 = now_s();
    if (mp_use_load(NULL, &m, &err)) {
        logf_("USE-Lite rows left out: %s", err.msg);
        free(e);
        return NULL;
    }
    const char **t = xmalloc(n * sizeof *t);
    for (uint32_t i = 0; i < n; i++) t[i] = titles[i] ? titles[i] : "";
    if (mp_use_embed(m, t, NULL, n, 2, e, &err)) die("embedding the titles", &err);
    free(t);
    mp_use_free(m);
    *secs = now_s() - t0;
    logf_("USE-Lite: embedded %u titles in %.1f s", n, *secs);
    mkdir(cache_dir, 0777);
    if ((f = fopen(path, "wb"))) {
        fwrite(e, sizeof *e, (size_t)n * MP_USE_DIM, f);
        fclose(f);
    }
    return e;
}

/* Skip-gram trained on the catalog titles only (no interactions); item vectors = title vectors. */
static float *skipgram_embed(char *const *titles, uint32_t n, uint32_t *dim, double *secs) {
    mp_skipgram_opts o;
    mp_skipgram_default(&o);
    o.dim = 64;
    o.epochs = 10;
    o.min_count = 2;
    o.threads = 2;
    o.seed = 1;
    mp_skipgram *m;
    mp_error err;
    mp_error_clear(&err);
    double t0 = now_s();
    if (mp_skipgram_train((const char *const *)titles, NULL, n, &o, &m, &err)) {
        logf_("skip-gram rows left out: %s", err.msg);
        return NULL;
    }
    *dim = (uint32_t)mp_skipgram_dim(m);
    float *e = xcalloc((size_t)n * *dim, sizeof *e);
    for (uint32_t i = 0; i < n; i++) {
        int have = 0;
        if (titles[i] && mp_skipgram_text_vector(m, titles[i], strlen(titles[i]), e + (size_t)i * *dim, &have, &err))
            die("skip-gram title vector", &err);
        if (!have) memset(e + (size_t)i * *dim, 0, *dim * sizeof *e);
    }
    mp_skipgram_free(m);
    *secs = now_s() - t0;
    logf_("skip-gram on %u titles: %.1f s", n, *secs);
    return e;
}

/* ---- output ------------------------------------------------------------------------------------------------- */

typedef struct opts {
    uint64_t seed;
    uint32_t users;
    uint32_t tune_users;
    const char *cache;
    const char *hybrid_params;
    const char *seqknn_params;
    const char *models; /* comma-separated subset of the trained models to run, NULL = all */
    const char *split;  /* cold: "test" (default) or "valid" (Games-6k.valid.inter: for choosing parameters) */
} opts;

static int wanted(const opts *o, const char *name) {
    if (!o->models) return 1;
    size_t l = strlen(name);
    for (const char *p = o->models; (p = strstr(p, name)); p += l)
        if ((p == o->models || p[-1] == ',') && (p[l] == 0 || p[l] == ',')) return 1;
    return 0;
}

static int have_model(const char *name) { return mp_model_find(name) != NULL; }

/* ---- (a) cold items ------------------------------------------------------------------------------------------ */

static void row_full(const char *name, const metrics *m, double secs, const char *note) {
    printf("| %s | %.4f | %.4f | %.4f | %.4f | %.1f | %s |\n", name, m->hr[3], m->ndcg[3], m->hr[2], m->ndcg[2], secs,
           note ? note : "");
    fflush(stdout);
}

static int cmd_cold(const char *dir, const opts *o) {
    double t_start = now_s();
    uint32_t n_items;
    char **titles = read_games_items(dir, &n_items);
    inter te;
    char path[1024];
    const char *split = o->split ? o->split : "test";
    snprintf(path, sizeof path, "%s/Games-6k.%s.inter", dir, split);
    read_inter(path, &te);

    /* 20% of the items, seeded, lose every interaction */
    mp_rng rng;
    mp_rng_seed(&rng, o->seed);
    uint32_t *perm = xmalloc(n_items * sizeof *perm);
    for (uint32_t i = 0; i < n_items; i++) perm[i] = i;
    mp_rng_shuffle_u32(&rng, perm, n_items);
    uint8_t *cold = xcalloc(n_items, 1);
    uint32_t n_cold = n_items / 5;
    for (uint32_t i = 0; i < n_cold; i++) cold[perm[i]] = 1;

    /* training: every user's history (the test target held out); cold: without the cold items' events */
    seqs tr_cold, tr_warm;
    seqs_init(&tr_cold, te.n);
    seqs_init(&tr_warm, te.n);
    for (uint32_t u = 0; u < te.n; u++) {
        seqs_begin(&tr_cold);
        seqs_begin(&tr_warm);
        for (uint32_t p = 0; p < seq_len(&te.hist, u); p++) {
            uint32_t i = seq_at(&te.hist, u)[p];
            seqs_push(&tr_warm, i);
            if (!cold[i]) seqs_push(&tr_cold, i);
        }
        seqs_end(&tr_cold);
        seqs_end(&tr_warm);
    }
    /* test users: target cold and not already in their history; a seeded sample of o->users */
    uint32_t *cand_users = xmalloc(te.n * sizeof *cand_users), n_cand = 0;
    for (uint32_t u = 0; u < te.n; u++) {
        if (!cold[te.target[u]]) continue;
        int rep = 0;
        for (uint32_t p = 0; p < seq_len(&te.hist, u); p++) rep |= seq_at(&te.hist, u)[p] == te.target[u];
        if (!rep && seq_len(&tr_cold, u) > 0) cand_users[n_cand++] = u;
    }
    mp_rng_shuffle_u32(&rng, cand_users, n_cand);
    uint32_t n_eval = o->users && o->users < n_cand ? o->users : n_cand;
    ecase *cc = xcalloc(n_eval, sizeof *cc), *cw = xcalloc(n_eval, sizeof *cw);
    for (uint32_t c = 0; c < n_eval; c++) {
        uint32_t u = cand_users[c];
        cc[c] = (ecase){.user = u, .hist = seq_at(&tr_cold, u), .nh = seq_len(&tr_cold, u), .target = te.target[u]};
        cw[c] = (ecase){.user = u, .hist = seq_at(&tr_warm, u), .nh = seq_len(&tr_warm, u), .target = te.target[u]};
    }

    if (strcmp(split, "test"))
        printf("## (a) Cold items: Amazon Games titles, VALIDATION split (Games-6k.%s.inter; for choosing parameters)\n\n",
               split);
    else
        printf("## (a) Cold items: Amazon Games titles\n\n");
    const char *tgt_word = strcmp(split, "test") ? "validation" : "test";
    printf("Protocol: %u items, %u users (Games-6k.%s.inter). Seed %llu: %u items (20%%) are cold: all their "
           "events are removed from training and from every history. Training = every user's history without the %s "
           "target (%llu events cold / %llu warm). Evaluated: %u users (seeded sample of the %u whose %s target is a "
           "cold item not already in their history); each ranks all %u items less their history. Recall@K = HR@K (one "
           "target). `warm` rows are the upper bound: trained with the cold items' interactions (and full histories).\n\n",
           n_items, te.n, split, (unsigned long long)o->seed, n_cold, tgt_word, (unsigned long long)tr_cold.ptr[tr_cold.n],
           (unsigned long long)tr_warm.ptr[tr_warm.n], n_eval, n_cand, tgt_word, n_items);
    printf("| method | Recall@20 | NDCG@20 | Recall@10 | NDCG@10 | fit_s | notes |\n|---|---:|---:|---:|---:|---:|---|\n");
    fflush(stdout);

    trainbuf tbc, tbw;
    trainbuf_build(&tbc, &tr_cold, n_items, titles);
    trainbuf_build(&tbw, &tr_warm, n_items, titles);
    metrics r;
    double fit_s, t0;

    scorer rnd = {.kind = SC_RANDOM, .n_items = n_items, .seed = o->seed};
    r = eval_full(&rnd, cc, n_eval, n_items);
    row_full("random", &r, 0, "");

    mp_model *pop = fit_model("pop", NULL, &tbc.ts.data, &fit_s);
    scorer s = sc_model(pop, n_items);
    r = eval_full(&s, cc, n_eval, n_items);
    row_full("popularity (cold training)", &r, fit_s, "");
    mp_model_destroy(pop);

    t0 = now_s();
    mp_textindex *ixc = build_index(titles, n_items, 1);
    double ix_s = now_s() - t0;
    scorer tf = {.kind = SC_TFIDF, .n_items = n_items, .ix = ixc, .half_life = 0};
    r = eval_full(&tf, cc, n_eval, n_items);
    row_full("TF-IDF titles (char 3-5-grams + words, sum of cosines to the history)", &r, ix_s, "content only");
    scorer tfr = tf;
    tfr.half_life = 2;
    r = eval_full(&tfr, cc, n_eval, n_items);
    row_full("TF-IDF titles, recency-weighted (half-life 2 items)", &r, 0, "content only");

    double use_s = 0;
    float *use = use_embed(titles, n_items, o->cache, "games", &use_s);
    if (use) {
        scorer su = {.kind = SC_EMB, .n_items = n_items, .emb = use, .dim = MP_USE_DIM, .agg = AGG_RECENT,
                     .half_life = 2};
        r = eval_full(&su, cc, n_eval, n_items);
        row_full("USE-Lite titles (recency-weighted mean cosine)", &r, use_s, "content only; fit_s = embedding time");
    } else {
        printf("| USE-Lite titles | n/a | n/a | n/a | n/a | | USE-Lite model not available |\n");
    }

    if (!wanted(o, "hybrid")) {
    } else if (have_model("hybrid")) {
        tbc.ts.content.embeddings = use;
        tbc.ts.content.embedding_dim = use ? MP_USE_DIM : 0;
        tbc.ts.content.embedding_source = use ? "use-lite" : NULL;
        mp_model *hy = fit_model("hybrid", o->hybrid_params, &tbc.ts.data, &fit_s);
        s = sc_model(hy, n_items);
        r = eval_full(&s, cc, n_eval, n_items);
        row_full(use ? "**hybrid** (cold training, titles + USE-Lite)" : "**hybrid** (cold training, titles)", &r, fit_s,
                 o->hybrid_params);
        mp_model_destroy(hy);
        tbc.ts.content.embeddings = NULL;
        tbc.ts.content.embedding_dim = 0;
        tbc.ts.content.embedding_source = NULL;
    } else {
        printf("| hybrid | n/a | n/a | n/a | n/a | | model \"hybrid\" is not in this build's registry |\n");
    }

    mp_model *kw = fit_model("itemknn", NULL, &tbw.ts.data, &fit_s);
    s = sc_model(kw, n_items);
    r = eval_full(&s, cw, n_eval, n_items);
    row_full("warm bound: itemknn (co-occurrence, trained with the cold items)", &r, fit_s, "not cold-start");
    mp_model_destroy(kw);
    mp_model *sw = fit_model("seqknn", NULL, &tbw.ts.data, &fit_s);
    s = sc_model(sw, n_items);
    r = eval_full(&s, cw, n_eval, n_items);
    row_full("warm bound: seqknn (trained with the cold items)", &r, fit_s, "not cold-start");
    mp_model_destroy(sw);

    printf("\nTotal %.0f s.\n\n", now_s() - t_start);
    free(use);
    mp_textindex_free(ixc);
    trainbuf_free(&tbc);
    trainbuf_free(&tbw);
    free(cc);
    free(cw);
    free(cand_users);
    free(cold);
    free(perm);
    seqs_free(&tr_cold);
    seqs_free(&tr_warm);
    inter_free(&te);
    for (uint32_t i = 0; i < n_items; i++) free(titles[i]);
    free(titles);
    return 0;
}

/* ---- (b) LLMRank protocol -------------------------------------------------------------------------------------- */

static void row_cands(const char *name, const metrics *m, const char *note) {
    printf("| %s | %.2f | %.2f | %.2f | %.2f | %s |\n", name, 100 * m->ndcg[0], 100 * m->ndcg[1], 100 * m->ndcg[2],
           100 * m->ndcg[3], note ? note : "");
    fflush(stdout);
}

/* Shuffles the 20 candidates of a case with a generator seeded by (seed, case). */
static void shuffle_cands(ecase *c, uint64_t seed, uint64_t id) {
    mp_rng r;
    mp_rng_seed(&r, seed * 1000003ULL + id);
    mp_rng_shuffle_u32(&r, c->cand, 20);
}

#define N_ZS 7
#define N_TR 5

static int cmd_llmrank(const char *dir, const opts *o) {
    double t_start = now_s();
    uint32_t n_items;
    char **titles = read_games_items(dir, &n_items);
    inter te, va;
    char path[1024];
    snprintf(path, sizeof path, "%s/Games-6k.test.inter", dir);
    read_inter(path, &te);
    snprintf(path, sizeof path, "%s/Games-6k.valid.inter", dir);
    read_inter(path, &va);

    /* raw user token -> row of test.inter / valid.inter */
    uint32_t max_user = 0;
    for (uint32_t r = 0; r < te.n; r++)
        if (te.user[r] > max_user) max_user = te.user[r];
    uint32_t *row_of = xmalloc(((size_t)max_user + 1) * sizeof *row_of);
    for (uint32_t u = 0; u <= max_user; u++) row_of[u] = UINT32_MAX;
    for (uint32_t r = 0; r < te.n; r++) row_of[te.user[r]] = r;

    /* the 200 users of Games.random: first 19 candidates without the ground truth, plus the ground truth */
    snprintf(path, sizeof path, "%s/Games.random", dir);
    char *rb = slurp(path, NULL);
    ecase *tc = xcalloc(256, sizeof *tc);
    uint8_t *is_test = xcalloc((size_t)max_user + 1, 1);
    uint32_t n_test = 0;
    for (char *line = rb; line && *line && n_test < 256;) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        char *p = line, *q;
        unsigned long u = strtoul(p, &q, 10);
        if (q != p && u <= max_user && row_of[u] != UINT32_MAX) {
            uint32_t r = row_of[u];
            ecase *c = &tc[n_test];
            c->user = MP_NO_USER;
            c->hist = seq_at(&te.hist, r);
            c->nh = seq_len(&te.hist, r);
            c->target = te.target[r];
            uint32_t k = 0;
            p = q;
            while (k < 19) {
                unsigned long v = strtoul(p, &q, 10);
                if (q == p) break;
                p = q;
                if (v != c->target) c->cand[k++] = (uint32_t)v;
            }
            if (k < 19) die("Games.random: a line with fewer than 19 candidates", NULL);
            c->cand[19] = c->target;
            shuffle_cands(c, o->seed, n_test);
            is_test[u] = 1;
            n_test++;
        }
        line = end ? end + 1 : NULL;
    }
    free(rb);

    /* validation cases: a seeded sample of other users, valid history -> valid target, 19 random negatives */
    mp_rng rng;
    mp_rng_seed(&rng, o->seed);
    uint32_t *vperm = xmalloc(va.n * sizeof *vperm), n_vp = 0;
    for (uint32_t r = 0; r < va.n; r++)
        if (va.user[r] > max_user || !is_test[va.user[r]]) vperm[n_vp++] = r;
    mp_rng_shuffle_u32(&rng, vperm, n_vp);
    uint32_t n_val = o->tune_users < n_vp ? o->tune_users : n_vp;
    ecase *vc = xcalloc(n_val, sizeof *vc);
    uint8_t *is_val_row = xcalloc(va.n, 1);
    for (uint32_t c = 0; c < n_val; c++) {
        uint32_t r = vperm[c];
        is_val_row[r] = 1;
        vc[c] = (ecase){.user = MP_NO_USER, .hist = seq_at(&va.hist, r), .nh = seq_len(&va.hist, r),
                        .target = va.target[r]};
        uint32_t k = 0;
        while (k < 19) {
            uint32_t v = (uint32_t)mp_rng_below(&rng, n_items), dup = v == vc[c].target;
            for (uint32_t j = 0; j < k; j++) dup |= vc[c].cand[j] == v;
            if (!dup) vc[c].cand[k++] = v;
        }
        vc[c].cand[19] = vc[c].target;
        shuffle_cands(&vc[c], o->seed + 7, c);
    }

    /* training sequences. test setting: every other user's full sequence (history + test target); the 200 test
     * users' own histories are only their queries. validation setting: every user's valid sequence (no test
     * targets anywhere) except the validation sample's. */
    seqs tr_te, tr_va;
    seqs_init(&tr_te, te.n);
    seqs_init(&tr_va, va.n);
    for (uint32_t r = 0; r < te.n; r++) {
        seqs_begin(&tr_te);
        if (!is_test[te.user[r]]) {
            for (uint32_t p = 0; p < seq_len(&te.hist, r); p++) seqs_push(&tr_te, seq_at(&te.hist, r)[p]);
            seqs_push(&tr_te, te.target[r]);
        }
        seqs_end(&tr_te);
    }
    for (uint32_t r = 0; r < va.n; r++) {
        seqs_begin(&tr_va);
        if (!is_val_row[r]) {
            for (uint32_t p = 0; p < seq_len(&va.hist, r); p++) seqs_push(&tr_va, seq_at(&va.hist, r)[p]);
            seqs_push(&tr_va, va.target[r]);
        }
        seqs_end(&tr_va);
    }

    printf("## (b) LLMRank candidate ranking on Games\n\n");
    printf("Protocol (LLMRank, `props/overall.yaml`): the %u users of Games.random; candidates = the first 19 items "
           "of the user's Games.random line with the ground truth removed, plus the ground truth (test target of "
           "Games-6k.test.inter), shuffled (seed %llu; score ties fall in that random order); history = the test "
           "split's item_id_list. NDCG@K x100. Random ranking: 5.00 / 14.74 / 22.72 / 35.20.\n\n",
           n_test, (unsigned long long)o->seed);

    /* ---- zero-shot: titles only ---- */
    float *zs_test[N_ZS], *zs_val[N_ZS];
    const char *zs_name[N_ZS];
    double t0 = now_s();
    mp_textindex *ixw = build_index(titles, n_items, 0), *ixc = build_index(titles, n_items, 1);
    double ix_s = now_s() - t0, use_s = 0, sg_s = 0;
    float *use = use_embed(titles, n_items, o->cache, "games", &use_s);
    uint32_t sg_dim = 0;
    float *sg = skipgram_embed(titles, n_items, &sg_dim, &sg_s);
    scorer zs[N_ZS] = {
        {.kind = SC_BM25, .n_items = n_items, .ix = ixw, .titles = titles},
        {.kind = SC_TFIDF, .n_items = n_items, .ix = ixc, .half_life = 0},
        {.kind = SC_EMB, .n_items = n_items, .emb = use, .dim = MP_USE_DIM, .agg = AGG_MEAN},
        {.kind = SC_EMB, .n_items = n_items, .emb = use, .dim = MP_USE_DIM, .agg = AGG_MAX},
        {.kind = SC_EMB, .n_items = n_items, .emb = use, .dim = MP_USE_DIM, .agg = AGG_RECENT, .half_life = 2},
        {.kind = SC_EMB, .n_items = n_items, .emb = sg, .dim = sg_dim, .agg = AGG_RECENT, .half_life = 2},
        {.kind = SC_TFIDF, .n_items = n_items, .ix = ixc, .half_life = 2},
    };
    zs_name[0] = "BM25 (Magpie textindex, words; query = all history titles)";
    zs_name[1] = "TF-IDF char 3-5-grams + words (sum of cosines)";
    zs_name[2] = "USE-Lite, mean cosine to the history";
    zs_name[3] = "USE-Lite, max cosine to the history";
    zs_name[4] = "USE-Lite, recency-weighted mean (half-life 2)";
    zs_name[5] = "skip-gram on catalog titles, recency-weighted (half-life 2)";
    zs_name[6] = "TF-IDF char n-grams, recency-weighted (half-life 2)";
    for (int z = 0; z < N_ZS; z++) {
        zs_test[z] = zs_val[z] = NULL;
        if (zs[z].kind == SC_EMB && !zs[z].emb) continue;
        zs_test[z] = xmalloc((size_t)n_test * 20 * sizeof(float));
        zs_val[z] = xmalloc((size_t)n_val * 20 * sizeof(float));
        cand_scores(&zs[z], tc, n_test, n_items, zs_test[z]);
        cand_scores(&zs[z], vc, n_val, n_items, zs_val[z]);
    }
    printf("### Zero-shot: titles only, no Games interactions used\n\n");
    printf("Index %.1f s, USE-Lite embeddings %.1f s (0 = cached), skip-gram %.1f s.\n\n", ix_s, use_s, sg_s);
    printf("| method | N@1 | N@5 | N@10 | N@20 | notes |\n|---|---:|---:|---:|---:|---|\n");
    printf("| BM25 (published, LLMRank Table 3) | 13.92 | 28.81 | 34.61 | 44.35 | |\n");
    printf("| UniSRec zero-shot (published) | 18.95 | 33.99 | 40.71 | 48.42 | pretrained text encoder |\n");
    printf("| GPT-4 (published) | 39.50 | 58.22 | 62.88 | 65.25 | zero-shot LLM |\n");
    metrics r;
    for (int z = 0; z < N_ZS; z++) {
        if (!zs_test[z]) {
            printf("| %s | n/a | n/a | n/a | n/a | encoder not available |\n", zs_name[z]);
            continue;
        }
        r = eval_cands(tc, n_test, zs_test[z]);
        row_cands(zs_name[z], &r, "");
    }
    /* combinations: (1) every zero-shot scorer above with equal weights (no choice made at all); (2) weights chosen
     * on the validation cases (this uses validation interactions for 7 numbers, so it is labelled as such) */
    float *bl = xmalloc((size_t)(n_val > n_test ? n_val : n_test) * 20 * sizeof *bl);
    {
        const float *pt[N_ZS], *pv[N_ZS];
        double w[N_ZS];
        for (int z = 0; z < N_ZS; z++) {
            pt[z] = zs_test[z];
            pv[z] = zs_val[z];
            w[z] = pt[z] ? 1 : 0;
        }
        blend_cands(pt, w, N_ZS, n_test, bl);
        r = eval_cands(tc, n_test, bl);
        row_cands("**combination** of all the rows above (z-scored, equal weights)", &r, "no weights chosen");
        static const double grid[] = {0, 0.25, 0.5, 1, 1.5, 2};
        for (int z = 0; z < N_ZS; z++) w[z] = z == 0 ? 1 : 0;
        blend_cands(pv, w, N_ZS, n_val, bl);
        double best = eval_cands(vc, n_val, bl).ndcg[2];
        for (int round = 0; round < 2; round++)
            for (int z = 1; z < N_ZS; z++) {
                if (!pv[z]) continue;
                double keep = w[z];
                for (size_t g = 0; g < sizeof grid / sizeof *grid; g++) {
                    w[z] = grid[g];
                    blend_cands(pv, w, N_ZS, n_val, bl);
                    double v = eval_cands(vc, n_val, bl).ndcg[2];
                    if (v > best + 1e-9) {
                        best = v;
                        keep = grid[g];
                    }
                }
                w[z] = keep;
            }
        blend_cands(pt, w, N_ZS, n_test, bl);
        r = eval_cands(tc, n_test, bl);
        char note[256];
        int at = snprintf(note, sizeof note, "weights chosen on validation targets (N@10 %.2f there):", 100 * best);
        for (int z = 0; z < N_ZS; z++)
            if (w[z] > 0) at += snprintf(note + at, sizeof note - at, " row%d %.2f", z + 1, w[z]);
        row_cands("combination, weights tuned on validation (row1..row7 = the rows above in order)", &r, note);
    }

    /* ---- trained on the other users' histories ---- */
    printf("\n### Trained on the other users' histories\n\n");
    trainbuf tbt, tbv;
    trainbuf_build(&tbt, &tr_te, n_items, titles);
    trainbuf_build(&tbv, &tr_va, n_items, titles);
    tbt.ts.content.embeddings = tbv.ts.content.embeddings = use;
    tbt.ts.content.embedding_dim = tbv.ts.content.embedding_dim = use ? MP_USE_DIM : 0;
    tbt.ts.content.embedding_source = tbv.ts.content.embedding_source = use ? "use-lite" : NULL;
    printf("Training: %llu events of the %u other users (their full sequences: history + test target); the 200 "
           "users' own histories are only their queries. Models run with their defaults (seqknn's were chosen on Games "
           "validation, full ranking). Blend weights were chosen on validation: %u sampled users' "
           "Games-6k.valid.inter history -> valid target against 19 random items, with every model refitted on "
           "everyone else's valid sequences (%llu events); no test target is used for any choice.\n\n",
           (unsigned long long)tr_te.ptr[tr_te.n], te.n - n_test, n_val, (unsigned long long)tr_va.ptr[tr_va.n]);
    printf("| method | N@1 | N@5 | N@10 | N@20 | notes |\n|---|---:|---:|---:|---:|---|\n");
    printf("| popularity (issue check) | | | 53.28 | | |\n| plain co-occurrence kNN (issue check) | | | 62.78 | | |\n");
    printf("| GPT-4 (published) | 39.50 | 58.22 | 62.88 | 65.25 | |\n");
    const char *tr_name[N_TR] = {"pop", "itemknn", "als", "seqknn", "hybrid"};
    const char *tr_par[N_TR] = {NULL, NULL, NULL, o->seqknn_params, o->hybrid_params};
    float *tr_test[N_TR] = {0}, *tr_val[N_TR] = {0};
    int tr_have[N_TR] = {0};
    for (int k = 0; k < N_TR; k++) {
        if (!wanted(o, tr_name[k])) continue;
        if (!have_model(tr_name[k])) {
            printf("| %s | n/a | n/a | n/a | n/a | not in this build's registry |\n", tr_name[k]);
            continue;
        }
        double fs, fv;
        mp_model *mt = fit_model(tr_name[k], tr_par[k], &tbt.ts.data, &fs);
        mp_model *mv = fit_model(tr_name[k], tr_par[k], &tbv.ts.data, &fv);
        scorer st = sc_model(mt, n_items), sv = sc_model(mv, n_items);
        tr_test[k] = xmalloc((size_t)n_test * 20 * sizeof(float));
        tr_val[k] = xmalloc((size_t)n_val * 20 * sizeof(float));
        cand_scores(&st, tc, n_test, n_items, tr_test[k]);
        cand_scores(&sv, vc, n_val, n_items, tr_val[k]);
        tr_have[k] = 1;
        r = eval_cands(tc, n_test, tr_test[k]);
        metrics rv = eval_cands(vc, n_val, tr_val[k]);
        char note[256];
        snprintf(note, sizeof note, "fit %.1f s; validation N@10 %.2f", fs, 100 * rv.ndcg[2]);
        char nm[128];
        snprintf(nm, sizeof nm, "%s%s%s", tr_name[k], tr_par[k] ? " " : "", tr_par[k] ? tr_par[k] : "");
        row_cands(nm, &r, note);
        mp_model_destroy(mt);
        mp_model_destroy(mv);
    }
    /* blend: seqknn (weight 1) + itemknn + ALS + hybrid + popularity + USE-Lite recency + TF-IDF recency, weights
     * chosen on the validation cases by coordinate search (two rounds) over a small grid */
    {
#define NB 7
        const float *pv[NB] = {tr_val[3], tr_val[1], tr_val[2], tr_val[4], tr_val[0], zs_val[4], zs_val[6]};
        const float *pt[NB] = {tr_test[3], tr_test[1], tr_test[2], tr_test[4], tr_test[0], zs_test[4], zs_test[6]};
        const char *pn[NB] = {"seqknn", "itemknn", "als", "hybrid", "pop", "use", "tfidf"};
        double w[NB] = {1, 0, 0, 0, 0, 0, 0};
        static const double grid[] = {0, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5};
        int ok = tr_have[3];
        if (ok) {
            blend_cands(pv, w, NB, n_val, bl);
            double best = eval_cands(vc, n_val, bl).ndcg[2];
            for (int round = 0; round < 2; round++)
                for (int p = 1; p < NB; p++) {
                    if (!pv[p]) continue;
                    double keep = w[p];
                    for (size_t g = 0; g < sizeof grid / sizeof *grid; g++) {
                        w[p] = grid[g];
                        blend_cands(pv, w, NB, n_val, bl);
                        double v = eval_cands(vc, n_val, bl).ndcg[2];
                        if (v > best + 1e-9) {
                            best = v;
                            keep = grid[g];
                        }
                    }
                    w[p] = keep;
                }
            for (int p = 0; p < NB; p++)
                if (!pt[p]) w[p] = 0;
            blend_cands(pt, w, NB, n_test, bl);
            r = eval_cands(tc, n_test, bl);
            char note[512];
            int at = snprintf(note, sizeof note, "validation N@10 %.2f; weights", 100 * best);
            for (int p = 0; p < NB; p++)
                if (w[p] > 0) at += snprintf(note + at, sizeof note - at, " %s %.2f", pn[p], w[p]);
            row_cands("**blend** (z-scored sum, weights chosen on validation)", &r, note);
        }
#undef NB
    }
    printf("\nTotal %.0f s.\n\n", now_s() - t_start);

    for (int z = 0; z < N_ZS; z++) {
        free(zs_test[z]);
        free(zs_val[z]);
    }
    for (int k = 0; k < N_TR; k++) {
        free(tr_test[k]);
        free(tr_val[k]);
    }
    free(bl);
    trainbuf_free(&tbt);
    trainbuf_free(&tbv);
    free(use);
    free(sg);
    mp_textindex_free(ixw);
    mp_textindex_free(ixc);
    seqs_free(&tr_te);
    seqs_free(&tr_va);
    free(vc);
    free(is_val_row);
    free(vperm);
    free(tc);
    free(is_test);
    free(row_of);
    inter_free(&te);
    inter_free(&va);
    for (uint32_t i = 0; i < n_items; i++) free(titles[i]);
    free(titles);
    return 0;
}

/* ---- (c) short histories on Beauty ------------------------------------------------------------------------------ */

static char **read_beauty_attrs(const char *dir, uint32_t n_items) {
    char path[1024];
    snprintf(path, sizeof path, "%s/Beauty_item2attributes.json", dir);
    char *b = slurp(path, NULL);
    char **t = xcalloc(n_items, sizeof *t);
    char *p = b;
    while ((p = strchr(p, '"'))) {
        unsigned long id = strtoul(p + 1, &p, 10);
        char *open = strchr(p, '['), *close = open ? strchr(open, ']') : NULL;
        if (!close) break;
        char buf[2048];
        size_t at = 0;
        for (char *q = open + 1; q < close;) {
            char *e;
            unsigned long a = strtoul(q, &e, 10);
            if (e == q) {
                q++;
                continue;
            }
            if (at + 16 < sizeof buf) at += (size_t)snprintf(buf + at, sizeof buf - at, "%sattr%lu", at ? " " : "", a);
            q = e;
        }
        buf[at] = 0;
        if (id < n_items && at) t[id] = strdup(buf);
        p = close + 1;
    }
    free(b);
    return t;
}

static int cmd_short(const char *dir, const opts *o) {
    double t_start = now_s();
    char path[1024];
    snprintf(path, sizeof path, "%s/Beauty.txt", dir);
    char *b = slurp(path, NULL);
    uint32_t cap = 1, n_items = 0;
    for (char *p = b; *p; p++) cap += *p == '\n';
    seqs all;
    seqs_init(&all, cap);
    for (char *line = b; line && *line;) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        char *p = line, *q;
        strtoul(p, &q, 10); /* user id = line number */
        if (q != p) {
            p = q;
            seqs_begin(&all);
            for (;;) {
                unsigned long v = strtoul(p, &q, 10);
                if (q == p) break;
                p = q;
                seqs_push(&all, (uint32_t)v);
                if (v + 1 > n_items) n_items = (uint32_t)v + 1;
            }
            seqs_end(&all);
        }
        line = end ? end + 1 : NULL;
    }
    free(b);
    char **attrs = read_beauty_attrs(dir, n_items);

    /* 20% of users (seeded) are new: they keep only their first m events, m = 1, 2, 3 in turn; target = event m+1 */
    mp_rng rng;
    mp_rng_seed(&rng, o->seed);
    uint32_t *perm = xmalloc(all.n * sizeof *perm);
    for (uint32_t u = 0; u < all.n; u++) perm[u] = u;
    mp_rng_shuffle_u32(&rng, perm, all.n);
    uint32_t n_short = all.n / 5;
    if (o->users && o->users < n_short) n_short = o->users;
    uint32_t *keep = xmalloc(all.n * sizeof *keep);
    for (uint32_t u = 0; u < all.n; u++) keep[u] = UINT32_MAX;
    for (uint32_t c = 0; c < n_short; c++) keep[perm[c]] = 1 + c % 3;
    seqs tr;
    seqs_init(&tr, all.n);
    for (uint32_t u = 0; u < all.n; u++) {
        seqs_begin(&tr);
        uint32_t len = seq_len(&all, u), k = keep[u] < len ? keep[u] : len;
        for (uint32_t p = 0; p < k; p++) seqs_push(&tr, seq_at(&all, u)[p]);
        seqs_end(&tr);
    }
    ecase *cs = xcalloc(n_short, sizeof *cs);
    uint32_t n_eval = 0, by_m[4] = {0};
    for (uint32_t c = 0; c < n_short; c++) {
        uint32_t u = perm[c], m = keep[u];
        uint32_t t = seq_at(&all, u)[m];
        int rep = 0;
        for (uint32_t p = 0; p < m; p++) rep |= seq_at(&all, u)[p] == t;
        if (rep) continue; /* the next event repeats an item of the history: it cannot be ranked */
        cs[n_eval++] = (ecase){.user = u, .hist = seq_at(&tr, u), .nh = m, .target = t};
        by_m[m]++;
    }
    /* group the cases by m so each group can be scored on its own */
    ecase *grp[4];
    for (int m = 1; m <= 3; m++) {
        grp[m] = xmalloc(by_m[m] * sizeof *grp[m]);
        uint32_t k = 0;
        for (uint32_t c = 0; c < n_eval; c++)
            if (cs[c].nh == (uint32_t)m) grp[m][k++] = cs[c];
    }

    printf("## (c) New users with at most 3 events: Beauty\n\n");
    printf("Protocol: Beauty (S3-Rec files), %u users, %u items. Seed %llu: %u users (20%%) are new users: each keeps "
           "only its first m events in training, m = 1, 2, 3 in turn (%u / %u / %u evaluated); the target is the user's "
           "next event (event m+1); users whose next item repeats one of the m are left out. Every other user's full "
           "sequence is training data (%llu events in all). Each new user ranks all items less their m items "
           "(history = those m events; ALS knows them as training users). Content for the hybrid: the item attributes "
           "(categories + brand ids) as text tokens.\n\n",
           all.n, n_items - 1, (unsigned long long)o->seed, n_short, by_m[1], by_m[2], by_m[3],
           (unsigned long long)tr.ptr[tr.n]);
    printf("| method | NDCG@10 | HR@10 | NDCG@10 m=1 | m=2 | m=3 | fit_s |\n|---|---:|---:|---:|---:|---:|---:|\n");
    fflush(stdout);

    trainbuf tb;
    trainbuf_build(&tb, &tr, n_items, attrs);
    const char *names[] = {"pop", "itemknn", "als", "seqknn", "hybrid"};
    const char *pars[] = {NULL, NULL, NULL, o->seqknn_params, o->hybrid_params};
    for (int k = 0; k < 5; k++) {
        if (!wanted(o, names[k])) continue;
        if (!have_model(names[k])) {
            printf("| %s | n/a | n/a | | | | not in this build's registry |\n", names[k]);
            continue;
        }
        double fs;
        mp_model *m = fit_model(names[k], pars[k], &tb.ts.data, &fs);
        scorer s = sc_model(m, n_items);
        metrics r = eval_full(&s, cs, n_eval, n_items), rm[4];
        for (int g = 1; g <= 3; g++) rm[g] = eval_full(&s, grp[g], by_m[g], n_items);
        printf("| %s%s%s%s | %.4f | %.4f | %.4f | %.4f | %.4f | %.1f |\n", names[k],
               k == 4 ? " (attributes as content)" : "", pars[k] ? " " : "", pars[k] ? pars[k] : "", r.ndcg[2], r.hr[2], rm[1].ndcg[2], rm[2].ndcg[2], rm[3].ndcg[2], fs);
        fflush(stdout);
        mp_model_destroy(m);
    }
    printf("\nTotal %.0f s.\n\n", now_s() - t_start);
    trainbuf_free(&tb);
    for (int m = 1; m <= 3; m++) free(grp[m]);
    free(cs);
    free(keep);
    free(perm);
    seqs_free(&tr);
    seqs_free(&all);
    for (uint32_t i = 0; i < n_items; i++) free(attrs[i]);
    free(attrs);
    return 0;
}

/* ---- seqknn defaults on Games validation ------------------------------------------------------------------------ */

static int cmd_tune(const char *dir, const opts *o) {
    uint32_t n_items;
    char **titles = read_games_items(dir, &n_items);
    inter va;
    char path[1024];
    snprintf(path, sizeof path, "%s/Games-6k.valid.inter", dir);
    read_inter(path, &va);
    /* validation: a seeded sample of users, valid history -> valid target, full ranking; training = everyone's
     * valid history (the sample's targets held out; no test target anywhere) */
    seqs tr;
    seqs_init(&tr, va.n);
    for (uint32_t r = 0; r < va.n; r++) {
        seqs_begin(&tr);
        for (uint32_t p = 0; p < seq_len(&va.hist, r); p++) seqs_push(&tr, seq_at(&va.hist, r)[p]);
        seqs_end(&tr);
    }
    mp_rng rng;
    mp_rng_seed(&rng, o->seed);
    uint32_t *perm = xmalloc(va.n * sizeof *perm);
    for (uint32_t r = 0; r < va.n; r++) perm[r] = r;
    mp_rng_shuffle_u32(&rng, perm, va.n);
    uint32_t n = o->users && o->users < va.n ? o->users : 5000;
    ecase *cs = xcalloc(n, sizeof *cs);
    uint32_t ne = 0;
    for (uint32_t c = 0; c < va.n && ne < n; c++) {
        uint32_t r = perm[c];
        int rep = 0;
        for (uint32_t p = 0; p < seq_len(&va.hist, r); p++) rep |= seq_at(&va.hist, r)[p] == va.target[r];
        if (!rep && seq_len(&va.hist, r))
            cs[ne++] = (ecase){.user = r, .hist = seq_at(&va.hist, r), .nh = seq_len(&va.hist, r), .target = va.target[r]};
    }
    trainbuf tb;
    trainbuf_build(&tb, &tr, n_items, titles);
    printf("## seqknn on Games validation (full ranking, %u users, NDCG@10 / HR@10)\n\n", ne);
    printf("| params | NDCG@10 | HR@10 |\n|---|---:|---:|\n");
    const char *env = getenv("TUNE_GRID");
    const char *grid_default[] = {
        "", "window=1", "window=2", "window=5", "backward=0.25", "backward=1", "backward=0", "decay=0.5", "decay=2",
        "alpha=0.25", "alpha=0.75", "beta=0.25", "beta=0.75", "beta=1", "shrink=0", "shrink=5", "recency=1",
        "recency=4", "recency=0", NULL};
    const char **grid = grid_default;
    char *envcopy = NULL;
    const char *egrid[64];
    if (env) {
        envcopy = strdup(env);
        size_t k = 0;
        for (char *tok = strtok(envcopy, ";"); tok && k < 63; tok = strtok(NULL, ";")) egrid[k++] = tok;
        egrid[k] = NULL;
        grid = egrid;
    }
    for (size_t g = 0; grid[g]; g++) {
        mp_model *m = fit_model("seqknn", grid[g], &tb.ts.data, NULL);
        scorer s = sc_model(m, n_items);
        metrics r = eval_full(&s, cs, ne, n_items);
        printf("| %s | %.4f | %.4f |\n", grid[g][0] ? grid[g] : "(defaults)", r.ndcg[2], r.hr[2]);
        fflush(stdout);
        mp_model_destroy(m);
    }
    mp_model *m = fit_model("itemknn", NULL, &tb.ts.data, NULL);
    scorer s = sc_model(m, n_items);
    metrics r = eval_full(&s, cs, ne, n_items);
    printf("| itemknn (defaults, for reference) | %.4f | %.4f |\n", r.ndcg[2], r.hr[2]);
    mp_model_destroy(m);
    free(envcopy);
    trainbuf_free(&tb);
    free(cs);
    free(perm);
    seqs_free(&tr);
    inter_free(&va);
    for (uint32_t i = 0; i < n_items; i++) free(titles[i]);
    free(titles);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s cold|llmrank|short|tune DATA_DIR [--seed S] [--users N] [--tune-users N] "
                        "[--cache DIR] [--hybrid PARAMS] [--seqknn PARAMS] [--models pop,itemknn,als,seqknn,hybrid] [--split test|valid]\n", argv[0]);
        return 2;
    }
    opts o = {.seed = 42, .users = 0, .tune_users = 2000, .cache = "bench/out/coldstart", .hybrid_params = NULL};
    for (int a = 3; a + 1 < argc; a += 2) {
        if (!strcmp(argv[a], "--seed")) o.seed = strtoull(argv[a + 1], NULL, 10);
        else if (!strcmp(argv[a], "--users")) o.users = (uint32_t)strtoul(argv[a + 1], NULL, 10);
        else if (!strcmp(argv[a], "--tune-users")) o.tune_users = (uint32_t)strtoul(argv[a + 1], NULL, 10);
        else if (!strcmp(argv[a], "--cache")) o.cache = argv[a + 1];
        else if (!strcmp(argv[a], "--hybrid")) o.hybrid_params = argv[a + 1][0] ? argv[a + 1] : NULL;
        else if (!strcmp(argv[a], "--seqknn")) o.seqknn_params = argv[a + 1][0] ? argv[a + 1] : NULL;
        else if (!strcmp(argv[a], "--models")) o.models = argv[a + 1][0] ? argv[a + 1] : NULL;
        else if (!strcmp(argv[a], "--split")) {
            o.split = argv[a + 1];
            if (strcmp(o.split, "test") && strcmp(o.split, "valid")) {
                fprintf(stderr, "coldstart_bench: --split takes test or valid, not %s\n", o.split);
                return 2;
            }
        }
        else {
            fprintf(stderr, "coldstart_bench: unknown option %s\n", argv[a]);
            return 2;
        }
    }
    if (!strcmp(argv[1], "cold")) return cmd_cold(argv[2], &o);
    if (!strcmp(argv[1], "llmrank")) return cmd_llmrank(argv[2], &o);
    if (!strcmp(argv[1], "short")) return cmd_short(argv[2], &o);
    if (!strcmp(argv[1], "tune")) return cmd_tune(argv[2], &o);
    fprintf(stderr, "coldstart_bench: unknown command %s\n", argv[1]);
    return 2;
}
