/* SPDX-License-Identifier: MIT */
/* Runs every TEST() registered by the linked test files; see runner.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "runner.h"

#define MAX_TESTS 2048

static struct { const char *name, *file; test_fn fn; } tests[MAX_TESTS];
static int ntests;
int test_failures;

void test_register(const char *name, test_fn fn, const char *file)
{
	if (ntests == MAX_TESTS) {
		fprintf(stderr, "runner: more than %d tests\n", MAX_TESTS);
		exit(2);
	}
	tests[ntests].name = name;
	tests[ntests].file = file;
	tests[ntests].fn = fn;
	ntests++;
}

int main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	int passed = 0, failed = 0;

	for (int i = 0; i < ntests; i++) {
		if (filter && !strstr(tests[i].name, filter))
			continue;
		test_failures = 0;
		tests[i].fn();
		if (test_failures) {
			fprintf(stderr, "FAIL %s (%s)\n", tests[i].name, tests[i].file);
			failed++;
		} else {
			passed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
