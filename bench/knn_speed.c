/* bench/knn_speed.c: fit time, top-10 serving time and peak RSS of the item-to-item models on a real store.
 *
 *   build/bench/knn_speed STORE.db MODEL [k=v,...] [--threads N]
 *
 * Fits MODEL on every event of the store (as `magpie train` does), then asks for the top 10 of every user
 * (history = the user's events, history excluded) on one thread, and prints one line:
 *   model=ease params=... items=12101 users=22363 events=198502 fit_s=... serve_users_per_s=... peak_rss_mb=... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "magpie/dataset.h"
#include "magpie/model.h"
#include "magpie/store.h"
#include "magpie/trainset.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s STORE.db MODEL [k=v,...] [--threads N]\n", argv[0]);
        return 2;
    }
    const char *db = argv[1], *name = argv[2], *params = NULL;
    int threads = 0;
    for (int a = 3; a < argc; a++) {
        if (!strcmp(argv[a], "--threads") && a + 1 < argc) threads = atoi(argv[++a]);
        else params = argv[a];
    }
    mp_error err;
    mp_error_clear(&err);
    mp_store *s = NULL;
    mp_dataset *ds = NULL;
    mp_model *m = NULL;
    mp_train_set ts;
    memset(&ts, 0, sizeof ts);
    int rc = mp_store_open(&s, db, MP_STORE_READONLY, &err);
    if (!rc) rc = mp_dataset_load(&ds, s, NULL, &err);
    if (!rc) rc = mp_train_set_build(&ts, ds, ds->events, ds->n_events, NULL, &err);
    if (!rc) rc = mp_model_create(&m, name, &err);
    if (!rc && params) rc = mp_model_set_params(m, params, &err);
    if (rc) {
        fprintf(stderr, "knn_speed: %s\n", err.msg);
        return 1;
    }
    ts.data.n_threads = threads;
    double t0 = now_s();
    rc = mp_model_fit(m, &ts.data, NULL, &err);
    double fit_s = now_s() - t0;
    if (rc) {
        fprintf(stderr, "knn_speed: %s\n", err.msg);
        return 1;
    }
    uint32_t top[10];
    size_t n_out, served = 0;
    t0 = now_s();
    for (uint32_t u = 0; u < ds->n_users; u++) {
        size_t b = ds->user_ptr[u], e = ds->user_ptr[u + 1];
        if (b == e) continue;
        mp_user_ctx ctx = {.user = u, .history = ds->events + b, .n_history = e - b};
        if ((rc = mp_model_recommend(m, &ctx, 10, NULL, 0, 1, NULL, top, NULL, &n_out, &err))) {
            fprintf(stderr, "knn_speed: %s\n", err.msg);
            return 1;
        }
        served++;
    }
    double serve_s = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("model=%s params=%s items=%u users=%zu events=%zu fit_s=%.3f serve_users_per_s=%.0f peak_rss_mb=%.0f\n",
           name, params ? params : "(defaults)", ds->n_items, served, ds->n_events, fit_s,
           serve_s > 0 ? (double)served / serve_s : 0.0, (double)ru.ru_maxrss / 1024.0);
    mp_model_destroy(m);
    mp_train_set_free(&ts);
    mp_dataset_destroy(ds);
    mp_store_close(s);
    return 0;
}
