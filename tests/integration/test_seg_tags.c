/* Tags, fields, templates and the 1:1 talk through segmentation's admin
 * API on the real stack: friends seeded by SQL get tags and typed values,
 * each real change is one event on friend.events (none for a no-op), a
 * wrong value applies nothing, templates refuse bad messages with a path,
 * an operator's message becomes a talk row and a SendRequest on
 * send.requests, a viewer cannot write and another tenant sees nothing. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "kafka.h"
#include "kizuna/v1/friend.pb-c.h"
#include "kizuna/v1/send.pb-c.h"
#include "seg_itest.h"

TestSuite(seg_tags, .timeout = 180, .fini = seg_itest_reap);

static char channel[32];
static char tenant[64];
static char path[512];

/* "/v1/channels/<channel><rest>" */
static const char *at(const char *rest)
{
    snprintf(path, sizeof path, "/v1/channels/%s%s", channel, rest);
    return path;
}

static void setup_channel(const char *tag)
{
    seg_itest_start(tag, NULL);
    itest_unique_digits(channel, sizeof channel, '3');
    itest_unique_name(tenant, sizeof tenant, "t-tags");
    seg_itest_channel(channel, tenant, "Asia/Tokyo");
}

static void friend_seed(const char *user_id, bool blocked)
{
    const char *params[] = {channel, user_id, blocked ? "true" : "false"};
    itest_exec_ok(seg_itest_db(),
                  "INSERT INTO friends (channel_id, user_id, display_name, blocked, added_at) "
                  "VALUES ($1, $2, 'Hanako', $3::boolean, now())",
                  3, params);
}

/* Calls as the channel's tenant; expects status; returns the answer's JSON
 * member (borrowed copy: the caller decrefs) or NULL. */
static json_t *call(const char *role, const char *method, const char *rest, const char *body,
                    long want)
{
    struct itest_http res = {0};
    long got = seg_itest_call(tenant, role, method, at(rest), body, &res);
    cr_expect_eq(got, want, "%s %s %s: %ld, want %ld: %s", method, rest, body ? body : "", got,
                 want, res.body ? res.body : "");
    json_t *j = res.json ? json_incref(res.json) : NULL;
    itest_http_free(&res);
    return j;
}

/* Expects an error answer with code and field (NULL: no field). */
static void call_error(const char *role, const char *method, const char *rest, const char *body,
                       long want, const char *code, const char *field)
{
    json_t *j = call(role, method, rest, body, want);
    json_t *e = json_object_get(j, "error");
    cr_expect_str_eq(json_string_value(json_object_get(e, "code")) ?: "", code, "%s %s code",
                     method, rest);
    if (field)
        cr_expect_str_eq(json_string_value(json_object_get(e, "field")) ?: "(none)", field,
                         "%s %s field", method, rest);
    json_decref(j);
}

/* --- friend.events ------------------------------------------------------------------- */

struct seen {
    char key[96];
    char lines[16][128]; /* "tag_added vip", "field_changed score 10 <- none" */
    int n;
    int want;
};

static void value_text(const Kizuna__V1__FieldValue *v, char *out, size_t cap)
{
    if (!v)
        snprintf(out, cap, "none");
    else if (v->value_case == KIZUNA__V1__FIELD_VALUE__VALUE_NUMBER_VALUE)
        snprintf(out, cap, "%g", v->number_value);
    else if (v->value_case == KIZUNA__V1__FIELD_VALUE__VALUE_TEXT_VALUE)
        snprintf(out, cap, "%s", v->text_value);
    else if (v->value_case == KIZUNA__V1__FIELD_VALUE__VALUE_DATE_VALUE)
        snprintf(out, cap, "%s", v->date_value);
    else if (v->value_case == KIZUNA__V1__FIELD_VALUE__VALUE_DATETIME_VALUE)
        snprintf(out, cap, "%lld", (long long)v->datetime_value);
    else
        snprintf(out, cap, "?");
}

static enum kafka_handled seen_handle(void *ctx, const struct kafka_message *msg)
{
    struct seen *s = ctx;
    if (msg->keylen != strlen(s->key) || memcmp(msg->key, s->key, msg->keylen) != 0 || s->n >= 16)
        return KAFKA_DONE;
    Kizuna__V1__FriendEvent *ev = kizuna__v1__friend_event__unpack(NULL, msg->len, msg->value);
    if (!ev)
        return KAFKA_DONE;
    char *line = s->lines[s->n++];
    char a[48], b[48];
    switch (ev->event_case) {
    case KIZUNA__V1__FRIEND_EVENT__EVENT_TAG_ADDED:
        snprintf(line, 128, "tag_added %s", ev->tag_added->tag_name);
        break;
    case KIZUNA__V1__FRIEND_EVENT__EVENT_TAG_REMOVED:
        snprintf(line, 128, "tag_removed %s", ev->tag_removed->tag_name);
        break;
    case KIZUNA__V1__FRIEND_EVENT__EVENT_FIELD_CHANGED:
        value_text(ev->field_changed->value, a, sizeof a);
        value_text(ev->field_changed->previous, b, sizeof b);
        snprintf(line, 128, "field_changed %s %s <- %s", ev->field_changed->field_name, a, b);
        break;
    default:
        snprintf(line, 128, "other %d", (int)ev->event_case);
    }
    kizuna__v1__friend_event__free_unpacked(ev, NULL);
    return KAFKA_DONE;
}

static bool seen_done(void *ctx)
{
    struct seen *s = ctx;
    return s->n >= s->want;
}

/* --- tests ----------------------------------------------------------------------------- */

Test(seg_tags, tags_and_fields_change_friends_with_one_event_per_real_change)
{
    setup_channel("tags");
    friend_seed("U1", false);

    json_decref(call("operator", "POST", "/tags", "{\"name\":\"vip\",\"folder\":\"rank\"}", 201));
    json_decref(call("operator", "POST", "/tags", "{\"name\":\"new\"}", 201));
    call_error("operator", "POST", "/tags", "{\"name\":\"vip\"}", 409, "conflict", "name");
    call_error("operator", "POST", "/tags", "{\"name\":\"a/b\"}", 400, "invalid_value", "name");
    call_error("operator", "POST", "/tags", "{\"folder\":\"x\"}", 400, "missing_field", "name");
    json_t *list = call("viewer", "GET", "/tags?folder=rank", NULL, 200);
    cr_expect_eq(json_array_size(json_object_get(list, "tags")), 1, "one tag in folder rank");
    json_decref(list);
    list = call("viewer", "GET", "/tags?limit=1", NULL, 200);
    cr_expect(json_is_string(json_object_get(list, "next_cursor")), "a next page");
    json_decref(list);

    json_t *j = call("operator", "POST", "/friends/U1/tags", "{\"tag\":\"vip\"}", 200);
    cr_expect(json_is_true(json_object_get(j, "added")));
    json_decref(j);
    j = call("operator", "POST", "/friends/U1/tags", "{\"tag\":\"vip\"}", 200);
    cr_expect(json_is_false(json_object_get(j, "added")), "a present tag changes nothing");
    json_decref(j);
    call_error("operator", "POST", "/friends/U404/tags", "{\"tag\":\"vip\"}", 404, "unknown_friend",
               NULL);
    call_error("operator", "POST", "/friends/U1/tags", "{\"tag\":\"nope\"}", 400, "unknown_tag",
               "tag");
    j = call("viewer", "GET", "/tags/vip", NULL, 200);
    cr_expect_eq(json_integer_value(json_object_get(j, "friends")), 1);
    json_decref(j);
    json_decref(call("operator", "DELETE", "/friends/U1/tags/vip", NULL, 204));
    call_error("operator", "DELETE", "/friends/U1/tags/nope", NULL, 404, "unknown_tag", NULL);
    json_decref(call("operator", "PATCH", "/tags/new", "{\"folder\":\"misc\"}", 200));
    json_decref(call("operator", "DELETE", "/tags/new", NULL, 204));
    call_error("viewer", "GET", "/tags/new", NULL, 404, "unknown_tag", NULL);

    json_decref(
        call("operator", "POST", "/fields", "{\"name\":\"score\",\"type\":\"number\"}", 201));
    json_decref(call("operator", "POST", "/fields",
                     "{\"name\":\"rank\",\"type\":\"choice\",\"choices\":[\"gold\",\"silver\"]}",
                     201));
    call_error("operator", "POST", "/fields", "{\"name\":\"c\",\"type\":\"choice\"}", 400,
               "missing_field", "choices");
    call_error("operator", "POST", "/fields",
               "{\"name\":\"t\",\"type\":\"text\",\"choices\":[\"a\"]}", 400, "invalid_value",
               "choices");
    call_error("operator", "POST", "/fields", "{\"name\":\"b\",\"type\":\"bool\"}", 400,
               "invalid_value", "type");

    j = call("operator", "PATCH", "/friends/U1/fields", "{\"score\":10,\"rank\":\"gold\"}", 200);
    json_t *fields = json_object_get(j, "fields");
    cr_expect_eq(json_integer_value(json_object_get(fields, "score")), 10);
    cr_expect_str_eq(json_string_value(json_object_get(fields, "rank")) ?: "", "gold");
    json_decref(j);
    j = call("operator", "PATCH", "/friends/U1/fields", "{\"score\":{\"add\":5}}", 200);
    cr_expect_eq(json_number_value(json_object_get(json_object_get(j, "fields"), "score")), 15,
                 "scoring adds");
    json_decref(j);
    call_error("operator", "PATCH", "/friends/U1/fields", "{\"rank\":\"silver\",\"score\":\"abc\"}",
               400, "invalid_value", "score");
    call_error("operator", "PATCH", "/friends/U1/fields", "{\"rank\":{\"add\":1}}", 400,
               "invalid_value", "rank");
    call_error("operator", "PATCH", "/friends/U1/fields", "{\"nope\":1}", 400, "unknown_field",
               "nope");
    j = call("viewer", "GET", "/fields/rank", NULL, 200);
    cr_expect_eq(json_array_size(json_object_get(j, "choices")), 2);
    json_decref(j);
    j = call("operator", "PATCH", "/friends/U1/fields", "{\"score\":15}", 200);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "fields"), "rank")) ?: "",
                     "gold", "the refused patch applied nothing");
    json_decref(j);
    j = call("operator", "PATCH", "/friends/U1/fields", "{\"rank\":null}", 200);
    cr_expect_null(json_object_get(json_object_get(j, "fields"), "rank"), "null clears");
    json_decref(j);

    static const char *const want[] = {
        "tag_added vip",
        "tag_removed vip",
        "field_changed score 10 <- none",
        "field_changed rank gold <- none",
        "field_changed score 15 <- 10",
        "field_changed rank none <- gold",
    };
    struct seen s = {.want = 6};
    snprintf(s.key, sizeof s.key, "%s:U1", channel);
    itest_topic_read("friend.events", seen_handle, seen_done, &s, 30000);
    cr_expect_eq(s.n, 6, "%d events, want 6", s.n);
    for (int i = 0; i < 6 && i < s.n; i++)
        cr_expect_str_eq(s.lines[i], want[i], "event %d", i);
    seg_itest_finish();
}

Test(seg_tags, viewers_read_only_and_other_tenants_see_nothing)
{
    setup_channel("tags-roles");
    friend_seed("U1", false);
    json_decref(call("admin", "POST", "/tags", "{\"name\":\"vip\"}", 201));
    call_error("viewer", "POST", "/tags", "{\"name\":\"x\"}", 403, "forbidden", NULL);
    call_error("viewer", "POST", "/friends/U1/tags", "{\"tag\":\"vip\"}", 403, "forbidden", NULL);
    call_error("viewer", "PATCH", "/friends/U1/fields", "{}", 403, "forbidden", NULL);
    call_error("viewer", "POST", "/fields", "{\"name\":\"s\",\"type\":\"text\"}", 403, "forbidden",
               NULL);
    json_decref(call("viewer", "GET", "/tags", NULL, 200));
    json_decref(call("viewer", "GET", "/fields", NULL, 200));
    static const char *const rests[] = {"/tags", "/tags/vip", "/fields", "/friends/U1/messages",
                                        "/templates"};
    for (size_t i = 0; i < sizeof rests / sizeof rests[0]; i++)
        cr_expect_eq(seg_itest_call("t-other", "admin", "GET", at(rests[i]), NULL, NULL), 404,
                     "another tenant: %s", rests[i]);
    cr_expect_eq(seg_itest_call("t-other", "admin", "POST", at("/friends/U1/tags"),
                                "{\"tag\":\"vip\"}", NULL),
                 404);
    seg_itest_finish();
}

Test(seg_tags, templates_are_validated_when_stored_and_named_uniquely)
{
    setup_channel("tags-templates");
    json_decref(
        call("operator", "POST", "/fields", "{\"name\":\"score\",\"type\":\"number\"}", 201));
    static const char welcome[] = "{\"name\":\"welcome\",\"messages\":[{\"type\":\"text\",\"text\":"
                                  "\"Hi {{display_name}}, {{field:score}} pts\"}]}";
    json_t *j = call("operator", "POST", "/templates", welcome, 201);
    const char *id_text = json_string_value(json_object_get(j, "id"));
    cr_assert_not_null(id_text, "an id");
    char id[64], rest[128];
    snprintf(id, sizeof id, "%s", id_text);
    json_decref(j);
    call_error("operator", "POST", "/templates", welcome, 409, "conflict", "name");
    call_error("operator", "POST", "/templates",
               "{\"name\":\"bad\",\"messages\":[{\"type\":\"text\",\"text\":\"ok\"},{\"type\":"
               "\"image\",\"originalContentUrl\":\"http://e.com/a.jpg\",\"previewImageUrl\":"
               "\"https://e.com/p.jpg\"}]}",
               400, "invalid_value", "messages[1].originalContentUrl");
    call_error("operator", "POST", "/templates",
               "{\"name\":\"bad\",\"messages\":[{\"type\":\"text\",\"text\":\"{{field:nope}}\"}]}",
               400, "unknown_field", "messages[0].text");
    call_error("operator", "POST", "/templates", "{\"name\":\"bad\",\"messages\":[]}", 400,
               "invalid_value", "messages");
    call_error("viewer", "POST", "/templates", welcome, 403, "forbidden", NULL);

    j = call("viewer", "GET", "/templates", NULL, 200);
    cr_expect_eq(json_array_size(json_object_get(j, "templates")), 1);
    cr_expect(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
    snprintf(rest, sizeof rest, "/templates/%s", id);
    j = call("viewer", "GET", rest, NULL, 200);
    cr_expect_str_eq(json_string_value(json_object_get(j, "name")) ?: "", "welcome");
    json_decref(j);
    j = call("operator", "PUT", rest,
             "{\"name\":\"hello\",\"messages\":[{\"type\":\"sticker\",\"packageId\":\"446\","
             "\"stickerId\":\"1988\"}]}",
             200);
    cr_expect_str_eq(json_string_value(json_object_get(j, "name")) ?: "", "hello");
    json_decref(j);
    call_error("viewer", "GET", "/templates/not-a-uuid", NULL, 404, "not_found", NULL);
    json_decref(call("operator", "DELETE", rest, NULL, 204));
    call_error("viewer", "GET", rest, NULL, 404, "not_found", NULL);
    seg_itest_finish();
}

/* --- send.requests ------------------------------------------------------------------ */

struct sent {
    const char *channel;
    const char *request_id;
    Kizuna__V1__SendRequest *req; /* the one with request_id */
};

static enum kafka_handled sent_handle(void *ctx, const struct kafka_message *msg)
{
    struct sent *s = ctx;
    if (s->req || msg->keylen != strlen(s->channel) ||
        memcmp(msg->key, s->channel, msg->keylen) != 0)
        return KAFKA_DONE;
    Kizuna__V1__SendRequest *req = kizuna__v1__send_request__unpack(NULL, msg->len, msg->value);
    if (req && strcmp(req->request_id, s->request_id) == 0)
        s->req = req;
    else if (req)
        kizuna__v1__send_request__free_unpacked(req, NULL);
    return KAFKA_DONE;
}

static bool sent_done(void *ctx)
{
    return ((struct sent *)ctx)->req != NULL;
}

Test(seg_tags, an_operators_message_is_a_talk_row_and_a_send_request)
{
    setup_channel("tags-talk");
    friend_seed("U1", false);
    friend_seed("U2", true);
    json_decref(
        call("operator", "POST", "/fields", "{\"name\":\"score\",\"type\":\"number\"}", 201));
    json_decref(call("operator", "POST", "/fields", "{\"name\":\"nick\",\"type\":\"text\"}", 201));
    json_decref(call("operator", "PATCH", "/friends/U1/fields", "{\"score\":7}", 200));
    const char *params[] = {channel};
    itest_exec_ok(seg_itest_db(),
                  "INSERT INTO talk (friend_id, direction, at, message_type, text) "
                  "SELECT id, 'in', now() - interval '1 minute', 'text', 'hello' FROM friends "
                  "WHERE channel_id = $1 AND user_id = 'U1'",
                  1, params);

    json_t *j = call("operator", "POST", "/friends/U1/messages",
                     "{\"messages\":[{\"type\":\"text\",\"text\":\"Hi {{display_name}}, "
                     "{{field:score}} pts, {{field:nick|friend}}\"}]}",
                     202);
    char request_id[64];
    snprintf(request_id, sizeof request_id, "%s",
             json_string_value(json_object_get(j, "request_id")) ?: "");
    json_decref(j);
    cr_expect_eq(strlen(request_id), 36, "a UUID request_id");
    /* {{field:score2}} names no field: refused when stored, before anything is sent. */
    call_error("operator", "POST", "/friends/U1/messages",
               "{\"messages\":[{\"type\":\"text\",\"text\":\"{{field:score2}}\"}]}", 400,
               "unknown_field", "messages[0].text");
    call_error("operator", "POST", "/friends/U2/messages",
               "{\"messages\":[{\"type\":\"text\",\"text\":\"hi\"}]}", 409, "friend_blocked", NULL);
    call_error("operator", "POST", "/friends/U404/messages",
               "{\"messages\":[{\"type\":\"text\",\"text\":\"hi\"}]}", 404, "unknown_friend", NULL);
    call_error("operator", "POST", "/friends/U1/messages", "{\"messages\":[{\"type\":\"text\"}]}",
               400, "missing_field", "messages[0].text");
    call_error("viewer", "POST", "/friends/U1/messages",
               "{\"messages\":[{\"type\":\"text\",\"text\":\"hi\"}]}", 403, "forbidden", NULL);
    call_error("viewer", "GET", "/friends/U404/messages", NULL, 404, "unknown_friend", NULL);

    j = call("viewer", "GET", "/friends/U1/messages", NULL, 200);
    json_t *rows = json_object_get(j, "messages");
    cr_assert_eq(json_array_size(rows), 2, "the push and the message received");
    json_t *out = json_array_get(rows, 0);
    cr_expect_str_eq(json_string_value(json_object_get(out, "direction")) ?: "", "out");
    cr_expect_str_eq(json_string_value(json_object_get(out, "status")) ?: "", "pending");
    cr_expect_str_eq(json_string_value(json_object_get(out, "text")) ?: "",
                     "Hi Hanako, 7 pts, friend");
    cr_expect_str_eq(json_string_value(json_object_get(out, "request_id")) ?: "", request_id);
    char talk_id[32];
    snprintf(talk_id, sizeof talk_id, "%s", json_string_value(json_object_get(out, "id")) ?: "");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(rows, 1), "direction")) ?: "",
                     "in");
    json_decref(j);
    j = call("viewer", "GET", "/friends/U1/messages?limit=1", NULL, 200);
    char rest[128];
    snprintf(rest, sizeof rest, "/friends/U1/messages?limit=1&cursor=%s",
             json_string_value(json_object_get(j, "next_cursor")) ?: "0");
    json_decref(j);
    j = call("viewer", "GET", rest, NULL, 200);
    cr_expect_str_eq(json_string_value(
                         json_object_get(json_array_get(json_object_get(j, "messages"), 0), "text"))
                         ?: "",
                     "hello", "the second page holds the older message");
    cr_expect(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);

    struct sent s = {.channel = channel, .request_id = request_id};
    itest_topic_read("send.requests", sent_handle, sent_done, &s, 30000);
    cr_assert_not_null(s.req, "a SendRequest with the talk row's request_id");
    cr_expect_eq(s.req->kind, KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH);
    cr_expect_str_eq(s.req->to, "U1");
    cr_expect_str_eq(s.req->origin_type, "talk");
    cr_expect_str_eq(s.req->origin_id, talk_id);
    cr_expect_str_eq(s.req->envelope->tenant_id, tenant);
    cr_expect_str_eq(s.req->envelope->channel_id, channel);
    cr_assert_eq(s.req->n_messages_json, 1);
    cr_expect_str_eq(s.req->messages_json[0],
                     "{\"type\":\"text\",\"text\":\"Hi Hanako, 7 pts, friend\"}");
    kizuna__v1__send_request__free_unpacked(s.req, NULL);
    seg_itest_finish();
}

struct bad_call {
    const char *method, *rest, *body;
    long status;
    const char *code, *field;
};

static const struct bad_call bad_calls[] = {
    {"POST", "/tags", "{\"name\":", 400, "invalid_json", NULL},
    {"POST", "/tags", "[\"vip\"]", 400, "invalid_json", NULL},
    {"POST", "/tags", "{\"name\":\"a\",\"name\":\"b\"}", 400, "invalid_json", NULL},
    {"POST", "/tags", "{\"name\":\"x\",\"colour\":\"red\"}", 400, "unknown_field", "colour"},
    {"POST", "/tags", "{\"name\":\"\"}", 400, "invalid_value", "name"},
    {"POST", "/tags", "{\"name\":\"tab\\there\"}", 400, "invalid_value", "name"},
    {"POST", "/tags",
     "{\"name\":\"12345678901234567890123456789012345678901234567890123456789012345\"}", 400,
     "too_long", "name"},
    {"POST", "/tags", "{\"name\":7}", 400, "invalid_type", "name"},
    {"GET", "/tags?limit=0", NULL, 400, "invalid_argument", "limit"},
    {"GET", "/tags?limit=501", NULL, 400, "invalid_argument", "limit"},
    {"GET", "/tags?cursor=abc", NULL, 400, "invalid_argument", "cursor"},
    {"PUT", "/tags", "{}", 405, "method_not_allowed", NULL},
    {"POST", "/friends/U1/tags", "{}", 400, "missing_field", "tag"},
    {"POST", "/friends/U1/tags", "{\"tag\":\"a/b\"}", 400, "invalid_value", "tag"},
    {"GET", "/friends/U1/tags", NULL, 405, "method_not_allowed", NULL},
    {"DELETE", "/friends/U1/tags/nope", NULL, 404, "unknown_tag", NULL},
    {"POST", "/fields", "{\"name\":\"a|b\",\"type\":\"text\"}", 400, "invalid_value", "name"},
    {"POST", "/fields", "{\"name\":\"c\",\"type\":\"choice\",\"choices\":[]}", 400, "invalid_value",
     "choices"},
    {"POST", "/fields", "{\"name\":\"c\",\"type\":\"choice\",\"choices\":[\"a\",\"a\"]}", 400,
     "invalid_value", "choices[1]"},
    {"POST", "/fields", "{\"name\":\"c\",\"type\":\"choice\",\"choices\":[\"a\",1]}", 400,
     "invalid_type", "choices[1]"},
    {"POST", "/fields", "{\"name\":\"c\"}", 400, "missing_field", "type"},
    {"PATCH", "/friends/U1/fields", "{\"day\":\"2026-02-30\"}", 400, "invalid_value", "day"},
    {"PATCH", "/friends/U1/fields", "{\"at\":\"2026-12-02 10:00\"}", 400, "invalid_value", "at"},
    {"PATCH", "/friends/U1/fields", "{\"score\":1e16}", 400, "invalid_value", "score"},
    {"PATCH", "/friends/U1/fields", "{\"score\":{\"add\":\"1\"}}", 400, "invalid_value", "score"},
    {"PATCH", "/friends/U1/fields", "{\"score\":{\"add\":1,\"x\":2}}", 400, "invalid_value",
     "score"},
    {"PATCH", "/friends/U1/fields", "{\"score\":true}", 400, "invalid_value", "score"},
    {"PATCH", "/friends/U404/fields", "{\"score\":1}", 404, "unknown_friend", NULL},
    {"GET", "/friends/U1/messages?cursor=x", NULL, 400, "invalid_argument", "cursor"},
    {"POST", "/friends/U1/messages",
     "{\"messages\":[{\"type\":\"text\",\"text\":\"{{link:L1}}\"}]}", 400, "unsupported_variable",
     "messages[0].text"},
    {"POST", "/friends/U1/messages", "{\"text\":\"hi\"}", 400, "unknown_field", "text"},
    {"POST", "/templates", "{\"name\":\"t\"}", 400, "missing_field", "messages"},
    {"PUT", "/templates/00000000-0000-0000-0000-000000000000",
     "{\"name\":\"t\",\"messages\":[{\"type\":\"text\",\"text\":\"x\"}]}", 404, "not_found", NULL},
};

Test(seg_tags, bad_input_is_a_precise_4xx_that_changes_nothing)
{
    setup_channel("tags-bad");
    friend_seed("U1", false);
    json_decref(
        call("operator", "POST", "/fields", "{\"name\":\"score\",\"type\":\"number\"}", 201));
    json_decref(call("operator", "POST", "/fields", "{\"name\":\"day\",\"type\":\"date\"}", 201));
    json_decref(
        call("operator", "POST", "/fields", "{\"name\":\"at\",\"type\":\"datetime\"}", 201));
    for (size_t i = 0; i < sizeof bad_calls / sizeof bad_calls[0]; i++) {
        const struct bad_call *c = &bad_calls[i];
        call_error("operator", c->method, c->rest, c->body, c->status, c->code, c->field);
    }
    const char *params[] = {channel};
    char *n = itest_query_text(seg_itest_db(),
                               "SELECT (SELECT count(*) FROM tags WHERE channel_id = $1) + "
                               "(SELECT count(*) FROM friend_fields) + (SELECT count(*) FROM "
                               "talk) + (SELECT count(*) FROM templates WHERE channel_id = $1)",
                               1, params);
    cr_expect_str_eq(n, "0", "nothing was stored");
    free(n);
    seg_itest_finish();
}

Test(seg_tags, dates_and_times_are_stored_as_such_and_used_names_stay)
{
    setup_channel("tags-dates");
    friend_seed("U1", false);
    json_decref(call("operator", "POST", "/fields", "{\"name\":\"day\",\"type\":\"date\"}", 201));
    json_decref(
        call("operator", "POST", "/fields", "{\"name\":\"at\",\"type\":\"datetime\"}", 201));
    json_t *j = call("operator", "PATCH", "/friends/U1/fields",
                     "{\"day\":\"2024-02-29\",\"at\":\"2026-12-02T09:30:00+09:00\"}", 200);
    json_t *fields = json_object_get(j, "fields");
    cr_expect_str_eq(json_string_value(json_object_get(fields, "day")) ?: "", "2024-02-29");
    const char *at = json_string_value(json_object_get(fields, "at")) ?: "";
    cr_expect(strncmp(at, "2026-12-02T00:30:00", 19) == 0, "stored in UTC: %s", at);
    json_decref(j);
    const char *params[] = {channel};
    char *v = itest_query_text(seg_itest_db(),
                               "SELECT extract(epoch FROM ff.time_value)::bigint FROM "
                               "friend_fields ff JOIN fields f ON f.id = ff.field_id WHERE "
                               "f.channel_id = $1 AND f.name = 'at'",
                               1, params);
    cr_expect_str_eq(v, "1796171400", "the instant is kept");
    free(v);

    /* Names in a path are percent-encoded by clients and decoded by the server. */
    json_decref(call("operator", "POST", "/tags", "{\"name\":\"購入 済み\"}", 201));
    j = call("viewer", "GET", "/tags/%E8%B3%BC%E5%85%A5%20%E6%B8%88%E3%81%BF", NULL, 200);
    cr_expect_str_eq(json_string_value(json_object_get(j, "name")) ?: "", "購入 済み");
    json_decref(j);
    json_decref(call("operator", "POST", "/friends/U1/tags", "{\"tag\":\"購入 済み\"}", 200));
    json_decref(call("operator", "DELETE",
                     "/friends/U1/tags/%E8%B3%BC%E5%85%A5%20%E6%B8%88%E3%81%BF", NULL, 204));

    json_decref(call("operator", "POST", "/tags", "{\"name\":\"vip\"}", 201));
    json_decref(call("operator", "POST", "/segments",
                     "{\"name\":\"vips\",\"filter\":{\"all\":[{\"tag\":\"vip\"},{\"field\":\"day\","
                     "\"op\":\"is_set\"}]}}",
                     201));
    call_error("operator", "DELETE", "/tags/vip", NULL, 409, "tag_in_use", NULL);
    call_error("operator", "PATCH", "/tags/vip", "{\"name\":\"VIP\"}", 409, "tag_in_use", NULL);
    json_decref(call("operator", "PATCH", "/tags/vip", "{\"folder\":\"rank\"}", 200));
    call_error("operator", "DELETE", "/fields/day", NULL, 409, "field_in_use", NULL);
    json_decref(call("operator", "DELETE", "/fields/at", NULL, 204));
    seg_itest_finish();
}
