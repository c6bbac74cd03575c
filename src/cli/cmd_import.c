/* magpie import: validate and import events, items or users from JSONL / CSV files, or a public dataset through
 * a preset. One invocation is one transaction: all-or-nothing unless --skip-bad is given. */
#include <errno.h>
#include <float.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "magpie/ingest.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: magpie import events|items|users FILE... [--format jsonl|csv] [--skip-bad REJECTS.jsonl]\n"
            "                     [--dry-run] [--db PATH] [--quiet]\n"
            "       magpie import --preset NAME PATH [--skip-bad REJECTS.jsonl] [--dry-run] [--db PATH] [--quiet]\n"
            "       magpie import embeddings FILE... [--kind items|users] [--source NAME]   (see --help there)\n"
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
            "  --db PATH, --store URI    store file (default: $MAGPIE_DB or ./magpie.db; created if missing) or\n"
            "                            postgres://... URI\n"
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

/* ---- magpie import embeddings ---------------------------------------------------------------------------------
 * Vectors for existing items or users from a float matrix file, under a source name ("user" unless given). Each
 * file is one transaction: any error rolls the whole file back. Ids the store does not know are counted and
 * reported, never created (a vector alone is not an item). */

typedef enum { EMB_AUTO, EMB_TEXT, EMB_CSV, EMB_JSONL } emb_format;

static void usage_embeddings(FILE *f) {
    fprintf(f,
            "usage: magpie import embeddings FILE... [--kind items|users] [--source NAME] [--format text|csv|jsonl]\n"
            "                                [--replace] [--db PATH] [--quiet]\n"
            "\n"
            "Stores a vector for each existing item (or user) named in FILE; the vectors can then be used by\n"
            "training and search. Each file is imported as one transaction: a bad line (file:line: reason) leaves\n"
            "the store unchanged. Ids the store does not know are counted and listed, not created: import the\n"
            "items or users first. All vectors of one kind and source must have the same dimension.\n"
            "\n"
            "formats (default: by file name; .csv is CSV, .jsonl/.json/.ndjson JSON Lines, anything else text):\n"
            "  text   word2vec / GloVe text: `id v1 v2 ...` separated by spaces or tabs; an optional first line\n"
            "         `COUNT DIM` (word2vec) is checked against the rows\n"
            "  csv    `id,v1,v2,...`; an optional header line starting with `id`; ids may be \"quoted\"\n"
            "  jsonl  {\"id\":\"sku-9\",\"embedding\":[0.12,-0.5,...]} per line\n"
            "\n"
            "options:\n"
            "  --kind items|users   what the ids are (default: items)\n"
            "  --source NAME        the source the vectors are stored under (default: user)\n"
            "  --format FORMAT      text, csv or jsonl (default: by file name)\n"
            "  --replace            delete the source's existing vectors of this kind first (e.g. to change the\n"
            "                       dimension), in the same transaction\n"
            "  --db PATH, --store URI   the store (default: $MAGPIE_DB or ./magpie.db)\n"
            "  -q, --quiet          only errors\n"
            "\n"
            "exit status: 0 imported, 1 a bad file or an error (that file is not imported), 2 usage error.\n");
}

/* One parsed row: the id and the vector (reused buffers). */
typedef struct emb_row {
    const char *id;
    size_t id_len;
    float *v; /* [MP_MAX_EMBEDDING_DIM] */
    uint32_t dim;
} emb_row;

/* Parses a number for a vector; 0 on success, else a reason. */
static const char *emb_number(const char *s, size_t len, float *out) {
    char tmp[64];
    if (len == 0) return "empty value";
    if (len >= sizeof tmp) return "not a number";
    memcpy(tmp, s, len);
    tmp[len] = 0;
    char *end = NULL;
    double d = strtod(tmp, &end);
    if (end != tmp + len || strpbrk(tmp, "xXnNiIpP")) return "not a number"; /* no hex, inf or nan */
    if (!isfinite(d)) return "not a finite number";
    if (fabs(d) > (double)FLT_MAX) return "does not fit a 32-bit float";
    *out = (float)d;
    return NULL;
}

/* Splits the values of a text or CSV row (after the id) into row->v. sep 0 = runs of spaces / tabs. */
static const char *emb_values(const char *p, const char *end, char sep, emb_row *row, char *why, size_t cap) {
    row->dim = 0;
    for (;;) {
        if (!sep)
            while (p < end && (*p == ' ' || *p == '\t'))
                p++;
        if (p >= end) {
            if (sep && row->dim) { /* a trailing separator: an empty last value */
                snprintf(why, cap, "value %u is empty", row->dim + 1);
                return why;
            }
            break;
        }
        const char *q = p;
        if (sep)
            while (q < end && *q != sep)
                q++;
        else
            while (q < end && *q != ' ' && *q != '\t')
                q++;
        const char *v = p, *ve = q;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (row->dim == MP_MAX_EMBEDDING_DIM) {
            snprintf(why, cap, "more than %d values (the largest supported dimension)", MP_MAX_EMBEDDING_DIM);
            return why;
        }
        const char *bad = emb_number(v, (size_t)(ve - v), &row->v[row->dim]);
        if (bad) {
            snprintf(why, cap, "value %u: %s, got \"%.*s\"", row->dim + 1, bad, (int)((ve - v) > 40 ? 40 : (ve - v)),
                     v);
            return why;
        }
        row->dim++;
        if (q >= end) break;
        p = q + (sep ? 1 : 0);
        if (sep && p >= end) {
            snprintf(why, cap, "value %u is empty", row->dim + 1);
            return why;
        }
    }
    if (row->dim == 0) return "no values after the id";
    return NULL;
}

typedef struct emb_import {
    const char *path;
    mp_store *s;
    mp_record_kind kind;
    const char *source;
    mp_strmap *ids;
    uint32_t dim;           /* of this file's rows so far (0: none yet) */
    uint64_t dim_line;      /* where dim was set (0: the header) */
    uint64_t stored, unknown;
    char unknown_ids[5][64]; /* the first few unknown ids, for the message */
    char err[MP_ERROR_MSG_MAX + 64];
} emb_import;

static int emb_fail(emb_import *im, uint64_t line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int emb_fail(emb_import *im, uint64_t line, const char *fmt, ...) {
    char msg[MP_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(im->err, sizeof im->err, "%s:%llu: %s", im->path, (unsigned long long)line, msg);
    return 1;
}

/* Checks the row's dimension and stores it (or counts an unknown id). */
static int emb_take(emb_import *im, uint64_t line, const emb_row *row) {
    if (im->dim == 0) {
        im->dim = row->dim;
        im->dim_line = line;
    } else if (row->dim != im->dim) {
        if (im->dim_line)
            return emb_fail(im, line, "%u values, but line %llu has %u (all vectors must have the same dimension)",
                            row->dim, (unsigned long long)im->dim_line, im->dim);
        return emb_fail(im, line, "%u values, but the header says the dimension is %u", row->dim, im->dim);
    }
    uint32_t id = mp_strmap_get(im->ids, row->id, row->id_len);
    if (id == MP_STRMAP_NONE) {
        if (im->unknown < 5)
            snprintf(im->unknown_ids[im->unknown], sizeof im->unknown_ids[0], "%.*s",
                     (int)(row->id_len > 60 ? 60 : row->id_len), row->id);
        im->unknown++;
        return 0;
    }
    mp_error err;
    int rc = mp_store_put_embedding(im->s, im->kind, id, im->source, row->v, row->dim, 0, &err);
    if (rc != MP_OK)
        return emb_fail(im, line, "%s%s", err.msg, rc == MP_EINVAL ? "; or import with --replace" : "");
    im->stored++;
    return 0;
}

static int emb_import_jsonl(emb_import *im, emb_row *row) {
    mp_reader *r = NULL;
    mp_error err;
    /* A user record is exactly {"id":..., "embedding":[...]} (plus attrs, ignored here): the records reader
     * validates it with its usual messages. */
    if (mp_reader_open(&r, im->path, MP_KIND_USERS, MP_FORMAT_JSONL, &err) != MP_OK) {
        snprintf(im->err, sizeof im->err, "%s", err.msg);
        return 1;
    }
    mp_record rec;
    int got, rc = 0;
    while (rc == 0 && (got = mp_reader_next(r, &rec, &err)) != 0) {
        if (got < 0) {
            snprintf(im->err, sizeof im->err, "%s", err.msg);
            rc = 1;
            break;
        }
        uint64_t line = mp_reader_lineno(r);
        if (!rec.user.embedding_dim) {
            rc = emb_fail(im, line, "field `embedding`: missing (expected {\"id\":...,\"embedding\":[...]})");
            break;
        }
        row->id = rec.user.id.ptr;
        row->id_len = rec.user.id.len;
        memcpy(row->v, rec.user.embedding, rec.user.embedding_dim * sizeof *row->v);
        row->dim = rec.user.embedding_dim;
        rc = emb_take(im, line, row);
    }
    mp_reader_close(r);
    return rc;
}

static int emb_import_lines(emb_import *im, emb_format fmt, emb_row *row) {
    FILE *f = fopen(im->path, "r");
    if (!f) {
        snprintf(im->err, sizeof im->err, "%s: cannot open: %s", im->path, strerror(errno));
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0, rows = 0;
    int rc = 0;
    char why[256];
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        const char *p = line, *end = line + n;
        if (lineno == 1 && n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3; /* byte order mark */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end) continue; /* blank */
        if ((size_t)(end - p) != strlen(p)) {
            rc = emb_fail(im, lineno, "the line holds a NUL byte (is this a binary word2vec file? use the text form)");
            break;
        }
        /* the id */
        const char *id = p, *id_end;
        if (fmt == EMB_CSV && *p == '"') {
            char *w = (char *)p; /* unquote in place: "" -> " */
            const char *q = p + 1;
            id = w;
            for (;;) {
                if (q >= end) {
                    rc = emb_fail(im, lineno, "unterminated quoted id");
                    break;
                }
                if (*q == '"') {
                    if (q + 1 < end && q[1] == '"') {
                        *w++ = '"';
                        q += 2;
                        continue;
                    }
                    q++;
                    break;
                }
                *w++ = *q++;
            }
            if (rc) break;
            id_end = w;
            p = q;
            if (p < end && *p != ',') {
                rc = emb_fail(im, lineno, "expected ',' after the quoted id");
                break;
            }
        } else {
            const char *q = p;
            if (fmt == EMB_CSV)
                while (q < end && *q != ',')
                    q++;
            else
                while (q < end && *q != ' ' && *q != '\t')
                    q++;
            id_end = q;
            if (fmt == EMB_CSV)
                while (id_end > id && (id_end[-1] == ' ' || id_end[-1] == '\t'))
                    id_end--;
            p = q;
        }
        if (fmt == EMB_CSV && p < end) p++; /* the comma */
        size_t id_len = (size_t)(id_end - id);
        rows++;
        if (rows == 1 && fmt == EMB_CSV && id_len == 2 && (id[0] == 'i' || id[0] == 'I') &&
            (id[1] == 'd' || id[1] == 'D'))
            continue; /* a header line */
        if (rows == 1 && fmt == EMB_TEXT) { /* word2vec's "COUNT DIM" */
            unsigned long long cnt, dim;
            char extra;
            if (sscanf(id, "%llu %llu %c", &cnt, &dim, &extra) == 2) {
                if (dim == 0 || dim > MP_MAX_EMBEDDING_DIM) {
                    rc = emb_fail(im, lineno, "the header's dimension %llu is outside 1..%d", dim,
                                  MP_MAX_EMBEDDING_DIM);
                    break;
                }
                im->dim = (uint32_t)dim;
                im->dim_line = 0; /* the count is not checked: files are often cut */
                continue;
            }
        }
        if (id_len == 0) {
            rc = emb_fail(im, lineno, "empty id");
            break;
        }
        if (id_len > MP_MAX_ID_BYTES) {
            rc = emb_fail(im, lineno, "id is %zu bytes, longer than the limit of %d", id_len, MP_MAX_ID_BYTES);
            break;
        }
        const char *bad = emb_values(p, end, fmt == EMB_CSV ? ',' : 0, row, why, sizeof why);
        if (bad) {
            rc = emb_fail(im, lineno, "%s", bad);
            break;
        }
        row->id = id;
        row->id_len = id_len;
        rc = emb_take(im, lineno, row);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(im->err, sizeof im->err, "%s: read failed: %s", im->path, strerror(errno));
        rc = 1;
    }
    free(line);
    fclose(f);
    if (rc == 0 && rows == 0) {
        snprintf(im->err, sizeof im->err, "%s: file is empty", im->path);
        rc = 1;
    }
    return rc;
}

static emb_format emb_guess_format(const char *path) {
    const char *dot = strrchr(path, '.');
    if (dot && !strcasecmp(dot, ".csv")) return EMB_CSV;
    if (dot && (!strcasecmp(dot, ".jsonl") || !strcasecmp(dot, ".json") || !strcasecmp(dot, ".ndjson")))
        return EMB_JSONL;
    return EMB_TEXT;
}

static int cmd_import_embeddings(int argc, char **argv) {
    static const struct option longopts[] = {
        {"kind", required_argument, NULL, 'k'},  {"source", required_argument, NULL, 's'},
        {"format", required_argument, NULL, 'f'}, {"replace", no_argument, NULL, 'r'},
        {"db", required_argument, NULL, 'd'},     {"store", required_argument, NULL, 'd'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = cli_default_db(), *source = "user";
    mp_record_kind kind = MP_KIND_ITEMS;
    emb_format fmt = EMB_AUTO;
    int replace = 0, quiet = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "k:s:f:rd:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (mp_record_kind_parse(optarg, &kind) != MP_OK || kind == MP_KIND_EVENTS)
                return cli_usage_error("import embeddings", "--kind: expected items or users, got \"%s\"", optarg);
            break;
        case 's':
            if (!*optarg || strlen(optarg) > MP_MAX_EMBEDDING_SOURCE)
                return cli_usage_error("import embeddings", "--source: expected a name of 1..%d bytes",
                                       MP_MAX_EMBEDDING_SOURCE);
            source = optarg;
            break;
        case 'f':
            if (!strcmp(optarg, "text") || !strcmp(optarg, "word2vec") || !strcmp(optarg, "glove"))
                fmt = EMB_TEXT;
            else if (!strcmp(optarg, "csv"))
                fmt = EMB_CSV;
            else if (!strcmp(optarg, "jsonl") || !strcmp(optarg, "json"))
                fmt = EMB_JSONL;
            else
                return cli_usage_error("import embeddings", "--format: expected text, csv or jsonl, got \"%s\"",
                                       optarg);
            break;
        case 'r':
            replace = 1;
            break;
        case 'd':
            db = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            usage_embeddings(stdout);
            return 0;
        default:
            return cli_usage_error("import embeddings", "unknown option");
        }
    }
    if (optind >= argc) return cli_usage_error("import embeddings", "expected at least one FILE");
    mp_error err;
    mp_store *s = NULL;
    if (mp_store_open(&s, db, MP_STORE_READWRITE, &err) != MP_OK) return cli_fail("import embeddings", "%s", err.msg);
    mp_strmap *ids = NULL;
    if (mp_store_load_ids(s, kind, &ids, &err) != MP_OK) {
        mp_store_close(s);
        return cli_fail("import embeddings", "%s", err.msg);
    }
    emb_row row = {0};
    row.v = malloc(MP_MAX_EMBEDDING_DIM * sizeof *row.v);
    int status = row.v ? 0 : cli_fail("import embeddings", "out of memory");
    for (int i = optind; status == 0 && i < argc; i++) {
        emb_import im = {.path = argv[i], .s = s, .kind = kind, .source = source, .ids = ids};
        double t0 = cli_now();
        if (mp_store_begin(s, &err) != MP_OK) {
            status = cli_fail("import embeddings", "%s", err.msg);
            break;
        }
        uint64_t deleted = 0;
        int rc = 0;
        if (replace && mp_store_delete_embeddings(s, kind, source, &deleted, &err) != MP_OK) {
            snprintf(im.err, sizeof im.err, "%s", err.msg);
            rc = 1;
        }
        emb_format f = fmt == EMB_AUTO ? emb_guess_format(argv[i]) : fmt;
        if (rc == 0) rc = f == EMB_JSONL ? emb_import_jsonl(&im, &row) : emb_import_lines(&im, f, &row);
        if (rc == 0 && mp_store_commit(s, &err) != MP_OK) {
            snprintf(im.err, sizeof im.err, "%s", err.msg);
            rc = 1;
        }
        if (rc != 0) {
            mp_store_rollback(s, NULL);
            fprintf(stderr, "%s\n", im.err);
            fprintf(stderr, "magpie import embeddings: %s: nothing was imported from this file\n", argv[i]);
            status = 1;
            break;
        }
        if (!quiet) {
            fprintf(stderr, "magpie: imported embeddings from %s: %s vectors of dimension %u for %s (source \"%s\")",
                    argv[i], commas(im.stored), im.dim, kind_noun(kind), source);
            if (replace) fprintf(stderr, ", %s old vectors replaced", commas(deleted));
            fprintf(stderr, "; %s unknown ids skipped", commas(im.unknown));
            for (uint64_t k = 0; k < im.unknown && k < 5; k++)
                fprintf(stderr, "%s\"%s\"", k ? ", " : " (", im.unknown_ids[k]);
            if (im.unknown) fprintf(stderr, "%s)", im.unknown > 5 ? ", ..." : "");
            fprintf(stderr, "; %.2f s\n", cli_now() - t0);
        }
    }
    free(row.v);
    mp_strmap_destroy(ids);
    mp_store_close(s);
    return status;
}

int cmd_import(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "embeddings")) return cmd_import_embeddings(argc - 1, argv + 1);
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'}, {"skip-bad", required_argument, NULL, 's'},
        {"dry-run", no_argument, NULL, 'n'},      {"db", required_argument, NULL, 'd'},
        {"preset", required_argument, NULL, 'p'}, {"quiet", no_argument, NULL, 'q'},
        {"store", required_argument, NULL, 'd'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
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
    const char *db_file = mp_store_uri_file(db); /* NULL for a server (postgres://) */
    if (dry_run && db_file && stat(db_file, &sb) != 0)
        rc = mp_store_open(&s, ":memory:", MP_STORE_READWRITE, &err);
    else
        rc = mp_store_open(&s, db, dry_run ? MP_STORE_READONLY : MP_STORE_READWRITE, &err);
    if (dry_run && !db_file && rc == MP_ENOTFOUND) /* a server store that holds no Magpie tables yet */
        rc = mp_store_open(&s, ":memory:", MP_STORE_READWRITE, &err);
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
