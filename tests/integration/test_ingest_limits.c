/* kizuna-ingest refuses, at the edge, a webhook event that Kafka could never
 * take (issue 9, poison records): a signed webhook whose one event packs to
 * a record over KAFKA_RECORD_MAX_BYTES is answered 413 with a clear error
 * and leaves nothing in the spool, while one just under the limit is
 * answered 200 and arrives on line.webhook whole. Before, the first was
 * answered 200, spooled, and stopped the spool's relay for every tenant.
 * The binary runs on its own ports (public 18210, admin 18211). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"
#include "kafka.h"
#include "kizuna/v1/webhook.pb-c.h"
#include "log.h"

#define PUBLIC_PORT 18210
#define ADMIN_PORT 18211
#define BOT_USER "U8e742f61d673b39c7fff3cecb7536ef0"
#define PAD_MARK "limit-padding-"

static pid_t ingest_pid;
static char ingest_log[256];
static char tenant[64];
static char channel[32];
static char secret[65];

static void ingest_start(void)
{
    log_init("test-ingest-limits", LOG_WARN);
    snprintf(tenant, sizeof tenant, "t-limits-%ld", (long)getpid());
    snprintf(ingest_log, sizeof ingest_log, "%s/tests/ingest-limits-%ld.log", itest_build_dir(),
             (long)getpid());
    char public_port[48], admin_port[48];
    snprintf(public_port, sizeof public_port, "INGEST_PUBLIC_PORT=%d", PUBLIC_PORT);
    snprintf(admin_port, sizeof admin_port, "INGEST_ADMIN_PORT=%d", ADMIN_PORT);
    const char *settings[] = {ITEST_SIM_INGEST_SETTING, public_port, admin_port, "LOG_LEVEL=info",
                              NULL};
    itest_sim_start("ingest-limits");
    ingest_pid = itest_service_spawn("ingest", settings, ingest_log);
    cr_assert(itest_http_wait_ready(ADMIN_PORT, 45000),
              "kizuna-ingest did not become ready; see %s", ingest_log);
    itest_random_hex(secret, 16);
    itest_unique_digits(channel, sizeof channel, '7');
    itest_ingest_channel_register(ADMIN_PORT, tenant, channel, secret);
}

/* The last step of every test, part of its verdict: SIGTERM, exit 0, and a
 * log without a sanitizer report, the secret, or the event's bytes. */
static void ingest_finish(void)
{
    cr_assert_gt(ingest_pid, 0, "kizuna-ingest was stopped before the end of the test");
    itest_service_stop(&ingest_pid, ingest_log);
    itest_sim_stop();
    const char *const forbidden[] = {secret, PAD_MARK, NULL};
    itest_log_expect_clean(ingest_log, forbidden);
}

static void ingest_reap(void)
{
    itest_service_reap(&ingest_pid);
    itest_sim_reap();
}

TestSuite(ingest_limits, .init = ingest_start, .fini = ingest_reap, .timeout = 120);

/* A signed body of one event of a type ingest does not map (kept whole, as
 * raw JSON) carrying pad bytes of padding; the caller frees it. */
static char *big_body(const char *event_id, size_t pad, size_t *len)
{
    size_t cap = pad + 1024;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    int head = snprintf(body, cap,
                        "{\"destination\":\"%s\",\"events\":[{\"type\":\"x-large\","
                        "\"webhookEventId\":\"%s\",\"timestamp\":1700000000123,"
                        "\"source\":{\"type\":\"user\",\"userId\":\"U%032d\"},\"pad\":\"" PAD_MARK,
                        BOT_USER, event_id, 7);
    size_t off = (size_t)head;
    for (size_t i = strlen(PAD_MARK); i < pad; i++)
        body[off++] = 'p';
    off += (size_t)snprintf(body + off, cap - off, "\"}]}");
    *len = off;
    return body;
}

static long post_signed(const char *body, size_t len, struct itest_http *res)
{
    char url[128], sig[64], h[160];
    itest_line_sign(secret, body, len, sig);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/line/webhook/%s", PUBLIC_PORT, channel);
    snprintf(h, sizeof h, "x-line-signature: %s", sig);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    return itest_http_do("POST", url, headers, body, len, res);
}

static long spool_rows(void)
{
    struct db *db = itest_db_connect_env("INGEST_DATABASE_URL");
    char pattern[64];
    snprintf(pattern, sizeof pattern, "%s:%%", channel);
    const char *v[] = {pattern};
    char *n = itest_query_text(
        db, "SELECT count(*) FROM spool WHERE convert_from(key, 'UTF8') LIKE $1", 1, v);
    long rows = strtol(n, NULL, 10);
    free(n);
    db_free(&db);
    return rows;
}

struct arrival {
    const char *id;
    size_t len; /* of the record's value, once found */
    size_t raw_len;
    bool found;
};

static enum kafka_handled arrival_handle(void *ctx, const struct kafka_message *msg)
{
    struct arrival *a = ctx;
    Kizuna__V1__WebhookEvent *ev = kizuna__v1__webhook_event__unpack(NULL, msg->len, msg->value);
    if (ev && strcmp(ev->webhook_event_id, a->id) == 0) {
        a->found = true;
        a->len = msg->len + msg->keylen;
        a->raw_len = strlen(ev->raw_json);
    }
    if (ev)
        kizuna__v1__webhook_event__free_unpacked(ev, NULL);
    return KAFKA_DONE;
}

static bool arrival_done(void *ctx)
{
    return ((struct arrival *)ctx)->found;
}

Test(ingest_limits, an_event_too_large_for_kafka_is_refused_with_413_and_one_just_under_arrives)
{
    char over_id[64], under_id[64];
    itest_unique_name(over_id, sizeof over_id, "over");
    itest_unique_name(under_id, sizeof under_id, "under");

    /* The raw JSON alone is over the record limit: it cannot fit. */
    size_t len = 0;
    char *body = big_body(over_id, KAFKA_RECORD_MAX_BYTES + 100, &len);
    cr_assert_lt(len, 1024 * 1024, "the body itself stays under the HTTP cap");
    struct itest_http r;
    long status = post_signed(body, len, &r);
    free(body);
    cr_expect_eq(status, 413, "an event over the record limit: %ld %s", status, r.body);
    json_t *err = r.json ? json_object_get(r.json, "error") : NULL;
    cr_expect_str_eq(json_string_value(json_object_get(err, "code")), "event_too_large", "%s",
                     r.body);
    const char *message = json_string_value(json_object_get(err, "message"));
    cr_expect(message && strstr(message, "events[0]") && strstr(message, "1000000"),
              "the error names the event and the limit: %s", r.body);
    itest_http_free(&r);
    cr_expect_eq(spool_rows(), 0, "the refused event was spooled");

    /* 1,000 bytes of padding under: key, envelope and fields fit in what
     * is left. */
    body = big_body(under_id, KAFKA_RECORD_MAX_BYTES - 1000, &len);
    status = post_signed(body, len, &r);
    free(body);
    cr_expect_eq(status, 200, "an event just under the record limit: %ld %s", status, r.body);
    itest_http_free(&r);
    struct arrival a = {.id = under_id};
    itest_topic_read("line.webhook", arrival_handle, arrival_done, &a, 30000);
    cr_expect(a.found, "the event just under the limit did not arrive on line.webhook");
    cr_expect_leq(a.len, KAFKA_RECORD_MAX_BYTES, "record of %zu bytes", a.len);
    cr_expect_gt(a.len, KAFKA_RECORD_MAX_BYTES - 2000, "record of %zu bytes: not just under",
                 a.len);
    cr_expect_gt(a.raw_len, KAFKA_RECORD_MAX_BYTES - 1000, "raw JSON kept whole");
    ingest_finish();
}
