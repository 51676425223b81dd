/* PostgreSQL through libpq. The one place that knows about PGconn: every
 * statement goes through PQexecParams so that no value is ever built into
 * SQL, errors are reduced to "try again" or "give up" by SQLSTATE, and a
 * connection lost outside a transaction is re-established quietly while one
 * lost inside a transaction is reported, because only the caller can redo
 * the whole transaction. The migrations runner lives here too, since it is
 * the only code that needs identifiers and multi-statement SQL. */
#include "db.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "clock.h"
#include "log.h"

/* A migration file larger than this is a mistake (data belongs elsewhere). */
#define DB_MIGRATION_MAX (1024 * 1024)
#define DB_MIGRATIONS_MAX 4096
#define DB_SCHEMA_NAME_MAX 63 /* NAMEDATALEN - 1 */

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
static enum db_status db_result_classify(struct db *db, const PGresult *res)
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
static void db_copy_abandon(struct db *db, PGresult *res)
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
    snprintf(options, sizeof options,
             "-c statement_timeout=%ld -c idle_in_transaction_session_timeout=%ld",
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
static void db_tx_track(struct db *db, bool was_in_tx)
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

/* --- migrations ------------------------------------------------------------------- */

/* Schema names come from code (the service name), but they are still
 * checked, because they are the one identifier we put into SQL text. */
static bool db_schema_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > DB_SCHEMA_NAME_MAX)
        return false;
    if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z')))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

static int db_name_compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void db_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The *.sql regular files in dir, sorted by strcmp. Returns the count or -1. */
static long db_migrations_list(const char *dir, char ***out, char *errstr, size_t errcap)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(errstr, errcap, "%s: %s", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 4, ".sql") != 0)
            continue;
        char path[PATH_MAX];
        struct stat sb;
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path ||
            stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (n == DB_MIGRATIONS_MAX) {
            snprintf(errstr, errcap, "%s: more than %d migrations", dir, DB_MIGRATIONS_MAX);
            goto fail;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **grown = realloc(names, ncap * sizeof *grown);
            if (!grown)
                goto oom;
            names = grown;
            cap = ncap;
        }
        names[n] = strdup(de->d_name);
        if (!names[n])
            goto oom;
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof *names, db_name_compare);
    *out = names;
    return (long)n;

oom:
    snprintf(errstr, errcap, "out of memory");
fail:
    closedir(d);
    db_names_free(names, n);
    return -1;
}

/* Reads a whole migration file (capped, NUL-free since PQexec takes a C
 * string). Returns a malloc'd, NUL-terminated buffer or NULL with errstr. */
static char *db_file_read(const char *path, size_t *lenp, char *errstr, size_t errcap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errstr, errcap, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(DB_MIGRATION_MAX + 1);
    if (!buf) {
        snprintf(errstr, errcap, "out of memory");
        fclose(f);
        return NULL;
    }
    size_t len = fread(buf, 1, DB_MIGRATION_MAX + 1, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(errstr, errcap, "%s: read error", path);
        goto fail;
    }
    if (len > DB_MIGRATION_MAX) {
        snprintf(errstr, errcap, "%s: larger than %d bytes", path, DB_MIGRATION_MAX);
        goto fail;
    }
    if (memchr(buf, '\0', len)) {
        snprintf(errstr, errcap, "%s: contains a NUL byte", path);
        goto fail;
    }
    buf[len] = '\0';
    *lenp = len;
    return buf;

fail:
    free(buf);
    return NULL;
}

/* Lower-case hex SHA-256 of data into hex (65 bytes). */
static int db_sha256_hex(const char *data, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return -1;
    static const char digits[] = "0123456789abcdef";
    for (unsigned int i = 0; i < mdlen; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0x0f];
    }
    hex[64] = '\0';
    return 0;
}

/* Opens a migration transaction: the advisory lock makes replicas that start
 * together take turns (the second then sees the first one's record), and a
 * local search_path puts unqualified names from the files into schema,
 * whatever the role's default is. */
static enum db_status db_migration_begin(struct db *db, const char *schema, const char *quoted)
{
    enum db_status st = db_begin(db);
    if (st != DB_OK)
        return st;
    /* No statement timeout first: waiting for another replica's
     * migrations on the lock, or rewriting a large table, may take longer
     * than any statement of the running service should. */
    const char *path[] = {quoted};
    st = db_exec(db,
                 "SELECT set_config('search_path', $1, true), "
                 "set_config('statement_timeout', '0', true)",
                 1, path, NULL);
    if (st == DB_OK) {
        const char *lock[] = {schema};
        st = db_exec(db, "SELECT pg_advisory_xact_lock(hashtext($1))", 1, lock, NULL);
    }
    if (st != DB_OK)
        db_rollback(db);
    return st;
}

/* Applies one file unless it is recorded. Returns 1 applied, 0 already
 * there, -1 with errstr. */
static int db_migration_apply(struct db *db, const char *schema, const char *quoted,
                              const char *dir, const char *name, char *errstr, size_t errcap)
{
    char path[PATH_MAX];
    char sql[256];
    char sum[65];
    size_t len = 0;
    int ret = -1;
    struct db_result *r = NULL;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        snprintf(errstr, errcap, "%s: path too long", name);
        return -1;
    }
    char *body = db_file_read(path, &len, errstr, errcap);
    if (!body)
        return -1;
    if (db_sha256_hex(body, len, sum) != 0) {
        snprintf(errstr, errcap, "%s: cannot compute SHA-256", name);
        goto out;
    }
    if (db_migration_begin(db, schema, quoted) != DB_OK)
        goto db_fail;

    const char *lookup[] = {name};
    snprintf(sql, sizeof sql, "SELECT checksum FROM %s.schema_migrations WHERE name = $1", quoted);
    if (db_exec(db, sql, 1, lookup, &r) != DB_OK)
        goto db_fail;
    if (db_result_rows(r) == 1) {
        const char *recorded = db_result_value(r, 0, 0);
        if (db_result_isnull(r, 0, 0) || strcmp(recorded, sum) != 0) {
            snprintf(errstr, errcap,
                     "%s: changed after it was applied (recorded sha256 %.12s, file %.12s); "
                     "add a new migration instead of editing an applied one",
                     name, db_result_isnull(r, 0, 0) ? "none" : recorded, sum);
            db_rollback(db);
            goto out;
        }
        db_rollback(db); /* nothing to do; releases the lock */
        ret = 0;
        goto out;
    }

    /* Trusted files from the repository, not network input: they are the one
     * place where SQL runs through the simple query protocol (PQexec), which
     * is what allows several statements, and $$-bodies, per file. */
    PGresult *res = PQexec(db->conn, body);
    enum db_status st = db_result_classify(db, res);
    if (res && st != DB_OK)
        db_copy_abandon(db, res);
    PQclear(res);
    if (st != DB_OK) {
        db_tx_track(db, true);
        goto db_fail;
    }
    if (PQtransactionStatus(db->conn) != PQTRANS_INTRANS) {
        /* A COMMIT or ROLLBACK in the file would split it from its record. */
        snprintf(errstr, errcap, "%s: must not contain transaction control (BEGIN/COMMIT)", name);
        db_tx_track(db, true);
        db_rollback(db);
        goto out;
    }

    const char *record[] = {name, sum};
    snprintf(sql, sizeof sql, "INSERT INTO %s.schema_migrations (name, checksum) VALUES ($1, $2)",
             quoted);
    if (db_exec(db, sql, 2, record, NULL) != DB_OK || db_commit(db) != DB_OK)
        goto db_fail;
    log_info("migration applied", "schema", schema, "migration", name);
    ret = 1;
    goto out;

db_fail:
    snprintf(errstr, errcap, "%s: %s (SQLSTATE %s)", name, db_error_message(db),
             *db_error_sqlstate(db) ? db_error_sqlstate(db) : "none");
    db_rollback(db);
out:
    db_result_free(&r);
    free(body);
    return ret;
}

int db_migrate(struct db *db, const char *schema, const char *dir, char *errstr, size_t errcap)
{
    char sql[512];
    char *quoted = NULL;
    char **names = NULL;
    long n = 0;
    int applied = 0;
    if (errcap)
        errstr[0] = '\0';
    if (!db || !dir) {
        snprintf(errstr, errcap, "db_migrate: missing database or directory");
        return -1;
    }
    if (!db_schema_name_valid(schema)) {
        snprintf(errstr, errcap, "invalid schema name (want [a-z_][a-z0-9_]*, at most %d bytes)",
                 DB_SCHEMA_NAME_MAX);
        return -1;
    }
    if (db->in_tx) {
        snprintf(errstr, errcap, "db_migrate: called inside a transaction");
        return -1;
    }
    /* The files first: a wrong folder should fail before touching the database. */
    n = db_migrations_list(dir, &names, errstr, errcap);
    if (n < 0)
        return -1;
    /* Replicas starting together wait for each other's migrations on the
     * advisory lock, which may take longer than any statement should. */
    db->no_deadline = true;
    /* Outside a transaction a lost connection is picked up here. */
    if (!db_ping(db)) {
        snprintf(errstr, errcap, "database unavailable: %s", db_error_message(db));
        goto fail;
    }
    quoted = PQescapeIdentifier(db->conn, schema, strlen(schema));
    if (!quoted) {
        snprintf(errstr, errcap, "cannot quote schema name: %s", PQerrorMessage(db->conn));
        goto fail;
    }

    /* Under the lock, because two sessions racing on CREATE TABLE IF NOT
     * EXISTS can both pass the check and one then fails. */
    if (db_migration_begin(db, schema, quoted) != DB_OK)
        goto db_fail;
    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS %s.schema_migrations ("
             "name text PRIMARY KEY, "
             "applied_at timestamptz NOT NULL DEFAULT now(), "
             "checksum text NOT NULL)",
             quoted);
    if (db_exec(db, sql, 0, NULL, NULL) != DB_OK || db_commit(db) != DB_OK)
        goto db_fail;

    for (long i = 0; i < n; i++) {
        int one = db_migration_apply(db, schema, quoted, dir, names[i], errstr, errcap);
        if (one < 0)
            goto fail;
        applied += one;
    }
    db_names_free(names, (size_t)n);
    PQfreemem(quoted);
    db->no_deadline = false;
    return applied;

db_fail:
    snprintf(errstr, errcap, "schema_migrations in %s: %s (SQLSTATE %s)", schema,
             db_error_message(db), *db_error_sqlstate(db) ? db_error_sqlstate(db) : "none");
    db_rollback(db);
fail:
    db_names_free(names, n > 0 ? (size_t)n : 0);
    PQfreemem(quoted);
    db->no_deadline = false;
    return -1;
}
