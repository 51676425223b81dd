/* consumer_start and outbox_relay_start refuse incomplete options before
 * they connect to anything, each with a message, so that a service's one
 * line of set-up fails at start-up rather than later. */
#include <criterion/criterion.h>
#include <string.h>

#include "consumer.h"
#include "outbox_relay.h"

static enum consumer_verdict handler(void *ctx, struct db *db, const struct consumer_record *rec,
                                     const char **reason)
{
    (void)ctx, (void)db, (void)rec, (void)reason;
    return CONSUMER_DONE;
}

struct options_case {
    const char *what;
    struct consumer_options opts;
};

Test(consumer_options, incomplete_options_are_refused_with_a_message)
{
    static const char *const topics[] = {"friend.events", NULL};
    static const char *const no_topics[] = {NULL};
    static const char *const many[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i",
                                       "j", "k", "l", "m", "n", "o", "p", "q", NULL};
    char long_name[80];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    const struct consumer_options good = {
        .name = "seg-friends", .topics = topics, .handler = handler, .brokers = "b:1", .dsn = "x"};
    struct options_case cases[] = {
        {"no name", good},    {"empty name", good},       {"name too long", good},
        {"no topics", good},  {"empty topic list", good}, {"too many topics", good},
        {"no handler", good}, {"no brokers", good},       {"no database URL", good},
    };
    cases[0].opts.name = NULL;
    cases[1].opts.name = "";
    cases[2].opts.name = long_name;
    cases[3].opts.topics = NULL;
    cases[4].opts.topics = no_topics;
    cases[5].opts.topics = many;
    cases[6].opts.handler = NULL;
    cases[7].opts.brokers = NULL;
    cases[8].opts.dsn = NULL;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char errstr[256] = "";
        struct consumer *c = consumer_start(&cases[i].opts, errstr, sizeof errstr);
        cr_expect_null(c, "%s: accepted", cases[i].what);
        cr_expect(strstr(errstr, "consumer needs") != NULL, "%s: errstr %s", cases[i].what, errstr);
        consumer_free(&c);
    }
    char errstr[256] = "";
    cr_expect_null(consumer_start(NULL, errstr, sizeof errstr), "no options");
}

Test(consumer_options, a_relay_without_a_database_or_producer_is_refused)
{
    char errstr[256] = "";
    cr_expect_null(
        outbox_relay_start(&(struct outbox_relay_options){.dsn = "x"}, errstr, sizeof errstr));
    cr_expect(strstr(errstr, "needs a database URL and a producer") != NULL, "%s", errstr);
    errstr[0] = '\0';
    cr_expect_null(outbox_relay_start(NULL, errstr, sizeof errstr));
    cr_expect(errstr[0] != '\0');
    struct outbox_relay *none = NULL;
    outbox_relay_stop(&none, 0); /* NULL is a no-op */
    outbox_relay_kick(NULL);
}
