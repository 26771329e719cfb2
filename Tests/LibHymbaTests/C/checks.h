/*
 * checks.h - the counting CHECK macro of the C API test programs: prints each failed check
 * with its line and hymba_last_error(); the program ends with report_checks().
 */
#ifndef HYMBA_TEST_CHECKS_H
#define HYMBA_TEST_CHECKS_H

#include <hymba.h>
#include <stdio.h>

static int checks = 0, failures = 0;

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        checks++;                                                                             \
        if (!(cond)) {                                                                        \
            failures++;                                                                       \
            fprintf(stderr, "FAILED line %d: %s (last error: %s)\n", __LINE__, #cond,         \
                    hymba_last_error());                                                      \
        }                                                                                     \
    } while (0)

#endif
