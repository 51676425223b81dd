/* Reads and writes per-channel rate-limit overrides, each the override of
 * one tenant's channel (decision 0011): a tenant that takes over a deleted
 * channel id does not inherit the former owner's. The in-memory limiter is
 * the one that counts; this table is what survives restarts and what other
 * replicas converge on. */
#include "channel_limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

static long long text_ll(const char *s)
{
    char *end = NULL;
    long long v = s ? strtoll(s, &end, 10) : 0;
    return end && *end == '\0' ? v : -1;
}

int channel_limits_load(struct db *db, struct sender_limit_row **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    struct db_result *r = NULL;
    enum db_status st = db_exec(db,
                                "SELECT channel_id, class, rate_limit::text, period_s::text, "
                                "burst::text, tenant_id FROM channel_limits "
                                "ORDER BY channel_id, class, tenant_id",
                                0, NULL, &r);
    if (st != DB_OK)
        return st;
    int total = db_result_rows(r);
    struct sender_limit_row *out = calloc(total > 0 ? (size_t)total : 1, sizeof *out);
    if (!out) {
        db_result_free(&r);
        return DB_FATAL;
    }
    size_t k = 0;
    for (int i = 0; i < total; i++) {
        int cls = ratelimit_class_parse(db_result_value(r, i, 1));
        const char *id = db_result_value(r, i, 0);
        const char *tenant = db_result_value(r, i, 5);
        if (cls < 0 || strlen(id) > CHANNEL_ID_MAX || strlen(tenant) >= sizeof out[k].tenant_id)
            continue;
        snprintf(out[k].channel_id, sizeof out[k].channel_id, "%s", id);
        snprintf(out[k].tenant_id, sizeof out[k].tenant_id, "%s", tenant);
        out[k].cls = (enum ratelimit_class)cls;
        out[k].rate.limit = (long)text_ll(db_result_value(r, i, 2));
        out[k].rate.period_s = (long)text_ll(db_result_value(r, i, 3));
        out[k].rate.burst = (long)text_ll(db_result_value(r, i, 4));
        k++;
    }
    db_result_free(&r);
    *rows = out;
    *n = k;
    return DB_OK;
}

int channel_limits_save(struct db *db, const char *channel_id, const char *tenant_id,
                        enum ratelimit_class cls, const struct ratelimit_rate *rate)
{
    const char *name = ratelimit_class_name(cls);
    if (!rate) {
        const char *values[] = {channel_id, name, tenant_id};
        return db_exec(db,
                       "DELETE FROM channel_limits WHERE channel_id = $1 AND class = $2 "
                       "AND tenant_id = $3",
                       3, values, NULL);
    }
    char limit[24], period[24], burst[24];
    snprintf(limit, sizeof limit, "%ld", rate->limit);
    snprintf(period, sizeof period, "%ld", rate->period_s);
    snprintf(burst, sizeof burst, "%ld", rate->burst);
    const char *values[] = {channel_id, tenant_id, name, limit, period, burst};
    return db_exec(db,
                   "INSERT INTO channel_limits (channel_id, tenant_id, class, rate_limit, "
                   "period_s, burst) VALUES ($1, $2, $3, $4::bigint, $5::bigint, $6::bigint) "
                   "ON CONFLICT (tenant_id, channel_id, class) DO UPDATE SET "
                   "rate_limit = EXCLUDED.rate_limit, period_s = EXCLUDED.period_s, "
                   "burst = EXCLUDED.burst, updated_at = now()",
                   6, values, NULL);
}
