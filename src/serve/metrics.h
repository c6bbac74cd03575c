/* src/serve/metrics.h: request counters and latency histograms per endpoint, rendered in the Prometheus text
 * exposition format (version 0.0.4) for GET /metrics.
 *
 * Recording is lock-free (relaxed atomics) so every request can record from any thread; rendering reads a
 * consistent-enough snapshot (counters are monotonic). Endpoints are a fixed list given at creation (route
 * templates such as "/v1/recommend/{user}", never raw paths, so label cardinality is bounded). */
#ifndef MAGPIE_SERVE_METRICS_H
#define MAGPIE_SERVE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"

typedef struct mp_metrics mp_metrics;

/* Latency buckets, seconds (upper bounds; +Inf is implicit). */
#define MP_METRICS_BUCKETS {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
#define MP_METRICS_NBUCKETS 14

/* Status codes counted separately per endpoint; any other code is counted as code="other". */
#define MP_METRICS_CODES {200, 201, 204, 400, 401, 403, 404, 405, 408, 413, 415, 422, 429, 500, 503}
#define MP_METRICS_NCODES 15
/* Seconds of history kept for mp_metrics_event_rate. */
#define MP_METRICS_RATE_SECONDS 300

/* endpoints: n_endpoints route names ("GET /v1/recommend/{user}"), copied. Owned by the caller:
 * mp_metrics_destroy. */
MP_EXPORT int mp_metrics_create(mp_metrics **out, const char *const *endpoints, size_t n_endpoints, mp_error *err);
MP_EXPORT void mp_metrics_destroy(mp_metrics *m);

/* One finished request: endpoint index, HTTP status, latency in seconds. Thread-safe, lock-free. An endpoint
 * index >= n_endpoints is ignored; a negative or NaN latency counts as 0. Latency sums are kept in whole
 * nanoseconds. */
MP_EXPORT void mp_metrics_observe(mp_metrics *m, size_t endpoint, int status, double seconds);
/* Gauges and counters set by the server (thread-safe). */
/* Adds to the event counters; `accepted` also goes into the events-per-second ring at the current wall-clock
 * second (lock-free). */
MP_EXPORT void mp_metrics_add_events(mp_metrics *m, uint64_t accepted, uint64_t duplicates, uint64_t rejected);
/* The same with the wall-clock second given (unix seconds), for tests. Events for a second older than the ring
 * holds (a newer second already took its slot) still count in the totals but not in the rate. */
MP_EXPORT void mp_metrics_add_events_at(mp_metrics *m, int64_t now, uint64_t accepted, uint64_t duplicates,
                                        uint64_t rejected);
/* Model shown by /metrics (and the dashboard). name is copied (truncated to 255 bytes); loaded_at in unix
 * seconds; has_index: an ANN index is in use (magpie_model_ann_index). Thread-safe (a short lock: rare). */
MP_EXPORT void mp_metrics_set_model(mp_metrics *m, const char *name, uint64_t version, int64_t loaded_at,
                                    uint32_t n_items, int has_index);
/* Counts one model reload attempt: ok non-zero = succeeded (result="ok"), else result="error". */
MP_EXPORT void mp_metrics_add_reload(mp_metrics *m, int ok);
/* Counts a reload outcome (reload_ok < 0: none, e.g. the first load) and shows live's current model (live NULL:
 * only the count). Here rather than in server.c so that the reload endpoint and the server's life cycle share it
 * without the handlers calling back into the transport. Thread-safe. */
struct mp_live;
MP_EXPORT void mp_metrics_note_model(mp_metrics *m, struct mp_live *live, int reload_ok);
MP_EXPORT void mp_metrics_set_connections(mp_metrics *m, int64_t open_connections);
/* Events accepted per second, for the dashboard's live chart: out[i] is the count of the wall-clock second
 * now - n + i, for the n = min(cap, MP_METRICS_RATE_SECONDS) whole seconds before the current one (oldest first,
 * the last is the second just finished; seconds with nothing recorded are 0). Returns n. */
MP_EXPORT size_t mp_metrics_event_rate(mp_metrics *m, double *out, size_t cap);
/* The same with the current wall-clock second given (unix seconds), for tests. */
MP_EXPORT size_t mp_metrics_event_rate_at(mp_metrics *m, int64_t now, double *out, size_t cap);

/* Renders everything (HELP/TYPE lines included) into a malloc'ed NUL-terminated string (*out, caller frees).
 * Metric names: magpie_http_requests_total{endpoint,code}, magpie_http_request_duration_seconds{endpoint}
 * (histogram: _bucket{le}, _sum, _count), magpie_events_ingested_total, magpie_events_duplicate_total,
 * magpie_events_rejected_total, magpie_model_info{model,version} 1 (once a model is set),
 * magpie_model_version, magpie_model_loaded_timestamp_seconds, magpie_model_items, magpie_model_ann_index,
 * magpie_model_reloads_total{result="ok"|"error"}, magpie_http_open_connections,
 * magpie_process_resident_memory_bytes (from /proc/self/statm; left out where that cannot be read),
 * magpie_uptime_seconds. requests_total has a line per (endpoint, code) seen so far; the histogram has lines for
 * every endpoint. Label values are escaped (\\, \", \n). Returns MP_OK or MP_ENOMEM. */
MP_EXPORT int mp_metrics_render(mp_metrics *m, char **out, size_t *len, mp_error *err);

#endif
