/* Custom fields: every value is checked against its field's type here,
 * whichever way it came (JSON from the API and actions, text from a CSV
 * cell), and every change of a friend's value goes through field_set /
 * field_add, which emit FieldChanged only when the value really changed. */
#include "fields.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "civil_time.h"
#include "db.h"
#include "friend_events.h"
#include "utf8.h"

/* A decimal's text: sign, 15 integer digits, a fraction and an exponent fit. */
#define FIELD_DECIMAL_MAX 64

static const char *const type_names[] = {"text", "number", "date", "datetime", "choice"};

const char *field_type_name(enum field_type type)
{
    return (unsigned)type < sizeof type_names / sizeof type_names[0] ? type_names[type] : "text";
}

int field_type_parse(const char *name, enum field_type *type)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strcmp(name, type_names[i]) == 0) {
            *type = (enum field_type)i;
            return 0;
        }
    return -1;
}

/* Characters of valid UTF-8 s (len bytes), or -1 when invalid. */
static long utf8_chars(const char *s, size_t len)
{
    if (!utf8_valid(s, len))
        return -1;
    long n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

bool field_name_valid(const char *name, size_t len)
{
    long chars = utf8_chars(name, len);
    if (chars < 1 || chars > FIELD_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || strchr("/|{}", c))
            return false;
    }
    return true;
}

void field_def_clear(struct field_def *def)
{
    if (def->choices)
        json_decref(def->choices);
    def->choices = NULL;
}

int field_lookup(struct db *db, const char *channel_id, const char *name, struct field_def *def)
{
    struct db_result *res = NULL;
    const char *params[] = {channel_id, name};
    if (db_exec(db,
                "SELECT id, type, array_to_json(choices)::text FROM fields "
                "WHERE channel_id = $1 AND name = $2",
                2, params, &res) != DB_OK)
        return -1;
    int found = db_result_rows(res) == 1;
    if (found) {
        memset(def, 0, sizeof *def);
        def->id = strtoll(db_result_value(res, 0, 0), NULL, 10);
        snprintf(def->name, sizeof def->name, "%s", name);
        if (field_type_parse(db_result_value(res, 0, 1), &def->type) != 0)
            def->type = FIELD_TEXT;
        if (def->type == FIELD_CHOICE && !db_result_isnull(res, 0, 2))
            def->choices = json_loads(db_result_value(res, 0, 2), 0, NULL);
        if (def->type == FIELD_CHOICE && !json_is_array(def->choices)) {
            json_decref(def->choices);
            def->choices = json_array();
        }
    }
    db_result_free(&res);
    return found;
}

/* --- checking values ------------------------------------------------------ */

static int fail(const char **why, const char *reason)
{
    *why = reason;
    return -1;
}

static bool in_range(double v)
{
    return isfinite(v) && fabs(v) <= FIELD_NUMBER_LIMIT;
}

/* A decimal in text: [+-]digits[.digits][(e|E)[+-]digits], nothing else
 * (no hex, inf, nan or spaces), within the limit. Stored without '+'. */
static int number_from_text(const char *s, struct field_value *out, const char **why)
{
    static const char bad[] = "must be a decimal number (e.g. 12 or -3.5)";
    size_t len = strlen(s);
    if (len == 0 || len > FIELD_DECIMAL_MAX)
        return fail(why, bad);
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return fail(why, bad);
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return fail(why, bad);
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return fail(why, bad);
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p != '\0')
        return fail(why, bad);
    if (!in_range(strtod(s, NULL)))
        return fail(why, "must be a number between -1e15 and 1e15");
    snprintf(out->text, sizeof out->text, "%s", s[0] == '+' ? s + 1 : s);
    return 0;
}

/* The shortest %g text that reads back as v. */
static void number_format(double v, char *out, size_t cap)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "YYYY-MM-DD" at s (10 bytes), a real date of years 1..9999: days since
 * 1970-01-01 in *days, or false. */
static bool date_parse(const char *s, int64_t *days)
{
    if (s[4] != '-' || s[7] != '-')
        return false;
    int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > civil_days_in_month(y, m))
        return false;
    *days = civil_days_from_date(y, m, d);
    return true;
}

static int date_from_text(const char *s, struct field_value *out, const char **why)
{
    int64_t days;
    if (strlen(s) != 10 || !date_parse(s, &days))
        return fail(why, "must be a date YYYY-MM-DD");
    snprintf(out->text, sizeof out->text, "%s", s);
    return 0;
}

/* RFC 3339 date-time with any offset ("2026-12-02T09:30:00+09:00", "...Z",
 * a fraction of up to 9 digits, kept to the millisecond): unix ms. */
static bool datetime_parse(const char *s, int64_t *ms)
{
    size_t len = strlen(s);
    int64_t days;
    if (len < 20 || len > 40 || !date_parse(s, &days) || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':')
        return false;
    int hh = digits(s + 11, 2), mi = digits(s + 14, 2), ss = digits(s + 17, 2);
    if (hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 59)
        return false;
    const char *p = s + 19;
    int frac_ms = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        while (isdigit((unsigned char)p[n]))
            n++;
        if (n < 1 || n > 9)
            return false;
        for (int i = 0; i < 3; i++)
            frac_ms = frac_ms * 10 + (i < n ? p[i] - '0' : 0);
        p += n;
    }
    int64_t offset_s = 0;
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        offset_s = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh = digits(p + 1, 2), om = digits(p + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return false;
        offset_s = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
    } else {
        return false;
    }
    int64_t t = days * CIVIL_DAY_S + hh * 3600 + mi * 60 + ss - offset_s;
    *ms = t * 1000 + frac_ms;
    return true;
}

/* unix ms as "YYYY-MM-DDTHH:MM:SS[.mmm]Z"; false outside years 1..9999. */
static bool datetime_format(int64_t ms, char *out, size_t cap)
{
    int64_t t = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int frac = (int)(ms - t * 1000);
    int64_t days = civil_day_of(t);
    int64_t y;
    int m;
    civil_date_from_days(days, &y, &m);
    if (y < 1 || y > 9999)
        return false;
    int d = (int)(days - civil_days_from_date(y, m, 1)) + 1;
    int64_t sod = t - days * CIVIL_DAY_S;
    int hh = (int)(sod / 3600), mi = (int)(sod / 60 % 60), ss = (int)(sod % 60);
    if (frac)
        snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (int)y, m, d, hh, mi, ss, frac);
    else
        snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y, m, d, hh, mi, ss);
    return true;
}

static int datetime_from_text(const char *s, struct field_value *out, const char **why)
{
    int64_t ms;
    if (!datetime_parse(s, &ms) || !datetime_format(ms, out->text, sizeof out->text))
        return fail(why, "must be an RFC 3339 date-time such as 2026-12-02T09:30:00+09:00");
    return 0;
}

static int text_from(const char *s, size_t len, struct field_value *out, const char **why)
{
    long chars = utf8_chars(s, len);
    if (chars < 0 || memchr(s, '\0', len))
        return fail(why, "must be valid UTF-8 text without NUL");
    if (chars > FIELD_TEXT_MAX)
        return fail(why, "must be at most 2000 characters");
    memcpy(out->text, s, len);
    out->text[len] = '\0';
    return 0;
}

static int choice_from_text(const struct field_def *def, const char *s, struct field_value *out,
                            const char **why)
{
    size_t i;
    json_t *c;
    json_array_foreach(def->choices, i, c)
    {
        if (json_is_string(c) && strcmp(json_string_value(c), s) == 0) {
            snprintf(out->text, sizeof out->text, "%s", s);
            return 0;
        }
    }
    return fail(why, "must be one of the field's choices");
}

int field_value_from_text(const struct field_def *def, const char *text, struct field_value *out,
                          const char **why)
{
    switch (def->type) {
    case FIELD_NUMBER:
        return number_from_text(text, out, why);
    case FIELD_DATE:
        return date_from_text(text, out, why);
    case FIELD_DATETIME:
        return datetime_from_text(text, out, why);
    case FIELD_CHOICE:
        return choice_from_text(def, text, out, why);
    case FIELD_TEXT:
    default:
        return text_from(text, strlen(text), out, why);
    }
}

int field_value_from_json(const struct field_def *def, const json_t *v, struct field_value *out,
                          const char **why)
{
    if (def->type == FIELD_NUMBER) {
        if (json_is_integer(v)) {
            json_int_t n = json_integer_value(v);
            if (!in_range((double)n))
                return fail(why, "must be a number between -1e15 and 1e15");
            snprintf(out->text, sizeof out->text, "%" JSON_INTEGER_FORMAT, n);
            return 0;
        }
        if (json_is_real(v)) {
            double d = json_real_value(v);
            if (!in_range(d))
                return fail(why, "must be a number between -1e15 and 1e15");
            number_format(d, out->text, sizeof out->text);
            return 0;
        }
        return fail(why, "must be a number");
    }
    if (!json_is_string(v)) {
        static const char *const reasons[] = {
            "must be a string", "must be a number", "must be a date string YYYY-MM-DD",
            "must be an RFC 3339 date-time string", "must be a string (one of the choices)"};
        return fail(why, reasons[def->type <= FIELD_CHOICE ? def->type : 0]);
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (def->type == FIELD_TEXT)
        return text_from(s, len, out, why);
    if (strlen(s) != len)
        return fail(why, "must not contain NUL");
    return field_value_from_text(def, s, out, why);
}

json_t *field_value_json(enum field_type type, const char *text)
{
    if (!text)
        return NULL;
    if (type != FIELD_NUMBER)
        return json_string(text);
    if (!strpbrk(text, ".eE")) {
        char *end;
        long long n = strtoll(text, &end, 10);
        if (*end == '\0')
            return json_integer(n);
    }
    return json_real(strtod(text, NULL));
}

/* --- storing values ------------------------------------------------------- */

/* Fills fv from a value's text form for an event; a datetime's instant is
 * *ms when given, else read from text. */
static void event_value(enum field_type type, const char *text, const int64_t *ms,
                        Kizuna__V1__FieldValue *fv)
{
    switch (type) {
    case FIELD_NUMBER:
        fv->value_case = KIZUNA__V1__FIELD_VALUE__VALUE_NUMBER_VALUE;
        fv->number_value = strtod(text, NULL);
        break;
    case FIELD_DATE:
        fv->value_case = KIZUNA__V1__FIELD_VALUE__VALUE_DATE_VALUE;
        fv->date_value = (char *)text;
        break;
    case FIELD_DATETIME: {
        int64_t t = 0;
        if (ms)
            t = *ms;
        else
            datetime_parse(text, &t);
        fv->value_case = KIZUNA__V1__FIELD_VALUE__VALUE_DATETIME_VALUE;
        fv->datetime_value = t;
        break;
    }
    case FIELD_TEXT:
    case FIELD_CHOICE:
    default:
        fv->value_case = KIZUNA__V1__FIELD_VALUE__VALUE_TEXT_VALUE;
        fv->text_value = (char *)text;
        break;
    }
}

void field_event_init(struct field_event *e, const struct field_def *def, const char *now,
                      const int64_t *now_ms, const char *before, const int64_t *before_ms)
{
    *e = (struct field_event){.ev = KIZUNA__V1__FRIEND_EVENT__INIT,
                              .changed = KIZUNA__V1__FIELD_CHANGED__INIT,
                              .value = KIZUNA__V1__FIELD_VALUE__INIT,
                              .previous = KIZUNA__V1__FIELD_VALUE__INIT};
    snprintf(e->id_text, sizeof e->id_text, "%" PRId64, def->id);
    e->changed.field_id = e->id_text;
    e->changed.field_name = (char *)def->name;
    if (now) {
        event_value(def->type, now, now_ms, &e->value);
        e->changed.value = &e->value;
    }
    if (before) {
        event_value(def->type, before, before_ms, &e->previous);
        e->changed.previous = &e->previous;
    }
    e->ev.event_case = KIZUNA__V1__FRIEND_EVENT__EVENT_FIELD_CHANGED;
    e->ev.field_changed = &e->changed;
}

static int emit_changed(struct db *db, const char *tenant_id, const char *channel_id,
                        const char *user_id, const struct field_def *def, const char *now,
                        const char *before, const char *causation_id)
{
    struct field_event e;
    field_event_init(&e, def, now, NULL, before, NULL);
    return friend_event_emit(db, tenant_id, channel_id, user_id, causation_id, &e.ev);
}

/* The current value (locked) in its text form, and whether it equals v
 * (compared as the type's values, so 5 and 5.0 are equal). */
static const char *const select_sql[] = {
    /* text */
    "SELECT text_value, text_value IS NOT DISTINCT FROM $3 FROM friend_fields "
    "WHERE field_id = $1::bigint AND friend_id = $2::bigint FOR UPDATE",
    /* number */
    "SELECT number_value::text, number_value IS NOT DISTINCT FROM $3::numeric FROM friend_fields "
    "WHERE field_id = $1::bigint AND friend_id = $2::bigint FOR UPDATE",
    /* date */
    "SELECT to_char(date_value, 'YYYY-MM-DD'), date_value IS NOT DISTINCT FROM $3::date "
    "FROM friend_fields WHERE field_id = $1::bigint AND friend_id = $2::bigint FOR UPDATE",
    /* datetime: the same UTC text form as datetime_format */
    "SELECT CASE WHEN time_value IS NULL THEN NULL "
    "WHEN extract(milliseconds FROM time_value)::numeric % 1000 = 0 "
    "THEN to_char(time_value AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
    "ELSE to_char(time_value AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') END, "
    "time_value IS NOT DISTINCT FROM $3::timestamptz "
    "FROM friend_fields WHERE field_id = $1::bigint AND friend_id = $2::bigint FOR UPDATE",
    /* choice */
    "SELECT text_value, text_value IS NOT DISTINCT FROM $3 FROM friend_fields "
    "WHERE field_id = $1::bigint AND friend_id = $2::bigint FOR UPDATE",
};

#define UPSERT_HEAD "INSERT INTO friend_fields (field_id, friend_id, "
#define UPSERT_TAIL                                                                       \
    " ON CONFLICT (field_id, friend_id) DO UPDATE SET text_value = EXCLUDED.text_value, " \
    "number_value = EXCLUDED.number_value, date_value = EXCLUDED.date_value, "            \
    "time_value = EXCLUDED.time_value, updated_at = now()"

static const char *const upsert_sql[] = {
    UPSERT_HEAD "text_value) VALUES ($1::bigint, $2::bigint, $3)" UPSERT_TAIL,
    UPSERT_HEAD "number_value) VALUES ($1::bigint, $2::bigint, $3::numeric)" UPSERT_TAIL,
    UPSERT_HEAD "date_value) VALUES ($1::bigint, $2::bigint, $3::date)" UPSERT_TAIL,
    UPSERT_HEAD "time_value) VALUES ($1::bigint, $2::bigint, $3::timestamptz)" UPSERT_TAIL,
    UPSERT_HEAD "text_value) VALUES ($1::bigint, $2::bigint, $3)" UPSERT_TAIL,
};

int field_set(struct db *db, const char *tenant_id, const char *channel_id, const char *user_id,
              int64_t friend_id, const struct field_def *def, const struct field_value *v,
              const char *causation_id)
{
    if ((unsigned)def->type > FIELD_CHOICE)
        return -1;
    char field_text[24], friend_text[24];
    snprintf(field_text, sizeof field_text, "%" PRId64, def->id);
    snprintf(friend_text, sizeof friend_text, "%" PRId64, friend_id);
    const char *params[] = {field_text, friend_text, v ? v->text : NULL};
    struct db_result *res = NULL;
    if (db_exec(db, select_sql[def->type], 3, params, &res) != DB_OK)
        return -1;
    bool had = db_result_rows(res) == 1 && !db_result_isnull(res, 0, 0);
    bool same = db_result_rows(res) == 1 ? db_result_value(res, 0, 1)[0] == 't' : !v;
    char *before = had ? strdup(db_result_value(res, 0, 0)) : NULL;
    db_result_free(&res);
    if (same || (had && !before)) {
        free(before);
        return had && !before ? -1 : 0;
    }
    enum db_status st;
    if (v)
        st = db_exec(db, upsert_sql[def->type], 3, params, NULL);
    else
        st = db_exec(db,
                     "DELETE FROM friend_fields WHERE field_id = $1::bigint AND "
                     "friend_id = $2::bigint",
                     2, params, NULL);
    int rc = -1;
    if (st == DB_OK)
        rc = emit_changed(db, tenant_id, channel_id, user_id, def, v ? v->text : NULL, before,
                          causation_id);
    free(before);
    return rc;
}

int field_clear(struct db *db, const char *tenant_id, const char *channel_id, const char *user_id,
                int64_t friend_id, const struct field_def *def, const char *causation_id)
{
    return field_set(db, tenant_id, channel_id, user_id, friend_id, def, NULL, causation_id);
}

int field_add(struct db *db, const char *tenant_id, const char *channel_id, const char *user_id,
              int64_t friend_id, const struct field_def *def, const char *n_decimal,
              const char *causation_id)
{
    struct field_value n;
    const char *why;
    if (def->type != FIELD_NUMBER || number_from_text(n_decimal, &n, &why) != 0)
        return -1;
    char field_text[24], friend_text[24];
    snprintf(field_text, sizeof field_text, "%" PRId64, def->id);
    snprintf(friend_text, sizeof friend_text, "%" PRId64, friend_id);
    const char *params[] = {field_text, friend_text, n.text};
    struct db_result *res = NULL;
    if (db_exec(db,
                "SELECT number_value::text FROM friend_fields "
                "WHERE field_id = $1::bigint AND friend_id = $2::bigint FOR UPDATE",
                2, params, &res) != DB_OK)
        return -1;
    bool had = db_result_rows(res) == 1 && !db_result_isnull(res, 0, 0);
    char *before = had ? strdup(db_result_value(res, 0, 0)) : NULL;
    db_result_free(&res);
    if (had && !before)
        return -1;
    int rc = -1;
    if (db_exec(db,
                "INSERT INTO friend_fields (field_id, friend_id, number_value) "
                "VALUES ($1::bigint, $2::bigint, $3::numeric) "
                "ON CONFLICT (field_id, friend_id) DO UPDATE SET "
                "number_value = COALESCE(friend_fields.number_value, 0) + EXCLUDED.number_value, "
                "text_value = NULL, date_value = NULL, time_value = NULL, updated_at = now() "
                "RETURNING number_value::text, $3::numeric = 0",
                3, params, &res) == DB_OK &&
        db_result_rows(res) == 1) {
        bool unchanged = had && db_result_value(res, 0, 1)[0] == 't';
        rc = unchanged ? 0
                       : emit_changed(db, tenant_id, channel_id, user_id, def,
                                      db_result_value(res, 0, 0), before, causation_id);
    }
    db_result_free(&res);
    free(before);
    return rc;
}
