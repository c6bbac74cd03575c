/* The unit test runner: runs every MP_TEST (or those whose names contain argv[1]) and ends with
 * "N passed, N failed". */
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define MP_TEST_ENTRY(name) void mp_test_##name(mp_test_ctx *t);
#include "test_list.h"
#undef MP_TEST_ENTRY

typedef struct {
    const char *name;
    void (*fn)(mp_test_ctx *);
} entry;

static const entry all_tests[] = {
#define MP_TEST_ENTRY(name) {#name, mp_test_##name},
#include "test_list.h"
#undef MP_TEST_ENTRY
};

static char tmp_root[256];
static int tmp_counter;

void mp_test_fail(mp_test_ctx *t, const char *file, int line, const char *fmt, ...) {
    t->failed = 1;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(t->where, sizeof t->where, "%s:%d: %s", file, line, msg);
}

void mp_test_not_run(mp_test_ctx *t, const char *fmt, ...) {
    t->not_run = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->where, sizeof t->where, fmt, ap);
    va_end(ap);
}

const char *mp_test_tmpdir(mp_test_ctx *t) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s-%d", tmp_root, t->name, ++tmp_counter);
    mkdir(path, 0700);
    return path;
}

const char *mp_test_write_file(mp_test_ctx *t, const char *name, const char *text) {
    static char bufs[8][600];
    static int next;
    char *p = bufs[next++ % 8];
    static char dir[512];
    if (!dir[0] || strncmp(dir, tmp_root, strlen(tmp_root)) != 0) snprintf(dir, sizeof dir, "%s", tmp_root);
    snprintf(p, 600, "%s/%s", tmp_root, name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        mp_test_fail(t, __FILE__, __LINE__, "cannot write %s", p);
        return p;
    }
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return p;
}

unsigned char *mp_test_slurp(const char *path, size_t *len) {
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (!b) return NULL;
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

int mp_test_write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

const char *mp_test_shared_data(const char *rel) {
    static char bufs[4][512];
    static int next;
    char *p = bufs[next++ % 4];
    const char *root = getenv("MAGPIE_SHARED_DATA");
    snprintf(p, 512, "%s/%s", root ? root : "../shared/data", rel);
    return access(p, R_OK) == 0 ? p : NULL;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/magpie-tests-XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 2;
    }
    int passed = 0, failed = 0, not_run = 0;
    size_t n = sizeof all_tests / sizeof all_tests[0];
    for (size_t i = 0; i < n; i++) {
        if (filter && !strstr(all_tests[i].name, filter)) continue;
        mp_test_ctx t = {.name = all_tests[i].name};
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        all_tests[i].fn(&t);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
        if (t.not_run && !t.failed) {
            not_run++;
            printf("not run %s: %s\n", t.name, t.where);
        } else if (t.failed) {
            failed++;
            printf("FAIL %s (%.0f ms)\n     %s\n", t.name, ms, t.where);
        } else {
            passed++;
            printf("ok   %s (%.0f ms)\n", t.name, ms);
        }
        fflush(stdout);
    }
    if (!getenv("MP_TEST_KEEP")) nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (not_run) printf("%d not run (see the \"not run\" lines above)\n", not_run);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
