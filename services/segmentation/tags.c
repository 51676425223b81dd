/* Tags on friends: the one place that puts a tag on a friend or takes it
 * off, so the API, bulk changes, CSV import and actions all emit the same
 * TagAdded / TagRemoved, and only when something changed. */
#include "tags.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "friend_events.h"
#include "utf8.h"

int64_t tag_lookup(struct db *db, const char *channel_id, const char *name)
{
    struct db_result *res = NULL;
    const char *params[] = {channel_id, name};
    if (db_exec(db, "SELECT id FROM tags WHERE channel_id = $1 AND name = $2", 2, params, &res) !=
        DB_OK)
        return -1;
    int64_t id = 0;
    if (db_result_rows(res) == 1)
        id = strtoll(db_result_value(res, 0, 0), NULL, 10);
    db_result_free(&res);
    return id;
}

/* Runs sql ($1 tag id, $2 friend id) and emits the event when it touched a
 * row. */
static int tag_change(struct db *db, const char *sql, const char *tenant_id, const char *channel_id,
                      const char *user_id, int64_t friend_id, int64_t tag_id, const char *tag_name,
                      const char *causation_id, bool added)
{
    char tag_text[24], friend_text[24];
    snprintf(tag_text, sizeof tag_text, "%" PRId64, tag_id);
    snprintf(friend_text, sizeof friend_text, "%" PRId64, friend_id);
    const char *params[] = {tag_text, friend_text};
    struct db_result *res = NULL;
    if (db_exec(db, sql, 2, params, &res) != DB_OK)
        return -1;
    long n = db_result_affected(res);
    db_result_free(&res);
    if (n == 0)
        return 0;
    struct friend_tag_event t;
    friend_tag_event_init(&t, added, tag_text, tag_name);
    if (friend_event_emit(db, tenant_id, channel_id, user_id, causation_id, &t.ev) != 0)
        return -1;
    return 1;
}

int tag_add(struct db *db, const char *tenant_id, const char *channel_id, const char *user_id,
            int64_t friend_id, int64_t tag_id, const char *tag_name, const char *causation_id)
{
    return tag_change(db,
                      "INSERT INTO friend_tags (tag_id, friend_id) VALUES ($1::bigint, $2::bigint) "
                      "ON CONFLICT DO NOTHING",
                      tenant_id, channel_id, user_id, friend_id, tag_id, tag_name, causation_id,
                      true);
}

int tag_remove(struct db *db, const char *tenant_id, const char *channel_id, const char *user_id,
               int64_t friend_id, int64_t tag_id, const char *tag_name, const char *causation_id)
{
    return tag_change(
        db, "DELETE FROM friend_tags WHERE tag_id = $1::bigint AND friend_id = $2::bigint",
        tenant_id, channel_id, user_id, friend_id, tag_id, tag_name, causation_id, false);
}

bool tag_name_valid(const char *name, size_t len)
{
    if (len == 0 || !utf8_valid(name, len))
        return false;
    size_t chars = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == '/')
            return false;
        if ((c & 0xc0) != 0x80)
            chars++;
    }
    return chars <= TAG_NAME_MAX;
}
