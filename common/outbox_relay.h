/* The ready-made relay of a schema's outbox (common/outbox.h): a worker
 * (common/worker.h) with its own database connection that runs
 * outbox_relay_table_once round after round. It lingers briefly after a
 * part batch so that a few more rows gather, idles when nothing waits, can
 * be kicked after a commit that enqueued, backs off on a database error
 * with one warning for the whole outage (and one line when it is over),
 * and on stop drains what it can within the budget. Rows left behind are
 * published by the next start or by another replica.
 *
 * A service starts it with one line, outbox_relay_start_service(svc, ...),
 * which also registers its stop with the drain; ingest starts a second one
 * for its spool (a table of the outbox's columns) with outbox_relay_start.
 *
 * Metrics (prefix from the options, "kizuna_outbox" by default):
 * <prefix>_depth (gauge: rows waiting, refreshed about once a second) and
 * <prefix>_relayed_total (counter: rows published and acknowledged); and,
 * one for every relay of the process, OUTBOX_RELAY_DEAD_METRIC{table}
 * (counter: rows moved to dead_letter, common/outbox.h; alerted on by
 * deploy/prometheus/kizuna-alerts.yml). */
#ifndef KIZUNA_OUTBOX_RELAY_H
#define KIZUNA_OUTBOX_RELAY_H

#include <stdbool.h>
#include <stddef.h>

struct kafka_producer;
struct outbox_relay;
struct service;

#define OUTBOX_RELAY_DEAD_METRIC "kizuna_outbox_dead_letters_total"

/* How long outbox_relay_start_service's drain step lets the relay publish
 * what is left. */
#define OUTBOX_RELAY_STOP_MS 3000

struct outbox_relay_options {
    const char *name;                /* worker and log name; NULL: "outbox-relay" */
    const char *dsn;                 /* the relay opens its own connection here */
    struct kafka_producer *producer; /* borrowed: must outlive the relay */
    /* A table of the outbox's columns (outbox.h); NULL: "outbox". */
    const char *table;
    /* Metric name prefix; NULL: "kizuna_outbox" for the outbox, else
     * "kizuna_<table>". Two relays of one process need two prefixes. */
    const char *metrics;
    int batch;          /* rows per round; 0: 500 */
    int ack_timeout_ms; /* how long a round waits for the broker's acks; 0: 5000 */
    int idle_ms;        /* wait when nothing was published (a kick cuts it); 0: 100 */
    int linger_ms;      /* pause after a part batch (kicks do not cut it); 0: 20 */
    /* Log every round that published, at info: for a table that fills only
     * in trouble (ingest's spool), where each republication is news. */
    bool log_published;
};

/* Connects and starts the relay's worker. opts and its strings are copied
 * (producer is borrowed). Returns the relay, or NULL with errstr filled.
 * Any thread, typically main's at setup. */
struct outbox_relay *outbox_relay_start(const struct outbox_relay_options *opts, char *errstr,
                                        size_t errcap);

/* The one line of set-up for a service: the relay of svc's outbox on its
 * database URL and producer, named "<service>-outbox-relay", whose stop
 * (budget OUTBOX_RELAY_STOP_MS) is registered with the drain at
 * SHUTDOWN_FINISH_INFLIGHT. The relay belongs to the drain: the returned
 * pointer is for kicks, valid until that stage. Main thread, in
 * service_def.setup or after service_start. NULL with errstr on failure. */
struct outbox_relay *outbox_relay_start_service(struct service *svc, char *errstr, size_t errcap);

/* Wakes the relay at once: call after committing a transaction that
 * enqueued. relay is a struct outbox_relay * (void * so that it fits a
 * `void (*)(void *)` callback such as deliveries_writer_start's); NULL is a
 * no-op. Any thread. */
void outbox_relay_kick(void *relay);

/* Publishes what is left for up to budget_ms, stops the worker, closes the
 * connection, frees, sets *relay to NULL. NULL or *relay NULL is a no-op.
 * Any thread but the relay's; call before the producer is flushed. */
void outbox_relay_stop(struct outbox_relay **relay, long budget_ms);

/* --- pacing: pure, exposed for tests ----------------------------------------- */

/* What the relay does after a round, apart from the database and Kafka. */
struct outbox_relay_pace {
    int batch, idle_ms, linger_ms;
    /* Updated by outbox_relay_pace_next: */
    long backoff_ms; /* current wait after a database error, 0 while healthy */
    bool failing;    /* a database error was warned about and has not cleared */
};

enum outbox_relay_step {
    OUTBOX_RELAY_AGAIN,   /* a full batch: another round at once */
    OUTBOX_RELAY_LINGER,  /* a part batch: pause linger_ms, then another round */
    OUTBOX_RELAY_IDLE,    /* nothing published: wait idle_ms or a kick */
    OUTBOX_RELAY_BACKOFF, /* database error: wait backoff_ms (doubling, capped) */
    OUTBOX_RELAY_END,     /* stopping and nothing more to do now */
};

/* The next step after a round that returned n (rows published, or < 0 for
 * a database error), with stopping true once the relay was asked to stop.
 * *warn becomes true when this error starts an outage (the one warning);
 * *recovered when this round ended one. Pure; the caller's thread. */
enum outbox_relay_step outbox_relay_pace_next(struct outbox_relay_pace *pace, int n, bool stopping,
                                              bool *warn, bool *recovered);

#endif
