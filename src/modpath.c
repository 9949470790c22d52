/*
 * modpath: see include/modpath.h.
 *
 * A port of golang.org/x/mod's module.CheckPath, checkElem, the '!' case
 * encoding, CheckPathMajor, module/pseudo.go's IsPseudoVersion and the
 * semver package.  Every decision mirrors the Go source; where the Go name
 * differs, the Go name is given in the comment above the function.
 * Strings are NUL-terminated (file paths are counted); nothing allocates.
 * Pure: any thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "modpath.h"
#include "text.h"
#include "unicode.h"

/* ASCII only: the C library's versions depend on the locale. */
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_lower(int c) { return c >= 'a' && c <= 'z'; }
static bool is_upper(int c) { return c >= 'A' && c <= 'Z'; }
static bool is_alnum(int c) { return is_digit(c) || is_lower(c) || is_upper(c); }
static int to_lower(int c) { return is_upper(c) ? c - 'A' + 'a' : c; }

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool has_suffix(const char *s, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);

	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* s[0..n) == word, exactly. */
static bool span_eq(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && (n == 0 || memcmp(s, word, n) == 0);
}

/* ---------------------------------------------------------------------
 * Path elements
 */

/* Why an element (or a version) was rejected; each kind has its wording. */
enum elem_err {
	E_OK,
	E_EMPTY,
	E_DOTS,
	E_LEADING_DOT,
	E_TRAILING_DOT,
	E_NON_ASCII,
	E_BAD_UTF8,
	E_CHAR,
	E_BANG,
	E_WINDOWS,
	E_SHORT_NAME,
};

static const char *const path_reason[] = {
	[E_EMPTY] = "malformed module path: empty path element",
	[E_DOTS] = "malformed module path: path element made only of dots",
	[E_LEADING_DOT] = "malformed module path: leading dot in path element",
	[E_TRAILING_DOT] = "malformed module path: trailing dot in path element",
	[E_NON_ASCII] = "malformed module path: non-ASCII character",
	[E_BAD_UTF8] = "malformed module path: invalid UTF-8",
	[E_CHAR] = "malformed module path: invalid character (allowed: A-Z a-z 0-9 - . _ ~)",
	[E_BANG] = "malformed module path: invalid character '!'",
	[E_WINDOWS] = "malformed module path: element is a reserved Windows name (CON, NUL, COM1, ...)",
	[E_SHORT_NAME] = "malformed module path: element looks like a Windows short name (ends in ~ and digits)",
};

static const char *const version_reason[] = {
	[E_EMPTY] = "malformed version: empty string",
	[E_DOTS] = "malformed version: made only of dots",
	[E_LEADING_DOT] = "malformed version: leading dot",
	[E_TRAILING_DOT] = "malformed version: trailing dot",
	[E_NON_ASCII] = "malformed version: non-ASCII character",
	[E_BAD_UTF8] = "malformed version: invalid UTF-8",
	[E_CHAR] = "malformed version: character not allowed in a file name",
	[E_BANG] = "malformed version: contains '!'",
	[E_WINDOWS] = "malformed version: reserved Windows name (CON, NUL, COM1, ...)",
	[E_SHORT_NAME] = "malformed version: looks like a Windows short name",
};

/* ELEM_VERSION is x/mod's filePath kind restricted to ASCII (versions
 * must be case-encodable); ELEM_FILE is filePath itself. */
enum elem_kind { ELEM_MODULE, ELEM_VERSION, ELEM_FILE };

/* modPathOK: note that module paths, unlike import paths, exclude '+'. */
static bool mod_char_ok(int c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* fileNameOK, ASCII half (the other half is unicode.IsLetter). */
static bool file_char_ok(int c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&()+,-.=@[]^_{}~ ", c));
}

static const char *const bad_windows_names[] = {
	"CON", "PRN", "AUX", "NUL",
	"COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
	"LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
};

/* strings.EqualFold(name, s[0..n)) for an ASCII name.  A byte >= 0x80 in
 * s never matches: the only non-ASCII runes that fold to ASCII letters
 * (U+017F to s, U+212A to k) fold to letters no reserved name holds. */
static bool fold_eq(const char *s, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (name[i] == '\0' || to_lower(s[i]) != to_lower(name[i]))
			return false;
	return name[n] == '\0';
}

static bool is_windows_name(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof bad_windows_names / sizeof bad_windows_names[0]; i++)
		if (fold_eq(s, n, bad_windows_names[i]))
			return true;
	return false;
}

/* "EXAMPL~1": a tilde followed by one or more digits, at the very end. */
static bool is_short_name(const char *s, size_t n)
{
	size_t i = n;

	while (i > 0 && is_digit(s[i - 1]))
		i--;
	return i < n && i > 0 && s[i - 1] == '~';
}

/* One character of an element at e[0..n): its size in *size. */
static enum elem_err check_char(const char *e, size_t n, enum elem_kind kind, size_t *size)
{
	unsigned char c = (unsigned char)e[0];
	int32_t r;

	*size = 1;
	if (c < 0x80)
		return (kind == ELEM_MODULE ? mod_char_ok(c) : file_char_ok(c)) ? E_OK : E_CHAR;
	if (kind != ELEM_FILE)
		return E_NON_ASCII;
	if ((r = text_decode_rune(e, n, size)) < 0)
		return E_BAD_UTF8;
	return uni_is_letter(r) ? E_OK : E_CHAR;
}

/*
 * checkElem(elem, kind).  Like x/mod, a file name may hold any Unicode
 * letter (strictly decoded UTF-8: Go's range loop turns a bad byte into
 * U+FFFD, which is no letter).  Module paths and versions stay ASCII:
 * the case encoding is undefined beyond it.
 */
static enum elem_err check_elem(const char *e, size_t n, enum elem_kind kind)
{
	size_t i, size, short_len;
	enum elem_err err;

	if (n == 0)
		return E_EMPTY;
	for (i = 0; i < n && e[i] == '.'; i++)
		;
	if (i == n)
		return E_DOTS;
	if (e[0] == '.' && kind == ELEM_MODULE)
		return E_LEADING_DOT;
	if (e[n - 1] == '.')
		return E_TRAILING_DOT;
	for (i = 0; i < n; i += size)
		if ((err = check_char(e + i, n - i, kind, &size)) != E_OK)
			return err;

	/* Windows reserves these names whatever follows the first dot. */
	for (short_len = 0; short_len < n && e[short_len] != '.'; short_len++)
		;
	if (is_windows_name(e, short_len))
		return E_WINDOWS;
	/* Short names only matter for directories (module paths). */
	if (kind == ELEM_MODULE && is_short_name(e, short_len))
		return E_SHORT_NAME;
	return E_OK;
}

/* checkPath(path, modulePath): the general, per-element checks. */
static const char *check_general_path(const char *path)
{
	const char *elem, *slash;
	enum elem_err err;

	if (path[0] == '\0')
		return "malformed module path: empty string";
	if (path[0] == '-')
		return "malformed module path: leading dash";
	if (strstr(path, "//") != NULL)
		return "malformed module path: double slash";
	if (path[strlen(path) - 1] == '/')
		return "malformed module path: trailing slash";
	for (elem = path;; elem = slash + 1) {
		slash = strchr(elem, '/');
		if (slash == NULL)
			slash = elem + strlen(elem);
		err = check_elem(elem, (size_t)(slash - elem), ELEM_MODULE);
		if (err != E_OK)
			return path_reason[err];
		if (*slash == '\0')
			return NULL;
	}
}

/* ---------------------------------------------------------------------
 * Major-version suffixes
 */

/*
 * splitGopkgIn: gopkg.in paths must end in ".vN" (N without a leading zero
 * unless it is exactly ".v0"), optionally followed by "-unstable".
 */
static bool split_gopkg_in(const char *path, size_t n, const char **major)
{
	const char *pm;
	size_t i = n;

	if (has_suffix(path, n, "-unstable"))
		i -= strlen("-unstable");
	while (i > 0 && is_digit(path[i - 1]))
		i--;
	if (i <= 1 || path[i - 1] != 'v' || path[i - 2] != '.')
		return false;
	pm = path + i - 2;
	if (n - (i - 2) <= 2 || (pm[2] == '0' && strcmp(pm, ".v0") != 0))
		return false;
	*major = pm;
	return true;
}

/*
 * SplitPathVersion.  On success *major points into path at "/vN" (N >= 2)
 * or ".vN[-unstable]", or at the terminating NUL when there is no suffix.
 * Fails for a final "/vN" that CheckPath must reject: /v0, /v1, /v01, /v2.0.
 */
static bool split_path_version(const char *path, const char **major)
{
	size_t n = strlen(path), i = n;
	bool dot = false;
	const char *pm;

	*major = path + n;
	if (has_prefix(path, "gopkg.in/"))
		return split_gopkg_in(path, n, major);

	while (i > 0 && (is_digit(path[i - 1]) || path[i - 1] == '.')) {
		if (path[i - 1] == '.')
			dot = true;
		i--;
	}
	if (i <= 1 || i == n || path[i - 1] != 'v' || path[i - 2] != '/')
		return true;
	pm = path + i - 2;
	if (dot || n - (i - 2) <= 2 || pm[2] == '0' || strcmp(pm, "/v1") == 0)
		return false;
	*major = pm;
	return true;
}

/* firstPathOK: the first element is a lowercase LDH domain name. */
static bool first_char_ok(int c)
{
	return is_lower(c) || is_digit(c) || c == '-' || c == '.';
}

const char *mp_check_path(const char *path)
{
	const char *err, *major;
	size_t i, first;

	if ((err = check_general_path(path)) != NULL)
		return err;
	first = strcspn(path, "/");
	if (first == 0)
		return "malformed module path: leading slash";
	if (memchr(path, '.', first) == NULL)
		return "malformed module path: missing dot in first path element";
	if (path[0] == '-')
		return "malformed module path: leading dash in first path element";
	for (i = 0; i < first; i++)
		if (!first_char_ok((unsigned char)path[i]))
			return "malformed module path: first path element may contain only a-z 0-9 - .";
	if (!split_path_version(path, &major))
		return "malformed module path: invalid major version suffix";
	return NULL;
}

/* CheckFilePath: a '/'-separated relative path of file-name elements
 * (no leading or trailing '/', no empty, "." or ".." element). */
const char *mp_check_file_path(const char *path, size_t n)
{
	size_t start = 0, end;

	if (n == 0)
		return "malformed file path: empty string";
	if (path[0] == '/')
		return "malformed file path: leading slash";
	if (path[n - 1] == '/')
		return "malformed file path: trailing slash";
	for (; start <= n; start = end + 1) {
		const char *slash = memchr(path + start, '/', n - start);

		end = slash ? (size_t)(slash - path) : n;
		switch (check_elem(path + start, end - start, ELEM_FILE)) {
		case E_OK:
			break;
		case E_EMPTY:
			return "malformed file path: empty path element";
		case E_DOTS:
			return "malformed file path: element made only of dots (. or ..)";
		case E_TRAILING_DOT:
			return "malformed file path: trailing dot in path element";
		case E_BAD_UTF8:
			return "malformed file path: invalid UTF-8";
		case E_WINDOWS:
			return "malformed file path: reserved Windows name (CON, NUL, COM1, ...)";
		default:
			return "malformed file path: invalid character";
		}
	}
	return NULL;
}

const char *mp_check_version_elem(const char *v)
{
	enum elem_err err = check_elem(v, strlen(v), ELEM_VERSION);

	/* EscapeVersion also refuses '!': it would make the encoding ambiguous. */
	if (err == E_OK && strchr(v, '!') != NULL)
		err = E_BANG;
	return err == E_OK ? NULL : version_reason[err];
}

/* ---------------------------------------------------------------------
 * Case encoding
 */

/* escapeString */
const char *mp_escape(const char *in, char *out, size_t outsz)
{
	size_t j = 0;

	for (; *in != '\0'; in++) {
		unsigned char c = (unsigned char)*in;

		/* The encoding is only reversible without these. */
		if (c == '!' || c >= 0x80)
			return "cannot escape '!' or non-ASCII characters";
		if (j + (is_upper(c) ? 2 : 1) >= outsz)
			return "escaped form too long";
		if (is_upper(c)) {
			out[j++] = '!';
			out[j++] = (char)to_lower(c);
		} else {
			out[j++] = (char)c;
		}
	}
	if (j >= outsz)
		return "escaped form too long";
	out[j] = '\0';
	return NULL;
}

enum unescape_err { U_OK, U_NON_ASCII, U_UPPER, U_BANG, U_TOO_LONG };

/*
 * unescapeString, strictly: every escaped string has exactly one decoding
 * and every decoded string exactly one encoding, so a successful decode
 * re-encodes to its input byte for byte.
 */
static enum unescape_err unescape(const char *esc, char *out, size_t outsz)
{
	size_t j = 0;
	bool bang = false;

	for (; *esc != '\0'; esc++) {
		unsigned char c = (unsigned char)*esc;

		if (c >= 0x80)
			return U_NON_ASCII;
		if (j + 1 >= outsz)
			return U_TOO_LONG;
		if (bang) {
			if (!is_lower(c))
				return U_BANG;
			out[j++] = (char)(c - 'a' + 'A');
			bang = false;
		} else if (c == '!') {
			bang = true;
		} else if (is_upper(c)) {
			return U_UPPER;
		} else {
			out[j++] = (char)c;
		}
	}
	if (bang)
		return U_BANG;
	if (outsz == 0)
		return U_TOO_LONG;
	out[j] = '\0';
	return U_OK;
}

const char *mp_unescape_path(const char *esc, char *out, size_t outsz)
{
	switch (unescape(esc, out, outsz)) {
	case U_OK:
		return mp_check_path(out);
	case U_NON_ASCII:
		return "invalid escaped module path: non-ASCII byte";
	case U_UPPER:
		return "invalid escaped module path: uppercase letter (must be '!' + lowercase)";
	case U_BANG:
		return "invalid escaped module path: '!' not followed by a lowercase letter";
	case U_TOO_LONG:
		break;
	}
	return "module path too long";
}

const char *mp_unescape_version(const char *esc, char *out, size_t outsz)
{
	switch (unescape(esc, out, outsz)) {
	case U_OK:
		return mp_check_version_elem(out);
	case U_NON_ASCII:
		return "invalid escaped version: non-ASCII byte";
	case U_UPPER:
		return "invalid escaped version: uppercase letter (must be '!' + lowercase)";
	case U_BANG:
		return "invalid escaped version: '!' not followed by a lowercase letter";
	case U_TOO_LONG:
		break;
	}
	return "version too long";
}

/* ---------------------------------------------------------------------
 * Semantic versions (golang.org/x/mod/semver)
 */

/* A parsed version: spans into the original string. */
struct semver {
	const char *major, *minor, *patch;
	size_t major_len, minor_len, patch_len;
	const char *pre;        /* "-...", or "" */
	const char *build;      /* "+...", or "" */
	size_t pre_len, build_len;
	bool shorthand;         /* vX or vX.Y */
};

/* parseInt: decimal, no leading zero.  Returns the end, or NULL. */
static const char *parse_int(const char *s, const char **num, size_t *len)
{
	const char *p = s;

	if (!is_digit(*p))
		return NULL;
	while (is_digit(*p))
		p++;
	if (s[0] == '0' && p - s != 1)
		return NULL;
	*num = s;
	*len = (size_t)(p - s);
	return p;
}

static bool is_ident_char(int c)
{
	return is_alnum(c) || c == '-';
}

/* isBadNum: an all-digit identifier with a leading zero. */
static bool is_bad_num(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && is_digit(s[i]))
		i++;
	return i == n && n > 1 && s[0] == '0';
}

/*
 * parsePrerelease (prerelease = true) and parseBuild: dot-separated,
 * non-empty identifiers after the leading '-' or '+'.  The prerelease
 * stops at '+'; a build runs to the end.
 */
static const char *parse_idents(const char *s, bool prerelease)
{
	const char *p = s + 1, *start = s + 1;

	for (; *p != '\0' && !(prerelease && *p == '+'); p++) {
		if (*p == '.') {
			if (p == start || (prerelease && is_bad_num(start, (size_t)(p - start))))
				return NULL;
			start = p + 1;
		} else if (!is_ident_char((unsigned char)*p)) {
			return NULL;
		}
	}
	if (p == start || (prerelease && is_bad_num(start, (size_t)(p - start))))
		return NULL;
	return p;
}

/* semver.parse */
static bool semver_parse(const char *v, struct semver *sv)
{
	const char *p, *end;

	memset(sv, 0, sizeof *sv);
	sv->pre = sv->build = "";
	if (v[0] != 'v')
		return false;
	if ((p = parse_int(v + 1, &sv->major, &sv->major_len)) == NULL)
		return false;
	sv->minor = sv->patch = "0";
	sv->minor_len = sv->patch_len = 1;
	if (*p == '\0') {
		sv->shorthand = true;
		return true;
	}
	if (*p != '.' || (p = parse_int(p + 1, &sv->minor, &sv->minor_len)) == NULL)
		return false;
	if (*p == '\0') {
		sv->shorthand = true;
		return true;
	}
	if (*p != '.' || (p = parse_int(p + 1, &sv->patch, &sv->patch_len)) == NULL)
		return false;
	if (*p == '-') {
		if ((end = parse_idents(p, true)) == NULL)
			return false;
		sv->pre = p;
		sv->pre_len = (size_t)(end - p);
		p = end;
	}
	if (*p == '+') {
		if ((end = parse_idents(p, false)) == NULL)
			return false;
		sv->build = p;
		sv->build_len = (size_t)(end - p);
		p = end;
	}
	return *p == '\0';
}

bool mp_semver_valid(const char *v)
{
	struct semver sv;

	return semver_parse(v, &sv);
}

/* module.CanonicalVersion(v) == v */
bool mp_is_canonical(const char *v)
{
	struct semver sv;

	if (!semver_parse(v, &sv) || sv.shorthand)
		return false;
	return sv.build_len == 0 || span_eq(sv.build, sv.build_len, "+incompatible");
}

static bool all_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/*
 * The prefix before the timestamp in pseudoVersionRE:
 *   v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)
 * p[0..n) contains no '+' (the caller cut the build suffix off).
 */
static bool pseudo_prefix_ok(const char *p, size_t n)
{
	size_t i = 1;

	if (n == 0 || p[0] != 'v' || i >= n || !is_digit(p[i]))
		return false;
	while (i < n && is_digit(p[i]))
		i++;
	if (i >= n || p[i++] != '.')
		return false;
	/* First alternative: "0.0-" ends the prefix. */
	if (n - i == 4 && memcmp(p + i, "0.0-", 4) == 0)
		return true;
	/* Second: \d+\.\d+- then "0." or "<anything>.0." */
	if (i >= n || !is_digit(p[i]))
		return false;
	while (i < n && is_digit(p[i]))
		i++;
	if (i >= n || p[i++] != '.' || i >= n || !is_digit(p[i]))
		return false;
	while (i < n && is_digit(p[i]))
		i++;
	if (i >= n || p[i++] != '-')
		return false;
	return span_eq(p + i, n - i, "0.") ||
	    (n - i >= 3 && memcmp(p + n - 3, ".0.", 3) == 0);
}

/*
 * module.IsPseudoVersion: at least two dashes, valid semver, and
 *   ^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+
 *   (\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$
 * Nothing before the build suffix may hold a '+', so the first '+' starts
 * the build (which semver validity already checked); the revision holds
 * no '-', so the last dash before the build precedes it.
 */
bool mp_is_pseudo(const char *v)
{
	struct semver sv;
	const char *p;
	size_t core, dash, dashes = 0;

	for (p = v; *p != '\0'; p++)
		if (*p == '-')
			dashes++;
	if (dashes < 2 || !semver_parse(v, &sv))
		return false;

	core = strcspn(v, "+");
	for (dash = core; dash > 0 && v[dash - 1] != '-'; dash--)
		;
	if (dash == 0 || dash == core)
		return false;
	dash--;                                 /* v[dash] == '-' */
	for (p = v + dash + 1; p < v + core; p++)
		if (!is_alnum((unsigned char)*p))
			return false;
	if (dash < 14 || !all_digits(v + dash - 14, 14))
		return false;
	return pseudo_prefix_ok(v, dash - 14);
}

/*
 * module.Check minus CheckPath: v must be valid semver and fit the path's
 * major-version suffix (CheckPathMajor after SplitPathVersion).
 */
const char *mp_check_path_major(const char *path, const char *version)
{
	struct semver sv;
	const char *pm;
	size_t pm_len;

	if (!semver_parse(version, &sv))
		return "malformed version: not a semantic version";
	/* Like module.Check, use whatever suffix was found, ok or not. */
	if (!split_path_version(path, &pm))
		pm = path + strlen(path);
	pm_len = strlen(pm);
	if (has_prefix(pm, ".v") && has_suffix(pm, pm_len, "-unstable"))
		pm_len -= strlen("-unstable");

	/* Old pseudo-versions of gopkg.in .v1 packages used v0.0.0-. */
	if (has_prefix(version, "v0.0.0-") && span_eq(pm, pm_len, ".v1"))
		return NULL;

	if (pm_len == 0) {
		if (span_eq(sv.major, sv.major_len, "0") ||
		    span_eq(sv.major, sv.major_len, "1") ||
		    span_eq(sv.build, sv.build_len, "+incompatible"))
			return NULL;
		return "version does not match module path: want v0 or v1 (or +incompatible) for a path without a /vN suffix";
	}
	/* pm is "/vN" or ".vN": semver.Major(v) must be "vN". */
	if (pm_len == 2 + sv.major_len && pm[1] == 'v' &&
	    memcmp(pm + 2, sv.major, sv.major_len) == 0)
		return NULL;
	return "version does not match module path: major version differs from the path's vN suffix";
}

/* ---------------------------------------------------------------------
 * Ordering
 */

/* compareInt: decimal strings without leading zeros. */
static int cmp_int(const char *x, size_t xn, const char *y, size_t yn)
{
	int c;

	if (xn != yn)
		return xn < yn ? -1 : 1;
	c = memcmp(x, y, xn);
	return (c > 0) - (c < 0);
}

/* Go's string comparison: bytewise, a proper prefix sorts first. */
static int cmp_str(const char *x, size_t xn, const char *y, size_t yn)
{
	int c = memcmp(x, y, xn < yn ? xn : yn);

	if (c != 0)
		return (c > 0) - (c < 0);
	return (xn > yn) - (xn < yn);
}

/* comparePrerelease: x and y include their leading '-' (or are empty). */
static int cmp_prerelease(const char *x, size_t xn, const char *y, size_t yn)
{
	size_t dx, dy;
	bool nx, ny;

	if (xn == yn && memcmp(x, y, xn) == 0)
		return 0;
	if (xn == 0)
		return 1;               /* a release sorts after its prereleases */
	if (yn == 0)
		return -1;
	while (xn > 0 && yn > 0) {
		x++, xn--;              /* skip '-' or '.' */
		y++, yn--;
		for (dx = 0; dx < xn && x[dx] != '.'; dx++)
			;
		for (dy = 0; dy < yn && y[dy] != '.'; dy++)
			;
		if (cmp_str(x, dx, y, dy) != 0) {
			nx = all_digits(x, dx);
			ny = all_digits(y, dy);
			if (nx != ny)
				return nx ? -1 : 1;     /* numbers sort first */
			if (nx)
				return cmp_int(x, dx, y, dy);
			return cmp_str(x, dx, y, dy);
		}
		x += dx, xn -= dx;
		y += dy, yn -= dy;
	}
	return xn == 0 ? -1 : 1;        /* more identifiers sort later */
}

int mp_semver_compare(const char *a, const char *b)
{
	struct semver x, y;
	bool okx = semver_parse(a, &x), oky = semver_parse(b, &y);
	int c;

	if (!okx || !oky)
		return (int)okx - (int)oky;
	if ((c = cmp_int(x.major, x.major_len, y.major, y.major_len)) != 0)
		return c;
	if ((c = cmp_int(x.minor, x.minor_len, y.minor, y.minor_len)) != 0)
		return c;
	if ((c = cmp_int(x.patch, x.patch_len, y.patch, y.patch_len)) != 0)
		return c;
	return cmp_prerelease(x.pre, x.pre_len, y.pre, y.pre_len);
}
