/* Unit tests for common/httpd's wipe_bodies: a server whose request bodies
 * may carry secrets (the admin APIs) wipes every body buffer before freeing
 * it, including the buffers left behind when a chunked body grows. The
 * server's body_freed hook sees each buffer just before free; the same
 * requests to a server without wipe_bodies show the secret still there, so
 * the check can fail. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "metrics.h"

#define SECRET "channel-secret-0123456789abcdef"

/* What the hook saw, over every buffer freed since the last reset. */
struct freed {
    pthread_mutex_t mu;
    int buffers;
    int with_secret; /* buffers in which SECRET still appears */
    size_t nonzero;  /* bytes not zero, over all buffers */
};

static struct freed freed = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void on_body_freed(void *ctx, const char *buf, size_t alloc)
{
    (void)ctx;
    size_t nonzero = 0;
    for (size_t i = 0; i < alloc; i++)
        nonzero += buf[i] != 0;
    bool secret = memmem(buf, alloc, SECRET, strlen(SECRET)) != NULL;
    pthread_mutex_lock(&freed.mu);
    freed.buffers++;
    freed.with_secret += secret;
    freed.nonzero += nonzero;
    pthread_mutex_unlock(&freed.mu);
}

static void ok_handler(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
    (void)ctx;
    size_t len = 0;
    const char *body = httpd_request_body(req, &len);
    /* The handler saw the whole body before it was wiped. */
    httpd_respond_json(resp, memmem(body, len, SECRET, strlen(SECRET)) ? 200 : 400, "{}");
}

static struct httpd *server_start(bool wipe)
{
    char err[256];
    struct httpd_options opts = {
        .name = wipe ? "wipe" : "nowipe",
        .port = 0,
        .threads = 2,
        .handler = ok_handler,
        .wipe_bodies = wipe,
        .body_freed = on_body_freed,
    };
    struct httpd *h = httpd_start(&opts, err, sizeof err);
    cr_assert_not_null(h, "%s", err);
    return h;
}

struct upload {
    const char *data;
    size_t len, off;
};

/* Hands the body over in pieces of at most 1000 bytes. */
static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
    struct upload *u = ud;
    size_t take = size * n;
    if (take > 1000)
        take = 1000;
    if (take > u->len - u->off)
        take = u->len - u->off;
    memcpy(buf, u->data + u->off, take);
    u->off += take;
    return take;
}

static size_t on_discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* POSTs body to the server: with a Content-Length, or chunked (the body
 * then grows from a small first buffer). Returns the status. */
static long post(struct httpd *h, const char *body, size_t len, bool chunked)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/channels", httpd_port(h));
    struct upload up = {body, len, 0};
    CURL *curl = curl_easy_init();
    cr_assert_not_null(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "POST");
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &up);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_discard);
    if (!chunked)
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    CURLcode rc = curl_easy_perform(curl);
    cr_assert_eq(rc, CURLE_OK, "%s", curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    return status;
}

/* A body of len bytes with SECRET at its start and end. */
static char *body_make(size_t len)
{
    char *b = malloc(len);
    cr_assert_not_null(b);
    memset(b, 'x', len);
    memcpy(b, SECRET, strlen(SECRET));
    memcpy(b + len - strlen(SECRET), SECRET, strlen(SECRET));
    return b;
}

/* Runs the three shapes of body against one server and returns what the
 * hook saw: after httpd_stop every request has ended and been freed. */
static struct freed run(bool wipe)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct httpd *h = server_start(wipe);
    const struct {
        size_t len;
        bool chunked;
    } shapes[] = {
        {200, false},   /* one buffer, sized by Content-Length */
        {200, true},    /* one buffer, chunked */
        {20000, true},  /* grown from 4 KiB three times */
        {100000, false} /* a first buffer of 64 KiB, grown once */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        char *b = body_make(shapes[i].len);
        cr_expect_eq(post(h, b, shapes[i].len, shapes[i].chunked), 200, "shape %zu", i);
        free(b);
    }
    httpd_stop(&h);
    metrics_free_all();
    curl_global_cleanup();
    pthread_mutex_lock(&freed.mu);
    struct freed seen = freed;
    pthread_mutex_unlock(&freed.mu);
    return seen;
}

Test(httpd_wipe, bodies_are_wiped_before_they_are_freed)
{
    struct freed seen = run(true);
    /* Four final buffers and at least three left behind by growth. */
    cr_expect_geq(seen.buffers, 7, "buffers freed: %d", seen.buffers);
    cr_expect_eq(seen.with_secret, 0, "%d freed buffers still hold the secret", seen.with_secret);
    cr_expect_eq(seen.nonzero, 0, "%zu bytes left unwiped", seen.nonzero);
}

/* The control: without wipe_bodies the same hook finds the secret, so the
 * test above is not passing by accident. */
Test(httpd_wipe, without_wipe_bodies_the_secret_stays_in_freed_buffers)
{
    struct freed seen = run(false);
    cr_expect_geq(seen.buffers, 7, "buffers freed: %d", seen.buffers);
    cr_expect_gt(seen.with_secret, 0);
    cr_expect_gt(seen.nonzero, 0);
}
