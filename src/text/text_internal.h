/* src/text/text_internal.h: character classes and vocabulary-file helpers shared by the text module. */
#ifndef MAGPIE_TEXT_INTERNAL_H
#define MAGPIE_TEXT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "magpie/error.h"

typedef enum {
    TXT_SPACE = 0, /* whitespace and control characters */
    TXT_PUNCT,     /* punctuation and symbols that separate words */
    TXT_ALNUM,     /* letters and digits of non-CJK scripts */
    TXT_CJK,       /* Han ideographs, kana, hangul */
    TXT_SYMBOL,    /* emoji and pictographs: tokens of their own */
    TXT_IGNORE,    /* joiners and variation selectors: dropped */
} txt_class;

txt_class txt_char_class(uint32_t cp);

/* Reads a whole file into a new buffer (caller frees). MP_EIO naming the path on failure. */
int txt_read_file(const char *path, char **data, size_t *len, mp_error *err);

/* Next line of data[*pos..len) without its "\n" or "\r\n"; returns 0 at the end. A final line without '\n' counts;
 * the empty remainder after a final '\n' does not. */
static inline int txt_next_line(const char *data, size_t len, size_t *pos, const char **line, size_t *line_len) {
    if (*pos >= len) return 0;
    const char *start = data + *pos;
    const char *nl = memchr(start, '\n', len - *pos);
    size_t n = nl ? (size_t)(nl - start) : len - *pos;
    *pos += n + (nl ? 1 : 0);
    if (n > 0 && start[n - 1] == '\r') n--;
    *line = start;
    *line_len = n;
    return 1;
}
#endif
