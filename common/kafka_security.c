/* Kafka TLS and SASL settings: read once from the environment, checked as
 * a whole (a combination the broker would only refuse at the first
 * connection, or that would silently send a password in a plaintext
 * session meant to be SASL, is a config error at start-up instead), then
 * applied by kafka.c to every client. Kept apart from kafka.c so that the
 * config side needs no librdkafka. */
#include "kafka_security.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const protocol_words[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl",
                                             NULL};
static const char *const mechanism_words[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL};

/* Set once at start-up, before any client exists; read-only afterwards. */
static struct kafka_security current;

size_t kafka_security_entries(struct kafka_security *s, struct config_entry *out)
{
    const struct config_entry entries[KAFKA_SECURITY_ENTRIES] = {
        {"KAFKA_SECURITY_PROTOCOL", CONFIG_ENUM, "plaintext", &s->protocol, 0, 0,
         "plaintext, ssl, sasl_plaintext or sasl_ssl: how every Kafka client reaches the brokers",
         protocol_words},
        {"KAFKA_SASL_MECHANISM", CONFIG_ENUM, "PLAIN", &s->mechanism, 0, 0,
         "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (sasl_* protocols)", mechanism_words},
        {"KAFKA_SASL_USERNAME", CONFIG_STRING, "", &s->username, 0, 0,
         "SASL user (required with sasl_* protocols)"},
        {"KAFKA_SASL_PASSWORD", CONFIG_SECRET, "", &s->password, 0, 0,
         "SASL password (required with sasl_* protocols)"},
        {"KAFKA_SSL_CA_LOCATION", CONFIG_STRING, "", &s->ca_location, 0, 0,
         "PEM file of the CAs that sign the brokers' certificates (default: the system's)"},
        {"KAFKA_SSL_CERTIFICATE_LOCATION", CONFIG_STRING, "", &s->certificate_location, 0, 0,
         "client certificate (PEM) for mutual TLS"},
        {"KAFKA_SSL_KEY_LOCATION", CONFIG_STRING, "", &s->key_location, 0, 0,
         "the client certificate's private key (PEM)"},
        {"KAFKA_SSL_KEY_PASSWORD", CONFIG_SECRET, "", &s->key_password, 0, 0,
         "passphrase of KAFKA_SSL_KEY_LOCATION, if it is encrypted"},
    };
    memcpy(out, entries, sizeof entries);
    return KAFKA_SECURITY_ENTRIES;
}

const char *kafka_security_protocol_name(int protocol)
{
    return protocol >= 0 && protocol <= KAFKA_SASL_SSL ? protocol_words[protocol] : NULL;
}

const char *kafka_security_mechanism_name(int mechanism)
{
    return mechanism >= 0 && mechanism <= KAFKA_SASL_SCRAM_SHA_512 ? mechanism_words[mechanism]
                                                                   : NULL;
}

bool kafka_security_uses_sasl(const struct kafka_security *s)
{
    return s->protocol == KAFKA_SASL_PLAINTEXT || s->protocol == KAFKA_SASL_SSL;
}

bool kafka_security_uses_tls(const struct kafka_security *s)
{
    return s->protocol == KAFKA_SSL || s->protocol == KAFKA_SASL_SSL;
}

static bool set(const char *v)
{
    return v && *v;
}

struct check {
    void (*report)(void *rctx, const char *name, const char *reason);
    void *rctx;
    int errors;
    const char *protocol; /* its word, for the reasons */
};

static void fail(struct check *c, const char *name, const char *reason)
{
    c->report(c->rctx, name, reason);
    c->errors++;
}

/* A setting that the protocol would ignore is refused: an operator who set
 * a CA file believes the connection is encrypted. */
static void unused(struct check *c, const char *name, const char *needs)
{
    char reason[160];
    snprintf(reason, sizeof reason, "set, but KAFKA_SECURITY_PROTOCOL is %s: it needs %s",
             c->protocol, needs);
    fail(c, name, reason);
}

static void required(struct check *c, const char *name, const char *with)
{
    char reason[160];
    snprintf(reason, sizeof reason, "required with %s", with);
    fail(c, name, reason);
}

/* The file must be readable now: librdkafka would otherwise fail only when
 * the first client is created, after the database work of start-up. */
static void readable(struct check *c, const char *name, const char *path)
{
    if (!set(path) || access(path, R_OK) == 0)
        return;
    char reason[160];
    snprintf(reason, sizeof reason, "cannot read the file: %s", strerror(errno));
    fail(c, name, reason);
}

int kafka_security_check(const struct kafka_security *s,
                         void (*report)(void *rctx, const char *name, const char *reason),
                         void *rctx)
{
    const char *word = kafka_security_protocol_name(s->protocol);
    struct check c = {report, rctx, 0, word ? word : "?"};
    if (!word || !kafka_security_mechanism_name(s->mechanism)) {
        fail(&c, "KAFKA_SECURITY_PROTOCOL", "not a known protocol or mechanism");
        return c.errors;
    }
    char with[64];
    snprintf(with, sizeof with, "KAFKA_SECURITY_PROTOCOL=%s", word);

    if (kafka_security_uses_sasl(s)) {
        if (!set(s->username))
            required(&c, "KAFKA_SASL_USERNAME", with);
        if (!set(s->password))
            required(&c, "KAFKA_SASL_PASSWORD", with);
    } else {
        if (set(s->username))
            unused(&c, "KAFKA_SASL_USERNAME", "sasl_plaintext or sasl_ssl");
        if (set(s->password))
            unused(&c, "KAFKA_SASL_PASSWORD", "sasl_plaintext or sasl_ssl");
    }

    const struct {
        const char *name;
        const char *value;
    } tls[] = {
        {"KAFKA_SSL_CA_LOCATION", s->ca_location},
        {"KAFKA_SSL_CERTIFICATE_LOCATION", s->certificate_location},
        {"KAFKA_SSL_KEY_LOCATION", s->key_location},
        {"KAFKA_SSL_KEY_PASSWORD", s->key_password},
    };
    if (!kafka_security_uses_tls(s)) {
        for (size_t i = 0; i < sizeof tls / sizeof tls[0]; i++)
            if (set(tls[i].value))
                unused(&c, tls[i].name, "ssl or sasl_ssl");
        return c.errors;
    }
    if (set(s->certificate_location) && !set(s->key_location))
        required(&c, "KAFKA_SSL_KEY_LOCATION", "KAFKA_SSL_CERTIFICATE_LOCATION");
    if (set(s->key_location) && !set(s->certificate_location))
        required(&c, "KAFKA_SSL_CERTIFICATE_LOCATION", "KAFKA_SSL_KEY_LOCATION");
    if (set(s->key_password) && !set(s->key_location))
        required(&c, "KAFKA_SSL_KEY_LOCATION", "KAFKA_SSL_KEY_PASSWORD");
    for (size_t i = 0; i < 3; i++)
        readable(&c, tls[i].name, tls[i].value);
    return c.errors;
}

void kafka_security_set(const struct kafka_security *s)
{
    if (s)
        current = *s;
    else
        memset(&current, 0, sizeof current);
}

const struct kafka_security *kafka_security_get(void)
{
    return &current;
}
