/* Recently accepted webhookEventIds, per channel, so that a redelivery of an
 * event ingest already made durable is answered 200 without producing it a
 * second time. Best effort by design (issue 3: "ingest may suppress the ones
 * it has seen recently; consumers dedupe regardless"): each channel keeps
 * only its last DEDUP_PER_CHANNEL ids, in memory, and only an id recorded
 * after its event became durable is ever suppressed, so an event whose first
 * delivery failed is never dropped. At most about 40 KB per channel
 * (DEDUP_MAX_CHANNELS x that in all). Thread-safe. */
#ifndef KIZUNA_INGEST_DEDUP_H
#define KIZUNA_INGEST_DEDUP_H

#include <stdbool.h>
#include <stddef.h>

/* Ids kept per channel, and channels tracked (past that, a new channel's
 * ids are not kept: nothing is suppressed for it). */
#define DEDUP_PER_CHANNEL 512
#define DEDUP_MAX_CHANNELS 1024
/* Longer ids or channel ids are never kept (LINE's ids are 26 characters). */
#define DEDUP_ID_MAX 63
#define DEDUP_CHANNEL_MAX 31

struct dedup;

/* per_channel 0 means DEDUP_PER_CHANNEL. NULL when out of memory. */
struct dedup *dedup_new(size_t per_channel);
void dedup_free(struct dedup **d);

/* True when id was recorded for channel and is still among its last
 * per_channel ids. */
bool dedup_seen(struct dedup *d, const char *channel, const char *id);

/* Remembers id for channel (an id already kept stays where it is); the
 * channel's oldest id goes when it is full. */
void dedup_record(struct dedup *d, const char *channel, const char *id);

#endif
