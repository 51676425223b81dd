/* HMAC-SHA256, constant-time comparison, strict base64 and AES-256-GCM
 * boxes for secrets at rest. This is the only file that includes OpenSSL,
 * so the rest of Kizuna never sees its types or its error queue.
 *
 * Base64 is hand-written rather than EVP_DecodeBlock because that one skips
 * whitespace and accepts non-canonical input; signatures and link tokens
 * must have exactly one spelling. */
#include "crypto.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define SEAL_VERSION 1
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN 16

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void crypto_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                        uint8_t out[CRYPTO_SHA256_LEN])
{
    static const uint8_t empty[1];
    uint8_t hashed[CRYPTO_SHA256_LEN];
    unsigned int outlen = 0;

    /* HMAC() takes an int key length. A key longer than the block size is
     * hashed by HMAC itself (RFC 2104), so hashing it here gives the same MAC. */
    if (keylen > INT_MAX) {
        if (!EVP_Digest(key, keylen, hashed, NULL, EVP_sha256(), NULL))
            abort();
        key = hashed;
        keylen = sizeof hashed;
    }
    if (!key || keylen == 0) {
        key = empty;
        keylen = 0;
    }
    if (!msg)
        msg = empty;
    /* The contract has no error path. A MAC we could not compute must never
     * compare equal to anything, and this only fails when OpenSSL cannot
     * allocate, so stop rather than return something guessable. */
    if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &outlen) ||
        outlen != CRYPTO_SHA256_LEN)
        abort();
    OPENSSL_cleanse(hashed, sizeof hashed);
}

bool crypto_equal(const void *a, const void *b, size_t len)
{
    if (len == 0)
        return true;
    return CRYPTO_memcmp(a, b, len) == 0;
}

/* --- base64 ------------------------------------------------------------- */

static long b64_encode(const char *alphabet, bool pad, const void *in, size_t len, char *out,
                       size_t cap)
{
    const uint8_t *p = in;
    size_t full = len / 3, rest = len % 3;
    size_t need;

    if (len > (size_t)LONG_MAX / 4 * 3 - 3)
        return -1;
    need = full * 4 + (rest == 0 ? 0 : pad ? 4 : rest + 1);
    if (!out || cap <= need)
        return -1;

    size_t o = 0;
    for (size_t i = 0; i < full; i++, p += 3) {
        uint32_t v = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (rest) {
        uint32_t v = (uint32_t)p[0] << 16 | (rest == 2 ? (uint32_t)p[1] << 8 : 0);
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        if (rest == 2)
            out[o++] = alphabet[v >> 6 & 63];
        else if (pad)
            out[o++] = '=';
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return (long)o;
}

static int b64_value(const char *alphabet, char c)
{
    /* A NUL would match the alphabet's terminator in strchr: refuse it first. */
    if (c == '\0')
        return -1;
    const char *hit = strchr(alphabet, c);
    return hit ? (int)(hit - alphabet) : -1;
}

/* Decodes len characters that carry no padding (the caller strips it and
 * has already checked that len % 4 != 1). The unused low bits of the last
 * character must be zero, so every byte string has exactly one encoding. */
static long b64_decode_body(const char *alphabet, const char *in, size_t len, uint8_t *out,
                            size_t cap)
{
    size_t outlen = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (outlen > cap || (outlen > 0 && !out) || outlen > (size_t)LONG_MAX)
        return -1;

    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(alphabet, in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1;
    return (long)o;
}

long crypto_base64_encode(const void *in, size_t len, char *out, size_t cap)
{
    return b64_encode(b64_std, true, in, len, out, cap);
}

long crypto_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    if (len == 0)
        return 0;
    if (!in || len % 4 != 0)
        return -1;
    size_t body = len;
    if (in[body - 1] == '=')
        body--;
    if (in[body - 1] == '=')
        body--;
    /* "x===" and "====" leave a body whose length is 1 mod 4, or nothing. */
    if (body % 4 == 1 || body == 0)
        return -1;
    return b64_decode_body(b64_std, in, body, out, cap);
}

long crypto_base64url_encode(const void *in, size_t len, char *out, size_t cap)
{
    return b64_encode(b64_url, false, in, len, out, cap);
}

long crypto_base64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    if (len == 0)
        return 0;
    if (!in || len % 4 == 1)
        return -1;
    return b64_decode_body(b64_url, in, len, out, cap);
}

/* --- keys and randomness -------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int crypto_key_from_hex(const char *hex, uint8_t key[CRYPTO_KEY_LEN])
{
    uint8_t tmp[CRYPTO_KEY_LEN];
    int rc = -1;

    if (!hex || strnlen(hex, CRYPTO_KEY_LEN * 2 + 1) != CRYPTO_KEY_LEN * 2)
        return -1;
    for (size_t i = 0; i < CRYPTO_KEY_LEN; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            goto done;
        tmp[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(key, tmp, CRYPTO_KEY_LEN);
    rc = 0;
done:
    OPENSSL_cleanse(tmp, sizeof tmp);
    return rc;
}

int crypto_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        int chunk = len > INT_MAX ? INT_MAX : (int)len;
        if (RAND_bytes(p, chunk) != 1)
            return -1;
        p += chunk;
        len -= (size_t)chunk;
    }
    return 0;
}

/* --- AES-256-GCM boxes ---------------------------------------------------- */

/* The version byte is fed to GCM as the first piece of additional data, so a
 * box cannot be relabelled as another format without failing the tag. */
static int seal_aad(EVP_CIPHER_CTX *ctx, bool encrypt, const void *aad, size_t aadlen)
{
    static const uint8_t version = SEAL_VERSION;
    int outl;
    int (*update)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int) =
        encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate;

    if (update(ctx, NULL, &outl, &version, 1) != 1)
        return -1;
    if (aadlen > 0 && update(ctx, NULL, &outl, aad, (int)aadlen) != 1)
        return -1;
    return 0;
}

long crypto_seal(const uint8_t key[CRYPTO_KEY_LEN], const void *aad, size_t aadlen,
                 const void *plain, size_t len, uint8_t *out, size_t cap)
{
    EVP_CIPHER_CTX *ctx = NULL;
    long rc = -1;
    int outl = 0, finl = 0;

    if (!key || !out || (len > 0 && !plain) || (aadlen > 0 && !aad))
        return -1;
    /* EVP takes int lengths. */
    if (len > INT_MAX - CRYPTO_SEAL_OVERHEAD || aadlen > INT_MAX)
        return -1;
    if (cap < len + CRYPTO_SEAL_OVERHEAD)
        return -1;

    uint8_t *nonce = out + 1, *ct = out + 1 + SEAL_NONCE_LEN, *tag = ct + len;
    out[0] = SEAL_VERSION;
    if (crypto_random(nonce, SEAL_NONCE_LEN) != 0)
        goto fail;
    if (!(ctx = EVP_CIPHER_CTX_new()))
        goto fail;
    /* GCM's default IV length is 12 bytes, which is what the box stores. */
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1)
        goto fail;
    if (seal_aad(ctx, true, aad, aadlen) != 0)
        goto fail;
    if (len > 0 && EVP_EncryptUpdate(ctx, ct, &outl, plain, (int)len) != 1)
        goto fail;
    if (EVP_EncryptFinal_ex(ctx, ct + outl, &finl) != 1 || (size_t)outl + (size_t)finl != len)
        goto fail;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, tag) != 1)
        goto fail;
    rc = (long)(len + CRYPTO_SEAL_OVERHEAD);
fail:
    if (rc < 0)
        OPENSSL_cleanse(out, cap < len + CRYPTO_SEAL_OVERHEAD ? cap : len + CRYPTO_SEAL_OVERHEAD);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

long crypto_open(const uint8_t key[CRYPTO_KEY_LEN], const void *aad, size_t aadlen,
                 const uint8_t *box, size_t len, uint8_t *out, size_t cap)
{
    EVP_CIPHER_CTX *ctx = NULL;
    long rc = -1;
    int outl = 0, finl = 0;

    if (!key || !box || (aadlen > 0 && !aad))
        return -1;
    if (len < CRYPTO_SEAL_OVERHEAD || box[0] != SEAL_VERSION)
        return -1;
    size_t plen = len - CRYPTO_SEAL_OVERHEAD;
    if (plen > INT_MAX || aadlen > INT_MAX || plen > cap || (plen > 0 && !out))
        return -1;

    const uint8_t *nonce = box + 1, *ct = box + 1 + SEAL_NONCE_LEN, *tag = ct + plen;
    uint8_t tagcopy[SEAL_TAG_LEN];
    memcpy(tagcopy, tag, sizeof tagcopy);

    if (!(ctx = EVP_CIPHER_CTX_new()))
        goto fail;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1)
        goto fail;
    if (seal_aad(ctx, false, aad, aadlen) != 0)
        goto fail;
    if (plen > 0 && EVP_DecryptUpdate(ctx, out, &outl, ct, (int)plen) != 1)
        goto fail;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, tagcopy) != 1)
        goto fail;
    /* Final checks the tag; until it passes, out holds unauthenticated text. */
    if (EVP_DecryptFinal_ex(ctx, plen > 0 ? out + outl : tagcopy, &finl) != 1)
        goto fail;
    if ((size_t)outl + (size_t)finl != plen)
        goto fail;
    rc = (long)plen;
fail:
    if (rc < 0 && plen > 0 && out)
        OPENSSL_cleanse(out, plen);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

void crypto_wipe(void *buf, size_t len)
{
    OPENSSL_cleanse(buf, len);
}
