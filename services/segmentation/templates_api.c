/* Templates: named bundles of 1..5 LINE messages, validated when stored
 * (common/line_message.h, {{field:NAME}} against the channel's fields), so
 * sends and actions that use one never fail on its shape. Names are unique
 * per channel (409). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"
#include "app.h"
#include "db.h"
#include "people_routes.h"
#include "seg_req.h"

#define TEMPLATE_NAME_MAX 100

#define TEMPLATE_COLUMNS                                                                         \
    "id, name, messages::text, " SEG_SQL_TIME("created_at") ", " SEG_SQL_TIME("updated_at") ", " \
                                                                                            "seq"

static json_t *template_json(const struct db_result *res, int row)
{
    json_t *messages = json_loads(db_result_value(res, row, 2), 0, NULL);
    return json_pack("{s:s, s:s, s:o, s:s, s:s}", "id", db_result_value(res, row, 0), "name",
                     db_result_value(res, row, 1), "messages", messages ? messages : json_array(),
                     "created_at", db_result_value(res, row, 3), "updated_at",
                     db_result_value(res, row, 4));
}

static void templates_list(struct seg_request *r)
{
    int limit;
    const char *cursor;
    if (!seg_list_params(r, &limit, &cursor))
        return;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {r->channel_id, cursor, lim};
    struct db_result *res = NULL;
    if (db_exec(r->db,
                "SELECT " TEMPLATE_COLUMNS " FROM templates WHERE channel_id = $1 "
                "AND ($2::bigint IS NULL OR seq > $2::bigint) ORDER BY seq LIMIT $3::int",
                3, params, &res) != DB_OK) {
        seg_respond_db_error(r, "templates list");
        return;
    }
    seg_list_respond(r, &res, limit, "templates", 5, template_json);
}

/* Reads {"name","messages"} (both required): 1 with name and the messages'
 * JSON text (caller frees), 0 after answering. */
static int template_body(struct seg_request *r, json_t *doc, const char **name, char **messages)
{
    struct jsonf_error err;
    struct jsonf_reader reader = {.errors = &err, .cap = 1};
    struct jsonf root;
    jsonf_root(&root, &reader, doc);
    static const char *const known[] = {"name", "messages"};
    if (jsonf_known(&root, known, 2) < 0 ||
        jsonf_string(&root, "name", JSONF_REQUIRED | JSONF_NONEMPTY | JSONF_PLAIN | JSONF_CHARS,
                     TEMPLATE_NAME_MAX, name, NULL) < 0) {
        admin_api_respond_invalid(r->resp, &err, NULL, NULL);
        return 0;
    }
    if (!seg_messages_read(r, &root, "messages"))
        return 0;
    *messages = json_dumps(json_object_get(doc, "messages"), JSON_COMPACT);
    if (!*messages) {
        httpd_respond_error(r->resp, 500, "internal", "out of memory", NULL);
        return 0;
    }
    return 1;
}

/* Runs an INSERT or UPDATE ... RETURNING TEMPLATE_COLUMNS and answers. */
static void template_store(struct seg_request *r, const char *sql, const char *const *params, int n,
                           int status)
{
    struct db_result *res = NULL;
    enum db_status st = db_exec(r->db, sql, n, params, &res);
    if (st != DB_OK && strcmp(db_error_sqlstate(r->db), "23505") == 0)
        httpd_respond_error(r->resp, 409, "conflict", "a template of this name exists", "name");
    else if (st != DB_OK)
        seg_respond_db_error(r, "template store");
    else if (db_result_rows(res) == 0)
        httpd_respond_error(r->resp, 404, "not_found", "no such template", NULL);
    else
        admin_api_respond_json(r->resp, status, template_json(res, 0));
    db_result_free(&res);
}

static void template_write(struct seg_request *r, const char *id)
{
    json_t *doc = seg_body_object(r);
    if (!doc)
        return;
    const char *name;
    char *messages = NULL;
    if (template_body(r, doc, &name, &messages)) {
        if (id) {
            const char *params[] = {r->channel_id, id, name, messages};
            template_store(
                r,
                "UPDATE templates SET name = $3, messages = $4::jsonb, updated_at = "
                "now() WHERE channel_id = $1 AND id = $2::uuid RETURNING " TEMPLATE_COLUMNS,
                params, 4, 200);
        } else {
            const char *params[] = {r->channel_id, name, messages};
            template_store(r,
                           "INSERT INTO templates (channel_id, name, messages) "
                           "VALUES ($1, $2, $3::jsonb) RETURNING " TEMPLATE_COLUMNS,
                           params, 3, 201);
        }
    }
    free(messages);
    json_decref(doc);
}

static void template_get(struct seg_request *r, const char *id)
{
    const char *params[] = {r->channel_id, id};
    struct db_result *res = NULL;
    if (db_exec(r->db,
                "SELECT " TEMPLATE_COLUMNS
                " FROM templates WHERE channel_id = $1 AND id = $2::uuid",
                2, params, &res) != DB_OK)
        seg_respond_db_error(r, "template get");
    else if (db_result_rows(res) == 1)
        admin_api_respond_json(r->resp, 200, template_json(res, 0));
    else
        httpd_respond_error(r->resp, 404, "not_found", "no such template", NULL);
    db_result_free(&res);
}

static void template_delete(struct seg_request *r, const char *id)
{
    const char *params[] = {r->channel_id, id};
    struct db_result *res = NULL;
    if (db_exec(r->db, "DELETE FROM templates WHERE channel_id = $1 AND id = $2::uuid", 2, params,
                &res) != DB_OK)
        seg_respond_db_error(r, "template delete");
    else if (db_result_affected(res) == 0)
        httpd_respond_error(r->resp, 404, "not_found", "no such template", NULL);
    else
        httpd_respond(r->resp, 204, NULL, NULL, 0);
    db_result_free(&res);
}

bool templates_route(struct seg_request *r)
{
    if (strcmp(r->rest, "templates") == 0) {
        static const struct admin_method methods[] = {{"GET", "viewer"}, {"POST", "operator"}};
        int m = admin_api_route(r->claims, r->req, r->resp, methods, 2);
        if (m == 0)
            templates_list(r);
        else if (m == 1)
            template_write(r, NULL);
        return true;
    }
    if (strncmp(r->rest, "templates/", 10) != 0)
        return false;
    const char *id = r->rest + 10;
    static const struct admin_method methods[] = {
        {"GET", "viewer"}, {"PUT", "operator"}, {"DELETE", "operator"}};
    int m = admin_api_route(r->claims, r->req, r->resp, methods, 3);
    if (m < 0)
        return true;
    if (!seg_uuid_valid(id))
        httpd_respond_error(r->resp, 404, "not_found", "no such template", NULL);
    else if (m == 0)
        template_get(r, id);
    else if (m == 1)
        template_write(r, id);
    else
        template_delete(r, id);
    return true;
}
