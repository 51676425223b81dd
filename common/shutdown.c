/* Two-stage shutdown: the handler only sets a flag (async-signal-safe);
 * the main thread then runs the registered drain steps in stage order. */
#include "shutdown.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define SHUTDOWN_MAX_STEPS 32

static volatile sig_atomic_t requested;

struct shutdown_step {
    enum shutdown_stage stage;
    const char *name;
    void (*fn)(void *);
    void *ctx;
};

static struct shutdown_step steps[SHUTDOWN_MAX_STEPS];
static int nsteps;

static void on_signal(int sig)
{
    (void)sig;
    requested = 1;
}

int shutdown_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    /* A peer closing a socket must be an error code, not a dead process. */
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

bool shutdown_requested(void)
{
    return requested != 0;
}

void shutdown_request(void)
{
    requested = 1;
}

void shutdown_sleep_ms(long ms)
{
    while (ms > 0 && !requested) {
        long slice = ms < 100 ? ms : 100;
        struct timespec ts = {slice / 1000, (slice % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        ms -= slice;
    }
}

int shutdown_register(enum shutdown_stage stage, const char *name, void (*fn)(void *), void *ctx)
{
    if (nsteps >= SHUTDOWN_MAX_STEPS || stage >= SHUTDOWN_STAGES)
        return -1;
    steps[nsteps++] = (struct shutdown_step){stage, name, fn, ctx};
    return 0;
}

void shutdown_drain(void)
{
    for (int stage = 0; stage < SHUTDOWN_STAGES; stage++)
        for (int i = 0; i < nsteps; i++)
            if ((int)steps[i].stage == stage) {
                log_debug("shutdown step", "step", steps[i].name);
                steps[i].fn(steps[i].ctx);
            }
    nsteps = 0;
}
