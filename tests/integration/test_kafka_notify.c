/* kafka_produce_notify against the real broker of the local stack: the
 * verdict callback that ingest's async webhook path (services/ingest/
 * ackwait.c) relies on runs exactly once per message, with acked true for
 * what the broker confirmed and false for what it never will (a topic that
 * does not exist, or a message still queued when the producer is freed
 * without a broker), and a refused produce never calls it. The records go
 * to delivery.results with this suite's own keys and are not protobuf:
 * consumers skip them as bad input. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "itest.h"
#include "kafka.h"
#include "log.h"

#define TEST_TOPIC "delivery.results"
#define FLUSH_MS 15000
#define NMSG 50

static void suite_init(void)
{
    log_init("test-kafka-notify", LOG_ERROR);
}

TestSuite(kafka_notify, .init = suite_init, .timeout = 90);

/* One message's verdicts, as the callback saw them. */
struct verdict {
    atomic_int calls;
    atomic_int acked;
    atomic_int failed;
};

static void on_delivered(void *arg, bool acked)
{
    struct verdict *v = arg;
    atomic_fetch_add(&v->calls, 1);
    atomic_fetch_add(acked ? &v->acked : &v->failed, 1);
}

Test(kafka_notify, each_confirmed_message_is_reported_once_as_acked)
{
    static struct verdict v[NMSG];
    struct kafka_producer *p = itest_producer_new("test-kafka-notify");
    char key[128];
    itest_unique_name(key, sizeof key, "itest:notify");
    for (int i = 0; i < NMSG; i++) {
        char value[32];
        snprintf(value, sizeof value, "v%d", i);
        cr_assert_eq(kafka_produce_notify(p, TEST_TOPIC, key, strlen(key), value, strlen(value),
                                          on_delivered, &v[i]),
                     0, "message %d refused", i);
    }
    cr_assert_eq(kafka_producer_flush(p, FLUSH_MS), 0, "not every message got its report");
    for (int i = 0; i < NMSG; i++) {
        cr_expect_eq(atomic_load(&v[i].calls), 1, "message %d: %d reports", i,
                     atomic_load(&v[i].calls));
        cr_expect_eq(atomic_load(&v[i].acked), 1, "message %d was not acked", i);
    }
    kafka_producer_free(&p);
    for (int i = 0; i < NMSG; i++)
        cr_expect_eq(atomic_load(&v[i].calls), 1, "message %d reported again at free", i);
}

Test(kafka_notify, message_to_a_missing_topic_is_reported_failed)
{
    struct verdict v = {0};
    struct kafka_producer *p = itest_producer_new("test-kafka-notify");
    char topic[96];
    itest_unique_name(topic, sizeof topic, "itest.notify.missing");
    /* Queued while the topic's metadata is unknown, then failed for good. */
    int rc = kafka_produce_notify(p, topic, "k", 1, "v", 1, on_delivered, &v);
    if (rc == 0)
        kafka_producer_flush(p, FLUSH_MS);
    kafka_producer_free(&p);
    if (rc == 0) {
        cr_expect_eq(atomic_load(&v.calls), 1);
        cr_expect_eq(atomic_load(&v.failed), 1, "a message to a missing topic was acked");
    } else {
        cr_expect_eq(atomic_load(&v.calls), 0, "a refused message must not be reported");
    }
}

Test(kafka_notify, messages_still_queued_at_free_are_reported_failed)
{
    static struct verdict v[3];
    char err[256];
    struct kafka_producer *p =
        kafka_producer_new("127.0.0.1:1", "test-kafka-notify", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(kafka_produce_notify(p, TEST_TOPIC, "k", 1, "v", 1, on_delivered, &v[i]), 0);
    /* No broker: the free's flush times out and purges, which reports. */
    kafka_producer_free(&p);
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(atomic_load(&v[i].calls), 1, "message %d: %d reports", i,
                     atomic_load(&v[i].calls));
        cr_expect_eq(atomic_load(&v[i].failed), 1, "message %d not reported failed", i);
    }
}

Test(kafka_notify, produce_without_a_callback_is_refused)
{
    struct kafka_producer *p = itest_producer_new("test-kafka-notify");
    cr_expect_eq(kafka_produce_notify(p, TEST_TOPIC, "k", 1, "v", 1, NULL, NULL), -1);
    kafka_producer_free(&p);
}
