/* src/text/text_internal.h: character classes and vocabulary-file helpers shared by the text module. */
#ifndef MAGPIE_TEXT_INTERNAL_H
#define MAGPIE_TEXT_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/error.h"

typedef enum {
    TXT_SPACE = 0, /* whitespace and control characters */
    TXT_PUNCT,     /* punctuation and symbols that separate words */
    TXT_ALNUM,     /* letters and digits of non-CJK scripts */
    TXT_CJK,       /* Han ideographs, kana, hangul */
    TXT_SYMBOL,    /* emoji and pictographs: tokens of their own */
    TXT_IGNORE,    /* joiners and variation selectors: dropped */
} txt_class;

txt_class txt_char_class(uint32_t cp);

/* Reads a whole file into a new buffer (caller frees). MP_EIO naming the path on failure. */
int txt_read_file(const char *path, char **data, size_t *len, mp_error *err);

/* Next line of data[*pos..len) without its "\n" or "\r\n"; returns 0 at the end. A final line without '\n' counts;
 * the empty remainder after a final '\n' does not. */
static inline int txt_next_line(const char *data, size_t len, size_t *pos, const char **line, size_t *line_len) {
    if (*pos >= len) return 0;
    const char *start = data + *pos;
    const char *nl = memchr(start, '\n', len - *pos);
    size_t n = nl ? (size_t)(nl - start) : len - *pos;
    *pos += n + (nl ? 1 : 0);
    if (n > 0 && start[n - 1] == '\r') n--;
    *line = start;
    *line_len = n;
    return 1;
}
/* ---- u64 -> u32 open-addressing map (feature hash or bucket -> dense row / term id) ----------------------------
 * Linear probing over a power-of-two table; the value UINT32_MAX marks an empty slot. Used by textindex (term
 * hash -> term id) and skipgram (n-gram bucket -> row). Not thread-safe for writers; readers may share it. */
#define TXT_MAP_NONE UINT32_MAX

typedef struct txt_u64map {
    uint64_t *keys; /* cap entries */
    uint32_t *vals; /* cap entries; TXT_MAP_NONE = empty */
    size_t cap, n;  /* cap is 0 or a power of two; n keys stored */
} txt_u64map;

static inline size_t txt_u64map_slot(uint64_t key, size_t cap) {
    return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 17) & (cap - 1);
}

/* Value of key, or TXT_MAP_NONE. */
static inline uint32_t txt_u64map_get(const txt_u64map *m, uint64_t key) {
    if (!m->cap) return TXT_MAP_NONE;
    for (size_t i = txt_u64map_slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->vals[i] == TXT_MAP_NONE) return TXT_MAP_NONE;
        if (m->keys[i] == key) return m->vals[i];
    }
}

/* Makes room for `want` keys at a load of at most 1/2. MP_OK or MP_ENOMEM (the map is unchanged then). */
static inline int txt_u64map_reserve(txt_u64map *m, size_t want) {
    if (want * 2 <= m->cap) return MP_OK;
    size_t cap = m->cap ? m->cap : 16;
    while (cap < want * 2)
        cap *= 2;
    uint64_t *k = malloc(cap * sizeof *k);
    uint32_t *v = malloc(cap * sizeof *v);
    if (!k || !v) {
        free(k);
        free(v);
        return MP_ENOMEM;
    }
    memset(v, 0xff, cap * sizeof *v);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->vals[i] == TXT_MAP_NONE) continue;
        size_t j = txt_u64map_slot(m->keys[i], cap);
        while (v[j] != TXT_MAP_NONE)
            j = (j + 1) & (cap - 1);
        k[j] = m->keys[i];
        v[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = k;
    m->vals = v;
    m->cap = cap;
    return MP_OK;
}

/* Value of key, inserting `val` when absent (*inserted, may be NULL, says which). val must not be TXT_MAP_NONE.
 * MP_OK or MP_ENOMEM. */
static inline int txt_u64map_intern(txt_u64map *m, uint64_t key, uint32_t val, uint32_t *out, int *inserted) {
    if (txt_u64map_reserve(m, m->n + 1) != MP_OK) return MP_ENOMEM;
    size_t i = txt_u64map_slot(key, m->cap);
    for (; m->vals[i] != TXT_MAP_NONE; i = (i + 1) & (m->cap - 1))
        if (m->keys[i] == key) {
            *out = m->vals[i];
            if (inserted) *inserted = 0;
            return MP_OK;
        }
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    *out = val;
    if (inserted) *inserted = 1;
    return MP_OK;
}

static inline void txt_u64map_free(txt_u64map *m) {
    free(m->keys);
    free(m->vals);
    *m = (txt_u64map){0};
}
/* Hogwild training helper: runs fn on args[0..T) (`size` bytes apart), workers 1..T-1 on new threads (tids[T]) and
 * worker 0 on the calling thread, and joins them. Returns how many workers ran: T, or fewer when a thread could not
 * be created (the workers from the returned count on did not run). */
static inline int txt_run_workers(void *(*fn)(void *), void *args, size_t size, int T, pthread_t *tids) {
    int started = 0;
    for (int t = 1; t < T; t++) {
        if (pthread_create(&tids[t], NULL, fn, (char *)args + (size_t)t * size) != 0) break;
        started = t;
    }
    fn(args);
    for (int t = 1; t <= started; t++)
        pthread_join(tids[t], NULL);
    return started + 1;
}

#endif
