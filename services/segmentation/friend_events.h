/* The one place that builds FriendEvent records and enqueues them on
 * friend.events through the outbox (key "<channel_id>:<user_id>", so one
 * friend's events stay in order), inside the caller's transaction.
 *
 * CONTRACT (issue 10): the friend-state part owns this file and may add to
 * it, not change what is here. */
#ifndef KIZUNA_SEGMENTATION_FRIEND_EVENTS_H
#define KIZUNA_SEGMENTATION_FRIEND_EVENTS_H

#include "kizuna/v1/friend.pb-c.h"

struct db;

/* Fills ev's envelope (a new event_id, tenant, channel, occurred_at now,
 * causation_id) and user_id, packs it and enqueues it. ev's oneof is the
 * caller's. 0, or -1 on a database error. */
int friend_event_emit(struct db *db, const char *tenant_id, const char *channel_id,
                      const char *user_id, const char *causation_id, Kizuna__V1__FriendEvent *ev);

#endif
