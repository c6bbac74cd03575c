/* src/models/item_titles.h (private to src/models/): the copy of item titles a model keeps so its explanations
 * can name items ("because you bought "Rose Hand Cream""), and how it is stored in model files:
 * u32 flag (0: no titles, 1: titles follow) then one string per item (absent entries written as absent). */
#ifndef MAGPIE_MODELS_ITEM_TITLES_H
#define MAGPIE_MODELS_ITEM_TITLES_H

#include <stdint.h>

#include "magpie/modelfile.h"

#define MP_ITEM_TITLE_MAX 4096 /* longer titles are cut; also the bound checked when loading */

/* Copies titles[0..n) into a malloc'ed array of malloc'ed strings (empty and NULL entries stay NULL).
 * Returns MP_OK with *out NULL when titles is NULL, MP_ENOMEM on failure. Free with mp_item_titles_free. */
int mp_item_titles_copy(const char *const *titles, uint32_t n, char ***out);
/* Frees the array and its strings; NULL is a no-op. */
void mp_item_titles_free(char **titles, uint32_t n);
/* Grows an array to new_n entries (new ones NULL); *titles NULL stays NULL. MP_OK or MP_ENOMEM (the array is
 * unchanged then). */
int mp_item_titles_grow(char ***titles, uint32_t old_n, uint32_t new_n);
void mp_item_titles_save(mp_mf_writer *w, char *const *titles, uint32_t n);
/* Reads what mp_item_titles_save wrote; `model` names the model in messages. *out is NULL when the file has none. */
int mp_item_titles_load(mp_mf_reader *r, char ***out, uint32_t n, const char *model, mp_error *err);

#endif
