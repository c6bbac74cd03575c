/* src/eval/ope_read.c: readers of logged bandit feedback (CSV, the Open Bandit Dataset, Magpie's JSONL feedback
 * log) and of obp's prior_bts.yaml. Formats are described in include/magpie/ope.h. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/buf.h"
#include "magpie/json.h"
#include "magpie/ope.h"

int mp_ope_format_parse(const char *name) {
    if (!name) return -1;
    if (!strcasecmp(name, "csv")) return MP_OPE_FORMAT_CSV;
    if (!strcasecmp(name, "obd")) return MP_OPE_FORMAT_OBD;
    if (!strcasecmp(name, "jsonl")) return MP_OPE_FORMAT_JSONL;
    return -1;
}

static int slurp(const char *path, char **out, size_t *len, mp_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return mp_error_set(err, MP_EIO, "%s: cannot open: %s", path, strerror(errno));
    mp_buf b;
    mp_buf_init(&b);
    int rc = mp_buf_add_file(&b, f);
    fclose(f);
    if (rc == MP_OK && !(*out = mp_buf_take(&b, len))) rc = MP_ENOMEM;
    if (rc != MP_OK) {
        mp_buf_free(&b);
        return rc == MP_ENOMEM ? mp_error_set(err, MP_ENOMEM, "%s: out of memory", path)
                               : mp_error_set(err, MP_EIO, "%s: read error", path);
    }
    return MP_OK;
}

/* ---------------------------------------------------------------- the row collector shared by all formats */

typedef struct {
    const char *path;
    size_t n, cap;
    uint32_t *label; /* [n] temporary action id (first appearance) */
    int64_t *pos;    /* [n] raw position */
    double *reward, *pscore;
    uint32_t *ctx;
    mp_strmap *labels;    /* action label -> temporary id */
    int all_int;          /* every label is a non-negative integer < 2^24 */
    int has_pos;
    uint32_t n_feat;
    mp_strmap *values;    /* "column\x1fvalue" -> value id */
    mp_strmap *contexts;  /* packed value ids -> context id */
    uint32_t *ctx_feat;   /* [contexts * n_feat] */
    size_t ctx_cap;
} collector;

static int col_init(collector *c, const char *path, uint32_t n_feat, int has_pos, mp_error *err) {
    memset(c, 0, sizeof *c);
    c->path = path;
    c->all_int = 1;
    c->has_pos = has_pos;
    c->n_feat = n_feat;
    if (mp_strmap_create(&c->labels, 64) || mp_strmap_create(&c->values, 64) || mp_strmap_create(&c->contexts, 64))
        return mp_error_set(err, MP_ENOMEM, "%s: out of memory", path);
    return MP_OK;
}

static void col_free(collector *c) {
    free(c->label);
    free(c->pos);
    free(c->reward);
    free(c->pscore);
    free(c->ctx);
    free(c->ctx_feat);
    mp_strmap_destroy(c->labels);
    mp_strmap_destroy(c->values);
    mp_strmap_destroy(c->contexts);
}

#define GROW(p, cap) ((p) = realloc((p), (cap) * sizeof *(p)))

/* Adds a row; feats[f] are the feature texts (lengths flen[f]). */
static int col_add(collector *c, size_t line, const char *label, size_t label_len, int64_t pos, double reward,
                   double pscore, const char *const *feats, const size_t *flen, mp_error *err) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4096;
        void *a = realloc(c->label, cap * sizeof *c->label), *b = realloc(c->pos, cap * sizeof *c->pos);
        if (a) c->label = a;
        if (b) c->pos = b;
        void *d = realloc(c->reward, cap * sizeof *c->reward), *e = realloc(c->pscore, cap * sizeof *c->pscore);
        if (d) c->reward = d;
        if (e) c->pscore = e;
        void *g = realloc(c->ctx, cap * sizeof *c->ctx);
        if (g) c->ctx = g;
        if (!a || !b || !d || !e || !g) return mp_error_set(err, MP_ENOMEM, "%s:%zu: out of memory", c->path, line);
        c->cap = cap;
    }
    if (label_len == 0) return mp_error_set(err, MP_EBADREC, "%s:%zu: the action (item) is empty", c->path, line);
    uint32_t id;
    if (mp_strmap_intern(c->labels, label, label_len, &id, NULL))
        return mp_error_set(err, MP_ENOMEM, "%s:%zu: out of memory", c->path, line);
    if (c->all_int) {
        if (label_len > 8) c->all_int = 0;
        for (size_t k = 0; k < label_len && c->all_int; k++)
            if (!isdigit((unsigned char)label[k])) c->all_int = 0;
        if (c->all_int && strtol(label, NULL, 10) >= (1L << 24)) c->all_int = 0;
    }
    if (!(pscore > 0.0 && pscore <= 1.0))
        return mp_error_set(err, MP_ERANGE,
                            "%s:%zu: propensity %g is not in (0, 1]: it must be the logging policy's positive "
                            "probability of showing this item here",
                            c->path, line, pscore);
    if (!isfinite(reward)) return mp_error_set(err, MP_ERANGE, "%s:%zu: reward is not finite", c->path, line);
    uint32_t vals[64];
    for (uint32_t f = 0; f < c->n_feat; f++) {
        char key[512];
        int kl = snprintf(key, sizeof key, "%u\x1f%.*s", f, (int)(flen[f] < 400 ? flen[f] : 400), feats[f]);
        if (mp_strmap_intern(c->values, key, (size_t)kl, &vals[f], NULL))
            return mp_error_set(err, MP_ENOMEM, "%s:%zu: out of memory", c->path, line);
    }
    uint32_t cid = 0;
    if (c->n_feat) {
        int ins = 0;
        if (mp_strmap_intern(c->contexts, (const char *)vals, c->n_feat * sizeof *vals, &cid, &ins))
            return mp_error_set(err, MP_ENOMEM, "%s:%zu: out of memory", c->path, line);
        if (ins) {
            if ((size_t)cid + 1 > c->ctx_cap) {
                c->ctx_cap = c->ctx_cap ? c->ctx_cap * 2 : 256;
                if (!GROW(c->ctx_feat, c->ctx_cap * c->n_feat))
                    return mp_error_set(err, MP_ENOMEM, "%s:%zu: out of memory", c->path, line);
            }
            memcpy(c->ctx_feat + (size_t)cid * c->n_feat, vals, c->n_feat * sizeof *vals);
        }
    }
    c->label[c->n] = id;
    c->pos[c->n] = pos;
    c->reward[c->n] = reward;
    c->pscore[c->n] = pscore;
    c->ctx[c->n] = cid;
    c->n++;
    return MP_OK;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Turns the collected rows into a log (takes what it can from c; c is freed by the caller). */
static int col_finish(collector *c, mp_ope_log *log, mp_error *err) {
    memset(log, 0, sizeof *log);
    if (c->n == 0) return mp_error_set(err, MP_EEMPTY, "%s: no rows", c->path);
    size_t n = c->n;
    uint32_t nl = (uint32_t)mp_strmap_size(c->labels);
    uint32_t *map = malloc(nl * sizeof *map);
    if (!map) return mp_error_set(err, MP_ENOMEM, "%s: out of memory", c->path);
    uint32_t A = 0;
    if (c->all_int) {
        for (uint32_t t = 0; t < nl; t++) {
            map[t] = (uint32_t)strtol(mp_strmap_key(c->labels, t, NULL), NULL, 10);
            if (map[t] + 1 > A) A = map[t] + 1;
        }
        if (mp_strmap_create(&log->action_labels, A)) {
            free(map);
            return mp_error_set(err, MP_ENOMEM, "%s: out of memory", c->path);
        }
        for (uint32_t a = 0; a < A; a++) {
            char k[16];
            int kl = snprintf(k, sizeof k, "%u", a);
            uint32_t id;
            if (mp_strmap_intern(log->action_labels, k, (size_t)kl, &id, NULL)) {
                free(map);
                mp_ope_log_free(log);
                return mp_error_set(err, MP_ENOMEM, "%s: out of memory", c->path);
            }
        }
    } else {
        for (uint32_t t = 0; t < nl; t++) map[t] = t;
        A = nl;
        log->action_labels = c->labels;
        c->labels = NULL;
    }
    /* Slots: the distinct positions, sorted. */
    int64_t *pos_sorted = malloc(n * sizeof *pos_sorted);
    if (!pos_sorted) {
        free(map);
        mp_ope_log_free(log);
        return mp_error_set(err, MP_ENOMEM, "%s: out of memory", c->path);
    }
    memcpy(pos_sorted, c->pos, n * sizeof *pos_sorted);
    qsort(pos_sorted, n, sizeof *pos_sorted, cmp_i64);
    size_t S = 0;
    for (size_t i = 0; i < n; i++)
        if (S == 0 || pos_sorted[i] != pos_sorted[S - 1]) pos_sorted[S++] = pos_sorted[i];
    if (S > 1000) {
        free(map);
        free(pos_sorted);
        mp_ope_log_free(log);
        return mp_error_set(err, MP_EINVAL, "%s: %zu distinct positions; at most 1000 slots are supported", c->path,
                            S);
    }
    log->n = n;
    log->n_actions = A;
    log->n_slots = (uint32_t)S;
    log->action = malloc(n * sizeof *log->action);
    log->slot = S > 1 ? malloc(n * sizeof *log->slot) : NULL;
    log->slot_labels = c->has_pos ? malloc(S * sizeof *log->slot_labels) : NULL;
    if (!log->action || (S > 1 && !log->slot) || (c->has_pos && !log->slot_labels)) {
        free(map);
        free(pos_sorted);
        mp_ope_log_free(log);
        return mp_error_set(err, MP_ENOMEM, "%s: out of memory", c->path);
    }
    if (log->slot_labels) memcpy(log->slot_labels, pos_sorted, S * sizeof *log->slot_labels);
    for (size_t i = 0; i < n; i++) {
        log->action[i] = map[c->label[i]];
        if (log->slot) {
            size_t lo = 0, hi = S - 1;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (pos_sorted[mid] < c->pos[i]) lo = mid + 1;
                else hi = mid;
            }
            log->slot[i] = (uint32_t)lo;
        }
    }
    free(map);
    free(pos_sorted);
    log->reward = c->reward, c->reward = NULL;
    log->pscore = c->pscore, c->pscore = NULL;
    if (c->n_feat) {
        log->n_ctx = (uint32_t)mp_strmap_size(c->contexts);
        log->ctx = c->ctx, c->ctx = NULL;
        log->n_feat = c->n_feat;
        log->n_values = (uint32_t)mp_strmap_size(c->values);
        log->ctx_feat = c->ctx_feat, c->ctx_feat = NULL;
    }
    return MP_OK;
}

/* ---------------------------------------------------------------- CSV and OBD */

#define MAX_COLS 4096

/* Splits one CSV line in place (double quotes with "" escapes; no newlines inside fields). Returns the field
 * count or -1 when there are too many or a quote is unterminated. */
static int csv_split(char *line, size_t len, char **field, size_t *flen) {
    int nf = 0;
    size_t i = 0;
    for (;;) {
        if (nf == MAX_COLS) return -1;
        if (i < len && line[i] == '"') {
            size_t w = i, r = i + 1;
            field[nf] = line + i;
            for (;;) {
                if (r >= len) return -1;
                if (line[r] == '"') {
                    if (r + 1 < len && line[r + 1] == '"') {
                        line[w++] = '"';
                        r += 2;
                        continue;
                    }
                    r++;
                    break;
                }
                line[w++] = line[r++];
            }
            flen[nf++] = w - i;
            i = r;
        } else {
            size_t st = i;
            while (i < len && line[i] != ',') i++;
            field[nf] = line + st;
            flen[nf++] = i - st;
        }
        if (i >= len) break;
        if (line[i] != ',') return -1;
        i++;
    }
    return nf;
}

static int field_is(const char *f, size_t len, const char *name) {
    return strlen(name) == len && memcmp(f, name, len) == 0;
}

static int parse_num(const char *f, size_t len, double *out) {
    while (len && (f[len - 1] == ' ' || f[len - 1] == '\t')) len--;
    while (len && (*f == ' ' || *f == '\t')) f++, len--;
    return mp_parse_double(f, len, out);
}

static int read_csv(const char *path, char *buf, size_t blen, int obd, mp_ope_log *log, mp_error *err) {
    char **field = malloc(MAX_COLS * sizeof *field);
    size_t *flen = malloc(MAX_COLS * sizeof *flen);
    int *feat_col = malloc(MAX_COLS * sizeof *feat_col);
    if (!field || !flen || !feat_col) {
        free(field), free(flen), free(feat_col);
        return mp_error_set(err, MP_ENOMEM, "%s: out of memory", path);
    }
    const char *name_action = obd ? "item_id" : "action", *name_reward = obd ? "click" : "reward";
    const char *name_ps = obd ? "propensity_score" : "propensity";
    int c_action = -1, c_reward = -1, c_ps = -1, c_pos = -1, ncols = 0, nfeat = 0;
    collector col;
    int rc = MP_OK, inited = 0;
    size_t line = 0;
    char *p = buf, *end = buf + blen;
    const char *feats[64];
    size_t featlen[64];
    while (p < end && rc == MP_OK) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        size_t len = (size_t)(le - p);
        if (len && p[len - 1] == '\r') len--;
        line++;
        char *cur = p;
        p = nl ? nl + 1 : end;
        if (len == 0) continue;
        int nf = csv_split(cur, len, field, flen);
        if (nf < 0) {
            rc = mp_error_set(err, MP_EBADREC, "%s:%zu: malformed CSV line (unterminated quote or over %d columns)",
                              path, line, MAX_COLS);
            break;
        }
        if (!inited) { /* the header */
            ncols = nf;
            for (int k = 0; k < nf; k++) {
                if (field_is(field[k], flen[k], name_action)) c_action = k;
                else if (field_is(field[k], flen[k], name_reward)) c_reward = k;
                else if (field_is(field[k], flen[k], name_ps)) c_ps = k;
                else if (field_is(field[k], flen[k], "position")) c_pos = k;
                else if (obd ? (flen[k] > 13 && !memcmp(field[k], "user_feature_", 13))
                             : (flen[k] > 0 && !field_is(field[k], flen[k], "event_id") &&
                                !field_is(field[k], flen[k], "user") && !field_is(field[k], flen[k], "timestamp")))
                    feat_col[nfeat++] = k;
                if (nfeat == 64) {
                    rc = mp_error_set(err, MP_EINVAL, "%s:1: more than 63 context feature columns", path);
                    break;
                }
            }
            if (rc) break;
            const char *missing = c_action < 0 ? name_action : c_reward < 0 ? name_reward : c_ps < 0 ? name_ps : NULL;
            if (!missing && obd && c_pos < 0) missing = "position";
            if (missing) {
                rc = mp_error_set(err, MP_EBADREC, "%s:1: no column `%s` in the header%s", path, missing,
                                  obd ? " (not an Open Bandit Dataset <campaign>.csv file?)"
                                      : " (a CSV log needs the columns action, reward, propensity; see magpie ope "
                                        "--help)");
                break;
            }
            rc = col_init(&col, path, (uint32_t)nfeat, c_pos >= 0, err);
            inited = 1; /* col_free also releases a partly initialised collector */
            if (rc) break;
            continue;
        }
        if (nf != ncols) {
            rc = mp_error_set(err, MP_EBADREC, "%s:%zu: %d fields, but the header has %d", path, line, nf, ncols);
            break;
        }
        double reward, ps, posd = 0;
        if (parse_num(field[c_reward], flen[c_reward], &reward)) {
            rc = mp_error_set(err, MP_EBADREC, "%s:%zu: column `%s`: expected a number, got \"%.*s\"", path, line,
                              name_reward, (int)(flen[c_reward] < 40 ? flen[c_reward] : 40), field[c_reward]);
            break;
        }
        if (parse_num(field[c_ps], flen[c_ps], &ps)) {
            rc = mp_error_set(err, MP_EBADREC, "%s:%zu: column `%s`: expected a number, got \"%.*s\"", path, line,
                              name_ps, (int)(flen[c_ps] < 40 ? flen[c_ps] : 40), field[c_ps]);
            break;
        }
        if (!(ps > 0.0 && ps <= 1.0)) {
            rc = mp_error_set(err, MP_ERANGE,
                              "%s:%zu: column `%s`: propensity %g is not in (0, 1]: it must be the logging "
                              "policy's positive probability of showing this item here",
                              path, line, name_ps, ps);
            break;
        }
        if (c_pos >= 0 && (parse_num(field[c_pos], flen[c_pos], &posd) || posd != floor(posd) || fabs(posd) > 1e9)) {
            rc = mp_error_set(err, MP_EBADREC, "%s:%zu: column `position`: expected an integer, got \"%.*s\"", path,
                              line, (int)(flen[c_pos] < 40 ? flen[c_pos] : 40), field[c_pos]);
            break;
        }
        for (int f = 0; f < nfeat; f++) {
            feats[f] = field[feat_col[f]];
            featlen[f] = flen[feat_col[f]];
        }
        rc = col_add(&col, line, field[c_action], flen[c_action], (int64_t)posd, reward, ps, feats, featlen, err);
    }
    free(field), free(flen), free(feat_col);
    if (!inited && rc == MP_OK) rc = mp_error_set(err, MP_EEMPTY, "%s: empty file (no header)", path);
    if (rc == MP_OK && inited) rc = col_finish(&col, log, err);
    if (inited) col_free(&col);
    return rc;
}

/* ---------------------------------------------------------------- JSONL */

static int read_jsonl(const char *path, char *buf, size_t blen, mp_ope_log *log, mp_error *err) {
    collector col;
    int rc = col_init(&col, path, 0, 1, err);
    if (rc) {
        col_free(&col);
        return rc;
    }
    char *scratch_buf = malloc(blen + 1);
    if (!scratch_buf) {
        col_free(&col);
        return mp_error_set(err, MP_ENOMEM, "%s: out of memory", path);
    }
    size_t line = 0;
    char *p = buf, *end = buf + blen;
    while (p < end && rc == MP_OK) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        char *cur = p;
        p = nl ? nl + 1 : end;
        line++;
        mp_json_cur jc;
        mp_json_init(&jc, cur, (size_t)(le - cur));
        if (mp_json_at_end(&jc)) continue;
        char *scratch = scratch_buf;
        mp_str item = {0}, key;
        double pos = 0, ps = NAN, reward = NAN;
        int have_pos = 0, have_event = 0, have_user = 0, done = 0, is_int;
        if (mp_json_object_begin(&jc)) goto bad_json;
        for (;;) {
            if (mp_json_object_next(&jc, &scratch, &key, &done)) goto bad_json;
            if (done) break;
            const char *field = NULL;
            if (field_is(key.ptr, key.len, "item")) {
                if (mp_json_peek(&jc) != MP_JSON_STRING && mp_json_peek(&jc) != MP_JSON_NUMBER) {
                    field = "item";
                    goto bad_field;
                }
                if (mp_json_peek(&jc) == MP_JSON_STRING ? mp_json_string(&jc, &scratch, &item)
                                                        : mp_json_number(&jc, &item, &is_int, NULL))
                    goto bad_json;
            } else if (field_is(key.ptr, key.len, "event_id") || field_is(key.ptr, key.len, "user")) {
                mp_str v;
                int t = mp_json_peek(&jc);
                if (t != MP_JSON_STRING && t != MP_JSON_NUMBER) {
                    field = key.ptr[0] == 'e' ? "event_id" : "user";
                    goto bad_field;
                }
                if (key.ptr[0] == 'e') have_event = 1;
                else have_user = 1;
                if (mp_json_skip(&jc, &v)) goto bad_json;
            } else if (field_is(key.ptr, key.len, "position") || field_is(key.ptr, key.len, "propensity") ||
                       field_is(key.ptr, key.len, "reward")) {
                double v;
                mp_str raw;
                field = key.ptr[0] == 'p' && key.ptr[1] == 'o' ? "position" : key.ptr[0] == 'p' ? "propensity" : "reward";
                if (mp_json_peek(&jc) != MP_JSON_NUMBER || mp_json_number(&jc, &raw, &is_int, &v)) goto bad_field;
                if (field[1] == 'o') {
                    if (v != floor(v) || fabs(v) > 1e9) goto bad_field;
                    pos = v;
                    have_pos = 1;
                } else if (field[0] == 'p') ps = v;
                else reward = v;
            } else if (mp_json_skip(&jc, NULL)) goto bad_json;
            continue;
        bad_field:
            rc = mp_error_set(err, MP_EBADREC, "%s:%zu: field `%s`: expected %s", path, line, field,
                              !strcmp(field, "position") ? "an integer"
                              : !strcmp(field, "item") || !strcmp(field, "event_id") || !strcmp(field, "user")
                                  ? "a string"
                                  : "a number");
            goto out;
        }
        if (!mp_json_at_end(&jc)) goto bad_json;
        {
            const char *missing = !have_event          ? "event_id"
                                  : !have_user         ? "user"
                                  : !item.ptr          ? "item"
                                  : !have_pos          ? "position"
                                  : isnan(ps)          ? "propensity"
                                  : isnan(reward)      ? "reward"
                                                       : NULL;
            if (missing) {
                rc = mp_error_set(err, MP_EBADREC, "%s:%zu: missing field `%s`", path, line, missing);
                goto out;
            }
        }
        rc = col_add(&col, line, item.ptr, item.len, (int64_t)pos, reward, ps, NULL, NULL, err);
        continue;
    bad_json:
        rc = mp_error_set(err, MP_EBADREC, "%s:%zu: invalid JSON: %s", path, line, jc.why ? jc.why : "expected an object");
        goto out;
    }
out:
    free(scratch_buf);
    if (rc == MP_OK) rc = col_finish(&col, log, err);
    col_free(&col);
    return rc;
}

int mp_ope_log_read(const char *path, mp_ope_format format, mp_ope_log *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len;
    int rc = slurp(path, &buf, &len, err);
    if (rc) return rc;
    switch (format) {
    case MP_OPE_FORMAT_CSV: rc = read_csv(path, buf, len, 0, out, err); break;
    case MP_OPE_FORMAT_OBD: rc = read_csv(path, buf, len, 1, out, err); break;
    case MP_OPE_FORMAT_JSONL: rc = read_jsonl(path, buf, len, out, err); break;
    default: rc = mp_error_set(err, MP_EINVAL, "%s: unknown log format %d", path, (int)format);
    }
    free(buf);
    if (rc == MP_OK) rc = mp_ope_log_check(out, path, err);
    if (rc) mp_ope_log_free(out);
    return rc;
}

/* ---------------------------------------------------------------- prior_bts.yaml */

int mp_ope_read_bts_prior(const char *path, const char *campaign, double **alpha, double **beta, uint32_t *n,
                          mp_error *err) {
    *alpha = *beta = NULL;
    *n = 0;
    char *buf;
    size_t len;
    int rc = slurp(path, &buf, &len, err);
    if (rc) return rc;
    double *lists[2] = {NULL, NULL};
    size_t cnt[2] = {0, 0}, cap[2] = {0, 0};
    int in_campaign = 0, found = 0, list = -1;
    size_t line = 0;
    char *p = buf, *end = buf + len;
    while (p < end && rc == MP_OK) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        char *cur = p;
        p = nl ? nl + 1 : end;
        line++;
        size_t l = (size_t)(le - cur);
        while (l && (cur[l - 1] == '\r' || cur[l - 1] == ' ')) l--;
        size_t ind = 0;
        while (ind < l && cur[ind] == ' ') ind++;
        if (ind == l || cur[ind] == '#') continue;
        const char *t = cur + ind;
        size_t tl = l - ind;
        if (ind == 0) { /* a campaign key */
            if (tl < 2 || t[tl - 1] != ':') {
                rc = mp_error_set(err, MP_EBADREC, "%s:%zu: expected a campaign name followed by ':'", path, line);
                break;
            }
            in_campaign = tl - 1 == strlen(campaign) && !memcmp(t, campaign, tl - 1);
            found |= in_campaign;
            list = -1;
        } else if (t[0] == '-') {
            if (!in_campaign) continue;
            if (list < 0) {
                rc = mp_error_set(err, MP_EBADREC, "%s:%zu: list item outside `alpha:` or `beta:`", path, line);
                break;
            }
            const char *v = t + 1;
            size_t vl = tl - 1;
            while (vl && *v == ' ') v++, vl--;
            double x;
            if (mp_parse_double(v, vl, &x)) {
                rc = mp_error_set(err, MP_EBADREC, "%s:%zu: expected a number, got \"%.*s\"", path, line, (int)vl, v);
                break;
            }
            if (cnt[list] == cap[list]) {
                cap[list] = cap[list] ? cap[list] * 2 : 64;
                double *nb = realloc(lists[list], cap[list] * sizeof *nb);
                if (!nb) {
                    rc = mp_error_set(err, MP_ENOMEM, "%s: out of memory", path);
                    break;
                }
                lists[list] = nb;
            }
            lists[list][cnt[list]++] = x;
        } else if (in_campaign) {
            if (tl == 6 && !memcmp(t, "alpha:", 6)) list = 0;
            else if (tl == 5 && !memcmp(t, "beta:", 5)) list = 1;
            else {
                rc = mp_error_set(err, MP_EBADREC, "%s:%zu: expected `alpha:` or `beta:`, got \"%.*s\"", path, line,
                                  (int)tl, t);
                break;
            }
        }
    }
    free(buf);
    if (rc == MP_OK && !found) rc = mp_error_set(err, MP_ENOTFOUND, "%s: no campaign `%s`", path, campaign);
    if (rc == MP_OK && (cnt[0] == 0 || cnt[0] != cnt[1]))
        rc = mp_error_set(err, MP_EBADREC, "%s: campaign `%s`: %zu alpha and %zu beta values (need equal, > 0)",
                          path, campaign, cnt[0], cnt[1]);
    if (rc) {
        free(lists[0]);
        free(lists[1]);
        return rc;
    }
    *alpha = lists[0];
    *beta = lists[1];
    *n = (uint32_t)cnt[0];
    return MP_OK;
}
