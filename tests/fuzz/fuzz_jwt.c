/* libFuzzer target for JWT verification (common/auth.c), which reads the
 * Authorization header of every admin API call before anything else.
 *
 * Input: one mode byte, then text.
 *   bit 0: the text is "header.payload"; the target appends a valid HS256
 *          signature under its key, so that mutations reach the claim
 *          checks behind the signature, not only the refusals before it;
 *   bit 1: the token goes through auth_header_verify as "Bearer <token>"
 *          instead of auth_token_verify.
 * Contract on AUTH_OK: tenant, sub and role are non-empty, NUL-terminated,
 * free of control characters, the role is a known one and exp lies after
 * now; auth_claims_allow accepts the token's own tenant at viewer. Any
 * other result is one of the enum's values. */
#include <stdbool.h>

#include "auth.h"
#include "crypto.h"
#include "fuzz.h"

#define FUZZ_NOW 1767225600 /* 2026-01-01T00:00:00Z */

static const char fuzz_key[] = "kizuna-fuzz-jwt-key-0123456789abcdef"; /* 36 bytes */

static bool field_ok(const char *s)
{
    if (!fuzz_terminated(s, AUTH_FIELD_MAX) || s[0] == '\0')
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* "<text>.<base64url(HMAC-SHA256(key, text))>", malloc'd. */
static char *sign(const char *text)
{
    uint8_t mac[CRYPTO_SHA256_LEN];
    size_t n = strlen(text);
    crypto_hmac_sha256(fuzz_key, sizeof fuzz_key - 1, text, n, mac);
    char *out = malloc(n + 2 + 44);
    if (!out)
        abort();
    memcpy(out, text, n);
    out[n] = '.';
    FUZZ_CHECK(crypto_base64url_encode(mac, sizeof mac, out + n + 1, 44) == 43);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    char *text = fuzz_strndup(data + 1, size - 1);
    char *token = (mode & 1) ? sign(text) : text;
    struct auth_claims c;
    memset(&c, 0x5a, sizeof c);
    enum auth_result r;
    if (mode & 2) {
        size_t n = strlen(token);
        char *header = malloc(n + 8);
        if (!header)
            abort();
        memcpy(header, "Bearer ", 7);
        memcpy(header + 7, token, n + 1);
        r = auth_header_verify(fuzz_key, sizeof fuzz_key - 1, header, FUZZ_NOW, &c);
        free(header);
    } else {
        r = auth_token_verify(fuzz_key, sizeof fuzz_key - 1, token, FUZZ_NOW, &c);
    }
    FUZZ_CHECK(r <= AUTH_OK && r >= AUTH_BAD_KEY);
    if (r == AUTH_OK) {
        FUZZ_CHECK(field_ok(c.tenant));
        FUZZ_CHECK(field_ok(c.subject));
        FUZZ_CHECK(field_ok(c.role));
        FUZZ_CHECK(c.exp > FUZZ_NOW);
        FUZZ_CHECK(auth_claims_allow(&c, c.tenant, "viewer") == AUTH_OK);
    }
    FUZZ_CHECK(auth_result_str(r) != NULL);
    if (token != text)
        free(token);
    free(text);
    return 0;
}
