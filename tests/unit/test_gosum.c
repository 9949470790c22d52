/*
 * Unit tests for src/gosum.c (go.sum and `go list -m all` arguments) and
 * src/bundle.c (the export/import manifest and its path rule).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "gosum.h"

#define H1 "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
#define H2 "h1:6pIL9b4cTqrD4CGDkJR6UEFeMx7V9cJ4sn3zq3rCR5E="

static void test_parse_and_find(void **state)
{
	const char *text = "example.com/a v1.0.0 " H1 "\n"
	                   "example.com/a v1.0.0/go.mod " H2 "\n"
	                   "\n"
	                   "example.com/B/c/v2 v2.1.0-rc.1 " H2 "\r\n";
	struct gosum g = { 0 };
	char why[256];

	(void)state;
	assert_int_equal(gosum_parse(&g, "go.sum", text, strlen(text), why, sizeof why), 0);
	gosum_sort(&g);
	assert_int_equal(g.n, 3);
	assert_string_equal(gosum_find(&g, "example.com/a", "v1.0.0", false), H1);
	assert_string_equal(gosum_find(&g, "example.com/a", "v1.0.0", true), H2);
	assert_string_equal(gosum_find(&g, "example.com/B/c/v2", "v2.1.0-rc.1", false), H2);
	assert_null(gosum_find(&g, "example.com/B/c/v2", "v2.1.0-rc.1", true));
	assert_null(gosum_find(&g, "example.com/a", "v1.0.1", false));
	gosum_free(&g);
}

static void refused(const char *text, const char *want)
{
	struct gosum g = { 0 };
	char why[256];

	assert_int_equal(gosum_parse(&g, "go.sum", text, strlen(text), why, sizeof why), -1);
	if (strstr(why, want) == NULL)
		print_error("reason %s lacks %s\n", why, want);
	assert_non_null(strstr(why, want));
	gosum_free(&g);
}

static void test_parse_refuses(void **state)
{
	(void)state;
	refused("example.com/a v1.0.0\n", "go.sum:1");
	refused("\nexample.com/a v1.0 " H1 "\n", "go.sum:2: version is not canonical");
	refused("example.com/a/v2 v1.0.0 " H1 "\n", "go.sum:1");
	refused("example.com/a v1.0.0 h2:abc\n", "not an h1: hash");
	refused("Example..com v1.0.0 " H1 "\n", "go.sum:1");
	refused("example.com/a v1.0.0 " H1 " extra\n", "go.sum:1");
}

static int n_listed;

static int on_listed(void *arg, const char *path, const char *version)
{
	(void)arg;
	n_listed++;
	assert_true(strcmp(path, "example.com/a") == 0 || strcmp(path, "example.com/b") == 0);
	assert_true(strcmp(version, "v1.2.3") == 0 || strcmp(version, "v0.0.0-20200101000000-abcdefabcdef") == 0);
	return 0;
}

static void test_modlist(void **state)
{
	const char *text = "example.com/main\n"
	                   "example.com/a v1.2.3\n"
	                   "example.com/b v0.0.0-20200101000000-abcdefabcdef => ../b\n\n";
	char why[256];

	(void)state;
	n_listed = 0;
	assert_int_equal(gosum_modlist(text, strlen(text), "stdin", on_listed, NULL, why, sizeof why), 0);
	assert_int_equal(n_listed, 2);
	assert_int_equal(gosum_modlist("x.com/a master\n", 15, "stdin", on_listed, NULL, why, sizeof why), -1);
	assert_non_null(strstr(why, "stdin:1"));
}

static void test_split_at(void **state)
{
	char p[MP_PATH_MAX], v[MP_VERSION_MAX];

	(void)state;
	assert_null(gosum_split_at("example.com/A@v1.0.0", p, sizeof p, v, sizeof v));
	assert_string_equal(p, "example.com/A");
	assert_string_equal(v, "v1.0.0");
	assert_null(gosum_split_at("example.com/a@latest", p, sizeof p, v, sizeof v));
	assert_string_equal(v, "latest");
	assert_non_null(gosum_split_at("example.com/a@master", p, sizeof p, v, sizeof v));
	assert_non_null(gosum_split_at("example.com/a", p, sizeof p, v, sizeof v));
	assert_non_null(gosum_split_at("@v1.0.0", p, sizeof p, v, sizeof v));
	assert_non_null(gosum_split_at("example.com/a/v2@v1.0.0", p, sizeof p, v, sizeof v));
}

static void test_bundle_paths(void **state)
{
	(void)state;
	assert_true(bundle_path_ok("example.com/a/@v/v1.0.0.zip"));
	assert_true(bundle_path_ok("sumdb/sum.golang.org/tile/8/0/000"));
	assert_false(bundle_path_ok(""));
	assert_false(bundle_path_ok("/etc/passwd"));
	assert_false(bundle_path_ok("a/../b"));
	assert_false(bundle_path_ok("../b"));
	assert_false(bundle_path_ok("a/./b"));
	assert_false(bundle_path_ok("a//b"));
	assert_false(bundle_path_ok("a/b/"));
	assert_false(bundle_path_ok("a\\b"));
}

static void test_manifest_round_trip(void **state)
{
	const char *sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
	struct bundle_manifest m = { 0 }, back = { 0 };
	struct bundle_file *f;
	char *json;

	(void)state;
	assert_int_equal(bundle_manifest_add(&m, "b/@v/list", 7, sha), 0);
	assert_int_equal(bundle_manifest_add(&m, "a/@v/v1.0.0.zip", 1234567, sha), 0);
	assert_non_null(json = bundle_manifest_json(&m));
	assert_null(bundle_manifest_parse(&back, json, strlen(json)));
	assert_int_equal(back.n, 2);
	assert_non_null(f = bundle_manifest_find(&back, "a/@v/v1.0.0.zip"));
	assert_int_equal(f->size, 1234567);
	assert_string_equal(f->sha256, sha);
	assert_null(bundle_manifest_find(&back, "c"));
	free(json);
	bundle_manifest_free(&m);
	bundle_manifest_free(&back);
}

static void manifest_refused(const char *json)
{
	struct bundle_manifest m = { 0 };

	if (bundle_manifest_parse(&m, json, strlen(json)) == NULL)
		print_error("accepted %s\n", json);
	bundle_manifest_free(&m);
	assert_non_null(bundle_manifest_parse(&m, json, strlen(json)));
	bundle_manifest_free(&m);
}

static void test_manifest_refused(void **state)
{
	(void)state;
	manifest_refused("[]");
	manifest_refused("{\"format\":\"other\",\"files\":[]}");
	manifest_refused("{\"format\":\"goproxyd-bundle-1\",\"files\":[{\"path\":\"../x\",\"size\":1,"
	                 "\"sha256\":\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"}]}");
	manifest_refused("{\"format\":\"goproxyd-bundle-1\",\"files\":[{\"path\":\"x\",\"size\":-1,"
	                 "\"sha256\":\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"}]}");
	manifest_refused("{\"format\":\"goproxyd-bundle-1\",\"files\":[{\"path\":\"x\",\"size\":1,\"sha256\":\"XYZ\"}]}");
	manifest_refused("{\"format\":\"goproxyd-bundle-1\",\"files\":["
	                 "{\"path\":\"x\",\"size\":1,\"sha256\":\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"},"
	                 "{\"path\":\"x\",\"size\":1,\"sha256\":\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"}]}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_find),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_modlist),
		cmocka_unit_test(test_split_at),
		cmocka_unit_test(test_bundle_paths),
		cmocka_unit_test(test_manifest_round_trip),
		cmocka_unit_test(test_manifest_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
