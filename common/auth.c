/* JWT issue and verification for the admin APIs, HS256 only.
 *
 * libjwt checks the signature, but it is lenient about what it is handed:
 * it accepts "alg":"none" when given no key, decodes base64 loosely and
 * takes the last of duplicate JSON keys. So before libjwt sees a token we
 * split it ourselves, decode every part with the strict base64url decoder,
 * and insist that the header says HS256 and nothing else. After libjwt has
 * verified it we check jwt_get_alg() again, then read the claims with exact
 * types from the same bytes. Only this file includes jwt.h. */
#include "auth.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <jwt.h>

#include "crypto.h"

/* Longer tokens are refused before any decoding: ours are a few hundred
 * bytes, and the cap bounds the work an anonymous caller can cause. */
#define AUTH_TOKEN_MAX 8192
#define AUTH_SIG_LEN 32

/* In rank order. "deployment" is the deployment's operator (whoever holds
 * the signing key and runs kizunactl), above every tenant's admin: it may
 * also do what a tenant must not, such as lift a channel's rate limit. */
static const char *const role_names[] = {"viewer", "operator", "admin", "deployment"};
#define ROLE_COUNT (sizeof role_names / sizeof role_names[0])

const char *auth_result_str(enum auth_result r)
{
    switch (r) {
    case AUTH_OK:
        return "ok";
    case AUTH_MALFORMED:
        return "malformed token";
    case AUTH_BAD_SIGNATURE:
        return "bad signature";
    case AUTH_BAD_ALGORITHM:
        return "algorithm not allowed";
    case AUTH_EXPIRED:
        return "token expired";
    case AUTH_WRONG_TENANT:
        return "wrong tenant";
    case AUTH_FORBIDDEN:
        return "role not allowed";
    }
    return "unknown";
}

/* Rank of a role (viewer 0 < operator 1 < admin 2 < deployment 3), or -1
 * if unknown. */
static int role_rank(const char *role)
{
    for (int i = 0; role && i < (int)ROLE_COUNT; i++)
        if (strcmp(role, role_names[i]) == 0)
            return i;
    return -1;
}

/* A claim value is copied into a fixed field and ends up in logs and SQL
 * parameters: it must be non-empty, fit with its NUL, and hold no control
 * characters (which also rules out an embedded NUL). */
static bool field_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len >= AUTH_FIELD_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

char *auth_token_issue(const void *key, size_t keylen, const char *tenant, const char *subject,
                       const char *role, long ttl_seconds, time_t now)
{
    jwt_t *jwt = NULL;
    char *token = NULL;

    if (!key || keylen == 0 || keylen > INT_MAX)
        return NULL;
    if (!tenant || !field_valid(tenant, strlen(tenant)) || !subject ||
        !field_valid(subject, strlen(subject)) || role_rank(role) < 0)
        return NULL;
    if (ttl_seconds <= 0 || now < 0 || (long long)now > LLONG_MAX - ttl_seconds)
        return NULL;
    long long exp = (long long)now + ttl_seconds;
    if (exp > LONG_MAX) /* jwt_add_grant_int takes a long */
        return NULL;

    if (jwt_new(&jwt) != 0)
        return NULL;
    if (jwt_add_grant(jwt, "tenant", tenant) != 0 || jwt_add_grant(jwt, "sub", subject) != 0 ||
        jwt_add_grant(jwt, "role", role) != 0 || jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)exp) != 0)
        goto done;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, key, (int)keylen) != 0)
        goto done;
    token = jwt_encode_str(jwt);
done:
    jwt_free(jwt);
    return token;
}

/* Strictly decodes one base64url part and parses it as a JSON object. */
static json_t *part_json(const char *part, size_t len, uint8_t *buf, size_t cap)
{
    long n = crypto_base64url_decode(part, len, buf, cap);
    if (n <= 0)
        return NULL;
    json_t *json = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (json && !json_is_object(json)) {
        json_decref(json);
        return NULL;
    }
    return json;
}

/* The header must name HS256 exactly. "typ", if present, must be JWT, and
 * any "crit" extension is refused because we implement none. */
static enum auth_result header_check(const json_t *header)
{
    const json_t *alg = json_object_get(header, "alg");
    const json_t *typ = json_object_get(header, "typ");
    if (!json_is_string(alg))
        return AUTH_MALFORMED;
    if (strcmp(json_string_value(alg), "HS256") != 0 || json_string_length(alg) != 5)
        return AUTH_BAD_ALGORITHM;
    if (typ && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0))
        return AUTH_MALFORMED;
    if (json_object_get(header, "crit"))
        return AUTH_MALFORMED;
    return AUTH_OK;
}

static bool claim_copy(const json_t *payload, const char *name, char out[AUTH_FIELD_MAX])
{
    const json_t *v = json_object_get(payload, name);
    if (!json_is_string(v) || !field_valid(json_string_value(v), json_string_length(v)))
        return false;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

enum auth_result auth_token_verify(const void *key, size_t keylen, const char *token, time_t now,
                                   struct auth_claims *claims)
{
    enum auth_result rc = AUTH_MALFORMED;
    uint8_t *buf = NULL;
    json_t *header = NULL, *payload = NULL;
    jwt_t *jwt = NULL;
    struct auth_claims c;

    memset(&c, 0, sizeof c);
    if (claims)
        memset(claims, 0, sizeof *claims);
    if (!token)
        return AUTH_MALFORMED;
    size_t len = strnlen(token, AUTH_TOKEN_MAX + 1);
    if (len == 0 || len > AUTH_TOKEN_MAX)
        return AUTH_MALFORMED;

    /* Exactly three parts: header.payload.signature. */
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return AUTH_MALFORMED;
    size_t hlen = (size_t)(dot1 - token), plen = (size_t)(dot2 - dot1 - 1);
    size_t slen = len - (size_t)(dot2 + 1 - token);

    if (!(buf = malloc(len)))
        goto done;
    if (!(header = part_json(token, hlen, buf, len)))
        goto done;
    if ((rc = header_check(header)) != AUTH_OK)
        goto done;
    rc = AUTH_MALFORMED;
    if (!(payload = part_json(dot1 + 1, plen, buf, len)))
        goto done;

    /* A signature that is not base64url is a malformed token; an empty or
     * short one under an HS256 header is simply wrong. A missing key must
     * never reach libjwt, which would then skip verification. */
    long siglen = crypto_base64url_decode(dot2 + 1, slen, buf, len);
    if (siglen < 0)
        goto done;
    rc = AUTH_BAD_SIGNATURE;
    if (siglen != AUTH_SIG_LEN)
        goto done;
    if (!key || keylen == 0 || keylen > INT_MAX)
        goto done;
    if (jwt_decode(&jwt, token, key, (int)keylen) != 0 || !jwt)
        goto done;
    rc = AUTH_BAD_ALGORITHM;
    if (jwt_get_alg(jwt) != JWT_ALG_HS256)
        goto done;

    rc = AUTH_MALFORMED;
    const json_t *exp = json_object_get(payload, "exp");
    if (!claim_copy(payload, "tenant", c.tenant) || !claim_copy(payload, "sub", c.subject) ||
        !claim_copy(payload, "role", c.role) || role_rank(c.role) < 0 || !json_is_integer(exp))
        goto done;
    c.exp = (long long)json_integer_value(exp);
    /* RFC 7519: the token must not be accepted on or after exp. */
    rc = AUTH_EXPIRED;
    if ((long long)now >= c.exp)
        goto done;
    if (claims)
        *claims = c;
    rc = AUTH_OK;
done:
    jwt_free(jwt);
    json_decref(header);
    json_decref(payload);
    free(buf);
    return rc;
}

/* The scheme is matched case-insensitively (RFC 7235: auth-scheme is
 * case-insensitive), so "bearer x" works; then one or more spaces, then the
 * token. Anything else, including a missing header, is AUTH_MALFORMED. */
enum auth_result auth_header_verify(const void *key, size_t keylen, const char *header, time_t now,
                                    struct auth_claims *claims)
{
    if (claims)
        memset(claims, 0, sizeof *claims);
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return AUTH_MALFORMED;
    const char *token = header + 7;
    while (*token == ' ')
        token++;
    return auth_token_verify(key, keylen, token, now, claims);
}

/* Tenant before role: a caller from another tenant learns nothing about
 * what roles would have been needed, and is answered 404. */
enum auth_result auth_claims_allow(const struct auth_claims *claims, const char *tenant,
                                   const char *min_role)
{
    if (!claims || !tenant || strcmp(claims->tenant, tenant) != 0)
        return AUTH_WRONG_TENANT;
    int have = role_rank(claims->role), need = role_rank(min_role);
    if (have < 0 || need < 0 || have < need)
        return AUTH_FORBIDDEN;
    return AUTH_OK;
}

long auth_ttl_parse(const char *text)
{
    long unit;
    char *end;

    if (!text || text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno == ERANGE || end == text)
        return -1;
    switch (*end) {
    case '\0':
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        return -1;
    }
    if (*end != '\0' && end[1] != '\0')
        return -1;
    if (n <= 0 || n > LONG_MAX / unit)
        return -1;
    return n * unit;
}
