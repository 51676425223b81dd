/* Unit tests for services/dispatcher/results: the DeliveryResult of a final
 * outcome carries the request's identity and LINE's answer, is keyed
 * <channel>:<to> (or <channel>:<request_id> for multi-recipient kinds), has
 * an event id derived from the request id (so a second publication is the
 * same event), records the quota counted, and falls back to the
 * dispatcher's own reason when LINE gave none. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "dispatcher/deliveries.h"
#include "dispatcher/results.h"
#include "kizuna/v1/delivery.pb-c.h"

static struct delivery *delivery_of(Kizuna__V1__SendKind kind, const char *to)
{
    Kizuna__V1__SendRequest req = KIZUNA__V1__SEND_REQUEST__INIT;
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = "11111111-1111-4111-8111-111111111111";
    env.tenant_id = "acme";
    env.channel_id = "1234567890";
    env.occurred_at = 1700000000000;
    req.envelope = &env;
    req.request_id = "22222222-2222-5222-8222-222222222222";
    req.kind = kind;
    req.to = (char *)to;
    char *users[] = {"U1", "U2", "U3"};
    if (kind == KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST) {
        req.recipients = users;
        req.n_recipients = 3;
    }
    req.origin_type = "step";
    req.origin_id = "step-9";
    uint8_t buf[512];
    size_t len = kizuna__v1__send_request__pack(&req, buf);
    char errstr[128];
    struct delivery *d = delivery_from_bytes(buf, len, NULL, errstr, sizeof errstr);
    cr_assert_not_null(d, "%s", errstr);
    return d;
}

static Kizuna__V1__DeliveryResult *unpack(const struct delivery_record *r)
{
    Kizuna__V1__DeliveryResult *dr = kizuna__v1__delivery_result__unpack(NULL, r->len, r->payload);
    cr_assert_not_null(dr);
    return dr;
}

Test(dispatcher_results, a_sent_push_is_keyed_by_recipient_and_counts_its_quota)
{
    struct delivery *d = delivery_of(KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH, "Uabc");
    d->attempts = 2;
    d->first_attempt_ms = 1700000000100;
    d->reserved = true;
    d->reserved_cost = 1;
    d->reserved_month = 1698764400;
    struct delivery_record *r = results_final(d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT,
                                              NULL, NULL, 1700000000200);
    cr_assert_not_null(r);
    cr_expect_eq(r->type, DELIVERY_RECORD_FINAL);
    cr_expect_str_eq(r->key, "1234567890:Uabc");
    cr_expect_eq(r->quota_cost, 1);
    cr_expect_eq(r->quota_month, 1698764400);
    Kizuna__V1__DeliveryResult *dr = unpack(r);
    cr_expect_eq(dr->status, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT);
    cr_expect_str_eq(dr->request_id, d->request_id);
    cr_expect_str_eq(dr->to, "Uabc");
    cr_expect_eq(dr->attempts, 2);
    cr_expect_eq(dr->recipient_count, 1);
    cr_expect_eq(dr->requested_at, 1700000000000);
    cr_expect_eq(dr->first_attempt_at, 1700000000100);
    cr_expect_eq(dr->finished_at, 1700000000200);
    cr_expect_str_eq(dr->origin_type, "step");
    cr_expect_str_eq(dr->origin_id, "step-9");
    cr_expect_str_eq(dr->envelope->tenant_id, "acme");
    cr_expect_str_eq(dr->envelope->channel_id, "1234567890");
    cr_expect_str_eq(dr->envelope->causation_id, "11111111-1111-4111-8111-111111111111");
    cr_expect_eq(strlen(dr->envelope->event_id), 36);

    /* The same request decided again is the same event. */
    struct delivery_record *again = results_final(
        d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT, NULL, NULL, 1700000009999);
    Kizuna__V1__DeliveryResult *dr2 = unpack(again);
    cr_expect_str_eq(dr2->envelope->event_id, dr->envelope->event_id);
    kizuna__v1__delivery_result__free_unpacked(dr2, NULL);
    delivery_record_free(again);
    kizuna__v1__delivery_result__free_unpacked(dr, NULL);
    delivery_record_free(r);
    delivery_free(d);
}

Test(dispatcher_results, a_multicast_is_keyed_by_request_and_counts_its_recipients)
{
    struct delivery *d = delivery_of(KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST, "");
    struct delivery_record *r =
        results_final(d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_QUOTA_EXCEEDED, NULL,
                      "monthly quota exceeded", 1700000000200);
    cr_assert_not_null(r);
    cr_expect_str_eq(r->key, "1234567890:22222222-2222-5222-8222-222222222222");
    cr_expect_eq(r->quota_cost, 0, "nothing was counted");
    cr_expect_str_eq(r->error_message, "monthly quota exceeded");
    Kizuna__V1__DeliveryResult *dr = unpack(r);
    cr_expect_eq(dr->status, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_QUOTA_EXCEEDED);
    cr_expect_eq(dr->recipient_count, 3);
    cr_expect_str_eq(dr->to, "");
    cr_expect_str_eq(dr->error_message, "monthly quota exceeded");
    kizuna__v1__delivery_result__free_unpacked(dr, NULL);
    delivery_record_free(r);
    delivery_free(d);
}

Test(dispatcher_results, lines_answer_is_carried_and_wins_over_the_reason)
{
    struct delivery *d = delivery_of(KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH, "Uabc");
    d->attempts = 1;
    static const char body[] = "{\"message\":\"The request body has 1 error(s)\",\"details\":"
                               "[{\"message\":\"Length must be between 0 and 5000\","
                               "\"property\":\"messages[0].text\"}]}";
    struct line_response resp = {
        .kind = KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH,
        .transport = LINE_TRANSPORT_OK,
        .status = 400,
        .request_id = "req-1",
        .body = body,
        .body_len = sizeof body - 1,
    };
    struct line_result res;
    cr_assert_eq(line_result_classify(&resp, &res), 0);
    struct delivery_record *r = results_final(d, res.status, &res, "not used", 1700000000200);
    cr_assert_not_null(r);
    cr_expect_eq(r->http_status, 400);
    cr_expect_str_eq(r->line_request_id, "req-1");
    cr_expect_str_eq(r->error_message, "The request body has 1 error(s)");
    cr_assert_not_null(r->error_details_json);
    cr_expect(strstr(r->error_details_json, "messages[0].text"));
    Kizuna__V1__DeliveryResult *dr = unpack(r);
    cr_expect_eq(dr->status, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED);
    cr_expect_eq(dr->n_error_details, 1);
    kizuna__v1__delivery_result__free_unpacked(dr, NULL);
    delivery_record_free(r);
    line_result_clear(&res);
    delivery_free(d);
}

Test(dispatcher_results, a_retry_record_carries_the_next_time)
{
    struct delivery *d = delivery_of(KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH, "Uabc");
    d->attempts = 3;
    struct delivery_record *r = results_retry(d, NULL, 1700000005000);
    cr_assert_not_null(r);
    cr_expect_eq(r->type, DELIVERY_RECORD_RETRY);
    cr_expect_eq(r->attempts, 3);
    cr_expect_eq(r->next_attempt_ms, 1700000005000);
    cr_expect_null(r->payload);
    delivery_record_free(r);
    delivery_free(d);
}

/* Requests no result can be produced for, or whose text PostgreSQL would
 * refuse (which would fail their whole intake batch on every retry). */
struct bad_request {
    const char *name;
    const char *request_id;
    const char *to;
    const char *tenant;
    const char *origin_id;
};

#define GOOD_ID "22222222-2222-5222-8222-222222222222"

static const struct bad_request bad_requests[] = {
    {"no request_id", "", "U1", "acme", "o"},
    {"request_id over 64 bytes",
     "0123456789012345678901234567890123456789012345678901234567890123456789", "U1", "acme", "o"},
    {"request_id not UTF-8", "req-\xff\xfe", "U1", "acme", "o"},
    {"request_id with a truncated sequence", "req-\xe3\x81", "U1", "acme", "o"},
    {"to not UTF-8", GOOD_ID, "U\xc0\xaf", "acme", "o"},
    {"tenant with a surrogate", GOOD_ID, "U1", "acme\xed\xa0\x80", "o"},
    {"origin_id not UTF-8", GOOD_ID, "U1", "acme", "step-\x80"},
};

Test(dispatcher_results, a_request_without_a_usable_request_id_or_text_is_refused)
{
    for (size_t i = 0; i < sizeof bad_requests / sizeof bad_requests[0]; i++) {
        const struct bad_request *b = &bad_requests[i];
        Kizuna__V1__SendRequest req = KIZUNA__V1__SEND_REQUEST__INIT;
        Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
        env.tenant_id = (char *)b->tenant;
        req.envelope = &env;
        req.request_id = (char *)b->request_id;
        req.to = (char *)b->to;
        req.origin_id = (char *)b->origin_id;
        req.kind = KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH;
        uint8_t buf[256];
        size_t len = kizuna__v1__send_request__pack(&req, buf);
        char errstr[256] = "";
        cr_expect_null(delivery_from_bytes(buf, len, "1", errstr, sizeof errstr), "%s", b->name);
        cr_expect(errstr[0], "%s: a reason", b->name);
    }
    /* The same request with good text is taken. */
    Kizuna__V1__SendRequest req = KIZUNA__V1__SEND_REQUEST__INIT;
    req.request_id = GOOD_ID;
    req.to = "U\xe3\x81\x82";
    req.kind = KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH;
    uint8_t buf[256];
    size_t len = kizuna__v1__send_request__pack(&req, buf);
    char errstr[256] = "";
    struct delivery *d = delivery_from_bytes(buf, len, "1", errstr, sizeof errstr);
    cr_expect_not_null(d, "%s", errstr);
    delivery_free(d);
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};
    cr_expect_null(delivery_from_bytes(garbage, sizeof garbage, "1", errstr, sizeof errstr));
}
