/* When to retry a call to LINE that failed retriably (timeout, connection
 * error, 5xx, 429), as pure functions: the caller passes the clock and the
 * randomness, so tests are deterministic.
 *
 * Policy: exponential backoff with FULL jitter. The n-th retry waits a
 * uniformly random time in [0, min(cap, base * 2^(n-1))] (defaults: base
 * 500 ms, cap 5 min). Full jitter spreads a crowd of retries (every channel
 * hit by the same LINE outage) best, and it is stateless: it needs only the
 * attempt count, which the delivery log keeps, not the previous delay
 * (decorrelated jitter would need that). A server's Retry-After is a floor:
 * never retry sooner. Nothing is retried after `deadline` (default 24 h)
 * from the first attempt; the last wait is shortened to end at the
 * deadline, unless Retry-After forbids that, which ends the retries.
 *
 * Times are unix nanoseconds (wall clock), because the first attempt's time
 * comes from the delivery log and the deadline must survive restarts.
 * Thread-safe: no state but what the caller passes. */
#ifndef KIZUNA_DISPATCHER_BACKOFF_H
#define KIZUNA_DISPATCHER_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

#define BACKOFF_NS_PER_S 1000000000LL
#define BACKOFF_BASE_DEFAULT_NS (500LL * 1000000LL)
#define BACKOFF_CAP_DEFAULT_NS (300LL * BACKOFF_NS_PER_S)
#define BACKOFF_DEADLINE_DEFAULT_NS (86400LL * BACKOFF_NS_PER_S)

/* backoff_next: no retry is left (the deadline passed, or Retry-After points
 * past it). */
#define BACKOFF_EXHAUSTED (-1)
/* A bad argument (policy, attempt count, missing rng or output). */
#define BACKOFF_EINVAL (-2)

struct backoff_policy {
    int64_t base_ns;     /* > 0: the first retry's jitter ceiling */
    int64_t cap_ns;      /* >= base_ns: the highest ceiling */
    int64_t deadline_ns; /* > 0: no attempt starts later than first + this */
};

/* A source of uniform 64-bit numbers: next(ctx). Tests pass a fixed one. */
struct backoff_rng {
    uint64_t (*next)(void *ctx);
    void *ctx;
};

/* The defaults above. */
struct backoff_policy backoff_policy_default(void);
/* 0 if the policy is usable, else -1 with the reason in errstr. */
int backoff_policy_check(const struct backoff_policy *p, char *errstr, size_t errcap);

/* splitmix64 for backoff_rng.next; ctx is a uint64_t state the caller seeds
 * (e.g. from getrandom). Jitter needs spread, not secrecy. */
uint64_t backoff_rng_splitmix64(void *ctx);

/* The wait before the next attempt, into *delay_ns (>= 0). attempts: calls
 * made so far (>= 1). first_attempt_ns, now_ns: unix ns. retry_after_ns: the
 * server's minimum wait from now (backoff_retry_after_parse), or < 0 for
 * none. Returns 0, BACKOFF_EXHAUSTED, or BACKOFF_EINVAL. */
int backoff_next(const struct backoff_policy *p, int attempts, int64_t first_attempt_ns,
                 int64_t now_ns, int64_t retry_after_ns, const struct backoff_rng *rng,
                 int64_t *delay_ns);

/* Parses a Retry-After value (RFC 9110 section 10.2.3): delta-seconds, or an
 * HTTP-date in any of the three forms recipients must accept (IMF-fixdate,
 * obsolete RFC 850 and asctime). Surrounding spaces and tabs are ignored.
 * *wait_ns is the wait from now_ns (unix ns): >= 0, a date in the past
 * waits 0; delta-seconds above 2^31 read as 2^31 (RFC 9110 section 1.2.2).
 * Returns 0, or -1 for anything else (then *wait_ns is untouched). */
int backoff_retry_after_parse(const char *value, int64_t now_ns, int64_t *wait_ns);

/* Parses an HTTP-date (the three forms above) into unix seconds. now_s
 * decides the century of an RFC 850 two-digit year (RFC 9110 section
 * 5.6.7: one more than 50 years ahead is taken from the past century).
 * Returns 0, or -1 if the text is not an HTTP-date. */
int backoff_http_date_parse(const char *value, int64_t now_s, int64_t *unix_s);

#endif
