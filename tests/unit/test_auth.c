/* Unit tests for common/auth: tokens issued by auth_token_issue verify, and
 * every token an attacker could hand us is refused with the precise code.
 * Bad tokens are crafted by hand (header and payload JSON, base64url, and an
 * HMAC computed with common/crypto), so the tests do not depend on libjwt
 * being willing to produce them. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "crypto.h"

#define NOW ((time_t)1700000000)
#define EXP_OK "1700003600"
#define EXP_PAST "1699999999"
#define IAT_OK "1699999990"
/* The claims every token needs besides tenant, sub, role and exp. */
#define AUD_IAT ",\"aud\":\"kizuna\",\"iat\":" IAT_OK

static const char key[] = "unit-test-key-0123456789abcdef-0123456789";
static const char other_key[] = "another-key-0123456789abcdef-0123456789";

enum sig_mode { SIG_GOOD, SIG_OTHER_KEY, SIG_EMPTY, SIG_SHORT, SIG_PADDED, SIG_TAMPERED };

/* Builds "b64url(header).b64url(payload).signature". Returns malloc'd text. */
static char *token_craft(const char *header, const char *payload, enum sig_mode mode)
{
    size_t cap = 2 * (strlen(header) + strlen(payload)) + 128;
    char *tok = malloc(cap);
    cr_assert_not_null(tok);
    long h = crypto_base64url_encode(header, strlen(header), tok, cap);
    cr_assert_geq(h, 0);
    tok[h] = '.';
    long p = crypto_base64url_encode(payload, strlen(payload), tok + h + 1, cap - (size_t)h - 1);
    cr_assert_geq(p, 0);
    size_t o = (size_t)(h + 1 + p);

    uint8_t mac[CRYPTO_SHA256_LEN];
    const char *k = mode == SIG_OTHER_KEY ? other_key : key;
    crypto_hmac_sha256(k, strlen(k), tok, o, mac);
    if (mode == SIG_TAMPERED)
        mac[CRYPTO_SHA256_LEN - 1] ^= 0x01;
    tok[o++] = '.';
    tok[o] = '\0';
    if (mode == SIG_EMPTY)
        return tok;
    long s = crypto_base64url_encode(mac, mode == SIG_SHORT ? 31 : sizeof mac, tok + o, cap - o);
    cr_assert_geq(s, 0);
    if (mode == SIG_PADDED) {
        o += (size_t)s;
        memcpy(tok + o, "=", 2);
    }
    return tok;
}

static const char hs256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char good_payload[] =
    "{\"tenant\":\"t1\",\"sub\":\"alice\",\"role\":\"operator\",\"exp\":" EXP_OK AUD_IAT "}";

/* --- good tokens ------------------------------------------------------------ */

Test(auth, issued_token_verifies_with_its_claims)
{
    char *tok = auth_token_issue(key, strlen(key), "tenant-1", "alice", "admin", 3600, NOW);
    cr_assert_not_null(tok);
    struct auth_claims claims;
    cr_assert_eq(auth_token_verify(key, strlen(key), tok, NOW, &claims), AUTH_OK);
    cr_expect_str_eq(claims.tenant, "tenant-1");
    cr_expect_str_eq(claims.subject, "alice");
    cr_expect_str_eq(claims.role, "admin");
    cr_expect_eq(claims.exp, (long long)NOW + 3600);
    cr_expect_eq(claims.iat, (long long)NOW);
    free(tok);
}

/* What kizunactl issues carries aud, iat and nbf, and at most 24 h. */
Test(auth, issued_token_carries_audience_iat_and_nbf)
{
    char *tok = auth_token_issue(key, strlen(key), "t1", "alice", "viewer", AUTH_LIFETIME_MAX, NOW);
    cr_assert_not_null(tok);
    const char *dot1 = strchr(tok, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    cr_assert_not_null(dot2);
    uint8_t payload[1024];
    long n =
        crypto_base64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, sizeof payload - 1);
    cr_assert_gt(n, 0);
    payload[n] = '\0';
    cr_expect(strstr((char *)payload, "\"aud\":\"kizuna\"") != NULL, "%s", payload);
    cr_expect(strstr((char *)payload, "\"iat\":1700000000") != NULL, "%s", payload);
    cr_expect(strstr((char *)payload, "\"nbf\":1700000000") != NULL, "%s", payload);
    cr_expect(strstr((char *)payload, "\"exp\":1700086400") != NULL, "%s", payload);
    cr_expect_eq(auth_token_verify(key, strlen(key), tok, NOW + AUTH_LIFETIME_MAX - 1, NULL),
                 AUTH_OK);
    free(tok);
}

Test(auth, token_is_valid_until_the_second_before_exp)
{
    char *tok = auth_token_issue(key, strlen(key), "t1", "alice", "viewer", 60, NOW);
    cr_assert_not_null(tok);
    struct auth_claims claims;
    cr_expect_eq(auth_token_verify(key, strlen(key), tok, NOW + 59, &claims), AUTH_OK);
    cr_expect_eq(auth_token_verify(key, strlen(key), tok, NOW + 60, &claims), AUTH_EXPIRED);
    free(tok);
}

Test(auth, hand_signed_hs256_token_verifies)
{
    /* A token signed by hand, as another issuer would sign it, verifies:
     * the check is not tied to libjwt's output. */
    char *tok = token_craft(hs256, good_payload, SIG_GOOD);
    struct auth_claims claims;
    cr_expect_eq(auth_token_verify(key, strlen(key), tok, NOW, &claims), AUTH_OK);
    cr_expect_str_eq(claims.tenant, "t1");
    cr_expect_str_eq(claims.role, "operator");
    free(tok);
}

/* The edges of the time and audience checks, just inside. */
Test(auth, claims_at_the_edges_verify)
{
    const struct {
        const char *name;
        const char *payload;
    } cases[] = {
        {"iat at the skew", "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK
                            ",\"aud\":\"kizuna\",\"iat\":1700000060}"},
        {"nbf at the skew",
         "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT
         ",\"nbf\":1700000060}"},
        {"nbf in the past",
         "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT
         ",\"nbf\":1}"},
        {"lifetime exactly 24 h",
         "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":1700086390"
         ",\"aud\":\"kizuna\",\"iat\":" IAT_OK "}"},
        {"aud an array holding ours",
         "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK ",\"iat\":" IAT_OK
         ",\"aud\":[\"billing\",\"kizuna\"]}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *tok = token_craft(hs256, cases[i].payload, SIG_GOOD);
        struct auth_claims claims;
        enum auth_result r = auth_token_verify(key, strlen(key), tok, NOW, &claims);
        cr_expect_eq(r, AUTH_OK, "%s: got %s", cases[i].name, auth_result_str(r));
        free(tok);
    }
}

Test(auth, header_without_typ_and_with_extra_claims_verifies)
{
    char *tok =
        token_craft("{\"alg\":\"HS256\"}",
                    "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT
                    ",\"note\":[1,2]}",
                    SIG_GOOD);
    cr_expect_eq(auth_token_verify(key, strlen(key), tok, NOW, NULL), AUTH_OK);
    free(tok);
}

Test(auth, field_of_127_characters_is_accepted)
{
    char tenant[AUTH_FIELD_MAX];
    memset(tenant, 'a', AUTH_FIELD_MAX - 1);
    tenant[AUTH_FIELD_MAX - 1] = '\0';
    char *tok = auth_token_issue(key, strlen(key), tenant, "alice", "admin", 60, NOW);
    cr_assert_not_null(tok);
    struct auth_claims claims;
    cr_expect_eq(auth_token_verify(key, strlen(key), tok, NOW, &claims), AUTH_OK);
    cr_expect_str_eq(claims.tenant, tenant);
    free(tok);
}

Test(auth, token_of_nearly_8_kib_is_accepted)
{
    char *payload = malloc(6200);
    int n = snprintf(payload, 6200,
                     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT
                     ",\"pad\":\"%05000d\"}",
                     0);
    cr_assert_lt(n, 6200);
    char *tok = token_craft(hs256, payload, SIG_GOOD);
    cr_assert_lt(strlen(tok), 8192);
    cr_expect_eq(auth_token_verify(key, strlen(key), tok, NOW, NULL), AUTH_OK);
    free(tok);
    free(payload);
}

/* --- bad tokens --------------------------------------------------------------- */

struct token_bad {
    const char *name;
    const char *header;  /* JSON, or NULL when raw is used */
    const char *payload; /* JSON */
    enum sig_mode sig;
    const char *raw; /* a literal token instead of a crafted one */
    enum auth_result expect;
};

static const struct token_bad token_bad_cases[] = {
    /* signature */
    {"signed with another key", hs256, good_payload, SIG_OTHER_KEY, NULL, AUTH_BAD_SIGNATURE},
    {"empty signature", hs256, good_payload, SIG_EMPTY, NULL, AUTH_BAD_SIGNATURE},
    {"signature one byte short", hs256, good_payload, SIG_SHORT, NULL, AUTH_BAD_SIGNATURE},
    {"signature with base64 padding", hs256, good_payload, SIG_PADDED, NULL, AUTH_MALFORMED},
    {"tampered signature over valid JSON", hs256, good_payload, SIG_TAMPERED, NULL,
     AUTH_BAD_SIGNATURE},
    /* The signature is checked before any JSON is parsed: bad JSON under a
     * bad signature is a bad signature, and the JSON is never read. */
    {"header not JSON, signed with another key", "alg=HS256", good_payload, SIG_OTHER_KEY, NULL,
     AUTH_BAD_SIGNATURE},
    {"payload not JSON, tampered signature", hs256, "tenant=t1", SIG_TAMPERED, NULL,
     AUTH_BAD_SIGNATURE},
    {"header a JSON array, no signature", "[\"HS256\"]", good_payload, SIG_EMPTY, NULL,
     AUTH_BAD_SIGNATURE},
    /* algorithm: a token that is not HMAC-SHA256-signed with our key fails
     * on its signature whatever its header says; one that is, but names
     * another algorithm, is refused on the algorithm */
    {"alg none, empty signature", "{\"alg\":\"none\",\"typ\":\"JWT\"}", good_payload, SIG_EMPTY,
     NULL, AUTH_BAD_SIGNATURE},
    {"alg none, signed with another key", "{\"alg\":\"none\"}", good_payload, SIG_OTHER_KEY, NULL,
     AUTH_BAD_SIGNATURE},
    {"alg none, HS256 signature", "{\"alg\":\"none\",\"typ\":\"JWT\"}", good_payload, SIG_GOOD,
     NULL, AUTH_BAD_ALGORITHM},
    {"alg None", "{\"alg\":\"None\"}", good_payload, SIG_EMPTY, NULL, AUTH_BAD_SIGNATURE},
    {"alg hs256 in lower case", "{\"alg\":\"hs256\"}", good_payload, SIG_GOOD, NULL,
     AUTH_BAD_ALGORITHM},
    {"alg HS512", "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", good_payload, SIG_GOOD, NULL,
     AUTH_BAD_ALGORITHM},
    {"alg HS384", "{\"alg\":\"HS384\"}", good_payload, SIG_GOOD, NULL, AUTH_BAD_ALGORITHM},
    {"alg RS256", "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", good_payload, SIG_GOOD, NULL,
     AUTH_BAD_ALGORITHM},
    /* Correctly signed with the same key under HS512 / HS384 (made once with
     * libjwt, which accepts them when asked to verify with that key): their
     * signatures are not HS256 signatures. */
    {"alg HS512, validly signed", NULL, NULL, SIG_GOOD,
     "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9."
     "eyJleHAiOjE3MDAwMDM2MDAsInJvbGUiOiJvcGVyYXRvciIsInN1YiI6ImFsaWNlIiwidGVuYW50IjoidDEifQ."
     "3QpP9SC0dLP1G5gf72dSu0CiqrHG9w0ZnTm-ydQcupTHpQa-QaLJBvgcu0uJXmOh3nZCCzlX_uCx0sui5tZppw",
     AUTH_BAD_SIGNATURE},
    {"alg HS384, validly signed", NULL, NULL, SIG_GOOD,
     "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9."
     "eyJleHAiOjE3MDAwMDM2MDAsInJvbGUiOiJvcGVyYXRvciIsInN1YiI6ImFsaWNlIiwidGVuYW50IjoidDEifQ."
     "Ag4ZBZHjRUw32IRvS-YypEEJfIgA34bZ5zwwvlsBC3nYiSTEiNDxFNdN3CBh8baL",
     AUTH_BAD_SIGNATURE},
    {"alg ES256", "{\"alg\":\"ES256\"}", good_payload, SIG_GOOD, NULL, AUTH_BAD_ALGORITHM},
    /* jansson refuses \u0000 in strings, so this never reaches the alg check. */
    {"alg with a NUL after HS256", "{\"alg\":\"HS256\\u0000x\"}", good_payload, SIG_GOOD, NULL,
     AUTH_MALFORMED},
    {"alg missing", "{\"typ\":\"JWT\"}", good_payload, SIG_GOOD, NULL, AUTH_MALFORMED},
    {"alg not a string", "{\"alg\":256}", good_payload, SIG_GOOD, NULL, AUTH_MALFORMED},
    {"alg given twice", "{\"alg\":\"none\",\"alg\":\"HS256\"}", good_payload, SIG_GOOD, NULL,
     AUTH_MALFORMED},
    {"typ not JWT", "{\"alg\":\"HS256\",\"typ\":\"JWE\"}", good_payload, SIG_GOOD, NULL,
     AUTH_MALFORMED},
    {"crit extension", "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", good_payload, SIG_GOOD, NULL,
     AUTH_MALFORMED},
    /* shape */
    {"empty string", NULL, NULL, SIG_GOOD, "", AUTH_MALFORMED},
    {"one part", NULL, NULL, SIG_GOOD, "eyJhbGciOiJIUzI1NiJ9", AUTH_MALFORMED},
    {"two parts", NULL, NULL, SIG_GOOD, "eyJhbGciOiJIUzI1NiJ9.e30", AUTH_MALFORMED},
    {"four parts", NULL, NULL, SIG_GOOD, "eyJhbGciOiJIUzI1NiJ9.e30.AAAA.AAAA", AUTH_MALFORMED},
    {"only dots", NULL, NULL, SIG_GOOD, "..", AUTH_MALFORMED},
    {"header not base64url", NULL, NULL, SIG_GOOD, "eyJhbGciOi+IUzI1NiJ9.e30.AAAA", AUTH_MALFORMED},
    {"header with padding", NULL, NULL, SIG_GOOD, "eyJhbGciOiJIUzI1NiJ9==.e30.AAAA",
     AUTH_MALFORMED},
    {"payload with a space", NULL, NULL, SIG_GOOD, "eyJhbGciOiJIUzI1NiJ9.e3 0.AAAA",
     AUTH_MALFORMED},
    {"header not JSON", "alg=HS256", good_payload, SIG_GOOD, NULL, AUTH_MALFORMED},
    {"header a JSON array", "[\"HS256\"]", good_payload, SIG_GOOD, NULL, AUTH_MALFORMED},
    {"payload not JSON", hs256, "tenant=t1", SIG_GOOD, NULL, AUTH_MALFORMED},
    {"payload a JSON string", hs256, "\"t1\"", SIG_GOOD, NULL, AUTH_MALFORMED},
    {"payload truncated JSON", hs256, "{\"tenant\":\"t1\"", SIG_GOOD, NULL, AUTH_MALFORMED},
    {"payload empty", hs256, "", SIG_GOOD, NULL, AUTH_MALFORMED},
    {"payload with a duplicate tenant", hs256,
     "{\"tenant\":\"t1\",\"tenant\":\"t2\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT
     "}",
     SIG_GOOD, NULL, AUTH_MALFORMED},
    /* claims */
    {"tenant missing", hs256, "{\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT "}",
     SIG_GOOD, NULL, AUTH_MALFORMED},
    {"sub missing", hs256, "{\"tenant\":\"t1\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT "}",
     SIG_GOOD, NULL, AUTH_MALFORMED},
    {"role missing", hs256, "{\"tenant\":\"t1\",\"sub\":\"s\",\"exp\":" EXP_OK AUD_IAT "}",
     SIG_GOOD, NULL, AUTH_MALFORMED},
    {"exp missing", hs256, "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\"" AUD_IAT "}",
     SIG_GOOD, NULL, AUTH_MALFORMED},
    {"exp a string", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":\"" EXP_OK "\"" AUD_IAT "}",
     SIG_GOOD, NULL, AUTH_MALFORMED},
    {"exp a fraction", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK ".5" AUD_IAT "}",
     SIG_GOOD, NULL, AUTH_MALFORMED},
    {"tenant a number", hs256,
     "{\"tenant\":1,\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT "}", SIG_GOOD, NULL,
     AUTH_MALFORMED},
    {"tenant empty", hs256,
     "{\"tenant\":\"\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT "}", SIG_GOOD,
     NULL, AUTH_MALFORMED},
    {"tenant with a NUL", hs256,
     "{\"tenant\":\"t1\\u0000t2\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT "}",
     SIG_GOOD, NULL, AUTH_MALFORMED},
    {"sub with a newline", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"a\\nb\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT "}",
     SIG_GOOD, NULL, AUTH_MALFORMED},
    {"unknown role", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"root\",\"exp\":" EXP_OK AUD_IAT "}", SIG_GOOD,
     NULL, AUTH_MALFORMED},
    {"role in upper case", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"ADMIN\",\"exp\":" EXP_OK AUD_IAT "}", SIG_GOOD,
     NULL, AUTH_MALFORMED},
    /* audience */
    {"aud missing", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK ",\"iat\":" IAT_OK "}",
     SIG_GOOD, NULL, AUTH_BAD_AUDIENCE},
    {"aud another service", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK ",\"iat\":" IAT_OK
     ",\"aud\":\"billing\"}",
     SIG_GOOD, NULL, AUTH_BAD_AUDIENCE},
    {"aud in upper case", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK ",\"iat\":" IAT_OK
     ",\"aud\":\"KIZUNA\"}",
     SIG_GOOD, NULL, AUTH_BAD_AUDIENCE},
    {"aud with a suffix", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK ",\"iat\":" IAT_OK
     ",\"aud\":\"kizuna-staging\"}",
     SIG_GOOD, NULL, AUTH_BAD_AUDIENCE},
    {"aud a number", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK ",\"iat\":" IAT_OK
     ",\"aud\":1}",
     SIG_GOOD, NULL, AUTH_BAD_AUDIENCE},
    {"aud an array without ours", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK ",\"iat\":" IAT_OK
     ",\"aud\":[\"billing\",\"crm\"]}",
     SIG_GOOD, NULL, AUTH_BAD_AUDIENCE},
    {"aud an empty array", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK ",\"iat\":" IAT_OK
     ",\"aud\":[]}",
     SIG_GOOD, NULL, AUTH_BAD_AUDIENCE},
    /* issued-at and not-before */
    {"iat missing", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK ",\"aud\":\"kizuna\"}",
     SIG_GOOD, NULL, AUTH_MALFORMED},
    {"iat a string", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK
     ",\"aud\":\"kizuna\",\"iat\":\"" IAT_OK "\"}",
     SIG_GOOD, NULL, AUTH_MALFORMED},
    {"iat negative", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK
     ",\"aud\":\"kizuna\",\"iat\":-1}",
     SIG_GOOD, NULL, AUTH_MALFORMED},
    {"nbf a string", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT
     ",\"nbf\":\"" IAT_OK "\"}",
     SIG_GOOD, NULL, AUTH_MALFORMED},
    {"iat in the future, past the skew", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK
     ",\"aud\":\"kizuna\",\"iat\":1700000061}",
     SIG_GOOD, NULL, AUTH_NOT_YET_VALID},
    {"nbf in the future, past the skew", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT
     ",\"nbf\":1700000061}",
     SIG_GOOD, NULL, AUTH_NOT_YET_VALID},
    {"nbf an hour ahead", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT
     ",\"nbf\":1700003599}",
     SIG_GOOD, NULL, AUTH_NOT_YET_VALID},
    /* lifetime (exp - iat) over AUTH_LIFETIME_MAX, 24 h */
    {"lifetime one second over the cap", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":1700086391"
     ",\"aud\":\"kizuna\",\"iat\":" IAT_OK "}",
     SIG_GOOD, NULL, AUTH_TOO_LONG},
    {"lifetime of a year", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":1731536000"
     ",\"aud\":\"kizuna\",\"iat\":" IAT_OK "}",
     SIG_GOOD, NULL, AUTH_TOO_LONG},
    {"short exp but an iat long ago", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK
     ",\"aud\":\"kizuna\",\"iat\":1600000000}",
     SIG_GOOD, NULL, AUTH_TOO_LONG},
    /* time */
    {"expired", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_PAST AUD_IAT "}", SIG_GOOD,
     NULL, AUTH_EXPIRED},
    {"exp equal to now", hs256,
     "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":1700000000" AUD_IAT "}", SIG_GOOD,
     NULL, AUTH_EXPIRED},
    {"exp zero", hs256, "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":0" AUD_IAT "}",
     SIG_GOOD, NULL, AUTH_EXPIRED},
};

Test(auth, verify_rejects_bad_tokens)
{
    for (size_t i = 0; i < sizeof token_bad_cases / sizeof token_bad_cases[0]; i++) {
        const struct token_bad *c = &token_bad_cases[i];
        char *tok = c->raw ? strdup(c->raw) : token_craft(c->header, c->payload, c->sig);
        struct auth_claims claims;
        memset(&claims, 'x', sizeof claims);
        enum auth_result r = auth_token_verify(key, strlen(key), tok, NOW, &claims);
        cr_expect_eq(r, c->expect, "%s: got %s (%d), want %s", c->name, auth_result_str(r), r,
                     auth_result_str(c->expect));
        cr_expect_eq(claims.tenant[0], '\0', "%s: claims cleared on failure", c->name);
        free(tok);
    }
}

Test(auth, verify_rejects_fields_over_the_cap)
{
    char field[AUTH_FIELD_MAX + 1];
    memset(field, 'a', AUTH_FIELD_MAX);
    field[AUTH_FIELD_MAX] = '\0';
    for (size_t i = 0; i < 2; i++) {
        char payload[512];
        snprintf(payload, sizeof payload,
                 "{\"tenant\":\"%s\",\"sub\":\"%s\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT "}",
                 i == 0 ? field : "t1", i == 1 ? field : "s");
        char *tok = token_craft(hs256, payload, SIG_GOOD);
        cr_expect_eq(auth_token_verify(key, strlen(key), tok, NOW, NULL), AUTH_MALFORMED,
                     "field %zu of %d characters", i, AUTH_FIELD_MAX);
        free(tok);
    }
}

Test(auth, verify_rejects_tokens_over_8_kib)
{
    char *payload = malloc(7000);
    snprintf(payload, 7000,
             "{\"tenant\":\"t1\",\"sub\":\"s\",\"role\":\"admin\",\"exp\":" EXP_OK AUD_IAT
             ",\"pad\":\"%06200d\"}",
             0);
    char *tok = token_craft(hs256, payload, SIG_GOOD);
    cr_assert_gt(strlen(tok), 8192);
    cr_expect_eq(auth_token_verify(key, strlen(key), tok, NOW, NULL), AUTH_MALFORMED);
    free(tok);
    free(payload);
}

Test(auth, verify_without_a_key_never_accepts)
{
    char *tok = token_craft(hs256, good_payload, SIG_GOOD);
    cr_expect_eq(auth_token_verify(NULL, 0, tok, NOW, NULL), AUTH_BAD_KEY);
    cr_expect_eq(auth_token_verify(key, 0, tok, NOW, NULL), AUTH_BAD_KEY);
    cr_expect_eq(auth_token_verify(key, strlen(key), NULL, NOW, NULL), AUTH_MALFORMED);
    free(tok);
}

/* A key shorter than AUTH_KEY_MIN verifies nothing, not even a token it
 * signed itself; one of exactly AUTH_KEY_MIN bytes works. */
Test(auth, verify_refuses_a_key_under_32_bytes)
{
    cr_assert_geq(strlen(key), AUTH_KEY_MIN);
    char *tok = auth_token_issue(key, AUTH_KEY_MIN, "t1", "alice", "admin", 60, NOW);
    cr_assert_not_null(tok);
    struct auth_claims claims;
    cr_expect_eq(auth_token_verify(key, AUTH_KEY_MIN, tok, NOW, &claims), AUTH_OK);
    free(tok);

    /* Signed by hand with the 31-byte key, as another issuer could. */
    const char *short_payload = good_payload;
    size_t cap = 512;
    char *hand = malloc(cap);
    long h = crypto_base64url_encode(hs256, strlen(hs256), hand, cap);
    hand[h] = '.';
    long p = crypto_base64url_encode(short_payload, strlen(short_payload), hand + h + 1,
                                     cap - (size_t)h - 1);
    size_t o = (size_t)(h + 1 + p);
    uint8_t mac[CRYPTO_SHA256_LEN];
    crypto_hmac_sha256(key, AUTH_KEY_MIN - 1, hand, o, mac);
    hand[o++] = '.';
    cr_assert_geq(crypto_base64url_encode(mac, sizeof mac, hand + o, cap - o), 0);
    memset(&claims, 'x', sizeof claims);
    cr_expect_eq(auth_token_verify(key, AUTH_KEY_MIN - 1, hand, NOW, &claims), AUTH_BAD_KEY);
    cr_expect_eq(claims.tenant[0], '\0');
    cr_expect_eq(auth_token_verify("", 0, hand, NOW, NULL), AUTH_BAD_KEY);
    free(hand);
}

/* --- Authorization header ------------------------------------------------------ */

/* A header is prefix + token + suffix, where the token is left out when
 * with_token is 0. */
struct header_form {
    const char *prefix;
    int with_token;
    const char *suffix;
};

static void header_build(char *out, size_t cap, const struct header_form *f, const char *tok)
{
    snprintf(out, cap, "%s%s%s", f->prefix, f->with_token ? tok : "", f->suffix);
}

/* The scheme is case-insensitive (RFC 7235) and may be followed by several
 * spaces; nothing else is accepted around the token. */
Test(auth, header_verify_accepts_bearer_in_any_case)
{
    char *tok = auth_token_issue(key, strlen(key), "t1", "alice", "admin", 60, NOW);
    const struct header_form forms[] = {
        {"Bearer ", 1, ""},
        {"bearer ", 1, ""},
        {"BEARER ", 1, ""},
        {"Bearer   ", 1, ""},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char header[1024];
        header_build(header, sizeof header, &forms[i], tok);
        struct auth_claims claims;
        cr_expect_eq(auth_header_verify(key, strlen(key), header, NOW, &claims), AUTH_OK,
                     "\"%s<token>\"", forms[i].prefix);
        cr_expect_str_eq(claims.tenant, "t1");
    }
    free(tok);
}

Test(auth, header_verify_rejects_bad_headers)
{
    char *tok = auth_token_issue(key, strlen(key), "t1", "alice", "admin", 60, NOW);
    const struct header_form forms[] = {
        {"", 0, ""},            /* empty header */
        {"", 1, ""},            /* no scheme */
        {"Bearer", 0, ""},      /* no token */
        {"Bearer ", 0, ""},     /* empty token */
        {"Bearer    ", 0, ""},  /* only spaces */
        {"Bearer", 1, ""},      /* no space */
        {"Bearer\t", 1, ""},    /* tab instead of space */
        {"Bearer ", 1, " "},    /* trailing space */
        {"Bearer ", 1, "\r\n"}, /* trailing CRLF */
        {"Basic ", 1, ""},
        {"Token ", 1, ""},
        {" Bearer ", 1, ""},  /* leading space */
        {"Bearer ", 1, ",x"}, /* a list */
        {"Bearer Bearer ", 1, ""},
    };
    cr_expect_eq(auth_header_verify(key, strlen(key), NULL, NOW, NULL), AUTH_MALFORMED, "NULL");
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char header[1024];
        header_build(header, sizeof header, &forms[i], tok);
        cr_expect_eq(auth_header_verify(key, strlen(key), header, NOW, NULL), AUTH_MALFORMED,
                     "form %zu: \"%s%s%s\"", i, forms[i].prefix,
                     forms[i].with_token ? "<token>" : "", forms[i].suffix);
    }
    free(tok);
}

/* --- tenant and role ---------------------------------------------------------- */

Test(auth, claims_allow_checks_tenant_then_role)
{
    const struct {
        const char *claim_tenant, *claim_role, *tenant, *min_role;
        enum auth_result expect;
    } cases[] = {
        {"t1", "admin", "t1", "admin", AUTH_OK},
        {"t1", "admin", "t1", "viewer", AUTH_OK},
        {"t1", "operator", "t1", "operator", AUTH_OK},
        {"t1", "operator", "t1", "viewer", AUTH_OK},
        {"t1", "viewer", "t1", "viewer", AUTH_OK},
        {"t1", "viewer", "t1", "operator", AUTH_FORBIDDEN},
        {"t1", "operator", "t1", "admin", AUTH_FORBIDDEN},
        {"t1", "viewer", "t1", "admin", AUTH_FORBIDDEN},
        {"t1", "admin", "t1", "superuser", AUTH_FORBIDDEN},
        /* The deployment's operator: above a tenant's admin, still scoped. */
        {"t1", "deployment", "t1", "deployment", AUTH_OK},
        {"t1", "deployment", "t1", "admin", AUTH_OK},
        {"t1", "deployment", "t1", "viewer", AUTH_OK},
        {"t1", "admin", "t1", "deployment", AUTH_FORBIDDEN},
        {"t1", "operator", "t1", "deployment", AUTH_FORBIDDEN},
        {"t1", "deployment", "t2", "viewer", AUTH_WRONG_TENANT},
        {"t1", "admin", "t2", "viewer", AUTH_WRONG_TENANT},
        {"t1", "viewer", "t2", "admin", AUTH_WRONG_TENANT},
        {"t1", "admin", "T1", "viewer", AUTH_WRONG_TENANT},
        {"t1", "admin", "t1x", "viewer", AUTH_WRONG_TENANT},
        {"t1", "admin", NULL, "viewer", AUTH_WRONG_TENANT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct auth_claims claims = {0};
        snprintf(claims.tenant, sizeof claims.tenant, "%s", cases[i].claim_tenant);
        snprintf(claims.subject, sizeof claims.subject, "alice");
        snprintf(claims.role, sizeof claims.role, "%s", cases[i].claim_role);
        enum auth_result r = auth_claims_allow(&claims, cases[i].tenant, cases[i].min_role);
        cr_expect_eq(r, cases[i].expect, "case %zu (%s as %s on %s needing %s): got %s", i,
                     cases[i].claim_tenant, cases[i].claim_role,
                     cases[i].tenant ? cases[i].tenant : "NULL", cases[i].min_role,
                     auth_result_str(r));
    }
}

Test(auth, token_for_another_tenant_answers_wrong_tenant)
{
    char *tok = auth_token_issue(key, strlen(key), "t1", "alice", "admin", 60, NOW);
    struct auth_claims claims;
    cr_assert_eq(auth_token_verify(key, strlen(key), tok, NOW, &claims), AUTH_OK);
    cr_expect_eq(auth_claims_allow(&claims, "t2", "viewer"), AUTH_WRONG_TENANT);
    free(tok);
}

/* --- issue and TTLs ------------------------------------------------------------ */

Test(auth, issue_rejects_bad_input)
{
    char long_field[AUTH_FIELD_MAX + 1];
    memset(long_field, 'a', AUTH_FIELD_MAX);
    long_field[AUTH_FIELD_MAX] = '\0';
    const struct {
        const char *name;
        size_t keylen;
        const char *tenant, *subject, *role;
        long ttl;
    } cases[] = {
        {"empty key", 0, "t1", "s", "admin", 60},
        {"key of 31 bytes", AUTH_KEY_MIN - 1, "t1", "s", "admin", 60},
        {"ttl over 24 h", 1, "t1", "s", "admin", AUTH_LIFETIME_MAX + 1},
        {"ttl of a week", 1, "t1", "s", "admin", 7 * 86400},
        {"NULL tenant", 1, NULL, "s", "admin", 60},
        {"empty tenant", 1, "", "s", "admin", 60},
        {"tenant over the cap", 1, long_field, "s", "admin", 60},
        {"subject over the cap", 1, "t1", long_field, "admin", 60},
        {"tenant with a newline", 1, "t\n1", "s", "admin", 60},
        {"NULL subject", 1, "t1", NULL, "admin", 60},
        {"unknown role", 1, "t1", "s", "root", 60},
        {"NULL role", 1, "t1", "s", NULL, 60},
        {"zero ttl", 1, "t1", "s", "admin", 0},
        {"negative ttl", 1, "t1", "s", "admin", -5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t keylen = cases[i].keylen == 1 ? strlen(key) : cases[i].keylen;
        char *tok = auth_token_issue(key, keylen, cases[i].tenant, cases[i].subject, cases[i].role,
                                     cases[i].ttl, NOW);
        cr_expect_null(tok, "%s", cases[i].name);
        free(tok);
    }
}

Test(auth, ttl_parse_reads_units)
{
    const struct {
        const char *text;
        long seconds;
    } cases[] = {
        {"90s", 90}, {"15m", 900}, {"1h", 3600}, {"7d", 604800}, {"45", 45}, {"1s", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(auth_ttl_parse(cases[i].text), cases[i].seconds, "%s", cases[i].text);
}

Test(auth, ttl_parse_rejects_bad_input)
{
    const char *bad[] = {
        NULL,
        "",
        "h",
        "0",
        "0s",
        "-1h",
        "+1h",
        " 1h",
        "1h ",
        "1x",
        "1hh",
        "1.5h",
        "1h30m",
        "99999999999999999999",
        "9223372036854775807d",
        "0x10",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(auth_ttl_parse(bad[i]), -1, "%s", bad[i] ? bad[i] : "NULL");
}

Test(auth, result_strings_are_distinct)
{
    enum auth_result all[] = {
        AUTH_OK,           AUTH_MALFORMED,    AUTH_BAD_SIGNATURE, AUTH_BAD_ALGORITHM,
        AUTH_EXPIRED,      AUTH_WRONG_TENANT, AUTH_FORBIDDEN,     AUTH_NOT_YET_VALID,
        AUTH_BAD_AUDIENCE, AUTH_TOO_LONG,     AUTH_BAD_KEY};
    size_t n = sizeof all / sizeof all[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            cr_expect_str_neq(auth_result_str(all[i]), auth_result_str(all[j]));
}
