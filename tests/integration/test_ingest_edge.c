/* kizuna-ingest's public port under hostile clients, against the real local
 * stack: the binary is started on its own ports (public 18170, admin 18171)
 * with its public limits made small (a 2 MiB body budget, 4 connections per
 * address, a 1 s request deadline), and one channel is registered. An
 * unknown path, method or channel is refused before the body is sent; a
 * body past the budget gets 503; a fifth connection from the address is
 * closed; a client sending a byte now and then is cut at the deadline; and
 * /metrics is served on the admin port only. After each, a signed webhook
 * still gets its 200. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "log.h"

#define PUBLIC_PORT 18170
#define ADMIN_PORT 18171
#define PER_ADDRESS 4
#define DEADLINE_MS 1000

static pid_t ingest_pid;
static char ingest_log[256];
static char tenant[64];
static char channel[32];
static char secret[65];

static void ingest_start(void)
{
    log_init("test-ingest-edge", LOG_WARN);
    itest_env("INGEST_DATABASE_URL");
    itest_env("KIZUNA_JWT_KEY");
    snprintf(tenant, sizeof tenant, "t-edge-%ld", (long)getpid());
    snprintf(ingest_log, sizeof ingest_log, "%s/tests/ingest-edge-%ld.log", itest_build_dir(),
             (long)getpid());
    char public_port[48], admin_port[48], per_address[64], deadline[64];
    snprintf(public_port, sizeof public_port, "INGEST_PUBLIC_PORT=%d", PUBLIC_PORT);
    snprintf(admin_port, sizeof admin_port, "INGEST_ADMIN_PORT=%d", ADMIN_PORT);
    snprintf(per_address, sizeof per_address, "INGEST_PUBLIC_PER_ADDRESS_CONNECTIONS=%d",
             PER_ADDRESS);
    snprintf(deadline, sizeof deadline, "INGEST_PUBLIC_REQUEST_DEADLINE_MS=%d", DEADLINE_MS);
    const char *settings[] = {
        ITEST_SIM_INGEST_SETTING,         public_port,      admin_port, per_address, deadline,
        "INGEST_PUBLIC_BODY_BUDGET_MB=2", "LOG_LEVEL=info", NULL};
    itest_sim_start("ingest-edge");
    ingest_pid = itest_service_spawn("ingest", settings, ingest_log);
    cr_assert(itest_http_wait_ready(ADMIN_PORT, 45000),
              "kizuna-ingest did not become ready; see %s", ingest_log);
    itest_random_hex(secret, 16);
    itest_unique_digits(channel, sizeof channel, '7');
    itest_ingest_channel_register(ADMIN_PORT, tenant, channel, secret);
}

/* The last step of every test, part of its verdict: a signed webhook still
 * gets 200, then SIGTERM, exit 0 within 10 s, and a clean log. */
static void ingest_finish(void)
{
    cr_assert_gt(ingest_pid, 0, "kizuna-ingest was stopped before the end of the test");
    const char *body = "{\"destination\":\"U8e742f61d673b39c7fff3cecb7536ef0\",\"events\":[]}";
    char sig[64], h[96], url[128];
    itest_line_sign(secret, body, strlen(body), sig);
    snprintf(h, sizeof h, "x-line-signature: %s", sig);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/line/webhook/%s", PUBLIC_PORT, channel);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct itest_http r;
    long status = 0;
    /* A connection the test just closed may still count for a moment. */
    for (int i = 0; i < 20 && status != 200; i++) {
        status = itest_http_do("POST", url, headers, body, strlen(body), &r);
        itest_http_free(&r);
        if (status != 200) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    cr_expect_eq(status, 200, "a signed webhook after the test");
    itest_service_stop(&ingest_pid, ingest_log);
    itest_sim_stop();
    const char *const forbidden[] = {secret, NULL};
    itest_log_expect_clean(ingest_log, forbidden);
}

static void ingest_reap(void)
{
    itest_service_reap(&ingest_pid);
    itest_sim_reap();
}

TestSuite(ingest_edge, .init = ingest_start, .fini = ingest_reap, .timeout = 90);

/* --- raw sockets ------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static int raw_send(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static bool raw_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) > 0;
}

/* One response (a 1xx's headers, or headers and Content-Length bytes), or
 * what came before a close or timeout_ms of silence. Its status, or -1. */
static int raw_response(int fd, int timeout_ms, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    while (len + 1 < cap && raw_readable(fd, timeout_ms)) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        const char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strcasestr(buf, "Content-Length: ");
        if (end && (strncmp(buf, "HTTP/1.1 1", 10) == 0 ||
                    (cl && strlen(end + 4) >= strtoul(cl + 16, NULL, 10))))
            break;
    }
    int status = -1;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
        return -1;
    return status;
}

static bool raw_closed(int fd, int timeout_ms)
{
    char c[512];
    double until = now_s() + timeout_ms / 1000.0;
    while (now_s() < until) {
        if (!raw_readable(fd, 50))
            continue;
        ssize_t n = recv(fd, c, sizeof c, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
    }
    return false;
}

/* A webhook POST's headers with Expect: 100-continue, and the answer to
 * them: 100 when the server wants the body. */
static int post_head(int fd, size_t len, char *buf, size_t cap)
{
    char head[512];
    snprintf(head, sizeof head,
             "POST /line/webhook/%s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             "x-line-signature: AAAA\r\nExpect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
             channel, len);
    cr_assert_eq(raw_send(fd, head, strlen(head)), 0);
    return raw_response(fd, 1500, buf, cap);
}

/* A series' value in the admin port's /metrics, or -1. */
static long admin_metric(const char *series)
{
    char url[128];
    struct itest_http r;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", ADMIN_PORT);
    cr_assert_eq(itest_http_do("GET", url, NULL, NULL, 0, &r), 200);
    const char *at = strstr(r.body, series);
    long v = at ? strtol(at + strlen(series), NULL, 10) : -1;
    itest_http_free(&r);
    return v;
}

/* --- tests ------------------------------------------------------------------- */

struct early_case {
    const char *what;
    const char *method;
    const char *path; /* the registered channel's id follows when ours */
    bool ours;
    long length; /* announced, never sent */
    int status;
    const char *expect;
};

static const struct early_case early_cases[] = {
    {"unknown path", "POST", "/nowhere", false, 500000, 404, "\"code\":\"not_found\""},
    {"/metrics is not served here", "GET", "/metrics", false, 0, 404, "\"code\":\"not_found\""},
    {"unknown channel", "POST", "/line/webhook/7999999999999", false, 500000, 404,
     "unknown_channel"},
    {"channel id not digits", "POST", "/line/webhook/abc", false, 500000, 404, "unknown_channel"},
    {"GET on a webhook", "GET", "/line/webhook/", true, 500000, 405, "Allow: POST"},
    {"POST on a tracked link", "POST", "/r/sometoken", false, 500000, 405, "Allow: GET, HEAD"},
    {"body over the cap", "POST", "/line/webhook/", true, 2 << 20, 413, "body_too_large"},
};

Test(ingest_edge, unknown_paths_methods_and_channels_are_refused_before_the_body)
{
    for (size_t i = 0; i < sizeof early_cases / sizeof early_cases[0]; i++) {
        const struct early_case *c = &early_cases[i];
        char path[128], head[512], buf[4096];
        snprintf(path, sizeof path, "%s%s", c->path, c->ours ? channel : "");
        int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: t\r\n", c->method, path);
        if (c->length > 0)
            n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %ld\r\n", c->length);
        snprintf(head + n, sizeof head - (size_t)n, "\r\n");
        int fd = raw_connect(PUBLIC_PORT);
        double t0 = now_s();
        cr_assert_eq(raw_send(fd, head, strlen(head)), 0);
        int status = raw_response(fd, 1000, buf, sizeof buf);
        cr_expect_eq(status, c->status, "%s: got %d (the server waited for the body?)\n%s", c->what,
                     status, buf);
        cr_expect_lt(now_s() - t0, 1.0, "%s", c->what);
        cr_expect_not_null(strstr(buf, c->expect), "%s: no '%s' in\n%s", c->what, c->expect, buf);
        close(fd);
    }
    ingest_finish();
}

Test(ingest_edge, metrics_are_served_on_the_admin_port_only)
{
    char url[128];
    struct itest_http r;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", PUBLIC_PORT);
    cr_expect_eq(itest_http_do("GET", url, NULL, NULL, 0, &r), 404, "public /metrics: %s", r.body);
    cr_expect_null(strstr(r.body, channel), "the public port named the channel");
    itest_http_free(&r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", PUBLIC_PORT);
    cr_expect_eq(itest_http_get_status(url, NULL), 200, "public /healthz");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", PUBLIC_PORT);
    cr_expect_eq(itest_http_get_status(url, NULL), 200, "public /readyz");
    /* The public server's own counts are on the admin port. */
    cr_expect_geq(admin_metric("kizuna_http_requests_total{server=\"public\",status=\"404\"} "), 1);
    ingest_finish();
}

Test(ingest_edge, bodies_past_the_byte_budget_get_503_before_they_are_sent)
{
    /* Two bodies of 700,000 bytes fit in 2 MiB; a third does not. */
    char buf[4096];
    int a = raw_connect(PUBLIC_PORT);
    int b = raw_connect(PUBLIC_PORT);
    cr_assert_eq(post_head(a, 700000, buf, sizeof buf), 100, "%s", buf);
    cr_assert_eq(post_head(b, 700000, buf, sizeof buf), 100, "%s", buf);
    int c = raw_connect(PUBLIC_PORT);
    cr_expect_eq(post_head(c, 700000, buf, sizeof buf), 503, "%s", buf);
    cr_expect_not_null(strcasestr(buf, "Retry-After: 1"), "%s", buf);
    close(c);

    /* a's body comes whole (its signature is wrong: 401 from the handler),
     * and b goes away: both shares come back. */
    char *body = malloc(700000);
    cr_assert_not_null(body);
    memset(body, ' ', 700000);
    cr_assert_eq(raw_send(a, body, 700000), 0);
    cr_expect_eq(raw_response(a, 3000, buf, sizeof buf), 401, "%s", buf);
    close(a);
    close(b);
    free(body);
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    int d = raw_connect(PUBLIC_PORT);
    int e = raw_connect(PUBLIC_PORT);
    cr_expect_eq(post_head(d, 700000, buf, sizeof buf), 100, "%s", buf);
    cr_expect_eq(post_head(e, 700000, buf, sizeof buf), 100, "%s", buf);
    close(d);
    close(e);
    cr_expect_eq(admin_metric("kizuna_http_refused_total{server=\"public\",reason=\"budget\"} "),
                 1);
    ingest_finish();
}

Test(ingest_edge, a_connection_past_the_per_address_cap_is_closed)
{
    int fds[PER_ADDRESS];
    /* Each is answered by the handler (401: the signature is wrong), which
     * keeps it open; a built-in's answer would end it. */
    char req[512];
    snprintf(req, sizeof req,
             "POST /line/webhook/%s HTTP/1.1\r\nHost: t\r\nx-line-signature: AAAA\r\n"
             "Content-Length: 2\r\n\r\n{}",
             channel);
    for (int i = 0; i < PER_ADDRESS; i++) {
        fds[i] = raw_connect(PUBLIC_PORT);
        char buf[1024];
        cr_assert_eq(raw_send(fds[i], req, strlen(req)), 0);
        cr_assert_eq(raw_response(fds[i], 2000, buf, sizeof buf), 401, "connection %d: %s", i, buf);
    }
    int extra = raw_connect(PUBLIC_PORT);
    cr_expect(raw_closed(extra, 1000), "connection %d from one address stayed open",
              PER_ADDRESS + 1);
    close(extra);
    /* The admin port has no such cap, and counted it. */
    cr_expect_geq(
        admin_metric("kizuna_http_refused_total{server=\"public\",reason=\"connections\"} "), 1);
    for (int i = 0; i < PER_ADDRESS; i++)
        close(fds[i]);
    ingest_finish();
}

Test(ingest_edge, a_client_sending_a_byte_now_and_then_is_cut_at_the_deadline)
{
    char head[512];
    snprintf(head, sizeof head,
             "POST /line/webhook/%s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             "x-line-signature: AAAA\r\nContent-Length: 500\r\n\r\n",
             channel);
    int fd = raw_connect(PUBLIC_PORT);
    double t0 = now_s();
    cr_assert_eq(raw_send(fd, head, strlen(head)), 0);
    /* A byte every 200 ms: MHD's idle timeout (30 s) would never fire. */
    while (now_s() - t0 < 6.0 && !raw_readable(fd, 200))
        if (raw_send(fd, " ", 1) != 0)
            break;
    double took = now_s() - t0;
    char buf[4096];
    int status = raw_response(fd, 1000, buf, sizeof buf);
    cr_expect(status == 408 || status == -1, "answered %d: %s", status, buf);
    cr_expect_geq(took, DEADLINE_MS / 1000.0 - 0.1, "cut after %.2fs", took);
    cr_expect_lt(took, DEADLINE_MS / 1000.0 + 1.5, "cut after %.2fs (not at the deadline)", took);
    cr_expect(raw_closed(fd, 1000), "the connection stayed open");
    close(fd);
    cr_expect_eq(admin_metric("kizuna_http_refused_total{server=\"public\",reason=\"deadline\"} "),
                 1);
    ingest_finish();
}
