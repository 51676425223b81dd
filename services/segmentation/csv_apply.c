/* Applies a checked CSV import (csv_import.h) set-based: per column and
 * batch of rows, one statement changes what differs and returns what it
 * changed, and the events for those changes go to the outbox in batches.
 * The events have the shapes tags.c and fields.c emit (friend_tag_event,
 * field_event) and the records friend_event_emit enqueues
 * (friend_event_pack); only the statements differ: tag_add / field_set per
 * cell cost two or three round trips each, too slow for an import of
 * 100,000 rows. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "csv_import.h"
#include "db.h"
#include "fields.h"
#include "friend_events.h"
#include "kizuna/v1/friend.pb-c.h"
#include "pgarray.h"

/* Rows per statement, and events per outbox insert. */
#define APPLY_BATCH 5000
#define APPLY_EVENTS_BATCH 2000

/* --- events ----------------------------------------------------------------- */

struct evbatch {
    struct db *db;
    const char *tenant_id, *channel_id, *causation_id;
    struct pgarray keys, payloads;
    int n;
    int64_t now_ms;
};

static int evbatch_flush(struct evbatch *b)
{
    if (b->n == 0)
        return 0;
    int klen = 0, plen = 0;
    const char *k = pgarray_finish(&b->keys, &klen);
    const char *p = pgarray_finish(&b->payloads, &plen);
    int rc = -1;
    if (k && p) {
        const char *values[] = {"friend.events", k, p};
        const int lengths[] = {0, klen, plen};
        const int binary[] = {0, 1, 1};
        rc = db_execv(b->db,
                      "INSERT INTO outbox (topic, key, payload) SELECT $1, x.k, x.p "
                      "FROM unnest($2::bytea[], $3::bytea[]) WITH ORDINALITY AS x(k, p, n) "
                      "ORDER BY x.n",
                      3, values, lengths, binary, false, NULL) == DB_OK
                 ? 0
                 : -1;
    }
    pgarray_free(&b->keys);
    pgarray_free(&b->payloads);
    pgarray_init(&b->keys, PGARRAY_BYTEA_OID);
    pgarray_init(&b->payloads, PGARRAY_BYTEA_OID);
    b->n = 0;
    return rc;
}

/* Adds ev for user_id: the record friend_event_emit would enqueue. */
static int evbatch_add(struct evbatch *b, const char *user_id, Kizuna__V1__FriendEvent *ev)
{
    char event_id[37], key[160];
    size_t len = 0;
    uint8_t *buf = friend_event_pack(b->tenant_id, b->channel_id, user_id, b->causation_id,
                                     b->now_ms, ev, event_id, key, sizeof key, &len);
    if (!buf)
        return -1;
    pgarray_add(&b->keys, key, strlen(key));
    pgarray_add(&b->payloads, buf, len);
    free(buf);
    if (b->keys.failed || b->payloads.failed)
        return -1;
    return ++b->n >= APPLY_EVENTS_BATCH ? evbatch_flush(b) : 0;
}

/* --- tags ------------------------------------------------------------------- */

/* $1 tag id, $2 friend ids: what changed, as the friends' user ids. */
static const char tag_add_sql[] =
    "WITH ch AS (INSERT INTO friend_tags (tag_id, friend_id) "
    "SELECT $1::bigint, x::bigint FROM unnest($2::text[]) AS x ON CONFLICT DO NOTHING "
    "RETURNING friend_id) SELECT f.user_id FROM ch JOIN friends f ON f.id = ch.friend_id";
static const char tag_remove_sql[] =
    "WITH ch AS (DELETE FROM friend_tags WHERE tag_id = $1::bigint AND "
    "friend_id = ANY ($2::text[]::bigint[]) RETURNING friend_id) "
    "SELECT f.user_id FROM ch JOIN friends f ON f.id = ch.friend_id";

/* Rows [from, to) of column c whose cell is want ("1" or "0"). */
static int tag_batch(struct evbatch *b, const struct imp *imp, int c, size_t from, size_t to,
                     bool add, long *changed)
{
    const struct imp_col *col = &imp->cols[c];
    struct pgarray ids;
    pgarray_init(&ids, PGARRAY_TEXT_OID);
    for (size_t i = from; i < to; i++) {
        const char *cell = imp->cell[i * (size_t)imp->ncols + (size_t)c];
        if (cell && (cell[0] == '1') == add)
            pgarray_add_ll(&ids, (long long)imp->friend_id[i]);
    }
    int rc = 0;
    if (ids.count > 0) {
        int len = 0;
        const char *arr = pgarray_finish(&ids, &len);
        char tag_text[24];
        snprintf(tag_text, sizeof tag_text, "%" PRId64, col->tag_id);
        const char *values[] = {tag_text, arr};
        const int lengths[] = {0, len};
        const int binary[] = {0, 1};
        struct db_result *res = NULL;
        rc = arr && db_execv(b->db, add ? tag_add_sql : tag_remove_sql, 2, values, lengths, binary,
                             false, &res) == DB_OK
                 ? 0
                 : -1;
        for (int i = 0; rc == 0 && i < db_result_rows(res); i++) {
            struct friend_tag_event t;
            friend_tag_event_init(&t, add, tag_text, col->name);
            rc = evbatch_add(b, db_result_value(res, i, 0), &t.ev);
            (*changed)++;
        }
        db_result_free(&res);
    }
    pgarray_free(&ids);
    return rc;
}

/* --- fields ----------------------------------------------------------------- */

/* Per type: the column and the cast of a value's text. */
static const struct {
    const char *column, *cast;
} field_types[] = {
    {"text_value", "text"},        {"number_value", "numeric"}, {"date_value", "date"},
    {"time_value", "timestamptz"}, {"text_value", "text"},
};

/* A value's text form as fields.c prints it, x being its expression
 * (a name from this file). */
static void text_expr(enum field_type t, const char *x, char *out, size_t cap)
{
    switch (t) {
    case FIELD_NUMBER:
        snprintf(out, cap, "(%s)::text", x);
        break;
    case FIELD_DATE:
        snprintf(out, cap, "to_char(%s, 'YYYY-MM-DD')", x);
        break;
    case FIELD_DATETIME:
        snprintf(out, cap,
                 "CASE WHEN extract(milliseconds FROM %s)::numeric %% 1000 = 0 "
                 "THEN to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                 "ELSE to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') END",
                 x, x, x);
        break;
    case FIELD_TEXT:
    case FIELD_CHOICE:
    default:
        snprintf(out, cap, "%s", x);
        break;
    }
}

/* The statement for a field of type t: $1 field id, $2 friend ids, $3
 * values; returns user_id, before's text, the new text, and for datetimes
 * both as unix ms. Built from the table above only. */
static int field_sql(enum field_type t, char *sql, size_t cap)
{
    const char *col = field_types[t].column, *cast = field_types[t].cast;
    char before[512], now[512];
    text_expr(t, "c.before", before, sizeof before);
    text_expr(t, "c.val", now, sizeof now);
    const char *ms = t == FIELD_DATETIME ? "(extract(epoch FROM c.before) * 1000)::bigint, "
                                           "(extract(epoch FROM c.val) * 1000)::bigint"
                                         : "NULL, NULL";
    int n = snprintf(
        sql, cap,
        "WITH v AS (SELECT x.fid::bigint AS friend_id, x.val::%s AS val "
        "FROM unnest($2::text[], $3::text[]) AS x(fid, val)), "
        "c AS (SELECT v.friend_id, v.val, ff.%s AS before FROM v LEFT JOIN friend_fields ff "
        "ON ff.field_id = $1::bigint AND ff.friend_id = v.friend_id "
        "WHERE ff.%s IS DISTINCT FROM v.val), "
        "up AS (INSERT INTO friend_fields (field_id, friend_id, %s) "
        "SELECT $1::bigint, c.friend_id, c.val FROM c "
        "ON CONFLICT (field_id, friend_id) DO UPDATE SET text_value = EXCLUDED.text_value, "
        "number_value = EXCLUDED.number_value, date_value = EXCLUDED.date_value, "
        "time_value = EXCLUDED.time_value, updated_at = now()) "
        "SELECT f.user_id, %s, %s, %s FROM c JOIN friends f ON f.id = c.friend_id",
        cast, col, col, col, before, now, ms);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int field_batch(struct evbatch *b, const struct imp *imp, int c, size_t from, size_t to,
                       const char *sql, long *changed)
{
    const struct imp_col *col = &imp->cols[c];
    struct pgarray ids, vals;
    pgarray_init(&ids, PGARRAY_TEXT_OID);
    pgarray_init(&vals, PGARRAY_TEXT_OID);
    for (size_t i = from; i < to; i++) {
        const char *cell = imp->cell[i * (size_t)imp->ncols + (size_t)c];
        if (cell) {
            pgarray_add_ll(&ids, (long long)imp->friend_id[i]);
            pgarray_add_text(&vals, cell);
        }
    }
    int rc = 0;
    if (ids.count > 0) {
        int ilen = 0, vlen = 0;
        const char *ia = pgarray_finish(&ids, &ilen);
        const char *va = pgarray_finish(&vals, &vlen);
        char field_text[24];
        snprintf(field_text, sizeof field_text, "%" PRId64, col->def.id);
        const char *values[] = {field_text, ia, va};
        const int lengths[] = {0, ilen, vlen};
        const int binary[] = {0, 1, 1};
        struct db_result *res = NULL;
        rc = ia && va && db_execv(b->db, sql, 3, values, lengths, binary, false, &res) == DB_OK
                 ? 0
                 : -1;
        for (int i = 0; rc == 0 && i < db_result_rows(res); i++) {
            int64_t now_ms = strtoll(db_result_value(res, i, 4), NULL, 10);
            int64_t before_ms = strtoll(db_result_value(res, i, 3), NULL, 10);
            struct field_event e;
            field_event_init(&e, &col->def, db_result_value(res, i, 2), &now_ms,
                             db_result_isnull(res, i, 1) ? NULL : db_result_value(res, i, 1),
                             &before_ms);
            rc = evbatch_add(b, db_result_value(res, i, 0), &e.ev);
            (*changed)++;
        }
        db_result_free(&res);
    }
    pgarray_free(&ids);
    pgarray_free(&vals);
    return rc;
}

int csv_import_apply(struct db *db, const char *tenant_id, const char *channel_id,
                     const char *causation_id, const struct imp *imp, struct imp_result *out)
{
    memset(out, 0, sizeof *out);
    struct evbatch b = {.db = db,
                        .tenant_id = tenant_id,
                        .channel_id = channel_id,
                        .causation_id = causation_id,
                        .now_ms = clock_wall_ms()};
    pgarray_init(&b.keys, PGARRAY_BYTEA_OID);
    pgarray_init(&b.payloads, PGARRAY_BYTEA_OID);
    int rc = 0;
    char sql[4096];
    for (int c = 0; rc == 0 && c < imp->ncols; c++) {
        const struct imp_col *col = &imp->cols[c];
        if (col->kind == IMP_FIELD &&
            ((unsigned)col->def.type > FIELD_CHOICE || field_sql(col->def.type, sql, sizeof sql)))
            rc = -1;
        for (size_t from = 0; rc == 0 && from < imp->nrows; from += APPLY_BATCH) {
            size_t to = from + APPLY_BATCH < imp->nrows ? from + APPLY_BATCH : imp->nrows;
            if (col->kind == IMP_TAG) {
                rc = tag_batch(&b, imp, c, from, to, true, &out->tags_added);
                if (rc == 0)
                    rc = tag_batch(&b, imp, c, from, to, false, &out->tags_removed);
            } else {
                rc = field_batch(&b, imp, c, from, to, sql, &out->fields_changed);
            }
        }
    }
    if (rc == 0)
        rc = evbatch_flush(&b);
    pgarray_free(&b.keys);
    pgarray_free(&b.payloads);
    return rc;
}
