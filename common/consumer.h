/* The consumer loop with the inbox: what a service writes for a topic is a
 * handler and one line of set-up. On a worker (common/worker.h) with its
 * own database connection and Kafka consumer, each round polls a batch,
 * begins one transaction, claims each record's event id in the inbox
 * (common/inbox.h), runs the handler for the new ones, commits, and only
 * then stores the offsets (common/kafka.h). So a record's effects and its
 * inbox row commit together, and a redelivered record (a rebalance, a
 * restart before the offsets were committed, a group reset, the same event
 * produced twice) finds its row and is skipped without running the handler.
 *
 * The handler answers one of three things:
 *  - CONSUMER_DONE: its effects are part of the batch's transaction.
 *  - CONSUMER_RETRY: not now (a dependency is missing, a lock is busy). Its
 *    effects are rolled back, the records before it are committed, its
 *    offset is not stored, the loop backs off (a stop cuts the wait short)
 *    and goes on from that same record; records after it in the batch come
 *    again too.
 *  - CONSUMER_MALFORMED: the record can never be handled. Its effects are
 *    rolled back, it is counted (kizuna_consumer_malformed_total{consumer,
 *    topic,reason}) and logged with its partition and offset, and its
 *    offset is stored with the others: never a poison pill that blocks the
 *    partition. A record without a usable event id is malformed before any
 *    handler sees it.
 * A database error (the begin, a claim, the commit) rolls the batch back
 * and retries it from its first record after a back-off; one warning per
 * outage is logged, and one line when it is over. A retry after a commit
 * whose outcome was lost is absorbed by the inbox.
 *
 * A handler is never run twice for one committed event, but it may run
 * again after its transaction was rolled back: its effects must go through
 * the db it is given (and outbox_enqueue), never elsewhere first.
 *
 * Segmentation's four topics and the scheduler's three are each a handler
 * and, in service_def.setup, a line such as:
 *     consumer_start(&(struct consumer_options){.name = "segmentation-friends",
 *         .topics = (const char *[]){"friend.events", NULL}, .handler = friends_handle,
 *         .ctx = app, .service = svc, .relay = relay}, errstr, sizeof errstr);
 * With .service the consumer takes the brokers and database URL from it
 * and registers its own drain steps. */
#ifndef KIZUNA_CONSUMER_H
#define KIZUNA_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>

struct consumer;
struct db;
struct kafka_message;
struct outbox_relay;
struct service;

enum consumer_verdict {
    CONSUMER_DONE = 0,
    CONSUMER_RETRY,
    CONSUMER_MALFORMED,
};

/* Event ids are at most this long (UUIDs are 36). */
#define CONSUMER_EVENT_ID_MAX 128

/* What a handler sees; borrowed for the call. */
struct consumer_record {
    const struct kafka_message *msg; /* topic, partition, offset, key, value */
    const char *event_id;            /* already claimed in the inbox */
};

/* Handles one new record inside the open transaction on db: writes its
 * effects there (never commits or rolls back). On CONSUMER_MALFORMED sets
 * *reason to a short static label for the metric and the log ("bad_payload").
 * A database error in the handler is its to classify: usually RETRY, or
 * MALFORMED when the record itself broke a constraint. Worker's thread. */
typedef enum consumer_verdict (*consumer_handler)(void *ctx, struct db *db,
                                                  const struct consumer_record *rec,
                                                  const char **reason);

/* Finds a record's event id: writes it NUL-terminated into out (cap bytes,
 * at least CONSUMER_EVENT_ID_MAX + 1) and returns 0, or returns -1 with
 * *reason set to a static label when the record has none. Pure. */
typedef int (*consumer_event_id_fn)(const struct kafka_message *msg, char *out, size_t cap,
                                    const char **reason);

/* The default: envelope.event_id, read straight from the protobuf wire
 * format (field 1 of field 1), which every Kizuna event carries
 * (proto/kizuna/v1/envelope.proto), so one function serves every topic.
 * The id must be 1..CONSUMER_EVENT_ID_MAX printable ASCII characters.
 * Reasons: "not_protobuf", "no_envelope", "no_event_id", "bad_event_id". */
int consumer_event_id_envelope(const struct kafka_message *msg, char *out, size_t cap,
                               const char **reason);

struct consumer_options {
    /* The inbox's consumer name, the worker's name and the metrics' label:
     * one per handler, stable across releases (it keys the inbox). */
    const char *name;
    const char *const *topics; /* ends with NULL */
    const char *group;         /* consumer group; NULL: name */
    consumer_handler handler;
    void *ctx;                     /* borrowed: must outlive the consumer */
    consumer_event_id_fn event_id; /* NULL: consumer_event_id_envelope */
    /* Brokers and database URL from svc, and consumer_stop / consumer_free
     * registered with the drain (SHUTDOWN_STOP_ACCEPTING and
     * SHUTDOWN_STORE_OFFSETS). NULL: brokers and dsn below, and the caller
     * stops and frees. */
    struct service *service;
    const char *brokers;
    const char *dsn;
    /* Kicked after each commit in which a handler ran (handlers enqueue to
     * the outbox); NULL: none. Borrowed: must outlive the consumer. */
    struct outbox_relay *relay;
    size_t batch;           /* records per transaction at most; 0: 100 */
    int poll_ms;            /* longest wait for a record; 0: 200 */
    bool from_beginning;    /* a new group starts at the earliest offset */
    int session_timeout_ms; /* 0: librdkafka's */
};

/* Connects, subscribes and starts the loop. opts' strings are copied; ctx,
 * service and relay are borrowed. Returns the consumer, or NULL with
 * errstr filled. With opts->service the drain owns the consumer: the
 * pointer is valid until SHUTDOWN_STORE_OFFSETS. Main thread. */
struct consumer *consumer_start(const struct consumer_options *opts, char *errstr, size_t errcap);

/* Ends the loop: the batch in hand finishes (committed, offsets stored),
 * then no more polls; waits up to budget_ms plus a second. Idempotent.
 * Any thread but the consumer's. */
void consumer_stop(struct consumer *c, long budget_ms);

/* Stops the loop if it still runs, commits the stored offsets, leaves the
 * group, closes the connection, frees, and sets *c to NULL. NULL or *c
 * NULL is a no-op. Any thread but the consumer's. */
void consumer_free(struct consumer **c);

#endif
