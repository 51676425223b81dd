/* When a step is due: the arithmetic of scenario step timings and reminder
 * steps, in a channel's time zone (common/civil_zone.h: the system tz
 * database, never fixed offsets). Pure functions of their arguments, safe
 * from any thread; the *_now variants read "now" from common/clock.h so
 * tests can inject it.
 *
 * Local times that do not exist or exist twice (docs/internals/scheduler.md):
 * - a wall time inside a spring-forward gap is due at the end of the gap,
 *   the first valid instant (02:30 on a 02:00->03:00 day: 03:00 local);
 * - a wall time that a fall-back repeats is due at its first occurrence.
 * Instants are unix milliseconds; wall times are whole minutes. */
#ifndef KIZUNA_SCHEDULER_TIMING_H
#define KIZUNA_SCHEDULER_TIMING_H

#include <stddef.h>
#include <stdint.h>

struct civil_zone;

#define TIMING_AFTER_S_MAX (3660LL * 86400) /* ten years and then some */
#define TIMING_DAY_MAX 3660
#define TIMING_REMINDER_DAYS_MAX 3660

/* The two forms of a scenario step's timing. */
enum timing_kind {
    TIMING_AFTER = 1, /* {"after_s": N, "from": "start" | "previous"} */
    TIMING_DAY_AT,    /* {"day": N, "at": "HH:MM"} */
};

enum timing_from {
    TIMING_FROM_PREVIOUS = 0, /* the default */
    TIMING_FROM_START,
};

struct timing {
    enum timing_kind kind;
    int64_t after_s;       /* TIMING_AFTER: 0..TIMING_AFTER_S_MAX */
    enum timing_from from; /* TIMING_AFTER */
    int day;               /* TIMING_DAY_AT: 0..TIMING_DAY_MAX; 0 is the start day */
    int at_min;            /* TIMING_DAY_AT: minutes after local midnight, 0..1439 */
};

/* The two forms of a reminder step: "N days before, at HH:MM" and "S
 * seconds before" the friend's goal. */
enum reminder_kind {
    REMINDER_BEFORE_S = 1,   /* {"before_s": S} */
    REMINDER_BEFORE_DAYS_AT, /* {"before": {"days": N, "at": "HH:MM"}} */
};

struct reminder_timing {
    enum reminder_kind kind;
    int64_t before_s; /* REMINDER_BEFORE_S: 0..TIMING_AFTER_S_MAX */
    int days;         /* REMINDER_BEFORE_DAYS_AT: 0..TIMING_REMINDER_DAYS_MAX */
    int at_min;       /* REMINDER_BEFORE_DAYS_AT: 0..1439 */
};

/* What timing_reminder_due decided. */
enum timing_result {
    TIMING_DUE = 0,     /* *due_ms is set */
    TIMING_SKIPPED = 1, /* the step was already past when the goal was set: never sent late */
};

/* Parses exactly "HH:MM" (two digits each, 00:00 .. 23:59; len bytes of s,
 * not NUL-terminated) into minutes after midnight. Returns 0, or -1 for
 * anything else ("25:00", "9:00", "12:60", "24:00"). */
int timing_hhmm_parse(const char *s, size_t len, int *minutes);

/* Parses an RFC 3339 date-time (len bytes of s): "YYYY-MM-DDTHH:MM:SS",
 * optional fraction (milliseconds kept), then "Z" or "+HH:MM"/"-HH:MM"
 * ('t' and 'z' too). Into unix ms. Returns 0, or -1 for anything else
 * (also Feb 30, hour 24, a leap second). */
int timing_rfc3339_parse(const char *s, size_t len, int64_t *ms);

/* 0 if t is in range, else -1 with the reason in errstr (bad kind, negative
 * delay, day -1, at outside 0..1439). */
int timing_check(const struct timing *t, char *errstr, size_t errcap);
int timing_reminder_check(const struct reminder_timing *r, char *errstr, size_t errcap);

/* The due instant of a step with timing t for an enrollment that started at
 * start_ms, whose previous step was due at prev_ms (start_ms for the first
 * step):
 * - after_s: start_ms or prev_ms, plus after_s seconds;
 * - day N at HH:MM: that wall time on the start's local date + N days in
 *   zone z (gap and fall-back as in the file comment).
 * A step is never due before prev_ms, so steps stay in order, and a wall
 * time already passed (e.g. earlier on day 0) is due at once. Returns 0, or
 * -1 for a timing that timing_check refuses. */
int timing_step_due(const struct timing *t, int64_t start_ms, int64_t prev_ms,
                    const struct civil_zone *z, int64_t *due_ms);

/* The instant of reminder step r for a goal at goal_ms in zone z:
 * goal - before_s, or the wall time at_min on the goal's local date minus
 * `days` (which may fall after the goal for days 0: it is kept). Returns
 * TIMING_SKIPPED when that instant is before now_ms (the step is already
 * past when the goal is set or moved), TIMING_DUE with *due_ms otherwise,
 * -1 for a timing that timing_reminder_check refuses. */
int timing_reminder_due(const struct reminder_timing *r, int64_t goal_ms, int64_t now_ms,
                        const struct civil_zone *z, int64_t *due_ms);
/* The same with now read from clock_wall_ms() (common/clock.h). */
int timing_reminder_due_now(const struct reminder_timing *r, int64_t goal_ms,
                            const struct civil_zone *z, int64_t *due_ms);

/* The first instant (unix ms) at which zone z's wall clock shows minute
 * at_min of the local day `day` (days since 1970-01-01), with the gap and
 * fall-back rules above. Shared with cron.c and quiet.c. */
int64_t timing_wall_instant_ms(const struct civil_zone *z, int64_t day, int at_min);

/* The local day (days since 1970-01-01) and seconds into it of instant t_ms
 * in zone z. */
void timing_local_of(const struct civil_zone *z, int64_t t_ms, int64_t *day, int *sec_of_day);

#endif
