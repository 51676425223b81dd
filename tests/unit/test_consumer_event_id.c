/* The consumer loop's default event id: envelope.event_id read straight
 * from the protobuf wire format, for every Kizuna event type (each carries
 * the envelope as field 1), whatever other fields surround it; and a record
 * without a usable id gets a reason instead (it will be skipped as
 * malformed, never retried forever). */
#include <criterion/criterion.h>
#include <string.h>

#include "consumer.h"
#include "kafka.h"
#include "kizuna/v1/channel.pb-c.h"
#include "kizuna/v1/delivery.pb-c.h"
#include "kizuna/v1/friend.pb-c.h"
#include "kizuna/v1/send.pb-c.h"
#include "kizuna/v1/webhook.pb-c.h"

#define ID "3f0c5e2a-8d7b-4c1e-9a6f-2b4d8e0c7a15"

static int extract(const void *value, size_t len, char *out, size_t cap, const char **reason)
{
    struct kafka_message msg = {.topic = "t", .value = value, .len = len};
    *reason = NULL;
    return consumer_event_id_envelope(&msg, out, cap, reason);
}

static Kizuna__V1__Envelope envelope(const char *event_id)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = (char *)event_id;
    env.tenant_id = "acme";
    env.channel_id = "1656789012";
    env.occurred_at = 1767225600123;
    env.causation_id = "9b2e4f60-1c3a-4d5e-8f70-a1b2c3d4e5f6";
    return env;
}

static void expect_id(const uint8_t *buf, size_t len, const char *what)
{
    char out[CONSUMER_EVENT_ID_MAX + 1];
    const char *reason = NULL;
    cr_expect_eq(extract(buf, len, out, sizeof out, &reason), 0, "%s: %s", what,
                 reason ? reason : "");
    cr_expect_str_eq(out, ID, "%s", what);
}

Test(consumer_event_id, every_event_type_yields_its_envelope_event_id)
{
    uint8_t buf[1024];
    Kizuna__V1__Envelope env = envelope(ID);

    Kizuna__V1__FriendEvent fe = KIZUNA__V1__FRIEND_EVENT__INIT;
    fe.envelope = &env;
    fe.user_id = "U4af4980629a0b1c2d3e4f5a6b7c8d9e0";
    Kizuna__V1__TagAdded tag = KIZUNA__V1__TAG_ADDED__INIT;
    tag.tag_id = "vip";
    fe.event_case = KIZUNA__V1__FRIEND_EVENT__EVENT_TAG_ADDED;
    fe.tag_added = &tag;
    expect_id(buf, kizuna__v1__friend_event__pack(&fe, buf), "FriendEvent");

    Kizuna__V1__WebhookEvent we = KIZUNA__V1__WEBHOOK_EVENT__INIT;
    we.envelope = &env;
    we.webhook_event_id = "01JGJ5W8Q3T0Z4D9N6XK2B7R1M";
    expect_id(buf, kizuna__v1__webhook_event__pack(&we, buf), "WebhookEvent");

    Kizuna__V1__SendRequest sr = KIZUNA__V1__SEND_REQUEST__INIT;
    sr.envelope = &env;
    sr.request_id = "req-1";
    sr.to = "U1";
    expect_id(buf, kizuna__v1__send_request__pack(&sr, buf), "SendRequest");

    Kizuna__V1__DeliveryResult dr = KIZUNA__V1__DELIVERY_RESULT__INIT;
    dr.envelope = &env;
    dr.request_id = "req-1";
    dr.attempts = 3;
    expect_id(buf, kizuna__v1__delivery_result__pack(&dr, buf), "DeliveryResult");

    Kizuna__V1__ChannelConfig cc = KIZUNA__V1__CHANNEL_CONFIG__INIT;
    cc.envelope = &env;
    cc.channel_id = "1656789012";
    expect_id(buf, kizuna__v1__channel_config__pack(&cc, buf), "ChannelConfig");
}

Test(consumer_event_id, fields_of_every_wire_type_around_the_envelope_are_skipped)
{
    /* field 2 varint 300; field 3 fixed64; field 4 fixed32; field 1 (the
     * envelope: field 2 "x", then field 1 the id); field 5 bytes. */
    uint8_t buf[128];
    size_t n = 0;
    const uint8_t head[] = {0x10, 0xac, 0x02, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x25, 1, 2, 3, 4};
    memcpy(buf, head, sizeof head);
    n += sizeof head;
    buf[n++] = 0x0a;
    buf[n++] = (uint8_t)(3 + 2 + strlen(ID));
    buf[n++] = 0x12;
    buf[n++] = 1;
    buf[n++] = 'x';
    buf[n++] = 0x0a;
    buf[n++] = (uint8_t)strlen(ID);
    memcpy(buf + n, ID, strlen(ID));
    n += strlen(ID);
    const uint8_t tail[] = {0x2a, 2, 'h', 'i'};
    memcpy(buf + n, tail, sizeof tail);
    n += sizeof tail;
    expect_id(buf, n, "hand-made message");
}

struct bad_case {
    const char *what;
    const uint8_t *value;
    size_t len;
    const char *reason;
};

Test(consumer_event_id, records_without_a_usable_id_get_a_reason)
{
    static const uint8_t garbage[] = "not protobuf";
    static const uint8_t no_envelope[] = {0x12, 0x02, 'U', '1'};
    static const uint8_t empty_envelope[] = {0x0a, 0x00};
    static const uint8_t envelope_without_id[] = {0x0a, 0x06, 0x12, 0x04, 'a', 'c', 'm', 'e'};
    static const uint8_t empty_id[] = {0x0a, 0x02, 0x0a, 0x00};
    static const uint8_t id_with_space[] = {0x0a, 0x05, 0x0a, 0x03, 'a', ' ', 'b'};
    static const uint8_t id_not_ascii[] = {0x0a, 0x05, 0x0a, 0x03, 'a', 0xc3, 0xa9};
    static const uint8_t truncated_length[] = {0x0a, 0x10, 0x0a, 0x03, 'a', 'b', 'c'};
    static const uint8_t truncated_varint[] = {0x10, 0xff};
    static const uint8_t group_wire_type[] = {0x0b, 0x0c};
    static const uint8_t field_zero[] = {0x02, 0x00};
    static const uint8_t inner_garbage[] = {0x0a, 0x02, 0x0f, 0x00};
    const struct bad_case cases[] = {
        {"empty value", NULL, 0, "no_envelope"},
        {"not protobuf", garbage, sizeof garbage - 1, "not_protobuf"},
        {"no envelope", no_envelope, sizeof no_envelope, "no_envelope"},
        {"empty envelope", empty_envelope, sizeof empty_envelope, "no_event_id"},
        {"envelope without id", envelope_without_id, sizeof envelope_without_id, "no_event_id"},
        {"empty id", empty_id, sizeof empty_id, "no_event_id"},
        {"id with a space", id_with_space, sizeof id_with_space, "bad_event_id"},
        {"id not ASCII", id_not_ascii, sizeof id_not_ascii, "bad_event_id"},
        {"length past the end", truncated_length, sizeof truncated_length, "not_protobuf"},
        {"varint cut off", truncated_varint, sizeof truncated_varint, "not_protobuf"},
        {"a group", group_wire_type, sizeof group_wire_type, "not_protobuf"},
        {"field number 0", field_zero, sizeof field_zero, "not_protobuf"},
        {"envelope not a message", inner_garbage, sizeof inner_garbage, "not_protobuf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[CONSUMER_EVENT_ID_MAX + 1];
        const char *reason = NULL;
        cr_expect_eq(extract(cases[i].value, cases[i].len, out, sizeof out, &reason), -1, "%s",
                     cases[i].what);
        cr_expect_str_eq(reason ? reason : "(none)", cases[i].reason, "%s", cases[i].what);
    }
}

Test(consumer_event_id, an_id_longer_than_the_limit_is_refused)
{
    char long_id[CONSUMER_EVENT_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    Kizuna__V1__Envelope env = envelope(long_id);
    Kizuna__V1__FriendEvent fe = KIZUNA__V1__FRIEND_EVENT__INIT;
    fe.envelope = &env;
    uint8_t buf[1024];
    size_t len = kizuna__v1__friend_event__pack(&fe, buf);
    char out[CONSUMER_EVENT_ID_MAX + 1];
    const char *reason = NULL;
    cr_expect_eq(extract(buf, len, out, sizeof out, &reason), -1);
    cr_expect_str_eq(reason ? reason : "(none)", "bad_event_id");

    long_id[CONSUMER_EVENT_ID_MAX] = '\0'; /* exactly the limit: fine */
    env = envelope(long_id);
    len = kizuna__v1__friend_event__pack(&fe, buf);
    cr_expect_eq(extract(buf, len, out, sizeof out, &reason), 0);
    cr_expect_str_eq(out, long_id);
}
