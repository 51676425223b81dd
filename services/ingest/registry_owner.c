/* The registry's ownership check (decision 0011). A tenant registering a
 * LINE channel must hold that channel's access token, and the token must be
 * the token of the bot it names: LINE's bot info, asked with the token,
 * says whose token it is. Without it any tenant could register a channel
 * id it does not own, or take over one another tenant deleted. The answer
 * is precise, so that an operator knows whether to fix the token, the bot
 * user id, or wait for LINE; nothing is stored on any failure because the
 * check runs before the transaction. */
#include <stdio.h>
#include <string.h>

#include "httpd.h"
#include "line_bot.h"
#include "log.h"
#include "metrics.h"
#include "registry_private.h"

static void owner_count(struct registry *reg, const char *result)
{
    if (reg->owner_checks)
        metrics_add(reg->owner_checks, 1, result);
}

bool registry_owner_check(struct registry *reg, const char *tenant, const char *channel_id,
                          const char *access_token, const char *bot_user_id,
                          struct httpd_response *resp)
{
    struct line_bot_answer a;
    enum line_bot_result r = line_bot_user_id(reg->line, access_token, &a);
    char status[24];
    snprintf(status, sizeof status, "%ld", a.http_status);
    switch (r) {
    case LINE_BOT_OK:
        if (strcmp(a.user_id, bot_user_id) == 0) {
            owner_count(reg, "owned");
            return true;
        }
        owner_count(reg, "not_owned");
        log_warn("channel refused: the access token belongs to another bot", "tenant", tenant,
                 "channel", channel_id, "bot_user_id", bot_user_id, "line_user_id", a.user_id);
        httpd_respond_error(resp, 422, "channel_not_owned",
                            "the access_token belongs to another LINE bot than bot_user_id "
                            "(LINE's GET /v2/bot/info names another userId)",
                            "bot_user_id");
        return false;
    case LINE_BOT_UNAUTHORIZED:
    case LINE_BOT_REFUSED:
        owner_count(reg, "invalid_token");
        log_info("channel refused: LINE does not accept the access token", "tenant", tenant,
                 "channel", channel_id, "http_status", status);
        httpd_respond_error(
            resp, 422, "invalid_access_token",
            r == LINE_BOT_UNAUTHORIZED
                ? "LINE does not accept the access_token (401 from GET /v2/bot/info)"
                : "LINE refuses the bot info to the access_token (4xx from GET /v2/bot/info)",
            "access_token");
        return false;
    case LINE_BOT_UNAVAILABLE:
    case LINE_BOT_BAD_ANSWER:
        break;
    }
    owner_count(reg, "unavailable");
    log_warn("channel ownership not checked: LINE unavailable", "tenant", tenant, "channel",
             channel_id, "http_status", status, "error", a.error);
    char retry[16];
    snprintf(retry, sizeof retry, "%d", a.retry_after_s);
    httpd_response_header(resp, "Retry-After", retry);
    httpd_respond_error(resp, r == LINE_BOT_BAD_ANSWER ? 502 : 503, "line_unavailable",
                        r == LINE_BOT_BAD_ANSWER
                            ? "LINE's bot info answer could not be read; nothing was stored"
                            : "LINE could not be asked who owns the access_token; nothing was "
                              "stored, try again later",
                        NULL);
    return false;
}
