/* A friend as the admin API answers it (API.md's Friend): profile, state,
 * route, tag names and field values.
 *
 * Minimal version written by the tags part (issue 10) for PATCH .../fields;
 * the filter part owns the real one and the coordinator reconciles. */
#ifndef KIZUNA_SEGMENTATION_FRIEND_JSON_H
#define KIZUNA_SEGMENTATION_FRIEND_JSON_H

#include <jansson.h>

struct db;

/* channel_id's friend user_id as a new JSON object, or NULL when unknown
 * or on a database error. The caller's thread and connection. */
json_t *friend_json_load(struct db *db, const char *channel_id, const char *user_id);

#endif
