/* als_speed: ALS training speed on a synthetic power-law matrix (or a matrix file), against this machine's sgemm
 * peak; top-10 for every user; peak RSS against the bytes of the interaction matrices and the factors.
 *
 *   als_speed [--users N] [--items N] [--draws N] [--seed S] [--threads T] [--iters I] [--factors 64,128]
 *             [--cholesky 0|1] [--topn-users N] [--write FILE] [--read FILE] [--db STORE]
 *
 * The synthetic matrix (defaults: 1M users x 100k items, 17.5M draws, ~13.0M non-zeros): every draw picks a user uniformly and an
 * item from a zipf(1.3)-like law (Pareto rank, folded into the catalog and scattered by a fixed permutation);
 * duplicates are summed. --write saves it for bench/torch_als.py; --read loads such a file (the same format:
 * "MPALSMAT" | u32 n_users | u32 n_items | u64 nnz | u64 ptr[n_users + 1] | u32 idx[nnz] | f32 val[nnz]).
 * --db trains on every event of a Magpie store instead (default event weights), e.g. ML-100K or Beauty.
 * Output: one "key value" line per measurement (machine-readable; bench/speed.sh turns them into a table). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "magpie/factors.h"
#include "magpie/linalg.h"
#include "magpie/model.h"
#include "magpie/store.h"
#include "magpie/trainset.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the whole process (all threads): on a shared machine, CPU time / threads is what the wall
 * time would be with the cores to ourselves. */
static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * ru.ru_stime.tv_usec;
}

static double peak_rss_bytes(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0;
}

static uint64_t csr_bytes(const mp_csr *m) {
    return ((uint64_t)m->n_rows + 1) * sizeof(uint64_t) + mp_csr_nnz(m) * (sizeof(uint32_t) + sizeof(float));
}

/* Pareto-approximated zipf(s) rank >= 1. */
static uint64_t zipf_rank(mp_rng *rng, double s) {
    double u = 1.0 - mp_rng_uniform(rng); /* (0, 1] */
    double r = floor(pow(u, -1.0 / (s - 1.0)));
    return r > 1e18 ? (uint64_t)1e18 : (uint64_t)r;
}

static uint32_t draw_item(mp_rng *rng, uint32_t n_items) {
    uint64_t r = (zipf_rank(rng, 1.3) - 1) % n_items;
    return (uint32_t)((r * 7919u) % n_items); /* scatter popular items over the catalog */
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Builds the matrix in place with about one u32 per draw of scratch: pass 1 counts draws per user, pass 2
 * replays the generator into the rows, then each row is sorted and its duplicates summed. */
static int synth(mp_csr *m, uint32_t n_users, uint32_t n_items, uint64_t draws, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->n_rows = n_users;
    m->n_cols = n_items;
    m->ptr = calloc((size_t)n_users + 1, sizeof *m->ptr);
    if (!m->ptr) return -1;
    mp_rng rng;
    mp_rng_seed(&rng, seed);
    for (uint64_t d = 0; d < draws; d++) {
        uint32_t u = (uint32_t)mp_rng_below(&rng, n_users);
        (void)draw_item(&rng, n_items);
        m->ptr[u + 1]++;
    }
    for (uint32_t u = 0; u < n_users; u++) m->ptr[u + 1] += m->ptr[u];
    m->idx = malloc(draws * sizeof *m->idx);
    uint64_t *fill = malloc((size_t)n_users * sizeof *fill);
    if (!m->idx || !fill) return -1;
    memcpy(fill, m->ptr, (size_t)n_users * sizeof *fill);
    mp_rng_seed(&rng, seed);
    for (uint64_t d = 0; d < draws; d++) {
        uint32_t u = (uint32_t)mp_rng_below(&rng, n_users);
        m->idx[fill[u]++] = draw_item(&rng, n_items);
    }
    free(fill);
    /* sort rows, sum duplicates; counts go to the row's tail positions first, then compact */
    float *val = malloc(draws * sizeof *val);
    if (!val) return -1;
    uint64_t out = 0;
    for (uint32_t u = 0; u < n_users; u++) {
        uint64_t b = m->ptr[u], e = m->ptr[u + 1];
        qsort(m->idx + b, e - b, sizeof *m->idx, cmp_u32);
        m->ptr[u] = out;
        for (uint64_t p = b; p < e; p++) {
            if (p > b && m->idx[p] == m->idx[p - 1]) {
                val[out - 1] += 1.0f;
                continue;
            }
            m->idx[out] = m->idx[p];
            val[out++] = 1.0f;
        }
    }
    m->ptr[n_users] = out;
    m->idx = realloc(m->idx, (out + 1) * sizeof *m->idx);
    m->val = realloc(val, (out + 1) * sizeof *val);
    return m->idx && m->val ? 0 : -1;
}

static int write_matrix(const mp_csr *m, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint64_t nnz = mp_csr_nnz(m);
    int ok = fwrite("MPALSMAT", 1, 8, f) == 8 && fwrite(&m->n_rows, 4, 1, f) == 1 && fwrite(&m->n_cols, 4, 1, f) == 1 &&
             fwrite(&nnz, 8, 1, f) == 1 && fwrite(m->ptr, 8, (size_t)m->n_rows + 1, f) == (size_t)m->n_rows + 1 &&
             fwrite(m->idx, 4, nnz, f) == nnz && fwrite(m->val, 4, nnz, f) == nnz;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int read_matrix(mp_csr *m, const char *path) {
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char magic[8];
    uint64_t nnz;
    int ok = fread(magic, 1, 8, f) == 8 && !memcmp(magic, "MPALSMAT", 8) && fread(&m->n_rows, 4, 1, f) == 1 &&
             fread(&m->n_cols, 4, 1, f) == 1 && fread(&nnz, 8, 1, f) == 1;
    if (ok) {
        m->ptr = malloc(((size_t)m->n_rows + 1) * 8);
        m->idx = malloc((nnz + 1) * 4);
        m->val = malloc((nnz + 1) * 4);
        ok = m->ptr && m->idx && m->val &&
             fread(m->ptr, 8, (size_t)m->n_rows + 1, f) == (size_t)m->n_rows + 1 &&
             fread(m->idx, 4, nnz, f) == nnz && fread(m->val, 4, nnz, f) == nnz && m->ptr[m->n_rows] == nnz;
    }
    fclose(f);
    return ok ? 0 : -1;
}

/* Per-iteration timestamps from the fit's progress reports. */
typedef struct iter_clock {
    double t0, t[1024], c0, c[1024];
    unsigned n;
} iter_clock;

static void on_progress(void *ctx, const char *stage, uint64_t done, uint64_t total, const char *unit) {
    iter_clock *c = ctx;
    (void)total;
    (void)unit;
    if (strcmp(stage, "fit") == 0 && done >= 1 && done <= 1024 && c->n < 1024) {
        c->c[c->n] = cpu_s();
        c->t[c->n++] = now_s();
    }
}

/* Floating-point operations of one CG sweep (both sides), counting a multiply-add as two. */
static double cg_flops(const mp_csr *ui, uint32_t k, unsigned steps) {
    double z = (double)mp_csr_nnz(ui), nu = ui->n_rows, ni = ui->n_cols, kk = (double)k * k;
    double side_u = (steps + 1) * (2 * kk * nu + 4.0 * k * z), side_i = (steps + 1) * (2 * kk * ni + 4.0 * k * z);
    return side_u + side_i + (nu + ni) * kk;
}

static double chol_flops(const mp_csr *ui, uint32_t k) {
    double z = (double)mp_csr_nnz(ui), n = (double)ui->n_rows + ui->n_cols, kk = (double)k * k;
    /* forming A: nnz * k^2 (lower triangle, 2 flops each) per side; factor k^3/3 and solves 2k^2 per row */
    return 2 * z * kk + n * ((double)k * kk / 3 + 2 * kk) + n * kk;
}

/* Fits and returns seconds per sweep (mean over sweeps); *model_out keeps the model when non-NULL. */
static double fit_timed(const mp_train_data *d, uint32_t k, const char *solver, unsigned iters, int threads,
                        mp_model **model_out, double *best_iter, double *cpu_per_iter) {
    mp_model *m;
    mp_error err;
    char params[256];
    snprintf(params, sizeof params, "factors=%u,iterations=%u,solver=%s,threads=%d,regularization=0.1", k, iters,
             solver, threads);
    if (mp_model_create(&m, "als", &err) || mp_model_set_params(m, params, &err)) {
        fprintf(stderr, "als_speed: %s\n", err.msg);
        exit(1);
    }
    iter_clock clk = {0};
    mp_progress pr = {on_progress, &clk};
    clk.t0 = now_s();
    clk.c0 = cpu_s();
    if (mp_model_fit(m, d, &pr, &err)) {
        fprintf(stderr, "als_speed: fit: %s\n", err.msg);
        exit(1);
    }
    double total = now_s() - clk.t0, best = 1e30;
    for (unsigned i = clk.n >= 2 ? 1 : 0; i < clk.n; i++) {
        double dt = clk.t[i] - (i ? clk.t[i - 1] : clk.t0);
        if (dt < best) best = dt;
    }
    *best_iter = best;
    if (model_out) *model_out = m;
    else mp_model_destroy(m);
    /* The first sweep also pays for the set-up (copying the matrix, initialising the factors, first touch of the
     * pages): with two or more sweeps it is left out of the mean. */
    if (clk.n >= 2) {
        *cpu_per_iter = (clk.c[clk.n - 1] - clk.c[0]) / (clk.n - 1);
        return (clk.t[clk.n - 1] - clk.t[0]) / (clk.n - 1);
    }
    *cpu_per_iter = clk.n ? clk.c[0] - clk.c0 : 0;
    return clk.n ? clk.t[0] - clk.t0 : total;
}

/* White-box: the factors of a saved als model (skips the parameter block; see src/models/als.c als_save). */
static int factors_from_file(const char *path, mp_factors *f) {
    mp_mf_reader *r;
    mp_error err;
    if (mp_mf_reader_open(&r, path, &err)) return -1;
    uint32_t u32;
    uint64_t u64;
    double f64;
    float tw[MP_EV_NTYPES];
    int rc = mp_mf_get_u32(r, &u32, &err) || mp_mf_get_u32(r, &u32, &err) || mp_mf_get_f64(r, &f64, &err) ||
             mp_mf_get_f64(r, &f64, &err) || mp_mf_get_u32(r, &u32, &err) || mp_mf_get_u32(r, &u32, &err) ||
             mp_mf_get_u64(r, &u64, &err) || mp_mf_get_u32(r, &u32, &err) || mp_mf_get_f64(r, &f64, &err) ||
             mp_mf_get_u32(r, &u32, &err) || mp_mf_get_u32(r, &u32, &err) || mp_mf_get_f64(r, &f64, &err) ||
             mp_mf_get_f32s(r, tw, MP_EV_NTYPES, &err) || mp_mf_get_f64(r, &f64, &err) ||
             mp_mf_get_u64(r, &u64, &err) || mp_mf_get_u32(r, &u32, &err) || mp_factors_load(f, r, &err);
    mp_mf_reader_close(r);
    return rc ? -1 : 0;
}

static double sgemm_peak(void) {
    const size_t n = 2048;
    float *A = malloc(n * n * 4), *B = malloc(n * n * 4), *C = malloc(n * n * 4);
    for (size_t i = 0; i < n * n; i++) {
        A[i] = (float)(i % 7) * 0.1f;
        B[i] = (float)(i % 5) * 0.1f;
    }
    double best = 1e30;
    for (int rep = 0; rep < 4; rep++) {
        double t = now_s();
        mp_sgemm_nt(n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        t = now_s() - t;
        if (rep > 0 && t < best) best = t; /* first run warms up the threads */
    }
    free(A);
    free(B);
    free(C);
    return 2.0 * n * n * n / best / 1e9;
}

int main(int argc, char **argv) {
    uint32_t n_users = 1000000, n_items = 100000, topn_users = UINT32_MAX;
    uint64_t draws = 17500000, seed = 0; /* ~13.0M non-zeros once duplicates are summed */
    int threads = 2, cholesky = 1;
    unsigned iters = 3;
    const char *factors = "64,128", *write_path = NULL, *read_path = NULL, *db = NULL, *tmpdir = getenv("TMPDIR");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            printf("usage: als_speed [--users N] [--items N] [--draws N] [--seed S] [--threads T] [--iters I]\n"
                   "                 [--factors 64,128] [--cholesky 0|1] [--topn-users N] [--write FILE] "
                   "[--read FILE] [--db STORE]\n");
            return 0;
        }
        if (!v) {
            fprintf(stderr, "als_speed: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--users")) n_users = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--items")) n_items = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--draws")) draws = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--iters")) iters = (unsigned)atoi(v);
        else if (!strcmp(a, "--factors")) factors = v;
        else if (!strcmp(a, "--cholesky")) cholesky = atoi(v);
        else if (!strcmp(a, "--topn-users")) topn_users = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--write")) write_path = v;
        else if (!strcmp(a, "--read")) read_path = v;
        else if (!strcmp(a, "--db")) db = v;
        else {
            fprintf(stderr, "als_speed: unknown option %s (try --help)\n", a);
            return 2;
        }
        i++;
    }
    printf("blas %d\nthreads %d\n", mp_linalg_has_blas(), threads);
    printf("sgemm_gflops %.1f\n", sgemm_peak());
    fflush(stdout);

    mp_csr ui, iu;
    double t = now_s();
    mp_error err;
    if (db) { /* the store's events, weighted as `magpie train` does by default */
        mp_store *st;
        mp_dataset *ds;
        mp_train_set ts;
        if (mp_store_open(&st, db, MP_STORE_READONLY, &err) || mp_dataset_load(&ds, st, NULL, &err) ||
            mp_train_set_build(&ts, ds, ds->events, ds->n_events, NULL, &err)) {
            fprintf(stderr, "als_speed: %s: %s\n", db, err.msg);
            return 1;
        }
        ui = ts.ui; /* take the matrix over; the rest of the train set goes */
        memset(&ts.ui, 0, sizeof ts.ui);
        mp_train_set_free(&ts);
        mp_dataset_destroy(ds);
        mp_store_close(st);
    } else if (read_path ? read_matrix(&ui, read_path) : synth(&ui, n_users, n_items, draws, seed)) {
        fprintf(stderr, "als_speed: cannot %s the matrix\n", read_path ? "read" : "build");
        return 1;
    }
    if (mp_csr_transpose(&iu, &ui, &err)) {
        fprintf(stderr, "als_speed: %s\n", err.msg);
        return 1;
    }
    printf("matrix_users %u\nmatrix_items %u\nmatrix_nnz %llu\nmatrix_seconds %.2f\n", ui.n_rows, ui.n_cols,
           (unsigned long long)mp_csr_nnz(&ui), now_s() - t);
    if (write_path) {
        if (write_matrix(&ui, write_path)) {
            fprintf(stderr, "als_speed: cannot write %s\n", write_path);
            return 1;
        }
        printf("matrix_file %s\n", write_path);
    }
    fflush(stdout);
    mp_train_data d = {.n_users = ui.n_rows, .n_items = ui.n_cols, .ui = &ui, .iu = &iu, .n_threads = threads};
    double matrix_bytes = (double)csr_bytes(&ui) + (double)csr_bytes(&iu);
    uint32_t max_k = 0;
    mp_model *keep = NULL; /* the last CG model, for top-N (kept after the RSS reading) */
    uint32_t keep_k = 0;
    for (const char *p = factors; *p;) {
        uint32_t k = (uint32_t)strtoul(p, (char **)&p, 10);
        if (*p == ',') p++;
        if (k == 0) break;
        if (k > max_k) max_k = k;
        mp_model_destroy(keep);
        keep = NULL;
        double best, cpu, sec = fit_timed(&d, k, "cg", iters, threads, &keep, &best, &cpu);
        keep_k = k;
        double fl = cg_flops(&ui, k, 3);
        printf("cg_k%u_sec_per_iter %.3f\ncg_k%u_best_iter %.3f\ncg_k%u_cpu_sec_per_iter %.3f\ncg_k%u_gflops %.1f\n", k,
               sec, k, best, k, cpu, k, fl / sec / 1e9);
        fflush(stdout);
        if (cholesky) {
            mp_model_destroy(keep); /* the Cholesky fit is only timed; refit below keeps memory at one model */
            keep = NULL;
            sec = fit_timed(&d, k, "cholesky", 2, threads, NULL, &best, &cpu); /* 2: the first carries the set-up */
            printf("chol_k%u_sec_per_iter %.3f\nchol_k%u_cpu_sec_per_iter %.3f\nchol_k%u_gflops %.1f\n", k, sec, k,
                   cpu, k, chol_flops(&ui, k) / sec / 1e9);
            fflush(stdout);
        }
    }
    if (!keep && keep_k && topn_users > 0) {
        double best, cpu;
        fit_timed(&d, keep_k, "cg", 1, threads, &keep, &best, &cpu);
    }
    double factor_bytes = ((double)ui.n_rows + ui.n_cols) * max_k * sizeof(float);
    double rss = peak_rss_bytes();
    printf("rss_peak_bytes %.0f\nrss_base_bytes %.0f\nrss_ratio %.3f\n", rss, matrix_bytes + factor_bytes,
           rss / (matrix_bytes + factor_bytes));
    fflush(stdout);

    if (keep && topn_users > 0) {
        char path[1024];
        snprintf(path, sizeof path, "%s/als_speed_%d.mpm", tmpdir ? tmpdir : "/tmp", (int)getpid());
        mp_factors f;
        if (mp_model_save(keep, path, &err) || factors_from_file(path, &f)) {
            fprintf(stderr, "als_speed: save/read of the model failed: %s\n", err.msg);
            return 1;
        }
        remove(path);
        mp_model_destroy(keep);
        keep = NULL;
        uint32_t nq = topn_users < f.n_users ? topn_users : f.n_users;
        uint32_t *users = malloc((size_t)nq * sizeof *users), *out = malloc((size_t)nq * 10 * sizeof *out);
        float *sc = malloc((size_t)nq * 10 * sizeof *sc);
        for (uint32_t q = 0; q < nq; q++) users[q] = q;
        t = now_s();
        if (mp_factors_topn(&f, users, nq, &ui, 10, out, sc, threads, &err)) {
            fprintf(stderr, "als_speed: topn: %s\n", err.msg);
            return 1;
        }
        double dt = now_s() - t;
        printf("topn_k%u_users %u\ntopn_k%u_seconds %.2f\ntopn_k%u_users_per_sec %.0f\ntopn_k%u_gflops %.1f\n", keep_k,
               nq, keep_k, dt, keep_k, nq / dt, keep_k, 2.0 * nq * f.n_items * f.k / dt / 1e9);
        free(users);
        free(out);
        free(sc);
        mp_factors_free(&f);
    }
    mp_model_destroy(keep);
    mp_csr_free(&ui);
    mp_csr_free(&iu);
    return 0;
}
