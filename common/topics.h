/* The topic manifest (deploy/topics.manifest): one line per topic with its
 * partitions, retention, cleanup policy, key and message type. The local
 * stack, compose and Kubernetes create topics from it; kizunactl reads the
 * message type to decode records. No Kafka here: pure parsing. */
#ifndef KIZUNA_TOPICS_H
#define KIZUNA_TOPICS_H

#include <stddef.h>

#define TOPICS_MAX 32

struct topic_spec {
    char name[128];
    int partitions;
    long long retention_ms; /* -1 means forever */
    char cleanup[16];       /* "delete" or "compact" */
    char key[64];           /* documentation: e.g. "channel:source" */
    char message[96];       /* fully-qualified protobuf type */
    /* The topic's max.message.bytes at creation; 0 (what the manifest
     * gives) means KAFKA_TOPIC_MAX_MESSAGE_BYTES (common/kafka_limits.h).
     * Only tests set another, to make a topic refuse a record. */
    long long max_message_bytes;
};

/* Parses the manifest file. Returns the number of topics, or -1 with every
 * problem (file:line: reason) in errstr. */
int topics_load(const char *path, struct topic_spec *specs, size_t cap, char *errstr,
                size_t errcap);

/* The manifest path: $KIZUNA_TOPICS_MANIFEST, else deploy/topics.manifest. */
const char *topics_default_path(void);

const struct topic_spec *topics_find(const struct topic_spec *specs, size_t n, const char *name);

#endif
