/* The channel registry: channels per tenant with their secrets sealed under
 * the data key, the admin API over them (/v1/channels), publication of every
 * change to the compacted `channels` topic through the ingest outbox, and a
 * read cache that the webhook path consults on every request. */
#ifndef KIZUNA_INGEST_REGISTRY_H
#define KIZUNA_INGEST_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "crypto.h"
#include "httpd.h"

struct registry;

#define REGISTRY_SECRET_MAX 128

/* What the webhook path needs to verify and attribute a request. */
struct channel_view {
    char tenant_id[AUTH_FIELD_MAX];
    char channel_id[32];
    char bot_user_id[64];
    uint8_t secret[REGISTRY_SECRET_MAX]; /* the opened channel secret */
    size_t secret_len;
};

/* Opens its own database connections (the API and the cache each use one,
 * guarded so any thread may call). key is copied. line_api_base is where
 * the ownership check asks LINE (INGEST_LINE_API_BASE, already checked
 * with line_base_url_check); copied. Returns NULL + errstr. */
struct registry *registry_new(const char *database_url, const uint8_t key[CRYPTO_KEY_LEN],
                              const char *line_api_base, char *errstr, size_t errcap);
void registry_free(struct registry **reg);

/* Looks a channel up by LINE channel id, from the cache (refreshed from the
 * database when missing or older than a few seconds; unknown ids are cached
 * briefly too, so a flood of bad ids cannot hammer the database).
 * Returns 0 and fills out, 1 if no such channel, or < 0 if the database is
 * unreachable and nothing is cached. Any thread. */
int registry_lookup(struct registry *reg, const char *channel_id, struct channel_view *out);

/* The /v1/channels admin API (service_api_handler shape; ctx is the
 * registry). Tenant-scoped by claims; another tenant's channel is 404. */
void registry_api(void *ctx, const struct auth_claims *claims, const struct httpd_request *req,
                  struct httpd_response *resp);

#endif
