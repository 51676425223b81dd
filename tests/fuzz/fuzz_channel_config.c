/* libFuzzer target for a ChannelConfig record read from Kafka (the
 * compacted `channels` topic) through channels_apply
 * (services/dispatcher/channels.c): the record's key and value as the
 * follower hands them over.
 *
 * Input: a flags byte, a key length byte, the key, then the value.
 *   bit 0: if the value unpacks, its access_token_sealed bytes are sealed
 *          under the target's data key for "<tenant>/<channel>" first, so
 *          that mutations reach the opened-token path, not only the
 *          refusal of a box that does not open;
 *   bit 1: apply the record a second time (same version: ignored);
 *   bit 2: then apply a tombstone for the key.
 * Each input gets a fresh table. Contract: apply returns 1, 0 or -1 (then
 * with a reason); after a 1 the channel is found, its tenant is non-empty
 * and NUL-terminated, its token NUL-terminated and, when it opened, equal
 * to what was sealed; a repeat returns 0; a tombstone leaves the channel
 * deleted with an empty token. */
#include <stdbool.h>

#include "dispatcher/channels.h"
#include "fuzz.h"
#include "kizuna/v1/channel.pb-c.h"
#include "log.h"

static const uint8_t fuzz_key[CRYPTO_KEY_LEN] = "kizuna-fuzz-data-key-0123456789";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_init("fuzz-channels", LOG_ERROR);
    return 0;
}

/* value with its token sealed; malloc'd, or NULL when it does not unpack.
 * The associated data names the channel as channels_apply will: the
 * value's channel_id, else the key. *plain gets the sealed text (malloc'd,
 * NUL-terminated). */
static uint8_t *reseal(const uint8_t *value, size_t len, const uint8_t *key, size_t keylen,
                       size_t *out_len, char **plain)
{
    Kizuna__V1__ChannelConfig *cfg = kizuna__v1__channel_config__unpack(NULL, len, value);
    if (!cfg)
        return NULL;
    size_t plen = cfg->access_token_sealed.len;
    *plain = fuzz_strndup(cfg->access_token_sealed.data, plen);
    uint8_t *box = malloc(plen + CRYPTO_SEAL_OVERHEAD);
    char aad[512];
    const char *cid = cfg->channel_id ? cfg->channel_id : "";
    int alen = cid[0]
                   ? snprintf(aad, sizeof aad, "%s/%s", cfg->tenant_id ? cfg->tenant_id : "", cid)
                   : snprintf(aad, sizeof aad, "%s/%.*s", cfg->tenant_id ? cfg->tenant_id : "",
                              (int)keylen, key ? (const char *)key : "");
    if (!box || alen < 0 || (size_t)alen >= sizeof aad)
        alen = 0;
    long n = box ? crypto_seal(fuzz_key, aad, (size_t)alen, cfg->access_token_sealed.data, plen,
                               box, plen + CRYPTO_SEAL_OVERHEAD)
                 : -1;
    if (n > 0) {
        free(cfg->access_token_sealed.data);
        cfg->access_token_sealed.data = box;
        cfg->access_token_sealed.len = (size_t)n;
        box = NULL;
    }
    free(box);
    *out_len = kizuna__v1__channel_config__get_packed_size(cfg);
    uint8_t *out = malloc(*out_len ? *out_len : 1);
    if (!out)
        abort();
    kizuna__v1__channel_config__pack(cfg, out);
    kizuna__v1__channel_config__free_unpacked(cfg, NULL);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t flags = data[0];
    size_t keylen = data[1] < size - 2 ? data[1] : size - 2;
    uint8_t *key = keylen ? fuzz_memdup(data + 2, keylen) : NULL;
    size_t vlen = size - 2 - keylen;
    uint8_t *value = vlen ? fuzz_memdup(data + 2 + keylen, vlen) : NULL;
    char *plain = NULL;
    if ((flags & 1) && value) {
        size_t n = 0;
        uint8_t *sealed = reseal(value, vlen, key, keylen, &n, &plain);
        if (sealed) {
            free(value);
            value = sealed;
            vlen = n;
        }
    }

    struct channels *t = channels_new(fuzz_key);
    FUZZ_CHECK(t != NULL);
    char errstr[256];
    memset(errstr, 'x', sizeof errstr);
    int rc = channels_apply(t, key, keylen, value, vlen, errstr, sizeof errstr);
    FUZZ_CHECK(rc >= -1 && rc <= 1);
    if (rc < 0)
        FUZZ_CHECK(fuzz_terminated(errstr, sizeof errstr) && errstr[0]);

    /* Which id the record was stored under: the value's channel_id, else
     * the key. */
    char id[CHANNEL_ID_MAX + 1] = "";
    if (rc == 1 && value) {
        Kizuna__V1__ChannelConfig *cfg = kizuna__v1__channel_config__unpack(NULL, vlen, value);
        FUZZ_CHECK(cfg != NULL);
        const char *cid = cfg->channel_id && cfg->channel_id[0] ? cfg->channel_id : NULL;
        if (cid)
            snprintf(id, sizeof id, "%s", cid);
        else if (keylen)
            snprintf(id, sizeof id, "%.*s", (int)keylen, (const char *)key);
        struct channel_creds *cr = malloc(sizeof *cr);
        if (!cr)
            abort();
        FUZZ_CHECK(channels_lookup(t, id, cr) == 0);
        FUZZ_CHECK(fuzz_terminated(cr->tenant_id, sizeof cr->tenant_id) && cr->tenant_id[0]);
        FUZZ_CHECK(fuzz_terminated(cr->timezone, sizeof cr->timezone));
        FUZZ_CHECK(fuzz_terminated(cr->token, sizeof cr->token));
        FUZZ_CHECK(cr->deleted == cfg->deleted && cr->monthly_quota >= 0);
        if (cr->token_ok) {
            FUZZ_CHECK(!cr->deleted && cr->token[0]);
            if (plain)
                FUZZ_CHECK(strcmp(cr->token, plain) == 0);
        } else {
            FUZZ_CHECK(cr->token[0] == '\0');
        }
        channels_creds_wipe(cr);
        free(cr);
        kizuna__v1__channel_config__free_unpacked(cfg, NULL);
        if (flags & 2)
            FUZZ_CHECK(channels_apply(t, key, keylen, value, vlen, errstr, sizeof errstr) == 0);
    }
    if ((flags & 4) && keylen > 0) {
        rc = channels_apply(t, key, keylen, NULL, 0, errstr, sizeof errstr);
        FUZZ_CHECK(rc >= -1 && rc <= 1);
        struct channel_creds *cr = malloc(sizeof *cr);
        if (!cr)
            abort();
        char kid[CHANNEL_ID_MAX + 1] = "";
        if (keylen <= CHANNEL_ID_MAX)
            snprintf(kid, sizeof kid, "%.*s", (int)keylen, (const char *)key);
        if (rc == 1) {
            FUZZ_CHECK(channels_lookup(t, kid, cr) == 0);
            FUZZ_CHECK(cr->deleted && !cr->token_ok && cr->token[0] == '\0');
        }
        free(cr);
    }
    channels_free(&t);
    FUZZ_CHECK(t == NULL);
    free(plain);
    free(value);
    free(key);
    return 0;
}
