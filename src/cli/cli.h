/* src/cli/cli.h: shared pieces of the `magpie` subcommands. Each subcommand lives in cmd_<name>.c and is
 * listed in main.c. Conventions: options via getopt_long, `--help` prints usage to stdout and returns 0,
 * errors go to stderr as "magpie <cmd>: message", exit codes 0 ok, 1 failure, 2 usage error. */
#ifndef MAGPIE_CLI_H
#define MAGPIE_CLI_H

#include <stdio.h>

#include "magpie/progress.h"
#include "magpie/store.h"

int cmd_import(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_gen_demo(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_recommend(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_textclf(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_ope(int argc, char **argv);
int cmd_abtest(int argc, char **argv);
int cmd_simulate(int argc, char **argv);

/* Default store path: $MAGPIE_DB or "magpie.db". */
const char *cli_default_db(void);

/* Terminal progress: a bar with rate and ETA when stderr is a terminal, plain log lines every ~2 s otherwise,
 * nothing with quiet. */
typedef struct cli_progress {
    int quiet, tty;
    double start, last_print, stage_start;
    char stage[32];
    mp_progress iface; /* pass &p.iface to library calls */
} cli_progress;

void cli_progress_init(cli_progress *p, int quiet);
/* Ends an unfinished bar line. */
void cli_progress_done(cli_progress *p);

/* Log line to stderr, suppressed by quiet. */
void cli_log(int quiet, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Error line to stderr: "magpie CMD: message". Returns 1. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Usage error: message plus "see magpie CMD --help". Returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

double cli_now(void);

/* The options that choose a split, shared by `eval` and `tune`: --protocol --ratio --share --cutoff --seed
 * --min-events --folds --fold. */
typedef struct cli_split_args {
    const char *protocol;      /* "loo" unless given */
    double ratio, share;       /* -1: the split's default */
    int64_t cutoff;            /* 0: none */
    unsigned long long seed;   /* 42 unless given */
    long long min_events, folds, fold; /* -1: the split's default */
} cli_split_args;

void cli_split_args_init(cli_split_args *a);
/* Takes the value of split option `name` (long name without dashes). Returns 0 when taken, 2 after printing a
 * usage error. */
int cli_split_arg(const char *cmd, const char *name, const char *value, cli_split_args *a);
/* Turns the arguments into split options (with_valid left 0 for the caller to set). Returns 0, or 2 after printing
 * a usage error (unknown protocol, --folds/--fold without kfold, --fold out of range). */
struct mp_split_opts;
int cli_split_opts_build(const char *cmd, const cli_split_args *a, struct mp_split_opts *so);

/* Opens the store at `db` read-only, loads its dataset (progress through prog) and closes the store again.
 * `purpose` completes "the store X has no events to ..." when it is empty. Prints the error and returns
 * non-zero on failure; on success *out is owned by the caller (mp_dataset_destroy). */
struct mp_dataset;
int cli_load_dataset(const char *cmd, const char *db, const char *purpose, cli_progress *prog,
                     struct mp_dataset **out);

/* Parses a non-negative integer / double option value; on error prints and returns non-zero. */
/* The models and their parameters for --help, from each model's descriptor table: "name=default  help" per
 * parameter; with `detail`, a second line per parameter with its bounds or choices and default tuning range.
 * `only` (may be NULL) lists just that model. */
void cli_print_models(FILE *f, const char *only, int detail);
int cli_parse_u64(const char *cmd, const char *opt, const char *s, unsigned long long *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double *out);

#endif
