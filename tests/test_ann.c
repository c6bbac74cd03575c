/* Tests of the ANN module: exact search, the HNSW index (recall against exact search for each metric, the allow
 * filter, save/load, corrupt files, edge cases, determinism) and the distance kernels. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ann/ann_internal.h"
#include "magpie/ann.h"
#include "magpie/modelfile.h"
#include "magpie/rng.h"
#include "test.h"

static float *gaussian(uint64_t seed, size_t n, size_t dim) {
    float *v = malloc(n * dim * sizeof *v);
    mp_rng rng;
    mp_rng_seed(&rng, seed);
    for (size_t i = 0; v && i < n * dim; i++)
        v[i] = (float)mp_rng_normal(&rng);
    return v;
}

MP_TEST(ann_metric_parse) {
    mp_ann_metric m;
    CHECK_OK(mp_ann_metric_parse("ip", &m), &(mp_error){0});
    CHECK_EQ(m, MP_ANN_IP);
    CHECK_OK(mp_ann_metric_parse("cosine", &m), &(mp_error){0});
    CHECK_EQ(m, MP_ANN_COSINE);
    CHECK_OK(mp_ann_metric_parse("l2", &m), &(mp_error){0});
    CHECK_EQ(m, MP_ANN_L2);
    CHECK_EQ(mp_ann_metric_parse("dot", &m), MP_EINVAL);
    CHECK_EQ(mp_ann_metric_parse(NULL, &m), MP_EINVAL);
}

/* A hand-made set where the answers are known, ties included. */
MP_TEST(ann_exact_tiny_known_answers_and_ties) {
    const float v[6 * 2] = {
        1,  0,  /* 0: ip 1 */
        2,  0,  /* 1: ip 2 */
        1,  5,  /* 2: ip 1 (ties with 0) */
        -1, 0,  /* 3: ip -1 */
        2,  -3, /* 4: ip 2 (ties with 1) */
        0,  0,  /* 5: ip 0 */
    };
    const float q[2] = {1, 0};
    uint32_t ids[8];
    float sc[8];
    size_t n_out;
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(mp_ann_exact(v, 6, 2, MP_ANN_IP, q, 4, NULL, ids, sc, &n_out, &err), &err);
    CHECK_EQ(n_out, 4);
    const uint32_t want_ip[4] = {1, 4, 0, 2};
    const float want_ip_sc[4] = {2, 2, 1, 1};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(ids[i], want_ip[i]);
        CHECK(sc[i] == want_ip_sc[i]);
    }
    /* k above n gives all n */
    CHECK_OK(mp_ann_exact(v, 6, 2, MP_ANN_IP, q, 8, NULL, ids, sc, &n_out, &err), &err);
    CHECK_EQ(n_out, 6);
    CHECK_EQ(ids[4], 5);
    CHECK_EQ(ids[5], 3);
    /* the allow filter */
    const uint8_t allow[6] = {1, 0, 1, 1, 0, 1};
    CHECK_OK(mp_ann_exact(v, 6, 2, MP_ANN_IP, q, 3, allow, ids, sc, &n_out, &err), &err);
    CHECK_EQ(n_out, 3);
    CHECK(ids[0] == 0 && ids[1] == 2 && ids[2] == 5);
    /* L2: scores are minus the squared distance; (2, 0) and (0, 0) are both at 1 from (1, 0) */
    CHECK_OK(mp_ann_exact(v, 6, 2, MP_ANN_L2, q, 3, NULL, ids, sc, &n_out, &err), &err);
    CHECK_EQ(n_out, 3);
    CHECK(ids[0] == 0 && sc[0] == 0.0f);
    CHECK(ids[1] == 1 && sc[1] == -1.0f); /* ties with 5 at distance 1: the lower id first */
    CHECK(ids[2] == 5 && sc[2] == -1.0f);
    /* cosine: 0 and 1 point the same way (similarity 1), then 4, 2 */
    CHECK_OK(mp_ann_exact(v, 6, 2, MP_ANN_COSINE, q, 4, NULL, ids, sc, &n_out, &err), &err);
    CHECK_EQ(n_out, 4);
    CHECK(ids[0] == 0 && ids[1] == 1 && ids[2] == 4 && ids[3] == 2);
    CHECK_NEAR(sc[0], 1.0, 1e-6);
    CHECK_NEAR(sc[2], 2.0 / sqrt(13.0), 1e-6);
    CHECK_NEAR(sc[3], 1.0 / sqrt(26.0), 1e-6);
    /* k = 0 and n = 0 give nothing */
    CHECK_OK(mp_ann_exact(v, 6, 2, MP_ANN_IP, q, 0, NULL, ids, sc, &n_out, &err), &err);
    CHECK_EQ(n_out, 0);
    CHECK_OK(mp_ann_exact(NULL, 0, 2, MP_ANN_IP, q, 3, NULL, ids, sc, &n_out, &err), &err);
    CHECK_EQ(n_out, 0);
    /* bad input */
    const float nan_q[2] = {NAN, 0};
    CHECK_EQ(mp_ann_exact(v, 6, 2, MP_ANN_IP, nan_q, 3, NULL, ids, sc, &n_out, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "not finite");
    CHECK_EQ(mp_ann_exact(v, 6, 0, MP_ANN_IP, q, 3, NULL, ids, sc, &n_out, &err), MP_EINVAL);
    float bad_v[4] = {1, 0, INFINITY, 1};
    CHECK_EQ(mp_ann_exact(bad_v, 2, 2, MP_ANN_IP, q, 2, NULL, ids, sc, &n_out, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "row 1");
}

MP_TEST(ann_exact_batch_matches_single) {
    const uint32_t n = 3000, dim = 24, nq = 37, k = 7;
    float *v = gaussian(1, n, dim), *q = gaussian(2, nq, dim);
    uint8_t *allow = malloc(n);
    uint32_t *ids = malloc((size_t)nq * k * sizeof *ids), one[7];
    float *sc = malloc((size_t)nq * k * sizeof *sc), one_sc[7];
    CHECK(v && q && allow && ids && sc);
    for (uint32_t i = 0; i < n; i++)
        allow[i] = i % 3 != 0;
    mp_error err;
    mp_error_clear(&err);
    for (int m = 0; m < 3; m++) {
        size_t n_out, n1;
        CHECK_OK(mp_ann_exact_batch(v, n, dim, (mp_ann_metric)m, q, nq, k, allow, ids, sc, &n_out, 2, &err), &err);
        CHECK_EQ(n_out, k);
        for (uint32_t i = 0; i < nq; i++) {
            CHECK_OK(mp_ann_exact(v, n, dim, (mp_ann_metric)m, q + (size_t)i * dim, k, allow, one, one_sc, &n1, &err),
                     &err);
            CHECK_EQ(n1, k);
            CHECK(memcmp(one, ids + (size_t)i * k, k * sizeof *one) == 0);
            CHECK(memcmp(one_sc, sc + (size_t)i * k, k * sizeof *one_sc) == 0);
            for (uint32_t j = 0; j < k; j++)
                CHECK(allow[one[j]]);
            for (uint32_t j = 1; j < k; j++)
                CHECK(one_sc[j - 1] >= one_sc[j]);
        }
    }
    free(v);
    free(q);
    free(allow);
    free(ids);
    free(sc);
}

MP_TEST(ann_kernels_agree_with_reference) {
    mp_rng rng;
    mp_rng_seed(&rng, 5);
    float a[133], b[133];
    for (int i = 0; i < 133; i++) {
        a[i] = (float)mp_rng_normal(&rng);
        b[i] = (float)mp_rng_normal(&rng);
    }
    for (int m = 0; m < 3; m++) {
        mp_ann_dist_fn fast = mp_ann_dist_pick((mp_ann_metric)m, 1), ref = mp_ann_dist_pick((mp_ann_metric)m, 0);
        CHECK(ref == (m == MP_ANN_L2 ? mp_ann_l2sq_ref : mp_ann_neg_dot_ref));
        for (size_t dim = 1; dim <= 133; dim++) {
            double mag = 0;
            for (size_t i = 0; i < dim; i++)
                mag += m == MP_ANN_L2 ? (a[i] - b[i]) * (a[i] - b[i]) : fabs(a[i] * b[i]);
            float x = fast(a, b, dim), y = ref(a, b, dim);
            CHECK_MSG(fabs(x - y) <= 1e-5 * mag + 1e-6, "metric %d dim %zu: %g vs %g", m, dim, x, y);
        }
    }
}

/* Build and search settings of the recall tests: recall is about 0.99 for every metric (ASan keeps this fast). */
#define EFC_RECALL 48
#define EF_RECALL 256

/* Recall@10 of the index against exact search, and the scores of the items both find agree exactly. */
static void check_recall(mp_test_ctx *t, mp_ann_metric metric, double min_recall) {
    const uint32_t n = 20000, dim = 32, nq = 100, k = 10;
    float *v = gaussian(10 + (uint64_t)metric, n, dim), *q = gaussian(20 + (uint64_t)metric, nq, dim);
    if (metric == MP_ANN_L2) /* shift the data so L2 and IP rankings differ */
        for (size_t i = 0; i < (size_t)n * dim; i++)
            v[i] += (i % dim) < 4 ? 3.0f : 0.0f;
    uint32_t *gt = malloc((size_t)nq * k * sizeof *gt);
    float *gt_sc = malloc((size_t)nq * k * sizeof *gt_sc);
    CHECK(v && q && gt && gt_sc);
    mp_error err;
    mp_error_clear(&err);
    size_t n_out;
    CHECK_OK(mp_ann_exact_batch(v, n, dim, metric, q, nq, k, NULL, gt, gt_sc, &n_out, 0, &err), &err);
    mp_hnsw_params p;
    mp_hnsw_params_default(&p);
    p.M = 16;
    p.ef_construction = EFC_RECALL;
    p.n_threads = 2;
    mp_hnsw *h;
    CHECK_OK(mp_hnsw_build(&h, v, n, dim, metric, &p, NULL, &err), &err);
    CHECK_EQ(mp_hnsw_size(h), n);
    CHECK_EQ(mp_hnsw_dim(h), dim);
    CHECK_EQ(mp_hnsw_metric(h), metric);
    CHECK(mp_hnsw_memory(h) >= (size_t)n * dim * sizeof(float) + (size_t)n * (2 * p.M + 1) * 4);
    mp_hnsw_scratch *s;
    CHECK_OK(mp_hnsw_scratch_create(&s, h, &err), &err);
    size_t hits = 0;
    uint32_t ids[10];
    float sc[10];
    for (uint32_t i = 0; i < nq; i++) {
        CHECK_OK(mp_hnsw_search(h, s, q + (size_t)i * dim, k, EF_RECALL, NULL, ids, sc, &n_out, &err), &err);
        CHECK_EQ(n_out, k);
        for (uint32_t a = 0; a < k; a++) {
            if (a > 0) CHECK(sc[a - 1] >= sc[a]);
            for (uint32_t b = 0; b < k; b++) {
                if (ids[a] != gt[(size_t)i * k + b]) continue;
                hits++;
                CHECK_MSG(sc[a] == gt_sc[(size_t)i * k + b], "query %u id %u: score %g, exact %g", i, ids[a], sc[a],
                          gt_sc[(size_t)i * k + b]);
            }
        }
    }
    double recall = (double)hits / ((double)nq * k);
    if (getenv("ANN_TEST_VERBOSE")) fprintf(stderr, "metric %d recall %.4f\n", (int)metric, recall);
    CHECK_MSG(recall >= min_recall, "metric %d: recall@10 %.3f < %.2f", (int)metric, recall, min_recall);
    mp_hnsw_scratch_destroy(s);
    mp_hnsw_destroy(h);
    free(v);
    free(q);
    free(gt);
    free(gt_sc);
}

MP_TEST(ann_recall_ip) {
    check_recall(t, MP_ANN_IP, 0.95);
}
MP_TEST(ann_recall_cosine) {
    check_recall(t, MP_ANN_COSINE, 0.95);
}
MP_TEST(ann_recall_l2) {
    check_recall(t, MP_ANN_L2, 0.95);
}

MP_TEST(ann_allow_filter) {
    const uint32_t n = 5000, dim = 16, nq = 50, k = 10;
    float *v = gaussian(30, n, dim), *q = gaussian(31, nq, dim);
    uint8_t *allow = malloc(n), *few = calloc(n, 1), *none = calloc(n, 1);
    CHECK(v && q && allow && few && none);
    mp_rng rng;
    mp_rng_seed(&rng, 32);
    for (uint32_t i = 0; i < n; i++)
        allow[i] = mp_rng_uniform(&rng) >= 0.3; /* 30% filtered out */
    for (uint32_t i = 0; i < 5; i++)
        few[i * 997] = 1;
    mp_error err;
    mp_error_clear(&err);
    mp_hnsw_params p;
    mp_hnsw_params_default(&p);
    p.ef_construction = 60;
    p.n_threads = 1;
    mp_hnsw *h;
    CHECK_OK(mp_hnsw_build(&h, v, n, dim, MP_ANN_L2, &p, NULL, &err), &err);
    mp_hnsw_scratch *s;
    CHECK_OK(mp_hnsw_scratch_create(&s, h, &err), &err);
    uint32_t ids[10], gt[10];
    size_t n_out, n_gt, hits = 0;
    for (uint32_t i = 0; i < nq; i++) {
        const float *qi = q + (size_t)i * dim;
        /* ef = k: the filter must still give k results */
        CHECK_OK(mp_hnsw_search(h, s, qi, k, k, allow, ids, NULL, &n_out, &err), &err);
        CHECK_EQ(n_out, k);
        for (uint32_t a = 0; a < k; a++)
            CHECK(allow[ids[a]]);
        CHECK_OK(mp_hnsw_search(h, s, qi, k, 64, allow, ids, NULL, &n_out, &err), &err);
        CHECK_EQ(n_out, k);
        CHECK_OK(mp_ann_exact(v, n, dim, MP_ANN_L2, qi, k, allow, gt, NULL, &n_gt, &err), &err);
        for (uint32_t a = 0; a < k; a++)
            for (uint32_t b = 0; b < k; b++)
                hits += ids[a] == gt[b];
        /* only 5 allowed items: all 5 are found (the graph is traversed through the others) */
        CHECK_OK(mp_hnsw_search(h, s, qi, k, 0, few, ids, NULL, &n_out, &err), &err);
        CHECK_EQ(n_out, 5);
        for (uint32_t a = 0; a < 5; a++)
            CHECK(few[ids[a]]);
        CHECK_OK(mp_ann_exact(v, n, dim, MP_ANN_L2, qi, k, few, gt, NULL, &n_gt, &err), &err);
        CHECK(memcmp(ids, gt, 5 * sizeof *ids) == 0);
        CHECK_OK(mp_hnsw_search(h, s, qi, k, 0, none, ids, NULL, &n_out, &err), &err);
        CHECK_EQ(n_out, 0);
    }
    CHECK_MSG(hits >= 0.95 * nq * k, "filtered recall %.3f", (double)hits / (nq * k));
    mp_hnsw_scratch_destroy(s);
    mp_hnsw_destroy(h);
    free(v);
    free(q);
    free(allow);
    free(few);
    free(none);
}

static mp_hnsw *small_index(mp_test_ctx *t, uint32_t n, uint32_t dim, mp_ann_metric metric, int threads, float **vecs) {
    float *v = gaussian(40, n, dim);
    mp_hnsw_params p;
    mp_hnsw_params_default(&p);
    p.M = 8;
    p.ef_construction = 40;
    p.n_threads = threads;
    mp_error err;
    mp_error_clear(&err);
    mp_hnsw *h = NULL;
    int rc = mp_hnsw_build(&h, v, n, dim, metric, &p, NULL, &err);
    if (rc) mp_test_fail(t, __FILE__, __LINE__, "build: %s", err.msg);
    if (vecs)
        *vecs = v;
    else
        free(v);
    return h;
}

/* The same results for the same queries from two indexes. */
static int same_results(const mp_hnsw *a, const mp_hnsw *b, const float *q, uint32_t nq, uint32_t dim) {
    mp_hnsw_scratch *sa = NULL, *sb = NULL;
    int same = mp_hnsw_scratch_create(&sa, a, NULL) == MP_OK && mp_hnsw_scratch_create(&sb, b, NULL) == MP_OK;
    for (uint32_t i = 0; same && i < nq; i++) {
        uint32_t ia[10], ib[10];
        float fa[10], fb[10];
        size_t na, nb;
        same = mp_hnsw_search(a, sa, q + (size_t)i * dim, 10, 32, NULL, ia, fa, &na, NULL) == MP_OK &&
               mp_hnsw_search(b, sb, q + (size_t)i * dim, 10, 32, NULL, ib, fb, &nb, NULL) == MP_OK && na == nb &&
               na == 10 && !memcmp(ia, ib, sizeof ia) && !memcmp(fa, fb, sizeof fa);
    }
    mp_hnsw_scratch_destroy(sa);
    mp_hnsw_scratch_destroy(sb);
    return same;
}

MP_TEST(ann_save_load_round_trip) {
    const uint32_t n = 3000, dim = 12;
    mp_hnsw *h = small_index(t, n, dim, MP_ANN_COSINE, 2, NULL);
    CHECK(h != NULL);
    char path[600];
    snprintf(path, sizeof path, "%s/i.hnsw", mp_test_tmpdir(t));
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(mp_hnsw_save(h, path, &err), &err);
    mp_hnsw *g;
    CHECK_OK(mp_hnsw_load(&g, path, &err), &err);
    CHECK_EQ(mp_hnsw_size(g), n);
    CHECK_EQ(mp_hnsw_dim(g), dim);
    CHECK_EQ(mp_hnsw_metric(g), MP_ANN_COSINE);
    CHECK_EQ(mp_hnsw_memory(g), mp_hnsw_memory(h));
    float *q = gaussian(41, 40, dim);
    CHECK(same_results(h, g, q, 40, dim));
    /* the loaded one saves to the same bytes */
    char path2[600];
    snprintf(path2, sizeof path2, "%s/j.hnsw", mp_test_tmpdir(t));
    CHECK_OK(mp_hnsw_save(g, path2, &err), &err);
    size_t l1, l2;
    unsigned char *b1 = mp_test_slurp(path, &l1), *b2 = mp_test_slurp(path2, &l2);
    CHECK(b1 && b2 && l1 == l2 && memcmp(b1, b2, l1) == 0);
    free(b1);
    free(b2);
    free(q);
    mp_hnsw_destroy(g);
    mp_hnsw_destroy(h);
}

MP_TEST(ann_load_refuses_corrupt_files) {
    const uint32_t n = 500, dim = 8;
    mp_hnsw *h = small_index(t, n, dim, MP_ANN_IP, 1, NULL);
    CHECK(h != NULL);
    const char *dir = mp_test_tmpdir(t);
    char path[600], bad[600];
    snprintf(path, sizeof path, "%s/i.hnsw", dir);
    snprintf(bad, sizeof bad, "%s/bad.hnsw", dir);
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(mp_hnsw_save(h, path, &err), &err);
    size_t len;
    unsigned char *img = mp_test_slurp(path, &len);
    CHECK(img != NULL && len > 200);
    mp_hnsw *g = NULL;
    /* truncated */
    mp_test_write_bytes(bad, img, len - 7);
    CHECK_EQ(mp_hnsw_load(&g, bad, &err), MP_ECORRUPT);
    CHECK(g == NULL);
    CHECK_CONTAINS(err.msg, bad);
    /* one flipped bit in the links, in the vectors, in the header */
    size_t spots[3] = {72 + 60 + n + 100, len - 50, 20};
    for (int i = 0; i < 3; i++) {
        img[spots[i]] ^= 0x10;
        mp_test_write_bytes(bad, img, len);
        CHECK_EQ(mp_hnsw_load(&g, bad, &err), MP_ECORRUPT);
        CHECK(g == NULL);
        img[spots[i]] ^= 0x10;
    }
    /* another model's file */
    mp_mf_writer *w;
    CHECK_OK(mp_mf_writer_create(&w), &err);
    mp_mf_put_u32(w, 1);
    CHECK_OK(mp_mf_writer_save(w, bad, "als", 1, &err), &err);
    mp_mf_writer_destroy(w);
    CHECK_EQ(mp_hnsw_load(&g, bad, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "not an hnsw");
    /* well-formed files (valid checksums) holding a bad graph: a link out of range, a level above the top */
    for (int which = 0; which < 3; which++) {
        CHECK_OK(mp_mf_writer_create(&w), &err);
        mp_mf_put_u32(w, 2);         /* n */
        mp_mf_put_u32(w, 1);         /* dim */
        mp_mf_put_u32(w, MP_ANN_L2); /* metric */
        mp_mf_put_u32(w, 2);         /* M */
        mp_mf_put_u32(w, 10);        /* ef_construction */
        mp_mf_put_u64(w, 42);        /* seed */
        mp_mf_put_u32(w, 0);         /* entry */
        mp_mf_put_u32(w, 0);         /* top layer */
        uint8_t levels[2] = {0, which == 1 ? 1 : 0};
        mp_mf_put_bytes(w, levels, 2);
        uint32_t link0[10] = {1, which == 0 ? 7u : 1u, 0, 0, 0, 1, 0, 0, 0, 0};
        mp_mf_put_u32s(w, link0, 10);
        uint32_t up[3] = {0, 0, 0};
        mp_mf_put_u32s(w, up, which == 1 ? 3 : 0);
        float vv[2] = {0, which == 2 ? NAN : 1.0f};
        mp_mf_put_f32s(w, vv, 2);
        CHECK_OK(mp_mf_writer_save(w, bad, "hnsw", 1, &err), &err);
        mp_mf_writer_destroy(w);
        CHECK_EQ(mp_hnsw_load(&g, bad, &err), MP_ECORRUPT);
        CHECK(g == NULL);
        CHECK_CONTAINS(err.msg, which == 0 ? "link to 7" : which == 1 ? "above the top" : "non-finite");
    }
    /* and the same hand-made file with sound values loads and answers */
    CHECK_OK(mp_mf_writer_create(&w), &err);
    mp_mf_put_u32(w, 2);
    mp_mf_put_u32(w, 1);
    mp_mf_put_u32(w, MP_ANN_L2);
    mp_mf_put_u32(w, 2);
    mp_mf_put_u32(w, 10);
    mp_mf_put_u64(w, 42);
    mp_mf_put_u32(w, 0);
    mp_mf_put_u32(w, 0);
    uint8_t levels[2] = {0, 0};
    mp_mf_put_bytes(w, levels, 2);
    uint32_t link0[10] = {1, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    mp_mf_put_u32s(w, link0, 10);
    mp_mf_put_u32s(w, NULL, 0);
    float vv[2] = {0, 1};
    mp_mf_put_f32s(w, vv, 2);
    CHECK_OK(mp_mf_writer_save(w, bad, "hnsw", 1, &err), &err);
    mp_mf_writer_destroy(w);
    CHECK_OK(mp_hnsw_load(&g, bad, &err), &err);
    mp_hnsw_scratch *s;
    CHECK_OK(mp_hnsw_scratch_create(&s, g, &err), &err);
    uint32_t ids[2];
    float sc[2];
    size_t n_out;
    const float q = 0.9f;
    CHECK_OK(mp_hnsw_search(g, s, &q, 2, 0, NULL, ids, sc, &n_out, &err), &err);
    CHECK(n_out == 2 && ids[0] == 1 && ids[1] == 0);
    CHECK_NEAR(sc[0], -0.01, 1e-6);
    mp_hnsw_scratch_destroy(s);
    mp_hnsw_destroy(g);
    free(img);
    mp_hnsw_destroy(h);
}

MP_TEST(ann_bad_input_and_edge_sizes) {
    mp_error err;
    mp_error_clear(&err);
    mp_hnsw *h = NULL;
    float v[4 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    /* n = 0 */
    CHECK_EQ(mp_hnsw_build(&h, v, 0, 3, MP_ANN_IP, NULL, NULL, &err), MP_EEMPTY);
    CHECK(h == NULL);
    CHECK_CONTAINS(err.msg, "n = 0");
    /* dim 0, bad metric, bad parameters */
    CHECK_EQ(mp_hnsw_build(&h, v, 4, 0, MP_ANN_IP, NULL, NULL, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "dimension");
    CHECK_EQ(mp_hnsw_build(&h, v, 4, 3, (mp_ann_metric)7, NULL, NULL, &err), MP_EINVAL);
    mp_hnsw_params p;
    mp_hnsw_params_default(&p);
    CHECK(p.M == 16 && p.ef_construction == 200 && p.seed == 42 && p.n_threads == 0);
    p.M = 1;
    CHECK_EQ(mp_hnsw_build(&h, v, 4, 3, MP_ANN_IP, &p, NULL, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "M = 1");
    /* a NaN names its row */
    v[7] = NAN;
    CHECK_EQ(mp_hnsw_build(&h, v, 4, 3, MP_ANN_IP, NULL, NULL, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "row 2, column 1");
    v[7] = 8;
    /* n = 1 */
    CHECK_OK(mp_hnsw_build(&h, v, 1, 3, MP_ANN_L2, NULL, NULL, &err), &err);
    mp_hnsw_scratch *s;
    CHECK_OK(mp_hnsw_scratch_create(&s, h, &err), &err);
    uint32_t ids[4];
    float sc[4];
    size_t n_out;
    const float q[3] = {1, 2, 4};
    CHECK_OK(mp_hnsw_search(h, s, q, 3, 0, NULL, ids, sc, &n_out, &err), &err);
    CHECK(n_out == 1 && ids[0] == 0 && sc[0] == -1.0f);
    CHECK_OK(mp_hnsw_search(h, s, q, 0, 0, NULL, ids, sc, &n_out, &err), &err);
    CHECK_EQ(n_out, 0);
    /* a NaN query */
    const float nq[3] = {1, NAN, 0};
    CHECK_EQ(mp_hnsw_search(h, s, nq, 3, 0, NULL, ids, sc, &n_out, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "not finite");
    /* a scratch made for an index of another shape */
    mp_hnsw *other;
    CHECK_OK(mp_hnsw_build(&other, v, 4, 3, MP_ANN_L2, NULL, NULL, &err), &err);
    CHECK_EQ(mp_hnsw_search(other, s, q, 3, 0, NULL, ids, sc, &n_out, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "another index");
    CHECK_EQ(mp_hnsw_search(other, NULL, q, 3, 0, NULL, ids, sc, &n_out, &err), MP_EINVAL);
    /* four points: every k, every ef, all found in order */
    mp_hnsw_scratch *s4;
    CHECK_OK(mp_hnsw_scratch_create(&s4, other, &err), &err);
    for (size_t k = 1; k <= 4; k++) {
        CHECK_OK(mp_hnsw_search(other, s4, q, k, 1, NULL, ids, sc, &n_out, &err), &err);
        CHECK_EQ(n_out, k);
        for (size_t j = 0; j < k; j++)
            CHECK_EQ(ids[j], j);
    }
    mp_hnsw_scratch_destroy(s4);
    mp_hnsw_destroy(other);
    mp_hnsw_scratch_destroy(s);
    mp_hnsw_destroy(h);
    mp_hnsw_destroy(NULL);
    mp_hnsw_scratch_destroy(NULL);
    CHECK_EQ(mp_hnsw_load(&h, "/nonexistent/x.hnsw", &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "/nonexistent/x.hnsw");
}

MP_TEST(ann_one_thread_is_deterministic) {
    const uint32_t n = 2000, dim = 10;
    mp_hnsw *a = small_index(t, n, dim, MP_ANN_IP, 1, NULL), *b = small_index(t, n, dim, MP_ANN_IP, 1, NULL);
    CHECK(a && b);
    const char *dir = mp_test_tmpdir(t);
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/a.hnsw", dir);
    snprintf(pb, sizeof pb, "%s/b.hnsw", dir);
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(mp_hnsw_save(a, pa, &err), &err);
    CHECK_OK(mp_hnsw_save(b, pb, &err), &err);
    size_t la, lb;
    unsigned char *ia = mp_test_slurp(pa, &la), *ib = mp_test_slurp(pb, &lb);
    CHECK(ia && ib && la == lb && memcmp(ia, ib, la) == 0); /* the same graph, byte for byte */
    free(ia);
    free(ib);
    float *q = gaussian(7, 20, dim);
    CHECK(same_results(a, b, q, 20, dim));
    free(q);
    mp_hnsw_destroy(a);
    mp_hnsw_destroy(b);
}

/* Many identical vectors (cold items with zero or default embeddings are common) must not close into a clique
 * that traps the search: the other items are still found, and the copies themselves too. */
MP_TEST(ann_duplicates_do_not_trap_the_search) {
    const uint32_t n = 2000, dim = 8, nq = 20;
    float *v = gaussian(50, n, dim), *q = gaussian(51, nq, dim);
    CHECK(v && q);
    for (uint32_t i = 2; i < n; i += 2)
        memcpy(v + (size_t)i * dim, v, dim * sizeof *v); /* half the rows equal */
    mp_hnsw_params p;
    mp_hnsw_params_default(&p);
    p.ef_construction = 64;
    p.n_threads = 1;
    mp_error err;
    mp_error_clear(&err);
    for (int m = 0; m < 3; m++) {
        mp_hnsw *h;
        CHECK_OK(mp_hnsw_build(&h, v, n, dim, (mp_ann_metric)m, &p, NULL, &err), &err);
        mp_hnsw_scratch *s;
        CHECK_OK(mp_hnsw_scratch_create(&s, h, &err), &err);
        uint32_t ids[20], gt[20];
        float sc[20], gt_sc[20];
        size_t n_out, n_gt, hits = 0;
        for (uint32_t i = 0; i < nq; i++) {
            const float *qi = q + (size_t)i * dim;
            CHECK_OK(mp_hnsw_search(h, s, qi, 20, 100, NULL, ids, sc, &n_out, &err), &err);
            CHECK_EQ(n_out, 20);
            CHECK_OK(mp_ann_exact(v, n, dim, (mp_ann_metric)m, qi, 20, NULL, gt, gt_sc, &n_gt, &err), &err);
            /* copies tie, so compare scores, not ids */
            for (int a = 0, b = 0; a < 20 && b < 20;) {
                if (sc[a] == gt_sc[b])
                    hits++, a++, b++;
                else if (sc[a] > gt_sc[b])
                    a++;
                else
                    b++;
            }
        }
        CHECK_MSG(hits >= 0.95 * nq * 20, "metric %d: %zu of %u", m, hits, nq * 20);
        /* a copy as the query: the copies come back (all of them reachable: the lowest ids first) */
        CHECK_OK(mp_hnsw_search(h, s, v, 5, n, NULL, ids, sc, &n_out, &err), &err);
        CHECK(n_out == 5 && ids[0] == 0 && ids[1] == 2 && ids[4] == 8);
        mp_hnsw_scratch_destroy(s);
        mp_hnsw_destroy(h);
    }
    free(q);
    free(v);
}

typedef struct {
    uint64_t last, total, calls;
    int in_order;
} progress_seen;

static void on_progress(void *ctx, const char *stage, uint64_t done, uint64_t total, const char *unit) {
    progress_seen *p = ctx;
    if (strcmp(stage, "index") != 0 || unit != NULL || done < p->last) p->in_order = 0;
    p->last = done;
    p->total = total;
    p->calls++;
}

MP_TEST(ann_reports_progress) {
    const uint32_t n = 9000, dim = 4;
    float *v = gaussian(60, n, dim);
    progress_seen seen = {0, 0, 0, 1};
    mp_progress prog = {on_progress, &seen};
    mp_hnsw_params p;
    mp_hnsw_params_default(&p);
    p.M = 6;
    p.ef_construction = 20;
    mp_error err;
    mp_error_clear(&err);
    mp_hnsw *h;
    CHECK_OK(mp_hnsw_build(&h, v, n, dim, MP_ANN_L2, &p, &prog, &err), &err);
    CHECK(seen.in_order);
    CHECK(seen.calls >= 2);
    CHECK_EQ(seen.last, n);
    CHECK_EQ(seen.total, n);
    mp_hnsw_destroy(h);
    free(v);
}

/* Exclusions (a user's history) are filtered inside the search: the excluded ids never come back, k results still
 * do, and they are the exact top-k of the rest (recall checked against exact search with the same exclusions). */
MP_TEST(ann_search_excluding) {
    const uint32_t n = 4000, dim = 16, nq = 40, k = 10;
    float *v = gaussian(40, n, dim), *q = gaussian(41, nq, dim);
    uint8_t *allow = malloc(n);
    CHECK(v && q && allow);
    mp_error err;
    mp_error_clear(&err);
    mp_hnsw_params p;
    mp_hnsw_params_default(&p);
    p.ef_construction = 80;
    p.n_threads = 1;
    mp_hnsw *h;
    CHECK_OK(mp_hnsw_build(&h, v, n, dim, MP_ANN_IP, &p, NULL, &err), &err);
    mp_hnsw_scratch *s;
    CHECK_OK(mp_hnsw_scratch_create(&s, h, &err), &err);
    uint32_t ids[10], excl[30], gt[10];
    size_t n_out, n_gt, hits = 0;
    for (uint32_t i = 0; i < nq; i++) {
        const float *qi = q + (size_t)i * dim;
        /* exclude the exact top 30: the search must reach past all of them */
        uint32_t top30[30];
        size_t n30;
        CHECK_OK(mp_ann_exact(v, n, dim, MP_ANN_IP, qi, 30, NULL, top30, NULL, &n30, &err), &err);
        CHECK_EQ(n30, 30);
        memcpy(excl, top30, sizeof excl);
        for (size_t a = 1; a < 30; a++) /* ascending, as the contract asks */
            for (size_t b = a; b > 0 && excl[b - 1] > excl[b]; b--) {
                uint32_t x = excl[b];
                excl[b] = excl[b - 1];
                excl[b - 1] = x;
            }
        CHECK_OK(mp_hnsw_search_excluding(h, s, qi, k, 64, NULL, excl, 30, ids, NULL, &n_out, &err), &err);
        CHECK_EQ(n_out, k);
        for (uint32_t a = 0; a < k; a++)
            for (uint32_t b = 0; b < 30; b++)
                CHECK(ids[a] != excl[b]);
        for (uint32_t j = 0; j < n; j++)
            allow[j] = 1;
        for (uint32_t b = 0; b < 30; b++)
            allow[excl[b]] = 0;
        CHECK_OK(mp_ann_exact(v, n, dim, MP_ANN_IP, qi, k, allow, gt, NULL, &n_gt, &err), &err);
        for (uint32_t a = 0; a < k; a++)
            for (uint32_t b = 0; b < k; b++)
                hits += ids[a] == gt[b];
        /* no exclusions: the same as mp_hnsw_search */
        uint32_t ids2[10];
        size_t n2;
        CHECK_OK(mp_hnsw_search_excluding(h, s, qi, k, 64, NULL, NULL, 0, ids, NULL, &n_out, &err), &err);
        CHECK_OK(mp_hnsw_search(h, s, qi, k, 64, NULL, ids2, NULL, &n2, &err), &err);
        CHECK_EQ(n_out, n2);
        CHECK(memcmp(ids, ids2, n2 * sizeof *ids) == 0);
    }
    CHECK((double)hits / (nq * k) >= 0.9);
    mp_hnsw_scratch_destroy(s);
    mp_hnsw_destroy(h);
    free(v);
    free(q);
    free(allow);
}
