/* Asking the dispatcher for a friend's LINE profile: a SendRequest of kind
 * PROFILE on `send.requests` (key "<channel_id>", docs/architecture.md "Contracts"), through the
 * outbox in the caller's transaction. Its request_id is derived from the
 * follow that caused it, so a re-run of the follow asks under the same id
 * and the dispatcher fetches once. The answer comes back on
 * `delivery.results` (results.c). */
#ifndef KIZUNA_SEGMENTATION_PROFILE_REQUEST_H
#define KIZUNA_SEGMENTATION_PROFILE_REQUEST_H

#include <stddef.h>
#include <stdint.h>

struct db;

/* origin_type of these requests, and the topic they go to. */
#define PROFILE_REQUEST_ORIGIN "profile"
#define PROFILE_REQUEST_TOPIC "send.requests"

/* UUIDv5(36b57351-0ae1-5160-a415-0c8f9a1a6a93, "<channel_id>:<webhook_event_id>"),
 * the namespace being UUIDv5(NAMESPACE_URL,
 * "urn:kizuna:v1:segmentation-profile-request"). Never change it: the
 * dispatcher dedupes on these ids. Writes 36 characters and a NUL. Pure. */
void profile_request_id(const char *channel_id, const char *webhook_event_id, char out[37]);

/* The packed SendRequest (malloc'd, *len bytes; the caller frees), or NULL
 * when out of memory. envelope: a new event_id, tenant, channel,
 * occurred_at now_ms, causation_id. Pure but for the random event_id. */
uint8_t *profile_request_pack(const char *tenant_id, const char *channel_id, const char *user_id,
                              const char *webhook_event_id, const char *causation_id,
                              int64_t now_ms, size_t *len);

/* Packs and enqueues it in the caller's open transaction. 0, or -1 on a
 * database error (or out of memory). The consumer's thread. */
int profile_request_enqueue(struct db *db, const char *tenant_id, const char *channel_id,
                            const char *user_id, const char *webhook_event_id,
                            const char *causation_id);

#endif
