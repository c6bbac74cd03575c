/* magpie recommend: top-N items with reasons for users of a store, from a saved model file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "magpie/dataset.h"
#include "magpie/json.h"
#include "magpie/live.h"
#include "magpie/model.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: magpie recommend --model MODEL_FILE (--user ID ... | --users N) [--n 10] [--category C]\n"
            "                        [--explain] [--json] [--allow-unknown] [--db PATH]\n\n"
            "Prints the top-N items for each user, best first, leaving out items the user already interacted\n"
            "with and items marked unavailable.\n\n"
            "options:\n"
            "  --model MODEL_FILE   a model file written by `magpie train`\n"
            "  --user ID            external user id (repeatable)\n"
            "  --users N            the first N users that have events\n"
            "  --n N                items per user (default 10)\n"
            "  --category C         only items of category C: a full path (\"Beauty > Skin Care\"), a leaf\n"
            "                       (\"Skin Care\") or a top level (\"Beauty\"); case-insensitive\n"
            "  --explain            add the reason for each item (\"popular in Skin Care this week\")\n"
            "  --json               one JSON object per user and line instead of text\n"
            "  --allow-unknown      for users not in the store, print popular items (labelled) instead of failing\n"
            "  --db PATH, --store URI  store: file or postgres:// URI (default: $MAGPIE_DB or ./magpie.db)\n"
            "  --help               show this help\n");
}

static void print_json_str(FILE *f, const char *s) {
    if (mp_json_write_str(f, s, s ? strlen(s) : 0) == MP_ENOMEM) fputs("\"\"", f);
}

typedef struct rec_ctx {
    const mp_model *m;
    const mp_dataset *ds;
    const uint8_t *allow;
    size_t n;
    int explain, json;
    uint32_t *items;
    float *scores;
} rec_ctx;

/* Prints one user's list. `ext` is the id as asked; `user` may be MP_NO_USER (unknown, popular items). */
static int recommend_one(const rec_ctx *c, const char *ext, uint32_t user, mp_error *err) {
    const mp_dataset *ds = c->ds;
    mp_user_ctx uc = {.user = MP_NO_USER};
    if (user != MP_NO_USER) {
        uc.user = user;
        uc.history = ds->events + ds->user_ptr[user];
        uc.n_history = (size_t)(ds->user_ptr[user + 1] - ds->user_ptr[user]);
    }
    size_t got;
    int rc = mp_model_recommend(c->m, &uc, c->n, NULL, 0, 1, c->allow, c->items, c->scores, &got, err);
    if (rc) return rc;
    if (c->json) {
        printf("{\"user\":");
        print_json_str(stdout, ext);
        printf(",\"known\":%s,\"history\":%zu,\"items\":[", user != MP_NO_USER ? "true" : "false", uc.n_history);
    } else if (user == MP_NO_USER) {
        printf("%s (unknown user: popular items)\n", ext);
    } else {
        printf("%s (%zu event%s in history)\n", ext, uc.n_history, uc.n_history == 1 ? "" : "s");
    }
    for (size_t k = 0; k < got; k++) {
        uint32_t it = c->items[k];
        const char *id = it < ds->n_items && ds->item_ext[it] ? ds->item_ext[it] : "?";
        const char *title = it < ds->n_items ? ds->item_title[it] : NULL;
        char why[512] = "";
        if (c->explain && mp_model_explain(c->m, &uc, it, why, sizeof why, err) != MP_OK) return err->code;
        if (c->json) {
            printf("%s{\"item\":", k ? "," : "");
            print_json_str(stdout, id);
            printf(",\"title\":");
            print_json_str(stdout, title);
            printf(",\"score\":%.6g", (double)c->scores[k]);
            if (c->explain) {
                printf(",\"reason\":");
                print_json_str(stdout, why);
            }
            printf("}");
        } else {
            printf("  %2zu. %-12s %-48s %10.4g%s%s\n", k + 1, id, title ? title : "", (double)c->scores[k],
                   c->explain ? "  " : "", why);
        }
    }
    if (c->json) printf("]}\n");
    else if (got == 0) printf("  (no items to recommend)\n");
    return MP_OK;
}

int cmd_recommend(int argc, char **argv) {
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'D'},      {"store", required_argument, NULL, 'D'},
        {"model", required_argument, NULL, 'M'},
        {"user", required_argument, NULL, 'u'},    {"users", required_argument, NULL, 'U'},
        {"n", required_argument, NULL, 'n'},       {"category", required_argument, NULL, 'c'},
        {"explain", no_argument, NULL, 'e'},       {"json", no_argument, NULL, 'j'},
        {"allow-unknown", no_argument, NULL, 'a'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "recommend";
    const char *db = cli_default_db(), *model_path = NULL, *category = NULL;
    const char **users = calloc((size_t)argc + 1, sizeof *users);
    if (!users) return cli_fail(cmd, "out of memory");
    size_t n_users = 0;
    unsigned long long first_n = 0, n = 10;
    int explain = 0, json = 0, allow_unknown = 0, have_first_n = 0, c;
    optind = 1;
    opterr = 0;
    int rc = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'D': db = optarg; break;
        case 'M': model_path = optarg; break;
        case 'u': users[n_users++] = optarg; break;
        case 'U':
            if (cli_parse_u64(cmd, "--users", optarg, &first_n)) rc = 2;
            have_first_n = 1;
            break;
        case 'n':
            if (cli_parse_u64(cmd, "--n", optarg, &n)) rc = 2;
            else if (n == 0 || n > 100000) rc = cli_usage_error(cmd, "--n: expected 1..100000");
            break;
        case 'c': category = optarg; break;
        case 'e': explain = 1; break;
        case 'j': json = 1; break;
        case 'a': allow_unknown = 1; break;
        case 'h':
            usage(stdout);
            free(users);
            return 0;
        case ':': rc = cli_usage_error(cmd, "option %s needs a value", argv[optind - 1]); break;
        default: rc = cli_usage_error(cmd, "unknown option %s", argv[optind - 1]); break;
        }
        if (rc) break;
    }
    if (!rc && optind < argc) rc = cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (!rc && !model_path) rc = cli_usage_error(cmd, "--model MODEL_FILE is required");
    if (!rc && !n_users && !have_first_n) rc = cli_usage_error(cmd, "say whom to recommend for: --user ID or --users N");
    if (!rc && n_users && have_first_n) rc = cli_usage_error(cmd, "use either --user or --users, not both");
    if (rc) {
        free(users);
        return rc;
    }

    mp_error err;
    mp_error_clear(&err);
    mp_model *m = NULL;
    if (mp_model_load(&m, model_path, &err)) {
        free(users);
        return cli_fail(cmd, "%s", err.msg);
    }
    struct stat st;
    const char *db_file = mp_store_uri_file(db); /* NULL for a server store: the open below reports it */
    if (db_file && stat(db_file, &st) != 0) {
        mp_model_destroy(m);
        free(users);
        return cli_fail(cmd, "no store at %s (pass --db PATH)", db);
    }
    mp_store *s = NULL;
    mp_dataset *ds = NULL;
    rc = mp_store_open(&s, db, MP_STORE_READONLY, &err);
    if (rc == MP_OK) rc = mp_dataset_load(&ds, s, NULL, &err);
    mp_store_close(s);
    if (rc) {
        mp_model_destroy(m);
        free(users);
        return cli_fail(cmd, "%s", err.msg);
    }
    uint32_t n_items = mp_model_n_items(m);
    uint8_t *allow = NULL;
    uint32_t *items = NULL;
    float *scores = NULL;
    if (n_items > ds->n_items) {
        rc = cli_fail(cmd, "the model %s covers %u items but the store %s has only %u: was it trained on another "
                           "store?",
                      model_path, n_items, db, ds->n_items);
        goto done;
    }
    allow = malloc(n_items ? n_items : 1);
    items = malloc(n * sizeof *items);
    scores = malloc(n * sizeof *scores);
    if (!allow || !items || !scores) {
        rc = cli_fail(cmd, "out of memory");
        goto done;
    }
    size_t n_allowed = 0;
    for (uint32_t i = 0; i < n_items; i++) {
        allow[i] = ds->item_ext[i] != NULL && ds->item_available[i];
        if (allow[i] && category) {
            uint32_t cat = ds->item_category[i];
            allow[i] = cat > 0 && cat < ds->n_categories && mp_live_category_matches(ds->category_names[cat], category);
        }
        n_allowed += allow[i];
    }
    if (category && n_allowed == 0) {
        int known = 0;
        for (uint32_t k = 1; k < ds->n_categories; k++)
            if (mp_live_category_matches(ds->category_names[k], category)) known = 1;
        if (!known) {
            fprintf(stderr, "magpie recommend: no category \"%s\" in %s; categories:", category, db);
            for (uint32_t k = 1; k < ds->n_categories && k <= 40; k++)
                fprintf(stderr, "%s \"%s\"", k > 1 ? "," : "", ds->category_names[k]);
            fputc('\n', stderr);
            rc = 1;
            goto done;
        }
    }

    rec_ctx ctx = {m, ds, allow, (size_t)n, explain, json, items, scores};
    if (have_first_n) {
        unsigned long long done_users = 0;
        for (uint32_t u = 0; u < ds->n_users && done_users < first_n; u++) {
            if (ds->user_ptr[u + 1] == ds->user_ptr[u] || !ds->user_ext[u]) continue;
            if (recommend_one(&ctx, ds->user_ext[u], u, &err)) {
                rc = cli_fail(cmd, "%s", err.msg);
                goto done;
            }
            done_users++;
        }
        if (done_users == 0) {
            rc = cli_fail(cmd, "the store %s has no users with events", db);
            goto done;
        }
    } else {
        for (size_t k = 0; k < n_users; k++) {
            uint32_t found = MP_NO_USER;
            for (uint32_t u = 0; u < ds->n_users; u++)
                if (ds->user_ext[u] && !strcmp(ds->user_ext[u], users[k])) {
                    found = u;
                    break;
                }
            if (found == MP_NO_USER && !allow_unknown) {
                rc = cli_fail(cmd, "unknown user \"%s\" (not in the store %s); use --allow-unknown to get popular "
                                   "items for unknown users",
                              users[k], db);
                goto done;
            }
            if (recommend_one(&ctx, users[k], found, &err)) {
                rc = cli_fail(cmd, "%s", err.msg);
                goto done;
            }
        }
    }
    rc = 0;
done:
    fflush(stdout);
    free(allow);
    free(items);
    free(scores);
    mp_dataset_destroy(ds);
    mp_model_destroy(m);
    free(users);
    return rc;
}
