#include <stdint.h>
#include <stdlib.h>

#include "magpie/json.h"
#include "magpie/records.h"
#include "test.h"

static int str_eq(mp_str s, const char *lit) {
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* Writes `text` as dir file `name` and opens a reader on it. */
static int open_text(mp_test_ctx *t, mp_reader **r, const char *name, const char *text, mp_record_kind kind,
                     mp_error *err) {
    const char *path = mp_test_write_file(t, name, text);
    return mp_reader_open(r, path, kind, MP_FORMAT_AUTO, err);
}

MP_TEST(records_event_types) {
    CHECK(strcmp(mp_event_type_name(MP_EV_PURCHASE), "purchase") == 0);
    CHECK(strcmp(mp_event_type_name(MP_EV_RETURN), "return") == 0);
    CHECK(strcmp(mp_event_type_name(99), "?") == 0);
    CHECK(strcmp(mp_event_type_name(-1), "?") == 0);
    mp_event_type ty;
    CHECK_EQ(mp_event_type_parse("cart", 4, &ty), MP_OK);
    CHECK_EQ(ty, MP_EV_CART);
    CHECK_EQ(mp_event_type_parse("carts", 4, &ty), MP_OK); /* length-bounded */
    CHECK_EQ(mp_event_type_parse("Cart", 4, &ty), MP_EINVAL);
    CHECK_EQ(mp_event_type_parse("car", 3, &ty), MP_EINVAL);
    CHECK(mp_event_type_default_weight(MP_EV_VIEW) < mp_event_type_default_weight(MP_EV_CLICK));
    CHECK(mp_event_type_default_weight(MP_EV_FAV) < mp_event_type_default_weight(MP_EV_PURCHASE));
    CHECK(mp_event_type_default_weight(MP_EV_DISLIKE) < 0);
    mp_record_kind k;
    CHECK_EQ(mp_record_kind_parse("items", &k), MP_OK);
    CHECK_EQ(k, MP_KIND_ITEMS);
    CHECK_EQ(mp_record_kind_parse("item", &k), MP_EINVAL);
    mp_format f;
    CHECK_EQ(mp_format_parse("csv", &f), MP_OK);
    CHECK_EQ(f, MP_FORMAT_CSV);
    CHECK_EQ(mp_format_parse("xml", &f), MP_EINVAL);
}

MP_TEST(records_rfc3339) {
    struct {
        const char *s;
        int64_t want;
    } good[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2025-01-01T10:00:00Z", 1735725600},
        {"2025-01-01t10:00:00z", 1735725600},
        {"2025-01-01 10:00:00Z", 1735725600},
        {"2025-01-01T18:00:00+08:00", 1735725600},
        {"2025-01-01T05:00:00-05:00", 1735725600},
        {"2025-01-01T15:30:00+0530", 1735725600},
        {"2025-01-01T10:00:00.999999Z", 1735725600},
        {"2025-01-01T10:00:00", 1735725600}, /* no offset: taken as UTC */
        {"2025-01-01", 1735689600},
        {"2024-02-29T00:00:00Z", 1709164800},
        {"2000-02-29T00:00:00Z", 951782400},
        {"2019-11-24 00:03:13.442536+00:00", 1574553793},
        {"1969-12-31T23:59:59.5Z", -1},
        {"0001-01-01T00:00:00Z", -62135596800LL},
        {"9999-12-31T23:59:59Z", 253402300799LL},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t v = 0;
        int rc = mp_parse_rfc3339(good[i].s, strlen(good[i].s), &v);
        CHECK_MSG(rc == MP_OK, "%s rejected", good[i].s);
        CHECK_MSG(v == good[i].want, "%s -> %lld, want %lld", good[i].s, (long long)v, (long long)good[i].want);
    }
    const char *bad[] = {"2023-02-29T00:00:00Z",
                         "1900-02-29",
                         "2025-13-01T00:00:00Z",
                         "2025-04-31",
                         "2025-01-01T24:00:00Z",
                         "2025-01-01T10:60:00Z",
                         "2025-01-01T10:00:00+24:00",
                         "10000-01-01T00:00:00Z",
                         "0000-01-01",
                         "garbage",
                         "2025-01-01T10:00:00Zjunk",
                         "2025-01-01T10:00",
                         "2025-01-01T10:00:00.Z",
                         "2025-1-1",
                         "",
                         "2025-01-01X10:00:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v;
        CHECK_MSG(mp_parse_rfc3339(bad[i], strlen(bad[i]), &v) == MP_EINVAL, "%s accepted", bad[i]);
    }
}

MP_TEST(records_utf8) {
    size_t at = 99;
    CHECK(mp_utf8_valid("", 0, &at));
    CHECK(mp_utf8_valid("plain ascii text that is longer than eight bytes", 48, &at));
    CHECK(mp_utf8_valid("h\xc3\xa9llo \xe4\xb8\xad \xf0\x9f\x98\x80", 15, &at)); /* 2-, 3- and 4-byte */
    CHECK(mp_utf8_valid("\xf4\x8f\xbf\xbf", 4, &at));                            /* U+10FFFF */
    struct {
        const char *s;
        size_t len, bad_at;
    } bad[] = {
        {"\xc0\xaf", 2, 0},                  /* overlong '/' */
        {"ab\xe0\x80\xaf", 5, 2},            /* overlong 3-byte */
        {"\xf0\x82\x82\xac", 4, 0},          /* overlong 4-byte */
        {"x\xed\xa0\x80", 4, 1},             /* UTF-16 surrogate D800 */
        {"\xf4\x90\x80\x80", 4, 0},          /* above U+10FFFF */
        {"abc\xe2\x82", 5, 3},               /* truncated at the end */
        {"\xe2\x82z", 3, 0},                 /* truncated in the middle */
        {"\x80", 1, 0},                      /* lone continuation byte */
        {"\xf5\x80\x80\x80", 4, 0},          /* invalid lead byte */
        {"0123456789012345678\xff", 20, 19}, /* after the 8-byte fast path */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        at = 99;
        CHECK_MSG(!mp_utf8_valid(bad[i].s, bad[i].len, &at), "case %zu accepted", i);
        CHECK_MSG(at == bad[i].bad_at, "case %zu: bad_at %zu, want %zu", i, at, bad[i].bad_at);
    }
    CHECK(!mp_utf8_valid("\xff", 1, NULL));
}

MP_TEST(records_json_helpers) {
    const char *okj = "{\"a\":[1,2.5e3,-0,true,false,null,\"x\\u00e9\"],\"b\":{}}";
    CHECK_EQ(mp_json_validate(okj, strlen(okj), NULL), MP_OK);
    const char *bad[] = {"{\"a\":}",   "[1,]", "{\"a\" 1}", "01", "1.",         "\"abc",
                         "{\"a\":1}x", "nul",  "[\"\\x\"]", "",   "{\"a\":1,}", "\"\\ud800\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(mp_json_validate(bad[i], strlen(bad[i]), NULL) == MP_EINVAL, "%s accepted", bad[i]);
    char deep[400];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 200);
    CHECK_EQ(mp_json_validate(deep, 400, NULL), MP_EINVAL);

    /* escapes, surrogate pairs */
    const char *src = "\"a\\\"b\\\\c\\/\\n\\u00e9\\u4e2d\\ud83d\\ude00\"";
    mp_json_cur c;
    mp_json_init(&c, src, strlen(src));
    char buf[64], *scratch = buf;
    mp_str s;
    CHECK_EQ(mp_json_string(&c, &scratch, &s), MP_OK);
    CHECK(str_eq(s, "a\"b\\c/\n\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80"));
    CHECK(mp_json_at_end(&c));

    double d;
    CHECK_EQ(mp_parse_double("-12.5e1", 7, &d), MP_OK);
    CHECK_NEAR(d, -125.0, 1e-12);
    CHECK_EQ(mp_parse_double("+3", 2, &d), MP_OK);
    CHECK_NEAR(d, 3.0, 0);
    CHECK_EQ(mp_parse_double("inf", 3, &d), MP_EINVAL);
    CHECK_EQ(mp_parse_double("0x10", 4, &d), MP_EINVAL);
    CHECK_EQ(mp_parse_double("1e999", 5, &d), MP_EINVAL);
    CHECK_EQ(mp_parse_double("", 0, &d), MP_EINVAL);

    char out[64];
    size_t need = mp_json_escape(out, sizeof out, "a\"b\n\x01\xff", 6);
    CHECK(strcmp(out, "\"a\\\"b\\n\\u0001\xef\xbf\xbd\"") == 0);
    CHECK_EQ(need, strlen(out));
    CHECK_EQ(mp_json_escape(NULL, 0, "abc", 3), 5);
}

MP_TEST(records_jsonl_events_good) {
    mp_error err;
    mp_reader *r;
    const char *text =
        "\xEF\xBB\xBF{\"user\":\"u1\",\"item\":\"sku-9\",\"type\":\"purchase\",\"ts\":1735689600,\"value\":5,"
        "\"text\":\"tr\\u00e8s bien \\ud83d\\ude00\",\"session\":\"s1\"}\n"
        "\n"
        "  {\"ts\": \"2025-01-01T18:00:00+08:00\", \"type\": \"view\", \"item\": 42, \"user\": 7}\r\n"
        "{\"user\":\"u\\\"q\",\"item\":\"i\",\"type\":\"rating\",\"ts\":1735689600.75,\"value\":4.5,\"text\":null}";
    CHECK_OK(open_text(t, &r, "rec_good.jsonl", text, MP_KIND_EVENTS, &err), &err);
    mp_record rec;
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK(str_eq(rec.event.user, "u1"));
    CHECK(str_eq(rec.event.item, "sku-9"));
    CHECK_EQ(rec.event.type, MP_EV_PURCHASE);
    CHECK_EQ(rec.event.ts, 1735689600);
    CHECK(rec.event.has_value);
    CHECK_NEAR(rec.event.value, 5.0, 0);
    CHECK(str_eq(rec.event.text, "tr\xc3\xa8s bien \xf0\x9f\x98\x80"));
    CHECK(str_eq(rec.event.session, "s1"));
    CHECK_EQ(mp_reader_lineno(r), 1);

    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK_EQ(mp_reader_lineno(r), 3);
    CHECK(str_eq(rec.event.user, "7"));
    CHECK(str_eq(rec.event.item, "42"));
    CHECK_EQ(rec.event.type, MP_EV_VIEW);
    CHECK_EQ(rec.event.ts, 1735725600);
    CHECK(!rec.event.has_value);
    CHECK_EQ(rec.event.text.len, 0);
    CHECK(mp_reader_line(r).ptr[mp_reader_line(r).len - 1] == '}'); /* \r stripped */

    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK(str_eq(rec.event.user, "u\"q"));
    CHECK_EQ(rec.event.ts, 1735689600);
    CHECK_NEAR(rec.event.value, 4.5, 0);
    CHECK_EQ(rec.event.text.len, 0);
    CHECK_EQ(mp_reader_lineno(r), 4);
    CHECK_EQ(mp_reader_next(r, &rec, &err), 0);
    CHECK_EQ(mp_reader_offset(r), mp_reader_size(r));
    mp_reader_close(r);
    mp_reader_close(NULL);
}

MP_TEST(records_jsonl_items_users_good) {
    mp_error err;
    mp_reader *r;
    const char *items =
        "{\"id\":\"sku-9\",\"title\":\"Cr\\u00e8me\",\"description\":\"d\",\"category\":[\"Beauty\",\"Skin Care\"],"
        "\"brand\":\"B\",\"price\":19.9,\"attrs\":{\"size\": [1, {\"ml\": 50}]},\"available\":false}\n"
        "{\"id\":10,\"category\":\"Toys\",\"price\":0}\n";
    CHECK_OK(open_text(t, &r, "rec_items.jsonl", items, MP_KIND_ITEMS, &err), &err);
    mp_record rec;
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK(str_eq(rec.item.id, "sku-9"));
    CHECK(str_eq(rec.item.title, "Cr\xc3\xa8me"));
    CHECK(str_eq(rec.item.category, "Beauty > Skin Care"));
    CHECK(str_eq(rec.item.brand, "B"));
    CHECK(rec.item.has_price);
    CHECK_NEAR(rec.item.price, 19.9, 1e-12);
    CHECK(str_eq(rec.item.attrs, "{\"size\": [1, {\"ml\": 50}]}"));
    CHECK_EQ(rec.item.available, 0);
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK(str_eq(rec.item.id, "10"));
    CHECK(str_eq(rec.item.category, "Toys"));
    CHECK_EQ(rec.item.available, 1);
    CHECK_EQ(rec.item.attrs.len, 0);
    CHECK_EQ(mp_reader_next(r, &rec, &err), 0);
    mp_reader_close(r);

    CHECK_OK(open_text(t, &r, "rec_users.jsonl", "{\"id\":\"u1\",\"attrs\":{\"age\":30}}\n{\"id\":\"u2\"}\n",
                       MP_KIND_USERS, &err),
             &err);
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK(str_eq(rec.user.id, "u1"));
    CHECK(str_eq(rec.user.attrs, "{\"age\":30}"));
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK(str_eq(rec.user.id, "u2"));
    CHECK_EQ(rec.user.attrs.len, 0);
    mp_reader_close(r);
}

MP_TEST(records_csv_good) {
    mp_error err;
    mp_reader *r;
    const char *ev = "type,user,item,ts,value,text,session\r\n"
                     "view,u1,i1,1735689600,,,\r\n"
                     "rating,u2,\"i,2\",2025-01-01T10:00:00Z,4.5,\"she said \"\"wow\"\"\nand left\",s9\n"
                     "\n"
                     "purchase,\"u3\",i3, 1735689600.5 ,1,h\xc3\xa9,\n"
                     "view,u4,i4,1,,TV 55\" screen,\n" /* a stray quote inside an unquoted field is plain text */
                     "view,u5,i5,2,,\"\"\"quoted\"\"\",\n";
    CHECK_OK(open_text(t, &r, "rec_ev.csv", ev, MP_KIND_EVENTS, &err), &err);
    mp_record rec;
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK_EQ(mp_reader_lineno(r), 2);
    CHECK(str_eq(rec.event.user, "u1"));
    CHECK_EQ(rec.event.type, MP_EV_VIEW);
    CHECK(!rec.event.has_value);
    CHECK_EQ(rec.event.session.len, 0);
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK_EQ(mp_reader_lineno(r), 3);
    CHECK(str_eq(rec.event.item, "i,2"));
    CHECK_EQ(rec.event.ts, 1735725600);
    CHECK(str_eq(rec.event.text, "she said \"wow\"\nand left"));
    CHECK(str_eq(rec.event.session, "s9"));
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK_EQ(mp_reader_lineno(r), 6); /* the quoted newline took a line, then a blank line */
    CHECK(str_eq(rec.event.user, "u3"));
    CHECK_EQ(rec.event.ts, 1735689600);
    CHECK(str_eq(rec.event.text, "h\xc3\xa9"));
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK_EQ(mp_reader_lineno(r), 7);
    CHECK(str_eq(rec.event.text, "TV 55\" screen"));
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK_EQ(mp_reader_lineno(r), 8);
    CHECK(str_eq(rec.event.user, "u5"));
    CHECK(str_eq(rec.event.text, "\"quoted\""));
    CHECK_EQ(mp_reader_next(r, &rec, &err), 0);
    mp_reader_close(r);

    const char *items = "id,title,category,price,attrs,available,brand,description\n"
                        "sku-1,\"Cream, 50ml\",Beauty > Skin Care,19.9,\"{\"\"ml\"\": 50}\",false,B,\n";
    CHECK_OK(open_text(t, &r, "rec_items.csv", items, MP_KIND_ITEMS, &err), &err);
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK(str_eq(rec.item.title, "Cream, 50ml"));
    CHECK(str_eq(rec.item.category, "Beauty > Skin Care"));
    CHECK(str_eq(rec.item.attrs, "{\"ml\": 50}"));
    CHECK_EQ(rec.item.available, 0);
    CHECK_NEAR(rec.item.price, 19.9, 1e-12);
    mp_reader_close(r);

    /* TSV: tab separated, quotes are plain characters */
    CHECK_OK(open_text(t, &r, "rec_users.tsv", "id\tattrs\nu\"1\t{\"a\":1}\n", MP_KIND_USERS, &err), &err);
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK(str_eq(rec.user.id, "u\"1"));
    CHECK(str_eq(rec.user.attrs, "{\"a\":1}"));
    mp_reader_close(r);
}

typedef struct bad_case {
    const char *line;
    const char *want; /* substring of the message after "FILE:1: " */
} bad_case;

/* Each bad line is followed by a good one that must still be read. */
static void run_bad_cases(mp_test_ctx *t, const char *fname, const char *header, const char *good, mp_record_kind kind,
                          const bad_case *cases, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(header) + strlen(cases[i].line) + strlen(good) + 4;
        char *text = malloc(len);
        snprintf(text, len, "%s%s\n%s\n", header, cases[i].line, good);
        mp_error err;
        mp_reader *r;
        int rc = open_text(t, &r, fname, text, kind, &err);
        free(text);
        CHECK_MSG(rc == MP_OK, "case %zu: open: %s", i, err.msg);
        mp_record rec;
        uint64_t line = header[0] ? 2 : 1;
        rc = mp_reader_next(r, &rec, &err);
        char want[600];
        snprintf(want, sizeof want, "%s:%llu: %s", fname, (unsigned long long)line, cases[i].want);
        if (rc != MP_EBADREC || !strstr(err.msg, want)) {
            mp_test_fail(t, __FILE__, __LINE__, "case %zu (%s): rc %d, message \"%s\", want \"%s\"", i, cases[i].line,
                         rc, rc == MP_EBADREC ? err.msg : "", want);
            mp_reader_close(r);
            return;
        }
        CHECK_EQ(mp_reader_lineno(r), line);
        CHECK(mp_reader_line(r).len == strlen(cases[i].line));
        rc = mp_reader_next(r, &rec, &err);
        CHECK_MSG(rc == 1, "case %zu: the good line after the bad one gave %d (%s)", i, rc, err.msg);
        CHECK_EQ(mp_reader_lineno(r), line + 1);
        CHECK_EQ(mp_reader_next(r, &rec, &err), 0);
        mp_reader_close(r);
    }
}

MP_TEST(records_jsonl_events_bad) {
    static const bad_case cases[] = {
        {"{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\",\"ts\":true}",
         "field `ts`: expected epoch seconds (a number) or an RFC 3339 time string, got true"},
        {"{\"user\":{},\"item\":\"i1\",\"type\":\"view\",\"ts\":1}",
         "field `user`: expected a string or an integer id, got {}"},
        {"{\"user\":[1,2],\"item\":\"i1\",\"type\":\"view\",\"ts\":1}",
         "field `user`: expected a string or an integer id, got [1,2]"},
        {"{\"user\":1.5,\"item\":\"i1\",\"type\":\"view\",\"ts\":1}",
         "field `user`: expected a string or an integer id, got 1.5"},
        {"{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\"}", "field `ts`: missing required field"},
        {"{\"item\":\"i1\",\"type\":\"view\",\"ts\":1}", "field `user`: missing required field"},
        {"{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"viewed\",\"ts\":1}",
         "field `type`: unknown event type; expected one of view, click, cart, fav, purchase, review, rating, dislike, "
         "return, got \"viewed\""},
        {"{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\",\"ts\":\"yesterday\"}",
         "field `ts`: expected epoch seconds or an RFC 3339 time like 2025-01-01T10:00:00Z, got \"yesterday\""},
        {"{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\",\"ts\":\"2025-02-30T00:00:00Z\"}",
         "field `ts`: expected epoch seconds or an RFC 3339"},
        {"{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1735689600000}",
         "field `ts`: timestamp out of range"},
        {"{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1e400}", "field `ts`: timestamp out of range"},
        {"{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1,\"color\":\"red\"}",
         "field `color`: unknown field; expected one of user, item, type, ts"},
        {"{\"user\":\"u1\",\"user\":\"u2\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1}", "field `user`: duplicate key"},
        {"{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1",
         "malformed JSON after field `ts`: expected ',' or '}'"},
        {"{\"user\":\"u1\" \"item\":\"i1\"}", "malformed JSON after field `user`"},
        {"{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1} x",
         "unexpected content after the JSON object, got \"x\""},
        {"[1,2]", "malformed JSON: expected an object"},
        {"not json", "malformed JSON: expected an object"},
        {"{\"user\":\"u\xff\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1}", "field `user`: invalid UTF-8"},
        {"{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1,\"text\":\"ok \xc0\xaf\"}",
         "field `text`: invalid UTF-8"},
        {"{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1,\"text\":\"\xed\xa0\x80\"}",
         "field `text`: invalid UTF-8"},
        {"{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1,\"text\":\"\xf0\x9f\x98\"}",
         "field `text`: invalid UTF-8"},
        {"\xff{}", "invalid UTF-8"},
        {"{\"user\":\"u\\ud800x\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1}",
         "field `user`: invalid \\u escape: high surrogate"},
        {"{\"user\":\"\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1}", "field `user`: id must not be empty"},
        {"{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1,\"value\":\"5\"}",
         "field `value`: expected a number, got \"5\""},
        {"{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1,\"text\":\"a\tb\"}",
         "field `text`: control character in string"},
    };
    run_bad_cases(t, "rec_bad.jsonl", "", "{\"user\":\"u\",\"item\":\"i\",\"type\":\"view\",\"ts\":5}", MP_KIND_EVENTS,
                  cases, sizeof cases / sizeof cases[0]);
    if (t->failed) return;

    /* an id over 256 bytes */
    char line[600];
    char id[300];
    memset(id, 'x', 257);
    id[257] = 0;
    snprintf(line, sizeof line, "{\"user\":\"%s\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1}", id);
    bad_case long_id[] = {{line, "field `user`: id is 257 bytes, longer than the limit of 256"}};
    run_bad_cases(t, "rec_bad.jsonl", "", "{\"user\":\"u\",\"item\":\"i\",\"type\":\"view\",\"ts\":5}", MP_KIND_EVENTS,
                  long_id, 1);
}

MP_TEST(records_jsonl_items_users_bad) {
    static const bad_case items[] = {
        {"{\"id\":\"a\",\"color\":\"red\"}",
         "field `color`: unknown field; expected one of id, title, description, category, brand, price, attrs, "
         "available, embedding (put extra attributes inside `attrs`)"},
        {"{\"id\":\"a\",\"price\":-1}", "field `price`: price must be >= 0, got -1"},
        {"{\"id\":\"a\",\"price\":\"cheap\"}", "field `price`: expected a number, got \"cheap\""},
        {"{\"id\":\"a\",\"attrs\":[1]}", "field `attrs`: expected a JSON object, got [1]"},
        {"{\"id\":\"a\",\"attrs\":{\"k\":}}", "field `attrs`: unexpected character, expected a value"},
        {"{\"id\":\"a\",\"available\":\"yes\"}", "field `available`: expected true or false, got \"yes\""},
        {"{\"id\":\"a\",\"category\":[\"A\",1]}",
         "field `category`: expected an array of strings or a string, got [\"A\",1]"},
        {"{\"title\":\"no id\"}", "field `id`: missing required field"},
        {"{\"id\":\"a\",\"title\":\"t\",\"title\":\"u\"}", "field `title`: duplicate key"},
    };
    run_bad_cases(t, "rec_bad_items.jsonl", "", "{\"id\":\"ok\"}", MP_KIND_ITEMS, items,
                  sizeof items / sizeof items[0]);
    if (t->failed) return;
    static const bad_case users[] = {
        {"{\"id\":\"u\",\"age\":3}", "field `age`: unknown field; expected one of id, attrs"},
        {"{\"id\":\"u\",\"attrs\":\"x\"}", "field `attrs`: expected a JSON object, got \"x\""},
        {"{\"id\":true}", "field `id`: expected a string or an integer id, got true"},
    };
    run_bad_cases(t, "rec_bad_users.jsonl", "", "{\"id\":\"ok\"}", MP_KIND_USERS, users,
                  sizeof users / sizeof users[0]);
}

MP_TEST(records_csv_bad) {
    static const bad_case cases[] = {
        {"u1,i1,view", "expected 4 columns as in the header, found 3"},
        {"u1,i1,view,1,extra", "expected 4 columns as in the header, found 5"},
        {"u1,i1,view,yesterday",
         "field `ts`: expected epoch seconds or an RFC 3339 time like 2025-01-01T10:00:00Z, got \"yesterday\""},
        {"u1,i1,viewed,1", "field `type`: unknown event type; expected one of view, click"},
        {"u1,\"i1,view,1", "field `item`: unterminated quoted field"},
        {"u1,\"i1\"x,view,1", "field `item`: unexpected character after a closing quote"},
        {"u1,i\xc3\x28,view,1", "field `item`: invalid UTF-8 at byte 2 of the value"},
        {",i1,view,1", "field `user`: required value is empty"},
        {"u1,i1,view,99999999999999999999", "field `ts`: timestamp out of range"},
    };
    run_bad_cases(t, "rec_bad.csv", "user,item,type,ts\n", "u2,i2,click,7", MP_KIND_EVENTS, cases,
                  sizeof cases / sizeof cases[0]);
    if (t->failed) return;
    static const bad_case items[] = {
        {"a,-3,", "field `price`: price must be >= 0, got \"-3\""},
        {"a,1,{\"k\":", "field `attrs`: malformed JSON object"},
        {"a,1,[1]", "field `attrs`: expected a JSON object, got \"[1]\""},
    };
    run_bad_cases(t, "rec_bad_items.csv", "id,price,attrs\n", "b,2,{}", MP_KIND_ITEMS, items,
                  sizeof items / sizeof items[0]);
}

MP_TEST(records_open_errors) {
    mp_error err;
    mp_reader *r = (mp_reader *)1;
    const char *p = mp_test_write_file(t, "rec_empty.jsonl", "");
    char path[600];
    snprintf(path, sizeof path, "%s", p);
    CHECK_EQ(mp_reader_open(&r, path, MP_KIND_EVENTS, MP_FORMAT_AUTO, &err), MP_EEMPTY);
    CHECK(r == NULL);
    char want[700];
    snprintf(want, sizeof want, "%s: file is empty", path);
    CHECK(strcmp(err.msg, want) == 0);

    CHECK_EQ(open_text(t, &r, "rec_empty2.csv", "", MP_KIND_EVENTS, &err), MP_EEMPTY);
    CHECK_CONTAINS(err.msg, "rec_empty2.csv: file is empty");

    CHECK_EQ(open_text(t, &r, "rec_hdr1.csv", "user,item,type,ts,colour\nu,i,view,1,red\n", MP_KIND_EVENTS, &err),
             MP_EINVAL);
    CHECK_CONTAINS(err.msg, "rec_hdr1.csv:1: unknown column `colour`; expected columns: user, item, type, ts");
    CHECK_EQ(open_text(t, &r, "rec_hdr2.csv", "user,item,ts\nu,i,1\n", MP_KIND_EVENTS, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "rec_hdr2.csv:1: missing required column `type`");
    CHECK_EQ(open_text(t, &r, "rec_hdr3.csv", "id,title,title\n", MP_KIND_ITEMS, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "rec_hdr3.csv:1: duplicate column `title`");
    CHECK_EQ(open_text(t, &r, "rec_hdr4.csv", "title,color\n", MP_KIND_ITEMS, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "unknown column `color`");
    CHECK_CONTAINS(err.msg, "attrs");

    CHECK_EQ(mp_reader_open(&r, "/nonexistent/dir/ev.jsonl", MP_KIND_EVENTS, MP_FORMAT_AUTO, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "/nonexistent/dir/ev.jsonl: cannot open");
    CHECK_EQ(mp_reader_open(&r, mp_test_tmpdir(t), MP_KIND_EVENTS, MP_FORMAT_AUTO, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "is a directory");

    /* a header-only CSV is not empty, it just has no records */
    mp_record rec;
    CHECK_OK(open_text(t, &r, "rec_hdronly.csv", "user,item,type,ts\n", MP_KIND_EVENTS, &err), &err);
    CHECK_EQ(mp_reader_next(r, &rec, &err), 0);
    mp_reader_close(r);
}

MP_TEST(records_long_line) {
    /* good, over-long (1.5 MiB), good, over-long without a newline at the end */
    const char *good = "{\"user\":\"u\",\"item\":\"i\",\"type\":\"view\",\"ts\":5}\n";
    size_t big = MP_MAX_LINE_BYTES + MP_MAX_LINE_BYTES / 2;
    size_t total = 3 * strlen(good) + 2 * big + 16;
    char *text = malloc(total), *p = text;
    p += sprintf(p, "%s", good);
    memset(p, 'x', big);
    p[0] = '{';
    p += big;
    *p++ = '\n';
    p += sprintf(p, "%s", good);
    memset(p, 'y', big);
    p += big;
    *p = 0;
    const char *path = mp_test_write_file(t, "rec_long.jsonl", text);
    free(text);
    mp_error err;
    mp_reader *r;
    CHECK_OK(mp_reader_open(&r, path, MP_KIND_EVENTS, MP_FORMAT_AUTO, &err), &err);
    mp_record rec;
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK_EQ(mp_reader_next(r, &rec, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "rec_long.jsonl:2: record is longer than 1048576 bytes");
    CHECK_EQ(mp_reader_line(r).len, MP_MAX_LINE_BYTES);
    CHECK(mp_reader_line(r).ptr[0] == '{' && mp_reader_line(r).ptr[1] == 'x');
    CHECK_EQ(mp_reader_next(r, &rec, &err), 1);
    CHECK_EQ(mp_reader_lineno(r), 3);
    CHECK(str_eq(rec.event.user, "u"));
    CHECK_EQ(mp_reader_next(r, &rec, &err), MP_EBADREC);
    CHECK_CONTAINS(err.msg, "rec_long.jsonl:4: record is longer");
    CHECK_EQ(mp_reader_next(r, &rec, &err), 0);
    mp_reader_close(r);
}

MP_TEST(records_many_lines_across_buffers) {
    /* enough records to cross several buffer refills; every 1000th is bad */
    size_t n = 150000; /* ~4 MB: several refills of the 2 MiB buffer */
    char *text = malloc(n * 80), *p = text;
    for (size_t i = 0; i < n; i++) {
        if (i % 1000 == 999)
            p += sprintf(p, "u%zu,i%zu,view,bad\n", i, i);
        else
            p += sprintf(p, "u%zu,\"i,%zu\",click,%zu\n", i, i % 97, 1700000000 + i);
    }
    *p = 0;
    char *full = malloc(strlen(text) + 32);
    sprintf(full, "user,item,type,ts\n%s", text);
    free(text);
    const char *path = mp_test_write_file(t, "rec_many.csv", full);
    free(full);
    mp_error err;
    mp_reader *r;
    CHECK_OK(mp_reader_open(&r, path, MP_KIND_EVENTS, MP_FORMAT_AUTO, &err), &err);
    mp_record rec;
    size_t good = 0, bad = 0;
    int rc;
    while ((rc = mp_reader_next(r, &rec, &err)) != 0) {
        if (rc == MP_EBADREC) {
            bad++;
            CHECK_CONTAINS(err.msg, "field `ts`");
            continue;
        }
        CHECK_EQ(rc, 1);
        char want[32];
        snprintf(want, sizeof want, "u%llu", (unsigned long long)(mp_reader_lineno(r) - 2));
        CHECK(str_eq(rec.event.user, want));
        CHECK_EQ(rec.event.ts, 1700000000 + (int64_t)mp_reader_lineno(r) - 2);
        good++;
    }
    CHECK_EQ(good, n - n / 1000);
    CHECK_EQ(bad, n / 1000);
    mp_reader_close(r);
}
