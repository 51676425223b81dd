/* What the HTTP server's files share and nobody else sees: the server,
 * a request and a deferred answer, and the steps one file takes for
 * another. httpd.c serves; httpd_defer.c parks and resumes deferred
 * requests. Only these files include microhttpd.h. */
#ifndef KIZUNA_HTTPD_PRIVATE_H
#define KIZUNA_HTTPD_PRIVATE_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "httpd.h"
#include "httpd_guard.h"

struct metric;

struct httpd {
    struct MHD_Daemon *daemon;
    char name[64];
    size_t body_cap;
    bool wipe_bodies;
    void (*body_freed)(void *ctx, const char *buf, size_t alloc);
    httpd_route_fn route;
    httpd_handler handler;
    void *ctx;
    httpd_ready_fn ready;
    void *ready_ctx;
    bool metrics; /* serves /metrics */
    int port;
    int drain_ms;
    atomic_int inflight;
    struct httpd_budget budget;
    struct httpd_watch *watch;
    struct metric *requests;
    struct metric *duration;
    struct metric *refused;
    /* The deferred requests whose request has not ended, and whether
     * httpd_stop has begun cancelling them (no new deferrals then). */
    pthread_mutex_t mu;
    struct httpd_deferred *deferred;
    bool stopping;
};

/* Shared by the request (until MHD reports it ended) and the completer
 * (until httpd_complete), hence refcounted; never points at the server, so
 * that a completion after httpd_stop is harmless. */
struct httpd_deferred {
    pthread_mutex_t mu;
    int refs;
    struct MHD_Connection *conn; /* valid while the request has not ended */
    /* The connection is suspended: whoever sets `answered` resumes it, with
     * mu held, so that httpd_stop can wait for a resume in progress. */
    bool suspended;
    bool answered; /* resp holds the answer (until the request takes it) */
    bool ended;    /* the request ended: nobody will take an answer */
    struct httpd_response resp;
    struct httpd_deferred *prev, *next; /* the server's list, under its mu */
};

struct httpd_request {
    struct httpd *h;
    struct MHD_Connection *conn;
    const char *method; /* owned by MHD, valid for the whole request */
    const char *path;
    struct httpd_conn *sock; /* the watch's entry for the connection, or NULL */
    long long declared;      /* Content-Length, or -1 (none, or chunked) */
    char *body;              /* NUL-terminated, at most body_cap bytes before the NUL */
    size_t body_len;
    size_t body_alloc;
    size_t reserved;                 /* of the server's byte budget, for the body: >= body_alloc */
    int status;                      /* answered with this status; 0 until then */
    int64_t start_ns;                /* clock_mono_ns() when the request began */
    struct httpd_deferred *deferred; /* set by httpd_defer */
};

/* Queues resp as the request's answer (and counts it). MHD thread. */
enum MHD_Result httpd_request_answer(struct httpd_request *req, struct httpd_response *resp);
/* Answers an error in the project's JSON form. MHD thread. */
enum MHD_Result httpd_request_error(struct httpd_request *req, int status, const char *code,
                                    const char *message);

/* The handler deferred: answers at once if the answer came already, else
 * suspends until httpd_complete resumes the connection. MHD thread. */
enum MHD_Result httpd_request_park(struct httpd_request *req);
/* MHD called the access handler again after a resume: queues the stored
 * answer. MHD thread. */
enum MHD_Result httpd_request_resumed(struct httpd_request *req);
/* The request ended (answered, or the connection closed): the handle no
 * longer refers to the connection. MHD thread. */
void httpd_request_deferred_end(struct httpd *h, struct httpd_deferred *d);
/* httpd_stop: answers 503 to every deferred request still waiting and
 * refuses new deferrals. Returns how many were answered. */
int httpd_cancel_deferred(struct httpd *h);

#endif
