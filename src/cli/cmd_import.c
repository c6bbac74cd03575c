/* magpie import: validate and import events, items or users from JSONL / CSV files, or a public dataset through
 * a preset. One invocation is one transaction: all-or-nothing unless --skip-bad is given. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "magpie/ingest.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: magpie import events|items|users FILE... [--format jsonl|csv] [--skip-bad REJECTS.jsonl]\n"
            "                     [--dry-run] [--db PATH] [--quiet]\n"
            "       magpie import --preset NAME PATH [--skip-bad REJECTS.jsonl] [--dry-run] [--db PATH] [--quiet]\n"
            "\n"
            "Validates every record and imports the files as ONE transaction. By default it is all-or-nothing:\n"
            "if any record is bad, every problem is listed (file:line: field: reason) and nothing is written.\n"
            "Importing the same file twice is harmless: exact duplicate events (same user, item, type and ts)\n"
            "are counted and skipped. Users and items that events mention are created with bare ids; import\n"
            "items/users files (before or after) to fill in their attributes.\n"
            "\n"
            "options:\n"
            "  --format jsonl|csv        input format (default: by file name, .csv/.tsv are CSV, anything else JSONL)\n"
            "  --skip-bad REJECTS.jsonl  keep the good records; write each bad one to REJECTS.jsonl as\n"
            "                            {\"file\":..,\"line\":..,\"error\":..,\"record\":\"<raw line>\"}\n"
            "  --dry-run                 validate and count only; the store is not touched\n"
            "  --preset NAME PATH        import a public dataset in its native layout (see below)\n"
            "  --db PATH                 store file (default: $MAGPIE_DB or ./magpie.db; created if missing)\n"
            "  -q, --quiet               no progress or summary, only errors\n"
            "  -h, --help                this text\n"
            "\n"
            "events (one JSON object per line, or CSV with a header naming the same fields in any order):\n"
            "  "
            "{\"user\":\"u1\",\"item\":\"sku-9\",\"type\":\"purchase\",\"ts\":1735689600,\"value\":5,\"text\":\"...\","
            "\"session\":\"s1\"}\n"
            "  user, item  required; non-empty strings of at most 256 bytes (JSON numbers are kept as their text)\n"
            "  type        required; one of the event types below\n"
            "  ts          required; epoch seconds (integer or decimal) or RFC 3339 (\"2025-01-01T00:00:00Z\")\n"
            "  value       optional number (a rating, an amount); text: optional review text; session: optional id\n"
            "  Unknown fields are an error (a typo must not silently lose data).\n"
            "\n"
            "items:\n"
            "  {\"id\":\"sku-9\",\"title\":\"...\",\"description\":\"...\",\"category\":[\"Beauty\",\"Skin "
            "Care\"],\"brand\":\"...\",\n"
            "   \"price\":19.9,\"attrs\":{...},\"available\":true}\n"
            "  id required; price finite and >= 0; in CSV, category is a path \"Beauty > Skin Care\" and attrs a JSON\n"
            "  object text. Re-importing an item replaces its attributes.\n"
            "users:\n"
            "  {\"id\":\"u1\",\"attrs\":{...}}\n"
            "\n"
            "All text must be valid UTF-8; a line may be at most 1 MiB.\n"
            "\n"
            "event types and their default weights (used by training; negative ones push items down):\n");
    for (int t = 0; t < MP_EV_NTYPES; t++)
        fprintf(f, "  %-9s %+5.1f\n", mp_event_type_name(t), (double)mp_event_type_default_weight(t));
    fprintf(f, "\npresets (public datasets; see ../shared/data/<name>/SOURCE.md):\n ");
    for (const char *const *p = mp_preset_names(); *p; p++)
        fprintf(f, " %s", *p);
    fprintf(f, "\n");
    fprintf(f, "\n"
               "examples:\n"
               "  magpie import items shop/items.jsonl\n"
               "  magpie import events shop/events-*.jsonl --db shop.db\n"
               "  magpie import events clicks.csv --skip-bad rejects.jsonl\n"
               "  magpie import events big.csv --dry-run          # check a file before importing it\n"
               "  magpie import --preset movielens ../shared/data/ml-100k\n"
               "\n"
               "exit status: 0 imported (or dry run clean), 1 bad records or an error, 2 usage error.\n");
}

/* 1234567 -> "1,234,567" into one of a few rotating static buffers. */
static const char *commas(uint64_t v) {
    static char bufs[8][32];
    static int k;
    char *out = bufs[k++ % 8];
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    int o = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) out[o++] = ',';
        out[o++] = tmp[i];
    }
    out[o] = 0;
    return out;
}

static const char *kind_noun(mp_record_kind kind) {
    return kind == MP_KIND_EVENTS ? "events" : kind == MP_KIND_ITEMS ? "items" : "users";
}

static void print_errors(const mp_import_report *rep) {
    for (size_t i = 0; i < rep->n_errors; i++)
        fprintf(stderr, "%s\n", rep->errors[i]);
    if (rep->rejected > rep->n_errors) fprintf(stderr, "... and %s more\n", commas(rep->rejected - rep->n_errors));
}

static void print_summary(const mp_import_report *rep, mp_record_kind kind, const char *what, int dry_run,
                          const char *rejects) {
    double secs = rep->total_seconds > 0 ? rep->total_seconds : 1e-9;
    if (dry_run) {
        fprintf(stderr,
                "magpie: dry run: %s records read, %s valid, %s rejected; %s new users, %s new items; "
                "%.2f s (%.0f records/s); nothing was written\n",
                commas(rep->read), commas(rep->accepted), commas(rep->rejected), commas(rep->new_users),
                commas(rep->new_items), rep->total_seconds, rep->read / secs);
        return;
    }
    fprintf(stderr, "magpie: imported %s: %s records read, %s written, %s duplicates skipped", what, commas(rep->read),
            commas(rep->written), commas(rep->duplicates));
    if (rep->rejected)
        fprintf(stderr, ", %s rejected (see %s)", commas(rep->rejected), rejects ? rejects : "the messages above");
    fprintf(stderr, "\nmagpie: %s new users, %s new items; %.2f s", commas(rep->new_users), commas(rep->new_items),
            rep->total_seconds);
    if (kind == MP_KIND_EVENTS)
        fprintf(stderr, " (%.0f events/s; parsing %.2f s, store %.2f s)", rep->accepted / secs, rep->parse_seconds,
                rep->total_seconds - rep->parse_seconds);
    fprintf(stderr, "\n");
}

int cmd_import(int argc, char **argv) {
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'}, {"skip-bad", required_argument, NULL, 's'},
        {"dry-run", no_argument, NULL, 'n'},      {"db", required_argument, NULL, 'd'},
        {"preset", required_argument, NULL, 'p'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *db = cli_default_db(), *rejects = NULL, *preset = NULL;
    mp_format fmt = MP_FORMAT_AUTO;
    int dry_run = 0, quiet = 0, c;
    optind = 0; /* reset getopt: subcommands are parsed from argv+1 */
    while ((c = getopt_long(argc, argv, "f:s:nd:p:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (mp_format_parse(optarg, &fmt) != MP_OK)
                return cli_usage_error("import", "--format: expected jsonl or csv, got \"%s\"", optarg);
            break;
        case 's':
            rejects = optarg;
            break;
        case 'n':
            dry_run = 1;
            break;
        case 'd':
            db = optarg;
            break;
        case 'p':
            preset = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return cli_usage_error("import", "unknown option");
        }
    }
    /* GNU getopt permutes argv, so options may also follow the files. */
    int n_pos = 0;
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) return cli_fail("import", "out of memory");
    while (optind < argc)
        pos[n_pos++] = argv[optind++];

    mp_record_kind kind = MP_KIND_EVENTS;
    const char *const *files = NULL;
    size_t n_files = 0;
    int rc;
    if (preset) {
        if (n_pos != 1) {
            free(pos);
            return cli_usage_error("import", "--preset %s needs exactly one PATH (the dataset file or folder)", preset);
        }
    } else {
        if (n_pos < 2) {
            free(pos);
            return cli_usage_error("import", "expected events|items|users and at least one FILE");
        }
        if (mp_record_kind_parse(pos[0], &kind) != MP_OK) {
            rc = cli_usage_error("import", "unknown record kind \"%s\": expected events, items or users", pos[0]);
            free(pos);
            return rc;
        }
        files = (const char *const *)pos + 1;
        n_files = (size_t)n_pos - 1;
    }
    if (rejects && dry_run) cli_log(quiet, "--skip-bad has no effect with --dry-run; nothing is written");

    /* A dry run must not create or change anything: read the existing store (for its known ids) or an in-memory
     * one when there is none yet. */
    mp_error err;
    mp_store *s = NULL;
    struct stat sb;
    if (dry_run && stat(db, &sb) != 0)
        rc = mp_store_open(&s, ":memory:", MP_STORE_READWRITE, &err);
    else
        rc = mp_store_open(&s, db, dry_run ? MP_STORE_READONLY : MP_STORE_READWRITE, &err);
    if (rc != MP_OK) {
        free(pos);
        return cli_fail("import", "%s", err.msg);
    }

    cli_progress prog;
    cli_progress_init(&prog, quiet);
    mp_import_opts opts = {.format = fmt,
                           .rejects_path = dry_run ? NULL : rejects,
                           .dry_run = dry_run,
                           .max_errors = 20,
                           .progress = &prog.iface};
    mp_import_report rep;
    memset(&rep, 0, sizeof rep);
    char what[512];
    if (preset) {
        snprintf(what, sizeof what, "preset %s", preset);
        rc = mp_import_preset(s, preset, pos[0], &opts, &rep, &err);
    } else {
        snprintf(what, sizeof what, "%s", kind_noun(kind));
        rc = mp_import_files(s, kind, files, n_files, &opts, &rep, &err);
    }
    cli_progress_done(&prog);
    mp_store_close(s);
    free(pos);

    int status = 0;
    if (rc == MP_EBADREC || (rc == MP_OK && rep.rejected && !rep.committed)) {
        print_errors(&rep);
        fprintf(stderr, "magpie import: rejected %s of %s records; nothing was written%s\n", commas(rep.rejected),
                commas(rep.read), dry_run ? " (dry run)" : " (use --skip-bad FILE to keep the good records)");
        status = 1;
    } else if (rc != MP_OK) {
        status = cli_fail("import", "%s", err.msg);
    } else {
        if (rep.rejected && !quiet) print_errors(&rep);
        if (!quiet) print_summary(&rep, kind, what, dry_run, rejects);
    }
    mp_import_report_free(&rep);
    return status;
}
