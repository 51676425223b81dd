/* libFuzzer target for the strict base64 and base64url codecs and the hex
 * key parser (common/crypto.c). Webhook signatures, JWT parts and tracked
 * link tokens are decoded with them before any MAC is checked.
 *
 * Contract, for both alphabets:
 *   - decoding writes only into a buffer of exactly the decoded size (one
 *     byte less is refused, never overrun);
 *   - what decodes re-encodes to the very same text: every byte string has
 *     exactly one accepted spelling;
 *   - any bytes encode to the length the alphabet promises and decode back.
 * And a 64-hex-digit key parses to bytes whose hex is the input (any case). */
#include <ctype.h>

#include "crypto.h"
#include "fuzz.h"

typedef long (*codec_fn)(const void *, size_t, void *, size_t);

static long dec_std(const void *in, size_t len, void *out, size_t cap)
{
    return crypto_base64_decode(in, len, out, cap);
}

static long dec_url(const void *in, size_t len, void *out, size_t cap)
{
    return crypto_base64url_decode(in, len, out, cap);
}

static long enc_std(const void *in, size_t len, void *out, size_t cap)
{
    return crypto_base64_encode(in, len, out, cap);
}

static long enc_url(const void *in, size_t len, void *out, size_t cap)
{
    return crypto_base64url_encode(in, len, out, cap);
}

/* Decodes the input; what decodes must re-encode to the input exactly. */
static void decode_canonical(const char *in, size_t len, codec_fn dec, codec_fn enc)
{
    uint8_t *out = malloc(len ? len : 1);
    if (!out)
        abort();
    long n = dec(in, len, out, len);
    FUZZ_CHECK(n >= -1 && n <= (long)len);
    if (n > 0) {
        /* Exactly n bytes of room work; n - 1 are refused without a write. */
        uint8_t *exact = malloc((size_t)n);
        uint8_t *short_by_one = malloc((size_t)n);
        if (!exact || !short_by_one)
            abort();
        FUZZ_CHECK(dec(in, len, exact, (size_t)n) == n);
        FUZZ_CHECK(memcmp(exact, out, (size_t)n) == 0);
        FUZZ_CHECK(dec(in, len, short_by_one, (size_t)n - 1) == -1);
        free(exact);
        free(short_by_one);
    }
    if (n >= 0) {
        char *again = malloc(len + 1);
        if (!again)
            abort();
        FUZZ_CHECK(enc(out, (size_t)n, again, len + 1) == (long)len);
        FUZZ_CHECK(memcmp(again, in, len) == 0 && again[len] == '\0');
        free(again);
    }
    free(out);
}

/* Encodes the bytes, checks the length, decodes them back. */
static void encode_roundtrip(const uint8_t *data, size_t len, codec_fn enc, codec_fn dec,
                             int padded)
{
    size_t want = padded ? (len + 2) / 3 * 4 : len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
    char *text = malloc(want + 1);
    if (!text)
        abort();
    FUZZ_CHECK(enc(data, len, text, want) == -1); /* no room for the NUL */
    FUZZ_CHECK(enc(data, len, text, want + 1) == (long)want);
    FUZZ_CHECK(text[want] == '\0');
    uint8_t *back = malloc(len ? len : 1);
    if (!back)
        abort();
    FUZZ_CHECK(dec(text, want, back, len) == (long)len);
    FUZZ_CHECK(len == 0 || memcmp(back, data, len) == 0);
    free(back);
    free(text);
}

static void hex_key(const uint8_t *data, size_t len)
{
    char *hex = fuzz_strndup(data, len);
    uint8_t key[CRYPTO_KEY_LEN];
    if (crypto_key_from_hex(hex, key) == 0) {
        static const char digits[] = "0123456789abcdef";
        FUZZ_CHECK(strlen(hex) == 2 * CRYPTO_KEY_LEN);
        for (size_t i = 0; i < CRYPTO_KEY_LEN; i++) {
            FUZZ_CHECK(tolower((unsigned char)hex[2 * i]) == digits[key[i] >> 4]);
            FUZZ_CHECK(tolower((unsigned char)hex[2 * i + 1]) == digits[key[i] & 15]);
        }
    }
    free(hex);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact copy, so that a read past the end is caught. */
    char *in = (char *)fuzz_memdup(data, size);
    decode_canonical(in, size, dec_std, enc_std);
    decode_canonical(in, size, dec_url, enc_url);
    encode_roundtrip(data, size, enc_std, dec_std, 1);
    encode_roundtrip(data, size, enc_url, dec_url, 0);
    hex_key(data, size);
    free(in);
    return 0;
}
