/* The shared skeleton of the four services. Keeping it in one place means a
 * fix to start-up, readiness or drain order reaches every service at once. */
#include "service.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_api.h"
#include "auth.h"
#include "clock.h"
#include "db.h"
#include "dead_letter.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "secrets.h"
#include "shutdown.h"

/* How often readiness is re-checked. */
#define SERVICE_READY_EVERY_MS 1000

enum { ENV_DATABASE_URL, ENV_ADMIN_PORT, ENV_BIND, ENV_MIGRATIONS_DIR, ENV_NAMES };

static void env_name(char *out, size_t cap, const char *svc, const char *suffix)
{
    size_t o = 0;
    for (const char *p = svc; *p && o + 1 < cap; p++)
        out[o++] = (char)toupper((unsigned char)*p);
    snprintf(out + o, cap - o, "_%s", suffix);
}

/* Logs one config error the way config_load_or_exit does, with the entry's
 * help when the name is one of the table's. */
static void config_error_log(const struct config_entry *table, size_t n, const char *name,
                             const char *reason)
{
    const char *help = "";
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].name, name) == 0)
            help = table[i].help;
    log_error("invalid configuration", "name", name, "error", reason, "help", help);
}

/* Logs each "NAME: reason" line of config_load's error buffer. */
static void config_errors_log(const struct config_entry *table, size_t n, char *errbuf)
{
    for (char *line = errbuf; *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        char *sep = strstr(line, ": ");
        if (sep) {
            *sep = '\0';
            config_error_log(table, n, line, sep + 2);
        } else if (*line) {
            config_error_log(table, n, "", line);
        }
        if (!end)
            break;
        line = end + 1;
    }
}

/* What def->validate reports into: logged like every other config error. */
struct validate_ctx {
    const struct config_entry *table;
    size_t n;
    int errors;
};

static void validate_report(void *rctx, const char *name, const char *reason)
{
    struct validate_ctx *v = rctx;
    config_error_log(v->table, v->n, name, reason);
    v->errors++;
}

/* Reads the table, then checks what the table cannot (the JWT key's
 * length, the Kafka TLS and SASL combination, the service's own validate),
 * and reports every error before exiting, so that an operator fixes them
 * all in one restart. */
static void load_config(struct service *svc, const struct service_def *def)
{
    static const char *const suffixes[ENV_NAMES] = {"DATABASE_URL", "ADMIN_PORT", "BIND",
                                                    "MIGRATIONS_DIR"};
    static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
    static char default_port[16];
    static char default_migrations[128];
    static char default_connections[16];
    static struct config_key data_key;
    for (int i = 0; i < ENV_NAMES; i++)
        env_name(svc->env_names[i], sizeof svc->env_names[i], def->name, suffixes[i]);
    snprintf(default_port, sizeof default_port, "%ld", def->admin_port);
    snprintf(default_migrations, sizeof default_migrations, "services/%s/migrations", def->name);
    snprintf(default_connections, sizeof default_connections, "%d",
             def->producer_connections > 0 ? def->producer_connections : 1);

    static long db_opts[6];
    struct config_entry table[16 + KAFKA_SECURITY_ENTRIES + SERVICE_EXTRA_MAX] = {
        {svc->env_names[ENV_DATABASE_URL], CONFIG_SECRET, NULL, &svc->database_url, 0, 0,
         "libpq URI of this service's role and schema"},
        {"KAFKA_BROKERS", CONFIG_STRING, "127.0.0.1:19092", &svc->brokers, 0, 0,
         "bootstrap brokers"},
        {svc->env_names[ENV_ADMIN_PORT], CONFIG_PORT, default_port, &svc->admin_port, 0, 0,
         "admin HTTP port (/v1, /healthz, /readyz, /metrics)"},
        {svc->env_names[ENV_BIND], CONFIG_STRING, "127.0.0.1", &svc->bind, 0, 0,
         "address the HTTP servers bind to"},
        {svc->env_names[ENV_MIGRATIONS_DIR], CONFIG_STRING, default_migrations,
         &svc->migrations_dir, 0, 0, "folder of this service's *.sql migrations"},
        {"KIZUNA_JWT_KEY", CONFIG_SECRET, NULL, &svc->jwt_key, 0, 0,
         "HS256 key that signs admin tokens, at least 32 bytes (openssl rand -hex 32)"},
        {"LOG_LEVEL", CONFIG_ENUM, "info", &svc->log_level, 0, 0, "debug, info, warn, error",
         log_levels},
        {"KIZUNA_STARTUP_TIMEOUT_S", CONFIG_INT, "30", &svc->startup_timeout_s, 1, 600,
         "how long to wait for PostgreSQL at start-up"},
        {"KAFKA_PRODUCER_CONNECTIONS", CONFIG_INT, default_connections, &svc->producer_connections,
         1, KAFKA_PRODUCER_CONNECTIONS_MAX,
         "the producer's connections to the broker (librdkafka instances)"},
        /* Every PostgreSQL connection of the process (common/db.h). */
        {"DB_STATEMENT_TIMEOUT_MS", CONFIG_INT, "30000", &db_opts[0], 0, 3600000,
         "a statement running longer is cancelled (retriable); the client waits 2 s more, "
         "then drops the connection (0: no limit)"},
        {"DB_IDLE_IN_TX_TIMEOUT_MS", CONFIG_INT, "60000", &db_opts[1], 0, 86400000,
         "a session idle inside a transaction this long is ended (0: never)"},
        {"DB_KEEPALIVES_IDLE_S", CONFIG_INT, "30", &db_opts[2], 0, 7200,
         "TCP keepalive: idle seconds before the first probe (0: keepalives off)"},
        {"DB_KEEPALIVES_INTERVAL_S", CONFIG_INT, "10", &db_opts[3], 1, 600,
         "TCP keepalive: seconds between probes"},
        {"DB_KEEPALIVES_COUNT", CONFIG_INT, "3", &db_opts[4], 1, 100,
         "TCP keepalive: unanswered probes before the connection counts as dead"},
        {"DB_TCP_USER_TIMEOUT_MS", CONFIG_INT, "30000", &db_opts[5], 0, 3600000,
         "data sent to PostgreSQL unacknowledged this long ends the connection (0: the "
         "kernel's default)"},
    };
    size_t n = 15;
    n += kafka_security_entries(&svc->kafka, table + n);
    if (def->nextra > SERVICE_EXTRA_MAX) {
        /* A programmer's error, but one that would silently drop settings. */
        log_error("service defines more config entries than SERVICE_EXTRA_MAX");
        exit(CONFIG_EXIT);
    }
    if (def->needs_data_key)
        table[n++] = (struct config_entry){
            "KIZUNA_DATA_KEY",
            CONFIG_KEY,
            NULL,
            &data_key,
            0,
            0,
            "64 hex chars: AES-256-GCM key of the secrets this service keeps sealed"};
    for (size_t i = 0; i < def->nextra; i++)
        table[n++] = def->extra[i];

    char errbuf[4096];
    int errors = config_load(table, n, errbuf, sizeof errbuf);
    config_errors_log(table, n, errbuf);
    if (data_key.set) {
        memcpy(svc->data_key, data_key.bytes, sizeof svc->data_key);
        crypto_wipe(&data_key, sizeof data_key);
    }
    struct validate_ctx v = {table, n, 0};
    /* The key signs every admin token: a short one can be found offline
     * from any token (common/auth.h). Its length is said, never the key. */
    if (svc->jwt_key && strlen(svc->jwt_key) < AUTH_KEY_MIN) {
        char reason[96];
        snprintf(reason, sizeof reason, "must be at least %d bytes (got %zu)", AUTH_KEY_MIN,
                 strlen(svc->jwt_key));
        validate_report(&v, "KIZUNA_JWT_KEY", reason);
    }
    kafka_security_check(&svc->kafka, validate_report, &v);
    if (def->validate)
        def->validate(validate_report, &v);
    errors += v.errors;
    if (errors > 0) {
        char count[24];
        snprintf(count, sizeof count, "%d", errors);
        log_error("configuration has errors, exiting", "errors", count);
        exit(CONFIG_EXIT);
    }
    log_init(def->name, (enum log_level)svc->log_level);
    config_log(table, n);
    kafka_security_set(&svc->kafka);
    struct db_options dbo = {
        .statement_timeout_ms = db_opts[0],
        .idle_in_tx_timeout_ms = db_opts[1],
        .keepalives_idle_s = db_opts[2],
        .keepalives_interval_s = db_opts[3],
        .keepalives_count = db_opts[4],
        .tcp_user_timeout_ms = db_opts[5],
    };
    db_options_set(&dbo);
}

/* PostgreSQL may still be starting (compose, Kubernetes): wait for it here,
 * the only place where waiting instead of failing is right. */
static struct db *connect_with_retry(struct service *svc)
{
    char errstr[256] = "";
    for (long waited = 0; waited <= svc->startup_timeout_s * 1000 && !shutdown_requested();
         waited += 500) {
        struct db *db = db_connect(svc->database_url, errstr, sizeof errstr);
        if (db)
            return db;
        shutdown_sleep_ms(500);
    }
    log_error("cannot connect to PostgreSQL", "env", svc->env_names[ENV_DATABASE_URL], "error",
              errstr);
    return NULL;
}

static bool service_ready(void *ctx)
{
    struct service *svc = ctx;
    return atomic_load(&svc->ready);
}

/* Every /v1 route needs a valid admin token; /v1/whoami shows what the
 * token grants, so an operator can check a token from kizunactl. */
static void admin_route(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    struct service *svc = ctx;
    const char *path = httpd_request_path(req);
    if (strncmp(path, "/v1/", 4) != 0) {
        httpd_respond_error(resp, 404, "not_found", "no such route", NULL);
        return;
    }
    struct auth_claims claims;
    enum auth_result r =
        auth_header_verify(svc->jwt_key, strlen(svc->jwt_key),
                           httpd_request_header(req, "Authorization"), time(NULL), &claims);
    if (r != AUTH_OK) {
        httpd_response_header(resp, "WWW-Authenticate", "Bearer");
        httpd_respond_error(resp, 401, "unauthorized", auth_result_str(r), "Authorization");
        return;
    }
    if (strcmp(path, "/v1/whoami") == 0) {
        static const struct admin_method whoami[] = {{"GET", "viewer"}};
        if (admin_api_route(&claims, req, resp, whoami, 1) < 0)
            return;
        char tenant[2 * AUTH_FIELD_MAX], subject[2 * AUTH_FIELD_MAX], role[2 * AUTH_FIELD_MAX];
        char body[8 * AUTH_FIELD_MAX];
        log_json_escape(tenant, sizeof tenant, claims.tenant);
        log_json_escape(subject, sizeof subject, claims.subject);
        log_json_escape(role, sizeof role, claims.role);
        snprintf(body, sizeof body,
                 "{\"service\":\"%s\",\"tenant\":\"%s\",\"subject\":\"%s\",\"role\":\"%s\","
                 "\"exp\":%lld}",
                 svc->def->name, tenant, subject, role, claims.exp);
        httpd_respond_json(resp, 200, body);
        return;
    }
    /* Every service relays an outbox, so every service lists the rows its
     * relays could never publish (dead_letter.h). */
    if (strcmp(path, DEAD_LETTERS_PATH) == 0) {
        dead_letters_respond(svc->dead_letters, &claims, req, resp);
        return;
    }
    if (!svc->def->api) {
        httpd_respond_error(resp, 404, "not_found", "no such route", NULL);
        return;
    }
    svc->def->api(svc->def->api_ctx, &claims, req, resp);
}

static void step_stop_admin(void *ctx)
{
    struct service *svc = ctx;
    atomic_store(&svc->ready, false);
    httpd_stop(&svc->admin);
}

static void step_flush_producer(void *ctx)
{
    struct service *svc = ctx;
    if (svc->producer && kafka_producer_flush(svc->producer, 5000) != 0)
        log_warn("producer flush timed out; undelivered messages remain in outbox/spool");
}

static void step_close_db(void *ctx)
{
    struct service *svc = ctx;
    dead_letters_free(&svc->dead_letters);
    db_free(&svc->db);
}

static void step_free(void *ctx)
{
    struct service *svc = ctx;
    crypto_wipe(svc->data_key, sizeof svc->data_key);
    kafka_producer_free(&svc->producer);
    metrics_free_all();
}

int service_start(struct service *svc, const struct service_def *def)
{
    char errstr[512] = "";
    memset(svc, 0, sizeof *svc);
    svc->def = def;
    log_init(def->name, LOG_INFO);
    load_config(svc, def);
    /* Every service holds the JWT key, and most hold more: no core files,
     * and JSON bodies (channel secrets, access tokens) wiped when freed. */
    if (secrets_process_protect(errstr, sizeof errstr) != 0) {
        log_error("cannot protect the process's secrets", "error", errstr);
        return 1;
    }
    secrets_json_wipe_on_free();
    if (shutdown_install() != 0) {
        log_error("cannot install signal handlers");
        return 1;
    }
    /* Registered first so that they run in drain order whatever fails next. */
    shutdown_register(SHUTDOWN_STOP_ACCEPTING, "stop admin server", step_stop_admin, svc);
    shutdown_register(SHUTDOWN_FLUSH_PRODUCER, "flush producer", step_flush_producer, svc);
    shutdown_register(SHUTDOWN_CLOSE_DB, "close database", step_close_db, svc);
    shutdown_register(SHUTDOWN_FREE, "free", step_free, svc);

    svc->db = connect_with_retry(svc);
    if (!svc->db)
        return 1;
    int applied = db_migrate(svc->db, def->name, svc->migrations_dir, errstr, sizeof errstr);
    if (applied < 0) {
        log_error("migrations failed", "dir", svc->migrations_dir, "error", errstr);
        return 1;
    }
    char count[16];
    snprintf(count, sizeof count, "%d", applied);
    log_info("schema up to date", "schema", def->name, "applied", count);

    svc->producer = kafka_producer_new_pool(svc->brokers, def->name, (int)svc->producer_connections,
                                            errstr, sizeof errstr);
    if (!svc->producer) {
        log_error("cannot create Kafka producer", "error", errstr);
        return 1;
    }

    svc->dead_letters = dead_letters_new(svc->database_url, errstr, sizeof errstr);
    if (!svc->dead_letters) {
        log_error("cannot set up the dead letters listing", "error", errstr);
        return 1;
    }

    if (def->setup) {
        int rc = def->setup(svc);
        if (rc != 0)
            return rc;
    }

    struct httpd_options opts = {
        .name = "admin",
        .bind = svc->bind,
        .port = (int)svc->admin_port,
        .body_cap = def->admin_body_cap,
        .handler = admin_route,
        .ctx = svc,
        .ready = service_ready,
        .ready_ctx = svc,
        .wipe_bodies = true, /* /v1 bodies carry channel secrets and access tokens */
        .metrics = true,     /* the admin port only: metrics name tenants' channels */
    };
    svc->admin = httpd_start(&opts, errstr, sizeof errstr);
    if (!svc->admin) {
        log_error("cannot start admin server", "error", errstr);
        return 1;
    }
    snprintf(count, sizeof count, "%d", httpd_port(svc->admin));
    log_info("admin server listening", "bind", svc->bind, "port", count);
    return 0;
}

/* The name of the first check that fails, or NULL when the service is
 * ready: the database, the brokers, then the service's own. */
static const char *service_failing_check(struct service *svc)
{
    if (!db_ping(svc->db))
        return "database";
    if (!kafka_producer_ready(svc->producer, 500))
        return "brokers";
    for (size_t i = 0; i < svc->def->nchecks; i++)
        if (!svc->def->checks[i].ok(svc))
            return svc->def->checks[i].name;
    return NULL;
}

void service_run(struct service *svc)
{
    const struct service_def *def = svc->def;
    long tick_ms = def->tick_ms > 0 ? def->tick_ms : 1000;
    int64_t next_ready = 0, next_tick = 0;
    bool was_ready = false;
    const char *was_failing = "";
    while (!shutdown_requested()) {
        int64_t now = clock_mono_ms();
        if (now >= next_ready) {
            const char *failing = service_failing_check(svc);
            bool ready = failing == NULL;
            atomic_store(&svc->ready, ready);
            /* Logged on a change of state, or of the check that fails. */
            if (ready != was_ready || (failing && strcmp(failing, was_failing) != 0)) {
                if (ready)
                    log_info("ready");
                else
                    log_info("not ready", "check", failing);
            }
            was_ready = ready;
            was_failing = failing ? failing : "";
            next_ready = now + SERVICE_READY_EVERY_MS;
        }
        if (def->tick && now >= next_tick) {
            def->tick(svc, now);
            next_tick = now + tick_ms;
        }
        int64_t next = def->tick && next_tick < next_ready ? next_tick : next_ready;
        int64_t wait = next - clock_mono_ms();
        if (wait > 0)
            shutdown_sleep_ms((long)wait);
    }
    log_info("shutdown requested; draining");
}

void service_stop(struct service *svc)
{
    (void)svc; /* every step was registered with its context at start */
    shutdown_drain();
    log_info("stopped");
}
