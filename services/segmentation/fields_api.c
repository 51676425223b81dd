/* The fields part of the admin API: the channel's typed custom fields at
 * /fields and /fields/{name}, and one friend's values at
 * PATCH /friends/{user_id}/fields, where every member is checked and
 * applied in one transaction (one bad value applies nothing). Values go
 * through fields.c, which emits FieldChanged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"
#include "app.h"
#include "db.h"
#include "fields.h"
#include "friend_json.h"
#include "people_routes.h"
#include "seg_req.h"

#define FIELD_CHOICES_MAX 100
#define FIELD_CHOICE_MAX 64
/* Members of one PATCH: more fields than a channel sensibly has. */
#define FIELD_PATCH_MAX 100

#define FIELD_COLUMNS                                                                              \
    "name, type, COALESCE(array_to_json(choices)::text, 'null'), " SEG_SQL_TIME("created_at") ", " \
                                                                                              "id"

static json_t *field_json(const struct db_result *res, int row)
{
    json_t *f = json_pack("{s:s, s:s, s:s}", "name", db_result_value(res, row, 0), "type",
                          db_result_value(res, row, 1), "created_at", db_result_value(res, row, 3));
    json_t *choices = json_loads(db_result_value(res, row, 2), JSON_DECODE_ANY, NULL);
    if (json_is_array(choices))
        json_object_set(f, "choices", choices);
    json_decref(choices);
    return f;
}

static void fields_list(struct seg_request *r)
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
                "SELECT " FIELD_COLUMNS " FROM fields WHERE channel_id = $1 "
                "AND ($2::bigint IS NULL OR id > $2::bigint) ORDER BY id LIMIT $3::int",
                3, params, &res) != DB_OK) {
        seg_respond_db_error(r, "fields list");
        return;
    }
    seg_list_respond(r, &res, limit, "fields", 4, field_json);
}

/* choices: 1..FIELD_CHOICES_MAX distinct plain strings, for choice only. */
static int choices_read(const struct jsonf *root, enum field_type type, struct jsonf *arr)
{
    int got = jsonf_array(root, "choices", 0, FIELD_CHOICES_MAX, arr);
    if (got < 0)
        return -1;
    if (type != FIELD_CHOICE)
        return got == 1
                   ? jsonf_fail(root, "choices", JSONF_VALUE, "only a choice field has choices")
                   : 0;
    if (got == 0)
        return jsonf_fail(root, "choices", JSONF_MISSING, "a choice field needs its choices");
    size_t n = jsonf_size(arr);
    if (n == 0)
        return jsonf_fail(root, "choices", JSONF_VALUE, "must hold at least one choice");
    for (size_t i = 0; i < n; i++) {
        const char *s;
        if (jsonf_item_string(arr, i, JSONF_NONEMPTY | JSONF_PLAIN | JSONF_CHARS, FIELD_CHOICE_MAX,
                              &s, NULL) < 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_array_get(arr->node, j)), s) == 0)
                return jsonf_item_fail(arr, i, JSONF_VALUE, "repeats choice %zu", j);
    }
    return 1;
}

static void field_create(struct seg_request *r)
{
    json_t *doc = seg_body_object(r);
    if (!doc)
        return;
    struct jsonf_error err;
    struct jsonf_reader reader = {.errors = &err, .cap = 1};
    struct jsonf root, arr;
    jsonf_root(&root, &reader, doc);
    static const char *const known[] = {"name", "type", "choices"};
    static const char *const types[] = {"text", "number", "date", "datetime", "choice"};
    const char *name = NULL;
    size_t len = 0;
    int type = 0;
    if (jsonf_known(&root, known, 3) < 0 ||
        jsonf_string(&root, "name", JSONF_REQUIRED | JSONF_NONEMPTY | JSONF_PLAIN | JSONF_CHARS,
                     FIELD_NAME_MAX, &name, &len) < 0 ||
        (!field_name_valid(name, len) &&
         jsonf_fail(&root, "name", JSONF_VALUE, "must not contain / | { or }") < 0) ||
        jsonf_enum(&root, "type", JSONF_REQUIRED, types, 5, &type) < 0 ||
        choices_read(&root, (enum field_type)type, &arr) < 0) {
        admin_api_respond_invalid(r->resp, &err, NULL, NULL);
        json_decref(doc);
        return;
    }
    char *choices = type == FIELD_CHOICE ? json_dumps(arr.node, JSON_COMPACT) : NULL;
    const char *params[] = {r->channel_id, name, types[type], choices};
    struct db_result *res = NULL;
    enum db_status st =
        db_exec(r->db,
                "INSERT INTO fields (channel_id, name, type, choices) VALUES ($1, $2, $3, "
                "CASE WHEN $4::json IS NULL THEN NULL ELSE "
                "ARRAY(SELECT json_array_elements_text($4::json)) END) "
                "ON CONFLICT (channel_id, name) DO NOTHING RETURNING " FIELD_COLUMNS,
                4, params, &res);
    if (st != DB_OK)
        seg_respond_db_error(r, "field insert");
    else if (db_result_rows(res) == 0)
        httpd_respond_error(r->resp, 409, "conflict", "a field of this name exists", "name");
    else
        admin_api_respond_json(r->resp, 201, field_json(res, 0));
    db_result_free(&res);
    free(choices);
    json_decref(doc);
}

static void field_get(struct seg_request *r, const char *name)
{
    const char *params[] = {r->channel_id, name};
    struct db_result *res = NULL;
    if (db_exec(r->db, "SELECT " FIELD_COLUMNS " FROM fields WHERE channel_id = $1 AND name = $2",
                2, params, &res) != DB_OK) {
        seg_respond_db_error(r, "field get");
        return;
    }
    if (db_result_rows(res) == 1)
        admin_api_respond_json(r->resp, 200, field_json(res, 0));
    else
        httpd_respond_error(r->resp, 404, "unknown_field", "no such field in this channel", NULL);
    db_result_free(&res);
}

static void field_delete(struct seg_request *r, const char *name)
{
    const char *params[] = {r->channel_id, name};
    struct db_result *res = NULL;
    if (db_exec(r->db,
                "SELECT name FROM segments WHERE channel_id = $1 AND "
                "jsonb_path_exists(filter, '$.** ? (@.field == $n)', "
                "jsonb_build_object('n', $2::text)) LIMIT 1",
                2, params, &res) != DB_OK) {
        seg_respond_db_error(r, "field use");
        return;
    }
    if (db_result_rows(res) == 1) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "the field is used by the saved segment \"%.100s\"; change it first",
                 db_result_value(res, 0, 0));
        httpd_respond_error(r->resp, 409, "field_in_use", msg, NULL);
        db_result_free(&res);
        return;
    }
    db_result_free(&res);
    if (db_exec(r->db, "DELETE FROM fields WHERE channel_id = $1 AND name = $2", 2, params, &res) !=
        DB_OK)
        seg_respond_db_error(r, "field delete");
    else if (db_result_affected(res) == 0)
        httpd_respond_error(r->resp, 404, "unknown_field", "no such field in this channel", NULL);
    else
        httpd_respond(r->resp, 204, NULL, NULL, 0);
    db_result_free(&res);
}

/* /fields and /fields/{name}. */
bool fields_route(struct seg_request *r)
{
    if (strcmp(r->rest, "fields") == 0) {
        static const struct admin_method methods[] = {{"GET", "viewer"}, {"POST", "operator"}};
        int m = admin_api_route(r->claims, r->req, r->resp, methods, 2);
        if (m == 0)
            fields_list(r);
        else if (m == 1)
            field_create(r);
        return true;
    }
    if (strncmp(r->rest, "fields/", 7) != 0)
        return false;
    const char *name = r->rest + 7;
    static const struct admin_method methods[] = {{"GET", "viewer"}, {"DELETE", "operator"}};
    int m = admin_api_route(r->claims, r->req, r->resp, methods, 2);
    if (m < 0)
        return true;
    if (!field_name_valid(name, strlen(name)))
        httpd_respond_error(r->resp, 404, "unknown_field", "no such field in this channel", NULL);
    else if (m == 0)
        field_get(r, name);
    else
        field_delete(r, name);
    return true;
}

/* --- PATCH /friends/{user_id}/fields ------------------------------------------ */

/* One member of the patch, checked and applied inside the transaction:
 * 0 done, 1 refused (answered 400), -1 database error. */
static int patch_member(struct seg_request *r, const char *user_id, int64_t friend_id,
                        const char *name, json_t *v, bool *changed)
{
    char msg[JSONF_REASON_MAX + FIELD_NAME_MAX * 4 + 8];
    if (!field_name_valid(name, strlen(name))) {
        httpd_respond_error(r->resp, 400, "unknown_field", "not a field name", name);
        return 1;
    }
    struct field_def def;
    int found = field_lookup(r->db, r->channel_id, name, &def);
    if (found < 0)
        return -1;
    if (found == 0) {
        snprintf(msg, sizeof msg, "%s: no such field in this channel", name);
        httpd_respond_error(r->resp, 400, "unknown_field", msg, name);
        return 1;
    }
    int rc = 0;
    const char *why = NULL;
    struct field_value value;
    if (json_is_null(v)) {
        rc = field_clear(r->db, r->claims->tenant, r->channel_id, user_id, friend_id, &def, NULL);
    } else if (json_is_object(v)) {
        /* Scoring: {"add": n} on a number field. */
        json_t *n = json_object_get(v, "add");
        if (def.type != FIELD_NUMBER)
            why = "only a number field can be added to";
        else if (json_object_size(v) != 1 || !n)
            why = "an object must be {\"add\": n}";
        else if (field_value_from_json(&def, n, &value, &why) == 0)
            rc = field_add(r->db, r->claims->tenant, r->channel_id, user_id, friend_id, &def,
                           value.text, NULL);
    } else if (field_value_from_json(&def, v, &value, &why) == 0) {
        rc = field_set(r->db, r->claims->tenant, r->channel_id, user_id, friend_id, &def, &value,
                       NULL);
    }
    field_def_clear(&def);
    if (why) {
        snprintf(msg, sizeof msg, "%s: %s", name, why);
        httpd_respond_error(r->resp, 400, "invalid_value", msg, name);
        return 1;
    }
    *changed = true;
    return rc < 0 ? -1 : 0;
}

static void friend_fields_patch(struct seg_request *r, const char *user_id)
{
    json_t *doc = seg_body_object(r);
    if (!doc)
        return;
    if (json_object_size(doc) > FIELD_PATCH_MAX) {
        httpd_respond_error(r->resp, 400, "too_long", "at most 100 fields in one patch", NULL);
        json_decref(doc);
        return;
    }
    if (db_begin(r->db) != DB_OK) {
        seg_respond_db_error(r, "begin");
        json_decref(doc);
        return;
    }
    int64_t friend_id;
    if (seg_friend_find(r, user_id, true, &friend_id, NULL) != 1) {
        db_rollback(r->db);
        json_decref(doc);
        return;
    }
    const char *name;
    json_t *v;
    bool changed = false;
    json_object_foreach(doc, name, v)
    {
        int rc = patch_member(r, user_id, friend_id, name, v, &changed);
        if (rc != 0) {
            if (rc < 0)
                seg_fail_tx(r, "field patch");
            else
                db_rollback(r->db);
            json_decref(doc);
            return;
        }
    }
    json_decref(doc);
    if (!seg_commit(r, changed))
        return;
    json_t *friend = friend_json_load(r->db, r->channel_id, user_id);
    if (!friend)
        seg_respond_db_error(r, "friend load");
    else
        admin_api_respond_json(r->resp, 200, friend);
}

/* PATCH /friends/{user_id}/fields. */
bool friend_fields_route(struct seg_request *r)
{
    char user_id[SEG_ID_MAX + 1];
    const char *after;
    if (!seg_path_friend(r->rest, "fields", user_id, &after) || after[0] != '\0')
        return false;
    static const struct admin_method methods[] = {{"PATCH", "operator"}};
    if (admin_api_route(r->claims, r->req, r->resp, methods, 1) >= 0)
        friend_fields_patch(r, user_id);
    return true;
}
