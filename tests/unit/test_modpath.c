/*
 * Unit tests for src/modpath.c.  Most tables are golang.org/x/mod's own
 * (module/module_test.go, semver/semver_test.go), plus the vectors of
 * docs/protocol.md section 2.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "modpath.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Fail with the vector that broke, not just the line. */
#define EXPECT(cond, ...)                                               \
	do {                                                            \
		if (!(cond)) {                                          \
			print_error("%s:%d: ", __FILE__, __LINE__);     \
			print_error(__VA_ARGS__);                       \
			print_error("\n");                              \
			fail();                                         \
		}                                                       \
	} while (0)

/* ------------------------------------------------------------------ */

struct path_case {
	const char *path;
	bool ok;
};

/* module_test.go checkPathTests, "ok" (CheckPath) column, current x/mod. */
static const struct path_case xmod_check_path[] = {
	{ "x.y/z", true },
	{ "x.y", true },
	{ "", false },
	{ "x.y/\xFFz", false },
	{ "/x.y/z", false },
	{ "x./z", false },
	{ ".x/z", false },
	{ "-x/z", false },
	{ "x..y/z", true },
	{ "x.y/z/../../w", false },
	{ "x.y//z", false },
	{ "x.y/z//w", false },
	{ "x.y/z/", false },
	{ "x.y/z/v0", false },
	{ "x.y/z/v1", false },
	{ "x.y/z/v2", true },
	{ "x.y/z/v2.0", false },
	{ "X.y/z", false },
	{ "!x.y/z", false },
	{ "_x.y/z", false },
	{ "x.y!/z", false },
	{ "x.y\"/z", false },
	{ "x.y#/z", false },
	{ "x.y$/z", false },
	{ "x.y%/z", false },
	{ "x.y&/z", false },
	{ "x.y'/z", false },
	{ "x.y(/z", false },
	{ "x.y)/z", false },
	{ "x.y*/z", false },
	{ "x.y+/z", false },
	{ "x.y,/z", false },
	{ "x.y-/z", true },
	{ "x.y./zt", false },
	{ "x.y:/z", false },
	{ "x.y;/z", false },
	{ "x.y</z", false },
	{ "x.y=/z", false },
	{ "x.y>/z", false },
	{ "x.y?/z", false },
	{ "x.y@/z", false },
	{ "x.y[/z", false },
	{ "x.y\\/z", false },
	{ "x.y]/z", false },
	{ "x.y^/z", false },
	{ "x.y_/z", false },
	{ "x.y`/z", false },
	{ "x.y{/z", false },
	{ "x.y}/z", false },
	{ "x.y~/z", false },
	{ "x.y/z!", false },
	{ "x.y/z\"", false },
	{ "x.y/z#", false },
	{ "x.y/z$", false },
	{ "x.y/z%", false },
	{ "x.y/z&", false },
	{ "x.y/z'", false },
	{ "x.y/z(", false },
	{ "x.y/z)", false },
	{ "x.y/z*", false },
	{ "x.y/z+", false },
	{ "x.y/z,", false },
	{ "x.y/z-", true },
	{ "x.y/z.t", true },
	{ "x.y/z/t", true },
	{ "x.y/z:", false },
	{ "x.y/z;", false },
	{ "x.y/z<", false },
	{ "x.y/z=", false },
	{ "x.y/z>", false },
	{ "x.y/z?", false },
	{ "x.y/z@", false },
	{ "x.y/z[", false },
	{ "x.y/z\\", false },
	{ "x.y/z]", false },
	{ "x.y/z^", false },
	{ "x.y/z_", true },
	{ "x.y/z`", false },
	{ "x.y/z{", false },
	{ "x.y/z}", false },
	{ "x.y/z~", true },
	{ "x.y/x.foo", true },
	{ "x.y/aux.foo", false },
	{ "x.y/prn", false },
	{ "x.y/prn2", true },
	{ "x.y/com", true },
	{ "x.y/com1", false },
	{ "x.y/com1.txt", false },
	{ "x.y/calm1", true },
	{ "x.y/z~0", false },
	{ "x.y/z~09", false },
	{ "x.y/z09", true },
	{ "x.y/z09~", true },
	{ "x.y/z09~09z", true },
	{ "x.y/z09~09z~09", false },
	{ "github.com/!123/logrus", false },
	{ "github.com/user/unicode/\xd0\xb8\xd1\x81\xd0\xbf\xd1\x8b\xd1\x82\xd0\xb0\xd0\xbd\xd0\xb8\xd0\xb5", false },
	{ "../x", false },
	{ "./y", false },
	{ "x:y", false },
	{ "\\temp\\foo", false },
	{ ".gitignore", false },
	{ ".github/ISSUE_TEMPLATE", false },
	{ "x\xe2\x98\xbay", false },
};

/* docs/protocol.md section 2.2 and a few real module paths. */
static const struct path_case more_check_path[] = {
	{ "github.com/Azure/azure-sdk-for-go", true },
	{ "github.com/BurntSushi/toml", true },
	{ "golang.org/x/mod", true },
	{ "example.com", true },
	{ "example.com/m/v2", true },
	{ "example.com/m/v10", true },
	{ "example.com/v2", true },
	{ "example.com/m/v", true },
	{ "example.com/m/v2x", true },
	{ "example.com/m/xv2", true },
	{ "example.com/m/v0", false },
	{ "example.com/m/v1", false },
	{ "example.com/m/v01", false },
	{ "example.com/m/v2.0", false },
	{ "example.com/m/v2/sub", true },
	{ "gopkg.in/yaml.v2", true },
	{ "gopkg.in/yaml.v0", true },
	{ "gopkg.in/yaml.v1", true },
	{ "gopkg.in/yaml.v10", true },
	{ "gopkg.in/yaml.v01", false },
	{ "gopkg.in/yaml", false },
	{ "gopkg.in/yaml.v", false },
	{ "gopkg.in/yaml.v2-unstable", true },
	{ "gopkg.in/user/pkg.v3", true },
	{ "gopkg.in/yaml.v0-unstable", false },
	{ "example.com/CON", false },
	{ "example.com/con", false },
	{ "example.com/Con.d", false },
	{ "example.com/lpt9", false },
	{ "example.com/lpt10", true },
	{ "example.com/consul", true },
	{ "example.com/EXAMPL~1", false },
	{ "example.com/exampl~1", false },
	{ "example.com/exampl~1.x", false },
	{ "example.com/exa~mple", true },
	{ "example.com/~", true },
	{ "example.com/~1", false },
	{ "example.com/.hidden", false },
	{ "example.com/a/..", false },
	{ "example.com/a/.", false },
	{ "example.com/...", false },
	{ "example.com/a..b", true },
	{ "example.com/a./b", false },
	{ "example.com//x", false },
	{ "example.com/x/", false },
	{ "/example.com/x", false },
	{ "Example.com/x", false },
	{ "example/x", false },
	{ "-example.com/x", false },
	{ "ex_ample.com/x", false },
	{ "example.com/x+y", false },
	{ "example.com/x@v1.0.0", false },
	{ "example.com/x y", false },
	{ "example.com/x!y", false },
	{ "example.com/\xc3\xa9", false },
	{ "example.com/x\x7f", false },
	{ "example.com/x\ty", false },
};

static void check_path_table(const struct path_case *t, size_t n)
{
	size_t i;
	const char *err;

	for (i = 0; i < n; i++) {
		err = mp_check_path(t[i].path);
		EXPECT((err == NULL) == t[i].ok, "mp_check_path(\"%s\") = %s, want %s",
		    t[i].path, err ? err : "ok", t[i].ok ? "ok" : "error");
		if (err != NULL) {
			EXPECT(strchr(err, '\n') == NULL && err[0] != '\0',
			    "reason for \"%s\" is not one non-empty line", t[i].path);
		}
	}
}

static void test_check_path_xmod(void **state)
{
	(void)state;
	check_path_table(xmod_check_path, N(xmod_check_path));
}

static void test_check_path_more(void **state)
{
	(void)state;
	check_path_table(more_check_path, N(more_check_path));
}

/* ------------------------------------------------------------------ */

struct version_case {
	const char *v;
	bool ok;
};

static const struct version_case version_elems[] = {
	{ "v1.0.0", true },
	{ "v1.0.0-RC1", true },
	{ "v1.2", true },
	{ "v2.0.0+incompatible", true },
	{ "master", true },
	{ "1234abcd", true },
	{ "feature/x", false },
	{ "feature#1", true },
	{ "a b", true },
	{ "%21x", true },
	{ "a=b@c[d]^e{f}~g(h)&i$j,k", true },
	{ "-x", true },
	{ "x~1", true },            /* short-name rule is for paths only */
	{ ".gitignore", true },     /* x/mod allows a leading dot in file names */
	{ "", false },
	{ ".", false },
	{ "..", false },
	{ "...", false },
	{ "v1.0.0.", false },
	{ "a\\b", false },
	{ "a:b", false },
	{ "a*b", false },
	{ "a?b", false },
	{ "a\"b", false },
	{ "a<b", false },
	{ "a>b", false },
	{ "a|b", false },
	{ "a`b", false },
	{ "a'b", false },
	{ "a;b", false },
	{ "a\tb", false },
	{ "a\nb", false },
	{ "a\x7f", false },
	{ "con", false },
	{ "CON.txt", false },
	{ "com1", false },
	{ "lpt9.x", false },
	{ "nul.v1", false },
	{ "v1!", false },           /* EscapeVersion refuses '!' */
	{ "\xc3\xa9", false },
};

static void test_check_version_elem(void **state)
{
	size_t i;
	const char *err;

	(void)state;
	for (i = 0; i < N(version_elems); i++) {
		err = mp_check_version_elem(version_elems[i].v);
		EXPECT((err == NULL) == version_elems[i].ok,
		    "mp_check_version_elem(\"%s\") = %s", version_elems[i].v, err ? err : "ok");
	}
}

/* ------------------------------------------------------------------ */

struct escape_case {
	const char *plain, *esc;
};

static const struct escape_case escapes[] = {
	{ "ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789",
	  "ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789" },
	{ "github.com/GoogleCloudPlatform/omega", "github.com/!google!cloud!platform/omega" },
	{ "github.com/Azure/x", "github.com/!azure/x" },
	{ "github.com/Azure/azure-sdk-for-go", "github.com/!azure/azure-sdk-for-go" },
	{ "github.com/BurntSushi/toml", "github.com/!burnt!sushi/toml" },
	{ "github.com/Sirupsen/logrus", "github.com/!sirupsen/logrus" },
	{ "example.com/ABC", "example.com/!a!b!c" },
};

static void test_escape_path(void **state)
{
	char out[MP_PATH_MAX], back[MP_PATH_MAX];
	const char *err;
	size_t i;

	(void)state;
	for (i = 0; i < N(escapes); i++) {
		err = mp_escape(escapes[i].plain, out, sizeof out);
		EXPECT(err == NULL && strcmp(out, escapes[i].esc) == 0,
		    "mp_escape(\"%s\") = \"%s\" (%s), want \"%s\"", escapes[i].plain,
		    err ? "" : out, err ? err : "ok", escapes[i].esc);
		err = mp_unescape_path(escapes[i].esc, back, sizeof back);
		EXPECT(err == NULL && strcmp(back, escapes[i].plain) == 0,
		    "mp_unescape_path(\"%s\") = %s", escapes[i].esc, err ? err : back);
	}
}

static void test_escape_version(void **state)
{
	char out[MP_VERSION_MAX], back[MP_VERSION_MAX];

	(void)state;
	assert_null(mp_escape("v1.0.0-RC1", out, sizeof out));
	assert_string_equal(out, "v1.0.0-!r!c1");
	assert_null(mp_unescape_version("v1.0.0-!r!c1", back, sizeof back));
	assert_string_equal(back, "v1.0.0-RC1");
	assert_null(mp_escape("v1.2.3", out, sizeof out));
	assert_string_equal(out, "v1.2.3");
}

static void test_escape_bounds(void **state)
{
	char out[8];

	(void)state;
	/* "A" needs 2 bytes + NUL. */
	assert_null(mp_escape("A", out, 3));
	assert_string_equal(out, "!a");
	assert_non_null(mp_escape("A", out, 2));
	assert_null(mp_escape("abcdefg", out, 8));
	assert_non_null(mp_escape("abcdefgh", out, 8));
	assert_non_null(mp_escape("abcdefG", out, 8));
	assert_null(mp_escape("", out, 1));
	assert_string_equal(out, "");
	assert_non_null(mp_escape("", out, 0));
	/* The encoding would be ambiguous with these. */
	assert_non_null(mp_escape("a!b", out, sizeof out));
	assert_non_null(mp_escape("\xc3\xa9", out, sizeof out));
}

/* module_test.go badUnescape, plus the protocol.md cases. */
static const char *const bad_unescape_path[] = {
	"github.com/GoogleCloudPlatform/omega",
	"github.com/!google!cloud!platform!/omega",
	"github.com/!0google!cloud!platform/omega",
	"github.com/!_google!cloud!platform/omega",
	"github.com/!!google!cloud!platform/omega",
	"",
	"github.com/Azure/x",           /* raw uppercase */
	"github.com/!Azure/x",          /* '!' + uppercase */
	"github.com/x!",                /* trailing '!' */
	"github.com/!",
	"github.com/!1",
	"github.com/!-x",
	"github.com/!/x",
	"example.com/a!Mb",             /* '!' + 'M' must not become '-' */
	"example.com/a!~b",
	"example.com/\xc3\xa9",         /* non-ASCII */
	"example.com/\x80",
	"example.com/CON",              /* uppercase: fails the decoding first */
	"example.com/!c!o!n",           /* decodes to CON */
	"example.com/!e!x!a!m!p!l~1",   /* decodes to EXAMPL~1 */
	"example.com/m/v1",
};

static void test_unescape_path_bad(void **state)
{
	char out[MP_PATH_MAX];
	const char *err;
	size_t i;

	(void)state;
	for (i = 0; i < N(bad_unescape_path); i++) {
		err = mp_unescape_path(bad_unescape_path[i], out, sizeof out);
		EXPECT(err != NULL, "mp_unescape_path(\"%s\") succeeded: \"%s\"",
		    bad_unescape_path[i], out);
	}
	/* Every path CheckPath rejects, UnescapePath rejects too. */
	for (i = 0; i < N(xmod_check_path); i++) {
		if (xmod_check_path[i].ok)
			continue;
		err = mp_unescape_path(xmod_check_path[i].path, out, sizeof out);
		EXPECT(err != NULL, "mp_unescape_path(\"%s\") succeeded", xmod_check_path[i].path);
	}
}

/* Every valid path survives escape + unescape unchanged, and re-escapes to
 * the same bytes (so the escaped form is unique). */
static void round_trip(const struct path_case *t, size_t n)
{
	char esc[MP_PATH_MAX], back[MP_PATH_MAX], again[MP_PATH_MAX];
	size_t i;

	for (i = 0; i < n; i++) {
		if (!t[i].ok)
			continue;
		EXPECT(mp_escape(t[i].path, esc, sizeof esc) == NULL, "escape %s", t[i].path);
		EXPECT(strpbrk(esc, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == NULL, "uppercase left in %s", esc);
		EXPECT(mp_unescape_path(esc, back, sizeof back) == NULL, "unescape %s", esc);
		EXPECT(strcmp(back, t[i].path) == 0, "round trip %s -> %s", t[i].path, back);
		EXPECT(mp_escape(back, again, sizeof again) == NULL && strcmp(again, esc) == 0,
		    "re-escape %s", back);
	}
}

static void test_round_trip(void **state)
{
	(void)state;
	round_trip(xmod_check_path, N(xmod_check_path));
	round_trip(more_check_path, N(more_check_path));
}

static void test_unescape_bounds(void **state)
{
	char out[16];

	(void)state;
	/* "a.b/!x" decodes to 6 bytes + NUL. */
	assert_null(mp_unescape_path("a.b/!x", out, 7));
	assert_string_equal(out, "a.b/X");
	assert_null(mp_unescape_path("a.b/!xy", out, 7));
	assert_non_null(mp_unescape_path("a.b/!xyz", out, 7));
	assert_non_null(mp_unescape_path("a.b", out, 0));
	assert_non_null(mp_unescape_version("v1.0.0", out, 6));
	assert_null(mp_unescape_version("v1.0.0", out, 7));
}

struct unescape_case {
	const char *esc, *want;   /* want NULL: must fail */
};

static const struct unescape_case unescape_versions[] = {
	{ "v1.0.0-!r!c1", "v1.0.0-RC1" },
	{ "v1.2.3", "v1.2.3" },
	{ "v2.0.0+incompatible", "v2.0.0+incompatible" },
	{ "!master", "Master" },
	{ "%21x", "%21x" },         /* a literal "%21", already decoded once */
	{ "feature#1", "feature#1" },
	{ "v1.0.0-RC1", NULL },     /* raw uppercase */
	{ "v1!", NULL },            /* trailing '!' */
	{ "v1!A", NULL },
	{ "v1.0.0-!1", NULL },
	{ "!!a", NULL },
	{ "a!{b", NULL },           /* '!' + '{' must not become '[' */
	{ "a!~b", NULL },
	{ "a!Mb", NULL },
	{ "\xc3\xa9", NULL },
	{ "", NULL },
	{ "..", NULL },
	{ "con", NULL },
	{ "!c!o!n", NULL },
	{ "a/b", NULL },
	{ "a\\b", NULL },
	{ "a:b", NULL },
	{ "v1.", NULL },
};

static void test_unescape_version(void **state)
{
	char out[MP_VERSION_MAX];
	const char *err;
	size_t i;

	(void)state;
	for (i = 0; i < N(unescape_versions); i++) {
		const struct unescape_case *c = &unescape_versions[i];

		err = mp_unescape_version(c->esc, out, sizeof out);
		if (c->want == NULL) {
			EXPECT(err != NULL, "mp_unescape_version(\"%s\") succeeded: \"%s\"", c->esc, out);
		} else {
			EXPECT(err == NULL && strcmp(out, c->want) == 0,
			    "mp_unescape_version(\"%s\") = %s, want \"%s\"", c->esc,
			    err ? err : out, c->want);
		}
	}
}

/* ------------------------------------------------------------------ */

/*
 * semver_test.go "tests": sorted by precedence; out is semver.Canonical
 * ("" = invalid).  Equal out means equal precedence.
 */
static const struct {
	const char *in, *out;
} semver_tests[] = {
	{ "bad", "" },
	{ "v1-alpha.beta.gamma", "" },
	{ "v1-pre", "" },
	{ "v1+meta", "" },
	{ "v1-pre+meta", "" },
	{ "v1.2-pre", "" },
	{ "v1.2+meta", "" },
	{ "v1.2-pre+meta", "" },
	{ "v1.0.0-alpha", "v1.0.0-alpha" },
	{ "v1.0.0-alpha.1", "v1.0.0-alpha.1" },
	{ "v1.0.0-alpha.beta", "v1.0.0-alpha.beta" },
	{ "v1.0.0-beta", "v1.0.0-beta" },
	{ "v1.0.0-beta.2", "v1.0.0-beta.2" },
	{ "v1.0.0-beta.11", "v1.0.0-beta.11" },
	{ "v1.0.0-rc.1", "v1.0.0-rc.1" },
	{ "v1", "v1.0.0" },
	{ "v1.0", "v1.0.0" },
	{ "v1.0.0", "v1.0.0" },
	{ "v1.2", "v1.2.0" },
	{ "v1.2.0", "v1.2.0" },
	{ "v1.2.3-456", "v1.2.3-456" },
	{ "v1.2.3-456.789", "v1.2.3-456.789" },
	{ "v1.2.3-456-789", "v1.2.3-456-789" },
	{ "v1.2.3-456a", "v1.2.3-456a" },
	{ "v1.2.3-pre", "v1.2.3-pre" },
	{ "v1.2.3-pre+meta", "v1.2.3-pre" },
	{ "v1.2.3-pre.1", "v1.2.3-pre.1" },
	{ "v1.2.3-zzz", "v1.2.3-zzz" },
	{ "v1.2.3", "v1.2.3" },
	{ "v1.2.3+meta", "v1.2.3" },
	{ "v1.2.3+meta-pre", "v1.2.3" },
	{ "v1.2.3+meta-pre.sha.256a", "v1.2.3" },
};

static void test_semver_valid_xmod(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(semver_tests); i++) {
		bool want = semver_tests[i].out[0] != '\0';

		EXPECT(mp_semver_valid(semver_tests[i].in) == want,
		    "mp_semver_valid(\"%s\") != %d", semver_tests[i].in, want);
		/* CanonicalVersion(v) == v; none of these has +incompatible. */
		EXPECT(mp_is_canonical(semver_tests[i].in) ==
		    (want && strcmp(semver_tests[i].in, semver_tests[i].out) == 0),
		    "mp_is_canonical(\"%s\")", semver_tests[i].in);
	}
}

static const struct version_case more_semver[] = {
	{ "v0.0.0", true },
	{ "v0", true },
	{ "v10.20.30", true },
	{ "v1.0.0-0", true },
	{ "v1.0.0-0a", true },
	{ "v1.0.0-x-y-z.-", true },
	{ "v1.0.0+001", true },          /* build identifiers may have leading zeros */
	{ "v1.0.0-0.3.7", true },
	{ "v99999999999999999999.0.0", true },
	{ "", false },
	{ "v", false },
	{ "1.0.0", false },
	{ "V1.0.0", false },
	{ "v01.0.0", false },
	{ "v1.01.0", false },
	{ "v1.0.01", false },
	{ "v1.0.0-01", false },
	{ "v1.0.0-", false },
	{ "v1.0.0+", false },
	{ "v1.0.0-a..b", false },
	{ "v1.0.0-a.", false },
	{ "v1.0.0+a..b", false },
	{ "v1.0.0-a_b", false },
	{ "v1.0.0+a+b", false },
	{ "v1.", false },
	{ "v1.0.", false },
	{ "v1.0.0.0", false },
	{ "v1.0.0 ", false },
	{ "v-1.0.0", false },
	{ "v1.0.0-\xc3\xa9", false },
};

static void test_semver_valid_more(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(more_semver); i++)
		EXPECT(mp_semver_valid(more_semver[i].v) == more_semver[i].ok,
		    "mp_semver_valid(\"%s\") != %d", more_semver[i].v, more_semver[i].ok);
}

static const struct version_case canonical[] = {
	{ "v1.0.0", true },
	{ "v0.0.0", true },
	{ "v1.0.0-pre", true },
	{ "v1.0.0-RC1", true },
	{ "v2.0.0+incompatible", true },
	{ "v1.0.0-pre+incompatible", true },
	{ "v0.0.0-20191109021931-daa7c04131f5", true },
	{ "v1.2", false },
	{ "v1", false },
	{ "v1.0.0+meta", false },
	{ "v1.0.0+incompatible.1", false },
	{ "v1.0.0+incompatiblE", false },
	{ "v1.0.0+Incompatible", false },
	{ "v1.0.0+", false },
	{ "1.0.0", false },
	{ "master", false },
	{ "", false },
};

static void test_is_canonical(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(canonical); i++)
		EXPECT(mp_is_canonical(canonical[i].v) == canonical[i].ok,
		    "mp_is_canonical(\"%s\") != %d", canonical[i].v, canonical[i].ok);
}

static int sign(int x)
{
	return (x > 0) - (x < 0);
}

/* semver_test.go TestCompare: every pair of the sorted table. */
static void test_compare_xmod(void **state)
{
	size_t i, j;
	int want, got;

	(void)state;
	for (i = 0; i < N(semver_tests); i++) {
		for (j = 0; j < N(semver_tests); j++) {
			if (strcmp(semver_tests[i].out, semver_tests[j].out) == 0)
				want = 0;
			else
				want = i < j ? -1 : 1;
			got = sign(mp_semver_compare(semver_tests[i].in, semver_tests[j].in));
			EXPECT(got == want, "mp_semver_compare(\"%s\", \"%s\") = %d, want %d",
			    semver_tests[i].in, semver_tests[j].in, got, want);
		}
	}
}

static const struct {
	const char *a, *b;
	int want;
} compares[] = {
	{ "v1", "v1", 0 },
	{ "v2", "v1", 1 },
	{ "v1", "v2", -1 },
	/* Numeric fields compare as numbers, not strings. */
	{ "v1.19", "v1.2", 1 },
	{ "v1.2", "v1.19", -1 },
	{ "v10.0.0", "v9.0.0", 1 },
	{ "v1.0.10", "v1.0.9", 1 },
	{ "v1.0.0-10", "v1.0.0-9", 1 },
	{ "v1.0.0-alpha.10", "v1.0.0-alpha.9", 1 },
	{ "v1.0.0-a10", "v1.0.0-a9", -1 },      /* not numeric: lexical */
	{ "v1.0.0-9", "v1.0.0-a", -1 },         /* numbers before words */
	{ "v1.0.0-alpha", "v1.0.0-alpha.0", -1 },
	{ "v1.0.0-alpha", "v1.0.0-alphabet", -1 },
	{ "v1.0.0-rc.1", "v1.0.0", -1 },
	{ "v1.0.0+metadata-dash", "v1.0.0+metadata-dash1", 0 },
	{ "v1.0.0+incompatible", "v1.0.0", 0 },
	{ "v2.0.0+incompatible", "v1.99.99", 1 },
	{ "v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.3", 1 },
	{ "v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.4-rc1", -1 },
	{ "v0.0.0-20191109021931-daa7c04131f5", "v0.0.0-20201109021931-aaa7c04131f5", -1 },
	{ "bad", "v0.0.0", -1 },
	{ "v0.0.0", "bad", 1 },
	{ "bad", "worse", 0 },
	{ "", "v1", -1 },
	{ "v1.2", "v1.2.0", 0 },
};

static void test_compare_more(void **state)
{
	size_t i;
	int got;

	(void)state;
	for (i = 0; i < N(compares); i++) {
		got = sign(mp_semver_compare(compares[i].a, compares[i].b));
		EXPECT(got == compares[i].want, "mp_semver_compare(\"%s\", \"%s\") = %d, want %d",
		    compares[i].a, compares[i].b, got, compares[i].want);
	}
}

/* ------------------------------------------------------------------ */

static const struct version_case pseudos[] = {
	/* form 1: vX.0.0-yyyymmddhhmmss-abcdef123456 */
	{ "v0.0.0-20191109021931-daa7c04131f5", true },
	{ "v2.0.0-20191109021931-daa7c04131f5", true },
	/* forms 2 and 3: vX.Y.(Z+1)-0.yyyymmddhhmmss-rev[+incompatible] */
	{ "v1.2.4-0.20191109021931-daa7c04131f5", true },
	{ "v2.2.4-0.20191109021931-daa7c04131f5+incompatible", true },
	/* forms 4 and 5: vX.Y.Z-pre.0.yyyymmddhhmmss-rev[+incompatible] */
	{ "v1.2.3-pre.0.20191109021931-daa7c04131f5", true },
	{ "v1.2.3-rc.1.0.20191109021931-daa7c04131f5", true },
	{ "v2.0.0-pre.0.20191109021931-daa7c04131f5+incompatible", true },
	/* the regexp only asks for [A-Za-z0-9]+ as revision */
	{ "v1.2.4-0.20191109021931-abc", true },
	{ "v1.2.4-0.20191109021931-ABC123", true },
	{ "v0.0.0-20191109021931-daa7c04131f5+meta.1", true },
	{ "v1.0.0", false },
	{ "v1.2.3-pre", false },
	{ "v1.2.3-0.1", false },
	{ "v0.0.0-2019110902193-daa7c04131f5", false },    /* 13 digits */
	{ "v0.0.0-201911090219311-daa7c04131f5", false },  /* 15 digits */
	{ "v1.2.3-20191109021931-daa7c04131f5", false },   /* needs 0.0- or -0. */
	{ "v1.2.4-0.2019110902193a-daa7c04131f5", false },
	{ "v1.2.4-1.20191109021931-daa7c04131f5", false },
	{ "v1.2.4-pre0.20191109021931-daa7c04131f5", false },
	{ "v1.2.4-0.20191109021931-", false },
	{ "v1.2.4-0.20191109021931-daa7.c04131f5", false },
	{ "v1.2.4-0.20191109021931-daa7c04131f5-x", false },
	{ "v0.0.0-20191109021931_daa7c04131f5", false },
	{ "v0.0-20191109021931-daa7c04131f5", false },    /* not semver */
	{ "v01.0.0-20191109021931-daa7c04131f5", false },
	{ "0.0.0-20191109021931-daa7c04131f5", false },
	{ "v0.0.0-20191109021931-daa7c04131f5+", false },
	{ "", false },
};

static void test_is_pseudo(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(pseudos); i++)
		EXPECT(mp_is_pseudo(pseudos[i].v) == pseudos[i].ok,
		    "mp_is_pseudo(\"%s\") != %d", pseudos[i].v, pseudos[i].ok);
}

/* ------------------------------------------------------------------ */

/* module_test.go checkTests (Check), TestMatchPathMajor mapped to paths. */
static const struct {
	const char *path, *version;
	bool ok;
} majors[] = {
	{ "rsc.io/quote", "0.1.0", false },
	{ "github.com/go-yaml/yaml", "v0.8.0", true },
	{ "github.com/go-yaml/yaml", "v1.0.0", true },
	{ "github.com/go-yaml/yaml", "v2.0.0", false },
	{ "github.com/go-yaml/yaml", "v2.1.5", false },
	{ "github.com/go-yaml/yaml", "v3.0.0", false },
	{ "github.com/go-yaml/yaml/v2", "v1.0.0", false },
	{ "github.com/go-yaml/yaml/v2", "v2.0.0", true },
	{ "github.com/go-yaml/yaml/v2", "v2.1.5", true },
	{ "github.com/go-yaml/yaml/v2", "v3.0.0", false },
	{ "gopkg.in/yaml.v0", "v0.8.0", true },
	{ "gopkg.in/yaml.v0", "v1.0.0", false },
	{ "gopkg.in/yaml.v0", "v2.0.0", false },
	{ "gopkg.in/yaml.v0", "v2.1.5", false },
	{ "gopkg.in/yaml.v0", "v3.0.0", false },
	{ "gopkg.in/yaml.v1", "v0.8.0", false },
	{ "gopkg.in/yaml.v1", "v1.0.0", true },
	{ "gopkg.in/yaml.v1", "v2.0.0", false },
	{ "gopkg.in/yaml.v1", "v2.1.5", false },
	{ "gopkg.in/yaml.v1", "v3.0.0", false },
	{ "gopkg.in/check.v1", "v0.0.0", false },
	{ "gopkg.in/check.v1", "v0.0.0-20160102150405-abcdef123456", true },
	{ "gopkg.in/yaml.v2", "v1.0.0", false },
	{ "gopkg.in/yaml.v2", "v2.0.0", true },
	{ "gopkg.in/yaml.v2", "v2.1.5", true },
	{ "gopkg.in/yaml.v2", "v3.0.0", false },
	{ "rsc.io/quote", "v17.0.0", false },
	{ "rsc.io/quote", "v17.0.0+incompatible", true },
	/* TestMatchPathMajor */
	{ "example.com/m", "v0.0.0", true },
	{ "example.com/m/v2", "v0.0.0", false },
	{ "gopkg.in/m.v0", "v0.0.0", true },
	{ "gopkg.in/m.v1", "v0.0.0-20190510104115-cbcb75029529", true },
	{ "example.com/m/v2", "v1.0.0", false },
	{ "gopkg.in/m.v1", "v1.0.0", true },
	{ "gopkg.in/m.v1-unstable", "v1.0.0", true },
	{ "example.com/m", "v2.0.0+incompatible", true },
	{ "example.com/m", "v2.0.0", false },
	{ "example.com/m/v2", "v2.0.0", true },
	{ "gopkg.in/m.v2", "v2.0.0", true },
	/* more */
	{ "example.com/m/v2", "v2.0.0+incompatible", true },
	{ "example.com/m/v3", "v2.0.0+incompatible", false },
	{ "example.com/m/v10", "v10.1.0", true },
	{ "example.com/m/v10", "v1.0.0", false },
	{ "example.com/m/v2", "v20.0.0", false },
	{ "example.com/m", "v1.2.4-0.20191109021931-daa7c04131f5", true },
	{ "example.com/m/v2", "v2.0.0-20191109021931-daa7c04131f5", true },
	{ "example.com/m", "v1.2", true },
	{ "example.com/m", "master", false },
	{ "example.com/m", "v1.0.0+meta", true },
	{ "gopkg.in/m.v2-unstable", "v2.1.0", true },
	{ "gopkg.in/m.v2-unstable", "v3.0.0", false },
};

static void test_check_path_major(void **state)
{
	size_t i;
	const char *err;

	(void)state;
	for (i = 0; i < N(majors); i++) {
		err = mp_check_path_major(majors[i].path, majors[i].version);
		EXPECT((err == NULL) == majors[i].ok, "mp_check_path_major(\"%s\", \"%s\") = %s",
		    majors[i].path, majors[i].version, err ? err : "ok");
	}
}

/* module_test.go checkFilePathTests plus zip-slip shapes, and the Unicode
 * rows: fileNameOK allows any rune unicode.IsLetter accepts (letters of
 * every category L), nothing else beyond ASCII, in strictly valid UTF-8.
 * go 1.19 itself unpacks "docs/\u6570\u636e.txt" and refuses "\u2713.txt". */
static const struct path_case file_paths[] = {
	{ "a.go", true },
	{ "dir/sub/a.go", true },
	{ "-leading-dash.go", true },
	{ ".gitignore", true },
	{ "sp ace/a b.go", true },
	{ "x!#$%&()+,-.=@[]^_{}~y", true },
	{ "", false },
	{ "/abs.go", false },
	{ "dir/", false },
	{ "a//b.go", false },
	{ "..", false },
	{ "../../../tmp/x.go", false },
	{ "a/../b.go", false },
	{ "a/./b.go", false },
	{ "trailing.", false },
	{ "a\\b.go", false },
	{ "a:b.go", false },
	{ "a*b.go", false },
	{ "a\nb.go", false },
	{ "con.go", false },
	{ "dir/NUL", false },
	{ "caf\xc3\xa9.go", true },                  /* e-acute, Ll */
	{ "docs/\xe6\x95\xb0\xe6\x8d\xae.txt", true },  /* CJK, Lo */
	{ "\xd0\xb8\xd1\x81/\xce\xa9.go", true },    /* Cyrillic dir, Greek Omega (Lu) */
	{ "\xc7\x85.go", true },                      /* U+01C5 titlecase, Lt */
	{ "\xca\xb0.go", true },                      /* U+02B0 modifier letter, Lm */
	{ "\xd7\x90.go", true },                      /* Hebrew alef, Lo */
	{ "\xf0\x9d\x90\x80.go", true },              /* U+1D400 bold A, 4 bytes */
	{ "\xe2\x9c\x93.txt", false },                /* U+2713 check mark, So */
	{ "e\xcc\x81.go", false },                    /* U+0301 combining acute, Mn */
	{ "\xd9\xa3.go", false },                      /* U+0663 Arabic-Indic three, Nd */
	{ "\xe2\x85\xab.go", false },                 /* U+216B roman twelve, Nl */
	{ "\xc2\xbd.go", false },                      /* U+00BD one half, No */
	{ "a\xc2\xa0" "b.go", false },                 /* U+00A0 no-break space, Zs */
	{ "\xef\xbf\xbd.go", false },                 /* U+FFFD itself */
	{ "\xc0\xaf.go", false },                      /* overlong '/' */
	{ "\x80.go", false },                          /* lone continuation byte */
	{ "\xe6\x95.go", false },                      /* truncated sequence */
	{ "\xed\xa0\x80.go", false },                 /* surrogate U+D800 */
	{ "\xf4\x90\x80\x80.go", false },             /* past U+10FFFF */
	{ "caf\xc3", false },                          /* truncated at the end */
};

static void test_check_file_path(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(file_paths); i++) {
		const char *err = mp_check_file_path(file_paths[i].path, strlen(file_paths[i].path));

		EXPECT((err == NULL) == file_paths[i].ok, "mp_check_file_path(\"%s\") = %s",
		    file_paths[i].path, err ? err : "ok");
	}
	/* A NUL inside the span is an invalid character, not an end. */
	EXPECT(mp_check_file_path("a\0b", 3) != NULL, "NUL accepted");
	/* The span ends inside a sequence: truncated, not read past. */
	EXPECT(mp_check_file_path("caf\xc3\xa9", 4) != NULL, "cut sequence accepted");
	EXPECT(strstr(mp_check_file_path("\x80", 1), "UTF-8") != NULL, "bad UTF-8 reason");
	/* Letters stay out of versions and module paths, as before. */
	EXPECT(mp_check_version_elem("v1.0.0-caf\xc3\xa9") != NULL, "letter in a version");
	EXPECT(mp_check_path("example.com/caf\xc3\xa9") != NULL, "letter in a module path");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_path_xmod),
		cmocka_unit_test(test_check_path_more),
		cmocka_unit_test(test_check_version_elem),
		cmocka_unit_test(test_escape_path),
		cmocka_unit_test(test_escape_version),
		cmocka_unit_test(test_escape_bounds),
		cmocka_unit_test(test_unescape_path_bad),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_unescape_bounds),
		cmocka_unit_test(test_unescape_version),
		cmocka_unit_test(test_semver_valid_xmod),
		cmocka_unit_test(test_semver_valid_more),
		cmocka_unit_test(test_is_canonical),
		cmocka_unit_test(test_compare_xmod),
		cmocka_unit_test(test_compare_more),
		cmocka_unit_test(test_is_pseudo),
		cmocka_unit_test(test_check_path_major),
		cmocka_unit_test(test_check_file_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
