#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/model.h"
#include "magpie/nn.h"
#include "test.h"

/* Synthetic shoppers who walk a ring of K items in order: a user starts at a random item s and buys s, s+1, s+2,
 * ... (mod K), 3 to 8 items. The next item is a function of the last one, so a sequential model must rank
 * (last + 1) mod K first; the order matters (the same items in reverse never occur). Items are in 4 categories of
 * K/4 consecutive items, for the content projection. */
#define SR_K 16
#define SR_USERS 240

typedef struct sr_fx {
    mp_interaction *ev;
    size_t n;
    mp_train_data d;
    uint32_t cat[SR_K + 1];
    const char *cat_names[4];
    const char *titles[SR_K];
    char title_buf[SR_K][16];
} sr_fx;

static void fx_init(sr_fx *f) {
    memset(f, 0, sizeof *f);
    f->ev = malloc(SR_USERS * 8 * sizeof *f->ev);
    uint64_t x = 12345;
    for (uint32_t u = 0; u < SR_USERS; u++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t s = (uint32_t)(x >> 33) % SR_K, len = 3 + (uint32_t)(x >> 20) % 6;
        for (uint32_t j = 0; j < len; j++)
            f->ev[f->n++] = (mp_interaction){.user = u, .item = (s + j) % SR_K, .ts = 1000 + j, .type = MP_EV_PURCHASE};
    }
    static const char *const names[4] = {"Tea", "Coffee", "Cups", "Kettles"};
    for (int c = 0; c < 4; c++) f->cat_names[c] = names[c];
    for (uint32_t i = 0; i < SR_K; i++) {
        f->cat[i] = i / (SR_K / 4);
        snprintf(f->title_buf[i], sizeof f->title_buf[i], "Item %u", i);
        f->titles[i] = f->title_buf[i];
    }
    f->d = (mp_train_data){.n_users = SR_USERS, .n_items = SR_K, .events = f->ev, .n_events = f->n,
                           .item_category = f->cat, .category_names = f->cat_names, .n_categories = 4,
                           .item_titles = f->titles, .n_threads = 1};
}

static void fx_free(sr_fx *f) { free(f->ev); }

static const char *const SMALL = "dim=16,layers=1,heads=2,max_len=8,epochs=40,batch=32,dropout=0.1,lr=0.01,seed=7";

static int fit_sr(mp_model **m, const mp_train_data *d, const char *params, mp_error *err) {
    int rc = mp_model_create(m, "sasrec", err);
    if (rc) return rc;
    if (params && (rc = mp_model_set_params(*m, params, err))) return rc;
    return mp_model_fit(*m, d, NULL, err);
}

static mp_user_ctx ctx_of(const mp_interaction *h, size_t n) {
    return (mp_user_ctx){.user = MP_NO_USER, .history = h, .n_history = n};
}

static void walk(mp_interaction *h, uint32_t start, size_t n) {
    for (size_t j = 0; j < n; j++)
        h[j] = (mp_interaction){.user = MP_NO_USER, .item = (uint32_t)((start + j) % SR_K), .ts = 5000 + (int64_t)j,
                                .type = MP_EV_VIEW};
}

/* Sessions of 3 ring items from every start: how many get the next item of the ring ranked first (-1 on an error). */
static int ring_hits(const mp_model *m) {
    mp_error err;
    mp_error_clear(&err);
    int right = 0;
    mp_interaction h[3];
    for (uint32_t s = 0; s < SR_K; s++) {
        walk(h, s, 3);
        mp_user_ctx ctx = ctx_of(h, 3);
        uint32_t top[1];
        size_t n;
        if (mp_model_recommend(m, &ctx, 1, NULL, 0, 1, NULL, top, NULL, &n, &err) != MP_OK || n != 1) return -1;
        right += top[0] == (s + 3) % SR_K;
    }
    return right;
}

MP_TEST(sasrec_learns_the_next_item_and_follows_the_session) {
    sr_fx f;
    fx_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m = NULL;
    CHECK_OK(fit_sr(&m, &f.d, SMALL, &err), &err);
    int right = ring_hits(m);
    CHECK_MSG(right >= SR_K - 1, "next item ranked first for %d of %d sessions", right, SR_K);
    mp_interaction h[4];
    /* real time: the answer moves with each event of an anonymous session */
    walk(h, 5, 4);
    for (size_t len = 1; len <= 4; len++) {
        mp_user_ctx ctx = ctx_of(h, len);
        uint32_t top[1];
        size_t n;
        CHECK_OK(mp_model_recommend(m, &ctx, 1, NULL, 0, 1, NULL, top, NULL, &n, &err), &err);
        CHECK_EQ(top[0], (5 + len) % SR_K);
    }
    /* the reason names the history item the newest position attends to */
    mp_user_ctx ctx = ctx_of(h, 3);
    char buf[256];
    CHECK_OK(mp_model_explain(m, &ctx, 8, buf, sizeof buf, &err), &err);
    CHECK_CONTAINS(buf, "because you viewed \"Item ");
    /* an empty session has nothing to attend to */
    mp_user_ctx none = ctx_of(NULL, 0);
    CHECK_OK(mp_model_explain(m, &none, 8, buf, sizeof buf, &err), &err);
    CHECK_CONTAINS(buf, "no history");
    mp_model_destroy(m);
    fx_free(&f);
}

MP_TEST(sasrec_query_vector_times_item_vectors_is_score_all) {
    sr_fx f;
    fx_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m = NULL;
    CHECK_OK(fit_sr(&m, &f.d, "dim=8,layers=1,max_len=8,epochs=2,batch=64", &err), &err);
    const float *vecs;
    uint32_t n, dim;
    CHECK_OK(mp_model_item_vectors(m, &vecs, &n, &dim, &err), &err);
    CHECK_EQ(n, SR_K);
    CHECK_EQ(dim, 8);
    mp_interaction h[5];
    walk(h, 11, 5);
    mp_user_ctx ctx = ctx_of(h, 5);
    float q[8], scores[SR_K];
    int have = 0;
    CHECK_OK(mp_model_query_vector(m, &ctx, q, &have, &err), &err);
    CHECK(have);
    CHECK_OK(mp_model_score_all(m, &ctx, scores, &err), &err);
    for (uint32_t i = 0; i < SR_K; i++) {
        double s = 0;
        for (uint32_t k = 0; k < dim; k++) s += (double)q[k] * vecs[i * dim + k];
        CHECK_NEAR(scores[i], s, 1e-4 * (1 + fabs(s)));
    }
    /* similar items come from the output embeddings: the item itself is never among them */
    uint32_t sim[4];
    float ss[4];
    size_t ns;
    CHECK_OK(mp_model_similar(m, 3, 4, sim, ss, &ns, &err), &err);
    CHECK_EQ(ns, 4);
    for (size_t i = 0; i < ns; i++) CHECK(sim[i] != 3);
    /* an anonymous session of items the model does not know: no query */
    mp_interaction unk[1] = {{.user = MP_NO_USER, .item = SR_K + 5, .ts = 1, .type = MP_EV_VIEW}};
    ctx = ctx_of(unk, 1);
    CHECK_OK(mp_model_query_vector(m, &ctx, q, &have, &err), &err);
    CHECK_EQ(have, 0);
    mp_model_destroy(m);
    fx_free(&f);
}

MP_TEST(sasrec_same_seed_same_model_and_file_round_trip) {
    sr_fx f;
    fx_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *a = NULL, *b = NULL, *c = NULL;
    const char *p = "dim=8,layers=2,heads=2,max_len=6,epochs=3,batch=50,dropout=0.3,seed=3";
    CHECK_OK(fit_sr(&a, &f.d, p, &err), &err);
    CHECK_OK(fit_sr(&b, &f.d, p, &err), &err);
    mp_interaction h[6];
    walk(h, 2, 6);
    mp_user_ctx ctx = ctx_of(h, 6);
    float sa[SR_K], sb[SR_K], sc[SR_K];
    CHECK_OK(mp_model_score_all(a, &ctx, sa, &err), &err);
    CHECK_OK(mp_model_score_all(b, &ctx, sb, &err), &err);
    CHECK(memcmp(sa, sb, sizeof sa) == 0);
    char path[600];
    snprintf(path, sizeof path, "%s/sasrec.mpm", mp_test_tmpdir(t));
    CHECK_OK(mp_model_save(a, path, &err), &err);
    CHECK_OK(mp_model_load(&c, path, &err), &err);
    CHECK_OK(mp_model_score_all(c, &ctx, sc, &err), &err);
    CHECK(memcmp(sa, sc, sizeof sa) == 0);
    char b1[256], b2[256];
    CHECK_OK(mp_model_explain(a, &ctx, 9, b1, sizeof b1, &err), &err);
    CHECK_OK(mp_model_explain(c, &ctx, 9, b2, sizeof b2, &err), &err);
    CHECK(strcmp(b1, b2) == 0);
    /* a flipped byte is refused */
    size_t len;
    unsigned char *img = mp_test_slurp(path, &len);
    CHECK(img && len > 100);
    img[len / 2] ^= 0x40;
    mp_model *bad = NULL;
    CHECK(mp_model_load_mem(&bad, img, len, "flipped", &err) == MP_ECORRUPT);
    CHECK(bad == NULL);
    free(img);
    mp_model_destroy(a);
    mp_model_destroy(b);
    mp_model_destroy(c);
    fx_free(&f);
}

MP_TEST(sasrec_new_item_from_content_is_recommendable_at_once) {
    sr_fx f;
    fx_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m = NULL;
    CHECK_OK(fit_sr(&m, &f.d, SMALL, &err), &err);
    CHECK(mp_model_uses_content(m));
    mp_item_content ic = {.title = "New Kettle", .category = "Kettles", .price = NAN};
    CHECK_OK(mp_model_set_item(m, SR_K, &ic, &err), &err);
    CHECK_EQ(mp_model_n_items(m), SR_K + 1);
    /* its embedding is the category's mean direction: its nearest items are kettles */
    uint32_t sim[3];
    float ss[3];
    size_t ns;
    CHECK_OK(mp_model_similar(m, SR_K, 3, sim, ss, &ns, &err), &err);
    CHECK_EQ(ns, 3);
    int kettles = 0;
    for (size_t i = 0; i < ns; i++) kettles += sim[i] < SR_K && f.cat[sim[i]] == 3;
    CHECK_MSG(kettles >= 2, "%d of the 3 items nearest the new kettle are kettles", kettles);
    mp_interaction h[3];
    walk(h, 11, 3);
    mp_user_ctx ctx = ctx_of(h, 3);
    float scores[SR_K + 1];
    CHECK_OK(mp_model_score_all(m, &ctx, scores, &err), &err);
    CHECK(isfinite(scores[SR_K]) && scores[SR_K] != 0);
    /* content the model cannot use is refused and changes nothing */
    mp_item_content none = {.title = "Mystery", .category = "Unknown", .price = NAN};
    CHECK(mp_model_set_item(m, SR_K + 1, &none, &err) == MP_EINVAL);
    CHECK_EQ(mp_model_n_items(m), SR_K + 1);
    mp_model_destroy(m);
    fx_free(&f);
}

MP_TEST(sasrec_bad_input_gets_clear_errors) {
    mp_error err;
    mp_error_clear(&err);
    mp_model *m = NULL;
    CHECK_OK(mp_model_create(&m, "sasrec", &err), &err);
    CHECK(mp_model_set_param(m, "dropout", "1.5", &err) == MP_EINVAL);
    CHECK_CONTAINS(err.msg, "dropout");
    CHECK(mp_model_set_param(m, "loss", "bce", &err) == MP_EINVAL);
    CHECK_OK(mp_model_set_params(m, "dim=10,heads=4", &err), &err);
    CHECK(mp_model_check_params(m, &err) == MP_EINVAL);
    CHECK_CONTAINS(err.msg, "heads (4) must divide dim (10)");
    /* a catalog too large for the full softmax, with the memory it would need */
    CHECK_OK(mp_model_set_params(m, "dim=16,heads=1,loss=full", &err), &err);
    mp_interaction ev[2] = {{.user = 0, .item = 0, .ts = 1, .type = MP_EV_VIEW}, {.user = 0, .item = 1, .ts = 2, .type = MP_EV_VIEW}};
    mp_train_data d = {.n_users = 1, .n_items = 300000, .events = ev, .n_events = 2, .n_threads = 1};
    CHECK(mp_model_fit(m, &d, NULL, &err) == MP_EINVAL);
    CHECK_CONTAINS(err.msg, "loss=sampled");
    CHECK_CONTAINS(err.msg, "MiB");
    /* nobody with two items in order */
    d.n_items = 4;
    d.n_events = 1;
    CHECK_OK(mp_model_set_param(m, "loss", "auto", &err), &err);
    CHECK(mp_model_fit(m, &d, NULL, &err) == MP_EEMPTY);
    mp_model_destroy(m);
}

MP_TEST(sasrec_sampled_softmax_learns_the_ring_too) {
    sr_fx f;
    fx_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m = NULL;
    CHECK_OK(fit_sr(&m, &f.d, "dim=16,layers=1,max_len=8,epochs=40,batch=32,dropout=0.1,lr=0.01,loss=sampled,negatives=6",
                    &err),
             &err);
    int right = ring_hits(m);
    CHECK_MSG(right >= SR_K - 2, "next item ranked first for %d of %d sessions", right, SR_K);
    mp_model_destroy(m);
    fx_free(&f);
}

MP_TEST(nn_checkpoint_of_another_architecture_is_refused) {
    mp_error err;
    mp_error_clear(&err);
    mp_nn_tfm_config c = {.n_vocab = 10, .max_len = 4, .dim = 8, .n_layers = 1, .n_heads = 2, .ffn_dim = 16,
                          .dropout = 0.1f, .ln_eps = 1e-5f, .emb_scale = 1};
    mp_nn_tfm a;
    CHECK_OK(mp_nn_tfm_create(&a, &c, &err), &err);
    mp_nn_tfm_init_weights(&a, 1);
    mp_mf_writer *w;
    CHECK_OK(mp_mf_writer_create(&w), &err);
    mp_nn_tfm_save(&a, w);
    char path[600];
    snprintf(path, sizeof path, "%s/tfm.mpm", mp_test_tmpdir(t));
    CHECK_OK(mp_mf_writer_save(w, path, "tfm", 1, &err), &err);
    mp_mf_writer_destroy(w);
    mp_mf_reader *r;
    mp_nn_tfm b;
    /* the same architecture loads, bit for bit */
    CHECK_OK(mp_mf_reader_open(&r, path, &err), &err);
    CHECK_OK(mp_nn_tfm_load(&b, r, &c, &err), &err);
    CHECK(b.n_params == a.n_params && memcmp(a.params_memory, b.params_memory, a.n_params * sizeof(float)) == 0);
    mp_nn_tfm_free(&b);
    mp_mf_reader_close(r);
    /* another width is refused, naming the field and both values */
    mp_nn_tfm_config other = c;
    other.dim = 16;
    CHECK_OK(mp_mf_reader_open(&r, path, &err), &err);
    CHECK(mp_nn_tfm_load(&b, r, &other, &err) == MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "dim is 8 in the file, 16 expected");
    mp_mf_reader_close(r);
    /* a config the transformer cannot have */
    mp_nn_tfm_config bad = c;
    bad.n_heads = 3;
    CHECK(mp_nn_tfm_create(&b, &bad, &err) == MP_EINVAL);
    CHECK_CONTAINS(err.msg, "n_heads (3) must divide dim (8)");
    mp_nn_tfm_free(&a);
}

MP_TEST(sasrec_item_features_in_the_input_round_trip) {
    sr_fx f;
    fx_init(&f);
    mp_error err;
    mp_error_clear(&err);
    mp_model *m = NULL, *c = NULL, *plain = NULL;
    char p[256];
    snprintf(p, sizeof p, "%s,features=content", SMALL);
    CHECK_OK(fit_sr(&m, &f.d, p, &err), &err);
    CHECK_OK(fit_sr(&plain, &f.d, SMALL, &err), &err);
    mp_interaction h[3];
    walk(h, 4, 3);
    mp_user_ctx ctx = ctx_of(h, 3);
    float a[SR_K + 2], b[SR_K + 2], z[SR_K];
    CHECK_OK(mp_model_score_all(m, &ctx, a, &err), &err);
    CHECK_OK(mp_model_score_all(plain, &ctx, z, &err), &err);
    CHECK(memcmp(a, z, sizeof z) != 0); /* the features change the model */
    uint32_t top[1];
    size_t n;
    CHECK_OK(mp_model_recommend(m, &ctx, 1, NULL, 0, 1, NULL, top, NULL, &n, &err), &err);
    CHECK_EQ(top[0], 7);
    /* a new item gets its category's input feature and an embedding; the file keeps both */
    mp_item_content ic = {.title = "New Tea", .category = "Tea", .price = 4.5};
    CHECK_OK(mp_model_set_item(m, SR_K, &ic, &err), &err);
    mp_interaction h2[2] = {h[0], {.user = MP_NO_USER, .item = SR_K, .ts = 9000, .type = MP_EV_VIEW}};
    mp_user_ctx ctx2 = ctx_of(h2, 2);
    char path[600];
    snprintf(path, sizeof path, "%s/feat.mpm", mp_test_tmpdir(t));
    CHECK_OK(mp_model_save(m, path, &err), &err);
    CHECK_OK(mp_model_load(&c, path, &err), &err);
    CHECK_OK(mp_model_score_all(m, &ctx2, a, &err), &err);
    CHECK_OK(mp_model_score_all(c, &ctx2, b, &err), &err);
    CHECK(memcmp(a, b, (SR_K + 1) * sizeof(float)) == 0);
    mp_model_destroy(m);
    mp_model_destroy(c);
    mp_model_destroy(plain);
    fx_free(&f);
}
