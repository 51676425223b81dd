/* libFuzzer target for the scheduler's input readers: a cron expression
 * (services/scheduler/cron.c, POST /v1/channels/{c}/schedules), a scenario
 * body (services/scheduler/scenario_input.c) and a quiet-hours window
 * (services/scheduler/quiet.c).
 *
 * Input: one mode byte, then the text.
 *   mode % 3 == 0: a cron expression. Contract: 0 with no empty field and a
 *     next fire (UTC and Asia/Tokyo) strictly after the start, on a day the
 *     expression matches, at an hour and minute it names; or -1 with a
 *     reason that names the field ("minute: ...", "expected 5 fields ...").
 *   mode % 3 == 1: a scenario body (JSON). Contract: 0 with a name, 1..100
 *     steps each with a timing that timing_check accepts and messages or
 *     actions; or -1 with at least one error of a known kind.
 *   mode % 3 == 2: "from" NUL "to". Contract: 0 with from != to and a due
 *     instant inside the window moved to a later one outside it; or -1
 *     with a reason naming from or to. */
#include <jansson.h>

#include "civil_time.h"
#include "civil_zone.h"
#include "fuzz.h"
#include "scheduler/cron.h"
#include "scheduler/quiet.h"
#include "scheduler/scenario_input.h"
#include "scheduler/timing.h"

static struct civil_zone *utc, *tokyo;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    utc = civil_zone_load("UTC", NULL, NULL, 0);
    tokyo = civil_zone_load("Asia/Tokyo", NULL, NULL, 0);
    if (!utc || !tokyo)
        abort();
    return 0;
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void cron_check(const char *text)
{
    struct cron c;
    char err[256] = "";
    if (cron_parse(text, &c, err, sizeof err) != 0) {
        FUZZ_CHECK(starts(err, "minute: ") || starts(err, "hour: ") ||
                   starts(err, "day of month: ") || starts(err, "month: ") ||
                   starts(err, "day of week: ") || starts(err, "expected 5 fields") ||
                   starts(err, "longer than"));
        return;
    }
    FUZZ_CHECK(c.minutes && c.hours && c.days && c.months && c.weekdays);
    const int64_t after = 1796205600123LL; /* 2026-12-02T10:00:00.123Z */
    struct civil_zone *zones[2] = {utc, tokyo};
    for (int i = 0; i < 2; i++) {
        int64_t next = 0;
        FUZZ_CHECK(cron_next(&c, zones[i], after, &next) == 0);
        FUZZ_CHECK(next > after && next % 1000 == 0);
        int64_t local = next / 1000 + civil_zone_offset(zones[i], next / 1000);
        int64_t day = civil_day_of(local);
        int sec = (int)(local - day * CIVIL_DAY_S);
        FUZZ_CHECK(cron_day_matches(&c, day));
        FUZZ_CHECK(c.hours >> (sec / 3600) & 1);
        FUZZ_CHECK(c.minutes >> (sec / 60 % 60) & 1);
    }
}

static void scenario_check(const char *body, size_t len)
{
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!doc)
        return;
    struct jsonf_error errs[4];
    struct jsonf_reader reader = {.errors = errs, .cap = 4};
    static struct scenario_input in;
    if (scenario_input_read(doc, &reader, &in) != 0) {
        FUZZ_CHECK(reader.n >= 1);
        for (size_t i = 0; i < reader.n && i < 4; i++)
            FUZZ_CHECK(errs[i].kind >= JSONF_MISSING && errs[i].kind <= JSONF_UNKNOWN &&
                       fuzz_terminated(errs[i].path, sizeof errs[i].path));
    } else {
        FUZZ_CHECK(in.name && in.n_steps >= 1 && in.n_steps <= SCENARIO_STEPS_MAX);
        for (size_t i = 0; i < in.n_steps; i++) {
            FUZZ_CHECK(timing_check(&in.steps[i].timing, NULL, 0) == 0);
            FUZZ_CHECK(in.steps[i].messages || in.steps[i].actions);
        }
    }
    json_decref(doc);
}

static void quiet_check(const char *text, size_t len)
{
    size_t flen = strlen(text);
    const char *to = flen < len ? text + flen + 1 : "";
    struct quiet_window w;
    char err[128] = "";
    if (quiet_window_parse(text, to, &w, err, sizeof err) != 0) {
        FUZZ_CHECK(starts(err, "from: ") || starts(err, "to: "));
        return;
    }
    FUZZ_CHECK(w.from_min != w.to_min);
    int64_t day = civil_days_from_date(2026, 12, 2);
    int64_t due = timing_wall_instant_ms(tokyo, day, w.from_min);
    int64_t end = quiet_window_apply(&w, tokyo, due);
    FUZZ_CHECK(end > due);
    FUZZ_CHECK(quiet_window_apply(&w, tokyo, end) == end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = fuzz_strndup(data + 1, size - 1);
    switch (data[0] % 3) {
    case 0:
        cron_check(text);
        break;
    case 1:
        scenario_check(text, size - 1);
        break;
    default:
        quiet_check(text, size - 1);
        break;
    }
    free(text);
    return 0;
}
