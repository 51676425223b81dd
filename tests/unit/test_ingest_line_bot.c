/* The registry's call to LINE's GET /v2/bot/info (services/ingest/line_bot.c)
 * against a fake LINE served by common/httpd on 127.0.0.1, port 0, in this
 * process: which answer is which result (the ownership check turns each
 * into its HTTP answer), the Retry-After it passes on, the cap on the body,
 * and that the bearer token is the one given. The fake picks its answer by
 * the token. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "ingest/line_bot.h"
#include "log.h"
#include "metrics.h"

#define BOT "U8e742f61d673b39c7fff3cecb7536ef0"

static struct httpd *server;
static struct line_bot *lb;
static char seen_path[128];

static void fake_line(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    (void)ctx;
    snprintf(seen_path, sizeof seen_path, "%s %s", httpd_request_method(req),
             httpd_request_path(req));
    const char *auth = httpd_request_header(req, "Authorization");
    const char *token = auth && strncmp(auth, "Bearer ", 7) == 0 ? auth + 7 : "";
    if (strcmp(token, "ok") == 0) {
        httpd_respond_json(resp, 200,
                           "{\"userId\":\"" BOT "\",\"basicId\":\"@8e742f61\","
                           "\"displayName\":\"Shop\",\"chatMode\":\"bot\","
                           "\"markAsReadMode\":\"auto\"}");
    } else if (strcmp(token, "busy") == 0) {
        httpd_response_header(resp, "Retry-After", "7");
        httpd_respond_json(resp, 429, "{\"message\":\"Too many requests\"}");
    } else if (strcmp(token, "down") == 0) {
        httpd_respond_json(resp, 500, "{\"message\":\"Internal error\"}");
    } else if (strcmp(token, "forbidden") == 0) {
        httpd_respond_json(resp, 403, "{\"message\":\"Not allowed\"}");
    } else if (strcmp(token, "nouser") == 0) {
        httpd_respond_json(resp, 200, "{\"basicId\":\"@x\"}");
    } else if (strcmp(token, "numeric") == 0) {
        httpd_respond_json(resp, 200, "{\"userId\":42}");
    } else if (strcmp(token, "notjson") == 0) {
        httpd_respond(resp, 200, "text/html", "<html>", 6);
    } else if (strcmp(token, "moved") == 0) {
        httpd_response_header(resp, "Location", "http://127.0.0.1:1/v2/bot/info");
        httpd_respond(resp, 302, "text/plain", "", 0);
    } else if (strcmp(token, "huge") == 0) {
        size_t n = LINE_BOT_BODY_CAP + 1024;
        char *big = malloc(n + 1);
        cr_assert_not_null(big);
        memset(big, ' ', n);
        static const char head[] = "{\"userId\":\"" BOT "\",\"pad\":\"";
        memcpy(big, head, sizeof head - 1);
        memcpy(big + n - 2, "\"}", 2);
        big[n] = '\0';
        httpd_respond_json(resp, 200, big);
        free(big);
    } else {
        httpd_respond_json(resp, 401, "{\"message\":\"Authentication failed.\"}");
    }
}

static void fake_start(void)
{
    log_init("test", LOG_ERROR);
    char err[256];
    struct httpd_options opts = {
        .name = "fake-line", .port = 0, .threads = 2, .handler = fake_line, .ctx = NULL};
    server = httpd_start(&opts, err, sizeof err);
    cr_assert_not_null(server, "httpd_start: %s", err);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/", httpd_port(server));
    lb = line_bot_new(base, err, sizeof err);
    cr_assert_not_null(lb, "line_bot_new: %s", err);
}

static void fake_stop(void)
{
    line_bot_free(&lb);
    httpd_stop(&server);
    metrics_free_all();
}

TestSuite(ingest_line_bot, .init = fake_start, .fini = fake_stop, .timeout = 30);

Test(ingest_line_bot, a_known_token_gives_its_bots_user_id_from_get_v2_bot_info)
{
    struct line_bot_answer a;
    cr_assert_eq(line_bot_user_id(lb, "ok", &a), LINE_BOT_OK, "%s", a.error);
    cr_expect_str_eq(a.user_id, BOT);
    cr_expect_eq(a.http_status, 200);
    cr_expect_str_eq(seen_path, "GET /v2/bot/info", "the base's trailing slash is not doubled");
}

static const struct {
    const char *token;
    enum line_bot_result result;
    long status;
    int retry_after_s;
} answers[] = {
    {"unknown", LINE_BOT_UNAUTHORIZED, 401, LINE_BOT_RETRY_AFTER_S},
    {"forbidden", LINE_BOT_REFUSED, 403, LINE_BOT_RETRY_AFTER_S},
    {"busy", LINE_BOT_UNAVAILABLE, 429, 7},
    {"down", LINE_BOT_UNAVAILABLE, 500, LINE_BOT_RETRY_AFTER_S},
    {"nouser", LINE_BOT_BAD_ANSWER, 200, LINE_BOT_RETRY_AFTER_S},
    {"numeric", LINE_BOT_BAD_ANSWER, 200, LINE_BOT_RETRY_AFTER_S},
    {"notjson", LINE_BOT_BAD_ANSWER, 200, LINE_BOT_RETRY_AFTER_S},
    {"moved", LINE_BOT_BAD_ANSWER, 302, LINE_BOT_RETRY_AFTER_S},
    {"huge", LINE_BOT_BAD_ANSWER, 200, LINE_BOT_RETRY_AFTER_S},
};

Test(ingest_line_bot, every_other_answer_is_a_result_the_check_can_explain)
{
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
        struct line_bot_answer a;
        enum line_bot_result r = line_bot_user_id(lb, answers[i].token, &a);
        cr_expect_eq(r, answers[i].result, "%s: result %d, want %d (%s)", answers[i].token, r,
                     answers[i].result, a.error);
        cr_expect_eq(a.http_status, answers[i].status, "%s: status %ld", answers[i].token,
                     a.http_status);
        cr_expect_eq(a.retry_after_s, answers[i].retry_after_s, "%s: Retry-After %d",
                     answers[i].token, a.retry_after_s);
        cr_expect_eq(a.user_id[0], '\0', "%s: no user id", answers[i].token);
        cr_expect_neq(a.error[0], '\0', "%s: a reason for the log", answers[i].token);
        cr_expect_null(strstr(a.error, answers[i].token), "%s: the token is not in the reason",
                       answers[i].token);
    }
}

Test(ingest_line_bot, nothing_listening_is_unavailable_at_once)
{
    char err[256];
    struct line_bot *dead = line_bot_new("http://127.0.0.1:1", err, sizeof err);
    cr_assert_not_null(dead, "%s", err);
    struct line_bot_answer a;
    cr_expect_eq(line_bot_user_id(dead, "ok", &a), LINE_BOT_UNAVAILABLE);
    cr_expect_eq(a.http_status, 0);
    cr_expect_eq(a.retry_after_s, LINE_BOT_RETRY_AFTER_S);
    line_bot_free(&dead);
    cr_expect_null(dead);
}

Test(ingest_line_bot, a_base_url_too_long_or_empty_is_refused)
{
    char err[256], base[700];
    memset(base, 'a', sizeof base - 1);
    memcpy(base, "https://", 8);
    base[sizeof base - 1] = '\0';
    cr_expect_null(line_bot_new(base, err, sizeof err));
    cr_expect_null(line_bot_new("", err, sizeof err));
    cr_expect_null(line_bot_new(NULL, err, sizeof err));
}
