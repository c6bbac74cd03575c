/* The generic parameter layer (src/models/params.c), over every registered model's descriptor table: defaults pass
 * the check, every parameter round-trips set -> save -> load, bad values and names are refused naming the
 * parameter, and the default tuning ranges lie within the bounds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/model.h"
#include "magpie/modelfile.h"
#include "magpie/tune.h"
#include "models/params.h"
#include "test.h"

/* A model without parameters has nothing to test here. */
static int has_params(const mp_model_ops *ops) { return ops->params != NULL; }

static size_t field_size(const mp_param_info *p) {
    switch (p->type) {
    case MP_PARAM_UINT: return sizeof(uint32_t);
    case MP_PARAM_U64: return sizeof(uint64_t);
    case MP_PARAM_DOUBLE: return sizeof(double);
    default: return sizeof(int);
    }
}

/* A valid value other than the default where there is one. */
static void other_value(const mp_param_info *p, char *buf, size_t cap) {
    switch (p->type) {
    case MP_PARAM_BOOL: snprintf(buf, cap, "%s", strcmp(p->default_value, "1") ? "1" : "0"); break;
    case MP_PARAM_INT:
    case MP_PARAM_UINT:
    case MP_PARAM_U64: {
        unsigned long long v = p->imax;
        if (!strcmp(p->default_value, "auto") || strtoull(p->default_value, NULL, 10) == v) v = p->imin;
        snprintf(buf, cap, "%llu", v);
        break;
    }
    case MP_PARAM_DOUBLE: {
        double v = isinf(p->hi) ? p->lo + 1.5 : p->lo + (p->hi - p->lo) * 0.375;
        snprintf(buf, cap, "%.17g", v);
        break;
    }
    case MP_PARAM_CHOICE: snprintf(buf, cap, "%s", p->choices[p->n_choices - 1]); break;
    }
}

MP_TEST(params_defaults_pass_check_for_every_model) {
    mp_error err;
    mp_error_clear(&err);
    const mp_model_ops *const *reg = mp_model_registry();
    for (size_t i = 0; reg[i]; i++) {
        const mp_model_ops *ops = reg[i];
        mp_model *m;
        CHECK_OK(mp_model_create(&m, ops->name, &err), &err);
        CHECK_OK(mp_model_check_params(m, &err), &err);
        mp_model_destroy(m);
        if (!has_params(ops)) continue;
        size_t n = 0;
        while (ops->params[n].name) n++;
        CHECK_MSG(n == ops->n_params, "%s: n_params %zu, table has %zu", ops->name, ops->n_params, n);
        CHECK_MSG(ops->params_offset + ops->params_size <= ops->impl_size, "%s: params struct outside impl",
                  ops->name);
        for (size_t k = 0; k < n; k++) {
            const mp_param_info *p = &ops->params[k];
            CHECK_MSG(p->offset + field_size(p) <= ops->params_size, "%s.%s: offset outside the params struct",
                      ops->name, p->name);
            CHECK_MSG(p->help && *p->help, "%s.%s: no help", ops->name, p->name);
            CHECK_MSG(mp_params_find(ops->params, n, p->name) == p, "%s.%s: name given twice", ops->name, p->name);
        }
        /* the defaults, applied to a bare params struct, pass the check on their own */
        void *params = calloc(1, ops->params_size);
        CHECK(params);
        CHECK_OK(mp_params_defaults(ops->params, n, params, &err), &err);
        CHECK_OK(mp_params_check(ops->params, n, params, &err), &err);
        if (ops->check_params) CHECK_OK(ops->check_params(params, &err), &err);
        free(params);
    }
}

/* Writes table[0..n) of `params` to a model file and reads it back into `back`. */
static int save_load(const mp_model_ops *ops, const void *params, void *back, const char *path, mp_error *err) {
    mp_mf_writer *w;
    if (mp_mf_writer_create(&w)) return MP_ENOMEM;
    mp_params_put(ops->params, ops->n_params, params, w);
    int rc = mp_mf_writer_save(w, path, ops->name, ops->file_version, err);
    mp_mf_writer_destroy(w);
    if (rc) return rc;
    mp_mf_reader *r;
    if ((rc = mp_mf_reader_open(&r, path, err))) return rc;
    rc = mp_params_get(ops->params, ops->n_params, back, r, ops->name, err);
    if (rc == MP_OK && mp_mf_remaining(r) != 0) rc = mp_error_set(err, MP_ECORRUPT, "bytes left over");
    mp_mf_reader_close(r);
    return rc;
}

MP_TEST(params_every_parameter_round_trips_set_save_load) {
    mp_error err;
    mp_error_clear(&err);
    char path[1024];
    snprintf(path, sizeof path, "%s/params.mpm", mp_test_tmpdir(t));
    const mp_model_ops *const *reg = mp_model_registry();
    for (size_t i = 0; reg[i]; i++) {
        const mp_model_ops *ops = reg[i];
        if (!has_params(ops)) continue;
        mp_model *m;
        CHECK_OK(mp_model_create(&m, ops->name, &err), &err);
        for (size_t k = 0; k < ops->n_params; k++) {
            const mp_param_info *p = &ops->params[k];
            /* both the default and another value; an "auto" parameter also with a number */
            char values[3][64];
            size_t nv = 0;
            snprintf(values[nv++], sizeof values[0], "%s", p->default_value);
            other_value(p, values[nv++], sizeof values[0]);
            if (p->allow_auto) snprintf(values[nv++], sizeof values[0], "auto");
            for (size_t v = 0; v < nv; v++) {
                void *params = calloc(1, ops->params_size), *back = calloc(1, ops->params_size);
                CHECK(params && back);
                CHECK_OK(mp_params_defaults(ops->params, ops->n_params, params, &err), &err);
                CHECK_OK(mp_param_set(p, params, values[v], &err), &err);
                CHECK_OK(mp_model_set_param(m, p->name, values[v], &err), &err);
                CHECK_OK(save_load(ops, params, back, path, &err), &err);
                char a[64], b[64], c[64];
                mp_param_format(p, params, a, sizeof a);
                mp_param_format(p, back, b, sizeof b);
                CHECK_MSG(!strcmp(a, b), "%s.%s=%s: saved %s, loaded %s", ops->name, p->name, values[v], a, b);
                CHECK_MSG(!memcmp((char *)params + p->offset, (char *)back + p->offset, field_size(p)),
                          "%s.%s=%s: loaded bytes differ", ops->name, p->name, values[v]);
                /* the text form reads back to the same value */
                CHECK_OK(mp_param_set(p, back, a, &err), &err);
                mp_param_format(p, back, c, sizeof c);
                CHECK_MSG(!strcmp(a, c), "%s.%s: formatted %s reads back as %s", ops->name, p->name, a, c);
                free(params);
                free(back);
            }
        }
        mp_model_destroy(m);
    }
}

/* Values outside the parameter's bounds or choices (NULL-terminated list into bufs). */
static size_t bad_values(const mp_param_info *p, char bufs[][64]) {
    size_t n = 0;
    snprintf(bufs[n++], 64, "x%s", p->default_value);
    switch (p->type) {
    case MP_PARAM_BOOL: snprintf(bufs[n++], 64, "2"); break;
    case MP_PARAM_INT:
    case MP_PARAM_UINT:
    case MP_PARAM_U64:
        snprintf(bufs[n++], 64, "-1");
        if (p->imax < UINT64_MAX) snprintf(bufs[n++], 64, "%llu", (unsigned long long)p->imax + 1);
        if (p->imin > 0) snprintf(bufs[n++], 64, "%llu", (unsigned long long)p->imin - 1);
        snprintf(bufs[n++], 64, "1.5");
        break;
    case MP_PARAM_DOUBLE:
        snprintf(bufs[n++], 64, "nan");
        snprintf(bufs[n++], 64, "inf");
        snprintf(bufs[n++], 64, "%.17g", p->lo_open ? p->lo : p->lo - 1);
        if (!isinf(p->hi)) snprintf(bufs[n++], 64, "%.17g", p->hi * 2 + 1);
        break;
    case MP_PARAM_CHOICE: snprintf(bufs[n++], 64, "no-such-choice"); break;
    }
    return n;
}

MP_TEST(params_bad_values_and_unknown_names_are_refused) {
    mp_error err;
    mp_error_clear(&err);
    const mp_model_ops *const *reg = mp_model_registry();
    for (size_t i = 0; reg[i]; i++) {
        const mp_model_ops *ops = reg[i];
        mp_model *m;
        CHECK_OK(mp_model_create(&m, ops->name, &err), &err);
        CHECK_EQ(mp_model_set_param(m, "no_such_parameter", "1", &err), MP_EINVAL);
        CHECK_CONTAINS(err.msg, "no_such_parameter");
        CHECK_CONTAINS(err.msg, ops->name);
        if (has_params(ops)) {
            for (size_t k = 0; k < ops->n_params; k++) {
                const mp_param_info *p = &ops->params[k];
                char bad[8][64];
                size_t nb = bad_values(p, bad);
                for (size_t b = 0; b < nb; b++) {
                    int rc = mp_model_set_param(m, p->name, bad[b], &err);
                    CHECK_MSG(rc == MP_EINVAL, "%s.%s=%s accepted", ops->name, p->name, bad[b]);
                    CHECK_CONTAINS(err.msg, p->name);
                    CHECK_CONTAINS(err.msg, bad[b]);
                    CHECK_CONTAINS(err.msg, "expected");
                }
            }
            /* a refused value leaves the defaults: the model still checks */
            CHECK_OK(mp_model_check_params(m, &err), &err);
        }
        mp_model_destroy(m);
    }
}

MP_TEST(params_out_of_range_in_a_file_is_corrupt) {
    mp_error err;
    mp_error_clear(&err);
    char path[1024];
    snprintf(path, sizeof path, "%s/bad.mpm", mp_test_tmpdir(t));
    const mp_model_ops *const *reg = mp_model_registry();
    for (size_t i = 0; reg[i]; i++) {
        const mp_model_ops *ops = reg[i];
        if (!has_params(ops)) continue;
        for (size_t k = 0; k < ops->n_params; k++) {
            const mp_param_info *p = &ops->params[k];
            void *params = calloc(1, ops->params_size), *back = calloc(1, ops->params_size);
            CHECK(params && back);
            CHECK_OK(mp_params_defaults(ops->params, ops->n_params, params, &err), &err);
            char *f = (char *)params + p->offset;
            int corrupt = 1;
            switch (p->type) {
            case MP_PARAM_BOOL: *(int *)f = 2; break;
            case MP_PARAM_CHOICE: *(int *)f = (int)p->n_choices; break;
            case MP_PARAM_DOUBLE: *(double *)f = NAN; break;
            case MP_PARAM_INT: *(int *)f = -1; break;
            case MP_PARAM_UINT:
                if (p->imax < UINT32_MAX) *(uint32_t *)f = (uint32_t)p->imax + 1;
                else corrupt = 0;
                break;
            case MP_PARAM_U64:
                if (p->imax < UINT64_MAX) *(uint64_t *)f = p->imax + 1;
                else corrupt = 0;
                break;
            }
            if (corrupt) {
                int rc = save_load(ops, params, back, path, &err);
                CHECK_MSG(rc == MP_ECORRUPT, "%s.%s: out-of-range value loaded (%d)", ops->name, p->name, rc);
                CHECK_CONTAINS(err.msg, p->name);
            }
            free(params);
            free(back);
        }
    }
}

MP_TEST(params_tune_ranges_lie_within_bounds) {
    mp_error err;
    mp_error_clear(&err);
    const mp_model_ops *const *reg = mp_model_registry();
    for (size_t i = 0; reg[i]; i++) {
        const mp_model_ops *ops = reg[i];
        if (!has_params(ops)) continue;
        size_t n_tuned = 0;
        void *params = calloc(1, ops->params_size);
        CHECK(params);
        CHECK_OK(mp_params_defaults(ops->params, ops->n_params, params, &err), &err);
        for (size_t k = 0; k < ops->n_params; k++) {
            const mp_param_info *p = &ops->params[k];
            char spec[512];
            int tuned = mp_param_tune_spec(p, spec, sizeof spec);
            CHECK_MSG(tuned == (p->tune != MP_PARAM_TUNE_NONE), "%s.%s: tune spec", ops->name, p->name);
            if (!tuned) continue;
            n_tuned++;
            if (p->tune == MP_PARAM_TUNE_CHOICES) {
                char *s = strdup(spec), *save = NULL;
                CHECK(s);
                for (char *c = strtok_r(s, "|", &save); c; c = strtok_r(NULL, "|", &save))
                    CHECK_MSG(mp_param_set(p, params, c, &err) == MP_OK, "%s.%s: tune choice %s refused: %s",
                              ops->name, p->name, c, err.msg);
                free(s);
                continue;
            }
            CHECK_MSG(p->tune_lo <= p->tune_hi, "%s.%s: empty range", ops->name, p->name);
            CHECK_MSG(p->tune != MP_PARAM_TUNE_LOG || p->tune_lo > 0, "%s.%s: log range from %g", ops->name, p->name,
                      p->tune_lo);
            CHECK_MSG(p->type != MP_PARAM_CHOICE && p->type != MP_PARAM_BOOL, "%s.%s: a range over choices",
                      ops->name, p->name);
            /* the search reaches around the defaults: tune's first trial is the defaults, and the defaults are
             * judged against what tune finds (a default outside the range was als' regularization 75 in 1e-3..10) */
            if (strcmp(p->default_value, "auto") != 0) {
                double d = strtod(p->default_value, NULL);
                CHECK_MSG(d >= p->tune_lo && d <= p->tune_hi, "%s.%s: default %s outside the tune range %g..%g",
                          ops->name, p->name, p->default_value, p->tune_lo, p->tune_hi);
            }
            for (int side = 0; side < 2; side++) {
                double v = side ? p->tune_hi : p->tune_lo;
                char text[64];
                if (p->type == MP_PARAM_DOUBLE) snprintf(text, sizeof text, "%.17g", v);
                else snprintf(text, sizeof text, "%.0f", v);
                CHECK_MSG(mp_param_set(p, params, text, &err) == MP_OK, "%s.%s: tune bound %s out of bounds: %s",
                          ops->name, p->name, text, err.msg);
            }
        }
        free(params);
        /* the default space of `magpie tune` is exactly the tuned parameters */
        mp_tune_space s;
        int rc = mp_tune_space_default(&s, ops, &err);
        if (n_tuned == 0) {
            CHECK_EQ(rc, MP_EEMPTY);
            continue;
        }
        CHECK_OK(rc, &err);
        CHECK_MSG(s.n_params == n_tuned, "%s: default space has %zu parameters, the table tunes %zu", ops->name,
                  s.n_params, n_tuned);
        mp_tune_space_free(&s);
    }
}
