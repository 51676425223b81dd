/* The monthly message quota of one channel, as LINE counts it: recipients
 * actually delivered to (a multicast to 500 costs 500; replies and friends
 * who blocked the account cost nothing). A send that would pass the limit is
 * refused whole with 429 "You have reached your monthly limit.". The month
 * turns over in Japan time, as LINE's billing month does. Pure functions of
 * a caller-given wall clock; the channel lock guards the struct. */
#ifndef LINESIM_QUOTA_H
#define LINESIM_QUOTA_H

#include <stdbool.h>
#include <time.h>

struct sim_quota {
    bool limited;    /* false: LINE's type "none" */
    long long limit; /* messages per month when limited */
    long long usage; /* totalUsage this month */
    int month;       /* year * 12 + month index in JST of `usage` */
};

/* year * 12 + (month - 1) of the instant t in JST (UTC+9, no DST). */
int sim_quota_month_jst(time_t t);

/* Resets usage when the JST month has changed since the last call. */
void sim_quota_roll(struct sim_quota *q, time_t now);

/* True when n more recipients fit in this month's quota. Rolls the month. */
bool sim_quota_allows(struct sim_quota *q, long long n, time_t now);
/* Adds n recipients to this month's usage. */
void sim_quota_add(struct sim_quota *q, long long n, time_t now);
/* Recipients still allowed this month (LLONG_MAX when unlimited). */
long long sim_quota_remaining(struct sim_quota *q, time_t now);

#endif
