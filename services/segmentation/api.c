/* The admin API's front door: /v1/channels/{channel_id}/... is checked
 * against the `channels` table (an unknown channel, or another tenant's,
 * is 404 on every path), a connection is borrowed from the pool, and each
 * part's route function is offered the request in the order of `routes`. */
#include "app.h"

#include <stdio.h>
#include <string.h>

#include "admin_api.h"
#include "csv_routes.h"
#include "db.h"
#include "db_pool.h"
#include "log.h"
#include "people_routes.h"
#include "segments.h"

/* How long a request waits for a free database connection before 503. */
#define SEG_POOL_WAIT_MS 2000

/* Every part of the API. Add a part's route function here. */
static const seg_route_fn routes[] = {
    NULL,                /* keeps the array non-empty until the first part lands */
    tag_bulk_route,      /* filter part: tags/{name}/friends[/remove]; before tags_route */
    tags_route,          /* tags part (people_routes.h): tags */
    friend_tags_route,   /* tags part: one friend's tags */
    fields_route,        /* tags part: fields */
    friend_fields_route, /* tags part: one friend's field values */
    templates_route,     /* tags part: templates */
    talk_route,          /* tags part: the 1:1 talk */
    segments_route,      /* filter part: segments, preview, count */
    csv_route_export,    /* csv part: friends.csv */
    csv_route_import,    /* csv part: friends/import.csv; before friends_read_route */
    friends_read_route,  /* filter part: friends list, one friend */
};

const char *seg_path_next(const char *rest, char out[SEG_ID_MAX + 1])
{
    size_t n = strcspn(rest, "/");
    if (n == 0 || n > SEG_ID_MAX)
        return NULL;
    memcpy(out, rest, n);
    out[n] = '\0';
    return rest[n] == '/' ? rest + n + 1 : rest + n;
}

int seg_channel_lookup(struct db *db, const char *channel_id, char tenant[AUTH_FIELD_MAX],
                       char timezone[SEG_TZ_MAX])
{
    struct db_result *res = NULL;
    const char *params[] = {channel_id};
    if (db_exec(db,
                "SELECT tenant_id, timezone FROM channels WHERE channel_id = $1 AND NOT deleted", 1,
                params, &res) != DB_OK)
        return -1;
    int found = db_result_rows(res) == 1;
    if (found) {
        snprintf(tenant, AUTH_FIELD_MAX, "%s", db_result_value(res, 0, 0));
        snprintf(timezone, SEG_TZ_MAX, "%s", db_result_value(res, 0, 1));
    }
    db_result_free(&res);
    return found;
}

void seg_respond_db_error(struct seg_request *r, const char *what)
{
    log_error("database error", "what", what, "channel_id", r->channel_id, "error",
              r->db ? db_error_message(r->db) : "no connection");
    httpd_respond_error(r->resp, 500, "database", "the database failed; try again", NULL);
}

void seg_api(void *ctx, const struct auth_claims *claims, const struct httpd_request *req,
             struct httpd_response *resp)
{
    static const char prefix[] = "/v1/channels/";
    struct seg *app = ctx;
    const char *path = httpd_request_path(req);
    if (strncmp(path, prefix, sizeof prefix - 1) != 0) {
        httpd_respond_error(resp, 404, "not_found", "no such resource", NULL);
        return;
    }
    char channel_id[SEG_ID_MAX + 1];
    const char *rest = seg_path_next(path + sizeof prefix - 1, channel_id);
    if (!rest) {
        httpd_respond_error(resp, 404, "not_found", "no such channel", NULL);
        return;
    }
    struct seg_request r = {.app = app,
                            .claims = claims,
                            .req = req,
                            .resp = resp,
                            .channel_id = channel_id,
                            .rest = rest};
    r.db = db_pool_acquire(app->pool, SEG_POOL_WAIT_MS);
    if (!r.db) {
        httpd_response_header(resp, "Retry-After", "1");
        httpd_respond_error(resp, 503, "busy", "every database connection is in use; try again",
                            NULL);
        return;
    }
    char tenant[AUTH_FIELD_MAX];
    char timezone[SEG_TZ_MAX];
    int found = seg_channel_lookup(r.db, channel_id, tenant, timezone);
    if (found < 0) {
        seg_respond_db_error(&r, "channel lookup");
    } else if (found == 0) {
        httpd_respond_error(resp, 404, "not_found", "no such channel", NULL);
    } else if (admin_api_allow(claims, tenant, "viewer", resp)) {
        r.timezone = timezone;
        bool taken = false;
        for (size_t i = 0; !taken && i < sizeof routes / sizeof routes[0]; i++)
            taken = routes[i] && routes[i](&r);
        if (!taken)
            httpd_respond_error(resp, 404, "not_found", "no such resource", NULL);
    }
    db_pool_release(app->pool, &r.db);
}
