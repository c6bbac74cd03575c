/* magpie/strmap.h: string -> dense uint32 id map (open addressing, keys copied into an owned arena).
 * Used for external-id -> internal-id maps. Ids are assigned 0, 1, 2, ... in insertion order, so
 * mp_strmap_key(map, id) inverts the map.
 * Thread safety: get, key, size and id_bound only read, so they may run concurrently with each other on one map;
 * intern and put (which may grow the table) must not run concurrently with any other call on the same map. */
#ifndef MAGPIE_STRMAP_H
#define MAGPIE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/error.h"

typedef struct mp_strmap mp_strmap;

#define MP_STRMAP_NONE UINT32_MAX

/* Creates an empty map sized for about `expected` keys; *out is NULL on failure.
 * Errors: MP_ENOMEM. */
MP_EXPORT int mp_strmap_create(mp_strmap **out, size_t expected);
/* Frees the map and all keys. NULL is a no-op. */
MP_EXPORT void mp_strmap_destroy(mp_strmap *map);
/* Id of key, or MP_STRMAP_NONE. */
MP_EXPORT uint32_t mp_strmap_get(const mp_strmap *map, const char *key, size_t len);
/* Id of key, inserting it with the next id if absent. *inserted (may be NULL) tells which.
 * Errors: MP_ENOMEM. */
MP_EXPORT int mp_strmap_intern(mp_strmap *map, const char *key, size_t len, uint32_t *id, int *inserted);
/* Inserts key with an explicit id (for loading a map whose ids come from elsewhere, e.g. the store).
 * Ids need not be dense; mp_strmap_key works for them.
 * Errors: MP_EINVAL (the key exists, the id is already taken, or id == MP_STRMAP_NONE), MP_ENOMEM. */
MP_EXPORT int mp_strmap_put(mp_strmap *map, const char *key, size_t len, uint32_t id);
/* The key stored for id (NUL-terminated, owned by the map, valid until destroy), or NULL. *len may be NULL. */
MP_EXPORT const char *mp_strmap_key(const mp_strmap *map, uint32_t id, size_t *len);
/* Number of keys. */
MP_EXPORT size_t mp_strmap_size(const mp_strmap *map);
/* One past the largest id in the map (== size for maps filled by intern only). */
MP_EXPORT uint32_t mp_strmap_id_bound(const mp_strmap *map);

/* 64-bit FNV-1a followed by a mixer; stable across runs and machines. */
MP_EXPORT uint64_t mp_hash_bytes(const void *data, size_t len);

#endif
