/*
 * route: see include/route.h.
 *
 * The order matters: percent-decode once, then split, then apply the go
 * command's rules to each part.  Splitting before decoding would let
 * "%2F" smuggle a '/' past the split; decoding twice would let "%2521"
 * become '!' (or "%252F" a '/').  Pure: runs on the serving threads.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modpath.h"
#include "route.h"
#include "text.h"
#include "tlog.h"

/* Longest decoded request path we look at: "/" + path + "/@v/" + version
 * + ".info", with room to spare.  Anything longer is over a cap anyway. */
#define ROUTE_DECODED_MAX 1024

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
	int c;

	for (; *raw != '\0'; raw++) {
		c = (unsigned char)*raw;
		if (c == '%') {
			if ((c = text_percent_byte(raw)) < 0)
				return "malformed percent-encoding in request path";
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

/* --- checksum-database paths ------------------------------------------- */

bool route_sumdb_name_ok(const char *s, size_t n)
{
	size_t elem = 0;
	bool dots_only = true;

	if (n == 0 || n >= SUMDB_NAME_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char c = i < n ? s[i] : '/';

		if (c == '/') {
			if (elem == 0 || dots_only)
				return false;
			elem = 0;
			dots_only = true;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return false;
		dots_only = dots_only && c == '.';
		elem++;
	}
	return true;
}

/* tile/H/L/K[.p/W], checked by tlog's own parser: only the canonical
 * paths tlog would produce get through. */
static const char *parse_tile(const char *rest, struct request *req)
{
	struct tlog_tile t;
	const char *err = tlog_parse_tile_path(rest, &t);

	if (err != NULL)
		return err;
	req->sumdb_kind = t.l < 0 ? SUMDB_DATA_TILE : SUMDB_TILE;
	req->tile_width = (unsigned)t.w;
	return NULL;
}

/* lookup/<escaped path>@<escaped version>, the version a full semver
 * (the sumdb server's own pattern). */
static const char *parse_lookup(const char *rest, struct request *req)
{
	char mod[MP_PATH_MAX];
	const char *arg = rest + strlen("lookup/"), *at = strchr(arg, '@'), *err;
	size_t n;

	if (at == NULL || at == arg || (size_t)(at - arg) >= sizeof mod)
		return "malformed lookup: want lookup/<module>@<version>";
	memcpy(mod, arg, (size_t)(at - arg));
	mod[at - arg] = '\0';
	if ((err = parse_module(mod, req)) != NULL)
		return err;
	n = strlen(at + 1);
	if ((err = parse_version(at + 1, n, req)) != NULL)
		return err;
	if (!mp_semver_valid(req->version) || strchr(req->version, '@') ||
	    strspn(req->version, "v0123456789.") < 6)
		return "malformed lookup: version is not a full semantic version";
	req->sumdb_kind = SUMDB_LOOKUP;
	return NULL;
}

static int parse_sumdb_rest(const char *rest, struct request *req, const char **reason)
{
	const char *err = NULL;

	if (strlen(rest) >= SUMDB_REST_MAX) {
		*reason = "checksum database path too long";
		return 400;
	}
	if (strcmp(rest, "supported") == 0)
		req->sumdb_kind = SUMDB_SUPPORTED;
	else if (strcmp(rest, "latest") == 0)
		req->sumdb_kind = SUMDB_LATEST;
	else if (strncmp(rest, "lookup/", 7) == 0)
		err = parse_lookup(rest, req);
	else if (strncmp(rest, "tile/", 5) == 0)
		err = parse_tile(rest, req);
	else {
		*reason = "no such checksum database endpoint";
		return 404;
	}
	if (err != NULL) {
		*reason = err;
		return 400;
	}
	strcpy(req->sumdb_rest, rest);
	req->kind = REQ_SUMDB;
	req->immutable = req->sumdb_kind != SUMDB_LATEST && req->sumdb_kind != SUMDB_SUPPORTED;
	return 0;
}

/* The name may hold '/', so the split is the first element that starts an
 * endpoint. */
static int parse_sumdb(const char *path, struct request *req, const char **reason)
{
	static const char *const marks[] = { "/supported", "/latest", "/lookup/", "/tile/" };
	const char *name = path + strlen("/sumdb/"), *split = NULL;

	for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
		const char *m = strstr(name, marks[i]);
		size_t ml = strlen(marks[i]);

		/* "/supported" and "/latest" must end the path. */
		while (m && marks[i][ml - 1] != '/' && m[ml] != '\0')
			m = strstr(m + 1, marks[i]);
		if (m && (split == NULL || m < split))
			split = m;
	}
	if (split == NULL || !route_sumdb_name_ok(name, (size_t)(split - name))) {
		*reason = "not found: no such checksum database";
		return 404;
	}
	memcpy(req->sumdb_name, name, (size_t)(split - name));
	req->sumdb_name[split - name] = '\0';
	return parse_sumdb_rest(split + 1, req, reason);
}

static bool parse_ops(const char *path, struct request *req)
{
	if (strcmp(path, "/healthz") == 0)
		req->op = OP_HEALTHZ;
	else if (strcmp(path, "/readyz") == 0)
		req->op = OP_READYZ;
	else if (strcmp(path, "/metrics") == 0)
		req->op = OP_METRICS;
	else if (strcmp(path, "/") == 0)
		req->op = OP_FRONT;
	else if (strcmp(path, "/catalog") == 0)
		req->op = OP_CATALOG;
	else
		return false;
	return true;
}

static bool is_root_sumdb(const char *path)
{
	return strcmp(path, "/latest") == 0 || strcmp(path, "/supported") == 0 ||
	       strncmp(path, "/lookup/", 8) == 0 || strncmp(path, "/tile/", 6) == 0;
}

#define CACHED_ONLY "/cached-only"

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
	/* "/cached-only/<any endpoint>": no module path starts with it either
	 * (a module's first element has a dot). */
	if (strncmp(path, CACHED_ONLY "/", sizeof CACHED_ONLY) == 0) {
		memmove(path, path + sizeof CACHED_ONLY - 1, strlen(path) - (sizeof CACHED_ONLY - 1) + 1);
		req->cached_only = true;
	}

	/* No module path starts with "sumdb", "lookup", "tile" or "latest":
	 * a module's first element has a dot. */
	if (strncmp(path, "/sumdb/", 7) == 0)
		return parse_sumdb(path, req, reason);
	if (parse_ops(path, req))
		return 0;
	if (is_root_sumdb(path))
		return parse_sumdb_rest(path + 1, req, reason);

	/* Module paths contain no '@', so the first marker is the split. */
	at_v = strstr(path, "/@v/");
	at_latest = strstr(path, "/@latest");
	if (at_v == NULL && at_latest == NULL) {
		*reason = ROUTE_NO_ENDPOINT;
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
	case REQ_SUMDB:
		break;
	}
	return NULL;
}

/* Percent-encodes what may not appear raw in a URL path.  The input is a
 * validated escaped module path or version (queries may hold '#', '%' or
 * spaces), so this never meets '/' inside an element. */
static size_t path_escape(char *out, size_t n, const char *s)
{
	static const char keep[] = "-._~!$&'()*+,;=:@/";
	size_t o = 0;

	for (; *s && o + 4 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr(keep, c))
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, n - o, "%%%02X", c);
	}
	out[o] = '\0';
	return o;
}

void route_upstream_path(const struct request *r, char *out, size_t n)
{
	size_t o;

	if (r->kind == REQ_SUMDB) {
		path_escape(out, n, r->sumdb_rest);
		return;
	}
	o = path_escape(out, n, r->esc_path);
	if (r->kind == REQ_LIST)
		snprintf(out + o, n - o, "/@v/list");
	else if (r->kind == REQ_LATEST)
		snprintf(out + o, n - o, "/@latest");
	else {
		o += (size_t)snprintf(out + o, n - o, "/@v/");
		if (o < n) {
			o += path_escape(out + o, n - o, r->esc_version);
			snprintf(out + o, n - o, ".%s", route_ext(r->kind));
		}
	}
}
