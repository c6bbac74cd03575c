/* magpie/split.h: train / validation / test splits of a dataset's events. Every split is deterministic given
 * its seed. Parts are arrays of mp_interaction owned by the split.
 * Thread safety: every call only reads its inputs and writes its own outputs; calls may run concurrently, also on
 * one const mp_dataset, as long as no thread changes that dataset meanwhile. */
#ifndef MAGPIE_SPLIT_H
#define MAGPIE_SPLIT_H

#include "magpie/dataset.h"

typedef enum {
    MP_SPLIT_LEAVE_LAST,  /* per user: last item -> test, the one before -> validation, rest -> train */
    MP_SPLIT_TEMPORAL,    /* global cut-off time: before -> train, after -> test */
    MP_SPLIT_RATIO,       /* per user random ratio split, stratified (Microsoft Recommenders style) */
    MP_SPLIT_COLD_ITEM,   /* a share of items held out entirely: their events -> test */
    MP_SPLIT_COLD_USER,   /* a share of users held out entirely: their events -> test */
    MP_SPLIT_KFOLD,       /* events dealt into n_folds folds by a seeded permutation; fold `fold` -> test */
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
    uint32_t n_folds;      /* KFOLD: number of folds (default 5, at least 2) */
    uint32_t fold;         /* KFOLD: which fold is the test part, 0 .. n_folds - 1 (default 0) */
} mp_split_opts;

/* Defaults: seed 42, ratio 0.75, share 0.2, cutoff 0, min_events 3, with_valid 1 for LEAVE_LAST only, 5 folds,
 * fold 0. */
MP_EXPORT void mp_split_opts_default(mp_split_opts *o, mp_split_kind kind);
/* Parses "loo" (or "leave-last"), "temporal", "ratio", "cold-item", "cold-user", "kfold".
 * Errors: MP_EINVAL (s is NULL or not one of those names). */
MP_EXPORT int mp_split_kind_parse(const char *s, mp_split_kind *out);
/* "loo", "temporal", ...; static storage. */
MP_EXPORT const char *mp_split_kind_name(mp_split_kind k);

typedef struct mp_split {
    mp_interaction *train, *valid, *test; /* each sorted by (user, ts) */
    size_t n_train, n_valid, n_test;
    uint8_t *cold_item;                   /* [n_items] 1 if the item was held out (COLD_ITEM), else NULL */
    uint8_t *cold_user;                   /* [n_users] 1 if the user was held out (COLD_USER), else NULL */
    uint32_t n_users, n_items;
} mp_split;

/* Splits ds->events into out (caller-owned struct; the arrays it gets are owned by it: mp_split_free).
 * Every event lands in exactly one part; parts keep the (user, ts) order of ds->events.
 *
 * LEAVE_LAST: a user's distinct items are ordered by their last event; the last item is the test target, the
 *   one before is the validation target (with_valid); all events on a held-out item go to that part. Users with
 *   fewer than max(min_events, 2 + with_valid) distinct items keep everything in train. On sequence data (one
 *   event per item, ts = position) this is S3-Rec's "last item test, second-to-last valid, rest train".
 * TEMPORAL: events with ts >= cutoff go to test; with cutoff 0 the cut-off is the timestamp that leaves
 *   round(share * n) events at or after it (events tied with the cut-off all go to test, so the test share can be
 *   a little larger). with_valid: the same rule applied to the training events carves the latest share of them.
 * RATIO: per user, the distinct items are shuffled with the seeded generator and the first round(ratio * n)
 *   (round half to even, as Python) go to train, the rest to test, like Microsoft Recommenders'
 *   python_stratified_split but by item so one item is never in two parts. Users with 2+ items keep at least one
 *   item in train and one in test; users with a single item keep it in train. with_valid: the last
 *   round((1 - ratio) * n_train) of the train items go to validation (at least one stays in train).
 * COLD_ITEM / COLD_USER: round(share * active) of the items / users with events, chosen by a seeded shuffle, are
 *   held out entirely (all their events -> test; cold_item / cold_user marks them). No validation part
 *   (with_valid gives MP_EUNSUPPORTED). Cold users have no history at evaluation time.
 * KFOLD: the events (not users or items) are shuffled by a seeded permutation of 0..n-1 and dealt into n_folds
 *   contiguous chunks whose sizes differ by at most one (the first n % n_folds chunks get one more), as Surprise's
 *   KFold does; chunk `fold` is the test part, the rest train. The same seed and n_folds give the same chunks for
 *   every `fold`, so fold = 0 .. n_folds-1 together test every event exactly once (for "5-fold RMSE" on explicit
 *   ratings). with_valid: chunk (fold + 1) % n_folds is the validation part (needs n_folds >= 3). A user or item
 *   may appear in several parts, and so may an item a user rated twice.
 * On failure *out is zeroed (nothing to free).
 * Errors: MP_EINVAL (unknown kind; ratio or share not strictly between 0 and 1; KFOLD: n_folds outside 2..255,
 * fold >= n_folds, with_valid with fewer than 3 folds), MP_EUNSUPPORTED (with_valid on COLD_ITEM / COLD_USER),
 * MP_ERANGE (KFOLD on more than 2^32 - 1 events), MP_ENOMEM. */
MP_EXPORT int mp_split_make(const mp_dataset *ds, const mp_split_opts *o, mp_split *out, mp_error *err);
/* Frees the parts and masks and zeroes the struct; a zeroed struct is fine. */
MP_EXPORT void mp_split_free(mp_split *sp);

/* Merges two event arrays, each sorted by (user, ts), into a new array sorted by (user, ts) (ties: a first), e.g.
 * train + valid as the history at test time. *out is malloc'ed and owned by the caller (free).
 * Errors: MP_ENOMEM. */
MP_EXPORT int mp_split_merge(const mp_interaction *a, size_t na, const mp_interaction *b, size_t nb,
                             mp_interaction **out, size_t *n_out, mp_error *err);

/* Holds out the latest `share` (0 < share < 1) of each user's events as validation: per user with m events, the
 * last round(share * m) go to *valid (at most m - 1, so something stays in train; users with one event keep it).
 * `ev` must be sorted by (user, ts); both outputs keep that order. For `magpie train --valid-share`, where a model
 * fitted on every event still wants a validation part for early stopping. *train and *valid are malloc'ed and
 * owned by the caller (free).
 * Errors: MP_EINVAL (share not strictly between 0 and 1), MP_ENOMEM. */
MP_EXPORT int mp_split_user_tail(const mp_interaction *ev, size_t n, double share, mp_interaction **train,
                                 size_t *n_train, mp_interaction **valid, size_t *n_valid, mp_error *err);

#endif
