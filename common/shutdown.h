/* Graceful shutdown: SIGTERM and SIGINT only set a flag; loops poll
 * shutdown_requested() at least every few hundred ms. Stages then run in the
 * drain order below, each once, from the main thread. */
#ifndef KIZUNA_SHUTDOWN_H
#define KIZUNA_SHUTDOWN_H

#include <stdbool.h>

/* The drain order. Lower stages run first. */
enum shutdown_stage {
    SHUTDOWN_STOP_ACCEPTING = 0, /* close listeners, stop polling consumers */
    SHUTDOWN_FINISH_INFLIGHT,    /* let handlers and relays finish */
    SHUTDOWN_FLUSH_PRODUCER,     /* wait for delivery reports */
    SHUTDOWN_STORE_OFFSETS,      /* commit what was processed */
    SHUTDOWN_CLOSE_CONSUMER,
    SHUTDOWN_CLOSE_DB,
    SHUTDOWN_FREE, /* free memory, so sanitizer runs are clean */
    SHUTDOWN_STAGES
};

/* Installs the handlers for SIGTERM and SIGINT and ignores SIGPIPE. */
int shutdown_install(void);

/* True once a signal arrived or shutdown_request() was called. Any thread. */
bool shutdown_requested(void);

/* Asks for shutdown from code (tests, fatal errors). Async-signal-safe. */
void shutdown_request(void);

/* Sleeps up to ms, waking early when shutdown is requested. */
void shutdown_sleep_ms(long ms);

/* Registers fn(ctx) to run at stage. At most 32 steps; returns -1 beyond. */
int shutdown_register(enum shutdown_stage stage, const char *name, void (*fn)(void *), void *ctx);

/* Runs every registered step in stage order (registration order within a
 * stage), logging each, then forgets them. Main thread only. */
void shutdown_drain(void);

#endif
