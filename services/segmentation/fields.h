/* Custom fields: typed text, number, date, datetime or choice, one value
 * per friend and field. Values are checked against the field's type here,
 * whether they come as JSON (the API, actions) or as text (CSV import), so
 * a wrong value is refused the same way everywhere.
 *
 * CONTRACT (issue 10): other parts build on these signatures; the fields
 * part owns this file and may add to it, not change what is here. */
#ifndef KIZUNA_SEGMENTATION_FIELDS_H
#define KIZUNA_SEGMENTATION_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "kizuna/v1/friend.pb-c.h"

struct db;

enum field_type { FIELD_TEXT, FIELD_NUMBER, FIELD_DATE, FIELD_DATETIME, FIELD_CHOICE };

#define FIELD_NAME_MAX 64
#define FIELD_TEXT_MAX 2000

struct field_def {
    int64_t id;
    char name[FIELD_NAME_MAX + 1];
    enum field_type type;
    json_t *choices; /* array of strings for FIELD_CHOICE, else NULL (owned) */
};

/* A checked value in the text form its column takes: text/choice as is,
 * number as a decimal ("12.5"), date "YYYY-MM-DD", datetime RFC 3339 in
 * UTC. */
struct field_value {
    /* FIELD_TEXT_MAX characters of UTF-8 take up to 4 bytes each (widened
     * by the fields part from FIELD_TEXT_MAX + 1 bytes: source-compatible). */
    char text[FIELD_TEXT_MAX * 4 + 1];
};

/* Loads channel_id's field name: 1 found, 0 unknown, -1 database error.
 * Free def with field_def_clear. */
int field_lookup(struct db *db, const char *channel_id, const char *name, struct field_def *def);
void field_def_clear(struct field_def *def);

/* Checks a JSON value (the API, actions) or a text cell (CSV) against the
 * field's type. 0 with out filled, or -1 with *why set to a static reason
 * ("must be a number"). */
int field_value_from_json(const struct field_def *def, const json_t *v, struct field_value *out,
                          const char **why);
int field_value_from_text(const struct field_def *def, const char *text, struct field_value *out,
                          const char **why);

/* Sets a friend's value inside the caller's transaction and, when it
 * changed, enqueues FieldChanged on friend.events (outbox) with causation.
 * 0 done, -1 database error. */
int field_set(struct db *db, const char *tenant_id, const char *channel_id, const char *user_id,
              int64_t friend_id, const struct field_def *def, const struct field_value *v,
              const char *causation_id);

/* Adds n to a number field (scoring; unset starts from 0), same contract. */
int field_add(struct db *db, const char *tenant_id, const char *channel_id, const char *user_id,
              int64_t friend_id, const struct field_def *def, const char *n_decimal,
              const char *causation_id);

/* Added by the fields part. */

/* A number value's bounds: |n| <= FIELD_NUMBER_LIMIT (also for field_add's
 * n), so a value always fits a double in events and in JSON. */
#define FIELD_NUMBER_LIMIT 1e15

/* "text", "number"... (static); and back: 0 with *type set, or -1. Pure. */
const char *field_type_name(enum field_type type);
int field_type_parse(const char *name, enum field_type *type);

/* True when name (len bytes) is a valid field name: 1..FIELD_NAME_MAX
 * characters of valid UTF-8, no control character and none of / | { }
 * (so {{field:NAME|fallback}} and field:NAME stay readable). Pure. */
bool field_name_valid(const char *name, size_t len);

/* Clears a friend's value (field_set's contract; FieldChanged with no value
 * when there was one). */
int field_clear(struct db *db, const char *tenant_id, const char *channel_id, const char *user_id,
                int64_t friend_id, const struct field_def *def, const char *causation_id);

/* The stored text form of a value (as in struct field_value) as its JSON
 * answer: a number for number fields, a string otherwise. New reference,
 * NULL when text is NULL. Pure. */
json_t *field_value_json(enum field_type type, const char *text);

/* Note: field_add returns -1 also when def is not a number field or n is
 * not a decimal within FIELD_NUMBER_LIMIT; callers check those first (the
 * API answers 400). */

/* A FieldChanged event with its parts in one place (alive as long as the
 * caller's struct): the one shape of field events, whoever emits them
 * (field_set / field_add one at a time, the CSV import in batches). now and
 * before are values in their column's text form (NULL: unset); for a
 * datetime, now_ms / before_ms give the instant when not NULL, else it is
 * read from the text. Strings are borrowed. */
struct field_event {
    Kizuna__V1__FriendEvent ev;
    Kizuna__V1__FieldChanged changed;
    Kizuna__V1__FieldValue value, previous;
    char id_text[24];
};
void field_event_init(struct field_event *e, const struct field_def *def, const char *now,
                      const int64_t *now_ms, const char *before, const int64_t *before_ms);

#endif
