/* Tracked-link redirects. Only a token that verifies under the link key ever
 * produces a Location header, so /r/ cannot be used as an open redirect.
 *
 * A click goes the same durable way as a webhook event (broker ack within
 * the budget, else a spool row, through ackwait.c, so that a click during a
 * broker outage waits without holding a worker thread), but the person
 * clicking is never kept from the target: if neither the broker nor the database takes the event, the
 * redirect still happens and the loss is logged and counted. A browser does
 * not retry the way LINE redelivers, so refusing would lose the visit and
 * the event both. */
#include "links.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ackwait.h"
#include "clock.h"
#include "crypto.h"
#include "kizuna/v1/envelope.pb-c.h"
#include "kizuna/v1/inbound.pb-c.h"
#include "link_token.h"
#include "log.h"
#include "metrics.h"
#include "spool.h"

#define LINKS_TOPIC "inbound"
/* LinkClicked.user_agent is at most this many bytes. */
#define LINKS_USER_AGENT_MAX 512

struct links {
    uint8_t key[CRYPTO_KEY_LEN];
    struct metric *clicks;
    struct metric *lost;
};

struct links *links_new(const uint8_t key[CRYPTO_KEY_LEN], char *errstr, size_t errcap)
{
    if (!key) {
        snprintf(errstr, errcap, "links need a key");
        return NULL;
    }
    struct links *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    memcpy(l->key, key, CRYPTO_KEY_LEN);
    l->clicks =
        metrics_counter("kizuna_ingest_link_clicks_total",
                        "Requests for /r/{token}, by verdict (ok or why refused).", "result");
    l->lost = metrics_counter("kizuna_ingest_link_clicks_lost_total",
                              "Clicks redirected whose LinkClicked event neither the broker nor "
                              "the spool took.",
                              NULL);
    return l;
}

void links_free(struct links **l)
{
    if (!l || !*l)
        return;
    crypto_wipe((*l)->key, sizeof(*l)->key);
    free(*l);
    *l = NULL;
}

/* A random (version 4) UUID in canonical lower-case form. */
static int links_uuid(char out[37])
{
    uint8_t b[16];
    if (crypto_random(b, sizeof b) != 0)
        return -1;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

/* The User-Agent as printable ASCII (a protobuf string must be UTF-8, and
 * consumers in other languages refuse anything else), cut to the cap. */
static void links_user_agent(const char *ua, char out[LINKS_USER_AGENT_MAX + 1])
{
    size_t o = 0;
    for (; ua && ua[o] && o < LINKS_USER_AGENT_MAX; o++) {
        unsigned char c = (unsigned char)ua[o];
        out[o] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[o] = '\0';
}

/* A click whose LinkClicked event is on its way to durability: the
 * redirect waits for it (ackwait), holding no worker thread, as a webhook
 * request does. Everything the answer needs is here, because the httpd
 * request is gone once the handler returns. */
struct links_click {
    struct links *l;
    struct httpd_deferred *deferred; /* NULL: answered already, the event goes on alone */
    struct spool_record rec;
    uint8_t *payload;
    char key[LINK_TOKEN_CHANNEL_MAX + LINK_TOKEN_USER_MAX + 2];
    char channel_id[LINK_TOKEN_CHANNEL_MAX];
    char link_id[LINK_TOKEN_ID_MAX];
    char target_url[LINK_TOKEN_URL_MAX];
    char event_id[37];
};

static void click_free(struct links_click *c)
{
    free(c->payload);
    free(c);
}

/* The 302 to the target; the token named the friend, so it stays out of
 * caches and of the target's Referer. */
static void links_redirect(struct httpd_response *resp, const char *target_url)
{
    httpd_response_header(resp, "Cache-Control", "no-store");
    httpd_response_header(resp, "Referrer-Policy", "no-referrer");
    httpd_response_header(resp, "Location", target_url);
    httpd_respond(resp, 302, "text/plain; charset=utf-8", NULL, 0);
}

/* Packs the click into c (payload, key, the record); 0 or -1. */
static int links_pack(struct links_click *c, const struct link_token *t, const char *user_agent)
{
    char ua[LINKS_USER_AGENT_MAX + 1];
    if (links_uuid(c->event_id) != 0)
        return -1;
    links_user_agent(user_agent, ua);
    snprintf(c->key, sizeof c->key, "%s:%s", t->channel_id, t->friend_user_id);
    snprintf(c->channel_id, sizeof c->channel_id, "%s", t->channel_id);
    snprintf(c->link_id, sizeof c->link_id, "%s", t->link_id);
    snprintf(c->target_url, sizeof c->target_url, "%s", t->target_url);

    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = c->event_id;
    env.tenant_id = (char *)t->tenant_id;
    env.channel_id = (char *)t->channel_id;
    env.occurred_at = clock_wall_ms();
    Kizuna__V1__LinkClicked click = KIZUNA__V1__LINK_CLICKED__INIT;
    click.link_id = (char *)t->link_id;
    click.friend_user_id = (char *)t->friend_user_id;
    click.target_url = (char *)t->target_url;
    click.user_agent = ua;
    Kizuna__V1__InboundEvent ev = KIZUNA__V1__INBOUND_EVENT__INIT;
    ev.envelope = &env;
    ev.event_case = KIZUNA__V1__INBOUND_EVENT__EVENT_LINK_CLICKED;
    ev.link_clicked = &click;

    size_t len = kizuna__v1__inbound_event__get_packed_size(&ev);
    c->payload = malloc(len ? len : 1);
    if (!c->payload)
        return -1;
    kizuna__v1__inbound_event__pack(&ev, c->payload);
    c->rec = (struct spool_record){
        .topic = LINKS_TOPIC,
        .key = c->key,
        .keylen = strlen(c->key),
        .payload = c->payload,
        .len = len,
    };
    return 0;
}

static void links_lost(struct links *l, const char *channel_id, const char *link_id,
                       const char *event_id)
{
    metrics_add(l->lost, 1);
    log_error("link click not recorded: neither the broker nor the spool took it", "channel",
              channel_id, "link_id", link_id, "event_id", event_id);
}

/* ackwait's verdict on the click's event (producer poll thread or spool
 * worker): log, count, and give the redirect, which comes either way. */
static void links_durable(void *arg, struct spool_record *recs, size_t n, bool durable)
{
    struct links_click *c = arg;
    (void)n;
    if (!durable)
        links_lost(c->l, c->channel_id, c->link_id, c->event_id);
    else if (recs[0].state == SPOOL_SPOOLED)
        log_info("link click spooled", "channel", c->channel_id, "link_id", c->link_id, "event_id",
                 c->event_id);
    else
        log_debug("link click", "channel", c->channel_id, "link_id", c->link_id, "event_id",
                  c->event_id);
    if (c->deferred) {
        struct httpd_response resp = {0};
        links_redirect(&resp, c->target_url);
        /* -1: httpd_stop answered 503 already, or the browser left. */
        httpd_complete(&c->deferred, &resp);
    }
    click_free(c);
}

bool links_admit(const struct httpd_request *req, struct httpd_response *resp)
{
    const char *method = httpd_request_method(req);
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        return true;
    httpd_response_header(resp, "Allow", "GET, HEAD");
    httpd_respond_error(resp, 405, "method_not_allowed", "use GET", NULL);
    return false;
}

void links_handle(struct links *l, struct ackwait *aw, const struct httpd_request *req,
                  const char *token, struct httpd_response *resp)
{
    if (!links_admit(req, resp))
        return;
    bool head = strcmp(httpd_request_method(req), "HEAD") == 0;
    struct link_token t;
    enum link_token_result r =
        link_token_verify(l->key, token, strlen(token), (int64_t)time(NULL), &t);
    if (r != LINK_TOKEN_OK) {
        static const char *const names[] = {"ok", "malformed", "bad_signature", "expired",
                                            "bad_target"};
        int i = -(int)r;
        metrics_add(l->clicks, 1, i >= 0 && i < 5 ? names[i] : "refused");
        log_info("link token refused", "reason", link_token_result_str(r));
        httpd_response_header(resp, "Cache-Control", "no-store");
        httpd_response_header(resp, "Referrer-Policy", "no-referrer");
        httpd_respond_error(resp, 400, "bad_link", link_token_result_str(r), "token");
        return;
    }
    metrics_add(l->clicks, 1, "ok");
    if (head) { /* a HEAD is no click */
        links_redirect(resp, t.target_url);
        return;
    }
    struct links_click *c = calloc(1, sizeof *c);
    if (!c || links_pack(c, &t, httpd_request_header(req, "User-Agent")) != 0) {
        links_lost(l, t.channel_id, t.link_id, c ? c->event_id : "");
        if (c)
            click_free(c);
        links_redirect(resp, t.target_url);
        return;
    }
    c->l = l;
    c->deferred = httpd_defer(req);
    if (!c->deferred) /* out of memory, or the server is stopping */
        links_redirect(resp, t.target_url);
    /* From here on c is links_durable's, which may run at once. */
    if (ackwait_submit(aw, &c->rec, 1, links_durable, c) != 0) {
        links_lost(l, c->channel_id, c->link_id, c->event_id);
        if (c->deferred) {
            struct httpd_response now = {0};
            links_redirect(&now, c->target_url);
            httpd_complete(&c->deferred, &now);
        }
        click_free(c);
    }
}
