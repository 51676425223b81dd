/* Segmentation's friend state without a database: the follow/unfollow
 * ordering rules (friend_state.h), the inbox ids of `channels` and
 * `line.webhook` records, the ChannelConfig reader, the PROFILE request
 * (deterministic id, kind, key fields) and the result helpers. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "kafka.h"
#include "kizuna/v1/channel.pb-c.h"
#include "kizuna/v1/send.pb-c.h"
#include "kizuna/v1/webhook.pb-c.h"
#include "kizuna/v1/friend.pb-c.h"
#include "segmentation/channels_table.h"
#include "segmentation/friend_events.h"
#include "segmentation/friend_state.h"
#include "segmentation/profile_request.h"
#include "segmentation/results.h"
#include "segmentation/webhook_events.h"

#define NOW 1767225600000LL

/* --- ordering ---------------------------------------------------------------- */

struct state_case {
    const char *name;
    struct friend_state before;
    struct friend_change change;
    struct friend_decision want;
};

#define FOLLOW(ts)                                                                   \
    {                                                                                \
        .follow = true, .has_reply_token = true, .timestamp_ms = (ts), .now_ms = NOW \
    }
#define UNFOLLOW(ts)                                         \
    {                                                        \
        .follow = false, .timestamp_ms = (ts), .now_ms = NOW \
    }

static const struct state_case state_cases[] = {
    {"a new friend's follow adds with the token and asks for the profile",
     {.exists = false},
     FOLLOW(NOW - 100),
     {.apply = true,
      .set_added_at = true,
      .state_event_ms = NOW - 100,
      .emit_added = true,
      .added_with_token = true,
      .request_profile = true}},
    {"a follow of a friend known from messages sets added_at",
     {.exists = true, .has_added_at = false, .state_event_ms = 0},
     FOLLOW(NOW - 100),
     {.apply = true,
      .set_added_at = true,
      .state_event_ms = NOW - 100,
      .emit_added = true,
      .added_with_token = true,
      .request_profile = true}},
    {"a follow after a block unblocks: FriendAdded(is_unblocked) then FriendUnblocked",
     {.exists = true, .blocked = true, .has_added_at = true, .state_event_ms = NOW - 5000},
     FOLLOW(NOW - 100),
     {.apply = true,
      .state_event_ms = NOW - 100,
      .emit_added = true,
      .added_unblocked = true,
      .added_with_token = true,
      .emit_unblocked = true,
      .request_profile = true}},
    {"an unfollow blocks and emits FriendBlocked",
     {.exists = true, .has_added_at = true, .state_event_ms = NOW - 5000},
     UNFOLLOW(NOW - 100),
     {.apply = true, .blocked = true, .state_event_ms = NOW - 100, .emit_blocked = true}},
    {"an unfollow of an unknown friend makes a blocked friend",
     {.exists = false},
     UNFOLLOW(NOW - 100),
     {.apply = true, .blocked = true, .state_event_ms = NOW - 100, .emit_blocked = true}},
    {"a second unfollow keeps the block and emits nothing",
     {.exists = true, .blocked = true, .has_added_at = true, .state_event_ms = NOW - 5000},
     UNFOLLOW(NOW - 100),
     {.apply = true, .blocked = true, .state_event_ms = NOW - 100}},
    {"an older unfollow arriving after a newer follow changes nothing",
     {.exists = true, .has_added_at = true, .state_event_ms = NOW - 100},
     UNFOLLOW(NOW - 5000),
     {.apply = false, .state_event_ms = NOW - 100}},
    {"an older follow arriving after a newer unfollow keeps the block",
     {.exists = true, .blocked = true, .has_added_at = true, .state_event_ms = NOW - 100},
     FOLLOW(NOW - 5000),
     {.apply = false, .blocked = true, .state_event_ms = NOW - 100}},
    {"an older follow fills a missing added_at and nothing else",
     {.exists = true, .blocked = true, .has_added_at = false, .state_event_ms = NOW - 100},
     FOLLOW(NOW - 5000),
     {.apply = false, .blocked = true, .set_added_at = true, .state_event_ms = NOW - 100}},
    {"a tie goes to the later arrival",
     {.exists = true, .has_added_at = true, .state_event_ms = NOW - 100},
     UNFOLLOW(NOW - 100),
     {.apply = true, .blocked = true, .state_event_ms = NOW - 100, .emit_blocked = true}},
};

Test(seg_friend_state, follow_and_unfollow_apply_in_timestamp_order)
{
    for (size_t i = 0; i < sizeof state_cases / sizeof state_cases[0]; i++) {
        const struct state_case *c = &state_cases[i];
        struct friend_decision d = friend_state_decide(&c->before, &c->change);
        cr_expect_eq(d.apply, c->want.apply, "%s: apply", c->name);
        cr_expect_eq(d.blocked, c->want.blocked, "%s: blocked", c->name);
        cr_expect_eq(d.set_added_at, c->want.set_added_at, "%s: set_added_at", c->name);
        cr_expect_eq(d.state_event_ms, c->want.state_event_ms, "%s: state_event_ms", c->name);
        cr_expect_eq(d.emit_added, c->want.emit_added, "%s: emit_added", c->name);
        cr_expect_eq(d.added_unblocked, c->want.added_unblocked, "%s: added_unblocked", c->name);
        cr_expect_eq(d.added_with_token, c->want.added_with_token, "%s: token", c->name);
        cr_expect_eq(d.emit_unblocked, c->want.emit_unblocked, "%s: emit_unblocked", c->name);
        cr_expect_eq(d.emit_blocked, c->want.emit_blocked, "%s: emit_blocked", c->name);
        cr_expect_eq(d.request_profile, c->want.request_profile, "%s: profile", c->name);
    }
}

Test(seg_friend_state, line_unblock_flag_emits_unblocked_even_when_the_block_was_never_seen)
{
    struct friend_state before = {.exists = false};
    struct friend_change ch = FOLLOW(NOW - 100);
    ch.is_unblocked = true;
    struct friend_decision d = friend_state_decide(&before, &ch);
    cr_expect(d.emit_added && d.added_unblocked && d.emit_unblocked);
}

Test(seg_friend_state, standby_or_late_follow_adds_without_the_reply_token)
{
    struct friend_state before = {.exists = false};
    struct friend_change standby = FOLLOW(NOW - 100);
    standby.standby = true;
    struct friend_decision d = friend_state_decide(&before, &standby);
    cr_expect(d.apply && d.emit_added && d.request_profile, "standby still changes state");
    cr_expect_not(d.added_with_token, "standby never leads to a reply");

    struct friend_change late = FOLLOW(NOW - FRIEND_REPLY_TOKEN_TTL_MS - 1);
    d = friend_state_decide(&before, &late);
    cr_expect(d.emit_added);
    cr_expect_not(d.added_with_token, "a token past its minute is left out");

    struct friend_change none = FOLLOW(NOW - 100);
    none.has_reply_token = false;
    d = friend_state_decide(&before, &none);
    cr_expect_not(d.added_with_token);
}

/* --- channels ------------------------------------------------------------------ */

static uint8_t *pack_channel(const char *channel, const char *tenant, const char *tz,
                             long long version, bool deleted, size_t *len)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = "3f0c5e2a-8d7b-4c1e-9a6f-2b4d8e0c7a15";
    Kizuna__V1__ChannelConfig cfg = KIZUNA__V1__CHANNEL_CONFIG__INIT;
    cfg.envelope = &env;
    cfg.channel_id = (char *)channel;
    cfg.tenant_id = (char *)tenant;
    cfg.timezone = (char *)tz;
    cfg.version = version;
    cfg.deleted = deleted;
    *len = kizuna__v1__channel_config__get_packed_size(&cfg);
    uint8_t *buf = malloc(*len + 1);
    kizuna__v1__channel_config__pack(&cfg, buf);
    return buf;
}

Test(seg_friend_state, channel_records_read_with_a_version_keyed_event_id)
{
    size_t len;
    uint8_t *buf = pack_channel("1656789012", "acme", "", 7, false, &len);
    struct kafka_message msg = {.topic = "channels",
                                .key = "1656789012",
                                .keylen = 10,
                                .value = buf,
                                .len = len,
                                .partition = 2,
                                .offset = 40};
    struct channels_table_row row;
    const char *reason = NULL;
    cr_assert_eq(channels_table_parse(&msg, &row, &reason), 0);
    cr_expect_str_eq(row.channel_id, "1656789012");
    cr_expect_str_eq(row.tenant_id, "acme");
    cr_expect_str_eq(row.timezone, "Asia/Tokyo", "no zone: the default");
    cr_expect_eq(row.version, 7);
    cr_expect_not(row.deleted);
    char id[CONSUMER_EVENT_ID_MAX + 1];
    cr_assert_eq(channels_table_event_id(&msg, id, sizeof id, &reason), 0);
    cr_expect_str_eq(id, "channel:1656789012:7");
    free(buf);

    struct kafka_message tomb = {
        .topic = "channels", .key = "1656789012", .keylen = 10, .partition = 2, .offset = 41};
    cr_assert_eq(channels_table_parse(&tomb, &row, &reason), 0);
    cr_expect(row.tombstone && row.deleted, "a null value is a deletion");
    cr_assert_eq(channels_table_event_id(&tomb, id, sizeof id, &reason), 0);
    cr_expect_str_eq(id, "channel:1656789012:tombstone:2:41");
}

Test(seg_friend_state, bad_channel_records_are_refused_with_a_reason)
{
    size_t len;
    uint8_t *no_tenant = pack_channel("1656789012", "", "Asia/Tokyo", 1, false, &len);
    char long_id[100];
    memset(long_id, '7', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    size_t long_len;
    uint8_t *too_long = pack_channel(long_id, "acme", "Asia/Tokyo", 1, false, &long_len);
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};
    struct {
        const char *name;
        struct kafka_message msg;
        const char *reason;
    } cases[] = {
        {"no tenant",
         {.key = "1656789012", .keylen = 10, .value = no_tenant, .len = len},
         "no_tenant"},
        {"an id too long", {.value = too_long, .len = long_len}, "bad_channel_id"},
        {"not protobuf",
         {.key = "1", .keylen = 1, .value = garbage, .len = sizeof garbage},
         "bad_payload"},
        {"a tombstone without a key", {.value = NULL, .len = 0}, "no_channel_id"},
        {"a key with a space", {.key = "16 56", .keylen = 5}, "bad_channel_id"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct channels_table_row row;
        const char *reason = NULL;
        cr_expect_eq(channels_table_parse(&cases[i].msg, &row, &reason), -1, "%s", cases[i].name);
        cr_expect_str_eq(reason ? reason : "", cases[i].reason, "%s", cases[i].name);
    }
    free(no_tenant);
    free(too_long);
}

/* --- line.webhook ----------------------------------------------------------------- */

static uint8_t *pack_webhook(const char *channel, const char *weid, const char *event_id,
                             size_t *len)
{
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = (char *)event_id;
    env.channel_id = (char *)channel;
    Kizuna__V1__WebhookEvent we = KIZUNA__V1__WEBHOOK_EVENT__INIT;
    we.envelope = &env;
    we.webhook_event_id = (char *)weid;
    we.type = "follow";
    *len = kizuna__v1__webhook_event__get_packed_size(&we);
    uint8_t *buf = malloc(*len + 1);
    kizuna__v1__webhook_event__pack(&we, buf);
    return buf;
}

Test(seg_friend_state, webhook_inbox_id_is_the_channel_and_webhook_event_id)
{
    size_t len;
    char id[CONSUMER_EVENT_ID_MAX + 1];
    const char *reason = NULL;
    uint8_t *buf = pack_webhook("1656789012", "01J9ZX5T3Q8W7E6R5T4Y3U2I1O", "e1", &len);
    struct kafka_message msg = {.value = buf, .len = len};
    cr_assert_eq(webhook_events_event_id(&msg, id, sizeof id, &reason), 0);
    cr_expect_str_eq(id, "1656789012:01J9ZX5T3Q8W7E6R5T4Y3U2I1O");
    free(buf);

    /* No webhookEventId: the envelope's id. */
    buf = pack_webhook("1656789012", "", "3f0c5e2a-8d7b-4c1e-9a6f-2b4d8e0c7a15", &len);
    msg = (struct kafka_message){.value = buf, .len = len};
    cr_assert_eq(webhook_events_event_id(&msg, id, sizeof id, &reason), 0);
    cr_expect_str_eq(id, "3f0c5e2a-8d7b-4c1e-9a6f-2b4d8e0c7a15");
    free(buf);
}

Test(seg_friend_state, webhook_records_without_a_usable_id_get_a_reason)
{
    size_t len;
    uint8_t *no_channel = pack_webhook("", "01J9", "e1", &len);
    size_t len2;
    uint8_t *spaced = pack_webhook("1656789012", "01 J9", "e1", &len2);
    static const uint8_t garbage[] = {0xff, 0xff};
    struct {
        const char *name;
        struct kafka_message msg;
        const char *reason;
    } cases[] = {
        {"no channel", {.value = no_channel, .len = len}, "no_channel"},
        {"a space in the id", {.value = spaced, .len = len2}, "bad_event_id"},
        {"not protobuf", {.value = garbage, .len = sizeof garbage}, "not_protobuf"},
        {"no value", {.value = NULL, .len = 0}, "no_envelope"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char id[CONSUMER_EVENT_ID_MAX + 1];
        const char *reason = NULL;
        cr_expect_eq(webhook_events_event_id(&cases[i].msg, id, sizeof id, &reason), -1, "%s",
                     cases[i].name);
        cr_expect_str_eq(reason ? reason : "", cases[i].reason, "%s", cases[i].name);
    }
    free(no_channel);
    free(spaced);
}

/* --- the profile request ------------------------------------------------------------- */

Test(seg_friend_state, profile_request_id_is_a_uuid_v5_of_channel_and_webhook_event)
{
    char a[37], b[37], c[37];
    profile_request_id("1234", "01ABC", a);
    profile_request_id("1234", "01ABC", b);
    profile_request_id("1235", "01ABC", c);
    /* Python: uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL,
     * "urn:kizuna:v1:segmentation-profile-request"), "1234:01ABC") */
    cr_expect_str_eq(a, "b1b58e69-6eec-5c06-9b0d-d655eb296936");
    cr_expect_str_eq(a, b, "the same follow asks under the same id");
    cr_expect_str_neq(a, c);
}

Test(seg_friend_state, profile_request_is_a_profile_send_for_the_user)
{
    size_t len = 0;
    uint8_t *buf = profile_request_pack("acme", "1234", "U0123", "01ABC", "cause-1", NOW, &len);
    cr_assert_not_null(buf);
    Kizuna__V1__SendRequest *req = kizuna__v1__send_request__unpack(NULL, len, buf);
    cr_assert_not_null(req);
    cr_expect_eq(req->kind, KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE);
    cr_expect_str_eq(req->to, "U0123");
    cr_expect_str_eq(req->request_id, "b1b58e69-6eec-5c06-9b0d-d655eb296936");
    cr_expect_str_eq(req->origin_type, "profile");
    cr_expect_str_eq(req->envelope->tenant_id, "acme");
    cr_expect_str_eq(req->envelope->channel_id, "1234");
    cr_expect_str_eq(req->envelope->causation_id, "cause-1");
    cr_expect_eq(req->envelope->occurred_at, NOW);
    cr_expect(results_is_uuid(req->envelope->event_id));
    kizuna__v1__send_request__free_unpacked(req, NULL);
    free(buf);
}

/* --- results ---------------------------------------------------------------------------- */

Test(seg_friend_state, talk_status_words_and_uuid_check)
{
    cr_expect_str_eq(results_status_name(KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT),
                     "sent");
    cr_expect_str_eq(
        results_status_name(KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_RETRY_EXHAUSTED),
        "retry_exhausted");
    cr_expect_str_eq(results_status_name((Kizuna__V1__DeliveryStatus)77), "unknown");
    static const struct {
        const char *s;
        bool ok;
    } ids[] = {
        {"3f0c5e2a-8d7b-4c1e-9a6f-2b4d8e0c7a15", true},
        {"3F0C5E2A-8D7B-4C1E-9A6F-2B4D8E0C7A15", true},
        {"probe-3f0c5e2a-8d7b-4c1e-9a6f-2b4d8e", false},
        {"3f0c5e2a-8d7b-4c1e-9a6f-2b4d8e0c7a1", false},
        {"3f0c5e2a08d7b-4c1e-9a6f-2b4d8e0c7a15", false},
        {"' OR 1=1 --", false},
        {"", false},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        cr_expect_eq(results_is_uuid(ids[i].s), ids[i].ok, "%s", ids[i].s);
    cr_expect_not(results_is_uuid(NULL));
}

/* --- friend.events records ---------------------------------------------------------------- */

Test(seg_friend_state, friend_event_is_packed_with_envelope_user_and_key)
{
    Kizuna__V1__FriendEvent ev = KIZUNA__V1__FRIEND_EVENT__INIT;
    Kizuna__V1__FriendAdded added = KIZUNA__V1__FRIEND_ADDED__INIT;
    added.reply_token = "rt-1";
    added.reply_token_issued_at = NOW - 5;
    added.webhook_event_id = "01ABC";
    ev.event_case = KIZUNA__V1__FRIEND_EVENT__EVENT_ADDED;
    ev.added = &added;
    char event_id[37], key[96];
    size_t len = 0;
    uint8_t *buf = friend_event_pack("acme", "1234", "U0123", "cause-1", NOW, &ev, event_id, key,
                                     sizeof key, &len);
    cr_assert_not_null(buf);
    cr_expect_null(ev.envelope, "the envelope does not outlive the call");
    cr_expect_str_eq(key, "1234:U0123", "one friend's events share a key");
    Kizuna__V1__FriendEvent *got = kizuna__v1__friend_event__unpack(NULL, len, buf);
    cr_assert_not_null(got);
    cr_expect_str_eq(got->envelope->event_id, event_id);
    cr_expect(results_is_uuid(event_id));
    cr_expect_str_eq(got->envelope->tenant_id, "acme");
    cr_expect_str_eq(got->envelope->channel_id, "1234");
    cr_expect_str_eq(got->envelope->causation_id, "cause-1");
    cr_expect_eq(got->envelope->occurred_at, NOW);
    cr_expect_str_eq(got->user_id, "U0123");
    cr_assert_eq(got->event_case, KIZUNA__V1__FRIEND_EVENT__EVENT_ADDED);
    cr_expect_str_eq(got->added->reply_token, "rt-1");
    cr_expect_str_eq(got->added->webhook_event_id, "01ABC");
    kizuna__v1__friend_event__free_unpacked(got, NULL);
    free(buf);

    char small[8];
    cr_expect_null(friend_event_pack("acme", "1234", "U0123", NULL, NOW, &ev, event_id, small,
                                     sizeof small, &len),
                   "a key that does not fit is refused");
}
