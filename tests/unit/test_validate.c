/*
 * Unit tests for src/validate.c: the @v/list, checksum-database, .mod and zip rules an
 * upstream answer must pass before it is cached (zips are built with
 * libzip in a temp file).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zip.h>

#include "validate.h"

#define MOD "example.com/m"
#define VER "v1.0.0"
#define PFX MOD "@" VER "/"

static const char *list(const char *s)
{
	return validate_list(s, strlen(s));
}

static void test_list(void **state)
{
	(void)state;
	assert_null(list(""));
	assert_null(list("v1.0.0\n"));
	assert_null(list("v1.0.0\nv1.1.0-pre\n\n  \nv2.0.0+incompatible"));
	assert_null(list("v1.0.0 2020-01-01T00:00:00Z\r\n"));   /* a second field is the client's */
	assert_non_null(list("v1.0.0\nlatest\n"));
	assert_non_null(list("1.0.0\n"));
	assert_non_null(list("<html>\n"));
	assert_non_null(validate_list("v1.0.0\n\0", 8));
}

/* s copied to the very end of a page whose next page is unmapped: a
 * check that reads past len faults, with or without ASan.  The fuzz
 * target fuzz_answers found validate_list and validate_sumdb reading up
 * to the next NUL (tests/fuzz/corpus/answers/crash-*). */
static char *page_end(const char *s, size_t n, void **map, size_t *maplen)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	assert_int_equal(mprotect(p + pg, pg, PROT_NONE), 0);
	assert_true(n <= pg);
	memcpy(p + pg - n, s, n);
	*map = p;
	*maplen = 2 * pg;
	return p + pg - n;
}

static void test_no_read_past_len(void **state)
{
	struct request r;
	size_t maplen;
	void *map;
	char *b;

	(void)state;
	b = page_end("v1.0.0", 6, &map, &maplen);
	assert_null(validate_list(b, 6));
	assert_null(validate_list(b + 6, 0));
	munmap(map, maplen);
	b = page_end("v1.0.0\n v1.1.0", 14, &map, &maplen);
	assert_null(validate_list(b, 14));
	munmap(map, maplen);

	memset(&r, 0, sizeof r);
	r.kind = REQ_SUMDB;
	r.sumdb_kind = SUMDB_LOOKUP;
	b = page_end("12345", 5, &map, &maplen);
	assert_non_null(validate_sumdb(&r, b, 5));
	munmap(map, maplen);
	b = page_end("5\nx", 3, &map, &maplen);
	assert_null(validate_sumdb(&r, b, 3));
	munmap(map, maplen);
}

static void test_mod(void **state)
{
	static const char good[] = "module example.com/other\n";

	(void)state;
	assert_null(validate_mod(good, sizeof good - 1));
	assert_non_null(validate_mod("modul", 5));
	assert_non_null(validate_mod("module ", 7));
}

/* Writes a zip of the given entries (name, content; NULL content: a
 * directory entry) to a temp file and validates it. */
static const char *check_zip(const char *const *names, const char *const *data, size_t n,
                             uint64_t big_gomod)
{
	char path[] = "/tmp/test_validate_XXXXXX";
	int fd = mkstemp(path), err = 0;
	zip_t *z;
	const char *bad;

	assert_true(fd >= 0);
	z = zip_open(path, ZIP_TRUNCATE, &err);
	assert_non_null(z);
	for (size_t i = 0; i < n; i++) {
		zip_source_t *src;

		if (data[i] == NULL) {
			assert_true(zip_dir_add(z, names[i], ZIP_FL_ENC_UTF_8) >= 0);
			continue;
		}
		if (big_gomod && strcmp(names[i], PFX "go.mod") == 0) {
			char *zeros = calloc(1, big_gomod);
			src = zip_source_buffer(z, zeros, big_gomod, 1);
		} else
			src = zip_source_buffer(z, data[i], strlen(data[i]), 0);
		/* GUESS: a name that is not UTF-8 is stored as raw bytes. */
		assert_true(zip_file_add(z, names[i], src, ZIP_FL_ENC_GUESS) >= 0);
	}
	assert_int_equal(zip_close(z), 0);
	/* libzip wrote a new file and renamed it over ours. */
	close(fd);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	bad = validate_zip(fd, MOD, VER);
	close(fd);
	unlink(path);
	return bad;
}


static const char *zip_entries(const char *const (*e)[2], size_t n, uint64_t big)
{
	const char *names[16], *data[16];

	for (size_t i = 0; i < n; i++) {
		names[i] = e[i][0];
		data[i] = e[i][1];
	}
	return check_zip(names, data, n, big);
}

static void test_zip_good(void **state)
{
	static const char *const e[][2] = {
		{ PFX "go.mod", "module " MOD "\n" },
		{ PFX "a.go", "package a\n" },
		{ PFX "sub/", NULL },
		{ PFX "sub/b.go", "package sub\n" },
		{ PFX "-dash/.hidden", "x" },
	};

	(void)state;
	assert_null(zip_entries(e, 5, 0));
}

static void expect_bad(const char *const (*e)[2], size_t n, const char *word)
{
	const char *bad = zip_entries(e, n, 0);

	assert_non_null(bad);
	if (strstr(bad, word) == NULL)
		print_error("reason %s lacks %s\n", bad, word);
	assert_non_null(strstr(bad, word));
}

static void test_zip_dotdot(void **state)
{
	static const char *const e[][2] = { { PFX "../../../tmp/x.go", "x" } };

	(void)state;
	expect_bad(e, 1, "file path");
}

static void test_zip_bad_paths(void **state)
{
	static const char *const e1[][2] = { { PFX "a//b.go", "x" } };
	static const char *const e2[][2] = { { PFX "a/./b.go", "x" } };
	static const char *const e3[][2] = { { PFX "a\\b.go", "x" } };
	static const char *const e4[][2] = { { PFX "con.go", "x" } };
	static const char *const e5[][2] = { { PFX "x.", "x" } };

	(void)state;
	expect_bad(e1, 1, "file path");
	expect_bad(e2, 1, "file path");
	expect_bad(e3, 1, "file path");
	expect_bad(e4, 1, "file path");
	expect_bad(e5, 1, "file path");
}

static void test_zip_case_collision(void **state)
{
	static const char *const e1[][2] = { { PFX "README", "a" }, { PFX "readme", "b" } };
	static const char *const e2[][2] = { { PFX "Dir/a.go", "a" }, { PFX "dir/b.go", "b" } };

	(void)state;
	expect_bad(e1, 2, "collision");
	expect_bad(e2, 2, "collision");   /* parents count too */
}

/* Unicode letters are file names like any other (go 1.19 unpacks these),
 * other symbols are not, and the collision check folds as strToFold. */
static void test_zip_unicode_names(void **state)
{
	static const char *const good[][2] = {
		{ PFX "go.mod", "module " MOD "\n" },
		{ PFX "docs/\xe6\x95\xb0\xe6\x8d\xae.txt", "x" },
		{ PFX "caf\xc3\xa9.go", "package a\n" },
		{ PFX "\xc4\xb0.txt", "x" },            /* U+0130: no simple folding ... */
		{ PFX "i.txt", "x" },                     /* ... so it does not collide with i */
	};
	static const char *const check[][2] = { { PFX "\xe2\x9c\x93.txt", "x" } };
	static const char *const badutf8[][2] = { { PFX "caf\xc3.go", "x" } };

	(void)state;
	assert_null(zip_entries(good, 5, 0));
	expect_bad(check, 1, "file path");
	expect_bad(badutf8, 1, "file path");
}

static void test_zip_unicode_collisions(void **state)
{
	static const char *const e1[][2] = { { PFX "\xc3\x89.txt", "a" }, { PFX "\xc3\xa9.txt", "b" } };
	static const char *const e2[][2] = { { PFX "K.txt", "a" }, { PFX "\xe2\x84\xaa.txt", "b" } };
	static const char *const e3[][2] = { { PFX "s.go", "a" }, { PFX "\xc5\xbf.go", "b" } };
	static const char *const e4[][2] = { { PFX "\xcf\x82.go", "a" }, { PFX "\xce\xa3.go", "b" } };
	static const char *const e5[][2] = { { PFX "\xce\xa9/a.go", "a" }, { PFX "\xcf\x89/b.go", "b" } };

	(void)state;
	expect_bad(e1, 2, "collision");   /* E-acute, e-acute */
	expect_bad(e2, 2, "collision");   /* K, KELVIN SIGN: different lengths */
	expect_bad(e3, 2, "collision");   /* s, LONG S */
	expect_bad(e4, 2, "collision");   /* final sigma, capital sigma */
	expect_bad(e5, 2, "collision");   /* Omega and omega directories */
}

static void test_zip_file_and_dir(void **state)
{
	static const char *const e[][2] = { { PFX "x", "a" }, { PFX "x/y.go", "b" } };

	(void)state;
	expect_bad(e, 2, "both a file and a directory");
}

static void test_zip_big_gomod(void **state)
{
	static const char *const e[][2] = { { PFX "go.mod", "" } };
	const char *bad;

	(void)state;
	assert_null(zip_entries(e, 1, 16 << 20));                     /* exactly 16 MiB: fine */
	bad = zip_entries(e, 1, (16 << 20) + 1);
	assert_non_null(bad);
	assert_non_null(strstr(bad, "16 MiB"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_no_read_past_len),
		cmocka_unit_test(test_mod),
		cmocka_unit_test(test_zip_good),
		cmocka_unit_test(test_zip_dotdot),
		cmocka_unit_test(test_zip_bad_paths),
		cmocka_unit_test(test_zip_case_collision),
		cmocka_unit_test(test_zip_unicode_names),
		cmocka_unit_test(test_zip_unicode_collisions),
		cmocka_unit_test(test_zip_file_and_dir),
		cmocka_unit_test(test_zip_big_gomod),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
