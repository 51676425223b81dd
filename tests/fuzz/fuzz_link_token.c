/* libFuzzer target for tracked-link tokens (common/link_token.c): the
 * {token} of GET /r/{token}, which anyone on the internet can send.
 *
 * Input: one mode byte, then bytes.
 *   bit 0 clear: the bytes are the token text, verified as they are;
 *   bit 0 set:   the bytes are a payload; the target signs it under its key
 *                (base64url(payload) "." base64url(HMAC)) so that mutations
 *                reach the payload parser behind the MAC.
 * Contract: out is written only on LINK_TOKEN_OK; then every field is
 * NUL-terminated within its capacity, the required ones are non-empty, the
 * target passes link_token_url_ok, the expiry is after now, and signing the
 * fields again gives back the very same token (one spelling per token). */
#include "fuzz.h"
#include "link_token.h"

#define FUZZ_NOW 1767225600LL

static const uint8_t fuzz_key[CRYPTO_KEY_LEN] = "kizuna-fuzz-link-key-0123456789";

/* A signed token for payload, malloc'd, length in *len. */
static char *sign_payload(const uint8_t *p, size_t n, size_t *len)
{
    uint8_t mac[CRYPTO_SHA256_LEN];
    crypto_hmac_sha256(fuzz_key, sizeof fuzz_key, p, n, mac);
    size_t cap = n / 3 * 4 + 4 + 1 + 44;
    char *out = malloc(cap);
    if (!out)
        abort();
    long a = crypto_base64url_encode(p, n, out, cap);
    FUZZ_CHECK(a >= 0);
    out[a] = '.';
    long b = crypto_base64url_encode(mac, sizeof mac, out + a + 1, cap - (size_t)a - 1);
    FUZZ_CHECK(b == 43);
    *len = (size_t)a + 1 + (size_t)b;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t len;
    char *token;
    if (data[0] & 1) {
        token = sign_payload(data + 1, size - 1, &len);
    } else {
        len = size - 1;
        token = (char *)fuzz_memdup(data + 1, len);
    }
    struct link_token out, untouched;
    memset(&out, 0x5a, sizeof out);
    memset(&untouched, 0x5a, sizeof untouched);
    enum link_token_result r = link_token_verify(fuzz_key, token, len, FUZZ_NOW, &out);
    FUZZ_CHECK(r <= LINK_TOKEN_OK && r >= LINK_TOKEN_BAD_TARGET);
    FUZZ_CHECK(link_token_result_str(r) != NULL);
    if (r != LINK_TOKEN_OK) {
        FUZZ_CHECK(memcmp(&out, &untouched, sizeof out) == 0);
    } else {
        FUZZ_CHECK(fuzz_terminated(out.tenant_id, sizeof out.tenant_id) && out.tenant_id[0]);
        FUZZ_CHECK(fuzz_terminated(out.channel_id, sizeof out.channel_id) && out.channel_id[0]);
        FUZZ_CHECK(fuzz_terminated(out.link_id, sizeof out.link_id) && out.link_id[0]);
        FUZZ_CHECK(fuzz_terminated(out.friend_user_id, sizeof out.friend_user_id));
        FUZZ_CHECK(fuzz_terminated(out.target_url, sizeof out.target_url));
        FUZZ_CHECK(link_token_url_ok(out.target_url));
        FUZZ_CHECK(out.expires_at > FUZZ_NOW);
        char again[LINK_TOKEN_TEXT_MAX];
        long n = link_token_sign(fuzz_key, &out, again, sizeof again);
        FUZZ_CHECK(n == (long)len && memcmp(again, token, len) == 0);
    }
    free(token);
    return 0;
}
