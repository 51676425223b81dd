/* Durability for ingest's events: the broker's ack within the budget, else a
 * committed spool row, else a refusal (docs/architecture.md, Guarantee 1).
 *
 * Spool writes come from the public server's worker threads, so they get a
 * small pool of connections, each guarded by its own mutex; they happen
 * only while the broker is slow or away, when every request already waits
 * out the budget, so a few connections are plenty. The relay has its own
 * connection and runs on one thread.
 *
 * The relay only publishes when the broker answers a metadata request:
 * while it is away, every round would queue another copy of each waiting row
 * in the producer, and all those copies would be delivered once it is back.
 * Spooled rows and events produced directly after the broker returns are not
 * ordered with respect to each other; consumers order a friend's events by
 * LINE's timestamp and deduplicate by id (Guarantee 2). */
#include "spool.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"

#define SPOOL_TABLE "spool"
#define SPOOL_CONNECTIONS_MAX 16
/* One relay round publishes at most this many rows and waits this long for
 * their acks: the broker has just come back, so give it time. */
#define SPOOL_RELAY_BATCH 500
#define SPOOL_RELAY_ACK_MS 5000
/* How long the relay waits for the broker's metadata before skipping a round. */
/* The depth gauge is a count(*), refreshed at most this often. */
#define SPOOL_DEPTH_EVERY_MS 1000
/* Repeated "cannot reach PostgreSQL" from the relay is logged this often. */
#define SPOOL_RELAY_LOG_EVERY_MS 30000
/* After a database error the relay pauses, doubling up to this, so that an
 * outage is not a reconnect (and a log line) every round. */
#define SPOOL_RELAY_BACKOFF_MAX_MS 5000

struct spool_conn {
    pthread_mutex_t mu;
    struct db *db; /* NULL until first needed, or after a failed connect */
};

struct spool {
    char *database_url;
    struct kafka_producer *producer;
    int nconns;
    struct spool_conn conns[SPOOL_CONNECTIONS_MAX];
    atomic_uint next;
    /* Relay thread only. */
    struct db *relay_db;
    int64_t depth_at_ms;
    int64_t relay_logged_at_ms;
    int64_t relay_resume_at_ms;
    int64_t relay_backoff_ms;
    /* Metrics (the registry owns them). */
    struct metric *depth;
    struct metric *spooled;
    struct metric *relayed;
    struct metric *write_failures;
};

static int64_t spool_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct spool *spool_new(const char *database_url, struct kafka_producer *producer, int connections,
                        char *errstr, size_t errcap)
{
    if (!database_url || !producer) {
        snprintf(errstr, errcap, "spool needs a database URL and a producer");
        return NULL;
    }
    struct spool *sp = calloc(1, sizeof *sp);
    if (!sp) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    size_t len = strlen(database_url) + 1;
    sp->database_url = malloc(len);
    if (!sp->database_url) {
        free(sp);
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    memcpy(sp->database_url, database_url, len);
    sp->producer = producer;
    sp->nconns = connections < 1                       ? 1
                 : connections > SPOOL_CONNECTIONS_MAX ? SPOOL_CONNECTIONS_MAX
                                                       : connections;
    for (int i = 0; i < sp->nconns; i++)
        pthread_mutex_init(&sp->conns[i].mu, NULL);
    atomic_init(&sp->next, 0);
    sp->depth = metrics_gauge("kizuna_ingest_spool_depth",
                              "Events in ingest.spool waiting for the broker.", NULL);
    sp->spooled = metrics_counter("kizuna_ingest_spooled_events_total",
                                  "Events written to ingest.spool because the broker had not "
                                  "confirmed them within the ack budget.",
                                  "topic");
    sp->relayed = metrics_counter("kizuna_ingest_spool_relayed_total",
                                  "Spooled events republished and acknowledged.", NULL);
    sp->write_failures =
        metrics_counter("kizuna_ingest_spool_write_failures_total",
                        "Spool writes that failed (the request was answered 503).", NULL);
    return sp;
}

void spool_free(struct spool **sp)
{
    if (!sp || !*sp)
        return;
    struct spool *s = *sp;
    for (int i = 0; i < s->nconns; i++) {
        db_free(&s->conns[i].db);
        pthread_mutex_destroy(&s->conns[i].mu);
    }
    db_free(&s->relay_db);
    free(s->database_url);
    free(s);
    *sp = NULL;
}

/* A free connection if there is one, else waits for one; returns it locked. */
static struct spool_conn *spool_conn_acquire(struct spool *sp)
{
    unsigned start = atomic_fetch_add(&sp->next, 1u);
    for (int i = 0; i < sp->nconns; i++) {
        struct spool_conn *c = &sp->conns[(start + (unsigned)i) % (unsigned)sp->nconns];
        if (pthread_mutex_trylock(&c->mu) == 0)
            return c;
    }
    struct spool_conn *c = &sp->conns[start % (unsigned)sp->nconns];
    pthread_mutex_lock(&c->mu);
    return c;
}

/* Inserts recs[i] for every i with want[i], in one transaction. */
static enum db_status spool_write(struct spool *sp, const struct spool_record *recs,
                                  const bool *want, size_t n)
{
    struct spool_conn *c = spool_conn_acquire(sp);
    enum db_status st = DB_OK;
    if (!c->db) {
        char errstr[256];
        c->db = db_connect(sp->database_url, errstr, sizeof errstr);
        if (!c->db) {
            log_error("spool cannot connect to PostgreSQL", "error", errstr);
            st = DB_RETRY;
            goto out;
        }
    }
    st = db_begin(c->db);
    if (st != DB_OK)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        if (!want[i])
            continue;
        const struct spool_record *r = &recs[i];
        if (r->len > INT_MAX || r->keylen > INT_MAX) {
            st = DB_FATAL;
            goto fail;
        }
        const char *values[] = {r->topic, r->key, r->payload ? r->payload : ""};
        const int lengths[] = {0, (int)r->keylen, (int)r->len};
        const int binary[] = {0, 1, 1};
        st =
            db_execv(c->db, "INSERT INTO " SPOOL_TABLE " (topic, key, payload) VALUES ($1, $2, $3)",
                     3, values, lengths, binary, false, NULL);
        if (st != DB_OK)
            goto fail;
    }
    st = db_commit(c->db);
    if (st != DB_OK)
        goto fail_logged;
    goto out;
fail:
    db_rollback(c->db);
fail_logged:
    log_error("spool write failed", "error", db_error_message(c->db), "sqlstate",
              db_error_sqlstate(c->db));
out:
    pthread_mutex_unlock(&c->mu);
    return st;
}

int spool_store(struct spool *sp, struct spool_record *recs, size_t n)
{
    if (n == 0)
        return 0;
    if (!sp || !recs)
        return -1;
    bool *pending = calloc(n, sizeof *pending);
    size_t npending = 0;
    for (size_t i = 0; i < n; i++) {
        bool want = recs[i].state == SPOOL_PENDING;
        if (pending)
            pending[i] = want;
        npending += want;
    }
    if (npending == 0) {
        free(pending);
        return 0;
    }
    enum spool_state result = SPOOL_LOST;
    if (pending && spool_write(sp, recs, pending, n) == DB_OK)
        result = SPOOL_SPOOLED;
    else
        metrics_add(sp->write_failures, 1);
    for (size_t i = 0; i < n; i++) {
        if (recs[i].state != SPOOL_PENDING)
            continue;
        recs[i].state = result;
        if (result == SPOOL_SPOOLED)
            metrics_add(sp->spooled, 1, recs[i].topic);
    }
    free(pending);
    return result == SPOOL_SPOOLED ? 0 : -1;
}

/* The relay's connection, (re)opened on demand. */
static struct db *spool_relay_db(struct spool *sp)
{
    if (sp->relay_db)
        return sp->relay_db;
    char errstr[256];
    sp->relay_db = db_connect(sp->database_url, errstr, sizeof errstr);
    if (!sp->relay_db) {
        int64_t now = spool_now_ms();
        if (sp->relay_logged_at_ms == 0 ||
            now - sp->relay_logged_at_ms >= SPOOL_RELAY_LOG_EVERY_MS) {
            log_warn("spool relay cannot connect to PostgreSQL", "error", errstr);
            sp->relay_logged_at_ms = now;
        }
    }
    return sp->relay_db;
}

long spool_depth(struct spool *sp)
{
    struct db *db = sp ? spool_relay_db(sp) : NULL;
    if (!db)
        return DB_RETRY;
    return outbox_depth_table(db, SPOOL_TABLE);
}

static void spool_depth_refresh(struct spool *sp, bool now)
{
    int64_t t = spool_now_ms();
    if (!now && sp->depth_at_ms != 0 && t - sp->depth_at_ms < SPOOL_DEPTH_EVERY_MS)
        return;
    long depth = spool_depth(sp);
    if (depth >= 0) {
        metrics_set(sp->depth, (double)depth);
        sp->depth_at_ms = t;
    }
}

/* Remembers a database error: the next rounds are skipped for a while. */
static int spool_relay_failed(struct spool *sp, int st)
{
    sp->relay_backoff_ms = sp->relay_backoff_ms ? sp->relay_backoff_ms * 2 : 200;
    if (sp->relay_backoff_ms > SPOOL_RELAY_BACKOFF_MAX_MS)
        sp->relay_backoff_ms = SPOOL_RELAY_BACKOFF_MAX_MS;
    sp->relay_resume_at_ms = spool_now_ms() + sp->relay_backoff_ms;
    return st;
}

int spool_relay_once(struct spool *sp)
{
    if (!sp)
        return DB_FATAL;
    if (sp->relay_resume_at_ms && spool_now_ms() < sp->relay_resume_at_ms)
        return 0;
    struct db *db = spool_relay_db(sp);
    if (!db)
        return spool_relay_failed(sp, DB_RETRY);
    spool_depth_refresh(sp, false);

    struct db_result *r = NULL;
    enum db_status st = db_exec(db, "SELECT EXISTS (SELECT 1 FROM " SPOOL_TABLE ")", 0, NULL, &r);
    if (st != DB_OK)
        return spool_relay_failed(sp, st);
    bool waiting = strcmp(db_result_value(r, 0, 0), "t") == 0;
    db_result_free(&r);
    sp->relay_backoff_ms = 0;
    sp->relay_resume_at_ms = 0;
    if (!waiting)
        return 0;

    int published = outbox_relay_table_once(db, SPOOL_TABLE, sp->producer, SPOOL_RELAY_BATCH,
                                            SPOOL_RELAY_ACK_MS);
    if (published < 0)
        return spool_relay_failed(sp, published);
    if (published > 0) {
        char count[16];
        snprintf(count, sizeof count, "%d", published);
        log_info("spooled events republished", "events", count);
        metrics_add(sp->relayed, (double)published);
        spool_depth_refresh(sp, true);
    }
    return published;
}
