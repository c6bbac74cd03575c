/* The evaluation harness end to end: a fake scorer with hand-computed results, history modes, sampled negatives,
 * thread-count independence, output formats, and the "pop" model through split + train set + evaluate. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/eval.h"
#include "magpie/split.h"
#include "magpie/trainset.h"
#include "test.h"

static mp_interaction ev(uint32_t u, uint32_t i, int64_t ts) {
    mp_interaction e;
    memset(&e, 0, sizeof e);
    e.user = u;
    e.item = i;
    e.type = MP_EV_VIEW;
    e.ts = ts;
    return e;
}

/* Same scores for everyone: item 1 and 2 tie at the top. */
static int fixed_scores(const void *ctx, const mp_user_ctx *uctx, float *scores, mp_error *err) {
    static const float s[6] = {1, 3, 3, 2, 0, 0};
    memcpy(scores, s, sizeof s);
    return MP_OK;
}

static int rating_four(const void *ctx, uint32_t user, uint32_t item, double *out, mp_error *err) {
    *out = 4.0;
    return MP_OK;
}

static int rating_unsupported(const void *ctx, uint32_t user, uint32_t item, double *out, mp_error *err) {
    return mp_error_set(err, MP_EUNSUPPORTED, "no ratings");
}

typedef struct tiny {
    mp_interaction hist[4], test[3];
    uint32_t cat[6];
    mp_eval_data d;
} tiny;

/* users: 0 has {1} and is tested on 2; 1 has {2, 3} and is tested on 4; 2 has {0} and is tested on 0 again. */
static void tiny_init(tiny *x) {
    x->hist[0] = ev(0, 1, 1);
    x->hist[1] = ev(1, 2, 1);
    x->hist[2] = ev(1, 3, 2);
    x->hist[3] = ev(2, 0, 1);
    x->test[0] = ev(0, 2, 5);
    x->test[0].has_value = 1;
    x->test[0].value = 5;
    x->test[1] = ev(1, 4, 5);
    x->test[1].has_value = 1;
    x->test[1].value = 3;
    x->test[2] = ev(2, 0, 5);
    const uint32_t cat[6] = {1, 1, 2, 2, 3, 3};
    memcpy(x->cat, cat, sizeof cat);
    memset(&x->d, 0, sizeof x->d);
    x->d.n_users = 4;
    x->d.n_items = 6;
    x->d.history = x->hist;
    x->d.n_history = 4;
    x->d.train = x->hist;
    x->d.n_train = 4;
    x->d.test = x->test;
    x->d.n_test = 3;
    x->d.item_category = x->cat;
}

MP_TEST(eval_harness_exclude_by_hand) {
    tiny x;
    tiny_init(&x);
    mp_eval_opts o;
    mp_eval_opts_default(&o);
    mp_error err;
    CHECK_OK(mp_eval_parse_ks(&o, "3,1", &err), &err);
    CHECK_EQ(o.n_ks, 2);
    CHECK_EQ(o.ks[0], 1);
    o.cold_threshold = 1;
    mp_eval_scorer s = {fixed_scores, rating_four, NULL, 6};
    mp_eval_result r;
    CHECK_OK(mp_evaluate_scorer(&s, &x.d, &o, &r, &err), &err);
    /* user 0 ranks [2 3 0] (2 beats 1 only because 1 is history), user 1 ranks [1 0 4]; user 2 is skipped */
    CHECK_EQ(r.n_skipped, 1);
    CHECK_EQ(r.overall.n_users, 2);
    CHECK_EQ(r.sampled, 0);
    CHECK_NEAR(r.overall.at[0].hr, 0.5, 1e-12);
    CHECK_NEAR(r.overall.at[1].hr, 1.0, 1e-12);
    CHECK_NEAR(r.overall.at[1].ndcg, (1.0 + 0.5) / 2, 1e-12);
    CHECK_NEAR(r.overall.at[1].mrr, (1.0 + 1.0 / 3) / 2, 1e-12);
    CHECK_NEAR(r.overall.at[1].precision, 1.0 / 3, 1e-12);
    CHECK_NEAR(r.overall.at[1].recall, 1.0, 1e-12);
    CHECK_NEAR(r.overall.at[1].map, (1.0 + 1.0 / 3) / 2, 1e-12);
    /* AUC: user 0's target beats all 4 candidates; user 1's target (0) ties one of 3 */
    CHECK_NEAR(r.overall.auc, (1.0 + 0.5 / 3) / 2, 1e-12);
    /* top-1 lists {2}, {1}: coverage 2/6, Gini of [0,1,1,0,0,0] = 8/12 */
    CHECK_NEAR(r.overall.at[0].coverage, 2.0 / 6, 1e-12);
    CHECK_NEAR(r.overall.at[0].gini, 2.0 / 3, 1e-12);
    CHECK_NEAR(r.overall.at[1].coverage, 5.0 / 6, 1e-12);
    CHECK_NEAR(r.overall.at[1].gini, 10.0 / 36, 1e-12);
    /* every listed item has 1 of 3 training users */
    CHECK_NEAR(r.overall.at[0].novelty, log2(3.0), 1e-12);
    CHECK(isnan(r.overall.at[0].ild));
    CHECK_NEAR(r.overall.at[1].ild, 2.0 / 3, 1e-12);
    /* groups: user 0 has 1 training item (cold), user 1 has 2 (warm) */
    CHECK_EQ(r.cold.n_users, 1);
    CHECK_EQ(r.warm.n_users, 1);
    CHECK_NEAR(r.cold.at[0].hr, 1.0, 1e-12);
    CHECK_NEAR(r.warm.at[0].hr, 0.0, 1e-12);
    CHECK_NEAR(r.warm.at[1].hr, 1.0, 1e-12);
    /* ratings: 4 vs 5 and 4 vs 3 */
    CHECK_EQ(r.overall.n_ratings, 2);
    CHECK_NEAR(r.overall.rmse, 1.0, 1e-12);
    CHECK_NEAR(r.overall.mae, 1.0, 1e-12);
    CHECK_EQ(r.cold.n_ratings, 1);

    s.predict_rating = rating_unsupported;
    CHECK_OK(mp_evaluate_scorer(&s, &x.d, &o, &r, &err), &err);
    CHECK(isnan(r.overall.rmse) && isnan(r.overall.mae));
    CHECK_EQ(r.overall.n_ratings, 0);
    s.predict_rating = NULL;
    CHECK_OK(mp_evaluate_scorer(&s, &x.d, &o, &r, &err), &err);
    CHECK(isnan(r.overall.rmse));
}

MP_TEST(eval_harness_zero_and_keep_history) {
    tiny x;
    tiny_init(&x);
    mp_eval_opts o;
    mp_eval_opts_default(&o);
    mp_error err;
    CHECK_OK(mp_eval_parse_ks(&o, "1,3,5", &err), &err);
    o.history = MP_HISTORY_ZERO;
    mp_eval_scorer s = {fixed_scores, NULL, NULL, 0};
    mp_eval_result r;
    CHECK_OK(mp_evaluate_scorer(&s, &x.d, &o, &r, &err), &err);
    /* zeroed history stays in the ranking: user 0 -> rank 1, user 1 -> [1 0 2 3 4] rank 5, user 2 -> rank 4 (0 ties
     * with 4 and 5 and wins on the lower id) */
    CHECK_EQ(r.n_skipped, 0);
    CHECK_EQ(r.overall.n_users, 3);
    CHECK_NEAR(r.overall.at[0].hr, 1.0 / 3, 1e-12);
    CHECK_NEAR(r.overall.at[1].hr, 1.0 / 3, 1e-12);
    CHECK_NEAR(r.overall.at[2].hr, 1.0, 1e-12);
    CHECK_NEAR(r.overall.at[2].ndcg, (1.0 + 1 / log2(6.0) + 1 / log2(5.0)) / 3, 1e-12);
    CHECK_NEAR(r.overall.auc, (1.0 + 1.5 / 5 + 1.0 / 5) / 3, 1e-12);

    o.history = MP_HISTORY_KEEP; /* everyone ranks [1 2 3 0 4 5]: ranks 2, 5, 4 */
    CHECK_OK(mp_evaluate_scorer(&s, &x.d, &o, &r, &err), &err);
    CHECK_NEAR(r.overall.at[0].hr, 0.0, 0);
    CHECK_NEAR(r.overall.at[1].hr, 1.0 / 3, 1e-12);
    CHECK_NEAR(r.overall.at[1].mrr, 0.5 / 3, 1e-12);
    CHECK_NEAR(r.overall.at[2].mrr, (0.5 + 0.2 + 0.25) / 3, 1e-12);
    CHECK_EQ(r.history, MP_HISTORY_KEEP);
}

MP_TEST(eval_harness_sampled_negatives) {
    tiny x;
    tiny_init(&x);
    mp_eval_opts o;
    mp_eval_opts_default(&o);
    mp_error err;
    CHECK_OK(mp_eval_parse_ks(&o, "1,3", &err), &err);
    mp_eval_scorer s = {fixed_scores, NULL, NULL, 0};
    mp_eval_result full, a, b;
    CHECK_OK(mp_evaluate_scorer(&s, &x.d, &o, &full, &err), &err);
    /* more negatives than there are items: every non-history item is a candidate, as in the full ranking */
    o.sampled_negatives = 1000;
    CHECK_OK(mp_evaluate_scorer(&s, &x.d, &o, &a, &err), &err);
    CHECK_EQ(a.sampled, 1);
    CHECK_EQ(a.sampled_negatives, 1000);
    CHECK(memcmp(&a.overall.at[0], &full.overall.at[0], sizeof(double) * 6) == 0);
    CHECK_NEAR(a.overall.auc, full.overall.auc, 1e-12);
    /* two negatives: deterministic for a seed */
    o.sampled_negatives = 2;
    CHECK_OK(mp_evaluate_scorer(&s, &x.d, &o, &a, &err), &err);
    CHECK_OK(mp_evaluate_scorer(&s, &x.d, &o, &b, &err), &err);
    CHECK(memcmp(&a.overall, &b.overall, sizeof a.overall) == 0);
    CHECK_NEAR(a.overall.at[1].hr, 1.0, 1e-12); /* 3 candidates, k = 3 */
    /* user 0's target outscores any negatives; user 1's (score 0) never ranks first */
    CHECK_NEAR(a.overall.at[0].hr, 0.5, 1e-12);
    char *text = NULL;
    CHECK_OK(mp_eval_result_table(&a, "tiny", &text), &err);
    CHECK_CONTAINS(text, "SAMPLED");
    CHECK_CONTAINS(text, "2 sampled negatives");
    free(text);
    CHECK_OK(mp_eval_result_json(&a, "tiny", &text), &err);
    CHECK_CONTAINS(text, "\"sampled\":true");
    CHECK_CONTAINS(text, "\"sampled_negatives\":2");
    free(text);
}

MP_TEST(eval_output_formats) {
    tiny x;
    tiny_init(&x);
    mp_eval_opts o;
    mp_eval_opts_default(&o);
    mp_error err;
    CHECK_OK(mp_eval_parse_ks(&o, "1,3", &err), &err);
    o.cold_threshold = 1;
    mp_eval_scorer s = {fixed_scores, NULL, NULL, 0};
    mp_eval_result r;
    CHECK_OK(mp_evaluate_scorer(&s, &x.d, &o, &r, &err), &err);
    char *text = NULL;
    CHECK_OK(mp_eval_result_table(&r, "fake \"model\"", &text), &err);
    CHECK_CONTAINS(text, "## fake \"model\"");
    CHECK_CONTAINS(text, "| overall | 1 | 0.5000 | 0.5000 | 0.5000 |");
    CHECK_CONTAINS(text, "| cold | 1 | 1.0000 |");
    CHECK_CONTAINS(text, "1 skipped");
    CHECK_CONTAINS(text, "history: exclude");
    CHECK_CONTAINS(text, "| overall | 2 | 0.5833 | 0 | n/a | n/a |");
    free(text);
    CHECK_OK(mp_eval_result_json(&r, "fake \"model\"", &text), &err);
    CHECK_CONTAINS(text, "{\"title\":\"fake \\\"model\\\"\",\"sampled\":false");
    CHECK_CONTAINS(text, "\"ks\":[1,3]");
    CHECK_CONTAINS(text, "\"overall\":{\"users\":2,");
    CHECK_CONTAINS(text, "\"rmse\":null");
    CHECK_CONTAINS(text, "\"1\":{\"hr\":0.5,");
    free(text);
}

MP_TEST(eval_bad_input) {
    tiny x;
    tiny_init(&x);
    mp_eval_opts o;
    mp_eval_opts_default(&o);
    mp_error err;
    CHECK_EQ(mp_eval_parse_ks(&o, "5,x", &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "comma-separated");
    CHECK_EQ(mp_eval_parse_ks(&o, "0", &err), MP_EINVAL);
    CHECK_EQ(mp_eval_parse_ks(&o, "1,2,3,4,5,6,7,8,9", &err), MP_EINVAL);
    CHECK_EQ(o.n_ks, 3); /* unchanged */
    mp_history_mode h;
    CHECK_EQ(mp_history_mode_parse("zero", &h), MP_OK);
    CHECK_EQ(h, MP_HISTORY_ZERO);
    CHECK_EQ(mp_history_mode_parse("drop", &h), MP_EINVAL);
    mp_interaction swapped[3] = {x.test[1], x.test[0], x.test[2]};
    x.d.test = swapped;
    mp_eval_scorer s = {fixed_scores, NULL, NULL, 0};
    mp_eval_result r;
    CHECK_EQ(mp_evaluate_scorer(&s, &x.d, &o, &r, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "sorted by user");
}

/* Score with many ties that depends on the user and on the history length. */
static int hashed_scores(const void *ctx, const mp_user_ctx *uctx, float *scores, mp_error *err) {
    uint32_t n = *(const uint32_t *)ctx;
    for (uint32_t i = 0; i < n; i++) scores[i] = (float)((uctx->user * 31u + i * 17u + (uint32_t)uctx->n_history) % 7);
    return MP_OK;
}

MP_TEST(eval_results_do_not_depend_on_threads) {
    enum { U = 2500, I = 60 };
    mp_interaction *in = malloc(U * 12 * sizeof *in);
    CHECK(in != NULL);
    size_t n = 0;
    uint64_t x = 99;
    for (uint32_t u = 0; u < U; u++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t len = 1 + (uint32_t)((x >> 33) % 12);
        for (uint32_t k = 0; k < len; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            in[n++] = ev(u, (uint32_t)((x >> 33) % I), k);
        }
    }
    mp_dataset *ds;
    mp_error err;
    int rc = mp_dataset_from_interactions(&ds, U, I, in, n, &err);
    free(in);
    CHECK_OK(rc, &err);
    mp_split_opts so;
    mp_split_opts_default(&so, MP_SPLIT_RATIO);
    mp_split sp;
    CHECK_OK(mp_split_make(ds, &so, &sp, &err), &err);
    mp_eval_data d = {U, I, sp.train, sp.n_train, sp.train, sp.n_train, sp.test, sp.n_test, ds->item_category};
    uint32_t n_items = I;
    mp_eval_scorer s = {hashed_scores, NULL, &n_items, I};
    mp_eval_opts o;
    mp_eval_opts_default(&o);
    mp_eval_result r1, r2, r5;
    int ok = 1;
    const mp_history_mode modes[] = {MP_HISTORY_EXCLUDE, MP_HISTORY_ZERO};
    for (int m = 0; m < 2 && ok; m++)
        for (uint32_t sampled = 0; sampled <= 10 && ok; sampled += 10) {
            o.history = modes[m];
            o.sampled_negatives = sampled;
            o.n_threads = 1;
            ok &= mp_evaluate_scorer(&s, &d, &o, &r1, &err) == MP_OK;
            o.n_threads = 2;
            ok &= mp_evaluate_scorer(&s, &d, &o, &r2, &err) == MP_OK;
            o.n_threads = 5;
            ok &= mp_evaluate_scorer(&s, &d, &o, &r5, &err) == MP_OK;
            ok &= r1.overall.n_users > 1000;
            ok &= memcmp(&r1.overall, &r2.overall, sizeof r1.overall) == 0;
            ok &= memcmp(&r1.overall, &r5.overall, sizeof r1.overall) == 0;
            ok &= memcmp(&r1.cold, &r5.cold, sizeof r1.cold) == 0;
            ok &= memcmp(&r1.warm, &r5.warm, sizeof r1.warm) == 0;
            ok &= r1.overall.at[0].hr > 0 && r1.overall.at[0].hr < 1;
        }
    mp_split_free(&sp);
    mp_dataset_destroy(ds);
    CHECK_MSG(ok, "results differ between thread counts (or evaluation failed: %s)", err.msg);
}

MP_TEST(eval_pop_model_end_to_end) {
    /* sequences (ts = position): every user starts with item 0, so training popularity is item 0 only */
    mp_interaction in[] = {ev(0, 0, 0), ev(0, 1, 1), ev(0, 2, 2), ev(1, 0, 0), ev(1, 1, 1),
                           ev(1, 3, 2), ev(2, 0, 0), ev(2, 2, 1), ev(2, 1, 2)};
    mp_dataset *ds;
    mp_error err;
    CHECK_OK(mp_dataset_from_interactions(&ds, 3, 5, in, 9, &err), &err);
    mp_split_opts so;
    mp_split_opts_default(&so, MP_SPLIT_LEAVE_LAST);
    mp_split sp;
    CHECK_OK(mp_split_make(ds, &so, &sp, &err), &err);
    CHECK_EQ(sp.n_train, 3);
    mp_interaction *hist;
    size_t n_hist;
    CHECK_OK(mp_split_merge(sp.train, sp.n_train, sp.valid, sp.n_valid, &hist, &n_hist, &err), &err);
    mp_train_set ts;
    CHECK_OK(mp_train_set_build(&ts, ds, sp.train, sp.n_train, NULL, &err), &err);
    mp_model *m = NULL;
    mp_eval_opts o;
    mp_eval_opts_default(&o);
    mp_eval_data d = {3, 5, hist, n_hist, sp.train, sp.n_train, sp.test, sp.n_test, NULL};
    mp_eval_result r;
    int rc = mp_model_create(&m, "pop", &err);
    if (rc == MP_OK) rc = mp_evaluate(m, &d, &o, &r, &err);
    int unfitted_refused = rc == MP_EINVAL && strstr(err.msg, "not fitted") != NULL;
    if (m) rc = mp_model_fit(m, &ts.data, NULL, &err);
    if (rc == MP_OK) {
        CHECK_OK(mp_eval_parse_ks(&o, "1,2", &err), &err);
        rc = mp_evaluate(m, &d, &o, &r, &err);
    }
    mp_model_destroy(m);
    mp_train_set_free(&ts);
    free(hist);
    mp_split_free(&sp);
    mp_dataset_destroy(ds);
    CHECK(unfitted_refused);
    CHECK_OK(rc, &err);
    /* all candidates tie at 0 after excluding history, so lower ids win: user 0 ranks [2 3 4] (target 2),
     * user 1 ranks [2 3 4] (target 3), user 2 ranks [1 3 4] (target 1) */
    CHECK_EQ(r.overall.n_users, 3);
    CHECK_NEAR(r.overall.at[0].hr, 2.0 / 3, 1e-12);
    CHECK_NEAR(r.overall.at[1].hr, 1.0, 1e-12);
    CHECK_NEAR(r.overall.at[1].ndcg, (1.0 + 1 / log2(3.0) + 1.0) / 3, 1e-12);
}
