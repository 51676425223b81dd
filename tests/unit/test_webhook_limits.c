/* webhook_parse refuses an event whose record could never be produced: key
 * and packed WebhookEvent over KAFKA_RECORD_MAX_BYTES (common/kafka_limits.h)
 * give WEBHOOK_PARSE_TOO_LARGE, naming the event and the limit, and nothing
 * of the batch is kept; an event just under the limit is accepted whole. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/webhook_parse.h"
#include "kafka_limits.h"

#define DEST "U3f9e2b1c7d6a5e4f3b2c1d0e9f8a7b6c"

static const struct webhook_context ctx = {"tenant-limits", "1234567890", 1767225660000LL};

/* A body with one small event, then one of an unmapped type carrying pad
 * bytes of padding (kept whole as raw JSON); the caller frees it. */
static char *body_with_pad(size_t pad, size_t *len)
{
    size_t cap = pad + 512;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    size_t off = (size_t)snprintf(body, cap,
                                  "{\"destination\":\"" DEST "\",\"events\":["
                                  "{\"type\":\"unfollow\",\"webhookEventId\":\"A\"},"
                                  "{\"type\":\"x-large\",\"webhookEventId\":\"B\",\"pad\":\"");
    memset(body + off, 'p', pad);
    off += pad;
    off += (size_t)snprintf(body + off, cap - off, "\"}]}");
    *len = off;
    return body;
}

Test(webhook_limits, an_event_over_the_record_limit_is_refused_as_too_large)
{
    size_t len;
    char *body = body_with_pad(KAFKA_RECORD_MAX_BYTES, &len);
    struct webhook_batch batch;
    char err[256];
    memset(&batch, 0xA5, sizeof batch);
    cr_assert_eq(webhook_parse(body, len, &ctx, &batch, err, sizeof err), WEBHOOK_PARSE_TOO_LARGE,
                 "%s", err);
    cr_expect_eq(batch.n, 0);
    cr_expect_null(batch.records);
    cr_expect(strstr(err, "events[1]") && strstr(err, "1000000"), "the reason: %s", err);
    free(body);
}

Test(webhook_limits, an_event_just_under_the_record_limit_is_accepted_whole)
{
    /* Raw JSON, envelope, fields and key fit in 1,000 bytes. */
    size_t len;
    char *body = body_with_pad(KAFKA_RECORD_MAX_BYTES - 1000, &len);
    struct webhook_batch batch;
    char err[256];
    cr_assert_eq(webhook_parse(body, len, &ctx, &batch, err, sizeof err), 0, "%s", err);
    cr_assert_eq(batch.n, 2);
    size_t bytes = batch.records[1].len + strlen(batch.records[1].key);
    cr_expect_leq(bytes, KAFKA_RECORD_MAX_BYTES);
    cr_expect_gt(bytes, KAFKA_RECORD_MAX_BYTES - 1000, "raw JSON kept whole: %zu", bytes);
    webhook_batch_free(&batch);
    free(body);
}
