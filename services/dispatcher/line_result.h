/* What one HTTP outcome from LINE means for a send: SENT, RETRY, QUOTA
 * EXCEEDED (final) or FINAL, with LINE's error detail and the response
 * fields a DeliveryResult carries. Pure: the caller performs the call and
 * hands over the status, three headers and the body.
 *
 *   no response (connect error, timeout, broken connection) -> RETRY
 *   2xx                                                     -> SENT
 *   409 with x-line-accepted-request-id, or 409 "The retry
 *     key is already accepted" on a retry-key kind           -> SENT (earlier attempt)
 *   429 "You have reached your monthly limit."              -> QUOTA_EXCEEDED, final
 *   429 (rate limit), 408, 5xx                              -> RETRY, Retry-After kept
 *   other 4xx                                               -> FINAL, LINE's {message,
 *                                                              details[{message,property}]}
 *   anything else (3xx, nonsense)                           -> FINAL
 *
 * 408 is retried although it is a 4xx: the server gave up waiting for our
 * request, which is a timeout, and docs/architecture.md (Guarantee 5) retries
 * timeouts. A reply
 * answered 400 "Invalid reply token" is FINAL with status
 * REPLY_TOKEN_EXPIRED and reply_token_invalid set, so the caller may fall
 * back to a push; that is only safe if no earlier attempt of the reply was
 * `ambiguous` (it may have been accepted, and the token spent by it).
 *
 * Strings from the network are capped and kept valid UTF-8 (proto3 strings
 * must be). Thread-safe: no shared state. */
#ifndef KIZUNA_DISPATCHER_LINE_RESULT_H
#define KIZUNA_DISPATCHER_LINE_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kizuna/v1/delivery.pb-c.h"
#include "kizuna/v1/send.pb-c.h"

#define LINE_RESULT_DETAILS_MAX 16
#define LINE_RESULT_SENT_MAX 16

/* How the call ended below HTTP. */
enum line_transport {
    LINE_TRANSPORT_OK = 0,  /* a response arrived: see status */
    LINE_TRANSPORT_CONNECT, /* no connection: the request never left */
    LINE_TRANSPORT_TIMEOUT, /* no answer in time: LINE may have accepted it */
    LINE_TRANSPORT_BROKEN,  /* the connection broke after sending: likewise */
};

/* One attempt's outcome; everything is borrowed. */
struct line_response {
    Kizuna__V1__SendKind kind; /* what was sent (line_request.kind) */
    enum line_transport transport;
    int status;                      /* HTTP status when transport is OK */
    const char *request_id;          /* x-line-request-id, or NULL */
    const char *accepted_request_id; /* x-line-accepted-request-id, or NULL */
    const char *retry_after;         /* Retry-After, or NULL */
    const char *body;                /* may be NULL; need not be NUL-terminated */
    size_t body_len;
    int64_t now_ns; /* unix ns, for a Retry-After HTTP-date */
};

enum line_outcome {
    LINE_OUTCOME_SENT = 0,       /* LINE has it; publish SENT */
    LINE_OUTCOME_RETRY,          /* try again after a backoff (not before retry_after_ns) */
    LINE_OUTCOME_QUOTA_EXCEEDED, /* monthly limit: final until the month turns */
    LINE_OUTCOME_FINAL,          /* refused for good; publish status */
};

/* The classification. Owns its strings; line_result_clear frees them. */
struct line_result {
    enum line_outcome outcome;
    /* SENT, FAILED, QUOTA_EXCEEDED or REPLY_TOKEN_EXPIRED; for RETRY,
     * RETRY_EXHAUSTED: what to publish if the retries run out. */
    Kizuna__V1__DeliveryStatus status;
    bool ambiguous;            /* no clear answer: LINE may have accepted it */
    bool reply_token_invalid;  /* REPLY answered "Invalid reply token" */
    int64_t retry_after_ns;    /* the server's minimum wait, or -1 (none or unreadable) */
    int http_status;           /* 0 when no response */
    char *line_request_id;     /* never NULL after classify */
    char *accepted_request_id; /* never NULL after classify */
    char *error_message;       /* never NULL; "" when SENT */
    size_t n_details;
    Kizuna__V1__ErrorDetail *details;
    Kizuna__V1__ErrorDetail **details_ptr;
    size_t n_sent;
    Kizuna__V1__SentMessage *sent;
    Kizuna__V1__SentMessage **sent_ptr;
    Kizuna__V1__Profile *profile; /* PROFILE kind, SENT; else NULL */
};

/* Classifies resp into *out. Returns 0, or -1 when memory ran out (then
 * *out is empty and the caller should treat the attempt as RETRY). */
int line_result_classify(const struct line_response *resp, struct line_result *out);

/* Points d's response fields (status, http_status, line_request_id,
 * accepted_request_id, error_message, error_details, sent_messages, profile)
 * at r's data: borrowed, valid until line_result_clear(r). The caller fills
 * the rest (envelope, request_id, attempts, timings...). */
void line_result_to_delivery(const struct line_result *r, Kizuna__V1__DeliveryResult *d);

/* Frees what classify allocated and zeroes *r; safe to repeat. */
void line_result_clear(struct line_result *r);

/* "sent", "retry", "quota_exceeded", "final". */
const char *line_outcome_name(enum line_outcome o);

#endif
