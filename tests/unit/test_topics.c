/* The topic manifest parser: the repository's manifest parses, comments and
 * blank lines are ignored, and every kind of bad line is rejected with
 * file:line so that a typo never reaches a broker. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topics.h"

/* Writes text to a fresh temporary file; path receives its name. */
static void manifest_write(const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/kizuna-topics-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0, "mkstemp failed");
    size_t len = strlen(text);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static int manifest_load_text(const char *text, struct topic_spec *specs, size_t cap, char *errstr,
                              size_t errcap, char *path, size_t pathcap)
{
    manifest_write(text, path, pathcap);
    int n = topics_load(path, specs, cap, errstr, errcap);
    unlink(path);
    return n;
}

Test(topics, parses_the_repository_manifest)
{
    struct topic_spec specs[TOPICS_MAX];
    char err[512];
    int n = topics_load("deploy/topics.manifest", specs, TOPICS_MAX, err, sizeof err);
    cr_assert_gt(n, 0, "manifest failed to parse: %s", err);

    const struct topic_spec *webhook = topics_find(specs, (size_t)n, "line.webhook");
    cr_assert_not_null(webhook);
    cr_assert_eq(webhook->partitions, 48);
    cr_assert_eq(webhook->retention_ms, 604800000LL);
    cr_assert_str_eq(webhook->cleanup, "delete");
    cr_assert_str_eq(webhook->message, "kizuna.v1.WebhookEvent");

    const struct topic_spec *channels = topics_find(specs, (size_t)n, "channels");
    cr_assert_not_null(channels);
    cr_assert_eq(channels->retention_ms, -1LL);
    cr_assert_str_eq(channels->cleanup, "compact");
    cr_assert_str_eq(channels->key, "channel");
}

Test(topics, ignores_comments_blank_lines_and_trailing_comments)
{
    const char *text = "# header comment\n"
                       "\n"
                       "   \t \n"
                       "  # indented comment\n"
                       "a.topic  3  1000  delete  channel:source  kizuna.v1.A   # trailing\n"
                       "b-topic\t1\t-1\tcompact\tchannel\tkizuna.v1.B\r\n"
                       "c_topic 2 5 delete k kizuna.v1.C"; /* no final newline */
    struct topic_spec specs[TOPICS_MAX];
    char err[512], path[64];
    int n = manifest_load_text(text, specs, TOPICS_MAX, err, sizeof err, path, sizeof path);
    cr_assert_eq(n, 3, "expected 3 topics, got %d: %s", n, err);
    cr_assert_str_eq(specs[0].name, "a.topic");
    cr_assert_eq(specs[0].partitions, 3);
    cr_assert_eq(specs[0].retention_ms, 1000LL);
    cr_assert_str_eq(specs[0].key, "channel:source");
    cr_assert_str_eq(specs[0].message, "kizuna.v1.A");
    cr_assert_str_eq(specs[1].name, "b-topic");
    cr_assert_str_eq(specs[1].cleanup, "compact");
    cr_assert_eq(specs[1].retention_ms, -1LL);
    cr_assert_str_eq(specs[1].message, "kizuna.v1.B");
    cr_assert_str_eq(specs[2].message, "kizuna.v1.C");
}

Test(topics, find_returns_null_for_unknown_names)
{
    struct topic_spec specs[2] = {{.name = "x"}, {.name = "y"}};
    cr_assert_eq(topics_find(specs, 2, "y"), &specs[1]);
    cr_assert_null(topics_find(specs, 2, "z"));
    cr_assert_null(topics_find(specs, 2, NULL));
}

Test(topics, default_path_honours_the_environment)
{
    unsetenv("KIZUNA_TOPICS_MANIFEST");
    cr_assert_str_eq(topics_default_path(), "deploy/topics.manifest");
    setenv("KIZUNA_TOPICS_MANIFEST", "/etc/kizuna/topics", 1);
    cr_assert_str_eq(topics_default_path(), "/etc/kizuna/topics");
    setenv("KIZUNA_TOPICS_MANIFEST", "", 1);
    cr_assert_str_eq(topics_default_path(), "deploy/topics.manifest");
}

Test(topics, reports_every_problem_at_once)
{
    const char *text = "ok 1 1 delete k kizuna.v1.A\n"
                       "bad1 x 1 delete k kizuna.v1.A\n"
                       "bad2 1 1 archive k kizuna.v1.A\n";
    struct topic_spec specs[TOPICS_MAX];
    char err[512], path[64], want[128];
    int n = manifest_load_text(text, specs, TOPICS_MAX, err, sizeof err, path, sizeof path);
    cr_assert_eq(n, -1);
    snprintf(want, sizeof want, "%s:2: partitions", path);
    cr_assert_not_null(strstr(err, want), "missing '%s' in: %s", want, err);
    snprintf(want, sizeof want, "%s:3: cleanup", path);
    cr_assert_not_null(strstr(err, want), "missing '%s' in: %s", want, err);
}

Test(topics, truncates_errors_to_the_buffer)
{
    const char *text = "bad x 1 delete k kizuna.v1.A\nbad2 y 1 delete k kizuna.v1.A\n";
    struct topic_spec specs[TOPICS_MAX];
    char err[16], path[64];
    memset(err, 'Z', sizeof err);
    int n = manifest_load_text(text, specs, TOPICS_MAX, err, sizeof err, path, sizeof path);
    cr_assert_eq(n, -1);
    cr_assert_lt(strlen(err), sizeof err);
}

Test(topics, reports_a_missing_file)
{
    struct topic_spec specs[TOPICS_MAX];
    char err[256];
    cr_assert_eq(
        topics_load("/nonexistent/kizuna/topics.manifest", specs, TOPICS_MAX, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "/nonexistent/kizuna/topics.manifest: cannot open"), "%s", err);
}

/* Bad input: each manifest must fail, naming the line and the reason. */
struct bad_manifest {
    const char *what;
    const char *text; /* NULL: generated (too many topics) */
    int line;         /* 0: the message has no line number */
    const char *reason;
};

static const struct bad_manifest bad_manifests[] = {
    {"missing column", "# c\nt1 3 1000 delete channel\n", 2, "expected 6 columns"},
    {"extra column", "t1 3 1000 delete channel kizuna.v1.A extra\n", 1, "found 7"},
    {"non-number partitions", "t1 three 1000 delete k kizuna.v1.A\n", 1,
     "partitions 'three' is not a number"},
    {"partitions with trailing junk", "t1 3x 1000 delete k kizuna.v1.A\n", 1, "not a number"},
    {"zero partitions", "t1 0 1000 delete k kizuna.v1.A\n", 1, "partitions must be 1.."},
    {"negative partitions", "t1 -4 1000 delete k kizuna.v1.A\n", 1, "partitions must be 1.."},
    {"huge partitions", "t1 99999999999 1000 delete k kizuna.v1.A\n", 1, "partitions must be 1.."},
    {"non-number retention", "t1 1 week delete k kizuna.v1.A\n", 1,
     "retention_ms 'week' is not a number"},
    {"zero retention", "t1 1 0 delete k kizuna.v1.A\n", 1, "retention_ms must be -1"},
    {"bad cleanup", "t1 1 1000 archive k kizuna.v1.A\n", 1, "cleanup must be"},
    {"duplicate name", "t1 1 1000 delete k kizuna.v1.A\n\nt1 2 1000 delete k kizuna.v1.A\n", 3,
     "duplicate topic 't1' (first on line 1)"},
    {"overlong name",
     "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt"
     "tttttttttttttttttttttttttttttttttttttttttttttttt 1 1000 delete k kizuna.v1.A\n",
     1, "topic name longer than 127"},
    {"illegal name character", "bad/name 1 1000 delete k kizuna.v1.A\n", 1, "may only use"},
    {"dot name", ". 1 1000 delete k kizuna.v1.A\n", 1, "may only use"},
    {"unqualified message type", "t1 1 1000 delete k WebhookEvent\n", 1,
     "not a fully-qualified protobuf name"},
    {"overlong key",
     "t1 1 1000 delete kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk "
     "kizuna.v1.A\n",
     1, "key longer than 63"},
    {"overlong line", NULL, 1, "line longer than"},
    {"too many topics", NULL, TOPICS_MAX + 1, "too many topics (at most 32)"},
    {"empty manifest", "# only comments\n\n", 0, "no topics declared"},
};

static char *bad_manifest_text(size_t index)
{
    const struct bad_manifest *bad = &bad_manifests[index];
    if (bad->text)
        return strdup(bad->text);
    size_t cap = 8192;
    char *text = calloc(1, cap);
    cr_assert_not_null(text);
    if (strcmp(bad->what, "overlong line") == 0) {
        memset(text, 'x', 2000);
        text[2000] = '\n';
        return text;
    }
    size_t used = 0;
    for (int i = 0; i <= TOPICS_MAX; i++)
        used += (size_t)snprintf(text + used, cap - used, "t%d 1 1000 delete k kizuna.v1.A\n", i);
    return text;
}

Test(topics, rejects_bad_manifests)
{
    for (size_t i = 0; i < sizeof bad_manifests / sizeof bad_manifests[0]; i++) {
        const struct bad_manifest *bad = &bad_manifests[i];
        struct topic_spec specs[TOPICS_MAX];
        char err[1024], path[64], want[128];
        char *text = bad_manifest_text(i);
        int n = manifest_load_text(text, specs, TOPICS_MAX, err, sizeof err, path, sizeof path);
        free(text);
        cr_expect_eq(n, -1, "%s: expected failure, got %d", bad->what, n);
        if (bad->line > 0)
            snprintf(want, sizeof want, "%s:%d: ", path, bad->line);
        else
            snprintf(want, sizeof want, "%s: ", path);
        cr_expect_not_null(strstr(err, want), "%s: no '%s' in: %s", bad->what, want, err);
        cr_expect_not_null(strstr(err, bad->reason), "%s: no '%s' in: %s", bad->what, bad->reason,
                           err);
    }
}

Test(topics, respects_a_smaller_caller_capacity)
{
    const char *text = "a 1 1 delete k kizuna.v1.A\nb 1 1 delete k kizuna.v1.A\n";
    struct topic_spec specs[1];
    char err[256], path[64];
    int n = manifest_load_text(text, specs, 1, err, sizeof err, path, sizeof path);
    cr_assert_eq(n, -1);
    cr_assert_not_null(strstr(err, "too many topics (at most 1)"), "%s", err);
}
