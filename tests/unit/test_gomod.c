/*
 * Unit tests for src/gomod.c: the go.mod syntax goproxyd accepts before
 * caching a .mod, one rule per case, and hostile inputs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gomod.h"

/* Parses a NUL-terminated text; returns the reason or NULL. */
static const char *parse(const char *text, struct gomod *m)
{
	return gomod_parse(text, strlen(text), m, NULL, NULL);
}

static void ok(const char *text)
{
	struct gomod m;
	const char *bad = parse(text, &m);

	if (bad != NULL)
		print_error("refused: %s\n--\n%s\n--\n", bad, text);
	assert_null(bad);
}

static void refused(const char *text)
{
	struct gomod m;

	if (parse(text, &m) == NULL)
		print_error("accepted:\n--\n%s\n--\n", text);
	assert_non_null(parse(text, &m));
}

struct reqs {
	struct gomod_require r[8];
	size_t n;
};

static const char *collect(void *arg, const struct gomod_require *req)
{
	struct reqs *rs = arg;

	if (rs->n == 8)
		return "too many";
	rs->r[rs->n++] = *req;
	return NULL;
}

static void test_module_line(void **state)
{
	struct gomod m;

	(void)state;
	assert_null(parse("module example.com/a\n", &m));
	assert_string_equal(m.module, "example.com/a");
	assert_null(parse("module \"example.com/q\" // quoted\n", &m));
	assert_string_equal(m.module, "example.com/q");
	assert_null(parse("module `example.com/raw`", &m));   /* no final newline */
	assert_string_equal(m.module, "example.com/raw");
	ok("module example.com/other/path\n");   /* another path: the go command decides */
	ok("module a.com/crlf\r\nrequire a.com/x v1.0.0\r\n");
}

static void test_module_missing_or_bad(void **state)
{
	(void)state;
	refused("");
	refused("\n\n// only a comment\n");
	refused("module \n");                        /* cut after 7 bytes */
	refused("modul");                             /* a short body */
	refused("module a.com/x\nmodule a.com/y\n");   /* repeated */
	refused("module a.com/x extra\n");
	refused("module \"\"\n");
	refused("module (\n)\n");
	refused("<!DOCTYPE html>\n<html><body>Sign in</body></html>\n");
}

static void test_require_lines_and_blocks(void **state)
{
	struct reqs rs = { .n = 0 };
	struct gomod m;
	static const char text[] =
		"// header\n"
		"module example.com/m\n\n"
		"go 1.19\n"
		"require example.com/a v1.2.3\n"
		"require (\n"
		"\texample.com/b v0.0.0-20200101000000-abcdefabcdef // indirect\n"
		"\t\"example.com/c\" v2.0.0+incompatible // indirect; comment\n"
		"\t// a comment line\n"
		"\n"
		"\texample.com/d v1.0.0 // not indirect\n"
		")\n";

	(void)state;
	assert_null(gomod_parse(text, sizeof text - 1, &m, collect, &rs));
	assert_string_equal(m.go, "1.19");
	assert_int_equal(rs.n, 4);
	assert_string_equal(rs.r[0].path, "example.com/a");
	assert_string_equal(rs.r[0].version, "v1.2.3");
	assert_false(rs.r[0].indirect);
	assert_true(rs.r[1].indirect);
	assert_string_equal(rs.r[2].path, "example.com/c");
	assert_string_equal(rs.r[2].version, "v2.0.0+incompatible");
	assert_true(rs.r[2].indirect);
	assert_false(rs.r[3].indirect);
}

static void test_require_bad(void **state)
{
	(void)state;
	refused("module a.com/m\nrequire a.com/x\n");
	refused("module a.com/m\nrequire a.com/x 1.2.3\n");
	refused("module a.com/m\nrequire a.com/x v1.2.3 extra\n");
	refused("module a.com/m\nrequire (\n a.com/x latest\n)\n");
}

static void test_other_directives(void **state)
{
	(void)state;
	ok("module a.com/m\n"
	   "go 1.21.0\n"
	   "toolchain go1.21.3\n"
	   "exclude a.com/x v1.0.0\n"
	   "exclude (\n a.com/y v1.1.0\n)\n"
	   "replace a.com/x => ../x\n"
	   "replace (\n a.com/y v1.0.0 => b.com/y v1.0.1\n)\n"
	   "retract v1.0.1 // broken\n"
	   "retract [v1.0.0, v1.0.5]\n"
	   "retract (\n v0.9.0\n [v0.1.0, v0.2.0]\n)\n"
	   "godebug default=go1.21\n"
	   "somefuture directive with args\n");
	refused("module a.com/m\ngo one\n");
	refused("module a.com/m\ngo 1.19\ngo 1.20\n");
	refused("module a.com/m\nretract [v1.0.0 v1.0.5]\n");
	refused("module a.com/m\nretract notaversion\n");
}

static void test_blocks_bad(void **state)
{
	(void)state;
	refused("module a.com/m\nrequire (\n a.com/x v1.0.0\n");        /* unterminated */
	refused("module a.com/m\nrequire (\n require (\n)\n)\n");       /* nested */
	refused("module a.com/m\n)\n");                                  /* stray close */
	refused("module a.com/m\nrequire ( a.com/x v1.0.0 )\n");         /* one-line block */
	refused("module a.com/m\nx a b c d e f g h i j (\n)\n");          /* "(" past the 8th token */
}

static void test_lexical_bad(void **state)
{
	struct gomod m;
	static const char nul[] = "module a.com/m\0\n";

	(void)state;
	assert_non_null(gomod_parse(nul, sizeof nul - 1, &m, NULL, NULL));
	refused("module a.com/\xff\n");                       /* invalid UTF-8 */
	refused("module a.com/\xc0\xaf\n");                   /* overlong */
	refused("module \"a.com/m\n\"\n");                    /* newline in string */
	refused("module \"a.com/m\n");                        /* unterminated */
	refused("module `a.com/m\n");
	refused("module a.com/m\n/* block */\n");
	refused("module a.com/m\x01\n");                      /* control character */
	refused("module \"a.com/\\q\"\n");                    /* unsupported escape */
	refused("\x1f\x8b\x08\x00\x00\x00\x00\x00");          /* gzip magic */
}

static void test_hostile_sizes(void **state)
{
	size_t n = 4 << 20;
	char *buf = malloc(n + 64);
	struct gomod m;
	size_t i;

	(void)state;
	assert_non_null(buf);
	/* One huge line: an argument longer than any buffer. */
	memcpy(buf, "module ", 7);
	memset(buf + 7, 'a', n);
	assert_non_null(gomod_parse(buf, n + 7, &m, NULL, NULL));
	/* Deep "nesting": a million "(" lines. */
	for (i = 0; i + 10 < n; i += 10)
		memcpy(buf + i, "require (\n", 10);
	assert_non_null(gomod_parse(buf, i, &m, NULL, NULL));
	/* Many tokens on one line of an unknown directive. */
	memcpy(buf, "module a.com/m\nx", 16);
	for (i = 16; i + 2 < n; i += 2)
		memcpy(buf + i, " y", 2);
	assert_null(gomod_parse(buf, i, &m, NULL, NULL));
	/* Many parentheses on one line. */
	memcpy(buf, "module a.com/m\nx", 16);
	memset(buf + 16, '(', n - 16);
	assert_non_null(gomod_parse(buf, n, &m, NULL, NULL));
	free(buf);
}

struct seen {
	struct gomod_require ex[4];
	struct gomod_replace rep[4];
	size_t n_ex, n_rep;
};

static const char *see_exclude(void *arg, const struct gomod_require *r)
{
	struct seen *s = arg;

	if (s->n_ex == 4)
		return "too many";
	s->ex[s->n_ex++] = *r;
	return NULL;
}

static const char *see_replace(void *arg, const struct gomod_replace *r)
{
	struct seen *s = arg;

	if (s->n_rep == 4)
		return "too many";
	s->rep[s->n_rep++] = *r;
	return NULL;
}

static const char *visit(const char *text, struct seen *s)
{
	struct gomod_visitor v = { NULL, see_exclude, see_replace, s };
	struct gomod m;

	memset(s, 0, sizeof *s);
	return gomod_parse_visit(text, strlen(text), &m, &v);
}

static void test_exclude_replace(void **state)
{
	struct seen s;

	(void)state;
	assert_null(visit("module a.com/m\n"
	                  "exclude a.com/x v1.0.0\n"
	                  "exclude (\n \"a.com/y\" v1.1.0 // why\n)\n"
	                  "replace a.com/x => ../x\n"
	                  "replace (\n a.com/y v1.0.0 => b.com/y v1.0.1 // fork\n"
	                  " \"a.com/z\" => `/abs/z`\n)\n", &s));
	assert_int_equal(s.n_ex, 2);
	assert_string_equal(s.ex[0].path, "a.com/x");
	assert_string_equal(s.ex[0].version, "v1.0.0");
	assert_string_equal(s.ex[1].path, "a.com/y");
	assert_int_equal(s.n_rep, 3);
	assert_string_equal(s.rep[0].old_path, "a.com/x");
	assert_string_equal(s.rep[0].old_version, "");
	assert_string_equal(s.rep[0].new_path, "../x");
	assert_true(s.rep[0].new_is_dir);
	assert_string_equal(s.rep[1].old_version, "v1.0.0");
	assert_string_equal(s.rep[1].new_path, "b.com/y");
	assert_string_equal(s.rep[1].new_version, "v1.0.1");
	assert_false(s.rep[1].new_is_dir);
	assert_string_equal(s.rep[2].old_path, "a.com/z");
	assert_string_equal(s.rep[2].new_path, "/abs/z");
	assert_true(s.rep[2].new_is_dir);
}

static void test_exclude_replace_bad(void **state)
{
	static const char *const bad[] = {
		"module a.com/m\nexclude a.com/x\n",
		"module a.com/m\nexclude a.com/x v1.0.0 v1.0.1\n",
		"module a.com/m\nexclude a.com/x latest\n",
		"module a.com/m\nexclude ( a.com/x v1.0.0 )\n",
		"module a.com/m\nexclude \"\" v1.0.0\n",
		"module a.com/m\nreplace a.com/x\n",
		"module a.com/m\nreplace a.com/x => b.com/x\n",          /* no version, no directory */
		"module a.com/m\nreplace a.com/x => ../x v1.0.0\n",      /* directory with a version */
		"module a.com/m\nreplace a.com/x -> ../x\n",
		"module a.com/m\nreplace a.com/x vX => ../x\n",
		"module a.com/m\nreplace a.com/x => b.com/x v1.0.0 extra\n",
		"module a.com/m\nreplace a.com/x => ..\\\\x\n",      /* Windows path */
		"module a.com/m\nreplace => ../x\n",
		"module a.com/m\nreplace ( => )\n",
		"module a.com/m\nreplace a.com/x => b.com/x notaversion\n",
	};
	struct seen s;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (visit(bad[i], &s) == NULL)
			print_error("accepted:\n%s", bad[i]);
		assert_non_null(visit(bad[i], &s));
		/* ParseLax (no visitor for them) skips these lines. */
		if (strstr(bad[i], "( ") == NULL)
			ok(bad[i]);
	}
}

static void test_pruned(void **state)
{
	struct gomod m;

	(void)state;
	assert_null(parse("module a.com/m\n", &m));
	assert_false(gomod_pruned(&m));
	assert_null(parse("module a.com/m\ngo 1.16\n", &m));
	assert_false(gomod_pruned(&m));
	assert_null(parse("module a.com/m\ngo 1.17\n", &m));
	assert_true(gomod_pruned(&m));
	assert_null(parse("module a.com/m\ngo 1.21rc1\n", &m));
	assert_true(gomod_pruned(&m));
	assert_null(parse("module a.com/m\ngo 1.9\n", &m));
	assert_false(gomod_pruned(&m));
	assert_null(parse("module a.com/m\ngo 2.0\n", &m));
	assert_true(gomod_pruned(&m));
	assert_null(parse("module a.com/m\ngo 1.99999999999999999999\n", &m));
	assert_true(gomod_pruned(&m));
}

static const char *any_require(void *arg, const struct gomod_require *r)
{
	(void)arg;
	return strlen(r->path) < GOMOD_PATH_MAX && strlen(r->version) < GOMOD_VERSION_MAX
	           ? NULL : "overflow";
}

/* A deterministic corpus run: seeds cut, spliced and bit-flipped, every
 * variant parsed with every callback.  Under SANITIZE=1 this is where an
 * out-of-bounds read or a stack overflow would show; a result that is
 * neither NULL nor a "go.mod:"-style line fails it. (The libFuzzer
 * targets live in tests/fuzz/.) */
static void test_mutated_corpus(void **state)
{
	static const char *const seeds[] = {
		"module a.com/m\ngo 1.16\nrequire (\n\ta.com/x v1.0.0 // indirect\n\t\"b.com/y\" v0.1.0\n)\n",
		"module \"a.com/m\"\nexclude a.com/x v1.0.0\nreplace a.com/x v1.0.0 => ../x\n"
		"replace (\n\tb.com/y => c.com/y v1.2.3\n)\nretract [v1.0.0, v1.0.1]\n",
		"// c\nmodule `a.com/m` // x\n\nrequire a.com/z v2.0.0+incompatible\n",
	};
	struct gomod_visitor v = { any_require, any_require, NULL, NULL };
	unsigned seed = 12345;
	char buf[512];

	(void)state;
	for (int i = 0; i < 60000; i++) {
		const char *a = seeds[i % 3], *b = seeds[(i / 3) % 3];
		size_t na = strlen(a), nb = strlen(b), cut, n;
		struct gomod m;
		const char *bad;

		seed = seed * 1103515245u + 12345u;
		cut = (seed >> 8) % (na + 1);
		n = cut + nb - (seed >> 4) % (nb + 1);
		memcpy(buf, a, cut);
		memcpy(buf + cut, b + (n - cut < nb ? nb - (n - cut) : 0), n - cut);
		for (int k = 0; k < 3 && n > 0; k++) {
			seed = seed * 1103515245u + 12345u;
			buf[(seed >> 8) % n] ^= (char)(1u << ((seed >> 3) % 8));
		}
		bad = gomod_parse_visit(buf, n, &m, i % 2 ? &v : NULL);
		if (bad != NULL && strncmp(bad, "go.mod: ", 8) != 0 && strstr(bad, "module path") == NULL &&
		    strstr(bad, "invalid") == NULL && strstr(bad, "malformed") == NULL)
			fail_msg("unexpected result \"%s\"", bad);
		assert_true(strlen(m.module) < GOMOD_PATH_MAX);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_module_line),
		cmocka_unit_test(test_module_missing_or_bad),
		cmocka_unit_test(test_require_lines_and_blocks),
		cmocka_unit_test(test_require_bad),
		cmocka_unit_test(test_other_directives),
		cmocka_unit_test(test_blocks_bad),
		cmocka_unit_test(test_lexical_bad),
		cmocka_unit_test(test_hostile_sizes),
		cmocka_unit_test(test_exclude_replace),
		cmocka_unit_test(test_exclude_replace_bad),
		cmocka_unit_test(test_pruned),
		cmocka_unit_test(test_mutated_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
