/* magpie/progress.h: how long library work reports progress. The library only calls the callback;
 * what is shown (a terminal bar, log lines, nothing) is the caller's choice. */
#ifndef MAGPIE_PROGRESS_H
#define MAGPIE_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

typedef struct mp_progress {
    /* Called with the stage name ("import", "load", "fit"), units done, total (0 if unknown) and what is counted
     * (MP_PROGRESS_BYTES, or NULL for records/items/users). Called at most every few thousand units;
     * done == total marks the end of a stage. */
    void (*update)(void *ctx, const char *stage, uint64_t done, uint64_t total, const char *unit);
    void *ctx; /* passed back to update */
} mp_progress;

#define MP_PROGRESS_BYTES "bytes"

/* Calls p->update if p and p->update are set; counts records (or whatever the stage works through). */
static inline void mp_progress_report(const mp_progress *p, const char *stage, uint64_t done, uint64_t total) {
    if (p && p->update) p->update(p->ctx, stage, done, total, NULL);
}

/* The same for stages that count bytes of input. */
static inline void mp_progress_report_bytes(const mp_progress *p, const char *stage, uint64_t done, uint64_t total) {
    if (p && p->update) p->update(p->ctx, stage, done, total, MP_PROGRESS_BYTES);
}

#endif
