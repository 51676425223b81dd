/* DeliveryResult production. Each final outcome of a SendRequest becomes
 * one kizuna.v1.DeliveryResult, written to the dispatcher's outbox in the
 * same transaction as the delivery log's final status (deliveries.h), and
 * the service's outbox relay (common/outbox_relay.h) publishes it to
 * `delivery.results`. The event id is a version-5 UUID of the request id, so
 * if two replicas ever both decided one request, consumers' inboxes would
 * still see one event. */
#ifndef KIZUNA_DISPATCHER_RESULTS_H
#define KIZUNA_DISPATCHER_RESULTS_H

#include <stdint.h>

#include "delivery.h"
#include "line_result.h"

#define RESULTS_TOPIC_DEFAULT "delivery.results"

/* The final record of d (borrowed): the packed DeliveryResult and the row's
 * final columns. status is what is published; res (may be NULL) is the
 * last attempt's classified response; reason (may be NULL) is the
 * dispatcher's own explanation, used when LINE gave none. The quota cost
 * is recorded when d->reserved. Returns NULL if out of memory. */
struct delivery_record *results_final(const struct delivery *d, Kizuna__V1__DeliveryStatus status,
                                      const struct line_result *res, const char *reason,
                                      int64_t now_ms);
/* The record of a retry of d, due at next_ms (unix ms). NULL if out of memory. */
struct delivery_record *results_retry(const struct delivery *d, const struct line_result *res,
                                      int64_t next_ms);

#endif
