/* kizuna-ingest when PostgreSQL stops answering without going away (issue
 * 9): a session of the test holds an exclusive lock on ingest.channels, so
 * the lookup that refills an expired cache entry blocks inside the server.
 * The statement must end at DB_STATEMENT_TIMEOUT_MS, and while it hangs
 * every other webhook for the channel must be answered at once from the
 * expired entry (no lock of the webhook path is held across the query).
 *
 * kizuna-ingest runs on its own ports (public 18190, admin 18191), as in
 * the outage suite (suites run one at a time). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "itest.h"
#include "log.h"

#define PUBLIC_PORT 18190
#define ADMIN_PORT 18191
#define BOT_USER "U8e742f61d673b39c7fff3cecb7536ef0"
#define STATEMENT_TIMEOUT_MS 3000
#define CACHE_TTL_MS 5000 /* registry.c's REGISTRY_TTL_FOUND_MS */
#define AT_ONCE_MS 1000   /* an answer from the expired entry */

static pid_t ingest_pid;
static char ingest_log[256];
static char tenant[64];
static char channel[32];
static char secret[33];
static struct db *locker;

static void stall_start(void)
{
    log_init("test-ingest-db-stall", LOG_WARN);
    itest_env("INGEST_DATABASE_URL");
    itest_env("KIZUNA_JWT_KEY");
    snprintf(tenant, sizeof tenant, "t-stall-%ld", (long)getpid());
    snprintf(ingest_log, sizeof ingest_log, "%s/tests/ingest-db-stall-%ld.log", itest_build_dir(),
             (long)getpid());
    char public_port[48], admin_port[48], timeout[48];
    snprintf(public_port, sizeof public_port, "INGEST_PUBLIC_PORT=%d", PUBLIC_PORT);
    snprintf(admin_port, sizeof admin_port, "INGEST_ADMIN_PORT=%d", ADMIN_PORT);
    snprintf(timeout, sizeof timeout, "DB_STATEMENT_TIMEOUT_MS=%d", STATEMENT_TIMEOUT_MS);
    const char *settings[] = {ITEST_SIM_INGEST_SETTING,  public_port,      admin_port, timeout,
                              "INGEST_PUBLIC_THREADS=8", "LOG_LEVEL=info", NULL};
    itest_sim_start("ingest-db-stall");
    ingest_pid = itest_service_spawn("ingest", settings, ingest_log);
    cr_assert(itest_http_wait_ready(ADMIN_PORT, 45000),
              "kizuna-ingest did not become ready; see %s", ingest_log);
    itest_random_hex(secret, 16);
    itest_unique_digits(channel, sizeof channel, '7');
    itest_ingest_channel_register(ADMIN_PORT, tenant, channel, secret);
}

/* The last step of every test, part of its verdict: the service stops
 * cleanly (SIGTERM, exit 0 within 10 s), no sanitizer report and no
 * channel secret in its log. */
static void stall_finish(void)
{
    cr_assert_gt(ingest_pid, 0, "kizuna-ingest was stopped before the end of the test");
    itest_service_stop(&ingest_pid, ingest_log);
    itest_sim_stop();
    const char *const forbidden[] = {secret, NULL};
    itest_log_expect_clean(ingest_log, forbidden);
}

/* Whatever happened: the lock released (other suites use the table) and
 * the service gone. */
static void stall_end(void)
{
    if (locker)
        db_rollback(locker);
    db_free(&locker);
    itest_service_reap(&ingest_pid);
    itest_sim_reap();
}

TestSuite(ingest_stall, .init = stall_start, .fini = stall_end, .timeout = 120);

static long post_empty_webhook(long *took_ms)
{
    char body[256], sig[64], h[128], url[128];
    snprintf(body, sizeof body, "{\"destination\":\"%s\",\"events\":[]}", BOT_USER);
    itest_line_sign(secret, body, strlen(body), sig);
    snprintf(h, sizeof h, "x-line-signature: %s", sig);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/line/webhook/%s", PUBLIC_PORT, channel);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct itest_http res;
    long t0 = itest_now_ms();
    long status = itest_http_do("POST", url, headers, body, strlen(body), &res);
    *took_ms = itest_now_ms() - t0;
    itest_http_free(&res);
    return status;
}

struct slow_call {
    long status, took_ms;
};

static void *slow_call_run(void *arg)
{
    struct slow_call *c = arg;
    c->status = post_empty_webhook(&c->took_ms);
    return NULL;
}

static long metric_value(const char *line_prefix)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", ADMIN_PORT);
    struct itest_http m;
    cr_assert_eq(itest_http_do("GET", url, NULL, NULL, 0, &m), 200, "%s: %s", url, m.error);
    const char *at = strstr(m.body, line_prefix);
    long v = at ? strtol(at + strlen(line_prefix), NULL, 10) : 0;
    itest_http_free(&m);
    return v;
}

static bool log_mentions(const char *needle)
{
    FILE *f = fopen(ingest_log, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

Test(ingest_stall, a_stuck_lookup_times_out_and_expired_entries_answer_meanwhile)
{
    long took = 0;
    cr_assert_eq(post_empty_webhook(&took), 200, "warm-up webhook");

    /* The lookup's next query blocks on this lock inside the server. */
    locker = itest_db_connect_env("INGEST_DATABASE_URL");
    cr_assert_eq(db_begin(locker), DB_OK);
    cr_assert_eq(db_exec(locker, "LOCK TABLE channels IN ACCESS EXCLUSIVE MODE", 0, NULL, NULL),
                 DB_OK, "%s", db_error_message(locker));
    usleep((CACHE_TTL_MS + 500) * 1000); /* the cached entry expires */

    /* The first webhook refills, and waits for the statement timeout. */
    struct slow_call first = {0};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, slow_call_run, &first), 0);
    usleep(500 * 1000);
    /* Meanwhile the others are answered from the expired entry at once. */
    for (int i = 0; i < 3; i++) {
        long status = post_empty_webhook(&took);
        cr_expect_eq(status, 200, "webhook %d during the stall: %ld", i, status);
        cr_expect_lt(took, AT_ONCE_MS, "webhook %d during the stall took %ld ms", i, took);
    }
    pthread_join(t, NULL);
    cr_expect_eq(first.status, 200, "the refilling webhook: %ld", first.status);
    cr_expect_geq(first.took_ms, STATEMENT_TIMEOUT_MS - 500, "answered before the timeout: %ld ms",
                  first.took_ms);
    cr_expect_lt(first.took_ms, STATEMENT_TIMEOUT_MS + DB_CLIENT_GRACE_MS + 1000,
                 "the stuck lookup took %ld ms", first.took_ms);

    cr_assert_eq(db_rollback(locker), DB_OK);
    db_free(&locker);
    cr_expect(log_mentions("statement timeout"), "no statement timeout in %s", ingest_log);
    cr_expect_geq(metric_value("kizuna_registry_lookups_total{result=\"stale\"} "), 4);

    /* The database answers again: the next refill after the back-off works. */
    usleep(1200 * 1000);
    cr_expect_eq(post_empty_webhook(&took), 200);
    cr_expect_geq(metric_value("kizuna_registry_lookups_total{result=\"found\"} "), 1);

    stall_finish();
}
