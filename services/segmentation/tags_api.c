/* The tags part of the admin API: the channel's tags (in folders) at
 * /tags and /tags/{name}, and one friend's tags at
 * /friends/{user_id}/tags[/{name}]. Putting a tag on a friend or taking it
 * off goes through tags.c, which emits the friend event. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"
#include "app.h"
#include "db.h"
#include "people_routes.h"
#include "seg_req.h"
#include "tags.h"

#define TAG_FOLDER_MAX 64
#define TAG_COLUMNS "name, folder, " SEG_SQL_TIME("created_at") ", id"

static json_t *tag_json(const struct db_result *res, int row)
{
    return json_pack("{s:s, s:s, s:s}", "name", db_result_value(res, row, 0), "folder",
                     db_result_value(res, row, 1), "created_at", db_result_value(res, row, 2));
}

/* name's rules beyond what jsonf checks: no '/'. */
static int name_read(const struct jsonf *root, unsigned flags, const char **name)
{
    size_t len = 0;
    int got = jsonf_string(root, "name", flags | JSONF_NONEMPTY | JSONF_PLAIN | JSONF_CHARS,
                           TAG_NAME_MAX, name, &len);
    if (got == 1 && !tag_name_valid(*name, len))
        return jsonf_fail(root, "name", JSONF_VALUE, "must not contain '/'");
    return got;
}

static int folder_read(const struct jsonf *root, const char **folder)
{
    return jsonf_string(root, "folder", JSONF_PLAIN | JSONF_CHARS, TAG_FOLDER_MAX, folder, NULL);
}

/* A saved segment whose filter names the tag: its name, or NULL (and
 * *failed on a database error). Caller frees. */
static char *tag_used_by(struct seg_request *r, const char *name, bool *failed)
{
    const char *params[] = {r->channel_id, name};
    struct db_result *res = NULL;
    *failed = db_exec(r->db,
                      "SELECT name FROM segments WHERE channel_id = $1 AND "
                      "jsonb_path_exists(filter, '$.** ? (@.tag == $n)', "
                      "jsonb_build_object('n', $2::text)) LIMIT 1",
                      2, params, &res) != DB_OK;
    char *seg = !*failed && db_result_rows(res) == 1 ? strdup(db_result_value(res, 0, 0)) : NULL;
    db_result_free(&res);
    return seg;
}

static bool respond_in_use(struct seg_request *r, const char *name)
{
    bool failed;
    char *seg = tag_used_by(r, name, &failed);
    if (failed) {
        seg_respond_db_error(r, "tag use");
        return true;
    }
    if (!seg)
        return false;
    char msg[256];
    snprintf(msg, sizeof msg, "the tag is used by the saved segment \"%.100s\"; change it first",
             seg);
    httpd_respond_error(r->resp, 409, "tag_in_use", msg, NULL);
    free(seg);
    return true;
}

static void tags_list(struct seg_request *r)
{
    int limit;
    const char *cursor;
    if (!seg_list_params(r, &limit, &cursor))
        return;
    const char *folder = httpd_request_query(r->req, "folder");
    if (folder && strlen(folder) > TAG_FOLDER_MAX * 4) {
        httpd_respond_error(r->resp, 400, "invalid_argument", "a folder is at most 64 characters",
                            "folder");
        return;
    }
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {r->channel_id, folder, cursor, lim};
    struct db_result *res = NULL;
    if (db_exec(r->db,
                "SELECT " TAG_COLUMNS " FROM tags WHERE channel_id = $1 "
                "AND ($2::text IS NULL OR folder = $2) AND ($3::bigint IS NULL OR id > $3::bigint) "
                "ORDER BY id LIMIT $4::int",
                4, params, &res) != DB_OK) {
        seg_respond_db_error(r, "tags list");
        return;
    }
    seg_list_respond(r, &res, limit, "tags", 3, tag_json);
}

static void tag_create(struct seg_request *r)
{
    json_t *doc = seg_body_object(r);
    if (!doc)
        return;
    struct jsonf_error err;
    struct jsonf_reader reader = {.errors = &err, .cap = 1};
    struct jsonf root;
    jsonf_root(&root, &reader, doc);
    static const char *const known[] = {"name", "folder"};
    const char *name = NULL, *folder = "";
    if (jsonf_known(&root, known, 2) < 0 || name_read(&root, JSONF_REQUIRED, &name) < 0 ||
        folder_read(&root, &folder) < 0) {
        admin_api_respond_invalid(r->resp, &err, NULL, NULL);
        json_decref(doc);
        return;
    }
    const char *params[] = {r->channel_id, name, folder};
    struct db_result *res = NULL;
    enum db_status st = db_exec(r->db,
                                "INSERT INTO tags (channel_id, name, folder) VALUES ($1, $2, $3) "
                                "ON CONFLICT (channel_id, name) DO NOTHING RETURNING " TAG_COLUMNS,
                                3, params, &res);
    if (st != DB_OK)
        seg_respond_db_error(r, "tag insert");
    else if (db_result_rows(res) == 0)
        httpd_respond_error(r->resp, 409, "conflict", "a tag of this name exists", "name");
    else
        admin_api_respond_json(r->resp, 201, tag_json(res, 0));
    db_result_free(&res);
    json_decref(doc);
}

static void tag_get(struct seg_request *r, const char *name)
{
    const char *params[] = {r->channel_id, name};
    struct db_result *res = NULL;
    if (db_exec(r->db,
                "SELECT " TAG_COLUMNS ", (SELECT count(*) FROM friend_tags ft WHERE ft.tag_id = "
                "tags.id) FROM tags WHERE channel_id = $1 AND name = $2",
                2, params, &res) != DB_OK) {
        seg_respond_db_error(r, "tag get");
        return;
    }
    if (db_result_rows(res) == 1) {
        json_t *tag = tag_json(res, 0);
        json_object_set_new(tag, "friends",
                            json_integer(strtoll(db_result_value(res, 0, 4), NULL, 10)));
        admin_api_respond_json(r->resp, 200, tag);
    } else {
        httpd_respond_error(r->resp, 404, "unknown_tag", "no such tag in this channel", NULL);
    }
    db_result_free(&res);
}

static void tag_patch(struct seg_request *r, const char *name)
{
    json_t *doc = seg_body_object(r);
    if (!doc)
        return;
    struct jsonf_error err;
    struct jsonf_reader reader = {.errors = &err, .cap = 1};
    struct jsonf root;
    jsonf_root(&root, &reader, doc);
    static const char *const known[] = {"name", "folder"};
    const char *new_name = NULL, *folder = NULL;
    if (jsonf_known(&root, known, 2) < 0 || name_read(&root, 0, &new_name) < 0 ||
        folder_read(&root, &folder) < 0) {
        admin_api_respond_invalid(r->resp, &err, NULL, NULL);
        json_decref(doc);
        return;
    }
    if (new_name && strcmp(new_name, name) != 0 && respond_in_use(r, name)) {
        json_decref(doc);
        return;
    }
    const char *params[] = {r->channel_id, name, new_name, folder};
    struct db_result *res = NULL;
    enum db_status st = db_exec(r->db,
                                "UPDATE tags SET name = COALESCE($3, name), "
                                "folder = COALESCE($4, folder) "
                                "WHERE channel_id = $1 AND name = $2 RETURNING " TAG_COLUMNS,
                                4, params, &res);
    if (st != DB_OK && strcmp(db_error_sqlstate(r->db), "23505") == 0)
        httpd_respond_error(r->resp, 409, "conflict", "a tag of this name exists", "name");
    else if (st != DB_OK)
        seg_respond_db_error(r, "tag update");
    else if (db_result_rows(res) == 0)
        httpd_respond_error(r->resp, 404, "unknown_tag", "no such tag in this channel", NULL);
    else
        admin_api_respond_json(r->resp, 200, tag_json(res, 0));
    db_result_free(&res);
    json_decref(doc);
}

static void tag_delete(struct seg_request *r, const char *name)
{
    if (respond_in_use(r, name))
        return;
    const char *params[] = {r->channel_id, name};
    struct db_result *res = NULL;
    if (db_exec(r->db, "DELETE FROM tags WHERE channel_id = $1 AND name = $2", 2, params, &res) !=
        DB_OK)
        seg_respond_db_error(r, "tag delete");
    else if (db_result_affected(res) == 0)
        httpd_respond_error(r->resp, 404, "unknown_tag", "no such tag in this channel", NULL);
    else
        httpd_respond(r->resp, 204, NULL, NULL, 0);
    db_result_free(&res);
}

/* /tags and /tags/{name}. */
bool tags_route(struct seg_request *r)
{
    if (strcmp(r->rest, "tags") == 0) {
        static const struct admin_method methods[] = {{"GET", "viewer"}, {"POST", "operator"}};
        int m = admin_api_route(r->claims, r->req, r->resp, methods, 2);
        if (m == 0)
            tags_list(r);
        else if (m == 1)
            tag_create(r);
        return true;
    }
    if (strncmp(r->rest, "tags/", 5) != 0)
        return false;
    const char *name = r->rest + 5;
    if (strchr(name, '/'))
        return false; /* tags/{name}/... is another part's (names have no '/') */
    static const struct admin_method methods[] = {
        {"GET", "viewer"}, {"PATCH", "operator"}, {"DELETE", "operator"}};
    int m = admin_api_route(r->claims, r->req, r->resp, methods, 3);
    if (m < 0)
        return true;
    if (!tag_name_valid(name, strlen(name))) {
        httpd_respond_error(r->resp, 404, "unknown_tag", "no such tag in this channel", NULL);
        return true;
    }
    if (m == 0)
        tag_get(r, name);
    else if (m == 1)
        tag_patch(r, name);
    else
        tag_delete(r, name);
    return true;
}

/* One friend's tag, added or removed in one transaction with its event. */
static void friend_tag_change(struct seg_request *r, const char *user_id, const char *name,
                              bool add)
{
    if (db_begin(r->db) != DB_OK) {
        seg_respond_db_error(r, "begin");
        return;
    }
    int64_t friend_id;
    if (seg_friend_find(r, user_id, true, &friend_id, NULL) != 1) {
        db_rollback(r->db);
        return;
    }
    int64_t tag_id = tag_lookup(r->db, r->channel_id, name);
    if (tag_id < 0) {
        seg_fail_tx(r, "tag lookup");
        return;
    }
    if (tag_id == 0) {
        db_rollback(r->db);
        char msg[TAG_NAME_MAX * 4 + 32];
        snprintf(msg, sizeof msg, "no tag \"%s\" in this channel", name);
        /* In the body: a 400 naming the member; in the path: the resource is 404. */
        httpd_respond_error(r->resp, add ? 400 : 404, "unknown_tag", msg, add ? "tag" : NULL);
        return;
    }
    int changed = add ? tag_add(r->db, r->claims->tenant, r->channel_id, user_id, friend_id, tag_id,
                                name, NULL)
                      : tag_remove(r->db, r->claims->tenant, r->channel_id, user_id, friend_id,
                                   tag_id, name, NULL);
    if (changed < 0) {
        seg_fail_tx(r, add ? "tag add" : "tag remove");
        return;
    }
    if (!seg_commit(r, changed == 1))
        return;
    if (add)
        admin_api_respond_json(
            r->resp, 200,
            json_pack("{s:s, s:s, s:b}", "user_id", user_id, "tag", name, "added", changed == 1));
    else
        httpd_respond(r->resp, 204, NULL, NULL, 0);
}

/* POST /friends/{user_id}/tags and DELETE /friends/{user_id}/tags/{name}. */
bool friend_tags_route(struct seg_request *r)
{
    char user_id[SEG_ID_MAX + 1];
    const char *after;
    if (!seg_path_friend(r->rest, "tags", user_id, &after))
        return false;
    if (after[0] == '\0') {
        static const struct admin_method methods[] = {{"POST", "operator"}};
        if (admin_api_route(r->claims, r->req, r->resp, methods, 1) < 0)
            return true;
        json_t *doc = seg_body_object(r);
        if (!doc)
            return true;
        struct jsonf_error err;
        struct jsonf_reader reader = {.errors = &err, .cap = 1};
        struct jsonf root;
        jsonf_root(&root, &reader, doc);
        static const char *const known[] = {"tag"};
        const char *name = NULL;
        size_t len = 0;
        if (jsonf_known(&root, known, 1) < 0 ||
            jsonf_string(&root, "tag", JSONF_REQUIRED | JSONF_NONEMPTY | JSONF_PLAIN | JSONF_CHARS,
                         TAG_NAME_MAX, &name, &len) < 0 ||
            (!tag_name_valid(name, len) &&
             jsonf_fail(&root, "tag", JSONF_VALUE, "must not contain '/'") < 0))
            admin_api_respond_invalid(r->resp, &err, NULL, NULL);
        else
            friend_tag_change(r, user_id, name, true);
        json_decref(doc);
        return true;
    }
    static const struct admin_method methods[] = {{"DELETE", "operator"}};
    if (admin_api_route(r->claims, r->req, r->resp, methods, 1) < 0)
        return true;
    const char *name = after + 1;
    if (after[0] != '/' || !tag_name_valid(name, strlen(name)))
        httpd_respond_error(r->resp, 404, "unknown_tag", "no such tag in this channel", NULL);
    else
        friend_tag_change(r, user_id, name, false);
    return true;
}
