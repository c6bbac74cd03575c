/* Hyper-parameter search (tune.h), the k-fold split and the per-user validation tail (split.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/split.h"
#include "magpie/tune.h"
#include "test.h"

#define DAY 86400

static mp_interaction tev(uint32_t u, uint32_t i, int64_t ts) {
    mp_interaction e;
    memset(&e, 0, sizeof e);
    e.user = u;
    e.item = i;
    e.ts = ts;
    e.type = MP_EV_VIEW;
    return e;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* k-fold */

/* n events over a few users; ts unique so an event is identified by it. */
static mp_dataset *kfold_dataset(size_t n, mp_error *err) {
    mp_interaction *ev = malloc(n * sizeof *ev);
    if (!ev) return NULL;
    for (size_t i = 0; i < n; i++) {
        ev[i] = tev((uint32_t)(i % 7), (uint32_t)((i * 5) % 31), (int64_t)i);
        ev[i].has_value = 1;
        ev[i].value = (float)(1 + i % 5);
        ev[i].type = MP_EV_RATING;
    }
    mp_dataset *ds = NULL;
    if (mp_dataset_from_interactions(&ds, 7, 31, ev, n, err) != MP_OK) ds = NULL;
    free(ev);
    return ds;
}

MP_TEST(split_kfold_partitions_events) {
    mp_error err;
    mp_error_clear(&err);
    const size_t n = 103;
    mp_dataset *ds = kfold_dataset(n, &err);
    CHECK(ds);
    unsigned tested[103] = {0};
    int ok = 1;
    for (uint32_t f = 0; f < 5 && ok; f++) {
        mp_split_opts o;
        mp_split_opts_default(&o, MP_SPLIT_KFOLD);
        o.seed = 7;
        o.fold = f;
        mp_split sp;
        if (mp_split_make(ds, &o, &sp, &err) != MP_OK) {
            ok = 0;
            break;
        }
        /* 103 = 5 * 20 + 3: the first three folds hold 21 events, the others 20 */
        ok &= sp.n_test == (f < 3 ? 21u : 20u) && sp.n_valid == 0 && sp.n_train + sp.n_test == n;
        for (size_t i = 0; i < sp.n_test; i++) tested[sp.test[i].ts]++;
        /* train and test are disjoint: no ts is in both */
        for (size_t i = 0; i < sp.n_train && ok; i++)
            for (size_t j = 0; j < sp.n_test; j++) ok &= sp.train[i].ts != sp.test[j].ts;
        for (size_t i = 1; i < sp.n_test; i++) /* sorted by (user, ts) */
            ok &= sp.test[i - 1].user < sp.test[i].user ||
                  (sp.test[i - 1].user == sp.test[i].user && sp.test[i - 1].ts < sp.test[i].ts);
        mp_split_free(&sp);
    }
    mp_dataset_destroy(ds);
    CHECK_OK(ok ? MP_OK : err.code ? err.code : MP_EINVAL, &err);
    for (size_t i = 0; i < n; i++) CHECK_EQ(tested[i], 1); /* every event is tested exactly once over the folds */
}

MP_TEST(split_kfold_deterministic_and_valid_fold) {
    mp_error err;
    mp_error_clear(&err);
    mp_dataset *ds = kfold_dataset(60, &err);
    CHECK(ds);
    mp_split_opts o;
    mp_split_opts_default(&o, MP_SPLIT_KFOLD);
    CHECK_EQ(o.n_folds, 5);
    o.seed = 3;
    o.fold = 1;
    mp_split a, b, c, v, next;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    memset(&v, 0, sizeof v);
    memset(&next, 0, sizeof next);
    int rc = mp_split_make(ds, &o, &a, &err);
    if (rc == MP_OK) rc = mp_split_make(ds, &o, &b, &err);
    o.seed = 4;
    if (rc == MP_OK) rc = mp_split_make(ds, &o, &c, &err);
    o.seed = 3;
    o.with_valid = 1;
    if (rc == MP_OK) rc = mp_split_make(ds, &o, &v, &err);
    o.with_valid = 0;
    o.fold = 2;
    if (rc == MP_OK) rc = mp_split_make(ds, &o, &next, &err);
    int same = rc == MP_OK && a.n_test == b.n_test && !memcmp(a.test, b.test, a.n_test * sizeof *a.test);
    int differs = rc == MP_OK && (c.n_test != a.n_test || memcmp(a.test, c.test, a.n_test * sizeof *a.test) != 0);
    /* with_valid: the test fold is unchanged and the validation part is the next fold's test part */
    int valid_ok = rc == MP_OK && v.n_test == a.n_test && !memcmp(v.test, a.test, a.n_test * sizeof *a.test) &&
                   v.n_valid == next.n_test && !memcmp(v.valid, next.test, v.n_valid * sizeof *v.valid) &&
                   v.n_train + v.n_valid + v.n_test == 60;
    mp_split_free(&a);
    mp_split_free(&b);
    mp_split_free(&c);
    mp_split_free(&v);
    mp_split_free(&next);
    CHECK_OK(rc, &err);
    CHECK(same);
    CHECK(differs);
    CHECK(valid_ok);

    /* bad options */
    mp_split sp;
    o.fold = 5;
    CHECK_EQ(mp_split_make(ds, &o, &sp, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "fold must be 0 to 4");
    o.fold = 0;
    o.n_folds = 1;
    CHECK_EQ(mp_split_make(ds, &o, &sp, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "number of folds");
    o.n_folds = 2;
    o.with_valid = 1;
    CHECK_EQ(mp_split_make(ds, &o, &sp, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "at least 3 folds");
    mp_split_kind k;
    CHECK_EQ(mp_split_kind_parse("kfold", &k), MP_OK);
    CHECK_EQ(k, MP_SPLIT_KFOLD);
    CHECK(strcmp(mp_split_kind_name(MP_SPLIT_KFOLD), "kfold") == 0);
    mp_dataset_destroy(ds);
}

MP_TEST(split_user_tail_holds_out_latest) {
    /* u0: 4 events -> round(0.25 * 4) = 1 held out; u1: 1 event -> kept; u2: 6 events -> round(1.5) = 2 */
    mp_interaction ev[11];
    size_t n = 0;
    for (int i = 0; i < 4; i++) ev[n++] = tev(0, (uint32_t)i, i);
    ev[n++] = tev(1, 0, 5);
    for (int i = 0; i < 6; i++) ev[n++] = tev(2, (uint32_t)i, 10 + i);
    mp_interaction *tr = NULL, *va = NULL;
    size_t ntr = 0, nva = 0;
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(mp_split_user_tail(ev, n, 0.25, &tr, &ntr, &va, &nva, &err), &err);
    int ok = ntr == 8 && nva == 3 && va[0].user == 0 && va[0].ts == 3 && va[1].user == 2 && va[1].ts == 14 &&
             va[2].ts == 15 && tr[2].ts == 2 && tr[3].user == 1 && tr[4].user == 2;
    free(tr);
    free(va);
    CHECK(ok);
    CHECK_EQ(mp_split_user_tail(ev, n, 1.0, &tr, &ntr, &va, &nva, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "between 0 and 1");
}

/* ------------------------------------------------------------------------------------------------------------ */
/* spaces and metrics */

MP_TEST(tune_space_parse_kinds) {
    const mp_model_ops *pop = mp_model_find("pop");
    CHECK(pop);
    mp_error err;
    mp_error_clear(&err);
    mp_tune_space s;
    CHECK_OK(mp_tune_space_parse(&s, pop,
                                 " half_life_days = 1:1000:log , category_boost=0:2, weighted=0|1, window_days=7",
                                 &err),
             &err);
    int ok = s.n_params == 4 && !strcmp(s.params[0].name, "half_life_days") && s.params[0].kind == MP_TUNE_INT &&
             s.params[0].log && s.params[0].lo == 1 && s.params[0].hi == 1000 &&
             s.params[1].kind == MP_TUNE_INT && /* "0:2" with an integer default "0" */
             s.params[2].kind == MP_TUNE_CHOICE && s.params[2].n_choices == 2 &&
             !strcmp(s.params[2].choices[1], "1") && s.params[3].kind == MP_TUNE_CHOICE &&
             s.params[3].n_choices == 1;
    char *text = NULL;
    if (ok) ok = mp_tune_space_format(&s, &text) == MP_OK;
    mp_tune_space_free(&s);
    CHECK(ok);
    CHECK_CONTAINS(text, "half_life_days=1:1000:log:int,category_boost=0:2:int,weighted=0|1,window_days=7");
    free(text);
    CHECK_OK(mp_tune_space_parse(&s, pop, "category_boost=0:2:real,half_life_days=0.5:3", &err), &err);
    ok = s.params[0].kind == MP_TUNE_REAL && s.params[1].kind == MP_TUNE_REAL && s.params[1].lo == 0.5;
    mp_tune_space_free(&s);
    CHECK(ok);
    /* the default space of pop exists and only names pop's parameters */
    CHECK_OK(mp_tune_space_default(&s, pop, &err), &err);
    ok = s.n_params >= 2;
    for (size_t i = 0; i < s.n_params; i++) {
        int known = 0;
        for (const mp_param_info *pi = pop->params; pi->name; pi++) known |= !strcmp(pi->name, s.params[i].name);
        ok &= known;
    }
    mp_tune_space_free(&s);
    CHECK(ok);
}

/* Each bad space fails with a message naming the problem. */
MP_TEST(tune_space_parse_errors) {
    const mp_model_ops *pop = mp_model_find("pop");
    CHECK(pop);
    static const struct {
        const char *spec, *needle;
    } cases[] = {
        {"factors=16:256", "model pop has no parameter \"factors\" (its parameters: half_life_days"},
        {"half_life_days", "expected name=lo:hi"},
        {"half_life_days=", "no value after '='"},
        {"half_life_days=10:1", "lower bound 10 is above the upper bound 1"},
        {"half_life_days=0:10:log", "a log range needs a lower bound above 0"},
        {"half_life_days=1:10:cubic", "unknown flag \"cubic\""},
        {"half_life_days=a:10", "expected numbers lo:hi"},
        {"category_boost=-1:2", "the lower bound"},
        {"weighted=0|2", "choice"},
        {"weighted=0||1", "empty choice"},
        {"weighted=0|1,weighted=1", "given twice"},
        {"half_life_days=1:2:int:real", "int and real exclude each other"},
        {"half_life_days=0.2:0.7:int", "no integer lies in the range"},
        {" , ", "no parameters given"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mp_error err;
        mp_error_clear(&err);
        mp_tune_space s;
        int rc = mp_tune_space_parse(&s, pop, cases[i].spec, &err);
        CHECK_MSG(rc != MP_OK, "space \"%s\" was accepted", cases[i].spec);
        CHECK_MSG(s.n_params == 0 && s.params == NULL, "space \"%s\": output not cleared", cases[i].spec);
        CHECK_CONTAINS(err.msg, cases[i].needle);
    }
    /* the model's own reason is passed on */
    mp_error err;
    mp_tune_space s;
    CHECK(mp_tune_space_parse(&s, pop, "category_boost=-1:2", &err) != MP_OK);
    CHECK_CONTAINS(err.msg, ">= 0");
}

MP_TEST(tune_metric_parse) {
    mp_tune_metric m;
    mp_error err;
    mp_error_clear(&err);
    char buf[32];
    CHECK_OK(mp_tune_metric_parse("ndcg@10", &m, &err), &err);
    CHECK(m.kind == MP_TUNE_NDCG && m.k == 10 && !mp_tune_metric_minimize(&m));
    CHECK_OK(mp_tune_metric_parse("P@5", &m, &err), &err);
    CHECK(m.kind == MP_TUNE_PRECISION && m.k == 5);
    CHECK(!strcmp(mp_tune_metric_name(&m, buf, sizeof buf), "precision@5"));
    CHECK_OK(mp_tune_metric_parse("rmse", &m, &err), &err);
    CHECK(m.kind == MP_TUNE_RMSE && mp_tune_metric_minimize(&m));
    CHECK_EQ(mp_tune_metric_parse("ndcg", &m, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "expected a cut-off");
    CHECK_EQ(mp_tune_metric_parse("rmse@10", &m, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "takes no @k");
    CHECK_EQ(mp_tune_metric_parse("ndcg@0", &m, &err), MP_EINVAL);
    CHECK_EQ(mp_tune_metric_parse("f1@10", &m, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "ndcg@K");
    mp_eval_result r;
    memset(&r, 0, sizeof r);
    r.n_ks = 2;
    r.ks[0] = 5;
    r.ks[1] = 10;
    r.overall.at[1].ndcg = 0.25;
    CHECK_OK(mp_tune_metric_parse("ndcg@10", &m, &err), &err);
    CHECK_NEAR(mp_tune_metric_value(&m, &r), 0.25, 0);
    m.k = 20;
    CHECK(isnan(mp_tune_metric_value(&m, &r)));
}

/* ------------------------------------------------------------------------------------------------------------ */
/* the search */

/* The planted dataset. 20 "old" users (ids 0..19) each viewed two of the items A = 0..4 four times on day 0
 * (every A item: 32 events); they have fewer than 3 distinct items, so loo keeps them in training. 20 "recent"
 * users (20..39) on day 100 viewed three of the items B = 5..9 (every B item: 12 events in training), then a
 * fourth (validation) and a fifth (test). Items 10..19 are never seen. With popularity decayed by half-life h,
 * an A item scores 32 * 0.5^(100 / h) and a B item 12, so B ranks first exactly when h < 100 / log2(32 / 12) =
 * 70.67 days; then NDCG@5 on validation is high (the target is one of the user's two unseen B items), otherwise
 * the five A items fill the top 5 and NDCG@5 is 0. */
static mp_dataset *planted_dataset(mp_error *err) {
    mp_interaction ev[400];
    size_t n = 0;
    for (uint32_t u = 0; u < 20; u++)
        for (uint32_t r = 0; r < 4; r++) {
            ev[n++] = tev(u, u % 5, r * 2);
            ev[n++] = tev(u, (u + 1) % 5, r * 2 + 1);
        }
    for (uint32_t r = 0; r < 20; r++)
        for (uint32_t j = 0; j < 5; j++) ev[n++] = tev(20 + r, 5 + (r + j) % 5, 100 * DAY + j);
    mp_dataset *ds = NULL;
    if (mp_dataset_from_interactions(&ds, 40, 20, ev, n, err) != MP_OK) return NULL;
    return ds;
}

typedef struct trial_count {
    size_t calls, last_best;
} trial_count;

static void count_trial(void *ctx, const mp_tune_trial *tr, size_t index, size_t best) {
    trial_count *c = ctx;
    (void)tr;
    c->calls++;
    c->last_best = best;
    (void)index;
}

MP_TEST(tune_pop_finds_planted_half_life) {
    mp_error err;
    mp_error_clear(&err);
    mp_dataset *ds = planted_dataset(&err);
    CHECK(ds);
    mp_split_opts so;
    mp_split_opts_default(&so, MP_SPLIT_LEAVE_LAST);
    mp_split sp;
    int rc = mp_split_make(ds, &so, &sp, &err);
    if (rc != MP_OK) mp_dataset_destroy(ds);
    CHECK_OK(rc, &err);
    mp_tune_space space;
    memset(&space, 0, sizeof space);
    rc = mp_tune_space_parse(&space, mp_model_find("pop"), "half_life_days=1:1000:log:real,category_boost=0:2:real",
                             &err);
    mp_tune_opts o;
    mp_tune_opts_default(&o);
    o.model = "pop";
    o.space = &space;
    o.n_trials = 12;
    o.seed = 5;
    o.metric.kind = MP_TUNE_NDCG;
    o.metric.k = 5;
    o.eval.ks[0] = 5;
    o.eval.n_ks = 1;
    trial_count tc = {0, 0};
    o.on_trial = count_trial;
    o.on_trial_ctx = &tc;
    mp_tune_result a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    if (rc == MP_OK) rc = mp_tune_run(ds, &sp, NULL, &o, &a, &err);
    o.on_trial = NULL;
    if (rc == MP_OK) rc = mp_tune_run(ds, &sp, NULL, &o, &b, &err);
    int ok = rc == MP_OK;
    double best_h = -1, best_value = -1;
    size_t in_region = 0, out_region = 0, out_zero = 1;
    if (ok) {
        best_h = atof(strstr(a.trials[a.best].params, "half_life_days=") + strlen("half_life_days="));
        best_value = a.trials[a.best].value;
        for (size_t i = 0; i < a.n_trials; i++) {
            double h = atof(strstr(a.trials[i].params, "half_life_days=") + strlen("half_life_days="));
            if (h < 70.0) in_region++;
            else if (h > 71.0) {
                out_region++;
                out_zero &= a.trials[i].value == 0;
            }
        }
        /* the same seed gives the same trials */
        ok = a.n_trials == b.n_trials && a.best == b.best;
        for (size_t i = 0; ok && i < a.n_trials; i++)
            ok = !strcmp(a.trials[i].params, b.trials[i].params) && a.trials[i].value == b.trials[i].value;
    }
    int has_test = a.has_test, has_model = a.model != NULL;
    double test_ndcg = a.has_test ? a.test.overall.at[0].ndcg : -1;
    size_t n_trials = a.n_trials, best = a.best;
    mp_tune_result_free(&a);
    mp_tune_result_free(&b);
    mp_tune_space_free(&space);
    mp_split_free(&sp);
    mp_dataset_destroy(ds);
    CHECK_OK(rc, &err);
    CHECK(ok);
    CHECK_EQ(n_trials, 12);
    CHECK_EQ(tc.calls, 12);
    CHECK_EQ(tc.last_best, best);
    CHECK_MSG(best_h < 70.67, "best half-life %g is outside the planted region (< 70.67 days)", best_h);
    CHECK(best_value > 0.6);
    CHECK(out_zero);
    /* refinement concentrates trials in the good region */
    CHECK_MSG(in_region > out_region, "%zu trials inside the planted region, %zu outside", in_region, out_region);
    /* the refitted best parameters score the test part like validation: the test item is the other unseen B */
    CHECK(has_test && has_model);
    CHECK(test_ndcg > 0.6);
}

MP_TEST(tune_errors_are_clear) {
    mp_error err;
    mp_error_clear(&err);
    mp_dataset *ds = planted_dataset(&err);
    CHECK(ds);
    mp_split_opts so;
    mp_split_opts_default(&so, MP_SPLIT_LEAVE_LAST);
    so.with_valid = 0; /* no validation part */
    mp_split sp;
    int rc = mp_split_make(ds, &so, &sp, &err);
    mp_tune_space space;
    memset(&space, 0, sizeof space);
    if (rc == MP_OK) rc = mp_tune_space_parse(&space, mp_model_find("pop"), "category_boost=0:1", &err);
    mp_tune_opts o;
    mp_tune_opts_default(&o);
    o.model = "pop";
    o.space = &space;
    mp_tune_result r;
    int rc_novalid = MP_OK, rc_model = MP_OK, rc_base = MP_OK, rc_rmse = MP_OK;
    char msg_novalid[256] = "", msg_model[256] = "", msg_base[256] = "", msg_rmse[512] = "";
    if (rc == MP_OK) {
        rc_novalid = mp_tune_run(ds, &sp, NULL, &o, &r, &err);
        snprintf(msg_novalid, sizeof msg_novalid, "%s", err.msg);
        mp_tune_result_free(&r);
        mp_split_free(&sp);
        so.with_valid = 1;
        rc = mp_split_make(ds, &so, &sp, &err);
    }
    if (rc == MP_OK) {
        o.model = "no-such-model";
        rc_model = mp_tune_run(ds, &sp, NULL, &o, &r, &err);
        snprintf(msg_model, sizeof msg_model, "%s", err.msg);
        mp_tune_result_free(&r);
        o.model = "pop";
        o.base_params = "weighted=7";
        rc_base = mp_tune_run(ds, &sp, NULL, &o, &r, &err);
        snprintf(msg_base, sizeof msg_base, "%s", err.msg);
        mp_tune_result_free(&r);
        o.base_params = NULL;
        /* views carry no ratings: every trial fails, with the reason */
        o.metric.kind = MP_TUNE_RMSE;
        o.n_trials = 3;
        rc_rmse = mp_tune_run(ds, &sp, NULL, &o, &r, &err);
        snprintf(msg_rmse, sizeof msg_rmse, "%s", err.msg);
        mp_tune_result_free(&r);
    }
    mp_tune_space_free(&space);
    mp_split_free(&sp);
    mp_dataset_destroy(ds);
    CHECK_OK(rc, &err);
    CHECK_EQ(rc_novalid, MP_EEMPTY);
    CHECK_CONTAINS(msg_novalid, "no validation events");
    CHECK_EQ(rc_model, MP_EINVAL);
    CHECK_CONTAINS(msg_model, "no-such-model");
    CHECK_EQ(rc_base, MP_EINVAL);
    CHECK_CONTAINS(msg_base, "fixed parameters");
    CHECK_EQ(rc_rmse, MP_EEMPTY);
    CHECK_CONTAINS(msg_rmse, "every trial failed");
    CHECK_CONTAINS(msg_rmse, "rmse is not available");
}

/* A finite space stops when every configuration has been tried. */
MP_TEST(tune_finite_space_runs_out) {
    mp_error err;
    mp_error_clear(&err);
    mp_dataset *ds = planted_dataset(&err);
    CHECK(ds);
    mp_split_opts so;
    mp_split_opts_default(&so, MP_SPLIT_LEAVE_LAST);
    mp_split sp;
    int rc = mp_split_make(ds, &so, &sp, &err);
    mp_tune_space space;
    memset(&space, 0, sizeof space);
    if (rc == MP_OK) rc = mp_tune_space_parse(&space, mp_model_find("pop"), "half_life_days=0|10|1000", &err);
    mp_tune_opts o;
    mp_tune_opts_default(&o);
    o.model = "pop";
    o.space = &space;
    o.n_trials = 30;
    o.refit = 0;
    mp_tune_result r;
    memset(&r, 0, sizeof r);
    if (rc == MP_OK) rc = mp_tune_run(ds, &sp, NULL, &o, &r, &err);
    size_t n = r.n_trials;
    int first_is_default = n > 0 && !strcmp(r.trials[0].params, "half_life_days=0");
    const char *best = rc == MP_OK ? r.best_params : "";
    int best_ok = rc == MP_OK && !strcmp(best, "half_life_days=10") && r.model == NULL && !r.has_test;
    mp_tune_result_free(&r);
    mp_tune_space_free(&space);
    mp_split_free(&sp);
    mp_dataset_destroy(ds);
    CHECK_OK(rc, &err);
    CHECK_EQ(n, 3);
    CHECK(first_is_default);
    CHECK(best_ok);
}
