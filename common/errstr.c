/* errstr_set (see errstr.h), shared by the services' modules. */
#include "errstr.h"

#include <stdarg.h>
#include <stdio.h>

void errstr_set(char *errstr, size_t errcap, const char *fmt, ...)
{
    if (!errstr || errcap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errcap, fmt, ap);
    va_end(ap);
}
