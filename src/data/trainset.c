/* src/data/trainset.c: training input (mp_train_data) from a set of events plus the dataset's item metadata. */
#include <string.h>

#include "magpie/trainset.h"

void mp_train_set_free(mp_train_set *ts) {
    if (!ts) return;
    mp_csr_free(&ts->ui);
    mp_csr_free(&ts->iu);
    memset(ts, 0, sizeof *ts);
}

int mp_train_set_build(mp_train_set *ts, const mp_dataset *ds, const mp_interaction *events, size_t n,
                       const mp_weighting *w, mp_error *err) {
    memset(ts, 0, sizeof *ts);
    int64_t latest = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || events[i].ts > latest) latest = events[i].ts;
    if (w) ts->weighting = *w;
    else mp_weighting_default(&ts->weighting);
    /* A weighting without a reference time decays from the latest training event. */
    if (ts->weighting.now == 0) ts->weighting.now = latest;

    int rc = mp_csr_build(&ts->ui, events, n, ds->n_users, ds->n_items, &ts->weighting, err);
    if (rc != MP_OK) {
        mp_train_set_free(ts);
        return mp_error_prefix(err, "building the training matrix");
    }
    rc = mp_csr_transpose(&ts->iu, &ts->ui, err);
    if (rc != MP_OK) {
        mp_train_set_free(ts);
        return mp_error_prefix(err, "building the training matrix");
    }
    mp_train_data *d = &ts->data;
    d->n_users = ds->n_users;
    d->n_items = ds->n_items;
    d->events = events;
    d->n_events = n;
    d->ui = &ts->ui;
    d->iu = &ts->iu;
    d->weighting = &ts->weighting;
    d->item_category = ds->item_category;
    d->category_names = (const char *const *)ds->category_names;
    d->n_categories = ds->n_categories;
    d->item_titles = (const char *const *)ds->item_title;
    d->now = latest;
    return MP_OK;
}
