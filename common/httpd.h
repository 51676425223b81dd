/* HTTP server on libmicrohttpd (only httpd.c includes microhttpd.h). It
 * lets the service refuse a request from its method, path and headers
 * before any of its body is read (route), caps each request body (413 as
 * soon as the cap is passed, also for chunked uploads) and the bodies of
 * all requests together (the byte budget: 503 past it), caps connections in
 * total and per client address, and cuts a request not received whole
 * within its deadline (a slow client cannot hold a connection by sending a
 * byte now and then). It answers /healthz and /readyz itself, and /metrics
 * where asked to (the admin port, never a public one), counts requests by
 * status and refusals by reason, and hands every other complete request to
 * one handler. The handler runs on the server's worker threads, several at
 * once. It answers through resp before it returns, or defers the answer
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

/* A streamed body's source (httpd_respond_stream): writes up to max bytes
 * (max > 0) of the body's next part into buf and returns how many (> 0),
 * HTTPD_STREAM_END when the body is complete, or HTTPD_STREAM_ERROR to cut
 * the response (the connection is closed without the final chunk, so the
 * client sees a truncated body, never a complete-looking one). It must not
 * return 0. Runs on the server's worker thread that serves the connection,
 * one call at a time per response, and only when the client has taken what
 * was sent before (so a slow client slows the source: backpressure); while
 * it runs, that worker serves no other connection, so each call should do a
 * bounded piece of work (one page of a query, a few ms). */
typedef long (*httpd_stream_read_fn)(void *ctx, char *buf, size_t max);
#define HTTPD_STREAM_END (-1L)
#define HTTPD_STREAM_ERROR (-2L)
/* Called exactly once with the source's ctx when the response is over: sent
 * whole, cut by HTTPD_STREAM_ERROR, its client gone (a disconnect, an idle
 * timeout of 30 s without the client reading), the server stopping, or the
 * response discarded before it was sent (httpd_response_clear). It releases
 * what the source holds (a database connection). Server worker thread, or
 * the thread that clears the response. */
typedef void (*httpd_stream_free_fn)(void *ctx);

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
    /* A streamed body instead of body (httpd_respond_stream); owned as body. */
    httpd_stream_read_fn stream_read;
    httpd_stream_free_fn stream_free;
    void *stream_ctx;
};

typedef void (*httpd_handler)(void *ctx, const struct httpd_request *req,
                              struct httpd_response *resp);
/* Decides from the method, path and headers alone, before a byte of the
 * body is read, whether the request goes on: true to go on (read the body,
 * then call the handler; whatever it put in resp is discarded), false when
 * resp holds the answer, which is sent at once; the body is then never read
 * (a connection that announced one is closed after the answer). The body is empty here,
 * and the request cannot be deferred. Runs on the server's worker threads,
 * several at once, with the handler's ctx. */
typedef bool (*httpd_route_fn)(void *ctx, const struct httpd_request *req,
                               struct httpd_response *resp);
/* Returns true when the service can take traffic. */
typedef bool (*httpd_ready_fn)(void *ctx);

struct httpd_options {
    const char *name;      /* label for metrics and logs, e.g. "admin" */
    const char *bind;      /* IPv4 address, default 127.0.0.1 */
    int port;              /* 0 picks a free port (tests) */
    size_t body_cap;       /* one request's body, default 1 MiB */
    int threads;           /* worker threads, default 2 */
    httpd_route_fn route;  /* may be NULL: every request's body is read */
    httpd_handler handler; /* may be NULL: only the built-in routes */
    void *ctx;             /* route's and handler's */
    httpd_ready_fn ready;  /* may be NULL: always ready */
    void *ready_ctx;
    bool metrics;        /* serve /metrics (admin ports); off, /metrics is like any path */
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
    /* Open connections from one client address; past it a new connection is
     * closed at once. 0: no cap. Behind a proxy every client has the
     * proxy's address. */
    int per_address_connections;
    /* Bytes of request bodies held at once across all requests, more than
     * body_cap; a declared body that does not fit gets 503 (Retry-After: 1)
     * before it is read, a chunked one as soon as it does not fit. Default
     * 64 MiB (or 4 bodies at the cap, if more). A body is held from its
     * headers until the handler returns. */
    size_t body_budget;
    /* From a connection's start, or its previous request's end, until a
     * request is received whole (headers and body); a request still
     * arriving then is cut (408 if its body is arriving, else the
     * connection is closed), and an idle connection closed. A request
     * being handled or deferred has no deadline. A connection that sends
     * nothing for as long (in whole seconds, at most 30) is closed too.
     * Default 30000, at most 600000. */
    int request_deadline_ms;
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
/* Answers status with a body produced as it is sent (chunked transfer
 * encoding, in constant memory: the server holds one block of at most
 * HTTPD_STREAM_BLOCK bytes per response), from read(ctx, ...) until it
 * returns HTTPD_STREAM_END. resp takes ownership of ctx: free_fn(ctx) runs
 * exactly once (see httpd_stream_free_fn), also when the server cannot
 * send it (the connection is then closed). Replaces any body already set; headers
 * stay. Works from a handler and through httpd_complete alike. */
void httpd_respond_stream(struct httpd_response *resp, int status, const char *content_type,
                          httpd_stream_read_fn read, void *ctx, httpd_stream_free_fn free_fn);
#define HTTPD_STREAM_BLOCK (32 * 1024)
/* Adds a response header (copied). Returns -1 when full. */
int httpd_response_header(struct httpd_response *resp, const char *name, const char *value);
/* Frees resp's body and headers (a stream's ctx through its free_fn) and
 * leaves it empty (status and flags stay). */
void httpd_response_clear(struct httpd_response *resp);

#endif
