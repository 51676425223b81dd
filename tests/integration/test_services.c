/* Each service, started as its real binary against the real local stack,
 * becomes ready, accepts a token from kizunactl, and drains and exits within
 * 10 s of SIGTERM. Bad configuration exits 2 naming every problem. Ports are
 * offset (1808x) so a `make up` stack on the default ports does not collide. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

/* One byte short of AUTH_KEY_MIN. */
#define SHORT_JWT_KEY "too-short-jwt-key-of-31-bytes-x"

struct svc_case {
    const char *name;
    const char *port_var;
    int port;
};

static const struct svc_case services[] = {
    {"ingest", "INGEST_ADMIN_PORT", 18081},
    {"segmentation", "SEGMENTATION_ADMIN_PORT", 18082},
    {"scheduler", "SCHEDULER_ADMIN_PORT", 18083},
    {"dispatcher", "DISPATCHER_ADMIN_PORT", 18084},
};

static void require_stack(void)
{
    itest_env("KAFKA_BROKERS");
    itest_env("KIZUNA_JWT_KEY");
}

/* Starts kizuna-<name> with extra settings (see itest_service_spawn); the
 * ingest public port is moved off the default too. */
static pid_t service_spawn(const char *name, const char *setting, const char *log_path)
{
    const char *settings[] = {"INGEST_PUBLIC_PORT=18080", setting, NULL};
    return itest_service_spawn(name, settings, log_path);
}

/* kizunactl's token, exactly what it printed on stdout minus the newline. */
static void token_from_kizunactl(const char *tenant, char *out, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/bin/kizunactl token issue --tenant %s --role admin --ttl 1h",
             itest_build_dir(), tenant);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "kizunactl token issue failed");
    cr_assert(n > 1 && out[n - 1] == '\n', "token must end with one newline");
    out[n - 1] = '\0';
    cr_assert_null(strchr(out, '\n'), "kizunactl must print only the token");
}

TestSuite(services, .timeout = 120);

/* Runs a shell command; returns its exit status (-1 if it did not exit). */
static int shell_status(const char *cmd)
{
    int status = system(cmd);
    return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* kizunactl will not sign with a key the services would refuse, nor a
 * token they would refuse for its lifetime: both are usage errors (2). */
Test(services, kizunactl_refuses_a_short_key_and_a_ttl_over_24h)
{
    char cmd[768];
    snprintf(cmd, sizeof cmd,
             "KIZUNA_JWT_KEY=%s %s/bin/kizunactl token issue --tenant t --role admin --ttl 1h "
             ">/dev/null 2>&1",
             SHORT_JWT_KEY, itest_build_dir());
    cr_expect_eq(shell_status(cmd), 2, "a 31-byte key");
    snprintf(cmd, sizeof cmd,
             "KIZUNA_JWT_KEY=long-enough-key-0123456789abcdef-0123 %s/bin/kizunactl token issue "
             "--tenant t --role admin --ttl %s >/dev/null 2>&1",
             itest_build_dir(), "25h");
    cr_expect_eq(shell_status(cmd), 2, "--ttl 25h");
    snprintf(cmd, sizeof cmd,
             "KIZUNA_JWT_KEY=long-enough-key-0123456789abcdef-0123 %s/bin/kizunactl token issue "
             "--tenant t --role admin --ttl 24h >/dev/null 2>&1",
             itest_build_dir());
    cr_expect_eq(shell_status(cmd), 0, "--ttl 24h is the limit, and allowed");
    snprintf(cmd, sizeof cmd,
             "KAFKA_SECURITY_PROTOCOL=sasl_ssl %s/bin/kizunactl topics check >/dev/null 2>&1",
             itest_build_dir());
    cr_expect_eq(shell_status(cmd), 2, "topics check with sasl_ssl and no username");
}

Test(services, each_becomes_ready_accepts_a_kizunactl_token_and_stops_on_sigterm)
{
    require_stack();
    char token[4096];
    token_from_kizunactl("acme", token, sizeof token);
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        const struct svc_case *c = &services[i];
        char port[32], log_path[256];
        snprintf(port, sizeof port, "%s=%d", c->port_var, c->port);
        snprintf(log_path, sizeof log_path, "%s/tests/%s.log", itest_build_dir(), c->name);
        pid_t pid = service_spawn(c->name, port, log_path);

        cr_assert(itest_http_wait_ready(c->port, 45000), "%s did not become ready; see %s", c->name,
                  log_path);

        char url[128], auth[4200];
        struct itest_http r;
        snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", c->port);
        cr_expect_eq(itest_http_get_status(url, NULL), 200, "%s /healthz", c->name);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", c->port);
        cr_expect_eq(itest_http_do("GET", url, NULL, NULL, 0, &r), 200, "%s /metrics", c->name);
        cr_expect(strstr(r.body, "# TYPE") != NULL, "%s /metrics is Prometheus text", c->name);
        itest_http_free(&r);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/whoami", c->port);
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        const char *headers[] = {auth, NULL};
        cr_expect_eq(itest_http_do("GET", url, headers, NULL, 0, &r), 200,
                     "%s accepts the kizunactl token", c->name);
        cr_expect(strstr(r.body, "\"tenant\":\"acme\"") != NULL, "%s whoami: %s", c->name, r.body);
        itest_http_free(&r);
        cr_expect_eq(itest_http_get_status(url, NULL), 401, "%s refuses a missing token", c->name);
        cr_expect_eq(itest_http_get_status(url, "not.a.jwt"), 401, "%s refuses a bad token",
                     c->name);
        /* Every service lists its relays' dead letters (common/dead_letter.h). */
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/dead-letters?limit=1", c->port);
        cr_expect_eq(itest_http_do("GET", url, headers, NULL, 0, &r), 200, "%s dead letters: %s",
                     c->name, r.body);
        cr_expect(r.json && json_is_array(json_object_get(r.json, "dead_letters")),
                  "%s dead letters: %s", c->name, r.body);
        itest_http_free(&r);

        long t0 = itest_now_ms();
        kill(pid, SIGTERM);
        int status = itest_process_wait(pid, 10000);
        cr_assert_neq(status, -1, "%s did not exit within 10 s of SIGTERM", c->name);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s exit status %d", c->name,
                  status);
        cr_expect(itest_now_ms() - t0 < 10000);
        /* Under `make SANITIZE=...` the services are sanitized binaries too. */
        itest_log_expect_clean(log_path, NULL);
    }
}

struct bad_config {
    const char *name;
    const char *setting;
    const char *expect_in_log;
    const char *not_in_log; /* a secret the log must not show, or NULL */
};

static const struct bad_config bad_configs[] = {
    {"missing database url", "SEGMENTATION_DATABASE_URL", "SEGMENTATION_DATABASE_URL"},
    {"non-number port", "SEGMENTATION_ADMIN_PORT=eighty", "SEGMENTATION_ADMIN_PORT"},
    {"port out of range", "SEGMENTATION_ADMIN_PORT=70000", "SEGMENTATION_ADMIN_PORT"},
    {"missing jwt key", "KIZUNA_JWT_KEY", "KIZUNA_JWT_KEY"},
    {"jwt key under 32 bytes", "KIZUNA_JWT_KEY=" SHORT_JWT_KEY, "at least 32 bytes (got 31)",
     SHORT_JWT_KEY},
    {"unknown kafka security protocol", "KAFKA_SECURITY_PROTOCOL=tls", "KAFKA_SECURITY_PROTOCOL"},
    {"sasl without a username or password", "KAFKA_SECURITY_PROTOCOL=sasl_ssl",
     "KAFKA_SASL_USERNAME"},
    {"a kafka CA file under plaintext", "KAFKA_SSL_CA_LOCATION=/etc/hostname",
     "KAFKA_SSL_CA_LOCATION"},
    {"bad log level", "LOG_LEVEL=loud", "LOG_LEVEL"},
    {"producer connections out of range", "KAFKA_PRODUCER_CONNECTIONS=9",
     "KAFKA_PRODUCER_CONNECTIONS"},
    {"producer connections not a number", "KAFKA_PRODUCER_CONNECTIONS=four",
     "KAFKA_PRODUCER_CONNECTIONS"},
    {"negative statement timeout", "DB_STATEMENT_TIMEOUT_MS=-1", "DB_STATEMENT_TIMEOUT_MS"},
    {"keepalive count out of range", "DB_KEEPALIVES_COUNT=0", "DB_KEEPALIVES_COUNT"},
    {"tcp user timeout not a number", "DB_TCP_USER_TIMEOUT_MS=soon", "DB_TCP_USER_TIMEOUT_MS"},
};

Test(services, bad_config_exits_2_naming_the_variable)
{
    require_stack();
    for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
        const struct bad_config *c = &bad_configs[i];
        char log_path[256];
        snprintf(log_path, sizeof log_path, "%s/tests/badconfig-%zu.log", itest_build_dir(), i);
        pid_t pid = service_spawn("segmentation", c->setting, log_path);
        int status = itest_process_wait(pid, 10000);
        cr_assert_neq(status, -1, "%s: did not exit", c->name);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 2, "%s: exit status %d", c->name,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        FILE *f = fopen(log_path, "r");
        cr_assert_not_null(f);
        char log[8192];
        size_t n = fread(log, 1, sizeof log - 1, f);
        log[n] = '\0';
        fclose(f);
        cr_expect(strstr(log, c->expect_in_log) != NULL, "%s: log does not name %s: %s", c->name,
                  c->expect_in_log, log);
        if (c->not_in_log)
            cr_expect(strstr(log, c->not_in_log) == NULL, "%s: the log shows the secret", c->name);
        cr_expect(strstr(log, "schema up to date") == NULL, "%s: got past config: %s", c->name,
                  log);
        const char *url = getenv("SEGMENTATION_DATABASE_URL");
        const char *at = url ? strchr(url, '@') : NULL;
        const char *colon = url ? strchr(url + 13, ':') : NULL;
        if (at && colon && colon < at) {
            char password[128];
            snprintf(password, sizeof password, "%.*s", (int)(at - colon - 1), colon + 1);
            cr_expect(strstr(log, password) == NULL, "%s: the log shows a password", c->name);
        }
    }
}

/* Errors the config table cannot see by itself (LOG_LEVEL's words, the data
 * key's hex, each service's validate hook) are still reported in the same run as every other error. */
struct bad_configs_together {
    const char *name;
    const char *service;
    const char *settings[4];
    const char *expect_in_log[4];
};

#define SECRET_LOOKING_KEY "not-hex-but-secret-0123456789"

static const struct bad_configs_together bad_together[] = {
    {"bad data key and bad port (dispatcher)",
     "dispatcher",
     {"KIZUNA_DATA_KEY=" SECRET_LOOKING_KEY, "DISPATCHER_ADMIN_PORT=eighty", NULL},
     {"KIZUNA_DATA_KEY", "must be 64 hex characters", "DISPATCHER_ADMIN_PORT", NULL}},
    {"bad data key and bad int (ingest)",
     "ingest",
     {"KIZUNA_DATA_KEY=abcd", "INGEST_ACK_BUDGET_MS=5000", NULL},
     {"KIZUNA_DATA_KEY", "got 4 characters", "INGEST_ACK_BUDGET_MS", NULL}},
    {"missing data key and missing jwt key",
     "dispatcher",
     {"KIZUNA_DATA_KEY", "KIZUNA_JWT_KEY", NULL},
     {"KIZUNA_DATA_KEY", "KIZUNA_JWT_KEY", "\"errors\":\"2\"", NULL}},
    {"bad log level and bad data key",
     "dispatcher",
     {"LOG_LEVEL=loud", "KIZUNA_DATA_KEY=" SECRET_LOOKING_KEY, NULL},
     {"LOG_LEVEL", "KIZUNA_DATA_KEY", "\"errors\":\"2\"", NULL}},
    /* The services' own checks (service_def.validate) join the same report. */
    {"bad intake start and bad instance id and bad port (dispatcher)",
     "dispatcher",
     {"DISPATCHER_INTAKE_FROM=middle",
      "DISPATCHER_INSTANCE_ID="
      "i-am-far-too-long-for-an-instance-id-i-am-far-too-long-for-an-instance-id-i-am-far-too-"
      "long-for-an-instance-id-0123456789-0123456789-0123456789",
      "DISPATCHER_ADMIN_PORT=eighty", NULL},
     {"DISPATCHER_INTAKE_FROM", "DISPATCHER_INSTANCE_ID", "\"errors\":\"3\"", NULL}},
    /* Access tokens must not cross a network in clear: http:// only to a
     * loopback address (the simulator), never to a real host. */
    {"http base URL to a remote host (dispatcher)",
     "dispatcher",
     {"DISPATCHER_LINE_API_BASE=http://api.line.me", NULL},
     {"DISPATCHER_LINE_API_BASE", "loopback", "\"errors\":\"1\"", NULL}},
    {"http base URL dressed as loopback, and a bad tenant cap (dispatcher)",
     "dispatcher",
     {"DISPATCHER_LINE_API_BASE=http://127.0.0.1@line.example", "DISPATCHER_TENANT_MAX_INFLIGHT=-1",
      NULL},
     {"DISPATCHER_LINE_API_BASE", "DISPATCHER_TENANT_MAX_INFLIGHT", "\"errors\":\"2\"", NULL}},
    {"bad link key and bad data key (ingest)",
     "ingest",
     {"KIZUNA_LINK_KEY=" SECRET_LOOKING_KEY, "KIZUNA_DATA_KEY=abcd", NULL},
     {"KIZUNA_LINK_KEY", "KIZUNA_DATA_KEY", "\"errors\":\"2\"", NULL}},
};

Test(services, config_errors_including_the_data_key_are_reported_together)
{
    require_stack();
    for (size_t i = 0; i < sizeof bad_together / sizeof bad_together[0]; i++) {
        const struct bad_configs_together *c = &bad_together[i];
        char log_path[256];
        snprintf(log_path, sizeof log_path, "%s/tests/badconfig-together-%zu.log",
                 itest_build_dir(), i);
        const char *settings[8] = {"INGEST_PUBLIC_PORT=18080", "DISPATCHER_ADMIN_PORT=18084",
                                   "INGEST_ADMIN_PORT=18081"}; /* + settings[4], NULL */
        size_t ns = 3;
        for (size_t k = 0; c->settings[k]; k++)
            settings[ns++] = c->settings[k];
        pid_t pid = itest_service_spawn(c->service, settings, log_path);
        int status = itest_process_wait(pid, 10000);
        cr_assert_neq(status, -1, "%s: did not exit", c->name);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 2, "%s: exit status %d", c->name,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        FILE *f = fopen(log_path, "r");
        cr_assert_not_null(f);
        char log[16384];
        size_t n = fread(log, 1, sizeof log - 1, f);
        log[n] = '\0';
        fclose(f);
        for (size_t k = 0; c->expect_in_log[k]; k++)
            cr_expect(strstr(log, c->expect_in_log[k]) != NULL, "%s: log lacks %s: %s", c->name,
                      c->expect_in_log[k], log);
        cr_expect(strstr(log, SECRET_LOOKING_KEY) == NULL, "%s: the log shows the data key",
                  c->name);
        /* Reported at start-up, before any connection is tried. */
        cr_expect(strstr(log, "schema up to date") == NULL, "%s: got past config: %s", c->name,
                  log);
    }
}
