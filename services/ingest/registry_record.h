/* The two shapes in which a channel leaves ingest: the admin API's JSON
 * (fingerprints, never secrets) and the `channels` topic's ChannelConfig
 * (the access token still sealed). Pure: any thread. */
#ifndef KIZUNA_INGEST_REGISTRY_RECORD_H
#define KIZUNA_INGEST_REGISTRY_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "crypto.h"
#include "registry_input.h"

#define REGISTRY_TOKEN_SEALED_MAX (REGISTRY_TOKEN_MAX + CRYPTO_SEAL_OVERHEAD)
#define REGISTRY_AAD_MAX (AUTH_FIELD_MAX + REGISTRY_CHANNEL_ID_MAX + 2)

/* One row of ingest.channels as the registry reads it back. */
struct channel_row {
    char tenant_id[AUTH_FIELD_MAX];
    char channel_id[REGISTRY_CHANNEL_ID_MAX + 1];
    char name[REGISTRY_NAME_MAX + 1];
    char bot_user_id[REGISTRY_BOT_USER_ID_LEN + 1];
    char timezone[REGISTRY_TIMEZONE_MAX + 1];
    long long monthly_quota;
    char secret_fingerprint[REGISTRY_FINGERPRINT_LEN + 1];
    char access_token_fingerprint[REGISTRY_FINGERPRINT_LEN + 1];
    uint8_t access_token_sealed[REGISTRY_TOKEN_SEALED_MAX];
    size_t access_token_sealed_len;
    long long version;
    int64_t created_at_ms;
    int64_t updated_at_ms;
    bool deleted;
};

/* The associated data every sealed secret of a channel is bound to:
 * "<tenant_id>/<channel_id>". Channel ids are digits, so the last '/'
 * separates the two even when a tenant name contains one. The dispatcher
 * rebuilds it from ChannelConfig.tenant_id and .channel_id to open
 * access_token_sealed. Returns the length, or -1 if it does not fit. */
int registry_aad(const char *tenant_id, const char *channel_id, char *out, size_t cap);

/* The API's view of a channel as compact JSON: channel_id, name,
 * bot_user_id, timezone, monthly_quota, secret_fingerprint,
 * access_token_fingerprint, version, created_at, updated_at (RFC 3339 UTC).
 * Returns a malloc'd string, or NULL. */
char *registry_record_json(const struct channel_row *row);

struct json_t;
/* Appends the same object to a JSON array being built (list responses).
 * Returns 0 or -1. */
int registry_record_json_append(struct json_t *array, const struct channel_row *row);

/* Packs row as kizuna.v1.ChannelConfig with an envelope carrying event_id,
 * occurred_at = updated_at. Returns a malloc'd buffer and its length in
 * *len, or NULL. */
uint8_t *registry_record_pack(const struct channel_row *row, const char *event_id, size_t *len);

#endif
