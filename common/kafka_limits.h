/* How large one Kafka record may be, end to end: the one place these
 * numbers are written. A record that one layer accepts and the next refuses
 * is a poison record: ingest used to answer 200 for a webhook event that
 * librdkafka then refused, spool it, and the spool's relay stopped behind
 * it for every tenant (issue 9). So each layer allows a little more than the
 * one before it, and nothing that passes the first can fail on size later:
 *
 *   KAFKA_RECORD_MAX_BYTES            1,000,000  key + value of one record a
 *       Kizuna producer makes. Ingest refuses a webhook event whose packed
 *       record is larger with 413 (services/ingest/webhook_parse.c); every
 *       other event Kizuna makes is far smaller by construction.
 *   KAFKA_PRODUCER_MESSAGE_MAX_BYTES  1,040,000  librdkafka's message.max.bytes
 *       (common/kafka.c): librdkafka refuses a record whose wire size (key,
 *       value, headers and under 100 bytes of framing) exceeds it at once,
 *       with MSG_SIZE_TOO_LARGE, and never builds a batch larger than it
 *       plus one record batch header (61 bytes). Above the record limit by
 *       40,000 bytes of room for that framing.
 *   KAFKA_TOPIC_MAX_MESSAGE_BYTES     1,048,588  the topic's max.message.bytes,
 *       set on every topic kafka_topics_apply creates, and the broker's
 *       message.max.bytes (deploy/local/kafka.properties.in, docker-compose.yml,
 *       and the broker deploy/k8s/namespace.yaml expects; Kafka's own
 *       default): the largest record batch the broker stores. 8,588 bytes
 *       above the producer's largest batch, so the broker never refuses a
 *       batch librdkafka built.
 *
 * deploy/local/lint.sh checks that the deploy files say the broker's number
 * written here. A record that fails anyway (a topic created by hand with a
 * smaller max.message.bytes) is moved to the relay's dead_letter table
 * instead of blocking the rows behind it (common/outbox.h). */
#ifndef KIZUNA_KAFKA_LIMITS_H
#define KIZUNA_KAFKA_LIMITS_H

#define KAFKA_RECORD_MAX_BYTES 1000000
#define KAFKA_PRODUCER_MESSAGE_MAX_BYTES 1040000
#define KAFKA_TOPIC_MAX_MESSAGE_BYTES 1048588

#endif
