/* Friend state from LINE webhooks: the consumer of `line.webhook`
 * (WebhookEvent). follow and unfollow change a friend (in LINE timestamp
 * order per friend, friend_state.h) and emit FriendEvents; a follow also
 * asks for the profile (profile_request.h); a message updates
 * last_message_at and goes to the friend's 1:1 talk; group and room sources
 * are recorded in `chats` and make no friends; other event types are
 * ignored. The inbox is keyed by "<channel_id>:<webhookEventId>", so a
 * redelivery by LINE (same webhookEventId) changes nothing. The rules are in
 * docs/events.md. */
#ifndef KIZUNA_SEGMENTATION_WEBHOOK_EVENTS_H
#define KIZUNA_SEGMENTATION_WEBHOOK_EVENTS_H

#include <stddef.h>

struct kafka_message;
struct outbox_relay;
struct service;

#define WEBHOOK_EVENTS_TOPIC "line.webhook"

struct webhook_events_options {
    /* A record for a channel not (yet) in `channels` is retried while it is
     * younger than this (the channels consumer may lag), then counted and
     * skipped as malformed ("unknown_channel"). */
    long unknown_channel_grace_ms;
    int consumers;     /* consumer threads in the group (each its own connection) */
    const char *group; /* consumer group; NULL: "segmentation-webhook" */
};

/* The inbox id of a record: "<channel_id>:<webhookEventId>" (the channel
 * from the envelope), or the envelope's event_id when LINE gave no
 * webhookEventId. (Ingest's envelope event_id is UUIDv5 of the same
 * "<channel_id>:<webhookEventId>", services/ingest/webhook_parse.c, so the
 * two dedupe alike; the readable id says so without that detour, and a
 * record from another producer is keyed by LINE's id all the same.) A
 * consumer_event_id_fn (common/consumer.h). Pure. */
int webhook_events_event_id(const struct kafka_message *msg, char *out, size_t cap,
                            const char **reason);

/* Starts opts->consumers consumers on svc (whose drain stops them), kicking
 * relay after each commit. opts is copied. 0, or -1 with errstr. Main
 * thread, in service_def.setup. */
int webhook_events_start(struct service *svc, struct outbox_relay *relay,
                         const struct webhook_events_options *opts, char *errstr, size_t errcap);

#endif
