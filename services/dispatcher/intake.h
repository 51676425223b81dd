/* The intake: the `send.requests` consumer's batch handler. It decodes each
 * SendRequest, makes the batch durable in the delivery log (the queued row,
 * claimed by its request_id primary key, one statement for the batch) and hands
 * the requests to the sender; only then does it report them done, so their
 * offsets are stored after the commit and a crash replays rather than
 * loses. A request_id seen before is done at once and never sent again.
 * Requests of a tenant whose share of the sender is full
 * (sender_tenant_room) are left in Kafka (KAFKA_RETRY) while others flow.
 * Runs on the thread that polls the consumer, with that thread's
 * connection. */
#ifndef KIZUNA_DISPATCHER_INTAKE_H
#define KIZUNA_DISPATCHER_INTAKE_H

#include <stdbool.h>

#include "kafka.h"

struct db;
struct sender;
struct metric;
struct deliveries_writer;

struct intake {
    struct db *db;                    /* borrowed: the polling thread's */
    const char *instance;             /* this replica, the owner of new rows */
    struct sender *sender;            /* borrowed */
    struct deliveries_writer *writer; /* borrowed: its backlog also pauses the intake */
    long max_backlog;
    struct metric *taken;  /* counter by result */
    struct metric *commit; /* histogram: time to make one request durable */
    bool paused;           /* the sender is full: messages wait in Kafka */
};

/* Sets up the metric; the caller fills the borrowed fields. */
void intake_init(struct intake *in);
/* True while the sender (or the writer's backlog) is full: the caller
 * should not poll (logs the change both ways). The cap is soft: a batch
 * polled before it filled up is still taken whole. */
bool intake_full(struct intake *in);
/* kafka_batch_handler for send.requests; ctx is a struct intake. */
void intake_handle(void *ctx, const struct kafka_message *msgs, size_t n,
                   enum kafka_handled *results);

#endif
