/* The stage for the dispatcher's integration tests: the real binaries
 * ($BUILD/bin/line-sim and $BUILD/bin/kizuna-dispatcher) on their own ports
 * against the local stack's PostgreSQL and Kafka. Each test gets a fresh
 * simulator, a channel id of its own (registered on the simulator and
 * published, sealed, to `channels`), a consumer group and instance id of
 * its own, and sends its SendRequests to the test topic
 * `send.requests.itest`, so that no other dispatcher (and no earlier test)
 * ever reads them. */
#ifndef KIZUNA_TEST_DISPATCHER_HARNESS_H
#define KIZUNA_TEST_DISPATCHER_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "kafka.h"
#include "kizuna/v1/send.pb-c.h"

#define DH_SIM_PORT 18190
#define DH_ADMIN_PORT 18184
#define DH_TOPIC "send.requests.itest"
#define DH_TENANT "itest-dispatch"
/* The user the consuming probes fetch the profile of: a LINE user id (U and
 * 32 lowercase hex digits), as the dispatcher accepts in a URL path. */
#define DH_PROBE_USER "U0000000000000000000000000000be01"

struct dh {
    char channel[24];
    char token[64];
    char group[96];
    char instance[96];
    char jwt[2048];
    char log_path[256];
    pid_t sim;
    pid_t disp;
    long long monthly_quota; /* published in the ChannelConfig */
};

extern struct dh dh;

/* Starts the simulator, registers a fresh channel on it, publishes its
 * ChannelConfig (monthly_quota from dh.monthly_quota, set before) and
 * issues an admin token. name labels the logs. */
void dh_setup(const char *name);
/* The last step of every test, part of its verdict: stops the dispatcher
 * and the simulator, each with SIGTERM and expecting exit 0 within 10 s,
 * then expects every log of the test free of sanitizer reports and of the
 * channel's access token. */
void dh_finish(void);
/* For the suites' .fini: stops whatever still runs (a test that failed
 * before dh_finish), checking nothing, and marks the channel deleted. */
void dh_teardown(void);

/* Starts the dispatcher (extra "K=V" settings, NULL-terminated, may be
 * NULL) and waits until /readyz answers 200. */
void dh_dispatcher_start(const char *const *settings);
/* A second replica beside dh.disp: the same settings but admin_port and
 * settings (which win; give it its own DISPATCHER_INSTANCE_ID), its log in
 * log_path (checked by dh_finish like the others). Waits until it is ready
 * and returns its pid; stop it with itest_service_stop. */
pid_t dh_replica_start(int admin_port, const char *const *settings, char *log_path, size_t cap);
/* Sends a probe through the intake until the simulator sees it, so that the
 * consumer (which starts at "latest") is known to hold its partitions. */
void dh_dispatcher_wait_consuming(void);
void dh_dispatcher_kill9(void);
void dh_dispatcher_stop(void);

/* A SendRequest for the test channel, with a fresh request_id (written to
 * request_id if not NULL, 37 bytes) and envelope. The caller sets the rest
 * and passes it to dh_produce, which packs and queues it. */
void dh_request_init(Kizuna__V1__SendRequest *req, Kizuna__V1__Envelope *env,
                     Kizuna__V1__SendKind kind, char *request_id);
void dh_produce(const Kizuna__V1__SendRequest *req);
/* dh_produce with another record key (a channel id: its partition). */
void dh_produce_keyed(const Kizuna__V1__SendRequest *req, const char *key);
/* Another channel, of tenant, for the test: a fresh id (written to channel,
 * 24 bytes) registered on the simulator and published, sealed, to
 * `channels`; dh_teardown marks it deleted. Call after dh_setup. */
void dh_channel_add(char *channel, const char *tenant);
/* Publishes the test channel's next version as tenant's (the same token),
 * deleted or not: what ingest publishes when a channel is deleted, or
 * registered by another tenant after that. */
void dh_channel_move(const char *tenant, bool deleted);
/* A push of one text message to `to`. */
void dh_produce_push(const char *to, const char *text, char *request_id);
void dh_flush(void);

/* Produces a DeliveryResult of the test's own making, keyed to the test
 * channel, on delivery.results and flushes: a results consumer that starts
 * at "latest" knows it holds its partitions once it reads one (its
 * request_id starts with "probe-"). */
void dh_result_probe(struct kafka_producer *p);
/* PATCH /v1/channels/<test channel>/limits with body (JSON); asserts 200. */
void dh_limits_set(const char *body);

/* HTTP to the simulator (path under http://127.0.0.1:DH_SIM_PORT). Returns
 * the status; *out (may be NULL) gets the parsed JSON body. */
long dh_sim(const char *method, const char *path, const char *body, json_t **out);
/* A field of /_sim/stats for the test channel and endpoint ("push"), or of
 * the whole simulator when endpoint is NULL. A failed call, a missing
 * channel or field, or an endpoint or field name the simulator does not
 * have fails the test; an endpoint never called reads 0 (the simulator
 * lists an endpoint once it has a request). */
long long dh_sim_stat(const char *endpoint, const char *field);
/* The same for another channel of the simulator. */
long long dh_sim_stat_of(const char *channel, const char *endpoint, const char *field);
/* Admin API of the dispatcher with the test token. */
long dh_api(const char *method, const char *path, const char *body, json_t **out);
/* The same with another token (jwt). */
long dh_api_as(const char *jwt, const char *method, const char *path, const char *body,
               json_t **out);
/* Waits until fn(ctx) is true, checking every 100 ms, up to timeout_ms. */
bool dh_wait(bool (*fn)(void *ctx), void *ctx, long timeout_ms);
/* The test channel's deliveries by status (from GET /v1/deliveries, all pages). */
struct dh_counts {
    long queued, retrying, sent, failed, quota_exceeded, retry_exhausted, reply_token_expired,
        invalid, total;
};
void dh_counts(struct dh_counts *c);
/* One delivery as the admin API shows it (NULL if absent); json_decref it. */
json_t *dh_delivery(const char *request_id);
long dh_monotonic_ms(void);

#endif
