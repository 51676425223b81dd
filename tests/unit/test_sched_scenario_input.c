/* Unit tests for services/scheduler/scenario_input: a full scenario body is
 * read with its steps' timings, and a table of bad bodies is refused, each
 * with the JSON path and the error code the API will answer with. */
#include <criterion/criterion.h>

#include <string.h>

#include <jansson.h>

#include "jsonf.h"
#include "scheduler/scenario_input.h"

static json_t *doc_of(const char *text)
{
    json_error_t e;
    json_t *doc = json_loads(text, 0, &e);
    cr_assert_not_null(doc, "bad test JSON: %s: %s", e.text, text);
    return doc;
}

Test(sched_scenario_input, a_full_scenario_is_read_with_its_steps)
{
    json_t *doc = doc_of(
        "{\"name\":\"welcome\",\"trigger\":{\"type\":\"friend_added\",\"route\":\"qr-Shop_1\"},"
        "\"reentry\":\"always\",\"stop_on\":{\"tags\":[\"bought\"],\"blocked\":false},"
        "\"then_scenario_id\":\"0b9e8d6c-1f2a-4b3c-9d4e-5f6a7b8c9d0e\","
        "\"steps\":["
        "{\"timing\":{\"after_s\":0,\"from\":\"start\"},\"messages\":[{\"type\":\"text\","
        "\"text\":\"hi {{display_name}}\"}]},"
        "{\"timing\":{\"after_s\":3600},\"actions\":[{\"type\":\"add_tag\",\"tag\":\"warm\"},"
        "{\"type\":\"set_reminder\",\"reminder_id\":\"0b9e8d6c-1f2a-4b3c-9d4e-5f6a7b8c9d0e\","
        "\"goal_at\":\"2027-01-05T10:00:00+09:00\"},{\"type\":\"unlink_rich_menu\"}]},"
        "{\"id\":\"0b9e8d6c-1f2a-4b3c-9d4e-5f6a7b8c9d0f\",\"timing\":{\"day\":2,\"at\":\"09:30\"},"
        "\"messages\":[{\"type\":\"sticker\","
        "\"packageId\":\"446\",\"stickerId\":\"1988\"}],\"condition\":{\"tag\":\"warm\"}}]}");
    struct jsonf_error errs[4];
    struct jsonf_reader reader = {.errors = errs, .cap = 4};
    static struct scenario_input in;
    int rc = scenario_input_read(doc, &reader, &in);
    char text[256] = "";
    if (reader.n)
        jsonf_error_text(&errs[0], text, sizeof text);
    cr_assert_eq(rc, 0, "%s", text);
    cr_expect_str_eq(in.name, "welcome");
    cr_expect_eq(in.trigger, SCENARIO_TRIGGER_FRIEND_ADDED);
    cr_expect_str_eq(in.route, "qr-Shop_1");
    cr_expect_eq(in.reentry, SCENARIO_REENTRY_ALWAYS);
    cr_expect_eq(json_array_size(in.stop_tags), 1);
    cr_expect(!in.stop_blocked);
    cr_expect_str_eq(in.then_scenario_id, "0b9e8d6c-1f2a-4b3c-9d4e-5f6a7b8c9d0e");
    cr_assert_eq(in.n_steps, 3);
    cr_expect_eq(in.steps[0].timing.kind, TIMING_AFTER);
    cr_expect_eq(in.steps[0].timing.from, TIMING_FROM_START);
    cr_expect_not_null(in.steps[0].messages);
    cr_expect_null(in.steps[0].actions);
    cr_expect_eq(in.steps[1].timing.from, TIMING_FROM_PREVIOUS);
    cr_expect_eq(in.steps[1].timing.after_s, 3600);
    cr_expect_eq(json_array_size(in.steps[1].actions), 3);
    cr_expect_eq(in.steps[2].timing.kind, TIMING_DAY_AT);
    cr_expect_eq(in.steps[2].timing.day, 2);
    cr_expect_eq(in.steps[2].timing.at_min, 9 * 60 + 30);
    cr_expect_not_null(in.steps[2].condition);
    cr_expect_null(in.steps[0].id);
    cr_expect_str_eq(in.steps[2].id, "0b9e8d6c-1f2a-4b3c-9d4e-5f6a7b8c9d0f");
    json_decref(doc);
}

Test(sched_scenario_input, defaults_are_reentry_once_and_stop_on_block)
{
    json_t *doc = doc_of("{\"name\":\"n\",\"trigger\":{\"type\":\"manual\"},\"steps\":[{\"timing\":"
                         "{\"after_s\":5},\"actions\":[{\"type\":\"add_tag\",\"tag\":\"t\"}]}]}");
    struct jsonf_error err;
    struct jsonf_reader reader = {.errors = &err, .cap = 1};
    static struct scenario_input in;
    cr_assert_eq(scenario_input_read(doc, &reader, &in), 0);
    cr_expect_eq(in.reentry, SCENARIO_REENTRY_ONCE);
    cr_expect(in.stop_blocked);
    cr_expect_null(in.route);
    cr_expect_null(in.then_scenario_id);
    json_decref(doc);
}

/* A valid step, for building bad bodies around one mistake. */
#define STEP "{\"timing\":{\"after_s\":5},\"messages\":[{\"type\":\"text\",\"text\":\"x\"}]}"
#define MSG "{\"type\":\"text\",\"text\":\"x\"}"
#define HEAD "\"name\":\"n\",\"trigger\":{\"type\":\"manual\"}"
#define UUID "0b9e8d6c-1f2a-4b3c-9d4e-5f6a7b8c9d0e"
#define WITH_STEP(s) "{" HEAD ",\"steps\":[" STEP "," s "]}"
#define WITH_ACTION(a) WITH_STEP("{\"timing\":{\"after_s\":1},\"actions\":[" a "]}")

Test(sched_scenario_input, bad_bodies_are_refused_with_the_path_and_code)
{
    static const struct {
        const char *name, *body, *path, *code;
    } bad[] = {
        {"not an object", "[1]", "", "invalid_type"},
        {"no name", "{\"trigger\":{\"type\":\"manual\"},\"steps\":[" STEP "]}", "name",
         "missing_field"},
        {"empty name", "{\"name\":\"\",\"trigger\":{\"type\":\"manual\"},\"steps\":[" STEP "]}",
         "name", "invalid_value"},
        {"unknown member", "{" HEAD ",\"steps\":[" STEP "],\"color\":1}", "color", "unknown_field"},
        {"no trigger", "{\"name\":\"n\",\"steps\":[" STEP "]}", "trigger", "missing_field"},
        {"unknown trigger type",
         "{\"name\":\"n\",\"trigger\":{\"type\":\"birthday\"},\"steps\":[" STEP "]}",
         "trigger.type", "invalid_value"},
        {"tag_added without tag",
         "{\"name\":\"n\",\"trigger\":{\"type\":\"tag_added\"},\"steps\":[" STEP "]}",
         "trigger.tag", "missing_field"},
        {"route with a space",
         "{\"name\":\"n\",\"trigger\":{\"type\":\"friend_added\",\"route\":"
         "\"a b\"},\"steps\":[" STEP "]}",
         "trigger.route", "invalid_value"},
        {"route of 33",
         "{\"name\":\"n\",\"trigger\":{\"type\":\"friend_added\",\"route\":"
         "\"abcdefghijabcdefghijabcdefghijabc\"},\"steps\":[" STEP "]}",
         "trigger.route", "too_long"},
        {"route on manual",
         "{\"name\":\"n\",\"trigger\":{\"type\":\"manual\",\"route\":\"a\"},"
         "\"steps\":[" STEP "]}",
         "trigger.route", "unknown_field"},
        {"bad reentry", "{" HEAD ",\"reentry\":\"twice\",\"steps\":[" STEP "]}", "reentry",
         "invalid_value"},
        {"stop tag not a string", "{" HEAD ",\"stop_on\":{\"tags\":[3]},\"steps\":[" STEP "]}",
         "stop_on.tags[0]", "invalid_type"},
        {"blocked not a bool", "{" HEAD ",\"stop_on\":{\"blocked\":1},\"steps\":[" STEP "]}",
         "stop_on.blocked", "invalid_type"},
        {"then not a uuid", "{" HEAD ",\"then_scenario_id\":\"welcome\",\"steps\":[" STEP "]}",
         "then_scenario_id", "invalid_value"},
        {"no steps", "{" HEAD "}", "steps", "missing_field"},
        {"zero steps", "{" HEAD ",\"steps\":[]}", "steps", "invalid_value"},
        {"negative delay", WITH_STEP("{\"timing\":{\"after_s\":-1},\"messages\":[" MSG "]}"),
         "steps[1].timing.after_s", "invalid_value"},
        {"delay as a string", WITH_STEP("{\"timing\":{\"after_s\":\"5\"},\"messages\":[" MSG "]}"),
         "steps[1].timing.after_s", "invalid_type"},
        {"delay as a real", WITH_STEP("{\"timing\":{\"after_s\":1.5},\"messages\":[" MSG "]}"),
         "steps[1].timing.after_s", "invalid_type"},
        {"bad from",
         WITH_STEP("{\"timing\":{\"after_s\":1,\"from\":\"end\"},\"messages\":[" MSG "]}"),
         "steps[1].timing.from", "invalid_value"},
        {"25:00", WITH_STEP("{\"timing\":{\"day\":1,\"at\":\"25:00\"},\"messages\":[" MSG "]}"),
         "steps[1].timing.at", "invalid_value"},
        {"9:00", WITH_STEP("{\"timing\":{\"day\":1,\"at\":\"9:00\"},\"messages\":[" MSG "]}"),
         "steps[1].timing.at", "invalid_value"},
        {"day -1", WITH_STEP("{\"timing\":{\"day\":-1,\"at\":\"09:00\"},\"messages\":[" MSG "]}"),
         "steps[1].timing.day", "invalid_value"},
        {"day without at", WITH_STEP("{\"timing\":{\"day\":1},\"messages\":[" MSG "]}"),
         "steps[1].timing.at", "missing_field"},
        {"both timing forms",
         WITH_STEP("{\"timing\":{\"after_s\":1,\"day\":1,\"at\":\"09:00\"},\"messages\":[" MSG
                   "]}"),
         "steps[1].timing", "invalid_value"},
        {"empty timing", WITH_STEP("{\"timing\":{},\"messages\":[" MSG "]}"), "steps[1].timing",
         "missing_field"},
        {"no timing", WITH_STEP("{\"messages\":[" MSG "]}"), "steps[1].timing", "missing_field"},
        {"neither messages nor actions", WITH_STEP("{\"timing\":{\"after_s\":1}}"), "steps[1]",
         "missing_field"},
        {"six messages",
         WITH_STEP("{\"timing\":{\"after_s\":1},\"messages\":[" MSG "," MSG "," MSG "," MSG "," MSG
                   "," MSG "]}"),
         "steps[1].messages", "too_long"},
        {"zero messages", WITH_STEP("{\"timing\":{\"after_s\":1},\"messages\":[]}"),
         "steps[1].messages", "invalid_value"},
        {"message without type",
         WITH_STEP("{\"timing\":{\"after_s\":1},\"messages\":[{\"text\":"
                   "\"x\"}]}"),
         "steps[1].messages[0].type", "missing_field"},
        {"unknown message type",
         WITH_STEP("{\"timing\":{\"after_s\":1},\"messages\":[{\"type\":"
                   "\"fax\"}]}"),
         "steps[1].messages[0].type", "invalid_value"},
        {"text without text",
         WITH_STEP("{\"timing\":{\"after_s\":1},\"messages\":[" MSG ",{\"type\":\"text\"}]}"),
         "steps[1].messages[1].text", "missing_field"},
        {"message not an object", WITH_STEP("{\"timing\":{\"after_s\":1},\"messages\":[\"hi\"]}"),
         "steps[1].messages[0]", "invalid_type"},
        {"condition not an object",
         WITH_STEP("{\"timing\":{\"after_s\":1},\"messages\":[" MSG "],\"condition\":[]}"),
         "steps[1].condition", "invalid_type"},
        {"unknown step member",
         WITH_STEP("{\"timing\":{\"after_s\":1},\"messages\":[" MSG "],\"wait\":1}"),
         "steps[1].wait", "unknown_field"},
        {"unknown action type", WITH_ACTION("{\"type\":\"explode\"}"), "steps[1].actions[0].type",
         "invalid_value"},
        {"action without type", WITH_ACTION("{\"tag\":\"x\"}"), "steps[1].actions[0].type",
         "missing_field"},
        {"add_tag without tag", WITH_ACTION("{\"type\":\"add_tag\"}"), "steps[1].actions[0].tag",
         "missing_field"},
        {"add_to_field with text",
         WITH_ACTION("{\"type\":\"add_to_field\",\"field\":\"score\","
                     "\"value\":\"ten\"}"),
         "steps[1].actions[0].value", "invalid_type"},
        {"set_field without value", WITH_ACTION("{\"type\":\"set_field\",\"field\":\"f\"}"),
         "steps[1].actions[0].value", "missing_field"},
        {"start_scenario not a uuid",
         WITH_ACTION("{\"type\":\"start_scenario\",\"scenario_id\":"
                     "\"x\"}"),
         "steps[1].actions[0].scenario_id", "invalid_value"},
        {"set_reminder bad goal",
         WITH_ACTION("{\"type\":\"set_reminder\",\"reminder_id\":\"" UUID
                     "\",\"goal_at\":\"tomorrow\"}"),
         "steps[1].actions[0].goal_at", "invalid_value"},
        {"set_reminder feb 30",
         WITH_ACTION("{\"type\":\"set_reminder\",\"reminder_id\":\"" UUID
                     "\",\"goal_at\":\"2027-02-30T10:00:00Z\"}"),
         "steps[1].actions[0].goal_at", "invalid_value"},
        {"send with six messages",
         WITH_ACTION("{\"type\":\"send\",\"messages\":[" MSG "," MSG "," MSG "," MSG "," MSG "," MSG
                     "]}"),
         "steps[1].actions[0].messages", "too_long"},
        {"unknown action member", WITH_ACTION("{\"type\":\"unlink_rich_menu\",\"id\":1}"),
         "steps[1].actions[0].id", "unknown_field"},
        {"step id not a uuid",
         WITH_STEP("{\"id\":\"s1\",\"timing\":{\"after_s\":1},"
                   "\"messages\":[" MSG "]}"),
         "steps[1].id", "invalid_value"},
        {"step id twice",
         "{" HEAD ",\"steps\":[{\"id\":\"" UUID "\",\"timing\":{\"after_s\":1},"
         "\"messages\":[" MSG "]},{\"id\":\"" UUID "\",\"timing\":{\"after_s\":1},"
         "\"messages\":[" MSG "]}]}",
         "steps[1].id", "invalid_value"},
        {"zero actions", WITH_STEP("{\"timing\":{\"after_s\":1},\"actions\":[]}"),
         "steps[1].actions", "invalid_value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *doc = doc_of(bad[i].body);
        struct jsonf_error err = {0};
        struct jsonf_reader reader = {.errors = &err, .cap = 1};
        static struct scenario_input in;
        cr_expect_eq(scenario_input_read(doc, &reader, &in), -1, "%s: accepted", bad[i].name);
        cr_expect_geq(reader.n, 1, "%s: no error", bad[i].name);
        cr_expect_str_eq(err.path, bad[i].path, "%s: path '%s' (%s)", bad[i].name, err.path,
                         err.reason);
        cr_expect_str_eq(jsonf_kind_code(err.kind), bad[i].code, "%s: code %s (%s)", bad[i].name,
                         jsonf_kind_code(err.kind), err.reason);
        json_decref(doc);
    }
}

Test(sched_scenario_input, too_many_steps_and_long_texts_are_refused)
{
    json_t *doc = doc_of("{" HEAD ",\"steps\":[]}");
    json_t *steps = json_object_get(doc, "steps");
    json_t *step = doc_of(STEP);
    for (int i = 0; i < SCENARIO_STEPS_MAX + 1; i++)
        json_array_append_new(steps, json_deep_copy(step));
    struct jsonf_error err = {0};
    struct jsonf_reader reader = {.errors = &err, .cap = 1};
    static struct scenario_input in;
    cr_expect_eq(scenario_input_read(doc, &reader, &in), -1);
    cr_expect_str_eq(err.path, "steps");
    cr_expect_eq(err.kind, JSONF_TOO_LONG);
    json_array_remove(steps, 0);
    reader.n = 0;
    cr_expect_eq(scenario_input_read(doc, &reader, &in), 0, "%s", err.reason);
    cr_expect_eq(in.n_steps, SCENARIO_STEPS_MAX);

    char text[SCENARIO_TEXT_MAX + 2];
    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    json_t *msg = json_array_get(json_object_get(json_array_get(steps, 3), "messages"), 0);
    json_object_set_new(msg, "text", json_string(text));
    reader.n = 0;
    cr_expect_eq(scenario_input_read(doc, &reader, &in), -1);
    cr_expect_str_eq(err.path, "steps[3].messages[0].text");
    cr_expect_eq(err.kind, JSONF_TOO_LONG);
    json_decref(step);
    json_decref(doc);
}
