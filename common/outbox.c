/* The transactional outbox: an event caused by a database change is a row
 * in the same transaction as the change, so it exists exactly when the
 * change does. The relay publishes rows in id order and deletes a row only
 * after the broker acknowledged it. It stops at the first row without an
 * ack and keeps that row and everything after it, even rows that were
 * acknowledged: deleting a later row while an earlier one waits would let
 * the next round publish the earlier event after the later one for the same
 * key. Rows kept after publishing are published again; inboxes absorb that.
 * The same relay serves any table of the outbox's shape (ingest's spool):
 * the table name is an identifier from code, checked and quoted, never
 * input.
 *
 * A row the broker can never take (kafka.h's KAFKA_FAILED_PERMANENT: too
 * large, invalid, not authorized) would stop the relay at it for ever, and
 * every row behind it, whoever they belong to. Such a row is moved to the
 * schema's dead_letter table in the round's transaction (common/dead_letter.h)
 * and the rows behind it go on. A failure for now (the broker away, a
 * timeout) still stops the round at the row, as before. */
#include "outbox.h"

#include <string.h>

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "db.h"
#include "dead_letter.h"
#include "kafka.h"
#include "log.h"

/* One round's batch. Bounded so that the ids fit in one DELETE parameter
 * and the transaction holding the row locks stays short. */
#define OUTBOX_BATCH_MAX 1000
#define OUTBOX_PROBE_MS 500 /* broker metadata probe before publishing */

int outbox_enqueue(struct db *db, const char *topic, const void *key, size_t keylen,
                   const void *payload, size_t len)
{
    if (!db || !topic || (!payload && len) || (!key && keylen) || len > INT_MAX || keylen > INT_MAX)
        return DB_FATAL;
    const char *values[] = {topic, key, payload ? payload : ""};
    const int lengths[] = {0, (int)keylen, (int)len};
    const int binary[] = {0, 1, 1}; /* bytea as raw bytes: no escaping */
    return db_execv(db, "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3)", 3, values,
                    lengths, binary, false, NULL);
}

/* int8 in binary result format: 8 bytes, big-endian. */
static int64_t outbox_int8_decode(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (unsigned char)p[i];
    return (int64_t)v;
}

/* Table names come from code, but are still checked: lower-case letters,
 * digits and underscores, starting with a letter, so that quoting them is
 * enough. */
static bool outbox_table_ok(const char *table)
{
    if (!table || !table[0] || table[0] < 'a' || table[0] > 'z' || strlen(table) > 63)
        return false;
    for (const char *p = table; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

/* Deletes the first n rows of the batch, by id: "{1,2,3}" is a parameter
 * value (an int8 array literal), not SQL text. */
static enum db_status outbox_delete(struct db *db, const char *table, const int64_t *ids, int n)
{
    size_t cap = (size_t)n * 21 + 3;
    char *list = malloc(cap);
    if (!list)
        return DB_FATAL;
    size_t off = 0;
    list[off++] = '{';
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(list + off, cap - off, "%s%lld", i ? "," : "", (long long)ids[i]);
    list[off++] = '}';
    list[off] = '\0';
    const char *params[] = {list};
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE id = ANY($1::bigint[])", table);
    enum db_status st = db_exec(db, sql, 1, params, NULL);
    free(list);
    return st;
}

int outbox_relay_once(struct db *db, struct kafka_producer *producer, int limit, int ack_timeout_ms)
{
    return outbox_relay_table_once(db, "outbox", producer, limit, ack_timeout_ms);
}

int outbox_relay_table_once(struct db *db, const char *table, struct kafka_producer *producer,
                            int limit, int ack_timeout_ms)
{
    struct outbox_round round;
    int n = outbox_relay_table_round(db, table, producer, limit, ack_timeout_ms, &round);
    return n < 0 ? n : round.published + round.dead;
}

/* What became of one row of a round. */
enum outbox_fate {
    OUTBOX_KEPT = 0, /* not produced, or no verdict: stays for the next round */
    OUTBOX_QUEUED,   /* produced, verdict not read yet */
    OUTBOX_ACKED,    /* on the broker: deleted */
    OUTBOX_DEAD,     /* can never be produced: moved to dead_letter */
};

/* Moves row id of table to dead_letter inside the open transaction, with
 * the tenant, channel and event of its envelope when it has one. */
static enum db_status outbox_bury(struct db *db, const char *table, int64_t id,
                                  const struct db_result *r, int row, const char *error)
{
    struct dead_letter_envelope env;
    bool has_tenant =
        dead_letter_envelope_read(db_result_value(r, row, 3), db_result_length(r, row, 3), &env);
    char id_text[24], sql[512];
    snprintf(id_text, sizeof id_text, "%lld", (long long)id);
    snprintf(sql, sizeof sql,
             "WITH moved AS (DELETE FROM \"%s\" WHERE id = $1::bigint "
             "RETURNING id, topic, key, payload, created_at) "
             "INSERT INTO dead_letter (source_table, source_id, topic, key, payload, tenant_id, "
             "channel_id, event_id, error, created_at) "
             "SELECT $2::text, id, topic, key, payload, $3::text, $4::text, $5::text, $6::text, "
             "created_at FROM moved",
             table);
    const char *params[] = {id_text,        table,        has_tenant ? env.tenant_id : NULL,
                            env.channel_id, env.event_id, error && error[0] ? error : "UNKNOWN"};
    return db_exec(db, sql, 6, params, NULL);
}

/* A row the broker refused for good may only have shared a batch with the
 * row that caused it, so before it is buried it is sent once more on its
 * own, after every other record of the round has its verdict (none of ours
 * is in flight to share a batch with it). Returns 0 (acknowledged this
 * time), KAFKA_FAILED_PERMANENT with *error set (refused alone: it is the
 * poison), or another verdict (keep it). */
static int outbox_probe_alone(struct kafka_producer *producer, const struct db_result *r, int row,
                              struct kafka_ack **later, int nlater, int64_t deadline,
                              int ack_timeout_ms, const char **error)
{
    for (int i = 0; i < nlater; i++) {
        int64_t left = deadline - clock_mono_ms();
        if (later[i])
            kafka_ack_wait(later[i], left > 0 ? (int)left : 0);
    }
    bool nokey = db_result_isnull(r, row, 2);
    struct kafka_ack *ack = NULL;
    int verdict = kafka_produce(producer, db_result_value(r, row, 1),
                                nokey ? NULL : db_result_value(r, row, 2),
                                nokey ? 0 : db_result_length(r, row, 2), db_result_value(r, row, 3),
                                db_result_length(r, row, 3), &ack);
    if (verdict != 0) {
        *error = kafka_produce_error();
        return verdict;
    }
    verdict = kafka_ack_wait(ack, ack_timeout_ms);
    *error = kafka_ack_error(ack);
    kafka_ack_release(&ack);
    return verdict;
}

int outbox_relay_table_round(struct db *db, const char *table, struct kafka_producer *producer,
                             int limit, int ack_timeout_ms, struct outbox_round *round)
{
    struct outbox_round none = {0};
    if (!round)
        round = &none;
    *round = none;
    if (!db || !producer || !outbox_table_ok(table))
        return DB_FATAL;
    if (limit <= 0)
        return 0;
    if (limit > OUTBOX_BATCH_MAX)
        limit = OUTBOX_BATCH_MAX;

    char limit_text[16];
    snprintf(limit_text, sizeof limit_text, "%d", limit);
    const char *params[] = {limit_text};
    const char *lock_params[] = {table};
    char select_sql[160];
    snprintf(select_sql, sizeof select_sql,
             "SELECT id, topic, key, payload FROM \"%s\" ORDER BY id LIMIT $1::int "
             "FOR UPDATE SKIP LOCKED",
             table);
    struct db_result *r = NULL;
    struct kafka_ack **acks = NULL;
    int64_t *ids = NULL;
    enum outbox_fate *fates = NULL;
    const char **errors = NULL;
    int rows = 0, produced = 0, done = 0, nacked = 0;

    enum db_status st = db_begin(db);
    if (st != DB_OK)
        return st;
    /* One relay per schema at a time: two replicas publishing disjoint rows
     * concurrently could reorder one friend's events. A replica that finds
     * the lock taken simply has nothing to do this round. */
    st = db_exec(db, "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.' || $1))", 1,
                 lock_params, &r);
    if (st != DB_OK)
        goto fail;
    if (strcmp(db_result_value(r, 0, 0), "t") != 0) {
        db_result_free(&r);
        db_rollback(db);
        return 0;
    }
    db_result_free(&r);
    st = db_execv(db, select_sql, 1, params, NULL, NULL, true, &r);
    if (st != DB_OK)
        goto fail;
    rows = db_result_rows(r);
    if (rows == 0) {
        db_result_free(&r);
        st = db_commit(db);
        return st == DB_OK ? 0 : st;
    }
    /* With the broker away, producing would only pile another copy of every
     * row into librdkafka's queue each round; wait until it answers. */
    if (!kafka_producer_ready(producer, OUTBOX_PROBE_MS)) {
        db_result_free(&r);
        db_rollback(db);
        return 0;
    }
    acks = calloc((size_t)rows, sizeof *acks);
    ids = calloc((size_t)rows, sizeof *ids);
    fates = calloc((size_t)rows, sizeof *fates);
    errors = calloc((size_t)rows, sizeof *errors);
    if (!acks || !ids || !fates || !errors) {
        st = DB_FATAL;
        goto fail;
    }

    for (; produced < rows; produced++) {
        if (db_result_length(r, produced, 0) != 8) {
            st = DB_FATAL;
            goto fail;
        }
        ids[produced] = outbox_int8_decode(db_result_value(r, produced, 0));
        const char *topic = db_result_value(r, produced, 1);
        bool nokey = db_result_isnull(r, produced, 2);
        int rc = kafka_produce(producer, topic, nokey ? NULL : db_result_value(r, produced, 2),
                               nokey ? 0 : db_result_length(r, produced, 2),
                               db_result_value(r, produced, 3), db_result_length(r, produced, 3),
                               &acks[produced]);
        if (rc == 0) {
            fates[produced] = OUTBOX_QUEUED;
        } else if (rc == KAFKA_FAILED_PERMANENT) {
            /* librdkafka refused this record itself (too large): it never
             * will take it, and it is not in the sequence the later rows
             * follow, so they go on. */
            fates[produced] = OUTBOX_DEAD;
            errors[produced] = kafka_produce_error();
        } else {
            /* Queue full or unknown topic: later rows must not overtake this
             * one, so stop producing. */
            char id[24];
            snprintf(id, sizeof id, "%lld", (long long)ids[produced]);
            log_warn("outbox row not queued; relay stops here until next round", "table", table,
                     "topic", topic, "outbox_id", id);
            break;
        }
    }

    /* One deadline for the whole batch; acks arrive roughly in order, so the
     * first waits longest and the rest are usually already complete. Rows
     * are finished in order, up to the first without an ack. */
    int64_t deadline = clock_mono_ms() + (ack_timeout_ms > 0 ? ack_timeout_ms : 0);
    for (; done < produced; done++) {
        if (fates[done] == OUTBOX_DEAD)
            continue;
        int64_t left = deadline - clock_mono_ms();
        int verdict = kafka_ack_wait(acks[done], left > 0 ? (int)left : 0);
        if (verdict == 0) {
            fates[done] = OUTBOX_ACKED;
            continue;
        }
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)ids[done]);
        if (verdict == KAFKA_FAILED_PERMANENT) {
            const char *error = kafka_ack_error(acks[done]);
            verdict = outbox_probe_alone(producer, r, done, acks + done + 1, produced - done - 1,
                                         deadline, ack_timeout_ms, &error);
            if (verdict == 0 || verdict == KAFKA_FAILED_PERMANENT) {
                fates[done] = verdict == 0 ? OUTBOX_ACKED : OUTBOX_DEAD;
                errors[done] = error;
                done++;
            }
            /* The rows after it had their verdicts read by the probe, not
             * in order: the next round publishes them again. */
            break;
        }
        log_warn(verdict < 0 ? "outbox row delivery failed; kept for the next round"
                             : "outbox row not acknowledged in time; kept for the next round",
                 "table", table, "topic", db_result_value(r, done, 1), "outbox_id", id);
        break;
    }

    /* The acknowledged rows of the finished prefix, deleted in one go (ids
     * compacted in place), and each dead one moved aside. */
    for (int i = 0; i < done; i++) {
        if (fates[i] == OUTBOX_ACKED)
            ids[nacked++] = ids[i];
        else if (fates[i] == OUTBOX_DEAD) {
            int64_t id = ids[i];
            st = outbox_bury(db, table, id, r, i, errors[i]);
            if (st != DB_OK)
                goto fail;
            round->dead++;
        }
    }
    if (nacked > 0) {
        st = outbox_delete(db, table, ids, nacked);
        if (st != DB_OK)
            goto fail;
    }
    st = db_commit(db);
    if (st != DB_OK)
        goto fail_after_commit;
    round->published = nacked;
    /* One line per buried row, once it is really in dead_letter: its topic,
     * size and the broker's reason, never its bytes. */
    for (int i = 0; i < done; i++) {
        if (fates[i] != OUTBOX_DEAD)
            continue;
        char id[24], bytes[24];
        snprintf(id, sizeof id, "%lld", (long long)outbox_int8_decode(db_result_value(r, i, 0)));
        snprintf(bytes, sizeof bytes, "%zu", db_result_length(r, i, 2) + db_result_length(r, i, 3));
        log_error("outbox row can never be published; moved to dead_letter", "table", table,
                  "topic", db_result_value(r, i, 1), "outbox_id", id, "bytes", bytes, "error",
                  errors[i] && errors[i][0] ? errors[i] : "UNKNOWN");
    }
    st = DB_OK;
    goto out;

fail:
    db_rollback(db);
fail_after_commit:
    /* Whatever was published is republished next round; inboxes absorb it. */
    *round = none;
out:
    for (int i = 0; acks && i < rows; i++)
        if (acks[i])
            kafka_ack_release(&acks[i]);
    free(acks);
    free(ids);
    free(fates);
    free(errors);
    db_result_free(&r);
    return st == DB_OK ? round->published + round->dead : st;
}

long outbox_depth(struct db *db)
{
    return outbox_depth_table(db, "outbox");
}

long outbox_depth_table(struct db *db, const char *table)
{
    if (!db || !outbox_table_ok(table))
        return DB_FATAL;
    struct db_result *r = NULL;
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", table);
    enum db_status st = db_exec(db, sql, 0, NULL, &r);
    if (st != DB_OK)
        return st;
    char *end = NULL;
    const char *v = db_result_value(r, 0, 0);
    long n = v ? strtol(v, &end, 10) : -1;
    if (!v || end == v || *end != '\0')
        n = DB_FATAL;
    db_result_free(&r);
    return n;
}
