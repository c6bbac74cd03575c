/* tests/test.h: the small test framework. Define tests with MP_TEST(name) at the start of a line; the Makefile
 * collects them into the list the runner executes. */
#ifndef MAGPIE_TEST_H
#define MAGPIE_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "magpie/error.h"

typedef struct mp_test_ctx {
    const char *name;
    int failed;
    int not_run; /* set by mp_test_not_run: reported as "not run", counted in neither passed nor failed */
    char where[512];
} mp_test_ctx;

void mp_test_fail(mp_test_ctx *t, const char *file, int line, const char *fmt, ...);
/* Marks the test as not run (the caller returns at once): for tests that need something the environment lacks, e.g.
 * the PostgreSQL variants of the store tests when MAGPIE_TEST_PG is unset. The runner prints "not run NAME: why" and
 * a count before its closing line; scripts/test.sh makes sure nothing it needs is missing (such tests fail there). */
void mp_test_not_run(mp_test_ctx *t, const char *fmt, ...);
/* A fresh empty directory for this test (removed after the run unless MP_TEST_KEEP is set). */
const char *mp_test_tmpdir(mp_test_ctx *t);
/* Writes `text` to dir/name and returns the full path (static buffer rotated among 8). */
const char *mp_test_write_file(mp_test_ctx *t, const char *name, const char *text);
/* Reads a whole file into a malloc'ed, NUL-terminated buffer (caller frees); *len gets its size. NULL if unreadable. */
unsigned char *mp_test_slurp(const char *path, size_t *len);
/* Writes n bytes to path (created or truncated); 0 on success, -1 on failure. */
int mp_test_write_bytes(const char *path, const void *p, size_t n);
/* Path of a dataset under ../shared/data, or NULL if absent (tests using it then skip quietly). */
const char *mp_test_shared_data(const char *rel);

#define MP_TEST(name) void mp_test_##name(mp_test_ctx *t)

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            mp_test_fail(t, __FILE__, __LINE__, "CHECK(%s)", #cond);                                                   \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                                           \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            mp_test_fail(t, __FILE__, __LINE__, __VA_ARGS__);                                                          \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)

#define CHECK_EQ(a, b)                                                                                                 \
    do {                                                                                                               \
        long long a_ = (long long)(a), b_ = (long long)(b);                                                            \
        if (a_ != b_) {                                                                                                \
            mp_test_fail(t, __FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_);                             \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)

#define CHECK_NEAR(a, b, eps)                                                                                          \
    do {                                                                                                               \
        double a_ = (double)(a), b_ = (double)(b);                                                                     \
        if (!(fabs(a_ - b_) <= (eps))) {                                                                               \
            mp_test_fail(t, __FILE__, __LINE__, "%s ~ %s: %.10g vs %.10g", #a, #b, a_, b_);                            \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)

/* rc must be MP_OK; on failure prints the error message. */
#define CHECK_OK(rc, errp)                                                                                             \
    do {                                                                                                               \
        int rc_ = (rc);                                                                                                \
        if (rc_ != MP_OK) {                                                                                            \
            mp_test_fail(t, __FILE__, __LINE__, "%s returned %s: %s", #rc, mp_err_name(rc_), (errp)->msg);             \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)

#define CHECK_CONTAINS(haystack, needle)                                                                               \
    do {                                                                                                               \
        const char *h_ = (haystack), *n_ = (needle);                                                                   \
        if (!h_ || !strstr(h_, n_)) {                                                                                  \
            mp_test_fail(t, __FILE__, __LINE__, "expected \"%s\" in \"%s\"", n_, h_ ? h_ : "(null)");                  \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)

#endif
