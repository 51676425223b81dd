/* Deferred answers (httpd_defer / httpd_complete), on MHD's suspend and
 * resume: the handler suspends its connection and returns; whoever
 * completes stores the answer and resumes it; MHD then calls the access
 * handler once more (upload_data_size 0), which queues the stored answer.
 * A suspended connection is never closed or timed out by MHD, so the
 * connection is alive for as long as the handle can resume it. The one
 * exception is MHD_stop_daemon, which must not run while any connection is
 * suspended: httpd_stop first answers every deferred request itself
 * (httpd_cancel_deferred). */
#include "httpd.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "httpd_private.h"
#include "log.h"

static void deferred_unref(struct httpd_deferred *d)
{
    pthread_mutex_lock(&d->mu);
    int refs = --d->refs;
    pthread_mutex_unlock(&d->mu);
    if (refs > 0)
        return;
    httpd_response_clear(&d->resp);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

struct httpd_deferred *httpd_defer(const struct httpd_request *creq)
{
    /* Requests belong to this file; handlers get them const only so that
     * they cannot change what they were handed. */
    struct httpd_request *req = (struct httpd_request *)creq;
    if (!req || req->deferred)
        return NULL;
    struct httpd *h = req->h;
    struct httpd_deferred *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_mutex_init(&d->mu, NULL);
    d->refs = 2; /* the request and the completer */
    d->conn = req->conn;
    pthread_mutex_lock(&h->mu);
    if (h->stopping) {
        pthread_mutex_unlock(&h->mu);
        pthread_mutex_destroy(&d->mu);
        free(d);
        return NULL;
    }
    d->next = h->deferred;
    if (h->deferred)
        h->deferred->prev = d;
    h->deferred = d;
    pthread_mutex_unlock(&h->mu);
    req->deferred = d;
    return d;
}

/* Stores resp as d's answer and resumes the connection if it is suspended;
 * false when d needs no answer any more. Called with d->mu held. */
static bool deferred_answer_locked(struct httpd_deferred *d, struct httpd_response *resp)
{
    if (d->answered || d->ended)
        return false;
    d->resp = *resp;
    memset(resp, 0, sizeof *resp);
    d->answered = true;
    /* With mu held: httpd_stop takes mu before it stops the daemon, so it
     * waits for this resume to be done. */
    if (d->suspended)
        MHD_resume_connection(d->conn);
    return true;
}

int httpd_complete(struct httpd_deferred **dp, struct httpd_response *resp)
{
    struct httpd_response internal = {0};
    if (!resp) {
        httpd_respond_error(&internal, 500, "internal", "internal error", NULL);
        resp = &internal;
    }
    if (!dp || !*dp) {
        httpd_response_clear(resp);
        return -1;
    }
    struct httpd_deferred *d = *dp;
    *dp = NULL;
    pthread_mutex_lock(&d->mu);
    bool queued = deferred_answer_locked(d, resp);
    pthread_mutex_unlock(&d->mu);
    if (!queued)
        httpd_response_clear(resp);
    deferred_unref(d);
    return queued ? 0 : -1;
}

/* The handler deferred: answer at once if the answer came already, else
 * suspend until httpd_complete resumes the connection. */
enum MHD_Result httpd_request_park(struct httpd_request *req)
{
    struct httpd_deferred *d = req->deferred;
    pthread_mutex_lock(&d->mu);
    if (d->answered) {
        struct httpd_response resp = d->resp;
        memset(&d->resp, 0, sizeof d->resp);
        pthread_mutex_unlock(&d->mu);
        return httpd_request_answer(req, &resp);
    }
    /* Suspended before `suspended` is visible: a completer that sees it
     * must find the connection suspended. MHD takes none of our locks. */
    MHD_suspend_connection(req->conn);
    d->suspended = true;
    pthread_mutex_unlock(&d->mu);
    return MHD_YES;
}

/* MHD calls the access handler once more after the resume. */
enum MHD_Result httpd_request_resumed(struct httpd_request *req)
{
    struct httpd_deferred *d = req->deferred;
    pthread_mutex_lock(&d->mu);
    bool answered = d->answered;
    struct httpd_response resp = d->resp;
    memset(&d->resp, 0, sizeof d->resp);
    d->suspended = false;
    pthread_mutex_unlock(&d->mu);
    if (!answered) {
        /* Only a resume brings MHD back here, and only an answer resumes. */
        log_error("http deferred request resumed without an answer", "server", req->h->name, "path",
                  req->path);
        return httpd_request_error(req, 500, "internal", "internal error");
    }
    return httpd_request_answer(req, &resp);
}

/* The request ended (answered, or the connection closed): the handle no
 * longer refers to the connection. MHD thread. */
void httpd_request_deferred_end(struct httpd *h, struct httpd_deferred *d)
{
    pthread_mutex_lock(&h->mu);
    if (d->prev)
        d->prev->next = d->next;
    else if (h->deferred == d)
        h->deferred = d->next;
    if (d->next)
        d->next->prev = d->prev;
    d->prev = d->next = NULL;
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_lock(&d->mu);
    d->ended = true;
    d->suspended = false;
    d->conn = NULL;
    httpd_response_clear(&d->resp);
    pthread_mutex_unlock(&d->mu);
    deferred_unref(d);
}

/* httpd_stop: answers 503 to every deferred request still waiting, and
 * refuses new deferrals. Returns how many were answered. Each handle is
 * taken out of the list's lock before its own lock is taken, so that no
 * lock of ours is held around MHD_resume_connection but the handle's. */
int httpd_cancel_deferred(struct httpd *h)
{
    int cancelled = 0;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    struct httpd_deferred *d = h->deferred;
    if (d) {
        pthread_mutex_lock(&d->mu);
        d->refs++;
        pthread_mutex_unlock(&d->mu);
    }
    pthread_mutex_unlock(&h->mu);
    while (d) {
        struct httpd_response resp = {0};
        httpd_respond_error(&resp, 503, "shutting_down", "the server is stopping; retry later",
                            NULL);
        httpd_response_header(&resp, "Retry-After", "1");
        pthread_mutex_lock(&d->mu);
        if (deferred_answer_locked(d, &resp))
            cancelled++;
        pthread_mutex_unlock(&d->mu);
        httpd_response_clear(&resp);
        /* The next one, while d (still referenced) keeps its place; if d
         * ended meanwhile it left the list, and the walk starts over, which
         * skips what is answered already. */
        pthread_mutex_lock(&h->mu);
        bool listed = d->prev || d->next || h->deferred == d;
        struct httpd_deferred *next = listed ? d->next : h->deferred;
        while (next) {
            pthread_mutex_lock(&next->mu);
            bool open = !next->answered && !next->ended;
            if (open)
                next->refs++;
            pthread_mutex_unlock(&next->mu);
            if (open)
                break;
            next = next->next;
        }
        pthread_mutex_unlock(&h->mu);
        deferred_unref(d);
        d = next;
    }
    return cancelled;
}
