/* UTF-8 validation shared by everything that turns network bytes into text
 * for logs, metrics and JSON. Pure; any thread. */
#ifndef KIZUNA_UTF8_H
#define KIZUNA_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1-4) of the well-formed UTF-8 sequence at s, reading at most avail
 * bytes; 0 if s starts an invalid, overlong, surrogate or truncated one. */
size_t utf8_seq_len(const unsigned char *s, size_t avail);

/* True when all len bytes of s are well-formed UTF-8 (NUL counts as valid). */
bool utf8_valid(const void *s, size_t len);

#endif
