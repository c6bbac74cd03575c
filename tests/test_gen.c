#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/gen.h"
#include "magpie/records.h"
#include "magpie/strmap.h"
#include "test.h"

static uint64_t file_hash(const char *dir, const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len;
    unsigned char *b = mp_test_slurp(path, &len);
    if (!b) return 0;
    uint64_t h = mp_hash_bytes(b, len);
    free(b);
    return h;
}

static size_t count_lines(const char *dir, const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len, n = 0;
    unsigned char *b = mp_test_slurp(path, &len);
    if (!b) return (size_t)-1;
    for (size_t i = 0; i < len; i++) n += b[i] == '\n';
    free(b);
    return n;
}

static void small_opts(mp_gen_opts *o) {
    mp_gen_opts_default(o);
    o->n_users = 400;
    o->n_items = 300;
    o->seed = 7;
}

MP_TEST(gen_same_seed_gives_identical_files) {
    char a[512], b[512], c[512];
    snprintf(a, sizeof a, "%s", mp_test_tmpdir(t));
    snprintf(b, sizeof b, "%s", mp_test_tmpdir(t));
    snprintf(c, sizeof c, "%s/nested/dir", mp_test_tmpdir(t)); /* created on demand */
    mp_gen_opts o;
    small_opts(&o);
    mp_error err;
    mp_error_clear(&err);
    mp_gen_report ra, rb, rc;
    CHECK_OK(mp_gen_demo(a, &o, NULL, &ra, &err), &err);
    CHECK_OK(mp_gen_demo(b, &o, NULL, &rb, &err), &err);
    const char *files[] = {"items.jsonl", "users.jsonl", "events.jsonl"};
    for (int i = 0; i < 3; i++) {
        uint64_t ha = file_hash(a, files[i]);
        CHECK(ha != 0);
        CHECK_MSG(ha == file_hash(b, files[i]), "%s differs between runs", files[i]);
    }
    CHECK_EQ(ra.n_events, rb.n_events);
    o.seed = 8;
    CHECK_OK(mp_gen_demo(c, &o, NULL, &rc, &err), &err);
    CHECK(file_hash(a, "events.jsonl") != file_hash(c, "events.jsonl"));
    CHECK(file_hash(a, "items.jsonl") != file_hash(c, "items.jsonl"));
    /* CSV is deterministic too. */
    o.seed = 7;
    o.format = MP_FORMAT_CSV;
    CHECK_OK(mp_gen_demo(a, &o, NULL, &ra, &err), &err);
    CHECK_OK(mp_gen_demo(b, &o, NULL, &rb, &err), &err);
    CHECK(file_hash(a, "events.csv") == file_hash(b, "events.csv"));
    CHECK_EQ(count_lines(a, "events.csv"), ra.n_events + 1);
}

MP_TEST(gen_counts_and_funnel) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", mp_test_tmpdir(t));
    mp_gen_opts o;
    small_opts(&o);
    mp_error err;
    mp_error_clear(&err);
    mp_gen_report r;
    CHECK_OK(mp_gen_demo(dir, &o, NULL, &r, &err), &err);
    CHECK_EQ(r.n_users, 400);
    CHECK_EQ(r.n_items, 300);
    CHECK_EQ(count_lines(dir, "items.jsonl"), 300);
    CHECK_EQ(count_lines(dir, "users.jsonl"), 400);
    CHECK_EQ(count_lines(dir, "events.jsonl"), r.n_events);
    uint64_t sum = 0;
    for (int k = 0; k < MP_EV_NTYPES; k++) sum += r.per_type[k];
    CHECK_EQ(sum, r.n_events);
    /* About sessions_per_user * ~6 events per user. */
    CHECK(r.n_events > 400 * 4 * 3 && r.n_events < 400 * 4 * 20);
    uint64_t v = r.per_type[MP_EV_VIEW], c = r.per_type[MP_EV_CLICK], ca = r.per_type[MP_EV_CART],
             p = r.per_type[MP_EV_PURCHASE];
    CHECK_MSG(p > 0 && p < ca && ca < c && c < v, "funnel %llu > %llu > %llu > %llu", (unsigned long long)v,
              (unsigned long long)c, (unsigned long long)ca, (unsigned long long)p);
    CHECK(r.per_type[MP_EV_FAV] > 0);
    CHECK(r.n_reviews > 0 && r.n_reviews < p);
    CHECK_EQ(r.per_type[MP_EV_REVIEW], r.n_reviews);

    /* --max-events stops exactly there. */
    o.max_events = 123;
    CHECK_OK(mp_gen_demo(dir, &o, NULL, &r, &err), &err);
    CHECK_EQ(r.n_events, 123);
    CHECK_EQ(count_lines(dir, "events.jsonl"), 123);

    o.n_users = 0;
    CHECK_EQ(mp_gen_demo(dir, &o, NULL, &r, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "user");
}

/* Every line is one JSON object: starts with '{', ends with '}', quotes balance outside escapes. */
MP_TEST(gen_lines_are_json_objects) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", mp_test_tmpdir(t));
    mp_gen_opts o;
    small_opts(&o);
    mp_error err;
    mp_error_clear(&err);
    CHECK_OK(mp_gen_demo(dir, &o, NULL, NULL, &err), &err);
    const char *files[] = {"items.jsonl", "users.jsonl", "events.jsonl"};
    for (int f = 0; f < 3; f++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        size_t len;
        unsigned char *b = mp_test_slurp(path, &len);
        CHECK(b && len > 0 && b[len - 1] == '\n');
        size_t start = 0, lineno = 0;
        for (size_t i = 0; i < len; i++) {
            if (b[i] != '\n') continue;
            lineno++;
            CHECK_MSG(i > start + 1 && b[start] == '{' && b[i - 1] == '}', "%s:%zu: not an object", files[f], lineno);
            int in_str = 0, depth = 0;
            for (size_t j = start; j < i; j++) {
                if (in_str) {
                    if (b[j] == '\\') j++;
                    else if (b[j] == '"') in_str = 0;
                    else CHECK_MSG(b[j] >= 0x20, "%s:%zu: raw control byte", files[f], lineno);
                } else if (b[j] == '"') {
                    in_str = 1;
                } else if (b[j] == '{' || b[j] == '[') {
                    depth++;
                } else if (b[j] == '}' || b[j] == ']') {
                    depth--;
                }
            }
            CHECK_MSG(!in_str && depth == 0, "%s:%zu: unbalanced", files[f], lineno);
            start = i + 1;
        }
        free(b);
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Reads every file back with the real reader: nothing is rejected, reviews carry 1-5 ratings and text, and no
 * (user, item, type, ts) repeats. Both event formats give the same events. */
MP_TEST(gen_files_read_back_with_reader) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", mp_test_tmpdir(t));
    mp_gen_opts o;
    small_opts(&o);
    mp_error err;
    mp_error_clear(&err);
    mp_gen_report r;
    CHECK_OK(mp_gen_demo(dir, &o, NULL, &r, &err), &err);
    o.format = MP_FORMAT_CSV;
    CHECK_OK(mp_gen_demo(dir, &o, NULL, NULL, &err), &err);

    char path[700];
    mp_record rec;
    const char *names[3] = {"items.jsonl", "users.jsonl", NULL};
    mp_record_kind kinds[2] = {MP_KIND_ITEMS, MP_KIND_USERS};
    size_t want[2] = {300, 400};
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        mp_reader *rd;
        CHECK_OK(mp_reader_open(&rd, path, kinds[f], MP_FORMAT_AUTO, &err), &err);
        size_t n = 0;
        int rc;
        while ((rc = mp_reader_next(rd, &rec, &err)) == 1) {
            n++;
            if (kinds[f] == MP_KIND_ITEMS) {
                CHECK(rec.item.title.len > 0 && rec.item.category.len > 0 && rec.item.has_price);
                CHECK(memchr(rec.item.category.ptr, '>', rec.item.category.len) != NULL);
            }
        }
        CHECK_MSG(rc == 0, "%s: %s", names[f], err.msg);
        CHECK_EQ(n, want[f]);
        mp_reader_close(rd);
    }

    uint64_t *keys = malloc(r.n_events * sizeof *keys);
    uint64_t *texts = malloc(r.n_events * sizeof *texts);
    CHECK(keys && texts);
    const char *ev_files[2] = {"events.jsonl", "events.csv"};
    uint64_t text_hash[2] = {0, 0};
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, ev_files[f]);
        mp_reader *rd;
        CHECK_OK(mp_reader_open(&rd, path, MP_KIND_EVENTS, MP_FORMAT_AUTO, &err), &err);
        size_t n = 0, reviews = 0;
        int rc;
        while ((rc = mp_reader_next(rd, &rec, &err)) == 1) {
            const mp_event *e = &rec.event;
            char key[700];
            int kl = snprintf(key, sizeof key, "%.*s|%.*s|%d|%lld", (int)e->user.len, e->user.ptr, (int)e->item.len,
                              e->item.ptr, (int)e->type, (long long)e->ts);
            if (n < r.n_events) keys[n] = mp_hash_bytes(key, (size_t)kl);
            if (e->type == MP_EV_REVIEW) {
                reviews++;
                CHECK(e->has_value && e->value >= 1 && e->value <= 5 && e->value == (int)e->value);
                CHECK(e->text.len > 0);
                text_hash[f] ^= mp_hash_bytes(e->text.ptr, e->text.len) * (reviews * 2 + 1);
            } else {
                CHECK(!e->has_value && e->text.len == 0 && e->session.len > 0);
            }
            n++;
        }
        CHECK_MSG(rc == 0, "%s: %s", ev_files[f], err.msg);
        mp_reader_close(rd);
        CHECK_EQ(n, r.n_events);
        CHECK_EQ(reviews, r.n_reviews);
        qsort(keys, n, sizeof *keys, cmp_u64);
        for (size_t i = 1; i < n; i++) CHECK_MSG(keys[i] != keys[i - 1], "%s: duplicate event", ev_files[f]);
    }
    CHECK(text_hash[0] == text_hash[1]); /* review texts survive CSV quoting */
    free(keys);
    free(texts);
}
