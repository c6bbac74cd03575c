/* src/serve/assets.c: embeds web/index.html, web/dashboard.js, web/dashboard.css and the API's description
 * docs/openapi.yaml with the assembler's .incbin (no build step, no generated files; the Makefile makes this
 * object depend on them). */
#include "serve/assets.h"

#include <string.h>

#define MP_EMBED(sym, file)                                                                                           \
    __asm__(".section .rodata\n"                                                                                      \
            ".global " #sym "_start\n"                                                                                \
            ".balign 16\n" #sym "_start:\n"                                                                           \
            ".incbin \"" file "\"\n"                                                                                  \
            ".global " #sym "_end\n" #sym "_end:\n"                                                                   \
            ".byte 0\n"                                                                                               \
            ".previous\n");                                                                                           \
    extern const unsigned char sym##_start[], sym##_end[]

MP_EMBED(mp_web_index, "web/index.html");
MP_EMBED(mp_web_js, "web/dashboard.js");
MP_EMBED(mp_web_css, "web/dashboard.css");
MP_EMBED(mp_openapi, "docs/openapi.yaml");

int mp_asset_find(const char *name, mp_asset *out) {
    const mp_asset table[] = {
        {"index.html", "text/html; charset=utf-8", mp_web_index_start, (size_t)(mp_web_index_end - mp_web_index_start)},
        {"dashboard.js", "text/javascript; charset=utf-8", mp_web_js_start, (size_t)(mp_web_js_end - mp_web_js_start)},
        {"dashboard.css", "text/css; charset=utf-8", mp_web_css_start, (size_t)(mp_web_css_end - mp_web_css_start)},
        {"openapi.yaml", "application/yaml; charset=utf-8", mp_openapi_start, (size_t)(mp_openapi_end - mp_openapi_start)},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(table[i].name, name)) {
            *out = table[i];
            return 1;
        }
    return 0;
}
