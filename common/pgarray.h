/* One-dimensional PostgreSQL arrays in the binary wire format, so that a
 * whole batch travels as one parameter of one statement ($1::text[],
 * $9::bytea[]) and the server unnests it: one round trip, one parse and one
 * plan per batch instead of per row. Binary needs no quoting or escaping,
 * bytea included. Numbers travel as text elements and are cast in SQL.
 * Plain data; not thread-safe. */
#ifndef KIZUNA_PGARRAY_H
#define KIZUNA_PGARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGARRAY_BYTEA_OID 17u
#define PGARRAY_TEXT_OID 25u

struct pgarray {
    uint8_t *buf;
    size_t len, cap;
    int32_t count;
    uint32_t elem_oid;
    bool has_null;
    bool failed; /* out of memory (or too big): pgarray_finish says so */
};

/* An empty array of elem_oid elements (PGARRAY_TEXT_OID, PGARRAY_BYTEA_OID). */
void pgarray_init(struct pgarray *a, uint32_t elem_oid);
/* Appends one element: len bytes at p, or SQL NULL when p is NULL. */
void pgarray_add(struct pgarray *a, const void *p, size_t len);
/* A C string (NULL: SQL NULL). */
void pgarray_add_text(struct pgarray *a, const char *s);
/* A number, as its decimal text. */
void pgarray_add_ll(struct pgarray *a, long long v);
/* Completes the header. Returns the value to pass with binary format 1 and
 * its length in *len, or NULL when memory ran out. Valid until the next
 * add or pgarray_free. */
const char *pgarray_finish(struct pgarray *a, int *len);
void pgarray_free(struct pgarray *a);

#endif
