/* Signed tracked-link tokens for GET /r/{token}: whoever holds the link key
 * (segmentation mints, ingest verifies) can make a link that redirects to
 * its target and records the click; nobody else can, so the redirector is
 * never an open redirect. The token is
 *     base64url(payload) "." base64url(HMAC-SHA256(link key, payload))
 * with a versioned binary payload (see link_token.c). Pure and thread-safe:
 * no I/O, no allocation. */
#ifndef KIZUNA_LINK_TOKEN_H
#define KIZUNA_LINK_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

/* Field capacities, NUL included. */
#define LINK_TOKEN_TENANT_MAX 128
#define LINK_TOKEN_CHANNEL_MAX 32
#define LINK_TOKEN_ID_MAX 64
#define LINK_TOKEN_USER_MAX 64
#define LINK_TOKEN_URL_MAX 2049
/* The longest token text link_token_sign can produce, NUL included. */
#define LINK_TOKEN_TEXT_MAX 3400

struct link_token {
    char tenant_id[LINK_TOKEN_TENANT_MAX];
    char channel_id[LINK_TOKEN_CHANNEL_MAX];
    char link_id[LINK_TOKEN_ID_MAX];
    char friend_user_id[LINK_TOKEN_USER_MAX]; /* may be empty: not personalised */
    char target_url[LINK_TOKEN_URL_MAX];      /* http:// or https:// only */
    int64_t expires_at;                       /* unix seconds; required */
};

enum link_token_result {
    LINK_TOKEN_OK = 0,
    LINK_TOKEN_MALFORMED = -1,     /* not token-shaped, truncated, bad payload */
    LINK_TOKEN_BAD_SIGNATURE = -2, /* tampered, or signed with another key */
    LINK_TOKEN_EXPIRED = -3,
    LINK_TOKEN_BAD_TARGET = -4, /* target is not an http(s) URL we redirect to */
};

const char *link_token_result_str(enum link_token_result r);

/* The link key from the deployment's data key: HMAC-SHA256 under the data
 * key of a fixed label, so the same data key never signs two kinds of
 * things. (A deployment may instead configure KIZUNA_LINK_KEY; see
 * services/ingest/README.md.) */
void link_token_key_derive(const uint8_t data_key[CRYPTO_KEY_LEN],
                           uint8_t link_key[CRYPTO_KEY_LEN]);

/* True when url is something /r/ may redirect to: http:// or https://, a
 * non-empty host, printable ASCII with no spaces or backslashes, at most
 * LINK_TOKEN_URL_MAX - 1 bytes. */
bool link_token_url_ok(const char *url);

/* Writes the token for t into out (NUL-terminated). Returns its length, or
 * LINK_TOKEN_MALFORMED when a field is empty (all but friend_user_id must be
 * set), too long or has control characters, LINK_TOKEN_BAD_TARGET for a
 * refused URL, or -1 if cap is too small. */
long link_token_sign(const uint8_t key[CRYPTO_KEY_LEN], const struct link_token *t, char *out,
                     size_t cap);

/* Checks the signature first (in constant time), then the payload, the
 * target and the expiry against now (unix seconds); fills out only on
 * LINK_TOKEN_OK. token need not be NUL-terminated. */
enum link_token_result link_token_verify(const uint8_t key[CRYPTO_KEY_LEN], const char *token,
                                         size_t len, int64_t now, struct link_token *out);

#endif
