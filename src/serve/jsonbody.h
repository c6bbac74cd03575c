/* src/serve/jsonbody.h: one table-driven decoder for the JSON object bodies of `magpie serve` requests
 * (POST /v1/recommend, /v1/feedback, /v1/embeddings), not an API. Record bodies (events, items, users) go through
 * decode.h instead, with the validation of `magpie import`.
 *
 * A handler describes its body once, as a table of fields (name, type, where the value goes in the handler's
 * struct, required or not, bounds), and gets back either the filled struct or one error that names the field and
 * says why, in the words clients have always been given:
 *   body: expected a JSON object {...}          (empty body, or not an object: 400, no field)
 *   body: malformed JSON: <reason>              (400, no field)
 *   unknown field `x` (known: a, b, c)          (400, field x; the list is the table's order)
 *   field `n` must be an integer from 1 to 100  (a wrong type or a value out of bounds: the field's status)
 *   missing required field `a` <hint>           (400, field a; the first missing one in table order)
 * A key given twice is read twice (the later value wins, or a custom reader sees both).
 *
 * Ownership: the jbody_result owns a scratch copy of the body's decoded strings, which custom readers may keep
 * pointers into (textapi.c keeps the input texts there): free it with jbody_result_free after the last use.
 * Thread-safety: reentrant; tables are constant or the caller's. */
#ifndef MAGPIE_SERVE_JSONBODY_H
#define MAGPIE_SERVE_JSONBODY_H

#include <stddef.h>
#include <stdint.h>

#include "magpie/json.h"

typedef enum jbody_type {
    JBODY_STRING, /* char[cap] at offset, copied and NUL-terminated; length from lo (0 or 1) to cap - 1 bytes (the
                   * JSON parser refuses \u0000, so the copy is the whole string) */
    JBODY_INT,    /* long at offset: an integer (no fraction or exponent) from lo to hi */
    JBODY_NUMBER, /* double at offset: a finite number from lo to hi */
    JBODY_BOOL,   /* int at offset: true 1, false 0 */
    JBODY_ENUM,   /* int at offset: the index in choices of the string given */
    JBODY_ANY,    /* any value, accepted and ignored */
    JBODY_CUSTOM, /* read by the field's own reader (arrays, values of several types) */
} jbody_type;

/* jbody_field.flags */
enum {
    JBODY_REQUIRED = 1,    /* absent: "missing required field" */
    JBODY_NULLABLE = 2,    /* null accepted, leaving the destination as it was */
    JBODY_BOOL_NUMBER = 4, /* JBODY_NUMBER also takes true / false as 1 / 0 */
};

/* The one error of a refused body. */
typedef struct jbody_error {
    int status;     /* HTTP status: 400, 422 (a field's own), 500 (out of memory) */
    char field[32]; /* the field to blame (a key is cut to 31 bytes), or "" */
    char why[512];  /* the message for the client */
} jbody_error;

typedef struct jbody_field jbody_field;
/* A custom reader: consumes the value at cur (scratch as in mp_json_string) into dst (the field's place in the
 * handler's struct). Returns 0, or an HTTP status with e->why filled (e->field is already the key). */
typedef int (*jbody_reader)(mp_json_cur *cur, char **scratch, void *dst, const jbody_field *f, jbody_error *e);

struct jbody_field {
    const char *name;
    jbody_type type;
    size_t offset;              /* of the destination in the handler's struct */
    unsigned flags;             /* JBODY_REQUIRED, ... */
    double lo, hi;              /* INT / NUMBER: bounds (inclusive); STRING: lo is the minimum length; CUSTOM: the
                                 * reader's to use (e.g. a count limit) */
    size_t cap;                 /* STRING: size of the char array (room for the NUL) */
    const char *const *choices; /* ENUM: the accepted strings, NULL-terminated */
    const char *why;            /* what follows "field `NAME` " when the value is refused; NULL: the type's own
                                 * ("must be an integer from 1 to 100") */
    int status;                 /* status of a refused value; 0: 400 */
    jbody_reader read;          /* CUSTOM */
};

typedef struct jbody_spec {
    const jbody_field *fields;
    size_t n_fields; /* at most 64 */
    const char *expected;     /* the message for an empty body, and (unless not_object) for one not an object */
    const char *not_object;   /* NULL: expected */
    const char *missing_hint; /* follows "missing required field `x` " */
} jbody_spec;

typedef struct jbody_result {
    uint64_t seen;      /* bit i: fields[i] was in the body */
    char *scratch_mem_; /* private: the scratch buffer */
} jbody_result;

/* Decodes body[0..len) (need not be NUL-terminated) into out by spec. Returns 0, or an HTTP status with *e
 * filled (out may then be partly written: free what the readers allocated). *res is overwritten; free it with
 * jbody_result_free in both cases. */
int jbody_decode(const jbody_spec *spec, const char *body, size_t len, void *out, jbody_result *res, jbody_error *e);
/* 1 when the field called name was in the body. */
int jbody_seen(const jbody_spec *spec, const jbody_result *res, const char *name);
void jbody_result_free(jbody_result *res);

#endif
