/* The model file format (see magpie/modelfile.h): a 72-byte checksummed header and a checksummed payload.
 * Writers buffer the payload in memory; readers load and validate the whole file before any get call, so a
 * model's load code only has to check that each value it reads makes sense. */
#include "magpie/modelfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "magpie/strmap.h"

#define MF_MAGIC "MAGPIEMF"
#define MF_HEADER_SIZE 72
#define MF_HEADER_SUMMED 64 /* bytes covered by the header checksum */
#define MF_STR_ABSENT UINT32_MAX

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define MF_BIG_ENDIAN 1
#else
#define MF_BIG_ENDIAN 0
#endif

struct mp_mf_writer {
    unsigned char *buf; /* payload bytes [len], capacity cap */
    size_t len, cap;
    int failed; /* sticky: an allocation failed */
};

struct mp_mf_reader {
    unsigned char *file; /* whole file image [size] (owned) */
    size_t size;
    const unsigned char *payload; /* file + MF_HEADER_SIZE */
    size_t payload_len, pos;
    char model[MP_MODELFILE_NAME_MAX + 1];
    uint32_t model_version;
    char *path; /* for messages (owned) */
};

/* ---- little-endian encoding ---- */

static void le_store32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void le_store64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t le_load32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t le_load64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- writer ---- */

int mp_mf_writer_create(mp_mf_writer **out) {
    *out = calloc(1, sizeof **out);
    return *out ? MP_OK : MP_ENOMEM;
}

void mp_mf_writer_destroy(mp_mf_writer *w) {
    if (!w) return;
    free(w->buf);
    free(w);
}

/* Makes room for n more bytes; returns a pointer to them or NULL (and marks the writer failed). */
static unsigned char *w_reserve(mp_mf_writer *w, size_t n) {
    if (w->failed) return NULL;
    if (n > SIZE_MAX - w->len) {
        w->failed = 1;
        return NULL;
    }
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n) {
            if (cap > SIZE_MAX / 2) {
                cap = w->len + n;
                break;
            }
            cap *= 2;
        }
        unsigned char *nb = realloc(w->buf, cap);
        if (!nb) {
            w->failed = 1;
            return NULL;
        }
        w->buf = nb;
        w->cap = cap;
    }
    unsigned char *p = w->buf + w->len;
    w->len += n;
    return p;
}

void mp_mf_put_u32(mp_mf_writer *w, uint32_t v) {
    unsigned char *p = w_reserve(w, 4);
    if (p) le_store32(p, v);
}

void mp_mf_put_u64(mp_mf_writer *w, uint64_t v) {
    unsigned char *p = w_reserve(w, 8);
    if (p) le_store64(p, v);
}

void mp_mf_put_f64(mp_mf_writer *w, double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    mp_mf_put_u64(w, bits);
}

void mp_mf_put_bytes(mp_mf_writer *w, const void *src, size_t n) {
    if (n == 0) return;
    unsigned char *p = w_reserve(w, n);
    if (p) memcpy(p, src, n);
}

void mp_mf_put_str(mp_mf_writer *w, const char *s) {
    if (!s) {
        mp_mf_put_u32(w, MF_STR_ABSENT);
        return;
    }
    size_t n = strlen(s);
    if (n >= MF_STR_ABSENT) {
        w->failed = 1;
        return;
    }
    mp_mf_put_u32(w, (uint32_t)n);
    mp_mf_put_bytes(w, s, n);
}

/* Arrays: u64 count, then elements of `width` bytes each in little-endian order. */
static void put_array(mp_mf_writer *w, const void *a, size_t n, size_t width) {
    mp_mf_put_u64(w, (uint64_t)n);
    if (n == 0) return;
    if (n > SIZE_MAX / width) {
        w->failed = 1;
        return;
    }
    unsigned char *p = w_reserve(w, n * width);
    if (!p) return;
    memcpy(p, a, n * width);
#if MF_BIG_ENDIAN
    for (size_t i = 0; i < n; i++)
        for (size_t b = 0; b < width / 2; b++) {
            unsigned char tmp = p[i * width + b];
            p[i * width + b] = p[i * width + width - 1 - b];
            p[i * width + width - 1 - b] = tmp;
        }
#endif
}

void mp_mf_put_f32s(mp_mf_writer *w, const float *a, size_t n) { put_array(w, a, n, 4); }
void mp_mf_put_u32s(mp_mf_writer *w, const uint32_t *a, size_t n) { put_array(w, a, n, 4); }
void mp_mf_put_f64s(mp_mf_writer *w, const double *a, size_t n) { put_array(w, a, n, 8); }

const void *mp_mf_writer_data(const mp_mf_writer *w, size_t *len) {
    if (len) *len = w->len;
    return w->buf;
}

static int write_all(int fd, const void *p, size_t n) {
    const unsigned char *b = p;
    while (n > 0) {
        ssize_t k = write(fd, b, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* fsyncs the directory holding `path` so the rename itself is durable. Best effort. */
static void fsync_parent(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, sizeof dir, ".");
    } else if (slash == path) {
        snprintf(dir, sizeof dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir) return;
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

int mp_mf_writer_save(mp_mf_writer *w, const char *path, const char *model_name, uint32_t model_version,
                      mp_error *err) {
    if (!path || !*path) return mp_error_set(err, MP_EINVAL, "model file: empty path");
    if (!model_name || !*model_name || strlen(model_name) >= MP_MODELFILE_NAME_MAX)
        return mp_error_set(err, MP_EINVAL, "model file %s: model name must be 1..%d bytes", path,
                            MP_MODELFILE_NAME_MAX - 1);
    if (w->failed) return mp_error_set(err, MP_ENOMEM, "model file %s: out of memory while serialising", path);

    unsigned char hdr[MF_HEADER_SIZE];
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, MF_MAGIC, 8);
    le_store32(hdr + 8, MP_MODELFILE_FORMAT);
    memcpy(hdr + 12, model_name, strlen(model_name));
    le_store32(hdr + 44, model_version);
    le_store64(hdr + 48, (uint64_t)w->len);
    le_store64(hdr + 56, mp_hash_bytes(w->buf ? (const void *)w->buf : "", w->len));
    le_store64(hdr + 64, mp_hash_bytes(hdr, MF_HEADER_SUMMED));

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return mp_error_set(err, MP_ENOMEM, "model file %s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return mp_error_set(err, MP_EIO, "model file %s: cannot create a temporary file next to it: %s", path,
                            strerror(e));
    }
    int e = 0;
    const char *what = "write";
    if (write_all(fd, hdr, sizeof hdr) || (w->len && write_all(fd, w->buf, w->len))) e = errno;
    else if (fsync(fd)) e = errno, what = "fsync";
    (void)fchmod(fd, 0644);
    if (close(fd) && !e) e = errno, what = "close";
    if (!e && rename(tmp, path)) e = errno, what = "rename";
    if (e) {
        unlink(tmp);
        free(tmp);
        return mp_error_set(err, MP_EIO, "model file %s: %s failed: %s", path, what, strerror(e));
    }
    free(tmp);
    fsync_parent(path);
    return MP_OK;
}

/* ---- reader ---- */

/* Describes what a foreign file looks like, for the "not a model file" message. */
static void describe_foreign(const unsigned char *p, size_t n, char *buf, size_t cap) {
    if (n >= 16 && memcmp(p, "SQLite format 3", 16) == 0) {
        snprintf(buf, cap, "it is an SQLite database (a Magpie store?), not a model file");
        return;
    }
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
        snprintf(buf, cap, "it is gzip-compressed, not a model file");
        return;
    }
    size_t check = n < 64 ? n : 64, printable = 0;
    for (size_t i = 0; i < check; i++)
        if ((p[i] >= 0x20 && p[i] < 0x7f) || p[i] == '\n' || p[i] == '\r' || p[i] == '\t' || p[i] >= 0x80)
            printable++;
    if (check > 0 && printable == check) {
        char start[24];
        size_t k = 0;
        for (size_t i = 0; i < check && k < 16; i++) start[k++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '.';
        start[k] = 0;
        snprintf(buf, cap, "it looks like a text file (starts with \"%s\"), not a model file", start);
        return;
    }
    snprintf(buf, cap, "it does not start with the model file magic \"" MF_MAGIC "\"");
}

static int validate_image(mp_mf_reader *r, mp_error *err) {
    const unsigned char *p = r->file;
    size_t n = r->size;
    const char *path = r->path;
    if (n == 0) return mp_error_set(err, MP_ECORRUPT, "model file %s: file is empty", path);
    if (n < 8 || memcmp(p, MF_MAGIC, 8) != 0) {
        if (n < 8 && memcmp(p, MF_MAGIC, n) == 0)
            return mp_error_set(err, MP_ECORRUPT, "model file %s: truncated header (%zu of %d bytes)", path, n,
                                MF_HEADER_SIZE);
        char why[160];
        describe_foreign(p, n, why, sizeof why);
        return mp_error_set(err, MP_ECORRUPT, "model file %s: %s", path, why);
    }
    if (n < 12)
        return mp_error_set(err, MP_ECORRUPT, "model file %s: truncated header (%zu of %d bytes)", path, n,
                            MF_HEADER_SIZE);
    uint32_t format = le_load32(p + 8);
    if (n >= MF_HEADER_SIZE && format > MP_MODELFILE_FORMAT &&
        le_load64(p + 64) == mp_hash_bytes(p, MF_HEADER_SUMMED))
        return mp_error_set(err, MP_EVERSION,
                            "model file %s: format version %u is newer than this Magpie reads (up to %d); "
                            "upgrade Magpie or retrain the model",
                            path, format, MP_MODELFILE_FORMAT);
    if (n < MF_HEADER_SIZE)
        return mp_error_set(err, MP_ECORRUPT, "model file %s: truncated header (%zu of %d bytes)", path, n,
                            MF_HEADER_SIZE);
    if (le_load64(p + 64) != mp_hash_bytes(p, MF_HEADER_SUMMED))
        return mp_error_set(err, MP_ECORRUPT, "model file %s: header checksum mismatch (the file is corrupt)", path);
    if (format == 0 || format > MP_MODELFILE_FORMAT)
        return mp_error_set(err, MP_EVERSION, "model file %s: unsupported format version %u (this Magpie reads 1..%d)",
                            path, format, MP_MODELFILE_FORMAT);
    const unsigned char *name = p + 12;
    size_t nlen = 0;
    while (nlen < MP_MODELFILE_NAME_MAX && name[nlen]) nlen++;
    if (nlen == 0 || nlen == MP_MODELFILE_NAME_MAX)
        return mp_error_set(err, MP_ECORRUPT, "model file %s: bad model name field", path);
    for (size_t i = 0; i < nlen; i++)
        if (name[i] < 0x21 || name[i] > 0x7e)
            return mp_error_set(err, MP_ECORRUPT, "model file %s: bad model name field", path);
    for (size_t i = nlen; i < MP_MODELFILE_NAME_MAX; i++)
        if (name[i]) return mp_error_set(err, MP_ECORRUPT, "model file %s: bad model name padding", path);
    memcpy(r->model, name, nlen);
    r->model[nlen] = 0;
    r->model_version = le_load32(p + 44);
    uint64_t plen = le_load64(p + 48);
    uint64_t have = (uint64_t)(n - MF_HEADER_SIZE);
    if (plen > have)
        return mp_error_set(err, MP_ECORRUPT,
                            "model file %s: truncated: the header announces %llu payload bytes but only %llu follow",
                            path, (unsigned long long)plen, (unsigned long long)have);
    if (plen < have)
        return mp_error_set(err, MP_ECORRUPT, "model file %s: %llu unexpected bytes after the payload", path,
                            (unsigned long long)(have - plen));
    r->payload = p + MF_HEADER_SIZE;
    r->payload_len = (size_t)plen;
    if (le_load64(p + 56) != mp_hash_bytes(r->payload, r->payload_len))
        return mp_error_set(err, MP_ECORRUPT, "model file %s: payload checksum mismatch (the file is corrupt)", path);
    return MP_OK;
}

/* Takes ownership of `image` (malloc'ed) in all cases. */
static int open_image(mp_mf_reader **out, unsigned char *image, size_t size, const char *name, mp_error *err) {
    *out = NULL;
    mp_mf_reader *r = calloc(1, sizeof *r);
    char *path = strdup(name ? name : "(memory)");
    if (!r || !path) {
        free(r);
        free(path);
        free(image);
        return mp_error_set(err, MP_ENOMEM, "model file %s: out of memory", name ? name : "(memory)");
    }
    r->file = image;
    r->size = size;
    r->path = path;
    int rc = validate_image(r, err);
    if (rc) {
        mp_mf_reader_close(r);
        return rc;
    }
    *out = r;
    return MP_OK;
}

int mp_mf_reader_open(mp_mf_reader **out, const char *path, mp_error *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        int e = errno;
        return mp_error_set(err, e == ENOENT ? MP_ENOTFOUND : MP_EIO, "model file %s: cannot open: %s", path,
                            strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mp_error_set(err, MP_EIO, "model file %s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    unsigned char *image = malloc(size ? size : 1);
    if (!image) {
        close(fd);
        return mp_error_set(err, MP_ENOMEM, "model file %s: out of memory reading %zu bytes", path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t k = read(fd, image + got, size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    return open_image(out, image, got, path, err);
}

int mp_mf_reader_open_mem(mp_mf_reader **out, const void *data, size_t len, const char *name, mp_error *err) {
    *out = NULL;
    unsigned char *image = malloc(len ? len : 1);
    if (!image) return mp_error_set(err, MP_ENOMEM, "model file %s: out of memory", name ? name : "(memory)");
    if (len) memcpy(image, data, len);
    return open_image(out, image, len, name, err);
}

void mp_mf_reader_close(mp_mf_reader *r) {
    if (!r) return;
    free(r->file);
    free(r->path);
    free(r);
}

const char *mp_mf_reader_model(const mp_mf_reader *r) { return r->model; }
uint32_t mp_mf_reader_model_version(const mp_mf_reader *r) { return r->model_version; }
const char *mp_mf_reader_path(const mp_mf_reader *r) { return r->path; }
size_t mp_mf_remaining(const mp_mf_reader *r) { return r->payload_len - r->pos; }

/* Returns a pointer to the next n payload bytes and advances, or NULL with MP_ECORRUPT set. */
static const unsigned char *r_take(mp_mf_reader *r, size_t n, mp_error *err) {
    if (n > r->payload_len - r->pos) {
        mp_error_set(err, MP_ECORRUPT,
                     "model file %s: truncated payload (wanted %zu bytes at offset %zu, %zu left); "
                     "the file does not match its model version",
                     r->path, n, r->pos, r->payload_len - r->pos);
        return NULL;
    }
    const unsigned char *p = r->payload + r->pos;
    r->pos += n;
    return p;
}

int mp_mf_get_u32(mp_mf_reader *r, uint32_t *v, mp_error *err) {
    const unsigned char *p = r_take(r, 4, err);
    if (!p) return MP_ECORRUPT;
    *v = le_load32(p);
    return MP_OK;
}

int mp_mf_get_u64(mp_mf_reader *r, uint64_t *v, mp_error *err) {
    const unsigned char *p = r_take(r, 8, err);
    if (!p) return MP_ECORRUPT;
    *v = le_load64(p);
    return MP_OK;
}

int mp_mf_get_f64(mp_mf_reader *r, double *v, mp_error *err) {
    uint64_t bits;
    int rc = mp_mf_get_u64(r, &bits, err);
    if (rc) return rc;
    memcpy(v, &bits, 8);
    return MP_OK;
}

int mp_mf_get_bytes(mp_mf_reader *r, void *dst, size_t n, mp_error *err) {
    if (n == 0) return MP_OK;
    const unsigned char *p = r_take(r, n, err);
    if (!p) return MP_ECORRUPT;
    memcpy(dst, p, n);
    return MP_OK;
}

int mp_mf_get_str(mp_mf_reader *r, char **s, size_t max_len, mp_error *err) {
    *s = NULL;
    uint32_t n;
    int rc = mp_mf_get_u32(r, &n, err);
    if (rc) return rc;
    if (n == MF_STR_ABSENT) return MP_OK;
    if (n > max_len)
        return mp_error_set(err, MP_ECORRUPT, "model file %s: string of %u bytes at offset %zu exceeds the limit %zu",
                            r->path, n, r->pos - 4, max_len);
    const unsigned char *p = r_take(r, n, err);
    if (!p) return MP_ECORRUPT;
    if (memchr(p, 0, n))
        return mp_error_set(err, MP_ECORRUPT, "model file %s: string at offset %zu contains a NUL byte", r->path,
                            r->pos - n);
    char *c = malloc((size_t)n + 1);
    if (!c) return mp_error_set(err, MP_ENOMEM, "model file %s: out of memory", r->path);
    memcpy(c, p, n);
    c[n] = 0;
    *s = c;
    return MP_OK;
}

int mp_mf_peek_count(mp_mf_reader *r, uint64_t *n, uint64_t max_n, mp_error *err) {
    if (r->payload_len - r->pos < 8)
        return mp_error_set(err, MP_ECORRUPT, "model file %s: truncated payload (array count at offset %zu)",
                            r->path, r->pos);
    *n = le_load64(r->payload + r->pos);
    if (*n > max_n)
        return mp_error_set(err, MP_ECORRUPT, "model file %s: array of %llu elements at offset %zu exceeds %llu",
                            r->path, (unsigned long long)*n, r->pos, (unsigned long long)max_n);
    return MP_OK;
}

static int get_array(mp_mf_reader *r, void *a, size_t n, size_t width, mp_error *err) {
    uint64_t count;
    size_t at = r->pos;
    int rc = mp_mf_get_u64(r, &count, err);
    if (rc) return rc;
    if (count != (uint64_t)n)
        return mp_error_set(err, MP_ECORRUPT, "model file %s: array at offset %zu has %llu elements, expected %zu",
                            r->path, at, (unsigned long long)count, n);
    if (n == 0) return MP_OK;
    if (n > SIZE_MAX / width) return mp_error_set(err, MP_ECORRUPT, "model file %s: array too large", r->path);
    const unsigned char *p = r_take(r, n * width, err);
    if (!p) return MP_ECORRUPT;
    memcpy(a, p, n * width);
#if MF_BIG_ENDIAN
    unsigned char *q = a;
    for (size_t i = 0; i < n; i++)
        for (size_t b = 0; b < width / 2; b++) {
            unsigned char tmp = q[i * width + b];
            q[i * width + b] = q[i * width + width - 1 - b];
            q[i * width + width - 1 - b] = tmp;
        }
#endif
    return MP_OK;
}

int mp_mf_get_f32s(mp_mf_reader *r, float *a, size_t n, mp_error *err) { return get_array(r, a, n, 4, err); }
int mp_mf_get_u32s(mp_mf_reader *r, uint32_t *a, size_t n, mp_error *err) { return get_array(r, a, n, 4, err); }
int mp_mf_get_f64s(mp_mf_reader *r, double *a, size_t n, mp_error *err) { return get_array(r, a, n, 8, err); }
