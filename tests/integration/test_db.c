/* common/db.c against the real PostgreSQL of the local stack: parameters
 * that would break string-built SQL, transactions, the retry/fatal split by
 * SQLSTATE, reconnecting after the server killed our backend, statement
 * timeouts (a statement stuck behind a lock, a backend that stopped
 * answering), migrations
 * (once only, refused when edited, atomic per file, safe when two replicas
 * start together), and the isolation between service roles.
 * Each test that needs tables gets a scratch schema owned by the ingest role
 * (created and dropped through the admin connection), so nothing touches the
 * services' own schemas except the isolation test, which applies ingest's
 * real migrations exactly as the service would. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "itest.h"

#define FIXTURES "tests/integration/fixtures"

static struct db *admin;
static struct db *ingest;
static char scratch[64];

static void scratch_create(void)
{
    snprintf(scratch, sizeof scratch, "kz_test_db_%ld", (long)getpid());
    itest_schema_create(admin, ingest, scratch);
    /* Unqualified names in these tests resolve into the scratch schema. */
    itest_search_path_set(ingest, scratch);
}

static void setup(void)
{
    admin = itest_db_connect_env("KIZUNA_PG_ADMIN_URL");
    ingest = itest_db_connect_env("INGEST_DATABASE_URL");
    scratch_create();
}

static void teardown(void)
{
    itest_schema_drop(admin, scratch);
    db_free(&ingest);
    db_free(&admin);
}

TestSuite(db, .init = setup, .fini = teardown, .timeout = 60);

/* --- parameters ---------------------------------------------------------- */

static const char *const tricky_values[] = {
    "O'Reilly",
    "x'); DROP TABLE widgets; --",
    "a;b;c; SELECT pg_sleep(10);",
    "\"double\" and 'single' quotes",
    "back\\slash \\' E'\\x41'",
    "$1 $2 ::text",
    "\xe7\xb5\x86 kizuna",
    "",
};

Test(db, parameters_round_trip_values_that_would_break_string_sql)
{
    itest_exec_ok(ingest, "CREATE TABLE notes (body text)", 0, NULL);
    for (size_t i = 0; i < sizeof tricky_values / sizeof tricky_values[0]; i++) {
        const char *v[] = {tricky_values[i]};
        char *echo = itest_query_text(ingest, "SELECT $1::text", 1, v);
        cr_assert_str_eq(echo, tricky_values[i]);
        free(echo);
        itest_exec_ok(ingest, "INSERT INTO notes (body) VALUES ($1)", 1, v);
        char *count = itest_query_text(ingest, "SELECT count(*) FROM notes WHERE body = $1", 1, v);
        cr_assert_str_eq(count, "1", "value %zu stored once and found again", i);
        free(count);
    }
    char *total = itest_query_text(ingest, "SELECT count(*) FROM notes", 0, NULL);
    cr_assert_str_eq(total, "8");
    free(total);
}

Test(db, null_parameter_is_sql_null)
{
    const char *v[] = {NULL};
    char *is_null = itest_query_text(ingest, "SELECT ($1::text IS NULL)::text", 1, v);
    cr_assert_str_eq(is_null, "true");
    free(is_null);
    struct db_result *r = NULL;
    cr_assert_eq(db_exec(ingest, "SELECT $1::text", 1, v, &r), DB_OK);
    cr_assert(db_result_isnull(r, 0, 0));
    cr_assert_eq(db_result_cols(r), 1);
    db_result_free(&r);
    cr_assert_null(r);
}

Test(db, binary_parameters_round_trip_bytea_with_nul_bytes)
{
    static const char bytes[] = {'a', '\0', '\'', ';', (char)0xff, '\0', 'z'};
    const char *v[] = {bytes};
    const int len[] = {(int)sizeof bytes};
    const int bin[] = {1};
    struct db_result *r = NULL;
    enum db_status st =
        db_execv(ingest, "SELECT $1::bytea, length($1::bytea)", 1, v, len, bin, true, &r);
    cr_assert_eq(st, DB_OK, "%s", db_error_message(ingest));
    cr_assert_eq(db_result_length(r, 0, 0), sizeof bytes);
    cr_assert_eq(memcmp(db_result_value(r, 0, 0), bytes, sizeof bytes), 0);
    db_result_free(&r);
}

/* --- transactions ---------------------------------------------------------- */

Test(db, commit_keeps_and_rollback_discards)
{
    itest_exec_ok(ingest, "CREATE TABLE ledger (entry text PRIMARY KEY)", 0, NULL);
    const char *kept[] = {"kept"};
    const char *dropped[] = {"dropped"};

    cr_assert_eq(db_begin(ingest), DB_OK);
    itest_exec_ok(ingest, "INSERT INTO ledger VALUES ($1)", 1, kept);
    cr_assert_eq(db_commit(ingest), DB_OK);

    cr_assert_eq(db_begin(ingest), DB_OK);
    itest_exec_ok(ingest, "INSERT INTO ledger VALUES ($1)", 1, dropped);
    cr_assert_eq(db_rollback(ingest), DB_OK);

    char *rows = itest_query_text(ingest, "SELECT string_agg(entry, ',') FROM ledger", 0, NULL);
    cr_assert_str_eq(rows, "kept");
    free(rows);
}

Test(db, failed_statement_makes_commit_report_failure)
{
    itest_exec_ok(ingest, "CREATE TABLE ledger (entry text PRIMARY KEY)", 0, NULL);
    const char *v[] = {"once"};
    itest_exec_ok(ingest, "INSERT INTO ledger VALUES ($1)", 1, v);

    cr_assert_eq(db_begin(ingest), DB_OK);
    cr_assert_eq(db_exec(ingest, "INSERT INTO ledger VALUES ($1)", 1, v, NULL), DB_FATAL);
    /* PostgreSQL answers COMMIT of a failed transaction with "ROLLBACK". */
    cr_assert_eq(db_commit(ingest), DB_FATAL);
    cr_assert_str_eq(db_error_sqlstate(ingest), "25P02");
    /* The transaction is over: a new one can begin. */
    cr_assert_eq(db_begin(ingest), DB_OK);
    cr_assert_eq(db_rollback(ingest), DB_OK);
}

Test(db, begin_twice_and_commit_without_begin_are_refused)
{
    cr_assert_eq(db_commit(ingest), DB_FATAL);
    cr_assert_eq(db_begin(ingest), DB_OK);
    cr_assert_eq(db_begin(ingest), DB_FATAL);
    cr_assert_eq(db_rollback(ingest), DB_OK);
    cr_assert_eq(db_rollback(ingest), DB_OK, "rollback with nothing open is harmless");
}

/* --- error classes ---------------------------------------------------------- */

struct class_case {
    const char *sqlstate;
    enum db_status want;
};

/* Raised through a function so that the SQLSTATE is a parameter. */
static const struct class_case class_cases[] = {
    {"40001", DB_RETRY}, /* serialization_failure */
    {"40P01", DB_RETRY}, /* deadlock_detected */
    {"57P01", DB_RETRY}, /* admin_shutdown */
    {"57P02", DB_RETRY}, /* crash_shutdown */
    {"57P03", DB_RETRY}, /* cannot_connect_now */
    {"53300", DB_RETRY}, /* too_many_connections */
    {"53100", DB_RETRY}, /* disk_full */
    {"08006", DB_RETRY}, /* connection_failure */
    {"23505", DB_FATAL}, /* unique_violation */
    {"42501", DB_FATAL}, /* insufficient_privilege */
    {"22012", DB_FATAL}, /* division_by_zero */
    {"40002", DB_FATAL}, /* integrity constraint in 40 that is not retriable */
    {"57014", DB_RETRY}, /* query_canceled: a statement timeout (decision 0010) */
};

Test(db, sqlstates_are_classified_retry_or_fatal)
{
    itest_exec_ok(ingest,
                  "CREATE FUNCTION raise_code(code text) RETURNS void LANGUAGE plpgsql AS $$ "
                  "BEGIN RAISE EXCEPTION 'raised %', code USING ERRCODE = code; END $$",
                  0, NULL);
    for (size_t i = 0; i < sizeof class_cases / sizeof class_cases[0]; i++) {
        const struct class_case *c = &class_cases[i];
        const char *v[] = {c->sqlstate};
        enum db_status st = db_exec(ingest, "SELECT raise_code($1)", 1, v, NULL);
        cr_expect_eq(st, c->want, "SQLSTATE %s: got %d, want %d", c->sqlstate, st, c->want);
        cr_expect_str_eq(db_error_sqlstate(ingest), c->sqlstate);
        cr_expect(strstr(db_error_message(ingest), c->sqlstate) != NULL, "message: %s",
                  db_error_message(ingest));
        cr_assert(db_ping(ingest), "the connection survives an error");
    }
}

struct error_case {
    const char *sql;
    const char *sqlstate;
};

/* Real errors, each fatal, each leaving the connection usable. */
static const struct error_case error_cases[] = {
    {"INSERT INTO ledger VALUES ('dup')", "23505"},
    {"SELEC 1", "42601"},
    {"SELECT 1 / 0", "22012"},
    {"SELECT * FROM no_such_table", "42P01"},
    /* The extended protocol takes one statement: nothing can be stacked. */
    {"SELECT 1; DROP TABLE ledger", "42601"},
    /* A parameter missing: the server rejects the Bind with 08P01, which is
     * class 08 but the caller's bug, not a lost connection. */
    {"SELECT $1::int", "08P01"},
};

Test(db, real_errors_are_fatal_with_their_sqlstate)
{
    itest_exec_ok(ingest, "CREATE TABLE ledger (entry text PRIMARY KEY)", 0, NULL);
    itest_exec_ok(ingest, "INSERT INTO ledger VALUES ('dup')", 0, NULL);
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
        const struct error_case *c = &error_cases[i];
        enum db_status st = db_exec(ingest, c->sql, 0, NULL, NULL);
        cr_expect_eq(st, DB_FATAL, "%s: got %d", c->sql, st);
        cr_expect_str_eq(db_error_sqlstate(ingest), c->sqlstate, "%s", c->sql);
        cr_expect_neq(db_error_message(ingest)[0], '\0');
        cr_assert(db_ping(ingest), "usable after %s", c->sql);
        cr_expect_str_eq(db_error_sqlstate(ingest), "", "a success clears the error");
    }
}

/* --- reconnect -------------------------------------------------------------- */

static void terminate_backend(const char *pid)
{
    /* With a timeout, pg_terminate_backend waits until the backend is gone. */
    const char *v[] = {pid};
    char *ok = itest_query_text(admin, "SELECT pg_terminate_backend($1::int, 5000)::text", 1, v);
    cr_assert_str_eq(ok, "true");
    free(ok);
}

Test(db, terminated_backend_reconnects_outside_transaction)
{
    char *before = itest_query_text(ingest, "SELECT pg_backend_pid()::text", 0, NULL);
    terminate_backend(before);

    struct db_result *r = NULL;
    enum db_status st = db_exec(ingest, "SELECT pg_backend_pid()::text, current_user", 0, NULL, &r);
    cr_assert_eq(st, DB_OK, "transparent reconnect: %s", db_error_message(ingest));
    cr_assert_str_neq(db_result_value(r, 0, 0), before, "a new backend answered");
    db_result_free(&r);
    free(before);

    /* db_ping heals the same way. */
    char *second = itest_query_text(ingest, "SELECT pg_backend_pid()::text", 0, NULL);
    terminate_backend(second);
    free(second);
    cr_assert(db_ping(ingest));
}

/* --- timeouts -------------------------------------------------------------- */

/* A connection opened with these options (db_options are read at connect);
 * the defaults come back for the other tests. */
static struct db *connect_with_timeout(long statement_timeout_ms)
{
    struct db_options o = DB_OPTIONS_DEFAULT;
    o.statement_timeout_ms = statement_timeout_ms;
    db_options_set(&o);
    struct db *db = itest_db_connect_env("INGEST_DATABASE_URL");
    struct db_options def = DB_OPTIONS_DEFAULT;
    db_options_set(&def);
    return db;
}

Test(db, statement_stuck_behind_a_lock_times_out_as_retry)
{
    itest_exec_ok(ingest, "CREATE TABLE widgets (id int)", 0, NULL);
    struct db *stuck = connect_with_timeout(1000);
    itest_search_path_set(stuck, scratch);
    cr_assert_eq(db_begin(ingest), DB_OK);
    cr_assert_eq(db_exec(ingest, "LOCK TABLE widgets IN ACCESS EXCLUSIVE MODE", 0, NULL, NULL),
                 DB_OK, "%s", db_error_message(ingest));

    long t0 = itest_now_ms();
    enum db_status st = db_exec(stuck, "SELECT count(*) FROM widgets", 0, NULL, NULL);
    long took = itest_now_ms() - t0;
    cr_expect_eq(st, DB_RETRY, "a statement timeout is worth retrying");
    cr_expect_str_eq(db_error_sqlstate(stuck), "57014", "%s", db_error_message(stuck));
    cr_expect_geq(took, 900, "cancelled after %ld ms", took);
    cr_expect_lt(took, 1000 + DB_CLIENT_GRACE_MS, "cancelled by the server after %ld ms", took);

    cr_assert_eq(db_rollback(ingest), DB_OK);
    char *n = itest_query_text(stuck, "SELECT count(*) FROM widgets", 0, NULL);
    cr_expect_str_eq(n, "0", "the same connection works once the lock is gone");
    free(n);
    db_free(&stuck);
}

Test(db, stopped_backend_times_out_on_the_client_and_reconnects)
{
    /* A backend that stops answering (SIGSTOP): the server's own timeout
     * cannot fire, so the client gives up DB_CLIENT_GRACE_MS after it. */
    struct db *stuck = connect_with_timeout(500);
    char *pid_text = itest_query_text(stuck, "SELECT pg_backend_pid()::text", 0, NULL);
    pid_t pid = (pid_t)strtol(pid_text, NULL, 10);
    cr_assert_gt(pid, 0);
    cr_assert_eq(kill(pid, SIGSTOP), 0, "cannot stop backend %ld (run as root or postgres)",
                 (long)pid);

    long t0 = itest_now_ms();
    enum db_status st = db_exec(stuck, "SELECT 1", 0, NULL, NULL);
    long took = itest_now_ms() - t0;
    kill(pid, SIGCONT);
    cr_expect_eq(st, DB_RETRY);
    cr_expect_str_eq(db_error_sqlstate(stuck), "57014", "%s", db_error_message(stuck));
    cr_expect_geq(took, 500 + DB_CLIENT_GRACE_MS - 100, "gave up after %ld ms", took);
    cr_expect_lt(took, 500 + DB_CLIENT_GRACE_MS + 1500, "gave up after %ld ms", took);

    /* The next statement runs on a new connection, not behind the old reply. */
    char *again = itest_query_text(stuck, "SELECT pg_backend_pid()::text", 0, NULL);
    cr_expect_str_neq(again, pid_text, "a new backend answered");
    free(again);
    free(pid_text);

    /* Inside a transaction the loss is reported, and rollback cleans up. */
    cr_assert_eq(db_begin(stuck), DB_OK);
    pid_text = itest_query_text(stuck, "SELECT pg_backend_pid()::text", 0, NULL);
    pid = (pid_t)strtol(pid_text, NULL, 10);
    free(pid_text);
    cr_assert_eq(kill(pid, SIGSTOP), 0);
    st = db_exec(stuck, "SELECT 1", 0, NULL, NULL);
    kill(pid, SIGCONT);
    cr_expect_eq(st, DB_RETRY);
    cr_expect_eq(db_commit(stuck), DB_RETRY, "commit after a lost transaction");
    cr_expect_eq(db_rollback(stuck), DB_OK);
    cr_expect(db_ping(stuck), "usable again: %s", db_error_message(stuck));
    db_free(&stuck);
}

Test(db, terminated_backend_inside_transaction_is_retry)
{
    itest_exec_ok(ingest, "CREATE TABLE ledger (entry text PRIMARY KEY)", 0, NULL);
    cr_assert_eq(db_begin(ingest), DB_OK);
    const char *v[] = {"lost"};
    itest_exec_ok(ingest, "INSERT INTO ledger VALUES ($1)", 1, v);
    char *pid = itest_query_text(ingest, "SELECT pg_backend_pid()::text", 0, NULL);
    terminate_backend(pid);
    free(pid);

    cr_assert_eq(db_exec(ingest, "SELECT 1", 0, NULL, NULL), DB_RETRY,
                 "never silently retried inside a transaction");
    const char *state = db_error_sqlstate(ingest);
    cr_assert(strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0, "sqlstate %s", state);
    cr_assert_eq(db_exec(ingest, "SELECT 1", 0, NULL, NULL), DB_RETRY,
                 "still lost until the caller rolls back");
    cr_assert_eq(db_commit(ingest), DB_RETRY, "a lost transaction cannot commit");

    /* The caller restarts the transaction on a fresh connection. search_path
     * was a session setting, so it is set again. */
    itest_search_path_set(ingest, scratch);
    char *count = itest_query_text(ingest, "SELECT count(*) FROM ledger", 0, NULL);
    cr_assert_str_eq(count, "0", "the lost transaction left nothing");
    free(count);

    cr_assert_eq(db_begin(ingest), DB_OK);
    pid = itest_query_text(ingest, "SELECT pg_backend_pid()::text", 0, NULL);
    terminate_backend(pid);
    free(pid);
    cr_assert_eq(db_exec(ingest, "SELECT 1", 0, NULL, NULL), DB_RETRY);
    cr_assert_eq(db_rollback(ingest), DB_OK, "rolling back a lost transaction succeeds");
    cr_assert(db_ping(ingest), "and the next statement reconnects");
}

/* --- connect ------------------------------------------------------------------ */

struct connect_case {
    const char *dsn;
    const char *secret; /* must not appear in errstr */
};

static const struct connect_case bad_connects[] = {
    {"", NULL},
    {"host=127.0.0.1 password secret-one", "secret-one"},
    {"postgresql://u:secret%zz@127.0.0.1/x", "secret"},
    {"postgresql://kizuna_nobody:secret-two@127.0.0.1:1/kizuna", "secret-two"},
    {"postgresql://kizuna_nobody:secret-three@127.0.0.1:1/kizuna?connect_timeout=1",
     "secret-three"},
};

Test(db, bad_connection_strings_fail_without_echoing_passwords)
{
    for (size_t i = 0; i < sizeof bad_connects / sizeof bad_connects[0]; i++) {
        char errstr[256] = "";
        struct db *db = db_connect(bad_connects[i].dsn, errstr, sizeof errstr);
        cr_expect_null(db, "case %zu connected", i);
        db_free(&db);
        cr_expect_neq(errstr[0], '\0', "case %zu has a message", i);
        if (bad_connects[i].secret)
            cr_expect_null(strstr(errstr, bad_connects[i].secret), "case %zu leaks: %s", i, errstr);
    }
}

/* --- migrations ---------------------------------------------------------------- */

/* schema_migrations of the scratch schema (the session's search_path). */
static char *migrations_snapshot(void)
{
    return itest_query_text(ingest,
                            "SELECT string_agg(name || '|' || applied_at::text || '|' || checksum, "
                            "';' ORDER BY name) FROM schema_migrations",
                            0, NULL);
}

Test(db, migrations_apply_once_and_a_second_run_applies_nothing)
{
    char errstr[256];
    int n = db_migrate(ingest, scratch, FIXTURES "/migrations_basic", errstr, sizeof errstr);
    cr_assert_eq(n, 2, "first run: %d (%s); run the tests from the repository root", n, errstr);
    char *first = migrations_snapshot();

    n = db_migrate(ingest, scratch, FIXTURES "/migrations_basic", errstr, sizeof errstr);
    cr_assert_eq(n, 0, "second run: %d (%s)", n, errstr);
    char *second = migrations_snapshot();
    cr_assert_str_eq(first, second, "schema_migrations rows unchanged");
    free(first);
    free(second);

    /* The multi-statement file ran whole, into the named schema. */
    char *label = itest_query_text(
        ingest, "SELECT widget_label(name) FROM widgets ORDER BY id LIMIT 1", 0, NULL);
    cr_assert_str_eq(label, "widget; first; with a semicolon");
    free(label);
    char *count = itest_query_text(ingest, "SELECT count(*) FROM widgets", 0, NULL);
    cr_assert_str_eq(count, "2");
    free(count);
    char *len = itest_query_text(
        ingest, "SELECT min(length(checksum))::text FROM schema_migrations", 0, NULL);
    cr_assert_str_eq(len, "64", "a sha256 in hex per file");
    free(len);
}

static void file_write(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void dir_remove(const char *dir, const char *const *names)
{
    char path[512];
    for (; *names; names++) {
        snprintf(path, sizeof path, "%s/%s", dir, *names);
        unlink(path);
    }
    rmdir(dir);
}

Test(db, migration_changed_after_apply_is_refused)
{
    char dir[] = "/tmp/kz-migrations-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    const char *names[] = {"001_first.sql", "002_second.sql", NULL};
    file_write(dir, "001_first.sql", "CREATE TABLE first_table (id int);\n");

    char errstr[256];
    cr_assert_eq(db_migrate(ingest, scratch, dir, errstr, sizeof errstr), 1, "%s", errstr);

    /* Someone edits the applied file and adds a new one after it. */
    file_write(dir, "001_first.sql", "CREATE TABLE first_table (id int, extra text);\n");
    file_write(dir, "002_second.sql", "CREATE TABLE second_table (id int);\n");
    int n = db_migrate(ingest, scratch, dir, errstr, sizeof errstr);
    dir_remove(dir, names);

    cr_assert_eq(n, -1, "an edited migration is refused");
    cr_assert(strstr(errstr, "001_first.sql") && strstr(errstr, "changed"), "errstr: %s", errstr);
    char *second = itest_query_text(ingest, "SELECT to_regclass('second_table')::text", 0, NULL);
    cr_assert_null(second, "nothing after the edited file was applied");
}

/* A whole-line comment is documentation: correcting one in an applied file
 * is not a change (the code checksum ignores it), while any other byte is. */
Test(db, comment_edit_in_an_applied_migration_is_accepted)
{
    char dir[] = "/tmp/kz-migrations-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    const char *names[] = {"001_first.sql", NULL};
    file_write(dir, "001_first.sql", "-- see the old page\nCREATE TABLE first_table (id int);\n");
    char errstr[256];
    cr_assert_eq(db_migrate(ingest, scratch, dir, errstr, sizeof errstr), 1, "%s", errstr);

    file_write(dir, "001_first.sql",
               "-- see docs/architecture.md\n  -- and a second line\n"
               "CREATE TABLE first_table (id int);\n");
    int n = db_migrate(ingest, scratch, dir, errstr, sizeof errstr);
    cr_expect_eq(n, 0, "a comment-only edit applies nothing and is no error: %s", errstr);

    file_write(dir, "001_first.sql", "CREATE TABLE first_table (id int); -- trailing\n");
    n = db_migrate(ingest, scratch, dir, errstr, sizeof errstr);
    dir_remove(dir, names);
    cr_expect_eq(n, -1, "a trailing comment is part of the code line");
}

/* Releases before code checksums recorded the whole file's SHA-256: such a
 * record of an unchanged file still matches, and the files whose comments
 * were corrected later match their recorded whole-file checksums. */
Test(db, whole_file_checksums_of_older_releases_still_match)
{
    char dir[] = "/tmp/kz-migrations-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    const char *names[] = {"001_first.sql", NULL};
    file_write(dir, "001_first.sql", "-- a comment\nCREATE TABLE first_table (id int);\n");
    char errstr[256];
    cr_assert_eq(db_migrate(ingest, scratch, dir, errstr, sizeof errstr), 1, "%s", errstr);
    /* sha256 of the whole file above, as an older release recorded it. */
    itest_exec_ok(ingest,
                  "UPDATE schema_migrations SET checksum = encode(sha256(convert_to("
                  "E'-- a comment\\nCREATE TABLE first_table (id int);\\n', 'UTF8')), 'hex')",
                  0, NULL);
    int n = db_migrate(ingest, scratch, dir, errstr, sizeof errstr);
    dir_remove(dir, names);
    cr_expect_eq(n, 0, "a whole-file record of the same file: %s", errstr);

    /* The dispatcher's 0001_inbox.sql as older releases recorded it. */
    itest_exec_ok(ingest, "DELETE FROM schema_migrations", 0, NULL);
    itest_exec_ok(ingest, "DROP TABLE first_table", 0, NULL);
    char dir2[] = "/tmp/kz-migrations-XXXXXX";
    cr_assert_not_null(mkdtemp(dir2));
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp services/dispatcher/migrations/0001_inbox.sql %s/", dir2);
    cr_assert_eq(system(cmd), 0);
    itest_exec_ok(ingest,
                  "INSERT INTO schema_migrations (name, checksum) VALUES ('0001_inbox.sql', "
                  "'b0252bf3cc9ba080afb1da917ea3a78cfddd79ce5371f333d71dd45a9782d1bc')",
                  0, NULL);
    n = db_migrate(ingest, scratch, dir2, errstr, sizeof errstr);
    const char *names2[] = {"0001_inbox.sql", NULL};
    dir_remove(dir2, names2);
    cr_expect_eq(n, 0, "the legacy record of a comment-corrected file: %s", errstr);
}

Test(db, failed_migration_leaves_neither_objects_nor_record)
{
    char errstr[256];
    int n = db_migrate(ingest, scratch, FIXTURES "/migrations_broken", errstr, sizeof errstr);
    cr_assert_eq(n, -1);
    cr_assert(strstr(errstr, "002_fails_halfway.sql") && strstr(errstr, "42P01"), "errstr: %s",
              errstr);
    char *names =
        itest_query_text(ingest, "SELECT string_agg(name, ',') FROM schema_migrations", 0, NULL);
    cr_assert_str_eq(names, "001_ok.sql", "the good file stays applied");
    free(names);
    char *gizmos = itest_query_text(ingest, "SELECT to_regclass('gizmos')::text", 0, NULL);
    cr_assert_null(gizmos, "the failed file's first statement was rolled back");
    cr_assert(db_ping(ingest), "and the connection is left usable, outside a transaction");
    cr_assert_eq(db_begin(ingest), DB_OK);
    cr_assert_eq(db_rollback(ingest), DB_OK);
}

struct migrate_case {
    const char *schema;
    const char *dir;
};

static const struct migrate_case bad_migrates[] = {
    {"", FIXTURES "/migrations_basic"},
    {NULL, FIXTURES "/migrations_basic"},
    {"Ingest", FIXTURES "/migrations_basic"},
    {"1ingest", FIXTURES "/migrations_basic"},
    {"ingest;drop", FIXTURES "/migrations_basic"},
    {"ingest\"", FIXTURES "/migrations_basic"},
    {"in-gest", FIXTURES "/migrations_basic"},
    {"a234567890123456789012345678901234567890123456789012345678901234", FIXTURES "/x"},
    {"kz_no_such_schema_anywhere", FIXTURES "/migrations_basic"},
    {"ingest", FIXTURES "/no_such_dir"},
};

Test(db, migrate_refuses_bad_input)
{
    for (size_t i = 0; i < sizeof bad_migrates / sizeof bad_migrates[0]; i++) {
        char errstr[256] = "";
        int n =
            db_migrate(ingest, bad_migrates[i].schema, bad_migrates[i].dir, errstr, sizeof errstr);
        cr_expect_eq(n, -1, "case %zu applied %d", i, n);
        cr_expect_neq(errstr[0], '\0', "case %zu has a message", i);
        cr_assert(db_ping(ingest));
    }
    /* A migration that commits on its own would split from its record. */
    char dir[] = "/tmp/kz-migrations-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    const char *names[] = {"001_commit.sql", NULL};
    file_write(dir, "001_commit.sql", "CREATE TABLE committed_early (id int); COMMIT;\n");
    char errstr[256];
    int n = db_migrate(ingest, scratch, dir, errstr, sizeof errstr);
    dir_remove(dir, names);
    cr_assert_eq(n, -1);
    cr_assert(strstr(errstr, "transaction control"), "errstr: %s", errstr);
}

struct migrate_job {
    const char *schema;
    int applied;
    char errstr[256];
};

static void *migrate_thread(void *arg)
{
    struct migrate_job *job = arg;
    struct db *db = db_connect(getenv("INGEST_DATABASE_URL"), job->errstr, sizeof job->errstr);
    if (!db) {
        job->applied = -1;
        return NULL;
    }
    job->applied =
        db_migrate(db, job->schema, FIXTURES "/migrations_basic", job->errstr, sizeof job->errstr);
    db_free(&db);
    return NULL;
}

Test(db, replicas_migrating_together_apply_each_file_once)
{
    struct migrate_job jobs[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct migrate_job){.schema = scratch};
        cr_assert_eq(pthread_create(&threads[i], NULL, migrate_thread, &jobs[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        cr_expect_geq(jobs[i].applied, 0, "replica %d: %s", i, jobs[i].errstr);
        total += jobs[i].applied;
    }
    cr_assert_eq(total, 2, "two files, applied once between four replicas");
    char *count = itest_query_text(ingest, "SELECT count(*) FROM widgets", 0, NULL);
    cr_assert_str_eq(count, "2", "the data migration ran once");
    free(count);
}

/* --- isolation ------------------------------------------------------------------ */

struct denied_case {
    const char *sql;
};

static const struct denied_case denied_cases[] = {
    {"SELECT * FROM ingest.channels"},
    {"SELECT count(*) FROM ingest.channels"},
    {"DELETE FROM ingest.channels"},
    {"CREATE TABLE ingest.kz_intruder (id int)"},
    {"CREATE TABLE public.kz_intruder (id int)"},
};

Test(db, segmentation_role_cannot_read_ingest_tables)
{
    /* ingest.channels exists as the ingest service creates it: through its
     * own migrations (a no-op when the service already ran). */
    char errstr[256];
    int n = db_migrate(ingest, "ingest", "services/ingest/migrations", errstr, sizeof errstr);
    cr_assert_geq(n, 0, "ingest migrations: %s", errstr);
    char *exists = itest_query_text(ingest, "SELECT to_regclass('ingest.channels')::text", 0, NULL);
    cr_assert_not_null(exists, "ingest.channels exists");
    free(exists);
    char *readable = itest_query_text(ingest, "SELECT count(*) >= 0 FROM ingest.channels", 0, NULL);
    cr_assert_str_eq(readable, "t", "its owner reads it");
    free(readable);

    struct db *seg = itest_db_connect_env("SEGMENTATION_DATABASE_URL");
    for (size_t i = 0; i < sizeof denied_cases / sizeof denied_cases[0]; i++) {
        enum db_status st = db_exec(seg, denied_cases[i].sql, 0, NULL, NULL);
        cr_expect_eq(st, DB_FATAL, "%s: got %d", denied_cases[i].sql, st);
        cr_expect_str_eq(db_error_sqlstate(seg), "42501", "%s: %s", denied_cases[i].sql,
                         db_error_message(seg));
    }
    db_free(&seg);
}
