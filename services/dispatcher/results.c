/* Builds the DeliveryResult of every final outcome (the outbox it is
 * written to is relayed by common/outbox_relay.c). Building is pure (the
 * caller's delivery and LINE's classified answer in, a packed event out), so
 * the sender can do it on its thread without touching the database. */
#include "results.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

/* The namespace of DeliveryResult event ids (a random, fixed UUID). */
static const uuid_t results_ns = {0x6b, 0x69, 0x7a, 0x75, 0x6e, 0x61, 0x4d, 0x8e,
                                  0x9a, 0x1c, 0x52, 0x64, 0x65, 0x6c, 0x69, 0x76};

static char *dup_or_null(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

static bool single_recipient(Kizuna__V1__SendKind k)
{
    return k == KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY ||
           k == KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH ||
           k == KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE ||
           k == KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK ||
           k == KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_UNLINK;
}

static int recipients_of(const Kizuna__V1__SendRequest *req)
{
    switch (req->kind) {
    case KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_LINK:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_UNLINK:
        return (int)req->n_recipients;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST:
        return 0;
    default:
        return 1;
    }
}

static char *details_json(const Kizuna__V1__DeliveryResult *dr)
{
    if (dr->n_error_details == 0)
        return NULL;
    json_t *list = json_array();
    for (size_t i = 0; i < dr->n_error_details; i++) {
        const Kizuna__V1__ErrorDetail *e = dr->error_details[i];
        json_array_append_new(list, json_pack("{s:s, s:s}", "message", e->message ? e->message : "",
                                              "property", e->property ? e->property : ""));
    }
    char *text = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    return text;
}

static struct delivery_record *record_base(const struct delivery *d, enum delivery_record_type t)
{
    struct delivery_record *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->type = t;
    snprintf(r->request_id, sizeof r->request_id, "%s", d->request_id);
    snprintf(r->channel_id, sizeof r->channel_id, "%s", d->channel_id);
    snprintf(r->tenant_id, sizeof r->tenant_id, "%s", d->tenant_id);
    r->attempts = d->attempts;
    r->epoch = d->epoch;
    r->first_attempt_ms = d->first_attempt_ms;
    r->last_attempt_ms = d->last_attempt_ms;
    r->fell_back = d->fell_back;
    r->recipient_count = recipients_of(d->req);
    return r;
}

struct delivery_record *results_final(const struct delivery *d, Kizuna__V1__DeliveryStatus status,
                                      const struct line_result *res, const char *reason,
                                      int64_t now_ms)
{
    const Kizuna__V1__SendRequest *req = d->req;
    struct delivery_record *r = record_base(d, DELIVERY_RECORD_FINAL);
    if (!r)
        return NULL;

    Kizuna__V1__DeliveryResult dr = KIZUNA__V1__DELIVERY_RESULT__INIT;
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    if (res)
        line_result_to_delivery(res, &dr);
    dr.status = status;
    if ((!dr.error_message || !dr.error_message[0]) && reason)
        dr.error_message = (char *)reason;

    char event_id[37];
    uuid_t uu;
    char name[DELIVERY_ID_MAX + 32];
    int n = snprintf(name, sizeof name, "delivery-result/%s", d->request_id);
    uuid_generate_sha1(uu, results_ns, name, (size_t)n);
    uuid_unparse_lower(uu, event_id);
    env.event_id = event_id;
    env.tenant_id = (char *)d->tenant_id;
    env.channel_id = (char *)d->channel_id;
    env.occurred_at = now_ms;
    env.causation_id = req->envelope && req->envelope->event_id ? req->envelope->event_id : "";
    dr.envelope = &env;
    dr.request_id = (char *)d->request_id;
    dr.kind = req->kind;
    dr.attempts = d->attempts;
    dr.to = single_recipient(req->kind) && req->to ? req->to : "";
    dr.recipient_count = recipients_of(req);
    dr.fell_back_to_push = d->fell_back;
    dr.requested_at = req->envelope ? req->envelope->occurred_at : 0;
    dr.first_attempt_at = d->first_attempt_ms;
    dr.finished_at = now_ms;
    dr.last_attempt_ms = d->last_attempt_ms;
    dr.origin_type = req->origin_type ? req->origin_type : "";
    dr.origin_id = req->origin_id ? req->origin_id : "";

    r->status = status;
    r->finished_ms = now_ms;
    r->http_status = dr.http_status;
    r->line_request_id = dup_or_null(dr.line_request_id);
    r->accepted_request_id = dup_or_null(dr.accepted_request_id);
    r->error_message = dup_or_null(dr.error_message);
    r->error_details_json = details_json(&dr);
    if (d->reserved) {
        r->quota_cost = d->reserved_cost;
        r->quota_month = d->reserved_month;
    }
    size_t keycap = strlen(d->channel_id) + 2 + (dr.to[0] ? strlen(dr.to) : strlen(d->request_id));
    r->key = malloc(keycap);
    r->len = kizuna__v1__delivery_result__get_packed_size(&dr);
    r->payload = malloc(r->len ? r->len : 1);
    if (!r->key || !r->payload) {
        delivery_record_free(r);
        return NULL;
    }
    snprintf(r->key, keycap, "%s:%s", d->channel_id, dr.to[0] ? dr.to : d->request_id);
    kizuna__v1__delivery_result__pack(&dr, r->payload);
    return r;
}

struct delivery_record *results_retry(const struct delivery *d, const struct line_result *res,
                                      int64_t next_ms)
{
    struct delivery_record *r = record_base(d, DELIVERY_RECORD_RETRY);
    if (!r)
        return NULL;
    r->next_attempt_ms = next_ms;
    if (res) {
        r->http_status = res->http_status;
        r->line_request_id = dup_or_null(res->line_request_id);
        r->error_message = dup_or_null(res->error_message);
    }
    return r;
}
