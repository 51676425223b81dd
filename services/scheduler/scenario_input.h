/* The rules a scenario body (POST/PUT /v1/channels/{c}/scenarios, see
 * docs/internals/scheduler.md; openapi.yaml once the routes land) must satisfy, read with
 * common/jsonf.h so that each refusal names its JSON path
 * ("steps[2].timing.at: must be HH:MM"). Only the shape is checked here:
 * whether a tag, route, segment or scenario exists is the caller's check
 * against the database, and a step's condition (a filter tree) is
 * segmentation's to judge when the step is due.
 *
 * Pure: no I/O, no globals; one thread per reader. The result borrows
 * strings and nodes from the jansson document, which must outlive it. */
#ifndef KIZUNA_SCHEDULER_SCENARIO_INPUT_H
#define KIZUNA_SCHEDULER_SCENARIO_INPUT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "jsonf.h"
#include "timing.h"

#define SCENARIO_NAME_MAX 100   /* characters */
#define SCENARIO_STEPS_MAX 100  /* steps per scenario */
#define SCENARIO_MESSAGES_MAX 5 /* LINE's limit per send */
#define SCENARIO_ACTIONS_MAX 20 /* per step */
#define SCENARIO_STOP_TAGS_MAX 20
#define SCENARIO_TAG_MAX 64    /* characters, as segmentation's TAG_NAME_MAX */
#define SCENARIO_ROUTE_MAX 32  /* a route code: [A-Za-z0-9_-]{1,32} */
#define SCENARIO_TEXT_MAX 5000 /* characters of a text message, as LINE */
#define SCENARIO_UUID_LEN 36

enum scenario_trigger {
    SCENARIO_TRIGGER_FRIEND_ADDED = 0,
    SCENARIO_TRIGGER_TAG_ADDED,
    SCENARIO_TRIGGER_MANUAL,
};

enum scenario_reentry {
    SCENARIO_REENTRY_ONCE = 0, /* the default */
    SCENARIO_REENTRY_ALWAYS,
};

/* One step. Nodes are borrowed from the document; NULL when absent. A step
 * has messages, actions or both. */
struct scenario_step_input {
    const char *id; /* PUT: the id of a step kept from the stored scenario; NULL: a new step */
    struct timing timing;
    json_t *messages;  /* array of 1..5 LINE message objects */
    json_t *actions;   /* array of 1..SCENARIO_ACTIONS_MAX Action objects */
    json_t *condition; /* a filter tree (object), judged by segmentation */
};

struct scenario_input {
    const char *name;
    enum scenario_trigger trigger;
    const char *route; /* friend_added: NULL for any route */
    const char *tag;   /* tag_added */
    enum scenario_reentry reentry;
    json_t *stop_tags;            /* array of tag names, NULL when absent */
    bool stop_blocked;            /* default true: a block stops the scenario */
    const char *then_scenario_id; /* NULL when absent */
    size_t n_steps;
    struct scenario_step_input steps[SCENARIO_STEPS_MAX];
};

/* Reads a whole scenario body doc (borrowed) into *out. Returns 0, or -1
 * with the errors in reader (set reader->errors/cap first; the first error
 * is the API's answer). Unknown members are refused at every level. */
int scenario_input_read(json_t *doc, struct jsonf_reader *reader, struct scenario_input *out);

/* obj.key as 1..5 LINE message objects (flags: JSONF_REQUIRED or 0); child
 * is filled as jsonf_array does. Returns 1, 0 (absent) or -1. Shared by
 * steps, the `send` action, broadcasts, reminders and schedules.
 *
 * HOOK(line_message): this does a structural check only (type present and
 * known, text 1..5000 characters). The full LINE validation is being
 * written as common/line_message.{h,c} on branch seg-tags; once it is on
 * main, scenario_input.c's message_check() calls it and nothing else
 * changes. */
int scenario_input_messages(const struct jsonf *obj, const char *key, unsigned flags,
                            struct jsonf *child);

/* obj.key as an array of Action objects (the actions segmentation runs), each with a
 * known "type" and its required members. Returns 1, 0 (absent) or -1. */
int scenario_input_actions(const struct jsonf *obj, const char *key, unsigned flags,
                           struct jsonf *child);

/* Whether s is a UUID in its 8-4-4-4-12 hex form (either case). */
bool scenario_input_uuid_valid(const char *s);

#endif
