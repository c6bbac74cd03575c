/* magpie/gen.h: the deterministic synthetic demo shop. Same options and seed give byte-identical files.
 * Shops have a category tree, brands, prices, English and Chinese titles, latent user tastes, view -> click ->
 * cart -> purchase funnels, and reviews with ratings. Files written into `dir`:
 *   items.jsonl, users.jsonl, and events.jsonl or events.csv (per opts.format).
 * Thread safety: mp_gen_demo keeps no shared state; calls writing into different directories may run concurrently
 * (the progress callback is called from the calling thread). */
#ifndef MAGPIE_GEN_H
#define MAGPIE_GEN_H

#include <stdint.h>

#include "magpie/progress.h"
#include "magpie/records.h"

typedef struct mp_gen_opts {
    uint32_t n_users;         /* default 1000 */
    uint32_t n_items;         /* default 500 */
    uint64_t seed;            /* default 42 */
    double sessions_per_user; /* mean sessions per user (default 4) */
    mp_format format;         /* events file format: JSONL (default) or CSV */
    int64_t start_ts;         /* first event time (default 2025-01-01T00:00:00Z) */
    uint32_t days;            /* time span of events (default 60) */
    uint64_t max_events;      /* stop after this many events (0 = no limit) */
} mp_gen_opts;

typedef struct mp_gen_report {
    uint64_t n_events, n_users, n_items, n_reviews;
    uint64_t per_type[MP_EV_NTYPES];
} mp_gen_report;

MP_EXPORT void mp_gen_opts_default(mp_gen_opts *o);
/* Creates `dir` if needed and writes the files. opts NULL: the defaults; rep may be NULL. A failed call may leave
 * some of the files written.
 * Errors: MP_EINVAL (no users or items, sessions per user outside 0..500, days outside 1..36500, empty or over-long
 * `dir`), MP_EIO (a directory or file cannot be created, `dir` is not a directory, a write failed), MP_ENOMEM. */
MP_EXPORT int mp_gen_demo(const char *dir, const mp_gen_opts *opts, const mp_progress *progress, mp_gen_report *rep,
                          mp_error *err);

#endif
