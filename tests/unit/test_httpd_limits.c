/* Unit tests for what keeps one client of common/httpd from hurting the
 * others: the route callback refuses before a byte of the body is read, the
 * byte budget answers 503 past it and gives back what ended, the
 * per-address cap closes the connection past it, and a request that is not
 * received whole within its deadline is cut, while a deferred one is not.
 * And /metrics is served only by a server that asks for it. Each test runs
 * its own server on 127.0.0.1, port 0, with the limits under test made
 * small, and drives it with raw sockets where the timing of bytes matters. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "log.h"
#include "metrics.h"

#define CAP 1024

static struct httpd *server;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- the service under test ---------------------------------------------- */

/* Refuses /refuse/... (404) and anything but POST on /post-only (405). */
static bool limits_route(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    (void)ctx;
    const char *path = httpd_request_path(req);
    if (strncmp(path, "/refuse", 7) == 0) {
        httpd_respond_error(resp, 404, "not_found", "no such route", NULL);
        return false;
    }
    if (strcmp(path, "/post-only") == 0 && strcmp(httpd_request_method(req), "POST") != 0) {
        httpd_response_header(resp, "Allow", "POST");
        httpd_respond_error(resp, 405, "method_not_allowed", "use POST", NULL);
        return false;
    }
    return true;
}

static void *complete_later(void *arg)
{
    struct httpd_deferred *d = arg;
    sleep_ms(1000);
    struct httpd_response resp = {0};
    httpd_respond_json(&resp, 200, "{\"late\":true}");
    httpd_complete(&d, &resp);
    return NULL;
}

/* "/defer" answers a second later from another thread; anything else
 * echoes the path and the body's length. */
static void limits_handler(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    (void)ctx;
    if (strcmp(httpd_request_path(req), "/defer") == 0) {
        struct httpd_deferred *d = httpd_defer(req);
        pthread_t t;
        if (d && pthread_create(&t, NULL, complete_later, d) == 0) {
            pthread_detach(t);
            return;
        }
        httpd_respond_error(resp, 500, "no_defer", "cannot defer", NULL);
        return;
    }
    size_t len = 0;
    httpd_request_body(req, &len);
    char body[256];
    snprintf(body, sizeof body, "{\"path\":\"%s\",\"body_len\":%zu}", httpd_request_path(req), len);
    httpd_respond_json(resp, 200, body);
}

static void limits_start(struct httpd_options *o)
{
    char err[256];
    o->port = 0;
    o->threads = 2;
    if (!o->body_cap)
        o->body_cap = CAP;
    server = httpd_start(o, err, sizeof err);
    cr_assert_not_null(server, "httpd_start: %s", err);
}

static void suite_setup(void)
{
    log_init("test", LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void suite_teardown(void)
{
    httpd_stop(&server);
    metrics_free_all();
    curl_global_cleanup();
}

TestSuite(httpd_limits, .init = suite_setup, .fini = suite_teardown, .timeout = 30);

/* --- raw sockets ----------------------------------------------------------- */

static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)httpd_port(server))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* 0, or -1 once the server has closed on us. */
static int raw_send(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static bool raw_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) > 0;
}

/* Reads one response: until the headers (of a 1xx) or the headers and
 * Content-Length bytes of body are in, the server closes, or timeout_ms
 * pass in silence. Returns the
 * status, or -1 when nothing (or no status line) came. */
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

/* Has the server closed (or reset) the connection within timeout_ms? */
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

/* A GET on an open connection: its status. A path the handler answers
 * keeps the connection open; one answered before the body could be read
 * (a built-in, a refusal) ends it, as MHD 0.9.75 reads no further request
 * after an early answer. */
static int raw_get(int fd, const char *path)
{
    char req[256], buf[8192];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    if (raw_send(fd, req, strlen(req)) != 0)
        return -1;
    return raw_response(fd, 2000, buf, sizeof buf);
}

/* A POST whose headers (with Expect: 100-continue) are sent, and whose
 * 100 Continue is read: the server has taken the body's share. */
static int raw_post_continued(size_t len, const char *what)
{
    int fd = raw_connect();
    char head[256], buf[256];
    snprintf(
        head, sizeof head,
        "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
        len);
    cr_assert_eq(raw_send(fd, head, strlen(head)), 0);
    cr_assert_eq(raw_response(fd, 2000, buf, sizeof buf), 100, "%s: no 100 Continue: %s", what,
                 buf);
    return fd;
}

/* The value of a series in /metrics (served by this test's server), or -1
 * when absent. */
static long metric_value(const char *series)
{
    static char buf[65536];
    const char *req = "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    int status = -1;
    /* A connection the test closed just before may count for a moment. */
    for (int i = 0; i < 20 && status != 200; i++) {
        if (i > 0)
            sleep_ms(50);
        int fd = raw_connect();
        if (raw_send(fd, req, strlen(req)) == 0)
            status = raw_response(fd, 2000, buf, sizeof buf);
        close(fd);
    }
    cr_assert_eq(status, 200, "GET /metrics: %s", buf);
    const char *at = strstr(buf, series);
    return at ? strtol(at + strlen(series), NULL, 10) : -1;
}

/* --- route before the body ------------------------------------------------- */

struct route_case {
    const char *what;
    const char *head; /* sent alone: the body it announces never comes */
    int status;
    const char *expect;
};

static const struct route_case route_cases[] = {
    {"unknown path, body announced",
     "POST /refuse/x HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n", 404,
     "\"code\":\"not_found\""},
    {"unknown path, Expect: 100-continue",
     "POST /refuse/x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n",
     404, "\"code\":\"not_found\""},
    {"unknown path, chunked body announced",
     "POST /refuse/y HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", 404, NULL},
    {"wrong method, body announced",
     "PUT /post-only HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n", 405, "Allow: POST"},
    {"unknown path over the cap: the route answers first",
     "POST /refuse/z HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n", 404, NULL},
};

Test(httpd_limits, route_refuses_before_a_byte_of_the_body_is_read)
{
    struct httpd_options o = {.name = "route", .route = limits_route, .handler = limits_handler};
    limits_start(&o);
    for (size_t i = 0; i < sizeof route_cases / sizeof route_cases[0]; i++) {
        const struct route_case *c = &route_cases[i];
        int fd = raw_connect();
        double t0 = now_s();
        cr_assert_eq(raw_send(fd, c->head, strlen(c->head)), 0);
        char buf[4096];
        int status = raw_response(fd, 1000, buf, sizeof buf);
        cr_expect_eq(status, c->status, "%s: got %d\n%s", c->what, status, buf);
        cr_expect_lt(now_s() - t0, 0.9, "%s: the server waited for the body", c->what);
        cr_expect_null(strstr(buf, "100 Continue"), "%s: asked for the body\n%s", c->what, buf);
        if (c->expect)
            cr_expect_not_null(strstr(buf, c->expect), "%s: no '%s' in\n%s", c->what, c->expect,
                               buf);
        /* The body will never be read: the connection ends with the answer. */
        cr_expect(raw_closed(fd, 1000), "%s: connection left open", c->what);
        close(fd);
    }
    /* What the route lets through is read and handled as before. */
    int fd = raw_connect();
    const char *ok = "POST /post-only HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
    cr_assert_eq(raw_send(fd, ok, strlen(ok)), 0);
    char buf[4096];
    cr_expect_eq(raw_response(fd, 2000, buf, sizeof buf), 200, "%s", buf);
    cr_expect_not_null(strstr(buf, "\"body_len\":5"), "%s", buf);
    close(fd);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static size_t count_upload(char *buf, size_t size, size_t n, void *ud)
{
    size_t *sent = ud;
    size_t take = size * n < 512 ? size * n : 512;
    memset(buf, 'x', take);
    *sent += take;
    return take;
}

Test(httpd_limits, curl_with_expect_100_continue_sends_no_body_to_a_refused_path)
{
    struct httpd_options o = {.name = "route", .route = limits_route, .handler = limits_handler};
    limits_start(&o);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/refuse/big", httpd_port(server));
    CURL *curl = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Expect: 100-continue");
    size_t sent = 0;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "POST");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, count_upload);
    curl_easy_setopt(curl, CURLOPT_READDATA, &sent);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)1000);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    double t0 = now_s();
    cr_assert_eq(curl_easy_perform(curl), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    cr_expect_eq(status, 404);
    cr_expect_eq(sent, 0, "curl sent %zu body bytes", sent);
    /* curl waits up to a second for 100 Continue; the answer came first. */
    cr_expect_lt(now_s() - t0, 0.9);
    curl_slist_free_all(h);
    curl_easy_cleanup(curl);
}

/* --- the byte budget ------------------------------------------------------- */

Test(httpd_limits, byte_budget_answers_503_past_it_and_gets_back_what_ended)
{
    /* Room for two bodies at the cap (each takes cap + 1), not three. */
    struct httpd_options o = {.name = "budget",
                              .handler = limits_handler,
                              .metrics = true,
                              .body_budget = 2 * (CAP + 1) + 100,
                              .request_deadline_ms = 1000};
    limits_start(&o);
    int a = raw_post_continued(CAP, "a");
    int b = raw_post_continued(CAP, "b");

    /* A third declared body: 503 at once, before it is sent. */
    int c = raw_connect();
    char head[256], buf[4096];
    snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n",
             CAP);
    cr_assert_eq(raw_send(c, head, strlen(head)), 0);
    cr_expect_eq(raw_response(c, 1000, buf, sizeof buf), 503, "%s", buf);
    cr_expect_not_null(strcasestr(buf, "Retry-After: 1"), "%s", buf);
    cr_expect_not_null(strstr(buf, "\"code\":\"busy\""), "%s", buf);
    close(c);

    /* A chunked body grows into the budget as it comes: 503 on the spot. */
    c = raw_connect();
    const char *chunked = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "100\r\n";
    cr_assert_eq(raw_send(c, chunked, strlen(chunked)), 0);
    char chunk[258];
    memset(chunk, 'c', 256);
    memcpy(chunk + 256, "\r\n", 2);
    cr_assert_eq(raw_send(c, chunk, sizeof chunk), 0);
    cr_expect_eq(raw_response(c, 1000, buf, sizeof buf), 503, "%s", buf);
    cr_expect_not_null(strcasestr(buf, "Retry-After: 1"), "%s", buf);
    close(c);

    /* a's body is read whole and answered: its share comes back. */
    static char body[CAP];
    memset(body, 'b', sizeof body);
    cr_assert_eq(raw_send(a, body, sizeof body), 0);
    cr_expect_eq(raw_response(a, 2000, buf, sizeof buf), 200, "%s", buf);
    cr_expect_not_null(strstr(buf, "\"body_len\":1024"), "%s", buf);
    close(a);
    /* b's client goes away mid-body: its share comes back too, once MHD
     * closes the connection (its idle timeout, here the 1 s deadline). */
    cr_assert_eq(raw_send(b, body, 100), 0);
    close(b);
    sleep_ms(2500);

    int d = raw_post_continued(CAP, "d");
    int e = raw_post_continued(CAP, "e");
    cr_assert_eq(raw_send(d, body, sizeof body), 0);
    cr_expect_eq(raw_response(d, 2000, buf, sizeof buf), 200, "%s", buf);
    cr_assert_eq(raw_send(e, body, sizeof body), 0);
    cr_expect_eq(raw_response(e, 2000, buf, sizeof buf), 200, "%s", buf);
    close(d);
    close(e);
    cr_expect_eq(metric_value("kizuna_http_refused_total{server=\"budget\",reason=\"budget\"} "),
                 2);
}

/* --- connections per address --------------------------------------------- */

Test(httpd_limits, per_address_cap_closes_the_connection_past_it)
{
    struct httpd_options o = {.name = "peraddr",
                              .handler = limits_handler,
                              .metrics = true,
                              .per_address_connections = 2};
    limits_start(&o);
    int a = raw_connect();
    int b = raw_connect();
    /* Both are served, so both are counted. */
    cr_assert_eq(raw_get(a, "/echo"), 200);
    cr_assert_eq(raw_get(b, "/echo"), 200);

    int c = raw_connect(); /* the kernel accepts; the server closes it */
    cr_expect(raw_closed(c, 1000), "a third connection from the address stayed open");
    close(c);
    cr_expect_eq(raw_get(a, "/echo"), 200, "the first two are untouched");

    /* Once one closes, the address may connect again. */
    close(b);
    bool again = false;
    for (int i = 0; i < 20 && !again; i++) {
        sleep_ms(50);
        int d = raw_connect();
        again = raw_get(d, "/echo") == 200;
        close(d);
    }
    cr_expect(again, "no new connection after one closed");
    close(a);
    sleep_ms(100);
    cr_expect_geq(
        metric_value("kizuna_http_refused_total{server=\"peraddr\",reason=\"connections\"} "), 1);
}

/* --- the request deadline --------------------------------------------------- */

/* Sends what (after head) one byte per 100 ms until the server closes or
 * answers, for at most 5 s. Returns the seconds it took and fills status. */
static double drip(int fd, const char *head, const char *what, int *status)
{
    double t0 = now_s();
    cr_assert_eq(raw_send(fd, head, strlen(head)), 0);
    *status = -1;
    for (size_t i = 0; now_s() - t0 < 5.0; i++) {
        if (raw_readable(fd, 100))
            break;
        if (raw_send(fd, what + i % strlen(what), 1) != 0)
            break;
    }
    char buf[4096];
    *status = raw_response(fd, 1000, buf, sizeof buf);
    return now_s() - t0;
}

Test(httpd_limits, slow_drip_is_cut_at_the_request_deadline)
{
    struct httpd_options o = {
        .name = "deadline", .handler = limits_handler, .metrics = true, .request_deadline_ms = 600};
    limits_start(&o);
    /* A body one byte at a time: 408, or a close, soon after 600 ms. */
    int fd = raw_connect();
    int status;
    double took =
        drip(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\n\r\n", "x", &status);
    cr_expect(status == 408 || status == -1, "body drip answered %d", status);
    cr_expect_geq(took, 0.5, "cut after %.2fs", took);
    cr_expect_lt(took, 2.0, "cut after %.2fs", took);
    cr_expect(raw_closed(fd, 1000), "the connection stayed open");
    close(fd);

    /* Headers one byte at a time (slowloris): the connection is closed. */
    fd = raw_connect();
    took = drip(fd, "GET /echo HTTP/1.1\r\nHost: t\r\n", "X-Slow: a\r\n", &status);
    cr_expect_eq(status, -1, "header drip answered %d", status);
    cr_expect_geq(took, 0.5, "cut after %.2fs", took);
    cr_expect_lt(took, 2.0, "cut after %.2fs", took);
    close(fd);

    /* The server is fine, and counted the two as cut at the deadline. */
    cr_expect_eq(
        metric_value("kizuna_http_refused_total{server=\"deadline\",reason=\"deadline\"} "), 2);
}

Test(httpd_limits, a_deferred_request_is_not_cut_by_the_deadline)
{
    struct httpd_options o = {
        .name = "deferdeadline", .handler = limits_handler, .request_deadline_ms = 300};
    limits_start(&o);
    int fd = raw_connect();
    char buf[4096];
    double t0 = now_s();
    cr_assert_eq(raw_get(fd, "/echo"), 200);
    const char *req = "GET /defer HTTP/1.1\r\nHost: t\r\n\r\n";
    cr_assert_eq(raw_send(fd, req, strlen(req)), 0);
    cr_expect_eq(raw_response(fd, 3000, buf, sizeof buf), 200, "%s", buf);
    cr_expect_geq(now_s() - t0, 0.9);
    cr_expect_not_null(strstr(buf, "\"late\":true"), "%s", buf);
    close(fd);
}

/* --- /metrics where asked ----------------------------------------------------- */

Test(httpd_limits, metrics_are_served_only_by_a_server_that_asks)
{
    struct httpd_options quiet = {.name = "quiet"};
    limits_start(&quiet);
    int fd = raw_connect();
    cr_expect_eq(raw_get(fd, "/metrics"), 404);
    close(fd);
    fd = raw_connect();
    cr_expect_eq(raw_get(fd, "/healthz"), 200);
    close(fd);
    httpd_stop(&server);

    struct httpd_options routed = {
        .name = "routed", .route = limits_route, .handler = limits_handler};
    limits_start(&routed);
    fd = raw_connect();
    char buf[4096];
    const char *req = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
    cr_assert_eq(raw_send(fd, req, strlen(req)), 0);
    cr_expect_eq(raw_response(fd, 2000, buf, sizeof buf), 200, "%s", buf);
    cr_expect_not_null(strstr(buf, "\"path\":\"/metrics\""), "the handler's, not ours: %s", buf);
    close(fd);
    httpd_stop(&server);

    struct httpd_options admin = {.name = "admin", .metrics = true};
    limits_start(&admin);
    fd = raw_connect();
    cr_assert_eq(raw_send(fd, req, strlen(req)), 0);
    cr_expect_eq(raw_response(fd, 2000, buf, sizeof buf), 200, "%s", buf);
    cr_expect_not_null(strstr(buf, "# TYPE kizuna_http_requests_total counter"), "%s", buf);
    close(fd);
}

/* --- bad options ------------------------------------------------------------ */

struct bad_limit_case {
    const char *what;
    struct httpd_options opts;
};

static const struct bad_limit_case bad_limit_cases[] = {
    {"negative per-address cap", {.name = "bad", .per_address_connections = -1}},
    {"per-address cap too large", {.name = "bad", .per_address_connections = 1 << 20}},
    {"negative deadline", {.name = "bad", .request_deadline_ms = -1}},
    {"deadline over ten minutes", {.name = "bad", .request_deadline_ms = 600001}},
    {"budget no larger than the cap", {.name = "bad", .body_cap = 4096, .body_budget = 4096}},
};

Test(httpd_limits, start_refuses_bad_limits)
{
    for (size_t i = 0; i < sizeof bad_limit_cases / sizeof bad_limit_cases[0]; i++) {
        char err[256] = "";
        struct httpd *h = httpd_start(&bad_limit_cases[i].opts, err, sizeof err);
        cr_expect_null(h, "%s: started", bad_limit_cases[i].what);
        httpd_stop(&h);
        cr_expect_neq(err[0], '\0', "%s: no error text", bad_limit_cases[i].what);
    }
}
