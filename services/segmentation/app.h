/* What segmentation's parts share: the service, the admin API's database
 * connections, the outbox relay to kick after a commit, and the check that
 * a channel in a path belongs to the token's tenant. Each part of the API
 * (friends, tags, fields, segments, templates, talk, CSV) is a route
 * function listed in api.c. */
#ifndef KIZUNA_SEGMENTATION_APP_H
#define KIZUNA_SEGMENTATION_APP_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "httpd.h"

struct db;
struct db_pool;
struct outbox_relay;
struct service;

/* Path segments are at most this long (LINE ids are 33, UUIDs 36). */
#define SEG_ID_MAX 64
#define SEG_TZ_MAX 64
/* JSON request bodies past this are 413 (CSV imports have their own cap). */
#define SEG_BODY_MAX (256 * 1024)

struct seg {
    struct service *svc;
    struct db_pool *pool;       /* the admin API's connections */
    struct outbox_relay *relay; /* kicked after an API commit that enqueued */
};

/* One admin request, routed under /v1/channels/{channel_id}/: the rest of
 * the path after the channel's slash ("friends/U.../tags") in rest. The
 * channel is known to belong to the token's tenant (any role so far: each
 * route checks its own least role with admin_api_route / seg_require). */
struct seg_request {
    struct seg *app;
    const struct auth_claims *claims;
    const struct httpd_request *req;
    struct httpd_response *resp;
    const char *channel_id;
    const char *timezone; /* the channel's IANA zone */
    const char *rest;     /* after "/v1/channels/{c}/", without a query */
    struct db *db;        /* borrowed from app->pool for the request */
};

/* A route: answers and returns true when rest is its path, else false
 * (and touches nothing). */
typedef bool (*seg_route_fn)(struct seg_request *r);

/* The admin API's entry (service_def.api): checks the channel, borrows a
 * connection, and offers the request to each route in api.c in turn; 404
 * when none takes it. */
void seg_api(void *ctx, const struct auth_claims *claims, const struct httpd_request *req,
             struct httpd_response *resp);

/* Looks up channel_id in `channels` (not deleted). Writes its tenant and
 * zone and returns 1; 0 when unknown; -1 on a database error. */
int seg_channel_lookup(struct db *db, const char *channel_id, char tenant[AUTH_FIELD_MAX],
                       char timezone[SEG_TZ_MAX]);

/* Splits rest at its first '/': copies the first segment (at most
 * SEG_ID_MAX bytes, else false) into out and returns a pointer past the
 * slash (or to the terminating NUL). NULL when the segment is empty or too
 * long. Segments are percent-decoded. */
const char *seg_path_next(const char *rest, char out[SEG_ID_MAX + 1]);

/* Answers 500 "database" after logging the db's error with what. */
void seg_respond_db_error(struct seg_request *r, const char *what);

#endif
