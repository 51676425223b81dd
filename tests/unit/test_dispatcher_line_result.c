/* Unit tests for services/dispatcher/line_result: each HTTP outcome's class
 * (SENT, RETRY, QUOTA_EXCEEDED, FINAL) and DeliveryResult status, LINE's
 * error detail, sentMessages and profiles, Retry-After, the fields a
 * DeliveryResult carries (packed and unpacked again), and a table of
 * garbage answers that must neither crash nor leak. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher/line_result.h"

#define SEC 1000000000LL
#define NOW_NS (1748736000LL * SEC) /* 2025-06-01T00:00:00Z */
#define RID "9b8f2a4c-1111-4d2e-8f00-0123456789ab"
#define AID "0e1d2c3b-2222-4a5b-9c6d-abcdef012345"

#define PUSH KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH
#define REPLY KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY
#define MULTI KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST
#define NARROW KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST
#define PROFILE KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE
#define LINK KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK

#define ST(x) KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_##x

static struct line_result classify(Kizuna__V1__SendKind kind, enum line_transport tr, int status,
                                   const char *accepted, const char *retry_after, const char *body)
{
    struct line_response resp = {
        .kind = kind,
        .transport = tr,
        .status = status,
        .request_id = RID,
        .accepted_request_id = accepted,
        .retry_after = retry_after,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .now_ns = NOW_NS,
    };
    struct line_result r;
    cr_assert_eq(line_result_classify(&resp, &r), 0);
    return r;
}

Test(dispatcher_line_result, each_http_outcome_gets_its_class_and_status)
{
    static const struct {
        const char *what;
        Kizuna__V1__SendKind kind;
        enum line_transport tr;
        int status;
        const char *accepted, *retry_after, *body;
        enum line_outcome outcome;
        Kizuna__V1__DeliveryStatus st;
        bool ambiguous;
        int64_t retry_after_ns;
        const char *message;
    } cases[] = {
        {"push 200", PUSH, LINE_TRANSPORT_OK, 200, NULL, NULL,
         "{\"sentMessages\":[{\"id\":\"461230966842064897\",\"quoteToken\":\"IStG5h1\"}]}",
         LINE_OUTCOME_SENT, ST(SENT), false, -1, ""},
        {"multicast 200", MULTI, LINE_TRANSPORT_OK, 200, NULL, NULL, "{}", LINE_OUTCOME_SENT,
         ST(SENT), false, -1, ""},
        {"narrowcast 202", NARROW, LINE_TRANSPORT_OK, 202, NULL, NULL, "{}", LINE_OUTCOME_SENT,
         ST(SENT), false, -1, ""},
        {"rich menu link, empty body", LINK, LINE_TRANSPORT_OK, 200, NULL, NULL, NULL,
         LINE_OUTCOME_SENT, ST(SENT), false, -1, ""},
        {"409 with accepted id", PUSH, LINE_TRANSPORT_OK, 409, AID, NULL,
         "{\"message\":\"The retry key is already accepted\"}", LINE_OUTCOME_SENT, ST(SENT), false,
         -1, ""},
        {"409 key accepted, no header", MULTI, LINE_TRANSPORT_OK, 409, NULL, NULL,
         "{\"message\":\"The retry key is already accepted\"}", LINE_OUTCOME_SENT, ST(SENT), false,
         -1, ""},
        {"409 on a reply", REPLY, LINE_TRANSPORT_OK, 409, NULL, NULL, "{\"message\":\"Conflict\"}",
         LINE_OUTCOME_FINAL, ST(FAILED), false, -1, "Conflict"},
        {"429 monthly limit", PUSH, LINE_TRANSPORT_OK, 429, NULL, NULL,
         "{\"message\":\"You have reached your monthly limit.\"}", LINE_OUTCOME_QUOTA_EXCEEDED,
         ST(QUOTA_EXCEEDED), false, -1, "You have reached your monthly limit."},
        {"429 rate limit", PUSH, LINE_TRANSPORT_OK, 429, NULL, "3",
         "{\"message\":\"Too many requests\"}", LINE_OUTCOME_RETRY, ST(RETRY_EXHAUSTED), false,
         3 * SEC, "Too many requests"},
        {"429, garbage Retry-After", PUSH, LINE_TRANSPORT_OK, 429, NULL, "soon",
         "{\"message\":\"Too many requests\"}", LINE_OUTCOME_RETRY, ST(RETRY_EXHAUSTED), false, -1,
         "Too many requests"},
        {"500", PUSH, LINE_TRANSPORT_OK, 500, NULL, NULL, "{\"message\":\"Internal error\"}",
         LINE_OUTCOME_RETRY, ST(RETRY_EXHAUSTED), true, -1, "Internal error"},
        {"503 with a date", MULTI, LINE_TRANSPORT_OK, 503, NULL, "Sun, 01 Jun 2025 00:00:30 GMT",
         NULL, LINE_OUTCOME_RETRY, ST(RETRY_EXHAUSTED), true, 30 * SEC,
         "HTTP 503 without LINE's error body"},
        {"502 from a proxy", PUSH, LINE_TRANSPORT_OK, 502, NULL, NULL,
         "<html><body>Bad Gateway</body></html>", LINE_OUTCOME_RETRY, ST(RETRY_EXHAUSTED), true, -1,
         "HTTP 502 without LINE's error body"},
        {"408", PUSH, LINE_TRANSPORT_OK, 408, NULL, NULL, NULL, LINE_OUTCOME_RETRY,
         ST(RETRY_EXHAUSTED), false, -1, "HTTP 408 without LINE's error body"},
        {"400 invalid message", PUSH, LINE_TRANSPORT_OK, 400, NULL, NULL,
         "{\"message\":\"The request body has 1 error(s)\",\"details\":[{\"message\":\"May not be "
         "empty\",\"property\":\"messages[0].text\"}]}",
         LINE_OUTCOME_FINAL, ST(FAILED), false, -1, "The request body has 1 error(s)"},
        {"400 invalid reply token", REPLY, LINE_TRANSPORT_OK, 400, NULL, NULL,
         "{\"message\":\"Invalid reply token\"}", LINE_OUTCOME_FINAL, ST(REPLY_TOKEN_EXPIRED),
         false, -1, "Invalid reply token"},
        {"401", PUSH, LINE_TRANSPORT_OK, 401, NULL, NULL,
         "{\"message\":\"Authentication failed due to the following reason: invalid token\"}",
         LINE_OUTCOME_FINAL, ST(FAILED), false, -1,
         "Authentication failed due to the following reason: invalid token"},
        {"403", PUSH, LINE_TRANSPORT_OK, 403, NULL, NULL,
         "{\"message\":\"Access to this API is not available for your account\"}",
         LINE_OUTCOME_FINAL, ST(FAILED), false, -1,
         "Access to this API is not available for your account"},
        {"404 profile", PROFILE, LINE_TRANSPORT_OK, 404, NULL, NULL, "{\"message\":\"Not found\"}",
         LINE_OUTCOME_FINAL, ST(FAILED), false, -1, "Not found"},
        {"413", PUSH, LINE_TRANSPORT_OK, 413, NULL, NULL, NULL, LINE_OUTCOME_FINAL, ST(FAILED),
         false, -1, "HTTP 413 without LINE's error body"},
        {"302", PUSH, LINE_TRANSPORT_OK, 302, NULL, NULL, NULL, LINE_OUTCOME_FINAL, ST(FAILED),
         false, -1, "unexpected HTTP status 302"},
        {"no connection", PUSH, LINE_TRANSPORT_CONNECT, 0, NULL, NULL, NULL, LINE_OUTCOME_RETRY,
         ST(RETRY_EXHAUSTED), false, -1, "could not connect to LINE"},
        {"timeout", PUSH, LINE_TRANSPORT_TIMEOUT, 0, NULL, NULL, NULL, LINE_OUTCOME_RETRY,
         ST(RETRY_EXHAUSTED), true, -1, "LINE did not answer in time"},
        {"broken connection", MULTI, LINE_TRANSPORT_BROKEN, 0, NULL, NULL, NULL, LINE_OUTCOME_RETRY,
         ST(RETRY_EXHAUSTED), true, -1, "the connection to LINE broke before the answer"},
        {"status 0", PUSH, LINE_TRANSPORT_OK, 0, NULL, NULL, NULL, LINE_OUTCOME_RETRY,
         ST(RETRY_EXHAUSTED), true, -1, "invalid HTTP status 0"},
        {"status 600", PUSH, LINE_TRANSPORT_OK, 600, NULL, NULL, NULL, LINE_OUTCOME_RETRY,
         ST(RETRY_EXHAUSTED), true, -1, "invalid HTTP status 600"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct line_result r = classify(cases[i].kind, cases[i].tr, cases[i].status,
                                        cases[i].accepted, cases[i].retry_after, cases[i].body);
        cr_expect_eq(r.outcome, cases[i].outcome, "%s: %s", cases[i].what,
                     line_outcome_name(r.outcome));
        cr_expect_eq(r.status, cases[i].st, "%s: status %d", cases[i].what, (int)r.status);
        cr_expect_eq(r.ambiguous, cases[i].ambiguous, "%s", cases[i].what);
        cr_expect_eq(r.retry_after_ns, cases[i].retry_after_ns, "%s: %lld", cases[i].what,
                     (long long)r.retry_after_ns);
        cr_expect_str_eq(r.error_message, cases[i].message, "%s", cases[i].what);
        cr_expect_eq(r.http_status, cases[i].tr == LINE_TRANSPORT_OK ? cases[i].status : 0, "%s",
                     cases[i].what);
        cr_expect_str_eq(r.line_request_id, RID, "%s", cases[i].what);
        cr_expect_str_eq(r.accepted_request_id, cases[i].accepted ? cases[i].accepted : "", "%s",
                         cases[i].what);
        cr_expect_eq(r.reply_token_invalid, cases[i].st == ST(REPLY_TOKEN_EXPIRED), "%s",
                     cases[i].what);
        line_result_clear(&r);
        line_result_clear(&r);
    }
}

Test(dispatcher_line_result, line_error_details_and_sent_messages_are_kept)
{
    struct line_result r =
        classify(PUSH, LINE_TRANSPORT_OK, 400, NULL, NULL,
                 "{\"message\":\"The request body has 2 error(s)\",\"details\":["
                 "{\"message\":\"May not be empty\",\"property\":\"messages[0].text\"},"
                 "{\"message\":\"Must be one of the following values: [text, image]\","
                 "\"property\":\"messages[1].type\"}]}");
    cr_assert_eq(r.n_details, 2);
    cr_expect_str_eq(r.details[0].message, "May not be empty");
    cr_expect_str_eq(r.details[0].property, "messages[0].text");
    cr_expect_str_eq(r.details_ptr[1]->property, "messages[1].type");
    line_result_clear(&r);

    r = classify(REPLY, LINE_TRANSPORT_OK, 200, NULL, NULL,
                 "{\"sentMessages\":[{\"id\":\"1\",\"quoteToken\":\"q1\"},{\"id\":\"2\"}]}");
    cr_assert_eq(r.n_sent, 2);
    cr_expect_str_eq(r.sent[0].id, "1");
    cr_expect_str_eq(r.sent[0].quote_token, "q1");
    cr_expect_str_eq(r.sent_ptr[1]->id, "2");
    cr_expect_str_eq(r.sent_ptr[1]->quote_token, "");
    line_result_clear(&r);

    /* A push repeated with its key: 409 with the first answer's messages. */
    r = classify(PUSH, LINE_TRANSPORT_OK, 409, AID, NULL,
                 "{\"message\":\"The retry key is already accepted\","
                 "\"sentMessages\":[{\"id\":\"7\",\"quoteToken\":\"q7\"}]}");
    cr_expect_eq(r.outcome, LINE_OUTCOME_SENT);
    cr_assert_eq(r.n_sent, 1);
    cr_expect_str_eq(r.sent[0].id, "7");
    cr_expect_str_eq(r.accepted_request_id, AID);
    line_result_clear(&r);
}

Test(dispatcher_line_result, a_profile_is_read_and_an_unreadable_one_is_fetched_again)
{
    struct line_result r = classify(
        PROFILE, LINE_TRANSPORT_OK, 200, NULL, NULL,
        "{\"userId\":\"U4af4980629\",\"displayName\":\"LINE \\u592a\\u90ce\",\"pictureUrl\":"
        "\"https://obs.line-apps.com/x\",\"statusMessage\":\"Hello, LINE!\",\"language\":\"ja\"}");
    cr_expect_eq(r.outcome, LINE_OUTCOME_SENT);
    cr_assert_not_null(r.profile);
    cr_expect_str_eq(r.profile->user_id, "U4af4980629");
    cr_expect_str_eq(r.profile->display_name, "LINE \xe5\xa4\xaa\xe9\x83\x8e");
    cr_expect_str_eq(r.profile->picture_url, "https://obs.line-apps.com/x");
    cr_expect_str_eq(r.profile->status_message, "Hello, LINE!");
    cr_expect_str_eq(r.profile->language, "ja");
    line_result_clear(&r);

    r = classify(PROFILE, LINE_TRANSPORT_OK, 200, NULL, NULL,
                 "{\"userId\":\"U1\",\"displayName\":\"\"}");
    cr_expect_eq(r.outcome, LINE_OUTCOME_SENT);
    cr_assert_not_null(r.profile);
    cr_expect_str_eq(r.profile->picture_url, "");
    cr_expect_str_eq(r.profile->language, "");
    line_result_clear(&r);

    static const char *const bad[] = {NULL,
                                      "",
                                      "{}",
                                      "not json",
                                      "{\"userId\":\"U1\"}",
                                      "{\"displayName\":\"x\"}",
                                      "[]",
                                      "{\"userId\":5,\"displayName\":\"x\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = classify(PROFILE, LINE_TRANSPORT_OK, 200, NULL, NULL, bad[i]);
        cr_expect_eq(r.outcome, LINE_OUTCOME_RETRY, "'%s'", bad[i] ? bad[i] : "(null)");
        cr_expect_null(r.profile);
        cr_expect_not(r.ambiguous, "a GET may simply be repeated");
        cr_expect_str_eq(r.error_message, "HTTP 200 but the body is not a profile");
        line_result_clear(&r);
    }
}

/* Packs d and unpacks it again, as a consumer of delivery.results would. */
static Kizuna__V1__DeliveryResult *round_trip(const Kizuna__V1__DeliveryResult *d)
{
    size_t n = kizuna__v1__delivery_result__get_packed_size(d);
    uint8_t *buf = malloc(n ? n : 1);
    cr_assert_not_null(buf);
    kizuna__v1__delivery_result__pack(d, buf);
    Kizuna__V1__DeliveryResult *u = kizuna__v1__delivery_result__unpack(NULL, n, buf);
    free(buf);
    cr_assert_not_null(u);
    return u;
}

/* The response fields survive a round trip through the protobuf encoding. */
Test(dispatcher_line_result, the_result_fills_a_delivery_result_that_packs)
{
    struct line_result r = classify(
        PUSH, LINE_TRANSPORT_OK, 400, NULL, NULL,
        "{\"message\":\"The request body has 1 error(s)\",\"details\":["
        "{\"message\":\"Length must be between 0 and 5000\",\"property\":\"messages[0].text\"}]}");
    Kizuna__V1__DeliveryResult d = KIZUNA__V1__DELIVERY_RESULT__INIT;
    d.request_id = "req";
    line_result_to_delivery(&r, &d);
    Kizuna__V1__DeliveryResult *u = round_trip(&d);
    line_result_clear(&r);
    cr_expect_eq(u->status, ST(FAILED));
    cr_expect_eq(u->http_status, 400);
    cr_expect_str_eq(u->line_request_id, RID);
    cr_expect_str_eq(u->accepted_request_id, "");
    cr_expect_str_eq(u->error_message, "The request body has 1 error(s)");
    cr_assert_eq(u->n_error_details, 1);
    cr_expect_str_eq(u->error_details[0]->property, "messages[0].text");
    cr_expect_eq(u->n_sent_messages, 0);
    cr_expect_null(u->profile);
    kizuna__v1__delivery_result__free_unpacked(u, NULL);

    /* A 409 that counts as sent: the accepted id and the first answer. */
    r = classify(PUSH, LINE_TRANSPORT_OK, 409, AID, NULL,
                 "{\"message\":\"The retry key is already accepted\","
                 "\"sentMessages\":[{\"id\":\"42\",\"quoteToken\":\"q\"}]}");
    Kizuna__V1__DeliveryResult d2 = KIZUNA__V1__DELIVERY_RESULT__INIT;
    line_result_to_delivery(&r, &d2);
    u = round_trip(&d2);
    line_result_clear(&r);
    cr_expect_eq(u->status, ST(SENT));
    cr_expect_eq(u->http_status, 409);
    cr_expect_str_eq(u->accepted_request_id, AID);
    cr_expect_str_eq(u->error_message, "");
    cr_assert_eq(u->n_sent_messages, 1);
    cr_expect_str_eq(u->sent_messages[0]->id, "42");
    cr_expect_str_eq(u->sent_messages[0]->quote_token, "q");
    kizuna__v1__delivery_result__free_unpacked(u, NULL);

    /* A profile. */
    r = classify(PROFILE, LINE_TRANSPORT_OK, 200, NULL, NULL,
                 "{\"userId\":\"U1\",\"displayName\":\"Taro\",\"language\":\"ja\"}");
    Kizuna__V1__DeliveryResult d3 = KIZUNA__V1__DELIVERY_RESULT__INIT;
    line_result_to_delivery(&r, &d3);
    u = round_trip(&d3);
    line_result_clear(&r);
    cr_assert_not_null(u->profile);
    cr_expect_str_eq(u->profile->user_id, "U1");
    cr_expect_str_eq(u->profile->display_name, "Taro");
    cr_expect_str_eq(u->profile->language, "ja");
    kizuna__v1__delivery_result__free_unpacked(u, NULL);

    /* A transport failure leaves the response fields empty, not NULL. */
    r = classify(PUSH, LINE_TRANSPORT_TIMEOUT, 0, NULL, NULL, NULL);
    Kizuna__V1__DeliveryResult d4 = KIZUNA__V1__DELIVERY_RESULT__INIT;
    line_result_to_delivery(&r, &d4);
    cr_expect_eq(d4.n_error_details, 0);
    cr_expect_null(d4.error_details);
    u = round_trip(&d4);
    line_result_clear(&r);
    cr_expect_eq(u->http_status, 0);
    cr_expect_str_eq(u->error_message, "LINE did not answer in time");
    kizuna__v1__delivery_result__free_unpacked(u, NULL);
}

/* --- bad input -------------------------------------------------------------------------------- */

Test(dispatcher_line_result, garbage_answers_are_classified_without_trusting_them)
{
    static char long_msg[6000];
    /* "あ" (3 bytes) repeated: a 1000-byte cut falls inside a character. */
    {
        size_t o = 0;
        memcpy(long_msg + o, "{\"message\":\"", 12);
        o += 12;
        while (o < 5000) {
            memcpy(long_msg + o, "\xe3\x81\x82", 3);
            o += 3;
        }
        memcpy(long_msg + o, "\"}", 3);
    }
    static char many_details[8000];
    {
        size_t o =
            (size_t)snprintf(many_details, sizeof many_details, "{\"message\":\"m\",\"details\":[");
        for (int i = 0; i < 40; i++)
            o += (size_t)snprintf(many_details + o, sizeof many_details - o,
                                  "%s{\"message\":\"d%d\",\"property\":\"p\"}", i ? "," : "", i);
        snprintf(many_details + o, sizeof many_details - o, "]}");
    }
    static const struct {
        const char *what, *body;
        const char *message;
        size_t n_details;
    } cases[] = {
        {"not JSON", "Bad Request", "HTTP 400 without LINE's error body", 0},
        {"an array", "[1,2]", "HTTP 400 without LINE's error body", 0},
        {"numeric message", "{\"message\":5}", "HTTP 400 without LINE's error body", 0},
        {"details not an array", "{\"message\":\"m\",\"details\":\"x\"}", "m", 0},
        {"details of odd things", "{\"message\":\"m\",\"details\":[1,\"a\",null]}", "m", 3},
        {"40 details", many_details, "m", 16},
        {"invalid UTF-8", "{\"message\":\"\xff\xfe\"}", "HTTP 400 without LINE's error body", 0},
        {"truncated JSON", "{\"message\":\"The request", "HTTP 400 without LINE's error body", 0},
        {"NUL inside", "{\"message\":\"a\\u0000b\"}", "HTTP 400 without LINE's error body", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct line_result r = classify(PUSH, LINE_TRANSPORT_OK, 400, NULL, NULL, cases[i].body);
        cr_expect_eq(r.outcome, LINE_OUTCOME_FINAL, "%s", cases[i].what);
        cr_expect_str_eq(r.error_message, cases[i].message, "%s", cases[i].what);
        cr_expect_eq(r.n_details, cases[i].n_details, "%s", cases[i].what);
        for (size_t k = 0; k < r.n_details; k++) {
            cr_expect_not_null(r.details[k].message);
            cr_expect_not_null(r.details[k].property);
        }
        line_result_clear(&r);
    }

    /* A long message is cut to 1000 bytes on a character boundary. */
    struct line_result r = classify(PUSH, LINE_TRANSPORT_OK, 400, NULL, NULL, long_msg);
    size_t len = strlen(r.error_message);
    cr_expect_leq(len, 1000);
    cr_expect_geq(len, 997);
    cr_expect_eq(len % 3, 0, "cut inside a character: %zu", len);
    line_result_clear(&r);

    /* A body that is not NUL-terminated is read to body_len only. */
    char raw[] = "{\"message\":\"ok\"}XXXX";
    struct line_response resp = {
        .kind = PUSH, .status = 400, .body = raw, .body_len = 16, .now_ns = NOW_NS};
    cr_assert_eq(line_result_classify(&resp, &r), 0);
    cr_expect_str_eq(r.error_message, "ok");
    line_result_clear(&r);

    /* Headers: control characters and length are neutralised. */
    char longhdr[400];
    memset(longhdr, 'a', sizeof longhdr - 1);
    longhdr[sizeof longhdr - 1] = '\0';
    resp = (struct line_response){.kind = PUSH,
                                  .status = 200,
                                  .request_id = "id\r\nX-Evil: 1",
                                  .accepted_request_id = longhdr,
                                  .now_ns = NOW_NS};
    cr_assert_eq(line_result_classify(&resp, &r), 0);
    cr_expect_str_eq(r.line_request_id, "id??X-Evil:?1");
    cr_expect_eq(strlen(r.accepted_request_id), 128);
    line_result_clear(&r);

    /* Unknown transport codes still retry; a NULL response is an error. */
    resp = (struct line_response){.kind = PUSH, .transport = (enum line_transport)9};
    cr_assert_eq(line_result_classify(&resp, &r), 0);
    cr_expect_eq(r.outcome, LINE_OUTCOME_RETRY);
    cr_expect_str_eq(r.error_message, "transport error 9");
    line_result_clear(&r);
    cr_expect_eq(line_result_classify(NULL, &r), -1);
    cr_expect_eq(line_result_classify(&resp, NULL), -1);
    cr_expect_str_eq(line_outcome_name((enum line_outcome)17), "?");
}
