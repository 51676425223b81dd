/* Rate limiting and rate measurement, as pure functions of a caller-given
 * clock (CLOCK_MONOTONIC nanoseconds) so unit tests need no sleeping.
 *
 * sim_bucket is LINE's per-channel, per-endpoint token bucket: `limit`
 * requests per `period_s` seconds, holding at most `burst` tokens.
 * sim_ratemeter measures the highest number of requests seen in any window
 * of one second (exactly, not in aligned slots), which is what the
 * dispatcher's "never above the limit in any one-second window" test reads.
 * Neither is thread-safe; the owning channel's lock guards them. */
#ifndef LINESIM_RATELIMIT_H
#define LINESIM_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_NS_PER_S 1000000000LL

struct sim_rate {
    long limit;    /* requests per period; 0 means unlimited */
    long period_s; /* >= 1 */
    long burst;    /* bucket size; 0 means `limit` */
};

struct sim_bucket {
    struct sim_rate rate;
    double tokens;
    int64_t last_ns;
};

/* (Re)configures the bucket and fills it, as a fresh channel starts. */
void sim_bucket_set(struct sim_bucket *b, struct sim_rate rate, int64_t now_ns);
/* Takes one token. True when the request may pass, false for a 429. */
bool sim_bucket_take(struct sim_bucket *b, int64_t now_ns);

/* Timestamps of the last second's requests, in a ring that grows on demand
 * up to SIM_RATEMETER_CAP entries (a rate beyond that reads as the cap). */
#define SIM_RATEMETER_CAP (1u << 20)

struct sim_ratemeter {
    int64_t *ts;
    size_t cap, head, count;
    size_t max;        /* highest count in any one-second window so far */
    int64_t max_at_ns; /* when that peak was reached */
};

/* Records one request at now_ns (calls must come in non-decreasing time
 * order, which the channel lock ensures). Allocation failure only makes the
 * meter forget old timestamps early, i.e. under-read. */
void sim_ratemeter_hit(struct sim_ratemeter *m, int64_t now_ns);
/* Requests in the window (now - 1 s, now]. */
size_t sim_ratemeter_current(struct sim_ratemeter *m, int64_t now_ns);
/* Frees the ring and zeroes the meter. */
void sim_ratemeter_clear(struct sim_ratemeter *m);

#endif
