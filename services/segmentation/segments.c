/* Saved segments: named filter trees of a channel, validated (compiled)
 * when stored so that a bad tree is a 400 at once, and counted or
 * previewed by compiling them into one query (filter.h). A segment that
 * other segments use cannot be deleted (409), and a change that would make
 * a segment reach itself is refused as a cycle. */
#include "segments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"
#include "db.h"
#include "filter.h"
#include "seg_page.h"
#include "seg_req.h"

#define SEGMENT_NAME_MAX 100 /* characters */
#define PREVIEW_SAMPLE 20

#define SEGMENT_COLUMNS \
    "id::text, name, filter::text, " SEG_SQL_TIME("created_at") ", " SEG_SQL_TIME("updated_at")

static json_t *segment_json(const struct db_result *res, int row)
{
    json_t *filter = json_loads(db_result_value(res, row, 2), JSON_DECODE_ANY, NULL);
    return json_pack("{s:s,s:s,s:o,s:s,s:s}", "id", db_result_value(res, row, 0), "name",
                     db_result_value(res, row, 1), "filter", filter ? filter : json_null(),
                     "created_at", db_result_value(res, row, 3), "updated_at",
                     db_result_value(res, row, 4));
}

static void segments_list(struct seg_request *r)
{
    int limit;
    const char *cursor;
    if (!seg_page_limit(r, &limit) || !seg_page_cursor(r, &cursor))
        return;
    char fetch[16];
    snprintf(fetch, sizeof fetch, "%d", limit + 1); /* one more: is there a next page? */
    const char *params[] = {r->channel_id, cursor, fetch};
    struct db_result *res = NULL;
    if (db_exec(r->db,
                "SELECT " SEGMENT_COLUMNS " FROM segments WHERE channel_id = $1"
                " AND ($2::uuid IS NULL OR id > $2::uuid) ORDER BY id LIMIT $3::int",
                3, params, &res) != DB_OK) {
        seg_respond_db_error(r, "segments list");
        return;
    }
    seg_list_respond(r, &res, limit, "segments", 0, segment_json);
}

/* Reads {"name","filter"} (each required unless partial) and compiles the
 * filter for segment self (NULL: a new one). False after answering. */
static bool segment_input(struct seg_request *r, json_t *body, bool partial, const char *self,
                          const char **name, char **filter_text)
{
    struct jsonf_error errors[1];
    struct jsonf_reader reader = {.errors = errors, .cap = 1};
    struct jsonf root;
    jsonf_root(&root, &reader, body);
    static const char *const known[] = {"name", "filter"};
    unsigned req = partial ? 0 : JSONF_REQUIRED;
    *name = NULL;
    *filter_text = NULL;
    if (jsonf_known(&root, known, 2) < 0 ||
        jsonf_string(&root, "name", req | JSONF_NONEMPTY | JSONF_PLAIN | JSONF_CHARS,
                     SEGMENT_NAME_MAX, name, NULL) < 0) {
        admin_api_respond_invalid(r->resp, jsonf_error_first(&reader), NULL, NULL);
        return false;
    }
    json_t *filter = json_object_get(body, "filter");
    if (!filter && !partial) {
        httpd_respond_error(r->resp, 400, "missing_field", "filter: is required", "filter");
        return false;
    }
    if (!filter)
        return true;
    struct filter_sql q;
    struct jsonf_error err;
    int rc = filter_compile_segment(r->db, r->channel_id, filter, "filter", 1, self, &q, &err);
    if (rc == -2) {
        seg_respond_db_error(r, "segment filter");
        return false;
    }
    if (rc < 0) {
        seg_page_respond_filter(r, &err);
        return false;
    }
    filter_sql_free(&q);
    *filter_text = json_dumps(filter, JSON_COMPACT);
    if (!*filter_text) {
        httpd_respond_error(r->resp, 500, "internal", "out of memory", NULL);
        return false;
    }
    return true;
}

static void respond_segment(struct seg_request *r, int status, struct db_result *res)
{
    if (status == 201) {
        char location[200];
        snprintf(location, sizeof location, "/v1/channels/%s/segments/%s", r->channel_id,
                 db_result_value(res, 0, 0));
        httpd_response_header(r->resp, "Location", location);
    }
    admin_api_respond_json(r->resp, status, segment_json(res, 0));
}

static void segment_create(struct seg_request *r)
{
    json_t *body = seg_body_object(r);
    if (!body)
        return;
    const char *name;
    char *filter = NULL;
    if (segment_input(r, body, false, NULL, &name, &filter)) {
        const char *params[] = {r->channel_id, name, filter};
        struct db_result *res = NULL;
        if (db_exec(r->db,
                    "INSERT INTO segments (channel_id, name, filter) VALUES ($1, $2, $3::jsonb)"
                    " ON CONFLICT (channel_id, name) DO NOTHING RETURNING " SEGMENT_COLUMNS,
                    3, params, &res) != DB_OK)
            seg_respond_db_error(r, "segment insert");
        else if (db_result_rows(res) == 0)
            httpd_respond_error(r->resp, 409, "conflict",
                                "a segment of this channel has this name already", "name");
        else
            respond_segment(r, 201, res);
        db_result_free(&res);
    }
    free(filter);
    json_decref(body);
}

static void respond_unknown(struct seg_request *r)
{
    httpd_respond_error(r->resp, 404, "unknown_segment", "no such segment in this channel", NULL);
}

static void segment_get(struct seg_request *r, const char *id)
{
    const char *params[] = {r->channel_id, id};
    struct db_result *res = NULL;
    if (db_exec(r->db,
                "SELECT " SEGMENT_COLUMNS " FROM segments WHERE channel_id = $1 AND id = $2::uuid",
                2, params, &res) != DB_OK)
        seg_respond_db_error(r, "segment read");
    else if (db_result_rows(res) == 0)
        respond_unknown(r);
    else
        respond_segment(r, 200, res);
    db_result_free(&res);
}

static void segment_update(struct seg_request *r, const char *id, bool partial)
{
    json_t *body = seg_body_object(r);
    if (!body)
        return;
    const char *name;
    char *filter = NULL;
    if (segment_input(r, body, partial, id, &name, &filter)) {
        const char *params[] = {r->channel_id, id, name, filter};
        struct db_result *res = NULL;
        enum db_status st =
            db_exec(r->db,
                    "UPDATE segments SET name = coalesce($3, name),"
                    " filter = coalesce($4::jsonb, filter), updated_at = now()"
                    " WHERE channel_id = $1 AND id = $2::uuid RETURNING " SEGMENT_COLUMNS,
                    4, params, &res);
        if (st != DB_OK && strcmp(db_error_sqlstate(r->db), "23505") == 0)
            httpd_respond_error(r->resp, 409, "conflict",
                                "a segment of this channel has this name already", "name");
        else if (st != DB_OK)
            seg_respond_db_error(r, "segment update");
        else if (db_result_rows(res) == 0)
            respond_unknown(r);
        else
            respond_segment(r, 200, res);
        db_result_free(&res);
    }
    free(filter);
    json_decref(body);
}

static void segment_delete(struct seg_request *r, const char *id)
{
    const char *params[] = {r->channel_id, id};
    struct db_result *res = NULL;
    /* Refused while another segment of the channel names this one. */
    if (db_exec(r->db,
                "WITH used AS (SELECT 1 FROM segments s, jsonb_path_query(s.filter, '$.**.segment')"
                " p WHERE s.channel_id = $1 AND s.id <> $2::uuid AND jsonb_typeof(p) = 'string'"
                " AND lower(p #>> '{}') = ($2::uuid)::text LIMIT 1)"
                " DELETE FROM segments WHERE channel_id = $1 AND id = $2::uuid"
                " AND NOT EXISTS (SELECT 1 FROM used)"
                " RETURNING 1",
                2, params, &res) != DB_OK) {
        seg_respond_db_error(r, "segment delete");
        return;
    }
    int deleted = db_result_rows(res);
    db_result_free(&res);
    if (deleted) {
        httpd_respond(r->resp, 204, NULL, NULL, 0);
        return;
    }
    /* Not deleted: unknown, or in use. */
    if (db_exec(r->db, "SELECT 1 FROM segments WHERE channel_id = $1 AND id = $2::uuid", 2, params,
                &res) != DB_OK)
        seg_respond_db_error(r, "segment read");
    else if (db_result_rows(res) == 0)
        respond_unknown(r);
    else
        httpd_respond_error(r->resp, 409, "segment_in_use",
                            "another segment uses this one; change that one first", NULL);
    db_result_free(&res);
}

/* count(*) and the first PREVIEW_SAMPLE user ids (by friends.id) of q. */
static void respond_count(struct seg_request *r, const struct filter_sql *q, bool sample)
{
    const char *params[] = {r->channel_id};
    struct db_result *res = NULL;
    if (seg_page_query(r->db, "SELECT count(*) FROM friends f WHERE f.channel_id = $1 AND ", "",
                       params, 1, q, &res) != DB_OK) {
        seg_respond_db_error(r, "segment count");
        return;
    }
    json_t *answer =
        json_pack("{s:I}", "count", (json_int_t)strtoll(db_result_value(res, 0, 0), NULL, 10));
    db_result_free(&res);
    if (sample) {
        if (seg_page_query(r->db, "SELECT f.user_id FROM friends f WHERE f.channel_id = $1 AND ",
                           " ORDER BY f.id LIMIT 20", params, 1, q, &res) != DB_OK) {
            json_decref(answer);
            seg_respond_db_error(r, "segment sample");
            return;
        }
        json_t *users = json_array();
        for (int i = 0; i < db_result_rows(res); i++)
            json_array_append_new(users, json_string(db_result_value(res, i, 0)));
        json_object_set_new(answer, "sample", users);
        db_result_free(&res);
    }
    admin_api_respond_json(r->resp, 200, answer);
}

static void segment_preview(struct seg_request *r)
{
    json_t *body = seg_body_object(r);
    if (!body)
        return;
    struct jsonf_error errors[1];
    struct jsonf_reader reader = {.errors = errors, .cap = 1};
    struct jsonf root;
    jsonf_root(&root, &reader, body);
    static const char *const known[] = {"filter"};
    struct filter_sql q;
    struct jsonf_error err;
    int rc;
    if (jsonf_known(&root, known, 1) < 0)
        admin_api_respond_invalid(r->resp, jsonf_error_first(&reader), NULL, NULL);
    else if ((rc = filter_compile(r->db, r->channel_id, json_object_get(body, "filter"), "filter",
                                  2, &q, &err)) == -2)
        seg_respond_db_error(r, "preview filter");
    else if (rc < 0)
        seg_page_respond_filter(r, &err);
    else {
        respond_count(r, &q, true);
        filter_sql_free(&q);
    }
    json_decref(body);
}

static void segment_count(struct seg_request *r, const char *id)
{
    const char *params[] = {r->channel_id, id};
    struct db_result *res = NULL;
    if (db_exec(r->db, "SELECT filter::text FROM segments WHERE channel_id = $1 AND id = $2::uuid",
                2, params, &res) != DB_OK) {
        seg_respond_db_error(r, "segment read");
        return;
    }
    json_t *filter =
        db_result_rows(res) ? json_loads(db_result_value(res, 0, 0), JSON_DECODE_ANY, NULL) : NULL;
    db_result_free(&res);
    if (!filter) {
        respond_unknown(r);
        return;
    }
    struct filter_sql q;
    struct jsonf_error err;
    int rc = filter_compile_segment(r->db, r->channel_id, filter, "filter", 2, id, &q, &err);
    if (rc == -2)
        seg_respond_db_error(r, "segment filter");
    else if (rc < 0)
        seg_page_respond_filter(r, &err); /* a tag or field it names is gone */
    else {
        respond_count(r, &q, false);
        filter_sql_free(&q);
    }
    json_decref(filter);
}

static const struct admin_method collection_methods[] = {{"GET", "viewer"}, {"POST", "operator"}};
static const struct admin_method item_methods[] = {
    {"GET", "viewer"}, {"PUT", "operator"}, {"PATCH", "operator"}, {"DELETE", "operator"}};
static const struct admin_method preview_methods[] = {{"POST", "viewer"}};
static const struct admin_method count_methods[] = {{"GET", "viewer"}};

bool segments_route(struct seg_request *r)
{
    static const char prefix[] = "segments";
    if (strncmp(r->rest, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *after = r->rest + sizeof prefix - 1;
    if (*after == '\0') {
        int m = admin_api_route(r->claims, r->req, r->resp, collection_methods, 2);
        if (m == 0)
            segments_list(r);
        else if (m == 1)
            segment_create(r);
        return true;
    }
    if (*after != '/')
        return false;
    char id[SEG_ID_MAX + 1];
    const char *tail = seg_path_next(after + 1, id);
    if (!tail)
        return false;
    if (strcmp(id, "preview") == 0 && *tail == '\0') {
        if (admin_api_route(r->claims, r->req, r->resp, preview_methods, 1) == 0)
            segment_preview(r);
        return true;
    }
    if (*tail != '\0' && strcmp(tail, "count") != 0)
        return false;
    bool known_form = filter_uuid_valid(id);
    if (*tail != '\0') {
        if (admin_api_route(r->claims, r->req, r->resp, count_methods, 1) != 0)
            return true;
        if (known_form)
            segment_count(r, id);
        else
            respond_unknown(r);
        return true;
    }
    int m = admin_api_route(r->claims, r->req, r->resp, item_methods, 4);
    if (m < 0)
        return true;
    if (!known_form)
        respond_unknown(r);
    else if (m == 0)
        segment_get(r, id);
    else if (m == 3)
        segment_delete(r, id);
    else
        segment_update(r, id, m == 2);
    return true;
}
