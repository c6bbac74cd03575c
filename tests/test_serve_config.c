/* Settings of `magpie serve` (src/serve/config.h): defaults, config file, environment, flags, help, printing and
 * the constant-time key comparison. */
#include <stdlib.h>
#include <string.h>

#include "serve/config.h"
#include "test.h"

static char *help_text(void) {
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    if (!f) return NULL;
    mp_serve_config_help(f);
    fclose(f);
    return s;
}

static char *print_text(const mp_serve_config *c) {
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    if (!f) return NULL;
    mp_serve_config_print(c, f);
    fclose(f);
    return s;
}

/* Loads `text` as a config file into a fresh config; returns the code and leaves the message in *err. */
static int load_text(mp_test_ctx *t, const char *name, const char *text, mp_serve_config *c, mp_error *err) {
    mp_serve_config_free(c);
    int rc = mp_serve_config_init(c, err);
    if (rc != MP_OK) return rc;
    return mp_serve_config_load_file(c, mp_test_write_file(t, name, text), err);
}

MP_TEST(serveconfig_defaults) {
    mp_serve_config c;
    mp_error err;
    CHECK_OK(mp_serve_config_init(&c, &err), &err);
    CHECK(strcmp(c.db, "magpie.db") == 0);
    CHECK(strcmp(c.model, "") == 0);
    CHECK(strcmp(c.listen, "127.0.0.1") == 0);
    CHECK(strcmp(c.ann, "auto") == 0);
    CHECK(strcmp(c.retrain_args, "") == 0);
    CHECK_EQ(c.port, 8080);
    CHECK_EQ(c.threads, 0);
    CHECK_EQ(c.max_body, 8 << 20);
    CHECK_EQ(c.max_n, 1000);
    CHECK_EQ(c.max_batch, 10000);
    CHECK_EQ(c.request_timeout, 10000);
    CHECK_EQ(c.idle_timeout, 15000);
    CHECK_EQ(c.max_connections, 1024);
    CHECK_EQ(c.reload_poll, 2000);
    CHECK_EQ(c.retrain_every, 0);
    CHECK_EQ(c.ann_min_items, 50000);
    CHECK_EQ(c.ann_m, 16);
    CHECK_EQ(c.ann_ef_construction, 200);
    CHECK_EQ(c.ann_ef_search, 64);
    CHECK_EQ(c.access_log, 0);
    CHECK_EQ(c.dashboard, 1);
    CHECK(c.read_keys && c.read_keys[0] == NULL && c.n_read_keys == 0);
    CHECK(c.write_keys && c.write_keys[0] == NULL && c.n_write_keys == 0);
    CHECK(!strcmp(c.encoder, "use-lite"));
    CHECK_EQ(c.embed_items, 1);
    for (int i = 0; i < 46; i++)
        CHECK(c.origin[i] && strcmp(c.origin[i], "default") == 0);
    CHECK(c.origin[46] == NULL);
    /* issue 6: exploration, protection and A/B settings */
    CHECK(!strcmp(c.bandit, "greedy") && !strcmp(c.bandit_log, "") && !strcmp(c.ab_variants, ""));
    CHECK_EQ(c.bandit_ttl, 3600000);
    CHECK(!strcmp(c.bandit_features, "auto") && !strcmp(c.bandit_state, "") && !strcmp(c.price_max, ""));
    CHECK_EQ(c.bandit_save_every, 300000);
    CHECK_EQ(c.ab_users, 1000000);
    CHECK_OK(mp_serve_config_validate(&c, &err), &err);
    mp_serve_config_set(&c, "price_min", "30", "test", &err);
    mp_serve_config_set(&c, "price_max", "10", "test", &err);
    CHECK_EQ(mp_serve_config_validate(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "empty range");
    mp_serve_config_set(&c, "price_max", "ten", "test", &err);
    CHECK_EQ(mp_serve_config_validate(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "price_max");
    CHECK_EQ(mp_serve_config_set(&c, "bandit_features", "factors", "test", &err), MP_EINVAL);
    mp_serve_config_free(&c);
    mp_serve_config_free(&c); /* idempotent on a freed (zeroed) config */
}

MP_TEST(serveconfig_file_parsing) {
    mp_serve_config c = {0};
    mp_error err;
    const char *text = "\xEF\xBB\xBF# magpie serve settings\n"
                       "\n"
                       "   # indented comment\n"
                       "port = 9090   # trailing comment\n"
                       "db=/var/lib/magpie/shop.db\r\n"
                       "retrain_args = \"--model als # not a comment \\\"q\\\" \\\\\"  # comment\n"
                       "\tmax_body = 64k\n"
                       "request_timeout = 500ms\n"
                       "idle_timeout = 1.5s\n"
                       "reload_poll = 5m\n"
                       "retrain_every = 1h\n"
                       "access_log = yes\n"
                       "dashboard = OFF\n"
                       "listen = \"\"\n"
                       "model = m.bin\n"
                       "read_keys = r1, r2\n"
                       "write_keys = \"w#1\""; /* no final newline */
    CHECK_OK(load_text(t, "serve.conf", text, &c, &err), &err);
    CHECK_EQ(c.port, 9090);
    CHECK(strcmp(c.db, "/var/lib/magpie/shop.db") == 0);
    CHECK(strcmp(c.retrain_args, "--model als # not a comment \"q\" \\") == 0);
    CHECK_EQ(c.max_body, 65536);
    CHECK_EQ(c.request_timeout, 500);
    CHECK_EQ(c.idle_timeout, 1500);
    CHECK_EQ(c.reload_poll, 300000);
    CHECK_EQ(c.retrain_every, 3600000);
    CHECK_EQ(c.access_log, 1);
    CHECK_EQ(c.dashboard, 0);
    CHECK(strcmp(c.listen, "") == 0);
    CHECK(strcmp(c.model, "m.bin") == 0);
    CHECK_EQ(c.n_read_keys, 2);
    CHECK(strcmp(c.read_keys[0], "r1") == 0 && strcmp(c.read_keys[1], "r2") == 0 && !c.read_keys[2]);
    CHECK_EQ(c.n_write_keys, 1);
    CHECK(strcmp(c.write_keys[0], "w#1") == 0);
    /* origins: path:line for the file's settings, default for the rest */
    CHECK_CONTAINS(c.origin[3], "serve.conf:4"); /* port is the 4th setting */
    CHECK(strcmp(c.origin[3] + strlen(c.origin[3]) - 13, "/serve.conf:4") == 0);
    CHECK_CONTAINS(c.origin[0], "serve.conf:5"); /* db */
    CHECK(strcmp(c.origin[4], "default") == 0);  /* threads */
    CHECK_EQ(c.threads, 0);
    mp_serve_config_free(&c);

    /* an empty file and a file of comments change nothing */
    CHECK_OK(load_text(t, "empty.conf", "", &c, &err), &err);
    CHECK_EQ(c.port, 8080);
    CHECK_OK(load_text(t, "comments.conf", "# a\n\n   \n#b = c\n", &c, &err), &err);
    CHECK_EQ(c.port, 8080);
    mp_serve_config_free(&c);
}

/* Expects loading `text` to fail with MP_EINVAL and a message containing "<file>:<line>:" and `needle`. */
#define CHECK_FILE_ERROR(text, line, needle)                                                                           \
    do {                                                                                                               \
        int rc__ = load_text(t, "bad.conf", (text), &c, &err);                                                         \
        CHECK_MSG(rc__ == MP_EINVAL, "expected MP_EINVAL for %s, got %d", #text, rc__);                                \
        char where__[32];                                                                                              \
        snprintf(where__, sizeof where__, "bad.conf:%d: ", (line));                                                    \
        CHECK_CONTAINS(err.msg, where__);                                                                              \
        CHECK_CONTAINS(err.msg, (needle));                                                                             \
    } while (0)

MP_TEST(serveconfig_file_errors) {
    mp_serve_config c = {0};
    mp_error err;
    /* syntax */
    CHECK_FILE_ERROR("port = 1\njust words\n", 2, "expected `key = value`");
    CHECK_FILE_ERROR("# c\n = 5\n", 2, "setting name");
    CHECK_FILE_ERROR("\n\nretrain_args = \"open\n", 3, "unterminated");
    CHECK_FILE_ERROR("retrain_args = \"a\" b\n", 1, "after the closing quote");
    CHECK_FILE_ERROR("retrain_args = \"a\\qb\"\n", 1, "unknown escape");
    /* unknown keys, with a suggestion when one is close */
    CHECK_FILE_ERROR("port = 1\nprot = 2\n", 2, "unknown setting `prot` (did you mean `port`?)");
    CHECK_FILE_ERROR("max-body = 1m\n", 1, "did you mean `max_body`");
    CHECK_FILE_ERROR("colour = blue\n", 1, "unknown setting `colour`");
    /* duplicates */
    CHECK_FILE_ERROR("port = 1\n# x\nport = 2\n", 3, "`port` given twice (first at line 1)");
    /* bad values of each type */
    CHECK_FILE_ERROR("max_body = 8x\n", 1, "`max_body`: expected a size");
    CHECK_FILE_ERROR("max_body = -1\n", 1, "`max_body`");
    CHECK_FILE_ERROR("max_body = 99999999999t\n", 1, "`max_body`");
    CHECK_FILE_ERROR("request_timeout = 10 parsecs\n", 1, "`request_timeout`: expected a duration");
    CHECK_FILE_ERROR("idle_timeout = 0.5ms\n", 1, "whole milliseconds");
    CHECK_FILE_ERROR("idle_timeout = -3s\n", 1, "`idle_timeout`");
    CHECK_FILE_ERROR("access_log = maybe\n", 1, "`access_log`: expected true/false");
    CHECK_FILE_ERROR("port = 80a\n", 1, "`port`: expected a whole number from 0 to 65535");
    CHECK_FILE_ERROR("port = 70000\n", 1, "70000 is out of range (expected 0 to 65535)");
    CHECK_FILE_ERROR("max_n = 0\n", 1, "`max_n`: 0 is out of range");
    CHECK_FILE_ERROR("threads = -1\n", 1, "`threads`: -1 is out of range");
    CHECK_FILE_ERROR("ann_m = 99999999999999999999\n", 1, "`ann_m`: expected a whole number");
    CHECK_FILE_ERROR("ann = fast\n", 1, "`ann`: expected one of auto, on, off");
    CHECK_FILE_ERROR("read_keys = good, \"bad key\"\n", 1, "`read_keys`: key 2 of the list");
    CHECK(!strstr(err.msg, "good")); /* secrets are never echoed */
    /* a missing file is an I/O error naming the path */
    mp_serve_config_free(&c);
    CHECK_OK(mp_serve_config_init(&c, &err), &err);
    CHECK_EQ(mp_serve_config_load_file(&c, "/nonexistent/magpie.conf", &err), MP_EIO);
    CHECK_CONTAINS(err.msg, "/nonexistent/magpie.conf");
    /* errors with err == NULL still return the code */
    CHECK_EQ(mp_serve_config_load_file(&c, mp_test_write_file(t, "n.conf", "prot = 1\n"), NULL), MP_EINVAL);
    mp_serve_config_free(&c);
}

MP_TEST(serveconfig_value_forms) {
    mp_serve_config c;
    mp_error err;
    CHECK_OK(mp_serve_config_init(&c, &err), &err);
    static const struct {
        const char *text;
        uint64_t bytes;
    } sizes[] = {{"1048576", 1048576}, {"64k", 65536},     {"8M", 8u << 20}, {"1g", 1u << 30}, {"2 KiB", 2048},
                 {" 3mb ", 3u << 20},  {"1t", 1ULL << 40}, {"0", 0},         {"5b", 5}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        CHECK_OK(mp_serve_config_set(&c, "max_body", sizes[i].text, "flag", &err), &err);
        CHECK_MSG(c.max_body == sizes[i].bytes, "%s -> %llu", sizes[i].text, (unsigned long long)c.max_body);
    }
    static const char *const bad_sizes[] = {"", "k", "1.5m", "1 m b", "12q", "18446744073709551616", "17179869184g"};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++)
        CHECK_MSG(mp_serve_config_set(&c, "max_body", bad_sizes[i], "flag", &err) == MP_EINVAL, "%s", bad_sizes[i]);

    static const struct {
        const char *text;
        int64_t ms;
    } durs[] = {{"30", 30000}, {"500ms", 500}, {"2s", 2000},     {"5m", 300000},  {"1h", 3600000},
                {"0", 0},      {"1.5s", 1500}, {"0.25m", 15000}, {"1.001", 1001}, {"2 min", 120000}};
    for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++) {
        CHECK_OK(mp_serve_config_set(&c, "reload_poll", durs[i].text, "flag", &err), &err);
        CHECK_MSG(c.reload_poll == durs[i].ms, "%s -> %lld", durs[i].text, (long long)c.reload_poll);
    }
    static const char *const bad_durs[] = {"", "s", "1.0005", "5 days", "1e3", "-1", ".", "99999999999999999h"};
    for (size_t i = 0; i < sizeof bad_durs / sizeof bad_durs[0]; i++)
        CHECK_MSG(mp_serve_config_set(&c, "reload_poll", bad_durs[i], "flag", &err) == MP_EINVAL, "%s", bad_durs[i]);

    static const char *const yes[] = {"true", "1", "yes", "on", "TRUE", "On"}, *const no[] = {"false", "0", "no", "off",
                                                                                              "No"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        CHECK_OK(mp_serve_config_set(&c, "access_log", yes[i], "flag", &err), &err);
        CHECK_EQ(c.access_log, 1);
        CHECK_OK(mp_serve_config_set(&c, "access_log", no[i % 5], "flag", &err), &err);
        CHECK_EQ(c.access_log, 0);
    }
    CHECK_EQ(mp_serve_config_set(&c, "access_log", "2", "flag", &err), MP_EINVAL);

    /* INT ranges, boundaries included */
    CHECK_OK(mp_serve_config_set(&c, "port", "0", "flag", &err), &err);
    CHECK_OK(mp_serve_config_set(&c, "port", "65535", "flag", &err), &err);
    CHECK_EQ(c.port, 65535);
    CHECK_OK(mp_serve_config_set(&c, "ann_min_items", "4294967295", "flag", &err), &err);
    CHECK_EQ(mp_serve_config_set(&c, "ann_min_items", "4294967296", "flag", &err), MP_EINVAL);
    CHECK_EQ(mp_serve_config_set(&c, "ann_m", "1", "flag", &err), MP_EINVAL);
    CHECK_EQ(mp_serve_config_set(&c, "port", "", "flag", &err), MP_EINVAL);
    CHECK_EQ(mp_serve_config_set(&c, "port", "+", "flag", &err), MP_EINVAL);
    CHECK_EQ(mp_serve_config_set(&c, "port", "1 2", "flag", &err), MP_EINVAL);

    /* a failed set keeps the previous value and origin */
    CHECK_OK(mp_serve_config_set(&c, "port", "1234", "env", &err), &err);
    CHECK_EQ(mp_serve_config_set(&c, "port", "65536", "flag", &err), MP_EINVAL);
    CHECK_EQ(c.port, 1234);
    CHECK(strcmp(c.origin[3], "env") == 0);
    CHECK_EQ(mp_serve_config_set(&c, NULL, "1", "flag", &err), MP_EINVAL);
    CHECK_EQ(mp_serve_config_set(&c, "port", NULL, "flag", &err), MP_EINVAL);
    CHECK_EQ(mp_serve_config_set(&c, "nope", "1", "flag", &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "unknown setting `nope`");
    /* strings keep blanks; other types drop them */
    CHECK_OK(mp_serve_config_set(&c, "retrain_args", "  --epochs 5 ", "flag", &err), &err);
    CHECK(strcmp(c.retrain_args, "  --epochs 5 ") == 0);
    CHECK_OK(mp_serve_config_set(&c, "ann", "on", "flag", &err), &err);
    CHECK(strcmp(c.ann, "on") == 0);
    mp_serve_config_free(&c);
}

MP_TEST(serveconfig_precedence) {
    mp_serve_config c = {0};
    mp_error err;
    CHECK_OK(load_text(t, "prec.conf", "port = 9000\nmax_n = 50\nmax_batch = 60\n", &c, &err), &err);
    CHECK_EQ(c.port, 9000);
    char *env[] = {"PATH=/usr/bin",
                   "MAGPIE_PORT=9100",
                   "MAGPIE_MAX_BATCH= 70 ",
                   "MAGPIE_THREADS=3",
                   "MAGPIE_CONFIG=/etc/magpie.conf", /* not a setting: the caller's business */
                   "MAGPIE_SHARED_DATA=/x",          /* other MAGPIE_ variables are ignored */
                   "MAGPIE_Idle_Timeout=1s",         /* only the upper-case spelling counts */
                   "MAGPIE_=1",
                   "MAGPIE_PORTX",
                   "port=1",
                   NULL};
    CHECK_OK(mp_serve_config_apply_env(&c, env, &err), &err);
    CHECK_EQ(c.port, 9100);    /* env over file */
    CHECK_EQ(c.max_n, 50);     /* file over default */
    CHECK_EQ(c.max_batch, 70); /* env over file */
    CHECK_EQ(c.threads, 3);    /* env over default */
    CHECK_EQ(c.idle_timeout, 15000);
    CHECK(strcmp(c.origin[3], "env") == 0);
    CHECK_CONTAINS(c.origin[8], "prec.conf:2"); /* max_n */
    CHECK_OK(mp_serve_config_set(&c, mp_serve_config_key_of_flag("port"), "9200", "flag", &err), &err);
    CHECK_EQ(c.port, 9200); /* flag over env */
    CHECK(strcmp(c.origin[3], "flag") == 0);
    CHECK_OK(mp_serve_config_apply_env(&c, NULL, &err), &err);

    char *bad_env[] = {"MAGPIE_MAX_BODY=lots", NULL};
    CHECK_EQ(mp_serve_config_apply_env(&c, bad_env, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "environment variable MAGPIE_MAX_BODY: setting `max_body`: expected a size");
    CHECK_EQ(mp_serve_config_apply_env(&c, bad_env, NULL), MP_EINVAL);
    mp_serve_config_free(&c);
}

MP_TEST(serveconfig_key_lists) {
    mp_serve_config c;
    mp_error err;
    CHECK_OK(mp_serve_config_init(&c, &err), &err);
    CHECK_OK(mp_serve_config_set(&c, "read_keys", " alpha, beta ,,gamma,", "flag", &err), &err);
    CHECK_EQ(c.n_read_keys, 3);
    CHECK(strcmp(c.read_keys[0], "alpha") == 0);
    CHECK(strcmp(c.read_keys[1], "beta") == 0);
    CHECK(strcmp(c.read_keys[2], "gamma") == 0);
    CHECK(c.read_keys[3] == NULL);
    /* a later set replaces the whole list */
    CHECK_OK(mp_serve_config_set(&c, "read_keys", "delta", "flag", &err), &err);
    CHECK_EQ(c.n_read_keys, 1);
    CHECK(strcmp(c.read_keys[0], "delta") == 0 && c.read_keys[1] == NULL);
    CHECK_OK(mp_serve_config_set(&c, "read_keys", " , ", "flag", &err), &err);
    CHECK_EQ(c.n_read_keys, 0);
    CHECK(c.read_keys[0] == NULL);
    /* keys with blanks, control characters or quotes inside are refused without echoing the secret */
    CHECK_OK(mp_serve_config_set(&c, "write_keys", "w1", "flag", &err), &err);
    CHECK_EQ(mp_serve_config_set(&c, "write_keys", "ok1,se cret", "flag", &err), MP_EINVAL);
    CHECK(!strstr(err.msg, "cret") && !strstr(err.msg, "ok1"));
    CHECK_CONTAINS(err.msg, "key 2 of the list");
    CHECK_EQ(mp_serve_config_set(&c, "write_keys", "a\tb", "flag", &err), MP_EINVAL);
    CHECK_EQ(mp_serve_config_set(&c, "write_keys", "a\"b", "flag", &err), MP_EINVAL);
    CHECK_EQ(c.n_write_keys, 1); /* unchanged */
    CHECK(strcmp(c.write_keys[0], "w1") == 0);
    mp_serve_config_free(&c);
}

MP_TEST(serveconfig_validate) {
    mp_serve_config c;
    mp_error err;
    CHECK_OK(mp_serve_config_init(&c, &err), &err);
    CHECK_OK(mp_serve_config_validate(&c, &err), &err);
    /* set accepts these values; validate refuses the combination */
    CHECK_OK(mp_serve_config_set(&c, "max_body", "0", "flag", &err), &err);
    CHECK_EQ(mp_serve_config_validate(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "max_body");
    CHECK_OK(mp_serve_config_set(&c, "max_body", "2g", "flag", &err), &err);
    CHECK_EQ(mp_serve_config_validate(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "magpie import");
    CHECK_OK(mp_serve_config_set(&c, "max_body", "1g", "flag", &err), &err);
    CHECK_OK(mp_serve_config_validate(&c, &err), &err);

    CHECK_OK(mp_serve_config_set(&c, "request_timeout", "0", "flag", &err), &err);
    CHECK_EQ(mp_serve_config_validate(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "request_timeout");
    CHECK_OK(mp_serve_config_set(&c, "request_timeout", "10s", "flag", &err), &err);
    CHECK_OK(mp_serve_config_set(&c, "idle_timeout", "0", "flag", &err), &err);
    CHECK_EQ(mp_serve_config_validate(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "idle_timeout");
    CHECK_OK(mp_serve_config_set(&c, "idle_timeout", "15s", "flag", &err), &err);

    CHECK_OK(mp_serve_config_set(&c, "retrain_every", "1h", "flag", &err), &err);
    CHECK_EQ(mp_serve_config_validate(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "needs `model`");
    CHECK_OK(mp_serve_config_set(&c, "model", "m.bin", "flag", &err), &err);
    CHECK_OK(mp_serve_config_validate(&c, &err), &err);
    CHECK_OK(mp_serve_config_set(&c, "retrain_every", "0", "flag", &err), &err);
    CHECK_OK(mp_serve_config_set(&c, "retrain_args", "--epochs 3", "flag", &err), &err);
    CHECK_EQ(mp_serve_config_validate(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "retrain_args");
    CHECK_OK(mp_serve_config_set(&c, "retrain_args", "", "flag", &err), &err);

    CHECK_OK(mp_serve_config_set(&c, "db", "", "flag", &err), &err);
    CHECK_EQ(mp_serve_config_validate(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "`db`");
    CHECK_OK(mp_serve_config_set(&c, "db", "x.db", "flag", &err), &err);
    CHECK_OK(mp_serve_config_validate(&c, &err), &err);

    /* fields changed directly (not through set) are still checked */
    c.port = 70000;
    CHECK_EQ(mp_serve_config_validate(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "`port`");
    c.port = 8080;
    c.ann[0] = 'x'; /* "auto" -> "xuto" */
    CHECK_EQ(mp_serve_config_validate(&c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "`ann`");
    mp_serve_config_free(&c);
}

MP_TEST(serveconfig_help_lists_everything) {
    char *h = help_text();
    CHECK(h);
    static const char *const keys[] = {
#define KEY_(field, type, key, def, help) key,
        MP_SERVE_SETTINGS(KEY_)
#undef KEY_
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char flag[80], env[80], keycol[80];
        snprintf(flag, sizeof flag, "--%s ", keys[i]);
        for (char *p = flag; *p; p++)
            if (*p == '_') *p = '-';
        snprintf(env, sizeof env, "MAGPIE_%s ", keys[i]);
        for (char *p = env; *p; p++)
            if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
        snprintf(keycol, sizeof keycol, " %s ", keys[i]);
        if (!strstr(h, flag) || !strstr(h, env) || !strstr(h, keycol)) {
            free(h);
            CHECK_MSG(0, "help lacks %s / %s / %s", flag, env, keycol);
        }
        CHECK_EQ(mp_serve_config_is_bool(keys[i]),
                 strcmp(keys[i], "access_log") == 0 || strcmp(keys[i], "dashboard") == 0 ||
                     strcmp(keys[i], "embed_items") == 0);
    }
    CHECK_CONTAINS(h, "default: 8m");
    CHECK_CONTAINS(h, "(0 to 65535)");
    CHECK_CONTAINS(h, "largest request body accepted (413 above)");
    /* no line is wider than 110 columns */
    size_t col = 0, widest = 0;
    for (const char *p = h; *p; p++) {
        col = *p == '\n' ? 0 : col + 1;
        if (col > widest) widest = col;
    }
    free(h);
    CHECK_MSG(widest <= 110, "widest help line: %zu columns", widest);
}

MP_TEST(serveconfig_print_redacts_and_round_trips) {
    mp_serve_config c, back = {0};
    mp_error err;
    CHECK_OK(mp_serve_config_init(&c, &err), &err);
    CHECK_OK(mp_serve_config_set(&c, "read_keys", "s3cr3t-read-1,s3cr3t-read-2", "env", &err), &err);
    CHECK_OK(mp_serve_config_set(&c, "write_keys", "s3cr3t-write", "flag", &err), &err);
    CHECK_OK(mp_serve_config_set(&c, "retrain_args", "--note \"a # b\" \\ end\ttab", "flag", &err), &err);
    CHECK_OK(mp_serve_config_set(&c, "max_body", "1536", "flag", &err), &err);
    CHECK_OK(mp_serve_config_set(&c, "idle_timeout", "90s", "flag", &err), &err);
    CHECK_OK(mp_serve_config_set(&c, "request_timeout", "1500ms", "flag", &err), &err);
    CHECK_OK(mp_serve_config_set(&c, "access_log", "on", "flag", &err), &err);
    char *s = print_text(&c);
    CHECK(s);
    int leaked = strstr(s, "s3cr3t") != NULL;
    if (leaked) free(s);
    CHECK_MSG(!leaked, "print shows a key");
    CHECK_CONTAINS(s, "read_keys = \"***,***\"");
    CHECK_CONTAINS(s, "write_keys = \"***\"");
    CHECK_CONTAINS(s, "port = 8080");
    CHECK_CONTAINS(s, "max_body = 1536 ");
    CHECK_CONTAINS(s, "idle_timeout = 90s ");
    CHECK_CONTAINS(s, "reload_poll = 2s ");
    CHECK_CONTAINS(s, "# default\n");
    CHECK_CONTAINS(s, "# env\n");
    CHECK_CONTAINS(s, "# flag\n");
    /* the printed file reads back to the same settings (keys aside) */
    int rc = load_text(t, "printed.conf", s, &back, &err);
    free(s);
    CHECK_OK(rc, &err);
    CHECK(strcmp(back.retrain_args, c.retrain_args) == 0);
    CHECK_EQ(back.max_body, 1536);
    CHECK_EQ(back.idle_timeout, 90000);
    CHECK_EQ(back.request_timeout, 1500);
    CHECK_EQ(back.access_log, 1);
    CHECK_EQ(back.dashboard, 1);
    CHECK_EQ(back.port, 8080);
    CHECK(strcmp(back.db, "magpie.db") == 0);
    CHECK_EQ(back.n_read_keys, 2);
    mp_serve_config_free(&back);
    mp_serve_config_free(&c);
}

MP_TEST(serveconfig_key_of_flag) {
    CHECK(strcmp(mp_serve_config_key_of_flag("max-body"), "max_body") == 0);
    CHECK(strcmp(mp_serve_config_key_of_flag("max_body"), "max_body") == 0);
    CHECK(strcmp(mp_serve_config_key_of_flag("ann-ef-construction"), "ann_ef_construction") == 0);
    CHECK(strcmp(mp_serve_config_key_of_flag("port"), "port") == 0);
    CHECK(mp_serve_config_key_of_flag("max-bod") == NULL);
    CHECK(mp_serve_config_key_of_flag("max-body-") == NULL);
    CHECK(mp_serve_config_key_of_flag("") == NULL);
    CHECK(mp_serve_config_key_of_flag(NULL) == NULL);
    CHECK(mp_serve_config_key_of_flag("config") == NULL);
    CHECK(mp_serve_config_is_bool("dashboard"));
    CHECK(!mp_serve_config_is_bool("port"));
    CHECK(!mp_serve_config_is_bool("nope"));
}

MP_TEST(serveconfig_key_equal) {
    CHECK_EQ(mp_serve_key_equal("secret", 6, "secret"), 1);
    CHECK_EQ(mp_serve_key_equal("secre", 5, "secret"), 0);   /* prefix */
    CHECK_EQ(mp_serve_key_equal("secrets", 7, "secret"), 0); /* longer */
    CHECK_EQ(mp_serve_key_equal("secret", 6, "secrets"), 0); /* configured longer */
    CHECK_EQ(mp_serve_key_equal("", 0, "secret"), 0);        /* empty presented */
    CHECK_EQ(mp_serve_key_equal(NULL, 0, "secret"), 0);
    CHECK_EQ(mp_serve_key_equal("", 0, ""), 0); /* an empty configured key never matches */
    CHECK_EQ(mp_serve_key_equal("x", 1, ""), 0);
    CHECK_EQ(mp_serve_key_equal("x", 1, NULL), 0);
    CHECK_EQ(mp_serve_key_equal("secret\0", 7, "secret"), 0);  /* embedded NUL: longer */
    CHECK_EQ(mp_serve_key_equal("secretXYZ", 6, "secret"), 1); /* only presented_len bytes count */
    CHECK_EQ(mp_serve_key_equal("s", 1, "s"), 1);
    /* one differing byte anywhere, including a high-bit byte */
    char key[] = "0123456789abcdefABCDEF";
    size_t n = strlen(key);
    for (size_t i = 0; i < n; i++) {
        char p[32];
        memcpy(p, key, n);
        p[i] = (char)(p[i] ^ 0x80);
        CHECK_EQ(mp_serve_key_equal(p, n, key), 0);
        p[i] = (char)(key[i] ^ 1);
        CHECK_EQ(mp_serve_key_equal(p, n, key), 0);
        CHECK_EQ(mp_serve_key_equal(key, i, key), 0);
    }
    CHECK_EQ(mp_serve_key_equal(key, n, key), 1);
}
