/* Calendar arithmetic (see civil_time.h): written once, here, for every
 * service that works with dates (the dispatcher's backoff.c and quota.c). */
#include "civil_time.h"

int64_t civil_days_from_date(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void civil_date_from_days(int64_t days, int64_t *y, int *m)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

void civil_ymd_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    civil_date_from_days(days, y, m);
    *d = (int)(days - civil_days_from_date(*y, *m, 1)) + 1;
}

int64_t civil_day_of(int64_t t)
{
    return t / CIVIL_DAY_S - (t % CIVIL_DAY_S < 0);
}

bool civil_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int civil_days_in_month(int64_t y, int m)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && civil_is_leap(y) ? 29 : mdays[m - 1];
}

int civil_weekday(int64_t days)
{
    /* 1970-01-01 was a Thursday. */
    return (int)((days % 7 + 11) % 7);
}
