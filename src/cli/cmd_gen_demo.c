/* magpie gen-demo: writes the deterministic synthetic demo shop (items, users, events with reviews). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "magpie/gen.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: magpie gen-demo --out DIR [--users N] [--items M] [--seed S] [--sessions-per-user X]\n"
            "                       [--days D] [--format jsonl|csv] [--max-events N] [--quiet]\n\n"
            "Generates a synthetic shop: a category tree (Beauty > Skin Care, Electronics > Phones, ...), brands,\n"
            "prices, English and Chinese titles, users with latent tastes, view -> click -> cart -> purchase funnels\n"
            "and reviews with 1-5 ratings. The same options and seed always give byte-identical files.\n\n"
            "Writes DIR/items.jsonl, DIR/users.jsonl and DIR/events.jsonl (or DIR/events.csv).\n\n"
            "options:\n"
            "  --out DIR                output directory (created if missing)\n"
            "  --users N                number of users (default 1000)\n"
            "  --items M                number of items (default 500)\n"
            "  --seed S                 random seed (default 42)\n"
            "  --sessions-per-user X    mean sessions per user (default 4)\n"
            "  --days D                 time span of the events in days, from 2025-01-01 (default 60)\n"
            "  --format jsonl|csv       format of the events file (default jsonl)\n"
            "  --max-events N           stop after N events (default: no limit)\n"
            "  --quiet                  no progress or summary on stderr\n"
            "  --help                   show this help\n");
}

int cmd_gen_demo(int argc, char **argv) {
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},         {"users", required_argument, NULL, 'u'},
        {"items", required_argument, NULL, 'i'},       {"seed", required_argument, NULL, 's'},
        {"sessions-per-user", required_argument, NULL, 'S'}, {"days", required_argument, NULL, 'd'},
        {"format", required_argument, NULL, 'f'},      {"max-events", required_argument, NULL, 'm'},
        {"quiet", no_argument, NULL, 'q'},             {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "gen-demo";
    mp_gen_opts o;
    mp_gen_opts_default(&o);
    const char *out = NULL;
    int quiet = 0;
    unsigned long long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'u':
            if (cli_parse_u64(cmd, "--users", optarg, &v)) return 2;
            if (v == 0 || v > UINT32_MAX - 1) return cli_usage_error(cmd, "--users: expected 1..%u", UINT32_MAX - 1);
            o.n_users = (uint32_t)v;
            break;
        case 'i':
            if (cli_parse_u64(cmd, "--items", optarg, &v)) return 2;
            if (v == 0 || v > 100000000) return cli_usage_error(cmd, "--items: expected 1..100000000");
            o.n_items = (uint32_t)v;
            break;
        case 's':
            if (cli_parse_u64(cmd, "--seed", optarg, &v)) return 2;
            o.seed = v;
            break;
        case 'S':
            if (cli_parse_double(cmd, "--sessions-per-user", optarg, &o.sessions_per_user)) return 2;
            if (o.sessions_per_user < 0 || o.sessions_per_user > 500)
                return cli_usage_error(cmd, "--sessions-per-user: expected a number between 0 and 500");
            break;
        case 'd':
            if (cli_parse_u64(cmd, "--days", optarg, &v)) return 2;
            if (v == 0 || v > 36500) return cli_usage_error(cmd, "--days: expected 1..36500");
            o.days = (uint32_t)v;
            break;
        case 'f':
            if (mp_format_parse(optarg, &o.format) != MP_OK || o.format == MP_FORMAT_AUTO)
                return cli_usage_error(cmd, "--format: expected jsonl or csv, got \"%s\"", optarg);
            break;
        case 'm':
            if (cli_parse_u64(cmd, "--max-events", optarg, &v)) return 2;
            o.max_events = v;
            break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        case ':': return cli_usage_error(cmd, "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (!out) return cli_usage_error(cmd, "--out DIR is required");

    cli_progress prog;
    cli_progress_init(&prog, quiet);
    mp_gen_report rep;
    mp_error err;
    mp_error_clear(&err);
    double t0 = cli_now();
    int rc = mp_gen_demo(out, &o, &prog.iface, &rep, &err);
    cli_progress_done(&prog);
    if (rc) return cli_fail(cmd, "%s", err.msg);
    double secs = cli_now() - t0;
    if (!quiet) {
        fprintf(stderr,
                "magpie: wrote %s/{items.jsonl,users.jsonl,events.%s}: %u items, %u users, %llu events in %.2f s\n",
                out, o.format == MP_FORMAT_CSV ? "csv" : "jsonl", o.n_items, o.n_users,
                (unsigned long long)rep.n_events, secs);
        fprintf(stderr, "magpie: events by type:");
        for (int t = 0; t < MP_EV_NTYPES; t++)
            if (rep.per_type[t]) fprintf(stderr, " %s %llu", mp_event_type_name(t), (unsigned long long)rep.per_type[t]);
        fprintf(stderr, " (%llu reviews with ratings)\n", (unsigned long long)rep.n_reviews);
    }
    return 0;
}
