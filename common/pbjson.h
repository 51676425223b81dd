/* Kizuna's protobuf events as JSON, for people and for tools in other
 * languages: kizunactl topics tail prints records with it. It walks the
 * protobuf-c descriptors, so a field added to a .proto shows up here with
 * no code change. Output follows the proto3 JSON mapping where practical
 * (lowerCamelCase names, int64 as strings, bytes as base64, enums by name,
 * default values left out). Only pbjson.c includes jansson. No state: every
 * function may be called from any thread. */
#ifndef KIZUNA_PBJSON_H
#define KIZUNA_PBJSON_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* The descriptor of a kizuna.v1 message by its full name, e.g.
 * "kizuna.v1.WebhookEvent" (the manifest's message_type column). Messages
 * nested in the top-level events ("kizuna.v1.Envelope",
 * "kizuna.v1.TextMessageContent") are found too. Returns NULL for an
 * unknown name. The descriptor is static: never free it. */
const ProtobufCMessageDescriptor *pbjson_find(const char *full_name);

/* msg (borrowed) as one compact JSON object, without a newline. Returns a
 * malloc'd string that the caller frees with free(), or NULL if out of
 * memory or msg is not a protobuf-c message. Each byte of invalid UTF-8 in
 * a string field comes out as U+FFFD, so the result is always valid JSON. */
char *pbjson_encode(const ProtobufCMessage *msg);

/* Unpacks data (borrowed, len bytes) as the message named full_name.
 * Returns a new message that the caller frees with
 * protobuf_c_message_free_unpacked(msg, NULL), or NULL with the reason in
 * errstr: an unknown type, or bytes that are not a valid encoding
 * (truncated, a wrong wire type, a length past the end). Final, not
 * retriable: the same bytes fail the same way. */
ProtobufCMessage *pbjson_decode_bytes(const char *full_name, const uint8_t *data, size_t len,
                                      char *errstr, size_t errcap);

#endif
