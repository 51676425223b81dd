/* The byte budget, the connection watch and the lingering close of
 * common/httpd (see httpd_guard.h). None of it calls libmicrohttpd: the
 * watch knows a connection by its socket, which it only ever shuts down,
 * and httpd.c unlists a connection before libmicrohttpd closes the socket,
 * under the watch's lock, so the watch never shuts down a descriptor that
 * was closed and handed to someone else. */
#include "httpd_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"

/* The watch looks this many times per deadline, within these bounds. */
#define WATCH_ROUNDS_PER_DEADLINE 4
#define WATCH_PERIOD_MIN_MS 10
#define WATCH_PERIOD_MAX_MS 1000
/* A lingering close (see httpd_socket_answer): how long and how much input
 * it discards at most, and how many sockets linger at once (past that, the
 * close is immediate, as without lingering). */
#define LINGER_MS 1000
#define LINGER_BYTES ((size_t)8 << 20)
#define LINGER_MAX 16

/* --- byte budget --------------------------------------------------------- */

void httpd_budget_init(struct httpd_budget *b, size_t cap)
{
    b->cap = cap;
    atomic_init(&b->used, 0);
}

bool httpd_budget_take(struct httpd_budget *b, size_t n)
{
    size_t used = atomic_load(&b->used);
    do {
        if (n > b->cap || used > b->cap - n)
            return false;
    } while (!atomic_compare_exchange_weak(&b->used, &used, used + n));
    return true;
}

void httpd_budget_give(struct httpd_budget *b, size_t n)
{
    atomic_fetch_sub(&b->used, n);
}

/* --- connection deadlines ------------------------------------------------ */

struct httpd_conn {
    int fd;
    atomic_int phase;
    atomic_int_least64_t since_ns;  /* clock_mono_ns() when the phase began */
    atomic_bool cut;                /* counted and shut down, or being answered late */
    struct httpd_conn *prev, *next; /* the watch's list, under its mu */
};

struct httpd_watch {
    char server[64];
    int64_t deadline_ns;
    struct metric *refused;
    pthread_mutex_t mu;
    struct httpd_conn *head;
    struct worker *worker;
    long period_ms;
};

/* Past the deadline and not busy. */
static bool conn_overdue(const struct httpd_watch *w, struct httpd_conn *c, int64_t now)
{
    return atomic_load(&c->phase) != HTTPD_PHASE_BUSY &&
           now - atomic_load(&c->since_ns) > w->deadline_ns;
}

/* One look at every connection: the late ones are shut down both ways; the
 * server thread that owns each then reads end-of-file and closes it. */
static long watch_round(struct worker *wk, void *ctx)
{
    (void)wk;
    struct httpd_watch *w = ctx;
    int64_t now = clock_mono_ns();
    int receiving = 0, idle = 0;
    pthread_mutex_lock(&w->mu);
    for (struct httpd_conn *c = w->head; c; c = c->next) {
        if (!conn_overdue(w, c, now) || atomic_exchange(&c->cut, true))
            continue;
        if (atomic_load(&c->phase) == HTTPD_PHASE_RECEIVING)
            receiving++;
        else
            idle++;
        shutdown(c->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&w->mu);
    if (receiving > 0) {
        char n[16];
        snprintf(n, sizeof n, "%d", receiving);
        metrics_add(w->refused, receiving, w->server, "deadline");
        log_info("http requests cut: not received whole within the deadline", "server", w->server,
                 "connections", n);
    }
    if (idle > 0) {
        char n[16];
        snprintf(n, sizeof n, "%d", idle);
        log_debug("http idle connections closed at the deadline", "server", w->server,
                  "connections", n);
    }
    return w->period_ms;
}

struct httpd_watch *httpd_watch_start(const char *server, long deadline_ms, struct metric *refused,
                                      char *errstr, size_t errcap)
{
    struct httpd_watch *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(errstr, errcap, "out of memory");
        return NULL;
    }
    snprintf(w->server, sizeof w->server, "%s", server);
    w->deadline_ns = (int64_t)deadline_ms * 1000000;
    w->refused = refused;
    w->period_ms = deadline_ms / WATCH_ROUNDS_PER_DEADLINE;
    if (w->period_ms < WATCH_PERIOD_MIN_MS)
        w->period_ms = WATCH_PERIOD_MIN_MS;
    if (w->period_ms > WATCH_PERIOD_MAX_MS)
        w->period_ms = WATCH_PERIOD_MAX_MS;
    pthread_mutex_init(&w->mu, NULL);
    w->worker = worker_start_rounds("httpd-watch", watch_round, w, errstr, errcap);
    if (!w->worker) {
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    return w;
}

void httpd_watch_free(struct httpd_watch **wp)
{
    if (!wp || !*wp)
        return;
    struct httpd_watch *w = *wp;
    worker_stop(&w->worker, 0);
    while (w->head) {
        struct httpd_conn *c = w->head;
        w->head = c->next;
        free(c);
    }
    pthread_mutex_destroy(&w->mu);
    free(w);
    *wp = NULL;
}

struct httpd_conn *httpd_watch_add(struct httpd_watch *w, int fd)
{
    struct httpd_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    atomic_init(&c->phase, HTTPD_PHASE_IDLE);
    atomic_init(&c->since_ns, clock_mono_ns());
    atomic_init(&c->cut, false);
    pthread_mutex_lock(&w->mu);
    c->next = w->head;
    if (w->head)
        w->head->prev = c;
    w->head = c;
    pthread_mutex_unlock(&w->mu);
    return c;
}

void httpd_watch_remove(struct httpd_watch *w, struct httpd_conn **cp)
{
    if (!cp || !*cp)
        return;
    struct httpd_conn *c = *cp;
    pthread_mutex_lock(&w->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&w->mu);
    free(c);
    *cp = NULL;
}

void httpd_conn_phase(struct httpd_conn *c, enum httpd_phase phase)
{
    if (!c)
        return;
    if (phase != HTTPD_PHASE_BUSY)
        atomic_store(&c->since_ns, clock_mono_ns());
    atomic_store(&c->phase, (int)phase);
}

bool httpd_conn_late(struct httpd_watch *w, struct httpd_conn *c)
{
    if (!c || !conn_overdue(w, c, clock_mono_ns()) || atomic_exchange(&c->cut, true))
        return false;
    metrics_add(w->refused, 1, w->server, "deadline");
    log_info("http request cut: not received whole within the deadline", "server", w->server);
    return true;
}

/* --- answering on the socket --------------------------------------------- */

static atomic_int lingering;

/* Discards input until the client closes, or the time or byte bound is
 * reached, then closes our duplicate: the last reference to the socket. */
static void *linger_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    size_t drained = 0;
    int64_t deadline = clock_mono_ms() + LINGER_MS;
    for (;;) {
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0 || drained >= LINGER_BYTES)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n <= 0)
            break; /* the client closed (it has read the answer), or reset */
        drained += (size_t)n;
    }
    close(fd);
    atomic_fetch_sub(&lingering, 1);
    return NULL;
}

/* Keeps the socket open past the server's close and lets a detached thread
 * drain it. Nothing happens when too many linger already. A detached thread
 * and not a worker: it never touches the server, and must outlive it. */
static void linger_start(int fd)
{
    if (atomic_fetch_add(&lingering, 1) >= LINGER_MAX) {
        atomic_fetch_sub(&lingering, 1);
        return;
    }
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    pthread_attr_t attr;
    pthread_t thread;
    bool started = false;
    if (dup_fd >= 0 && pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&thread, &attr, linger_main, (void *)(intptr_t)dup_fd) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!started) {
        if (dup_fd >= 0)
            close(dup_fd);
        atomic_fetch_sub(&lingering, 1);
    }
}

void httpd_socket_answer(int fd, const char *msg, size_t len)
{
    size_t off = 0;
    /* Nothing else is being sent on this connection, so the send buffer is
     * empty and a few hundred bytes go out at once; if they don't, the
     * client just sees a close. */
    while (off < len) {
        ssize_t n = send(fd, msg + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    /* FIN after the answer; the input still coming is drained, so that the
     * close sends no reset before the client has read it. */
    shutdown(fd, SHUT_WR);
    if (off == len)
        linger_start(fd);
}
