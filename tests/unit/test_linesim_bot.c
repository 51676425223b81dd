/* The bot behind a simulated channel (tests/line-sim/sim_bot.h and the
 * registry rules in sim_state.c): the default bot user id derived from a
 * channel id, LINE's user id form, a bot fixed at registration, and
 * LINESIM_CHANNELS entries with a bot user id. The HTTP side (GET
 * /v2/bot/info, POST /_sim/channels) is in test_linesim_http.c. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "sim_bot.h"
#include "sim_control.h"
#include "sim_state.h"

struct fixture {
    struct sim_state *st;
    struct sim_channel *ch;
};

Test(linesim_bot, default_bot_user_id_is_lines_form_and_fixed_per_channel)
{
    char a[SIM_BOT_USER_ID_LEN + 1], again[SIM_BOT_USER_ID_LEN + 1], b[SIM_BOT_USER_ID_LEN + 1];
    sim_bot_user_id_default("1001", a);
    sim_bot_user_id_default("1001", again);
    sim_bot_user_id_default("1002", b);
    cr_expect(sim_bot_user_id_valid(a), "%s", a);
    cr_expect(sim_bot_user_id_valid(b), "%s", b);
    cr_expect_str_eq(a, again);
    cr_expect_str_neq(a, b);
}

static const struct {
    const char *id;
    bool valid;
} bot_ids[] = {
    {"U8e742f61d673b39c7fff3cecb7536ef0", true},
    {"U8E742F61D673B39C7FFF3CECB7536EF0", false},  /* upper-case hex */
    {"C8e742f61d673b39c7fff3cecb7536ef0", false},  /* a group id */
    {"U8e742f61d673b39c7fff3cecb7536ef", false},   /* 31 digits */
    {"U8e742f61d673b39c7fff3cecb7536ef00", false}, /* 33 digits */
    {"", false},
    {NULL, false},
};

Test(linesim_bot, bot_user_ids_must_have_lines_form)
{
    for (size_t i = 0; i < sizeof bot_ids / sizeof bot_ids[0]; i++)
        cr_expect_eq(sim_bot_user_id_valid(bot_ids[i].id), bot_ids[i].valid, "%s",
                     bot_ids[i].id ? bot_ids[i].id : "(null)");
}

Test(linesim_bot, a_channels_bot_is_fixed_at_registration)
{
    struct sim_state_options opts = {.record = false};
    struct fixture fx = {sim_state_new(&opts), NULL};
    cr_assert_not_null(fx.st);
    bool created;
    cr_assert_eq(sim_state_channel_add(fx.st, "1001", "tok-1001", NULL, &created), 0);
    fx.ch = sim_state_acquire_token(fx.st, "tok-1001");
    cr_assert_not_null(fx.ch);
    sim_state_release(fx.st);
    char def[SIM_BOT_USER_ID_LEN + 1];
    sim_bot_user_id_default("1001", def);
    json_t *info = sim_channel_bot_info(fx.st, fx.ch);
    cr_expect_str_eq(json_string_value(json_object_get(info, "userId")), def);
    json_decref(info);
    /* The same bot again adds a token; another bot is refused. */
    cr_expect_eq(sim_state_channel_add(fx.st, "1001", "tok-b", def, &created), 0);
    cr_expect_not(created);
    cr_expect_eq(sim_state_channel_add(fx.st, "1001", "tok-c", "U0123456789abcdef0123456789abcdef",
                                       &created),
                 -3);
    cr_expect_null(sim_state_acquire_token(fx.st, "tok-c"), "a refused token is not registered");
    cr_expect_eq(sim_state_channel_add(fx.st, "1003", "tok-d", "Ubot", &created), -4);
    cr_expect_eq(sim_state_channel_add(fx.st, "1003", "tok-d", "U0123456789abcdef0123456789abcdef",
                                       &created),
                 0);
    struct sim_channel *ch = sim_state_acquire_token(fx.st, "tok-d");
    cr_assert_not_null(ch);
    info = sim_channel_bot_info(fx.st, ch);
    sim_state_release(fx.st);
    cr_expect_str_eq(json_string_value(json_object_get(info, "userId")),
                     "U0123456789abcdef0123456789abcdef");
    json_decref(info);
    sim_state_free(&fx.st);
}

static const struct {
    const char *spec;
    int n; /* channels registered, or -1 */
} preloads[] = {
    {"1:t1", 1},
    {"1:t1,2:t2:U0123456789abcdef0123456789abcdef", 2},
    {"1:t1:Ubot", -1},
    {"1:t1:U0123456789abcdef0123456789abcdef,1:t2:Ufedcba9876543210fedcba9876543210", -1},
    {"1", -1},
    {":t1", -1},
};

Test(linesim_bot, preloaded_channels_take_an_optional_bot_user_id)
{
    for (size_t i = 0; i < sizeof preloads / sizeof preloads[0]; i++) {
        struct sim_state_options opts = {.record = false};
        struct sim_state *st = sim_state_new(&opts);
        cr_assert_not_null(st);
        char err[256] = "";
        int n = sim_control_preload(st, preloads[i].spec, err, sizeof err);
        cr_expect_eq(n, preloads[i].n, "%s: %d (%s)", preloads[i].spec, n, err);
        if (n < 0)
            cr_expect_neq(err[0], '\0', "%s: a reason", preloads[i].spec);
        sim_state_free(&st);
    }
}
