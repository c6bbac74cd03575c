/* tests/fuzz/seedgen.c: writes the seed corpus of the model-file fuzz target: one small model file for every
 * registered model (and a few parameter variants that change what the file holds), fitted on a tiny synthetic
 * shop with categories, titles, ratings and several event types.
 *
 * usage: seedgen OUT_DIR     (writes OUT_DIR/<model>-<variant>.model; exit 0 when every model was written) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/dataset.h"
#include "magpie/model.h"
#include "magpie/trainset.h"

#define N_USERS 24
#define N_ITEMS 16

/* Parameter variants per model: small and fast. Keys a model does not know are skipped. */
static const char *const k_variants[][4] = {
    /* model, variant name, params */
    {"pop", "default", "category_boost=0.5"},
    {"pop", "weighted", "weighted=1,half_life_days=3,window_days=0"},
    {"itemknn", "default", "k=5"},
    {"itemknn", "bm25", "k=3,weighting=bm25,input=weighted,recency=0"},
    {"als", "default", "factors=4,iterations=2,threads=1"},
    {"als", "cholesky", "factors=3,iterations=1,threads=1,solver=cholesky"},
    {"bpr", "default", "factors=4,epochs=2,threads=1"},
    {"bpr", "warp", "factors=3,epochs=1,threads=1,loss=warp,item_bias=0"},
    {"ease", "default", "lambda=10"},
    {"ease", "double", "lambda=5,precision=double,recency=0"},
    {"mf", "default", "factors=4,epochs=3,threads=1"},
    {"mf", "als", "factors=3,epochs=2,threads=1,solver=als"},
};

/* Applies "k=v,k=v" one key at a time, so that a key one model version lacks does not stop the rest. */
static void set_params(mp_model *m, const char *spec) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) continue;
        *eq = 0;
        mp_error err;
        if (mp_model_set_param(m, tok, eq + 1, &err) != MP_OK) fprintf(stderr, "seedgen: note: %s\n", err.msg);
    }
}

/* A deterministic little shop: users browse, some buy, a few rate. */
static size_t make_events(mp_interaction *ev) {
    size_t n = 0;
    uint32_t x = 12345;
    for (uint32_t u = 0; u < N_USERS; u++) {
        uint32_t k = 3 + u % 5;
        for (uint32_t j = 0; j < k; j++) {
            x = x * 1103515245u + 12345u;
            uint32_t item = (u * 3 + j * 5 + (x >> 16) % 4) % N_ITEMS;
            mp_interaction e = {.user = u, .item = item, .ts = 1735689600 + (int64_t)(u * 100 + j * 7) * 3600};
            e.type = (uint8_t)(j % 3 == 0 ? MP_EV_VIEW : j % 3 == 1 ? MP_EV_CART : MP_EV_PURCHASE);
            if ((u + j) % 4 == 0) {
                e.type = MP_EV_RATING;
                e.has_value = 1;
                e.value = (float)(1 + (u + item) % 5);
            }
            if ((u * 7 + j) % 23 == 0) e.type = MP_EV_DISLIKE;
            ev[n++] = e;
        }
    }
    return n;
}

/* Adds titles and a small category tree to the dataset (which owns them). */
static int decorate(mp_dataset *ds) {
    static const char *const cats[] = {"Beauty", "Beauty > Skin Care", "Home"};
    char **names = realloc(ds->category_names, 4 * sizeof *names);
    if (!names) return -1;
    ds->category_names = names;
    for (int c = 0; c < 3; c++) {
        names[1 + c] = strdup(cats[c]);
        if (!names[1 + c]) return -1;
        ds->n_categories++;
    }
    for (uint32_t i = 0; i < ds->n_items; i++) {
        char title[32];
        snprintf(title, sizeof title, "Item \"%u\" caf\xc3\xa9", i);
        ds->item_title[i] = i % 5 == 4 ? NULL : strdup(title);
        ds->item_category[i] = i % 4; /* 0 = (none) */
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: seedgen OUT_DIR\n");
        return 2;
    }
    mp_interaction ev[N_USERS * 8];
    size_t n = make_events(ev);
    mp_error err;
    mp_dataset *ds;
    if (mp_dataset_from_interactions(&ds, N_USERS, N_ITEMS, ev, n, &err) != MP_OK || decorate(ds) != 0) {
        fprintf(stderr, "seedgen: dataset: %s\n", err.msg);
        return 1;
    }
    mp_train_set ts;
    memset(&ts, 0, sizeof ts);
    if (mp_train_set_build(&ts, ds, ds->events, ds->n_events, NULL, &err) != MP_OK) {
        fprintf(stderr, "seedgen: train set: %s\n", err.msg);
        mp_dataset_destroy(ds);
        return 1;
    }
    ts.data.n_threads = 1;
    int failed = 0;
    /* Every registered model must get at least one seed: a new model without a variant above gets defaults. */
    for (const mp_model_ops *const *ops = mp_model_registry(); *ops; ops++) {
        int have = 0;
        for (size_t v = 0; v < sizeof k_variants / sizeof *k_variants; v++)
            if (strcmp(k_variants[v][0], (*ops)->name) == 0) have = 1;
        size_t n_runs = sizeof k_variants / sizeof *k_variants + 1;
        for (size_t v = 0; v < n_runs; v++) {
            const char *variant, *spec;
            if (v + 1 == n_runs) {
                if (have) break;
                variant = "default";
                spec = "";
            } else {
                if (strcmp(k_variants[v][0], (*ops)->name) != 0) continue;
                variant = k_variants[v][1];
                spec = k_variants[v][2];
            }
            mp_model *m;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s-%s.model", argv[1], (*ops)->name, variant);
            int rc = mp_model_create(&m, (*ops)->name, &err);
            if (rc == MP_OK) {
                set_params(m, spec);
                rc = mp_model_fit(m, &ts.data, NULL, &err);
                if (rc == MP_OK) rc = mp_model_save(m, path, &err);
                mp_model_destroy(m);
            }
            if (rc != MP_OK) {
                fprintf(stderr, "seedgen: %s (%s): %s\n", (*ops)->name, variant, err.msg);
                failed = 1;
            }
        }
    }
    mp_train_set_free(&ts);
    mp_dataset_destroy(ds);
    return failed;
}
