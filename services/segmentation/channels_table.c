/* The `channels` consumer (channels_table.h): each ChannelConfig snapshot
 * upserts its row when its version is newer than the stored one. */
#include "channels_table.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "consumer.h"
#include "db.h"
#include "kafka.h"
#include "kizuna/v1/channel.pb-c.h"
#include "log.h"
#include "metrics.h"

#define CHANNELS_TABLE_NAME "segmentation-channels"
#define CHANNELS_TABLE_DEFAULT_TZ "Asia/Tokyo"

static struct metric *channels_applied; /* kizuna_segmentation_channel_records_total{result} */

/* Copies src into dst (cap bytes) when it fits and is printable ASCII. */
static int copy_id(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)src[i] < 0x21 || (unsigned char)src[i] > 0x7e)
            return -1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

int channels_table_parse(const struct kafka_message *msg, struct channels_table_row *row,
                         const char **reason)
{
    memset(row, 0, sizeof *row);
    if (msg->key && msg->keylen > 0 &&
        copy_id(row->channel_id, sizeof row->channel_id, msg->key, msg->keylen) != 0) {
        *reason = "bad_channel_id";
        return -1;
    }
    if (!msg->value || msg->len == 0) {
        if (!row->channel_id[0]) {
            *reason = "no_channel_id";
            return -1;
        }
        row->tombstone = true;
        row->deleted = true;
        return 0;
    }
    Kizuna__V1__ChannelConfig *cfg =
        kizuna__v1__channel_config__unpack(NULL, msg->len, (const uint8_t *)msg->value);
    if (!cfg) {
        *reason = "bad_payload";
        return -1;
    }
    int rc = -1;
    const char *cid = cfg->channel_id && cfg->channel_id[0] ? cfg->channel_id : row->channel_id;
    if (!cid[0]) {
        *reason = "no_channel_id";
        goto done;
    }
    if (cid != row->channel_id &&
        copy_id(row->channel_id, sizeof row->channel_id, cid, strlen(cid)) != 0) {
        *reason = "bad_channel_id";
        goto done;
    }
    if (!cfg->tenant_id || !cfg->tenant_id[0]) {
        *reason = "no_tenant";
        goto done;
    }
    if (copy_id(row->tenant_id, sizeof row->tenant_id, cfg->tenant_id, strlen(cfg->tenant_id)) !=
        0) {
        *reason = "too_long";
        goto done;
    }
    const char *tz = cfg->timezone && cfg->timezone[0] ? cfg->timezone : CHANNELS_TABLE_DEFAULT_TZ;
    if (copy_id(row->timezone, sizeof row->timezone, tz, strlen(tz)) != 0) {
        *reason = "too_long";
        goto done;
    }
    row->deleted = cfg->deleted;
    row->version = cfg->version;
    row->updated_at_ms = cfg->updated_at;
    rc = 0;
done:
    kizuna__v1__channel_config__free_unpacked(cfg, NULL);
    return rc;
}

int channels_table_event_id(const struct kafka_message *msg, char *out, size_t cap,
                            const char **reason)
{
    struct channels_table_row row;
    if (channels_table_parse(msg, &row, reason) != 0)
        return -1;
    int n = row.tombstone ? snprintf(out, cap, "channel:%s:tombstone:%" PRId32 ":%" PRId64,
                                     row.channel_id, msg->partition, msg->offset)
                          : snprintf(out, cap, "channel:%s:%" PRId64, row.channel_id, row.version);
    if (n < 0 || (size_t)n >= cap || n > CONSUMER_EVENT_ID_MAX) {
        *reason = "bad_event_id";
        return -1;
    }
    return 0;
}

static enum consumer_verdict channels_table_handle(void *ctx, struct db *db,
                                                   const struct consumer_record *rec,
                                                   const char **reason)
{
    (void)ctx;
    struct channels_table_row row;
    if (channels_table_parse(rec->msg, &row, reason) != 0)
        return CONSUMER_MALFORMED;
    struct db_result *res = NULL;
    enum db_status st;
    if (row.tombstone) {
        const char *params[] = {row.channel_id};
        st = db_exec(db,
                     "UPDATE channels SET deleted = true, updated_at = now() "
                     "WHERE channel_id = $1 AND NOT deleted",
                     1, params, &res);
    } else {
        char version[24], updated[24];
        snprintf(version, sizeof version, "%" PRId64, row.version);
        snprintf(updated, sizeof updated, "%" PRId64, row.updated_at_ms);
        const char *params[] = {row.channel_id, row.tenant_id,
                                row.timezone,   row.deleted ? "true" : "false",
                                version,        updated};
        /* Only a newer version replaces what is stored. */
        st = db_exec(db,
                     "INSERT INTO channels (channel_id, tenant_id, timezone, deleted, version, "
                     "updated_at) VALUES ($1, $2, $3, $4, $5, "
                     "CASE WHEN $6::bigint > 0 THEN to_timestamp($6::bigint / 1000.0) "
                     "ELSE now() END) "
                     "ON CONFLICT (channel_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, "
                     "timezone = EXCLUDED.timezone, deleted = EXCLUDED.deleted, "
                     "version = EXCLUDED.version, updated_at = EXCLUDED.updated_at "
                     "WHERE channels.version < EXCLUDED.version",
                     6, params, &res);
    }
    if (st != DB_OK) {
        log_warn("channels: cannot store a channel; retrying", "channel", row.channel_id, "error",
                 db_error_message(db));
        return CONSUMER_RETRY;
    }
    long changed = db_result_affected(res);
    db_result_free(&res);
    const char *result = row.tombstone ? "tombstone" : changed > 0 ? "applied" : "older";
    metrics_add(channels_applied, 1, result);
    if (changed > 0)
        log_info("channel stored", "channel", row.channel_id, "tenant", row.tenant_id, "deleted",
                 row.deleted ? "true" : "false");
    return CONSUMER_DONE;
}

int channels_table_start(struct service *svc, const char *group, char *errstr, size_t errcap)
{
    channels_applied = metrics_counter("kizuna_segmentation_channel_records_total",
                                       "channels records handled: applied, older (a newer "
                                       "version was stored), tombstone",
                                       "result");
    static const char *const topics[] = {CHANNELS_TABLE_TOPIC, NULL};
    struct consumer *c =
        consumer_start(&(struct consumer_options){.name = CHANNELS_TABLE_NAME,
                                                  .topics = topics,
                                                  .group = group,
                                                  .handler = channels_table_handle,
                                                  .event_id = channels_table_event_id,
                                                  .service = svc,
                                                  .from_beginning = true},
                       errstr, errcap);
    return c ? 0 : -1;
}
