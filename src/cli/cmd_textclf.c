/* magpie textclf: train, apply and test the fastText-class text classifier (magpie/textclf.h) on labelled text
 * files, fastText's format or TSV. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "magpie/buf.h"
#include "magpie/text.h"
#include "magpie/textclf.h"

#define LABEL_PREFIX "__label__"
#define LABEL_PREFIX_LEN 9

static void usage(FILE *f) {
    fprintf(f,
            "usage: magpie textclf train   --input FILE --output MODEL [options]\n"
            "       magpie textclf predict --model MODEL [--input FILE|-] [--k N]\n"
            "       magpie textclf test    --model MODEL --input FILE [--k N]\n"
            "\n"
            "A fastText-style supervised text classifier (review sentiment, product category, ...): hashed features\n"
            "(words, CJK characters and character bigrams, optionally word bigrams and subword n-grams), mean\n"
            "embedding, softmax. Chinese and English text, and mixed. `magpie textclf <sub> --help` for details.\n"
            "\n"
            "Input lines (UTF-8) are either fastText's format\n"
            "  __label__positive __label__other the text ...   (several labels allowed; training uses the first)\n"
            "or TSV\n"
            "  positive<TAB>the text ...\n"
            "Blank lines are skipped. A bad line stops the command with FILE:LINE and the reason.\n");
}

static void usage_train(FILE *f) {
    fprintf(
        f,
        "usage: magpie textclf train --input FILE --output MODEL [options]\n"
        "\n"
        "Trains on FILE (fastText `__label__X text` lines or `label<TAB>text`) and writes the model file MODEL.\n"
        "\n"
        "options:\n"
        "  --input FILE        training data (- = stdin)\n"
        "  --output MODEL      model file to write (replaced atomically)\n"
        "  --dim N             embedding size (default 100)\n"
        "  --epochs N          passes over the data (default 5; --epoch is accepted too)\n"
        "  --lr X              initial learning rate, decays linearly to 0 (default 0.1)\n"
        "  --threads N         Hogwild threads (default 1: deterministic for a seed)\n"
        "  --word-ngrams N     1 = words only, 2 = also bigrams of consecutive words (default 1)\n"
        "  --minn N --maxn N   subword character n-grams of non-CJK words, lengths minn..maxn incl. the < >\n"
        "                      word markers (default 0 0 = none; fastText's subword setting is 3 6)\n"
        "  --buckets N         feature hash buckets (default 2000000)\n"
        "  --punct             also each punctuation character as a feature\n"
        "  --seed N            initialisation and shuffling (default 1)\n"
        "  --quiet             no log lines on stderr\n"
        "  -h, --help          this text\n"
        "\n"
        "example:\n"
        "  magpie textclf train --input reviews.train --output sentiment.mpm --epochs 10 --lr 0.5 --word-ngrams 2\n");
}

static void usage_predict(FILE *f) {
    fprintf(f,
            "usage: magpie textclf predict --model MODEL [--input FILE|-] [--k N]\n"
            "\n"
            "Classifies each input line (default: stdin) and prints one line per input line:\n"
            "  LABEL<TAB>PROBABILITY[<TAB>LABEL<TAB>PROBABILITY ...]   (the k most probable labels, best first)\n"
            "Leading `__label__X` tokens of an input line are ignored, so a fastText test file can be fed as it is.\n"
            "An empty line gets the prior-free uniform guess (the first label).\n"
            "\n"
            "options:\n"
            "  --model MODEL   model file from `magpie textclf train`\n"
            "  --input FILE    text lines (- = stdin, the default)\n"
            "  --k N           labels per line (default 1; at most the number of labels)\n"
            "  -h, --help      this text\n");
}

static void usage_test(FILE *f) {
    fprintf(f, "usage: magpie textclf test --model MODEL --input FILE [--k N]\n"
               "\n"
               "Evaluates on labelled lines (the same formats as train) and prints, as `fasttext test` does:\n"
               "  N<TAB>lines\n"
               "  P@k<TAB>precision: correct labels among the k predicted per line / (N x k)\n"
               "  R@k<TAB>recall: correct labels among the k predicted / all labels of the lines\n"
               "\n"
               "options:\n"
               "  --model MODEL   model file from `magpie textclf train`\n"
               "  --input FILE    labelled lines (- = stdin)\n"
               "  --k N           predictions per line (default 1)\n"
               "  -h, --help      this text\n");
}

/* ---- input ---------------------------------------------------------------------------------------------------- */

static int read_all(const char *cmd, const char *path, char **data, size_t *len) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return cli_fail(cmd, "cannot open %s: %s", path, strerror(errno));
    mp_buf b;
    mp_buf_init(&b);
    int rc = mp_buf_add_file(&b, f);
    if (f != stdin) fclose(f);
    if (rc == MP_OK && !(*data = mp_buf_take(&b, len))) rc = MP_ENOMEM;
    if (rc != MP_OK) {
        mp_buf_free(&b);
        return rc == MP_ENOMEM ? cli_fail(cmd, "out of memory reading %s", path)
                               : cli_fail(cmd, "cannot read %s", path);
    }
    return 0;
}

/* Labelled examples parsed in place from a file image: text and label strings point into it. */
typedef struct {
    char **text;
    size_t *text_len;
    char **labels;     /* all labels, n_labels */
    size_t *label_off; /* example i has labels[label_off[i] .. label_off[i+1]) */
    size_t n, cap, n_labels, labels_cap;
    size_t *line; /* line number of example i */
} examples;

static void examples_free(examples *e) {
    free(e->text);
    free(e->text_len);
    free(e->labels);
    free(e->label_off);
    free(e->line);
}

static int push_label(examples *e, char *label) {
    if (e->n_labels == e->labels_cap) {
        size_t nc = e->labels_cap ? e->labels_cap * 2 : 1024;
        char **nl = realloc(e->labels, nc * sizeof *nl);
        if (!nl) return -1;
        e->labels = nl;
        e->labels_cap = nc;
    }
    e->labels[e->n_labels++] = label;
    return 0;
}

static int push_example(examples *e, char *text, size_t len, size_t line) {
    if (e->n + 1 >= e->cap) {
        size_t nc = e->cap ? e->cap * 2 : 1024;
        char **nt = realloc(e->text, nc * sizeof *nt);
        if (nt) e->text = nt;
        size_t *nlen = realloc(e->text_len, nc * sizeof *nlen);
        if (nlen) e->text_len = nlen;
        size_t *no = realloc(e->label_off, (nc + 1) * sizeof *no);
        if (no) e->label_off = no;
        size_t *nli = realloc(e->line, nc * sizeof *nli);
        if (nli) e->line = nli;
        if (!nt || !nlen || !no || !nli) return -1;
        e->cap = nc;
    }
    e->text[e->n] = text;
    e->text_len[e->n] = len;
    e->line[e->n] = line;
    e->n++;
    e->label_off[e->n] = e->n_labels;
    return 0;
}

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

/* Splits off leading "__label__X" tokens of line[0..len): with labels != NULL each label is NUL-terminated in place
 * and pushed. Returns the offset where the text starts, or (size_t)-1 for an empty label (`__label__` alone). */
static size_t strip_labels(char *line, size_t len, examples *labels, int *oom) {
    size_t p = 0;
    for (;;) {
        size_t q = p;
        while (q < len && is_space(line[q]))
            q++;
        if (len - q < LABEL_PREFIX_LEN || memcmp(line + q, LABEL_PREFIX, LABEL_PREFIX_LEN) != 0) return p;
        size_t s = q + LABEL_PREFIX_LEN, t = s;
        while (t < len && !is_space(line[t]))
            t++;
        if (t == s) return (size_t)-1;
        p = t;
        if (labels) {
            if (push_label(labels, line + s)) *oom = 1;
            if (t < len) p = t + 1;
            line[t] = '\0';
        }
    }
}

/* Parses labelled lines of data[0..len) (modified in place). Prints "FILE:LINE: ..." and returns 1 on a bad line. */
static int parse_examples(const char *cmd, const char *path, char *data, size_t len, examples *e) {
    memset(e, 0, sizeof *e);
    if (push_example(e, NULL, 0, 0)) return cli_fail(cmd, "out of memory");
    e->n = 0; /* reserve label_off[0] */
    e->label_off[0] = 0;
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        char *line = data + pos;
        char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        lineno++;
        if (n > 0 && line[n - 1] == '\r') n--;
        line[n] = '\0';
        size_t k = 0;
        while (k < n && (is_space(line[k])))
            k++;
        if (k == n) continue; /* blank */
        mp_error err;
        size_t bad;
        if (mp_utf8_validate(line, n, &bad, &err) != MP_OK) return cli_fail(cmd, "%s:%zu: %s", path, lineno, err.msg);
        int oom = 0;
        char *text;
        size_t tlen;
        const size_t before = e->n_labels;
        if (n - k >= LABEL_PREFIX_LEN && memcmp(line + k, LABEL_PREFIX, LABEL_PREFIX_LEN) == 0) {
            size_t at = strip_labels(line, n, e, &oom);
            if (at == (size_t)-1)
                return cli_fail(cmd, "%s:%zu: empty label: `%s` must be followed by the label name", path, lineno,
                                LABEL_PREFIX);
            text = line + at;
            tlen = n - at;
        } else {
            char *tab = memchr(line, '\t', n);
            if (!tab)
                return cli_fail(
                    cmd, "%s:%zu: expected `__label__X text` (fastText format) or `label<TAB>text`, got \"%.40s%s\"",
                    path, lineno, line, n > 40 ? "..." : "");
            size_t a = 0, b = (size_t)(tab - line);
            while (a < b && is_space(line[a]))
                a++;
            while (b > a && is_space(line[b - 1]))
                b--;
            if (a == b) return cli_fail(cmd, "%s:%zu: empty label before the tab", path, lineno);
            line[b] = '\0';
            if (push_label(e, line + a)) oom = 1;
            text = tab + 1;
            tlen = n - (size_t)(tab + 1 - line);
        }
        if (oom || push_example(e, text, tlen, lineno)) return cli_fail(cmd, "out of memory");
        (void)before;
    }
    if (e->n == 0) return cli_fail(cmd, "%s: no labelled lines", path);
    return 0;
}

/* ---- subcommands ---------------------------------------------------------------------------------------------- */

static int parse_int_opt(const char *cmd, const char *opt, const char *s, long long max, int *out) {
    unsigned long long v;
    if (cli_parse_u64(cmd, opt, s, &v)) return 2;
    if (v > (unsigned long long)max) return cli_usage_error(cmd, "%s: at most %lld, got %s", opt, max, s);
    *out = (int)v;
    return 0;
}

static int cmd_train_clf(int argc, char **argv) {
    const char *cmd = "textclf train";
    static const struct option longopts[] = {
        {"input", required_argument, NULL, 'i'},   {"output", required_argument, NULL, 'o'},
        {"dim", required_argument, NULL, 'd'},     {"epochs", required_argument, NULL, 'e'},
        {"epoch", required_argument, NULL, 'e'},   {"lr", required_argument, NULL, 'l'},
        {"threads", required_argument, NULL, 't'}, {"word-ngrams", required_argument, NULL, 'w'},
        {"minn", required_argument, NULL, 'm'},    {"maxn", required_argument, NULL, 'M'},
        {"buckets", required_argument, NULL, 'b'}, {"seed", required_argument, NULL, 's'},
        {"punct", no_argument, NULL, 'p'},         {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    mp_textclf_opts o;
    mp_textclf_default(&o);
    const char *input = NULL, *output = NULL;
    int quiet = 0, c, v = 0;
    unsigned long long u;
    double x;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            input = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 'd':
            if (parse_int_opt(cmd, "--dim", optarg, 4096, &o.dim)) return 2;
            break;
        case 'e':
            if (parse_int_opt(cmd, "--epochs", optarg, 100000, &o.epochs)) return 2;
            break;
        case 'l':
            if (cli_parse_double(cmd, "--lr", optarg, &x)) return 2;
            if (!(x > 0)) return cli_usage_error(cmd, "--lr: must be > 0, got %s", optarg);
            o.lr = (float)x;
            break;
        case 't':
            if (parse_int_opt(cmd, "--threads", optarg, 256, &o.threads)) return 2;
            break;
        case 'w':
            if (parse_int_opt(cmd, "--word-ngrams", optarg, 2, &v)) return 2;
            if (v < 1) return cli_usage_error(cmd, "--word-ngrams: 1 or 2, got %s", optarg);
            o.word_bigrams = v == 2;
            break;
        case 'm':
            if (parse_int_opt(cmd, "--minn", optarg, 64, &o.minn)) return 2;
            break;
        case 'M':
            if (parse_int_opt(cmd, "--maxn", optarg, 64, &o.maxn)) return 2;
            break;
        case 'b':
            if (cli_parse_u64(cmd, "--buckets", optarg, &u)) return 2;
            if (u < 1 || u >= UINT32_MAX) return cli_usage_error(cmd, "--buckets: 1 to 4294967294, got %s", optarg);
            o.n_buckets = (uint32_t)u;
            break;
        case 's':
            if (cli_parse_u64(cmd, "--seed", optarg, &u)) return 2;
            o.seed = u;
            break;
        case 'p':
            o.punct = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            usage_train(stdout);
            return 0;
        default:
            return cli_usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (!input) return cli_usage_error(cmd, "--input FILE is required");
    if (!output) return cli_usage_error(cmd, "--output MODEL is required");
    if (o.maxn > 0 && (o.minn < 1 || o.minn > o.maxn))
        return cli_usage_error(cmd, "--minn %d --maxn %d: need 1 <= minn <= maxn (e.g. --minn 3 --maxn 6)", o.minn,
                               o.maxn);

    double t0 = cli_now();
    char *data;
    size_t len;
    if (read_all(cmd, input, &data, &len)) return 1;
    examples e;
    if (parse_examples(cmd, input, data, len, &e)) {
        examples_free(&e);
        free(data);
        return 1;
    }
    const char **labels = malloc(e.n * sizeof *labels);
    if (!labels) {
        examples_free(&e);
        free(data);
        return cli_fail(cmd, "out of memory");
    }
    for (size_t i = 0; i < e.n; i++)
        labels[i] = e.labels[e.label_off[i]];
    cli_log(quiet, "read %zu examples from %s in %.2fs", e.n, input, cli_now() - t0);
    double t1 = cli_now();
    mp_error err;
    mp_textclf *m = NULL;
    int rc = mp_textclf_train((const char *const *)e.text, e.text_len, labels, e.n, &o, &m, &err);
    free(labels);
    if (rc != MP_OK) {
        /* Messages name the example index; give the line instead where there is one. */
        const char *p = strstr(err.msg, "text ");
        unsigned long long idx;
        if (p && sscanf(p, "text %llu", &idx) == 1 && idx < e.n)
            rc = cli_fail(cmd, "%s:%zu: %s", input, e.line[idx], err.msg);
        else
            rc = cli_fail(cmd, "%s: %s", input, err.msg);
        examples_free(&e);
        free(data);
        return rc;
    }
    cli_log(quiet, "trained on %zu examples: %zu labels, %zu feature rows, dim %d, %d epochs in %.2fs", e.n,
            mp_textclf_n_labels(m), mp_textclf_n_rows(m), o.dim, o.epochs, cli_now() - t1);
    examples_free(&e);
    free(data);
    rc = mp_textclf_save(m, output, &err);
    mp_textclf_free(m);
    if (rc != MP_OK) return cli_fail(cmd, "%s", err.msg);
    cli_log(quiet, "wrote %s", output);
    return 0;
}

typedef struct {
    float p;
    size_t k;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

/* The top-k labels of one text into r[0..k) (probs: n_labels scratch). */
static int rank_text(const mp_textclf *m, const char *text, size_t len, float *probs, ranked *r, mp_error *err) {
    int rc = mp_textclf_predict_proba(m, text, len, probs, err);
    if (rc) return rc;
    for (size_t i = 0; i < mp_textclf_n_labels(m); i++)
        r[i] = (ranked){probs[i], i};
    qsort(r, mp_textclf_n_labels(m), sizeof *r, cmp_ranked);
    return MP_OK;
}

static int model_and_k_opts(const char *cmd, int argc, char **argv, void (*help)(FILE *), const char **model,
                            const char **input, int *k, int *done) {
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"input", required_argument, NULL, 'i'},
        {"k", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    *done = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            *model = optarg;
            break;
        case 'i':
            *input = optarg;
            break;
        case 'k':
            if (parse_int_opt(cmd, "--k", optarg, 1000000, k)) return 2;
            if (*k < 1) return cli_usage_error(cmd, "--k: at least 1, got %s", optarg);
            break;
        case 'h':
            help(stdout);
            *done = 1;
            return 0;
        default:
            return cli_usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (!*model) return cli_usage_error(cmd, "--model MODEL is required");
    return 0;
}

static int cmd_predict_clf(int argc, char **argv) {
    const char *cmd = "textclf predict", *model = NULL, *input = "-";
    int k = 1, done;
    int rc = model_and_k_opts(cmd, argc, argv, usage_predict, &model, &input, &k, &done);
    if (rc || done) return rc;
    mp_error err;
    mp_textclf *m = NULL;
    if (mp_textclf_load(model, &m, &err) != MP_OK) return cli_fail(cmd, "%s", err.msg);
    const size_t L = mp_textclf_n_labels(m);
    if ((size_t)k > L) k = (int)L;
    char *data;
    size_t len;
    if (read_all(cmd, input, &data, &len)) {
        mp_textclf_free(m);
        return 1;
    }
    float *probs = malloc(L * sizeof *probs);
    ranked *r = malloc(L * sizeof *r);
    rc = probs && r ? 0 : cli_fail(cmd, "out of memory");
    size_t pos = 0, lineno = 0;
    while (rc == 0 && pos < len) {
        char *line = data + pos;
        char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        lineno++;
        if (n > 0 && line[n - 1] == '\r') n--;
        int oom = 0;
        size_t at = strip_labels(line, n, NULL, &oom);
        if (at == (size_t)-1) at = 0;
        if (rank_text(m, line + at, n - at, probs, r, &err) != MP_OK) {
            rc = cli_fail(cmd, "%s:%zu: %s", strcmp(input, "-") ? input : "(stdin)", lineno, err.msg);
            break;
        }
        for (int i = 0; i < k; i++)
            printf("%s%s\t%.5f", i ? "\t" : "", mp_textclf_label(m, r[i].k), (double)r[i].p);
        putchar('\n');
    }
    free(probs);
    free(r);
    free(data);
    mp_textclf_free(m);
    if (rc == 0 && fflush(stdout) != 0) rc = cli_fail(cmd, "cannot write the output");
    return rc;
}

static int cmd_test_clf(int argc, char **argv) {
    const char *cmd = "textclf test", *model = NULL, *input = NULL;
    int k = 1, done;
    int rc = model_and_k_opts(cmd, argc, argv, usage_test, &model, &input, &k, &done);
    if (rc || done) return rc;
    if (!input) return cli_usage_error(cmd, "--input FILE is required");
    mp_error err;
    mp_textclf *m = NULL;
    if (mp_textclf_load(model, &m, &err) != MP_OK) return cli_fail(cmd, "%s", err.msg);
    const size_t L = mp_textclf_n_labels(m);
    char *data;
    size_t len;
    if (read_all(cmd, input, &data, &len)) {
        mp_textclf_free(m);
        return 1;
    }
    examples e;
    if (parse_examples(cmd, input, data, len, &e)) {
        examples_free(&e);
        free(data);
        mp_textclf_free(m);
        return 1;
    }
    float *probs = malloc(L * sizeof *probs);
    ranked *r = malloc(L * sizeof *r);
    rc = probs && r ? 0 : cli_fail(cmd, "out of memory");
    size_t hits = 0, gold = 0;
    const size_t kk = (size_t)k < L ? (size_t)k : L;
    for (size_t i = 0; rc == 0 && i < e.n; i++) {
        if (rank_text(m, e.text[i], e.text_len[i], probs, r, &err) != MP_OK) {
            rc = cli_fail(cmd, "%s:%zu: %s", input, e.line[i], err.msg);
            break;
        }
        const size_t a = e.label_off[i], b = e.label_off[i + 1];
        gold += b - a;
        for (size_t j = 0; j < kk; j++) {
            const char *pred = mp_textclf_label(m, r[j].k);
            for (size_t g = a; g < b; g++)
                if (strcmp(pred, e.labels[g]) == 0) {
                    hits++;
                    break;
                }
        }
    }
    if (rc == 0) {
        printf("N\t%zu\n", e.n);
        printf("P@%d\t%.3f\n", k, (double)hits / ((double)e.n * k));
        printf("R@%d\t%.3f\n", k, gold ? (double)hits / (double)gold : 0.0);
    }
    free(probs);
    free(r);
    examples_free(&e);
    free(data);
    mp_textclf_free(m);
    return rc;
}

int cmd_textclf(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(sub, "train")) return cmd_train_clf(argc - 1, argv + 1);
    if (!strcmp(sub, "predict")) return cmd_predict_clf(argc - 1, argv + 1);
    if (!strcmp(sub, "test")) return cmd_test_clf(argc - 1, argv + 1);
    return cli_usage_error("textclf", "unknown subcommand \"%s\" (train, predict or test)", sub);
}
