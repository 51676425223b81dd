/* PostgreSQL through libpq. The one place that knows about PGconn: every
 * statement goes through PQexecParams so that no value is ever built into
 * SQL, errors are reduced to "try again" or "give up" by SQLSTATE, and a
 * connection lost outside a transaction is re-established quietly while one
 * lost inside a transaction is reported, because only the caller can redo
 * the whole transaction. The migrations runner is db_migrate.c. */
#include "db.h"
#include "db_private.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "clock.h"
#include "log.h"

static pthread_mutex_t db_options_mu = PTHREAD_MUTEX_INITIALIZER;
static struct db_options db_options_now = DB_OPTIONS_DEFAULT;

void db_options_set(const struct db_options *o)
{
    pthread_mutex_lock(&db_options_mu);
    db_options_now = *o;
    pthread_mutex_unlock(&db_options_mu);
}

struct db_options db_options_get(void)
{
    pthread_mutex_lock(&db_options_mu);
    struct db_options o = db_options_now;
    pthread_mutex_unlock(&db_options_mu);
    return o;
}

struct db_result {
    PGresult *res;
};

/* --- errors -------------------------------------------------------------- */

static void db_error_clear(struct db *db)
{
    db->errmsg[0] = '\0';
    db->sqlstate[0] = '\0';
}

/* libpq messages end with a newline and may span lines; keep one line. */
static void db_error_set(struct db *db, const char *sqlstate, const char *msg)
{
    snprintf(db->sqlstate, sizeof db->sqlstate, "%s", sqlstate ? sqlstate : "");
    snprintf(db->errmsg, sizeof db->errmsg, "%s", msg && *msg ? msg : "unknown error");
    size_t n = strcspn(db->errmsg, "\r\n");
    db->errmsg[n] = '\0';
}

static bool db_sqlstate_retriable(const char *s)
{
    if (!s || strlen(s) != 5)
        return false;
    /* 08P01 is the server rejecting what we sent (say, a missing parameter):
     * a bug in the caller, which the same statement will hit again. */
    if (strcmp(s, "08P01") == 0)
        return false;
    /* 08: connection exception; 53: insufficient resources. */
    if (strncmp(s, "08", 2) == 0 || strncmp(s, "53", 2) == 0)
        return true;
    /* serialization failure, deadlock, statement timeout (the lock or the
     * load that made it slow may be gone next time), admin/crash/
     * cannot-connect-now shutdown. */
    static const char *const codes[] = {"40001", "40P01", "57014", "57P01", "57P02", "57P03"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(s, codes[i]) == 0)
            return true;
    return false;
}

/* Reduces a finished command to a db_status and records its error. res may be
 * NULL (libpq could not even send the command). */
enum db_status db_result_classify(struct db *db, const PGresult *res)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY)
        return DB_OK;

    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    /* The primary message only: DETAIL can quote row values (a unique key,
     * a token), which must not end up in logs through callers. */
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg || !*msg)
        msg = res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
                                                : PQerrorMessage(db->conn);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
        msg = "COPY is not supported through db_exec";
    bool lost = PQstatus(db->conn) == CONNECTION_BAD;
    /* libpq's own "server closed the connection" carries no SQLSTATE. */
    db_error_set(db, state && *state ? state : lost ? "08006" : "", msg);

    if (lost || db_sqlstate_retriable(state))
        return DB_RETRY;
    return DB_FATAL;
}

/* A COPY started by mistake would leave the connection unusable; end it. */
void db_copy_abandon(struct db *db, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COPY_IN) {
        PQputCopyEnd(db->conn, "COPY is not supported");
    } else if (st == PGRES_COPY_OUT) {
        char *buf = NULL;
        while (PQgetCopyData(db->conn, &buf, 0) > 0) {
            PQfreemem(buf);
            buf = NULL;
        }
    } else {
        return;
    }
    PGresult *rest;
    while ((rest = PQgetResult(db->conn)) != NULL)
        PQclear(rest);
}

/* --- connection ------------------------------------------------------------ */

/* Server notices (NOTICE "relation already exists, skipping", WARNINGs) go to
 * our JSON log instead of libpq's default fprintf to stderr. */
static void db_notice_receive(void *arg, const PGresult *res)
{
    (void)arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    enum log_level level = LOG_DEBUG;
    if (sev && strcmp(sev, "WARNING") == 0)
        level = LOG_WARN;
    else if (sev && strcmp(sev, "INFO") == 0)
        level = LOG_INFO;
    log_write(level, "postgres notice", "severity", sev ? sev : "", "sqlstate", state ? state : "",
              "notice", msg ? msg : "", (const char *)0);
}

static void db_log_connected(const struct db *db, const char *what)
{
    /* Host, port, database and user only: never the DSN, which may hold a
     * password. */
    log_info(what, "host", PQhost(db->conn), "port", PQport(db->conn), "database", PQdb(db->conn),
             "user", PQuser(db->conn));
}

struct db *db_connect(const char *dsn, char *errstr, size_t errcap)
{
    if (errcap)
        errstr[0] = '\0';
    if (!dsn || !*dsn) {
        snprintf(errstr, errcap, "empty database connection string");
        return NULL;
    }
    /* libpq's parse errors can echo fragments of the string (a password
     * included), so a malformed DSN is reported without them. */
    char *perr = NULL;
    PQconninfoOption *parsed = PQconninfoParse(dsn, &perr);
    if (!parsed) {
        PQfreemem(perr);
        snprintf(errstr, errcap,
                 "malformed database connection string (not shown: it may "
                 "contain a password)");
        return NULL;
    }
    PQconninfoFree(parsed);

    /* Defaults first: the expanded DSN that follows overrides any of them,
     * so a DSN that sets connect_timeout or application_name wins. The
     * timeouts go in the startup packet (options), so a reconnect (PQreset)
     * has them too. */
    struct db_options o = db_options_get();
    char ka_idle[24], ka_interval[24], ka_count[24], user_timeout[24], options[128];
    const char *keys[16];
    const char *vals[16];
    int n = 0;
    if (!getenv("PGCONNECT_TIMEOUT")) {
        keys[n] = "connect_timeout";
        vals[n++] = "5";
    }
    if (o.keepalives_idle_s > 0) {
        snprintf(ka_idle, sizeof ka_idle, "%ld", o.keepalives_idle_s);
        snprintf(ka_interval, sizeof ka_interval, "%ld",
                 o.keepalives_interval_s > 0 ? o.keepalives_interval_s : 10);
        snprintf(ka_count, sizeof ka_count, "%ld", o.keepalives_count > 0 ? o.keepalives_count : 3);
        keys[n] = "keepalives";
        vals[n++] = "1";
        keys[n] = "keepalives_idle";
        vals[n++] = ka_idle;
        keys[n] = "keepalives_interval";
        vals[n++] = ka_interval;
        keys[n] = "keepalives_count";
        vals[n++] = ka_count;
    }
    if (o.tcp_user_timeout_ms > 0) {
        snprintf(user_timeout, sizeof user_timeout, "%ld", o.tcp_user_timeout_ms);
        keys[n] = "tcp_user_timeout";
        vals[n++] = user_timeout;
    }
    /* jit=off: PostgreSQL JIT-compiles any statement whose estimate passes
     * jit_above_cost, and our large statements (a CSV export's 5,000-row
     * pages, a segment count over a million friends) are short, so the
     * compile was a quarter of an export's time (docs/benchmarks.md). */
    snprintf(options, sizeof options,
             "-c statement_timeout=%ld -c idle_in_transaction_session_timeout=%ld -c jit=off",
             o.statement_timeout_ms > 0 ? o.statement_timeout_ms : 0,
             o.idle_in_tx_timeout_ms > 0 ? o.idle_in_tx_timeout_ms : 0);
    keys[n] = "options";
    vals[n++] = options;
    keys[n] = "fallback_application_name";
    vals[n++] = program_invocation_short_name;
    keys[n] = "client_encoding";
    vals[n++] = "UTF8";
    keys[n] = "dbname";
    vals[n++] = dsn;
    keys[n] = NULL;
    vals[n] = NULL;

    struct db *db = calloc(1, sizeof *db);
    if (!db) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    db->deadline_ms = o.statement_timeout_ms > 0 ? o.statement_timeout_ms + DB_CLIENT_GRACE_MS : 0;
    db->conn = PQconnectdbParams(keys, vals, 1);
    if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
        const char *msg = db->conn ? PQerrorMessage(db->conn) : "out of memory";
        snprintf(errstr, errcap, "%s", msg);
        errstr[strcspn(errstr, "\r\n")] = '\0';
        goto fail;
    }
    PQsetNoticeReceiver(db->conn, db_notice_receive, NULL);
    db_log_connected(db, "database connected");
    return db;

fail:
    PQfinish(db->conn);
    free(db);
    return NULL;
}

void db_free(struct db **db)
{
    if (!db || !*db)
        return;
    PQfinish((*db)->conn);
    free(*db);
    *db = NULL;
}

/* PQreset keeps the PGconn (and its notice receiver) and reconnects with the
 * same parameters. Returns true when the connection is usable again. */
static bool db_reconnect(struct db *db)
{
    log_warn("database connection lost, reconnecting", "host", PQhost(db->conn), "port",
             PQport(db->conn));
    PQreset(db->conn);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        db_error_set(db, "08006", PQerrorMessage(db->conn));
        return false;
    }
    db->stuck = false;
    db_log_connected(db, "database reconnected");
    return true;
}

/* --- statements -------------------------------------------------------------- */

/* After a command, believe the server about the transaction state while the
 * connection is alive; once it is gone, keep what we knew. */
void db_tx_track(struct db *db, bool was_in_tx)
{
    if (PQstatus(db->conn) != CONNECTION_OK || db->stuck) {
        db->in_tx = was_in_tx;
        return;
    }
    PGTransactionStatusType ts = PQtransactionStatus(db->conn);
    db->in_tx = ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
    if (!db->in_tx)
        db->tx_failure = DB_OK;
}

/* Waits for the reply to a sent statement for at most db->deadline_ms, as
 * PQexecParams would wait for ever: the result (the first error if any,
 * else the last result) goes to *resp. Returns 0, or -1 when the deadline
 * passed (the statement may still be running; the caller drops the
 * connection). */
static int db_result_wait(struct db *db, PGresult **resp)
{
    /* The real clock, as clock_mono_deadline's: a test's fake time must not
     * make a kernel wait shorter or longer. */
    struct timespec deadline = clock_mono_deadline(db->deadline_ms);
    PGresult *keep = NULL;
    for (;;) {
        while (PQisBusy(db->conn)) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            int64_t left = (int64_t)(deadline.tv_sec - now.tv_sec) * 1000 +
                           (deadline.tv_nsec - now.tv_nsec) / 1000000;
            if (left <= 0) {
                PQclear(keep);
                return -1;
            }
            struct pollfd pfd = {.fd = PQsocket(db->conn), .events = POLLIN};
            if (pfd.fd < 0)
                break;
            int n = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
            if (n < 0 && errno != EINTR)
                break;
            if (n > 0 && !PQconsumeInput(db->conn))
                break; /* the connection broke: PQgetResult reports it */
        }
        PGresult *r = PQgetResult(db->conn);
        if (!r)
            break;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            PQclear(keep); /* db_copy_abandon ends it */
            *resp = r;
            return 0;
        }
        if (keep && (PQresultStatus(keep) == PGRES_FATAL_ERROR ||
                     PQresultStatus(keep) == PGRES_BAD_RESPONSE)) {
            PQclear(r);
        } else {
            PQclear(keep);
            keep = r;
        }
    }
    *resp = keep;
    return 0;
}

static enum db_status db_run(struct db *db, const char *sql, int nparams, const char *const *values,
                             const int *lengths, const int *binary, bool binary_result,
                             PGresult **resp)
{
    *resp = NULL;
    PGresult *res = NULL;
    if (db->deadline_ms > 0 && !db->no_deadline) {
        if (!PQsendQueryParams(db->conn, sql, nparams, NULL, values, lengths, binary,
                               binary_result ? 1 : 0))
            return db_result_classify(db, NULL);
        if (db_result_wait(db, &res) != 0) {
            db->stuck = true;
            char msg[160], waited[24];
            snprintf(waited, sizeof waited, "%ld", db->deadline_ms);
            snprintf(msg, sizeof msg,
                     "no answer from the database within %ld ms; the connection is reopened",
                     db->deadline_ms);
            log_warn("database did not answer in time; reconnecting before the next statement",
                     "host", PQhost(db->conn), "port", PQport(db->conn), "waited_ms", waited);
            db_error_set(db, "57014", msg);
            return DB_RETRY;
        }
    } else {
        res = PQexecParams(db->conn, sql, nparams, NULL, values, lengths, binary,
                           binary_result ? 1 : 0);
    }
    enum db_status st = db_result_classify(db, res);
    if (res && st != DB_OK)
        db_copy_abandon(db, res);
    if (st == DB_OK)
        *resp = res;
    else
        PQclear(res);
    return st;
}

enum db_status db_execv(struct db *db, const char *sql, int nparams, const char *const *values,
                        const int *lengths, const int *binary, bool binary_result,
                        struct db_result **out)
{
    if (out)
        *out = NULL;
    if (!db)
        return DB_FATAL;
    db_error_clear(db);
    if (!sql || nparams < 0 || (nparams > 0 && !values)) {
        db_error_set(db, "", "db_exec: missing SQL or parameter values");
        return DB_FATAL;
    }

    bool was_in_tx = db->in_tx;
    if (PQstatus(db->conn) != CONNECTION_OK || db->stuck) {
        if (was_in_tx) {
            /* The server has already discarded the transaction; pretending
             * otherwise would let the caller commit half its work. */
            db_error_set(db, "08003", "connection lost inside a transaction");
            return DB_RETRY;
        }
        if (!db_reconnect(db))
            return DB_RETRY;
    }

    PGresult *res = NULL;
    enum db_status st = db_run(db, sql, nparams, values, lengths, binary, binary_result, &res);
    if (st == DB_RETRY && !was_in_tx && PQstatus(db->conn) != CONNECTION_OK) {
        /* Outside a transaction the statement either ran alone or not at all;
         * the contract is one more try on a fresh connection. (An
         * autocommitted write whose reply was lost can run twice: writes that
         * matter run inside transactions, which are never retried here.) */
        if (!db_reconnect(db))
            return DB_RETRY;
        st = db_run(db, sql, nparams, values, lengths, binary, binary_result, &res);
    }
    db_tx_track(db, was_in_tx);
    if (st != DB_OK && db->in_tx && db->tx_failure == DB_OK)
        db->tx_failure = st;
    if (st != DB_OK)
        return st;

    if (out) {
        struct db_result *r = malloc(sizeof *r);
        if (!r) {
            PQclear(res);
            db_error_set(db, "", "out of memory");
            return DB_FATAL;
        }
        r->res = res;
        *out = r;
    } else {
        PQclear(res);
    }
    return DB_OK;
}

enum db_status db_exec(struct db *db, const char *sql, int nparams, const char *const *values,
                       struct db_result **out)
{
    return db_execv(db, sql, nparams, values, NULL, NULL, false, out);
}

enum db_status db_begin(struct db *db)
{
    if (!db)
        return DB_FATAL;
    if (db->in_tx) {
        /* PostgreSQL would only warn; a nested BEGIN is a bug in the caller
         * (or a lost transaction that was never rolled back). */
        db_error_set(db, "25001", "a transaction is already open (commit or roll it back first)");
        return DB_FATAL;
    }
    db->tx_failure = DB_OK;
    return db_exec(db, "BEGIN", 0, NULL, NULL);
}

enum db_status db_commit(struct db *db)
{
    if (!db)
        return DB_FATAL;
    if (!db->in_tx) {
        db_error_clear(db);
        db_error_set(db, "25000", "no transaction to commit");
        return DB_FATAL;
    }
    enum db_status earlier = db->tx_failure;
    struct db_result *r = NULL;
    enum db_status st = db_exec(db, "COMMIT", 0, NULL, &r);
    /* Whatever happened, the transaction is over: committed, rolled back by
     * the server, or lost with the connection (then the outcome is unknown
     * and the caller redoes it; inboxes absorb the repeat). */
    db->in_tx = false;
    db->tx_failure = DB_OK;
    if (st == DB_OK && strcmp(PQcmdStatus(r->res), "ROLLBACK") == 0) {
        db_error_set(db, "25P02", "transaction was rolled back because a statement in it failed");
        st = earlier != DB_OK ? earlier : DB_FATAL;
    }
    db_result_free(&r);
    return st;
}

enum db_status db_rollback(struct db *db)
{
    if (!db)
        return DB_FATAL;
    db_error_clear(db);
    if (db->stuck) {
        /* The server's transaction ends with the connection, which the next
         * statement replaces. */
        db->in_tx = false;
        db->tx_failure = DB_OK;
        return DB_OK;
    }
    if (!db->in_tx && PQstatus(db->conn) == CONNECTION_OK &&
        PQtransactionStatus(db->conn) == PQTRANS_IDLE)
        return DB_OK; /* nothing open: harmless, so cleanup paths can call it always */
    if (PQstatus(db->conn) != CONNECTION_OK) {
        /* The server ended the transaction with the connection; the next
         * statement reconnects. */
        db->in_tx = false;
        db->tx_failure = DB_OK;
        return DB_OK;
    }
    enum db_status st = db_exec(db, "ROLLBACK", 0, NULL, NULL);
    db->in_tx = false;
    db->tx_failure = DB_OK;
    return st;
}

const char *db_error_message(const struct db *db)
{
    return db ? db->errmsg : "";
}

const char *db_error_sqlstate(const struct db *db)
{
    return db ? db->sqlstate : "";
}

bool db_ping(struct db *db)
{
    return db && db_exec(db, "SELECT 1", 0, NULL, NULL) == DB_OK;
}

/* --- results ------------------------------------------------------------------- */

int db_result_rows(const struct db_result *r)
{
    return r ? PQntuples(r->res) : 0;
}

int db_result_cols(const struct db_result *r)
{
    return r ? PQnfields(r->res) : 0;
}

static bool db_result_inside(const struct db_result *r, int row, int col)
{
    return r && row >= 0 && col >= 0 && row < PQntuples(r->res) && col < PQnfields(r->res);
}

const char *db_result_value(const struct db_result *r, int row, int col)
{
    return db_result_inside(r, row, col) ? PQgetvalue(r->res, row, col) : NULL;
}

size_t db_result_length(const struct db_result *r, int row, int col)
{
    return db_result_inside(r, row, col) ? (size_t)PQgetlength(r->res, row, col) : 0;
}

bool db_result_isnull(const struct db_result *r, int row, int col)
{
    return !db_result_inside(r, row, col) || PQgetisnull(r->res, row, col);
}

long db_result_affected(const struct db_result *r)
{
    if (!r)
        return 0;
    const char *s = PQcmdTuples(r->res);
    if (!s || !*s)
        return 0;
    char *end = NULL;
    errno = 0;
    long n = strtol(s, &end, 10);
    return errno == 0 && end && *end == '\0' && n >= 0 ? n : 0;
}

void db_result_free(struct db_result **r)
{
    if (!r || !*r)
        return;
    PQclear((*r)->res);
    free(*r);
    *r = NULL;
}
