/* The migrations runner: applies the .sql files of a service's migrations folder to its
 * schema once each, in name order, each file in one transaction with its
 * record in schema_migrations. It is the only code that puts an identifier
 * (the schema) into SQL text and runs multi-statement SQL, so it stays apart
 * from the statement path in db.c. */
#include "db.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "db_private.h"
#include "log.h"

/* A migration file larger than this is a mistake (data belongs elsewhere). */
#define DB_MIGRATION_MAX (1024 * 1024)
#define DB_MIGRATIONS_MAX 4096
#define DB_SCHEMA_NAME_MAX 63 /* NAMEDATALEN - 1 */

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

/* The SHA-256 of a migration's code: the file without its whole-line
 * comments (lines whose first non-blank characters are "--"), so that a
 * comment can be corrected in an applied migration without changing what it
 * is. Other bytes count, trailing comments and blank lines included. */
static int db_code_sha256_hex(const char *data, size_t len, char hex[65])
{
    char *code = malloc(len + 1);
    if (!code)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) + 1 : len;
        size_t j = i;
        while (j < end && (data[j] == ' ' || data[j] == '\t'))
            j++;
        if (!(end - j >= 2 && data[j] == '-' && data[j + 1] == '-')) {
            memcpy(code + n, data + i, end - i);
            n += end - i;
        }
        i = end;
    }
    int rc = db_sha256_hex(code, n, hex);
    free(code);
    return rc;
}

/* Checksums recorded, before code checksums, for files whose comments were
 * corrected afterwards (they cited a design page outside the repository;
 * decision 0012): the file's whole-file SHA-256 as it was applied, and the
 * code checksum it still has. A record of the first stands for the second. */
static const struct {
    const char *recorded;
    const char *code;
} db_legacy_sums[] = {
    /* segmentation and scheduler 0001_inbox_outbox.sql */
    {"04a13b43763f681659669d8742413a7baca82e37142e28698b9c95f9a24087c4",
     "01397a615975da328f369bfa8c7fb674ad92221e7dcd3094ccc7ebf75603e020"},
    /* dispatcher 0001_inbox.sql */
    {"b0252bf3cc9ba080afb1da917ea3a78cfddd79ce5371f333d71dd45a9782d1bc",
     "ac72b083ebbcbfc03c80eb810fd65576c0ecd2ac5a7fa20ce003d90d18c8731f"},
    /* dispatcher 0002_deliveries.sql */
    {"dbaa852a4b6dc92723cb3797c1e0b8d7964c34f85b4589e39a86bd1cd00ddc3f",
     "29a88c8ca9309e076e5de16922c99d970c8de039684e611515c4c132458fbd3a"},
    /* ingest 0002_channels_outbox.sql */
    {"bdd46cbe9ccbfdb3e3c2b959507e21f08f2409db59ed969450436cf93d36278d",
     "381d3294738a1fab07b91396db30f1497faf5ab9ed1b1ad737c582751b743d33"},
};

/* True when a recorded checksum stands for the file as it is now: its code
 * checksum (what is recorded today), its whole-file checksum (recorded by
 * a release before code checksums), or a legacy record of the same code. */
static bool db_migration_same(const char *recorded, const char *file_sum, const char *code_sum)
{
    if (strcmp(recorded, code_sum) == 0 || strcmp(recorded, file_sum) == 0)
        return true;
    for (size_t i = 0; i < sizeof db_legacy_sums / sizeof db_legacy_sums[0]; i++)
        if (strcmp(recorded, db_legacy_sums[i].recorded) == 0 &&
            strcmp(code_sum, db_legacy_sums[i].code) == 0)
            return true;
    return false;
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
    char code[65];
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
    if (db_sha256_hex(body, len, sum) != 0 || db_code_sha256_hex(body, len, code) != 0) {
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
        if (db_result_isnull(r, 0, 0) || !db_migration_same(recorded, sum, code)) {
            snprintf(errstr, errcap,
                     "%s: changed after it was applied (recorded sha256 %.12s, file's code %.12s); "
                     "add a new migration instead of editing an applied one",
                     name, db_result_isnull(r, 0, 0) ? "none" : recorded, code);
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

    const char *record[] = {name, code};
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
