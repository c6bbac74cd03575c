/* bench/textclf_bench.c: driver for bench/textclf.sh (Magpie's text classifier against fastText).
 *
 *   textclf_bench split DATA_DIR OUT_DIR SEED sentiment|cat
 *       Reads DATA_DIR/online_shopping_10_cats.part{1,2,3}.csv (cat,label,review), strips a leading BOM from the
 *       review, shuffles the rows with SEED and writes an 80/20 split, each part twice:
 *         OUT_DIR/{train,test}.ft   "__label__X c h a r s" (fastText; the text split into code points, whitespace
 *                                   dropped, so fastText's -wordNgrams 2 adds the character bigrams)
 *         OUT_DIR/{train,test}.tsv  "X<TAB>review" (Magpie; its tokenizer makes the CJK unigrams and bigrams)
 *   textclf_bench train TRAIN.tsv TEST.tsv DIM EPOCHS LR THREADS BUCKETS WORD_BIGRAMS SEED PUNCT
 *       Trains on TRAIN.tsv and prints "train_s=... test_n=... p_at_1=... rows=..." (P@1 = accuracy on TEST.tsv). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "magpie/rng.h"
#include "magpie/text.h"
#include "magpie/textclf.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    char **label, **text;
    size_t n, cap;
} rows;

static int push(rows *r, const char *label, size_t llen, const char *text, size_t tlen) {
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        char **nl = realloc(r->label, sizeof(char *) * r->cap), **nt;
        if (!nl) return -1;
        r->label = nl;
        nt = realloc(r->text, sizeof(char *) * r->cap);
        if (!nt) return -1;
        r->text = nt;
    }
    r->label[r->n] = strndup(label, llen);
    r->text[r->n] = strndup(text, tlen);
    if (!r->label[r->n] || !r->text[r->n]) return -1;
    r->n++;
    return 0;
}

/* Removes a trailing "\r\n"; unquotes a CSV field ("a ""b""" -> a "b"). */
static size_t unquote(char *s, size_t len) {
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        size_t o = 0;
        for (size_t i = 1; i + 1 < len; i++) {
            s[o++] = s[i];
            if (s[i] == '"' && s[i + 1] == '"') i++;
        }
        s[o] = 0;
        return o;
    }
    return len;
}

static int read_csv(const char *dir, int by_cat, rows *r) {
    char path[4096];
    char *line = NULL;
    size_t cap = 0;
    for (int part = 1; part <= 3; part++) {
        snprintf(path, sizeof path, "%s/online_shopping_10_cats.part%d.csv", dir, part);
        FILE *f = fopen(path, "r");
        if (!f) {
            fprintf(stderr, "textclf_bench: cannot open %s\n", path);
            return -1;
        }
        ssize_t got;
        int lineno = 0;
        while ((got = getline(&line, &cap, f)) > 0) {
            lineno++;
            size_t len = (size_t)got;
            while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
            if (lineno == 1) continue; /* header */
            char *c1 = strchr(line, ',');
            char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
            if (!c2) {
                fprintf(stderr, "textclf_bench: %s:%d: expected cat,label,review\n", path, lineno);
                fclose(f);
                return -1;
            }
            char *rev = c2 + 1;
            size_t rlen = unquote(rev, len - (size_t)(rev - line));
            if (rlen >= 3 && memcmp(rev, "\xEF\xBB\xBF", 3) == 0) rev += 3, rlen -= 3;
            const char *lab = by_cat ? line : c1 + 1;
            size_t llen = by_cat ? (size_t)(c1 - line) : (size_t)(c2 - c1 - 1);
            if (push(r, lab, llen, rev, rlen)) {
                fclose(f);
                return -1;
            }
        }
        fclose(f);
    }
    free(line);
    return 0;
}

static void write_ft(FILE *f, const char *label, const char *text) {
    fprintf(f, "__label__%s", label);
    size_t len = strlen(text);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = mp_utf8_decode(text + i, len - i, &cp);
        if (k <= 0) k = 1, cp = ' ';
        if (!(cp == ' ' || cp == '\t' || cp == 0x3000 || cp < 0x20)) fprintf(f, " %.*s", k, text + i);
        i += (size_t)k;
    }
    fputc('\n', f);
}

static void write_tsv(FILE *f, const char *label, const char *text) {
    fprintf(f, "%s\t", label);
    for (const char *p = text; *p; p++) fputc(*p == '\t' ? ' ' : *p, f);
    fputc('\n', f);
}

static int cmd_split(const char *dir, const char *out, uint64_t seed, int by_cat) {
    rows r = {0};
    if (read_csv(dir, by_cat, &r)) return 1;
    uint32_t *perm = malloc(sizeof(uint32_t) * r.n);
    if (!perm) return 1;
    for (size_t i = 0; i < r.n; i++) perm[i] = (uint32_t)i;
    mp_rng rng;
    mp_rng_seed(&rng, seed);
    mp_rng_shuffle_u32(&rng, perm, r.n);
    const size_t n_train = r.n * 8 / 10;
    const char *names[4] = {"train.ft", "test.ft", "train.tsv", "test.tsv"};
    FILE *fs[4];
    char path[4096];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", out, names[i]);
        fs[i] = fopen(path, "w");
        if (!fs[i]) {
            fprintf(stderr, "textclf_bench: cannot write %s\n", path);
            return 1;
        }
    }
    for (size_t i = 0; i < r.n; i++) {
        const uint32_t d = perm[i];
        const int te = i >= n_train;
        write_ft(fs[te], r.label[d], r.text[d]);
        write_tsv(fs[2 + te], r.label[d], r.text[d]);
    }
    for (int i = 0; i < 4; i++) fclose(fs[i]);
    printf("rows=%zu train=%zu test=%zu\n", r.n, n_train, r.n - n_train);
    for (size_t i = 0; i < r.n; i++) free(r.label[i]), free(r.text[i]);
    free(r.label);
    free(r.text);
    free(perm);
    return 0;
}

static int read_tsv(const char *path, rows *r) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "textclf_bench: cannot open %s\n", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        size_t len = (size_t)got;
        while (len && line[len - 1] == '\n') line[--len] = 0;
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        if (push(r, line, (size_t)(tab - line), tab + 1, len - (size_t)(tab + 1 - line))) return -1;
    }
    free(line);
    fclose(f);
    return 0;
}

static int cmd_train(char **a) {
    rows tr = {0}, te = {0};
    if (read_tsv(a[0], &tr) || read_tsv(a[1], &te)) return 1;
    mp_textclf_opts o;
    mp_textclf_default(&o);
    o.dim = atoi(a[2]);
    o.epochs = atoi(a[3]);
    o.lr = (float)atof(a[4]);
    o.threads = atoi(a[5]);
    o.n_buckets = (uint32_t)strtoul(a[6], NULL, 10);
    o.word_bigrams = atoi(a[7]);
    o.seed = strtoull(a[8], NULL, 10);
    o.punct = atoi(a[9]);
    mp_error err;
    mp_textclf *m = NULL;
    double t0 = now_s();
    if (mp_textclf_train((const char *const *)tr.text, NULL, (const char *const *)tr.label, tr.n, &o, &m, &err)) {
        fprintf(stderr, "textclf_bench: %s\n", err.msg);
        return 1;
    }
    double train_s = now_s() - t0;
    size_t right = 0;
    for (size_t i = 0; i < te.n; i++) {
        size_t k;
        if (mp_textclf_predict(m, te.text[i], strlen(te.text[i]), &k, NULL, &err)) {
            fprintf(stderr, "textclf_bench: test row %zu: %s\n", i + 1, err.msg);
            return 1;
        }
        right += strcmp(mp_textclf_label(m, k), te.label[i]) == 0;
    }
    printf("train_s=%.3f test_n=%zu p_at_1=%.4f rows=%zu\n", train_s, te.n, te.n ? (double)right / te.n : 0.0,
           mp_textclf_n_rows(m));
    mp_textclf_free(m);
    for (size_t i = 0; i < tr.n; i++) free(tr.label[i]), free(tr.text[i]);
    for (size_t i = 0; i < te.n; i++) free(te.label[i]), free(te.text[i]);
    free(tr.label), free(tr.text), free(te.label), free(te.text);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 6 && strcmp(argv[1], "split") == 0)
        return cmd_split(argv[2], argv[3], strtoull(argv[4], NULL, 10), strcmp(argv[5], "cat") == 0);
    if (argc == 12 && strcmp(argv[1], "train") == 0) return cmd_train(argv + 2);
    fprintf(stderr,
            "usage: %s split DATA_DIR OUT_DIR SEED sentiment|cat\n"
            "       %s train TRAIN.tsv TEST.tsv DIM EPOCHS LR THREADS BUCKETS WORD_BIGRAMS SEED PUNCT\n",
            argv[0], argv[0]);
    return 2;
}
