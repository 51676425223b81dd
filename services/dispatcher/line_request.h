/* From a SendRequest to the HTTP call LINE expects: method, path, JSON body
 * and headers, exactly as LINE's Messaging API reference (and the
 * simulator) define them. Pure: no network; the caller adds the base URL
 * (DISPATCHER_LINE_API_BASE) and performs the call.
 *
 * Bodies: each messages_json entry must be one JSON object with a "type"
 * string; it is copied into the body byte for byte (LINE gets what
 * segmentation rendered, numbers and key order included). 1..5 messages;
 * multicast and bulk rich-menu calls take 1..500 user ids; the whole body is
 * capped at LINE's 2 MB. An id placed in a path must be one of LINE's id
 * forms for what the path names (line_id_valid): `all`, `..` or another
 * channel-wide word never reaches LINE, and nothing is percent-encoded
 * behind the caller's back.
 *
 * Headers: Authorization: Bearer <token>; Content-Type: application/json
 * when there is a body; X-Line-Retry-Key: request_id (a UUID) on push,
 * multicast, broadcast and narrowcast only, never on a reply (LINE refuses
 * it there; a reply token is its own once-only key).
 *
 * Reply tokens: one older than the maximum age (default 50 s, under LINE's
 * one minute, leaving time for the call itself), with no issue time, or
 * known to be used, is not tried. With allow_push_fallback and a `to`, a
 * push is built instead (with the retry key; it costs quota); otherwise the
 * request fails as LINE_REQUEST_EREPLY with the reason.
 *
 * Thread-safe: no shared state. */
#ifndef KIZUNA_DISPATCHER_LINE_REQUEST_H
#define KIZUNA_DISPATCHER_LINE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kizuna/v1/send.pb-c.h"
#include "ratelimit.h"

#define LINE_MESSAGES_MAX 5
#define LINE_RECIPIENTS_MAX 500
#define LINE_BODY_MAX (2 * 1024 * 1024)
#define LINE_REPLY_MAX_AGE_MS_DEFAULT 50000
#define LINE_REQUEST_HEADERS_MAX 3

/* line_request_build results. */
#define LINE_REQUEST_OK 0
#define LINE_REQUEST_EINVAL (-1) /* malformed: DELIVERY_STATUS_INVALID, final */
#define LINE_REQUEST_EREPLY (-2) /* reply token unusable, no fallback: REPLY_TOKEN_EXPIRED */
#define LINE_REQUEST_ENOMEM (-3) /* out of memory: retriable */

enum line_method { LINE_GET, LINE_POST, LINE_DELETE };

struct line_request_opts {
    int64_t now_ms;           /* unix ms, for the reply token's age */
    int64_t reply_max_age_ms; /* 0: LINE_REPLY_MAX_AGE_MS_DEFAULT */
    bool reply_token_used;    /* the delivery log knows the token was spent */
};

/* The call to make. Everything is owned; line_request_clear frees it. */
struct line_request {
    enum line_method method;
    char *path; /* "/v2/bot/message/push" */
    char *body; /* JSON text, or NULL for none */
    size_t body_len;
    /* "Name: value" lines, ready for curl_slist_append. The Authorization
     * line holds the access token: never log these. */
    char *headers[LINE_REQUEST_HEADERS_MAX];
    size_t nheaders;
    Kizuna__V1__SendKind kind; /* what is sent: PUSH for a reply that fell back */
    enum ratelimit_class rl_class;
    bool fell_back_to_push;
    bool has_retry_key;
};

/* Builds the call for req with the channel's access token (borrowed).
 * Returns LINE_REQUEST_OK, or an error above with the reason in errstr
 * (naming the field, e.g. "messages_json[2]: ..."); *out is then empty. */
int line_request_build(const Kizuna__V1__SendRequest *req, const char *access_token,
                       const struct line_request_opts *opts, struct line_request *out, char *errstr,
                       size_t errcap);

/* Frees what line_request_build allocated (wiping the token) and zeroes
 * *r; safe on a zeroed or already cleared struct. */
void line_request_clear(struct line_request *r);

/* "GET", "POST", "DELETE". */
const char *line_method_name(enum line_method m);

/* True when s is a UUID in 8-4-4-4-12 hexadecimal form, as LINE requires of
 * X-Line-Retry-Key. */
bool line_uuid_valid(const char *s);

/* The kinds of LINE id that go into a URL path, each a prefix and 32
 * lowercase hexadecimal digits (webhook.yml's `^U[0-9a-f]{32}$`): a user
 * (U...), a group (C...), a room (R...), a rich menu (richmenu-...). */
enum line_id_kind { LINE_ID_USER, LINE_ID_GROUP, LINE_ID_ROOM, LINE_ID_RICH_MENU };
/* True when s is an id of that kind, exactly. */
bool line_id_valid(enum line_id_kind kind, const char *s);

#endif
