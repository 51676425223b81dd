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
 * instance (locked or deleted in the same statement), so a
 * replica whose rows were taken over never publishes a second result.
 * Functions taking a struct db follow db.h's threading rules. */
#ifndef KIZUNA_DISPATCHER_DELIVERIES_H
#define KIZUNA_DISPATCHER_DELIVERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "channels.h"
#include "kizuna/v1/delivery.pb-c.h"
#include "kizuna/v1/send.pb-c.h"
#include "line_request.h"

#define DELIVERY_ID_MAX 64 /* request ids are UUIDs; longer ones are refused */
#define DELIVERY_INSTANCE_MAX 128

struct db;

/* One SendRequest in memory, from intake (or recovery) to its final record.
 * Owned by the sender once submitted. */
struct delivery {
    struct delivery *next;        /* queue link (whichever queue holds it) */
    Kizuna__V1__SendRequest *req; /* owned */
    char request_id[DELIVERY_ID_MAX + 1];
    char channel_id[CHANNEL_ID_MAX + 1];
    char tenant_id[AUTH_FIELD_MAX];
    int attempts;             /* HTTP calls made (as far as known) */
    int64_t received_ms;      /* unix ms: the intake took it */
    int64_t first_attempt_ms; /* unix ms; 0: no attempt known */
    int64_t not_before_ms;    /* unix ms: a retry's time; 0: now */
    bool recovered;           /* loaded from the log: an attempt may have been made */
    bool ambiguous;           /* some attempt may have been accepted by LINE */
    bool reply_token_used;    /* LINE said the reply token is spent: push instead */
    bool fell_back;           /* a reply that went out as a push */
    bool reserved;            /* quota counted for it */
    long long reserved_cost;
    int64_t reserved_month;
    /* the sender's working state */
    struct line_request call;
    bool built;
    int last_attempt_ms;
    size_t heap_index;
};

/* A delivery from a packed SendRequest (borrowed). Returns NULL with the
 * reason in errstr when it does not decode, or its request_id is missing
 * or longer than DELIVERY_ID_MAX. channel_id comes from the envelope, else
 * from fallback_channel (the record key). */
struct delivery *delivery_from_bytes(const void *bytes, size_t len, const char *fallback_channel,
                                     char *errstr, size_t errcap);
/* Frees d and everything it owns; accepts NULL. */
void delivery_free(struct delivery *d);

/* The text of a status or kind as stored and served ("sent", "push"). */
const char *delivery_status_name(Kizuna__V1__DeliveryStatus s);
const char *delivery_kind_name(Kizuna__V1__SendKind k);
/* True for a status name the table accepts (queued, retrying, and finals). */
bool delivery_status_valid(const char *name);

/* Takes a batch of requests: inserts each one's queued row (the primary
 * key request_id is the claim) and its `pending` row owned by instance,
 * all in one statement (atomic on
 * its own, or part of the caller's transaction). ds[i] NULL is skipped;
 * bytes[i]/lens[i] is ds[i]'s packed SendRequest. Sets claimed[i] to 1 when
 * new, 0 when its request_id was seen before (or earlier in the batch).
 * Returns DB_OK or a db_status. */
int deliveries_intake_batch(struct db *db, const char *instance, struct delivery *const *ds,
                            const void *const *bytes, const size_t *lens, size_t n, int *claimed);

/* Loads the pending rows owned by instance (a restart), calling
 * fn(ctx, delivery) for each with ownership. Returns the count or a
 * db_status. Call before the intake starts, so nothing is loaded twice. */
long deliveries_recover(struct db *db, const char *instance,
                        void (*fn)(void *ctx, struct delivery *d), void *ctx);
/* Loads request_id's row if it is pending and owned by instance (a commit
 * whose answer was lost: the row exists but nothing holds it). Returns 1
 * if handed to fn, 0 if not pending here, or a db_status. */
long deliveries_reload(struct db *db, const char *instance, const char *request_id,
                       void (*fn)(void *ctx, struct delivery *d), void *ctx);
/* Takes over up to 1000 pending rows of replicas whose heartbeat is older
 * than lease_s, and forgets such replicas that own nothing any more.
 * Returns the count handed to fn, or a db_status. */
long deliveries_take_over(struct db *db, const char *instance, long lease_s,
                          void (*fn)(void *ctx, struct delivery *d), void *ctx);
/* Records that instance is alive. Returns a db_status. */
int deliveries_heartbeat(struct db *db, const char *instance);
/* Rows pending for instance (a gauge). Returns the count or a db_status. */
long deliveries_pending_count(struct db *db, const char *instance);

/* Messages counted for channel_id in the month starting at month_start
 * (unix s). Returns 0 with *used, or a db_status. */
int deliveries_quota_used(struct db *db, const char *channel_id, int64_t month_start,
                          long long *used);

/* One outcome for the writer. Everything is owned and freed by it. */
enum delivery_record_type { DELIVERY_RECORD_RETRY, DELIVERY_RECORD_FINAL };
struct delivery_record {
    struct delivery_record *next;
    enum delivery_record_type type;
    char request_id[DELIVERY_ID_MAX + 1];
    char channel_id[CHANNEL_ID_MAX + 1];
    Kizuna__V1__DeliveryStatus status; /* FINAL */
    int attempts;
    int http_status;
    int last_attempt_ms;
    int recipient_count;
    bool fell_back;
    int64_t first_attempt_ms; /* 0: none */
    int64_t finished_ms;      /* FINAL */
    int64_t next_attempt_ms;  /* RETRY */
    char *line_request_id;    /* each may be NULL for "" */
    char *accepted_request_id;
    char *error_message;
    char *error_details_json; /* NULL: none */
    /* FINAL: the packed DeliveryResult and its record key, for the outbox */
    uint8_t *payload;
    size_t len;
    char *key;
    /* FINAL: messages to add to quota_usage (0: none) */
    long long quota_cost;
    int64_t quota_month; /* unix s */
};
void delivery_record_free(struct delivery_record *r);

/* The writer: a thread with its own connection that applies records in
 * order, many per transaction. notify(ctx) runs after each commit that
 * wrote outbox rows (to wake the relay). */
struct deliveries_writer;
struct deliveries_writer *deliveries_writer_start(const char *dsn, const char *instance,
                                                  const char *results_topic,
                                                  void (*notify)(void *ctx), void *notify_ctx,
                                                  char *errstr, size_t errcap);
/* Queues r (takes ownership). Any thread. */
void deliveries_writer_submit(struct deliveries_writer *w, struct delivery_record *r);
/* Records waiting to be written. */
size_t deliveries_writer_backlog(struct deliveries_writer *w);
/* Writes what is queued (giving up after budget_ms if the database is
 * away: those rows stay pending and are sent again after a restart, which
 * the retry key makes safe), stops, frees, sets *w to NULL. */
void deliveries_writer_stop(struct deliveries_writer **w, long budget_ms);

/* The admin API's listing: tenant's rows, newest first, filtered by
 * channel, status and since (RFC 3339; each NULL for any), below cursor
 * (NULL: from the newest). *json gets {"deliveries":[...],"next_cursor":...}
 * (malloc'd). Returns 0, or a db_status (DB_FATAL also for a bad cursor). */
int deliveries_list(struct db *db, const char *tenant, const char *channel, const char *status,
                    const char *since, const char *cursor, int limit, char **json);

#endif
