/* Filling a caller's errstr buffer, the services' one way to say why a
 * call failed (docs/style.md, Errors). */
#ifndef KIZUNA_ERRSTR_H
#define KIZUNA_ERRSTR_H

#include <stddef.h>

/* printf into errstr (errcap bytes, always terminated); nothing when errstr
 * is NULL or errcap is 0, so callers may pass NULL, 0 to skip the reason. */
__attribute__((format(printf, 3, 4))) void errstr_set(char *errstr, size_t errcap, const char *fmt,
                                                      ...);

#endif
