/* Protobuf to JSON (common/pbjson.h), which kizunactl topics tail prints
 * and analytics people read: exact output for small messages, the proto3
 * JSON rules for int64, bytes, enums, oneofs and defaults, type lookup by
 * the manifest's names, and decoding that refuses bad bytes. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kizuna/v1/channel.pb-c.h"
#include "kizuna/v1/delivery.pb-c.h"
#include "kizuna/v1/envelope.pb-c.h"
#include "kizuna/v1/friend.pb-c.h"
#include "kizuna/v1/send.pb-c.h"
#include "kizuna/v1/webhook.pb-c.h"
#include "pbjson.h"
#include "topics.h"

/* Encodes msg and compares with the expected JSON text exactly. */
static void expect_json(const ProtobufCMessage *msg, const char *want)
{
    char *got = pbjson_encode(msg);
    cr_assert_not_null(got, "encode of %s failed", msg->descriptor->name);
    cr_expect_str_eq(got, want);
    /* Whatever it is, it must parse back as a JSON object. */
    json_error_t err;
    json_t *parsed = json_loads(got, 0, &err);
    cr_expect_not_null(parsed, "not valid JSON: %s (%s)", got, err.text);
    cr_expect(json_is_object(parsed));
    json_decref(parsed);
    free(got);
}

Test(proto_json, envelope_encodes_to_exact_camel_case_json)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = "6f1c9a52-3c1e-4c3b-9a8e-0d1f2a3b4c5d";
    env.tenant_id = "tenant-a";
    env.channel_id = "1234567890";
    env.occurred_at = 1767225600123LL;
    env.causation_id = "0b7e6a1d-9f2c-5e4a-8b3d-112233445566";
    expect_json(&env.base, "{\"eventId\":\"6f1c9a52-3c1e-4c3b-9a8e-0d1f2a3b4c5d\","
                           "\"tenantId\":\"tenant-a\",\"channelId\":\"1234567890\","
                           "\"occurredAt\":\"1767225600123\","
                           "\"causationId\":\"0b7e6a1d-9f2c-5e4a-8b3d-112233445566\"}");
}

Test(proto_json, default_scalars_and_unset_messages_are_left_out)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    expect_json(&env.base, "{}");

    Kizuna__V1__WebhookEvent ev = KIZUNA__V1__WEBHOOK_EVENT__INIT;
    ev.is_redelivery = false;
    ev.mode = KIZUNA__V1__EVENT_MODE__EVENT_MODE_UNSPECIFIED;
    ev.type = "";
    expect_json(&ev.base, "{}");
}

struct int64_case {
    int64_t quota;
    int64_t version;
    const char *want;
};

Test(proto_json, int64_values_are_decimal_strings)
{
    static const struct int64_case cases[] = {
        {1, 0, "{\"monthlyQuota\":\"1\"}"},
        {INT64_MAX, -1, "{\"monthlyQuota\":\"9223372036854775807\",\"version\":\"-1\"}"},
        {0, INT64_MIN, "{\"version\":\"-9223372036854775808\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Kizuna__V1__ChannelConfig cfg = KIZUNA__V1__CHANNEL_CONFIG__INIT;
        cfg.monthly_quota = cases[i].quota;
        cfg.version = cases[i].version;
        expect_json(&cfg.base, cases[i].want);
    }
}

struct bytes_case {
    const char *in;
    size_t len;
    const char *want;
};

Test(proto_json, bytes_are_standard_base64_with_padding)
{
    static const struct bytes_case cases[] = {
        {"", 0, "{}"},
        {"\x00", 1, "{\"accessTokenSealed\":\"AA==\"}"},
        {"\x00\xff", 2, "{\"accessTokenSealed\":\"AP8=\"}"},
        {"\x00\xff\x10", 3, "{\"accessTokenSealed\":\"AP8Q\"}"},
        {"foobar", 6, "{\"accessTokenSealed\":\"Zm9vYmFy\"}"},
        {"\xfb\xff\xbf", 3, "{\"accessTokenSealed\":\"+/+/\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Kizuna__V1__ChannelConfig cfg = KIZUNA__V1__CHANNEL_CONFIG__INIT;
        cfg.access_token_sealed.data = (uint8_t *)cases[i].in;
        cfg.access_token_sealed.len = cases[i].len;
        expect_json(&cfg.base, cases[i].want);
    }
}

Test(proto_json, enums_are_value_names_and_unknown_values_numbers)
{
    Kizuna__V1__DeliveryResult res = KIZUNA__V1__DELIVERY_RESULT__INIT;
    res.kind = KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST;
    res.status = KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_QUOTA_EXCEEDED;
    expect_json(&res.base,
                "{\"kind\":\"SEND_KIND_MULTICAST\",\"status\":\"DELIVERY_STATUS_QUOTA_EXCEEDED\"}");

    /* A value from a newer schema than ours: keep the number. */
    res.kind = (Kizuna__V1__SendKind)42;
    res.status = KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_UNSPECIFIED;
    expect_json(&res.base, "{\"kind\":42}");
}

Test(proto_json, oneof_writes_only_the_set_member_even_when_empty_or_zero)
{
    Kizuna__V1__FollowDetail follow = KIZUNA__V1__FOLLOW_DETAIL__INIT;
    Kizuna__V1__WebhookEvent ev = KIZUNA__V1__WEBHOOK_EVENT__INIT;
    ev.type = "follow";
    ev.event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_FOLLOW;
    ev.follow = &follow;
    expect_json(&ev.base, "{\"type\":\"follow\",\"follow\":{}}");

    follow.is_unblocked = true;
    expect_json(&ev.base, "{\"type\":\"follow\",\"follow\":{\"isUnblocked\":true}}");

    Kizuna__V1__FieldValue value = KIZUNA__V1__FIELD_VALUE__INIT;
    value.value_case = KIZUNA__V1__FIELD_VALUE__VALUE_INT_VALUE;
    value.int_value = 0;
    expect_json(&value.base, "{\"intValue\":\"0\"}");
    value.value_case = KIZUNA__V1__FIELD_VALUE__VALUE_BOOL_VALUE;
    value.bool_value = false;
    expect_json(&value.base, "{\"boolValue\":false}");
    value.value_case = KIZUNA__V1__FIELD_VALUE__VALUE__NOT_SET;
    expect_json(&value.base, "{}");
}

Test(proto_json, nested_and_repeated_fields_become_objects_and_arrays)
{
    Kizuna__V1__Emoji e1 = KIZUNA__V1__EMOJI__INIT, e2 = KIZUNA__V1__EMOJI__INIT;
    Kizuna__V1__Emoji *emojis[] = {&e1, &e2};
    Kizuna__V1__TextMessageContent text = KIZUNA__V1__TEXT_MESSAGE_CONTENT__INIT;
    Kizuna__V1__MessageContent message = KIZUNA__V1__MESSAGE_CONTENT__INIT;
    Kizuna__V1__Source source = KIZUNA__V1__SOURCE__INIT;
    Kizuna__V1__WebhookEvent ev = KIZUNA__V1__WEBHOOK_EVENT__INIT;
    e1.index = 0;
    e1.length = 6;
    e1.product_id = "p";
    e1.emoji_id = "001";
    e2.index = 6;
    e2.length = 6;
    e2.product_id = "p";
    e2.emoji_id = "002";
    text.text = "$$";
    text.n_emojis = 2;
    text.emojis = emojis;
    text.quote_token = "qt";
    message.id = "100";
    message.type = "text";
    message.content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_TEXT;
    message.text = &text;
    source.type = KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_USER;
    source.user_id = "U1";
    ev.webhook_event_id = "01H";
    ev.timestamp = 1700000000000LL;
    ev.mode = KIZUNA__V1__EVENT_MODE__EVENT_MODE_STANDBY;
    ev.source = &source;
    ev.reply_token = "rt";
    ev.type = "message";
    ev.event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MESSAGE;
    ev.message = &message;
    expect_json(&ev.base, "{\"webhookEventId\":\"01H\",\"timestamp\":\"1700000000000\","
                          "\"mode\":\"EVENT_MODE_STANDBY\","
                          "\"source\":{\"type\":\"SOURCE_TYPE_USER\",\"userId\":\"U1\"},"
                          "\"replyToken\":\"rt\",\"type\":\"message\","
                          "\"message\":{\"id\":\"100\",\"type\":\"text\",\"text\":{\"text\":\"$$\","
                          "\"emojis\":[{\"length\":6,\"productId\":\"p\",\"emojiId\":\"001\"},"
                          "{\"index\":6,\"length\":6,\"productId\":\"p\",\"emojiId\":\"002\"}],"
                          "\"quoteToken\":\"qt\"}}}");

    Kizuna__V1__SendRequest req = KIZUNA__V1__SEND_REQUEST__INIT;
    char *recipients[] = {"U1", "U2"};
    char *messages[] = {"{\"type\":\"text\",\"text\":\"hi\"}"};
    req.kind = KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST;
    req.n_recipients = 2;
    req.recipients = recipients;
    req.n_messages_json = 1;
    req.messages_json = messages;
    expect_json(&req.base, "{\"kind\":\"SEND_KIND_MULTICAST\",\"recipients\":[\"U1\",\"U2\"],"
                           "\"messagesJson\":[\"{\\\"type\\\":\\\"text\\\",\\\"text\\\":"
                           "\\\"hi\\\"}\"]}");
}

Test(proto_json, doubles_are_numbers_and_non_finite_values_strings)
{
    Kizuna__V1__LocationMessageContent loc = KIZUNA__V1__LOCATION_MESSAGE_CONTENT__INIT;
    loc.latitude = 35.5;
    loc.longitude = -139.25;
    expect_json(&loc.base, "{\"latitude\":35.5,\"longitude\":-139.25}");
    loc.latitude = NAN;
    loc.longitude = -INFINITY;
    expect_json(&loc.base, "{\"latitude\":\"NaN\",\"longitude\":\"-Infinity\"}");
    loc.latitude = INFINITY;
    loc.longitude = 0.0;
    expect_json(&loc.base, "{\"latitude\":\"Infinity\"}");
}

#define R1 "\xef\xbf\xbd" /* U+FFFD in UTF-8 */

Test(proto_json, strings_are_escaped_and_invalid_utf8_becomes_replacement_characters)
{
    Kizuna__V1__UnsendDetail unsend = KIZUNA__V1__UNSEND_DETAIL__INIT;
    unsend.message_id = "a\"b\\c\n\x01/日本";
    expect_json(&unsend.base, "{\"messageId\":\"a\\\"b\\\\c\\n\\u0001/日本\"}");

    /* A stray byte, a truncated sequence, an overlong '/' and a surrogate:
     * each byte that is not part of a valid sequence becomes one U+FFFD. */
    unsend.message_id = "x\xffy\xe6\x97z\xc0\xafw\xed\xa0\x80v";
    expect_json(&unsend.base, "{\"messageId\":\"x" R1 "y" R1 R1 "z" R1 R1 "w" R1 R1 R1 "v\"}");
}

Test(proto_json, decode_bytes_then_encode_gives_the_json_of_the_original)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    Kizuna__V1__TagAdded tag = KIZUNA__V1__TAG_ADDED__INIT;
    Kizuna__V1__FriendEvent ev = KIZUNA__V1__FRIEND_EVENT__INIT;
    env.event_id = "e1";
    env.occurred_at = 5;
    tag.tag_id = "t-1";
    tag.tag_name = "VIP";
    ev.envelope = &env;
    ev.user_id = "U1";
    ev.event_case = KIZUNA__V1__FRIEND_EVENT__EVENT_TAG_ADDED;
    ev.tag_added = &tag;

    size_t len = protobuf_c_message_get_packed_size(&ev.base);
    uint8_t *buf = malloc(len);
    cr_assert_not_null(buf);
    protobuf_c_message_pack(&ev.base, buf);
    char err[256] = "";
    ProtobufCMessage *msg = pbjson_decode_bytes("kizuna.v1.FriendEvent", buf, len, err, sizeof err);
    free(buf);
    cr_assert_not_null(msg, "decode failed: %s", err);
    cr_assert_eq(msg->descriptor, &kizuna__v1__friend_event__descriptor);
    expect_json(msg, "{\"envelope\":{\"eventId\":\"e1\",\"occurredAt\":\"5\"},\"userId\":\"U1\","
                     "\"tagAdded\":{\"tagId\":\"t-1\",\"tagName\":\"VIP\"}}");
    protobuf_c_message_free_unpacked(msg, NULL);

    /* An empty record is a valid, empty message. */
    msg = pbjson_decode_bytes("kizuna.v1.SendRequest", NULL, 0, err, sizeof err);
    cr_assert_not_null(msg, "empty decode failed: %s", err);
    expect_json(msg, "{}");
    protobuf_c_message_free_unpacked(msg, NULL);
}

struct decode_bad_case {
    const char *name;
    const char *type;
    const uint8_t *data;
    size_t len;
    const char *err_contains;
};

static const uint8_t truncated_envelope[] = {0x0a, 0x05, 'a', 'b'};
static const uint8_t wrong_wire_type[] = {0x08, 0x01};

Test(proto_json, decode_bytes_refuses_unknown_types_and_bad_bytes_with_a_reason)
{
    static const struct decode_bad_case cases[] = {
        {"unknown type", "kizuna.v1.NoSuchEvent", truncated_envelope, 0, "kizuna.v1.NoSuchEvent"},
        {"short name", "WebhookEvent", truncated_envelope, 0, "unknown message type"},
        {"null type", NULL, truncated_envelope, 0, "unknown message type"},
        {"truncated", "kizuna.v1.Envelope", truncated_envelope, sizeof truncated_envelope,
         "kizuna.v1.Envelope: 4 bytes are not a valid encoding"},
        {"wrong wire type", "kizuna.v1.WebhookEvent", wrong_wire_type, sizeof wrong_wire_type,
         "not a valid encoding"},
        {"no data but a length", "kizuna.v1.Envelope", NULL, 3, "no data"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        ProtobufCMessage *msg =
            pbjson_decode_bytes(cases[i].type, cases[i].data, cases[i].len, err, sizeof err);
        cr_expect_null(msg, "%s: decoded", cases[i].name);
        cr_expect(strstr(err, cases[i].err_contains) != NULL, "%s: errstr \"%s\"", cases[i].name,
                  err);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    /* errstr is optional. */
    cr_expect_null(pbjson_decode_bytes("kizuna.v1.Envelope", truncated_envelope,
                                       sizeof truncated_envelope, NULL, 0));
}

Test(proto_json, find_resolves_every_manifest_message_type)
{
    struct topic_spec specs[TOPICS_MAX];
    char err[512];
    int n = topics_load("deploy/topics.manifest", specs, TOPICS_MAX, err, sizeof err);
    cr_assert_gt(n, 0, "manifest: %s", err);
    for (int i = 0; i < n; i++) {
        const ProtobufCMessageDescriptor *desc = pbjson_find(specs[i].message);
        cr_expect_not_null(desc, "topic %s: no message type %s", specs[i].name, specs[i].message);
        if (desc)
            cr_expect_str_eq(desc->name, specs[i].message);
    }
}

Test(proto_json, find_resolves_nested_types_and_returns_null_for_unknown_names)
{
    static const char *const known[] = {
        "kizuna.v1.Envelope",    "kizuna.v1.WebhookEvent", "kizuna.v1.TextMessageContent",
        "kizuna.v1.Mentionee",   "kizuna.v1.FieldValue",   "kizuna.v1.Profile",
        "kizuna.v1.LinkClicked", "kizuna.v1.StepDue",      "kizuna.v1.UnknownEvent",
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const ProtobufCMessageDescriptor *desc = pbjson_find(known[i]);
        cr_expect_not_null(desc, "%s not found", known[i]);
        if (desc)
            cr_expect_str_eq(desc->name, known[i]);
    }
    static const char *const unknown[] = {
        "",
        "WebhookEvent",
        ".kizuna.v1.WebhookEvent",
        "kizuna.v1.webhookevent",
        "kizuna.v2.WebhookEvent",
        "kizuna.v1.WebhookEvent ",
        "kizuna.v1.SendKind",
    };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        cr_expect_null(pbjson_find(unknown[i]), "\"%s\" found", unknown[i]);
    cr_expect_null(pbjson_find(NULL));
}

Test(proto_json, encode_of_null_is_null)
{
    cr_expect_null(pbjson_encode(NULL));
}
