/*
 * test_config: flags, GOPROXY lists, exclude globs, durations, sizes, -listen.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "glob.h"
#include "proxylist.h"
#include "units.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---------------------------------------------------------- */

struct run {
	struct config cfg;
	int rc;
	char *out, *err;
};

/* Parses a NULL-terminated argument list, capturing both streams. */
static void
run_args(struct run *r, ...)
{
	char *argv[64];
	int argc = 0;
	size_t olen, elen;
	FILE *out, *err;
	va_list ap;

	argv[argc++] = "goproxyd";
	va_start(ap, r);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);

	out = open_memstream(&r->out, &olen);
	err = open_memstream(&r->err, &elen);
	assert_non_null(out);
	assert_non_null(err);
	r->rc = config_parse_args(&r->cfg, argc, argv, out, err);
	fclose(out);
	fclose(err);
}

static void
run_free(struct run *r)
{
	config_free(&r->cfg);
	free(r->out);
	free(r->err);
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* Exit 2, nothing on out, exactly `want` as the one line on err. */
static void
expect_usage_error(const char *want, ...)
{
	char *argv[64];
	int argc = 0;
	size_t olen, elen;
	char *obuf, *ebuf;
	struct config cfg;
	FILE *out, *err;
	va_list ap;
	int rc;

	argv[argc++] = "goproxyd";
	va_start(ap, want);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);

	out = open_memstream(&obuf, &olen);
	err = open_memstream(&ebuf, &elen);
	rc = config_parse_args(&cfg, argc, argv, out, err);
	fclose(out);
	fclose(err);
	assert_int_equal(rc, CONFIG_EXIT_USAGE);
	assert_string_equal(obuf, "");
	assert_int_equal(count_lines(ebuf), 1);
	assert_int_equal(ebuf[strlen(ebuf) - 1], '\n');
	if (strncmp(ebuf, want, strlen(want)) != 0)
		fail_msg("stderr %s does not start with %s", ebuf, want);
	config_free(&cfg);              /* already released: must be harmless */
	free(obuf);
	free(ebuf);
}

/* ---- GOPROXY lists ---------------------------------------------------- */

struct proxy_case {
	const char *list;
	size_t n;
	const char *url[3];
	bool fallback[3];
	bool offline;
};

static void
test_proxy_grammar(void **state)
{
	static const struct proxy_case cases[] = {
		{ "https://a", 1, { "https://a" }, { false }, false },
		{ "https://a,https://b", 2, { "https://a", "https://b" },
		  { false, false }, false },
		{ "https://a|https://b", 2, { "https://a", "https://b" },
		  { true, false }, false },
		{ "https://a|https://b|", 2, { "https://a", "https://b" },
		  { true, true }, false },
		{ "a.example|b.example,c.example", 3,
		  { "https://a.example", "https://b.example",
		    "https://c.example" }, { true, false, false }, false },
		{ " https://a , ,https://b ", 2, { "https://a", "https://b" },
		  { false, false }, false },
		{ "https://a,,|https://b", 2, { "https://a", "https://b" },
		  { false, false }, false },
		{ "off", 0, { NULL }, { false }, true },
		{ " , off ,https://b", 0, { NULL }, { false }, true },
		{ "https://a,off,https://b", 1, { "https://a" }, { false },
		  false },
		{ "https://a|off", 1, { "https://a" }, { true }, false },
		{ "https://a,off,direct", 1, { "https://a" }, { false }, false },
		{ "https://proxy.golang.org/", 1,
		  { "https://proxy.golang.org" }, { false }, false },
		{ "https://goproxy.io/sub/path//", 1,
		  { "https://goproxy.io/sub/path" }, { false }, false },
		{ "HTTP://Example.COM:8080", 1, { "http://Example.COM:8080" },
		  { false }, false },
		{ "localhost:3000", 1, { "https://localhost:3000" }, { false },
		  false },
		{ "example.com/prefix", 1, { "https://example.com/prefix" },
		  { false }, false },
		{ "http://[::1]:3000/", 1, { "http://[::1]:3000" }, { false },
		  false },
	};
	struct upstream *ups;
	bool offline;
	size_t i, j, n;
	const char *why;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		const struct proxy_case *c = &cases[i];

		why = config_parse_proxy(c->list, &ups, &n, &offline);
		if (why != NULL)
			fail_msg("%s: %s", c->list, why);
		assert_int_equal(n, c->n);
		assert_int_equal(offline, c->offline);
		for (j = 0; j < n; j++) {
			assert_string_equal(ups[j].url, c->url[j]);
			if (ups[j].fallback_on_error != c->fallback[j])
				fail_msg("%s: entry %zu fallback", c->list, j);
		}
		config_free_upstreams(ups, n);
	}
}

static void
test_proxy_refused(void **state)
{
	static const char *bad[] = {
		"", ",", " , | ", "noproxy", "ftp://x", "file:///srv",
		"http://user:pw@10.0.0.1", /* credentials belong in -netrc */
		"proxy", "/srv/cache", "https://", "https:///", "https:/a.b",
		"https://a b", "https://a\tb", "https://a?x=1", "https://a#f",
		"https://a.example:port", "https://a.example:70000",
		"http://[zz]:80", "a.example:foo", "https://a\x01",
		"https://ex\xc3\xa4mple.com",
	};
	struct upstream *ups = (struct upstream *)1;
	bool offline = true;
	size_t i, n = 99;
	const char *why;

	(void)state;
	for (i = 0; i < NELEM(bad); i++) {
		why = config_parse_proxy(bad[i], &ups, &n, &offline);
		if (why == NULL)
			fail_msg("%s: accepted", bad[i]);
		assert_null(ups);
		assert_int_equal(n, 0);
		assert_false(offline);
		assert_null(strchr(why, '\n'));
	}
}

/* "direct" is an entry of its own, anywhere in the list. */
static void
test_proxy_direct(void **state)
{
	struct upstream *ups;
	bool offline;
	size_t n;

	(void)state;
	assert_null(config_parse_proxy("https://a|direct,https://b", &ups, &n, &offline));
	assert_int_equal(n, 3);
	assert_false(ups[0].direct);
	assert_true(ups[0].fallback_on_error);
	assert_true(ups[1].direct);
	assert_string_equal(ups[1].url, "direct");
	assert_false(ups[1].fallback_on_error);
	assert_false(ups[2].direct);
	config_free_upstreams(ups, n);
	assert_null(config_parse_proxy("direct", &ups, &n, &offline));
	assert_int_equal(n, 1);
	assert_true(ups[0].direct);
	config_free_upstreams(ups, n);
}

/* -sumdb: a URL given is used as is; without one the database is found
 * through the -proxy list first (discover), https://NAME being the last
 * resort. */
static void
test_sumdb_grammar(void **state)
{
	static const char vkey[] = "sum.test.example+0123abcd+AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
	struct sumdb_conf *dbs;
	const char *why;
	size_t n;
	char list[512];

	(void)state;
	assert_null(config_parse_sumdb("sum.golang.org", &dbs, &n));
	assert_int_equal(n, 1);
	assert_string_equal(dbs[0].url, "https://sum.golang.org");
	assert_true(dbs[0].discover);
	assert_string_equal(dbs[0].key, SUMDB_GOLANG_KEY);
	config_free_sumdbs(dbs, n);

	snprintf(list, sizeof list, "sum.golang.org=https://goproxy.cn/sumdb/sum.golang.org/, %s", vkey);
	assert_null(config_parse_sumdb(list, &dbs, &n));
	assert_int_equal(n, 2);
	assert_string_equal(dbs[0].url, "https://goproxy.cn/sumdb/sum.golang.org");
	assert_false(dbs[0].discover);
	assert_string_equal(dbs[1].name, "sum.test.example");
	assert_string_equal(dbs[1].key, vkey);
	assert_string_equal(dbs[1].url, "https://sum.test.example");
	assert_true(dbs[1].discover);
	config_free_sumdbs(dbs, n);

	snprintf(list, sizeof list, "%s=http://127.0.0.1:8081", vkey);
	assert_null(config_parse_sumdb(list, &dbs, &n));
	assert_string_equal(dbs[0].url, "http://127.0.0.1:8081");
	assert_false(dbs[0].discover);
	config_free_sumdbs(dbs, n);

	assert_null(config_parse_sumdb("off", &dbs, &n));
	assert_int_equal(n, 0);
	why = config_parse_sumdb("sum.golang.org=https://a|https://b", &dbs, &n);
	assert_non_null(why);
}

/* -s3: path-style http(s) URLs with a bucket; no credentials, query or
 * fragment; -s3Region defaults to us-east-1. */
static void
test_s3_flags(void **state)
{
	static const char *good[] = {
		"http://127.0.0.1:7480/gomods", "https://s3.eu-central-1.amazonaws.com/b/mirror/",
		"http://[::1]:9000/bucket/a/b",
	};
	static const char *bad[] = {
		"s3://bucket", "http://host", "http://host/", "http://host//b", "ftp://host/b",
		"http://AKIA:secret@host/b", "http://host/b?x=1", "http://host/b#f", "http://host/b%20c",
	};
	struct run r;
	size_t i;

	(void)state;
	run_args(&r, NULL);
	assert_null(r.cfg.s3_url);
	assert_string_equal(r.cfg.s3_region, "us-east-1");
	run_free(&r);
	for (i = 0; i < NELEM(good); i++) {
		run_args(&r, "-s3", good[i], "-s3Region", "eu-central-1", NULL);
		if (r.rc != CONFIG_RUN)
			fail_msg("-s3 %s refused: %s", good[i], r.err);
		assert_string_equal(r.cfg.s3_url, good[i]);
		assert_string_equal(r.cfg.s3_region, "eu-central-1");
		run_free(&r);
	}
	for (i = 0; i < NELEM(bad); i++) {
		run_args(&r, "-s3", bad[i], NULL);
		if (r.rc == CONFIG_RUN)
			fail_msg("-s3 %s accepted", bad[i]);
		assert_non_null(strstr(r.err, "-s3"));
		/* a refused URL's credentials are not echoed */
		assert_null(strstr(r.err, "secret"));
		run_free(&r);
	}
}

/* -s3AddressingStyle virtual: the bucket is the host name's first label,
 * so the path may be empty and an IP address is refused; either flag may
 * come first. */
static void
test_s3_virtual_host(void **state)
{
	static const char *good[] = {
		"https://b.oss-cn-hangzhou.aliyuncs.com", "https://b.oss-cn-hangzhou.aliyuncs.com/",
		"http://goproxyd.localhost:7480/mirror", "https://my-bucket.s3.amazonaws.com/a/b",
	};
	static const char *bad[] = {
		"http://127.0.0.1:7480/b", "http://host/b", "http://[::1]:9000/b", "http://.host/b",
		"http://10.0.0.1",
	};
	struct run r;
	size_t i;

	(void)state;
	run_args(&r, NULL);
	assert_false(r.cfg.s3_virtual);
	run_free(&r);
	for (i = 0; i < NELEM(good); i++) {
		run_args(&r, "-s3", good[i], "-s3AddressingStyle", "virtual", NULL);
		if (r.rc != CONFIG_RUN)
			fail_msg("-s3 %s refused: %s", good[i], r.err);
		assert_true(r.cfg.s3_virtual);
		run_free(&r);
		run_args(&r, "-s3AddressingStyle", "virtual", "-s3", good[i], NULL);
		assert_int_equal(r.rc, CONFIG_RUN);
		run_free(&r);
	}
	/* without the style, a URL with no bucket in its path is refused */
	run_args(&r, "-s3", good[0], NULL);
	assert_int_not_equal(r.rc, CONFIG_RUN);
	assert_non_null(strstr(r.err, "-s3AddressingStyle virtual"));
	run_free(&r);
	for (i = 0; i < NELEM(bad); i++) {
		run_args(&r, "-s3AddressingStyle", "virtual", "-s3", bad[i], NULL);
		if (r.rc == CONFIG_RUN)
			fail_msg("-s3 %s accepted with -s3AddressingStyle virtual", bad[i]);
		assert_non_null(strstr(r.err, "BUCKET.HOST"));
		run_free(&r);
	}
	run_args(&r, "-s3AddressingStyle", "auto", NULL);
	assert_int_not_equal(r.rc, CONFIG_RUN);
	assert_non_null(strstr(r.err, "path or virtual"));
	run_free(&r);
}

/* -pathPrefix: trailing slashes go, "/" means none, and only plain
 * elements are accepted. */
static void
test_path_prefix(void **state)
{
	static const struct { const char *in, *want; } good[] = {
		{ "/go", "/go" }, { "/mirror/go/", "/mirror/go" }, { "/a.b/c-d_e~f//", "/a.b/c-d_e~f" },
		{ "/...", "/..." }, { "/", NULL }, { "", NULL },
	};
	static const char *bad[] = {
		"go", "//go", "/a//b", "/a/./b", "/a/..", "/./", "/a b", "/a%20b", "/a?b", "/a#b", "/caf\xc3\xa9",
	};
	struct run r;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(good); i++) {
		run_args(&r, "-pathPrefix", good[i].in, NULL);
		if (r.rc != CONFIG_RUN)
			fail_msg("-pathPrefix %s refused: %s", good[i].in, r.err);
		if (good[i].want)
			assert_string_equal(r.cfg.path_prefix, good[i].want);
		else
			assert_null(r.cfg.path_prefix);
		run_free(&r);
	}
	for (i = 0; i < NELEM(bad); i++) {
		run_args(&r, "-pathPrefix", bad[i], NULL);
		if (r.rc == CONFIG_RUN)
			fail_msg("-pathPrefix %s accepted", bad[i]);
		assert_non_null(strstr(r.err, "-pathPrefix"));
		run_free(&r);
	}
}

/* The command line from a deployment guide, verbatim. */
static void
test_deployment_guide_command(void **state)
{
	struct run r;

	(void)state;
	run_args(&r, "-listen", ":8080", "-cacheDir", "/home/goproxy/data",
	    "-proxy", "https://proxy.golang.org,https://goproxy.cn", NULL);
	assert_int_equal(r.rc, CONFIG_RUN);
	assert_string_equal(r.err, "");
	assert_null(r.cfg.listen_host);
	assert_string_equal(r.cfg.listen_port, "8080");
	assert_string_equal(r.cfg.cache_dir, "/home/goproxy/data");
	assert_int_equal(r.cfg.n_upstreams, 2);
	assert_string_equal(r.cfg.upstreams[0].url, "https://proxy.golang.org");
	assert_false(r.cfg.upstreams[0].fallback_on_error);
	assert_string_equal(r.cfg.upstreams[1].url, "https://goproxy.cn");
	assert_false(r.cfg.upstreams[1].fallback_on_error);
	assert_false(r.cfg.offline);
	run_free(&r);
}

/* ---- exclude globs ---------------------------------------------------- */

/* x/mod module_test.go TestMatchPrefixPatterns, plus a few GOPRIVATE-isms. */
static void
test_match_prefix_patterns(void **state)
{
	static const struct {
		const char *globs, *target;
		bool want;
	} cases[] = {
		{ "", "rsc.io/quote", false },
		{ "/", "rsc.io/quote", false },
		{ "*/quote", "rsc.io/quote", true },
		{ "*/quo", "rsc.io/quote", false },
		{ "*/quo??", "rsc.io/quote", true },
		{ "*/quo*", "rsc.io/quote", true },
		{ "*quo*", "rsc.io/quote", false },
		{ "rsc.io", "rsc.io/quote", true },
		{ "*.io", "rsc.io/quote", true },
		{ "rsc.io/", "rsc.io/quote", true },
		{ "rsc", "rsc.io/quote", false },
		{ "rsc*", "rsc.io/quote", true },

		{ "rsc.io", "rsc.io/quote/v3", true },
		{ "*/quote", "rsc.io/quote/v3", true },
		{ "*/quote/", "rsc.io/quote/v3", true },
		{ "*/quote/*", "rsc.io/quote/v3", true },
		{ "*/quote/*/", "rsc.io/quote/v3", true },
		{ "*/v3", "rsc.io/quote/v3", false },
		{ "*/*/v3", "rsc.io/quote/v3", true },
		{ "*/*/*", "rsc.io/quote/v3", true },
		{ "*/*/*/", "rsc.io/quote/v3", true },
		{ "*/*/*", "rsc.io/quote", false },
		{ "*/*/*/", "rsc.io/quote", false },

		{ "*/*/*,,", "rsc.io/quote", false },
		{ "*/*/*,,*/quote", "rsc.io/quote", true },
		{ ",,*/quote", "rsc.io/quote", true },

		{ "rsc.io/q", "rsc.io/quote", false },
		{ "*.corp.example.com", "git.corp.example.com/team/lib", true },
		{ "*.corp.example.com", "corp.example.com/team/lib", false },
		{ "github.com/corp/*", "github.com/corp/svc/internal", true },
		{ "github.com/corp/*", "github.com/public/lib", false },
		{ "github.com/corp/svc/sub", "github.com/corp", false },
		{ "[", "github.com/corp/svc", false },
		{ "rsc.io/[qz]uote", "rsc.io/quote", true },
		{ "rsc.io/[^q]uote", "rsc.io/quote", false },
		{ "rsc.io/[a-r]uote", "rsc.io/quote/v3", true },
		{ "rsc.io/\\quote", "rsc.io/quote", true },
		{ "rsc.io/quote\\", "rsc.io/quote", false },
		{ "rsc?io", "rsc.io/quote", true },
		{ "rsc.io?quote", "rsc.io/quote", false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		char *g = (char *)cases[i].globs;
		bool got = config_match_patterns(&g, 1, cases[i].target);

		if (got != cases[i].want)
			fail_msg("match(%s, %s) = %d", cases[i].globs,
			    cases[i].target, got);
	}
	assert_false(config_match_patterns(NULL, 0, "rsc.io/quote"));
}

static void
test_exclude_flag(void **state)
{
	struct run r;

	(void)state;
	run_args(&r, "-exclude", " *.corp.example.com , ,rsc.io/private,", NULL);
	assert_int_equal(r.rc, CONFIG_RUN);
	assert_int_equal(r.cfg.n_exclude, 2);
	assert_string_equal(r.cfg.exclude[0], "*.corp.example.com");
	assert_string_equal(r.cfg.exclude[1], "rsc.io/private");
	assert_true(config_match_patterns(r.cfg.exclude, r.cfg.n_exclude,
	    "git.corp.example.com/x"));
	assert_true(config_match_patterns(r.cfg.exclude, r.cfg.n_exclude,
	    "rsc.io/private/v2"));
	assert_false(config_match_patterns(r.cfg.exclude, r.cfg.n_exclude,
	    "rsc.io/quote"));
	run_free(&r);

	run_args(&r, NULL);
	assert_int_equal(r.cfg.n_exclude, 0);
	run_free(&r);

	expect_usage_error("goproxyd: invalid value \"a.com,[x\" for flag "
	    "-exclude: ", "-exclude", "a.com,[x", NULL);
}

/* ---- durations -------------------------------------------------------- */

static void
test_durations(void **state)
{
	static const struct {
		const char *s;
		int64_t ms;
	} good[] = {
		{ "0", 0 }, { "+0", 0 }, { "-0", 0 }, { "0s", 0 },
		{ "300ms", 300 }, { "1.5h", 5400000 }, { "1h2m3s", 3723000 },
		{ "5m", 300000 }, { "30s", 30000 }, { "1h30m", 5400000 },
		{ ".5s", 500 }, { "5.s", 5000 }, { "1.0001s", 1000 },
		{ "999us", 0 }, { "1500\xc2\xb5s", 1 }, { "2000\xce\xbcs", 2 },
		{ "1000000ns", 1 }, { "+5s", 5000 }, { "1m1m", 120000 },
		{ "2562047h47m16.854775807s", 9223372036854 },
	};
	static const char *bad[] = {
		"", "5", "-1s", "1x", "s", ".s", "-", "+", "1h 2m", " 1s",
		"1s ", "1.2.3s", "9223372036854775808ns", "2562048h",
		"3000000h", "1e3s", "0x10s", "1S",
	};
	int64_t ms;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(good); i++) {
		const char *why = config_parse_duration(good[i].s, &ms);

		if (why != NULL)
			fail_msg("%s: %s", good[i].s, why);
		if (ms != good[i].ms)
			fail_msg("%s: %lld ms", good[i].s, (long long)ms);
	}
	for (i = 0; i < NELEM(bad); i++)
		if (config_parse_duration(bad[i], &ms) == NULL)
			fail_msg("%s: accepted", bad[i]);
	assert_non_null(strstr(config_parse_duration("5", &ms), "missing unit"));
	assert_non_null(strstr(config_parse_duration("-1s", &ms), "negative"));
	assert_non_null(strstr(config_parse_duration("1x", &ms), "unknown unit"));
}

/* ---- sizes ------------------------------------------------------------ */

static void
test_sizes(void **state)
{
	static const struct {
		const char *s;
		uint64_t bytes;
	} good[] = {
		{ "0", 0 }, { "512", 512 }, { "007", 7 }, { "1K", 1024 },
		{ "1KB", 1024 }, { "1KiB", 1024 }, { "512M", 512ULL << 20 },
		{ "50G", 50ULL << 30 }, { "2T", 2ULL << 40 },
		{ "16777215T", 16777215ULL << 40 },
		{ "18446744073709551615", UINT64_MAX },
	};
	static const char *bad[] = {
		"", "-1", "+1", " 1", "1X", "1k", "1Ki", "1KBB", "1.5G", "0x10",
		"G", "16777216T", "18446744073709551616",
	};
	uint64_t bytes;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(good); i++) {
		const char *why = config_parse_size(good[i].s, &bytes);

		if (why != NULL)
			fail_msg("%s: %s", good[i].s, why);
		if (bytes != good[i].bytes)
			fail_msg("%s: %llu bytes", good[i].s,
			    (unsigned long long)bytes);
	}
	for (i = 0; i < NELEM(bad); i++) {
		bytes = 42;
		if (config_parse_size(bad[i], &bytes) == NULL)
			fail_msg("%s: accepted", bad[i]);
		if (bytes != 42)
			fail_msg("%s: result written on failure", bad[i]);
	}
	assert_non_null(strstr(config_parse_size("16777216T", &bytes), "too large"));
	assert_non_null(strstr(config_parse_size("1X", &bytes), "want a size"));
}

/* ---- -listen ---------------------------------------------------------- */

static void
test_listen(void **state)
{
	static const struct {
		const char *s, *host, *port;
	} good[] = {
		{ ":8080", NULL, "8080" },
		{ "localhost:80", "localhost", "80" },
		{ "127.0.0.1:0", "127.0.0.1", "0" },
		{ "0.0.0.0:65535", "0.0.0.0", "65535" },
		{ "[::1]:8080", "::1", "8080" },
		{ "[::]:443", "::", "443" },
		{ "[fe80::1%eth0]:8080", "fe80::1%eth0", "8080" },
		{ "proxy.internal:08080", "proxy.internal", "8080" },
	};
	static const char *bad[] = {
		"", "8080", ":", "localhost", "::1:8080", "::1", "[::1]",
		"[::1]8080", "[::1]:", "[::1:8080", "::1]:8080", "[::1]]:80",
		":65536", ":-1", ":http", ":80x", ":123456", "[1.2.3.4]:80",
		"[zz]:80", "1.2.3:80", "300.1.1.1:80", "a b:80", "a/b:80",
		"[::1%]:80",
	};
	char *host, *port;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(good); i++) {
		const char *why = config_parse_listen(good[i].s, &host, &port);

		if (why != NULL)
			fail_msg("%s: %s", good[i].s, why);
		if (good[i].host == NULL)
			assert_null(host);
		else
			assert_string_equal(host, good[i].host);
		assert_string_equal(port, good[i].port);
		free(host);
		free(port);
	}
	for (i = 0; i < NELEM(bad); i++) {
		if (config_parse_listen(bad[i], &host, &port) == NULL)
			fail_msg("%s: accepted", bad[i]);
		assert_null(host);
		assert_null(port);
	}
}

/* ---- flags ------------------------------------------------------------ */

static void
test_defaults(void **state)
{
	struct run r;

	(void)state;
	run_args(&r, NULL);
	assert_int_equal(r.rc, CONFIG_RUN);
	assert_string_equal(r.out, "");
	assert_string_equal(r.err, "");
	assert_null(r.cfg.listen_host);
	assert_string_equal(r.cfg.listen_port, "8080");
	assert_string_equal(r.cfg.cache_dir, "./cache");
	assert_null(r.cfg.path_prefix);
	assert_int_equal(r.cfg.n_upstreams, 1);
	assert_string_equal(r.cfg.upstreams[0].url, "https://proxy.golang.org");
	assert_false(r.cfg.upstreams[0].fallback_on_error);
	assert_false(r.cfg.offline);
	assert_int_equal(r.cfg.n_exclude, 0);
	assert_int_equal(r.cfg.cache_expire_ms, 300000);
	assert_int_equal(r.cfg.neg_cache_ms, 60000);
	assert_int_equal(r.cfg.connect_timeout_ms, 10000);
	assert_int_equal(r.cfg.stall_timeout_ms, 30000);
	assert_int_equal(r.cfg.client_timeout_ms, 60000);
	assert_int_equal(r.cfg.header_timeout_ms, 10000);
	assert_int_equal(r.cfg.shutdown_timeout_ms, 10000);
	assert_int_equal(r.cfg.max_fetches, 256);
	assert_int_equal(r.cfg.max_conns, 1024);
	assert_int_equal(r.cfg.max_conns_per_ip, 256);
	assert_int_equal(r.cfg.threads, 0);
	assert_int_equal(r.cfg.max_header_bytes, 8192);
	run_free(&r);
}

static void
test_flag_forms(void **state)
{
	struct run r;

	(void)state;
	run_args(&r, "-maxFetches", "4", "-maxConns=77", "--threads", "3",
	    "--maxHeaderBytes=32768", "-cacheExpire", "1h2m3s",
	    "--negativeCacheExpire=0", "-connectTimeout=300ms",
	    "-stallTimeout", "1.5h", "-clientTimeout=5m",
	    "-shutdownTimeout", "0", "-listen=[::1]:9000",
	    "-headerTimeout=2500ms", "--maxConnsPerIP", "0",
	    "--cacheDir", "/var/cache/goproxyd", "-proxy", "off",
	    "-exclude=*.corp", NULL);
	assert_int_equal(r.rc, CONFIG_RUN);
	assert_string_equal(r.err, "");
	assert_int_equal(r.cfg.max_fetches, 4);
	assert_int_equal(r.cfg.max_conns, 77);
	assert_int_equal(r.cfg.max_conns_per_ip, 0);
	assert_int_equal(r.cfg.header_timeout_ms, 2500);
	assert_int_equal(r.cfg.threads, 3);
	assert_int_equal(r.cfg.max_header_bytes, 32768);
	assert_int_equal(r.cfg.cache_expire_ms, 3723000);
	assert_int_equal(r.cfg.neg_cache_ms, 0);
	assert_int_equal(r.cfg.connect_timeout_ms, 300);
	assert_int_equal(r.cfg.stall_timeout_ms, 5400000);
	assert_int_equal(r.cfg.client_timeout_ms, 300000);
	assert_int_equal(r.cfg.shutdown_timeout_ms, 0);
	assert_string_equal(r.cfg.listen_host, "::1");
	assert_string_equal(r.cfg.listen_port, "9000");
	assert_string_equal(r.cfg.cache_dir, "/var/cache/goproxyd");
	assert_true(r.cfg.offline);
	assert_int_equal(r.cfg.n_upstreams, 0);
	assert_null(r.cfg.upstreams);
	assert_int_equal(r.cfg.n_exclude, 1);
	run_free(&r);

	/* The last occurrence wins; earlier values are released. */
	run_args(&r, "-proxy", "https://a", "-proxy", "https://b|https://c",
	    "-cacheDir", "x", "-cacheDir", "y", "-listen", "h:1",
	    "-listen", ":2", "-exclude", "a.com", "-exclude", "b.com,c.com",
	    NULL);
	assert_int_equal(r.rc, CONFIG_RUN);
	assert_int_equal(r.cfg.n_upstreams, 2);
	assert_true(r.cfg.upstreams[0].fallback_on_error);
	assert_string_equal(r.cfg.cache_dir, "y");
	assert_null(r.cfg.listen_host);
	assert_string_equal(r.cfg.listen_port, "2");
	assert_int_equal(r.cfg.n_exclude, 2);
	run_free(&r);

	/* A value may itself start with '-' (Go takes the next argument). */
	expect_usage_error("goproxyd: invalid value \"-1\" for flag -threads: ",
	    "-threads", "-1", NULL);

	/* "--" ends the flags; nothing may follow it. */
	run_args(&r, "-threads", "2", "--", NULL);
	assert_int_equal(r.rc, CONFIG_RUN);
	assert_int_equal(r.cfg.threads, 2);
	run_free(&r);
	expect_usage_error("goproxyd: unexpected argument \"-threads\"",
	    "--", "-threads", "2", NULL);
}

static void
test_flag_errors(void **state)
{
	(void)state;
	expect_usage_error("goproxyd: flag provided but not defined: -foo\n",
	    "-foo", NULL);
	expect_usage_error("goproxyd: flag provided but not defined: -foo\n",
	    "--foo=bar", NULL);
	expect_usage_error("goproxyd: flag provided but not defined: -Listen\n",
	    "-Listen", ":1", NULL);
	expect_usage_error("goproxyd: flag provided but not defined: -a\\x0ab\n",
	    "-a\nb", NULL);
	expect_usage_error("goproxyd: flag needs an argument: -listen\n",
	    "-listen", NULL);
	expect_usage_error("goproxyd: flag needs an argument: -proxy\n",
	    "-cacheDir", "c", "--proxy", NULL);
	expect_usage_error("goproxyd: bad flag syntax: ---x\n", "---x", NULL);
	expect_usage_error("goproxyd: bad flag syntax: -=x\n", "-=x", NULL);
	expect_usage_error("goproxyd: unexpected argument \"x\"\n", "x", NULL);
	expect_usage_error("goproxyd: unexpected argument \"-\"\n",
	    "-threads", "1", "-", NULL);
	expect_usage_error("goproxyd: unexpected argument \"serve\"\n",
	    "serve", "-threads", "1", NULL);
	expect_usage_error("goproxyd: invalid value \"xyz\" for flag "
	    "-cacheExpire: ", "-cacheExpire", "xyz", NULL);
	expect_usage_error("goproxyd: invalid value \"5\" for flag "
	    "-cacheExpire: missing unit", "-cacheExpire=5", NULL);
	expect_usage_error("goproxyd: invalid value \"-1s\" for flag "
	    "-negativeCacheExpire: negative", "-negativeCacheExpire", "-1s",
	    NULL);
	expect_usage_error("goproxyd: invalid value \"0\" for flag "
	    "-connectTimeout: ", "-connectTimeout", "0", NULL);
	expect_usage_error("goproxyd: invalid value \"500us\" for flag "
	    "-stallTimeout: ", "-stallTimeout", "500us", NULL);
	expect_usage_error("goproxyd: invalid value \"100000h\" for flag "
	    "-clientTimeout: ", "-clientTimeout", "100000h", NULL);
	expect_usage_error("goproxyd: invalid value \"0\" for flag "
	    "-maxFetches: ", "-maxFetches", "0", NULL);
	expect_usage_error("goproxyd: invalid value \"0\" for flag "
	    "-headerTimeout: ", "-headerTimeout", "0", NULL);
	expect_usage_error("goproxyd: invalid value \"-1\" for flag "
	    "-maxConnsPerIP: ", "-maxConnsPerIP", "-1", NULL);
	expect_usage_error("goproxyd: invalid value \"99999999999999999999999\" "
	    "for flag -maxConns: out of range", "-maxConns",
	    "99999999999999999999999", NULL);
	expect_usage_error("goproxyd: invalid value \"12abc\" for flag "
	    "-threads: not a decimal integer", "-threads", "12abc", NULL);
	expect_usage_error("goproxyd: invalid value \"\" for flag -threads: ",
	    "-threads=", NULL);
	expect_usage_error("goproxyd: invalid value \" 4\" for flag -threads: ",
	    "-threads", " 4", NULL);
	expect_usage_error("goproxyd: invalid value \"0x10\" for flag "
	    "-maxFetches: ", "-maxFetches", "0x10", NULL);
	expect_usage_error("goproxyd: invalid value \"100\" for flag "
	    "-maxHeaderBytes: ", "-maxHeaderBytes", "100", NULL);
	expect_usage_error("goproxyd: invalid value \"::1:80\" for flag "
	    "-listen: too many colons", "-listen", "::1:80", NULL);
	expect_usage_error("goproxyd: invalid value \"0\" for flag "
	    "-maxDirect: ", "-maxDirect", "0", NULL);
	expect_usage_error("goproxyd: invalid value \"0\" for flag "
	    "-directTimeout: ", "-directTimeout", "0", NULL);
	expect_usage_error("goproxyd: invalid value \"a.com,[x\" for flag "
	    "-deny: malformed glob pattern", "-deny", "a.com,[x", NULL);
	expect_usage_error("goproxyd: invalid value \"https://a\\nb\" for flag "
	    "-proxy: ", "-proxy", "https://a\nb", NULL);
	expect_usage_error("goproxyd: invalid value \"\" for flag -cacheDir: ",
	    "-cacheDir", "", NULL);
	expect_usage_error("goproxyd: invalid boolean value \"yes\" for "
	    "-version: parse error\n", "-version=yes", NULL);
	/* The first bad flag is the one reported. */
	expect_usage_error("goproxyd: flag provided but not defined: -a\n",
	    "-a", "-b", NULL);
}

static void
test_help_and_version(void **state)
{
	static const char *help[] = { "-h", "-help", "--help", "--h",
	    "-help=x" };
	static const char *names[] = { "-listen", "-cacheDir", "-proxy",
	    "-exclude", "-cacheExpire", "-negativeCacheExpire",
	    "-connectTimeout", "-stallTimeout", "-clientTimeout",
	    "-shutdownTimeout", "-maxFetches", "-maxConns", "-threads",
	    "-maxHeaderBytes", "-headerTimeout", "-maxConnsPerIP", "-version",
	    "-h" };
	struct run r;
	size_t i, j;

	(void)state;
	for (i = 0; i < NELEM(help); i++) {
		run_args(&r, "-threads", "2", help[i], "-bogus", NULL);
		assert_int_equal(r.rc, CONFIG_EXIT_OK);
		assert_string_equal(r.err, "");
		for (j = 0; j < NELEM(names); j++)
			if (strstr(r.out, names[j]) == NULL)
				fail_msg("usage lacks %s", names[j]);
		assert_non_null(strstr(r.out, "(default \":8080\")"));
		assert_non_null(strstr(r.out, "(default 5m)"));
		assert_non_null(strstr(r.out, "(default 8192)"));
		assert_non_null(strstr(r.out,
		    "(default \"https://proxy.golang.org\")"));
		run_free(&r);
	}

	run_args(&r, "-version", NULL);
	assert_int_equal(r.rc, CONFIG_EXIT_OK);
	assert_string_equal(r.out, "goproxyd " GOPROXYD_VERSION "\n");
	assert_string_equal(r.err, "");
	run_free(&r);

	run_args(&r, "--version", NULL);
	assert_int_equal(r.rc, CONFIG_EXIT_OK);
	assert_string_equal(r.out, "goproxyd 0.1.0\n");
	run_free(&r);

	run_args(&r, "-version=true", "-threads", "1", NULL);
	assert_int_equal(r.rc, CONFIG_EXIT_OK);
	run_free(&r);

	run_args(&r, "-version=false", NULL);
	assert_int_equal(r.rc, CONFIG_RUN);
	assert_string_equal(r.out, "");
	run_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proxy_grammar),
		cmocka_unit_test(test_proxy_refused),
		cmocka_unit_test(test_sumdb_grammar),
		cmocka_unit_test(test_path_prefix),
		cmocka_unit_test(test_s3_flags),
		cmocka_unit_test(test_s3_virtual_host),
		cmocka_unit_test(test_deployment_guide_command),
		cmocka_unit_test(test_match_prefix_patterns),
		cmocka_unit_test(test_exclude_flag),
		cmocka_unit_test(test_proxy_direct),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_flag_forms),
		cmocka_unit_test(test_flag_errors),
		cmocka_unit_test(test_help_and_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
