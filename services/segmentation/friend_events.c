/* FriendEvent records on friend.events, through the outbox
 * (friend_events.h): the envelope, the key, and one helper per event that
 * the friend-state consumers emit. */
#include "friend_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "clock.h"
#include "db.h"
#include "kizuna/v1/envelope.pb-c.h"
#include "outbox.h"

uint8_t *friend_event_pack(const char *tenant_id, const char *channel_id, const char *user_id,
                           const char *causation_id, int64_t now_ms, Kizuna__V1__FriendEvent *ev,
                           char event_id[37], char *key, size_t keycap, size_t *len)
{
    int klen = snprintf(key, keycap, "%s:%s", channel_id, user_id);
    if (klen < 0 || (size_t)klen >= keycap)
        return NULL;
    uuid_t uu;
    uuid_generate_random(uu);
    uuid_unparse_lower(uu, event_id);
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.tenant_id = (char *)tenant_id;
    env.channel_id = (char *)channel_id;
    env.occurred_at = now_ms;
    env.causation_id = (char *)(causation_id ? causation_id : "");
    ev->envelope = &env;
    ev->user_id = (char *)user_id;
    size_t n = kizuna__v1__friend_event__get_packed_size(ev);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf)
        *len = kizuna__v1__friend_event__pack(ev, buf);
    ev->envelope = NULL; /* env dies here; user_id stays the caller's */
    return buf;
}

int friend_event_emit(struct db *db, const char *tenant_id, const char *channel_id,
                      const char *user_id, const char *causation_id, Kizuna__V1__FriendEvent *ev)
{
    char event_id[37], key[160];
    size_t len = 0;
    uint8_t *buf = friend_event_pack(tenant_id, channel_id, user_id, causation_id, clock_wall_ms(),
                                     ev, event_id, key, sizeof key, &len);
    if (!buf)
        return -1;
    int st = outbox_enqueue(db, FRIEND_EVENTS_TOPIC, key, strlen(key), buf, len);
    free(buf);
    return st == DB_OK ? 0 : -1;
}

/* f's event ev as a record for the outbox. */
static int friend_record_of(const struct friend_ref *f, int64_t now_ms, Kizuna__V1__FriendEvent *ev,
                            struct friend_record *rec)
{
    char event_id[37];
    rec->buf = friend_event_pack(f->tenant_id, f->channel_id, f->user_id, f->causation_id, now_ms,
                                 ev, event_id, rec->key, sizeof rec->key, &rec->len);
    return rec->buf ? 0 : -1;
}

static int friend_record_enqueue(struct db *db, struct friend_record *rec, int rc)
{
    if (rc != 0)
        return -1;
    int st =
        outbox_enqueue(db, FRIEND_EVENTS_TOPIC, rec->key, strlen(rec->key), rec->buf, rec->len);
    free(rec->buf);
    rec->buf = NULL;
    return st == DB_OK ? 0 : -1;
}

int friend_event_added_record(const struct friend_ref *f, int64_t now_ms, const char *reply_token,
                              int64_t reply_token_issued_at, bool is_unblocked,
                              const char *webhook_event_id, struct friend_record *rec)
{
    Kizuna__V1__FriendEvent ev = KIZUNA__V1__FRIEND_EVENT__INIT;
    Kizuna__V1__FriendAdded added = KIZUNA__V1__FRIEND_ADDED__INIT;
    bool token = reply_token && reply_token[0];
    added.reply_token = (char *)(token ? reply_token : "");
    added.reply_token_issued_at = token ? reply_token_issued_at : 0;
    added.is_unblocked = is_unblocked;
    added.webhook_event_id = (char *)(webhook_event_id ? webhook_event_id : "");
    ev.event_case = KIZUNA__V1__FRIEND_EVENT__EVENT_ADDED;
    ev.added = &added;
    return friend_record_of(f, now_ms, &ev, rec);
}

int friend_event_blocked_record(const struct friend_ref *f, int64_t now_ms,
                                struct friend_record *rec)
{
    Kizuna__V1__FriendEvent ev = KIZUNA__V1__FRIEND_EVENT__INIT;
    Kizuna__V1__FriendBlocked blocked = KIZUNA__V1__FRIEND_BLOCKED__INIT;
    ev.event_case = KIZUNA__V1__FRIEND_EVENT__EVENT_BLOCKED;
    ev.blocked = &blocked;
    return friend_record_of(f, now_ms, &ev, rec);
}

int friend_event_unblocked_record(const struct friend_ref *f, int64_t now_ms,
                                  struct friend_record *rec)
{
    Kizuna__V1__FriendEvent ev = KIZUNA__V1__FRIEND_EVENT__INIT;
    Kizuna__V1__FriendUnblocked unblocked = KIZUNA__V1__FRIEND_UNBLOCKED__INIT;
    ev.event_case = KIZUNA__V1__FRIEND_EVENT__EVENT_UNBLOCKED;
    ev.unblocked = &unblocked;
    return friend_record_of(f, now_ms, &ev, rec);
}

int friend_event_added(struct db *db, const struct friend_ref *f, const char *reply_token,
                       int64_t reply_token_issued_at, bool is_unblocked,
                       const char *webhook_event_id)
{
    struct friend_record rec;
    int rc = friend_event_added_record(f, clock_wall_ms(), reply_token, reply_token_issued_at,
                                       is_unblocked, webhook_event_id, &rec);
    return friend_record_enqueue(db, &rec, rc);
}

int friend_event_blocked(struct db *db, const struct friend_ref *f)
{
    struct friend_record rec;
    return friend_record_enqueue(db, &rec, friend_event_blocked_record(f, clock_wall_ms(), &rec));
}

int friend_event_unblocked(struct db *db, const struct friend_ref *f)
{
    struct friend_record rec;
    return friend_record_enqueue(db, &rec, friend_event_unblocked_record(f, clock_wall_ms(), &rec));
}

int friend_event_profile_updated(struct db *db, const struct friend_ref *f,
                                 const char *display_name, const char *picture_url,
                                 const char *status_message, const char *language)
{
    Kizuna__V1__FriendEvent ev = KIZUNA__V1__FRIEND_EVENT__INIT;
    Kizuna__V1__FriendProfileUpdated p = KIZUNA__V1__FRIEND_PROFILE_UPDATED__INIT;
    p.display_name = (char *)(display_name ? display_name : "");
    p.picture_url = (char *)(picture_url ? picture_url : "");
    p.status_message = (char *)(status_message ? status_message : "");
    p.language = (char *)(language ? language : "");
    ev.event_case = KIZUNA__V1__FRIEND_EVENT__EVENT_PROFILE_UPDATED;
    ev.profile_updated = &p;
    return friend_event_emit(db, f->tenant_id, f->channel_id, f->user_id, f->causation_id, &ev);
}

void friend_tag_event_init(struct friend_tag_event *t, bool added, const char *tag_id,
                           const char *tag_name)
{
    *t = (struct friend_tag_event){.ev = KIZUNA__V1__FRIEND_EVENT__INIT,
                                   .added = KIZUNA__V1__TAG_ADDED__INIT,
                                   .removed = KIZUNA__V1__TAG_REMOVED__INIT};
    if (added) {
        t->added.tag_id = (char *)tag_id;
        t->added.tag_name = (char *)tag_name;
        t->ev.event_case = KIZUNA__V1__FRIEND_EVENT__EVENT_TAG_ADDED;
        t->ev.tag_added = &t->added;
    } else {
        t->removed.tag_id = (char *)tag_id;
        t->removed.tag_name = (char *)tag_name;
        t->ev.event_case = KIZUNA__V1__FRIEND_EVENT__EVENT_TAG_REMOVED;
        t->ev.tag_removed = &t->removed;
    }
}
