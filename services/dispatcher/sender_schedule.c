/* The sender's scheduling: where a delivery waits (a channel's queue per
 * endpoint, or the timer heap), the checks before a call in their order
 * (credentials, the retry deadline, the request built, the quota counted
 * once, a free slot, the rate limiter's "go"), and what a call's outcome
 * means for the delivery (final, a retry later, a reply that falls back to
 * a push). Runs on the sender's thread under sender.mu. */
#include "sender_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliveries_writer.h"
#include "line_request.h"
#include "line_result.h"
#include "log.h"
#include "metrics.h"
#include "results.h"
#include "strmap.h"

/* --- small containers ----------------------------------------------------------- */

void sender_dq_push(struct dq *q, struct delivery *d)
{
    delivery_move(d, DELIVERY_QUEUED);
    d->next = NULL;
    if (q->tail)
        q->tail->next = d;
    else
        q->head = d;
    q->tail = d;
}

struct delivery *sender_dq_pop(struct dq *q)
{
    struct delivery *d = q->head;
    if (d) {
        q->head = d->next;
        if (!q->head)
            q->tail = NULL;
        d->next = NULL;
    }
    return d;
}

static void heap_swap(struct sender *s, size_t a, size_t b)
{
    struct delivery *t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
    s->heap[a]->heap_index = a;
    s->heap[b]->heap_index = b;
}

static int heap_push(struct sender *s, struct delivery *d)
{
    if (s->nheap == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 256;
        void *p = realloc(s->heap, cap * sizeof *s->heap);
        if (!p)
            return -1;
        s->heap = p;
        s->heap_cap = cap;
    }
    delivery_move(d, DELIVERY_WAITING);
    size_t i = s->nheap++;
    s->heap[i] = d;
    d->heap_index = i;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (s->heap[parent]->not_before_ms <= s->heap[i]->not_before_ms)
            break;
        heap_swap(s, parent, i);
        i = parent;
    }
    return 0;
}

static struct delivery *heap_pop(struct sender *s)
{
    if (s->nheap == 0)
        return NULL;
    struct delivery *top = s->heap[0];
    s->nheap--;
    if (s->nheap > 0) {
        s->heap[0] = s->heap[s->nheap];
        s->heap[0]->heap_index = 0;
        size_t i = 0;
        for (;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;
            if (l < s->nheap && s->heap[l]->not_before_ms < s->heap[m]->not_before_ms)
                m = l;
            if (r < s->nheap && s->heap[r]->not_before_ms < s->heap[m]->not_before_ms)
                m = r;
            if (m == i)
                break;
            heap_swap(s, i, m);
            i = m;
        }
    }
    return top;
}

/* A delivery leaves memory (final, or dropped): it is no longer held. */
void sender_forget(struct sender *s, struct delivery *d)
{
    pthread_mutex_lock(&s->mailbox_mu);
    strmap_remove(s->held_ids, d->request_id);
    sender_counts_add(s->tenant_held, d->tenant_id, -1);
    pthread_mutex_unlock(&s->mailbox_mu);
    atomic_fetch_sub(&s->held, 1);
}

/* --- channels ------------------------------------------------------------------- */

struct chan *sender_chan_get(struct sender *s, const char *id)
{
    struct chan *c = strmap_get(s->chans, id);
    if (c)
        return c;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    snprintf(c->id, sizeof c->id, "%s", id);
    c->line_limit = QUOTA_NONE;
    if (strmap_put(s->chans, id, c) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

static void chan_activate(struct sender *s, struct chan *c)
{
    if (c->active)
        return;
    if (s->nactive == s->active_cap) {
        size_t cap = s->active_cap ? s->active_cap * 2 : 64;
        void *p = realloc(s->active, cap * sizeof *s->active);
        if (!p)
            return; /* stays inactive until the next enqueue; its queue is kept */
        s->active = p;
        s->active_cap = cap;
    }
    s->active[s->nactive++] = c;
    c->active = true;
}

/* The queue a delivery waits in: its kind's endpoint (a reply that will
 * fall back to a push still queues as a reply; the push bucket decides). */
static enum ratelimit_class class_of(Kizuna__V1__SendKind k)
{
    switch (k) {
    case KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY:
        return RATELIMIT_REPLY;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST:
        return RATELIMIT_MULTICAST;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST:
        return RATELIMIT_BROADCAST;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST:
        return RATELIMIT_NARROWCAST;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE:
        return RATELIMIT_PROFILE;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK:
        return RATELIMIT_RICHMENU_LINK;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_UNLINK:
        return RATELIMIT_RICHMENU_UNLINK;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_LINK:
        return RATELIMIT_RICHMENU_BULK_LINK;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_UNLINK:
        return RATELIMIT_RICHMENU_BULK_UNLINK;
    default:
        return RATELIMIT_PUSH;
    }
}

/* Puts d where it waits: a channel queue, or the timer heap. */
void sender_place(struct sender *s, struct delivery *d, int64_t now_ms)
{
    if (d->not_before_ms > now_ms && heap_push(s, d) == 0)
        return;
    struct chan *c = sender_chan_get(s, d->channel_id);
    if (!c) {
        /* Out of memory: try again later rather than lose it. */
        d->not_before_ms = now_ms + SENDER_PARK_MS;
        if (heap_push(s, d) != 0) {
            log_error("out of memory: delivery dropped from memory (its row stays pending)",
                      "request_id", d->request_id);
            delivery_move(d, DELIVERY_DROPPED);
            sender_forget(s, d);
            delivery_free(d);
        }
        return;
    }
    sender_dq_push(&c->q[class_of(d->req->kind)], d);
    c->queued++;
    chan_activate(s, c);
}

/* --- outcomes ------------------------------------------------------------------ */

void sender_finish(struct sender *s, struct delivery *d, Kizuna__V1__DeliveryStatus status,
                   const struct line_result *res, const char *reason)
{
    int64_t now = clock_wall_ms();
    struct delivery_record *r = results_final(d, status, res, reason, now);
    const char *name = delivery_status_name(status);
    metrics_add(s->m_results, 1, name);
    if (status == KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT) {
        log_debug("delivery sent", "request_id", d->request_id, "channel", d->channel_id);
    } else {
        char http[16], attempts[16];
        snprintf(http, sizeof http, "%d", res ? res->http_status : 0);
        snprintf(attempts, sizeof attempts, "%d", d->attempts);
        const char *why = res && res->error_message && res->error_message[0] ? res->error_message
                          : reason                                           ? reason
                                                                             : "";
        log_info("delivery final", "request_id", d->request_id, "tenant", d->tenant_id, "channel",
                 d->channel_id, "status", name, "http_status", http, "attempts", attempts, "error",
                 why);
    }
    if (!r) {
        log_error("out of memory building a result; the row stays pending", "request_id",
                  d->request_id);
    } else {
        deliveries_writer_submit(s->writer, r);
    }
    delivery_move(d, DELIVERY_FINAL);
    sender_forget(s, d);
    delivery_free(d);
}

void sender_park(struct sender *s, struct delivery *d, int64_t until_ms)
{
    d->not_before_ms = until_ms;
    if (heap_push(s, d) != 0) {
        /* Out of memory: keep it at the back of its queue instead. */
        d->not_before_ms = 0;
        sender_place(s, d, clock_wall_ms());
    }
}

/* --- dispatching ------------------------------------------------------------------ */

enum try_result {
    TRY_STARTED,     /* the call is out */
    TRY_DONE,        /* the delivery left the queue (final or parked) */
    TRY_WAIT,        /* the head must wait: *wait_ns */
    TRY_NO_SLOT,     /* too many calls in flight */
    TRY_TENANT_FULL, /* its tenant has its share of calls in flight */
};

static enum try_result try_start(struct sender *s, struct chan *c, struct delivery *d,
                                 int64_t now_ns, int64_t now_ms, int64_t *wait_ns)
{
    char errstr[512] = "";
    const char *refused = "invalid_request"; /* the metric's reason for final_invalid */
    struct channel_creds *cr = malloc(sizeof *cr);
    if (!cr)
        return TRY_NO_SLOT;
    enum try_result tr = TRY_DONE;
    bool known = channels_lookup(s->channels, c->id, cr) == 0;

    /* Credentials: the channel must be known, live, the request's tenant's. */
    if (!known) {
        if (now_ms - d->received_ms < s->cfg.unknown_channel_grace_s * 1000) {
            sender_dq_pop(&c->q[class_of(d->req->kind)]);
            c->queued--;
            sender_park(s, d, now_ms + SENDER_PARK_MS);
            goto out;
        }
        snprintf(errstr, sizeof errstr, "channel %s is not in the channels topic", d->channel_id);
        refused = "unknown_channel";
        goto final_invalid;
    }
    if (cr->deleted) {
        snprintf(errstr, sizeof errstr, "channel %s was deleted", d->channel_id);
        refused = "channel_deleted";
        goto final_invalid;
    }
    /* The envelope's tenant must own the channel (the channels topic says
     * who does): a producer cannot spend another tenant's channel. */
    if (strcmp(cr->tenant_id, d->tenant_id) != 0) {
        snprintf(errstr, sizeof errstr,
                 "wrong tenant: channel %s does not belong to tenant %s (the envelope's)",
                 d->channel_id, d->tenant_id);
        refused = "wrong_tenant";
        log_warn("send request refused: its tenant does not own the channel", "request_id",
                 d->request_id, "tenant", d->tenant_id, "channel", d->channel_id);
        goto final_invalid;
    }
    if (!cr->token_ok) {
        snprintf(errstr, sizeof errstr,
                 "the access token of channel %s does not open with this data key", d->channel_id);
        refused = "token_unusable";
        goto final_invalid;
    }
    /* A request recovered after its retry deadline is not sent again. */
    if (d->first_attempt_ms > 0 &&
        (now_ms - d->first_attempt_ms) * NS_PER_MS >= s->cfg.backoff.deadline_ns) {
        sender_dq_pop(&c->q[class_of(d->req->kind)]);
        c->queued--;
        sender_finish(s, d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_RETRY_EXHAUSTED, NULL,
                      "the retry deadline passed");
        goto out;
    }
    if (sender_quota_ensure(s, c, cr, now_ms) != 0) {
        sender_dq_pop(&c->q[class_of(d->req->kind)]);
        c->queued--;
        sender_park(s, d, now_ms + SENDER_PARK_MS);
        goto out;
    }
    /* LINE's own quota and count, now and then, for channels in use. */
    if (s->cfg.quota_sync_s > 0 && c->sync_inflight == 0 && c->sync_due_ms <= now_ms)
        sender_quota_sync_start(s, c, now_ns, now_ms);

    if (!d->built) {
        /* Once an attempt may have reached LINE, a reply never becomes a push. */
        if (d->req->kind == KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY &&
            (d->ambiguous || d->recovered))
            d->req->allow_push_fallback = false;
        struct line_request_opts opts = {
            .now_ms = now_ms,
            .reply_max_age_ms = s->cfg.reply_max_age_ms,
            .reply_token_used = d->reply_token_used,
        };
        int rc = line_request_build(d->req, cr->token, &opts, &d->call, errstr, sizeof errstr);
        if (rc == LINE_REQUEST_ENOMEM) {
            sender_dq_pop(&c->q[class_of(d->req->kind)]);
            c->queued--;
            sender_park(s, d, now_ms + SENDER_PARK_MS);
            goto out;
        }
        if (rc == LINE_REQUEST_EREPLY) {
            sender_dq_pop(&c->q[class_of(d->req->kind)]);
            c->queued--;
            sender_finish(s, d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_REPLY_TOKEN_EXPIRED,
                          NULL, errstr);
            goto out;
        }
        if (rc != LINE_REQUEST_OK)
            goto final_invalid;
        d->built = true;
        if (d->call.fell_back_to_push)
            d->fell_back = true;
    }

    /* Quota: counted once per request, before its first call. */
    if (!d->reserved) {
        long long cost = 0;
        bool up_to = false;
        if (quota_cost(d->req, d->call.kind, -1, &cost, &up_to, errstr, sizeof errstr) != 0) {
            /* Broadcast and narrowcast reach an audience only LINE knows:
             * LINE refuses them itself past its quota. */
            cost = 0;
        }
        long long reserved = 0;
        int64_t month = 0;
        int qd = quota_reserve(&c->quota, cost, up_to, now_ms / 1000, &reserved, &month);
        if (qd == QUOTA_EXCEEDED) {
            char used[24], limit[24], costs[24];
            snprintf(used, sizeof used, "%lld", c->quota.used);
            snprintf(limit, sizeof limit, "%lld", quota_effective_limit(&c->quota));
            snprintf(costs, sizeof costs, "%lld", cost);
            log_warn("send not attempted: monthly quota exceeded", "request_id", d->request_id,
                     "tenant", d->tenant_id, "channel", d->channel_id, "used", used, "limit", limit,
                     "cost", costs);
            metrics_add(s->m_quota_exceeded, 1, d->channel_id);
            snprintf(errstr, sizeof errstr,
                     "monthly quota exceeded: %s of %s messages used, this request needs %s%s",
                     used, limit, costs,
                     d->recovered ? " (after a restart: an earlier attempt may have been "
                                    "delivered)"
                                  : "");
            sender_dq_pop(&c->q[class_of(d->req->kind)]);
            c->queued--;
            sender_finish(s, d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_QUOTA_EXCEEDED, NULL,
                          errstr);
            goto out;
        }
        if (qd == QUOTA_WARN) {
            char used[24], limit[24];
            snprintf(used, sizeof used, "%lld", c->quota.used);
            snprintf(limit, sizeof limit, "%lld", quota_effective_limit(&c->quota));
            log_warn("monthly quota usage crossed the warning threshold", "tenant", d->tenant_id,
                     "channel", d->channel_id, "used", used, "limit", limit);
            metrics_add(s->m_quota_warn, 1, d->channel_id);
        }
        d->reserved = reserved > 0;
        d->reserved_cost = reserved;
        d->reserved_month = month;
    }

    if (s->inflight >= s->cfg.max_inflight) {
        tr = TRY_NO_SLOT;
        goto out;
    }
    if (sender_counts_room(s->tenant_inflight, d->tenant_id, s->cfg.tenant_max_inflight) == 0) {
        tr = TRY_TENANT_FULL;
        goto out;
    }
    int64_t w = ratelimit_take(s->rl, c->id, d->call.rl_class, now_ns);
    if (w > 0) {
        *wait_ns = w;
        tr = TRY_WAIT;
        goto out;
    }
    struct transfer *t = sender_transfer_start(s, d->call.method, d->call.path, d->call.body,
                                               d->call.body_len, d->call.headers, d->call.nheaders);
    if (!t) {
        /* The rate token is spent; the call is simply made later. */
        *wait_ns = 100 * NS_PER_MS;
        tr = TRY_WAIT;
        goto out;
    }
    t->kind = TRANSFER_SEND;
    t->d = d;
    t->chan = c;
    t->cls = d->call.rl_class;
    sender_counts_add(s->tenant_inflight, d->tenant_id, 1);
    sender_dq_pop(&c->q[class_of(d->req->kind)]);
    c->queued--;
    delivery_move(d, DELIVERY_IN_FLIGHT);
    d->attempts++;
    if (d->first_attempt_ms == 0)
        d->first_attempt_ms = now_ms;
    tr = TRY_STARTED;
    goto out;

final_invalid:
    metrics_add(s->m_refused, 1, refused);
    sender_dq_pop(&c->q[class_of(d->req->kind)]);
    c->queued--;
    sender_quota_release(d, c);
    sender_finish(s, d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_INVALID, NULL, errstr);
out:
    channels_creds_wipe(cr);
    free(cr);
    return tr;
}

/* One dispatch: the time and the soonest change found so far. */
struct dispatch_run {
    struct sender *s;
    int64_t now_ns, now_ms, next_ns;
};

/* A visit of one channel: starts at most one call, trying its endpoints'
 * queues in turn from where the last visit left off. Requests that end
 * without a call (final, parked) do not use up the visit. */
static enum sender_rr_step dispatch_visit(void *ctx, size_t i)
{
    struct dispatch_run *run = ctx;
    struct sender *s = run->s;
    struct chan *c = s->active[i];
    if (c->idle_in_run == s->run)
        return SENDER_RR_IDLE;
    for (int k = 0; k < RATELIMIT_CLASS_COUNT; k++) {
        int cls = (c->next_cls + k) % RATELIMIT_CLASS_COUNT;
        while (c->q[cls].head) {
            if (c->blocked_until_ns[cls] > run->now_ns) {
                if (c->blocked_until_ns[cls] - run->now_ns < run->next_ns)
                    run->next_ns = c->blocked_until_ns[cls] - run->now_ns;
                break;
            }
            int64_t wait = 0;
            enum try_result r = try_start(s, c, c->q[cls].head, run->now_ns, run->now_ms, &wait);
            if (r == TRY_WAIT) {
                c->blocked_until_ns[cls] = run->now_ns + wait;
                if (wait < run->next_ns)
                    run->next_ns = wait;
                break;
            }
            if (r == TRY_NO_SLOT)
                return SENDER_RR_STOP; /* a completion frees a slot and wakes the loop */
            if (r == TRY_TENANT_FULL)
                goto idle; /* a completion of its tenant's wakes the loop */
            if (r == TRY_STARTED) {
                c->next_cls = (cls + 1) % RATELIMIT_CLASS_COUNT;
                return SENDER_RR_STARTED;
            }
        }
    }
idle:
    c->idle_in_run = s->run;
    return SENDER_RR_IDLE;
}

static bool chan_keep(void *ctx, size_t i)
{
    struct chan *c = ((struct sender *)ctx)->active[i];
    if (c->queued > 0)
        return true;
    c->active = false;
    return false;
}

static void chan_move(void *ctx, size_t from, size_t to)
{
    struct sender *s = ctx;
    s->active[to] = s->active[from];
}

/* Walks the active channels round-robin, from the one after the last
 * channel served, one call per channel per round, and starts what the
 * limits allow. Returns the time (ms) until something may change without
 * a completion. */
long sender_dispatch(struct sender *s)
{
    struct dispatch_run run = {
        .s = s,
        .now_ns = clock_mono_ns(),
        .now_ms = clock_wall_ms(),
        .next_ns = SENDER_IDLE_MS * NS_PER_MS,
    };
    s->run++;
    sender_rr_run(&s->rr, s->nactive, dispatch_visit, &run);
    s->nactive = sender_rr_compact(&s->rr, s->nactive, chan_keep, chan_move, s);
    long ms = (long)((run.next_ns + NS_PER_MS - 1) / NS_PER_MS);
    return ms < 1 ? 1 : ms;
}

/* Moves due timers into their queues. Returns ms until the next one. */
long sender_fire_timers(struct sender *s)
{
    int64_t now = clock_wall_ms();
    while (s->nheap > 0 && s->heap[0]->not_before_ms <= now) {
        struct delivery *d = heap_pop(s);
        d->not_before_ms = 0;
        sender_place(s, d, now);
    }
    if (s->nheap == 0)
        return SENDER_IDLE_MS;
    int64_t left = s->heap[0]->not_before_ms - now;
    return left < SENDER_IDLE_MS ? (long)left : SENDER_IDLE_MS;
}

/* --- completions ------------------------------------------------------------------ */

static enum line_transport transport_of(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return LINE_TRANSPORT_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return LINE_TRANSPORT_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return LINE_TRANSPORT_TIMEOUT;
    default:
        return LINE_TRANSPORT_BROKEN;
    }
}

void sender_send_done(struct sender *s, struct transfer *t, CURLcode rc, long status)
{
    struct delivery *d = t->d;
    struct chan *c = t->chan;
    sender_counts_add(s->tenant_inflight, d->tenant_id, -1);
    int64_t now_ns = clock_mono_ns();
    d->last_attempt_ms = (int)((now_ns - t->started_ns) / NS_PER_MS);
    const char *endpoint = ratelimit_class_name(t->cls);
    metrics_observe(s->m_latency, (double)(now_ns - t->started_ns) / 1e9, endpoint);

    int64_t wall_ns = clock_wall_ns();
    struct line_response resp = {
        .kind = d->call.kind,
        .transport = transport_of(rc),
        .status = (int)status,
        .request_id = t->line_request_id[0] ? t->line_request_id : NULL,
        .accepted_request_id = t->accepted_request_id[0] ? t->accepted_request_id : NULL,
        .retry_after = t->retry_after[0] ? t->retry_after : NULL,
        .body = t->body,
        .body_len = t->body_len,
        .now_ns = wall_ns,
    };
    struct line_result res;
    if (line_result_classify(&resp, &res) != 0) {
        memset(&res, 0, sizeof res);
        res.outcome = LINE_OUTCOME_RETRY;
        res.status = KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_RETRY_EXHAUSTED;
        res.ambiguous = true;
        res.retry_after_ns = -1;
    }
    if (res.ambiguous)
        d->ambiguous = true;
    metrics_add(s->m_calls, 1, endpoint,
                resp.transport != LINE_TRANSPORT_OK ? "no_response"
                                                    : line_outcome_name(res.outcome));

    switch (res.outcome) {
    case LINE_OUTCOME_SENT:
        sender_finish(s, d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT, &res, NULL);
        break;
    case LINE_OUTCOME_QUOTA_EXCEEDED:
        quota_mark_exhausted(&c->quota, wall_ns / 1000000000LL);
        metrics_add(s->m_quota_exceeded, 1, d->channel_id);
        log_warn("LINE refused a send: monthly limit reached", "request_id", d->request_id,
                 "channel", d->channel_id);
        sender_quota_release(d, c);
        sender_finish(s, d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_QUOTA_EXCEEDED, &res,
                      NULL);
        break;
    case LINE_OUTCOME_RETRY: {
        int64_t delay = 0;
        int64_t first_ns = d->first_attempt_ms * NS_PER_MS;
        int b = backoff_next(&s->cfg.backoff, d->attempts, first_ns, wall_ns, res.retry_after_ns,
                             &s->rng, &delay);
        if (b != 0) {
            /* Nothing certain reached LINE: give the quota back. */
            if (!d->ambiguous)
                sender_quota_release(d, c);
            sender_finish(s, d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_RETRY_EXHAUSTED, &res,
                          "retries exhausted");
            break;
        }
        int64_t next_ms = wall_ns / NS_PER_MS + delay / NS_PER_MS;
        struct delivery_record *r = results_retry(d, &res, next_ms);
        if (r)
            deliveries_writer_submit(s->writer, r);
        line_request_clear(&d->call);
        d->built = false;
        sender_park(s, d, next_ms);
        break;
    }
    case LINE_OUTCOME_FINAL:
    default:
        if (res.reply_token_invalid && d->req->kind == KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY &&
            !d->fell_back && !d->ambiguous && !d->recovered && d->req->allow_push_fallback &&
            d->req->to && d->req->to[0]) {
            /* Spent token, and no attempt of ours can have spent it: push. */
            d->reply_token_used = true;
            line_request_clear(&d->call);
            d->built = false;
            sender_quota_release(d, c);
            sender_park(s, d, 0);
            break;
        }
        if (!d->ambiguous)
            sender_quota_release(d, c);
        sender_finish(s, d, res.status, &res, NULL);
        break;
    }
    line_result_clear(&res);
}
