/* Monthly quota arithmetic; see sim_quota.h for what is counted. */
#include "sim_quota.h"

#include <limits.h>

int sim_quota_month_jst(time_t t)
{
    time_t jst = t + 9 * 3600;
    struct tm tm;
    gmtime_r(&jst, &tm);
    return (tm.tm_year + 1900) * 12 + tm.tm_mon;
}

void sim_quota_roll(struct sim_quota *q, time_t now)
{
    int month = sim_quota_month_jst(now);
    if (month != q->month) {
        q->month = month;
        q->usage = 0;
    }
}

long long sim_quota_remaining(struct sim_quota *q, time_t now)
{
    sim_quota_roll(q, now);
    if (!q->limited)
        return LLONG_MAX;
    return q->usage >= q->limit ? 0 : q->limit - q->usage;
}

bool sim_quota_allows(struct sim_quota *q, long long n, time_t now)
{
    return n <= sim_quota_remaining(q, now);
}

void sim_quota_add(struct sim_quota *q, long long n, time_t now)
{
    sim_quota_roll(q, now);
    q->usage += n;
}
