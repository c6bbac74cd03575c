/* tests/test_serve_bandit.c: the exploration / feedback / protection / A/B decisions of `magpie serve`, made by the
 * live module (magpie/explore.h) from the server's settings (mp_serve_config_explore_opts), over hand-made candidate
 * lists (no store, no HTTP); the counters are read through the server's rendering (src/serve/explorejson.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "magpie/abtest.h"
#include "magpie/explore.h"
#include "serve/config.h"
#include "serve/explorejson.h"
#include "test.h"

/* A candidate list like mp_live_recommend's: items "i0".."i<n-1>" with falling scores, categories "c<i % ncat>". */
static void make_list(mp_live_list *l, size_t n, size_t ncat) {
    memset(l, 0, sizeof *l);
    l->items = calloc(n, sizeof *l->items);
    l->n = n;
    for (size_t i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "i%zu", i);
        l->items[i].item = strdup(buf);
        snprintf(buf, sizeof buf, "c%zu", i % ncat);
        l->items[i].category = strdup(buf);
        l->items[i].score = (float)(10.0 - (double)i);
    }
}

static void config(mp_serve_config *c, const char *const *kv) {
    mp_error err;
    mp_serve_config_init(c, &err);
    for (; kv && kv[0]; kv += 2)
        if (mp_serve_config_set(c, kv[0], kv[1], "test", &err) != MP_OK) {
            fprintf(stderr, "config %s=%s: %s\n", kv[0], kv[1], err.msg);
            abort();
        }
}

/* The explore state `magpie serve` makes from c. */
static int create(const mp_serve_config *c, uint64_t seed, mp_explore **out, mp_error *err) {
    mp_explore_opts o;
    int rc = mp_serve_config_explore_opts(c, &o, err);
    if (rc) return rc;
    o.seed = seed;
    return mp_explore_create(&o, out, err);
}

static int check_config(const mp_serve_config *c, mp_error *err) {
    mp_explore_opts o;
    return mp_serve_config_explore_opts(c, &o, err);
}

/* mp_explore_serve with a request naming policy (or none) at time now. */
static int serve(mp_explore *x, const char *user, size_t len, const char *policy, mp_live_list *l, size_t k,
                 double now, mp_explore_slate *sl, mp_error *err) {
    mp_explore_request r;
    mp_explore_request_default(&r);
    r.policy = policy;
    r.now = now;
    return mp_explore_serve(x, user, len, &r, l, k, sl, err);
}

MP_TEST(serve_bandit_config_errors) {
    mp_serve_config c;
    mp_error err;
    config(&c, NULL);
    CHECK_OK(check_config(&c, &err), &err);
    mp_serve_config_set(&c, "bandit", "egreedy:eps=1", "test", &err);
    CHECK_EQ(check_config(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "bandit");
    CHECK_CONTAINS(err.msg, "eps");
    CHECK_EQ(mp_serve_config_validate(&c, &err), MP_EINVAL); /* validate runs the same check */
    mp_serve_config_set(&c, "bandit", "greedy", "test", &err);
    mp_serve_config_set(&c, "ab_variants", "a:1:greedy;a:1:uniform", "test", &err);
    CHECK_EQ(check_config(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "named twice");
    mp_serve_config_set(&c, "ab_variants", "a:0:greedy;b:0:uniform", "test", &err);
    CHECK_EQ(check_config(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "sum to 0");
    mp_serve_config_set(&c, "ab_variants", "a-greedy", "test", &err);
    CHECK_EQ(check_config(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "NAME:WEIGHT:POLICY");
    mp_serve_config_set(&c, "ab_variants", "a:1:greedy;b:3:softmax:tau=0.2,seed=4", "test", &err);
    CHECK_OK(check_config(&c, &err), &err);
    mp_serve_config_set(&c, "mmr_lambda", "1.5", "test", &err);
    CHECK_EQ(check_config(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "mmr_lambda");
    mp_serve_config_free(&c);
}

MP_TEST(serve_bandit_propensities_and_feedback) {
    mp_serve_config c;
    mp_error err;
    const char *kv[] = {"bandit", "softmax:tau=2", "bandit_ttl", "10s", NULL};
    config(&c, kv);
    mp_explore *sb;
    CHECK_OK(create(&c, 42, &sb, &err), &err);
    CHECK(mp_explore_enabled(sb));
    mp_live_list l;
    make_list(&l, 8, 3);
    mp_explore_slate sl;
    CHECK_OK(serve(sb, "alice", 5, NULL, &l, 3, 100.0, &sl, &err), &err);
    CHECK_EQ(sl.k, 3);
    CHECK(sl.event_id[0]);
    CHECK(!strcmp(sl.policy, "softmax") && !strcmp(sl.variant, "default"));
    /* softmax with tau 2 over the 8 scores 10..3 min-max normalised to s_j = (7 - j) / 7 in [0, 1]: the first
     * item's propensity is exp(s/2) / sum exp(s_j/2) */
    double z = 0;
    for (int j = 0; j < 8; j++)
        z += exp((7.0 - j) / 7.0 / 2);
    int idx0 = atoi(l.items[0].item + 1);
    CHECK_NEAR(sl.propensity[0], exp((7.0 - idx0) / 7.0 / 2) / z, 1e-6);
    for (size_t i = 0; i < 3; i++)
        CHECK(sl.propensity[i] > 0 && sl.propensity[i] <= 1);
    /* the served items come first, all 8 are still there (distinct) */
    for (size_t i = 0; i < 8; i++)
        for (size_t j = i + 1; j < 8; j++)
            CHECK(strcmp(l.items[i].item, l.items[j].item) != 0);
    char served1[16];
    snprintf(served1, sizeof served1, "%s", l.items[1].item);
    const char *v = NULL;
    CHECK_OK(mp_explore_feedback(sb, sl.event_id, served1, 1.0, 101.0, &v, &err), &err);
    CHECK(v && !strcmp(v, "default"));
    /* twice, an item not shown, a bad reward, an unknown id, an expired id */
    CHECK_EQ(mp_explore_feedback(sb, sl.event_id, served1, 1.0, 101.0, NULL, &err), MP_ECONFLICT);
    CHECK_CONTAINS(err.msg, "already has feedback");
    CHECK_EQ(mp_explore_feedback(sb, sl.event_id, l.items[7].item, 1.0, 101.0, NULL, &err), MP_ENOTMEMBER);
    CHECK_CONTAINS(err.msg, "was not in event");
    CHECK_EQ(mp_explore_feedback(sb, sl.event_id, l.items[0].item, NAN, 101.0, NULL, &err), MP_EINVAL);
    CHECK_EQ(mp_explore_feedback(sb, "0badc0de-1", served1, 1.0, 101.0, NULL, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "unknown event id");
    CHECK_EQ(mp_explore_feedback(sb, sl.event_id, l.items[2].item, 0.0, 200.0, NULL, &err), MP_EEXPIRED);
    CHECK_CONTAINS(err.msg, "expired");
    /* a bad per-request spec is refused and records nothing */
    mp_explore_slate sl2;
    CHECK_EQ(serve(sb, "alice", 5, "ts:bogus=1", &l, 3, 100.0, &sl2, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "bogus");
    /* counters */
    mp_buf b;
    mp_buf_init(&b);
    mp_serve_explore_stats_json(sb, &b);
    mp_buf_add(&b, "", 1);
    CHECK_CONTAINS(b.p, "\"requests\":1,\"impressions\":3,\"feedback\":1,\"clicks\":1");
    CHECK_CONTAINS(b.p, "\"updates\":1");
    mp_buf_free(&b);
    free(sl.propensity);
    mp_live_list_free(&l);
    mp_explore_destroy(sb);
    mp_serve_config_free(&c);
}

MP_TEST(serve_bandit_variants_are_stable) {
    mp_serve_config c;
    mp_error err;
    const char *kv[] = {"ab_variants", "control:1:greedy;explore:1:uniform", "ab_salt", "s1", NULL};
    config(&c, kv);
    mp_explore *sb;
    CHECK_OK(create(&c, 7, &sb, &err), &err);
    const double w[2] = {1, 1};
    int seen[2] = {0, 0};
    for (int u = 0; u < 40; u++) {
        char user[16];
        snprintf(user, sizeof user, "user-%d", u);
        int want = mp_abtest_assign(user, "s1", w, 2);
        for (int rep = 0; rep < 2; rep++) {
            mp_live_list l;
            make_list(&l, 6, 2);
            mp_explore_slate sl;
            CHECK_OK(serve(sb, user, strlen(user), NULL, &l, 2, 1.0, &sl, &err), &err);
            CHECK(!strcmp(sl.variant, want == 0 ? "control" : "explore"));
            CHECK(!strcmp(sl.policy, want == 0 ? "greedy" : "uniform"));
            if (want == 0) { /* greedy keeps the model order, propensity 1 */
                CHECK(!strcmp(l.items[0].item, "i0") && !strcmp(l.items[1].item, "i1"));
                CHECK_NEAR(sl.propensity[0], 1.0, 1e-12);
            } else {
                CHECK_NEAR(sl.propensity[0], 1.0 / 6, 1e-12);
                CHECK_NEAR(sl.propensity[1], 1.0 / 5, 1e-12);
            }
            seen[want]++;
            free(sl.propensity);
            mp_live_list_free(&l);
        }
    }
    CHECK(seen[0] > 0 && seen[1] > 0);
    mp_buf b;
    mp_buf_init(&b);
    mp_serve_explore_metrics(sb, &b);
    mp_buf_add(&b, "", 1);
    char line[128];
    snprintf(line, sizeof line, "magpie_ab_requests_total{variant=\"control\"} %d\n", seen[0]);
    CHECK_CONTAINS(b.p, line);
    snprintf(line, sizeof line, "magpie_ab_impressions_total{variant=\"explore\"} %d\n", 2 * seen[1]);
    CHECK_CONTAINS(b.p, line);
    mp_buf_free(&b);
    mp_explore_destroy(sb);
    mp_serve_config_free(&c);
}

MP_TEST(serve_bandit_item_cap_and_serving_log) {
    const char *dir = mp_test_tmpdir(t);
    char path[512];
    snprintf(path, sizeof path, "%s/serving.jsonl", dir);
    mp_serve_config c;
    mp_error err;
    const char *kv[] = {"item_cap", "1", "bandit_log", path, NULL};
    config(&c, kv);
    mp_explore *sb;
    CHECK_OK(create(&c, 3, &sb, &err), &err);
    CHECK(mp_explore_enabled(sb));
    /* greedy with a cap of one impression per item: the second list for the same user shows new items */
    mp_live_list l;
    make_list(&l, 6, 2);
    mp_explore_slate sl;
    CHECK_OK(serve(sb, "bob", 3, NULL, &l, 2, 10.0, &sl, &err), &err);
    CHECK(!strcmp(l.items[0].item, "i0") && !strcmp(l.items[1].item, "i1"));
    char ev1[40];
    snprintf(ev1, sizeof ev1, "%s", sl.event_id);
    CHECK_OK(mp_explore_feedback(sb, ev1, "i1", 1.0, 11.0, NULL, &err), &err);
    free(sl.propensity);
    mp_live_list_free(&l);
    make_list(&l, 6, 2);
    CHECK_OK(serve(sb, "bob", 3, NULL, &l, 2, 12.0, &sl, &err), &err);
    CHECK(!strcmp(l.items[0].item, "i2") && !strcmp(l.items[1].item, "i3"));
    free(sl.propensity);
    mp_live_list_free(&l);
    /* a purchase posted as an event excludes the item for that user (the cap leaves i4, i5; i4 was bought) */
    mp_event buy = {0};
    buy.user.ptr = "bob";
    buy.user.len = 3;
    buy.item.ptr = "i4";
    buy.item.len = 2;
    buy.type = MP_EV_PURCHASE;
    mp_explore_observe(sb, &buy, 1, 12.5);
    make_list(&l, 6, 2);
    CHECK_OK(serve(sb, "bob", 3, NULL, &l, 2, 13.0, &sl, &err), &err);
    CHECK_EQ(sl.k, 1);
    CHECK(!strcmp(l.items[0].item, "i5"));
    free(sl.propensity);
    mp_live_list_free(&l);
    /* another user is not capped */
    make_list(&l, 6, 2);
    CHECK_OK(serve(sb, "carol", 5, NULL, &l, 2, 12.0, &sl, &err), &err);
    CHECK(!strcmp(l.items[0].item, "i0"));
    free(sl.propensity);
    mp_live_list_free(&l);
    mp_explore_destroy(sb); /* writes every pending impression */
    mp_serve_config_free(&c);
    size_t len = 0;
    char *text = (char *)mp_test_slurp(path, &len);
    CHECK(text != NULL);
    size_t lines = 0;
    for (size_t i = 0; text && i < len; i++)
        lines += text[i] == '\n';
    CHECK_EQ(lines, 7);
    char want[128];
    snprintf(want, sizeof want, "{\"event_id\":\"%s\",\"user\":\"bob\",\"item\":\"i1\",\"position\":2", ev1);
    CHECK_CONTAINS(text, want);
    CHECK_CONTAINS(text, "\"reward\":1}");
    free(text);
}

/* Positive feedback is a click in the shopper's state: the fatigue that pushed an item down is reset. */
MP_TEST(serve_bandit_feedback_resets_fatigue) {
    mp_serve_config c;
    mp_error err;
    const char *kv[] = {"fatigue_weight", "5", "fatigue_half_life", "1h", NULL};
    config(&c, kv);
    mp_explore *sb;
    CHECK_OK(create(&c, 5, &sb, &err), &err);
    mp_live_list l;
    mp_explore_slate sl;
    make_list(&l, 6, 6);
    CHECK_OK(serve(sb, "dana", 4, NULL, &l, 1, 10.0, &sl, &err), &err);
    CHECK(!strcmp(l.items[0].item, "i0"));
    char ev[40];
    snprintf(ev, sizeof ev, "%s", sl.event_id);
    free(sl.propensity);
    mp_live_list_free(&l);
    /* shown and not clicked: score 10 - 5 * ~1 falls below i1 (9) */
    make_list(&l, 6, 6);
    CHECK_OK(serve(sb, "dana", 4, NULL, &l, 1, 11.0, &sl, &err), &err);
    CHECK(!strcmp(l.items[0].item, "i1"));
    free(sl.propensity);
    mp_live_list_free(&l);
    /* a click on the first list's i0 resets i0's fatigue (i1 is now the fatigued one) */
    CHECK_OK(mp_explore_feedback(sb, ev, "i0", 1.0, 12.0, NULL, &err), &err);
    make_list(&l, 6, 6);
    CHECK_OK(serve(sb, "dana", 4, NULL, &l, 1, 13.0, &sl, &err), &err);
    CHECK(!strcmp(l.items[0].item, "i0"));
    free(sl.propensity);
    mp_live_list_free(&l);
    mp_explore_destroy(sb);
    mp_serve_config_free(&c);
}

/* Per-variant conversions: distinct users served, users with positive feedback or a purchase after being served,
 * the z-test against the first variant, and the per-user CSV that `magpie abtest --csv` reads. */
MP_TEST(serve_bandit_ab_conversions) {
    mp_serve_config c;
    mp_error err;
    const char *kv[] = {"ab_variants", "a:1:greedy;b:1:greedy", "ab_salt", "conv", NULL};
    config(&c, kv);
    mp_explore *sb;
    CHECK_OK(create(&c, 9, &sb, &err), &err);
    const double w[2] = {1, 1};
    int users[2] = {0, 0}, conv[2] = {0, 0};
    uint64_t purchases[2] = {0, 0};
    for (int u = 0; u < 60; u++) {
        char user[16];
        snprintf(user, sizeof user, "u%d", u);
        int vi = mp_abtest_assign(user, "conv", w, 2);
        for (int rep = 0; rep < 2; rep++) { /* served twice: counted once */
            mp_live_list l;
            make_list(&l, 4, 2);
            mp_explore_slate sl;
            CHECK_OK(serve(sb, user, strlen(user), NULL, &l, 2, 1.0, &sl, &err), &err);
            if (rep == 0 && u % 3 == 0) /* a click */
                CHECK_OK(mp_explore_feedback(sb, sl.event_id, l.items[0].item, 1.0, 2.0, NULL, &err), &err);
            if (rep == 0 && u % 3 == 1) /* no click */
                CHECK_OK(mp_explore_feedback(sb, sl.event_id, l.items[0].item, 0.0, 2.0, NULL, &err), &err);
            free(sl.propensity);
            mp_live_list_free(&l);
        }
        users[vi]++;
        conv[vi] += u % 3 == 0;
        if (u % 5 == 0) { /* a purchase: converts the user (if not already) */
            mp_event buy = {0};
            buy.user.ptr = user;
            buy.user.len = strlen(user);
            buy.item.ptr = "i9";
            buy.item.len = 2;
            buy.type = MP_EV_PURCHASE;
            mp_explore_observe(sb, &buy, 1, 3.0);
            purchases[vi]++;
            conv[vi] += u % 3 != 0;
        }
    }
    /* a purchase by a user never served counts nowhere */
    mp_event other = {0};
    other.user.ptr = "stranger";
    other.user.len = 8;
    other.item.ptr = "i1";
    other.item.len = 2;
    other.type = MP_EV_PURCHASE;
    mp_explore_observe(sb, &other, 1, 3.0);
    mp_buf b;
    mp_buf_init(&b);
    mp_serve_explore_abtest_json(sb, &b);
    mp_buf_add(&b, "", 1);
    char want[160];
    snprintf(want, sizeof want, "{\"name\":\"a\",\"policy\":\"greedy\",\"users\":%d,\"converted_users\":%d,", users[0],
             conv[0]);
    CHECK_CONTAINS(b.p, want);
    snprintf(want, sizeof want, "\"purchases\":%llu,\"untracked_users\":0}", (unsigned long long)purchases[1]);
    CHECK_CONTAINS(b.p, want);
    CHECK_CONTAINS(b.p, "\"control\":\"a\",\"treatment\":\"b\",\"diff\":");
    CHECK_CONTAINS(b.p, "\"p_value\":");
    mp_buf_free(&b);
    mp_buf_init(&b);
    mp_serve_explore_abtest_csv(sb, &b);
    mp_buf_add(&b, "", 1);
    CHECK(!strncmp(b.p, "variant,user,converted,value\n", 29));
    size_t lines = 0, ones = 0;
    for (const char *p = b.p; *p; p++)
        if (*p == '\n') {
            lines++;
            ones += p > b.p + 1 && p[-1] != '0' && p[-2] == ',' && p[-3] == '1'; /* converted=1 with purchases */
        }
    CHECK_EQ(lines, 61);
    CHECK_EQ(ones, purchases[0] + purchases[1]);
    mp_buf_free(&b);
    mp_explore_destroy(sb);
    mp_serve_config_free(&c);
}

/* With bandit_state, a variant's learned policy is saved at exit and resumed by the next server run; a saved
 * policy learned with other model settings is not resumed. */
MP_TEST(serve_bandit_state_survives_restart) {
    const char *dir = mp_test_tmpdir(t);
    char state[512];
    snprintf(state, sizeof state, "%s/state", dir);
    mp_serve_config c;
    mp_error err;
    const char *kv[] = {"bandit", "softmax:tau=1,intercept=1", "bandit_state", state, NULL};
    config(&c, kv);
    mp_explore *sb;
    CHECK_OK(create(&c, 1, &sb, &err), &err);
    CHECK_OK(mp_explore_attach(sb, NULL, &err), &err);
    for (int r = 0; r < 3; r++) {
        mp_live_list l;
        make_list(&l, 5, 2);
        mp_explore_slate sl;
        CHECK_OK(serve(sb, "eve", 3, NULL, &l, 2, 1.0 + r, &sl, &err), &err);
        CHECK_OK(mp_explore_feedback(sb, sl.event_id, l.items[0].item, 1.0, 1.5 + r, NULL, &err), &err);
        free(sl.propensity);
        mp_live_list_free(&l);
    }
    mp_explore_destroy(sb); /* saves */
    char path[600];
    snprintf(path, sizeof path, "%s/default.bandit", state);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_OK(create(&c, 2, &sb, &err), &err);
    CHECK_OK(mp_explore_attach(sb, NULL, &err), &err);
    mp_buf b;
    mp_buf_init(&b);
    mp_serve_explore_stats_json(sb, &b);
    mp_buf_add(&b, "", 1);
    CHECK_CONTAINS(b.p, "\"updates\":3");
    mp_buf_free(&b);
    mp_explore_destroy(sb);
    mp_serve_config_free(&c);
    /* another intercept setting: the saved model does not fit, the policy starts fresh */
    const char *kv2[] = {"bandit", "softmax:tau=1,intercept=0", "bandit_state", state, NULL};
    config(&c, kv2);
    CHECK_OK(create(&c, 3, &sb, &err), &err);
    CHECK_OK(mp_explore_attach(sb, NULL, &err), &err);
    mp_buf_init(&b);
    mp_serve_explore_stats_json(sb, &b);
    mp_buf_add(&b, "", 1);
    CHECK_CONTAINS(b.p, "\"updates\":0");
    mp_buf_free(&b);
    mp_explore_destroy(sb);
    mp_serve_config_free(&c);
}
