/* The dispatcher's send loop. One thread owns the curl multi handle, the
 * queues and the timers, so the order of decisions for a channel is simple:
 * credentials, then the request is built, then the quota is counted once,
 * then the rate limiter says "go" (or "wait N ns", and the queue's head
 * waits), then the call goes out. Decisions and completions run under one
 * mutex that the admin API also takes to read or change limits and quota;
 * the thread drops it while it waits in curl_multi_poll.
 *
 * Never twice: a push, multicast, broadcast or narrowcast carries its
 * request_id as X-Line-Retry-Key on every attempt, and LINE's 409 counts as
 * sent. A reply has no key, so once any attempt of it might have reached
 * LINE (an ambiguous failure, or a restart), it never falls back to a push.
 * Never lost: every delivery here also exists as a pending row, and a
 * delivery leaves memory only as a final record for the writer (or at
 * shutdown, when its row simply stays pending). */
#include "sender.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "db.h"
#include "line_request.h"
#include "line_result.h"
#include "log.h"
#include "metrics.h"
#include "quota.h"
#include "results.h"
#include "strmap.h"

#define SENDER_BODY_CAP (64 * 1024) /* LINE's answers are small; more is cut */
#define SENDER_HEADER_MAX 128
#define SENDER_IDLE_MS 100
#define SENDER_PARK_MS 1000         /* re-check a delivery waiting for its channel */
#define SENDER_QUOTA_RETRY_MS 60000 /* after a failed quota sync */
#define SENDER_GAUGE_MS 500
#define NS_PER_MS 1000000LL

struct dq {
    struct delivery *head, *tail;
};

/* One channel's queues, limits state and quota. */
struct chan {
    char id[CHANNEL_ID_MAX + 1];
    struct dq q[RATELIMIT_CLASS_COUNT];
    int64_t blocked_until_ns[RATELIMIT_CLASS_COUNT]; /* monotonic */
    size_t queued;
    bool active; /* listed in sender.active */
    /* quota */
    bool quota_ready;
    long long quota_version; /* of the ChannelConfig the limits came from */
    char timezone[QUOTA_ZONE_NAME_MAX];
    struct quota_state quota;
    long long line_limit; /* LINE's quota endpoint; QUOTA_NONE: unknown or none */
    int64_t sync_due_ms;  /* unix ms */
    int sync_inflight;
    bool sync_failed;
};

enum transfer_kind { TRANSFER_SEND, TRANSFER_QUOTA, TRANSFER_CONSUMPTION };

struct transfer {
    struct transfer *prev, *next; /* the sender's list of calls in flight */
    CURL *easy;
    enum transfer_kind kind;
    struct delivery *d; /* TRANSFER_SEND */
    struct chan *chan;
    enum ratelimit_class cls;
    struct curl_slist *headers;
    char *url;
    char line_request_id[SENDER_HEADER_MAX];
    char accepted_request_id[SENDER_HEADER_MAX];
    char retry_after[SENDER_HEADER_MAX];
    char *body;
    size_t body_len, body_cap;
    int64_t started_ns;
};

struct override {
    char channel_id[CHANNEL_ID_MAX + 1];
    enum ratelimit_class cls;
    struct ratelimit_rate rate;
    bool seen; /* sync bookkeeping */
};

struct sender {
    struct sender_config cfg;
    char base_url[512];
    char instance[DELIVERY_INSTANCE_MAX + 1];
    struct channels *channels;
    struct deliveries_writer *writer;
    struct db *db; /* quota usage reads; under mu */

    pthread_t thread;
    bool running;
    atomic_bool stop;
    atomic_long held;

    /* the mailbox: submitted deliveries, and the request ids of every
     * delivery held, under mailbox_mu */
    pthread_mutex_t mailbox_mu;
    struct delivery *mailbox_head, *mailbox_tail;
    struct strmap *held_ids;

    /* everything below: under mu */
    pthread_mutex_t mu;
    CURLM *multi;
    struct strmap *chans; /* channel id -> struct chan */
    struct chan **active; /* channels with queued deliveries */
    size_t nactive, active_cap;
    struct delivery **heap; /* waiting deliveries, by not_before_ms */
    size_t nheap, heap_cap;
    struct strmap *zones; /* name -> struct quota_zone */
    struct ratelimit *rl;
    struct override *overrides;
    size_t noverrides, overrides_cap;
    CURL **idle; /* reusable easy handles */
    size_t nidle, idle_cap;
    long inflight;
    struct transfer *transfers; /* in flight */
    uint64_t rng_state;
    struct backoff_rng rng;
    int64_t gauges_at_ms;

    struct metric *m_calls;   /* endpoint, outcome */
    struct metric *m_latency; /* endpoint */
    struct metric *m_results; /* status */
    struct metric *m_quota_exceeded;
    struct metric *m_quota_warn;
    struct metric *m_inflight;
    struct metric *m_held;
};

/* --- clocks ------------------------------------------------------------------- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- small containers ----------------------------------------------------------- */

static void dq_push(struct dq *q, struct delivery *d)
{
    d->next = NULL;
    if (q->tail)
        q->tail->next = d;
    else
        q->head = d;
    q->tail = d;
}

static struct delivery *dq_pop(struct dq *q)
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
static void forget(struct sender *s, struct delivery *d)
{
    pthread_mutex_lock(&s->mailbox_mu);
    strmap_remove(s->held_ids, d->request_id);
    pthread_mutex_unlock(&s->mailbox_mu);
    atomic_fetch_sub(&s->held, 1);
}

/* --- channels ------------------------------------------------------------------- */

static struct chan *chan_get(struct sender *s, const char *id)
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
static void place(struct sender *s, struct delivery *d, int64_t now_ms)
{
    if (d->not_before_ms > now_ms && heap_push(s, d) == 0)
        return;
    struct chan *c = chan_get(s, d->channel_id);
    if (!c) {
        /* Out of memory: try again later rather than lose it. */
        d->not_before_ms = now_ms + SENDER_PARK_MS;
        if (heap_push(s, d) != 0) {
            log_error("out of memory: delivery dropped from memory (its row stays pending)",
                      "request_id", d->request_id);
            forget(s, d);
            delivery_free(d);
        }
        return;
    }
    dq_push(&c->q[class_of(d->req->kind)], d);
    c->queued++;
    chan_activate(s, c);
}

/* --- quota ------------------------------------------------------------------------ */

static const struct quota_zone *zone_get(struct sender *s, const char *name)
{
    struct quota_zone *z = strmap_get(s->zones, name);
    if (z)
        return z;
    char errstr[256];
    z = quota_zone_load(name, NULL, errstr, sizeof errstr);
    if (!z) {
        log_warn("channel time zone unusable; counting its months in Asia/Tokyo", "timezone", name,
                 "error", errstr);
        if (strcmp(name, "Asia/Tokyo") != 0)
            return zone_get(s, "Asia/Tokyo");
        z = quota_zone_load("UTC", NULL, errstr, sizeof errstr);
        if (!z)
            return NULL;
    }
    if (strmap_put(s->zones, name, z) != 0) {
        quota_zone_free(&z);
        return NULL;
    }
    return z;
}

static struct quota_limits chan_limits(const struct sender *s, const struct chan *c,
                                       const struct channel_creds *cr)
{
    struct quota_limits lim = {
        .contract = cr->monthly_quota > 0 ? cr->monthly_quota : QUOTA_NONE,
        .line = c->line_limit,
        .warn_percent = s->cfg.quota_warn_percent,
    };
    return lim;
}

/* Makes c's quota state current for cr. Returns 0, or -1 when the usage
 * could not be read (try again later). */
static int quota_ensure(struct sender *s, struct chan *c, const struct channel_creds *cr,
                        int64_t now_ms)
{
    char errstr[256];
    if (c->quota_ready && c->quota_version == cr->version)
        return 0;
    struct quota_limits lim = chan_limits(s, c, cr);
    if (c->quota_ready && strcmp(c->timezone, cr->timezone) == 0) {
        if (quota_set_limits(&c->quota, &lim, errstr, sizeof errstr) != 0)
            return -1;
        c->quota_version = cr->version;
        return 0;
    }
    const struct quota_zone *z = zone_get(s, cr->timezone);
    if (!z)
        return -1;
    int64_t start, end;
    quota_month_window(z, now_ms / 1000, &start, &end);
    long long used = 0;
    if (deliveries_quota_used(s->db, c->id, start, &used) != 0) {
        log_warn("cannot read quota usage; the channel waits", "channel", c->id, "error",
                 db_error_message(s->db));
        return -1;
    }
    /* A zone change keeps what this replica counted, if more. */
    if (c->quota_ready && c->quota.used > used)
        used = c->quota.used;
    if (quota_state_init(&c->quota, z, &lim, used, now_ms / 1000, errstr, sizeof errstr) != 0) {
        log_error("quota state refused", "channel", c->id, "error", errstr);
        return -1;
    }
    snprintf(c->timezone, sizeof c->timezone, "%s", cr->timezone);
    c->quota_ready = true;
    c->quota_version = cr->version;
    if (c->sync_due_ms == 0)
        c->sync_due_ms = now_ms;
    return 0;
}

static void quota_release_of(struct delivery *d, struct chan *c)
{
    if (d->reserved && c && c->quota_ready)
        quota_release(&c->quota, d->reserved_cost, d->reserved_month);
    d->reserved = false;
    d->reserved_cost = 0;
}

/* --- outcomes ------------------------------------------------------------------ */

static void finish(struct sender *s, struct delivery *d, Kizuna__V1__DeliveryStatus status,
                   const struct line_result *res, const char *reason)
{
    int64_t now = wall_ms();
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
    forget(s, d);
    delivery_free(d);
}

static void park(struct sender *s, struct delivery *d, int64_t until_ms)
{
    d->not_before_ms = until_ms;
    if (heap_push(s, d) != 0) {
        /* Out of memory: keep it at the back of its queue instead. */
        d->not_before_ms = 0;
        place(s, d, wall_ms());
    }
}

/* --- calls ------------------------------------------------------------------------ */

static size_t on_header(char *buf, size_t size, size_t n, void *ctx)
{
    struct transfer *t = ctx;
    size_t len = size * n;
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue): forget the previous one's. */
        t->line_request_id[0] = t->accepted_request_id[0] = t->retry_after[0] = '\0';
        return len;
    }
    static const struct {
        const char *name;
        size_t off;
    } wanted[] = {
        {"x-line-request-id", offsetof(struct transfer, line_request_id)},
        {"x-line-accepted-request-id", offsetof(struct transfer, accepted_request_id)},
        {"retry-after", offsetof(struct transfer, retry_after)},
    };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        size_t nl = strlen(wanted[i].name);
        if (len <= nl || buf[nl] != ':' || strncasecmp(buf, wanted[i].name, nl) != 0)
            continue;
        const char *v = buf + nl + 1, *end = buf + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        size_t vl = (size_t)(end - v);
        if (vl >= SENDER_HEADER_MAX)
            vl = SENDER_HEADER_MAX - 1;
        char *dst = (char *)t + wanted[i].off;
        memcpy(dst, v, vl);
        dst[vl] = '\0';
    }
    return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ctx)
{
    struct transfer *t = ctx;
    size_t len = size * n;
    size_t room = SENDER_BODY_CAP - t->body_len;
    size_t take = len < room ? len : room;
    if (take > 0) {
        /* Grown as needed: answers are usually a few hundred bytes, and a
         * 64 KiB block per call was a visible share of the sender's CPU. */
        if (t->body_len + take + 1 > t->body_cap) {
            size_t cap = t->body_cap ? t->body_cap : 1024;
            while (cap < t->body_len + take + 1)
                cap *= 2;
            if (cap > SENDER_BODY_CAP + 1)
                cap = SENDER_BODY_CAP + 1;
            char *b = realloc(t->body, cap);
            if (!b)
                return len; /* classified with what arrived so far */
            t->body = b;
            t->body_cap = cap;
        }
        memcpy(t->body + t->body_len, buf, take);
        t->body_len += take;
        t->body[t->body_len] = '\0';
    }
    return len;
}

static void transfer_free(struct sender *s, struct transfer *t)
{
    if (!t)
        return;
    if (t->prev || s->transfers == t) {
        if (t->prev)
            t->prev->next = t->next;
        else
            s->transfers = t->next;
        if (t->next)
            t->next->prev = t->prev;
        s->inflight--;
    }
    if (t->easy) {
        curl_multi_remove_handle(s->multi, t->easy);
        curl_easy_reset(t->easy);
        if (s->nidle < s->idle_cap)
            s->idle[s->nidle++] = t->easy;
        else
            curl_easy_cleanup(t->easy);
    }
    curl_slist_free_all(t->headers);
    free(t->url);
    free(t->body);
    free(t);
}

/* Starts one HTTP call. headers are "Name: value" lines. Returns the
 * transfer (in the multi handle), or NULL. */
static struct transfer *transfer_start(struct sender *s, enum line_method method, const char *path,
                                       const char *body, size_t body_len, char *const *headers,
                                       size_t nheaders)
{
    struct transfer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    size_t ul = strlen(s->base_url) + strlen(path) + 1;
    t->url = malloc(ul);
    t->easy = s->nidle > 0 ? s->idle[--s->nidle] : curl_easy_init();
    if (!t->url || !t->easy)
        goto fail;
    snprintf(t->url, ul, "%s%s", s->base_url, path);
    for (size_t i = 0; i < nheaders; i++) {
        struct curl_slist *h = curl_slist_append(t->headers, headers[i]);
        if (!h)
            goto fail;
        t->headers = h;
    }
    /* No "Expect: 100-continue" round trip before a body. */
    struct curl_slist *h = curl_slist_append(t->headers, "Expect:");
    if (!h)
        goto fail;
    t->headers = h;

    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->cfg.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->cfg.request_timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "kizuna-dispatcher/1");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    switch (method) {
    case LINE_GET:
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        break;
    case LINE_DELETE:
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
        break;
    case LINE_POST:
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
        break;
    }
    if (curl_multi_add_handle(s->multi, e) != CURLM_OK)
        goto fail;
    t->started_ns = mono_ns();
    t->next = s->transfers;
    if (s->transfers)
        s->transfers->prev = t;
    s->transfers = t;
    s->inflight++;
    return t;
fail:
    transfer_free(s, t);
    return NULL;
}

/* --- dispatching ------------------------------------------------------------------ */

static void quota_sync_start(struct sender *s, struct chan *c, int64_t now_ns, int64_t now_ms);

enum try_result {
    TRY_STARTED, /* the call is out */
    TRY_DONE,    /* the delivery left the queue (final or parked) */
    TRY_WAIT,    /* the head must wait: *wait_ns */
    TRY_NO_SLOT, /* too many calls in flight */
};

static enum try_result try_start(struct sender *s, struct chan *c, struct delivery *d,
                                 int64_t now_ns, int64_t now_ms, int64_t *wait_ns)
{
    char errstr[512] = "";
    struct channel_creds *cr = malloc(sizeof *cr);
    if (!cr)
        return TRY_NO_SLOT;
    enum try_result tr = TRY_DONE;
    bool known = channels_lookup(s->channels, c->id, cr) == 0;

    /* Credentials: the channel must be known, live, the request's tenant's. */
    if (!known) {
        if (now_ms - d->received_ms < s->cfg.unknown_channel_grace_s * 1000) {
            dq_pop(&c->q[class_of(d->req->kind)]);
            c->queued--;
            park(s, d, now_ms + SENDER_PARK_MS);
            goto out;
        }
        snprintf(errstr, sizeof errstr, "channel %s is not in the channels topic", d->channel_id);
        goto final_invalid;
    }
    if (cr->deleted) {
        snprintf(errstr, sizeof errstr, "channel %s was deleted", d->channel_id);
        goto final_invalid;
    }
    if (strcmp(cr->tenant_id, d->tenant_id) != 0) {
        snprintf(errstr, sizeof errstr, "channel %s does not belong to tenant %s", d->channel_id,
                 d->tenant_id);
        goto final_invalid;
    }
    if (!cr->token_ok) {
        snprintf(errstr, sizeof errstr,
                 "the access token of channel %s does not open with this data key", d->channel_id);
        goto final_invalid;
    }
    /* A request recovered after its retry deadline is not sent again. */
    if (d->first_attempt_ms > 0 &&
        (now_ms - d->first_attempt_ms) * NS_PER_MS >= s->cfg.backoff.deadline_ns) {
        dq_pop(&c->q[class_of(d->req->kind)]);
        c->queued--;
        finish(s, d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_RETRY_EXHAUSTED, NULL,
               "the retry deadline passed");
        goto out;
    }
    if (quota_ensure(s, c, cr, now_ms) != 0) {
        dq_pop(&c->q[class_of(d->req->kind)]);
        c->queued--;
        park(s, d, now_ms + SENDER_PARK_MS);
        goto out;
    }
    /* LINE's own quota and count, now and then, for channels in use. */
    if (s->cfg.quota_sync_s > 0 && c->sync_inflight == 0 && c->sync_due_ms <= now_ms)
        quota_sync_start(s, c, now_ns, now_ms);

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
            dq_pop(&c->q[class_of(d->req->kind)]);
            c->queued--;
            park(s, d, now_ms + SENDER_PARK_MS);
            goto out;
        }
        if (rc == LINE_REQUEST_EREPLY) {
            dq_pop(&c->q[class_of(d->req->kind)]);
            c->queued--;
            finish(s, d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_REPLY_TOKEN_EXPIRED, NULL,
                   errstr);
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
            dq_pop(&c->q[class_of(d->req->kind)]);
            c->queued--;
            finish(s, d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_QUOTA_EXCEEDED, NULL, errstr);
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
    int64_t w = ratelimit_take(s->rl, c->id, d->call.rl_class, now_ns);
    if (w > 0) {
        *wait_ns = w;
        tr = TRY_WAIT;
        goto out;
    }
    struct transfer *t = transfer_start(s, d->call.method, d->call.path, d->call.body,
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
    dq_pop(&c->q[class_of(d->req->kind)]);
    c->queued--;
    d->attempts++;
    if (d->first_attempt_ms == 0)
        d->first_attempt_ms = now_ms;
    tr = TRY_STARTED;
    goto out;

final_invalid:
    dq_pop(&c->q[class_of(d->req->kind)]);
    c->queued--;
    quota_release_of(d, c);
    finish(s, d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_INVALID, NULL, errstr);
out:
    channels_creds_wipe(cr);
    free(cr);
    return tr;
}

/* Walks the active channels and starts what the limits allow. Returns the
 * time (ms) until something may change without a completion. */
static long dispatch(struct sender *s)
{
    int64_t now_ns = mono_ns(), now_ms = wall_ms();
    int64_t next_ns = SENDER_IDLE_MS * NS_PER_MS;
    for (size_t i = 0; i < s->nactive;) {
        struct chan *c = s->active[i];
        bool no_slot = false;
        for (int cls = 0; cls < RATELIMIT_CLASS_COUNT && !no_slot; cls++) {
            while (c->q[cls].head) {
                if (c->blocked_until_ns[cls] > now_ns) {
                    if (c->blocked_until_ns[cls] - now_ns < next_ns)
                        next_ns = c->blocked_until_ns[cls] - now_ns;
                    break;
                }
                int64_t wait = 0;
                enum try_result r = try_start(s, c, c->q[cls].head, now_ns, now_ms, &wait);
                if (r == TRY_WAIT) {
                    c->blocked_until_ns[cls] = now_ns + wait;
                    if (wait < next_ns)
                        next_ns = wait;
                    break;
                }
                if (r == TRY_NO_SLOT) {
                    no_slot = true;
                    break;
                }
            }
        }
        if (c->queued == 0) {
            c->active = false;
            s->active[i] = s->active[--s->nactive];
            continue;
        }
        i++;
        if (no_slot)
            break; /* a completion frees a slot and wakes the loop */
    }
    long ms = (long)((next_ns + NS_PER_MS - 1) / NS_PER_MS);
    return ms < 1 ? 1 : ms;
}

/* Moves due timers into their queues. Returns ms until the next one. */
static long fire_timers(struct sender *s)
{
    int64_t now = wall_ms();
    while (s->nheap > 0 && s->heap[0]->not_before_ms <= now) {
        struct delivery *d = heap_pop(s);
        d->not_before_ms = 0;
        place(s, d, now);
    }
    if (s->nheap == 0)
        return SENDER_IDLE_MS;
    int64_t left = s->heap[0]->not_before_ms - now;
    return left < SENDER_IDLE_MS ? (long)left : SENDER_IDLE_MS;
}

/* --- LINE's quota ------------------------------------------------------------- */

static void quota_sync_start(struct sender *s, struct chan *c, int64_t now_ns, int64_t now_ms)
{
    struct channel_creds *cr = malloc(sizeof *cr);
    if (!cr)
        return;
    if (channels_lookup(s->channels, c->id, cr) != 0 || cr->deleted || !cr->token_ok) {
        c->sync_due_ms = now_ms + SENDER_QUOTA_RETRY_MS;
        goto out;
    }
    if (s->inflight + 2 > s->cfg.max_inflight)
        goto out;
    if (ratelimit_take(s->rl, c->id, RATELIMIT_QUOTA, now_ns) != 0)
        goto out;
    if (ratelimit_take(s->rl, c->id, RATELIMIT_QUOTA_CONSUMPTION, now_ns) != 0)
        goto out; /* the quota token is spent; both go next time */
    static const struct {
        enum transfer_kind kind;
        enum ratelimit_class cls;
        const char *path;
    } calls[] = {
        {TRANSFER_QUOTA, RATELIMIT_QUOTA, "/v2/bot/message/quota"},
        {TRANSFER_CONSUMPTION, RATELIMIT_QUOTA_CONSUMPTION, "/v2/bot/message/quota/consumption"},
    };
    c->sync_failed = false;
    for (size_t i = 0; i < 2; i++) {
        char auth[CHANNEL_TOKEN_MAX + 32];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", cr->token);
        char *headers[] = {auth};
        struct transfer *t = transfer_start(s, LINE_GET, calls[i].path, NULL, 0, headers, 1);
        volatile char *a = auth;
        for (size_t k = 0; k < sizeof auth; k++)
            a[k] = 0;
        if (!t) {
            c->sync_failed = true;
            continue;
        }
        t->kind = calls[i].kind;
        t->chan = c;
        t->cls = calls[i].cls;
        c->sync_inflight++;
    }
    c->sync_due_ms = now_ms + s->cfg.quota_sync_s * 1000;
out:
    channels_creds_wipe(cr);
    free(cr);
}

static void quota_sync_done(struct sender *s, struct transfer *t, long status)
{
    struct chan *c = t->chan;
    c->sync_inflight--;
    json_t *root = status == 200 && t->body ? json_loadb(t->body, t->body_len, 0, NULL) : NULL;
    int64_t now = wall_ms() / 1000;
    char errstr[256];
    bool ok = false;
    if (root && t->kind == TRANSFER_QUOTA) {
        const char *type = json_string_value(json_object_get(root, "type"));
        json_t *value = json_object_get(root, "value");
        if (type && strcmp(type, "none") == 0) {
            c->line_limit = QUOTA_NONE;
            ok = true;
        } else if (type && strcmp(type, "limited") == 0 && json_is_integer(value) &&
                   json_integer_value(value) >= 0) {
            c->line_limit = json_integer_value(value);
            ok = true;
        }
        if (ok && c->quota_ready) {
            struct quota_limits lim = c->quota.limits;
            lim.line = c->line_limit;
            if (quota_set_limits(&c->quota, &lim, errstr, sizeof errstr) != 0)
                ok = false;
        }
    } else if (root && t->kind == TRANSFER_CONSUMPTION) {
        json_t *total = json_object_get(root, "totalUsage");
        if (json_is_integer(total) && json_integer_value(total) >= 0 && c->quota_ready) {
            ok = true;
            if (quota_sync_usage(&c->quota, json_integer_value(total), now) == QUOTA_WARN) {
                char used[24], limit[24];
                snprintf(used, sizeof used, "%lld", c->quota.used);
                snprintf(limit, sizeof limit, "%lld", quota_effective_limit(&c->quota));
                log_warn("monthly quota usage crossed the warning threshold (LINE's count)",
                         "channel", c->id, "used", used, "limit", limit);
                metrics_add(s->m_quota_warn, 1, c->id);
            }
        }
    }
    json_decref(root);
    if (!ok) {
        char st[24];
        snprintf(st, sizeof st, "%ld", status);
        log_warn("LINE quota sync failed; the contract quota applies meanwhile", "channel", c->id,
                 "endpoint", t->kind == TRANSFER_QUOTA ? "quota" : "quota_consumption",
                 "http_status", st);
        c->sync_failed = true;
    }
    if (c->sync_inflight == 0 && c->sync_failed)
        c->sync_due_ms = wall_ms() + SENDER_QUOTA_RETRY_MS;
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

static void send_done(struct sender *s, struct transfer *t, CURLcode rc, long status)
{
    struct delivery *d = t->d;
    struct chan *c = t->chan;
    int64_t now_ns = mono_ns();
    d->last_attempt_ms = (int)((now_ns - t->started_ns) / NS_PER_MS);
    const char *endpoint = ratelimit_class_name(t->cls);
    metrics_observe(s->m_latency, (double)(now_ns - t->started_ns) / 1e9, endpoint);

    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t wall_ns = (int64_t)wall.tv_sec * 1000000000LL + wall.tv_nsec;
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
        finish(s, d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT, &res, NULL);
        break;
    case LINE_OUTCOME_QUOTA_EXCEEDED:
        quota_mark_exhausted(&c->quota, wall_ns / 1000000000LL);
        metrics_add(s->m_quota_exceeded, 1, d->channel_id);
        log_warn("LINE refused a send: monthly limit reached", "request_id", d->request_id,
                 "channel", d->channel_id);
        quota_release_of(d, c);
        finish(s, d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_QUOTA_EXCEEDED, &res, NULL);
        break;
    case LINE_OUTCOME_RETRY: {
        int64_t delay = 0;
        int64_t first_ns = d->first_attempt_ms * NS_PER_MS;
        int b = backoff_next(&s->cfg.backoff, d->attempts, first_ns, wall_ns, res.retry_after_ns,
                             &s->rng, &delay);
        if (b != 0) {
            /* Nothing certain reached LINE: give the quota back. */
            if (!d->ambiguous)
                quota_release_of(d, c);
            finish(s, d, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_RETRY_EXHAUSTED, &res,
                   "retries exhausted");
            break;
        }
        int64_t next_ms = wall_ns / NS_PER_MS + delay / NS_PER_MS;
        struct delivery_record *r = results_retry(d, &res, next_ms);
        if (r)
            deliveries_writer_submit(s->writer, r);
        line_request_clear(&d->call);
        d->built = false;
        park(s, d, next_ms);
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
            quota_release_of(d, c);
            park(s, d, 0);
            break;
        }
        if (!d->ambiguous)
            quota_release_of(d, c);
        finish(s, d, res.status, &res, NULL);
        break;
    }
    line_result_clear(&res);
}

static void completions(struct sender *s)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(s->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct transfer *t = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode rc = m->data.result;
        long status = 0;
        if (rc == CURLE_OK)
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        if (t->kind == TRANSFER_SEND)
            send_done(s, t, rc, status);
        else
            quota_sync_done(s, t, status);
        transfer_free(s, t);
    }
}

/* --- the thread ------------------------------------------------------------------ */

static void take_mailbox(struct sender *s)
{
    pthread_mutex_lock(&s->mailbox_mu);
    struct delivery *d = s->mailbox_head;
    s->mailbox_head = s->mailbox_tail = NULL;
    pthread_mutex_unlock(&s->mailbox_mu);
    int64_t now = wall_ms();
    while (d) {
        struct delivery *next = d->next;
        d->next = NULL;
        place(s, d, now);
        d = next;
    }
}

static void gauges(struct sender *s)
{
    int64_t now = wall_ms();
    if (now - s->gauges_at_ms < SENDER_GAUGE_MS)
        return;
    s->gauges_at_ms = now;
    metrics_set(s->m_inflight, (double)s->inflight);
    metrics_set(s->m_held, (double)atomic_load(&s->held));
}

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    int64_t drain_deadline_ns = 0;
    for (;;) {
        bool stopping = atomic_load(&s->stop);
        long wait_ms = SENDER_IDLE_MS;
        pthread_mutex_lock(&s->mu);
        if (stopping && drain_deadline_ns == 0)
            drain_deadline_ns = mono_ns() + s->cfg.drain_ms * NS_PER_MS;
        if (!stopping) {
            take_mailbox(s);
            long t = fire_timers(s);
            if (t < wait_ms)
                wait_ms = t;
            if (channels_caught_up(s->channels)) {
                long dms = dispatch(s);
                if (dms < wait_ms)
                    wait_ms = dms;
            }
        }
        gauges(s);
        long inflight = s->inflight;
        pthread_mutex_unlock(&s->mu);
        if (stopping && (inflight == 0 || mono_ns() >= drain_deadline_ns))
            break;
        if (wait_ms < 0)
            wait_ms = 0;
        curl_multi_poll(s->multi, NULL, 0, (int)wait_ms, NULL);
        int running = 0;
        pthread_mutex_lock(&s->mu);
        curl_multi_perform(s->multi, &running);
        completions(s);
        pthread_mutex_unlock(&s->mu);
    }
    if (s->inflight > 0) {
        char n[24];
        snprintf(n, sizeof n, "%ld", s->inflight);
        log_warn("calls still in flight at shutdown are abandoned; their rows stay pending and "
                 "are resent with the same retry key",
                 "calls", n);
    }
    return NULL;
}

/* --- lifecycle ------------------------------------------------------------------- */

struct sender *sender_new(const struct sender_config *cfg, struct channels *channels,
                          struct deliveries_writer *writer, char *errstr, size_t errcap)
{
    if (backoff_policy_check(&cfg->backoff, errstr, errcap) != 0)
        return NULL;
    struct sender *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    if (s->cfg.max_inflight < 1)
        s->cfg.max_inflight = 1;
    size_t bl = strlen(cfg->base_url);
    while (bl > 0 && cfg->base_url[bl - 1] == '/')
        bl--;
    if (bl >= sizeof s->base_url) {
        snprintf(errstr, errcap, "LINE API base URL too long");
        free(s);
        return NULL;
    }
    memcpy(s->base_url, cfg->base_url, bl);
    s->base_url[bl] = '\0';
    snprintf(s->instance, sizeof s->instance, "%s", cfg->instance);
    s->channels = channels;
    s->writer = writer;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->mailbox_mu, NULL);
    atomic_init(&s->stop, false);
    atomic_init(&s->held, 0);
    if (crypto_random(&s->rng_state, sizeof s->rng_state) != 0)
        s->rng_state = (uint64_t)mono_ns();
    s->rng.next = backoff_rng_splitmix64;
    s->rng.ctx = &s->rng_state;
    s->idle_cap = (size_t)s->cfg.max_inflight + 8;
    s->idle = calloc(s->idle_cap, sizeof *s->idle);
    s->chans = strmap_new();
    s->zones = strmap_new();
    s->held_ids = strmap_new();
    s->rl = ratelimit_new(NULL, errstr, errcap);
    if (s->rl &&
        ratelimit_set_margin(s->rl, s->cfg.rate_margin_ms * NS_PER_MS, errstr, errcap) != 0) {
        sender_free(&s);
        return NULL;
    }
    s->multi = curl_multi_init();
    if (!s->idle || !s->chans || !s->zones || !s->held_ids || !s->rl || !s->multi) {
        if (!errstr[0])
            snprintf(errstr, errcap, "out of memory");
        sender_free(&s);
        return NULL;
    }
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, s->cfg.max_inflight);
    curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    s->db = db_connect(cfg->dsn, errstr, errcap);
    if (!s->db) {
        sender_free(&s);
        return NULL;
    }
    static const double latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,   0.25,   0.5,   1,    2.5,   10};
    s->m_calls = metrics_counter("kizuna_dispatcher_line_calls_total",
                                 "calls to LINE by endpoint and outcome", "endpoint,outcome");
    s->m_latency = metrics_histogram("kizuna_dispatcher_line_call_seconds",
                                     "duration of calls to LINE", "endpoint", latency_buckets,
                                     sizeof latency_buckets / sizeof latency_buckets[0]);
    s->m_results = metrics_counter("kizuna_dispatcher_results_total",
                                   "final outcomes of send requests", "status");
    s->m_quota_exceeded =
        metrics_counter("kizuna_dispatcher_quota_exceeded_total",
                        "sends refused because the monthly quota is used up", "channel");
    s->m_quota_warn =
        metrics_counter("kizuna_dispatcher_quota_warnings_total",
                        "monthly quota usage crossed the warning threshold", "channel");
    s->m_inflight =
        metrics_gauge("kizuna_dispatcher_calls_in_flight", "calls to LINE in flight", NULL);
    s->m_held = metrics_gauge("kizuna_dispatcher_deliveries_held",
                              "deliveries held in memory (queued, waiting or in flight)", NULL);
    return s;
}

int sender_start(struct sender *s, char *errstr, size_t errcap)
{
    if (s->running)
        return 0;
    if (pthread_create(&s->thread, NULL, sender_main, s) != 0) {
        snprintf(errstr, errcap, "cannot start the sender thread");
        return -1;
    }
    s->running = true;
    return 0;
}

void sender_submit(struct sender *s, struct delivery *d)
{
    d->next = NULL;
    pthread_mutex_lock(&s->mailbox_mu);
    if (strmap_get(s->held_ids, d->request_id)) {
        /* Already here (a takeover or a reload raced): one copy is enough. */
        pthread_mutex_unlock(&s->mailbox_mu);
        log_debug("delivery already held", "request_id", d->request_id);
        delivery_free(d);
        return;
    }
    if (strmap_put(s->held_ids, d->request_id, s) != 0)
        log_warn("out of memory tracking a delivery", "request_id", d->request_id);
    atomic_fetch_add(&s->held, 1);
    if (s->mailbox_tail)
        s->mailbox_tail->next = d;
    else
        s->mailbox_head = d;
    s->mailbox_tail = d;
    pthread_mutex_unlock(&s->mailbox_mu);
    curl_multi_wakeup(s->multi);
}

bool sender_holds(struct sender *s, const char *request_id)
{
    pthread_mutex_lock(&s->mailbox_mu);
    bool held = strmap_get(s->held_ids, request_id) != NULL;
    pthread_mutex_unlock(&s->mailbox_mu);
    return held;
}

long sender_held(struct sender *s)
{
    return atomic_load(&s->held);
}

bool sender_full(struct sender *s)
{
    return atomic_load(&s->held) >= s->cfg.max_queued;
}

void sender_stop(struct sender *s)
{
    if (!s || !s->running)
        return;
    atomic_store(&s->stop, true);
    curl_multi_wakeup(s->multi);
    pthread_join(s->thread, NULL);
    s->running = false;
}

static void chan_free(void *p)
{
    struct chan *c = p;
    for (int i = 0; i < RATELIMIT_CLASS_COUNT; i++) {
        struct delivery *d;
        while ((d = dq_pop(&c->q[i])))
            delivery_free(d);
    }
    free(c);
}

static void zone_free(void *p)
{
    struct quota_zone *z = p;
    quota_zone_free(&z);
}

static void abandon_transfers(struct sender *s)
{
    if (!s->multi)
        return;
    /* Every call still in flight: its row stays pending. */
    while (s->transfers) {
        struct transfer *t = s->transfers;
        delivery_free(t->d);
        transfer_free(s, t);
    }
}

void sender_free(struct sender **sp)
{
    if (!sp || !*sp)
        return;
    struct sender *s = *sp;
    sender_stop(s);
    abandon_transfers(s);
    struct delivery *d = s->mailbox_head;
    while (d) {
        struct delivery *next = d->next;
        delivery_free(d);
        d = next;
    }
    for (size_t i = 0; i < s->nheap; i++)
        delivery_free(s->heap[i]);
    free(s->heap);
    strmap_free(&s->chans, chan_free);
    strmap_free(&s->zones, zone_free);
    strmap_free(&s->held_ids, NULL);
    free(s->active);
    ratelimit_free(&s->rl);
    for (size_t i = 0; i < s->nidle; i++)
        curl_easy_cleanup(s->idle[i]);
    free(s->idle);
    free(s->overrides);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    db_free(&s->db);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->mailbox_mu);
    free(s);
    *sp = NULL;
}

/* --- limits ---------------------------------------------------------------------- */

static struct override *override_find(struct sender *s, const char *channel_id,
                                      enum ratelimit_class cls)
{
    for (size_t i = 0; i < s->noverrides; i++)
        if (s->overrides[i].cls == cls && strcmp(s->overrides[i].channel_id, channel_id) == 0)
            return &s->overrides[i];
    return NULL;
}

int sender_limit_get(struct sender *s, const char *channel_id, enum ratelimit_class cls,
                     struct ratelimit_rate *out, bool *overridden)
{
    pthread_mutex_lock(&s->mu);
    int rc = ratelimit_get(s->rl, channel_id, cls, out, overridden);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static bool rate_equal(const struct ratelimit_rate *a, const struct ratelimit_rate *b)
{
    return a->limit == b->limit && a->period_s == b->period_s && a->burst == b->burst;
}

/* Under mu. */
static int limit_set_locked(struct sender *s, const char *channel_id, enum ratelimit_class cls,
                            const struct ratelimit_rate *rate, char *errstr, size_t errcap)
{
    struct override *o = override_find(s, channel_id, cls);
    if (rate && o && rate_equal(&o->rate, rate))
        return 0;
    if (!rate && !o)
        return 0;
    if (strlen(channel_id) > CHANNEL_ID_MAX) {
        snprintf(errstr, errcap, "channel id too long");
        return -1;
    }
    if (rate && !o && s->noverrides == s->overrides_cap) {
        size_t cap = s->overrides_cap ? s->overrides_cap * 2 : 16;
        void *p = realloc(s->overrides, cap * sizeof *s->overrides);
        if (!p) {
            snprintf(errstr, errcap, "out of memory");
            return -2;
        }
        s->overrides = p;
        s->overrides_cap = cap;
    }
    int rc = ratelimit_set(s->rl, channel_id, cls, rate, mono_ns(), errstr, errcap);
    if (rc != 0)
        return rc;
    struct chan *c = strmap_get(s->chans, channel_id);
    if (c)
        c->blocked_until_ns[cls] = 0;
    if (rate) {
        if (!o) {
            o = &s->overrides[s->noverrides++];
            memset(o, 0, sizeof *o);
            snprintf(o->channel_id, sizeof o->channel_id, "%s", channel_id);
            o->cls = cls;
        }
        o->rate = *rate;
    } else {
        *o = s->overrides[--s->noverrides];
    }
    return 0;
}

int sender_limit_set(struct sender *s, const char *channel_id, enum ratelimit_class cls,
                     const struct ratelimit_rate *rate, char *errstr, size_t errcap)
{
    pthread_mutex_lock(&s->mu);
    int rc = limit_set_locked(s, channel_id, cls, rate, errstr, errcap);
    pthread_mutex_unlock(&s->mu);
    if (rc == 0)
        curl_multi_wakeup(s->multi);
    return rc;
}

void sender_limits_sync(struct sender *s, const struct sender_limit_row *rows, size_t n)
{
    char errstr[256];
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->noverrides; i++)
        s->overrides[i].seen = false;
    for (size_t i = 0; i < n; i++) {
        if (limit_set_locked(s, rows[i].channel_id, rows[i].cls, &rows[i].rate, errstr,
                             sizeof errstr) != 0) {
            log_warn("channel limit row ignored", "channel", rows[i].channel_id, "class",
                     ratelimit_class_name(rows[i].cls), "error", errstr);
            continue;
        }
        struct override *o = override_find(s, rows[i].channel_id, rows[i].cls);
        if (o)
            o->seen = true;
    }
    for (size_t i = 0; i < s->noverrides;) {
        struct override o = s->overrides[i];
        if (o.seen) {
            i++;
            continue;
        }
        if (limit_set_locked(s, o.channel_id, o.cls, NULL, errstr, sizeof errstr) != 0)
            i++;
    }
    pthread_mutex_unlock(&s->mu);
}

/* --- quota view ----------------------------------------------------------------- */

int sender_quota_get(struct sender *s, const char *channel_id, struct sender_quota_view *out)
{
    struct channel_creds *cr = malloc(sizeof *cr);
    if (!cr)
        return -2;
    int rc = -1;
    if (channels_lookup(s->channels, channel_id, cr) != 0 || cr->deleted)
        goto out;
    pthread_mutex_lock(&s->mu);
    struct chan *c = chan_get(s, channel_id);
    int64_t now_ms = wall_ms();
    if (!c || quota_ensure(s, c, cr, now_ms) != 0) {
        rc = -2;
    } else {
        /* Reading turns an ended month over, as a send would. */
        quota_reserve(&c->quota, 0, false, now_ms / 1000, NULL, NULL);
        memset(out, 0, sizeof *out);
        snprintf(out->timezone, sizeof out->timezone, "%s", c->timezone);
        out->month_start = c->quota.month_start;
        out->month_end = c->quota.month_end;
        out->used = c->quota.used;
        out->limit = quota_effective_limit(&c->quota);
        out->contract = c->quota.limits.contract;
        out->line = c->quota.limits.line;
        out->warn_percent = c->quota.limits.warn_percent ? c->quota.limits.warn_percent
                                                         : QUOTA_WARN_PERCENT_DEFAULT;
        out->exhausted = c->quota.line_exhausted;
        rc = 0;
    }
    pthread_mutex_unlock(&s->mu);
out:
    channels_creds_wipe(cr);
    free(cr);
    return rc;
}
