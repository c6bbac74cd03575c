/* magpie stats: what a store holds: events per type, users, items, time range and density. */
#include <getopt.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: magpie stats [--db PATH] [--json]\n"
        "\n"
        "Prints what a store holds: events per type, users and items (all, and active = with at least one\n"
        "event), distinct user-item pairs, the time range of the events and the density of the\n"
        "interaction matrix (pairs / (active users x active items)). The store is opened read-only.\n"
        "\n"
        "options:\n"
        "  --db PATH   store file or postgres:// URI (default: $MAGPIE_DB or ./magpie.db); --store is the same\n"
        "  --json      one JSON object on stdout instead of the table, for scripts:\n"
        "              {\"events\":N,\"per_type\":{\"view\":N,...},\"users\":N,\"items\":N,\"active_users\":N,\n"
        "               \"active_items\":N,\"pairs\":N,\"ts_min\":N,\"ts_max\":N,\"first\":\"ISO\",\"last\":\"ISO\",\n"
        "               \"density\":X}   (first/last are null when there are no events)\n"
        "  -h, --help  this text\n"
        "\n"
        "example:\n"
        "  magpie stats --db shop.db\n");
}

/* Epoch seconds -> "2025-01-01T00:00:00Z". */
static void iso_time(int64_t ts, char *buf, size_t cap) {
    time_t t = (time_t)ts;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm)) snprintf(buf, cap, "%lld", (long long)ts);
}

int cmd_stats(int argc, char **argv) {
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"store", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = cli_default_db();
    int json = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "d:jh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return cli_usage_error("stats", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("stats", "unexpected argument \"%s\"", argv[optind]);

    mp_error err;
    mp_store *s;
    if (mp_store_open(&s, db, MP_STORE_READONLY, &err) != MP_OK) return cli_fail("stats", "%s", err.msg);
    mp_store_stats st;
    int rc = mp_store_stats_get(s, &st, &err);
    mp_store_close(s);
    if (rc != MP_OK) return cli_fail("stats", "%s", err.msg);

    char first[40], last[40];
    iso_time(st.ts_min, first, sizeof first);
    iso_time(st.ts_max, last, sizeof last);
    if (json) {
        printf("{\"events\":%llu,\"per_type\":{", (unsigned long long)st.n_events);
        for (int t = 0; t < MP_EV_NTYPES; t++)
            printf("%s\"%s\":%llu", t ? "," : "", mp_event_type_name(t), (unsigned long long)st.per_type[t]);
        printf("},\"users\":%llu,\"items\":%llu,\"active_users\":%llu,\"active_items\":%llu,\"pairs\":%llu,",
               (unsigned long long)st.n_users, (unsigned long long)st.n_items, (unsigned long long)st.n_active_users,
               (unsigned long long)st.n_active_items, (unsigned long long)st.n_pairs);
        if (st.n_events)
            printf("\"ts_min\":%lld,\"ts_max\":%lld,\"first\":\"%s\",\"last\":\"%s\",", (long long)st.ts_min,
                   (long long)st.ts_max, first, last);
        else
            printf("\"ts_min\":null,\"ts_max\":null,\"first\":null,\"last\":null,");
        printf("\"density\":%.9g}\n", st.density);
        return 0;
    }
    printf("store      %s\n", db);
    printf("events     %llu\n", (unsigned long long)st.n_events);
    for (int t = 0; t < MP_EV_NTYPES; t++)
        if (st.per_type[t])
            printf("  %-9s %llu (%.1f%%)\n", mp_event_type_name(t), (unsigned long long)st.per_type[t],
                   100.0 * (double)st.per_type[t] / (double)st.n_events);
    printf("users      %llu (%llu with events)\n", (unsigned long long)st.n_users,
           (unsigned long long)st.n_active_users);
    printf("items      %llu (%llu with events)\n", (unsigned long long)st.n_items,
           (unsigned long long)st.n_active_items);
    printf("pairs      %llu distinct user-item pairs\n", (unsigned long long)st.n_pairs);
    if (st.n_events) {
        double days = (double)(st.ts_max - st.ts_min) / 86400.0;
        printf("time       %s .. %s (%.1f days)\n", first, last, days);
    } else {
        printf("time       (no events)\n");
    }
    printf("density    %.6f%% (pairs / (active users x active items))\n", 100.0 * st.density);
    if (st.n_active_users)
        printf("per user   %.1f events, %.1f items on average\n", (double)st.n_events / (double)st.n_active_users,
               (double)st.n_pairs / (double)st.n_active_users);
    return 0;
}
