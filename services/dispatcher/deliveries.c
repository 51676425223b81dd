/* The delivery log in PostgreSQL: the intake's insert, recovery and
 * takeover of pending rows, the writer thread that records outcomes (with
 * the outbox row and the quota usage in the same transaction), and the
 * admin API's listing. All SQL is parameterised; times cross as unix ms. */
#include "deliveries.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "pgarray.h"
#include "strmap.h"
#include "utf8.h"

#define WRITER_BATCH_MAX 1000
#define WRITER_RETRY_MS 500
#define WRITER_LINGER_MS 5 /* gather outcomes this long before a transaction */
#define TAKEOVER_BATCH "1000"

/* --- names ------------------------------------------------------------------ */

const char *delivery_status_name(Kizuna__V1__DeliveryStatus s)
{
    switch (s) {
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
        return "failed";
    }
}

const char *delivery_kind_name(Kizuna__V1__SendKind k)
{
    switch (k) {
    case KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY:
        return "reply";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH:
        return "push";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST:
        return "multicast";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST:
        return "broadcast";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST:
        return "narrowcast";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE:
        return "profile";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_LINK:
        return "rich_menu_link";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_UNLINK:
        return "rich_menu_unlink";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_LINK:
        return "rich_menu_bulk_link";
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_UNLINK:
        return "rich_menu_bulk_unlink";
    default:
        return "unspecified";
    }
}

bool delivery_status_valid(const char *name)
{
    static const char *const names[] = {"queued",
                                        "retrying",
                                        "sent",
                                        "failed",
                                        "quota_exceeded",
                                        "retry_exhausted",
                                        "reply_token_expired",
                                        "invalid"};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* --- in memory -------------------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct delivery *delivery_from_bytes(const void *bytes, size_t len, const char *fallback_channel,
                                     char *errstr, size_t errcap)
{
    Kizuna__V1__SendRequest *req =
        kizuna__v1__send_request__unpack(NULL, len, (const uint8_t *)bytes);
    if (!req) {
        snprintf(errstr, errcap, "not a kizuna.v1.SendRequest");
        return NULL;
    }
    const char *rid = req->request_id ? req->request_id : "";
    const char *channel = req->envelope && req->envelope->channel_id && req->envelope->channel_id[0]
                              ? req->envelope->channel_id
                          : fallback_channel ? fallback_channel
                                             : "";
    const char *tenant = req->envelope && req->envelope->tenant_id ? req->envelope->tenant_id : "";
    if (!rid[0] || strlen(rid) > DELIVERY_ID_MAX) {
        snprintf(errstr, errcap, "request_id missing or longer than %d bytes", DELIVERY_ID_MAX);
        goto fail;
    }
    /* Every string that becomes a text column must be UTF-8: PostgreSQL
     * refuses anything else, and one refused row would fail its whole intake
     * batch again on every retry. Such a request is malformed, like one
     * without a request_id (its id may not even be printable). */
    if (!utf8_valid(rid, strlen(rid))) {
        snprintf(errstr, errcap, "request_id is not valid UTF-8");
        goto fail;
    }
    const char *texts[] = {channel, tenant, req->to, req->origin_type, req->origin_id};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (texts[i] && !utf8_valid(texts[i], strlen(texts[i]))) {
            snprintf(errstr, errcap,
                     "request %s: channel_id, tenant_id, to, origin_type or origin_id is not "
                     "valid UTF-8",
                     rid);
            goto fail;
        }
    if (strlen(channel) > CHANNEL_ID_MAX || strlen(tenant) >= AUTH_FIELD_MAX) {
        snprintf(errstr, errcap, "request %s: channel_id or tenant_id too long", rid);
        goto fail;
    }
    struct delivery *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(errstr, errcap, "out of memory");
        goto fail;
    }
    d->req = req;
    snprintf(d->request_id, sizeof d->request_id, "%s", rid);
    snprintf(d->channel_id, sizeof d->channel_id, "%s", channel);
    snprintf(d->tenant_id, sizeof d->tenant_id, "%s", tenant);
    d->received_ms = wall_ms();
    return d;
fail:
    kizuna__v1__send_request__free_unpacked(req, NULL);
    return NULL;
}

void delivery_free(struct delivery *d)
{
    if (!d)
        return;
    line_request_clear(&d->call);
    if (d->req)
        kizuna__v1__send_request__free_unpacked(d->req, NULL);
    free(d);
}

void delivery_record_free(struct delivery_record *r)
{
    if (!r)
        return;
    free(r->line_request_id);
    free(r->accepted_request_id);
    free(r->error_message);
    free(r->error_details_json);
    free(r->payload);
    free(r->key);
    free(r);
}

/* --- intake, recovery, takeover ---------------------------------------------- */

static int recipient_count(const Kizuna__V1__SendRequest *req)
{
    switch (req->kind) {
    case KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_LINK:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_RICH_MENU_BULK_UNLINK:
        return (int)req->n_recipients;
    case KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST:
    case KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST:
        return 0;
    default:
        return 1;
    }
}

/* The rows of a whole batch in one statement: one round trip, one parse
 * and plan, whatever the batch size. The primary key (request_id) is the
 * claim: a request seen before conflicts and inserts nothing, and only a
 * new row gets its `pending` row (this replica as owner). Rows are
 * inserted in batch order, so seq (the recovery order) follows the topic's.
 * Returns the claimed request ids through claimed[] (1 new, 0 seen
 * before). */
int deliveries_intake_batch(struct db *db, const char *instance, struct delivery *const *ds,
                            const void *const *bytes, const size_t *lens, size_t n, int *claimed)
{
    enum { COLS = 11 };
    struct pgarray col[COLS];
    for (int c = 0; c < COLS; c++)
        pgarray_init(&col[c], c == 8 ? PGARRAY_BYTEA_OID : PGARRAY_TEXT_OID);
    struct strmap *index = strmap_new();
    int rc = DB_FATAL;
    size_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        claimed[i] = 0;
        const struct delivery *d = ds[i];
        /* A request_id twice in one batch: the first copy is the claim, the
         * second is "seen before". */
        if (!d || !index || strmap_get(index, d->request_id))
            continue;
        if (strmap_put(index, d->request_id, &claimed[i]) != 0)
            goto out;
        const Kizuna__V1__SendRequest *req = d->req;
        pgarray_add_text(&col[0], d->request_id);
        pgarray_add_text(&col[1], d->tenant_id);
        pgarray_add_text(&col[2], d->channel_id);
        pgarray_add_text(&col[3], delivery_kind_name(req->kind));
        pgarray_add_text(&col[4], req->to ? req->to : "");
        pgarray_add_ll(&col[5], recipient_count(req));
        pgarray_add_text(&col[6], req->origin_type ? req->origin_type : "");
        pgarray_add_text(&col[7], req->origin_id ? req->origin_id : "");
        pgarray_add(&col[8], bytes[i], lens[i]);
        pgarray_add_ll(&col[9], req->envelope ? req->envelope->occurred_at : 0);
        pgarray_add_ll(&col[10], d->received_ms);
        rows++;
    }
    if (!index)
        goto out;
    if (rows == 0) {
        rc = DB_OK;
        goto out;
    }
    const char *values[COLS + 1];
    int lengths[COLS + 1] = {0}, binary[COLS + 1] = {0};
    for (int c = 0; c < COLS; c++) {
        values[c] = pgarray_finish(&col[c], &lengths[c]);
        binary[c] = 1;
        if (!values[c])
            goto out;
    }
    values[COLS] = instance;
    struct db_result *r = NULL;
    enum db_status st = db_execv(
        db,
        "WITH input AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
        "  $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[], $10::text[], $11::text[]) "
        "  WITH ORDINALITY AS t(request_id, tenant_id, channel_id, kind, recipient, "
        "  recipient_count, origin_type, origin_id, request, requested, received, ord)), "
        "ins AS (INSERT INTO deliveries (request_id, tenant_id, channel_id, kind, status, "
        "  recipient, recipient_count, origin_type, origin_id, requested_at, received_at) "
        "  SELECT i.request_id, i.tenant_id, i.channel_id, i.kind, 'queued', i.recipient, "
        "  i.recipient_count::int, i.origin_type, i.origin_id, "
        "  CASE WHEN i.requested::bigint > 0 THEN to_timestamp(i.requested::bigint / 1000.0) END, "
        "  to_timestamp(i.received::bigint / 1000.0) "
        "  FROM input i ORDER BY i.ord "
        "  ON CONFLICT (request_id) DO NOTHING RETURNING request_id), "
        "own AS (INSERT INTO pending (request_id, owner, request) "
        "  SELECT i.request_id, $12, i.request FROM input i JOIN ins USING (request_id)) "
        "SELECT request_id FROM ins",
        COLS + 1, values, lengths, binary, false, &r);
    if (st != DB_OK) {
        rc = st;
        goto out;
    }
    for (int i = 0; i < db_result_rows(r); i++) {
        int *slot = strmap_get(index, db_result_value(r, i, 0));
        if (slot)
            *slot = 1;
    }
    db_result_free(&r);
    rc = DB_OK;
out:
    strmap_free(&index, NULL);
    for (int c = 0; c < COLS; c++)
        pgarray_free(&col[c]);
    return rc;
}

#define PENDING_COLUMNS                                                          \
    "request_id, channel_id, p.request, attempts::text, "                        \
    "COALESCE((extract(epoch FROM first_attempt_at) * 1000)::bigint, 0)::text, " \
    "COALESCE((extract(epoch FROM next_attempt_at) * 1000)::bigint, 0)::text, "  \
    "((extract(epoch FROM received_at) * 1000)::bigint)::text"

static long long text_ll(const struct db_result *r, int row, int col)
{
    const char *s = db_result_value(r, row, col);
    char *end = NULL;
    long long v = s ? strtoll(s, &end, 10) : 0;
    return end && *end == '\0' ? v : 0;
}

/* Rows come back in binary format (for the bytea); every other column was
 * cast to text, whose binary form is its text. */
static long pending_rows_hand_over(struct db_result *r, void (*fn)(void *, struct delivery *),
                                   void *ctx)
{
    long n = 0;
    for (int i = 0; i < db_result_rows(r); i++) {
        char errstr[256] = "";
        const char *rid = db_result_value(r, i, 0);
        struct delivery *d =
            delivery_from_bytes(db_result_value(r, i, 2), db_result_length(r, i, 2),
                                db_result_value(r, i, 1), errstr, sizeof errstr);
        if (!d) {
            log_error("pending delivery does not decode; left in place", "request_id", rid, "error",
                      errstr);
            continue;
        }
        d->recovered = true;
        d->attempts = (int)text_ll(r, i, 3);
        d->first_attempt_ms = text_ll(r, i, 4);
        d->not_before_ms = text_ll(r, i, 5);
        d->received_ms = text_ll(r, i, 6);
        fn(ctx, d);
        n++;
    }
    return n;
}

long deliveries_recover(struct db *db, const char *instance,
                        void (*fn)(void *ctx, struct delivery *d), void *ctx)
{
    const char *values[] = {instance};
    struct db_result *r = NULL;
    enum db_status st = db_execv(db,
                                 "SELECT " PENDING_COLUMNS " FROM deliveries d "
                                 "JOIN pending p USING (request_id) "
                                 "WHERE p.owner = $1 ORDER BY d.seq",
                                 1, values, NULL, NULL, true, &r);
    if (st != DB_OK)
        return st;
    long n = pending_rows_hand_over(r, fn, ctx);
    db_result_free(&r);
    return n;
}

long deliveries_reload(struct db *db, const char *instance, const char *request_id,
                       void (*fn)(void *ctx, struct delivery *d), void *ctx)
{
    const char *values[] = {instance, request_id};
    struct db_result *r = NULL;
    enum db_status st = db_execv(db,
                                 "SELECT " PENDING_COLUMNS " FROM deliveries d "
                                 "JOIN pending p USING (request_id) "
                                 "WHERE p.owner = $1 AND p.request_id = $2",
                                 2, values, NULL, NULL, true, &r);
    if (st != DB_OK)
        return st;
    long n = pending_rows_hand_over(r, fn, ctx);
    db_result_free(&r);
    return n;
}

long deliveries_take_over(struct db *db, const char *instance, long lease_s,
                          void (*fn)(void *ctx, struct delivery *d), void *ctx)
{
    char lease[24];
    snprintf(lease, sizeof lease, "%ld", lease_s);
    const char *values[] = {instance, lease};
    struct db_result *r = NULL;
    enum db_status st = db_execv(
        db,
        "WITH dead AS (SELECT instance_id FROM instances WHERE instance_id <> $1 "
        "  AND heartbeat_at < now() - make_interval(secs => $2::bigint)), "
        /* Both rows locked: the delivery row as its latest version (a retry
         * of the old owner committed meanwhile is seen, one in progress is
         * skipped and taken next time), the pending row to move it. */
        "moved AS (SELECT p.request_id, p.request, d.channel_id, d.attempts, "
        "  d.first_attempt_at, d.next_attempt_at, d.received_at, d.seq "
        "  FROM pending p JOIN deliveries d USING (request_id) "
        "  WHERE p.owner IN (SELECT instance_id FROM dead) ORDER BY d.seq "
        "  LIMIT " TAKEOVER_BATCH " FOR UPDATE OF p, d SKIP LOCKED), "
        "upd AS (UPDATE pending p SET owner = $1 FROM moved "
        "  WHERE p.request_id = moved.request_id RETURNING p.request_id) "
        "SELECT " PENDING_COLUMNS " FROM moved p JOIN upd USING (request_id) ORDER BY p.seq",
        2, values, NULL, NULL, true, &r);
    if (st != DB_OK)
        return st;
    long n = pending_rows_hand_over(r, fn, ctx);
    db_result_free(&r);
    if (n == 0) {
        st = db_exec(db,
                     "DELETE FROM instances i WHERE instance_id <> $1 "
                     "AND heartbeat_at < now() - make_interval(secs => $2::bigint) "
                     "AND NOT EXISTS (SELECT 1 FROM pending p WHERE p.owner = i.instance_id)",
                     2, values, NULL);
        if (st != DB_OK)
            return st;
    }
    return n;
}

int deliveries_heartbeat(struct db *db, const char *instance)
{
    const char *values[] = {instance};
    return db_exec(db,
                   "INSERT INTO instances (instance_id) VALUES ($1) ON CONFLICT (instance_id) "
                   "DO UPDATE SET heartbeat_at = now()",
                   1, values, NULL);
}

long deliveries_pending_count(struct db *db, const char *instance)
{
    const char *values[] = {instance};
    struct db_result *r = NULL;
    enum db_status st =
        db_exec(db, "SELECT count(*)::text FROM pending WHERE owner = $1", 1, values, &r);
    if (st != DB_OK)
        return st;
    long n = (long)text_ll(r, 0, 0);
    db_result_free(&r);
    return n;
}

int deliveries_quota_used(struct db *db, const char *channel_id, int64_t month_start,
                          long long *used)
{
    char month[24];
    snprintf(month, sizeof month, "%lld", (long long)month_start);
    const char *values[] = {channel_id, month};
    struct db_result *r = NULL;
    enum db_status st = db_exec(db,
                                "SELECT used::text FROM quota_usage WHERE channel_id = $1 "
                                "AND month_start = to_timestamp($2::bigint)",
                                2, values, &r);
    if (st != DB_OK)
        return st;
    *used = db_result_rows(r) > 0 ? text_ll(r, 0, 0) : 0;
    db_result_free(&r);
    return DB_OK;
}

/* --- the writer --------------------------------------------------------------- */

struct deliveries_writer {
    struct db *db;
    char instance[DELIVERY_INSTANCE_MAX + 1];
    char topic[128];
    void (*notify)(void *ctx);
    void *notify_ctx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct delivery_record *head, *tail;
    size_t backlog;
    bool stop;
    int64_t stop_deadline_ms;
    struct metric *written;
    struct metric *lost;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum db_status writer_retry(struct deliveries_writer *w, const struct delivery_record *r)
{
    char attempts[16], http[16], first[24], next[24], last[16];
    snprintf(attempts, sizeof attempts, "%d", r->attempts);
    snprintf(http, sizeof http, "%d", r->http_status);
    snprintf(first, sizeof first, "%lld", (long long)r->first_attempt_ms);
    snprintf(next, sizeof next, "%lld", (long long)r->next_attempt_ms);
    snprintf(last, sizeof last, "%d", r->last_attempt_ms);
    const char *values[] = {r->request_id,
                            attempts,
                            http,
                            r->line_request_id ? r->line_request_id : "",
                            r->error_message ? r->error_message : "",
                            first,
                            next,
                            last,
                            w->instance};
    /* The pending row locked first: a takeover changing its owner waits,
     * or has already moved it and nothing is written. */
    return db_exec(w->db,
                   "WITH mine AS (SELECT request_id FROM pending WHERE request_id = $1 "
                   "  AND owner = $9 FOR UPDATE) "
                   "UPDATE deliveries d SET status = 'retrying', attempts = $2::int, "
                   "http_status = $3::int, line_request_id = $4, error_message = $5, "
                   "first_attempt_at = COALESCE(CASE WHEN $6::bigint > 0 THEN "
                   "to_timestamp($6::bigint / 1000.0) END, first_attempt_at), "
                   "next_attempt_at = to_timestamp($7::bigint / 1000.0), "
                   "last_attempt_ms = $8::int "
                   "FROM mine WHERE d.request_id = mine.request_id",
                   9, values, NULL);
}

/* Quota usage to add, summed per channel and month over one batch, so a
 * batch of pushes costs one upsert per channel instead of one per push. */
struct usage_sum {
    const char *channel_id;
    int64_t month;
    long long cost;
};

static void usage_add(struct usage_sum *sums, int *n, const struct delivery_record *r)
{
    for (int i = 0; i < *n; i++)
        if (sums[i].month == r->quota_month && strcmp(sums[i].channel_id, r->channel_id) == 0) {
            sums[i].cost += r->quota_cost;
            return;
        }
    sums[*n].channel_id = r->channel_id;
    sums[*n].month = r->quota_month;
    sums[*n].cost = r->quota_cost;
    (*n)++;
}

static enum db_status usage_write(struct deliveries_writer *w, const struct usage_sum *u)
{
    char month[24], cost[24];
    snprintf(month, sizeof month, "%lld", (long long)u->month);
    snprintf(cost, sizeof cost, "%lld", u->cost);
    const char *qv[] = {u->channel_id, month, cost};
    return db_exec(w->db,
                   "INSERT INTO quota_usage (channel_id, month_start, used) "
                   "VALUES ($1, to_timestamp($2::bigint), $3::bigint) "
                   "ON CONFLICT (channel_id, month_start) DO UPDATE "
                   "SET used = quota_usage.used + EXCLUDED.used, updated_at = now()",
                   3, qv, NULL);
}

/* Every final record of the batch in one statement: the rows are updated
 * (only those still pending and ours) and, for exactly the rows updated,
 * the DeliveryResults go into the outbox in the batch's order. Sets
 * done[k] to 1 for the k-th final record whose row was ours. Returns a
 * db_status. */
static enum db_status writer_finals(struct deliveries_writer *w, struct delivery_record *batch,
                                    int nfinal, int *done)
{
    enum { COLS = 14 };
    struct pgarray col[COLS];
    for (int c = 0; c < COLS; c++)
        pgarray_init(&col[c], c >= 12 ? PGARRAY_BYTEA_OID : PGARRAY_TEXT_OID);
    for (struct delivery_record *r = batch; r; r = r->next) {
        if (r->type != DELIVERY_RECORD_FINAL)
            continue;
        pgarray_add_text(&col[0], r->request_id);
        pgarray_add_text(&col[1], delivery_status_name(r->status));
        pgarray_add_ll(&col[2], r->attempts);
        pgarray_add_ll(&col[3], r->http_status);
        pgarray_add_text(&col[4], r->line_request_id ? r->line_request_id : "");
        pgarray_add_text(&col[5], r->accepted_request_id ? r->accepted_request_id : "");
        pgarray_add_text(&col[6], r->error_message ? r->error_message : "");
        pgarray_add_text(&col[7], r->error_details_json); /* NULL stays NULL */
        pgarray_add_text(&col[8], r->fell_back ? "true" : "false");
        pgarray_add_ll(&col[9], r->first_attempt_ms);
        pgarray_add_ll(&col[10], r->finished_ms);
        pgarray_add_ll(&col[11], r->last_attempt_ms);
        pgarray_add(&col[12], r->key, r->key ? strlen(r->key) : 0);
        pgarray_add(&col[13], r->payload ? (const void *)r->payload : "", r->len);
    }
    enum db_status st = DB_FATAL;
    const char *values[COLS + 2];
    int lengths[COLS + 2] = {0}, binary[COLS + 2] = {0};
    for (int c = 0; c < COLS; c++) {
        values[c] = pgarray_finish(&col[c], &lengths[c]);
        binary[c] = 1;
        if (!values[c])
            goto out;
    }
    values[COLS] = w->instance;
    values[COLS + 1] = w->topic;
    struct db_result *res = NULL;
    st = db_execv(
        w->db,
        "WITH input AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
        "  $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], "
        "  $12::text[], $13::bytea[], $14::bytea[]) WITH ORDINALITY AS t(request_id, status, "
        "  attempts, http_status, line_request_id, accepted_request_id, error_message, "
        "  error_details, fell_back, first_ms, finished_ms, last_ms, key, payload, ord)), "
        /* Deleting the pending row is the owner check: a row taken over by
         * another replica is no longer ours and is left alone. No index of
         * deliveries covers a column set here, so the update is HOT. The
         * ids as an array, not a join with input: joined, the planner
         * hashed every pending row of this owner (the owner index) for each
         * batch; "= ANY" is one index probe per id. */
        "mine AS (DELETE FROM pending p WHERE p.request_id = ANY($1::text[]) "
        "  AND p.owner = $15 RETURNING p.request_id), "
        "upd AS (UPDATE deliveries d SET status = i.status, attempts = i.attempts::int, "
        "  http_status = i.http_status::int, line_request_id = i.line_request_id, "
        "  accepted_request_id = i.accepted_request_id, error_message = i.error_message, "
        "  error_details = i.error_details::jsonb, fell_back_to_push = i.fell_back::boolean, "
        "  first_attempt_at = COALESCE(CASE WHEN i.first_ms::bigint > 0 THEN "
        "  to_timestamp(i.first_ms::bigint / 1000.0) END, d.first_attempt_at), "
        "  finished_at = to_timestamp(i.finished_ms::bigint / 1000.0), "
        "  last_attempt_ms = i.last_ms::int, next_attempt_at = NULL "
        "  FROM input i JOIN mine m ON m.request_id = i.request_id "
        "  WHERE d.request_id = i.request_id RETURNING i.ord), "
        "ob AS (INSERT INTO outbox (topic, key, payload) SELECT $16, i.key, i.payload "
        "  FROM input i JOIN upd u ON u.ord = i.ord ORDER BY i.ord RETURNING 1) "
        "SELECT ord::text FROM upd",
        COLS + 2, values, lengths, binary, false, &res);
    if (st != DB_OK)
        goto out;
    for (int i = 0; i < db_result_rows(res); i++) {
        long k = strtol(db_result_value(res, i, 0), NULL, 10) - 1;
        if (k >= 0 && k < nfinal)
            done[k] = 1;
    }
    db_result_free(&res);
out:
    for (int c = 0; c < COLS; c++)
        pgarray_free(&col[c]);
    return st;
}

/* One transaction for the batch: the retries one by one (rare; each before
 * its request's final, which comes later in the queue), then every final in
 * one statement, then the quota usage summed per channel and month. Returns
 * DB_OK with *finals set, or the failing status (rolled back). */
static enum db_status writer_batch(struct deliveries_writer *w, struct delivery_record *batch,
                                   int *finals)
{
    *finals = 0;
    struct usage_sum sums[WRITER_BATCH_MAX];
    int nsums = 0, nfinal = 0;
    int done[WRITER_BATCH_MAX] = {0};
    enum db_status st = db_begin(w->db);
    if (st != DB_OK)
        return st;
    for (struct delivery_record *r = batch; r; r = r->next) {
        if (r->type == DELIVERY_RECORD_FINAL) {
            nfinal++;
            continue;
        }
        st = writer_retry(w, r);
        if (st != DB_OK) {
            char sqlstate[8];
            snprintf(sqlstate, sizeof sqlstate, "%s", db_error_sqlstate(w->db));
            db_rollback(w->db);
            log_warn("delivery log write failed", "request_id", r->request_id, "sqlstate",
                     sqlstate);
            return st;
        }
    }
    if (nfinal > 0) {
        st = writer_finals(w, batch, nfinal, done);
        if (st != DB_OK) {
            char sqlstate[8];
            snprintf(sqlstate, sizeof sqlstate, "%s", db_error_sqlstate(w->db));
            db_rollback(w->db);
            log_warn("delivery log write failed", "request_id",
                     batch->next ? "(a batch)" : batch->request_id, "sqlstate", sqlstate);
            return st;
        }
    }
    int k = 0;
    for (struct delivery_record *r = batch; r; r = r->next) {
        if (r->type != DELIVERY_RECORD_FINAL)
            continue;
        if (done[k]) {
            (*finals)++;
            if (r->quota_cost > 0)
                usage_add(sums, &nsums, r);
        } else {
            log_warn("delivery taken over by another replica; its result is theirs", "request_id",
                     r->request_id, "channel", r->channel_id);
        }
        k++;
    }
    for (int i = 0; i < nsums; i++) {
        st = usage_write(w, &sums[i]);
        if (st != DB_OK) {
            db_rollback(w->db);
            return st;
        }
    }
    return db_commit(w->db);
}

static bool writer_giving_up(struct deliveries_writer *w)
{
    pthread_mutex_lock(&w->mu);
    bool give_up = w->stop && mono_ms() >= w->stop_deadline_ms;
    pthread_mutex_unlock(&w->mu);
    return give_up;
}

static void writer_drop(struct deliveries_writer *w, struct delivery_record *batch, const char *why)
{
    while (batch) {
        struct delivery_record *next = batch->next;
        /* The row stays pending: sent again after a restart (409 if it got through). */
        log_error("delivery outcome not recorded", "request_id", batch->request_id, "reason", why);
        metrics_add(w->lost, 1);
        delivery_record_free(batch);
        batch = next;
    }
}

static void writer_process(struct deliveries_writer *w, struct delivery_record *batch)
{
    for (;;) {
        int finals = 0;
        enum db_status st = writer_batch(w, batch, &finals);
        if (st == DB_OK) {
            long n = 0;
            for (struct delivery_record *r = batch; r; r = r->next)
                n++;
            metrics_add(w->written, (double)n);
            if (finals > 0 && w->notify)
                w->notify(w->notify_ctx);
            break;
        }
        if (st == DB_FATAL && batch->next) {
            /* One bad record must not hold the others: one by one. */
            while (batch) {
                struct delivery_record *next = batch->next;
                batch->next = NULL;
                writer_process(w, batch);
                batch = next;
            }
            return;
        }
        if (st == DB_FATAL) {
            writer_drop(w, batch, "database refused it");
            return;
        }
        if (writer_giving_up(w)) {
            writer_drop(w, batch, "database unreachable at shutdown");
            return;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = WRITER_RETRY_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    while (batch) {
        struct delivery_record *next = batch->next;
        delivery_record_free(batch);
        batch = next;
    }
}

static void *writer_main(void *arg)
{
    struct deliveries_writer *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->head && !w->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&w->cond, &w->mu, &ts);
        }
        if (!w->head && w->stop) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        if (w->backlog < WRITER_BATCH_MAX && !w->stop) {
            /* A short linger gathers more outcomes per transaction: at a
             * steady 2,000/s, committing each few records cost PostgreSQL
             * (and the relay after every commit) more than the records. */
            pthread_mutex_unlock(&w->mu);
            struct timespec linger = {.tv_sec = 0, .tv_nsec = WRITER_LINGER_MS * 1000000L};
            nanosleep(&linger, NULL);
            pthread_mutex_lock(&w->mu);
        }
        struct delivery_record *batch = w->head, *last = w->head;
        size_t n = 1;
        while (last->next && n < WRITER_BATCH_MAX) {
            last = last->next;
            n++;
        }
        w->head = last->next;
        if (!w->head)
            w->tail = NULL;
        last->next = NULL;
        w->backlog -= n;
        pthread_mutex_unlock(&w->mu);
        writer_process(w, batch);
    }
    return NULL;
}

struct deliveries_writer *deliveries_writer_start(const char *dsn, const char *instance,
                                                  const char *results_topic,
                                                  void (*notify)(void *ctx), void *notify_ctx,
                                                  char *errstr, size_t errcap)
{
    struct deliveries_writer *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    w->db = db_connect(dsn, errstr, errcap);
    if (!w->db) {
        free(w);
        return NULL;
    }
    snprintf(w->instance, sizeof w->instance, "%s", instance);
    snprintf(w->topic, sizeof w->topic, "%s", results_topic);
    w->notify = notify;
    w->notify_ctx = notify_ctx;
    w->written = metrics_counter("kizuna_dispatcher_log_writes_total",
                                 "delivery outcomes written to the delivery log", NULL);
    w->lost = metrics_counter("kizuna_dispatcher_log_write_failures_total",
                              "outcomes not written (the row stays pending and is resent "
                              "with its retry key after a restart)",
                              NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&w->mu, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        snprintf(errstr, errcap, "cannot start the delivery log writer");
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->mu);
        db_free(&w->db);
        free(w);
        return NULL;
    }
    return w;
}

void deliveries_writer_submit(struct deliveries_writer *w, struct delivery_record *r)
{
    r->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = r;
    else
        w->head = r;
    w->tail = r;
    w->backlog++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

size_t deliveries_writer_backlog(struct deliveries_writer *w)
{
    pthread_mutex_lock(&w->mu);
    size_t n = w->backlog;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void deliveries_writer_stop(struct deliveries_writer **wp, long budget_ms)
{
    if (!wp || !*wp)
        return;
    struct deliveries_writer *w = *wp;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    w->stop_deadline_ms = mono_ms() + budget_ms;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    db_free(&w->db);
    free(w);
    *wp = NULL;
}

/* --- listing ------------------------------------------------------------------ */

#define TS_TEXT(col) \
    "COALESCE(to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '')"

static void json_set_text(json_t *obj, const char *name, const char *value)
{
    json_object_set_new(obj, name, json_string(value ? value : ""));
}

static void json_set_time(json_t *obj, const char *name, const char *value)
{
    json_object_set_new(obj, name, value && value[0] ? json_string(value) : json_null());
}

int deliveries_list(struct db *db, const char *tenant, const char *channel, const char *status,
                    const char *since, const char *cursor, int limit, char **json)
{
    *json = NULL;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *values[] = {tenant, channel, status, since, cursor, lim};
    struct db_result *r = NULL;
    enum db_status st = db_exec(
        db,
        "SELECT seq::text, request_id, channel_id, kind, status, attempts::text, recipient, "
        "recipient_count::text, fell_back_to_push::text, line_request_id, accepted_request_id, "
        "http_status::text, error_message, COALESCE(error_details::text, ''), origin_type, "
        "origin_id, " TS_TEXT("requested_at") ", " TS_TEXT("received_at") ", " TS_TEXT(
            "first_attempt_at") ", " TS_TEXT("next_attempt_at") ", " TS_TEXT("finished_at") ", "
                                                                                            "last_"
                                                                                            "attemp"
                                                                                            "t_ms::"
                                                                                            "text "
                                                                                            "FROM "
                                                                                            "delive"
                                                                                            "ries "
                                                                                            "WHERE "
                                                                                            "tenant"
                                                                                            "_id = "
                                                                                            "$1 "
                                                                                            "AND "
                                                                                            "($2::"
                                                                                            "text "
                                                                                            "IS "
                                                                                            "NULL "
                                                                                            "OR "
                                                                                            "channe"
                                                                                            "l_id "
                                                                                            "= $2) "
                                                                                            "AND "
                                                                                            "($3::"
                                                                                            "text "
                                                                                            "IS "
                                                                                            "NULL "
                                                                                            "OR "
                                                                                            "status"
                                                                                            " = "
                                                                                            "$3) "
                                                                                            "AND "
                                                                                            "($4::"
                                                                                            "timest"
                                                                                            "amptz "
                                                                                            "IS "
                                                                                            "NULL "
                                                                                            "OR "
                                                                                            "receiv"
                                                                                            "ed_at "
                                                                                            ">= "
                                                                                            "$4::"
                                                                                            "timest"
                                                                                            "amptz)"
                                                                                            " "
                                                                                            "AND "
                                                                                            "($5::"
                                                                                            "bigint"
                                                                                            " IS "
                                                                                            "NULL "
                                                                                            "OR "
                                                                                            "seq < "
                                                                                            "$5::"
                                                                                            "bigint"
                                                                                            ") "
                                                                                            "ORDER "
                                                                                            "BY "
                                                                                            "delive"
                                                                                            "ries."
                                                                                            "seq "
                                                                                            "DESC "
                                                                                            "LIMIT "
                                                                                            "$6::"
                                                                                            "int",
        6, values, &r);
    if (st != DB_OK)
        return st;
    json_t *root = json_object(), *list = json_array();
    int rows = db_result_rows(r);
    for (int i = 0; i < rows; i++) {
        json_t *o = json_object();
        json_set_text(o, "request_id", db_result_value(r, i, 1));
        json_set_text(o, "channel_id", db_result_value(r, i, 2));
        json_set_text(o, "kind", db_result_value(r, i, 3));
        json_set_text(o, "status", db_result_value(r, i, 4));
        json_object_set_new(o, "attempts", json_integer(text_ll(r, i, 5)));
        json_set_text(o, "to", db_result_value(r, i, 6));
        json_object_set_new(o, "recipient_count", json_integer(text_ll(r, i, 7)));
        json_object_set_new(o, "fell_back_to_push",
                            json_boolean(strcmp(db_result_value(r, i, 8), "true") == 0));
        json_set_text(o, "line_request_id", db_result_value(r, i, 9));
        json_set_text(o, "accepted_request_id", db_result_value(r, i, 10));
        json_object_set_new(o, "http_status", json_integer(text_ll(r, i, 11)));
        json_set_text(o, "error_message", db_result_value(r, i, 12));
        const char *details = db_result_value(r, i, 13);
        json_t *dj = details && details[0] ? json_loads(details, 0, NULL) : NULL;
        json_object_set_new(o, "error_details", dj ? dj : json_array());
        json_set_text(o, "origin_type", db_result_value(r, i, 14));
        json_set_text(o, "origin_id", db_result_value(r, i, 15));
        json_set_time(o, "requested_at", db_result_value(r, i, 16));
        json_set_time(o, "received_at", db_result_value(r, i, 17));
        json_set_time(o, "first_attempt_at", db_result_value(r, i, 18));
        json_set_time(o, "next_attempt_at", db_result_value(r, i, 19));
        json_set_time(o, "finished_at", db_result_value(r, i, 20));
        json_object_set_new(o, "last_attempt_ms", json_integer(text_ll(r, i, 21)));
        json_array_append_new(list, o);
    }
    json_object_set_new(root, "deliveries", list);
    json_object_set_new(root, "next_cursor",
                        rows == limit && rows > 0 ? json_string(db_result_value(r, rows - 1, 0))
                                                  : json_null());
    db_result_free(&r);
    *json = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return *json ? DB_OK : DB_FATAL;
}
