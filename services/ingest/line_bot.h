/* Proof that a channel's access token is its own: LINE's GET /v2/bot/info
 * answers, for a valid token, the userId of the bot the token belongs to.
 * The registry asks it at registration and when the token or the bot user
 * id changes (decision 0011), outside every lock and transaction.
 * libcurl, TLS 1.2 or higher with verification, no redirects, short
 * timeouts, a capped answer. Thread-safe: each call uses its own handle. */
#ifndef KIZUNA_INGEST_LINE_BOT_H
#define KIZUNA_INGEST_LINE_BOT_H

#include <stddef.h>

#define LINE_BOT_USER_ID_MAX 64  /* LINE's are "U" + 32 hex digits */
#define LINE_BOT_BODY_CAP 16384  /* BotInfoResponse is a few hundred bytes */
#define LINE_BOT_CONNECT_MS 2000 /* connecting to LINE */
#define LINE_BOT_TIMEOUT_MS 5000 /* the whole call; an admin waits for it */
#define LINE_BOT_RETRY_AFTER_S 5 /* what we suggest when LINE gave nothing */

enum line_bot_result {
    LINE_BOT_OK = 0,       /* 200 with a userId: user_id is filled */
    LINE_BOT_UNAUTHORIZED, /* 401: LINE does not know the token */
    LINE_BOT_REFUSED,      /* another 4xx (403...): the token cannot read the bot */
    LINE_BOT_UNAVAILABLE,  /* no answer, a timeout, 429 or 5xx: try again later */
    LINE_BOT_BAD_ANSWER,   /* 200 without a readable userId, or a body over the cap */
};

struct line_bot_answer {
    long http_status;                       /* 0: no answer */
    char user_id[LINE_BOT_USER_ID_MAX + 1]; /* LINE_BOT_OK */
    int retry_after_s;                      /* LINE_BOT_UNAVAILABLE: seconds to wait, >= 1 */
    char error[160];                        /* why, for the log (never the token) */
};

struct line_bot;

/* base_url is INGEST_LINE_API_BASE, checked by line_base_url_check
 * (common/line_base_url.h); it is copied. Returns NULL with errstr. Call
 * at start-up (it initialises libcurl). */
struct line_bot *line_bot_new(const char *base_url, char *errstr, size_t errcap);
/* Frees and sets *lb to NULL; accepts NULL. */
void line_bot_free(struct line_bot **lb);

/* GET {base}/v2/bot/info with "Authorization: Bearer <access_token>"
 * (borrowed; wiped from every buffer this call made). Blocks for at most
 * LINE_BOT_TIMEOUT_MS. Fills out and returns its result. Any thread. */
enum line_bot_result line_bot_user_id(struct line_bot *lb, const char *access_token,
                                      struct line_bot_answer *out);

#endif
