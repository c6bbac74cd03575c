/* bpr_speed: BPR training throughput (positive samples per second) at 64 factors, on Amazon Beauty (fits in
 * cache) and on a synthetic power-law matrix that does not, plus a measured memory latency to explain the second.
 *
 *   bpr_speed [--beauty FILE] [--users N] [--items N] [--draws N] [--seed S] [--epochs E] [--factors K]
 *             [--threads 1,2] [--read FILE] [--skip-synthetic]
 *
 * Beauty is read from the S3-Rec file directly ("user item item ..." per line; every interaction is a positive).
 * The synthetic matrix (defaults 1M users x 100k items, 15M draws -> ~13M non-zeros): users uniform, items from a
 * zipf(1.3)-like law (Pareto rank folded into the catalog and scattered by a fixed permutation), duplicates
 * merged; the same construction as bench/als_speed.c, whose --write files --read accepts.
 * Throughput is timed between the first and the last epoch's progress report, so set-up (initialising the
 * factors, building indexes) is not counted. Prints a markdown table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "magpie/dataset.h"
#include "magpie/model.h"
#include "magpie/rng.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * ru.ru_stime.tv_usec;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Sorts each row and merges duplicate columns (values summed); ptr/idx/val are rewritten compactly. */
static void compact_rows(mp_csr *m) {
    uint64_t out = 0;
    for (uint32_t u = 0; u < m->n_rows; u++) {
        uint64_t b = m->ptr[u], e = m->ptr[u + 1];
        qsort(m->idx + b, e - b, sizeof *m->idx, cmp_u32);
        m->ptr[u] = out;
        for (uint64_t p = b; p < e; p++) {
            if (p > b && m->idx[p] == m->idx[p - 1]) {
                m->val[out - 1] += 1.0f;
                continue;
            }
            m->idx[out] = m->idx[p];
            m->val[out++] = 1.0f;
        }
    }
    m->ptr[m->n_rows] = out;
}

/* S3-Rec file: "user item item ..." (1-based ids). */
static int load_beauty(const char *path, mp_csr *m) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t cap = 1 << 20, n = 0, rows_cap = 1 << 15;
    uint32_t *users = malloc(cap * sizeof *users), *items = malloc(cap * sizeof *items);
    uint32_t max_u = 0, max_i = 0;
    char *line = NULL;
    size_t lcap = 0;
    (void)rows_cap;
    while (getline(&line, &lcap, f) > 0) {
        char *s = line, *end;
        unsigned long u = strtoul(s, &end, 10);
        if (end == s) continue;
        for (s = end;; s = end) {
            unsigned long it = strtoul(s, &end, 10);
            if (end == s) break;
            if (n == cap) {
                cap *= 2;
                users = realloc(users, cap * sizeof *users);
                items = realloc(items, cap * sizeof *items);
            }
            users[n] = (uint32_t)u;
            items[n++] = (uint32_t)it;
            if (u > max_u) max_u = (uint32_t)u;
            if (it > max_i) max_i = (uint32_t)it;
        }
    }
    free(line);
    fclose(f);
    m->n_rows = max_u + 1;
    m->n_cols = max_i + 1;
    m->ptr = calloc((size_t)m->n_rows + 1, sizeof *m->ptr);
    m->idx = malloc(n * sizeof *m->idx);
    m->val = malloc(n * sizeof *m->val);
    for (size_t i = 0; i < n; i++) m->ptr[users[i] + 1]++;
    for (uint32_t u = 0; u < m->n_rows; u++) m->ptr[u + 1] += m->ptr[u];
    uint64_t *fill = malloc(((size_t)m->n_rows + 1) * sizeof *fill);
    memcpy(fill, m->ptr, ((size_t)m->n_rows + 1) * sizeof *fill);
    for (size_t i = 0; i < n; i++) m->idx[fill[users[i]]++] = items[i];
    free(fill);
    free(users);
    free(items);
    compact_rows(m);
    return 0;
}

static uint32_t draw_item(mp_rng *rng, uint32_t n_items) {
    double u = 1.0 - mp_rng_uniform(rng);
    double r = floor(pow(u, -1.0 / 0.3));
    uint64_t rank = r > 1e18 ? (uint64_t)1e18 : (uint64_t)r;
    return (uint32_t)((((rank - 1) % n_items) * 7919u) % n_items);
}

static int synth(mp_csr *m, uint32_t n_users, uint32_t n_items, uint64_t draws, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->n_rows = n_users;
    m->n_cols = n_items;
    m->ptr = calloc((size_t)n_users + 1, sizeof *m->ptr);
    m->idx = malloc(draws * sizeof *m->idx);
    m->val = malloc(draws * sizeof *m->val);
    uint64_t *fill = malloc(((size_t)n_users + 1) * sizeof *fill);
    if (!m->ptr || !m->idx || !m->val || !fill) return -1;
    mp_rng rng;
    mp_rng_seed(&rng, seed);
    for (uint64_t d = 0; d < draws; d++) {
        uint32_t u = (uint32_t)mp_rng_below(&rng, n_users);
        (void)draw_item(&rng, n_items);
        m->ptr[u + 1]++;
    }
    for (uint32_t u = 0; u < n_users; u++) m->ptr[u + 1] += m->ptr[u];
    memcpy(fill, m->ptr, ((size_t)n_users + 1) * sizeof *fill);
    mp_rng_seed(&rng, seed);
    for (uint64_t d = 0; d < draws; d++) {
        uint32_t u = (uint32_t)mp_rng_below(&rng, n_users);
        m->idx[fill[u]++] = draw_item(&rng, n_items);
    }
    free(fill);
    compact_rows(m);
    return 0;
}

/* Reads the "MPALSMAT" file bench/als_speed.c --write produces. */
static int read_matrix(mp_csr *m, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char magic[8];
    uint64_t nnz;
    memset(m, 0, sizeof *m);
    int ok = fread(magic, 1, 8, f) == 8 && !memcmp(magic, "MPALSMAT", 8) && fread(&m->n_rows, 4, 1, f) == 1 &&
             fread(&m->n_cols, 4, 1, f) == 1 && fread(&nnz, 8, 1, f) == 1;
    if (ok) {
        m->ptr = malloc(((size_t)m->n_rows + 1) * sizeof *m->ptr);
        m->idx = malloc(nnz * sizeof *m->idx);
        m->val = malloc(nnz * sizeof *m->val);
        ok = m->ptr && m->idx && m->val && fread(m->ptr, 8, (size_t)m->n_rows + 1, f) == (size_t)m->n_rows + 1 &&
             fread(m->idx, 4, nnz, f) == nnz && fread(m->val, 4, nnz, f) == nnz;
    }
    fclose(f);
    return ok ? 0 : -1;
}

typedef struct timing {
    double t_first, t_last, cpu_first, cpu_last;
    uint64_t first, last;
} timing;

static void on_progress(void *ctx, const char *stage, uint64_t done, uint64_t total, const char *unit) {
    timing *t = ctx;
    (void)total;
    (void)unit;
    if (strcmp(stage, "fit") != 0) return;
    if (t->first == 0) {
        t->first = done;
        t->t_first = now_s();
        t->cpu_first = cpu_s();
    }
    t->last = done;
    t->t_last = now_s();
    t->cpu_last = cpu_s();
}

typedef struct result {
    double samples_per_s, cpu_samples_per_s;
} result;

/* Fits bpr with `params` for `epochs` epochs; samples/s over epochs 2..epochs (wall and per CPU-second x threads). */
static int run(const mp_csr *ui, const char *params, unsigned epochs, int threads, result *out) {
    mp_csr iu = {0};
    mp_train_data d = {.n_users = ui->n_rows, .n_items = ui->n_cols, .ui = ui, .iu = &iu, .n_threads = threads};
    mp_model *m;
    mp_error err;
    char spec[512];
    snprintf(spec, sizeof spec, "%s,epochs=%u,threads=%d,patience=0", params, epochs, threads);
    timing t = {0};
    mp_progress pr = {on_progress, &t};
    if (mp_model_create(&m, "bpr", &err) || mp_model_set_params(m, spec, &err) || mp_model_fit(m, &d, &pr, &err)) {
        fprintf(stderr, "bpr_speed: %s\n", err.msg);
        return -1;
    }
    mp_model_destroy(m);
    double samples = (double)(t.last - t.first) * (double)mp_csr_nnz(ui);
    out->samples_per_s = samples / (t.t_last - t.t_first);
    out->cpu_samples_per_s = samples / (t.cpu_last - t.cpu_first) * threads;
    return 0;
}

/* Mean latency of a dependent random load over `bytes` of memory (pointer chase through a random cycle). */
static double chase_ns(size_t bytes) {
    size_t n = bytes / sizeof(uint64_t) / 8; /* one pointer per 64-byte line */
    uint64_t *a = malloc(n * 8 * sizeof *a);
    uint32_t *perm = malloc(n * sizeof *perm);
    if (!a || !perm) return NAN;
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    mp_rng rng;
    mp_rng_seed(&rng, 5);
    mp_rng_shuffle_u32(&rng, perm, n);
    for (size_t i = 0; i < n; i++) a[(size_t)perm[i] * 8] = (uint64_t)perm[(i + 1) % n] * 8;
    uint64_t p = 0;
    const size_t steps = 4000000;
    double t0 = now_s();
    for (size_t s = 0; s < steps; s++) p = a[p];
    double dt = now_s() - t0;
    free(perm);
    free(a);
    return p == UINT64_MAX ? 0 : dt / steps * 1e9;
}

static void print_rows(const char *name, const mp_csr *ui, unsigned k, unsigned epochs, const int *threads,
                       size_t n_threads) {
    static const char *const configs[][2] = {
        {"uniform", "sampling=uniform"},
        {"uniform, verify_negatives=0", "sampling=uniform,verify_negatives=0"},
        {"adaptive (4 candidates)", "sampling=adaptive,candidates=4"},
        {"warp", "loss=warp"},
    };
    for (size_t c = 0; c < sizeof configs / sizeof *configs; c++)
        for (size_t t = 0; t < n_threads; t++) {
            char params[256];
            snprintf(params, sizeof params, "factors=%u,%s", k, configs[c][1]);
            result r;
            unsigned e = strstr(configs[c][1], "warp") ? (epochs / 10 > 2 ? epochs / 10 : 2) : epochs; /* slow */
            if (run(ui, params, e, threads[t], &r)) continue;
            printf("| %s | %u x %u | %llu | %s | %d | %.2f | %.2f | %.0f |\n", name, ui->n_rows, ui->n_cols,
                   (unsigned long long)mp_csr_nnz(ui), configs[c][0], threads[t], r.samples_per_s / 1e6,
                   r.cpu_samples_per_s / 1e6, 1e9 / r.samples_per_s * threads[t]);
            fflush(stdout);
        }
}

int main(int argc, char **argv) {
    const char *beauty = "../shared/data/amazon-s3rec/Beauty.txt", *read_path = NULL;
    uint32_t n_users = 1000000, n_items = 100000;
    uint64_t draws = 15000000, seed = 0;
    unsigned epochs = 6, k = 64;
    int threads[4] = {1, 2}, skip_synth = 0;
    size_t n_threads = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--skip-synthetic")) {
            skip_synth = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: bpr_speed [--beauty FILE] [--users N] [--items N] [--draws N] [--seed S] [--epochs E] "
                   "[--factors K] [--threads 1,2] [--read FILE] [--skip-synthetic]\n");
            return 0;
        }
        i++;
        if (!strcmp(a, "--beauty")) beauty = v;
        else if (!strcmp(a, "--users")) n_users = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--items")) n_items = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--draws")) draws = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--epochs")) epochs = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--factors")) k = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--read")) read_path = v;
        else if (!strcmp(a, "--threads")) {
            n_threads = 0;
            for (char *s = (char *)v, *end; *s && n_threads < 4; s = *end ? end + 1 : end) {
                threads[n_threads++] = (int)strtol(s, &end, 10);
                if (end == s) break;
            }
        } else {
            fprintf(stderr, "bpr_speed: unknown option %s (see --help)\n", a);
            return 2;
        }
    }
    if (epochs < 2) epochs = 2;
    printf("BPR throughput, %u factors, positive samples per second (timed over epochs 2..%u; \"per CPU\" = "
           "samples per CPU-second x threads, what the wall figure would be on idle cores)\n\n",
           k, epochs);
    printf("| data | users x items | non-zeros | sampling | threads | Msamples/s | Msamples/s per CPU | ns/sample/thread "
           "|\n|---|---|---:|---|---:|---:|---:|---:|\n");
    mp_csr ui = {0};
    if (load_beauty(beauty, &ui) == 0) {
        print_rows("Beauty", &ui, k, epochs * 20, threads, n_threads);
        mp_csr_free(&ui);
    } else {
        fprintf(stderr, "bpr_speed: cannot read %s (skipping Beauty)\n", beauty);
    }
    if (!skip_synth) {
        int rc = read_path ? read_matrix(&ui, read_path) : synth(&ui, n_users, n_items, draws, seed);
        if (rc) {
            fprintf(stderr, "bpr_speed: cannot build the synthetic matrix\n");
            return 1;
        }
        print_rows("synthetic zipf", &ui, k, epochs, threads, n_threads);
        double factor_mb = ((double)ui.n_rows + ui.n_cols) * k * 4 / 1e6;
        mp_csr_free(&ui);
        printf("\nMemory: a dependent random load costs %.1f ns over 1 MiB, %.1f ns over 32 MiB and %.1f ns over "
               "256 MiB (pointer chase). The synthetic factors take %.0f MB, so each sample's user row (and the "
               "rarer items' rows) come from DRAM.\n",
               chase_ns(1 << 20), chase_ns(32u << 20), chase_ns(256u << 20), factor_mb);
    }
    return 0;
}
