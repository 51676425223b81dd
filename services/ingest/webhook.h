/* The public port's routes: POST /line/webhook/{channel_id} (look up the
 * channel, verify LINE's signature over the raw body, parse, make every
 * event durable, answer) and GET /r/{token} (handed to links.h). */
#ifndef KIZUNA_INGEST_WEBHOOK_H
#define KIZUNA_INGEST_WEBHOOK_H

#include <stddef.h>

#include "httpd.h"
#include "registry.h"

struct webhook;
struct spool;
struct links;

/* registry_lookup's contract: 0 found, 1 unknown, < 0 registry unreachable. */
typedef int (*webhook_lookup_fn)(void *ctx, const char *channel_id, struct channel_view *out);

struct webhook_options {
    webhook_lookup_fn lookup; /* required */
    void *lookup_ctx;
    struct spool *spool; /* required; borrowed */
    struct links *links; /* GET /r/{token}; NULL answers 404 there */
    int ack_budget_ms;   /* INGEST_ACK_BUDGET_MS */
};

/* Registers the metrics; everything in opts is borrowed and must outlive
 * the webhook. Main thread, at startup. Returns NULL + errstr. */
struct webhook *webhook_new(const struct webhook_options *opts, char *errstr, size_t errcap);
/* After the public server stopped. Accepts NULL. */
void webhook_free(struct webhook **wh);

/* The public server's httpd_handler (ctx is the webhook). Runs on its
 * worker threads, several at once; a webhook request blocks up to the ack
 * budget plus a spool write. */
void webhook_route(void *ctx, const struct httpd_request *req, struct httpd_response *resp);

#endif
