/* The consumer loop with the inbox (see consumer.h).
 *
 * One transaction per batch keeps the common case at one commit for many
 * records. A handler that answers RETRY or MALFORMED for record k leaves
 * the transaction holding k's partial effects; rather than a savepoint per
 * record (each a subtransaction: past 64 of them PostgreSQL's snapshots
 * slow down for every session), the batch is rolled back and the records
 * before k are run again in a fresh transaction, which commits. That costs
 * a second run of those handlers, only on the rare batch with a RETRY or a
 * MALFORMED, and their first run left nothing behind.
 *
 * Offsets: kafka_consumer_poll_batch stores, per partition, the offsets of
 * records answered DONE or SKIP up to the partition's first RETRY, and
 * seeks the partition back to that record. A batch that hit a database
 * error leaves every record RETRY, so every partition starts again from
 * its first record of the batch. */
#include "consumer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "inbox.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "outbox_relay.h"
#include "service.h"
#include "shutdown.h"
#include "worker.h"

#define CONSUMER_BATCH_DEFAULT 100
#define CONSUMER_BATCH_MAX 5000
#define CONSUMER_POLL_MS_DEFAULT 200
#define CONSUMER_BACKOFF_MIN_MS 100
#define CONSUMER_BACKOFF_MAX_MS 5000
#define CONSUMER_STOP_MS 5000
#define CONSUMER_NAME_MAX 64
#define CONSUMER_TOPICS_MAX 16

/* What became of a record in the transaction being built. */
enum consumer_kind {
    CONSUMER_KIND_NO_ID,     /* no usable event id: skipped before the database */
    CONSUMER_KIND_DUPLICATE, /* already in the inbox: the handler did not run */
    CONSUMER_KIND_HANDLED,   /* claimed, and the handler answered DONE */
};

struct consumer {
    char name[CONSUMER_NAME_MAX];
    consumer_handler handler;
    void *ctx;
    consumer_event_id_fn event_id;
    struct outbox_relay *relay;
    size_t batch;
    int poll_ms;
    struct kafka_consumer *kafka;
    struct db *db;
    struct worker *worker;
    /* The worker's thread only: */
    long backoff_ms;
    bool db_failing;
    bool retry;        /* this round's batch asked to come again */
    bool kafka_failed; /* the last poll failed */
    char (*ids)[CONSUMER_EVENT_ID_MAX + 1];
    enum consumer_kind *kinds;
    const char **no_id_reasons;
    struct metric *records;   /* kizuna_consumer_records_total{consumer,topic,outcome} */
    struct metric *malformed; /* kizuna_consumer_malformed_total{consumer,topic,reason} */
};

/* --- the event id ------------------------------------------------------------ */

/* A base-128 varint, at most 10 bytes. */
static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* The last occurrence of length-delimited field `field` in buf. Returns 1
 * and sets *out and *outlen, 0 when absent, -1 when buf is not a protobuf
 * message (truncated, a group, an unknown wire type). */
static int pb_field_bytes(const uint8_t *buf, size_t len, uint64_t field, const uint8_t **out,
                          size_t *outlen)
{
    const uint8_t *p = buf, *end = buf + len;
    int found = 0;
    while (p < end) {
        uint64_t key, n;
        if (!pb_varint(&p, end, &key) || key >> 3 == 0)
            return -1;
        switch (key & 7) {
        case 0:
            if (!pb_varint(&p, end, &n))
                return -1;
            break;
        case 1:
        case 5: {
            size_t width = (key & 7) == 1 ? 8 : 4;
            if ((size_t)(end - p) < width)
                return -1;
            p += width;
            break;
        }
        case 2:
            if (!pb_varint(&p, end, &n) || n > (uint64_t)(end - p))
                return -1;
            if (key >> 3 == field && (key & 7) == 2) {
                *out = p;
                *outlen = (size_t)n;
                found = 1;
            }
            p += n;
            break;
        default:
            return -1;
        }
    }
    return found;
}

int consumer_event_id_envelope(const struct kafka_message *msg, char *out, size_t cap,
                               const char **reason)
{
    const uint8_t *env = NULL, *id = NULL;
    size_t envlen = 0, idlen = 0;
    int rc = pb_field_bytes(msg->value, msg->value ? msg->len : 0, 1, &env, &envlen);
    if (rc <= 0) {
        *reason = rc < 0 ? "not_protobuf" : "no_envelope";
        return -1;
    }
    rc = pb_field_bytes(env, envlen, 1, &id, &idlen);
    if (rc < 0) {
        *reason = "not_protobuf";
        return -1;
    }
    if (rc == 0 || idlen == 0) {
        *reason = "no_event_id";
        return -1;
    }
    if (idlen > CONSUMER_EVENT_ID_MAX || idlen >= cap) {
        *reason = "bad_event_id";
        return -1;
    }
    for (size_t i = 0; i < idlen; i++) {
        if (id[i] < 0x21 || id[i] > 0x7e) {
            *reason = "bad_event_id"; /* the inbox column is text: ASCII only */
            return -1;
        }
    }
    memcpy(out, id, idlen);
    out[idlen] = '\0';
    return 0;
}

/* --- one batch ---------------------------------------------------------------- */

static void consumer_db_failed(struct consumer *c, const char *what)
{
    if (!c->db_failing)
        log_warn("consumer: database error; the batch comes again until it clears", "consumer",
                 c->name, "during", what, "error", db_error_message(c->db));
    c->db_failing = true;
}

/* Runs records [start, end) in one transaction. Stops at the first record
 * whose handler does not answer DONE: rolls back, sets *stop to it and
 * *verdict / *reason to its answer. Else commits and sets *stop = end.
 * Returns 0, or -1 on a database error (rolled back). */
static int consumer_txn(struct consumer *c, const struct kafka_message *msgs, size_t start,
                        size_t end, size_t *stop, enum consumer_verdict *verdict,
                        const char **reason)
{
    if (db_begin(c->db) != DB_OK) {
        consumer_db_failed(c, "begin");
        db_rollback(c->db);
        return -1;
    }
    for (size_t i = start; i < end; i++) {
        if (c->kinds[i] == CONSUMER_KIND_NO_ID)
            continue;
        int claimed = inbox_claim(c->db, c->name, c->ids[i]);
        if (claimed < 0) {
            consumer_db_failed(c, "inbox claim");
            db_rollback(c->db);
            return -1;
        }
        if (claimed == 0) {
            c->kinds[i] = CONSUMER_KIND_DUPLICATE;
            continue;
        }
        c->kinds[i] = CONSUMER_KIND_HANDLED;
        struct consumer_record rec = {.msg = &msgs[i], .event_id = c->ids[i]};
        const char *why = NULL;
        enum consumer_verdict v = c->handler(c->ctx, c->db, &rec, &why);
        if (v != CONSUMER_DONE) {
            db_rollback(c->db);
            *stop = i;
            *verdict = v;
            *reason = why;
            return 0;
        }
    }
    if (db_commit(c->db) != DB_OK) {
        /* The outcome may be unknown (the connection went during COMMIT):
         * the batch comes again, and the inbox absorbs what did commit. */
        consumer_db_failed(c, "commit");
        return -1;
    }
    *stop = end;
    return 0;
}

static void consumer_log_record(const struct consumer *c, const struct kafka_message *msg,
                                const char *what, const char *reason)
{
    char partition[16], offset[24];
    snprintf(partition, sizeof partition, "%d", (int)msg->partition);
    snprintf(offset, sizeof offset, "%lld", (long long)msg->offset);
    log_write(reason ? LOG_WARN : LOG_INFO, what, "consumer", c->name, "topic", msg->topic,
              "partition", partition, "offset", offset, "reason", reason, (const char *)0);
}

static void consumer_malformed(struct consumer *c, const struct kafka_message *msg,
                               const char *reason)
{
    if (!reason || !reason[0])
        reason = "unspecified";
    metrics_add(c->records, 1, c->name, msg->topic, "malformed");
    metrics_add(c->malformed, 1, c->name, msg->topic, reason);
    consumer_log_record(c, msg, "consumer skipped a malformed record", reason);
}

/* Records [start, end) committed: their offsets may be stored. */
static void consumer_committed(struct consumer *c, const struct kafka_message *msgs, size_t start,
                               size_t end, enum kafka_handled *results)
{
    bool handled = false;
    for (size_t i = start; i < end; i++) {
        results[i] = c->kinds[i] == CONSUMER_KIND_NO_ID ? KAFKA_SKIP : KAFKA_DONE;
        switch (c->kinds[i]) {
        case CONSUMER_KIND_NO_ID:
            consumer_malformed(c, &msgs[i], c->no_id_reasons[i]);
            break;
        case CONSUMER_KIND_DUPLICATE:
            metrics_add(c->records, 1, c->name, msgs[i].topic, "duplicate");
            break;
        case CONSUMER_KIND_HANDLED:
            metrics_add(c->records, 1, c->name, msgs[i].topic, "handled");
            handled = true;
            break;
        }
    }
    if (handled)
        outbox_relay_kick(c->relay);
}

/* kafka_batch_handler: every result starts as KAFKA_RETRY. */
static void consumer_batch(void *ctx, const struct kafka_message *msgs, size_t n,
                           enum kafka_handled *results)
{
    struct consumer *c = ctx;
    for (size_t i = 0; i < n; i++) {
        const char *reason = NULL;
        bool ok = c->event_id(&msgs[i], c->ids[i], sizeof c->ids[i], &reason) == 0;
        c->kinds[i] = ok ? CONSUMER_KIND_HANDLED : CONSUMER_KIND_NO_ID;
        c->no_id_reasons[i] = ok ? NULL : reason;
    }
    bool db_error = false;
    size_t start = 0;
    while (start < n) {
        /* Find the longest prefix of [start, n) that commits with every
         * handler answering DONE; end is where it stopped. */
        size_t end = n;
        enum consumer_verdict verdict = CONSUMER_DONE;
        const char *reason = NULL;
        for (;;) {
            size_t stop = end;
            if (consumer_txn(c, msgs, start, end, &stop, &verdict, &reason) != 0) {
                db_error = true;
                break;
            }
            if (stop == end)
                break;
            end = stop; /* rolled back at stop: run the records before it again */
            if (end == start)
                break;
        }
        if (db_error)
            break; /* [start, n) stay RETRY */
        consumer_committed(c, msgs, start, end, results);
        if (end == n)
            break;
        if (verdict == CONSUMER_MALFORMED) {
            results[end] = KAFKA_SKIP;
            consumer_malformed(c, &msgs[end], reason);
            start = end + 1;
            continue;
        }
        /* RETRY: end and everything after it in the batch come again. */
        metrics_add(c->records, 1, c->name, msgs[end].topic, "retried");
        consumer_log_record(c, &msgs[end], "consumer handler asked to retry later", NULL);
        c->retry = true;
        break;
    }
    if (db_error) {
        c->retry = true;
    } else if (c->db_failing) {
        log_info("consumer: database reachable again", "consumer", c->name);
        c->db_failing = false;
    }
}

static long consumer_round(struct worker *w, void *ctx)
{
    struct consumer *c = ctx;
    if (worker_stopping(w))
        return WORKER_DONE;
    c->retry = false;
    int rc = kafka_consumer_poll_batch(c->kafka, c->poll_ms, c->batch, consumer_batch, c);
    if (rc < 0 && !c->kafka_failed)
        log_error("consumer: Kafka poll failed; retrying", "consumer", c->name);
    c->kafka_failed = rc < 0;
    if (!c->retry && rc >= 0) {
        c->backoff_ms = 0;
        return 0;
    }
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : CONSUMER_BACKOFF_MIN_MS;
    if (c->backoff_ms > CONSUMER_BACKOFF_MAX_MS)
        c->backoff_ms = CONSUMER_BACKOFF_MAX_MS;
    return c->backoff_ms;
}

/* --- lifecycle ------------------------------------------------------------------ */

static void consumer_step_stop(void *ctx)
{
    consumer_stop(ctx, CONSUMER_STOP_MS);
}

static void consumer_step_free(void *ctx)
{
    struct consumer *c = ctx;
    consumer_free(&c);
}

struct consumer *consumer_start(const struct consumer_options *opts, char *errstr, size_t errcap)
{
    const char *brokers = opts ? opts->brokers : NULL, *dsn = opts ? opts->dsn : NULL;
    if (opts && opts->service) {
        brokers = opts->service->brokers;
        dsn = opts->service->database_url;
    }
    size_t ntopics = 0;
    while (opts && opts->topics && opts->topics[ntopics])
        ntopics++;
    if (!opts || !opts->name || !opts->name[0] || !opts->handler || !brokers || !dsn ||
        ntopics == 0 || ntopics > CONSUMER_TOPICS_MAX || strlen(opts->name) >= CONSUMER_NAME_MAX) {
        snprintf(errstr, errcap,
                 "consumer needs a name (under %d bytes), 1 to %d topics, a handler, brokers "
                 "and a database URL",
                 CONSUMER_NAME_MAX, CONSUMER_TOPICS_MAX);
        return NULL;
    }
    struct consumer *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    snprintf(c->name, sizeof c->name, "%s", opts->name);
    c->handler = opts->handler;
    c->ctx = opts->ctx;
    c->event_id = opts->event_id ? opts->event_id : consumer_event_id_envelope;
    c->relay = opts->relay;
    c->batch = opts->batch ? opts->batch : CONSUMER_BATCH_DEFAULT;
    if (c->batch > CONSUMER_BATCH_MAX)
        c->batch = CONSUMER_BATCH_MAX;
    c->poll_ms = opts->poll_ms > 0 ? opts->poll_ms : CONSUMER_POLL_MS_DEFAULT;
    c->ids = calloc(c->batch, sizeof *c->ids);
    c->kinds = calloc(c->batch, sizeof *c->kinds);
    c->no_id_reasons = calloc(c->batch, sizeof *c->no_id_reasons);
    if (!c->ids || !c->kinds || !c->no_id_reasons) {
        snprintf(errstr, errcap, "out of memory");
        goto fail;
    }
    c->records = metrics_counter("kizuna_consumer_records_total",
                                 "Records taken by a consumer loop, by outcome: handled, duplicate "
                                 "(already in the inbox), malformed, retried.",
                                 "consumer,topic,outcome");
    c->malformed = metrics_counter(
        "kizuna_consumer_malformed_total",
        "Records skipped as malformed (their offsets stored), by reason.", "consumer,topic,reason");

    c->db = db_connect(dsn, errstr, errcap);
    if (!c->db)
        goto fail;
    struct kafka_consumer_options kopts = {
        .brokers = brokers,
        .group = opts->group ? opts->group : opts->name,
        .topics = opts->topics,
        .ntopics = ntopics,
        .from_beginning = opts->from_beginning,
        .session_timeout_ms = opts->session_timeout_ms,
        .caller_backs_off = true,
    };
    c->kafka = kafka_consumer_new(&kopts, errstr, errcap);
    if (!c->kafka)
        goto fail;
    c->worker = worker_start_rounds(c->name, consumer_round, c, errstr, errcap);
    if (!c->worker)
        goto fail;
    if (opts->service &&
        (shutdown_register(SHUTDOWN_STOP_ACCEPTING, "stop a consumer loop", consumer_step_stop,
                           c) != 0 ||
         shutdown_register(SHUTDOWN_STORE_OFFSETS, "commit a consumer's offsets and close it",
                           consumer_step_free, c) != 0)) {
        /* A step may be registered already: leave the consumer to it,
         * stopped, rather than free what it will touch. */
        consumer_stop(c, 0);
        snprintf(errstr, errcap, "too many drain steps");
        return NULL;
    }
    return c;

fail:
    consumer_free(&c);
    return NULL;
}

void consumer_stop(struct consumer *c, long budget_ms)
{
    if (c)
        worker_stop(&c->worker, budget_ms);
}

void consumer_free(struct consumer **cp)
{
    if (!cp || !*cp)
        return;
    struct consumer *c = *cp;
    worker_stop(&c->worker, CONSUMER_STOP_MS);
    kafka_consumer_free(&c->kafka); /* commits the stored offsets, leaves the group */
    db_free(&c->db);
    free(c->ids);
    free(c->kinds);
    free(c->no_id_reasons);
    free(c);
    *cp = NULL;
}
