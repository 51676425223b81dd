/* HMAC-SHA256 with constant-time comparison, base64, and AES-256-GCM sealing
 * of secrets at rest. Only crypto.c includes OpenSSL. All functions are
 * thread-safe and allocate nothing unless they say so. */
#ifndef KIZUNA_CRYPTO_H
#define KIZUNA_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_SHA256_LEN 32
#define CRYPTO_KEY_LEN 32
/* A sealed box is version(1) | nonce(12) | ciphertext | tag(16). */
#define CRYPTO_SEAL_OVERHEAD (1 + 12 + 16)

void crypto_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                        uint8_t out[CRYPTO_SHA256_LEN]);

/* Constant-time equality of two buffers of the same length. */
bool crypto_equal(const void *a, const void *b, size_t len);

/* Standard base64 with padding. Returns the encoded length (excluding NUL),
 * or -1 if cap is too small. out is NUL-terminated. */
long crypto_base64_encode(const void *in, size_t len, char *out, size_t cap);

/* Strict decode: rejects bad characters, bad padding, and wrong length.
 * Returns the decoded length or -1. */
long crypto_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* The same pair in the URL-safe alphabet without padding (JWT, link tokens). */
long crypto_base64url_encode(const void *in, size_t len, char *out, size_t cap);
long crypto_base64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* Parses 64 hex characters into a 32-byte key. Returns 0 or -1. */
int crypto_key_from_hex(const char *hex, uint8_t key[CRYPTO_KEY_LEN]);

/* Seals plain under key with a random nonce; aad (may be NULL) binds the box
 * to its context, e.g. "tenant/channel". out needs len + CRYPTO_SEAL_OVERHEAD.
 * Returns the sealed length or -1. */
long crypto_seal(const uint8_t key[CRYPTO_KEY_LEN], const void *aad, size_t aadlen,
                 const void *plain, size_t len, uint8_t *out, size_t cap);

/* Opens a box made by crypto_seal. Returns the plain length, or -1 if the box
 * is truncated, of another version, or fails authentication (tampered tag,
 * ciphertext, nonce or aad, or the wrong key). */
long crypto_open(const uint8_t key[CRYPTO_KEY_LEN], const void *aad, size_t aadlen,
                 const uint8_t *box, size_t len, uint8_t *out, size_t cap);

/* Fills buf with cryptographically random bytes. Returns 0 or -1. */
int crypto_random(void *buf, size_t len);

/* Zeroes len bytes of a secret in a way the compiler cannot drop. */
void crypto_wipe(void *buf, size_t len);

#endif
