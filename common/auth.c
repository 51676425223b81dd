/* JWT issue and verification for the admin APIs, HS256 only.
 *
 * Verification does not use libjwt. libjwt parses the header and payload
 * JSON before it checks the signature, accepts "alg":"none" when given no
 * key, decodes base64 loosely and takes the last of duplicate JSON keys;
 * and whether it compares signatures in constant time depends on the
 * build (decision 0008). So we split the token ourselves, decode every part
 * with the strict base64url decoder, check the HMAC-SHA256 of the header
 * and payload text with common/crypto (CRYPTO_memcmp), and only then parse
 * any JSON: an anonymous caller cannot make us parse anything without the
 * key. The header must then say HS256 and nothing else, and the claims are
 * read with exact types.
 *
 * Issuing still goes through libjwt, whose output the tests verify with the
 * code here. Only this file includes jwt.h. */
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
    case AUTH_NOT_YET_VALID:
        return "token not yet valid";
    case AUTH_BAD_AUDIENCE:
        return "token for another audience";
    case AUTH_TOO_LONG:
        return "token lifetime over the limit";
    case AUTH_BAD_KEY:
        return "signing key too short";
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

    if (!key || keylen < AUTH_KEY_MIN || keylen > INT_MAX)
        return NULL;
    if (!tenant || !field_valid(tenant, strlen(tenant)) || !subject ||
        !field_valid(subject, strlen(subject)) || role_rank(role) < 0)
        return NULL;
    if (ttl_seconds <= 0 || ttl_seconds > AUTH_LIFETIME_MAX || now < 0 ||
        (long long)now > LLONG_MAX - ttl_seconds)
        return NULL;
    long long exp = (long long)now + ttl_seconds;
    if (exp > LONG_MAX) /* jwt_add_grant_int takes a long */
        return NULL;

    if (jwt_new(&jwt) != 0)
        return NULL;
    if (jwt_add_grant(jwt, "tenant", tenant) != 0 || jwt_add_grant(jwt, "sub", subject) != 0 ||
        jwt_add_grant(jwt, "role", role) != 0 || jwt_add_grant(jwt, "aud", AUTH_AUDIENCE) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
        jwt_add_grant_int(jwt, "nbf", (long)now) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)exp) != 0)
        goto done;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, key, (int)keylen) != 0)
        goto done;
    token = jwt_encode_str(jwt);
done:
    jwt_free(jwt);
    return token;
}

/* Parses decoded bytes as a JSON object; NULL if they are not one. Only
 * called once the signature has been checked. */
static json_t *object_parse(const uint8_t *bytes, size_t len)
{
    json_t *json = json_loadb((const char *)bytes, len, JSON_REJECT_DUPLICATES, NULL);
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

static bool audience_is(const json_t *v, const char *want)
{
    return json_is_string(v) && json_string_length(v) == strlen(want) &&
           strcmp(json_string_value(v), want) == 0;
}

/* RFC 7519 4.1.3: "aud" is one string or an array of strings; ours must
 * be, or be among, AUTH_AUDIENCE. */
static bool audience_ok(const json_t *aud)
{
    if (json_is_array(aud)) {
        size_t i;
        const json_t *v;
        json_array_foreach(aud, i, v)
        {
            if (audience_is(v, AUTH_AUDIENCE))
                return true;
        }
        return false;
    }
    return audience_is(aud, AUTH_AUDIENCE);
}

/* Reads the payload's claims into c and checks them at time now. */
static enum auth_result claims_check(const json_t *payload, time_t now, struct auth_claims *c)
{
    const json_t *exp = json_object_get(payload, "exp");
    const json_t *iat = json_object_get(payload, "iat");
    const json_t *nbf = json_object_get(payload, "nbf");
    if (!claim_copy(payload, "tenant", c->tenant) || !claim_copy(payload, "sub", c->subject) ||
        !claim_copy(payload, "role", c->role) || role_rank(c->role) < 0 || !json_is_integer(exp) ||
        !json_is_integer(iat) || (nbf && !json_is_integer(nbf)))
        return AUTH_MALFORMED;
    c->exp = (long long)json_integer_value(exp);
    c->iat = (long long)json_integer_value(iat);
    if (c->iat < 0)
        return AUTH_MALFORMED;
    if (!audience_ok(json_object_get(payload, "aud")))
        return AUTH_BAD_AUDIENCE;
    /* iat >= 0, so exp - iat cannot overflow. */
    if (c->exp > c->iat && c->exp - c->iat > AUTH_LIFETIME_MAX)
        return AUTH_TOO_LONG;
    long long late = (long long)now + AUTH_CLOCK_SKEW;
    if (c->iat > late || (nbf && (long long)json_integer_value(nbf) > late))
        return AUTH_NOT_YET_VALID;
    /* RFC 7519: the token must not be accepted on or after exp. */
    if ((long long)now >= c->exp)
        return AUTH_EXPIRED;
    return AUTH_OK;
}

enum auth_result auth_token_verify(const void *key, size_t keylen, const char *token, time_t now,
                                   struct auth_claims *claims)
{
    enum auth_result rc = AUTH_MALFORMED;
    uint8_t *buf = NULL;
    json_t *header = NULL, *payload = NULL;
    struct auth_claims c;

    memset(&c, 0, sizeof c);
    if (claims)
        memset(claims, 0, sizeof *claims);
    /* A short or missing key verifies nothing: an empty key would make
     * every HMAC computable by anyone. */
    if (!key || keylen < AUTH_KEY_MIN)
        return AUTH_BAD_KEY;
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

    /* Every part must be strict base64url (the header and payload
     * non-empty): decoding is not parsing, and a token that is not even
     * shaped like a JWT is malformed whatever its signature. The three
     * decoded parts together are shorter than the token. */
    if (!(buf = malloc(len)))
        goto done;
    uint8_t *hbuf = buf;
    long hn = crypto_base64url_decode(token, hlen, hbuf, len);
    if (hn <= 0)
        goto done;
    uint8_t *pbuf = hbuf + hn;
    long pn = crypto_base64url_decode(dot1 + 1, plen, pbuf, len - (size_t)hn);
    if (pn <= 0)
        goto done;
    uint8_t *sbuf = pbuf + pn;
    long sn = crypto_base64url_decode(dot2 + 1, slen, sbuf, len - (size_t)hn - (size_t)pn);
    if (sn < 0)
        goto done;

    /* The signature, before any JSON. An empty or short one under an HS256
     * header is simply wrong. */
    rc = AUTH_BAD_SIGNATURE;
    uint8_t mac[AUTH_SIG_LEN];
    crypto_hmac_sha256(key, keylen, token, (size_t)(dot2 - token), mac);
    bool signed_ok = sn == AUTH_SIG_LEN && crypto_equal(mac, sbuf, AUTH_SIG_LEN);
    crypto_wipe(mac, sizeof mac);
    if (!signed_ok)
        goto done;

    rc = AUTH_MALFORMED;
    if (!(header = object_parse(hbuf, (size_t)hn)))
        goto done;
    if ((rc = header_check(header)) != AUTH_OK)
        goto done;
    rc = AUTH_MALFORMED;
    if (!(payload = object_parse(pbuf, (size_t)pn)))
        goto done;
    if ((rc = claims_check(payload, now, &c)) != AUTH_OK)
        goto done;
    if (claims)
        *claims = c;
done:
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
