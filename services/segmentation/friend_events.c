#include "friend_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "clock.h"
#include "db.h"
#include "kizuna/v1/envelope.pb-c.h"
#include "outbox.h"

int friend_event_emit(struct db *db, const char *tenant_id, const char *channel_id,
                      const char *user_id, const char *causation_id, Kizuna__V1__FriendEvent *ev)
{
    uuid_t uu;
    char event_id[37];
    uuid_generate_random(uu);
    uuid_unparse_lower(uu, event_id);
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.tenant_id = (char *)tenant_id;
    env.channel_id = (char *)channel_id;
    env.occurred_at = clock_wall_ms();
    env.causation_id = (char *)(causation_id ? causation_id : "");
    ev->envelope = &env;
    ev->user_id = (char *)user_id;

    size_t len = kizuna__v1__friend_event__get_packed_size(ev);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -1;
    kizuna__v1__friend_event__pack(ev, buf);
    char key[160];
    int klen = snprintf(key, sizeof key, "%s:%s", channel_id, user_id);
    int st = outbox_enqueue(db, "friend.events", key, (size_t)klen, buf, len);
    free(buf);
    ev->envelope = NULL;
    return st == DB_OK ? 0 : -1;
}
