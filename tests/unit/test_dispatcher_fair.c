/* Unit tests for services/dispatcher/sender_fair: the round-robin that
 * serves channels one call each per round and resumes after the last one
 * served (where the dispatcher used to start at the first channel every
 * time and stop at the first without a slot), keeping its place when
 * channels leave, and the per-tenant counters and caps. */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "dispatcher/sender_fair.h"

/* A fake dispatcher: channels with a backlog each, and a number of free
 * slots; each visit starts one call if the channel has work and a slot is
 * free, as sender_schedule.c's visit does. */
#define CHANS 4
struct fake {
    long backlog[CHANS];
    long slots;          /* free call slots */
    long started[CHANS]; /* calls started per channel */
    char order[256];     /* channels in the order they started, "0120..." */
    size_t norder;
    long visits;
};

static enum sender_rr_step fake_visit(void *ctx, size_t i)
{
    struct fake *f = ctx;
    f->visits++;
    if (f->backlog[i] == 0)
        return SENDER_RR_IDLE;
    if (f->slots == 0)
        return SENDER_RR_STOP;
    f->backlog[i]--;
    f->slots--;
    f->started[i]++;
    if (f->norder + 1 < sizeof f->order)
        f->order[f->norder++] = (char)('0' + i);
    return SENDER_RR_STARTED;
}

Test(dispatcher_fair, a_big_backlog_does_not_take_every_slot_of_one_run)
{
    /* Channel 0 has a campaign; 1 and 2 one send each; 8 slots. */
    struct fake f = {.backlog = {1000, 1, 1, 0}, .slots = 8};
    struct sender_rr rr = {0};
    cr_expect_eq(sender_rr_run(&rr, CHANS, fake_visit, &f), 8);
    cr_expect_eq(f.started[1], 1, "channel 1 was served");
    cr_expect_eq(f.started[2], 1, "channel 2 was served");
    cr_expect_eq(f.started[0], 6, "the campaign had the rest");
    cr_expect_str_eq(f.order, "01200000");
}

Test(dispatcher_fair, a_freed_slot_goes_to_the_channel_after_the_last_one_served)
{
    /* Every slot is taken; then one call ends at a time (one free slot per
     * run), as completions arrive. A channel that gets work later is served
     * within one turn, not after the campaign. */
    struct fake f = {.backlog = {1000, 0, 0, 0}, .slots = 4};
    struct sender_rr rr = {0};
    sender_rr_run(&rr, CHANS, fake_visit, &f);
    cr_expect_eq(f.started[0], 4);
    f.backlog[2] = 1;
    f.backlog[3] = 1;
    f.norder = 0;
    memset(f.order, 0, sizeof f.order);
    for (int completion = 0; completion < 4; completion++) {
        f.slots = 1;
        sender_rr_run(&rr, CHANS, fake_visit, &f);
    }
    cr_expect_eq(f.started[2], 1, "channel 2 got a slot (order %s)", f.order);
    cr_expect_eq(f.started[3], 1, "channel 3 got a slot (order %s)", f.order);
    cr_expect_eq(strchr(f.order, '2') - f.order < 3, true, "order %s", f.order);
}

Test(dispatcher_fair, a_run_ends_when_no_slot_is_free_or_no_channel_has_work)
{
    struct fake f = {.backlog = {2, 0, 1, 0}, .slots = 100};
    struct sender_rr rr = {0};
    cr_expect_eq(sender_rr_run(&rr, CHANS, fake_visit, &f), 3);
    cr_expect_eq(f.slots, 97);
    cr_expect_leq(f.visits, 3 * CHANS, "visits %ld", f.visits);

    struct fake none = {.backlog = {5, 5, 5, 5}, .slots = 0};
    struct sender_rr at = {.next = 2};
    cr_expect_eq(sender_rr_run(&at, CHANS, fake_visit, &none), 0);
    cr_expect_eq(at.next, 2, "nothing served: the position stays");
    cr_expect_eq(sender_rr_run(&at, 0, fake_visit, &none), 0, "no channels");
}

Test(dispatcher_fair, the_position_wraps_and_survives_a_shrinking_list)
{
    struct fake f = {.backlog = {5, 5, 5, 5}, .slots = 3};
    struct sender_rr rr = {.next = 3};
    sender_rr_run(&rr, CHANS, fake_visit, &f);
    cr_expect_str_eq(f.order, "301");
    cr_expect_eq(rr.next, 2);
    struct sender_rr past = {.next = 9}; /* the list shrank under it */
    struct fake g = {.backlog = {1, 1, 0, 0}, .slots = 1};
    sender_rr_run(&past, 2, fake_visit, &g);
    cr_expect_str_eq(g.order, "0");
}

/* --- compaction ------------------------------------------------------------------------- */

struct list {
    int items[8];
    bool keep[8];
};

static bool list_keep(void *ctx, size_t i)
{
    return ((struct list *)ctx)->keep[i];
}

static void list_move(void *ctx, size_t from, size_t to)
{
    struct list *l = ctx;
    l->items[to] = l->items[from];
    l->keep[to] = l->keep[from];
}

Test(dispatcher_fair, removing_idle_channels_keeps_order_and_the_next_one)
{
    static const struct {
        bool keep[6];
        size_t next, want_next, want_n;
        int want[6];
    } cases[] = {
        /* next names a kept slot: it still does */
        {{true, false, true, false, true, true}, 4, 2, 4, {0, 2, 4, 5}},
        /* next names a removed slot: the next kept one after it */
        {{true, false, true, false, true, true}, 3, 2, 4, {0, 2, 4, 5}},
        {{true, false, true, false, false, false}, 3, 0, 2, {0, 2}}, /* none after: wrap */
        {{false, false, false, false, false, false}, 2, 0, 0, {0}},
        {{true, true, true, true, true, true}, 5, 5, 6, {0, 1, 2, 3, 4, 5}},
        {{false, true, true, true, true, true}, 0, 0, 5, {1, 2, 3, 4, 5}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct list l;
        for (int i = 0; i < 6; i++) {
            l.items[i] = i;
            l.keep[i] = cases[c].keep[i];
        }
        struct sender_rr rr = {.next = cases[c].next};
        size_t n = sender_rr_compact(&rr, 6, list_keep, list_move, &l);
        cr_expect_eq(n, cases[c].want_n, "case %zu", c);
        cr_expect_eq(rr.next, cases[c].want_next, "case %zu: next %zu", c, rr.next);
        for (size_t i = 0; i < n && i < cases[c].want_n; i++)
            cr_expect_eq(l.items[i], cases[c].want[i], "case %zu item %zu", c, i);
    }
}

/* --- per-tenant counts and caps ---------------------------------------------------------- */

Test(dispatcher_fair, a_tenant_at_its_cap_has_no_room_and_others_are_untouched)
{
    struct sender_counts *c = sender_counts_new();
    cr_assert_not_null(c);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sender_counts_add(c, "acme", 1), 0);
    cr_expect_eq(sender_counts_get(c, "acme"), 3);
    cr_expect_eq(sender_counts_room(c, "acme", 3), 0, "at the cap");
    cr_expect_eq(sender_counts_room(c, "acme", 5), 2);
    cr_expect_eq(sender_counts_room(c, "globex", 3), 3, "another tenant keeps its share");
    cr_expect_eq(sender_counts_room(c, "acme", 0), LONG_MAX, "0: no cap of its own");
    sender_counts_add(c, "acme", -1);
    cr_expect_eq(sender_counts_room(c, "acme", 3), 1, "a call ended: room again");
    sender_counts_add(c, "acme", -5);
    cr_expect_eq(sender_counts_get(c, "acme"), 0, "never below 0");
    sender_counts_add(c, "globex", -1);
    cr_expect_eq(sender_counts_get(c, "globex"), 0);
    cr_expect_eq(sender_counts_room(c, "acme", 1), 1);
    sender_counts_free(&c);
    cr_expect_null(c);
    sender_counts_free(&c);
}
