/* The integration suites' shared helpers (see itest.h): settings of the
 * local stack, PostgreSQL scratch schemas, Kafka readers, libcurl calls, and
 * service binaries run as child processes. Written once here so every suite
 * asserts, times out and cleans up the same way. */
#include "itest.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "crypto.h"

#define HTTP_TIMEOUT_MS 10000L
#define HTTP_BODY_MAX (4 * 1024 * 1024)
#define POLL_MS 200
#define BOT_USER "U8e742f61d673b39c7fff3cecb7536ef0"

/* --- the stack and the clock ----------------------------------------------- */

const char *itest_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v,
              "%s is not set: run through `deploy/local/stack.sh with-stack` (or `make "
              "test-integration`), which exports the local stack's settings",
              name);
    return v;
}

const char *itest_build_dir(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

long itest_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int unique_counter;

void itest_unique_name(char *out, size_t cap, const char *prefix)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, cap, "%s-%ld-%ld%09ld-%d", prefix, (long)getpid(), (long)ts.tv_sec, ts.tv_nsec,
             ++unique_counter);
}

void itest_unique_digits(char *out, size_t cap, char lead)
{
    cr_assert(cap >= 19 && lead >= '1' && lead <= '9');
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, cap, "%c%09ld%05ld%03d", lead, (long)(ts.tv_sec % 1000000000L),
             (long)(getpid() % 100000), ++unique_counter % 1000);
}

void itest_random_hex(char *out, size_t nbytes)
{
    uint8_t b[64];
    cr_assert(nbytes <= sizeof b && crypto_random(b, nbytes) == 0);
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* --- PostgreSQL --------------------------------------------------------------- */

struct db *itest_db_connect(const char *url)
{
    char errstr[256];
    struct db *db = db_connect(url, errstr, sizeof errstr);
    cr_assert_not_null(db, "connect: %s", errstr);
    return db;
}

struct db *itest_db_connect_env(const char *name)
{
    char errstr[256];
    struct db *db = db_connect(itest_env(name), errstr, sizeof errstr);
    cr_assert_not_null(db, "connect with %s: %s", name, errstr);
    return db;
}

void itest_exec_ok(struct db *db, const char *sql, int n, const char *const *values)
{
    enum db_status st = db_exec(db, sql, n, values, NULL);
    cr_assert_eq(st, DB_OK, "%s: %s (%s)", sql, db_error_message(db), db_error_sqlstate(db));
}

char *itest_query_text(struct db *db, const char *sql, int n, const char *const *values)
{
    struct db_result *r = NULL;
    enum db_status st = db_exec(db, sql, n, values, &r);
    cr_assert_eq(st, DB_OK, "%s: %s (%s)", sql, db_error_message(db), db_error_sqlstate(db));
    cr_assert_eq(db_result_rows(r), 1, "%s: want one row", sql);
    char *v = db_result_isnull(r, 0, 0) ? NULL : strdup(db_result_value(r, 0, 0));
    db_result_free(&r);
    return v;
}

/* DDL for names is built by the server with format(%I): no quoting here. */
static void admin_format_exec(struct db *admin, const char *fmt_sql, int n,
                              const char *const *values)
{
    char *ddl = itest_query_text(admin, fmt_sql, n, values);
    cr_assert_not_null(ddl);
    itest_exec_ok(admin, ddl, 0, NULL);
    free(ddl);
}

void itest_schema_create(struct db *admin, struct db *owner, const char *schema)
{
    char *role = itest_query_text(owner, "SELECT current_user", 0, NULL);
    const char *drop[] = {schema};
    admin_format_exec(admin, "SELECT format('DROP SCHEMA IF EXISTS %I CASCADE', $1::text)", 1,
                      drop);
    const char *create[] = {schema, role};
    admin_format_exec(
        admin, "SELECT format('CREATE SCHEMA %I AUTHORIZATION %I', $1::text, $2::text)", 2, create);
    free(role);
}

void itest_schema_drop(struct db *admin, const char *schema)
{
    if (!admin || !schema || !schema[0])
        return;
    const char *drop[] = {schema};
    struct db_result *r = NULL;
    if (db_exec(admin, "SELECT format('DROP SCHEMA IF EXISTS %I CASCADE', $1::text)", 1, drop,
                &r) == DB_OK)
        db_exec(admin, db_result_value(r, 0, 0), 0, NULL, NULL);
    db_result_free(&r);
}

void itest_search_path_set(struct db *db, const char *schema)
{
    const char *path[] = {schema};
    itest_exec_ok(db, "SELECT set_config('search_path', $1, false)", 1, path);
}

/* --- Kafka ------------------------------------------------------------------------ */

struct kafka_producer *itest_producer_new(const char *client_id)
{
    char errstr[512];
    struct kafka_producer *p =
        kafka_producer_new(itest_env("KAFKA_BROKERS"), client_id, errstr, sizeof errstr);
    cr_assert_not_null(p, "kafka_producer_new: %s", errstr);
    return p;
}

struct kafka_consumer *itest_consumer_new(const char *topic, const char *group, bool commit)
{
    char errstr[512];
    const char *topics[] = {topic};
    struct kafka_consumer_options opts = {
        .brokers = itest_env("KAFKA_BROKERS"),
        .group = group,
        .topics = topics,
        .ntopics = 1,
        .from_beginning = true,
        .no_commit = !commit,
    };
    struct kafka_consumer *c = kafka_consumer_new(&opts, errstr, sizeof errstr);
    cr_assert_not_null(c, "kafka_consumer_new: %s", errstr);
    return c;
}

bool itest_consumer_poll_until(struct kafka_consumer *c, kafka_handler handle,
                               bool (*done)(void *ctx), void *ctx, long timeout_ms)
{
    for (long start = itest_now_ms(); itest_now_ms() - start < timeout_ms;) {
        if (done && done(ctx))
            return true;
        cr_assert_geq(kafka_consumer_poll(c, POLL_MS, handle, ctx), 0,
                      "kafka_consumer_poll failed");
    }
    return done && done(ctx);
}

bool itest_topic_read(const char *topic, kafka_handler handle, bool (*done)(void *ctx), void *ctx,
                      long timeout_ms)
{
    char group[160];
    itest_unique_name(group, sizeof group, "itest-read");
    struct kafka_consumer *c = itest_consumer_new(topic, group, false);
    bool finished = itest_consumer_poll_until(c, handle, done, ctx, timeout_ms);
    kafka_consumer_close(c);
    kafka_consumer_free(&c);
    return finished;
}

/* --- HTTP --------------------------------------------------------------------------- */

static size_t http_body(char *p, size_t size, size_t n, void *ctx)
{
    struct itest_http *res = ctx;
    size_t add = size * n;
    if (res->len + add > HTTP_BODY_MAX)
        return 0;
    char *grown = realloc(res->body, res->len + add + 1);
    if (!grown)
        return 0;
    res->body = grown;
    memcpy(res->body + res->len, p, add);
    res->len += add;
    res->body[res->len] = '\0';
    return add;
}

/* Copies the value of header `name` from one header line, if it is that one. */
static void header_copy(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    if (len <= nlen + 1 || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
        return;
    const char *v = line + nlen + 1;
    size_t vlen = len - nlen - 1;
    while (vlen && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
        vlen--;
    snprintf(out, cap, "%.*s", (int)vlen, v);
}

static size_t http_header(char *line, size_t size, size_t n, void *ctx)
{
    struct itest_http *res = ctx;
    header_copy(line, size * n, "Location", res->location, sizeof res->location);
    header_copy(line, size * n, "Allow", res->allow, sizeof res->allow);
    header_copy(line, size * n, "Retry-After", res->retry_after, sizeof res->retry_after);
    header_copy(line, size * n, "Referrer-Policy", res->referrer_policy,
                sizeof res->referrer_policy);
    return size * n;
}

long itest_http_do(const char *method, const char *url, const char *const *headers,
                   const void *body, size_t len, struct itest_http *res)
{
    memset(res, 0, sizeof *res);
    CURL *curl = curl_easy_init();
    cr_assert_not_null(curl);
    struct curl_slist *list = NULL;
    for (const char *const *h = headers; h && *h; h++)
        list = curl_slist_append(list, *h);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, HTTP_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "kizuna-test/1");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, res);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, http_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, res);
    bool post = strcmp(method, "POST") == 0;
    if (body || post) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
    }
    if (!post && strcmp(method, "GET") != 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->status);
    else
        snprintf(res->error, sizeof res->error, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    if (!res->body)
        res->body = calloc(1, 1);
    cr_assert_not_null(res->body);
    if (res->len)
        res->json = json_loadb(res->body, res->len, 0, NULL);
    return res->status;
}

void itest_http_free(struct itest_http *res)
{
    free(res->body);
    json_decref(res->json);
    res->body = NULL;
    res->json = NULL;
    res->len = 0;
}

long itest_http_get_status(const char *url, const char *bearer)
{
    char auth[4200];
    const char *headers[] = {auth, NULL};
    if (bearer)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer);
    struct itest_http res;
    long status = itest_http_do("GET", url, bearer ? headers : NULL, NULL, 0, &res);
    itest_http_free(&res);
    return status;
}

bool itest_http_wait_ready(int port, long timeout_ms)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", port);
    for (long start = itest_now_ms(); itest_now_ms() - start < timeout_ms;) {
        if (itest_http_get_status(url, NULL) == 200)
            return true;
        usleep(200 * 1000);
    }
    return false;
}

/* --- service binaries ----------------------------------------------------------------- */

/* Starts the binary at path with settings (as itest_service_spawn). */
static pid_t process_spawn(const char *path, const char *const *settings, const char *log_path)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        for (const char *const *s = settings; s && *s; s++) {
            char kv[1024];
            snprintf(kv, sizeof kv, "%s", *s);
            char *eq = strchr(kv, '=');
            if (!eq) {
                unsetenv(kv);
                continue;
            }
            *eq = '\0';
            setenv(kv, eq + 1, 1);
        }
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
        execl(path, path, (char *)NULL);
        _exit(127);
    }
    return pid;
}

pid_t itest_service_spawn(const char *name, const char *const *settings, const char *log_path)
{
    char path[512];
    snprintf(path, sizeof path, "%s/bin/kizuna-%s", itest_build_dir(), name);
    return process_spawn(path, settings, log_path);
}

int itest_process_wait(pid_t pid, long timeout_ms)
{
    int status;
    for (long start = itest_now_ms(); itest_now_ms() - start < timeout_ms;) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return status;
        usleep(50 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

void itest_service_stop(pid_t *pid, const char *log_path)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    int status = itest_process_wait(*pid, 10000);
    *pid = 0;
    cr_expect(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the service did not exit cleanly within 10 s of SIGTERM (status %d); see %s", status,
              log_path);
}

void itest_service_reap(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    itest_process_wait(*pid, 10000);
    *pid = 0;
}

void itest_log_expect_clean(const char *log_path, const char *const *forbidden)
{
    FILE *f = fopen(log_path, "r");
    cr_assert_not_null(f, "%s", log_path);
    char line[16384];
    while (fgets(line, sizeof line, f)) {
        cr_expect(strstr(line, "Sanitizer") == NULL && strstr(line, "runtime error") == NULL,
                  "%s: %s", log_path, line);
        for (const char *const *s = forbidden; s && *s; s++)
            cr_expect(strstr(line, *s) == NULL, "%s shows what it must not (item %zu): %s",
                      log_path, (size_t)(s - forbidden), line);
    }
    fclose(f);
}

/* --- the LINE simulator ------------------------------------------------------------------ */

/* The simulator itest_sim_start runs: one at a time per process. */
static pid_t sim_pid;
static char sim_log[512];

void itest_sim_start(const char *name)
{
    cr_assert_eq(sim_pid, 0, "a simulator is running already");
    char path[512], port[48];
    snprintf(path, sizeof path, "%s/bin/line-sim", itest_build_dir());
    snprintf(sim_log, sizeof sim_log, "%s/tests/line-sim-%s-%ld.log", itest_build_dir(), name,
             (long)getpid());
    snprintf(port, sizeof port, "LINESIM_PORT=%d", ITEST_SIM_PORT);
    const char *settings[] = {port, "LINESIM_BIND=127.0.0.1", "LINESIM_THREADS=2",
                              "LINESIM_CHANNELS=", NULL};
    sim_pid = process_spawn(path, settings, sim_log);
    cr_assert_gt(sim_pid, 0);
    char url[128];
    snprintf(url, sizeof url, "%s/healthz", ITEST_SIM_BASE);
    for (long start = itest_now_ms(); itest_now_ms() - start < 10000; usleep(20 * 1000))
        if (itest_http_get_status(url, NULL) == 200)
            return;
    itest_service_reap(&sim_pid);
    cr_assert_fail("line-sim did not start on port %d; see %s", ITEST_SIM_PORT, sim_log);
}

void itest_sim_stop(void)
{
    if (sim_pid <= 0)
        return;
    itest_service_stop(&sim_pid, sim_log);
    itest_log_expect_clean(sim_log, NULL);
}

void itest_sim_reap(void)
{
    itest_service_reap(&sim_pid);
}

long itest_sim_call(const char *method, const char *path, const char *body)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", ITEST_SIM_BASE, path);
    const char *headers[] = {"Content-Type: application/json", NULL};
    struct itest_http res;
    long status = itest_http_do(method, url, headers, body, body ? strlen(body) : 0, &res);
    itest_http_free(&res);
    return status;
}

void itest_sim_channel_add(const char *channel_id, const char *token, const char *bot_user_id)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "channel_id", channel_id, "access_token", token,
                          "bot_user_id", bot_user_id);
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    cr_assert_not_null(body);
    long status = itest_sim_call("POST", "/_sim/channels", body);
    free(body);
    cr_assert(status == 200 || status == 201,
              "line-sim on port %d refused channel %s: %ld (is it running?)", ITEST_SIM_PORT,
              channel_id, status);
}

/* --- kizuna-ingest --------------------------------------------------------------------- */

void itest_line_sign(const char *secret, const void *body, size_t len, char out[64])
{
    uint8_t mac[CRYPTO_SHA256_LEN];
    crypto_hmac_sha256(secret, strlen(secret), body, len, mac);
    cr_assert_gt(crypto_base64_encode(mac, sizeof mac, out, 64), 0);
}

void itest_ingest_channel_register(int admin_port, const char *tenant, const char *channel_id,
                                   const char *secret)
{
    const char *jwt = itest_env("KIZUNA_JWT_KEY");
    char *token = auth_token_issue(jwt, strlen(jwt), tenant, "itest", "admin", 3600, time(NULL));
    cr_assert_not_null(token);
    char url[128], body[1024], auth[4200], line_token[64];
    /* ingest asks LINE (the simulator) whose token it is before storing. */
    snprintf(line_token, sizeof line_token, "token-%s", channel_id);
    itest_sim_channel_add(channel_id, line_token, BOT_USER);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/channels", admin_port);
    snprintf(body, sizeof body,
             "{\"channel_id\":\"%s\",\"name\":\"itest %s\",\"channel_secret\":\"%s\","
             "\"access_token\":\"token-%s\",\"bot_user_id\":\"%s\"}",
             channel_id, channel_id, secret, channel_id, BOT_USER);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    free(token);
    const char *headers[] = {"Content-Type: application/json", auth, NULL};
    struct itest_http res;
    long status = itest_http_do("POST", url, headers, body, strlen(body), &res);
    cr_assert_eq(status, 201, "register channel %s: %ld %s", channel_id, status, res.body);
    itest_http_free(&res);
}
