/* How every Kafka client reaches the brokers: TLS and SASL. One setting for
 * the whole process, read from the environment through the config table
 * (common/service.c, kizunactl) and applied by kafka.c to every producer,
 * consumer and admin client it creates. Nothing here includes librdkafka. */
#ifndef KIZUNA_KAFKA_SECURITY_H
#define KIZUNA_KAFKA_SECURITY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* KAFKA_SECURITY_PROTOCOL's words, which are also librdkafka's. */
enum kafka_protocol {
    KAFKA_PLAINTEXT = 0,
    KAFKA_SSL,
    KAFKA_SASL_PLAINTEXT,
    KAFKA_SASL_SSL,
};

/* KAFKA_SASL_MECHANISM's words, which are also librdkafka's. */
enum kafka_mechanism {
    KAFKA_SASL_PLAIN = 0,
    KAFKA_SASL_SCRAM_SHA_256,
    KAFKA_SASL_SCRAM_SHA_512,
};

/* Strings are NULL or "" when unset; they are borrowed (from the
 * environment) and must outlive every client. */
struct kafka_security {
    int protocol;                     /* enum kafka_protocol (a CONFIG_ENUM index) */
    int mechanism;                    /* enum kafka_mechanism; sasl_* protocols only */
    const char *username;             /* SASL user */
    const char *password;             /* SASL password: a secret */
    const char *ca_location;          /* TLS: PEM file of the CAs to trust; unset: the system's */
    const char *certificate_location; /* TLS client certificate (PEM), for mutual TLS */
    const char *key_location;         /* its private key (PEM) */
    const char *key_password;         /* the key's passphrase: a secret */
};

#define KAFKA_SECURITY_ENTRIES 8

/* Fills out[0..KAFKA_SECURITY_ENTRIES) with the config entries that read
 * KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_{MECHANISM,USERNAME,PASSWORD} and
 * KAFKA_SSL_{CA,CERTIFICATE,KEY}_LOCATION, KAFKA_SSL_KEY_PASSWORD into s
 * (the passwords as CONFIG_SECRET). s must outlive config_load. Returns
 * KAFKA_SECURITY_ENTRIES. Main thread, at start-up. */
size_t kafka_security_entries(struct kafka_security *s, struct config_entry *out);

/* Checks what the entries cannot alone: a sasl_* protocol needs a username
 * and a password and the others take none; TLS files need ssl or sasl_ssl
 * and must be readable; a certificate needs its key and the key its
 * certificate. Calls report(rctx, variable, reason) once per error and
 * returns the number of errors. Never reports a secret's value. */
int kafka_security_check(const struct kafka_security *s,
                         void (*report)(void *rctx, const char *name, const char *reason),
                         void *rctx);

/* Makes *s (copied; its strings borrowed) the settings of every Kafka
 * client created from now on; NULL restores plaintext. Call at start-up,
 * after kafka_security_check passed and before any client exists. */
void kafka_security_set(const struct kafka_security *s);

/* The settings in force: plaintext until kafka_security_set. Read by
 * kafka.c whenever it creates a client; any thread. */
const struct kafka_security *kafka_security_get(void);

/* librdkafka's names: "sasl_ssl", "SCRAM-SHA-256"; NULL when out of range. */
const char *kafka_security_protocol_name(int protocol);
const char *kafka_security_mechanism_name(int mechanism);

/* Whether the protocol authenticates with SASL / encrypts with TLS. */
bool kafka_security_uses_sasl(const struct kafka_security *s);
bool kafka_security_uses_tls(const struct kafka_security *s);

#endif
