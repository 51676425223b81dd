/* Unit tests for common/crypto: HMAC-SHA256 against RFC 4231 and LINE's
 * documented webhook signature, strict base64 in both alphabets, hex keys,
 * and AES-256-GCM boxes that refuse every kind of tampering. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "crypto.h"

static void hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* --- HMAC ----------------------------------------------------------------- */

struct hmac_case {
    const char *name;
    uint8_t key_byte; /* key is key_len copies of key_byte, unless key is set */
    size_t key_len;
    const char *key;
    uint8_t data_byte; /* data is data_len copies of data_byte, unless data is set */
    size_t data_len;
    const char *data;
    const char *mac_hex;
};

/* RFC 4231 section 4, HMAC-SHA-256 results. Case 5 (truncated output) is
 * checked on its first 16 bytes, as the RFC does. Case 4's key is 0x01..0x19. */
static const struct hmac_case rfc4231[] = {
    {"case 1", 0x0b, 20, NULL, 0, 0, "Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {"case 2", 0, 0, "Jefe", 0, 0, "what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {"case 3", 0xaa, 20, NULL, 0xdd, 50, NULL,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
    {"case 4", 0, 25, NULL, 0xcd, 50, NULL,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    {"case 5", 0x0c, 20, NULL, 0, 0, "Test With Truncation", "a3b6167473100ee06e0c796c2955552b"},
    {"case 6", 0xaa, 131, NULL, 0, 0, "Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {"case 7", 0xaa, 131, NULL, 0, 0,
     "This is a test using a larger than block-size key and a larger than block-size data. "
     "The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
};

Test(crypto, hmac_sha256_matches_rfc4231_vectors)
{
    for (size_t i = 0; i < sizeof rfc4231 / sizeof rfc4231[0]; i++) {
        const struct hmac_case *c = &rfc4231[i];
        uint8_t key[256], data[256], mac[CRYPTO_SHA256_LEN];
        char hex[2 * CRYPTO_SHA256_LEN + 1];
        size_t keylen = c->key ? strlen(c->key) : c->key_len;
        size_t datalen = c->data ? strlen(c->data) : c->data_len;

        if (c->key)
            memcpy(key, c->key, keylen);
        else
            for (size_t k = 0; k < keylen; k++)
                key[k] = c->key_byte ? c->key_byte : (uint8_t)(k + 1);
        if (c->data)
            memcpy(data, c->data, datalen);
        else
            memset(data, c->data_byte, datalen);

        crypto_hmac_sha256(key, keylen, data, datalen, mac);
        hex_encode(mac, sizeof mac, hex);
        size_t cmp = strlen(c->mac_hex);
        cr_expect(strncmp(hex, c->mac_hex, cmp) == 0, "%s: got %s", c->name, hex);
    }
}

/* LINE's Messaging API docs: the signature header is the base64 of
 * HMAC-SHA256 over the raw body, keyed with the channel secret as text. */
Test(crypto, hmac_sha256_reproduces_line_webhook_signature)
{
    const char *secret = "8c570fa6dd201bb328f1c1eac23a96d8";
    const char *body = "{\"destination\":\"U8e742f61d673b39c7fff3cecb7536ef0\",\"events\":[]}";
    const char *header = "GhRKmvmHys4Pi8DxkF4+EayaH0OqtJtaZxgTD9fMDLs=";
    uint8_t mac[CRYPTO_SHA256_LEN], sig[CRYPTO_SHA256_LEN];
    char b64[64];

    crypto_hmac_sha256(secret, strlen(secret), body, strlen(body), mac);
    cr_assert_eq(crypto_base64_encode(mac, sizeof mac, b64, sizeof b64), 44);
    cr_expect_str_eq(b64, header);

    /* The way a webhook should check it: decode, then compare in constant time. */
    cr_assert_eq(crypto_base64_decode(header, strlen(header), sig, sizeof sig), 32);
    cr_expect(crypto_equal(mac, sig, sizeof mac));
    sig[31] ^= 1;
    cr_expect_not(crypto_equal(mac, sig, sizeof mac));
}

Test(crypto, hmac_sha256_accepts_empty_key_and_message)
{
    /* Known value of HMAC-SHA256("", ""). */
    uint8_t mac[CRYPTO_SHA256_LEN];
    char hex[2 * CRYPTO_SHA256_LEN + 1];
    crypto_hmac_sha256(NULL, 0, NULL, 0, mac);
    hex_encode(mac, sizeof mac, hex);
    cr_expect_str_eq(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

Test(crypto, equal_compares_whole_buffers)
{
    uint8_t a[32] = {0}, b[32] = {0};
    cr_expect(crypto_equal(a, b, sizeof a));
    b[31] = 1;
    cr_expect_not(crypto_equal(a, b, sizeof a));
    b[31] = 0;
    b[0] = 0x80;
    cr_expect_not(crypto_equal(a, b, sizeof a));
    cr_expect(crypto_equal(a, b, 0), "empty buffers are equal");
}

/* --- base64 ----------------------------------------------------------------- */

/* RFC 4648 section 10. */
static const struct {
    const char *plain;
    const char *std;
    const char *url;
} b64_vectors[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
    {"\xfb\xff\xbf", "+/+/", "-_-_"},
    {"\xfb\xff", "+/8=", "-_8"},
};

Test(crypto, base64_round_trips_rfc4648_vectors)
{
    for (size_t i = 0; i < sizeof b64_vectors / sizeof b64_vectors[0]; i++) {
        const char *plain = b64_vectors[i].plain;
        size_t len = strlen(plain);
        char enc[32];
        uint8_t dec[32];

        cr_expect_eq(crypto_base64_encode(plain, len, enc, sizeof enc),
                     (long)strlen(b64_vectors[i].std));
        cr_expect_str_eq(enc, b64_vectors[i].std);
        cr_expect_eq(crypto_base64url_encode(plain, len, enc, sizeof enc),
                     (long)strlen(b64_vectors[i].url));
        cr_expect_str_eq(enc, b64_vectors[i].url);

        const char *s = b64_vectors[i].std, *u = b64_vectors[i].url;
        cr_expect_eq(crypto_base64_decode(s, strlen(s), dec, sizeof dec), (long)len, "std %s", s);
        cr_expect(memcmp(dec, plain, len) == 0, "std %s", s);
        cr_expect_eq(crypto_base64url_decode(u, strlen(u), dec, sizeof dec), (long)len, "url %s",
                     u);
        cr_expect(memcmp(dec, plain, len) == 0, "url %s", u);
    }
}

Test(crypto, base64_encode_needs_room_for_the_nul)
{
    char out[8];
    cr_expect_eq(crypto_base64_encode("foob", 4, out, 8), -1, "8 chars + NUL need 9");
    char big[9];
    cr_expect_eq(crypto_base64_encode("foob", 4, big, sizeof big), 8);
    cr_expect_eq(crypto_base64url_encode("foob", 4, out, 6), -1, "6 chars + NUL need 7");
    cr_expect_eq(crypto_base64url_encode("foob", 4, out, 7), 6);
}

Test(crypto, base64_decode_refuses_a_too_small_buffer)
{
    uint8_t out[6];
    cr_expect_eq(crypto_base64_decode("Zm9vYmFy", 8, out, 5), -1);
    cr_expect_eq(crypto_base64_decode("Zm9vYmFy", 8, out, 6), 6);
    cr_expect_eq(crypto_base64url_decode("Zm9vYmE", 7, out, 4), -1);
    cr_expect_eq(crypto_base64url_decode("Zm9vYmE", 7, out, 5), 5);
}

struct b64_bad {
    const char *name;
    const char *in;
    size_t len; /* 0: strlen(in) */
};

static const struct b64_bad b64_std_bad[] = {
    {"length not a multiple of 4", "Zm9", 0},
    {"missing padding", "Zg", 0},
    {"three padding characters", "Z===", 0},
    {"only padding", "====", 0},
    {"padding in the middle", "Zg==Zg==", 0},
    {"padding then data", "Zm=v", 0},
    {"too much padding", "Zm9v====", 0},
    {"non-canonical trailing bits (1 byte)", "Zh==", 0},
    {"non-canonical trailing bits (2 bytes)", "Zm9=", 0},
    {"url alphabet", "-_-_", 0},
    {"trailing newline", "Zm9v\n", 0},
    {"trailing CRLF", "Zm9vYg==\r\n", 0},
    {"leading space", " Zm9v", 0},
    {"inner space", "Zm 9vYg=", 0},
    {"embedded NUL", "Zm9v\0Zm9", 8},
    {"non-ASCII byte", "Zm9\xc3", 0},
};

Test(crypto, base64_decode_rejects_bad_input)
{
    for (size_t i = 0; i < sizeof b64_std_bad / sizeof b64_std_bad[0]; i++) {
        const struct b64_bad *c = &b64_std_bad[i];
        uint8_t out[64];
        size_t len = c->len ? c->len : strlen(c->in);
        cr_expect_eq(crypto_base64_decode(c->in, len, out, sizeof out), -1, "%s", c->name);
    }
}

static const struct b64_bad b64_url_bad[] = {
    {"padding", "Zg==", 0},
    {"single padding", "Zm8=", 0},
    {"length 1 mod 4", "Zm9vY", 0},
    {"single character", "Z", 0},
    {"standard alphabet plus", "+/+/", 0},
    {"standard alphabet slash", "ab/c", 0},
    {"non-canonical trailing bits", "Zh", 0},
    {"inner space", "Zm9 v", 0},
    {"trailing newline", "Zm9v\n", 0},
    {"dot", "Zm9v.", 0},
    {"embedded NUL", "Zm\0v", 4},
};

Test(crypto, base64url_decode_rejects_bad_input)
{
    for (size_t i = 0; i < sizeof b64_url_bad / sizeof b64_url_bad[0]; i++) {
        const struct b64_bad *c = &b64_url_bad[i];
        uint8_t out[64];
        size_t len = c->len ? c->len : strlen(c->in);
        cr_expect_eq(crypto_base64url_decode(c->in, len, out, sizeof out), -1, "%s", c->name);
    }
}

/* --- keys and randomness ---------------------------------------------------- */

Test(crypto, key_from_hex_parses_both_cases)
{
    uint8_t key[CRYPTO_KEY_LEN], expect[CRYPTO_KEY_LEN];
    for (size_t i = 0; i < CRYPTO_KEY_LEN; i++)
        expect[i] = (uint8_t)(i * 8 + 7);
    char hex[2 * CRYPTO_KEY_LEN + 1];
    hex_encode(expect, sizeof expect, hex);
    cr_assert_eq(crypto_key_from_hex(hex, key), 0);
    cr_expect(memcmp(key, expect, sizeof key) == 0);
    for (char *p = hex; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    memset(key, 0, sizeof key);
    cr_assert_eq(crypto_key_from_hex(hex, key), 0);
    cr_expect(memcmp(key, expect, sizeof key) == 0);
}

Test(crypto, key_from_hex_rejects_bad_input_and_leaves_key_alone)
{
    static const char h64[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const struct {
        const char *name;
        const char *hex;
    } bad[] = {
        {"NULL", NULL},
        {"empty", ""},
        {"63 characters", "0011223344556677889900112233445566778899aabbccddeeff0011223344f"},
        {"65 characters", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0"},
        {"non-hex character", "0g112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"},
        {"space", " 0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"},
        {"0x prefix", "0x112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"},
    };
    cr_assert_eq(strlen(h64), 64);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t key[CRYPTO_KEY_LEN];
        memset(key, 0x5a, sizeof key);
        cr_expect_eq(crypto_key_from_hex(bad[i].hex, key), -1, "%s", bad[i].name);
        for (size_t k = 0; k < sizeof key; k++)
            cr_expect_eq(key[k], 0x5a, "%s: key byte %zu changed", bad[i].name, k);
    }
}

Test(crypto, random_fills_distinct_buffers)
{
    uint8_t a[32], b[32];
    cr_assert_eq(crypto_random(a, sizeof a), 0);
    cr_assert_eq(crypto_random(b, sizeof b), 0);
    cr_expect_not(memcmp(a, b, sizeof a) == 0);
    cr_expect_eq(crypto_random(a, 0), 0);
}

/* --- sealed boxes ----------------------------------------------------------- */

static const uint8_t seal_key[CRYPTO_KEY_LEN] = {
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};
static const char seal_plain[] = "channel-secret-0123456789abcdef";
static const char seal_aad[] = "tenant-1/channel-42";

Test(crypto, seal_then_open_returns_the_plaintext)
{
    uint8_t box[128], out[128];
    size_t len = strlen(seal_plain);
    long n = crypto_seal(seal_key, seal_aad, strlen(seal_aad), seal_plain, len, box, sizeof box);
    cr_assert_eq(n, (long)(len + CRYPTO_SEAL_OVERHEAD));
    cr_expect_eq(box[0], 1, "version byte");
    cr_expect(memmem(box, (size_t)n, seal_plain, len) == NULL, "plaintext is not visible");
    long m = crypto_open(seal_key, seal_aad, strlen(seal_aad), box, (size_t)n, out, sizeof out);
    cr_assert_eq(m, (long)len);
    cr_expect(memcmp(out, seal_plain, len) == 0);
}

Test(crypto, seal_without_aad_and_empty_plaintext_round_trip)
{
    uint8_t box[64], out[64];
    long n = crypto_seal(seal_key, NULL, 0, "", 0, box, sizeof box);
    cr_assert_eq(n, CRYPTO_SEAL_OVERHEAD);
    cr_expect_eq(crypto_open(seal_key, NULL, 0, box, (size_t)n, out, 0), 0);
    n = crypto_seal(seal_key, NULL, 0, "x", 1, box, sizeof box);
    cr_assert_eq(n, CRYPTO_SEAL_OVERHEAD + 1);
    cr_expect_eq(crypto_open(seal_key, NULL, 0, box, (size_t)n, out, 1), 1);
    cr_expect_eq(out[0], 'x');
}

Test(crypto, seal_uses_a_fresh_nonce_each_time)
{
    uint8_t a[128], b[128];
    size_t len = strlen(seal_plain);
    long n = crypto_seal(seal_key, NULL, 0, seal_plain, len, a, sizeof a);
    cr_assert_eq(crypto_seal(seal_key, NULL, 0, seal_plain, len, b, sizeof b), n);
    cr_expect_not(memcmp(a + 1, b + 1, 12) == 0, "nonces differ");
    cr_expect_not(memcmp(a, b, (size_t)n) == 0, "boxes differ");
}

Test(crypto, seal_refuses_a_too_small_output_buffer)
{
    uint8_t box[128];
    size_t len = strlen(seal_plain);
    cr_expect_eq(
        crypto_seal(seal_key, NULL, 0, seal_plain, len, box, len + CRYPTO_SEAL_OVERHEAD - 1), -1);
}

/* Each case damages a good box (or the way it is opened); every one must fail
 * and must not leave the plaintext in the output buffer. */
struct open_bad {
    const char *name;
    size_t flip;     /* byte index to flip, or SIZE_MAX for none */
    long len_delta;  /* change to the box length */
    const char *aad; /* aad given to open */
    int wrong_key;
    int version;    /* replacement version byte, or -1 to keep it */
    long cap_delta; /* change to the output capacity */
};

#define PLAIN_LEN (sizeof seal_plain - 1)
#define NOFLIP ((size_t)-1)

static const struct open_bad open_bad_cases[] = {
    {"tampered tag (last byte)", 1 + 12 + PLAIN_LEN + 15, 0, seal_aad, 0, -1, 0},
    {"tampered tag (first byte)", 1 + 12 + PLAIN_LEN, 0, seal_aad, 0, -1, 0},
    {"tampered ciphertext", 1 + 12 + 3, 0, seal_aad, 0, -1, 0},
    {"tampered nonce", 1 + 5, 0, seal_aad, 0, -1, 0},
    {"wrong aad", NOFLIP, 0, "tenant-2/channel-42", 0, -1, 0},
    {"aad missing", NOFLIP, 0, NULL, 0, -1, 0},
    {"wrong key", NOFLIP, 0, seal_aad, 1, -1, 0},
    {"truncated by one byte", NOFLIP, -1, seal_aad, 0, -1, 0},
    {"truncated to the overhead minus one", NOFLIP, -(long)PLAIN_LEN - 1, seal_aad, 0, -1, 0},
    {"truncated to nothing", NOFLIP, -(long)(PLAIN_LEN + CRYPTO_SEAL_OVERHEAD), seal_aad, 0, -1, 0},
    {"one byte appended", NOFLIP, 1, seal_aad, 0, -1, 0},
    {"version byte 0", NOFLIP, 0, seal_aad, 0, 0, 0},
    {"version byte 2", NOFLIP, 0, seal_aad, 0, 2, 0},
    {"output buffer one byte short", NOFLIP, 0, seal_aad, 0, -1, -1},
};

Test(crypto, open_rejects_damaged_boxes)
{
    size_t len = PLAIN_LEN;
    for (size_t i = 0; i < sizeof open_bad_cases / sizeof open_bad_cases[0]; i++) {
        const struct open_bad *c = &open_bad_cases[i];
        uint8_t box[128] = {0}, out[128];
        uint8_t key[CRYPTO_KEY_LEN];
        long n =
            crypto_seal(seal_key, seal_aad, strlen(seal_aad), seal_plain, len, box, sizeof box);
        cr_assert_eq(n, (long)(len + CRYPTO_SEAL_OVERHEAD));

        memcpy(key, seal_key, sizeof key);
        if (c->wrong_key)
            key[0] ^= 0x01;
        if (c->flip != NOFLIP)
            box[c->flip] ^= 0x01;
        if (c->version >= 0)
            box[0] = (uint8_t)c->version;
        size_t boxlen = (size_t)(n + c->len_delta);
        size_t cap = (size_t)((long)len + c->cap_delta);
        memset(out, 0, sizeof out);

        long m = crypto_open(key, c->aad, c->aad ? strlen(c->aad) : 0, box, boxlen, out, cap);
        cr_expect_eq(m, -1, "%s: open returned %ld", c->name, m);
        cr_expect(memmem(out, sizeof out, "channel-secret", 14) == NULL,
                  "%s: plaintext left in the output buffer", c->name);
    }
}
