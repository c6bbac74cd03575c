/* bench/ann_speed.c: Magpie's HNSW index against exact search on synthetic vectors (run by bench/ann.sh, which puts
 * hnswlib beside it on the same file).
 *
 *   build/bench/ann_speed --data gauss|clustered [--n 1000000] [--dim 64] [--queries 1000] [--k 10] [--M 16]
 *                         [--efc 200] [--threads 2] [--efs 10,16,...] [--exact-queries 50] [--seed 1]
 *                         [--metric ip|cosine|l2] [--write FILE] [--index FILE] [--reps 3]
 *
 * Data (seeded; queries come from the same distribution as the items, with their own stream):
 *   gauss      every component N(0, 1): no structure at all, the hardest case for a graph index.
 *   clustered  like item embeddings of a trained model: 2000 centres drawn N(0, I); cluster popularity lognormal
 *              (weight exp(N(0, 1)), so a few clusters are large and many small); an item picks a cluster by
 *              weight, takes centre + s * N(0, I) with the cluster's spread s ~ U[0.4, 0.9] (the direction), and
 *              a heavy-tailed length exp(0.5 * N(0, 1)) (popular-item-like norms; the largest ~10x the median).
 * Steps: ground truth for every query by mp_ann_exact_batch (all threads); exact QPS from mp_ann_exact on the first
 * --exact-queries queries, one thread, checked against the ground truth; the index build (wall time, bytes, growth
 * of resident memory); then, after one warm-up pass, for each ef the recall@k over all queries and the
 * single-thread QPS, best of --reps passes, both by wall time (qps) and by the thread's CPU time (cpu_qps: the same
 * on a quiet machine, and steadier on a shared one). It stops the sweep once recall reaches 0.999. --write saves n,
 * dim, queries, k, vectors, queries and ground-truth ids for the peer (little-endian: "ANNB" u32 n dim nq k, f32
 * vectors, f32 queries, u32 ids).
 * --index FILE loads the index from FILE when it exists (build_s is then the load time) and otherwise builds and
 * saves it there: for working on the search without rebuilding.
 * Output: key=value lines on stdout; "sweep ef=... recall=... qps=..." per ef. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "magpie/ann.h"
#include "magpie/rng.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU time of the calling thread: what a query costs even when other work shares the cores. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Resident memory of this process in MiB (from /proc/self/statm). */
static double rss_mb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    long size = 0, res = 0;
    if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
    fclose(f);
    return (double)res * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

/* Standard normals two at a time (Box-Muller, both halves). */
static void normals(mp_rng *rng, float *out, size_t n) {
    for (size_t i = 0; i < n; i += 2) {
        double u1 = mp_rng_uniform(rng), u2 = mp_rng_uniform(rng);
        if (u1 < 1e-300) u1 = 1e-300;
        double r = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
        out[i] = (float)(r * cos(a));
        if (i + 1 < n) out[i + 1] = (float)(r * sin(a));
    }
}

typedef struct {
    uint32_t n_clusters, dim;
    float *centres; /* [n_clusters * dim] */
    double *cum;    /* [n_clusters] cumulative popularity, last = 1 */
    float *spread;  /* [n_clusters] */
} clusters;

static int clusters_make(clusters *c, uint32_t n_clusters, uint32_t dim, mp_rng *rng) {
    c->n_clusters = n_clusters;
    c->dim = dim;
    c->centres = malloc((size_t)n_clusters * dim * sizeof *c->centres);
    c->cum = malloc(n_clusters * sizeof *c->cum);
    c->spread = malloc(n_clusters * sizeof *c->spread);
    if (!c->centres || !c->cum || !c->spread) return -1;
    normals(rng, c->centres, (size_t)n_clusters * dim);
    double total = 0;
    for (uint32_t j = 0; j < n_clusters; j++) {
        total += exp(mp_rng_normal(rng));
        c->cum[j] = total;
        c->spread[j] = (float)(0.4 + 0.5 * mp_rng_uniform(rng));
    }
    for (uint32_t j = 0; j < n_clusters; j++)
        c->cum[j] /= total;
    return 0;
}

static void clusters_free(clusters *c) {
    free(c->centres);
    free(c->cum);
    free(c->spread);
}

/* One clustered vector into out (dim). */
static void clustered_vector(const clusters *c, mp_rng *rng, float *out) {
    double u = mp_rng_uniform(rng);
    uint32_t lo = 0, hi = c->n_clusters - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (c->cum[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    const float *centre = c->centres + (size_t)lo * c->dim;
    normals(rng, out, c->dim);
    double s2 = 0;
    for (uint32_t a = 0; a < c->dim; a++) {
        out[a] = centre[a] + c->spread[lo] * out[a];
        s2 += (double)out[a] * out[a];
    }
    double len = exp(0.5 * mp_rng_normal(rng));
    float scale = (float)(s2 > 0 ? len / sqrt(s2) : 0.0);
    for (uint32_t a = 0; a < c->dim; a++)
        out[a] *= scale;
}

static int generate(const char *kind, uint64_t seed, uint32_t n, uint32_t nq, uint32_t dim, float *vecs, float *qs) {
    mp_rng rng, qrng;
    mp_rng_seed(&rng, seed);
    mp_rng_seed(&qrng, seed ^ 0x5157u);
    if (!strcmp(kind, "gauss")) {
        normals(&rng, vecs, (size_t)n * dim);
        normals(&qrng, qs, (size_t)nq * dim);
        return 0;
    }
    if (!strcmp(kind, "clustered")) {
        clusters c;
        mp_rng crng;
        mp_rng_seed(&crng, seed ^ 0xC1u);
        if (clusters_make(&c, 2000, dim, &crng)) return -1;
        for (uint32_t i = 0; i < n; i++)
            clustered_vector(&c, &rng, vecs + (size_t)i * dim);
        for (uint32_t i = 0; i < nq; i++)
            clustered_vector(&c, &qrng, qs + (size_t)i * dim);
        clusters_free(&c);
        return 0;
    }
    return -1;
}

static int write_file(const char *path, uint32_t n, uint32_t dim, uint32_t nq, uint32_t k, const float *vecs,
                      const float *qs, const uint32_t *gt) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint32_t hdr[4] = {n, dim, nq, k};
    int ok = fwrite("ANNB", 1, 4, f) == 4 && fwrite(hdr, sizeof hdr, 1, f) == 1 &&
             fwrite(vecs, sizeof *vecs, (size_t)n * dim, f) == (size_t)n * dim &&
             fwrite(qs, sizeof *qs, (size_t)nq * dim, f) == (size_t)nq * dim &&
             fwrite(gt, sizeof *gt, (size_t)nq * k, f) == (size_t)nq * k;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static void die(const char *what, const mp_error *err) {
    fprintf(stderr, "ann_speed: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

int main(int argc, char **argv) {
    const char *data = "gauss", *efs = "10,16,24,32,48,64,96,128,192,256,384,512,768,1024,1536,2048,3072,4096",
               *out = NULL;
    const char *metric_name = "ip", *index_path = NULL;
    uint32_t n = 1000000, dim = 64, nq = 1000, k = 10, exact_q = 50;
    int reps = 3;
    uint64_t seed = 1;
    mp_hnsw_params p;
    mp_hnsw_params_default(&p);
    p.n_threads = 2;
    for (int a = 1; a + 1 < argc; a += 2) {
        const char *o = argv[a], *v = argv[a + 1];
        if (!strcmp(o, "--data"))
            data = v;
        else if (!strcmp(o, "--n"))
            n = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(o, "--dim"))
            dim = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(o, "--queries"))
            nq = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(o, "--k"))
            k = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(o, "--M"))
            p.M = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(o, "--efc"))
            p.ef_construction = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(o, "--threads"))
            p.n_threads = atoi(v);
        else if (!strcmp(o, "--efs"))
            efs = v;
        else if (!strcmp(o, "--exact-queries"))
            exact_q = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(o, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(o, "--metric"))
            metric_name = v;
        else if (!strcmp(o, "--write"))
            out = v;
        else if (!strcmp(o, "--index"))
            index_path = v;
        else if (!strcmp(o, "--reps"))
            reps = atoi(v) > 0 ? atoi(v) : 1;
        else {
            fprintf(stderr, "ann_speed: unknown option %s (see the comment at the top of bench/ann_speed.c)\n", o);
            return 2;
        }
    }
    mp_ann_metric metric;
    if (mp_ann_metric_parse(metric_name, &metric)) {
        fprintf(stderr, "ann_speed: --metric %s: expected ip, cosine or l2\n", metric_name);
        return 2;
    }
    if (exact_q > nq) exact_q = nq;
    mp_error err;
    mp_error_clear(&err);
    float *vecs = malloc((size_t)n * dim * sizeof *vecs), *qs = malloc((size_t)nq * dim * sizeof *qs);
    uint32_t *gt = malloc((size_t)nq * k * sizeof *gt), *ids = malloc((size_t)k * sizeof *ids);
    if (!vecs || !qs || !gt || !ids) die("out of memory", NULL);
    double t0 = now_s();
    if (generate(data, seed, n, nq, dim, vecs, qs)) {
        fprintf(stderr, "ann_speed: --data %s: expected gauss or clustered\n", data);
        return 2;
    }
    printf("dataset=%s n=%u dim=%u queries=%u k=%u metric=%s M=%u efc=%u threads=%d\n", data, n, dim, nq, k,
           metric_name, p.M, p.ef_construction, p.n_threads);
    printf("gen_s=%.2f\n", now_s() - t0);
    fflush(stdout);

    size_t n_out;
    t0 = now_s();
    if (mp_ann_exact_batch(vecs, n, dim, metric, qs, nq, k, NULL, gt, NULL, &n_out, p.n_threads, &err))
        die("ground truth", &err);
    printf("truth_s=%.2f\n", now_s() - t0);
    if (out && write_file(out, n, dim, nq, k, vecs, qs, gt)) die("cannot write --write file", NULL);

    /* exact search: one query at a time, one thread */
    size_t agree = 0;
    t0 = now_s();
    double c0 = cpu_s();
    for (uint32_t i = 0; i < exact_q; i++) {
        if (mp_ann_exact(vecs, n, dim, metric, qs + (size_t)i * dim, k, NULL, ids, NULL, &n_out, &err))
            die("exact", &err);
        agree += memcmp(ids, gt + (size_t)i * k, n_out * sizeof *ids) == 0;
    }
    double exact_s = now_s() - t0, exact_cpu = cpu_s() - c0;
    printf("exact_qps=%.1f exact_cpu_qps=%.1f exact_agrees=%zu/%u\n", exact_q / exact_s, exact_q / exact_cpu, agree,
           exact_q);
    fflush(stdout);

    double rss0 = rss_mb();
    mp_hnsw *h;
    t0 = now_s();
    if (index_path && access(index_path, R_OK) == 0) {
        if (mp_hnsw_load(&h, index_path, &err)) die("load", &err);
        printf("loaded=%s\n", index_path);
    } else {
        if (mp_hnsw_build(&h, vecs, n, dim, metric, &p, NULL, &err)) die("build", &err);
    }
    double build_s = now_s() - t0;
    if (index_path && access(index_path, R_OK) != 0 && mp_hnsw_save(h, index_path, &err)) die("save", &err);
    printf("build_s=%.2f index_mb=%.1f rss_growth_mb=%.1f\n", build_s, mp_hnsw_memory(h) / 1048576.0, rss_mb() - rss0);
    fflush(stdout);

    mp_hnsw_scratch *s;
    if (mp_hnsw_scratch_create(&s, h, &err)) die("scratch", &err);
    for (uint32_t i = 0; i < nq; i++) /* warm-up: page in the index and the queries */
        if (mp_hnsw_search(h, s, qs + (size_t)i * dim, k, 64, NULL, ids, NULL, &n_out, &err)) die("search", &err);
    for (const char *e = efs; *e;) {
        size_t ef = strtoul(e, NULL, 10);
        const char *comma = strchr(e, ',');
        e = comma ? comma + 1 : e + strlen(e);
        if (ef < k) continue;
        size_t hits = 0;
        double best_wall = INFINITY, best_cpu = INFINITY;
        uint64_t dist0 = mp_hnsw_scratch_distances(s);
        for (int rep = 0; rep < reps; rep++) {
            hits = 0;
            t0 = now_s();
            double c1 = cpu_s();
            for (uint32_t i = 0; i < nq; i++) {
                if (mp_hnsw_search(h, s, qs + (size_t)i * dim, k, ef, NULL, ids, NULL, &n_out, &err))
                    die("search", &err);
                const uint32_t *truth = gt + (size_t)i * k;
                for (size_t a = 0; a < n_out; a++)
                    for (uint32_t b = 0; b < k; b++)
                        hits += ids[a] == truth[b];
            }
            double dc = cpu_s() - c1, dt = now_s() - t0;
            if (dt < best_wall) best_wall = dt;
            if (dc < best_cpu) best_cpu = dc;
        }
        double recall = (double)hits / ((double)nq * k);
        double dists = (double)(mp_hnsw_scratch_distances(s) - dist0) / ((double)nq * reps);
        printf("sweep ef=%zu recall=%.4f qps=%.0f cpu_qps=%.0f dist_per_query=%.0f\n", ef, recall, nq / best_wall,
               nq / best_cpu, dists);
        fflush(stdout);
        if (recall >= 0.999) break;
    }
    mp_hnsw_scratch_destroy(s);
    mp_hnsw_destroy(h);
    free(vecs);
    free(qs);
    free(gt);
    free(ids);
    return 0;
}
