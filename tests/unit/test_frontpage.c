/*
 * test_frontpage: the page and /catalog's JSON rendered from snapshots,
 * without a server: the GOPROXY line from Host, TLS and -pathPrefix; the
 * GOSUMDB and GONOSUMDB lines; hostile Host, query and upstream text
 * escaped; search links; and the Accept, query, pagesize and token parsers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "frontpage.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct front_snapshot *snap(void)
{
	struct front_snapshot *s = calloc(1, sizeof *s);

	assert_non_null(s);
	s->version = "0.1.0";
	s->now_s = 1000;
	snprintf(s->host, sizeof s->host, "mirror:8080");
	s->prefix = "";
	return s;
}

static char *render(const struct front_snapshot *s)
{
	size_t len = 0;
	char *body = frontpage_render(s, &len);

	assert_non_null(body);
	assert_int_equal(strlen(body), len);
	return body;
}

static void has(const char *body, const char *want)
{
	if (strstr(body, want) == NULL)
		fail_msg("page lacks %s", want);
}

static void lacks(const char *body, const char *bad)
{
	if (strstr(body, bad) != NULL)
		fail_msg("page has %s", bad);
}

static void test_goproxy_line(void **state)
{
	struct front_snapshot *s = snap();
	char *body;

	(void)state;
	body = render(s);
	has(body, "<pre id=\"goproxy\">go env -w GOPROXY=http://mirror:8080</pre>");
	has(body, "GOPROXY=http://mirror:8080,direct</pre>");
	lacks(body, "GOSUMDB");
	lacks(body, "GONOSUMDB");
	has(body, "<form method=\"get\" action=\"/\">");
	free(body);
	s->tls = true;
	s->prefix = "/mirror/go";
	body = render(s);
	has(body, "go env -w GOPROXY=https://mirror:8080/mirror/go</pre>");
	has(body, "action=\"/mirror/go/\"");
	has(body, "href=\"/mirror/go/catalog\"");
	free(body);
	free(s);
}

static void test_sumdb_lines(void **state)
{
	static const char *const ex[] = { "corp.example.com", "github.com/acme" };
	static const char *const ns[] = { "*.internal" };
	struct front_snapshot *s = snap();
	char *body;

	(void)state;
	s->sumdb = s->sumdb_name = "sum.golang.org";
	s->nosum[0] = ex;
	s->n_nosum[0] = N(ex);
	s->nosum[1] = ns;
	s->n_nosum[1] = N(ns);
	body = render(s);
	has(body, "go env -w GOSUMDB=&quot;sum.golang.org http://mirror:8080/sumdb/sum.golang.org&quot;");
	has(body, "go env -w GONOSUMDB=corp.example.com,github.com/acme,*.internal</pre>");
	free(body);
	free(s);
}

static void test_hostile_text_escaped(void **state)
{
	struct front_snapshot *s = snap();
	char *body;

	(void)state;
	snprintf(s->host, sizeof s->host, "<script>alert(1)</script>");
	s->has_query = true;
	snprintf(s->query, sizeof s->query, "\"><img src=x onerror=alert(2)>");
	s->n_ups = 1;
	s->ups[0] = (struct front_upstream){ "http://up/<b>", "error", 990 };
	s->cache_problem = "is <i>odd</i>";
	body = render(s);
	lacks(body, "<script");
	lacks(body, "<img");
	lacks(body, "<b>");
	lacks(body, "<i>");
	has(body, "GOPROXY=http://&lt;script&gt;alert(1)&lt;/script&gt;</pre>");
	has(body, "value=\"&quot;&gt;&lt;img src=x onerror=alert(2)&gt;\"");
	has(body, "No cached module matches");
	has(body, "<span class=\"bad\">error</span>");
	free(body);
	free(s);
}

static void test_results_and_recent(void **state)
{
	struct front_snapshot *s = snap();
	char *body;

	(void)state;
	s->has_query = true;
	snprintf(s->query, sizeof s->query, "toml");
	s->n_results = 2;
	s->results[0] = (struct front_version){ "github.com/!burnt!sushi/toml", "v1.3.0",
	                                        CATALOG_INFO | CATALOG_MOD | CATALOG_ZIP, 900 };
	s->results[1] = (struct front_version){ "github.com/!burnt!sushi/toml", "v1.2.0", CATALOG_MOD,
	                                        800 };
	s->n_recent = 1;
	s->recent[0] = s->results[0];
	body = render(s);
	has(body, "<code>github.com/BurntSushi/toml</code>: <span class=\"ver\">v1.3.0</span>");
	has(body, "<a href=\"/github.com/!burnt!sushi/toml/@v/v1.3.0.info\">info</a>");
	has(body, "<a href=\"/github.com/!burnt!sushi/toml/@v/v1.3.0.zip\">zip</a>");
	/* v1.2.0 has only its .mod cached: the others are named, not linked. */
	has(body, "(info <a href=\"/github.com/!burnt!sushi/toml/@v/v1.2.0.mod\">mod</a> zip)");
	has(body, "100 s ago");
	free(body);
	free(s);
}

static void test_wants_html(void **state)
{
	static const struct {
		const char *accept;
		bool html;
	} cases[] = {
		{ NULL, false },
		{ "", false },
		{ "*/*", false },
		{ "application/json", false },
		{ "text/html", true },
		{ "TEXT/HTML", true },
		{ "text/html;q=0", false },
		{ "text/html; q=0.000", false },
		{ "text/html;q=0.5", true },
		{ "application/json, text/html ;q=0.01", true },
		{ "text/htmlx", false },
		{ "text/plain, text/html;level=1;q=0", false },
		{ "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8", true },
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++)
		if (frontpage_wants_html(cases[i].accept) != cases[i].html)
			fail_msg("Accept %s: want %d", cases[i].accept ? cases[i].accept : "(none)",
			         cases[i].html);
}

static void test_query_and_token(void **state)
{
	char out[16], path[MP_PATH_MAX], ver[MP_VERSION_MAX];

	(void)state;
	assert_true(frontpage_decode_query("a+b%2Fc%7C", out, sizeof out));
	assert_string_equal(out, "a b/c|");
	assert_false(frontpage_decode_query("%zz", out, sizeof out));
	assert_false(frontpage_decode_query("%0a", out, sizeof out));
	assert_false(frontpage_decode_query("%00", out, sizeof out));
	assert_true(frontpage_decode_query("0123456789abcdefghij", out, sizeof out));
	assert_int_equal(strlen(out), sizeof out - 1);

	assert_int_equal(frontpage_page_size(NULL), CATALOG_PAGE_DEFAULT);
	assert_int_equal(frontpage_page_size(""), CATALOG_PAGE_DEFAULT);
	assert_int_equal(frontpage_page_size("7"), 7);
	assert_int_equal(frontpage_page_size("0"), 0);
	assert_int_equal(frontpage_page_size("-1"), 0);
	assert_int_equal(frontpage_page_size("1e3"), 0);
	assert_int_equal(frontpage_page_size("99999999999999999999999"), CATALOG_PAGE_MAX);

	assert_true(frontpage_parse_token("github.com/BurntSushi/toml|v1.3.0", path, ver));
	assert_string_equal(path, "github.com/!burnt!sushi/toml");
	assert_string_equal(ver, "v1.3.0");
	assert_false(frontpage_parse_token("no-bar", path, ver));
	assert_false(frontpage_parse_token("|v1.0.0", path, ver));
	assert_false(frontpage_parse_token("example.com/m|", path, ver));
}

static void test_catalog_json(void **state)
{
	struct catalog_json j;
	size_t len;
	char *body;

	(void)state;
	frontpage_catalog_begin(&j);
	frontpage_catalog_add(&j, "example.com/!a", "v1.0.0");
	frontpage_catalog_add(&j, "example.com/b", "v0.1.0-!r!c1");
	body = frontpage_catalog_end(&j, true, &len);
	assert_non_null(body);
	assert_string_equal(body, "{\"modules\":[{\"module\":\"example.com/A\",\"version\":\"v1.0.0\"},"
	                          "{\"module\":\"example.com/b\",\"version\":\"v0.1.0-RC1\"}],"
	                          "\"next\":\"example.com/b|v0.1.0-RC1\"}\n");
	free(body);
	frontpage_catalog_begin(&j);
	frontpage_catalog_add(&j, "example.com/b", "v1.0.0");
	body = frontpage_catalog_end(&j, false, &len);
	assert_string_equal(body, "{\"modules\":[{\"module\":\"example.com/b\",\"version\":\"v1.0.0\"}]}\n");
	free(body);
	frontpage_catalog_begin(&j);
	body = frontpage_catalog_end(&j, false, &len);
	assert_string_equal(body, "{\"modules\":[]}\n");
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_goproxy_line),
		cmocka_unit_test(test_sumdb_lines),
		cmocka_unit_test(test_hostile_text_escaped),
		cmocka_unit_test(test_results_and_recent),
		cmocka_unit_test(test_wants_html),
		cmocka_unit_test(test_query_and_token),
		cmocka_unit_test(test_catalog_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
