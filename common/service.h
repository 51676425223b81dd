/* What every Kizuna service does the same way: read the shared part of its
 * config, connect to its schema and migrate it, open a producer, serve
 * /healthz, /readyz, /metrics, /v1/whoami and /v1/dead-letters on its
 * admin port, and drain on SIGTERM.
 * main() of each service wires its own parts around this. Main thread only. */
#ifndef KIZUNA_SERVICE_H
#define KIZUNA_SERVICE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "crypto.h"
#include "httpd.h"
#include "kafka_security.h"

struct auth_claims;
struct service;
struct db;
struct kafka_producer;

/* A service's /v1 handler. The request already carries a valid admin JWT;
 * claims->tenant scopes every query it makes. Runs on admin worker threads. */
typedef void (*service_api_handler)(void *ctx, const struct auth_claims *claims,
                                    const struct httpd_request *req, struct httpd_response *resp);

#define SERVICE_EXTRA_MAX 32

/* One extra readiness check: /readyz answers 503 while ok() is false, and
 * the log names the check when readiness changes. ok() runs on the main
 * thread about once a second, after the database and broker checks pass;
 * it must answer quickly (it may read svc->db). */
struct service_check {
    const char *name; /* "channels caught up": shown in the log */
    bool (*ok)(struct service *svc);
};

struct service_def {
    const char *name;                 /* "ingest": env prefix INGEST_, schema ingest */
    long admin_port;                  /* default admin port */
    const struct config_entry *extra; /* service-specific entries, or NULL */
    size_t nextra;                    /* at most SERVICE_EXTRA_MAX */
    service_api_handler api;          /* the service's /v1 API besides /v1/whoami, or NULL */
    void *api_ctx;
    /* Called once the schema is migrated and the producer exists, before the
     * admin server accepts requests, so that whatever `api` uses is in place
     * by then. Returns 0, or the exit code to stop with (1, or CONFIG_EXIT). */
    int (*setup)(struct service *svc);
    /* KIZUNA_DATA_KEY is required and parsed into service.data_key, checked
     * with the rest of the config so that a bad key is reported with every
     * other config error at once. */
    bool needs_data_key;
    /* Checks what the service's own entries cannot express (a word list, a
     * hex key), calling report once per error. It runs with the shared
     * checks, before anything connects, so that every config error is
     * reported at once. NULL: nothing more to check. */
    void (*validate)(void (*report)(void *rctx, const char *name, const char *reason), void *rctx);
    /* Readiness beyond the database and the brokers; NULL/0: none. */
    const struct service_check *checks;
    size_t nchecks;
    /* Periodic housekeeping (heartbeats, leases, pruning) run by service_run
     * on the main thread every tick_ms (1000 when 0), with svc->db. now_ms
     * is clock_mono_ms(). NULL: none. */
    void (*tick)(struct service *svc, int64_t now_ms);
    long tick_ms;
    /* The producer's connections to the broker (KAFKA_PRODUCER_CONNECTIONS'
     * default; 0 means 1). A service producing to many partitions at a high
     * rate wants more (common/kafka.h). */
    int producer_connections;
    /* The admin server's cap on one request body (httpd_options.body_cap;
     * 0: httpd's 1 MiB). Bodies of all requests together are held to
     * httpd's byte budget (64 MiB, or 4 bodies at this cap if more). */
    size_t admin_body_cap;
};

struct service {
    const struct service_def *def;
    /* Effective shared config (strings point into the environment). */
    const char *database_url;
    const char *brokers;
    const char *bind;
    const char *migrations_dir;
    const char *jwt_key;
    int log_level; /* enum log_level */
    long admin_port;
    long startup_timeout_s;
    long producer_connections;
    struct kafka_security kafka; /* TLS and SASL of every Kafka client */
    /* KIZUNA_DATA_KEY when def->needs_data_key, else zeros. Wiped by the
     * drain's last step; copy it into whatever keeps using it. */
    uint8_t data_key[CRYPTO_KEY_LEN];
    /* Owned by the service; valid between service_start and service_stop. */
    struct db *db; /* the main thread's connection */
    struct kafka_producer *producer;
    struct httpd *admin;
    /* GET /v1/dead-letters on the admin port (dead_letter.h), freed with
     * the database. */
    struct dead_letters *dead_letters;
    atomic_bool ready;
    char env_names[6][64]; /* INGEST_DATABASE_URL, ... */
};

/* Loads config (exits CONFIG_EXIT on any error, listing all of them: the
 * table's, KIZUNA_JWT_KEY's length, KIZUNA_DATA_KEY's, the Kafka TLS and
 * SASL settings' and def->validate's), applies the Kafka settings to every
 * client (kafka_security_set), makes the process non-dumpable with no core
 * files and JSON wiped when freed (common/secrets.h), installs signal
 * handlers, connects to PostgreSQL (retrying until
 * startup_timeout_s), applies migrations, creates the producer, runs
 * def->setup, and starts the admin server. Returns 0, or the process exit
 * code after logging why (1, or what setup returned). */
int service_start(struct service *svc, const struct service_def *def);

/* Until shutdown is requested: re-checks the database, the brokers and
 * def->checks about once a second and publishes the result to /readyz, and
 * runs def->tick every def->tick_ms. Main thread. */
void service_run(struct service *svc);

/* Drains in the documented order: stop accepting, flush the producer, close
 * the database, free. Safe after a partial start. */
void service_stop(struct service *svc);

#endif
