/* JWT (HS256 only) for the admin APIs: issue for kizunactl, verify for the
 * services. The tenant in a validly signed token is authoritative. Only
 * auth.c includes libjwt (used to issue; verification is our own, see
 * docs/decisions/0008-jwt-verification.md). Thread-safe. */
#ifndef KIZUNA_AUTH_H
#define KIZUNA_AUTH_H

#include <stddef.h>
#include <time.h>

#define AUTH_FIELD_MAX 128
/* The shortest key accepted, in bytes: an HS256 key shorter than the hash
 * can be guessed offline from any one token. KIZUNA_JWT_KEY shorter than
 * this is a config error; issue and verify refuse it too. */
#define AUTH_KEY_MIN 32
/* Claim "aud" of every token: a token minted for something else with the
 * same key is not ours. */
#define AUTH_AUDIENCE "kizuna"
/* The longest lifetime (exp - iat) a token may have, in seconds: 24 h. A
 * leaked token is useful for at most this long. */
#define AUTH_LIFETIME_MAX (24L * 3600)
/* How far iat and nbf may be ahead of our clock (the issuer's clock may be
 * a little fast), in seconds. */
#define AUTH_CLOCK_SKEW 60

struct auth_claims {
    char tenant[AUTH_FIELD_MAX];  /* claim "tenant" */
    char subject[AUTH_FIELD_MAX]; /* claim "sub" */
    char role[AUTH_FIELD_MAX];    /* claim "role": viewer, operator, admin, deployment */
    long long exp;                /* claim "exp", unix seconds */
    long long iat;                /* claim "iat", unix seconds */
};

/* Result codes, so that callers can answer precisely. */
enum auth_result {
    AUTH_OK = 0,
    AUTH_MALFORMED = -1, /* not a JWT, or missing claims */
    AUTH_BAD_SIGNATURE = -2,
    AUTH_BAD_ALGORITHM = -3, /* "none", RS256, anything but HS256 */
    AUTH_EXPIRED = -4,
    AUTH_WRONG_TENANT = -5,
    AUTH_FORBIDDEN = -6,     /* role too weak */
    AUTH_NOT_YET_VALID = -7, /* iat or nbf later than now + AUTH_CLOCK_SKEW */
    AUTH_BAD_AUDIENCE = -8,  /* "aud" missing, or not AUTH_AUDIENCE */
    AUTH_TOO_LONG = -9,      /* exp - iat over AUTH_LIFETIME_MAX */
    AUTH_BAD_KEY = -10,      /* our key is shorter than AUTH_KEY_MIN: nothing verifies */
};

const char *auth_result_str(enum auth_result r);

/* Signs claims with key (at least AUTH_KEY_MIN bytes): tenant, sub, role,
 * aud AUTH_AUDIENCE, iat and nbf now, exp now + ttl_seconds (1 up to
 * AUTH_LIFETIME_MAX). Returns a malloc'd token (caller frees) or NULL. */
char *auth_token_issue(const void *key, size_t keylen, const char *tenant, const char *subject,
                       const char *role, long ttl_seconds, time_t now);

/* Verifies a token at time now, in this order: the key's length, the shape
 * (three strict base64url parts), the HMAC-SHA256 over header.payload
 * (compared in constant time, before any JSON is parsed), the header (HS256
 * only), the claims' types, aud, the lifetime, iat and nbf, and exp. Fills
 * claims on AUTH_OK, clears them otherwise. */
enum auth_result auth_token_verify(const void *key, size_t keylen, const char *token, time_t now,
                                   struct auth_claims *claims);

/* Verifies "Bearer <token>" from an Authorization header. */
enum auth_result auth_header_verify(const void *key, size_t keylen, const char *header, time_t now,
                                    struct auth_claims *claims);

/* Checks that claims may act on tenant with at least min_role
 * (viewer < operator < admin < deployment). "deployment" is the
 * deployment's operator's role: only kizunactl issues tokens, so only the
 * holder of the signing key can give it; a tenant's admin cannot. It is
 * still scoped to its token's tenant. AUTH_WRONG_TENANT means "answer 404". */
enum auth_result auth_claims_allow(const struct auth_claims *claims, const char *tenant,
                                   const char *min_role);

/* Parses a TTL such as "90s", "15m", "1h", "7d". Returns seconds or -1. */
long auth_ttl_parse(const char *text);

#endif
