/* libFuzzer target for a SendRequest read from Kafka (the `sends` topic)
 * through line_request_build (services/dispatcher/line_request.c): the
 * input is the record's value, unpacked as kizuna.v1.SendRequest exactly as
 * the intake does, then built into LINE's call twice (reply token unused
 * and used, so both reply paths run).
 *
 * Contract on LINE_REQUEST_OK: the path is under /v2/bot/ and holds no
 * byte outside RFC 3986's unreserved set and '/'; 1 to 3 header lines, each
 * "Name: value" without CR, LF or control characters, the first one the
 * Authorization; a body, when there is one, of body_len bytes (no NUL in
 * it), at most LINE's 2 MB, that parses as one JSON object without
 * duplicate keys; a retry key only on kinds that take one. On an error:
 * one of the documented codes, a reason, and *out left empty. */
#include <jansson.h>
#include <stdbool.h>

#include "dispatcher/line_request.h"
#include "fuzz.h"

#define FUZZ_NOW_MS 1767225660000LL

static const char fuzz_token[] = "fuzzAccessToken0123456789+/=";

static bool path_ok(const char *p)
{
    if (strncmp(p, "/v2/bot/", 8) != 0)
        return false;
    for (; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~' || c == '/'))
            return false;
    }
    return true;
}

static bool header_ok(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h || colon[1] != ' ')
        return false;
    for (const char *p = h; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static void check(const Kizuna__V1__SendRequest *req, bool used)
{
    struct line_request_opts opts = {.now_ms = FUZZ_NOW_MS, .reply_token_used = used};
    struct line_request r;
    char errstr[256];
    memset(errstr, 'x', sizeof errstr);
    int rc = line_request_build(req, fuzz_token, &opts, &r, errstr, sizeof errstr);
    if (rc != LINE_REQUEST_OK) {
        static const struct line_request empty;
        FUZZ_CHECK(rc == LINE_REQUEST_EINVAL || rc == LINE_REQUEST_EREPLY ||
                   rc == LINE_REQUEST_ENOMEM);
        FUZZ_CHECK(memcmp(&r, &empty, sizeof r) == 0);
        FUZZ_CHECK(fuzz_terminated(errstr, sizeof errstr) && errstr[0]);
        return;
    }
    FUZZ_CHECK(r.path && path_ok(r.path));
    FUZZ_CHECK(r.method == LINE_GET || r.method == LINE_POST || r.method == LINE_DELETE);
    FUZZ_CHECK(r.nheaders >= 1 && r.nheaders <= LINE_REQUEST_HEADERS_MAX);
    FUZZ_CHECK(strncmp(r.headers[0], "Authorization: Bearer ", 22) == 0);
    for (size_t i = 0; i < r.nheaders; i++)
        FUZZ_CHECK(r.headers[i] && header_ok(r.headers[i]));
    if (r.body) {
        FUZZ_CHECK(r.body_len > 0 && r.body_len <= LINE_BODY_MAX);
        FUZZ_CHECK(strlen(r.body) == r.body_len);
        json_error_t jerr;
        json_t *j = json_loadb(r.body, r.body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
            fprintf(stderr, "fuzz: body is not JSON: %s\n", jerr.text);
        FUZZ_CHECK(j && json_is_object(j));
        json_decref(j);
    } else {
        FUZZ_CHECK(r.body_len == 0);
    }
    bool retry_kind = r.kind == KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH ||
                      r.kind == KIZUNA__V1__SEND_KIND__SEND_KIND_MULTICAST ||
                      r.kind == KIZUNA__V1__SEND_KIND__SEND_KIND_BROADCAST ||
                      r.kind == KIZUNA__V1__SEND_KIND__SEND_KIND_NARROWCAST;
    FUZZ_CHECK(r.has_retry_key == retry_kind);
    if (r.fell_back_to_push)
        FUZZ_CHECK(req->kind == KIZUNA__V1__SEND_KIND__SEND_KIND_REPLY &&
                   r.kind == KIZUNA__V1__SEND_KIND__SEND_KIND_PUSH);
    line_request_clear(&r);
    FUZZ_CHECK(r.path == NULL && r.body == NULL && r.nheaders == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = fuzz_memdup(data, size);
    Kizuna__V1__SendRequest *req = kizuna__v1__send_request__unpack(NULL, size, copy);
    if (req) {
        check(req, false);
        check(req, true);
        kizuna__v1__send_request__free_unpacked(req, NULL);
    }
    free(copy);
    return 0;
}
