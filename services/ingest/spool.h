/* "Never lose an accepted event" (docs/architecture.md, Guarantee 1): an event is
 * durable once the broker acknowledged it, or, when the broker has not
 * within the ack budget, once it is a committed row in ingest.spool. An
 * outbox relay on the spool table (common/outbox_relay.h, started by
 * main.c) later republishes spooled rows in id order and deletes each after
 * its ack; it keeps the kizuna_ingest_spool_depth and
 * kizuna_ingest_spool_relayed_total metrics. */
#ifndef KIZUNA_INGEST_SPOOL_H
#define KIZUNA_INGEST_SPOOL_H

#include <stddef.h>

struct spool;

enum spool_state {
    SPOOL_PENDING = 0, /* not delivered yet */
    SPOOL_ACKED,       /* the broker confirmed it within the budget */
    SPOOL_SPOOLED,     /* a committed row in ingest.spool */
    SPOOL_LOST,        /* neither: the sender must try again */
};

/* One record to make durable; everything is borrowed for the call. */
struct spool_record {
    const char *topic;
    const void *key;
    size_t keylen;
    const void *payload;
    size_t len;
    enum spool_state state; /* set by ackwait.c and spool_store */
};

/* Opens connections lazily, up to `connections` for spool writes (any
 * thread). Returns NULL + errstr. */
struct spool *spool_new(const char *database_url, int connections, char *errstr, size_t errcap);
/* Call after every thread using it has stopped. Accepts NULL. */
void spool_free(struct spool **sp);

/* Writes every record whose state is SPOOL_PENDING to the spool in one
 * transaction, producing nothing: for a caller that produced the records
 * itself and collected the acks its own way (webhook.c's async path). Sets
 * those records to SPOOL_SPOOLED, or to SPOOL_LOST if the write failed, and
 * counts them (kizuna_ingest_spooled_events_total, or the write failures).
 * Returns 0 when every pending record is written (or none was pending), -1
 * otherwise. Any thread; blocks for the write. */
int spool_store(struct spool *sp, struct spool_record *recs, size_t n);

#endif
