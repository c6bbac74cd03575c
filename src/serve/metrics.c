/* src/serve/metrics.c: request counters, latency histograms and gauges of `magpie serve`, rendered in the
 * Prometheus text format 0.0.4 (see metrics.h).
 *
 * Everything a request touches is a relaxed C11 atomic: the counters only need to be exact in the end (each
 * increment is atomic), not ordered with respect to each other, and /metrics readers tolerate a snapshot taken
 * while requests are in flight. Only the model description (a string) takes a mutex, and it changes rarely. */
#include "serve/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "magpie/buf.h"
#include "magpie/live.h"

static const double bucket_bounds[MP_METRICS_NBUCKETS] = MP_METRICS_BUCKETS;
static const int tracked_codes[MP_METRICS_NCODES] = MP_METRICS_CODES;

/* Slot MP_METRICS_NCODES counts every other status. */
#define N_CODE_SLOTS (MP_METRICS_NCODES + 1)
/* One more slot than seconds reported, so the MP_METRICS_RATE_SECONDS finished seconds before `now` never share
 * a slot with `now` itself. */
#define RATE_SLOTS (MP_METRICS_RATE_SECONDS + 1)

typedef struct endpoint {
    char *name;                                          /* route template, owned */
    _Atomic uint64_t by_code[N_CODE_SLOTS];              /* requests per tracked status (last: other) */
    _Atomic uint64_t by_bucket[MP_METRICS_NBUCKETS + 1]; /* latency histogram, NOT cumulative (last: > 2.5 s) */
    _Atomic uint64_t sum_ns;                             /* total latency, nanoseconds */
} endpoint;

struct mp_metrics {
    endpoint *endpoints; /* [n_endpoints] */
    size_t n_endpoints;
    _Atomic uint64_t events_accepted, events_duplicate, events_rejected;
    _Atomic uint64_t reloads_ok, reloads_error;
    _Atomic int64_t open_connections;
    /* Events accepted per wall-clock second: each slot packs (second << 32) | count in one word, so checking that
     * the slot still belongs to the second and adding to it is one compare-and-swap; a slot whose second is not
     * the one asked for is stale and reads as 0. Seconds are unix seconds truncated to 32 bits (fine until 2106);
     * a count saturates at 2^32 - 1 per second. */
    _Atomic uint64_t rate[RATE_SLOTS];
    struct timespec started;    /* CLOCK_MONOTONIC at creation, for uptime */
    pthread_mutex_t model_lock; /* guards the model_* fields below */
    char model_name[256];
    uint64_t model_version;
    int64_t model_loaded_at;
    uint32_t model_items;
    int model_has_index, model_set;
};

int mp_metrics_create(mp_metrics **out, const char *const *endpoints, size_t n_endpoints, mp_error *err) {
    *out = NULL;
    mp_metrics *m = calloc(1, sizeof *m);
    if (!m) return mp_error_set(err, MP_ENOMEM, "metrics: out of memory");
    if (pthread_mutex_init(&m->model_lock, NULL) != 0) {
        free(m);
        return mp_error_set(err, MP_ENOMEM, "metrics: cannot create a mutex");
    }
    m->endpoints = calloc(n_endpoints ? n_endpoints : 1, sizeof *m->endpoints);
    if (!m->endpoints) {
        mp_metrics_destroy(m);
        return mp_error_set(err, MP_ENOMEM, "metrics: out of memory");
    }
    for (size_t i = 0; i < n_endpoints; i++) {
        endpoint *e = &m->endpoints[i];
        for (size_t c = 0; c < N_CODE_SLOTS; c++)
            atomic_init(&e->by_code[c], 0);
        for (size_t b = 0; b <= MP_METRICS_NBUCKETS; b++)
            atomic_init(&e->by_bucket[b], 0);
        atomic_init(&e->sum_ns, 0);
        const char *name = endpoints[i] ? endpoints[i] : "";
        if (!(e->name = strdup(name))) {
            m->n_endpoints = i;
            mp_metrics_destroy(m);
            return mp_error_set(err, MP_ENOMEM, "metrics: out of memory");
        }
    }
    m->n_endpoints = n_endpoints;
    atomic_init(&m->events_accepted, 0);
    atomic_init(&m->events_duplicate, 0);
    atomic_init(&m->events_rejected, 0);
    atomic_init(&m->reloads_ok, 0);
    atomic_init(&m->reloads_error, 0);
    atomic_init(&m->open_connections, 0);
    for (size_t i = 0; i < RATE_SLOTS; i++)
        atomic_init(&m->rate[i], 0);
    clock_gettime(CLOCK_MONOTONIC, &m->started);
    *out = m;
    return MP_OK;
}

void mp_metrics_destroy(mp_metrics *m) {
    if (!m) return;
    if (m->endpoints)
        for (size_t i = 0; i < m->n_endpoints; i++)
            free(m->endpoints[i].name);
    free(m->endpoints);
    pthread_mutex_destroy(&m->model_lock);
    free(m);
}

static size_t code_slot(int status) {
    for (size_t i = 0; i < MP_METRICS_NCODES; i++)
        if (tracked_codes[i] == status) return i;
    return MP_METRICS_NCODES;
}

void mp_metrics_observe(mp_metrics *m, size_t endpoint_index, int status, double seconds) {
    if (!m || endpoint_index >= m->n_endpoints) return;
    endpoint *e = &m->endpoints[endpoint_index];
    if (!(seconds > 0)) seconds = 0; /* negative and NaN */
    size_t b = 0;
    while (b < MP_METRICS_NBUCKETS && seconds > bucket_bounds[b])
        b++;
    /* 1.8e10 s fits in 64-bit nanoseconds; longer is nonsense and is clamped */
    uint64_t ns = seconds >= 1.8e10 ? (uint64_t)18e18 : (uint64_t)(seconds * 1e9 + 0.5);
    atomic_fetch_add_explicit(&e->by_code[code_slot(status)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->by_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->sum_ns, ns, memory_order_relaxed);
}

void mp_metrics_add_events_at(mp_metrics *m, int64_t now, uint64_t accepted, uint64_t duplicates, uint64_t rejected) {
    if (!m) return;
    if (accepted) atomic_fetch_add_explicit(&m->events_accepted, accepted, memory_order_relaxed);
    if (duplicates) atomic_fetch_add_explicit(&m->events_duplicate, duplicates, memory_order_relaxed);
    if (rejected) atomic_fetch_add_explicit(&m->events_rejected, rejected, memory_order_relaxed);
    if (!accepted || now < 0) return;
    uint64_t sec = (uint64_t)now & 0xffffffffu;
    _Atomic uint64_t *slot = &m->rate[(uint64_t)now % RATE_SLOTS];
    uint64_t old = atomic_load_explicit(slot, memory_order_relaxed), next;
    do {
        uint64_t old_sec = old >> 32, count;
        if (old_sec == sec) {
            count = (old & 0xffffffffu) + accepted;
        } else if (old_sec < sec || old == 0) {
            count = accepted; /* the slot held an older second: start this one */
        } else {
            return; /* a newer second owns the slot: `now` is too old for the ring */
        }
        if (count > 0xffffffffu) count = 0xffffffffu;
        next = (sec << 32) | count;
    } while (!atomic_compare_exchange_weak_explicit(slot, &old, next, memory_order_relaxed, memory_order_relaxed));
}

void mp_metrics_add_events(mp_metrics *m, uint64_t accepted, uint64_t duplicates, uint64_t rejected) {
    mp_metrics_add_events_at(m, (int64_t)time(NULL), accepted, duplicates, rejected);
}

size_t mp_metrics_event_rate_at(mp_metrics *m, int64_t now, double *out, size_t cap) {
    if (!m || !out) return 0;
    size_t n = cap < MP_METRICS_RATE_SECONDS ? cap : MP_METRICS_RATE_SECONDS;
    for (size_t i = 0; i < n; i++) {
        int64_t sec = now - (int64_t)n + (int64_t)i;
        out[i] = 0;
        if (sec < 0) continue;
        uint64_t v = atomic_load_explicit(&m->rate[(uint64_t)sec % RATE_SLOTS], memory_order_relaxed);
        if (v >> 32 == ((uint64_t)sec & 0xffffffffu)) out[i] = (double)(v & 0xffffffffu);
    }
    return n;
}

size_t mp_metrics_event_rate(mp_metrics *m, double *out, size_t cap) {
    return mp_metrics_event_rate_at(m, (int64_t)time(NULL), out, cap);
}

void mp_metrics_set_model(mp_metrics *m, const char *name, uint64_t version, int64_t loaded_at, uint32_t n_items,
                          int has_index) {
    if (!m) return;
    pthread_mutex_lock(&m->model_lock);
    snprintf(m->model_name, sizeof m->model_name, "%s", name ? name : "");
    m->model_version = version;
    m->model_loaded_at = loaded_at;
    m->model_items = n_items;
    m->model_has_index = has_index != 0;
    m->model_set = 1;
    pthread_mutex_unlock(&m->model_lock);
}

void mp_metrics_add_reload(mp_metrics *m, int ok) {
    if (!m) return;
    atomic_fetch_add_explicit(ok ? &m->reloads_ok : &m->reloads_error, 1, memory_order_relaxed);
}

void mp_metrics_note_model(mp_metrics *m, struct mp_live *live, int reload_ok) {
    if (!m) return;
    if (reload_ok >= 0) mp_metrics_add_reload(m, reload_ok);
    if (!live) return;
    mp_live_model_info mi;
    mp_error err;
    mp_error_clear(&err);
    if (mp_live_model_info_get(live, &mi, &err) != MP_OK) return;
    mp_metrics_set_model(m, mi.name, mi.version, mi.loaded_at, mi.n_items, mi.has_index);
    mp_live_model_info_free(&mi);
}

void mp_metrics_set_connections(mp_metrics *m, int64_t open_connections) {
    if (!m) return;
    atomic_store_explicit(&m->open_connections, open_connections, memory_order_relaxed);
}

/* ---- rendering ----------------------------------------------------------------------------------------------- */

/* Rendering appends to core's mp_buf: an allocation failure sticks and is checked once at the end. */

/* A label value with \, " and newline escaped, as the exposition format requires. */
static void put_label(mp_buf *b, const char *v) {
    mp_buf_printf(b, "\"");
    for (; *v && !b->failed; v++) {
        if (*v == '\\')
            mp_buf_printf(b, "\\\\");
        else if (*v == '"')
            mp_buf_printf(b, "\\\"");
        else if (*v == '\n')
            mp_buf_printf(b, "\\n");
        else
            mp_buf_printf(b, "%c", *v);
    }
    mp_buf_printf(b, "\"");
}

static void put_header(mp_buf *b, const char *name, const char *type, const char *help) {
    mp_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Exact decimal seconds from nanoseconds: 3000000 -> "0.003", 2000000000 -> "2". */
static void put_seconds_ns(mp_buf *b, uint64_t ns) {
    char frac[16];
    snprintf(frac, sizeof frac, "%09llu", (unsigned long long)(ns % 1000000000u));
    size_t n = 9;
    while (n && frac[n - 1] == '0')
        n--;
    frac[n] = '\0';
    mp_buf_printf(b, "%llu%s%s", (unsigned long long)(ns / 1000000000u), n ? "." : "", frac);
}

/* Resident set size in bytes from /proc/self/statm; -1 if unavailable. */
static long long resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    unsigned long long size_pages = 0, resident_pages = 0;
    int ok = fscanf(f, "%llu %llu", &size_pages, &resident_pages) == 2;
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (!ok || page <= 0) return -1;
    return (long long)(resident_pages * (unsigned long long)page);
}

int mp_metrics_render(mp_metrics *m, char **out, size_t *len, mp_error *err) {
    *out = NULL;
    if (len) *len = 0;
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_reserve(&b, 4096);

    put_header(&b, "magpie_http_requests_total", "counter", "HTTP requests served, by route and status code.");
    for (size_t i = 0; i < m->n_endpoints; i++) {
        endpoint *e = &m->endpoints[i];
        for (size_t c = 0; c < N_CODE_SLOTS; c++) {
            uint64_t v = atomic_load_explicit(&e->by_code[c], memory_order_relaxed);
            if (!v) continue;
            mp_buf_printf(&b, "magpie_http_requests_total{endpoint=");
            put_label(&b, e->name);
            if (c < MP_METRICS_NCODES)
                mp_buf_printf(&b, ",code=\"%d\"} %llu\n", tracked_codes[c], (unsigned long long)v);
            else
                mp_buf_printf(&b, ",code=\"other\"} %llu\n", (unsigned long long)v);
        }
    }

    put_header(&b, "magpie_http_request_duration_seconds", "histogram",
               "Time from request start to the last byte of the response, by route.");
    for (size_t i = 0; i < m->n_endpoints; i++) {
        endpoint *e = &m->endpoints[i];
        uint64_t cumulative = 0;
        for (size_t k = 0; k <= MP_METRICS_NBUCKETS; k++) {
            cumulative += atomic_load_explicit(&e->by_bucket[k], memory_order_relaxed);
            mp_buf_printf(&b, "magpie_http_request_duration_seconds_bucket{endpoint=");
            put_label(&b, e->name);
            if (k < MP_METRICS_NBUCKETS)
                mp_buf_printf(&b, ",le=\"%g\"} %llu\n", bucket_bounds[k], (unsigned long long)cumulative);
            else
                mp_buf_printf(&b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cumulative);
        }
        mp_buf_printf(&b, "magpie_http_request_duration_seconds_sum{endpoint=");
        put_label(&b, e->name);
        mp_buf_printf(&b, "} ");
        put_seconds_ns(&b, atomic_load_explicit(&e->sum_ns, memory_order_relaxed));
        mp_buf_printf(&b, "\n");
        /* _count equals the +Inf bucket of the same snapshot, as the format requires */
        mp_buf_printf(&b, "magpie_http_request_duration_seconds_count{endpoint=");
        put_label(&b, e->name);
        mp_buf_printf(&b, "} %llu\n", (unsigned long long)cumulative);
    }

    put_header(&b, "magpie_events_ingested_total", "counter", "Events accepted and stored.");
    mp_buf_printf(&b, "magpie_events_ingested_total %llu\n",
                  (unsigned long long)atomic_load_explicit(&m->events_accepted, memory_order_relaxed));
    put_header(&b, "magpie_events_duplicate_total", "counter", "Events ignored as duplicates of stored ones.");
    mp_buf_printf(&b, "magpie_events_duplicate_total %llu\n",
                  (unsigned long long)atomic_load_explicit(&m->events_duplicate, memory_order_relaxed));
    put_header(&b, "magpie_events_rejected_total", "counter", "Events refused as invalid.");
    mp_buf_printf(&b, "magpie_events_rejected_total %llu\n",
                  (unsigned long long)atomic_load_explicit(&m->events_rejected, memory_order_relaxed));

    char name[256];
    uint64_t version;
    int64_t loaded_at;
    uint32_t items;
    int has_index, model_set;
    pthread_mutex_lock(&m->model_lock);
    memcpy(name, m->model_name, sizeof name);
    version = m->model_version;
    loaded_at = m->model_loaded_at;
    items = m->model_items;
    has_index = m->model_has_index;
    model_set = m->model_set;
    pthread_mutex_unlock(&m->model_lock);
    put_header(&b, "magpie_model_info", "gauge", "The model being served (always 1).");
    if (model_set) {
        mp_buf_printf(&b, "magpie_model_info{model=");
        put_label(&b, name);
        mp_buf_printf(&b, ",version=\"%llu\"} 1\n", (unsigned long long)version);
    }
    put_header(&b, "magpie_model_version", "gauge", "Version of the model being served (0: none).");
    mp_buf_printf(&b, "magpie_model_version %llu\n", (unsigned long long)version);
    put_header(&b, "magpie_model_loaded_timestamp_seconds", "gauge", "When the model being served was loaded.");
    mp_buf_printf(&b, "magpie_model_loaded_timestamp_seconds %lld\n", (long long)loaded_at);
    put_header(&b, "magpie_model_items", "gauge", "Items the model being served can recommend.");
    mp_buf_printf(&b, "magpie_model_items %lu\n", (unsigned long)items);
    put_header(&b, "magpie_model_ann_index", "gauge", "1 if recommendations use an HNSW index, else 0.");
    mp_buf_printf(&b, "magpie_model_ann_index %d\n", has_index);
    put_header(&b, "magpie_model_reloads_total", "counter", "Model reload attempts, by result.");
    mp_buf_printf(&b, "magpie_model_reloads_total{result=\"ok\"} %llu\n",
                  (unsigned long long)atomic_load_explicit(&m->reloads_ok, memory_order_relaxed));
    mp_buf_printf(&b, "magpie_model_reloads_total{result=\"error\"} %llu\n",
                  (unsigned long long)atomic_load_explicit(&m->reloads_error, memory_order_relaxed));

    put_header(&b, "magpie_http_open_connections", "gauge", "HTTP connections open now.");
    mp_buf_printf(&b, "magpie_http_open_connections %lld\n",
                  (long long)atomic_load_explicit(&m->open_connections, memory_order_relaxed));
    long long rss = resident_bytes();
    if (rss >= 0) {
        put_header(&b, "magpie_process_resident_memory_bytes", "gauge", "Resident memory of the server process.");
        mp_buf_printf(&b, "magpie_process_resident_memory_bytes %lld\n", rss);
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double up = (double)(now.tv_sec - m->started.tv_sec) + (double)(now.tv_nsec - m->started.tv_nsec) * 1e-9;
    put_header(&b, "magpie_uptime_seconds", "gauge", "Seconds since the server started.");
    mp_buf_printf(&b, "magpie_uptime_seconds %.3f\n", up < 0 ? 0 : up);

    *out = mp_buf_take(&b, len);
    if (!*out) return mp_error_set(err, MP_ENOMEM, "metrics: out of memory rendering /metrics");
    return MP_OK;
}
