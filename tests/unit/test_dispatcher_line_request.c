/* Unit tests for services/dispatcher/line_request: the exact method, path,
 * body and headers for every kind of send, messages passed through byte for
 * byte, the retry key only where LINE takes it, the reply-token age rule and
 * its push fallback, and a table of bad requests with their precise
 * reasons. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher/line_request.h"
#include "line_base_url.h"

#define UUID "123e4567-e89b-12d3-a456-426614174000"
/* LINE's id forms: U or richmenu- and 32 lowercase hex digits. */
#define USER "U4af4980629abcdef0123456789abcdef"
#define MENU "richmenu-88c05ef6921ae53f8b58a25f3a65faf7"
#define TOKEN "tok-abc.DEF_123"
#define NOW_MS 1750000000000LL
#define NO_ISSUE_TIME INT64_MIN

#define M_TEXT "{\"type\":\"text\",\"text\":\"Hello \\u3053\\u3093 1.0\"}"
/* Spacing and digits a re-serialiser would change: they must survive. */
#define M_LOC                                                          \
    "{ \"type\": \"location\", \"title\": \"t\", \"address\": \"a\", " \
    "\"latitude\": 35.65910807942215, \"longitude\": 1.0e2 }"

static char *two_users[] = {"U1", "U2"};
static char *one_msg[] = {M_TEXT};
static char *two_msgs[] = {M_TEXT, M_LOC};
static char *one_unit[] = {"promo_1"};

static Kizuna__V1__SendRequest base_request(Kizuna__V1__SendKind kind)
{
    Kizuna__V1__SendRequest r = KIZUNA__V1__SEND_REQUEST__INIT;
    r.kind = kind;
    r.request_id = UUID;
    r.n_messages_json = 1;
    r.messages_json = one_msg;
    return r;
}

static struct line_request build_ok(const Kizuna__V1__SendRequest *req)
{
    struct line_request out;
    struct line_request_opts opts = {.now_ms = NOW_MS};
    char err[256] = "";
    cr_assert_eq(line_request_build(req, TOKEN, &opts, &out, err, sizeof err), LINE_REQUEST_OK,
                 "%s", err);
    return out;
}

/* --- every kind --------------------------------------------------------------------------- */

Test(dispatcher_line_request, every_kind_becomes_lines_method_path_body_and_headers)
{
    static const struct {
        Kizuna__V1__SendKind kind;
        const char *method, *path, *body; /* body NULL: none */
        enum ratelimit_class cls;
        bool retry_key;
    } cases[] = {
        {KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY, "POST", "/v2/bot/message/reply",
         "{\"replyToken\":\"rt-1\",\"messages\":[" M_TEXT "]}", RATELIMIT_REPLY, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH, "POST", "/v2/bot/message/push",
         "{\"to\":\"" USER "\",\"messages\":[" M_TEXT "]}", RATELIMIT_PUSH, true},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST, "POST", "/v2/bot/message/multicast",
         "{\"to\":[\"U1\",\"U2\"],\"messages\":[" M_TEXT "]}", RATELIMIT_MULTICAST, true},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST, "POST", "/v2/bot/message/broadcast",
         "{\"messages\":[" M_TEXT "]}", RATELIMIT_BROADCAST, true},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST, "POST", "/v2/bot/message/narrowcast",
         "{\"messages\":[" M_TEXT "]}", RATELIMIT_NARROWCAST, true},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE, "GET", "/v2/bot/profile/" USER, NULL,
         RATELIMIT_PROFILE, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK, "POST",
         "/v2/bot/user/" USER "/richmenu/" MENU, NULL, RATELIMIT_RICHMENU_LINK, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_UNLINK, "DELETE",
         "/v2/bot/user/" USER "/richmenu", NULL, RATELIMIT_RICHMENU_UNLINK, false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_LINK, "POST", "/v2/bot/richmenu/bulk/link",
         "{\"richMenuId\":\"" MENU "\",\"userIds\":[\"U1\",\"U2\"]}", RATELIMIT_RICHMENU_BULK_LINK,
         false},
        {KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_UNLINK, "POST",
         "/v2/bot/richmenu/bulk/unlink", "{\"userIds\":[\"U1\",\"U2\"]}",
         RATELIMIT_RICHMENU_BULK_UNLINK, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Kizuna__V1__SendRequest req = base_request(cases[i].kind);
        req.reply_token = "rt-1";
        req.reply_token_issued_at = NOW_MS - 1000;
        req.to = USER;
        req.n_recipients = 2;
        req.recipients = two_users;
        req.rich_menu_id = MENU;
        struct line_request out = build_ok(&req);
        cr_expect_str_eq(line_method_name(out.method), cases[i].method, "case %zu", i);
        cr_expect_str_eq(out.path, cases[i].path, "case %zu", i);
        cr_expect_eq(out.rl_class, cases[i].cls, "case %zu", i);
        cr_expect_eq(out.kind, cases[i].kind, "case %zu", i);
        cr_expect_eq(out.has_retry_key, cases[i].retry_key, "case %zu", i);
        cr_expect_not(out.fell_back_to_push);
        if (cases[i].body) {
            cr_assert_not_null(out.body, "case %zu", i);
            cr_expect_str_eq(out.body, cases[i].body, "case %zu", i);
            cr_expect_eq(out.body_len, strlen(cases[i].body), "case %zu", i);
        } else {
            cr_expect_null(out.body, "case %zu", i);
        }
        /* Headers: Authorization always; Content-Type with a body; the retry
         * key only on push, multicast, broadcast, narrowcast. */
        size_t want = 1 + (cases[i].body != NULL) + cases[i].retry_key;
        cr_assert_eq(out.nheaders, want, "case %zu", i);
        cr_expect_str_eq(out.headers[0], "Authorization: Bearer " TOKEN);
        size_t h = 1;
        if (cases[i].body)
            cr_expect_str_eq(out.headers[h++], "Content-Type: application/json");
        if (cases[i].retry_key)
            cr_expect_str_eq(out.headers[h++], "X-Line-Retry-Key: " UUID);
        line_request_clear(&out);
        line_request_clear(&out);
    }
}

Test(dispatcher_line_request, message_objects_pass_through_byte_for_byte_with_options)
{
    Kizuna__V1__SendRequest req = base_request(KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH);
    req.to = "Ca56f94637c0123456789abcdef01234"; /* a group id */
    req.n_messages_json = 2;
    req.messages_json = two_msgs;
    req.notification_disabled = true;
    req.n_custom_aggregation_units = 1;
    req.custom_aggregation_units = one_unit;
    struct line_request out = build_ok(&req);
    cr_expect_str_eq(out.body, "{\"to\":\"Ca56f94637c0123456789abcdef01234\",\"messages\":[" M_TEXT
                               "," M_LOC "],\"notificationDisabled\":true,"
                               "\"customAggregationUnits\":[\"promo_1\"]}");
    json_error_t jerr;
    json_t *j = json_loads(out.body, 0, &jerr);
    cr_expect_not_null(j, "the body is JSON: %s", jerr.text);
    json_decref(j);
    line_request_clear(&out);
}

Test(dispatcher_line_request, narrowcast_objects_are_placed_in_lines_fields)
{
    Kizuna__V1__SendRequest req = base_request(KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST);
    req.narrowcast_recipient_json = "{\"type\":\"audience\",\"audienceGroupId\":5614991017776}";
    req.narrowcast_filter_json = "{\"demographic\":{\"type\":\"gender\",\"oneOf\":[\"male\"]}}";
    req.narrowcast_limit_json = "{\"max\":100,\"upToRemainingQuota\":true}";
    req.notification_disabled = true;
    struct line_request out = build_ok(&req);
    cr_expect_str_eq(out.body,
                     "{\"messages\":[" M_TEXT "],"
                     "\"recipient\":{\"type\":\"audience\",\"audienceGroupId\":5614991017776},"
                     "\"filter\":{\"demographic\":{\"type\":\"gender\",\"oneOf\":[\"male\"]}},"
                     "\"limit\":{\"max\":100,\"upToRemainingQuota\":true},"
                     "\"notificationDisabled\":true}");
    line_request_clear(&out);
}

Test(dispatcher_line_request, exactly_five_messages_and_500_recipients_are_accepted)
{
    static char *five[] = {M_TEXT, M_TEXT, M_TEXT, M_TEXT, M_TEXT};
    static char *ids[500];
    static char idbuf[500][8];
    for (int i = 0; i < 500; i++) {
        snprintf(idbuf[i], sizeof idbuf[i], "U%d", i);
        ids[i] = idbuf[i];
    }
    Kizuna__V1__SendRequest req = base_request(KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST);
    req.n_messages_json = 5;
    req.messages_json = five;
    req.n_recipients = 500;
    req.recipients = ids;
    struct line_request out = build_ok(&req);
    json_t *j = json_loads(out.body, 0, NULL);
    cr_assert_not_null(j);
    cr_expect_eq(json_array_size(json_object_get(j, "to")), 500);
    cr_expect_eq(json_array_size(json_object_get(j, "messages")), 5);
    json_decref(j);
    line_request_clear(&out);
}

/* --- reply tokens --------------------------------------------------------------------------- */

Test(dispatcher_line_request, old_or_used_reply_tokens_fall_back_to_push_or_fail_clearly)
{
    static const struct {
        int64_t age_ms;     /* NO_ISSUE_TIME: reply_token_issued_at unset */
        int64_t max_age_ms; /* 0: default 50 s */
        bool used, fallback;
        const char *to;
        int rc;
        bool pushed;
        const char *reason;
    } cases[] = {
        {10000, 0, false, false, "U1", LINE_REQUEST_OK, false, NULL},
        {50000, 0, false, false, "U1", LINE_REQUEST_OK, false, NULL},
        {-5000, 0, false, false, "U1", LINE_REQUEST_OK, false, NULL}, /* clock skew */
        {50001, 0, false, true, "U1", LINE_REQUEST_OK, true, NULL},
        {50001, 0, false, false, "U1", LINE_REQUEST_EREPLY, false,
         "the reply token is 50001 ms old (limit 50000 ms) and push fallback is not allowed"},
        {1000, 0, true, true, "U1", LINE_REQUEST_OK, true, NULL},
        {1000, 0, true, false, "U1", LINE_REQUEST_EREPLY, false,
         "the reply token was already used and push fallback is not allowed"},
        {NO_ISSUE_TIME, 0, false, false, "U1", LINE_REQUEST_EREPLY, false,
         "the reply token has no issue time (reply_token_issued_at) and push fallback is not "
         "allowed"},
        {NO_ISSUE_TIME, 0, false, true, "U1", LINE_REQUEST_OK, true, NULL},
        {90000, 0, false, true, "", LINE_REQUEST_EREPLY, false,
         "the reply token is 90000 ms old (limit 50000 ms) and push fallback has no `to`"},
        {20000, 10000, false, true, "U1", LINE_REQUEST_OK, true, NULL},
        {20000, 30000, false, true, "U1", LINE_REQUEST_OK, false, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Kizuna__V1__SendRequest req = base_request(KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY);
        req.reply_token = "rt-1";
        req.reply_token_issued_at = cases[i].age_ms == NO_ISSUE_TIME ? 0 : NOW_MS - cases[i].age_ms;
        req.allow_push_fallback = cases[i].fallback;
        req.to = (char *)cases[i].to;
        struct line_request_opts opts = {NOW_MS, cases[i].max_age_ms, cases[i].used};
        struct line_request out;
        char err[256] = "";
        int rc = line_request_build(&req, TOKEN, &opts, &out, err, sizeof err);
        cr_assert_eq(rc, cases[i].rc, "case %zu: %d %s", i, rc, err);
        if (cases[i].reason)
            cr_expect_str_eq(err, cases[i].reason, "case %zu", i);
        if (rc != LINE_REQUEST_OK) {
            cr_expect_null(out.path, "case %zu: nothing is left built", i);
            continue;
        }
        cr_expect_eq(out.fell_back_to_push, cases[i].pushed, "case %zu", i);
        if (cases[i].pushed) {
            cr_expect_str_eq(out.path, "/v2/bot/message/push", "case %zu", i);
            cr_expect_eq(out.kind, KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH);
            cr_expect_eq(out.rl_class, RATELIMIT_PUSH);
            cr_expect_str_eq(out.body, "{\"to\":\"U1\",\"messages\":[" M_TEXT "]}");
            cr_expect(out.has_retry_key);
            cr_expect_str_eq(out.headers[2], "X-Line-Retry-Key: " UUID);
        } else {
            cr_expect_str_eq(out.path, "/v2/bot/message/reply", "case %zu", i);
            cr_expect_not(out.has_retry_key, "a reply never carries the retry key");
            cr_expect_eq(out.nheaders, 2);
        }
        line_request_clear(&out);
    }
}

/* --- bad input --------------------------------------------------------------------------------- */

static char *six_msgs[] = {M_TEXT, M_TEXT, M_TEXT, M_TEXT, M_TEXT, M_TEXT};
static char *msgs_bad_json[] = {"{\"type\":\"text\",\"text\":"};
static char *msgs_array_second[] = {M_TEXT, "[{\"type\":\"text\"}]"};
static char *msgs_string[] = {"\"hello\""};
static char *msgs_no_type[] = {"{\"text\":\"hi\"}"};
static char *msgs_type_number[] = {"{\"type\":1,\"text\":\"hi\"}"};
static char *msgs_dup_key[] = {"{\"type\":\"text\",\"type\":\"image\"}"};
static char *msgs_trailing[] = {"{\"type\":\"text\",\"text\":\"a\"} {}"};
static char *msgs_empty[] = {""};
static char *msgs_null_json[] = {"null"};
static char *users_empty_second[] = {"U1", ""};
static char *users_bad_utf8[] = {"U\xff"};
static char *units_two[] = {"a", "b"};
static char *units_dash[] = {"bad-unit"};
static char *units_long[] = {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
static char *users_501[501];

static void m_six(Kizuna__V1__SendRequest *r)
{
    r->n_messages_json = 6;
    r->messages_json = six_msgs;
}
static void m_none(Kizuna__V1__SendRequest *r)
{
    r->n_messages_json = 0;
    r->messages_json = NULL;
}
#define MSGS(fn, arr)                                    \
    static void fn(Kizuna__V1__SendRequest *r)           \
    {                                                    \
        r->n_messages_json = sizeof arr / sizeof arr[0]; \
        r->messages_json = arr;                          \
    }
MSGS(m_bad_json, msgs_bad_json)
MSGS(m_array, msgs_array_second)
MSGS(m_string, msgs_string)
MSGS(m_no_type, msgs_no_type)
MSGS(m_type_number, msgs_type_number)
MSGS(m_dup_key, msgs_dup_key)
MSGS(m_trailing, msgs_trailing)
MSGS(m_empty, msgs_empty)
MSGS(m_null_json, msgs_null_json)

static void multicast(Kizuna__V1__SendRequest *r)
{
    r->kind = KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST;
}
static void r_501(Kizuna__V1__SendRequest *r)
{
    multicast(r);
    for (int i = 0; i < 501; i++)
        users_501[i] = "U1";
    r->n_recipients = 501;
    r->recipients = users_501;
}
static void r_none(Kizuna__V1__SendRequest *r)
{
    multicast(r);
    r->n_recipients = 0;
}
static void r_empty_second(Kizuna__V1__SendRequest *r)
{
    multicast(r);
    r->n_recipients = 2;
    r->recipients = users_empty_second;
}
static void r_bad_utf8(Kizuna__V1__SendRequest *r)
{
    multicast(r);
    r->n_recipients = 1;
    r->recipients = users_bad_utf8;
}
static void bulk_link_501(Kizuna__V1__SendRequest *r)
{
    r_501(r);
    r->kind = KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_LINK;
    r->rich_menu_id = "richmenu-1";
}
static void bulk_unlink_none(Kizuna__V1__SendRequest *r)
{
    r->kind = KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_UNLINK;
    r->n_recipients = 0;
}
static void bulk_link_no_menu(Kizuna__V1__SendRequest *r)
{
    r->kind = KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_LINK;
    r->n_recipients = 2;
    r->recipients = two_users;
    r->rich_menu_id = "";
}
static void push_no_to(Kizuna__V1__SendRequest *r)
{
    r->to = "";
}
static void push_to_slash(Kizuna__V1__SendRequest *r)
{
    r->to = "U1/../../v2/bot/message/broadcast";
}
static void push_to_space(Kizuna__V1__SendRequest *r)
{
    r->to = "U1 2";
}
static void profile_to_query(Kizuna__V1__SendRequest *r)
{
    r->kind = KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE;
    r->to = "U1?x=1";
}
static void link_no_menu(Kizuna__V1__SendRequest *r)
{
    r->kind = KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK;
    r->rich_menu_id = "";
}
static void link_menu_percent(Kizuna__V1__SendRequest *r)
{
    r->kind = KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK;
    r->rich_menu_id = "richmenu%2F1";
}
static void unlink_no_to(Kizuna__V1__SendRequest *r)
{
    r->kind = KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_UNLINK;
    r->to = "";
}
static void id_not_uuid(Kizuna__V1__SendRequest *r)
{
    r->request_id = "req-1";
}
static void id_empty_multicast(Kizuna__V1__SendRequest *r)
{
    multicast(r);
    r->n_recipients = 2;
    r->recipients = two_users;
    r->request_id = "";
}
static void id_uuid_no_dashes(Kizuna__V1__SendRequest *r)
{
    r->kind = KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST;
    r->request_id = "123e4567e89b12d3a456426614174000";
}
static void units_2(Kizuna__V1__SendRequest *r)
{
    r->n_custom_aggregation_units = 2;
    r->custom_aggregation_units = units_two;
}
static void units_bad(Kizuna__V1__SendRequest *r)
{
    r->n_custom_aggregation_units = 1;
    r->custom_aggregation_units = units_dash;
}
static void units_31(Kizuna__V1__SendRequest *r)
{
    r->n_custom_aggregation_units = 1;
    r->custom_aggregation_units = units_long;
}
static void nc_filter_array(Kizuna__V1__SendRequest *r)
{
    r->kind = KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST;
    r->narrowcast_filter_json = "[{\"demographic\":{}}]";
}
static void nc_limit_bad(Kizuna__V1__SendRequest *r)
{
    r->kind = KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST;
    r->narrowcast_limit_json = "{\"max\":}";
}
static void kind_unspecified(Kizuna__V1__SendRequest *r)
{
    r->kind = KIZUNA__V1__SEND_KIND__SEND_KIND_UNSPECIFIED;
}
static void kind_99(Kizuna__V1__SendRequest *r)
{
    r->kind = (Kizuna__V1__SendKind)99;
}
static void reply_no_token(Kizuna__V1__SendRequest *r)
{
    r->kind = KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY;
    r->reply_token = "";
    r->reply_token_issued_at = NOW_MS;
}
static void reply_six(Kizuna__V1__SendRequest *r)
{
    r->kind = KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY;
    r->reply_token = "rt";
    r->reply_token_issued_at = NOW_MS;
    m_six(r);
}
static void reply_fallback_bad_id(Kizuna__V1__SendRequest *r)
{
    r->kind = KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY;
    r->reply_token = "rt";
    r->reply_token_issued_at = NOW_MS - 60000;
    r->allow_push_fallback = true;
    r->request_id = "not-a-uuid";
}

static char *huge_msgs[5];
static void body_too_big(Kizuna__V1__SendRequest *r)
{
    size_t n = 450 * 1024;
    for (int i = 0; i < 5; i++) {
        char *m = malloc(n + 64);
        cr_assert_not_null(m);
        int o = snprintf(m, n + 64, "{\"type\":\"text\",\"text\":\"");
        memset(m + o, 'a', n);
        memcpy(m + o + n, "\"}", 3);
        huge_msgs[i] = m;
    }
    r->n_messages_json = 5;
    r->messages_json = huge_msgs;
}

Test(dispatcher_line_request, bad_requests_fail_fast_with_the_field_and_reason)
{
    static const struct {
        const char *what;
        void (*mutate)(Kizuna__V1__SendRequest *);
        const char *reason; /* prefix of errstr */
    } cases[] = {
        {"6 messages", m_six, "messages_json: 6 messages; LINE accepts at most 5"},
        {"no messages", m_none, "messages_json: no messages; LINE needs 1 to 5"},
        {"truncated JSON", m_bad_json, "messages_json[0]: not valid JSON (line 1, column"},
        {"an array", m_array, "messages_json[1]: a JSON array, not an object"},
        {"a string", m_string, "messages_json[0]: a JSON string, not an object"},
        {"JSON null", m_null_json, "messages_json[0]: a JSON null, not an object"},
        {"no type", m_no_type, "messages_json[0]: \"type\" missing or not a string"},
        {"numeric type", m_type_number, "messages_json[0]: \"type\" missing or not a string"},
        {"duplicate key", m_dup_key, "messages_json[0]: not valid JSON"},
        {"trailing data", m_trailing, "messages_json[0]: not valid JSON"},
        {"empty text", m_empty, "messages_json[0]: not valid JSON"},
        {"501 recipients", r_501, "recipients: 501 user ids; LINE accepts at most 500"},
        {"no recipients", r_none, "recipients: none; LINE needs 1 to 500 user ids"},
        {"empty recipient", r_empty_second, "recipients[1]: empty user id"},
        {"bad UTF-8 recipient", r_bad_utf8, "recipients[0]: not valid UTF-8"},
        {"bulk link 501", bulk_link_501, "recipients: 501 user ids"},
        {"bulk unlink none", bulk_unlink_none, "recipients: none"},
        {"bulk link, no menu", bulk_link_no_menu, "rich_menu_id: required"},
        {"push, no to", push_no_to, "to: required"},
        {"push to a path", push_to_slash, "to: character 3 is not allowed in a LINE id"},
        {"push to a space", push_to_space, "to: character 3 is not allowed"},
        {"profile with a query", profile_to_query, "to: not a user id"},
        {"link, no menu", link_no_menu, "rich_menu_id: required"},
        {"link, encoded menu", link_menu_percent, "rich_menu_id: not a rich menu id"},
        {"unlink, no to", unlink_no_to, "to: required"},
        {"request_id not a UUID", id_not_uuid, "request_id: not a UUID"},
        {"request_id empty", id_empty_multicast, "request_id: not a UUID"},
        {"UUID without dashes", id_uuid_no_dashes, "request_id: not a UUID"},
        {"two units", units_2, "custom_aggregation_units: 2 units; LINE accepts at most 1"},
        {"unit with a dash", units_bad, "custom_aggregation_units[0]: must be 1 to 30"},
        {"unit of 31", units_31, "custom_aggregation_units[0]: must be 1 to 30"},
        {"filter array", nc_filter_array, "narrowcast_filter_json: a JSON array, not an object"},
        {"limit not JSON", nc_limit_bad, "narrowcast_limit_json: not valid JSON"},
        {"kind unspecified", kind_unspecified, "kind: 0 is not a kind of send"},
        {"kind 99", kind_99, "kind: 99 is not a kind of send"},
        {"reply without token", reply_no_token, "reply_token: required for a reply"},
        {"reply with 6", reply_six, "messages_json: 6 messages"},
        {"fallback, bad id", reply_fallback_bad_id, "request_id: not a UUID"},
        {"body over 2 MB", body_too_big, "body: larger than LINE's 2097152-byte limit"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Kizuna__V1__SendRequest req = base_request(KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH);
        req.to = USER;
        cases[i].mutate(&req);
        struct line_request_opts opts = {.now_ms = NOW_MS};
        struct line_request out;
        char err[256] = "";
        cr_expect_eq(line_request_build(&req, TOKEN, &opts, &out, err, sizeof err),
                     LINE_REQUEST_EINVAL, "%s", cases[i].what);
        cr_expect(strncmp(err, cases[i].reason, strlen(cases[i].reason)) == 0, "%s: '%s'",
                  cases[i].what, err);
        cr_expect_null(out.path, "%s", cases[i].what);
        cr_expect_null(out.body, "%s", cases[i].what);
        cr_expect_eq(out.nheaders, 0, "%s", cases[i].what);
    }
    for (int i = 0; i < 5; i++)
        free(huge_msgs[i]);
}

Test(dispatcher_line_request, bad_access_tokens_are_refused_without_echoing_them)
{
    static const struct {
        const char *token, *reason;
    } cases[] = {
        {NULL, "access token: missing"},
        {"", "access token: missing"},
        {"secret\r\nX-Evil: 1", "access token: contains a character not allowed in a header"},
        {"secret token", "access token: contains a character"},
        {"secret\x7f", "access token: contains a character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Kizuna__V1__SendRequest req = base_request(KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH);
        req.to = "U1";
        struct line_request_opts opts = {.now_ms = NOW_MS};
        struct line_request out;
        char err[256] = "";
        cr_expect_eq(line_request_build(&req, cases[i].token, &opts, &out, err, sizeof err),
                     LINE_REQUEST_EINVAL, "case %zu", i);
        cr_expect(strncmp(err, cases[i].reason, strlen(cases[i].reason)) == 0, "case %zu: %s", i,
                  err);
        cr_expect(strstr(err, "secret") == NULL, "case %zu leaks the token", i);
    }
    char *long_token = malloc(5000);
    cr_assert_not_null(long_token);
    memset(long_token, 'a', 4999);
    long_token[4999] = '\0';
    Kizuna__V1__SendRequest req = base_request(KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH);
    req.to = "U1";
    struct line_request_opts opts = {.now_ms = NOW_MS};
    struct line_request out;
    char err[256] = "";
    cr_expect_eq(line_request_build(&req, long_token, &opts, &out, err, sizeof err),
                 LINE_REQUEST_EINVAL);
    cr_expect(strncmp(err, "access token: longer than", 25) == 0, "%s", err);
    free(long_token);
    cr_expect_eq(line_request_build(NULL, TOKEN, &opts, &out, err, sizeof err),
                 LINE_REQUEST_EINVAL);
    cr_expect_eq(line_request_build(&req, TOKEN, NULL, &out, err, sizeof err), LINE_REQUEST_EINVAL);
    cr_expect_eq(line_request_build(&req, TOKEN, &opts, NULL, err, sizeof err),
                 LINE_REQUEST_EINVAL);
}

Test(dispatcher_line_request, retry_keys_must_be_uuids)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {UUID, true},
        {"123E4567-E89B-12D3-A456-426614174000", true},
        {"00000000-0000-0000-0000-000000000000", true},
        {"123e4567-e89b-12d3-a456-42661417400", false},
        {"123e4567-e89b-12d3-a456-4266141740000", false},
        {"123e4567e89b-12d3-a456-426614174000-", false},
        {"123e4567-e89b-12d3-a456-42661417400g", false},
        {"{123e4567-e89b-12d3-a456-426614174000}", false},
        {"", false},
        {NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(line_uuid_valid(cases[i].s), cases[i].ok, "%s",
                     cases[i].s ? cases[i].s : "(null)");
}

/* --- ids in URL paths ----------------------------------------------------------------------- */

Test(dispatcher_line_request, lines_id_forms_are_accepted_for_their_kind_only)
{
    static const struct {
        enum line_id_kind kind;
        const char *id;
        bool ok;
    } cases[] = {
        {LINE_ID_USER, USER, true},
        {LINE_ID_GROUP, "Ca56f94637c0123456789abcdef012345", true},
        {LINE_ID_ROOM, "Ra56f94637c0123456789abcdef012345", true},
        {LINE_ID_RICH_MENU, MENU, true},
        {LINE_ID_USER, "Ca56f94637c0123456789abcdef012345", false}, /* a group is no user */
        {LINE_ID_GROUP, USER, false},
        {LINE_ID_ROOM, USER, false},
        {LINE_ID_RICH_MENU, "richmenu-alias-a", false}, /* an alias is no rich menu id */
        {LINE_ID_USER, "U4AF4980629ABCDEF0123456789ABCDEF", false}, /* LINE's are lowercase */
        {LINE_ID_USER, "u4af4980629abcdef0123456789abcdef", false},
        {LINE_ID_USER, NULL, false},
        {(enum line_id_kind)99, USER, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(line_id_valid(cases[i].kind, cases[i].id), cases[i].ok, "case %zu: %s", i,
                     cases[i].id ? cases[i].id : "(null)");
}

/* What reached LINE's channel-wide endpoints before: `to = "all"` made the
 * unlink DELETE /v2/bot/user/all/richmenu (the default rich menu of every
 * user), and `..` walks to another path. Each is refused for good, naming
 * the field, for every kind that puts an id in its path. */
Test(dispatcher_line_request, bad_ids_in_url_paths_are_refused_with_the_field)
{
    static const char *const bad[] = {
        "all",
        "..",
        "U123",
        "Uxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxy", /* U and 32 characters, not hex */
        "richmenu-../x",
        "",
        "U4af4980629abcdef0123456789abcdef0", /* one digit too many */
        "U4af4980629abcdef0123456789abcdef/richmenu",
        "U4af4980629abcdef0123456789abcde%2F",
        "U4af4980629abcdef0123456789abcdef\n",
        "richmenu-88c05ef6921ae53f8b58a25f3a65faf7", /* a rich menu as a user */
        "Ca56f94637c0123456789abcdef012345",         /* a group as a user */
    };
    /* A user id of 4,000 characters: never copied into a path. */
    static char too_long[4001];
    memset(too_long, 'a', sizeof too_long - 1);
    too_long[0] = 'U';
    static const struct {
        const char *what;
        Kizuna__V1__SendKind kind;
        bool bad_menu; /* the rich menu id is the bad one, the user is good */
        const char *reason;
    } kinds[] = {
        {"profile", KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE, false, "to: "},
        {"link", KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK, false, "to: "},
        {"unlink", KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_UNLINK, false, "to: "},
        {"link's menu", KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK, true, "rich_menu_id: "},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (size_t i = 0; i <= sizeof bad / sizeof bad[0]; i++) {
            const char *id = i < sizeof bad / sizeof bad[0] ? bad[i] : too_long;
            if (kinds[k].bad_menu && strcmp(id, MENU) == 0)
                continue; /* the one good rich menu id in the list */
            Kizuna__V1__SendRequest req = base_request(kinds[k].kind);
            req.to = (char *)(kinds[k].bad_menu ? USER : id);
            req.rich_menu_id = (char *)(kinds[k].bad_menu ? id : MENU);
            struct line_request_opts opts = {.now_ms = NOW_MS};
            struct line_request out;
            char err[256] = "";
            cr_expect_eq(line_request_build(&req, TOKEN, &opts, &out, err, sizeof err),
                         LINE_REQUEST_EINVAL, "%s %.40s", kinds[k].what, id);
            cr_expect(strncmp(err, kinds[k].reason, strlen(kinds[k].reason)) == 0, "%s %.40s: %s",
                      kinds[k].what, id, err);
            cr_expect(id[0] == '\0' || strstr(err, "not a "), "%s %.40s: %s", kinds[k].what, id,
                      err);
            cr_expect_null(out.path, "%s %.40s", kinds[k].what, id);
        }
    }
}

/* A host the operator lists may be reached over http too, and only it:
 * the exact name, not a longer one, a prefix or an address behind it. */
Test(dispatcher_line_request, http_reaches_a_listed_plaintext_host_and_no_other)
{
    static const struct {
        const char *url;
        bool ok;
    } cases[] = {
        {"http://line-sim:8090", true},  {"http://LINE-SIM:8090/", true},
        {"http://other-sim:8090", true}, {"http://line-sim.example.com:8090", false},
        {"http://line-si:8090", false},  {"http://line-sim@evil.example:8090", false},
        {"http://api.line.me", false},   {"http://127.0.0.1:8090", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        int rc = line_base_url_check(cases[i].url, "line-sim,other-sim", err, sizeof err);
        cr_expect_eq(rc == 0, cases[i].ok, "%s: %s", cases[i].url, err);
    }
    char err[256] = "";
    cr_expect_neq(line_base_url_check("http://line-sim:8090", "", err, sizeof err), 0,
                  "an empty list allows no host");
}

Test(dispatcher_line_request, the_base_url_is_https_or_http_to_a_loopback_address)
{
    static const struct {
        const char *url;
        bool ok;
    } cases[] = {
        {"https://api.line.me", true},
        {"https://api.line.me/", true},
        {"https://10.0.0.5:8443", true},
        {"http://127.0.0.1:18190", true},
        {"http://127.1.2.3", true},
        {"http://localhost:8080/", true},
        {"http://LOCALHOST", true},
        {"http://[::1]:18190", true},
        {"http://api.line.me", false},
        {"http://10.0.0.5:8080", false},
        {"http://128.0.0.1", false},
        {"http://127.0.0.1.example.com", false},
        {"http://localhost.example.com", false},
        {"http://127.0.0.1@evil.example", false},
        {"http://127.0.0.1:80@evil.example/", false},
        {"http://127.1", false},
        {"http://[::2]", false},
        {"http://", false},
        {"https://", false},
        {"ftp://127.0.0.1", false},
        {"127.0.0.1:18190", false},
        {"", false},
        {NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        int rc = line_base_url_check(cases[i].url, NULL, err, sizeof err);
        cr_expect_eq(rc == 0, cases[i].ok, "%s: %s", cases[i].url ? cases[i].url : "(null)", err);
        if (!cases[i].ok)
            cr_expect_neq(err[0], '\0', "%s: a reason", cases[i].url ? cases[i].url : "(null)");
    }
}
