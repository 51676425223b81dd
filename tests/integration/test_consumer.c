/* The consumer loop with the inbox (common/consumer.h) against the real
 * local stack. Each test gets a scratch schema with segmentation's own
 * migrations (its inbox and outbox) plus an `effects` table that the test
 * handler writes one row to per handled event, inside the loop's
 * transaction, and a topic of its own. "Once" is then a count: every event
 * has exactly one effect row, whatever was retried, rolled back, redelivered
 * or cut off by a database outage in between.
 *
 * The handler's behaviour is chosen per record by the FriendEvent's user_id:
 * "ok", "retry" (asks to retry later on its first run), "malformed" (writes
 * its effect, then answers malformed, so the effect must vanish) and "kill"
 * (on its first run, terminates the loop's own database session from
 * another connection, mid-batch). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "consumer.h"
#include "db.h"
#include "itest.h"
#include "kafka.h"
#include "kizuna/v1/friend.pb-c.h"
#include "log.h"
#include "metrics.h"

#define MIGRATIONS "services/segmentation/migrations"
#define MAX_EVENTS 256
#define WAIT_MS 60000

static struct db *admin;
static struct db *scratch_db; /* the test thread's; search_path = scratch */
static char scratch[64];
static char *scratch_url;
static char topic[100];
static char prefix[96]; /* of this test's event ids */
static char stack_log[256];
static struct kafka_producer *producer;

/* --- the handler --------------------------------------------------------------- */

struct probe {
    pthread_mutex_t mu;
    int calls[MAX_EVENTS]; /* handler runs per event index */
    struct db *killer;     /* an admin session, used on the loop's thread only */
};

static struct probe probe = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* "<prefix>-<i>" -> i, or -1. */
static int event_index(const char *event_id)
{
    const char *dash = strrchr(event_id, '-');
    if (!dash || strncmp(event_id, prefix, strlen(prefix)) != 0)
        return -1;
    long i = strtol(dash + 1, NULL, 10);
    return i >= 0 && i < MAX_EVENTS ? (int)i : -1;
}

static int calls_of(int i)
{
    pthread_mutex_lock(&probe.mu);
    int n = probe.calls[i];
    pthread_mutex_unlock(&probe.mu);
    return n;
}

/* Ends db's session from another connection, as a crash or a failover would. */
static void session_kill(struct db *db)
{
    struct db_result *r = NULL;
    if (db_exec(db, "SELECT pg_backend_pid()::text", 0, NULL, &r) != DB_OK)
        return;
    const char *pid[] = {db_result_value(r, 0, 0)};
    /* Waits (up to 5 s) until the session is gone, so that the loop meets
     * the error on its next statement rather than racing it. */
    db_exec(probe.killer, "SELECT pg_terminate_backend($1::int, 5000)", 1, pid, NULL);
    db_result_free(&r);
}

static enum consumer_verdict probe_handle(void *ctx, struct db *db,
                                          const struct consumer_record *rec, const char **reason)
{
    struct probe *p = ctx;
    int i = event_index(rec->event_id);
    Kizuna__V1__FriendEvent *ev =
        kizuna__v1__friend_event__unpack(NULL, rec->msg->len, rec->msg->value);
    if (i < 0 || !ev) {
        if (ev)
            kizuna__v1__friend_event__free_unpacked(ev, NULL);
        *reason = "not_ours";
        return CONSUMER_MALFORMED;
    }
    pthread_mutex_lock(&p->mu);
    int call = ++p->calls[i];
    pthread_mutex_unlock(&p->mu);

    enum consumer_verdict verdict = CONSUMER_DONE;
    const char *values[] = {rec->event_id, ev->user_id};
    if (db_exec(db, "INSERT INTO effects (event_id, behaviour) VALUES ($1, $2)", 2, values, NULL) !=
        DB_OK)
        verdict = CONSUMER_RETRY;
    else if (strcmp(ev->user_id, "retry") == 0 && call == 1)
        verdict = CONSUMER_RETRY;
    else if (strcmp(ev->user_id, "malformed") == 0) {
        *reason = "test_malformed";
        verdict = CONSUMER_MALFORMED;
    } else if (strcmp(ev->user_id, "kill") == 0 && call == 1)
        session_kill(db); /* DONE, but the claim or commit after it fails */
    kizuna__v1__friend_event__free_unpacked(ev, NULL);
    return verdict;
}

/* --- records -------------------------------------------------------------------- */

/* Produces event i (user_id = behaviour) with key, waiting for its ack. */
static void event_produce(int i, const char *behaviour, const char *key)
{
    char event_id[160];
    snprintf(event_id, sizeof event_id, "%s-%d", prefix, i);
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.tenant_id = "t-consumer";
    env.channel_id = "1000000001";
    Kizuna__V1__FriendEvent ev = KIZUNA__V1__FRIEND_EVENT__INIT;
    ev.envelope = &env;
    ev.user_id = (char *)behaviour;
    uint8_t buf[512];
    size_t len = kizuna__v1__friend_event__pack(&ev, buf);
    struct kafka_ack *ack = NULL;
    cr_assert_eq(kafka_produce(producer, topic, key, strlen(key), buf, len, &ack), 0);
    cr_assert_eq(kafka_ack_wait(ack, 10000), 0, "event %d not acknowledged", i);
    kafka_ack_release(&ack);
}

static void raw_produce(const char *key, const void *value, size_t len)
{
    struct kafka_ack *ack = NULL;
    cr_assert_eq(kafka_produce(producer, topic, key, strlen(key), value, len, &ack), 0);
    cr_assert_eq(kafka_ack_wait(ack, 10000), 0);
    kafka_ack_release(&ack);
}

/* --- the database's view ------------------------------------------------------------ */

static long query_long(const char *sql, int n, const char *const *values)
{
    char *v = itest_query_text(scratch_db, sql, n, values);
    long x = v ? strtol(v, NULL, 10) : -1;
    free(v);
    return x;
}

static long effects_total(void)
{
    return query_long("SELECT count(*) FROM effects", 0, NULL);
}

/* Effect rows of event i. */
static long effects_of(int i)
{
    char id[160];
    snprintf(id, sizeof id, "%s-%d", prefix, i);
    const char *values[] = {id};
    return query_long("SELECT count(*) FROM effects WHERE event_id = $1", 1, values);
}

/* The order in which event i's effect committed (effects.seq). */
static long effect_seq(int i)
{
    char id[160];
    snprintf(id, sizeof id, "%s-%d", prefix, i);
    const char *values[] = {id};
    return query_long("SELECT seq FROM effects WHERE event_id = $1", 1, values);
}

/* Every event of [0, n) but those in skip has exactly one effect row, and
 * there are no others. */
static void effects_expect_once(int n, const int *skip, int nskip)
{
    long want = n - nskip;
    cr_expect_eq(effects_total(), want, "effect rows: %ld, want %ld", effects_total(), want);
    cr_expect_eq(query_long("SELECT count(DISTINCT event_id) FROM effects", 0, NULL), want,
                 "an event has two effect rows");
    for (int i = 0; i < n; i++) {
        bool skipped = false;
        for (int k = 0; k < nskip; k++)
            skipped |= skip[k] == i;
        cr_expect_eq(effects_of(i), skipped ? 0 : 1, "event %d has %ld effect rows", i,
                     effects_of(i));
    }
}

static bool effects_wait(long want, long timeout_ms)
{
    long until = itest_now_ms() + timeout_ms;
    while (itest_now_ms() < until) {
        if (effects_total() >= want)
            return true;
        usleep(50 * 1000);
    }
    return false;
}

static bool calls_wait(int i, int want, long timeout_ms)
{
    long until = itest_now_ms() + timeout_ms;
    while (itest_now_ms() < until) {
        if (calls_of(i) >= want)
            return true;
        usleep(50 * 1000);
    }
    return false;
}

/* The value of one series in /metrics, or -1 when absent. */
static double metric_value(const char *series)
{
    size_t len = 0;
    char *text = metrics_render(&len);
    cr_assert_not_null(text);
    double v = -1;
    for (char *line = strstr(text, series); line; line = strstr(line + 1, series)) {
        if ((line == text || line[-1] == '\n') && line[strlen(series)] == ' ') {
            v = strtod(line + strlen(series) + 1, NULL);
            break;
        }
    }
    free(text);
    return v;
}

/* --- the loop -------------------------------------------------------------------- */

static struct consumer *loop_start(const char *name, const char *group)
{
    const char *topics[] = {topic, NULL};
    char errstr[512];
    struct consumer *c =
        consumer_start(&(struct consumer_options){.name = name,
                                                  .topics = topics,
                                                  .group = group,
                                                  .handler = probe_handle,
                                                  .ctx = &probe,
                                                  .brokers = itest_env("KAFKA_BROKERS"),
                                                  .dsn = scratch_url,
                                                  .batch = 50,
                                                  .from_beginning = true},
                       errstr, sizeof errstr);
    cr_assert_not_null(c, "consumer_start: %s", errstr);
    return c;
}

/* --- fixture ------------------------------------------------------------------------ */

static int stack(const char *cmd)
{
    char line[768];
    snprintf(line, sizeof line, "deploy/local/stack.sh %s >>%s 2>&1", cmd, stack_log);
    int rc = system(line);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void setup(void)
{
    log_init("test-consumer", LOG_WARN);
    const char *url = itest_env("SEGMENTATION_DATABASE_URL");
    snprintf(stack_log, sizeof stack_log, "%s/tests/consumer-stack.log", itest_build_dir());
    admin = itest_db_connect(itest_env("KIZUNA_PG_ADMIN_URL"));
    probe.killer = itest_db_connect(itest_env("KIZUNA_PG_ADMIN_URL"));
    struct db *owner = itest_db_connect(url);
    snprintf(scratch, sizeof scratch, "kz_test_cons_%ld", (long)getpid());
    itest_schema_create(admin, owner, scratch);
    char errstr[256];
    int n = db_migrate(owner, scratch, MIGRATIONS, errstr, sizeof errstr);
    cr_assert_geq(n, 1, "segmentation migrations: %s (run the tests from the repository root)",
                  errstr);
    db_free(&owner);

    size_t cap = strlen(url) + 128;
    scratch_url = malloc(cap);
    snprintf(scratch_url, cap, "%s%coptions=-csearch_path%%3D%s", url, strchr(url, '?') ? '&' : '?',
             scratch);
    scratch_db = itest_db_connect(scratch_url);
    itest_exec_ok(scratch_db,
                  "CREATE TABLE effects (seq bigserial PRIMARY KEY, event_id text NOT NULL, "
                  "behaviour text NOT NULL)",
                  0, NULL);

    itest_unique_name(topic, sizeof topic, "kizuna.test.consumer");
    struct topic_spec spec = {.partitions = 3, .retention_ms = 3600000, .cleanup = "delete"};
    snprintf(spec.name, sizeof spec.name, "%s", topic);
    cr_assert_geq(
        kafka_topics_apply(itest_env("KAFKA_BROKERS"), &spec, 1, 10000, errstr, sizeof errstr), 0,
        "%s", errstr);
    itest_unique_name(prefix, sizeof prefix, "ev");
    producer = itest_producer_new("test-consumer");
}

static void teardown(void)
{
    cr_expect_eq(stack("pg-start") >= 0, true); /* harmless when it runs already */
    kafka_producer_free(&producer);
    db_free(&scratch_db);
    db_free(&probe.killer);
    itest_schema_drop(admin, scratch);
    db_free(&admin);
    free(scratch_url);
    scratch_url = NULL;
    metrics_free_all();
}

TestSuite(consumer, .init = setup, .fini = teardown, .timeout = 150);

/* --- good flow and redelivery --------------------------------------------------------- */

Test(consumer, each_record_is_handled_once_across_partitions)
{
    struct consumer *c = loop_start("itest-once", topic);
    enum { N = 120 };
    for (int i = 0; i < N; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i % 7);
        event_produce(i, "ok", key);
    }
    cr_assert(effects_wait(N, WAIT_MS), "%ld of %d handled", effects_total(), N);
    consumer_free(&c);
    effects_expect_once(N, NULL, 0);
    for (int i = 0; i < N; i++)
        cr_expect_eq(calls_of(i), 1, "event %d: handler ran %d times", i, calls_of(i));
    char series[256];
    snprintf(series, sizeof series,
             "kizuna_consumer_records_total{consumer=\"itest-once\",topic=\"%s\",outcome="
             "\"handled\"}",
             topic);
    cr_expect_eq(metric_value(series), N, "%s = %g", series, metric_value(series));
}

Test(consumer, redelivered_events_change_nothing_and_skip_the_handler)
{
    enum { N = 20 };
    struct consumer *c = loop_start("itest-redelivery", topic);
    for (int i = 0; i < N; i++)
        event_produce(i, "ok", "one-key");
    cr_assert(effects_wait(N, WAIT_MS), "%ld of %d handled", effects_total(), N);

    /* The same events produced again, then a new one behind them in the
     * same partition: once it is handled, the copies have been seen. */
    for (int i = 0; i < N; i++)
        event_produce(i, "ok", "one-key");
    event_produce(N, "ok", "one-key");
    cr_assert(calls_wait(N, 1, WAIT_MS), "the event behind the copies was not handled");
    consumer_free(&c);

    /* A reset group: the same consumer (inbox) name reads the topic again
     * from the start. */
    char group[160];
    snprintf(group, sizeof group, "%s-reset", topic);
    c = loop_start("itest-redelivery", group);
    event_produce(N + 1, "ok", "one-key");
    cr_assert(calls_wait(N + 1, 1, WAIT_MS), "the reset group did not reach the end");
    consumer_free(&c);

    effects_expect_once(N + 2, NULL, 0);
    for (int i = 0; i < N + 2; i++)
        cr_expect_eq(calls_of(i), 1, "event %d: handler ran %d times", i, calls_of(i));
    char series[256];
    snprintf(series, sizeof series,
             "kizuna_consumer_records_total{consumer=\"itest-redelivery\",topic=\"%s\",outcome="
             "\"duplicate\"}",
             topic);
    /* N copies, then the reset group's 2N + 1 old records. */
    cr_expect_eq(metric_value(series), 3 * N + 1, "%s = %g", series, metric_value(series));
}

/* --- retry later and malformed ------------------------------------------------------- */

Test(consumer, retry_later_runs_the_same_record_again_and_then_the_rest)
{
    enum { N = 10, RETRIED = 4 };
    /* Produced before the loop starts, so that they come in one batch: the
     * records before the retried one commit, and it and those after it
     * come again. */
    for (int i = 0; i < N; i++)
        event_produce(i, i == RETRIED ? "retry" : "ok", "one-key");
    struct consumer *c = loop_start("itest-retry", topic);
    cr_assert(effects_wait(N, WAIT_MS), "%ld of %d handled", effects_total(), N);
    consumer_free(&c);

    effects_expect_once(N, NULL, 0);
    cr_expect_eq(calls_of(RETRIED), 2, "the retried record ran %d times", calls_of(RETRIED));
    /* One partition: its records committed in order, the retried one
     * before every record after it. */
    for (int i = 1; i < N; i++)
        cr_expect_lt(effect_seq(i - 1), effect_seq(i), "event %d committed before %d", i, i - 1);
    char series[256];
    snprintf(series, sizeof series,
             "kizuna_consumer_records_total{consumer=\"itest-retry\",topic=\"%s\",outcome="
             "\"retried\"}",
             topic);
    cr_expect_eq(metric_value(series), 1, "%s = %g", series, metric_value(series));
}

Test(consumer, malformed_records_are_skipped_counted_and_never_block_the_partition)
{
    /* In one batch (produced before the loop starts), so that the records
     * around the malformed ones share its transaction. */
    event_produce(0, "ok", "one-key");
    event_produce(1, "malformed", "one-key");
    raw_produce("one-key", "not protobuf", 12);
    /* An envelope without an event id: 0x0a 0x02 (field 1, 2 bytes), an
     * empty envelope field 2 (tenant) = "" . */
    const uint8_t no_id[] = {0x0a, 0x02, 0x12, 0x00};
    raw_produce("one-key", no_id, sizeof no_id);
    event_produce(2, "ok", "one-key");
    event_produce(3, "ok", "one-key");
    struct consumer *c = loop_start("itest-malformed", topic);
    cr_assert(calls_wait(3, 1, WAIT_MS), "the records after the malformed ones were not handled");
    consumer_free(&c);

    int skipped[] = {1};
    effects_expect_once(4, skipped, 1);
    cr_expect_eq(calls_of(1), 1);
    char series[256];
    const char *reasons[] = {"test_malformed", "not_protobuf", "no_event_id"};
    for (size_t k = 0; k < sizeof reasons / sizeof reasons[0]; k++) {
        snprintf(series, sizeof series,
                 "kizuna_consumer_malformed_total{consumer=\"itest-malformed\",topic=\"%s\","
                 "reason=\"%s\"}",
                 topic, reasons[k]);
        cr_expect_eq(metric_value(series), 1, "%s = %g", series, metric_value(series));
    }

    /* The skipped records' offsets were stored and committed: the group,
     * restarted, goes on after them (the malformed one, which has no inbox
     * row, would otherwise run again before event 4). */
    c = loop_start("itest-malformed", topic);
    event_produce(4, "ok", "one-key");
    cr_assert(calls_wait(4, 1, WAIT_MS), "the restarted group did not reach event 4");
    consumer_free(&c);
    cr_expect_eq(calls_of(1), 1, "the malformed record was delivered again");
}

/* --- database errors ---------------------------------------------------------------- */

Test(consumer, a_session_killed_mid_batch_loses_and_duplicates_nothing)
{
    enum { N = 40, KILLED = 17 };
    /* Produced before the loop starts, so that they come in one batch. */
    for (int i = 0; i < N; i++)
        event_produce(i, i == KILLED ? "kill" : "ok", "one-key");
    struct consumer *c = loop_start("itest-kill", topic);
    cr_assert(effects_wait(N, WAIT_MS), "%ld of %d handled", effects_total(), N);
    consumer_free(&c);
    effects_expect_once(N, NULL, 0);
    cr_expect_geq(calls_of(KILLED), 2, "the batch was not retried after the kill");
}

Test(consumer, a_database_outage_loses_and_duplicates_nothing)
{
    enum { N = 60 };
    struct consumer *c = loop_start("itest-outage", topic);
    for (int i = 0; i < N / 2; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i % 5);
        event_produce(i, "ok", key);
    }
    cr_assert(effects_wait(N / 4, WAIT_MS), "%ld handled before the outage", effects_total());
    cr_assert_eq(stack("pg-stop"), 0, "could not stop PostgreSQL; see %s", stack_log);
    for (int i = N / 2; i < N; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i % 5);
        event_produce(i, "ok", key);
    }
    usleep(2000 * 1000);
    cr_assert_eq(stack("pg-start"), 0, "could not restart PostgreSQL; see %s", stack_log);
    cr_assert(effects_wait(N, WAIT_MS), "%ld of %d handled after the outage", effects_total(), N);
    consumer_free(&c);
    effects_expect_once(N, NULL, 0);
}
