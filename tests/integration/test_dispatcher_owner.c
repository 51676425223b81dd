/* A LINE channel id that changes hands (issue 9, channel ownership;
 * decision 0011): tenant A uses the channel (sends, lowers a rate limit),
 * deletes it, and tenant B registers it. B must start with LINE's default
 * limits and no quota usage, on the replica that served A and after a
 * restart (the channel_limits and quota_usage tables are keyed by tenant
 * and channel, migration 0007); A's rows stay A's. Before, both tables
 * were keyed by the channel id alone and B inherited A's override and
 * month. The quota sync with LINE is off here, so the counts are the
 * dispatcher's own. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "itest.h"
#include "test_dispatcher_harness.h"

#define TENANT_B "itest-owner-b"
#define SENT_BY_A 3

static void teardown(void)
{
    dh_teardown();
}

TestSuite(dispatcher_owner, .timeout = 120, .fini = teardown);

static const char *const settings[] = {"DISPATCHER_QUOTA_SYNC_S=0", NULL};

static bool accepted_reached(void *ctx)
{
    const long *n = ctx;
    return dh_sim_stat(NULL, "accepted") >= *n;
}

/* The test channel's quota row of /v1/quota as the token's tenant. */
static long long quota_used(void)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/quota?channel=%s", dh.channel);
    json_t *q = NULL;
    cr_assert_eq(dh_api("GET", path, NULL, &q), 200);
    json_t *row = json_array_get(json_object_get(q, "quota"), 0);
    json_t *used = json_object_get(row, "used");
    cr_assert(json_is_integer(used), "no used in the quota view");
    long long n = json_integer_value(used);
    json_decref(q);
    return n;
}

/* The push limit as the token's tenant sees it: its limit, and whether it
 * is an override. */
static long push_limit(bool *overridden)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/channels/%s/limits", dh.channel);
    json_t *l = NULL;
    cr_assert_eq(dh_api("GET", path, NULL, &l), 200);
    json_t *push = json_object_get(json_object_get(l, "limits"), "push");
    long limit = (long)json_integer_value(json_object_get(push, "limit"));
    *overridden = json_is_true(json_object_get(push, "overridden"));
    json_decref(l);
    return limit;
}

static bool b_owns_it(void *ctx)
{
    (void)ctx;
    char path[128];
    snprintf(path, sizeof path, "/v1/channels/%s/limits", dh.channel);
    return dh_api("GET", path, NULL, NULL) == 200;
}

/* A's and B's rows in a dispatcher table: "<tenant>=<value>;..." sorted. */
static char *rows_of(struct db *db, const char *sql)
{
    const char *values[] = {dh.channel};
    char *text = itest_query_text(db, sql, 1, values);
    cr_assert_not_null(text);
    return text;
}

Test(dispatcher_owner, a_new_owner_of_a_channel_id_starts_with_default_limits_and_no_usage)
{
    dh.monthly_quota = 1000;
    dh_setup("owner");
    dh_dispatcher_start(settings);

    /* Tenant A: a lowered push limit and three pushes. */
    dh_limits_set("{\"push\": 10}");
    for (int i = 0; i < SENT_BY_A; i++) {
        char text[64];
        snprintf(text, sizeof text, "from A %d", i);
        dh_produce_push(DH_PROBE_USER, text, NULL);
    }
    dh_flush();
    long want = SENT_BY_A;
    cr_assert(dh_wait(accepted_reached, &want, 30000), "A's pushes were not sent");
    bool overridden = false;
    cr_expect_eq(push_limit(&overridden), 10);
    cr_expect(overridden);
    /* The writer records usage after the call: wait for the row. */
    long long used = 0;
    for (long start = itest_now_ms(); itest_now_ms() - start < 10000 && used < SENT_BY_A;)
        used = quota_used();
    cr_assert_eq(used, SENT_BY_A, "A's month counts its pushes");

    /* A deletes the channel; B registers it (ingest proved B holds its
     * token) and the topic says so. */
    dh_channel_move(DH_TENANT, true);
    dh_channel_move(TENANT_B, false);
    const char *key = itest_env("KIZUNA_JWT_KEY");
    char *jwt = auth_token_issue(key, strlen(key), TENANT_B, "itest", "admin", 600, time(NULL));
    char jwt_a[sizeof dh.jwt];
    memcpy(jwt_a, dh.jwt, sizeof jwt_a);
    snprintf(dh.jwt, sizeof dh.jwt, "%s", jwt);
    free(jwt);
    cr_assert(dh_wait(b_owns_it, NULL, 20000), "the dispatcher never saw B as the owner");

    cr_expect_eq(push_limit(&overridden), 2000, "LINE's default push limit for B");
    cr_expect_not(overridden, "A's override is not B's");
    cr_expect_eq(quota_used(), 0, "B's month starts at zero");

    /* B sends one push: it counts for B only. */
    Kizuna__V1__SendRequest req;
    Kizuna__V1__Envelope env;
    dh_request_init(&req, &env, KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH, NULL);
    env.tenant_id = TENANT_B;
    char msg[] = "{\"type\":\"text\",\"text\":\"from B\"}";
    char *msgs[] = {msg};
    req.to = DH_PROBE_USER;
    req.n_messages_json = 1;
    req.messages_json = msgs;
    dh_produce(&req);
    dh_flush();
    want = SENT_BY_A + 1;
    cr_assert(dh_wait(accepted_reached, &want, 30000), "B's push was not sent");
    used = 0;
    for (long start = itest_now_ms(); itest_now_ms() - start < 10000 && used < 1;)
        used = quota_used();
    cr_expect_eq(used, 1, "B's month counts B's push only");

    /* What the tables hold: each tenant's own rows. */
    struct db *db = itest_db_connect_env("DISPATCHER_DATABASE_URL");
    char *usage = rows_of(db, "SELECT string_agg(tenant_id || '=' || used, ';' ORDER BY tenant_id) "
                              "FROM quota_usage WHERE channel_id = $1");
    char want_usage[128];
    snprintf(want_usage, sizeof want_usage, "%s=%d;%s=1", DH_TENANT, SENT_BY_A, TENANT_B);
    cr_expect_str_eq(usage, want_usage);
    free(usage);
    char *limits = rows_of(db, "SELECT string_agg(tenant_id || '=' || class || ':' || rate_limit, "
                               "';' ORDER BY tenant_id) FROM channel_limits WHERE channel_id = $1");
    char want_limits[128];
    snprintf(want_limits, sizeof want_limits, "%s=push:10", DH_TENANT);
    cr_expect_str_eq(limits, want_limits, "A's override stays A's");
    free(limits);
    db_free(&db);

    /* A restart reads the tables again: still B's defaults and B's month. */
    dh_dispatcher_stop();
    dh_dispatcher_start(settings);
    cr_assert(dh_wait(b_owns_it, NULL, 20000), "the restarted dispatcher never saw B");
    cr_expect_eq(push_limit(&overridden), 2000, "after a restart");
    cr_expect_not(overridden, "after a restart");
    cr_expect_eq(quota_used(), 1, "after a restart");
    memcpy(dh.jwt, jwt_a, sizeof jwt_a);
    dh_finish();
}
