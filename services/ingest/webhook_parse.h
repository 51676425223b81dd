/* Turns a verified LINE webhook body into protobuf WebhookEvent records, one
 * per event, each with its Kafka key. Pure: no I/O, safe on any thread. The
 * body must already have passed the signature check. */
#ifndef KIZUNA_INGEST_WEBHOOK_PARSE_H
#define KIZUNA_INGEST_WEBHOOK_PARSE_H

#include <stddef.h>
#include <stdint.h>

struct webhook_context {
    const char *tenant_id;
    const char *channel_id;
    int64_t received_at_ms;
};

struct webhook_record {
    uint8_t *payload; /* packed kizuna.v1.WebhookEvent (malloc'd) */
    size_t len;
    char key[160];             /* "<channel_id>:<source id>" */
    char webhook_event_id[64]; /* LINE's id, for logs and dedup */
    char type[48];             /* LINE's event type string */
};

struct webhook_batch {
    struct webhook_record *records; /* malloc'd array of n */
    size_t n;
    char destination[64];
};

/* webhook_parse's answer for an event whose record (key and packed
 * WebhookEvent) is larger than KAFKA_RECORD_MAX_BYTES (common/kafka_limits.h):
 * the broker could never take it, so the request is refused (413). */
#define WEBHOOK_PARSE_TOO_LARGE (-2)

/* Parses body strictly: invalid UTF-8, malformed JSON, duplicate keys, a
 * non-object body, a missing or non-array "events", or an event that is not
 * an object is refused with -1 and a precise reason in err (answer 400); an
 * event too large for Kafka with WEBHOOK_PARSE_TOO_LARGE and its index and
 * size in err. An unknown event type is kept (as UnknownEvent with its raw
 * JSON), never dropped. On success fills out (n may be 0: LINE's "Verify")
 * and returns 0; the caller frees it with webhook_batch_free(). */
int webhook_parse(const char *body, size_t len, const struct webhook_context *ctx,
                  struct webhook_batch *out, char *err, size_t errcap);

void webhook_batch_free(struct webhook_batch *batch);

#endif
