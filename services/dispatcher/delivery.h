/* One SendRequest in memory (struct delivery), from the intake (or
 * recovery) to its final outcome, and one outcome on its way to the
 * delivery log (struct delivery_record). deliveries.h is the log's SQL,
 * deliveries_writer.h the thread that writes outcomes. */
#ifndef KIZUNA_DISPATCHER_DELIVERY_H
#define KIZUNA_DISPATCHER_DELIVERY_H

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

/* Where a delivery lives, from the intake to the end of its life in memory.
 * The sender moves it between its structures only through delivery_move,
 * which checks each move (as PgBouncer's change_client_state does), so a
 * delivery can never sit in two places or leave memory from the middle of
 * a queue unnoticed. */
enum delivery_state {
    DELIVERY_NEW,       /* decoded or loaded from the log; nobody holds it yet */
    DELIVERY_MAILBOX,   /* submitted; waits for the sender's thread */
    DELIVERY_QUEUED,    /* in its channel's queue for its endpoint */
    DELIVERY_WAITING,   /* on the timer heap until not_before_ms */
    DELIVERY_IN_FLIGHT, /* a call to LINE is out */
    DELIVERY_FINAL,     /* its final record went to the writer; freed next */
    DELIVERY_DROPPED,   /* leaves memory without an outcome: its row stays pending */
};
#define DELIVERY_STATE_COUNT (DELIVERY_DROPPED + 1)

/* One SendRequest in memory, from intake (or recovery) to its final record.
 * Owned by the sender once submitted. */
struct delivery {
    struct delivery *next;        /* queue link (whichever queue holds it) */
    enum delivery_state state;    /* moved only by delivery_move */
    Kizuna__V1__SendRequest *req; /* owned */
    char request_id[DELIVERY_ID_MAX + 1];
    char channel_id[CHANNEL_ID_MAX + 1];
    char tenant_id[AUTH_FIELD_MAX];
    int attempts;             /* HTTP calls made (as far as known) */
    int64_t received_ms;      /* unix ms: the intake took it */
    int64_t first_attempt_ms; /* unix ms; 0: no attempt known */
    int64_t not_before_ms;    /* unix ms: a retry's time; 0: now */
    int64_t epoch;            /* its pending row's epoch when loaded: the fencing token */
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
/* Frees d and everything it owns; accepts NULL. d must be NEW, FINAL or
 * DROPPED: freeing a delivery that a queue, the heap or a call still holds
 * stops the process. */
void delivery_free(struct delivery *d);

/* Moves d to state to. A move that cannot happen (see delivery_move_legal)
 * is a programmer's error: it is logged and the process aborts. Called by
 * whichever thread owns d (the submitter, then the sender's thread). */
void delivery_move(struct delivery *d, enum delivery_state to);
/* True when a delivery may move from one state to the other. Pure. */
bool delivery_move_legal(enum delivery_state from, enum delivery_state to);
/* The state's name ("queued", "in_flight"), for logs and tests. */
const char *delivery_state_name(enum delivery_state s);

/* The text of a status or kind as stored and served ("sent", "push"). */
const char *delivery_status_name(Kizuna__V1__DeliveryStatus s);
const char *delivery_kind_name(Kizuna__V1__SendKind k);
/* True for a status name the table accepts (queued, retrying, and finals). */
bool delivery_status_valid(const char *name);
/* One outcome for the writer. Everything is owned and freed by it. */
enum delivery_record_type { DELIVERY_RECORD_RETRY, DELIVERY_RECORD_FINAL };
struct delivery_record {
    struct delivery_record *next;
    enum delivery_record_type type;
    char request_id[DELIVERY_ID_MAX + 1];
    char channel_id[CHANNEL_ID_MAX + 1];
    char tenant_id[AUTH_FIELD_MAX];    /* whose quota_usage the cost goes to */
    Kizuna__V1__DeliveryStatus status; /* FINAL */
    int attempts;
    int http_status;
    int last_attempt_ms;
    int recipient_count;
    bool fell_back;
    int64_t first_attempt_ms; /* 0: none */
    int64_t finished_ms;      /* FINAL */
    int64_t next_attempt_ms;  /* RETRY */
    int64_t epoch;            /* the delivery's; written only if the row still has it */
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

#endif
