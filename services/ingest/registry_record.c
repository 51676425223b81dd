/* Renders a channel row for the admin API and for the `channels` topic. The
 * two shapes differ on purpose: the API shows fingerprints only, while the
 * topic carries the access token sealed, because the dispatcher (which holds
 * the data key) must call LINE with it. Neither ever holds the channel
 * secret, which never leaves ingest. */
#include "registry_record.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kizuna/v1/channel.pb-c.h"

int registry_aad(const char *tenant_id, const char *channel_id, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", tenant_id, channel_id);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* "2025-11-26T00:31:05.123Z" */
static void rfc3339_ms(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    struct tm tm;
    char date[24];
    if (!gmtime_r(&secs, &tm) || strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(out, 32, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, 32, "%s.%03dZ", date, frac);
}

static json_t *record_object(const struct channel_row *row)
{
    char created[32], updated[32];
    rfc3339_ms(row->created_at_ms, created);
    rfc3339_ms(row->updated_at_ms, updated);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:s, s:s}", "channel_id",
                     row->channel_id, "name", row->name, "bot_user_id", row->bot_user_id,
                     "timezone", row->timezone, "monthly_quota", (json_int_t)row->monthly_quota,
                     "secret_fingerprint", row->secret_fingerprint, "access_token_fingerprint",
                     row->access_token_fingerprint, "version", (json_int_t)row->version,
                     "created_at", created, "updated_at", updated);
}

char *registry_record_json(const struct channel_row *row)
{
    json_t *obj = record_object(row);
    if (!obj)
        return NULL;
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return text;
}

int registry_record_json_append(struct json_t *array, const struct channel_row *row)
{
    json_t *obj = record_object(row);
    return obj && json_array_append_new(array, obj) == 0 ? 0 : -1;
}

uint8_t *registry_record_pack(const struct channel_row *row, const char *event_id, size_t *len)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    Kizuna__V1__ChannelConfig cfg = KIZUNA__V1__CHANNEL_CONFIG__INIT;
    /* protobuf-c wants non-const strings but only reads them when packing. */
    env.event_id = (char *)event_id;
    env.tenant_id = (char *)row->tenant_id;
    env.channel_id = (char *)row->channel_id;
    env.occurred_at = row->updated_at_ms;
    cfg.envelope = &env;
    cfg.channel_id = (char *)row->channel_id;
    cfg.tenant_id = (char *)row->tenant_id;
    cfg.name = (char *)row->name;
    cfg.bot_user_id = (char *)row->bot_user_id;
    cfg.timezone = (char *)row->timezone;
    cfg.monthly_quota = row->monthly_quota;
    cfg.access_token_sealed.data = (uint8_t *)row->access_token_sealed;
    cfg.access_token_sealed.len = row->access_token_sealed_len;
    cfg.secret_fingerprint = (char *)row->secret_fingerprint;
    cfg.deleted = row->deleted;
    cfg.version = row->version;
    cfg.updated_at = row->updated_at_ms;

    size_t n = kizuna__v1__channel_config__get_packed_size(&cfg);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    *len = kizuna__v1__channel_config__pack(&cfg, buf);
    return buf;
}
