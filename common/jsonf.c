/* The typed JSON field reader (jsonf.h). A read looks the member up once,
 * checks its type and bounds, and on success touches nothing else: the
 * path is built only for an error, by walking the parent links, so the
 * webhook path (thousands of fields a second) pays no formatting and no
 * allocation for it. */
#include "jsonf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Where a value sits: its container and its key or index. Items are
 * reported as "[i]", members as ".key" (no dot at the document's top). */
struct slot {
    const struct jsonf *parent;
    const char *key; /* NULL: item */
    size_t index;
};

/* Appends s to out[*len..cap), cutting it when full; out stays terminated. */
static void path_append(char *out, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + 1 >= cap)
        return;
    if (n > cap - 1 - *len)
        n = cap - 1 - *len;
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
}

static void step_append(char *out, size_t cap, size_t *len, const char *key, size_t index)
{
    if (key) {
        if (*len > 0)
            path_append(out, cap, len, ".");
        path_append(out, cap, len, key);
    } else {
        char item[32];
        snprintf(item, sizeof item, "[%zu]", index);
        path_append(out, cap, len, item);
    }
}

/* The path of at's container, then at's own step. The chain is walked from
 * the top down, once per level: paths are short and this runs only for an
 * error. */
static void path_format(const struct slot *at, char *out, size_t cap)
{
    size_t len = 0, depth = 0;
    out[0] = '\0';
    for (const struct jsonf *j = at->parent; j && j->parent; j = j->parent)
        depth++;
    for (size_t level = depth; level > 0; level--) {
        const struct jsonf *j = at->parent;
        for (size_t up = 1; up < level; up++)
            j = j->parent;
        step_append(out, cap, &len, j->key, j->index);
    }
    if (at->key || at->index != SIZE_MAX) /* SIZE_MAX: the document itself */
        step_append(out, cap, &len, at->key, at->index);
}

__attribute__((format(printf, 3, 0))) static int
slot_failv(const struct slot *at, enum jsonf_kind kind, const char *fmt, va_list ap)
{
    struct jsonf_reader *r = at->parent->reader;
    if (r->n < r->cap && r->errors) {
        struct jsonf_error *e = &r->errors[r->n];
        e->kind = kind;
        path_format(at, e->path, sizeof e->path);
        vsnprintf(e->reason, sizeof e->reason, fmt, ap);
    }
    r->n++;
    return -1;
}

static int slot_fail(const struct slot *at, enum jsonf_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int slot_fail(const struct slot *at, enum jsonf_kind kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    slot_failv(at, kind, fmt, ap);
    va_end(ap);
    return -1;
}

/* The value at obj.key, or NULL when absent (null too, if nullable). */
static json_t *member_get(const struct jsonf *obj, const char *key, unsigned flags)
{
    json_t *v = obj->node ? json_object_get(obj->node, key) : NULL;
    if (v && json_is_null(v) && (flags & JSONF_NULLABLE))
        return NULL;
    return v;
}

/* Absent: 0, or -1 (MISSING) when required. */
static int absent(const struct slot *at, unsigned flags)
{
    return (flags & JSONF_REQUIRED) ? slot_fail(at, JSONF_MISSING, "missing") : 0;
}

void jsonf_root(struct jsonf *root, struct jsonf_reader *reader, json_t *doc)
{
    root->node = doc;
    root->parent = NULL;
    root->key = NULL;
    root->index = SIZE_MAX;
    root->reader = reader;
}

/* ---- the typed checks, shared by members and items ---------------------- */

/* Characters (code points) of well-formed UTF-8, as jansson guarantees. */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static int string_check(const struct slot *at, json_t *v, unsigned flags, size_t max,
                        const char **out, size_t *len)
{
    if (!json_is_string(v))
        return slot_fail(at, JSONF_TYPE, "must be a string");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if ((flags & JSONF_NONEMPTY) && n == 0)
        return slot_fail(at, JSONF_VALUE, "must not be empty");
    if (flags & JSONF_CHARS) {
        /* A character is at most 4 bytes: only a long string is counted. */
        if (n > max && (n / 4 > max || utf8_chars(s, n) > max))
            return slot_fail(at, JSONF_TOO_LONG, "longer than %zu characters", max);
    } else if (n > max) {
        return slot_fail(at, JSONF_TOO_LONG, "longer than %zu bytes", max);
    }
    if (flags & JSONF_PLAIN) {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x20 || c == 0x7f)
                return slot_fail(at, JSONF_VALUE, "must not contain control characters");
        }
    }
    *out = s;
    if (len)
        *len = n;
    return 1;
}

static int int_check(const struct slot *at, json_t *v, int64_t min, int64_t max, int64_t *out)
{
    if (!json_is_integer(v))
        return slot_fail(at, JSONF_TYPE, "must be an integer");
    int64_t i = (int64_t)json_integer_value(v);
    if (i < min || i > max) {
        if (max == INT64_MAX)
            return slot_fail(at, JSONF_VALUE, "out of range (%" PRId64 " or more)", min);
        if (min == INT64_MIN)
            return slot_fail(at, JSONF_VALUE, "out of range (%" PRId64 " or less)", max);
        return slot_fail(at, JSONF_VALUE, "out of range (%" PRId64 " to %" PRId64 ")", min, max);
    }
    *out = i;
    return 1;
}

static int object_check(const struct slot *at, json_t *v, struct jsonf *child)
{
    if (!json_is_object(v))
        return slot_fail(at, JSONF_TYPE, "must be an object");
    child->node = v;
    return 1;
}

static int array_check(const struct slot *at, json_t *v, size_t max_items, struct jsonf *child)
{
    if (!json_is_array(v))
        return slot_fail(at, JSONF_TYPE, "must be an array");
    if (json_array_size(v) > max_items)
        return slot_fail(at, JSONF_TOO_LONG, "more than %zu items", max_items);
    child->node = v;
    return 1;
}

/* child's link to at; its node stays NULL until the value is accepted. */
static void child_link(const struct slot *at, struct jsonf *child)
{
    child->node = NULL;
    child->parent = at->parent;
    child->key = at->key;
    child->index = at->index;
    child->reader = at->parent->reader;
}

/* ---- members --------------------------------------------------------------- */

int jsonf_string(const struct jsonf *obj, const char *key, unsigned flags, size_t max,
                 const char **out, size_t *len)
{
    const struct slot at = {obj, key, 0};
    flags |= obj->reader->flags;
    json_t *v = member_get(obj, key, flags);
    return v ? string_check(&at, v, flags, max, out, len) : absent(&at, flags);
}

int jsonf_int(const struct jsonf *obj, const char *key, unsigned flags, int64_t min, int64_t max,
              int64_t *out)
{
    const struct slot at = {obj, key, 0};
    flags |= obj->reader->flags;
    json_t *v = member_get(obj, key, flags);
    return v ? int_check(&at, v, min, max, out) : absent(&at, flags);
}

int jsonf_number(const struct jsonf *obj, const char *key, unsigned flags, double *out)
{
    const struct slot at = {obj, key, 0};
    flags |= obj->reader->flags;
    json_t *v = member_get(obj, key, flags);
    if (!v)
        return absent(&at, flags);
    if (!json_is_number(v))
        return slot_fail(&at, JSONF_TYPE, "must be a number");
    *out = json_number_value(v);
    return 1;
}

int jsonf_bool(const struct jsonf *obj, const char *key, unsigned flags, bool *out)
{
    const struct slot at = {obj, key, 0};
    flags |= obj->reader->flags;
    json_t *v = member_get(obj, key, flags);
    if (!v)
        return absent(&at, flags);
    if (!json_is_boolean(v))
        return slot_fail(&at, JSONF_TYPE, "must be a boolean");
    *out = json_is_true(v);
    return 1;
}

/* words[0..n) joined by ", " into out, cut when full. */
static void words_join(const char *const *words, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            path_append(out, cap, &len, ", ");
        path_append(out, cap, &len, words[i]);
    }
}

int jsonf_enum(const struct jsonf *obj, const char *key, unsigned flags, const char *const *words,
               size_t n, int *index)
{
    const struct slot at = {obj, key, 0};
    const char *s;
    flags |= obj->reader->flags;
    json_t *v = member_get(obj, key, flags);
    if (!v)
        return absent(&at, flags);
    if (string_check(&at, v, flags & ~(unsigned)JSONF_CHARS, SIZE_MAX, &s, NULL) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, words[i]) == 0) {
            *index = (int)i;
            return 1;
        }
    }
    if (flags & JSONF_OPEN) {
        *index = -1;
        return 1;
    }
    char list[JSONF_REASON_MAX];
    words_join(words, n, list, sizeof list);
    return slot_fail(&at, JSONF_VALUE, "must be one of %s", list);
}

int jsonf_object(const struct jsonf *obj, const char *key, unsigned flags, struct jsonf *child)
{
    const struct slot at = {obj, key, 0};
    flags |= obj->reader->flags;
    child_link(&at, child);
    json_t *v = member_get(obj, key, flags);
    return v ? object_check(&at, v, child) : absent(&at, flags);
}

int jsonf_array(const struct jsonf *obj, const char *key, unsigned flags, size_t max_items,
                struct jsonf *child)
{
    const struct slot at = {obj, key, 0};
    flags |= obj->reader->flags;
    child_link(&at, child);
    json_t *v = member_get(obj, key, flags);
    return v ? array_check(&at, v, max_items, child) : absent(&at, flags);
}

/* ---- items ------------------------------------------------------------------ */

size_t jsonf_size(const struct jsonf *arr)
{
    return arr->node ? json_array_size(arr->node) : 0;
}

int jsonf_item_string(const struct jsonf *arr, size_t i, unsigned flags, size_t max,
                      const char **out, size_t *len)
{
    const struct slot at = {arr, NULL, i};
    return string_check(&at, json_array_get(arr->node, i), flags | arr->reader->flags, max, out,
                        len);
}

int jsonf_item_int(const struct jsonf *arr, size_t i, int64_t min, int64_t max, int64_t *out)
{
    const struct slot at = {arr, NULL, i};
    return int_check(&at, json_array_get(arr->node, i), min, max, out);
}

int jsonf_item_object(const struct jsonf *arr, size_t i, struct jsonf *child)
{
    const struct slot at = {arr, NULL, i};
    child_link(&at, child);
    return object_check(&at, json_array_get(arr->node, i), child);
}

int jsonf_item_array(const struct jsonf *arr, size_t i, size_t max_items, struct jsonf *child)
{
    const struct slot at = {arr, NULL, i};
    child_link(&at, child);
    return array_check(&at, json_array_get(arr->node, i), max_items, child);
}

/* ---- the caller's own verdicts ------------------------------------------------ */

int jsonf_known(const struct jsonf *obj, const char *const *allowed, size_t n)
{
    const char *key;
    json_t *v;
    int rc = 0;
    if (!json_is_object(obj->node))
        return 0;
    json_object_foreach(obj->node, key, v)
    {
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (known)
            continue;
        char list[JSONF_REASON_MAX - 32];
        words_join(allowed, n, list, sizeof list);
        const struct slot at = {obj, key, 0};
        rc = slot_fail(&at, JSONF_UNKNOWN, "unknown field; allowed: %s", list);
    }
    return rc;
}

/* At obj itself: its own link, seen from its parent. */
static struct slot self_slot(const struct jsonf *obj)
{
    if (!obj->parent)
        return (struct slot){obj, NULL, SIZE_MAX}; /* the document: path "" */
    return (struct slot){obj->parent, obj->key, obj->index};
}

int jsonf_fail(const struct jsonf *obj, const char *key, enum jsonf_kind kind, const char *fmt, ...)
{
    struct slot at = key ? (struct slot){obj, key, 0} : self_slot(obj);
    va_list ap;
    va_start(ap, fmt);
    slot_failv(&at, kind, fmt, ap);
    va_end(ap);
    return -1;
}

int jsonf_item_fail(const struct jsonf *arr, size_t i, enum jsonf_kind kind, const char *fmt, ...)
{
    const struct slot at = {arr, NULL, i};
    va_list ap;
    va_start(ap, fmt);
    slot_failv(&at, kind, fmt, ap);
    va_end(ap);
    return -1;
}

const struct jsonf_error *jsonf_error_first(const struct jsonf_reader *reader)
{
    return reader->n > 0 && reader->cap > 0 && reader->errors ? &reader->errors[0] : NULL;
}

char *jsonf_error_text(const struct jsonf_error *err, char *out, size_t cap)
{
    if (cap == 0)
        return out;
    if (err->path[0])
        snprintf(out, cap, "%s: %s", err->path, err->reason);
    else
        snprintf(out, cap, "%s", err->reason);
    return out;
}

const char *jsonf_kind_code(enum jsonf_kind kind)
{
    switch (kind) {
    case JSONF_MISSING:
        return "missing_field";
    case JSONF_TYPE:
        return "invalid_type";
    case JSONF_TOO_LONG:
        return "too_long";
    case JSONF_VALUE:
        return "invalid_value";
    case JSONF_UNKNOWN:
        return "unknown_field";
    }
    return "invalid_value";
}
