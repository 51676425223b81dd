/* kizuna-ingest: the edge. Wires the shared service skeleton to the channel
 * registry (admin API, cache), the public webhook and tracked-link server,
 * the spool, and two outbox relays (common/outbox_relay.h): one publishes
 * the registry's outbox to `channels`, the other republishes the spool.
 * Drain order: stop both servers, stop the relays, flush the producer,
 * close the database, free. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "crypto.h"
#include "httpd.h"
#include "line_base_url.h"
#include "link_token.h"
#include "links.h"
#include "log.h"
#include "outbox_relay.h"
#include "registry.h"
#include "service.h"
#include "shutdown.h"
#include "spool.h"
#include "webhook.h"

/* The relays' idle period: a spooled event waits at most about this long
 * once the broker is back, and a channel change about this long to be
 * published. */
#define INGEST_RELAY_PERIOD_MS 200
/* How long each relay may go on publishing at shutdown. */
#define INGEST_RELAY_STOP_MS 2000
/* The producer's connections to the broker (KAFKA_PRODUCER_CONNECTIONS
 * overrides it): ingest produces to line.webhook's 48 partitions at
 * thousands of records a second, and through one connection librdkafka's
 * one request per partition queues up behind the broker's one-at-a-time
 * handling (common/kafka.h). docs/benchmarks.md has the runs behind it. */
#define INGEST_PRODUCER_CONNECTIONS 4
/* Spool writes happen only while the broker is slow or away. */
#define INGEST_SPOOL_CONNECTIONS 4
/* One webhook body at most; LINE's stay far below it. */
#define INGEST_BODY_CAP ((size_t)1 << 20)

static struct config_key link_key_opt;
static long public_port;
static long public_threads;
static long ack_budget_ms;
static long public_max_connections;
static long public_per_address;
static long public_body_budget_mb;
static long public_deadline_ms;
static const char *line_api_base;
static const char *plaintext_hosts;

static const struct config_entry ingest_config[] = {
    {"INGEST_PUBLIC_PORT", CONFIG_PORT, "8080", &public_port, 0, 0,
     "public port for LINE webhooks and tracked links"},
    {"INGEST_PUBLIC_THREADS", CONFIG_INT, "4", &public_threads, 1, 64,
     "public server worker threads; a webhook request holds one only while it is parsed"},
    {"INGEST_ACK_BUDGET_MS", CONFIG_INT, "1000", &ack_budget_ms, 10, 1900,
     "how long a webhook waits for the broker's acks before spooling (LINE times out at 2 s)"},
    {"INGEST_PUBLIC_MAX_CONNECTIONS", CONFIG_INT, "1000", &public_max_connections, 1, 65536,
     "open connections on the public port; a webhook waiting for the broker holds one"},
    {"INGEST_PUBLIC_PER_ADDRESS_CONNECTIONS", CONFIG_INT, "64", &public_per_address, 0, 65536,
     "open public connections from one client address (0: no cap; behind a proxy every client "
     "has the proxy's address)"},
    {"INGEST_PUBLIC_BODY_BUDGET_MB", CONFIG_INT, "64", &public_body_budget_mb, 2, 4096,
     "MiB of request bodies the public port holds at once, all requests together; past it 503"},
    {"INGEST_PUBLIC_REQUEST_DEADLINE_MS", CONFIG_INT, "10000", &public_deadline_ms, 100, 600000,
     "time a client has to send a whole request (headers and body) on the public port"},
    {LINE_PLAINTEXT_HOSTS_ENV, CONFIG_STRING, "", &plaintext_hosts, 0, 0,
     LINE_PLAINTEXT_HOSTS_HELP},
    {"INGEST_LINE_API_BASE", CONFIG_STRING, "https://api.line.me", &line_api_base, 0, 0,
     "LINE Messaging API base URL, asked at registration who owns an access token (GET "
     "/v2/bot/info); http:// only to a loopback address (the simulator)"},
    {"KIZUNA_LINK_KEY", CONFIG_KEY, "", &link_key_opt, 0, 0,
     "64 hex chars: key of tracked-link tokens (default: derived from KIZUNA_DATA_KEY)"},
};

static struct registry *registry;
static struct spool *spool;
static struct links *links;
static struct webhook *webhook;
static struct httpd *public_server;
static struct kafka_producer *producer;

static struct outbox_relay *channels_relay;
static struct outbox_relay *spool_relay;

/* registry exists before the admin server starts (ingest_setup). */
static void ingest_api(void *ctx, const struct auth_claims *claims, const struct httpd_request *req,
                       struct httpd_response *resp)
{
    (void)ctx;
    registry_api(registry, claims, req, resp);
}

static int ingest_lookup(void *ctx, const char *channel_id, struct channel_view *out)
{
    return registry_lookup(ctx, channel_id, out);
}

/* The webhook's ack-wait threads stop right after the server (which has
 * answered everything by then), while the spool they write still exists. */
static void step_stop_public(void *ctx)
{
    (void)ctx;
    httpd_stop(&public_server);
    webhook_stop(webhook);
}

static void step_stop_relays(void *ctx)
{
    (void)ctx;
    outbox_relay_stop(&channels_relay, INGEST_RELAY_STOP_MS);
    outbox_relay_stop(&spool_relay, INGEST_RELAY_STOP_MS);
}

/* The registry's outbox (a batch is a few channel changes) and the spool
 * (filled only while the broker is away; each republication is logged). */
static int relays_start(struct service *svc, char *errstr, size_t errcap)
{
    struct outbox_relay_options channels = {
        .name = "channels-relay",
        .dsn = svc->database_url,
        .producer = producer,
        .batch = 100,
        .ack_timeout_ms = 2000,
        .idle_ms = INGEST_RELAY_PERIOD_MS,
    };
    struct outbox_relay_options spooled = {
        .name = "spool-relay",
        .dsn = svc->database_url,
        .producer = producer,
        .table = "spool",
        .metrics = "kizuna_ingest_spool",
        .idle_ms = INGEST_RELAY_PERIOD_MS,
        .log_published = true,
    };
    channels_relay = outbox_relay_start(&channels, errstr, errcap);
    if (!channels_relay)
        return -1;
    spool_relay = outbox_relay_start(&spooled, errstr, errcap);
    return spool_relay ? 0 : -1;
}

static void step_close_db(void *ctx)
{
    (void)ctx;
    registry_free(&registry);
    spool_free(&spool);
}

static void step_free(void *ctx)
{
    (void)ctx;
    webhook_free(&webhook);
    links_free(&links);
}

/* The link key: KIZUNA_LINK_KEY when set (so that a service minting links
 * needs no data key), else derived from the data key. */
static void link_key_load(const uint8_t data_key[CRYPTO_KEY_LEN], uint8_t out[CRYPTO_KEY_LEN])
{
    if (link_key_opt.set)
        memcpy(out, link_key_opt.bytes, CRYPTO_KEY_LEN);
    else
        link_token_key_derive(data_key, out);
    crypto_wipe(&link_key_opt, sizeof link_key_opt);
}

/* Keys, and the registry the admin API needs, before the admin server opens. */
static uint8_t link_key[CRYPTO_KEY_LEN];

static int ingest_setup(struct service *svc)
{
    char errstr[512];
    link_key_load(svc->data_key, link_key);
    producer = svc->producer;
    shutdown_register(SHUTDOWN_STOP_ACCEPTING, "stop public server", step_stop_public, NULL);
    shutdown_register(SHUTDOWN_FINISH_INFLIGHT, "stop relays", step_stop_relays, NULL);
    shutdown_register(SHUTDOWN_CLOSE_DB, "close registry and spool", step_close_db, NULL);
    shutdown_register(SHUTDOWN_FREE, "free webhook", step_free, NULL);
    registry = registry_new(svc->database_url, svc->data_key, line_api_base, errstr, sizeof errstr);
    if (!registry) {
        log_error("cannot open the channel registry", "error", errstr);
        return 1;
    }
    return 0;
}

/* service_def.validate: the checks the config table cannot express. */
static void ingest_validate(void (*report)(void *rctx, const char *name, const char *reason),
                            void *rctx)
{
    char why[256];
    if (line_api_base && line_base_url_check(line_api_base, plaintext_hosts, why, sizeof why) != 0)
        report(rctx, "INGEST_LINE_API_BASE", why);
}

int main(void)
{
    static struct service svc;
    static const struct service_def def = {
        .name = "ingest",
        .admin_port = 8081,
        .extra = ingest_config,
        .nextra = sizeof ingest_config / sizeof ingest_config[0],
        .api = ingest_api,
        .setup = ingest_setup,
        .validate = ingest_validate,
        .needs_data_key = true,
        .producer_connections = INGEST_PRODUCER_CONNECTIONS,
    };
    char errstr[512];

    int rc = service_start(&svc, &def);
    if (rc != 0)
        goto out;
    rc = 1;
    spool = spool_new(svc.database_url, INGEST_SPOOL_CONNECTIONS, errstr, sizeof errstr);
    if (!spool) {
        log_error("cannot open the spool", "error", errstr);
        goto out;
    }
    links = links_new(link_key, errstr, sizeof errstr);
    if (!links) {
        log_error("cannot set up tracked links", "error", errstr);
        goto out;
    }
    struct webhook_options wopts = {
        .lookup = ingest_lookup,
        .lookup_ctx = registry,
        .spool = spool,
        .producer = producer,
        .links = links,
        .ack_budget_ms = (int)ack_budget_ms,
    };
    webhook = webhook_new(&wopts, errstr, sizeof errstr);
    if (!webhook) {
        log_error("cannot set up the webhook", "error", errstr);
        goto out;
    }
    if (relays_start(&svc, errstr, sizeof errstr) != 0) {
        log_error("cannot start the relays", "error", errstr);
        goto out;
    }

    /* Only what LINE and browsers need: the webhook, tracked links and
     * health. /metrics names channels and stays on the admin port. Unknown
     * paths, methods and channels are refused before a body is read. */
    struct httpd_options opts = {
        .name = "public",
        .bind = svc.bind,
        .port = (int)public_port,
        .body_cap = INGEST_BODY_CAP,
        .threads = (int)public_threads,
        .route = webhook_admit,
        .handler = webhook_route,
        .ctx = webhook,
        .max_connections = (int)public_max_connections,
        .per_address_connections = (int)public_per_address,
        .body_budget = (size_t)public_body_budget_mb << 20,
        .request_deadline_ms = (int)public_deadline_ms,
    };
    public_server = httpd_start(&opts, errstr, sizeof errstr);
    if (!public_server) {
        log_error("cannot start public server", "error", errstr);
        goto out;
    }

    service_run(&svc);
    rc = 0;
out:
    crypto_wipe(link_key, sizeof link_key);
    if (rc != 0)
        shutdown_request(); /* whatever started watches for it */
    service_stop(&svc);
    return rc;
}
