#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "magpie/model.h"
#include "magpie/topk.h"
#include "magpie/modelfile.h"
#include "magpie/rng.h"
#include "test.h"

/* Reference top-k: selection by repeated scans (O(n k)), same ordering rules. */
static size_t naive_topk(const float *s, size_t n, const uint8_t *allow, size_t k, uint32_t *out) {
    uint8_t *used = calloc(n ? n : 1, 1);
    size_t got = 0;
    while (got < k) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
            if (used[i] || isnan(s[i]) || (allow && !allow[i])) continue;
            if (best == SIZE_MAX || s[i] > s[best]) best = i;
        }
        if (best == SIZE_MAX) break;
        used[best] = 1;
        out[got++] = (uint32_t)best;
    }
    free(used);
    return got;
}

MP_TEST(model_topk_basic_ties_and_bounds) {
    float s[6] = {0.5f, 2.0f, 1.0f, 2.0f, -1.0f, 1.0f};
    uint32_t out[10];
    size_t got;
    CHECK_EQ(mp_topk(s, 6, NULL, 3, out, &got), MP_OK);
    CHECK_EQ(got, 3);
    CHECK_EQ(out[0], 1); /* tie 2.0 between 1 and 3: lower index first */
    CHECK_EQ(out[1], 3);
    CHECK_EQ(out[2], 2); /* tie 1.0 between 2 and 5 */
    /* k > n returns everything, fully ordered. */
    CHECK_EQ(mp_topk(s, 6, NULL, 10, out, &got), MP_OK);
    CHECK_EQ(got, 6);
    uint32_t want[6] = {1, 3, 2, 5, 0, 4};
    for (int i = 0; i < 6; i++) CHECK_EQ(out[i], want[i]);
    CHECK_EQ(mp_topk(s, 6, NULL, 0, out, &got), MP_OK);
    CHECK_EQ(got, 0);
    CHECK_EQ(mp_topk(s, 0, NULL, 5, out, &got), MP_OK);
    CHECK_EQ(got, 0);
    /* All equal: indexes in order. */
    float z[5] = {0, 0, 0, 0, 0};
    CHECK_EQ(mp_topk(z, 5, NULL, 3, out, &got), MP_OK);
    CHECK_EQ(got, 3);
    CHECK(out[0] == 0 && out[1] == 1 && out[2] == 2);
    /* Infinities rank; NaN never does. */
    float inf[4] = {-INFINITY, NAN, INFINITY, 0};
    CHECK_EQ(mp_topk(inf, 4, NULL, 4, out, &got), MP_OK);
    CHECK_EQ(got, 3);
    CHECK(out[0] == 2 && out[1] == 3 && out[2] == 0);
}

MP_TEST(model_topk_allow_mask_and_nan) {
    float s[8] = {NAN, 5, 4, NAN, 3, 2, 1, 0};
    uint8_t allow[8] = {1, 0, 1, 1, 1, 0, 1, 1};
    uint32_t out[8];
    size_t n, got;
    CHECK_EQ(mp_topk(s, 8, allow, 8, out, &n), MP_OK);
    CHECK_EQ(n, 4); /* 2, 4, 6, 7 */
    CHECK(out[0] == 2 && out[1] == 4 && out[2] == 6 && out[3] == 7);
    CHECK_EQ(mp_topk(s, 8, allow, 2, out, &n), MP_OK);
    CHECK_EQ(n, 2);
    CHECK(out[0] == 2 && out[1] == 4);
    /* NaN first while filling must not block better items later. */
    float s2[4] = {NAN, NAN, 1, 2};
    CHECK_EQ(mp_topk(s2, 4, NULL, 1, out, &got), MP_OK);
    CHECK_EQ(got, 1);
    CHECK_EQ(out[0], 3);
    float all_nan[3] = {NAN, NAN, NAN};
    CHECK_EQ(mp_topk(all_nan, 3, NULL, 2, out, &got), MP_OK);
    CHECK_EQ(got, 0);
}

MP_TEST(model_topk_matches_reference_on_random_input) {
    mp_rng rng;
    mp_rng_seed(&rng, 7);
    size_t n = 3000;
    float *s = malloc(n * sizeof *s);
    uint8_t *allow = malloc(n);
    uint32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    CHECK(s && allow && a && b);
    size_t ks[] = {1, 5, 10, 100, 129, 500, 3000};
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < n; i++) {
            /* few distinct values so ties are common */
            s[i] = (float)mp_rng_below(&rng, round % 2 ? 20 : 100000);
            if (mp_rng_below(&rng, 50) == 0) s[i] = NAN;
            allow[i] = mp_rng_below(&rng, 4) != 0;
        }
        for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
            const uint8_t *mask = round % 3 ? allow : NULL;
            size_t na;
            CHECK_EQ(mp_topk(s, n, mask, ks[j], a, &na), MP_OK);
            size_t nb = naive_topk(s, n, mask, ks[j], b);
            CHECK_EQ(na, nb);
            for (size_t i = 0; i < na; i++) CHECK_MSG(a[i] == b[i], "round %d k %zu pos %zu", round, ks[j], i);
        }
    }
    free(s);
    free(allow);
    free(a);
    free(b);
}

MP_TEST(model_registry_and_params) {
    mp_error err;
    mp_error_clear(&err);
    const mp_model_ops *const *reg = mp_model_registry();
    CHECK(reg[0] != NULL);
    int found_pop = 0;
    for (size_t i = 0; reg[i]; i++) {
        CHECK(reg[i]->name && reg[i]->summary && reg[i]->file_version >= 1 && reg[i]->impl_size > 0);
        CHECK(mp_model_find(reg[i]->name) == reg[i]);
        if (!strcmp(reg[i]->name, "pop")) found_pop = 1;
    }
    CHECK(found_pop);
    CHECK(mp_model_find("no-such-model") == NULL);

    mp_model *m = NULL;
    CHECK_EQ(mp_model_create(&m, "no-such-model", &err), MP_EINVAL);
    CHECK(m == NULL);
    CHECK_CONTAINS(err.msg, "no-such-model");
    CHECK_CONTAINS(err.msg, "pop");

    CHECK_OK(mp_model_create(&m, "pop", &err), &err);
    CHECK(!mp_model_is_fitted(m));
    CHECK_EQ(mp_model_set_param(m, "nope", "1", &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "unknown parameter \"nope\"");
    CHECK_CONTAINS(err.msg, "half_life_days");
    CHECK_EQ(mp_model_set_param(m, "half_life_days", "", &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "empty value");
    CHECK_OK(mp_model_set_params(m, "half_life_days=3, weighted=1", &err), &err);
    CHECK_EQ(mp_model_set_params(m, "weighted", &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "key=value");
    CHECK_EQ(mp_model_set_params(m, "weighted=1,window_days=-2", &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "window_days");

    /* Unfitted models refuse to serve or save. */
    float scores[4];
    CHECK_EQ(mp_model_score_all(m, NULL, scores, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "not fitted");
    char path[600];
    snprintf(path, sizeof path, "%s/m.bin", mp_test_tmpdir(t));
    CHECK_EQ(mp_model_save(m, path, &err), MP_EINVAL);
    mp_model_destroy(m);
    mp_model_destroy(NULL);
}

/* A tiny fitted pop model: 5 items, item i has i+1 view events. */
static int tiny_model(mp_model **m, mp_error *err) {
    mp_interaction ev[15];
    size_t n = 0;
    for (uint32_t i = 0; i < 5; i++)
        for (uint32_t k = 0; k <= i; k++)
            ev[n++] = (mp_interaction){.user = k, .item = i, .ts = 1000 + n, .type = MP_EV_VIEW};
    mp_train_data d = {.n_users = 5, .n_items = 5, .events = ev, .n_events = n, .now = 2000};
    int rc = mp_model_create(m, "pop", err);
    if (rc) return rc;
    return mp_model_fit(*m, &d, NULL, err);
}

MP_TEST(model_recommend_exclusions_and_allow) {
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(tiny_model(&m, &err), &err);
    CHECK(mp_model_is_fitted(m));
    CHECK_EQ(mp_model_n_items(m), 5);
    uint32_t items[5];
    float sc[5];
    size_t got;
    CHECK_OK(mp_model_recommend(m, NULL, 3, NULL, 0, 1, NULL, items, sc, &got, &err), &err);
    CHECK_EQ(got, 3);
    CHECK(items[0] == 4 && items[1] == 3 && items[2] == 2);
    CHECK_NEAR(sc[0], 5, 1e-6);

    mp_interaction hist[2] = {{.user = 0, .item = 4, .ts = 1, .type = MP_EV_VIEW},
                              {.user = 0, .item = 99, .ts = 2, .type = MP_EV_VIEW}}; /* unknown item ignored */
    mp_user_ctx ctx = {.user = 0, .history = hist, .n_history = 2};
    uint32_t excl[3] = {3, 3, 1000};
    uint8_t allow[5] = {1, 1, 0, 1, 1};
    CHECK_OK(mp_model_recommend(m, &ctx, 5, excl, 3, 1, allow, items, sc, &got, &err), &err);
    CHECK_EQ(got, 2);
    CHECK(items[0] == 1 && items[1] == 0);
    /* exclude_history = 0 keeps history items. */
    CHECK_OK(mp_model_recommend(m, &ctx, 1, NULL, 0, 0, NULL, items, sc, &got, &err), &err);
    CHECK_EQ(got, 1);
    CHECK_EQ(items[0], 4);

    size_t n_sim;
    CHECK_EQ(mp_model_similar(m, 77, 3, items, sc, &n_sim, &err), MP_ENOTFOUND);
    mp_model_destroy(m);
}

MP_TEST(model_load_refuses_unknown_or_newer_models) {
    mp_error err;
    mp_error_clear(&err);
    const char *dir = mp_test_tmpdir(t);
    char path[600], other[600], newer[600], trail[600];
    snprintf(path, sizeof path, "%s/pop.model", dir);
    snprintf(other, sizeof other, "%s/other.model", dir);
    snprintf(newer, sizeof newer, "%s/newer.model", dir);
    snprintf(trail, sizeof trail, "%s/trail.model", dir);
    mp_model *m;
    CHECK_OK(tiny_model(&m, &err), &err);
    CHECK_OK(mp_model_save(m, path, &err), &err);
    mp_model_destroy(m);

    mp_model *l = NULL;
    CHECK_OK(mp_model_load(&l, path, &err), &err);
    CHECK(strcmp(mp_model_ops_of(l)->name, "pop") == 0);
    CHECK(mp_model_is_fitted(l));
    mp_model_destroy(l);

    mp_mf_writer *w;
    CHECK_OK(mp_mf_writer_create(&w), &err);
    mp_mf_put_u32(w, 1);
    CHECK_OK(mp_mf_writer_save(w, other, "deepfm9000", 1, &err), &err);
    CHECK_OK(mp_mf_writer_save(w, newer, "pop", 999, &err), &err);
    mp_mf_writer_destroy(w);

    l = NULL;
    CHECK_EQ(mp_model_load(&l, other, &err), MP_EUNSUPPORTED);
    CHECK(l == NULL);
    CHECK_CONTAINS(err.msg, other);
    CHECK_CONTAINS(err.msg, "deepfm9000");
    CHECK_EQ(mp_model_load(&l, newer, &err), MP_EVERSION);
    CHECK_CONTAINS(err.msg, newer);
    CHECK_CONTAINS(err.msg, "999");

    /* A valid pop payload with extra bytes at the end, and one cut short, both in well-formed files. */
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    unsigned char buf[4096];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CHECK(len > 72 && len < sizeof buf - 8);
    CHECK_OK(mp_mf_writer_create(&w), &err);
    mp_mf_put_bytes(w, buf + 72, len - 72);
    mp_mf_put_u32(w, 0);
    CHECK_OK(mp_mf_writer_save(w, trail, "pop", 1, &err), &err);
    mp_mf_writer_destroy(w);
    CHECK_EQ(mp_model_load(&l, trail, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "unread bytes");
    CHECK_CONTAINS(err.msg, trail);
    CHECK_OK(mp_mf_writer_create(&w), &err);
    mp_mf_put_bytes(w, buf + 72, len - 72 - 20);
    CHECK_OK(mp_mf_writer_save(w, trail, "pop", 1, &err), &err);
    mp_mf_writer_destroy(w);
    CHECK_EQ(mp_model_load(&l, trail, &err), MP_ECORRUPT);
    CHECK(l == NULL);
    CHECK_CONTAINS(err.msg, trail);
    CHECK_CONTAINS(err.msg, "truncated");
}

/* The batch call gives each user's row exactly what mp_model_recommend gives, on 1 and 3 threads, with short rows
 * padded, and reports progress up to the total. */
static void count_progress(void *ctx, const char *stage, uint64_t done, uint64_t total, const char *unit) {
    uint64_t *last = ctx;
    (void)unit;
    if (!strcmp(stage, "recommend") && done <= total) *last = done;
}

MP_TEST(model_recommend_many_matches_single_calls) {
    mp_error err;
    mp_error_clear(&err);
    mp_model *m;
    CHECK_OK(tiny_model(&m, &err), &err);
    enum { NU = 40, N = 4 };
    mp_interaction hist[NU][3];
    mp_user_ctx ctx[NU];
    for (uint32_t u = 0; u < NU; u++) {
        size_t h = u % 4; /* 0..3 history items: rows of 5 - h items, some shorter than N */
        for (size_t k = 0; k < h; k++)
            hist[u][k] = (mp_interaction){.user = u, .item = (uint32_t)((u + k) % 5), .ts = (int64_t)k, .type = MP_EV_VIEW};
        ctx[u] = (mp_user_ctx){.user = u < 5 ? u : MP_NO_USER, .history = hist[u], .n_history = h};
    }
    uint8_t allow[5] = {1, 1, 1, 0, 1};
    for (int threads = 1; threads <= 3; threads += 2) {
        uint32_t items[NU * N];
        float scores[NU * N];
        size_t n_out[NU];
        uint64_t last = 0;
        mp_progress prog = {count_progress, &last};
        CHECK_OK(mp_model_recommend_many(m, ctx, NU, N, 1, allow, threads, &prog, items, scores, n_out, &err), &err);
        CHECK_EQ(last, NU);
        for (uint32_t u = 0; u < NU; u++) {
            uint32_t want[N];
            float want_s[N];
            size_t got;
            CHECK_OK(mp_model_recommend(m, &ctx[u], N, NULL, 0, 1, allow, want, want_s, &got, &err), &err);
            CHECK_EQ(n_out[u], got);
            for (size_t r = 0; r < got; r++) {
                CHECK_EQ(items[u * N + r], want[r]);
                CHECK(scores[u * N + r] == want_s[r]);
            }
            for (size_t r = got; r < N; r++) {
                CHECK_EQ(items[u * N + r], UINT32_MAX);
                CHECK(isnan(scores[u * N + r]));
            }
        }
    }
    uint32_t items[N];
    size_t n_out[1];
    CHECK_EQ(mp_model_recommend_many(m, ctx, 1, 0, 1, NULL, 1, NULL, items, NULL, n_out, &err), MP_EINVAL);
    CHECK_EQ(mp_model_recommend_many(m, NULL, 1, N, 1, NULL, 1, NULL, items, NULL, n_out, &err), MP_EINVAL);
    mp_model *unfitted;
    CHECK_OK(mp_model_create(&unfitted, "pop", &err), &err);
    CHECK_EQ(mp_model_recommend_many(unfitted, ctx, 1, N, 1, NULL, 1, NULL, items, NULL, n_out, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "not fitted");
    mp_model_destroy(unfitted);
    mp_model_destroy(m);
}
