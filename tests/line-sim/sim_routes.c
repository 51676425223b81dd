/* LINE's Messaging API endpoints, in the order LINE applies its checks as
 * far as its documentation shows: path, bearer token (401), rate limit
 * (429), X-Line-Retry-Key form (400), body schema (400), then the checks
 * that need state, made atomically by sim_channel_send: retry key already
 * accepted (409), reply token (400), monthly quota (429). Injected faults
 * come either before any of the stateful work or after acceptance, and
 * added latency after everything, so the client can time out on a send
 * that was in fact delivered. */
#include "sim_routes.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "shutdown.h"
#include "sim_control.h"
#include "sim_dedup.h"
#include "sim_endpoint.h"
#include "sim_faults.h"
#include "sim_map.h"
#include "sim_respond.h"
#include "sim_retrykey.h"
#include "sim_state.h"
#include "sim_validate.h"

#define SIM_SEGMENT_MAX 128

#define MSG_NOT_FOUND "Not found"
#define MSG_NO_AUTH                                                                          \
    "Authorization header required. Must follow the scheme, 'Authorization: Bearer <ACCESS " \
    "TOKEN>'"
#define MSG_BAD_TOKEN                                                                      \
    "Authentication failed. Confirm that the access token in the authorization header is " \
    "valid."
#define MSG_RATE "Too many requests"
#define MSG_QUOTA "You have reached your monthly limit."
#define MSG_CONFLICT "The retry key is already accepted"
#define MSG_REPLY_TOKEN "Invalid reply token"
/* LINE's OpenAPI document lists no error bodies for the rich-menu links;
 * this renders LINE's 404 for a rich menu id the channel does not have. */
#define MSG_NO_RICHMENU "richmenu not found"

/* A matched /v2 route and its path parameters. */
struct route {
    enum sim_endpoint ep;
    char user_id[SIM_SEGMENT_MAX];
    char menu_id[SIM_SEGMENT_MAX];
};

static int64_t now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies one path segment (up to '/' or the end) into out. Returns a
 * pointer past it, or NULL when empty or too long. */
static const char *take_segment(const char *p, char *out, size_t cap)
{
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= cap)
        return NULL;
    memcpy(out, p, n);
    out[n] = '\0';
    return p + n;
}

static const struct {
    const char *path;
    const char *method;
    enum sim_endpoint ep;
} fixed_routes[] = {
    {"/v2/bot/message/reply", "POST", SIM_EP_REPLY},
    {"/v2/bot/message/push", "POST", SIM_EP_PUSH},
    {"/v2/bot/message/multicast", "POST", SIM_EP_MULTICAST},
    {"/v2/bot/message/broadcast", "POST", SIM_EP_BROADCAST},
    {"/v2/bot/message/narrowcast", "POST", SIM_EP_NARROWCAST},
    {"/v2/bot/message/progress/narrowcast", "GET", SIM_EP_NARROWCAST_PROGRESS},
    {"/v2/bot/message/quota", "GET", SIM_EP_QUOTA},
    {"/v2/bot/message/quota/consumption", "GET", SIM_EP_QUOTA_CONSUMPTION},
    {"/v2/bot/richmenu/bulk/link", "POST", SIM_EP_RICHMENU_BULK_LINK},
    {"/v2/bot/richmenu/bulk/unlink", "POST", SIM_EP_RICHMENU_BULK_UNLINK},
    {"/v2/bot/info", "GET", SIM_EP_BOT_INFO},
};

/* Returns 0 with r filled, 404 for an unknown path, 405 for a known path
 * with another method. */
static int route_match(const char *method, const char *path, struct route *r)
{
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < sizeof fixed_routes / sizeof fixed_routes[0]; i++) {
        if (strcmp(path, fixed_routes[i].path) == 0) {
            if (strcmp(method, fixed_routes[i].method) != 0)
                return 405;
            r->ep = fixed_routes[i].ep;
            return 0;
        }
    }
    const char *p;
    if (strncmp(path, "/v2/bot/profile/", 16) == 0) {
        p = take_segment(path + 16, r->user_id, sizeof r->user_id);
        if (!p || *p)
            return 404;
        if (strcmp(method, "GET") != 0)
            return 405;
        r->ep = SIM_EP_PROFILE;
        return 0;
    }
    if (strncmp(path, "/v2/bot/user/", 13) == 0) {
        /* /v2/bot/user/{userId}/richmenu[/{richMenuId}] */
        p = take_segment(path + 13, r->user_id, sizeof r->user_id);
        if (!p || strncmp(p, "/richmenu", 9) != 0)
            return 404;
        p += 9;
        if (*p == '\0') {
            if (strcmp(method, "GET") == 0)
                r->ep = SIM_EP_RICHMENU_GET;
            else if (strcmp(method, "DELETE") == 0)
                r->ep = SIM_EP_RICHMENU_UNLINK;
            else
                return 405;
            return 0;
        }
        if (*p != '/')
            return 404;
        p = take_segment(p + 1, r->menu_id, sizeof r->menu_id);
        if (!p || *p)
            return 404;
        if (strcmp(method, "POST") != 0)
            return 405;
        r->ep = SIM_EP_RICHMENU_LINK;
        return 0;
    }
    return 404;
}

/* The token of "Authorization: Bearer <token>", or NULL. */
static const char *bearer_token(const struct httpd_request *req)
{
    const char *h = httpd_request_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

/* A LINE-looking message id: unique for this process and, being seeded
 * from the start time, across restarts too. */
static uint64_t next_message_id(void)
{
    static atomic_uint_fast64_t next;
    uint64_t cur = atomic_load(&next);
    if (cur == 0) {
        uint64_t seed = (uint64_t)now_wall_ms() * 100000ULL;
        atomic_compare_exchange_strong(&next, &cur, seed);
    }
    return atomic_fetch_add(&next, 1) + 1;
}

/* sentMessages for n messages: [{"id": "...", "quoteToken": "..."}]. */
static json_t *sent_messages_new(size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        char id[24], quote[40];
        uint64_t mid = next_message_id();
        snprintf(id, sizeof id, "%llu", (unsigned long long)mid);
        snprintf(quote, sizeof quote, "q%016llx",
                 (unsigned long long)sim_hash_bytes(&mid, sizeof mid, SIM_HASH_SEED));
        json_array_append_new(arr, json_pack("{s:s, s:s}", "id", id, "quoteToken", quote));
    }
    return arr;
}

static bool content_type_json(const struct httpd_request *req)
{
    const char *ct = httpd_request_header(req, "Content-Type");
    return ct && strncasecmp(ct, "application/json", 16) == 0 &&
           (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

/* 415 in LINE's words. */
static void respond_content_type(const struct httpd_request *req, struct httpd_response *resp)
{
    const char *ct = httpd_request_header(req, "Content-Type");
    char msg[160];
    snprintf(msg, sizeof msg, "The content type, '%.100s', is not supported", ct ? ct : "");
    sim_respond_line_error(resp, 415, msg);
}

/* Parses and validates the body of a POST endpoint. Returns the object, or
 * NULL after answering 4xx. */
static json_t *read_body(struct sim_state *st, struct sim_channel *ch, enum sim_endpoint ep,
                         const struct httpd_request *req, struct httpd_response *resp)
{
    if (!content_type_json(req)) {
        respond_content_type(req, resp);
        sim_state_count(st, ch, ep, SIM_COUNT_REJECTED);
        return NULL;
    }
    size_t len = 0;
    const char *body = httpd_request_body(req, &len);
    struct sim_verr verr;
    json_t *root = NULL;
    if (sim_validate_body(ep, body, len, &root, &verr) != 0) {
        sim_respond_verr(resp, 400, &verr);
        sim_state_count(st, ch, ep, SIM_COUNT_REJECTED);
        return NULL;
    }
    return root;
}

static void handle_send(struct sim_state *st, struct sim_channel *ch, enum sim_endpoint ep,
                        const struct httpd_request *req, struct httpd_response *resp,
                        const char *request_id)
{
    const char *retry_key = httpd_request_header(req, "X-Line-Retry-Key");
    json_t *root = read_body(st, ch, ep, req, resp);
    if (!root)
        return;
    const json_t *messages = json_object_get(root, "messages");
    char *canonical = sim_dedup_canonical(messages);
    json_t *sent = NULL;
    const char **to = NULL;
    char *sent_text = NULL;
    struct sim_send s = {
        .ep = ep, .request_id = request_id, .retry_key = retry_key, .canonical = canonical};
    struct sim_send_result r = {0};
    if (!canonical)
        goto nomem;
    if (ep == SIM_EP_PUSH || ep == SIM_EP_REPLY) {
        sent = sent_messages_new(json_array_size(messages));
        if (!sent || !(sent_text = json_dumps(sent, JSON_COMPACT)))
            goto nomem;
        s.sent_messages = sent_text;
    }
    if (ep == SIM_EP_REPLY)
        s.reply_token = json_string_value(json_object_get(root, "replyToken"));
    if (ep == SIM_EP_PUSH) {
        to = malloc(sizeof *to);
        if (!to)
            goto nomem;
        to[0] = json_string_value(json_object_get(root, "to"));
        s.nto = 1;
    } else if (ep == SIM_EP_MULTICAST) {
        const json_t *arr = json_object_get(root, "to");
        to = calloc(json_array_size(arr) + 1, sizeof *to);
        if (!to)
            goto nomem;
        for (size_t i = 0; i < json_array_size(arr); i++)
            to[s.nto++] = json_string_value(json_array_get(arr, i));
    } else if (ep == SIM_EP_NARROWCAST) {
        const json_t *limit = json_object_get(root, "limit");
        const json_t *max = json_object_get(limit, "max");
        s.narrowcast_max = json_is_integer(max) ? (long long)json_integer_value(max) : 0;
        s.up_to_remaining_quota = json_is_true(json_object_get(limit, "upToRemainingQuota"));
    }
    s.to = to;

    sim_channel_send(st, ch, &s, now_mono_ns(), now_wall_ms(), &r);
    switch (r.outcome) {
    case SIM_SEND_ACCEPTED:
        if (sent) {
            sim_respond_json(resp, 200, json_pack("{s:O}", "sentMessages", sent));
        } else {
            sim_respond_json(resp, ep == SIM_EP_NARROWCAST ? 202 : 200, json_object());
        }
        break;
    case SIM_SEND_CONFLICT: {
        json_t *body = json_pack("{s:s}", "message", MSG_CONFLICT);
        json_t *first = r.sent_messages ? json_loads(r.sent_messages, 0, NULL) : NULL;
        if (body && first)
            json_object_set_new(body, "sentMessages", first);
        else
            json_decref(first);
        httpd_response_header(resp, "x-line-accepted-request-id", r.accepted_request_id);
        sim_respond_json(resp, 409, body);
        break;
    }
    case SIM_SEND_QUOTA:
        sim_respond_line_error(resp, 429, MSG_QUOTA);
        break;
    case SIM_SEND_BAD_REPLY_TOKEN:
        sim_respond_line_error(resp, 400, MSG_REPLY_TOKEN);
        break;
    case SIM_SEND_NOMEM:
        goto nomem;
    }
    goto done;
nomem:
    sim_respond_line_error(resp, 500, "Internal server error");
done:
    free(r.sent_messages);
    free(to);
    free(sent_text);
    free(canonical);
    json_decref(sent);
    json_decref(root);
}

/* Answers a rich-menu change as LINE does: ok_status, or 404 for a rich
 * menu the channel does not have (counted as rejected). */
static void respond_richmenu(struct sim_state *st, struct sim_channel *ch, enum sim_endpoint ep,
                             int rc, int ok_status, struct httpd_response *resp)
{
    if (rc == -2) {
        sim_respond_line_error(resp, 404, MSG_NO_RICHMENU);
        sim_state_count(st, ch, ep, SIM_COUNT_REJECTED);
    } else if (rc != 0) {
        sim_respond_line_error(resp, 500, "Internal server error");
    } else {
        sim_respond_json(resp, ok_status, json_object());
    }
}

/* Bulk link and unlink: 202, applied at once (LINE applies them later). */
static void handle_bulk(struct sim_state *st, struct sim_channel *ch, enum sim_endpoint ep,
                        const struct httpd_request *req, struct httpd_response *resp)
{
    json_t *root = read_body(st, ch, ep, req, resp);
    if (!root)
        return;
    const char *menu = ep == SIM_EP_RICHMENU_BULK_LINK
                           ? json_string_value(json_object_get(root, "richMenuId"))
                           : NULL;
    const json_t *ids = json_object_get(root, "userIds");
    size_t n = json_array_size(ids);
    const char **users = calloc(n ? n : 1, sizeof *users);
    int rc = -1;
    if (users) {
        for (size_t i = 0; i < n; i++)
            users[i] = json_string_value(json_array_get(ids, i));
        rc = sim_channel_richmenu_bulk(st, ch, menu, users, n);
    }
    respond_richmenu(st, ch, ep, rc, 202, resp);
    free(users);
    json_decref(root);
}

/* Dispatches an admitted request to its endpoint. */
static void handle_endpoint(struct sim_state *st, struct sim_channel *ch, const struct route *rt,
                            const struct httpd_request *req, struct httpd_response *resp,
                            const char *request_id)
{
    json_t *obj;
    char *menu;
    switch (rt->ep) {
    case SIM_EP_REPLY:
    case SIM_EP_PUSH:
    case SIM_EP_MULTICAST:
    case SIM_EP_BROADCAST:
    case SIM_EP_NARROWCAST:
        handle_send(st, ch, rt->ep, req, resp, request_id);
        return;
    case SIM_EP_NARROWCAST_PROGRESS: {
        const char *id = httpd_request_query(req, "requestId");
        if (!id || !*id) {
            struct sim_verr verr = {.nerrors = 1, .ndetails = 1};
            snprintf(verr.message, sizeof verr.message, "The request has 1 error(s)");
            snprintf(verr.details[0].message, sizeof verr.details[0].message, "Must be specified");
            snprintf(verr.details[0].property, sizeof verr.details[0].property, "requestId");
            sim_respond_verr(resp, 400, &verr);
            sim_state_count(st, ch, rt->ep, SIM_COUNT_REJECTED);
            return;
        }
        obj = sim_channel_narrowcast_progress(st, ch, id);
        break;
    }
    case SIM_EP_QUOTA:
        sim_respond_json(resp, 200, sim_channel_quota_json(st, ch));
        return;
    case SIM_EP_BOT_INFO:
        sim_respond_json(resp, 200, sim_channel_bot_info(st, ch));
        return;
    case SIM_EP_QUOTA_CONSUMPTION:
        sim_respond_json(resp, 200, sim_channel_consumption_json(st, ch));
        return;
    case SIM_EP_PROFILE:
        obj = sim_channel_profile(st, ch, rt->user_id);
        break;
    case SIM_EP_RICHMENU_LINK:
        respond_richmenu(st, ch, rt->ep,
                         sim_channel_richmenu_link(st, ch, rt->user_id, rt->menu_id), 200, resp);
        return;
    case SIM_EP_RICHMENU_UNLINK:
        sim_channel_richmenu_unlink(st, ch, rt->user_id);
        sim_respond_json(resp, 200, json_object());
        return;
    case SIM_EP_RICHMENU_GET:
        menu = sim_channel_richmenu_get(st, ch, rt->user_id);
        if (!menu) {
            sim_respond_line_error(resp, 404, "the user has no richmenu");
            sim_state_count(st, ch, rt->ep, SIM_COUNT_REJECTED);
            return;
        }
        sim_respond_json(resp, 200, json_pack("{s:s}", "richMenuId", menu));
        free(menu);
        return;
    case SIM_EP_RICHMENU_BULK_LINK:
    case SIM_EP_RICHMENU_BULK_UNLINK:
        handle_bulk(st, ch, rt->ep, req, resp);
        return;
    default:
        sim_respond_line_error(resp, 404, MSG_NOT_FOUND);
        return;
    }
    /* Lookups that may miss: profile and narrowcast progress. */
    if (!obj) {
        sim_respond_line_error(resp, 404, MSG_NOT_FOUND);
        sim_state_count(st, ch, rt->ep, SIM_COUNT_REJECTED);
        return;
    }
    sim_respond_json(resp, 200, obj);
}

/* Replaces the answer with an injected fault. */
static void apply_fault(struct httpd_response *resp, enum sim_fault fault,
                        const struct sim_faults *f)
{
    if (fault == SIM_FAULT_DROP) {
        /* If the server cannot drop, the client still sees a failure. */
        sim_respond_line_error(resp, f->error_status, "Connection dropped (simulated)");
        resp->drop = true;
    } else {
        sim_respond_line_error(resp, f->error_status, "Internal server error (simulated)");
    }
}

static void handle_line(struct sim_state *st, const struct httpd_request *req,
                        struct httpd_response *resp)
{
    char request_id[SIM_REQUEST_ID_LEN];
    sim_respond_request_id(resp, request_id);

    struct route rt;
    int rc = route_match(httpd_request_method(req), httpd_request_path(req), &rt);
    if (rc != 0) {
        sim_state_count_unauthenticated(st, false);
        sim_respond_line_error(resp, rc, rc == 405 ? "Method Not Allowed" : MSG_NOT_FOUND);
        return;
    }
    const char *token = bearer_token(req);
    struct sim_channel *ch = token ? sim_state_acquire_token(st, token) : NULL;
    if (!ch) {
        sim_state_count_unauthenticated(st, true);
        sim_respond_line_error(resp, 401, token ? MSG_BAD_TOKEN : MSG_NO_AUTH);
        return;
    }

    struct sim_faults faults;
    sim_state_faults_get(st, &faults);
    bool after = false;
    enum sim_fault fault = sim_faults_decide(&faults, sim_faults_draw(), sim_faults_draw(), &after);

    const char *retry_key = httpd_request_header(req, "X-Line-Retry-Key");
    if (!sim_channel_admit(st, ch, rt.ep, now_mono_ns())) {
        sim_respond_line_error(resp, 429, MSG_RATE);
    } else if (fault != SIM_FAULT_NONE && !after) {
        apply_fault(resp, fault, &faults);
        sim_state_count(st, ch, rt.ep,
                        fault == SIM_FAULT_DROP ? SIM_COUNT_FAULT_DROP : SIM_COUNT_FAULT_ERROR);
    } else if (retry_key && !sim_endpoint_takes_retry_key(rt.ep)) {
        sim_respond_line_error(resp, 400, "X-Line-Retry-Key is not supported by this endpoint");
        sim_state_count(st, ch, rt.ep, SIM_COUNT_REJECTED);
    } else if (retry_key && !sim_retrykey_valid(retry_key)) {
        struct sim_verr verr = {.nerrors = 1, .ndetails = 1};
        snprintf(verr.message, sizeof verr.message, "The value of X-Line-Retry-Key is invalid");
        snprintf(verr.details[0].message, sizeof verr.details[0].message,
                 "Must be a UUID in hexadecimal format");
        snprintf(verr.details[0].property, sizeof verr.details[0].property, "X-Line-Retry-Key");
        sim_respond_verr(resp, 400, &verr);
        sim_state_count(st, ch, rt.ep, SIM_COUNT_REJECTED);
    } else {
        handle_endpoint(st, ch, &rt, req, resp, request_id);
        if (!sim_endpoint_is_send(rt.ep) && resp->status >= 200 && resp->status < 300)
            sim_state_count(st, ch, rt.ep, SIM_COUNT_OK);
        if (fault != SIM_FAULT_NONE) {
            /* After acceptance: the work is done, the client hears a failure. */
            if (resp->status >= 200 && resp->status < 300)
                sim_state_count(st, ch, rt.ep, SIM_COUNT_FAULT_AFTER);
            sim_state_count(st, ch, rt.ep,
                            fault == SIM_FAULT_DROP ? SIM_COUNT_FAULT_DROP : SIM_COUNT_FAULT_ERROR);
            apply_fault(resp, fault, &faults);
        }
    }
    log_debug("request", "request_id", request_id, "channel", sim_channel_id(ch), "endpoint",
              sim_endpoint_name(rt.ep));
    sim_state_release(st);
    /* Not under the registry lock: a slow answer must not hold up reset. */
    if (faults.latency_ms > 0)
        shutdown_sleep_ms(faults.latency_ms);
}

void sim_routes_handle(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    struct sim_state *st = ctx;
    const char *path = httpd_request_path(req);
    if (strncmp(path, "/_sim/", 6) == 0)
        sim_control_handle(st, req, resp);
    else
        handle_line(st, req, resp);
}
