/* common/kafka.c against the real broker of the local stack ($KAFKA_BROKERS):
 * a produce/consume round trip with a confirmed ack, KAFKA_RETRY redelivering
 * the same message, offsets stored only after KAFKA_DONE (a second consumer
 * in the group starts after the committed record), the manifest's topics
 * present, and no auto-creation: producing to a missing topic fails.
 * Each test uses its own random key and consumer group, and looks only for
 * its own records, so runs never disturb each other. The records it writes
 * to TEST_TOPIC are not protobuf: services consuming it must skip them as
 * bad input, which is what they do with any undecodable record. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "kafka.h"
#include "log.h"
#include "topics.h"

#define TEST_TOPIC "delivery.results"
#define ACK_TIMEOUT_MS 15000
#define CONSUME_TIMEOUT_MS 30000

static void suite_init(void)
{
    log_init("test-kafka", LOG_WARN);
}

TestSuite(kafka, .init = suite_init, .timeout = 90);

static struct kafka_producer *producer_new(void)
{
    return itest_producer_new("test-kafka");
}

static void produce_acked(struct kafka_producer *p, const char *key, const char *value)
{
    struct kafka_ack *ack = NULL;
    int rc = kafka_produce(p, TEST_TOPIC, key, strlen(key), value, strlen(value), &ack);
    cr_assert_eq(rc, 0, "kafka_produce to %s refused", TEST_TOPIC);
    cr_assert_not_null(ack);
    int verdict = kafka_ack_wait(ack, ACK_TIMEOUT_MS);
    kafka_ack_release(&ack);
    cr_assert_null(ack, "release must clear the caller's pointer");
    cr_assert_eq(verdict, 0, "the broker did not acknowledge (verdict %d)", verdict);
}

static struct kafka_consumer *consumer_new(const char *group)
{
    return itest_consumer_new(TEST_TOPIC, group, true);
}

/* What a handler saw of this test's records (others are answered DONE). */
struct probe {
    char key[128];
    const char *retry_value; /* answer RETRY for this value (see retries_left) */
    int retries_left;        /* how often; -1: always, and stop there */
    int want;                /* stop after this many of our records */
    int nseen;
    struct {
        int32_t partition;
        int64_t offset;
        char value[128];
        enum kafka_handled answer;
    } seen[8];
    bool done;
};

static enum kafka_handled probe_handle(void *ctx, const struct kafka_message *msg)
{
    struct probe *probe = ctx;
    if (msg->keylen != strlen(probe->key) || memcmp(msg->key, probe->key, msg->keylen) != 0)
        return KAFKA_DONE;
    cr_assert_lt(probe->nseen, 8, "too many deliveries of our records");
    enum kafka_handled answer = KAFKA_DONE;
    char value[128];
    size_t len = msg->len < sizeof value - 1 ? msg->len : sizeof value - 1;
    memcpy(value, msg->value, len);
    value[len] = '\0';
    if (probe->retry_value && strcmp(value, probe->retry_value) == 0 && probe->retries_left != 0) {
        answer = KAFKA_RETRY;
        if (probe->retries_left > 0)
            probe->retries_left--;
        else
            probe->done = true;
    }
    int i = probe->nseen++;
    probe->seen[i].partition = msg->partition;
    probe->seen[i].offset = msg->offset;
    probe->seen[i].answer = answer;
    memcpy(probe->seen[i].value, value, len + 1);
    cr_assert_str_eq(msg->topic, TEST_TOPIC);
    if (probe->nseen >= probe->want)
        probe->done = true;
    return answer;
}

static bool probe_done(void *ctx)
{
    return ((struct probe *)ctx)->done;
}

static void consume_until_done(struct kafka_consumer *c, struct probe *probe)
{
    cr_assert(itest_consumer_poll_until(c, probe_handle, probe_done, probe, CONSUME_TIMEOUT_MS),
              "saw %d of %d expected deliveries of key %s within %d ms", probe->nseen, probe->want,
              probe->key, CONSUME_TIMEOUT_MS);
}

Test(kafka, round_trip_through_the_broker_is_acknowledged_and_consumed)
{
    struct kafka_producer *p = producer_new();
    cr_assert(kafka_producer_ready(p, 10000), "brokers %s do not answer metadata",
              itest_env("KAFKA_BROKERS"));
    struct probe probe = {.want = 1};
    char value[128], group[128];
    itest_unique_name(probe.key, sizeof probe.key, "itest:roundtrip");
    itest_unique_name(value, sizeof value, "payload");
    produce_acked(p, probe.key, value);
    cr_assert_eq(kafka_producer_flush(p, 5000), 0);
    kafka_producer_free(&p);
    cr_assert_null(p);

    itest_unique_name(group, sizeof group, "itest-roundtrip");
    struct kafka_consumer *c = consumer_new(group);
    consume_until_done(c, &probe);
    cr_assert_str_eq(probe.seen[0].value, value);
    cr_assert_geq(probe.seen[0].offset, 0);
    kafka_consumer_close(c);
    kafka_consumer_free(&c);
    cr_assert_null(c);
}

Test(kafka, retry_delivers_the_same_message_again_before_later_ones)
{
    /* Same key, so same partition: `later` must not overtake `value`. */
    struct kafka_producer *p = producer_new();
    char value[128], later[128], group[128];
    struct probe probe = {.want = 4, .retry_value = value, .retries_left = 2};
    itest_unique_name(probe.key, sizeof probe.key, "itest:retry");
    itest_unique_name(value, sizeof value, "payload");
    itest_unique_name(later, sizeof later, "later");
    produce_acked(p, probe.key, value);
    produce_acked(p, probe.key, later);
    kafka_producer_free(&p);

    itest_unique_name(group, sizeof group, "itest-retry");
    struct kafka_consumer *c = consumer_new(group);
    consume_until_done(c, &probe);
    static const enum kafka_handled answers[] = {KAFKA_RETRY, KAFKA_RETRY, KAFKA_DONE};
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(probe.seen[i].value, value, "delivery %d was %s", i, probe.seen[i].value);
        cr_assert_eq(probe.seen[i].answer, answers[i]);
        cr_assert_eq(probe.seen[i].partition, probe.seen[0].partition);
        cr_assert_eq(probe.seen[i].offset, probe.seen[0].offset,
                     "delivery %d came at offset %lld, not the retried %lld", i,
                     (long long)probe.seen[i].offset, (long long)probe.seen[0].offset);
    }
    cr_assert_str_eq(probe.seen[3].value, later);
    cr_assert_gt(probe.seen[3].offset, probe.seen[0].offset);
    kafka_consumer_free(&c); /* free closes when close was not called */
}

Test(kafka, offsets_are_committed_only_after_done)
{
    /* Same key, so same partition, first before second. */
    struct kafka_producer *p = producer_new();
    char first[128], second[128], group[128];
    struct probe probe = {.want = 8, .retry_value = second, .retries_left = -1};
    itest_unique_name(probe.key, sizeof probe.key, "itest:offsets");
    itest_unique_name(first, sizeof first, "first");
    itest_unique_name(second, sizeof second, "second");
    produce_acked(p, probe.key, first);
    produce_acked(p, probe.key, second);
    kafka_producer_free(&p);

    /* The first consumer finishes `first` and gives up on `second`. */
    itest_unique_name(group, sizeof group, "itest-offsets");
    struct kafka_consumer *c = consumer_new(group);
    consume_until_done(c, &probe);
    cr_assert_eq(probe.nseen, 2);
    cr_assert_str_eq(probe.seen[0].value, first);
    cr_assert_eq(probe.seen[0].answer, KAFKA_DONE);
    cr_assert_str_eq(probe.seen[1].value, second);
    cr_assert_eq(probe.seen[1].answer, KAFKA_RETRY);
    kafka_consumer_close(c);
    kafka_consumer_free(&c);

    /* The group's next member resumes at `second`: `first` was committed,
     * `second` was not. */
    struct probe again = {.want = 1};
    memcpy(again.key, probe.key, sizeof again.key);
    c = consumer_new(group);
    consume_until_done(c, &again);
    cr_assert_str_eq(again.seen[0].value, second,
                     "the group resumed at %s, not at the record "
                     "after the committed one",
                     again.seen[0].value);
    cr_assert_eq(again.seen[0].offset, probe.seen[1].offset);
    kafka_consumer_close(c);
    kafka_consumer_free(&c);
}

static int manifest_load(struct topic_spec *specs)
{
    char err[1024];
    int n = topics_load(topics_default_path(), specs, TOPICS_MAX, err, sizeof err);
    cr_assert_gt(n, 0, "manifest: %s", err);
    return n;
}

Test(kafka, topics_check_passes_for_the_manifest)
{
    struct topic_spec specs[TOPICS_MAX];
    char err[1024];
    int n = manifest_load(specs);
    cr_assert_eq(
        kafka_topics_check(itest_env("KAFKA_BROKERS"), specs, (size_t)n, 10000, err, sizeof err), 0,
        "%s", err);
    cr_assert_not_null(topics_find(specs, (size_t)n, TEST_TOPIC));
}

Test(kafka, topics_check_names_a_missing_topic)
{
    struct topic_spec specs[TOPICS_MAX + 1];
    char err[1024];
    int n = manifest_load(specs);
    struct topic_spec *extra = &specs[n];
    *extra = specs[0];
    itest_unique_name(extra->name, sizeof extra->name, "kizuna.itest.absent");
    cr_assert_eq(kafka_topics_check(itest_env("KAFKA_BROKERS"), specs, (size_t)n + 1, 10000, err,
                                    sizeof err),
                 -1);
    cr_assert_not_null(strstr(err, extra->name), "error does not name the topic: %s", err);
}

Test(kafka, topics_apply_creates_nothing_when_up_to_date)
{
    struct topic_spec specs[TOPICS_MAX];
    char err[1024];
    int n = manifest_load(specs);
    int first =
        kafka_topics_apply(itest_env("KAFKA_BROKERS"), specs, (size_t)n, 10000, err, sizeof err);
    cr_assert_geq(first, 0, "%s", err);
    cr_assert_eq(
        kafka_topics_apply(itest_env("KAFKA_BROKERS"), specs, (size_t)n, 10000, err, sizeof err), 0,
        "%s", err);
}

Test(kafka, producing_to_a_missing_topic_fails_and_creates_nothing)
{
    struct kafka_producer *p = producer_new();
    char topic[128], err[1024];
    itest_unique_name(topic, sizeof topic, "kizuna.itest.missing");
    struct kafka_ack *ack = NULL;
    long start = itest_now_ms();
    int rc = kafka_produce(p, topic, "k", 1, "v", 1, &ack);
    int verdict = -1;
    if (rc == 0) {
        verdict = kafka_ack_wait(ack, 20000);
        kafka_ack_release(&ack);
    }
    cr_assert_eq(verdict, -1, "producing to missing topic %s gave verdict %d", topic, verdict);
    cr_assert_lt(itest_now_ms() - start, 20000);
    /* Once known to be missing, further messages are refused at once. */
    cr_assert_eq(kafka_produce(p, topic, "k", 1, "v", 1, NULL), -1);
    kafka_producer_free(&p);

    struct topic_spec spec = {.partitions = 1, .retention_ms = -1};
    memcpy(spec.name, topic, strlen(topic) + 1);
    cr_assert_eq(kafka_topics_check(itest_env("KAFKA_BROKERS"), &spec, 1, 10000, err, sizeof err),
                 -1, "topic %s was auto-created", topic);
}

Test(kafka, releasing_an_ack_before_delivery_is_safe)
{
    struct kafka_producer *p = producer_new();
    char key[128];
    itest_unique_name(key, sizeof key, "itest:release");
    struct kafka_ack *ack = NULL;
    cr_assert_eq(kafka_produce(p, TEST_TOPIC, key, strlen(key), "x", 1, &ack), 0);
    kafka_ack_release(&ack);
    kafka_ack_release(&ack); /* NULL: harmless */
    cr_assert_eq(kafka_producer_flush(p, ACK_TIMEOUT_MS), 0);
    kafka_producer_free(&p);
    kafka_producer_free(&p); /* NULL: harmless */
}

Test(kafka, producer_is_not_ready_without_a_broker)
{
    char err[256];
    struct kafka_producer *p = kafka_producer_new("127.0.0.1:1", "test-kafka", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    long start = itest_now_ms();
    cr_assert_not(kafka_producer_ready(p, 1500));
    cr_assert_lt(itest_now_ms() - start, 5000);
    kafka_producer_free(&p);
}
