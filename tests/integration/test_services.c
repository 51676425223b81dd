/* Each service, started as its real binary against the real local stack,
 * becomes ready, accepts a token from kizunactl, and drains and exits within
 * 10 s of SIGTERM. Bad configuration exits 2 naming every problem. Ports are
 * offset (1808x) so a `make up` stack on the default ports does not collide. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

static const char *build_dir(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

static long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Starts build/bin/kizuna-<name> with extra "K=V" settings (a value of NULL
 * unsets K). stderr goes to log_path. */
static pid_t service_spawn(const char *name, const char *const *settings, const char *log_path)
{
    char path[512];
    snprintf(path, sizeof path, "%s/bin/kizuna-%s", build_dir(), name);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        for (const char *const *s = settings; s && *s; s++) {
            char kv[256];
            snprintf(kv, sizeof kv, "%s", *s);
            char *eq = strchr(kv, '=');
            if (!eq) {
                unsetenv(kv);
                continue;
            }
            *eq = '\0';
            setenv(kv, eq + 1, 1);
        }
        setenv("INGEST_PUBLIC_PORT", "18080", 1);
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

static size_t body_sink(char *p, size_t size, size_t n, void *ctx)
{
    char *buf = ctx;
    size_t have = strlen(buf), add = size * n;
    if (have + add >= 4096)
        add = 4095 - have;
    memcpy(buf + have, p, add);
    buf[have + add] = '\0';
    return size * n;
}

/* GET url; returns the HTTP status or 0 if nothing answered. */
static long http_get(const char *url, const char *bearer, char *body)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    char auth[4096];
    long status = 0;
    if (body)
        body[0] = '\0';
    char sink[4096] = "";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_sink);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body ? body : sink);
    if (bearer) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer);
        headers = curl_slist_append(headers, auth);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    }
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return status;
}

static bool wait_ready(int port, long timeout_ms)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", port);
    for (long start = monotonic_ms(); monotonic_ms() - start < timeout_ms;) {
        if (http_get(url, NULL, NULL) == 200)
            return true;
        usleep(200 * 1000);
    }
    return false;
}

/* Waits for pid to exit; returns its wait status, or -1 after timeout. */
static int wait_exit(pid_t pid, long timeout_ms)
{
    int status;
    for (long start = monotonic_ms(); monotonic_ms() - start < timeout_ms;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        usleep(50 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static void require_stack(void)
{
    cr_assert_not_null(getenv("KAFKA_BROKERS"), "run through `make test` (stack env missing)");
    cr_assert_not_null(getenv("KIZUNA_JWT_KEY"), "run through `make test` (stack env missing)");
}

/* kizunactl's token, exactly what it printed on stdout minus the newline. */
static void token_from_kizunactl(const char *tenant, char *out, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/bin/kizunactl token issue --tenant %s --role admin --ttl 1h",
             build_dir(), tenant);
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

Test(services, each_becomes_ready_accepts_a_kizunactl_token_and_stops_on_sigterm)
{
    require_stack();
    char token[4096];
    token_from_kizunactl("acme", token, sizeof token);
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        const struct svc_case *c = &services[i];
        char port[32], log_path[256];
        snprintf(port, sizeof port, "%s=%d", c->port_var, c->port);
        snprintf(log_path, sizeof log_path, "%s/tests/%s.log", build_dir(), c->name);
        const char *settings[] = {port, NULL};
        pid_t pid = service_spawn(c->name, settings, log_path);

        cr_assert(wait_ready(c->port, 45000), "%s did not become ready; see %s", c->name, log_path);

        char url[128], body[4096];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", c->port);
        cr_expect_eq(http_get(url, NULL, NULL), 200, "%s /healthz", c->name);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", c->port);
        cr_expect_eq(http_get(url, NULL, body), 200, "%s /metrics", c->name);
        cr_expect(strstr(body, "# TYPE") != NULL, "%s /metrics is Prometheus text", c->name);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/whoami", c->port);
        cr_expect_eq(http_get(url, token, body), 200, "%s accepts the kizunactl token", c->name);
        cr_expect(strstr(body, "\"tenant\":\"acme\"") != NULL, "%s whoami: %s", c->name, body);
        cr_expect_eq(http_get(url, NULL, NULL), 401, "%s refuses a missing token", c->name);
        cr_expect_eq(http_get(url, "not.a.jwt", NULL), 401, "%s refuses a bad token", c->name);

        long t0 = monotonic_ms();
        kill(pid, SIGTERM);
        int status = wait_exit(pid, 10000);
        cr_assert_neq(status, -1, "%s did not exit within 10 s of SIGTERM", c->name);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s exit status %d", c->name,
                  status);
        cr_expect(monotonic_ms() - t0 < 10000);
        /* Under `make SANITIZE=...` the services are sanitized binaries too. */
        FILE *f = fopen(log_path, "r");
        cr_assert_not_null(f);
        char line[8192];
        while (fgets(line, sizeof line, f)) {
            cr_expect(strstr(line, "Sanitizer") == NULL && strstr(line, "runtime error") == NULL,
                      "%s: %s", c->name, line);
        }
        fclose(f);
    }
}

struct bad_config {
    const char *name;
    const char *setting;
    const char *expect_in_log;
};

static const struct bad_config bad_configs[] = {
    {"missing database url", "SEGMENTATION_DATABASE_URL", "SEGMENTATION_DATABASE_URL"},
    {"non-number port", "SEGMENTATION_ADMIN_PORT=eighty", "SEGMENTATION_ADMIN_PORT"},
    {"port out of range", "SEGMENTATION_ADMIN_PORT=70000", "SEGMENTATION_ADMIN_PORT"},
    {"missing jwt key", "KIZUNA_JWT_KEY", "KIZUNA_JWT_KEY"},
    {"bad log level", "LOG_LEVEL=loud", "LOG_LEVEL"},
};

Test(services, bad_config_exits_2_naming_the_variable)
{
    require_stack();
    for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
        const struct bad_config *c = &bad_configs[i];
        char log_path[256];
        snprintf(log_path, sizeof log_path, "%s/tests/badconfig-%zu.log", build_dir(), i);
        const char *settings[] = {c->setting, NULL};
        pid_t pid = service_spawn("segmentation", settings, log_path);
        int status = wait_exit(pid, 10000);
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
