/* One way to run background work (as Varnish starts every background thread
 * through one helper): a named thread that sleeps until woken or until its
 * timeout on the monotonic clock, and stops within a time budget. The
 * service's drain calls worker_stop at the stage where that work must end.
 *
 * Two shapes:
 *  - worker_start: fn owns its loop; it runs `while (!worker_stopping(w))`
 *    and sleeps with worker_wait.
 *  - worker_start_rounds: the loop is ours; round() does one round and says
 *    how long to wait before the next one. Once stopping, rounds go on while
 *    round() says there is more to do (it returns 0) and the budget lasts, so
 *    a relay drains what it can and then ends. */
#ifndef KIZUNA_WORKER_H
#define KIZUNA_WORKER_H

#include <stdbool.h>
#include <stddef.h>

struct worker;

/* The thread's body for worker_start. Runs on the worker's thread. */
typedef void (*worker_main_fn)(struct worker *w, void *ctx);

/* One round for worker_start_rounds: returns the ms to wait before the next
 * round (a wake cuts the wait short), 0 for another round at once, or
 * WORKER_DONE to end the thread. Runs on the worker's thread. */
typedef long (*worker_round_fn)(struct worker *w, void *ctx);
#define WORKER_DONE (-1L)

/* Starts a thread named name (the first 15 bytes show in ps and gdb) that
 * runs fn(w, ctx). ctx is borrowed and must outlive the worker. Returns the
 * worker, or NULL with errstr filled. Any thread. */
struct worker *worker_start(const char *name, worker_main_fn fn, void *ctx, char *errstr,
                            size_t errcap);

/* The same with the round loop described above. */
struct worker *worker_start_rounds(const char *name, worker_round_fn round, void *ctx, char *errstr,
                                   size_t errcap);

/* Cuts the worker's current or next wait short. Any thread; NULL is a no-op. */
void worker_wake(struct worker *w);

/* Sleeps up to timeout_ms on the monotonic clock, returning early when woken
 * or asked to stop. Returns true when woken or stopping, false on timeout.
 * A wake that came while the worker was busy is not lost: the next wait
 * returns at once. Worker's thread only. */
bool worker_wait(struct worker *w, long timeout_ms);

/* True once worker_stop has been called. Any thread. */
bool worker_stopping(struct worker *w);

/* Milliseconds left of the stop budget: a large number before stop was
 * called, 0 once the budget has run out. Worker's thread (or any). */
long worker_budget_left_ms(struct worker *w);

/* The name given at start. */
const char *worker_name(const struct worker *w);

/* Asks the worker to stop, wakes it, and waits for its thread to end, then
 * frees it and sets *wp to NULL. budget_ms is how long the body may go on
 * finishing its work (worker_budget_left_ms); a body that overruns it by more
 * than a second is logged, and still waited for (a thread cannot be taken
 * back safely). NULL or *wp NULL is a no-op. Any thread but the worker's. */
void worker_stop(struct worker **wp, long budget_ms);

#endif
