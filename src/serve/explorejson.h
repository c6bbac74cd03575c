/* src/serve/explorejson.h: the JSON, Prometheus and CSV text of the live module's explore state (magpie/explore.h)
 * for /v1/stats, /metrics and /v1/abtest. The state and its decisions are the live module's; this is only the
 * server's rendering of mp_explore_stats_get and mp_explore_users_each. Each call appends to b (errors stick in b,
 * see magpie/buf.h) and may run from any thread. */
#ifndef MAGPIE_SERVE_EXPLOREJSON_H
#define MAGPIE_SERVE_EXPLOREJSON_H

#include "magpie/buf.h"
#include "magpie/explore.h"
#include "magpie/json.h"

/* Appends ,"bandit":{...} (policy, features, per-variant counters) to a /v1/stats object being written. NULL x:
 * nothing. */
void mp_serve_explore_stats_json(mp_explore *x, mp_buf *b);
/* Appends the per-variant Prometheus series (magpie_ab_*, magpie_bandit_events_held). NULL x: nothing. */
void mp_serve_explore_metrics(mp_explore *x, mp_buf *b);
/* GET /v1/abtest: the per-variant users / conversions / purchases and each variant's comparison with the first
 * (mp_abtest_compare, bootstrap off) as a JSON object. */
void mp_serve_explore_abtest_json(mp_explore *x, mp_buf *b);
/* The per-user rows "variant,user,converted,value" (header first; user as 16 hex digits of its hash; value =
 * purchases) that `magpie abtest --csv` reads. */
void mp_serve_explore_abtest_csv(mp_explore *x, mp_buf *b);

#endif
