/* src/serve/decode.c: write-request bodies (JSON array, {"events": [...]}, one object, or JSON Lines) into
 * validated records, through the same single-record parser as `magpie import` (mp_record_parse_json).
 *
 * The body is first checked to be one well-formed JSON value (mp_json_skip: UTF-8, nesting depth, numbers), so a
 * body whose record boundaries cannot be found is refused as a whole (MP_EINVAL); then each record is handed to
 * the record parser, whose per-record message "events:2: field `ts`: ..." is rewritten to "events[2]: ...".
 * Good records are copied into an arena owned by the mp_decoded, so they outlive the parser's scratch and the
 * body. */
#include "serve/decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "magpie/json.h"

#define DECODE_DEFAULT_MAX_ERRORS 20
#define ARENA_CHUNK (64u * 1024u)

/* ---------------------------------------------------------------------------------------------------------------
 * Arena: a list of chunks, newest first; one free releases every slice of every record. */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    char data[];
} arena_chunk;

static char *arena_alloc(mp_decoded *d, size_t n) {
    arena_chunk *c = d->arena_;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        arena_chunk *nc = malloc(sizeof *nc + cap);
        if (!nc) return NULL;
        nc->next = c;
        nc->used = 0;
        nc->cap = cap;
        d->arena_ = nc;
        c = nc;
    }
    char *p = c->data + c->used;
    c->used += n;
    return p;
}

/* Moves s into the arena (NUL-terminated there); empty slices become a static "". */
static int keep(mp_decoded *d, mp_str *s) {
    if (s->len == 0) {
        s->ptr = "";
        return MP_OK;
    }
    char *p = arena_alloc(d, s->len + 1);
    if (!p) return MP_ENOMEM;
    memcpy(p, s->ptr, s->len);
    p[s->len] = 0;
    s->ptr = p;
    return MP_OK;
}

static int keep_record(mp_decoded *d, mp_record_kind kind, mp_record *rec) {
    mp_str *slices[6];
    size_t n = 0;
    if (kind == MP_KIND_EVENTS) {
        slices[n++] = &rec->event.user;
        slices[n++] = &rec->event.item;
        slices[n++] = &rec->event.text;
        slices[n++] = &rec->event.session;
    } else if (kind == MP_KIND_ITEMS) {
        slices[n++] = &rec->item.id;
        slices[n++] = &rec->item.title;
        slices[n++] = &rec->item.description;
        slices[n++] = &rec->item.category;
        slices[n++] = &rec->item.brand;
        slices[n++] = &rec->item.attrs;
    } else {
        slices[n++] = &rec->user.id;
        slices[n++] = &rec->user.attrs;
    }
    for (size_t i = 0; i < n; i++)
        if (keep(d, slices[i]) != MP_OK) return MP_ENOMEM;
    /* a supplied embedding points into the parser's buffer, which the next record overwrites: copy it too */
    const float **vec = kind == MP_KIND_ITEMS ? &rec->item.embedding : kind == MP_KIND_USERS ? &rec->user.embedding : NULL;
    uint32_t dim = kind == MP_KIND_ITEMS ? rec->item.embedding_dim : kind == MP_KIND_USERS ? rec->user.embedding_dim : 0;
    if (vec && dim) {
        char *p = arena_alloc(d, (size_t)dim * sizeof(float) + _Alignof(float));
        if (!p) return MP_ENOMEM;
        float *f = (float *)(p + (_Alignof(float) - (uintptr_t)p % _Alignof(float)) % _Alignof(float));
        memcpy(f, *vec, (size_t)dim * sizeof(float));
        *vec = f;
    }
    return MP_OK;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Messages */

static const char *kind_plural(mp_record_kind k) {
    return k == MP_KIND_EVENTS ? "events" : k == MP_KIND_ITEMS ? "items" : "users";
}

static const char *kind_singular(mp_record_kind k) {
    return k == MP_KIND_EVENTS ? "event" : k == MP_KIND_ITEMS ? "item" : "user";
}

/* Cuts a truncated message back so that it does not end inside a UTF-8 sequence. */
static void trim_partial_utf8(char *s) {
    size_t len = strlen(s), i = len;
    while (i > 0 && len - i < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0) return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (want > 1 && len - (i - 1) < want) s[i - 1] = 0;
}

/* 1-based byte position of `at` in the body, as the record parser reports positions. */
static size_t byte_at(const char *body, size_t len, const char *at) {
    if (!at || at < body) return 1;
    size_t off = (size_t)(at - body);
    return (off > len ? len : off) + 1;
}

static const char *json_type_name(mp_json_type t) {
    switch (t) {
    case MP_JSON_NULL:
        return "null";
    case MP_JSON_BOOL:
        return "a boolean";
    case MP_JSON_NUMBER:
        return "a number";
    case MP_JSON_STRING:
        return "a string";
    case MP_JSON_ARRAY:
        return "an array";
    case MP_JSON_OBJECT:
        return "an object";
    default:
        return "something else";
    }
}

/* ---------------------------------------------------------------------------------------------------------------
 * Decoding */

typedef struct decoder {
    mp_decoded *out;
    mp_reader *parser; /* named kind_plural(kind), so its messages start "events:<index>: " */
    mp_record_kind kind;
    size_t max_records; /* 0: no limit */
    size_t max_errors;
    size_t cap_records, cap_errors; /* capacities of out->records / index, and out->errors */
    mp_str default_id; /* items only (mp_decode_item_at): the id of a lone record that has none; len 0: off */
} decoder;

/* Counts a bad record and keeps its message while fewer than max_errors are kept. */
static void add_error(decoder *dc, size_t index, const mp_error *perr) {
    const char *msg = perr->msg;
    mp_decoded *out = dc->out;
    out->n_bad++;
    if (out->n_errors >= dc->max_errors) return;
    if (out->n_errors == dc->cap_errors) {
        size_t nc = dc->cap_errors ? dc->cap_errors * 2 : 8;
        if (nc > dc->max_errors) nc = dc->max_errors;
        mp_decode_error *ne = realloc(out->errors, nc * sizeof *ne);
        if (!ne) return; /* out of memory: the record stays counted in n_bad, without its message */
        out->errors = ne;
        dc->cap_errors = nc;
    }
    mp_decode_error *e = &out->errors[out->n_errors++];
    memset(e, 0, sizeof *e);
    e->index = index;
    /* The parser's messages start "events:<index>: "; the API's read "events[<index>]: ". */
    const char *name = kind_plural(dc->kind);
    char pre[64];
    int k = snprintf(pre, sizeof pre, "%s:%zu: ", name, index);
    const char *rest = msg;
    if (k > 0 && strncmp(msg, pre, (size_t)k) == 0) rest = msg + k;
    snprintf(e->message, sizeof e->message, "%s[%zu]: %s", name, index, rest);
    trim_partial_utf8(e->message);
    snprintf(e->field, sizeof e->field, "%s", perr->field);
    trim_partial_utf8(e->field);
}

/* 1 when s[0..len) is a well-formed JSON object none of whose keys (decoded) is "id". */
static int object_without_id(const char *s, size_t len, int *oom) {
    mp_json_cur c;
    mp_json_init(&c, s, len);
    mp_json_cur v = c;
    if (mp_json_peek(&c) != MP_JSON_OBJECT || mp_json_skip(&v, NULL) != MP_OK) return 0;
    char *scratch_mem = malloc(len + 1), *scratch = scratch_mem;
    if (!scratch_mem) {
        *oom = 1;
        return 0;
    }
    int has_id = 0;
    mp_json_object_begin(&c);
    for (;;) {
        mp_str key;
        int done;
        if (mp_json_object_next(&c, &scratch, &key, &done) != MP_OK || done) break;
        if (key.len == 2 && !memcmp(key.ptr, "id", 2)) has_id = 1;
        if (mp_json_skip(&c, NULL) != MP_OK) break;
    }
    free(scratch_mem);
    return !has_id;
}

/* Parses an item object that has no `id` and gives it dc->default_id. The record parser insists on `id` (it has
 * no default for it, as it has for an event's `ts`), so it reads the object from a private copy whose first
 * member is a placeholder id, which is then replaced on the record: the request body is never changed, and every
 * other field gets exactly the parser's validation. */
static int parse_with_default_id(decoder *dc, const char *s, size_t len, uint64_t index, mp_record *rec,
                                 mp_error *perr, char **copy) {
    static const char head[] = "{\"id\":\"-\"";
    const char *open = memchr(s, '{', len);
    const char *rest = open + 1, *end = s + len;
    const char *p = rest;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    int empty = p < end && *p == '}';
    size_t n_rest = (size_t)(end - rest);
    *copy = malloc(sizeof head + 1 + n_rest);
    if (!*copy) return MP_ENOMEM;
    size_t n = sizeof head - 1;
    memcpy(*copy, head, n);
    if (!empty) (*copy)[n++] = ',';
    memcpy(*copy + n, rest, n_rest);
    n += n_rest;
    int rc = mp_record_parse_json(dc->parser, *copy, n, index, rec, perr);
    if (rc == MP_OK) rec->item.id = dc->default_id;
    return rc;
}

/* One record's JSON text s[0..len). Bad records are counted (and kept as errors); only fatal problems (the
 * record limit, out of memory) return an error. lone: the body's only record, which may take dc->default_id. */
static int decode_one_record(decoder *dc, const char *s, size_t len, int lone, mp_error *err) {
    mp_decoded *out = dc->out;
    size_t index = out->n_total;
    if (dc->max_records && index >= dc->max_records)
        return mp_error_set(err, MP_ERANGE,
                            "body: more than %zu %s; at most %zu records are allowed per request (send them in "
                            "smaller batches)",
                            dc->max_records, kind_plural(dc->kind), dc->max_records);
    out->n_total++;
    mp_record rec;
    mp_error perr;
    mp_error_clear(&perr);
    char *copy = NULL; /* the parser's text for a record given the default id; freed once the record is kept */
    int oom = 0, rc;
    if (lone && dc->default_id.len && object_without_id(s, len, &oom))
        rc = parse_with_default_id(dc, s, len, (uint64_t)index, &rec, &perr, &copy);
    else
        rc = oom ? MP_ENOMEM : mp_record_parse_json(dc->parser, s, len, (uint64_t)index, &rec, &perr);
    if (rc == MP_ENOMEM) return mp_error_set(err, MP_ENOMEM, "body: out of memory");
    if (rc == MP_EBADREC) {
        free(copy);
        add_error(dc, index, &perr);
        return MP_OK;
    }
    if (rc != MP_OK) {
        free(copy);
        return mp_error_set(err, rc, "%s[%zu]: %s", kind_plural(dc->kind), index, perr.msg);
    }
    if (out->n == dc->cap_records) { /* records[] and index[] share one capacity */
        size_t nc = dc->cap_records ? dc->cap_records * 2 : 64;
        mp_record *nr = realloc(out->records, nc * sizeof *nr);
        if (!nr) {
            free(copy);
            return mp_error_set(err, MP_ENOMEM, "body: out of memory");
        }
        out->records = nr;
        size_t *ni = realloc(out->index, nc * sizeof *ni);
        if (!ni) {
            free(copy);
            return mp_error_set(err, MP_ENOMEM, "body: out of memory");
        }
        out->index = ni;
        dc->cap_records = nc;
    }
    rc = keep_record(out, dc->kind, &rec);
    free(copy);
    if (rc != MP_OK) return mp_error_set(err, MP_ENOMEM, "body: out of memory");
    out->records[out->n] = rec;
    out->index[out->n] = index;
    out->n++;
    return MP_OK;
}

static int decode_one(decoder *dc, const char *s, size_t len, mp_error *err) {
    return decode_one_record(dc, s, len, 0, err);
}

/* JSON Lines: one record per line; lines holding only spaces, tabs or CR are skipped. */
static int decode_lines(decoder *dc, const char *body, size_t len, mp_error *err) {
    const char *p = body, *end = body + len;
    int any = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *b = p, *e = le;
        while (b < e && (*b == ' ' || *b == '\t' || *b == '\r'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        if (b < e) {
            int rc = decode_one_record(dc, b, (size_t)(e - b), !any, err);
            any = 1;
            if (rc != MP_OK) return rc;
        }
        p = nl ? nl + 1 : end;
    }
    if (!any)
        return mp_error_set(err, MP_EINVAL, "body: empty; expected one %s object per line (JSON Lines)",
                            kind_singular(dc->kind));
    return MP_OK;
}

/* The elements of the array at c (already validated as a whole). */
static int decode_array(decoder *dc, mp_json_cur *c, mp_error *err) {
    if (mp_json_array_begin(c) != MP_OK) return mp_error_set(err, MP_EINVAL, "body: expected an array");
    for (;;) {
        int done;
        if (mp_json_array_next(c, &done) != MP_OK)
            return mp_error_set(err, MP_EINVAL, "body: malformed JSON: %s", c->why ? c->why : "bad array");
        if (done) return MP_OK;
        mp_str raw;
        if (mp_json_skip(c, &raw) != MP_OK)
            return mp_error_set(err, MP_EINVAL, "body: malformed JSON: %s", c->why ? c->why : "bad value");
        int rc = decode_one(dc, raw.ptr, raw.len, err);
        if (rc != MP_OK) return rc;
    }
}

/* Index of the kind whose plural name is the raw key text ("\"events\""), or -1. */
static int plural_key(mp_str raw) {
    static const char *const keys[] = {"\"events\"", "\"items\"", "\"users\""};
    for (int k = 0; k < 3; k++)
        if (raw.len == strlen(keys[k]) && memcmp(raw.ptr, keys[k], raw.len) == 0) return k;
    return -1;
}

/* A top-level object (already validated): a wrapper {"events": [...]} or one record. */
static int decode_object(decoder *dc, const char *body, size_t len, mp_json_cur *c, mp_error *err) {
    mp_json_cur t = *c;
    mp_str whole;
    if (mp_json_skip(&t, &whole) != MP_OK) return mp_error_set(err, MP_EINVAL, "body: malformed JSON");
    /* Scan the top-level keys by their raw text (no scratch needed; a key spelled with escapes is not a
     * wrapper key and goes to the record parser, which names it). */
    t = *c;
    mp_json_accept(&t, '{');
    size_t n_keys = 0;
    int wrapper = -1;
    mp_json_cur wrapper_value = t;
    if (!mp_json_accept(&t, '}')) {
        for (;;) {
            mp_str key, val;
            if (mp_json_skip(&t, &key) != MP_OK || !mp_json_accept(&t, ':'))
                return mp_error_set(err, MP_EINVAL, "body: malformed JSON");
            int k = plural_key(key);
            if (k >= 0 && wrapper < 0) {
                wrapper = k;
                wrapper_value = t;
            }
            if (mp_json_skip(&t, &val) != MP_OK) return mp_error_set(err, MP_EINVAL, "body: malformed JSON");
            n_keys++;
            if (mp_json_accept(&t, ',')) continue;
            break;
        }
    }
    if (wrapper < 0) return decode_one_record(dc, whole.ptr, whole.len, 1, err);

    const char *want = kind_plural(dc->kind);
    if ((mp_record_kind)wrapper != dc->kind)
        return mp_error_set(err, MP_EINVAL, "body: this request takes %s, but the body holds a list of `%s`", want,
                            kind_plural((mp_record_kind)wrapper));
    if (n_keys != 1)
        return mp_error_set(err, MP_EINVAL,
                            "body: the object holding `%s` must have no other keys (it has %zu keys); send "
                            "{\"%s\": [...]}",
                            want, n_keys, want);
    mp_json_type vt = mp_json_peek(&wrapper_value);
    if (vt != MP_JSON_ARRAY)
        return mp_error_set(err, MP_EINVAL, "body: `%s` must be an array of %s objects, got %s (byte %zu)", want,
                            kind_singular(dc->kind), json_type_name(vt), byte_at(body, len, wrapper_value.p));
    return decode_array(dc, &wrapper_value, err);
}

static int decode_json(decoder *dc, const char *body, size_t len, mp_error *err) {
    const char *kind1 = kind_singular(dc->kind), *kinds = kind_plural(dc->kind);
    mp_json_cur c;
    mp_json_init(&c, body, len);
    if (mp_json_at_end(&c))
        return mp_error_set(err, MP_EINVAL,
                            "body: empty; expected a JSON array of %s objects, {\"%s\": [...]} or "
                            "one %s object",
                            kind1, kinds, kind1);
    /* Validate the whole value first: records are found by their boundaries, which need well-formed JSON. */
    mp_json_cur v = c;
    if (mp_json_skip(&v, NULL) != MP_OK)
        return mp_error_set(err, MP_EINVAL, "body: malformed JSON: %s (byte %zu)", v.why ? v.why : "invalid value",
                            byte_at(body, len, v.err_at ? v.err_at : v.p));
    if (!mp_json_at_end(&v))
        return mp_error_set(err, MP_EINVAL,
                            "body: malformed JSON: unexpected content after the JSON value (byte %zu); send several "
                            "records as an array or as JSON Lines",
                            byte_at(body, len, v.p));
    mp_json_type t = mp_json_peek(&c);
    if (t == MP_JSON_ARRAY) return decode_array(dc, &c, err);
    if (t == MP_JSON_OBJECT) return decode_object(dc, body, len, &c, err);
    return mp_error_set(err, MP_EINVAL,
                        "body: expected a JSON array of %s objects, {\"%s\": [...]} or one %s object, "
                        "got %s",
                        kind1, kinds, kind1, json_type_name(t));
}

static int decode_body(mp_decoded *out, mp_record_kind kind, const char *body, size_t len, int ndjson,
                       size_t max_records, size_t max_errors, int64_t now, mp_str default_id, mp_error *err) {
    memset(out, 0, sizeof *out);
    if (kind != MP_KIND_EVENTS && kind != MP_KIND_ITEMS && kind != MP_KIND_USERS)
        return mp_error_set(err, MP_EINVAL, "mp_decode_records: unknown record kind %d", (int)kind);
    if (!body && len) return mp_error_set(err, MP_EINVAL, "mp_decode_records: NULL body");
    if (!body) body = "";
    decoder dc;
    memset(&dc, 0, sizeof dc);
    dc.out = out;
    dc.kind = kind;
    dc.max_records = max_records;
    dc.max_errors = max_errors ? max_errors : DECODE_DEFAULT_MAX_ERRORS;
    dc.default_id = default_id;
    int rc = mp_record_parser_create(&dc.parser, kind, kind_plural(kind), err);
    if (rc != MP_OK) return rc;
    if (kind == MP_KIND_EVENTS && mp_record_parser_default_ts(dc.parser, now) != MP_OK) {
        mp_reader_close(dc.parser);
        return mp_error_set(err, MP_EINVAL, "mp_decode_records: `now` (%lld) is not a valid timestamp", (long long)now);
    }
    rc = ndjson ? decode_lines(&dc, body, len, err) : decode_json(&dc, body, len, err);
    mp_reader_close(dc.parser);
    return rc;
}

int mp_decode_records(mp_decoded *out, mp_record_kind kind, const char *body, size_t len, int ndjson,
                      size_t max_records, size_t max_errors, int64_t now, mp_error *err) {
    mp_str none = {"", 0};
    return decode_body(out, kind, body, len, ndjson, max_records, max_errors, now, none, err);
}

int mp_decode_item_at(mp_decoded *out, const char *body, size_t len, int ndjson, size_t max_records, const char *id,
                      size_t id_len, mp_error *err) {
    if (!id || id_len == 0 || id_len > MP_MAX_ID_BYTES) {
        memset(out, 0, sizeof *out);
        return mp_error_set(err, MP_EINVAL, "mp_decode_item_at: the id must be 1 to %d bytes", MP_MAX_ID_BYTES);
    }
    mp_str given = {id, id_len};
    return decode_body(out, MP_KIND_ITEMS, body, len, ndjson, max_records, 0, 0, given, err);
}

void mp_decoded_free(mp_decoded *d) {
    if (!d) return;
    arena_chunk *c = d->arena_;
    while (c) {
        arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(d->records);
    free(d->index);
    free(d->errors);
    memset(d, 0, sizeof *d);
}
