/* libFuzzer target for the channel registry's input
 * (services/ingest/registry_input.c): the JSON body of POST and PATCH
 * /v1/channels, which carries a tenant's channel secret and access token.
 *
 * Input: one mode byte, then the body.
 *   bit 0: PATCH rather than POST;
 *   bit 1: check time zones against /usr/share/zoneinfo rather than by
 *          pattern only.
 * Contract: 0, with every present field NUL-terminated and within its
 * rule (digits, no control characters, printable credentials, "U" + 32 hex
 * digits, a zone pattern), the required ones present on POST and at least
 * one on PATCH; or -1 with status 400, a code, a NUL-terminated message,
 * and the struct wiped to zeros (it may have held secrets). */
#include <stdbool.h>

#include "fuzz.h"
#include "ingest/registry_input.h"

static bool printable(const char *s, bool spaces)
{
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f || (!spaces && (c == ' ' || c >= 0x80)))
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum registry_input_mode mode = (data[0] & 1) ? REGISTRY_INPUT_PATCH : REGISTRY_INPUT_CREATE;
    const char *zoneinfo = (data[0] & 2) ? "/usr/share/zoneinfo" : NULL;
    char *body = (char *)fuzz_memdup(data + 1, size - 1);
    struct registry_input in;
    struct registry_input_error err;
    memset(&in, 0x5a, sizeof in);
    int rc = registry_input_parse(body, size - 1, mode, zoneinfo, &in, &err);
    if (rc != 0) {
        FUZZ_CHECK(rc == -1);
        FUZZ_CHECK(err.status == 400 && err.code && err.code[0]);
        FUZZ_CHECK(fuzz_terminated(err.message, sizeof err.message) && err.message[0]);
        FUZZ_CHECK(fuzz_terminated(err.field, sizeof err.field));
        static const struct registry_input zero;
        FUZZ_CHECK(memcmp(&in, &zero, sizeof in) == 0);
    } else {
        unsigned p = in.present;
        FUZZ_CHECK(p != 0);
        if (mode == REGISTRY_INPUT_CREATE)
            FUZZ_CHECK((p & 0x7f) == 0x7f);
        else
            FUZZ_CHECK(!(p & REGISTRY_F_CHANNEL_ID));
        if (p & REGISTRY_F_CHANNEL_ID)
            FUZZ_CHECK(registry_channel_id_valid(in.channel_id));
        if (p & REGISTRY_F_NAME)
            FUZZ_CHECK(fuzz_terminated(in.name, sizeof in.name) && in.name[0] &&
                       printable(in.name, true));
        if (p & REGISTRY_F_SECRET)
            FUZZ_CHECK(fuzz_terminated(in.channel_secret, sizeof in.channel_secret) &&
                       in.channel_secret[0] && printable(in.channel_secret, false));
        if (p & REGISTRY_F_TOKEN)
            FUZZ_CHECK(fuzz_terminated(in.access_token, sizeof in.access_token) &&
                       in.access_token[0] && printable(in.access_token, false));
        if (p & REGISTRY_F_BOT_USER_ID)
            FUZZ_CHECK(strlen(in.bot_user_id) == REGISTRY_BOT_USER_ID_LEN &&
                       in.bot_user_id[0] == 'U');
        if (p & REGISTRY_F_TIMEZONE)
            FUZZ_CHECK(registry_timezone_valid(in.timezone, zoneinfo));
        if (p & REGISTRY_F_QUOTA)
            FUZZ_CHECK(in.monthly_quota >= 0);
        registry_input_wipe(&in);
    }
    free(body);
    return 0;
}
