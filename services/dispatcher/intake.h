/* The intake: the `send.requests` consumer's handler. It decodes each
 * SendRequest, makes it durable in the delivery log (inbox claim by
 * request_id and the queued row, one transaction) and hands it to the
 * sender; only then does it report the message done, so its offset is
 * stored after the commit and a crash replays rather than loses. A
 * request_id seen before is done at once and never sent again. Runs on the
 * thread that polls the consumer, with that thread's connection. */
#ifndef KIZUNA_DISPATCHER_INTAKE_H
#define KIZUNA_DISPATCHER_INTAKE_H

#include <stdbool.h>

#include "kafka.h"

struct db;
struct sender;
struct metric;

struct intake {
    struct db *db;          /* borrowed: the polling thread's */
    const char *instance;   /* this replica, the owner of new rows */
    struct sender *sender;  /* borrowed */
    struct metric *taken;   /* counter by result */
    bool paused;            /* the sender is full: messages wait in Kafka */
};

/* Sets up the metric; the caller fills the borrowed fields. */
void intake_init(struct intake *in);
/* kafka_handler for send.requests; ctx is a struct intake. */
enum kafka_handled intake_handle(void *ctx, const struct kafka_message *msg);

#endif
