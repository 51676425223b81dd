/* The ready-made outbox relay (common/outbox_relay.h) against the real local
 * stack: a kick publishes at once what a committed transaction enqueued, in
 * order; a stop publishes what is left within its budget; and the depth
 * and relayed metrics tell the truth. Each test gets a scratch schema with
 * segmentation's own migrations and a topic of its own. The relay's idle
 * wait is set to a minute, so that anything published within the test's
 * few seconds was published by the kick or the stop under test. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "itest.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "outbox_relay.h"

#define MIGRATIONS "services/segmentation/migrations"
#define IDLE_MS 60000
#define N 300

static struct db *admin;
static struct db *scratch_db;
static char scratch[64];
static char *scratch_url;
static char topic[100];
static struct kafka_producer *producer;

static void setup(void)
{
    log_init("test-outbox-relay", LOG_WARN);
    const char *url = itest_env("SEGMENTATION_DATABASE_URL");
    admin = itest_db_connect(itest_env("KIZUNA_PG_ADMIN_URL"));
    struct db *owner = itest_db_connect(url);
    snprintf(scratch, sizeof scratch, "kz_test_relay_%ld", (long)getpid());
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

    itest_unique_name(topic, sizeof topic, "kizuna.test.relay");
    struct topic_spec spec = {.partitions = 1, .retention_ms = 3600000, .cleanup = "delete"};
    snprintf(spec.name, sizeof spec.name, "%s", topic);
    cr_assert_geq(
        kafka_topics_apply(itest_env("KAFKA_BROKERS"), &spec, 1, 10000, errstr, sizeof errstr), 0,
        "%s", errstr);
    producer = itest_producer_new("test-outbox-relay");
}

static void teardown(void)
{
    kafka_producer_free(&producer);
    db_free(&scratch_db);
    itest_schema_drop(admin, scratch);
    db_free(&admin);
    free(scratch_url);
    scratch_url = NULL;
    metrics_free_all();
}

TestSuite(outbox_relay, .init = setup, .fini = teardown, .timeout = 90);

/* Enqueues rows first..first+n-1 ("row-<i>") in one committed transaction. */
static void rows_enqueue(int first, int n)
{
    cr_assert_eq(db_begin(scratch_db), DB_OK);
    for (int i = first; i < first + n; i++) {
        char payload[32];
        int len = snprintf(payload, sizeof payload, "row-%d", i);
        cr_assert_eq(outbox_enqueue(scratch_db, topic, "k", 1, payload, (size_t)len), DB_OK, "%s",
                     db_error_message(scratch_db));
    }
    cr_assert_eq(db_commit(scratch_db), DB_OK, "%s", db_error_message(scratch_db));
}

static long outbox_rows(void)
{
    char *v = itest_query_text(scratch_db, "SELECT count(*) FROM outbox", 0, NULL);
    long n = strtol(v, NULL, 10);
    free(v);
    return n;
}

static bool outbox_empty_within(long ms)
{
    long until = itest_now_ms() + ms;
    while (itest_now_ms() < until) {
        if (outbox_rows() == 0)
            return true;
        usleep(20 * 1000);
    }
    return outbox_rows() == 0;
}

struct reading {
    int n;
    int out_of_order;
};

static enum kafka_handled reading_handle(void *ctx, const struct kafka_message *msg)
{
    struct reading *r = ctx;
    char want[32];
    int len = snprintf(want, sizeof want, "row-%d", r->n);
    if (msg->len != (size_t)len || memcmp(msg->value, want, msg->len) != 0)
        r->out_of_order++;
    r->n++;
    return KAFKA_DONE;
}

static bool reading_done(void *ctx)
{
    return ((struct reading *)ctx)->n >= N;
}

/* Every row on the topic exactly once, in enqueue order. */
static void topic_expect_rows_in_order(void)
{
    struct reading r = {0};
    itest_topic_read(topic, reading_handle, reading_done, &r, 30000);
    cr_expect_eq(r.n, N, "%d records on the topic, want %d", r.n, N);
    cr_expect_eq(r.out_of_order, 0, "%d records out of order", r.out_of_order);
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

static struct outbox_relay *relay_start(void)
{
    char errstr[512];
    struct outbox_relay *r =
        outbox_relay_start(&(struct outbox_relay_options){.name = "itest-relay",
                                                          .dsn = scratch_url,
                                                          .producer = producer,
                                                          .metrics = "itest_outbox",
                                                          .batch = 100,
                                                          .idle_ms = IDLE_MS},
                           errstr, sizeof errstr);
    cr_assert_not_null(r, "outbox_relay_start: %s", errstr);
    return r;
}

Test(outbox_relay, a_kick_publishes_what_was_committed_in_order)
{
    struct outbox_relay *r = relay_start();
    usleep(300 * 1000); /* its first round found nothing: it idles for a minute now */
    rows_enqueue(0, N);
    long kicked = itest_now_ms();
    outbox_relay_kick(r);
    cr_assert(outbox_empty_within(10000), "%ld rows left 10 s after the kick", outbox_rows());
    long took = itest_now_ms() - kicked;
    outbox_relay_stop(&r, 1000);
    cr_expect_null(r, "stop clears the caller's pointer");
    topic_expect_rows_in_order();
    cr_expect_eq(metric_value("itest_outbox_relayed_total"), N);
    cr_expect_eq(metric_value("itest_outbox_depth"), 0);
    cr_log_info("kick to empty outbox: %ld ms for %d rows", took, N);
}

Test(outbox_relay, a_stop_publishes_what_is_left_within_its_budget)
{
    struct outbox_relay *r = relay_start();
    usleep(300 * 1000);
    rows_enqueue(0, N); /* no kick: only the stop's drain can publish them */
    usleep(300 * 1000);
    cr_assert_eq(outbox_rows(), N, "published without a kick or a stop");
    outbox_relay_stop(&r, 10000);
    cr_expect_eq(outbox_rows(), 0, "%ld rows left after the stop", outbox_rows());
    topic_expect_rows_in_order();
}

Test(outbox_relay, a_table_that_is_not_there_fails_at_start)
{
    char errstr[512] = "";
    struct outbox_relay *r = outbox_relay_start(
        &(struct outbox_relay_options){
            .dsn = scratch_url, .producer = producer, .table = "no_such_table"},
        errstr, sizeof errstr);
    cr_expect_null(r);
    cr_expect(strstr(errstr, "no_such_table") != NULL, "errstr names the table: %s", errstr);
    outbox_relay_stop(&r, 0);
}
