#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/dataset.h"
#include "magpie/model.h"
#include "magpie/rng.h"
#include "magpie/store.h"
#include "magpie/textclf.h"
#include "magpie/trainset.h"
#include "test.h"

/* Two themes: items [0, GI) are rose skin care, [GI, 2 GI) bike parts; even users buy roses, odd users bikes.
 * The last COLD items of each theme have no events (cold items known only by their titles). */
#define NU 60
#define GI 12
#define COLD 2
#define NI (2 * GI)
#define SEEN 5

static const char *const rose_words[] = {"cream", "lotion", "serum", "balm", "oil", "soap"};
static const char *const bike_words[] = {"pedal", "chain", "saddle", "brake", "wheel", "helmet"};

typedef struct fixture {
    mp_dataset *ds;
    mp_train_set ts;
    char *titles[NI];
    char *cats[3];
    uint32_t item_cat[NI];
    double prices[NI];
} fixture;

static int fixture_build(fixture *fx, mp_error *err) {
    memset(fx, 0, sizeof *fx);
    for (uint32_t i = 0; i < NI; i++) {
        char buf[96];
        if (i < GI)
            snprintf(buf, sizeof buf, "Rose %s %s no %u", rose_words[i % 6], rose_words[(i + 2) % 6], i);
        else
            snprintf(buf, sizeof buf, "Carbon bike %s %s no %u", bike_words[i % 6], bike_words[(i + 3) % 6], i);
        fx->titles[i] = strdup(buf);
        fx->item_cat[i] = i < GI ? 1 : 2;
        fx->prices[i] = i < GI ? 10 + i : 200 + i;
    }
    fx->cats[0] = "(none)";
    fx->cats[1] = "Beauty > Skin Care";
    fx->cats[2] = "Sports > Cycling";
    mp_interaction ev[NU * SEEN];
    size_t n = 0;
    mp_rng rng;
    mp_rng_seed(&rng, 7);
    for (uint32_t u = 0; u < NU; u++) {
        uint32_t base = (u % 2) * GI;
        uint32_t items[GI - COLD];
        for (uint32_t i = 0; i < GI - COLD; i++)
            items[i] = base + i;
        mp_rng_shuffle_u32(&rng, items, GI - COLD);
        for (int s = 0; s < SEEN; s++)
            ev[n++] = (mp_interaction){.user = u, .item = items[s], .ts = 100 + s, .type = MP_EV_PURCHASE};
    }
    int rc = mp_dataset_from_interactions(&fx->ds, NU, NI, ev, n, err);
    if (rc) return rc;
    rc = mp_train_set_build(&fx->ts, fx->ds, fx->ds->events, fx->ds->n_events, NULL, err);
    if (rc) return rc;
    fx->ts.data.item_titles = (const char *const *)fx->titles;
    fx->ts.data.item_category = fx->item_cat;
    fx->ts.data.category_names = (const char *const *)fx->cats;
    fx->ts.data.n_categories = 3;
    fx->ts.content.prices = fx->prices;
    fx->ts.data.n_threads = 1;
    return MP_OK;
}

static void fixture_free(fixture *fx) {
    mp_train_set_free(&fx->ts);
    mp_dataset_destroy(fx->ds);
    for (uint32_t i = 0; i < NI; i++)
        free(fx->titles[i]);
}

static int fit(mp_model **m, const mp_train_data *d, const char *params, mp_error *err) {
    int rc = mp_model_create(m, "hybrid", err);
    if (rc) return rc;
    if ((rc = mp_model_set_params(*m, params, err)) || (rc = mp_model_fit(*m, d, NULL, err))) {
        mp_model_destroy(*m);
        *m = NULL;
    }
    return rc;
}

#define PARAMS "factors=16,epochs=30,threads=1,seed=3"

static mp_user_ctx user_ctx(const fixture *fx, uint32_t u) {
    const mp_dataset *ds = fx->ds;
    mp_user_ctx c = {
        .user = u, .history = ds->events + ds->user_ptr[u], .n_history = ds->user_ptr[u + 1] - ds->user_ptr[u]};
    return c;
}

MP_TEST(hybrid_cold_items_are_scored_by_content) {
    mp_error err;
    fixture fx;
    CHECK_OK(fixture_build(&fx, &err), &err);
    mp_model *m = NULL;
    CHECK_OK(fit(&m, &fx.ts.data, PARAMS, &err), &err);
    CHECK(mp_model_uses_content(m));
    float scores[NI];
    int right = 0;
    for (uint32_t u = 0; u < NU; u++) {
        mp_user_ctx c = user_ctx(&fx, u);
        CHECK_OK(mp_model_score_all(m, &c, scores, &err), &err);
        /* the cold item of the user's theme against the cold item of the other theme */
        uint32_t mine = (u % 2) * GI + GI - 1, other = (1 - u % 2) * GI + GI - 1;
        right += scores[mine] > scores[other];
    }
    CHECK_MSG(right >= NU * 9 / 10, "cold item of the user's theme ranked higher for only %d of %d users", right, NU);
    /* similar items of a cold rose item are roses */
    uint32_t sim[5];
    float ss[5];
    size_t ns;
    CHECK_OK(mp_model_similar(m, GI - 1, 5, sim, ss, &ns, &err), &err);
    CHECK_EQ(ns, 5);
    for (size_t i = 0; i < ns; i++)
        CHECK_MSG(sim[i] < GI, "similar item %u of a rose item is a bike part", sim[i]);
    mp_model_destroy(m);
    fixture_free(&fx);
}

MP_TEST(hybrid_set_item_is_recommendable_at_once) {
    mp_error err;
    fixture fx;
    CHECK_OK(fixture_build(&fx, &err), &err);
    mp_model *m = NULL;
    CHECK_OK(fit(&m, &fx.ts.data, PARAMS, &err), &err);
    mp_item_content c = {.title = "Rose night cream", .category = "Beauty > Skin Care", .price = 12};
    const uint32_t id = NI + 3; /* beyond the catalog: the model grows */
    CHECK_OK(mp_model_set_item(m, id, &c, &err), &err);
    CHECK_EQ(mp_model_n_items(m), NI + 4);
    float scores[NI + 4];
    mp_user_ctx u0 = user_ctx(&fx, 0); /* a rose buyer */
    CHECK_OK(mp_model_score_all(m, &u0, scores, &err), &err);
    for (uint32_t i = GI; i < 2 * GI; i++)
        CHECK_MSG(scores[id] > scores[i], "new rose item %g not above bike item %u (%g)", scores[id], i, scores[i]);
    uint32_t top[GI];
    float ts[GI];
    size_t n;
    CHECK_OK(mp_model_recommend(m, &u0, GI, NULL, 0, 1, NULL, top, ts, &n, &err), &err);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found |= top[i] == id;
    CHECK_MSG(found, "the new item is not among the top %d", GI);
    /* an anonymous visitor: the new item is explained by its category */
    mp_user_ctx anon = {.user = MP_NO_USER};
    char why[256];
    CHECK_OK(mp_model_explain(m, &anon, id, why, sizeof why, &err), &err);
    CHECK_CONTAINS(why, "new in Beauty > Skin Care");
    /* and a buyer by the purchase it resembles */
    CHECK_OK(mp_model_explain(m, &u0, id, why, sizeof why, &err), &err);
    CHECK_CONTAINS(why, "similar to \xE2\x80\x98Rose");
    CHECK_CONTAINS(why, "that you bought");
    /* changing the item's content changes its vector */
    float before = scores[id];
    mp_item_content c2 = {.title = "Carbon bike chain", .category = "Sports > Cycling", .price = 250};
    CHECK_OK(mp_model_set_item(m, id, &c2, &err), &err);
    CHECK_OK(mp_model_score_all(m, &u0, scores, &err), &err);
    CHECK(scores[id] < before);
    mp_model_destroy(m);
    fixture_free(&fx);
}

MP_TEST(hybrid_query_text_serves_a_new_user) {
    mp_error err;
    fixture fx;
    CHECK_OK(fixture_build(&fx, &err), &err);
    for (int pure = 0; pure < 2; pure++) { /* with the lexical channel, then the pure factor model */
        mp_model *m = NULL;
        CHECK_OK(fit(&m, &fx.ts.data, pure ? PARAMS ",lexical=0,id_dropout=0.5" : PARAMS, &err), &err);
        const char *q = "bike pedal";
        mp_user_ctx c = {.user = MP_NO_USER, .text = q, .text_len = strlen(q)};
        uint32_t top[5];
        float s[5];
        size_t n;
        CHECK_OK(mp_model_recommend(m, &c, 5, NULL, 0, 1, NULL, top, s, &n, &err), &err);
        CHECK_EQ(n, 5);
        for (size_t i = 0; i < n; i++)
            CHECK_MSG(top[i] >= GI, "query \"%s\" got rose item %u (pure %d)", q, top[i], pure);
        char why[256];
        CHECK_OK(mp_model_explain(m, &c, top[0], why, sizeof why, &err), &err);
        CHECK_CONTAINS(why, "matches your interest in \xE2\x80\x98" "bike");
        float qv[17], all[NI];
        int have;
        const float *iv;
        uint32_t nv, dim;
        if (!pure) { /* exact word overlap is not an inner product: no retrieval vectors */
            CHECK(mp_model_query_vector(m, &c, qv, &have, &err) == MP_EUNSUPPORTED);
            CHECK(mp_model_item_vectors(m, &iv, &nv, &dim, &err) == MP_EUNSUPPORTED);
            mp_model_destroy(m);
            continue;
        }
        /* the same query as a retrieval vector gives the same scores */
        CHECK_OK(mp_model_query_vector(m, &c, qv, &have, &err), &err);
        CHECK(have);
        CHECK_OK(mp_model_item_vectors(m, &iv, &nv, &dim, &err), &err);
        CHECK_EQ(dim, 17);
        CHECK_OK(mp_model_score_all(m, &c, all, &err), &err);
        for (uint32_t i = 0; i < nv; i++) {
            float d = 0;
            for (uint32_t k = 0; k < dim; k++)
                d += qv[k] * iv[(size_t)i * dim + k];
            CHECK_NEAR(d, all[i], 1e-4);
        }
        mp_model_destroy(m);
    }
    fixture_free(&fx);
}

MP_TEST(hybrid_save_load_round_trip) {
    mp_error err;
    fixture fx;
    CHECK_OK(fixture_build(&fx, &err), &err);
    mp_model *m = NULL, *l = NULL;
    CHECK_OK(fit(&m, &fx.ts.data, "factors=8,epochs=5,threads=1,subwords=1,transitions=5,neighbours=3", &err), &err);
    char path[1024];
    snprintf(path, sizeof path, "%s/h.model", mp_test_tmpdir(t));
    CHECK_OK(mp_model_save(m, path, &err), &err);
    CHECK_OK(mp_model_load(&l, path, &err), &err);
    CHECK(!strcmp(mp_model_ops_of(l)->name, "hybrid"));
    /* a new item added to both: the loaded vocabulary and feature vectors score it identically */
    mp_item_content c = {.title = "Rose chain balm", .brand = "Acme", .price = 30};
    CHECK_OK(mp_model_set_item(m, NI, &c, &err), &err);
    CHECK_OK(mp_model_set_item(l, NI, &c, &err), &err);
    float a[NI + 1], b[NI + 1];
    const char *q = "rose oil";
    mp_user_ctx ctxs[3] = {user_ctx(&fx, 1), {.user = MP_NO_USER, .text = q, .text_len = strlen(q)}, user_ctx(&fx, 4)};
    for (int k = 0; k < 3; k++) {
        CHECK_OK(mp_model_score_all(m, &ctxs[k], a, &err), &err);
        CHECK_OK(mp_model_score_all(l, &ctxs[k], b, &err), &err);
        CHECK(!memcmp(a, b, sizeof a));
    }
    /* a truncated file is refused, not half-loaded */
    size_t len;
    unsigned char *img = mp_test_slurp(path, &len);
    CHECK(img != NULL);
    mp_model *bad = NULL;
    CHECK(mp_model_load_mem(&bad, img, len / 2, "half", &err) != MP_OK);
    CHECK(bad == NULL);
    free(img);
    mp_model_destroy(m);
    mp_model_destroy(l);
    fixture_free(&fx);
}

MP_TEST(hybrid_update_and_forget) {
    mp_error err;
    fixture fx;
    CHECK_OK(fixture_build(&fx, &err), &err);
    mp_model *m = NULL;
    CHECK_OK(fit(&m, &fx.ts.data, PARAMS, &err), &err);
    /* a new user with two rose purchases, one of them of an item the model has never seen */
    mp_interaction ev[2] = {{.user = NU + 5, .item = 1, .ts = 200, .type = MP_EV_PURCHASE},
                            {.user = NU + 5, .item = NI + 1, .ts = 201, .type = MP_EV_PURCHASE}};
    CHECK_OK(mp_model_update(m, ev, 2, &err), &err);
    CHECK_EQ(mp_model_n_items(m), NI + 2);
    mp_user_ctx c = {.user = NU + 5, .history = ev, .n_history = 2};
    float s[NI + 2];
    CHECK_OK(mp_model_score_all(m, &c, s, &err), &err);
    CHECK(s[GI - 1] > s[2 * GI - 1]); /* served from the first event: roses first */
    /* the model keeps nothing per user: forgetting is a no-op that succeeds */
    CHECK_OK(mp_model_forget_user(m, NU + 5, ev, 2, &err), &err);
    mp_interaction bad = {.user = MP_NO_USER, .item = 0, .type = MP_EV_VIEW};
    CHECK(mp_model_update(m, &bad, 1, &err) == MP_EINVAL);
    mp_model_destroy(m);
    fixture_free(&fx);
}

MP_TEST(hybrid_bad_params_and_unfitted_use) {
    mp_error err;
    mp_model *m = NULL;
    CHECK_OK(mp_model_create(&m, "hybrid", &err), &err);
    CHECK(mp_model_set_param(m, "id_dropout", "1.5", &err) == MP_EINVAL);
    CHECK_CONTAINS(err.msg, "1.5");
    CHECK(mp_model_set_param(m, "factors", "0", &err) == MP_EINVAL);
    CHECK(mp_model_set_param(m, "loss", "hinge", &err) == MP_EINVAL);
    CHECK(mp_model_set_param(m, "history_norm", "-1", &err) == MP_EINVAL);
    CHECK(mp_model_set_param(m, "no_such", "1", &err) == MP_EINVAL);
    CHECK_OK(mp_model_set_params(m, "loss=warp,id_dropout=0.3,subwords=1", &err), &err);
    mp_user_ctx c = {.user = 0};
    float s[4];
    CHECK(mp_model_score_all(m, &c, s, &err) != MP_OK);
    mp_item_content ic = {.title = "x"};
    CHECK(mp_model_set_item(m, 0, &ic, &err) != MP_OK);
    /* an empty catalog */
    mp_train_data d;
    memset(&d, 0, sizeof d);
    CHECK(mp_model_fit(m, &d, NULL, &err) != MP_OK);
    mp_model_destroy(m);
}

MP_TEST(hybrid_warp_and_embeddings_adapter) {
    mp_error err;
    fixture fx;
    CHECK_OK(fixture_build(&fx, &err), &err);
    /* toy text embeddings: dimension 0 says "rose", 1 says "bike", plus a constant */
    enum { D = 3 };
    float emb[NI * D];
    for (uint32_t i = 0; i < NI; i++) {
        emb[i * D + 0] = i < GI ? 1.0f : 0.0f;
        emb[i * D + 1] = i < GI ? 0.0f : 1.0f;
        emb[i * D + 2] = 0.5f;
    }
    fx.ts.content.embeddings = emb;
    fx.ts.content.embedding_dim = D;
    fx.ts.content.embedding_source = "toy";
    mp_model *m = NULL;
    CHECK_OK(fit(&m, &fx.ts.data, "factors=16,epochs=30,threads=1,loss=warp", &err), &err);
    /* an item known only by its embedding lands on the side of its theme */
    float e[D] = {0, 1, 0.5f}, e2[D] = {1, 0, 0.5f};
    mp_item_content c = {.embedding = e, .embedding_dim = D, .price = NAN};
    mp_item_content cr = {.embedding = e2, .embedding_dim = D, .price = NAN};
    CHECK_OK(mp_model_set_item(m, NI, &c, &err), &err);
    CHECK_OK(mp_model_set_item(m, NI + 1, &cr, &err), &err);
    float s[NI + 2];
    int right = 0;
    for (uint32_t u = 1; u < NU; u += 2) { /* bike users */
        mp_user_ctx uc = user_ctx(&fx, u);
        CHECK_OK(mp_model_score_all(m, &uc, s, &err), &err);
        right += s[NI] > s[NI + 1];
    }
    CHECK_MSG(right >= NU / 2 * 8 / 10, "embedding-only bike item above an embedding-only rose item for %d of %d",
              right, NU / 2);
    float wrong[2] = {1, 0};
    mp_item_content c2 = {.embedding = wrong, .embedding_dim = 2, .price = NAN};
    CHECK(mp_model_set_item(m, NI, &c2, &err) == MP_EINVAL);
    CHECK_CONTAINS(err.msg, "dimension 2");
    mp_model_destroy(m);
    fixture_free(&fx);
}

/* Without id vectors (id_dropout=1) the adapter leaves items that have content features alone: their
 * vectors are content-only like every warm item's, and mixing in the (shrunk) adapter prediction moved only the
 * items without events toward the mean (it cut cold-item Recall@20 on Games from 0.074 to 0.050). So the same fit
 * with and without item embeddings scores every titled item the same; with id vectors (id_dropout < 1) the adapter
 * still fills in the cold items' missing id part. */
MP_TEST(hybrid_adapter_leaves_featured_cold_items_alone) {
    mp_error err;
    fixture fx;
    CHECK_OK(fixture_build(&fx, &err), &err);
    enum { D = 3 };
    float emb[NI * D];
    for (uint32_t i = 0; i < NI; i++) {
        emb[i * D + 0] = i < GI ? 1.0f : 0.0f;
        emb[i * D + 1] = i < GI ? 0.0f : 1.0f;
        emb[i * D + 2] = 0.5f;
    }
    const char *params[2] = {"factors=8,epochs=5,threads=1,id_dropout=1", "factors=8,epochs=5,threads=1,id_dropout=0.5"};
    for (int v = 0; v < 2; v++) {
        mp_model *plain = NULL, *with = NULL;
        fx.ts.content.embeddings = NULL;
        fx.ts.content.embedding_dim = 0;
        CHECK_OK(fit(&plain, &fx.ts.data, params[v], &err), &err);
        fx.ts.content.embeddings = emb;
        fx.ts.content.embedding_dim = D;
        CHECK_OK(fit(&with, &fx.ts.data, params[v], &err), &err);
        float a[NI], b[NI];
        double cold_diff = 0, warm_diff = 0;
        for (uint32_t u = 0; u < 4; u++) {
            mp_user_ctx uc = user_ctx(&fx, u);
            CHECK_OK(mp_model_score_all(plain, &uc, a, &err), &err);
            CHECK_OK(mp_model_score_all(with, &uc, b, &err), &err);
            for (uint32_t i = 0; i < NI; i++) {
                int cold = i % GI >= GI - COLD;
                double d = fabs((double)a[i] - b[i]);
                if (cold) cold_diff = d > cold_diff ? d : cold_diff;
                else warm_diff = d > warm_diff ? d : warm_diff;
            }
        }
        CHECK_MSG(warm_diff < 1e-5, "params %s: warm item scores moved by %g with embeddings", params[v], warm_diff);
        if (v == 0)
            CHECK_MSG(cold_diff < 1e-5, "id_dropout=1: a titled cold item's score moved by %g with embeddings",
                      cold_diff);
        else
            CHECK_MSG(cold_diff > 1e-4, "id_dropout=0.5: the adapter did not touch the cold items (%g)", cold_diff);
        mp_model_destroy(plain);
        mp_model_destroy(with);
    }
    fx.ts.content.embeddings = NULL;
    fx.ts.content.embedding_dim = 0;
    fixture_free(&fx);
}

/* Reviews become graded feedback through a sentiment classifier. */
MP_TEST(hybrid_review_sentiment_grades_events) {
    mp_error err;
    const char *texts[] = {"great love it",  "excellent great quality", "love this wonderful",  "wonderful excellent",
                           "terrible broke", "awful waste of money",    "broke terrible awful", "waste awful"};
    const char *labels[] = {"positive", "positive", "positive", "positive",
                            "negative", "negative", "negative", "negative"};
    mp_textclf_opts o;
    mp_textclf_default(&o);
    o.dim = 8;
    o.epochs = 50;
    o.lr = 0.5f;
    o.n_buckets = 1000;
    mp_textclf *clf = NULL;
    CHECK_OK(mp_textclf_train(texts, NULL, labels, 8, &o, &clf, &err), &err);

    char db[1024];
    snprintf(db, sizeof db, "%s/rev.db", mp_test_tmpdir(t));
    mp_store *s = NULL;
    CHECK_OK(mp_store_open(&s, db, MP_STORE_READWRITE, &err), &err);
    const char *iids[2] = {"a", "b"};
    for (uint32_t i = 0; i < 2; i++) {
        mp_item it;
        memset(&it, 0, sizeof it);
        it.id = (mp_str){iids[i], 1};
        it.title = (mp_str){"Thing", 5};
        it.description = (mp_str){"A fine thing", 12};
        it.brand = (mp_str){"Acme", 4};
        it.price = 9.5;
        it.has_price = 1;
        it.available = 1;
        CHECK_OK(mp_store_put_item(s, i, &it, &err), &err);
    }
    mp_user us;
    memset(&us, 0, sizeof us);
    us.id = (mp_str){"u", 1};
    CHECK_OK(mp_store_put_user(s, 0, &us, &err), &err);
    mp_event_row rows[3];
    memset(rows, 0, sizeof rows);
    rows[0] =
        (mp_event_row){.user = 0, .item = 0, .type = MP_EV_REVIEW, .ts = 10, .text = {"great love it wonderful", 23}};
    rows[1] =
        (mp_event_row){.user = 0, .item = 1, .type = MP_EV_REVIEW, .ts = 11, .text = {"awful broke terrible", 20}};
    rows[2] = (mp_event_row){.user = 0, .item = 1, .type = MP_EV_VIEW, .ts = 12};
    for (int i = 0; i < 3; i++)
        CHECK_OK(mp_store_add_event(s, &rows[i], NULL, &err), &err);

    mp_dataset *ds = NULL;
    mp_textclf_grader grader;
    CHECK_OK(mp_textclf_grader_init(&grader, clf, NULL, &err), &err);
    mp_dataset_opts opts = {.review_grader = mp_textclf_review_grade, .review_grader_state = &grader};
    CHECK_OK(mp_dataset_load_opts(&ds, s, &opts, NULL, &err), &err);
    CHECK_EQ(ds->n_events, 3);
    CHECK(!strcmp(ds->item_brand[0], "Acme"));
    CHECK(!strcmp(ds->item_description[1], "A fine thing"));
    CHECK_NEAR(ds->item_price[0], 9.5, 1e-9);
    int16_t g_pos = 0, g_neg = 0, g_view = 1;
    for (size_t i = 0; i < ds->n_events; i++) {
        if (ds->events[i].type == MP_EV_REVIEW && ds->events[i].item == 0) g_pos = ds->events[i].grade;
        if (ds->events[i].type == MP_EV_REVIEW && ds->events[i].item == 1) g_neg = ds->events[i].grade;
        if (ds->events[i].type == MP_EV_VIEW) g_view = ds->events[i].grade;
    }
    CHECK_MSG(g_pos > 0, "positive review graded %d", g_pos);
    CHECK_MSG(g_neg < 0, "negative review graded %d", g_neg);
    CHECK_EQ(g_view, 0);
    /* the negative review outweighs the view: the pair drops out of the matrix, the positive one stays */
    mp_train_set ts;
    CHECK_OK(mp_train_set_build(&ts, ds, ds->events, ds->n_events, NULL, &err), &err);
    CHECK_EQ(mp_csr_nnz(&ts.ui), 1);
    CHECK_EQ(ts.ui.idx[0], 0);
    CHECK(ts.data.content && ts.data.content->brands && ts.data.content->descriptions && ts.data.content->prices);
    mp_train_set_free(&ts);
    mp_dataset_destroy(ds);

    /* a classifier without the positive label is refused with its labels named */
    CHECK(mp_textclf_grader_init(&grader, clf, "good", &err) == MP_EINVAL);
    CHECK_CONTAINS(err.msg, "\"negative\"");
    mp_store_close(s);
    mp_textclf_free(clf);
}

/* Items without any content (a store with events but no item records): hybrid fits on behaviour alone instead of
 * copying an empty feature list from NULL (UBSan found it through the Python package). */
MP_TEST(hybrid_fits_items_without_content) {
    mp_error err;
    mp_error_clear(&err);
    mp_interaction ev[40];
    size_t n = 0;
    for (uint32_t u = 0; u < 8; u++)
        for (uint32_t k = 0; k < 5; k++)
            ev[n++] = (mp_interaction){.user = u, .item = (u % 2) * 5 + k, .ts = (int64_t)n, .type = MP_EV_PURCHASE};
    mp_dataset *ds = NULL;
    CHECK_OK(mp_dataset_from_interactions(&ds, 8, 10, ev, n, &err), &err);
    mp_train_set ts;
    memset(&ts, 0, sizeof ts);
    CHECK_OK(mp_train_set_build(&ts, ds, ds->events, ds->n_events, NULL, &err), &err);
    mp_model *m = NULL;
    CHECK_OK(fit(&m, &ts.data, "factors=4,epochs=5,threads=1,seed=1", &err), &err);
    uint32_t items[3];
    size_t got;
    mp_interaction hist[1] = {{.user = 0, .item = 0, .ts = 1, .type = MP_EV_PURCHASE}};
    mp_user_ctx ctx = {.user = 0, .history = hist, .n_history = 1};
    CHECK_OK(mp_model_recommend(m, &ctx, 3, NULL, 0, 1, NULL, items, NULL, &got, &err), &err);
    CHECK_EQ(got, 3);
    mp_model_destroy(m);
    mp_train_set_free(&ts);
    mp_dataset_destroy(ds);
}
