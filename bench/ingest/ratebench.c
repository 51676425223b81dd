/* ratebench: a constant-rate HTTP/1.1 load generator for bench/ingest.
 *
 * wrk is closed-loop: each connection sends its next request only when the
 * previous answer came, so when the server slows down the load drops with
 * it and the slow period is under-counted ("coordinated omission"). The
 * issue's "p99 at 5,000 req/s" needs a fixed arrival rate; wrk2 does that
 * but is not packaged in Debian, so this does the same, small: request i is
 * due at start + i/rate whatever happened before; it goes out on an idle
 * keep-alive connection, or waits in a backlog until one is free; its
 * latency is counted from the time it was due, so queueing in front of a
 * slow server counts too.
 *
 * Bodies come from gen_bodies.py ("<signature> <body>" per line) and are
 * sent in turn. One thread, epoll, a timerfd at the request interval.
 *
 * usage: ratebench -p PORT -P PATH -b BODIES -r RATE -d SECONDS [-c CONNS] [-H HOST] [-T FILE]
 * Prints a summary, then one "RESULT key=value ..." line for scripts. -T
 * also writes every answer as "<due, Unix ms> <latency, us>", so slow
 * answers can be lined up with the broker's GC log (bench/ingest/gcslow.py). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define RB_MAX_CONNS 4096
#define RB_READ_CAP 16384
/* After the last request is due, answers still count for this long. */
#define RB_GRACE_NS (5LL * 1000000000LL)

struct rb_conn {
    int fd;
    bool connecting;
    bool busy;
    int64_t due_ns; /* the request in flight: when it was due */
    const char *wbuf;
    size_t wlen, woff;
    char rbuf[RB_READ_CAP];
    size_t rlen;
};

static struct sockaddr_in rb_addr;
static int rb_epfd;
static struct rb_conn *rb_conns;
static int rb_nconns;
static int *rb_idle;
static int rb_nidle;
static char **rb_reqs;
static size_t *rb_reqlen;
static size_t rb_nreqs;
static size_t rb_next_body;
/* Due requests waiting for a connection: their due times, a FIFO. */
static int64_t *rb_backlog;
static size_t rb_bl_head, rb_bl_tail, rb_bl_cap;
static int64_t *rb_lat_us;
static int64_t *rb_due_ns; /* per answer, for -T */
static size_t rb_nlat;
static long rb_status[600];
static long rb_errors, rb_reconnects;
static int64_t rb_last_answer_ns;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "ratebench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void load_bodies(const char *file, const char *host, int port, const char *path)
{
    FILE *f = fopen(file, "r");
    if (!f)
        die(file);
    size_t cap = 1024;
    rb_reqs = malloc(cap * sizeof *rb_reqs);
    rb_reqlen = malloc(cap * sizeof *rb_reqlen);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    while ((n = getline(&line, &lcap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        const char *sig = line, *body = sp + 1;
        size_t blen = strlen(body);
        if (rb_nreqs == cap) {
            cap *= 2;
            rb_reqs = realloc(rb_reqs, cap * sizeof *rb_reqs);
            rb_reqlen = realloc(rb_reqlen, cap * sizeof *rb_reqlen);
            if (!rb_reqs || !rb_reqlen)
                die("realloc");
        }
        size_t want = strlen(path) + strlen(host) + strlen(sig) + blen + 256;
        char *req = malloc(want);
        if (!req)
            die("malloc");
        int len = snprintf(req, want,
                           "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                           "X-Line-Signature: %s\r\nContent-Length: %zu\r\n\r\n%s",
                           path, host, port, sig, blen, body);
        rb_reqs[rb_nreqs] = req;
        rb_reqlen[rb_nreqs] = (size_t)len;
        rb_nreqs++;
    }
    free(line);
    fclose(f);
    if (rb_nreqs == 0) {
        fprintf(stderr, "ratebench: no bodies in %s\n", file);
        exit(1);
    }
}

static void conn_watch(struct rb_conn *c, int op, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)(c - rb_conns)};
    if (epoll_ctl(rb_epfd, op, c->fd, &ev) != 0)
        die("epoll_ctl");
}

static void conn_open(struct rb_conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->connecting = true;
    c->busy = false;
    c->rlen = 0;
    if (connect(c->fd, (struct sockaddr *)&rb_addr, sizeof rb_addr) != 0 && errno != EINPROGRESS)
        die("connect");
    conn_watch(c, EPOLL_CTL_ADD, EPOLLOUT);
}

static void conn_reopen(struct rb_conn *c)
{
    if (c->busy)
        rb_errors++;
    epoll_ctl(rb_epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    rb_reconnects++;
    conn_open(c);
}

static void conn_write(struct rb_conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_watch(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
            return;
        }
        if (n <= 0) {
            conn_reopen(c);
            return;
        }
        c->woff += (size_t)n;
    }
    conn_watch(c, EPOLL_CTL_MOD, EPOLLIN);
}

static void conn_send(struct rb_conn *c, int64_t due)
{
    c->busy = true;
    c->due_ns = due;
    c->wbuf = rb_reqs[rb_next_body];
    c->wlen = rb_reqlen[rb_next_body];
    c->woff = 0;
    rb_next_body = (rb_next_body + 1) % rb_nreqs;
    conn_write(c);
}

static void dispatch(void)
{
    while (rb_bl_head != rb_bl_tail && rb_nidle > 0) {
        struct rb_conn *c = &rb_conns[rb_idle[--rb_nidle]];
        conn_send(c, rb_backlog[rb_bl_head++ % rb_bl_cap]);
    }
}

/* A complete response in rbuf? Returns its length, 0 if not yet. */
static size_t response_complete(struct rb_conn *c, int *status)
{
    c->rbuf[c->rlen < RB_READ_CAP ? c->rlen : RB_READ_CAP - 1] = '\0';
    char *end = strstr(c->rbuf, "\r\n\r\n");
    if (!end)
        return 0;
    size_t head = (size_t)(end - c->rbuf) + 4;
    size_t clen = 0;
    for (char *p = c->rbuf; p < end;) {
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            clen = strtoul(p + 15, NULL, 10);
        p = strstr(p, "\r\n") + 2; /* found: end is a "\r\n" too */
    }
    if (c->rlen < head + clen)
        return 0;
    if (sscanf(c->rbuf, "HTTP/1.%*d %d", status) != 1)
        *status = 0;
    return head + clen;
}

static void conn_read(struct rb_conn *c)
{
    for (;;) {
        if (c->rlen + 1 >= RB_READ_CAP) {
            conn_reopen(c);
            return;
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, RB_READ_CAP - 1 - c->rlen, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_reopen(c);
            return;
        }
        c->rlen += (size_t)n;
        int status = 0;
        size_t used = response_complete(c, &status);
        if (used == 0)
            continue;
        if (!c->busy) {
            rb_errors++; /* an answer nobody asked for */
        } else {
            rb_last_answer_ns = now_ns();
            rb_due_ns[rb_nlat] = c->due_ns;
            rb_lat_us[rb_nlat++] = (rb_last_answer_ns - c->due_ns) / 1000;
            if (status > 0 && status < 600)
                rb_status[status]++;
            else
                rb_errors++;
        }
        memmove(c->rbuf, c->rbuf + used, c->rlen - used);
        c->rlen -= used;
        c->busy = false;
        rb_idle[rb_nidle++] = (int)(c - rb_conns);
        dispatch();
        return;
    }
}

/* Monotonic due times as Unix milliseconds, next to each latency (before the
 * latencies are sorted). */
static void write_timeline(const char *file)
{
    FILE *f = fopen(file, "w");
    if (!f)
        die(file);
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    int64_t offset = (int64_t)rt.tv_sec * 1000000000LL + rt.tv_nsec - now_ns();
    for (size_t i = 0; i < rb_nlat; i++)
        fprintf(f, "%.3f %lld\n", (double)(rb_due_ns[i] + offset) / 1e6, (long long)rb_lat_us[i]);
    fclose(f);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct_ms(double p)
{
    if (rb_nlat == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(rb_nlat - 1) + 0.5);
    return (double)rb_lat_us[i] / 1000.0;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *path = NULL, *bodies = NULL, *timeline = NULL;
    int port = 0, conns = 64;
    double rate = 0, seconds = 0;
    int opt;
    while ((opt = getopt(argc, argv, "H:p:P:b:r:d:c:T:")) != -1) {
        switch (opt) {
        case 'H':
            host = optarg;
            break;
        case 'p':
            port = (int)strtol(optarg, NULL, 10);
            break;
        case 'P':
            path = optarg;
            break;
        case 'b':
            bodies = optarg;
            break;
        case 'r':
            rate = strtod(optarg, NULL);
            break;
        case 'd':
            seconds = strtod(optarg, NULL);
            break;
        case 'c':
            conns = (int)strtol(optarg, NULL, 10);
            break;
        case 'T':
            timeline = optarg;
            break;
        default:
            goto usage;
        }
    }
    if (!path || !bodies || port <= 0 || rate <= 0 || seconds <= 0 || conns < 1 ||
        conns > RB_MAX_CONNS)
        goto usage;

    rb_addr.sin_family = AF_INET;
    rb_addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &rb_addr.sin_addr) != 1) {
        fprintf(stderr, "ratebench: host must be an IPv4 address\n");
        return 2;
    }
    load_bodies(bodies, host, port, path);
    size_t total = (size_t)(rate * seconds);
    rb_lat_us = calloc(total + 1, sizeof *rb_lat_us);
    rb_due_ns = calloc(total + 1, sizeof *rb_due_ns);
    rb_bl_cap = total + 1;
    rb_backlog = calloc(rb_bl_cap, sizeof *rb_backlog);
    rb_conns = calloc((size_t)conns, sizeof *rb_conns);
    rb_idle = calloc((size_t)conns, sizeof *rb_idle);
    if (!rb_lat_us || !rb_due_ns || !rb_backlog || !rb_conns || !rb_idle)
        die("calloc");
    rb_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (rb_epfd < 0)
        die("epoll_create1");
    rb_nconns = conns;
    for (int i = 0; i < conns; i++)
        conn_open(&rb_conns[i]);
    /* Every connection is up before the clock starts. */
    struct epoll_event evs[256];
    int up = 0;
    int64_t give_up = now_ns() + 10LL * 1000000000LL;
    while (up < conns && now_ns() < give_up) {
        int n = epoll_wait(rb_epfd, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct rb_conn *c = &rb_conns[evs[i].data.u32];
            if (!c->connecting)
                continue;
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) {
                errno = err;
                die("connect");
            }
            c->connecting = false;
            conn_watch(c, EPOLL_CTL_MOD, EPOLLIN);
            rb_idle[rb_nidle++] = (int)(c - rb_conns);
            up++;
        }
    }
    if (up < conns) {
        fprintf(stderr, "ratebench: only %d of %d connections came up\n", up, conns);
        return 1;
    }

    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0)
        die("timerfd_create");
    int64_t interval = (int64_t)(1e9 / rate);
    if (interval < 1)
        interval = 1;
    struct itimerspec its = {
        .it_interval = {interval / 1000000000LL, interval % 1000000000LL},
        .it_value = {interval / 1000000000LL, interval % 1000000000LL},
    };
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (epoll_ctl(rb_epfd, EPOLL_CTL_ADD, tfd, &tev) != 0)
        die("epoll_ctl timer");
    int64_t t0 = now_ns();
    if (timerfd_settime(tfd, 0, &its, NULL) != 0)
        die("timerfd_settime");
    size_t scheduled = 0;
    int64_t last_due = t0 + (int64_t)total * interval;

    while (rb_nlat + (size_t)rb_errors < total || scheduled < total) {
        int64_t now = now_ns();
        if (scheduled >= total && now > last_due + RB_GRACE_NS)
            break;
        int n = epoll_wait(rb_epfd, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u32 == UINT32_MAX) {
                uint64_t ticks = 0;
                if (read(tfd, &ticks, sizeof ticks) != (ssize_t)sizeof ticks)
                    continue;
                for (uint64_t k = 0; k < ticks && scheduled < total; k++) {
                    scheduled++;
                    rb_backlog[rb_bl_tail++ % rb_bl_cap] = t0 + (int64_t)scheduled * interval;
                }
                dispatch();
                continue;
            }
            struct rb_conn *c = &rb_conns[evs[i].data.u32];
            if (c->connecting) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    conn_reopen(c);
                    continue;
                }
                c->connecting = false;
                conn_watch(c, EPOLL_CTL_MOD, EPOLLIN);
                rb_idle[rb_nidle++] = (int)(c - rb_conns);
                dispatch();
                continue;
            }
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                conn_reopen(c);
                continue;
            }
            if ((evs[i].events & EPOLLOUT) && c->busy && c->woff < c->wlen)
                conn_write(c);
            if (evs[i].events & EPOLLIN)
                conn_read(c);
        }
    }
    double elapsed = (double)((rb_last_answer_ns ? rb_last_answer_ns : now_ns()) - t0) / 1e9;
    if (timeline)
        write_timeline(timeline);
    long outstanding = (long)total - (long)rb_nlat - rb_errors;
    qsort(rb_lat_us, rb_nlat, sizeof *rb_lat_us, cmp_i64);
    long ok = rb_status[200];
    long other = (long)rb_nlat - ok;
    double max_ms = rb_nlat ? (double)rb_lat_us[rb_nlat - 1] / 1000.0 : 0;
    printf("ratebench: %zu requests due at %.0f/s over %.1f s on %d connections\n", total, rate,
           seconds, conns);
    printf("  answered %zu in %.2f s (%.0f/s): 200 x %ld, other status x %ld, errors %ld, "
           "unanswered %ld, reconnects %ld\n",
           rb_nlat, elapsed, elapsed > 0 ? (double)rb_nlat / elapsed : 0.0, ok, other, rb_errors,
           outstanding, rb_reconnects);
    printf("  latency from the time each request was due: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, "
           "p99.9 %.2f ms, max %.2f ms\n",
           pct_ms(50), pct_ms(90), pct_ms(99), pct_ms(99.9), max_ms);
    for (int s = 100; s < 600; s++)
        if (rb_status[s] && s != 200)
            printf("  status %d x %ld\n", s, rb_status[s]);
    printf("RESULT rate=%.0f due=%zu answered=%zu ok=%ld non200=%ld errors=%ld unanswered=%ld "
           "p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f\n",
           elapsed > 0 ? (double)rb_nlat / elapsed : 0.0, total, rb_nlat, ok, other, rb_errors,
           outstanding, pct_ms(50), pct_ms(90), pct_ms(99), pct_ms(99.9), max_ms);
    return 0;
usage:
    fprintf(stderr, "usage: ratebench -p PORT -P PATH -b BODIES -r RATE -d SECONDS [-c CONNS] "
                    "[-H HOST] [-T FILE]\n");
    return 2;
}
