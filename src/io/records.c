/* src/io/records.c: event types, RFC 3339 and UTF-8 helpers, and the streaming JSONL / CSV record reader.
 *
 * The reader reads the file in large blocks into one buffer and hands out records as slices of it; decoded text
 * (JSON escapes, CSV quotes, joined categories) goes into per-reader scratch buffers that are reused, so a
 * record costs no allocation. */
#include "magpie/records.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_internal.h"
#include "magpie/json.h"

/* ---------------------------------------------------------------------------------------------------------------
 * Event types, kinds, formats */

static const char *const k_type_names[] = {
#define MP_EV_NAME_(e, name, w) name,
    MP_EVENT_TYPE_MAP(MP_EV_NAME_)
#undef MP_EV_NAME_
};
static const float k_type_weights[] = {
#define MP_EV_W_(e, name, w) w,
    MP_EVENT_TYPE_MAP(MP_EV_W_)
#undef MP_EV_W_
};

const char *mp_event_type_name(int type) {
    if (type < 0 || type >= MP_EV_NTYPES) return "?";
    return k_type_names[type];
}

int mp_event_type_parse(const char *s, size_t len, mp_event_type *out) {
    if (!s) return MP_EINVAL;
    for (int i = 0; i < MP_EV_NTYPES; i++) {
        const char *n = k_type_names[i];
        if (strlen(n) == len && memcmp(n, s, len) == 0) {
            *out = (mp_event_type)i;
            return MP_OK;
        }
    }
    return MP_EINVAL;
}

float mp_event_type_default_weight(int type) {
    if (type < 0 || type >= MP_EV_NTYPES) return 0.0f;
    return k_type_weights[type];
}

int mp_record_kind_parse(const char *s, mp_record_kind *out) {
    if (!s) return MP_EINVAL;
    if (strcmp(s, "events") == 0)
        *out = MP_KIND_EVENTS;
    else if (strcmp(s, "items") == 0)
        *out = MP_KIND_ITEMS;
    else if (strcmp(s, "users") == 0)
        *out = MP_KIND_USERS;
    else
        return MP_EINVAL;
    return MP_OK;
}

int mp_format_parse(const char *s, mp_format *out) {
    if (!s) return MP_EINVAL;
    if (strcmp(s, "jsonl") == 0 || strcmp(s, "json") == 0)
        *out = MP_FORMAT_JSONL;
    else if (strcmp(s, "csv") == 0)
        *out = MP_FORMAT_CSV;
    else if (strcmp(s, "auto") == 0)
        *out = MP_FORMAT_AUTO;
    else
        return MP_EINVAL;
    return MP_OK;
}

/* ---------------------------------------------------------------------------------------------------------------
 * UTF-8, numbers, time */

int mp_utf8_valid(const char *s, size_t len, size_t *bad_at) {
    const unsigned char *u = (const unsigned char *)s, *end = u + len;
    while (u < end) {
        while (end - u >= 8) {
            uint64_t w;
            memcpy(&w, u, 8);
            if (w & 0x8080808080808080ull) break;
            u += 8;
        }
        if (u >= end) break;
        if (*u < 0x80) {
            u++;
            continue;
        }
        int n = mp_utf8_seq_len(u, end);
        if (!n) {
            if (bad_at) *bad_at = (size_t)(u - (const unsigned char *)s);
            return 0;
        }
        u += n;
    }
    return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int is_leap(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

int mp_parse_rfc3339(const char *s, size_t len, int64_t *out) {
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (!s || len < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d))
        return MP_EINVAL;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > dim[mo - 1] + (mo == 2 && is_leap(y))) return MP_EINVAL;
    size_t i = 10;
    int64_t offset = 0;
    if (i < len) {
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return MP_EINVAL;
        if (len < 19 || !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
            !digits(s + 17, 2, &sec))
            return MP_EINVAL;
        if (h > 23 || mi > 59 || sec > 60) return MP_EINVAL;
        i = 19;
        if (i < len && (s[i] == '.' || s[i] == ',')) {
            i++;
            size_t f = i;
            while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
            if (i == f) return MP_EINVAL;
        }
        if (i < len) {
            if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
                i++;
            } else if (s[i] == '+' || s[i] == '-') {
                int sign = s[i] == '-' ? -1 : 1, oh, om = 0;
                size_t rest = len - i - 1;
                const char *o = s + i + 1;
                if (rest == 5 && o[2] == ':' && digits(o, 2, &oh) && digits(o + 3, 2, &om)) {
                } else if (rest == 4 && digits(o, 2, &oh) && digits(o + 2, 2, &om)) {
                } else if (rest == 2 && digits(o, 2, &oh)) {
                } else {
                    return MP_EINVAL;
                }
                if (oh > 23 || om > 59) return MP_EINVAL;
                offset = sign * (int64_t)(oh * 3600 + om * 60);
                i = len;
            } else {
                return MP_EINVAL;
            }
        }
    }
    if (i != len) return MP_EINVAL;
    *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    return MP_OK;
}

/* Exact int64 from an optionally signed digit string of at most 18 digits. */
static int parse_int64(const char *s, size_t len, int64_t *out) {
    size_t i = 0;
    int neg = 0;
    if (len && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len || len - i > 18) return MP_EINVAL;
    int64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return MP_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return MP_OK;
}

static int ts_from_double(double v, int64_t *out) {
    if (!isfinite(v) || v < (double)MP_TS_MIN || v >= (double)MP_TS_MAX + 1.0) return MP_ERANGE;
    *out = (int64_t)floor(v);
    return MP_OK;
}

int mp_parse_ts_text(const char *s, size_t len, int64_t *out) {
    if (len >= 10 && s[4] == '-') return mp_parse_rfc3339(s, len, out);
    int64_t iv;
    if (parse_int64(s, len, &iv) == MP_OK) {
        if (iv < MP_TS_MIN || iv > MP_TS_MAX) return MP_ERANGE;
        *out = iv;
        return MP_OK;
    }
    double d;
    if (mp_parse_double(s, len, &d) != MP_OK) {
        /* a long run of digits overflows parse_int64 but is a number: out of range, not garbage */
        size_t k = (len && (s[0] == '-' || s[0] == '+')) ? 1 : 0, j = k;
        while (j < len && s[j] >= '0' && s[j] <= '9')
            j++;
        return (j == len && j > k) ? MP_ERANGE : MP_EINVAL;
    }
    return ts_from_double(d, out);
}

/* ---------------------------------------------------------------------------------------------------------------
 * Snippets for messages and CSV splitting */

void mp_io_snippet(char *out, size_t cap, const char *s, size_t len, int quote) {
    static const char hexd[] = "0123456789abcdef";
    const size_t max_src = 48;
    size_t n = 0;
    if (cap == 0) return;
    if (!s) { /* callers pass (NULL, 0) for "no value"; NULL + 0 is undefined behaviour */
        s = "";
        len = 0;
    }
#define PUT(ch)                                                                                                        \
    do {                                                                                                               \
        if (n + 1 < cap) out[n++] = (char)(ch);                                                                        \
    } while (0)
    if (quote) PUT('"');
    const unsigned char *u = (const unsigned char *)s, *end = u + len;
    const unsigned char *stop = len > max_src ? u + max_src : end;
    while (u < stop) {
        unsigned ch = *u;
        if (ch >= 0x80) {
            int k = mp_utf8_seq_len(u, end);
            if (k) {
                for (int i = 0; i < k; i++)
                    PUT(u[i]);
                u += k;
                continue;
            }
        }
        if (ch == '\n') {
            PUT('\\');
            PUT('n');
        } else if (ch == '\t') {
            PUT('\\');
            PUT('t');
        } else if (ch == '\r') {
            PUT('\\');
            PUT('r');
        } else if (quote && (ch == '"' || ch == '\\')) {
            PUT('\\');
            PUT(ch);
        } else if (ch < 0x20 || ch >= 0x7F) {
            PUT('\\');
            PUT('x');
            PUT(hexd[ch >> 4]);
            PUT(hexd[ch & 15]);
        } else {
            PUT(ch);
        }
        u++;
    }
    if (u < end) {
        PUT('.');
        PUT('.');
        PUT('.');
    }
    if (quote) PUT('"');
#undef PUT
    out[n] = 0;
}

int mp_csv_split(const char *s, size_t len, char delim, int quoted, mp_str *fields, size_t max_fields, size_t *n_fields,
                 char **scratch, const char **why, size_t *bad_field) {
    size_t i = 0, k = 0;
    for (;;) {
        if (quoted && i < len && s[i] == '"') {
            char *d0 = *scratch, *d = d0;
            i++;
            for (;;) {
                const char *q = i < len ? memchr(s + i, '"', len - i) : NULL;
                if (!q) {
                    *why = "unterminated quoted field";
                    *bad_field = k;
                    return MP_EINVAL;
                }
                size_t n = (size_t)(q - (s + i));
                memcpy(d, s + i, n);
                d += n;
                i += n + 1;
                if (i < len && s[i] == '"') {
                    *d++ = '"';
                    i++;
                    continue;
                }
                break;
            }
            if (k < max_fields) {
                fields[k].ptr = d0;
                fields[k].len = (size_t)(d - d0);
            }
            *scratch = d;
            k++;
            if (i == len) break;
            if (s[i] != delim) {
                *why = "unexpected character after a closing quote (write \"\" for a quote inside a quoted field)";
                *bad_field = k - 1;
                return MP_EINVAL;
            }
            i++;
            continue;
        }
        const char *e = i < len ? memchr(s + i, delim, len - i) : NULL;
        size_t fe = e ? (size_t)(e - s) : len;
        if (k < max_fields) {
            fields[k].ptr = s + i;
            fields[k].len = fe - i;
        }
        k++;
        if (!e) break;
        i = fe + 1;
    }
    *n_fields = k;
    return MP_OK;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Field tables */

enum { EV_USER, EV_ITEM, EV_TYPE, EV_TS, EV_VALUE, EV_TEXT, EV_SESSION, EV_NFIELDS };
enum { IT_ID, IT_TITLE, IT_DESC, IT_CATEGORY, IT_BRAND, IT_PRICE, IT_ATTRS, IT_AVAILABLE, IT_EMBEDDING, IT_NFIELDS };
enum { US_ID, US_ATTRS, US_EMBEDDING, US_NFIELDS };

static const char *const k_event_fields[] = {"user", "item", "type", "ts", "value", "text", "session", NULL};
static const char *const k_item_fields[] = {"id",    "title", "description", "category",  "brand",
                                            "price", "attrs", "available",   "embedding", NULL};
static const char *const k_user_fields[] = {"id", "attrs", "embedding", NULL};

static const char *const *kind_fields(mp_record_kind k) {
    return k == MP_KIND_EVENTS ? k_event_fields : k == MP_KIND_ITEMS ? k_item_fields : k_user_fields;
}
static unsigned kind_required(mp_record_kind k) {
    return k == MP_KIND_EVENTS ? (1u << EV_USER) | (1u << EV_ITEM) | (1u << EV_TYPE) | (1u << EV_TS) : 1u;
}
static const char *kind_field_list(mp_record_kind k) {
    return k == MP_KIND_EVENTS  ? "user, item, type, ts, value, text, session"
           : k == MP_KIND_ITEMS ? "id, title, description, category, brand, price, attrs, available, embedding"
                                : "id, attrs, embedding";
}

static int field_lookup(mp_record_kind k, const char *name, size_t len) {
    const char *const *f = kind_fields(k);
    for (int i = 0; f[i]; i++)
        if (strlen(f[i]) == len && memcmp(f[i], name, len) == 0) return i;
    return -1;
}

static const char *type_list(void) {
    return "view, click, cart, fav, purchase, review, rating, dislike, return";
}

/* ---------------------------------------------------------------------------------------------------------------
 * The reader */

#define BUF_CAP (2u * MP_MAX_LINE_BYTES + 64u)

struct mp_reader {
    char *path;           /* as given, for messages (owned) */
    int fd;               /* the open file */
    mp_record_kind kind;  /* what records are */
    mp_format fmt;        /* JSONL or CSV (never AUTO after open) */
    char delim;           /* CSV: ',' or '\t' */
    int quoted;           /* CSV: RFC 4180 quotes understood (not for TSV) */
    uint64_t size;        /* file size (0 if not a regular file) */
    uint64_t buf_off;     /* file offset of buf[0] */
    char *buf;            /* BUF_CAP bytes; [pos, end) unread data */
    size_t pos, end;      /* window of unread data in buf */
    int eof;              /* read() returned 0 */
    uint64_t next_lineno; /* 1-based number of the next physical line */
    uint64_t lineno;      /* first line of the record last returned */
    mp_str line;          /* raw text of the record last returned */
    char *longbuf;        /* first MP_MAX_LINE_BYTES bytes of an over-long record (lazy) */
    char *scratch;        /* decoded strings of the current record */
    size_t scratch_cap;   /* bytes in scratch, and in catbuf */
    char *catbuf;         /* JSON category array joined with " > " */
    float *emb;           /* [MP_MAX_EMBEDDING_DIM] the current record's embedding (lazy) */
    int ncols;            /* CSV: number of header columns */
    int col_field[32];    /* CSV: field index of each column */
    mp_str cols[33];      /* CSV: the fields of the current row (one extra to detect too many) */
    int has_default_ts;   /* parser only: events without `ts` get default_ts instead of an error */
    int64_t default_ts;
};

static int reader_fill(mp_reader *r, mp_error *err) {
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->end - r->pos);
        r->buf_off += r->pos;
        r->end -= r->pos;
        r->pos = 0;
    }
    for (;;) {
        size_t room = BUF_CAP - 1 - r->end;
        if (room == 0) return MP_OK;
        ssize_t n = read(r->fd, r->buf + r->end, room);
        if (n > 0) {
            r->end += (size_t)n;
            return MP_OK;
        }
        if (n == 0) {
            r->eof = 1;
            return MP_OK;
        }
        if (errno == EINTR) continue;
        return mp_error_set(err, MP_EIO, "%s: read failed: %s", r->path, strerror(errno));
    }
}

#define NO_POS ((size_t)-1)

/* Scan state of the record being looked for (quoted CSV may span lines). */
typedef struct rec_scan {
    size_t scan;        /* next byte of buf to look at */
    int inq;            /* inside a quoted field */
    size_t last_close;  /* index of the last closing quote, or NO_POS ("" inside a quoted field reopens) */
    uint64_t nl_inside; /* newlines inside quotes so far */
    size_t first_nl;    /* index of the first of them, where an unterminated quote is cut off */
} rec_scan;

/* Finds the '\n' ending the record that starts at r->pos. For quoted CSV a newline inside a quoted field does not
 * end it; a quote opens a quoted field only at the start of a field (a stray quote inside an unquoted field is a
 * plain character, as mp_csv_split reads it). Returns the index of the '\n', or NO_POS when the window holds no
 * end yet (then st->scan = end). */
static size_t find_record_end(mp_reader *r, rec_scan *st) {
    size_t s = st->scan;
    for (;;) {
        const char *nl = memchr(r->buf + s, '\n', r->end - s);
        size_t seg_end = nl ? (size_t)(nl - r->buf) : r->end;
        if (r->quoted) {
            const char *q = r->buf + s, *qe = r->buf + seg_end;
            while ((q = memchr(q, '"', (size_t)(qe - q))) != NULL) {
                size_t x = (size_t)(q - r->buf);
                if (st->inq) {
                    st->inq = 0;
                    st->last_close = x;
                } else if (x == r->pos || r->buf[x - 1] == r->delim ||
                           (st->last_close != NO_POS && st->last_close + 1 == x)) {
                    st->inq = 1;
                }
                q++;
            }
        }
        if (!nl) {
            st->scan = r->end;
            return NO_POS;
        }
        if (!st->inq) return seg_end;
        if (!st->nl_inside) st->first_nl = seg_end;
        st->nl_inside++;
        s = seg_end + 1;
    }
}

/* Next raw record. Returns 1 with r->line set, 0 at end, MP_EBADREC for an over-long record (r->line holds its
 * first MP_MAX_LINE_BYTES bytes), or a fatal code. */
static int reader_fetch(mp_reader *r, mp_error *err) {
    rec_scan st = {r->pos, 0, NO_POS, 0, 0};
    r->lineno = r->next_lineno;
    for (;;) {
        size_t e = find_record_end(r, &st);
        if (e == NO_POS && st.inq && st.nl_inside && (r->eof || r->end - r->pos > MP_MAX_LINE_BYTES)) {
            /* A quote that never closes would swallow the rest of the file: report only its first line as the
             * bad record and go on after it. */
            e = st.first_nl;
            st.nl_inside = 0;
        }
        if (e != NO_POS) {
            r->line.ptr = r->buf + r->pos;
            r->line.len = e - r->pos;
            r->buf[e] = 0;
            r->pos = e + 1;
            r->next_lineno += 1 + st.nl_inside;
            break;
        }
        if (r->eof) {
            if (r->pos == r->end) return 0;
            r->line.ptr = r->buf + r->pos;
            r->line.len = r->end - r->pos;
            r->buf[r->end] = 0;
            r->pos = r->end;
            r->next_lineno += 1 + st.nl_inside;
            break;
        }
        if (r->end - r->pos > MP_MAX_LINE_BYTES) {
            /* Keep the head for the reject file, then discard up to the end of the record. */
            if (!r->longbuf && !(r->longbuf = malloc(MP_MAX_LINE_BYTES + 1)))
                return mp_error_set(err, MP_ENOMEM, "out of memory");
            memcpy(r->longbuf, r->buf + r->pos, MP_MAX_LINE_BYTES);
            r->longbuf[MP_MAX_LINE_BYTES] = 0;
            for (;;) {
                r->pos = r->end;
                int rc = reader_fill(r, err);
                if (rc != MP_OK) return rc;
                st.scan = 0;
                st.last_close = NO_POS;
                size_t e2 = find_record_end(r, &st);
                if (e2 != NO_POS) {
                    r->pos = e2 + 1;
                    break;
                }
                if (r->eof) {
                    r->pos = r->end;
                    break;
                }
            }
            r->next_lineno += 1 + st.nl_inside;
            r->line.ptr = r->longbuf;
            r->line.len = MP_MAX_LINE_BYTES;
            return mp_error_set(err, MP_EBADREC, "%s:%llu: record is longer than %u bytes (1 MiB); skipped", r->path,
                                (unsigned long long)r->lineno, (unsigned)MP_MAX_LINE_BYTES);
        }
        size_t shift = r->pos;
        int rc = reader_fill(r, err);
        if (rc != MP_OK) return rc;
        st.scan -= shift;
        if (st.nl_inside) st.first_nl -= shift;
        if (st.last_close != NO_POS) st.last_close -= shift;
    }
    if (r->line.len > MP_MAX_LINE_BYTES) { /* the whole record fit in the window, but it is still too long */
        if (!r->longbuf && !(r->longbuf = malloc(MP_MAX_LINE_BYTES + 1)))
            return mp_error_set(err, MP_ENOMEM, "out of memory");
        memcpy(r->longbuf, r->line.ptr, MP_MAX_LINE_BYTES);
        r->longbuf[MP_MAX_LINE_BYTES] = 0;
        r->line.ptr = r->longbuf;
        r->line.len = MP_MAX_LINE_BYTES;
        return mp_error_set(err, MP_EBADREC, "%s:%llu: record is longer than %u bytes (1 MiB); skipped", r->path,
                            (unsigned long long)r->lineno, (unsigned)MP_MAX_LINE_BYTES);
    }
    if (r->line.len && r->line.ptr[r->line.len - 1] == '\r') ((char *)r->line.ptr)[--r->line.len] = 0;
    return 1;
}

static int is_blank(mp_str s) {
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] != ' ' && s.ptr[i] != '\t') return 0;
    return 1;
}

static int ensure_scratch(mp_reader *r, size_t need, mp_error *err) {
    need += 16;
    if (need <= r->scratch_cap) return MP_OK;
    size_t cap = r->scratch_cap ? r->scratch_cap : 4096;
    while (cap < need)
        cap *= 2;
    char *a = malloc(cap), *b = malloc(cap);
    if (!a || !b) {
        free(a);
        free(b);
        return mp_error_set(err, MP_ENOMEM, "out of memory");
    }
    free(r->scratch);
    free(r->catbuf);
    r->scratch = a;
    r->catbuf = b;
    r->scratch_cap = cap;
    return MP_OK;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Errors */

static int bad_field(mp_reader *r, mp_error *err, const char *field, size_t field_len, const char *reason,
                     const char *got, size_t got_len, int quote) {
    char snip[256];
    mp_io_snippet(snip, sizeof snip, got, got_len, quote);
    char fname[80];
    mp_io_snippet(fname, sizeof fname, field, field_len, 0);
    if (got)
        mp_error_set(err, MP_EBADREC, "%s:%llu: field `%s`: %s, got %s", r->path, (unsigned long long)r->lineno, fname,
                     reason, snip);
    else
        mp_error_set(err, MP_EBADREC, "%s:%llu: field `%s`: %s", r->path, (unsigned long long)r->lineno, fname, reason);
    if (err) snprintf(err->field, sizeof err->field, "%s", fname);
    return MP_EBADREC;
}

static int bad_named(mp_reader *r, mp_error *err, int fid, const char *reason, const char *got, size_t got_len,
                     int quote) {
    const char *name = kind_fields(r->kind)[fid];
    return bad_field(r, err, name, strlen(name), reason, got, got_len, quote);
}

static int bad_record(mp_reader *r, mp_error *err, const char *reason, const char *got, size_t got_len) {
    char snip[256];
    mp_io_snippet(snip, sizeof snip, got, got_len, 1);
    return mp_error_set(err, MP_EBADREC, "%s:%llu: %s, got %s", r->path, (unsigned long long)r->lineno, reason, snip);
}

static int check_id(mp_reader *r, mp_error *err, int fid, mp_str id) {
    if (id.len == 0) return bad_named(r, err, fid, "id must not be empty", id.ptr, 0, 1);
    if (id.len > MP_MAX_ID_BYTES) {
        char why[96];
        snprintf(why, sizeof why, "id is %zu bytes, longer than the limit of %d", id.len, MP_MAX_ID_BYTES);
        return bad_named(r, err, fid, why, id.ptr, id.len, 1);
    }
    return MP_OK;
}

static const char *ts_reason(int rc) {
    return rc == MP_ERANGE ? "timestamp out of range (years 1..9999, seconds since 1970; milliseconds are not "
                             "accepted)"
                           : "expected epoch seconds or an RFC 3339 time like 2025-01-01T10:00:00Z";
}

/* ---------------------------------------------------------------------------------------------------------------
 * Record finishing: required fields and ids */

static int finish_record(mp_reader *r, mp_record *rec, unsigned seen, mp_error *err) {
    if (r->kind == MP_KIND_EVENTS && r->has_default_ts && !(seen & (1u << EV_TS))) {
        rec->event.ts = r->default_ts;
        seen |= 1u << EV_TS;
    }
    unsigned missing = kind_required(r->kind) & ~seen;
    if (missing) {
        int fid = __builtin_ctz(missing);
        return bad_named(r, err, fid, r->fmt == MP_FORMAT_CSV ? "required value is empty" : "missing required field",
                         NULL, 0, 0);
    }
    if (r->kind == MP_KIND_EVENTS) {
        int rc;
        if ((rc = check_id(r, err, EV_USER, rec->event.user)) != MP_OK) return rc;
        if ((rc = check_id(r, err, EV_ITEM, rec->event.item)) != MP_OK) return rc;
        if (rec->event.session.len > MP_MAX_ID_BYTES) return check_id(r, err, EV_SESSION, rec->event.session);
        return MP_OK;
    }
    return check_id(r, err, r->kind == MP_KIND_ITEMS ? IT_ID : US_ID,
                    r->kind == MP_KIND_ITEMS ? rec->item.id : rec->user.id);
}

/* ---------------------------------------------------------------------------------------------------------------
 * JSONL */

/* Raw text of the JSON value at c (for "got ..."), without moving c. */
static mp_str json_value_text(const mp_json_cur *c) {
    mp_json_cur t = *c;
    mp_str raw = {c->p, 0};
    if (mp_json_skip(&t, &raw) != MP_OK) {
        raw.ptr = c->p;
        raw.len = (size_t)(c->end - c->p);
    }
    return raw;
}

static int json_bad_value(mp_reader *r, mp_error *err, const mp_json_cur *c, int fid, const char *reason) {
    mp_str v = json_value_text(c);
    return bad_named(r, err, fid, reason, v.ptr, v.len, 0);
}

/* A malformed-JSON error inside the value of field fid (c->why / c->err_at set by the parser). */
static int json_syntax_in(mp_reader *r, mp_error *err, const mp_json_cur *c, int fid) {
    char why[160];
    snprintf(why, sizeof why, "%s (byte %zu)", c->why ? c->why : "malformed JSON",
             (size_t)(c->err_at - r->line.ptr) + 1);
    const char *at = c->err_at ? c->err_at : c->p;
    return bad_named(r, err, fid, why, at, (size_t)(c->end - at), 1);
}

/* String or integer id (or any string-valued field when ints_ok). null gives len 0 when nullable. */
static int json_text(mp_reader *r, mp_json_cur *c, char **scratch, int fid, int ints_ok, int nullable, mp_str *out,
                     mp_error *err) {
    mp_json_type t = mp_json_peek(c);
    if (t == MP_JSON_STRING) {
        if (mp_json_string(c, scratch, out) != MP_OK) return json_syntax_in(r, err, c, fid);
        return MP_OK;
    }
    if (t == MP_JSON_NUMBER && ints_ok) {
        int is_int = 0;
        mp_json_cur save = *c;
        if (mp_json_number(c, out, &is_int, NULL) != MP_OK) return json_syntax_in(r, err, c, fid);
        if (!is_int) return json_bad_value(r, err, &save, fid, "expected a string or an integer id");
        return MP_OK;
    }
    if (t == MP_JSON_NULL && nullable) {
        if (mp_json_null(c) != MP_OK) return json_syntax_in(r, err, c, fid);
        out->ptr = "";
        out->len = 0;
        return MP_OK;
    }
    return json_bad_value(r, err, c, fid, ints_ok ? "expected a string or an integer id" : "expected a string");
}

/* Number or null. *has = 0 for null. */
static int json_num(mp_reader *r, mp_json_cur *c, int fid, double *v, int *has, mp_error *err) {
    mp_json_type t = mp_json_peek(c);
    if (t == MP_JSON_NULL) {
        if (mp_json_null(c) != MP_OK) return json_syntax_in(r, err, c, fid);
        *has = 0;
        return MP_OK;
    }
    if (t != MP_JSON_NUMBER) return json_bad_value(r, err, c, fid, "expected a number");
    mp_json_cur save = *c;
    if (mp_json_number(c, NULL, NULL, v) != MP_OK) {
        if (c->why && strcmp(c->why, "number out of range") == 0)
            return json_bad_value(r, err, &save, fid, "number out of range");
        return json_syntax_in(r, err, c, fid);
    }
    *has = 1;
    return MP_OK;
}

static int json_ts(mp_reader *r, mp_json_cur *c, char **scratch, int64_t *out, mp_error *err) {
    mp_json_type t = mp_json_peek(c);
    mp_json_cur save = *c;
    if (t == MP_JSON_NUMBER) {
        mp_str raw;
        int is_int = 0;
        double d = 0;
        if (mp_json_number(c, &raw, &is_int, &d) != MP_OK) {
            if (c->why && strcmp(c->why, "number out of range") == 0)
                return json_bad_value(r, err, &save, EV_TS, ts_reason(MP_ERANGE));
            return json_syntax_in(r, err, c, EV_TS);
        }
        int rc = MP_OK;
        if (is_int && parse_int64(raw.ptr, raw.len, out) == MP_OK) {
            if (*out < MP_TS_MIN || *out > MP_TS_MAX) rc = MP_ERANGE;
        } else {
            rc = ts_from_double(d, out);
        }
        if (rc != MP_OK) return json_bad_value(r, err, &save, EV_TS, ts_reason(rc));
        return MP_OK;
    }
    if (t == MP_JSON_STRING) {
        mp_str s;
        if (mp_json_string(c, scratch, &s) != MP_OK) return json_syntax_in(r, err, c, EV_TS);
        int rc = mp_parse_ts_text(s.ptr, s.len, out);
        if (rc != MP_OK) return json_bad_value(r, err, &save, EV_TS, ts_reason(rc));
        return MP_OK;
    }
    return json_bad_value(r, err, c, EV_TS, "expected epoch seconds (a number) or an RFC 3339 time string");
}

static int json_attrs(mp_reader *r, mp_json_cur *c, int fid, mp_str *out, mp_error *err) {
    mp_json_type t = mp_json_peek(c);
    if (t == MP_JSON_NULL) {
        if (mp_json_null(c) != MP_OK) return json_syntax_in(r, err, c, fid);
        out->len = 0;
        return MP_OK;
    }
    if (t != MP_JSON_OBJECT) return json_bad_value(r, err, c, fid, "expected a JSON object");
    if (mp_json_skip(c, out) != MP_OK) return json_syntax_in(r, err, c, fid);
    return MP_OK;
}

static int json_category(mp_reader *r, mp_json_cur *c, char **scratch, mp_str *out, mp_error *err) {
    mp_json_type t = mp_json_peek(c);
    if (t == MP_JSON_STRING || t == MP_JSON_NULL) return json_text(r, c, scratch, IT_CATEGORY, 0, 1, out, err);
    if (t != MP_JSON_ARRAY) return json_bad_value(r, err, c, IT_CATEGORY, "expected an array of strings or a string");
    mp_json_cur save = *c;
    char *d = r->catbuf;
    if (mp_json_array_begin(c) != MP_OK) return json_syntax_in(r, err, c, IT_CATEGORY);
    for (int n = 0;; n++) {
        int done;
        if (mp_json_array_next(c, &done) != MP_OK) return json_syntax_in(r, err, c, IT_CATEGORY);
        if (done) break;
        if (mp_json_peek(c) != MP_JSON_STRING)
            return json_bad_value(r, err, &save, IT_CATEGORY, "expected an array of strings or a string");
        mp_str part;
        if (mp_json_string(c, scratch, &part) != MP_OK) return json_syntax_in(r, err, c, IT_CATEGORY);
        if (n) {
            memcpy(d, " > ", 3);
            d += 3;
        }
        memcpy(d, part.ptr, part.len);
        d += part.len;
    }
    out->ptr = r->catbuf;
    out->len = (size_t)(d - r->catbuf);
    return MP_OK;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Embeddings (items and users): JSON array of numbers, or CSV space-separated numbers */

static int emb_buffer(mp_reader *r, mp_error *err) {
    if (!r->emb && !(r->emb = malloc(MP_MAX_EMBEDDING_DIM * sizeof *r->emb)))
        return mp_error_set(err, MP_ENOMEM, "out of memory");
    return MP_OK;
}

/* The reason a number cannot be an embedding value, or NULL when it can (finite and within float range). */
static const char *emb_value_problem(double d) {
    if (!isfinite(d)) return "is not finite";
    if (fabs(d) > (double)FLT_MAX) return "does not fit a 32-bit float";
    return NULL;
}

static void set_embedding(mp_reader *r, mp_record *rec, uint32_t n) {
    if (r->kind == MP_KIND_ITEMS) {
        rec->item.embedding = n ? r->emb : NULL;
        rec->item.embedding_dim = n;
    } else {
        rec->user.embedding = n ? r->emb : NULL;
        rec->user.embedding_dim = n;
    }
}

static int json_embedding(mp_reader *r, mp_json_cur *c, int fid, mp_record *rec, mp_error *err) {
    mp_json_type t = mp_json_peek(c);
    if (t == MP_JSON_NULL) {
        if (mp_json_null(c) != MP_OK) return json_syntax_in(r, err, c, fid);
        set_embedding(r, rec, 0);
        return MP_OK;
    }
    if (t != MP_JSON_ARRAY) return json_bad_value(r, err, c, fid, "expected an array of numbers");
    int rc = emb_buffer(r, err);
    if (rc) return rc;
    mp_json_cur save = *c;
    if (mp_json_array_begin(c) != MP_OK) return json_syntax_in(r, err, c, fid);
    uint32_t n = 0;
    for (;;) {
        int done;
        if (mp_json_array_next(c, &done) != MP_OK) return json_syntax_in(r, err, c, fid);
        if (done) break;
        char why[96];
        if (n == MP_MAX_EMBEDDING_DIM) {
            snprintf(why, sizeof why, "more than %d values (the largest supported dimension)", MP_MAX_EMBEDDING_DIM);
            return bad_named(r, err, fid, why, NULL, 0, 0);
        }
        if (mp_json_peek(c) != MP_JSON_NUMBER) {
            snprintf(why, sizeof why, "value %u is not a number", n + 1);
            return json_bad_value(r, err, c, fid, why);
        }
        mp_json_cur at = *c;
        double d = 0;
        if (mp_json_number(c, NULL, NULL, &d) != MP_OK) {
            if (c->why && strcmp(c->why, "number out of range") == 0) {
                snprintf(why, sizeof why, "value %u is out of range", n + 1);
                return json_bad_value(r, err, &at, fid, why);
            }
            return json_syntax_in(r, err, c, fid);
        }
        const char *problem = emb_value_problem(d);
        if (problem) {
            snprintf(why, sizeof why, "value %u %s", n + 1, problem);
            return json_bad_value(r, err, &at, fid, why);
        }
        r->emb[n++] = (float)d;
    }
    if (n == 0) return json_bad_value(r, err, &save, fid, "expected at least one number");
    set_embedding(r, rec, n);
    return MP_OK;
}

/* CSV: numbers separated by spaces (or tabs); an empty or blank value means none. */
static int csv_embedding(mp_reader *r, int fid, mp_str v, mp_record *rec, mp_error *err) {
    int rc = emb_buffer(r, err);
    if (rc) return rc;
    uint32_t n = 0;
    size_t i = 0;
    for (;;) {
        while (i < v.len && (v.ptr[i] == ' ' || v.ptr[i] == '\t'))
            i++;
        if (i == v.len) break;
        size_t j = i;
        while (j < v.len && v.ptr[j] != ' ' && v.ptr[j] != '\t')
            j++;
        char why[128];
        if (n == MP_MAX_EMBEDDING_DIM) {
            snprintf(why, sizeof why, "more than %d values (the largest supported dimension)", MP_MAX_EMBEDDING_DIM);
            return bad_named(r, err, fid, why, NULL, 0, 0);
        }
        double d = 0;
        const char *problem = mp_parse_double(v.ptr + i, j - i, &d) != MP_OK ? "is not a number" : emb_value_problem(d);
        if (problem) {
            snprintf(why, sizeof why, "value %u %s (write numbers separated by spaces)", n + 1, problem);
            return bad_named(r, err, fid, why, v.ptr + i, j - i, 1);
        }
        r->emb[n++] = (float)d;
        i = j;
    }
    set_embedding(r, rec, n);
    return MP_OK;
}

static int parse_json(mp_reader *r, mp_record *rec, mp_error *err) {
    mp_json_cur c;
    mp_json_init(&c, r->line.ptr, r->line.len);
    char *scratch = r->scratch;
    if (mp_json_peek(&c) != MP_JSON_OBJECT) {
        size_t bad;
        if (!mp_utf8_valid(r->line.ptr, r->line.len, &bad))
            return bad_record(r, err, "invalid UTF-8 (malformed JSON)", r->line.ptr + bad, r->line.len - bad);
        return bad_record(r, err, "malformed JSON: expected an object starting with '{'", c.p, (size_t)(c.end - c.p));
    }
    mp_json_object_begin(&c);
    unsigned seen = 0;
    const char *last_key = NULL;
    size_t last_key_len = 0;
    for (;;) {
        mp_str key;
        int done, rc;
        if (mp_json_object_next(&c, &scratch, &key, &done) != MP_OK) {
            char why[200];
            const char *at = c.err_at ? c.err_at : c.p;
            if (last_key) {
                char kn[80];
                mp_io_snippet(kn, sizeof kn, last_key, last_key_len, 0);
                snprintf(why, sizeof why, "malformed JSON after field `%s`: %s (byte %zu)", kn, c.why,
                         (size_t)(at - r->line.ptr) + 1);
            } else {
                snprintf(why, sizeof why, "malformed JSON: %s (byte %zu)", c.why, (size_t)(at - r->line.ptr) + 1);
            }
            return bad_record(r, err, why, at, (size_t)(c.end - at));
        }
        if (done) break;
        last_key = key.ptr;
        last_key_len = key.len;
        int fid = field_lookup(r->kind, key.ptr, key.len);
        if (fid < 0) {
            char why[200];
            snprintf(why, sizeof why, "unknown field; expected one of %s%s", kind_field_list(r->kind),
                     r->kind == MP_KIND_ITEMS ? " (put extra attributes inside `attrs`)" : "");
            return bad_field(r, err, key.ptr, key.len, why, NULL, 0, 0);
        }
        if (seen & (1u << fid)) return bad_field(r, err, key.ptr, key.len, "duplicate key", NULL, 0, 0);
        seen |= 1u << fid;
        if (r->kind == MP_KIND_EVENTS) {
            mp_event *e = &rec->event;
            switch (fid) {
            case EV_USER:
                rc = json_text(r, &c, &scratch, fid, 1, 0, &e->user, err);
                break;
            case EV_ITEM:
                rc = json_text(r, &c, &scratch, fid, 1, 0, &e->item, err);
                break;
            case EV_SESSION:
                rc = json_text(r, &c, &scratch, fid, 1, 1, &e->session, err);
                break;
            case EV_TEXT:
                rc = json_text(r, &c, &scratch, fid, 0, 1, &e->text, err);
                break;
            case EV_VALUE:
                rc = json_num(r, &c, fid, &e->value, &e->has_value, err);
                break;
            case EV_TS:
                rc = json_ts(r, &c, &scratch, &e->ts, err);
                break;
            default: { /* EV_TYPE */
                mp_json_cur save = c;
                mp_str s;
                if ((rc = json_text(r, &c, &scratch, fid, 0, 0, &s, err)) != MP_OK) break;
                if (mp_event_type_parse(s.ptr, s.len, &e->type) != MP_OK) {
                    char why[160];
                    snprintf(why, sizeof why, "unknown event type; expected one of %s", type_list());
                    rc = json_bad_value(r, err, &save, fid, why);
                }
            }
            }
        } else if (r->kind == MP_KIND_ITEMS) {
            mp_item *it = &rec->item;
            switch (fid) {
            case IT_ID:
                rc = json_text(r, &c, &scratch, fid, 1, 0, &it->id, err);
                break;
            case IT_TITLE:
                rc = json_text(r, &c, &scratch, fid, 0, 1, &it->title, err);
                break;
            case IT_DESC:
                rc = json_text(r, &c, &scratch, fid, 0, 1, &it->description, err);
                break;
            case IT_BRAND:
                rc = json_text(r, &c, &scratch, fid, 1, 1, &it->brand, err);
                break;
            case IT_CATEGORY:
                rc = json_category(r, &c, &scratch, &it->category, err);
                break;
            case IT_ATTRS:
                rc = json_attrs(r, &c, fid, &it->attrs, err);
                break;
            case IT_EMBEDDING:
                rc = json_embedding(r, &c, fid, rec, err);
                break;
            case IT_PRICE: {
                mp_json_cur save = c;
                rc = json_num(r, &c, fid, &it->price, &it->has_price, err);
                if (rc == MP_OK && it->has_price && !(it->price >= 0))
                    rc = json_bad_value(r, err, &save, fid, "price must be >= 0");
                break;
            }
            default: { /* IT_AVAILABLE */
                mp_json_type t = mp_json_peek(&c);
                if (t == MP_JSON_NULL) {
                    rc = mp_json_null(&c) == MP_OK ? MP_OK : json_syntax_in(r, err, &c, fid);
                } else if (t == MP_JSON_BOOL) {
                    rc = mp_json_bool(&c, &it->available) == MP_OK ? MP_OK : json_syntax_in(r, err, &c, fid);
                } else {
                    rc = json_bad_value(r, err, &c, fid, "expected true or false");
                }
            }
            }
        } else {
            if (fid == US_ID)
                rc = json_text(r, &c, &scratch, fid, 1, 0, &rec->user.id, err);
            else if (fid == US_EMBEDDING)
                rc = json_embedding(r, &c, fid, rec, err);
            else
                rc = json_attrs(r, &c, fid, &rec->user.attrs, err);
        }
        if (rc != MP_OK) return rc;
    }
    if (!mp_json_at_end(&c))
        return bad_record(r, err, "unexpected content after the JSON object", c.p, (size_t)(c.end - c.p));
    return finish_record(r, rec, seen, err);
}

/* ---------------------------------------------------------------------------------------------------------------
 * CSV */

static mp_str trim(mp_str s) {
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

static int csv_num(mp_reader *r, int fid, mp_str v, double *out, int *has, mp_error *err) {
    mp_str t = trim(v);
    if (t.len == 0) {
        *has = 0;
        return MP_OK;
    }
    if (mp_parse_double(t.ptr, t.len, out) != MP_OK)
        return bad_named(r, err, fid, "expected a number", v.ptr, v.len, 1);
    *has = 1;
    return MP_OK;
}

static int csv_field(mp_reader *r, mp_record *rec, int fid, mp_str v, unsigned *seen, mp_error *err) {
    if (v.len == 0) return MP_OK; /* empty = absent; required ones are reported by finish_record */
    *seen |= 1u << fid;
    if (r->kind == MP_KIND_EVENTS) {
        mp_event *e = &rec->event;
        switch (fid) {
        case EV_USER:
            e->user = v;
            return MP_OK;
        case EV_ITEM:
            e->item = v;
            return MP_OK;
        case EV_SESSION:
            e->session = v;
            return MP_OK;
        case EV_TEXT:
            e->text = v;
            return MP_OK;
        case EV_VALUE:
            return csv_num(r, fid, v, &e->value, &e->has_value, err);
        case EV_TS: {
            mp_str t = trim(v);
            int rc = t.len ? mp_parse_ts_text(t.ptr, t.len, &e->ts) : MP_EINVAL;
            if (rc != MP_OK) return bad_named(r, err, fid, ts_reason(rc), v.ptr, v.len, 1);
            return MP_OK;
        }
        default: {
            mp_str t = trim(v);
            if (mp_event_type_parse(t.ptr, t.len, &e->type) != MP_OK) {
                char why[160];
                snprintf(why, sizeof why, "unknown event type; expected one of %s", type_list());
                return bad_named(r, err, fid, why, v.ptr, v.len, 1);
            }
            return MP_OK;
        }
        }
    }
    if (r->kind == MP_KIND_ITEMS) {
        mp_item *it = &rec->item;
        switch (fid) {
        case IT_ID:
            it->id = v;
            return MP_OK;
        case IT_TITLE:
            it->title = v;
            return MP_OK;
        case IT_DESC:
            it->description = v;
            return MP_OK;
        case IT_CATEGORY:
            it->category = v;
            return MP_OK;
        case IT_BRAND:
            it->brand = v;
            return MP_OK;
        case IT_PRICE: {
            int rc = csv_num(r, fid, v, &it->price, &it->has_price, err);
            if (rc == MP_OK && it->has_price && !(it->price >= 0))
                return bad_named(r, err, fid, "price must be >= 0", v.ptr, v.len, 1);
            return rc;
        }
        case IT_ATTRS:
            break; /* below */
        case IT_EMBEDDING:
            return csv_embedding(r, fid, v, rec, err);
        default: {
            mp_str t = trim(v);
            if ((t.len == 4 && memcmp(t.ptr, "true", 4) == 0) || (t.len == 1 && t.ptr[0] == '1'))
                it->available = 1;
            else if ((t.len == 5 && memcmp(t.ptr, "false", 5) == 0) || (t.len == 1 && t.ptr[0] == '0'))
                it->available = 0;
            else if (t.len)
                return bad_named(r, err, fid, "expected true, false, 1 or 0", v.ptr, v.len, 1);
            return MP_OK;
        }
        }
    } else if (fid == US_ID) {
        rec->user.id = v;
        return MP_OK;
    } else if (fid == US_EMBEDDING) {
        return csv_embedding(r, fid, v, rec, err);
    }
    /* attrs: a JSON object text */
    const char *why = NULL;
    mp_json_cur c;
    mp_json_init(&c, v.ptr, v.len);
    if (mp_json_peek(&c) != MP_JSON_OBJECT) return bad_named(r, err, fid, "expected a JSON object", v.ptr, v.len, 1);
    if (mp_json_validate(v.ptr, v.len, &why) != MP_OK) {
        char msg[160];
        snprintf(msg, sizeof msg, "malformed JSON object: %s", why);
        return bad_named(r, err, fid, msg, v.ptr, v.len, 1);
    }
    if (r->kind == MP_KIND_ITEMS)
        rec->item.attrs = trim(v);
    else
        rec->user.attrs = trim(v);
    return MP_OK;
}

static int parse_csv(mp_reader *r, mp_record *rec, mp_error *err) {
    char *scratch = r->scratch;
    size_t n = 0, badf = 0;
    const char *why = NULL;
    if (mp_csv_split(r->line.ptr, r->line.len, r->delim, r->quoted, r->cols, (size_t)r->ncols + 1, &n, &scratch, &why,
                     &badf) != MP_OK) {
        if ((int)badf < r->ncols) return bad_named(r, err, r->col_field[badf], why, r->line.ptr, r->line.len, 1);
        return bad_record(r, err, why, r->line.ptr, r->line.len);
    }
    if (n != (size_t)r->ncols) {
        char msg[128];
        snprintf(msg, sizeof msg, "expected %d columns as in the header, found %zu", r->ncols, n);
        return bad_record(r, err, msg, r->line.ptr, r->line.len);
    }
    size_t bad;
    if (!mp_utf8_valid(r->line.ptr, r->line.len, &bad)) {
        for (int i = 0; i < r->ncols; i++) {
            if (!mp_utf8_valid(r->cols[i].ptr, r->cols[i].len, &bad)) {
                char msg[64];
                snprintf(msg, sizeof msg, "invalid UTF-8 at byte %zu of the value", bad + 1);
                return bad_named(r, err, r->col_field[i], msg, r->cols[i].ptr, r->cols[i].len, 1);
            }
        }
        return bad_record(r, err, "invalid UTF-8", r->line.ptr + bad, r->line.len - bad);
    }
    unsigned seen = 0;
    for (int i = 0; i < r->ncols; i++) {
        int rc = csv_field(r, rec, r->col_field[i], r->cols[i], &seen, err);
        if (rc != MP_OK) return rc;
    }
    return finish_record(r, rec, seen, err);
}

static int read_csv_header(mp_reader *r, mp_error *err) {
    int rc;
    do {
        rc = reader_fetch(r, err);
        if (rc == MP_EBADREC)
            return mp_error_set(err, MP_EINVAL, "%s:%llu: the CSV header line is longer than 1 MiB", r->path,
                                (unsigned long long)r->lineno);
        if (rc < 0) return rc;
        if (rc == 0) return mp_error_set(err, MP_EEMPTY, "%s: file is empty", r->path);
    } while (is_blank(r->line));
    if ((rc = ensure_scratch(r, r->line.len, err)) != MP_OK) return rc;
    char *scratch = r->scratch;
    size_t n = 0, badf = 0;
    const char *why = NULL;
    mp_str names[33];
    if (mp_csv_split(r->line.ptr, r->line.len, r->delim, r->quoted, names, 33, &n, &scratch, &why, &badf) != MP_OK)
        return mp_error_set(err, MP_EINVAL, "%s:%llu: header: %s", r->path, (unsigned long long)r->lineno, why);
    size_t bad;
    if (!mp_utf8_valid(r->line.ptr, r->line.len, &bad))
        return mp_error_set(err, MP_EINVAL, "%s:%llu: header: invalid UTF-8", r->path, (unsigned long long)r->lineno);
    const char *const *f = kind_fields(r->kind);
    unsigned seen = 0;
    for (size_t i = 0; i < n && i < 33; i++) {
        mp_str name = trim(names[i]);
        char nm[80];
        mp_io_snippet(nm, sizeof nm, name.ptr, name.len, 0);
        int fid = field_lookup(r->kind, name.ptr, name.len);
        if (fid < 0)
            return mp_error_set(err, MP_EINVAL, "%s:%llu: unknown column `%s`; expected columns: %s%s", r->path,
                                (unsigned long long)r->lineno, nm, kind_field_list(r->kind),
                                r->kind == MP_KIND_ITEMS ? " (put extra attributes in the `attrs` JSON column)" : "");
        if (seen & (1u << fid))
            return mp_error_set(err, MP_EINVAL, "%s:%llu: duplicate column `%s`", r->path,
                                (unsigned long long)r->lineno, nm);
        seen |= 1u << fid;
        r->col_field[i] = fid;
    }
    unsigned missing = kind_required(r->kind) & ~seen;
    if (missing)
        return mp_error_set(err, MP_EINVAL, "%s:%llu: missing required column `%s` (required: %s)", r->path,
                            (unsigned long long)r->lineno, f[__builtin_ctz(missing)],
                            r->kind == MP_KIND_EVENTS ? "user, item, type, ts" : "id");
    r->ncols = (int)n;
    return MP_OK;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    if (a < b) return 0;
    for (size_t i = 0; i < b; i++) {
        char c = s[a - b + i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != suffix[i]) return 0;
    }
    return 1;
}

int mp_reader_open(mp_reader **out, const char *path, mp_record_kind kind, mp_format fmt, mp_error *err) {
    *out = NULL;
    if (!path) return mp_error_set(err, MP_EINVAL, "no file given");
    int is_tsv = ends_with(path, ".tsv");
    if (fmt == MP_FORMAT_AUTO) fmt = (ends_with(path, ".csv") || is_tsv) ? MP_FORMAT_CSV : MP_FORMAT_JSONL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return mp_error_set(err, e == ENOENT ? MP_ENOTFOUND : MP_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        close(fd);
        return mp_error_set(err, MP_EINVAL, "%s: is a directory, expected a file", path);
    }
    mp_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path)) || !(r->buf = malloc(BUF_CAP))) {
        if (r) free(r->path);
        free(r);
        close(fd);
        return mp_error_set(err, MP_ENOMEM, "out of memory");
    }
    r->fd = fd;
    r->kind = kind;
    r->fmt = fmt;
    r->delim = is_tsv ? '\t' : ',';
    r->quoted = fmt == MP_FORMAT_CSV && !is_tsv;
    r->size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    r->next_lineno = 1;
    int rc = ensure_scratch(r, 64 * 1024, err);
    if (rc == MP_OK) rc = reader_fill(r, err);
    if (rc != MP_OK) {
        mp_reader_close(r);
        return rc;
    }
    if (r->end >= 3 && memcmp(r->buf, "\xEF\xBB\xBF", 3) == 0) r->pos = 3; /* UTF-8 byte order mark */
    if (r->eof && r->pos == r->end) {
        mp_reader_close(r);
        return mp_error_set(err, MP_EEMPTY, "%s: file is empty", path);
    }
    if (fmt == MP_FORMAT_CSV && (rc = read_csv_header(r, err)) != MP_OK) {
        mp_reader_close(r);
        return rc;
    }
    *out = r;
    return MP_OK;
}

void mp_reader_close(mp_reader *r) {
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    free(r->path);
    free(r->buf);
    free(r->longbuf);
    free(r->scratch);
    free(r->catbuf);
    free(r->emb);
    free(r);
}

int mp_reader_next(mp_reader *r, mp_record *rec, mp_error *err) {
    int rc;
    do {
        rc = reader_fetch(r, err);
        if (rc <= 0) return rc; /* end, over-long record (MP_EBADREC) or fatal */
    } while (is_blank(r->line));
    if ((rc = ensure_scratch(r, r->line.len, err)) != MP_OK) return rc;
    memset(rec, 0, sizeof *rec);
    if (r->kind == MP_KIND_ITEMS) rec->item.available = 1;
    rc = r->fmt == MP_FORMAT_CSV ? parse_csv(r, rec, err) : parse_json(r, rec, err);
    return rc == MP_OK ? 1 : rc;
}

int mp_record_parser_create(mp_reader **out, mp_record_kind kind, const char *name, mp_error *err) {
    *out = NULL;
    mp_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(name ? name : "record"))) {
        free(r);
        return mp_error_set(err, MP_ENOMEM, "out of memory");
    }
    r->fd = -1;
    r->kind = kind;
    r->fmt = MP_FORMAT_JSONL;
    int rc = ensure_scratch(r, 4096, err);
    if (rc != MP_OK) {
        mp_reader_close(r);
        return rc;
    }
    *out = r;
    return MP_OK;
}

int mp_record_parser_default_ts(mp_reader *r, int64_t ts) {
    if (r->fd >= 0 || r->fmt != MP_FORMAT_JSONL) return MP_EINVAL;
    if (ts < MP_TS_MIN || ts > MP_TS_MAX) return MP_ERANGE;
    r->has_default_ts = 1;
    r->default_ts = ts;
    return MP_OK;
}

int mp_record_parse_json(mp_reader *r, const char *s, size_t len, uint64_t index, mp_record *rec, mp_error *err) {
    if (r->fd >= 0 || r->fmt != MP_FORMAT_JSONL)
        return mp_error_set(err, MP_EINVAL, "mp_record_parse_json needs a parser from mp_record_parser_create");
    r->lineno = index;
    if (len > MP_MAX_LINE_BYTES)
        return mp_error_set(err, MP_EBADREC, "%s:%llu: record is longer than %u bytes (1 MiB)", r->path,
                            (unsigned long long)index, (unsigned)MP_MAX_LINE_BYTES);
    int rc = ensure_scratch(r, len, err);
    if (rc != MP_OK) return rc;
    r->line.ptr = s;
    r->line.len = len;
    memset(rec, 0, sizeof *rec);
    if (r->kind == MP_KIND_ITEMS) rec->item.available = 1;
    return parse_json(r, rec, err);
}

mp_str mp_reader_line(const mp_reader *r) {
    return r->line;
}
uint64_t mp_reader_lineno(const mp_reader *r) {
    return r->lineno;
}
uint64_t mp_reader_offset(const mp_reader *r) {
    return r->buf_off + r->pos;
}
uint64_t mp_reader_size(const mp_reader *r) {
    return r->size;
}
