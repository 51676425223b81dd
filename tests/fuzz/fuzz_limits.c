/* libFuzzer target for the channel limits input: the body of PATCH
 * /v1/channels/{id}/limits on the dispatcher's admin API, parsed by
 * limits_parse() in services/dispatcher/api.c, and the rates it accepts as
 * the limiter then uses them (ratelimit_bucket_init, ratelimit_bucket_take).
 *
 * limits_parse is static and its file also needs a database for the rest,
 * so this target includes api.c itself: the parser is reached exactly as
 * the route calls it, with nothing copied. (The rest of api.c links
 * against the dispatcher's library and is never called.)
 *
 * Contract: a count of 1..RATELIMIT_CLASS_COUNT changes, each a reset or a
 * rate that ratelimit_rate_check accepts and a bucket can be built from,
 * with resp untouched; or -1 with a 400 whose body is valid JSON of the
 * project's error form ({"error":{"code":"...", ...}}). */
#include "dispatcher/api.c"

#include "fuzz.h"

static void resp_free(struct httpd_response *r)
{
    free(r->body);
    for (int i = 0; i < r->nheaders && i < HTTPD_MAX_HEADERS; i++) {
        free(r->header_names[i]);
        free(r->header_values[i]);
    }
    memset(r, 0, sizeof *r);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_init("fuzz-limits", LOG_ERROR);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = (char *)fuzz_memdup(data, size);
    struct limit_change changes[RATELIMIT_CLASS_COUNT];
    struct httpd_response resp = {0};
    int n = limits_parse(body, size, changes, &resp);
    if (n < 0) {
        FUZZ_CHECK(n == -1 && resp.status == 400 && resp.body && resp.body_len > 0);
        json_t *j = json_loadb(resp.body, resp.body_len, JSON_REJECT_DUPLICATES, NULL);
        FUZZ_CHECK(j != NULL);
        FUZZ_CHECK(json_is_string(json_object_get(json_object_get(j, "error"), "code")));
        json_decref(j);
    } else {
        FUZZ_CHECK(n >= 1 && n <= RATELIMIT_CLASS_COUNT);
        FUZZ_CHECK(resp.status == 0 && resp.body == NULL);
        for (int i = 0; i < n; i++) {
            FUZZ_CHECK((int)changes[i].cls >= 0 && (int)changes[i].cls < RATELIMIT_CLASS_COUNT);
            if (changes[i].reset)
                continue;
            char errstr[256];
            struct ratelimit_bucket b;
            FUZZ_CHECK(ratelimit_rate_check(&changes[i].rate, errstr, sizeof errstr) == 0);
            FUZZ_CHECK(ratelimit_bucket_init(&b, &changes[i].rate, errstr, sizeof errstr) == 0);
            FUZZ_CHECK(b.interval_ns >= 0 && b.tolerance_ns >= 0);
            int64_t t = 1767225600LL * 1000000000LL;
            for (int k = 0; k < 3; k++)
                FUZZ_CHECK(ratelimit_bucket_take(&b, t) >= 0);
        }
    }
    resp_free(&resp);
    free(body);
    return 0;
}
