/* The unit suites' shared helpers (see utest.h). */
#include "utest.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

char *utest_stderr_capture(void (*fn)(void *), void *arg)
{
    FILE *tmp = tmpfile();
    cr_assert_not_null(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    cr_assert_geq(saved, 0);
    cr_assert_geq(dup2(fileno(tmp), STDERR_FILENO), 0);
    fn(arg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);

    long size = lseek(fileno(tmp), 0, SEEK_END);
    cr_assert_geq(size, 0);
    char *out = malloc((size_t)size + 1);
    cr_assert_not_null(out);
    cr_assert_eq(pread(fileno(tmp), out, (size_t)size, 0), size);
    out[size] = '\0';
    fclose(tmp);
    return out;
}
