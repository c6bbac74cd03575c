/* Tests of product search (include/magpie/search.h) and of its live use (mp_live_search, recommendations from a
 * text, new items): English and Chinese queries over a small hand-written catalog, the user re-ranking, semantic
 * candidates from embeddings, and reasons. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "magpie/dataset.h"
#include "magpie/encoder.h"
#include "magpie/live.h"
#include "magpie/model.h"
#include "magpie/search.h"
#include "magpie/textindex.h"
#include "magpie/trainset.h"
#include "test.h"

#define N_ITEMS 10
static const char *const TITLE[N_ITEMS] = {
    "Trail Running Shoes", "Road Running Shoes", "Leather Dress Shoes", "Running Socks", "Yoga Mat",
    "女士跑步鞋 轻便透气", "男士篮球鞋", "保温杯 不锈钢", "Water Bottle", "Rose Hand Cream"};
static const char *const BRAND[N_ITEMS] = {"Stride", "Pace", "Oxford Co", "Stride", "Zen", "飞跃", "回力", NULL, NULL, NULL};
static const char *const CAT[N_ITEMS] = {"Sports > Shoes", "Sports > Shoes", "Fashion > Shoes", "Sports > Socks",
                                         "Sports > Yoga",  "运动 > 跑鞋",    "运动 > 篮球",     "家居 > 杯子",
                                         "Sports > Bottles", "Beauty > Skin Care"};
static const char *const DESC[N_ITEMS] = {"lightweight shoes for trail running",
                                          "cushioned shoes for the road",
                                          "formal shoes in black leather",
                                          "breathable socks",
                                          "non-slip mat for yoga",
                                          "适合日常跑步训练",
                                          "高帮篮球鞋",
                                          "保温十二小时",
                                          "keeps water cold",
                                          "softens dry hands"};

typedef struct fixture {
    mp_textindex *ix;
    mp_search_catalog c;
} fixture;

static int fixture_open(fixture *f, mp_error *err) {
    memset(f, 0, sizeof *f);
    char *docs[N_ITEMS];
    for (int i = 0; i < N_ITEMS; i++) {
        size_t n = strlen(TITLE[i]) + strlen(DESC[i]) + strlen(CAT[i]) + (BRAND[i] ? strlen(BRAND[i]) : 0) + 16;
        docs[i] = malloc(n);
        snprintf(docs[i], n, "%s . %s . %s . %s", TITLE[i], BRAND[i] ? BRAND[i] : "", CAT[i], DESC[i]);
    }
    int rc = mp_textindex_build((const char *const *)docs, NULL, N_ITEMS, NULL, &f->ix, err);
    for (int i = 0; i < N_ITEMS; i++) free(docs[i]);
    f->c.n_items = N_ITEMS;
    f->c.index = f->ix;
    f->c.title = TITLE;
    f->c.brand = BRAND;
    f->c.category = CAT;
    f->c.description = DESC;
    return rc;
}

static size_t rank(fixture *f, const char *q, const float *qe, const float *us, size_t n, mp_search_hit *hits,
                   mp_error *err, int *rc) {
    size_t got = 0;
    *rc = mp_search_rank(&f->c, q, strlen(q), qe, us, us ? N_ITEMS : 0, NULL, n, hits, &got, err);
    return got;
}

static int position(const mp_search_hit *hits, size_t n, uint32_t item) {
    for (size_t k = 0; k < n; k++)
        if (hits[k].item == item) return (int)k;
    return -1;
}

MP_TEST(search_rank_english_finds_running_shoes) {
    mp_error err;
    fixture f;
    CHECK_OK(fixture_open(&f, &err), &err);
    mp_search_hit hits[N_ITEMS];
    int rc;
    size_t n = rank(&f, "running shoes", NULL, NULL, N_ITEMS, hits, &err, &rc);
    CHECK_OK(rc, &err);
    CHECK(n >= 4);
    /* the two running shoes first, then the partial matches; nothing without a match */
    CHECK(hits[0].item <= 1 && hits[1].item <= 1);
    CHECK(position(hits, n, 2) > 1 && position(hits, n, 3) > 1);
    CHECK_EQ(position(hits, n, 9), -1);
    CHECK_EQ(position(hits, n, 4), -1);
    CHECK_CONTAINS(hits[0].reason, "matches \xE2\x80\x98running shoes\xE2\x80\x99 in the title");
    CHECK(hits[0].score >= hits[1].score && hits[1].score >= hits[n - 1].score);
    CHECK(isnan(hits[0].cosine) && isnan(hits[0].user));
    /* a brand match is reported as such */
    n = rank(&f, "stride", NULL, NULL, N_ITEMS, hits, &err, &rc);
    CHECK_OK(rc, &err);
    CHECK_EQ(n, 2);
    CHECK_CONTAINS(hits[0].reason, "in the brand");
    mp_textindex_free(f.ix);
}

MP_TEST(search_rank_chinese_queries) {
    mp_error err;
    fixture f;
    CHECK_OK(fixture_open(&f, &err), &err);
    mp_search_hit hits[N_ITEMS];
    int rc;
    size_t n = rank(&f, "跑步鞋", NULL, NULL, N_ITEMS, hits, &err, &rc);
    CHECK_OK(rc, &err);
    CHECK(n >= 2);
    CHECK_EQ(hits[0].item, 5);
    CHECK(position(hits, n, 6) > 0); /* 鞋 alone */
    CHECK_CONTAINS(hits[0].reason, "\xE2\x80\x98跑步鞋\xE2\x80\x99 in the title");
    n = rank(&f, "保温杯", NULL, NULL, N_ITEMS, hits, &err, &rc);
    CHECK_OK(rc, &err);
    CHECK(n >= 1);
    CHECK_EQ(hits[0].item, 7);
    /* mixed: Chinese and English words in one query */
    n = rank(&f, "篮球鞋 yoga", NULL, NULL, N_ITEMS, hits, &err, &rc);
    CHECK_OK(rc, &err);
    CHECK(position(hits, n, 6) >= 0 && position(hits, n, 4) >= 0);
    CHECK(mp_search_has_cjk("女士 shoes", strlen("女士 shoes")));
    CHECK(!mp_search_has_cjk("running shoes", 13));
    mp_textindex_free(f.ix);
}

MP_TEST(search_rank_filters_and_errors) {
    mp_error err;
    fixture f;
    CHECK_OK(fixture_open(&f, &err), &err);
    uint8_t allow[N_ITEMS];
    memset(allow, 1, sizeof allow);
    allow[5] = 0;
    f.c.allow = allow;
    mp_search_hit hits[N_ITEMS];
    int rc;
    size_t n = rank(&f, "跑步鞋", NULL, NULL, N_ITEMS, hits, &err, &rc);
    CHECK_OK(rc, &err);
    CHECK_EQ(position(hits, n, 5), -1);
    n = rank(&f, "   ", NULL, NULL, N_ITEMS, hits, &err, &rc);
    CHECK_OK(rc, &err);
    CHECK_EQ(n, 0);
    n = rank(&f, "zzzz qqqq", NULL, NULL, N_ITEMS, hits, &err, &rc);
    CHECK_OK(rc, &err);
    CHECK_EQ(n, 0);
    size_t got;
    CHECK_EQ(mp_search_rank(&f.c, "bad \xff", 5, NULL, NULL, 0, NULL, 5, hits, &got, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "search query");
    /* n smaller than the matches: the best n */
    f.c.allow = NULL;
    n = rank(&f, "shoes", NULL, NULL, 2, hits, &err, &rc);
    CHECK_OK(rc, &err);
    CHECK_EQ(n, 2);
    mp_textindex_free(f.ix);
}

MP_TEST(search_rank_user_scores_rerank_matches_only) {
    mp_error err;
    fixture f;
    CHECK_OK(fixture_open(&f, &err), &err);
    mp_search_hit hits[N_ITEMS];
    float us[N_ITEMS] = {0};
    int rc;
    us[1] = 5.0f; /* this user likes the road shoes... */
    us[9] = 50.0f; /* ...and hand cream, which does not match */
    size_t n = rank(&f, "running shoes", NULL, us, N_ITEMS, hits, &err, &rc);
    CHECK_OK(rc, &err);
    CHECK_EQ(hits[0].item, 1);
    CHECK_EQ(position(hits, n, 9), -1);
    CHECK(hits[0].user > 0.99f);
    memset(us, 0, sizeof us);
    us[0] = 5.0f;
    n = rank(&f, "running shoes", NULL, us, N_ITEMS, hits, &err, &rc);
    CHECK_OK(rc, &err);
    CHECK_EQ(hits[0].item, 0);
    /* a preference does not overturn a clear relevance gap: socks liked, shoes still first */
    memset(us, 0, sizeof us);
    us[3] = 1.0f;
    n = rank(&f, "running shoes", NULL, us, N_ITEMS, hits, &err, &rc);
    CHECK_OK(rc, &err);
    CHECK(hits[0].item <= 1);
    /* all equal scores: no effect */
    for (int i = 0; i < N_ITEMS; i++) us[i] = 2.0f;
    mp_search_hit plain[N_ITEMS];
    size_t n2 = rank(&f, "shoes", NULL, NULL, N_ITEMS, plain, &err, &rc);
    n = rank(&f, "shoes", NULL, us, N_ITEMS, hits, &err, &rc);
    CHECK_EQ(n, n2);
    for (size_t k = 0; k < n; k++) CHECK_EQ(hits[k].item, plain[k].item);
    mp_textindex_free(f.ix);
}

MP_TEST(search_rank_semantic_candidates) {
    mp_error err;
    fixture f;
    CHECK_OK(fixture_open(&f, &err), &err);
    /* 3-d unit vectors: bottles near e0, shoes near e1, the rest near e2 */
    float emb[N_ITEMS * 3] = {0};
    uint8_t has[N_ITEMS];
    for (int i = 0; i < N_ITEMS; i++) {
        has[i] = 1;
        int axis = (i == 7 || i == 8) ? 0 : (i <= 2 || i == 5 || i == 6) ? 1 : 2;
        emb[i * 3 + axis] = 1.0f;
    }
    emb[7 * 3 + 0] = 0.8f; /* the vacuum cup is close to e0, not on it */
    emb[7 * 3 + 2] = 0.6f;
    has[9] = 0;
    f.c.emb = emb;
    f.c.has_emb = has;
    f.c.dim = 3;
    float q[3] = {1, 0, 0};
    mp_search_hit hits[N_ITEMS];
    int rc;
    size_t n = rank(&f, "hydration flask", q, NULL, N_ITEMS, hits, &err, &rc); /* no word matches */
    CHECK_OK(rc, &err);
    CHECK_EQ(n, 2);
    CHECK_EQ(hits[0].item, 8);
    CHECK_EQ(hits[1].item, 7);
    CHECK_NEAR(hits[0].cosine, 1.0, 1e-6);
    CHECK_CONTAINS(hits[0].reason, "close in meaning to \xE2\x80\x98hydration flask\xE2\x80\x99");
    /* both retrievers: a lexical and semantic match beats a lexical-only one */
    n = rank(&f, "water", q, NULL, N_ITEMS, hits, &err, &rc);
    CHECK_OK(rc, &err);
    CHECK_EQ(hits[0].item, 8);
    CHECK_CONTAINS(hits[0].reason, "in the title");
    mp_textindex_free(f.ix);
}

/* ---- live ---- */

static mp_str S(const char *s) {
    mp_str r = {s, s ? strlen(s) : 0};
    return r;
}

static int put_catalog(mp_live *l, mp_error *err) {
    mp_item it[N_ITEMS];
    char ids[N_ITEMS][16];
    memset(it, 0, sizeof it);
    for (int i = 0; i < N_ITEMS; i++) {
        snprintf(ids[i], sizeof ids[i], "sku-%d", i);
        it[i].id = S(ids[i]);
        it[i].title = S(TITLE[i]);
        it[i].brand = S(BRAND[i]);
        it[i].category = S(CAT[i]);
        it[i].description = S(DESC[i]);
        it[i].available = 1;
    }
    return mp_live_put_items(l, it, N_ITEMS, NULL, err);
}

/* Users "a*" buy socks with trail shoes, users "b*" the yoga mat with road shoes; ua / ub bought only socks / mat. */
static int put_events(mp_live *l, mp_error *err) {
    mp_event ev[64];
    char users[32][8];
    size_t n = 0;
    memset(ev, 0, sizeof ev);
    for (int u = 0; u < 12; u++) {
        int a = u < 6;
        snprintf(users[u], sizeof users[u], "%c%d", a ? 'a' : 'b', u);
        const char *x = a ? "sku-3" : "sku-4", *y = a ? "sku-0" : "sku-1";
        ev[n++] = (mp_event){.user = S(users[u]), .item = S(x), .type = MP_EV_PURCHASE, .ts = 1000 + u};
        ev[n++] = (mp_event){.user = S(users[u]), .item = S(y), .type = MP_EV_PURCHASE, .ts = 1001 + u};
    }
    ev[n++] = (mp_event){.user = S("ua"), .item = S("sku-3"), .type = MP_EV_PURCHASE, .ts = 2000};
    ev[n++] = (mp_event){.user = S("ub"), .item = S("sku-4"), .type = MP_EV_PURCHASE, .ts = 2000};
    return mp_live_add_events(l, ev, n, NULL, err);
}

static int train_knn(const char *db, const char *path, mp_error *err) {
    mp_store *st;
    int rc = mp_store_open(&st, db, MP_STORE_READONLY, err);
    if (rc) return rc;
    mp_dataset *ds = NULL;
    rc = mp_dataset_load(&ds, st, NULL, err);
    mp_store_close(st);
    if (rc) return rc;
    mp_train_set ts = {0};
    mp_model *m = NULL;
    rc = mp_train_set_build(&ts, ds, ds->events, ds->n_events, NULL, err);
    if (rc == MP_OK) rc = mp_model_create(&m, "itemknn", err);
    if (rc == MP_OK) rc = mp_model_fit(m, &ts.data, NULL, err);
    if (rc == MP_OK) rc = mp_model_save(m, path, err);
    mp_model_destroy(m);
    mp_train_set_free(&ts);
    mp_dataset_destroy(ds);
    return rc;
}

static mp_live_search_query SQ(const char *q, const char *user, size_t n) {
    mp_live_search_query s = {0};
    s.q = q;
    s.q_len = strlen(q);
    s.user = user;
    s.user_len = user ? strlen(user) : 0;
    s.n = n;
    return s;
}

MP_TEST(search_live_rerank_new_items_and_text_recommendations) {
    mp_error err;
    char db[700], model[700];
    snprintf(db, sizeof db, "%s/s.db", mp_test_tmpdir(t));
    snprintf(model, sizeof model, "%s/knn.model", mp_test_tmpdir(t));
    mp_live_opts o;
    mp_live_opts_default(&o);
    o.db = db;
    o.n_threads = 1;
    mp_live *l = NULL;
    CHECK_OK(mp_live_open(&l, &o, &err), &err);
    CHECK_OK(put_catalog(l, &err), &err);
    CHECK_OK(put_events(l, &err), &err);
    CHECK_OK(train_knn(db, model, &err), &err);
    CHECK_OK(mp_live_reload(l, model, &err), &err);

    /* anonymous: both running shoes first */
    mp_live_list r = {0};
    mp_live_search_query q = SQ("running shoes", NULL, 5);
    CHECK_OK(mp_live_search(l, &q, &r, &err), &err);
    CHECK(r.n >= 3);
    CHECK(!strcmp(r.items[0].item, "sku-0") || !strcmp(r.items[0].item, "sku-1"));
    CHECK(!strcmp(r.model, "search"));
    CHECK_CONTAINS(r.items[0].reason, "running shoes");
    mp_live_list_free(&r);
    /* the user's model re-ranks: ua (socks) gets the trail shoes first, ub (yoga mat) the road shoes */
    q = SQ("running shoes", "ua", 5);
    CHECK_OK(mp_live_search(l, &q, &r, &err), &err);
    CHECK(r.n >= 2);
    CHECK(!strcmp(r.items[0].item, "sku-0"));
    CHECK(!strcmp(r.model, "itemknn"));
    CHECK_CONTAINS(r.items[0].reason, "; ");
    CHECK_CONTAINS(r.items[0].reason, "Running Socks");
    mp_live_list_free(&r);
    q = SQ("running shoes", "ub", 5);
    CHECK_OK(mp_live_search(l, &q, &r, &err), &err);
    CHECK(!strcmp(r.items[0].item, "sku-1"));
    mp_live_list_free(&r);
    /* Chinese, and a category filter */
    q = SQ("跑步鞋", NULL, 5);
    CHECK_OK(mp_live_search(l, &q, &r, &err), &err);
    CHECK(r.n >= 1 && !strcmp(r.items[0].item, "sku-5"));
    mp_live_list_free(&r);
    q = SQ("shoes", NULL, 10);
    q.category = "Fashion";
    CHECK_OK(mp_live_search(l, &q, &r, &err), &err);
    CHECK_EQ(r.n, 1);
    CHECK(!strcmp(r.items[0].item, "sku-2"));
    mp_live_list_free(&r);

    /* a new item is searchable at once, and recommendable to a new user from a text */
    mp_item it = {.id = S("sku-new"), .title = S("Carbon Plate Marathon Racer"), .category = S("Sports > Shoes"),
                  .available = 1};
    CHECK_OK(mp_live_put_items(l, &it, 1, NULL, &err), &err);
    q = SQ("marathon racer", NULL, 5);
    CHECK_OK(mp_live_search(l, &q, &r, &err), &err);
    CHECK(r.n >= 1 && !strcmp(r.items[0].item, "sku-new"));
    mp_live_list_free(&r);
    mp_live_query rq = {0};
    rq.user = "newcomer";
    rq.user_len = 8;
    rq.n = 3;
    rq.explain = 1;
    rq.text = "marathon";
    rq.text_len = 8;
    size_t unknown = 0;
    CHECK_OK(mp_live_recommend(l, &rq, &r, &unknown, &err), &err);
    CHECK(r.n >= 1 && !strcmp(r.items[0].item, "sku-new"));
    CHECK(!strcmp(r.model, "search"));
    CHECK(!r.fallback);
    CHECK_CONTAINS(r.items[0].reason, "matches your interest in \xE2\x80\x98marathon\xE2\x80\x99");
    mp_live_list_free(&r);
    /* without the text the unknown user is still an error */
    rq.text = NULL;
    rq.text_len = 0;
    CHECK_EQ(mp_live_recommend(l, &rq, &r, NULL, &err), MP_ENOTFOUND);
    mp_live_list_free(&r);
    /* an unavailable item is not found; a changed title is searched by its new words */
    CHECK_OK(mp_live_set_item_available(l, "sku-new", 7, 0, &err), &err);
    q = SQ("marathon racer", NULL, 5);
    CHECK_OK(mp_live_search(l, &q, &r, &err), &err);
    CHECK_EQ(r.n, 0);
    mp_live_list_free(&r);
    mp_item ch = {.id = S("sku-9"), .title = S("Lavender Hand Balm"), .category = S("Beauty > Skin Care"),
                  .available = 1};
    CHECK_OK(mp_live_put_items(l, &ch, 1, NULL, &err), &err);
    q = SQ("lavender", NULL, 5);
    CHECK_OK(mp_live_search(l, &q, &r, &err), &err);
    CHECK(r.n == 1 && !strcmp(r.items[0].item, "sku-9"));
    mp_live_list_free(&r);
    q = SQ("rose", NULL, 5);
    CHECK_OK(mp_live_search(l, &q, &r, &err), &err);
    CHECK_EQ(r.n, 0);
    mp_live_list_free(&r);
    q = SQ("", NULL, 5);
    CHECK_EQ(mp_live_search(l, &q, &r, &err), MP_EINVAL);
    mp_live_close(l);

    /* reopened: the index is rebuilt from the store */
    CHECK_OK(mp_live_open(&l, &o, &err), &err);
    q = SQ("lavender", NULL, 5);
    CHECK_OK(mp_live_search(l, &q, &r, &err), &err);
    CHECK(r.n == 1 && !strcmp(r.items[0].item, "sku-9"));
    mp_live_list_free(&r);
    mp_live_close(l);
}

/* With the USE-Lite encoder (skipped when its package is not installed): items are embedded in the background
 * and cached in the store, a new item is embedded before the write returns, a reopened instance loads the cache,
 * and semantic search finds items by meaning. */
MP_TEST(search_live_encoder_embeds_caches_and_finds_by_meaning) {
    mp_error err;
    mp_encoder *enc = NULL;
    int rc = mp_encoder_open("use-lite", 1, &enc, &err);
    if (rc == MP_ENOTFOUND) {
        printf("     (skipped: %s)\n", err.msg);
        return;
    }
    CHECK_OK(rc, &err);
    char db[700];
    snprintf(db, sizeof db, "%s/e.db", mp_test_tmpdir(t));
    mp_live_opts o;
    mp_live_opts_default(&o);
    o.db = db;
    o.n_threads = 1;
    mp_live *l = NULL;
    CHECK_OK(mp_live_open(&l, &o, &err), &err); /* no encoder: the catalog goes in unembedded */
    CHECK_OK(put_catalog(l, &err), &err);
    mp_live_close(l);
    o.encoder = enc;
    CHECK_OK(mp_live_open(&l, &o, &err), &err); /* the background embedder covers the catalog */
    uint64_t n_emb = 0;
    uint32_t dim = 0;
    for (int k = 0; k < 600 && n_emb < N_ITEMS; k++) {
        mp_live_embedding_stats(l, &n_emb, &dim);
        if (n_emb < N_ITEMS) nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    CHECK_EQ(n_emb, N_ITEMS);
    CHECK_EQ(dim, 512);
    CHECK(mp_live_encoder(l) == enc);
    mp_live_list r = {0};
    mp_live_search_query q = SQ("jogging sneakers", NULL, 3);
    CHECK_OK(mp_live_search(l, &q, &r, &err), &err);
    CHECK(r.n >= 1 && (!strcmp(r.items[0].item, "sku-0") || !strcmp(r.items[0].item, "sku-1")));
    CHECK_CONTAINS(r.items[0].reason, "close in meaning to");
    mp_live_list_free(&r);
    mp_item it = {.id = S("sku-new"), .title = S("Noise Cancelling Earbuds"), .available = 1};
    CHECK_OK(mp_live_put_items(l, &it, 1, NULL, &err), &err);
    mp_live_embedding_stats(l, &n_emb, NULL);
    CHECK_EQ(n_emb, N_ITEMS + 1); /* embedded before the write returned */
    /* an unchanged text is not embedded again; a changed one is */
    CHECK_OK(mp_live_put_items(l, &it, 1, NULL, &err), &err);
    mp_live_embedding_stats(l, &n_emb, NULL);
    CHECK_EQ(n_emb, N_ITEMS + 1);
    mp_live_close(l);
    o.embed_missing = 0;
    CHECK_OK(mp_live_open(&l, &o, &err), &err); /* everything from the store's cache */
    mp_live_embedding_stats(l, &n_emb, NULL);
    CHECK_EQ(n_emb, N_ITEMS + 1);
    q = SQ("headphones", NULL, 3);
    CHECK_OK(mp_live_search(l, &q, &r, &err), &err);
    CHECK(r.n >= 1);
    int found = 0;
    for (size_t k = 0; k < r.n; k++) found |= !strcmp(r.items[k].item, "sku-new");
    CHECK(found);
    mp_live_list_free(&r);
    /* Chinese queries are not embedded by the English encoder: only lexical matches */
    q = SQ("跑步鞋", NULL, 10);
    CHECK_OK(mp_live_search(l, &q, &r, &err), &err);
    for (size_t k = 0; k < r.n; k++) CHECK(strstr(r.items[k].reason, "close in meaning") == NULL);
    mp_live_list_free(&r);
    mp_live_close(l);
    mp_encoder_free(enc);
}

/* A user who has no history yet is served from the profile attributes stored with POST /v1/users. */
MP_TEST(search_live_profile_attributes_serve_new_users) {
    mp_error err;
    char db[700];
    snprintf(db, sizeof db, "%s/p.db", mp_test_tmpdir(t));
    mp_live_opts o;
    mp_live_opts_default(&o);
    o.db = db;
    o.n_threads = 1;
    mp_live *l = NULL;
    CHECK_OK(mp_live_open(&l, &o, &err), &err);
    CHECK_OK(put_catalog(l, &err), &err);
    mp_user u[2] = {{.id = S("runner"), .attrs = S("{\"gender\": \"女\", \"likes\": [\"跑步\"], \"age\": 30}")},
                    {.id = S("plain"), .attrs = S("")}};
    CHECK_OK(mp_live_put_users(l, u, 2, NULL, &err), &err);
    for (int pass = 0; pass < 2; pass++) {
        mp_live_query q = {.user = "runner", .user_len = 6, .n = 2, .explain = 1};
        mp_live_list r = {0};
        CHECK_OK(mp_live_recommend(l, &q, &r, NULL, &err), &err);
        CHECK(r.n >= 1 && !strcmp(r.items[0].item, "sku-5"));
        CHECK(!strcmp(r.model, "search") && !r.fallback);
        CHECK_CONTAINS(r.items[0].reason, "matches your interest in \xE2\x80\x98");
        CHECK_CONTAINS(r.items[0].reason, "跑步\xE2\x80\x99");
        mp_live_list_free(&r);
        q.user = "plain";
        q.user_len = 5;
        CHECK_OK(mp_live_recommend(l, &q, &r, NULL, &err), &err);
        CHECK(!strcmp(r.model, "pop")); /* nothing to go on */
        mp_live_list_free(&r);
        mp_live_close(l); /* and again after a restart: profiles come back from the store */
        l = NULL;
        if (pass == 0) CHECK_OK(mp_live_open(&l, &o, &err), &err);
    }
    CHECK_OK(mp_live_open(&l, &o, &err), &err);
    uint64_t n_ev = 0;
    CHECK_OK(mp_live_forget_user(l, "runner", 6, &n_ev, &err), &err);
    mp_live_close(l);
}
