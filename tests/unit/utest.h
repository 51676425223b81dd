/* Helpers shared by the unit suites (tests/unit/test_*.c), written once so
 * that every suite does the same thing the same way. They assert with
 * Criterion: a failure ends the calling test. No Test() lives here; the file
 * is linked into the unit binary with the suites. */
#ifndef KIZUNA_TESTS_UTEST_H
#define KIZUNA_TESTS_UTEST_H

/* Runs fn(arg) with stderr (fd 2, where common/log.c writes) sent to a
 * temporary file, and returns everything written there as a NUL-terminated
 * string the caller frees. */
char *utest_stderr_capture(void (*fn)(void *), void *arg);

#endif
