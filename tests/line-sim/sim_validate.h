/* Request-body validation against LINE's schemas (messaging-api.yml):
 * at most 5 messages, text of at most 5,000 UTF-16 code units, multicast to
 * at most 500 users, and the required fields and basic limits of every
 * message type (text, textV2, sticker, image, video, audio, location,
 * imagemap, template, flex, coupon). Failures come back in LINE's error
 * form: {"message": "The request body has N error(s)", "details":
 * [{"message": ..., "property": "messages[0].text"}]}. Pure functions: no
 * state, no network; any thread. */
#ifndef LINESIM_VALIDATE_H
#define LINESIM_VALIDATE_H

#include <stddef.h>

#include <jansson.h>

#include "sim_endpoint.h"

#define SIM_MAX_MESSAGES 5
#define SIM_MAX_TEXT 5000 /* UTF-16 code units */
#define SIM_MAX_MULTICAST 500
#define SIM_VERR_MAX_DETAILS 16

struct sim_verr_detail {
    char message[128];
    char property[192]; /* empty: not about one property */
};

struct sim_verr {
    char message[192];
    size_t nerrors; /* all errors found; details holds the first few */
    size_t ndetails;
    struct sim_verr_detail details[SIM_VERR_MAX_DETAILS];
};

/* Length in UTF-16 code units of len bytes of UTF-8, which is how LINE
 * counts characters: a character outside the BMP (most emoji) is a
 * surrogate pair and counts 2. Invalid bytes count 1 each. */
size_t sim_utf16_len(const char *s, size_t len);

/* Parses body and validates it for ep (a send endpoint or bulk rich-menu
 * link or unlink). On success returns 0 and *out holds the parsed object (caller owns,
 * json_decref). On failure returns -1, *out is NULL and err is filled; the
 * answer is then 400 with sim_verr_json(err). */
int sim_validate_body(enum sim_endpoint ep, const char *body, size_t len, json_t **out,
                      struct sim_verr *err);

/* Validates a parsed `messages` value on its own (property names start
 * with "messages"). Returns 0, or -1 with err filled. */
int sim_validate_messages(const json_t *messages, struct sim_verr *err);

/* Fills err with a single top-level message and no details. */
void sim_verr_set(struct sim_verr *err, const char *message);

/* LINE's error body for err (malloc'd JSON text), or NULL. */
char *sim_verr_json(const struct sim_verr *err);

#endif
