/* The kizuna.v1 wire contract as protobuf-c builds it: every top-level event
 * comes back from pack/unpack with exactly the values put in, and bytes
 * that are not a valid encoding (truncated, wrong wire type, garbage, a
 * length past the end) are refused with NULL, never a crash or a
 * half-decoded message. Consumers rely on the second half to skip poison
 * records safely. */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kizuna/v1/channel.pb-c.h"
#include "kizuna/v1/delivery.pb-c.h"
#include "kizuna/v1/due.pb-c.h"
#include "kizuna/v1/envelope.pb-c.h"
#include "kizuna/v1/friend.pb-c.h"
#include "kizuna/v1/inbound.pb-c.h"
#include "kizuna/v1/send.pb-c.h"
#include "kizuna/v1/webhook.pb-c.h"

#define EVENT_ID "6f1c9a52-3c1e-4c3b-9a8e-0d1f2a3b4c5d"
#define CAUSE_ID "0b7e6a1d-9f2c-5e4a-8b3d-112233445566"
#define TENANT "tenant-a"
#define CHANNEL "1234567890"
#define USER "U4af4980629a0b1c2d3e4f5a6b7c8d9e0"
#define OCCURRED 1767225600123LL

/* Packs msg into a malloc'd buffer (never NULL) and stores its length. */
static uint8_t *pack_new(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(*len ? *len : 1);
    cr_assert_not_null(buf);
    cr_assert_eq(protobuf_c_message_pack(msg, buf), *len);
    return buf;
}

/* Packs msg and unpacks it again as the same type. */
static ProtobufCMessage *round_trip(const ProtobufCMessage *msg)
{
    size_t len;
    uint8_t *buf = pack_new(msg, &len);
    ProtobufCMessage *out = protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
    free(buf);
    cr_assert_not_null(out, "%s did not unpack", msg->descriptor->name);
    return out;
}

static void envelope_fill(Kizuna__V1__Envelope *env)
{
    env->event_id = EVENT_ID;
    env->tenant_id = TENANT;
    env->channel_id = CHANNEL;
    env->occurred_at = OCCURRED;
    env->causation_id = CAUSE_ID;
}

static void envelope_check(const Kizuna__V1__Envelope *env)
{
    cr_assert_not_null(env, "envelope missing");
    cr_assert_str_eq(env->event_id, EVENT_ID);
    cr_assert_str_eq(env->tenant_id, TENANT);
    cr_assert_str_eq(env->channel_id, CHANNEL);
    cr_assert_eq(env->occurred_at, OCCURRED);
    cr_assert_str_eq(env->causation_id, CAUSE_ID);
}

/* ---- samples: one rich message of each top-level type, packed ---------- */

static uint8_t *sample_webhook_text(size_t *len)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    Kizuna__V1__Source source = KIZUNA__V1__SOURCE__INIT;
    Kizuna__V1__Emoji e1 = KIZUNA__V1__EMOJI__INIT, e2 = KIZUNA__V1__EMOJI__INIT;
    Kizuna__V1__Emoji *emojis[] = {&e1, &e2};
    Kizuna__V1__Mentionee m1 = KIZUNA__V1__MENTIONEE__INIT;
    Kizuna__V1__Mentionee *mentionees[] = {&m1};
    Kizuna__V1__Mention mention = KIZUNA__V1__MENTION__INIT;
    Kizuna__V1__TextMessageContent text = KIZUNA__V1__TEXT_MESSAGE_CONTENT__INIT;
    Kizuna__V1__MessageContent message = KIZUNA__V1__MESSAGE_CONTENT__INIT;
    Kizuna__V1__WebhookEvent ev = KIZUNA__V1__WEBHOOK_EVENT__INIT;

    envelope_fill(&env);
    source.type = KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_GROUP;
    source.user_id = USER;
    source.group_id = "Ca56f94637c0b1c2d3e4f5a6b7c8d9e0f";
    e1.index = 14;
    e1.length = 6;
    e1.product_id = "5ac1bfd5040ab15980c9b435";
    e1.emoji_id = "001";
    e2.index = 20;
    e2.length = 6;
    e2.product_id = "5ac1bfd5040ab15980c9b435";
    e2.emoji_id = "002";
    m1.type = KIZUNA__V1__MENTIONEE_TYPE__MENTIONEE_TYPE_USER;
    m1.index = 0;
    m1.length = 8;
    m1.user_id = "U0123456789abcdef0123456789abcdef";
    m1.is_self = true;
    mention.n_mentionees = 1;
    mention.mentionees = mentionees;
    text.text = "@example こんにちは $$";
    text.n_emojis = 2;
    text.emojis = emojis;
    text.mention = &mention;
    text.quote_token = "q3Plxr4AgKd...";
    text.quoted_message_id = "468789577898262530";
    message.id = "468789577898262531";
    message.type = "text";
    message.content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_TEXT;
    message.text = &text;
    ev.envelope = &env;
    ev.destination = "U8e742f61d673b39c7fff3cecb7536ef0";
    ev.webhook_event_id = "01FZ74A0TDDPYRVKNK77XKC3ZR";
    ev.is_redelivery = true;
    ev.timestamp = OCCURRED;
    ev.mode = KIZUNA__V1__EVENT_MODE__EVENT_MODE_ACTIVE;
    ev.source = &source;
    ev.reply_token = "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA";
    ev.type = "message";
    ev.raw_json = "{\"type\":\"message\"}";
    ev.received_at = OCCURRED + 42;
    ev.event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MESSAGE;
    ev.message = &message;
    return pack_new(&ev.base, len);
}

static uint8_t *sample_inbound(size_t *len)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    Kizuna__V1__LinkClicked click = KIZUNA__V1__LINK_CLICKED__INIT;
    Kizuna__V1__InboundEvent ev = KIZUNA__V1__INBOUND_EVENT__INIT;
    envelope_fill(&env);
    click.link_id = "link-7";
    click.friend_user_id = USER;
    click.target_url = "https://example.com/sale?x=1&y=2";
    click.user_agent = "Mozilla/5.0 (iPhone) Line/13.1.0";
    ev.envelope = &env;
    ev.event_case = KIZUNA__V1__INBOUND_EVENT__EVENT_LINK_CLICKED;
    ev.link_clicked = &click;
    return pack_new(&ev.base, len);
}

static const uint8_t sealed_token[] = {0x01, 0x00, 0xff, 0x10, 0x00, 0x7f, 0x80, 0x00};

static uint8_t *sample_channel(size_t *len)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    Kizuna__V1__ChannelConfig cfg = KIZUNA__V1__CHANNEL_CONFIG__INIT;
    envelope_fill(&env);
    cfg.envelope = &env;
    cfg.channel_id = CHANNEL;
    cfg.tenant_id = TENANT;
    cfg.name = "Shop 本店";
    cfg.bot_user_id = "U8e742f61d673b39c7fff3cecb7536ef0";
    cfg.timezone = "Asia/Tokyo";
    cfg.monthly_quota = 15000;
    cfg.access_token_sealed.data = (uint8_t *)sealed_token;
    cfg.access_token_sealed.len = sizeof sealed_token;
    cfg.secret_fingerprint = "8c57…a96d8";
    cfg.deleted = true;
    cfg.version = 7;
    cfg.updated_at = OCCURRED + 1;
    return pack_new(&cfg.base, len);
}

static uint8_t *sample_friend_added(size_t *len)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    Kizuna__V1__FriendAdded added = KIZUNA__V1__FRIEND_ADDED__INIT;
    Kizuna__V1__FriendEvent ev = KIZUNA__V1__FRIEND_EVENT__INIT;
    envelope_fill(&env);
    added.reply_token = "b60d432864f44d079f6d8efe86cf404b";
    added.reply_token_issued_at = OCCURRED - 5;
    added.is_unblocked = true;
    added.inflow_route_id = "route-qr-1";
    added.inflow_route_name = "店頭QR";
    added.webhook_event_id = "01FZ74A0TDDPYRVKNK77XKC3ZR";
    ev.envelope = &env;
    ev.user_id = USER;
    ev.event_case = KIZUNA__V1__FRIEND_EVENT__EVENT_ADDED;
    ev.added = &added;
    return pack_new(&ev.base, len);
}

static uint8_t *sample_step_due(size_t *len)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    Kizuna__V1__StepDue step = KIZUNA__V1__STEP_DUE__INIT;
    Kizuna__V1__DueEvent ev = KIZUNA__V1__DUE_EVENT__INIT;
    envelope_fill(&env);
    step.enrollment_id = "enr-1";
    step.scenario_id = "sc-1";
    step.step_id = "st-0";
    step.step_index = 0;
    step.user_id = USER;
    step.reply_token = "b60d432864f44d079f6d8efe86cf404b";
    step.reply_token_issued_at = OCCURRED - 5;
    ev.envelope = &env;
    ev.due_at = OCCURRED - 1;
    ev.event_case = KIZUNA__V1__DUE_EVENT__EVENT_STEP;
    ev.step = &step;
    return pack_new(&ev.base, len);
}

static uint8_t *sample_send_multicast(size_t *len)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    Kizuna__V1__SendRequest req = KIZUNA__V1__SEND_REQUEST__INIT;
    char *recipients[] = {"U1111", "U2222", "U3333"};
    char *messages[] = {"{\"type\":\"text\",\"text\":\"hi\"}",
                        "{\"type\":\"sticker\",\"packageId\":\"446\",\"stickerId\":\"1988\"}"};
    char *units[] = {"spring_sale"};
    envelope_fill(&env);
    req.envelope = &env;
    req.request_id = "c0ffee00-1234-5abc-8def-0123456789ab";
    req.kind = KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST;
    req.n_recipients = 3;
    req.recipients = recipients;
    req.n_messages_json = 2;
    req.messages_json = messages;
    req.notification_disabled = true;
    req.n_custom_aggregation_units = 1;
    req.custom_aggregation_units = units;
    req.origin_type = "broadcast";
    req.origin_id = "bc-9";
    return pack_new(&req.base, len);
}

static uint8_t *sample_delivery_profile(size_t *len)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    Kizuna__V1__Profile profile = KIZUNA__V1__PROFILE__INIT;
    Kizuna__V1__ErrorDetail d1 = KIZUNA__V1__ERROR_DETAIL__INIT;
    Kizuna__V1__ErrorDetail *details[] = {&d1};
    Kizuna__V1__DeliveryResult res = KIZUNA__V1__DELIVERY_RESULT__INIT;
    envelope_fill(&env);
    profile.user_id = USER;
    profile.display_name = "山田 太郎";
    profile.picture_url = "https://profile.line-scdn.net/abc";
    profile.status_message = "hello";
    profile.language = "ja";
    d1.message = "earlier attempt: rate limited";
    d1.property = "to";
    res.envelope = &env;
    res.request_id = "c0ffee00-1234-5abc-8def-0123456789ab";
    res.kind = KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE;
    res.status = KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT;
    res.attempts = 2;
    res.to = USER;
    res.recipient_count = 1;
    res.line_request_id = "f70dd685-499a-4231-a441-f24b8d4fba21";
    res.http_status = 200;
    res.n_error_details = 1;
    res.error_details = details;
    res.profile = &profile;
    res.requested_at = OCCURRED;
    res.first_attempt_at = OCCURRED + 3;
    res.finished_at = OCCURRED + 250;
    res.last_attempt_ms = 38;
    return pack_new(&res.base, len);
}

struct sample {
    const char *name;
    const ProtobufCMessageDescriptor *desc;
    uint8_t *(*pack)(size_t *len);
};

static const struct sample samples[] = {
    {"WebhookEvent", &kizuna__v1__webhook_event__descriptor, sample_webhook_text},
    {"InboundEvent", &kizuna__v1__inbound_event__descriptor, sample_inbound},
    {"ChannelConfig", &kizuna__v1__channel_config__descriptor, sample_channel},
    {"FriendEvent", &kizuna__v1__friend_event__descriptor, sample_friend_added},
    {"DueEvent", &kizuna__v1__due_event__descriptor, sample_step_due},
    {"SendRequest", &kizuna__v1__send_request__descriptor, sample_send_multicast},
    {"DeliveryResult", &kizuna__v1__delivery_result__descriptor, sample_delivery_profile},
};

/* Unpacks a sample as its type; the caller frees the result. */
static ProtobufCMessage *sample_unpack(const struct sample *s)
{
    size_t len;
    uint8_t *buf = s->pack(&len);
    ProtobufCMessage *msg = protobuf_c_message_unpack(s->desc, NULL, len, buf);
    free(buf);
    cr_assert_not_null(msg, "%s sample did not unpack", s->name);
    return msg;
}

/* ---- round trips ------------------------------------------------------- */

Test(proto, envelope_round_trips_every_field)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    envelope_fill(&env);
    ProtobufCMessage *out = round_trip(&env.base);
    envelope_check((Kizuna__V1__Envelope *)out);
    protobuf_c_message_free_unpacked(out, NULL);
}

Test(proto, webhook_text_message_round_trips_emojis_mention_and_quote)
{
    Kizuna__V1__WebhookEvent *ev = (Kizuna__V1__WebhookEvent *)sample_unpack(&samples[0]);
    envelope_check(ev->envelope);
    cr_assert_str_eq(ev->destination, "U8e742f61d673b39c7fff3cecb7536ef0");
    cr_assert_str_eq(ev->webhook_event_id, "01FZ74A0TDDPYRVKNK77XKC3ZR");
    cr_assert(ev->is_redelivery);
    cr_assert_eq(ev->timestamp, OCCURRED);
    cr_assert_eq(ev->received_at, OCCURRED + 42);
    cr_assert_eq(ev->mode, KIZUNA__V1__EVENT_MODE__EVENT_MODE_ACTIVE);
    cr_assert_eq(ev->source->type, KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_GROUP);
    cr_assert_str_eq(ev->source->user_id, USER);
    cr_assert_str_eq(ev->source->group_id, "Ca56f94637c0b1c2d3e4f5a6b7c8d9e0f");
    cr_assert_str_eq(ev->source->room_id, "");
    cr_assert_str_eq(ev->reply_token, "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA");
    cr_assert_str_eq(ev->type, "message");
    cr_assert_str_eq(ev->raw_json, "{\"type\":\"message\"}");

    cr_assert_eq(ev->event_case, KIZUNA__V1__WEBHOOK_EVENT__EVENT_MESSAGE);
    const Kizuna__V1__MessageContent *m = ev->message;
    cr_assert_str_eq(m->id, "468789577898262531");
    cr_assert_str_eq(m->type, "text");
    cr_assert_eq(m->content_case, KIZUNA__V1__MESSAGE_CONTENT__CONTENT_TEXT);
    const Kizuna__V1__TextMessageContent *t = m->text;
    cr_assert_str_eq(t->text, "@example こんにちは $$");
    cr_assert_str_eq(t->quote_token, "q3Plxr4AgKd...");
    cr_assert_str_eq(t->quoted_message_id, "468789577898262530");
    cr_assert_str_eq(t->mark_as_read_token, "");
    cr_assert_eq(t->n_emojis, 2);
    cr_assert_eq(t->emojis[0]->index, 14);
    cr_assert_eq(t->emojis[0]->length, 6);
    cr_assert_str_eq(t->emojis[0]->product_id, "5ac1bfd5040ab15980c9b435");
    cr_assert_str_eq(t->emojis[0]->emoji_id, "001");
    cr_assert_eq(t->emojis[1]->index, 20);
    cr_assert_str_eq(t->emojis[1]->emoji_id, "002");
    cr_assert_not_null(t->mention);
    cr_assert_eq(t->mention->n_mentionees, 1);
    const Kizuna__V1__Mentionee *who = t->mention->mentionees[0];
    cr_assert_eq(who->type, KIZUNA__V1__MENTIONEE_TYPE__MENTIONEE_TYPE_USER);
    cr_assert_eq(who->index, 0);
    cr_assert_eq(who->length, 8);
    cr_assert_str_eq(who->user_id, "U0123456789abcdef0123456789abcdef");
    cr_assert(who->is_self);
    protobuf_c_message_free_unpacked(&ev->base, NULL);
}

Test(proto, webhook_follow_in_standby_round_trips_is_unblocked)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    Kizuna__V1__Source source = KIZUNA__V1__SOURCE__INIT;
    Kizuna__V1__FollowDetail follow = KIZUNA__V1__FOLLOW_DETAIL__INIT;
    Kizuna__V1__WebhookEvent ev = KIZUNA__V1__WEBHOOK_EVENT__INIT;
    envelope_fill(&env);
    source.type = KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_USER;
    source.user_id = USER;
    follow.is_unblocked = true;
    ev.envelope = &env;
    ev.mode = KIZUNA__V1__EVENT_MODE__EVENT_MODE_STANDBY;
    ev.source = &source;
    ev.type = "follow";
    ev.event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_FOLLOW;
    ev.follow = &follow;

    Kizuna__V1__WebhookEvent *out = (Kizuna__V1__WebhookEvent *)round_trip(&ev.base);
    envelope_check(out->envelope);
    cr_assert_eq(out->mode, KIZUNA__V1__EVENT_MODE__EVENT_MODE_STANDBY);
    cr_assert_eq(out->source->type, KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_USER);
    cr_assert_str_eq(out->source->user_id, USER);
    cr_assert_eq(out->event_case, KIZUNA__V1__WEBHOOK_EVENT__EVENT_FOLLOW);
    cr_assert(out->follow->is_unblocked);
    protobuf_c_message_free_unpacked(&out->base, NULL);
}

Test(proto, webhook_unfollow_keeps_its_empty_oneof_member)
{
    /* An event with nothing of its own must still say which event it is. */
    Kizuna__V1__UnfollowDetail unfollow = KIZUNA__V1__UNFOLLOW_DETAIL__INIT;
    Kizuna__V1__WebhookEvent ev = KIZUNA__V1__WEBHOOK_EVENT__INIT;
    ev.event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_UNFOLLOW;
    ev.unfollow = &unfollow;
    Kizuna__V1__WebhookEvent *out = (Kizuna__V1__WebhookEvent *)round_trip(&ev.base);
    cr_assert_eq(out->event_case, KIZUNA__V1__WEBHOOK_EVENT__EVENT_UNFOLLOW);
    cr_assert_not_null(out->unfollow);
    cr_assert_null(out->envelope);
    protobuf_c_message_free_unpacked(&out->base, NULL);
}

Test(proto, webhook_postback_round_trips_datetime_and_rich_menu_switch)
{
    Kizuna__V1__PostbackContent pb = KIZUNA__V1__POSTBACK_CONTENT__INIT;
    Kizuna__V1__WebhookEvent ev = KIZUNA__V1__WEBHOOK_EVENT__INIT;
    pb.data = "action=buy&itemid=111";
    pb.date = "2026-01-02";
    pb.time = "10:30";
    pb.datetime = "2026-01-02T10:30";
    pb.new_rich_menu_alias_id = "richmenu-alias-b";
    pb.status = "SUCCESS";
    ev.type = "postback";
    ev.event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_POSTBACK;
    ev.postback = &pb;
    Kizuna__V1__WebhookEvent *out = (Kizuna__V1__WebhookEvent *)round_trip(&ev.base);
    cr_assert_eq(out->event_case, KIZUNA__V1__WEBHOOK_EVENT__EVENT_POSTBACK);
    cr_assert_str_eq(out->postback->data, "action=buy&itemid=111");
    cr_assert_str_eq(out->postback->date, "2026-01-02");
    cr_assert_str_eq(out->postback->time, "10:30");
    cr_assert_str_eq(out->postback->datetime, "2026-01-02T10:30");
    cr_assert_str_eq(out->postback->new_rich_menu_alias_id, "richmenu-alias-b");
    cr_assert_str_eq(out->postback->status, "SUCCESS");
    protobuf_c_message_free_unpacked(&out->base, NULL);
}

Test(proto, webhook_location_and_sticker_round_trip_doubles_and_keywords)
{
    Kizuna__V1__LocationMessageContent loc = KIZUNA__V1__LOCATION_MESSAGE_CONTENT__INIT;
    Kizuna__V1__MessageContent m = KIZUNA__V1__MESSAGE_CONTENT__INIT;
    Kizuna__V1__WebhookEvent ev = KIZUNA__V1__WEBHOOK_EVENT__INIT;
    loc.title = "Tokyo Tower";
    loc.address = "4 Chome-2-8 Shibakoen, Minato City";
    loc.latitude = 35.6585805;
    loc.longitude = 139.7454329;
    m.id = "1";
    m.type = "location";
    m.content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_LOCATION;
    m.location = &loc;
    ev.event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MESSAGE_EDITED;
    ev.message_edited = &m;
    Kizuna__V1__WebhookEvent *out = (Kizuna__V1__WebhookEvent *)round_trip(&ev.base);
    cr_assert_eq(out->event_case, KIZUNA__V1__WEBHOOK_EVENT__EVENT_MESSAGE_EDITED);
    cr_assert_eq(out->message_edited->content_case, KIZUNA__V1__MESSAGE_CONTENT__CONTENT_LOCATION);
    cr_assert_str_eq(out->message_edited->location->title, "Tokyo Tower");
    cr_assert(out->message_edited->location->latitude == 35.6585805);
    cr_assert(out->message_edited->location->longitude == 139.7454329);
    protobuf_c_message_free_unpacked(&out->base, NULL);

    Kizuna__V1__StickerMessageContent st = KIZUNA__V1__STICKER_MESSAGE_CONTENT__INIT;
    char *keywords[] = {"Hello", "Hi"};
    st.package_id = "446";
    st.sticker_id = "1988";
    st.sticker_resource_type = "ANIMATION";
    st.n_keywords = 2;
    st.keywords = keywords;
    m.type = "sticker";
    m.content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_STICKER;
    m.sticker = &st;
    ev.event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MESSAGE;
    ev.message = &m;
    out = (Kizuna__V1__WebhookEvent *)round_trip(&ev.base);
    cr_assert_eq(out->message->content_case, KIZUNA__V1__MESSAGE_CONTENT__CONTENT_STICKER);
    cr_assert_str_eq(out->message->sticker->sticker_resource_type, "ANIMATION");
    cr_assert_eq(out->message->sticker->n_keywords, 2);
    cr_assert_str_eq(out->message->sticker->keywords[0], "Hello");
    cr_assert_str_eq(out->message->sticker->keywords[1], "Hi");
    protobuf_c_message_free_unpacked(&out->base, NULL);
}

Test(proto, webhook_unknown_type_keeps_its_name_and_raw_json)
{
    Kizuna__V1__UnknownEvent unknown = KIZUNA__V1__UNKNOWN_EVENT__INIT;
    Kizuna__V1__WebhookEvent ev = KIZUNA__V1__WEBHOOK_EVENT__INIT;
    unknown.type = "futureThing";
    ev.type = "futureThing";
    ev.raw_json = "{\"type\":\"futureThing\",\"x\":[1,2]}";
    ev.event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_UNKNOWN;
    ev.unknown = &unknown;
    Kizuna__V1__WebhookEvent *out = (Kizuna__V1__WebhookEvent *)round_trip(&ev.base);
    cr_assert_eq(out->event_case, KIZUNA__V1__WEBHOOK_EVENT__EVENT_UNKNOWN);
    cr_assert_str_eq(out->unknown->type, "futureThing");
    cr_assert_str_eq(out->type, "futureThing");
    cr_assert_str_eq(out->raw_json, "{\"type\":\"futureThing\",\"x\":[1,2]}");
    protobuf_c_message_free_unpacked(&out->base, NULL);
}

Test(proto, inbound_link_clicked_round_trips)
{
    Kizuna__V1__InboundEvent *ev = (Kizuna__V1__InboundEvent *)sample_unpack(&samples[1]);
    envelope_check(ev->envelope);
    cr_assert_eq(ev->event_case, KIZUNA__V1__INBOUND_EVENT__EVENT_LINK_CLICKED);
    cr_assert_str_eq(ev->link_clicked->link_id, "link-7");
    cr_assert_str_eq(ev->link_clicked->friend_user_id, USER);
    cr_assert_str_eq(ev->link_clicked->target_url, "https://example.com/sale?x=1&y=2");
    cr_assert_str_eq(ev->link_clicked->user_agent, "Mozilla/5.0 (iPhone) Line/13.1.0");
    protobuf_c_message_free_unpacked(&ev->base, NULL);
}

Test(proto, channel_config_round_trips_sealed_token_bytes_with_zeros)
{
    Kizuna__V1__ChannelConfig *cfg = (Kizuna__V1__ChannelConfig *)sample_unpack(&samples[2]);
    envelope_check(cfg->envelope);
    cr_assert_str_eq(cfg->channel_id, CHANNEL);
    cr_assert_str_eq(cfg->tenant_id, TENANT);
    cr_assert_str_eq(cfg->name, "Shop 本店");
    cr_assert_str_eq(cfg->bot_user_id, "U8e742f61d673b39c7fff3cecb7536ef0");
    cr_assert_str_eq(cfg->timezone, "Asia/Tokyo");
    cr_assert_eq(cfg->monthly_quota, 15000);
    cr_assert_eq(cfg->access_token_sealed.len, sizeof sealed_token);
    cr_assert_arr_eq(cfg->access_token_sealed.data, sealed_token, sizeof sealed_token);
    cr_assert_str_eq(cfg->secret_fingerprint, "8c57…a96d8");
    cr_assert(cfg->deleted);
    cr_assert_eq(cfg->version, 7);
    cr_assert_eq(cfg->updated_at, OCCURRED + 1);
    protobuf_c_message_free_unpacked(&cfg->base, NULL);
}

Test(proto, friend_added_round_trips_reply_token_and_inflow_route)
{
    Kizuna__V1__FriendEvent *ev = (Kizuna__V1__FriendEvent *)sample_unpack(&samples[3]);
    envelope_check(ev->envelope);
    cr_assert_str_eq(ev->user_id, USER);
    cr_assert_eq(ev->event_case, KIZUNA__V1__FRIEND_EVENT__EVENT_ADDED);
    cr_assert_str_eq(ev->added->reply_token, "b60d432864f44d079f6d8efe86cf404b");
    cr_assert_eq(ev->added->reply_token_issued_at, OCCURRED - 5);
    cr_assert(ev->added->is_unblocked);
    cr_assert_str_eq(ev->added->inflow_route_id, "route-qr-1");
    cr_assert_str_eq(ev->added->inflow_route_name, "店頭QR");
    cr_assert_str_eq(ev->added->webhook_event_id, "01FZ74A0TDDPYRVKNK77XKC3ZR");
    protobuf_c_message_free_unpacked(&ev->base, NULL);
}

Test(proto, friend_field_changed_round_trips_typed_values_and_clearing)
{
    Kizuna__V1__FieldValue now = KIZUNA__V1__FIELD_VALUE__INIT;
    Kizuna__V1__FieldValue before = KIZUNA__V1__FIELD_VALUE__INIT;
    Kizuna__V1__FieldChanged changed = KIZUNA__V1__FIELD_CHANGED__INIT;
    Kizuna__V1__FriendEvent ev = KIZUNA__V1__FRIEND_EVENT__INIT;
    now.value_case = KIZUNA__V1__FIELD_VALUE__VALUE_INT_VALUE;
    now.int_value = 0; /* a set zero must stay distinguishable from "no value" */
    before.value_case = KIZUNA__V1__FIELD_VALUE__VALUE_DATE_VALUE;
    before.date_value = "1990-04-01";
    changed.field_id = "f-1";
    changed.field_name = "points";
    changed.value = &now;
    changed.previous = &before;
    ev.user_id = USER;
    ev.event_case = KIZUNA__V1__FRIEND_EVENT__EVENT_FIELD_CHANGED;
    ev.field_changed = &changed;
    Kizuna__V1__FriendEvent *out = (Kizuna__V1__FriendEvent *)round_trip(&ev.base);
    cr_assert_eq(out->event_case, KIZUNA__V1__FRIEND_EVENT__EVENT_FIELD_CHANGED);
    cr_assert_str_eq(out->field_changed->field_name, "points");
    cr_assert_eq(out->field_changed->value->value_case, KIZUNA__V1__FIELD_VALUE__VALUE_INT_VALUE);
    cr_assert_eq(out->field_changed->value->int_value, 0);
    cr_assert_eq(out->field_changed->previous->value_case,
                 KIZUNA__V1__FIELD_VALUE__VALUE_DATE_VALUE);
    cr_assert_str_eq(out->field_changed->previous->date_value, "1990-04-01");
    protobuf_c_message_free_unpacked(&out->base, NULL);

    /* Cleared: the value message is present but has no member set. */
    now.value_case = KIZUNA__V1__FIELD_VALUE__VALUE__NOT_SET;
    changed.previous = NULL;
    out = (Kizuna__V1__FriendEvent *)round_trip(&ev.base);
    cr_assert_not_null(out->field_changed->value);
    cr_assert_eq(out->field_changed->value->value_case, KIZUNA__V1__FIELD_VALUE__VALUE__NOT_SET);
    cr_assert_null(out->field_changed->previous);
    protobuf_c_message_free_unpacked(&out->base, NULL);
}

Test(proto, step_due_round_trips_enrollment_and_reply_token)
{
    Kizuna__V1__DueEvent *ev = (Kizuna__V1__DueEvent *)sample_unpack(&samples[4]);
    envelope_check(ev->envelope);
    cr_assert_eq(ev->due_at, OCCURRED - 1);
    cr_assert_eq(ev->event_case, KIZUNA__V1__DUE_EVENT__EVENT_STEP);
    cr_assert_str_eq(ev->step->enrollment_id, "enr-1");
    cr_assert_str_eq(ev->step->scenario_id, "sc-1");
    cr_assert_str_eq(ev->step->step_id, "st-0");
    cr_assert_eq(ev->step->step_index, 0);
    cr_assert_str_eq(ev->step->user_id, USER);
    cr_assert_str_eq(ev->step->reply_token, "b60d432864f44d079f6d8efe86cf404b");
    cr_assert_eq(ev->step->reply_token_issued_at, OCCURRED - 5);
    protobuf_c_message_free_unpacked(&ev->base, NULL);
}

Test(proto, broadcast_and_reminder_due_round_trip)
{
    Kizuna__V1__BroadcastDue bc = KIZUNA__V1__BROADCAST_DUE__INIT;
    Kizuna__V1__DueEvent ev = KIZUNA__V1__DUE_EVENT__INIT;
    bc.broadcast_id = "bc-9";
    bc.segment_id = "seg-2";
    ev.event_case = KIZUNA__V1__DUE_EVENT__EVENT_BROADCAST;
    ev.broadcast = &bc;
    Kizuna__V1__DueEvent *out = (Kizuna__V1__DueEvent *)round_trip(&ev.base);
    cr_assert_eq(out->event_case, KIZUNA__V1__DUE_EVENT__EVENT_BROADCAST);
    cr_assert_str_eq(out->broadcast->broadcast_id, "bc-9");
    cr_assert_str_eq(out->broadcast->segment_id, "seg-2");
    protobuf_c_message_free_unpacked(&out->base, NULL);

    Kizuna__V1__ReminderDue rem = KIZUNA__V1__REMINDER_DUE__INIT;
    rem.reminder_id = "rem-1";
    rem.step_id = "rs-3";
    rem.user_id = USER;
    rem.goal_at = OCCURRED + 86400000LL;
    ev.event_case = KIZUNA__V1__DUE_EVENT__EVENT_REMINDER;
    ev.reminder = &rem;
    out = (Kizuna__V1__DueEvent *)round_trip(&ev.base);
    cr_assert_eq(out->event_case, KIZUNA__V1__DUE_EVENT__EVENT_REMINDER);
    cr_assert_str_eq(out->reminder->reminder_id, "rem-1");
    cr_assert_eq(out->reminder->goal_at, OCCURRED + 86400000LL);
    protobuf_c_message_free_unpacked(&out->base, NULL);
}

Test(proto, send_request_multicast_round_trips_recipients_and_messages)
{
    Kizuna__V1__SendRequest *req = (Kizuna__V1__SendRequest *)sample_unpack(&samples[5]);
    envelope_check(req->envelope);
    cr_assert_str_eq(req->request_id, "c0ffee00-1234-5abc-8def-0123456789ab");
    cr_assert_eq(req->kind, KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST);
    cr_assert_eq(req->n_recipients, 3);
    cr_assert_str_eq(req->recipients[0], "U1111");
    cr_assert_str_eq(req->recipients[2], "U3333");
    cr_assert_eq(req->n_messages_json, 2);
    cr_assert_str_eq(req->messages_json[0], "{\"type\":\"text\",\"text\":\"hi\"}");
    cr_assert_str_eq(req->messages_json[1],
                     "{\"type\":\"sticker\",\"packageId\":\"446\",\"stickerId\":\"1988\"}");
    cr_assert(req->notification_disabled);
    cr_assert_eq(req->n_custom_aggregation_units, 1);
    cr_assert_str_eq(req->custom_aggregation_units[0], "spring_sale");
    cr_assert_str_eq(req->origin_type, "broadcast");
    cr_assert_str_eq(req->origin_id, "bc-9");
    cr_assert_str_eq(req->reply_token, "");
    cr_assert_str_eq(req->to, "");
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

Test(proto, send_request_reply_round_trips_token_age_and_fallback)
{
    Kizuna__V1__SendRequest req = KIZUNA__V1__SEND_REQUEST__INIT;
    char *messages[] = {"{\"type\":\"text\",\"text\":\"welcome\"}"};
    req.request_id = "11111111-2222-5333-8444-555555555555";
    req.kind = KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY;
    req.reply_token = "b60d432864f44d079f6d8efe86cf404b";
    req.reply_token_issued_at = OCCURRED;
    req.allow_push_fallback = true;
    req.to = USER;
    req.n_messages_json = 1;
    req.messages_json = messages;
    Kizuna__V1__SendRequest *out = (Kizuna__V1__SendRequest *)round_trip(&req.base);
    cr_assert_eq(out->kind, KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY);
    cr_assert_str_eq(out->reply_token, "b60d432864f44d079f6d8efe86cf404b");
    cr_assert_eq(out->reply_token_issued_at, OCCURRED);
    cr_assert(out->allow_push_fallback);
    cr_assert_str_eq(out->to, USER);
    cr_assert_eq(out->n_messages_json, 1);
    protobuf_c_message_free_unpacked(&out->base, NULL);
}

Test(proto, delivery_result_round_trips_profile_details_and_timings)
{
    Kizuna__V1__DeliveryResult *res = (Kizuna__V1__DeliveryResult *)sample_unpack(&samples[6]);
    envelope_check(res->envelope);
    cr_assert_str_eq(res->request_id, "c0ffee00-1234-5abc-8def-0123456789ab");
    cr_assert_eq(res->kind, KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE);
    cr_assert_eq(res->status, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT);
    cr_assert_eq(res->attempts, 2);
    cr_assert_str_eq(res->to, USER);
    cr_assert_eq(res->recipient_count, 1);
    cr_assert_str_eq(res->line_request_id, "f70dd685-499a-4231-a441-f24b8d4fba21");
    cr_assert_eq(res->http_status, 200);
    cr_assert_eq(res->n_error_details, 1);
    cr_assert_str_eq(res->error_details[0]->message, "earlier attempt: rate limited");
    cr_assert_str_eq(res->error_details[0]->property, "to");
    cr_assert_not_null(res->profile);
    cr_assert_str_eq(res->profile->user_id, USER);
    cr_assert_str_eq(res->profile->display_name, "山田 太郎");
    cr_assert_str_eq(res->profile->picture_url, "https://profile.line-scdn.net/abc");
    cr_assert_str_eq(res->profile->status_message, "hello");
    cr_assert_str_eq(res->profile->language, "ja");
    cr_assert_eq(res->requested_at, OCCURRED);
    cr_assert_eq(res->first_attempt_at, OCCURRED + 3);
    cr_assert_eq(res->finished_at, OCCURRED + 250);
    cr_assert_eq(res->last_attempt_ms, 38);
    protobuf_c_message_free_unpacked(&res->base, NULL);
}

Test(proto, every_top_level_event_carries_envelope_as_field_1)
{
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(samples[i].desc, 1);
        cr_assert_not_null(f, "%s has no field 1", samples[i].name);
        cr_assert_str_eq(f->name, "envelope", "%s field 1", samples[i].name);
        cr_assert_eq(f->type, PROTOBUF_C_TYPE_MESSAGE);
        cr_assert_eq(f->descriptor, &kizuna__v1__envelope__descriptor);
    }
}

/* ---- bad input ----------------------------------------------------------- */

/* Reads a varint at buf[*pos]; false if it does not end inside len. */
static bool varint_read(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; *pos < len && shift < 64; shift += 7) {
        uint8_t b = buf[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Marks boundary[i] for every offset i at which a top-level field ends (and
 * 0). A prefix ending there is a shorter but valid message; any other
 * prefix cuts a field and must be refused. */
static void field_boundaries(const uint8_t *buf, size_t len, bool *boundary)
{
    size_t pos = 0;
    memset(boundary, 0, len + 1);
    boundary[0] = true;
    while (pos < len) {
        uint64_t tag, n;
        cr_assert(varint_read(buf, len, &pos, &tag));
        switch (tag & 7) {
        case 0:
            cr_assert(varint_read(buf, len, &pos, &n));
            break;
        case 1:
            pos += 8;
            break;
        case 2:
            cr_assert(varint_read(buf, len, &pos, &n));
            pos += n;
            break;
        case 5:
            pos += 4;
            break;
        default:
            cr_assert_fail("unexpected wire type in our own encoding");
        }
        cr_assert_leq(pos, len);
        boundary[pos] = true;
    }
}

Test(proto, every_truncation_of_each_event_is_refused_unless_it_ends_on_a_field)
{
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        size_t len;
        uint8_t *buf = samples[i].pack(&len);
        bool *boundary = malloc(len + 1);
        cr_assert_not_null(boundary);
        field_boundaries(buf, len, boundary);
        size_t refused = 0;
        for (size_t cut = 0; cut < len; cut++) {
            /* A copy of exactly cut bytes, so ASan sees any read past it. */
            uint8_t *prefix = malloc(cut ? cut : 1);
            cr_assert_not_null(prefix);
            memcpy(prefix, buf, cut);
            ProtobufCMessage *msg = protobuf_c_message_unpack(samples[i].desc, NULL, cut, prefix);
            if (boundary[cut]) {
                cr_assert_not_null(msg, "%s: prefix of %zu/%zu bytes ends on a field",
                                   samples[i].name, cut, len);
            } else {
                cr_assert_null(msg, "%s: prefix of %zu/%zu bytes cuts a field but decoded",
                               samples[i].name, cut, len);
                refused++;
            }
            protobuf_c_message_free_unpacked(msg, NULL);
            free(prefix);
        }
        /* Every sample has long fields, so most cuts land inside one. */
        cr_assert_gt(refused, len / 2, "%s: only %zu of %zu prefixes refused", samples[i].name,
                     refused, len);
        free(boundary);
        free(buf);
    }
}

struct bad_case {
    const char *name;
    const ProtobufCMessageDescriptor *desc;
    uint8_t bytes[16];
    size_t len;
};

/* Short names so that each case fits on one line. */
#define D_ENVELOPE (&kizuna__v1__envelope__descriptor)
#define D_WEBHOOK (&kizuna__v1__webhook_event__descriptor)
#define D_CHANNEL (&kizuna__v1__channel_config__descriptor)
#define D_FRIEND (&kizuna__v1__friend_event__descriptor)
#define D_SEND (&kizuna__v1__send_request__descriptor)
#define D_DELIVERY (&kizuna__v1__delivery_result__descriptor)

static const struct bad_case bad_cases[] = {
    {"envelope (a message) sent as a varint", D_WEBHOOK, {0x08, 0x01}, 2},
    {"event_id (a string) sent as fixed32", D_ENVELOPE, {0x0d, 1, 2, 3, 4}, 5},
    {"occurred_at (an int64) sent length-delimited", D_ENVELOPE, {0x22, 0x01, 0x00}, 3},
    /* protobuf-c 1.4.1 takes a bool in any wire type (reading only the
     * bytes that type spans), so only a short one is refused. */
    {"is_redelivery (a bool) as fixed64 cut short", D_WEBHOOK, {0x21, 1, 0, 0}, 4},
    {"oneof member message sent as a varint", D_WEBHOOK, {0xa0, 0x01, 0x01}, 3},
    {"repeated string sent as a varint", D_SEND, {0xa8, 0x01, 0x05}, 3},
    {"kind (an enum) sent length-delimited", D_SEND, {0x1a, 0x01, 0x01}, 3},
    {"string length points past the end", D_ENVELOPE, {0x0a, 0x05, 'a', 'b'}, 4},
    {"huge string length", D_ENVELOPE, {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a'}, 7},
    {"nested length past its parent's end", D_WEBHOOK, {0x0a, 0x02, 0x0a, 0x05, 'x', 'y'}, 6},
    {"bytes length past the end", D_CHANNEL, {0x52, 0x09, 0x01, 0x02}, 4},
    {"unterminated varint value", D_ENVELOPE, {0x20, 0x80}, 2},
    {"varint of 11 bytes",
     D_ENVELOPE,
     {0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
     12},
    {"unterminated tag", D_ENVELOPE, {0x80}, 1},
    {"field number zero", D_ENVELOPE, {0x00, 0x00}, 2},
    {"wire type 6", D_ENVELOPE, {0x0e, 0x00}, 2},
    {"wire type 7", D_ENVELOPE, {0x0f, 0x00}, 2},
    {"start group", D_ENVELOPE, {0x0b, 0x0c}, 2},
    {"end group without start", D_ENVELOPE, {0x0c}, 1},
    {"unknown fixed64 field cut short", D_ENVELOPE, {0x49, 1, 2, 3}, 4},
    {"unknown fixed32 field cut short", D_DELIVERY, {0x4d, 1, 2}, 3},
    {"garbage: all ones", D_DELIVERY, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 8},
    {"garbage: text", D_FRIEND, {'{', '"', 'a', '"', ':', '1', '}'}, 7},
};

Test(proto, invalid_encodings_are_refused_without_crashing)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        /* An exact-size heap copy, so ASan catches any read past the end. */
        uint8_t *buf = malloc(c->len);
        cr_assert_not_null(buf);
        memcpy(buf, c->bytes, c->len);
        ProtobufCMessage *msg = protobuf_c_message_unpack(c->desc, NULL, c->len, buf);
        cr_expect_null(msg, "%s: decoded as %s", c->name, c->desc->name);
        protobuf_c_message_free_unpacked(msg, NULL);
        free(buf);
    }
}
