/* HTTP server on libmicrohttpd (only httpd.c includes microhttpd.h). It caps
 * request bodies (413 as soon as the cap is passed, also for chunked
 * uploads), answers /healthz, /readyz and /metrics itself, counts requests
 * by status, and hands every other complete request to one handler.
 * The handler runs on the server's worker threads, several at once. It
 * answers through resp before it returns, or defers the answer
 * (httpd_defer) and gives it later from any thread (httpd_complete), so that
 * a request waiting for something else holds no worker thread. */
#ifndef KIZUNA_HTTPD_H
#define KIZUNA_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

struct httpd;
struct httpd_request;
struct httpd_deferred;

#define HTTPD_MAX_HEADERS 8

struct httpd_response {
    int status;
    const char *content_type; /* static string; default application/json */
    char *body;               /* malloc'd; the server takes ownership */
    size_t body_len;
    int nheaders;
    char *header_names[HTTPD_MAX_HEADERS]; /* malloc'd, owned as body */
    char *header_values[HTTPD_MAX_HEADERS];
    /* Fault injection (tests/line-sim): close the connection without
     * answering. A server that ignores it sends status and body instead,
     * so set those too (a 5xx). */
    bool drop;
};

typedef void (*httpd_handler)(void *ctx, const struct httpd_request *req,
                              struct httpd_response *resp);
/* Returns true when the service can take traffic. */
typedef bool (*httpd_ready_fn)(void *ctx);

struct httpd_options {
    const char *name;      /* label for metrics and logs, e.g. "admin" */
    const char *bind;      /* IPv4 address, default 127.0.0.1 */
    int port;              /* 0 picks a free port (tests) */
    size_t body_cap;       /* default 1 MiB */
    int threads;           /* worker threads, default 2 */
    httpd_handler handler; /* may be NULL: only the built-in routes */
    void *ctx;
    httpd_ready_fn ready; /* may be NULL: always ready */
    void *ready_ctx;
    int drain_ms;        /* httpd_stop's wait for in-flight requests, default 5000 */
    int max_connections; /* open connections, default 1000; a deferred request
                            keeps its connection open until answered */
    /* Request bodies may carry secrets (the admin APIs take channel secrets
     * and access tokens): every body buffer is wiped (crypto_wipe) before
     * it is freed, and grown by copy instead of realloc, so that no copy is
     * left in freed memory. */
    bool wipe_bodies;
    /* Tests: called with each request body buffer (its whole allocation)
     * just before it is freed, after any wipe, on the thread that frees
     * it, with ctx. NULL in services. */
    void (*body_freed)(void *ctx, const char *buf, size_t alloc);
};

/* Starts listening. Returns NULL and fills errstr on failure. */
struct httpd *httpd_start(const struct httpd_options *opts, char *errstr, size_t errcap);
/* The port actually bound (useful with port 0). */
int httpd_port(const struct httpd *h);
/* Stops accepting and waits up to drain_ms for in-flight requests, deferred
 * ones included. Deferred requests still unanswered then get 503
 * ("shutting_down", Retry-After: 1); a handler that defers from then on
 * gets NULL. Then stops, frees, and sets *h to NULL. Main thread. */
void httpd_stop(struct httpd **h);

/* Defers the answer to req. Only the handler may call it, at most once per
 * request, on its own thread; the handler then returns, and whatever it put
 * in resp is discarded. The answer is the one later passed to
 * httpd_complete() for the returned handle, which the caller owns and must
 * complete exactly once. req and its strings are valid only until the
 * handler returns: copy what the completion needs. Returns NULL (out of
 * memory, or the server is stopping) when the request cannot be deferred:
 * answer through resp as usual then. */
struct httpd_deferred *httpd_defer(const struct httpd_request *req);

/* Gives the answer to a deferred request. Any thread, even the handler's
 * own before it returns, and even after httpd_stop (the handle outlives the
 * server). Takes ownership of resp's body and headers (resp is left empty)
 * and of the handle (*d is set to NULL). Returns 0 when the answer was
 * queued, -1 when the request no longer waits for one: httpd_stop answered
 * it with 503, or its connection ended; resp is freed then. A client that
 * disconnected while the request was deferred is noticed only when the
 * answer is written; the answer is then dropped. Never blocks on I/O. */
int httpd_complete(struct httpd_deferred **d, struct httpd_response *resp);

/* Request accessors; the strings live as long as the handler call. */
const char *httpd_request_method(const struct httpd_request *req);
const char *httpd_request_path(const struct httpd_request *req);
/* Case-insensitive, as HTTP header names are. NULL if absent. */
const char *httpd_request_header(const struct httpd_request *req, const char *name);
/* Decoded query argument, NULL if absent. */
const char *httpd_request_query(const struct httpd_request *req, const char *key);
const char *httpd_request_body(const struct httpd_request *req, size_t *len);

/* Response helpers. body is copied. */
void httpd_respond(struct httpd_response *resp, int status, const char *content_type,
                   const char *body, size_t len);
void httpd_respond_json(struct httpd_response *resp, int status, const char *json);
/* The project's error form: {"error":{"code":...,"message":...,"field":...}}.
 * field may be NULL. */
void httpd_respond_error(struct httpd_response *resp, int status, const char *code,
                         const char *message, const char *field);
/* Adds a response header (copied). Returns -1 when full. */
int httpd_response_header(struct httpd_response *resp, const char *name, const char *value);

#endif
