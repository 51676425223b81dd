/* The outbox relay's pacing, without a database or a broker: a full batch
 * goes again at once, a part batch lingers, an empty round idles, a
 * database error backs off (doubling, capped) with one warning for the
 * whole outage and one "recovered" when it ends, and a stopping relay ends
 * as soon as there is nothing more to do now. The relay itself runs against
 * the real stack in tests/integration (dispatcher, ingest outage). */
#include <criterion/criterion.h>

#include "outbox_relay.h"

static struct outbox_relay_pace pace_new(void)
{
    return (struct outbox_relay_pace){.batch = 500, .idle_ms = 100, .linger_ms = 20};
}

struct pace_case {
    int n;
    bool stopping;
    enum outbox_relay_step want;
};

Test(outbox_relay_pace, healthy_rounds_map_to_steps)
{
    const struct pace_case cases[] = {
        {500, false, OUTBOX_RELAY_AGAIN},  {501, false, OUTBOX_RELAY_AGAIN},
        {499, false, OUTBOX_RELAY_LINGER}, {1, false, OUTBOX_RELAY_LINGER},
        {0, false, OUTBOX_RELAY_IDLE},     {500, true, OUTBOX_RELAY_AGAIN},
        {1, true, OUTBOX_RELAY_AGAIN},     {0, true, OUTBOX_RELAY_END},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct outbox_relay_pace p = pace_new();
        bool warn = true, recovered = true;
        enum outbox_relay_step got =
            outbox_relay_pace_next(&p, cases[i].n, cases[i].stopping, &warn, &recovered);
        cr_expect_eq(got, cases[i].want, "n=%d stopping=%d: step %d, want %d", cases[i].n,
                     cases[i].stopping, got, cases[i].want);
        cr_expect(!warn && !recovered, "n=%d: no warning, no recovery", cases[i].n);
        cr_expect_eq(p.backoff_ms, 0);
    }
}

Test(outbox_relay_pace, an_outage_warns_once_backs_off_doubling_and_says_when_it_ends)
{
    struct outbox_relay_pace p = pace_new();
    bool warn, recovered;
    const long want_backoff[] = {200, 400, 800, 1600, 3200, 5000, 5000};
    int warnings = 0;
    for (size_t i = 0; i < sizeof want_backoff / sizeof want_backoff[0]; i++) {
        cr_expect_eq(outbox_relay_pace_next(&p, -1, false, &warn, &recovered),
                     OUTBOX_RELAY_BACKOFF);
        cr_expect_eq(p.backoff_ms, want_backoff[i], "error %zu: backoff %ld, want %ld", i,
                     p.backoff_ms, want_backoff[i]);
        cr_expect(!recovered);
        warnings += warn;
    }
    cr_expect_eq(warnings, 1, "one warning for the whole outage, not %d", warnings);

    cr_expect_eq(outbox_relay_pace_next(&p, 0, false, &warn, &recovered), OUTBOX_RELAY_IDLE);
    cr_expect(recovered && !warn, "the first good round ends the outage");
    cr_expect_eq(p.backoff_ms, 0);
    outbox_relay_pace_next(&p, 0, false, &warn, &recovered);
    cr_expect(!recovered, "said once");

    cr_expect_eq(outbox_relay_pace_next(&p, -2, false, &warn, &recovered), OUTBOX_RELAY_BACKOFF);
    cr_expect(warn, "a new outage warns again");
    cr_expect_eq(p.backoff_ms, 200, "and starts from the shortest wait");
}

Test(outbox_relay_pace, a_database_error_while_stopping_ends_the_drain)
{
    struct outbox_relay_pace p = pace_new();
    bool warn, recovered;
    cr_expect_eq(outbox_relay_pace_next(&p, -1, true, &warn, &recovered), OUTBOX_RELAY_END);
    cr_expect(warn);
}
