/* kizuna-dispatcher shared by tenants: one tenant's large campaign on a
 * channel whose limit the deployment's operator lifted must not starve
 * another tenant's send (the channels are served round-robin, and a
 * tenant's share of memory is capped so that the intake keeps taking the
 * others' requests); a tenant's admin cannot lift a limit; and a
 * SendRequest whose envelope names a tenant that does not own the channel
 * is refused for good, counted, and never reaches LINE. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "itest.h"
#include "test_dispatcher_harness.h"

#define OTHER_TENANT "itest-dispatch-other"

static void teardown(void)
{
    dh_teardown();
}

TestSuite(dispatcher_fair, .timeout = 180, .fini = teardown);

/* --- helpers ------------------------------------------------------------------------ */

static char *token_of(const char *tenant, const char *role)
{
    const char *key = itest_env("KIZUNA_JWT_KEY");
    char *jwt = auth_token_issue(key, strlen(key), tenant, "itest", role, 3600, time(NULL));
    cr_assert_not_null(jwt);
    return jwt;
}

struct text {
    char *p;
    size_t len;
};

static size_t text_write(char *p, size_t size, size_t n, void *ctx)
{
    struct text *t = ctx;
    size_t add = size * n;
    char *b = realloc(t->p, t->len + add + 1);
    if (!b)
        return 0;
    memcpy(b + t->len, p, add);
    t->len += add;
    b[t->len] = '\0';
    t->p = b;
    return add;
}

/* The value of one series in the dispatcher's /metrics, or -1 when absent. */
static double metric_value(const char *series)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", DH_ADMIN_PORT);
    struct text t = {0};
    CURL *curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, text_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_cleanup(curl);
    cr_assert_eq(rc, CURLE_OK, "GET /metrics failed");
    double v = -1;
    for (char *line = t.p ? strstr(t.p, series) : NULL; line; line = strstr(line + 1, series)) {
        if ((line == t.p || line[-1] == '\n') && line[strlen(series)] == ' ') {
            v = strtod(line + strlen(series) + 1, NULL);
            break;
        }
    }
    free(t.p);
    return v;
}

/* A push of one text message on channel (of tenant, as the envelope says). */
static void produce_push_on(const char *channel, const char *tenant, const char *to, char *id)
{
    Kizuna__V1__SendRequest req;
    Kizuna__V1__Envelope env;
    dh_request_init(&req, &env, KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH, id);
    env.channel_id = (char *)channel;
    env.tenant_id = (char *)tenant;
    char msg[] = "{\"type\":\"text\",\"text\":\"fair\"}";
    char *msgs[] = {msg};
    req.to = (char *)to;
    req.n_messages_json = 1;
    req.messages_json = msgs;
    dh_produce_keyed(&req, channel);
}

/* One delivery of channel as the admin API shows it to jwt (NULL if absent). */
static json_t *delivery_on(const char *jwt, const char *channel, const char *request_id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/deliveries?channel=%s&limit=500", channel);
    json_t *body = NULL;
    if (dh_api_as(jwt, "GET", path, NULL, &body) != 200) {
        json_decref(body);
        return NULL;
    }
    json_t *found = NULL;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(body, "deliveries"), i, d)
    {
        const char *id = json_string_value(json_object_get(d, "request_id"));
        if (id && strcmp(id, request_id) == 0) {
            found = json_incref(d);
            break;
        }
    }
    json_decref(body);
    return found;
}

struct final_wait {
    const char *jwt, *channel, *request_id;
};

static bool is_final(void *ctx)
{
    const struct final_wait *w = ctx;
    json_t *d = delivery_on(w->jwt, w->channel, w->request_id);
    const char *st = d ? json_string_value(json_object_get(d, "status")) : NULL;
    bool final = st && strcmp(st, "queued") != 0 && strcmp(st, "retrying") != 0;
    json_decref(d);
    return final;
}

static bool other_sent(void *ctx)
{
    const char *channel = ctx;
    return dh_sim_stat_of(channel, "push", "accepted") >= 1;
}

/* A campaign of n pushes on the test channel (its tenant), one user each. */
static void produce_campaign(int n)
{
    for (int i = 0; i < n; i++) {
        char to[40];
        snprintf(to, sizeof to, "U%032x", (unsigned)i);
        produce_push_on(dh.channel, DH_TENANT, to, NULL);
    }
    dh_flush();
}

/* Produces one push of the other tenant on its channel, and returns true
 * when the simulator accepted it within 5 s (*took_ms: how long). */
static bool other_push_goes_at_once(const char *other, long *took_ms)
{
    char id[37];
    long t0 = dh_monotonic_ms();
    produce_push_on(other, OTHER_TENANT, "U0000000000000000000000000000c0de", id);
    dh_flush();
    bool sent = dh_wait(other_sent, (void *)other, 5000);
    *took_ms = dh_monotonic_ms() - t0;
    return sent;
}

/* --- the tests ---------------------------------------------------------------------------- */

/* Four calls at once and 100 ms per call: a 600-push campaign alone takes
 * 15 s. No per-tenant cap at all, so that the round-robin alone must give
 * the other tenant's channel the next free slot (the dispatcher used to
 * give every freed slot back to the first channel with a backlog). */
Test(dispatcher_fair, round_robin_gives_another_tenant_a_slot_during_a_campaign)
{
    enum { CAMPAIGN = 600 };
    dh_setup("fair-rr");
    char other[24];
    dh_channel_add(other, OTHER_TENANT);
    const char *settings[] = {"DISPATCHER_MAX_INFLIGHT=4", "DISPATCHER_TENANT_MAX_INFLIGHT=0",
                              "DISPATCHER_TENANT_MAX_QUEUED=0", NULL};
    dh_dispatcher_start(settings);
    dh_dispatcher_wait_consuming();

    /* Lifting a limit (0: unlimited) is the deployment's operator's, not a
     * tenant admin's. */
    char path[128];
    snprintf(path, sizeof path, "/v1/channels/%s/limits", dh.channel);
    json_t *err = NULL;
    cr_expect_eq(dh_api("PATCH", path, "{\"push\":0}", &err), 403,
                 "a tenant's admin lifted a limit");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(err, "error"), "field")),
                     "push");
    json_decref(err);
    cr_expect_eq(dh_api("PATCH", path, "{\"push\":{\"limit\":0}}", NULL), 403);
    char *deployment = token_of(DH_TENANT, "deployment");
    cr_assert_eq(dh_api_as(deployment, "PATCH", path, "{\"push\":0}", NULL), 200,
                 "the deployment's operator could not lift the limit");
    free(deployment);
    cr_assert_eq(dh_sim("PUT", "/_sim/faults", "{\"latency_ms\":100}", NULL), 200);

    produce_campaign(CAMPAIGN);
    sleep(1); /* the campaign is taken in and fills every slot */
    long took = 0;
    cr_expect(other_push_goes_at_once(other, &took),
              "the other tenant's push waited %ld ms behind the campaign; see %s", took,
              dh.log_path);
    cr_expect_lt(dh_sim_stat("push", "accepted"), CAMPAIGN,
                 "the campaign was over before the other push went");

    /* A request that names the campaign's tenant on the other tenant's
     * channel: refused for good, with the reason, and never sent. */
    char wrong_id[37];
    produce_push_on(other, DH_TENANT, "U0000000000000000000000000000bad0", wrong_id);
    dh_flush();
    struct final_wait w = {dh.jwt, other, wrong_id};
    cr_assert(dh_wait(is_final, &w, 30000), "the wrong-tenant request never ended; see %s",
              dh.log_path);
    json_t *d = delivery_on(dh.jwt, other, wrong_id);
    cr_assert_not_null(d);
    cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "invalid");
    const char *why = json_string_value(json_object_get(d, "error_message"));
    cr_expect(why && strstr(why, "wrong tenant"), "reason: %s", why ? why : "(none)");
    cr_expect_eq(json_integer_value(json_object_get(d, "attempts")), 0);
    json_decref(d);
    cr_expect_eq(dh_sim_stat_of(other, "push", "requests"), 1, "only the right tenant's push");
    cr_expect_eq(metric_value("kizuna_dispatcher_requests_refused_total{reason=\"wrong_tenant\"}"),
                 1);

    cr_assert_eq(dh_sim("PUT", "/_sim/faults", "{\"latency_ms\":0}", NULL), 200);
    dh_finish();
}

struct accepted_wait {
    long long want;
};

static bool campaign_accepted(void *ctx)
{
    const struct accepted_wait *w = ctx;
    return dh_sim_stat("push", "accepted") >= w->want;
}

/* The sender holds at most 100 deliveries, a tenant at most 50 of them: the
 * campaign's tenant is held back in Kafka past its share, and the intake
 * keeps taking the other tenant's requests (it used to pause for everyone
 * once the campaign filled the sender). Nothing held back is lost. */
Test(dispatcher_fair, a_tenant_past_its_share_of_memory_does_not_pause_the_intake_for_others)
{
    enum { CAMPAIGN = 600 };
    dh_setup("fair-share");
    char other[24];
    dh_channel_add(other, OTHER_TENANT);
    const char *settings[] = {"DISPATCHER_MAX_INFLIGHT=4", "DISPATCHER_MAX_QUEUED=100",
                              "DISPATCHER_TENANT_MAX_QUEUED=50", NULL};
    dh_dispatcher_start(settings);
    dh_dispatcher_wait_consuming();
    cr_assert_eq(dh_sim("PUT", "/_sim/faults", "{\"latency_ms\":100}", NULL), 200);

    produce_campaign(CAMPAIGN);
    sleep(1);
    long took = 0;
    cr_expect(other_push_goes_at_once(other, &took),
              "the other tenant's push waited %ld ms behind the campaign; see %s", took,
              dh.log_path);
    cr_expect_lt(dh_sim_stat("push", "accepted"), CAMPAIGN,
                 "the campaign was over before the other push went");
    cr_expect_gt(metric_value("kizuna_dispatcher_requests_total{result=\"tenant_full\"}"), 0,
                 "the campaign was never held back");

    /* The rest of the campaign goes, each push once. */
    cr_assert_eq(dh_sim("PUT", "/_sim/faults", "{\"latency_ms\":0}", NULL), 200);
    struct accepted_wait all = {CAMPAIGN};
    cr_expect(dh_wait(campaign_accepted, &all, 60000), "accepted %lld of %d; see %s",
              dh_sim_stat("push", "accepted"), CAMPAIGN, dh.log_path);
    cr_expect_eq(dh_sim_stat("push", "duplicate"), 0);
    cr_expect_eq(dh_sim_stat_of(other, "push", "accepted"), 1);
    dh_finish();
}
