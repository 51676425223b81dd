/* A friend as the API shows it (openapi.yaml's Friend): profile, state, route,
 * tag names and typed field values ({NAME: number | "YYYY-MM-DD" |
 * RFC 3339 | text}). One SELECT list and one reader, so every route that
 * answers a Friend (the friends list, one friend, PATCH fields) shows the
 * same thing. Any thread, with its own db connection. */
#ifndef KIZUNA_SEGMENTATION_FRIEND_JSON_H
#define KIZUNA_SEGMENTATION_FRIEND_JSON_H

#include <stdint.h>

#include <jansson.h>

struct db;
struct db_result;

/* The columns friend_json_row reads, over `friends f` (13 of them, the
 * first f.id). Tags and fields are aggregated per friend in subqueries. */
extern const char friend_json_columns[];
#define FRIEND_JSON_NCOLS 13

/* The Friend at row of res, its columns from col0 on (friend_json_columns).
 * A new reference, or NULL when out of memory. */
json_t *friend_json_row(const struct db_result *res, int row, int col0);

/* Finds channel_id's friend user_id as a Friend: 1 with *out (a new
 * reference), 0 unknown, -1 database error (db_error_message) or out of
 * memory. */
int friend_json_find(struct db *db, const char *channel_id, const char *user_id, json_t **out);

/* The same as a new reference, NULL when unknown or on an error (the
 * signature the tags part's PATCH .../fields was written against). */
json_t *friend_json_load(struct db *db, const char *channel_id, const char *user_id);

#endif
