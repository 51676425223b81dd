/* The inbox and the outbox (docs/architecture.md, Guarantees 2 and 3) against the real
 * PostgreSQL and Kafka of the local stack. The inbox makes a redelivered
 * event a no-op and leaves a rolled-back one claimable; the outbox publishes
 * exactly what committed, in order, deletes only what the broker
 * acknowledged, and stops at the first row without an ack.
 * Each test gets a scratch schema owned by the ingest role with the inbox
 * and outbox tables made by a service's own migrations (segmentation's,
 * which are exactly those two tables, as the scheduler's are), not a copy
 * of them: a change to the real tables is what these tests see. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "inbox.h"
#include "itest.h"
#include "kafka.h"
#include "outbox.h"

/* A service whose migrations make the inbox and the outbox; relative to
 * the repository root, where the tests run. */
#define SERVICE_MIGRATIONS "services/segmentation/migrations"
#define TEST_TOPIC "friend.events" /* a manifest topic; the stack creates it */
#define MISSING_TOPIC "kizuna.test.no-such-topic"

static struct db *admin;
static struct db *ingest;
static char scratch[64];

/* A session of the ingest role whose unqualified names land in scratch. */
static struct db *connect_scratch(void)
{
    struct db *db = itest_db_connect_env("INGEST_DATABASE_URL");
    itest_search_path_set(db, scratch);
    return db;
}

static void setup(void)
{
    admin = itest_db_connect_env("KIZUNA_PG_ADMIN_URL");
    ingest = itest_db_connect_env("INGEST_DATABASE_URL");
    snprintf(scratch, sizeof scratch, "kz_test_io_%ld", (long)getpid());
    itest_schema_create(admin, ingest, scratch);
    char errstr[256];
    int n = db_migrate(ingest, scratch, SERVICE_MIGRATIONS, errstr, sizeof errstr);
    cr_assert_geq(n, 1, "%s: %s (run the tests from the repository root)", SERVICE_MIGRATIONS,
                  errstr);
    db_free(&ingest);
    ingest = connect_scratch();
}

static void teardown(void)
{
    itest_schema_drop(admin, scratch);
    db_free(&ingest);
    db_free(&admin);
}

TestSuite(inbox_outbox, .init = setup, .fini = teardown, .timeout = 90);

/* --- inbox ------------------------------------------------------------------ */

/* One handler run: claim inside a transaction, then commit or roll back. */
static int claim_in_transaction(struct db *db, const char *consumer, const char *event_id,
                                bool commit)
{
    cr_assert_eq(db_begin(db), DB_OK);
    int claimed = inbox_claim(db, consumer, event_id);
    cr_assert_geq(claimed, 0, "claim: %s", db_error_message(db));
    if (commit)
        cr_assert_eq(db_commit(db), DB_OK, "%s", db_error_message(db));
    else
        cr_assert_eq(db_rollback(db), DB_OK);
    return claimed;
}

Test(inbox_outbox, same_event_claimed_in_two_transactions_is_new_then_seen)
{
    cr_assert_eq(claim_in_transaction(ingest, "friends", "evt-1", true), 1);
    cr_assert_eq(claim_in_transaction(ingest, "friends", "evt-1", true), 0);
    /* The inbox is per consumer: another consumer has its own history. */
    cr_assert_eq(claim_in_transaction(ingest, "rules", "evt-1", true), 1);
}

Test(inbox_outbox, rolled_back_claim_leaves_the_event_claimable)
{
    cr_assert_eq(claim_in_transaction(ingest, "friends", "evt-2", false), 1);
    cr_assert_eq(claim_in_transaction(ingest, "friends", "evt-2", true), 1,
                 "the failed attempt left no trace");
    cr_assert_eq(claim_in_transaction(ingest, "friends", "evt-2", true), 0);
}

Test(inbox_outbox, event_ids_with_quotes_are_just_data)
{
    const char *id = "evt'); DELETE FROM inbox; --";
    cr_assert_eq(claim_in_transaction(ingest, "friends", "evt-keep", true), 1);
    cr_assert_eq(claim_in_transaction(ingest, "friends", id, true), 1);
    cr_assert_eq(claim_in_transaction(ingest, "friends", id, true), 0);
    char *count = itest_query_text(ingest, "SELECT count(*) FROM inbox", 0, NULL);
    cr_assert_str_eq(count, "2");
    free(count);
}

struct claim_job {
    char scratch[64];
    int claimed;
    enum db_status commit;
};

static void *claim_thread(void *arg)
{
    struct claim_job *job = arg;
    char errstr[256];
    struct db *db = db_connect(getenv("INGEST_DATABASE_URL"), errstr, sizeof errstr);
    job->claimed = -100;
    if (!db)
        return NULL;
    const char *path[] = {job->scratch};
    if (db_exec(db, "SELECT set_config('search_path', $1, false)", 1, path, NULL) == DB_OK &&
        db_begin(db) == DB_OK) {
        job->claimed = inbox_claim(db, "friends", "evt-race");
        job->commit = db_commit(db);
    }
    db_free(&db);
    return NULL;
}

Test(inbox_outbox, concurrent_claims_of_one_event_let_exactly_one_win)
{
    /* Replica A holds an uncommitted claim; replica B's claim waits on the
     * key, then sees A's commit and loses. */
    cr_assert_eq(db_begin(ingest), DB_OK);
    cr_assert_eq(inbox_claim(ingest, "friends", "evt-race"), 1);

    struct claim_job job = {.claimed = -1};
    snprintf(job.scratch, sizeof job.scratch, "%s", scratch);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, claim_thread, &job), 0);
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 300 * 1000000L};
    nanosleep(&pause, NULL);
    cr_assert_eq(db_commit(ingest), DB_OK);
    pthread_join(t, NULL);
    cr_assert_eq(job.claimed, 0, "the second replica sees the event as processed");
    cr_assert_eq(job.commit, DB_OK);
}

Test(inbox_outbox, prune_deletes_only_old_rows)
{
    cr_assert_eq(db_exec(ingest,
                         "INSERT INTO inbox (consumer, event_id, received_at) VALUES "
                         "('friends', 'old', now() - interval '2 days'), "
                         "('friends', 'new', now())",
                         0, NULL, NULL),
                 DB_OK);
    cr_assert_eq(inbox_prune(ingest, 86400), 1);
    cr_assert_eq(inbox_prune(ingest, 86400), 0);
    char *left = itest_query_text(ingest, "SELECT string_agg(event_id, ',') FROM inbox", 0, NULL);
    cr_assert_str_eq(left, "new");
    free(left);
}

Test(inbox_outbox, bad_arguments_are_fatal_not_crashes)
{
    cr_assert_eq(inbox_claim(ingest, NULL, "evt"), DB_FATAL);
    cr_assert_eq(inbox_claim(ingest, "friends", NULL), DB_FATAL);
    cr_assert_eq(inbox_claim(NULL, "friends", "evt"), DB_FATAL);
    cr_assert_eq(inbox_prune(ingest, -1), DB_FATAL);
    cr_assert_eq(outbox_enqueue(ingest, NULL, "k", 1, "v", 1), DB_FATAL);
    cr_assert_eq(outbox_enqueue(ingest, TEST_TOPIC, NULL, 3, "v", 1), DB_FATAL);
    cr_assert_eq(outbox_enqueue(ingest, TEST_TOPIC, "k", 1, NULL, 5), DB_FATAL);
    cr_assert_eq(outbox_depth(NULL), DB_FATAL);
    cr_assert_eq(outbox_relay_once(ingest, NULL, 10, 1000), DB_FATAL);
    cr_assert_eq(outbox_depth(ingest), 0, "nothing was written");
}

/* --- outbox ------------------------------------------------------------------ */

static struct kafka_producer *producer_new(void)
{
    struct kafka_producer *p = itest_producer_new("test-outbox");
    cr_assert(kafka_producer_ready(p, 10000), "Kafka at %s does not answer",
              getenv("KAFKA_BROKERS"));
    return p;
}

/* A key no earlier run used, so the consumer can pick our records out of
 * the topic's history. */
static void unique_key(char *buf, size_t cap)
{
    itest_unique_name(buf, cap, "test-outbox");
}

/* The payloads left in the outbox, in order, comma-separated; the caller
 * frees. */
static char *outbox_payloads(void)
{
    return itest_query_text(
        ingest, "SELECT string_agg(convert_from(payload, 'UTF8'), ',' ORDER BY id) FROM outbox", 0,
        NULL);
}

struct collected {
    const char *key;
    int want;
    char values[8][64];
    int n;
};

static enum kafka_handled collect(void *ctx, const struct kafka_message *msg)
{
    struct collected *c = ctx;
    size_t keylen = strlen(c->key);
    if (msg->keylen == keylen && memcmp(msg->key, c->key, keylen) == 0 && c->n < 8) {
        size_t len = msg->len < 63 ? msg->len : 63;
        memcpy(c->values[c->n], msg->value, len);
        c->values[c->n][len] = '\0';
        c->n++;
    }
    return KAFKA_DONE;
}

static bool collected_enough(void *ctx)
{
    const struct collected *c = ctx;
    return c->n >= c->want;
}

/* Reads TEST_TOPIC from the beginning until want records with key arrive. */
static void consume_key(const char *key, int want, struct collected *out)
{
    char group[160];
    itest_unique_name(group, sizeof group, "test-outbox-reader");
    struct kafka_consumer *c = itest_consumer_new(TEST_TOPIC, group, false);
    *out = (struct collected){.key = key, .want = want};
    itest_consumer_poll_until(c, collect, collected_enough, out, 45000);
    /* A moment more to catch anything published that should not have been. */
    itest_consumer_poll_until(c, collect, NULL, out, 1000);
    kafka_consumer_close(c);
    kafka_consumer_free(&c);
}

static void enqueue_ok(const char *topic, const char *key, const char *value)
{
    int st = outbox_enqueue(ingest, topic, key, strlen(key), value, strlen(value));
    cr_assert_eq(st, DB_OK, "enqueue: %s", db_error_message(ingest));
}

Test(inbox_outbox, enqueue_in_rolled_back_transaction_publishes_nothing)
{
    struct kafka_producer *p = producer_new();
    char key[96];
    unique_key(key, sizeof key);

    cr_assert_eq(db_begin(ingest), DB_OK);
    enqueue_ok(TEST_TOPIC, key, "rolled back");
    cr_assert_eq(outbox_depth(ingest), 1, "visible inside its transaction");
    cr_assert_eq(db_rollback(ingest), DB_OK);

    cr_assert_eq(outbox_depth(ingest), 0);
    cr_assert_eq(outbox_relay_once(ingest, p, 100, 5000), 0);

    /* A committed marker after it proves the reader saw this key's records. */
    cr_assert_eq(db_begin(ingest), DB_OK);
    enqueue_ok(TEST_TOPIC, key, "committed");
    cr_assert_eq(db_commit(ingest), DB_OK);
    cr_assert_eq(outbox_relay_once(ingest, p, 100, 10000), 1);
    kafka_producer_free(&p);

    struct collected got;
    consume_key(key, 1, &got);
    cr_assert_eq(got.n, 1, "exactly the committed record was published");
    cr_assert_str_eq(got.values[0], "committed");
}

Test(inbox_outbox, relay_publishes_in_order_and_deletes_rows)
{
    struct kafka_producer *p = producer_new();
    char key[96];
    unique_key(key, sizeof key);

    cr_assert_eq(db_begin(ingest), DB_OK);
    enqueue_ok(TEST_TOPIC, key, "first");
    enqueue_ok(TEST_TOPIC, key, "second");
    enqueue_ok(TEST_TOPIC, key, "third");
    cr_assert_eq(db_commit(ingest), DB_OK);
    cr_assert_eq(outbox_depth(ingest), 3);

    /* Two rounds with a batch of two: order holds across rounds. */
    cr_assert_eq(outbox_relay_once(ingest, p, 2, 10000), 2);
    cr_assert_eq(outbox_depth(ingest), 1);
    cr_assert_eq(outbox_relay_once(ingest, p, 2, 10000), 1);
    cr_assert_eq(outbox_depth(ingest), 0, "acknowledged rows are deleted");
    cr_assert_eq(outbox_relay_once(ingest, p, 2, 10000), 0, "nothing left to publish");
    kafka_producer_free(&p);

    struct collected got;
    consume_key(key, 3, &got);
    cr_assert_eq(got.n, 3);
    cr_assert_str_eq(got.values[0], "first");
    cr_assert_str_eq(got.values[1], "second");
    cr_assert_str_eq(got.values[2], "third");
}

Test(inbox_outbox, relay_keeps_everything_from_the_first_unacknowledged_row)
{
    struct kafka_producer *p = producer_new();
    char key[96];
    unique_key(key, sizeof key);

    cr_assert_eq(db_begin(ingest), DB_OK);
    enqueue_ok(TEST_TOPIC, key, "delivered");
    enqueue_ok(MISSING_TOPIC, key, "never acknowledged");
    enqueue_ok(TEST_TOPIC, key, "after the gap");
    cr_assert_eq(db_commit(ingest), DB_OK);

    /* The missing topic gets no ack; the row after it must not overtake it,
     * so it stays too (its publication, if any, repeats next round). */
    cr_assert_eq(outbox_relay_once(ingest, p, 10, 3000), 1);
    char *left = outbox_payloads();
    cr_assert_str_eq(left, "never acknowledged,after the gap");
    free(left);
    kafka_producer_free(&p);
}

Test(inbox_outbox, only_one_replica_relays_at_a_time_so_order_holds)
{
    /* Replica A is relaying (it holds the schema's relay lock); replica B's
     * relay publishes nothing rather than publishing later rows ahead of
     * A's. Once A is done, B publishes everything, in order. */
    struct kafka_producer *p = producer_new();
    char key[96];
    unique_key(key, sizeof key);
    cr_assert_eq(db_begin(ingest), DB_OK);
    enqueue_ok(TEST_TOPIC, key, "first");
    enqueue_ok(TEST_TOPIC, key, "second");
    cr_assert_eq(db_commit(ingest), DB_OK);

    cr_assert_eq(db_begin(ingest), DB_OK);
    cr_assert_eq(db_exec(ingest,
                         "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.outbox'))", 0,
                         NULL, NULL),
                 DB_OK);
    struct db *b = connect_scratch();
    cr_assert_eq(outbox_relay_once(b, p, 10, 10000), 0);
    char *left = outbox_payloads();
    cr_assert_str_eq(left, "first,second");
    free(left);
    cr_assert_eq(db_rollback(ingest), DB_OK);

    cr_assert_eq(outbox_relay_once(b, p, 10, 10000), 2);
    cr_assert_eq(outbox_depth(b), 0);
    db_free(&b);
    kafka_producer_free(&p);
}
