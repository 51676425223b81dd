/* The producer-side half: events caused by a database change are written to
 * the `outbox` table in the same transaction, then a relay publishes them in
 * order and deletes each row once the broker has acknowledged it. A crash
 * between publish and delete republishes, which consumers' inboxes absorb.
 * A row the broker can never take goes to `dead_letter` (dead_letter.h). */
#ifndef KIZUNA_OUTBOX_H
#define KIZUNA_OUTBOX_H

#include <stddef.h>

struct db;
struct kafka_producer;

/* Inserts one event inside the caller's open transaction. Returns a db_status. */
int outbox_enqueue(struct db *db, const char *topic, const void *key, size_t keylen,
                   const void *payload, size_t len);

/* Publishes up to limit rows in id order, waits up to ack_timeout_ms for
 * their acks, and deletes the acknowledged ones, stopping at the first row
 * without an ack. A row the broker can never take (kafka.h's
 * KAFKA_FAILED_PERMANENT; refused again when sent alone) is moved to the
 * schema's dead_letter table instead, logged once with its topic and size,
 * and the rows behind it go on. One relay per schema runs at a time (an
 * advisory lock), so per-key order holds across replicas; nothing is
 * produced while the broker does not answer a metadata request. Returns the
 * number of rows that left the table, published or dead-lettered (0 when
 * another replica holds the lock or the broker is away), or < 0 (db_status)
 * on a database error. */
int outbox_relay_once(struct db *db, struct kafka_producer *producer, int limit,
                      int ack_timeout_ms);

/* Rows waiting (for the spool-depth style gauge). Returns count or < 0. */
long outbox_depth(struct db *db);

/* The same two for another table of the outbox's columns (id bigserial,
 * topic, key, payload), such as ingest's spool. table is a name from code
 * (lower-case letters, digits, '_'), never input; another gets DB_FATAL. */
int outbox_relay_table_once(struct db *db, const char *table, struct kafka_producer *producer,
                            int limit, int ack_timeout_ms);

/* What one round did. */
struct outbox_round {
    int published; /* acknowledged and deleted */
    int dead;      /* moved to dead_letter */
};

/* outbox_relay_table_once, telling the two apart in *round (all zero on a
 * database error, whose round is rolled back). The schema must have the
 * dead_letter table (every service's migrations create it). Returns what
 * outbox_relay_table_once returns. The caller's thread, which owns db. */
int outbox_relay_table_round(struct db *db, const char *table, struct kafka_producer *producer,
                             int limit, int ack_timeout_ms, struct outbox_round *round);
long outbox_depth_table(struct db *db, const char *table);

#endif
