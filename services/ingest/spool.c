/* Durability for ingest's events: the broker's ack within the budget, else a
 * committed spool row, else a refusal (docs/architecture.md, Guarantee 1).
 *
 * Spool writes come from the public server's worker threads, so they get a
 * small pool of connections, each guarded by its own mutex; they happen
 * only while the broker is slow or away, when every request already waits
 * out the budget, so a few connections are plenty. The relay is ingest's
 * second outbox relay (common/outbox_relay.h, started in main.c on this
 * table); it only publishes when the broker answers a metadata request:
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

#include "db.h"
#include "log.h"
#include "metrics.h"

#define SPOOL_TABLE "spool"
#define SPOOL_CONNECTIONS_MAX 16

struct spool_conn {
    pthread_mutex_t mu;
    struct db *db; /* NULL until first needed, or after a failed connect */
};

struct spool {
    char *database_url;
    int nconns;
    struct spool_conn conns[SPOOL_CONNECTIONS_MAX];
    atomic_uint next;
    /* Metrics (the registry owns them). */
    struct metric *spooled;
    struct metric *write_failures;
};

struct spool *spool_new(const char *database_url, int connections, char *errstr, size_t errcap)
{
    if (!database_url) {
        snprintf(errstr, errcap, "spool needs a database URL");
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
    sp->nconns = connections < 1                       ? 1
                 : connections > SPOOL_CONNECTIONS_MAX ? SPOOL_CONNECTIONS_MAX
                                                       : connections;
    for (int i = 0; i < sp->nconns; i++)
        pthread_mutex_init(&sp->conns[i].mu, NULL);
    atomic_init(&sp->next, 0);
    sp->spooled = metrics_counter("kizuna_ingest_spooled_events_total",
                                  "Events written to ingest.spool because the broker had not "
                                  "confirmed them within the ack budget.",
                                  "topic");
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
