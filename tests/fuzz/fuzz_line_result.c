/* libFuzzer target for LINE's answers as line_result_classify
 * (services/dispatcher/line_result.c) reads them: status, the
 * x-line-request-id, x-line-accepted-request-id and Retry-After headers,
 * and the body, for every kind of send and every transport outcome.
 *
 * Input: kind (1 byte), transport (1 byte, mostly 0 = a response), the
 * HTTP status (2 bytes, big-endian, not limited to 100..599), then the
 * three header values, each ended by a NUL (an empty one counts as
 * absent; a missing NUL ends the input there), then the body.
 * Contract: 0 with every string set, valid UTF-8 and within its cap,
 * header copies in visible ASCII, at most 16 details and 16 sent
 * messages, no error text when SENT, a profile only for a PROFILE that was
 * SENT, retry_after_ns -1 or >= 0; and the DeliveryResult made from it
 * packs and unpacks. */
#include <stdbool.h>

#include "dispatcher/line_result.h"
#include "fuzz.h"
#include "utf8.h"

#define FUZZ_NOW_NS (1767225600LL * 1000000000LL)

static bool text_ok(const char *s, size_t max)
{
    return s && strlen(s) <= max && utf8_valid(s, strlen(s));
}

static bool header_ok(const char *s)
{
    if (!text_ok(s, 128))
        return false;
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

/* The next NUL-terminated field of the input, or NULL when empty. */
static const char *field(const char **p, const char *end)
{
    const char *start = *p;
    const char *nul = memchr(start, '\0', (size_t)(end - start));
    if (!nul) {
        *p = end;
        return NULL;
    }
    *p = nul + 1;
    return nul == start ? NULL : start;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    /* One copy with a NUL after it, so the header fields stay strings. */
    char *copy = fuzz_strndup(data, size);
    struct line_response resp = {
        .kind = (Kizuna__V1__SendKind)(data[0] % 12),
        .transport = (enum line_transport)(data[1] < 0xf0 ? 0 : data[1] - 0xf0),
        .status = data[2] << 8 | data[3],
        .now_ns = FUZZ_NOW_NS,
    };
    const char *p = copy + 4, *end = copy + size;
    resp.request_id = field(&p, end);
    resp.accepted_request_id = field(&p, end);
    resp.retry_after = field(&p, end);
    /* The body in its own exact buffer: the classifier must not read past
     * body_len (it need not be NUL-terminated). */
    size_t body_len = (size_t)(end - p);
    char *body = body_len ? (char *)fuzz_memdup((const uint8_t *)p, body_len) : NULL;
    resp.body = body;
    resp.body_len = body_len;

    struct line_result r;
    FUZZ_CHECK(line_result_classify(&resp, &r) == 0);
    FUZZ_CHECK((int)r.outcome >= LINE_OUTCOME_SENT && (int)r.outcome <= LINE_OUTCOME_FINAL);
    FUZZ_CHECK(line_outcome_name(r.outcome) != NULL);
    FUZZ_CHECK(header_ok(r.line_request_id) && header_ok(r.accepted_request_id));
    FUZZ_CHECK(text_ok(r.error_message, 1000));
    FUZZ_CHECK(r.retry_after_ns >= -1);
    FUZZ_CHECK(r.n_details <= LINE_RESULT_DETAILS_MAX && r.n_sent <= LINE_RESULT_SENT_MAX);
    for (size_t i = 0; i < r.n_details; i++)
        FUZZ_CHECK(text_ok(r.details[i].message, 1000) && text_ok(r.details[i].property, 1000));
    for (size_t i = 0; i < r.n_sent; i++)
        FUZZ_CHECK(text_ok(r.sent[i].id, 128) && text_ok(r.sent[i].quote_token, 1000));
    if (r.outcome == LINE_OUTCOME_SENT)
        FUZZ_CHECK(r.error_message[0] == '\0');
    if (r.profile) {
        FUZZ_CHECK(resp.kind == KIZUNA__V1__SEND_KIND__SEND_KIND_PROFILE &&
                   r.outcome == LINE_OUTCOME_SENT);
        FUZZ_CHECK(text_ok(r.profile->user_id, 128) && r.profile->user_id[0]);
        FUZZ_CHECK(text_ok(r.profile->display_name, 1000));
        FUZZ_CHECK(text_ok(r.profile->picture_url, 2048));
        FUZZ_CHECK(text_ok(r.profile->status_message, 1000));
        FUZZ_CHECK(text_ok(r.profile->language, 64));
    }

    Kizuna__V1__DeliveryResult d = KIZUNA__V1__DELIVERY_RESULT__INIT;
    line_result_to_delivery(&r, &d);
    size_t n = kizuna__v1__delivery_result__get_packed_size(&d);
    uint8_t *packed = malloc(n ? n : 1);
    if (!packed)
        abort();
    FUZZ_CHECK(kizuna__v1__delivery_result__pack(&d, packed) == n);
    Kizuna__V1__DeliveryResult *back = kizuna__v1__delivery_result__unpack(NULL, n, packed);
    FUZZ_CHECK(back != NULL && back->status == r.status && back->n_error_details == r.n_details);
    kizuna__v1__delivery_result__free_unpacked(back, NULL);
    free(packed);

    line_result_clear(&r);
    line_result_clear(&r);
    free(body);
    free(copy);
    return 0;
}
