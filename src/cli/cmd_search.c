/* magpie search: product search over a store's catalog (BM25 + embeddings, re-ranked by a user's model), the same
 * ranking as GET /v1/search (both call mp_live_search). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "magpie/encoder.h"
#include "magpie/json.h"
#include "magpie/live.h"
#include "magpie/use.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: magpie search \"QUERY\" [--user ID] [--n 10] [--offset 0] [--category C] [--store URI]\n"
            "                     [--model FILE] [--encoder SPEC] [--embed] [--json]\n\n"
            "Searches the catalog: BM25 over title, brand, category and description (Chinese by characters and\n"
            "bigrams) plus, with an encoder, embedding retrieval; fused, limited to available items and, with --user\n"
            "and --model, re-ranked by that user's model scores. Each result says why it matched.\n\n"
            "options:\n"
            "  --user ID        personalise the order with this user's model scores (unknown ids: no effect)\n"
            "  --n N            results (default 10)\n"
            "  --offset N       skip the first N results\n"
            "  --category C     only this category (full path, leaf or top level; case-insensitive)\n"
            "  --store URI      store (default: $MAGPIE_DB or ./magpie.db); --db is the same\n"
            "  --model FILE     model written by `magpie train` (for --user)\n"
            "  --encoder SPEC   use-lite (default when installed), use-lite:DIR, openai:MODEL@URL, or none\n"
            "  --embed          first embed the catalog items missing from the store's vector cache (as\n"
            "                   `magpie embed` does); without it, items without a cached vector are found by words only\n"
            "  --json           the JSON object GET /v1/search answers\n"
            "  --help           show this help\n");
}

static void json_str(FILE *f, const char *s) {
    if (mp_json_write_str(f, s, s ? strlen(s) : 0) == MP_ENOMEM) fputs("\"\"", f);
}

int cmd_search(int argc, char **argv) {
    static const struct option opts[] = {
        {"user", required_argument, 0, 'u'},  {"n", required_argument, 0, 'n'},
        {"offset", required_argument, 0, 'o'}, {"category", required_argument, 0, 'c'},
        {"store", required_argument, 0, 's'}, {"db", required_argument, 0, 's'},
        {"model", required_argument, 0, 'm'}, {"encoder", required_argument, 0, 'e'},
        {"embed", no_argument, 0, 'E'},       {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0},
    };
    const char *user = NULL, *category = NULL, *db = cli_default_db(), *model = NULL, *enc_spec = NULL;
    unsigned long long n = 10, offset = 0;
    int json = 0, embed = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'u': user = optarg; break;
        case 'n':
            if (cli_parse_u64("search", "--n", optarg, &n) || n == 0 || n > 100000)
                return cli_usage_error("search", "--n must be from 1 to 100000");
            break;
        case 'o':
            if (cli_parse_u64("search", "--offset", optarg, &offset)) return 2;
            break;
        case 'c': category = optarg; break;
        case 's': db = optarg; break;
        case 'm': model = optarg; break;
        case 'e': enc_spec = optarg; break;
        case 'E': embed = 1; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        case ':': return cli_usage_error("search", "option %s needs a value", argv[optind - 1]);
        default: return cli_usage_error("search", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) return cli_usage_error("search", "give exactly one query (quote it: magpie search \"running shoes\")");
    const char *query = argv[optind];
    if (!*query) return cli_usage_error("search", "the query is empty");

    mp_error err;
    mp_error_clear(&err);
    mp_store *s = NULL;
    if (mp_store_open(&s, db, MP_STORE_READONLY, &err) != MP_OK) return cli_fail("search", "%s", err.msg);
    mp_store_close(s);
    s = NULL;

    /* the encoder: the default use-lite is optional (a warning), an explicit one is required */
    mp_encoder *enc = NULL;
    const char *spec = enc_spec ? enc_spec : "use-lite";
    if (strcmp(spec, "none") && *spec) {
        int rc = mp_encoder_open(spec, 0, &enc, &err);
        if (rc != MP_OK) {
            if (enc_spec || rc != MP_ENOTFOUND) return cli_fail("search", "encoder \"%s\": %s", spec, err.msg);
            fprintf(stderr, "magpie search: warning: %s; searching by words only. Install it with: %s\n", err.msg,
                    MP_USE_INSTALL_HINT);
            enc = NULL;
        }
    }
    cli_progress prog;
    cli_progress_init(&prog, 0);
    if (enc && embed) { /* fill the store's vector cache (only items not yet embedded cost anything) */
        if (mp_store_open(&s, db, MP_STORE_READWRITE, &err) != MP_OK ||
            mp_encoder_embed_items(enc, s, &prog.iface, NULL, NULL, &err) != MP_OK) {
            cli_progress_done(&prog);
            mp_store_close(s);
            mp_encoder_free(enc);
            return cli_fail("search", "embedding the catalog: %s", err.msg);
        }
        mp_store_close(s);
    }
    mp_live_opts lo;
    mp_live_opts_default(&lo);
    lo.db = db;
    lo.model_path = model;
    lo.ann = 0;
    lo.encoder = enc;
    lo.embed_missing = 0;
    lo.progress = &prog.iface;
    mp_live *live = NULL;
    if (mp_live_open(&live, &lo, &err) != MP_OK) {
        cli_progress_done(&prog);
        mp_encoder_free(enc);
        return cli_fail("search", "%s", err.msg);
    }
    cli_progress_done(&prog);
    if (enc) {
        uint64_t n_emb = 0;
        mp_live_stats st;
        mp_live_embedding_stats(live, &n_emb, NULL);
        mp_live_stats_get(live, &st);
        if (n_emb < st.n_items)
            fprintf(stderr,
                    "magpie search: note: %llu of %llu items have a %s vector; the others match by words only "
                    "(run `magpie embed --encoder %s --db %s`, or add --embed)\n",
                    (unsigned long long)n_emb, (unsigned long long)st.n_items, mp_encoder_name(enc), spec, db);
    }
    mp_live_search_query q = {0};
    q.q = query;
    q.q_len = strlen(query);
    q.user = user;
    q.user_len = user ? strlen(user) : 0;
    q.n = (size_t)n;
    q.offset = (size_t)offset;
    q.category = category;
    mp_live_list l = {0};
    int rc = 0;
    if (mp_live_search(live, &q, &l, &err) != MP_OK) {
        rc = cli_fail("search", "%s", err.msg);
    } else if (json) {
        fputs("{\"query\":", stdout);
        json_str(stdout, query);
        fputs(",\"user\":", stdout);
        json_str(stdout, user);
        fputs(",\"model\":", stdout);
        json_str(stdout, l.model);
        printf(",\"history\":%zu,\"items\":[", l.n_history);
        for (size_t i = 0; i < l.n; i++) {
            const mp_live_item *it = &l.items[i];
            fputs(i ? ",{\"item\":" : "{\"item\":", stdout);
            json_str(stdout, it->item);
            fputs(",\"title\":", stdout);
            json_str(stdout, it->title);
            fputs(",\"category\":", stdout);
            json_str(stdout, it->category);
            printf(",\"score\":%.6g,\"reason\":", (double)it->score);
            json_str(stdout, it->reason);
            fputs("}", stdout);
        }
        fputs("]}\n", stdout);
    } else {
        if (l.n == 0) printf("no items match \"%s\"\n", query);
        for (size_t i = 0; i < l.n; i++) {
            const mp_live_item *it = &l.items[i];
            printf("%2zu. %-16s %.4f  %s%s%s%s\n", (size_t)offset + i + 1, it->item, (double)it->score,
                   it->title ? it->title : "", it->category ? " (" : "", it->category ? it->category : "",
                   it->category ? ")" : "");
            if (it->reason) printf("    %s\n", it->reason);
        }
    }
    mp_live_list_free(&l);
    mp_live_close(live);
    mp_encoder_free(enc);
    return rc;
}
