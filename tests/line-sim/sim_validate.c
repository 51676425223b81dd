/* Schema checks for LINE request bodies. Every error found is reported (up
 * to SIM_VERR_MAX_DETAILS details, all of them counted), with the JSON path
 * of the property, as LINE does. The limits are the ones LINE documents:
 * the OpenAPI file gives the array sizes; the per-field character limits
 * (altText, template texts, location title...) come from LINE's message
 * reference. Only what a dispatcher can get wrong is checked; deep Flex
 * component trees are accepted as long as the container is well-formed. */
#include "sim_validate.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define SIM_MAX_URL 2000

/* The walk's state: the error sink and the JSON path of the value under
 * inspection ("messages[2].template"). */
struct vctx {
    struct sim_verr *err;
    char path[128];
    size_t plen;
};

size_t sim_utf16_len(const char *s, size_t len)
{
    size_t units = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 && c < 0xC0)
            continue; /* continuation byte: counted with its lead */
        /* A 4-byte sequence encodes U+10000..U+10FFFF: a surrogate pair. */
        units += c >= 0xF0 ? 2 : 1;
    }
    return units;
}

void sim_verr_set(struct sim_verr *err, const char *message)
{
    memset(err, 0, sizeof *err);
    snprintf(err->message, sizeof err->message, "%s", message);
    err->nerrors = 1;
}

/* Appends one path segment; returns the old length for v_pop. */
static size_t v_push(struct vctx *v, const char *fmt, ...)
{
    size_t old = v->plen;
    if (v->plen < sizeof v->path - 1) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(v->path + v->plen, sizeof v->path - v->plen, fmt, ap);
        va_end(ap);
        if (n > 0)
            v->plen +=
                (size_t)n < sizeof v->path - v->plen ? (size_t)n : sizeof v->path - v->plen - 1;
    }
    return old;
}

static void v_pop(struct vctx *v, size_t old)
{
    v->plen = old;
    v->path[old] = '\0';
}

/* Records an error on the current path, or on path.key when key is set. */
static void v_fail(struct vctx *v, const char *key, const char *fmt, ...)
{
    struct sim_verr *e = v->err;
    e->nerrors++;
    if (e->ndetails >= SIM_VERR_MAX_DETAILS)
        return;
    struct sim_verr_detail *d = &e->details[e->ndetails++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof d->message, fmt, ap);
    va_end(ap);
    if (key)
        snprintf(d->property, sizeof d->property, "%s%s%s", v->path, v->plen ? "." : "", key);
    else
        snprintf(d->property, sizeof d->property, "%s", v->path);
}

/* --- field helpers: each reports its own error and returns NULL/false --- */

static const json_t *v_string(struct vctx *v, const json_t *obj, const char *key, bool required,
                              size_t min, size_t max)
{
    const json_t *s = json_object_get(obj, key);
    if (!s || json_is_null(s)) {
        if (required)
            v_fail(v, key, "Must be specified");
        return NULL;
    }
    if (!json_is_string(s)) {
        v_fail(v, key, "Must be a string");
        return NULL;
    }
    size_t n = sim_utf16_len(json_string_value(s), json_string_length(s));
    if (n < min || (max && n > max)) {
        if (min == 1 && n == 0)
            v_fail(v, key, "May not be empty");
        else
            v_fail(v, key, "Length must be between %zu and %zu", min, max);
        return NULL;
    }
    return s;
}

/* LINE serves media only from HTTPS URLs of at most 2000 characters. */
static void v_url(struct vctx *v, const json_t *obj, const char *key, bool required)
{
    const json_t *s = v_string(v, obj, key, required, 1, SIM_MAX_URL);
    if (s && strncmp(json_string_value(s), "https://", 8) != 0)
        v_fail(v, key, "Must be a valid HTTPS URL");
}

static void v_integer(struct vctx *v, const json_t *obj, const char *key, bool required,
                      json_int_t min)
{
    const json_t *n = json_object_get(obj, key);
    if (!n || json_is_null(n)) {
        if (required)
            v_fail(v, key, "Must be specified");
    } else if (!json_is_integer(n)) {
        v_fail(v, key, "Must be an integer");
    } else if (json_integer_value(n) < min) {
        v_fail(v, key, "Must be greater than or equal to %lld", (long long)min);
    }
}

static void v_number(struct vctx *v, const json_t *obj, const char *key)
{
    const json_t *n = json_object_get(obj, key);
    if (!n || json_is_null(n))
        v_fail(v, key, "Must be specified");
    else if (!json_is_number(n))
        v_fail(v, key, "Must be a number");
}

static void v_boolean(struct vctx *v, const json_t *obj, const char *key)
{
    const json_t *b = json_object_get(obj, key);
    if (b && !json_is_null(b) && !json_is_boolean(b))
        v_fail(v, key, "Must be a boolean");
}

static const json_t *v_object(struct vctx *v, const json_t *obj, const char *key, bool required)
{
    const json_t *o = json_object_get(obj, key);
    if (!o || json_is_null(o)) {
        if (required)
            v_fail(v, key, "Must be specified");
        return NULL;
    }
    if (!json_is_object(o)) {
        v_fail(v, key, "Must be an object");
        return NULL;
    }
    return o;
}

static const json_t *v_array(struct vctx *v, const json_t *obj, const char *key, bool required,
                             size_t min, size_t max)
{
    const json_t *a = json_object_get(obj, key);
    if (!a || json_is_null(a)) {
        if (required)
            v_fail(v, key, "Must be specified");
        return NULL;
    }
    if (!json_is_array(a)) {
        v_fail(v, key, "Must be an array");
        return NULL;
    }
    size_t n = json_array_size(a);
    if (n < min || n > max) {
        v_fail(v, key, "Size must be between %zu and %zu", min, max);
        return NULL;
    }
    return a;
}

/* A "type" discriminator among names (NULL-terminated). Returns its index,
 * or -1 after reporting. */
static int v_type(struct vctx *v, const json_t *obj, const char *const *names, const char *list)
{
    const json_t *t = v_string(v, obj, "type", true, 1, 0);
    if (!t)
        return -1;
    for (int i = 0; names[i]; i++)
        if (strcmp(json_string_value(t), names[i]) == 0)
            return i;
    v_fail(v, "type", "Must be one of the following values: [%s]", list);
    return -1;
}

/* --- actions ----------------------------------------------------------- */

static const char *const action_types[] = {"postback",  "message",    "uri",      "datetimepicker",
                                           "camera",    "cameraRoll", "location", "richmenuswitch",
                                           "clipboard", NULL};

static void v_action(struct vctx *v, const json_t *a)
{
    if (!json_is_object(a)) {
        v_fail(v, NULL, "Must be an object");
        return;
    }
    switch (v_type(v, a, action_types,
                   "postback, message, uri, datetimepicker, camera, cameraRoll, location, "
                   "richmenuswitch, clipboard")) {
    case 0: /* postback */
        v_string(v, a, "data", true, 1, 300);
        break;
    case 1: /* message */
        v_string(v, a, "text", true, 1, 300);
        break;
    case 2: /* uri */
        v_string(v, a, "uri", true, 1, 1000);
        break;
    case 3: /* datetimepicker */
        v_string(v, a, "data", true, 1, 300);
        v_string(v, a, "mode", true, 1, 0);
        break;
    case 7: /* richmenuswitch */
        v_string(v, a, "richMenuAliasId", true, 1, 32);
        v_string(v, a, "data", true, 1, 300);
        break;
    case 8: /* clipboard */
        v_string(v, a, "clipboardText", true, 1, 1000);
        break;
    default:
        break;
    }
}

/* An array of actions under key, each checked. */
static void v_actions(struct vctx *v, const json_t *obj, const char *key, size_t min, size_t max)
{
    const json_t *arr = v_array(v, obj, key, true, min, max);
    size_t i;
    const json_t *a;
    json_array_foreach(arr, i, a)
    {
        size_t old = v_push(v, "%s%s[%zu]", v->plen ? "." : "", key, i);
        v_action(v, a);
        v_pop(v, old);
    }
}

static void v_action_at(struct vctx *v, const json_t *obj, const char *key)
{
    const json_t *a = v_object(v, obj, key, true);
    if (!a)
        return;
    size_t old = v_push(v, "%s%s", v->plen ? "." : "", key);
    v_action(v, a);
    v_pop(v, old);
}

/* --- message types ----------------------------------------------------- */

static void v_msg_text(struct vctx *v, const json_t *m)
{
    v_string(v, m, "text", true, 1, SIM_MAX_TEXT);
    v_array(v, m, "emojis", false, 0, 20);
    v_string(v, m, "quoteToken", false, 0, 0);
}

static void v_msg_sticker(struct vctx *v, const json_t *m)
{
    v_string(v, m, "packageId", true, 1, 0);
    v_string(v, m, "stickerId", true, 1, 0);
}

static void v_msg_image_video(struct vctx *v, const json_t *m)
{
    v_url(v, m, "originalContentUrl", true);
    v_url(v, m, "previewImageUrl", true);
}

static void v_msg_audio(struct vctx *v, const json_t *m)
{
    v_url(v, m, "originalContentUrl", true);
    v_integer(v, m, "duration", true, 0);
}

static void v_msg_location(struct vctx *v, const json_t *m)
{
    v_string(v, m, "title", true, 1, 100);
    v_string(v, m, "address", true, 1, 100);
    v_number(v, m, "latitude");
    v_number(v, m, "longitude");
}

static const char *const imagemap_action_types[] = {"uri", "message", "clipboard", NULL};

static void v_msg_imagemap(struct vctx *v, const json_t *m)
{
    v_url(v, m, "baseUrl", true);
    v_string(v, m, "altText", true, 1, 1500);
    const json_t *size = v_object(v, m, "baseSize", true);
    if (size) {
        size_t old = v_push(v, ".baseSize");
        v_integer(v, size, "width", true, 1);
        v_integer(v, size, "height", true, 1);
        v_pop(v, old);
    }
    const json_t *actions = v_array(v, m, "actions", true, 0, 50);
    size_t i;
    const json_t *a;
    json_array_foreach(actions, i, a)
    {
        size_t old = v_push(v, ".actions[%zu]", i);
        if (!json_is_object(a)) {
            v_fail(v, NULL, "Must be an object");
        } else {
            switch (v_type(v, a, imagemap_action_types, "uri, message, clipboard")) {
            case 0:
                v_string(v, a, "linkUri", true, 1, 1000);
                break;
            case 1:
                v_string(v, a, "text", true, 1, 400);
                break;
            case 2:
                v_string(v, a, "clipboardText", true, 1, 1000);
                break;
            default:
                break;
            }
            const json_t *area = v_object(v, a, "area", true);
            if (area) {
                size_t old2 = v_push(v, ".area");
                v_integer(v, area, "x", true, 0);
                v_integer(v, area, "y", true, 0);
                v_integer(v, area, "width", true, 1);
                v_integer(v, area, "height", true, 1);
                v_pop(v, old2);
            }
        }
        v_pop(v, old);
    }
}

static const char *const template_types[] = {"buttons", "confirm", "carousel", "image_carousel",
                                             NULL};

static void v_msg_template(struct vctx *v, const json_t *m)
{
    v_string(v, m, "altText", true, 1, 400);
    const json_t *t = v_object(v, m, "template", true);
    if (!t)
        return;
    size_t old = v_push(v, ".template");
    const json_t *cols;
    size_t i;
    const json_t *c;
    switch (v_type(v, t, template_types, "buttons, confirm, carousel, image_carousel")) {
    case 0: /* buttons: 160 characters, 60 with an image or title */
        v_string(v, t, "text", true, 1,
                 json_object_get(t, "thumbnailImageUrl") || json_object_get(t, "title") ? 60 : 160);
        v_string(v, t, "title", false, 0, 40);
        v_actions(v, t, "actions", 1, 4);
        break;
    case 1: /* confirm */
        v_string(v, t, "text", true, 1, 240);
        v_actions(v, t, "actions", 2, 2);
        break;
    case 2: /* carousel */
        cols = v_array(v, t, "columns", true, 1, 10);
        json_array_foreach(cols, i, c)
        {
            size_t old2 = v_push(v, ".columns[%zu]", i);
            if (!json_is_object(c)) {
                v_fail(v, NULL, "Must be an object");
            } else {
                v_string(v, c, "text", true, 1,
                         json_object_get(c, "thumbnailImageUrl") || json_object_get(c, "title")
                             ? 60
                             : 120);
                v_actions(v, c, "actions", 1, 3);
            }
            v_pop(v, old2);
        }
        break;
    case 3: /* image_carousel */
        cols = v_array(v, t, "columns", true, 1, 10);
        json_array_foreach(cols, i, c)
        {
            size_t old2 = v_push(v, ".columns[%zu]", i);
            if (!json_is_object(c)) {
                v_fail(v, NULL, "Must be an object");
            } else {
                v_url(v, c, "imageUrl", true);
                v_action_at(v, c, "action");
            }
            v_pop(v, old2);
        }
        break;
    default:
        break;
    }
    v_pop(v, old);
}

static const char *const flex_container_types[] = {"bubble", "carousel", NULL};
static const char *const flex_bubble_only[] = {"bubble", NULL};

static void v_msg_flex(struct vctx *v, const json_t *m)
{
    v_string(v, m, "altText", true, 1, 1500);
    const json_t *c = v_object(v, m, "contents", true);
    if (!c)
        return;
    size_t old = v_push(v, ".contents");
    if (v_type(v, c, flex_container_types, "bubble, carousel") == 1) {
        const json_t *bubbles = v_array(v, c, "contents", true, 1, 12);
        size_t i;
        const json_t *b;
        json_array_foreach(bubbles, i, b)
        {
            size_t old2 = v_push(v, ".contents[%zu]", i);
            if (!json_is_object(b))
                v_fail(v, NULL, "Must be an object");
            else
                v_type(v, b, flex_bubble_only, "bubble");
            v_pop(v, old2);
        }
    }
    v_pop(v, old);
}

static void v_msg_coupon(struct vctx *v, const json_t *m)
{
    v_string(v, m, "couponId", true, 1, 0);
}

static const struct {
    const char *type;
    void (*check)(struct vctx *v, const json_t *m);
} message_types[] = {
    {"text", v_msg_text},         {"textV2", v_msg_text},       {"sticker", v_msg_sticker},
    {"image", v_msg_image_video}, {"video", v_msg_image_video}, {"audio", v_msg_audio},
    {"location", v_msg_location}, {"imagemap", v_msg_imagemap}, {"template", v_msg_template},
    {"flex", v_msg_flex},         {"coupon", v_msg_coupon},
};

/* Properties every message may carry: quickReply and sender. */
static void v_msg_common(struct vctx *v, const json_t *m)
{
    const json_t *qr = v_object(v, m, "quickReply", false);
    if (qr) {
        size_t old = v_push(v, ".quickReply");
        const json_t *items = v_array(v, qr, "items", true, 1, 13);
        size_t i;
        const json_t *it;
        json_array_foreach(items, i, it)
        {
            size_t old2 = v_push(v, ".items[%zu]", i);
            if (!json_is_object(it)) {
                v_fail(v, NULL, "Must be an object");
            } else {
                v_url(v, it, "imageUrl", false);
                v_action_at(v, it, "action");
            }
            v_pop(v, old2);
        }
        v_pop(v, old);
    }
    const json_t *sender = v_object(v, m, "sender", false);
    if (sender) {
        size_t old = v_push(v, ".sender");
        v_string(v, sender, "name", false, 1, 20);
        v_url(v, sender, "iconUrl", false);
        v_pop(v, old);
    }
}

static void v_message(struct vctx *v, const json_t *m)
{
    if (!json_is_object(m)) {
        v_fail(v, NULL, "Must be an object");
        return;
    }
    const json_t *t = v_string(v, m, "type", true, 1, 0);
    if (!t)
        return;
    for (size_t i = 0; i < sizeof message_types / sizeof message_types[0]; i++) {
        if (strcmp(json_string_value(t), message_types[i].type) == 0) {
            message_types[i].check(v, m);
            v_msg_common(v, m);
            return;
        }
    }
    v_fail(v, "type",
           "Must be one of the following values: [text, textV2, sticker, image, "
           "video, audio, location, imagemap, template, flex, coupon]");
}

static void v_messages(struct vctx *v, const json_t *body)
{
    const json_t *arr = v_array(v, body, "messages", true, 1, SIM_MAX_MESSAGES);
    size_t i;
    const json_t *m;
    json_array_foreach(arr, i, m)
    {
        size_t old = v_push(v, "messages[%zu]", i);
        v_message(v, m);
        v_pop(v, old);
    }
}

/* --- request bodies ---------------------------------------------------- */

/* An array of non-empty user id strings under key. */
static void v_user_ids(struct vctx *v, const json_t *body, const char *key, size_t max)
{
    const json_t *arr = v_array(v, body, key, true, 1, max);
    size_t i;
    const json_t *id;
    json_array_foreach(arr, i, id)
    {
        if (!json_is_string(id) || json_string_length(id) == 0) {
            size_t old = v_push(v, "%s[%zu]", key, i);
            v_fail(v, NULL, "Must be a non-empty string");
            v_pop(v, old);
        }
    }
}

static void v_aggregation_units(struct vctx *v, const json_t *body, size_t max)
{
    const json_t *arr = v_array(v, body, "customAggregationUnits", false, 0, max);
    size_t i;
    const json_t *u;
    json_array_foreach(arr, i, u)
    {
        const char *s = json_string_value(u);
        size_t n = s ? strlen(s) : 0;
        bool ok = n >= 1 && n <= 30;
        for (size_t k = 0; ok && k < n; k++)
            ok = (s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') ||
                 (s[k] >= '0' && s[k] <= '9') || s[k] == '_';
        if (!ok) {
            size_t old = v_push(v, "customAggregationUnits[%zu]", i);
            v_fail(v, NULL, "Must match ^[a-zA-Z0-9_]{1,30}$");
            v_pop(v, old);
        }
    }
}

static const char *const recipient_types[] = {"operator", "audience", "redelivery", NULL};

static void v_narrowcast(struct vctx *v, const json_t *body)
{
    const json_t *r = v_object(v, body, "recipient", false);
    if (r) {
        size_t old = v_push(v, "recipient");
        v_type(v, r, recipient_types, "operator, audience, redelivery");
        v_pop(v, old);
    }
    v_object(v, body, "filter", false);
    const json_t *limit = v_object(v, body, "limit", false);
    if (limit) {
        size_t old = v_push(v, "limit");
        v_integer(v, limit, "max", false, 1);
        v_boolean(v, limit, "upToRemainingQuota");
        v_boolean(v, limit, "forbidPartialDelivery");
        v_pop(v, old);
    }
}

static void v_body(struct vctx *v, enum sim_endpoint ep, const json_t *body)
{
    switch (ep) {
    case SIM_EP_REPLY:
        v_string(v, body, "replyToken", true, 1, 0);
        break;
    case SIM_EP_PUSH:
        v_string(v, body, "to", true, 1, 0);
        v_aggregation_units(v, body, 100);
        break;
    case SIM_EP_MULTICAST:
        v_user_ids(v, body, "to", SIM_MAX_MULTICAST);
        v_aggregation_units(v, body, 1);
        break;
    case SIM_EP_NARROWCAST:
        v_narrowcast(v, body);
        break;
    case SIM_EP_RICHMENU_BULK_LINK:
        v_string(v, body, "richMenuId", true, 1, 0);
        v_user_ids(v, body, "userIds", 500);
        return; /* no messages */
    case SIM_EP_RICHMENU_BULK_UNLINK:
        v_user_ids(v, body, "userIds", 500);
        return;
    default:
        break;
    }
    v_boolean(v, body, "notificationDisabled");
    v_messages(v, body);
}

static void verr_finish(struct sim_verr *err)
{
    snprintf(err->message, sizeof err->message, "The request body has %zu error(s)", err->nerrors);
}

int sim_validate_body(enum sim_endpoint ep, const char *body, size_t len, json_t **out,
                      struct sim_verr *err)
{
    memset(err, 0, sizeof *err);
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_loadb(body ? body : "", body ? len : 0, 0, &jerr);
    if (!root) {
        snprintf(err->message, sizeof err->message,
                 "The request body could not be parsed as JSON (line: %d, column: %d)", jerr.line,
                 jerr.column);
        err->nerrors = 1;
        return -1;
    }
    if (!json_is_object(root)) {
        sim_verr_set(err, "The request body must be a JSON object");
        json_decref(root);
        return -1;
    }
    struct vctx v = {.err = err};
    v_body(&v, ep, root);
    if (err->nerrors) {
        verr_finish(err);
        json_decref(root);
        return -1;
    }
    *out = root;
    return 0;
}

int sim_validate_messages(const json_t *messages, struct sim_verr *err)
{
    memset(err, 0, sizeof *err);
    json_t *wrap = json_object();
    if (!wrap) {
        sim_verr_set(err, "Out of memory");
        return -1;
    }
    /* json_object_set increments; the caller keeps its reference. */
    json_object_set(wrap, "messages", (json_t *)messages);
    struct vctx v = {.err = err};
    v_messages(&v, wrap);
    json_decref(wrap);
    if (err->nerrors) {
        verr_finish(err);
        return -1;
    }
    return 0;
}

char *sim_verr_json(const struct sim_verr *err)
{
    json_t *root = json_pack("{s:s}", "message", err->message);
    if (!root)
        return NULL;
    if (err->ndetails) {
        json_t *details = json_array();
        for (size_t i = 0; details && i < err->ndetails; i++) {
            json_t *d = json_pack("{s:s}", "message", err->details[i].message);
            if (d && err->details[i].property[0])
                json_object_set_new(d, "property", json_string(err->details[i].property));
            json_array_append_new(details, d);
        }
        json_object_set_new(root, "details", details);
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}
