/* magpie/dataset.h: the in-memory training view of a store: events with dense ids, item metadata, and
 * CSR/CSC interaction matrices built with per-type weights and optional time decay. */
#ifndef MAGPIE_DATASET_H
#define MAGPIE_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/progress.h"
#include "magpie/records.h"
#include "magpie/store.h"

/* One event without its text; 24 bytes. */
typedef struct mp_interaction {
    uint32_t user, item;
    int64_t ts;
    float value;       /* rating value (when has_value) */
    uint8_t type;      /* mp_event_type */
    uint8_t has_value;
    int16_t grade;     /* graded feedback: 0 = none; otherwise the event's weight is multiplied by grade / 32767
                          (in [-1, 1]; set from review sentiment by mp_dataset_load_opts, see mp_interaction_grade) */
} mp_interaction;

/* The grade encoding of a multiplier m in [-1, 1] (clamped); m == 0 is stored as the smallest positive grade so
 * that it is not read as "none". */
static inline int16_t mp_interaction_grade(double m) {
    if (!(m >= -1)) m = -1; /* also NaN */
    if (m > 1) m = 1;
    long g = (long)(m * 32767.0 + (m >= 0 ? 0.5 : -0.5));
    return (int16_t)(g == 0 ? 1 : g);
}

typedef struct mp_dataset {
    uint32_t n_users, n_items;   /* bounds of internal ids (store ids < bound) */
    mp_interaction *events;      /* [n_events], sorted by (user, ts, store order) */
    size_t n_events;
    uint64_t *user_ptr;          /* [n_users + 1]: events of user u are events[user_ptr[u] .. user_ptr[u+1]) */
    char **user_ext;             /* [n_users] external ids (NULL for unused ids) */
    char **item_ext;             /* [n_items] external ids */
    char **item_title;           /* [n_items] titles or NULL */
    char **item_description;     /* [n_items] descriptions or NULL */
    char **item_brand;           /* [n_items] brands or NULL */
    double *item_price;          /* [n_items] prices, NaN = unknown */
    uint32_t *item_category;     /* [n_items] category index into category_names; 0 = "(none)" */
    char **category_names;       /* [n_categories]; [0] is "(none)"; full path "Beauty > Skin Care" */
    uint32_t n_categories;
    uint8_t *item_available;     /* [n_items] 1 if available */
    int64_t ts_min, ts_max;
} mp_dataset;

/* Loads everything needed for training from the store: all events (without text), item ids, titles, categories
 * (each distinct category path gets an index; 0 = "(none)" for items without one) and availability, and user ids.
 * n_users / n_items are one past the largest id seen in any scan. Reports progress as stage "load".
 * *out is owned by the caller (mp_dataset_destroy); every array in it is owned by the dataset. */
MP_EXPORT int mp_dataset_load(mp_dataset **out, mp_store *s, const mp_progress *progress, mp_error *err);
/* Grades the text of one review: MP_OK with *grade in [-1, 1] (e.g. 2 p(positive) - 1 from a sentiment classifier),
 * or any other code to leave that event its plain weight (text the grader cannot read). `state` is the
 * review_grader_state of the options. Called on the loading thread only, once per review or rating event with text,
 * while mp_dataset_load_opts runs; text[0..len) is valid for the call only. textclf.h provides one over a
 * classifier (mp_textclf_review_grader). */
typedef int (*mp_review_grader)(void *state, const char *text, size_t len, double *grade);

/* Options of mp_dataset_load_opts. Zeroed = mp_dataset_load. */
typedef struct mp_dataset_opts {
    /* Review sentiment as graded feedback: with a grader, every review event, and every rating event with text,
     * gets grade mp_interaction_grade(g) of the grader's g (see mp_interaction.grade), so its weight is type weight
     * x g and a negative review becomes negative feedback. Events without text keep their weight. */
    mp_review_grader review_grader; /* NULL: no grading */
    void *review_grader_state;      /* passed to review_grader; borrowed for the call */
} mp_dataset_opts;

/* mp_dataset_load with options (opts may be NULL). */
MP_EXPORT int mp_dataset_load_opts(mp_dataset **out, mp_store *s, const mp_dataset_opts *opts,
                                   const mp_progress *progress, mp_error *err);
/* Builds a dataset directly from arrays (for tests and presets without a store). Copies the events (any order:
 * they are sorted by (user, ts) stably); external ids and titles are NULL, every item is in category 0 "(none)"
 * and available. Ids out of range or unknown types: MP_EINVAL naming the event. *out as above. */
MP_EXPORT int mp_dataset_from_interactions(mp_dataset **out, uint32_t n_users, uint32_t n_items,
                                           const mp_interaction *events, size_t n_events, mp_error *err);
/* Frees the dataset and everything it owns; NULL is a no-op. */
MP_EXPORT void mp_dataset_destroy(mp_dataset *ds);

/* How events become matrix values. */
typedef struct mp_weighting {
    float type_weight[MP_EV_NTYPES]; /* weight per event type (defaults: mp_event_type_default_weight) */
    double half_life_days;           /* > 0: weight *= 0.5^((now - ts) / half_life); 0: no decay */
    int64_t now;                     /* reference time for decay (usually the latest ts) */
    int binary;                      /* 1: every positive (user, item) total becomes 1 */
} mp_weighting;

/* Type weights from mp_event_type_default_weight, no decay, now = 0, not binary. */
MP_EXPORT void mp_weighting_default(mp_weighting *w);
/* Parses "view=1,click=2,purchase=8" into w (types not named keep their weight). MP_EINVAL with a message;
 * w is unchanged on error. */
MP_EXPORT int mp_weighting_parse(mp_weighting *w, const char *spec, mp_error *err);

/* Compressed sparse rows: row r has columns idx[ptr[r] .. ptr[r+1]) (ascending) with values val[...]. */
typedef struct mp_csr {
    uint32_t n_rows, n_cols;
    uint64_t *ptr; /* [n_rows + 1] */
    uint32_t *idx; /* [nnz] */
    float *val;    /* [nnz] */
} mp_csr;

static inline uint64_t mp_csr_nnz(const mp_csr *m) { return m->ptr ? m->ptr[m->n_rows] : 0; }

/* Builds the user x item matrix: value = sum of weighted events per (user, item); pairs whose total is <= 0
 * (negative feedback outweighs positive) are dropped. Event weight = type_weight[type] * 0.5^(age / half_life)
 * (times grade / 32767 for graded events)
 * with age = max(0, now - ts) (events after `now` are not boosted). w NULL: defaults. Events may be in any order;
 * O(n_events + n_users + n_items) via two counting-sort passes. *out (caller-owned struct) gets arrays it owns:
 * mp_csr_free. On error *out is zeroed. */
MP_EXPORT int mp_csr_build(mp_csr *out, const mp_interaction *events, size_t n_events, uint32_t n_users,
                           uint32_t n_items, const mp_weighting *w, mp_error *err);
/* out = transpose(in) (CSC view of in as CSR of the transpose); rows of out have ascending columns.
 * Arrays of *out are owned by it (mp_csr_free). */
MP_EXPORT int mp_csr_transpose(mp_csr *out, const mp_csr *in, mp_error *err);
/* Frees the arrays; the struct is caller-owned. Zeroed structs are fine. */
MP_EXPORT void mp_csr_free(mp_csr *m);

#endif
