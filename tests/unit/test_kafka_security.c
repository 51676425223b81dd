/* Unit tests for common/kafka_security and its use in common/kafka.c: the
 * variables read through the config table, every bad combination refused
 * naming the variable at fault, and the settings reaching the librdkafka
 * configuration every client starts from (read back with
 * kafka_conf_describe, which needs no broker). Criterion runs each test in
 * its own process, so setenv and kafka_security_set do not leak. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "kafka.h"
#include "kafka_security.h"

/* A readable file to stand for a CA or certificate; removed at exit. */
static char pem_path[64];

static void pem_make(void)
{
    snprintf(pem_path, sizeof pem_path, "/tmp/kizuna-test-pem-XXXXXX");
    int fd = mkstemp(pem_path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "-----BEGIN CERTIFICATE-----\n", 28), 28);
    close(fd);
}

static void pem_remove(void)
{
    if (pem_path[0])
        unlink(pem_path);
}

TestSuite(kafka_security, .init = pem_make, .fini = pem_remove);

/* What kafka_security_check reported, joined as "NAME: reason\n" lines. */
struct reports {
    char text[2048];
    int n;
};

static void report(void *rctx, const char *name, const char *reason)
{
    struct reports *r = rctx;
    size_t o = strlen(r->text);
    snprintf(r->text + o, sizeof r->text - o, "%s: %s\n", name, reason);
    r->n++;
}

static void conf_expect(const char *property, const char *want)
{
    char value[512], err[256] = "";
    cr_assert_eq(kafka_conf_describe(property, value, sizeof value, err, sizeof err), 0, "%s: %s",
                 property, err);
    cr_expect_str_eq(value, want, "%s", property);
}

/* --- reading the environment ---------------------------------------------- */

Test(kafka_security, defaults_are_plaintext_and_pass_the_check)
{
    struct kafka_security s;
    memset(&s, 0xff, sizeof s);
    struct config_entry table[KAFKA_SECURITY_ENTRIES];
    size_t n = kafka_security_entries(&s, table);
    cr_assert_eq(n, KAFKA_SECURITY_ENTRIES);
    char err[1024];
    cr_assert_eq(config_load(table, n, err, sizeof err), 0, "%s", err);
    cr_expect_eq(s.protocol, KAFKA_PLAINTEXT);
    cr_expect_eq(s.mechanism, KAFKA_SASL_PLAIN);
    struct reports r = {"", 0};
    cr_expect_eq(kafka_security_check(&s, report, &r), 0, "%s", r.text);
    conf_expect("security.protocol", "plaintext");
}

Test(kafka_security, environment_sets_sasl_ssl_with_scram)
{
    setenv("KAFKA_SECURITY_PROTOCOL", "sasl_ssl", 1);
    setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", 1);
    setenv("KAFKA_SASL_USERNAME", "kizuna-ingest", 1);
    setenv("KAFKA_SASL_PASSWORD", "hunter2-hunter2", 1);
    setenv("KAFKA_SSL_CA_LOCATION", pem_path, 1);
    struct kafka_security s;
    struct config_entry table[KAFKA_SECURITY_ENTRIES];
    size_t n = kafka_security_entries(&s, table);
    char err[1024];
    cr_assert_eq(config_load(table, n, err, sizeof err), 0, "%s", err);
    struct reports r = {"", 0};
    cr_assert_eq(kafka_security_check(&s, report, &r), 0, "%s", r.text);
    kafka_security_set(&s);

    conf_expect("security.protocol", "sasl_ssl");
    conf_expect("sasl.mechanisms", "SCRAM-SHA-512");
    conf_expect("sasl.username", "kizuna-ingest");
    conf_expect("ssl.ca.location", pem_path);
    /* The password reaches the configuration (librdkafka may mask it when
     * read back, so only its presence is checked). */
    char value[256], e[256];
    cr_assert_eq(kafka_conf_describe("sasl.password", value, sizeof value, e, sizeof e), 0, "%s",
                 e);
    cr_expect_neq(value[0], '\0');
}

Test(kafka_security, every_protocol_and_mechanism_reaches_librdkafka)
{
    const struct {
        int protocol, mechanism;
        const char *protocol_word, *mechanism_word;
    } cases[] = {
        {KAFKA_PLAINTEXT, 0, "plaintext", NULL},
        {KAFKA_SSL, 0, "ssl", NULL},
        {KAFKA_SASL_PLAINTEXT, KAFKA_SASL_PLAIN, "sasl_plaintext", "PLAIN"},
        {KAFKA_SASL_PLAINTEXT, KAFKA_SASL_SCRAM_SHA_256, "sasl_plaintext", "SCRAM-SHA-256"},
        {KAFKA_SASL_SSL, KAFKA_SASL_SCRAM_SHA_512, "sasl_ssl", "SCRAM-SHA-512"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kafka_security s = {
            .protocol = cases[i].protocol,
            .mechanism = cases[i].mechanism,
            .username = cases[i].mechanism_word ? "u" : NULL,
            .password = cases[i].mechanism_word ? "p" : NULL,
        };
        struct reports r = {"", 0};
        cr_expect_eq(kafka_security_check(&s, report, &r), 0, "case %zu: %s", i, r.text);
        kafka_security_set(&s);
        conf_expect("security.protocol", cases[i].protocol_word);
        if (cases[i].mechanism_word) {
            conf_expect("sasl.mechanisms", cases[i].mechanism_word);
            conf_expect("sasl.username", "u");
        }
    }
    kafka_security_set(NULL);
    conf_expect("security.protocol", "plaintext");
}

Test(kafka_security, mutual_tls_files_reach_librdkafka)
{
    struct kafka_security s = {
        .protocol = KAFKA_SSL,
        .ca_location = pem_path,
        .certificate_location = pem_path,
        .key_location = pem_path,
    };
    struct reports r = {"", 0};
    cr_assert_eq(kafka_security_check(&s, report, &r), 0, "%s", r.text);
    kafka_security_set(&s);
    conf_expect("ssl.ca.location", pem_path);
    conf_expect("ssl.certificate.location", pem_path);
    conf_expect("ssl.key.location", pem_path);
}

/* --- bad input ------------------------------------------------------------- */

/* Words the config table refuses, each naming its variable. */
Test(kafka_security, unknown_words_are_config_errors)
{
    const struct {
        const char *name, *value;
    } cases[] = {
        {"KAFKA_SECURITY_PROTOCOL", "tls"},
        {"KAFKA_SECURITY_PROTOCOL", "SASL_SSL"}, /* our words are exact */
        {"KAFKA_SASL_MECHANISM", "GSSAPI"},
        {"KAFKA_SASL_MECHANISM", "OAUTHBEARER"},
        {"KAFKA_SASL_MECHANISM", "scram-sha-256"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsetenv("KAFKA_SECURITY_PROTOCOL");
        unsetenv("KAFKA_SASL_MECHANISM");
        setenv(cases[i].name, cases[i].value, 1);
        struct kafka_security s;
        struct config_entry table[KAFKA_SECURITY_ENTRIES];
        size_t n = kafka_security_entries(&s, table);
        char err[1024];
        cr_expect_eq(config_load(table, n, err, sizeof err), 1, "%s=%s", cases[i].name,
                     cases[i].value);
        cr_expect(strstr(err, cases[i].name) == err, "%s=%s: %s", cases[i].name, cases[i].value,
                  err);
    }
}

struct bad_combination {
    const char *name;
    struct kafka_security s;
    const char *expect; /* the variable named first */
    int errors;
};

Test(kafka_security, bad_combinations_are_config_errors_naming_the_variable)
{
    const struct bad_combination cases[] = {
        {"sasl_ssl without a username",
         {KAFKA_SASL_SSL, KAFKA_SASL_SCRAM_SHA_256, NULL, "p", NULL, NULL, NULL, NULL},
         "KAFKA_SASL_USERNAME",
         1},
        {"sasl_plaintext without a password",
         {KAFKA_SASL_PLAINTEXT, KAFKA_SASL_PLAIN, "u", "", NULL, NULL, NULL, NULL},
         "KAFKA_SASL_PASSWORD",
         1},
        {"sasl_ssl with neither",
         {KAFKA_SASL_SSL, 0, NULL, NULL, NULL, NULL, NULL, NULL},
         "KAFKA_SASL_USERNAME",
         2},
        {"a username under plaintext",
         {KAFKA_PLAINTEXT, 0, "u", NULL, NULL, NULL, NULL, NULL},
         "KAFKA_SASL_USERNAME",
         1},
        {"a password under ssl",
         {KAFKA_SSL, 0, NULL, "p", NULL, NULL, NULL, NULL},
         "KAFKA_SASL_PASSWORD",
         1},
        {"a CA file under plaintext",
         {KAFKA_PLAINTEXT, 0, NULL, NULL, pem_path, NULL, NULL, NULL},
         "KAFKA_SSL_CA_LOCATION",
         1},
        {"a CA file under sasl_plaintext",
         {KAFKA_SASL_PLAINTEXT, 0, "u", "p", pem_path, NULL, NULL, NULL},
         "KAFKA_SSL_CA_LOCATION",
         1},
        {"a key password under plaintext",
         {KAFKA_PLAINTEXT, 0, NULL, NULL, NULL, NULL, NULL, "kp"},
         "KAFKA_SSL_KEY_PASSWORD",
         1},
        {"a CA file that does not exist",
         {KAFKA_SSL, 0, NULL, NULL, "/nonexistent/ca.pem", NULL, NULL, NULL},
         "KAFKA_SSL_CA_LOCATION",
         1},
        {"a certificate without its key",
         {KAFKA_SSL, 0, NULL, NULL, NULL, pem_path, NULL, NULL},
         "KAFKA_SSL_KEY_LOCATION",
         1},
        {"a key without its certificate",
         {KAFKA_SASL_SSL, 0, "u", "p", NULL, NULL, pem_path, NULL},
         "KAFKA_SSL_CERTIFICATE_LOCATION",
         1},
        {"a key password without a key",
         {KAFKA_SSL, 0, NULL, NULL, NULL, NULL, NULL, "kp"},
         "KAFKA_SSL_KEY_LOCATION",
         1},
        {"a protocol out of range",
         {7, 0, NULL, NULL, NULL, NULL, NULL, NULL},
         "KAFKA_SECURITY_PROTOCOL",
         1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct bad_combination *c = &cases[i];
        struct reports r = {"", 0};
        int errors = kafka_security_check(&c->s, report, &r);
        cr_expect_eq(errors, c->errors, "%s: %d errors: %s", c->name, errors, r.text);
        cr_expect_eq(r.n, errors, "%s: one report per error", c->name);
        cr_expect(strncmp(r.text, c->expect, strlen(c->expect)) == 0, "%s: want %s first: %s",
                  c->name, c->expect, r.text);
        /* A secret's value is never part of a reason. */
        cr_expect(strstr(r.text, ": p\n") == NULL && strstr(r.text, "kp") == NULL, "%s: %s",
                  c->name, r.text);
    }
}
