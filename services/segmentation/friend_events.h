/* The one place that builds FriendEvent records and enqueues them on
 * friend.events through the outbox (key "<channel_id>:<user_id>", so one
 * friend's events stay in order), inside the caller's transaction.
 *
 * CONTRACT (issue 10): the friend-state part owns this file and may add to
 * it, not change what is here. */
#ifndef KIZUNA_SEGMENTATION_FRIEND_EVENTS_H
#define KIZUNA_SEGMENTATION_FRIEND_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kizuna/v1/friend.pb-c.h"

struct db;

#define FRIEND_EVENTS_TOPIC "friend.events"

/* Fills ev's envelope (a new event_id, tenant, channel, occurred_at now,
 * causation_id) and user_id, packs it and enqueues it. ev's oneof is the
 * caller's. 0, or -1 on a database error. */
int friend_event_emit(struct db *db, const char *tenant_id, const char *channel_id,
                      const char *user_id, const char *causation_id, Kizuna__V1__FriendEvent *ev);

/* What friend_event_emit enqueues, without the database: fills ev's
 * envelope (event_id, a new random UUID, written to event_id[37]; tenant,
 * channel, occurred_at now_ms, causation_id) and user_id, packs it into a
 * malloc'd buffer (*len bytes; the caller frees) and writes the record key
 * "<channel_id>:<user_id>" into key (keycap bytes). ev->envelope is
 * cleared again before returning (ev->user_id stays user_id). NULL when out of memory or the key does
 * not fit. Pure but for the random id; any thread. */
uint8_t *friend_event_pack(const char *tenant_id, const char *channel_id, const char *user_id,
                           const char *causation_id, int64_t now_ms, Kizuna__V1__FriendEvent *ev,
                           char event_id[37], char *key, size_t keycap, size_t *len);

/* The friend's identity on every event below: borrowed strings. */
struct friend_ref {
    const char *tenant_id;
    const char *channel_id;
    const char *user_id;
    const char *causation_id; /* the webhook or result record's event_id */
};

/* FriendAdded. reply_token NULL or "" leaves the token (and its time) out;
 * webhook_event_id is the follow's. 0, or -1 on a database error. Caller's
 * transaction and thread, as friend_event_emit. */
int friend_event_added(struct db *db, const struct friend_ref *f, const char *reply_token,
                       int64_t reply_token_issued_at, bool is_unblocked,
                       const char *webhook_event_id);

/* FriendBlocked / FriendUnblocked. 0, or -1 on a database error. */
int friend_event_blocked(struct db *db, const struct friend_ref *f);
int friend_event_unblocked(struct db *db, const struct friend_ref *f);

/* One record, packed but not enqueued, for a caller that writes it with
 * other rows in one statement (webhook_events.c): buf is malloc'd (the
 * caller frees), key is "<channel_id>:<user_id>". */
struct friend_record {
    char key[160];
    uint8_t *buf;
    size_t len;
};

/* The records of friend_event_added / _blocked / _unblocked, with
 * occurred_at now_ms. 0, or -1 (out of memory, or a key over 159 bytes).
 * Pure but for the random event_id; any thread. */
int friend_event_added_record(const struct friend_ref *f, int64_t now_ms, const char *reply_token,
                              int64_t reply_token_issued_at, bool is_unblocked,
                              const char *webhook_event_id, struct friend_record *rec);
int friend_event_blocked_record(const struct friend_ref *f, int64_t now_ms,
                                struct friend_record *rec);
int friend_event_unblocked_record(const struct friend_ref *f, int64_t now_ms,
                                  struct friend_record *rec);

/* A TagAdded (added) or TagRemoved event with its parts in one place, so
 * that they live as long as the caller's struct while it is packed: the
 * one shape of tag events, whoever emits them (tags.c one at a time, the
 * CSV import in batches). tag_id is the tag's id as decimal text; both
 * strings are borrowed. */
struct friend_tag_event {
    Kizuna__V1__FriendEvent ev;
    Kizuna__V1__TagAdded added;
    Kizuna__V1__TagRemoved removed;
};
void friend_tag_event_init(struct friend_tag_event *t, bool added, const char *tag_id,
                           const char *tag_name);

/* FriendProfileUpdated with the stored values (NULL counts as ""). 0, or -1
 * on a database error. */
int friend_event_profile_updated(struct db *db, const struct friend_ref *f,
                                 const char *display_name, const char *picture_url,
                                 const char *status_message, const char *language);

#endif
