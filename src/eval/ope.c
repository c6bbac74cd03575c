/* src/eval/ope.c: off-policy estimators, bootstrap intervals, the BTS policy, reward models, synthetic logs and a
 * learned greedy policy (see include/magpie/ope.h for the formulas). The file readers are in ope_read.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/ope.h"
#include "magpie/rng.h"

/* ---------------------------------------------------------------- log and tables */

void mp_ope_log_free(mp_ope_log *log) {
    if (!log) return;
    free(log->action);
    free(log->slot);
    free(log->reward);
    free(log->pscore);
    free(log->ctx);
    free(log->ctx_feat);
    mp_strmap_destroy(log->action_labels);
    free(log->slot_labels);
    memset(log, 0, sizeof *log);
}

void mp_ope_table_free(mp_ope_table *t) {
    if (!t) return;
    free(t->v);
    free(t->row_of);
    memset(t, 0, sizeof *t);
}

void mp_ope_rounds_free(mp_ope_rounds *r) {
    if (!r) return;
    free(r->w);
    free(r->r);
    free(r->q);
    free(r->m);
    memset(r, 0, sizeof *r);
}

int mp_ope_log_check(const mp_ope_log *log, const char *what, mp_error *err) {
    if (!what) what = "log";
    if (!log) return mp_error_set(err, MP_EINVAL, "%s: no log given", what);
    if (log->n == 0) return mp_error_set(err, MP_EEMPTY, "%s: the log has no rounds", what);
    if (log->n_actions == 0 || log->n_slots == 0)
        return mp_error_set(err, MP_EINVAL, "%s: n_actions (%u) and n_slots (%u) must be positive", what,
                            log->n_actions, log->n_slots);
    if (!log->action || !log->reward || !log->pscore)
        return mp_error_set(err, MP_EINVAL, "%s: action, reward and pscore arrays are required", what);
    if (!log->slot && log->n_slots != 1)
        return mp_error_set(err, MP_EINVAL, "%s: %u slots but no slot array (slot may be NULL only with 1 slot)",
                            what, log->n_slots);
    if (!log->ctx && log->n_ctx > 1)
        return mp_error_set(err, MP_EINVAL, "%s: %u contexts but no context array", what, log->n_ctx);
    if (log->n_feat > 0 && (!log->ctx_feat || log->n_ctx == 0))
        return mp_error_set(err, MP_EINVAL, "%s: %u context features but no context feature table", what,
                            log->n_feat);
    for (size_t i = 0; i < log->n; i++) {
        if (log->action[i] >= log->n_actions)
            return mp_error_set(err, MP_ERANGE, "%s: round %zu: action %u out of range (n_actions = %u)", what, i,
                                log->action[i], log->n_actions);
        if (log->slot && log->slot[i] >= log->n_slots)
            return mp_error_set(err, MP_ERANGE, "%s: round %zu: slot %u out of range (n_slots = %u)", what, i,
                                log->slot[i], log->n_slots);
        if (log->ctx && log->ctx[i] >= log->n_ctx)
            return mp_error_set(err, MP_ERANGE, "%s: round %zu: context %u out of range (n_ctx = %u)", what, i,
                                log->ctx[i], log->n_ctx);
        double p = log->pscore[i];
        if (!(p > 0.0 && p <= 1.0))
            return mp_error_set(err, MP_ERANGE,
                                "%s: round %zu: propensity %g is not in (0, 1]: the logging policy's probability "
                                "of the shown item must be positive (a 0 makes the round unusable for IPS) and at "
                                "most 1",
                                what, i, p);
        if (!isfinite(log->reward[i]))
            return mp_error_set(err, MP_ERANGE, "%s: round %zu: reward is not a finite number", what, i);
    }
    if (log->ctx_feat)
        for (size_t j = 0; j < (size_t)log->n_ctx * log->n_feat; j++)
            if (log->ctx_feat[j] >= log->n_values)
                return mp_error_set(err, MP_ERANGE, "%s: context %zu: feature value %u out of range (n_values = %u)",
                                    what, j / log->n_feat, log->ctx_feat[j], log->n_values);
    return MP_OK;
}

/* The row of table t used by round i, or SIZE_MAX when t does not fit the log. */
static size_t table_row(const mp_ope_table *t, size_t n, size_t i) {
    if (t->row_of) return t->row_of[i];
    if (t->rows == n) return i;
    if (t->rows == 1) return 0;
    return SIZE_MAX;
}

static int table_check_shape(const mp_ope_log *log, const mp_ope_table *t, const char *what, mp_error *err) {
    if (!t || !t->v || t->rows == 0) return mp_error_set(err, MP_EINVAL, "%s: empty table", what);
    if (!t->row_of && t->rows != log->n && t->rows != 1)
        return mp_error_set(err, MP_EINVAL,
                            "%s: %zu rows do not match the log's %zu rounds (give one row per round, a single "
                            "shared row, or a row index per round)",
                            what, t->rows, log->n);
    if (t->row_of)
        for (size_t i = 0; i < log->n; i++)
            if (t->row_of[i] >= t->rows)
                return mp_error_set(err, MP_ERANGE, "%s: round %zu uses row %u but the table has %zu rows", what, i,
                                    t->row_of[i], t->rows);
    return MP_OK;
}

int mp_ope_policy_check(const mp_ope_log *log, const mp_ope_table *pi_e, mp_error *err) {
    int rc = table_check_shape(log, pi_e, "evaluation policy", err);
    if (rc) return rc;
    size_t A = log->n_actions, S = log->n_slots;
    for (size_t row = 0; row < pi_e->rows; row++)
        for (size_t s = 0; s < S; s++) {
            const double *p = pi_e->v + (row * S + s) * A;
            double sum = 0;
            for (size_t a = 0; a < A; a++) {
                if (!(p[a] >= 0.0 && p[a] <= 1.0))
                    return mp_error_set(err, MP_ERANGE,
                                        "evaluation policy: row %zu, slot %zu, action %zu: probability %g is not in "
                                        "[0, 1]",
                                        row, s, a, p[a]);
                sum += p[a];
            }
            if (fabs(sum - 1.0) > 1e-6)
                return mp_error_set(err, MP_ERANGE,
                                    "evaluation policy: row %zu, slot %zu: probabilities sum to %.9g, not 1", row, s,
                                    sum);
        }
    return MP_OK;
}

/* ---------------------------------------------------------------- estimators */

static const char *const estimator_names[MP_OPE_N_ESTIMATORS] = {"dm", "ips", "snips", "dr", "sndr", "switch-dr"};

const char *mp_ope_estimator_name(mp_ope_estimator e) {
    return (unsigned)e < MP_OPE_N_ESTIMATORS ? estimator_names[e] : "?";
}

int mp_ope_estimator_parse(const char *name) {
    if (!name) return -1;
    for (int e = 0; e < MP_OPE_N_ESTIMATORS; e++)
        if (!strcasecmp(name, estimator_names[e])) return e;
    if (!strcasecmp(name, "ipw")) return MP_OPE_IPS;
    if (!strcasecmp(name, "snipw")) return MP_OPE_SNIPS;
    if (!strcasecmp(name, "switch_dr") || !strcasecmp(name, "switchdr")) return MP_OPE_SWITCH_DR;
    return -1;
}

int mp_ope_estimator_needs_q(mp_ope_estimator e) {
    return e == MP_OPE_DM || e == MP_OPE_DR || e == MP_OPE_SNDR || e == MP_OPE_SWITCH_DR;
}

int mp_ope_rounds_build(const mp_ope_log *log, const mp_ope_table *pi_e, const mp_ope_table *q, mp_ope_rounds *out,
                        mp_error *err) {
    memset(out, 0, sizeof *out);
    int rc = mp_ope_log_check(log, "log", err);
    if (!rc) rc = mp_ope_policy_check(log, pi_e, err);
    if (!rc && q) rc = table_check_shape(log, q, "reward model", err);
    if (rc) return rc;
    size_t n = log->n, A = log->n_actions, S = log->n_slots;
    if (q)
        for (size_t j = 0; j < q->rows * S * A; j++)
            if (!isfinite(q->v[j]))
                return mp_error_set(err, MP_ERANGE, "reward model: entry %zu (row %zu) is not finite", j, j / (S * A));
    out->n = n;
    out->w = malloc(n * sizeof *out->w);
    out->r = malloc(n * sizeof *out->r);
    if (q) {
        out->q = malloc(n * sizeof *out->q);
        out->m = malloc(n * sizeof *out->m);
    }
    if (!out->w || !out->r || (q && (!out->q || !out->m))) {
        mp_ope_rounds_free(out);
        return mp_error_set(err, MP_ENOMEM, "out of memory for %zu rounds", n);
    }
    for (size_t i = 0; i < n; i++) {
        size_t s = log->slot ? log->slot[i] : 0, a = log->action[i];
        const double *pe = pi_e->v + (table_row(pi_e, n, i) * S + s) * A;
        out->w[i] = pe[a] / log->pscore[i];
        out->r[i] = log->reward[i];
        if (q) {
            const double *qr = q->v + (table_row(q, n, i) * S + s) * A;
            double m = 0;
            for (size_t b = 0; b < A; b++) m += pe[b] * qr[b];
            out->q[i] = qr[a];
            out->m[i] = m;
        }
    }
    return MP_OK;
}

/* The sums every estimator is made of, over a multiset of rounds. */
typedef struct {
    double n, w, wr, m, wc, sw; /* count, sum w, sum w r, sum m, sum w (r - q), sum 1[w <= tau] w (r - q) */
} ope_sums;

static void sums_add(ope_sums *s, const mp_ope_rounds *r, size_t i, double tau) {
    s->n += 1;
    s->w += r->w[i];
    s->wr += r->w[i] * r->r[i];
    if (r->q) {
        double c = r->w[i] * (r->r[i] - r->q[i]);
        s->m += r->m[i];
        s->wc += c;
        if (r->w[i] <= tau) s->sw += c;
    }
}

static double sums_value(const ope_sums *s, mp_ope_estimator e) {
    switch (e) {
    case MP_OPE_DM: return s->m / s->n;
    case MP_OPE_IPS: return s->wr / s->n;
    case MP_OPE_SNIPS: return s->w > 0 ? s->wr / s->w : NAN;
    case MP_OPE_DR: return (s->m + s->wc) / s->n;
    case MP_OPE_SNDR: return s->w > 0 ? s->m / s->n + s->wc / s->w : NAN;
    case MP_OPE_SWITCH_DR: return (s->m + s->sw) / s->n;
    default: return NAN;
    }
}

int mp_ope_estimate(const mp_ope_rounds *r, mp_ope_estimator e, double tau, double *value, mp_error *err) {
    if ((unsigned)e >= MP_OPE_N_ESTIMATORS) return mp_error_set(err, MP_EINVAL, "unknown estimator %d", (int)e);
    if (!r || r->n == 0) return mp_error_set(err, MP_EEMPTY, "%s: no rounds to estimate from", estimator_names[e]);
    if (mp_ope_estimator_needs_q(e) && !r->q)
        return mp_error_set(err, MP_EINVAL, "%s needs a reward model (q) and none was given", estimator_names[e]);
    ope_sums s = {0};
    for (size_t i = 0; i < r->n; i++) sums_add(&s, r, i, tau);
    if ((e == MP_OPE_SNIPS || e == MP_OPE_SNDR) && !(s.w > 0))
        return mp_error_set(err, MP_EEMPTY,
                            "%s: the importance weights sum to 0 (the evaluation policy never picks a logged "
                            "action)",
                            estimator_names[e]);
    *value = sums_value(&s, e);
    return MP_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy's default percentile: linear interpolation between order statistics at (B - 1) q. */
static double percentile_sorted(const double *v, size_t n, double q) {
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)floor(pos);
    if (lo + 1 >= n) return v[n - 1];
    double f = pos - (double)lo;
    return v[lo] + f * (v[lo + 1] - v[lo]);
}

void mp_ope_opts_default(mp_ope_opts *o) {
    o->tau = 10.0;
    o->bootstrap = 1000;
    o->alpha = 0.05;
    o->seed = 12345;
}

int mp_ope_estimate_all(const mp_ope_rounds *r, const mp_ope_opts *opts, mp_ope_result *out, mp_error *err) {
    mp_ope_opts def;
    if (!opts) {
        mp_ope_opts_default(&def);
        opts = &def;
    }
    if (!r || r->n == 0) return mp_error_set(err, MP_EEMPTY, "no rounds to estimate from");
    if (!(opts->alpha > 0 && opts->alpha < 1))
        return mp_error_set(err, MP_EINVAL, "alpha %g must be in (0, 1)", opts->alpha);
    if (isnan(opts->tau) || opts->tau < 0) return mp_error_set(err, MP_EINVAL, "tau %g must be >= 0", opts->tau);
    ope_sums full = {0};
    for (size_t i = 0; i < r->n; i++) sums_add(&full, r, i, opts->tau);
    for (int e = 0; e < MP_OPE_N_ESTIMATORS; e++) {
        out[e].available = !mp_ope_estimator_needs_q((mp_ope_estimator)e) || r->q != NULL;
        out[e].value = out[e].available ? sums_value(&full, (mp_ope_estimator)e) : NAN;
        out[e].lo = out[e].hi = out[e].boot_mean = out[e].boot_sd = NAN;
    }
    size_t B = opts->bootstrap;
    if (B == 0) return MP_OK;
    double *boot = malloc(B * MP_OPE_N_ESTIMATORS * sizeof *boot);
    if (!boot) return mp_error_set(err, MP_ENOMEM, "out of memory for %zu bootstrap estimates", B);
    mp_rng rng;
    mp_rng_seed(&rng, opts->seed);
    for (size_t b = 0; b < B; b++) {
        ope_sums s = {0};
        for (size_t k = 0; k < r->n; k++) sums_add(&s, r, (size_t)mp_rng_below(&rng, r->n), opts->tau);
        for (int e = 0; e < MP_OPE_N_ESTIMATORS; e++) boot[(size_t)e * B + b] = sums_value(&s, (mp_ope_estimator)e);
    }
    for (int e = 0; e < MP_OPE_N_ESTIMATORS; e++) {
        if (!out[e].available) continue;
        double *v = boot + (size_t)e * B;
        /* A resample whose weights sum to 0 has no self-normalised value: leave those out. */
        size_t k = 0;
        double sum = 0, sq = 0;
        for (size_t b = 0; b < B; b++)
            if (!isnan(v[b])) v[k++] = v[b];
        if (k == 0) continue;
        for (size_t b = 0; b < k; b++) sum += v[b];
        double mean = sum / (double)k;
        for (size_t b = 0; b < k; b++) sq += (v[b] - mean) * (v[b] - mean);
        qsort(v, k, sizeof *v, cmp_double);
        out[e].boot_mean = mean;
        out[e].boot_sd = k > 1 ? sqrt(sq / (double)(k - 1)) : 0.0;
        out[e].lo = percentile_sorted(v, k, opts->alpha / 2);
        out[e].hi = percentile_sorted(v, k, 1 - opts->alpha / 2);
    }
    free(boot);
    return MP_OK;
}

/* ---------------------------------------------------------------- Bernoulli Thompson sampling */

/* Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 by the boost Gamma(shape + 1) U^(1/shape). */
static double gamma_draw(mp_rng *rng, double shape) {
    if (shape < 1.0) {
        double u = mp_rng_uniform(rng);
        return gamma_draw(rng, shape + 1.0) * pow(u > 0 ? u : 1e-300, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = mp_rng_normal(rng), v = 1.0 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = mp_rng_uniform(rng);
        if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
        if (u > 0 && log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
    }
}

int mp_ope_policy_bts(const double *alpha, const double *beta, uint32_t n_actions, uint32_t n_slots, uint64_t n_sim,
                      uint64_t seed, mp_ope_table *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    if (n_actions == 0 || n_slots == 0 || n_slots > n_actions)
        return mp_error_set(err, MP_EINVAL, "BTS policy: need 1 <= n_slots (%u) <= n_actions (%u)", n_slots,
                            n_actions);
    if (n_sim == 0) return mp_error_set(err, MP_EINVAL, "BTS policy: n_sim must be positive");
    for (uint32_t a = 0; a < n_actions; a++)
        if (!(alpha[a] > 0 && beta[a] > 0 && isfinite(alpha[a]) && isfinite(beta[a])))
            return mp_error_set(err, MP_ERANGE, "BTS policy: action %u: alpha %g and beta %g must be positive", a,
                                alpha[a], beta[a]);
    uint64_t *count = calloc((size_t)n_slots * n_actions, sizeof *count);
    double *theta = malloc(n_actions * sizeof *theta);
    uint32_t *top = malloc(n_slots * sizeof *top);
    out->v = malloc((size_t)n_slots * n_actions * sizeof *out->v);
    if (!count || !theta || !top || !out->v) {
        free(count);
        free(theta);
        free(top);
        mp_ope_table_free(out);
        return mp_error_set(err, MP_ENOMEM, "BTS policy: out of memory");
    }
    mp_rng rng;
    mp_rng_seed(&rng, seed);
    for (uint64_t sim = 0; sim < n_sim; sim++) {
        for (uint32_t a = 0; a < n_actions; a++) {
            double x = gamma_draw(&rng, alpha[a]), y = gamma_draw(&rng, beta[a]);
            theta[a] = x / (x + y);
        }
        /* Top n_slots by theta, descending (partial selection; ties go to the lower id). */
        for (uint32_t s = 0; s < n_slots; s++) {
            uint32_t best = UINT32_MAX;
            for (uint32_t a = 0; a < n_actions; a++) {
                int taken = 0;
                for (uint32_t t = 0; t < s; t++) taken |= top[t] == a;
                if (!taken && (best == UINT32_MAX || theta[a] > theta[best])) best = a;
            }
            top[s] = best;
            count[(size_t)s * n_actions + best]++;
        }
    }
    for (size_t j = 0; j < (size_t)n_slots * n_actions; j++) out->v[j] = (double)count[j] / (double)n_sim;
    out->rows = 1;
    free(count);
    free(theta);
    free(top);
    return MP_OK;
}

/* ---------------------------------------------------------------- reward models */

void mp_ope_rm_opts_default(mp_ope_rm_opts *o) {
    o->kind = MP_OPE_RM_LOGISTIC;
    o->folds = 3;
    o->seed = 12345;
    o->l2 = 1.0;
    o->smoothing = 100.0;
    o->max_iter = 25;
}

/* Feature layout of the logistic model: [bias | action A | slot S | action x slot A*S | context values V]. */
typedef struct {
    size_t A, S, V, F, D;
} lr_layout;

static size_t lr_features(const lr_layout *L, const mp_ope_log *log, size_t c, size_t a, size_t s, uint32_t *idx) {
    size_t k = 0;
    idx[k++] = 0;
    idx[k++] = (uint32_t)(1 + a);
    if (L->S > 1) {
        idx[k++] = (uint32_t)(1 + L->A + s);
        idx[k++] = (uint32_t)(1 + L->A + L->S + a * L->S + s);
    }
    for (size_t f = 0; f < L->F; f++) idx[k++] = (uint32_t)(1 + L->A + L->S + L->A * L->S + log->ctx_feat[c * L->F + f]);
    return k;
}

/* In-place Cholesky solve of H x = g (H symmetric positive definite, D x D); returns 0 or -1 if not PD. */
static int chol_solve(double *H, double *g, size_t D) {
    for (size_t j = 0; j < D; j++) {
        double d = H[j * D + j];
        for (size_t k = 0; k < j; k++) d -= H[j * D + k] * H[j * D + k];
        if (!(d > 0)) return -1;
        d = sqrt(d);
        H[j * D + j] = d;
        for (size_t i = j + 1; i < D; i++) {
            double v = H[i * D + j];
            for (size_t k = 0; k < j; k++) v -= H[i * D + k] * H[j * D + k];
            H[i * D + j] = v / d;
        }
    }
    for (size_t i = 0; i < D; i++) {
        double v = g[i];
        for (size_t k = 0; k < i; k++) v -= H[i * D + k] * g[k];
        g[i] = v / H[i * D + i];
    }
    for (size_t i = D; i-- > 0;) {
        double v = g[i];
        for (size_t k = i + 1; k < D; k++) v -= H[k * D + i] * g[k];
        g[i] = v / H[i * D + i];
    }
    return 0;
}

static double logit(double p) { return log(p / (1 - p)); }

static double sigmoid(double z) {
    return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

/* Fits theta[D] on the rounds with fold[i] != skip by Newton's method (penalty l2 on all but the bias). */
static int lr_fit(const lr_layout *L, const mp_ope_log *log, const uint32_t *fold, uint32_t skip,
                  const mp_ope_rm_opts *o, double *theta, mp_error *err) {
    size_t D = L->D;
    double *H = malloc(D * D * sizeof *H), *g = malloc(D * sizeof *g);
    uint32_t idx[64];
    if (!H || !g) {
        free(H);
        free(g);
        return mp_error_set(err, MP_ENOMEM, "reward model: out of memory for a %zu x %zu Hessian", D, D);
    }
    memset(theta, 0, D * sizeof *theta);
    /* Start the bias at the log-odds of the mean reward: Newton then converges in a few steps on rare clicks. */
    double rs = 0, cnt = 0;
    for (size_t i = 0; i < log->n; i++)
        if (fold[i] != skip) rs += log->reward[i], cnt += 1;
    double mu = cnt > 0 ? rs / cnt : 0.5;
    mu = mu < 1e-6 ? 1e-6 : mu > 1 - 1e-6 ? 1 - 1e-6 : mu;
    theta[0] = logit(mu);
    int rc = MP_OK;
    for (uint32_t it = 0; it < o->max_iter; it++) {
        memset(H, 0, D * D * sizeof *H);
        for (size_t j = 0; j < D; j++) g[j] = j == 0 ? 0.0 : -o->l2 * theta[j];
        for (size_t j = 1; j < D; j++) H[j * D + j] = o->l2;
        H[0] = 1e-9;
        for (size_t i = 0; i < log->n; i++) {
            if (fold[i] == skip) continue;
            size_t c = log->ctx ? log->ctx[i] : 0;
            size_t k = lr_features(L, log, c, log->action[i], log->slot ? log->slot[i] : 0, idx);
            double z = 0;
            for (size_t u = 0; u < k; u++) z += theta[idx[u]];
            double p = sigmoid(z), h = p * (1 - p);
            for (size_t u = 0; u < k; u++) {
                g[idx[u]] += log->reward[i] - p;
                for (size_t v = 0; v < k; v++) H[idx[u] * D + idx[v]] += h;
            }
        }
        if (chol_solve(H, g, D) != 0) {
            rc = mp_error_set(err, MP_ERANGE, "reward model: the Newton system is not positive definite (raise --l2)");
            break;
        }
        double step = 0;
        for (size_t j = 0; j < D; j++) {
            theta[j] += g[j];
            if (fabs(g[j]) > step) step = fabs(g[j]);
        }
        if (step < 1e-9) break;
    }
    free(H);
    free(g);
    return rc;
}

int mp_ope_reward_model_fit(const mp_ope_log *log, const mp_ope_rm_opts *opts, mp_ope_table *q, mp_error *err) {
    memset(q, 0, sizeof *q);
    mp_ope_rm_opts def;
    if (!opts) {
        mp_ope_rm_opts_default(&def);
        opts = &def;
    }
    int rc = mp_ope_log_check(log, "log", err);
    if (rc) return rc;
    uint32_t K = opts->folds ? opts->folds : 1;
    if (K > log->n) return mp_error_set(err, MP_EINVAL, "reward model: %u folds but only %zu rounds", K, log->n);
    if (opts->kind == MP_OPE_RM_LOGISTIC) {
        for (size_t i = 0; i < log->n; i++)
            if (log->reward[i] < 0 || log->reward[i] > 1)
                return mp_error_set(err, MP_ERANGE,
                                    "reward model: round %zu: reward %g is outside [0, 1]; the logistic model needs "
                                    "click-like rewards (use the ctr model for other rewards)",
                                    i, log->reward[i]);
        if (log->n_feat > 40) return mp_error_set(err, MP_EINVAL, "reward model: at most 40 context features");
    }
    size_t n = log->n, A = log->n_actions, S = log->n_slots, C = log->n_ctx ? log->n_ctx : 1;
    uint32_t *fold = malloc(n * sizeof *fold);
    if (!fold) return mp_error_set(err, MP_ENOMEM, "reward model: out of memory");
    /* Folds: a seeded permutation dealt round-robin, so fold sizes differ by at most one (as KFold(shuffle)). */
    uint32_t *perm = malloc(n * sizeof *perm);
    if (!perm) {
        free(fold);
        return mp_error_set(err, MP_ENOMEM, "reward model: out of memory");
    }
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    mp_rng rng;
    mp_rng_seed(&rng, opts->seed);
    mp_rng_shuffle_u32(&rng, perm, n);
    for (size_t i = 0; i < n; i++) fold[perm[i]] = K > 1 ? (uint32_t)(i % K) : 0;
    free(perm);
    q->rows = (size_t)K * C;
    q->v = malloc(q->rows * S * A * sizeof *q->v);
    q->row_of = malloc(n * sizeof *q->row_of);
    if (!q->v || !q->row_of) {
        free(fold);
        mp_ope_table_free(q);
        return mp_error_set(err, MP_ENOMEM, "reward model: out of memory for %zu x %zu x %zu", q->rows, S, A);
    }
    for (size_t i = 0; i < n; i++) q->row_of[i] = (uint32_t)(fold[i] * C + (log->ctx ? log->ctx[i] : 0));
    for (uint32_t k = 0; k < K && rc == MP_OK; k++) {
        uint32_t skip = K > 1 ? k : UINT32_MAX; /* K == 1: fit on everything */
        double *out = q->v + (size_t)k * C * S * A;
        if (opts->kind == MP_OPE_RM_CTR) {
            double *clk = calloc(S * A, sizeof *clk), *shw = calloc(S * A, sizeof *shw), tot = 0, totn = 0;
            if (!clk || !shw) {
                free(clk);
                free(shw);
                rc = mp_error_set(err, MP_ENOMEM, "reward model: out of memory");
                break;
            }
            for (size_t i = 0; i < n; i++) {
                if (fold[i] == skip) continue;
                size_t j = (log->slot ? log->slot[i] : 0) * A + log->action[i];
                clk[j] += log->reward[i];
                shw[j] += 1;
                tot += log->reward[i];
                totn += 1;
            }
            double mu = totn > 0 ? tot / totn : 0, m = opts->smoothing;
            for (size_t c = 0; c < C; c++)
                for (size_t j = 0; j < S * A; j++) out[c * S * A + j] = (clk[j] + m * mu) / (shw[j] + m);
            free(clk);
            free(shw);
        } else {
            lr_layout L = {A, S > 1 ? S : 0, log->n_values, log->n_feat, 0};
            L.D = 1 + L.A + L.S + L.A * L.S + (L.F ? L.V : 0);
            if (L.D > 4000) {
                rc = mp_error_set(err, MP_EINVAL,
                                  "reward model: the logistic model would have %zu one-hot features (%zu items x %zu "
                                  "slots, %zu context values), more than its dense Newton solver handles (4000); use "
                                  "the ctr reward model",
                                  L.D, A, S, L.F ? L.V : 0);
                break;
            }
            double *theta = malloc(L.D * sizeof *theta);
            if (!theta) {
                rc = mp_error_set(err, MP_ENOMEM, "reward model: out of memory");
                break;
            }
            rc = lr_fit(&L, log, fold, skip, opts, theta, err);
            uint32_t idx[64];
            for (size_t c = 0; c < C && rc == MP_OK; c++)
                for (size_t s = 0; s < S; s++)
                    for (size_t a = 0; a < A; a++) {
                        size_t kk = lr_features(&L, log, c, a, s, idx);
                        double z = 0;
                        for (size_t u = 0; u < kk; u++) z += theta[idx[u]];
                        out[(c * S + s) * A + a] = sigmoid(z);
                    }
            free(theta);
        }
    }
    free(fold);
    if (rc) mp_ope_table_free(q);
    return rc;
}

/* ---------------------------------------------------------------- learned greedy policy and splits */

int mp_ope_policy_greedy(const mp_ope_log *log, const mp_ope_table *q, double eps, mp_ope_table *out, mp_error *err) {
    memset(out, 0, sizeof *out);
    if (!(eps >= 0 && eps <= 1)) return mp_error_set(err, MP_EINVAL, "greedy policy: eps %g must be in [0, 1]", eps);
    size_t A = log->n_actions, S = log->n_slots;
    if (S > A) return mp_error_set(err, MP_EINVAL, "greedy policy: more slots (%zu) than actions (%zu)", S, A);
    out->rows = q->rows;
    out->v = malloc(q->rows * S * A * sizeof *out->v);
    if (q->row_of) out->row_of = malloc(log->n * sizeof *out->row_of);
    if (!out->v || (q->row_of && !out->row_of)) {
        mp_ope_table_free(out);
        return mp_error_set(err, MP_ENOMEM, "greedy policy: out of memory");
    }
    if (q->row_of) memcpy(out->row_of, q->row_of, log->n * sizeof *out->row_of);
    for (size_t row = 0; row < q->rows; row++)
        for (size_t s = 0; s < S; s++) {
            const double *qs = q->v + (row * S + s) * A;
            double *p = out->v + (row * S + s) * A;
            /* The (s+1)-th best action by q at this slot. */
            size_t pick = 0;
            for (size_t a = 0; a < A; a++) {
                size_t better = 0;
                for (size_t b = 0; b < A; b++) better += qs[b] > qs[a] || (qs[b] == qs[a] && b < a);
                if (better == s) pick = a;
            }
            for (size_t a = 0; a < A; a++) p[a] = eps / (double)A + (a == pick ? 1 - eps : 0);
        }
    return MP_OK;
}

int mp_ope_log_split(const mp_ope_log *log, double share, uint64_t seed, mp_ope_log *a, mp_ope_log *b, mp_error *err) {
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
    int rc = mp_ope_log_check(log, "log", err);
    if (rc) return rc;
    mp_ope_log *parts[2] = {a, b};
    uint8_t *side = malloc(log->n);
    if (!side) return mp_error_set(err, MP_ENOMEM, "split: out of memory");
    mp_rng rng;
    mp_rng_seed(&rng, seed);
    size_t na = 0;
    for (size_t i = 0; i < log->n; i++) {
        side[i] = mp_rng_uniform(&rng) < share ? 0 : 1;
        na += side[i] == 0;
    }
    size_t cnt[2] = {na, log->n - na};
    for (int p = 0; p < 2 && rc == MP_OK; p++) {
        mp_ope_log *o = parts[p];
        *o = *log;
        o->n = cnt[p];
        o->action = malloc((cnt[p] + 1) * sizeof *o->action);
        o->slot = log->slot ? malloc((cnt[p] + 1) * sizeof *o->slot) : NULL;
        o->reward = malloc((cnt[p] + 1) * sizeof *o->reward);
        o->pscore = malloc((cnt[p] + 1) * sizeof *o->pscore);
        o->ctx = log->ctx ? malloc((cnt[p] + 1) * sizeof *o->ctx) : NULL;
        size_t cf = (size_t)log->n_ctx * log->n_feat;
        o->ctx_feat = log->ctx_feat ? malloc((cf + 1) * sizeof *o->ctx_feat) : NULL;
        o->action_labels = NULL;
        o->slot_labels = log->slot_labels ? malloc(log->n_slots * sizeof *o->slot_labels) : NULL;
        if (!o->action || (log->slot && !o->slot) || !o->reward || !o->pscore || (log->ctx && !o->ctx) ||
            (log->ctx_feat && !o->ctx_feat) || (log->slot_labels && !o->slot_labels)) {
            rc = mp_error_set(err, MP_ENOMEM, "split: out of memory");
            break;
        }
        if (log->ctx_feat) memcpy(o->ctx_feat, log->ctx_feat, cf * sizeof *o->ctx_feat);
        if (log->slot_labels) memcpy(o->slot_labels, log->slot_labels, log->n_slots * sizeof *o->slot_labels);
        if (log->action_labels) {
            if ((rc = mp_strmap_create(&o->action_labels, log->n_actions)) != MP_OK) {
                rc = mp_error_set(err, rc, "split: out of memory");
                break;
            }
            for (uint32_t id = 0; id < mp_strmap_id_bound(log->action_labels) && rc == MP_OK; id++) {
                size_t len;
                const char *k = mp_strmap_key(log->action_labels, id, &len);
                if (k && mp_strmap_put(o->action_labels, k, len, id) != MP_OK)
                    rc = mp_error_set(err, MP_ENOMEM, "split: out of memory");
            }
        }
        size_t j = 0;
        for (size_t i = 0; i < log->n; i++) {
            if (side[i] != p) continue;
            o->action[j] = log->action[i];
            if (o->slot) o->slot[j] = log->slot[i];
            o->reward[j] = log->reward[i];
            o->pscore[j] = log->pscore[i];
            if (o->ctx) o->ctx[j] = log->ctx[i];
            j++;
        }
    }
    free(side);
    if (rc) {
        mp_ope_log_free(a);
        mp_ope_log_free(b);
    }
    return rc;
}

/* ---------------------------------------------------------------- synthetic logs */

void mp_ope_synth_opts_default(mp_ope_synth_opts *o) {
    o->n = 1000000;
    o->n_actions = 34;
    o->n_slots = 3;
    o->n_ctx = 20;
    o->ctr = 0.005;
    o->world_seed = 1;
    o->log_seed = 2;
}

/* Softmax of log(score)/temperature mixed with a uniform floor. */
static void softmax_policy(const double *score, size_t A, double temp, double floor_share, double *p) {
    double mx = -INFINITY, sum = 0;
    for (size_t a = 0; a < A; a++) mx = fmax(mx, log(score[a]) / temp);
    for (size_t a = 0; a < A; a++) sum += p[a] = exp(log(score[a]) / temp - mx);
    for (size_t a = 0; a < A; a++) p[a] = (1 - floor_share) * p[a] / sum + floor_share / (double)A;
}

static int synth_check(const mp_ope_synth_opts *o, mp_error *err) {
    if (o->n == 0 || o->n_actions < 2 || o->n_slots == 0 || o->n_ctx == 0 || !(o->ctr > 0 && o->ctr < 0.2))
        return mp_error_set(err, MP_EINVAL, "synthetic log: need rows > 0, >= 2 actions, slots and contexts > 0 "
                                            "and a click rate in (0, 0.2)");
    return MP_OK;
}

/* The world of o->world_seed: click probabilities p, the logging policy pb and the evaluation policy pe, each
 * [C * S * A] (caller-allocated). Returns MP_OK or MP_ENOMEM. */
static int synth_world(const mp_ope_synth_opts *o, double *p, double *pb, double *pe) {
    size_t A = o->n_actions, S = o->n_slots, C = o->n_ctx, P = C * S * A;
    double *base = malloc(A * sizeof *base), *noisy = malloc(A * sizeof *noisy);
    if (!base || !noisy) {
        free(base);
        free(noisy);
        return MP_ENOMEM;
    }
    /* Item appeal (log-normal), the taste of each shopper type for each item (the same in every slot), and slot
     * attention 1 / (1 + s/4). */
    mp_rng rng;
    mp_rng_seed(&rng, o->world_seed);
    for (size_t a = 0; a < A; a++) base[a] = exp(0.8 * mp_rng_normal(&rng));
    for (size_t c = 0; c < C; c++)
        for (size_t a = 0; a < A; a++) {
            double taste = exp(0.6 * mp_rng_normal(&rng));
            for (size_t s = 0; s < S; s++) p[(c * S + s) * A + a] = base[a] * taste / (1.0 + 0.25 * (double)s);
        }
    double mean = 0;
    for (size_t j = 0; j < P; j++) mean += p[j];
    mean /= (double)P;
    for (size_t j = 0; j < P; j++) p[j] = fmin(p[j] * o->ctr / mean, 1.0);
    /* Logging policy: a mild softmax of a noisy estimate of p, 20% uniform; evaluation policy: a sharper softmax
     * of a different noisy estimate, 5% uniform. */
    for (size_t j = 0; j < C * S; j++) {
        for (size_t a = 0; a < A; a++) noisy[a] = p[j * A + a] * exp(0.5 * mp_rng_normal(&rng));
        softmax_policy(noisy, A, 1.0, 0.2, pb + j * A);
        for (size_t a = 0; a < A; a++) noisy[a] = p[j * A + a] * exp(0.3 * mp_rng_normal(&rng));
        softmax_policy(noisy, A, 0.5, 0.05, pe + j * A);
    }
    free(base);
    free(noisy);
    return MP_OK;
}

/* V(pi) = mean over contexts and slots (both uniform) of sum_a pi(a | c, s) p(c, a, s); pi has rows 1 or C. */
static double synth_value(const mp_ope_synth_opts *o, const double *p, const double *pi, size_t pi_rows) {
    size_t A = o->n_actions, S = o->n_slots, C = o->n_ctx;
    double v = 0;
    for (size_t c = 0; c < C; c++)
        for (size_t s = 0; s < S; s++) {
            const double *pr = pi + ((pi_rows == 1 ? 0 : c) * S + s) * A, *pp = p + (c * S + s) * A;
            for (size_t a = 0; a < A; a++) v += pr[a] * pp[a];
        }
    return v / (double)(C * S);
}

int mp_ope_synth_policy_value(const mp_ope_synth_opts *o, const mp_ope_table *pi, double *value, mp_error *err) {
    int rc = synth_check(o, err);
    if (rc) return rc;
    if (!pi || !pi->v || (pi->rows != 1 && pi->rows != o->n_ctx))
        return mp_error_set(err, MP_EINVAL, "synthetic policy value: the policy needs 1 or %u rows (one per shopper "
                                            "type), it has %zu", o->n_ctx, pi ? pi->rows : 0);
    size_t P = (size_t)o->n_ctx * o->n_slots * o->n_actions;
    double *p = malloc(P * sizeof *p), *pb = malloc(P * sizeof *pb), *pe = malloc(P * sizeof *pe);
    if (!p || !pb || !pe || synth_world(o, p, pb, pe) != MP_OK) {
        free(p), free(pb), free(pe);
        return mp_error_set(err, MP_ENOMEM, "synthetic policy value: out of memory");
    }
    *value = synth_value(o, p, pi->v, pi->rows);
    free(p), free(pb), free(pe);
    return MP_OK;
}

int mp_ope_synth(const mp_ope_synth_opts *o, mp_ope_log *log, mp_ope_table *pi_e, double *truth,
                 double *logging_value, mp_error *err) {
    memset(log, 0, sizeof *log);
    memset(pi_e, 0, sizeof *pi_e);
    int rc = synth_check(o, err);
    if (rc) return rc;
    size_t n = o->n, A = o->n_actions, S = o->n_slots, C = o->n_ctx, P = C * S * A;
    double *p = malloc(P * sizeof *p), *pb = malloc(P * sizeof *pb), *cdf = malloc(P * sizeof *cdf);
    log->action = malloc(n * sizeof *log->action);
    log->slot = malloc(n * sizeof *log->slot);
    log->reward = malloc(n * sizeof *log->reward);
    log->pscore = malloc(n * sizeof *log->pscore);
    log->ctx = malloc(n * sizeof *log->ctx);
    log->ctx_feat = malloc(C * sizeof *log->ctx_feat);
    pi_e->v = malloc(P * sizeof *pi_e->v);
    pi_e->row_of = malloc(n * sizeof *pi_e->row_of);
    if (!p || !pb || !cdf || !log->action || !log->slot || !log->reward || !log->pscore || !log->ctx ||
        !log->ctx_feat || !pi_e->v || !pi_e->row_of || synth_world(o, p, pb, pi_e->v) != MP_OK) {
        free(p), free(pb), free(cdf);
        mp_ope_log_free(log);
        mp_ope_table_free(pi_e);
        return mp_error_set(err, MP_ENOMEM, "synthetic log: out of memory for %zu rows", n);
    }
    log->n = n;
    log->n_actions = (uint32_t)A;
    log->n_slots = (uint32_t)S;
    log->n_ctx = (uint32_t)C;
    log->n_feat = 1;
    log->n_values = (uint32_t)C;
    for (size_t c = 0; c < C; c++) log->ctx_feat[c] = (uint32_t)c;
    pi_e->rows = C;
    *truth = synth_value(o, p, pi_e->v, C);
    if (logging_value) *logging_value = synth_value(o, p, pb, C);
    for (size_t j = 0; j < C * S; j++) {
        double acc = 0;
        for (size_t a = 0; a < A; a++) cdf[j * A + a] = acc += pb[j * A + a];
        cdf[j * A + A - 1] = 2.0; /* guard against rounding */
    }
    mp_rng rng;
    mp_rng_seed(&rng, o->log_seed);
    for (size_t i = 0; i < n; i++) {
        size_t c = (size_t)mp_rng_below(&rng, C), s = (size_t)mp_rng_below(&rng, S), j = c * S + s;
        double u = mp_rng_uniform(&rng);
        const double *row = cdf + j * A;
        size_t lo = 0, hi = A - 1; /* first a with row[a] > u */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (row[mid] > u) hi = mid;
            else lo = mid + 1;
        }
        log->ctx[i] = (uint32_t)c;
        log->slot[i] = (uint32_t)s;
        log->action[i] = (uint32_t)lo;
        log->pscore[i] = pb[j * A + lo];
        log->reward[i] = mp_rng_uniform(&rng) < p[j * A + lo] ? 1.0 : 0.0;
        pi_e->row_of[i] = (uint32_t)c;
    }
    free(p), free(pb), free(cdf);
    return MP_OK;
}
