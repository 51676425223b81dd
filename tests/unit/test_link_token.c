/* Unit tests for common/link_token: a signed token round-trips every field;
 * the link key is derived from the data key under its own label; and every
 * kind of bad token (tampered, truncated, re-signed with another key,
 * expired, pointing at a non-http(s) target, oddly encoded) is refused with
 * the right verdict, as is every bad input to signing. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "link_token.h"

#define NOW 1700000000LL

static const uint8_t key[CRYPTO_KEY_LEN] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                            12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                            23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static struct link_token sample(void)
{
    struct link_token t;
    memset(&t, 0, sizeof t);
    snprintf(t.tenant_id, sizeof t.tenant_id, "acme");
    snprintf(t.channel_id, sizeof t.channel_id, "1660000000");
    snprintf(t.link_id, sizeof t.link_id, "spring-sale");
    snprintf(t.friend_user_id, sizeof t.friend_user_id, "U4af4980629c2c0b4e1a2b3c4d5e6f7a8");
    snprintf(t.target_url, sizeof t.target_url, "https://example.com/sale?from=line&x=1#top");
    t.expires_at = NOW + 3600;
    return t;
}

static void sign_ok(const struct link_token *t, char *out, size_t cap)
{
    long n = link_token_sign(key, t, out, cap);
    cr_assert_gt(n, 0, "link_token_sign failed: %ld", n);
    cr_assert_eq((size_t)n, strlen(out));
}

/* A token over an arbitrary payload, signed correctly: for checks that
 * happen after the signature (link_token_sign refuses to make these). */
static void craft(const uint8_t *payload, size_t len, char *out, size_t cap)
{
    uint8_t mac[CRYPTO_SHA256_LEN];
    crypto_hmac_sha256(key, sizeof key, payload, len, mac);
    long n = crypto_base64url_encode(payload, len, out, cap);
    cr_assert_gt(n, 0);
    out[n] = '.';
    cr_assert_gt(crypto_base64url_encode(mac, sizeof mac, out + n + 1, cap - (size_t)n - 1), 0);
}

/* The v1 payload layout, written independently of link_token.c. */
static size_t payload_v1(uint8_t *p, uint8_t version, unsigned long long exp,
                         const char *const fields[5], const char *trailer)
{
    size_t off = 0;
    p[off++] = version;
    for (int i = 7; i >= 0; i--)
        p[off++] = (uint8_t)(exp >> (8 * i));
    for (int i = 0; i < 5; i++) {
        size_t len = strlen(fields[i]);
        p[off++] = (uint8_t)(len >> 8);
        p[off++] = (uint8_t)len;
        memcpy(p + off, fields[i], len);
        off += len;
    }
    if (trailer) {
        memcpy(p + off, trailer, strlen(trailer));
        off += strlen(trailer);
    }
    return off;
}

TestSuite(link_token);

Test(link_token, signed_token_round_trips_every_field)
{
    struct link_token t = sample(), got;
    char tok[LINK_TOKEN_TEXT_MAX];
    sign_ok(&t, tok, sizeof tok);
    cr_assert_not_null(strchr(tok, '.'));
    cr_assert_null(strpbrk(tok, "+/= "), "url-safe alphabet, no padding: %s", tok);
    memset(&got, 0x55, sizeof got);
    cr_assert_eq(link_token_verify(key, tok, strlen(tok), NOW, &got), LINK_TOKEN_OK);
    cr_expect_str_eq(got.tenant_id, t.tenant_id);
    cr_expect_str_eq(got.channel_id, t.channel_id);
    cr_expect_str_eq(got.link_id, t.link_id);
    cr_expect_str_eq(got.friend_user_id, t.friend_user_id);
    cr_expect_str_eq(got.target_url, t.target_url);
    cr_expect_eq(got.expires_at, t.expires_at);
}

Test(link_token, token_without_a_friend_is_valid)
{
    struct link_token t = sample(), got;
    t.friend_user_id[0] = '\0';
    char tok[LINK_TOKEN_TEXT_MAX];
    sign_ok(&t, tok, sizeof tok);
    cr_assert_eq(link_token_verify(key, tok, strlen(tok), NOW, &got), LINK_TOKEN_OK);
    cr_expect_str_eq(got.friend_user_id, "");
}

Test(link_token, longest_fields_fit_the_text_cap)
{
    struct link_token t = sample(), got;
    memset(t.tenant_id, 't', sizeof t.tenant_id - 1);
    t.tenant_id[sizeof t.tenant_id - 1] = '\0';
    memset(t.channel_id, '9', sizeof t.channel_id - 1);
    t.channel_id[sizeof t.channel_id - 1] = '\0';
    memset(t.link_id, 'l', sizeof t.link_id - 1);
    t.link_id[sizeof t.link_id - 1] = '\0';
    memset(t.friend_user_id, 'U', sizeof t.friend_user_id - 1);
    t.friend_user_id[sizeof t.friend_user_id - 1] = '\0';
    memcpy(t.target_url, "https://", 8);
    memset(t.target_url + 8, 'a', sizeof t.target_url - 9);
    t.target_url[sizeof t.target_url - 1] = '\0';
    char tok[LINK_TOKEN_TEXT_MAX];
    sign_ok(&t, tok, sizeof tok);
    cr_assert_eq(link_token_verify(key, tok, strlen(tok), NOW, &got), LINK_TOKEN_OK);
    cr_expect_str_eq(got.target_url, t.target_url);
}

Test(link_token, sign_refuses_a_buffer_too_small)
{
    struct link_token t = sample();
    char tok[40];
    cr_expect_lt(link_token_sign(key, &t, tok, sizeof tok), 0);
}

Test(link_token, derived_key_is_stable_and_not_the_data_key)
{
    uint8_t a[CRYPTO_KEY_LEN], b[CRYPTO_KEY_LEN], other[CRYPTO_KEY_LEN];
    uint8_t data2[CRYPTO_KEY_LEN];
    memcpy(data2, key, sizeof data2);
    data2[0] ^= 1;
    link_token_key_derive(key, a);
    link_token_key_derive(key, b);
    link_token_key_derive(data2, other);
    cr_expect(memcmp(a, b, sizeof a) == 0);
    cr_expect(memcmp(a, key, sizeof a) != 0);
    cr_expect(memcmp(a, other, sizeof a) != 0);
    /* HMAC-SHA256(data key, "kizuna/link-token/v1"): the label is the contract
     * with every service that mints links. */
    uint8_t want[CRYPTO_SHA256_LEN];
    crypto_hmac_sha256(key, sizeof key, "kizuna/link-token/v1", 20, want);
    cr_expect(memcmp(a, want, sizeof a) == 0);
}

/* A known-good token, fixed: the data key is the bytes 1..32 (key above) and
 * the fields are sample()'s. Both literals were computed once outside this
 * code, by Python's hmac, hashlib and base64 following the format written
 * in link_token.h and link_token.c:
 *     link_key = hmac(data_key, b"kizuna/link-token/v1", sha256)
 *     payload  = b"\x01" + struct.pack(">q", 1700000000 + 3600)
 *                + for each of tenant, channel, link id, friend, URL:
 *                  struct.pack(">H", len(f)) + f
 *     token    = b64url(payload) + "." + b64url(hmac(link_key, payload))
 * with b64url = urlsafe_b64encode without "=" padding. A change to the
 * label, the key derivation, the payload layout, the MAC or the encoding
 * changes these, and every link already sent in a LINE message would stop
 * working: that must be a deliberate new version, never an accident. */
#define FIXED_LINK_KEY_HEX "a5f1600d82700475da602de633d78d27734e1157c64a5200f0d32e25814c859a"
#define FIXED_TOKEN                                                                            \
    "AQAAAABlU_8QAARhY21lAAoxNjYwMDAwMDAwAAtzcHJpbmctc2FsZQAhVTRhZjQ5ODA2MjljMmMwYjRlMWEyYjNj" \
    "NGQ1ZTZmN2E4ACpodHRwczovL2V4YW1wbGUuY29tL3NhbGU_ZnJvbT1saW5lJng9MSN0b3A"                  \
    ".9eHC4cGRahjg9zMQvk0uURUK2Z1Jc6NTNdoR-HDAWew"

Test(link_token, fixed_key_and_fields_sign_to_the_known_token_and_it_verifies)
{
    uint8_t link_key[CRYPTO_KEY_LEN], want_key[CRYPTO_KEY_LEN];
    link_token_key_derive(key, link_key);
    cr_assert_eq(crypto_key_from_hex(FIXED_LINK_KEY_HEX, want_key), 0);
    cr_expect(memcmp(link_key, want_key, sizeof link_key) == 0, "the link key derivation changed");

    struct link_token t = sample(), got;
    char tok[LINK_TOKEN_TEXT_MAX];
    long n = link_token_sign(link_key, &t, tok, sizeof tok);
    cr_assert_gt(n, 0, "link_token_sign failed: %ld", n);
    cr_expect_str_eq(tok, FIXED_TOKEN, "the token format changed");

    /* And the literal token, made elsewhere, is accepted with every field. */
    memset(&got, 0, sizeof got);
    cr_assert_eq(link_token_verify(want_key, FIXED_TOKEN, strlen(FIXED_TOKEN), NOW, &got),
                 LINK_TOKEN_OK);
    cr_expect_str_eq(got.tenant_id, "acme");
    cr_expect_str_eq(got.channel_id, "1660000000");
    cr_expect_str_eq(got.link_id, "spring-sale");
    cr_expect_str_eq(got.friend_user_id, "U4af4980629c2c0b4e1a2b3c4d5e6f7a8");
    cr_expect_str_eq(got.target_url, "https://example.com/sale?from=line&x=1#top");
    cr_expect_eq(got.expires_at, NOW + 3600);
}

/* --- bad tokens ------------------------------------------------------------ */

enum mutation {
    M_NONE,
    M_EMPTY,
    M_NO_DOT,
    M_ONLY_DOT,
    M_NO_MAC,
    M_NO_PAYLOAD,
    M_TRUNCATE_1,
    M_TRUNCATE_HALF,
    M_FLIP_PAYLOAD,
    M_FLIP_MAC,
    M_SECOND_DOT,
    M_PADDED,
    M_STD_ALPHABET,
    M_SPACE,
    M_OTHER_KEY,
    M_TOO_LONG,
    M_SWAP_MAC, /* the payload of one token with the MAC of another */
};

struct bad_token {
    const char *name;
    enum mutation m;
    long long now; /* verification time */
    enum link_token_result want;
};

static const struct bad_token bad_tokens[] = {
    {"empty", M_EMPTY, NOW, LINK_TOKEN_MALFORMED},
    {"no dot", M_NO_DOT, NOW, LINK_TOKEN_MALFORMED},
    {"only a dot", M_ONLY_DOT, NOW, LINK_TOKEN_MALFORMED},
    {"payload without mac", M_NO_MAC, NOW, LINK_TOKEN_MALFORMED},
    {"mac without payload", M_NO_PAYLOAD, NOW, LINK_TOKEN_MALFORMED},
    {"truncated by one character", M_TRUNCATE_1, NOW, LINK_TOKEN_MALFORMED},
    {"truncated to half", M_TRUNCATE_HALF, NOW, LINK_TOKEN_MALFORMED},
    {"payload character changed", M_FLIP_PAYLOAD, NOW, LINK_TOKEN_BAD_SIGNATURE},
    {"mac character changed", M_FLIP_MAC, NOW, LINK_TOKEN_BAD_SIGNATURE},
    {"second dot", M_SECOND_DOT, NOW, LINK_TOKEN_MALFORMED},
    {"base64 padding", M_PADDED, NOW, LINK_TOKEN_MALFORMED},
    {"standard base64 alphabet", M_STD_ALPHABET, NOW, LINK_TOKEN_MALFORMED},
    {"space inside", M_SPACE, NOW, LINK_TOKEN_MALFORMED},
    {"signed with another key", M_OTHER_KEY, NOW, LINK_TOKEN_BAD_SIGNATURE},
    {"over the text cap", M_TOO_LONG, NOW, LINK_TOKEN_MALFORMED},
    {"mac of another token", M_SWAP_MAC, NOW, LINK_TOKEN_BAD_SIGNATURE},
    {"expired an hour ago", M_NONE, NOW + 7200, LINK_TOKEN_EXPIRED},
    {"expires this very second", M_NONE, NOW + 3600, LINK_TOKEN_EXPIRED},
};

/* Makes the mutated token text for case c in out. */
static void mutate(const struct bad_token *c, char *out, size_t cap)
{
    struct link_token t = sample();
    char tok[LINK_TOKEN_TEXT_MAX];
    sign_ok(&t, tok, sizeof tok);
    char *dot = strchr(tok, '.');
    size_t len = strlen(tok), plen = (size_t)(dot - tok);
    switch (c->m) {
    case M_NONE:
        snprintf(out, cap, "%s", tok);
        break;
    case M_EMPTY:
        out[0] = '\0';
        break;
    case M_NO_DOT:
        snprintf(out, cap, "%.*s%s", (int)plen, tok, dot + 1);
        break;
    case M_ONLY_DOT:
        snprintf(out, cap, ".");
        break;
    case M_NO_MAC:
        snprintf(out, cap, "%.*s.", (int)plen, tok);
        break;
    case M_NO_PAYLOAD:
        snprintf(out, cap, "%s", dot);
        break;
    case M_TRUNCATE_1:
        snprintf(out, cap, "%.*s", (int)(len - 1), tok);
        break;
    case M_TRUNCATE_HALF:
        snprintf(out, cap, "%.*s", (int)(len / 2), tok);
        break;
    case M_FLIP_PAYLOAD:
        snprintf(out, cap, "%s", tok);
        out[plen / 2] = out[plen / 2] == 'A' ? 'B' : 'A';
        break;
    case M_FLIP_MAC:
        snprintf(out, cap, "%s", tok);
        out[plen + 5] = out[plen + 5] == 'A' ? 'B' : 'A';
        break;
    case M_SECOND_DOT:
        snprintf(out, cap, "%s.%s", tok, dot + 1);
        break;
    case M_PADDED:
        snprintf(out, cap, "%s=", tok);
        break;
    case M_STD_ALPHABET:
        snprintf(out, cap, "%s", tok);
        out[1] = '+';
        break;
    case M_SPACE:
        snprintf(out, cap, "%.*s %s", (int)plen, tok, dot);
        break;
    case M_OTHER_KEY: {
        uint8_t other[CRYPTO_KEY_LEN];
        memcpy(other, key, sizeof other);
        other[31] ^= 0x80;
        cr_assert_gt(link_token_sign(other, &t, out, cap), 0);
        break;
    }
    case M_TOO_LONG:
        cr_assert_gt(cap, (size_t)LINK_TOKEN_TEXT_MAX + 1);
        memset(out, 'A', LINK_TOKEN_TEXT_MAX);
        out[LINK_TOKEN_TEXT_MAX] = '\0';
        memcpy(out + LINK_TOKEN_TEXT_MAX - 44, ".", 1);
        break;
    case M_SWAP_MAC: {
        struct link_token t2 = sample();
        snprintf(t2.target_url, sizeof t2.target_url, "https://evil.example/");
        char tok2[LINK_TOKEN_TEXT_MAX];
        sign_ok(&t2, tok2, sizeof tok2);
        char *dot2 = strchr(tok2, '.');
        snprintf(out, cap, "%.*s%s", (int)(dot2 - tok2), tok2, dot);
        break;
    }
    }
}

Test(link_token, bad_tokens_are_refused_with_the_right_verdict)
{
    for (size_t i = 0; i < sizeof bad_tokens / sizeof bad_tokens[0]; i++) {
        const struct bad_token *c = &bad_tokens[i];
        char tok[2 * LINK_TOKEN_TEXT_MAX];
        struct link_token got;
        mutate(c, tok, sizeof tok);
        memset(&got, 0x5a, sizeof got);
        enum link_token_result r = link_token_verify(key, tok, strlen(tok), c->now, &got);
        cr_expect_eq(r, c->want, "%s: got %d (%s), want %d", c->name, r, link_token_result_str(r),
                     c->want);
        cr_expect_eq(got.target_url[0], 0x5a, "%s: out must be untouched on refusal", c->name);
    }
}

/* Payloads signed with the right key but wrong inside: the signature alone
 * must not be what keeps a bad target or a bad layout out. */
struct bad_payload {
    const char *name;
    uint8_t version;
    unsigned long long exp;
    const char *fields[5];
    const char *trailer;
    enum link_token_result want;
};

static const struct bad_payload bad_payloads[] = {
    {"javascript target",
     1,
     NOW + 60,
     {"acme", "1", "l", "U1", "javascript:alert(1)"},
     NULL,
     LINK_TOKEN_BAD_TARGET},
    {"ftp target",
     1,
     NOW + 60,
     {"acme", "1", "l", "U1", "ftp://example.com/"},
     NULL,
     LINK_TOKEN_BAD_TARGET},
    {"data target",
     1,
     NOW + 60,
     {"acme", "1", "l", "U1", "data:text/html,hi"},
     NULL,
     LINK_TOKEN_BAD_TARGET},
    {"scheme-relative target",
     1,
     NOW + 60,
     {"acme", "1", "l", "U1", "//evil.example/"},
     NULL,
     LINK_TOKEN_BAD_TARGET},
    {"target without host",
     1,
     NOW + 60,
     {"acme", "1", "l", "U1", "https:///evil.example"},
     NULL,
     LINK_TOKEN_BAD_TARGET},
    {"target with backslash",
     1,
     NOW + 60,
     {"acme", "1", "l", "U1", "https://\\evil.example"},
     NULL,
     LINK_TOKEN_BAD_TARGET},
    {"target with CRLF",
     1,
     NOW + 60,
     {"acme", "1", "l", "U1", "https://a.example/\r\nX: y"},
     NULL,
     LINK_TOKEN_MALFORMED},
    {"empty target", 1, NOW + 60, {"acme", "1", "l", "U1", ""}, NULL, LINK_TOKEN_MALFORMED},
    {"unknown version",
     2,
     NOW + 60,
     {"acme", "1", "l", "U1", "https://a.example/"},
     NULL,
     LINK_TOKEN_MALFORMED},
    {"zero expiry",
     1,
     0,
     {"acme", "1", "l", "U1", "https://a.example/"},
     NULL,
     LINK_TOKEN_MALFORMED},
    {"negative expiry",
     1,
     0x8000000000000000ULL,
     {"acme", "1", "l", "U1", "https://a.example/"},
     NULL,
     LINK_TOKEN_MALFORMED},
    {"trailing bytes",
     1,
     NOW + 60,
     {"acme", "1", "l", "U1", "https://a.example/"},
     "x",
     LINK_TOKEN_MALFORMED},
    {"empty tenant",
     1,
     NOW + 60,
     {"", "1", "l", "U1", "https://a.example/"},
     NULL,
     LINK_TOKEN_MALFORMED},
    {"empty channel",
     1,
     NOW + 60,
     {"acme", "", "l", "U1", "https://a.example/"},
     NULL,
     LINK_TOKEN_MALFORMED},
    {"empty link id",
     1,
     NOW + 60,
     {"acme", "1", "", "U1", "https://a.example/"},
     NULL,
     LINK_TOKEN_MALFORMED},
    {"control character in tenant",
     1,
     NOW + 60,
     {"ac\x01me", "1", "l", "U1", "https://a/"},
     NULL,
     LINK_TOKEN_MALFORMED},
};

Test(link_token, signed_payloads_with_bad_contents_are_refused)
{
    for (size_t i = 0; i < sizeof bad_payloads / sizeof bad_payloads[0]; i++) {
        const struct bad_payload *c = &bad_payloads[i];
        uint8_t payload[4096];
        char tok[LINK_TOKEN_TEXT_MAX * 2];
        size_t n = payload_v1(payload, c->version, c->exp, c->fields, c->trailer);
        craft(payload, n, tok, sizeof tok);
        struct link_token got;
        enum link_token_result r = link_token_verify(key, tok, strlen(tok), NOW, &got);
        cr_expect_eq(r, c->want, "%s: got %d (%s), want %d", c->name, r, link_token_result_str(r),
                     c->want);
    }
}

Test(link_token, truncated_payload_lengths_are_refused)
{
    /* Every strict prefix of a valid payload, correctly signed, is refused:
     * a length field never reads past the end. */
    const char *fields[5] = {"acme", "1660000000", "l1", "U1", "https://a.example/p"};
    uint8_t payload[512];
    size_t n = payload_v1(payload, 1, NOW + 60, fields, NULL);
    for (size_t cut = 1; cut < n; cut++) {
        char tok[LINK_TOKEN_TEXT_MAX];
        struct link_token got;
        craft(payload, cut, tok, sizeof tok);
        cr_expect_eq(link_token_verify(key, tok, strlen(tok), NOW, &got), LINK_TOKEN_MALFORMED,
                     "prefix of %zu bytes", cut);
    }
}

/* --- bad inputs to signing ------------------------------------------------- */

struct bad_sign {
    const char *name;
    const char *tenant, *channel, *link, *friend_id, *url;
    long long exp;
    long want;
};

static const struct bad_sign bad_signs[] = {
    {"empty tenant", "", "1", "l", "U", "https://a.example/", NOW, LINK_TOKEN_MALFORMED},
    {"empty channel", "acme", "", "l", "U", "https://a.example/", NOW, LINK_TOKEN_MALFORMED},
    {"empty link id", "acme", "1", "", "U", "https://a.example/", NOW, LINK_TOKEN_MALFORMED},
    {"no expiry", "acme", "1", "l", "U", "https://a.example/", 0, LINK_TOKEN_MALFORMED},
    {"tab in link id", "acme", "1", "l\t1", "U", "https://a.example/", NOW, LINK_TOKEN_MALFORMED},
    {"mailto target", "acme", "1", "l", "U", "mailto:a@example.com", NOW, LINK_TOKEN_BAD_TARGET},
    {"relative target", "acme", "1", "l", "U", "/local/path", NOW, LINK_TOKEN_BAD_TARGET},
    {"space in target", "acme", "1", "l", "U", "https://a.example/a b", NOW, LINK_TOKEN_BAD_TARGET},
    {"non-ASCII target", "acme", "1", "l", "U", "https://a.example/\xe3\x81\x82", NOW,
     LINK_TOKEN_BAD_TARGET},
    {"userinfo-only host", "acme", "1", "l", "U", "https://@evil.example/", NOW,
     LINK_TOKEN_BAD_TARGET},
};

Test(link_token, sign_refuses_bad_fields)
{
    for (size_t i = 0; i < sizeof bad_signs / sizeof bad_signs[0]; i++) {
        const struct bad_sign *c = &bad_signs[i];
        struct link_token t;
        memset(&t, 0, sizeof t);
        snprintf(t.tenant_id, sizeof t.tenant_id, "%s", c->tenant);
        snprintf(t.channel_id, sizeof t.channel_id, "%s", c->channel);
        snprintf(t.link_id, sizeof t.link_id, "%s", c->link);
        snprintf(t.friend_user_id, sizeof t.friend_user_id, "%s", c->friend_id);
        snprintf(t.target_url, sizeof t.target_url, "%s", c->url);
        t.expires_at = c->exp;
        char tok[LINK_TOKEN_TEXT_MAX];
        cr_expect_eq(link_token_sign(key, &t, tok, sizeof tok), c->want, "%s", c->name);
    }
}

Test(link_token, url_check_accepts_http_and_https_only)
{
    static const struct {
        const char *url;
        bool ok;
    } cases[] = {
        {"https://example.com", true},
        {"http://example.com/a?b=c#d", true},
        {"HTTPS://EXAMPLE.COM/", true},
        {"https://", false},
        {"https:example.com", false},
        {"https://?q", false},
        {"javascript://example.com/%0aalert(1)", false},
        {"", false},
        {NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(link_token_url_ok(cases[i].url), cases[i].ok, "%s",
                     cases[i].url ? cases[i].url : "(null)");
}
