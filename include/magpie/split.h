/* magpie/split.h: train / validation / test splits of a dataset's events. Every split is deterministic given
 * its seed. Parts are arrays of mp_interaction owned by the split. */
#ifndef MAGPIE_SPLIT_H
#define MAGPIE_SPLIT_H

#include "magpie/dataset.h"

typedef enum {
    MP_SPLIT_LEAVE_LAST,  /* per user: last item -> test, the one before -> validation, rest -> train */
    MP_SPLIT_TEMPORAL,    /* global cut-off time: before -> train, after -> test */
    MP_SPLIT_RATIO,       /* per user random ratio split, stratified (Microsoft Recommenders style) */
    MP_SPLIT_COLD_ITEM,   /* a share of items held out entirely: their events -> test */
    MP_SPLIT_COLD_USER,   /* a share of users held out entirely: their events -> test */
} mp_split_kind;

typedef struct mp_split_opts {
    mp_split_kind kind;
    uint64_t seed;
    double ratio;          /* RATIO: train share per user (default 0.75) */
    double share;          /* COLD_*: held-out share of items / users (default 0.2);
                              TEMPORAL: share of events (by time) for test when cutoff == 0 (default 0.2) */
    int64_t cutoff;        /* TEMPORAL: events with ts >= cutoff go to test; 0: use `share` */
    int with_valid;        /* LEAVE_LAST: hold out a validation item; RATIO/TEMPORAL: carve validation from train */
    uint32_t min_events;   /* LEAVE_LAST: users with fewer distinct items than this keep everything in train (3) */
} mp_split_opts;

MP_EXPORT void mp_split_opts_default(mp_split_opts *o, mp_split_kind kind);
/* Parses "loo", "temporal", "ratio", "cold-item", "cold-user". */
MP_EXPORT int mp_split_kind_parse(const char *s, mp_split_kind *out);

typedef struct mp_split {
    mp_interaction *train, *valid, *test; /* each sorted by (user, ts) */
    size_t n_train, n_valid, n_test;
    uint8_t *cold_item;                   /* [n_items] 1 if the item was held out (COLD_ITEM), else NULL */
    uint8_t *cold_user;                   /* [n_users] 1 if the user was held out (COLD_USER), else NULL */
    uint32_t n_users, n_items;
} mp_split;

/* Leave-last-one-out semantics: a user's items are ordered by their last event; the last item is the test
 * target, the one before is the validation target; all events on a held-out item go to that part. */
MP_EXPORT int mp_split_make(const mp_dataset *ds, const mp_split_opts *o, mp_split *out, mp_error *err);
MP_EXPORT void mp_split_free(mp_split *sp);

#endif
