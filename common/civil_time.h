/* Proleptic Gregorian calendar arithmetic on days since 1970-01-01 (Howard
 * Hinnant's days_from_civil and civil_from_days), shared by the
 * dispatcher's backoff.c (HTTP-dates) and quota.c (month windows in a
 * channel's zone), and the services that schedule by date. Our own, not
 * timegm/localtime_r, so nothing depends on the process's TZ or locale.
 * Pure functions: safe from any thread. Time zones: civil_zone.h. */
#ifndef KIZUNA_CIVIL_TIME_H
#define KIZUNA_CIVIL_TIME_H

#include <stdbool.h>
#include <stdint.h>

#define CIVIL_DAY_S 86400LL

/* Days since 1970-01-01 of y-m-d (m 1..12, d 1..31; not checked here). */
int64_t civil_days_from_date(int64_t y, int m, int d);
/* The year and month (1..12) of the day `days` since 1970-01-01. */
void civil_date_from_days(int64_t days, int64_t *y, int *m);
/* The year, month (1..12) and day of month (1..31) of day `days`. */
void civil_ymd_from_days(int64_t days, int64_t *y, int *m, int *d);
/* The day since 1970-01-01 that holds unix time t (floor, also for t < 0). */
int64_t civil_day_of(int64_t t);
bool civil_is_leap(int64_t y);
/* 28..31; m 1..12. */
int civil_days_in_month(int64_t y, int m);
/* The weekday of day `days` since 1970-01-01: 0 = Sunday .. 6 = Saturday. */
int civil_weekday(int64_t days);

#endif
