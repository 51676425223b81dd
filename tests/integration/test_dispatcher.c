/* kizuna-dispatcher against the LINE simulator on the real stack: every
 * request is delivered exactly once and reported once on delivery.results;
 * an invalid message fails at once with LINE's detail; replies use their
 * token and fall back to a push only when allowed; the monthly quota lets
 * exactly its number of recipients through; a lowered rate limit holds in
 * every one-second window as the simulator measures it; and the admin API
 * is scoped by tenant and refuses bad input field by field. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "itest.h"
#include "kafka.h"
#include "kizuna/v1/delivery.pb-c.h"
#include "test_dispatcher_harness.h"

static void teardown(void)
{
    dh_teardown();
}

TestSuite(dispatcher, .timeout = 120, .fini = teardown);

struct want {
    long accepted;
};

static bool accepted_reached(void *ctx)
{
    const struct want *w = ctx;
    return dh_sim_stat(NULL, "accepted") >= w->accepted;
}

static bool finals_reached(void *ctx)
{
    const long *n = ctx;
    struct dh_counts c;
    dh_counts(&c);
    return c.total >= *n && c.queued == 0 && c.retrying == 0;
}

/* Every recipient of the test channel got exactly one message; returns how
 * many recipients there are. */
static long recipients_each_once(void)
{
    char path[128];
    snprintf(path, sizeof path, "/_sim/messages?channel_id=%s", dh.channel);
    json_t *body = NULL;
    cr_assert_eq(dh_sim("GET", path, NULL, &body), 200);
    json_t *per = json_object_get(json_object_get(body, "recipients"), dh.channel);
    long n = 0;
    const char *user;
    json_t *count;
    json_object_foreach(per, user, count)
    {
        cr_expect_eq(json_integer_value(count), 1, "%s received %lld messages", user,
                     (long long)json_integer_value(count));
        n++;
    }
    json_decref(body);
    return n;
}

/* --- results on Kafka -------------------------------------------------------- */

struct results_seen {
    char (*ids)[40];
    int *count;
    int n;
    int probes;
    int other;
};

static enum kafka_handled on_result(void *ctx, const struct kafka_message *msg)
{
    struct results_seen *rs = ctx;
    Kizuna__V1__DeliveryResult *r =
        kizuna__v1__delivery_result__unpack(NULL, msg->len, (const uint8_t *)msg->value);
    if (!r)
        return KAFKA_DONE;
    if (r->envelope && r->envelope->channel_id &&
        strcmp(r->envelope->channel_id, dh.channel) == 0) {
        if (strncmp(r->request_id, "probe-", 6) == 0) {
            rs->probes++;
        } else if (r->kind == KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH) {
            bool found = false;
            for (int i = 0; i < rs->n; i++)
                if (strcmp(rs->ids[i], r->request_id) == 0) {
                    rs->count[i]++;
                    found = true;
                    cr_expect_eq(r->status, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT);
                    cr_expect_eq(r->attempts, 1);
                    cr_expect(r->line_request_id && r->line_request_id[0]);
                    cr_expect_eq(r->n_sent_messages, 1);
                    cr_expect_eq(r->http_status, 200);
                }
            if (!found)
                rs->other++;
        }
    }
    kizuna__v1__delivery_result__free_unpacked(r, NULL);
    return KAFKA_DONE;
}

Test(dispatcher, delivers_every_request_exactly_once_and_reports_each_result_once)
{
    enum { N = 200 };
    dh_setup("exactly-once");
    char errstr[256];
    char group[96];
    snprintf(group, sizeof group, "itest-results-%s", dh.channel);
    const char *topics[] = {"delivery.results"};
    struct kafka_consumer_options opts = {.brokers = getenv("KAFKA_BROKERS"),
                                          .group = group,
                                          .topics = topics,
                                          .ntopics = 1,
                                          .no_commit = true};
    struct kafka_consumer *results = kafka_consumer_new(&opts, errstr, sizeof errstr);
    cr_assert_not_null(results, "%s", errstr);
    struct kafka_producer *p =
        kafka_producer_new(getenv("KAFKA_BROKERS"), "itest-probe", errstr, sizeof errstr);
    cr_assert_not_null(p, "%s", errstr);
    struct results_seen rs = {.ids = calloc(N, 40), .count = calloc(N, sizeof(int)), .n = N};
    for (long start = dh_monotonic_ms(); rs.probes == 0 && dh_monotonic_ms() - start < 40000;) {
        dh_result_probe(p);
        for (int i = 0; i < 10 && rs.probes == 0; i++)
            kafka_consumer_poll(results, 100, on_result, &rs);
    }
    cr_assert_gt(rs.probes, 0, "the results consumer never got its partitions");

    dh_dispatcher_start(NULL);
    dh_dispatcher_wait_consuming();
    for (int i = 0; i < N; i++) {
        char to[40], text[64];
        snprintf(to, sizeof to, "U%032d", i);
        snprintf(text, sizeof text, "exactly once #%d", i);
        dh_produce_push(to, text, rs.ids[i]);
    }
    dh_flush();

    struct want w = {.accepted = N};
    cr_assert(dh_wait(accepted_reached, &w, 30000), "accepted %lld of %d",
              dh_sim_stat(NULL, "accepted"), N);
    long n = N;
    cr_assert(dh_wait(finals_reached, &n, 20000), "not every delivery reached a final status");
    cr_expect_eq(dh_sim_stat(NULL, "accepted"), N);
    cr_expect_eq(dh_sim_stat(NULL, "duplicate"), 0);
    cr_expect_eq(dh_sim_stat("push", "requests"), N, "one call per request");
    cr_expect_eq(recipients_each_once(), N);
    struct dh_counts c;
    dh_counts(&c);
    cr_expect_eq(c.sent, N);
    cr_expect_eq(c.total, N);

    /* Each request's DeliveryResult, exactly once. */
    int have = 0;
    for (long start = dh_monotonic_ms(); have < N && dh_monotonic_ms() - start < 20000;) {
        kafka_consumer_poll(results, 100, on_result, &rs);
        have = 0;
        for (int i = 0; i < N; i++)
            have += rs.count[i] > 0;
    }
    for (int i = 0; i < 200; i++) /* a little longer: a second copy would show here */
        kafka_consumer_poll(results, 10, on_result, &rs);
    cr_expect_eq(have, N, "results for %d of %d requests", have, N);
    for (int i = 0; i < N; i++)
        cr_expect_leq(rs.count[i], 1, "request %s reported %d times", rs.ids[i], rs.count[i]);
    cr_expect_eq(rs.other, 0);

    /* The same request_id again (a re-derived request) is never sent again. */
    Kizuna__V1__SendRequest req;
    Kizuna__V1__Envelope env;
    dh_request_init(&req, &env, KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH, NULL);
    req.request_id = rs.ids[0];
    char msg[] = "{\"type\":\"text\",\"text\":\"exactly once #0\"}";
    char *msgs[] = {msg};
    req.to = "U00000000000000000000000000000000";
    req.n_messages_json = 1;
    req.messages_json = msgs;
    dh_produce(&req);
    dh_produce_push("Uafter", "after the repeat", NULL);
    dh_flush();
    w.accepted = N + 1;
    cr_assert(dh_wait(accepted_reached, &w, 20000));
    cr_expect_eq(dh_sim_stat("push", "requests"), N + 1, "the repeated request_id was sent");
    cr_expect_eq(dh_sim_stat(NULL, "duplicate"), 0);

    kafka_consumer_free(&results);
    kafka_producer_free(&p);
    free(rs.ids);
    free(rs.count);
    dh_finish();
}

/* --- invalid messages ------------------------------------------------------------ */

static bool delivery_final(void *ctx)
{
    json_t *d = dh_delivery(ctx);
    if (!d)
        return false;
    const char *st = json_string_value(json_object_get(d, "status"));
    bool final = st && strcmp(st, "queued") != 0 && strcmp(st, "retrying") != 0;
    json_decref(d);
    return final;
}

struct invalid_case {
    const char *name;
    int nmessages;
    int text_len;                /* of the first message */
    const char *status;          /* expected */
    int http_status;             /* 0: LINE never called */
    const char *detail_property; /* in error_details, or NULL */
    const char *message_part;    /* in error_message */
};

static const struct invalid_case invalid_cases[] = {
    {"six messages", 6, 10, "invalid", 0, NULL, "at most 5"},
    {"text over 5000 UTF-16 units", 1, 5001, "failed", 400, "messages[0].text", "error"},
    {"no messages", 0, 0, "invalid", 0, NULL, "no messages"},
};

Test(dispatcher, an_invalid_message_fails_fast_with_lines_detail_and_is_not_retried)
{
    dh_setup("invalid");
    dh_dispatcher_start(NULL);
    dh_dispatcher_wait_consuming();
    size_t ncases = sizeof invalid_cases / sizeof invalid_cases[0];
    char ids[8][37];
    for (size_t i = 0; i < ncases; i++) {
        const struct invalid_case *ic = &invalid_cases[i];
        Kizuna__V1__SendRequest req;
        Kizuna__V1__Envelope env;
        dh_request_init(&req, &env, KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH, ids[i]);
        char *msgs[8];
        char *text = malloc((size_t)ic->text_len + 64);
        memset(text, 0, (size_t)ic->text_len + 64);
        memcpy(text, "{\"type\":\"text\",\"text\":\"", 23);
        memset(text + 23, 'a', (size_t)ic->text_len);
        memcpy(text + 23 + ic->text_len, "\"}", 3);
        for (int m = 0; m < ic->nmessages; m++)
            msgs[m] = text;
        req.to = "Uinvalid";
        req.n_messages_json = (size_t)ic->nmessages;
        req.messages_json = msgs;
        dh_produce(&req);
        free(text);
    }
    dh_flush();
    for (size_t i = 0; i < ncases; i++) {
        const struct invalid_case *ic = &invalid_cases[i];
        cr_assert(dh_wait(delivery_final, ids[i], 20000), "%s: no final status", ic->name);
        json_t *d = dh_delivery(ids[i]);
        cr_assert_not_null(d);
        cr_expect_str_eq(json_string_value(json_object_get(d, "status")), ic->status, "%s",
                         ic->name);
        cr_expect_eq(json_integer_value(json_object_get(d, "http_status")), ic->http_status, "%s",
                     ic->name);
        cr_expect_eq(json_integer_value(json_object_get(d, "attempts")), ic->http_status ? 1 : 0,
                     "%s: attempts", ic->name);
        const char *err = json_string_value(json_object_get(d, "error_message"));
        cr_expect(err && strstr(err, ic->message_part), "%s: error_message %s", ic->name,
                  err ? err : "(none)");
        if (ic->detail_property) {
            char *details = json_dumps(json_object_get(d, "error_details"), JSON_COMPACT);
            cr_expect(details && strstr(details, ic->detail_property), "%s: details %s", ic->name,
                      details ? details : "(none)");
            free(details);
        }
        json_decref(d);
    }
    /* Only the over-long text reached LINE, once; nothing was retried. */
    sleep(2);
    cr_expect_eq(dh_sim_stat("push", "requests"), 1);
    cr_expect_eq(dh_sim_stat("push", "rejected"), 1);
    cr_expect_eq(dh_sim_stat(NULL, "accepted"), 0);
    dh_finish();
}

/* Requests whose text PostgreSQL would refuse, produced between good ones:
 * each is dropped as malformed (logged, counted), and the good requests of
 * the same intake batch are all still sent. Before, one such request failed
 * its whole batch on every retry and nothing behind it was ever sent. */
static const struct {
    const char *name;
    const char *request_id; /* NULL: a fresh one */
    const char *to;
} poison_cases[] = {
    {"request_id not UTF-8", "poison-\xff\xfe", "Upoison1"},
    {"recipient not UTF-8", NULL, "U\xc0\xaf"},
    {"recipient with a surrogate", NULL, "U\xed\xa0\x80"},
};

static bool all_pushes_accepted(void *ctx)
{
    return dh_sim_stat("push", "accepted") >= *(long long *)ctx;
}

Test(dispatcher, malformed_text_in_a_request_drops_only_that_request)
{
    dh_setup("poison");
    dh_dispatcher_start(NULL);
    dh_dispatcher_wait_consuming();
    long long before = dh_sim_stat("push", "accepted");
    long long requests_before = dh_sim_stat("push", "requests");
    size_t npoison = sizeof poison_cases / sizeof poison_cases[0];
    char good[8][37];
    size_t ngood = 0;
    for (size_t i = 0; i < npoison; i++) {
        char to[32];
        snprintf(to, sizeof to, "Ugood%zu", i);
        dh_produce_push(to, "before the poison", good[ngood++]);
        Kizuna__V1__SendRequest req;
        Kizuna__V1__Envelope env;
        char rid[37];
        dh_request_init(&req, &env, KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH, rid);
        if (poison_cases[i].request_id)
            req.request_id = (char *)poison_cases[i].request_id;
        req.to = (char *)poison_cases[i].to;
        char *msgs[] = {"{\"type\":\"text\",\"text\":\"poison\"}"};
        req.n_messages_json = 1;
        req.messages_json = msgs;
        dh_produce(&req);
    }
    dh_produce_push("Ugood-last", "after the poison", good[ngood++]);
    dh_flush();
    long long want = before + (long long)ngood;
    cr_assert(dh_wait(all_pushes_accepted, &want, 30000),
              "good pushes behind malformed ones: %lld of %zu sent",
              dh_sim_stat("push", "accepted") - before, ngood);
    for (size_t i = 0; i < ngood; i++) {
        cr_assert(dh_wait(delivery_final, good[i], 20000), "good request %zu: no final status", i);
        json_t *d = dh_delivery(good[i]);
        cr_assert_not_null(d, "good request %zu has no delivery", i);
        cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "sent");
        json_decref(d);
    }
    /* Nothing malformed reached LINE, and the dispatcher is still ready. */
    sleep(1);
    cr_expect_eq(dh_sim_stat("push", "accepted"), want);
    cr_expect_eq(dh_sim_stat("push", "requests"), requests_before + (long long)ngood);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", DH_ADMIN_PORT);
    cr_expect_eq(itest_http_get_status(url, NULL), 200);
    dh_finish();
}

/* --- replies ------------------------------------------------------------------ */

struct reply_case {
    const char *name;
    const char *token; /* registered on the simulator unless NULL */
    long age_ms;       /* the token's age at LINE and in the request */
    bool fallback;
    const char *status;
    bool fell_back;
    const char *endpoint; /* where it went: reply, push, or NULL */
};

static const struct reply_case reply_cases[] = {
    {"fresh token", "rt-fresh", 1000, false, "sent", false, "reply"},
    {"old token, fallback allowed", "rt-old-fb", 55000, true, "sent", true, "push"},
    {"old token, no fallback", "rt-old", 55000, false, "reply_token_expired", false, NULL},
    {"token LINE does not know, fallback allowed", NULL, 1000, true, "sent", true, "push"},
};

Test(dispatcher, a_reply_uses_its_token_and_falls_back_to_push_only_when_allowed)
{
    dh_setup("reply");
    dh_dispatcher_start(NULL);
    dh_dispatcher_wait_consuming();
    size_t n = sizeof reply_cases / sizeof reply_cases[0];
    char ids[8][37];
    long long now_ms = (long long)time(NULL) * 1000;
    for (size_t i = 0; i < n; i++) {
        const struct reply_case *rc = &reply_cases[i];
        char user[32], body[256];
        snprintf(user, sizeof user, "Ureply%zu", i);
        if (rc->token) {
            snprintf(body, sizeof body,
                     "{\"channel_id\":\"%s\",\"reply_token\":\"%s\",\"user_id\":\"%s\","
                     "\"age_ms\":%ld}",
                     dh.channel, rc->token, user, rc->age_ms);
            cr_assert_eq(dh_sim("POST", "/_sim/reply-tokens", body, NULL) / 100, 2);
        }
        Kizuna__V1__SendRequest req;
        Kizuna__V1__Envelope env;
        dh_request_init(&req, &env, KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY, ids[i]);
        char msg[128];
        snprintf(msg, sizeof msg, "{\"type\":\"text\",\"text\":\"reply %zu\"}", i);
        char *msgs[] = {msg};
        req.reply_token = rc->token ? (char *)rc->token : "rt-unknown";
        req.reply_token_issued_at = now_ms - rc->age_ms;
        req.allow_push_fallback = rc->fallback;
        req.to = user;
        req.n_messages_json = 1;
        req.messages_json = msgs;
        dh_produce(&req);
    }
    dh_flush();
    for (size_t i = 0; i < n; i++) {
        const struct reply_case *rc = &reply_cases[i];
        cr_assert(dh_wait(delivery_final, ids[i], 20000), "%s: no final status", rc->name);
        json_t *d = dh_delivery(ids[i]);
        cr_expect_str_eq(json_string_value(json_object_get(d, "status")), rc->status, "%s",
                         rc->name);
        cr_expect_eq(json_is_true(json_object_get(d, "fell_back_to_push")), rc->fell_back, "%s",
                     rc->name);
        json_decref(d);
    }
    cr_expect_eq(dh_sim_stat("reply", "accepted"), 1);
    cr_expect_eq(dh_sim_stat("push", "accepted"), 2);
    cr_expect_eq(dh_sim_stat(NULL, "duplicate"), 0);
    dh_finish();
}

/* --- quota ------------------------------------------------------------------------ */

static bool all_final(void *ctx)
{
    const long *want = ctx;
    struct dh_counts c;
    dh_counts(&c);
    return c.total >= *want && c.queued == 0 && c.retrying == 0;
}

Test(dispatcher, at_the_quota_boundary_exactly_the_allowed_recipients_are_sent)
{
    enum { QUOTA = 25, MULTICAST = 20, PUSHES = 10 };
    dh.monthly_quota = QUOTA;
    dh_setup("quota");
    dh_dispatcher_start(NULL);
    dh_dispatcher_wait_consuming();

    /* First a multicast of 20 (fits), then 10 pushes: 5 fit, 5 do not. */
    Kizuna__V1__SendRequest req;
    Kizuna__V1__Envelope env;
    dh_request_init(&req, &env, KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST, NULL);
    char users[MULTICAST][40];
    char *to[MULTICAST];
    for (int i = 0; i < MULTICAST; i++) {
        snprintf(users[i], sizeof users[i], "Umulti%02d", i);
        to[i] = users[i];
    }
    char msg[] = "{\"type\":\"text\",\"text\":\"multicast within quota\"}";
    char *msgs[] = {msg};
    req.recipients = to;
    req.n_recipients = MULTICAST;
    req.n_messages_json = 1;
    req.messages_json = msgs;
    dh_produce(&req);
    dh_flush();
    long want = 1;
    cr_assert(dh_wait(all_final, &want, 20000));
    for (int i = 0; i < PUSHES; i++) {
        char user[32], text[48];
        snprintf(user, sizeof user, "Upush%02d", i);
        snprintf(text, sizeof text, "push %d at the boundary", i);
        dh_produce_push(user, text, NULL);
    }
    dh_flush();
    want = 1 + PUSHES;
    cr_assert(dh_wait(all_final, &want, 20000));

    struct dh_counts c;
    dh_counts(&c);
    cr_expect_eq(c.sent, 1 + (QUOTA - MULTICAST));
    cr_expect_eq(c.quota_exceeded, PUSHES - (QUOTA - MULTICAST));
    cr_expect_eq(dh_sim_stat(NULL, "deliveries"), QUOTA, "recipients reached");
    cr_expect_eq(dh_sim_stat("push", "requests"), QUOTA - MULTICAST,
                 "an over-quota push must not be attempted");
    cr_expect_eq(dh_sim_stat(NULL, "duplicate"), 0);

    json_t *q = NULL;
    char path[128];
    snprintf(path, sizeof path, "/v1/quota?channel=%s", dh.channel);
    cr_assert_eq(dh_api("GET", path, NULL, &q), 200);
    json_t *row = json_array_get(json_object_get(q, "quota"), 0);
    cr_expect_eq(json_integer_value(json_object_get(row, "used")), QUOTA);
    cr_expect_eq(json_integer_value(json_object_get(row, "limit")), QUOTA);
    cr_expect_eq(json_integer_value(json_object_get(row, "remaining")), 0);
    cr_expect_str_eq(json_string_value(json_object_get(row, "timezone")), "Asia/Tokyo");
    json_decref(q);
    dh_finish();
}

/* --- rate ----------------------------------------------------------------------- */

Test(dispatcher, never_exceeds_a_lowered_rate_limit_in_any_second)
{
    enum { LIMIT = 50, N = 160 };
    dh_setup("rate");
    dh_dispatcher_start(NULL);
    char path[128], body[128];
    snprintf(path, sizeof path, "/v1/channels/%s/limits", dh.channel);
    json_t *resp = NULL;
    cr_assert_eq(dh_api("PATCH", path, "{\"push\": 50}", &resp), 200);
    json_t *push = json_object_get(json_object_get(resp, "limits"), "push");
    cr_expect_eq(json_integer_value(json_object_get(push, "limit")), LIMIT);
    cr_expect(json_is_true(json_object_get(push, "overridden")));
    json_decref(resp);
    /* The platform side enforces the same limit: a slip would show as 429s. */
    snprintf(body, sizeof body, "{\"rate_limits\":{\"push\":%d}}", LIMIT);
    snprintf(path, sizeof path, "/_sim/channels/%s/limits", dh.channel);
    cr_assert_eq(dh_sim("PUT", path, body, NULL), 200);
    dh_dispatcher_wait_consuming();

    long t0 = dh_monotonic_ms();
    for (int i = 0; i < N; i++) {
        char user[32], text[48];
        snprintf(user, sizeof user, "Urate%03d", i);
        snprintf(text, sizeof text, "rate %d", i);
        dh_produce_push(user, text, NULL);
    }
    dh_flush();
    struct want w = {.accepted = N};
    cr_assert(dh_wait(accepted_reached, &w, 30000), "accepted %lld of %d",
              dh_sim_stat(NULL, "accepted"), N);
    long took = dh_monotonic_ms() - t0;
    long long max = dh_sim_stat("push", "max_rate_1s");
    cr_expect_leq(max, LIMIT, "max %lld requests in one second", max);
    cr_expect_geq(max, LIMIT * 8 / 10, "the limit should be used, got %lld/s", max);
    cr_expect_eq(dh_sim_stat("push", "rate_limited"), 0);
    cr_expect_geq(took, (N / LIMIT - 1) * 1000L, "%d sends in %ld ms", N, took);
    cr_expect_eq(dh_sim_stat(NULL, "duplicate"), 0);

    /* Back to LINE's default. */
    snprintf(path, sizeof path, "/v1/channels/%s/limits", dh.channel);
    cr_assert_eq(dh_api("PATCH", path, "{\"push\": null}", &resp), 200);
    push = json_object_get(json_object_get(resp, "limits"), "push");
    cr_expect_eq(json_integer_value(json_object_get(push, "limit")), 2000);
    cr_expect(json_is_false(json_object_get(push, "overridden")));
    json_decref(resp);
    dh_finish();
}

/* Lines of the dispatcher's log that contain what. */
static int log_lines_with(const char *what)
{
    FILE *f = fopen(dh.log_path, "r");
    if (!f)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, what))
            n++;
    fclose(f);
    return n;
}

/* With the sender at its cap (DISPATCHER_MAX_QUEUED), the intake stops
 * taking requests and they wait in Kafka; once the sender drains, it takes
 * them again, and every request is still sent exactly once. */
Test(dispatcher, a_full_sender_pauses_the_intake_and_everything_is_still_sent_once)
{
    enum { FIRST = 300, N = 800 };
    dh_setup("backpressure");
    const char *settings[] = {"DISPATCHER_MAX_QUEUED=100", NULL};
    dh_dispatcher_start(settings);
    char path[128];
    snprintf(path, sizeof path, "/v1/channels/%s/limits", dh.channel);
    cr_assert_eq(dh_api("PATCH", path, "{\"push\": 200}", NULL), 200);
    dh_dispatcher_wait_consuming();
    for (int i = 0; i < N; i++) {
        char user[32], text[48];
        snprintf(user, sizeof user, "Ufull%03d", i);
        snprintf(text, sizeof text, "backpressure %d", i);
        dh_produce_push(user, text, NULL);
        if (i == FIRST - 1) {
            /* The first wave fills the sender; the rest must wait. */
            dh_flush();
            sleep(1);
        }
    }
    dh_flush();
    struct want w = {.accepted = N};
    cr_assert(dh_wait(accepted_reached, &w, 60000), "accepted %lld of %d; see %s",
              dh_sim_stat(NULL, "accepted"), N, dh.log_path);
    cr_expect_geq(log_lines_with("intake paused"), 1, "see %s", dh.log_path);
    cr_expect_geq(log_lines_with("intake resumed"), 1, "see %s", dh.log_path);
    cr_expect_eq(log_lines_with("kafka seek failed"), 0, "see %s", dh.log_path);
    cr_expect_eq(dh_sim_stat(NULL, "duplicate"), 0);
    cr_expect_eq(dh_sim_stat("push", "rate_limited"), 0);
    long n = N;
    cr_assert(dh_wait(finals_reached, &n, 20000), "not every delivery reached a final status");
    struct dh_counts c;
    dh_counts(&c);
    cr_expect_eq(c.sent, N);
    dh_finish();
}

/* --- the admin API's edges ----------------------------------------------------- */

struct bad_request {
    const char *method;
    const char *path; /* "@" stands for the test channel */
    const char *body;
    long status;
    const char *field; /* expected error.field, or NULL */
};

static const struct bad_request bad_requests[] = {
    {"GET", "/v1/deliveries?status=lost", NULL, 400, "status"},
    {"GET", "/v1/deliveries?since=yesterday", NULL, 400, "since"},
    {"GET", "/v1/deliveries?since=2025-13-01T00:00:00Z", NULL, 400, "since"},
    {"GET", "/v1/deliveries?cursor=abc", NULL, 400, "cursor"},
    {"GET", "/v1/deliveries?limit=0", NULL, 400, "limit"},
    {"GET", "/v1/deliveries?limit=501", NULL, 400, "limit"},
    {"GET", "/v1/deliveries?channel=a%20b", NULL, 400, "channel"},
    {"POST", "/v1/deliveries", "{}", 405, NULL},
    {"PATCH", "/v1/channels/@/limits", "{\"push\": 0.5}", 400, "push"},
    {"PATCH", "/v1/channels/@/limits", "{\"push\": -1}", 400, "push"},
    {"PATCH", "/v1/channels/@/limits", "{\"teleport\": 5}", 400, "teleport"},
    {"PATCH", "/v1/channels/@/limits", "{\"push\": {\"limit\": 5, \"color\": 1}}", 400, "push"},
    {"PATCH", "/v1/channels/@/limits", "{\"push\": {\"limit\": 5, \"burst\": 9}}", 400, "push"},
    {"PATCH", "/v1/channels/@/limits", "[1]", 400, NULL},
    {"PATCH", "/v1/channels/@/limits", "{}", 400, NULL},
    {"PATCH", "/v1/channels/@/limits", "not json", 400, NULL},
    {"DELETE", "/v1/channels/@/limits", NULL, 405, NULL},
    {"GET", "/v1/channels/999999999999/limits", NULL, 404, NULL},
    {"GET", "/v1/nothing", NULL, 404, NULL},
};

Test(dispatcher, the_admin_api_refuses_bad_input_and_hides_other_tenants_channels)
{
    dh_setup("api");
    dh_dispatcher_start(NULL);
    for (size_t i = 0; i < sizeof bad_requests / sizeof bad_requests[0]; i++) {
        const struct bad_request *b = &bad_requests[i];
        char path[256];
        const char *at = strchr(b->path, '@');
        if (at)
            snprintf(path, sizeof path, "%.*s%s%s", (int)(at - b->path), b->path, dh.channel,
                     at + 1);
        else
            snprintf(path, sizeof path, "%s", b->path);
        json_t *body = NULL;
        long st = dh_api(b->method, path, b->body, &body);
        cr_expect_eq(st, b->status, "%s %s %s: %ld", b->method, path, b->body ? b->body : "", st);
        if (b->field) {
            const char *field =
                json_string_value(json_object_get(json_object_get(body, "error"), "field"));
            cr_expect(field && strcmp(field, b->field) == 0, "%s %s: field %s", b->method, path,
                      field ? field : "(none)");
        }
        json_decref(body);
    }

    /* Another tenant's token sees nothing of this channel. */
    char saved[sizeof dh.jwt];
    memcpy(saved, dh.jwt, sizeof saved);
    const char *key = getenv("KIZUNA_JWT_KEY");
    char *other =
        auth_token_issue(key, strlen(key), "itest-other", "intruder", "admin", 600, time(NULL));
    snprintf(dh.jwt, sizeof dh.jwt, "%s", other);
    free(other);
    char path[128];
    snprintf(path, sizeof path, "/v1/channels/%s/limits", dh.channel);
    cr_expect_eq(dh_api("GET", path, NULL, NULL), 404);
    cr_expect_eq(dh_api("PATCH", path, "{\"push\": 10}", NULL), 404);
    snprintf(path, sizeof path, "/v1/quota?channel=%s", dh.channel);
    cr_expect_eq(dh_api("GET", path, NULL, NULL), 404);
    /* A viewer of the right tenant may read but not change limits. */
    char *viewer =
        auth_token_issue(key, strlen(key), DH_TENANT, "viewer", "viewer", 600, time(NULL));
    snprintf(dh.jwt, sizeof dh.jwt, "%s", viewer);
    free(viewer);
    snprintf(path, sizeof path, "/v1/channels/%s/limits", dh.channel);
    cr_expect_eq(dh_api("GET", path, NULL, NULL), 200);
    cr_expect_eq(dh_api("PATCH", path, "{\"push\": 10}", NULL), 403);
    memcpy(dh.jwt, saved, sizeof saved);
    /* No token at all. */
    json_t *body = NULL;
    char saved2[sizeof dh.jwt];
    memcpy(saved2, dh.jwt, sizeof saved2);
    snprintf(dh.jwt, sizeof dh.jwt, "x");
    cr_expect_eq(dh_api("GET", "/v1/deliveries", NULL, &body), 401);
    json_decref(body);
    memcpy(dh.jwt, saved2, sizeof saved2);
    dh_finish();
}
