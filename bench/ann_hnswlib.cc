// bench/ann_hnswlib.cc: the hnswlib peer for bench/ann.sh (Debian's libhnswlib-dev, header-only). Not part of
// the library: bench/ann.sh compiles it with g++ (-O3 -march=native, hnswlib's own recommended flags).
//
//   ann_hnswlib FILE [--M 16] [--efc 200] [--threads 2] [--efs 10,16,...] [--metric ip|l2] [--seed 100] [--reps 3]
//
// FILE is what `ann_speed --write` saved (vectors, queries, ground truth). Builds a HierarchicalNSW with
// addPoint from --threads threads (ids handed out in order from an atomic counter, as hnswlib's examples do),
// then, after a warm-up pass, for each ef the recall@k and single-thread QPS over all queries (best of --reps, by
// wall time and by thread CPU time). Same output lines as ann_speed.
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

static double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static double cpu_s() {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double rss_mb() {
    FILE *f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    long size = 0, res = 0;
    if (std::fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
    std::fclose(f);
    return (double)res * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s FILE [--M 16] [--efc 200] [--threads 2] [--efs LIST] [--metric ip|l2]\n",
                     argv[0]);
        return 2;
    }
    size_t M = 16, efc = 200, seed = 100;
    int threads = 2, reps = 3;
    std::string efs = "10,16,24,32,48,64,96,128,192,256,384,512,768,1024,1536,2048,3072,4096", metric = "ip";
    for (int a = 2; a + 1 < argc; a += 2) {
        std::string o = argv[a], v = argv[a + 1];
        if (o == "--M")
            M = std::stoul(v);
        else if (o == "--efc")
            efc = std::stoul(v);
        else if (o == "--threads")
            threads = std::stoi(v);
        else if (o == "--efs")
            efs = v;
        else if (o == "--metric")
            metric = v;
        else if (o == "--seed")
            seed = std::stoul(v);
        else if (o == "--reps")
            reps = std::max(1, std::stoi(v));
        else {
            std::fprintf(stderr, "ann_hnswlib: unknown option %s\n", o.c_str());
            return 2;
        }
    }
    FILE *f = std::fopen(argv[1], "rb");
    if (!f) {
        std::fprintf(stderr, "ann_hnswlib: cannot open %s\n", argv[1]);
        return 1;
    }
    char magic[4];
    uint32_t hdr[4];
    if (std::fread(magic, 1, 4, f) != 4 || std::memcmp(magic, "ANNB", 4) != 0 ||
        std::fread(hdr, sizeof hdr, 1, f) != 1) {
        std::fprintf(stderr, "ann_hnswlib: %s is not an ann_speed --write file\n", argv[1]);
        return 1;
    }
    const uint32_t n = hdr[0], dim = hdr[1], nq = hdr[2], k = hdr[3];
    std::vector<float> vecs((size_t)n * dim), qs((size_t)nq * dim);
    std::vector<uint32_t> gt((size_t)nq * k);
    if (std::fread(vecs.data(), sizeof(float), vecs.size(), f) != vecs.size() ||
        std::fread(qs.data(), sizeof(float), qs.size(), f) != qs.size() ||
        std::fread(gt.data(), sizeof(uint32_t), gt.size(), f) != gt.size()) {
        std::fprintf(stderr, "ann_hnswlib: %s is truncated\n", argv[1]);
        return 1;
    }
    std::fclose(f);
    std::printf("engine=hnswlib n=%u dim=%u queries=%u k=%u metric=%s M=%zu efc=%zu threads=%d\n", n, dim, nq, k,
                metric.c_str(), M, efc, threads);

    hnswlib::InnerProductSpace ip(dim);
    hnswlib::L2Space l2(dim);
    hnswlib::SpaceInterface<float> *space = metric == "l2" ? (hnswlib::SpaceInterface<float> *)&l2 : &ip;
    double rss0 = rss_mb();
    double t0 = now_s();
    auto *index = new hnswlib::HierarchicalNSW<float>(space, n, M, efc, seed);
    std::atomic<uint32_t> next(0);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++)
        pool.emplace_back([&]() {
            for (;;) {
                uint32_t i = next.fetch_add(1);
                if (i >= n) break;
                index->addPoint(vecs.data() + (size_t)i * dim, i);
            }
        });
    for (auto &th : pool)
        th.join();
    double build_s = now_s() - t0;
    // bytes the index holds: layer 0 (links + vector + label per element), the upper-layer lists, their pointers,
    // the levels and the per-element locks (hnswlib 0.6 keeps them for its lifetime)
    size_t bytes = index->max_elements_ * index->size_data_per_element_ +
                   index->max_elements_ * (sizeof(void *) + sizeof(int) + sizeof(std::mutex));
    for (size_t i = 0; i < index->cur_element_count; i++)
        bytes += (size_t)index->element_levels_[i] * index->size_links_per_element_;
    double index_mb = (double)bytes / 1048576.0;
    std::printf("build_s=%.2f index_mb=%.1f rss_growth_mb=%.1f\n", build_s, index_mb, rss_mb() - rss0);
    std::fflush(stdout);

    index->setEf(64); // warm-up: page in the index and the queries
    for (uint32_t i = 0; i < nq; i++)
        index->searchKnn(qs.data() + (size_t)i * dim, k);
    for (size_t pos = 0; pos < efs.size();) {
        size_t comma = efs.find(',', pos);
        size_t ef = std::stoul(efs.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
        pos = comma == std::string::npos ? efs.size() : comma + 1;
        if (ef < k) continue;
        index->setEf(ef);
        size_t hits = 0;
        double best_wall = 1e300, best_cpu = 1e300;
        long dist0 = index->metric_distance_computations;
        for (int rep = 0; rep < reps; rep++) {
            hits = 0;
            t0 = now_s();
            double c0 = cpu_s();
            for (uint32_t i = 0; i < nq; i++) {
                auto res = index->searchKnn(qs.data() + (size_t)i * dim, k);
                const uint32_t *truth = gt.data() + (size_t)i * k;
                while (!res.empty()) {
                    uint32_t id = (uint32_t)res.top().second;
                    res.pop();
                    for (uint32_t b = 0; b < k; b++)
                        hits += id == truth[b];
                }
            }
            double dc = cpu_s() - c0, dt = now_s() - t0;
            if (dt < best_wall) best_wall = dt;
            if (dc < best_cpu) best_cpu = dc;
        }
        double recall = (double)hits / ((double)nq * k);
        double dists = (double)(index->metric_distance_computations - dist0) / ((double)nq * reps);
        // hnswlib counts the links scanned (its metric_distance_computations), visited or not
        std::printf("sweep ef=%zu recall=%.4f qps=%.0f cpu_qps=%.0f links_per_query=%.0f\n", ef, recall, nq / best_wall,
                    nq / best_cpu, dists);
        std::fflush(stdout);
        if (recall >= 0.999) break;
    }
    delete index;
    return 0;
}
