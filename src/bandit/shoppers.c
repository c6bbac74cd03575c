/* src/bandit/shoppers.c: a bounded, thread-safe table of shopper states by user id (least recently used dropped). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/bandit.h"
#include "magpie/strmap.h"

#define NIL UINT32_MAX

typedef struct entry {
    char *user; /* NULL: free */
    uint64_t hash;
    mp_shopper *s;
    uint32_t next;               /* bucket chain */
    uint32_t prev_lru, next_lru; /* recency list: head = most recent */
} entry;

struct mp_shopper_table {
    pthread_mutex_t mu;
    entry *e;
    uint32_t *bucket;
    size_t nbuckets, max_users, n;
    uint32_t lru_head, lru_tail, free_head;
    uint32_t max_events, max_purchases;
};

int mp_shopper_table_create(size_t max_users, uint32_t max_events, uint32_t max_purchases, mp_shopper_table **out,
                            mp_error *err) {
    *out = NULL;
    if (max_users == 0 || max_users >= NIL)
        return mp_error_set(err, MP_EINVAL, "shopper table: max_users must be in 1..%u, got %zu", NIL - 1, max_users);
    if (max_events == 0 || max_purchases == 0)
        return mp_error_set(err, MP_EINVAL, "shopper table: max_events and max_purchases must be >= 1");
    mp_shopper_table *t = calloc(1, sizeof *t);
    if (!t) return mp_error_set(err, MP_ENOMEM, "shopper table: out of memory");
    size_t nb = 16;
    while (nb < 2 * max_users)
        nb *= 2;
    t->e = calloc(max_users, sizeof(entry));
    t->bucket = malloc(nb * sizeof(uint32_t));
    if (!t->e || !t->bucket || pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t->e);
        free(t->bucket);
        free(t);
        return mp_error_set(err, MP_ENOMEM, "shopper table: out of memory for %zu users", max_users);
    }
    for (size_t i = 0; i < nb; i++)
        t->bucket[i] = NIL;
    for (size_t i = 0; i < max_users; i++)
        t->e[i].next = i + 1 < max_users ? (uint32_t)(i + 1) : NIL;
    t->free_head = 0;
    t->nbuckets = nb;
    t->max_users = max_users;
    t->lru_head = t->lru_tail = NIL;
    t->max_events = max_events;
    t->max_purchases = max_purchases;
    *out = t;
    return MP_OK;
}

void mp_shopper_table_destroy(mp_shopper_table *t) {
    if (!t) return;
    for (size_t i = 0; i < t->max_users; i++) {
        free(t->e[i].user);
        mp_shopper_destroy(t->e[i].s);
    }
    pthread_mutex_destroy(&t->mu);
    free(t->e);
    free(t->bucket);
    free(t);
}

static uint32_t find(const mp_shopper_table *t, const char *user, uint64_t h) {
    for (uint32_t i = t->bucket[h & (t->nbuckets - 1)]; i != NIL; i = t->e[i].next)
        if (t->e[i].hash == h && !strcmp(t->e[i].user, user)) return i;
    return NIL;
}

static void lru_unlink(mp_shopper_table *t, uint32_t i) {
    entry *e = &t->e[i];
    if (e->prev_lru != NIL)
        t->e[e->prev_lru].next_lru = e->next_lru;
    else
        t->lru_head = e->next_lru;
    if (e->next_lru != NIL)
        t->e[e->next_lru].prev_lru = e->prev_lru;
    else
        t->lru_tail = e->prev_lru;
}

static void lru_push(mp_shopper_table *t, uint32_t i) {
    entry *e = &t->e[i];
    e->prev_lru = NIL;
    e->next_lru = t->lru_head;
    if (t->lru_head != NIL) t->e[t->lru_head].prev_lru = i;
    t->lru_head = i;
    if (t->lru_tail == NIL) t->lru_tail = i;
}

/* Removes entry i from its bucket and the recency list and frees it. */
static void drop(mp_shopper_table *t, uint32_t i) {
    entry *e = &t->e[i];
    uint32_t *p = &t->bucket[e->hash & (t->nbuckets - 1)];
    while (*p != i)
        p = &t->e[*p].next;
    *p = e->next;
    lru_unlink(t, i);
    free(e->user);
    mp_shopper_destroy(e->s);
    memset(e, 0, sizeof *e);
    e->next = t->free_head;
    t->free_head = i;
    t->n--;
}

int mp_shopper_table_record(mp_shopper_table *t, const char *user, mp_shop_event kind, uint32_t item, uint32_t category,
                            double now, mp_error *err) {
    if (!user) return mp_error_set(err, MP_EINVAL, "shopper table: user is missing");
    uint64_t h = mp_hash_bytes(user, strlen(user));
    pthread_mutex_lock(&t->mu);
    uint32_t i = find(t, user, h);
    int rc = MP_OK;
    if (i == NIL) {
        if (t->free_head == NIL) drop(t, t->lru_tail);
        i = t->free_head;
        entry *e = &t->e[i];
        uint32_t next_free = e->next;
        e->user = strdup(user);
        if (!e->user || mp_shopper_create(t->max_events, t->max_purchases, &e->s, err) != MP_OK) {
            free(e->user);
            e->user = NULL;
            e->s = NULL;
            rc = mp_error_set(err, MP_ENOMEM, "shopper table: out of memory");
        } else {
            t->free_head = next_free;
            e->hash = h;
            e->next = t->bucket[h & (t->nbuckets - 1)];
            t->bucket[h & (t->nbuckets - 1)] = i;
            lru_push(t, i);
            t->n++;
        }
    } else {
        lru_unlink(t, i);
        lru_push(t, i);
    }
    if (rc == MP_OK) mp_shopper_record(t->e[i].s, kind, item, category, now);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int mp_shopper_table_rerank(mp_shopper_table *t, const char *user, const mp_protect_opts *o,
                            const mp_bandit_cand *cands, size_t n, uint32_t dim, double now, mp_bandit_cand *out,
                            size_t *n_out, mp_protect_stats *stats, mp_error *err) {
    uint64_t h = user ? mp_hash_bytes(user, strlen(user)) : 0;
    pthread_mutex_lock(&t->mu);
    uint32_t i = user ? find(t, user, h) : NIL;
    int rc = mp_protect_rerank(o, i == NIL ? NULL : t->e[i].s, cands, n, dim, now, out, n_out, stats, err);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

size_t mp_shopper_table_size(mp_shopper_table *t) {
    pthread_mutex_lock(&t->mu);
    size_t n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}
