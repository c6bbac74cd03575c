/* Request metrics of `magpie serve` (src/serve/metrics.h): counters, histograms, gauges, the events-per-second
 * ring and the Prometheus text rendering. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "serve/metrics.h"
#include "test.h"

/* 1 if `text` holds `line` as a whole line. */
static int has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n') return 1;
    return 0;
}

#define CHECK_LINE(text, line)                                                                                         \
    do {                                                                                                               \
        if (!has_line((text), (line))) {                                                                               \
            mp_test_fail(t, __FILE__, __LINE__, "no line \"%s\" in:\n%s", (line), (text));                             \
            free(text);                                                                                                \
            mp_metrics_destroy(m);                                                                                     \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)

/* Checks the exposition format line by line: comments are HELP/TYPE, each family's TYPE comes before its
 * samples, samples are `name{labels} value` with well-formed quoted label values. Returns NULL or a problem. */
static const char *check_format(const char *text, char *why, size_t cap) {
    char typed[64][96];
    size_t n_typed = 0;
    int line_no = 0;
    for (const char *p = text; *p;) {
        const char *end = strchr(p, '\n');
        if (!end) return "last line lacks a newline";
        line_no++;
        size_t n = (size_t)(end - p);
        char line[1024];
        if (n >= sizeof line) return "line too long";
        memcpy(line, p, n);
        line[n] = '\0';
        p = end + 1;
        if (line[0] == '#') {
            char name[96], type[32];
            if (strncmp(line, "# HELP ", 7) == 0) continue;
            if (sscanf(line, "# TYPE %95s %31s", name, type) != 2 ||
                (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram"))) {
                snprintf(why, cap, "line %d: bad comment: %s", line_no, line);
                return why;
            }
            if (n_typed < 64) snprintf(typed[n_typed++], 96, "%s", name);
            continue;
        }
        size_t i = 0;
        while ((line[i] >= 'a' && line[i] <= 'z') || (line[i] >= 'A' && line[i] <= 'Z') || line[i] == '_' ||
               line[i] == ':' || (i && line[i] >= '0' && line[i] <= '9'))
            i++;
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)i, line);
        int known = 0;
        for (size_t k = 0; k < n_typed; k++) {
            size_t tl = strlen(typed[k]);
            if (strncmp(name, typed[k], tl) == 0 && (!name[tl] || !strcmp(name + tl, "_bucket") ||
                                                     !strcmp(name + tl, "_sum") || !strcmp(name + tl, "_count")))
                known = 1;
        }
        if (i == 0 || !known) {
            snprintf(why, cap, "line %d: sample without a TYPE: %s", line_no, line);
            return why;
        }
        if (line[i] == '{') {
            i++;
            for (;;) {
                size_t l0 = i;
                while ((line[i] >= 'a' && line[i] <= 'z') || line[i] == '_')
                    i++;
                if (i == l0 || line[i] != '=' || line[i + 1] != '"') {
                    snprintf(why, cap, "line %d: bad label: %s", line_no, line);
                    return why;
                }
                for (i += 2; line[i] && line[i] != '"'; i++)
                    if (line[i] == '\\') {
                        if (line[i + 1] != '\\' && line[i + 1] != '"' && line[i + 1] != 'n') {
                            snprintf(why, cap, "line %d: bad escape: %s", line_no, line);
                            return why;
                        }
                        i++;
                    }
                if (line[i] != '"') {
                    snprintf(why, cap, "line %d: unterminated label: %s", line_no, line);
                    return why;
                }
                i++;
                if (line[i] == ',') {
                    i++;
                    continue;
                }
                if (line[i] == '}') {
                    i++;
                    break;
                }
                snprintf(why, cap, "line %d: bad label list: %s", line_no, line);
                return why;
            }
        }
        char *num_end;
        if (line[i] != ' ' || (strtod(line + i + 1, &num_end), *num_end != '\0') || num_end == line + i + 1) {
            snprintf(why, cap, "line %d: bad value: %s", line_no, line);
            return why;
        }
    }
    return NULL;
}

MP_TEST(servemetrics_render_exact_lines) {
    const char *endpoints[] = {"GET /v1/a", "POST /v1/b/{id}"};
    mp_metrics *m = NULL;
    mp_error err;
    CHECK_OK(mp_metrics_create(&m, endpoints, 2, &err), &err);
    mp_metrics_observe(m, 0, 200, 0.0001); /* exactly on a bound: counted in le="0.0001" */
    mp_metrics_observe(m, 0, 200, 0.003);
    mp_metrics_observe(m, 0, 404, 0.5);
    mp_metrics_observe(m, 0, 302, 3.0);  /* untracked code -> "other"; above every bound -> +Inf only */
    mp_metrics_observe(m, 0, 503, -1.0); /* negative latency counts as 0 */
    mp_metrics_observe(m, 7, 200, 0.1);  /* no such endpoint: ignored */
    char *s = NULL;
    size_t len = 0;
    CHECK_OK(mp_metrics_render(m, &s, &len, &err), &err);
    CHECK_EQ(len, strlen(s));
    CHECK_LINE(s, "# HELP magpie_http_requests_total HTTP requests served, by route and status code.");
    CHECK_LINE(s, "# TYPE magpie_http_requests_total counter");
    CHECK_LINE(s, "magpie_http_requests_total{endpoint=\"GET /v1/a\",code=\"200\"} 2");
    CHECK_LINE(s, "magpie_http_requests_total{endpoint=\"GET /v1/a\",code=\"404\"} 1");
    CHECK_LINE(s, "magpie_http_requests_total{endpoint=\"GET /v1/a\",code=\"503\"} 1");
    CHECK_LINE(s, "magpie_http_requests_total{endpoint=\"GET /v1/a\",code=\"other\"} 1");
    CHECK(!strstr(s, "magpie_http_requests_total{endpoint=\"POST /v1/b/{id}\""));
    CHECK_LINE(s, "# TYPE magpie_http_request_duration_seconds histogram");
    static const char *const cumulative[] = {"0.0001\"} 2", "0.00025\"} 2", "0.0005\"} 2", "0.001\"} 2", "0.0025\"} 2",
                                             "0.005\"} 3",  "0.01\"} 3",    "0.025\"} 3",  "0.05\"} 3",  "0.1\"} 3",
                                             "0.25\"} 3",   "0.5\"} 4",     "1\"} 4",      "2.5\"} 4",   "+Inf\"} 5"};
    for (size_t i = 0; i < sizeof cumulative / sizeof cumulative[0]; i++) {
        char line[200];
        snprintf(line, sizeof line, "magpie_http_request_duration_seconds_bucket{endpoint=\"GET /v1/a\",le=\"%s",
                 cumulative[i]);
        CHECK_LINE(s, line);
    }
    CHECK_LINE(s, "magpie_http_request_duration_seconds_sum{endpoint=\"GET /v1/a\"} 3.5031");
    CHECK_LINE(s, "magpie_http_request_duration_seconds_count{endpoint=\"GET /v1/a\"} 5");
    /* an endpoint with no requests still has its (empty) histogram */
    CHECK_LINE(s, "magpie_http_request_duration_seconds_bucket{endpoint=\"POST /v1/b/{id}\",le=\"0.0001\"} 0");
    CHECK_LINE(s, "magpie_http_request_duration_seconds_bucket{endpoint=\"POST /v1/b/{id}\",le=\"+Inf\"} 0");
    CHECK_LINE(s, "magpie_http_request_duration_seconds_sum{endpoint=\"POST /v1/b/{id}\"} 0");
    CHECK_LINE(s, "magpie_http_request_duration_seconds_count{endpoint=\"POST /v1/b/{id}\"} 0");
    /* buckets of one endpoint are in increasing le order, +Inf last */
    const char *a = strstr(s, "endpoint=\"GET /v1/a\",le=\"0.0001\""),
               *b = strstr(s, "endpoint=\"GET /v1/a\",le=\"2.5\""),
               *c = strstr(s, "endpoint=\"GET /v1/a\",le=\"+Inf\"");
    CHECK(a && b && c && a < b && b < c);
    /* before any model is set: no info line, zero gauges */
    CHECK(!strstr(s, "magpie_model_info{"));
    CHECK_LINE(s, "magpie_model_version 0");
    CHECK_LINE(s, "magpie_events_ingested_total 0");
    char why[1200];
    const char *bad = check_format(s, why, sizeof why);
    CHECK_MSG(!bad, "%s", bad);
    free(s);
    mp_metrics_destroy(m);
}

typedef struct {
    mp_metrics *m;
    int id;
} worker_arg;

static void *observe_worker(void *p) {
    worker_arg *w = p;
    for (int i = 0; i < 100000; i++) {
        mp_metrics_observe(w->m, (size_t)(i % 2), i % 4 == 0 ? 500 : 200, 0.001);
        if (i % 10 == 0) mp_metrics_add_events_at(w->m, 5000 + (i % 3), 2, 1, 0);
    }
    return NULL;
}

MP_TEST(servemetrics_concurrent_observes_exact) {
    const char *endpoints[] = {"GET /x", "GET /y"};
    mp_metrics *m = NULL;
    mp_error err;
    CHECK_OK(mp_metrics_create(&m, endpoints, 2, &err), &err);
    pthread_t th[4];
    worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (worker_arg){m, i};
        CHECK(pthread_create(&th[i], NULL, observe_worker, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    char *s = NULL;
    CHECK_OK(mp_metrics_render(m, &s, NULL, &err), &err);
    /* per endpoint: 200000 requests; i % 4 == 0 only hits even i, i.e. endpoint 0 */
    CHECK_LINE(s, "magpie_http_requests_total{endpoint=\"GET /x\",code=\"200\"} 100000");
    CHECK_LINE(s, "magpie_http_requests_total{endpoint=\"GET /x\",code=\"500\"} 100000");
    CHECK_LINE(s, "magpie_http_requests_total{endpoint=\"GET /y\",code=\"200\"} 200000");
    CHECK_LINE(s, "magpie_http_request_duration_seconds_count{endpoint=\"GET /x\"} 200000");
    CHECK_LINE(s, "magpie_http_request_duration_seconds_bucket{endpoint=\"GET /y\",le=\"0.0005\"} 0");
    CHECK_LINE(s, "magpie_http_request_duration_seconds_bucket{endpoint=\"GET /y\",le=\"0.001\"} 200000");
    CHECK_LINE(s, "magpie_http_request_duration_seconds_sum{endpoint=\"GET /y\"} 200");
    /* 4 threads x 10000 calls x 2 accepted, spread over seconds 5000..5002 */
    CHECK_LINE(s, "magpie_events_ingested_total 80000");
    CHECK_LINE(s, "magpie_events_duplicate_total 40000");
    free(s);
    double rate[3];
    CHECK_EQ(mp_metrics_event_rate_at(m, 5003, rate, 3), 3);
    CHECK_EQ(rate[0] + rate[1] + rate[2], 80000);
    CHECK_EQ(rate[0], 4 * 3334 * 2); /* i % 10 == 0 and (i % 3) == 0: i = 0, 30, ..., 99990 -> 3334 calls */
    mp_metrics_destroy(m);
}

MP_TEST(servemetrics_label_escaping) {
    const char *endpoints[] = {"GET /a\"b\\c\nd"};
    mp_metrics *m = NULL;
    mp_error err;
    CHECK_OK(mp_metrics_create(&m, endpoints, 1, &err), &err);
    mp_metrics_observe(m, 0, 200, 0.01);
    mp_metrics_set_model(m, "als \"v2\"\\x", 3, 1700000000, 1234, 1);
    char *s = NULL;
    CHECK_OK(mp_metrics_render(m, &s, NULL, &err), &err);
    CHECK_LINE(s, "magpie_http_requests_total{endpoint=\"GET /a\\\"b\\\\c\\nd\",code=\"200\"} 1");
    CHECK_LINE(s, "magpie_model_info{model=\"als \\\"v2\\\"\\\\x\",version=\"3\"} 1");
    char why[1200];
    const char *bad = check_format(s, why, sizeof why);
    CHECK_MSG(!bad, "%s", bad);
    free(s);
    mp_metrics_destroy(m);
}

MP_TEST(servemetrics_event_rate_ring) {
    mp_metrics *m = NULL;
    mp_error err;
    CHECK_OK(mp_metrics_create(&m, NULL, 0, &err), &err);
    double out[400];
    /* nothing yet: zeros, at most MP_METRICS_RATE_SECONDS values */
    CHECK_EQ(mp_metrics_event_rate_at(m, 1000, out, 400), MP_METRICS_RATE_SECONDS);
    for (size_t i = 0; i < MP_METRICS_RATE_SECONDS; i++)
        CHECK_EQ(out[i], 0);

    mp_metrics_add_events_at(m, 1000, 5, 0, 0);
    mp_metrics_add_events_at(m, 1000, 3, 9, 9); /* duplicates and rejects do not count in the rate */
    mp_metrics_add_events_at(m, 1001, 2, 0, 0);
    mp_metrics_add_events_at(m, 1299, 7, 0, 0);
    mp_metrics_add_events_at(m, 1300, 1, 0, 0); /* the current second: not reported yet */
    CHECK_EQ(mp_metrics_event_rate_at(m, 1300, out, 300), 300);
    CHECK_EQ(out[0], 8); /* second 1000 */
    CHECK_EQ(out[1], 2); /* second 1001 */
    for (size_t i = 2; i < 299; i++)
        CHECK_EQ(out[i], 0);
    CHECK_EQ(out[299], 7); /* second 1299, the one just finished */
    /* a smaller cap gives the most recent seconds */
    CHECK_EQ(mp_metrics_event_rate_at(m, 1300, out, 2), 2);
    CHECK_EQ(out[0], 0);
    CHECK_EQ(out[1], 7);
    CHECK_EQ(mp_metrics_event_rate_at(m, 1300, out, 0), 0);
    /* one second later, 1000 has left the window and 1300 is reported */
    CHECK_EQ(mp_metrics_event_rate_at(m, 1301, out, 300), 300);
    CHECK_EQ(out[0], 2);
    CHECK_EQ(out[298], 7);
    CHECK_EQ(out[299], 1);
    /* second 1301 takes the slot of 1000 (ring of 301): 1000 is gone even if asked for, and a late add for 1000
     * counts in the totals but not in the ring */
    mp_metrics_add_events_at(m, 1301, 4, 0, 0);
    mp_metrics_add_events_at(m, 1000, 6, 0, 0);
    CHECK_EQ(mp_metrics_event_rate_at(m, 1302, out, 300), 300);
    CHECK_EQ(out[299], 4);
    CHECK_EQ(mp_metrics_event_rate_at(m, 1001, out, 1), 1);
    CHECK_EQ(out[0], 0);
    /* long after: every slot is stale and reads as 0 */
    CHECK_EQ(mp_metrics_event_rate_at(m, 100000, out, 300), 300);
    for (size_t i = 0; i < 300; i++)
        CHECK_EQ(out[i], 0);
    /* near the epoch: seconds before 0 are 0 */
    CHECK_EQ(mp_metrics_event_rate_at(m, 2, out, 5), 5);
    CHECK_EQ(out[0] + out[1] + out[2], 0);
    char *s = NULL;
    CHECK_OK(mp_metrics_render(m, &s, NULL, &err), &err);
    CHECK_LINE(s, "magpie_events_ingested_total 28");
    CHECK_LINE(s, "magpie_events_duplicate_total 9");
    CHECK_LINE(s, "magpie_events_rejected_total 9");
    free(s);
    /* the wall-clock variants work too */
    mp_metrics_add_events(m, 3, 0, 0);
    CHECK_EQ(mp_metrics_event_rate(m, out, 10), 10);
    mp_metrics_destroy(m);
}

MP_TEST(servemetrics_gauges_and_rss) {
    const char *endpoints[] = {"GET /healthz"};
    mp_metrics *m = NULL;
    mp_error err;
    CHECK_OK(mp_metrics_create(&m, endpoints, 1, &err), &err);
    mp_metrics_set_model(m, "als", 7, 1700000123, 4321, 1);
    mp_metrics_add_reload(m, 1);
    mp_metrics_add_reload(m, 1);
    mp_metrics_add_reload(m, 0);
    mp_metrics_set_connections(m, 12);
    mp_metrics_set_connections(m, 5);
    char *s = NULL;
    CHECK_OK(mp_metrics_render(m, &s, NULL, &err), &err);
    CHECK_LINE(s, "magpie_model_info{model=\"als\",version=\"7\"} 1");
    CHECK_LINE(s, "# TYPE magpie_model_info gauge");
    CHECK_LINE(s, "magpie_model_version 7");
    CHECK_LINE(s, "magpie_model_loaded_timestamp_seconds 1700000123");
    CHECK_LINE(s, "magpie_model_items 4321");
    CHECK_LINE(s, "magpie_model_ann_index 1");
    CHECK_LINE(s, "# TYPE magpie_model_reloads_total counter");
    CHECK_LINE(s, "magpie_model_reloads_total{result=\"ok\"} 2");
    CHECK_LINE(s, "magpie_model_reloads_total{result=\"error\"} 1");
    CHECK_LINE(s, "magpie_http_open_connections 5");
    CHECK_LINE(s, "# TYPE magpie_process_resident_memory_bytes gauge");
    CHECK_LINE(s, "# TYPE magpie_uptime_seconds gauge");
    const char *rss = strstr(s, "\nmagpie_process_resident_memory_bytes ");
    CHECK(rss);
    long long bytes = atoll(rss + strlen("\nmagpie_process_resident_memory_bytes "));
    CHECK_MSG(bytes > (1 << 20) && bytes < (1LL << 40), "RSS %lld", bytes);
    const char *up = strstr(s, "\nmagpie_uptime_seconds ");
    CHECK(up);
    double uptime = atof(up + strlen("\nmagpie_uptime_seconds "));
    CHECK(uptime >= 0 && uptime < 60);
    char why[1200];
    const char *bad = check_format(s, why, sizeof why);
    CHECK_MSG(!bad, "%s", bad);
    free(s);
    /* a replaced model replaces every model gauge */
    mp_metrics_set_model(m, "ease", 8, 1700000999, 10, 0);
    CHECK_OK(mp_metrics_render(m, &s, NULL, &err), &err);
    CHECK(!strstr(s, "model=\"als\""));
    CHECK_LINE(s, "magpie_model_info{model=\"ease\",version=\"8\"} 1");
    CHECK_LINE(s, "magpie_model_ann_index 0");
    free(s);
    mp_metrics_destroy(m);
    mp_metrics_destroy(NULL); /* harmless */
}
