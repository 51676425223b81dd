/* See friend_json.h. Field values are turned into typed JSON by PostgreSQL
 * (numeric stays an exact decimal number; dates and times are formatted
 * once here), so the API never rounds a score through a double. */
#include "friend_json.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "seg_page.h"

const char friend_json_columns[] =
    "f.id, f.user_id, f.display_name, f.picture_url, f.status_message, f.language, "
    "f.blocked, " SEG_SQL_TIME("f.added_at") ", " SEG_SQL_TIME(
        "f.last_message_at") ", "
                             "f.route, " SEG_SQL_TIME(
                                 "f.blocked_at") ", "
                                                 "(SELECT coalesce(json_agg(t.name ORDER BY "
                                                 "t.name), '[]'::json)::text"
                                                 " FROM friend_tags ft JOIN tags t ON t.id = "
                                                 "ft.tag_id WHERE ft.friend_id = f.id), "
                                                 "(SELECT coalesce(json_object_agg(d.name, CASE "
                                                 "d.type"
                                                 " WHEN 'number' THEN to_json(v.number_value)"
                                                 " WHEN 'date' THEN to_json(to_char(v.date_value, "
                                                 "'YYYY-MM-DD'))"
                                                 " WHEN 'datetime' THEN to_json(" SEG_SQL_TIME(
                                                     "v.time_value") ")"
                                                                     " ELSE to_json(v.text_value) "
                                                                     "END ORDER BY d.name), "
                                                                     "'{}'::json)::text"
                                                                     " FROM friend_fields v JOIN "
                                                                     "fields d ON d.id = "
                                                                     "v.field_id WHERE v.friend_id "
                                                                     "= f.id)";

static json_t *text_or_null(const struct db_result *res, int row, int col)
{
    return db_result_isnull(res, row, col) ? json_null()
                                           : json_string(db_result_value(res, row, col));
}

/* Numbers past what jansson holds as an integer are read as reals rather
 * than lost; a value that fits no double leaves the member out. */
static json_t *json_text(const char *text, json_t *fallback)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!v)
        v = json_loads(text, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);
    if (!v)
        return fallback;
    json_decref(fallback);
    return v;
}

json_t *friend_json_row(const struct db_result *res, int row, int col0)
{
    static const char *const names[] = {"user_id", "display_name", "picture_url", "status_message",
                                        "language"};
    json_t *friend = json_object();
    if (!friend)
        return NULL;
    for (int i = 0; i < 5; i++)
        json_object_set_new(friend, names[i], text_or_null(res, row, col0 + 1 + i));
    json_object_set_new(friend, "blocked",
                        json_boolean(strcmp(db_result_value(res, row, col0 + 6), "t") == 0));
    json_object_set_new(friend, "added_at", text_or_null(res, row, col0 + 7));
    json_object_set_new(friend, "last_message_at", text_or_null(res, row, col0 + 8));
    json_object_set_new(friend, "route", text_or_null(res, row, col0 + 9));
    json_object_set_new(friend, "blocked_at", text_or_null(res, row, col0 + 10));
    json_object_set_new(friend, "tags",
                        json_text(db_result_value(res, row, col0 + 11), json_array()));
    json_object_set_new(friend, "fields",
                        json_text(db_result_value(res, row, col0 + 12), json_object()));
    return friend;
}

int friend_json_find(struct db *db, const char *channel_id, const char *user_id, json_t **out)
{
    static const char *const sql_head = "SELECT ";
    static const char *const sql_tail =
        " FROM friends f WHERE f.channel_id = $1 AND f.user_id = $2";
    size_t len = strlen(sql_head) + sizeof friend_json_columns + strlen(sql_tail);
    char *sql = malloc(len);
    if (!sql)
        return -1;
    memcpy(sql, sql_head, strlen(sql_head));
    memcpy(sql + strlen(sql_head), friend_json_columns, sizeof friend_json_columns - 1);
    memcpy(sql + strlen(sql_head) + sizeof friend_json_columns - 1, sql_tail, strlen(sql_tail) + 1);
    const char *params[] = {channel_id, user_id};
    struct db_result *res = NULL;
    enum db_status st = db_exec(db, sql, 2, params, &res);
    free(sql);
    if (st != DB_OK)
        return -1;
    int found = db_result_rows(res) == 1;
    if (found) {
        *out = friend_json_row(res, 0, 0);
        if (!*out)
            found = -1;
    }
    db_result_free(&res);
    return found;
}

json_t *friend_json_load(struct db *db, const char *channel_id, const char *user_id)
{
    json_t *friend = NULL;
    return friend_json_find(db, channel_id, user_id, &friend) == 1 ? friend : NULL;
}
