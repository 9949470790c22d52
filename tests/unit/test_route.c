/*
 * Unit tests for src/route.c: raw request path -> struct request.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "modpath.h"
#include "route.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define EXPECT(cond, ...)                                               \
	do {                                                            \
		if (!(cond)) {                                          \
			print_error("%s:%d: ", __FILE__, __LINE__);     \
			print_error(__VA_ARGS__);                       \
			print_error("\n");                              \
			fail();                                         \
		}                                                       \
	} while (0)

/* A request that must parse. */
struct ok_case {
	const char *raw;
	enum req_kind kind;
	const char *path, *esc_path;
	const char *version, *esc_version;  /* "" for LIST/LATEST */
	bool immutable;
};

static const struct ok_case oks[] = {
	/* The go command percent-encodes every '!' of the case encoding. */
	{ "/github.com/%21burnt%21sushi/toml/@v/v1.2.0.info", REQ_INFO,
	  "github.com/BurntSushi/toml", "github.com/!burnt!sushi/toml", "v1.2.0", "v1.2.0", true },
	{ "/github.com/!burnt!sushi/toml/@v/v1.2.0.info", REQ_INFO,
	  "github.com/BurntSushi/toml", "github.com/!burnt!sushi/toml", "v1.2.0", "v1.2.0", true },
	{ "/github.com/!azure/x/@v/list", REQ_LIST,
	  "github.com/Azure/x", "github.com/!azure/x", "", "", false },
	{ "/github.com/!azure/x/@latest", REQ_LATEST,
	  "github.com/Azure/x", "github.com/!azure/x", "", "", false },
	{ "/example.com/m/@v/v1.0.0-!r!c1.mod", REQ_MOD,
	  "example.com/m", "example.com/m", "v1.0.0-RC1", "v1.0.0-!r!c1", true },
	{ "/example.com/m/@v/v1.0.0-%21r%21c1.zip", REQ_ZIP,
	  "example.com/m", "example.com/m", "v1.0.0-RC1", "v1.0.0-!r!c1", true },
	{ "/golang.org/x/mod/@v/v0.14.0.zip", REQ_ZIP,
	  "golang.org/x/mod", "golang.org/x/mod", "v0.14.0", "v0.14.0", true },
	{ "/gopkg.in/yaml.v2/@v/v2.4.0.mod", REQ_MOD,
	  "gopkg.in/yaml.v2", "gopkg.in/yaml.v2", "v2.4.0", "v2.4.0", true },
	{ "/gopkg.in/check.v1/@v/v0.0.0-20161208181325-20d25e280405.mod", REQ_MOD,
	  "gopkg.in/check.v1", "gopkg.in/check.v1", "v0.0.0-20161208181325-20d25e280405",
	  "v0.0.0-20161208181325-20d25e280405", true },
	{ "/example.com/m/v2/@v/v2.1.0.mod", REQ_MOD,
	  "example.com/m/v2", "example.com/m/v2", "v2.1.0", "v2.1.0", true },
	/* '+' arrives literally and is not a space. */
	{ "/example.com/m/@v/v2.0.0+incompatible.zip", REQ_ZIP,
	  "example.com/m", "example.com/m", "v2.0.0+incompatible", "v2.0.0+incompatible", true },
	{ "/example.com/m/@v/v2.0.0%2Bincompatible.info", REQ_INFO,
	  "example.com/m", "example.com/m", "v2.0.0+incompatible", "v2.0.0+incompatible", true },
	/* Pseudo-versions, all three forms. */
	{ "/example.com/m/@v/v0.0.0-20191109021931-daa7c04131f5.zip", REQ_ZIP,
	  "example.com/m", "example.com/m", "v0.0.0-20191109021931-daa7c04131f5",
	  "v0.0.0-20191109021931-daa7c04131f5", true },
	{ "/example.com/m/@v/v1.2.4-0.20191109021931-daa7c04131f5.mod", REQ_MOD,
	  "example.com/m", "example.com/m", "v1.2.4-0.20191109021931-daa7c04131f5",
	  "v1.2.4-0.20191109021931-daa7c04131f5", true },
	{ "/example.com/m/@v/v1.2.3-pre.0.20191109021931-daa7c04131f5.info", REQ_INFO,
	  "example.com/m", "example.com/m", "v1.2.3-pre.0.20191109021931-daa7c04131f5",
	  "v1.2.3-pre.0.20191109021931-daa7c04131f5", true },
	/* Queries: .info only, mutable. */
	{ "/example.com/m/@v/v1.2.info", REQ_INFO,
	  "example.com/m", "example.com/m", "v1.2", "v1.2", false },
	{ "/example.com/m/@v/master.info", REQ_INFO,
	  "example.com/m", "example.com/m", "master", "master", false },
	{ "/example.com/m/@v/!main.info", REQ_INFO,
	  "example.com/m", "example.com/m", "Main", "!main", false },
	{ "/example.com/m/@v/1234abcd.info", REQ_INFO,
	  "example.com/m", "example.com/m", "1234abcd", "1234abcd", false },
	{ "/example.com/m/@v/v1.0.0+meta.info", REQ_INFO,
	  "example.com/m", "example.com/m", "v1.0.0+meta", "v1.0.0+meta", false },
	/* Canonical but not for this path: a query, not an immutable file. */
	{ "/example.com/m/@v/v2.0.0.info", REQ_INFO,
	  "example.com/m", "example.com/m", "v2.0.0", "v2.0.0", false },
	{ "/example.com/m/v2/@v/v1.0.0.info", REQ_INFO,
	  "example.com/m/v2", "example.com/m/v2", "v1.0.0", "v1.0.0", false },
	/* Queries may hold characters that arrive percent-encoded. */
	{ "/example.com/m/@v/feature%23x.info", REQ_INFO,
	  "example.com/m", "example.com/m", "feature#x", "feature#x", false },
	{ "/example.com/m/@v/a%20b.info", REQ_INFO,
	  "example.com/m", "example.com/m", "a b", "a b", false },
	{ "/example.com/m/@v/a+b.info", REQ_INFO,
	  "example.com/m", "example.com/m", "a+b", "a+b", false },
	/* Decoded exactly once: "%2521" is the three characters "%21". */
	{ "/example.com/m/@v/%2521x.info", REQ_INFO,
	  "example.com/m", "example.com/m", "%21x", "%21x", false },
	/* "list" is only special as the whole file name. */
	{ "/example.com/m/@v/list.info", REQ_INFO,
	  "example.com/m", "example.com/m", "list", "list", false },
	/* %2F decodes to '/', then the usual rules apply. */
	{ "/example.com%2Fm/@v/list", REQ_LIST, "example.com/m", "example.com/m", "", "", false },
	{ "/example.com/m%2F@v%2Flist", REQ_LIST, "example.com/m", "example.com/m", "", "", false },
	/* Hex digits of either case. */
	{ "/example.com/%6d/@v/list", REQ_LIST, "example.com/m", "example.com/m", "", "", false },
	{ "/example.com/%6D/@v/list", REQ_LIST, "example.com/m", "example.com/m", "", "", false },
	/* Nested modules are separate. */
	{ "/example.com/a/b/@v/list", REQ_LIST, "example.com/a/b", "example.com/a/b", "", "", false },
	{ "/example.com/a.b~c_d-e/@latest", REQ_LATEST,
	  "example.com/a.b~c_d-e", "example.com/a.b~c_d-e", "", "", false },
};

static void check_ok(const struct ok_case *c)
{
	struct request req;
	const char *reason = NULL;
	char esc[MP_PATH_MAX];
	int st;

	st = route_parse(c->raw, &req, &reason);
	EXPECT(st == 0, "route_parse(\"%s\") = %d (%s), want 0", c->raw, st, reason ? reason : "");
	EXPECT(req.op == OP_NONE, "%s: op %d, want OP_NONE", c->raw, req.op);
	EXPECT(req.kind == c->kind, "%s: kind %d, want %d", c->raw, req.kind, c->kind);
	EXPECT(strcmp(req.path, c->path) == 0, "%s: path \"%s\"", c->raw, req.path);
	EXPECT(strcmp(req.esc_path, c->esc_path) == 0, "%s: esc_path \"%s\"", c->raw, req.esc_path);
	EXPECT(strcmp(req.version, c->version) == 0, "%s: version \"%s\"", c->raw, req.version);
	EXPECT(strcmp(req.esc_version, c->esc_version) == 0, "%s: esc_version \"%s\"",
	    c->raw, req.esc_version);
	EXPECT(req.immutable == c->immutable, "%s: immutable %d", c->raw, req.immutable);

	/* The escaped forms are exactly the escaping of the originals. */
	EXPECT(mp_escape(req.path, esc, sizeof esc) == NULL && strcmp(esc, req.esc_path) == 0,
	    "%s: esc_path is not mp_escape(path)", c->raw);
	EXPECT(mp_escape(req.version, esc, sizeof esc) == NULL &&
	    strcmp(esc, req.esc_version) == 0, "%s: esc_version is not mp_escape(version)", c->raw);
	EXPECT(strpbrk(req.esc_path, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == NULL &&
	    strpbrk(req.esc_version, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == NULL,
	    "%s: uppercase in an escaped form", c->raw);
}

static void test_ok(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(oks); i++)
		check_ok(&oks[i]);
}

/* A request that must be refused. */
struct bad_case {
	const char *raw;
	int status;
};

static const struct bad_case bads[] = {
	/* Not an endpoint: 404. */
	{ "/catalogs", 404 },
	{ "/favicon.ico", 404 },
	{ "/example.com/foo", 404 },
	{ "/example.com/m/@v", 404 },
	{ "/example.com/m@v1.0.0", 404 },
	/* Not a path at all. */
	{ "", 400 },
	{ "example.com/m/@v/list", 400 },
	{ "*", 400 },
	/* The file part after /@v/. */
	{ "/example.com/m/@v/", 400 },
	{ "/example.com/m/@v/list/extra", 400 },
	{ "/example.com/m/@v/list/", 400 },
	{ "/example.com/m/@v/LIST", 400 },
	{ "/example.com/m/@v/lists", 400 },
	{ "/example.com/m/@v/v1.0.0", 400 },
	{ "/example.com/m/@v/v1.0.0.txt", 400 },
	{ "/example.com/m/@v/v1.0.0.INFO", 400 },
	{ "/example.com/m/@v/.info", 400 },
	{ "/example.com/m/@v/.mod", 400 },
	{ "/example.com/m/@v/v1.0.0/.info", 400 },
	{ "/example.com/m/@v/v1.0.0%2F..%2Fx.info", 400 },
	{ "/example.com/m/@v/v1.0.0.info/x", 400 },
	{ "/example.com/m/@v/v1.0.0/@v/list", 400 },
	/* @latest must end the path. */
	{ "/example.com/m/@latest/x", 400 },
	{ "/example.com/m/@latest/", 400 },
	{ "/example.com/m/@latestx", 400 },
	{ "/example.com/m/@latest/@v/list", 400 },
	/* No module part. */
	{ "/@v/list", 400 },
	{ "/@latest", 400 },
	{ "//@v/list", 400 },
	/* Module path rules. */
	{ "/example.com/m/v0/@v/list", 400 },
	{ "/example.com/m/v1/@v/list", 400 },
	{ "/example.com/m/v01/@v/list", 400 },
	{ "/example.com/m/v2.0/@v/list", 400 },
	{ "/gopkg.in/yaml/@v/list", 400 },
	{ "/gopkg.in/yaml.v01/@v/list", 400 },
	{ "/example.com/con/@v/list", 400 },
	{ "/example.com/!c!o!n/@v/list", 400 },
	{ "/example.com/com1.txt/@v/list", 400 },
	{ "/example.com/exampl~1/@v/list", 400 },
	{ "/example.com/!e!x!a!m!p!l~1/@v/list", 400 },
	{ "/example.com/.hidden/@v/list", 400 },
	{ "/example.com/../@v/list", 400 },
	{ "/example.com/./@v/list", 400 },
	{ "/example.com/%2e%2e/@v/list", 400 },
	{ "/example.com/%2E%2E/x/@v/list", 400 },
	{ "/example.com/m/%2e%2e/%2e%2e/@v/list", 400 },
	{ "/example.com//m/@v/list", 400 },
	{ "/example.com/m//@v/list", 400 },
	{ "/example.com/m/./@latest", 400 },
	{ "//example.com/m/@v/list", 400 },
	{ "/example/m/@v/list", 400 },
	{ "/-example.com/m/@v/list", 400 },
	{ "/Example.com/m/@v/list", 400 },
	{ "/!example.com/m/@v/list", 400 },
	{ "/example.com/x+y/@v/list", 400 },
	{ "/example.com/x%20y/@v/list", 400 },
	{ "/example.com/x@y/@v/list", 400 },
	/* Strict '!' decoding. */
	{ "/example.com/M/@v/list", 400 },          /* raw uppercase */
	{ "/github.com/Azure/x/@v/list", 400 },
	{ "/example.com/!/@v/list", 400 },
	{ "/example.com/m!/@v/list", 400 },         /* trailing '!' */
	{ "/example.com/m%21/@v/list", 400 },
	{ "/example.com/!1/@v/list", 400 },
	{ "/example.com/!!m/@v/list", 400 },
	{ "/example.com/!M/@v/list", 400 },
	{ "/example.com/m/@v/v1.0.0-RC1.mod", 400 },
	{ "/example.com/m/@v/v1.0.0-!1.info", 400 },
	{ "/example.com/m/@v/v1!.info", 400 },
	{ "/example.com/m/@v/Master.info", 400 },
	/* Decoding. */
	{ "/example.com/m%00/@v/list", 400 },
	{ "/example.com/m/@v/v1%00.info", 400 },
	{ "/example.com/m%5C/@v/list", 400 },
	{ "/example.com/m\\x/@v/list", 400 },
	{ "/example.com/m/@v/a%5Cb.info", 400 },
	{ "/example.com/%C3%A9/@v/list", 400 },
	{ "/example.com/\xc3\xa9/@v/list", 400 },
	{ "/example.com/m/@v/v1.0.0-%C3%A9.info", 400 },
	{ "/example.com/m/@v/%ff.info", 400 },
	{ "/example.com/%zz/@v/list", 400 },
	{ "/example.com/%4/@v/list", 400 },
	{ "/example.com/m/@v/list%", 400 },
	{ "/example.com/m/@v/list%2", 400 },
	{ "/example.com/m/@v/list%g0", 400 },
	{ "/example.com/m/@v/%", 400 },
	/* Version element rules. */
	{ "/example.com/m/@v/...info", 400 },
	{ "/example.com/m/@v/..info", 400 },
	{ "/example.com/m/@v/v1.0.0..info", 400 },
	{ "/example.com/m/@v/con.info", 400 },
	{ "/example.com/m/@v/a:b.info", 400 },
	{ "/example.com/m/@v/a%3Fb.info", 400 },
	{ "/example.com/m/@v/a%2Ab.info", 400 },
	{ "/example.com/m/@v/a%22b.info", 400 },
	{ "/example.com/m/@v/a%7Cb.info", 400 },
	{ "/example.com/m/@v/a%09b.info", 400 },
	{ "/example.com/m/@v/.hidden.info", 400 },
	{ "/example.com/m/@v/.goproxyd-tmp-x.info", 400 },
	/* .mod and .zip need a canonical version that fits the path. */
	{ "/example.com/m/@v/v1.2.mod", 400 },
	{ "/example.com/m/@v/v1.2.zip", 400 },
	{ "/example.com/m/@v/v1.mod", 400 },
	{ "/example.com/m/@v/master.zip", 400 },
	{ "/example.com/m/@v/latest.mod", 400 },
	{ "/example.com/m/@v/v1.0.0+meta.zip", 400 },
	{ "/example.com/m/@v/v01.0.0.mod", 400 },
	{ "/example.com/m/@v/1.0.0.zip", 400 },
	{ "/example.com/m/@v/v2.0.0.mod", 400 },
	{ "/example.com/m/@v/v2.0.0.zip", 400 },
	{ "/example.com/m/v2/@v/v1.0.0.mod", 400 },
	{ "/example.com/m/v2/@v/v3.0.0.zip", 400 },
	{ "/gopkg.in/yaml.v2/@v/v1.0.0.zip", 400 },
	{ "/gopkg.in/yaml.v1/@v/v0.8.0.mod", 400 },
};

static void test_bad(void **state)
{
	struct request req;
	const char *reason;
	size_t i;
	int st;

	(void)state;
	for (i = 0; i < N(bads); i++) {
		reason = NULL;
		st = route_parse(bads[i].raw, &req, &reason);
		EXPECT(st == bads[i].status, "route_parse(\"%s\") = %d (%s), want %d",
		    bads[i].raw, st, reason ? reason : "no reason", bads[i].status);
		EXPECT(reason != NULL && reason[0] != '\0' && strchr(reason, '\n') == NULL,
		    "route_parse(\"%s\"): reason must be one non-empty line", bads[i].raw);
	}
}

static void test_reasons(void **state)
{
	struct request req;
	const char *reason;

	(void)state;
	assert_int_equal(route_parse("/nothing-here", &req, &reason), 404);
	assert_non_null(strstr(reason, "no such endpoint"));
	/* "/" is the front page (ops.c answers others with the same 404). */
	assert_int_equal(route_parse("/", &req, &reason), 0);
	assert_int_equal(req.op, OP_FRONT);
	assert_int_equal(route_parse("/catalog", &req, &reason), 0);
	assert_int_equal(req.op, OP_CATALOG);
	assert_int_equal(route_parse("/example.com/m/@v/v1.2.zip", &req, &reason), 400);
	assert_non_null(strstr(reason, "canonical"));
	assert_int_equal(route_parse("/example.com/m/@v/v2.0.0.mod", &req, &reason), 400);
	assert_non_null(strstr(reason, "module path"));
	assert_int_equal(route_parse("/example.com/%zz/@v/list", &req, &reason), 400);
	assert_non_null(strstr(reason, "percent"));
}

/* Append n copies of c to buf at *len. */
static void fill(char *buf, size_t *len, char c, size_t n)
{
	memset(buf + *len, c, n);
	*len += n;
	buf[*len] = '\0';
}

static void append(char *buf, size_t *len, const char *s)
{
	memcpy(buf + *len, s, strlen(s) + 1);
	*len += strlen(s);
}

/* "/example.com/aaa.../aaa...<suffix>": an escaped module path of exactly
 * total bytes, no element longer than MP_ELEM_MAX. */
static void long_path(char *buf, size_t total, const char *suffix)
{
	size_t len = 0, left = total - strlen("example.com"), n;

	append(buf, &len, "/example.com");
	while (left > 0) {
		/* Each element costs n + 1 (its '/'); never leave just 1. */
		n = left - 1;
		if (n > MP_ELEM_MAX)
			n = n - MP_ELEM_MAX < 2 ? MP_ELEM_MAX - 2 : MP_ELEM_MAX;
		append(buf, &len, "/");
		fill(buf, &len, 'a', n);
		left -= n + 1;
	}
	append(buf, &len, suffix);
}

static void test_length_caps(void **state)
{
	char buf[4096];
	struct request req;
	const char *reason;
	size_t len;

	(void)state;
	/* Whole escaped path: MP_PATH_MAX - 1 fits, MP_PATH_MAX does not. */
	long_path(buf, MP_PATH_MAX - 1, "/@v/list");
	assert_int_equal(strlen(buf), 1 + (MP_PATH_MAX - 1) + strlen("/@v/list"));
	assert_int_equal(route_parse(buf, &req, &reason), 0);
	assert_int_equal(strlen(req.esc_path), MP_PATH_MAX - 1);
	long_path(buf, MP_PATH_MAX, "/@v/list");
	assert_int_equal(route_parse(buf, &req, &reason), 400);

	/* One element: MP_ELEM_MAX fits, one more does not. */
	len = 0;
	append(buf, &len, "/example.com/");
	fill(buf, &len, 'a', MP_ELEM_MAX);
	append(buf, &len, "/@latest");
	assert_int_equal(route_parse(buf, &req, &reason), 0);
	len = 0;
	append(buf, &len, "/example.com/");
	fill(buf, &len, 'a', MP_ELEM_MAX + 1);
	append(buf, &len, "/@latest");
	assert_int_equal(route_parse(buf, &req, &reason), 400);

	/* Escaping counts: 100 uppercase letters are 200 escaped bytes. */
	len = 0;
	append(buf, &len, "/example.com/");
	while (len < strlen("/example.com/") + MP_ELEM_MAX)
		append(buf, &len, "!a");
	append(buf, &len, "/@latest");
	assert_int_equal(route_parse(buf, &req, &reason), 0);
	assert_int_equal(strlen(req.path), strlen("example.com/") + MP_ELEM_MAX / 2);
	len = strlen(buf) - strlen("/@latest");
	buf[len] = '\0';
	append(buf, &len, "!a/@latest");
	assert_int_equal(route_parse(buf, &req, &reason), 400);

	/* Escaped version: MP_ELEM_MAX fits (with its ".info"), one more not. */
	len = 0;
	append(buf, &len, "/example.com/m/@v/v1.0.0-");
	fill(buf, &len, 'a', MP_ELEM_MAX - strlen("v1.0.0-"));
	append(buf, &len, ".zip");
	assert_int_equal(route_parse(buf, &req, &reason), 0);
	assert_int_equal(strlen(req.esc_version), MP_ELEM_MAX);
	assert_true(req.immutable);
	len = 0;
	append(buf, &len, "/example.com/m/@v/v1.0.0-");
	fill(buf, &len, 'a', MP_ELEM_MAX - strlen("v1.0.0-") + 1);
	append(buf, &len, ".zip");
	assert_int_equal(route_parse(buf, &req, &reason), 400);

	/* Percent-encoding does not count against the caps, only the
	 * decoded bytes do. */
	len = 0;
	append(buf, &len, "/example.com/");
	while (len < strlen("/example.com/") + 3 * MP_ELEM_MAX)
		append(buf, &len, "%61");
	append(buf, &len, "/@latest");
	assert_int_equal(route_parse(buf, &req, &reason), 0);

	/* Very long raw paths are refused, whatever they hold. */
	len = 0;
	append(buf, &len, "/");
	fill(buf, &len, 'a', sizeof buf - 2);
	assert_int_equal(route_parse(buf, &req, &reason), 400);
	len = 0;
	append(buf, &len, "/example.com/m/@v/");
	fill(buf, &len, 'a', 3000);
	append(buf, &len, ".info");
	assert_int_equal(route_parse(buf, &req, &reason), 400);
}

static void test_first_marker_wins(void **state)
{
	struct request req;
	const char *reason;

	(void)state;
	/* A version query may itself contain "@latest" ('@' is a legal
	 * file-name character); the first marker decides. */
	assert_int_equal(route_parse("/example.com/m/@v/@latest.info", &req, &reason), 0);
	assert_int_equal(req.kind, REQ_INFO);
	assert_string_equal(req.version, "@latest");
	assert_false(req.immutable);
}

/* "/cached-only/" in front of any endpoint, percent-encoded or not, marks
 * the request and is gone from what is routed. */
static void test_cached_only(void **state)
{
	static const char *const paths[] = {
		"/cached-only/example.com/m/@v/v1.0.0.zip", "/cached%2Donly/example.com/m/@v/v1.0.0.zip",
	};
	struct request req;
	const char *reason;

	(void)state;
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		assert_int_equal(route_parse(paths[i], &req, &reason), 0);
		assert_true(req.cached_only);
		assert_int_equal(req.kind, REQ_ZIP);
		assert_string_equal(req.path, "example.com/m");
	}
	assert_int_equal(route_parse("/cached-only/sumdb/sum.golang.org/latest", &req, &reason), 0);
	assert_true(req.cached_only);
	assert_int_equal(req.kind, REQ_SUMDB);
	assert_int_equal(route_parse("/example.com/m/@v/list", &req, &reason), 0);
	assert_false(req.cached_only);
	/* only once, and never as a module path */
	assert_int_not_equal(route_parse("/cached-only/cached-only/m/@v/list", &req, &reason), 0);
	assert_int_not_equal(route_parse("/cached-only", &req, &reason), 0);
}

/* Checksum-database paths, in both the /sumdb/<name>/ and the root form. */
static void test_sumdb(void **state)
{
	static const struct {
		const char *url;
		int status;
		enum sumdb_kind kind;
		const char *name, *rest;
		unsigned width;
	} cases[] = {
		{ "/sumdb/sum.golang.org/supported", 0, SUMDB_SUPPORTED, "sum.golang.org", "supported", 0 },
		{ "/sumdb/sum.golang.org/latest", 0, SUMDB_LATEST, "sum.golang.org", "latest", 0 },
		{ "/sumdb/sum.golang.org/lookup/github.com/%21burnt%21sushi/toml@v1.2.0", 0, SUMDB_LOOKUP,
		  "sum.golang.org", "lookup/github.com/!burnt!sushi/toml@v1.2.0", 0 },
		{ "/sumdb/sum.golang.org/lookup/golang.org/x/text@v0.3.0+incompatible", 0, SUMDB_LOOKUP,
		  "sum.golang.org", "lookup/golang.org/x/text@v0.3.0+incompatible", 0 },
		{ "/sumdb/sum.golang.org/tile/8/0/x001/x234/067.p/1", 0, SUMDB_TILE, "sum.golang.org",
		  "tile/8/0/x001/x234/067.p/1", 1 },
		{ "/sumdb/sum.golang.org/tile/8/1/000", 0, SUMDB_TILE, "sum.golang.org", "tile/8/1/000", 256 },
		{ "/sumdb/sum.golang.org/tile/8/data/x002/123", 0, SUMDB_DATA_TILE, "sum.golang.org",
		  "tile/8/data/x002/123", 256 },
		{ "/sumdb/example.com/db/lookup/a.b/c@v1.0.0", 0, SUMDB_LOOKUP, "example.com/db",
		  "lookup/a.b/c@v1.0.0", 0 },
		{ "/lookup/example.com/m@v1.0.0", 0, SUMDB_LOOKUP, "", "lookup/example.com/m@v1.0.0", 0 },
		{ "/tile/8/0/000.p/5", 0, SUMDB_TILE, "", "tile/8/0/000.p/5", 5 },
		{ "/tile/8/0/x999/x999/x999/x999/x999/999", 0, SUMDB_TILE, "",
		  "tile/8/0/x999/x999/x999/x999/x999/999", 256 },
		{ "/latest", 0, SUMDB_LATEST, "", "latest", 0 },
		/* malformed */
		{ "/sumdb/sum.golang.org/tile/8/0/x000/001", 400, 0, NULL, NULL, 0 },
		{ "/sumdb/sum.golang.org/tile/8/0/1", 400, 0, NULL, NULL, 0 },
		{ "/sumdb/sum.golang.org/tile/08/0/001", 400, 0, NULL, NULL, 0 },
		{ "/sumdb/sum.golang.org/tile/8/64/001", 400, 0, NULL, NULL, 0 },
		{ "/sumdb/sum.golang.org/tile/8/0/001.p/256", 400, 0, NULL, NULL, 0 },
		{ "/sumdb/sum.golang.org/tile/8/0/001.p/0", 400, 0, NULL, NULL, 0 },
		{ "/sumdb/sum.golang.org/tile/8/0/001/", 400, 0, NULL, NULL, 0 },
		{ "/sumdb/sum.golang.org/tile/8/0/x001/x000/x000/x000/x000/x000/000", 400, 0, NULL, NULL, 0 },
		{ "/sumdb/sum.golang.org/lookup/example.com/m@v1.0", 400, 0, NULL, NULL, 0 },
		{ "/sumdb/sum.golang.org/lookup/example.com/m@master", 400, 0, NULL, NULL, 0 },
		{ "/sumdb/sum.golang.org/lookup/Example.com/m@v1.0.0", 400, 0, NULL, NULL, 0 },
		{ "/sumdb/sum.golang.org/lookup/../../etc@v1.0.0", 400, 0, NULL, NULL, 0 },
		{ "/lookup/example.com/m", 400, 0, NULL, NULL, 0 },
		/* no such database name or endpoint */
		{ "/sumdb/../../etc/latest", 404, 0, NULL, NULL, 0 },
		{ "/sumdb/Sum.golang.org/latest", 404, 0, NULL, NULL, 0 },
		{ "/sumdb/sum.golang.org/other", 404, 0, NULL, NULL, 0 },
		{ "/sumdb/sum.golang.org/latest/x", 404, 0, NULL, NULL, 0 },
	};
	struct request req;
	const char *reason;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int st = route_parse(cases[i].url, &req, &reason);

		if (st != cases[i].status)
			fail_msg("%s: status %d, want %d", cases[i].url, st, cases[i].status);
		if (st != 0)
			continue;
		assert_int_equal(req.kind, REQ_SUMDB);
		assert_int_equal(req.sumdb_kind, cases[i].kind);
		assert_string_equal(req.sumdb_name, cases[i].name);
		assert_string_equal(req.sumdb_rest, cases[i].rest);
		if (cases[i].width)
			assert_int_equal(req.tile_width, cases[i].width);
		assert_int_equal(req.immutable, cases[i].kind != SUMDB_LATEST && cases[i].kind != SUMDB_SUPPORTED);
	}
}

/* The operational endpoints come out as an op, never as a file kind. */
static void test_ops(void **state)
{
	static const struct {
		const char *raw;
		enum req_op op;
	} oks[] = {
		{ "/healthz", OP_HEALTHZ },
		{ "/readyz", OP_READYZ },
		{ "/metrics", OP_METRICS },
		{ "/%6detrics", OP_METRICS },
		{ "/cached-only/healthz", OP_HEALTHZ },
	};
	static const char *const not_found[] = {
		"/healthz/", "/metrics/x", "/Healthz", "/readyz.txt", "/sumdb/x/healthz",
	};
	struct request req;
	const char *reason;

	(void)state;
	for (size_t i = 0; i < N(oks); i++) {
		EXPECT(route_parse(oks[i].raw, &req, &reason) == 0, "%s refused", oks[i].raw);
		EXPECT(req.op == oks[i].op, "%s: op %d, want %d", oks[i].raw, req.op, oks[i].op);
	}
	for (size_t i = 0; i < N(not_found); i++)
		EXPECT(route_parse(not_found[i], &req, &reason) == 404, "%s not 404", not_found[i]);

	/* Every file request has no op. */
	assert_int_equal(route_parse("/example.com/m/@v/list", &req, &reason), 0);
	assert_int_equal(req.op, OP_NONE);
	assert_int_equal(route_parse("/sumdb/sum.golang.org/latest", &req, &reason), 0);
	assert_int_equal(req.op, OP_NONE);
	assert_int_equal(route_parse("/latest", &req, &reason), 0);
	assert_int_equal(req.op, OP_NONE);
}

static void test_route_ext(void **state)
{
	(void)state;
	assert_string_equal(route_ext(REQ_INFO), "info");
	assert_string_equal(route_ext(REQ_MOD), "mod");
	assert_string_equal(route_ext(REQ_ZIP), "zip");
	assert_null(route_ext(REQ_LIST));
	assert_null(route_ext(REQ_LATEST));
}

/* The path below an upstream's base URL: re-escaped for a URL, so a
 * query's '#', '%' or space cannot end the path or change it. */
static void test_upstream_path(void **state)
{
	static const struct { const char *raw, *want; } cases[] = {
		{ "/github.com/!azure/go/@v/v1.0.0.zip", "github.com/!azure/go/@v/v1.0.0.zip" },
		{ "/example.com/m/@v/list", "example.com/m/@v/list" },
		{ "/example.com/m/@latest", "example.com/m/@latest" },
		{ "/example.com/m/@v/master.info", "example.com/m/@v/master.info" },
		{ "/example.com/m/@v/a%23b%20c%25d.info", "example.com/m/@v/a%23b%20c%25d.info" },
		{ "/sumdb/sum.golang.org/lookup/example.com/m@v1.0.0",
		  "lookup/example.com/m@v1.0.0" },
	};
	char out[ROUTE_UPSTREAM_PATH_MAX], small[12];
	struct request req;
	const char *reason;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int st = route_parse(cases[i].raw, &req, &reason);

		EXPECT(st == 0, "route_parse(\"%s\") = %d (%s)", cases[i].raw, st, reason ? reason : "");
		route_upstream_path(&req, out, sizeof out);
		EXPECT(strcmp(out, cases[i].want) == 0, "%s: got \"%s\", want \"%s\"",
		       cases[i].raw, out, cases[i].want);
	}
	/* a short buffer is cut, never overrun */
	assert_int_equal(route_parse("/example.com/m/@v/v1.0.0.zip", &req, &reason), 0);
	route_upstream_path(&req, small, sizeof small);
	assert_true(strlen(small) < sizeof small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upstream_path),
		cmocka_unit_test(test_ok),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_length_caps),
		cmocka_unit_test(test_first_marker_wins),
		cmocka_unit_test(test_route_ext),
		cmocka_unit_test(test_ops),
		cmocka_unit_test(test_sumdb),
		cmocka_unit_test(test_cached_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
