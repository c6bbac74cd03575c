/* magpie/progress.h: how long library work reports progress. The library only calls the callback;
 * what is shown (a terminal bar, log lines, nothing) is the caller's choice. */
#ifndef MAGPIE_PROGRESS_H
#define MAGPIE_PROGRESS_H

#include <stdint.h>

typedef struct mp_progress {
    /* Called with the stage name ("parse", "commit", "fit"), units done, and total (0 if unknown).
     * Called at most every few thousand units; done == total marks the end of a stage. */
    void (*update)(void *ctx, const char *stage, uint64_t done, uint64_t total);
    void *ctx; /* passed back to update */
} mp_progress;

/* Calls p->update if p and p->update are set. */
static inline void mp_progress_report(const mp_progress *p, const char *stage, uint64_t done, uint64_t total) {
    if (p && p->update) p->update(p->ctx, stage, done, total);
}

#endif
