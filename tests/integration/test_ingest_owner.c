/* Channel ownership (issue 9, decision 0011): kizuna-ingest registers a
 * LINE channel only when LINE's GET /v2/bot/info, asked with the access
 * token given, names the bot user id given. Before, any tenant could
 * register a channel id it did not own, or take over one another tenant
 * had deleted, with any token. The real binary runs on its own ports
 * (public 18220, admin 18221) against the simulator (ITEST_SIM_PORT), which
 * plays LINE: it knows which token is whose bot, can answer 5xx, and can
 * be stopped. Every refusal must store nothing: no row, no version, no
 * record. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "itest.h"
#include "log.h"

#define PUBLIC_PORT 18220
#define ADMIN_PORT 18221
#define BOT "U8e742f61d673b39c7fff3cecb7536ef0"
#define OTHER_BOT "Ufedcba9876543210fedcba9876543210"

static pid_t ingest_pid;
static char ingest_log[256];
static char channel[32];
static char token[64];       /* the channel's token on LINE: bot BOT */
static char other_token[64]; /* another channel's token: bot OTHER_BOT */
static struct db *db;

static void owner_start(void)
{
    log_init("test-ingest-owner", LOG_WARN);
    itest_env("INGEST_DATABASE_URL");
    itest_env("KIZUNA_JWT_KEY");
    snprintf(ingest_log, sizeof ingest_log, "%s/tests/ingest-owner-%ld.log", itest_build_dir(),
             (long)getpid());
    itest_sim_start("ingest-owner");
    char public_port[48], admin_port[48];
    snprintf(public_port, sizeof public_port, "INGEST_PUBLIC_PORT=%d", PUBLIC_PORT);
    snprintf(admin_port, sizeof admin_port, "INGEST_ADMIN_PORT=%d", ADMIN_PORT);
    const char *settings[] = {ITEST_SIM_INGEST_SETTING, public_port, admin_port, "LOG_LEVEL=info",
                              NULL};
    ingest_pid = itest_service_spawn("ingest", settings, ingest_log);
    cr_assert(itest_http_wait_ready(ADMIN_PORT, 45000),
              "kizuna-ingest did not become ready; see %s", ingest_log);

    itest_unique_digits(channel, sizeof channel, '6');
    snprintf(token, sizeof token, "own-%s", channel);
    snprintf(other_token, sizeof other_token, "other-%s", channel);
    itest_sim_channel_add(channel, token, BOT);
    char other[32];
    itest_unique_digits(other, sizeof other, '6');
    itest_sim_channel_add(other, other_token, OTHER_BOT);
    db = itest_db_connect_env("INGEST_DATABASE_URL");
}

/* The last step of every test: both processes stop cleanly, and no token
 * reached ingest's log. */
static void owner_finish(void)
{
    cr_assert_gt(ingest_pid, 0, "kizuna-ingest was stopped before the end of the test");
    itest_service_stop(&ingest_pid, ingest_log);
    itest_sim_stop();
    const char *const forbidden[] = {token, other_token, NULL};
    itest_log_expect_clean(ingest_log, forbidden);
}

static void owner_reap(void)
{
    itest_service_reap(&ingest_pid);
    itest_sim_reap();
    db_free(&db);
}

TestSuite(ingest_owner, .init = owner_start, .fini = owner_reap, .timeout = 90);

/* One admin call as tenant (role operator); body JSON or NULL. */
static struct itest_http call(const char *method, const char *path, const char *tenant,
                              const char *body)
{
    const char *jwt = itest_env("KIZUNA_JWT_KEY");
    char *t = auth_token_issue(jwt, strlen(jwt), tenant, "itest", "operator", 600, time(NULL));
    cr_assert_not_null(t);
    char url[256], auth[4200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", ADMIN_PORT, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", t);
    free(t);
    const char *headers[] = {"Content-Type: application/json", auth, NULL};
    struct itest_http res;
    itest_http_do(method, url, headers, body, body ? strlen(body) : 0, &res);
    cr_assert_neq(res.status, 0, "%s %s: %s", method, path, res.error);
    return res;
}

/* A Retry-After in seconds, or -1 when it is not a positive integer. */
static long atoi_positive(const char *text)
{
    char *end = NULL;
    long v = strtol(text, &end, 10);
    return end && end != text && *end == '\0' && v > 0 ? v : -1;
}

static struct itest_http create(const char *tenant, const char *access_token, const char *bot)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"channel_id\":\"%s\",\"name\":\"Shop\",\"channel_secret\":\"s3cr3t\","
             "\"access_token\":\"%s\",\"bot_user_id\":\"%s\"}",
             channel, access_token, bot);
    return call("POST", "/v1/channels", tenant, body);
}

static void expect_error(const struct itest_http *res, long status, const char *code,
                         const char *field, const char *what)
{
    cr_expect_eq(res->status, status, "%s: %ld %s", what, res->status, res->body);
    json_t *err = json_object_get(res->json, "error");
    const char *got = json_string_value(json_object_get(err, "code"));
    cr_expect(got && strcmp(got, code) == 0, "%s: code %s, want %s", what, got ? got : "(none)",
              code);
    const char *f = json_string_value(json_object_get(err, "field"));
    if (field)
        cr_expect(f && strcmp(f, field) == 0, "%s: field %s, want %s", what, f ? f : "(none)",
                  field);
    else
        cr_expect_null(f, "%s: field %s", what, f);
}

/* The registry's row for the test channel: "" when there is none, else
 * "<tenant>|<version>|<token fingerprint>|<bot>|<deleted>". Caller frees. */
static char *row_of(void)
{
    const char *values[] = {channel};
    char *row = itest_query_text(
        db,
        "SELECT COALESCE((SELECT tenant_id || '|' || version || '|' || access_token_fingerprint "
        "|| '|' || bot_user_id || '|' || (deleted_at IS NOT NULL) FROM channels "
        "WHERE channel_id = $1), '')",
        1, values);
    cr_assert_not_null(row);
    return row;
}

static void expect_no_row(const char *what)
{
    char *row = row_of();
    cr_expect_str_eq(row, "", "%s: nothing is stored, yet the row is %s", what, row);
    free(row);
}

Test(ingest_owner, the_owners_token_and_bot_register_the_channel)
{
    struct itest_http res = create("acme", token, BOT);
    cr_expect_eq(res.status, 201, "%s", res.body);
    itest_http_free(&res);
    char *row = row_of();
    cr_expect(strncmp(row, "acme|1|", 7) == 0, "%s", row);
    free(row);
    owner_finish();
}

Test(ingest_owner, a_token_of_another_bot_is_422_channel_not_owned_and_stores_nothing)
{
    struct itest_http res = create("acme", other_token, BOT);
    expect_error(&res, 422, "channel_not_owned", "bot_user_id", "another bot's token");
    itest_http_free(&res);
    expect_no_row("another bot's token");
    /* Naming the token's real bot does not help: the channel is not its. */
    res = create("acme", token, OTHER_BOT);
    expect_error(&res, 422, "channel_not_owned", "bot_user_id", "another bot user id");
    itest_http_free(&res);
    expect_no_row("another bot user id");
    owner_finish();
}

Test(ingest_owner, a_token_line_does_not_know_is_422_invalid_access_token)
{
    struct itest_http res = create("acme", "made-up-token", BOT);
    expect_error(&res, 422, "invalid_access_token", "access_token", "an unknown token");
    cr_expect_null(strstr(res.body, "made-up-token"), "the token is never echoed: %s", res.body);
    itest_http_free(&res);
    expect_no_row("an unknown token");
    owner_finish();
}

Test(ingest_owner, line_answering_5xx_is_503_line_unavailable_with_retry_after)
{
    cr_assert_eq(itest_sim_call("PUT", "/_sim/faults",
                                "{\"error_rate\":1,\"after_accept\":0,\"error_status\":500}"),
                 200);
    struct itest_http res = create("acme", token, BOT);
    expect_error(&res, 503, "line_unavailable", NULL, "LINE answers 500");
    cr_expect_gt(atoi_positive(res.retry_after), 0, "Retry-After: '%s'", res.retry_after);
    itest_http_free(&res);
    expect_no_row("LINE answers 500");

    cr_assert_eq(itest_sim_call("PUT", "/_sim/faults", "{\"error_rate\":0}"), 200);
    res = create("acme", token, BOT);
    cr_expect_eq(res.status, 201, "LINE is back: %s", res.body);
    itest_http_free(&res);
    owner_finish();
}

Test(ingest_owner, line_unreachable_is_503_and_stores_nothing)
{
    itest_sim_stop(); /* nothing listens on ITEST_SIM_PORT now */
    long start = itest_now_ms();
    struct itest_http res = create("acme", token, BOT);
    expect_error(&res, 503, "line_unavailable", NULL, "LINE unreachable");
    cr_expect_gt(atoi_positive(res.retry_after), 0, "Retry-After: '%s'", res.retry_after);
    cr_expect_lt(itest_now_ms() - start, 6000, "the check gives up within its timeout");
    itest_http_free(&res);
    expect_no_row("LINE unreachable");
    owner_finish();
}

Test(ingest_owner, a_patch_of_the_token_or_the_bot_is_checked_again)
{
    struct itest_http res = create("acme", token, BOT);
    cr_assert_eq(res.status, 201, "%s", res.body);
    itest_http_free(&res);
    char *before = row_of();
    char path[64], body[256];
    snprintf(path, sizeof path, "/v1/channels/%s", channel);

    /* Another bot's token, the bot user id kept: refused, nothing changed. */
    snprintf(body, sizeof body, "{\"access_token\":\"%s\"}", other_token);
    res = call("PATCH", path, "acme", body);
    expect_error(&res, 422, "channel_not_owned", "bot_user_id", "PATCH another bot's token");
    itest_http_free(&res);
    /* The bot user id alone, checked against the stored token. */
    res = call("PATCH", path, "acme", "{\"bot_user_id\":\"" OTHER_BOT "\"}");
    expect_error(&res, 422, "channel_not_owned", "bot_user_id", "PATCH another bot user id");
    itest_http_free(&res);
    res = call("PATCH", path, "acme", "{\"access_token\":\"made-up-token\"}");
    expect_error(&res, 422, "invalid_access_token", "access_token", "PATCH an unknown token");
    itest_http_free(&res);
    char *after = row_of();
    cr_expect_str_eq(after, before, "refused PATCHes change nothing");
    free(after);

    /* A second token of the same bot is accepted; a rename asks nobody. */
    itest_sim_channel_add(channel, "own-second-token", BOT);
    res = call("PATCH", path, "acme", "{\"access_token\":\"own-second-token\"}");
    cr_expect_eq(res.status, 200, "%s", res.body);
    itest_http_free(&res);
    itest_sim_stop();
    res = call("PATCH", path, "acme", "{\"name\":\"Renamed\"}");
    cr_expect_eq(res.status, 200, "a change that is not the token or bot needs no LINE: %s",
                 res.body);
    itest_http_free(&res);
    free(before);
    owner_finish();
}

Test(ingest_owner, a_deleted_channel_goes_to_another_tenant_only_with_its_token)
{
    struct itest_http res = create("acme", token, BOT);
    cr_assert_eq(res.status, 201, "%s", res.body);
    itest_http_free(&res);
    char path[64];
    snprintf(path, sizeof path, "/v1/channels/%s", channel);
    res = call("DELETE", path, "acme", NULL);
    cr_assert_eq(res.status, 204, "%s", res.body);
    itest_http_free(&res);
    char *deleted = row_of();

    res = create("globex", other_token, BOT);
    expect_error(&res, 422, "channel_not_owned", "bot_user_id", "takeover without the token");
    itest_http_free(&res);
    char *row = row_of();
    cr_expect_str_eq(row, deleted, "the deleted row is untouched");
    free(row);

    res = create("globex", token, BOT);
    cr_expect_eq(res.status, 201, "the channel's own token: %s", res.body);
    itest_http_free(&res);
    row = row_of();
    cr_expect(strncmp(row, "globex|3|", 9) == 0, "%s", row);
    free(row);
    free(deleted);
    owner_finish();
}

Test(ingest_owner, a_plain_http_line_base_that_is_not_loopback_is_refused_at_start)
{
    char log_path[300];
    snprintf(log_path, sizeof log_path, "%s/tests/ingest-owner-badbase-%ld.log", itest_build_dir(),
             (long)getpid());
    const char *settings[] = {"INGEST_LINE_API_BASE=http://api.line.me", "INGEST_PUBLIC_PORT=18222",
                              "INGEST_ADMIN_PORT=18223", NULL};
    pid_t pid = itest_service_spawn("ingest", settings, log_path);
    int status = itest_process_wait(pid, 10000);
    cr_expect(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 2,
              "exit 2 for a config error (status %d); see %s", status, log_path);
    FILE *f = fopen(log_path, "r");
    cr_assert_not_null(f);
    char line[4096];
    bool named = false;
    while (fgets(line, sizeof line, f))
        named = named || strstr(line, "INGEST_LINE_API_BASE") != NULL;
    fclose(f);
    cr_expect(named, "the log names the variable; see %s", log_path);
    owner_finish();
}
