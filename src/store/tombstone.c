/* src/store/tombstone.c: the tombstone test, in a file of its own because both the dispatcher (store.c) and the
 * backends (sqlite.c) use it: kept in store.c it made store.o and sqlite.o call each other. */
#include "magpie/store.h"

int mp_store_is_tombstone(const char *ext, size_t len) {
    return ext && len > 0 && (unsigned char)ext[0] == 0xFF;
}
