/* src/eval/report.c: evaluation results as a markdown table or JSON. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "magpie/buf.h"
#include "magpie/eval.h"
#include "magpie/json.h"

static int sb_finish(mp_buf *b, char **out) {
    *out = mp_buf_take(b, NULL);
    return *out ? MP_OK : MP_ENOMEM;
}

/* A metric cell: 4 decimals or "n/a". */
static void sb_num(mp_buf *b, double v, const char *fmt) {
    if (isnan(v) || isinf(v)) mp_buf_printf(b, "n/a");
    else mp_buf_printf(b, fmt, v);
}

static const char *history_text(mp_history_mode m) {
    switch (m) {
    case MP_HISTORY_EXCLUDE: return "exclude (history items are not ranked)";
    case MP_HISTORY_ZERO: return "zero (history items scored 0 and still ranked, as the S3-Rec code)";
    case MP_HISTORY_KEEP: return "keep (history items ranked as scored)";
    }
    return "?";
}

int mp_eval_result_table(const mp_eval_result *r, const char *title, char **out) {
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_printf(&b, "## %s%s\n\n", r->sampled ? "SAMPLED: " : "", title ? title : "evaluation");
    if (r->sampled)
        mp_buf_printf(&b,
                      "ranking: **SAMPLED**, each user's targets vs %u sampled negatives (not comparable with "
                      "full-ranking numbers)\n",
                      r->sampled_negatives);
    else mp_buf_printf(&b, "ranking: full, over all %u items\n", r->n_items);
    mp_buf_printf(&b, "history: %s\n", history_text(r->history));
    mp_buf_printf(&b, "users: %llu evaluated (cold %llu, warm %llu)", (unsigned long long)r->overall.n_users,
                  (unsigned long long)r->cold.n_users, (unsigned long long)r->warm.n_users);
    if (r->n_skipped)
        mp_buf_printf(&b, "; %llu skipped (all their test items were already in their history)",
                      (unsigned long long)r->n_skipped);
    mp_buf_printf(&b, "\n\n");
    mp_buf_printf(&b, "| group | k | HR | Precision | Recall | NDCG | MAP | MRR | Coverage | Novelty | ILD | Gini |\n");
    mp_buf_printf(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    const mp_eval_group *gs[3] = {&r->overall, &r->cold, &r->warm};
    const char *names[3] = {"overall", "cold", "warm"};
    for (int g = 0; g < 3; g++) {
        if (g > 0 && gs[g]->n_users == 0) continue;
        for (size_t k = 0; k < r->n_ks; k++) {
            const mp_topk_metrics *t = &gs[g]->at[k];
            mp_buf_printf(&b, "| %s | %u | ", names[g], r->ks[k]);
            double v[10] = {t->hr, t->precision, t->recall, t->ndcg, t->map, t->mrr, t->coverage, t->novelty, t->ild,
                            t->gini};
            for (int i = 0; i < 10; i++) {
                sb_num(&b, v[i], i == 7 ? "%.3f" : "%.4f");
                mp_buf_printf(&b, i < 9 ? " | " : " |\n");
            }
        }
    }
    mp_buf_printf(&b, "\n| group | users | AUC | ratings | RMSE | MAE |\n|---|---:|---:|---:|---:|---:|\n");
    for (int g = 0; g < 3; g++) {
        if (g > 0 && gs[g]->n_users == 0) continue;
        mp_buf_printf(&b, "| %s | %llu | ", names[g], (unsigned long long)gs[g]->n_users);
        sb_num(&b, gs[g]->auc, "%.4f");
        mp_buf_printf(&b, " | %llu | ", (unsigned long long)gs[g]->n_ratings);
        sb_num(&b, gs[g]->rmse, "%.4f");
        mp_buf_printf(&b, " | ");
        sb_num(&b, gs[g]->mae, "%.4f");
        mp_buf_printf(&b, " |\n");
    }
    return sb_finish(&b, out);
}

static void sb_json_str(mp_buf *b, const char *s) { mp_json_put_cstr(b, s ? s : ""); }

static void sb_json_num(mp_buf *b, double v) {
    if (isnan(v) || isinf(v)) mp_buf_printf(b, "null");
    else mp_buf_printf(b, "%.10g", v);
}

int mp_eval_result_json(const mp_eval_result *r, const char *title, char **out) {
    mp_buf b;
    mp_buf_init(&b);
    mp_buf_printf(&b, "{\"title\":");
    sb_json_str(&b, title ? title : "evaluation");
    mp_buf_printf(&b,
                  ",\"sampled\":%s,\"sampled_negatives\":%u,\"history\":\"%s\",\"n_items\":%u,\"skipped_users\":%llu",
                  r->sampled ? "true" : "false", r->sampled_negatives, mp_history_mode_name(r->history), r->n_items,
                  (unsigned long long)r->n_skipped);
    mp_buf_printf(&b, ",\"ks\":[");
    for (size_t k = 0; k < r->n_ks; k++) mp_buf_printf(&b, "%s%u", k ? "," : "", r->ks[k]);
    mp_buf_printf(&b, "],\"groups\":{");
    const mp_eval_group *gs[3] = {&r->overall, &r->cold, &r->warm};
    const char *names[3] = {"overall", "cold", "warm"};
    for (int g = 0; g < 3; g++) {
        const mp_eval_group *G = gs[g];
        mp_buf_printf(&b, "%s\"%s\":{\"users\":%llu,\"auc\":", g ? "," : "", names[g], (unsigned long long)G->n_users);
        sb_json_num(&b, G->auc);
        mp_buf_printf(&b, ",\"ratings\":%llu,\"rmse\":", (unsigned long long)G->n_ratings);
        sb_json_num(&b, G->rmse);
        mp_buf_printf(&b, ",\"mae\":");
        sb_json_num(&b, G->mae);
        mp_buf_printf(&b, ",\"at\":{");
        for (size_t k = 0; k < r->n_ks; k++) {
            const mp_topk_metrics *t = &G->at[k];
            const char *keys[10] = {"hr", "precision", "recall", "ndcg", "map",
                                    "mrr", "coverage", "novelty", "ild", "gini"};
            double v[10] = {t->hr, t->precision, t->recall, t->ndcg, t->map, t->mrr, t->coverage, t->novelty, t->ild,
                            t->gini};
            mp_buf_printf(&b, "%s\"%u\":{", k ? "," : "", r->ks[k]);
            for (int i = 0; i < 10; i++) {
                mp_buf_printf(&b, "%s\"%s\":", i ? "," : "", keys[i]);
                sb_json_num(&b, v[i]);
            }
            mp_buf_printf(&b, "}");
        }
        mp_buf_printf(&b, "}}");
    }
    mp_buf_printf(&b, "}}\n");
    return sb_finish(&b, out);
}
