/* JWT (HS256 only) for the admin APIs: issue for kizunactl, verify for the
 * services. The tenant in a validly signed token is authoritative. Only
 * auth.c includes libjwt. Thread-safe. */
#ifndef KIZUNA_AUTH_H
#define KIZUNA_AUTH_H

#include <stddef.h>
#include <time.h>

#define AUTH_FIELD_MAX 128

struct auth_claims {
    char tenant[AUTH_FIELD_MAX];  /* claim "tenant" */
    char subject[AUTH_FIELD_MAX]; /* claim "sub" */
    char role[AUTH_FIELD_MAX];    /* claim "role": viewer, operator, admin, deployment */
    long long exp;                /* claim "exp", unix seconds */
};

/* Result codes, so that callers can answer precisely. */
enum auth_result {
    AUTH_OK = 0,
    AUTH_MALFORMED = -1, /* not a JWT, or missing claims */
    AUTH_BAD_SIGNATURE = -2,
    AUTH_BAD_ALGORITHM = -3, /* "none", RS256, anything but HS256 */
    AUTH_EXPIRED = -4,
    AUTH_WRONG_TENANT = -5,
    AUTH_FORBIDDEN = -6, /* role too weak */
};

const char *auth_result_str(enum auth_result r);

/* Signs claims with key. Returns a malloc'd token (caller frees) or NULL. */
char *auth_token_issue(const void *key, size_t keylen, const char *tenant, const char *subject,
                       const char *role, long ttl_seconds, time_t now);

/* Verifies the token's algorithm, signature, claims and expiry at time now.
 * Fills claims on AUTH_OK. */
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
