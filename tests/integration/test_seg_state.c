/* Friend state on the real stack: the LINE simulator, kizuna-ingest (a
 * channel registered through its admin API, webhooks signed with its
 * secret), kizuna-dispatcher (fetching profiles from the simulator) and
 * kizuna-segmentation. Signed follow, message, group and unfollow webhooks
 * make the friend, the talk row and the chat; FriendAdded, FriendBlocked,
 * FriendUnblocked and FriendProfileUpdated arrive on friend.events; the
 * profile comes from the simulator; a webhook redelivered by LINE after an
 * ingest restart (so that ingest's own dedupe cannot hide it) changes
 * nothing; an older follow arriving after a newer unfollow changes nothing.
 * Records produced straight to line.webhook show that a standby follow's
 * FriendAdded has no reply token, that a record for a channel never heard of
 * is skipped once past the grace and does not hold up its partition, and
 * that a fresh one waits until the channel arrives on `channels`; and a
 * DeliveryResult for an operator's push sets its talk row's status; old
 * inbox rows are pruned. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "db.h"
#include "itest.h"
#include "kafka.h"
#include "kizuna/v1/channel.pb-c.h"
#include "kizuna/v1/delivery.pb-c.h"
#include "kizuna/v1/friend.pb-c.h"
#include "kizuna/v1/send.pb-c.h"
#include "kizuna/v1/webhook.pb-c.h"
#include "seg_itest.h"

#define ST_PUBLIC_PORT 18185
#define ST_ADMIN_PORT 18186
#define ST_DISPATCHER_PORT 18187
#define ST_BOT_USER "U8e742f61d673b39c7fff3cecb7536ef0"
#define ST_WAIT_MS 40000

static struct {
    char tenant[64], channel[32], secret[40], user[40], member[40], group[40], run[24];
    char name[64];
    pid_t ingest, disp;
    char ingest_log[256], disp_log[256];
} st;

/* --- processes ------------------------------------------------------------------ */

static void ingest_start(void)
{
    char pub[48], adm[48];
    snprintf(pub, sizeof pub, "INGEST_PUBLIC_PORT=%d", ST_PUBLIC_PORT);
    snprintf(adm, sizeof adm, "INGEST_ADMIN_PORT=%d", ST_ADMIN_PORT);
    const char *settings[] = {ITEST_SIM_INGEST_SETTING, pub, adm, "LOG_LEVEL=info", NULL};
    st.ingest = itest_service_spawn("ingest", settings, st.ingest_log);
    cr_assert(itest_http_wait_ready(ST_ADMIN_PORT, 45000), "ingest not ready; see %s",
              st.ingest_log);
}

static void dispatcher_start(void)
{
    char port[64], base[96], inst[128], grp[128];
    snprintf(port, sizeof port, "DISPATCHER_ADMIN_PORT=%d", ST_DISPATCHER_PORT);
    snprintf(base, sizeof base, "DISPATCHER_LINE_API_BASE=%s", ITEST_SIM_BASE);
    snprintf(inst, sizeof inst, "DISPATCHER_INSTANCE_ID=itest-seg-state-%s", st.run);
    snprintf(grp, sizeof grp, "DISPATCHER_GROUP=itest-seg-state-%s", st.run);
    const char *settings[] = {port,
                              base,
                              inst,
                              grp,
                              "DISPATCHER_INTAKE_FROM=latest",
                              "DISPATCHER_SESSION_TIMEOUT_MS=6000",
                              "DISPATCHER_UNKNOWN_CHANNEL_GRACE_S=5",
                              "LOG_LEVEL=info",
                              NULL};
    st.disp = itest_service_spawn("dispatcher", settings, st.disp_log);
    cr_assert(itest_http_wait_ready(ST_DISPATCHER_PORT, 45000), "dispatcher not ready; see %s",
              st.disp_log);
}

/* The simulator's count of profile requests for the test channel. */
static long long sim_profile_requests(void)
{
    char url[256];
    snprintf(url, sizeof url, "%s/_sim/stats", ITEST_SIM_BASE);
    struct itest_http res;
    itest_http_do("GET", url, NULL, NULL, 0, &res);
    json_t *ch = json_object_get(json_object_get(res.json, "channels"), st.channel);
    json_t *n =
        json_object_get(json_object_get(json_object_get(ch, "endpoints"), "profile"), "requests");
    long long v = json_is_integer(n) ? json_integer_value(n) : 0;
    itest_http_free(&res);
    return v;
}

/* The dispatcher starts at "latest" on send.requests: probes (profiles of a
 * user the simulator knows nothing of) until one reaches the simulator. */
static void dispatcher_wait_consuming(void)
{
    char errstr[256];
    struct kafka_producer *p =
        kafka_producer_new(itest_env("KAFKA_BROKERS"), "itest-seg-state", errstr, sizeof errstr);
    cr_assert_not_null(p, "%s", errstr);
    bool seen = false;
    for (long start = itest_now_ms(); !seen && itest_now_ms() - start < 40000;) {
        char event_id[37], request_id[37];
        uuid_t u;
        uuid_generate_random(u);
        uuid_unparse_lower(u, event_id);
        uuid_generate_random(u);
        uuid_unparse_lower(u, request_id);
        Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
        env.event_id = event_id;
        env.tenant_id = st.tenant;
        env.channel_id = st.channel;
        Kizuna__V1__SendRequest req = KIZUNA__V1__SEND_REQUEST__INIT;
        req.envelope = &env;
        req.request_id = request_id;
        req.kind = KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE;
        req.to = "U0000000000000000000000000000be02";
        req.origin_type = "itest";
        uint8_t buf[512];
        size_t len = kizuna__v1__send_request__pack(&req, buf);
        cr_assert_eq(
            kafka_produce(p, "send.requests", st.channel, strlen(st.channel), buf, len, NULL), 0);
        cr_assert_eq(kafka_producer_flush(p, 10000), 0);
        for (long t = itest_now_ms(); !seen && itest_now_ms() - t < 1000; usleep(100 * 1000))
            seen = sim_profile_requests() > 0;
    }
    kafka_producer_free(&p);
    cr_assert(seen, "the dispatcher never consumed a probe; see %s", st.disp_log);
}

static void stage_up(void)
{
    itest_env("KAFKA_BROKERS");
    itest_env("KIZUNA_JWT_KEY");
    itest_unique_digits(st.channel, sizeof st.channel, '7');
    memcpy(st.run, st.channel + 8, 10); /* the channel's last 10 of 18 digits */
    st.run[10] = '\0';
    snprintf(st.tenant, sizeof st.tenant, "t-seg-state-%s", st.run);
    itest_random_hex(st.secret, 16);
    snprintf(st.user, sizeof st.user, "U");
    itest_random_hex(st.user + 1, 16);
    snprintf(st.member, sizeof st.member, "U");
    itest_random_hex(st.member + 1, 16);
    snprintf(st.group, sizeof st.group, "C");
    itest_random_hex(st.group + 1, 16);
    snprintf(st.name, sizeof st.name, "Hanako %s", st.run);
    const char *b = itest_build_dir();
    snprintf(st.ingest_log, sizeof st.ingest_log, "%s/tests/seg-state-ingest.log", b);
    snprintf(st.disp_log, sizeof st.disp_log, "%s/tests/seg-state-dispatcher.log", b);

    /* The simulator: ingest asks it whose token a channel's is
     * (itest_ingest_channel_register registers the channel there), the
     * dispatcher fetches profiles from it. */
    itest_sim_start("seg-state");
    ingest_start();
    itest_ingest_channel_register(ST_ADMIN_PORT, st.tenant, st.channel, st.secret);
    char body[512];
    snprintf(body, sizeof body,
             "{\"channel_id\":\"%s\",\"user_id\":\"%s\",\"display_name\":\"%s\","
             "\"picture_url\":\"https://example.com/p.png\",\"status_message\":\"hi\","
             "\"language\":\"ja\"}",
             st.channel, st.user, st.name);
    cr_assert_eq(itest_sim_call("POST", "/_sim/users", body) / 100, 2);
    dispatcher_start();
    dispatcher_wait_consuming();
    seg_itest_start("state", NULL);
}

static void stage_reap(void)
{
    seg_itest_reap();
    itest_service_reap(&st.disp);
    itest_service_reap(&st.ingest);
    itest_sim_reap();
}

TestSuite(seg_state, .timeout = 240, .fini = stage_reap);

/* --- webhooks ------------------------------------------------------------------------ */

/* Posts one signed event (JSON object text) to ingest; asserts 200. */
static void webhook_post(const char *event)
{
    char body[4096], sig[64], url[128], h[128];
    snprintf(body, sizeof body, "{\"destination\":\"%s\",\"events\":[%s]}", ST_BOT_USER, event);
    itest_line_sign(st.secret, body, strlen(body), sig);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/line/webhook/%s", ST_PUBLIC_PORT, st.channel);
    snprintf(h, sizeof h, "x-line-signature: %s", sig);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct itest_http res;
    long status = itest_http_do("POST", url, headers, body, strlen(body), &res);
    cr_assert_eq(status, 200, "webhook: %ld %s", status, res.body);
    itest_http_free(&res);
}

static void follow_event(char *out, size_t cap, const char *weid, long long ts, bool unblocked)
{
    snprintf(out, cap,
             "{\"type\":\"follow\",\"mode\":\"active\",\"timestamp\":%lld,"
             "\"source\":{\"type\":\"user\",\"userId\":\"%s\"},\"replyToken\":\"rt-%s\","
             "\"webhookEventId\":\"%s\",\"deliveryContext\":{\"isRedelivery\":false},"
             "\"follow\":{\"isUnblocked\":%s}}",
             ts, st.user, weid, weid, unblocked ? "true" : "false");
}

static void message_event(char *out, size_t cap, const char *weid, long long ts, bool redelivery,
                          const char *source)
{
    snprintf(out, cap,
             "{\"type\":\"message\",\"mode\":\"active\",\"timestamp\":%lld,\"source\":%s,"
             "\"replyToken\":\"rt-%s\",\"webhookEventId\":\"%s\","
             "\"deliveryContext\":{\"isRedelivery\":%s},"
             "\"message\":{\"id\":\"m-%s\",\"type\":\"text\",\"quoteToken\":\"q\","
             "\"text\":\"hello %s\"}}",
             ts, source, weid, weid, redelivery ? "true" : "false", weid, weid);
}

/* --- waiting on the database and the metrics ------------------------------------------ */

/* Polls sql (params: the channel and p2) until it answers one row whose
 * first value is want. */
static bool db_wait_text(const char *sql, const char *p2, const char *want, long timeout_ms)
{
    const char *params[] = {st.channel, p2};
    for (long t = itest_now_ms();; usleep(100 * 1000)) {
        struct db_result *r = NULL;
        cr_assert_eq(db_exec(seg_itest_db(), sql, 2, params, &r), DB_OK, "%s: %s", sql,
                     db_error_message(seg_itest_db()));
        bool ok = db_result_rows(r) == 1 && !db_result_isnull(r, 0, 0) &&
                  strcmp(db_result_value(r, 0, 0), want) == 0;
        db_result_free(&r);
        if (ok)
            return true;
        if (itest_now_ms() - t > timeout_ms)
            return false;
    }
}

/* The value of one series on segmentation's /metrics (0 when absent). */
static double seg_metric(const char *series)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", SEG_ITEST_PORT);
    struct itest_http res;
    itest_http_do("GET", url, NULL, NULL, 0, &res);
    double v = 0;
    size_t n = strlen(series);
    for (const char *line = res.body; line && *line;) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            v = strtod(line + n + 1, NULL);
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    itest_http_free(&res);
    return v;
}

static bool seg_metric_wait(const char *series, double at_least, long timeout_ms)
{
    for (long t = itest_now_ms(); itest_now_ms() - t < timeout_ms; usleep(100 * 1000)) {
        if (seg_metric(series) >= at_least)
            return true;
    }
    return seg_metric(series) >= at_least;
}

/* --- friend.events ------------------------------------------------------------------------ */

struct seen {
    char key[96];
    const char *until_weid; /* stop at the FriendAdded of this follow */
    bool stop_on_profile;   /* or at the first FriendProfileUpdated */
    bool done;
    int added, blocked, unblocked, profiles;
    bool first_added_ok, refollow_unblocked, unblocked_after_refollow;
    char first_weid[32], profile_name[64], tenant[64];
};

static enum kafka_handled seen_handle(void *ctx, const struct kafka_message *msg)
{
    struct seen *s = ctx;
    if (s->done || msg->keylen != strlen(s->key) || memcmp(msg->key, s->key, msg->keylen) != 0)
        return KAFKA_DONE;
    Kizuna__V1__FriendEvent *ev = kizuna__v1__friend_event__unpack(NULL, msg->len, msg->value);
    cr_assert_not_null(ev, "a record on friend.events that is not a FriendEvent");
    snprintf(s->tenant, sizeof s->tenant, "%s", ev->envelope ? ev->envelope->tenant_id : "");
    switch (ev->event_case) {
    case KIZUNA__V1__FRIEND_EVENT__EVENT_ADDED:
        s->added++;
        if (s->added == 1)
            s->first_added_ok = strcmp(ev->added->webhook_event_id, s->first_weid) == 0 &&
                                strncmp(ev->added->reply_token, "rt-", 3) == 0 &&
                                ev->added->reply_token_issued_at > 0 && !ev->added->is_unblocked;
        if (s->until_weid && strcmp(ev->added->webhook_event_id, s->until_weid) == 0)
            s->refollow_unblocked = ev->added->is_unblocked;
        break;
    case KIZUNA__V1__FRIEND_EVENT__EVENT_BLOCKED:
        s->blocked++;
        break;
    case KIZUNA__V1__FRIEND_EVENT__EVENT_UNBLOCKED:
        s->unblocked++;
        s->unblocked_after_refollow = s->refollow_unblocked;
        if (s->refollow_unblocked)
            s->done = true; /* the last event the test expects */
        break;
    case KIZUNA__V1__FRIEND_EVENT__EVENT_PROFILE_UPDATED:
        s->profiles++;
        snprintf(s->profile_name, sizeof s->profile_name, "%s", ev->profile_updated->display_name);
        if (s->stop_on_profile && s->added >= 1)
            s->done = true;
        break;
    default:
        break;
    }
    kizuna__v1__friend_event__free_unpacked(ev, NULL);
    return KAFKA_DONE;
}

static bool seen_done(void *ctx)
{
    return ((const struct seen *)ctx)->done;
}

/* --- the test ---------------------------------------------------------------------------- */

Test(seg_state, webhooks_through_ingest_make_friends_talk_chats_events_and_profiles)
{
    stage_up();
    long long now = (long long)time(NULL) * 1000;
    char f1[32], m1[32], g1[32], u1[32], old[32], f2[32], ev[2048], src[160];
    snprintf(f1, sizeof f1, "01F%s", st.run);
    snprintf(m1, sizeof m1, "01M%s", st.run);
    snprintf(g1, sizeof g1, "01G%s", st.run);
    snprintf(u1, sizeof u1, "01U%s", st.run);
    snprintf(old, sizeof old, "01O%s", st.run);
    snprintf(f2, sizeof f2, "01R%s", st.run);

    /* follow: the friend, then the profile from the simulator. */
    follow_event(ev, sizeof ev, f1, now - 4000, false);
    webhook_post(ev);
    cr_assert(db_wait_text("SELECT (added_at IS NOT NULL AND NOT blocked)::text FROM friends "
                           "WHERE channel_id = $1 AND user_id = $2",
                           st.user, "true", ST_WAIT_MS),
              "the follow made no friend");
    cr_assert(db_wait_text("SELECT display_name FROM friends WHERE channel_id = $1 AND "
                           "user_id = $2",
                           st.user, st.name, ST_WAIT_MS),
              "the profile never arrived from the simulator");
    const char *fp[] = {st.channel, st.user};
    char *lang = itest_query_text(seg_itest_db(),
                                  "SELECT language || '|' || picture_url || '|' || status_message "
                                  "|| '|' || (profile_at IS NOT NULL) FROM friends "
                                  "WHERE channel_id = $1 AND user_id = $2",
                                  2, fp);
    cr_expect_str_eq(lang, "ja|https://example.com/p.png|hi|true");
    free(lang);

    /* message: last_message_at and the talk row. */
    snprintf(src, sizeof src, "{\"type\":\"user\",\"userId\":\"%s\"}", st.user);
    message_event(ev, sizeof ev, m1, now - 3000, false, src);
    webhook_post(ev);
    char want[192];
    snprintf(want, sizeof want, "in|text|hello %s|m-%s|%s", m1, m1, st.user);
    cr_assert(db_wait_text("SELECT t.direction || '|' || t.message_type || '|' || t.text || '|' "
                           "|| t.line_message_id || '|' || f.user_id FROM talk t JOIN friends f "
                           "ON f.id = t.friend_id WHERE f.channel_id = $1 AND "
                           "t.webhook_event_id = $2",
                           m1, want, ST_WAIT_MS),
              "the message never reached the talk");
    cr_expect(db_wait_text("SELECT (last_message_at IS NOT NULL)::text FROM friends WHERE "
                           "channel_id = $1 AND user_id = $2",
                           st.user, "true", 1000));

    /* a group message: a chat, and no friend for its member. */
    snprintf(src, sizeof src, "{\"type\":\"group\",\"groupId\":\"%s\",\"userId\":\"%s\"}", st.group,
             st.member);
    message_event(ev, sizeof ev, g1, now - 2500, false, src);
    webhook_post(ev);
    cr_assert(db_wait_text("SELECT type || '|' || joined FROM chats WHERE channel_id = $1 AND "
                           "chat_id = $2",
                           st.group, "group|true", ST_WAIT_MS),
              "the group was not recorded");
    cr_expect(db_wait_text("SELECT count(*)::text FROM friends WHERE channel_id = $1 AND "
                           "user_id = $2",
                           st.member, "0", 0),
              "a group member became a friend");

    /* unfollow: blocked. */
    snprintf(ev, sizeof ev,
             "{\"type\":\"unfollow\",\"mode\":\"active\",\"timestamp\":%lld,"
             "\"source\":{\"type\":\"user\",\"userId\":\"%s\"},\"webhookEventId\":\"%s\","
             "\"deliveryContext\":{\"isRedelivery\":false}}",
             now - 2000, st.user, u1);
    webhook_post(ev);
    cr_assert(db_wait_text("SELECT (blocked AND blocked_at IS NOT NULL)::text FROM friends "
                           "WHERE channel_id = $1 AND user_id = $2",
                           st.user, "true", ST_WAIT_MS),
              "the unfollow did not block");

    /* LINE redelivers the message after an ingest restart (ingest's own
     * dedupe is in memory): the record reaches line.webhook again and the
     * inbox skips it. */
    const char *dup = "kizuna_consumer_records_total{consumer=\"segmentation-webhook\","
                      "topic=\"line.webhook\",outcome=\"duplicate\"}";
    double dups = seg_metric(dup);
    itest_service_stop(&st.ingest, st.ingest_log);
    ingest_start();
    snprintf(src, sizeof src, "{\"type\":\"user\",\"userId\":\"%s\"}", st.user);
    message_event(ev, sizeof ev, m1, now - 3000, true, src);
    webhook_post(ev);
    cr_assert(seg_metric_wait(dup, dups + 1, ST_WAIT_MS),
              "the redelivered message never reached segmentation's inbox");
    cr_expect(db_wait_text("SELECT count(*)::text FROM talk t JOIN friends f ON f.id = t.friend_id "
                           "WHERE f.channel_id = $1 AND f.user_id = $2",
                           st.user, "1", 0),
              "the redelivered message changed the talk");

    /* A follow older than the unfollow, arriving after it: stale. */
    const char *stale = "kizuna_segmentation_webhook_events_total{type=\"follow\","
                        "result=\"stale\"}";
    double stales = seg_metric(stale);
    follow_event(ev, sizeof ev, old, now - 3500, false);
    webhook_post(ev);
    cr_assert(seg_metric_wait(stale, stales + 1, ST_WAIT_MS), "the old follow was not handled");
    cr_expect(db_wait_text("SELECT blocked::text FROM friends WHERE channel_id = $1 AND "
                           "user_id = $2",
                           st.user, "true", 0),
              "an older follow undid a newer unfollow");

    /* The friend comes back: FriendAdded(is_unblocked) then FriendUnblocked,
     * the last events the stream must hold. */
    follow_event(ev, sizeof ev, f2, now - 1000, true);
    webhook_post(ev);
    cr_assert(db_wait_text("SELECT blocked::text FROM friends WHERE channel_id = $1 AND "
                           "user_id = $2",
                           st.user, "false", ST_WAIT_MS),
              "the new follow did not unblock");

    struct seen s = {.until_weid = f2};
    snprintf(s.key, sizeof s.key, "%s:%s", st.channel, st.user);
    snprintf(s.first_weid, sizeof s.first_weid, "%s", f1);
    itest_topic_read("friend.events", seen_handle, seen_done, &s, ST_WAIT_MS);
    cr_assert(s.done, "FriendUnblocked after the re-follow never arrived on friend.events");
    cr_expect_eq(s.added, 2, "one FriendAdded per applied follow (the stale one made none): %d",
                 s.added);
    cr_expect(s.first_added_ok, "the first FriendAdded carries the reply token and event id");
    cr_expect(s.refollow_unblocked, "the re-follow's FriendAdded has is_unblocked");
    cr_expect_eq(s.blocked, 1, "one FriendBlocked: %d", s.blocked);
    cr_expect_eq(s.unblocked, 1, "one FriendUnblocked: %d", s.unblocked);
    cr_expect_str_eq(s.tenant, st.tenant);

    /* The profile's event (it may come after the others: read for it). */
    struct seen p = {.stop_on_profile = true};
    snprintf(p.key, sizeof p.key, "%s:%s", st.channel, st.user);
    itest_topic_read("friend.events", seen_handle, seen_done, &p, ST_WAIT_MS);
    cr_expect(p.done, "no FriendProfileUpdated on friend.events");
    cr_expect_str_eq(p.profile_name, st.name);

    seg_itest_finish();
    itest_service_stop(&st.disp, st.disp_log);
    itest_service_stop(&st.ingest, st.ingest_log);
    itest_sim_stop();
    const char *forbidden[] = {st.secret, "hello 01", NULL};
    itest_log_expect_clean(st.ingest_log, forbidden);
    itest_log_expect_clean(st.disp_log, forbidden);
}

/* --- records straight on line.webhook ---------------------------------------------------- */

/* A follow as ingest would publish it, keyed key, for channel ch. */
static void follow_produce(struct kafka_producer *p, const char *key, const char *ch,
                           const char *user, const char *weid, long long received_at, bool standby)
{
    char event_id[37];
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, event_id);
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.channel_id = (char *)ch;
    env.tenant_id = "t-seg-state-direct";
    env.occurred_at = received_at;
    Kizuna__V1__Source src = KIZUNA__V1__SOURCE__INIT;
    src.type = KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_USER;
    src.user_id = (char *)user;
    Kizuna__V1__FollowDetail fd = KIZUNA__V1__FOLLOW_DETAIL__INIT;
    Kizuna__V1__WebhookEvent we = KIZUNA__V1__WEBHOOK_EVENT__INIT;
    we.envelope = &env;
    we.webhook_event_id = (char *)weid;
    we.timestamp = received_at;
    we.received_at = received_at;
    we.mode = standby ? KIZUNA__V1__EVENT_MODE__EVENT_MODE_STANDBY
                      : KIZUNA__V1__EVENT_MODE__EVENT_MODE_ACTIVE;
    we.source = &src;
    we.reply_token = "rt-direct";
    we.type = "follow";
    we.event_case = KIZUNA__V1__WEBHOOK_EVENT__EVENT_FOLLOW;
    we.follow = &fd;
    uint8_t buf[1024];
    size_t len = kizuna__v1__webhook_event__pack(&we, buf);
    cr_assert_eq(kafka_produce(p, "line.webhook", key, strlen(key), buf, len, NULL), 0);
    cr_assert_eq(kafka_producer_flush(p, 10000), 0);
}

static void channel_produce(struct kafka_producer *p, const char *ch, const char *tenant)
{
    char event_id[37];
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, event_id);
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    Kizuna__V1__ChannelConfig cfg = KIZUNA__V1__CHANNEL_CONFIG__INIT;
    cfg.envelope = &env;
    cfg.channel_id = (char *)ch;
    cfg.tenant_id = (char *)tenant;
    cfg.timezone = "Asia/Tokyo";
    cfg.version = 1;
    uint8_t buf[512];
    size_t len = kizuna__v1__channel_config__pack(&cfg, buf);
    cr_assert_eq(kafka_produce(p, "channels", ch, strlen(ch), buf, len, NULL), 0);
    cr_assert_eq(kafka_producer_flush(p, 10000), 0);
}

static const char *user_of(char *out, size_t cap)
{
    snprintf(out, cap, "U");
    itest_random_hex(out + 1, 16);
    return out;
}

/* The FriendAdded of one follow, found by key and webhookEventId. */
struct added_find {
    char key[96];
    const char *weid;
    bool found;
    char token[64];
};

static enum kafka_handled added_find_handle(void *ctx, const struct kafka_message *msg)
{
    struct added_find *f = ctx;
    if (f->found || msg->keylen != strlen(f->key) || memcmp(msg->key, f->key, msg->keylen) != 0)
        return KAFKA_DONE;
    Kizuna__V1__FriendEvent *ev = kizuna__v1__friend_event__unpack(NULL, msg->len, msg->value);
    cr_assert_not_null(ev);
    if (ev->event_case == KIZUNA__V1__FRIEND_EVENT__EVENT_ADDED &&
        strcmp(ev->added->webhook_event_id, f->weid) == 0) {
        f->found = true;
        snprintf(f->token, sizeof f->token, "%s", ev->added->reply_token);
    }
    kizuna__v1__friend_event__free_unpacked(ev, NULL);
    return KAFKA_DONE;
}

static bool added_find_done(void *ctx)
{
    return ((const struct added_find *)ctx)->found;
}

Test(seg_state, standby_follows_unknown_channels_and_talk_results_straight_from_kafka)
{
    itest_env("KAFKA_BROKERS");
    const char *settings[] = {"SEGMENTATION_UNKNOWN_CHANNEL_GRACE_S=30",
                              "SEGMENTATION_INBOX_KEEP_S=3600",
                              "SEGMENTATION_INBOX_PRUNE_EVERY_S=1", NULL};
    seg_itest_start("state-direct", settings);
    struct kafka_producer *p = itest_producer_new("itest-seg-state-direct");
    char known[32], late[32], fresh[32], a[40], b[40], key[96];
    itest_unique_digits(known, sizeof known, '6');
    itest_unique_digits(late, sizeof late, '6');
    itest_unique_digits(fresh, sizeof fresh, '6');
    seg_itest_channel(known, "t-seg-state-direct", "Asia/Tokyo");
    long long now = (long long)time(NULL) * 1000;
    const char *malformed = "kizuna_consumer_malformed_total{consumer=\"segmentation-webhook\","
                            "topic=\"line.webhook\",reason=\"unknown_channel\"}";
    const char *waited = "kizuna_segmentation_webhook_events_total{type=\"follow\","
                         "result=\"channel_unknown_wait\"}";
    double malformed0 = seg_metric(malformed), waited0 = seg_metric(waited);

    /* A channel never heard of, received 10 minutes ago: skipped at once,
     * and the same partition (the same key) goes on with a standby follow. */
    user_of(a, sizeof a);
    snprintf(key, sizeof key, "%s:%s", known, a);
    follow_produce(p, key, late, a, "01LATE", now - 600000, false);
    follow_produce(p, key, known, a, "01STANDBY", now - 1000, true);
    snprintf(st.channel, sizeof st.channel, "%s", known);
    cr_assert(db_wait_text("SELECT (added_at IS NOT NULL)::text FROM friends WHERE "
                           "channel_id = $1 AND user_id = $2",
                           a, "true", ST_WAIT_MS),
              "the follow behind an unknown channel's record was held up");
    cr_expect_geq(seg_metric(malformed), malformed0 + 1, "the late record was not skipped");
    struct added_find f = {.weid = "01STANDBY"};
    snprintf(f.key, sizeof f.key, "%s", key);
    itest_topic_read("friend.events", added_find_handle, added_find_done, &f, ST_WAIT_MS);
    cr_assert(f.found, "no FriendAdded for the standby follow");
    cr_expect_str_eq(f.token, "", "a standby follow must never lead to a reply");

    /* A fresh record for a channel still to come: retried until it is known. */
    user_of(b, sizeof b);
    snprintf(key, sizeof key, "%s:%s", fresh, b);
    follow_produce(p, key, fresh, b, "01FRESH", now, false);
    cr_assert(seg_metric_wait(waited, waited0 + 1, ST_WAIT_MS), "the fresh record was not retried");
    channel_produce(p, fresh, "t-seg-state-direct");
    snprintf(st.channel, sizeof st.channel, "%s", fresh);
    cr_assert(db_wait_text("SELECT (added_at IS NOT NULL)::text FROM friends WHERE "
                           "channel_id = $1 AND user_id = $2",
                           b, "true", ST_WAIT_MS),
              "the retried follow was never applied once its channel arrived");

    /* An operator's push in the talk (as the talk's route writes it) gets
     * its DeliveryResult's status and error. */
    char rid[37], eid[37];
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, rid);
    uuid_generate_random(u);
    uuid_unparse_lower(u, eid);
    const char *tp[] = {fresh, b, rid};
    itest_exec_ok(seg_itest_db(),
                  "INSERT INTO talk (friend_id, direction, at, message_type, request_id, status) "
                  "SELECT id, 'out', now(), 'text', $3::uuid, 'pending' FROM friends "
                  "WHERE channel_id = $1 AND user_id = $2",
                  3, tp);
    Kizuna__V1__Envelope env = KIZUNA__V1__ENVELOPE__INIT;
    env.event_id = eid;
    env.channel_id = fresh;
    Kizuna__V1__DeliveryResult dr = KIZUNA__V1__DELIVERY_RESULT__INIT;
    dr.envelope = &env;
    dr.request_id = rid;
    dr.kind = KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH;
    dr.status = KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED;
    dr.to = b;
    dr.error_message = "The request body has 1 error(s)";
    uint8_t buf[512];
    size_t len = kizuna__v1__delivery_result__pack(&dr, buf);
    snprintf(key, sizeof key, "%s:%s", fresh, b);
    cr_assert_eq(kafka_produce(p, "delivery.results", key, strlen(key), buf, len, NULL), 0);
    cr_assert_eq(kafka_producer_flush(p, 10000), 0);
    cr_expect(db_wait_text("SELECT status || '|' || error FROM talk WHERE request_id = $2::uuid "
                           "AND $1 <> ''",
                           rid, "failed|The request body has 1 error(s)", ST_WAIT_MS),
              "the talk row did not get its delivery result");

    /* The inbox keeps an hour here: an older row goes, the recent ones stay. */
    itest_exec_ok(seg_itest_db(),
                  "INSERT INTO inbox (consumer, event_id, received_at) "
                  "VALUES ('segmentation-webhook', 'itest-old', now() - interval '2 hours')",
                  0, NULL);
    cr_expect(db_wait_text("SELECT count(*)::text FROM inbox WHERE event_id = 'itest-old' AND "
                           "$1 <> $2",
                           "-", "0", ST_WAIT_MS),
              "an inbox row past the keep time was not pruned");
    cr_expect(db_wait_text("SELECT (count(*) > 0)::text FROM inbox WHERE $1 <> $2", "-", "true", 0),
              "recent inbox rows were pruned");

    kafka_producer_free(&p);
    seg_itest_finish();
}
