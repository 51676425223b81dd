/* The filter compiler: a filter tree (openapi.yaml, `Filter`) becomes one
 * boolean SQL expression over the friends row `f`. The SQL text is built
 * only from fixed fragments and parameter numbers; every value a client
 * sent (names resolved to ids, numbers, dates, text) travels as a
 * parameter with an explicit cast, so nothing a client writes can change
 * the query's shape. Conditions on tags and fields are EXISTS subqueries
 * keyed by (friend, tag/field), which PostgreSQL turns into semi-joins (and
 * anti-joins under `not`) over the primary keys and value indexes.
 *
 * Every leaf is written so that it is never NULL (a NULL under NOT would
 * drop a friend from both a condition and its negation). Names are
 * resolved through a catalog (filter_db.c for the database), so this file
 * does no I/O of its own. */
#include "filter.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "civil_time.h"
#include "clock.h"
#include "tags.h"
#include "utf8.h"

/* The SQL text of one tree stays under this (a few hundred bytes a node). */
#define FILTER_SQL_MAX (256 * 1024)
#define FILTER_ROUTE_MAX 32
#define FILTER_TIME_MAX 40

struct fc {
    const struct filter_catalog *cat;
    struct jsonf_error *err;
    int first_param;
    int64_t now_ms;
    char *sql;
    size_t len, cap;
    char **params;
    int nparams, params_cap;
    int nodes;
    bool failed;   /* err filled */
    bool internal; /* catalog error or out of memory */
    /* Saved segments being expanded (and the one being stored), for cycles. */
    const char *stack[FILTER_DEPTH_MAX + 2];
    int nstack;
    /* Inside a saved segment: errors are reported at the request's segment
     * node (anchor), the inner path going into the reason. */
    const char *anchor;
};

/* out = a b c, cut to cap (paths and reasons are cut, still readable). */
static void join3(char *out, size_t cap, const char *a, const char *b, const char *c)
{
    size_t n = 0;
    const char *parts[] = {a, b, c};
    for (int i = 0; i < 3; i++)
        for (const char *p = parts[i]; *p && n + 1 < cap; p++)
            out[n++] = *p;
    out[n] = '\0';
}

static int fc_fail(struct fc *c, const char *path, enum jsonf_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fc_fail(struct fc *c, const char *path, enum jsonf_kind kind, const char *fmt, ...)
{
    if (c->failed || c->internal)
        return -1;
    c->failed = true;
    char reason[JSONF_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    c->err->kind = kind;
    if (c->anchor) {
        join3(c->err->path, sizeof c->err->path, c->anchor, "", "");
        join3(c->err->reason, sizeof c->err->reason, path, ": ", reason);
    } else {
        join3(c->err->path, sizeof c->err->path, path, "", "");
        join3(c->err->reason, sizeof c->err->reason, reason, "", "");
    }
    return -1;
}

static int fc_internal(struct fc *c)
{
    c->internal = true;
    return -1;
}

/* Appends a fixed fragment; fmt only ever formats integers (parameter
 * numbers), never a client's value. */
static int fc_sql(struct fc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fc_sql(struct fc *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return fc_internal(c);
    if (c->len + (size_t)n + 1 > FILTER_SQL_MAX)
        return fc_fail(c, "", JSONF_TOO_LONG, "the filter is too large");
    if (c->len + (size_t)n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 256;
        while (cap < c->len + (size_t)n + 1)
            cap *= 2;
        char *sql = realloc(c->sql, cap);
        if (!sql)
            return fc_internal(c);
        c->sql = sql;
        c->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(c->sql + c->len, c->cap - c->len, fmt, ap);
    va_end(ap);
    c->len += (size_t)n;
    return 0;
}

/* Adds a parameter (copied) and returns its number ($n), or -1. */
static int fc_param(struct fc *c, const char *value)
{
    if (c->nparams == c->params_cap) {
        int cap = c->params_cap ? c->params_cap * 2 : 8;
        char **params = realloc(c->params, (size_t)cap * sizeof *params);
        if (!params)
            return fc_internal(c);
        c->params = params;
        c->params_cap = cap;
    }
    char *copy = strdup(value);
    if (!copy)
        return fc_internal(c);
    c->params[c->nparams++] = copy;
    return c->first_param + c->nparams - 1;
}

static int fc_param_i64(struct fc *c, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return fc_param(c, buf);
}

static void path_key(char *out, size_t cap, const char *parent, const char *key)
{
    join3(out, cap, parent, *parent ? "." : "", key);
}

static void path_index(char *out, size_t cap, const char *parent, size_t i)
{
    char item[32];
    snprintf(item, sizeof item, "[%zu]", i);
    join3(out, cap, parent, item, "");
}

/* A client's string: text without NUL, valid UTF-8, 1..max characters
 * (names and values are capped in characters, as tags.c and fields.c do). */
static int fc_string(struct fc *c, const json_t *v, const char *path, size_t max, bool allow_empty,
                     const char **out)
{
    if (!json_is_string(v))
        return fc_fail(c, path, JSONF_TYPE, "must be a string");
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strlen(s) != len)
        return fc_fail(c, path, JSONF_VALUE, "must not contain NUL");
    if (!utf8_valid(s, len))
        return fc_fail(c, path, JSONF_VALUE, "must be valid UTF-8");
    if (len == 0 && !allow_empty)
        return fc_fail(c, path, JSONF_VALUE, "must not be empty");
    size_t chars = 0;
    for (size_t i = 0; i < len; i++)
        chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    if (chars > max)
        return fc_fail(c, path, JSONF_TOO_LONG, "must be at most %zu characters", max);
    *out = s;
    return 0;
}

bool filter_uuid_valid(const char *s)
{
    static const char hex[] = "0123456789abcdefABCDEF";
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : (!s[i] || !strchr(hex, s[i])))
            return false;
    }
    return s[36] == '\0';
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DD", a real day of years 1..9999. */
static bool date_valid(const char *s, size_t len)
{
    int y, m, d;
    if (len < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &m) || s[7] != '-' ||
        !digits(s + 8, 2, &d))
        return false;
    return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= civil_days_in_month(y, m);
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM). */
static bool time_valid(const char *s, size_t len)
{
    int h, mi, sec, oh, om;
    if (len < 20 || len > FILTER_TIME_MAX || !date_valid(s, len) ||
        (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) || s[13] != ':' ||
        !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec) || h > 23 || mi > 59 ||
        sec > 60)
        return false;
    size_t i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start || i - start > 9)
            return false;
    }
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len)
        return true;
    return (s[i] == '+' || s[i] == '-') && i + 6 == len && digits(s + i + 1, 2, &oh) &&
           s[i + 3] == ':' && digits(s + i + 4, 2, &om) && oh <= 23 && om <= 59;
}

/* A valid date-time with its 't' and 'z' as 'T' and 'Z' (RFC 3339 allows
 * either; one form is what reaches the database). out holds
 * FILTER_TIME_MAX + 1 bytes. */
static const char *time_upper(const char *s, char *out)
{
    size_t n = strlen(s);
    memcpy(out, s, n + 1);
    out[10] = 'T';
    if (out[n - 1] == 'z')
        out[n - 1] = 'Z';
    return out;
}

/* Unix ms as RFC 3339 UTC with milliseconds. */
static void time_format(int64_t ms, char out[FILTER_TIME_MAX])
{
    int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int64_t days = civil_day_of(s);
    int64_t y;
    int m;
    civil_date_from_days(days, &y, &m);
    int64_t d = days - civil_days_from_date(y, m, 1) + 1;
    int64_t sod = s - days * CIVIL_DAY_S;
    snprintf(out, FILTER_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (int)(y % 10000), m,
             (int)(d % 100), (int)(sod / 3600 % 100), (int)(sod / 60 % 60), (int)(sod % 60),
             (int)((ms - s * 1000) % 1000));
}

static int compile_node(struct fc *c, const json_t *node, const char *path, int depth);

static int compile_group(struct fc *c, const json_t *items, const char *path, int depth, bool all)
{
    if (!json_is_array(items))
        return fc_fail(c, path, JSONF_TYPE, "must be an array of conditions");
    size_t n = json_array_size(items);
    if (n > FILTER_GROUP_MAX)
        return fc_fail(c, path, JSONF_TOO_LONG, "must have at most %d conditions",
                       FILTER_GROUP_MAX);
    if (n == 0)
        return fc_sql(c, all ? "TRUE" : "FALSE");
    if (fc_sql(c, "(") < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char item[JSONF_PATH_MAX];
        path_index(item, sizeof item, path, i);
        if ((i > 0 && fc_sql(c, all ? " AND " : " OR ") < 0) ||
            compile_node(c, json_array_get(items, i), item, depth + 1) < 0)
            return -1;
    }
    return fc_sql(c, ")");
}

static int compile_tag(struct fc *c, const json_t *v, const char *path)
{
    const char *name;
    if (fc_string(c, v, path, TAG_NAME_MAX, false, &name) < 0)
        return -1;
    int64_t id = c->cat->tag_id(c->cat->ctx, name);
    if (id < 0)
        return fc_internal(c);
    if (id == 0)
        return fc_fail(c, path, JSONF_VALUE, "no such tag in this channel");
    int p = fc_param_i64(c, id);
    if (p < 0)
        return -1;
    return fc_sql(c,
                  "EXISTS (SELECT 1 FROM friend_tags t WHERE t.friend_id = f.id AND t.tag_id = "
                  "$%d::bigint)",
                  p);
}

static int compile_route(struct fc *c, const json_t *v, const char *path)
{
    const char *code;
    if (fc_string(c, v, path, FILTER_ROUTE_MAX, false, &code) < 0)
        return -1;
    if (strspn(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
        strlen(code))
        return fc_fail(c, path, JSONF_VALUE, "must match [A-Za-z0-9_-]{1,32}");
    if (c->cat->route) {
        int known = c->cat->route(c->cat->ctx, code);
        if (known < 0)
            return fc_internal(c);
        if (known == 0)
            return fc_fail(c, path, JSONF_VALUE, "no such route in this channel");
    }
    int p = fc_param(c, code);
    if (p < 0)
        return -1;
    return fc_sql(c, "(f.route IS NOT NULL AND f.route = $%d::text)", p);
}

static int compile_blocked(struct fc *c, const json_t *v, const char *path)
{
    if (!json_is_boolean(v))
        return fc_fail(c, path, JSONF_TYPE, "must be true or false");
    return fc_sql(c, json_is_true(v) ? "f.blocked" : "(NOT f.blocked)");
}

static int compile_within(struct fc *c, const json_t *v, const char *path)
{
    if (!json_is_integer(v))
        return fc_fail(c, path, JSONF_TYPE, "must be an integer number of seconds");
    json_int_t s = json_integer_value(v);
    if (s < 1 || s > FILTER_WITHIN_S_MAX)
        return fc_fail(c, path, JSONF_VALUE, "must be between 1 and %lld", FILTER_WITHIN_S_MAX);
    char since[FILTER_TIME_MAX];
    time_format(c->now_ms - (int64_t)s * 1000, since);
    int p = fc_param(c, since);
    if (p < 0)
        return -1;
    return fc_sql(c, "(f.last_message_at IS NOT NULL AND f.last_message_at >= $%d::timestamptz)",
                  p);
}

static int compile_added_at(struct fc *c, const json_t *v, const char *path)
{
    if (!json_is_object(v))
        return fc_fail(c, path, JSONF_TYPE, "must be an object with gte and/or lt");
    static const char *const keys[] = {"gte", "lt"};
    static const char *const ops[] = {">=", "<"};
    const char *key;
    const json_t *bound;
    json_object_foreach((json_t *)v, key, bound)
    {
        if (strcmp(key, "gte") != 0 && strcmp(key, "lt") != 0)
            return fc_fail(c, path, JSONF_UNKNOWN, "unknown member; allowed: gte, lt");
    }
    if (fc_sql(c, "(f.added_at IS NOT NULL") < 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        bound = json_object_get(v, keys[i]);
        if (!bound)
            continue;
        char at[JSONF_PATH_MAX];
        path_key(at, sizeof at, path, keys[i]);
        const char *t;
        if (fc_string(c, bound, at, FILTER_TIME_MAX, false, &t) < 0)
            return -1;
        char upper[FILTER_TIME_MAX + 1];
        if (!time_valid(t, strlen(t)))
            return fc_fail(c, at, JSONF_VALUE, "must be an RFC 3339 date-time");
        int p = fc_param(c, time_upper(t, upper));
        if (p < 0 || fc_sql(c, " AND f.added_at %s $%d::timestamptz", ops[i], p) < 0)
            return -1;
    }
    return fc_sql(c, ")");
}

static int compile_segment(struct fc *c, const json_t *v, const char *path, int depth)
{
    const char *id;
    if (fc_string(c, v, path, 36, false, &id) < 0)
        return -1;
    if (!filter_uuid_valid(id))
        return fc_fail(c, path, JSONF_VALUE, "must be a segment id (a UUID)");
    for (int i = 0; i < c->nstack; i++)
        if (strcasecmp(c->stack[i], id) == 0)
            return fc_fail(c, path, JSONF_VALUE, "a cycle through saved segments");
    if (depth + 1 > FILTER_DEPTH_MAX)
        return fc_fail(c, path, JSONF_VALUE, "nested deeper than %d", FILTER_DEPTH_MAX);
    json_t *saved = NULL;
    int found = c->cat->segment(c->cat->ctx, id, &saved);
    if (found < 0)
        return fc_internal(c);
    if (found == 0)
        return fc_fail(c, path, JSONF_VALUE, "no such segment in this channel");
    char inner[JSONF_PATH_MAX];
    join3(inner, sizeof inner, "segments[", id, "].filter");
    const char *anchor = c->anchor;
    if (!anchor)
        c->anchor = path;
    c->stack[c->nstack++] = id;
    int rc = compile_node(c, saved, inner, depth + 1);
    c->nstack--;
    c->anchor = anchor;
    json_decref(saved);
    return rc;
}

/* Operators, and which field types take them. */
enum fop { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_CONTAINS, OP_BETWEEN, OP_IS_SET };
static const char *const op_names[] = {"eq", "ne",       "lt",      "le",    "gt",
                                       "ge", "contains", "between", "is_set"};
static const char *const op_sql[] = {"=", "<>", "<", "<=", ">", ">="};

static bool op_fits(enum fop op, enum field_type type)
{
    switch (type) {
    case FIELD_NUMBER:
    case FIELD_DATE:
    case FIELD_DATETIME:
        return op != OP_CONTAINS;
    case FIELD_TEXT:
        return op == OP_EQ || op == OP_NE || op == OP_CONTAINS || op == OP_IS_SET;
    case FIELD_CHOICE:
        return op == OP_EQ || op == OP_NE || op == OP_IS_SET;
    }
    return false;
}

static const char *type_ops(enum field_type type)
{
    switch (type) {
    case FIELD_TEXT:
        return "eq, ne, contains, is_set";
    case FIELD_CHOICE:
        return "eq, ne, is_set";
    default:
        return "eq, ne, lt, le, gt, ge, between, is_set";
    }
}

static const char *type_column(enum field_type type)
{
    switch (type) {
    case FIELD_NUMBER:
        return "number_value";
    case FIELD_DATE:
        return "date_value";
    case FIELD_DATETIME:
        return "time_value";
    default:
        return "text_value";
    }
}

static const char *type_cast(enum field_type type)
{
    switch (type) {
    case FIELD_NUMBER:
        return "numeric";
    case FIELD_DATE:
        return "date";
    case FIELD_DATETIME:
        return "timestamptz";
    default:
        return "text";
    }
}

/* The shortest decimal that reads back as d, so 0.1 is "0.1" (and equals
 * a stored numeric 0.1), not 0.1000000000000000055511151231257827. */
static void real_format(double d, char *buf, size_t cap)
{
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(buf, cap, "%.*g", precision, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* One value for a field of def's type, as a parameter; its number or -1. */
static int field_param(struct fc *c, const struct filter_field *def, const json_t *v,
                       const char *path)
{
    char buf[64];
    const char *text = NULL;
    switch (def->type) {
    case FIELD_NUMBER:
        if (json_is_integer(v))
            snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_real(v))
            real_format(json_real_value(v), buf, sizeof buf);
        else
            return fc_fail(c, path, JSONF_TYPE, "must be a number");
        text = buf;
        break;
    case FIELD_DATE:
        if (fc_string(c, v, path, 10, false, &text) < 0)
            return -1;
        if (!date_valid(text, strlen(text)) || strlen(text) != 10)
            return fc_fail(c, path, JSONF_VALUE, "must be a date YYYY-MM-DD");
        break;
    case FIELD_DATETIME:
        if (fc_string(c, v, path, FILTER_TIME_MAX, false, &text) < 0)
            return -1;
        if (!time_valid(text, strlen(text)))
            return fc_fail(c, path, JSONF_VALUE, "must be an RFC 3339 date-time");
        text = time_upper(text, buf);
        break;
    case FIELD_TEXT:
        if (fc_string(c, v, path, FIELD_TEXT_MAX, true, &text) < 0)
            return -1;
        break;
    case FIELD_CHOICE: {
        if (fc_string(c, v, path, FIELD_TEXT_MAX, false, &text) < 0)
            return -1;
        bool known = false;
        for (size_t i = 0; !known && i < json_array_size(def->choices); i++)
            known = json_is_string(json_array_get(def->choices, i)) &&
                    strcmp(json_string_value(json_array_get(def->choices, i)), text) == 0;
        if (!known)
            return fc_fail(c, path, JSONF_VALUE, "must be one of the field's choices");
        break;
    }
    }
    return fc_param(c, text);
}

static int compile_field_op(struct fc *c, const json_t *node, const char *path,
                            const struct filter_field *def, enum fop op)
{
    char at[JSONF_PATH_MAX];
    path_key(at, sizeof at, path, "value");
    const json_t *v = json_object_get(node, "value");
    const char *col = type_column(def->type);
    const char *cast = type_cast(def->type);
    int pf = fc_param_i64(c, def->id);
    if (pf < 0 ||
        fc_sql(c,
               "EXISTS (SELECT 1 FROM friend_fields v WHERE v.friend_id = f.id AND v.field_id = "
               "$%d::bigint AND ",
               pf) < 0)
        return -1;
    if (op == OP_IS_SET) {
        if (v)
            return fc_fail(c, at, JSONF_UNKNOWN, "is_set takes no value");
        if (fc_sql(c, "v.%s IS NOT NULL", col) < 0)
            return -1;
    } else if (!v) {
        return fc_fail(c, at, JSONF_MISSING, "a value is required");
    } else if (op == OP_BETWEEN) {
        if (!json_is_array(v) || json_array_size(v) != 2)
            return fc_fail(c, at, JSONF_TYPE, "must be [low, high]");
        char lo[JSONF_PATH_MAX], hi[JSONF_PATH_MAX];
        path_index(lo, sizeof lo, at, 0);
        path_index(hi, sizeof hi, at, 1);
        int a = field_param(c, def, json_array_get(v, 0), lo);
        int b = a < 0 ? -1 : field_param(c, def, json_array_get(v, 1), hi);
        if (b < 0 || fc_sql(c, "v.%s BETWEEN $%d::%s AND $%d::%s", col, a, cast, b, cast) < 0)
            return -1;
    } else if (op == OP_CONTAINS) {
        /* strpos, not LIKE: % _ and \ in the value are plain characters. */
        int p = field_param(c, def, v, at);
        if (p < 0 || fc_sql(c, "strpos(lower(v.text_value), lower($%d::text)) > 0", p) < 0)
            return -1;
    } else {
        int p = field_param(c, def, v, at);
        if (p < 0 || fc_sql(c, "v.%s %s $%d::%s", col, op_sql[op], p, cast) < 0)
            return -1;
    }
    return fc_sql(c, ")");
}

static int compile_field(struct fc *c, const json_t *node, const char *path)
{
    const char *key;
    const json_t *member;
    json_object_foreach((json_t *)node, key, member)
    {
        if (strcmp(key, "field") != 0 && strcmp(key, "op") != 0 && strcmp(key, "value") != 0)
            return fc_fail(c, path, JSONF_UNKNOWN,
                           "unknown member in a field condition; allowed: field, op, value");
    }
    char at[JSONF_PATH_MAX];
    path_key(at, sizeof at, path, "field");
    const char *name;
    if (fc_string(c, json_object_get(node, "field"), at, FIELD_NAME_MAX, false, &name) < 0)
        return -1;
    path_key(at, sizeof at, path, "op");
    const json_t *opv = json_object_get(node, "op");
    if (!opv)
        return fc_fail(c, at, JSONF_MISSING, "an operator is required");
    if (!json_is_string(opv))
        return fc_fail(c, at, JSONF_TYPE, "must be a string");
    size_t op = 0;
    while (op < sizeof op_names / sizeof op_names[0] &&
           strcmp(op_names[op], json_string_value(opv)) != 0)
        op++;
    if (op == sizeof op_names / sizeof op_names[0])
        return fc_fail(c, at, JSONF_VALUE,
                       "unknown operator; allowed: eq, ne, lt, le, gt, ge, contains, between, "
                       "is_set");
    struct filter_field def = {0};
    int found = c->cat->field(c->cat->ctx, name, &def);
    if (found < 0)
        return fc_internal(c);
    if (found == 0) {
        path_key(at, sizeof at, path, "field");
        return fc_fail(c, at, JSONF_VALUE, "no such field in this channel");
    }
    int rc;
    if (!op_fits((enum fop)op, def.type))
        rc = fc_fail(c, at, JSONF_VALUE, "does not fit the field's type; allowed: %s",
                     type_ops(def.type));
    else
        rc = compile_field_op(c, node, path, &def, (enum fop)op);
    json_decref(def.choices);
    return rc;
}

static const char *const node_kinds[] = {
    "all",    "any", "not", "tag", "field", "added_at", "blocked", "route", "last_message_within_s",
    "segment"};

static int compile_node(struct fc *c, const json_t *node, const char *path, int depth)
{
    if (depth > FILTER_DEPTH_MAX)
        return fc_fail(c, path, JSONF_VALUE, "nested deeper than %d", FILTER_DEPTH_MAX);
    if (++c->nodes > FILTER_NODES_MAX)
        return fc_fail(c, path, JSONF_TOO_LONG, "the filter has more than %d conditions",
                       FILTER_NODES_MAX);
    if (!json_is_object(node))
        return fc_fail(c, path, JSONF_TYPE, "must be a condition object");
    if (json_object_get(node, "field"))
        return compile_field(c, node, path);
    if (json_object_size(node) != 1)
        return fc_fail(c, path, json_object_size(node) ? JSONF_UNKNOWN : JSONF_MISSING,
                       "must have exactly one of: all, any, not, tag, field, added_at, "
                       "blocked, route, last_message_within_s, segment");
    const char *key = json_object_iter_key(json_object_iter((json_t *)node));
    const json_t *v = json_object_iter_value(json_object_iter((json_t *)node));
    size_t kind = 0;
    while (kind < sizeof node_kinds / sizeof node_kinds[0] && strcmp(node_kinds[kind], key) != 0)
        kind++;
    char at[JSONF_PATH_MAX];
    switch (kind) {
    case 0:
    case 1:
        path_key(at, sizeof at, path, key);
        return compile_group(c, v, at, depth, kind == 0);
    case 2:
        path_key(at, sizeof at, path, "not");
        if (fc_sql(c, "(NOT ") < 0 || compile_node(c, v, at, depth + 1) < 0)
            return -1;
        return fc_sql(c, ")");
    case 3:
        path_key(at, sizeof at, path, "tag");
        return compile_tag(c, v, at);
    case 5:
        path_key(at, sizeof at, path, "added_at");
        return compile_added_at(c, v, at);
    case 6:
        path_key(at, sizeof at, path, "blocked");
        return compile_blocked(c, v, at);
    case 7:
        path_key(at, sizeof at, path, "route");
        return compile_route(c, v, at);
    case 8:
        path_key(at, sizeof at, path, "last_message_within_s");
        return compile_within(c, v, at);
    case 9:
        path_key(at, sizeof at, path, "segment");
        return compile_segment(c, v, at, depth);
    default:
        return fc_fail(c, path, JSONF_UNKNOWN,
                       "unknown condition; expected one of: all, any, not, tag, field, "
                       "added_at, blocked, route, last_message_within_s, segment");
    }
}

void filter_sql_free(struct filter_sql *q)
{
    if (!q)
        return;
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->sql);
    q->sql = NULL;
    q->params = NULL;
    q->nparams = 0;
}

int filter_compile_with(const struct filter_catalog *cat, const json_t *filter,
                        const char *path_prefix, int first_param, const char *self_segment_id,
                        int64_t now_ms, struct filter_sql *out, struct jsonf_error *err)
{
    struct fc c = {.cat = cat,
                   .err = err,
                   .first_param = first_param,
                   .now_ms = now_ms ? now_ms : clock_wall_ms()};
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    if (self_segment_id)
        c.stack[c.nstack++] = self_segment_id;
    const char *prefix = path_prefix ? path_prefix : "";
    int rc = 0;
    if (!filter)
        rc = fc_fail(&c, prefix, JSONF_MISSING, "a filter is required");
    else
        rc = compile_node(&c, filter, prefix, 1);
    if (rc == 0 && !c.sql)
        rc = fc_internal(&c);
    if (rc < 0 || c.failed || c.internal) {
        struct filter_sql tmp = {.sql = c.sql, .params = c.params, .nparams = c.nparams};
        filter_sql_free(&tmp);
        return c.internal ? -2 : -1;
    }
    out->sql = c.sql;
    out->params = c.params;
    out->nparams = c.nparams;
    return 0;
}
