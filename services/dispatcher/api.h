/* The dispatcher's admin API under /v1 (openapi.yaml): the delivery log,
 * this month's quota per channel, and per-channel rate limits. Every answer
 * is scoped by the token's tenant: a channel belongs to the tenant its
 * ChannelConfig names, and another tenant's channel answers 404. Handlers
 * run on the admin server's worker threads; the API's database connection
 * is shared under a lock (admin traffic is light). */
#ifndef KIZUNA_DISPATCHER_API_H
#define KIZUNA_DISPATCHER_API_H

#include <stddef.h>

#include "auth.h"
#include "httpd.h"

struct channels;
struct sender;
struct api;

/* channels and sender are borrowed and must outlive the API (stop the
 * admin server first). Returns NULL with errstr. */
struct api *api_new(const char *dsn, struct channels *channels, struct sender *sender, char *errstr,
                    size_t errcap);
void api_free(struct api **a);

/* service_api_handler: every /v1 route but /v1/whoami. */
void api_handle(void *ctx, const struct auth_claims *claims, const struct httpd_request *req,
                struct httpd_response *resp);

#endif
