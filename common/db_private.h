/* What db.c and db_migrate.c share and nobody else sees: the connection
 * and the helpers that classify a libpq result. Only these two files
 * include libpq-fe.h. */
#ifndef KIZUNA_DB_PRIVATE_H
#define KIZUNA_DB_PRIVATE_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "db.h"

struct db {
    PGconn *conn;
    /* Our view of the transaction: set by BEGIN, cleared by COMMIT/ROLLBACK.
     * PQtransactionStatus says PQTRANS_UNKNOWN once the connection is gone,
     * so this flag is what remembers that a transaction was lost. */
    bool in_tx;
    /* Class of the first failure inside the open transaction, so that the
     * COMMIT which PostgreSQL turns into ROLLBACK reports something useful. */
    enum db_status tx_failure;
    /* A statement found no answer within deadline_ms: the connection may be
     * in any state (a reply could still come), so it is closed and reopened
     * before the next statement, never reused. */
    bool stuck;
    long deadline_ms; /* the client's wait for a reply; 0: no limit */
    bool no_deadline; /* migrations: a long statement is expected */
    char errmsg[512];
    char sqlstate[6];
};

/* Reduces a finished command to a db_status and records its error. res may
 * be NULL (libpq could not even send the command). */
enum db_status db_result_classify(struct db *db, const PGresult *res);
/* A COPY started by mistake would leave the connection unusable; ends it. */
void db_copy_abandon(struct db *db, PGresult *res);
/* After a command, believes the server about the transaction state while the
 * connection is alive; once it is gone, keeps what was known. */
void db_tx_track(struct db *db, bool was_in_tx);

#endif
