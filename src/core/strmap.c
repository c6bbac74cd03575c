#include "magpie/strmap.h"

#include <stdlib.h>
#include <string.h>

/* Keys live in large chunks that never move, so key pointers stay valid as the map grows. */
typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
} chunk;

typedef struct slot {
    uint64_t hash; /* full hash; 0 marks an empty slot (real hashes are forced non-zero) */
    uint32_t id;
} slot;

struct mp_strmap {
    slot *slots;          /* open-addressed table, capacity a power of two */
    size_t cap, size;     /* slot count, number of keys */
    const char **keys;    /* keys[id] -> arena string (NULL for ids never used) */
    uint32_t *lens;       /* lens[id] = key length */
    size_t keys_cap;      /* allocated length of keys/lens */
    uint32_t id_bound;    /* one past the largest id */
    chunk *arena;         /* newest chunk first */
};

uint64_t mp_hash_bytes(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ull;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h ^= w;
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h ? h : 1;
}

int mp_strmap_create(mp_strmap **out, size_t expected) {
    *out = NULL;
    mp_strmap *m = calloc(1, sizeof *m);
    if (!m) return MP_ENOMEM;
    size_t cap = 16;
    while (cap < expected * 2) cap <<= 1;
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return MP_ENOMEM;
    }
    m->cap = cap;
    *out = m;
    return MP_OK;
}

void mp_strmap_destroy(mp_strmap *m) {
    if (!m) return;
    chunk *c = m->arena;
    while (c) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
    free(m->slots);
    free(m->keys);
    free(m->lens);
    free(m);
}

static const char *arena_copy(mp_strmap *m, const char *key, size_t len) {
    if (!m->arena || m->arena->cap - m->arena->used < len + 1) {
        size_t cap = len + 1 > (1u << 20) ? len + 1 : (1u << 20);
        chunk *c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = m->arena;
        c->used = 0;
        c->cap = cap;
        m->arena = c;
    }
    char *dst = m->arena->data + m->arena->used;
    memcpy(dst, key, len);
    dst[len] = '\0';
    m->arena->used += len + 1;
    return dst;
}

static size_t find_slot(const mp_strmap *m, uint64_t h, const char *key, size_t len, int *found) {
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    for (;;) {
        const slot *s = &m->slots[i];
        if (s->hash == 0) {
            *found = 0;
            return i;
        }
        if (s->hash == h && m->lens[s->id] == len && memcmp(m->keys[s->id], key, len) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int grow_table(mp_strmap *m) {
    size_t ncap = m->cap * 2;
    slot *ns = calloc(ncap, sizeof *ns);
    if (!ns) return MP_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        slot s = m->slots[i];
        if (!s.hash) continue;
        size_t j = (size_t)s.hash & (ncap - 1);
        while (ns[j].hash) j = (j + 1) & (ncap - 1);
        ns[j] = s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return MP_OK;
}

static int ensure_keys(mp_strmap *m, uint32_t id) {
    if (id < m->keys_cap) return MP_OK;
    size_t ncap = m->keys_cap ? m->keys_cap : 64;
    while (ncap <= id) ncap *= 2;
    const char **nk = realloc(m->keys, ncap * sizeof *nk);
    if (!nk) return MP_ENOMEM;
    m->keys = nk;
    uint32_t *nl = realloc(m->lens, ncap * sizeof *nl);
    if (!nl) return MP_ENOMEM;
    m->lens = nl;
    for (size_t i = m->keys_cap; i < ncap; i++) {
        m->keys[i] = NULL;
        m->lens[i] = 0;
    }
    m->keys_cap = ncap;
    return MP_OK;
}

uint32_t mp_strmap_get(const mp_strmap *m, const char *key, size_t len) {
    int found;
    size_t i = find_slot(m, mp_hash_bytes(key, len), key, len, &found);
    return found ? m->slots[i].id : MP_STRMAP_NONE;
}

static int insert_new(mp_strmap *m, uint64_t h, const char *key, size_t len, uint32_t id) {
    if ((m->size + 1) * 4 > m->cap * 3) {
        int rc = grow_table(m);
        if (rc) return rc;
    }
    int rc = ensure_keys(m, id);
    if (rc) return rc;
    const char *copy = arena_copy(m, key, len);
    if (!copy) return MP_ENOMEM;
    int found;
    size_t i = find_slot(m, h, key, len, &found);
    m->keys[id] = copy;
    m->lens[id] = (uint32_t)len;
    m->slots[i].hash = h;
    m->slots[i].id = id;
    m->size++;
    if (id + 1 > m->id_bound) m->id_bound = id + 1;
    return MP_OK;
}

int mp_strmap_intern(mp_strmap *m, const char *key, size_t len, uint32_t *id, int *inserted) {
    uint64_t h = mp_hash_bytes(key, len);
    int found;
    size_t i = find_slot(m, h, key, len, &found);
    if (found) {
        *id = m->slots[i].id;
        if (inserted) *inserted = 0;
        return MP_OK;
    }
    uint32_t nid = m->id_bound;
    int rc = insert_new(m, h, key, len, nid);
    if (rc) return rc;
    *id = nid;
    if (inserted) *inserted = 1;
    return MP_OK;
}

int mp_strmap_put(mp_strmap *m, const char *key, size_t len, uint32_t id) {
    if (id == MP_STRMAP_NONE) return MP_EINVAL;
    uint64_t h = mp_hash_bytes(key, len);
    int found;
    find_slot(m, h, key, len, &found);
    if (found) return MP_EINVAL;
    if (id < m->keys_cap && m->keys[id]) return MP_EINVAL;
    return insert_new(m, h, key, len, id);
}

const char *mp_strmap_key(const mp_strmap *m, uint32_t id, size_t *len) {
    if (id >= m->keys_cap || !m->keys[id]) return NULL;
    if (len) *len = m->lens[id];
    return m->keys[id];
}

size_t mp_strmap_size(const mp_strmap *m) { return m->size; }
uint32_t mp_strmap_id_bound(const mp_strmap *m) { return m->id_bound; }
