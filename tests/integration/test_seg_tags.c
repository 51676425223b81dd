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
    if (msg->keylen != strlen(s->key) || memcmp(msg->key, s->key, msg->keylen) != 0 ||
        s->n >= 16)
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
    call_error("operator", "POST", "/friends/U404/tags", "{\"tag\":\"vip\"}", 404,
               "unknown_friend", NULL);
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

    json_decref(call("operator", "POST", "/fields", "{\"name\":\"score\",\"type\":\"number\"}", 201));
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
    call_error("viewer", "POST", "/fields", "{\"name\":\"s\",\"type\":\"text\"}", 403,
               "forbidden", NULL);
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
