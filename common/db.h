/* PostgreSQL through libpq (only db.c includes libpq-fe.h). Parameterised
 * queries only, explicit transactions, reconnect after a lost connection,
 * and a migrations runner. A struct db is one connection: use it from one
 * thread at a time. libpq notices are routed into log.h. */
#ifndef KIZUNA_DB_H
#define KIZUNA_DB_H

#include <stdbool.h>
#include <stddef.h>

struct db;
struct db_result;

/* Error classes, so that callers know whether to try again. */
enum db_status {
    DB_OK = 0,
    DB_RETRY = -1, /* connection lost, serialization failure, deadlock: retriable */
    DB_FATAL = -2, /* constraint, syntax, permission: retrying will not help */
};

/* Timeouts and TCP keepalives of every connection opened after
 * db_options_set, so that a PostgreSQL that stops answering (a black-holed
 * network, a stopped backend, a statement stuck behind a lock) costs a
 * caller a bounded wait instead of a thread. 0 disables an item. A DSN that
 * sets the same libpq keyword (keepalives_idle, options...) wins. */
struct db_options {
    long statement_timeout_ms;  /* the server cancels a statement after this
                                 * (SQLSTATE 57014, retriable); the client
                                 * gives up DB_CLIENT_GRACE_MS later */
    long idle_in_tx_timeout_ms; /* idle_in_transaction_session_timeout */
    long keepalives_idle_s;     /* TCP keepalive: idle time before the first probe */
    long keepalives_interval_s; /* between probes */
    long keepalives_count;      /* unanswered probes before the connection is dead */
    long tcp_user_timeout_ms;   /* sent data unacknowledged this long: dead */
};
#define DB_CLIENT_GRACE_MS 2000
/* The defaults (the services' config table documents the same). */
#define DB_OPTIONS_DEFAULT             \
    {                                  \
        30000, 60000, 30, 10, 3, 30000 \
    }
/* Sets the options for connections opened afterwards. Call at start-up
 * before threads connect (the services' common config does). */
void db_options_set(const struct db_options *o);
/* The options in effect. Any thread. */
struct db_options db_options_get(void);

/* Connects (libpq conninfo or URI) with db_options. Returns NULL and fills
 * errstr. */
struct db *db_connect(const char *dsn, char *errstr, size_t errcap);
void db_free(struct db **db);

/* Runs sql with text parameters $1..$n (NULL value = SQL NULL). If out is not
 * NULL it receives the result, which the caller frees. Outside a transaction,
 * a lost connection is re-established and the statement tried once more. */
enum db_status db_exec(struct db *db, const char *sql, int nparams, const char *const *values,
                       struct db_result **out);

/* Like db_exec, with per-parameter lengths and binary flags (bytea), and
 * results in binary format when binary_result is true. lengths and binary
 * may be NULL for all-text. */
enum db_status db_execv(struct db *db, const char *sql, int nparams, const char *const *values,
                        const int *lengths, const int *binary, bool binary_result,
                        struct db_result **out);

enum db_status db_begin(struct db *db);
enum db_status db_commit(struct db *db);
enum db_status db_rollback(struct db *db);

/* The last error's message and SQLSTATE ("" if none). Valid until the next call. */
const char *db_error_message(const struct db *db);
const char *db_error_sqlstate(const struct db *db);

/* Checks the connection with a trivial query, reconnecting if needed. */
bool db_ping(struct db *db);

int db_result_rows(const struct db_result *r);
int db_result_cols(const struct db_result *r);
const char *db_result_value(const struct db_result *r, int row, int col);
size_t db_result_length(const struct db_result *r, int row, int col);
bool db_result_isnull(const struct db_result *r, int row, int col);
/* Rows affected by INSERT/UPDATE/DELETE. */
long db_result_affected(const struct db_result *r);
void db_result_free(struct db_result **r);

/* Applies every .sql file in dir not yet recorded in schema.schema_migrations, in
 * name order, each in its own transaction with its record, under an
 * advisory lock so that replicas starting together apply each once.
 * Returns the number applied (0 when up to date), or -1 with errstr. */
int db_migrate(struct db *db, const char *schema, const char *dir, char *errstr, size_t errcap);

#endif
