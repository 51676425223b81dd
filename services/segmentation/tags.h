/* Tags on friends. Adding or removing one inside the caller's transaction
 * enqueues TagAdded / TagRemoved on friend.events (outbox) when it changed
 * something, so every path (the API, bulk by filter, CSV import, actions)
 * emits the same events.
 *
 * CONTRACT (issue 10): other parts build on these signatures; the tags part
 * owns this file and may add to it, not change what is here. */
#ifndef KIZUNA_SEGMENTATION_TAGS_H
#define KIZUNA_SEGMENTATION_TAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db;

#define TAG_NAME_MAX 64

/* channel_id's tag name: its id (> 0), 0 unknown, -1 database error. */
int64_t tag_lookup(struct db *db, const char *channel_id, const char *name);

/* 1 added (or removed), 0 already so, -1 database error. */
int tag_add(struct db *db, const char *tenant_id, const char *channel_id, const char *user_id,
            int64_t friend_id, int64_t tag_id, const char *tag_name, const char *causation_id);
int tag_remove(struct db *db, const char *tenant_id, const char *channel_id, const char *user_id,
               int64_t friend_id, int64_t tag_id, const char *tag_name, const char *causation_id);

/* Added by the tags part. */

/* True when name (len bytes) is a valid tag name: 1..TAG_NAME_MAX
 * characters of valid UTF-8, no control character and no '/'. Pure. */
bool tag_name_valid(const char *name, size_t len);

#endif
