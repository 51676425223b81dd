/* The outbox relay as a worker (see outbox_relay.h). Each round is one
 * outbox_relay_table_once: a transaction and a wait for the broker's acks.
 * The pacing is a pure function (outbox_relay_pace_next) so that its
 * choices are tested without a database: a full batch goes again at once,
 * a part batch lingers (uninterruptibly, or the kick that every commit
 * sends would cut the pause that lets rows gather), an empty round idles
 * until a kick, and a database error backs off, doubling, with one
 * warning per outage rather than one per round. A round that moved a row
 * to dead_letter made progress like one that published it. */
#include "outbox_relay.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "db.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "service.h"
#include "shutdown.h"
#include "worker.h"

#define RELAY_BATCH_DEFAULT 500
#define RELAY_ACK_MS_DEFAULT 5000
#define RELAY_IDLE_MS_DEFAULT 100
#define RELAY_LINGER_MS_DEFAULT 20
#define RELAY_BACKOFF_MIN_MS 200
#define RELAY_BACKOFF_MAX_MS 5000
/* The depth gauge is a count(*), refreshed at most this often. */
#define RELAY_DEPTH_EVERY_MS 1000
#define RELAY_NAME_MAX 48
#define RELAY_TABLE_MAX 64
#define RELAY_METRIC_MAX 96

struct outbox_relay {
    char name[RELAY_NAME_MAX];
    char table[RELAY_TABLE_MAX];
    struct kafka_producer *producer; /* borrowed */
    struct db *db;                   /* the worker's thread only */
    struct worker *worker;
    struct outbox_relay_pace pace;
    int ack_timeout_ms;
    bool log_published;
    bool idle;           /* the last round published nothing */
    int64_t depth_at_ms; /* monotonic; 0: never refreshed */
    struct metric *depth;
    struct metric *relayed;
    struct metric *dead; /* kizuna_outbox_dead_letters_total{table}, shared by every relay */
};

enum outbox_relay_step outbox_relay_pace_next(struct outbox_relay_pace *pace, int n, bool stopping,
                                              bool *warn, bool *recovered)
{
    *warn = false;
    *recovered = false;
    if (n < 0) {
        *warn = !pace->failing;
        pace->failing = true;
        pace->backoff_ms = pace->backoff_ms ? pace->backoff_ms * 2 : RELAY_BACKOFF_MIN_MS;
        if (pace->backoff_ms > RELAY_BACKOFF_MAX_MS)
            pace->backoff_ms = RELAY_BACKOFF_MAX_MS;
        /* While draining, a database error ends the drain: the rows stay
         * for the next start. */
        return stopping ? OUTBOX_RELAY_END : OUTBOX_RELAY_BACKOFF;
    }
    *recovered = pace->failing;
    pace->failing = false;
    pace->backoff_ms = 0;
    if (n == 0)
        return stopping ? OUTBOX_RELAY_END : OUTBOX_RELAY_IDLE;
    if (n >= pace->batch)
        return OUTBOX_RELAY_AGAIN;
    /* A part batch while draining: one more round, which finds nothing. */
    return stopping ? OUTBOX_RELAY_AGAIN : OUTBOX_RELAY_LINGER;
}

static void relay_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void relay_depth_refresh(struct outbox_relay *rl, bool now_anyway)
{
    int64_t now = clock_mono_ms();
    if (!now_anyway && rl->depth_at_ms != 0 && now - rl->depth_at_ms < RELAY_DEPTH_EVERY_MS)
        return;
    long depth = outbox_depth_table(rl->db, rl->table);
    if (depth >= 0) {
        metrics_set(rl->depth, (double)depth);
        rl->depth_at_ms = now;
    }
}

/* 1 if any row waits, 0 if none, or a db_status. One statement, where a
 * relay round on an empty table is four (begin, lock, select, commit). */
static int relay_rows_waiting(struct outbox_relay *rl)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT EXISTS (SELECT 1 FROM \"%s\")", rl->table);
    struct db_result *r = NULL;
    enum db_status st = db_exec(rl->db, sql, 0, NULL, &r);
    if (st != DB_OK)
        return st;
    int waiting = strcmp(db_result_value(r, 0, 0), "t") == 0;
    db_result_free(&r);
    return waiting;
}

static long relay_round(struct worker *w, void *ctx)
{
    struct outbox_relay *rl = ctx;
    bool stopping = worker_stopping(w);
    /* While idle, a cheap look first: most idle rounds end there. */
    bool was_idle = rl->idle;
    int n = was_idle ? relay_rows_waiting(rl) : 1;
    bool empty = n == 0;
    struct outbox_round round = {0};
    if (n > 0)
        n = outbox_relay_table_round(rl->db, rl->table, rl->producer, rl->pace.batch,
                                     rl->ack_timeout_ms, &round);
    rl->idle = n == 0;
    bool warn = false, recovered = false;
    enum outbox_relay_step step = outbox_relay_pace_next(&rl->pace, n, stopping, &warn, &recovered);
    if (warn)
        log_warn("outbox relay: database error; retrying until it clears", "relay", rl->name,
                 "table", rl->table, "error", db_error_message(rl->db));
    if (recovered)
        log_info("outbox relay: database reachable again", "relay", rl->name, "table", rl->table);
    if (round.dead > 0)
        metrics_add(rl->dead, (double)round.dead, rl->table);
    if (round.published > 0) {
        metrics_add(rl->relayed, (double)round.published);
        if (rl->log_published) {
            char count[16];
            snprintf(count, sizeof count, "%d", round.published);
            log_info("outbox relay: rows republished", "relay", rl->name, "table", rl->table,
                     "events", count);
        }
    }
    if (empty)
        metrics_set(rl->depth, 0);
    else if (n >= 0)
        relay_depth_refresh(rl, n == 0 && !was_idle); /* the gauge settles as the relay idles */

    switch (step) {
    case OUTBOX_RELAY_AGAIN:
        return 0;
    case OUTBOX_RELAY_LINGER:
        relay_sleep_ms(rl->pace.linger_ms);
        return 0;
    case OUTBOX_RELAY_IDLE:
        return rl->pace.idle_ms;
    case OUTBOX_RELAY_BACKOFF:
        return rl->pace.backoff_ms;
    case OUTBOX_RELAY_END:
        break;
    }
    return WORKER_DONE;
}

static void relay_free(struct outbox_relay *rl)
{
    db_free(&rl->db);
    free(rl);
}

struct outbox_relay *outbox_relay_start(const struct outbox_relay_options *opts, char *errstr,
                                        size_t errcap)
{
    if (!opts || !opts->dsn || !opts->producer) {
        snprintf(errstr, errcap, "outbox relay needs a database URL and a producer");
        return NULL;
    }
    struct outbox_relay *rl = calloc(1, sizeof *rl);
    if (!rl) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    snprintf(rl->name, sizeof rl->name, "%s", opts->name ? opts->name : "outbox-relay");
    snprintf(rl->table, sizeof rl->table, "%s", opts->table ? opts->table : "outbox");
    rl->producer = opts->producer;
    rl->pace.batch = opts->batch > 0 ? opts->batch : RELAY_BATCH_DEFAULT;
    rl->pace.idle_ms = opts->idle_ms > 0 ? opts->idle_ms : RELAY_IDLE_MS_DEFAULT;
    rl->pace.linger_ms = opts->linger_ms > 0 ? opts->linger_ms : RELAY_LINGER_MS_DEFAULT;
    rl->ack_timeout_ms = opts->ack_timeout_ms > 0 ? opts->ack_timeout_ms : RELAY_ACK_MS_DEFAULT;
    rl->log_published = opts->log_published;

    char prefix[RELAY_METRIC_MAX], name[RELAY_METRIC_MAX + 16], help[160];
    if (opts->metrics)
        snprintf(prefix, sizeof prefix, "%s", opts->metrics);
    else
        snprintf(prefix, sizeof prefix, "kizuna_%s", rl->table);
    snprintf(name, sizeof name, "%s_depth", prefix);
    snprintf(help, sizeof help, "Rows in %s waiting for the relay.", rl->table);
    rl->depth = metrics_gauge(name, help, NULL);
    snprintf(name, sizeof name, "%s_relayed_total", prefix);
    snprintf(help, sizeof help, "Rows of %s published and acknowledged by the broker.", rl->table);
    rl->relayed = metrics_counter(name, help, NULL);
    rl->dead = metrics_counter(OUTBOX_RELAY_DEAD_METRIC,
                               "Rows an outbox relay moved to dead_letter because the broker "
                               "can never take them (too large, invalid, not authorized), by "
                               "the table they left.",
                               "table");
    metrics_add(rl->dead, 0, rl->table); /* the series exists before the first, for alerts */

    rl->db = db_connect(opts->dsn, errstr, errcap);
    if (!rl->db)
        goto fail;
    /* Fails fast on a name that is not an identifier or not a table, and
     * gives the gauge its first value. */
    long depth = outbox_depth_table(rl->db, rl->table);
    if (depth < 0) {
        snprintf(errstr, errcap, "outbox relay cannot read table %s: %s", rl->table,
                 db_error_message(rl->db));
        goto fail;
    }
    metrics_set(rl->depth, (double)depth);
    rl->worker = worker_start_rounds(rl->name, relay_round, rl, errstr, errcap);
    if (!rl->worker)
        goto fail;
    return rl;

fail:
    relay_free(rl);
    return NULL;
}

void outbox_relay_kick(void *relay)
{
    struct outbox_relay *rl = relay;
    if (rl)
        worker_wake(rl->worker);
}

void outbox_relay_stop(struct outbox_relay **relay, long budget_ms)
{
    if (!relay || !*relay)
        return;
    worker_stop(&(*relay)->worker, budget_ms);
    relay_free(*relay);
    *relay = NULL;
}

static void relay_drain_step(void *ctx)
{
    struct outbox_relay *rl = ctx;
    outbox_relay_stop(&rl, OUTBOX_RELAY_STOP_MS);
}

struct outbox_relay *outbox_relay_start_service(struct service *svc, char *errstr, size_t errcap)
{
    char name[RELAY_NAME_MAX];
    snprintf(name, sizeof name, "%s-outbox-relay", svc->def->name);
    struct outbox_relay *rl = outbox_relay_start(
        &(struct outbox_relay_options){
            .name = name, .dsn = svc->database_url, .producer = svc->producer},
        errstr, errcap);
    if (rl && shutdown_register(SHUTDOWN_FINISH_INFLIGHT, "stop the outbox relay", relay_drain_step,
                                rl) != 0) {
        outbox_relay_stop(&rl, 0);
        snprintf(errstr, errcap, "too many drain steps");
    }
    return rl;
}
