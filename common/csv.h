/* RFC 4180 CSV in UTF-8: a writer that quotes what needs it, and a strict
 * parser that says what is wrong and where. Pure; any thread; each object
 * belongs to one thread at a time.
 *
 * Writing: fields are separated by ',' and rows end with CRLF. A field is
 * quoted when it contains ',', '"', CR or LF (or starts or ends with a
 * space, which spreadsheets would trim), and a quote inside is doubled. An
 * optional UTF-8 byte order mark first makes Excel read the file as UTF-8.
 *
 * Parsing: a leading BOM is skipped. Rows end with CRLF, LF or a lone CR.
 * A quoted field may hold ',', CR, LF and doubled quotes. Refused, with the
 * record's number (1 = the first record, the header if there is one; blank
 * lines are skipped and not counted): a quote left open at the end, a quote
 * inside an unquoted field, anything but ',' or a line end after a closing
 * quote (CSV_ERR_QUOTE); a record over the row cap, its line end excluded
 * (CSV_ERR_ROW_TOO_LONG); bytes that are not well-formed UTF-8
 * (CSV_ERR_UTF8); a NUL byte (CSV_ERR_NUL, PostgreSQL text cannot hold it);
 * more than CSV_CELLS_MAX cells (CSV_ERR_CELLS). */
#ifndef KIZUNA_CSV_H
#define KIZUNA_CSV_H

#include <stdbool.h>
#include <stddef.h>

#define CSV_BOM "\xEF\xBB\xBF"
/* The row cap csv_parser_init uses for 0: one record's bytes as they stand
 * in the input (quotes included). */
#define CSV_ROW_MAX_DEFAULT (64 * 1024)
/* Cells in one record. */
#define CSV_CELLS_MAX 1024

/* --- writer ------------------------------------------------------------- */

/* A growable output buffer. Zero-initialise; csv_out_free releases it. */
struct csv_out {
    char *data;
    size_t len;
    size_t cap;
    bool in_row; /* a field was written since the last row end */
    bool failed; /* out of memory: everything after is dropped */
};

/* Appends the UTF-8 BOM. */
void csv_out_bom(struct csv_out *o);
/* Appends one field of len bytes (a NULL s is an empty field), after a
 * comma unless it is the row's first. */
void csv_out_field(struct csv_out *o, const char *s, size_t len);
/* csv_out_field with strlen(s) (s may be NULL). */
void csv_out_cell(struct csv_out *o, const char *s);
/* Appends len bytes as they are: no quoting, no separator (building a
 * cell's text in a second csv_out before writing it as a field). */
void csv_out_raw(struct csv_out *o, const char *s, size_t len);
/* Ends the row with CRLF. */
void csv_out_row_end(struct csv_out *o);
/* Empties the buffer, keeping its memory (and clears failed). */
void csv_out_reset(struct csv_out *o);
void csv_out_free(struct csv_out *o);

/* --- parser ------------------------------------------------------------- */

enum csv_error {
    CSV_OK = 0,
    CSV_ERR_QUOTE,
    CSV_ERR_ROW_TOO_LONG,
    CSV_ERR_UTF8,
    CSV_ERR_NUL,
    CSV_ERR_CELLS,
    CSV_ERR_MEMORY,
};

/* Reads records from a buffer the caller keeps alive and unchanged while
 * the parser is used. */
struct csv_parser {
    const char *p, *end;
    size_t row_max;
    long record; /* the last record read (1-based), or the one in error */
    enum csv_error error;
    char *buf; /* the current record's cells, each NUL-terminated */
    size_t *offs;
    size_t ncells;
    size_t cells_cap;
};

/* Starts parsing data[0..len) with a row cap (0: CSV_ROW_MAX_DEFAULT).
 * 0, or -1 when out of memory. Free with csv_parser_free. */
int csv_parser_init(struct csv_parser *ps, const char *data, size_t len, size_t row_max);
void csv_parser_free(struct csv_parser *ps);

/* Reads the next record: 1 with *ncells set (at least 1), 0 at the end of
 * the input, -1 with ps->error and ps->record set (the parser stays in
 * error). The cells are read with csv_parser_cell until the next call. */
int csv_parser_next(struct csv_parser *ps, size_t *ncells);
/* Cell i (< ncells) of the current record, NUL-terminated (it holds no
 * NUL), with its length in *len when len is not NULL. Owned by ps. */
const char *csv_parser_cell(const struct csv_parser *ps, size_t i, size_t *len);

/* A static English phrase for an error ("a quote is not closed"...). */
const char *csv_error_str(enum csv_error e);

#endif
