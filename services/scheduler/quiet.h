/* Quiet hours: a channel's daily window (e.g. 22:00 to 08:00, in its time
 * zone) during which pushes wait; replies are exempt (the caller decides
 * which sends are pushes). Pure functions, safe from any thread.
 *
 * The window is [from, to) on the local wall clock and may cross midnight;
 * from == to is refused (an empty or a full day is ambiguous). A due instant
 * whose wall time is inside is moved to the first instant at or after it at
 * which the wall clock shows `to`:
 * - `to` inside a spring-forward gap: the end of the gap;
 * - a fall-back that repeats wall times: while the clock shows a time inside
 *   the window (also the second time round) the push waits, so an instant in
 *   the repeated hour waits for `to` on the clock it is on. */
#ifndef KIZUNA_SCHEDULER_QUIET_H
#define KIZUNA_SCHEDULER_QUIET_H

#include <stddef.h>
#include <stdint.h>

struct civil_zone;

struct quiet_window {
    int from_min; /* minutes after local midnight, 0..1439 */
    int to_min;   /* 0..1439, != from_min */
};

/* Reads "HH:MM" strings from and to (NUL-terminated) into w. Returns 0, or
 * -1 with errstr naming the field ("from: must be HH:MM", "to: must differ
 * from from"). */
int quiet_window_parse(const char *from, const char *to, struct quiet_window *w, char *errstr,
                       size_t errcap);

/* Whether wall-clock second sec_of_day (0..86399) is inside w. */
int quiet_window_holds(const struct quiet_window *w, int sec_of_day);

/* due_ms unchanged if its wall time in zone z is outside w, else the end of
 * the window as described above (never earlier than due_ms). */
int64_t quiet_window_apply(const struct quiet_window *w, const struct civil_zone *z,
                           int64_t due_ms);

#endif
