/* use_bench: Magpie's Universal Sentence Encoder on the lines of a file.
 *
 *   use_bench --dump FILE OUT [--model DIR] [--threads N]   writes n x 512 little-endian float32 rows to OUT
 *   use_bench --tokens FILE [--model DIR]                   prints each line's token ids as a JSON array
 *   use_bench --speed FILE [--threads N] [--batch B] [--model DIR]
 *                                                           embeds all lines, B per call, and prints
 *                                                           "sentences=N seconds=S per_s=R threads=N batch=B"
 * Lines are split on '\n' only (as tests/use/embed.js does); a final empty line is dropped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "magpie/linalg.h"
#include "magpie/use.h"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    for (;;) {
        if (!b) break;
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        cap *= 2;
        char *nb = realloc(b, cap + 1);
        if (!nb) free(b);
        b = nb;
    }
    fclose(f);
    if (b) b[n] = 0;
    *len = n;
    return b;
}

/* Splits buf in place into lines; returns their count and fills *texts / *lens (malloc'ed). */
static size_t split_lines(char *buf, size_t len, const char ***texts, size_t **lens) {
    size_t n = 0, cap = 1024;
    *texts = malloc(cap * sizeof **texts);
    *lens = malloc(cap * sizeof **lens);
    size_t i = 0;
    while (i < len) {
        char *nl = memchr(buf + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - buf) : len;
        if (n == cap) {
            cap *= 2;
            *texts = realloc(*texts, cap * sizeof **texts);
            *lens = realloc(*lens, cap * sizeof **lens);
        }
        (*texts)[n] = buf + i;
        (*lens)[n] = e - i;
        buf[e] = 0;
        n++;
        i = e + 1;
    }
    return n;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int usage(void) {
    fprintf(stderr, "usage: use_bench --dump FILE OUT | --tokens FILE | --speed FILE [--threads N] [--batch B]"
                    " [--model DIR]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *mode = NULL, *file = NULL, *outp = NULL, *model = NULL;
    int threads = 0;
    size_t batch = 64;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dump") && i + 2 < argc) {
            mode = "dump";
            file = argv[++i];
            outp = argv[++i];
        } else if ((!strcmp(argv[i], "--speed") || !strcmp(argv[i], "--tokens")) && i + 1 < argc) {
            mode = argv[i] + 2;
            file = argv[++i];
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            batch = (size_t)atol(argv[++i]);
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model = argv[++i];
        } else {
            return usage();
        }
    }
    if (!mode || batch == 0) return usage();
    size_t len;
    char *buf = slurp(file, &len);
    if (!buf) {
        fprintf(stderr, "use_bench: cannot read %s\n", file);
        return 1;
    }
    const char **texts;
    size_t *lens;
    size_t n = split_lines(buf, len, &texts, &lens);
    mp_error err;
    mp_error_clear(&err);
    mp_use *m;
    double t0 = now_s();
    if (mp_use_load(model, &m, &err) != MP_OK) {
        fprintf(stderr, "use_bench: %s\n", err.msg);
        return 1;
    }
    double t_load = now_s() - t0;
    int rc = 0;
    if (!strcmp(mode, "tokens")) {
        for (size_t i = 0; i < n; i++) {
            uint32_t *ids;
            size_t k;
            if (mp_use_tokenize(m, texts[i], lens[i], &ids, &k, &err) != MP_OK) {
                fprintf(stderr, "use_bench: line %zu: %s\n", i + 1, err.msg);
                rc = 1;
                break;
            }
            putchar('[');
            for (size_t j = 0; j < k; j++)
                printf(j ? ",%u" : "%u", ids[j]);
            puts("]");
            free(ids);
        }
    } else {
        float *out = malloc((n ? n : 1) * MP_USE_DIM * sizeof(float));
        if (!strcmp(mode, "dump")) batch = n ? n : 1;
        t0 = now_s();
        for (size_t i = 0; i < n && rc == 0; i += batch) {
            size_t b = n - i < batch ? n - i : batch;
            if (mp_use_embed(m, texts + i, lens + i, b, threads, out + i * MP_USE_DIM, &err) != MP_OK) {
                fprintf(stderr, "use_bench: %s\n", err.msg);
                rc = 1;
            }
        }
        double secs = now_s() - t0;
        if (rc == 0 && outp) {
            FILE *f = fopen(outp, "wb");
            if (!f || fwrite(out, sizeof(float) * MP_USE_DIM, n, f) != n || fclose(f) != 0) {
                fprintf(stderr, "use_bench: cannot write %s\n", outp);
                rc = 1;
            }
        }
        if (rc == 0)
            printf("sentences=%zu seconds=%.3f per_s=%.1f threads=%d batch=%zu load_s=%.3f blas=%s\n", n, secs,
                   secs > 0 ? (double)n / secs : 0.0, threads, batch, t_load,
                   mp_linalg_has_blas() ? "openblas" : "none");
        free(out);
    }
    mp_use_free(m);
    free(texts);
    free(lens);
    free(buf);
    return rc;
}
