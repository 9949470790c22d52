/*
 * route: see include/route.h.
 *
 * The order matters: percent-decode once, then split, then apply the go
 * command's rules to each part.  Splitting before decoding would let
 * "%2F" smuggle a '/' past the split; decoding twice would let "%2521"
 * become '!' (or "%252F" a '/').
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "modpath.h"
#include "route.h"

/* Longest decoded request path we look at: "/" + path + "/@v/" + version
 * + ".info", with room to spare.  Anything longer is over a cap anyway. */
#define ROUTE_DECODED_MAX 1024

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decode raw into out.  '+' is not a space in a path.  Some bytes
 * are refused outright, before any other rule sees them: a NUL would end
 * the C string early, '\' is a separator on Windows, and no module path
 * or escaped version contains a byte >= 0x80.  (The later checks refuse
 * them too; this keeps them out of every code path.)
 */
static const char *decode(const char *raw, char *out, size_t outsz)
{
	size_t j = 0;
	int hi, lo, c;

	for (; *raw != '\0'; raw++) {
		c = (unsigned char)*raw;
		if (c == '%') {
			hi = hex_value((unsigned char)raw[1]);
			lo = hi < 0 ? -1 : hex_value((unsigned char)raw[2]);
			if (lo < 0)
				return "malformed percent-encoding in request path";
			c = hi * 16 + lo;
			raw += 2;
		}
		if (c == '\0')
			return "NUL byte in request path";
		if (c == '\\')
			return "backslash in request path";
		if (c >= 0x80)
			return "non-ASCII byte in request path";
		if (j + 1 >= outsz)
			return "request path too long";
		out[j++] = (char)c;
	}
	out[j] = '\0';
	return NULL;
}

/* Longest '/'-separated element of s. */
static size_t longest_elem(const char *s)
{
	size_t n, max = 0;

	for (;;) {
		n = strcspn(s, "/");
		if (n > max)
			max = n;
		if (s[n] == '\0')
			return max;
		s += n + 1;
	}
}

/* The escaped module path: caps, strict unescape, CheckPath. */
static const char *parse_module(const char *esc, struct request *req)
{
	char check[MP_PATH_MAX];
	const char *err;

	if (strlen(esc) >= MP_PATH_MAX)
		return "module path too long";
	if (longest_elem(esc) > MP_ELEM_MAX)
		return "module path element too long";
	if ((err = mp_unescape_path(esc, req->path, sizeof req->path)) != NULL)
		return err;
	/* Strict unescaping makes this hold; the cache relies on it. */
	if (mp_escape(req->path, check, sizeof check) != NULL || strcmp(check, esc) != 0)
		return "module path is not in canonical escaped form";
	memcpy(req->esc_path, esc, strlen(esc) + 1);
	return NULL;
}

/* The escaped version of an .info/.mod/.zip request. */
static const char *parse_version(const char *esc, size_t n, struct request *req)
{
	char esc_ver[MP_VERSION_MAX], check[MP_VERSION_MAX];
	const char *err;

	if (n == 0)
		return "missing version before the file extension";
	if (n > MP_ELEM_MAX)
		return "version too long";
	memcpy(esc_ver, esc, n);
	esc_ver[n] = '\0';
	if ((err = mp_unescape_version(esc_ver, req->version, sizeof req->version)) != NULL)
		return err;
	/*
	 * x/mod allows a leading dot in a version.  No tag or branch can
	 * start with one (git forbids it), and on disk it would make a
	 * hidden file that could meet our own ".goproxyd-tmp-*" names.
	 */
	if (req->version[0] == '.')
		return "malformed version: leading dot";
	if (mp_escape(req->version, check, sizeof check) != NULL || strcmp(check, esc_ver) != 0)
		return "version is not in canonical escaped form";
	memcpy(req->esc_version, esc_ver, n + 1);
	return NULL;
}

/* What follows "/@v/": "list", or "<version>.info|.mod|.zip". */
static const char *parse_file(const char *file, struct request *req)
{
	static const struct {
		const char *ext;
		enum req_kind kind;
	} exts[] = {
		{ ".info", REQ_INFO },
		{ ".mod", REQ_MOD },
		{ ".zip", REQ_ZIP },
	};
	size_t i, n = strlen(file), m;
	const char *err;

	if (strchr(file, '/') != NULL)
		return "unexpected '/' after /@v/";
	if (strcmp(file, "list") == 0) {
		req->kind = REQ_LIST;
		return NULL;
	}
	for (i = 0; i < sizeof exts / sizeof exts[0]; i++) {
		m = strlen(exts[i].ext);
		if (n >= m && strcmp(file + n - m, exts[i].ext) == 0)
			break;
	}
	if (i == sizeof exts / sizeof exts[0])
		return n == 0 ? "missing file name after /@v/"
			      : "unknown file after /@v/ (want list, .info, .mod or .zip)";
	req->kind = exts[i].kind;
	if ((err = parse_version(file, n - m, req)) != NULL)
		return err;

	if (!mp_is_canonical(req->version)) {
		/* A query: only .info may carry one, and its answer may change. */
		if (req->kind != REQ_INFO)
			return "non-canonical version: .mod and .zip need a canonical version (vX.Y.Z[-pre][+incompatible])";
		return NULL;
	}
	err = mp_check_path_major(req->path, req->version);
	if (err != NULL && req->kind != REQ_INFO)
		return err;
	/* An .info for a version that does not fit the path is a query too. */
	req->immutable = err == NULL;
	return NULL;
}

int route_parse(const char *raw_path, struct request *req, const char **reason)
{
	char path[ROUTE_DECODED_MAX];
	char *at_v, *at_latest, *file;
	const char *err;

	memset(req, 0, sizeof *req);
	if (raw_path[0] != '/') {
		*reason = "request path must start with '/'";
		return 400;
	}
	if ((err = decode(raw_path, path, sizeof path)) != NULL) {
		*reason = err;
		return 400;
	}

	/* Module paths contain no '@', so the first marker is the split. */
	at_v = strstr(path, "/@v/");
	at_latest = strstr(path, "/@latest");
	if (at_v == NULL && at_latest == NULL) {
		*reason = "no such endpoint (want /<module>/@v/list, /<module>/@v/<version>.info|.mod|.zip or /<module>/@latest)";
		return 404;
	}
	if (at_v != NULL && (at_latest == NULL || at_v < at_latest)) {
		file = at_v + strlen("/@v/");
		*at_v = '\0';
	} else if (at_latest[strlen("/@latest")] != '\0') {
		*reason = "unexpected text after /@latest";
		return 400;
	} else {
		file = NULL;
		req->kind = REQ_LATEST;
		*at_latest = '\0';
	}

	/* The module first: the version checks need its major suffix.  (If
	 * the marker was the leading '/', the module part is empty.) */
	err = path[0] == '\0' ? "missing module path" : parse_module(path + 1, req);
	if (err == NULL && file != NULL)
		err = parse_file(file, req);
	if (err != NULL) {
		*reason = err;
		return 400;
	}
	return 0;
}

const char *route_ext(enum req_kind kind)
{
	switch (kind) {
	case REQ_INFO:
		return "info";
	case REQ_MOD:
		return "mod";
	case REQ_ZIP:
		return "zip";
	case REQ_LIST:
	case REQ_LATEST:
		break;
	}
	return NULL;
}
