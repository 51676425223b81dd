/* The delivery log's writer: the sender's outcomes reach the table through
 * it. A retry becomes `retrying` with its next time; a final status clears
 * the request and deletes the pending row and, in the same transaction,
 * puts the DeliveryResult into the outbox and adds the messages counted
 * against the month's quota. Every update is guarded by the pending row's
 * owner = this instance and its epoch = the delivery's (see deliveries.h):
 * an outcome that does not match is dropped, logged and counted
 * (kizuna_dispatcher_fenced_writes_total), never published. */
#ifndef KIZUNA_DISPATCHER_DELIVERIES_WRITER_H
#define KIZUNA_DISPATCHER_DELIVERIES_WRITER_H

#include <stddef.h>

#include "delivery.h"

/* The writer: a thread with its own connection that applies records in
 * order, many per transaction. notify(ctx) runs after each commit that
 * wrote outbox rows (to wake the relay). */
struct deliveries_writer;
struct deliveries_writer *deliveries_writer_start(const char *dsn, const char *instance,
                                                  const char *results_topic,
                                                  void (*notify)(void *ctx), void *notify_ctx,
                                                  char *errstr, size_t errcap);
/* Queues r (takes ownership). Any thread. */
void deliveries_writer_submit(struct deliveries_writer *w, struct delivery_record *r);
/* Records waiting to be written. */
size_t deliveries_writer_backlog(struct deliveries_writer *w);
/* Writes what is queued (giving up after budget_ms if the database is
 * away: those rows stay pending and are sent again after a restart, which
 * the retry key makes safe), stops, frees, sets *w to NULL. */
void deliveries_writer_stop(struct deliveries_writer **w, long budget_ms);

#endif
