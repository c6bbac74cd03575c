/* src/serve/config.h: the settings of `magpie serve`.
 *
 * One table (MP_SERVE_SETTINGS below) names every setting once: its key in the config file, its environment
 * variable, its command-line flag, its default and one line of help. Precedence, lowest first:
 *   defaults < config file (--config FILE or $MAGPIE_CONFIG) < environment (MAGPIE_*) < command-line flags.
 * The caller applies them in that order; each later mp_serve_config_set of a key replaces the earlier value.
 * Config file syntax: `key = value` lines; '#' starts a comment; blank lines ignored; values may be quoted with
 * "..." (then '#' inside is kept; escapes \" \\ \n \t). Unknown keys, bad values and duplicate keys are errors
 * naming file:line.
 * Key lists (read_keys, write_keys) are comma-separated; blanks around each key are dropped, empty entries
 * skipped; a key may not contain blanks, control characters or '"'.
 * Value forms: INT decimal within the setting's range (see --help); SIZE bytes with an optional binary unit
 * (k, m, g, t; "kb"/"kib" also accepted, any case): 1048576, 64k, 8m; DUR seconds or a number with ms, s, m, h
 * (decimals allowed when the result is whole milliseconds): 30, 500ms, 1.5s, 5m, 1h; BOOL true/false, 1/0,
 * yes/no, on/off (any case). */
#ifndef MAGPIE_SERVE_CONFIG_H
#define MAGPIE_SERVE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "magpie/error.h"
#include "magpie/explore.h"

/* X(field, type, key, default text, help). type: STR, INT (int64 with range), SIZE (bytes: 1048576, 1m, 64k),
 * BOOL (true/false/1/0/yes/no/on/off), KEYS (comma list), DUR (seconds: 30, 500ms, 2s, 5m, 1h; stored in ms).
 * The env var is MAGPIE_ + upper-cased key; the flag is --key with '_' written '-'. */
#define MP_SERVE_SETTINGS(X)                                                                                          \
    X(db, STR, "db", "magpie.db", "store to serve: SQLite file path or postgres:// URI (flag --store too)")          \
    X(model, STR, "model", "", "model file written by `magpie train` (empty: live popularity only)")                 \
    X(listen, STR, "listen", "127.0.0.1", "address to listen on (0.0.0.0 for all interfaces)")                       \
    X(port, INT, "port", "8080", "TCP port (0: pick a free one and print it)")                                       \
    X(threads, INT, "threads", "0", "HTTP worker threads (0: number of cores)")                                      \
    X(read_keys, KEYS, "read_keys", "", "API keys allowed to read (GET endpoints); empty with no write keys: no auth") \
    X(write_keys, KEYS, "write_keys", "", "API keys allowed to read, write and administer")                         \
    X(max_body, SIZE, "max_body", "8m", "largest request body accepted (413 above)")                                  \
    X(max_n, INT, "max_n", "1000", "largest n (items per response) accepted (400 above)")                           \
    X(max_batch, INT, "max_batch", "10000", "most records in one write request (413 above)")                        \
    X(request_timeout, DUR, "request_timeout", "10s", "longest a request body may take to arrive (408 after)")          \
    X(idle_timeout, DUR, "idle_timeout", "15s", "close connections idle (or dribbling) this long")                  \
    X(max_connections, INT, "max_connections", "1024", "connections served at once (more are refused)")             \
    X(reload_poll, DUR, "reload_poll", "2s", "check the model file this often and reload when it changes (0: off)")  \
    X(retrain_every, DUR, "retrain_every", "0", "retrain the model from the store this often (0: never)")           \
    X(retrain_args, STR, "retrain_args", "", "extra `magpie train` options for the scheduled retrain")             \
    X(ann, STR, "ann", "auto", "HNSW retrieval for factor models: auto (>= ann_min_items items), on, off")          \
    X(ann_min_items, INT, "ann_min_items", "50000", "item count from which `ann auto` builds an index")            \
    X(ann_m, INT, "ann_m", "16", "HNSW links per node")                                                             \
    X(ann_ef_construction, INT, "ann_ef_construction", "200", "HNSW build candidate list")                          \
    X(ann_ef_search, INT, "ann_ef_search", "64", "HNSW search candidate list (recall vs speed)")                    \
    X(access_log, BOOL, "access_log", "false", "log every request to stderr")                                       \
    X(dashboard, BOOL, "dashboard", "true", "serve the dashboard at /")                                             \
    X(encoder, STR, "encoder", "use-lite",                                                                           \
      "text encoder for search, /v1/embeddings and content models: use-lite, openai:MODEL@URL, none")               \
    X(embed_items, BOOL, "embed_items", "true", "embed catalog items without a cached vector in the background")   \
    X(bandit, STR, "bandit", "greedy",                                                                               \
      "re-ranking policy of /v1/recommend (magpie/bandit.h spec, e.g. egreedy:epsilon=0.1; greedy: no exploration)") \
    X(bandit_log, STR, "bandit_log", "", "append the JSONL serving log (for `magpie ope --format jsonl`) to this file") \
    X(bandit_ttl, DUR, "bandit_ttl", "1h", "how long a served list accepts feedback (POST /v1/feedback)")             \
    X(bandit_capacity, INT, "bandit_capacity", "100000", "served lists kept for feedback (oldest evicted)")        \
    X(bandit_pool, INT, "bandit_pool", "3", "the policy chooses n items out of n * bandit_pool model candidates")   \
    X(bandit_features, STR, "bandit_features", "auto",                                                              \
      "item vectors for linucb/ts: model (factors), text (embeddings), auto (model, else text), none")              \
    X(bandit_state, STR, "bandit_state", "",                                                                        \
      "directory where each variant's learned policy is saved (every bandit_save_every and at exit) and reloaded")  \
    X(bandit_save_every, DUR, "bandit_save_every", "5m", "how often learned policies are saved to bandit_state")    \
    X(fatigue_weight, STR, "fatigue_weight", "0", "score penalty per unclicked recent impression of an item (0: off)") \
    X(fatigue_half_life, DUR, "fatigue_half_life", "1h", "half-life of the fatigue of an impression")               \
    X(item_cap, INT, "item_cap", "0", "most impressions of an item per user in cap_window (0: no cap)")              \
    X(category_cap, INT, "category_cap", "0", "most impressions of a category per user in cap_window (0: no cap)")  \
    X(cap_window, DUR, "cap_window", "24h", "window of item_cap and category_cap")                                 \
    X(mmr_lambda, STR, "mmr_lambda", "1", "MMR diversity trade-off in [0,1] (1: relevance only, off)")              \
    X(novelty_weight, STR, "novelty_weight", "0", "score boost weight / log(e + popularity) (0: off)")            \
    X(shopper_users, INT, "shopper_users", "100000", "users whose recent impressions are kept (least recent dropped)") \
    X(price_min, STR, "price_min", "", "business rule: recommend only items priced at least this (per request: price_min=)") \
    X(price_max, STR, "price_max", "", "business rule: recommend only items priced at most this (per request: price_max=)") \
    X(ab_users, INT, "ab_users", "1000000", "users tracked per A/B variant for conversion counts (more: counted as untracked)") \
    X(ab_variants, STR, "ab_variants", "",                                                                          \
      "A/B variants NAME:WEIGHT:POLICY separated by ';' (e.g. control:50:greedy;explore:50:egreedy:epsilon=0.1)")   \
    X(ab_salt, STR, "ab_salt", "magpie", "salt of the A/B assignment hash (a new salt reshuffles users)")

typedef enum { MP_CFG_STR, MP_CFG_INT, MP_CFG_SIZE, MP_CFG_BOOL, MP_CFG_KEYS, MP_CFG_DUR } mp_cfg_type;

typedef struct mp_serve_config {
    char *db, *model, *listen, *retrain_args, *ann, *encoder;
    int64_t port, threads, max_n, max_batch, max_connections, ann_min_items, ann_m, ann_ef_construction,
        ann_ef_search;
    /* bandit re-ranking, shopper protection and A/B variants (magpie/explore.h via mp_serve_config_explore_opts);
     * floats kept as text and checked by mp_serve_config_validate */
    char *bandit, *bandit_log, *fatigue_weight, *mmr_lambda, *novelty_weight, *ab_variants, *ab_salt;
    char *bandit_features, *bandit_state, *price_min, *price_max;
    int64_t bandit_capacity, bandit_pool, item_cap, category_cap, shopper_users, ab_users;
    int64_t bandit_ttl, fatigue_half_life, cap_window, bandit_save_every; /* milliseconds */
    uint64_t max_body;
    int64_t request_timeout, idle_timeout, reload_poll, retrain_every; /* milliseconds */
    int access_log, dashboard, embed_items;
    char **read_keys, **write_keys; /* NULL-terminated lists */
    size_t n_read_keys, n_write_keys;
    /* where each setting's value came from, for `magpie serve --print-config`: "default", "PATH:LINE" (config
     * file), "env" or what the caller passed to mp_serve_config_set ("flag"); index = position in
     * MP_SERVE_SETTINGS. Owned copies (freed by mp_serve_config_free): do not copy the struct by value. */
    const char *origin[64];
} mp_serve_config;

/* Fills defaults (origin "default"). Free with mp_serve_config_free (owns every string), also after an error. */
MP_EXPORT int mp_serve_config_init(mp_serve_config *c, mp_error *err);
MP_EXPORT void mp_serve_config_free(mp_serve_config *c);
/* Sets one setting by key ("max_body") from text; `origin` ("flag", ...) is copied and kept for --print-config.
 * Blanks around non-string values are ignored. Unknown key or bad value (INT out of its range included):
 * MP_EINVAL naming both and the expected form, and the setting keeps its previous value. MP_ENOMEM. */
MP_EXPORT int mp_serve_config_set(mp_serve_config *c, const char *key, const char *value, const char *origin,
                                  mp_error *err);
/* Reads a config file (syntax above); a UTF-8 BOM and CRLF line ends are accepted. Errors name path:line
 * (MP_EINVAL), or the path and the system's reason when it cannot be read (MP_EIO). Settings of lines before a
 * bad line stay applied: treat any error as fatal. */
MP_EXPORT int mp_serve_config_load_file(mp_serve_config *c, const char *path, mp_error *err);
/* Applies MAGPIE_<KEY> variables from envp (NULL-terminated "K=V" strings, e.g. environ), origin "env". Other
 * MAGPIE_* variables (MAGPIE_CONFIG, ...) are ignored. Bad values: MP_EINVAL naming the variable. */
MP_EXPORT int mp_serve_config_apply_env(mp_serve_config *c, char *const *envp, mp_error *err);
/* Checks cross-setting rules (port range, positive limits, ann value) after everything is applied. */
MP_EXPORT int mp_serve_config_validate(const mp_serve_config *c, mp_error *err);
/* Writes the settings table for --help: flag, env var, default, help (wrapped at 110 columns). */
MP_EXPORT void mp_serve_config_help(FILE *f);
/* Writes the effective settings as a config file (keys redacted as "***"), with origins as comments. */
MP_EXPORT void mp_serve_config_print(const mp_serve_config *c, FILE *f);
/* Maps a flag name without dashes ("max-body"; "max_body" also accepted) to its key ("max_body"); NULL if no
 * such setting; "store" is another name of "db". Static. */
MP_EXPORT const char *mp_serve_config_key_of_flag(const char *flag);
/* 1 if `key` names a BOOL setting (so a flag may stand alone: `--access-log` means true), else 0. */
MP_EXPORT int mp_serve_config_is_bool(const char *key);

/* The exploration settings (bandit*, fatigue_*, item_cap, category_cap, cap_window, mmr_lambda, novelty_weight,
 * shopper_users, price_min, price_max, ab_*) as the live module's explore options (magpie/explore.h). The strings
 * in *o are borrowed from c; seed and warn are left at their defaults for the caller. MP_EINVAL naming the setting
 * ("setting `ab_variants`: variant `a` is named twice"). Called by mp_serve_config_validate. */
MP_EXPORT int mp_serve_config_explore_opts(const mp_serve_config *c, mp_explore_opts *o, mp_error *err);

/* Per-request business rules (NAN: the config's price_min / price_max). */
typedef struct mp_serve_rules {
    double price_min, price_max;
} mp_serve_rules;
/* Parses a price bound ("" or NULL -> NAN; else a finite number >= 0). -1 when malformed. */
int mp_serve_parse_price(const char *s, double *out);

/* Constant-time comparison of a presented key with a configured one: the time depends only on the length of the
 * presented key, never on where the first difference is or on the configured key. 1 if equal, else 0. An empty
 * or NULL configured key never matches (not even an empty presented one). presented may hold any bytes. */
MP_EXPORT int mp_serve_key_equal(const char *presented, size_t presented_len, const char *configured);

#endif
