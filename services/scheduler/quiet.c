/* Quiet hours (see quiet.h): where a push due inside a channel's window
 * waits until, with the wall clock read through common/civil_zone.h. */
#include "quiet.h"

#include <string.h>

#include "civil_time.h"
#include "civil_zone.h"
#include "errstr.h"
#include "timing.h"

int quiet_window_parse(const char *from, const char *to, struct quiet_window *w, char *errstr,
                       size_t errcap)
{
    struct quiet_window v;
    if (!from || timing_hhmm_parse(from, strlen(from), &v.from_min) != 0) {
        errstr_set(errstr, errcap, "from: must be HH:MM, 00:00..23:59");
        return -1;
    }
    if (!to || timing_hhmm_parse(to, strlen(to), &v.to_min) != 0) {
        errstr_set(errstr, errcap, "to: must be HH:MM, 00:00..23:59");
        return -1;
    }
    if (v.from_min == v.to_min) {
        errstr_set(errstr, errcap, "to: must differ from from (an empty or whole-day window)");
        return -1;
    }
    *w = v;
    return 0;
}

int quiet_window_holds(const struct quiet_window *w, int sec_of_day)
{
    int from = w->from_min * 60, to = w->to_min * 60;
    if (from < to)
        return sec_of_day >= from && sec_of_day < to;
    return sec_of_day >= from || sec_of_day < to; /* crosses midnight */
}

int64_t quiet_window_apply(const struct quiet_window *w, const struct civil_zone *z, int64_t due_ms)
{
    int64_t day;
    int sec;
    timing_local_of(z, due_ms, &day, &sec);
    if (!quiet_window_holds(w, sec))
        return due_ms;
    /* The window ends on the same local day, or the next when it crosses
     * midnight and the clock is still before it. */
    int64_t end_day = (w->from_min > w->to_min && sec >= w->from_min * 60) ? day + 1 : day;
    int64_t end_ms = timing_wall_instant_ms(z, end_day, w->to_min);
    if (end_ms > due_ms)
        return end_ms;
    /* The first `to` of that day is already behind: due_ms is in wall time
     * that a fall-back repeats. The clock runs on from here at this offset
     * until it shows `to` again. */
    int64_t left_s = (end_day - day) * CIVIL_DAY_S + (int64_t)w->to_min * 60 - sec;
    int64_t due_s = due_ms / 1000 - (due_ms % 1000 < 0);
    return (due_s + left_s) * 1000;
}
