/* kizuna-dispatcher: owns every call to LINE. main() only wires the parts:
 * the credential table (channels.c) following the `channels` topic, the
 * delivery log writer (deliveries_writer.c) and the results relay
 * (common/outbox_relay.h), the sender (sender.c), the admin API (api.c), the
 * `send.requests` intake (intake.c) on its own worker, which also takes over
 * dead replicas' pending rows and recovers this replica's own (a page at a
 * time, as the sender has room), and on the main thread service_run with
 * this service's hooks: readiness (channels caught up), the replica
 * heartbeat (which keeps the sender's lease, decision 0010) and rate-limit
 * overrides made on other replicas. */
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "channels.h"
#include "clock.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "deliveries.h"
#include "deliveries_writer.h"
#include "intake.h"
#include "kafka.h"
#include "line_base_url.h"
#include "line_request.h"
#include "channel_limits.h"
#include "log.h"
#include "outbox_relay.h"
#include "results.h"
#include "sender.h"
#include "service.h"
#include "shutdown.h"
#include "worker.h"

#define POLL_MS 100
/* Send requests per poll, made durable by one statement per 8 MB (intake.c).
 * Larger batches cost fewer round trips and commits per request: eight
 * channels went from about 4,000 to 6,300 pushes/s between 500 and 5,000
 * (docs/benchmarks.md), for at most one statement's time of added latency. */
#define INTAKE_BATCH 5000
#define INTAKE_FULL_POLL_MS 10000 /* while the sender is full, poll this often */
#define TAKEOVER_EVERY_MS 5000
#define LIMITS_EVERY_MS 5000
#define INTAKE_STOP_MS 5000 /* a polled batch is made durable before the intake ends */
#define WRITER_STOP_MS 5000
#define RELAY_STOP_MS 3000
#define RECOVER_PAGE 1000 /* pending rows read per recovery statement, at most */
#define RESYNC_WAIT_MS 50 /* while calls or outcomes of a lost lease finish */

/* The lease (decision 0010). HELD: the heartbeat extends the sender's lease.
 * LOST: the lease ran out (the heartbeat failed, or the process was paused
 * for longer than the lease): the sender starts no call and the intake
 * stops. RESYNC: a heartbeat succeeded again; the intake worker drops what
 * the sender held, re-reads this replica's rows and then extends the
 * lease. */
enum lease_state { LEASE_HELD, LEASE_LOST, LEASE_RESYNC };

static const char *line_api_base;
static const char *plaintext_hosts;
static const char *instance_opt;
static const char *group;
static const char *requests_topic;
static int intake_from; /* index in intake_froms */
static const char *const intake_froms[] = {"earliest", "latest", NULL};
static long max_inflight;
static long max_queued;
static long tenant_max_inflight;
static long tenant_max_queued;
static long connect_timeout_ms;
static long request_timeout_ms;
static long lease_s;
static long quota_warn_percent;
static long quota_sync_s;
static long unknown_channel_grace_s;
static long retry_deadline_s;
static long session_timeout_ms;
static long rate_margin_ms;

static const struct config_entry dispatcher_config[] = {
    {LINE_PLAINTEXT_HOSTS_ENV, CONFIG_STRING, "", &plaintext_hosts, 0, 0,
     LINE_PLAINTEXT_HOSTS_HELP},
    {"DISPATCHER_LINE_API_BASE", CONFIG_STRING, "https://api.line.me", &line_api_base, 0, 0,
     "LINE Messaging API base URL (the simulator locally)"},
    {"DISPATCHER_INSTANCE_ID", CONFIG_STRING, "", &instance_opt, 0, 0,
     "this replica's stable id (default hostname:admin-port); its pending sends are "
     "resumed when it restarts"},
    {"DISPATCHER_GROUP", CONFIG_STRING, "dispatcher", &group, 0, 0,
     "consumer group for send.requests"},
    {"DISPATCHER_REQUESTS_TOPIC", CONFIG_STRING, "send.requests", &requests_topic, 0, 0,
     "topic of SendRequests"},
    {"DISPATCHER_INTAKE_FROM", CONFIG_ENUM, "earliest", &intake_from, 0, 0,
     "where a new consumer group starts: earliest or latest", intake_froms},
    {"DISPATCHER_MAX_INFLIGHT", CONFIG_INT, "256", &max_inflight, 1, 10000,
     "concurrent calls to LINE"},
    {"DISPATCHER_MAX_QUEUED", CONFIG_INT, "50000", &max_queued, 100, 10000000,
     "deliveries held in memory before the intake pauses"},
    {"DISPATCHER_TENANT_MAX_INFLIGHT", CONFIG_INT, "128", &tenant_max_inflight, 0, 10000,
     "one tenant's calls to LINE in flight, so that others keep slots (0: only the global cap)"},
    {"DISPATCHER_TENANT_MAX_QUEUED", CONFIG_INT, "20000", &tenant_max_queued, 0, 10000000,
     "one tenant's deliveries held in memory; past it that tenant's requests wait in Kafka "
     "while others' flow (0: only the global cap)"},
    {"DISPATCHER_CONNECT_TIMEOUT_MS", CONFIG_INT, "5000", &connect_timeout_ms, 100, 60000,
     "TCP+TLS connect timeout for calls to LINE"},
    {"DISPATCHER_REQUEST_TIMEOUT_MS", CONFIG_INT, "30000", &request_timeout_ms, 100, 300000,
     "total timeout of one call to LINE"},
    {"DISPATCHER_LEASE_S", CONFIG_INT, "30", &lease_s, 3, 86400,
     "a replica silent this long has its pending sends taken over"},
    {"DISPATCHER_QUOTA_WARN_PERCENT", CONFIG_INT, "80", &quota_warn_percent, 1, 100,
     "warn when a channel's monthly usage crosses this share of its quota"},
    {"DISPATCHER_QUOTA_SYNC_S", CONFIG_INT, "600", &quota_sync_s, 0, 86400,
     "ask LINE for each active channel's quota and usage this often (0: never)"},
    {"DISPATCHER_UNKNOWN_CHANNEL_GRACE_S", CONFIG_INT, "60", &unknown_channel_grace_s, 0, 86400,
     "how long a request waits for its channel to appear in the channels topic"},
    {"DISPATCHER_RETRY_DEADLINE_S", CONFIG_INT, "86400", &retry_deadline_s, 1, 86400,
     "no retry starts later than this after the first attempt (LINE keeps retry keys 24 h)"},
    {"DISPATCHER_SESSION_TIMEOUT_MS", CONFIG_INT, "10000", &session_timeout_ms, 6000, 300000,
     "a replica that died without leaving loses its send.requests partitions after this"},
    {"DISPATCHER_RATE_MARGIN_MS", CONFIG_INT, "10", &rate_margin_ms, 0, 1000,
     "rate limits hold over every window of period + this, so arrivals at LINE stay within "
     "them despite jitter (docs/decisions/0004)"},
};

/* Everything main wires, for the drain steps. */
static struct app {
    struct service svc;
    char instance[DELIVERY_INSTANCE_MAX + 1];
    struct channels *channels;
    struct outbox_relay *relay;
    struct deliveries_writer *writer;
    struct sender *sender;
    struct api *api;
    struct kafka_consumer *intake;
    struct db *intake_db;         /* the intake worker's connection */
    struct worker *intake_worker; /* polls send.requests; see intake_main */
    atomic_bool intake_failed;    /* the consumer failed for good: exit 1 */
    int64_t next_beat, next_limits;
    _Atomic int lease_state;    /* enum lease_state */
    _Atomic int64_t beat_ok_ms; /* monotonic: when the last good heartbeat was sent */
    /* Recovery of this replica's pending rows: the intake worker's only. */
    bool recovering;
    int64_t recover_after, recover_until;
    long recovered_count;
} app;

/* The admin server opens after setup and closes before the parts are
 * freed, so a->api is always in place here. */
static void api_route(void *ctx, const struct auth_claims *claims, const struct httpd_request *req,
                      struct httpd_response *resp)
{
    struct app *a = ctx;
    api_handle(a->api, claims, req, resp);
}

/* --- drain steps (shutdown.h order) --------------------------------------------- */

static void step_stop_intake(void *ctx)
{
    struct app *a = ctx;
    worker_stop(&a->intake_worker, INTAKE_STOP_MS);
}

static void step_stop_sending(void *ctx)
{
    struct app *a = ctx;
    if (a->sender)
        sender_stop(a->sender);
    deliveries_writer_stop(&a->writer, WRITER_STOP_MS);
    outbox_relay_stop(&a->relay, RELAY_STOP_MS);
}

static void step_store_offsets(void *ctx)
{
    struct app *a = ctx;
    if (a->intake)
        kafka_consumer_close(a->intake);
}

static void step_close_consumers(void *ctx)
{
    struct app *a = ctx;
    kafka_consumer_free(&a->intake);
    if (a->channels)
        channels_follow_stop(a->channels);
}

static void step_close_api_db(void *ctx)
{
    struct app *a = ctx;
    api_free(&a->api);
    db_free(&a->intake_db);
}

static void step_free(void *ctx)
{
    struct app *a = ctx;
    sender_free(&a->sender);
    channels_free(&a->channels);
}

/* --- start-up ------------------------------------------------------------------ */

/* How long a heartbeat keeps the sender's lease, from the moment it was
 * sent: four fifths of the lease, so that this replica stops before any
 * other may take its rows over (a heartbeat_at older than the lease), with
 * a fifth of it to spare for the clocks and the takeover's own scan. */
static int64_t lease_valid_ms(void)
{
    return lease_s * 1000 - lease_s * 1000 / 5;
}

static void recovered(void *ctx, struct delivery *d)
{
    sender_submit(ctx, d);
}

static void sync_limits(struct app *a)
{
    struct sender_limit_row *rows = NULL;
    size_t n = 0;
    if (channel_limits_load(a->svc.db, &rows, &n) != DB_OK) {
        log_warn("cannot read channel limits; keeping the current ones", "error",
                 db_error_message(a->svc.db));
        return;
    }
    sender_limits_sync(a->sender, rows, n);
    free(rows);
}

static int start_parts(struct app *a, const uint8_t key[CRYPTO_KEY_LEN])
{
    char errstr[512] = "";
    struct service *svc = &a->svc;
    int64_t beat_sent = clock_mono_ms();
    if (deliveries_heartbeat(svc->db, a->instance) != DB_OK) {
        log_error("cannot register this replica", "error", db_error_message(svc->db));
        return -1;
    }
    a->relay = outbox_relay_start(&(struct outbox_relay_options){.name = "results-relay",
                                                                 .dsn = svc->database_url,
                                                                 .producer = svc->producer},
                                  errstr, sizeof errstr);
    if (!a->relay)
        goto fail;
    a->writer = deliveries_writer_start(svc->database_url, a->instance, RESULTS_TOPIC_DEFAULT,
                                        outbox_relay_kick, a->relay, errstr, sizeof errstr);
    if (!a->writer)
        goto fail;
    a->channels = channels_new(key);
    if (!a->channels) {
        snprintf(errstr, sizeof errstr, "out of memory");
        goto fail;
    }
    uint32_t nonce = 0;
    crypto_random(&nonce, sizeof nonce);
    char follower_group[DELIVERY_INSTANCE_MAX + 64];
    snprintf(follower_group, sizeof follower_group, "dispatcher-channels-%s-%08x", a->instance,
             nonce);
    if (channels_follow_start(a->channels, svc->brokers, follower_group, "channels", errstr,
                              sizeof errstr) != 0)
        goto fail;

    struct sender_config cfg = {
        .base_url = line_api_base,
        .dsn = svc->database_url,
        .instance = a->instance,
        .max_inflight = max_inflight,
        .max_queued = max_queued,
        .tenant_max_inflight = tenant_max_inflight,
        .tenant_max_queued = tenant_max_queued,
        .connect_timeout_ms = connect_timeout_ms,
        .request_timeout_ms = request_timeout_ms,
        .unknown_channel_grace_s = unknown_channel_grace_s,
        .reply_max_age_ms = LINE_REPLY_MAX_AGE_MS_DEFAULT,
        .quota_sync_s = quota_sync_s,
        .quota_warn_percent = (int)quota_warn_percent,
        .drain_ms = 5000,
        .rate_margin_ms = rate_margin_ms,
        .backoff = backoff_policy_default(),
    };
    cfg.backoff.deadline_ns = retry_deadline_s * BACKOFF_NS_PER_S;
    a->sender = sender_new(&cfg, a->channels, a->writer, errstr, sizeof errstr);
    if (!a->sender)
        goto fail;
    sync_limits(a);
    /* The first heartbeat (above) started the lease. Recovery runs on the
     * intake worker, a page at a time as the sender has room. */
    atomic_store(&a->beat_ok_ms, beat_sent);
    sender_lease_extend(a->sender, beat_sent + lease_valid_ms());
    if (deliveries_recover_mark(svc->db, a->instance, &a->recover_until) != DB_OK) {
        snprintf(errstr, sizeof errstr, "recovering pending deliveries: %s",
                 db_error_message(svc->db));
        goto fail;
    }
    a->recovering = true;
    if (sender_start(a->sender, errstr, sizeof errstr) != 0)
        goto fail;
    a->api = api_new(svc->database_url, a->channels, a->sender, errstr, sizeof errstr);
    if (!a->api)
        goto fail;

    const char *topics[] = {requests_topic};
    struct kafka_consumer_options opts = {
        .brokers = svc->brokers,
        .group = group,
        .topics = topics,
        .ntopics = 1,
        .from_beginning = intake_from == 0, /* earliest */
        .session_timeout_ms = (int)session_timeout_ms,
    };
    a->intake = kafka_consumer_new(&opts, errstr, sizeof errstr);
    if (!a->intake)
        goto fail;
    a->intake_db = db_connect(svc->database_url, errstr, sizeof errstr);
    if (!a->intake_db)
        goto fail;
    log_info("dispatcher started", "instance", a->instance, "group", group, "topic", requests_topic,
             "line_api_base", line_api_base);
    return 0;
fail:
    log_error("dispatcher start failed", "error", errstr);
    return -1;
}

/* --- the intake worker and the service hooks ------------------------------------- */

/* Takes over the pending rows of replicas whose heartbeat stopped. It runs on
 * the intake's thread, between polls, because the intake may reload a row
 * it meets again (intake.c): one thread for both means a row is never handed
 * to the sender by both at once. */
static void intake_take_over(struct app *a)
{
    long n = deliveries_take_over(a->intake_db, a->instance, lease_s, recovered, a->sender);
    if (n > 0) {
        char count[24];
        snprintf(count, sizeof count, "%ld", n);
        log_warn("took over pending deliveries of a silent replica", "count", count);
    } else if (n < 0) {
        log_warn("takeover scan failed", "error", db_error_message(a->intake_db));
    }
}

/* One page of recovery, sized to the room the sender has (max_queued), so
 * that a restart after a long outage holds no more than the intake would.
 * Returns true when it read a page (or must wait after a failure), false
 * when the sender is full or recovery is over: then the intake's own loop
 * runs, which while the sender is full takes one message now and then to
 * keep its place in the consumer group. */
static bool intake_recover_step(struct app *a, struct worker *w)
{
    long room = max_queued - sender_held(a->sender);
    if (room <= 0)
        return false;
    int limit = room < RECOVER_PAGE ? (int)room : RECOVER_PAGE;
    int64_t last = a->recover_after;
    long rows = deliveries_recover_page(a->intake_db, a->instance, a->recover_after,
                                        a->recover_until, limit, recovered, a->sender, &last);
    if (rows < 0) {
        log_warn("recovering pending deliveries failed; trying again", "error",
                 db_error_message(a->intake_db));
        worker_wait(w, 1000);
        return true;
    }
    a->recover_after = last;
    a->recovered_count += rows;
    if (rows == limit)
        return true;
    a->recovering = false;
    if (a->recovered_count > 0) {
        char count[24];
        snprintf(count, sizeof count, "%ld", a->recovered_count);
        log_info("resumed pending deliveries (sent again with their retry keys)", "count", count);
    }
    return false;
}

/* The lease came back after it was lost: what the sender held may have
 * been taken over meanwhile. Once the calls of before have ended and their
 * outcomes are written (fenced if taken), drop everything held and read
 * this replica's rows again, then give the sender its lease back. */
static void intake_resync(struct app *a, struct worker *w)
{
    if (deliveries_writer_backlog(a->writer) > 0) {
        worker_wait(w, RESYNC_WAIT_MS);
        return;
    }
    long dropped = sender_release_all(a->sender);
    if (dropped < 0) {
        worker_wait(w, RESYNC_WAIT_MS);
        return;
    }
    int64_t until = 0;
    if (deliveries_recover_mark(a->intake_db, a->instance, &until) != DB_OK) {
        log_warn("re-reading this replica's deliveries failed; trying again", "error",
                 db_error_message(a->intake_db));
        worker_wait(w, 1000);
        return;
    }
    a->recovering = true;
    a->recover_after = 0;
    a->recover_until = until;
    a->recovered_count = 0;
    char count[24];
    snprintf(count, sizeof count, "%ld", dropped);
    log_warn("lease regained: dropped what was held; re-reading this replica's own rows", "dropped",
             count);
    sender_lease_extend(a->sender, atomic_load(&a->beat_ok_ms) + lease_valid_ms());
    int resync = LEASE_RESYNC;
    atomic_compare_exchange_strong(&a->lease_state, &resync, LEASE_HELD);
}

static void intake_main(struct worker *w, void *ctx)
{
    struct app *a = ctx;
    struct intake in = {.db = a->intake_db,
                        .instance = a->instance,
                        .sender = a->sender,
                        .writer = a->writer,
                        .max_backlog = max_queued};
    intake_init(&in);
    int64_t last_poll = 0, next_takeover = 0;
    while (!worker_stopping(w)) {
        /* Without the lease, take nothing in: another replica may own
         * these rows by now. */
        int lease = atomic_load(&a->lease_state);
        if (lease == LEASE_LOST || clock_mono_ms() >= sender_lease_until(a->sender)) {
            if (lease == LEASE_RESYNC)
                intake_resync(a, w);
            else
                worker_wait(w, 100);
            continue;
        }
        /* Recovery first, as the sender drains; rows the intake adds
         * meanwhile (one now and then while the sender is full) lie past
         * recover_until. */
        if (a->recovering && intake_recover_step(a, w))
            continue;
        /* While the sender is full, leave the messages in the consumer's
         * queue instead of taking them only to rewind every partition (a
         * seek, which can time out on a busy machine and then ends the
         * consumer). Every INTAKE_FULL_POLL_MS take one message all the
         * same, so that the group keeps this member through a long stall
         * (max.poll.interval.ms) while memory grows by one request only. */
        int64_t now = clock_mono_ms();
        if (!a->recovering && now >= next_takeover) {
            intake_take_over(a);
            next_takeover = now + TAKEOVER_EVERY_MS;
        }
        bool full = intake_full(&in);
        if (full && now - last_poll < INTAKE_FULL_POLL_MS) {
            worker_wait(w, 20);
            continue;
        }
        last_poll = now;
        if (kafka_consumer_poll_batch(a->intake, POLL_MS, full ? 1 : INTAKE_BATCH, intake_handle,
                                      &in) < 0) {
            log_error("send.requests consumer failed for good; exiting to be restarted");
            atomic_store(&a->intake_failed, true);
            shutdown_request();
            return;
        }
    }
}

/* service_def.checks: not ready until the credentials are known, so that a
 * fresh replica does not fail sends for channels it has not read yet. */
static bool channels_ready(struct service *svc)
{
    (void)svc;
    return channels_caught_up(app.channels);
}

/* HELD becomes LOST once the sender's lease has run out. */
static void lease_check(struct app *a)
{
    int held = LEASE_HELD;
    if (clock_mono_ms() >= sender_lease_until(a->sender) &&
        atomic_compare_exchange_strong(&a->lease_state, &held, LEASE_LOST)) {
        char lease[24];
        snprintf(lease, sizeof lease, "%ld", lease_s);
        log_error("lease lost: no heartbeat succeeded for most of the lease; sending and intake "
                  "paused until one does",
                  "lease_s", lease);
    }
}

/* service_def.tick: the heartbeat that keeps this replica's rows its own,
 * and rate-limit overrides made through another replica's API. */
static void dispatcher_tick(struct service *svc, int64_t now)
{
    struct app *a = &app;
    /* The sender stops by itself at the end of its lease; here the rest of
     * the replica learns it, before any heartbeat (a process resumed after
     * a pause must not extend a lease that ran out while it slept). */
    lease_check(a);
    if (now >= a->next_beat) {
        int64_t sent = clock_mono_ms();
        if (deliveries_heartbeat(svc->db, a->instance) != DB_OK) {
            log_warn("replica heartbeat failed", "error", db_error_message(svc->db));
        } else {
            atomic_store(&a->beat_ok_ms, sent);
            /* Extended only if the lease still held when the heartbeat
             * landed: then no other replica can have taken a row over (it
             * waits for a heartbeat older than the whole lease). Otherwise
             * the rows may be someone else's now: resync first. */
            lease_check(a);
            int lost = LEASE_LOST;
            if (atomic_load(&a->lease_state) == LEASE_HELD)
                sender_lease_extend(a->sender, sent + lease_valid_ms());
            else if (atomic_compare_exchange_strong(&a->lease_state, &lost, LEASE_RESYNC))
                worker_wake(a->intake_worker);
        }
        long every = lease_s * 1000 / 5;
        a->next_beat = now + (every < 1000 ? 1000 : every);
    }
    if (now >= a->next_limits) {
        sync_limits(a);
        a->next_limits = now + LIMITS_EVERY_MS;
    }
}

static int instance_id(char *out, size_t cap, long port)
{
    if (instance_opt[0]) {
        if (strlen(instance_opt) >= cap)
            return -1;
        snprintf(out, cap, "%s", instance_opt);
        return 0;
    }
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    snprintf(out, cap, "%s:%ld", host, port);
    return 0;
}

/* service_def.validate: the checks the config table cannot express. */
static void dispatcher_validate(void (*report)(void *rctx, const char *name, const char *reason),
                                void *rctx)
{
    if (instance_opt && strlen(instance_opt) > DELIVERY_INSTANCE_MAX) {
        char reason[64];
        snprintf(reason, sizeof reason, "too long (at most %d characters)", DELIVERY_INSTANCE_MAX);
        report(rctx, "DISPATCHER_INSTANCE_ID", reason);
    }
    char why[256];
    if (line_api_base && line_base_url_check(line_api_base, plaintext_hosts, why, sizeof why) != 0)
        report(rctx, "DISPATCHER_LINE_API_BASE", why);
}

/* service_def.setup: everything the admin API needs, before it opens. */
static int dispatcher_setup(struct service *svc)
{
    shutdown_register(SHUTDOWN_STOP_ACCEPTING, "stop the send.requests intake", step_stop_intake,
                      &app);
    shutdown_register(SHUTDOWN_FINISH_INFLIGHT, "stop sending, write outcomes, relay results",
                      step_stop_sending, &app);
    shutdown_register(SHUTDOWN_STORE_OFFSETS, "commit send.requests offsets", step_store_offsets,
                      &app);
    shutdown_register(SHUTDOWN_CLOSE_CONSUMER, "close consumers", step_close_consumers, &app);
    shutdown_register(SHUTDOWN_CLOSE_DB, "close the API's database", step_close_api_db, &app);
    shutdown_register(SHUTDOWN_FREE, "free the dispatcher", step_free, &app);

    int rc = 0;
    if (instance_id(app.instance, sizeof app.instance, app.svc.admin_port) != 0) {
        rc = CONFIG_EXIT; /* dispatcher_validate reported it */
    } else {
        if (start_parts(&app, svc->data_key) != 0)
            rc = 1;
    }
    return rc;
}

int main(void)
{
    static const struct service_check checks[] = {{"channels caught up", channels_ready}};
    static const struct service_def def = {
        .name = "dispatcher",
        .admin_port = 8084,
        .extra = dispatcher_config,
        .nextra = sizeof dispatcher_config / sizeof dispatcher_config[0],
        .api = api_route,
        .api_ctx = &app,
        .setup = dispatcher_setup,
        .needs_data_key = true,
        .validate = dispatcher_validate,
        .checks = checks,
        .nchecks = sizeof checks / sizeof checks[0],
        .tick = dispatcher_tick,
        .tick_ms = 1000,
    };
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "curl_global_init failed\n");
        return 1;
    }
    int rc = service_start(&app.svc, &def);
    if (rc == 0) {
        /* After the admin server opened, as the rest of start-up assumes. */
        char errstr[256] = "";
        app.intake_worker = worker_start("intake", intake_main, &app, errstr, sizeof errstr);
        if (!app.intake_worker) {
            log_error("cannot start the intake", "error", errstr);
            rc = 1;
        } else {
            service_run(&app.svc);
            rc = atomic_load(&app.intake_failed) ? 1 : 0;
        }
    }
    service_stop(&app.svc);
    curl_global_cleanup();
    return rc;
}
