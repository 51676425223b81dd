/* Helpers shared by the integration suites (tests/integration/test_*.c), so
 * that each thing they all need (the stack's settings, a PostgreSQL scratch
 * schema, a Kafka reader, an HTTP call, a service binary started and
 * stopped) is written once. Every helper asserts with Criterion: a failure
 * ends the calling test with a message naming what broke, so callers need no
 * error paths. Call them from a test, or from a suite's .init/.fini, never
 * from another thread. Strings are borrowed unless a comment says otherwise.
 * This file has no Test(): it is linked into the integration binary with
 * the suites. */
#ifndef KIZUNA_TESTS_ITEST_H
#define KIZUNA_TESTS_ITEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "db.h"
#include "kafka.h"

/* --- the stack and the clock ----------------------------------------------- */

/* The value of environment variable name; asserts it is set and not empty
 * (deploy/local/stack.sh with-stack exports the local stack's settings). */
const char *itest_env(const char *name);
/* $BUILD, else "build": where bin/ and tests/ of the build under test are. */
const char *itest_build_dir(void);
/* Milliseconds of CLOCK_MONOTONIC: for timeouts and durations. */
long itest_now_ms(void);
/* "<prefix>-<pid>-<unix s><ns>-<counter>": a name no other run or call uses
 * (Kafka keys, consumer groups, topics). */
void itest_unique_name(char *out, size_t cap, const char *prefix);
/* 18 decimal digits, starting with lead ('1'..'9'), no other run or call
 * uses (LINE channel ids are numbers; ours are longer than LINE's 10, so
 * they never collide with a real one). cap >= 19. */
void itest_unique_digits(char *out, size_t cap, char lead);
/* nbytes (<= 64) random bytes as 2 * nbytes lowercase hex digits plus NUL. */
void itest_random_hex(char *out, size_t nbytes);

/* --- PostgreSQL --------------------------------------------------------------- */

/* A connection to url; the caller frees it with db_free. */
struct db *itest_db_connect(const char *url);
/* The same, to the URL in environment variable name. */
struct db *itest_db_connect_env(const char *name);
/* Runs sql, asserting DB_OK. */
void itest_exec_ok(struct db *db, const char *sql, int n, const char *const *values);
/* The one value of a one-row query (NULL for SQL NULL); the caller frees. */
char *itest_query_text(struct db *db, const char *sql, int n, const char *const *values);
/* Creates schema (first dropping one a crashed run left) owned by the role
 * that owner is connected as, through the admin connection; names are
 * quoted server-side with format(%I). */
void itest_schema_create(struct db *admin, struct db *owner, const char *schema);
/* Drops schema and everything in it. Asserts nothing: for a suite's .fini. */
void itest_schema_drop(struct db *admin, const char *schema);
/* Sets the session's search_path to schema, so unqualified names land there. */
void itest_search_path_set(struct db *db, const char *schema);

/* --- Kafka ------------------------------------------------------------------------ */

/* A producer to $KAFKA_BROKERS; the caller frees it with kafka_producer_free. */
struct kafka_producer *itest_producer_new(const char *client_id);
/* A consumer of topic for group on $KAFKA_BROKERS, from the beginning of
 * the topic. commit false: it commits nothing, a reader that leaves no
 * trace. The caller closes and frees it. */
struct kafka_consumer *itest_consumer_new(const char *topic, const char *group, bool commit);
/* Polls c (200 ms at a time), handing each record to handle(ctx, msg), until
 * done(ctx) is true or timeout_ms have passed; done NULL polls for the whole
 * timeout. Asserts no poll fails. Returns whether done said so. */
bool itest_consumer_poll_until(struct kafka_consumer *c, kafka_handler handle,
                               bool (*done)(void *ctx), void *ctx, long timeout_ms);
/* Reads topic from the beginning as a new group that commits nothing, as
 * itest_consumer_poll_until does, then closes the consumer. */
bool itest_topic_read(const char *topic, kafka_handler handle, bool (*done)(void *ctx), void *ctx,
                      long timeout_ms);

/* --- HTTP --------------------------------------------------------------------------- */

/* One answer. itest_http_do fills it; itest_http_free releases it. */
struct itest_http {
    long status;  /* 0: nothing answered (refused, timed out, body over 4 MiB) */
    char *body;   /* malloc'd, NUL-terminated, "" when empty */
    size_t len;   /* of body, which may hold NUL bytes */
    json_t *json; /* body parsed as JSON, or NULL */
    char location[2048];
    char allow[128];
    char referrer_policy[64];
    char retry_after[32];
    char error[256]; /* curl's reason when status is 0 */
};

/* One request with a 10 s timeout and User-Agent kizuna-test/1. method:
 * "GET", "POST" or any other. headers: "Name: value" strings ending with
 * NULL, or NULL ("Content-Type:" with no value sends none). body/len: sent
 * when body is not NULL (a POST without one sends an empty body). Returns
 * res->status. */
long itest_http_do(const char *method, const char *url, const char *const *headers,
                   const void *body, size_t len, struct itest_http *res);
void itest_http_free(struct itest_http *res);
/* GET url, with "Authorization: Bearer <bearer>" unless bearer is NULL; the
 * status, 0 if nothing answered. */
long itest_http_get_status(const char *url, const char *bearer);
/* Polls http://127.0.0.1:<port>/readyz until it answers 200 (true) or
 * timeout_ms have passed (false). */
bool itest_http_wait_ready(int port, long timeout_ms);

/* --- service binaries ----------------------------------------------------------------- */

/* Starts $BUILD/bin/kizuna-<name> with stdout and stderr to log_path (created
 * or truncated). settings: "K=V" sets K, a bare "K" unsets it, ending with
 * NULL (or NULL for none); the rest of the environment is inherited. */
pid_t itest_service_spawn(const char *name, const char *const *settings, const char *log_path);
/* Waits up to timeout_ms for pid to exit and returns its wait status; after
 * that kills it (SIGKILL), reaps it and returns -1. */
int itest_process_wait(pid_t pid, long timeout_ms);
/* SIGTERM to *pid, then expects exit status 0 within 10 s (naming log_path
 * if not); *pid becomes 0. Nothing happens when *pid <= 0. Call it from a
 * Test, never from a suite's .fini: Criterion runs .fini after the verdict,
 * so a check there fails nothing. */
void itest_service_stop(pid_t *pid, const char *log_path);
/* For a suite's .fini, after a test that ended before stopping its service:
 * SIGTERM to *pid, SIGKILL after 10 s, reaped; *pid becomes 0. Checks
 * nothing. Nothing happens when *pid <= 0. */
void itest_service_reap(pid_t *pid);
/* Expects no line of the log at log_path to hold a sanitizer report, nor
 * any of forbidden (strings ending with NULL, or NULL): secrets, message
 * bodies. From a Test, never from .fini (see itest_service_stop). */
void itest_log_expect_clean(const char *log_path, const char *const *forbidden);

/* --- the LINE simulator ------------------------------------------------------------------ */

/* The port and base URL of the simulator the ingest suites start: ingest
 * asks it who owns an access token before it registers a channel. */
#define ITEST_SIM_PORT 18092
#define ITEST_SIM_BASE "http://127.0.0.1:18092"
/* The setting that points a spawned kizuna-ingest at it. */
#define ITEST_SIM_INGEST_SETTING "INGEST_LINE_API_BASE=" ITEST_SIM_BASE

/* Starts $BUILD/bin/line-sim on ITEST_SIM_PORT with no channels (its log
 * $BUILD/tests/line-sim-<name>-<pid>.log) and waits until it answers
 * (asserts). One simulator at a time. */
void itest_sim_start(const char *name);
/* Stops it: SIGTERM, a clean exit and a log without a sanitizer report
 * (checks, so from a Test). Nothing happens when none runs. */
void itest_sim_stop(void);
/* For a suite's .fini: stops it if it still runs; checks nothing. */
void itest_sim_reap(void);
/* One call to the simulator's control API (body JSON or NULL); returns the
 * status, 0 if nothing answered. */
long itest_sim_call(const char *method, const char *path, const char *body);
/* Registers channel_id on the simulator with access token and bot user id
 * (another token of a registered channel is added); asserts 200 or 201. */
void itest_sim_channel_add(const char *channel_id, const char *token, const char *bot_user_id);

/* --- kizuna-ingest --------------------------------------------------------------------- */

/* The base64 x-line-signature of body under a channel secret. */
void itest_line_sign(const char *secret, const void *body, size_t len, char out[64]);
/* Registers channel channel_id with secret (access token "token-<id>",
 * bot user U8e742f61d673b39c7fff3cecb7536ef0) on the simulator
 * (itest_sim_start, which must be running), then through the admin API of
 * the kizuna-ingest on admin_port (started with ITEST_SIM_INGEST_SETTING),
 * as an admin of tenant with a token signed with $KIZUNA_JWT_KEY. Asserts
 * 201. */
void itest_ingest_channel_register(int admin_port, const char *tenant, const char *channel_id,
                                   const char *secret);

#endif
