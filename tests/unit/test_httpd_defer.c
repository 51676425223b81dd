/* Unit tests for common/httpd's deferred answers (httpd_defer /
 * httpd_complete): a handler that parks its request and returns holds no
 * worker thread, the answer may come from any thread (or from the handler
 * itself before it returns), httpd_stop answers what is still parked with
 * 503, and a completion after the client left or the server stopped is
 * harmless. The server runs in this process on 127.0.0.1, port 0, with one
 * worker thread, so that anything blocking a worker would show. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
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

#define PARKED_MAX 256

static struct httpd *server;

/* Handles parked by the "/park" route, for the test to complete. */
static pthread_mutex_t parked_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t parked_cond = PTHREAD_COND_INITIALIZER;
static struct httpd_deferred *parked[PARKED_MAX];
static char parked_tag[PARKED_MAX][64];
static int nparked;
static atomic_int second_defer_was_null;
static atomic_int inline_ok;
static atomic_int handler_trouble;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A completer thread for "/later": answers after a short while. */
struct later {
    struct httpd_deferred *d;
    char tag[64];
};

static void *later_main(void *arg)
{
    struct later *l = arg;
    sleep_ms(50);
    struct httpd_response resp = {0};
    char body[128];
    snprintf(body, sizeof body, "{\"late\":\"%s\"}", l->tag);
    httpd_respond_json(&resp, 202, body);
    httpd_response_header(&resp, "X-Deferred", "yes");
    httpd_complete(&l->d, &resp);
    free(l);
    return NULL;
}

static void defer_handler(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    (void)ctx;
    const char *path = httpd_request_path(req);
    const char *tag = httpd_request_query(req, "tag");
    if (!tag)
        tag = "";
    if (strcmp(path, "/now") == 0) {
        httpd_respond_json(resp, 200, "{\"now\":true}");
        return;
    }
    struct httpd_deferred *d = httpd_defer(req);
    if (!d) {
        httpd_respond_error(resp, 503, "no_defer", "httpd_defer refused", NULL);
        return;
    }
    /* Whatever the handler leaves in resp after deferring is discarded. */
    httpd_respond_json(resp, 500, "{\"discarded\":true}");
    if (strcmp(path, "/twice") == 0) {
        atomic_store(&second_defer_was_null, httpd_defer(req) == NULL);
        struct httpd_response r = {0};
        httpd_respond_json(&r, 200, "{\"twice\":true}");
        httpd_complete(&d, &r);
    } else if (strcmp(path, "/inline") == 0) {
        struct httpd_response r = {0};
        httpd_respond_json(&r, 201, "{\"inline\":true}");
        int rc = httpd_complete(&d, &r);
        atomic_store(&inline_ok, rc == 0 && d == NULL && r.body == NULL);
    } else if (strcmp(path, "/later") == 0) {
        struct later *l = calloc(1, sizeof *l);
        pthread_t t;
        if (!l) {
            atomic_store(&handler_trouble, 1);
            return;
        }
        l->d = d;
        snprintf(l->tag, sizeof l->tag, "%s", tag);
        if (pthread_create(&t, NULL, later_main, l) != 0) {
            atomic_store(&handler_trouble, 1);
            return;
        }
        pthread_detach(t);
    } else {
        /* "/park": the test completes it. The tag is copied: req's strings
         * die when the handler returns. */
        pthread_mutex_lock(&parked_mu);
        if (nparked >= PARKED_MAX) {
            atomic_store(&handler_trouble, 1);
            pthread_mutex_unlock(&parked_mu);
            return;
        }
        parked[nparked] = d;
        snprintf(parked_tag[nparked], sizeof parked_tag[nparked], "%s", tag);
        nparked++;
        pthread_cond_broadcast(&parked_cond);
        pthread_mutex_unlock(&parked_mu);
    }
}

static struct httpd *server_start(int threads, int drain_ms)
{
    char err[256];
    struct httpd_options opts = {
        .name = "defer",
        .port = 0,
        .threads = threads,
        .handler = defer_handler,
        .drain_ms = drain_ms,
    };
    struct httpd *h = httpd_start(&opts, err, sizeof err);
    cr_assert_not_null(h, "httpd_start: %s", err);
    return h;
}

static void suite_setup(void)
{
    log_init("test", LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    nparked = 0;
    server = server_start(1, 300);
}

/* The last step of every test (a check in .fini decides no verdict): the
 * handler, on the server's threads, could not assert; it left a flag. */
static void handler_expect_untroubled(void)
{
    cr_expect_eq(atomic_load(&handler_trouble), 0, "the handler ran out of something");
}

static void suite_teardown(void)
{
    httpd_stop(&server);
    /* Handles a test left parked were answered 503 by the stop. */
    for (int i = 0; i < nparked; i++) {
        struct httpd_response r = {0};
        httpd_respond_json(&r, 200, "{}");
        httpd_complete(&parked[i], &r);
    }
    metrics_free_all();
    curl_global_cleanup();
}

TestSuite(httpd_defer, .init = suite_setup, .fini = suite_teardown, .timeout = 30);

/* Waits until at least n requests are parked. */
static void parked_wait(int n)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&parked_mu);
    while (nparked < n)
        if (pthread_cond_timedwait(&parked_cond, &parked_mu, &deadline) != 0)
            break;
    int have = nparked;
    pthread_mutex_unlock(&parked_mu);
    cr_assert_geq(have, n, "only %d of %d requests parked", have, n);
}

/* Completes parked request i with 200 and a body naming its tag. */
static int parked_complete(int i)
{
    struct httpd_response r = {0};
    char body[128];
    snprintf(body, sizeof body, "{\"tag\":\"%.63s\"}", parked_tag[i]);
    httpd_respond_json(&r, 200, body);
    return httpd_complete(&parked[i], &r);
}

/* --- clients -------------------------------------------------------------- */

struct http_result {
    long status;
    CURLcode rc;
    char body[4096];
    size_t body_len;
    char headers[4096];
    size_t headers_len;
};

static size_t collect(char *p, size_t n, char *buf, size_t cap, size_t *len)
{
    size_t room = cap - 1 - *len;
    size_t take = n < room ? n : room;
    memcpy(buf + *len, p, take);
    *len += take;
    buf[*len] = '\0';
    return n;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct http_result *r = ud;
    return collect(p, size * n, r->body, sizeof r->body, &r->body_len);
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct http_result *r = ud;
    return collect(p, size * n, r->headers, sizeof r->headers, &r->headers_len);
}

/* Not asserting: also runs on client threads. */
static void http_get_into(int port, const char *path, struct http_result *r)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *curl = curl_easy_init();
    if (!curl) {
        r->rc = CURLE_FAILED_INIT;
        return;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    r->rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(curl);
}

static bool has_header(const struct http_result *r, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = r->headers; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "")
        if (strncasecmp(p, line, n) == 0)
            return true;
    return false;
}

struct client {
    pthread_t thread;
    int port;
    char path[128];
    struct http_result r;
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    http_get_into(c->port, c->path, &c->r);
    return NULL;
}

static void client_start(struct client *c, int port, const char *path)
{
    memset(c, 0, sizeof *c);
    c->port = port;
    snprintf(c->path, sizeof c->path, "%s", path);
    cr_assert_eq(pthread_create(&c->thread, NULL, client_main, c), 0);
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

static void raw_send_all(int fd, const char *s)
{
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        cr_assert_gt(n, 0, "send: %s", strerror(errno));
        s += n;
        len -= (size_t)n;
    }
}

/* Reads one response whose body ends with '}' (all of this suite's do). */
static int raw_read_json_response(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (len + 1 < cap && poll(&p, 1, 5000) > 0) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        const char *body = strstr(buf, "\r\n\r\n");
        if (body && len > 0 && buf[len - 1] == '}')
            break;
    }
    int status = -1;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
        return -1;
    return status;
}

static void expect_healthy(void)
{
    struct http_result r = {0};
    http_get_into(httpd_port(server), "/now", &r);
    cr_assert_eq(r.status, 200, "server no longer answers");
}

/* --- answers from elsewhere ------------------------------------------------ */

Test(httpd_defer, answer_from_another_thread_is_sent_with_its_headers)
{
    struct http_result r = {0};
    http_get_into(httpd_port(server), "/later?tag=a1", &r);
    cr_assert_eq(r.rc, CURLE_OK, "%s", curl_easy_strerror(r.rc));
    cr_expect_eq(r.status, 202);
    cr_expect_str_eq(r.body, "{\"late\":\"a1\"}");
    cr_expect(has_header(&r, "x-deferred: yes"), "%s", r.headers);
    cr_expect(has_header(&r, "content-type: application/json"), "%s", r.headers);
    handler_expect_untroubled();
}

Test(httpd_defer, answer_given_before_the_handler_returns_is_sent_at_once)
{
    struct http_result r = {0};
    http_get_into(httpd_port(server), "/inline", &r);
    cr_expect(atomic_load(&inline_ok), "httpd_complete in the handler: not 0, or kept something");
    cr_expect_eq(r.status, 201);
    cr_expect_str_eq(r.body, "{\"inline\":true}");
    handler_expect_untroubled();
}

Test(httpd_defer, a_second_defer_of_the_same_request_is_refused)
{
    struct http_result r = {0};
    http_get_into(httpd_port(server), "/twice", &r);
    cr_expect_eq(r.status, 200);
    cr_expect(atomic_load(&second_defer_was_null));
    handler_expect_untroubled();
}

Test(httpd_defer, parked_request_holds_no_worker_thread)
{
    /* One worker thread: with a request parked, others still get answers. */
    struct client c;
    client_start(&c, httpd_port(server), "/park?tag=p");
    parked_wait(1);
    for (int i = 0; i < 5; i++)
        expect_healthy();
    cr_assert_eq(parked_complete(0), 0);
    pthread_join(c.thread, NULL);
    cr_expect_eq(c.r.status, 200);
    cr_expect_str_eq(c.r.body, "{\"tag\":\"p\"}");
    handler_expect_untroubled();
}

Test(httpd_defer, many_concurrent_deferred_requests_get_their_own_answers)
{
    enum { N = 64 };
    static struct client clients[N];
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "/park?tag=c%d", i);
        client_start(&clients[i], httpd_port(server), path);
    }
    parked_wait(N);
    /* Answer in reverse order of arrival, from this thread and a helper. */
    for (int i = N - 1; i >= 0; i--)
        cr_assert_eq(parked_complete(i), 0);
    for (int i = 0; i < N; i++) {
        pthread_join(clients[i].thread, NULL);
        char want[64];
        snprintf(want, sizeof want, "{\"tag\":\"%s\"}", clients[i].path + strlen("/park?tag="));
        cr_expect_eq(clients[i].r.status, 200, "client %d: %ld", i, clients[i].r.status);
        cr_expect_str_eq(clients[i].r.body, want, "client %d", i);
    }
    size_t len = 0;
    char *metrics = metrics_render(&len);
    cr_assert_not_null(metrics);
    cr_expect(strstr(metrics, "kizuna_http_requests_total{server=\"defer\",status=\"200\"} 64\n"),
              "%s", metrics);
    free(metrics);
    handler_expect_untroubled();
}

Test(httpd_defer, deferred_requests_on_one_keep_alive_connection_follow_each_other)
{
    int fd = raw_connect(httpd_port(server));
    char buf[2048];
    for (int i = 0; i < 3; i++) {
        char req[128];
        snprintf(req, sizeof req, "GET /park?tag=k%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
        raw_send_all(fd, req);
        parked_wait(i + 1);
        cr_assert_eq(parked_complete(i), 0);
        cr_assert_eq(raw_read_json_response(fd, buf, sizeof buf), 200, "%s", buf);
        char want[32];
        snprintf(want, sizeof want, "{\"tag\":\"k%d\"}", i);
        cr_expect(strstr(buf, want) != NULL, "%s", buf);
    }
    close(fd);
    handler_expect_untroubled();
}

Test(httpd_defer, drop_in_a_deferred_answer_closes_without_an_answer)
{
    int fd = raw_connect(httpd_port(server));
    raw_send_all(fd, "GET /park?tag=d HTTP/1.1\r\nHost: x\r\n\r\n");
    parked_wait(1);
    struct httpd_response r = {0};
    httpd_respond_json(&r, 503, "{}");
    r.drop = true;
    cr_assert_eq(httpd_complete(&parked[0], &r), 0);
    char buf[256];
    cr_expect_eq(raw_read_json_response(fd, buf, sizeof buf), -1, "%s", buf);
    close(fd);
    expect_healthy();
    handler_expect_untroubled();
}

/* --- the client leaves, the server stops ------------------------------------ */

Test(httpd_defer, completion_after_the_client_left_is_harmless)
{
    int fd = raw_connect(httpd_port(server));
    raw_send_all(fd, "GET /park?tag=gone HTTP/1.1\r\nHost: x\r\n\r\n");
    parked_wait(1);
    close(fd);
    sleep_ms(50);
    /* MHD does not watch a suspended connection: the answer is queued and
     * the write then fails; nothing leaks (the sanitizer build checks). */
    cr_expect_eq(parked_complete(0), 0);
    sleep_ms(50);
    expect_healthy();
    handler_expect_untroubled();
}

Test(httpd_defer, stop_answers_503_to_parked_requests_and_refuses_new_deferrals)
{
    struct client c[3];
    for (int i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof path, "/park?tag=s%d", i);
        client_start(&c[i], httpd_port(server), path);
    }
    parked_wait(3);
    /* s1 is answered during the drain: it gets its own answer. */
    int s1 = 0;
    while (s1 < 3 && strcmp(parked_tag[s1], "s1") != 0)
        s1++;
    cr_assert_lt(s1, 3);
    pthread_t t;
    struct later *l = calloc(1, sizeof *l);
    cr_assert_not_null(l);
    l->d = parked[s1];
    parked[s1] = NULL;
    snprintf(l->tag, sizeof l->tag, "s1");
    cr_assert_eq(pthread_create(&t, NULL, later_main, l), 0);

    httpd_stop(&server);
    cr_assert_null(server);
    pthread_join(t, NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(c[i].thread, NULL);
    cr_expect_eq(c[1].r.status, 202, "answered during the drain: %ld", c[1].r.status);
    for (int i = 0; i < 3; i += 2) {
        cr_expect_eq(c[i].r.status, 503, "client %d: %ld %s", i, c[i].r.status, c[i].r.body);
        cr_expect(strstr(c[i].r.body, "\"code\":\"shutting_down\"") != NULL, "%s", c[i].r.body);
        cr_expect(has_header(&c[i].r, "retry-after: 1"), "%s", c[i].r.headers);
    }
    /* The handles outlive the server: completing them now is refused. */
    for (int i = 0; i < 3; i++) {
        if (i == s1)
            continue;
        cr_expect_eq(parked_complete(i), -1);
        cr_expect_null(parked[i]);
    }
    handler_expect_untroubled();
}

Test(httpd_defer, stop_waits_for_a_deferred_answer_within_the_drain)
{
    struct client c;
    client_start(&c, httpd_port(server), "/later?tag=drain");
    sleep_ms(20); /* parked; its answer comes 50 ms after the handler ran */
    httpd_stop(&server);
    pthread_join(c.thread, NULL);
    cr_expect_eq(c.r.status, 202);
    cr_expect_str_eq(c.r.body, "{\"late\":\"drain\"}");
    handler_expect_untroubled();
}

Test(httpd_defer, complete_without_a_handle_frees_the_response)
{
    struct httpd_deferred *none = NULL;
    struct httpd_response r = {0};
    httpd_respond_json(&r, 200, "{\"x\":1}");
    cr_expect_eq(httpd_complete(&none, &r), -1);
    cr_expect_null(r.body);
    cr_expect_eq(httpd_complete(NULL, NULL), -1);
    handler_expect_untroubled();
}

struct bad_options_case {
    const char *what;
    struct httpd_options opts;
};

static const struct bad_options_case bad_options_cases[] = {
    {"negative drain", {.name = "bad", .drain_ms = -1}},
    {"drain over a minute", {.name = "bad", .drain_ms = 60001}},
    {"negative connection limit", {.name = "bad", .max_connections = -1}},
    {"connection limit too large", {.name = "bad", .max_connections = 1 << 20}},
};

Test(httpd_defer, start_refuses_bad_drain_and_connection_options)
{
    for (size_t i = 0; i < sizeof bad_options_cases / sizeof bad_options_cases[0]; i++) {
        char err[256] = "";
        struct httpd *h = httpd_start(&bad_options_cases[i].opts, err, sizeof err);
        cr_expect_null(h, "%s: started", bad_options_cases[i].what);
        httpd_stop(&h);
        cr_expect_neq(err[0], '\0', "%s: no error text", bad_options_cases[i].what);
    }
    handler_expect_untroubled();
}
