/* kizuna-segmentation: owns people (friends, tags, fields, segments, rules).
 * Wires the shared service skeleton, the relay of its outbox, its consumers
 * and its admin API (api.c; each part's routes live in their own file). */
#include <stdio.h>

#include "app.h"
#include "channels_table.h"
#include "csv_routes.h"
#include "db_pool.h"
#include "inbox_keep.h"
#include "log.h"
#include "outbox_relay.h"
#include "results.h"
#include "service.h"
#include "shutdown.h"
#include "webhook_events.h"

static long api_connections;
static long unknown_channel_grace_s;
static long webhook_consumers;
static long relay_linger_ms;
static long inbox_keep_s;
static long inbox_prune_every_s;
static const char *channels_group;
static const char *webhook_group;
static const char *results_group;

static const struct config_entry extra[] = {
    {"SEGMENTATION_API_DB_CONNECTIONS", CONFIG_INT, "4", &api_connections, 1, 64,
     "PostgreSQL connections shared by the admin API (a CSV export holds one while it streams)"},
    {"SEGMENTATION_UNKNOWN_CHANNEL_GRACE_S", CONFIG_INT, "120", &unknown_channel_grace_s, 0, 86400,
     "a webhook event for a channel not yet in `channels` is retried while younger than this, "
     "then skipped as malformed (unknown_channel)"},
    {"SEGMENTATION_WEBHOOK_CONSUMERS", CONFIG_INT, "1", &webhook_consumers, 1, 16,
     "line.webhook consumer threads (each with its own database connection)"},
    {"SEGMENTATION_RELAY_LINGER_MS", CONFIG_INT, "2", &relay_linger_ms, 1, 1000,
     "the outbox relay's pause after a part batch, so rows gather: it adds to every event's "
     "latency (follow -> FriendAdded)"},
    {"SEGMENTATION_INBOX_KEEP_S", CONFIG_INT, "691200", &inbox_keep_s, 60, 31536000,
     "inbox rows older than this are deleted; longer than the topics' retention (7 days), so a "
     "replay from the earliest offset still changes nothing"},
    {"SEGMENTATION_INBOX_PRUNE_EVERY_S", CONFIG_INT, "300", &inbox_prune_every_s, 1, 86400,
     "how often old inbox rows are looked for"},
    {"SEGMENTATION_CHANNELS_GROUP", CONFIG_STRING, "segmentation-channels", &channels_group, 0, 0,
     "consumer group of the channels topic (read from its beginning when new)"},
    {"SEGMENTATION_WEBHOOK_GROUP", CONFIG_STRING, "segmentation-webhook", &webhook_group, 0, 0,
     "consumer group of line.webhook"},
    {"SEGMENTATION_RESULTS_GROUP", CONFIG_STRING, "segmentation-results", &results_group, 0, 0,
     "consumer group of delivery.results"},
};

/* The drain's step for the relay (as outbox_relay_start_service registers
 * one): publish what is left, then stop. */
static void segmentation_relay_stop(void *ctx)
{
    struct outbox_relay *rl = ctx;
    outbox_relay_stop(&rl, OUTBOX_RELAY_STOP_MS);
}

/* service_def.setup: the relay of the segmentation outbox (stopped by the
 * drain), the admin API's connections, then the consumers of `channels`,
 * `line.webhook` and `delivery.results`. */
static int segmentation_setup(struct service *svc)
{
    struct seg *app = svc->def->api_ctx;
    char errstr[512];
    app->svc = svc;
    /* outbox_relay_start_service with a shorter linger: the relay's pause
     * is part of a follow's path to FriendAdded (bench/segmentation/follow). */
    app->relay =
        outbox_relay_start(&(struct outbox_relay_options){.name = "segmentation-outbox-relay",
                                                          .dsn = svc->database_url,
                                                          .producer = svc->producer,
                                                          .linger_ms = (int)relay_linger_ms},
                           errstr, sizeof errstr);
    if (!app->relay) {
        log_error("cannot start the outbox relay", "error", errstr);
        return 1;
    }
    if (shutdown_register(SHUTDOWN_FINISH_INFLIGHT, "stop the outbox relay",
                          segmentation_relay_stop, app->relay) != 0) {
        log_error("cannot register the outbox relay's drain step");
        outbox_relay_stop(&app->relay, 0);
        return 1;
    }
    app->pool = db_pool_new(svc->database_url, (int)api_connections, errstr, sizeof errstr);
    if (!app->pool) {
        log_error("cannot open the admin API's database connections", "error", errstr);
        return 1;
    }
    /* The consumers: each on its own worker and connection, stopped by the
     * drain (common/consumer.h). */
    struct webhook_events_options wopts = {.unknown_channel_grace_ms =
                                               unknown_channel_grace_s * 1000,
                                           .consumers = (int)webhook_consumers,
                                           .group = webhook_group};
    if (channels_table_start(svc, channels_group, errstr, sizeof errstr) != 0 ||
        webhook_events_start(svc, app->relay, &wopts, errstr, sizeof errstr) != 0 ||
        results_start(svc, app->relay, results_group, errstr, sizeof errstr) != 0 ||
        inbox_keep_start(svc, inbox_keep_s, inbox_prune_every_s, errstr, sizeof errstr) != 0) {
        log_error("cannot start a consumer or the inbox's pruning", "error", errstr);
        return 1;
    }
    return 0;
}

int main(void)
{
    static struct service svc;
    static struct seg app;
    static const struct service_def def = {
        .name = "segmentation",
        .admin_port = 8082,
        .extra = extra,
        .nextra = sizeof extra / sizeof extra[0],
        .api = seg_api,
        .api_ctx = &app,
        .setup = segmentation_setup,
        .admin_body_cap = SEG_CSV_IMPORT_MAX, /* a CSV import; JSON bodies are SEG_BODY_MAX */
    };
    int rc = 1;
    if (service_start(&svc, &def) == 0) {
        service_run(&svc);
        rc = 0;
    }
    service_stop(&svc);
    db_pool_free(&app.pool);
    return rc;
}
