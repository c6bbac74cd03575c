/* src/live/util.c: small helpers of the live module that touch no live state (the clock, id checks); arrays grow
 * with core's mp_grow (magpie/buf.h).
 * A leaf: it calls no other file of the module, so every file may call it without a reference loop. */
#include <stdlib.h>
#include <time.h>

#include "live/live_internal.h"
#include "magpie/records.h"

int64_t live_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *live_id_problem(const char *id, size_t len) {
    if (!id || len == 0) return "id must not be empty";
    if (len > MP_MAX_ID_BYTES) return "id is longer than 256 bytes";
    if (!mp_utf8_valid(id, len, NULL)) return "id is not valid UTF-8";
    return NULL;
}
