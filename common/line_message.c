/* LINE message objects checked against the Messaging API's rules (the
 * required members of each type, their lengths and URL schemes), and the
 * variables of a text (line_message.h). The limits are LINE's documented
 * ones; LINE stays the judge of anything deeper (flex layouts), so flex
 * and template contents are checked for their shape, not every property. */
#include "line_message.h"

#include <stdlib.h>
#include <string.h>

#define LINE_ALT_TEMPLATE_MAX 400
#define LINE_ALT_MAX 1500
#define LINE_ACTION_LABEL_MAX 20
#define LINE_VAR_NAME_MAX 64      /* FIELD_NAME_MAX in characters */
#define LINE_VAR_FALLBACK_MAX 200 /* bytes */

/* --- variables -------------------------------------------------------------- */

/* One {{...}} found in a text: inner [b, e) and its parts. */
struct line_var {
    enum line_var_kind kind;
    const char *name, *fallback;
    size_t name_len, fallback_len;
    bool has_fallback;
};

/* Parses the inside of a {{...}}: 0, or -1 with *why. */
static int var_parse(const char *b, size_t n, struct line_var *v, const char **why)
{
    memset(v, 0, sizeof *v);
    if (n == 12 && memcmp(b, "display_name", 12) == 0) {
        v->kind = LINE_VAR_DISPLAY_NAME;
        return 0;
    }
    if (n > 6 && memcmp(b, "field:", 6) == 0) {
        v->kind = LINE_VAR_FIELD;
        v->name = b + 6;
        const char *bar = memchr(v->name, '|', n - 6);
        v->name_len = bar ? (size_t)(bar - v->name) : n - 6;
        if (bar) {
            v->has_fallback = true;
            v->fallback = bar + 1;
            v->fallback_len = n - 6 - v->name_len - 1;
            if (v->fallback_len > LINE_VAR_FALLBACK_MAX ||
                memchr(v->fallback, '{', v->fallback_len)) {
                *why = "a {{field:NAME|fallback}} fallback is at most 200 bytes without '{'";
                return -1;
            }
        }
        size_t chars = 0;
        for (size_t i = 0; i < v->name_len; i++) {
            unsigned char c = (unsigned char)v->name[i];
            if (c < 0x20 || c == 0x7f || c == '/' || c == '{') {
                *why = "a field name in {{field:NAME}} has no control character, / or {";
                return -1;
            }
            chars += (c & 0xc0) != 0x80;
        }
        if (chars == 0 || chars > LINE_VAR_NAME_MAX) {
            *why = "{{field:NAME}} needs a field name of 1 to 64 characters";
            return -1;
        }
        return 0;
    }
    if (n > 5 && memcmp(b, "link:", 5) == 0) {
        v->kind = LINE_VAR_LINK;
        v->name = b + 5;
        v->name_len = n - 5;
        if (v->name_len > 64) {
            *why = "{{link:ID}} needs a link id of 1 to 64 characters";
            return -1;
        }
        for (size_t i = 0; i < v->name_len; i++) {
            char c = v->name[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_')) {
                *why = "{{link:ID}} needs a link id of letters, digits, - and _";
                return -1;
            }
        }
        return 0;
    }
    *why = "unknown variable; allowed: {{display_name}}, {{field:NAME}}, "
           "{{field:NAME|fallback}}, {{link:ID}}";
    return -1;
}

/* The next variable at or after *p in [*p, end): true with its inner
 * bounds; *p moves past it. False when there is none. *unclosed when a
 * "{{" has no "}}". */
static bool var_next(const char **p, const char *end, const char **b, size_t *n, bool *unclosed)
{
    *unclosed = false;
    const char *open = NULL;
    for (const char *s = *p; s + 1 < end; s++)
        if (s[0] == '{' && s[1] == '{') {
            open = s;
            break;
        }
    if (!open)
        return false;
    const char *in = open + 2;
    while (in < end && *in == '{') /* "{{{x}}" reads as "{" then {{x}} */
        in++, open++;
    for (const char *s = in; s + 1 < end; s++)
        if (s[0] == '}' && s[1] == '}') {
            *b = in;
            *n = (size_t)(s - in);
            *p = s + 2;
            return true;
        }
    *unclosed = true;
    *p = end;
    return false;
}

int line_text_vars_check(const char *text, size_t len, const struct line_message_vars *vars,
                         const char **why, bool *unknown_field)
{
    *unknown_field = false;
    const char *p = text, *end = text + len, *b;
    size_t n;
    bool unclosed;
    while (var_next(&p, end, &b, &n, &unclosed)) {
        struct line_var v;
        if (var_parse(b, n, &v, why) < 0)
            return -1;
        if (v.kind == LINE_VAR_FIELD && vars && vars->field_known) {
            int known = vars->field_known(vars->ctx, v.name, v.name_len);
            if (known < 0)
                return -2;
            if (known == 0) {
                *why = "{{field:NAME}} names no field of this channel";
                *unknown_field = true;
                return -1;
            }
        }
    }
    if (unclosed) {
        *why = "a variable opened with {{ is not closed with }}";
        return -1;
    }
    return 0;
}

/* A growable output of line_text_render. */
struct out {
    char *buf;
    size_t len, cap;
    bool failed;
};

static void out_add(struct out *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = (o->len + n + 1) * 2;
        char *grown = realloc(o->buf, cap);
        if (!grown) {
            o->failed = true;
            return;
        }
        o->buf = grown;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

char *line_text_render(const char *text, line_var_fn fn, void *ctx)
{
    struct out o = {0};
    out_add(&o, "", 0);
    const char *p = text, *end = text + strlen(text), *b;
    size_t n;
    bool unclosed;
    for (;;) {
        const char *from = p;
        if (!var_next(&p, end, &b, &n, &unclosed)) {
            out_add(&o, from, (size_t)(end - from));
            break;
        }
        struct line_var v;
        const char *why;
        out_add(&o, from, (size_t)(b - 2 - from));
        if (var_parse(b, n, &v, &why) < 0) {
            out_add(&o, b - 2, n + 4);
            continue;
        }
        char value[LINE_TEXT_MAX * 4 + 1];
        int got = fn(ctx, v.kind, v.name, v.name_len, value, sizeof value);
        if (got < 0) {
            o.failed = true;
            break;
        }
        if (got > 0)
            out_add(&o, value, strlen(value));
        else if (v.has_fallback)
            out_add(&o, v.fallback, v.fallback_len);
    }
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    return o.buf;
}

/* --- members ------------------------------------------------------------------ */

/* A required (or optional) text member of at most max characters. */
static int text_member(const struct jsonf *o, const char *key, bool required, size_t max)
{
    const char *s;
    return jsonf_string(o, key, (required ? JSONF_REQUIRED : 0) | JSONF_NONEMPTY | JSONF_CHARS, max,
                        &s, NULL);
}

/* A URL member: max characters, no spaces or control characters, and one
 * of the schemes (NULL-terminated list). */
static int url_member(const struct jsonf *o, const char *key, bool required, size_t max,
                      const char *const *schemes)
{
    const char *s;
    size_t len;
    int got = jsonf_string(
        o, key, (required ? JSONF_REQUIRED : 0) | JSONF_NONEMPTY | JSONF_PLAIN | JSONF_CHARS, max,
        &s, &len);
    if (got != 1)
        return got;
    if (strchr(s, ' '))
        return jsonf_fail(o, key, JSONF_VALUE, "must be a URL without spaces");
    for (const char *const *sc = schemes; *sc; sc++) {
        size_t n = strlen(*sc);
        if (strncmp(s, *sc, n) == 0 && len > n)
            return 1;
    }
    return jsonf_fail(o, key, JSONF_VALUE, "must be a URL starting with %s%s", schemes[0],
                      schemes[1] ? " (or another allowed scheme)" : "");
}

static const char *const https_only[] = {"https://", NULL};
static const char *const action_uris[] = {"https://", "http://", "line://", "tel:", NULL};

static int https_member(const struct jsonf *o, const char *key, bool required)
{
    return url_member(o, key, required, LINE_URL_MAX, https_only);
}

/* An action object (template buttons, quick reply, image carousel). */
static int action_check(const struct jsonf *a)
{
    static const char *const types[] = {"postback",       "message",        "uri",
                                        "datetimepicker", "camera",         "cameraRoll",
                                        "location",       "richmenuswitch", "clipboard"};
    int type;
    const char *s;
    if (jsonf_enum(a, "type", JSONF_REQUIRED, types, sizeof types / sizeof types[0], &type) < 0 ||
        jsonf_string(a, "label", JSONF_CHARS, LINE_ACTION_LABEL_MAX, &s, NULL) < 0)
        return -1;
    switch (type) {
    case 0: /* postback */
        return text_member(a, "data", true, 300) < 0 ? -1 : 1;
    case 1: /* message */
        return text_member(a, "text", true, 300) < 0 ? -1 : 1;
    case 2: /* uri */
        return url_member(a, "uri", true, 1000, action_uris) < 0 ? -1 : 1;
    case 3: { /* datetimepicker */
        static const char *const modes[] = {"date", "time", "datetime"};
        int mode;
        return text_member(a, "data", true, 300) < 0 ||
                       jsonf_enum(a, "mode", JSONF_REQUIRED, modes, 3, &mode) < 0
                   ? -1
                   : 1;
    }
    case 7: /* richmenuswitch */
        return text_member(a, "richMenuAliasId", true, 32) < 0 ||
                       text_member(a, "data", true, 300) < 0
                   ? -1
                   : 1;
    case 8: /* clipboard */
        return text_member(a, "clipboardText", true, 1000) < 0 ? -1 : 1;
    default:
        return 1;
    }
}

/* obj.key as an array of min..max actions. */
static int actions_member(const struct jsonf *o, const char *key, size_t min, size_t max)
{
    struct jsonf arr;
    if (jsonf_array(o, key, JSONF_REQUIRED, max, &arr) < 0)
        return -1;
    size_t n = jsonf_size(&arr);
    if (n < min)
        return jsonf_fail(o, key, JSONF_VALUE, "must hold %s%zu actions",
                          min == max ? "" : "at least ", min);
    for (size_t i = 0; i < n; i++) {
        struct jsonf a;
        if (jsonf_item_object(&arr, i, &a) < 0 || action_check(&a) < 0)
            return -1;
    }
    return 1;
}

static int quick_reply_check(const struct jsonf *msg)
{
    struct jsonf qr, items;
    int got = jsonf_object(msg, "quickReply", 0, &qr);
    if (got <= 0)
        return got;
    if (jsonf_array(&qr, "items", JSONF_REQUIRED, 13, &items) < 0)
        return -1;
    for (size_t i = 0; i < jsonf_size(&items); i++) {
        struct jsonf item, action;
        if (jsonf_item_object(&items, i, &item) < 0 || https_member(&item, "imageUrl", false) < 0 ||
            jsonf_object(&item, "action", JSONF_REQUIRED, &action) < 0 || action_check(&action) < 0)
            return -1;
    }
    return 1;
}

static int sender_check(const struct jsonf *msg)
{
    struct jsonf sender;
    int got = jsonf_object(msg, "sender", 0, &sender);
    if (got <= 0)
        return got;
    return text_member(&sender, "name", false, 20) < 0 ||
                   https_member(&sender, "iconUrl", false) < 0
               ? -1
               : 1;
}

/* --- message types ------------------------------------------------------------ */

static int text_check(const struct jsonf *msg, const struct line_message_vars *vars)
{
    const char *text;
    size_t len;
    if (jsonf_string(msg, "text", JSONF_REQUIRED | JSONF_NONEMPTY | JSONF_CHARS, LINE_TEXT_MAX,
                     &text, &len) < 0)
        return -1;
    const char *why;
    bool unknown;
    int rc = line_text_vars_check(text, len, vars, &why, &unknown);
    if (rc == -2)
        return -2;
    if (rc < 0)
        return jsonf_fail(msg, "text", unknown ? JSONF_UNKNOWN : JSONF_VALUE, "%s", why);
    struct jsonf emojis;
    if (jsonf_array(msg, "emojis", 0, 20, &emojis) < 0)
        return -1;
    for (size_t i = 0; i < jsonf_size(&emojis); i++) {
        struct jsonf e;
        int64_t index;
        if (jsonf_item_object(&emojis, i, &e) < 0 ||
            jsonf_int(&e, "index", JSONF_REQUIRED, 0, LINE_TEXT_MAX, &index) < 0 ||
            text_member(&e, "productId", true, 64) < 0 || text_member(&e, "emojiId", true, 64) < 0)
            return -1;
    }
    return 1;
}

static int imagemap_check(const struct jsonf *msg)
{
    struct jsonf size, arr;
    int64_t v;
    if (https_member(msg, "baseUrl", true) < 0 ||
        text_member(msg, "altText", true, LINE_ALT_MAX) < 0 ||
        jsonf_object(msg, "baseSize", JSONF_REQUIRED, &size) < 0 ||
        jsonf_int(&size, "width", JSONF_REQUIRED, 1, 2500, &v) < 0 ||
        jsonf_int(&size, "height", JSONF_REQUIRED, 1, 10000, &v) < 0 ||
        jsonf_array(msg, "actions", JSONF_REQUIRED, 50, &arr) < 0)
        return -1;
    if (jsonf_size(&arr) == 0)
        return jsonf_fail(msg, "actions", JSONF_VALUE, "must hold at least 1 action");
    static const char *const types[] = {"uri", "message", "clipboard"};
    for (size_t i = 0; i < jsonf_size(&arr); i++) {
        struct jsonf a, area;
        int type;
        if (jsonf_item_object(&arr, i, &a) < 0 ||
            jsonf_enum(&a, "type", JSONF_REQUIRED, types, 3, &type) < 0 ||
            jsonf_object(&a, "area", JSONF_REQUIRED, &area) < 0 ||
            jsonf_int(&area, "x", JSONF_REQUIRED, 0, 10000, &v) < 0 ||
            jsonf_int(&area, "y", JSONF_REQUIRED, 0, 10000, &v) < 0 ||
            jsonf_int(&area, "width", JSONF_REQUIRED, 1, 10000, &v) < 0 ||
            jsonf_int(&area, "height", JSONF_REQUIRED, 1, 10000, &v) < 0)
            return -1;
        int rc = type == 0   ? url_member(&a, "linkUri", true, 1000, action_uris)
                 : type == 1 ? text_member(&a, "text", true, 400)
                             : text_member(&a, "clipboardText", true, 1000);
        if (rc < 0)
            return -1;
    }
    return 1;
}

static int columns_check(const struct jsonf *t, bool image)
{
    struct jsonf cols;
    if (jsonf_array(t, "columns", JSONF_REQUIRED, 10, &cols) < 0)
        return -1;
    if (jsonf_size(&cols) == 0)
        return jsonf_fail(t, "columns", JSONF_VALUE, "must hold at least 1 column");
    for (size_t i = 0; i < jsonf_size(&cols); i++) {
        struct jsonf c, action;
        if (jsonf_item_object(&cols, i, &c) < 0)
            return -1;
        if (image) {
            if (https_member(&c, "imageUrl", true) < 0 ||
                jsonf_object(&c, "action", JSONF_REQUIRED, &action) < 0 ||
                action_check(&action) < 0)
                return -1;
        } else if (text_member(&c, "text", true, 120) < 0 ||
                   text_member(&c, "title", false, 40) < 0 ||
                   https_member(&c, "thumbnailImageUrl", false) < 0 ||
                   actions_member(&c, "actions", 1, 3) < 0) {
            return -1;
        }
    }
    return 1;
}

static int template_check(const struct jsonf *msg)
{
    struct jsonf t;
    static const char *const types[] = {"buttons", "confirm", "carousel", "image_carousel"};
    int type;
    if (text_member(msg, "altText", true, LINE_ALT_TEMPLATE_MAX) < 0 ||
        jsonf_object(msg, "template", JSONF_REQUIRED, &t) < 0 ||
        jsonf_enum(&t, "type", JSONF_REQUIRED, types, 4, &type) < 0)
        return -1;
    switch (type) {
    case 0:
        return text_member(&t, "text", true, 160) < 0 || text_member(&t, "title", false, 40) < 0 ||
                       https_member(&t, "thumbnailImageUrl", false) < 0 ||
                       actions_member(&t, "actions", 1, 4) < 0
                   ? -1
                   : 1;
    case 1:
        return text_member(&t, "text", true, 240) < 0 || actions_member(&t, "actions", 2, 2) < 0
                   ? -1
                   : 1;
    default:
        return columns_check(&t, type == 3);
    }
}

static int flex_check(const struct jsonf *msg)
{
    struct jsonf c, arr;
    static const char *const types[] = {"bubble", "carousel"};
    int type;
    if (text_member(msg, "altText", true, LINE_ALT_MAX) < 0 ||
        jsonf_object(msg, "contents", JSONF_REQUIRED, &c) < 0 ||
        jsonf_enum(&c, "type", JSONF_REQUIRED, types, 2, &type) < 0)
        return -1;
    if (type == 0)
        return 1;
    if (jsonf_array(&c, "contents", JSONF_REQUIRED, 12, &arr) < 0)
        return -1;
    if (jsonf_size(&arr) == 0)
        return jsonf_fail(&c, "contents", JSONF_VALUE, "must hold at least 1 bubble");
    static const char *const bubble[] = {"bubble"};
    for (size_t i = 0; i < jsonf_size(&arr); i++) {
        struct jsonf b;
        if (jsonf_item_object(&arr, i, &b) < 0 ||
            jsonf_enum(&b, "type", JSONF_REQUIRED, bubble, 1, &type) < 0)
            return -1;
    }
    return 1;
}

int line_message_check(const struct jsonf *msg, const struct line_message_vars *vars)
{
    static const char *const types[] = {"text",  "sticker",  "image",    "video",
                                        "audio", "location", "imagemap", "template",
                                        "flex",  "coupon",   "textV2"};
    int type;
    if (jsonf_enum(msg, "type", JSONF_REQUIRED, types, sizeof types / sizeof types[0], &type) < 0)
        return -1;
    char *dump = json_dumps(msg->node, JSON_COMPACT);
    size_t bytes = dump ? strlen(dump) : 0;
    free(dump);
    if (bytes > LINE_MESSAGE_BYTES)
        return jsonf_fail(msg, NULL, JSONF_TOO_LONG, "a message is at most %d bytes of JSON",
                          LINE_MESSAGE_BYTES);
    int rc = 1;
    int64_t v;
    double d;
    switch (type) {
    case 0:
        rc = text_check(msg, vars);
        break;
    case 1:
        rc = text_member(msg, "packageId", true, 64) < 0 ||
                     text_member(msg, "stickerId", true, 64) < 0
                 ? -1
                 : 1;
        break;
    case 2:
    case 3:
        rc = https_member(msg, "originalContentUrl", true) < 0 ||
                     https_member(msg, "previewImageUrl", true) < 0 ||
                     (type == 3 && text_member(msg, "trackingId", false, 100) < 0)
                 ? -1
                 : 1;
        break;
    case 4:
        rc = https_member(msg, "originalContentUrl", true) < 0 ||
                     jsonf_int(msg, "duration", JSONF_REQUIRED, 1, INT64_C(86400000), &v) < 0
                 ? -1
                 : 1;
        break;
    case 5:
        rc = text_member(msg, "title", true, 100) < 0 ||
                     text_member(msg, "address", true, 100) < 0 ||
                     jsonf_number(msg, "latitude", JSONF_REQUIRED, &d) < 0 ||
                     (d < -90 || d > 90
                          ? jsonf_fail(msg, "latitude", JSONF_VALUE, "must be from -90 to 90")
                          : 0) < 0 ||
                     jsonf_number(msg, "longitude", JSONF_REQUIRED, &d) < 0 ||
                     (d < -180 || d > 180
                          ? jsonf_fail(msg, "longitude", JSONF_VALUE, "must be from -180 to 180")
                          : 0) < 0
                 ? -1
                 : 1;
        break;
    case 6:
        rc = imagemap_check(msg);
        break;
    case 7:
        rc = template_check(msg);
        break;
    case 8:
        rc = flex_check(msg);
        break;
    case 9:
        rc = text_member(msg, "couponId", true, 64) < 0 ? -1 : 1;
        break;
    case 10:
        rc = text_member(msg, "text", true, LINE_TEXT_MAX) < 0 ? -1 : 1;
        break;
    }
    if (rc < 0)
        return rc;
    return quick_reply_check(msg) < 0 || sender_check(msg) < 0 ? -1 : 1;
}

int line_messages_check(const struct jsonf *obj, const char *key, unsigned flags,
                        const struct line_message_vars *vars)
{
    struct jsonf arr;
    int got = jsonf_array(obj, key, flags, LINE_MESSAGES_MAX, &arr);
    if (got <= 0)
        return got;
    size_t n = jsonf_size(&arr);
    if (n == 0)
        return jsonf_fail(obj, key, JSONF_VALUE, "must hold 1 to %d messages", LINE_MESSAGES_MAX);
    for (size_t i = 0; i < n; i++) {
        struct jsonf msg;
        if (jsonf_item_object(&arr, i, &msg) < 0)
            return -1;
        int rc = line_message_check(&msg, vars);
        if (rc < 0)
            return rc;
    }
    return 1;
}
