/* libFuzzer target for the quota sync: LINE's answers to GET
 * /v2/bot/message/quota ({"type":"limited","value":N} or {"type":"none"})
 * and GET /v2/bot/message/quota/consumption ({"totalUsage":N}), read by
 * sender_quota_sync_done (services/dispatcher/sender_quota.c) into the
 * channel's month (services/dispatcher/quota.c), and what the sender then
 * does with the numbers: reserve sends, release them, read the limit.
 *
 * Input: a flags byte (bit 0: the consumption call, else the quota call;
 * bit 1: answered 200, else 500; bit 2: the month was already set up), the
 * contract quota (8 bytes, big-endian, any value: refused ones leave the
 * month unset), the warning percent (1 byte), a cost for the sends after
 * the sync (2 bytes), then LINE's body.
 * Contract: the month's usage never goes negative and never goes down
 * through a sync, reserving never counts more than asked, and every
 * decision is one of the three; UBSan checks the arithmetic on LINE's
 * numbers (any JSON integer up to 2^63 - 1). */
#include <stdbool.h>

#include "dispatcher/sender_private.h"
#include "fuzz.h"
#include "log.h"

static struct quota_zone *zone;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_init("fuzz-quota", LOG_ERROR);
    char errstr[256];
    zone = quota_zone_load("UTC", NULL, errstr, sizeof errstr);
    if (!zone) {
        fprintf(stderr, "fuzz: UTC zone: %s\n", errstr);
        abort();
    }
    return 0;
}

static int64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 12)
        return 0;
    uint8_t flags = data[0];
    long long contract = be64(data + 1);
    int warn = data[9];
    long long cost = data[10] << 8 | data[11];
    int64_t now = clock_wall_ms() / 1000;

    static struct sender s; /* sync_done uses its metrics only; NULL ones are skipped */
    struct chan *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    snprintf(c->id, sizeof c->id, "1234567890");
    c->line_limit = QUOTA_NONE;
    c->sync_inflight = 1;
    if (flags & 4) {
        struct quota_limits lim = {.contract = contract, .line = QUOTA_NONE, .warn_percent = warn};
        char errstr[256];
        c->quota_ready =
            quota_state_init(&c->quota, zone, &lim, 0, now, errstr, sizeof errstr) == 0;
    }
    long long used_before = c->quota.used;

    struct transfer *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->kind = (flags & 1) ? TRANSFER_CONSUMPTION : TRANSFER_QUOTA;
    t->chan = c;
    t->body_len = size - 12;
    t->body = (char *)fuzz_memdup(data + 12, t->body_len);
    sender_quota_sync_done(&s, t, (flags & 2) ? 200 : 500);
    FUZZ_CHECK(c->sync_inflight == 0);
    FUZZ_CHECK(c->line_limit >= QUOTA_NONE);

    if (c->quota_ready) {
        struct quota_state *q = &c->quota;
        FUZZ_CHECK(q->used >= used_before && q->used >= 0);
        (void)quota_effective_limit(q);
        for (int i = 0; i < 3; i++) {
            long long reserved = -1;
            int64_t month = 0;
            long long before = q->used;
            int d = quota_reserve(q, cost, i == 1, now, &reserved, &month);
            FUZZ_CHECK(d == QUOTA_ALLOWED || d == QUOTA_WARN || d == QUOTA_EXCEEDED);
            FUZZ_CHECK(reserved >= 0 && reserved <= cost);
            FUZZ_CHECK(q->used >= before && q->used >= 0);
            if (i == 2)
                quota_release(q, reserved, month);
            FUZZ_CHECK(q->used >= 0);
        }
        quota_mark_exhausted(q, now);
        FUZZ_CHECK(quota_reserve(q, 1, false, now, NULL, NULL) == QUOTA_EXCEEDED);
    }
    free(t->body);
    free(t);
    free(c);
    return 0;
}
