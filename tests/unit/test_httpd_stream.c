/* Unit tests for common/httpd's streamed answers (httpd_respond_stream): the
 * body arrives whole in order from a source called piece by piece, a slow
 * source is waited for, a client that does not read stops the source after
 * a bounded amount (backpressure, constant memory), a client that
 * disconnects ends the source promptly (its free runs, the source is not
 * called again), a source error cuts the response so that the client sees
 * a truncated body, and a stream never sent is freed by
 * httpd_response_clear. The server runs in this process on 127.0.0.1, port
 * 0, with one worker thread. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "log.h"
#include "metrics.h"

static struct httpd *server;

/* What the one source of a test did (one stream at a time per test). */
static atomic_long produced; /* bytes handed to the server */
static atomic_int calls;     /* read calls */
static atomic_int frees;     /* free calls */
static atomic_int read_after_free;

struct source {
    long total;    /* bytes to produce; -1: never ends */
    long piece;    /* at most this many per call */
    long sleep_ms; /* before each call */
    long fail_at;  /* HTTPD_STREAM_ERROR once this many were produced; -1 never */
    long done;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The byte at offset i of every stream: a pattern that shows reordering. */
static char pattern_at(long i)
{
    return (char)('a' + (i * 7 + i / 4096) % 26);
}

static long source_read(void *ctx, char *buf, size_t max)
{
    struct source *s = ctx;
    if (atomic_load(&frees) > 0)
        atomic_store(&read_after_free, 1);
    atomic_fetch_add(&calls, 1);
    if (s->sleep_ms)
        sleep_ms(s->sleep_ms);
    if (s->fail_at >= 0 && s->done >= s->fail_at)
        return HTTPD_STREAM_ERROR;
    if (s->total >= 0 && s->done >= s->total)
        return HTTPD_STREAM_END;
    long n = (long)max < s->piece ? (long)max : s->piece;
    if (s->total >= 0 && n > s->total - s->done)
        n = s->total - s->done;
    for (long i = 0; i < n; i++)
        buf[i] = pattern_at(s->done + i);
    s->done += n;
    atomic_fetch_add(&produced, n);
    return n;
}

static void source_free(void *ctx)
{
    atomic_fetch_add(&frees, 1);
    free(ctx);
}

/* GET /stream?total=&piece=&sleep=&fail= */
static long query_long(const struct httpd_request *req, const char *key, long dflt)
{
    const char *v = httpd_request_query(req, key);
    return v ? strtol(v, NULL, 10) : dflt;
}

static void stream_handler(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    (void)ctx;
    struct source *s = calloc(1, sizeof *s);
    if (!s) {
        httpd_respond_error(resp, 500, "oom", "no memory", NULL);
        return;
    }
    s->total = query_long(req, "total", 1000);
    s->piece = query_long(req, "piece", 1000);
    s->sleep_ms = query_long(req, "sleep", 0);
    s->fail_at = query_long(req, "fail", -1);
    httpd_response_header(resp, "X-Stream", "yes");
    httpd_respond_stream(resp, 200, "text/csv; charset=utf-8", source_read, s, source_free);
}

static void suite_setup(void)
{
    log_init("test", LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    atomic_store(&produced, 0);
    atomic_store(&calls, 0);
    atomic_store(&frees, 0);
    atomic_store(&read_after_free, 0);
    char err[256];
    struct httpd_options opts = {
        .name = "stream", .port = 0, .threads = 1, .handler = stream_handler, .drain_ms = 300};
    server = httpd_start(&opts, err, sizeof err);
    cr_assert_not_null(server, "httpd_start: %s", err);
}

static void suite_teardown(void)
{
    httpd_stop(&server);
    metrics_free_all();
    curl_global_cleanup();
}

TestSuite(httpd_stream, .init = suite_setup, .fini = suite_teardown, .timeout = 30);

/* --- clients -------------------------------------------------------------- */

struct fetched {
    long status;
    CURLcode rc;
    long len;
    bool in_order;
    char content_type[128];
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct fetched *f = ud;
    for (size_t i = 0; i < size * n; i++)
        if (p[i] != pattern_at(f->len + (long)i))
            f->in_order = false;
    f->len += (long)(size * n);
    return size * n;
}

static struct fetched fetch(const char *query)
{
    struct fetched f = {.in_order = true};
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/stream?%s", httpd_port(server), query);
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    f.rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f.status);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(f.content_type, sizeof f.content_type, "%s", ct ? ct : "");
    curl_easy_cleanup(c);
    return f;
}

/* A raw client that sends the request and then reads only what the test
 * asks for. */
static int raw_connect(const char *query)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    /* A small receive buffer, so that backpressure shows early. */
    int rcv = 16 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)httpd_port(server))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[256];
    int n = snprintf(req, sizeof req, "GET /stream?%s HTTP/1.1\r\nHost: x\r\n\r\n", query);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    return fd;
}

/* Waits up to ms for the source's free to have run. */
static bool freed_within(long ms)
{
    for (long waited = 0; waited < ms; waited += 10) {
        if (atomic_load(&frees) > 0)
            return true;
        sleep_ms(10);
    }
    return atomic_load(&frees) > 0;
}

/* --- tests ---------------------------------------------------------------- */

Test(httpd_stream, body_arrives_whole_and_in_order_from_many_pieces)
{
    struct fetched f = fetch("total=3000000&piece=777");
    cr_expect_eq(f.rc, CURLE_OK, "curl: %s", curl_easy_strerror(f.rc));
    cr_expect_eq(f.status, 200);
    cr_expect_str_eq(f.content_type, "text/csv; charset=utf-8");
    cr_expect_eq(f.len, 3000000);
    cr_expect(f.in_order, "the bytes arrived out of order");
    cr_expect(freed_within(2000), "the source's free ran once the body was sent");
    cr_expect_eq(atomic_load(&frees), 1);
}

Test(httpd_stream, an_empty_body_is_a_complete_answer)
{
    struct fetched f = fetch("total=0");
    cr_expect_eq(f.rc, CURLE_OK, "curl: %s", curl_easy_strerror(f.rc));
    cr_expect_eq(f.status, 200);
    cr_expect_eq(f.len, 0);
    cr_expect(freed_within(2000));
}

Test(httpd_stream, a_slow_source_is_waited_for)
{
    struct fetched f = fetch("total=5000&piece=500&sleep=30");
    cr_expect_eq(f.rc, CURLE_OK, "curl: %s", curl_easy_strerror(f.rc));
    cr_expect_eq(f.status, 200);
    cr_expect_eq(f.len, 5000);
    cr_expect(f.in_order);
}

Test(httpd_stream, a_source_error_cuts_the_body_so_the_client_sees_it_incomplete)
{
    struct fetched f = fetch("total=100000&piece=1000&fail=20000");
    cr_expect_neq(f.rc, CURLE_OK, "a cut stream must not look complete");
    cr_expect_leq(f.len, 20000);
    cr_expect(freed_within(2000), "the source's free ran after the error");
}

Test(httpd_stream, a_client_that_does_not_read_stops_the_source)
{
    int fd = raw_connect("total=-1&piece=4096");
    /* Until the source has stopped for 300 ms (socket buffers full), 10 s at most. */
    long first = -1, second = 0;
    for (int i = 0; i < 33 && first != second; i++) {
        first = atomic_load(&produced);
        sleep_ms(300);
        second = atomic_load(&produced);
    }
    /* Socket buffers hold a few MB at most on loopback; an endless source
     * would have produced far more without backpressure. */
    cr_expect_gt(first, 0, "the source started");
    cr_expect_lt(second, 16L << 20, "the source ran ahead of the client: %ld bytes", second);
    cr_expect_eq(first, second, "the source went on while the client read nothing");
    close(fd);
    cr_expect(freed_within(3000), "closing the client ended the source");
}

Test(httpd_stream, a_client_that_disconnects_mid_body_ends_the_source_promptly)
{
    int fd = raw_connect("total=-1&piece=4096&sleep=2");
    char buf[8192];
    long got = 0;
    while (got < 100000) {
        ssize_t n = read(fd, buf, sizeof buf);
        cr_assert_gt(n, 0, "the stream ended early");
        got += n;
    }
    close(fd);
    cr_expect(freed_within(2000), "the source's free did not run within 2 s of the disconnect");
    int calls_then = atomic_load(&calls);
    sleep_ms(200);
    cr_expect_eq(atomic_load(&calls), calls_then, "the source was called after the disconnect");
    cr_expect_eq(atomic_load(&read_after_free), 0, "the source was called after its free");
    cr_expect_eq(atomic_load(&frees), 1, "freed exactly once");
}

Test(httpd_stream, a_stream_never_sent_is_freed_by_clear_or_a_later_answer)
{
    struct httpd_response resp = {0};
    httpd_respond_stream(&resp, 200, "text/csv", source_read, calloc(1, sizeof(struct source)),
                         source_free);
    httpd_respond_json(&resp, 500, "{}"); /* replaces the stream */
    cr_expect_eq(atomic_load(&frees), 1);
    cr_expect_null(resp.stream_read);
    httpd_respond_stream(&resp, 200, "text/csv", source_read, calloc(1, sizeof(struct source)),
                         source_free);
    cr_expect_null(resp.body, "a stream replaces the body");
    httpd_response_clear(&resp);
    cr_expect_eq(atomic_load(&frees), 2);
    cr_expect_eq(atomic_load(&calls), 0);
}
