/* The `delivery.results` consumer (results.h). */
#include "results.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "consumer.h"
#include "db.h"
#include "friend_events.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"

#define RESULTS_NAME "segmentation-results"

static struct metric *results_total; /* kizuna_segmentation_results_total{result} */

const char *results_status_name(Kizuna__V1__DeliveryStatus status)
{
    switch (status) {
    case KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT:
        return "sent";
    case KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED:
        return "failed";
    case KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_QUOTA_EXCEEDED:
        return "quota_exceeded";
    case KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_RETRY_EXHAUSTED:
        return "retry_exhausted";
    case KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_REPLY_TOKEN_EXPIRED:
        return "reply_token_expired";
    case KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_INVALID:
        return "invalid";
    default:
        return "unknown";
    }
}

bool results_is_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* A database error: refused data (SQLSTATE 22, 23) is skipped, anything
 * else retried. */
static enum consumer_verdict results_db_failed(struct db *db, const struct consumer_record *rec,
                                               const char *what, const char **reason)
{
    const char *state = db_error_sqlstate(db);
    bool refused = strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0;
    log_warn(refused ? "delivery result refused by the database; skipped"
                     : "delivery result: database error; retrying",
             "what", what, "event_id", rec->event_id, "error", db_error_message(db));
    if (refused) {
        *reason = "refused_by_db";
        return CONSUMER_MALFORMED;
    }
    return CONSUMER_RETRY;
}

static enum consumer_verdict results_profile(struct db *db, const struct consumer_record *rec,
                                             const Kizuna__V1__DeliveryResult *r,
                                             const char *channel_id, const char **reason)
{
    const Kizuna__V1__Profile *p = r->profile;
    const char *user = p->user_id && p->user_id[0] ? p->user_id : r->to;
    if (!user || !user[0]) {
        metrics_add(results_total, 1, "ignored");
        return CONSUMER_DONE;
    }
    char at[24];
    snprintf(at, sizeof at, "%" PRId64, r->finished_at > 0 ? r->finished_at : clock_wall_ms());
    const char *params[] = {channel_id,  user, p->display_name, p->picture_url, p->status_message,
                            p->language, at};
    struct db_result *res = NULL;
    /* A profile fetched before the stored one changes nothing. */
    enum db_status st =
        db_exec(db,
                "UPDATE friends f SET display_name = NULLIF($3, ''), picture_url = NULLIF($4, ''), "
                "status_message = NULLIF($5, ''), language = NULLIF($6, ''), "
                "profile_at = to_timestamp($7::bigint / 1000.0) "
                "FROM channels c WHERE f.channel_id = $1 AND f.user_id = $2 "
                "AND c.channel_id = f.channel_id AND NOT c.deleted "
                "AND (f.profile_at IS NULL OR f.profile_at <= to_timestamp($7::bigint / 1000.0)) "
                "RETURNING c.tenant_id",
                7, params, &res);
    if (st != DB_OK)
        return results_db_failed(db, rec, "profile", reason);
    if (db_result_rows(res) != 1) {
        db_result_free(&res);
        metrics_add(results_total, 1, "profile_ignored");
        return CONSUMER_DONE;
    }
    char tenant[160];
    snprintf(tenant, sizeof tenant, "%s", db_result_value(res, 0, 0));
    db_result_free(&res);
    struct friend_ref ref = {.tenant_id = tenant,
                             .channel_id = channel_id,
                             .user_id = user,
                             .causation_id = r->envelope->event_id};
    if (friend_event_profile_updated(db, &ref, p->display_name, p->picture_url, p->status_message,
                                     p->language) != 0)
        return results_db_failed(db, rec, "FriendProfileUpdated", reason);
    metrics_add(results_total, 1, "profile");
    log_debug("friend profile stored", "channel", channel_id, "request_id", r->request_id);
    return CONSUMER_DONE;
}

static enum consumer_verdict results_talk(struct db *db, const struct consumer_record *rec,
                                          const Kizuna__V1__DeliveryResult *r, const char **reason)
{
    const char *params[] = {r->request_id, results_status_name(r->status), r->error_message};
    struct db_result *res = NULL;
    if (db_exec(db,
                "UPDATE talk SET status = $2, error = NULLIF($3, '') "
                "WHERE request_id = $1::uuid AND direction = 'out'",
                3, params, &res) != DB_OK)
        return results_db_failed(db, rec, "talk", reason);
    long n = db_result_affected(res);
    db_result_free(&res);
    metrics_add(results_total, 1, n > 0 ? "talk" : "ignored");
    return CONSUMER_DONE;
}

static enum consumer_verdict results_handle(void *ctx, struct db *db,
                                            const struct consumer_record *rec, const char **reason)
{
    (void)ctx;
    const struct kafka_message *msg = rec->msg;
    Kizuna__V1__DeliveryResult *r =
        kizuna__v1__delivery_result__unpack(NULL, msg->len, (const uint8_t *)msg->value);
    if (!r) {
        *reason = "bad_payload";
        return CONSUMER_MALFORMED;
    }
    enum consumer_verdict v = CONSUMER_DONE;
    const char *channel_id = r->envelope ? r->envelope->channel_id : NULL;
    if (r->kind == KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE) {
        if (r->status == KIZUNA__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT && r->profile &&
            channel_id && channel_id[0])
            v = results_profile(db, rec, r, channel_id, reason);
        else
            metrics_add(results_total, 1, "ignored");
    } else if (results_is_uuid(r->request_id)) {
        v = results_talk(db, rec, r, reason);
    } else {
        metrics_add(results_total, 1, "ignored");
    }
    kizuna__v1__delivery_result__free_unpacked(r, NULL);
    return v;
}

int results_start(struct service *svc, struct outbox_relay *relay, const char *group, char *errstr,
                  size_t errcap)
{
    results_total = metrics_counter("kizuna_segmentation_results_total",
                                    "delivery.results handled: profile (stored), profile_ignored "
                                    "(unknown friend or an older profile), talk (a talk row's "
                                    "status set), ignored",
                                    "result");
    static const char *const topics[] = {RESULTS_TOPIC, NULL};
    struct consumer *c = consumer_start(&(struct consumer_options){.name = RESULTS_NAME,
                                                                   .topics = topics,
                                                                   .group = group,
                                                                   .handler = results_handle,
                                                                   .service = svc,
                                                                   .relay = relay,
                                                                   .from_beginning = true},
                                        errstr, errcap);
    return c ? 0 : -1;
}
