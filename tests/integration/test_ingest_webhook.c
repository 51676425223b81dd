/* kizuna-ingest's public port against the real local stack: the binary is
 * started on its own ports (public 18180, admin 18181), a channel is
 * registered through the admin API, and webhooks are signed with its secret.
 * LINE's documented signature vector is accepted; a signed message event
 * arrives on line.webhook under `<channel>:<user>` and decodes to the right
 * WebhookEvent; every bad input of issue 3 gets its precise status, nothing
 * of it reaches Kafka, and the service stays healthy; tracked links redirect
 * only for valid tokens and record the click on `inbound`.
 * Each test uses fresh channel ids and looks only at its own keys. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "itest.h"
#include "kafka.h"
#include "kizuna/v1/inbound.pb-c.h"
#include "kizuna/v1/webhook.pb-c.h"
#include "link_token.h"
#include "log.h"

#define PUBLIC_PORT 18180
#define ADMIN_PORT 18181
#define CONSUME_TIMEOUT_MS 30000
#define BODY_CAP (1024 * 1024)
#define LINE_SECRET "8c570fa6dd201bb328f1c1eac23a96d8"
#define LINE_BODY "{\"destination\":\"U8e742f61d673b39c7fff3cecb7536ef0\",\"events\":[]}"
#define LINE_SIGNATURE "GhRKmvmHys4Pi8DxkF4+EayaH0OqtJtaZxgTD9fMDLs="
#define BOT_USER "U8e742f61d673b39c7fff3cecb7536ef0"

/* --- process ---------------------------------------------------------------- */

static pid_t ingest_pid;
static char ingest_log[256];
static char tenant[64];
static char channel[32];      /* registered with a random secret */
static char line_channel[32]; /* registered with LINE's documented secret */
static char secret[65];

/* --- HTTP ----------------------------------------------------------------- */

/* POSTs body to the webhook of ch with signature header sig (NULL: none). */
static long post_webhook(const char *ch, const char *header_name, const char *sig, const void *body,
                         size_t len, struct itest_http *res)
{
    char url[128], h[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/line/webhook/%s", PUBLIC_PORT, ch);
    const char *headers[3] = {"Content-Type: application/json", NULL, NULL};
    if (sig) {
        snprintf(h, sizeof h, "%s: %s", header_name ? header_name : "x-line-signature", sig);
        headers[1] = h;
    }
    return itest_http_do("POST", url, headers, body, len, res);
}

static void ingest_start(void)
{
    log_init("test-ingest-webhook", LOG_WARN);
    itest_env("INGEST_DATABASE_URL");
    itest_env("KIZUNA_JWT_KEY");
    snprintf(tenant, sizeof tenant, "t-ingest-%ld", (long)getpid());
    snprintf(ingest_log, sizeof ingest_log, "%s/tests/ingest-webhook-%ld.log", itest_build_dir(),
             (long)getpid());
    char public_port[48], admin_port[48];
    snprintf(public_port, sizeof public_port, "INGEST_PUBLIC_PORT=%d", PUBLIC_PORT);
    snprintf(admin_port, sizeof admin_port, "INGEST_ADMIN_PORT=%d", ADMIN_PORT);
    const char *settings[] = {ITEST_SIM_INGEST_SETTING, public_port, admin_port, "LOG_LEVEL=info",
                              NULL};
    itest_sim_start("ingest-webhook");
    ingest_pid = itest_service_spawn("ingest", settings, ingest_log);
    cr_assert(itest_http_wait_ready(ADMIN_PORT, 45000),
              "kizuna-ingest did not become ready; see %s", ingest_log);

    itest_random_hex(secret, 16);
    itest_unique_digits(channel, sizeof channel, '7');
    itest_unique_digits(line_channel, sizeof line_channel, '7');
    itest_ingest_channel_register(ADMIN_PORT, tenant, channel, secret);
    itest_ingest_channel_register(ADMIN_PORT, tenant, line_channel, LINE_SECRET);
}

/* The last step of every test, part of its verdict: SIGTERM, exit 0 within
 * 10 s, and a log with no sanitizer report and no channel secret or message
 * body in it. */
static void ingest_finish(void)
{
    cr_assert_gt(ingest_pid, 0, "kizuna-ingest was stopped before the end of the test");
    itest_service_stop(&ingest_pid, ingest_log);
    itest_sim_stop();
    const char *const forbidden[] = {secret, "private-text-", NULL};
    itest_log_expect_clean(ingest_log, forbidden);
}

/* Only for a test that ended early (it has failed already): no checks. */
static void ingest_reap(void)
{
    itest_service_reap(&ingest_pid);
    itest_sim_reap();
}

TestSuite(ingest_webhook, .init = ingest_start, .fini = ingest_reap, .timeout = 90);

/* --- Kafka ------------------------------------------------------------------ */

#define FOUND_MAX 64

struct found {
    char prefix[64];     /* records whose key starts with this are ours */
    const char *stop_id; /* stop once a record carries this webhookEventId / link id */
    bool inbound;        /* records are InboundEvent, not WebhookEvent */
    bool stopped;
    size_t n;
    struct {
        char key[160];
        uint8_t *value;
        size_t len;
    } recs[FOUND_MAX];
};

static enum kafka_handled found_handle(void *ctx, const struct kafka_message *msg)
{
    struct found *f = ctx;
    size_t pl = strlen(f->prefix);
    if (msg->keylen < pl || memcmp(msg->key, f->prefix, pl) != 0 || f->n >= FOUND_MAX)
        return KAFKA_DONE;
    size_t kl = msg->keylen < 159 ? msg->keylen : 159;
    memcpy(f->recs[f->n].key, msg->key, kl);
    f->recs[f->n].key[kl] = '\0';
    f->recs[f->n].value = malloc(msg->len ? msg->len : 1);
    cr_assert_not_null(f->recs[f->n].value);
    memcpy(f->recs[f->n].value, msg->value, msg->len);
    f->recs[f->n].len = msg->len;
    f->n++;
    if (f->stop_id) {
        if (f->inbound) {
            Kizuna__V1__InboundEvent *ev =
                kizuna__v1__inbound_event__unpack(NULL, msg->len, msg->value);
            if (ev && ev->event_case == KIZUNA__V1__INBOUND_EVENT__EVENT_LINK_CLICKED &&
                strcmp(ev->link_clicked->link_id, f->stop_id) == 0)
                f->stopped = true;
            if (ev)
                kizuna__v1__inbound_event__free_unpacked(ev, NULL);
        } else {
            Kizuna__V1__WebhookEvent *ev =
                kizuna__v1__webhook_event__unpack(NULL, msg->len, msg->value);
            if (ev && strcmp(ev->webhook_event_id, f->stop_id) == 0)
                f->stopped = true;
            if (ev)
                kizuna__v1__webhook_event__free_unpacked(ev, NULL);
        }
    }
    return KAFKA_DONE;
}

static bool found_stopped(void *ctx)
{
    return ((const struct found *)ctx)->stopped;
}

/* Reads topic from the beginning until f->stop_id is seen (or timeout). */
static void consume_until(const char *topic, struct found *f, long timeout_ms)
{
    itest_topic_read(topic, found_handle, found_stopped, f, timeout_ms);
}

static void found_free(struct found *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->recs[i].value);
    f->n = 0;
}

/* --- bodies ----------------------------------------------------------------- */

/* One text message event from user, compact, in LINE's key order. */
static void message_event(char *out, size_t cap, const char *event_id, const char *user,
                          const char *text)
{
    snprintf(out, cap,
             "{\"type\":\"message\",\"message\":{\"type\":\"text\",\"id\":\"468789577898262530\","
             "\"quoteToken\":\"q3Plxr4AgKd\",\"text\":\"%s\"},\"webhookEventId\":\"%s\","
             "\"deliveryContext\":{\"isRedelivery\":false},\"timestamp\":1700000000123,"
             "\"source\":{\"type\":\"user\",\"userId\":\"%s\"},"
             "\"replyToken\":\"b60d432864f44d079f6d8efe86cf404b\",\"mode\":\"active\"}",
             text, event_id, user);
}

static void webhook_body(char *out, size_t cap, const char *events)
{
    snprintf(out, cap, "{\"destination\":\"%s\",\"events\":[%s]}", BOT_USER, events);
}

/* --- the documented vector and a real event ---------------------------------- */

Test(ingest_webhook, line_documented_signature_vector_is_accepted)
{
    char sig[64];
    itest_line_sign(LINE_SECRET, LINE_BODY, strlen(LINE_BODY), sig);
    cr_assert_str_eq(sig, LINE_SIGNATURE, "our HMAC disagrees with LINE's documented example");
    struct itest_http r;
    long status = post_webhook(line_channel, "x-line-signature", LINE_SIGNATURE, LINE_BODY,
                               strlen(LINE_BODY), &r);
    cr_expect_eq(status, 200, "LINE's Verify body: %ld %s", status, r.body);
    itest_http_free(&r);
    ingest_finish();
}

Test(ingest_webhook, signed_message_event_arrives_on_line_webhook_with_its_key)
{
    char event_id[64], user[40], text[64], event[1024], body[2048], sig[64];
    itest_unique_digits(event_id, sizeof event_id, '7');
    memmove(event_id + 2, event_id, strlen(event_id) + 1);
    memcpy(event_id, "01", 2);
    snprintf(user, sizeof user, "U");
    itest_random_hex(user + 1, 16);
    snprintf(text, sizeof text, "private-text-%s", event_id);
    message_event(event, sizeof event, event_id, user, text);
    webhook_body(body, sizeof body, event);
    itest_line_sign(secret, body, strlen(body), sig);

    struct itest_http r;
    long t0 = itest_now_ms();
    /* The header name is case-insensitive. */
    long status = post_webhook(channel, "X-LINE-Signature", sig, body, strlen(body), &r);
    long took = itest_now_ms() - t0;
    cr_assert_eq(status, 200, "%ld %s", status, r.body);
    itest_http_free(&r);
    cr_expect_lt(took, 1000, "acknowledged with the broker up in %ld ms", took);

    struct found f = {.stop_id = event_id};
    snprintf(f.prefix, sizeof f.prefix, "%s:", channel);
    consume_until("line.webhook", &f, CONSUME_TIMEOUT_MS);
    cr_assert(f.stopped, "the event did not arrive on line.webhook");
    cr_expect_eq(f.n, 1, "exactly one record for the channel, got %zu", f.n);
    char want_key[128];
    snprintf(want_key, sizeof want_key, "%s:%s", channel, user);
    cr_expect_str_eq(f.recs[f.n - 1].key, want_key);

    Kizuna__V1__WebhookEvent *ev =
        kizuna__v1__webhook_event__unpack(NULL, f.recs[f.n - 1].len, f.recs[f.n - 1].value);
    cr_assert_not_null(ev, "the record is not a WebhookEvent");
    cr_assert_not_null(ev->envelope);
    cr_expect_str_eq(ev->envelope->tenant_id, tenant);
    cr_expect_str_eq(ev->envelope->channel_id, channel);
    cr_expect_eq(strlen(ev->envelope->event_id), 36, "event_id is a UUID: %s",
                 ev->envelope->event_id);
    cr_expect_eq(ev->envelope->occurred_at, 1700000000123LL);
    cr_expect_str_eq(ev->destination, BOT_USER);
    cr_expect_str_eq(ev->webhook_event_id, event_id);
    cr_expect_eq(ev->is_redelivery, 0);
    cr_expect_eq(ev->timestamp, 1700000000123LL);
    cr_expect_eq(ev->mode, KIZUNA__V1__EVENT_MODE__EVENT_MODE_ACTIVE);
    cr_assert_not_null(ev->source);
    cr_expect_eq(ev->source->type, KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_USER);
    cr_expect_str_eq(ev->source->user_id, user);
    cr_expect_str_eq(ev->reply_token, "b60d432864f44d079f6d8efe86cf404b");
    cr_expect_str_eq(ev->type, "message");
    cr_expect_str_eq(ev->raw_json, event, "raw_json is the event as sent");
    cr_expect_gt(ev->received_at, 0);
    cr_assert_eq(ev->event_case, KIZUNA__V1__WEBHOOK_EVENT__EVENT_MESSAGE);
    cr_expect_str_eq(ev->message->id, "468789577898262530");
    cr_assert_eq(ev->message->content_case, KIZUNA__V1__MESSAGE_CONTENT__CONTENT_TEXT);
    cr_expect_str_eq(ev->message->text->text, text);
    cr_expect_str_eq(ev->message->text->quote_token, "q3Plxr4AgKd");
    kizuna__v1__webhook_event__free_unpacked(ev, NULL);
    found_free(&f);

    /* Counted by type, and the ack time observed. */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", ADMIN_PORT);
    cr_assert_eq(itest_http_do("GET", url, NULL, NULL, 0, &r), 200);
    cr_expect(strstr(r.body, "kizuna_ingest_events_total{type=\"message\"} 1") != NULL,
              "events by type");
    cr_expect(strstr(r.body, "kizuna_ingest_time_to_ack_seconds_count{outcome=\"acked\"} 1") !=
                  NULL,
              "time-to-ack histogram");
    cr_expect(strstr(r.body, "kizuna_ingest_spool_depth") != NULL, "spool depth gauge");
    itest_http_free(&r);
    ingest_finish();
}

/* LINE redelivers an event it is unsure about (deliveryContext.isRedelivery,
 * same webhookEventId). One ingest made durable recently is answered 200
 * and not produced again; the new events of the same request are. */
Test(ingest_webhook, redelivered_event_is_answered_200_and_produced_once)
{
    char first_id[64], new_id[64], last_id[64], user[40];
    char first[1024], again[1024], fresh[1024], last[1024], list[2200], body[4096], sig[64];
    snprintf(user, sizeof user, "U");
    itest_random_hex(user + 1, 16);
    const char *ids[] = {first_id, new_id, last_id};
    for (size_t i = 0; i < 3; i++) {
        char *id = (char *)ids[i];
        snprintf(id, 64, "01DUP%zu", i);
        itest_unique_digits(id + strlen(id), 64 - strlen(id), '7');
    }
    /* One user, so that all records share a partition and come in order. */
    message_event(first, sizeof first, first_id, user, "first");
    message_event(again, sizeof again, first_id, user, "first");
    char *flag = strstr(again, "\"isRedelivery\":false");
    cr_assert_not_null(flag);
    memcpy(flag, "\"isRedelivery\":true ", strlen("\"isRedelivery\":false"));
    message_event(fresh, sizeof fresh, new_id, user, "new");
    message_event(last, sizeof last, last_id, user, "last");

    const char *requests[][2] = {{first, NULL}, {again, fresh}, {again, NULL}, {last, NULL}};
    for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
        if (requests[i][1])
            snprintf(list, sizeof list, "%s,%s", requests[i][0], requests[i][1]);
        else
            snprintf(list, sizeof list, "%s", requests[i][0]);
        webhook_body(body, sizeof body, list);
        itest_line_sign(secret, body, strlen(body), sig);
        struct itest_http r;
        long status = post_webhook(channel, NULL, sig, body, strlen(body), &r);
        cr_assert_eq(status, 200, "request %zu: %ld %s", i, status, r.body);
        itest_http_free(&r);
    }

    struct found f = {.stop_id = last_id};
    snprintf(f.prefix, sizeof f.prefix, "%s:", channel);
    consume_until("line.webhook", &f, CONSUME_TIMEOUT_MS);
    cr_assert(f.stopped, "the last event did not arrive on line.webhook");
    int seen_first = 0, seen_new = 0;
    for (size_t i = 0; i < f.n; i++) {
        Kizuna__V1__WebhookEvent *ev =
            kizuna__v1__webhook_event__unpack(NULL, f.recs[i].len, f.recs[i].value);
        cr_assert_not_null(ev);
        seen_first += strcmp(ev->webhook_event_id, first_id) == 0;
        seen_new += strcmp(ev->webhook_event_id, new_id) == 0;
        kizuna__v1__webhook_event__free_unpacked(ev, NULL);
    }
    cr_expect_eq(seen_first, 1, "the redelivered event was produced %d times", seen_first);
    cr_expect_eq(seen_new, 1, "the new event of the redelivery was produced %d times", seen_new);
    cr_expect_eq(f.n, 3, "records for the channel: %zu, want 3", f.n);
    found_free(&f);

    char url[128];
    struct itest_http r;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", ADMIN_PORT);
    cr_assert_eq(itest_http_do("GET", url, NULL, NULL, 0, &r), 200);
    cr_expect(strstr(r.body, "kizuna_ingest_duplicates_suppressed_total 2") != NULL,
              "two suppressed duplicates counted");
    cr_expect(strstr(r.body, "kizuna_ingest_events_total{type=\"message\"} 3") != NULL,
              "each event counted once");
    itest_http_free(&r);
    ingest_finish();
}

/* --- bad input ---------------------------------------------------------------- */

enum body_kind { B_VALID, B_TRUNCATED, B_BAD_UTF8, B_EMPTY, B_ARRAY, B_PRETTY, B_2MIB, B_CHUNKED };
enum sig_kind { S_VALID, S_NONE, S_WRONG, S_NOT_BASE64, S_OTHER_BODY, S_OF_COMPACT };

struct bad_case {
    const char *name;
    const char *method;
    enum body_kind body;
    enum sig_kind sig;
    bool unknown_channel;
    long want;
    const char *want_code; /* the error code in the JSON answer, or NULL */
};

static const struct bad_case bad_cases[] = {
    {"no signature", "POST", B_VALID, S_NONE, false, 401, "bad_signature"},
    {"wrong signature", "POST", B_VALID, S_WRONG, false, 401, "bad_signature"},
    {"signature not base64", "POST", B_VALID, S_NOT_BASE64, false, 401, "bad_signature"},
    {"another body's signature", "POST", B_VALID, S_OTHER_BODY, false, 401, "bad_signature"},
    {"signature over re-serialised JSON", "POST", B_PRETTY, S_OF_COMPACT, false, 401,
     "bad_signature"},
    {"truncated JSON", "POST", B_TRUNCATED, S_VALID, false, 400, "bad_request"},
    {"invalid UTF-8", "POST", B_BAD_UTF8, S_VALID, false, 400, "bad_request"},
    {"2 MiB body", "POST", B_2MIB, S_VALID, false, 413, "body_too_large"},
    {"chunked body growing past the cap", "POST", B_CHUNKED, S_VALID, false, 413, NULL},
    {"GET instead of POST", "GET", B_EMPTY, S_NONE, false, 405, "method_not_allowed"},
    {"unknown channel", "POST", B_VALID, S_VALID, true, 404, "unknown_channel"},
    {"empty body", "POST", B_EMPTY, S_VALID, false, 400, "bad_request"},
    {"body not an object", "POST", B_ARRAY, S_VALID, false, 400, "bad_request"},
};

/* Sends a chunked upload that grows by 64 KiB chunks up to 2 MiB and
 * returns the status the server answered with as soon as it did, and how
 * much it had been sent by then. */
static long post_chunked_growing(const char *ch, const char *sig, size_t *sent_out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PUBLIC_PORT)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "POST /line/webhook/%s HTTP/1.1\r\nHost: t\r\nContent-Type: "
                      "application/json\r\nx-line-signature: %s\r\nTransfer-Encoding: "
                      "chunked\r\n\r\n",
                      ch, sig);
    cr_assert_eq(send(fd, head, (size_t)hl, MSG_NOSIGNAL), hl);
    static char chunk[65536 + 32];
    int cl = snprintf(chunk, sizeof chunk, "10000\r\n");
    memset(chunk + cl, ' ', 65536);
    memcpy(chunk + cl + 65536, "\r\n", 2);
    size_t chunk_len = (size_t)cl + 65538;
    size_t sent = 0;
    long status = 0;
    char resp[1024];
    for (int i = 0; i < 32 && status == 0; i++) {
        ssize_t n = send(fd, chunk, chunk_len, MSG_NOSIGNAL);
        if (n > 0)
            sent += (size_t)n;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, n > 0 ? 20 : 2000) > 0) {
            ssize_t r = recv(fd, resp, sizeof resp - 1, 0);
            if (r > 12) {
                resp[r] = '\0';
                status = strtol(resp + 9, NULL, 10);
            }
            break;
        }
        if (n <= 0)
            break;
    }
    close(fd);
    *sent_out = sent;
    return status;
}

Test(ingest_webhook, bad_input_gets_its_status_and_nothing_reaches_kafka)
{
    char user[40], unknown[32], event[1024], body[2048], other[2048], pretty[2048];
    snprintf(user, sizeof user, "U");
    itest_random_hex(user + 1, 16);
    itest_unique_digits(unknown, sizeof unknown, '7');
    message_event(event, sizeof event, "01BADINPUT0000000000000000", user, "private-text-bad");
    webhook_body(body, sizeof body, event);
    webhook_body(other, sizeof other, "");
    /* The same JSON re-serialised with spaces: equal as data, not as bytes. */
    snprintf(pretty, sizeof pretty, "{ \"destination\": \"%s\", \"events\": [ %s ] }", BOT_USER,
             event);

    char *big = malloc(2 * BODY_CAP + 1);
    cr_assert_not_null(big);
    int bl = snprintf(big, 2 * BODY_CAP, "{\"destination\":\"%s\",\"events\":[%s],\"pad\":\"",
                      BOT_USER, event);
    memset(big + bl, 'x', 2 * BODY_CAP - (size_t)bl - 2);
    memcpy(big + 2 * BODY_CAP - 2, "\"}", 2);

    char health[128];
    snprintf(health, sizeof health, "http://127.0.0.1:%d/healthz", PUBLIC_PORT);
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        const char *b = body;
        size_t len = strlen(body);
        char bad_utf8[2048];
        switch (c->body) {
        case B_VALID:
            break;
        case B_TRUNCATED:
            len -= 7;
            break;
        case B_BAD_UTF8: {
            char ev2[1024];
            message_event(ev2, sizeof ev2, "01BADUTF8", user, "private-text-\xff\xfe");
            webhook_body(bad_utf8, sizeof bad_utf8, ev2);
            b = bad_utf8;
            len = strlen(bad_utf8);
            break;
        }
        case B_EMPTY:
            b = "";
            len = 0;
            break;
        case B_ARRAY:
            b = "[{\"destination\":\"x\",\"events\":[]}]";
            len = strlen(b);
            break;
        case B_PRETTY:
            b = pretty;
            len = strlen(pretty);
            break;
        case B_2MIB:
        case B_CHUNKED:
            b = big;
            len = 2 * BODY_CAP;
            break;
        }
        char sig[64];
        const char *sigp = sig;
        switch (c->sig) {
        case S_VALID:
            itest_line_sign(secret, b, len, sig);
            break;
        case S_NONE:
            sigp = NULL;
            break;
        case S_WRONG: {
            uint8_t junk[CRYPTO_SHA256_LEN];
            cr_assert_eq(crypto_random(junk, sizeof junk), 0);
            crypto_base64_encode(junk, sizeof junk, sig, sizeof sig);
            break;
        }
        case S_NOT_BASE64:
            snprintf(sig, sizeof sig, "not base64 at all!");
            break;
        case S_OTHER_BODY:
            itest_line_sign(secret, other, strlen(other), sig);
            break;
        case S_OF_COMPACT:
            itest_line_sign(secret, body, strlen(body), sig);
            break;
        }
        const char *ch = c->unknown_channel ? unknown : channel;

        long status;
        struct itest_http r = {0};
        if (c->body == B_CHUNKED) {
            size_t sent = 0;
            status = post_chunked_growing(ch, sig, &sent);
            cr_expect_lt(sent, (size_t)BODY_CAP + 4 * 65536,
                         "%s: the server read %zu bytes before answering", c->name, sent);
        } else if (strcmp(c->method, "GET") == 0) {
            char url[128];
            snprintf(url, sizeof url, "http://127.0.0.1:%d/line/webhook/%s", PUBLIC_PORT, ch);
            status = itest_http_do("GET", url, NULL, NULL, 0, &r);
            cr_expect_str_eq(r.allow, "POST", "%s: Allow header", c->name);
        } else {
            status = post_webhook(ch, "x-line-signature", sigp, b, len, &r);
        }
        cr_expect_eq(status, c->want, "%s: status %ld, want %ld (%s)", c->name, status, c->want,
                     r.body ? r.body : "");
        if (c->want_code && r.body) {
            char code[96];
            snprintf(code, sizeof code, "\"code\":\"%s\"", c->want_code);
            cr_expect(strstr(r.body, code) != NULL, "%s: answer %s lacks %s", c->name, r.body,
                      code);
        }
        itest_http_free(&r);
        cr_expect_eq(itest_http_get_status(health, NULL), 200, "%s: /healthz after the case",
                     c->name);
    }
    free(big);

    /* A valid event for the same key after all of them: once it is read,
     * anything the bad cases had produced (same key, same partition, earlier)
     * would have been read too. */
    char sentinel[64];
    snprintf(sentinel, sizeof sentinel, "01SENTINEL%s", channel);
    message_event(event, sizeof event, sentinel, user, "private-text-sentinel");
    webhook_body(body, sizeof body, event);
    char sig[64];
    itest_line_sign(secret, body, strlen(body), sig);
    struct itest_http r;
    cr_assert_eq(post_webhook(channel, NULL, sig, body, strlen(body), &r), 200, "%s", r.body);
    itest_http_free(&r);

    struct found f = {.stop_id = sentinel};
    snprintf(f.prefix, sizeof f.prefix, "%s:", channel);
    consume_until("line.webhook", &f, CONSUME_TIMEOUT_MS);
    cr_assert(f.stopped, "the sentinel event did not arrive");
    cr_expect_eq(f.n, 1, "only the sentinel reached Kafka for the channel; got %zu records", f.n);
    found_free(&f);
    struct found g = {0};
    snprintf(g.prefix, sizeof g.prefix, "%s:", unknown);
    consume_until("line.webhook", &g, 3000);
    cr_expect_eq(g.n, 0, "nothing for the unknown channel");
    found_free(&g);

    /* Signature failures are counted per channel and reason. */
    char url[128], want[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", ADMIN_PORT);
    cr_assert_eq(itest_http_do("GET", url, NULL, NULL, 0, &r), 200);
    static const struct {
        const char *reason;
        int n;
    } failures[] = {{"missing", 1}, {"malformed", 1}, {"mismatch", 3}};
    for (size_t i = 0; i < sizeof failures / sizeof failures[0]; i++) {
        snprintf(want, sizeof want,
                 "kizuna_ingest_signature_failures_total{channel=\"%s\",reason=\"%s\"} %d", channel,
                 failures[i].reason, failures[i].n);
        cr_expect(strstr(r.body, want) != NULL, "metrics lack %s", want);
    }
    itest_http_free(&r);
    ingest_finish();
}

/* --- tracked links ------------------------------------------------------------ */

static void link_key(uint8_t out[CRYPTO_KEY_LEN])
{
    uint8_t data[CRYPTO_KEY_LEN];
    const char *lk = getenv("KIZUNA_LINK_KEY");
    if (lk && *lk) {
        cr_assert_eq(crypto_key_from_hex(lk, out), 0);
        return;
    }
    cr_assert_eq(crypto_key_from_hex(itest_env("KIZUNA_DATA_KEY"), data), 0);
    link_token_key_derive(data, out);
}

Test(ingest_webhook, tracked_link_redirects_valid_tokens_only_and_records_the_click)
{
    uint8_t key[CRYPTO_KEY_LEN];
    link_key(key);
    struct link_token t;
    memset(&t, 0, sizeof t);
    snprintf(t.tenant_id, sizeof t.tenant_id, "%s", tenant);
    snprintf(t.channel_id, sizeof t.channel_id, "%s", channel);
    itest_unique_digits(t.link_id, sizeof t.link_id, '7');
    snprintf(t.friend_user_id, sizeof t.friend_user_id, "U");
    itest_random_hex(t.friend_user_id + 1, 16);
    snprintf(t.target_url, sizeof t.target_url, "https://example.com/landing?c=%s", t.link_id);
    t.expires_at = (int64_t)time(NULL) + 3600;
    char tok[LINK_TOKEN_TEXT_MAX];
    cr_assert_gt(link_token_sign(key, &t, tok, sizeof tok), 0);

    char url[LINK_TOKEN_TEXT_MAX + 64];
    struct itest_http r;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/r/%s", PUBLIC_PORT, tok);
    cr_assert_eq(itest_http_do("GET", url, NULL, NULL, 0, &r), 302, "%s", r.body);
    cr_expect_str_eq(r.location, t.target_url);
    cr_expect_str_eq(r.referrer_policy, "no-referrer");
    itest_http_free(&r);

    struct found f = {.stop_id = t.link_id, .inbound = true};
    snprintf(f.prefix, sizeof f.prefix, "%s:", channel);
    consume_until("inbound", &f, CONSUME_TIMEOUT_MS);
    cr_assert(f.stopped, "LinkClicked did not arrive on inbound");
    char want_key[128];
    snprintf(want_key, sizeof want_key, "%s:%s", channel, t.friend_user_id);
    cr_expect_str_eq(f.recs[f.n - 1].key, want_key);
    Kizuna__V1__InboundEvent *ev =
        kizuna__v1__inbound_event__unpack(NULL, f.recs[f.n - 1].len, f.recs[f.n - 1].value);
    cr_assert_not_null(ev);
    cr_expect_str_eq(ev->envelope->tenant_id, tenant);
    cr_expect_str_eq(ev->envelope->channel_id, channel);
    cr_expect_eq(strlen(ev->envelope->event_id), 36);
    cr_expect_gt(ev->envelope->occurred_at, 0);
    cr_expect_str_eq(ev->link_clicked->friend_user_id, t.friend_user_id);
    cr_expect_str_eq(ev->link_clicked->target_url, t.target_url);
    cr_expect_str_eq(ev->link_clicked->user_agent, "kizuna-test/1");
    kizuna__v1__inbound_event__free_unpacked(ev, NULL);
    found_free(&f);

    /* Bad tokens: 400, and never a Location. */
    struct link_token expired = t;
    expired.expires_at = (int64_t)time(NULL) - 5;
    char exp_tok[LINK_TOKEN_TEXT_MAX], tampered[LINK_TOKEN_TEXT_MAX],
        truncated[LINK_TOKEN_TEXT_MAX], foreign[LINK_TOKEN_TEXT_MAX];
    cr_assert_gt(link_token_sign(key, &expired, exp_tok, sizeof exp_tok), 0);
    snprintf(tampered, sizeof tampered, "%s", tok);
    tampered[10] = tampered[10] == 'A' ? 'B' : 'A';
    snprintf(truncated, sizeof truncated, "%.*s", (int)strlen(tok) - 3, tok);
    uint8_t other[CRYPTO_KEY_LEN];
    memcpy(other, key, sizeof other);
    other[0] ^= 1;
    cr_assert_gt(link_token_sign(other, &t, foreign, sizeof foreign), 0);
    const char *bad[] = {exp_tok, tampered, truncated, foreign, "", "not-a-token"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d/r/%s", PUBLIC_PORT, bad[i]);
        cr_expect_eq(itest_http_do("GET", url, NULL, NULL, 0, &r), 400, "bad token %zu: %s", i,
                     r.body);
        cr_expect_str_eq(r.location, "", "bad token %zu redirected to %s", i, r.location);
        itest_http_free(&r);
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d/r/%s", PUBLIC_PORT, tok);
    cr_expect_eq(itest_http_do("POST", url, NULL, "", 0, &r), 405);
    itest_http_free(&r);
    ingest_finish();
}
