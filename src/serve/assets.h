/* src/serve/assets.h: the dashboard's static files (web/) and docs/openapi.yaml, embedded in the binary at build
 * time. */
#ifndef MAGPIE_SERVE_ASSETS_H
#define MAGPIE_SERVE_ASSETS_H

#include <stddef.h>

typedef struct mp_asset {
    const char *name;         /* "index.html" */
    const char *content_type; /* "text/html; charset=utf-8" */
    const unsigned char *data;
    size_t len;
} mp_asset;

/* Fills *out with the asset called `name` and returns 1, or returns 0. */
int mp_asset_find(const char *name, mp_asset *out);

#endif
