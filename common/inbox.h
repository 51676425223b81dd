/* The consumer-side half of "nothing twice": an inbox keyed by event id,
 * written in the same transaction as the handler's effects, so a redelivered
 * event is recognised and skipped. The table is `inbox` in the service's
 * own schema (see its migrations). Same threading rules as db.h. */
#ifndef KIZUNA_INBOX_H
#define KIZUNA_INBOX_H

struct db;

/* Records (consumer, event_id) inside the caller's open transaction.
 * Returns 1 if the event is new, 0 if it was already processed, or a
 * db_status (< 0) on error. */
int inbox_claim(struct db *db, const char *consumer, const char *event_id);

/* Deletes inbox rows older than max_age_s (housekeeping). Returns rows
 * deleted or a db_status. */
long inbox_prune(struct db *db, long max_age_s);

#endif
