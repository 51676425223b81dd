/* Segmentation's copy of the channel registry: a consumer of the compacted
 * `channels` topic (ChannelConfig snapshots from ingest) that keeps the
 * `channels` table (tenant, time zone, deleted, version). A record older
 * than the stored version changes nothing; a tombstone (null value) marks
 * the key's channel deleted. The table is shared by every replica, so one
 * consumer group reads the topic from its beginning. */
#ifndef KIZUNA_SEGMENTATION_CHANNELS_TABLE_H
#define KIZUNA_SEGMENTATION_CHANNELS_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kafka_message;
struct service;

#define CHANNELS_TABLE_TOPIC "channels"
#define CHANNELS_TABLE_ID_MAX 64 /* channel ids (LINE's are 10 digits) */
#define CHANNELS_TABLE_TENANT_MAX 128
#define CHANNELS_TABLE_TZ_MAX 64

/* One record, read. */
struct channels_table_row {
    char channel_id[CHANNELS_TABLE_ID_MAX + 1];
    char tenant_id[CHANNELS_TABLE_TENANT_MAX + 1];
    char timezone[CHANNELS_TABLE_TZ_MAX + 1]; /* "Asia/Tokyo" when the record has none */
    bool deleted;
    bool tombstone; /* a null value: only channel_id (from the key) is set */
    int64_t version;
    int64_t updated_at_ms;
};

/* Reads msg (key and value) into row. 0, or -1 with *reason a static label
 * ("bad_payload", "no_channel_id", "bad_channel_id" (too long or not
 * printable ASCII), "no_tenant", "too_long" (tenant or zone)). Pure. */
int channels_table_parse(const struct kafka_message *msg, struct channels_table_row *row,
                         const char **reason);

/* The inbox id of a record: "channel:<id>:<version>", and
 * "channel:<key>:tombstone:<partition>:<offset>" for a tombstone. Not the
 * envelope's event_id: ingest draws a random one for every publication
 * (services/ingest/registry_api.c), which is unique per version but would
 * let a snapshot published twice run twice, and a tombstone has no
 * envelope at all. A consumer_event_id_fn (common/consumer.h). Pure. */
int channels_table_event_id(const struct kafka_message *msg, char *out, size_t cap,
                            const char **reason);

/* Starts the consumer (name "segmentation-channels", group as given, from
 * the beginning) on svc, whose drain stops it. 0, or -1 with errstr. Main
 * thread, in service_def.setup. */
int channels_table_start(struct service *svc, const char *group, char *errstr, size_t errcap);

#endif
