/*
 * test_range: range_parse() against RFC 9110's single-range grammar:
 * good forms, unsatisfiable ones, and every malformed form (signs,
 * spaces, several ranges, overflow) ignored.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "range.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct good {
	const char *h;
	uint64_t size, first, last;
};

static void test_good(void **state)
{
	static const struct good g[] = {
		{ "bytes=0-0", 10, 0, 0 },     { "bytes=1-2", 10, 1, 2 },
		{ "bytes=5-", 10, 5, 9 },      { "bytes=0-99", 10, 0, 9 },
		{ "bytes=-3", 10, 7, 9 },      { "bytes=-30", 10, 0, 9 },
		{ "BYTES=2-3", 10, 2, 3 },     { "bytes=9-9", 10, 9, 9 },
		{ "bytes=0-18446744073709551615", 10, 0, 9 },
		{ "bytes=007-008", 10, 7, 8 },
	};
	(void)state;
	for (size_t i = 0; i < N(g); i++) {
		uint64_t f = 77, l = 77;

		assert_int_equal(range_parse(g[i].h, g[i].size, &f, &l), 1);
		assert_int_equal(f, g[i].first);
		assert_int_equal(l, g[i].last);
	}
}

static void test_unsatisfiable(void **state)
{
	static const char *const u[] = { "bytes=10-", "bytes=10-20", "bytes=-0", "bytes=99-100" };
	uint64_t f, l;

	(void)state;
	for (size_t i = 0; i < N(u); i++)
		assert_int_equal(range_parse(u[i], 10, &f, &l), -1);
	assert_int_equal(range_parse("bytes=0-", 0, &f, &l), -1);
	assert_int_equal(range_parse("bytes=-5", 0, &f, &l), -1);
}

static void test_ignored(void **state)
{
	static const char *const bad[] = {
		"bytes=5--3", "bytes=--5", "bytes=+1-+2", "bytes= 1-2", "bytes=1 -2",
		"bytes=1- 2", "bytes=1-2 ", "bytes=-+3", "bytes=- 3", "bytes=\t1-2",
		"bytes=1-2,3-4", "bytes=1-2,", "bytes=", "bytes=-", "bytes=a-b",
		"bytes=3-2", "bytes=1", "bytes=0x1-2", "items=1-2", "bytes 1-2", "",
		"bytes=18446744073709551616-", "bytes=-18446744073709551616",
		"bytes=0-18446744073709551616", "bytes=1-2\n", "bytes=1-2x",
	};
	uint64_t f, l;

	(void)state;
	assert_int_equal(range_parse(NULL, 10, &f, &l), 0);
	for (size_t i = 0; i < N(bad); i++) {
		if (range_parse(bad[i], 10, &f, &l) != 0)
			fail_msg("accepted %s", bad[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_unsatisfiable),
		cmocka_unit_test(test_ignored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
