/* kizuna-dispatcher when things break: the simulator answering 500 to a
 * fifth of the requests and dropping connections (half of those after it
 * accepted the send), and the dispatcher killed with SIGKILL in the middle
 * of a stream, several times. Afterwards the simulator must show every
 * request delivered exactly once: accepted == N, duplicate == 0, and every
 * recipient with one message. The crash test's scale keeps the suite short;
 * the version (10,000 sends, 5 kills) is the same test with
 * KIZUNA_CRASH_SENDS=10000 KIZUNA_CRASH_KILLS=5 KIZUNA_CRASH_RATE=1000. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_dispatcher_harness.h"

static void teardown(void)
{
    dh_teardown();
}

TestSuite(dispatcher_faults, .timeout = 180, .fini = teardown);

struct want {
    long accepted;
};

static bool accepted_reached(void *ctx)
{
    const struct want *w = ctx;
    return dh_sim_stat(NULL, "accepted") >= w->accepted;
}

static bool none_pending(void *ctx)
{
    const long *n = ctx;
    struct dh_counts c;
    dh_counts(&c);
    return c.total >= *n && c.queued == 0 && c.retrying == 0;
}

/* Checked only once no delivery is pending (every one sent or failed for
 * good): until then a retry could still add a send, a duplicate or a
 * second message, and the counts below would pass too early. */
static void expect_exactly_once(long n)
{
    long want = n;
    cr_assert(dh_wait(none_pending, &want, 30000), "deliveries left pending; see %s", dh.log_path);
    cr_expect_eq(dh_sim_stat(NULL, "accepted"), n);
    cr_expect_eq(dh_sim_stat(NULL, "duplicate"), 0);
    cr_expect_eq(dh_sim_stat(NULL, "duplicate_deliveries"), 0);
    char path[128];
    snprintf(path, sizeof path, "/_sim/messages?channel_id=%s", dh.channel);
    json_t *body = NULL;
    cr_assert_eq(dh_sim("GET", path, NULL, &body), 200);
    json_t *per = json_object_get(json_object_get(body, "recipients"), dh.channel);
    long recipients = 0, wrong = 0;
    const char *user;
    json_t *count;
    json_object_foreach(per, user, count)
    {
        recipients++;
        if (json_integer_value(count) != 1)
            wrong++;
    }
    json_decref(body);
    cr_expect_eq(recipients, n);
    cr_expect_eq(wrong, 0, "%ld recipients did not get exactly one message", wrong);
    struct dh_counts c;
    dh_counts(&c);
    cr_expect_eq(c.sent, n, "sent %ld of %ld (failed %ld, exhausted %ld, invalid %ld)", c.sent, n,
                 c.failed, c.retry_exhausted, c.invalid);
}

/* An opt-in scale from the environment, else def. */
static int env_int(const char *name, int def, int min, int max)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    cr_assert(end && *end == '\0' && n >= min && n <= max, "%s must be %d..%d", name, min, max);
    return (int)n;
}

static void produce_pushes(int from, int to, const char *label)
{
    for (int i = from; i < to; i++) {
        char user[40], text[64];
        snprintf(user, sizeof user, "U%s%05d", label, i);
        snprintf(text, sizeof text, "%s message %d", label, i);
        dh_produce_push(user, text, NULL);
    }
    dh_flush();
}

Test(dispatcher_faults, server_errors_and_dropped_connections_still_deliver_exactly_once)
{
    enum { N = 300 };
    dh_setup("faults");
    dh_dispatcher_start(NULL);
    dh_dispatcher_wait_consuming();
    cr_assert_eq(dh_sim("PUT", "/_sim/faults",
                        "{\"error_rate\":0.2,\"drop_rate\":0.05,\"after_accept\":0.5}", NULL),
                 200);
    produce_pushes(0, N, "fault");
    struct want w = {.accepted = N};
    cr_assert(dh_wait(accepted_reached, &w, 60000), "accepted %lld of %d",
              dh_sim_stat(NULL, "accepted"), N);
    cr_assert_eq(dh_sim("PUT", "/_sim/faults", "{\"error_rate\":0,\"drop_rate\":0}", NULL), 200);
    expect_exactly_once(N);
    json_t *st = NULL;
    dh_sim("GET", "/_sim/stats", NULL, &st);
    json_t *faults = json_object_get(st, "faults");
    cr_expect_gt(json_integer_value(json_object_get(faults, "errors")), 0);
    cr_expect_gt(json_integer_value(json_object_get(faults, "drops")), 0);
    /* Sends accepted before a fault were retried with their key: 409s. */
    cr_expect_gt(json_integer_value(json_object_get(st, "conflict")), 0);
    json_decref(st);
    dh_finish();
}

Test(dispatcher_faults, kill_9_mid_stream_repeatedly_still_delivers_exactly_once)
{
    const int N = env_int("KIZUNA_CRASH_SENDS", 1500, 10, 200000);
    const int KILLS = env_int("KIZUNA_CRASH_KILLS", 4, 1, 50);
    const int RATE = env_int("KIZUNA_CRASH_RATE", 200, 10, 2000);
    dh_setup("crash");
    dh_dispatcher_start(NULL);
    /* A slower channel keeps the stream going across the kills; the
     * override is stored, so every restart keeps it. */
    char body[64];
    snprintf(body, sizeof body, "{\"push\": %d}", RATE);
    dh_limits_set(body);
    /* Calls in flight when the process dies: some accepted, unanswered. */
    cr_assert_eq(dh_sim("PUT", "/_sim/faults", "{\"latency_ms\":20}", NULL), 200);
    dh_dispatcher_wait_consuming();
    /* Auto-commit (every 5 s) must have stored the partition's offset once,
     * or a restart at "latest" would skip what it had not consumed. */
    sleep(6);

    produce_pushes(0, N / 2, "crash");
    usleep(300 * 1000); /* the first kill lands during the intake */
    for (int k = 0; k < KILLS; k++) {
        dh_dispatcher_kill9();
        if (k == 1)
            produce_pushes(N / 2, N, "crash"); /* the rest arrives while it is down */
        dh_dispatcher_start(NULL);
        if (k == KILLS - 1)
            break;
        /* Kill again only once sending is back in full swing (the intake
         * waits for the dead member's session to time out first), so that
         * every kill interrupts calls in flight. */
        struct want again = {.accepted = dh_sim_stat(NULL, "accepted") + 2 * RATE / 5};
        if (again.accepted >= N)
            break;
        cr_assert(dh_wait(accepted_reached, &again, 30000), "no progress after restart %d", k);
    }
    struct want w = {.accepted = N};
    cr_assert(dh_wait(accepted_reached, &w, 90000 + 2000L * N / RATE),
              "accepted %lld of %d; see %s", dh_sim_stat(NULL, "accepted"), N, dh.log_path);
    cr_assert_eq(dh_sim("PUT", "/_sim/faults", "{\"latency_ms\":0}", NULL), 200);
    expect_exactly_once(N);
    /* Calls cut off by a kill were sent again with their keys and LINE
     * answered 409 (counted as sent), not a second delivery. */
    cr_expect_gt(dh_sim_stat(NULL, "conflict"), 0);
    dh_finish();
}

static bool log_mentions(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* Another replica (a different instance id), not the dead one restarted:
 * the rows the dead one had taken in and not finished are moved to the
 * live one once the dead one's heartbeat is older than the lease, and sent
 * again with their keys (409 for those that got through). */
Test(dispatcher_faults, a_live_replica_takes_over_a_dead_ones_pending_deliveries_exactly_once)
{
    enum { N = 600, RATE = 100 };
    dh_setup("takeover");
    dh_dispatcher_start(NULL);
    char body[64];
    snprintf(body, sizeof body, "{\"push\": %d}", RATE);
    dh_limits_set(body);
    cr_assert_eq(dh_sim("PUT", "/_sim/faults", "{\"latency_ms\":20}", NULL), 200);
    dh_dispatcher_wait_consuming();
    sleep(6); /* the partition's offset stored once (see the crash test) */

    produce_pushes(0, N, "takeover");
    struct want some = {.accepted = 50};
    cr_assert(dh_wait(accepted_reached, &some, 30000), "nothing sent before the kill");
    dh_dispatcher_kill9();
    cr_assert_lt(dh_sim_stat(NULL, "accepted"), N, "everything was sent before the kill");

    char other[160];
    snprintf(other, sizeof other, "DISPATCHER_INSTANCE_ID=%s-b", dh.instance);
    const char *replica_b[] = {other, "DISPATCHER_LEASE_S=3", NULL};
    dh_dispatcher_start(replica_b);
    struct want w = {.accepted = N};
    cr_assert(dh_wait(accepted_reached, &w, 90000), "accepted %lld of %d; see %s",
              dh_sim_stat(NULL, "accepted"), N, dh.log_path);
    cr_assert_eq(dh_sim("PUT", "/_sim/faults", "{\"latency_ms\":0}", NULL), 200);
    expect_exactly_once(N);
    cr_expect(log_mentions(dh.log_path, "took over pending deliveries"),
              "the rows were not taken over; see %s", dh.log_path);
    dh_finish();
}
