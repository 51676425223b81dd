/* LINE message objects as the Messaging API defines them (text, sticker,
 * image, video, audio, location, imagemap, template, flex, coupon,
 * textV2), checked when they are stored (templates, 1:1 talk, rules,
 * scenarios, broadcasts) so that a bad message is a 400 with a JSON path
 * ("messages[1].text") at creation, not a failed send later. Also the
 * variables a text may hold and their rendering for one friend:
 *   {{display_name}}  {{field:NAME}}  {{field:NAME|fallback}}  {{link:ID}}
 * Pure (the caller's callbacks aside); any thread. Errors are recorded in
 * the jsonf reader of the object passed in. */
#ifndef KIZUNA_LINE_MESSAGE_H
#define KIZUNA_LINE_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "jsonf.h"

#define LINE_MESSAGES_MAX 5
#define LINE_TEXT_MAX 5000       /* characters of a text message */
#define LINE_URL_MAX 2000        /* characters of a content URL */
#define LINE_MESSAGE_BYTES 65536 /* one message object's compact JSON, at most */

/* What a variable names. */
enum line_var_kind { LINE_VAR_DISPLAY_NAME, LINE_VAR_FIELD, LINE_VAR_LINK };

/* Asked for every {{field:NAME}} while checking: 1 when name (len bytes, not
 * NUL-terminated) is a field of the channel, 0 when unknown, -1 on an error
 * of the callback's own (a database). */
typedef int (*line_field_known_fn)(void *ctx, const char *name, size_t len);

struct line_message_vars {
    line_field_known_fn field_known; /* NULL: field names are not checked */
    void *ctx;
};

/* Checks obj.key as an array of 1..LINE_MESSAGES_MAX message objects
 * (required when flags has JSONF_REQUIRED). Returns 1 when present and
 * valid, 0 when absent, -1 when refused (the first error is in the
 * reader: unknown variables and fields are JSONF_UNKNOWN, "unknown_field"),
 * -2 when field_known failed (nothing recorded: the caller's error). */
int line_messages_check(const struct jsonf *obj, const char *key, unsigned flags,
                        const struct line_message_vars *vars);

/* Checks one message object (an item that the caller read with
 * jsonf_item_object). Same returns, 1 for valid. */
int line_message_check(const struct jsonf *msg, const struct line_message_vars *vars);

/* Checks the variables of one text: 0 valid; -1 with *why (static) for a
 * malformed or unknown variable; -2 when field_known failed. unknown_field
 * is set true when the variable's syntax is right but the field is not
 * known. */
int line_text_vars_check(const char *text, size_t len, const struct line_message_vars *vars,
                         const char **why, bool *unknown_field);

/* Writes a variable's value for one friend into out (cap bytes, NUL
 * terminated) and returns 1; 0 when it has none (the fallback, or "", is
 * used); -1 to fail the rendering. name is the field name or link id (len
 * bytes, not NUL-terminated); NULL for display_name. */
typedef int (*line_var_fn)(void *ctx, enum line_var_kind kind, const char *name, size_t len,
                           char *out, size_t cap);

/* text with its variables replaced, as a new malloc'd string (the caller
 * frees), or NULL when fn failed or memory ran out. A malformed variable
 * is left as written (texts are checked when stored). */
char *line_text_render(const char *text, line_var_fn fn, void *ctx);

#endif
