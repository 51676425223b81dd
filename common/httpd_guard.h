/* What keeps one client of common/httpd from hurting the others, written
 * without libmicrohttpd (only httpd.c includes microhttpd.h) and used only
 * by httpd.c:
 *  - the byte budget: the bytes of request bodies one server holds at once,
 *    across all its requests;
 *  - the watch: every open connection with the time its current request
 *    began, and a thread that cuts a connection whose request is not read
 *    whole within the deadline (libmicrohttpd's own timeout is an idle
 *    timeout, which a client sending a byte every few seconds never meets);
 *  - the lingering close after an answer written on the socket directly. */
#ifndef KIZUNA_HTTPD_GUARD_H
#define KIZUNA_HTTPD_GUARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct metric;

/* --- byte budget --------------------------------------------------------- */

struct httpd_budget {
    size_t cap;
    atomic_size_t used;
};

/* Sets the cap; nothing is taken. Before any other use. */
void httpd_budget_init(struct httpd_budget *b, size_t cap);
/* Takes n bytes, or nothing and returns false when that would pass the cap.
 * Any thread. */
bool httpd_budget_take(struct httpd_budget *b, size_t n);
/* Gives back n bytes taken before. Any thread. */
void httpd_budget_give(struct httpd_budget *b, size_t n);

/* --- connection deadlines ------------------------------------------------ */

/* Where a connection is: waiting for a request (its first, or the next one
 * on a kept-alive connection), receiving one (its request line has come),
 * or busy (the server has the whole request, or answers it). The deadline
 * runs in the first two, from the moment the phase was entered. */
enum httpd_phase { HTTPD_PHASE_IDLE, HTTPD_PHASE_RECEIVING, HTTPD_PHASE_BUSY };

struct httpd_watch;
struct httpd_conn;

/* Starts watching with the given deadline; a thread ("httpd-watch") looks
 * at every connection a few times per deadline and cuts the late ones with
 * shutdown(2), which libmicrohttpd then sees as the client going away. A cut
 * of a connection receiving a request adds 1 to refused{server,
 * "deadline"}; refused is borrowed, server copied. Returns NULL with errstr
 * filled. Main thread. */
struct httpd_watch *httpd_watch_start(const char *server, long deadline_ms, struct metric *refused,
                                      char *errstr, size_t errcap);
/* Stops the thread and frees the watch and whatever connections are still
 * listed (their sockets are left alone); *w is set to NULL. Main thread,
 * once the server has stopped (MHD_stop_daemon, which removes every
 * connection, must not find the watch gone). NULL is a no-op. */
void httpd_watch_free(struct httpd_watch **w);

/* Lists a new connection on socket fd, idle from now. NULL when out of
 * memory (the connection is then never cut). Server thread. */
struct httpd_conn *httpd_watch_add(struct httpd_watch *w, int fd);
/* Unlists c and frees it, and sets *c to NULL: before the socket is closed,
 * so that the watch never touches a descriptor that was reused. Server
 * thread; NULL is a no-op. */
void httpd_watch_remove(struct httpd_watch *w, struct httpd_conn **c);
/* Moves c to phase; IDLE and RECEIVING restart its clock. Server thread;
 * NULL is a no-op. */
void httpd_conn_phase(struct httpd_conn *c, enum httpd_phase phase);
/* True, once, when c is past its deadline and not busy: the caller then
 * answers and closes, and it is counted as a cut. Server thread; false for
 * NULL. */
bool httpd_conn_late(struct httpd_watch *w, struct httpd_conn *c);

/* --- answering on the socket --------------------------------------------- */

/* Writes msg (a whole HTTP response) on fd without blocking, shuts down the
 * sending side, and, when all of it went out, keeps a duplicate of the
 * socket open for a bounded time that drains what the client still sends
 * (see httpd.c's opening comment: a close with unread input would reset the
 * connection before the client read the answer). Server thread. */
void httpd_socket_answer(int fd, const char *msg, size_t len);

#endif
