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
#define WEBHOOK_PATH_CAP 128
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

typedef int (*event_map_fn)(struct parse *p, json_t *ev, const char *path,
                            Kizuna__V1__WebhookEvent *we);

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

/* Paths only label errors; a truncated one still helps, so the length is
 * not checked (vsnprintf always terminates). */
static void path_format(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void path_format(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
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
 * Each reads obj[key] (obj is at `path`), leaves the proto default when the
 * key is absent or null, and fails with "<path>.<key>: ..." on a wrong type.
 * Strings are borrowed from the jansson tree, which outlives the packing. */

static json_t *field_get(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static int field_string(struct parse *p, json_t *obj, const char *path, const char *key, size_t max,
                        char **out)
{
    *out = (char *)protobuf_c_empty_string;
    json_t *v = field_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return parse_fail(p, "%s.%s: must be a string", path, key);
    if (json_string_length(v) > max)
        return parse_fail(p, "%s.%s: longer than %zu bytes", path, key, max);
    *out = (char *)json_string_value(v);
    return 0;
}

static int field_text(struct parse *p, json_t *obj, const char *path, const char *key, char **out)
{
    return field_string(p, obj, path, key, WEBHOOK_STRING_MAX, out);
}

static int field_int64(struct parse *p, json_t *obj, const char *path, const char *key,
                       int64_t *out)
{
    json_t *v = field_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return parse_fail(p, "%s.%s: must be an integer", path, key);
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int field_int32(struct parse *p, json_t *obj, const char *path, const char *key,
                       int32_t *out)
{
    int64_t v = 0;
    if (field_int64(p, obj, path, key, &v) < 0)
        return -1;
    if (v < INT32_MIN || v > INT32_MAX)
        return parse_fail(p, "%s.%s: out of range", path, key);
    *out = (int32_t)v;
    return 0;
}

static int field_double(struct parse *p, json_t *obj, const char *path, const char *key,
                        double *out)
{
    json_t *v = field_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_number(v))
        return parse_fail(p, "%s.%s: must be a number", path, key);
    *out = json_number_value(v);
    return 0;
}

static int field_bool(struct parse *p, json_t *obj, const char *path, const char *key,
                      protobuf_c_boolean *out)
{
    json_t *v = field_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return parse_fail(p, "%s.%s: must be a boolean", path, key);
    *out = json_is_true(v);
    return 0;
}

/* *out = obj[key] if it is an object, NULL if absent; sub_path gets its path. */
static int field_object(struct parse *p, json_t *obj, const char *path, const char *key,
                        json_t **out, char *sub_path, size_t sub_cap)
{
    *out = NULL;
    path_format(sub_path, sub_cap, "%s.%s", path, key);
    json_t *v = field_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_object(v))
        return parse_fail(p, "%s: must be an object", sub_path);
    *out = v;
    return 0;
}

static int field_array(struct parse *p, json_t *obj, const char *path, const char *key,
                       json_t **out)
{
    *out = NULL;
    json_t *v = field_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_array(v))
        return parse_fail(p, "%s.%s: must be an array", path, key);
    if (json_array_size(v) > WEBHOOK_ARRAY_MAX)
        return parse_fail(p, "%s.%s: more than %d items", path, key, WEBHOOK_ARRAY_MAX);
    *out = v;
    return 0;
}

/* obj[key] as an array of strings (absent: none). */
static int field_strings(struct parse *p, json_t *obj, const char *path, const char *key,
                         size_t *n_out, char ***out)
{
    json_t *arr;
    *n_out = 0;
    *out = NULL;
    if (field_array(p, obj, path, key, &arr) < 0)
        return -1;
    size_t n = json_array_size(arr);
    if (n == 0)
        return 0;
    char **strs = parse_alloc(p, n * sizeof *strs);
    if (!strs)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_string(v))
            return parse_fail(p, "%s.%s[%zu]: must be a string", path, key, i);
        if (json_string_length(v) > WEBHOOK_STRING_MAX)
            return parse_fail(p, "%s.%s[%zu]: longer than %d bytes", path, key, i,
                              WEBHOOK_STRING_MAX);
        strs[i] = (char *)json_string_value(v);
    }
    *n_out = n;
    *out = strs;
    return 0;
}

/* Maps a string enum: names[i] becomes values[i]; anything else (a value
 * LINE added later) becomes 0, the UNSPECIFIED member. FIELD_ENUM writes the
 * proto enum through an int pointer: protobuf-c forces its enums to int size
 * and they hold no negative values, so int and the enum alias safely. */
static int field_enum(struct parse *p, json_t *obj, const char *path, const char *key,
                      const char *const *names, const int *values, size_t n, int *out)
{
    char *s;
    *out = 0;
    if (field_string(p, obj, path, key, WEBHOOK_STRING_MAX, &s) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = values[i];
            break;
        }
    }
    return 0;
}

#define FIELD_ENUM(p, obj, path, key, names, values, out)                                        \
    field_enum((p), (obj), (path), (key), (names), (values), sizeof(values) / sizeof(values[0]), \
               (int *)(out))

/* ---- message content (message and messageEdited) ----------------------- */

static int content_provider_map(struct parse *p, json_t *obj, const char *path,
                                Kizuna__V1__ContentProvider **out)
{
    static const char *const names[] = {"line", "external"};
    static const int values[] = {KIZUNA__V1__CONTENT_PROVIDER_TYPE__CONTENT_PROVIDER_TYPE_LINE,
                                 KIZUNA__V1__CONTENT_PROVIDER_TYPE__CONTENT_PROVIDER_TYPE_EXTERNAL};
    char cp_path[WEBHOOK_PATH_CAP];
    json_t *cp;
    *out = NULL;
    if (field_object(p, obj, path, "contentProvider", &cp, cp_path, sizeof cp_path) < 0)
        return -1;
    if (!cp)
        return 0;
    Kizuna__V1__ContentProvider *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__content_provider__init(pb);
    if (FIELD_ENUM(p, cp, cp_path, "type", names, values, &pb->type) < 0 ||
        field_text(p, cp, cp_path, "originalContentUrl", &pb->original_content_url) < 0 ||
        field_text(p, cp, cp_path, "previewImageUrl", &pb->preview_image_url) < 0)
        return -1;
    *out = pb;
    return 0;
}

static int emojis_map(struct parse *p, json_t *msg, const char *path,
                      Kizuna__V1__TextMessageContent *text)
{
    json_t *arr;
    if (field_array(p, msg, path, "emojis", &arr) < 0)
        return -1;
    size_t n = json_array_size(arr);
    if (n == 0)
        return 0;
    text->emojis = parse_alloc(p, n * sizeof *text->emojis);
    if (!text->emojis)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char e_path[WEBHOOK_PATH_CAP];
        json_t *e = json_array_get(arr, i);
        path_format(e_path, sizeof e_path, "%s.emojis[%zu]", path, i);
        if (!json_is_object(e))
            return parse_fail(p, "%s: must be an object", e_path);
        Kizuna__V1__Emoji *pb = parse_alloc(p, sizeof *pb);
        if (!pb)
            return -1;
        kizuna__v1__emoji__init(pb);
        if (field_int32(p, e, e_path, "index", &pb->index) < 0 ||
            field_int32(p, e, e_path, "length", &pb->length) < 0 ||
            field_text(p, e, e_path, "productId", &pb->product_id) < 0 ||
            field_text(p, e, e_path, "emojiId", &pb->emoji_id) < 0)
            return -1;
        text->emojis[text->n_emojis++] = pb;
    }
    return 0;
}

static int mention_map(struct parse *p, json_t *msg, const char *path,
                       Kizuna__V1__TextMessageContent *text)
{
    static const char *const names[] = {"user", "all"};
    static const int values[] = {KIZUNA__V1__MENTIONEE_TYPE__MENTIONEE_TYPE_USER,
                                 KIZUNA__V1__MENTIONEE_TYPE__MENTIONEE_TYPE_ALL};
    char m_path[WEBHOOK_PATH_CAP];
    json_t *mention, *arr;
    if (field_object(p, msg, path, "mention", &mention, m_path, sizeof m_path) < 0)
        return -1;
    if (!mention)
        return 0;
    if (field_array(p, mention, m_path, "mentionees", &arr) < 0)
        return -1;
    Kizuna__V1__Mention *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__mention__init(pb);
    size_t n = json_array_size(arr);
    if (n > 0) {
        pb->mentionees = parse_alloc(p, n * sizeof *pb->mentionees);
        if (!pb->mentionees)
            return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char e_path[WEBHOOK_PATH_CAP];
        json_t *e = json_array_get(arr, i);
        path_format(e_path, sizeof e_path, "%s.mentionees[%zu]", m_path, i);
        if (!json_is_object(e))
            return parse_fail(p, "%s: must be an object", e_path);
        Kizuna__V1__Mentionee *m = parse_alloc(p, sizeof *m);
        if (!m)
            return -1;
        kizuna__v1__mentionee__init(m);
        if (FIELD_ENUM(p, e, e_path, "type", names, values, &m->type) < 0 ||
            field_int32(p, e, e_path, "index", &m->index) < 0 ||
            field_int32(p, e, e_path, "length", &m->length) < 0 ||
            field_text(p, e, e_path, "userId", &m->user_id) < 0 ||
            field_bool(p, e, e_path, "isSelf", &m->is_self) < 0)
            return -1;
        pb->mentionees[pb->n_mentionees++] = m;
    }
    text->mention = pb;
    return 0;
}

static int text_map(struct parse *p, json_t *msg, const char *path, Kizuna__V1__MessageContent *mc)
{
    Kizuna__V1__TextMessageContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__text_message_content__init(pb);
    if (field_text(p, msg, path, "text", &pb->text) < 0 || emojis_map(p, msg, path, pb) < 0 ||
        mention_map(p, msg, path, pb) < 0 ||
        field_text(p, msg, path, "quoteToken", &pb->quote_token) < 0 ||
        field_text(p, msg, path, "quotedMessageId", &pb->quoted_message_id) < 0 ||
        field_text(p, msg, path, "markAsReadToken", &pb->mark_as_read_token) < 0)
        return -1;
    mc->content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_TEXT;
    mc->text = pb;
    return 0;
}

static int image_map(struct parse *p, json_t *msg, const char *path, Kizuna__V1__MessageContent *mc)
{
    char set_path[WEBHOOK_PATH_CAP];
    json_t *set;
    Kizuna__V1__ImageMessageContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__image_message_content__init(pb);
    if (content_provider_map(p, msg, path, &pb->content_provider) < 0 ||
        field_object(p, msg, path, "imageSet", &set, set_path, sizeof set_path) < 0 ||
        field_text(p, msg, path, "quoteToken", &pb->quote_token) < 0 ||
        field_text(p, msg, path, "markAsReadToken", &pb->mark_as_read_token) < 0)
        return -1;
    if (set) {
        Kizuna__V1__ImageSet *is = parse_alloc(p, sizeof *is);
        if (!is)
            return -1;
        kizuna__v1__image_set__init(is);
        if (field_text(p, set, set_path, "id", &is->id) < 0 ||
            field_int32(p, set, set_path, "index", &is->index) < 0 ||
            field_int32(p, set, set_path, "total", &is->total) < 0)
            return -1;
        pb->image_set = is;
    }
    mc->content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_IMAGE;
    mc->image = pb;
    return 0;
}

static int video_map(struct parse *p, json_t *msg, const char *path, Kizuna__V1__MessageContent *mc)
{
    Kizuna__V1__VideoMessageContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__video_message_content__init(pb);
    if (field_int64(p, msg, path, "duration", &pb->duration) < 0 ||
        content_provider_map(p, msg, path, &pb->content_provider) < 0 ||
        field_text(p, msg, path, "quoteToken", &pb->quote_token) < 0 ||
        field_text(p, msg, path, "markAsReadToken", &pb->mark_as_read_token) < 0)
        return -1;
    mc->content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_VIDEO;
    mc->video = pb;
    return 0;
}

static int audio_map(struct parse *p, json_t *msg, const char *path, Kizuna__V1__MessageContent *mc)
{
    Kizuna__V1__AudioMessageContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__audio_message_content__init(pb);
    if (field_int64(p, msg, path, "duration", &pb->duration) < 0 ||
        content_provider_map(p, msg, path, &pb->content_provider) < 0 ||
        field_text(p, msg, path, "markAsReadToken", &pb->mark_as_read_token) < 0)
        return -1;
    mc->content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_AUDIO;
    mc->audio = pb;
    return 0;
}

static int file_map(struct parse *p, json_t *msg, const char *path, Kizuna__V1__MessageContent *mc)
{
    Kizuna__V1__FileMessageContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__file_message_content__init(pb);
    if (field_text(p, msg, path, "fileName", &pb->file_name) < 0 ||
        field_int64(p, msg, path, "fileSize", &pb->file_size) < 0 ||
        field_text(p, msg, path, "markAsReadToken", &pb->mark_as_read_token) < 0)
        return -1;
    mc->content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_FILE;
    mc->file = pb;
    return 0;
}

static int location_map(struct parse *p, json_t *msg, const char *path,
                        Kizuna__V1__MessageContent *mc)
{
    Kizuna__V1__LocationMessageContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__location_message_content__init(pb);
    if (field_text(p, msg, path, "title", &pb->title) < 0 ||
        field_text(p, msg, path, "address", &pb->address) < 0 ||
        field_double(p, msg, path, "latitude", &pb->latitude) < 0 ||
        field_double(p, msg, path, "longitude", &pb->longitude) < 0 ||
        field_text(p, msg, path, "markAsReadToken", &pb->mark_as_read_token) < 0)
        return -1;
    mc->content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_LOCATION;
    mc->location = pb;
    return 0;
}

static int sticker_map(struct parse *p, json_t *msg, const char *path,
                       Kizuna__V1__MessageContent *mc)
{
    Kizuna__V1__StickerMessageContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__sticker_message_content__init(pb);
    if (field_text(p, msg, path, "packageId", &pb->package_id) < 0 ||
        field_text(p, msg, path, "stickerId", &pb->sticker_id) < 0 ||
        field_text(p, msg, path, "stickerResourceType", &pb->sticker_resource_type) < 0 ||
        field_strings(p, msg, path, "keywords", &pb->n_keywords, &pb->keywords) < 0 ||
        field_text(p, msg, path, "text", &pb->text) < 0 ||
        field_text(p, msg, path, "quoteToken", &pb->quote_token) < 0 ||
        field_text(p, msg, path, "quotedMessageId", &pb->quoted_message_id) < 0 ||
        field_text(p, msg, path, "markAsReadToken", &pb->mark_as_read_token) < 0)
        return -1;
    mc->content_case = KIZUNA__V1__MESSAGE_CONTENT__CONTENT_STICKER;
    mc->sticker = pb;
    return 0;
}

static const struct {
    const char *type;
    int (*map)(struct parse *p, json_t *msg, const char *path, Kizuna__V1__MessageContent *mc);
} message_maps[] = {
    {"text", text_map}, {"image", image_map},       {"video", video_map},     {"audio", audio_map},
    {"file", file_map}, {"location", location_map}, {"sticker", sticker_map},
};

/* ev.message -> MessageContent. An absent message still yields an (empty)
 * MessageContent, so the event's oneof always names its type. */
static int message_content_map(struct parse *p, json_t *ev, const char *path,
                               Kizuna__V1__MessageContent **out)
{
    char m_path[WEBHOOK_PATH_CAP];
    json_t *msg;
    if (field_object(p, ev, path, "message", &msg, m_path, sizeof m_path) < 0)
        return -1;
    Kizuna__V1__MessageContent *mc = parse_alloc(p, sizeof *mc);
    if (!mc)
        return -1;
    kizuna__v1__message_content__init(mc);
    *out = mc;
    if (!msg)
        return 0;
    if (field_text(p, msg, m_path, "id", &mc->id) < 0 ||
        field_text(p, msg, m_path, "type", &mc->type) < 0)
        return -1;
    for (size_t i = 0; i < sizeof message_maps / sizeof message_maps[0]; i++) {
        if (strcmp(mc->type, message_maps[i].type) == 0)
            return message_maps[i].map(p, msg, m_path, mc);
    }
    return 0; /* a message type LINE added later: content stays unset */
}

/* ---- event types ------------------------------------------------------- */

static int message_map(struct parse *p, json_t *ev, const char *path, Kizuna__V1__WebhookEvent *we)
{
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MESSAGE;
    return message_content_map(p, ev, path, &we->message);
}

static int message_edited_map(struct parse *p, json_t *ev, const char *path,
                              Kizuna__V1__WebhookEvent *we)
{
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MESSAGE_EDITED;
    return message_content_map(p, ev, path, &we->message_edited);
}

static int follow_map(struct parse *p, json_t *ev, const char *path, Kizuna__V1__WebhookEvent *we)
{
    char f_path[WEBHOOK_PATH_CAP];
    json_t *f;
    Kizuna__V1__FollowDetail *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__follow_detail__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_FOLLOW;
    we->follow = pb;
    if (field_object(p, ev, path, "follow", &f, f_path, sizeof f_path) < 0)
        return -1;
    return f ? field_bool(p, f, f_path, "isUnblocked", &pb->is_unblocked) : 0;
}

/* Event types with nothing beyond the common fields. Each gets its own
 * empty detail message, so the oneof still says which type it was. */
static int unfollow_map(struct parse *p, json_t *ev, const char *path, Kizuna__V1__WebhookEvent *we)
{
    (void)ev, (void)path;
    we->unfollow = parse_alloc(p, sizeof *we->unfollow);
    if (!we->unfollow)
        return -1;
    kizuna__v1__unfollow_detail__init(we->unfollow);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_UNFOLLOW;
    return 0;
}

static int join_map(struct parse *p, json_t *ev, const char *path, Kizuna__V1__WebhookEvent *we)
{
    (void)ev, (void)path;
    we->join = parse_alloc(p, sizeof *we->join);
    if (!we->join)
        return -1;
    kizuna__v1__join_detail__init(we->join);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_JOIN;
    return 0;
}

static int leave_map(struct parse *p, json_t *ev, const char *path, Kizuna__V1__WebhookEvent *we)
{
    (void)ev, (void)path;
    we->leave = parse_alloc(p, sizeof *we->leave);
    if (!we->leave)
        return -1;
    kizuna__v1__leave_detail__init(we->leave);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_LEAVE;
    return 0;
}

static int deactivated_map(struct parse *p, json_t *ev, const char *path,
                           Kizuna__V1__WebhookEvent *we)
{
    (void)ev, (void)path;
    we->deactivated = parse_alloc(p, sizeof *we->deactivated);
    if (!we->deactivated)
        return -1;
    kizuna__v1__deactivated_detail__init(we->deactivated);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_DEACTIVATED;
    return 0;
}

static int bot_suspended_map(struct parse *p, json_t *ev, const char *path,
                             Kizuna__V1__WebhookEvent *we)
{
    (void)ev, (void)path;
    we->bot_suspended = parse_alloc(p, sizeof *we->bot_suspended);
    if (!we->bot_suspended)
        return -1;
    kizuna__v1__bot_suspended_detail__init(we->bot_suspended);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_BOT_SUSPENDED;
    return 0;
}

static int bot_resumed_map(struct parse *p, json_t *ev, const char *path,
                           Kizuna__V1__WebhookEvent *we)
{
    (void)ev, (void)path;
    we->bot_resumed = parse_alloc(p, sizeof *we->bot_resumed);
    if (!we->bot_resumed)
        return -1;
    kizuna__v1__bot_resumed_detail__init(we->bot_resumed);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_BOT_RESUMED;
    return 0;
}

/* ev.<key>.members[].userId, for memberJoined ("joined") and memberLeft
 * ("left"). user_ids[i] is members[i]'s id ("" if LINE left it out). */
static int members_map(struct parse *p, json_t *ev, const char *path, const char *key,
                       size_t *n_out, char ***out)
{
    char g_path[WEBHOOK_PATH_CAP];
    json_t *group, *arr;
    *n_out = 0;
    *out = NULL;
    if (field_object(p, ev, path, key, &group, g_path, sizeof g_path) < 0)
        return -1;
    if (!group)
        return 0;
    if (field_array(p, group, g_path, "members", &arr) < 0)
        return -1;
    size_t n = json_array_size(arr);
    if (n == 0)
        return 0;
    char **ids = parse_alloc(p, n * sizeof *ids);
    if (!ids)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char m_path[WEBHOOK_PATH_CAP];
        json_t *m = json_array_get(arr, i);
        path_format(m_path, sizeof m_path, "%s.members[%zu]", g_path, i);
        if (!json_is_object(m))
            return parse_fail(p, "%s: must be an object", m_path);
        if (field_text(p, m, m_path, "userId", &ids[i]) < 0)
            return -1;
    }
    *n_out = n;
    *out = ids;
    return 0;
}

static int member_joined_map(struct parse *p, json_t *ev, const char *path,
                             Kizuna__V1__WebhookEvent *we)
{
    Kizuna__V1__JoinedMembers *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__joined_members__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MEMBER_JOINED;
    we->member_joined = pb;
    return members_map(p, ev, path, "joined", &pb->n_user_ids, &pb->user_ids);
}

static int member_left_map(struct parse *p, json_t *ev, const char *path,
                           Kizuna__V1__WebhookEvent *we)
{
    Kizuna__V1__LeftMembers *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__left_members__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MEMBER_LEFT;
    we->member_left = pb;
    return members_map(p, ev, path, "left", &pb->n_user_ids, &pb->user_ids);
}

static int postback_map(struct parse *p, json_t *ev, const char *path, Kizuna__V1__WebhookEvent *we)
{
    char pb_path[WEBHOOK_PATH_CAP], params_path[WEBHOOK_PATH_CAP];
    json_t *postback, *params = NULL;
    Kizuna__V1__PostbackContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__postback_content__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_POSTBACK;
    we->postback = pb;
    if (field_object(p, ev, path, "postback", &postback, pb_path, sizeof pb_path) < 0)
        return -1;
    if (!postback)
        return 0;
    if (field_text(p, postback, pb_path, "data", &pb->data) < 0 ||
        field_object(p, postback, pb_path, "params", &params, params_path, sizeof params_path) < 0)
        return -1;
    if (!params)
        return 0;
    if (field_text(p, params, params_path, "date", &pb->date) < 0 ||
        field_text(p, params, params_path, "time", &pb->time) < 0 ||
        field_text(p, params, params_path, "datetime", &pb->datetime) < 0 ||
        field_text(p, params, params_path, "newRichMenuAliasId", &pb->new_rich_menu_alias_id) < 0 ||
        field_text(p, params, params_path, "status", &pb->status) < 0)
        return -1;
    return 0;
}

static int beacon_map(struct parse *p, json_t *ev, const char *path, Kizuna__V1__WebhookEvent *we)
{
    static const char *const names[] = {"enter", "banner", "stay"};
    static const int values[] = {KIZUNA__V1__BEACON_TYPE__BEACON_TYPE_ENTER,
                                 KIZUNA__V1__BEACON_TYPE__BEACON_TYPE_BANNER,
                                 KIZUNA__V1__BEACON_TYPE__BEACON_TYPE_STAY};
    char b_path[WEBHOOK_PATH_CAP];
    json_t *b;
    Kizuna__V1__BeaconContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__beacon_content__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_BEACON;
    we->beacon = pb;
    if (field_object(p, ev, path, "beacon", &b, b_path, sizeof b_path) < 0)
        return -1;
    if (!b)
        return 0;
    if (field_text(p, b, b_path, "hwid", &pb->hwid) < 0 ||
        FIELD_ENUM(p, b, b_path, "type", names, values, &pb->type) < 0 ||
        field_text(p, b, b_path, "dm", &pb->dm) < 0)
        return -1;
    return 0;
}

static int account_link_map(struct parse *p, json_t *ev, const char *path,
                            Kizuna__V1__WebhookEvent *we)
{
    static const char *const names[] = {"ok", "failed"};
    static const int values[] = {KIZUNA__V1__LINK_RESULT__LINK_RESULT_OK,
                                 KIZUNA__V1__LINK_RESULT__LINK_RESULT_FAILED};
    char l_path[WEBHOOK_PATH_CAP];
    json_t *link;
    Kizuna__V1__LinkContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__link_content__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_ACCOUNT_LINK;
    we->account_link = pb;
    if (field_object(p, ev, path, "link", &link, l_path, sizeof l_path) < 0)
        return -1;
    if (!link)
        return 0;
    if (FIELD_ENUM(p, link, l_path, "result", names, values, &pb->result) < 0 ||
        field_text(p, link, l_path, "nonce", &pb->nonce) < 0)
        return -1;
    return 0;
}

static int video_play_complete_map(struct parse *p, json_t *ev, const char *path,
                                   Kizuna__V1__WebhookEvent *we)
{
    char v_path[WEBHOOK_PATH_CAP];
    json_t *v;
    Kizuna__V1__VideoPlayComplete *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__video_play_complete__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_VIDEO_PLAY_COMPLETE;
    we->video_play_complete = pb;
    if (field_object(p, ev, path, "videoPlayComplete", &v, v_path, sizeof v_path) < 0)
        return -1;
    return v ? field_text(p, v, v_path, "trackingId", &pb->tracking_id) : 0;
}

static int unsend_map(struct parse *p, json_t *ev, const char *path, Kizuna__V1__WebhookEvent *we)
{
    char u_path[WEBHOOK_PATH_CAP];
    json_t *u;
    Kizuna__V1__UnsendDetail *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__unsend_detail__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_UNSEND;
    we->unsend = pb;
    if (field_object(p, ev, path, "unsend", &u, u_path, sizeof u_path) < 0)
        return -1;
    return u ? field_text(p, u, u_path, "messageId", &pb->message_id) : 0;
}

static int membership_map(struct parse *p, json_t *ev, const char *path,
                          Kizuna__V1__WebhookEvent *we)
{
    static const char *const names[] = {"joined", "left", "renewed"};
    static const int values[] = {KIZUNA__V1__MEMBERSHIP_TYPE__MEMBERSHIP_TYPE_JOINED,
                                 KIZUNA__V1__MEMBERSHIP_TYPE__MEMBERSHIP_TYPE_LEFT,
                                 KIZUNA__V1__MEMBERSHIP_TYPE__MEMBERSHIP_TYPE_RENEWED};
    char m_path[WEBHOOK_PATH_CAP];
    json_t *m;
    Kizuna__V1__MembershipContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__membership_content__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MEMBERSHIP;
    we->membership = pb;
    if (field_object(p, ev, path, "membership", &m, m_path, sizeof m_path) < 0)
        return -1;
    if (!m)
        return 0;
    if (FIELD_ENUM(p, m, m_path, "type", names, values, &pb->type) < 0 ||
        field_int64(p, m, m_path, "membershipId", &pb->membership_id) < 0)
        return -1;
    return 0;
}

static int module_map(struct parse *p, json_t *ev, const char *path, Kizuna__V1__WebhookEvent *we)
{
    static const char *const names[] = {"attached", "detached"};
    static const int values[] = {KIZUNA__V1__MODULE_TYPE__MODULE_TYPE_ATTACHED,
                                 KIZUNA__V1__MODULE_TYPE__MODULE_TYPE_DETACHED};
    char m_path[WEBHOOK_PATH_CAP];
    json_t *m;
    Kizuna__V1__ModuleContent *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__module_content__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_MODULE;
    we->module = pb;
    if (field_object(p, ev, path, "module", &m, m_path, sizeof m_path) < 0)
        return -1;
    if (!m)
        return 0;
    if (FIELD_ENUM(p, m, m_path, "type", names, values, &pb->type) < 0 ||
        field_text(p, m, m_path, "botId", &pb->bot_id) < 0 ||
        field_strings(p, m, m_path, "scopes", &pb->n_scopes, &pb->scopes) < 0 ||
        field_text(p, m, m_path, "reason", &pb->reason) < 0)
        return -1;
    return 0;
}

static int activated_map(struct parse *p, json_t *ev, const char *path,
                         Kizuna__V1__WebhookEvent *we)
{
    char c_path[WEBHOOK_PATH_CAP];
    json_t *c;
    Kizuna__V1__ChatControl *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__chat_control__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_ACTIVATED;
    we->activated = pb;
    if (field_object(p, ev, path, "chatControl", &c, c_path, sizeof c_path) < 0)
        return -1;
    return c ? field_int64(p, c, c_path, "expireAt", &pb->expire_at) : 0;
}

static int delivery_map(struct parse *p, json_t *ev, const char *path, Kizuna__V1__WebhookEvent *we)
{
    char d_path[WEBHOOK_PATH_CAP];
    json_t *d;
    Kizuna__V1__PnpDelivery *pb = parse_alloc(p, sizeof *pb);
    if (!pb)
        return -1;
    kizuna__v1__pnp_delivery__init(pb);
    we->event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_DELIVERY;
    we->delivery = pb;
    if (field_object(p, ev, path, "delivery", &d, d_path, sizeof d_path) < 0)
        return -1;
    return d ? field_text(p, d, d_path, "data", &pb->data) : 0;
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

static int source_map(struct parse *p, json_t *ev, const char *path, Kizuna__V1__Source *src,
                      bool *present)
{
    static const char *const names[] = {"user", "group", "room"};
    static const int values[] = {KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_USER,
                                 KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_GROUP,
                                 KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_ROOM};
    char s_path[WEBHOOK_PATH_CAP];
    json_t *s;
    *present = false;
    if (field_object(p, ev, path, "source", &s, s_path, sizeof s_path) < 0)
        return -1;
    if (!s)
        return 0;
    if (FIELD_ENUM(p, s, s_path, "type", names, values, &src->type) < 0 ||
        field_string(p, s, s_path, "userId", WEBHOOK_ID_MAX, &src->user_id) < 0 ||
        field_string(p, s, s_path, "groupId", WEBHOOK_ID_MAX, &src->group_id) < 0 ||
        field_string(p, s, s_path, "roomId", WEBHOOK_ID_MAX, &src->room_id) < 0)
        return -1;
    *present = true;
    return 0;
}

static int common_map(struct parse *p, json_t *ev, const char *path, Kizuna__V1__WebhookEvent *we)
{
    static const char *const names[] = {"active", "standby"};
    static const int values[] = {KIZUNA__V1__EVENT_MODE__EVENT_MODE_ACTIVE,
                                 KIZUNA__V1__EVENT_MODE__EVENT_MODE_STANDBY};
    char dc_path[WEBHOOK_PATH_CAP];
    json_t *dc;
    if (field_string(p, ev, path, "webhookEventId", RECORD_EVENT_ID_MAX, &we->webhook_event_id) < 0)
        return -1;
    if (field_object(p, ev, path, "deliveryContext", &dc, dc_path, sizeof dc_path) < 0)
        return -1;
    if (dc && field_bool(p, dc, dc_path, "isRedelivery", &we->is_redelivery) < 0)
        return -1;
    if (field_int64(p, ev, path, "timestamp", &we->timestamp) < 0 ||
        FIELD_ENUM(p, ev, path, "mode", names, values, &we->mode) < 0 ||
        field_text(p, ev, path, "replyToken", &we->reply_token) < 0)
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
static int event_to_record(struct parse *p, json_t *ev, const char *path,
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

    if (!json_is_object(ev)) {
        parse_fail(p, "%s: must be an object", path);
        goto done;
    }
    json_t *type = field_get(ev, "type");
    if (!type) {
        parse_fail(p, "%s.type: missing", path);
        goto done;
    }
    if (!json_is_string(type)) {
        parse_fail(p, "%s.type: must be a string", path);
        goto done;
    }
    if (json_string_length(type) == 0 || json_string_length(type) > RECORD_TYPE_MAX) {
        parse_fail(p, "%s.type: must be 1 to %zu bytes", path, RECORD_TYPE_MAX);
        goto done;
    }
    we.type = (char *)json_string_value(type);
    we.destination = (char *)destination;
    we.received_at = ctx->received_at_ms;
    if (common_map(p, ev, path, &we) < 0 || source_map(p, ev, path, &src, &has_source) < 0)
        goto done;
    if (has_source)
        we.source = &src;

    /* A type not in the table is kept whole; the caller counts it in a metric. */
    event_map_fn map = NULL;
    for (size_t i = 0; i < sizeof event_maps / sizeof event_maps[0] && !map; i++) {
        if (strcmp(we.type, event_maps[i].type) == 0)
            map = event_maps[i].map;
    }
    if (map ? map(p, ev, path, &we) < 0 : unknown_map(p, &we) < 0)
        goto done;

    /* Compact, UTF-8 as is (no \u escapes), keys in LINE's order. */
    raw = json_dumps(ev, JSON_COMPACT);
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
    json_t *root = NULL;
    json_error_t jerr;
    int rc = -1;

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

    json_t *dest = field_get(root, "destination");
    if (!dest) {
        parse_fail(&p, "destination: missing");
        goto done;
    }
    if (!json_is_string(dest)) {
        parse_fail(&p, "destination: must be a string");
        goto done;
    }
    if (json_string_length(dest) >= sizeof out->destination) {
        parse_fail(&p, "destination: longer than %zu bytes", sizeof out->destination - 1);
        goto done;
    }
    json_t *events = field_get(root, "events");
    if (!events) {
        parse_fail(&p, "events: missing");
        goto done;
    }
    if (!json_is_array(events)) {
        parse_fail(&p, "events: must be an array");
        goto done;
    }
    size_t n = json_array_size(events);
    if (n > WEBHOOK_EVENTS_MAX) {
        parse_fail(&p, "events: more than %d events", WEBHOOK_EVENTS_MAX);
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
        char path[32];
        path_format(path, sizeof path, "events[%zu]", i);
        if (event_to_record(&p, json_array_get(events, i), path, ctx, json_string_value(dest),
                            &out->records[i]) < 0)
            goto done;
        out->n = i + 1;
    }
    copy_bounded(out->destination, sizeof out->destination, json_string_value(dest));
    rc = 0;
done:
    json_decref(root);
    parse_done(&p);
    if (rc < 0)
        webhook_batch_free(out);
    return rc;
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
