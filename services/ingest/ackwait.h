/* Makes a webhook request's records durable without holding a thread while
 * the broker answers (docs/architecture.md, Guarantee 1, as spool.h states it): the
 * records are produced with delivery callbacks; the request is done when
 * the last ack comes in, or, at the ack budget's deadline, once the records
 * still unconfirmed are committed to ingest.spool by a spool worker. */
#ifndef KIZUNA_INGEST_ACKWAIT_H
#define KIZUNA_INGEST_ACKWAIT_H

#include <stdbool.h>
#include <stddef.h>

#include "spool.h"

struct ackwait;
struct kafka_producer;

struct ackwait_options {
    struct kafka_producer *producer; /* required; borrowed */
    struct spool *spool;             /* required; borrowed */
    int budget_ms;                   /* INGEST_ACK_BUDGET_MS */
    int spool_workers;               /* threads that write the spool, default 2 */
};

/* A submission's verdict. Every recs[i].state is SPOOL_ACKED, SPOOL_SPOOLED
 * or SPOOL_LOST; durable is true when none is SPOOL_LOST. After this call
 * ackwait no longer touches recs or arg. Runs exactly once, on the
 * producer's poll thread (all acked), a spool worker (after the spool
 * write), or the thread that calls ackwait_stop; so it must be quick. */
typedef void (*ackwait_done_fn)(void *arg, struct spool_record *recs, size_t n, bool durable);

/* Starts the deadline thread and the spool workers. Returns NULL + errstr.
 * Main thread. */
struct ackwait *ackwait_new(const struct ackwait_options *opts, char *errstr, size_t errcap);

/* Produces every record (key and payload are copied) and returns at once;
 * done(arg, ...) follows within the budget plus a spool write. recs and arg
 * are borrowed until done runs, which may happen before this returns.
 * Returns 0, or -1 (out of memory) when nothing was produced and done will
 * not run. After ackwait_stop, done runs at once with durable false. Any
 * thread. */
int ackwait_submit(struct ackwait *aw, struct spool_record *recs, size_t n, ackwait_done_fn done,
                   void *arg);

/* Lets a spool write in progress finish, ends every submission still open
 * with durable false (their requests were already answered by httpd_stop),
 * and joins the threads. Call after the server whose requests these are has
 * stopped, and before the spool is freed. Main thread; idempotent. */
void ackwait_stop(struct ackwait *aw);

/* Stops if needed and drops the caller's reference; the memory goes once the
 * producer has delivered its last report for a submission (at the latest in
 * kafka_producer_free). Accepts NULL; sets *aw to NULL. */
void ackwait_free(struct ackwait **aw);

#endif
