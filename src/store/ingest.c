/* The importer: one batch of validated records into a store, as one transaction.
 *
 * Speed: events are not written one by one as they arrive. They are buffered (up to CHUNK_EVENTS, text in an
 * arena), sorted by the store's key order (user, ts, item, type) and then inserted. Sorted inserts touch each
 * B-tree page once per chunk instead of once per event, which is what makes a multi-million-event import
 * run at B-tree-append speed; duplicates inside a chunk end up adjacent and are dropped before reaching the
 * store, duplicates across chunks or against the store are refused by the store's key (INSERT OR IGNORE).
 * New users and items are not written when first seen either: their ids are dense, so each flush writes the
 * id range allocated since the previous flush. The hot path per event is therefore two hash lookups and a
 * buffer append. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "magpie/ingest.h"

#define CHUNK_EVENTS (2u << 20)          /* events buffered before a sorted flush */
#define FLUSH_GROUP 256                   /* events handed to the store per call */
#define PREFETCH_AHEAD 8                 /* rows prefetched ahead when inserting in sorted order */
#define CHUNK_TEXT_BYTES ((size_t)256 << 20) /* or this much review text / session ids */

/* One buffered event; text and session live in the arena at text_off (session right after the text). */
typedef struct pending {
    uint32_t user, item;
    int64_t ts;
    double value;
    uint64_t text_off;
    uint32_t text_len, session_len;
    uint8_t type, has_value;
} pending;

struct mp_importer {
    mp_store *s;             /* the store (borrowed) */
    mp_import_opts opts;     /* copy of the caller's options */
    mp_strmap *ids[2];       /* external -> internal ids of users [0] and items [1] (owned) */
    uint32_t bound0[2];      /* id bounds when the batch began (ids >= bound0 are new) */
    uint32_t flushed[2];     /* ids below this are already written to the store */
    int in_txn;              /* a store transaction is open */
    int writing;             /* 0 in a dry run, or once an all-or-nothing batch saw a reject */
    pending *buf;            /* [n_buf] buffered events */
    size_t n_buf, cap_buf;
    char *arena;             /* [arena_len] text and session bytes of buffered events */
    size_t arena_len, arena_cap;
    uint32_t *perm;          /* [cap_buf] sort permutation scratch */
    uint32_t *counts;        /* [n_counts] counting-sort buckets by user */
    size_t n_counts;
    FILE *rejects;           /* rejects file (owned) or NULL */
    mp_import_report rep;    /* counters and kept messages (messages owned until handed to the caller) */
    size_t max_errors;
    char first_error[MP_ERROR_MSG_MAX];
    double t_start, store_seconds; /* wall clock at begin; time spent inside the store */
    uint64_t events_written, rows_written;
};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void mp_import_report_free(mp_import_report *rep) {
    if (!rep) return;
    for (size_t i = 0; i < rep->n_errors; i++) free(rep->errors[i]);
    free(rep->errors);
    rep->errors = NULL;
    rep->n_errors = 0;
}

static void importer_free(mp_importer *im) {
    mp_strmap_destroy(im->ids[0]);
    mp_strmap_destroy(im->ids[1]);
    free(im->buf);
    free(im->arena);
    free(im->perm);
    free(im->counts);
    if (im->rejects) fclose(im->rejects);
    mp_import_report_free(&im->rep);
    free(im);
}

void mp_importer_abort(mp_importer *im) {
    if (!im) return;
    if (im->in_txn) mp_store_rollback(im->s, NULL);
    importer_free(im);
}

int mp_importer_begin(mp_importer **out, mp_store *s, const mp_import_opts *opts, mp_error *err) {
    *out = NULL;
    mp_importer *im = calloc(1, sizeof *im);
    if (!im) return mp_error_set(err, MP_ENOMEM, "out of memory starting an import");
    im->s = s;
    if (opts) im->opts = *opts;
    im->max_errors = im->opts.max_errors ? im->opts.max_errors : 20;
    im->writing = !im->opts.dry_run;
    im->t_start = now_seconds();
    int rc = MP_OK;
    if (im->opts.rejects_path && !im->opts.dry_run) {
        im->rejects = fopen(im->opts.rejects_path, "w");
        if (!im->rejects)
            rc = mp_error_set(err, MP_EIO, "cannot create rejects file \"%s\": %s", im->opts.rejects_path,
                              strerror(errno));
    }
    /* The write transaction is taken before the id maps are read, so the ids we hand out cannot collide with
     * another importer's. A dry run only reads. */
    if (rc == MP_OK && !im->opts.dry_run) {
        rc = mp_store_begin(s, err);
        if (rc == MP_OK) im->in_txn = 1;
    }
    if (rc == MP_OK) rc = mp_store_load_ids(s, MP_KIND_USERS, &im->ids[0], err);
    if (rc == MP_OK) rc = mp_store_load_ids(s, MP_KIND_ITEMS, &im->ids[1], err);
    if (rc != MP_OK) {
        mp_importer_abort(im);
        return rc;
    }
    for (int k = 0; k < 2; k++) im->bound0[k] = im->flushed[k] = mp_strmap_id_bound(im->ids[k]);
    *out = im;
    return MP_OK;
}

/* ---- buffering and flushing events ---- */

static int key_cmp(const pending *a, const pending *b) {
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    if (a->item != b->item) return a->item < b->item ? -1 : 1;
    if (a->type != b->type) return a->type < b->type ? -1 : 1;
    return 0;
}

/* qsort fallback context: C11 qsort has no context argument, so the permutation holds indices and the
 * comparator reaches the buffer through this file-local pointer set just before the call (single-threaded). */
static _Thread_local const pending *sort_buf;

static int perm_cmp_full(const void *pa, const void *pb) {
    uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
    const pending *a = &sort_buf[ia], *b = &sort_buf[ib];
    if (a->user != b->user) return a->user < b->user ? -1 : 1;
    int c = key_cmp(a, b);
    if (c) return c;
    return (ia > ib) - (ia < ib); /* stable: first seen wins among duplicates */
}

static int perm_cmp_in_user(const void *pa, const void *pb) {
    uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
    int c = key_cmp(&sort_buf[ia], &sort_buf[ib]);
    if (c) return c;
    return (ia > ib) - (ia < ib);
}

/* Orders im->perm[0..n_buf) by (user, ts, item, type, arrival). A stable counting sort by user when the user id
 * range is small compared to the chunk (the usual case), then each user's run, which logs usually deliver in
 * time order already, by insertion sort (qsort for long unsorted runs). */
static int sort_pending(mp_importer *im, mp_error *err) {
    size_t n = im->n_buf;
    uint32_t n_users = mp_strmap_id_bound(im->ids[0]);
    sort_buf = im->buf;
    if ((size_t)n_users > 4 * n + 4096) {
        for (size_t i = 0; i < n; i++) im->perm[i] = (uint32_t)i;
        qsort(im->perm, n, sizeof *im->perm, perm_cmp_full);
        return MP_OK;
    }
    if (im->n_counts < (size_t)n_users + 1) {
        free(im->counts);
        im->counts = malloc(((size_t)n_users + 1) * sizeof *im->counts);
        if (!im->counts) {
            im->n_counts = 0;
            return mp_error_set(err, MP_ENOMEM, "out of memory sorting events");
        }
        im->n_counts = (size_t)n_users + 1;
    }
    uint32_t *cnt = im->counts;
    memset(cnt, 0, ((size_t)n_users + 1) * sizeof *cnt);
    for (size_t i = 0; i < n; i++) cnt[im->buf[i].user + 1]++;
    for (uint32_t u = 0; u < n_users; u++) cnt[u + 1] += cnt[u];
    for (size_t i = 0; i < n; i++) im->perm[cnt[im->buf[i].user]++] = (uint32_t)i;
    /* cnt[u] is now the end of user u's run. */
    size_t start = 0;
    for (uint32_t u = 0; u < n_users && start < n; u++) {
        size_t end = cnt[u];
        size_t len = end - start;
        if (len > 1) {
            uint32_t *p = im->perm + start;
            size_t inversions = 0;
            for (size_t i = 1; i < len && inversions < 64; i++)
                inversions += key_cmp(&im->buf[p[i - 1]], &im->buf[p[i]]) > 0;
            if (inversions >= 64 && len > 64) {
                qsort(p, len, sizeof *p, perm_cmp_in_user);
            } else if (inversions) {
                for (size_t i = 1; i < len; i++) { /* stable insertion sort */
                    uint32_t x = p[i];
                    size_t j = i;
                    while (j > 0 && key_cmp(&im->buf[p[j - 1]], &im->buf[x]) > 0) {
                        p[j] = p[j - 1];
                        j--;
                    }
                    p[j] = x;
                }
            }
        }
        start = end;
    }
    return MP_OK;
}

/* Writes users / items created since the last flush (bare external ids). */
static int flush_new_ids(mp_importer *im, mp_error *err) {
    for (int k = 0; k < 2; k++) {
        uint32_t bound = mp_strmap_id_bound(im->ids[k]);
        for (uint32_t id = im->flushed[k]; id < bound; id++) {
            size_t len;
            const char *key = mp_strmap_key(im->ids[k], id, &len);
            if (!key) continue;
            int rc;
            if (k == 0) {
                mp_user u = {{key, len}, {NULL, 0}};
                rc = mp_store_put_user(im->s, id, &u, err);
            } else {
                mp_item it;
                memset(&it, 0, sizeof it);
                it.id.ptr = key;
                it.id.len = len;
                it.available = 1;
                rc = mp_store_put_item(im->s, id, &it, err);
            }
            if (rc) return rc;
        }
        im->flushed[k] = bound;
    }
    return MP_OK;
}

static int flush(mp_importer *im, mp_error *err) {
    if (!im->writing) {
        im->n_buf = im->arena_len = 0;
        return MP_OK;
    }
    double t0 = now_seconds();
    int rc = flush_new_ids(im, err);
    double tA = now_seconds();
    if (rc == MP_OK && im->n_buf) rc = sort_pending(im, err);
    double tB = now_seconds();
    /* Rows go to the store in groups, in key order, duplicates inside the chunk dropped here. */
    mp_event_row rows[FLUSH_GROUP];
    size_t n_rows = 0;
    const pending *prev = NULL;
    for (size_t i = 0; rc == MP_OK && i <= im->n_buf; i++) {
        if (i == im->n_buf || n_rows == FLUSH_GROUP) {
            uint64_t added = 0;
            if (n_rows) rc = mp_store_add_events(im->s, rows, n_rows, &added, err);
            im->events_written += added;
            im->rep.duplicates += n_rows - added;
            n_rows = 0;
            if (i == im->n_buf || rc) break;
        }
        /* The permuted reads miss the cache; fetch a few rows ahead. */
        if (i + PREFETCH_AHEAD < im->n_buf) __builtin_prefetch(&im->buf[im->perm[i + PREFETCH_AHEAD]]);
        const pending *p = &im->buf[im->perm[i]];
        if (prev && prev->user == p->user && key_cmp(prev, p) == 0) {
            im->rep.duplicates++;
            continue;
        }
        prev = p;
        mp_event_row *row = &rows[n_rows++];
        row->user = p->user;
        row->item = p->item;
        row->type = p->type;
        row->ts = p->ts;
        row->value = p->value;
        row->has_value = p->has_value;
        row->text.ptr = im->arena + p->text_off;
        row->text.len = p->text_len;
        row->session.ptr = im->arena + p->text_off + p->text_len;
        row->session.len = p->session_len;
    }
    if (getenv("MP_DEBUG_T")) fprintf(stderr, "flush %zu: ids %.3f sort %.3f insert %.3f\n", im->n_buf, tA - t0, tB - tA, now_seconds() - tB);
    im->n_buf = im->arena_len = 0;
    im->store_seconds += now_seconds() - t0;
    return rc;
}

static int grow_buffers(mp_importer *im, mp_error *err) {
    size_t nc = im->cap_buf ? im->cap_buf * 2 : 4096;
    if (nc > CHUNK_EVENTS) nc = CHUNK_EVENTS;
    pending *nb = realloc(im->buf, nc * sizeof *nb);
    if (!nb) return mp_error_set(err, MP_ENOMEM, "out of memory buffering events");
    im->buf = nb;
    uint32_t *np = realloc(im->perm, nc * sizeof *np);
    if (!np) return mp_error_set(err, MP_ENOMEM, "out of memory buffering events");
    im->perm = np;
    im->cap_buf = nc;
    return MP_OK;
}

static int intern(mp_importer *im, int k, mp_str id, uint32_t *out, mp_error *err) {
    if (mp_strmap_intern(im->ids[k], id.ptr, id.len, out, NULL) != MP_OK)
        return mp_error_set(err, MP_ENOMEM, "out of memory interning %s ids", k ? "item" : "user");
    return MP_OK;
}

int mp_importer_add_event(mp_importer *im, const mp_event *e, mp_error *err) {
    im->rep.read++;
    im->rep.accepted++;
    uint32_t user, item;
    int rc = intern(im, 0, e->user, &user, err);
    if (rc == MP_OK) rc = intern(im, 1, e->item, &item, err);
    if (rc || !im->writing) return rc;
    if (im->n_buf == im->cap_buf) {
        if (im->cap_buf == CHUNK_EVENTS) rc = flush(im, err);
        else rc = grow_buffers(im, err);
        if (rc) return rc;
    }
    size_t extra = e->text.len + e->session.len;
    if (extra) {
        if (im->arena_len + extra > CHUNK_TEXT_BYTES && im->n_buf) {
            rc = flush(im, err);
            if (rc) return rc;
        }
        if (im->arena_len + extra > im->arena_cap) {
            size_t nc = im->arena_cap ? im->arena_cap : 1 << 16;
            while (nc < im->arena_len + extra) nc *= 2;
            char *na = realloc(im->arena, nc);
            if (!na) return mp_error_set(err, MP_ENOMEM, "out of memory buffering event text");
            im->arena = na;
            im->arena_cap = nc;
        }
        if (e->text.len) memcpy(im->arena + im->arena_len, e->text.ptr, e->text.len);
        if (e->session.len) memcpy(im->arena + im->arena_len + e->text.len, e->session.ptr, e->session.len);
    }
    pending *p = &im->buf[im->n_buf++];
    p->user = user;
    p->item = item;
    p->ts = e->ts;
    p->value = e->has_value ? e->value : 0.0;
    p->has_value = e->has_value ? 1 : 0;
    p->type = (uint8_t)e->type;
    p->text_off = im->arena_len;
    p->text_len = (uint32_t)e->text.len;
    p->session_len = (uint32_t)e->session.len;
    im->arena_len += extra;
    return MP_OK;
}

int mp_importer_add_item(mp_importer *im, const mp_item *it, mp_error *err) {
    im->rep.read++;
    im->rep.accepted++;
    uint32_t id;
    int rc = intern(im, 1, it->id, &id, err);
    if (rc || !im->writing) return rc;
    double t0 = now_seconds();
    rc = mp_store_put_item(im->s, id, it, err);
    im->store_seconds += now_seconds() - t0;
    if (rc == MP_OK) im->rows_written++;
    return rc;
}

int mp_importer_add_user(mp_importer *im, const mp_user *u, mp_error *err) {
    im->rep.read++;
    im->rep.accepted++;
    uint32_t id;
    int rc = intern(im, 0, u->id, &id, err);
    if (rc || !im->writing) return rc;
    double t0 = now_seconds();
    rc = mp_store_put_user(im->s, id, u, err);
    im->store_seconds += now_seconds() - t0;
    if (rc == MP_OK) im->rows_written++;
    return rc;
}

/* ---- rejects ---- */

/* Writes s[0..len) as a JSON string body: quotes, backslashes and control characters escaped, invalid UTF-8
 * bytes replaced by U+FFFD (the rejects file must itself be valid JSON; file and line point at the original). */
static void json_write_str(FILE *f, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    fputc('"', f);
    while (p < end) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
            p++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n': fputs("\\n", f); break;
            case '\r': fputs("\\r", f); break;
            case '\t': fputs("\\t", f); break;
            default: fprintf(f, "\\u%04x", c);
            }
            p++;
        } else if (c < 0x80) {
            fputc((int)c, f);
            p++;
        } else {
            int n = 0;
            if (c >= 0xC2 && c < 0xE0) n = 2;
            else if (c >= 0xE0 && c < 0xF0) n = 3;
            else if (c >= 0xF0 && c < 0xF5) n = 4;
            int ok = n > 0 && end - p >= n;
            for (int i = 1; ok && i < n; i++) ok = (p[i] & 0xC0) == 0x80;
            if (ok && n == 3) ok = !(c == 0xE0 && p[1] < 0xA0) && !(c == 0xED && p[1] >= 0xA0);
            if (ok && n == 4) ok = !(c == 0xF0 && p[1] < 0x90) && !(c == 0xF4 && p[1] >= 0x90);
            if (ok) {
                fwrite(p, 1, (size_t)n, f);
                p += n;
            } else {
                fputs("\xEF\xBF\xBD", f);
                p++;
            }
        }
    }
    fputc('"', f);
}

int mp_importer_reject(mp_importer *im, const char *file, uint64_t line, const char *message, mp_str raw,
                       mp_error *err) {
    im->rep.read++;
    im->rep.rejected++;
    if (!message) message = "bad record";
    if (im->rep.rejected == 1) snprintf(im->first_error, sizeof im->first_error, "%s", message);
    if (im->rep.n_errors < im->max_errors) {
        if (!im->rep.errors) {
            im->rep.errors = calloc(im->max_errors, sizeof *im->rep.errors);
            if (!im->rep.errors) return mp_error_set(err, MP_ENOMEM, "out of memory keeping error messages");
        }
        char *m = strdup(message);
        if (!m) return mp_error_set(err, MP_ENOMEM, "out of memory keeping error messages");
        im->rep.errors[im->rep.n_errors++] = m;
    }
    if (!im->opts.rejects_path) {
        /* All-or-nothing: this batch will be rolled back, so stop doing store work; keep validating to report
         * every bad record. */
        im->writing = 0;
        im->n_buf = im->arena_len = 0;
        return MP_OK;
    }
    if (!im->rejects) return MP_OK; /* dry run */
    /* The "error" field drops the "file:line: " prefix readers put on messages; file and line have fields. */
    const char *reason = message;
    if (file) {
        char prefix[64];
        size_t fl = strlen(file);
        int pl = snprintf(prefix, sizeof prefix, ":%llu: ", (unsigned long long)line);
        if (!strncmp(message, file, fl) && !strncmp(message + fl, prefix, (size_t)pl)) reason = message + fl + pl;
    }
    FILE *f = im->rejects;
    fputs("{\"file\":", f);
    json_write_str(f, file ? file : "", file ? strlen(file) : 0);
    fprintf(f, ",\"line\":%llu,\"error\":", (unsigned long long)line);
    json_write_str(f, reason, strlen(reason));
    fputs(",\"record\":", f);
    json_write_str(f, raw.ptr ? raw.ptr : "", raw.ptr ? raw.len : 0);
    fputs("}\n", f);
    if (ferror(f))
        return mp_error_set(err, MP_EIO, "writing rejects file \"%s\" failed: %s", im->opts.rejects_path,
                            strerror(errno));
    return MP_OK;
}

/* ---- finish ---- */

int mp_importer_finish(mp_importer *im, mp_import_report *rep, mp_error *err) {
    int rc = flush(im, err); /* also writes the new users / items */
    int bad_batch = im->rep.rejected > 0 && (!im->opts.rejects_path || im->opts.dry_run);
    if (rc == MP_OK && im->rejects) {
        int closed = fclose(im->rejects);
        im->rejects = NULL;
        if (closed != 0)
            rc = mp_error_set(err, MP_EIO, "writing rejects file \"%s\" failed: %s", im->opts.rejects_path,
                              strerror(errno));
    }
    if (rc == MP_OK && im->in_txn && !bad_batch) {
        double t0 = now_seconds();
        rc = mp_store_commit(im->s, err);
        im->store_seconds += now_seconds() - t0;
        if (getenv("MP_DEBUG_T")) fprintf(stderr, "commit %.3f s\n", now_seconds() - t0);
        if (rc == MP_OK) {
            im->in_txn = 0;
            im->rep.committed = 1;
        }
    }
    if (im->in_txn) {
        mp_store_rollback(im->s, NULL);
        im->in_txn = 0;
    }
    for (int k = 0; k < 2; k++) {
        uint32_t n = mp_strmap_id_bound(im->ids[k]) - im->bound0[k];
        if (k == 0) im->rep.new_users = n;
        else im->rep.new_items = n;
    }
    im->rep.written = im->rep.committed ? im->events_written + im->rows_written : 0;
    im->rep.total_seconds = now_seconds() - im->t_start;
    im->rep.parse_seconds = im->rep.total_seconds - im->store_seconds;
    if (rc == MP_OK && bad_batch) {
        rc = mp_error_set(err, MP_EBADREC, "%s (%llu of %llu records rejected; nothing was written)",
                          im->first_error, (unsigned long long)im->rep.rejected, (unsigned long long)im->rep.read);
    }
    *rep = im->rep;
    memset(&im->rep, 0, sizeof im->rep); /* the messages now belong to *rep */
    importer_free(im);
    return rc;
}

/* ---- files ---- */

#define PROGRESS_EVERY 65536 /* records between progress reports */

int mp_import_files(mp_store *s, mp_record_kind kind, const char *const *paths, size_t n_paths,
                    const mp_import_opts *opts, mp_import_report *rep, mp_error *err) {
    memset(rep, 0, sizeof *rep);
    if (n_paths == 0) return mp_error_set(err, MP_EINVAL, "import: no input files given");
    mp_format fmt = opts ? opts->format : MP_FORMAT_AUTO;
    const mp_progress *progress = opts ? opts->progress : NULL;
    /* The total for progress is the sum of the file sizes; missing files fail below with a clear message. */
    uint64_t total = 0, done_before = 0;
    for (size_t i = 0; i < n_paths; i++) {
        struct stat sb;
        if (stat(paths[i], &sb) == 0) total += (uint64_t)sb.st_size;
    }
    mp_importer *im;
    int rc = mp_importer_begin(&im, s, opts, err);
    if (rc) return rc;
    for (size_t i = 0; i < n_paths && rc == MP_OK; i++) {
        mp_reader *r;
        rc = mp_reader_open(&r, paths[i], kind, fmt, err);
        if (rc) break;
        mp_record rec;
        mp_error rerr;
        uint64_t n = 0;
        for (;;) {
            int got = mp_reader_next(r, &rec, &rerr);
            if (got == 0) break;
            if (got == 1) {
                if (kind == MP_KIND_EVENTS) rc = mp_importer_add_event(im, &rec.event, err);
                else if (kind == MP_KIND_ITEMS) rc = mp_importer_add_item(im, &rec.item, err);
                else rc = mp_importer_add_user(im, &rec.user, err);
            } else if (got == MP_EBADREC) {
                rc = mp_importer_reject(im, paths[i], mp_reader_lineno(r), rerr.msg, mp_reader_line(r), err);
            } else {
                *err = rerr;
                rc = got;
            }
            if (rc) break;
            if (++n % PROGRESS_EVERY == 0) mp_progress_report(progress, "import", done_before + mp_reader_offset(r), total);
        }
        done_before += mp_reader_size(r);
        mp_reader_close(r);
    }
    if (rc != MP_OK) {
        mp_importer_abort(im);
        return rc;
    }
    mp_progress_report(progress, "import", total, total);
    return mp_importer_finish(im, rep, err);
}
