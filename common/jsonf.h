/* Typed reads of JSON request and event fields over a jansson tree, each
 * failure reported as a path and a reason ("steps[2].timing.at: must be a
 * string of form HH:MM"), so every service refuses bad input the same way.
 *
 * A struct jsonf is one object or array of the document plus the link to
 * its parent; the links live on the caller's stack and become a path string
 * only when an error is reported, so reading allocates nothing. Pure: no
 * I/O, no globals; a reader and the links under it belong to one thread.
 *
 * Readers return 1 when the value is present and was read, 0 when it is
 * absent (the output is left as it was: set the default first) and -1 when
 * it is refused (the error is recorded in the reader). Strings are borrowed
 * from the jansson tree: they live as long as the tree. */
#ifndef KIZUNA_JSONF_H
#define KIZUNA_JSONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define JSONF_PATH_MAX 192   /* longer paths are cut, still readable */
#define JSONF_REASON_MAX 160 /* reasons are cut too */

/* What kind of mistake; jsonf_kind_code() names it for an API's error.code. */
enum jsonf_kind {
    JSONF_MISSING = 1, /* "missing_field": a required member is absent */
    JSONF_TYPE,        /* "invalid_type": present with the wrong JSON type */
    JSONF_TOO_LONG,    /* "too_long": a string or array over its cap */
    JSONF_VALUE,       /* "invalid_value": out of range, not in the enum, bad form */
    JSONF_UNKNOWN,     /* "unknown_field": a member the reader does not know */
};

/* One refused value. path may quote a member name from the document (an
 * unknown field): escape it before output and never log it. */
struct jsonf_error {
    enum jsonf_kind kind;
    char path[JSONF_PATH_MAX];     /* "" for the document itself */
    char reason[JSONF_REASON_MAX]; /* "must be an integer" */
};

/* Flags of one read; a reader's own flags are added to every read. */
enum jsonf_flag {
    JSONF_REQUIRED = 1 << 0, /* absent is an error (JSONF_MISSING) */
    JSONF_NULLABLE = 1 << 1, /* JSON null reads as absent (else: a wrong type) */
    JSONF_NONEMPTY = 1 << 2, /* strings: "" is refused */
    JSONF_PLAIN = 1 << 3,    /* strings: no control characters (U+0000-001F, U+007F) */
    JSONF_CHARS = 1 << 4,    /* strings: max counts characters, not bytes */
    JSONF_OPEN = 1 << 5,     /* enums: a word not in the list reads as index -1 */
};

/* The state of one parse: flags added to every read, and where errors go.
 * errors[0..cap) receive the first cap errors (cap 1: the first only); n
 * counts every error, also those past cap. Zero-initialise, then set. */
struct jsonf_reader {
    unsigned flags;
    struct jsonf_error *errors;
    size_t cap;
    size_t n;
};

/* An object or array of the document and where it sits. Fill one with
 * jsonf_root(), jsonf_object(), jsonf_array() or the item readers; it
 * borrows its parent, which must outlive it (both on the stack). */
struct jsonf {
    json_t *node; /* NULL: absent */
    const struct jsonf *parent;
    const char *key; /* member name in the parent object; NULL: item of an array */
    size_t index;
    struct jsonf_reader *reader;
};

/* The document's top value (borrowed), at path "". */
void jsonf_root(struct jsonf *root, struct jsonf_reader *reader, json_t *doc);

/* obj.key as a string of at most max bytes (JSONF_CHARS: characters). *out
 * points into the tree; len (may be NULL) gets its length in bytes. */
int jsonf_string(const struct jsonf *obj, const char *key, unsigned flags, size_t max,
                 const char **out, size_t *len);

/* obj.key as an integer in [min, max]; reals such as 1.0 or 1e3 are refused. */
int jsonf_int(const struct jsonf *obj, const char *key, unsigned flags, int64_t min, int64_t max,
              int64_t *out);

/* obj.key as any JSON number. */
int jsonf_number(const struct jsonf *obj, const char *key, unsigned flags, double *out);

/* obj.key as true or false (not 0, 1 or "true"). */
int jsonf_bool(const struct jsonf *obj, const char *key, unsigned flags, bool *out);

/* obj.key as one of words[0..n): *index gets its position, or -1 for a
 * word not in the list when flags has JSONF_OPEN (else that is refused). */
int jsonf_enum(const struct jsonf *obj, const char *key, unsigned flags, const char *const *words,
               size_t n, int *index);

/* obj.key as an object: child is filled (child->node NULL when absent). */
int jsonf_object(const struct jsonf *obj, const char *key, unsigned flags, struct jsonf *child);

/* obj.key as an array of at most max_items: child is filled as above. */
int jsonf_array(const struct jsonf *obj, const char *key, unsigned flags, size_t max_items,
                struct jsonf *child);

/* Items of an array (i < jsonf_size(arr)), with the same rules as above,
 * except that an item is never absent: a null item is a wrong type, even
 * with JSONF_NULLABLE. They return 1 or -1. */
size_t jsonf_size(const struct jsonf *arr);
int jsonf_item_string(const struct jsonf *arr, size_t i, unsigned flags, size_t max,
                      const char **out, size_t *len);
int jsonf_item_int(const struct jsonf *arr, size_t i, int64_t min, int64_t max, int64_t *out);
int jsonf_item_object(const struct jsonf *arr, size_t i, struct jsonf *child);
int jsonf_item_array(const struct jsonf *arr, size_t i, size_t max_items, struct jsonf *child);

/* Refuses every member of obj whose name is not in allowed[0..n), in the
 * document's order, as JSONF_UNKNOWN "unknown field; allowed: a, b". Returns
 * 0 or -1. */
int jsonf_known(const struct jsonf *obj, const char *const *allowed, size_t n);

/* Records a caller's own verdict on obj.key (key NULL: on obj itself), e.g.
 * a pattern the type alone cannot check. Always returns -1. */
int jsonf_fail(const struct jsonf *obj, const char *key, enum jsonf_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same for item i of arr. */
int jsonf_item_fail(const struct jsonf *arr, size_t i, enum jsonf_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The first error recorded, or NULL. */
const struct jsonf_error *jsonf_error_first(const struct jsonf_reader *reader);

/* "path: reason" (or the reason alone at the document) into out; returns out. */
char *jsonf_error_text(const struct jsonf_error *err, char *out, size_t cap);

/* The API error code for a kind: "missing_field", "invalid_type",
 * "too_long", "invalid_value", "unknown_field". Static strings. */
const char *jsonf_kind_code(enum jsonf_kind kind);

#endif
