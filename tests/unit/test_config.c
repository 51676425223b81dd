/* Unit tests for common/config: values and defaults from the environment,
 * one table of bad input, every error reported at once, the exit code of
 * config_load_or_exit, and secrets that never reach the log. Criterion runs
 * each test in its own process, so setenv here does not leak between tests. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "utest.h"

/* Cuts the next line out of *cursor (in place); NULL at the end. */
static char *line_next(char **cursor)
{
    char *line = *cursor;
    if (!line || !*line)
        return NULL;
    char *nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        *cursor = nl + 1;
    } else {
        *cursor = line + strlen(line);
    }
    return line;
}

/* --- good input ---------------------------------------------------------------- */

Test(config, load_reads_every_type_from_the_environment)
{
    const char *brokers = NULL, *key = NULL;
    long workers = 0, port = 0;
    int debug = 0;
    const struct config_entry table[] = {
        {"KZT_BROKERS", CONFIG_STRING, NULL, &brokers, 0, 0, "Kafka brokers"},
        {"KZT_KEY", CONFIG_SECRET, NULL, &key, 0, 0, "signing key"},
        {"KZT_WORKERS", CONFIG_INT, NULL, &workers, 1, 64, "worker threads"},
        {"KZT_PORT", CONFIG_PORT, NULL, &port, 0, 0, "admin port"},
        {"KZT_DEBUG", CONFIG_BOOL, NULL, &debug, 0, 0, "debug mode"},
    };
    setenv("KZT_BROKERS", "127.0.0.1:19092", 1);
    setenv("KZT_KEY", "k3y", 1);
    setenv("KZT_WORKERS", "8", 1);
    setenv("KZT_PORT", "8081", 1);
    setenv("KZT_DEBUG", "yes", 1);
    char err[256];
    cr_assert_eq(config_load(table, 5, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(err, "");
    cr_expect_str_eq(brokers, "127.0.0.1:19092");
    cr_expect_str_eq(key, "k3y");
    cr_expect_eq(workers, 8);
    cr_expect_eq(port, 8081);
    cr_expect_eq(debug, 1);
}

Test(config, defaults_apply_when_unset_or_empty)
{
    const char *name = NULL;
    long retries = 0, port = 0;
    int flag = 1;
    const struct config_entry table[] = {
        {"KZT_NAME", CONFIG_STRING, "kizuna", &name, 0, 0, NULL},
        {"KZT_RETRIES", CONFIG_INT, "-3", &retries, 0, 0, NULL},
        {"KZT_PORT", CONFIG_PORT, "8080", &port, 0, 0, NULL},
        {"KZT_FLAG", CONFIG_BOOL, "false", &flag, 0, 0, NULL},
    };
    unsetenv("KZT_NAME");
    setenv("KZT_RETRIES", "", 1); /* FOO= counts as unset */
    unsetenv("KZT_PORT");
    unsetenv("KZT_FLAG");
    cr_assert_eq(config_load(table, 4, NULL, 0), 0);
    cr_expect_str_eq(name, "kizuna");
    cr_expect_eq(retries, -3, "both bounds 0 means unbounded");
    cr_expect_eq(port, 8080);
    cr_expect_eq(flag, 0);
}

Test(config, bool_accepts_every_documented_spelling)
{
    const struct {
        const char *text;
        int value;
    } cases[] = {
        {"true", 1},  {"TRUE", 1},  {"True", 1}, {"1", 1},  {"yes", 1}, {"YES", 1},
        {"false", 0}, {"FALSE", 0}, {"0", 0},    {"no", 0}, {"No", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int v = -1;
        const struct config_entry e = {"KZT_BOOL", CONFIG_BOOL, NULL, &v, 0, 0, NULL};
        setenv("KZT_BOOL", cases[i].text, 1);
        cr_expect_eq(config_load(&e, 1, NULL, 0), 0, "%s", cases[i].text);
        cr_expect_eq(v, cases[i].value, "%s", cases[i].text);
    }
}

Test(config, int_accepts_bounds_and_signs)
{
    const struct {
        const char *text;
        long min, max, value;
    } cases[] = {
        {"1", 1, 10, 1},
        {"10", 1, 10, 10},
        {"+5", 1, 10, 5},
        {"-7", -10, -1, -7},
        {"9223372036854775807", 0, 0, 9223372036854775807L},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long v = 0;
        const struct config_entry e = {"KZT_INT",    CONFIG_INT,   NULL, &v,
                                       cases[i].min, cases[i].max, NULL};
        setenv("KZT_INT", cases[i].text, 1);
        cr_expect_eq(config_load(&e, 1, NULL, 0), 0, "%s", cases[i].text);
        cr_expect_eq(v, cases[i].value, "%s", cases[i].text);
    }
}

/* --- bad input ------------------------------------------------------------------- */

struct config_bad {
    const char *case_name;
    enum config_type type;
    const char *env; /* NULL: unset */
    const char *def;
    long min, max;
    const char *reason; /* expected in the error line */
};

static const struct config_bad config_bad_cases[] = {
    {"required string missing", CONFIG_STRING, NULL, NULL, 0, 0, "required"},
    {"required string empty", CONFIG_STRING, "", NULL, 0, 0, "required"},
    {"required secret missing", CONFIG_SECRET, NULL, NULL, 0, 0, "required"},
    {"required int missing", CONFIG_INT, NULL, NULL, 0, 0, "required"},
    {"int not a number", CONFIG_INT, "abc", NULL, 0, 0, "not an integer"},
    {"int with trailing text", CONFIG_INT, "12abc", NULL, 0, 0, "not an integer"},
    {"int with a unit", CONFIG_INT, "10s", "5", 0, 0, "not an integer"},
    {"int with leading space", CONFIG_INT, " 12", NULL, 0, 0, "not an integer"},
    {"int with trailing space", CONFIG_INT, "12 ", NULL, 0, 0, "not an integer"},
    {"int in exponent form", CONFIG_INT, "1e3", NULL, 0, 0, "not an integer"},
    {"int in hex", CONFIG_INT, "0x10", NULL, 0, 0, "not an integer"},
    {"int fraction", CONFIG_INT, "1.5", NULL, 0, 0, "not an integer"},
    {"int sign only", CONFIG_INT, "-", NULL, 0, 0, "not an integer"},
    {"int overflows long", CONFIG_INT, "99999999999999999999", NULL, 0, 0, "not an integer"},
    {"int above max", CONFIG_INT, "11", NULL, 1, 10, "out of range 1..10"},
    {"int below min", CONFIG_INT, "0", NULL, 1, 10, "out of range 1..10"},
    {"int default out of range", CONFIG_INT, NULL, "50", 1, 10, "default out of range"},
    {"int default not a number", CONFIG_INT, NULL, "many", 0, 0, "default not an integer"},
    {"port zero", CONFIG_PORT, "0", NULL, 0, 0, "not a port"},
    {"port too big", CONFIG_PORT, "65536", NULL, 0, 0, "not a port"},
    {"port negative", CONFIG_PORT, "-80", NULL, 0, 0, "not a port"},
    {"port a word", CONFIG_PORT, "http", NULL, 0, 0, "not a port"},
    {"port with host", CONFIG_PORT, "127.0.0.1:8080", NULL, 0, 0, "not a port"},
    {"port missing", CONFIG_PORT, NULL, NULL, 0, 0, "required"},
    {"bool maybe", CONFIG_BOOL, "maybe", NULL, 0, 0, "not a boolean"},
    {"bool 2", CONFIG_BOOL, "2", NULL, 0, 0, "not a boolean"},
    {"bool on", CONFIG_BOOL, "on", NULL, 0, 0, "not a boolean"},
    {"bool y", CONFIG_BOOL, "y", "false", 0, 0, "not a boolean"},
};

Test(config, load_rejects_bad_input_and_names_the_variable)
{
    for (size_t i = 0; i < sizeof config_bad_cases / sizeof config_bad_cases[0]; i++) {
        const struct config_bad *c = &config_bad_cases[i];
        /* A sentinel in dest shows that a failed entry writes nothing. */
        union {
            const char *str;
            long num;
            int flag;
        } dest;
        memset(&dest, 0x5a, sizeof dest);
        const struct config_entry e = {"KZT_BAD", c->type, c->def, &dest, c->min, c->max, NULL};
        if (c->env)
            setenv("KZT_BAD", c->env, 1);
        else
            unsetenv("KZT_BAD");

        char err[512];
        cr_expect_eq(config_load(&e, 1, err, sizeof err), 1, "%s", c->case_name);
        cr_expect(strncmp(err, "KZT_BAD: ", 9) == 0, "%s: %s", c->case_name, err);
        cr_expect(strstr(err, c->reason) != NULL, "%s: want \"%s\" in %s", c->case_name, c->reason,
                  err);
        size_t len = strlen(err);
        cr_expect(len > 0 && err[len - 1] == '\n' && strchr(err, '\n') == err + len - 1,
                  "%s: exactly one line", c->case_name);
        unsigned char *raw = (unsigned char *)&dest;
        for (size_t k = 0; k < sizeof dest; k++)
            cr_expect_eq(raw[k], 0x5a, "%s: dest written", c->case_name);
    }
}

Test(config, error_echoes_a_bounded_printable_value)
{
    char big[200];
    memset(big, '7', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[3] = '\n';
    long v;
    const struct config_entry e = {"KZT_INT", CONFIG_INT, NULL, &v, 0, 0, NULL};
    setenv("KZT_INT", big, 1);
    char err[512];
    cr_assert_eq(config_load(&e, 1, err, sizeof err), 1);
    cr_expect(strchr(err, '\n') == err + strlen(err) - 1, "the newline in the value is masked");
    cr_expect_lt(strlen(err), 120, "the value is shortened: %s", err);
    cr_expect(strstr(err, "777?777") != NULL, "%s", err);
}

Test(config, all_errors_are_reported_at_once)
{
    const char *url = NULL, *secret = NULL;
    long port = 0, workers = 0;
    int flag = 0;
    const struct config_entry table[] = {
        {"KZT_URL", CONFIG_STRING, NULL, &url, 0, 0, NULL},
        {"KZT_PORT", CONFIG_PORT, NULL, &port, 0, 0, NULL},
        {"KZT_SECRET", CONFIG_SECRET, NULL, &secret, 0, 0, NULL},
        {"KZT_WORKERS", CONFIG_INT, NULL, &workers, 1, 16, NULL},
        {"KZT_FLAG", CONFIG_BOOL, NULL, &flag, 0, 0, NULL},
    };
    unsetenv("KZT_URL");
    setenv("KZT_PORT", "99999", 1);
    setenv("KZT_SECRET", "hunter2", 1);
    setenv("KZT_WORKERS", "lots", 1);
    setenv("KZT_FLAG", "true", 1);

    char err[1024];
    cr_assert_eq(config_load(table, 5, err, sizeof err), 3);
    const char *want[] = {"KZT_URL: required", "KZT_PORT: not a port", "KZT_WORKERS: not an"};
    for (size_t i = 0; i < 3; i++)
        cr_expect(strstr(err, want[i]) != NULL, "want \"%s\" in %s", want[i], err);
    int lines = 0;
    for (const char *p = err; *p; p++)
        lines += *p == '\n';
    cr_expect_eq(lines, 3, "%s", err);
    cr_expect_str_eq(secret, "hunter2", "good entries still load");
    cr_expect_eq(flag, 1, "good entries still load");
}

Test(config, error_buffer_is_truncated_not_overflowed)
{
    long a = 0, b = 0;
    const struct config_entry table[] = {
        {"KZT_A", CONFIG_INT, NULL, &a, 0, 0, NULL},
        {"KZT_B", CONFIG_INT, NULL, &b, 0, 0, NULL},
    };
    unsetenv("KZT_A");
    unsetenv("KZT_B");
    char err[20];
    memset(err, '#', sizeof err);
    cr_expect_eq(config_load(table, 2, err, 12), 2, "the count covers every error");
    cr_expect_eq(strlen(err), 11);
    cr_expect_eq(err[12], '#', "nothing written past errcap");
    cr_expect_eq(config_load(table, 2, NULL, 0), 2, "no buffer is fine");
}

/* --- logging ------------------------------------------------------------------- */

struct log_args {
    const struct config_entry *table;
    size_t n;
};

static void run_config_log(void *arg)
{
    struct log_args *a = arg;
    config_log(a->table, a->n);
}

Test(config, log_redacts_secrets_and_url_passwords)
{
    const char *key = NULL, *url = NULL, *conninfo = NULL, *brokers = NULL, *empty = NULL;
    long port = 0;
    int flag = 0;
    const struct config_entry table[] = {
        {"KZT_KEY", CONFIG_SECRET, NULL, &key, 0, 0, NULL},
        {"KZT_DB_URL", CONFIG_STRING, NULL, &url, 0, 0, NULL},
        {"KZT_CONNINFO", CONFIG_STRING, NULL, &conninfo, 0, 0, NULL},
        {"KZT_BROKERS", CONFIG_STRING, NULL, &brokers, 0, 0, NULL},
        {"KZT_OPTIONAL", CONFIG_SECRET, "", &empty, 0, 0, NULL},
        {"KZT_PORT", CONFIG_PORT, "8081", &port, 0, 0, NULL},
        {"KZT_FLAG", CONFIG_BOOL, NULL, &flag, 0, 0, NULL},
    };
    setenv("KZT_KEY", "s3cr3t-jwt-key", 1);
    setenv("KZT_DB_URL", "postgresql://kizuna_ingest:pw-AB/C@D@127.0.0.1:54329/kizuna", 1);
    setenv("KZT_CONNINFO", "host=127.0.0.1 password=pw-EFG user=kizuna", 1);
    setenv("KZT_BROKERS", "127.0.0.1:19092", 1);
    unsetenv("KZT_OPTIONAL");
    unsetenv("KZT_PORT");
    setenv("KZT_FLAG", "1", 1);
    cr_assert_eq(config_load(table, 7, NULL, 0), 0);

    log_init("test", LOG_INFO);
    struct log_args args = {table, 7};
    char *out = utest_stderr_capture(run_config_log, &args);

    cr_expect(strstr(out, "s3cr3t") == NULL, "secret leaked: %s", out);
    cr_expect(strstr(out, "pw-") == NULL, "password leaked: %s", out);
    cr_expect(strstr(out, "AB/C") == NULL && strstr(out, "EFG") == NULL, "%s", out);

    /* One JSON object per entry, with the expected values. */
    const char *want[][3] = {
        {"KZT_KEY", "[redacted]", "env"},
        {"KZT_DB_URL", "postgresql://kizuna_ingest:[redacted]@127.0.0.1:54329/kizuna", "env"},
        {"KZT_CONNINFO", "host=127.0.0.1 password=[redacted] user=kizuna", "env"},
        {"KZT_BROKERS", "127.0.0.1:19092", "env"},
        {"KZT_OPTIONAL", "", "default"},
        {"KZT_PORT", "8081", "default"},
        {"KZT_FLAG", "true", "env"},
    };
    char *cursor = out;
    size_t i = 0;
    for (char *line; (line = line_next(&cursor)); i++) {
        json_error_t jerr;
        json_t *obj = json_loads(line, 0, &jerr);
        cr_assert_not_null(obj, "not JSON: %s (%s)", line, jerr.text);
        cr_assert_lt(i, 7, "too many lines");
        cr_expect_str_eq(json_string_value(json_object_get(obj, "msg")), "config");
        cr_expect_str_eq(json_string_value(json_object_get(obj, "level")), "info");
        cr_expect_str_eq(json_string_value(json_object_get(obj, "name")), want[i][0]);
        cr_expect_str_eq(json_string_value(json_object_get(obj, "value")), want[i][1], "%s",
                         want[i][0]);
        cr_expect_str_eq(json_string_value(json_object_get(obj, "source")), want[i][2], "%s",
                         want[i][0]);
        json_decref(obj);
    }
    cr_expect_eq(i, 7);
    free(out);
}

/* --- load or exit -------------------------------------------------------------- */

static const char *exit_url;
static long exit_port;
static const char *exit_secret;
static const struct config_entry exit_table[] = {
    {"KZT_URL", CONFIG_STRING, NULL, &exit_url, 0, 0, "database URL"},
    {"KZT_PORT", CONFIG_PORT, NULL, &exit_port, 0, 0, "admin port"},
    {"KZT_SECRET", CONFIG_SECRET, NULL, &exit_secret, 0, 0, "signing key"},
};

Test(config, load_or_exit_returns_when_config_is_valid)
{
    setenv("KZT_URL", "postgresql://h/db", 1);
    setenv("KZT_PORT", "8081", 1);
    setenv("KZT_SECRET", "x", 1);
    config_load_or_exit(exit_table, 3);
    cr_expect_eq(exit_port, 8081);
}

Test(config, load_or_exit_exits_with_code_2, .exit_code = CONFIG_EXIT)
{
    unsetenv("KZT_URL");
    setenv("KZT_PORT", "0", 1);
    setenv("KZT_SECRET", "x", 1);
    /* The logged errors are checked below; keep them out of the test output. */
    int devnull = open("/dev/null", O_WRONLY);
    cr_assert_geq(devnull, 0);
    dup2(devnull, STDERR_FILENO);
    close(devnull);
    config_load_or_exit(exit_table, 3);
    cr_assert_fail("config_load_or_exit returned");
}

/* Runs config_load_or_exit in a child with stderr on a pipe, to see both
 * the exit status and every logged error. */
Test(config, load_or_exit_logs_every_error)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    unsetenv("KZT_URL");
    setenv("KZT_PORT", "http", 1);
    unsetenv("KZT_SECRET");
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        config_load_or_exit(exit_table, 3);
        _exit(0);
    }
    close(fds[1]);
    char out[8192];
    size_t len = 0;
    ssize_t r;
    while ((r = read(fds[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(fds[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == CONFIG_EXIT, "status %d", status);

    const char *names[] = {"KZT_URL", "KZT_PORT", "KZT_SECRET"};
    int errors = 0;
    char *cursor = out;
    for (char *line; (line = line_next(&cursor));) {
        /* A sanitizer build's leak checker may add its own text at exit. */
        if (line[0] != '{')
            continue;
        json_t *obj = json_loads(line, 0, NULL);
        cr_assert_not_null(obj, "not JSON: %s", line);
        cr_expect_str_eq(json_string_value(json_object_get(obj, "level")), "error");
        const char *name = json_string_value(json_object_get(obj, "name"));
        if (name) {
            cr_expect_str_eq(name, names[errors], "errors in table order");
            cr_expect_not_null(json_string_value(json_object_get(obj, "error")));
            errors++;
        }
        json_decref(obj);
    }
    cr_expect_eq(errors, 3, "%s", out);
}

/* --- enums and keys ------------------------------------------------------------- */

static const char *const kzt_modes[] = {"earliest", "latest", NULL};

Test(config, enum_stores_the_index_of_the_word)
{
    const struct {
        const char *env, *def;
        int want;
    } cases[] = {
        {"earliest", NULL, 0},
        {"latest", NULL, 1},
        {NULL, "latest", 1},
        {"", "earliest", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int mode = -1;
        const struct config_entry e = {"KZT_MODE", CONFIG_ENUM, cases[i].def, &mode,
                                       0,          0,           NULL,         kzt_modes};
        if (cases[i].env)
            setenv("KZT_MODE", cases[i].env, 1);
        else
            unsetenv("KZT_MODE");
        char err[256];
        cr_expect_eq(config_load(&e, 1, err, sizeof err), 0, "case %zu: %s", i, err);
        cr_expect_eq(mode, cases[i].want, "case %zu", i);
    }
}

#define KZT_HEX_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

Test(config, key_reads_64_hex_characters_into_32_bytes)
{
    struct config_key key;
    memset(&key, 0, sizeof key);
    const struct config_entry e = {"KZT_KEY", CONFIG_KEY, NULL, &key, 0, 0, NULL};
    setenv("KZT_KEY", KZT_HEX_KEY, 1);
    cr_assert_eq(config_load(&e, 1, NULL, 0), 0);
    cr_assert(key.set);
    for (int i = 0; i < CONFIG_KEY_LEN; i++)
        cr_expect_eq(key.bytes[i], i);
}

Test(config, key_with_empty_default_is_optional)
{
    struct config_key key;
    memset(&key, 0x5a, sizeof key);
    const struct config_entry e = {"KZT_KEY", CONFIG_KEY, "", &key, 0, 0, NULL};
    unsetenv("KZT_KEY");
    cr_assert_eq(config_load(&e, 1, NULL, 0), 0);
    cr_expect(!key.set);
    setenv("KZT_KEY", "", 1);
    cr_assert_eq(config_load(&e, 1, NULL, 0), 0);
    cr_expect(!key.set, "an empty value counts as unset");
}

struct config_bad_typed {
    const char *case_name;
    enum config_type type;
    const char *env; /* NULL: unset */
    const char *def;
    const char *reason;
};

static const struct config_bad_typed config_bad_typed_cases[] = {
    {"enum word not allowed", CONFIG_ENUM, "newest", NULL,
     "not one of earliest or latest (got \"newest\")"},
    {"enum is case-sensitive", CONFIG_ENUM, "Latest", NULL, "not one of earliest or latest"},
    {"enum with a space", CONFIG_ENUM, "latest ", NULL, "not one of"},
    {"enum bad default", CONFIG_ENUM, NULL, "first", "default not one of"},
    {"enum required", CONFIG_ENUM, NULL, NULL, "required"},
    {"key required", CONFIG_KEY, NULL, NULL, "required"},
    {"key too short", CONFIG_KEY, "abcd", NULL, "must be 64 hex characters (got 4 characters)"},
    {"key too long", CONFIG_KEY, KZT_HEX_KEY "00", NULL, "(got 66 characters)"},
    {"key not hex", CONFIG_KEY, "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     NULL, "got a non-hex character"},
    {"optional key set but bad", CONFIG_KEY, "secret-looking-value", "", "(got 20 characters)"},
};

Test(config, enum_and_key_reject_bad_input_without_echoing_keys)
{
    for (size_t i = 0; i < sizeof config_bad_typed_cases / sizeof config_bad_typed_cases[0]; i++) {
        const struct config_bad_typed *c = &config_bad_typed_cases[i];
        union {
            int index;
            struct config_key key;
        } dest;
        memset(&dest, 0x5a, sizeof dest);
        const struct config_entry e = {"KZT_BAD", c->type, c->def, &dest, 0, 0, NULL, kzt_modes};
        if (c->env)
            setenv("KZT_BAD", c->env, 1);
        else
            unsetenv("KZT_BAD");
        char err[512];
        cr_expect_eq(config_load(&e, 1, err, sizeof err), 1, "%s", c->case_name);
        cr_expect(strstr(err, c->reason) != NULL, "%s: want \"%s\" in %s", c->case_name, c->reason,
                  err);
        if (c->type == CONFIG_KEY && c->env)
            cr_expect(strstr(err, c->env) == NULL, "%s: the key was echoed: %s", c->case_name, err);
        unsigned char *raw = (unsigned char *)&dest;
        for (size_t k = 0; k < sizeof dest; k++)
            cr_expect_eq(raw[k], 0x5a, "%s: dest written", c->case_name);
    }
}

static void log_enum_and_key(void *arg)
{
    (void)arg;
    int mode = 1;
    struct config_key key = {.set = true};
    memset(key.bytes, 0xab, sizeof key.bytes);
    const struct config_entry table[] = {
        {"KZT_MODE", CONFIG_ENUM, "earliest", &mode, 0, 0, NULL, kzt_modes},
        {"KZT_KEY", CONFIG_KEY, NULL, &key, 0, 0, NULL},
    };
    config_log(table, 2);
}

Test(config, log_shows_the_enum_word_and_redacts_keys)
{
    log_init("test", LOG_INFO);
    char *out = utest_stderr_capture(log_enum_and_key, NULL);
    cr_expect(strstr(out, "\"value\":\"latest\"") != NULL, "%s", out);
    cr_expect(strstr(out, "\"value\":\"[redacted]\"") != NULL, "%s", out);
    cr_expect(strstr(out, "abab") == NULL && strstr(out, "ABAB") == NULL, "%s", out);
    free(out);
}
