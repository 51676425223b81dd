/* The delivery log in PostgreSQL: the intake's insert, recovery and
 * takeover of pending rows, the heartbeat, quota usage, and the admin API's
 * listing (the writer thread is deliveries_writer.c). All SQL is
 * parameterised; times cross as unix ms. */
#include "deliveries.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "pgarray.h"
#include "strmap.h"

#define TAKEOVER_BATCH "1000"
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
        "  ON CONFLICT (request_id) DO NOTHING RETURNING request_id, seq), "
        "own AS (INSERT INTO pending (request_id, owner, request, seq) "
        "  SELECT i.request_id, $12, i.request, ins.seq FROM input i JOIN ins USING (request_id)) "
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

/* What a pending delivery is loaded with; each query adds the row's epoch
 * and seq as columns 7 and 8. */
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
 * cast to text, whose binary form is its text. *last_seq (may be NULL) gets
 * the last row's seq. */
static long pending_rows_hand_over(struct db_result *r, void (*fn)(void *, struct delivery *),
                                   void *ctx, int64_t *last_seq)
{
    long n = 0;
    for (int i = 0; i < db_result_rows(r); i++) {
        if (last_seq)
            *last_seq = text_ll(r, i, 8);
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
        d->epoch = text_ll(r, i, 7);
        fn(ctx, d);
        n++;
    }
    return n;
}

int deliveries_recover_mark(struct db *db, const char *instance, int64_t *until)
{
    const char *values[] = {instance};
    struct db_result *r = NULL;
    enum db_status st = db_exec(
        db, "SELECT COALESCE(max(seq), 0)::text FROM pending WHERE owner = $1", 1, values, &r);
    if (st != DB_OK)
        return st;
    *until = text_ll(r, 0, 0);
    db_result_free(&r);
    return DB_OK;
}

long deliveries_recover_page(struct db *db, const char *instance, int64_t after, int64_t until,
                             int limit, void (*fn)(void *ctx, struct delivery *d), void *ctx,
                             int64_t *last)
{
    char a[24], u[24], l[16];
    snprintf(a, sizeof a, "%lld", (long long)after);
    snprintf(u, sizeof u, "%lld", (long long)until);
    snprintf(l, sizeof l, "%d", limit);
    const char *values[] = {instance, a, u, l};
    struct db_result *r = NULL;
    /* Keyset on the (owner, seq) index: each page costs its own rows only. */
    enum db_status st = db_execv(db,
                                 "SELECT " PENDING_COLUMNS ", p.epoch::text, p.seq::text "
                                 "FROM pending p JOIN deliveries d USING (request_id) "
                                 "WHERE p.owner = $1 AND p.seq > $2::bigint "
                                 "AND p.seq <= $3::bigint ORDER BY p.seq LIMIT $4::int",
                                 4, values, NULL, NULL, true, &r);
    if (st != DB_OK)
        return st;
    *last = after;
    long rows = db_result_rows(r);
    pending_rows_hand_over(r, fn, ctx, last);
    db_result_free(&r);
    return rows;
}

long deliveries_reload(struct db *db, const char *instance, const char *request_id,
                       void (*fn)(void *ctx, struct delivery *d), void *ctx)
{
    const char *values[] = {instance, request_id};
    struct db_result *r = NULL;
    enum db_status st = db_execv(db,
                                 "SELECT " PENDING_COLUMNS ", p.epoch::text, p.seq::text "
                                 "FROM deliveries d JOIN pending p USING (request_id) "
                                 "WHERE p.owner = $1 AND p.request_id = $2",
                                 2, values, NULL, NULL, true, &r);
    if (st != DB_OK)
        return st;
    long n = pending_rows_hand_over(r, fn, ctx, NULL);
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
    enum db_status st =
        db_execv(db,
                 "WITH dead AS (SELECT instance_id FROM instances WHERE instance_id <> $1 "
                 "  AND heartbeat_at < now() - make_interval(secs => $2::bigint)), "
                 /* Both rows locked: the delivery row as its latest version (a retry
         * of the old owner committed meanwhile is seen, one in progress is
         * skipped and taken next time), the pending row to move it. */
                 "moved AS (SELECT p.request_id, p.request, d.channel_id, d.attempts, "
                 "  d.first_attempt_at, d.next_attempt_at, d.received_at, p.seq "
                 "  FROM pending p JOIN deliveries d USING (request_id) "
                 "  WHERE p.owner IN (SELECT instance_id FROM dead) ORDER BY p.seq "
                 "  LIMIT " TAKEOVER_BATCH " FOR UPDATE OF p, d SKIP LOCKED), "
                 /* The epoch moves with the owner: the fencing token (decision
         * 0010). Whatever the old owner still writes for these rows, even
         * if they come back to it later, matches no more. */
                 "upd AS (UPDATE pending p SET owner = $1, epoch = p.epoch + 1 FROM moved "
                 "  WHERE p.request_id = moved.request_id RETURNING p.request_id, p.epoch) "
                 "SELECT " PENDING_COLUMNS ", upd.epoch::text, p.seq::text "
                 "FROM moved p JOIN upd USING (request_id) ORDER BY p.seq",
                 2, values, NULL, NULL, true, &r);
    if (st != DB_OK)
        return st;
    long n = pending_rows_hand_over(r, fn, ctx, NULL);
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

int deliveries_quota_used(struct db *db, const char *tenant_id, const char *channel_id,
                          int64_t month_start, long long *used)
{
    char month[24];
    snprintf(month, sizeof month, "%lld", (long long)month_start);
    const char *values[] = {tenant_id, channel_id, month};
    struct db_result *r = NULL;
    enum db_status st = db_exec(db,
                                "SELECT used::text FROM quota_usage WHERE tenant_id = $1 "
                                "AND channel_id = $2 AND month_start = to_timestamp($3::bigint)",
                                3, values, &r);
    if (st != DB_OK)
        return st;
    *used = db_result_rows(r) > 0 ? text_ll(r, 0, 0) : 0;
    db_result_free(&r);
    return DB_OK;
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
