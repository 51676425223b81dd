/* The fencing token at the delivery log's writes (issue 9, decision 0010),
 * against the dispatcher's real schema (its migrations applied as the
 * service would): a row's epoch moves with every takeover, so an outcome
 * carrying the epoch its delivery was loaded with is written only while the
 * row still has it. The case the owner check alone missed: the row was
 * taken over and came back to the same instance id (owner equal, epoch
 * not). Such an outcome is dropped, counted, and never reaches the outbox.
 * No service runs: the writer (deliveries_writer.c) is driven directly. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "db.h"
#include "dispatcher/deliveries.h"
#include "dispatcher/deliveries_writer.h"
#include "dispatcher/results.h"
#include "itest.h"
#include "log.h"
#include "metrics.h"

#define TOPIC "delivery.results.itest-fence" /* never relayed: rows deleted below */

static struct db *db;
static const char *dsn;
static char instance[64];
static char channel[32];

static void setup(void)
{
    log_init("test-dispatcher-fence", LOG_WARN);
    dsn = itest_env("DISPATCHER_DATABASE_URL");
    db = itest_db_connect(dsn);
    char errstr[512] = "";
    cr_assert_geq(
        db_migrate(db, "dispatcher", "services/dispatcher/migrations", errstr, sizeof errstr), 0,
        "%s", errstr);
    snprintf(instance, sizeof instance, "itest-fence-%ld", (long)getpid());
    itest_unique_digits(channel, sizeof channel, '6');
}

/* Whatever happened: nothing of ours left for a relay or a recovery. */
static void teardown(void)
{
    if (!db)
        return;
    const char *owner[] = {instance}, *chan[] = {channel}, *topic[] = {TOPIC};
    db_exec(db, "DELETE FROM pending WHERE owner = $1", 1, owner, NULL);
    db_exec(db, "DELETE FROM deliveries WHERE channel_id = $1", 1, chan, NULL);
    db_exec(db, "DELETE FROM outbox WHERE topic = $1", 1, topic, NULL);
    db_exec(db, "DELETE FROM quota_usage WHERE channel_id = $1", 1, chan, NULL);
    db_free(&db);
}

TestSuite(dispatcher_fence, .init = setup, .fini = teardown, .timeout = 60);

/* A push for the test channel, decoded as the intake would; *bytes gets
 * its packed form (malloc'd). */
static struct delivery *push_make(const char *request_id, uint8_t **bytes, size_t *len)
{
    Kizuna__V1__SendRequest req = KIZUNA__V1__SEND_REQUEST__INIT;
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = (char *)request_id;
    env.tenant_id = "itest-fence";
    env.channel_id = channel;
    env.occurred_at = clock_wall_ms();
    req.envelope = &env;
    req.request_id = (char *)request_id;
    req.kind = KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH;
    req.to = "Ufence";
    req.origin_type = "itest";
    *len = kizuna__v1__send_request__get_packed_size(&req);
    *bytes = malloc(*len);
    cr_assert_not_null(*bytes);
    kizuna__v1__send_request__pack(&req, *bytes);
    char errstr[256] = "";
    struct delivery *d = delivery_from_bytes(*bytes, *len, channel, errstr, sizeof errstr);
    cr_assert_not_null(d, "%s", errstr);
    return d;
}

static long long counted(const char *name)
{
    size_t len = 0;
    char *text = metrics_render(&len);
    cr_assert_not_null(text);
    char needle[128];
    snprintf(needle, sizeof needle, "\n%s ", name);
    const char *at = strstr(text, needle);
    long long v = at ? strtoll(at + strlen(needle), NULL, 10) : 0;
    free(text);
    return v;
}

static char *row_text(const char *sql, const char *request_id)
{
    const char *v[] = {request_id};
    return itest_query_text(db, sql, 1, v);
}

Test(dispatcher_fence, an_outcome_with_an_old_epoch_is_dropped_counted_and_never_published)
{
    char ids[2][64];
    snprintf(ids[0], sizeof ids[0], "fence-old-%s-%ld", channel, (long)getpid());
    snprintf(ids[1], sizeof ids[1], "fence-current-%s-%ld", channel, (long)getpid());
    struct delivery *ds[2];
    uint8_t *bytes[2];
    size_t lens[2];
    for (int i = 0; i < 2; i++)
        ds[i] = push_make(ids[i], &bytes[i], &lens[i]);
    int claimed[2] = {0};
    cr_assert_eq(
        deliveries_intake_batch(db, instance, ds, (const void *const *)bytes, lens, 2, claimed),
        DB_OK, "%s", db_error_message(db));
    cr_assert(claimed[0] && claimed[1]);

    /* The first row was taken over and taken back: same owner, next epoch. */
    const char *v[] = {ids[0]};
    itest_exec_ok(db, "UPDATE pending SET epoch = epoch + 1 WHERE request_id = $1", 1, v);

    char errstr[256] = "";
    struct deliveries_writer *w =
        deliveries_writer_start(dsn, instance, TOPIC, NULL, NULL, errstr, sizeof errstr);
    cr_assert_not_null(w, "%s", errstr);
    long long fenced_before = counted("kizuna_dispatcher_fenced_writes_total");
    int64_t now = clock_wall_ms();
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(ds[i]->epoch, 0, "loaded at intake with epoch 0");
        struct delivery_record *r = results_final(
            ds[i], KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT, NULL, "itest", now);
        cr_assert_not_null(r);
        deliveries_writer_submit(w, r);
    }
    deliveries_writer_stop(&w, 5000); /* writes what is queued */

    char *pending_old = row_text("SELECT count(*) FROM pending WHERE request_id = $1", ids[0]);
    char *status_old = row_text("SELECT status FROM deliveries WHERE request_id = $1", ids[0]);
    char *pending_new = row_text("SELECT count(*) FROM pending WHERE request_id = $1", ids[1]);
    char *status_new = row_text("SELECT status FROM deliveries WHERE request_id = $1", ids[1]);
    const char *t[] = {TOPIC};
    char *published = itest_query_text(db, "SELECT count(*) FROM outbox WHERE topic = $1", 1, t);
    cr_expect_str_eq(pending_old, "1", "the fenced row stays pending for its new holder");
    cr_expect_str_eq(status_old, "queued", "the fenced row's outcome was not written");
    cr_expect_str_eq(pending_new, "0", "the row with the current epoch is final");
    cr_expect_str_eq(status_new, "sent");
    cr_expect_str_eq(published, "1", "only the current epoch's result is published");
    cr_expect_eq(counted("kizuna_dispatcher_fenced_writes_total") - fenced_before, 1);
    free(pending_old);
    free(status_old);
    free(pending_new);
    free(status_new);
    free(published);
    for (int i = 0; i < 2; i++) {
        delivery_move(ds[i], DELIVERY_DROPPED);
        delivery_free(ds[i]);
        free(bytes[i]);
    }
}
