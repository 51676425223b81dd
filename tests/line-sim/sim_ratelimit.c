/* Token buckets and the one-second-window rate meter. Doubles are exact
 * enough here: elapsed nanoseconds stay below 2^53 for months of uptime,
 * and a limit of 2000/s refills exactly one token per 500 us. */
#include "sim_ratelimit.h"

#include <stdlib.h>
#include <string.h>

void sim_bucket_set(struct sim_bucket *b, struct sim_rate rate, int64_t now_ns)
{
    if (rate.period_s < 1)
        rate.period_s = 1;
    if (rate.limit < 0)
        rate.limit = 0;
    if (rate.burst <= 0)
        rate.burst = rate.limit;
    b->rate = rate;
    b->tokens = (double)rate.burst;
    b->last_ns = now_ns;
}

bool sim_bucket_take(struct sim_bucket *b, int64_t now_ns)
{
    if (b->rate.limit == 0)
        return true;
    if (now_ns > b->last_ns) {
        double elapsed = (double)(now_ns - b->last_ns);
        b->tokens += elapsed * (double)b->rate.limit / ((double)b->rate.period_s * SIM_NS_PER_S);
        if (b->tokens > (double)b->rate.burst)
            b->tokens = (double)b->rate.burst;
        b->last_ns = now_ns;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    return false;
}

/* Drops timestamps that left the window (now - 1 s, now]. */
static void meter_expire(struct sim_ratemeter *m, int64_t now_ns)
{
    while (m->count > 0 && m->ts[m->head] <= now_ns - SIM_NS_PER_S) {
        m->head = (m->head + 1) % m->cap;
        m->count--;
    }
}

static int meter_grow(struct sim_ratemeter *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    if (ncap > SIM_RATEMETER_CAP)
        return -1;
    int64_t *ts = malloc(ncap * sizeof *ts);
    if (!ts)
        return -1;
    /* Unroll the ring so the oldest entry lands at index 0. */
    for (size_t i = 0; i < m->count; i++)
        ts[i] = m->ts[(m->head + i) % m->cap];
    free(m->ts);
    m->ts = ts;
    m->cap = ncap;
    m->head = 0;
    return 0;
}

void sim_ratemeter_hit(struct sim_ratemeter *m, int64_t now_ns)
{
    meter_expire(m, now_ns);
    if (m->count == m->cap && meter_grow(m) != 0) {
        if (m->cap == 0)
            return;
        /* Full at the cap: forget the oldest. */
        m->head = (m->head + 1) % m->cap;
        m->count--;
    }
    m->ts[(m->head + m->count) % m->cap] = now_ns;
    m->count++;
    if (m->count > m->max) {
        m->max = m->count;
        m->max_at_ns = now_ns;
    }
}

size_t sim_ratemeter_current(struct sim_ratemeter *m, int64_t now_ns)
{
    meter_expire(m, now_ns);
    return m->count;
}

void sim_ratemeter_clear(struct sim_ratemeter *m)
{
    free(m->ts);
    memset(m, 0, sizeof *m);
}
