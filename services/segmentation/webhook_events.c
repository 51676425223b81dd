/* The `line.webhook` consumer (webhook_events.h). One record is one LINE
 * event; its effects (the friend row, the talk, the chat, the FriendEvents
 * and the profile request through the outbox) commit with its inbox row. */
#include "webhook_events.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "consumer.h"
#include "db.h"
#include "friend_events.h"
#include "friend_state.h"
#include "kafka.h"
#include "kizuna/v1/webhook.pb-c.h"
#include "log.h"
#include "metrics.h"
#include "profile_request.h"
#include "strmap.h"

#define WEBHOOK_EVENTS_NAME "segmentation-webhook"
#define WEBHOOK_TENANT_MAX 128
/* Known channels are remembered this long, saving a query per event: a
 * channel deleted meanwhile still gets its events applied for at most this
 * long. Past CACHE_MAX channels the cache starts again empty. */
#define WEBHOOK_CHANNEL_CACHE_MS 5000
#define WEBHOOK_CHANNEL_CACHE_MAX 10000

static struct webhook_events_options options;
static struct metric *events_total; /* kizuna_segmentation_webhook_events_total{type,result} */
static struct metric *events_lag;   /* kizuna_segmentation_webhook_lag_seconds{type} */

/* One record being handled. */
struct wh {
    const struct consumer_record *rec;
    const Kizuna__V1__WebhookEvent *we;
    const char *channel_id;
    const char *type; /* the metric's label: follow, unfollow, message, chat, other */
    char tenant[WEBHOOK_TENANT_MAX + 1];
    char ts[24]; /* we->timestamp as text, for SQL */
};

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    }
    return true;
}

int webhook_events_event_id(const struct kafka_message *msg, char *out, size_t cap,
                            const char **reason)
{
    if (!msg->value || msg->len == 0) {
        *reason = "no_envelope";
        return -1;
    }
    Kizuna__V1__WebhookEvent *we =
        kizuna__v1__webhook_event__unpack(NULL, msg->len, (const uint8_t *)msg->value);
    if (!we) {
        *reason = "not_protobuf";
        return -1;
    }
    int rc = -1;
    const char *channel = we->envelope ? we->envelope->channel_id : NULL;
    const char *weid = we->webhook_event_id;
    if (!weid || !weid[0]) {
        rc = consumer_event_id_envelope(msg, out, cap, reason);
        goto done;
    }
    if (!channel || !channel[0]) {
        *reason = "no_channel";
        goto done;
    }
    int n = snprintf(out, cap, "%s:%s", channel, weid);
    if (n < 0 || (size_t)n >= cap || n > CONSUMER_EVENT_ID_MAX || !printable(out, (size_t)n)) {
        *reason = "bad_event_id";
        goto done;
    }
    rc = 0;
done:
    kizuna__v1__webhook_event__free_unpacked(we, NULL);
    return rc;
}

/* A database error in a handler: data the database refuses (SQLSTATE class
 * 22 or 23) can never be stored, anything else may pass later. */
static enum consumer_verdict wh_db_failed(struct db *db, const struct wh *w, const char *what,
                                          const char **reason)
{
    const char *state = db_error_sqlstate(db);
    bool refused = strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0;
    log_warn(refused ? "webhook event refused by the database; skipped"
                     : "webhook event: database error; retrying",
             "what", what, "channel", w->channel_id, "event_id", w->rec->event_id, "error",
             db_error_message(db));
    if (refused) {
        *reason = "refused_by_db";
        return CONSUMER_MALFORMED;
    }
    return CONSUMER_RETRY;
}

static void wh_count(const struct wh *w, const char *result)
{
    metrics_add(events_total, 1, w->type, result);
}

/* --- the friend's follow / unfollow ---------------------------------------------- */

/* One outbox row (common/outbox.h's columns), written by wh_friend_write. */
#define WH_ROWS_MAX 3 /* FriendAdded, FriendUnblocked, the profile request */
struct wh_row {
    const char *topic;
    char key[160];
    uint8_t *buf; /* malloc'd */
    size_t len;
};

static struct wh_row wh_row_friend(const struct friend_record *fr)
{
    struct wh_row r = {.topic = FRIEND_EVENTS_TOPIC, .buf = fr->buf, .len = fr->len};
    snprintf(r.key, sizeof r.key, "%s", fr->key);
    return r;
}

/* The friend's new state and its n (0..WH_ROWS_MAX) outbox rows in one
 * statement: the follow path's round trips are what bound its rate
 * (bench/segmentation/follow). The rows go into the service's `outbox`
 * exactly as outbox_enqueue writes them (topic text, key and payload
 * bytea), in order. */
#define WH_FRIEND_UPDATE                                                                          \
    "UPDATE friends SET "                                                                         \
    "added_at = CASE WHEN $5::boolean THEN to_timestamp($4::bigint / 1000.0) ELSE added_at END, " \
    "blocked = CASE WHEN $6::boolean THEN $2::boolean ELSE blocked END, "                         \
    "blocked_at = CASE WHEN NOT $6::boolean THEN blocked_at "                                     \
    "WHEN $2::boolean THEN to_timestamp($4::bigint / 1000.0) ELSE NULL END, "                     \
    "state_event_ms = $3::bigint WHERE id = $1::bigint"
#define WH_FRIEND_WITH                              \
    "WITH f AS (" WH_FRIEND_UPDATE " RETURNING 1) " \
    "INSERT INTO outbox (topic, key, payload) VALUES ($7, $8, $9)"
static const char *const wh_friend_sql[WH_ROWS_MAX + 1] = {
    WH_FRIEND_UPDATE,
    WH_FRIEND_WITH,
    WH_FRIEND_WITH ", ($10, $11, $12)",
    WH_FRIEND_WITH ", ($10, $11, $12), ($13, $14, $15)",
};

/* The rows alone, for a friend created with its state by this event. */
static const char *const wh_outbox_sql[WH_ROWS_MAX + 1] = {
    NULL,
    "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3)",
    "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3), ($4, $5, $6)",
    "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3), ($4, $5, $6), ($7, $8, $9)",
};

/* update false: the rows only (n > 0), numbered from $1. */
static enum db_status wh_friend_write(struct db *db, const char *friend_id,
                                      const struct friend_decision *d, const char *ts,
                                      const struct wh_row *rows, int n, bool update)
{
    char state_ms[24];
    snprintf(state_ms, sizeof state_ms, "%" PRId64, d->state_event_ms);
    const char *values[6 + 3 * WH_ROWS_MAX] = {
        friend_id, d->blocked ? "true" : "false",      state_ms,
        ts,        d->set_added_at ? "true" : "false", d->apply ? "true" : "false"};
    int lengths[6 + 3 * WH_ROWS_MAX] = {0};
    int binary[6 + 3 * WH_ROWS_MAX] = {0};
    for (int i = 0; i < n; i++) {
        int k = 6 + 3 * i;
        values[k] = rows[i].topic;
        values[k + 1] = rows[i].key;
        lengths[k + 1] = (int)strlen(rows[i].key);
        binary[k + 1] = 1;
        values[k + 2] = (const char *)rows[i].buf;
        lengths[k + 2] = (int)rows[i].len;
        binary[k + 2] = 1;
    }
    if (!update)
        return db_execv(db, wh_outbox_sql[n], 3 * n, values + 6, lengths + 6, binary + 6, false,
                        NULL);
    return db_execv(db, wh_friend_sql[n], 6 + 3 * n, values, lengths, binary, false, NULL);
}

static enum consumer_verdict wh_friend_state(struct db *db, struct wh *w, const char *user_id,
                                             const char **reason)
{
    const Kizuna__V1__WebhookEvent *we = w->we;
    bool follow = we->event_case == KIZUNA__V1__WEBHOOK_EVENT__EVENT_FOLLOW;
    struct friend_change change = {
        .follow = follow,
        .is_unblocked = follow && we->follow && we->follow->is_unblocked,
        .standby = we->mode == KIZUNA__V1__EVENT_MODE__EVENT_MODE_STANDBY,
        .has_reply_token = we->reply_token && we->reply_token[0],
        .timestamp_ms = we->timestamp,
        .now_ms = clock_wall_ms(),
    };
    /* A friend not seen before is created with this event already applied
     * (the decision for no row), which spares the update of a row just made. */
    struct friend_state none = {0};
    struct friend_decision fresh = friend_state_decide(&none, &change);
    char fresh_ms[24];
    snprintf(fresh_ms, sizeof fresh_ms, "%" PRId64, fresh.apply ? fresh.state_event_ms : 0);
    const char *lock_params[] = {w->channel_id,
                                 user_id,
                                 fresh.apply && fresh.blocked ? "true" : "false",
                                 w->ts,
                                 fresh.apply && fresh.set_added_at ? "true" : "false",
                                 fresh_ms};
    struct db_result *res = NULL;
    /* The row, created if new, locked: one friend's events apply one at a time. */
    enum db_status st = db_exec(
        db,
        "WITH ins AS (INSERT INTO friends (channel_id, user_id, blocked, added_at, blocked_at, "
        "state_event_ms) VALUES ($1, $2, $3::boolean, "
        "CASE WHEN $5::boolean THEN to_timestamp($4::bigint / 1000.0) END, "
        "CASE WHEN $3::boolean THEN to_timestamp($4::bigint / 1000.0) END, $6::bigint) "
        "ON CONFLICT (channel_id, user_id) DO NOTHING "
        "RETURNING id, blocked, added_at IS NOT NULL AS has_added, state_event_ms, false "
        "AS existed) "
        "SELECT id, blocked, has_added, state_event_ms, existed FROM ins UNION ALL "
        "SELECT * FROM (SELECT id, blocked, added_at IS NOT NULL, state_event_ms, true "
        "FROM friends WHERE channel_id = $1 AND user_id = $2 FOR UPDATE) f",
        6, lock_params, &res);
    if (st != DB_OK)
        return wh_db_failed(db, w, "friend lock", reason);
    if (db_result_rows(res) != 1) {
        /* Inserted by another transaction after this statement began. */
        db_result_free(&res);
        return CONSUMER_RETRY;
    }
    char friend_id[24];
    snprintf(friend_id, sizeof friend_id, "%s", db_result_value(res, 0, 0));
    bool created = strcmp(db_result_value(res, 0, 4), "f") == 0;
    struct friend_state before = {
        .exists = true,
        .blocked = strcmp(db_result_value(res, 0, 1), "t") == 0,
        .has_added_at = strcmp(db_result_value(res, 0, 2), "t") == 0,
        .state_event_ms = strtoll(db_result_value(res, 0, 3), NULL, 10),
    };
    db_result_free(&res);
    struct friend_decision d = created ? fresh : friend_state_decide(&before, &change);

    if (!d.apply) {
        if (!created && d.set_added_at &&
            wh_friend_write(db, friend_id, &d, w->ts, NULL, 0, true) != DB_OK)
            return wh_db_failed(db, w, "friend update", reason);
        wh_count(w, "stale");
        char ts[24], newest[24];
        snprintf(ts, sizeof ts, "%" PRId64, we->timestamp);
        snprintf(newest, sizeof newest, "%" PRId64, before.state_event_ms);
        log_info("webhook event older than the friend's newest follow/unfollow; state kept",
                 "channel", w->channel_id, "event_id", w->rec->event_id, "type", w->type,
                 "timestamp", ts, "newest", newest);
        return CONSUMER_DONE;
    }

    /* The events, packed first: they go in with the row, one statement. */
    const char *causation = we->envelope && we->envelope->event_id ? we->envelope->event_id : "";
    struct friend_ref ref = {.tenant_id = w->tenant,
                             .channel_id = w->channel_id,
                             .user_id = user_id,
                             .causation_id = causation};
    const char *weid =
        we->webhook_event_id && we->webhook_event_id[0] ? we->webhook_event_id : w->rec->event_id;
    int64_t now = clock_wall_ms();
    struct wh_row rows[WH_ROWS_MAX];
    int n = 0, rc = 0;
    struct friend_record fr;
    if (d.emit_added) {
        rc |= friend_event_added_record(&ref, now, d.added_with_token ? we->reply_token : NULL,
                                        we->timestamp, d.added_unblocked, weid, &fr);
        if (fr.buf)
            rows[n++] = wh_row_friend(&fr);
    }
    if (d.emit_unblocked) {
        rc |= friend_event_unblocked_record(&ref, now, &fr);
        if (fr.buf)
            rows[n++] = wh_row_friend(&fr);
    }
    if (d.emit_blocked) {
        rc |= friend_event_blocked_record(&ref, now, &fr);
        if (fr.buf)
            rows[n++] = wh_row_friend(&fr);
    }
    if (d.request_profile) {
        struct wh_row r = {.topic = PROFILE_REQUEST_TOPIC};
        snprintf(r.key, sizeof r.key, "%s", w->channel_id);
        r.buf =
            profile_request_pack(w->tenant, w->channel_id, user_id, weid, causation, now, &r.len);
        rc |= r.buf ? 0 : -1;
        if (r.buf)
            rows[n++] = r;
    }
    enum consumer_verdict v = CONSUMER_DONE;
    if (rc != 0) {
        log_warn("webhook event: out of memory packing its events; retrying", "event_id",
                 w->rec->event_id);
        v = CONSUMER_RETRY;
    } else if ((!created || n > 0) &&
               wh_friend_write(db, friend_id, &d, w->ts, rows, n, !created) != DB_OK) {
        v = wh_db_failed(db, w, "friend update", reason);
    } else {
        wh_count(w, "applied");
        log_debug("friend state applied", "channel", w->channel_id, "event_id", w->rec->event_id,
                  "type", w->type);
    }
    for (int i = 0; i < n; i++)
        free(rows[i].buf);
    return v;
}

/* --- a message from a friend --------------------------------------------------------- */

static enum consumer_verdict wh_message(struct db *db, struct wh *w, const char *user_id,
                                        const char **reason)
{
    const Kizuna__V1__MessageContent *m = w->we->message;
    const char *mtype = m && m->type && m->type[0] ? m->type : "unknown";
    const char *text = NULL;
    if (m && m->content_case == KIZUNA__V1__MESSAGE_CONTENT__CONTENT_TEXT && m->text)
        text = m->text->text;
    const char *mid = m && m->id && m->id[0] ? m->id : NULL;
    const char *weid =
        w->we->webhook_event_id && w->we->webhook_event_id[0] ? w->we->webhook_event_id : NULL;
    const char *params[] = {w->channel_id, user_id, w->ts, mtype, text, mid, weid};
    /* The friend (known only from this message if new) and the talk row. */
    enum db_status st =
        db_exec(db,
                "WITH f AS (INSERT INTO friends (channel_id, user_id, last_message_at) "
                "VALUES ($1, $2, to_timestamp($3::bigint / 1000.0)) "
                "ON CONFLICT (channel_id, user_id) DO UPDATE SET last_message_at = "
                "GREATEST(friends.last_message_at, EXCLUDED.last_message_at) RETURNING id) "
                "INSERT INTO talk (friend_id, direction, at, message_type, text, "
                "line_message_id, webhook_event_id) "
                "SELECT id, 'in', to_timestamp($3::bigint / 1000.0), $4, $5, $6, $7 FROM f",
                7, params, NULL);
    if (st != DB_OK)
        return wh_db_failed(db, w, "message", reason);
    wh_count(w, "applied");
    return CONSUMER_DONE;
}

/* --- groups and rooms ------------------------------------------------------------------- */

static enum consumer_verdict wh_chat(struct db *db, struct wh *w, const char **reason)
{
    const Kizuna__V1__Source *src = w->we->source;
    bool group = src->type == KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_GROUP;
    const char *chat_id = group ? src->group_id : src->room_id;
    if (!chat_id || !chat_id[0]) {
        wh_count(w, "ignored");
        return CONSUMER_DONE;
    }
    const char *joined = NULL; /* NULL: the event says nothing about membership */
    if (w->we->event_case == KIZUNA__V1__WEBHOOK_EVENT__EVENT_JOIN)
        joined = "true";
    else if (w->we->event_case == KIZUNA__V1__WEBHOOK_EVENT__EVENT_LEAVE)
        joined = "false";
    const char *params[] = {w->channel_id, chat_id, group ? "group" : "room", joined, w->ts};
    /* Membership follows the newest join/leave; last_event_at only grows. */
    enum db_status st = db_exec(
        db,
        "INSERT INTO chats (channel_id, chat_id, type, joined, last_event_at) "
        "VALUES ($1, $2, $3, COALESCE($4::boolean, true), to_timestamp($5::bigint / 1000.0)) "
        "ON CONFLICT (channel_id, chat_id) DO UPDATE SET "
        "joined = CASE WHEN $4::boolean IS NOT NULL AND EXCLUDED.last_event_at >= "
        "chats.last_event_at THEN $4::boolean ELSE chats.joined END, "
        "last_event_at = GREATEST(chats.last_event_at, EXCLUDED.last_event_at)",
        5, params, NULL);
    if (st != DB_OK)
        return wh_db_failed(db, w, "chat", reason);
    wh_count(w, "applied");
    return CONSUMER_DONE;
}

/* --- the handler ------------------------------------------------------------------------- */

struct channel_entry {
    char tenant[WEBHOOK_TENANT_MAX + 1];
    bool deleted;
    int64_t at_ms;
};

/* Shared by the consumer threads. */
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct strmap *cache;

/* 1 known, 0 deleted (tenant filled), -1 not cached. */
static int wh_channel_cached(struct wh *w, int64_t now)
{
    int rc = -1;
    pthread_mutex_lock(&cache_mu);
    const struct channel_entry *e = cache ? strmap_get(cache, w->channel_id) : NULL;
    if (e && now - e->at_ms <= WEBHOOK_CHANNEL_CACHE_MS) {
        snprintf(w->tenant, sizeof w->tenant, "%s", e->tenant);
        rc = e->deleted ? 0 : 1;
    }
    pthread_mutex_unlock(&cache_mu);
    return rc;
}

static void wh_channel_remember(const struct wh *w, bool deleted, int64_t now)
{
    struct channel_entry *e = calloc(1, sizeof *e);
    if (!e)
        return;
    snprintf(e->tenant, sizeof e->tenant, "%s", w->tenant);
    e->deleted = deleted;
    e->at_ms = now;
    pthread_mutex_lock(&cache_mu);
    if (cache && strmap_size(cache) >= WEBHOOK_CHANNEL_CACHE_MAX &&
        !strmap_get(cache, w->channel_id))
        strmap_free(&cache, free);
    if (!cache)
        cache = strmap_new();
    if (cache) {
        free(strmap_remove(cache, w->channel_id));
        if (strmap_put(cache, w->channel_id, e) == 0)
            e = NULL;
    }
    pthread_mutex_unlock(&cache_mu);
    free(e);
}

/* The channel's tenant: 1 known, 0 deleted, -1 unknown, -2 database error. */
static int wh_channel(struct db *db, struct wh *w)
{
    int64_t now = clock_mono_ms();
    int cached = wh_channel_cached(w, now);
    if (cached >= 0)
        return cached;
    const char *params[] = {w->channel_id};
    struct db_result *res = NULL;
    if (db_exec(db, "SELECT tenant_id, deleted FROM channels WHERE channel_id = $1", 1, params,
                &res) != DB_OK)
        return -2;
    int rc = -1;
    if (db_result_rows(res) == 1) {
        snprintf(w->tenant, sizeof w->tenant, "%s", db_result_value(res, 0, 0));
        rc = strcmp(db_result_value(res, 0, 1), "t") == 0 ? 0 : 1;
        wh_channel_remember(w, rc == 0, now);
    }
    db_result_free(&res);
    return rc;
}

static const char *wh_type_label(const Kizuna__V1__WebhookEvent *we)
{
    switch (we->event_case) {
    case KIZUNA__V1__WEBHOOK_EVENT__EVENT_FOLLOW:
        return "follow";
    case KIZUNA__V1__WEBHOOK_EVENT__EVENT_UNFOLLOW:
        return "unfollow";
    case KIZUNA__V1__WEBHOOK_EVENT__EVENT_MESSAGE:
        return "message";
    case KIZUNA__V1__WEBHOOK_EVENT__EVENT_JOIN:
        return "join";
    case KIZUNA__V1__WEBHOOK_EVENT__EVENT_LEAVE:
        return "leave";
    default:
        return "other";
    }
}

static enum consumer_verdict wh_dispatch(struct db *db, struct wh *w, const char **reason)
{
    int known = wh_channel(db, w);
    if (known == -2)
        return wh_db_failed(db, w, "channel lookup", reason);
    if (known == -1) {
        int64_t since = w->we->received_at > 0 ? w->we->received_at : w->rec->msg->timestamp_ms;
        if (clock_wall_ms() - since <= options.unknown_channel_grace_ms) {
            wh_count(w, "channel_unknown_wait");
            return CONSUMER_RETRY; /* the channels consumer may not have it yet */
        }
        wh_count(w, "channel_unknown");
        log_warn("webhook event for a channel never heard of; skipped", "channel", w->channel_id,
                 "event_id", w->rec->event_id);
        *reason = "unknown_channel";
        return CONSUMER_MALFORMED;
    }
    if (known == 0) {
        wh_count(w, "channel_deleted");
        return CONSUMER_DONE;
    }

    const Kizuna__V1__Source *src = w->we->source;
    if (src && (src->type == KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_GROUP ||
                src->type == KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_ROOM))
        return wh_chat(db, w, reason);
    const char *user_id =
        src && src->type == KIZUNA__V1__SOURCE_TYPE__SOURCE_TYPE_USER ? src->user_id : NULL;
    if (!user_id || !user_id[0] || strlen(user_id) > 64) {
        wh_count(w, "ignored");
        return CONSUMER_DONE;
    }
    switch (w->we->event_case) {
    case KIZUNA__V1__WEBHOOK_EVENT__EVENT_FOLLOW:
    case KIZUNA__V1__WEBHOOK_EVENT__EVENT_UNFOLLOW:
        return wh_friend_state(db, w, user_id, reason);
    case KIZUNA__V1__WEBHOOK_EVENT__EVENT_MESSAGE:
        return wh_message(db, w, user_id, reason);
    default:
        wh_count(w, "ignored");
        return CONSUMER_DONE;
    }
}

static enum consumer_verdict webhook_events_handle(void *ctx, struct db *db,
                                                   const struct consumer_record *rec,
                                                   const char **reason)
{
    (void)ctx;
    const struct kafka_message *msg = rec->msg;
    Kizuna__V1__WebhookEvent *we =
        kizuna__v1__webhook_event__unpack(NULL, msg->len, (const uint8_t *)msg->value);
    if (!we) {
        *reason = "bad_payload";
        return CONSUMER_MALFORMED;
    }
    struct wh w = {.rec = rec, .we = we, .type = wh_type_label(we)};
    w.channel_id = we->envelope ? we->envelope->channel_id : NULL;
    enum consumer_verdict v;
    if (!w.channel_id || !w.channel_id[0] || strlen(w.channel_id) > 64) {
        *reason = "no_channel";
        v = CONSUMER_MALFORMED;
    } else {
        snprintf(w.ts, sizeof w.ts, "%" PRId64, we->timestamp);
        v = wh_dispatch(db, &w, reason);
        if (v == CONSUMER_DONE && we->received_at > 0)
            metrics_observe(events_lag, (double)(clock_wall_ms() - we->received_at) / 1000.0,
                            w.type);
    }
    kizuna__v1__webhook_event__free_unpacked(we, NULL);
    return v;
}

int webhook_events_start(struct service *svc, struct outbox_relay *relay,
                         const struct webhook_events_options *opts, char *errstr, size_t errcap)
{
    static const double lag_buckets[] = {0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5, 30};
    options = *opts;
    events_total = metrics_counter("kizuna_segmentation_webhook_events_total",
                                   "line.webhook events handled, by type (follow, unfollow, "
                                   "message, join, leave, other) and result (applied, stale, "
                                   "ignored, channel_deleted, channel_unknown_wait, "
                                   "channel_unknown)",
                                   "type,result");
    events_lag = metrics_histogram("kizuna_segmentation_webhook_lag_seconds",
                                   "from ingest's receipt of a webhook to its effects being "
                                   "handled (before the commit), by type",
                                   "type", lag_buckets, sizeof lag_buckets / sizeof lag_buckets[0]);
    static const char *const topics[] = {WEBHOOK_EVENTS_TOPIC, NULL};
    int n = opts->consumers > 0 ? opts->consumers : 1;
    for (int i = 0; i < n; i++) {
        struct consumer *c =
            consumer_start(&(struct consumer_options){.name = WEBHOOK_EVENTS_NAME,
                                                      .topics = topics,
                                                      .group = opts->group,
                                                      .handler = webhook_events_handle,
                                                      .event_id = webhook_events_event_id,
                                                      .service = svc,
                                                      .relay = relay,
                                                      .from_beginning = true},
                           errstr, errcap);
        if (!c)
            return -1;
    }
    return 0;
}
