/* src/live/abtest.c: the A/B state of an mp_explore (magpie/explore.h): hashed variant assignment, the variant
 * spec "NAME:WEIGHT:POLICY;...", and each variant's set of served users with their conversions and purchases.
 * The statistics over these counts (z-test, bootstrap) are eval's (magpie/abtest.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live/live_internal.h"
#include "magpie/strmap.h"

int mp_abtest_assign(const char *user_id, const char *salt, const double *weights, size_t n_variants) {
    if (!user_id || !weights || n_variants == 0) return -1;
    double total = 0;
    for (size_t v = 0; v < n_variants; v++) {
        if (!(weights[v] >= 0) || !isfinite(weights[v])) return -1;
        total += weights[v];
    }
    if (!(total > 0)) return -1;
    if (!salt) salt = "";
    size_t ls = strlen(salt), lu = strlen(user_id);
    char stackbuf[256];
    char *buf = ls + lu + 1 <= sizeof stackbuf ? stackbuf : malloc(ls + lu + 1);
    if (!buf) return -1;
    memcpy(buf, salt, ls);
    buf[ls] = 0;
    memcpy(buf + ls + 1, user_id, lu);
    uint64_t h = mp_hash_bytes(buf, ls + lu + 1);
    if (buf != stackbuf) free(buf);
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    double acc = 0;
    for (size_t v = 0; v < n_variants; v++) {
        acc += weights[v] / total;
        if (u < acc && weights[v] > 0) return (int)v;
    }
    for (size_t v = n_variants; v-- > 0;)
        if (weights[v] > 0) return (int)v;
    return -1;
}

/* ---- variant specs ---------------------------------------------------------------------------------------------- */

static int parse_weight(const char *s, double *out) {
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || *e || errno || !isfinite(v) || v < 0 || v > 1e12) return -1;
    *out = v;
    return 0;
}

int live_ab_parse(const char *variants, const char *policy, live_ab_variant *out, size_t *n, const char **option,
                  mp_error *err) {
    *n = 0;
    if (!variants || !variants[0]) {
        if (option) *option = "policy";
        snprintf(out[0].name, sizeof out[0].name, "default");
        out[0].weight = 1;
        mp_bandit_opts_default(&out[0].opts);
        int rc = mp_bandit_parse(policy ? policy : "greedy", &out[0].opts, err);
        if (rc != MP_OK) return rc;
        *n = 1;
        return MP_OK;
    }
    if (option) *option = "variants";
    const char *p = variants;
    double total = 0;
    while (*p) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char part[512];
        if (len == 0) {
            p += 1;
            continue;
        }
        if (len >= sizeof part)
            return mp_error_set(err, MP_EINVAL, "a variant is longer than %zu bytes", sizeof part - 1);
        memcpy(part, p, len);
        part[len] = 0;
        p += len + (end ? 1 : 0);
        if (*n == MP_EXPLORE_MAX_VARIANTS)
            return mp_error_set(err, MP_EINVAL, "more than %d variants", MP_EXPLORE_MAX_VARIANTS);
        char *c1 = strchr(part, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c1 || !c2 || c1 == part)
            return mp_error_set(err, MP_EINVAL,
                                "\"%s\" is not NAME:WEIGHT:POLICY (e.g. "
                                "control:50:greedy;explore:50:egreedy:epsilon=0.1)",
                                part);
        *c1 = 0;
        *c2 = 0;
        live_ab_variant *v = &out[*n];
        if (strlen(part) >= sizeof v->name) return mp_error_set(err, MP_EINVAL, "variant name `%s` is too long", part);
        for (size_t i = 0; i < *n; i++)
            if (!strcmp(out[i].name, part)) return mp_error_set(err, MP_EINVAL, "variant `%s` is named twice", part);
        for (const char *q = part; *q; q++)
            if (*q == '"' || *q == '\\' || *q == '{' || *q == '}' || *q == ',' || (unsigned char)*q < 0x21)
                return mp_error_set(err, MP_EINVAL,
                                    "variant name `%s` may not contain blanks, quotes, braces, commas or backslashes",
                                    part);
        snprintf(v->name, sizeof v->name, "%s", part);
        if (parse_weight(c1 + 1, &v->weight))
            return mp_error_set(err, MP_EINVAL, "variant `%s`: weight \"%s\" is not a non-negative number", part,
                                c1 + 1);
        mp_bandit_opts_default(&v->opts);
        if (mp_bandit_parse(c2 + 1, &v->opts, err) != MP_OK) {
            mp_error_prefix(err, "variant `%s`", part);
            return MP_EINVAL;
        }
        total += v->weight;
        (*n)++;
    }
    if (*n == 0) return mp_error_set(err, MP_EINVAL, "no variant given");
    if (!(total > 0)) return mp_error_set(err, MP_EINVAL, "the weights sum to 0");
    return MP_OK;
}

/* ---- per-variant user sets -------------------------------------------------------------------------------------- */

uint64_t live_ab_user_key(const char *user) {
    uint64_t h = mp_hash_bytes(user, strlen(user));
    return h ? h : 1;
}

void live_abusers_init(live_abusers *u, size_t max) {
    memset(u, 0, sizeof *u);
    pthread_mutex_init(&u->mu, NULL);
    u->max = max;
}

void live_abusers_free(live_abusers *u) {
    free(u->slot);
    pthread_mutex_destroy(&u->mu);
}

/* The record of key (u->mu held), created when `create` and there is room; NULL otherwise. */
static live_abuser *find(live_abusers *u, uint64_t key, int create) {
    if (u->cap) {
        for (size_t i = (size_t)key & (u->cap - 1);; i = (i + 1) & (u->cap - 1)) {
            if (u->slot[i].key == key) return &u->slot[i];
            if (!u->slot[i].key) break;
        }
    }
    if (!create) return NULL;
    if (u->n >= u->max) {
        u->untracked++;
        return NULL;
    }
    if ((u->n + 1) * 4 > u->cap * 3) { /* grow to keep the load under 3/4 */
        size_t cap = u->cap ? u->cap * 2 : 1024;
        live_abuser *s = calloc(cap, sizeof *s);
        if (!s) return NULL;
        for (size_t j = 0; j < u->cap; j++) {
            if (!u->slot[j].key) continue;
            size_t i = (size_t)u->slot[j].key & (cap - 1);
            while (s[i].key) i = (i + 1) & (cap - 1);
            s[i] = u->slot[j];
        }
        free(u->slot);
        u->slot = s;
        u->cap = cap;
    }
    size_t i = (size_t)key & (u->cap - 1);
    while (u->slot[i].key) i = (i + 1) & (u->cap - 1);
    u->slot[i].key = key;
    u->n++;
    return &u->slot[i];
}

int live_abusers_note(live_abusers *u, const char *user, int what) {
    pthread_mutex_lock(&u->mu);
    live_abuser *r = find(u, live_ab_user_key(user), what == LIVE_AB_SERVED);
    if (r && what != LIVE_AB_SERVED) {
        if (!r->converted) u->converted++;
        r->converted = 1;
        if (what == LIVE_AB_PURCHASE) r->purchases++;
    }
    pthread_mutex_unlock(&u->mu);
    return r != NULL;
}

void live_abusers_counts(live_abusers *u, uint64_t *users, uint64_t *converted, uint64_t *untracked) {
    pthread_mutex_lock(&u->mu);
    *users = u->n;
    *converted = u->converted;
    *untracked = u->untracked;
    pthread_mutex_unlock(&u->mu);
}

int live_abusers_each(live_abusers *u, const char *variant, mp_explore_user_fn fn, void *ctx) {
    int rc = 0;
    pthread_mutex_lock(&u->mu);
    for (size_t j = 0; j < u->cap && rc == 0; j++)
        if (u->slot[j].key) rc = fn(ctx, variant, u->slot[j].key, u->slot[j].converted, u->slot[j].purchases);
    pthread_mutex_unlock(&u->mu);
    return rc;
}
