/* Scenario bodies (see scenario_input.h): one reader per level, each
 * refusing unknown members and naming the path of what it refuses. Values
 * from the body are never quoted in a reason, only member names. */
#include "scenario_input.h"

#include <string.h>
#include <strings.h>

#include "jsonf.h"
#include "line_message.h"
#include "timing.h"

bool scenario_input_uuid_valid(const char *s)
{
    if (!s || strlen(s) != SCENARIO_UUID_LEN)
        return false;
    for (int i = 0; i < SCENARIO_UUID_LEN; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

static bool route_valid(const char *s, size_t len)
{
    if (len < 1 || len > SCENARIO_ROUTE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* obj.key as a UUID string. */
static int uuid_read(const struct jsonf *obj, const char *key, unsigned flags, const char **out)
{
    const char *s = NULL;
    int rc = jsonf_string(obj, key, flags, 64, &s, NULL);
    if (rc <= 0)
        return rc;
    if (!scenario_input_uuid_valid(s))
        return jsonf_fail(obj, key, JSONF_VALUE, "must be a UUID");
    *out = s;
    return 1;
}

/* obj.key as a tag or field name: 1..64 characters, no control characters. */
static int name_read(const struct jsonf *obj, const char *key, unsigned flags, const char **out)
{
    return jsonf_string(obj, key, flags | JSONF_NONEMPTY | JSONF_PLAIN | JSONF_CHARS,
                        SCENARIO_TAG_MAX, out, NULL);
}

/* One LINE message object, checked as the Messaging API defines it
 * (common/line_message.h). vars NULL: field names in variables are
 * segmentation's; the scheduler cannot check them. */
static int message_check(const struct jsonf *arr, size_t i)
{
    struct jsonf msg;
    if (jsonf_item_object(arr, i, &msg) < 0)
        return -1;
    return line_message_check(&msg, NULL) == 1 ? 0 : -1;
}

int scenario_input_messages(const struct jsonf *obj, const char *key, unsigned flags,
                            struct jsonf *child)
{
    int rc = jsonf_array(obj, key, flags, SCENARIO_MESSAGES_MAX, child);
    if (rc <= 0)
        return rc;
    size_t n = jsonf_size(child);
    if (n == 0)
        return jsonf_fail(obj, key, JSONF_VALUE, "must hold 1 to %d messages",
                          SCENARIO_MESSAGES_MAX);
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= message_check(child, i) < 0;
    return bad ? -1 : 1;
}

/* --- actions ----------------------------------------------------------------------- */

enum action_type {
    ACTION_ADD_TAG,
    ACTION_REMOVE_TAG,
    ACTION_SET_FIELD,
    ACTION_ADD_TO_FIELD,
    ACTION_SEND,
    ACTION_SEND_TEMPLATE,
    ACTION_START_SCENARIO,
    ACTION_STOP_SCENARIO,
    ACTION_SET_REMINDER,
    ACTION_LINK_RICH_MENU,
    ACTION_UNLINK_RICH_MENU,
    ACTION_TYPES_N,
};

static const char *const action_types[ACTION_TYPES_N] = {
    "add_tag",      "remove_tag",     "set_field",       "add_to_field",
    "send",         "send_template",  "start_scenario",  "stop_scenario",
    "set_reminder", "link_rich_menu", "unlink_rich_menu"};

/* set_reminder's goal_at: an RFC 3339 time or "field:NAME". */
static int goal_at_read(const struct jsonf *act)
{
    const char *s;
    size_t len;
    if (jsonf_string(act, "goal_at", JSONF_REQUIRED | JSONF_PLAIN, 6 + SCENARIO_TAG_MAX * 4, &s,
                     &len) < 0)
        return -1;
    int64_t ms;
    if (len > 6 && strncmp(s, "field:", 6) == 0)
        return 0;
    if (timing_rfc3339_parse(s, len, &ms) != 0)
        return jsonf_fail(act, "goal_at", JSONF_VALUE,
                          "must be an RFC 3339 time or \"field:NAME\"");
    return 0;
}

static int action_check(const struct jsonf *arr, size_t i)
{
    struct jsonf act;
    if (jsonf_item_object(arr, i, &act) < 0)
        return -1;
    int type = -1;
    if (jsonf_enum(&act, "type", JSONF_REQUIRED, action_types, ACTION_TYPES_N, &type) < 0)
        return -1;
    const char *s;
    struct jsonf sub;
    switch ((enum action_type)type) {
    case ACTION_ADD_TAG:
    case ACTION_REMOVE_TAG: {
        static const char *const known[] = {"type", "tag"};
        return jsonf_known(&act, known, 2) < 0 || name_read(&act, "tag", JSONF_REQUIRED, &s) < 0
                   ? -1
                   : 0;
    }
    case ACTION_SET_FIELD:
    case ACTION_ADD_TO_FIELD: {
        static const char *const known[] = {"type", "field", "value"};
        if (jsonf_known(&act, known, 3) < 0 || name_read(&act, "field", JSONF_REQUIRED, &s) < 0)
            return -1;
        if (!json_object_get(act.node, "value"))
            return jsonf_fail(&act, "value", JSONF_MISSING, "missing");
        double d;
        if (type == ACTION_ADD_TO_FIELD && jsonf_number(&act, "value", JSONF_REQUIRED, &d) < 0)
            return -1;
        return 0;
    }
    case ACTION_SEND: {
        static const char *const known[] = {"type", "messages"};
        return jsonf_known(&act, known, 2) < 0 ||
                       scenario_input_messages(&act, "messages", JSONF_REQUIRED, &sub) < 0
                   ? -1
                   : 0;
    }
    case ACTION_SEND_TEMPLATE: {
        static const char *const known[] = {"type", "template_id"};
        return jsonf_known(&act, known, 2) < 0 ||
                       uuid_read(&act, "template_id", JSONF_REQUIRED, &s) < 0
                   ? -1
                   : 0;
    }
    case ACTION_START_SCENARIO:
    case ACTION_STOP_SCENARIO: {
        static const char *const known[] = {"type", "scenario_id"};
        return jsonf_known(&act, known, 2) < 0 ||
                       uuid_read(&act, "scenario_id", JSONF_REQUIRED, &s) < 0
                   ? -1
                   : 0;
    }
    case ACTION_SET_REMINDER: {
        static const char *const known[] = {"type", "reminder_id", "goal_at"};
        return jsonf_known(&act, known, 3) < 0 ||
                       uuid_read(&act, "reminder_id", JSONF_REQUIRED, &s) < 0 ||
                       goal_at_read(&act) < 0
                   ? -1
                   : 0;
    }
    case ACTION_LINK_RICH_MENU: {
        static const char *const known[] = {"type", "rich_menu_id"};
        return jsonf_known(&act, known, 2) < 0 ||
                       jsonf_string(&act, "rich_menu_id",
                                    JSONF_REQUIRED | JSONF_NONEMPTY | JSONF_PLAIN, 128, &s,
                                    NULL) < 0
                   ? -1
                   : 0;
    }
    case ACTION_UNLINK_RICH_MENU: {
        static const char *const known[] = {"type"};
        return jsonf_known(&act, known, 1) < 0 ? -1 : 0;
    }
    case ACTION_TYPES_N:
        break;
    }
    return -1;
}

int scenario_input_actions(const struct jsonf *obj, const char *key, unsigned flags,
                           struct jsonf *child)
{
    int rc = jsonf_array(obj, key, flags, SCENARIO_ACTIONS_MAX, child);
    if (rc <= 0)
        return rc;
    if (jsonf_size(child) == 0)
        return jsonf_fail(obj, key, JSONF_VALUE, "must hold 1 to %d actions", SCENARIO_ACTIONS_MAX);
    int bad = 0;
    for (size_t i = 0; i < jsonf_size(child); i++)
        bad |= action_check(child, i) < 0;
    return bad ? -1 : 1;
}

/* --- steps -------------------------------------------------------------------------- */

static int timing_read(const struct jsonf *step, struct timing *t)
{
    struct jsonf tm;
    if (jsonf_object(step, "timing", JSONF_REQUIRED, &tm) < 0)
        return -1;
    bool after = json_object_get(tm.node, "after_s") || json_object_get(tm.node, "from");
    bool day = json_object_get(tm.node, "day") || json_object_get(tm.node, "at");
    if (after && day)
        return jsonf_fail(step, "timing", JSONF_VALUE,
                          "exactly one form: {after_s, from} or {day, at}");
    if (!after && !day)
        return jsonf_fail(step, "timing", JSONF_MISSING, "must have after_s, or day and at");
    if (after) {
        static const char *const known[] = {"after_s", "from"};
        static const char *const froms[] = {"previous", "start"};
        int from = 0;
        *t = (struct timing){.kind = TIMING_AFTER};
        if (jsonf_known(&tm, known, 2) < 0 ||
            jsonf_int(&tm, "after_s", JSONF_REQUIRED, 0, TIMING_AFTER_S_MAX, &t->after_s) < 0 ||
            jsonf_enum(&tm, "from", 0, froms, 2, &from) < 0)
            return -1;
        t->from = from == 1 ? TIMING_FROM_START : TIMING_FROM_PREVIOUS;
        return 0;
    }
    static const char *const known[] = {"day", "at"};
    int64_t n;
    const char *at;
    size_t len;
    *t = (struct timing){.kind = TIMING_DAY_AT};
    if (jsonf_known(&tm, known, 2) < 0 ||
        jsonf_int(&tm, "day", JSONF_REQUIRED, 0, TIMING_DAY_MAX, &n) < 0 ||
        jsonf_string(&tm, "at", JSONF_REQUIRED, 16, &at, &len) < 0)
        return -1;
    t->day = (int)n;
    if (timing_hhmm_parse(at, len, &t->at_min) != 0)
        return jsonf_fail(&tm, "at", JSONF_VALUE, "must be HH:MM, 00:00 to 23:59");
    return 0;
}

static int step_read(const struct jsonf *steps, size_t i, struct scenario_step_input *out)
{
    struct jsonf step, sub;
    if (jsonf_item_object(steps, i, &step) < 0)
        return -1;
    static const char *const known[] = {"id", "timing", "messages", "actions", "condition"};
    int bad = jsonf_known(&step, known, 5) < 0;
    bad |= uuid_read(&step, "id", JSONF_NULLABLE, &out->id) < 0;
    bad |= timing_read(&step, &out->timing) < 0;
    int rc = scenario_input_messages(&step, "messages", 0, &sub);
    out->messages = rc > 0 ? sub.node : NULL;
    bad |= rc < 0;
    rc = scenario_input_actions(&step, "actions", 0, &sub);
    out->actions = rc > 0 ? sub.node : NULL;
    bad |= rc < 0;
    rc = jsonf_object(&step, "condition", 0, &sub);
    out->condition = rc > 0 ? sub.node : NULL;
    bad |= rc < 0;
    if (!bad && !out->messages && !out->actions)
        return jsonf_item_fail(steps, i, JSONF_MISSING, "a step needs messages, actions or both");
    return bad ? -1 : 0;
}

/* --- the scenario ------------------------------------------------------------------- */

static int trigger_read(const struct jsonf *root, struct scenario_input *out)
{
    static const char *const types[] = {"friend_added", "tag_added", "manual"};
    struct jsonf trig;
    int type = -1;
    if (jsonf_object(root, "trigger", JSONF_REQUIRED, &trig) < 0 ||
        jsonf_enum(&trig, "type", JSONF_REQUIRED, types, 3, &type) < 0)
        return -1;
    out->trigger = (enum scenario_trigger)type;
    if (out->trigger == SCENARIO_TRIGGER_FRIEND_ADDED) {
        static const char *const known[] = {"type", "route"};
        size_t len;
        int rc;
        if (jsonf_known(&trig, known, 2) < 0 ||
            (rc = jsonf_string(&trig, "route", JSONF_NULLABLE, SCENARIO_ROUTE_MAX, &out->route,
                               &len)) < 0)
            return -1;
        if (rc > 0 && !route_valid(out->route, len))
            return jsonf_fail(&trig, "route", JSONF_VALUE, "must match [A-Za-z0-9_-]{1,32}");
        return 0;
    }
    if (out->trigger == SCENARIO_TRIGGER_TAG_ADDED) {
        static const char *const known[] = {"type", "tag"};
        return jsonf_known(&trig, known, 2) < 0 ||
                       name_read(&trig, "tag", JSONF_REQUIRED, &out->tag) < 0
                   ? -1
                   : 0;
    }
    static const char *const known[] = {"type"};
    return jsonf_known(&trig, known, 1) < 0 ? -1 : 0;
}

static int stop_on_read(const struct jsonf *root, struct scenario_input *out)
{
    static const char *const known[] = {"tags", "blocked"};
    struct jsonf stop, tags;
    int rc = jsonf_object(root, "stop_on", 0, &stop);
    if (rc <= 0)
        return rc;
    if (jsonf_known(&stop, known, 2) < 0 ||
        (rc = jsonf_array(&stop, "tags", 0, SCENARIO_STOP_TAGS_MAX, &tags)) < 0 ||
        jsonf_bool(&stop, "blocked", 0, &out->stop_blocked) < 0)
        return -1;
    if (rc > 0) {
        out->stop_tags = tags.node;
        for (size_t i = 0; i < jsonf_size(&tags); i++) {
            const char *s;
            if (jsonf_item_string(&tags, i, JSONF_NONEMPTY | JSONF_PLAIN | JSONF_CHARS,
                                  SCENARIO_TAG_MAX, &s, NULL) < 0)
                return -1;
        }
    }
    return 0;
}

int scenario_input_read(json_t *doc, struct jsonf_reader *reader, struct scenario_input *out)
{
    static const char *const known[] = {"name",    "trigger",          "reentry",
                                        "stop_on", "then_scenario_id", "steps"};
    static const char *const reentries[] = {"once", "always"};
    struct jsonf root, steps;
    memset(out, 0, sizeof *out);
    out->stop_blocked = true;
    jsonf_root(&root, reader, doc);
    if (!json_is_object(doc)) {
        jsonf_fail(&root, NULL, JSONF_TYPE, "must be an object");
        return -1;
    }
    int bad = jsonf_known(&root, known, 6) < 0;
    bad |= jsonf_string(&root, "name", JSONF_REQUIRED | JSONF_NONEMPTY | JSONF_PLAIN | JSONF_CHARS,
                        SCENARIO_NAME_MAX, &out->name, NULL) < 0;
    bad |= trigger_read(&root, out) < 0;
    int reentry = 0;
    bad |= jsonf_enum(&root, "reentry", 0, reentries, 2, &reentry) < 0;
    out->reentry = reentry == 1 ? SCENARIO_REENTRY_ALWAYS : SCENARIO_REENTRY_ONCE;
    bad |= stop_on_read(&root, out) < 0;
    bad |= uuid_read(&root, "then_scenario_id", JSONF_NULLABLE, &out->then_scenario_id) < 0;
    int rc = jsonf_array(&root, "steps", JSONF_REQUIRED, SCENARIO_STEPS_MAX, &steps);
    if (rc > 0 && jsonf_size(&steps) == 0) {
        jsonf_fail(&root, "steps", JSONF_VALUE, "must hold 1 to %d steps", SCENARIO_STEPS_MAX);
        rc = -1;
    }
    bad |= rc < 0;
    if (rc > 0) {
        out->n_steps = jsonf_size(&steps);
        for (size_t i = 0; i < out->n_steps; i++) {
            bad |= step_read(&steps, i, &out->steps[i]) < 0;
            /* A kept step appears once: an edit maps each id to one place. */
            for (size_t j = 0; j < i && out->steps[i].id; j++)
                if (out->steps[j].id && strcasecmp(out->steps[j].id, out->steps[i].id) == 0) {
                    struct jsonf item;
                    jsonf_item_object(&steps, i, &item);
                    bad |= jsonf_fail(&item, "id", JSONF_VALUE, "repeats steps[%zu].id", j) < 0;
                    break;
                }
        }
    }
    return bad ? -1 : 0;
}
