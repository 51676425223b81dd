/* The rules a /v1/channels body must satisfy, in one table-driven place:
 * every field has a type, a size cap and a pattern, an unknown field is an
 * error that names it, and no message ever quotes a value from the body,
 * because bodies carry channel secrets and access tokens. Types and caps
 * are read through common/jsonf, so errors read "name: must be a string" as
 * in every other API. */
#include "registry_input.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "jsonf.h"
#include "utf8.h"

#define FINGERPRINT_KEY "kizuna-fingerprint-v1"

void registry_input_wipe(struct registry_input *in)
{
    if (in)
        crypto_wipe(in, sizeof *in);
}

bool registry_channel_id_valid(const char *s)
{
    if (!s)
        return false;
    size_t n = 0;
    for (; s[n]; n++)
        if (s[n] < '0' || s[n] > '9' || n >= REGISTRY_CHANNEL_ID_MAX)
            return false;
    return n > 0;
}

static bool tz_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '+';
}

/* The pattern alone: parts of [A-Za-z0-9_+-] separated by single '/', the
 * first starting with a letter, so that "..", "/etc/passwd", "a//b" and
 * "posix/../x" can never reach the file system. */
static bool tz_pattern_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > REGISTRY_TIMEZONE_MAX)
        return false;
    if (!((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z')))
        return false;
    bool part_empty = true;
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '/') {
            if (part_empty)
                return false;
            part_empty = true;
        } else if (tz_char_ok(name[i])) {
            part_empty = false;
        } else {
            return false;
        }
    }
    return !part_empty;
}

bool registry_timezone_valid(const char *name, const char *zoneinfo_dir)
{
    if (!name || !tz_pattern_ok(name))
        return false;
    if (!zoneinfo_dir)
        return true;
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", zoneinfo_dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return false;
    /* A real zone is a regular TZif file; this refuses folders ("Asia")
     * and the tables next to the zones ("zone.tab", "tzdata.zi"). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return false;
    struct stat st;
    char magic[4];
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              read(fd, magic, sizeof magic) == (ssize_t)sizeof magic &&
              memcmp(magic, "TZif", 4) == 0;
    close(fd);
    return ok;
}

void registry_fingerprint(const void *secret, size_t len, char out[REGISTRY_FINGERPRINT_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t mac[CRYPTO_SHA256_LEN];
    crypto_hmac_sha256(FINGERPRINT_KEY, strlen(FINGERPRINT_KEY), secret, len, mac);
    for (int i = 0; i < REGISTRY_FINGERPRINT_LEN / 2; i++) {
        out[2 * i] = digits[mac[i] >> 4];
        out[2 * i + 1] = digits[mac[i] & 0x0f];
    }
    out[REGISTRY_FINGERPRINT_LEN] = '\0';
    crypto_wipe(mac, sizeof mac);
}

static int input_fail(struct registry_input_error *err, const char *code, const char *field,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int input_fail(struct registry_input_error *err, const char *code, const char *field,
                      const char *fmt, ...)
{
    err->status = 400;
    err->code = code;
    /* Truncated names are still escaped on output (httpd_respond_error). */
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* What a string field may contain. */
enum string_rule {
    RULE_DIGITS,      /* channel_id */
    RULE_TEXT,        /* name: UTF-8 without control characters */
    RULE_CREDENTIAL,  /* secrets: printable ASCII, no spaces */
    RULE_BOT_USER_ID, /* "U" + 32 lower-case hex digits */
    RULE_TIMEZONE,
};

struct field_spec {
    const char *name;
    unsigned bit;
    bool is_string;
    enum string_rule rule;
    size_t max; /* bytes */
    bool required;
    bool patchable;
};

static const struct field_spec fields[] = {
    {"channel_id", REGISTRY_F_CHANNEL_ID, true, RULE_DIGITS, REGISTRY_CHANNEL_ID_MAX, true, false},
    {"name", REGISTRY_F_NAME, true, RULE_TEXT, REGISTRY_NAME_MAX, true, true},
    {"channel_secret", REGISTRY_F_SECRET, true, RULE_CREDENTIAL, REGISTRY_SECRET_MAX, true, true},
    {"access_token", REGISTRY_F_TOKEN, true, RULE_CREDENTIAL, REGISTRY_TOKEN_MAX, true, true},
    {"bot_user_id", REGISTRY_F_BOT_USER_ID, true, RULE_BOT_USER_ID, REGISTRY_BOT_USER_ID_LEN, true,
     true},
    {"timezone", REGISTRY_F_TIMEZONE, true, RULE_TIMEZONE, REGISTRY_TIMEZONE_MAX, false, true},
    {"monthly_quota", REGISTRY_F_QUOTA, false, RULE_DIGITS, 0, false, true},
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static char *field_dest(struct registry_input *in, unsigned bit)
{
    switch (bit) {
    case REGISTRY_F_CHANNEL_ID:
        return in->channel_id;
    case REGISTRY_F_NAME:
        return in->name;
    case REGISTRY_F_SECRET:
        return in->channel_secret;
    case REGISTRY_F_TOKEN:
        return in->access_token;
    case REGISTRY_F_BOT_USER_ID:
        return in->bot_user_id;
    case REGISTRY_F_TIMEZONE:
        return in->timezone;
    default:
        return NULL;
    }
}

static bool string_rule_ok(enum string_rule rule, const char *s, size_t len)
{
    switch (rule) {
    case RULE_DIGITS:
        return registry_channel_id_valid(s);
    case RULE_TEXT:
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x20 || c == 0x7f)
                return false;
        }
        return len > 0;
    case RULE_CREDENTIAL:
        for (size_t i = 0; i < len; i++)
            if (s[i] <= 0x20 || s[i] >= 0x7f)
                return false;
        return len > 0;
    case RULE_BOT_USER_ID:
        if (len != REGISTRY_BOT_USER_ID_LEN || s[0] != 'U')
            return false;
        for (size_t i = 1; i < len; i++)
            if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                return false;
        return true;
    case RULE_TIMEZONE:
        return true; /* checked separately: it needs the zoneinfo folder */
    }
    return false;
}

static const char *rule_text(enum string_rule rule)
{
    switch (rule) {
    case RULE_DIGITS:
        return "must be LINE's numeric channel id (decimal digits)";
    case RULE_TEXT:
        return "must be non-empty text without control characters";
    case RULE_CREDENTIAL:
        return "must be non-empty printable ASCII without spaces";
    case RULE_BOT_USER_ID:
        return "must be the bot's LINE user id: \"U\" and 32 lower-case hex digits";
    case RULE_TIMEZONE:
        return "must be an IANA time zone such as \"Asia/Tokyo\"";
    }
    return "is invalid";
}

/* Reads root.<f->name>, which the body has. Returns 0, or -1 with the error
 * in root's reader. */
static int input_field(const struct field_spec *f, const struct jsonf *root,
                       const char *zoneinfo_dir, struct registry_input *in)
{
    if (!f->is_string) {
        /* monthly_quota: a JSON integer; 1.0 and 1e3 are reals, refused. */
        int64_t q;
        if (jsonf_int(root, f->name, 0, 0, INT64_MAX, &q) < 0)
            return -1;
        in->monthly_quota = q;
        in->present |= f->bit;
        return 0;
    }
    const char *s;
    size_t len;
    if (jsonf_string(root, f->name, 0, f->max, &s, &len) < 0)
        return -1;
    if (memchr(s, '\0', len))
        return jsonf_fail(root, f->name, JSONF_VALUE, "must not contain NUL");
    bool ok = f->rule == RULE_TIMEZONE ? registry_timezone_valid(s, zoneinfo_dir)
                                       : string_rule_ok(f->rule, s, len);
    if (!ok)
        return jsonf_fail(root, f->name, JSONF_VALUE, "%s", rule_text(f->rule));
    char *dest = field_dest(in, f->bit);
    memcpy(dest, s, len);
    dest[len] = '\0';
    in->present |= f->bit;
    return 0;
}

/* Reads the members in the body's order, so the first mistake in the body
 * is the one reported. Returns 0, 1 after filling err itself, or -1 with the
 * error in root's reader. */
static int input_object(const struct jsonf *root, enum registry_input_mode mode,
                        const char *zoneinfo_dir, struct registry_input *in,
                        struct registry_input_error *err)
{
    const char *key;
    json_t *value;
    json_object_foreach(root->node, key, value)
    {
        const struct field_spec *f = NULL;
        for (size_t i = 0; i < NFIELDS; i++)
            if (strcmp(fields[i].name, key) == 0)
                f = &fields[i];
        /* The name is quoted back to the caller (capped, JSON-escaped on
         * output) but never logged: it is text from the network. */
        if (!f)
            return jsonf_fail(root, key, JSONF_UNKNOWN,
                              "unknown field; allowed: channel_id, name, channel_secret, "
                              "access_token, bot_user_id, timezone, monthly_quota");
        if (mode == REGISTRY_INPUT_PATCH && !f->patchable) {
            input_fail(err, "immutable_field", f->name,
                       "%s cannot be changed; delete and create the channel instead", f->name);
            return 1;
        }
        if (input_field(f, root, zoneinfo_dir, in) != 0)
            return -1;
    }
    if (mode == REGISTRY_INPUT_CREATE) {
        for (size_t i = 0; i < NFIELDS; i++)
            if (fields[i].required && !(in->present & fields[i].bit))
                return jsonf_fail(root, fields[i].name, JSONF_MISSING, "missing");
        if (!(in->present & REGISTRY_F_TIMEZONE)) {
            memcpy(in->timezone, REGISTRY_DEFAULT_TIMEZONE, sizeof REGISTRY_DEFAULT_TIMEZONE);
            in->present |= REGISTRY_F_TIMEZONE;
        }
        if (!(in->present & REGISTRY_F_QUOTA)) {
            in->monthly_quota = 0;
            in->present |= REGISTRY_F_QUOTA;
        }
    } else if (in->present == 0) {
        input_fail(err, "empty_patch", NULL, "the body changes no field");
        return 1;
    }
    return 0;
}

int registry_input_parse(const char *body, size_t len, enum registry_input_mode mode,
                         const char *zoneinfo_dir, struct registry_input *in,
                         struct registry_input_error *err)
{
    memset(in, 0, sizeof *in);
    memset(err, 0, sizeof *err);
    if (!body || len == 0)
        return input_fail(err, "invalid_json", NULL, "the body is empty; send a JSON object");
    /* The whole body, before jansson sees it, so that bad bytes get their
     * own error code rather than a generic parse error. */
    if (!utf8_valid(body, len))
        return input_fail(err, "invalid_utf8", NULL, "the body is not valid UTF-8");
    json_error_t jerr;
    /* Duplicate keys are refused: which of two "access_token"s wins would
     * otherwise depend on the parser. */
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_duplicate_key)
            return input_fail(err, "invalid_json", NULL, "duplicate key at line %d column %d",
                              jerr.line, jerr.column);
        return input_fail(err, "invalid_json", NULL, "malformed JSON at line %d column %d",
                          jerr.line, jerr.column);
    }
    int rc;
    if (!json_is_object(root)) {
        rc = input_fail(err, "invalid_json", NULL, "the body must be a JSON object");
    } else {
        struct jsonf_error field_error;
        struct jsonf_reader reader = {.errors = &field_error, .cap = 1};
        struct jsonf doc;
        jsonf_root(&doc, &reader, root);
        rc = input_object(&doc, mode, zoneinfo_dir, in, err);
        if (rc < 0) {
            char message[sizeof err->message];
            jsonf_error_text(&field_error, message, sizeof message);
            input_fail(err, jsonf_kind_code(field_error.kind), field_error.path, "%s", message);
        }
    }
    json_decref(root);
    if (rc == 0)
        return 0;
    registry_input_wipe(in);
    return -1;
}
