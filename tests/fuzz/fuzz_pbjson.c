/* libFuzzer target for pbjson (common/pbjson.c): any record of any topic,
 * as `kizunactl topics tail` shows it, is unpacked by message type name and
 * written as JSON by walking the descriptors.
 *
 * Input: a type byte (it picks one of the top-level events or the envelope,
 * modulo their count), then the record's bytes.
 * Contract: pbjson_decode_bytes gives a message, or NULL with a reason;
 * a message always encodes (every string field, valid UTF-8 or not), and
 * the text is one JSON object that jansson parses back. */
#include <jansson.h>

#include "fuzz.h"
#include "pbjson.h"

static const char *const types[] = {
    "kizuna.v1.WebhookEvent",   "kizuna.v1.InboundEvent", "kizuna.v1.ChannelConfig",
    "kizuna.v1.FriendEvent",    "kizuna.v1.DueEvent",     "kizuna.v1.SendRequest",
    "kizuna.v1.DeliveryResult", "kizuna.v1.Envelope",     "kizuna.v1.TextMessageContent",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *type = types[data[0] % (sizeof types / sizeof types[0])];
    uint8_t *bytes = fuzz_memdup(data + 1, size - 1);
    char errstr[256];
    memset(errstr, 'x', sizeof errstr);
    ProtobufCMessage *msg = pbjson_decode_bytes(type, bytes, size - 1, errstr, sizeof errstr);
    if (!msg) {
        FUZZ_CHECK(fuzz_terminated(errstr, sizeof errstr) && errstr[0]);
    } else {
        char *text = pbjson_encode(msg);
        FUZZ_CHECK(text != NULL);
        json_error_t jerr;
        json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
            fprintf(stderr, "fuzz: not JSON: %s\n", jerr.text);
        FUZZ_CHECK(j && json_is_object(j));
        json_decref(j);
        free(text);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    free(bytes);
    return 0;
}
