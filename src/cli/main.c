/* The `magpie` command: git-style subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"gen-demo", cmd_gen_demo, "generate a deterministic synthetic shop (items, users, events, reviews)"},
    {"import", cmd_import, "validate and import events, items or users (JSONL/CSV, or a dataset preset)"},
    {"stats", cmd_stats, "counts per event type, users, items, time range and density of a store"},
    {"train", cmd_train, "train a model on a store and save it to a model file"},
    {"eval", cmd_eval, "split, train and evaluate a model offline (HR, NDCG, MAP, AUC, coverage, ...)"},
    {"tune", cmd_tune, "search a model's hyper-parameters on validation data, then report test metrics"},
    {"recommend", cmd_recommend, "top-N recommendations with reasons for users, from a model file"},
    {"serve", cmd_serve, "HTTP/JSON service: real-time events, recommendations, reload, metrics, dashboard"},
    {"search", cmd_search, "search the catalog (BM25 + embeddings), re-ranked by a user's model"},
    {"textclf", cmd_textclf, "train, apply and test a fastText-style text classifier (labels from text)"},
    {"embed", cmd_embed, "embed item texts with a text encoder (USE-Lite, OpenAI-compatible) and cache them"},
    {"ope", cmd_ope, "off-policy evaluation of a policy from logs with propensities (IPS, SNIPS, DR, ...)"},
    {"abtest", cmd_abtest, "A/B test analysis: lift with confidence intervals, sample sizes, A/A simulation"},
    {"simulate", cmd_simulate, "long-term shopper simulator: retention, purchases, coverage of policies (RL, bandits)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: magpie <command> [options]\n\n"
               "Magpie: a self-hosted recommendation engine.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun `magpie <command> --help` for a command's options.\n"
               "The store defaults to ./magpie.db (or $MAGPIE_DB); logs and progress go to stderr.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        if (argc > 2 && strcmp(argv[1], "help") == 0) {
            for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                if (!strcmp(argv[2], commands[i].name)) {
                    char *args[] = {argv[2], "--help", NULL};
                    return commands[i].fn(2, args);
                }
        }
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("magpie %s\n", MAGPIE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "magpie: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}
