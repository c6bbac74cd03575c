/* Tests of the write-request body decoder (src/serve/decode.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/decode.h"
#include "test.h"

#define NOW 1735689600 /* 2025-01-01T00:00:00Z */

static int str_eq(mp_str s, const char *lit) {
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static int dec(mp_decoded *d, mp_record_kind kind, const char *body, int ndjson, mp_error *err) {
    return mp_decode_records(d, kind, body, strlen(body), ndjson, 0, 0, NOW, err);
}

MP_TEST(decode_array_of_events) {
    const char *body = "[{\"user\":\"u1\",\"item\":\"sku-9\",\"type\":\"purchase\",\"ts\":1735689000,\"value\":5},\n"
                       " {\"user\":42,\"item\":\"i2\",\"type\":\"view\",\"ts\":\"2025-01-01T00:00:00Z\","
                       "\"text\":\"caf\\u00e9 \\\"ok\\\"\",\"session\":\"s1\"}]";
    mp_decoded d;
    mp_error err;
    CHECK_OK(dec(&d, MP_KIND_EVENTS, body, 0, &err), &err);
    CHECK_EQ(d.n, 2);
    CHECK_EQ(d.n_total, 2);
    CHECK_EQ(d.n_bad, 0);
    CHECK_EQ(d.n_errors, 0);
    const mp_event *e = &d.records[0].event;
    CHECK(str_eq(e->user, "u1"));
    CHECK(str_eq(e->item, "sku-9"));
    CHECK_EQ(e->type, MP_EV_PURCHASE);
    CHECK_EQ(e->ts, 1735689000);
    CHECK(e->has_value);
    CHECK_NEAR(e->value, 5, 0);
    CHECK_EQ(e->text.len, 0);
    e = &d.records[1].event;
    CHECK(str_eq(e->user, "42"));
    CHECK_EQ(e->type, MP_EV_VIEW);
    CHECK_EQ(e->ts, NOW);
    CHECK(str_eq(e->text, "caf\xc3\xa9 \"ok\""));
    CHECK(str_eq(e->session, "s1"));
    CHECK_EQ(d.index[0], 0);
    CHECK_EQ(d.index[1], 1);
    CHECK_EQ(e->text.ptr[e->text.len], 0); /* kept slices are NUL-terminated */
    mp_decoded_free(&d);
    CHECK(d.records == NULL && d.n == 0);
    mp_decoded_free(&d); /* twice is harmless */
}

MP_TEST(decode_wrapper_and_single_object) {
    mp_decoded d;
    mp_error err;
    CHECK_OK(dec(&d, MP_KIND_EVENTS,
                 " {\"events\": [{\"user\":\"a\",\"item\":\"b\",\"type\":\"cart\",\"ts\":1},"
                 "{\"user\":\"c\",\"item\":\"d\",\"type\":\"fav\",\"ts\":2}]} ",
                 0, &err),
             &err);
    CHECK_EQ(d.n, 2);
    CHECK(str_eq(d.records[1].event.user, "c"));
    CHECK_EQ(d.records[1].event.type, MP_EV_FAV);
    mp_decoded_free(&d);

    CHECK_OK(dec(&d, MP_KIND_EVENTS, "{\"user\":\"a\",\"item\":\"b\",\"type\":\"click\",\"ts\":7}", 0, &err), &err);
    CHECK_EQ(d.n, 1);
    CHECK_EQ(d.n_total, 1);
    CHECK_EQ(d.records[0].event.ts, 7);
    mp_decoded_free(&d);

    /* A single bad record object is one bad record at index 0, not a shape error. */
    CHECK_OK(dec(&d, MP_KIND_EVENTS, "{\"user\":\"a\",\"item\":\"b\",\"type\":\"buy\",\"ts\":7}", 0, &err), &err);
    CHECK_EQ(d.n, 0);
    CHECK_EQ(d.n_bad, 1);
    CHECK_CONTAINS(d.errors[0].message, "events[0]: field `type`: unknown event type");
    CHECK(strcmp(d.errors[0].field, "type") == 0);
    mp_decoded_free(&d);

    /* Empty wrapper and empty array: understood, nothing to do. */
    CHECK_OK(dec(&d, MP_KIND_USERS, "{\"users\":[]}", 0, &err), &err);
    CHECK_EQ(d.n_total, 0);
    mp_decoded_free(&d);
    CHECK_OK(dec(&d, MP_KIND_ITEMS, "[ ]", 0, &err), &err);
    CHECK_EQ(d.n_total, 0);
    mp_decoded_free(&d);
}

MP_TEST(decode_ndjson) {
    const char *body = "{\"user\":\"a\",\"item\":\"b\",\"type\":\"view\",\"ts\":1}\r\n"
                       "\n"
                       "   \t\n"
                       "{\"user\":\"a\",\"item\":\"c\",\"type\":\"view\",\"ts\":\"yesterday\"}\n"
                       "{\"user\":\"a\",\"item\":\"d\",\"type\":\"view\"\n" /* truncated line: one bad record */
                       "{\"user\":\"a\",\"item\":\"e\",\"type\":\"view\"}"; /* no ts, no final newline */
    mp_decoded d;
    mp_error err;
    CHECK_OK(dec(&d, MP_KIND_EVENTS, body, 1, &err), &err);
    CHECK_EQ(d.n_total, 4);
    CHECK_EQ(d.n, 2);
    CHECK_EQ(d.n_bad, 2);
    CHECK(str_eq(d.records[0].event.item, "b"));
    CHECK_EQ(d.index[0], 0);
    CHECK(str_eq(d.records[1].event.item, "e"));
    CHECK_EQ(d.records[1].event.ts, NOW);
    CHECK_EQ(d.index[1], 3);
    CHECK_EQ(d.errors[0].index, 1);
    CHECK_CONTAINS(d.errors[0].message, "events[1]: field `ts`: expected epoch seconds");
    CHECK_CONTAINS(d.errors[0].message, "yesterday");
    CHECK(strcmp(d.errors[0].field, "ts") == 0);
    CHECK_EQ(d.errors[1].index, 2);
    CHECK_CONTAINS(d.errors[1].message, "events[2]: malformed JSON");
    mp_decoded_free(&d);

    /* A JSON array is not JSON Lines: its line is one bad record. */
    CHECK_OK(dec(&d, MP_KIND_EVENTS, "[{\"user\":\"a\"}]\n", 1, &err), &err);
    CHECK_EQ(d.n_bad, 1);
    CHECK_CONTAINS(d.errors[0].message, "events[0]: malformed JSON: expected an object");
    mp_decoded_free(&d);
}

MP_TEST(decode_record_errors_name_index_and_field) {
    const char *body = "[{\"user\":\"a\",\"item\":\"b\",\"type\":\"view\",\"ts\":1},"
                       "{\"user\":\"a\",\"item\":\"b\",\"type\":\"view\",\"ts\":1,\"colour\":\"red\"},"
                       "{\"user\":\"a\",\"item\":\"b\",\"type\":\"view\",\"ts\":true},"
                       "{\"user\":\"\",\"item\":\"b\",\"type\":\"view\",\"ts\":1},"
                       "{\"item\":\"b\",\"type\":\"view\",\"ts\":1},"
                       "17,"
                       "{\"user\":\"a\",\"item\":\"b\",\"type\":\"view\",\"ts\":1,\"value\":1e400},"
                       "{\"user\":\"z\",\"item\":\"y\",\"type\":\"return\",\"ts\":99999999999999}]";
    mp_decoded d;
    mp_error err;
    CHECK_OK(dec(&d, MP_KIND_EVENTS, body, 0, &err), &err);
    CHECK_EQ(d.n_total, 8);
    CHECK_EQ(d.n, 1);
    CHECK_EQ(d.index[0], 0);
    CHECK_EQ(d.n_bad, 7);
    CHECK_EQ(d.n_errors, 7);
    CHECK_EQ(d.errors[0].index, 1);
    CHECK_CONTAINS(d.errors[0].message, "events[1]: field `colour`: unknown field");
    CHECK(strcmp(d.errors[0].field, "colour") == 0);
    CHECK_EQ(d.errors[1].index, 2);
    CHECK_CONTAINS(d.errors[1].message, "events[2]: field `ts`: expected epoch seconds");
    CHECK_CONTAINS(d.errors[1].message, "got true");
    CHECK(strcmp(d.errors[1].field, "ts") == 0);
    CHECK_CONTAINS(d.errors[2].message, "events[3]: field `user`: id must not be empty");
    CHECK_CONTAINS(d.errors[3].message, "events[4]: field `user`: missing required field");
    CHECK_CONTAINS(d.errors[4].message, "events[5]: malformed JSON: expected an object");
    CHECK(strcmp(d.errors[4].field, "") == 0);
    CHECK_CONTAINS(d.errors[5].message, "events[6]: field `value`: number out of range");
    CHECK_CONTAINS(d.errors[6].message, "events[7]: field `ts`: timestamp out of range");
    mp_decoded_free(&d);
}

MP_TEST(decode_missing_ts_gets_now) {
    mp_decoded d;
    mp_error err;
    const char *body = "[{\"user\":\"a\",\"item\":\"b\",\"type\":\"view\"}]";
    CHECK_OK(mp_decode_records(&d, MP_KIND_EVENTS, body, strlen(body), 0, 0, 0, 1234567, &err), &err);
    CHECK_EQ(d.n, 1);
    CHECK_EQ(d.records[0].event.ts, 1234567);
    mp_decoded_free(&d);
    /* An explicit ts wins; an explicit null ts is still an error. */
    CHECK_OK(dec(&d, MP_KIND_EVENTS,
                 "[{\"user\":\"a\",\"item\":\"b\",\"type\":\"view\",\"ts\":5},"
                 "{\"user\":\"a\",\"item\":\"b\",\"type\":\"view\",\"ts\":null}]",
                 0, &err),
             &err);
    CHECK_EQ(d.n, 1);
    CHECK_EQ(d.records[0].event.ts, 5);
    CHECK_EQ(d.n_bad, 1);
    CHECK(strcmp(d.errors[0].field, "ts") == 0);
    mp_decoded_free(&d);
    /* A bad clock is refused. */
    CHECK_EQ(mp_decode_records(&d, MP_KIND_EVENTS, "[]", 2, 0, 0, 0, INT64_MAX, &err), MP_EINVAL);
    mp_decoded_free(&d);
}

MP_TEST(decode_invalid_utf8) {
    mp_decoded d;
    mp_error err;
    const char bad[] = "[{\"user\":\"a\xff\",\"item\":\"b\",\"type\":\"view\"}]";
    CHECK_EQ(mp_decode_records(&d, MP_KIND_EVENTS, bad, sizeof bad - 1, 0, 0, 0, NOW, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "body: malformed JSON: invalid UTF-8 (byte 12)");
    mp_decoded_free(&d);
    /* Outside strings too, and overlong / surrogate forms. */
    const char bad2[] = "[\xc0\xaf]";
    CHECK_EQ(mp_decode_records(&d, MP_KIND_EVENTS, bad2, sizeof bad2 - 1, 0, 0, 0, NOW, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "invalid UTF-8");
    mp_decoded_free(&d);
    const char bad3[] = "{\"id\":\"\xed\xa0\x80\"}";
    CHECK_EQ(mp_decode_records(&d, MP_KIND_USERS, bad3, sizeof bad3 - 1, 0, 0, 0, NOW, &err), MP_EINVAL);
    mp_decoded_free(&d);
    /* In JSON Lines only that line is bad. */
    const char lines[] = "{\"id\":\"ok\"}\n{\"id\":\"b\xe2\x82\"}\n{\"id\":\"ok2\"}\n";
    CHECK_OK(mp_decode_records(&d, MP_KIND_USERS, lines, sizeof lines - 1, 1, 0, 0, NOW, &err), &err);
    CHECK_EQ(d.n, 2);
    CHECK_EQ(d.n_bad, 1);
    CHECK_EQ(d.errors[0].index, 1);
    CHECK_CONTAINS(d.errors[0].message, "users[1]: ");
    CHECK_CONTAINS(d.errors[0].message, "UTF-8");
    mp_decoded_free(&d);
}

MP_TEST(decode_truncated_and_malformed) {
    mp_decoded d;
    mp_error err;
    const char *cases[] = {
        "[{\"user\":\"a\",\"item\":\"b\"",
        "[{\"user\":\"a\"},",
        "{\"events\":[",
        "[1 2]",
        "{\"user\":\"a\" \"item\":\"b\"}",
        "[\"unterminated]",
        "[{\"user\":\"a\\q\"}]",
        "[01]",
        "[-]",
        "[tru]",
        "[{\"a\":1}]]",
        "{\"user\":\"a\"}\n{\"user\":\"b\"}", /* JSON Lines sent as JSON */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = dec(&d, MP_KIND_EVENTS, cases[i], 0, &err);
        CHECK_MSG(rc == MP_EINVAL, "case %zu (%s): rc %d", i, cases[i], rc);
        CHECK_CONTAINS(err.msg, "body: malformed JSON");
        CHECK_CONTAINS(err.msg, "(byte ");
        mp_decoded_free(&d);
    }
    CHECK_EQ(dec(&d, MP_KIND_EVENTS, "[{\"user\":\"a\",\"item\":\"b\"", 0, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "(byte 24)");
    mp_decoded_free(&d);
    CHECK_EQ(dec(&d, MP_KIND_EVENTS, "{\"user\":\"a\"}\n{\"user\":\"b\"}", 0, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "unexpected content after the JSON value (byte 14)");
    mp_decoded_free(&d);
}

MP_TEST(decode_wrong_top_level) {
    mp_decoded d;
    mp_error err;
    const char *scalars[] = {"5", "\"events\"", "null", "true", "-0.5e3"};
    for (size_t i = 0; i < sizeof scalars / sizeof *scalars; i++) {
        CHECK_EQ(dec(&d, MP_KIND_EVENTS, scalars[i], 0, &err), MP_EINVAL);
        CHECK_CONTAINS(err.msg, "body: expected a JSON array of event objects, {\"events\": [...]} or one event");
        mp_decoded_free(&d);
    }
    CHECK_EQ(dec(&d, MP_KIND_ITEMS, "42", 0, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "got a number");
    mp_decoded_free(&d);
    CHECK_EQ(dec(&d, MP_KIND_EVENTS, "{\"events\": {\"user\":\"a\"}}", 0, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "body: `events` must be an array of event objects, got an object");
    mp_decoded_free(&d);
    CHECK_EQ(dec(&d, MP_KIND_EVENTS, "{\"events\": [], \"dry_run\": true}", 0, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "must have no other keys");
    mp_decoded_free(&d);
    CHECK_EQ(dec(&d, MP_KIND_EVENTS, "{\"items\": [{\"id\":\"x\"}]}", 0, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "this request takes events, but the body holds a list of `items`");
    mp_decoded_free(&d);
    CHECK_EQ(dec(&d, MP_KIND_USERS, "\xef\xbb\xbf{\"id\":\"u\"}", 0, &err), MP_EINVAL); /* a BOM is not JSON */
    mp_decoded_free(&d);
}

MP_TEST(decode_empty_body) {
    mp_decoded d;
    mp_error err;
    CHECK_EQ(mp_decode_records(&d, MP_KIND_EVENTS, NULL, 0, 0, 0, 0, NOW, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "body: empty");
    mp_decoded_free(&d);
    CHECK_EQ(dec(&d, MP_KIND_EVENTS, " \r\n\t ", 0, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "body: empty");
    mp_decoded_free(&d);
    CHECK_EQ(dec(&d, MP_KIND_ITEMS, "", 1, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "body: empty; expected one item object per line");
    mp_decoded_free(&d);
    CHECK_EQ(dec(&d, MP_KIND_ITEMS, "\n \n\r\n", 1, &err), MP_EINVAL);
    mp_decoded_free(&d);
}

MP_TEST(decode_max_records) {
    mp_decoded d;
    mp_error err;
    const char *body = "[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"}]";
    CHECK_OK(mp_decode_records(&d, MP_KIND_USERS, body, strlen(body), 0, 3, 0, NOW, &err), &err);
    CHECK_EQ(d.n, 3);
    mp_decoded_free(&d);
    CHECK_EQ(mp_decode_records(&d, MP_KIND_USERS, body, strlen(body), 0, 2, 0, NOW, &err), MP_ERANGE);
    CHECK_CONTAINS(err.msg, "at most 2 records are allowed per request");
    mp_decoded_free(&d);
    /* Bad records count against the limit too, and JSON Lines is limited the same way. */
    const char *lines = "{\"id\":\"\"}\n{}\n{\"id\":\"c\"}\n";
    CHECK_EQ(mp_decode_records(&d, MP_KIND_USERS, lines, strlen(lines), 1, 2, 0, NOW, &err), MP_ERANGE);
    mp_decoded_free(&d);
    CHECK_OK(mp_decode_records(&d, MP_KIND_USERS, lines, strlen(lines), 1, 3, 0, NOW, &err), &err);
    CHECK_EQ(d.n, 1);
    CHECK_EQ(d.n_bad, 2);
    mp_decoded_free(&d);
}

MP_TEST(decode_max_errors) {
    size_t n = 50;
    char *body = malloc(n * 16 + 8);
    CHECK(body);
    size_t len = 0;
    body[len++] = '[';
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(body + len, "%s{\"id\":\"\"}", i ? "," : "");
    body[len++] = ']';
    mp_decoded d;
    mp_error err;
    int rc = mp_decode_records(&d, MP_KIND_USERS, body, len, 0, 0, 0, NOW, &err);
    if (rc == MP_OK) {
        CHECK_EQ(d.n_bad, 50);
        CHECK_EQ(d.n_errors, 20);
        CHECK_EQ(d.errors[19].index, 19);
        CHECK_CONTAINS(d.errors[19].message, "users[19]: field `id`: id must not be empty");
    }
    mp_decoded_free(&d);
    CHECK_OK(rc, &err);
    rc = mp_decode_records(&d, MP_KIND_USERS, body, len, 0, 0, 3, NOW, &err);
    free(body);
    CHECK_OK(rc, &err);
    CHECK_EQ(d.n_errors, 3);
    CHECK_EQ(d.n_bad, 50);
    mp_decoded_free(&d);
}

MP_TEST(decode_items) {
    const char *body =
        "{\"items\":[{\"id\":\"sku-1\",\"title\":\"Serum\",\"category\":[\"Beauty\",\"Skin Care\"],\"brand\":\"Acme\","
        "\"price\":19.9,\"attrs\":{\"size\":\"30ml\",\"tags\":[1,2]},\"available\":false},"
        "{\"id\":7,\"category\":\"Beauty > Hair\",\"description\":\"x\\ny\"},"
        "{\"id\":\"sku-3\",\"category\":[\"A\",3]},"
        "{\"id\":\"sku-4\",\"price\":-1}]}";
    mp_decoded d;
    mp_error err;
    CHECK_OK(dec(&d, MP_KIND_ITEMS, body, 0, &err), &err);
    CHECK_EQ(d.n, 2);
    const mp_item *it = &d.records[0].item;
    CHECK(str_eq(it->id, "sku-1"));
    CHECK(str_eq(it->title, "Serum"));
    CHECK(str_eq(it->category, "Beauty > Skin Care"));
    CHECK(str_eq(it->brand, "Acme"));
    CHECK(it->has_price);
    CHECK_NEAR(it->price, 19.9, 1e-12);
    CHECK(str_eq(it->attrs, "{\"size\":\"30ml\",\"tags\":[1,2]}"));
    CHECK_EQ(it->available, 0);
    it = &d.records[1].item;
    CHECK(str_eq(it->id, "7"));
    CHECK(str_eq(it->category, "Beauty > Hair"));
    CHECK(str_eq(it->description, "x\ny"));
    CHECK_EQ(it->available, 1);
    CHECK(!it->has_price);
    CHECK_EQ(d.n_bad, 2);
    CHECK_CONTAINS(d.errors[0].message, "items[2]: field `category`: expected an array of strings or a string");
    CHECK(strcmp(d.errors[0].field, "category") == 0);
    CHECK_CONTAINS(d.errors[1].message, "items[3]: field `price`: price must be >= 0");
    mp_decoded_free(&d);
}

MP_TEST(decode_users) {
    const char *body = "[{\"id\":\"u1\",\"attrs\":{\"tier\":\"gold\"}},{\"id\":\"u2\",\"attrs\":null},"
                       "{\"id\":\"u3\",\"attrs\":[1]},{\"id\":\"u4\",\"user\":\"x\"}]";
    mp_decoded d;
    mp_error err;
    CHECK_OK(dec(&d, MP_KIND_USERS, body, 0, &err), &err);
    CHECK_EQ(d.n, 2);
    CHECK(str_eq(d.records[0].user.id, "u1"));
    CHECK(str_eq(d.records[0].user.attrs, "{\"tier\":\"gold\"}"));
    CHECK(str_eq(d.records[1].user.id, "u2"));
    CHECK_EQ(d.records[1].user.attrs.len, 0);
    CHECK_EQ(d.n_bad, 2);
    CHECK_CONTAINS(d.errors[0].message, "users[2]: field `attrs`: expected a JSON object");
    CHECK_CONTAINS(d.errors[1].message, "users[3]: field `user`: unknown field");
    mp_decoded_free(&d);
}

/* Every slice lives in the decoded result: the body (and the parser's scratch) can go away. */
MP_TEST(decode_slices_outlive_body) {
    const char *src = "[{\"id\":\"a\\u00e9\",\"title\":\"T1\",\"category\":[\"X\",\"Y\"]},"
                      "{\"id\":\"b\",\"title\":\"T\\t2\",\"category\":[\"Z\"]},"
                      "{\"id\":\"c\",\"attrs\":{\"k\":1}}]";
    size_t len = strlen(src);
    char *body = malloc(len); /* not NUL-terminated */
    CHECK(body);
    memcpy(body, src, len);
    mp_decoded d;
    mp_error err;
    int rc = mp_decode_records(&d, MP_KIND_ITEMS, body, len, 0, 0, 0, NOW, &err);
    memset(body, 'x', len);
    free(body);
    CHECK_OK(rc, &err);
    CHECK_EQ(d.n, 3);
    CHECK(str_eq(d.records[0].item.id, "a\xc3\xa9"));
    CHECK(str_eq(d.records[0].item.title, "T1"));
    CHECK(str_eq(d.records[0].item.category, "X > Y"));
    CHECK(str_eq(d.records[1].item.title, "T\t2"));
    CHECK(str_eq(d.records[1].item.category, "Z"));
    CHECK(str_eq(d.records[2].item.attrs, "{\"k\":1}"));
    mp_decoded_free(&d);
}

MP_TEST(decode_hostile_bodies) {
    mp_decoded d;
    mp_error err;
    /* Deep nesting: refused as a whole, without recursion trouble. */
    size_t depth = 100000;
    char *deep = malloc(depth);
    CHECK(deep);
    memset(deep, '[', depth);
    int rc = mp_decode_records(&d, MP_KIND_EVENTS, deep, depth, 0, 0, 0, NOW, &err);
    mp_decoded_free(&d);
    /* The same inside attrs of one JSON Lines record. */
    memcpy(deep, "{\"id\":\"u\",\"attrs\":", 18);
    memset(deep + 18, '{', 2000);
    int rc2 = mp_decode_records(&d, MP_KIND_USERS, deep, 2018, 1, 0, 0, NOW, &err);
    free(deep);
    CHECK_EQ(rc, MP_EINVAL);
    CHECK_OK(rc2, &err);
    CHECK_EQ(d.n_bad, 1);
    CHECK_CONTAINS(d.errors[0].message, "users[0]: field `attrs`");
    mp_decoded_free(&d);
    rc = dec(&d, MP_KIND_EVENTS,
             "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
             "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
             0, &err);
    CHECK_EQ(rc, MP_EINVAL);
    CHECK_CONTAINS(err.msg, "nested too deeply");
    mp_decoded_free(&d);
    /* Huge numbers: a 600-digit id is text (but too long an id), a 600-digit value is out of range. */
    char big[1400];
    size_t n = (size_t)sprintf(big, "[{\"user\":");
    memset(big + n, '9', 600);
    n += 600;
    n += (size_t)sprintf(big + n,
                         ",\"item\":\"b\",\"type\":\"view\"},{\"user\":1,\"item\":2,\"type\":\"view\",\"value\":1");
    memset(big + n, '0', 600);
    n += 600;
    n += (size_t)sprintf(big + n, "}]");
    CHECK_OK(mp_decode_records(&d, MP_KIND_EVENTS, big, n, 0, 0, 0, NOW, &err), &err);
    CHECK_EQ(d.n_bad, 2);
    CHECK_CONTAINS(d.errors[0].message, "events[0]: field `user`: id is 600 bytes");
    CHECK_CONTAINS(d.errors[1].message, "events[1]: field `value`: number out of range");
    mp_decoded_free(&d);
    /* NUL bytes and control characters. */
    const char nul[] = "[{\"id\":\"a\0b\"}]";
    CHECK_EQ(mp_decode_records(&d, MP_KIND_USERS, nul, sizeof nul - 1, 0, 0, 0, NOW, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "control character");
    mp_decoded_free(&d);
    CHECK_EQ(dec(&d, MP_KIND_USERS, "[{\"id\":\"a\\u0000b\"}]", 0, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "(NUL) is not allowed in text (byte 10)");
    mp_decoded_free(&d);
    /* Only the first len bytes are read. */
    const char *longer = "[{\"id\":\"u1\"}]GARBAGE";
    CHECK_OK(mp_decode_records(&d, MP_KIND_USERS, longer, 13, 0, 0, 0, NOW, &err), &err);
    CHECK_EQ(d.n, 1);
    mp_decoded_free(&d);
}

/* A record longer than 1 MiB is one bad record, as in `magpie import`; messages stay within their buffer. */
MP_TEST(decode_long_record) {
    size_t tlen = (1u << 20) + 10;
    char *body = malloc(tlen + 64);
    CHECK(body);
    size_t n = (size_t)sprintf(body, "[{\"id\":\"x\",\"title\":\"");
    memset(body + n, 'a', tlen);
    n += tlen;
    n += (size_t)sprintf(body + n, "\"},{\"id\":\"y\"}]");
    mp_decoded d;
    mp_error err;
    int rc = mp_decode_records(&d, MP_KIND_ITEMS, body, n, 0, 0, 0, NOW, &err);
    free(body);
    CHECK_OK(rc, &err);
    CHECK_EQ(d.n, 1);
    CHECK_EQ(d.index[0], 1);
    CHECK_EQ(d.n_bad, 1);
    CHECK_CONTAINS(d.errors[0].message, "items[0]: record is longer than");
    mp_decoded_free(&d);
}

/* The field a bad record names comes from the parser's mp_error.field, not from reading the message. */
MP_TEST(decode_field_of) {
    static const char body[] = "[{\"user\":\"u\",\"item\":\"i\",\"type\":\"view\",\"ts\":\"yesterday\"},"
                               "{\"user\":\"u\",\"item\":\"i\",\"type\":\"nap\",\"ts\":1}]";
    mp_decoded d;
    mp_error err;
    CHECK_OK(mp_decode_records(&d, MP_KIND_EVENTS, body, sizeof body - 1, 0, 0, 0, NOW, &err), &err);
    CHECK_EQ(d.n_bad, 2);
    CHECK_EQ(d.n_errors, 2);
    CHECK_MSG(strcmp(d.errors[0].field, "ts") == 0, "field %s (%s)", d.errors[0].field, d.errors[0].message);
    CHECK_MSG(strcmp(d.errors[1].field, "type") == 0, "field %s (%s)", d.errors[1].field, d.errors[1].message);
    mp_decoded_free(&d);
    /* set and clear: a new error forgets the field of the previous one */
    mp_error_clear(&err);
    CHECK(err.field[0] == 0);
    snprintf(err.field, sizeof err.field, "ts");
    mp_error_set(&err, MP_EINVAL, "other");
    CHECK(err.field[0] == 0);
}

/* Supplied embeddings survive decoding of the records after them (they are copied out of the parser's buffer). */
MP_TEST(decode_keeps_each_records_embedding) {
    mp_decoded d;
    mp_error err;
    CHECK_OK(dec(&d, MP_KIND_ITEMS,
                 "[{\"id\":\"a\",\"embedding\":[1,2,3]},{\"id\":\"b\",\"embedding\":[4.5,-5,6]},{\"id\":\"c\"}]", 0,
                 &err),
             &err);
    CHECK_EQ(d.n, 3);
    CHECK_EQ(d.records[0].item.embedding_dim, 3);
    CHECK_EQ(d.records[1].item.embedding_dim, 3);
    CHECK_EQ(d.records[2].item.embedding_dim, 0);
    CHECK_NEAR(d.records[0].item.embedding[0], 1.0, 0);
    CHECK_NEAR(d.records[0].item.embedding[2], 3.0, 0);
    CHECK_NEAR(d.records[1].item.embedding[0], 4.5, 0);
    CHECK_NEAR(d.records[1].item.embedding[1], -5.0, 0);
    CHECK_EQ((uintptr_t)d.records[1].item.embedding % _Alignof(float), 0);
    mp_decoded_free(&d);
    CHECK_OK(dec(&d, MP_KIND_USERS, "{\"id\":\"u\",\"embedding\":[0.25,0.5]}\n{\"id\":\"v\",\"embedding\":[1,1]}", 1,
                 &err),
             &err);
    CHECK_EQ(d.n, 2);
    CHECK_NEAR(d.records[0].user.embedding[1], 0.5, 0);
    CHECK_NEAR(d.records[1].user.embedding[0], 1.0, 0);
    mp_decoded_free(&d);
}

/* PUT /v1/items/{id}: the lone item takes the path's id when it has none, keeps its own otherwise, and the body
 * is not touched. */
MP_TEST(decode_item_at_gives_the_path_id) {
    mp_decoded d;
    mp_error err;
    char body[] = "{ \"title\": \"Racer\", \"price\": 120, \"attrs\": {\"id\": \"not-the-id\"} }";
    char before[sizeof body];
    memcpy(before, body, sizeof body);
    CHECK_OK(mp_decode_item_at(&d, body, strlen(body), 0, 0, "sku-new", 7, &err), &err);
    CHECK(memcmp(body, before, sizeof body) == 0);
    CHECK_EQ(d.n, 1);
    CHECK(str_eq(d.records[0].item.id, "sku-new"));
    CHECK(d.records[0].item.id.ptr[7] == 0);
    CHECK(str_eq(d.records[0].item.title, "Racer"));
    CHECK(d.records[0].item.has_price && d.records[0].item.price == 120);
    mp_decoded_free(&d);

    /* an empty object, one JSON Lines record, an escaped "id" key (the body's own, kept) */
    CHECK_OK(mp_decode_item_at(&d, " {} ", 4, 0, 0, "a", 1, &err), &err);
    CHECK(d.n == 1 && str_eq(d.records[0].item.id, "a"));
    mp_decoded_free(&d);
    CHECK_OK(mp_decode_item_at(&d, "{\"title\":\"x\"}\n", 14, 1, 0, "b", 1, &err), &err);
    CHECK(d.n == 1 && str_eq(d.records[0].item.id, "b"));
    mp_decoded_free(&d);
    const char *esc = "{\"\\u0069d\":\"own\"}";
    CHECK_OK(mp_decode_item_at(&d, esc, strlen(esc), 0, 0, "path", 4, &err), &err);
    CHECK(d.n == 1 && str_eq(d.records[0].item.id, "own"));
    mp_decoded_free(&d);

    /* other fields keep the record parser's validation, named at index 0 */
    const char *bad = "{\"title\":5}";
    CHECK_OK(mp_decode_item_at(&d, bad, strlen(bad), 0, 0, "c", 1, &err), &err);
    CHECK(d.n == 0 && d.n_bad == 1 && d.n_errors == 1);
    CHECK(!strncmp(d.errors[0].message, "items[0]: field `title`", 23) && !strcmp(d.errors[0].field, "title"));
    mp_decoded_free(&d);

    /* only a lone record: array elements still need their id */
    const char *arr = "[{\"title\":\"x\"}]";
    CHECK_OK(mp_decode_item_at(&d, arr, strlen(arr), 0, 0, "c", 1, &err), &err);
    CHECK(d.n == 0 && d.n_bad == 1 && !strcmp(d.errors[0].field, "id"));
    mp_decoded_free(&d);

    /* malformed bodies are refused as a whole, at their own byte positions */
    CHECK_EQ(mp_decode_item_at(&d, "{", 1, 0, 0, "c", 1, &err), MP_EINVAL);
    CHECK(strstr(err.msg, "(byte 2)") != NULL);
    mp_decoded_free(&d);
    CHECK_EQ(mp_decode_item_at(&d, "{}", 2, 0, 0, "", 0, &err), MP_EINVAL);
    mp_decoded_free(&d);
}
