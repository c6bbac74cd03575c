/* src/bandit/eventlog.c: the bounded log of served lists, feedback checks and the JSONL serving log. */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/bandit.h"
#include "magpie/json.h"
#include "magpie/strmap.h"

typedef struct ev_item {
    char *label;
    double propensity, score;
    unsigned char done; /* feedback written */
} ev_item;

typedef struct event {
    uint64_t seq; /* 0: empty slot */
    double t;
    char *user;
    uint32_t k;
    ev_item *items;
    float *X; /* [k * dim] or NULL */
} event;

struct mp_bandit_log {
    pthread_mutex_t mu;
    event *ring;
    size_t cap, live;
    double ttl;
    uint32_t dim;
    uint32_t nonce;
    uint64_t last_seq;
    mp_bandit_sink sink;
    void *sink_ctx;
};

int mp_bandit_sink_file(void *ctx, const char *line, size_t len) {
    FILE *f = ctx;
    if (fwrite(line, 1, len, f) != len || fputc('\n', f) == EOF) return -1;
    return 0;
}

int mp_bandit_log_create(size_t capacity, double ttl, uint32_t dim, uint64_t seed, mp_bandit_sink sink, void *sink_ctx,
                         mp_bandit_log **out, mp_error *err) {
    *out = NULL;
    if (capacity == 0 || capacity > ((size_t)1 << 32))
        return mp_error_set(err, MP_EINVAL, "bandit event log: capacity must be in 1..2^32 events, got %zu", capacity);
    if (!(ttl > 0)) return mp_error_set(err, MP_EINVAL, "bandit event log: ttl must be > 0 seconds, got %g", ttl);
    mp_bandit_log *l = calloc(1, sizeof *l);
    if (!l) return mp_error_set(err, MP_ENOMEM, "bandit event log: out of memory");
    l->ring = calloc(capacity, sizeof(event));
    if (!l->ring || pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l->ring);
        free(l);
        return mp_error_set(err, MP_ENOMEM, "bandit event log: out of memory for %zu events", capacity);
    }
    l->cap = capacity;
    l->ttl = ttl;
    l->dim = dim;
    uint64_t h = mp_hash_bytes(&seed, sizeof seed);
    l->nonce = (uint32_t)(h ^ (h >> 32));
    l->sink = sink;
    l->sink_ctx = sink_ctx;
    *out = l;
    return MP_OK;
}

static void format_id(const mp_bandit_log *l, uint64_t seq, char *buf, size_t cap) {
    snprintf(buf, cap, "%08" PRIx32 "-%" PRIu64, l->nonce, seq);
}

/* Writes one impression line. */
static int write_line(mp_bandit_log *l, const event *e, uint32_t pos, double reward, mp_error *err) {
    if (!l->sink) return MP_OK;
    char id[40];
    format_id(l, e->seq, id, sizeof id);
    const ev_item *it = &e->items[pos];
    size_t ul = mp_json_escape(NULL, 0, e->user, strlen(e->user));
    size_t il = mp_json_escape(NULL, 0, it->label, strlen(it->label));
    size_t cap = ul + il + 200;
    char *line = malloc(cap);
    if (!line) return mp_error_set(err, MP_ENOMEM, "bandit event log: out of memory");
    size_t n = (size_t)snprintf(line, cap, "{\"event_id\":\"%s\",\"user\":", id);
    n += mp_json_escape(line + n, cap - n, e->user, strlen(e->user));
    n += (size_t)snprintf(line + n, cap - n, ",\"item\":");
    n += mp_json_escape(line + n, cap - n, it->label, strlen(it->label));
    char prop[32];
    if (isfinite(it->propensity))
        snprintf(prop, sizeof prop, "%.17g", it->propensity);
    else
        snprintf(prop, sizeof prop, "null");
    n += (size_t)snprintf(line + n, cap - n, ",\"position\":%u,\"propensity\":%s,\"reward\":%.17g}", pos + 1, prop,
                          reward);
    int bad = l->sink(l->sink_ctx, line, n);
    free(line);
    return bad ? mp_error_set(err, MP_EIO, "bandit event log: the serving-log sink failed writing event %s", id)
               : MP_OK;
}

/* Writes the pending (reward 0) lines of an event and empties its slot. */
static int drop_event(mp_bandit_log *l, event *e, mp_error *err) {
    int rc = MP_OK;
    for (uint32_t i = 0; i < e->k; i++) {
        if (!e->items[i].done) {
            int r = write_line(l, e, i, 0.0, err);
            if (r && rc == MP_OK) rc = r;
        }
        free(e->items[i].label);
    }
    free(e->items);
    free(e->X);
    free(e->user);
    memset(e, 0, sizeof *e);
    l->live--;
    return rc;
}

void mp_bandit_log_destroy(mp_bandit_log *l) {
    if (!l) return;
    for (size_t i = 0; i < l->cap; i++)
        if (l->ring[i].seq) drop_event(l, &l->ring[i], NULL);
    pthread_mutex_destroy(&l->mu);
    free(l->ring);
    free(l);
}

int mp_bandit_log_record(mp_bandit_log *l, const char *user, const mp_bandit_cand *cands, const mp_bandit_pick *picks,
                         size_t k, double now, char *event_id, size_t cap, mp_error *err) {
    if (k == 0) return mp_error_set(err, MP_EINVAL, "bandit event log: an empty list has nothing to log");
    if (cap < 32) return mp_error_set(err, MP_EINVAL, "bandit event log: event id buffer needs 32 bytes");
    if (!user) user = "";
    event e;
    memset(&e, 0, sizeof e);
    e.t = now;
    e.k = (uint32_t)k;
    e.user = strdup(user);
    e.items = calloc(k, sizeof(ev_item));
    if (l->dim) e.X = calloc(k * l->dim, sizeof(float));
    int oom = !e.user || !e.items || (l->dim && !e.X);
    for (size_t i = 0; i < k && !oom; i++) {
        const mp_bandit_cand *c = &cands[picks[i].index];
        char buf[16];
        if (!c->label) snprintf(buf, sizeof buf, "%u", c->item);
        e.items[i].label = strdup(c->label ? c->label : buf);
        e.items[i].propensity = picks[i].propensity;
        e.items[i].score = c->score;
        if (!e.items[i].label) oom = 1;
        if (l->dim && c->x) memcpy(e.X + i * l->dim, c->x, l->dim * sizeof(float));
    }
    if (oom) {
        for (size_t i = 0; i < k && e.items; i++)
            free(e.items[i].label);
        free(e.items);
        free(e.X);
        free(e.user);
        return mp_error_set(err, MP_ENOMEM, "bandit event log: out of memory");
    }
    pthread_mutex_lock(&l->mu);
    uint64_t seq = ++l->last_seq;
    event *slot = &l->ring[(seq - 1) % l->cap];
    int rc = MP_OK;
    if (slot->seq) rc = drop_event(l, slot, err); /* evicted: its pending lines are written now */
    e.seq = seq;
    *slot = e;
    l->live++;
    format_id(l, seq, event_id, cap);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* Parses "<8 hex>-<decimal>"; 0 when malformed. */
static uint64_t parse_id(const char *id, uint32_t *nonce) {
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) {
        char c = id[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        v = v * 16 + (uint32_t)d;
    }
    if (id[8] != '-' || !id[9]) return 0;
    uint64_t s = 0;
    for (const char *p = id + 9; *p; p++) {
        if (*p < '0' || *p > '9' || s > (UINT64_MAX - 9) / 10) return 0;
        s = s * 10 + (uint64_t)(*p - '0');
    }
    *nonce = v;
    return s;
}

int mp_bandit_feedback(mp_bandit_log *l, mp_bandit *b, const char *event_id, const char *item, double reward,
                       double now, uint32_t *position, mp_error *err) {
    if (!event_id || !*event_id) return mp_error_set(err, MP_EINVAL, "feedback: `event_id` is missing");
    if (!item || !*item) return mp_error_set(err, MP_EINVAL, "feedback for event `%s`: `item` is missing", event_id);
    if (!isfinite(reward))
        return mp_error_set(err, MP_EINVAL, "feedback: reward for event `%s` item `%s` is not a finite number",
                            event_id, item);
    uint32_t nonce = 0;
    uint64_t seq = strlen(event_id) < 40 ? parse_id(event_id, &nonce) : 0;
    pthread_mutex_lock(&l->mu);
    int rc = MP_OK;
    event *e = NULL;
    if (seq == 0 || nonce != l->nonce || seq > l->last_seq) {
        rc = mp_error_set(err, MP_ENOTFOUND, "feedback: unknown event id `%s` (not served by this server run)",
                          event_id);
    } else {
        e = &l->ring[(seq - 1) % l->cap];
        if (e->seq != seq) {
            if (seq + l->cap <= l->last_seq)
                rc = mp_error_set(err, MP_EEXPIRED,
                                  "feedback: event id `%s` was evicted (the log keeps the last %zu events)", event_id,
                                  l->cap);
            else
                rc = mp_error_set(err, MP_EEXPIRED, "feedback: event id `%s` expired (ttl %g s)", event_id, l->ttl);
        } else if (now - e->t > l->ttl) {
            rc = mp_error_set(err, MP_EEXPIRED, "feedback: event id `%s` expired: served %.0f s ago, ttl %g s",
                              event_id, now - e->t, l->ttl);
        }
    }
    uint32_t pos = UINT32_MAX;
    if (rc == MP_OK) {
        for (uint32_t i = 0; i < e->k; i++)
            if (!strcmp(e->items[i].label, item)) {
                pos = i;
                break;
            }
        if (pos == UINT32_MAX) {
            char shown[256];
            size_t n = 0;
            shown[0] = 0;
            for (uint32_t i = 0; i < e->k && n + 8 < sizeof shown; i++)
                n += (size_t)snprintf(shown + n, sizeof shown - n, "%s%s", i ? ", " : "", e->items[i].label);
            if (n >= sizeof shown) memcpy(shown + sizeof shown - 4, "...", 4);
            rc = mp_error_set(err, MP_ENOTMEMBER, "feedback: item `%s` was not in event `%s` (shown: %s)", item,
                              event_id, shown);
        } else if (e->items[pos].done) {
            rc = mp_error_set(err, MP_ECONFLICT, "feedback: event `%s` item `%s` already has feedback", event_id, item);
        }
    }
    if (rc == MP_OK && b) {
        const mp_bandit_opts *o = mp_bandit_get_opts(b);
        if (o->dim != l->dim && o->dim != 0)
            rc = mp_error_set(err, MP_EINVAL, "feedback: the policy has dim %u but the event log keeps %u features",
                              o->dim, l->dim);
        else
            rc = mp_bandit_update(b, item, o->dim ? e->X + (size_t)pos * l->dim : NULL, e->items[pos].score, reward,
                                  err);
    }
    if (rc == MP_OK) {
        e->items[pos].done = 1;
        rc = write_line(l, e, pos, reward, err);
        if (position) *position = pos + 1;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int mp_bandit_log_user(mp_bandit_log *l, const char *event_id, char *buf, size_t cap, mp_error *err) {
    if (cap) buf[0] = 0;
    uint32_t nonce = 0;
    uint64_t seq = event_id && strlen(event_id) < 40 ? parse_id(event_id, &nonce) : 0;
    pthread_mutex_lock(&l->mu);
    const event *e = seq && nonce == l->nonce && seq <= l->last_seq ? &l->ring[(seq - 1) % l->cap] : NULL;
    int found = e && e->seq == seq;
    if (found && cap) snprintf(buf, cap, "%s", e->user);
    pthread_mutex_unlock(&l->mu);
    return found ? MP_OK
                 : mp_error_set(err, MP_ENOTFOUND, "bandit event log: event `%.40s` is not held",
                                event_id ? event_id : "");
}

int mp_bandit_log_flush(mp_bandit_log *l, double now, int all, mp_error *err) {
    pthread_mutex_lock(&l->mu);
    int rc = MP_OK;
    for (size_t i = 0; i < l->cap; i++) {
        event *e = &l->ring[i];
        if (e->seq && (all || now - e->t > l->ttl)) {
            int r = drop_event(l, e, err);
            if (r && rc == MP_OK) rc = r;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

size_t mp_bandit_log_size(mp_bandit_log *l) {
    pthread_mutex_lock(&l->mu);
    size_t n = l->live;
    pthread_mutex_unlock(&l->mu);
    return n;
}

int mp_bandit_serve(mp_bandit *b, const mp_bandit_opts *override, mp_bandit_log *log, const char *user,
                    const mp_bandit_cand *cands, size_t n, size_t k, double now, mp_bandit_pick *picks, char *event_id,
                    size_t cap, mp_error *err) {
    int rc = mp_bandit_select(b, override, cands, n, k, picks, err);
    if (rc == MP_OK && k > 0) rc = mp_bandit_log_record(log, user, cands, picks, k, now, event_id, cap, err);
    return rc;
}
