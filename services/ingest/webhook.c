/* LINE's webhook (issue 3): the signature is checked over the raw bytes
 * before anything is parsed, so an unsigned body costs one HMAC and is never
 * interpreted; only a body LINE signed reaches the parser, and 200 means
 * every event in it is durable (spool.h). The public port also serves
 * tracked links, which links.c answers.
 *
 * A request never blocks its worker thread while the broker answers: once
 * parsed, its records are handed to ackwait.c and the answer is deferred
 * (httpd_defer); the 200 (or 503) is given when the last ack arrives or,
 * past INGEST_ACK_BUDGET_MS, when a spool worker has committed the rest.
 * So a few worker threads serve any number of waiting requests; the
 * connection limit bounds them instead. */
#include "webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ackwait.h"
#include "clock.h"
#include "crypto.h"
#include "dedup.h"
#include "kizuna/v1/webhook.pb-c.h"
#include "links.h"
#include "log.h"
#include "metrics.h"
#include "spool.h"
#include "webhook_parse.h"

#define WEBHOOK_PREFIX "/line/webhook/"
#define LINKS_PREFIX "/r/"
#define WEBHOOK_TOPIC "line.webhook"
#define WEBHOOK_SIGNATURE_HEADER "x-line-signature"
/* LINE's channel ids are decimal numbers; anything longer or stranger is
 * no channel of ours and never reaches the registry or a metric label. */
#define WEBHOOK_CHANNEL_MAX 31

struct webhook {
    webhook_lookup_fn lookup;
    void *lookup_ctx;
    struct spool *spool;
    struct links *links;
    int ack_budget_ms;
    struct ackwait *ackwait;
    struct dedup *dedup; /* NULL (out of memory at start): nothing suppressed */
    struct metric *events;
    struct metric *duplicates;
    struct metric *unknown_types;
    struct metric *signature_failures;
    struct metric *time_to_ack;
    struct metric *refused;
};

/* A request waiting for its events to be durable: everything the answer
 * needs, since the httpd request is gone once the handler returns. */
struct webhook_pending {
    struct webhook *wh;
    struct httpd_deferred *deferred;
    struct webhook_batch batch;
    struct spool_record *recs;
    int64_t start_ns; /* clock_mono_ns() when the request arrived */
    char channel_id[WEBHOOK_CHANNEL_MAX + 1];
};

static const double webhook_ack_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    0.75,  1,    1.5,   2,    5};

struct webhook *webhook_new(const struct webhook_options *opts, char *errstr, size_t errcap)
{
    if (!opts || !opts->lookup || !opts->spool || !opts->producer || opts->ack_budget_ms < 0) {
        snprintf(errstr, errcap, "webhook needs a lookup, a spool, a producer and an ack budget");
        return NULL;
    }
    struct webhook *wh = calloc(1, sizeof *wh);
    if (!wh) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    wh->lookup = opts->lookup;
    wh->lookup_ctx = opts->lookup_ctx;
    wh->spool = opts->spool;
    wh->links = opts->links;
    wh->ack_budget_ms = opts->ack_budget_ms;
    struct ackwait_options aopts = {
        .producer = opts->producer,
        .spool = opts->spool,
        .budget_ms = opts->ack_budget_ms,
        .spool_workers = opts->spool_workers,
    };
    wh->ackwait = ackwait_new(&aopts, errstr, errcap);
    if (!wh->ackwait) {
        free(wh);
        return NULL;
    }
    wh->events = metrics_counter("kizuna_ingest_events_total",
                                 "Webhook events accepted (durable), by LINE event type; types "
                                 "ingest does not know count as \"unknown\".",
                                 "type");
    wh->unknown_types =
        metrics_counter("kizuna_ingest_unknown_event_types_total",
                        "Webhook events of a type ingest does not map, kept with their raw "
                        "JSON, by the type LINE sent.",
                        "type");
    wh->signature_failures = metrics_counter(
        "kizuna_ingest_signature_failures_total",
        "Webhook requests refused with 401, by channel and reason.", "channel,reason");
    wh->time_to_ack = metrics_histogram(
        "kizuna_ingest_time_to_ack_seconds",
        "From a webhook request's arrival until all its events were durable (or not), by outcome.",
        "outcome", webhook_ack_buckets, sizeof webhook_ack_buckets / sizeof webhook_ack_buckets[0]);
    wh->dedup = dedup_new(0);
    wh->duplicates = metrics_counter(
        "kizuna_ingest_duplicates_suppressed_total",
        "Webhook events not produced again because their webhookEventId was made durable "
        "recently (LINE's redeliveries); the request is still answered 200.",
        NULL);
    wh->refused = metrics_counter("kizuna_ingest_webhook_refused_total",
                                  "Webhook requests answered with an error, by reason.", "reason");
    return wh;
}

void webhook_stop(struct webhook *wh)
{
    if (wh)
        ackwait_stop(wh->ackwait);
}

void webhook_free(struct webhook **wh)
{
    if (!wh || !*wh)
        return;
    ackwait_free(&(*wh)->ackwait);
    dedup_free(&(*wh)->dedup);
    free(*wh);
    *wh = NULL;
}

static double seconds_since(int64_t start_ns)
{
    return (double)(clock_mono_ns() - start_ns) / 1e9;
}

static bool channel_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > WEBHOOK_CHANNEL_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (id[i] < '0' || id[i] > '9')
            return false;
    return true;
}

/* 0 when header is the base64 HMAC-SHA256 of body under secret, else the
 * reason for the metric. The comparison is on the decoded MAC, in constant
 * time; base64 decoding is strict, so one MAC has one accepted spelling. */
static const char *signature_check(const struct channel_view *ch, const char *header,
                                   const char *body, size_t len)
{
    uint8_t given[CRYPTO_SHA256_LEN + 3], want[CRYPTO_SHA256_LEN];
    if (!header)
        return "missing";
    if (crypto_base64_decode(header, strlen(header), given, sizeof given) != CRYPTO_SHA256_LEN)
        return "malformed";
    crypto_hmac_sha256(ch->secret, ch->secret_len, body, len, want);
    if (!crypto_equal(given, want, sizeof want))
        return "mismatch";
    return NULL;
}

/* The event's oneof case: whether ingest mapped its type. */
static bool record_is_unknown(const struct webhook_record *rec)
{
    Kizuna__V1__WebhookEvent *ev = kizuna__v1__webhook_event__unpack(NULL, rec->len, rec->payload);
    bool unknown = !ev || ev->event_case == KIZUNA__V1__WEBHOOK_EVENT__EVENT_UNKNOWN ||
                   ev->event_case == KIZUNA__V1__WEBHOOK_EVENT__EVENT__NOT_SET;
    if (ev)
        kizuna__v1__webhook_event__free_unpacked(ev, NULL);
    return unknown;
}

static void webhook_refuse(struct webhook *wh, struct httpd_response *resp, int status,
                           const char *reason, const char *message, const char *field)
{
    metrics_add(wh->refused, 1, reason);
    httpd_respond_error(resp, status, reason, message, field);
}

static void pending_free(struct webhook_pending *p)
{
    webhook_batch_free(&p->batch);
    free(p->recs);
    free(p);
}

/* ackwait's verdict: count, log, answer. On the producer's poll thread or a
 * spool worker; the request itself is long gone, p has what is needed. */
static void webhook_durable(void *arg, struct spool_record *recs, size_t n, bool durable)
{
    struct webhook_pending *p = arg;
    struct webhook *wh = p->wh;
    size_t spooled = 0;
    for (size_t i = 0; i < n; i++)
        spooled += recs[i].state == SPOOL_SPOOLED;
    metrics_observe(wh->time_to_ack, seconds_since(p->start_ns),
                    !durable      ? "failed"
                    : spooled > 0 ? "spooled"
                                  : "acked");

    for (size_t i = 0; i < n; i++) {
        const struct webhook_record *r = &p->batch.records[i];
        switch (recs[i].state) {
        case SPOOL_ACKED:
        case SPOOL_SPOOLED:
            /* On the broker or in the spool: a redelivery need not be
             * produced again, even if another event of the request failed. */
            dedup_record(wh->dedup, p->channel_id, r->webhook_event_id);
            if (durable) {
                if (record_is_unknown(r)) {
                    metrics_add(wh->events, 1, "unknown");
                    metrics_add(wh->unknown_types, 1, r->type);
                    log_warn("webhook event of an unknown type kept raw", "channel", p->channel_id,
                             "webhook_event_id", r->webhook_event_id, "type", r->type);
                } else {
                    metrics_add(wh->events, 1, r->type);
                }
            }
            if (recs[i].state == SPOOL_SPOOLED)
                log_info("webhook event spooled: broker did not confirm within the budget",
                         "channel", p->channel_id, "webhook_event_id", r->webhook_event_id);
            else
                log_debug("webhook event acknowledged", "channel", p->channel_id,
                          "webhook_event_id", r->webhook_event_id, "type", r->type);
            break;
        default:
            log_error("webhook event not durable: broker and spool both failed", "channel",
                      p->channel_id, "webhook_event_id", r->webhook_event_id);
            break;
        }
    }

    struct httpd_response resp = {0};
    if (!durable) {
        /* Whatever was acked is on the broker already; LINE redelivers the
         * whole request and consumers drop the duplicates by id. */
        httpd_response_header(&resp, "Retry-After", "1");
        webhook_refuse(wh, &resp, 503, "not_durable",
                       "the events could not be made durable; retry later", NULL);
    } else {
        httpd_respond_json(&resp, 200, "{}");
    }
    /* -1: httpd_stop answered 503 already (LINE redelivers); nothing to do. */
    httpd_complete(&p->deferred, &resp);
    pending_free(p);
}

/* Removes the events whose webhookEventId was made durable recently (a
 * redelivery), keeping the others in order. */
static void webhook_drop_seen(struct webhook *wh, const char *channel_id,
                              struct webhook_batch *batch)
{
    size_t kept = 0;
    for (size_t i = 0; i < batch->n; i++) {
        struct webhook_record *r = &batch->records[i];
        if (dedup_seen(wh->dedup, channel_id, r->webhook_event_id)) {
            metrics_add(wh->duplicates, 1);
            log_info("webhook event suppressed: made durable recently", "channel", channel_id,
                     "webhook_event_id", r->webhook_event_id);
            free(r->payload);
            continue;
        }
        batch->records[kept++] = *r;
    }
    batch->n = kept;
}

/* Everything after the signature: parse, hand the events to ackwait, and
 * defer the answer until they are durable. */
static void webhook_accept(struct webhook *wh, const struct httpd_request *req,
                           const struct channel_view *ch, const char *body, size_t len,
                           int64_t start_ns, struct httpd_response *resp)
{
    struct webhook_context ctx = {
        .tenant_id = ch->tenant_id,
        .channel_id = ch->channel_id,
        .received_at_ms = clock_wall_ms(),
    };
    struct webhook_pending *p = calloc(1, sizeof *p);
    if (!p) {
        webhook_refuse(wh, resp, 503, "unavailable", "out of memory", NULL);
        return;
    }
    char err[256] = "";
    int parsed = webhook_parse(body, len, &ctx, &p->batch, err, sizeof err);
    if (parsed == WEBHOOK_PARSE_TOO_LARGE) {
        /* Refused here, at the edge: answered 200 and spooled, it would have
         * failed to produce for ever (common/kafka_limits.h). LINE does not
         * send such events; whoever did learns which one and why. */
        free(p);
        log_warn("webhook body refused: an event is too large for Kafka", "channel", ch->channel_id,
                 "reason", err);
        webhook_refuse(wh, resp, 413, "event_too_large", err, "body");
        return;
    }
    if (parsed != 0) {
        free(p);
        log_warn("webhook body refused", "channel", ch->channel_id, "reason", err);
        webhook_refuse(wh, resp, 400, "bad_request", err[0] ? err : "invalid webhook body", "body");
        return;
    }
    webhook_drop_seen(wh, ch->channel_id, &p->batch);
    if (p->batch.n == 0) {
        /* LINE's "Verify" button, a delivery with nothing in it, or one
         * whose events were all made durable recently. */
        pending_free(p);
        httpd_respond_json(resp, 200, "{}");
        return;
    }

    p->wh = wh;
    p->start_ns = start_ns;
    snprintf(p->channel_id, sizeof p->channel_id, "%s", ch->channel_id);
    p->recs = calloc(p->batch.n, sizeof *p->recs);
    if (!p->recs) {
        pending_free(p);
        webhook_refuse(wh, resp, 503, "unavailable", "out of memory", NULL);
        return;
    }
    for (size_t i = 0; i < p->batch.n; i++) {
        const struct webhook_record *r = &p->batch.records[i];
        p->recs[i] = (struct spool_record){
            .topic = WEBHOOK_TOPIC,
            .key = r->key,
            .keylen = strnlen(r->key, sizeof r->key),
            .payload = r->payload,
            .len = r->len,
        };
    }
    p->deferred = httpd_defer(req);
    if (!p->deferred) {
        /* Out of memory, or the server is stopping: LINE will retry. */
        pending_free(p);
        httpd_response_header(resp, "Retry-After", "1");
        webhook_refuse(wh, resp, 503, "unavailable", "the server cannot take requests now", NULL);
        return;
    }
    if (ackwait_submit(wh->ackwait, p->recs, p->batch.n, webhook_durable, p) != 0) {
        struct httpd_response r = {0};
        httpd_response_header(&r, "Retry-After", "1");
        webhook_refuse(wh, &r, 503, "unavailable", "out of memory", NULL);
        httpd_complete(&p->deferred, &r);
        pending_free(p);
    }
}

/* What can be checked before the body: the method, the channel id, and
 * the registry. 0 when the request may go on, with *ch filled (the caller
 * wipes it); else resp holds the refusal. */
static int webhook_gate(struct webhook *wh, const struct httpd_request *req, const char *channel_id,
                        struct channel_view *ch, struct httpd_response *resp)
{
    if (strcmp(httpd_request_method(req), "POST") != 0) {
        httpd_response_header(resp, "Allow", "POST");
        webhook_refuse(wh, resp, 405, "method_not_allowed", "use POST", NULL);
        return -1;
    }
    if (!channel_id_ok(channel_id)) {
        webhook_refuse(wh, resp, 404, "unknown_channel", "no such channel", "channel_id");
        return -1;
    }
    int found = wh->lookup(wh->lookup_ctx, channel_id, ch);
    if (found < 0) {
        log_warn("webhook refused: channel registry unavailable", "channel", channel_id);
        httpd_response_header(resp, "Retry-After", "1");
        webhook_refuse(wh, resp, 503, "registry_unavailable", "channel registry unavailable", NULL);
        return -1;
    }
    if (found > 0) {
        webhook_refuse(wh, resp, 404, "unknown_channel", "no such channel", "channel_id");
        return -1;
    }
    return 0;
}

static void webhook_handle(struct webhook *wh, const struct httpd_request *req,
                           const char *channel_id, struct httpd_response *resp)
{
    int64_t start_ns = clock_mono_ns();
    struct channel_view ch;
    /* Checked again: the channel may have gone since webhook_admit, and
     * the secret is needed now. A cached lookup costs little. */
    if (webhook_gate(wh, req, channel_id, &ch, resp) != 0)
        return;

    size_t len = 0;
    const char *body = httpd_request_body(req, &len);
    const char *why =
        signature_check(&ch, httpd_request_header(req, WEBHOOK_SIGNATURE_HEADER), body, len);
    if (why) {
        crypto_wipe(ch.secret, sizeof ch.secret);
        metrics_add(wh->signature_failures, 1, ch.channel_id, why);
        log_warn("webhook signature refused", "channel", ch.channel_id, "reason", why);
        webhook_refuse(wh, resp, 401, "bad_signature",
                       strcmp(why, "missing") == 0 ? "x-line-signature header missing"
                                                   : "x-line-signature does not match the body",
                       "x-line-signature");
        return;
    }
    crypto_wipe(ch.secret, sizeof ch.secret);
    webhook_accept(wh, req, &ch, body, len, start_ns, resp);
}

bool webhook_admit(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    struct webhook *wh = ctx;
    const char *path = httpd_request_path(req);
    if (strncmp(path, WEBHOOK_PREFIX, sizeof WEBHOOK_PREFIX - 1) == 0) {
        struct channel_view ch;
        bool ok = webhook_gate(wh, req, path + sizeof WEBHOOK_PREFIX - 1, &ch, resp) == 0;
        if (ok)
            crypto_wipe(&ch, sizeof ch);
        return ok;
    }
    if (wh->links && strncmp(path, LINKS_PREFIX, sizeof LINKS_PREFIX - 1) == 0)
        return links_admit(req, resp);
    httpd_respond_error(resp, 404, "not_found", "no such route", NULL);
    return false;
}

void webhook_route(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    struct webhook *wh = ctx;
    const char *path = httpd_request_path(req);
    if (strncmp(path, WEBHOOK_PREFIX, sizeof WEBHOOK_PREFIX - 1) == 0) {
        webhook_handle(wh, req, path + sizeof WEBHOOK_PREFIX - 1, resp);
        return;
    }
    if (wh->links && strncmp(path, LINKS_PREFIX, sizeof LINKS_PREFIX - 1) == 0) {
        links_handle(wh->links, wh->ackwait, req, path + sizeof LINKS_PREFIX - 1, resp);
        return;
    }
    httpd_respond_error(resp, 404, "not_found", "no such route", NULL);
}
