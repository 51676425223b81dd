/* Validation of /v1/channels request bodies and path ids, kept apart from
 * HTTP and SQL so that every rule (types, sizes, patterns, unknown fields)
 * is unit-tested without a network. Pure except for the time zone check,
 * which looks the zone up in a zoneinfo folder. Any thread. */
#ifndef KIZUNA_INGEST_REGISTRY_INPUT_H
#define KIZUNA_INGEST_REGISTRY_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

#define REGISTRY_BODY_MAX (16 * 1024)
#define REGISTRY_CHANNEL_ID_MAX 20  /* digits; LINE's ids are 10 */
#define REGISTRY_NAME_MAX 200       /* bytes of UTF-8 */
#define REGISTRY_TOKEN_MAX 2048     /* long-lived and v2.1 tokens fit */
#define REGISTRY_BOT_USER_ID_LEN 33 /* "U" + 32 hex digits */
#define REGISTRY_TIMEZONE_MAX 64
#define REGISTRY_FINGERPRINT_LEN 8 /* hex digits */
#define REGISTRY_DEFAULT_TIMEZONE "Asia/Tokyo"
#define REGISTRY_FIELD_NAME_MAX 64 /* an unknown field's name is quoted up to this */

/* Bits of registry_input.present. */
enum registry_input_field {
    REGISTRY_F_CHANNEL_ID = 1 << 0,
    REGISTRY_F_NAME = 1 << 1,
    REGISTRY_F_SECRET = 1 << 2,
    REGISTRY_F_TOKEN = 1 << 3,
    REGISTRY_F_BOT_USER_ID = 1 << 4,
    REGISTRY_F_TIMEZONE = 1 << 5,
    REGISTRY_F_QUOTA = 1 << 6,
};

/* A validated body. Holds secrets in the clear: wipe it with
 * registry_input_wipe() as soon as they are sealed. */
struct registry_input {
    unsigned present; /* registry_input_field bits that the body set */
    char channel_id[REGISTRY_CHANNEL_ID_MAX + 1];
    char name[REGISTRY_NAME_MAX + 1];
    char channel_secret[REGISTRY_SECRET_MAX + 1];
    char access_token[REGISTRY_TOKEN_MAX + 1];
    char bot_user_id[REGISTRY_BOT_USER_ID_LEN + 1];
    char timezone[REGISTRY_TIMEZONE_MAX + 1];
    long long monthly_quota;
};

/* Why a body was refused: status 400, a stable code, a message that never
 * quotes the body (it may hold secrets) and the offending field or NULL. */
struct registry_input_error {
    int status;
    const char *code;
    char message[160];
    char field[REGISTRY_FIELD_NAME_MAX + 1]; /* "" when no single field is at fault */
};

enum registry_input_mode {
    REGISTRY_INPUT_CREATE, /* POST: required fields, defaults filled in */
    REGISTRY_INPUT_PATCH,  /* PATCH: any subset but channel_id, at least one */
};

/* Parses and validates a JSON body. zoneinfo_dir is the folder in which a
 * time zone must exist as a TZif file, or NULL to check only its pattern.
 * Returns 0, or -1 and fills err. in is wiped on failure. */
int registry_input_parse(const char *body, size_t len, enum registry_input_mode mode,
                         const char *zoneinfo_dir, struct registry_input *in,
                         struct registry_input_error *err);

/* Overwrites the secrets (and everything else) in in. */
void registry_input_wipe(struct registry_input *in);

/* True for 1..REGISTRY_CHANNEL_ID_MAX decimal digits. */
bool registry_channel_id_valid(const char *s);

/* True for a strict IANA-style name (letters, digits, '_', '-', '+', with
 * '/' between non-empty parts, no "." parts) that, when zoneinfo_dir is not
 * NULL, names a TZif file in it. */
bool registry_timezone_valid(const char *name, const char *zoneinfo_dir);

/* The displayed fingerprint of a secret: the first 8 lower-case hex digits
 * of HMAC-SHA256 keyed "kizuna-fingerprint-v1" over the secret's bytes. */
void registry_fingerprint(const void *secret, size_t len, char out[REGISTRY_FINGERPRINT_LEN + 1]);

#endif
