/* The PROFILE SendRequest of a follow (profile_request.h). */
#include "profile_request.h"

#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "clock.h"
#include "db.h"
#include "kizuna/v1/envelope.pb-c.h"
#include "kizuna/v1/send.pb-c.h"
#include "outbox.h"

static const uuid_t profile_request_ns = {0x36, 0xb5, 0x73, 0x51, 0x0a, 0xe1, 0x51, 0x60,
                                          0xa4, 0x15, 0x0c, 0x8f, 0x9a, 0x1a, 0x6a, 0x93};

void profile_request_id(const char *channel_id, const char *webhook_event_id, char out[37])
{
    size_t clen = strlen(channel_id), wlen = strlen(webhook_event_id);
    char *name = malloc(clen + 1 + wlen + 1);
    uuid_t uu;
    if (name) {
        memcpy(name, channel_id, clen);
        name[clen] = ':';
        memcpy(name + clen + 1, webhook_event_id, wlen);
        uuid_generate_sha1(uu, profile_request_ns, name, clen + 1 + wlen);
        free(name);
    } else {
        uuid_clear(uu); /* never reached in practice; still a valid id */
    }
    uuid_unparse_lower(uu, out);
}

uint8_t *profile_request_pack(const char *tenant_id, const char *channel_id, const char *user_id,
                              const char *webhook_event_id, const char *causation_id,
                              int64_t now_ms, size_t *len)
{
    char event_id[37], request_id[37];
    uuid_t uu;
    uuid_generate_random(uu);
    uuid_unparse_lower(uu, event_id);
    profile_request_id(channel_id, webhook_event_id, request_id);

    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.tenant_id = (char *)tenant_id;
    env.channel_id = (char *)channel_id;
    env.occurred_at = now_ms;
    env.causation_id = (char *)(causation_id ? causation_id : "");
    Kizuna__V1__SendRequest req = KIZUNA__V1__SEND_REQUEST__INIT;
    req.envelope = &env;
    req.request_id = request_id;
    req.kind = KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE;
    req.to = (char *)user_id;
    req.origin_type = PROFILE_REQUEST_ORIGIN;
    req.origin_id = (char *)webhook_event_id;

    size_t n = kizuna__v1__send_request__get_packed_size(&req);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    *len = kizuna__v1__send_request__pack(&req, buf);
    return buf;
}

int profile_request_enqueue(struct db *db, const char *tenant_id, const char *channel_id,
                            const char *user_id, const char *webhook_event_id,
                            const char *causation_id)
{
    size_t len = 0;
    uint8_t *buf = profile_request_pack(tenant_id, channel_id, user_id, webhook_event_id,
                                        causation_id, clock_wall_ms(), &len);
    if (!buf)
        return -1;
    int st = outbox_enqueue(db, PROFILE_REQUEST_TOPIC, channel_id, strlen(channel_id), buf, len);
    free(buf);
    return st == DB_OK ? 0 : -1;
}
