/* Request helpers shared by the tags, fields, templates and talk routes
 * (seg_req.h). */
#include "seg_req.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_api.h"
#include "db.h"
#include "fields.h"
#include "line_message.h"
#include "outbox_relay.h"

json_t *seg_body_object(struct seg_request *r)
{
    const char *body;
    size_t len;
    if (!admin_api_body(r->req, r->resp, SEG_BODY_MAX, &body, &len))
        return NULL;
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc || !json_is_object(doc)) {
        char msg[256];
        if (doc)
            snprintf(msg, sizeof msg, "the body must be a JSON object");
        else
            snprintf(msg, sizeof msg, "malformed JSON at line %d column %d: %s", jerr.line,
                     jerr.column, jerr.text);
        json_decref(doc);
        httpd_respond_error(r->resp, 400, "invalid_json", msg, NULL);
        return NULL;
    }
    return doc;
}

static bool all_digits(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool seg_list_params(struct seg_request *r, int *limit, const char **cursor)
{
    const char *l = httpd_request_query(r->req, "limit");
    const char *c = httpd_request_query(r->req, "cursor");
    *limit = SEG_LIST_DEFAULT;
    if (l) {
        long v = all_digits(l, 1, 3) ? strtol(l, NULL, 10) : 0;
        if (v < 1 || v > SEG_LIST_MAX) {
            httpd_respond_error(r->resp, 400, "invalid_argument", "an integer from 1 to 500",
                                "limit");
            return false;
        }
        *limit = (int)v;
    }
    if (c && !all_digits(c, 1, 18)) {
        httpd_respond_error(r->resp, 400, "invalid_argument", "not a cursor from this API",
                            "cursor");
        return false;
    }
    *cursor = c;
    return true;
}

int seg_friend_find(struct seg_request *r, const char *user_id, bool lock, int64_t *friend_id,
                    bool *blocked)
{
    const char *params[] = {r->channel_id, user_id};
    struct db_result *res = NULL;
    if (db_exec(r->db,
                lock ? "SELECT id, blocked FROM friends WHERE channel_id = $1 AND user_id = $2 "
                       "FOR UPDATE"
                     : "SELECT id, blocked FROM friends WHERE channel_id = $1 AND user_id = $2",
                2, params, &res) != DB_OK) {
        seg_fail_tx(r, "friend lookup");
        return -1;
    }
    int found = db_result_rows(res) == 1;
    if (found) {
        if (friend_id)
            *friend_id = strtoll(db_result_value(res, 0, 0), NULL, 10);
        if (blocked)
            *blocked = db_result_value(res, 0, 1)[0] == 't';
    } else {
        httpd_respond_error(r->resp, 404, "unknown_friend", "no such friend in this channel", NULL);
    }
    db_result_free(&res);
    return found;
}

bool seg_path_friend(const char *rest, const char *what, char user_id[SEG_ID_MAX + 1],
                     const char **after)
{
    static const char friends[] = "friends/";
    if (strncmp(rest, friends, sizeof friends - 1) != 0)
        return false;
    const char *p = seg_path_next(rest + sizeof friends - 1, user_id);
    size_t n = strlen(what);
    if (!p || p[-1] != '/' || strncmp(p, what, n) != 0 || (p[n] != '\0' && p[n] != '/'))
        return false;
    *after = p + n;
    return true;
}

void seg_fail_tx(struct seg_request *r, const char *what)
{
    seg_respond_db_error(r, what);
    db_rollback(r->db);
}

bool seg_commit(struct seg_request *r, bool kick)
{
    if (db_commit(r->db) != DB_OK) {
        seg_fail_tx(r, "commit");
        return false;
    }
    if (kick)
        outbox_relay_kick(r->app->relay);
    return true;
}

int seg_field_known(void *ctx, const char *name, size_t len)
{
    struct seg_request *r = ctx;
    char buf[FIELD_NAME_MAX * 4 + 1];
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, name, len);
    buf[len] = '\0';
    const char *params[] = {r->channel_id, buf};
    struct db_result *res = NULL;
    if (db_exec(r->db, "SELECT 1 FROM fields WHERE channel_id = $1 AND name = $2", 2, params,
                &res) != DB_OK)
        return -1;
    int found = db_result_rows(res) == 1;
    db_result_free(&res);
    return found;
}

int seg_messages_read(struct seg_request *r, const struct jsonf *obj, const char *key)
{
    struct line_message_vars vars = {.field_known = seg_field_known, .ctx = r};
    int rc = line_messages_check(obj, key, JSONF_REQUIRED, &vars);
    if (rc == 1)
        return 1;
    if (rc == -2)
        seg_respond_db_error(r, "field lookup");
    else
        admin_api_respond_invalid(r->resp, jsonf_error_first(obj->reader), NULL, NULL);
    return 0;
}

bool seg_uuid_valid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

void seg_list_respond(struct seg_request *r, struct db_result **res, int limit, const char *key,
                      int cursor_col, seg_row_json_fn row)
{
    int rows = db_result_rows(*res), shown = rows > limit ? limit : rows;
    json_t *list = json_array();
    for (int i = 0; i < shown; i++)
        json_array_append_new(list, row(*res, i));
    json_t *next =
        rows > limit ? json_string(db_result_value(*res, shown - 1, cursor_col)) : json_null();
    db_result_free(res);
    admin_api_respond_json(r->resp, 200, json_pack("{s:o, s:o}", key, list, "next_cursor", next));
}
