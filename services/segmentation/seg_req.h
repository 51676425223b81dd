/* Small request helpers shared by the tags, fields, templates and talk
 * routes: the JSON body, list paging, the friend in a path, and the time
 * format of answers. They answer the error themselves when they refuse, so
 * a route just returns. Admin-API worker threads; no state. */
#ifndef KIZUNA_SEGMENTATION_SEG_REQ_H
#define KIZUNA_SEGMENTATION_SEG_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "app.h"
#include "jsonf.h"

struct db_result;

/* Lists: ?limit= default and cap (every list in openapi.yaml). */
#define SEG_LIST_DEFAULT 50
#define SEG_LIST_MAX 500

/* A timestamptz column as the RFC 3339 UTC text answers use (SQL only). */
#define SEG_SQL_TIME(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* The request body as a JSON object (415, 413 past SEG_BODY_MAX, 400
 * invalid_json for malformed JSON, a duplicate key or not an object).
 * Returns a new reference, or NULL after answering. */
json_t *seg_body_object(struct seg_request *r);

/* ?limit (1..SEG_LIST_MAX) and ?cursor (digits, NULL when absent): false
 * after answering 400 invalid_argument. */
bool seg_list_params(struct seg_request *r, int *limit, const char **cursor);

/* One row of a list as JSON (a new reference). */
typedef json_t *(*seg_row_json_fn)(const struct db_result *res, int row);

/* Answers a keyset page: 200 {"<key>": [row(res, i) for the first limit
 * rows], "next_cursor": column cursor_col of the last row shown when res
 * holds more than limit rows (the query fetched limit + 1), else null}.
 * Frees *res. The one shape of every list in openapi.yaml. */
void seg_list_respond(struct seg_request *r, struct db_result **res, int limit, const char *key,
                      int cursor_col, seg_row_json_fn row);

/* The friend user_id of the request's channel: 1 with *friend_id and
 * *blocked (either may be NULL) set, 0 after answering 404 unknown_friend,
 * -1 after answering 500. lock takes the row FOR UPDATE (inside a
 * transaction) so that concurrent changes to one friend queue up. */
int seg_friend_find(struct seg_request *r, const char *user_id, bool lock, int64_t *friend_id,
                    bool *blocked);

/* Splits "friends/{user_id}/<what>[/...]": true with user_id copied and
 * *after pointing past "<what>" (at "" or "/..."), else false. */
bool seg_path_friend(const char *rest, const char *what, char user_id[SEG_ID_MAX + 1],
                     const char **after);

/* Rolls back the request's transaction (errors ignored: the connection
 * resets itself) and answers 500 "database" naming what failed. */
void seg_fail_tx(struct seg_request *r, const char *what);

/* Commits; on failure answers 500 and returns false. Kicks the outbox
 * relay when kick (the transaction enqueued). */
bool seg_commit(struct seg_request *r, bool kick);

/* line_message's field_known for the request's channel: ctx is the
 * struct seg_request *. 1 known, 0 unknown, -1 database error. */
int seg_field_known(void *ctx, const char *name, size_t len);

/* Reads obj.key (required) as 1..5 LINE messages whose {{field:NAME}}s
 * are fields of the channel: 1 valid; 0 after answering 400 (the path in
 * error.field) or 500. */
int seg_messages_read(struct seg_request *r, const struct jsonf *obj, const char *key);

/* True for a UUID's text form (36 characters, lower or upper hex). */
bool seg_uuid_valid(const char *s);

#endif
