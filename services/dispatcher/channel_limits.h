/* The channel_limits table: rate-limit overrides set through the admin API,
 * re-read by every replica so that a change made on one reaches all.
 * db.h's threading rules apply. */
#ifndef KIZUNA_DISPATCHER_CHANNEL_LIMITS_H
#define KIZUNA_DISPATCHER_CHANNEL_LIMITS_H

#include <stddef.h>

#include "ratelimit.h"
#include "sender.h"

struct db;

/* Every row, of every tenant, as a malloc'd array in *rows (caller frees)
 * of *n; the sender applies only the current owner's (sender_limits_sync).
 * Rows with an unknown class are skipped. Returns 0 or a db_status. */
int channel_limits_load(struct db *db, struct sender_limit_row **rows, size_t *n);
/* Sets (rate) or removes (NULL) tenant_id's override of channel_id for cls,
 * inside the caller's transaction or alone. Returns a db_status. */
int channel_limits_save(struct db *db, const char *channel_id, const char *tenant_id,
                        enum ratelimit_class cls, const struct ratelimit_rate *rate);

#endif
