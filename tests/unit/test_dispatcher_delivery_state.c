/* Unit tests for the delivery's state (services/dispatcher/delivery.h):
 * every move the sender makes is allowed and lands where it says, every
 * other move is refused, and an impossible move or freeing a delivery that
 * is still held stops the process (SIGABRT), so a broken state shows up in
 * tests instead of drifting. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <signal.h>
#include <stdlib.h>

#include "dispatcher/delivery.h"

struct move {
    enum delivery_state from, to;
};

/* The moves the sender makes, written out independently of delivery.c's
 * table: intake -> mailbox -> queue or heap -> call -> outcome, the
 * out-of-memory fallbacks, and the drops at shutdown. */
static const struct move legal_moves[] = {
    {DELIVERY_NEW, DELIVERY_MAILBOX},       {DELIVERY_NEW, DELIVERY_DROPPED},
    {DELIVERY_MAILBOX, DELIVERY_QUEUED},    {DELIVERY_MAILBOX, DELIVERY_WAITING},
    {DELIVERY_MAILBOX, DELIVERY_DROPPED},   {DELIVERY_QUEUED, DELIVERY_QUEUED},
    {DELIVERY_QUEUED, DELIVERY_WAITING},    {DELIVERY_QUEUED, DELIVERY_IN_FLIGHT},
    {DELIVERY_QUEUED, DELIVERY_FINAL},      {DELIVERY_QUEUED, DELIVERY_DROPPED},
    {DELIVERY_WAITING, DELIVERY_QUEUED},    {DELIVERY_WAITING, DELIVERY_WAITING},
    {DELIVERY_WAITING, DELIVERY_DROPPED},   {DELIVERY_IN_FLIGHT, DELIVERY_QUEUED},
    {DELIVERY_IN_FLIGHT, DELIVERY_WAITING}, {DELIVERY_IN_FLIGHT, DELIVERY_FINAL},
    {DELIVERY_IN_FLIGHT, DELIVERY_DROPPED},
};
#define NLEGAL (sizeof legal_moves / sizeof legal_moves[0])

/* Moves that would mean a bug: skipping the mailbox, sending from the heap
 * or the mailbox, a second call for one in flight, anything after the end. */
static const struct move illegal_moves[] = {
    {DELIVERY_NEW, DELIVERY_QUEUED},          {DELIVERY_NEW, DELIVERY_IN_FLIGHT},
    {DELIVERY_NEW, DELIVERY_FINAL},           {DELIVERY_MAILBOX, DELIVERY_MAILBOX},
    {DELIVERY_MAILBOX, DELIVERY_IN_FLIGHT},   {DELIVERY_MAILBOX, DELIVERY_FINAL},
    {DELIVERY_WAITING, DELIVERY_IN_FLIGHT},   {DELIVERY_WAITING, DELIVERY_FINAL},
    {DELIVERY_IN_FLIGHT, DELIVERY_IN_FLIGHT}, {DELIVERY_IN_FLIGHT, DELIVERY_MAILBOX},
    {DELIVERY_FINAL, DELIVERY_QUEUED},        {DELIVERY_FINAL, DELIVERY_DROPPED},
    {DELIVERY_DROPPED, DELIVERY_MAILBOX},     {DELIVERY_DROPPED, DELIVERY_FINAL},
};
#define NILLEGAL (sizeof illegal_moves / sizeof illegal_moves[0])

static bool listed_legal(enum delivery_state from, enum delivery_state to)
{
    for (size_t i = 0; i < NLEGAL; i++)
        if (legal_moves[i].from == from && legal_moves[i].to == to)
            return true;
    return false;
}

Test(dispatcher_delivery_state, a_new_delivery_starts_new)
{
    struct delivery d = {0};
    cr_assert_eq(d.state, DELIVERY_NEW);
    cr_assert_str_eq(delivery_state_name(d.state), "new");
}

Test(dispatcher_delivery_state, each_legal_move_lands_in_its_target)
{
    for (size_t i = 0; i < NLEGAL; i++) {
        struct delivery d = {.state = legal_moves[i].from};
        delivery_move(&d, legal_moves[i].to);
        cr_expect_eq(d.state, legal_moves[i].to, "%s -> %s",
                     delivery_state_name(legal_moves[i].from),
                     delivery_state_name(legal_moves[i].to));
    }
}

Test(dispatcher_delivery_state, exactly_the_listed_moves_are_legal)
{
    for (int from = 0; from < DELIVERY_STATE_COUNT; from++)
        for (int to = 0; to < DELIVERY_STATE_COUNT; to++)
            cr_expect_eq(delivery_move_legal(from, to), listed_legal(from, to), "%s -> %s",
                         delivery_state_name(from), delivery_state_name(to));
}

Test(dispatcher_delivery_state, final_and_dropped_allow_no_move)
{
    for (int to = 0; to < DELIVERY_STATE_COUNT; to++) {
        cr_expect(!delivery_move_legal(DELIVERY_FINAL, to));
        cr_expect(!delivery_move_legal(DELIVERY_DROPPED, to));
    }
}

Test(dispatcher_delivery_state, a_state_out_of_range_is_never_legal)
{
    cr_expect(!delivery_move_legal((enum delivery_state)DELIVERY_STATE_COUNT, DELIVERY_QUEUED));
    cr_expect(!delivery_move_legal(DELIVERY_QUEUED, (enum delivery_state)DELIVERY_STATE_COUNT));
    cr_expect_str_eq(delivery_state_name((enum delivery_state)99), "invalid");
}

/* --- bad moves: each one aborts ------------------------------------------- */

ParameterizedTestParameters(dispatcher_delivery_state, an_illegal_move_aborts)
{
    return cr_make_param_array(struct move, (void *)illegal_moves, NILLEGAL);
}

ParameterizedTest(const struct move *m, dispatcher_delivery_state, an_illegal_move_aborts,
                  .signal = SIGABRT)
{
    struct delivery d = {.state = m->from};
    delivery_move(&d, m->to);
}

ParameterizedTestParameters(dispatcher_delivery_state, freeing_a_held_delivery_aborts)
{
    static const enum delivery_state held[] = {DELIVERY_MAILBOX, DELIVERY_QUEUED, DELIVERY_WAITING,
                                               DELIVERY_IN_FLIGHT};
    return cr_make_param_array(enum delivery_state, (void *)held, sizeof held / sizeof held[0]);
}

ParameterizedTest(const enum delivery_state *state, dispatcher_delivery_state,
                  freeing_a_held_delivery_aborts, .signal = SIGABRT)
{
    struct delivery *d = calloc(1, sizeof *d);
    cr_assert_not_null(d);
    d->state = *state;
    delivery_free(d);
}

Test(dispatcher_delivery_state, freeing_a_new_final_or_dropped_delivery_is_fine)
{
    static const enum delivery_state ends[] = {DELIVERY_NEW, DELIVERY_FINAL, DELIVERY_DROPPED};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        struct delivery *d = calloc(1, sizeof *d);
        cr_assert_not_null(d);
        d->state = ends[i];
        delivery_free(d);
    }
    delivery_free(NULL);
}
