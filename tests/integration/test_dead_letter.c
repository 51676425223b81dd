/* Poison records (issue 9) against the real local stack: a row the broker
 * can never take no longer stops an outbox relay for ever. librdkafka
 * refuses a record over its message.max.bytes for good, and the relay moves
 * such a row, and one a topic refuses as too large, to dead_letter, while
 * the rows in front of and behind it are published in order; the metric
 * counts them; and kizuna-ingest lists its spool's dead letters to the
 * tenant's admin only. Relay tests run in a scratch schema made by
 * segmentation's own migrations, on topics of their own. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "db.h"
#include "itest.h"
#include "kafka.h"
#include "kizuna/v1/webhook.pb-c.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "outbox_relay.h"

#define MIGRATIONS "services/segmentation/migrations"
#define PUBLIC_PORT 18200
#define ADMIN_PORT 18201
/* Over librdkafka's limit: refused before it is queued. */
#define HUGE_BYTES (KAFKA_PRODUCER_MESSAGE_MAX_BYTES + 60000)
/* The small topic's max.message.bytes, and a record it refuses. */
#define SMALL_TOPIC_MAX 10000
#define OVER_SMALL_BYTES 20000
#define GOOD_ROWS 15
#define PADDING_MARK "poison-padding-"

static struct db *admin;
static struct db *scratch_db;
static char scratch[64];
static char *scratch_url;
static char topic[100];       /* the manifest's default limit */
static char small_topic[100]; /* max.message.bytes SMALL_TOPIC_MAX */
static struct kafka_producer *producer;
static pid_t ingest_pid;
static char ingest_log[256];

static void topic_create(char *name, size_t cap, const char *prefix, long long max_bytes)
{
    char errstr[512];
    itest_unique_name(name, cap, prefix);
    struct topic_spec spec = {.partitions = 1,
                              .retention_ms = 3600000,
                              .cleanup = "delete",
                              .max_message_bytes = max_bytes};
    snprintf(spec.name, sizeof spec.name, "%s", name);
    cr_assert_geq(
        kafka_topics_apply(itest_env("KAFKA_BROKERS"), &spec, 1, 10000, errstr, sizeof errstr), 0,
        "%s", errstr);
}

static void setup(void)
{
    log_init("test-dead-letter", LOG_WARN);
    const char *url = itest_env("SEGMENTATION_DATABASE_URL");
    admin = itest_db_connect(itest_env("KIZUNA_PG_ADMIN_URL"));
    struct db *owner = itest_db_connect(url);
    snprintf(scratch, sizeof scratch, "kz_test_dead_%ld", (long)getpid());
    itest_schema_create(admin, owner, scratch);
    char errstr[256];
    cr_assert_geq(db_migrate(owner, scratch, MIGRATIONS, errstr, sizeof errstr), 1,
                  "segmentation migrations: %s (run the tests from the repository root)", errstr);
    db_free(&owner);
    size_t cap = strlen(url) + 128;
    scratch_url = malloc(cap);
    snprintf(scratch_url, cap, "%s%coptions=-csearch_path%%3D%s", url, strchr(url, '?') ? '&' : '?',
             scratch);
    scratch_db = itest_db_connect(scratch_url);
    topic_create(topic, sizeof topic, "kizuna.test.dead", 0);
    topic_create(small_topic, sizeof small_topic, "kizuna.test.dead-small", SMALL_TOPIC_MAX);
    producer = itest_producer_new("test-dead-letter");
}

static void teardown(void)
{
    itest_service_reap(&ingest_pid);
    kafka_producer_free(&producer);
    db_free(&scratch_db);
    itest_schema_drop(admin, scratch);
    db_free(&admin);
    free(scratch_url);
    scratch_url = NULL;
    metrics_free_all();
}

TestSuite(dead_letter, .init = setup, .fini = teardown, .timeout = 120);

/* --- records ----------------------------------------------------------------- */

/* A packed WebhookEvent of tenant, with event_id and a raw_json of about
 * bytes bytes; the caller frees *out. */
static size_t event_pack(const char *tenant, const char *event_id, size_t bytes, uint8_t **out)
{
    Kizuna__V1__WebhookEvent we = KIZUNA__V1__WEBHOOK_EVENT__INIT;
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = (char *)event_id;
    env.tenant_id = (char *)tenant;
    env.channel_id = "700000000000000001";
    we.envelope = &env;
    we.type = "x-poison";
    we.webhook_event_id = (char *)event_id;
    char *raw = malloc(bytes + 1);
    cr_assert_not_null(raw);
    size_t mark = strlen(PADDING_MARK);
    for (size_t i = 0; i < bytes; i++)
        raw[i] = i < mark ? PADDING_MARK[i] : 'p';
    raw[bytes] = '\0';
    we.raw_json = raw;
    size_t len = kizuna__v1__webhook_event__get_packed_size(&we);
    *out = malloc(len);
    cr_assert_not_null(*out);
    kizuna__v1__webhook_event__pack(&we, *out);
    free(raw);
    return len;
}

static void row_insert(struct db *db, const char *table, const char *to, const char *key,
                       const void *payload, size_t len)
{
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO %s (topic, key, payload) VALUES ($1, $2, $3)", table);
    const char *values[] = {to, key, payload};
    const int lengths[] = {0, (int)strlen(key), (int)len};
    const int binary[] = {0, 1, 1};
    cr_assert_eq(db_execv(db, sql, 3, values, lengths, binary, false, NULL), DB_OK, "%s",
                 db_error_message(db));
}

static void good_row(int i)
{
    char payload[32];
    int len = snprintf(payload, sizeof payload, "row-%d", i);
    row_insert(scratch_db, "outbox", small_topic, "k", payload, (size_t)len);
}

static long count_of(struct db *db, const char *sql, int n, const char *const *values)
{
    char *v = itest_query_text(db, sql, n, values);
    long count = v ? strtol(v, NULL, 10) : -1;
    free(v);
    return count;
}

static bool count_within(struct db *db, const char *sql, int n, const char *const *values,
                         long want, long ms)
{
    for (long until = itest_now_ms() + ms; itest_now_ms() < until; usleep(50 * 1000))
        if (count_of(db, sql, n, values) == want)
            return true;
    return count_of(db, sql, n, values) == want;
}

/* The good rows as the topic holds them. A row published again (the relay
 * keeps rows after one it had to send alone) is a duplicate, which inboxes
 * absorb; a row before its predecessor, or anything else, is out of order. */
struct reading {
    int n; /* distinct rows seen, in order: row-0 .. row-(n-1) */
    int duplicates;
    int out_of_order;
};

static enum kafka_handled reading_handle(void *ctx, const struct kafka_message *msg)
{
    struct reading *r = ctx;
    char text[32];
    size_t len = msg->len < sizeof text - 1 ? msg->len : sizeof text - 1;
    memcpy(text, msg->value, len);
    text[len] = '\0';
    char *end = NULL;
    long i = strncmp(text, "row-", 4) == 0 ? strtol(text + 4, &end, 10) : -1;
    if (i < 0 || !end || *end != '\0' || i > r->n)
        r->out_of_order++;
    else if (i < r->n)
        r->duplicates++;
    else
        r->n++;
    return KAFKA_DONE;
}

static bool reading_done(void *ctx)
{
    return ((struct reading *)ctx)->n >= GOOD_ROWS;
}

static double metric_value(const char *series)
{
    size_t len = 0;
    char *text = metrics_render(&len);
    cr_assert_not_null(text);
    double v = -1;
    for (char *line = strstr(text, series); line; line = strstr(line + 1, series))
        if ((line == text || line[-1] == '\n') && line[strlen(series)] == ' ') {
            v = strtod(line + strlen(series) + 1, NULL);
            break;
        }
    free(text);
    return v;
}

/* --- the producer's verdicts ------------------------------------------------------ */

Test(dead_letter, a_record_over_the_producer_limit_is_refused_for_good)
{
    size_t len = HUGE_BYTES;
    char *value = calloc(1, len);
    cr_assert_not_null(value);
    struct kafka_ack *ack = NULL;
    cr_expect_eq(kafka_produce(producer, topic, "k", 1, value, len, &ack), KAFKA_FAILED_PERMANENT);
    cr_expect_null(ack);
    cr_expect_str_eq(kafka_produce_error(), "MSG_SIZE_TOO_LARGE");
    free(value);

    /* A record the topic refuses reaches the broker, whose verdict is final too. */
    value = calloc(1, OVER_SMALL_BYTES);
    cr_assert_eq(kafka_produce(producer, small_topic, "k", 1, value, OVER_SMALL_BYTES, &ack), 0);
    cr_expect_str_eq(kafka_produce_error(), "");
    cr_expect_eq(kafka_ack_wait(ack, 20000), KAFKA_FAILED_PERMANENT);
    cr_expect_str_eq(kafka_ack_error(ack), "MSG_SIZE_TOO_LARGE");
    kafka_ack_release(&ack);
    free(value);

    /* And the producer goes on working. */
    cr_assert_eq(kafka_produce(producer, small_topic, "k", 1, "fine", 4, &ack), 0);
    cr_expect_eq(kafka_ack_wait(ack, 20000), 0);
    cr_expect_str_eq(kafka_ack_error(ack), "");
    kafka_ack_release(&ack);
}

/* --- the relay ------------------------------------------------------------------------ */

Test(dead_letter, rows_the_broker_never_takes_go_aside_and_the_rows_behind_them_are_published)
{
    char tenant[64], id_topic[64], id_producer[64];
    snprintf(tenant, sizeof tenant, "t-dead-%ld", (long)getpid());
    itest_unique_name(id_topic, sizeof id_topic, "over-topic");
    itest_unique_name(id_producer, sizeof id_producer, "over-producer");
    uint8_t *over_topic = NULL, *over_producer = NULL;
    size_t over_topic_len = event_pack(tenant, id_topic, OVER_SMALL_BYTES, &over_topic);
    size_t over_producer_len = event_pack(tenant, id_producer, HUGE_BYTES, &over_producer);

    /* good 0..4, one the topic refuses, good 5..9, one librdkafka refuses,
     * good 10..14: all committed before the relay starts. */
    cr_assert_eq(db_begin(scratch_db), DB_OK);
    for (int i = 0; i < 5; i++)
        good_row(i);
    row_insert(scratch_db, "outbox", small_topic, "k", over_topic, over_topic_len);
    for (int i = 5; i < 10; i++)
        good_row(i);
    row_insert(scratch_db, "outbox", small_topic, "k", over_producer, over_producer_len);
    for (int i = 10; i < GOOD_ROWS; i++)
        good_row(i);
    cr_assert_eq(db_commit(scratch_db), DB_OK);
    free(over_topic);
    free(over_producer);

    char errstr[512];
    struct outbox_relay *r =
        outbox_relay_start(&(struct outbox_relay_options){.name = "itest-dead",
                                                          .dsn = scratch_url,
                                                          .producer = producer,
                                                          .metrics = "itest_dead"},
                           errstr, sizeof errstr);
    cr_assert_not_null(r, "outbox_relay_start: %s", errstr);
    bool emptied = count_within(scratch_db, "SELECT count(*) FROM outbox", 0, NULL, 0, 60000);
    outbox_relay_stop(&r, 1000);
    cr_assert(emptied, "the relay stopped behind a row: %ld rows left",
              count_of(scratch_db, "SELECT count(*) FROM outbox", 0, NULL));

    struct reading rd = {0};
    itest_topic_read(small_topic, reading_handle, reading_done, &rd, 30000);
    cr_expect_eq(rd.n, GOOD_ROWS, "%d good records on the topic, want %d", rd.n, GOOD_ROWS);
    cr_expect_eq(rd.out_of_order, 0, "%d records out of order", rd.out_of_order);
    cr_log_info("%d duplicates of good rows on the topic", rd.duplicates);

    const char *q_topic[] = {id_topic};
    const char *q_producer[] = {id_producer};
    static const char one[] =
        "SELECT count(*) FROM dead_letter WHERE event_id = $1 AND source_table = 'outbox' "
        "AND error = 'MSG_SIZE_TOO_LARGE' AND tenant_id LIKE 't-dead-%' "
        "AND channel_id = '700000000000000001' AND octet_length(payload) > 0";
    cr_expect_eq(count_of(scratch_db, one, 1, q_topic), 1, "the row the topic refused");
    cr_expect_eq(count_of(scratch_db, one, 1, q_producer), 1, "the row librdkafka refused");
    cr_expect_eq(count_of(scratch_db, "SELECT count(*) FROM dead_letter", 0, NULL), 2);
    cr_expect_eq(metric_value("kizuna_outbox_dead_letters_total{table=\"outbox\"}"), 2);
    cr_expect_eq(metric_value("itest_dead_relayed_total"), GOOD_ROWS);
}

/* --- ingest's spool and the admin API ------------------------------------------------- */

static char *token_for(const char *tenant, const char *role)
{
    const char *key = itest_env("KIZUNA_JWT_KEY");
    char *t = auth_token_issue(key, strlen(key), tenant, "itest", role, 600, time(NULL));
    cr_assert_not_null(t);
    return t;
}

static long dead_letters_get(const char *tenant, const char *role, struct itest_http *res)
{
    char url[128], auth[4200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/dead-letters", ADMIN_PORT);
    char *t = token_for(tenant, role);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", t);
    free(t);
    const char *headers[] = {auth, NULL};
    return itest_http_do("GET", url, headers, NULL, 0, res);
}

/* The entry of the listing whose event_id is id, or NULL. */
static json_t *listed(const struct itest_http *res, const char *id)
{
    json_t *list = res->json ? json_object_get(res->json, "dead_letters") : NULL;
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        const char *e = json_string_value(json_object_get(o, "event_id"));
        if (e && strcmp(e, id) == 0)
            return o;
    }
    return NULL;
}

struct seen {
    const char *id;
    bool found;
};

static enum kafka_handled seen_handle(void *ctx, const struct kafka_message *msg)
{
    struct seen *s = ctx;
    Kizuna__V1__WebhookEvent *ev = kizuna__v1__webhook_event__unpack(NULL, msg->len, msg->value);
    if (ev && strcmp(ev->webhook_event_id, s->id) == 0)
        s->found = true;
    if (ev)
        kizuna__v1__webhook_event__free_unpacked(ev, NULL);
    return KAFKA_DONE;
}

static bool seen_done(void *ctx)
{
    return ((struct seen *)ctx)->found;
}

Test(dead_letter, ingest_buries_a_poison_spool_row_and_lists_it_to_the_tenant_admin_only)
{
    snprintf(ingest_log, sizeof ingest_log, "%s/tests/dead-letter-%ld.log", itest_build_dir(),
             (long)getpid());
    char public_port[48], admin_port[48];
    snprintf(public_port, sizeof public_port, "INGEST_PUBLIC_PORT=%d", PUBLIC_PORT);
    snprintf(admin_port, sizeof admin_port, "INGEST_ADMIN_PORT=%d", ADMIN_PORT);
    const char *settings[] = {public_port, admin_port, "LOG_LEVEL=info", NULL};
    ingest_pid = itest_service_spawn("ingest", settings, ingest_log);
    cr_assert(itest_http_wait_ready(ADMIN_PORT, 45000), "kizuna-ingest not ready; see %s",
              ingest_log);

    char tenant[64], other[64], bad_id[64], good_id[64], key[96];
    snprintf(tenant, sizeof tenant, "t-dead-api-%ld", (long)getpid());
    snprintf(other, sizeof other, "t-dead-other-%ld", (long)getpid());
    itest_unique_name(bad_id, sizeof bad_id, "poison");
    itest_unique_name(good_id, sizeof good_id, "behind");
    itest_unique_name(key, sizeof key, "700000000000000001:U");

    /* A poison row in the spool, as the old ingest left one, with a good row
     * behind it. */
    struct db *ingest = itest_db_connect_env("INGEST_DATABASE_URL");
    uint8_t *bad = NULL, *good = NULL;
    size_t bad_len = event_pack(tenant, bad_id, HUGE_BYTES, &bad);
    size_t good_len = event_pack(tenant, good_id, 100, &good);
    cr_assert_eq(db_begin(ingest), DB_OK);
    row_insert(ingest, "spool", "line.webhook", key, bad, bad_len);
    row_insert(ingest, "spool", "line.webhook", key, good, good_len);
    cr_assert_eq(db_commit(ingest), DB_OK);
    free(bad);
    free(good);

    const char *q[] = {bad_id};
    cr_assert(count_within(ingest, "SELECT count(*) FROM dead_letter WHERE event_id = $1", 1, q, 1,
                           20000),
              "the poison row was not moved to ingest.dead_letter; see %s", ingest_log);
    struct seen s = {.id = good_id};
    itest_topic_read("line.webhook", seen_handle, seen_done, &s, 30000);
    cr_expect(s.found, "the row behind the poison never reached line.webhook");

    struct itest_http res;
    cr_expect_eq(dead_letters_get(tenant, "admin", &res), 200, "%s", res.body);
    json_t *o = listed(&res, bad_id);
    cr_expect_not_null(o, "the tenant's admin does not see its dead letter: %s", res.body);
    if (o) {
        cr_expect_str_eq(json_string_value(json_object_get(o, "table")), "spool");
        cr_expect_str_eq(json_string_value(json_object_get(o, "topic")), "line.webhook");
        cr_expect_str_eq(json_string_value(json_object_get(o, "error")), "MSG_SIZE_TOO_LARGE");
        cr_expect_str_eq(json_string_value(json_object_get(o, "tenant_id")), tenant);
        cr_expect_eq(json_integer_value(json_object_get(o, "payload_bytes")), (json_int_t)bad_len);
        cr_expect_null(json_object_get(o, "payload"), "the payload is never listed");
    }
    cr_expect_null(strstr(res.body, PADDING_MARK), "the listing shows payload bytes");
    itest_http_free(&res);

    cr_expect_eq(dead_letters_get(tenant, "operator", &res), 403, "%s", res.body);
    itest_http_free(&res);
    cr_expect_eq(dead_letters_get(other, "admin", &res), 200, "%s", res.body);
    cr_expect_null(listed(&res, bad_id), "another tenant sees the dead letter: %s", res.body);
    itest_http_free(&res);

    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", ADMIN_PORT);
    cr_expect_eq(itest_http_do("GET", url, NULL, NULL, 0, &res), 200);
    cr_expect_not_null(strstr(res.body, "kizuna_outbox_dead_letters_total{table=\"spool\"} "),
                       "no dead letter metric for the spool");
    cr_expect_null(strstr(res.body, "kizuna_outbox_dead_letters_total{table=\"spool\"} 0\n"),
                   "the spool's dead letter was not counted");
    itest_http_free(&res);

    itest_exec_ok(ingest, "DELETE FROM dead_letter WHERE event_id = $1", 1, q);
    db_free(&ingest);
    itest_service_stop(&ingest_pid, ingest_log);
    const char *const forbidden[] = {PADDING_MARK, NULL};
    itest_log_expect_clean(ingest_log, forbidden);
}
