/* bench/seq_bench.c: the sequential transformer (sasrec) measured beside seqknn, a blend of the two, OpenBLAS
 * sgemm, and its own inference paths. Driven by bench/sequential.sh; prints markdown rows and RESULT lines.
 *
 *   seq_bench quality DB [SASREC_PARAMS] [SEQKNN_PARAMS]
 *       S3-Rec protocol on a store: leave-last-one-out split (last item test, second-to-last validation), full
 *       ranking, history scored 0, HR and NDCG at 5, 10, 20. sasrec and seqknn are fitted on the training part
 *       with the validation part for early stopping; the blend w * z(sasrec) + (1 - w) * z(seqknn) (scores
 *       standardised per user) takes the w in 0, 0.1, .., 1 with the best validation NDCG@10. Then the epoch time
 *       (3 epochs without validation) and the latency of scoring one 50-item session over the catalog.
 *   seq_bench step [V] [B] [T]
 *       One training step (forward, full-softmax loss over V items on every position, backward, AdamW) of the
 *       default architecture on a full batch (B sequences of T items, no padding): ms per step, GFLOP/s counted
 *       from the shapes, and OpenBLAS sgemm's GFLOP/s on the logits' shape in the same run.
 *   seq_bench large [ITEMS] [USERS] [LEN]
 *       A synthetic catalog (default 1M items, Zipf popularity, sessions of LEN items): one epoch of loss=sampled,
 *       sequences per second and peak RSS; then a 50-item session's query vector and an HNSW search over the item
 *       vectors, against scoring every item. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "magpie/ann.h"
#include "magpie/dataset.h"
#include "magpie/eval.h"
#include "magpie/linalg.h"
#include "magpie/model.h"
#include "magpie/nn.h"
#include "magpie/rng.h"
#include "magpie/split.h"
#include "magpie/store.h"
#include "magpie/topk.h"
#include "magpie/trainset.h"

#ifdef MP_HAVE_CBLAS
#include <cblas.h>
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what, const mp_error *err) {
    fprintf(stderr, "seq_bench: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- quality ------------------------------------------------------------------------------------------------ */

typedef struct blend {
    const mp_model *a, *b;
    double w;
    uint32_t n_items;
} blend;

static void standardise(float *s, size_t n) {
    double m = 0, v = 0;
    for (size_t i = 0; i < n; i++) m += s[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++) v += (s[i] - m) * (s[i] - m);
    double sd = sqrt(v / (double)n);
    for (size_t i = 0; i < n; i++) s[i] = sd > 0 ? (float)((s[i] - m) / sd) : 0.0f;
}

static int blend_score(const void *ctx, const mp_user_ctx *u, float *scores, mp_error *err) {
    const blend *bl = ctx;
    size_t n = bl->n_items;
    float *tmp = malloc(n * sizeof *tmp);
    if (!tmp) return mp_error_set(err, MP_ENOMEM, "blend: out of memory");
    int rc = mp_model_score_all(bl->a, u, scores, err);
    if (rc == MP_OK) rc = mp_model_score_all(bl->b, u, tmp, err);
    if (rc == MP_OK) {
        standardise(scores, n);
        standardise(tmp, n);
        for (size_t i = 0; i < n; i++) scores[i] = (float)(bl->w * scores[i] + (1 - bl->w) * tmp[i]);
    }
    free(tmp);
    return rc;
}

static int model_score(const void *ctx, const mp_user_ctx *u, float *scores, mp_error *err) {
    return mp_model_score_all(ctx, u, scores, err);
}

static void print_row(const char *label, const char *params, const mp_eval_result *r, double fit_s, uint32_t epochs) {
    const mp_topk_metrics *m = r->overall.at;
    char ep[16] = "-";
    if (epochs) snprintf(ep, sizeof ep, "%u", epochs);
    printf("| %s | %s | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %s | %.0f |\n", label, params, m[0].hr, m[0].ndcg,
           m[1].hr, m[1].ndcg, m[2].hr, m[2].ndcg, ep, fit_s);
    printf("RESULT %s hr5=%.4f ndcg5=%.4f hr10=%.4f ndcg10=%.4f hr20=%.4f ndcg20=%.4f epochs=%u fit_s=%.1f\n", label,
           m[0].hr, m[0].ndcg, m[1].hr, m[1].ndcg, m[2].hr, m[2].ndcg, epochs, fit_s);
    fflush(stdout);
}

typedef struct fit_clock {
    uint64_t last_epoch;
} fit_clock;

static void on_progress(void *ctx, const char *stage, uint64_t done, uint64_t total, const char *unit) {
    (void)unit;
    fit_clock *c = ctx;
    if (strcmp(stage, "fit") == 0) {
        c->last_epoch = done;
        fprintf(stderr, "\r  epoch %llu/%llu ", (unsigned long long)done, (unsigned long long)total);
    }
}

static mp_model *fit(const char *name, const char *params, const mp_train_data *d, double *secs, uint32_t *epochs) {
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    if (mp_model_create(&m, name, &err) || (params && *params && mp_model_set_params(m, params, &err))) die(name, &err);
    fit_clock clock = {0};
    mp_progress prog = {.update = on_progress, .ctx = &clock};
    double t0 = now();
    if (mp_model_fit(m, d, &prog, &err)) die(name, &err);
    *secs = now() - t0;
    *epochs = (uint32_t)clock.last_epoch;
    fprintf(stderr, "\n");
    return m;
}

/* Seconds per epoch of sasrec on d: 3 epochs without validation (the same batches and kernels as a fit). */
static void epoch_time(const mp_train_data *td, const char *sp_params) {
    mp_train_data d = *td;
    d.valid = NULL;
    d.n_valid = 0;
    char p[1024];
    snprintf(p, sizeof p, "%s%sepochs=3", sp_params, *sp_params ? "," : "");
    double secs;
    uint32_t ep;
    mp_model *m3 = fit("sasrec", p, &d, &secs, &ep);
    printf("RESULT epoch_time sasrec_epoch_s=%.2f threads=%d\n", secs / 3, omp_get_max_threads());
    fflush(stdout);
    mp_model_destroy(m3);
}

/* One 50-item session scored over the catalog and ranked, on one thread (as a server request): p50 / p99 ms. */
static void latency(const mp_model *sr, uint32_t n_items) {
    mp_error err;
    mp_error_clear(&err);
    omp_set_num_threads(1);
    mp_rng rng;
    mp_rng_seed(&rng, 7);
    mp_interaction h[50];
    double lat[300];
    for (int q = 0; q < 300; q++) {
        for (int j = 0; j < 50; j++)
            h[j] = (mp_interaction){.user = MP_NO_USER, .item = (uint32_t)mp_rng_below(&rng, n_items), .ts = j,
                                    .type = MP_EV_VIEW};
        mp_user_ctx ctx = {.user = MP_NO_USER, .history = h, .n_history = 50};
        uint32_t top[10];
        size_t n;
        double t0 = now();
        if (mp_model_recommend(sr, &ctx, 10, NULL, 0, 1, NULL, top, NULL, &n, &err)) die("recommend", &err);
        lat[q] = (now() - t0) * 1e3;
    }
    qsort(lat, 300, sizeof *lat, cmp_double);
    printf("RESULT latency items=%u p50_ms=%.3f p99_ms=%.3f\n", n_items, lat[150], lat[297]);
    fflush(stdout);
}

/* seq_bench latency MODEL_FILE */
static int latency_cmd(int argc, char **argv) {
    if (argc < 3) return fprintf(stderr, "usage: seq_bench latency MODEL_FILE\n"), 2;
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    if (mp_model_load(&m, argv[2], &err)) die(argv[2], &err);
    latency(m, mp_model_n_items(m));
    mp_model_destroy(m);
    return 0;
}

static int quality(int argc, char **argv) {
    if (argc < 3) return fprintf(stderr, "usage: seq_bench quality DB [SASREC_PARAMS] [SEQKNN_PARAMS]\n"), 2;
    const char *sp_params = argc > 3 ? argv[3] : "", *sk_params = argc > 4 ? argv[4] : "";
    mp_error err;
    mp_error_clear(&err);
    mp_store *st;
    mp_dataset *ds;
    if (mp_store_open(&st, argv[2], MP_STORE_READONLY, &err) || mp_dataset_load(&ds, st, NULL, &err)) die(argv[2], &err);
    mp_split sp;
    mp_split_opts so;
    mp_split_opts_default(&so, MP_SPLIT_LEAVE_LAST);
    if (mp_split_make(ds, &so, &sp, &err)) die("split", &err);
    mp_train_set ts;
    memset(&ts, 0, sizeof ts);
    if (mp_train_set_build(&ts, ds, sp.train, sp.n_train, NULL, &err)) die("train set", &err);
    ts.data.valid = sp.valid;
    ts.data.n_valid = sp.n_valid;
    ts.data.n_threads = 0;
    mp_interaction *history;
    size_t n_history;
    if (mp_split_merge(sp.train, sp.n_train, sp.valid, sp.n_valid, &history, &n_history, &err)) die("merge", &err);

    if (getenv("SEQ_BENCH_EPOCH_ONLY")) { /* the speed row alone: the epoch time on the training part */
        epoch_time(&ts.data, sp_params);
        return 0;
    }
    double t_sr, t_sk;
    uint32_t e_sr, e_sk;
    mp_model *sr = fit("sasrec", sp_params, &ts.data, &t_sr, &e_sr);
    mp_model *sk = fit("seqknn", sk_params, &ts.data, &t_sk, &e_sk);

    mp_eval_opts eo;
    mp_eval_opts_default(&eo);
    eo.history = MP_HISTORY_ZERO;
    mp_eval_data test = {.n_users = ds->n_users, .n_items = ds->n_items, .history = history, .n_history = n_history,
                         .train = sp.train, .n_train = sp.n_train, .test = sp.test, .n_test = sp.n_test};
    mp_eval_data valid = test;
    valid.history = sp.train;
    valid.n_history = sp.n_train;
    valid.test = sp.valid;
    valid.n_test = sp.n_valid;

    mp_eval_result r;
    printf("| model | params | HR@5 | NDCG@5 | HR@10 | NDCG@10 | HR@20 | NDCG@20 | epochs | fit (s) |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    if (mp_evaluate(sr, &test, &eo, &r, &err)) die("evaluate sasrec", &err);
    print_row("Magpie sasrec", *sp_params ? sp_params : "defaults", &r, t_sr, e_sr);
    if (mp_evaluate(sk, &test, &eo, &r, &err)) die("evaluate seqknn", &err);
    print_row("Magpie seqknn", *sk_params ? sk_params : "defaults", &r, t_sk, 0);

    /* validation NDCG@10 (history = training part), what settings are chosen on */
    if (mp_evaluate(sr, &valid, &eo, &r, &err)) die("evaluate sasrec on valid", &err);
    printf("RESULT valid sasrec ndcg10=%.4f hr10=%.4f\n", r.overall.at[1].ndcg, r.overall.at[1].hr);
    fflush(stdout);
    if (getenv("SEQ_BENCH_SASREC_ONLY")) return 0;
    blend bl = {.a = sr, .b = sk, .n_items = ds->n_items};
    mp_eval_scorer sc = {.score_all = blend_score, .ctx = &bl, .n_items = ds->n_items};
    double best = -1, best_w = 1;
    for (int i = 0; i <= 10; i++) {
        bl.w = i / 10.0;
        if (mp_evaluate_scorer(&sc, &valid, &eo, &r, &err)) die("evaluate blend", &err);
        fprintf(stderr, "  blend w=%.1f valid NDCG@10 %.4f\n", bl.w, r.overall.at[1].ndcg);
        if (r.overall.at[1].ndcg > best) best = r.overall.at[1].ndcg, best_w = bl.w;
    }
    bl.w = best_w;
    if (mp_evaluate_scorer(&sc, &test, &eo, &r, &err)) die("evaluate blend", &err);
    char label[64];
    snprintf(label, sizeof label, "w=%.1f (valid NDCG@10 %.4f)", best_w, best);
    print_row("Magpie sasrec + seqknn blend", label, &r, t_sr + t_sk, 0);

    epoch_time(&ts.data, sp_params);

    latency(sr, ds->n_items);
    mp_model_destroy(sr);
    mp_model_destroy(sk);
    free(history);
    mp_train_set_free(&ts);
    mp_split_free(&sp);
    mp_dataset_destroy(ds);
    mp_store_close(st);
    (void)model_score;
    return 0;
}

/* ---- one training step ------------------------------------------------------------------------------------- */

/* Multiply-adds x 2 of one step: the forward's matrix products, the backward's two per product, and the loss's
 * logits (forward) with its two gradient products. Element-wise work (layer norm, GELU, softmax, AdamW) is left out,
 * as in the usual "model FLOPs" count. */
static double step_flops(const mp_nn_tfm_config *c, size_t B, size_t T, size_t rows) {
    double BT = (double)B * T, C = c->dim, F = c->ffn_dim, L = c->n_layers, V = c->n_vocab;
    double lin = 2 * BT * (C * 3 * C + C * C + C * F + F * C);
    double att = 2.0 * B * T * (T + 1) * C; /* causal QK^T and AV: T(T+1)/2 pairs, each 2 x hs x NH = 2C */
    double loss = 2 * (double)rows * V * C;
    return 3 * (L * (lin + att) + loss);
}

static int step(int argc, char **argv) {
    size_t V = argc > 2 ? strtoul(argv[2], NULL, 10) : 12101, B = argc > 3 ? strtoul(argv[3], NULL, 10) : 256;
    size_t T = argc > 4 ? strtoul(argv[4], NULL, 10) : 50;
    mp_error err;
    mp_error_clear(&err);
    mp_nn_tfm_config c = {.n_vocab = (uint32_t)V, .max_len = (uint32_t)T, .dim = 64, .n_layers = 2, .n_heads = 1,
                          .ffn_dim = 256, .dropout = 0.5f, .ln_eps = 1e-5f, .emb_scale = 8};
    mp_nn_tfm m;
    if (mp_nn_tfm_create(&m, &c, &err) || mp_nn_tfm_alloc(&m, B, 1, &err)) die("create", &err);
    mp_nn_tfm_init_weights(&m, 1);
    size_t N = B * T, C = c.dim, rows_blk = (16u << 20) / (V * sizeof(float));
    uint32_t *inp = malloc(N * sizeof *inp), *tgt = malloc(N * sizeof *tgt);
    float *dh = malloc(N * C * sizeof *dh), *scratch = malloc(rows_blk * V * sizeof *scratch);
    mp_rng rng;
    mp_rng_seed(&rng, 3);
    for (size_t i = 0; i < N; i++) inp[i] = (uint32_t)mp_rng_below(&rng, V), tgt[i] = (uint32_t)mp_rng_below(&rng, V);
    mp_nn_adamw opt = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-8f, .weight_decay = 0};
    double t_fwd = 0, t_loss = 0, t_bwd = 0, t_upd = 0;
    const int warm = 1, steps = 5;
    for (int s = 0; s < warm + steps; s++) {
        double t0 = now();
        if (mp_nn_tfm_forward(&m, inp, NULL, B, 1, (uint64_t)s, &err)) die("forward", &err);
        double t1 = now();
        mp_nn_tfm_zero_grad(&m);
        memset(dh, 0, N * C * sizeof *dh);
        double loss = 0;
        size_t cnt = 0;
        mp_nn_softmax_xent(&loss, &cnt, dh, m.grads.wte, m.acts.lnf, m.params.wte, tgt, N, C, V, 1.0f / (float)N,
                           scratch, rows_blk);
        mp_nn_rows_all(&m.wte_rows);
        double t2 = now();
        mp_nn_tfm_backward(&m, inp, dh, NULL);
        double t3 = now();
        mp_nn_tfm_update(&m, &opt, 1.0f, 0);
        double t4 = now();
        if (s >= warm) t_fwd += t1 - t0, t_loss += t2 - t1, t_bwd += t3 - t2, t_upd += t4 - t3;
    }
    double per = (t_fwd + t_loss + t_bwd + t_upd) / steps, fl = step_flops(&c, B, T, N);
    printf("RESULT step V=%zu B=%zu T=%zu threads=%d ms=%.1f fwd_ms=%.1f loss_ms=%.1f bwd_ms=%.1f update_ms=%.1f "
           "gflops=%.1f\n",
           V, B, T, omp_get_max_threads(), per * 1e3, t_fwd / steps * 1e3, t_loss / steps * 1e3, t_bwd / steps * 1e3,
           t_upd / steps * 1e3, fl / per * 1e-9);
#ifdef MP_HAVE_CBLAS
    {
        size_t M = 4096;
        float *A = malloc(M * C * sizeof *A), *Cm = malloc(M * V * sizeof *Cm);
        for (size_t i = 0; i < M * C; i++) A[i] = (float)mp_rng_normal(&rng);
        double best = 1e30;
        for (int r = 0; r < 4; r++) {
            double t0 = now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)V, (int)C, 1.0f, A, (int)C, m.params.wte,
                        (int)C, 0.0f, Cm, (int)V);
            double t = now() - t0;
            if (t < best) best = t;
        }
        printf("RESULT sgemm M=%zu N=%zu K=%zu gflops=%.1f (OpenBLAS, its own threads)\n", M, V, C,
               2.0 * M * V * C / best * 1e-9);
        free(A);
        free(Cm);
    }
#else
    printf("RESULT sgemm n/a (built with BLAS=none)\n");
#endif
    free(inp), free(tgt), free(dh), free(scratch);
    mp_nn_tfm_free(&m);
    return 0;
}

/* ---- a large catalog ----------------------------------------------------------------------------------------- */

static int large(int argc, char **argv) {
    uint32_t V = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1000000;
    uint32_t U = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 50000;
    uint32_t len = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 10) : 20;
    mp_error err;
    mp_error_clear(&err);
    /* Zipf(1) popularity by inverse CDF over ranks, a random permutation of ids; sessions wander: each next item is
     * a popular draw or a neighbour id of the last (so there is order to learn). */
    double *cdf = malloc((size_t)V * sizeof *cdf), H = 0;
    for (uint32_t r = 1; r <= V; r++) H += 1.0 / r, cdf[r - 1] = H;
    mp_rng rng;
    mp_rng_seed(&rng, 11);
    size_t n = (size_t)U * len;
    mp_interaction *ev = malloc(n * sizeof *ev);
    for (uint32_t u = 0; u < U; u++) {
        uint32_t last = 0;
        for (uint32_t j = 0; j < len; j++) {
            uint32_t it;
            if (j > 0 && mp_rng_uniform(&rng) < 0.5) {
                it = (last + 1 + (uint32_t)mp_rng_below(&rng, 3)) % V;
            } else {
                double x = mp_rng_uniform(&rng) * H;
                uint32_t lo = 0, hi = V - 1;
                while (lo < hi) {
                    uint32_t mid = lo + (hi - lo) / 2;
                    if (cdf[mid] > x) hi = mid;
                    else lo = mid + 1;
                }
                it = (uint32_t)(((uint64_t)lo * 2654435761u) % V);
            }
            ev[(size_t)u * len + j] = (mp_interaction){.user = u, .item = it, .ts = j, .type = MP_EV_VIEW};
            last = it;
        }
    }
    free(cdf);
    mp_train_data d = {.n_users = U, .n_items = V, .events = ev, .n_events = n, .n_threads = 0};
    mp_model *m;
    double rss0 = peak_rss_mib();
    if (mp_model_create(&m, "sasrec", &err) || mp_model_set_params(m, "loss=sampled,epochs=1", &err)) die("create", &err);
    double t0 = now();
    if (mp_model_fit(m, &d, NULL, &err)) die("fit", &err);
    double secs = now() - t0;
    printf("RESULT large items=%u users=%u len=%u epoch_s=%.1f seq_per_s=%.0f peak_rss_mib=%.0f (before fit %.0f)\n",
           V, U, len, secs, U / secs, peak_rss_mib(), rss0);
    fflush(stdout);

    const float *vecs;
    uint32_t nv, dim;
    if (mp_model_item_vectors(m, &vecs, &nv, &dim, &err)) die("item vectors", &err);
    mp_hnsw *h;
    t0 = now();
    if (mp_hnsw_build(&h, vecs, nv, dim, MP_ANN_IP, NULL, NULL, &err)) die("hnsw", &err);
    double t_build = now() - t0;
    mp_hnsw_scratch *scr;
    if (mp_hnsw_scratch_create(&scr, h, &err)) die("scratch", &err);
    omp_set_num_threads(1);
    float *q = malloc(dim * sizeof *q), *scores = malloc((size_t)V * sizeof *scores);
    double lat_ann[200], lat_full[20];
    mp_interaction hist[50];
    for (int k = 0; k < 200; k++) {
        for (int j = 0; j < 50; j++) hist[j] = ev[(size_t)(k % U) * len + (j % len)], hist[j].user = MP_NO_USER;
        mp_user_ctx ctx = {.user = MP_NO_USER, .history = hist, .n_history = 50};
        uint32_t ids[10];
        size_t got;
        int have;
        double a = now();
        if (mp_model_query_vector(m, &ctx, q, &have, &err) ||
            mp_hnsw_search(h, scr, q, 10, 0, NULL, ids, NULL, &got, &err))
            die("query", &err);
        lat_ann[k] = (now() - a) * 1e3;
        if (k < 20) {
            a = now();
            uint32_t top[10];
            if (mp_model_recommend(m, &ctx, 10, NULL, 0, 1, NULL, top, NULL, &got, &err)) die("recommend", &err);
            lat_full[k] = (now() - a) * 1e3;
        }
    }
    qsort(lat_ann, 200, sizeof(double), cmp_double);
    qsort(lat_full, 20, sizeof(double), cmp_double);
    printf("RESULT large_inference items=%u hnsw_build_s=%.0f ann_p50_ms=%.3f ann_p99_ms=%.3f full_p50_ms=%.2f\n", V,
           t_build, lat_ann[100], lat_ann[197], lat_full[10]);
    free(q), free(scores), free(ev);
    mp_hnsw_scratch_destroy(scr);
    mp_hnsw_destroy(h);
    mp_model_destroy(m);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "quality") == 0) return quality(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "step") == 0) return step(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "large") == 0) return large(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "latency") == 0) return latency_cmd(argc, argv);
    fprintf(stderr, "usage: seq_bench quality DB [SASREC_PARAMS] [SEQKNN_PARAMS] | step [V] [B] [T] | large [ITEMS] "
                    "[USERS] [LEN] | latency MODEL_FILE\n");
    return 2;
}
