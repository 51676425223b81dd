/* The delivery log (table `deliveries`): one row per SendRequest, the
 * durable state of every request between Kafka and LINE.
 *
 * Life of a row: the intake writes it `queued` (with the request; its
 * request_id primary key refuses a request seen before) and a `pending`
 * row naming this replica as owner, and only then is the
 * Kafka offset stored; so a stored offset always means "durable here".
 * The sender's outcomes reach the table through the writer thread: a retry
 * becomes `retrying` with its next time; a final status clears the request
 * and deletes the pending row and, in the same transaction, puts the DeliveryResult into the
 * outbox and adds the messages counted against the month's quota. Rows
 * still pending when a replica dies are taken over by a live replica (or by
 * the same instance id when it restarts) and sent again with the same
 * X-Line-Retry-Key, which LINE answers 409 if the first send got through.
 *
 * Every update of a pending row is guarded by its pending row's owner = this
 * instance and epoch = the epoch the delivery was loaded with (locked or
 * deleted in the same statement), so a replica whose rows were taken over
 * never publishes a second result (decision 0010).
 * Functions taking a struct db follow db.h's threading rules. */
#ifndef KIZUNA_DISPATCHER_DELIVERIES_H
#define KIZUNA_DISPATCHER_DELIVERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery.h"

struct db;

/* Takes a batch of requests: inserts each one's queued row (the primary
 * key request_id is the claim) and its `pending` row owned by instance,
 * all in one statement (atomic on
 * its own, or part of the caller's transaction). ds[i] NULL is skipped;
 * bytes[i]/lens[i] is ds[i]'s packed SendRequest. Sets claimed[i] to 1 when
 * new, 0 when its request_id was seen before (or earlier in the batch).
 * Returns DB_OK or a db_status. */
int deliveries_intake_batch(struct db *db, const char *instance, struct delivery *const *ds,
                            const void *const *bytes, const size_t *lens, size_t n, int *claimed);

/* Recovery (a restart, or a lease regained) reads instance's pending rows
 * one page at a time, in seq order, up to the mark taken when it began:
 * rows the intake adds afterwards have a higher seq and are already held.
 * This sets *until to the highest seq instance owns (0: none) and returns a
 * db_status. */
int deliveries_recover_mark(struct db *db, const char *instance, int64_t *until);
/* One page of recovery: loads up to limit of instance's rows with after <
 * seq <= until, in seq order, calling fn(ctx, delivery) for each with
 * ownership (each with its epoch), sets *last to the last seq read, and
 * returns the number of rows read (fewer than limit: the end), or a
 * db_status. */
long deliveries_recover_page(struct db *db, const char *instance, int64_t after, int64_t until,
                             int limit, void (*fn)(void *ctx, struct delivery *d), void *ctx,
                             int64_t *last);
/* Loads request_id's row if it is pending and owned by instance (a commit
 * whose answer was lost: the row exists but nothing holds it). Returns 1
 * if handed to fn, 0 if not pending here, or a db_status. */
long deliveries_reload(struct db *db, const char *instance, const char *request_id,
                       void (*fn)(void *ctx, struct delivery *d), void *ctx);
/* Takes over up to 1000 pending rows of replicas whose heartbeat is older
 * than lease_s (each row's epoch goes up by one: the old owner's writes no
 * longer match), and forgets such replicas that own nothing any more.
 * Returns the count handed to fn, or a db_status. */
long deliveries_take_over(struct db *db, const char *instance, long lease_s,
                          void (*fn)(void *ctx, struct delivery *d), void *ctx);
/* Records that instance is alive. Returns a db_status. */
int deliveries_heartbeat(struct db *db, const char *instance);
/* Rows pending for instance (a gauge). Returns the count or a db_status. */
long deliveries_pending_count(struct db *db, const char *instance);

/* Messages counted for tenant_id's channel channel_id in the month
 * starting at month_start (unix s): another tenant's count of the same
 * LINE channel id is not read. Returns 0 with *used, or a db_status. */
int deliveries_quota_used(struct db *db, const char *tenant_id, const char *channel_id,
                          int64_t month_start, long long *used);

/* The admin API's listing: tenant's rows, newest first, filtered by
 * channel, status and since (RFC 3339; each NULL for any), below cursor
 * (NULL: from the newest). *json gets {"deliveries":[...],"next_cursor":...}
 * (malloc'd). Returns 0, or a db_status (DB_FATAL also for a bad cursor). */
int deliveries_list(struct db *db, const char *tenant, const char *channel, const char *status,
                    const char *since, const char *cursor, int limit, char **json);

#endif
