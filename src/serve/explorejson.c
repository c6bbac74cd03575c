/* src/serve/explorejson.c: the server's text of the explore state (see explorejson.h). */
#include "serve/explorejson.h"

#include <math.h>

#include "magpie/abtest.h"

void mp_serve_explore_stats_json(mp_explore *x, mp_buf *b) {
    if (!x) return;
    mp_explore_stats st;
    mp_explore_stats_get(x, &st);
    mp_buf_adds(b, ",\"bandit\":{\"enabled\":");
    mp_json_put_bool(b, st.enabled);
    mp_buf_printf(b, ",\"features\":\"%s\",\"dim\":%u", st.features, st.dim);
    mp_buf_adds(b, ",\"protection\":");
    mp_json_put_bool(b, st.protection);
    mp_buf_printf(b, ",\"shoppers\":%zu,\"salt\":", st.shoppers);
    mp_json_put_cstr(b, st.salt);
    mp_buf_adds(b, ",\"variants\":[");
    for (size_t i = 0; i < st.n_variants; i++) {
        const mp_explore_variant_stats *v = &st.variants[i];
        if (i) mp_buf_add(b, ",", 1);
        mp_buf_adds(b, "{\"name\":");
        mp_json_put_cstr(b, v->name);
        mp_buf_adds(b, ",\"policy\":");
        mp_json_put_cstr(b, v->policy);
        mp_buf_adds(b, ",\"weight\":");
        mp_json_put_f64(b, v->weight);
        mp_buf_printf(b,
                      ",\"requests\":%llu,\"impressions\":%llu,\"feedback\":%llu,\"clicks\":%llu,\"reward_sum\":%.6f,"
                      "\"updates\":%llu,\"events_held\":%zu,\"users\":%llu,\"converted_users\":%llu,"
                      "\"purchases\":%llu,\"untracked_users\":%llu}",
                      (unsigned long long)v->requests, (unsigned long long)v->impressions,
                      (unsigned long long)v->feedback, (unsigned long long)v->clicks, v->reward_sum,
                      (unsigned long long)v->updates, v->events_held, (unsigned long long)v->users,
                      (unsigned long long)v->converted_users, (unsigned long long)v->purchases,
                      (unsigned long long)v->untracked_users);
    }
    mp_buf_adds(b, "]}");
}

void mp_serve_explore_metrics(mp_explore *x, mp_buf *b) {
    if (!x) return;
    mp_explore_stats st;
    mp_explore_stats_get(x, &st);
    static const char *const names[] = {"requests", "impressions", "feedback", "clicks", "purchases"};
    static const char *const helps[] = {"lists served", "items served", "feedback calls accepted",
                                        "feedback with reward > 0", "purchase events by users the variant served"};
    for (int s = 0; s < 5; s++) {
        mp_buf_printf(b, "# HELP magpie_ab_%s_total A/B variant %s.\n# TYPE magpie_ab_%s_total counter\n", names[s],
                      helps[s], names[s]);
        for (size_t i = 0; i < st.n_variants; i++) {
            const mp_explore_variant_stats *v = &st.variants[i];
            uint64_t n = s == 0   ? v->requests
                         : s == 1 ? v->impressions
                         : s == 2 ? v->feedback
                         : s == 3 ? v->clicks
                                  : v->purchases;
            mp_buf_printf(b, "magpie_ab_%s_total{variant=\"%s\"} %llu\n", names[s], v->name, (unsigned long long)n);
        }
    }
    mp_buf_adds(b, "# HELP magpie_ab_users Distinct users a variant served (tracked).\n# TYPE magpie_ab_users gauge\n"
                   "# HELP magpie_ab_converted_users Served users with positive feedback or a purchase.\n"
                   "# TYPE magpie_ab_converted_users gauge\n");
    for (size_t i = 0; i < st.n_variants; i++)
        mp_buf_printf(b, "magpie_ab_users{variant=\"%s\"} %llu\nmagpie_ab_converted_users{variant=\"%s\"} %llu\n",
                      st.variants[i].name, (unsigned long long)st.variants[i].users, st.variants[i].name,
                      (unsigned long long)st.variants[i].converted_users);
    mp_buf_adds(b, "# HELP magpie_ab_reward_sum Sum of positive feedback rewards per A/B variant.\n"
                   "# TYPE magpie_ab_reward_sum counter\n");
    for (size_t i = 0; i < st.n_variants; i++)
        mp_buf_printf(b, "magpie_ab_reward_sum{variant=\"%s\"} %.6f\n", st.variants[i].name, st.variants[i].reward_sum);
    mp_buf_adds(b, "# HELP magpie_bandit_events_held Served lists that still accept feedback.\n"
                   "# TYPE magpie_bandit_events_held gauge\n");
    for (size_t i = 0; i < st.n_variants; i++)
        mp_buf_printf(b, "magpie_bandit_events_held{variant=\"%s\"} %zu\n", st.variants[i].name,
                      st.variants[i].events_held);
}

void mp_serve_explore_abtest_json(mp_explore *x, mp_buf *b) {
    mp_explore_stats st;
    mp_explore_stats_get(x, &st);
    mp_abtest_arm arms[MP_EXPLORE_MAX_VARIANTS];
    mp_buf_adds(b, "{\"salt\":");
    mp_json_put_cstr(b, st.salt);
    mp_buf_adds(b, ",\"conversion\":\"a served user converts with positive feedback or a purchase\",\"variants\":[");
    for (size_t i = 0; i < st.n_variants; i++) {
        const mp_explore_variant_stats *v = &st.variants[i];
        arms[i].n = v->users;
        arms[i].conv = v->converted_users;
        if (i) mp_buf_add(b, ",", 1);
        mp_buf_adds(b, "{\"name\":");
        mp_json_put_cstr(b, v->name);
        mp_buf_adds(b, ",\"policy\":");
        mp_json_put_cstr(b, v->policy);
        mp_buf_printf(b, ",\"users\":%llu,\"converted_users\":%llu,\"rate\":", (unsigned long long)arms[i].n,
                      (unsigned long long)arms[i].conv);
        mp_json_put_f64(b, arms[i].n ? (double)arms[i].conv / (double)arms[i].n : 0.0);
        mp_buf_printf(b, ",\"purchases\":%llu,\"untracked_users\":%llu}", (unsigned long long)v->purchases,
                      (unsigned long long)v->untracked_users);
    }
    mp_buf_adds(b, "],\"comparisons\":[");
    mp_abtest_opts ao;
    mp_abtest_opts_default(&ao);
    ao.bootstrap = 0;
    for (size_t i = 1; i < st.n_variants; i++) {
        if (i > 1) mp_buf_add(b, ",", 1);
        mp_buf_adds(b, "{\"control\":");
        mp_json_put_cstr(b, st.variants[0].name);
        mp_buf_adds(b, ",\"treatment\":");
        mp_json_put_cstr(b, st.variants[i].name);
        mp_abtest_result r;
        mp_error e;
        mp_error_clear(&e);
        if (mp_abtest_compare(&arms[0], &arms[i], &ao, &r, &e) != MP_OK) {
            mp_buf_adds(b, ",\"error\":");
            mp_json_put_cstr(b, e.msg);
        } else {
            const double f[] = {r.diff, r.diff_lo, r.diff_hi, r.lift, r.lift_lo, r.lift_hi, r.z, r.p_value};
            static const char *const k[] = {"diff", "diff_lo", "diff_hi", "lift", "lift_lo", "lift_hi", "z", "p_value"};
            for (int j = 0; j < 8; j++) {
                mp_buf_printf(b, ",\"%s\":", k[j]);
                if (isfinite(f[j]))
                    mp_json_put_f64(b, f[j]);
                else
                    mp_buf_adds(b, "null");
            }
            mp_buf_adds(b, ",\"significant\":");
            mp_json_put_bool(b, r.significant);
        }
        mp_buf_add(b, "}", 1);
    }
    mp_buf_adds(b, "]}");
}

static int csv_row(void *ctx, const char *variant, uint64_t user_key, int converted, uint32_t purchases) {
    mp_buf_printf(ctx, "%s,%016llx,%d,%u\n", variant, (unsigned long long)user_key, converted, purchases);
    return 0;
}

void mp_serve_explore_abtest_csv(mp_explore *x, mp_buf *b) {
    mp_buf_adds(b, "variant,user,converted,value\n");
    mp_explore_users_each(x, csv_row, b);
}
