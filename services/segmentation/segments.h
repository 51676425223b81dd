/* The filter part's routes (issue 10): saved segments (CRUD, preview,
 * count), the friends list and one friend, and tags added or removed in
 * bulk for every friend a filter selects. Each is one entry of api.c's
 * routes[] and runs on the admin API's worker thread that owns r. */
#ifndef KIZUNA_SEGMENTATION_SEGMENTS_H
#define KIZUNA_SEGMENTATION_SEGMENTS_H

#include <stdbool.h>

#include "app.h"

/* segments, segments/{id}, segments/preview, segments/{id}/count. */
bool segments_route(struct seg_request *r);

/* friends (GET: ?segment= or ?filter=, ?q=, ?limit=, ?cursor=) and
 * friends/{user_id} (GET). Leaves every deeper path to other routes. */
bool friends_read_route(struct seg_request *r);

/* tags/{name}/friends (POST: add) and tags/{name}/friends/remove (POST). */
bool tag_bulk_route(struct seg_request *r);

#endif
