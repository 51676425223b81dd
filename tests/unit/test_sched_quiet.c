/* Unit tests for services/scheduler/quiet: a due instant inside a
 * channel's quiet window waits for its end (windows that cross midnight,
 * year ends, the 2026/2027 DST changes of New York and Berlin, Tokyo), one
 * outside is unchanged, and a table of bad windows. */
#include <criterion/criterion.h>

#include <string.h>

#include "civil_time.h"
#include "civil_zone.h"
#include "scheduler/quiet.h"

static int64_t utc_ms(int y, int m, int d, int h, int mi)
{
    return (civil_days_from_date(y, m, d) * CIVIL_DAY_S + h * 3600 + mi * 60) * 1000;
}

static struct quiet_window window(const char *from, const char *to)
{
    struct quiet_window w;
    char err[128] = "";
    cr_assert_eq(quiet_window_parse(from, to, &w, err, sizeof err), 0, "%s-%s: %s", from, to, err);
    return w;
}

struct quiet_case {
    const char *name;
    const char *zone, *from, *to;
    int64_t due, want;
};

Test(sched_quiet, a_push_inside_the_window_waits_for_its_end_and_one_outside_goes)
{
    const int64_t tokyo_dec2 = utc_ms(2026, 12, 1, 15, 0); /* 2026-12-02 00:00 JST */
    const int64_t m = 60000, h = 60 * m;
    const struct quiet_case cases[] = {
        {"tokyo 23:30 waits for 08:00", "Asia/Tokyo", "22:00", "08:00", tokyo_dec2 - 30 * m,
         tokyo_dec2 + 8 * h},
        {"tokyo 07:00 waits for 08:00 the same day", "Asia/Tokyo", "22:00", "08:00",
         tokyo_dec2 + 7 * h, tokyo_dec2 + 8 * h},
        {"tokyo 22:00 is inside", "Asia/Tokyo", "22:00", "08:00", tokyo_dec2 - 2 * h,
         tokyo_dec2 + 8 * h},
        {"tokyo 08:00 is outside", "Asia/Tokyo", "22:00", "08:00", tokyo_dec2 + 8 * h,
         tokyo_dec2 + 8 * h},
        {"tokyo 07:59:59.999 waits", "Asia/Tokyo", "22:00", "08:00", tokyo_dec2 + 8 * h - 1,
         tokyo_dec2 + 8 * h},
        {"tokyo noon goes", "Asia/Tokyo", "22:00", "08:00", tokyo_dec2 + 12 * h + 123,
         tokyo_dec2 + 12 * h + 123},
        {"a daytime window", "Asia/Tokyo", "12:00", "13:30", tokyo_dec2 + 12 * h + 5 * m,
         tokyo_dec2 + 13 * h + 30 * m},
        {"after a daytime window", "Asia/Tokyo", "12:00", "13:30", tokyo_dec2 + 14 * h,
         tokyo_dec2 + 14 * h},
        {"a window from midnight", "Asia/Tokyo", "00:00", "06:00", tokyo_dec2 + 1,
         tokyo_dec2 + 6 * h},
        {"tokyo new year's eve waits for 2027", "Asia/Tokyo", "22:00", "08:00",
         utc_ms(2026, 12, 31, 14, 0), utc_ms(2026, 12, 31, 23, 0)},
        {"end of february 2028 waits for the leap day", "Asia/Tokyo", "21:00", "09:00",
         utc_ms(2028, 2, 28, 13, 0), utc_ms(2028, 2, 29, 0, 0)},
        /* New York 2026-03-08 02:00 EST -> 03:00 EDT: the night is an hour shorter. */
        {"ny spring night waits until 08:00 EDT", "America/New_York", "22:00", "08:00",
         utc_ms(2026, 3, 8, 4, 0), utc_ms(2026, 3, 8, 12, 0)},
        {"ny window ending in the gap ends at 03:00 EDT", "America/New_York", "01:00", "02:30",
         utc_ms(2026, 3, 8, 6, 30), utc_ms(2026, 3, 8, 7, 0)},
        /* New York 2026-11-01 02:00 EDT -> 01:00 EST: the night is an hour longer. */
        {"ny fall night waits until 08:00 EST", "America/New_York", "22:00", "08:00",
         utc_ms(2026, 11, 1, 3, 0), utc_ms(2026, 11, 1, 13, 0)},
        {"ny fall first pass 01:15 waits for 01:30 EDT", "America/New_York", "00:00", "01:30",
         utc_ms(2026, 11, 1, 5, 15), utc_ms(2026, 11, 1, 5, 30)},
        {"ny fall second pass 01:15 waits for 01:30 EST", "America/New_York", "00:00", "01:30",
         utc_ms(2026, 11, 1, 6, 15), utc_ms(2026, 11, 1, 6, 30)},
        {"ny fall second pass 01:45 goes", "America/New_York", "00:00", "01:30",
         utc_ms(2026, 11, 1, 6, 45), utc_ms(2026, 11, 1, 6, 45)},
        {"ny 2027 spring 22:00-08:00", "America/New_York", "22:00", "08:00",
         utc_ms(2027, 3, 14, 3, 30), utc_ms(2027, 3, 14, 12, 0)},
        /* Berlin 2026-10-25 03:00 CEST -> 02:00 CET. */
        {"berlin fall 02:40 CEST goes", "Europe/Berlin", "22:00", "02:30",
         utc_ms(2026, 10, 25, 0, 40), utc_ms(2026, 10, 25, 0, 40)},
        {"berlin fall 02:10 CET (second pass) waits for 02:30 CET", "Europe/Berlin", "22:00",
         "02:30", utc_ms(2026, 10, 25, 1, 10), utc_ms(2026, 10, 25, 1, 30)},
        /* Berlin 2027-03-28 02:00 CET -> 03:00 CEST. */
        {"berlin 2027 window ending in the gap", "Europe/Berlin", "22:00", "02:30",
         utc_ms(2027, 3, 28, 0, 59), utc_ms(2027, 3, 28, 1, 0)},
        {"berlin 2027 fall 07:00 CET", "Europe/Berlin", "21:00", "07:00",
         utc_ms(2027, 10, 30, 20, 0), utc_ms(2027, 10, 31, 6, 0)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256];
        struct civil_zone *z = civil_zone_load(cases[i].zone, NULL, err, sizeof err);
        cr_assert_not_null(z, "%s", err);
        struct quiet_window w = window(cases[i].from, cases[i].to);
        int64_t got = quiet_window_apply(&w, z, cases[i].due);
        cr_expect_eq(got, cases[i].want, "%s: %lld, want %lld (%+lld s)", cases[i].name,
                     (long long)got, (long long)cases[i].want,
                     (long long)((got - cases[i].want) / 1000));
        cr_expect_geq(got, cases[i].due, "%s: earlier than due", cases[i].name);
        civil_zone_free(&z);
    }
}

Test(sched_quiet, bad_windows_are_refused_naming_the_field)
{
    static const struct {
        const char *from, *to, *field;
    } bad[] = {
        {"25:00", "08:00", "from:"}, {"22:00", "24:00", "to:"}, {"22:00", "22:00", "to:"},
        {"8:00", "09:00", "from:"},  {"", "08:00", "from:"},    {"22:00", "", "to:"},
        {NULL, "08:00", "from:"},    {"22:00", NULL, "to:"},    {"22:00", "8", "to:"},
        {"22:60", "08:00", "from:"}, {"00:00", "00:00", "to:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct quiet_window w = {.from_min = 7, .to_min = 8};
        char err[128] = "";
        cr_expect_eq(quiet_window_parse(bad[i].from, bad[i].to, &w, err, sizeof err), -1,
                     "case %zu accepted", i);
        cr_expect(strncmp(err, bad[i].field, strlen(bad[i].field)) == 0, "case %zu: '%s'", i, err);
        cr_expect(w.from_min == 7 && w.to_min == 8, "case %zu wrote the output", i);
    }
}
