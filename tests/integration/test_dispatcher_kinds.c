/* kizuna-dispatcher against the LINE simulator for the kinds of send that
 * are not messages to one user: per-user rich-menu link and unlink, bulk
 * link and unlink, profile fetches, broadcast and narrowcast. Each outcome
 * is read where the rest of Kizuna reads it, on `delivery.results`, and
 * checked against what the simulator shows through /_sim: which menu each
 * user has, who got a broadcast, a narrowcast's progress. Profile and
 * rich-menu calls keep to the channel's rate limits like sends do, and bad
 * input for these kinds fails for good, with the reason (LINE's own when
 * LINE refused it), without a retry. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"
#include "kafka.h"
#include "kizuna/v1/delivery.pb-c.h"
#include "test_dispatcher_harness.h"

#define RESULTS_MAX 256
#define WAIT_MS 30000

static void teardown(void)
{
    dh_teardown();
}

TestSuite(dispatcher_kinds, .timeout = 180, .fini = teardown);

/* --- delivery.results, as a consumer of the topic sees them ------------------- */

/* The test channel's DeliveryResults, kept as they arrive. */
struct results {
    struct kafka_consumer *consumer;
    Kizuna__V1__DeliveryResult *got[RESULTS_MAX];
    size_t n;
    bool probe_seen;
};

static enum kafka_handled results_keep(void *ctx, const struct kafka_message *msg)
{
    struct results *rs = ctx;
    Kizuna__V1__DeliveryResult *r =
        kizuna__v1__delivery_result__unpack(NULL, msg->len, (const uint8_t *)msg->value);
    if (!r)
        return KAFKA_DONE;
    bool ours =
        r->envelope && r->envelope->channel_id && strcmp(r->envelope->channel_id, dh.channel) == 0;
    if (ours && strncmp(r->request_id, "probe-", 6) == 0) {
        rs->probe_seen = true;
    } else if (ours && rs->n < RESULTS_MAX) {
        rs->got[rs->n++] = r;
        return KAFKA_DONE;
    }
    kizuna__v1__delivery_result__free_unpacked(r, NULL);
    return KAFKA_DONE;
}

/* Subscribes from the topic's end and returns once the consumer holds its
 * partitions (it has read a result this test produced itself), so that no
 * result of the test can slip past it. */
static void results_open(struct results *rs)
{
    memset(rs, 0, sizeof *rs);
    char errstr[256], group[96];
    snprintf(group, sizeof group, "itest-kinds-results-%s", dh.channel);
    const char *topics[] = {"delivery.results"};
    struct kafka_consumer_options opts = {.brokers = getenv("KAFKA_BROKERS"),
                                          .group = group,
                                          .topics = topics,
                                          .ntopics = 1,
                                          .no_commit = true};
    rs->consumer = kafka_consumer_new(&opts, errstr, sizeof errstr);
    cr_assert_not_null(rs->consumer, "%s", errstr);
    struct kafka_producer *p =
        kafka_producer_new(getenv("KAFKA_BROKERS"), "itest-kinds-probe", errstr, sizeof errstr);
    cr_assert_not_null(p, "%s", errstr);
    for (long start = dh_monotonic_ms(); !rs->probe_seen && dh_monotonic_ms() - start < 40000;) {
        dh_result_probe(p);
        for (int i = 0; i < 10 && !rs->probe_seen; i++)
            kafka_consumer_poll(rs->consumer, 100, results_keep, rs);
    }
    kafka_producer_free(&p);
    cr_assert(rs->probe_seen, "the delivery.results consumer never got its partitions");
}

static size_t results_count(const struct results *rs, const char *request_id)
{
    size_t n = 0;
    for (size_t i = 0; i < rs->n; i++)
        n += strcmp(rs->got[i]->request_id, request_id) == 0;
    return n;
}

/* The result for request_id, waiting for it up to WAIT_MS; fails the test
 * if none comes. Owned by rs. */
static const Kizuna__V1__DeliveryResult *results_wait(struct results *rs, const char *request_id)
{
    for (long start = dh_monotonic_ms(); dh_monotonic_ms() - start < WAIT_MS;) {
        for (size_t i = 0; i < rs->n; i++)
            if (strcmp(rs->got[i]->request_id, request_id) == 0)
                return rs->got[i];
        kafka_consumer_poll(rs->consumer, 100, results_keep, rs);
    }
    cr_assert_fail("no delivery.results event for %s; see %s", request_id, dh.log_path);
    return NULL;
}

/* Reads on for a while, so that a second result for one request (which
 * must never be published) would show in results_count. */
static void results_drain(struct results *rs, long ms)
{
    for (long start = dh_monotonic_ms(); dh_monotonic_ms() - start < ms;)
        kafka_consumer_poll(rs->consumer, 50, results_keep, rs);
}

static void results_close(struct results *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        kizuna__v1__delivery_result__free_unpacked(rs->got[i], NULL);
    rs->n = 0;
    kafka_consumer_free(&rs->consumer);
}

/* What every successful result of these kinds carries. */
static void expect_sent(const Kizuna__V1__DeliveryResult *r, Kizuna__V1__SendKind kind,
                        int http_status, int recipient_count, const char *what)
{
    cr_expect_eq(r->status, KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT, "%s: status %d (%s)",
                 what, r->status, r->error_message);
    cr_expect_eq(r->kind, kind, "%s: kind", what);
    cr_expect_eq(r->attempts, 1, "%s: attempts", what);
    cr_expect_eq(r->http_status, http_status, "%s: http_status", what);
    cr_expect_eq(r->recipient_count, recipient_count, "%s: recipient_count", what);
    cr_expect(r->line_request_id && r->line_request_id[0], "%s: LINE's request id", what);
    cr_expect_str_eq(r->error_message, "", "%s: error_message", what);
    cr_expect_eq(r->n_error_details, 0, "%s: error_details", what);
    cr_expect_str_eq(r->origin_type, "itest", "%s: origin_type copied", what);
    cr_expect_gt(r->finished_at, 0, "%s: finished_at", what);
}

/* LINE's id forms (U or richmenu- and 32 lowercase hex digits): the
 * dispatcher refuses any other id that goes into a URL path. */
#define LINK1 "U0000000000000000000000000000a001"
#define LINK2 "U0000000000000000000000000000a002"
#define LINK3 "U0000000000000000000000000000a003"
#define PROFILE_FULL "U0000000000000000000000000000f001"
#define PROFILE_PLAIN "U0000000000000000000000000000f002"
#define BAD1 "U0000000000000000000000000000bad1"
#define BAD2 "U0000000000000000000000000000bad2"
#define NOBODY "U0000000000000000000000000000dead"
#define BAD_BLOCKER "U0000000000000000000000000000b10c"
#define MENU_A "richmenu-0000000000000000000000000000000a"
#define MENU_B "richmenu-0000000000000000000000000000000b"
#define MENU_BULK "richmenu-000000000000000000000000000000b0"
#define MENU_LIMITED "richmenu-000000000000000000000000000001ed"
#define MENU_REAL "richmenu-0000000000000000000000000000ea11"
#define MENU_MISSING "richmenu-0000000000000000000000000000dead"

/* --- the simulator's side --------------------------------------------------------- */

/* Which menu the simulator has linked to user ("" for none). */
static void sim_linked_menu(const char *user, char *out, size_t cap)
{
    char path[160];
    snprintf(path, sizeof path, "/_sim/richmenus?channel_id=%s", dh.channel);
    json_t *body = NULL;
    cr_assert_eq(dh_sim("GET", path, NULL, &body), 200);
    const char *m = json_string_value(json_object_get(json_object_get(body, "links"), user));
    snprintf(out, cap, "%s", m ? m : "");
    json_decref(body);
}

static size_t sim_linked_count(void)
{
    char path[160];
    snprintf(path, sizeof path, "/_sim/richmenus?channel_id=%s", dh.channel);
    json_t *body = NULL;
    cr_assert_eq(dh_sim("GET", path, NULL, &body), 200);
    size_t n = json_object_size(json_object_get(body, "links"));
    json_decref(body);
    return n;
}

/* Recipients the simulator counted against the channel's monthly quota. */
static long long sim_usage(void)
{
    json_t *st = NULL;
    cr_assert_eq(dh_sim("GET", "/_sim/stats", NULL, &st), 200);
    json_t *u =
        json_object_get(json_object_get(json_object_get(st, "channels"), dh.channel), "usage");
    long long n = json_is_integer(u) ? json_integer_value(u) : -1;
    json_decref(st);
    return n;
}

static void sim_register_menus(const char *ids_json)
{
    char body[512];
    snprintf(body, sizeof body, "{\"channel_id\":\"%s\",\"rich_menu_ids\":%s}", dh.channel,
             ids_json);
    cr_assert_eq(dh_sim("POST", "/_sim/richmenus", body, NULL), 200);
}

/* users_json: the "users" array of POST /_sim/users. */
static void sim_register_users(const char *users_json)
{
    size_t cap = strlen(users_json) + 128;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    snprintf(body, cap, "{\"channel_id\":\"%s\",\"users\":%s}", dh.channel, users_json);
    cr_assert_eq(dh_sim("POST", "/_sim/users", body, NULL), 200);
    free(body);
}

/* Clears the simulator's counters and meters (channel, friends and menus
 * stay), so that the consuming probes do not count in what a test reads. */
static void sim_reset_counters(void)
{
    cr_assert_eq(dh_sim("POST", "/_sim/reset", "{\"keep_channels\":true}", NULL), 200);
}

static void stage(const char *name)
{
    dh_setup(name);
    dh_dispatcher_start(NULL);
    dh_dispatcher_wait_consuming();
    sim_reset_counters();
}

/* --- requests ------------------------------------------------------------------------ */

static void produce_link(const char *user, const char *menu, char *id)
{
    Kizuna__V1__SendRequest req;
    Kizuna__V1__Envelope env;
    dh_request_init(&req, &env, KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK, id);
    req.to = (char *)user;
    req.rich_menu_id = (char *)menu;
    dh_produce(&req);
}

static void produce_unlink(const char *user, char *id)
{
    Kizuna__V1__SendRequest req;
    Kizuna__V1__Envelope env;
    dh_request_init(&req, &env, KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_UNLINK, id);
    req.to = (char *)user;
    dh_produce(&req);
}

static void produce_profile(const char *user, char *id)
{
    Kizuna__V1__SendRequest req;
    Kizuna__V1__Envelope env;
    dh_request_init(&req, &env, KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE, id);
    req.to = (char *)user;
    dh_produce(&req);
}

/* n LINE user ids, U, the hex tag and the number (32 hex digits in all), in
 * one malloc'd block of 40-byte slots. */
static char **user_ids(unsigned tag, size_t first, size_t n)
{
    char **ids = calloc(n ? n : 1, sizeof *ids);
    char *slots = calloc(n ? n : 1, 40);
    cr_assert(ids && slots);
    for (size_t i = 0; i < n; i++) {
        ids[i] = slots + 40 * i;
        snprintf(ids[i], 40, "U%08x%024zx", tag, first + i);
    }
    return ids;
}

static void user_ids_free(char **ids)
{
    if (ids)
        free(ids[0]);
    free(ids);
}

static void produce_bulk(Kizuna__V1__SendKind kind, const char *menu, char **users, size_t n,
                         char *id)
{
    Kizuna__V1__SendRequest req;
    Kizuna__V1__Envelope env;
    dh_request_init(&req, &env, kind, id);
    req.rich_menu_id = (char *)menu;
    req.recipients = users;
    req.n_recipients = n;
    dh_produce(&req);
}

/* --- rich menus per user ------------------------------------------------------------------ */

Test(dispatcher_kinds, rich_menu_link_and_unlink_change_the_users_menu_and_report_each_result)
{
    stage("kinds-richmenu");
    sim_register_menus("[\"" MENU_A "\",\"" MENU_B "\"]");
    struct results rs;
    results_open(&rs);

    /* No retry key goes with these (LINE answers 400 if one does): a
     * result of "sent" shows none was sent. */
    static const struct {
        const char *user, *menu;
    } links[] = {{LINK1, MENU_A}, {LINK2, MENU_B}, {LINK3, MENU_A}};
    char ids[3][37];
    for (size_t i = 0; i < 3; i++)
        produce_link(links[i].user, links[i].menu, ids[i]);
    dh_flush();
    for (size_t i = 0; i < 3; i++) {
        const Kizuna__V1__DeliveryResult *r = results_wait(&rs, ids[i]);
        expect_sent(r, KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK, 200, 1, links[i].user);
        cr_expect_str_eq(r->to, links[i].user);
    }
    char menu[64];
    for (size_t i = 0; i < 3; i++) {
        sim_linked_menu(links[i].user, menu, sizeof menu);
        cr_expect_str_eq(menu, links[i].menu, "%s's menu", links[i].user);
    }

    /* Unlink one user and move another to the other menu. Produced only
     * now: link and unlink wait in different queues, so their order is
     * not kept against each other. */
    char unlink_id[37], relink_id[37];
    produce_unlink(LINK1, unlink_id);
    produce_link(LINK3, MENU_B, relink_id);
    dh_flush();
    const Kizuna__V1__DeliveryResult *r = results_wait(&rs, unlink_id);
    expect_sent(r, KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_UNLINK, 200, 1, "unlink");
    cr_expect_str_eq(r->to, LINK1);
    expect_sent(results_wait(&rs, relink_id), KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK, 200,
                1, "relink");
    sim_linked_menu(LINK1, menu, sizeof menu);
    cr_expect_str_eq(menu, "", "link1 was unlinked");
    sim_linked_menu(LINK2, menu, sizeof menu);
    cr_expect_str_eq(menu, MENU_B);
    sim_linked_menu(LINK3, menu, sizeof menu);
    cr_expect_str_eq(menu, MENU_B, "link3 was moved");

    results_drain(&rs, 1000);
    for (size_t i = 0; i < 3; i++)
        cr_expect_eq(results_count(&rs, ids[i]), 1, "link %zu reported once", i);
    cr_expect_eq(results_count(&rs, unlink_id), 1);
    cr_expect_eq(dh_sim_stat("richmenu_link", "requests"), 4, "one call per link");
    cr_expect_eq(dh_sim_stat("richmenu_link", "accepted"), 4);
    cr_expect_eq(dh_sim_stat("richmenu_unlink", "requests"), 1);
    cr_expect_eq(sim_usage(), 0, "rich-menu calls cost no quota");
    results_close(&rs);
    dh_finish();
}

/* --- rich menus in bulk ---------------------------------------------------------------- */

Test(dispatcher_kinds, bulk_link_and_unlink_change_every_listed_users_menu)
{
    enum { USERS = 500, UNLINKED = 250 };
    stage("kinds-bulk");
    sim_register_menus("[\"" MENU_BULK "\"]");
    struct results rs;
    results_open(&rs);

    char **users = user_ids(0xb01c, 0, USERS);
    char link_id[37];
    produce_bulk(KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_LINK, MENU_BULK, users, USERS,
                 link_id);
    dh_flush();
    const Kizuna__V1__DeliveryResult *r = results_wait(&rs, link_id);
    expect_sent(r, KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_LINK, 202, USERS, "bulk link");
    cr_expect_str_eq(r->to, "", "a bulk result names no single recipient");
    cr_expect_eq(sim_linked_count(), USERS);
    char menu[64];
    for (size_t i = 0; i < USERS; i += 99) {
        sim_linked_menu(users[i], menu, sizeof menu);
        cr_expect_str_eq(menu, MENU_BULK, "%s", users[i]);
    }

    char unlink_id[37];
    produce_bulk(KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_UNLINK, NULL, users, UNLINKED,
                 unlink_id);
    dh_flush();
    r = results_wait(&rs, unlink_id);
    expect_sent(r, KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_UNLINK, 202, UNLINKED,
                "bulk unlink");
    cr_expect_eq(sim_linked_count(), USERS - UNLINKED);
    sim_linked_menu(users[0], menu, sizeof menu);
    cr_expect_str_eq(menu, "", "the first listed user was unlinked");
    sim_linked_menu(users[UNLINKED - 1], menu, sizeof menu);
    cr_expect_str_eq(menu, "", "the last listed user was unlinked");
    sim_linked_menu(users[UNLINKED], menu, sizeof menu);
    cr_expect_str_eq(menu, MENU_BULK, "a user not listed keeps the menu");

    results_drain(&rs, 1000);
    cr_expect_eq(results_count(&rs, link_id), 1);
    cr_expect_eq(results_count(&rs, unlink_id), 1);
    cr_expect_eq(dh_sim_stat("richmenu_bulk_link", "requests"), 1);
    cr_expect_eq(dh_sim_stat("richmenu_bulk_unlink", "requests"), 1);
    user_ids_free(users);
    results_close(&rs);
    dh_finish();
}

/* --- profiles --------------------------------------------------------------------------- */

struct profile_case {
    const char *user;
    const char *display_name, *picture_url, *status_message, *language; /* "" when absent */
};

static const struct profile_case profile_cases[] = {
    {PROFILE_FULL, "Hanako \"H\" 花子", "https://profile.example/p.jpg", "Hello, LINE! 🌸", "ja"},
    {PROFILE_PLAIN, "Taro", "", "", ""}, /* no picture, status or language consent */
};

Test(dispatcher_kinds, a_profile_result_carries_the_profile_line_returned)
{
    stage("kinds-profile");
    sim_register_users(
        "[{\"user_id\":\"" PROFILE_FULL "\",\"display_name\":\"Hanako \\\"H\\\" 花子\","
        "\"picture_url\":\"https://profile.example/p.jpg\",\"status_message\":\"Hello, LINE! 🌸\","
        "\"language\":\"ja\"},{\"user_id\":\"" PROFILE_PLAIN "\",\"display_name\":\"Taro\"}]");
    struct results rs;
    results_open(&rs);
    size_t n = sizeof profile_cases / sizeof profile_cases[0];
    char ids[4][37];
    for (size_t i = 0; i < n; i++)
        produce_profile(profile_cases[i].user, ids[i]);
    dh_flush();
    for (size_t i = 0; i < n; i++) {
        const struct profile_case *pc = &profile_cases[i];
        const Kizuna__V1__DeliveryResult *r = results_wait(&rs, ids[i]);
        expect_sent(r, KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE, 200, 1, pc->user);
        cr_expect_str_eq(r->to, pc->user);
        cr_assert_not_null(r->profile, "%s: a sent profile result carries the profile", pc->user);
        cr_expect_str_eq(r->profile->user_id, pc->user);
        cr_expect_str_eq(r->profile->display_name, pc->display_name, "%s", pc->user);
        cr_expect_str_eq(r->profile->picture_url, pc->picture_url, "%s", pc->user);
        cr_expect_str_eq(r->profile->status_message, pc->status_message, "%s", pc->user);
        cr_expect_str_eq(r->profile->language, pc->language, "%s", pc->user);
    }
    results_drain(&rs, 1000);
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(results_count(&rs, ids[i]), 1);
    cr_expect_eq(dh_sim_stat("profile", "requests"), (long long)n);
    cr_expect_eq(sim_usage(), 0, "a profile fetch costs no quota");
    results_close(&rs);
    dh_finish();
}

/* --- broadcast and narrowcast ------------------------------------------------------------- */

/* Messages the simulator recorded for user on the test channel. */
static json_t *sim_messages_of(const char *user)
{
    char path[160];
    snprintf(path, sizeof path, "/_sim/messages?to=%s&channel_id=%s", user, dh.channel);
    json_t *body = NULL;
    cr_assert_eq(dh_sim("GET", path, NULL, &body), 200);
    return body;
}

/* LINE's progress endpoint on the simulator, as a client of LINE reads it:
 * the status, and the body in *out. */
static long narrowcast_progress(const char *line_request_id, json_t **out)
{
    char url[256], auth[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v2/bot/message/progress/narrowcast?requestId=%s",
             DH_SIM_PORT, line_request_id);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", dh.token);
    const char *headers[] = {auth, NULL};
    struct itest_http res;
    long st = itest_http_do("GET", url, headers, NULL, 0, &res);
    *out = res.json ? json_incref(res.json) : NULL;
    itest_http_free(&res);
    return st;
}

Test(dispatcher_kinds, broadcast_and_narrowcast_reach_friends_once_and_narrowcast_progress_succeeds)
{
    enum { FRIENDS = 4, NARROW_MAX = 2 };
    stage("kinds-broadcast");
    sim_register_users("[{\"user_id\":\"Ufriend0\"},{\"user_id\":\"Ufriend1\"},"
                       "{\"user_id\":\"Ufriend2\"},{\"user_id\":\"Ufriend3\"},"
                       "{\"user_id\":\"Ublocker\",\"blocked\":true}]");
    /* The probe user from the stage is a friend too; block it so that the
     * audience is exactly the four above. */
    sim_register_users("[{\"user_id\":\"" DH_PROBE_USER "\",\"blocked\":true}]");
    struct results rs;
    results_open(&rs);

    Kizuna__V1__SendRequest req;
    Kizuna__V1__Envelope env;
    char broadcast_id[37], narrowcast_id[37];
    char bmsg[] = "{\"type\":\"text\",\"text\":\"broadcast to every friend\"}";
    char *bmsgs[] = {bmsg};
    dh_request_init(&req, &env, KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST, broadcast_id);
    req.n_messages_json = 1;
    req.messages_json = bmsgs;
    dh_produce(&req);
    char nmsg[] = "{\"type\":\"text\",\"text\":\"narrowcast to two\"}";
    char *nmsgs[] = {nmsg};
    dh_request_init(&req, &env, KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST, narrowcast_id);
    req.n_messages_json = 1;
    req.messages_json = nmsgs;
    req.narrowcast_limit_json = "{\"max\":2}";
    dh_produce(&req);
    dh_flush();

    /* LINE decides the audience of both, so the result counts no recipients. */
    const Kizuna__V1__DeliveryResult *b = results_wait(&rs, broadcast_id);
    expect_sent(b, KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST, 200, 0, "broadcast");
    const Kizuna__V1__DeliveryResult *nc = results_wait(&rs, narrowcast_id);
    expect_sent(nc, KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST, 202, 0, "narrowcast");

    /* Every friend who has not blocked the channel got the broadcast once,
     * sent with the request's retry key. */
    for (int i = 0; i < FRIENDS; i++) {
        char user[32];
        snprintf(user, sizeof user, "Ufriend%d", i);
        json_t *m = sim_messages_of(user);
        size_t got_broadcast = 0;
        size_t k;
        json_t *item;
        json_array_foreach(json_object_get(m, "messages"), k, item)
        {
            const char *ep = json_string_value(json_object_get(item, "endpoint"));
            if (ep && strcmp(ep, "broadcast") == 0) {
                got_broadcast++;
                cr_expect_str_eq(json_string_value(json_object_get(item, "retry_key")),
                                 broadcast_id, "%s: retry key", user);
            }
        }
        cr_expect_eq(got_broadcast, 1, "%s got the broadcast %zu times", user, got_broadcast);
        json_decref(m);
    }
    json_t *m = sim_messages_of("Ublocker");
    cr_expect_eq(json_integer_value(json_object_get(m, "count")), 0, "a blocker gets nothing");
    json_decref(m);

    cr_expect_eq(dh_sim_stat("broadcast", "accepted"), 1);
    cr_expect_eq(dh_sim_stat("broadcast", "deliveries"), FRIENDS);
    cr_expect_eq(dh_sim_stat("narrowcast", "accepted"), 1);
    cr_expect_eq(dh_sim_stat("narrowcast", "deliveries"), NARROW_MAX, "limit.max reached LINE");

    /* The narrowcast's request id at LINE is the key to its progress. */
    json_t *p = NULL;
    cr_expect_eq(narrowcast_progress(nc->line_request_id, &p), 200);
    cr_assert_not_null(p);
    cr_expect_str_eq(json_string_value(json_object_get(p, "phase")), "succeeded");
    cr_expect_eq(json_integer_value(json_object_get(p, "targetCount")), NARROW_MAX);
    cr_expect_eq(json_integer_value(json_object_get(p, "successCount")), NARROW_MAX);
    cr_expect_eq(json_integer_value(json_object_get(p, "failureCount")), 0);
    cr_expect(json_is_string(json_object_get(p, "acceptedTime")));
    json_decref(p);
    cr_expect_eq(narrowcast_progress(b->line_request_id, &p), 404,
                 "a broadcast has no narrowcast progress");
    json_decref(p);

    results_drain(&rs, 1500);
    cr_expect_eq(results_count(&rs, broadcast_id), 1);
    cr_expect_eq(results_count(&rs, narrowcast_id), 1);
    cr_expect_eq(dh_sim_stat("broadcast", "requests"), 1, "never sent twice");
    cr_expect_eq(dh_sim_stat("narrowcast", "requests"), 1, "never sent twice");
    cr_expect_eq(dh_sim_stat(NULL, "duplicate"), 0);
    cr_expect_eq(sim_usage(), FRIENDS + NARROW_MAX, "the quota counts recipients reached");
    results_close(&rs);
    dh_finish();
}

/* --- limits ---------------------------------------------------------------------------------- */

Test(dispatcher_kinds, profile_and_rich_menu_calls_keep_to_the_channels_rate_limits)
{
    enum { N = 20, RATE = 5 };
    /* A margin wider than the default 10 ms: the first call of each kind
     * opens a connection, which under the sanitizers can take longer than
     * that, and would then land inside the second of the next RATE calls.
     * With the margin the bound below is exact, not "one over". */
    static const char *const settings[] = {"DISPATCHER_RATE_MARGIN_MS=100", NULL};
    dh_setup("kinds-limits");
    dh_dispatcher_start(settings);
    dh_dispatcher_wait_consuming();
    sim_reset_counters();
    char body[128];
    snprintf(body, sizeof body, "{\"profile\":%d,\"richmenu_link\":%d}", RATE, RATE);
    dh_limits_set(body);
    char **users = user_ids(0x1171, 0, N);
    char users_json[N * 64 + 8];
    size_t o = 0;
    users_json[o++] = '[';
    for (size_t i = 0; i < N; i++)
        o += (size_t)snprintf(users_json + o, sizeof users_json - o, "%s{\"user_id\":\"%s\"}",
                              i ? "," : "", users[i]);
    snprintf(users_json + o, sizeof users_json - o, "]");
    sim_register_users(users_json);
    sim_reset_counters();
    struct results rs;
    results_open(&rs);

    char ids[2 * N][37];
    long t0 = dh_monotonic_ms();
    for (size_t i = 0; i < N; i++) {
        produce_profile(users[i], ids[i]);
        produce_link(users[i], MENU_LIMITED, ids[N + i]);
    }
    dh_flush();
    for (size_t i = 0; i < 2 * N; i++)
        cr_expect_eq(results_wait(&rs, ids[i])->status,
                     KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT, "request %zu", i);
    long took = dh_monotonic_ms() - t0;

    static const char *const endpoints[] = {"profile", "richmenu_link"};
    for (size_t e = 0; e < 2; e++) {
        const char *ep = endpoints[e];
        cr_expect_eq(dh_sim_stat(ep, "requests"), N, "%s: one call each", ep);
        cr_expect_eq(dh_sim_stat(ep, "rate_limited"), 0, "%s: LINE never answered 429", ep);
        long long max = dh_sim_stat(ep, "max_rate_1s");
        cr_expect_leq(max, RATE, "%s: %lld calls in one second, limit %d", ep, max, RATE);
    }
    /* N calls at RATE/s cannot all go within (N - RATE) / RATE seconds. */
    cr_expect_geq(took, (N - RATE) * 1000 / RATE, "%d calls per kind in %ld ms", N, took);
    user_ids_free(users);
    results_close(&rs);
    dh_finish();
}

/* --- bad input --------------------------------------------------------------------------- */

struct bad_kind_case {
    const char *name;
    Kizuna__V1__SendKind kind;
    const char *to;
    const char *rich_menu_id;
    size_t nrecipients;
    const char *narrowcast_recipient_json;
    const char *narrowcast_limit_json;
    int nmessages;
    Kizuna__V1__DeliveryStatus status;
    int http_status;             /* 0: LINE never called */
    const char *message_part;    /* in error_message */
    const char *detail_property; /* in error_details, or NULL */
};

#define INVALID KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_INVALID
#define FAILED KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED
#define K(kind) KIZUNA__V1__SEND_KIND__SEND_KIND_##kind

static const struct bad_kind_case bad_kind_cases[] = {
    {"link without rich_menu_id", K(RICH_MENU_LINK), BAD1, "", 0, NULL, NULL, 0, INVALID, 0,
     "rich_menu_id: required", NULL},
    {"link with a user id that cannot go in a URL path", K(RICH_MENU_LINK), "U bad/1", MENU_REAL, 0,
     NULL, NULL, 0, INVALID, 0, "to: not a user id", NULL},
    /* LINE's DELETE /v2/bot/user/all/richmenu unlinks the channel's default
     * rich menu for every user: "all" is no user id, and never goes out. */
    {"unlink for `all` users", K(RICH_MENU_UNLINK), "all", NULL, 0, NULL, NULL, 0, INVALID, 0,
     "to: not a user id", NULL},
    {"link to a rich menu id with ..", K(RICH_MENU_LINK), BAD1, "richmenu-../x", 0, NULL, NULL, 0,
     INVALID, 0, "rich_menu_id: not a rich menu id", NULL},
    {"profile of ..", K(PROFILE), "..", NULL, 0, NULL, NULL, 0, INVALID, 0, "to: not a user id",
     NULL},
    {"link to a rich menu the channel does not have", K(RICH_MENU_LINK), BAD2, MENU_MISSING, 0,
     NULL, NULL, 0, FAILED, 404, "richmenu not found", NULL},
    {"unlink without a user", K(RICH_MENU_UNLINK), "", NULL, 0, NULL, NULL, 0, INVALID, 0,
     "to: required", NULL},
    {"bulk link of 501 users", K(RICH_MENU_BULK_LINK), NULL, MENU_REAL, 501, NULL, NULL, 0, INVALID,
     0, "at most 500", NULL},
    {"bulk link without rich_menu_id", K(RICH_MENU_BULK_LINK), NULL, "", 3, NULL, NULL, 0, INVALID,
     0, "rich_menu_id: required", NULL},
    {"bulk link to a rich menu the channel does not have", K(RICH_MENU_BULK_LINK), NULL,
     MENU_MISSING, 3, NULL, NULL, 0, FAILED, 404, "richmenu not found", NULL},
    {"bulk unlink of no users", K(RICH_MENU_BULK_UNLINK), NULL, NULL, 0, NULL, NULL, 0, INVALID, 0,
     "recipients: none", NULL},
    {"bulk unlink of 501 users", K(RICH_MENU_BULK_UNLINK), NULL, NULL, 501, NULL, NULL, 0, INVALID,
     0, "at most 500", NULL},
    {"profile of a user LINE does not know", K(PROFILE), NOBODY, NULL, 0, NULL, NULL, 0, FAILED,
     404, "Not found", NULL},
    {"profile of a friend who blocked the channel", K(PROFILE), BAD_BLOCKER, NULL, 0, NULL, NULL, 0,
     FAILED, 404, "Not found", NULL},
    {"profile without a user", K(PROFILE), "", NULL, 0, NULL, NULL, 0, INVALID, 0, "to: required",
     NULL},
    {"narrowcast to a recipient type LINE does not have", K(NARROWCAST), NULL, NULL, 0,
     "{\"type\":\"everyone\"}", NULL, 1, FAILED, 400, "1 error(s)", "recipient.type"},
    {"narrowcast with limit.max 0", K(NARROWCAST), NULL, NULL, 0, NULL, "{\"max\":0}", 1, FAILED,
     400, "1 error(s)", "limit.max"},
    {"narrowcast recipient that is not an object", K(NARROWCAST), NULL, NULL, 0, "[1]", NULL, 1,
     INVALID, 0, "narrowcast_recipient_json", NULL},
    {"broadcast of six messages", K(BROADCAST), NULL, NULL, 0, NULL, NULL, 6, INVALID, 0,
     "at most 5", NULL},
    {"broadcast without messages", K(BROADCAST), NULL, NULL, 0, NULL, NULL, 0, INVALID, 0,
     "no messages", NULL},
};

#define NBAD (sizeof bad_kind_cases / sizeof bad_kind_cases[0])

/* The simulator endpoint a case's kind calls. */
static const char *endpoint_of(Kizuna__V1__SendKind kind)
{
    switch (kind) {
    case K(RICH_MENU_LINK):
        return "richmenu_link";
    case K(RICH_MENU_UNLINK):
        return "richmenu_unlink";
    case K(RICH_MENU_BULK_LINK):
        return "richmenu_bulk_link";
    case K(RICH_MENU_BULK_UNLINK):
        return "richmenu_bulk_unlink";
    case K(PROFILE):
        return "profile";
    case K(NARROWCAST):
        return "narrowcast";
    default:
        return "broadcast";
    }
}

Test(dispatcher_kinds, bad_input_for_these_kinds_fails_for_good_with_the_reason_and_no_retry)
{
    stage("kinds-bad");
    /* Two narrowcasts and a broadcast within a second: lift the hourly
     * limits so that the bucket does not hold the second one back. */
    dh_limits_set("{\"narrowcast\":100,\"broadcast\":100}");
    sim_register_menus("[\"" MENU_REAL "\"]");
    sim_register_users("[{\"user_id\":\"" BAD_BLOCKER "\",\"blocked\":true}]");
    struct results rs;
    results_open(&rs);

    char **many = user_ids(0xbad, 0, 501);
    char msg[] = "{\"type\":\"text\",\"text\":\"bad input\"}";
    char *msgs[6] = {msg, msg, msg, msg, msg, msg};
    char ids[NBAD][37];
    for (size_t i = 0; i < NBAD; i++) {
        const struct bad_kind_case *c = &bad_kind_cases[i];
        Kizuna__V1__SendRequest req;
        Kizuna__V1__Envelope env;
        dh_request_init(&req, &env, c->kind, ids[i]);
        req.to = (char *)(c->to ? c->to : "");
        req.rich_menu_id = (char *)(c->rich_menu_id ? c->rich_menu_id : "");
        req.recipients = many;
        req.n_recipients = c->nrecipients;
        req.narrowcast_recipient_json =
            (char *)(c->narrowcast_recipient_json ? c->narrowcast_recipient_json : "");
        req.narrowcast_limit_json =
            (char *)(c->narrowcast_limit_json ? c->narrowcast_limit_json : "");
        req.messages_json = msgs;
        req.n_messages_json = (size_t)c->nmessages;
        dh_produce(&req);
    }
    dh_flush();

    for (size_t i = 0; i < NBAD; i++) {
        const struct bad_kind_case *c = &bad_kind_cases[i];
        const Kizuna__V1__DeliveryResult *r = results_wait(&rs, ids[i]);
        cr_expect_eq(r->status, c->status, "%s: status %d (%s)", c->name, r->status,
                     r->error_message);
        cr_expect_eq(r->kind, c->kind, "%s: kind", c->name);
        cr_expect_eq(r->http_status, c->http_status, "%s: http_status", c->name);
        cr_expect_eq(r->attempts, c->http_status ? 1 : 0, "%s: attempts %d", c->name, r->attempts);
        cr_expect(r->error_message && strstr(r->error_message, c->message_part), "%s: error %s",
                  c->name, r->error_message ? r->error_message : "(none)");
        cr_expect_null(r->profile, "%s: no profile on a failure", c->name);
        if (c->detail_property) {
            bool found = false;
            for (size_t d = 0; d < r->n_error_details; d++)
                found |= strcmp(r->error_details[d]->property, c->detail_property) == 0;
            cr_expect(found, "%s: LINE's detail on %s missing (%zu details)", c->name,
                      c->detail_property, r->n_error_details);
        }
    }

    /* Nothing is retried: each refusal LINE gave was its only call, and
     * what the dispatcher refused never reached LINE. */
    results_drain(&rs, 2500);
    static const char *const endpoints[] = {
        "richmenu_link", "richmenu_unlink", "richmenu_bulk_link", "richmenu_bulk_unlink",
        "profile",       "narrowcast",      "broadcast"};
    for (size_t e = 0; e < sizeof endpoints / sizeof endpoints[0]; e++) {
        long long want = 0;
        for (size_t i = 0; i < NBAD; i++)
            if (bad_kind_cases[i].http_status &&
                strcmp(endpoint_of(bad_kind_cases[i].kind), endpoints[e]) == 0)
                want++;
        cr_expect_eq(dh_sim_stat(endpoints[e], "requests"), want, "%s: calls to LINE",
                     endpoints[e]);
        cr_expect_eq(dh_sim_stat(endpoints[e], "accepted"), 0, "%s: nothing accepted",
                     endpoints[e]);
    }
    for (size_t i = 0; i < NBAD; i++)
        cr_expect_eq(results_count(&rs, ids[i]), 1, "%s: reported once", bad_kind_cases[i].name);
    cr_expect_eq(sim_linked_count(), 0, "no user got a rich menu");
    user_ids_free(many);
    results_close(&rs);
    dh_finish();
}
