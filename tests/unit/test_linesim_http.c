/* The LINE simulator's HTTP layer (tests/line-sim: sim_routes.c and
 * sim_control.c) over real HTTP: the simulator's handler served by
 * common/httpd on 127.0.0.1, port 0, inside this test process (wired as
 * tests/line-sim/main.c wires it), driven with libcurl. test_linesim.c
 * covers the rules beneath (validation, buckets, quota, retry keys); this
 * suite covers what only the HTTP layer decides: which path and method is
 * which endpoint, the bearer token (401), the order of the checks, the
 * status and body of each answer (LINE's form on /v2, the project's on
 * /_sim), the 429s of a rate limit and of the monthly quota, the 409 of a
 * repeated retry key with its headers, and the control API that tests and
 * benchmarks rely on. Each test gets a fresh simulator. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "sim_bot.h"
#include "sim_routes.h"
#include "sim_state.h"

#define CHANNEL "1650000001"
#define TOKEN "sim-test-token-1"
#define OTHER_CHANNEL "1650000002"
#define OTHER_TOKEN "sim-test-token-2"
#define RETRY_KEY "123e4567-e89b-12d3-a456-426614174000"
#define BOT_A "U0123456789abcdef0123456789abcdef"
#define BOT_B "Ufedcba9876543210fedcba9876543210"

static struct sim_state *state;
static struct httpd *server;

static void sim_start(void)
{
    log_init("test", LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct sim_state_options sopts = {.record = true, .max_recorded = 10000};
    state = sim_state_new(&sopts);
    cr_assert_not_null(state);
    char err[256];
    struct httpd_options opts = {
        .name = "line-sim-test",
        .port = 0,
        .body_cap = 2u * 1024 * 1024,
        .threads = 2,
        .handler = sim_routes_handle,
        .ctx = state,
    };
    server = httpd_start(&opts, err, sizeof err);
    cr_assert_not_null(server, "httpd_start: %s", err);
}

static void sim_stop(void)
{
    httpd_stop(&server);
    sim_state_free(&state);
    metrics_free_all(); /* after the stop: the server holds metric pointers */
    curl_global_cleanup();
}

TestSuite(linesim_http, .init = sim_start, .fini = sim_stop, .timeout = 30);

/* --- libcurl client ------------------------------------------------------ */

struct answer {
    long status;
    char body[16384];
    size_t len;
    json_t *json;                 /* body parsed, or NULL */
    char request_id[64];          /* x-line-request-id */
    char accepted_request_id[64]; /* x-line-accepted-request-id */
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct answer *a = ud;
    size_t total = size * n, room = sizeof a->body - 1 - a->len;
    size_t take = total < room ? total : room;
    memcpy(a->body + a->len, p, take);
    a->len += take;
    a->body[a->len] = '\0';
    return total;
}

/* Copies the value of header name from line into out, if line is it. */
static void header_take(const char *line, size_t n, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (n <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    size_t vl = n - nl - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= cap)
        vl = cap - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct answer *a = ud;
    header_take(p, size * n, "x-line-request-id", a->request_id, sizeof a->request_id);
    header_take(p, size * n, "x-line-accepted-request-id", a->accepted_request_id,
                sizeof a->accepted_request_id);
    return size * n;
}

/* One request to the simulator. token: sent as "Authorization: Bearer"
 * unless NULL. body: sent (with content_type, "application/json" when
 * NULL) unless NULL. extra: one more "Name: value" header or NULL. Asserts
 * the server answered. The caller json_decrefs a->json. */
static long sim_call(const char *method, const char *path, const char *token, const char *body,
                     const char *content_type, const char *extra, struct answer *a)
{
    memset(a, 0, sizeof *a);
    CURL *curl = curl_easy_init();
    cr_assert_not_null(curl);
    char url[512], auth[256], ct[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", httpd_port(server), path);
    struct curl_slist *headers = NULL;
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, auth);
    }
    if (body) {
        snprintf(ct, sizeof ct, "Content-Type: %s",
                 content_type ? content_type : "application/json");
        headers = curl_slist_append(headers, ct);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    }
    if (extra)
        headers = curl_slist_append(headers, extra);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, a);
    CURLcode rc = curl_easy_perform(curl);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a->status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    a->json = json_loads(a->body, 0, NULL);
    return a->status;
}

/* A control call that must answer want; returns the JSON body (decref it). */
static json_t *control_ok(const char *method, const char *path, const char *body, long want)
{
    struct answer a;
    sim_call(method, path, NULL, body, NULL, NULL, &a);
    cr_assert_eq(a.status, want, "%s %s %s: %ld %s", method, path, body ? body : "", a.status,
                 a.body);
    return a.json;
}

/* A field of the whole simulator's stats, or of the test channel's
 * endpoint when endpoint is not NULL; asserts it is there. */
static long long stat_of(const char *endpoint, const char *field)
{
    json_t *st = control_ok("GET", "/_sim/stats", NULL, 200);
    json_t *v = endpoint
                    ? json_object_get(
                          json_object_get(json_object_get(json_object_get(st, "channels"), CHANNEL),
                                          "endpoints"),
                          endpoint)
                    : st;
    v = json_object_get(v, field);
    cr_assert(json_is_integer(v), "stats have no %s.%s", endpoint ? endpoint : "", field);
    long long n = json_integer_value(v);
    json_decref(st);
    return n;
}

static const char *message_of(const struct answer *a)
{
    return json_string_value(json_object_get(a->json, "message"));
}

/* The project's error form on /_sim: {"error":{"code","message","field"}}. */
static const char *error_code_of(const struct answer *a)
{
    return json_string_value(json_object_get(json_object_get(a->json, "error"), "code"));
}

static void channel_register(const char *id, const char *token)
{
    char body[256];
    snprintf(body, sizeof body, "{\"channel_id\":\"%s\",\"access_token\":\"%s\"}", id, token);
    json_decref(control_ok("POST", "/_sim/channels", body, 201));
}

/* The test channel, with friends U1 (Alice) and U2 (Bob). */
static void stage(void)
{
    channel_register(CHANNEL, TOKEN);
    json_decref(control_ok("POST", "/_sim/users",
                           "{\"channel_id\":\"" CHANNEL "\",\"users\":["
                           "{\"user_id\":\"U1\",\"display_name\":\"Alice\"},"
                           "{\"user_id\":\"U2\",\"display_name\":\"Bob\"}]}",
                           200));
}

#define PUSH_U1 "{\"to\":\"U1\",\"messages\":[{\"type\":\"text\",\"text\":\"hello\"}]}"

/* --- LINE's endpoints ------------------------------------------------------ */

struct route_case {
    const char *method;
    const char *path;
    const char *body;
    long status;
    const char *field; /* a field the answer must carry, or NULL */
};

/* One per endpoint, in an order where each finds what it needs (U1 has a
 * rich menu before it is read). */
static const struct route_case routes[] = {
    {"POST", "/v2/bot/message/push", PUSH_U1, 200, "sentMessages"},
    {"POST", "/v2/bot/message/multicast",
     "{\"to\":[\"U1\",\"U2\"],\"messages\":[{\"type\":\"text\",\"text\":\"hi\"}]}", 200, NULL},
    {"POST", "/v2/bot/message/broadcast", "{\"messages\":[{\"type\":\"text\",\"text\":\"all\"}]}",
     200, NULL},
    {"POST", "/v2/bot/message/narrowcast", "{\"messages\":[{\"type\":\"text\",\"text\":\"some\"}]}",
     202, NULL},
    {"GET", "/v2/bot/message/quota", NULL, 200, "type"},
    {"GET", "/v2/bot/message/quota/consumption", NULL, 200, "totalUsage"},
    {"GET", "/v2/bot/profile/U1", NULL, 200, "displayName"},
    {"POST", "/v2/bot/user/U1/richmenu/richmenu-a", NULL, 200, NULL},
    {"GET", "/v2/bot/user/U1/richmenu", NULL, 200, "richMenuId"},
    {"DELETE", "/v2/bot/user/U1/richmenu", NULL, 200, NULL},
    {"POST", "/v2/bot/richmenu/bulk/link", "{\"richMenuId\":\"richmenu-b\",\"userIds\":[\"U2\"]}",
     202, NULL},
    {"POST", "/v2/bot/richmenu/bulk/unlink", "{\"userIds\":[\"U2\"]}", 202, NULL},
    {"GET", "/v2/bot/info", NULL, 200, "userId"},
};

Test(linesim_http, every_line_endpoint_answers_its_documented_status_and_a_request_id)
{
    stage();
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct route_case *c = &routes[i];
        struct answer a;
        sim_call(c->method, c->path, TOKEN, c->body, NULL, NULL, &a);
        cr_expect_eq(a.status, c->status, "%s %s: %ld %s", c->method, c->path, a.status, a.body);
        cr_expect(json_is_object(a.json), "%s %s: body %s", c->method, c->path, a.body);
        cr_expect_eq(strlen(a.request_id), 36, "%s %s: x-line-request-id '%s'", c->method, c->path,
                     a.request_id);
        if (c->field)
            cr_expect_not_null(json_object_get(a.json, c->field), "%s %s: no %s in %s", c->method,
                               c->path, c->field, a.body);
        json_decref(a.json);
    }
    /* What the answers claim happened did: U1 got push and multicast, and
     * the profile is the one registered. */
    json_t *m = control_ok("GET", "/_sim/messages?to=U1&channel_id=" CHANNEL, NULL, 200);
    cr_expect_eq(json_integer_value(json_object_get(m, "count")), 4,
                 "push, multicast, broadcast and narrowcast reached U1");
    json_decref(m);
    struct answer a;
    sim_call("GET", "/v2/bot/profile/U2", TOKEN, NULL, NULL, NULL, &a);
    cr_expect_str_eq(json_string_value(json_object_get(a.json, "displayName")), "Bob");
    json_decref(a.json);
    cr_expect_eq(stat_of("push", "accepted"), 1);
    cr_expect_eq(stat_of("multicast", "deliveries"), 2);
}

/* --- LINE's refusals ------------------------------------------------------- */

struct refusal {
    const char *name;
    const char *method;
    const char *path;
    const char *token;        /* NULL: no Authorization header */
    const char *body;         /* NULL: none */
    const char *content_type; /* NULL: application/json */
    const char *extra;        /* one more header, or NULL */
    long status;
    const char *message;  /* LINE's message, or a prefix of it ending in '*' */
    const char *property; /* the first detail's property, or NULL */
};

static const struct refusal refusals[] = {
    {"unknown path", "GET", "/v2/bot/nothing", TOKEN, NULL, NULL, NULL, 404, "Not found", NULL},
    {"known path, other method", "GET", "/v2/bot/message/push", TOKEN, NULL, NULL, NULL, 405,
     "Method Not Allowed", NULL},
    {"no Authorization", "POST", "/v2/bot/message/push", NULL, PUSH_U1, NULL, NULL, 401,
     "Authorization header required*", NULL},
    {"unknown token", "POST", "/v2/bot/message/push", "no-such-token", PUSH_U1, NULL, NULL, 401,
     "Authentication failed*", NULL},
    {"not a Bearer token", "POST", "/v2/bot/message/push", NULL, PUSH_U1, NULL,
     "Authorization: Basic " TOKEN, 401, "Authorization header required*", NULL},
    {"retry key not a UUID", "POST", "/v2/bot/message/push", TOKEN, PUSH_U1, NULL,
     "X-Line-Retry-Key: not-a-uuid", 400, "The value of X-Line-Retry-Key is invalid",
     "X-Line-Retry-Key"},
    {"retry key on a reply", "POST", "/v2/bot/message/reply", TOKEN,
     "{\"replyToken\":\"r\",\"messages\":[{\"type\":\"text\",\"text\":\"x\"}]}", NULL,
     "X-Line-Retry-Key: " RETRY_KEY, 400, "X-Line-Retry-Key is not supported*", NULL},
    {"not JSON content", "POST", "/v2/bot/message/push", TOKEN, PUSH_U1, "text/plain", NULL, 415,
     "The content type, 'text/plain', is not supported", NULL},
    {"body not JSON", "POST", "/v2/bot/message/push", TOKEN, "{\"to\":", NULL, NULL, 400,
     "The request body could not be parsed as JSON*", NULL},
    {"push without to", "POST", "/v2/bot/message/push", TOKEN,
     "{\"messages\":[{\"type\":\"text\",\"text\":\"x\"}]}", NULL, NULL, 400,
     "The request body has 1 error(s)", "to"},
    {"unknown reply token", "POST", "/v2/bot/message/reply", TOKEN,
     "{\"replyToken\":\"nope\",\"messages\":[{\"type\":\"text\",\"text\":\"x\"}]}", NULL, NULL, 400,
     "Invalid reply token", NULL},
    {"progress without requestId", "GET", "/v2/bot/message/progress/narrowcast", TOKEN, NULL, NULL,
     NULL, 400, "The request has 1 error(s)", "requestId"},
    {"profile of a stranger", "GET", "/v2/bot/profile/Unobody", TOKEN, NULL, NULL, NULL, 404,
     "Not found", NULL},
    {"no rich menu linked", "GET", "/v2/bot/user/U2/richmenu", TOKEN, NULL, NULL, NULL, 404,
     "the user has no richmenu", NULL},
    {"bot info with an unknown token", "GET", "/v2/bot/info", "no-such-token", NULL, NULL, NULL,
     401, "Authentication failed*", NULL},
    {"bot info without Authorization", "GET", "/v2/bot/info", NULL, NULL, NULL, NULL, 401,
     "Authorization header required*", NULL},
    {"bot info by POST", "POST", "/v2/bot/info", TOKEN, "{}", NULL, NULL, 405, "Method Not Allowed",
     NULL},
};

static void expect_message(const char *name, const char *got, const char *want)
{
    size_t wl = strlen(want);
    if (wl && want[wl - 1] == '*')
        cr_expect(got && strncmp(got, want, wl - 1) == 0, "%s: message '%s', want '%s'", name,
                  got ? got : "(none)", want);
    else
        cr_expect(got && strcmp(got, want) == 0, "%s: message '%s', want '%s'", name,
                  got ? got : "(none)", want);
}

Test(linesim_http, bad_requests_get_lines_status_and_message_and_are_not_delivered)
{
    stage();
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        const struct refusal *c = &refusals[i];
        struct answer a;
        sim_call(c->method, c->path, c->token, c->body, c->content_type, c->extra, &a);
        cr_expect_eq(a.status, c->status, "%s: %ld %s", c->name, a.status, a.body);
        expect_message(c->name, message_of(&a), c->message);
        if (c->property) {
            json_t *d = json_array_get(json_object_get(a.json, "details"), 0);
            const char *p = json_string_value(json_object_get(d, "property"));
            cr_expect(p && strcmp(p, c->property) == 0, "%s: property '%s', want '%s'", c->name,
                      p ? p : "(none)", c->property);
        }
        json_decref(a.json);
    }
    cr_expect_eq(stat_of(NULL, "accepted"), 0, "nothing refused was delivered");
    cr_expect_eq(stat_of(NULL, "unauthorized"), 5);
    json_t *m = control_ok("GET", "/_sim/messages?to=U1", NULL, 200);
    cr_expect_eq(json_integer_value(json_object_get(m, "count")), 0);
    json_decref(m);
}

/* --- 429 and 409 ------------------------------------------------------------ */

Test(linesim_http, a_channel_over_its_rate_limit_gets_429_and_the_stats_count_it)
{
    stage();
    json_t *l =
        control_ok("PUT", "/_sim/channels/" CHANNEL "/limits",
                   "{\"rate_limits\":{\"push\":{\"limit\":2,\"period_s\":3600,\"burst\":2}}}", 200);
    json_t *push = json_object_get(json_object_get(l, "rate_limits"), "push");
    cr_expect_eq(json_integer_value(json_object_get(push, "limit")), 2, "the new push limit");
    json_decref(l);
    long want[] = {200, 200, 429, 429};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        struct answer a;
        sim_call("POST", "/v2/bot/message/push", TOKEN, PUSH_U1, NULL, NULL, &a);
        cr_expect_eq(a.status, want[i], "push %zu: %ld %s", i, a.status, a.body);
        if (want[i] == 429)
            expect_message("rate limit", message_of(&a), "Too many requests");
        json_decref(a.json);
    }
    /* Other endpoints keep their own buckets. */
    struct answer a;
    sim_call("GET", "/v2/bot/message/quota", TOKEN, NULL, NULL, NULL, &a);
    cr_expect_eq(a.status, 200);
    json_decref(a.json);
    cr_expect_eq(stat_of("push", "rate_limited"), 2);
    cr_expect_eq(stat_of("push", "accepted"), 2);
    cr_expect_eq(stat_of(NULL, "too_many_requests"), 2);
}

Test(linesim_http, a_send_past_the_monthly_quota_gets_429_and_reaches_nobody)
{
    stage();
    json_decref(control_ok("PUT", "/_sim/channels/" CHANNEL "/limits",
                           "{\"quota\":{\"type\":\"limited\",\"value\":2}}", 200));
    struct answer a;
    sim_call("POST", "/v2/bot/message/push", TOKEN, PUSH_U1, NULL, NULL, &a);
    cr_expect_eq(a.status, 200, "%s", a.body);
    json_decref(a.json);
    sim_call("POST", "/v2/bot/message/multicast", TOKEN,
             "{\"to\":[\"U1\",\"U2\"],\"messages\":[{\"type\":\"text\",\"text\":\"hi\"}]}", NULL,
             NULL, &a);
    cr_expect_eq(a.status, 429, "two more recipients pass a quota of 2: %s", a.body);
    expect_message("quota", message_of(&a), "You have reached your monthly limit.");
    json_decref(a.json);
    sim_call("GET", "/v2/bot/message/quota/consumption", TOKEN, NULL, NULL, NULL, &a);
    cr_expect_eq(json_integer_value(json_object_get(a.json, "totalUsage")), 1);
    json_decref(a.json);
    cr_expect_eq(stat_of(NULL, "quota_exceeded"), 1);
    cr_expect_eq(stat_of(NULL, "deliveries"), 1);
}

Test(linesim_http, a_repeated_retry_key_gets_409_naming_the_first_request)
{
    stage();
    struct answer first, again;
    sim_call("POST", "/v2/bot/message/push", TOKEN, PUSH_U1, NULL, "X-Line-Retry-Key: " RETRY_KEY,
             &first);
    cr_assert_eq(first.status, 200, "%s", first.body);
    sim_call("POST", "/v2/bot/message/push", TOKEN, PUSH_U1, NULL, "X-Line-Retry-Key: " RETRY_KEY,
             &again);
    cr_expect_eq(again.status, 409, "%s", again.body);
    expect_message("conflict", message_of(&again), "The retry key is already accepted");
    cr_expect_str_eq(again.accepted_request_id, first.request_id);
    cr_expect_str_neq(again.request_id, first.request_id);
    cr_expect(json_equal(json_object_get(again.json, "sentMessages"),
                         json_object_get(first.json, "sentMessages")),
              "the first answer's sentMessages: %s vs %s", first.body, again.body);
    json_decref(first.json);
    json_decref(again.json);
    cr_expect_eq(stat_of("push", "conflict"), 1);
    cr_expect_eq(stat_of(NULL, "deliveries"), 1, "delivered once");
}

/* --- the control API ----------------------------------------------------------- */

Test(linesim_http, the_control_api_registers_injects_faults_inspects_and_resets)
{
    /* A channel: 201, again 200, and the listing never shows the token. */
    channel_register(CHANNEL, TOKEN);
    json_t *r = control_ok("POST", "/_sim/channels",
                           "{\"channel_id\":\"" CHANNEL "\",\"access_token\":\"" TOKEN "\"}", 200);
    cr_expect(json_is_false(json_object_get(r, "created")));
    json_decref(r);
    r = control_ok("GET", "/_sim/channels", NULL, 200);
    char *text = json_dumps(r, JSON_COMPACT);
    cr_expect(text && strstr(text, CHANNEL) != NULL, "%s", text);
    cr_expect(text && strstr(text, TOKEN) == NULL, "the token is shown: %s", text);
    free(text);
    json_decref(r);

    /* A friend and a reply token: the reply works once. */
    json_decref(control_ok("POST", "/_sim/users",
                           "{\"access_token\":\"" TOKEN "\",\"user_id\":\"U1\",\"display_name\":"
                           "\"Alice\"}",
                           200));
    json_decref(control_ok("POST", "/_sim/reply-tokens",
                           "{\"channel_id\":\"" CHANNEL "\",\"reply_token\":\"rt-1\","
                           "\"user_id\":\"U1\"}",
                           201));
    const char *reply =
        "{\"replyToken\":\"rt-1\",\"messages\":[{\"type\":\"text\",\"text\":\"r\"}]}";
    struct answer a;
    sim_call("POST", "/v2/bot/message/reply", TOKEN, reply, NULL, NULL, &a);
    cr_expect_eq(a.status, 200, "%s", a.body);
    json_decref(a.json);
    sim_call("POST", "/v2/bot/message/reply", TOKEN, reply, NULL, NULL, &a);
    cr_expect_eq(a.status, 400, "a reply token is single-use: %s", a.body);
    json_decref(a.json);

    /* Faults: every /v2 call fails with the chosen status; /_sim is spared. */
    r = control_ok("PUT", "/_sim/faults",
                   "{\"error_rate\":1,\"after_accept\":0,\"error_status\":503}", 200);
    cr_expect_eq(json_integer_value(json_object_get(r, "error_status")), 503, "faults answer");
    json_decref(r);
    sim_call("POST", "/v2/bot/message/push", TOKEN, PUSH_U1, NULL, NULL, &a);
    cr_expect_eq(a.status, 503, "%s", a.body);
    json_decref(a.json);
    json_decref(control_ok("PUT", "/_sim/faults", "{\"error_rate\":0}", 200));

    /* What was delivered, per recipient and per message. */
    r = control_ok("GET", "/_sim/messages?to=U1", NULL, 200);
    cr_expect_eq(json_integer_value(json_object_get(r, "count")), 1, "only the reply");
    json_t *m = json_array_get(json_object_get(r, "messages"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(m, "endpoint")), "reply");
    json_decref(r);
    cr_expect_eq(stat_of(NULL, "accepted"), 1);
    cr_expect_eq(stat_of("push", "fault_errors"), 1);

    /* Reset with keep_channels: counters cleared, the channel still works. */
    json_decref(control_ok("POST", "/_sim/reset", "{\"keep_channels\":true}", 200));
    cr_expect_eq(stat_of(NULL, "accepted"), 0);
    cr_expect_eq(stat_of(NULL, "requests"), 0);
    sim_call("POST", "/v2/bot/message/push", TOKEN, PUSH_U1, NULL, NULL, &a);
    cr_expect_eq(a.status, 200, "%s", a.body);
    json_decref(a.json);
    /* A full reset forgets the channel: its token is unknown now. */
    json_decref(control_ok("POST", "/_sim/reset", NULL, 200));
    sim_call("POST", "/v2/bot/message/push", TOKEN, PUSH_U1, NULL, NULL, &a);
    cr_expect_eq(a.status, 401, "%s", a.body);
    json_decref(a.json);
}

struct control_refusal {
    const char *name;
    const char *method;
    const char *path;
    const char *body;
    long status;
    const char *code;  /* error.code */
    const char *field; /* error.field, or NULL */
};

static const struct control_refusal control_refusals[] = {
    {"body not JSON", "POST", "/_sim/channels", "channel", 400, "invalid_argument", NULL},
    {"body not an object", "POST", "/_sim/channels", "[1]", 400, "invalid_argument", NULL},
    {"channel without token", "POST", "/_sim/channels", "{\"channel_id\":\"" OTHER_CHANNEL "\"}",
     400, "invalid_argument", "access_token"},
    {"empty channel id", "POST", "/_sim/channels",
     "{\"channel_id\":\"\",\"access_token\":\"" OTHER_TOKEN "\"}", 400, "invalid_argument",
     "channel_id"},
    {"another channel's token", "POST", "/_sim/channels",
     "{\"channel_id\":\"" OTHER_CHANNEL "\",\"access_token\":\"" TOKEN "\"}", 409, "conflict",
     "access_token"},
    {"a bot user id not in LINE's form", "POST", "/_sim/channels",
     "{\"channel_id\":\"" OTHER_CHANNEL "\",\"access_token\":\"" OTHER_TOKEN
     "\",\"bot_user_id\":\"Ubot\"}",
     400, "invalid_argument", "bot_user_id"},
    {"a bot user id not a string", "POST", "/_sim/channels",
     "{\"channel_id\":\"" OTHER_CHANNEL "\",\"access_token\":\"" OTHER_TOKEN
     "\",\"bot_user_id\":7}",
     400, "invalid_argument", "bot_user_id"},
    {"another bot for a registered channel", "POST", "/_sim/channels",
     "{\"channel_id\":\"" CHANNEL "\",\"access_token\":\"" OTHER_TOKEN "\",\"bot_user_id\":\"" BOT_B
     "\"}",
     409, "conflict", "bot_user_id"},
    {"limits of an unknown channel", "PUT", "/_sim/channels/999/limits", "{\"usage\":0}", 404,
     "not_found", "channel_id"},
    {"a negative rate", "PUT", "/_sim/channels/" CHANNEL "/limits",
     "{\"rate_limits\":{\"push\":-1}}", 400, "invalid_argument", NULL},
    {"a rate for no endpoint", "PUT", "/_sim/channels/" CHANNEL "/limits",
     "{\"rate_limits\":{\"pigeon\":1}}", 400, "invalid_argument", NULL},
    {"an error rate over 1", "PUT", "/_sim/faults", "{\"error_rate\":2}", 400, "invalid_argument",
     NULL},
    {"faults by DELETE", "DELETE", "/_sim/faults", NULL, 405, "method_not_allowed", NULL},
    {"a negative reply token age", "POST", "/_sim/reply-tokens",
     "{\"channel_id\":\"" CHANNEL "\",\"reply_token\":\"t\",\"user_id\":\"U1\",\"age_ms\":-1}", 400,
     "invalid_argument", "age_ms"},
    {"users of an unknown channel", "POST", "/_sim/users",
     "{\"channel_id\":\"999\",\"user_id\":\"U1\"}", 404, "not_found", "channel_id"},
    {"record not a boolean", "PUT", "/_sim/settings", "{\"record\":1}", 400, "invalid_argument",
     "record"},
    {"rich menus without a channel", "GET", "/_sim/richmenus", NULL, 400, "invalid_argument",
     "channel_id"},
    {"unknown control path", "GET", "/_sim/nothing", NULL, 404, "not_found", NULL},
};

Test(linesim_http, bad_control_requests_get_the_projects_error_and_change_nothing)
{
    stage();
    for (size_t i = 0; i < sizeof control_refusals / sizeof control_refusals[0]; i++) {
        const struct control_refusal *c = &control_refusals[i];
        struct answer a;
        sim_call(c->method, c->path, NULL, c->body, NULL, NULL, &a);
        cr_expect_eq(a.status, c->status, "%s: %ld %s", c->name, a.status, a.body);
        const char *code = error_code_of(&a);
        cr_expect(code && strcmp(code, c->code) == 0, "%s: code '%s', want '%s'", c->name,
                  code ? code : "(none)", c->code);
        if (c->field) {
            const char *f =
                json_string_value(json_object_get(json_object_get(a.json, "error"), "field"));
            cr_expect(f && strcmp(f, c->field) == 0, "%s: field '%s', want '%s'", c->name,
                      f ? f : "(none)", c->field);
        }
        json_decref(a.json);
    }
    /* Nothing changed: one channel, its limits and faults the defaults. */
    json_t *ch = control_ok("GET", "/_sim/channels", NULL, 200);
    char *text = json_dumps(ch, JSON_COMPACT);
    cr_expect(text && strstr(text, OTHER_CHANNEL) == NULL, "%s", text);
    free(text);
    json_decref(ch);
    json_t *f = control_ok("GET", "/_sim/faults", NULL, 200);
    cr_expect_eq(json_real_value(json_object_get(f, "error_rate")), 0.0);
    json_decref(f);
    struct answer a;
    sim_call("POST", "/v2/bot/message/push", TOKEN, PUSH_U1, NULL, NULL, &a);
    cr_expect_eq(a.status, 200, "the channel still sends: %s", a.body);
    json_decref(a.json);
}

/* --- the bot behind a channel ------------------------------------------------ */

Test(linesim_http, bot_info_names_the_bot_of_the_tokens_channel)
{
    json_t *reg = control_ok("POST", "/_sim/channels",
                             "{\"channel_id\":\"" CHANNEL "\",\"access_token\":\"" TOKEN
                             "\",\"bot_user_id\":\"" BOT_A "\"}",
                             201);
    cr_expect_str_eq(json_string_value(json_object_get(reg, "bot_user_id")), BOT_A);
    json_decref(reg);
    /* A second token of the same channel, same bot: 200, the same bot. */
    json_decref(control_ok("POST", "/_sim/channels",
                           "{\"channel_id\":\"" CHANNEL "\",\"access_token\":\"tok-second\","
                           "\"bot_user_id\":\"" BOT_A "\"}",
                           200));
    channel_register(OTHER_CHANNEL, OTHER_TOKEN);

    const char *tokens[] = {TOKEN, "tok-second"};
    for (size_t i = 0; i < 2; i++) {
        struct answer a;
        sim_call("GET", "/v2/bot/info", tokens[i], NULL, NULL, NULL, &a);
        cr_assert_eq(a.status, 200, "%s", a.body);
        cr_expect_str_eq(json_string_value(json_object_get(a.json, "userId")), BOT_A);
        const char *basic = json_string_value(json_object_get(a.json, "basicId"));
        cr_expect(basic && basic[0] == '@' && strlen(basic) == 9, "basicId %s", a.body);
        cr_expect_not_null(json_string_value(json_object_get(a.json, "displayName")));
        cr_expect_str_eq(json_string_value(json_object_get(a.json, "chatMode")), "bot");
        cr_expect_str_eq(json_string_value(json_object_get(a.json, "markAsReadMode")), "auto");
        json_decref(a.json);
    }

    /* Registered without a bot user id: the default derived from the id. */
    char want[SIM_BOT_USER_ID_LEN + 1];
    sim_bot_user_id_default(OTHER_CHANNEL, want);
    struct answer a;
    sim_call("GET", "/v2/bot/info", OTHER_TOKEN, NULL, NULL, NULL, &a);
    cr_assert_eq(a.status, 200, "%s", a.body);
    cr_expect_str_eq(json_string_value(json_object_get(a.json, "userId")), want);
    json_decref(a.json);
    cr_expect_eq(stat_of("bot_info", "requests"), 2);
    json_t *list = control_ok("GET", "/_sim/channels", NULL, 200);
    char *text = json_dumps(list, JSON_COMPACT);
    cr_expect(text && strstr(text, BOT_A) && strstr(text, want), "%s", text);
    cr_expect(text && !strstr(text, TOKEN), "tokens are never listed: %s", text);
    free(text);
    json_decref(list);
}

Test(linesim_http, bot_info_answers_an_injected_fault_like_every_v2_endpoint)
{
    channel_register(CHANNEL, TOKEN);
    json_decref(control_ok("PUT", "/_sim/faults",
                           "{\"error_rate\":1,\"after_accept\":0,\"error_status\":503}", 200));
    struct answer a;
    sim_call("GET", "/v2/bot/info", TOKEN, NULL, NULL, NULL, &a);
    cr_expect_eq(a.status, 503, "%s", a.body);
    json_decref(a.json);
}
