/* The table-driven decoder of JSON request bodies (src/serve/jsonbody.h): each type, its bounds, unknown and
 * missing fields, and the exact messages clients get. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "serve/jsonbody.h"
#include "test.h"

typedef struct sample {
    char name[8];
    long count;
    double price;
    int flag, format;
    char tag[16];
    int n_custom;
} sample;

/* counts the elements of an array (a custom reader); f->hi: at most that many */
static int read_count(mp_json_cur *cur, char **scratch, void *dst, const jbody_field *f, jbody_error *e) {
    (void)scratch;
    if (mp_json_peek(cur) != MP_JSON_ARRAY || mp_json_array_begin(cur) != MP_OK) {
        snprintf(e->why, sizeof e->why, "field `%s` must be an array", f->name);
        return 400;
    }
    for (;;) {
        int done;
        if (mp_json_array_next(cur, &done) != MP_OK) return 400;
        if (done) return 0;
        if (mp_json_skip(cur, NULL) != MP_OK) return 400;
        if (++*(int *)dst > (int)f->hi) {
            snprintf(e->why, sizeof e->why, "field `%s`: at most %d elements", f->name, (int)f->hi);
            return 422;
        }
    }
}

static const char *const formats[] = {"float", "base64", "hex", NULL};
static const jbody_field fields[] = {
    {.name = "name", .type = JBODY_STRING, .offset = offsetof(sample, name), .flags = JBODY_REQUIRED,
     .lo = 1, .cap = 8},
    {.name = "count", .type = JBODY_INT, .offset = offsetof(sample, count), .lo = 1, .hi = 100},
    {.name = "price", .type = JBODY_NUMBER, .offset = offsetof(sample, price), .flags = JBODY_BOOL_NUMBER,
     .lo = 0, .hi = INFINITY, .why = "must be a price (a number >= 0)", .status = 422},
    {.name = "flag", .type = JBODY_BOOL, .offset = offsetof(sample, flag), .flags = JBODY_REQUIRED},
    {.name = "format", .type = JBODY_ENUM, .offset = offsetof(sample, format), .choices = formats},
    {.name = "tag", .type = JBODY_STRING, .offset = offsetof(sample, tag), .flags = JBODY_NULLABLE, .cap = 16},
    {.name = "list", .type = JBODY_CUSTOM, .offset = offsetof(sample, n_custom), .hi = 3, .read = read_count},
    {.name = "note", .type = JBODY_ANY},
};
static const jbody_spec spec = {fields, sizeof fields / sizeof fields[0], "body: expected a JSON object {\"name\"}",
                                "body: not an object", "(body: {\"name\", \"flag\"})"};

/* Decodes text; returns the status and leaves the message and field in *e, the values in *s. */
static int run(const char *text, sample *s, jbody_error *e, uint64_t *seen) {
    memset(s, 0, sizeof *s);
    strcpy(s->tag, "keep");
    jbody_result res;
    int st = jbody_decode(&spec, text, strlen(text), s, &res, e);
    if (seen) *seen = res.seen;
    jbody_result_free(&res);
    return st;
}

#define REFUSED(text_, status_, field_, why_)                                                                          \
    do {                                                                                                               \
        CHECK_EQ(run(text_, &s, &e, NULL), status_);                                                                   \
        CHECK_MSG(!strcmp(e.field, field_), "%s: field \"%s\", want \"%s\"", text_, e.field, field_);                  \
        CHECK_MSG(!strcmp(e.why, why_), "%s: \"%s\", want \"%s\"", text_, e.why, why_);                                \
    } while (0)

MP_TEST(servejsonbody_types_and_values) {
    sample s;
    jbody_error e;
    uint64_t seen = 0;
    CHECK_EQ(run("{\"name\":\"ab\",\"flag\":true,\"count\":100,\"price\":2.5,\"format\":\"hex\",\"tag\":null,"
                 "\"list\":[1,[2],{}],\"note\":{\"x\":[1,2]}}",
                 &s, &e, &seen),
             0);
    CHECK(!strcmp(s.name, "ab") && s.flag == 1 && s.count == 100 && s.price == 2.5 && s.format == 2);
    CHECK(!strcmp(s.tag, "keep")); /* null leaves a nullable field as it was */
    CHECK_EQ(s.n_custom, 3);
    CHECK_EQ(seen, 0xff);
    CHECK(e.field[0] == 0);
    /* booleans as numbers, escapes decoded, the later of two keys wins */
    CHECK_EQ(run("{\"flag\":false,\"price\":true,\"name\":\"x\",\"name\":\"\\u00e9t\\u00e9\"}", &s, &e, &seen), 0);
    CHECK(s.price == 1 && s.flag == 0 && !strcmp(s.name, "\xc3\xa9t\xc3\xa9"));
    CHECK_EQ(seen, 0x0d);
    jbody_result res;
    sample s2;
    memset(&s2, 0, sizeof s2);
    CHECK_EQ(jbody_decode(&spec, "{\"name\":\"a\",\"flag\":true,\"count\":5}", 34, &s2, &res, &e), 0);
    CHECK(jbody_seen(&spec, &res, "count") && !jbody_seen(&spec, &res, "price") && !jbody_seen(&spec, &res, "nope"));
    jbody_result_free(&res);
    jbody_result_free(&res); /* twice is harmless */
}

MP_TEST(servejsonbody_unknown_field_lists_the_table) {
    sample s;
    jbody_error e;
    REFUSED("{\"name\":\"a\",\"colour\":1}", 400, "colour",
            "unknown field `colour` (known: name, count, price, flag, format, tag, list, note)");
    /* a long key is named by its first 31 bytes */
    REFUSED("{\"abcdefghijklmnopqrstuvwxyz0123456789\":1}", 400, "abcdefghijklmnopqrstuvwxyz01234",
            "unknown field `abcdefghijklmnopqrstuvwxyz01234` (known: name, count, price, flag, format, tag, list, "
            "note)");
}

MP_TEST(servejsonbody_wrong_types) {
    sample s;
    jbody_error e;
    REFUSED("{\"name\":5}", 400, "name", "field `name` must be a non-empty string of at most 7 bytes");
    REFUSED("{\"count\":\"5\"}", 400, "count", "field `count` must be an integer from 1 to 100");
    REFUSED("{\"count\":5.5}", 400, "count", "field `count` must be an integer from 1 to 100");
    REFUSED("{\"flag\":1}", 400, "flag", "field `flag` must be true or false");
    REFUSED("{\"price\":\"1\"}", 422, "price", "field `price` must be a price (a number >= 0)");
    REFUSED("{\"format\":1}", 400, "format", "field `format` must be \"float\", \"base64\" or \"hex\"");
    REFUSED("{\"format\":\"octal\"}", 400, "format", "field `format` must be \"float\", \"base64\" or \"hex\"");
    REFUSED("{\"tag\":[]}", 400, "tag", "field `tag` must be a string of at most 15 bytes");
    REFUSED("{\"name\":null}", 400, "name", "field `name` must be a non-empty string of at most 7 bytes");
    REFUSED("{\"list\":{}}", 400, "list", "field `list` must be an array");
}

MP_TEST(servejsonbody_bounds) {
    sample s;
    jbody_error e;
    REFUSED("{\"count\":0}", 400, "count", "field `count` must be an integer from 1 to 100");
    REFUSED("{\"count\":101}", 400, "count", "field `count` must be an integer from 1 to 100");
    REFUSED("{\"price\":-0.5}", 422, "price", "field `price` must be a price (a number >= 0)");
    REFUSED("{\"price\":1e999}", 422, "price", "field `price` must be a price (a number >= 0)");
    REFUSED("{\"name\":\"\"}", 400, "name", "field `name` must be a non-empty string of at most 7 bytes");
    REFUSED("{\"name\":\"12345678\"}", 400, "name", "field `name` must be a non-empty string of at most 7 bytes");
    CHECK_EQ(run("{\"name\":\"a\\u0000b\"}", &s, &e, NULL), 400); /* refused with the body, by the parser */
    REFUSED("{\"list\":[1,2,3,4]}", 422, "list", "field `list`: at most 3 elements");
    CHECK_EQ(run("{\"name\":\"1234567\",\"flag\":true,\"count\":1,\"tag\":\"\"}", &s, &e, NULL), 0);
    CHECK(!strcmp(s.name, "1234567") && s.count == 1 && s.tag[0] == 0);
}

MP_TEST(servejsonbody_missing_required_and_shape) {
    sample s;
    jbody_error e;
    REFUSED("{}", 400, "name", "missing required field `name` (body: {\"name\", \"flag\"})");
    REFUSED("{\"name\":\"a\"}", 400, "flag", "missing required field `flag` (body: {\"name\", \"flag\"})");
    REFUSED("", 400, "", "body: expected a JSON object {\"name\"}");
    REFUSED("[1]", 400, "", "body: not an object");
    REFUSED("\"name\"", 400, "", "body: not an object");
    CHECK_EQ(run("{\"name\":", &s, &e, NULL), 400);
    CHECK(!strncmp(e.why, "body: malformed JSON: ", 22) && e.field[0] == 0);
    CHECK_EQ(run("{\"name\":\"a\"} x", &s, &e, NULL), 400);
    CHECK(!strncmp(e.why, "body: malformed JSON: ", 22));
    /* the first problem wins: a bad value before a missing field */
    REFUSED("{\"count\":0}", 400, "count", "field `count` must be an integer from 1 to 100");
}
