/* Protobuf (protobuf-c) to JSON by walking descriptors, so that tools can
 * show any Kizuna event without per-type code. The proto3 JSON mapping is
 * followed where it is practical with protobuf-c 1.4.1:
 *   - names are lowerCamelCase, derived from the field name the way protoc
 *     derives json_name (protobuf-c's descriptors do not carry json_name);
 *   - 64-bit integers are strings (JavaScript numbers lose precision);
 *   - bytes are standard base64 with padding;
 *   - enums are their value names, or the number if the value is unknown;
 *   - default scalars, empty repeated fields and unset messages are left
 *     out, but a set oneof member is always written, even when default;
 *   - NaN and infinities are "NaN", "Infinity", "-Infinity".
 * Fields are written in field-number order, which protobuf-c's descriptors
 * already keep, so the output is deterministic. */
#include "pbjson.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kizuna/v1/channel.pb-c.h"
#include "kizuna/v1/delivery.pb-c.h"
#include "kizuna/v1/due.pb-c.h"
#include "kizuna/v1/envelope.pb-c.h"
#include "kizuna/v1/friend.pb-c.h"
#include "kizuna/v1/inbound.pb-c.h"
#include "kizuna/v1/send.pb-c.h"
#include "kizuna/v1/webhook.pb-c.h"

/* Our schemas nest a few levels deep; this only stops runaway recursion on
 * a hand-built or recursive message. */
#define PBJSON_MAX_DEPTH 32
/* Longest field name we convert; ours are far shorter. */
#define PBJSON_NAME_MAX 128

/* Every top-level event (one per topic in deploy/topics.manifest), plus the
 * envelope. pbjson_find reaches the messages nested in these through their
 * fields, so helper messages need no entry. A new event type needs one. */
static const ProtobufCMessageDescriptor *const pbjson_roots[] = {
    &kizuna__v1__envelope__descriptor,      &kizuna__v1__webhook_event__descriptor,
    &kizuna__v1__inbound_event__descriptor, &kizuna__v1__channel_config__descriptor,
    &kizuna__v1__friend_event__descriptor,  &kizuna__v1__due_event__descriptor,
    &kizuna__v1__send_request__descriptor,  &kizuna__v1__delivery_result__descriptor,
};

static const ProtobufCMessageDescriptor *find_in(const ProtobufCMessageDescriptor *desc,
                                                 const char *name, int depth)
{
    if (strcmp(desc->name, name) == 0)
        return desc;
    if (depth >= PBJSON_MAX_DEPTH)
        return NULL;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields[i];
        if (field->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const ProtobufCMessageDescriptor *found = find_in(field->descriptor, name, depth + 1);
        if (found)
            return found;
    }
    return NULL;
}

const ProtobufCMessageDescriptor *pbjson_find(const char *full_name)
{
    if (!full_name)
        return NULL;
    for (size_t i = 0; i < sizeof pbjson_roots / sizeof pbjson_roots[0]; i++) {
        const ProtobufCMessageDescriptor *found = find_in(pbjson_roots[i], full_name, 0);
        if (found)
            return found;
    }
    return NULL;
}

/* protoc's json_name rule: drop each '_' and upper-case the letter after it. */
static void json_name(const char *name, char *out, size_t cap)
{
    size_t n = 0;
    bool upper = false;
    for (const char *p = name; *p && n + 1 < cap; p++) {
        if (*p == '_') {
            upper = true;
            continue;
        }
        out[n++] = (upper && *p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
        upper = false;
    }
    out[n] = '\0';
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding. Kept here rather than in crypto.c so that
 * pbjson needs only protobuf-c and jansson. */
static json_t *bytes_to_json(const ProtobufCBinaryData *bin)
{
    size_t outlen = 4 * ((bin->len + 2) / 3);
    char *out = malloc(outlen + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < bin->len; i += 3) {
        uint32_t v = (uint32_t)bin->data[i] << 16;
        if (i + 1 < bin->len)
            v |= (uint32_t)bin->data[i + 1] << 8;
        if (i + 2 < bin->len)
            v |= bin->data[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < bin->len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < bin->len ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    json_t *json = json_stringn(out, o);
    free(out);
    return json;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if none
 * starts there. Strict like jansson: no overlongs, surrogates or values
 * past U+10FFFF. */
static size_t utf8_valid_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* A JSON string of s. protobuf-c does not check UTF-8 when it unpacks, so
 * a record may hold invalid bytes: each becomes U+FFFD rather than failing
 * the whole record. */
static json_t *string_to_json(const char *s)
{
    if (!s)
        return json_string("");
    size_t len = strlen(s);
    json_t *json = json_stringn(s, len);
    if (json)
        return json;
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    unsigned char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    const unsigned char *in = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t seq = utf8_valid_len(in + i, len - i);
        if (seq == 0) {
            out[o++] = 0xEF;
            out[o++] = 0xBF;
            out[o++] = 0xBD;
            i++;
        } else {
            memcpy(out + o, in + i, seq);
            o += seq;
            i += seq;
        }
    }
    json = json_stringn((const char *)out, o);
    free(out);
    return json;
}

static json_t *real_to_json(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

static json_t *int64_to_json(int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return json_string(buf);
}

static json_t *uint64_to_json(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return json_string(buf);
}

static json_t *message_to_json(const ProtobufCMessage *msg, int depth);

/* One value of field's type stored at p. */
static json_t *value_to_json(const ProtobufCFieldDescriptor *field, const void *p, int depth)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return int64_to_json(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return uint64_to_json(*(const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return real_to_json(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return real_to_json(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(field->descriptor, v);
        return ev ? json_string(ev->name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING:
        return string_to_json(*(char *const *)p);
    case PROTOBUF_C_TYPE_BYTES:
        return bytes_to_json(p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        return sub ? message_to_json(sub, depth + 1) : json_null();
    }
    }
    return NULL;
}

/* Size of one element of a repeated field of this type, as protobuf-c
 * lays it out in the array. */
static size_t element_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* Whether a singular proto3 field holds its type's default (and so is left
 * out of the JSON). */
static bool is_default(const ProtobufCFieldDescriptor *field, const void *p)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return *(const uint32_t *)p == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)p == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)p;
    case PROTOBUF_C_TYPE_ENUM:
        return *(const int *)p == 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p == NULL;
    }
    return true;
}

/* Whether a singular field is present: the set oneof member, a proto2 or
 * proto3-optional field with its has_ flag, or a non-default proto3
 * field. */
static bool is_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field)
{
    const char *base = (const char *)msg;
    const void *p = base + field->offset;
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + field->quantifier_offset) == field->id;
    if (field->label == PROTOBUF_C_LABEL_REQUIRED)
        return true;
    if (field->label == PROTOBUF_C_LABEL_OPTIONAL) {
        if (field->type == PROTOBUF_C_TYPE_STRING || field->type == PROTOBUF_C_TYPE_MESSAGE)
            return *(const void *const *)p != NULL;
        return *(const protobuf_c_boolean *)(base + field->quantifier_offset);
    }
    return !is_default(field, p);
}

static json_t *repeated_to_json(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field,
                                size_t count, int depth)
{
    const char *elems = *(const char *const *)((const char *)msg + field->offset);
    size_t size = element_size(field->type);
    json_t *array = json_array();
    if (!array || !elems || size == 0)
        goto fail;
    for (size_t i = 0; i < count; i++)
        if (json_array_append_new(array, value_to_json(field, elems + i * size, depth)) != 0)
            goto fail;
    return array;
fail:
    json_decref(array);
    return NULL;
}

static json_t *message_to_json(const ProtobufCMessage *msg, int depth)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    if (depth > PBJSON_MAX_DEPTH || !desc || desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
        return NULL;
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields[i];
        json_t *value;
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(const size_t *)((const char *)msg + field->quantifier_offset);
            if (count == 0)
                continue;
            value = repeated_to_json(msg, field, count, depth);
        } else {
            if (!is_present(msg, field))
                continue;
            value = value_to_json(field, (const char *)msg + field->offset, depth);
        }
        char name[PBJSON_NAME_MAX];
        json_name(field->name, name, sizeof name);
        /* json_object_set_new takes value even when it fails. */
        if (json_object_set_new(obj, name, value) != 0)
            goto fail;
    }
    return obj;
fail:
    json_decref(obj);
    return NULL;
}

char *pbjson_encode(const ProtobufCMessage *msg)
{
    if (!msg)
        return NULL;
    json_t *obj = message_to_json(msg, 0);
    if (!obj)
        return NULL;
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    return text;
}

ProtobufCMessage *pbjson_decode_bytes(const char *full_name, const uint8_t *data, size_t len,
                                      char *errstr, size_t errcap)
{
    static const uint8_t empty[1];
    const ProtobufCMessageDescriptor *desc = pbjson_find(full_name);
    if (!desc) {
        if (errstr && errcap > 0)
            snprintf(errstr, errcap, "unknown message type \"%s\"",
                     full_name ? full_name : "(null)");
        return NULL;
    }
    if (!data && len > 0) {
        if (errstr && errcap > 0)
            snprintf(errstr, errcap, "%s: no data for %zu bytes", desc->name, len);
        return NULL;
    }
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, len, data ? data : empty);
    if (!msg && errstr && errcap > 0)
        snprintf(errstr, errcap, "%s: %zu bytes are not a valid encoding (truncated or corrupt)",
                 desc->name, len);
    return msg;
}
