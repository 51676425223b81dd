/* libFuzzer target for the HTTP server's framing (common/httpd.c): request
 * line, headers, Content-Length, chunked bodies and the 413 path (a body
 * over the cap, declared or counted as it arrives), and deferred answers.
 *
 * A real server runs in the process on 127.0.0.1 (a free port) with a
 * 4 KiB body cap, so that fuzzed uploads cross it. Each input is written
 * as raw bytes on a new connection, which is then half-closed; the answer
 * is read until the server closes. The handler answers by path:
 *   /defer... defers and completes from the handler thread itself,
 *   /later... defers and completes from another thread,
 *   /error... answers the project's error form with the path in it,
 *   anything else: 200 with the body's length.
 * Contract: the handler sees a NUL-terminated body of at most the cap, a
 * method and a path; whatever the server writes back starts with an HTTP/1
 * status line. The client waits 1 s at most for the server to close after
 * its half-close (a kept-alive connection that MHD does not close is not a
 * finding: see below), so a request that never gets answered is not caught
 * here; FUZZ_HTTPD_SHOW=1 prints every answer and the count of those.
 * Sanitizer reports in the server's threads stop the run like any other. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"
#include "httpd.h"
#include "log.h"

#define FUZZ_BODY_CAP 4096
#define FUZZ_ANSWER_WAIT_MS 1000
#define FUZZ_FIRST_WAIT_MS 2

static struct httpd *server;
static int server_port;
static long unclosed; /* connections the server did not close in time */

static void *complete_later(void *arg)
{
    struct httpd_deferred *d = arg;
    struct httpd_response resp = {0};
    httpd_respond_json(&resp, 202, "{\"later\":true}");
    httpd_complete(&d, &resp); /* -1 when the client left: fine */
    return NULL;
}

static void handle(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    (void)ctx;
    size_t len = 0;
    const char *body = httpd_request_body(req, &len);
    const char *method = httpd_request_method(req), *path = httpd_request_path(req);
    FUZZ_CHECK(body && method && path);
    FUZZ_CHECK(len <= FUZZ_BODY_CAP && body[len] == '\0');
    (void)httpd_request_header(req, "Content-Type");
    (void)httpd_request_query(req, "a");

    if (strncmp(path, "/defer", 6) == 0 || strncmp(path, "/later", 6) == 0) {
        struct httpd_deferred *d = httpd_defer(req);
        if (d && path[1] == 'd') {
            struct httpd_response now = {0};
            httpd_respond_json(&now, 200, "{\"deferred\":true}");
            FUZZ_CHECK(httpd_complete(&d, &now) == 0);
            return;
        }
        if (d) {
            pthread_t t;
            pthread_attr_t attr;
            pthread_attr_init(&attr);
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            if (pthread_create(&t, &attr, complete_later, d) != 0)
                complete_later(d);
            pthread_attr_destroy(&attr);
            return;
        }
    }
    if (strncmp(path, "/error", 6) == 0) {
        httpd_respond_error(resp, 400, "invalid_argument", path, method);
        httpd_response_header(resp, "X-Path", "error");
        return;
    }
    char answer[64];
    snprintf(answer, sizeof answer, "{\"len\":%zu}", len);
    httpd_respond_json(resp, 200, answer);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_init("fuzz-httpd", LOG_ERROR);
    struct httpd_options opts = {
        .name = "fuzz",
        .bind = "127.0.0.1",
        .port = 0,
        .body_cap = FUZZ_BODY_CAP,
        .threads = 2,
        .handler = handle,
        .drain_ms = 100,
    };
    char errstr[256];
    server = httpd_start(&opts, errstr, sizeof errstr);
    if (!server) {
        fprintf(stderr, "fuzz: httpd_start: %s\n", errstr);
        abort();
    }
    server_port = httpd_port(server);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
    /* Each connection comes from another of 127.0.0.0/8's addresses: the
     * client closes first, so its side waits in TIME_WAIT, and a million
     * connections from one address would use up its ports. */
    static uint32_t next_source;
    uint32_t source = next_source++ % (254u * 254u);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000000u | (source / 254 + 1) << 8 | (source % 254 + 1));
    FUZZ_CHECK(bind(fd, (struct sockaddr *)&src, sizeof src) == 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)server_port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int err = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 ? 0 : errno;
    if (err == EINTR) {
        /* libFuzzer's timer signal: the connection goes on; wait for it. */
        struct pollfd w = {.fd = fd, .events = POLLOUT};
        socklen_t len = sizeof err;
        while (poll(&w, 1, FUZZ_ANSWER_WAIT_MS) < 0 && errno == EINTR)
            ;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
    }
    if (err != 0) {
        fprintf(stderr, "fuzz_httpd: connect: %s\n", strerror(err));
        abort();
    }

    /* The server may answer 413 and close before all is written. */
    size_t off = 0;
    while (off < size) {
        ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    /* Half-close only once the server has read the bytes: MHD 0.9.75 (epoll)
     * may miss a FIN that arrives in the same wake-up as the request, and
     * then holds a kept-alive connection until its idle timeout. An answer
     * shows it read them; an incomplete request gets FUZZ_FIRST_WAIT_MS. */
    struct pollfd first = {.fd = fd, .events = POLLIN};
    (void)poll(&first, 1, FUZZ_FIRST_WAIT_MS);
    shutdown(fd, SHUT_WR);

    char head[16];
    size_t got = 0;
    int64_t deadline = now_ms() + FUZZ_ANSWER_WAIT_MS;
    bool closed = false;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            closed = true; /* EOF, or a reset after the answer */
            break;
        }
        if (got < sizeof head) {
            size_t take = (size_t)n < sizeof head - got ? (size_t)n : sizeof head - got;
            memcpy(head + got, buf, take);
            got += take;
        }
    }
    if (!closed) {
        /* A reset, so that the server drops the connection now rather than
         * at its idle timeout. */
        struct linger now = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
    }
    close(fd);
    /* FUZZ_HTTPD_SHOW=1: print each answer's status line start (replaying seeds). */
    if (getenv("FUZZ_HTTPD_SHOW"))
        fprintf(stderr, "fuzz_httpd: %zu bytes in, answer \"%.*s\"%s (%ld unclosed so far)\n", size,
                (int)got, head, closed ? "" : " (no close)", unclosed);
    if (!closed)
        unclosed++;
    FUZZ_CHECK(got == 0 || (got >= 7 && memcmp(head, "HTTP/1.", 7) == 0));
    return 0;
}
