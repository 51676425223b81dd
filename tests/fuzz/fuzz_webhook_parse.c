/* libFuzzer target for the webhook body parser, the first code that reads
 * bytes from the network after the signature check. Under ASan and UBSan it
 * finds memory errors, undefined behaviour and (with LeakSanitizer) leaks on
 * any path, including the refusal paths. It also checks the contract's
 * promises on every input, and traps when one is broken:
 *   - refused: -1, an empty batch, and a NUL-terminated reason in printable
 *     ASCII (it never echoes body bytes into logs or the 400 answer);
 *   - accepted: every record unpacks as a WebhookEvent whose oneof is set,
 *     whose envelope is there and whose key starts with "<channel_id>:".
 * Built and run by tests/fuzz/run.sh. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ingest/webhook_parse.h"
#include "kizuna/v1/webhook.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct webhook_context ctx = {"tenant-fuzz", "1234567890", 1767225660000LL};
    struct webhook_batch batch;
    char err[256];

    memset(err, 'x', sizeof err);
    int rc = webhook_parse((const char *)data, size, &ctx, &batch, err, sizeof err);
    if (rc != 0) {
        if ((rc != -1 && rc != WEBHOOK_PARSE_TOO_LARGE) || batch.n != 0 || batch.records != NULL ||
            memchr(err, '\0', sizeof err) == NULL || err[0] == '\0')
            __builtin_trap();
        for (const char *c = err; *c; c++) {
            if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
                __builtin_trap();
        }
        webhook_batch_free(&batch);
        return 0;
    }
    for (size_t i = 0; i < batch.n; i++) {
        const struct webhook_record *rec = &batch.records[i];
        Kizuna__V1__WebhookEvent *we =
            kizuna__v1__webhook_event__unpack(NULL, rec->len, rec->payload);
        if (!we || !we->envelope || we->event_case == KIZUNA__V1__WEBHOOK_EVENT__EVENT__NOT_SET ||
            strncmp(rec->key, "1234567890:", 11) != 0 || strcmp(we->type, rec->type) != 0)
            __builtin_trap();
        kizuna__v1__webhook_event__free_unpacked(we, NULL);
    }
    webhook_batch_free(&batch);
    return 0;
}
