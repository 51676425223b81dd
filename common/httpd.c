/* The HTTP server every service uses, on libmicrohttpd (MHD) 0.9.75, which
 * only httpd*.c include (httpd_private.h). What it adds to MHD:
 * - routing before the body: the service's route callback sees method, path
 *   and headers and may answer at once (404, 405...), and a Content-Length
 *   over the cap gets 413, all before a byte of the body is read;
 * - a body cap and a byte budget. Bodies are buffered up to the cap, and
 *   all bodies of a server together up to the budget (httpd_guard.h); a
 *   declared length takes its share of the budget before the body is read
 *   (503 when it does not fit). A chunked upload is counted as it arrives;
 *   MHD 0.9.75 refuses to queue a response while upload data is being
 *   delivered (see the access handler comment in microhttpd.h), and
 *   returning MHD_NO alone closes the connection with no answer at all. So
 *   once the cap or the budget is passed we write a small, complete answer
 *   on the socket ourselves, shut down our side, and return MHD_NO so that
 *   MHD closes the connection without reading more. Closing a socket with
 *   unread input makes the kernel send a reset, which can reach a client
 *   still uploading before it has read the answer (curl then reports
 *   "connection reset" and never sees the status). So that path keeps a
 *   duplicate of the socket and lingers (httpd_socket_answer): a
 *   short-lived thread reads and discards what the client still sends, for
 *   a bounded time and size, until the client closes, and only then closes
 *   it. MHD's own close of its descriptor does not end the socket while the
 *   duplicate is open (MHD removes it from its epoll set first), and the
 *   lingering thread never touches MHD;
 * - a deadline for the whole request, not only MHD's idle timeout: a
 *   connection's clock starts when it opens, when a request line arrives
 *   (MHD's URI callback) and when a request ends; until the server has the
 *   whole request the watch (httpd_guard.h) may cut it, and a body still
 *   arriving late is answered 408. A request being handled or deferred is
 *   never cut. MHD's idle timeout is never longer than the deadline: MHD
 *   0.9.75 leaves a connection whose client went away mid-body (or that the
 *   watch shut down then) to that timeout;
 * - connection limits: in total, and per client address (MHD's own
 *   per-IP limit, which closes the extra connection at once);
 * - the built-in /healthz, /readyz and (where asked for) /metrics routes,
 *   request metrics, and the project's JSON error form;
 * - deferred answers (httpd_defer / httpd_complete), on MHD's suspend and
 *   resume: the handler suspends its connection and returns; whoever
 *   completes stores the answer and resumes it; MHD then calls the access
 *   handler once more (upload_data_size 0), which queues the stored answer.
 *   A suspended connection is never closed or timed out by MHD, so the
 *   connection is alive for as long as the handle can resume it. The one
 *   exception is MHD_stop_daemon, which must not run while any connection
 *   is suspended: httpd_stop first answers every deferred request itself;
 * - streamed answers (httpd_respond_stream) on MHD's callback responses:
 *   MHD asks the source for the next block only when the connection can
 *   take it, and frees the source when the response ends, however it ends;
 * - a drain on stop: quiesce, wait a bounded time for in-flight requests,
 *   answer the deferred ones still open with 503, then stop;
 * - for servers whose bodies carry secrets (wipe_bodies: the admin APIs),
 *   every body buffer wiped before it is freed. */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "crypto.h"
#include "httpd_guard.h"
#include "httpd_private.h"
#include "log.h"
#include "metrics.h"

#define HTTPD_DEFAULT_BODY_CAP ((size_t)1 << 20)
#define HTTPD_DEFAULT_THREADS 2
#define HTTPD_MAX_THREADS 64
#define HTTPD_MAX_PATH 8192
/* A connection that moves no byte for this long is closed (MHD's idle
 * timeout), or for the request deadline if that is shorter. */
#define HTTPD_CONNECTION_TIMEOUT_S 30u
#define HTTPD_CONNECTION_LIMIT 1000
#define HTTPD_MAX_CONNECTIONS 65536
/* The bytes of request bodies a server holds at once, unless told. */
#define HTTPD_DEFAULT_BODY_BUDGET ((size_t)64 << 20)
/* From a connection's start or its previous request's end until the request
 * is read whole, unless told; and the most that can be asked for. */
#define HTTPD_DEADLINE_MS 30000
#define HTTPD_DEADLINE_MAX_MS 600000
/* httpd_stop waits this long for in-flight requests; services must exit
 * within 10 s of SIGTERM and have other things to drain. */
#define HTTPD_DRAIN_MS 5000
#define HTTPD_DRAIN_MAX_MS 60000
/* After the deferred requests got their 503, the wait for it to be sent. */
#define HTTPD_CANCEL_MS 1000
/* The first body allocation; a declared length is not trusted further. */
#define HTTPD_BODY_INITIAL ((size_t)64 << 10)

#define HTTPD_JSON "application/json"
#define HTTPD_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

static const char *const httpd_methods[] = {"GET",    "POST", "PUT",    "PATCH",
                                            "DELETE", "HEAD", "OPTIONS"};

static const double httpd_duration_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};

/* --- request accessors -------------------------------------------------- */

const char *httpd_request_method(const struct httpd_request *req)
{
    return req->method;
}

const char *httpd_request_path(const struct httpd_request *req)
{
    return req->path;
}

const char *httpd_request_header(const struct httpd_request *req, const char *name)
{
    /* MHD compares header names case-insensitively. */
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *httpd_request_query(const struct httpd_request *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *httpd_request_body(const struct httpd_request *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body ? req->body : "";
}

/* --- serving ------------------------------------------------------------ */

static double seconds_since(int64_t start_ns)
{
    return (double)(clock_mono_ns() - start_ns) / 1e9;
}

/* Counted when the answer is decided, so a client that reads its response
 * and then asks /metrics sees itself counted. */
static void request_count(struct httpd_request *req, int status)
{
    char code[16];
    req->status = status;
    snprintf(code, sizeof code, "%d", status);
    metrics_add(req->h->requests, 1, req->h->name, code);
    metrics_observe(req->h->duration, seconds_since(req->start_ns), req->h->name);
    log_debug("http request", "server", req->h->name, "method", req->method, "path", req->path,
              "status", code);
}

/* A streamed body (httpd_respond_stream) as MHD sees it: MHD calls
 * stream_read when the connection can take more (so never faster than the
 * client reads), and stream_free once, when it destroys the response: sent,
 * cut, or its connection closed (a client gone, the idle timeout, the
 * daemon stopping). */
struct httpd_stream {
    httpd_stream_read_fn read;
    httpd_stream_free_fn free_fn;
    void *ctx;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct httpd_stream *st = cls;
    (void)pos;
    if (max == 0)
        return 0;
    long n = st->read(st->ctx, buf, max);
    if (n == HTTPD_STREAM_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n <= 0 || (size_t)n > max) /* an error, or a source that broke its contract */
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct httpd_stream *st = cls;
    if (st->free_fn)
        st->free_fn(st->ctx);
    free(st);
}

/* The MHD response for resp's stream, which it takes from resp (its free
 * runs now if that fails). */
static struct MHD_Response *stream_response(struct httpd_response *resp)
{
    struct httpd_stream *st = malloc(sizeof *st);
    if (st) {
        st->read = resp->stream_read;
        st->free_fn = resp->stream_free;
        st->ctx = resp->stream_ctx;
        resp->stream_read = NULL;
        resp->stream_free = NULL;
        resp->stream_ctx = NULL;
    } else {
        return NULL; /* httpd_response_clear frees the source */
    }
    struct MHD_Response *mr = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, HTTPD_STREAM_BLOCK, stream_read, st, stream_free);
    if (!mr)
        stream_free(st);
    return mr;
}

/* Hands resp (body and headers) to MHD and clears it. */
static enum MHD_Result request_queue(struct httpd_request *req, struct httpd_response *resp)
{
    struct MHD_Response *mr;
    if (resp->stream_read) {
        mr = stream_response(resp);
    } else if (resp->body_len > 0) {
        mr = MHD_create_response_from_buffer_with_free_callback(resp->body_len, resp->body, free);
        if (mr)
            resp->body = NULL; /* MHD owns it now */
    } else {
        mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!mr) {
        httpd_response_clear(resp);
        log_error("http response creation failed", "server", req->h->name);
        return MHD_NO;
    }
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type ? resp->content_type : HTTPD_JSON);
    for (int i = 0; i < resp->nheaders && i < HTTPD_MAX_HEADERS; i++) {
        /* MHD refuses names and values with CR or LF: no header injection. */
        if (MHD_add_response_header(mr, resp->header_names[i], resp->header_values[i]) != MHD_YES)
            log_warn("http response header refused", "server", req->h->name, "header",
                     resp->header_names[i]);
    }
    httpd_conn_phase(req->sock, HTTPD_PHASE_BUSY);
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned int)resp->status, mr);
    MHD_destroy_response(mr);
    request_count(req, resp->status);
    httpd_response_clear(resp);
    return ret;
}

enum MHD_Result httpd_request_error(struct httpd_request *req, int status, const char *code,
                                    const char *message)
{
    struct httpd_response resp = {0};
    httpd_respond_error(&resp, status, code, message, NULL);
    return request_queue(req, &resp);
}

static enum MHD_Result request_builtin(struct httpd_request *req)
{
    struct httpd *h = req->h;
    struct httpd_response resp = {0};
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        httpd_respond_error(&resp, 405, "method_not_allowed", "use GET", NULL);
        httpd_response_header(&resp, "Allow", "GET, HEAD");
        return request_queue(req, &resp);
    }
    if (strcmp(req->path, "/healthz") == 0) {
        httpd_respond_json(&resp, 200, "{\"status\":\"ok\"}");
    } else if (strcmp(req->path, "/readyz") == 0) {
        if (!h->ready || h->ready(h->ready_ctx))
            httpd_respond_json(&resp, 200, "{\"status\":\"ready\"}");
        else
            httpd_respond_json(&resp, 503, "{\"status\":\"not ready\"}");
    } else {
        size_t len = 0;
        char *text = metrics_render(&len);
        if (!text)
            return httpd_request_error(req, 500, "internal", "metrics rendering failed");
        /* Take the rendered buffer as the body without copying it. */
        resp.status = 200;
        resp.content_type = HTTPD_METRICS_TYPE;
        resp.body = text;
        resp.body_len = len;
    }
    return request_queue(req, &resp);
}

static bool path_is_builtin(const struct httpd *h, const char *path)
{
    return strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
           (h->metrics && strcmp(path, "/metrics") == 0);
}

/* The declared body length, or -1 when there is none or it is chunked. */
static long long request_declared_length(struct httpd_request *req)
{
    if (MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        return -1;
    const char *cl =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl)
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(cl, &end, 10);
    /* MHD already rejected a malformed header; saturate what is left. */
    if (end == cl || v < 0)
        return -1;
    if (errno == ERANGE)
        return LLONG_MAX;
    return v;
}

/* Frees a body buffer of alloc bytes, wiped first when the server's bodies
 * may carry secrets. */
static void body_buffer_free(struct httpd *h, char *buf, size_t alloc)
{
    if (!buf)
        return;
    if (h->wipe_bodies)
        crypto_wipe(buf, alloc);
    if (h->body_freed)
        h->body_freed(h->ctx, buf, alloc);
    free(buf);
}

/* realloc, except that a server wiping its bodies copies, so that the old
 * buffer is wiped and not left in freed memory with the secret in it. */
static char *body_buffer_grow(struct httpd *h, char *buf, size_t len, size_t alloc, size_t want)
{
    if (!h->wipe_bodies && !h->body_freed)
        return realloc(buf, want);
    char *grown = malloc(want);
    if (!grown)
        return NULL;
    if (buf)
        memcpy(grown, buf, len + 1);
    body_buffer_free(h, buf, alloc);
    return grown;
}

/* Frees the body and gives its share of the budget back. */
static void request_body_release(struct httpd_request *req)
{
    body_buffer_free(req->h, req->body, req->body_alloc);
    req->body = NULL;
    req->body_len = 0;
    req->body_alloc = 0;
    httpd_budget_give(&req->h->budget, req->reserved);
    req->reserved = 0;
}

/* 503 for a body the budget cannot hold now: the client may retry soon,
 * when other requests have given their share back. */
static void request_refuse_busy(struct httpd_request *req)
{
    metrics_add(req->h->refused, 1, req->h->name, "budget");
    log_info("http request refused: request bodies over the byte budget", "server", req->h->name,
             "path", req->path);
}

/* First call, headers only: everything that can be refused without the
 * body is refused here, and MHD then closes instead of reading the body.
 * A declared body takes its share of the budget now, so that a body that
 * cannot be held is refused before it is sent. */
static enum MHD_Result request_begin(struct httpd_request *req)
{
    struct httpd *h = req->h;
    bool known = false;
    for (size_t i = 0; i < sizeof httpd_methods / sizeof httpd_methods[0]; i++)
        known = known || strcmp(req->method, httpd_methods[i]) == 0;
    if (!known)
        return httpd_request_error(req, 501, "method_not_implemented", "method not supported");
    if (strlen(req->path) > HTTPD_MAX_PATH)
        return httpd_request_error(req, 414, "uri_too_long", "path over 8192 bytes");
    if (path_is_builtin(h, req->path))
        return request_builtin(req);
    if (h->route) {
        struct httpd_response resp = {0};
        if (!h->route(h->ctx, req, &resp))
            return httpd_request_answer(req, &resp);
        httpd_response_clear(&resp);
    }
    req->declared = request_declared_length(req);
    if (req->declared >= 0 && (unsigned long long)req->declared > h->body_cap)
        return httpd_request_error(req, 413, "body_too_large", "request body over the size cap");
    if (!h->handler)
        return httpd_request_error(req, 404, "not_found", "no such route");
    if (req->declared > 0) {
        size_t full = (size_t)req->declared + 1;
        if (!httpd_budget_take(&h->budget, full)) {
            request_refuse_busy(req);
            struct httpd_response resp = {0};
            httpd_respond_error(&resp, 503, "busy", "too many request bodies at once; retry later",
                                NULL);
            httpd_response_header(&resp, "Retry-After", "1");
            return request_queue(req, &resp);
        }
        req->reserved = full;
        size_t want = full < HTTPD_BODY_INITIAL + 1 ? full : HTTPD_BODY_INITIAL + 1;
        req->body = malloc(want);
        if (!req->body) {
            request_body_release(req);
            return httpd_request_error(req, 503, "unavailable", "out of memory");
        }
        req->body_alloc = want;
        req->body[0] = '\0';
    }
    return MHD_YES;
}

/* MHD 0.9.75 cannot queue a response here (see the top of the file), so
 * the answer goes out on the socket directly. Nothing else has been written
 * on this connection for this request: 100 Continue, if any, was sent
 * before the body started. Returning MHD_NO makes MHD close the connection. */
static enum MHD_Result request_reject_upload(struct httpd_request *req, int status,
                                             const char *code, const char *message)
{
    struct httpd *h = req->h;
    struct httpd_response resp = {0};
    char head[320];
    httpd_respond_error(&resp, status, code, message, NULL);
    const char *reason = MHD_get_reason_phrase_for((unsigned int)status);
    int hlen = snprintf(head, sizeof head,
                        "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: " HTTPD_JSON
                        "\r\n%sContent-Length: %zu\r\n\r\n",
                        status, reason && *reason ? reason : "Error",
                        status == 503 ? "Retry-After: 1\r\n" : "", resp.body_len);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info && hlen > 0 && (size_t)hlen < sizeof head && resp.body) {
        char *msg = malloc((size_t)hlen + resp.body_len);
        if (msg) {
            memcpy(msg, head, (size_t)hlen);
            memcpy(msg + hlen, resp.body, resp.body_len);
            httpd_socket_answer(info->connect_fd, msg, (size_t)hlen + resp.body_len);
            free(msg);
        }
    }
    httpd_response_clear(&resp);
    request_count(req, status);
    log_info("http request refused while its body arrived", "server", h->name, "path", req->path,
             "code", code);
    request_body_release(req);
    return MHD_NO;
}

static enum MHD_Result request_body(struct httpd_request *req, const char *data, size_t *size)
{
    struct httpd *h = req->h;
    size_t n = *size;
    if (httpd_conn_late(h->watch, req->sock))
        return request_reject_upload(req, 408, "request_timeout",
                                     "the request was not received within the deadline");
    if (n > h->body_cap - req->body_len)
        return request_reject_upload(req, 413, "body_too_large", "request body over the size cap");
    if (req->body_len + n + 1 > req->body_alloc) {
        size_t want = req->body_alloc ? req->body_alloc * 2 : 4096;
        if (want < req->body_len + n + 1)
            want = req->body_len + n + 1;
        if (want > h->body_cap + 1)
            want = h->body_cap + 1;
        /* A declared body never grows past its declared length (MHD hands
         * over no more), which its share of the budget covers already. */
        if (req->declared >= 0 && want > (size_t)req->declared + 1)
            want = (size_t)req->declared + 1;
        if (want > req->reserved) {
            if (!httpd_budget_take(&h->budget, want - req->reserved)) {
                request_refuse_busy(req);
                return request_reject_upload(req, 503, "busy",
                                             "too many request bodies at once; retry later");
            }
            req->reserved = want;
        }
        char *grown = body_buffer_grow(h, req->body, req->body_len, req->body_alloc, want);
        if (!grown) {
            log_error("http request body allocation failed", "server", h->name);
            return MHD_NO;
        }
        req->body = grown;
        req->body_alloc = want;
    }
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
    req->body[req->body_len] = '\0';
    *size = 0;
    return MHD_YES;
}

/* Sends the handler's answer, given now or through httpd_complete. */
enum MHD_Result httpd_request_answer(struct httpd_request *req, struct httpd_response *resp)
{
    struct httpd *h = req->h;
    if (resp->drop) {
        /* Fault injection: MHD closes the connection without an answer. */
        httpd_response_clear(resp);
        req->status = -1;
        return MHD_NO;
    }
    if (resp->status < 100 || resp->status > 599) {
        log_error("http handler left no valid status", "server", h->name, "path", req->path);
        httpd_response_clear(resp);
        httpd_respond_error(resp, 500, "internal", "internal error", NULL);
    }
    return request_queue(req, resp);
}

static enum MHD_Result request_finish(struct httpd_request *req)
{
    struct httpd *h = req->h;
    struct httpd_response resp = {0};
    /* The whole request is in: no deadline while it is handled or waits
     * for a deferred answer. */
    httpd_conn_phase(req->sock, HTTPD_PHASE_BUSY);
    h->handler(h->ctx, req, &resp);
    /* The handler copied what it needs: the body's share of the budget is
     * free for others while a deferred answer waits. */
    request_body_release(req);
    if (req->deferred) {
        httpd_response_clear(&resp); /* the answer comes through httpd_complete */
        return httpd_request_park(req);
    }
    return httpd_request_answer(req, &resp);
}

/* The watch's entry for the connection (httpd_connection_notify). */
static struct httpd_conn *connection_watched(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

static enum MHD_Result httpd_access(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    struct httpd *h = cls;
    struct httpd_request *req = *con_cls;
    (void)version;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        req->h = h;
        req->conn = conn;
        req->sock = connection_watched(conn);
        req->method = method;
        req->path = url;
        req->declared = -1;
        req->start_ns = clock_mono_ns();
        *con_cls = req;
        atomic_fetch_add(&h->inflight, 1);
        return request_begin(req);
    }
    if (req->status)
        return MHD_NO; /* already answered; MHD should not call again */
    if (req->deferred)
        return httpd_request_resumed(req);
    if (*upload_data_size > 0)
        return request_body(req, upload_data, upload_data_size);
    return request_finish(req);
}

static void httpd_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                            enum MHD_RequestTerminationCode code)
{
    struct httpd *h = cls;
    struct httpd_request *req = *con_cls;
    (void)code;
    /* A kept-alive connection's clock starts again for the next request. */
    httpd_conn_phase(connection_watched(conn), HTTPD_PHASE_IDLE);
    if (!req)
        return;
    if (req->deferred)
        httpd_request_deferred_end(h, req->deferred);
    request_body_release(req);
    free(req);
    *con_cls = NULL;
    atomic_fetch_sub(&h->inflight, 1);
}

/* A request line arrived: the request's clock starts. Returns the initial
 * con_cls, which stays NULL (httpd_access allocates on its first call). */
static void *httpd_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)uri;
    httpd_conn_phase(connection_watched(conn), HTTPD_PHASE_RECEIVING);
    return NULL;
}

/* Lists each connection with the watch while it is open. MHD reports the
 * close before it closes the socket, so the watch never sees a reused one. */
static void httpd_connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                                    enum MHD_ConnectionNotificationCode toe)
{
    struct httpd *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = info ? httpd_watch_add(h->watch, info->connect_fd) : NULL;
        return;
    }
    struct httpd_conn *c = *socket_context;
    httpd_watch_remove(h->watch, &c);
    *socket_context = NULL;
}

__attribute__((format(printf, 2, 0))) static void httpd_mhd_log(void *cls, const char *fmt,
                                                                va_list ap)
{
    struct httpd *h = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    enum log_level level = LOG_WARN;
    if (strncmp(msg, "Application reported internal error", 35) == 0) {
        /* Our own MHD_NO after an early answer makes MHD say this. */
        level = LOG_DEBUG;
    } else if (strncmp(msg, "Server reached connection limit", 31) == 0) {
        /* MHD says this for the total and the per-address limit alike, once
         * per connection it closes: counted, and not a log line each. */
        metrics_add(h->refused, 1, h->name, "connections");
        level = LOG_DEBUG;
    }
    log_write(level, "libmicrohttpd", "server", h->name, "detail", msg, (const char *)0);
}

/* The options httpd_start refuses. */
static bool httpd_options_bad(const struct httpd_options *opts)
{
    size_t cap = opts->body_cap ? opts->body_cap : HTTPD_DEFAULT_BODY_CAP;
    return opts->port < 0 || opts->port > 65535 || opts->threads < 0 ||
           opts->threads > HTTPD_MAX_THREADS || opts->drain_ms < 0 ||
           opts->drain_ms > HTTPD_DRAIN_MAX_MS || opts->max_connections < 0 ||
           opts->max_connections > HTTPD_MAX_CONNECTIONS || opts->per_address_connections < 0 ||
           opts->per_address_connections > HTTPD_MAX_CONNECTIONS || opts->request_deadline_ms < 0 ||
           opts->request_deadline_ms > HTTPD_DEADLINE_MAX_MS ||
           (opts->body_budget && opts->body_budget <= cap);
}

/* Frees what httpd_start set up before the daemon ran. */
static void httpd_free(struct httpd *h)
{
    httpd_watch_free(&h->watch);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

struct httpd *httpd_start(const struct httpd_options *opts, char *errstr, size_t errcap)
{
    struct httpd *h = NULL;
    struct sockaddr_in addr;
    const char *bind_addr = opts && opts->bind ? opts->bind : "127.0.0.1";

    if (errstr && errcap)
        errstr[0] = '\0';
    if (!opts || httpd_options_bad(opts)) {
        if (errstr)
            snprintf(errstr, errcap, "httpd: invalid options");
        return NULL;
    }
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)opts->port);
    if (inet_pton(AF_INET, bind_addr, &addr.sin_addr) != 1) {
        if (errstr)
            snprintf(errstr, errcap, "httpd: invalid IPv4 bind address '%s'", bind_addr);
        return NULL;
    }
    h = calloc(1, sizeof *h);
    if (!h) {
        if (errstr)
            snprintf(errstr, errcap, "httpd: out of memory");
        return NULL;
    }
    snprintf(h->name, sizeof h->name, "%s", opts->name ? opts->name : "http");
    h->body_cap = opts->body_cap ? opts->body_cap : HTTPD_DEFAULT_BODY_CAP;
    h->wipe_bodies = opts->wipe_bodies;
    h->body_freed = opts->body_freed;
    h->route = opts->route;
    h->handler = opts->handler;
    h->ctx = opts->ctx;
    h->ready = opts->ready;
    h->ready_ctx = opts->ready_ctx;
    h->metrics = opts->metrics;
    h->drain_ms = opts->drain_ms ? opts->drain_ms : HTTPD_DRAIN_MS;
    size_t budget = opts->body_budget ? opts->body_budget : HTTPD_DEFAULT_BODY_BUDGET;
    /* The default budget holds at least a few bodies at the cap (+1: NUL). */
    if (!opts->body_budget && budget < 4 * (h->body_cap + 1))
        budget = 4 * (h->body_cap + 1);
    httpd_budget_init(&h->budget, budget);
    atomic_init(&h->inflight, 0);
    pthread_mutex_init(&h->mu, NULL);
    h->requests = metrics_counter("kizuna_http_requests_total",
                                  "HTTP requests answered, by server and status.", "server,status");
    h->duration = metrics_histogram(
        "kizuna_http_request_duration_seconds",
        "Time from request headers to the response being queued, by server.", "server",
        httpd_duration_buckets, sizeof httpd_duration_buckets / sizeof httpd_duration_buckets[0]);
    h->refused = metrics_counter(
        "kizuna_http_refused_total",
        "Requests and connections refused to protect the server, by server and reason: budget "
        "(request bodies over the byte budget, 503), deadline (a request not received whole "
        "in time), connections (over the total or per-address connection limit).",
        "server,reason");
    long deadline_ms = opts->request_deadline_ms ? opts->request_deadline_ms : HTTPD_DEADLINE_MS;
    char werr[256] = "";
    h->watch = httpd_watch_start(h->name, deadline_ms, h->refused, werr, sizeof werr);
    if (!h->watch) {
        if (errstr)
            snprintf(errstr, errcap, "httpd %s: %s", h->name, werr);
        httpd_free(h);
        return NULL;
    }

    unsigned int threads = opts->threads > 0 ? (unsigned int)opts->threads : HTTPD_DEFAULT_THREADS;
    /* MHD 0.9.75 does not close a connection whose client closed (or that
     * the watch shut down) while its body was arriving: only its idle
     * timeout does. Never longer than the deadline, so that such a request
     * gives its share of the budget back within about two deadlines. */
    unsigned int idle_s = (unsigned int)((deadline_ms + 999) / 1000);
    if (idle_s > HTTPD_CONNECTION_TIMEOUT_S)
        idle_s = HTTPD_CONNECTION_TIMEOUT_S;
    unsigned int max_conn =
        opts->max_connections ? (unsigned int)opts->max_connections : HTTPD_CONNECTION_LIMIT;
    /* ITC is what MHD_quiesce_daemon needs in thread-pool mode, and what
     * wakes a worker whose connection was resumed from another thread. */
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC |
                         MHD_ALLOW_SUSPEND_RESUME;
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_AUTO;
    errno = 0;
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)opts->port, NULL, NULL, httpd_access, h, MHD_OPTION_EXTERNAL_LOGGER,
        httpd_mhd_log, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
        MHD_OPTION_CONNECTION_LIMIT, max_conn, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)opts->per_address_connections, MHD_OPTION_NOTIFY_COMPLETED, httpd_completed,
        h, MHD_OPTION_NOTIFY_CONNECTION, httpd_connection_notify, h, MHD_OPTION_URI_LOG_CALLBACK,
        httpd_request_line, h, MHD_OPTION_END);
    if (!h->daemon) {
        int err = errno;
        if (errstr)
            snprintf(errstr, errcap, "httpd %s: cannot listen on %s:%d: %s", h->name, bind_addr,
                     opts->port, err ? strerror(err) : "MHD_start_daemon failed");
        httpd_free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : opts->port;
    char port[16];
    snprintf(port, sizeof port, "%d", h->port);
    log_info("http server listening", "server", h->name, "bind", bind_addr, "port", port);
    return h;
}

int httpd_port(const struct httpd *h)
{
    return h ? h->port : -1;
}

/* Waits up to ms for the requests in flight to end. */
static void httpd_wait_idle(struct httpd *h, int ms)
{
    for (int waited = 0; waited < ms && atomic_load(&h->inflight) > 0; waited += 10) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void httpd_stop(struct httpd **hp)
{
    if (!hp || !*hp)
        return;
    struct httpd *h = *hp;
    MHD_socket listen_fd = MHD_quiesce_daemon(h->daemon);
    /* Requests already started, deferred ones included, get a bounded time
     * to finish; deferred ones still open then are answered 503, since
     * MHD_stop_daemon must not find a suspended connection. */
    httpd_wait_idle(h, h->drain_ms);
    int cancelled = httpd_cancel_deferred(h);
    if (cancelled > 0) {
        char n[16];
        snprintf(n, sizeof n, "%d", cancelled);
        log_warn("http server answered deferred requests 503 on stop", "server", h->name,
                 "requests", n);
        httpd_wait_idle(h, HTTPD_CANCEL_MS);
    }
    int left = atomic_load(&h->inflight);
    if (left > 0) {
        char n[16];
        snprintf(n, sizeof n, "%d", left);
        log_warn("http server stopping with requests in flight", "server", h->name, "requests", n);
    }
    MHD_stop_daemon(h->daemon);
    /* The caller owns the quiesced socket, closable only after the stop. */
    if (listen_fd != MHD_INVALID_SOCKET)
        close(listen_fd);
    log_info("http server stopped", "server", h->name);
    httpd_free(h);
    *hp = NULL;
}
