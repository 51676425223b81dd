/* Kafka through librdkafka (only kafka.c includes rdkafka.h).
 * The producer is idempotent with acks=all; each message may carry an ack
 * object that its delivery report completes, or a callback that it calls. The consumer stores an offset
 * only after the handler reports its transaction committed. librdkafka's
 * logs are routed into log.h. */
#ifndef KIZUNA_KAFKA_H
#define KIZUNA_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka_limits.h"
#include "topics.h"

struct kafka_producer;
struct kafka_consumer;
struct kafka_ack;

/* Every client below reaches the brokers with the TLS and SASL settings of
 * kafka_security_set (common/kafka_security.h); plaintext until then. */

/* For tests and diagnostics: the value of a librdkafka property in the
 * configuration every client starts from (with the current TLS and SASL
 * settings), into out. Returns 0, or -1 with errstr when those settings
 * are refused by librdkafka or the property is unknown. Any thread. */
int kafka_conf_describe(const char *property, char *out, size_t cap, char *errstr, size_t errcap);

/* Creates a producer with a background thread that serves delivery reports.
 * Returns NULL and fills errstr on failure. One connection to each broker. */
struct kafka_producer *kafka_producer_new(const char *brokers, const char *client_id, char *errstr,
                                          size_t errcap);

/* The same with n (1..KAFKA_PRODUCER_CONNECTIONS_MAX) librdkafka instances,
 * each its own connection: librdkafka sends one ProduceRequest per partition
 * and the broker serves one request per connection at a time, so a producer
 * to many partitions at a high rate queues up behind one connection. A
 * record goes to the instance its key hashes to, so a key keeps its order. */
#define KAFKA_PRODUCER_CONNECTIONS_MAX 8
struct kafka_producer *kafka_producer_new_pool(const char *brokers, const char *client_id, int n,
                                               char *errstr, size_t errcap);

/* A message that failed either failed for now (the broker is away, the
 * local queue is full, the topic is not there yet: sending the same bytes
 * again later may work) or for good (the message itself is refused: larger
 * than KAFKA_PRODUCER_MESSAGE_MAX_BYTES or the topic's max.message.bytes,
 * an invalid record, no authorization for the topic). A relay retries the
 * first kind and moves the second aside (common/outbox.h). */
#define KAFKA_FAILED_RETRIABLE (-1)
#define KAFKA_FAILED_PERMANENT (-2)

/* Queues one message; key and value are copied. If ack is not NULL, *ack
 * receives a new ack object that the caller must release with
 * kafka_ack_release() (the delivery report holds its own reference, so the
 * caller may stop waiting at any time). Returns 0, KAFKA_FAILED_RETRIABLE if
 * the local queue is full or the topic is unknown, or KAFKA_FAILED_PERMANENT
 * if librdkafka refuses this message for good (too large); in both cases
 * the message was not queued. */
int kafka_produce(struct kafka_producer *p, const char *topic, const void *key, size_t keylen,
                  const void *value, size_t len, struct kafka_ack **ack);

/* librdkafka's name for the error that made the calling thread's last
 * kafka_produce or kafka_produce_notify fail ("MSG_SIZE_TOO_LARGE"); "" if
 * it succeeded. A static string. Any thread (the value is per thread). */
const char *kafka_produce_error(void);

/* The verdict on one message sent with kafka_produce_notify: acked is true
 * when the broker confirmed it, false when delivery failed (either kind). Runs
 * once per message on the producer's poll thread (or inside
 * kafka_producer_flush / kafka_producer_free), so it must be quick, must not
 * block, and must not call back into the producer. */
typedef void (*kafka_delivered_fn)(void *arg, bool acked);

/* Queues one message like kafka_produce, but the verdict is pushed to
 * fn(arg, acked) instead of being waited for: for callers that cannot spare
 * a thread per message. arg is borrowed and must stay valid until fn has run.
 * Returns 0 (fn will run exactly once), or KAFKA_FAILED_RETRIABLE or
 * KAFKA_FAILED_PERMANENT if the message was not queued (as above; fn will
 * never run). */
int kafka_produce_notify(struct kafka_producer *p, const char *topic, const void *key,
                         size_t keylen, const void *value, size_t len, kafka_delivered_fn fn,
                         void *arg);

/* Waits for the broker's verdict. Returns 0 when acknowledged, 1 when still
 * pending after timeout_ms, or, when delivery failed (librdkafka gave up on
 * the message), KAFKA_FAILED_PERMANENT if the error says this message can
 * never be stored (MSG_SIZE_TOO_LARGE, INVALID_RECORD,
 * TOPIC_AUTHORIZATION_FAILED, ...) and KAFKA_FAILED_RETRIABLE otherwise
 * (timed out, broker away, topic missing). */
int kafka_ack_wait(struct kafka_ack *ack, int timeout_ms);
/* librdkafka's name for a failed delivery's error ("MSG_SIZE_TOO_LARGE"),
 * "" while pending or when acknowledged. A static string. Any thread. */
const char *kafka_ack_error(struct kafka_ack *ack);
void kafka_ack_release(struct kafka_ack **ack);

/* Waits until every queued message has a delivery report. 0 or -1 on timeout. */
int kafka_producer_flush(struct kafka_producer *p, int timeout_ms);
/* True when the brokers answer a metadata request within timeout_ms. */
bool kafka_producer_ready(struct kafka_producer *p, int timeout_ms);
/* Flushes (up to 5 s), stops the thread, destroys, sets *p to NULL. */
void kafka_producer_free(struct kafka_producer **p);

enum kafka_handled {
    KAFKA_DONE = 0,   /* committed: store the offset */
    KAFKA_RETRY = -1, /* transient: deliver the same message again later */
    KAFKA_SKIP = -2,  /* permanently bad input: log, count, store the offset */
};

struct kafka_message {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t keylen;
    const void *value;
    size_t len;
    int64_t timestamp_ms;
};

typedef enum kafka_handled (*kafka_handler)(void *ctx, const struct kafka_message *msg);

struct kafka_consumer_options {
    const char *brokers;
    const char *group; /* consumer group id */
    const char *const *topics;
    size_t ntopics;
    bool from_beginning; /* auto.offset.reset=earliest (default latest) */
    bool no_commit;      /* never commit (kizunactl tail) */
    /* session.timeout.ms: how soon a member that died without leaving the
     * group (kill -9) loses its partitions; 0 keeps librdkafka's 45 s. The
     * broker allows 6 s (group.min.session.timeout.ms) and up. */
    int session_timeout_ms;
    /* The caller paces and reports retries and skips itself (common/consumer.c
     * waits on its worker, so that a stop cuts the wait short, and logs each
     * skip with its reason): after a RETRY the polls return at once instead
     * of sleeping, and a SKIP is not logged here. */
    bool caller_backs_off;
};

struct kafka_consumer *kafka_consumer_new(const struct kafka_consumer_options *opts, char *errstr,
                                          size_t errcap);

/* Polls up to timeout_ms for one message and hands it to handler. On
 * KAFKA_DONE or KAFKA_SKIP the offset is stored; on KAFKA_RETRY the
 * partition is rewound to the message so it comes again. Returns 1 if a
 * message was handled, 0 if none arrived, -1 on a fatal consumer error. */
int kafka_consumer_poll(struct kafka_consumer *c, int timeout_ms, kafka_handler handler, void *ctx);

/* A batch's handler: fills results[i] with the verdict on msgs[i] (each
 * starts as KAFKA_RETRY). The messages live until it returns. */
typedef void (*kafka_batch_handler)(void *ctx, const struct kafka_message *msgs, size_t n,
                                    enum kafka_handled *results);

/* kafka_consumer_poll for up to max messages at once, so that a handler can
 * make them durable in one transaction: waits up to timeout_ms for the
 * first, takes what else has already arrived, and hands them over together.
 * Per partition, in order, offsets are stored for DONE and SKIP up to the
 * partition's first RETRY, which rewinds the partition to that message (its
 * later messages in the batch come again too). Returns the number handed
 * over, 0 if none arrived, -1 on a fatal consumer error. */
int kafka_consumer_poll_batch(struct kafka_consumer *c, int timeout_ms, size_t max,
                              kafka_batch_handler handler, void *ctx);

/* Commits stored offsets and leaves the group. Call before free. */
void kafka_consumer_close(struct kafka_consumer *c);
void kafka_consumer_free(struct kafka_consumer **c);

/* Creates the manifest's topics that do not exist yet (never alters others).
 * Returns the number created, or -1 with errstr. */
int kafka_topics_apply(const char *brokers, const struct topic_spec *specs, size_t n,
                       int timeout_ms, char *errstr, size_t errcap);

/* Readiness: a metadata request succeeds and every manifest topic exists.
 * Returns 0, or -1 with errstr naming what is missing. */
int kafka_topics_check(const char *brokers, const struct topic_spec *specs, size_t n,
                       int timeout_ms, char *errstr, size_t errcap);

#endif
