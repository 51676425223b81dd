/* IANA time zones from the system tz database, for services that work in a
 * channel's local time: the dispatcher's quota months, the scheduler's step
 * timing, cron and quiet hours.
 *
 * Why not localtime_r: glibc's reads the process-wide TZ, and setenv is not
 * thread-safe, so a per-channel zone cannot go through it. Instead a zone is
 * loaded once from its TZif file (RFC 8536, under /usr/share/zoneinfo) into
 * an immutable struct civil_zone: its transition table plus the POSIX TZ
 * rule of its footer for times after the table. Lookups are pure functions
 * of that struct, safe from any thread; loading reads a file. This is right
 * for zones with DST and for odd ones (30-minute DST, DST that starts at
 * midnight, skipped days). Asia/Tokyo has no DST and goes through the same
 * code. Calendar arithmetic is civil_time.h's. */
#ifndef KIZUNA_CIVIL_ZONE_H
#define KIZUNA_CIVIL_ZONE_H

#include <stddef.h>
#include <stdint.h>

#define CIVIL_ZONE_NAME_MAX 64
#define CIVIL_TZDIR_DEFAULT "/usr/share/zoneinfo"

/* A time zone: immutable once loaded, shareable between threads. */
struct civil_zone;

/* Loads an IANA zone ("Asia/Tokyo") from tzdir (NULL: /usr/share/zoneinfo).
 * "UTC" and "Etc/UTC" work without the database. Returns NULL with the reason
 * in errstr for a malformed name, an unknown zone or a damaged file. The
 * caller owns the zone (civil_zone_free). Any thread. */
struct civil_zone *civil_zone_load(const char *name, const char *tzdir, char *errstr,
                                   size_t errcap);
/* A zone from TZif bytes (what civil_zone_load reads; borrowed); name is
 * copied. Caller owns the result. */
struct civil_zone *civil_zone_from_tzif(const char *name, const unsigned char *data, size_t len,
                                        char *errstr, size_t errcap);
/* A zone from a POSIX TZ rule string, e.g. "CET-1CEST,M3.5.0,M10.5.0/3".
 * Caller owns the result. */
struct civil_zone *civil_zone_from_posix(const char *tz, char *errstr, size_t errcap);
/* Frees the zone and sets *z to NULL; accepts NULL and *z == NULL. */
void civil_zone_free(struct civil_zone **z);
/* The name it was loaded under (borrowed from the zone); "" for NULL. */
const char *civil_zone_name(const struct civil_zone *z);

/* The UTC offset (seconds east) in effect at unix time t. */
int32_t civil_zone_offset(const struct civil_zone *z, int64_t t);

/* The first instant (unix s) whose local time is at or after local_target,
 * a local wall time written as seconds since 1970-01-01 00:00 local. So a
 * local time that exists once maps to that instant; one inside a
 * spring-forward gap maps to the end of the gap (the first valid instant,
 * e.g. 02:30 on a 02:00->03:00 day is 03:00); one that a fall-back repeats
 * maps to its first occurrence. Never decreases as local_target rises. */
int64_t civil_zone_first_instant(const struct civil_zone *z, int64_t local_target);

#endif
