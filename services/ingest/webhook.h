/* The public port's routes: POST /line/webhook/{channel_id} (look up the
 * channel, verify LINE's signature over the raw body, parse, make every
 * event durable, answer) and GET /r/{token} (handed to links.h). */
#ifndef KIZUNA_INGEST_WEBHOOK_H
#define KIZUNA_INGEST_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "httpd.h"
#include "registry.h"

struct webhook;
struct spool;
struct links;
struct kafka_producer;

/* registry_lookup's contract: 0 found, 1 unknown, < 0 registry unreachable. */
typedef int (*webhook_lookup_fn)(void *ctx, const char *channel_id, struct channel_view *out);

struct webhook_options {
    webhook_lookup_fn lookup; /* required */
    void *lookup_ctx;
    struct spool *spool;             /* required; borrowed */
    struct kafka_producer *producer; /* required; borrowed (the spool's) */
    struct links *links;             /* GET /r/{token}; NULL answers 404 there */
    int ack_budget_ms;               /* INGEST_ACK_BUDGET_MS */
    int spool_workers;               /* threads writing the spool after the budget; 0: 2 */
};

/* Registers the metrics and starts the ack-wait threads (ackwait.h); the
 * spool, producer and links in opts are borrowed and must outlive the
 * webhook. Main thread, at startup. Returns NULL + errstr. */
struct webhook *webhook_new(const struct webhook_options *opts, char *errstr, size_t errcap);
/* Ends what still waits for acks and stops the threads: after the public
 * server stopped (its httpd_stop answered what was still open) and before
 * the spool is freed. Main thread; idempotent; accepts NULL. */
void webhook_stop(struct webhook *wh);
/* Stops if needed, then frees. Accepts NULL. */
void webhook_free(struct webhook **wh);

/* The public server's httpd_route_fn (ctx is the webhook): refuses, from
 * the method, path and headers alone and before any body is read, what no
 * body could make right: an unknown path (404), a method the path does not
 * take (405), a webhook for an unknown channel (404) or while the registry
 * is unreachable (503). Worker threads, several at once. */
bool webhook_admit(void *ctx, const struct httpd_request *req, struct httpd_response *resp);

/* The public server's httpd_handler (ctx is the webhook). Runs on its
 * worker threads, several at once, and never waits for the broker: a
 * webhook request is deferred (httpd_defer) until its events are durable,
 * and answered from the producer's poll thread or a spool worker. */
void webhook_route(void *ctx, const struct httpd_request *req, struct httpd_response *resp);

#endif
