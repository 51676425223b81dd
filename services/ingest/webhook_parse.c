/* LINE webhook body -> one packed kizuna.v1.WebhookEvent per event.
 *
 * This is the only place that reads LINE's webhook JSON; everything after it
 * (Kafka, the spool, every consumer) sees protobuf. It is strict where a
 * mistake would corrupt data downstream and lenient where LINE is known to
 * evolve:
 *   - the body must be valid UTF-8 JSON (jansson checks, including overlong
 *     forms and lone surrogates), with no duplicate keys, no NUL byte and no
 *     \u0000 escape (C strings and proto3 strings would both misread them);
 *   - a field this file maps must have the JSON type LINE documents, or the
 *     whole body is refused with the field's path ("events[2].timestamp:
 *     must be an integer"): guessing would publish a wrong value;
 *   - a missing field, or JSON null, maps to the proto default: refusing an
 *     event LINE sent without some optional-looking field would lose it;
 *   - an unknown event type, message type or enum value is kept (type string
 *     and raw JSON), never refused.
 * Pure and reentrant: no I/O, no globals written, so any thread may call it. */
#include "webhook_parse.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uuid/uuid.h>

#include "jsonf.h"
#include "kafka_limits.h"

#include "kizuna/v1/webhook.pb-c.h"

/* Caps. The HTTP layer already refuses bodies over 1 MiB; the parser keeps
 * its own cap so no other caller can hand it more. LINE batches at most a
 * few dozen events per request (about 100 at the very most); 1000 is ten
 * times that and bounds the records, Kafka messages and memory one request
 * can cost. Strings we copy into fixed buffers have tight caps; LINE's ids
 * are 33 bytes, its event types under 20, a ULID 26. Any other string is
 * capped at 64 KiB (LINE's longest, a 5000-character text, is at most
 * 20 KB of UTF-8), arrays at 1000 items (a group has at most 500 members). */
#define WEBHOOK_BODY_MAX (1024 * 1024)
#define WEBHOOK_EVENTS_MAX 1000
#define WEBHOOK_ARRAY_MAX 1000
#define WEBHOOK_STRING_MAX (64 * 1024)
#define WEBHOOK_ID_MAX 64 /* source ids and ctx->channel_id: both go into the key */
/* Longest webhookEventId and type that fit the record's buffers. */
#define RECORD_EVENT_ID_MAX (sizeof(((struct webhook_record *)0)->webhook_event_id) - 1)
#define RECORD_TYPE_MAX (sizeof(((struct webhook_record *)0)->type) - 1)

/* Namespace of the UUIDv5 event ids: UUIDv5(NAMESPACE_URL,
 * "urn:kizuna:v1:line-webhook-event") = 5a25f8f2-1521-5823-a305-b1459a5b577e.
 * event_id = UUIDv5(this, "<channel_id>:<webhookEventId>"), so a redelivery
 * of the same event gets the same event_id in any language. Never change it:
 * consumers' inboxes dedupe on these ids. */
static const uuid_t webhook_event_ns = {0x5a, 0x25, 0xf8, 0xf2, 0x15, 0x21, 0x58, 0x23,
                                        0xa3, 0x05, 0xb1, 0x45, 0x9a, 0x5b, 0x57, 0x7e};

/* Per-call state: the caller's error buffer, and the protobuf sub-messages
 * of the event being built. Those are calloc'd and tracked here, then freed
 * together once the event is packed (or refused). */
struct parse {
    char *err;
    size_t errcap;
    void **allocs;
    size_t n_allocs;
    size_t cap_allocs;
};

typedef int (*event_map_fn)(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we);

static int parse_fail(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int parse_fail(struct parse *p, const char *fmt, ...)
{
    if (p->err && p->errcap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, p->errcap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A zeroed, tracked allocation; NULL (with err set) when memory runs out. */
static void *parse_alloc(struct parse *p, size_t size)
{
    if (p->n_allocs == p->cap_allocs) {
        size_t cap = p->cap_allocs ? p->cap_allocs * 2 : 16;
        void **allocs = realloc(p->allocs, cap * sizeof *allocs);
        if (!allocs) {
            parse_fail(p, "out of memory");
            return NULL;
        }
        p->allocs = allocs;
        p->cap_allocs = cap;
    }
    void *mem = calloc(1, size ? size : 1);
    if (!mem) {
        parse_fail(p, "out of memory");
        return NULL;
    }
    p->allocs[p->n_allocs++] = mem;
    return mem;
}

static void parse_release(struct parse *p)
{
    for (size_t i = 0; i < p->n_allocs; i++)
        free(p->allocs[i]);
    p->n_allocs = 0;
}

static void parse_done(struct parse *p)
{
    parse_release(p);
    free(p->allocs);
    p->allocs = NULL;
    p->cap_allocs = 0;
}

/* ---- typed field readers ----------------------------------------------
 * Each reads obj.key through jsonf (null reads as absent: the reader's
 * JSONF_NULLABLE), leaves the proto default when the key is absent, and
 * fails with "<path>.<key>: ..." on a wrong type. Strings are borrowed from
 * the jansson tree, which outlives the packing. Return < 0 on failure. */

static int field_string(const struct jsonf *obj, const char *key, size_t max, char **out)
{
    const char *s = protobuf_c_empty_string;
    int rc = jsonf_string(obj, key, 0, max, &s, NULL);
    *out = (char *)s;
    return rc;
}

static int field_text(const struct jsonf *obj, const char *key, char **out)
{
    return field_string(obj, key, WEBHOOK_STRING_MAX, out);
}

static int field_int64(const struct jsonf *obj, const char *key, int64_t *out)
{
    return jsonf_int(obj, key, 0, INT64_MIN, INT64_MAX, out);
}

static int field_int32(const struct jsonf *obj, const char *key, int32_t *out)
{
    int64_t v = 0;
    int rc = jsonf_int(obj, key, 0, INT32_MIN, INT32_MAX, &v);
    if (rc > 0)
        *out = (int32_t)v;
    return rc;
}

static int field_double(const struct jsonf *obj, const char *key, double *out)
{
    return jsonf_number(obj, key, 0, out);
}

static int field_bool(const struct jsonf *obj, const char *key, protobuf_c_boolean *out)
{
    bool b = false;
    int rc = jsonf_bool(obj, key, 0, &b);
    if (rc > 0)
        *out = b;
    return rc;
}

/* child = obj.key if it is an object; child->node is NULL when absent. */
static int field_object(const struct jsonf *obj, const char *key, struct jsonf *child)
{
    return jsonf_object(obj, key, 0, child);
}

static int field_array(const struct jsonf *obj, const char *key, struct jsonf *child)
{
    return jsonf_array(obj, key, 0, WEBHOOK_ARRAY_MAX, child);
}

/* obj.key as an array of strings (absent: none). */
static int field_strings(struct parse *p, const struct jsonf *obj, const char *key, size_t *n_out,
                         char ***out)
{
    struct jsonf arr;
    *n_out = 0;
    *out = NULL;
    if (field_array(obj, key, &arr) < 0)
        return -1;
    size_t n = jsonf_size(&arr);
    if (n == 0)
        return 0;
    char **strs = parse_alloc(p, n * sizeof *strs);
    if (!strs)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *s;
        if (jsonf_item_string(&arr, i, 0, WEBHOOK_STRING_MAX, &s, NULL) < 0)
            return -1;
        strs[i] = (char *)s;
    }
    *n_out = n;
    *out = strs;
    return 0;
}

/* Maps a string enum: names[i] becomes values[i]; anything else (a value
 * LINE added later) becomes 0, the UNSPECIFIED member. The string keeps the
 * usual cap, so it is read as text rather than with jsonf_enum. FIELD_ENUM
 * writes the proto enum through an int pointer: protobuf-c forces its enums
 * to int size and they hold no negative values, so int and the enum alias
 * safely. */
static int field_enum(const struct jsonf *obj, const char *key, const char *const *names,
                      const int *values, size_t n, int *out)
{
    char *s;
    *out = 0;
    if (field_string(obj, key, WEBHOOK_STRING_MAX, &s) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = values[i];
            break;
        }
    }
    return 0;
}

#define FIELD_ENUM(obj, key, names, values, out) \
    field_enum((obj), (key), (names), (values), sizeof(values) / sizeof(values[0]), (int *)(out))

/* ---- message content (message and messageEdited) ----------------------- */

static int content_provider_map(struct parse *p, const struct jsonf *obj,
                                Kizuna__V1__ContentProvider **out)
{
    static const char *const names[] = {"line", "external"};
    static const int values[] = {KIZUNA__V1__CONTENT_PROVIDER_TYPE__CONTENT_PROVIDER_TYPE_LINE,
                                 KIZUNA__V1__CONTENT_PROVIDER_TYPE__CONTENT_PROVIDER_TYPE_EXTERNAL};
    struct jsonf cp;
    *out = NULL;
    if (field_object(obj, "contentProvider", &cp) < 0)
        return -1;
    if (!cp.node)
        return 0;
    Kizuna__V1__ContentProvider *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__content_provider__init(pb);
    if (FIELD_ENUM(&cp, "type", names, values, &pb->type) < 0 ||
        field_text(&cp, "originalContentUrl", &pb->original_content_url) < 0 ||
        field_text(&cp, "previewImageUrl", &pb->preview_image_url) < 0)
        return -1;
    *out = pb;
    return 0;
}

static int emojis_map(struct parse *p, const struct jsonf *msg,
                      Kizuna__V1__TextMessageContent *text)
{
    struct jsonf arr, e;
    if (field_array(msg, "emojis", &arr) < 0)
        return -1;
    size_t n = jsonf_size(&arr);
    if (n == 0)
        return 0;
    text->emojis = parse_alloc(p, n * sizeof *text->emojis);
    if (!text->emojis)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (jsonf_item_object(&arr, i, &e) < 0)
            return -1;
        Kizuna__V1__Emoji *pb = parse_alloc(p, sizeof *pb);
        if (!pb)
            return -1;
        kizuna__v1__emoji__init(pb);
        if (field_int32(&e, "index", &pb->index) < 0 ||
            field_int32(&e, "length", &pb->length) < 0 ||
            field_text(&e, "productId", &pb->product_id) < 0 ||
            field_text(&e, "emojiId", &pb->emoji_id) < 0)
            return -1;
        text->emojis[text->n_emojis++] = pb;
    }
    return 0;
}

static int mention_map(struct parse *p, const struct jsonf *msg,
                       Kizuna__V1__TextMessageContent *text)
{
    static const char *const names[] = {"user", "all"};
    static const int values[] = {KIZUNA__V1__MENTIONEE_TYPE__MENTIONEE_TYPE_USER,
                                 KIZUNA__V1__MENTIONEE_TYPE__MENTIONEE_TYPE_ALL};
    struct jsonf mention, arr, e;
    if (field_object(msg, "mention", &mention) < 0)
        return -1;
    if (!mention.node)
        return 0;
    if (field_array(&mention, "mentionees", &arr) < 0)
        return -1;
    Kizuna__V1__Mention *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__mention__init(pb);
    size_t n = jsonf_size(&arr);
    if (n > 0) {
        pb->mentionees = parse_alloc(p, n * sizeof *pb->mentionees);
        if (!pb->mentionees)
            return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (jsonf_item_object(&arr, i, &e) < 0)
            return -1;
        Kizuna__V1__Mentionee *m = parse_alloc(p, sizeof *m);
        if (!m)
            return -1;
        kizuna__v1__mentionee__init(m);
        if (FIELD_ENUM(&e, "type", names, values, &m->type) < 0 ||
            field_int32(&e, "index", &m->index) < 0 || field_int32(&e, "length", &m->length) < 0 ||
            field_text(&e, "userId", &m->user_id) < 0 || field_bool(&e, "isSelf", &m->is_self) < 0)
            return -1;
        pb->mentionees[pb->n_mentionees++] = m;
    }
    text->mention = pb;
    return 0;
}

static int text_map(struct parse *p, const struct jsonf *msg, Kizuna__V1__MessageContent *mc)
{
    Kizuna__V1__TextMessageContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__text_message_content__init(pb);
    if (field_text(msg, "text", &pb->text) < 0 || emojis_map(p, msg, pb) < 0 ||
        mention_map(p, msg, pb) < 0 || field_text(msg, "quoteToken", &pb->quote_token) < 0 ||
        field_text(msg, "quotedMessageId", &pb->quoted_message_id) < 0 ||
        field_text(msg, "markAsReadToken", &pb->mark_as_read_token) < 0)
        return -1;
    mc->content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_TEXT;
    mc->text = pb;
    return 0;
}

static int image_map(struct parse *p, const struct jsonf *msg, Kizuna__V1__MessageContent *mc)
{
    struct jsonf set;
    Kizuna__V1__ImageMessageContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__image_message_content__init(pb);
    if (content_provider_map(p, msg, &pb->content_provider) < 0 ||
        field_object(msg, "imageSet", &set) < 0 ||
        field_text(msg, "quoteToken", &pb->quote_token) < 0 ||
        field_text(msg, "markAsReadToken", &pb->mark_as_read_token) < 0)
        return -1;
    if (set.node) {
        Kizuna__V1__ImageSet *is = parse_alloc(p, sizeof *is);
        if (!is)
            return -1;
        kizuna__v1__image_set__init(is);
        if (field_text(&set, "id", &is->id) < 0 || field_int32(&set, "index", &is->index) < 0 ||
            field_int32(&set, "total", &is->total) < 0)
            return -1;
        pb->image_set = is;
    }
    mc->content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_IMAGE;
    mc->image = pb;
    return 0;
}

static int video_map(struct parse *p, const struct jsonf *msg, Kizuna__V1__MessageContent *mc)
{
    Kizuna__V1__VideoMessageContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__video_message_content__init(pb);
    if (field_int64(msg, "duration", &pb->duration) < 0 ||
        content_provider_map(p, msg, &pb->content_provider) < 0 ||
        field_text(msg, "quoteToken", &pb->quote_token) < 0 ||
        field_text(msg, "markAsReadToken", &pb->mark_as_read_token) < 0)
        return -1;
    mc->content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_VIDEO;
    mc->video = pb;
    return 0;
}

static int audio_map(struct parse *p, const struct jsonf *msg, Kizuna__V1__MessageContent *mc)
{
    Kizuna__V1__AudioMessageContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__audio_message_content__init(pb);
    if (field_int64(msg, "duration", &pb->duration) < 0 ||
        content_provider_map(p, msg, &pb->content_provider) < 0 ||
        field_text(msg, "markAsReadToken", &pb->mark_as_read_token) < 0)
        return -1;
    mc->content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_AUDIO;
    mc->audio = pb;
    return 0;
}

static int file_map(struct parse *p, const struct jsonf *msg, Kizuna__V1__MessageContent *mc)
{
    Kizuna__V1__FileMessageContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__file_message_content__init(pb);
    if (field_text(msg, "fileName", &pb->file_name) < 0 ||
        field_int64(msg, "fileSize", &pb->file_size) < 0 ||
        field_text(msg, "markAsReadToken", &pb->mark_as_read_token) < 0)
        return -1;
    mc->content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_FILE;
    mc->file = pb;
    return 0;
}

static int location_map(struct parse *p, const struct jsonf *msg, Kizuna__V1__MessageContent *mc)
{
    Kizuna__V1__LocationMessageContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__location_message_content__init(pb);
    if (field_text(msg, "title", &pb->title) < 0 || field_text(msg, "address", &pb->address) < 0 ||
        field_double(msg, "latitude", &pb->latitude) < 0 ||
        field_double(msg, "longitude", &pb->longitude) < 0 ||
        field_text(msg, "markAsReadToken", &pb->mark_as_read_token) < 0)
        return -1;
    mc->content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_LOCATION;
    mc->location = pb;
    return 0;
}

static int sticker_map(struct parse *p, const struct jsonf *msg, Kizuna__V1__MessageContent *mc)
{
    Kizuna__V1__StickerMessageContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__sticker_message_content__init(pb);
    if (field_text(msg, "packageId", &pb->package_id) < 0 ||
        field_text(msg, "stickerId", &pb->sticker_id) < 0 ||
        field_text(msg, "stickerResourceType", &pb->sticker_resource_type) < 0 ||
        field_strings(p, msg, "keywords", &pb->n_keywords, &pb->keywords) < 0 ||
        field_text(msg, "text", &pb->text) < 0 ||
        field_text(msg, "quoteToken", &pb->quote_token) < 0 ||
        field_text(msg, "quotedMessageId", &pb->quoted_message_id) < 0 ||
        field_text(msg, "markAsReadToken", &pb->mark_as_read_token) < 0)
        return -1;
    mc->content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_STICKER;
    mc->sticker = pb;
    return 0;
}

static const struct {
    const char *type;
    int (*map)(struct parse *p, const struct jsonf *msg, Kizuna__V1__MessageContent *mc);
} message_maps[] = {
    {"text", text_map}, {"image", image_map},       {"video", video_map},     {"audio", audio_map},
    {"file", file_map}, {"location", location_map}, {"sticker", sticker_map},
};

/* ev.message -> MessageContent. An absent message still yields an (empty)
 * MessageContent, so the event's oneof always names its type. */
static int message_content_map(struct parse *p, const struct jsonf *ev,
                               Kizuna__V1__MessageContent **out)
{
    struct jsonf msg;
    if (field_object(ev, "message", &msg) < 0)
        return -1;
    Kizuna__V1__MessageContent *mc = parse_alloc(p, sizeof *mc);
    if (!mc)
        return -1;
    kizuna__v1__message_content__init(mc);
    *out = mc;
    if (!msg.node)
        return 0;
    if (field_text(&msg, "id", &mc->id) < 0 || field_text(&msg, "type", &mc->type) < 0)
        return -1;
    for (size_t i = 0; i < sizeof message_maps / sizeof message_maps[0]; i++) {
        if (strcmp(mc->type, message_maps[i].type) == 0)
            return message_maps[i].map(p, &msg, mc);
    }
    return 0; /* a message type LINE added later: content stays unset */
}

/* ---- event types ------------------------------------------------------- */

static int message_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MESSAGE;
    return message_content_map(p, ev, &we->message);
}

static int message_edited_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MESSAGE_EDITED;
    return message_content_map(p, ev, &we->message_edited);
}

static int follow_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    struct jsonf f;
    Kizuna__V1__FollowDetail *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__follow_detail__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_FOLLOW;
    we->follow = pb;
    if (field_object(ev, "follow", &f) < 0)
        return -1;
    return f.node ? field_bool(&f, "isUnblocked", &pb->is_unblocked) : 0;
}

/* Event types with nothing beyond the common fields. Each gets its own
 * empty detail message, so the oneof still says which type it was. */
static int unfollow_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    (void)ev;
    we->unfollow = parse_alloc(p, sizeof *we->unfollow);
    if (!we->unfollow)
        return -1;
    kizuna__v1__unfollow_detail__init(we->unfollow);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_UNFOLLOW;
    return 0;
}

static int join_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    (void)ev;
    we->join = parse_alloc(p, sizeof *we->join);
    if (!we->join)
        return -1;
    kizuna__v1__join_detail__init(we->join);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_JOIN;
    return 0;
}

static int leave_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    (void)ev;
    we->leave = parse_alloc(p, sizeof *we->leave);
    if (!we->leave)
        return -1;
    kizuna__v1__leave_detail__init(we->leave);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_LEAVE;
    return 0;
}

static int deactivated_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    (void)ev;
    we->deactivated = parse_alloc(p, sizeof *we->deactivated);
    if (!we->deactivated)
        return -1;
    kizuna__v1__deactivated_detail__init(we->deactivated);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_DEACTIVATED;
    return 0;
}

static int bot_suspended_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    (void)ev;
    we->bot_suspended = parse_alloc(p, sizeof *we->bot_suspended);
    if (!we->bot_suspended)
        return -1;
    kizuna__v1__bot_suspended_detail__init(we->bot_suspended);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_BOT_SUSPENDED;
    return 0;
}

static int bot_resumed_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    (void)ev;
    we->bot_resumed = parse_alloc(p, sizeof *we->bot_resumed);
    if (!we->bot_resumed)
        return -1;
    kizuna__v1__bot_resumed_detail__init(we->bot_resumed);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_BOT_RESUMED;
    return 0;
}

/* ev.<key>.members[].userId, for memberJoined ("joined") and memberLeft
 * ("left"). user_ids[i] is members[i]'s id ("" if LINE left it out). */
static int members_map(struct parse *p, const struct jsonf *ev, const char *key, size_t *n_out,
                       char ***out)
{
    struct jsonf group, arr, m;
    *n_out = 0;
    *out = NULL;
    if (field_object(ev, key, &group) < 0)
        return -1;
    if (!group.node)
        return 0;
    if (field_array(&group, "members", &arr) < 0)
        return -1;
    size_t n = jsonf_size(&arr);
    if (n == 0)
        return 0;
    char **ids = parse_alloc(p, n * sizeof *ids);
    if (!ids)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (jsonf_item_object(&arr, i, &m) < 0 || field_text(&m, "userId", &ids[i]) < 0)
            return -1;
    }
    *n_out = n;
    *out = ids;
    return 0;
}

static int member_joined_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    Kizuna__V1__JoinedMembers *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__joined_members__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MEMBER_JOINED;
    we->member_joined = pb;
    return members_map(p, ev, "joined", &pb->n_user_ids, &pb->user_ids);
}

static int member_left_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    Kizuna__V1__LeftMembers *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__left_members__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MEMBER_LEFT;
    we->member_left = pb;
    return members_map(p, ev, "left", &pb->n_user_ids, &pb->user_ids);
}

static int postback_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    struct jsonf postback, params;
    Kizuna__V1__PostbackContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__postback_content__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_POSTBACK;
    we->postback = pb;
    if (field_object(ev, "postback", &postback) < 0)
        return -1;
    if (!postback.node)
        return 0;
    if (field_text(&postback, "data", &pb->data) < 0 ||
        field_object(&postback, "params", &params) < 0)
        return -1;
    if (!params.node)
        return 0;
    if (field_text(&params, "date", &pb->date) < 0 || field_text(&params, "time", &pb->time) < 0 ||
        field_text(&params, "datetime", &pb->datetime) < 0 ||
        field_text(&params, "newRichMenuAliasId", &pb->new_rich_menu_alias_id) < 0 ||
        field_text(&params, "status", &pb->status) < 0)
        return -1;
    return 0;
}

static int beacon_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    static const char *const names[] = {"enter", "banner", "stay"};
    static const int values[] = {KIZUNA__V1__BEACON_TYPE__BEACON_TYPE_ENTER,
                                 KIZUNA__V1__BEACON_TYPE__BEACON_TYPE_BANNER,
                                 KIZUNA__V1__BEACON_TYPE__BEACON_TYPE_STAY};
    struct jsonf b;
    Kizuna__V1__BeaconContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__beacon_content__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_BEACON;
    we->beacon = pb;
    if (field_object(ev, "beacon", &b) < 0)
        return -1;
    if (!b.node)
        return 0;
    if (field_text(&b, "hwid", &pb->hwid) < 0 ||
        FIELD_ENUM(&b, "type", names, values, &pb->type) < 0 || field_text(&b, "dm", &pb->dm) < 0)
        return -1;
    return 0;
}

static int account_link_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    static const char *const names[] = {"ok", "failed"};
    static const int values[] = {KIZUNA__V1__LINK_RESULT__LINK_RESULT_OK,
                                 KIZUNA__V1__LINK_RESULT__LINK_RESULT_FAILED};
    struct jsonf link;
    Kizuna__V1__LinkContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__link_content__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_ACCOUNT_LINK;
    we->account_link = pb;
    if (field_object(ev, "link", &link) < 0)
        return -1;
    if (!link.node)
        return 0;
    if (FIELD_ENUM(&link, "result", names, values, &pb->result) < 0 ||
        field_text(&link, "nonce", &pb->nonce) < 0)
        return -1;
    return 0;
}

static int video_play_complete_map(struct parse *p, const struct jsonf *ev,
                                   Kizuna__V1__WebhookEvent *we)
{
    struct jsonf v;
    Kizuna__V1__VideoPlayComplete *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__video_play_complete__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_VIDEO_PLAY_COMPLETE;
    we->video_play_complete = pb;
    if (field_object(ev, "videoPlayComplete", &v) < 0)
        return -1;
    return v.node ? field_text(&v, "trackingId", &pb->tracking_id) : 0;
}

static int unsend_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    struct jsonf u;
    Kizuna__V1__UnsendDetail *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__unsend_detail__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_UNSEND;
    we->unsend = pb;
    if (field_object(ev, "unsend", &u) < 0)
        return -1;
    return u.node ? field_text(&u, "messageId", &pb->message_id) : 0;
}

static int membership_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    static const char *const names[] = {"joined", "left", "renewed"};
    static const int values[] = {KIZUNA__V1__MEMBERSHIP_TYPE__MEMBERSHIP_TYPE_JOINED,
                                 KIZUNA__V1__MEMBERSHIP_TYPE__MEMBERSHIP_TYPE_LEFT,
                                 KIZUNA__V1__MEMBERSHIP_TYPE__MEMBERSHIP_TYPE_RENEWED};
    struct jsonf m;
    Kizuna__V1__MembershipContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__membership_content__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MEMBERSHIP;
    we->membership = pb;
    if (field_object(ev, "membership", &m) < 0)
        return -1;
    if (!m.node)
        return 0;
    if (FIELD_ENUM(&m, "type", names, values, &pb->type) < 0 ||
        field_int64(&m, "membershipId", &pb->membership_id) < 0)
        return -1;
    return 0;
}

static int module_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    static const char *const names[] = {"attached", "detached"};
    static const int values[] = {KIZUNA__V1__MODULE_TYPE__MODULE_TYPE_ATTACHED,
                                 KIZUNA__V1__MODULE_TYPE__MODULE_TYPE_DETACHED};
    struct jsonf m;
    Kizuna__V1__ModuleContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__module_content__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MODULE;
    we->module = pb;
    if (field_object(ev, "module", &m) < 0)
        return -1;
    if (!m.node)
        return 0;
    if (FIELD_ENUM(&m, "type", names, values, &pb->type) < 0 ||
        field_text(&m, "botId", &pb->bot_id) < 0 ||
        field_strings(p, &m, "scopes", &pb->n_scopes, &pb->scopes) < 0 ||
        field_text(&m, "reason", &pb->reason) < 0)
        return -1;
    return 0;
}

static int activated_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    struct jsonf c;
    Kizuna__V1__ChatControl *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__chat_control__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_ACTIVATED;
    we->activated = pb;
    if (field_object(ev, "chatControl", &c) < 0)
        return -1;
    return c.node ? field_int64(&c, "expireAt", &pb->expire_at) : 0;
}

static int delivery_map(struct parse *p, const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    struct jsonf d;
    Kizuna__V1__PnpDelivery *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__pnp_delivery__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_DELIVERY;
    we->delivery = pb;
    if (field_object(ev, "delivery", &d) < 0)
        return -1;
    return d.node ? field_text(&d, "data", &pb->data) : 0;
}

/* Every type in LINE's webhook.yml, plus messageEdited (added July 2026). */
static const struct {
    const char *type;
    event_map_fn map;
} event_maps[] = {
    {"message", message_map},
    {"messageEdited", message_edited_map},
    {"follow", follow_map},
    {"unfollow", unfollow_map},
    {"join", join_map},
    {"leave", leave_map},
    {"memberJoined", member_joined_map},
    {"memberLeft", member_left_map},
    {"postback", postback_map},
    {"beacon", beacon_map},
    {"accountLink", account_link_map},
    {"videoPlayComplete", video_play_complete_map},
    {"unsend", unsend_map},
    {"membership", membership_map},
    {"module", module_map},
    {"activated", activated_map},
    {"deactivated", deactivated_map},
    {"botSuspended", bot_suspended_map},
    {"botResumed", bot_resumed_map},
    {"delivery", delivery_map},
};

static int unknown_map(struct parse *p, Kizuna__V1__WebhookEvent *we)
{
    Kizuna__V1__UnknownEvent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__unknown_event__init(pb);
    pb->type = we->type;
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_UNKNOWN;
    we->unknown = pb;
    return 0;
}

/* ---- common fields and the record -------------------------------------- */

static int source_map(const struct jsonf *ev, Kizuna__V1__Source *src, bool *present)
{
    static const char *const names[] = {"user", "group", "room"};
    static const int values[] = {KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_USER,
                                 KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_GROUP,
                                 KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_ROOM};
    struct jsonf s;
    *present = false;
    if (field_object(ev, "source", &s) < 0)
        return -1;
    if (!s.node)
        return 0;
    if (FIELD_ENUM(&s, "type", names, values, &src->type) < 0 ||
        field_string(&s, "userId", WEBHOOK_ID_MAX, &src->user_id) < 0 ||
        field_string(&s, "groupId", WEBHOOK_ID_MAX, &src->group_id) < 0 ||
        field_string(&s, "roomId", WEBHOOK_ID_MAX, &src->room_id) < 0)
        return -1;
    *present = true;
    return 0;
}

static int common_map(const struct jsonf *ev, Kizuna__V1__WebhookEvent *we)
{
    static const char *const names[] = {"active", "standby"};
    static const int values[] = {KIZUNA__V1__EVENT_MODE__EVENT_MODE_ACTIVE,
                                 KIZUNA__V1__EVENT_MODE__EVENT_MODE_STANDBY};
    struct jsonf dc;
    if (field_string(ev, "webhookEventId", RECORD_EVENT_ID_MAX, &we->webhook_event_id) < 0)
        return -1;
    if (field_object(ev, "deliveryContext", &dc) < 0)
        return -1;
    if (dc.node && field_bool(&dc, "isRedelivery", &we->is_redelivery) < 0)
        return -1;
    if (field_int64(ev, "timestamp", &we->timestamp) < 0 ||
        FIELD_ENUM(ev, "mode", names, values, &we->mode) < 0 ||
        field_text(ev, "replyToken", &we->reply_token) < 0)
        return -1;
    return 0;
}

/* "<channel_id>:<webhookEventId>" -> UUIDv5; no (or an empty) webhookEventId
 * -> a random UUIDv4, since there is nothing stable to derive it from. */
static void event_id_make(const char *channel_id, const char *webhook_event_id, char out[37])
{
    uuid_t uu;
    if (webhook_event_id[0] != '\0') {
        char name[WEBHOOK_ID_MAX + 1 + RECORD_EVENT_ID_MAX + 1];
        /* Both parts are capped, so the name always fits. */
        int n = snprintf(name, sizeof name, "%s:%s", channel_id, webhook_event_id);
        if (n < 0 || (size_t)n >= sizeof name)
            n = (int)strlen(name);
        uuid_generate_sha1(uu, webhook_event_ns, name, (size_t)n);
    } else {
        uuid_generate_random(uu);
    }
    uuid_unparse_lower(uu, out);
}

/* Copies a string known to fit (its length was capped when read). */
static void copy_bounded(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* One element of "events" -> rec (payload malloc'd only on success). */
static int event_to_record(struct parse *p, const struct jsonf *ev,
                           const struct webhook_context *ctx, const char *destination,
                           struct webhook_record *rec)
{
    Kizuna__V1__WebhookEvent we = KIZUNA__V1__WEBHOOK_EVENT__INIT;
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    Kizuna__V1__Source src = KIZUNA__V1__SOURCE__INIT;
    char event_id[37];
    char *raw = NULL;
    bool has_source;
    int rc = -1;

    const char *type = NULL;
    size_t type_len = 0;
    if (jsonf_string(ev, "type", JSONF_REQUIRED, SIZE_MAX, &type, &type_len) < 0)
        goto done;
    if (type_len == 0 || type_len > RECORD_TYPE_MAX) {
        jsonf_fail(ev, "type", JSONF_VALUE, "must be 1 to %zu bytes", RECORD_TYPE_MAX);
        goto done;
    }
    we.type = (char *)type;
    we.destination = (char *)destination;
    we.received_at = ctx->received_at_ms;
    if (common_map(ev, &we) < 0 || source_map(ev, &src, &has_source) < 0)
        goto done;
    if (has_source)
        we.source = &src;

    /* A type not in the table is kept whole; the caller counts it in a metric. */
    event_map_fn map = NULL;
    for (size_t i = 0; i < sizeof event_maps / sizeof event_maps[0] && !map; i++) {
        if (strcmp(we.type, event_maps[i].type) == 0)
            map = event_maps[i].map;
    }
    if (map ? map(p, ev, &we) < 0 : unknown_map(p, &we) < 0)
        goto done;

    /* Compact, UTF-8 as is (no \u escapes), keys in LINE's order. */
    raw = json_dumps(ev->node, JSON_COMPACT);
    if (!raw) {
        parse_fail(p, "out of memory");
        goto done;
    }
    we.raw_json = raw;

    event_id_make(ctx->channel_id, we.webhook_event_id, event_id);
    env.event_id = event_id;
    env.tenant_id = (char *)ctx->tenant_id;
    env.channel_id = (char *)ctx->channel_id;
    env.occurred_at = we.timestamp;
    we.envelope = &env;

    /* The chat's id keys the record, so one chat's events stay in order. */
    const char *source_id = "";
    if (src.group_id[0] != '\0')
        source_id = src.group_id;
    else if (src.room_id[0] != '\0')
        source_id = src.room_id;
    else
        source_id = src.user_id;
    /* Both parts are capped at WEBHOOK_ID_MAX, so this always fits. */
    snprintf(rec->key, sizeof rec->key, "%s:%s", ctx->channel_id, source_id);
    copy_bounded(rec->webhook_event_id, sizeof rec->webhook_event_id, we.webhook_event_id);
    copy_bounded(rec->type, sizeof rec->type, we.type);

    size_t len = kizuna__v1__webhook_event__get_packed_size(&we);
    rec->payload = malloc(len ? len : 1);
    if (!rec->payload) {
        parse_fail(p, "out of memory");
        goto done;
    }
    rec->len = kizuna__v1__webhook_event__pack(&we, rec->payload);
    rc = 0;
done:
    free(raw);
    parse_release(p);
    return rc;
}

/* jansson's message ends in "near '<input>'": drop that part, so no body
 * bytes (personal data, or bytes that are not UTF-8) reach logs or the 400. */
static void json_error_trim(char *text)
{
    char *near = strstr(text, " near ");
    if (near)
        *near = '\0';
}

int webhook_parse(const char *body, size_t len, const struct webhook_context *ctx,
                  struct webhook_batch *out, char *err, size_t errcap)
{
    struct parse p = {.err = err, .errcap = errcap};
    struct jsonf_error field_error;
    struct jsonf_reader reader = {0};
    json_t *root = NULL;
    json_error_t jerr;
    int rc = -1;
    bool too_large = false;

    if (err && errcap > 0)
        err[0] = '\0';
    if (!out)
        return parse_fail(&p, "internal: no output batch");
    memset(out, 0, sizeof *out);
    if (!ctx || !ctx->tenant_id || !ctx->channel_id) {
        parse_fail(&p, "internal: tenant_id and channel_id are required");
        goto done;
    }
    if (strlen(ctx->channel_id) > WEBHOOK_ID_MAX) {
        parse_fail(&p, "internal: channel_id longer than %d bytes", WEBHOOK_ID_MAX);
        goto done;
    }
    if (!body || len == 0) {
        parse_fail(&p, "body: empty");
        goto done;
    }
    if (len > WEBHOOK_BODY_MAX) {
        parse_fail(&p, "body: larger than %d bytes", WEBHOOK_BODY_MAX);
        goto done;
    }
    /* Without JSON_ALLOW_NUL jansson refuses \u0000, and it refuses a raw NUL
     * byte as a control character; JSON_DECODE_ANY is off, so the top level
     * must be an object or array; depth is capped at 2048 by jansson. */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        json_error_trim(jerr.text);
        parse_fail(&p, "body: invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                   jerr.text);
        goto done;
    }
    if (!json_is_object(root)) {
        parse_fail(&p, "body: must be a JSON object");
        goto done;
    }

    /* null reads as absent everywhere (see the top of this file). */
    reader = (struct jsonf_reader){.flags = JSONF_NULLABLE, .errors = &field_error, .cap = 1};
    struct jsonf doc, events, ev;
    const char *dest;
    jsonf_root(&doc, &reader, root);
    if (jsonf_string(&doc, "destination", JSONF_REQUIRED, sizeof out->destination - 1, &dest,
                     NULL) < 0 ||
        jsonf_array(&doc, "events", JSONF_REQUIRED, SIZE_MAX, &events) < 0)
        goto done;
    size_t n = jsonf_size(&events);
    if (n > WEBHOOK_EVENTS_MAX) {
        jsonf_fail(&doc, "events", JSONF_TOO_LONG, "more than %d events", WEBHOOK_EVENTS_MAX);
        goto done;
    }
    if (n > 0) {
        out->records = calloc(n, sizeof *out->records);
        if (!out->records) {
            parse_fail(&p, "out of memory");
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (jsonf_item_object(&events, i, &ev) < 0 ||
            event_to_record(&p, &ev, ctx, dest, &out->records[i]) < 0)
            goto done;
        out->n = i + 1;
        /* The record must fit every Kafka limit after it (kafka_limits.h):
         * one that does not would be answered 200 and never published. */
        size_t bytes = out->records[i].len + strlen(out->records[i].key);
        if (bytes > KAFKA_RECORD_MAX_BYTES) {
            parse_fail(&p,
                       "events[%zu]: packs to a record of %zu bytes; the largest event ingest "
                       "accepts packs to %d bytes",
                       i, bytes, KAFKA_RECORD_MAX_BYTES);
            too_large = true;
            goto done;
        }
    }
    copy_bounded(out->destination, sizeof out->destination, dest);
    rc = 0;
done:
    if (rc < 0 && err && errcap > 0 && reader.n > 0)
        jsonf_error_text(&field_error, err, errcap);
    json_decref(root);
    parse_done(&p);
    if (rc < 0)
        webhook_batch_free(out);
    return rc < 0 && too_large ? WEBHOOK_PARSE_TOO_LARGE : rc;
}

void webhook_batch_free(struct webhook_batch *batch)
{
    if (!batch)
        return;
    for (size_t i = 0; i < batch->n; i++)
        free(batch->records[i].payload);
    free(batch->records);
    memset(batch, 0, sizeof *batch);
}
