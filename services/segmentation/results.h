/* What comes back from the dispatcher: the consumer of `delivery.results`
 * (DeliveryResult). A PROFILE result that was SENT stores the friend's
 * display name, picture, status message and language (a result older than
 * the stored profile changes nothing) and emits FriendProfileUpdated; a
 * result whose request_id is an operator's message in the 1:1 talk sets
 * that row's status and error. Every other result is ignored. */
#ifndef KIZUNA_SEGMENTATION_RESULTS_H
#define KIZUNA_SEGMENTATION_RESULTS_H

#include <stdbool.h>
#include <stddef.h>

#include "kizuna/v1/delivery.pb-c.h"

struct outbox_relay;
struct service;

#define RESULTS_TOPIC "delivery.results"

/* The talk's word for a status: "sent", "failed", "quota_exceeded",
 * "retry_exhausted", "reply_token_expired", "invalid"; "unknown" for
 * anything else. Static; pure. */
const char *results_status_name(Kizuna__V1__DeliveryStatus status);

/* True when s is a UUID in text form (8-4-4-4-12 hex digits), as talk's
 * request_id column takes it. Pure. */
bool results_is_uuid(const char *s);

/* Starts the consumer ("segmentation-results", group as given or the name,
 * from the beginning) on svc, whose drain stops it, kicking relay after each
 * commit. 0, or -1 with errstr. Main thread, in service_def.setup. */
int results_start(struct service *svc, struct outbox_relay *relay, const char *group, char *errstr,
                  size_t errcap);

#endif
