/* The Friend object of the admin API (friend_json.h): one row of friends,
 * its tags and its field values, read on the caller's connection. */
#include "friend_json.h"

#include <stdio.h>

#include "db.h"
#include "fields.h"
#include "seg_req.h"

static json_t *text_or_null(const struct db_result *res, int col)
{
    return db_result_isnull(res, 0, col) ? json_null() : json_string(db_result_value(res, 0, col));
}

json_t *friend_json_load(struct db *db, const char *channel_id, const char *user_id)
{
    const char *params[] = {channel_id, user_id};
    struct db_result *res = NULL;
    if (db_exec(db,
                "SELECT id, user_id, display_name, picture_url, status_message, language, "
                "blocked, " SEG_SQL_TIME("added_at") ", " SEG_SQL_TIME(
                    "last_message_at") ", route "
                                       "FROM friends WHERE channel_id = $1 AND user_id = $2",
                2, params, &res) != DB_OK ||
        db_result_rows(res) != 1) {
        db_result_free(&res);
        return NULL;
    }
    char friend_id[24];
    snprintf(friend_id, sizeof friend_id, "%s", db_result_value(res, 0, 0));
    const char *id_params[] = {friend_id};
    json_t *f = json_object();
    json_object_set_new(f, "user_id", json_string(db_result_value(res, 0, 1)));
    json_object_set_new(f, "display_name", text_or_null(res, 2));
    json_object_set_new(f, "picture_url", text_or_null(res, 3));
    json_object_set_new(f, "status_message", text_or_null(res, 4));
    json_object_set_new(f, "language", text_or_null(res, 5));
    json_object_set_new(f, "blocked", json_boolean(db_result_value(res, 0, 6)[0] == 't'));
    json_object_set_new(f, "added_at", text_or_null(res, 7));
    json_object_set_new(f, "last_message_at", text_or_null(res, 8));
    json_object_set_new(f, "route", text_or_null(res, 9));
    db_result_free(&res);

    json_t *tags = json_array();
    json_object_set_new(f, "tags", tags);
    if (db_exec(db,
                "SELECT t.name FROM friend_tags ft JOIN tags t ON t.id = ft.tag_id "
                "WHERE ft.friend_id = $1::bigint ORDER BY t.name",
                1, id_params, &res) != DB_OK)
        goto fail;
    for (int i = 0; i < db_result_rows(res); i++)
        json_array_append_new(tags, json_string(db_result_value(res, i, 0)));
    db_result_free(&res);

    json_t *fields = json_object();
    json_object_set_new(f, "fields", fields);
    if (db_exec(db,
                "SELECT f.name, f.type, COALESCE(ff.text_value, ff.number_value::text, "
                "to_char(ff.date_value, 'YYYY-MM-DD'), " SEG_SQL_TIME(
                    "ff.time_value") ") "
                                     "FROM friend_fields ff JOIN fields f ON f.id = ff.field_id "
                                     "WHERE ff.friend_id = $1::bigint ORDER BY f.name",
                1, id_params, &res) != DB_OK)
        goto fail;
    for (int i = 0; i < db_result_rows(res); i++) {
        enum field_type type = FIELD_TEXT;
        field_type_parse(db_result_value(res, i, 1), &type);
        json_t *v = db_result_isnull(res, i, 2)
                        ? json_null()
                        : field_value_json(type, db_result_value(res, i, 2));
        json_object_set_new(fields, db_result_value(res, i, 0), v);
    }
    db_result_free(&res);
    return f;
fail:
    db_result_free(&res);
    json_decref(f);
    return NULL;
}
