/* magpie serve: the HTTP/JSON recommendation service (see docs/api.md). Settings come from defaults, a config
 * file, MAGPIE_* environment variables and flags, in that order (src/serve/config.h). The main thread waits for
 * signals: SIGTERM / SIGINT stop the server after requests in flight, SIGHUP reloads the model; between signals it
 * watches the model file (reload when `magpie train` writes a new version) and runs the optional retrain
 * schedule. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "magpie/encoder.h"
#include "magpie/live.h"
#include "serve/config.h"
#include "serve/server.h"

extern char **environ;

static void usage(FILE *f) {
    /* one write at exit: `magpie serve --help | grep -q usage` must not die of SIGPIPE half-way */
    static char out_buf[1 << 16];
    if (f == stdout) setvbuf(stdout, out_buf, _IOFBF, sizeof out_buf);
    fprintf(f,
            "usage: magpie serve [--config FILE] [--SETTING VALUE ...] [--print-config | --routes]\n\n"
            "Serves recommendations over HTTP/JSON (API: docs/api.md): writes (events, items, users, the right\n"
            "to be forgotten), reads (recommend with reasons, anonymous sessions, similar, popular, history),\n"
            "/healthz, /readyz, /metrics (Prometheus) and a dashboard at /. Events change a user's next\n"
            "recommendations at once; a new model file written by `magpie train` is swapped in without a failed\n"
            "request (also on SIGHUP or POST /v1/admin/reload). SIGTERM or SIGINT stop it cleanly.\n"
            "Exploration (`bandit`, per request `policy=`), POST /v1/feedback, a serving log for `magpie ope`,\n"
            "shopper protection (caps, fatigue, MMR) and A/B variants (`ab_variants`) are set up below.\n\n"
            "Each setting can be given in the config file (key = value), as an environment variable and as a\n"
            "flag; later ones win: defaults < --config FILE (or $MAGPIE_CONFIG) < environment < flags.\n\n"
            "options:\n"
            "  --config FILE      read settings from FILE\n"
            "  --print-config     print the effective settings (keys redacted) and exit\n"
            "  --routes           print the endpoints (METHOD /PATH KEY QUERY-PARAMETERS) and exit\n"
            "  --help             show this help\n\n"
            "\n");
    mp_serve_config_help(f);
}

/* The settings given as flags, kept in order until the file and the environment are applied (flags win). */
typedef struct flag_set {
    const char **key, **value, **name; /* [n]; name: the flag as written, without "--" (length in name_len) */
    int *name_len;
    size_t n;
} flag_set;

/* Reads "--flag=value" / "--flag value" arguments (a bare boolean flag means true) into *fs, and --config, --help,
 * --print-config (print_config 1) and --routes (print_config 2). Returns 0, or 2 after a usage error. fs arrays
 * have room for argc entries. */
static int parse_flags(int argc, char **argv, flag_set *fs, const char **config_path, int *print_config, int *help) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
            continue;
        }
        if (!strcmp(a, "--print-config")) {
            *print_config = 1;
            continue;
        }
        if (!strcmp(a, "--routes")) {
            *print_config = 2;
            continue;
        }
        if (strncmp(a, "--", 2))
            return cli_usage_error("serve", "unexpected argument \"%s\" (settings are given as --name value)", a);
        char name[64];
        const char *eq = strchr(a + 2, '='), *value;
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nl >= sizeof name) return cli_usage_error("serve", "unknown option \"%s\"", a);
        memcpy(name, a + 2, nl);
        name[nl] = 0;
        int is_config = !strcmp(name, "config");
        const char *key = is_config ? NULL : mp_serve_config_key_of_flag(name);
        if (!is_config && !key) return cli_usage_error("serve", "unknown option \"--%s\"", name);
        int is_bool = key && mp_serve_config_is_bool(key);
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc && (!is_bool || strncmp(argv[i + 1], "--", 2))) {
            value = argv[++i];
        } else if (is_bool) {
            value = "true"; /* a bare boolean flag: --access-log */
        } else {
            return cli_usage_error("serve", "option --%s needs a value", name);
        }
        if (is_config) {
            *config_path = value;
            continue;
        }
        fs->key[fs->n] = key;
        fs->value[fs->n] = value;
        fs->name[fs->n] = a + 2;
        fs->name_len[fs->n] = (int)nl;
        fs->n++;
    }
    return 0;
}

static int set_flags(mp_serve_config *cfg, const flag_set *fs) {
    for (size_t i = 0; i < fs->n; i++) {
        mp_error err;
        mp_error_clear(&err);
        if (mp_serve_config_set(cfg, fs->key[i], fs->value[i], "flag", &err) != MP_OK)
            return cli_usage_error("serve", "--%.*s: %s", fs->name_len[i], fs->name[i], err.msg);
    }
    return 0;
}

/* Starts `magpie train` for the scheduled retrain; returns its pid or -1. */
static pid_t start_retrain(const mp_serve_config *cfg, const char *model_name) {
    char *args[64];
    int n = 0;
    char *copy = strdup(cfg->retrain_args ? cfg->retrain_args : "");
    if (!copy) return -1;
    args[n++] = "magpie";
    args[n++] = "train";
    args[n++] = "--db";
    args[n++] = cfg->db;
    args[n++] = "--model";
    args[n++] = (char *)model_name;
    args[n++] = "--out";
    args[n++] = cfg->model;
    args[n++] = "--quiet";
    char *save = NULL;
    for (char *t = strtok_r(copy, " \t", &save); t && n < 62; t = strtok_r(NULL, " \t", &save))
        args[n++] = t;
    args[n] = NULL;
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ);
    free(copy);
    if (rc != 0) {
        fprintf(stderr, "magpie serve: cannot start the scheduled retrain: %s\n", strerror(rc));
        return -1;
    }
    fprintf(stderr, "magpie serve: scheduled retrain started (pid %d)\n", (int)pid);
    return pid;
}

static void do_reload(mp_server *srv, mp_live *live, const char *why) {
    mp_error err;
    mp_error_clear(&err);
    double t0 = cli_now();
    int rc = mp_live_reload(live, NULL, &err);
    mp_server_note_model(srv, rc == MP_OK);
    if (rc != MP_OK) {
        fprintf(stderr, "magpie serve: reload (%s) failed, the previous model keeps serving: %s\n", why, err.msg);
        return;
    }
    mp_live_model_info mi;
    if (mp_live_model_info_get(live, &mi, &err) == MP_OK) {
        fprintf(stderr, "magpie serve: reloaded (%s): %s version %llu in %.2f s\n", why, mi.name,
                (unsigned long long)mi.version, cli_now() - t0);
        mp_live_model_info_free(&mi);
    }
}

int cmd_serve(int argc, char **argv) {
    mp_serve_config cfg;
    mp_error err;
    mp_error_clear(&err);
    if (mp_serve_config_init(&cfg, &err) != MP_OK) return cli_fail("serve", "%s", err.msg);
    const char *config_path = getenv("MAGPIE_CONFIG");
    int print_config = 0, help = 0, rc = 0;
    flag_set fs = {0};
    fs.key = calloc((size_t)argc, sizeof *fs.key);
    fs.value = calloc((size_t)argc, sizeof *fs.value);
    fs.name = calloc((size_t)argc, sizeof *fs.name);
    fs.name_len = calloc((size_t)argc, sizeof *fs.name_len);
    if (!fs.key || !fs.value || !fs.name || !fs.name_len) {
        rc = cli_fail("serve", "out of memory");
        goto out;
    }
    if ((rc = parse_flags(argc, argv, &fs, &config_path, &print_config, &help)) != 0) goto out;
    if (help) {
        usage(stdout);
        goto out;
    }
    if (print_config == 2) { /* --routes */
        mp_serve_print_routes(stdout);
        goto out;
    }
    if (config_path && *config_path && mp_serve_config_load_file(&cfg, config_path, &err) != MP_OK) {
        rc = cli_fail("serve", "%s", err.msg);
        goto out;
    }
    if (mp_serve_config_apply_env(&cfg, environ, &err) != MP_OK) {
        rc = cli_fail("serve", "%s", err.msg);
        goto out;
    }
    if ((rc = set_flags(&cfg, &fs)) != 0) goto out;
    if (mp_serve_config_validate(&cfg, &err) != MP_OK) {
        rc = cli_usage_error("serve", "%s", err.msg);
        goto out;
    }
    if (print_config) {
        mp_serve_config_print(&cfg, stdout);
        goto out;
    }
    if (cfg.n_read_keys == 0 && cfg.n_write_keys == 0 && strcmp(cfg.listen, "127.0.0.1"))
        fprintf(stderr, "magpie serve: warning: no API keys configured and listening on %s: anyone who can reach it "
                        "may write and delete\n",
                cfg.listen);

    /* Signals are taken by this thread only (sigtimedwait below); every thread started from here inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    mp_server *srv = NULL;
    if (mp_server_start(&srv, &cfg, &err) != MP_OK) {
        rc = cli_fail("serve", "%s", err.msg);
        goto out;
    }
    fprintf(stderr, "magpie serve: listening on http://%s:%u (loading %s%s%s)\n", cfg.listen,
            (unsigned)mp_server_port(srv), cfg.db, cfg.model[0] ? ", " : "", cfg.model);
    fflush(stderr);

    mp_live_opts lo;
    mp_live_opts_default(&lo);
    lo.db = cfg.db;
    lo.model_path = cfg.model[0] ? cfg.model : NULL;
    lo.ann = !strcmp(cfg.ann, "on") ? 1 : !strcmp(cfg.ann, "off") ? 0 : -1;
    lo.ann_min_items = (uint32_t)cfg.ann_min_items;
    lo.ann_M = (uint32_t)cfg.ann_m;
    lo.ann_ef_construction = (uint32_t)cfg.ann_ef_construction;
    lo.ann_ef_search = (uint32_t)cfg.ann_ef_search;
    struct mp_encoder *enc = NULL;
    char enc_warning[1024];
    if (mp_serve_open_encoder(&cfg, &enc, enc_warning, sizeof enc_warning, &err) != MP_OK) {
        mp_server_stop(srv);
        rc = cli_fail("serve", "%s", err.msg);
        goto out;
    }
    if (enc_warning[0]) fprintf(stderr, "magpie serve: warning: %s\n", enc_warning);
    lo.encoder = enc;
    lo.embed_missing = cfg.embed_items;
    cli_progress prog;
    cli_progress_init(&prog, 0);
    lo.progress = &prog.iface;
    mp_live *live = NULL;
    double t0 = cli_now();
    if (mp_live_open(&live, &lo, &err) != MP_OK) {
        cli_progress_done(&prog);
        mp_server_stop(srv);
        mp_encoder_free(enc);
        rc = cli_fail("serve", "%s", err.msg);
        goto out;
    }
    cli_progress_done(&prog);
    mp_server_set_live(srv, live);
    {
        mp_live_model_info mi;
        mp_live_stats st;
        mp_live_stats_get(live, &st);
        if (mp_live_model_info_get(live, &mi, &err) == MP_OK) {
            fprintf(stderr,
                    "magpie serve: ready in %.2f s: %llu users, %llu items, %llu events; model %s version %llu%s\n",
                    cli_now() - t0, (unsigned long long)st.n_users, (unsigned long long)st.n_items,
                    (unsigned long long)st.n_events, mi.name, (unsigned long long)mi.version,
                    mi.has_index ? " (HNSW index)" : "");
            mp_live_model_info_free(&mi);
        }
        fflush(stderr);
    }

    double last_poll = cli_now(), last_retrain = cli_now();
    pid_t retrain_pid = -1;
    for (;;) {
        struct timespec tick = {0, 200 * 1000 * 1000};
        siginfo_t si;
        int sig = sigtimedwait(&sigs, &si, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            fprintf(stderr, "magpie serve: %s received, stopping\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (sig == SIGHUP) do_reload(srv, live, "SIGHUP");
        if (retrain_pid > 0) {
            int status;
            if (waitpid(retrain_pid, &status, WNOHANG) == retrain_pid) {
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                    fprintf(stderr, "magpie serve: scheduled retrain failed (status %d)\n", status);
                retrain_pid = -1;
            }
        }
        double now = cli_now();
        if (cfg.reload_poll > 0 && cfg.model[0] && (now - last_poll) * 1000.0 >= (double)cfg.reload_poll) {
            last_poll = now;
            if (retrain_pid < 0 && mp_live_model_changed(live)) do_reload(srv, live, "model file changed");
        }
        if (cfg.retrain_every > 0 && cfg.model[0] && retrain_pid < 0 &&
            (now - last_retrain) * 1000.0 >= (double)cfg.retrain_every) {
            last_retrain = now;
            mp_live_model_info mi;
            if (mp_live_model_info_get(live, &mi, &err) == MP_OK) {
                retrain_pid = start_retrain(&cfg, strcmp(mi.name, "pop") && mi.name[0] ? mi.name : "pop");
                mp_live_model_info_free(&mi);
            }
        }
    }
    if (retrain_pid > 0) {
        kill(retrain_pid, SIGTERM);
        waitpid(retrain_pid, NULL, 0);
    }
    mp_server_stop(srv); /* waits for requests in flight */
    mp_live_close(live);
    mp_encoder_free(enc);
    fprintf(stderr, "magpie serve: stopped\n");
out:
    free(fs.key);
    free(fs.value);
    free(fs.name);
    free(fs.name_len);
    mp_serve_config_free(&cfg);
    return rc;
}
