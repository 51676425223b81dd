/* The webhook body parser against LINE's contract: every event type of
 * webhook.yml (one fixture each, under tests/fixtures/webhook/, written from
 * its schemas) comes out as a WebhookEvent with exactly the fields LINE sent,
 * the envelope's event_id is stable across LINE's redeliveries, and every
 * kind of bad body is refused with a reason that names the field, without
 * echoing the body. Tests run from the repository root, as make runs them. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/webhook_parse.h"
#include "kizuna/v1/webhook.pb-c.h"

#define FIXTURES "tests/fixtures/webhook/"
#define TENANT "tenant-a"
#define CHANNEL "1234567890"
#define RECEIVED 1767225660000LL
#define DEST "U3f9e2b1c7d6a5e4f3b2c1d0e9f8a7b6c"
#define USER "U4af4980629a0b1c2d3e4f5a6b7c8d9e0"
#define USER2 "U0d8e5c8f5a3b4c2d1e0f9a8b7c6d5e4f"
#define USER3 "Ub6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1"
#define GROUP "Ca56f94637cc4347f90a25382909b24b9"
#define ROOM "Ra8dbf4ccc60e4e7c8a8e6cff4b2e3c1a"
#define BOT_ID "Uf7e6d5c4b3a29180f7e6d5c4b3a29180"
#define READ_TOKEN \
    "30yhdy232rBxD3PiXs1A9AuXTrXAXPUlT6a1nm7wDw2KXwOHnnkYD7hbUskVa2rq0L4z7jLj3QiX8Xm8E4fYwQ"

static const struct webhook_context test_ctx = {TENANT, CHANNEL, RECEIVED};

/* The fixture being checked, for assertion messages. */
static const char *current_file = "";

#define STR_EQ(actual, expected) \
    cr_assert_str_eq((actual), (expected), "%s: %s", current_file, #actual)
#define INT_EQ(actual, expected) cr_assert_eq((actual), (expected), "%s: %s", current_file, #actual)

static char *file_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (tests run from the repo root)", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    cr_assert_geq(size, 0);
    rewind(f);
    char *buf = malloc((size_t)size + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    buf[size] = '\0';
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static Kizuna__V1__WebhookEvent *record_unpack(const struct webhook_record *rec)
{
    Kizuna__V1__WebhookEvent *we = kizuna__v1__webhook_event__unpack(NULL, rec->len, rec->payload);
    cr_assert_not_null(we, "%s: record does not unpack", current_file);
    return we;
}

/* Parses a NUL-terminated body that must be accepted. */
static void parse_ok(const char *body, struct webhook_batch *batch)
{
    char err[256];
    int rc = webhook_parse(body, strlen(body), &test_ctx, batch, err, sizeof err);
    cr_assert_eq(rc, 0, "refused: %s", err);
}

/* ---- one checker per fixture ------------------------------------------- */

static const Kizuna__V1__MessageContent *message_of(const Kizuna__V1__WebhookEvent *we,
                                                    const char *id, const char *type,
                                                    Kizuna__V1__MessageContent__ContentCase c)
{
    const Kizuna__V1__MessageContent *m =
        we->event_case == KIZUNA__V1__WEBHOOK_EVENT__EVENT_MESSAGE_EDITED ? we->message_edited
                                                                          : we->message;
    cr_assert_not_null(m, "%s: message", current_file);
    STR_EQ(m->id, id);
    STR_EQ(m->type, type);
    INT_EQ(m->content_case, c);
    return m;
}

static void message_text_check(const Kizuna__V1__WebhookEvent *we)
{
    const Kizuna__V1__MessageContent *m =
        message_of(we, "468789577898262530", "text", KIZUNA__V1__MESSAGE_CONTENT__CONTENT_TEXT);
    STR_EQ(m->text->text, "こんにちは、予約の確認をお願いします");
    INT_EQ(m->text->n_emojis, 0);
    cr_assert_null(m->text->mention);
    STR_EQ(m->text->quote_token,
           "q3Plxr4AgKd4m8xPZmBhXWgH3d2uqQs2tOaXb1nIUp1_qFs7BPRUuTcWiWWjYVoiVGFHHJvlgmxgYRkzjBvNPqc"
           "3kKE2iXiSrVOuN_QEoSW-DY7nFHZBCsV8yC2j2kRrmM2z9QHmM1oLlCuu7Xx0ZQ");
    STR_EQ(m->text->quoted_message_id, "");
    STR_EQ(m->text->mark_as_read_token, READ_TOKEN);
}

static void message_text_emojis_check(const Kizuna__V1__WebhookEvent *we)
{
    const Kizuna__V1__MessageContent *m =
        message_of(we, "468789577898262531", "text", KIZUNA__V1__MESSAGE_CONTENT__CONTENT_TEXT);
    STR_EQ(m->text->text, "Hello, world! (love) (brown)");
    INT_EQ(m->text->n_emojis, 2);
    INT_EQ(m->text->emojis[0]->index, 14);
    INT_EQ(m->text->emojis[0]->length, 6);
    STR_EQ(m->text->emojis[0]->product_id, "5ac1bfd5040ab15980c9b435");
    STR_EQ(m->text->emojis[0]->emoji_id, "001");
    INT_EQ(m->text->emojis[1]->index, 21);
    INT_EQ(m->text->emojis[1]->length, 7);
    STR_EQ(m->text->emojis[1]->product_id, "5ac1bfd5040ab15980c9b435");
    STR_EQ(m->text->emojis[1]->emoji_id, "002");
    cr_assert_null(m->text->mention);
    STR_EQ(m->text->quote_token,
           "yHAz4Ua2wx7s6hRZfHK1xdqyN7tbzR1xoN9sNSgP0TQoA7uNHrOFqM5o2aHJZhQ3MrHXT");
    STR_EQ(m->text->mark_as_read_token, "");
}

static void message_text_mention_check(const Kizuna__V1__WebhookEvent *we)
{
    const Kizuna__V1__MessageContent *m =
        message_of(we, "444573844083572737", "text", KIZUNA__V1__MESSAGE_CONTENT__CONTENT_TEXT);
    STR_EQ(m->text->text, "@All @example @Kizuna Bot Good Morning!! (love)");
    INT_EQ(m->text->n_emojis, 1);
    INT_EQ(m->text->emojis[0]->index, 41);
    INT_EQ(m->text->emojis[0]->length, 6);
    cr_assert_not_null(m->text->mention);
    INT_EQ(m->text->mention->n_mentionees, 3);
    const Kizuna__V1__Mentionee *all = m->text->mention->mentionees[0];
    INT_EQ(all->type, KIZUNA__V1__MENTIONEE_TYPE__MENTIONEE_TYPE_ALL);
    INT_EQ(all->index, 0);
    INT_EQ(all->length, 4);
    STR_EQ(all->user_id, "");
    INT_EQ(all->is_self, 0);
    const Kizuna__V1__Mentionee *user = m->text->mention->mentionees[1];
    INT_EQ(user->type, KIZUNA__V1__MENTIONEE_TYPE__MENTIONEE_TYPE_USER);
    INT_EQ(user->index, 5);
    INT_EQ(user->length, 8);
    STR_EQ(user->user_id, USER3);
    INT_EQ(user->is_self, 0);
    const Kizuna__V1__Mentionee *self = m->text->mention->mentionees[2];
    INT_EQ(self->type, KIZUNA__V1__MENTIONEE_TYPE__MENTIONEE_TYPE_USER);
    INT_EQ(self->index, 14);
    INT_EQ(self->length, 11);
    STR_EQ(self->user_id, DEST);
    INT_EQ(self->is_self, 1);
    STR_EQ(m->text->quote_token, "q3Plxr4AgKd2mNPw5ZxJ9Tq7vC8bR4hK1sLd0fGe3yUi6oWa2");
}

static void message_text_quoted_check(const Kizuna__V1__WebhookEvent *we)
{
    const Kizuna__V1__MessageContent *m =
        message_of(we, "468789577898262599", "text", KIZUNA__V1__MESSAGE_CONTENT__CONTENT_TEXT);
    STR_EQ(m->text->text, "はい、それで大丈夫です");
    STR_EQ(m->text->quoted_message_id, "468789532432007169");
    STR_EQ(m->text->quote_token, "q3Plxr4AgKd7bYtN2hSg5WpMxC1vQe8rJk3uZa9fDo4iLs6nT");
}

static void message_image_check(const Kizuna__V1__WebhookEvent *we)
{
    const Kizuna__V1__MessageContent *m =
        message_of(we, "354718705033693861", "image", KIZUNA__V1__MESSAGE_CONTENT__CONTENT_IMAGE);
    cr_assert_not_null(m->image->content_provider);
    INT_EQ(m->image->content_provider->type,
           KIZUNA__V1__CONTENT_PROVIDER_TYPE__CONTENT_PROVIDER_TYPE_LINE);
    STR_EQ(m->image->content_provider->original_content_url, "");
    STR_EQ(m->image->content_provider->preview_image_url, "");
    cr_assert_not_null(m->image->image_set);
    STR_EQ(m->image->image_set->id,
           "E005D41A7288F41B65593ED38FF6E9834B046AB36A37921A56BC236F13A91855");
    INT_EQ(m->image->image_set->index, 2);
    INT_EQ(m->image->image_set->total, 3);
    STR_EQ(m->image->quote_token,
           "yHAz4Ua2wx7s6hRZfHK1xdqyN7tbzR1xoN9sNSgP0TQoA7uNHrOFqM5o2aHJZhQ3MrHXT");
    STR_EQ(m->image->mark_as_read_token, READ_TOKEN);
}

static void message_image_external_check(const Kizuna__V1__WebhookEvent *we)
{
    const Kizuna__V1__MessageContent *m =
        message_of(we, "354718705033693862", "image", KIZUNA__V1__MESSAGE_CONTENT__CONTENT_IMAGE);
    INT_EQ(m->image->content_provider->type,
           KIZUNA__V1__CONTENT_PROVIDER_TYPE__CONTENT_PROVIDER_TYPE_EXTERNAL);
    STR_EQ(m->image->content_provider->original_content_url,
           "https://cdn.example.com/images/coupon-2026-01.jpg");
    STR_EQ(m->image->content_provider->preview_image_url,
           "https://cdn.example.com/images/coupon-2026-01-preview.jpg");
    cr_assert_null(m->image->image_set);
    STR_EQ(m->image->quote_token, "zPm1kT8vW3xQ9rB2nY6cL4hJ7gF0dS5aE1uI8oK3pM6");
}

static void message_video_check(const Kizuna__V1__WebhookEvent *we)
{
    const Kizuna__V1__MessageContent *m =
        message_of(we, "325708234567890123", "video", KIZUNA__V1__MESSAGE_CONTENT__CONTENT_VIDEO);
    INT_EQ(m->video->duration, 60000);
    INT_EQ(m->video->content_provider->type,
           KIZUNA__V1__CONTENT_PROVIDER_TYPE__CONTENT_PROVIDER_TYPE_EXTERNAL);
    STR_EQ(m->video->content_provider->original_content_url,
           "https://cdn.example.com/videos/demo.mp4");
    STR_EQ(m->video->content_provider->preview_image_url,
           "https://cdn.example.com/videos/demo-preview.jpg");
    STR_EQ(m->video->quote_token, "vQ4rT7yU1iO3pA6sD9fG2hJ5kL8zX0cV3bN6mQ9wE2r");
    STR_EQ(m->video->mark_as_read_token,
           "mRk7Tq2Zx9Vb4Nc1Lp6Hs3Dg8Fw5Jy0Ua2Ei7Ko4Rt9Yu1Wm6Qs3Zd8Xc5Vb0");
}

static void message_audio_check(const Kizuna__V1__WebhookEvent *we)
{
    const Kizuna__V1__MessageContent *m =
        message_of(we, "325708234567890124", "audio", KIZUNA__V1__MESSAGE_CONTENT__CONTENT_AUDIO);
    INT_EQ(m->audio->duration, 8123);
    INT_EQ(m->audio->content_provider->type,
           KIZUNA__V1__CONTENT_PROVIDER_TYPE__CONTENT_PROVIDER_TYPE_LINE);
    STR_EQ(m->audio->mark_as_read_token, "");
}

static void message_file_check(const Kizuna__V1__WebhookEvent *we)
{
    const Kizuna__V1__MessageContent *m =
        message_of(we, "325708234567890125", "file", KIZUNA__V1__MESSAGE_CONTENT__CONTENT_FILE);
    STR_EQ(m->file->file_name, "見積書_2026-01.pdf");
    INT_EQ(m->file->file_size, 2138);
    STR_EQ(m->file->mark_as_read_token, "fT3kP8wQ1zR6yN9vB4xM7cL2hJ5gD0sA8eU3iO6pK1");
}

static void message_location_check(const Kizuna__V1__WebhookEvent *we)
{
    const Kizuna__V1__MessageContent *m = message_of(we, "325708234567890126", "location",
                                                     KIZUNA__V1__MESSAGE_CONTENT__CONTENT_LOCATION);
    STR_EQ(m->location->title, "渋谷スクランブルスクエア");
    STR_EQ(m->location->address, "日本、〒150-0002 東京都渋谷区渋谷２丁目２４−１２");
    cr_assert_float_eq(m->location->latitude, 35.658, 1e-12);
    cr_assert_float_eq(m->location->longitude, 139.7025, 1e-12);
    STR_EQ(m->location->mark_as_read_token, "");
}

static void message_sticker_check(const Kizuna__V1__WebhookEvent *we)
{
    static const char *const keywords[] = {"cony", "sally", "Staring", "hi", "whatsup"};
    const Kizuna__V1__MessageContent *m =
        message_of(we, "1501597916", "sticker", KIZUNA__V1__MESSAGE_CONTENT__CONTENT_STICKER);
    STR_EQ(m->sticker->package_id, "11537");
    STR_EQ(m->sticker->sticker_id, "52002738");
    STR_EQ(m->sticker->sticker_resource_type, "ANIMATION");
    INT_EQ(m->sticker->n_keywords, 5);
    for (size_t i = 0; i < 5; i++)
        STR_EQ(m->sticker->keywords[i], keywords[i]);
    STR_EQ(m->sticker->text, "");
    STR_EQ(m->sticker->quoted_message_id, "");
    STR_EQ(m->sticker->quote_token, "q3Plxr4AgKd5hWn8vR2tY7uC0mB3xZ6kL9jF4gD1sA");
}

static void message_sticker_message_check(const Kizuna__V1__WebhookEvent *we)
{
    const Kizuna__V1__MessageContent *m = message_of(we, "123456789012345680", "sticker",
                                                     KIZUNA__V1__MESSAGE_CONTENT__CONTENT_STICKER);
    STR_EQ(m->sticker->package_id, "12287");
    STR_EQ(m->sticker->sticker_id, "738839");
    STR_EQ(m->sticker->sticker_resource_type, "MESSAGE");
    INT_EQ(m->sticker->n_keywords, 5);
    STR_EQ(m->sticker->keywords[2], "Straight face");
    STR_EQ(m->sticker->text, "明日よろしくね！");
    STR_EQ(m->sticker->quoted_message_id, "468789532432007170");
    STR_EQ(m->sticker->quote_token, "q3Plxr4AgKd9cV2bN5mQ8wE1rT4yU7iO0pA3sD6fG9");
}

static void message_edited_check(const Kizuna__V1__WebhookEvent *we)
{
    const Kizuna__V1__MessageContent *m =
        message_of(we, "444573844083572737", "text", KIZUNA__V1__MESSAGE_CONTENT__CONTENT_TEXT);
    STR_EQ(m->text->text, "15時に変更をお願いします");
    STR_EQ(m->text->quote_token, "q3Plxr4AgKd2mNPw5ZxJ9Tq7vC8bR4hK1sLd0fGe3yUi6oWa2");
}

static void follow_check(const Kizuna__V1__WebhookEvent *we)
{
    cr_assert_not_null(we->follow);
    INT_EQ(we->follow->is_unblocked, 0);
}

static void follow_unblocked_check(const Kizuna__V1__WebhookEvent *we)
{
    cr_assert_not_null(we->follow);
    INT_EQ(we->follow->is_unblocked, 1);
}

/* unfollow, join, leave, deactivated, botSuspended, botResumed: the oneof
 * case (checked for every fixture) is all there is. */
static void detail_empty_check(const Kizuna__V1__WebhookEvent *we)
{
    cr_assert_not_null(we->unfollow, "%s: detail message set", current_file);
}

static void member_joined_check(const Kizuna__V1__WebhookEvent *we)
{
    INT_EQ(we->member_joined->n_user_ids, 2);
    STR_EQ(we->member_joined->user_ids[0], USER);
    STR_EQ(we->member_joined->user_ids[1], USER3);
}

static void member_left_check(const Kizuna__V1__WebhookEvent *we)
{
    INT_EQ(we->member_left->n_user_ids, 1);
    STR_EQ(we->member_left->user_ids[0], USER2);
}

static void postback_expect(const Kizuna__V1__WebhookEvent *we, const char *data, const char *date,
                            const char *time, const char *datetime, const char *alias,
                            const char *status)
{
    cr_assert_not_null(we->postback);
    STR_EQ(we->postback->data, data);
    STR_EQ(we->postback->date, date);
    STR_EQ(we->postback->time, time);
    STR_EQ(we->postback->datetime, datetime);
    STR_EQ(we->postback->new_rich_menu_alias_id, alias);
    STR_EQ(we->postback->status, status);
}

static void postback_check(const Kizuna__V1__WebhookEvent *we)
{
    postback_expect(we, "action=buy&itemid=111", "", "", "", "", "");
}

static void postback_date_check(const Kizuna__V1__WebhookEvent *we)
{
    postback_expect(we, "action=reserve&step=date", "2026-01-15", "", "", "", "");
}

static void postback_time_check(const Kizuna__V1__WebhookEvent *we)
{
    postback_expect(we, "action=reserve&step=time", "", "14:30", "", "", "");
}

static void postback_datetime_check(const Kizuna__V1__WebhookEvent *we)
{
    postback_expect(we, "action=reserve&step=datetime", "", "", "2026-01-15T14:30", "", "");
}

static void postback_richmenu_check(const Kizuna__V1__WebhookEvent *we)
{
    postback_expect(we, "richmenu-changed-to-b", "", "", "", "richmenu-alias-b", "SUCCESS");
}

static void beacon_check(const Kizuna__V1__WebhookEvent *we)
{
    STR_EQ(we->beacon->hwid, "d41d8cd98f");
    INT_EQ(we->beacon->type, KIZUNA__V1__BEACON_TYPE__BEACON_TYPE_ENTER);
    STR_EQ(we->beacon->dm, "1234567890abcdef");
}

static void account_link_check(const Kizuna__V1__WebhookEvent *we)
{
    INT_EQ(we->account_link->result, KIZUNA__V1__LINK_RESULT__LINK_RESULT_OK);
    STR_EQ(we->account_link->nonce, "xxxxxxxxxxxxxxx");
}

static void account_link_failed_check(const Kizuna__V1__WebhookEvent *we)
{
    INT_EQ(we->account_link->result, KIZUNA__V1__LINK_RESULT__LINK_RESULT_FAILED);
    STR_EQ(we->account_link->nonce, "a4Zk9Qp2Lm7Rt3Vx");
}

static void video_play_complete_check(const Kizuna__V1__WebhookEvent *we)
{
    STR_EQ(we->video_play_complete->tracking_id, "track-id-campaign-2026-01");
}

static void unsend_check(const Kizuna__V1__WebhookEvent *we)
{
    STR_EQ(we->unsend->message_id, "325708234567890127");
}

static void membership_joined_check(const Kizuna__V1__WebhookEvent *we)
{
    INT_EQ(we->membership->type, KIZUNA__V1__MEMBERSHIP_TYPE__MEMBERSHIP_TYPE_JOINED);
    INT_EQ(we->membership->membership_id, 3189);
}

static void membership_left_check(const Kizuna__V1__WebhookEvent *we)
{
    INT_EQ(we->membership->type, KIZUNA__V1__MEMBERSHIP_TYPE__MEMBERSHIP_TYPE_LEFT);
    INT_EQ(we->membership->membership_id, 3189);
}

static void membership_renewed_check(const Kizuna__V1__WebhookEvent *we)
{
    INT_EQ(we->membership->type, KIZUNA__V1__MEMBERSHIP_TYPE__MEMBERSHIP_TYPE_RENEWED);
    INT_EQ(we->membership->membership_id, 3190);
}

static void module_attached_check(const Kizuna__V1__WebhookEvent *we)
{
    INT_EQ(we->module->type, KIZUNA__V1__MODULE_TYPE__MODULE_TYPE_ATTACHED);
    STR_EQ(we->module->bot_id, BOT_ID);
    INT_EQ(we->module->n_scopes, 2);
    STR_EQ(we->module->scopes[0], "message:send");
    STR_EQ(we->module->scopes[1], "message:receive");
    STR_EQ(we->module->reason, "");
}

static void module_detached_check(const Kizuna__V1__WebhookEvent *we)
{
    INT_EQ(we->module->type, KIZUNA__V1__MODULE_TYPE__MODULE_TYPE_DETACHED);
    STR_EQ(we->module->bot_id, BOT_ID);
    INT_EQ(we->module->n_scopes, 0);
    STR_EQ(we->module->reason, "bot_deleted");
}

static void activated_check(const Kizuna__V1__WebhookEvent *we)
{
    INT_EQ(we->activated->expire_at, 1767229235678LL);
}

static void delivery_check(const Kizuna__V1__WebhookEvent *we)
{
    STR_EQ(we->delivery->data, "d41e0ad70dddfeb68f149ad6fc61574b9c5780ab7bcb2cba5517771ffbb2409c");
}

static void unknown_check(const Kizuna__V1__WebhookEvent *we)
{
    STR_EQ(we->unknown->type, "things");
}

/* ---- the fixture table -------------------------------------------------
 * event_id is UUIDv5(5a25f8f2-1521-5823-a305-b1459a5b577e,
 * "1234567890:<webhookEventId>"), computed independently with Python's
 * uuid.uuid5, so the C derivation is checked against another implementation. */

#define ACTIVE KIZUNA__V1__EVENT_MODE__EVENT_MODE_ACTIVE
#define STANDBY KIZUNA__V1__EVENT_MODE__EVENT_MODE_STANDBY
#define SRC_NONE KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_UNSPECIFIED
#define SRC_USER KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_USER
#define SRC_GROUP KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_GROUP
#define SRC_ROOM KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_ROOM
#define EV(x) KIZUNA__V1__WEBHOOK_EVENT__EVENT_##x

struct fixture_case {
    const char *file;
    const char *type;
    Kizuna__V1__WebhookEvent__EventCase event_case;
    const char *webhook_event_id;
    const char *event_id;
    int64_t timestamp;
    Kizuna__V1__EventMode mode;
    Kizuna__V1__SourceType source_type;
    const char *user_id, *group_id, *room_id;
    const char *reply_token;
    const char *key;
    void (*check)(const Kizuna__V1__WebhookEvent *we);
};

static const struct fixture_case fixtures[] = {
    {"message-text.json", "message", EV(MESSAGE), "01JGM7Z3Q4R5S6T7V8W9XAYBZC",
     "91a35fa1-b473-5019-af00-2ea32c6622a6", 1767225600123LL, ACTIVE, SRC_USER, USER, "", "",
     "b60d432864f44d079f6d8efe86cf404b", CHANNEL ":" USER, message_text_check},
    {"message-text-emojis.json", "message", EV(MESSAGE), "01JGM80A1B2C3D4E5F6G7H8J9K",
     "f20eb33b-277c-59e7-858a-81727f488f62", 1767225601456LL, ACTIVE, SRC_USER, USER, "", "",
     "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA", CHANNEL ":" USER, message_text_emojis_check},
    {"message-text-mention.json", "message", EV(MESSAGE), "01JGM81B2C3D4E5F6G7H8J9KMN",
     "749467a3-ef02-548d-bc44-86ca13fbd2ed", 1767225602789LL, ACTIVE, SRC_GROUP, USER2, GROUP, "",
     "3a6c2b0e9f1d4e8c8b7a6f5e4d3c2b1a", CHANNEL ":" GROUP, message_text_mention_check},
    {"message-text-quoted.json", "message", EV(MESSAGE), "01JGM82C3D4E5F6G7H8J9KMNPQ",
     "60f91482-051f-507c-a287-45a200472843", 1767225603012LL, ACTIVE, SRC_ROOM, USER, "", ROOM,
     "f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8", CHANNEL ":" ROOM, message_text_quoted_check},
    {"message-image.json", "message", EV(MESSAGE), "01JGM83D4E5F6G7H8J9KMNPQRS",
     "b88717ec-cfb8-5ce4-89db-1a36e9c573d9", 1767225604345LL, ACTIVE, SRC_USER, USER, "", "",
     "0f3779fba3b349968c5d07db31eab56f", CHANNEL ":" USER, message_image_check},
    {"message-image-external.json", "message", EV(MESSAGE), "01JGM84E5F6G7H8J9KMNPQRSTV",
     "7a6d0f4d-fb03-55d9-a44c-90e81f6ed1ca", 1767225605678LL, ACTIVE, SRC_USER, USER, "", "",
     "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d", CHANNEL ":" USER, message_image_external_check},
    {"message-video.json", "message", EV(MESSAGE), "01JGM85F6G7H8J9KMNPQRSTVWX",
     "b100fff5-2d64-5c7f-83c9-dc3c74f9728a", 1767225606901LL, ACTIVE, SRC_USER, USER, "", "",
     "2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e", CHANNEL ":" USER, message_video_check},
    {"message-audio.json", "message", EV(MESSAGE), "01JGM86G7H8J9KMNPQRSTVWXYZ",
     "bcf14cb1-a54b-5b60-b363-6ec10c65def9", 1767225607234LL, ACTIVE, SRC_USER, USER, "", "",
     "3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f", CHANNEL ":" USER, message_audio_check},
    {"message-file.json", "message", EV(MESSAGE), "01JGM87H8J9KMNPQRSTVWXYZ01",
     "ac6f1c39-7a60-5559-b1d7-1f132c807336", 1767225608567LL, ACTIVE, SRC_USER, USER, "", "",
     "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a", CHANNEL ":" USER, message_file_check},
    {"message-location.json", "message", EV(MESSAGE), "01JGM88J9KMNPQRSTVWXYZ0123",
     "9c85fecd-91ba-5f1f-b33d-45bbc4c66abd", 1767225609890LL, ACTIVE, SRC_USER, USER, "", "",
     "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", CHANNEL ":" USER, message_location_check},
    {"message-sticker.json", "message", EV(MESSAGE), "01JGM89KMNPQRSTVWXYZ012345",
     "18e86ab3-056b-5be4-b1fa-508f66717b21", 1767225610123LL, ACTIVE, SRC_USER, USER, "", "",
     "6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c", CHANNEL ":" USER, message_sticker_check},
    {"message-sticker-message.json", "message", EV(MESSAGE), "01JGM8AMNPQRSTVWXYZ0123456",
     "47e2719a-75e9-5025-80c3-21df38e4d143", 1767225611456LL, ACTIVE, SRC_USER, USER, "", "",
     "7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d", CHANNEL ":" USER, message_sticker_message_check},
    {"messageEdited.json", "messageEdited", EV(MESSAGE_EDITED), "01JGM8BNPQRSTVWXYZ01234567",
     "595d0636-2e92-5d63-a05d-ace9ba3a29f7", 1767225612789LL, ACTIVE, SRC_GROUP, USER2, GROUP, "",
     "8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e", CHANNEL ":" GROUP, message_edited_check},
    {"follow.json", "follow", EV(FOLLOW), "01JGM8CPQRSTVWXYZ012345678",
     "079b3673-87de-51bd-a08c-f70c104570f8", 1767225613012LL, ACTIVE, SRC_USER, USER, "", "",
     "85cbe770fa8b4f45bbe077b1d4be4a36", CHANNEL ":" USER, follow_check},
    {"follow-unblocked.json", "follow", EV(FOLLOW), "01JGM8DQRSTVWXYZ0123456789",
     "b189e028-55d4-5d86-98b2-3bb93abc9f51", 1767225614345LL, ACTIVE, SRC_USER, USER, "", "",
     "9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f", CHANNEL ":" USER, follow_unblocked_check},
    {"unfollow.json", "unfollow", EV(UNFOLLOW), "01JGM8ERSTVWXYZ0123456789A",
     "646878ef-983a-54ce-af7f-a936c6921a88", 1767225615678LL, ACTIVE, SRC_USER, USER, "", "", "",
     CHANNEL ":" USER, detail_empty_check},
    {"join.json", "join", EV(JOIN), "01JGM8FSTVWXYZ0123456789AB",
     "08990e73-2e19-5646-bc4b-6b5ddd4df3cc", 1767225616901LL, ACTIVE, SRC_GROUP, "", GROUP, "",
     "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a", CHANNEL ":" GROUP, detail_empty_check},
    {"leave.json", "leave", EV(LEAVE), "01JGM8GTVWXYZ0123456789ABC",
     "90e0e677-13a7-56c4-8a43-aac9f70efa4e", 1767225617234LL, ACTIVE, SRC_ROOM, "", "", ROOM, "",
     CHANNEL ":" ROOM, detail_empty_check},
    {"memberJoined.json", "memberJoined", EV(MEMBER_JOINED), "01JGM8HVWXYZ0123456789ABCD",
     "c6fc8ed8-dd50-588c-a047-1c6b01985285", 1767225618567LL, ACTIVE, SRC_GROUP, "", GROUP, "",
     "1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b", CHANNEL ":" GROUP, member_joined_check},
    {"memberLeft.json", "memberLeft", EV(MEMBER_LEFT), "01JGM8JWXYZ0123456789ABCDE",
     "2e87ea1e-b9cc-54e9-a49c-cbbaa1871bd8", 1767225619890LL, ACTIVE, SRC_GROUP, "", GROUP, "", "",
     CHANNEL ":" GROUP, member_left_check},
    {"postback.json", "postback", EV(POSTBACK), "01JGM8KXYZ0123456789ABCDEF",
     "279e7821-404e-575b-967a-76b5e78f972f", 1767225620123LL, ACTIVE, SRC_USER, USER, "", "",
     "b60d432864f44d079f6d8efe86cf404c", CHANNEL ":" USER, postback_check},
    {"postback-date.json", "postback", EV(POSTBACK), "01JGM8MYZ0123456789ABCDEFG",
     "984045dd-da48-5782-bc19-478dcc7c77ab", 1767225621456LL, ACTIVE, SRC_USER, USER, "", "",
     "2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c", CHANNEL ":" USER, postback_date_check},
    {"postback-time.json", "postback", EV(POSTBACK), "01JGM8NZ0123456789ABCDEFGH",
     "d13dab83-4a11-5004-af4b-fa085eb18297", 1767225622789LL, ACTIVE, SRC_USER, USER, "", "",
     "3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d", CHANNEL ":" USER, postback_time_check},
    {"postback-datetime.json", "postback", EV(POSTBACK), "01JGM8P0123456789ABCDEFGHJ",
     "0f6de912-9087-5e91-ba4c-3ba7bc3d468f", 1767225623012LL, ACTIVE, SRC_USER, USER, "", "",
     "4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e", CHANNEL ":" USER, postback_datetime_check},
    {"postback-richmenu.json", "postback", EV(POSTBACK), "01JGM8Q123456789ABCDEFGHJK",
     "d6f60ffe-a2c6-56cf-ae6d-ed94e22a6078", 1767225624345LL, ACTIVE, SRC_USER, USER, "", "",
     "5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f", CHANNEL ":" USER, postback_richmenu_check},
    {"beacon.json", "beacon", EV(BEACON), "01JGM8R23456789ABCDEFGHJKM",
     "87eb3851-ca25-5ff4-a2eb-3360263614c3", 1767225625678LL, ACTIVE, SRC_USER, USER, "", "",
     "6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a", CHANNEL ":" USER, beacon_check},
    {"accountLink.json", "accountLink", EV(ACCOUNT_LINK), "01JGM8S3456789ABCDEFGHJKMN",
     "1aa1beab-85c4-5fef-9db6-ad4123cae517", 1767225626901LL, ACTIVE, SRC_USER, USER, "", "",
     "b60d432864f44d079f6d8efe86cf404d", CHANNEL ":" USER, account_link_check},
    {"accountLink-failed.json", "accountLink", EV(ACCOUNT_LINK), "01JGM8T456789ABCDEFGHJKMNP",
     "5b638cec-6b10-5fb3-ab93-5a4f095a8109", 1767225627234LL, ACTIVE, SRC_USER, USER, "", "", "",
     CHANNEL ":" USER, account_link_failed_check},
    {"videoPlayComplete.json", "videoPlayComplete", EV(VIDEO_PLAY_COMPLETE),
     "01JGM8V56789ABCDEFGHJKMNPQ", "7f3cd9eb-416c-5260-b0bc-28d09a933e24", 1767225628567LL, ACTIVE,
     SRC_USER, USER, "", "", "7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b", CHANNEL ":" USER,
     video_play_complete_check},
    {"unsend.json", "unsend", EV(UNSEND), "01JGM8W6789ABCDEFGHJKMNPQR",
     "8bcd4c0a-7692-5045-a6e5-23a4b753d541", 1767225629890LL, ACTIVE, SRC_GROUP, USER2, GROUP, "",
     "", CHANNEL ":" GROUP, unsend_check},
    {"membership-joined.json", "membership", EV(MEMBERSHIP), "01JGM8X789ABCDEFGHJKMNPQRS",
     "aef8485f-db2b-5bb1-9cbd-f2f6cc63c274", 1767225630123LL, ACTIVE, SRC_USER, USER, "", "",
     "8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c", CHANNEL ":" USER, membership_joined_check},
    {"membership-left.json", "membership", EV(MEMBERSHIP), "01JGM8Y89ABCDEFGHJKMNPQRST",
     "75e279d8-9a58-54e8-820c-883938a00f65", 1767225631456LL, ACTIVE, SRC_USER, USER, "", "",
     "9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d", CHANNEL ":" USER, membership_left_check},
    {"membership-renewed.json", "membership", EV(MEMBERSHIP), "01JGM8Z9ABCDEFGHJKMNPQRSTV",
     "d1f4ce83-deaf-5294-850b-2df3a38e5e16", 1767225632789LL, ACTIVE, SRC_USER, USER, "", "",
     "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", CHANNEL ":" USER, membership_renewed_check},
    {"module-attached.json", "module", EV(MODULE), "01JGM90ABCDEFGHJKMNPQRSTVW",
     "558d4641-4605-5e00-b2ff-09011e1c2c90", 1767225633012LL, ACTIVE, SRC_NONE, NULL, NULL, NULL,
     "", CHANNEL ":", module_attached_check},
    {"module-detached.json", "module", EV(MODULE), "01JGM91BCDEFGHJKMNPQRSTVWX",
     "4cc7dfc6-c6b1-5c99-a877-1e2e3f80f8ce", 1767225634345LL, ACTIVE, SRC_NONE, NULL, NULL, NULL,
     "", CHANNEL ":", module_detached_check},
    {"activated.json", "activated", EV(ACTIVATED), "01JGM92CDEFGHJKMNPQRSTVWXY",
     "de016617-32b1-5815-888d-68835576bdc6", 1767225635678LL, ACTIVE, SRC_USER, USER, "", "", "",
     CHANNEL ":" USER, activated_check},
    {"deactivated.json", "deactivated", EV(DEACTIVATED), "01JGM93DEFGHJKMNPQRSTVWXYZ",
     "ebb8acd9-3761-59ea-8d49-23fb3f7233b4", 1767225636901LL, STANDBY, SRC_USER, USER, "", "", "",
     CHANNEL ":" USER, detail_empty_check},
    {"botSuspended.json", "botSuspended", EV(BOT_SUSPENDED), "01JGM94EFGHJKMNPQRSTVWXYZ0",
     "e53b87bd-6c88-5373-a419-08f75bb71485", 1767225637234LL, ACTIVE, SRC_NONE, NULL, NULL, NULL,
     "", CHANNEL ":", detail_empty_check},
    {"botResumed.json", "botResumed", EV(BOT_RESUMED), "01JGM95FGHJKMNPQRSTVWXYZ01",
     "c5637128-a4fc-526b-9eee-444f5e18b120", 1767225638567LL, ACTIVE, SRC_NONE, NULL, NULL, NULL,
     "", CHANNEL ":", detail_empty_check},
    {"delivery.json", "delivery", EV(DELIVERY), "01JGM96GHJKMNPQRSTVWXYZ012",
     "128485cc-4ce0-59a4-bfae-5c0cb6548ee6", 1767225639890LL, ACTIVE, SRC_USER, USER, "", "", "",
     CHANNEL ":" USER, delivery_check},
    {"unknown.json", "things", EV(UNKNOWN), "01JGM97HJKMNPQRSTVWXYZ0123",
     "26253de7-90f5-5672-872e-f357f9aca12c", 1767225640123LL, ACTIVE, SRC_USER, USER, "", "",
     "1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f", CHANNEL ":" USER, unknown_check},
};

/* raw_json must be the fixture's event: same JSON value, compact. */
static void raw_json_check(const char *raw, const char *body)
{
    json_error_t jerr;
    json_t *fixture = json_loads(body, 0, &jerr);
    cr_assert_not_null(fixture, "%s: fixture is not JSON: %s", current_file, jerr.text);
    json_t *raw_value = json_loads(raw, 0, &jerr);
    cr_assert_not_null(raw_value, "%s: raw_json is not JSON: %s", current_file, jerr.text);
    cr_assert(json_equal(raw_value, json_array_get(json_object_get(fixture, "events"), 0)),
              "%s: raw_json differs from the event: %s", current_file, raw);
    cr_assert_null(strchr(raw, '\n'), "%s: raw_json is not compact", current_file);
    cr_assert_null(strstr(raw, "\\u"), "%s: raw_json escapes non-ASCII", current_file);
    json_decref(raw_value);
    json_decref(fixture);
}

static void source_check(const Kizuna__V1__WebhookEvent *we, const struct fixture_case *c)
{
    if (c->source_type == SRC_NONE) {
        cr_assert_null(we->source, "%s: source should be unset", current_file);
        return;
    }
    cr_assert_not_null(we->source, "%s: source", current_file);
    INT_EQ(we->source->type, c->source_type);
    STR_EQ(we->source->user_id, c->user_id);
    STR_EQ(we->source->group_id, c->group_id);
    STR_EQ(we->source->room_id, c->room_id);
}

Test(webhook_parse, maps_every_fixture_to_the_exact_protobuf_fields)
{
    bool seen[100] = {false};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        const struct fixture_case *c = &fixtures[i];
        char path[256], err[256];
        size_t len;
        struct webhook_batch batch;
        current_file = c->file;
        snprintf(path, sizeof path, FIXTURES "%s", c->file);
        char *body = file_read(path, &len);

        int rc = webhook_parse(body, len, &test_ctx, &batch, err, sizeof err);
        cr_assert_eq(rc, 0, "%s: refused: %s", c->file, err);
        INT_EQ(batch.n, 1);
        STR_EQ(batch.destination, DEST);
        STR_EQ(batch.records[0].key, c->key);
        STR_EQ(batch.records[0].webhook_event_id, c->webhook_event_id);
        STR_EQ(batch.records[0].type, c->type);

        Kizuna__V1__WebhookEvent *we = record_unpack(&batch.records[0]);
        cr_assert_not_null(we->envelope, "%s: envelope", c->file);
        STR_EQ(we->envelope->event_id, c->event_id);
        STR_EQ(we->envelope->tenant_id, TENANT);
        STR_EQ(we->envelope->channel_id, CHANNEL);
        INT_EQ(we->envelope->occurred_at, c->timestamp);
        STR_EQ(we->envelope->causation_id, "");
        STR_EQ(we->destination, DEST);
        STR_EQ(we->webhook_event_id, c->webhook_event_id);
        INT_EQ(we->is_redelivery, 0);
        INT_EQ(we->timestamp, c->timestamp);
        INT_EQ(we->mode, c->mode);
        source_check(we, c);
        STR_EQ(we->reply_token, c->reply_token);
        STR_EQ(we->type, c->type);
        INT_EQ(we->received_at, RECEIVED);
        INT_EQ(we->event_case, c->event_case);
        raw_json_check(we->raw_json, body);
        c->check(we);
        seen[we->event_case] = true;

        kizuna__v1__webhook_event__free_unpacked(we, NULL);
        webhook_batch_free(&batch);
        cr_assert_eq(batch.n, 0);
        cr_assert_null(batch.records);
        free(body);
    }
    /* Every member of the oneof has a fixture. */
    for (int ev = 20; ev <= 39; ev++)
        cr_assert(seen[ev], "no fixture produces event case %d", ev);
    cr_assert(seen[99], "no fixture produces UnknownEvent");
}

Test(webhook_parse, verify_body_gives_zero_events)
{
    /* LINE's "Verify" button sends exactly this. */
    struct webhook_batch batch;
    parse_ok("{\"destination\":\"U8e742f61d673b39c7fff3cecb7536ef0\",\"events\":[]}", &batch);
    cr_assert_eq(batch.n, 0);
    cr_assert_null(batch.records);
    cr_assert_str_eq(batch.destination, "U8e742f61d673b39c7fff3cecb7536ef0");
    webhook_batch_free(&batch);

    size_t len;
    char *body = file_read(FIXTURES "verify.json", &len);
    char err[256];
    cr_assert_eq(webhook_parse(body, len, &test_ctx, &batch, err, sizeof err), 0, "%s", err);
    cr_assert_eq(batch.n, 0);
    webhook_batch_free(&batch);
    free(body);
}

#define FOLLOW_EVENT(id, redelivery)                                                       \
    "{\"type\":\"follow\",\"mode\":\"active\",\"timestamp\":1767225613012,"                \
    "\"source\":{\"type\":\"user\",\"userId\":\"" USER "\"},"                              \
    "\"webhookEventId\":\"" id "\",\"deliveryContext\":{\"isRedelivery\":" redelivery "}," \
    "\"replyToken\":\"85cbe770fa8b4f45bbe077b1d4be4a36\",\"follow\":{\"isUnblocked\":false}}"
#define BODY(events) "{\"destination\":\"" DEST "\",\"events\":[" events "]}"

/* Parses body (one event) and returns the unpacked event. */
static Kizuna__V1__WebhookEvent *parse_one(const char *body, const struct webhook_context *ctx)
{
    struct webhook_batch batch;
    char err[256];
    cr_assert_eq(webhook_parse(body, strlen(body), ctx, &batch, err, sizeof err), 0, "%s", err);
    cr_assert_eq(batch.n, 1);
    Kizuna__V1__WebhookEvent *we = record_unpack(&batch.records[0]);
    webhook_batch_free(&batch);
    return we;
}

Test(webhook_parse, redelivery_gets_the_same_event_id_and_keeps_its_flag)
{
    Kizuna__V1__WebhookEvent *first =
        parse_one(BODY(FOLLOW_EVENT("01JGM8CPQRSTVWXYZ012345678", "false")), &test_ctx);
    Kizuna__V1__WebhookEvent *again =
        parse_one(BODY(FOLLOW_EVENT("01JGM8CPQRSTVWXYZ012345678", "true")), &test_ctx);
    cr_assert_str_eq(first->envelope->event_id, "079b3673-87de-51bd-a08c-f70c104570f8");
    cr_assert_str_eq(again->envelope->event_id, first->envelope->event_id);
    cr_assert_eq(first->is_redelivery, 0);
    cr_assert_eq(again->is_redelivery, 1);

    /* The same webhookEventId on another channel is another event. */
    const struct webhook_context other = {TENANT, "2000000001", RECEIVED};
    Kizuna__V1__WebhookEvent *elsewhere =
        parse_one(BODY(FOLLOW_EVENT("01JGM8CPQRSTVWXYZ012345678", "false")), &other);
    cr_assert_str_neq(elsewhere->envelope->event_id, first->envelope->event_id);
    cr_assert_str_eq(elsewhere->envelope->channel_id, "2000000001");

    kizuna__v1__webhook_event__free_unpacked(first, NULL);
    kizuna__v1__webhook_event__free_unpacked(again, NULL);
    kizuna__v1__webhook_event__free_unpacked(elsewhere, NULL);
}

Test(webhook_parse, event_without_webhook_event_id_gets_a_random_v4_id)
{
    const char *body = BODY("{\"type\":\"unfollow\",\"timestamp\":1}");
    Kizuna__V1__WebhookEvent *a = parse_one(body, &test_ctx);
    Kizuna__V1__WebhookEvent *b = parse_one(body, &test_ctx);
    cr_assert_eq(strlen(a->envelope->event_id), 36);
    cr_assert_eq(a->envelope->event_id[14], '4', "version nibble: %s", a->envelope->event_id);
    cr_assert_str_neq(a->envelope->event_id, b->envelope->event_id);
    cr_assert_str_eq(a->webhook_event_id, "");
    kizuna__v1__webhook_event__free_unpacked(a, NULL);
    kizuna__v1__webhook_event__free_unpacked(b, NULL);
}

Test(webhook_parse, standby_mode_is_flagged)
{
    const char *body =
        BODY("{\"type\":\"message\",\"mode\":\"standby\",\"timestamp\":1767225600123,"
             "\"source\":{\"type\":\"user\",\"userId\":\"" USER "\"},"
             "\"webhookEventId\":\"01JGM7Z3Q4R5S6T7V8W9XAYBZD\","
             "\"deliveryContext\":{\"isRedelivery\":false},"
             "\"message\":{\"type\":\"text\",\"id\":\"1\",\"text\":\"hi\",\"quoteToken\":\"q\"}}");
    Kizuna__V1__WebhookEvent *we = parse_one(body, &test_ctx);
    cr_assert_eq(we->mode, STANDBY);
    cr_assert_str_eq(we->reply_token, "");
    cr_assert_str_eq(we->message->text->text, "hi");
    kizuna__v1__webhook_event__free_unpacked(we, NULL);
}

Test(webhook_parse, several_events_keep_order_and_each_gets_its_chat_key)
{
    struct webhook_batch batch;
    parse_ok(BODY("{\"type\":\"follow\",\"webhookEventId\":\"A1\",\"source\":{\"type\":\"user\","
                  "\"userId\":\"" USER "\"}},"
                  "{\"type\":\"message\",\"webhookEventId\":\"A2\",\"source\":{\"type\":\"group\","
                  "\"groupId\":\"" GROUP "\",\"userId\":\"" USER "\"}},"
                  "{\"type\":\"message\",\"webhookEventId\":\"A3\",\"source\":{\"type\":\"room\","
                  "\"roomId\":\"" ROOM "\",\"userId\":\"" USER "\"}},"
                  "{\"type\":\"botSuspended\",\"webhookEventId\":\"A4\"},"
                  "{\"type\":\"brandNewType\",\"webhookEventId\":\"A5\",\"source\":{\"type\":"
                  "\"device\",\"userId\":\"" USER2 "\"}}"),
             &batch);
    cr_assert_eq(batch.n, 5);
    static const char *const keys[] = {CHANNEL ":" USER, CHANNEL ":" GROUP, CHANNEL ":" ROOM,
                                       CHANNEL ":", CHANNEL ":" USER2};
    static const char *const types[] = {"follow", "message", "message", "botSuspended",
                                        "brandNewType"};
    for (size_t i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "A%zu", i + 1);
        cr_assert_str_eq(batch.records[i].key, keys[i]);
        cr_assert_str_eq(batch.records[i].type, types[i]);
        cr_assert_str_eq(batch.records[i].webhook_event_id, id);
    }
    /* An unknown source type keeps its ids but no type. */
    Kizuna__V1__WebhookEvent *we = record_unpack(&batch.records[4]);
    cr_assert_eq(we->source->type, SRC_NONE);
    cr_assert_str_eq(we->source->user_id, USER2);
    cr_assert_eq(we->event_case, EV(UNKNOWN));
    cr_assert_str_eq(we->unknown->type, "brandNewType");
    kizuna__v1__webhook_event__free_unpacked(we, NULL);
    webhook_batch_free(&batch);
}

Test(webhook_parse, unknown_message_type_and_enum_values_are_kept_not_refused)
{
    const char *body = BODY("{\"type\":\"message\",\"mode\":\"dormant\",\"message\":{\"type\":"
                            "\"hologram\",\"id\":\"42\",\"depth\":3},"
                            "\"source\":{\"type\":\"user\",\"userId\":\"" USER "\"}}");
    Kizuna__V1__WebhookEvent *we = parse_one(body, &test_ctx);
    cr_assert_eq(we->mode, KIZUNA__V1__EVENT_MODE__EVENT_MODE_UNSPECIFIED);
    cr_assert_eq(we->event_case, EV(MESSAGE));
    cr_assert_str_eq(we->message->type, "hologram");
    cr_assert_str_eq(we->message->id, "42");
    cr_assert_eq(we->message->content_case, KIZUNA__V1__MESSAGE_CONTENT__CONTENT__NOT_SET);
    cr_assert_not_null(strstr(we->raw_json, "\"depth\":3"));
    kizuna__v1__webhook_event__free_unpacked(we, NULL);
}

Test(webhook_parse, null_and_missing_fields_map_to_defaults)
{
    const char *body = BODY("{\"type\":\"message\",\"timestamp\":null,\"replyToken\":null,"
                            "\"source\":null,\"deliveryContext\":null,\"message\":null}");
    Kizuna__V1__WebhookEvent *we = parse_one(body, &test_ctx);
    cr_assert_eq(we->timestamp, 0);
    cr_assert_eq(we->envelope->occurred_at, 0);
    cr_assert_str_eq(we->reply_token, "");
    cr_assert_null(we->source);
    cr_assert_eq(we->event_case, EV(MESSAGE));
    cr_assert_not_null(we->message);
    cr_assert_eq(we->message->content_case, KIZUNA__V1__MESSAGE_CONTENT__CONTENT__NOT_SET);
    kizuna__v1__webhook_event__free_unpacked(we, NULL);
}

Test(webhook_parse, thousand_events_are_accepted)
{
    /* The cap is 1000 events per body; exactly 1000 must pass. */
    const char *ev = "{\"type\":\"unfollow\",\"webhookEventId\":\"X\"},";
    size_t cap = strlen(ev) * 1000 + 128, off = 0;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    off += (size_t)snprintf(body, cap, "{\"destination\":\"" DEST "\",\"events\":[");
    for (int i = 0; i < 1000; i++)
        off += (size_t)snprintf(body + off, cap - off, "%s", ev);
    body[off - 1] = ']'; /* replace the last comma */
    off += (size_t)snprintf(body + off, cap - off, "}");
    struct webhook_batch batch;
    char err[256];
    cr_assert_eq(webhook_parse(body, off, &test_ctx, &batch, err, sizeof err), 0, "%s", err);
    cr_assert_eq(batch.n, 1000);
    webhook_batch_free(&batch);
    free(body);
}

/* ---- bad input ---------------------------------------------------------- */

struct bad_case {
    const char *name;
    const char *body;
    size_t len;         /* 0: strlen(body) */
    const char *reason; /* must appear in err */
};

#define RAW(s) s, sizeof(s) - 1
#define EVENT_OK "{\"type\":\"follow\",\"timestamp\":1}"

static const struct bad_case bad_cases[] = {
    {"empty body", RAW(""), "body: empty"},
    {"truncated JSON", BODY(FOLLOW_EVENT("01JGM8CPQRSTVWXYZ012345678", "false")) "", 90,
     "body: invalid JSON"},
    {"invalid UTF-8 in a string",
     RAW("{\"destination\":\"" DEST "\",\"events\":[{\"type\":\"message\",\"message\":{"
         "\"type\":\"text\",\"text\":\"\xC3\x28\"}}]}"),
     "unable to decode byte 0xc3"},
    {"overlong UTF-8 (0xC0 0xAF for '/')",
     RAW("{\"destination\":\"" DEST "\",\"events\":[{\"type\":\"\xC0\xAF\"}]}"),
     "unable to decode byte 0xc0"},
    {"lone UTF-16 surrogate escape",
     RAW("{\"destination\":\"" DEST "\",\"events\":[{\"type\":\"\\ud800\"}]}"), "invalid Unicode"},
    {"NUL byte inside a string",
     RAW("{\"destination\":\"" DEST "\",\"events\":[{\"type\":\"fol\0low\"}]}"),
     "control character 0x0"},
    {"NUL byte after the body", RAW(BODY(EVENT_OK) "\0"), "body: invalid JSON"},
    {"\\u0000 escape", RAW("{\"destination\":\"" DEST "\",\"events\":[{\"type\":\"a\\u0000\"}]}"),
     "\\u0000 is not allowed"},
    {"body is an array", RAW("[]"), "body: must be a JSON object"},
    {"body is null", RAW("null"), "body: invalid JSON"},
    {"body is a number", RAW("42"), "body: invalid JSON"},
    {"body is a string", RAW("\"events\""), "body: invalid JSON"},
    {"trailing garbage", RAW(BODY(EVENT_OK) "x"), "body: invalid JSON"},
    {"two bodies", RAW(BODY(EVENT_OK) BODY(EVENT_OK)), "body: invalid JSON"},
    {"duplicate keys in the body",
     RAW("{\"destination\":\"" DEST "\",\"events\":[],\"events\":[]}"), "duplicate object key"},
    {"duplicate keys in an event", RAW(BODY("{\"type\":\"follow\",\"type\":\"unfollow\"}")),
     "duplicate object key"},
    {"missing destination", RAW("{\"events\":[]}"), "destination: missing"},
    {"destination not a string", RAW("{\"destination\":7,\"events\":[]}"),
     "destination: must be a string"},
    {"missing events", RAW("{\"destination\":\"" DEST "\"}"), "events: missing"},
    {"events not an array", RAW("{\"destination\":\"" DEST "\",\"events\":{}}"),
     "events: must be an array"},
    {"event not an object", RAW(BODY("\"follow\"")), "events[0]: must be an object"},
    {"third event not an object", RAW(BODY(EVENT_OK "," EVENT_OK ",[]")),
     "events[2]: must be an object"},
    {"missing type", RAW(BODY("{\"timestamp\":1}")), "events[0].type: missing"},
    {"type not a string", RAW(BODY("{\"type\":5}")), "events[0].type: must be a string"},
    {"empty type", RAW(BODY("{\"type\":\"\"}")), "events[0].type: must be 1 to 47 bytes"},
    {"type too long", RAW(BODY("{\"type\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}")),
     "events[0].type: must be 1 to 47 bytes"},
    {"timestamp a string",
     RAW(BODY(EVENT_OK "," EVENT_OK ",{\"type\":\"follow\",\"timestamp\":\"abc\"}")),
     "events[2].timestamp: must be an integer"},
    {"timestamp a fraction", RAW(BODY("{\"type\":\"follow\",\"timestamp\":1.5}")),
     "events[0].timestamp: must be an integer"},
    {"timestamp too big for int64",
     RAW(BODY("{\"type\":\"follow\",\"timestamp\":99999999999999999999}")), "too big integer"},
    {"source a number", RAW(BODY("{\"type\":\"follow\",\"source\":5}")),
     "events[0].source: must be an object"},
    {"source userId a number", RAW(BODY("{\"type\":\"follow\",\"source\":{\"userId\":1}}")),
     "events[0].source.userId: must be a string"},
    {"source id too long",
     RAW(BODY("{\"type\":\"follow\",\"source\":{\"groupId\":\"C"
              "0123456789012345678901234567890123456789012345678901234567890123\"}}")),
     "events[0].source.groupId: longer than 64 bytes"},
    {"webhookEventId too long",
     RAW(BODY("{\"type\":\"follow\",\"webhookEventId\":\""
              "0123456789012345678901234567890123456789012345678901234567890123\"}")),
     "events[0].webhookEventId: longer than 63 bytes"},
    {"mode a boolean", RAW(BODY("{\"type\":\"follow\",\"mode\":true}")),
     "events[0].mode: must be a string"},
    {"isRedelivery a string",
     RAW(BODY("{\"type\":\"follow\",\"deliveryContext\":{\"isRedelivery\":\"yes\"}}")),
     "events[0].deliveryContext.isRedelivery: must be a boolean"},
    {"replyToken a number", RAW(BODY("{\"type\":\"follow\",\"replyToken\":1}")),
     "events[0].replyToken: must be a string"},
    {"message a string", RAW(BODY("{\"type\":\"message\",\"message\":\"hi\"}")),
     "events[0].message: must be an object"},
    {"message text an array",
     RAW(BODY("{\"type\":\"message\",\"message\":{\"type\":\"text\",\"text\":[]}}")),
     "events[0].message.text: must be a string"},
    {"emoji index a string",
     RAW(BODY("{\"type\":\"message\",\"message\":{\"type\":\"text\",\"emojis\":[{\"index\":1},"
              "{\"index\":\"2\"}]}}")),
     "events[0].message.emojis[1].index: must be an integer"},
    {"emoji index beyond int32",
     RAW(BODY("{\"type\":\"message\",\"message\":{\"type\":\"text\",\"emojis\":[{\"index\":"
              "3000000000}]}}")),
     "events[0].message.emojis[0].index: out of range"},
    {"mentionee not an object",
     RAW(BODY("{\"type\":\"message\",\"message\":{\"type\":\"text\",\"mention\":{\"mentionees\":["
              "7]}}}")),
     "events[0].message.mention.mentionees[0]: must be an object"},
    {"latitude a string",
     RAW(BODY("{\"type\":\"message\",\"message\":{\"type\":\"location\",\"latitude\":\"35\"}}")),
     "events[0].message.latitude: must be a number"},
    {"sticker keyword a number",
     RAW(BODY("{\"type\":\"message\",\"message\":{\"type\":\"sticker\",\"keywords\":[\"a\",1]}}")),
     "events[0].message.keywords[1]: must be a string"},
    {"imageSet an array",
     RAW(BODY("{\"type\":\"message\",\"message\":{\"type\":\"image\",\"imageSet\":[]}}")),
     "events[0].message.imageSet: must be an object"},
    {"follow.isUnblocked a string",
     RAW(BODY("{\"type\":\"follow\",\"follow\":{\"isUnblocked\":\"true\"}}")),
     "events[0].follow.isUnblocked: must be a boolean"},
    {"joined members not an array",
     RAW(BODY("{\"type\":\"memberJoined\",\"joined\":{\"members\":{}}}")),
     "events[0].joined.members: must be an array"},
    {"postback params a string",
     RAW(BODY("{\"type\":\"postback\",\"postback\":{\"data\":\"x\",\"params\":\"date\"}}")),
     "events[0].postback.params: must be an object"},
    {"membershipId a string",
     RAW(BODY("{\"type\":\"membership\",\"membership\":{\"type\":\"joined\",\"membershipId\":"
              "\"1\"}}")),
     "events[0].membership.membershipId: must be an integer"},
    {"module scopes a string",
     RAW(BODY("{\"type\":\"module\",\"module\":{\"type\":\"attached\",\"scopes\":\"all\"}}")),
     "events[0].module.scopes: must be an array"},
    {"chatControl.expireAt a string",
     RAW(BODY("{\"type\":\"activated\",\"chatControl\":{\"expireAt\":\"soon\"}}")),
     "events[0].chatControl.expireAt: must be an integer"},
};

static void bad_expect(const char *name, const char *body, size_t len, const char *reason)
{
    struct webhook_batch batch;
    char err[256];
    memset(&batch, 0xA5, sizeof batch); /* must be reset even on failure */
    int rc = webhook_parse(body, len, &test_ctx, &batch, err, sizeof err);
    cr_assert_eq(rc, -1, "%s: accepted", name);
    cr_assert_eq(batch.n, 0, "%s: n", name);
    cr_assert_null(batch.records, "%s: records", name);
    cr_assert_not_null(strstr(err, reason), "%s: reason '%s' not in '%s'", name, reason, err);
    /* The reason never echoes body bytes: plain ASCII only. */
    for (const char *c = err; *c; c++)
        cr_assert((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f, "%s: err has byte 0x%02x",
                  name, (unsigned char)*c);
    webhook_batch_free(&batch); /* harmless after a refusal */
}

Test(webhook_parse, bad_input_is_refused_with_a_precise_reason)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        bad_expect(c->name, c->body, c->len ? c->len : strlen(c->body), c->reason);
    }
}

Test(webhook_parse, huge_nesting_depth_is_refused)
{
    /* jansson stops at depth 2048; nothing recurses past it. */
    size_t depth = 100000;
    const char *head = "{\"destination\":\"" DEST "\",\"events\":[{\"type\":\"x\",\"deep\":";
    size_t hlen = strlen(head);
    char *body = malloc(hlen + 2 * depth + 4);
    cr_assert_not_null(body);
    memcpy(body, head, hlen);
    memset(body + hlen, '[', depth);
    memset(body + hlen + depth, ']', depth);
    memcpy(body + hlen + 2 * depth, "}]}", 3);
    bad_expect("huge nesting", body, hlen + 2 * depth + 3, "maximum parsing depth reached");
    free(body);
}

Test(webhook_parse, more_than_a_thousand_events_are_refused)
{
    const char *ev = "{\"type\":\"x\"},";
    size_t cap = strlen(ev) * 1001 + 128, off = 0;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    off += (size_t)snprintf(body, cap, "{\"destination\":\"" DEST "\",\"events\":[");
    for (int i = 0; i < 1001; i++)
        off += (size_t)snprintf(body + off, cap - off, "%s", ev);
    body[off - 1] = ']';
    off += (size_t)snprintf(body + off, cap - off, "}");
    bad_expect("1001 events", body, off, "events: more than 1000 events");
    free(body);
}

Test(webhook_parse, body_over_one_mebibyte_is_refused_before_parsing)
{
    size_t len = 1024 * 1024 + 1;
    char *body = malloc(len);
    cr_assert_not_null(body);
    memset(body, ' ', len);
    bad_expect("1 MiB + 1", body, len, "body: larger than 1048576 bytes");
    free(body);
}

Test(webhook_parse, missing_context_is_refused)
{
    struct webhook_batch batch;
    char err[128];
    const char *body = BODY(EVENT_OK);
    cr_assert_eq(webhook_parse(body, strlen(body), NULL, &batch, err, sizeof err), -1);
    cr_assert_eq(batch.n, 0);
    const struct webhook_context no_channel = {TENANT, NULL, RECEIVED};
    cr_assert_eq(webhook_parse(body, strlen(body), &no_channel, &batch, err, sizeof err), -1);
    cr_assert_eq(webhook_parse(NULL, 10, &test_ctx, &batch, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "body: empty"));
    /* A NULL or zero-size err buffer is allowed. */
    cr_assert_eq(webhook_parse("[]", 2, &test_ctx, &batch, NULL, 0), -1);
    webhook_batch_free(NULL);
}
