/* Dead letters: rows an outbox relay can never publish (the broker or
 * librdkafka refused the record itself, common/kafka.h's
 * KAFKA_FAILED_PERMANENT). The relay moves such a row out of its table into
 * the schema's `dead_letter` table (common/outbox.c), so that the rows
 * behind it go on, and every service lists its own through
 * GET /v1/dead-letters on the admin port (common/service.c routes it here).
 *
 * Who sees a dead letter: an admin of the tenant in the record's envelope
 * (every Kizuna event carries kizuna.v1.Envelope as field 1, and its
 * tenant_id is kept in the row). A row whose payload has no envelope or no
 * tenant belongs to no tenant and is never listed through the API: the
 * deployment's operator sees it in the log line and the metric the relay
 * writes, and in the table itself. The payload is kept for diagnosis and
 * replay, and never logged nor listed. Replay, once the cause is fixed (a
 * topic's max.message.bytes, an ACL), is by hand, in one transaction:
 *   INSERT INTO <source_table> (topic, key, payload)
 *       SELECT topic, key, payload FROM dead_letter WHERE id = <id>;
 *   DELETE FROM dead_letter WHERE id = <id>; */
#ifndef KIZUNA_DEAD_LETTER_H
#define KIZUNA_DEAD_LETTER_H

#include <stdbool.h>
#include <stddef.h>

struct auth_claims;
struct dead_letters;
struct httpd_request;
struct httpd_response;

#define DEAD_LETTERS_PATH "/v1/dead-letters"

/* The parts of a record's kizuna.v1.Envelope a dead letter keeps; empty
 * strings when absent. Longer values than these buffers are not ids of
 * ours and are left empty. */
struct dead_letter_envelope {
    char tenant_id[129];
    char channel_id[65];
    char event_id[65];
};

/* Reads field 1 (the Envelope) of a protobuf payload without knowing its
 * message type. Pure, any thread; never reads past len. Returns true when
 * an envelope with a tenant was found, else false with out emptied. */
bool dead_letter_envelope_read(const void *payload, size_t len, struct dead_letter_envelope *out);

/* The listing's state: one database connection to dsn, opened at the first
 * request and shared under a mutex by the admin server's threads. dsn is
 * copied. Returns NULL + errstr (out of memory). Main thread, at start-up. */
struct dead_letters *dead_letters_new(const char *dsn, char *errstr, size_t errcap);

/* Closes the connection and frees; *dl becomes NULL; NULL is a no-op. After
 * the admin server stopped. Main thread. */
void dead_letters_free(struct dead_letters **dl);

/* Answers GET /v1/dead-letters[?limit=1..500&cursor=<id>] for claims (the
 * token service.c verified): role admin, the token's tenant's rows only,
 * newest first, 100 by default; "next_cursor" pages on. 405 for another
 * method, 403 below admin, 400 for a bad limit or cursor, 503 while the
 * database is away. dl NULL answers 503. Admin server threads. */
void dead_letters_respond(struct dead_letters *dl, const struct auth_claims *claims,
                          const struct httpd_request *req, struct httpd_response *resp);

#endif
