/* src/serve/banditsrv.c: the exploration / feedback / protection / A/B layer of `magpie serve` (see banditsrv.h). */
#include "serve/banditsrv.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/abtest.h"
#include "magpie/bandit.h"
#include "magpie/strmap.h"

#define MAX_VARIANTS 16
#define NAME_MAX_ 48

typedef struct variant {
    char name[NAME_MAX_];
    double weight;
    mp_bandit_opts opts;
    mp_bandit *b;
    mp_bandit_log *log;
    _Atomic uint64_t requests, impressions, feedback, clicks;
    _Atomic uint64_t reward_micros; /* sum of positive rewards * 1e6 */
    _Atomic int64_t next_flush_ms;  /* expired events are written out at most once a second (a flush scans the log) */
} variant;

struct mp_serve_bandit {
    const mp_serve_config *cfg;
    int enabled;
    variant v[MAX_VARIANTS];
    size_t nv;
    double weights[MAX_VARIANTS];
    mp_shopper_table *shoppers;
    mp_protect_opts prot;
    int protect_on;
    FILE *logf;
    pthread_mutex_t log_mu;
};

/* ---- config parsing -------------------------------------------------------------------------------------------- */

static int parse_double(const char *s, double lo, double hi, double *out) {
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || *e || errno || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* One parsed variant spec. */
typedef struct vspec {
    char name[NAME_MAX_];
    double weight;
    mp_bandit_opts opts;
} vspec;

/* Parses ab_variants ("NAME:WEIGHT:POLICY;...") or, when empty, the single variant "default" with `bandit`. */
static int parse_variants(const mp_serve_config *c, vspec *out, size_t *n, mp_error *err) {
    *n = 0;
    if (!c->ab_variants[0]) {
        snprintf(out[0].name, sizeof out[0].name, "default");
        out[0].weight = 1;
        mp_bandit_opts_default(&out[0].opts);
        if (mp_bandit_parse(c->bandit, &out[0].opts, err) != MP_OK)
            return mp_error_set(err, MP_EINVAL, "setting `bandit`: %s", err->msg);
        *n = 1;
        return MP_OK;
    }
    const char *p = c->ab_variants;
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
            return mp_error_set(err, MP_EINVAL, "setting `ab_variants`: a variant is longer than %zu bytes",
                                sizeof part - 1);
        memcpy(part, p, len);
        part[len] = 0;
        p += len + (end ? 1 : 0);
        if (*n == MAX_VARIANTS)
            return mp_error_set(err, MP_EINVAL, "setting `ab_variants`: more than %d variants", MAX_VARIANTS);
        char *c1 = strchr(part, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c1 || !c2 || c1 == part)
            return mp_error_set(err, MP_EINVAL,
                                "setting `ab_variants`: \"%s\" is not NAME:WEIGHT:POLICY (e.g. "
                                "control:50:greedy;explore:50:egreedy:epsilon=0.1)",
                                part);
        *c1 = 0;
        *c2 = 0;
        vspec *v = &out[*n];
        if (strlen(part) >= sizeof v->name)
            return mp_error_set(err, MP_EINVAL, "setting `ab_variants`: variant name `%s` is too long", part);
        for (size_t i = 0; i < *n; i++)
            if (!strcmp(out[i].name, part))
                return mp_error_set(err, MP_EINVAL, "setting `ab_variants`: variant `%s` is named twice", part);
        for (const char *q = part; *q; q++)
            if (*q == '"' || *q == '\\' || *q == '{' || *q == '}' || (unsigned char)*q < 0x21)
                return mp_error_set(err, MP_EINVAL,
                                    "setting `ab_variants`: variant name `%s` may not contain blanks, quotes, "
                                    "braces or backslashes",
                                    part);
        snprintf(v->name, sizeof v->name, "%s", part);
        if (parse_double(c1 + 1, 0, 1e12, &v->weight))
            return mp_error_set(err, MP_EINVAL,
                                "setting `ab_variants`: variant `%s`: weight \"%s\" is not a non-negative number",
                                part, c1 + 1);
        mp_bandit_opts_default(&v->opts);
        if (mp_bandit_parse(c2 + 1, &v->opts, err) != MP_OK)
            return mp_error_set(err, MP_EINVAL, "setting `ab_variants`: variant `%s`: %s", part, err->msg);
        total += v->weight;
        (*n)++;
    }
    if (*n == 0) return mp_error_set(err, MP_EINVAL, "setting `ab_variants`: no variant given");
    if (!(total > 0)) return mp_error_set(err, MP_EINVAL, "setting `ab_variants`: the weights sum to 0");
    return MP_OK;
}

static int parse_protect(const mp_serve_config *c, mp_protect_opts *o, int *on, mp_error *err) {
    mp_protect_opts_default(o);
    if (parse_double(c->fatigue_weight, 0, 1e9, &o->fatigue_weight))
        return mp_error_set(err, MP_EINVAL, "setting `fatigue_weight`: \"%s\" is not a number >= 0",
                            c->fatigue_weight);
    if (parse_double(c->mmr_lambda, 0, 1, &o->mmr_lambda))
        return mp_error_set(err, MP_EINVAL, "setting `mmr_lambda`: \"%s\" is not a number in [0, 1]", c->mmr_lambda);
    if (parse_double(c->novelty_weight, 0, 1e9, &o->novelty_weight))
        return mp_error_set(err, MP_EINVAL, "setting `novelty_weight`: \"%s\" is not a number >= 0",
                            c->novelty_weight);
    if (c->fatigue_half_life <= 0)
        return mp_error_set(err, MP_EINVAL, "setting `fatigue_half_life`: must be positive (e.g. 1h)");
    if (c->cap_window <= 0) return mp_error_set(err, MP_EINVAL, "setting `cap_window`: must be positive (e.g. 24h)");
    o->fatigue_half_life = (double)c->fatigue_half_life / 1000.0;
    o->item_cap = (uint32_t)c->item_cap;
    o->category_cap = (uint32_t)c->category_cap;
    o->item_window = o->category_window = (double)c->cap_window / 1000.0;
    *on = o->fatigue_weight > 0 || o->mmr_lambda < 1 || o->novelty_weight > 0 || o->item_cap > 0 ||
          o->category_cap > 0;
    return MP_OK;
}

int mp_serve_bandit_check_config(const mp_serve_config *c, mp_error *err) {
    vspec vs[MAX_VARIANTS];
    size_t n;
    int rc = parse_variants(c, vs, &n, err);
    if (rc) return rc;
    mp_protect_opts o;
    int on;
    rc = parse_protect(c, &o, &on, err);
    if (rc) return rc;
    if (c->bandit_ttl <= 0) return mp_error_set(err, MP_EINVAL, "setting `bandit_ttl`: must be positive (e.g. 1h)");
    return MP_OK;
}

/* ---- life cycle ------------------------------------------------------------------------------------------------ */

/* One line per impression, written whole under the layer's mutex and flushed (readers see complete lines). */
static int sink_line(void *ctx, const char *line, size_t len) {
    mp_serve_bandit *sb = ctx;
    pthread_mutex_lock(&sb->log_mu);
    int bad = fwrite(line, 1, len, sb->logf) != len || fputc('\n', sb->logf) == EOF || fflush(sb->logf) != 0;
    pthread_mutex_unlock(&sb->log_mu);
    return bad ? -1 : 0;
}

int mp_serve_bandit_create(const mp_serve_config *cfg, uint64_t seed, mp_serve_bandit **out, mp_error *err) {
    *out = NULL;
    vspec vs[MAX_VARIANTS];
    size_t n;
    int rc = mp_serve_bandit_check_config(cfg, err);
    if (rc) return rc;
    rc = parse_variants(cfg, vs, &n, err);
    if (rc) return rc;
    mp_serve_bandit *sb = calloc(1, sizeof *sb);
    if (!sb) return mp_error_set(err, MP_ENOMEM, "bandit layer: out of memory");
    sb->cfg = cfg;
    pthread_mutex_init(&sb->log_mu, NULL);
    parse_protect(cfg, &sb->prot, &sb->protect_on, err);
    sb->enabled = strcmp(cfg->bandit, "greedy") != 0 || cfg->bandit_log[0] || cfg->ab_variants[0] || sb->protect_on;
    if (cfg->bandit_log[0]) {
        sb->logf = fopen(cfg->bandit_log, "a");
        if (!sb->logf) {
            int e = errno;
            mp_serve_bandit_destroy(sb);
            return mp_error_set(err, MP_EIO, "setting `bandit_log`: cannot open %s for appending: %s",
                                cfg->bandit_log, strerror(e));
        }
    }
    for (size_t i = 0; i < n; i++) {
        variant *v = &sb->v[i];
        snprintf(v->name, sizeof v->name, "%s", vs[i].name);
        v->weight = vs[i].weight;
        sb->weights[i] = vs[i].weight;
        v->opts = vs[i].opts;
        /* a spec without seed= gets one from the run's seed, so two runs explore differently */
        if (v->opts.seed == 1) v->opts.seed = seed * 0x9E3779B97F4A7C15ULL + i + 1;
        sb->nv = i + 1;
        rc = mp_bandit_create(&v->opts, &v->b, err);
        if (!rc)
            rc = mp_bandit_log_create((size_t)cfg->bandit_capacity, (double)cfg->bandit_ttl / 1000.0, v->opts.dim,
                                      seed ^ (0xA5A5A5A5ULL * (i + 1)), sb->logf ? sink_line : NULL, sb, &v->log,
                                      err);
        if (rc) {
            mp_serve_bandit_destroy(sb);
            return rc;
        }
    }
    rc = mp_shopper_table_create((size_t)cfg->shopper_users, 256, 64, &sb->shoppers, err);
    if (rc) {
        mp_serve_bandit_destroy(sb);
        return rc;
    }
    *out = sb;
    return MP_OK;
}

void mp_serve_bandit_destroy(mp_serve_bandit *sb) {
    if (!sb) return;
    for (size_t i = 0; i < sb->nv; i++) {
        mp_bandit_log_destroy(sb->v[i].log);
        mp_bandit_destroy(sb->v[i].b);
    }
    mp_shopper_table_destroy(sb->shoppers);
    if (sb->logf) fclose(sb->logf);
    pthread_mutex_destroy(&sb->log_mu);
    free(sb);
}

int mp_serve_bandit_enabled(const mp_serve_bandit *sb) { return sb && sb->enabled; }

/* Writes the lines of v's expired events, at most once a second across threads. */
static void maybe_flush(variant *v, double now) {
    int64_t now_ms = (int64_t)(now * 1000.0), next = atomic_load(&v->next_flush_ms);
    if (now_ms < next || !atomic_compare_exchange_strong(&v->next_flush_ms, &next, now_ms + 1000)) return;
    mp_error ferr;
    mp_error_clear(&ferr);
    if (mp_bandit_log_flush(v->log, now, 0, &ferr) == MP_EIO)
        fprintf(stderr, "magpie serve: bandit_log: %s\n", ferr.msg);
}

/* ---- serving ----------------------------------------------------------------------------------------------------- */

static uint32_t hash_id(const char *s) {
    uint64_t h = mp_hash_bytes(s, strlen(s));
    uint32_t v = (uint32_t)(h ^ (h >> 32));
    return v == UINT32_MAX ? 0 : v;
}

int mp_serve_bandit_serve(mp_serve_bandit *sb, const char *user, size_t user_len, const char *policy_spec,
                          mp_live_list *l, size_t k, double now, mp_serve_slate *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    char ubuf[1024];
    if (user_len >= sizeof ubuf) user_len = sizeof ubuf - 1;
    if (user) memcpy(ubuf, user, user_len);
    ubuf[user ? user_len : 0] = 0;
    int vi = mp_abtest_assign(ubuf, sb->cfg->ab_salt, sb->weights, sb->nv);
    if (vi < 0) vi = 0;
    variant *v = &sb->v[vi];
    out->variant = v->name;
    mp_bandit_opts ov = v->opts;
    const mp_bandit_opts *override = NULL;
    if (policy_spec) {
        if (mp_bandit_parse(policy_spec, &ov, err) != MP_OK) return err->code ? err->code : MP_EINVAL;
        override = &ov;
    }
    out->policy = mp_bandit_kind_name(ov.kind);
    size_t n = l->n;
    if (k > n) k = n;
    if (k == 0) return MP_OK;
    mp_bandit_cand *cands = calloc(n, sizeof *cands), *prot = NULL;
    mp_bandit_pick *picks = calloc(k, sizeof *picks);
    size_t *order = calloc(n, sizeof *order); /* candidate index -> index into l->items */
    mp_live_item *tmp = calloc(n, sizeof *tmp);
    unsigned char *used = calloc(n, 1);
    double *props = calloc(k, sizeof *props);
    int rc = MP_OK;
    if (!cands || !picks || !order || !tmp || !used || !props) {
        rc = mp_error_set(err, MP_ENOMEM, "bandit layer: out of memory for %zu candidates", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const mp_live_item *it = &l->items[i];
        cands[i].item = hash_id(it->item);
        cands[i].label = it->item;
        cands[i].score = isfinite(it->score) ? (double)it->score : 0.0;
        cands[i].category = it->category ? hash_id(it->category) : UINT32_MAX;
        cands[i].price = NAN;
        cands[i].popularity = 0;
        order[i] = i;
    }
    const mp_bandit_cand *use = cands;
    size_t m = n;
    if (sb->protect_on && user) {
        prot = calloc(n, sizeof *prot);
        if (!prot) {
            rc = mp_error_set(err, MP_ENOMEM, "bandit layer: out of memory");
            goto out;
        }
        rc = mp_shopper_table_rerank(sb->shoppers, ubuf, &sb->prot, cands, n, 0, now, prot, &m, NULL, err);
        if (rc) goto out;
        for (size_t i = 0; i < m; i++) /* map back by the label pointer (the items' own strings) */
            for (size_t j = 0; j < n; j++)
                if (prot[i].label == cands[j].label) {
                    order[i] = j;
                    break;
                }
        use = prot;
        if (k > m) k = m;
        if (k == 0) goto out;
    }
    rc = mp_bandit_serve(v->b, override, v->log, ubuf, use, m, k, now, picks, out->event_id, sizeof out->event_id,
                         err);
    if (rc == MP_EIO) {
        /* the event was recorded; only writing an evicted event's lines failed */
        fprintf(stderr, "magpie serve: bandit_log: %s\n", err->msg);
        rc = MP_OK;
    }
    if (rc) {
        out->event_id[0] = 0;
        goto out;
    }
    /* served items first, in slate order, then the rest (so mp_live_list_free frees every item) */
    size_t w = 0;
    for (size_t i = 0; i < k; i++) {
        size_t j = order[picks[i].index];
        tmp[w++] = l->items[j];
        used[j] = 1;
        props[i] = picks[i].propensity;
        if (user)
            mp_shopper_table_record(sb->shoppers, ubuf, MP_SHOP_IMPRESSION, cands[j].item, cands[j].category, now,
                                    NULL);
    }
    for (size_t j = 0; j < n; j++)
        if (!used[j]) tmp[w++] = l->items[j];
    memcpy(l->items, tmp, n * sizeof *tmp);
    out->k = k;
    out->propensity = props;
    props = NULL;
    atomic_fetch_add(&v->requests, 1);
    atomic_fetch_add(&v->impressions, k);
    maybe_flush(v, now);
out:
    free(cands);
    free(prot);
    free(picks);
    free(order);
    free(tmp);
    free(used);
    free(props);
    return rc;
}

int mp_serve_bandit_feedback(mp_serve_bandit *sb, const char *event_id, const char *item, double reward, double now,
                             const char **variant_name, mp_error *err) {
    int rc = MP_ENOTFOUND;
    for (size_t i = 0; i < sb->nv; i++) {
        variant *v = &sb->v[i];
        mp_error_clear(err);
        rc = mp_bandit_feedback(v->log, v->b, event_id, item, reward, now, NULL, err);
        if (rc == MP_ENOTFOUND && strstr(err->msg, "unknown event id")) continue;
        if (rc == MP_EIO) {
            fprintf(stderr, "magpie serve: bandit_log: %s\n", err->msg);
            rc = MP_OK;
        }
        if (rc) return rc;
        atomic_fetch_add(&v->feedback, 1);
        if (reward > 0) {
            atomic_fetch_add(&v->clicks, 1);
            atomic_fetch_add(&v->reward_micros, (uint64_t)llround(reward * 1e6));
        }
        if (variant_name) *variant_name = v->name;
        maybe_flush(v, now); /* expired events leave the log (their lines are written), not only at shutdown */
        return MP_OK;
    }
    mp_error_clear(err);
    return mp_error_set(err, MP_ENOTFOUND,
                        "feedback: unknown event id `%.64s` (not served by this server run; ids come from "
                        "the `event_id` of /v1/recommend)",
                        event_id);
}

void mp_serve_bandit_observe(mp_serve_bandit *sb, const mp_event *ev, size_t n, double now) {
    if (!sb || !sb->protect_on) return;
    for (size_t i = 0; i < n; i++) {
        mp_event_type t = ev[i].type;
        if (t != MP_EV_CLICK && t != MP_EV_CART && t != MP_EV_FAV && t != MP_EV_PURCHASE) continue;
        char user[1024], item[1024];
        if (ev[i].user.len >= sizeof user || ev[i].item.len >= sizeof item) continue;
        memcpy(user, ev[i].user.ptr, ev[i].user.len);
        user[ev[i].user.len] = 0;
        memcpy(item, ev[i].item.ptr, ev[i].item.len);
        item[ev[i].item.len] = 0;
        mp_shopper_table_record(sb->shoppers, user, t == MP_EV_PURCHASE ? MP_SHOP_PURCHASE : MP_SHOP_CLICK,
                                hash_id(item), UINT32_MAX, now, NULL);
    }
}

/* ---- counters ---------------------------------------------------------------------------------------------------- */

void mp_serve_bandit_stats_json(mp_serve_bandit *sb, jbuf *b) {
    if (!sb) return;
    jb_cstr(b, ",\"bandit\":{\"enabled\":");
    jb_bool(b, sb->enabled);
    jb_cstr(b, ",\"protection\":");
    jb_bool(b, sb->protect_on);
    jb_printf(b, ",\"shoppers\":%zu,\"salt\":", mp_shopper_table_size(sb->shoppers));
    jb_cstr_json(b, sb->cfg->ab_salt);
    jb_cstr(b, ",\"variants\":[");
    for (size_t i = 0; i < sb->nv; i++) {
        variant *v = &sb->v[i];
        if (i) jb_raw(b, ",", 1);
        jb_cstr(b, "{\"name\":");
        jb_cstr_json(b, v->name);
        jb_cstr(b, ",\"policy\":");
        jb_cstr_json(b, mp_bandit_kind_name(v->opts.kind));
        jb_cstr(b, ",\"weight\":");
        jb_f64(b, v->weight);
        jb_printf(b,
                  ",\"requests\":%llu,\"impressions\":%llu,\"feedback\":%llu,\"clicks\":%llu,\"reward_sum\":%.6f,"
                  "\"updates\":%llu,\"events_held\":%zu}",
                  (unsigned long long)atomic_load(&v->requests), (unsigned long long)atomic_load(&v->impressions),
                  (unsigned long long)atomic_load(&v->feedback), (unsigned long long)atomic_load(&v->clicks),
                  (double)atomic_load(&v->reward_micros) / 1e6, (unsigned long long)mp_bandit_updates(v->b),
                  mp_bandit_log_size(v->log));
    }
    jb_cstr(b, "]}");
}

void mp_serve_bandit_metrics(mp_serve_bandit *sb, jbuf *b) {
    if (!sb) return;
    static const char *const names[] = {"requests", "impressions", "feedback", "clicks"};
    static const char *const helps[] = {"lists served", "items served", "feedback calls accepted",
                                        "feedback with reward > 0"};
    for (int s = 0; s < 4; s++) {
        jb_printf(b, "# HELP magpie_ab_%s_total A/B variant %s.\n# TYPE magpie_ab_%s_total counter\n", names[s],
                  helps[s], names[s]);
        for (size_t i = 0; i < sb->nv; i++) {
            variant *v = &sb->v[i];
            uint64_t x = s == 0   ? atomic_load(&v->requests)
                         : s == 1 ? atomic_load(&v->impressions)
                         : s == 2 ? atomic_load(&v->feedback)
                                  : atomic_load(&v->clicks);
            jb_printf(b, "magpie_ab_%s_total{variant=\"%s\"} %llu\n", names[s], v->name, (unsigned long long)x);
        }
    }
    jb_cstr(b, "# HELP magpie_ab_reward_sum Sum of positive feedback rewards per A/B variant.\n"
               "# TYPE magpie_ab_reward_sum counter\n");
    for (size_t i = 0; i < sb->nv; i++)
        jb_printf(b, "magpie_ab_reward_sum{variant=\"%s\"} %.6f\n", sb->v[i].name,
                  (double)atomic_load(&sb->v[i].reward_micros) / 1e6);
    jb_cstr(b, "# HELP magpie_bandit_events_held Served lists that still accept feedback.\n"
               "# TYPE magpie_bandit_events_held gauge\n");
    for (size_t i = 0; i < sb->nv; i++)
        jb_printf(b, "magpie_bandit_events_held{variant=\"%s\"} %zu\n", sb->v[i].name,
                  mp_bandit_log_size(sb->v[i].log));
}
