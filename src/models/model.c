/* The model registry and the mp_model_* wrappers every caller goes through. */
#include "magpie/model.h"
#include "magpie/topk.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/params.h"

/* Models register here: one extern per src/models/<name>.c and one entry in the table below. */
extern const mp_model_ops mp_pop_ops;
extern const mp_model_ops mp_itemknn_ops;
extern const mp_model_ops mp_als_ops;
extern const mp_model_ops mp_bpr_ops;
extern const mp_model_ops mp_ease_ops;
extern const mp_model_ops mp_mf_ops;
extern const mp_model_ops mp_hybrid_ops;
extern const mp_model_ops mp_seqknn_ops;
extern const mp_model_ops mp_sasrec_ops;

static const mp_model_ops *const registry[] = {
    &mp_pop_ops,
    &mp_itemknn_ops,
    &mp_als_ops,
    &mp_bpr_ops,
    &mp_ease_ops,
    &mp_mf_ops,
    &mp_hybrid_ops,
    &mp_seqknn_ops,
    &mp_sasrec_ops,
    NULL,
};

struct mp_model {
    const mp_model_ops *ops;
    void *impl; /* ops->impl_size bytes, owned */
    int fitted; /* 1 after a successful fit or load */
};

const mp_model_ops *const *mp_model_registry(void) { return registry; }

const mp_model_ops *mp_model_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; registry[i]; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

/* "pop, itemknn, ..." into buf. */
static void known_models(char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    for (size_t i = 0; registry[i] && len < cap; i++) {
        int k = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", registry[i]->name);
        if (k < 0) break;
        len += (size_t)k;
    }
}

static void *params_of(const mp_model_ops *ops, void *impl) { return (char *)impl + ops->params_offset; }

static int model_new(mp_model **out, const mp_model_ops *ops, mp_error *err) {
    mp_model *m = calloc(1, sizeof *m);
    void *impl = calloc(1, ops->impl_size ? ops->impl_size : 1);
    if (!m || !impl) {
        free(m);
        free(impl);
        return mp_error_set(err, MP_ENOMEM, "model %s: out of memory", ops->name);
    }
    m->ops = ops;
    m->impl = impl;
    if (ops->params) {
        int rc = mp_params_defaults(ops->params, ops->n_params, params_of(ops, impl), err);
        if (rc) {
            mp_error_prefix(err, "model %s", ops->name);
            free(m);
            free(impl);
            return rc;
        }
    }
    if (ops->init) ops->init(impl);
    *out = m;
    return MP_OK;
}

/* The whole parameter set: every field within its bounds, then the model's cross-field check. */
static int check_params(const mp_model_ops *ops, const void *impl, mp_error *err) {
    if (!ops->params) return MP_OK;
    const void *params = (const char *)impl + ops->params_offset;
    int rc = mp_params_check(ops->params, ops->n_params, params, err);
    if (rc == MP_OK && ops->check_params) rc = ops->check_params(params, err);
    if (rc) mp_error_prefix(err, "model %s", ops->name);
    return rc;
}

int mp_model_check_params(const mp_model *m, mp_error *err) { return check_params(m->ops, m->impl, err); }

int mp_model_create(mp_model **out, const char *name, mp_error *err) {
    *out = NULL;
    const mp_model_ops *ops = mp_model_find(name);
    if (!ops) {
        char known[512];
        known_models(known, sizeof known);
        return mp_error_set(err, MP_EINVAL, "unknown model \"%s\" (known models: %s)", name ? name : "", known);
    }
    return model_new(out, ops, err);
}

void mp_model_destroy(mp_model *m) {
    if (!m) return;
    if (m->ops->release) m->ops->release(m->impl);
    free(m->impl);
    free(m);
}

const mp_model_ops *mp_model_ops_of(const mp_model *m) { return m->ops; }

int mp_model_set_param(mp_model *m, const char *key, const char *value, mp_error *err) {
    const mp_model_ops *ops = m->ops;
    const mp_param_info *p = mp_params_find(ops->params, ops->n_params, key);
    if (!p) {
        char list[512];
        size_t len = 0;
        list[0] = 0;
        for (size_t i = 0; i < ops->n_params && len < sizeof list; i++) {
            int k = snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", ops->params[i].name);
            if (k < 0) break;
            len += (size_t)k;
        }
        return mp_error_set(err, MP_EINVAL, "model %s: unknown parameter \"%s\" (parameters: %s)", ops->name, key,
                            list[0] ? list : "none");
    }
    if (!value || !*value)
        return mp_error_set(err, MP_EINVAL, "model %s: parameter %s: empty value", ops->name, p->name);
    int rc = mp_param_set(p, params_of(ops, m->impl), value, err);
    if (rc) mp_error_prefix(err, "model %s: parameter %s", ops->name, p->name);
    return rc;
}

int mp_model_set_params(mp_model *m, const char *spec, mp_error *err) {
    if (!spec) return MP_OK;
    size_t n = strlen(spec);
    char *buf = malloc(n + 1);
    if (!buf) return mp_error_set(err, MP_ENOMEM, "out of memory");
    memcpy(buf, spec, n + 1);
    int rc = MP_OK;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (!*tok) continue;
        char *eq = strchr(tok, '=');
        if (!eq) {
            rc = mp_error_set(err, MP_EINVAL, "model %s: parameter \"%s\": expected key=value", m->ops->name, tok);
            break;
        }
        *eq = 0;
        char *key = tok, *value = eq + 1;
        size_t kl = strlen(key);
        while (kl > 0 && key[kl - 1] == ' ') key[--kl] = 0;
        while (*value == ' ') value++;
        size_t vl = strlen(value);
        while (vl > 0 && value[vl - 1] == ' ') value[--vl] = 0;
        rc = mp_model_set_param(m, key, value, err);
        if (rc) break;
    }
    free(buf);
    return rc;
}

int mp_model_fit(mp_model *m, const mp_train_data *data, const mp_progress *progress, mp_error *err) {
    if (!m->ops->fit) return mp_error_set(err, MP_EUNSUPPORTED, "model %s cannot be fitted", m->ops->name);
    if (!data) return mp_error_set(err, MP_EINVAL, "model %s: no training data", m->ops->name);
    if (m->fitted && m->ops->release) {
        /* Refit from scratch: keep the parameters, drop the fitted state. The model's release must leave its
         * parameters intact (it frees owned arrays only). */
        m->ops->release(m->impl);
    }
    m->fitted = 0;
    int rc = check_params(m->ops, m->impl, err);
    if (rc) return rc;
    rc = m->ops->fit(m->impl, data, progress, err);
    if (rc == MP_OK) m->fitted = 1;
    return rc;
}

int mp_model_is_fitted(const mp_model *m) { return m->fitted; }

uint32_t mp_model_n_items(const mp_model *m) {
    if (!m->fitted || !m->ops->n_items) return 0;
    return m->ops->n_items(m->impl);
}

static int need_fitted(const mp_model *m, mp_error *err) {
    if (!m->fitted)
        return mp_error_set(err, MP_EINVAL, "model %s is not fitted (train it or load a model file)", m->ops->name);
    return MP_OK;
}

static int unsupported(const mp_model *m, const char *what, mp_error *err) {
    return mp_error_set(err, MP_EUNSUPPORTED, "model %s does not support %s", m->ops->name, what);
}

int mp_model_score_all(const mp_model *m, const mp_user_ctx *ctx, float *scores, mp_error *err) {
    int rc = need_fitted(m, err);
    if (rc) return rc;
    if (!m->ops->score_all) return unsupported(m, "scoring", err);
    static const mp_user_ctx anon = {.user = MP_NO_USER};
    return m->ops->score_all(m->impl, ctx ? ctx : &anon, scores, err);
}

/* mp_model_recommend's ranking into a caller's score buffer ([n_items]); the model is known to be fitted. */
static int recommend_with(const mp_model *m, const mp_user_ctx *ctx, size_t n, const uint32_t *exclude,
                          size_t n_exclude, int exclude_history, const uint8_t *allow, float *scores,
                          uint32_t *out_items, float *out_scores, size_t *n_out, mp_error *err) {
    uint32_t n_items = mp_model_n_items(m);
    int rc = mp_model_score_all(m, ctx, scores, err);
    if (rc) return rc;
    /* NaN never ranks in mp_topk, so exclusions are written as NaN. */
    for (size_t i = 0; i < n_exclude; i++)
        if (exclude[i] < n_items) scores[exclude[i]] = NAN;
    if (exclude_history && ctx)
        for (size_t i = 0; i < ctx->n_history; i++)
            if (ctx->history[i].item < n_items) scores[ctx->history[i].item] = NAN;
    size_t got;
    rc = mp_topk(scores, n_items, allow, n, out_items, &got);
    if (rc) return mp_error_set(err, rc, "recommend: cannot rank %u items: %s", n_items, mp_strerror(rc));
    if (out_scores)
        for (size_t i = 0; i < got; i++) out_scores[i] = scores[out_items[i]];
    *n_out = got;
    return MP_OK;
}

int mp_model_recommend(const mp_model *m, const mp_user_ctx *ctx, size_t n, const uint32_t *exclude,
                       size_t n_exclude, int exclude_history, const uint8_t *allow, uint32_t *out_items,
                       float *out_scores, size_t *n_out, mp_error *err) {
    *n_out = 0;
    int rc = need_fitted(m, err);
    if (rc) return rc;
    uint32_t n_items = mp_model_n_items(m);
    if (n == 0 || n_items == 0) return MP_OK;
    float *scores = malloc((size_t)n_items * sizeof *scores);
    if (!scores) return mp_error_set(err, MP_ENOMEM, "model %s: out of memory scoring %u items", m->ops->name, n_items);
    rc = recommend_with(m, ctx, n, exclude, n_exclude, exclude_history, allow, scores, out_items, out_scores, n_out,
                        err);
    free(scores);
    return rc;
}

int mp_model_recommend_many(const mp_model *m, const mp_user_ctx *ctxs, size_t n_ctx, size_t n,
                            int exclude_history, const uint8_t *allow, int n_threads, const mp_progress *progress,
                            uint32_t *out_items, float *out_scores, size_t *n_out, mp_error *err) {
    int rc = need_fitted(m, err);
    if (rc) return rc;
    if (n == 0) return mp_error_set(err, MP_EINVAL, "recommend: n must be at least 1");
    if (n_ctx > 0 && (!ctxs || !out_items || !n_out))
        return mp_error_set(err, MP_EINVAL, "recommend: %zu users but no contexts or output arrays", n_ctx);
    for (size_t j = 0; j < n_ctx; j++) {
        n_out[j] = 0;
        for (size_t r = 0; r < n; r++) {
            out_items[j * n + r] = UINT32_MAX;
            if (out_scores) out_scores[j * n + r] = NAN;
        }
    }
    uint32_t n_items = mp_model_n_items(m);
    if (n_ctx == 0 || n_items == 0) {
        mp_progress_report(progress, "recommend", n_ctx, n_ctx);
        return MP_OK;
    }
    int nt = n_threads > 0 ? n_threads : omp_get_max_threads();
    if ((size_t)nt > n_ctx) nt = (int)n_ctx;
    int failed = 0;
    size_t done = 0;
#pragma omp parallel num_threads(nt)
    {
        mp_error local;
        mp_error_clear(&local);
        size_t last_report = 0; /* the calling thread's last report */
        float *scores = malloc((size_t)n_items * sizeof *scores);
        if (!scores) {
#pragma omp critical(mp_recommend_many_err)
            if (!failed) {
                failed = 1;
                rc = mp_error_set(err, MP_ENOMEM, "model %s: out of memory scoring %u items", m->ops->name, n_items);
            }
        }
#pragma omp for schedule(dynamic, 8)
        for (size_t j = 0; j < n_ctx; j++) {
            int stop;
#pragma omp atomic read
            stop = failed;
            if (stop) continue;
            int r = recommend_with(m, &ctxs[j], n, NULL, 0, exclude_history, allow, scores, out_items + j * n,
                                   out_scores ? out_scores + j * n : NULL, &n_out[j], &local);
            if (r) {
#pragma omp critical(mp_recommend_many_err)
                if (!failed) {
                    failed = 1;
                    rc = r;
                    if (err) {
                        *err = local;
                        mp_error_prefix(err, "recommend: user %zu of %zu (id %u)", j, n_ctx, ctxs[j].user);
                    }
                }
                continue;
            }
            size_t now;
#pragma omp atomic capture
            now = ++done;
            if (progress && omp_get_thread_num() == 0 && now - last_report >= 256 && now < n_ctx) {
                last_report = now;
                mp_progress_report(progress, "recommend", now, n_ctx);
            }
        }
        free(scores);
    }
    if (rc == MP_OK) mp_progress_report(progress, "recommend", n_ctx, n_ctx);
    return rc;
}

int mp_model_predict_rating(const mp_model *m, uint32_t user, uint32_t item, double *out, mp_error *err) {
    int rc = need_fitted(m, err);
    if (rc) return rc;
    if (!m->ops->predict_rating) return unsupported(m, "rating prediction", err);
    return m->ops->predict_rating(m->impl, user, item, out, err);
}

int mp_model_similar(const mp_model *m, uint32_t item, size_t n, uint32_t *out_items, float *out_scores,
                     size_t *n_out, mp_error *err) {
    *n_out = 0;
    int rc = need_fitted(m, err);
    if (rc) return rc;
    if (!m->ops->similar) return unsupported(m, "similar items", err);
    if (item >= mp_model_n_items(m))
        return mp_error_set(err, MP_ENOTFOUND, "model %s: item %u is unknown to the model (%u items)", m->ops->name,
                            item, mp_model_n_items(m));
    return m->ops->similar(m->impl, item, n, out_items, out_scores, n_out, err);
}

int mp_model_explain(const mp_model *m, const mp_user_ctx *ctx, uint32_t item, char *buf, size_t cap,
                     mp_error *err) {
    if (cap) buf[0] = 0;
    int rc = need_fitted(m, err);
    if (rc) return rc;
    if (!m->ops->explain) return unsupported(m, "explanations", err);
    if (cap == 0) return mp_error_set(err, MP_EINVAL, "model %s: explain buffer has no room", m->ops->name);
    static const mp_user_ctx anon = {.user = MP_NO_USER};
    return m->ops->explain(m->impl, ctx ? ctx : &anon, item, buf, cap, err);
}

int mp_model_update(mp_model *m, const mp_interaction *events, size_t n, mp_error *err) {
    int rc = need_fitted(m, err);
    if (rc) return rc;
    if (!m->ops->update) return unsupported(m, "real-time updates", err);
    return m->ops->update(m->impl, events, n, err);
}

int mp_model_item_vectors(const mp_model *m, const float **vecs, uint32_t *n, uint32_t *dim, mp_error *err) {
    *vecs = NULL;
    *n = *dim = 0;
    int rc = need_fitted(m, err);
    if (rc) return rc;
    if (!m->ops->item_vectors) return unsupported(m, "retrieval vectors", err);
    return m->ops->item_vectors(m->impl, vecs, n, dim, err);
}

int mp_model_query_vector(const mp_model *m, const mp_user_ctx *ctx, float *out, int *have, mp_error *err) {
    *have = 0;
    int rc = need_fitted(m, err);
    if (rc) return rc;
    if (!m->ops->query_vector) return unsupported(m, "retrieval vectors", err);
    static const mp_user_ctx anon = {.user = MP_NO_USER};
    return m->ops->query_vector(m->impl, ctx ? ctx : &anon, out, have, err);
}

int mp_model_forget_user(mp_model *m, uint32_t user, const mp_interaction *events, size_t n, mp_error *err) {
    int rc = need_fitted(m, err);
    if (rc) return rc;
    if (user == MP_NO_USER) return mp_error_set(err, MP_EINVAL, "model %s: forget_user needs a user id", m->ops->name);
    if (!m->ops->forget_user) return MP_OK; /* nothing kept per user */
    return m->ops->forget_user(m->impl, user, events, n, err);
}

int mp_model_set_item(mp_model *m, uint32_t item, const mp_item_content *content, mp_error *err) {
    int rc = need_fitted(m, err);
    if (rc) return rc;
    if (!content) return mp_error_set(err, MP_EINVAL, "model %s: set_item needs the item's content", m->ops->name);
    if (!m->ops->set_item) return MP_OK; /* no content features */
    return m->ops->set_item(m->impl, item, content, err);
}

int mp_model_uses_content(const mp_model *m) { return m && m->ops->set_item != NULL; }

int mp_model_save(const mp_model *m, const char *path, mp_error *err) {
    int rc = need_fitted(m, err);
    if (rc) return rc;
    if (!m->ops->save) return unsupported(m, "saving", err);
    mp_mf_writer *w;
    if (mp_mf_writer_create(&w)) return mp_error_set(err, MP_ENOMEM, "out of memory");
    rc = m->ops->save(m->impl, w, err);
    if (rc == MP_OK) rc = mp_mf_writer_save(w, path, m->ops->name, m->ops->file_version, err);
    mp_mf_writer_destroy(w);
    return rc;
}

/* Builds a model from an open reader (closed here); `path` names the file in messages. */
static int load_from_reader(mp_model **out, mp_mf_reader *r, const char *path, mp_error *err) {
    int rc;
    const char *name = mp_mf_reader_model(r);
    const mp_model_ops *ops = mp_model_find(name);
    if (!ops) {
        char known[512];
        known_models(known, sizeof known);
        rc = mp_error_set(err, MP_EUNSUPPORTED,
                          "model file %s: model \"%s\" is not known to this Magpie (known models: %s)", path, name,
                          known);
        mp_mf_reader_close(r);
        return rc;
    }
    uint32_t version = mp_mf_reader_model_version(r);
    if (version == 0 || version > ops->file_version || !ops->load) {
        rc = mp_error_set(err, MP_EVERSION,
                          "model file %s: %s model version %u is not readable by this Magpie (reads version 1..%u); "
                          "retrain the model or upgrade Magpie",
                          path, name, version, ops->file_version);
        mp_mf_reader_close(r);
        return rc;
    }
    mp_model *m;
    rc = model_new(&m, ops, err);
    if (rc) {
        mp_mf_reader_close(r);
        return rc;
    }
    rc = ops->load(m->impl, r, err);
    if (rc == MP_OK && check_params(ops, m->impl, err) != MP_OK) {
        rc = MP_ECORRUPT; /* parameters no fit would accept: the file was not written by a Magpie */
        if (err) err->code = rc;
    }
    if (rc == MP_OK && mp_mf_remaining(r) != 0)
        rc = mp_error_set(err, MP_ECORRUPT, "model file %s: %zu unread bytes at the end of the %s payload", path,
                          mp_mf_remaining(r), name);
    mp_mf_reader_close(r);
    if (rc) {
        if (err && !strstr(err->msg, path)) mp_error_prefix(err, "model file %s", path);
        mp_model_destroy(m);
        return rc;
    }
    m->fitted = 1;
    *out = m;
    return MP_OK;
}

int mp_model_load(mp_model **out, const char *path, mp_error *err) {
    *out = NULL;
    mp_mf_reader *r;
    int rc = mp_mf_reader_open(&r, path, err);
    if (rc) return rc;
    return load_from_reader(out, r, path, err);
}

int mp_model_load_mem(mp_model **out, const void *data, size_t len, const char *name, mp_error *err) {
    *out = NULL;
    mp_mf_reader *r;
    if (!name) name = "(memory)";
    int rc = mp_mf_reader_open_mem(&r, data, len, name, err);
    if (rc) return rc;
    return load_from_reader(out, r, name, err);
}
