/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_TEST_RUNNER_H
#define PFNSCOPE_TEST_RUNNER_H
/*
 * A plain test runner: TEST(name) { ... } registers itself through a
 * constructor, so a test file needs no list; CHECK/CHECK_EQ print file:line
 * and keep going (a test fails when any check failed), REQUIRE returns from
 * the test on failure (for checks later lines depend on).
 * runner.c's main runs every test and prints "N passed, N failed" alone on
 * the last line; exit status 1 on any failure.  Argument: a substring to
 * select tests by name.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn, const char *file);
/* incremented by CHECK failures of the running test */
extern int test_failures;

#define TEST(name)                                                        \
	static void test_##name(void);                                    \
	__attribute__((constructor)) static void test_reg_##name(void)    \
	{ test_register(#name, test_##name, __FILE__); }                  \
	static void test_##name(void)

#define CHECK(cond) do {                                                  \
	if (!(cond)) {                                                    \
		fprintf(stderr, "%s:%d: CHECK(%s) failed\n",              \
			__FILE__, __LINE__, #cond);                       \
		test_failures++;                                          \
	}                                                                 \
} while (0)

/* integer equality; values printed in decimal and hex */
#define CHECK_EQ(a, b) do {                                               \
	unsigned long long _a = (unsigned long long)(a);                  \
	unsigned long long _b = (unsigned long long)(b);                  \
	if (_a != _b) {                                                   \
		fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed: %lld (0x%llx) != %lld (0x%llx)\n", \
			__FILE__, __LINE__, #a, #b, (long long)_a, _a,    \
			(long long)_b, _b);                               \
		test_failures++;                                          \
	}                                                                 \
} while (0)

#define CHECK_STR(a, b) do {                                              \
	const char *_a = (a), *_b = (b);                                  \
	if (!_a || !_b || strcmp(_a, _b) != 0) {                          \
		fprintf(stderr, "%s:%d: CHECK_STR(%s, %s) failed: \"%s\" != \"%s\"\n", \
			__FILE__, __LINE__, #a, #b, _a ? _a : "(null)",   \
			_b ? _b : "(null)");                              \
		test_failures++;                                          \
	}                                                                 \
} while (0)

#define REQUIRE(cond) do {                                                \
	if (!(cond)) {                                                    \
		fprintf(stderr, "%s:%d: REQUIRE(%s) failed\n",            \
			__FILE__, __LINE__, #cond);                       \
		test_failures++;                                          \
		return;                                                   \
	}                                                                 \
} while (0)

#endif
