/* src/ingest/presets.c: importers for the public datasets in ../shared/data (see each SOURCE.md).
 *
 * Each preset reads the dataset's own files, turns rows into mp_event / mp_item / mp_user records and feeds them
 * to one importer batch (magpie/ingest.h). Items and users go first so their internal ids follow file order.
 * Bad rows are passed to mp_importer_reject with "file:line: reason"; missing files are fatal errors naming the
 * path. Every line-oriented file goes through read_rows (open, skip blank lines and headers, check UTF-8, split,
 * close); a preset only writes the callback that turns one row's fields into a record. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "magpie/buf.h"
#include "magpie/ingest.h"
#include "magpie/json.h"
#include "magpie/strmap.h"

#define PROGRESS_EVERY 8192

/* ---------------------------------------------------------------------------------------------------------------
 * Small helpers: line reading, splitting, a string builder */

typedef struct lines {
    FILE *f;          /* the open file */
    const char *path; /* for messages (not owned) */
    char *buf;        /* getline buffer (owned) */
    size_t cap;       /* its capacity */
    uint64_t lineno;  /* 1-based number of the line in `line` */
    mp_str line;      /* current line without "\n" / "\r\n"; valid until the next call */
} lines;

static int lines_open(lines *l, const char *path, mp_error *err) {
    memset(l, 0, sizeof *l);
    l->path = path;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return mp_error_set(err, MP_EINVAL, "%s: is a directory, expected a file", path);
    l->f = fopen(path, "rb");
    if (!l->f) {
        int e = errno;
        return mp_error_set(err, e == ENOENT ? MP_ENOTFOUND : MP_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    return MP_OK;
}

/* 1 with a line, 0 at the end, MP_EIO on a read error. */
static int lines_next(lines *l, mp_error *err) {
    ssize_t n = getline(&l->buf, &l->cap, l->f);
    if (n < 0) {
        if (ferror(l->f)) return mp_error_set(err, MP_EIO, "%s: read failed: %s", l->path, strerror(errno));
        return 0;
    }
    l->lineno++;
    size_t len = (size_t)n;
    if (len && l->buf[len - 1] == '\n') len--;
    if (len && l->buf[len - 1] == '\r') len--;
    l->buf[len] = 0;
    l->line.ptr = l->buf;
    l->line.len = len;
    return 1;
}

static void lines_close(lines *l) {
    if (l->f) fclose(l->f);
    free(l->buf);
    memset(l, 0, sizeof *l);
}

/* Splits s on delim (no quoting) into at most max fields; returns the number of fields in s. */
static size_t split(mp_str s, char delim, mp_str *out, size_t max) {
    size_t k = 0, i = 0;
    for (;;) {
        const char *e = i < s.len ? memchr(s.ptr + i, delim, s.len - i) : NULL;
        size_t fe = e ? (size_t)(e - s.ptr) : s.len;
        if (k < max) {
            out[k].ptr = s.ptr + i;
            out[k].len = fe - i;
        }
        k++;
        if (!e) return k;
        i = fe + 1;
    }
}

static int str_is(mp_str s, const char *lit) {
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static int parse_i64(mp_str s, int64_t *out) {
    if (s.len == 0 || s.len > 18) return 0;
    size_t i = (s.ptr[0] == '-') ? 1 : 0;
    if (i == s.len) return 0;
    int64_t v = 0;
    for (; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9') return 0;
        v = v * 10 + (s.ptr[i] - '0');
    }
    *out = s.ptr[0] == '-' ? -v : v;
    return 1;
}

/* A JSON value for a field that is usually numeric: the number as is, else a string. */
static void sb_json_num_or_str(mp_buf *b, mp_str v) {
    double d;
    if (v.len && mp_parse_double(v.ptr, v.len, &d) == MP_OK && v.ptr[0] != '+')
        mp_buf_add(b, v.ptr, v.len);
    else
        mp_json_put_str(b, v.ptr, v.len);
}
/* Appends ,"key":  (or {"key": for the first). */
static void sb_key(mp_buf *b, const char *key) {
    mp_buf_adds(b, b->len ? "," : "{");
    mp_json_put_key(b, key);
}
static mp_str sb_close_obj(mp_buf *b) {
    if (b->len) mp_buf_adds(b, "}");
    mp_str s = {b->p ? b->p : "", b->failed ? 0 : b->len};
    return s;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Preset context */

typedef struct pctx {
    mp_importer *im;         /* the batch */
    const mp_progress *prog; /* may be NULL */
    uint64_t rows;           /* rows handled, for progress */
    mp_buf sb;               /* attrs builder (sticky error: checked once at the end) */
    mp_error *err;           /* where fatal errors go */
} pctx;

static int reject(pctx *p, const lines *l, const char *fmt, ...) MP_PRINTF(3, 4);
static int reject(pctx *p, const lines *l, const char *fmt, ...) {
    char msg[768], full[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "%s:%llu: %s", l->path, (unsigned long long)l->lineno, msg);
    return mp_importer_reject(p->im, l->path, l->lineno, full, l->line, p->err);
}

static void tick(pctx *p) {
    if (++p->rows % PROGRESS_EVERY == 0) mp_progress_report(p->prog, "import", p->rows, 0);
}

/* Checks an id; returns NULL if fine, else a reason. */
static const char *id_problem(mp_str id) {
    if (id.len == 0) return "is empty";
    if (id.len > MP_MAX_ID_BYTES) return "is longer than 256 bytes";
    return NULL;
}

/* Rejects a line that is not valid UTF-8; returns 1 if it was rejected (or *rc set on a fatal error). */
static int reject_bad_utf8(pctx *p, const lines *l, int *rc) {
    size_t bad;
    if (mp_utf8_valid(l->line.ptr, l->line.len, &bad)) return 0;
    *rc = reject(p, l, "invalid UTF-8 at byte %zu", bad + 1);
    return 1;
}

/* ISO-8859-1 text s transcoded to UTF-8 into buf (which must hold 2 * len + 1 bytes). MovieLens 100K files are
 * Latin-1 (a few titles have accented letters). */
static mp_str latin1_to_utf8(mp_str s, char *buf) {
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < 0x80) {
            buf[n++] = (char)c;
        } else {
            buf[n++] = (char)(0xC0 | (c >> 6));
            buf[n++] = (char)(0x80 | (c & 0x3F));
        }
    }
    buf[n] = 0;
    mp_str out = {buf, n};
    return out;
}

/* ---------------------------------------------------------------------------------------------------------------
 * The one row loop every line-oriented preset file goes through: open, read lines, skip blank ones (and an optional
 * header), check or transcode UTF-8, split into fields, hand the row to the preset's callback, close. */

#define ROW_MAX_FIELDS 128

typedef enum {
    ROW_UTF8_ANY,    /* the callback checks (JSON lines: the parser reports the bad byte) */
    ROW_UTF8_REJECT, /* a line that is not valid UTF-8 is rejected before it is split */
    ROW_UTF8_LATIN1, /* a line that is not valid UTF-8 is read as ISO-8859-1 and transcoded */
} row_utf8;

typedef enum {
    ROW_HEADER_NONE,
    ROW_HEADER_FIRST_LINE,     /* line 1, even when blank, goes to on_header; no line at all: MP_EEMPTY */
    ROW_HEADER_FIRST_NONEMPTY, /* the first non-blank line goes to on_header (before the UTF-8 check); MP_EEMPTY
                                  when the file has none */
} row_header;

typedef struct row_format {
    char delim;                  /* field separator; 0: the whole line is field 0 */
    int quoted;                  /* RFC 4180 quoting (mp_csv_split); a malformed line is rejected */
    size_t max_fields;           /* fields kept (<= ROW_MAX_FIELDS); the count may be larger */
    row_utf8 utf8;
    row_header header;
    const char *skip_line1_with; /* line 1 is skipped when it contains this text (RecBole's "x:token" header) */
    int scratch;                 /* the callback needs line.len + 16 bytes of scratch (JSON string decoding) */
} row_format;

/* One row as the callback sees it; everything is valid until the callback returns. */
typedef struct row {
    const lines *l;  /* file, line number and the raw line, for reject() */
    const mp_str *f; /* fields [min(n, max_fields)] */
    size_t n;        /* number of fields in the line */
    char *scratch;   /* with fmt.scratch: room for line.len + 16 bytes; else NULL */
} row;

/* Both return MP_OK to go on, anything else to stop reading (that code is returned unless it is positive). */
typedef int (*row_fn)(pctx *p, const row *r, void *user);
typedef int (*header_fn)(pctx *p, const lines *l, void *user);

/* Grows *buf to at least `need` bytes. 0, or -1 when out of memory. */
static int scratch_reserve(char **buf, size_t *cap, size_t need) {
    return mp_grow((void **)buf, cap, need, 1) == MP_OK ? 0 : -1;
}

static int read_rows(pctx *p, const char *path, const row_format *fmt, header_fn on_header, row_fn on_row,
                     void *user) {
    lines l;
    int rc = lines_open(&l, path, p->err);
    if (rc != MP_OK) return rc;
    mp_str f[ROW_MAX_FIELDS];
    size_t max = fmt->max_fields < ROW_MAX_FIELDS ? fmt->max_fields : ROW_MAX_FIELDS;
    char *conv = NULL, *scratch = NULL;
    size_t conv_cap = 0, scratch_cap = 0;
    int have_header = fmt->header == ROW_HEADER_NONE;
    if (fmt->header == ROW_HEADER_FIRST_LINE) {
        if ((rc = lines_next(&l, p->err)) != 1) {
            lines_close(&l);
            return rc < 0 ? rc : mp_error_set(p->err, MP_EEMPTY, "%s: file is empty", path);
        }
        have_header = 1;
        if ((rc = on_header(p, &l, user)) != MP_OK) {
            lines_close(&l);
            return rc;
        }
    }
    while ((rc = lines_next(&l, p->err)) == 1) {
        if (l.line.len == 0 ||
            (fmt->skip_line1_with && l.lineno == 1 &&
             memmem(l.line.ptr, l.line.len, fmt->skip_line1_with, strlen(fmt->skip_line1_with))))
            continue;
        if (!have_header) {
            have_header = 1;
            if ((rc = on_header(p, &l, user)) != MP_OK) break;
            continue;
        }
        if (fmt->utf8 == ROW_UTF8_REJECT && reject_bad_utf8(p, &l, &rc)) {
            if (rc) break;
            continue;
        }
        mp_str line = l.line; /* what is split; reject() keeps showing the raw line */
        if (fmt->utf8 == ROW_UTF8_LATIN1 && !mp_utf8_valid(line.ptr, line.len, NULL)) {
            if (2 * line.len + 1 > conv_cap) {
                free(conv);
                conv_cap = 2 * line.len + 1;
                if (!(conv = malloc(conv_cap))) {
                    rc = mp_error_set(p->err, MP_ENOMEM, "out of memory");
                    break;
                }
            }
            line = latin1_to_utf8(line, conv);
        }
        if ((fmt->quoted || fmt->scratch) &&
            scratch_reserve(&scratch, &scratch_cap, line.len + 16) != 0) {
            rc = mp_error_set(p->err, MP_ENOMEM, "out of memory");
            break;
        }
        row r = {.l = &l, .f = f, .n = 1, .scratch = fmt->scratch ? scratch : NULL};
        if (fmt->quoted) {
            char *unq = scratch;
            const char *why = NULL;
            size_t badf = 0;
            if (mp_csv_split(line.ptr, line.len, fmt->delim, 1, f, max, &r.n, &unq, &why, &badf) != MP_OK) {
                if ((rc = reject(p, &l, "%s (column %zu)", why, badf + 1)) != MP_OK) break;
                continue;
            }
        } else if (fmt->delim) {
            r.n = split(line, fmt->delim, f, max);
        } else {
            f[0] = line;
        }
        if ((rc = on_row(p, &r, user)) != MP_OK) break;
    }
    free(conv);
    free(scratch);
    lines_close(&l);
    if (rc == 0 && !have_header) return mp_error_set(p->err, MP_EEMPTY, "%s: file is empty", path);
    return rc < 0 ? rc : MP_OK;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* dir/name into out. */
static void join(char *out, size_t cap, const char *dir, const char *name) {
    size_t n = strlen(dir);
    snprintf(out, cap, "%s%s%s", dir, (n && dir[n - 1] == '/') ? "" : "/", name);
}
/* Directory part of a file path ("." if none). */
static void dir_of(char *out, size_t cap, const char *path) {
    const char *s = strrchr(path, '/');
    if (!s)
        snprintf(out, cap, ".");
    else if (s == path)
        snprintf(out, cap, "/");
    else
        snprintf(out, cap, "%.*s", (int)(s - path), path);
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir ending with suffix (and not equal to `except`), sorted; caller frees each and the array. */
static int list_dir(const char *dir, const char *suffix, const char *except, char ***out, size_t *n, mp_error *err) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return mp_error_set(err, errno == ENOENT ? MP_ENOTFOUND : MP_EIO, "%s: cannot open folder: %s", dir,
                            strerror(errno));
    struct dirent *e;
    size_t cap = 0;
    int rc = MP_OK;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, suffix)) continue;
        if (except && strcmp(e->d_name, except) == 0) continue;
        if (mp_grow((void **)out, &cap, *n + 1, sizeof **out) != MP_OK) {
            rc = mp_error_set(err, MP_ENOMEM, "out of memory");
            break;
        }
        if (!((*out)[*n] = strdup(e->d_name))) {
            rc = mp_error_set(err, MP_ENOMEM, "out of memory");
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (rc == MP_OK && *n) qsort(*out, *n, sizeof **out, name_cmp);
    return rc;
}
static void free_list(char **a, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(a[i]);
    free(a);
}

/* Finds the one data file in a folder: dir/<preferred> if it exists, else the first file ending with suffix. */
static int find_in_dir(const char *dir, const char *preferred, const char *suffix, const char *except, char *out,
                       size_t cap, mp_error *err) {
    if (preferred) {
        join(out, cap, dir, preferred);
        if (file_exists(out)) return MP_OK;
    }
    char **names;
    size_t n;
    int rc = list_dir(dir, suffix, except, &names, &n, err);
    if (rc != MP_OK) return rc;
    if (n == 0) {
        free_list(names, n);
        return mp_error_set(err, MP_ENOTFOUND, "%s: no %s%s%s file in this folder", dir, preferred ? preferred : "",
                            preferred ? " or other " : "", suffix);
    }
    join(out, cap, dir, names[0]);
    free_list(names, n);
    return MP_OK;
}

static int read_whole(const char *path, char **buf, size_t *len, mp_error *err) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return mp_error_set(err, errno == ENOENT ? MP_ENOTFOUND : MP_EIO, "%s: cannot open: %s", path, strerror(errno));
    mp_buf b;
    mp_buf_init(&b);
    int rc = mp_buf_add_file(&b, f);
    fclose(f);
    if (rc != MP_OK) {
        mp_buf_free(&b);
        return rc == MP_ENOMEM ? mp_error_set(err, MP_ENOMEM, "out of memory reading %s", path)
                               : mp_error_set(err, MP_EIO, "%s: read failed", path);
    }
    *buf = mp_buf_take(&b, len);
    if (!*buf) return mp_error_set(err, MP_ENOMEM, "out of memory reading %s", path);
    return MP_OK;
}

/* ---------------------------------------------------------------------------------------------------------------
 * movielens: u.item, u.user, u.data */

static const char *const k_ml_genres[19] = {"unknown",   "Action",   "Adventure",   "Animation", "Children's",
                                            "Comedy",    "Crime",    "Documentary", "Drama",     "Fantasy",
                                            "Film-Noir", "Horror",   "Musical",     "Mystery",   "Romance",
                                            "Sci-Fi",    "Thriller", "War",         "Western"};

static int ml_item_row(pctx *p, const row *r, void *user) {
    const mp_str *f = r->f;
    int rc;
    if (r->n != 24)
        return reject(p, r->l,
                      "expected 24 '|'-separated fields (id|title|date|video date|url|19 genre flags), found %zu",
                      r->n);
    const char *why = id_problem(f[0]);
    if (why) return reject(p, r->l, "field `movie_id`: id %s", why);
    mp_item it = {0};
    it.id = f[0];
    it.title = f[1];
    it.available = 1;
    mp_buf_clear(&p->sb);
    sb_key(&p->sb, "release_date");
    mp_json_put_str(&p->sb, f[2].ptr, f[2].len);
    if (f[4].len) {
        sb_key(&p->sb, "imdb_url");
        mp_json_put_str(&p->sb, f[4].ptr, f[4].len);
    }
    sb_key(&p->sb, "genres");
    mp_buf_adds(&p->sb, "[");
    int ng = 0;
    for (int g = 0; g < 19; g++) {
        if (!str_is(f[5 + g], "1")) continue;
        if (!it.category.len) {
            it.category.ptr = k_ml_genres[g];
            it.category.len = strlen(k_ml_genres[g]);
        }
        if (ng++) mp_buf_adds(&p->sb, ",");
        mp_json_put_str(&p->sb, k_ml_genres[g], strlen(k_ml_genres[g]));
    }
    mp_buf_adds(&p->sb, "]");
    it.attrs = sb_close_obj(&p->sb);
    if ((rc = mp_importer_add_item(p->im, &it, p->err)) != MP_OK) return rc;
    tick(p);
    return MP_OK;
}

static int ml_user_row(pctx *p, const row *r, void *user) {
    const mp_str *f = r->f;
    int64_t age;
    const char *why = r->n == 5 ? id_problem(f[0]) : NULL;
    if (r->n != 5)
        return reject(p, r->l, "expected 5 '|'-separated fields (id|age|gender|occupation|zip), found %zu", r->n);
    if (why) return reject(p, r->l, "field `user_id`: id %s", why);
    if (!parse_i64(f[1], &age)) return reject(p, r->l, "field `age`: expected an integer");
    mp_buf_clear(&p->sb);
    sb_key(&p->sb, "age");
    mp_buf_add(&p->sb, f[1].ptr, f[1].len);
    sb_key(&p->sb, "gender");
    mp_json_put_str(&p->sb, f[2].ptr, f[2].len);
    sb_key(&p->sb, "occupation");
    mp_json_put_str(&p->sb, f[3].ptr, f[3].len);
    sb_key(&p->sb, "zip");
    mp_json_put_str(&p->sb, f[4].ptr, f[4].len);
    mp_user u = {.id = f[0], .attrs = sb_close_obj(&p->sb)};
    int rc = mp_importer_add_user(p->im, &u, p->err);
    tick(p);
    return rc;
}

static int ml_rating_row(pctx *p, const row *r, void *user) {
    const mp_str *f = r->f;
    mp_event e = {0};
    e.type = MP_EV_RATING;
    e.has_value = 1;
    if (r->n != 4)
        return reject(p, r->l, "expected 4 tab-separated fields (user, item, rating, timestamp), found %zu", r->n);
    if (id_problem(f[0])) return reject(p, r->l, "field `user_id`: id %s", id_problem(f[0]));
    if (id_problem(f[1])) return reject(p, r->l, "field `item_id`: id %s", id_problem(f[1]));
    if (mp_parse_double(f[2].ptr, f[2].len, &e.value) != MP_OK)
        return reject(p, r->l, "field `rating`: expected a number");
    if (!parse_i64(f[3], &e.ts) || e.ts < MP_TS_MIN || e.ts > MP_TS_MAX)
        return reject(p, r->l, "field `timestamp`: expected epoch seconds");
    e.user = f[0];
    e.item = f[1];
    int rc = mp_importer_add_event(p->im, &e, p->err);
    tick(p);
    return rc;
}

static int ml_items(pctx *p, const char *path) {
    static const row_format fmt = {.delim = '|', .max_fields = 32, .utf8 = ROW_UTF8_LATIN1};
    return read_rows(p, path, &fmt, NULL, ml_item_row, NULL);
}

static int ml_users(pctx *p, const char *path) {
    static const row_format fmt = {.delim = '|', .max_fields = 8, .utf8 = ROW_UTF8_REJECT};
    return read_rows(p, path, &fmt, NULL, ml_user_row, NULL);
}

static int ml_ratings(pctx *p, const char *path) {
    static const row_format fmt = {.delim = '\t', .max_fields = 6};
    return read_rows(p, path, &fmt, NULL, ml_rating_row, NULL);
}

static int preset_movielens(pctx *p, const char *path) {
    char dir[1024], data[1100], item[1100], user[1100];
    if (is_dir(path))
        snprintf(dir, sizeof dir, "%s", path);
    else
        dir_of(dir, sizeof dir, path);
    join(data, sizeof data, dir, "u.data");
    if (!is_dir(path)) snprintf(data, sizeof data, "%s", path);
    if (!file_exists(data)) return mp_error_set(p->err, MP_ENOTFOUND, "%s: no such file (MovieLens ratings)", data);
    join(item, sizeof item, dir, "u.item");
    join(user, sizeof user, dir, "u.user");
    int rc = MP_OK;
    if (file_exists(item) && (rc = ml_items(p, item)) != MP_OK) return rc;
    if (file_exists(user) && (rc = ml_users(p, user)) != MP_OK) return rc;
    return ml_ratings(p, data);
}

/* ---------------------------------------------------------------------------------------------------------------
 * s3rec: <Name>.txt sequences and <Name>_item2attributes.json */

typedef struct s3_item {
    mp_str key;   /* item id text */
    mp_str attrs; /* raw JSON array of attribute ids */
    long num;     /* numeric id for ordering (-1 if not a number) */
} s3_item;

static int s3_item_cmp(const void *a, const void *b) {
    const s3_item *x = a, *y = b;
    if (x->num != y->num) return x->num < y->num ? -1 : 1;
    size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
    int c = memcmp(x->key.ptr, y->key.ptr, n);
    return c ? c : (x->key.len < y->key.len ? -1 : x->key.len > y->key.len);
}

static int s3_items(pctx *p, const char *path) {
    char *buf;
    size_t len;
    int rc = read_whole(path, &buf, &len, p->err);
    if (rc != MP_OK) return rc;
    char *scratch_mem = malloc(len + 16), *scratch = scratch_mem;
    s3_item *items = NULL;
    size_t n = 0, cap = 0;
    mp_json_cur c;
    mp_json_init(&c, buf, len);
    if (!scratch_mem)
        rc = mp_error_set(p->err, MP_ENOMEM, "out of memory");
    else if (mp_json_object_begin(&c) != MP_OK)
        rc = mp_error_set(p->err, MP_ECORRUPT, "%s: expected one JSON object {\"item\": [attribute ids], ...}", path);
    while (rc == MP_OK) {
        mp_str key;
        int done;
        if (mp_json_object_next(&c, &scratch, &key, &done) != MP_OK) {
            rc = mp_error_set(p->err, MP_ECORRUPT, "%s: malformed JSON at byte %zu: %s", path,
                              (size_t)(c.err_at - buf) + 1, c.why);
            break;
        }
        if (done) break;
        mp_str raw;
        if (mp_json_peek(&c) != MP_JSON_ARRAY || mp_json_skip(&c, &raw) != MP_OK) {
            rc = mp_error_set(p->err, MP_ECORRUPT, "%s: item \"%.*s\": expected an array of attribute ids", path,
                              (int)(key.len > 64 ? 64 : key.len), key.ptr);
            break;
        }
        if (mp_grow((void **)&items, &cap, n + 1, sizeof *items) != MP_OK) {
            rc = mp_error_set(p->err, MP_ENOMEM, "out of memory");
            break;
        }
        int64_t num;
        items[n].key = key;
        items[n].attrs = raw;
        items[n].num = parse_i64(key, &num) ? (long)num : -1;
        n++;
    }
    if (rc == MP_OK && !mp_json_at_end(&c))
        rc = mp_error_set(p->err, MP_ECORRUPT, "%s: unexpected content after the JSON object", path);
    if (rc == MP_OK) qsort(items, n, sizeof *items, s3_item_cmp);
    for (size_t i = 0; rc == MP_OK && i < n; i++) {
        if (id_problem(items[i].key)) {
            lines fake = {.path = path, .lineno = 1, .line = items[i].key};
            rc = reject(p, &fake, "item key %s", id_problem(items[i].key));
            continue;
        }
        /* first attribute id as the category */
        mp_json_cur a;
        mp_json_init(&a, items[i].attrs.ptr, items[i].attrs.len);
        mp_json_array_begin(&a);
        int done;
        char cat[96] = "";
        mp_str first;
        if (mp_json_array_next(&a, &done) == MP_OK && !done && mp_json_peek(&a) == MP_JSON_NUMBER &&
            mp_json_number(&a, &first, NULL, NULL) == MP_OK)
            snprintf(cat, sizeof cat, "attr-%.*s", (int)(first.len > 64 ? 64 : first.len), first.ptr);
        mp_buf_clear(&p->sb);
        sb_key(&p->sb, "attributes");
        mp_buf_add(&p->sb, items[i].attrs.ptr, items[i].attrs.len);
        mp_item it = {0};
        it.id = items[i].key;
        it.category.ptr = cat;
        it.category.len = strlen(cat);
        it.attrs = sb_close_obj(&p->sb);
        it.available = 1;
        rc = mp_importer_add_item(p->im, &it, p->err);
        tick(p);
    }
    free(items);
    free(scratch_mem);
    free(buf);
    return rc;
}

/* Space-separated "user item item ..." lines; ts = 1, 2, 3, ... per user so the order is kept. */
static int sequences(pctx *p, const lines *l, mp_str user, mp_str list, int64_t first_ts, int64_t *next_ts) {
    int rc = MP_OK;
    size_t i = 0;
    int64_t ts = first_ts;
    while (i < list.len && rc == MP_OK) {
        while (i < list.len && list.ptr[i] == ' ')
            i++;
        size_t s = i;
        while (i < list.len && list.ptr[i] != ' ')
            i++;
        if (i == s) break;
        mp_event e = {0};
        e.user = user;
        e.item.ptr = list.ptr + s;
        e.item.len = i - s;
        e.type = MP_EV_PURCHASE;
        e.ts = ts++;
        if (id_problem(e.item)) return reject(p, l, "item id %s", id_problem(e.item));
        rc = mp_importer_add_event(p->im, &e, p->err);
        tick(p);
    }
    *next_ts = ts;
    return rc;
}

static int s3_sequence_row(pctx *p, const row *r, void *user) {
    mp_str line = r->f[0];
    const char *sp = memchr(line.ptr, ' ', line.len);
    mp_str uid = {line.ptr, sp ? (size_t)(sp - line.ptr) : line.len};
    int64_t next;
    if (!sp) return reject(p, r->l, "expected \"user item item ...\", found only one field");
    if (id_problem(uid)) return reject(p, r->l, "user id %s", id_problem(uid));
    mp_str list = {sp + 1, line.len - uid.len - 1};
    return sequences(p, r->l, uid, list, 1, &next);
}

static int preset_s3rec(pctx *p, const char *path) {
    char txt[1100], attrs[1100];
    int rc;
    if (is_dir(path)) {
        if ((rc = find_in_dir(path, "Beauty.txt", ".txt", NULL, txt, sizeof txt, p->err)) != MP_OK) return rc;
    } else {
        snprintf(txt, sizeof txt, "%s", path);
    }
    if (!file_exists(txt)) return mp_error_set(p->err, MP_ENOTFOUND, "%s: no such file (S3-Rec sequences)", txt);
    size_t tl = strlen(txt);
    snprintf(attrs, sizeof attrs, "%.*s_item2attributes.json", (int)(ends_with(txt, ".txt") ? tl - 4 : tl), txt);
    if (file_exists(attrs) && (rc = s3_items(p, attrs)) != MP_OK) return rc;
    static const row_format fmt = {.utf8 = ROW_UTF8_REJECT}; /* "user item item ...": split by s3_sequence_row */
    return read_rows(p, txt, &fmt, NULL, s3_sequence_row, NULL);
}

/* ---------------------------------------------------------------------------------------------------------------
 * tianchi: ecomm_item_feature.txt, ecomm_user_feature.txt, ecomm_edge_train.txt */

static int tc_item_row(pctx *p, const row *r, void *user) {
    const mp_str *f = r->f;
    char cat[160];
    mp_item it = {0};
    it.available = 1;
    if (r->n != 5)
        return reject(p, r->l, "expected 5 tab-separated fields (item, cate_1, cate, brand, price), found %zu", r->n);
    if (id_problem(f[0])) return reject(p, r->l, "field `item_id`: id %s", id_problem(f[0]));
    if (f[4].len && (mp_parse_double(f[4].ptr, f[4].len, &it.price) != MP_OK || it.price < 0))
        return reject(p, r->l, "field `price`: expected a number >= 0");
    it.id = f[0];
    it.has_price = f[4].len > 0;
    snprintf(cat, sizeof cat, "%.*s > %.*s", (int)(f[1].len > 64 ? 64 : f[1].len), f[1].ptr,
             (int)(f[2].len > 64 ? 64 : f[2].len), f[2].ptr);
    it.category.ptr = cat;
    it.category.len = strlen(cat);
    if (!str_is(f[3], "0")) it.brand = f[3]; /* brand 0 means unknown */
    int rc = mp_importer_add_item(p->im, &it, p->err);
    tick(p);
    return rc;
}

static int tc_user_row(pctx *p, const row *r, void *user) {
    static const char *const names[6] = {"gender", "age_level", "education", "career_type", "income", "stage"};
    const mp_str *f = r->f;
    if (r->n != 7)
        return reject(p, r->l,
                      "expected 7 tab-separated fields (user, gender, age, education, career, "
                      "income, stages), found %zu",
                      r->n);
    if (id_problem(f[0])) return reject(p, r->l, "field `user_id`: id %s", id_problem(f[0]));
    mp_buf_clear(&p->sb);
    for (int k = 0; k < 6; k++) {
        mp_str v = f[1 + k];
        if (v.len == 0 || str_is(v, "-1")) continue; /* -1 = missing */
        sb_key(&p->sb, names[k]);
        if (k == 5) { /* comma-separated stage list */
            mp_str parts[16];
            size_t np = split(v, ',', parts, 16);
            mp_buf_adds(&p->sb, "[");
            for (size_t j = 0; j < np && j < 16; j++) {
                if (j) mp_buf_adds(&p->sb, ",");
                sb_json_num_or_str(&p->sb, parts[j]);
            }
            mp_buf_adds(&p->sb, "]");
        } else {
            sb_json_num_or_str(&p->sb, v);
        }
    }
    mp_user u = {.id = f[0], .attrs = sb_close_obj(&p->sb)};
    int rc = mp_importer_add_user(p->im, &u, p->err);
    tick(p);
    return rc;
}

static int tc_event_row(pctx *p, const row *r, void *user) {
    static const mp_event_type map[5] = {MP_EV_VIEW, MP_EV_CLICK, MP_EV_FAV, MP_EV_CART, MP_EV_PURCHASE};
    const mp_str *f = r->f;
    mp_event e = {0};
    int64_t b = 0;
    char date[16];
    if (r->n != 4)
        return reject(p, r->l, "expected 4 tab-separated fields (user, item, behaviour, date), found %zu", r->n);
    if (id_problem(f[0])) return reject(p, r->l, "field `user_id`: id %s", id_problem(f[0]));
    if (id_problem(f[1])) return reject(p, r->l, "field `item_id`: id %s", id_problem(f[1]));
    if (!parse_i64(f[2], &b) || b < 1 || b > 4)
        return reject(p, r->l, "field `behavior`: expected 1 (click), 2 (fav), 3 (cart) or 4 (buy), got \"%.*s\"",
                      (int)(f[2].len > 32 ? 32 : f[2].len), f[2].ptr);
    if (f[3].len != 8 || (snprintf(date, sizeof date, "%.4s-%.2s-%.2s", f[3].ptr, f[3].ptr + 4, f[3].ptr + 6),
                          mp_parse_rfc3339(date, 10, &e.ts) != MP_OK))
        return reject(p, r->l, "field `date`: expected YYYYMMDD, got \"%.*s\"", (int)(f[3].len > 32 ? 32 : f[3].len),
                      f[3].ptr);
    e.user = f[0];
    e.item = f[1];
    e.type = map[b];
    int rc = mp_importer_add_event(p->im, &e, p->err);
    tick(p);
    return rc;
}

static int tc_items(pctx *p, const char *path) {
    static const row_format fmt = {.delim = '\t', .max_fields = 8, .utf8 = ROW_UTF8_REJECT};
    return read_rows(p, path, &fmt, NULL, tc_item_row, NULL);
}

static int tc_users(pctx *p, const char *path) {
    static const row_format fmt = {.delim = '\t', .max_fields = 8, .utf8 = ROW_UTF8_REJECT};
    return read_rows(p, path, &fmt, NULL, tc_user_row, NULL);
}

static int tc_events(pctx *p, const char *path) {
    static const row_format fmt = {.delim = '\t', .max_fields = 6};
    return read_rows(p, path, &fmt, NULL, tc_event_row, NULL);
}

static int preset_tianchi(pctx *p, const char *path) {
    char dir[1024], ev[1100], it[1100], us[1100];
    if (is_dir(path)) {
        snprintf(dir, sizeof dir, "%s", path);
        join(ev, sizeof ev, dir, "ecomm_edge_train.txt");
    } else {
        dir_of(dir, sizeof dir, path);
        snprintf(ev, sizeof ev, "%s", path);
    }
    if (!file_exists(ev)) return mp_error_set(p->err, MP_ENOTFOUND, "%s: no such file (Tianchi EComm events)", ev);
    join(it, sizeof it, dir, "ecomm_item_feature.txt");
    join(us, sizeof us, dir, "ecomm_user_feature.txt");
    int rc;
    if (file_exists(it) && (rc = tc_items(p, it)) != MP_OK) return rc;
    if (file_exists(us) && (rc = tc_users(p, us)) != MP_OK) return rc;
    return tc_events(p, ev);
}

/* ---------------------------------------------------------------------------------------------------------------
 * obd: <campaign>.csv impressions and item_context.csv */

/* Index of the header column named `name`, or -1. */
static int col_index(const mp_str *h, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (str_is(h[i], name)) return (int)i;
    return -1;
}

#define OBD_MAX_COLS 128

/* The header of item_context.csv: column names (the item_id column found, the others kept as attribute keys). */
typedef struct obd_items_state {
    char **names; /* [nh] column names (owned) */
    size_t nh;
    int id_col;
} obd_items_state;

static int obd_items_header(pctx *p, const lines *l, void *user) {
    obd_items_state *st = user;
    mp_str h[OBD_MAX_COLS];
    st->nh = split(l->line, ',', h, OBD_MAX_COLS);
    if (st->nh > OBD_MAX_COLS || (st->id_col = col_index(h, st->nh, "item_id")) < 0)
        return mp_error_set(p->err, MP_ECORRUPT, "%s:1: header has no `item_id` column", l->path);
    int rc = MP_OK;
    st->names = calloc(st->nh, sizeof *st->names);
    for (size_t i = 0; st->names && i < st->nh; i++)
        st->names[i] = strndup(h[i].ptr, h[i].len);
    for (size_t i = 0; st->names && i < st->nh; i++)
        if (!st->names[i]) rc = mp_error_set(p->err, MP_ENOMEM, "out of memory");
    if (!st->names) rc = mp_error_set(p->err, MP_ENOMEM, "out of memory");
    return rc;
}

static int obd_item_row(pctx *p, const row *r, void *user) {
    const obd_items_state *st = user;
    const mp_str *f = r->f;
    if (r->n != st->nh) return reject(p, r->l, "expected %zu columns as in the header, found %zu", st->nh, r->n);
    if (id_problem(f[st->id_col])) return reject(p, r->l, "field `item_id`: id %s", id_problem(f[st->id_col]));
    mp_buf_clear(&p->sb);
    for (size_t i = 0; i < st->nh; i++) {
        if ((int)i == st->id_col || st->names[i][0] == 0) continue; /* the unnamed pandas index */
        sb_key(&p->sb, st->names[i]);
        sb_json_num_or_str(&p->sb, f[i]);
    }
    mp_item it = {0};
    it.id = f[st->id_col];
    it.attrs = sb_close_obj(&p->sb);
    it.available = 1;
    int rc = mp_importer_add_item(p->im, &it, p->err);
    tick(p);
    return rc;
}

static int obd_items(pctx *p, const char *path) {
    static const row_format fmt = {.delim = ',',
                                   .max_fields = OBD_MAX_COLS,
                                   .utf8 = ROW_UTF8_REJECT,
                                   .header = ROW_HEADER_FIRST_LINE};
    obd_items_state st = {.id_col = -1};
    int rc = read_rows(p, path, &fmt, obd_items_header, obd_item_row, &st);
    if (st.names)
        for (size_t i = 0; i < st.nh; i++)
            free(st.names[i]);
    free(st.names);
    return rc;
}

static const char *const k_obd_need[] = {"timestamp",      "item_id",        "click",         "user_feature_0",
                                         "user_feature_1", "user_feature_2", "user_feature_3"};

/* A campaign file: the columns found in its header and the users already added. */
typedef struct obd_events_state {
    size_t nh;
    int col[7]; /* of k_obd_need */
    int pos_col;
    mp_strmap *seen_users; /* owned */
} obd_events_state;

static int obd_events_header(pctx *p, const lines *l, void *user) {
    obd_events_state *st = user;
    mp_str h[OBD_MAX_COLS];
    st->nh = split(l->line, ',', h, OBD_MAX_COLS);
    for (int i = 0; i < 7; i++) {
        st->col[i] = st->nh <= OBD_MAX_COLS ? col_index(h, st->nh, k_obd_need[i]) : -1;
        if (st->col[i] < 0)
            return mp_error_set(p->err, MP_ECORRUPT,
                                "%s:1: header has no `%s` column (is this an Open Bandit "
                                "Dataset campaign file?)",
                                l->path, k_obd_need[i]);
    }
    st->pos_col = col_index(h, st->nh < OBD_MAX_COLS ? st->nh : OBD_MAX_COLS, "position");
    if (mp_strmap_create(&st->seen_users, 1024) != MP_OK) return mp_error_set(p->err, MP_ENOMEM, "out of memory");
    return MP_OK;
}

static int obd_event_row(pctx *p, const row *r, void *user) {
    obd_events_state *st = user;
    const mp_str *f = r->f;
    const int *col = st->col;
    char uid[4 * MP_MAX_ID_BYTES + 8], sess[32];
    mp_event e = {0};
    if (r->n != st->nh) return reject(p, r->l, "expected %zu columns as in the header, found %zu", st->nh, r->n);
    if (mp_parse_rfc3339(f[col[0]].ptr, f[col[0]].len, &e.ts) != MP_OK)
        return reject(p, r->l, "field `timestamp`: expected a time like 2019-11-24 00:03:13.442536+00:00, got \"%.*s\"",
                      (int)(f[col[0]].len > 48 ? 48 : f[col[0]].len), f[col[0]].ptr);
    if (id_problem(f[col[1]])) return reject(p, r->l, "field `item_id`: id %s", id_problem(f[col[1]]));
    if (!str_is(f[col[2]], "0") && !str_is(f[col[2]], "1")) return reject(p, r->l, "field `click`: expected 0 or 1");
    size_t ul = 0;
    for (int k = 0; k < 4; k++) {
        mp_str v = f[col[3 + k]];
        if (v.len > MP_MAX_ID_BYTES) v.len = MP_MAX_ID_BYTES;
        if (k) uid[ul++] = '-';
        memcpy(uid + ul, v.ptr, v.len);
        ul += v.len;
    }
    e.user.ptr = uid;
    e.user.len = ul > MP_MAX_ID_BYTES ? MP_MAX_ID_BYTES : ul;
    e.item = f[col[1]];
    if (st->pos_col >= 0 && f[st->pos_col].len < 16) {
        snprintf(sess, sizeof sess, "slot-%.*s", (int)f[st->pos_col].len, f[st->pos_col].ptr);
        e.session.ptr = sess;
        e.session.len = strlen(sess);
    }
    int inserted = 0, rc;
    uint32_t sid;
    if (mp_strmap_intern(st->seen_users, e.user.ptr, e.user.len, &sid, &inserted) != MP_OK)
        return mp_error_set(p->err, MP_ENOMEM, "out of memory");
    if (inserted) {
        mp_buf_clear(&p->sb);
        for (int k = 0; k < 4; k++) {
            sb_key(&p->sb, k_obd_need[3 + k]);
            mp_json_put_str(&p->sb, f[col[3 + k]].ptr, f[col[3 + k]].len);
        }
        mp_user u = {.id = e.user, .attrs = sb_close_obj(&p->sb)};
        if ((rc = mp_importer_add_user(p->im, &u, p->err)) != MP_OK) return rc;
    }
    e.type = MP_EV_VIEW;
    rc = mp_importer_add_event(p->im, &e, p->err);
    if (rc == MP_OK && str_is(f[col[2]], "1")) {
        e.type = MP_EV_CLICK;
        rc = mp_importer_add_event(p->im, &e, p->err);
    }
    tick(p);
    return rc;
}

static int obd_events(pctx *p, const char *path) {
    static const row_format fmt = {.delim = ',',
                                   .max_fields = OBD_MAX_COLS,
                                   .utf8 = ROW_UTF8_REJECT,
                                   .header = ROW_HEADER_FIRST_LINE};
    obd_events_state st = {.pos_col = -1};
    int rc = read_rows(p, path, &fmt, obd_events_header, obd_event_row, &st);
    mp_strmap_destroy(st.seen_users);
    return rc;
}

static int preset_obd(pctx *p, const char *path) {
    char dir[1024], csv[1100], ctx[1100];
    int rc;
    if (is_dir(path)) {
        snprintf(dir, sizeof dir, "%s", path);
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
            dir[--n] = 0;
        const char *base = strrchr(dir, '/');
        char pref[300];
        snprintf(pref, sizeof pref, "%s.csv", base ? base + 1 : dir);
        if ((rc = find_in_dir(dir, pref, ".csv", "item_context.csv", csv, sizeof csv, p->err)) != MP_OK) return rc;
    } else {
        dir_of(dir, sizeof dir, path);
        snprintf(csv, sizeof csv, "%s", path);
    }
    if (!file_exists(csv))
        return mp_error_set(p->err, MP_ENOTFOUND, "%s: no such file (Open Bandit campaign log)", csv);
    join(ctx, sizeof ctx, dir, "item_context.csv");
    if (file_exists(ctx) && (rc = obd_items(p, ctx)) != MP_OK) return rc;
    return obd_events(p, csv);
}

/* ---------------------------------------------------------------------------------------------------------------
 * amazon-games: <name>.item titles and <name>.test.inter sequences */

static int ag_item_row(pctx *p, const row *r, void *user) {
    const mp_str *f = r->f;
    if (r->n != 2) return reject(p, r->l, "expected 2 tab-separated fields (item_id, title), found %zu", r->n);
    if (id_problem(f[0])) return reject(p, r->l, "field `item_id`: id %s", id_problem(f[0]));
    mp_item it = {0};
    it.id = f[0];
    it.title = f[1];
    it.available = 1;
    int rc = mp_importer_add_item(p->im, &it, p->err);
    tick(p);
    return rc;
}

static int ag_event_row(pctx *p, const row *r, void *user) {
    const mp_str *f = r->f;
    int64_t next = 1;
    int rc;
    if (r->n != 3)
        return reject(p, r->l, "expected 3 tab-separated fields (user_id, item_id_list, item_id), found %zu", r->n);
    if (id_problem(f[0])) return reject(p, r->l, "field `user_id`: id %s", id_problem(f[0]));
    if (id_problem(f[2])) return reject(p, r->l, "field `item_id`: id %s", id_problem(f[2]));
    if ((rc = sequences(p, r->l, f[0], f[1], 1, &next)) != MP_OK) return rc;
    mp_event e = {0};
    e.user = f[0];
    e.item = f[2];
    e.type = MP_EV_PURCHASE;
    e.ts = next;
    return mp_importer_add_event(p->im, &e, p->err);
}

/* RecBole atomic files: tab-separated, line 1 names the columns ("item_id:token\ttitle:token_seq"). */
static const row_format k_recbole_fmt = {
    .delim = '\t', .max_fields = 4, .utf8 = ROW_UTF8_REJECT, .skip_line1_with = ":token"};

static int ag_items(pctx *p, const char *path) {
    return read_rows(p, path, &k_recbole_fmt, NULL, ag_item_row, NULL);
}

static int ag_events(pctx *p, const char *path) {
    return read_rows(p, path, &k_recbole_fmt, NULL, ag_event_row, NULL);
}

static int preset_amazon_games(pctx *p, const char *path) {
    char inter[1100], item[1100];
    int rc;
    if (is_dir(path)) {
        if ((rc = find_in_dir(path, "Games-6k.test.inter", ".test.inter", NULL, inter, sizeof inter, p->err)) != MP_OK)
            return rc;
    } else {
        snprintf(inter, sizeof inter, "%s", path);
    }
    if (!file_exists(inter))
        return mp_error_set(p->err, MP_ENOTFOUND, "%s: no such file (RecBole .inter sequences)", inter);
    /* X.test.inter -> X.item */
    const char *dot = strstr(inter, ".test.inter");
    if (!dot) dot = strrchr(inter, '.');
    int stem = dot ? (int)(dot - inter) : (int)strlen(inter);
    snprintf(item, sizeof item, "%.*s.item", stem, inter);
    if (file_exists(item) && (rc = ag_items(p, item)) != MP_OK) return rc;
    return ag_events(p, inter);
}

/* ---------------------------------------------------------------------------------------------------------------
 * reviews-zh: cat,label,review CSV parts */

typedef struct zh_state {
    uint64_t row;    /* reviews so far, over all parts: user "zh-<row>", ts = row */
    mp_strmap *cats; /* categories already added as items */
} zh_state;

static int zh_header(pctx *p, const lines *l, void *user) {
    mp_str s = l->line;
    if (s.len >= 3 && memcmp(s.ptr, "\xEF\xBB\xBF", 3) == 0) {
        s.ptr += 3;
        s.len -= 3;
    }
    if (!str_is(s, "cat,label,review"))
        return mp_error_set(p->err, MP_ECORRUPT, "%s:%llu: expected the header \"cat,label,review\"", l->path,
                            (unsigned long long)l->lineno);
    return MP_OK;
}

static int zh_row(pctx *p, const row *r, void *user) {
    zh_state *z = user;
    const mp_str *f = r->f;
    char uid[32];
    double label = 0;
    int rc;
    if (r->n != 3) return reject(p, r->l, "expected 3 columns (cat, label, review), found %zu", r->n);
    if (id_problem(f[0])) return reject(p, r->l, "field `cat`: %s", id_problem(f[0]));
    if (mp_parse_double(f[1].ptr, f[1].len, &label) != MP_OK)
        return reject(p, r->l, "field `label`: expected 0 or 1, got \"%.*s\"", (int)(f[1].len > 16 ? 16 : f[1].len),
                      f[1].ptr);
    uint32_t id;
    int inserted = 0;
    if (mp_strmap_intern(z->cats, f[0].ptr, f[0].len, &id, &inserted) != MP_OK)
        return mp_error_set(p->err, MP_ENOMEM, "out of memory");
    if (inserted) {
        mp_item it = {0};
        it.id = f[0];
        it.title = f[0];
        it.category = f[0];
        it.available = 1;
        if ((rc = mp_importer_add_item(p->im, &it, p->err)) != MP_OK) return rc;
    }
    mp_str text = f[2];
    if (text.len >= 3 && memcmp(text.ptr, "\xEF\xBB\xBF", 3) == 0) { /* stray BOM inside the field */
        text.ptr += 3;
        text.len -= 3;
    }
    z->row++;
    snprintf(uid, sizeof uid, "zh-%llu", (unsigned long long)z->row);
    mp_event e = {0};
    e.user.ptr = uid;
    e.user.len = strlen(uid);
    e.item = f[0];
    e.type = MP_EV_REVIEW;
    e.ts = (int64_t)z->row;
    e.value = label;
    e.has_value = 1;
    e.text = text;
    rc = mp_importer_add_event(p->im, &e, p->err);
    tick(p);
    return rc;
}

static int zh_file(pctx *p, zh_state *z, const char *path) {
    static const row_format fmt = {.delim = ',',
                                   .quoted = 1,
                                   .max_fields = 4,
                                   .utf8 = ROW_UTF8_REJECT,
                                   .header = ROW_HEADER_FIRST_NONEMPTY};
    return read_rows(p, path, &fmt, zh_header, zh_row, z);
}

static int preset_reviews_zh(pctx *p, const char *path) {
    zh_state z = {0};
    if (mp_strmap_create(&z.cats, 16) != MP_OK) return mp_error_set(p->err, MP_ENOMEM, "out of memory");
    int rc = MP_OK;
    if (is_dir(path)) {
        char **names;
        size_t n;
        rc = list_dir(path, ".csv", NULL, &names, &n, p->err);
        if (rc == MP_OK && n == 0) rc = mp_error_set(p->err, MP_ENOTFOUND, "%s: no .csv files in this folder", path);
        for (size_t i = 0; rc == MP_OK && i < n; i++) {
            char full[1200];
            join(full, sizeof full, path, names[i]);
            rc = zh_file(p, &z, full);
        }
        free_list(names, n);
    } else {
        rc = zh_file(p, &z, path);
    }
    mp_strmap_destroy(z.cats);
    return rc;
}

/* ---------------------------------------------------------------------------------------------------------------
 * reviews-en: Amazon review JSON lines */

/* One Amazon review JSON object per line. */
static int en_row(pctx *p, const row *r, void *user) {
    char *scratch = r->scratch;
    mp_json_cur c;
    mp_str line = r->f[0];
    mp_json_init(&c, line.ptr, line.len);
    mp_event e = {0};
    e.type = MP_EV_REVIEW;
    int have_user = 0, have_item = 0, have_ts = 0;
    const char *problem = NULL;
    char pbuf[160];
    if (mp_json_object_begin(&c) != MP_OK) problem = "malformed JSON: expected an object";
    while (!problem) {
        mp_str key;
        int done;
        if (mp_json_object_next(&c, &scratch, &key, &done) != MP_OK) {
            snprintf(pbuf, sizeof pbuf, "malformed JSON: %s (byte %zu)", c.why,
                     (size_t)(c.err_at - line.ptr) + 1);
            problem = pbuf;
            break;
        }
        if (done) break;
        mp_json_type t = mp_json_peek(&c);
        const char *field = NULL;
        int ok = 1;
        if (str_is(key, "reviewerID") || str_is(key, "asin")) {
            field = str_is(key, "asin") ? "asin" : "reviewerID";
            mp_str *dst = field[0] == 'a' ? &e.item : &e.user;
            ok = t == MP_JSON_STRING && mp_json_string(&c, &scratch, dst) == MP_OK;
            if (ok) *(field[0] == 'a' ? &have_item : &have_user) = 1;
        } else if (str_is(key, "overall")) {
            field = "overall";
            ok = t == MP_JSON_NUMBER && mp_json_number(&c, NULL, NULL, &e.value) == MP_OK;
            e.has_value = ok;
        } else if (str_is(key, "unixReviewTime")) {
            field = "unixReviewTime";
            mp_str raw;
            int is_int = 0;
            ok = t == MP_JSON_NUMBER && mp_json_number(&c, &raw, &is_int, NULL) == MP_OK && is_int &&
                 parse_i64(raw, &e.ts) && e.ts >= MP_TS_MIN && e.ts <= MP_TS_MAX;
            have_ts = ok;
        } else if (str_is(key, "reviewText")) {
            field = "reviewText";
            if (t == MP_JSON_NULL)
                ok = mp_json_null(&c) == MP_OK;
            else
                ok = t == MP_JSON_STRING && mp_json_string(&c, &scratch, &e.text) == MP_OK;
        } else if (mp_json_skip(&c, NULL) != MP_OK) {
            snprintf(pbuf, sizeof pbuf, "malformed JSON in field `%.*s`: %s", (int)(key.len > 40 ? 40 : key.len),
                     key.ptr, c.why);
            problem = pbuf;
        }
        if (!ok) {
            snprintf(pbuf, sizeof pbuf, "field `%s`: %s", field,
                     t == MP_JSON_NULL ? "is null (required)"
                     : c.why           ? c.why
                                       : "has the wrong type");
            problem = pbuf;
        }
    }
    if (!problem && !mp_json_at_end(&c)) problem = "unexpected content after the JSON object";
    if (!problem && !have_user) problem = "field `reviewerID`: missing (required)";
    if (!problem && !have_item) problem = "field `asin`: missing (required)";
    if (!problem && !e.has_value) problem = "field `overall`: missing (required)";
    if (!problem && !have_ts) problem = "field `unixReviewTime`: missing (required)";
    if (!problem && id_problem(e.user)) problem = "field `reviewerID`: empty or longer than 256 bytes";
    if (!problem && id_problem(e.item)) problem = "field `asin`: empty or longer than 256 bytes";
    if (problem) return reject(p, r->l, "%s", problem);
    int rc = mp_importer_add_event(p->im, &e, p->err);
    tick(p);
    return rc;
}

static int preset_reviews_en(pctx *p, const char *path) {
    char file[1100];
    int rc;
    if (is_dir(path)) {
        if ((rc = find_in_dir(path, "AMAZON_FASHION_5.json", ".json", NULL, file, sizeof file, p->err)) != MP_OK)
            return rc;
    } else {
        snprintf(file, sizeof file, "%s", path);
    }
    static const row_format fmt = {.scratch = 1}; /* the JSON parser checks UTF-8 and reports the byte */
    return read_rows(p, file, &fmt, NULL, en_row, NULL);
}

/* ---------------------------------------------------------------------------------------------------------------
 * Registry */

typedef int (*preset_fn)(pctx *p, const char *path);

static const struct {
    const char *name;
    preset_fn fn;
} k_presets[] = {
    {"movielens", preset_movielens},       {"s3rec", preset_s3rec},
    {"tianchi", preset_tianchi},           {"obd", preset_obd},
    {"amazon-games", preset_amazon_games}, {"reviews-zh", preset_reviews_zh},
    {"reviews-en", preset_reviews_en},
};
#define N_PRESETS (sizeof k_presets / sizeof k_presets[0])

static const char *const k_preset_names[N_PRESETS + 1] = {"movielens",    "s3rec",      "tianchi",    "obd",
                                                          "amazon-games", "reviews-zh", "reviews-en", NULL};

const char *const *mp_preset_names(void) {
    return k_preset_names;
}

int mp_import_preset(mp_store *s, const char *preset, const char *path, const mp_import_opts *opts,
                     mp_import_report *rep, mp_error *err) {
    if (rep) memset(rep, 0, sizeof *rep);
    preset_fn fn = NULL;
    for (size_t i = 0; i < N_PRESETS; i++)
        if (preset && strcmp(preset, k_presets[i].name) == 0) fn = k_presets[i].fn;
    if (!fn)
        return mp_error_set(err, MP_EINVAL,
                            "unknown preset \"%s\"; known presets: movielens, s3rec, tianchi, obd, amazon-games, "
                            "reviews-zh, reviews-en",
                            preset ? preset : "(null)");
    if (!path || !*path) return mp_error_set(err, MP_EINVAL, "preset %s: no path given", preset);
    struct stat st;
    if (stat(path, &st) != 0)
        return mp_error_set(err, errno == ENOENT ? MP_ENOTFOUND : MP_EIO, "%s: cannot open: %s", path, strerror(errno));
    mp_import_opts o = {0};
    if (opts) o = *opts;
    mp_error local;
    if (!err) err = &local;
    pctx p = {0};
    p.err = err;
    p.prog = o.progress;
    int rc = mp_importer_begin(&p.im, s, &o, err);
    if (rc != MP_OK) return rc;
    rc = fn(&p, path);
    if (rc == MP_OK && !mp_buf_ok(&p.sb)) rc = mp_error_set(err, MP_ENOMEM, "out of memory");
    mp_buf_free(&p.sb);
    if (rc != MP_OK) {
        mp_importer_abort(p.im);
        return rc;
    }
    mp_progress_report(p.prog, "import", p.rows, p.rows);
    if (rep) return mp_importer_finish(p.im, rep, err);
    mp_import_report tmp;
    rc = mp_importer_finish(p.im, &tmp, err);
    mp_import_report_free(&tmp);
    return rc;
}
