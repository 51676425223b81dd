/* Tracked-link tokens. The payload is binary rather than JSON so that a
 * token stays short in a LINE message and parsing it is a few bounds
 * checks:
 *     version (1 byte, = 1) | expires_at (int64, big-endian unix seconds)
 *     | five strings, each a big-endian u16 length then its bytes:
 *       tenant, channel, link id, friend user id, target URL
 * and nothing after. The MAC covers the payload bytes (version included),
 * and is checked before any of them is interpreted. Base64url decoding is
 * canonical (crypto.c), so each payload has exactly one token spelling. */
#include "link_token.h"

#include <string.h>
#include <strings.h>

#define LINK_TOKEN_VERSION 1
#define LINK_TOKEN_FIELDS 5
/* version + expiry + five u16 lengths + the longest fields. */
#define LINK_TOKEN_PAYLOAD_MAX                                                        \
    (1 + 8 + 2 * LINK_TOKEN_FIELDS + LINK_TOKEN_TENANT_MAX + LINK_TOKEN_CHANNEL_MAX + \
     LINK_TOKEN_ID_MAX + LINK_TOKEN_USER_MAX + LINK_TOKEN_URL_MAX)

static const char link_token_label[] = "kizuna/link-token/v1";

const char *link_token_result_str(enum link_token_result r)
{
    switch (r) {
    case LINK_TOKEN_OK:
        return "ok";
    case LINK_TOKEN_MALFORMED:
        return "malformed link token";
    case LINK_TOKEN_BAD_SIGNATURE:
        return "link token signature does not match";
    case LINK_TOKEN_EXPIRED:
        return "link token expired";
    case LINK_TOKEN_BAD_TARGET:
        return "link target is not an http(s) URL";
    }
    return "unknown";
}

void link_token_key_derive(const uint8_t data_key[CRYPTO_KEY_LEN], uint8_t link_key[CRYPTO_KEY_LEN])
{
    crypto_hmac_sha256(data_key, CRYPTO_KEY_LEN, link_token_label, sizeof link_token_label - 1,
                       link_key);
}

bool link_token_url_ok(const char *url)
{
    size_t skip;
    if (!url)
        return false;
    if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else
        return false;
    size_t len = strnlen(url, LINK_TOKEN_URL_MAX);
    if (len >= LINK_TOKEN_URL_MAX)
        return false;
    /* A host must follow: "https:///x" and "https://\x" are read by some
     * browsers as another host than the one written. */
    char first = url[skip];
    if (first == '\0' || first == '/' || first == '?' || first == '#' || first == '@')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\')
            return false;
    }
    return true;
}

/* A payload string: no NUL or control characters, under cap (NUL included). */
static bool field_ok(const char *s, size_t len, size_t cap, bool may_be_empty)
{
    if (len >= cap || (len == 0 && !may_be_empty))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

struct link_token_field {
    const char *value; /* sign: the source */
    char *dest;        /* verify: where it goes */
    size_t cap;
    bool may_be_empty;
};

static void fields_of(const struct link_token *src, struct link_token *dst,
                      struct link_token_field f[LINK_TOKEN_FIELDS])
{
    f[0] = (struct link_token_field){src ? src->tenant_id : NULL, dst ? dst->tenant_id : NULL,
                                     LINK_TOKEN_TENANT_MAX, false};
    f[1] = (struct link_token_field){src ? src->channel_id : NULL, dst ? dst->channel_id : NULL,
                                     LINK_TOKEN_CHANNEL_MAX, false};
    f[2] = (struct link_token_field){src ? src->link_id : NULL, dst ? dst->link_id : NULL,
                                     LINK_TOKEN_ID_MAX, false};
    f[3] = (struct link_token_field){src ? src->friend_user_id : NULL,
                                     dst ? dst->friend_user_id : NULL, LINK_TOKEN_USER_MAX, true};
    f[4] = (struct link_token_field){src ? src->target_url : NULL, dst ? dst->target_url : NULL,
                                     LINK_TOKEN_URL_MAX, false};
}

long link_token_sign(const uint8_t key[CRYPTO_KEY_LEN], const struct link_token *t, char *out,
                     size_t cap)
{
    uint8_t payload[LINK_TOKEN_PAYLOAD_MAX];
    uint8_t mac[CRYPTO_SHA256_LEN];
    struct link_token_field f[LINK_TOKEN_FIELDS];
    size_t off = 0;

    if (!key || !t || !out)
        return -1;
    if (t->expires_at <= 0)
        return LINK_TOKEN_MALFORMED;
    fields_of(t, NULL, f);
    for (int i = 0; i < LINK_TOKEN_FIELDS; i++) {
        size_t len = strnlen(f[i].value, f[i].cap);
        if (!field_ok(f[i].value, len, f[i].cap, f[i].may_be_empty))
            return LINK_TOKEN_MALFORMED;
    }
    if (!link_token_url_ok(t->target_url))
        return LINK_TOKEN_BAD_TARGET;

    payload[off++] = LINK_TOKEN_VERSION;
    uint64_t exp = (uint64_t)t->expires_at;
    for (int i = 7; i >= 0; i--)
        payload[off++] = (uint8_t)(exp >> (8 * i));
    for (int i = 0; i < LINK_TOKEN_FIELDS; i++) {
        size_t len = strlen(f[i].value);
        payload[off++] = (uint8_t)(len >> 8);
        payload[off++] = (uint8_t)len;
        memcpy(payload + off, f[i].value, len);
        off += len;
    }
    crypto_hmac_sha256(key, CRYPTO_KEY_LEN, payload, off, mac);

    long n = crypto_base64url_encode(payload, off, out, cap);
    if (n < 0 || (size_t)n + 2 >= cap)
        return -1;
    out[n] = '.';
    long m = crypto_base64url_encode(mac, sizeof mac, out + n + 1, cap - (size_t)n - 1);
    if (m < 0)
        return -1;
    return n + 1 + m;
}

/* Reads the authenticated payload into out. */
static enum link_token_result payload_parse(const uint8_t *p, size_t len, struct link_token *out)
{
    struct link_token_field f[LINK_TOKEN_FIELDS];
    size_t off = 0;

    if (len < 1 + 8 || p[0] != LINK_TOKEN_VERSION)
        return LINK_TOKEN_MALFORMED;
    off = 1;
    uint64_t exp = 0;
    for (int i = 0; i < 8; i++)
        exp = exp << 8 | p[off++];
    if (exp == 0 || exp > (uint64_t)INT64_MAX)
        return LINK_TOKEN_MALFORMED;
    out->expires_at = (int64_t)exp;
    fields_of(NULL, out, f);
    for (int i = 0; i < LINK_TOKEN_FIELDS; i++) {
        if (len - off < 2)
            return LINK_TOKEN_MALFORMED;
        size_t flen = (size_t)p[off] << 8 | p[off + 1];
        off += 2;
        if (flen > len - off || !field_ok((const char *)p + off, flen, f[i].cap, f[i].may_be_empty))
            return LINK_TOKEN_MALFORMED;
        for (size_t j = 0; j < flen; j++)
            if (p[off + j] == 0)
                return LINK_TOKEN_MALFORMED;
        memcpy(f[i].dest, p + off, flen);
        f[i].dest[flen] = '\0';
        off += flen;
    }
    return off == len ? LINK_TOKEN_OK : LINK_TOKEN_MALFORMED;
}

enum link_token_result link_token_verify(const uint8_t key[CRYPTO_KEY_LEN], const char *token,
                                         size_t len, int64_t now, struct link_token *out)
{
    uint8_t payload[LINK_TOKEN_PAYLOAD_MAX];
    uint8_t mac[CRYPTO_SHA256_LEN], want[CRYPTO_SHA256_LEN];
    struct link_token tmp;

    if (!key || !token || !out || len == 0 || len >= LINK_TOKEN_TEXT_MAX)
        return LINK_TOKEN_MALFORMED;
    const char *dot = memchr(token, '.', len);
    if (!dot || dot == token)
        return LINK_TOKEN_MALFORMED;
    size_t plen = (size_t)(dot - token);
    const char *sig = dot + 1;
    size_t slen = len - plen - 1;
    /* Exactly 43 characters of MAC and no second dot (the alphabet has none). */
    if (crypto_base64url_decode(sig, slen, mac, sizeof mac) != (long)sizeof mac)
        return LINK_TOKEN_MALFORMED;
    long n = crypto_base64url_decode(token, plen, payload, sizeof payload);
    if (n <= 0)
        return LINK_TOKEN_MALFORMED;
    crypto_hmac_sha256(key, CRYPTO_KEY_LEN, payload, (size_t)n, want);
    if (!crypto_equal(mac, want, sizeof mac))
        return LINK_TOKEN_BAD_SIGNATURE;

    memset(&tmp, 0, sizeof tmp);
    enum link_token_result r = payload_parse(payload, (size_t)n, &tmp);
    if (r != LINK_TOKEN_OK)
        return r;
    if (!link_token_url_ok(tmp.target_url))
        return LINK_TOKEN_BAD_TARGET;
    if (tmp.expires_at <= now)
        return LINK_TOKEN_EXPIRED;
    *out = tmp;
    return LINK_TOKEN_OK;
}
