/* A delivery in memory: decoded and checked from a packed SendRequest, and
 * the names its statuses and kinds have in the table. */
#include "delivery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "utf8.h"

/* --- names ------------------------------------------------------------------ */

const char *delivery_status_name(Kizuna__V1__DeliveryStatus s)
{
    switch (s) {
    case KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT:
        return "sent";
    case KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED:
        return "failed";
    case KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_QUOTA_EXCEEDED:
        return "quota_exceeded";
    case KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_RETRY_EXHAUSTED:
        return "retry_exhausted";
    case KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_REPLY_TOKEN_EXPIRED:
        return "reply_token_expired";
    case KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_INVALID:
        return "invalid";
    default:
        return "failed";
    }
}

const char *delivery_kind_name(Kizuna__V1__SendKind k)
{
    switch (k) {
    case KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY:
        return "reply";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH:
        return "push";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST:
        return "multicast";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST:
        return "broadcast";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST:
        return "narrowcast";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE:
        return "profile";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK:
        return "rich_menu_link";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_UNLINK:
        return "rich_menu_unlink";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_LINK:
        return "rich_menu_bulk_link";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_UNLINK:
        return "rich_menu_bulk_unlink";
    default:
        return "unspecified";
    }
}

bool delivery_status_valid(const char *name)
{
    static const char *const names[] = {"queued",
                                        "retrying",
                                        "sent",
                                        "failed",
                                        "quota_exceeded",
                                        "retry_exhausted",
                                        "reply_token_expired",
                                        "invalid"};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* --- in memory -------------------------------------------------------------- */

struct delivery *delivery_from_bytes(const void *bytes, size_t len, const char *fallback_channel,
                                     char *errstr, size_t errcap)
{
    Kizuna__V1__SendRequest *req =
        kizuna__v1__send_request__unpack(NULL, len, (const uint8_t *)bytes);
    if (!req) {
        snprintf(errstr, errcap, "not a kizuna.v1.SendRequest");
        return NULL;
    }
    const char *rid = req->request_id ? req->request_id : "";
    const char *channel = req->envelope && req->envelope->channel_id && req->envelope->channel_id[0]
                              ? req->envelope->channel_id
                          : fallback_channel ? fallback_channel
                                             : "";
    const char *tenant = req->envelope && req->envelope->tenant_id ? req->envelope->tenant_id : "";
    if (!rid[0] || strlen(rid) > DELIVERY_ID_MAX) {
        snprintf(errstr, errcap, "request_id missing or longer than %d bytes", DELIVERY_ID_MAX);
        goto fail;
    }
    /* Every string that becomes a text column must be UTF-8: PostgreSQL
     * refuses anything else, and one refused row would fail its whole intake
     * batch again on every retry. Such a request is malformed, like one
     * without a request_id (its id may not even be printable). */
    if (!utf8_valid(rid, strlen(rid))) {
        snprintf(errstr, errcap, "request_id is not valid UTF-8");
        goto fail;
    }
    const char *texts[] = {channel, tenant, req->to, req->origin_type, req->origin_id};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (texts[i] && !utf8_valid(texts[i], strlen(texts[i]))) {
            snprintf(errstr, errcap,
                     "request %s: channel_id, tenant_id, to, origin_type or origin_id is not "
                     "valid UTF-8",
                     rid);
            goto fail;
        }
    if (strlen(channel) > CHANNEL_ID_MAX || strlen(tenant) >= AUTH_FIELD_MAX) {
        snprintf(errstr, errcap, "request %s: channel_id or tenant_id too long", rid);
        goto fail;
    }
    struct delivery *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(errstr, errcap, "out of memory");
        goto fail;
    }
    d->req = req;
    snprintf(d->request_id, sizeof d->request_id, "%s", rid);
    snprintf(d->channel_id, sizeof d->channel_id, "%s", channel);
    snprintf(d->tenant_id, sizeof d->tenant_id, "%s", tenant);
    d->received_ms = clock_wall_ms();
    return d;
fail:
    kizuna__v1__send_request__free_unpacked(req, NULL);
    return NULL;
}

/* --- state ------------------------------------------------------------------ */

#define TO(s) (1u << (s))

/* The moves each state allows. A delivery goes back to its queue when the
 * timer heap cannot grow (out of memory), and back to the heap when its
 * channel's state cannot be created; both are rare, and legal. */
static const unsigned delivery_moves[DELIVERY_STATE_COUNT] = {
    [DELIVERY_NEW] = TO(DELIVERY_MAILBOX) | TO(DELIVERY_DROPPED),
    [DELIVERY_MAILBOX] = TO(DELIVERY_QUEUED) | TO(DELIVERY_WAITING) | TO(DELIVERY_DROPPED),
    [DELIVERY_QUEUED] = TO(DELIVERY_QUEUED) | TO(DELIVERY_WAITING) | TO(DELIVERY_IN_FLIGHT) |
                        TO(DELIVERY_FINAL) | TO(DELIVERY_DROPPED),
    [DELIVERY_WAITING] = TO(DELIVERY_QUEUED) | TO(DELIVERY_WAITING) | TO(DELIVERY_DROPPED),
    [DELIVERY_IN_FLIGHT] =
        TO(DELIVERY_QUEUED) | TO(DELIVERY_WAITING) | TO(DELIVERY_FINAL) | TO(DELIVERY_DROPPED),
    [DELIVERY_FINAL] = 0,
    [DELIVERY_DROPPED] = 0,
};

const char *delivery_state_name(enum delivery_state s)
{
    static const char *const names[DELIVERY_STATE_COUNT] = {
        [DELIVERY_NEW] = "new",
        [DELIVERY_MAILBOX] = "mailbox",
        [DELIVERY_QUEUED] = "queued",
        [DELIVERY_WAITING] = "waiting",
        [DELIVERY_IN_FLIGHT] = "in_flight",
        [DELIVERY_FINAL] = "final",
        [DELIVERY_DROPPED] = "dropped",
    };
    return (unsigned)s < DELIVERY_STATE_COUNT ? names[s] : "invalid";
}

bool delivery_move_legal(enum delivery_state from, enum delivery_state to)
{
    if ((unsigned)from >= DELIVERY_STATE_COUNT || (unsigned)to >= DELIVERY_STATE_COUNT)
        return false;
    return (delivery_moves[from] & TO(to)) != 0;
}

void delivery_move(struct delivery *d, enum delivery_state to)
{
    if (!delivery_move_legal(d->state, to)) {
        log_error("impossible delivery move", "request_id", d->request_id, "from",
                  delivery_state_name(d->state), "to", delivery_state_name(to));
        abort();
    }
    d->state = to;
}

/* --- in memory, continued ----------------------------------------------------- */

void delivery_free(struct delivery *d)
{
    if (!d)
        return;
    if (d->state != DELIVERY_NEW && d->state != DELIVERY_FINAL && d->state != DELIVERY_DROPPED) {
        log_error("delivery freed while still held", "request_id", d->request_id, "state",
                  delivery_state_name(d->state));
        abort();
    }
    line_request_clear(&d->call);
    if (d->req)
        kizuna__v1__send_request__free_unpacked(d->req, NULL);
    free(d);
}

void delivery_record_free(struct delivery_record *r)
{
    if (!r)
        return;
    free(r->line_request_id);
    free(r->accepted_request_id);
    free(r->error_message);
    free(r->error_details_json);
    free(r->payload);
    free(r->key);
    free(r);
}
