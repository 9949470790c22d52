/*
 * proxylist.c: the upstream grammars: GOPROXY lists (-proxy), as the go
 * command reads them ("direct" included: a fetch from the origin
 * repository, see direct.h), with goproxyd's refusals (credentials in
 * URLs, file://), and -sumdb's checksum-database entries.
 *
 * Contract: see include/proxylist.h.  Pure functions, no global state: any
 * thread (config.c calls them at start-up, on the main thread).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "parseutil.h"
#include "proxylist.h"
#include "route.h"

/* ------------------------------------------------------------------ */
/* GOPROXY lists                                                       */

void
config_free_upstreams(struct upstream *ups, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ups[i].url);
	free(ups);
}

/* url.Parse's getScheme: length of "scheme" before ':' or 0 for none. */
static size_t
scheme_len(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (is_alpha(c))
			continue;
		if (is_digit(c) || c == '+' || c == '-' || c == '.') {
			if (i == 0)
				return 0;
			continue;
		}
		return c == ':' ? i : 0;
	}
	return 0;
}

/* host[:port] of an upstream URL.  Credentials in the URL are refused:
 * URLs appear in logs and error bodies, so they belong in -netrc. */
static const char *
check_authority(const char *a, size_t n)
{
	const char *port = NULL, *rb;
	size_t hn;
	unsigned v;

	if (memchr(a, '@', n) != NULL)
		return "credentials in a proxy URL would show in logs; put them in a netrc file (-netrc)";
	if (n == 0)
		return "proxy URL has no host";
	if (a[0] == '[') {
		if ((rb = memchr(a, ']', n)) == NULL ||
		    !addr_ipv6_ok(a + 1, (size_t)(rb - a - 1)))
			return "proxy URL has an invalid IPv6 host";
		if (rb + 1 < a + n) {
			if (rb[1] != ':')
				return "proxy URL has an invalid host";
			port = rb + 2;
		}
	} else {
		port = memchr(a, ':', n);
		hn = port ? (size_t)(port - a) : n;
		if (!addr_hostname_ok(a, hn))
			return "proxy URL has an invalid host";
		if (port != NULL)
			port++;
	}
	if (port != NULL && !addr_port_ok(port, (size_t)(a + n - port), &v))
		return "proxy URL has an invalid port";
	return NULL;
}

static const char *
entry_keyword(const char *s, size_t n)
{
	if (n == 7 && memcmp(s, "noproxy", 7) == 0)
		return "noproxy is not supported: it is the go command's "
		    "internal marker for GONOPROXY, not a proxy";
	return NULL;
}

static const char *
entry_chars(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f)
			return "proxy URL contains a space, control or "
			    "non-ASCII character";
		if (c == '?')
			return "proxy URL must not have a query (?)";
		if (c == '#')
			return "proxy URL must not have a fragment (#)";
	}
	return NULL;
}

/*
 * The scheme ("http" or "https") and where the authority starts.  Like the
 * go command, an entry without a scheme that contains '.', ':' or '/' (but
 * no ":/", and is not an absolute path) is taken to be https.
 */
static const char *
entry_scheme(const char *s, size_t n, const char **scheme, const char **rest)
{
	size_t sl;

	if ((memchr(s, '.', n) || memchr(s, ':', n) || memchr(s, '/', n)) &&
	    memmem(s, n, ":/", 2) == NULL && s[0] != '/') {
		*scheme = "https";
		*rest = s;
		return NULL;
	}
	sl = scheme_len(s, n);
	if (sl == 0)
		return "proxy URL has no scheme (want http:// or https://)";
	if (sl == 4 && strncasecmp(s, "http", 4) == 0)
		*scheme = "http";
	else if (sl == 5 && strncasecmp(s, "https", 5) == 0)
		*scheme = "https";
	else if (sl == 4 && strncasecmp(s, "file", 4) == 0)
		return "file:// upstreams are not supported (serve the "
		    "directory over http, or use it as -cacheDir)";
	else
		return "unsupported proxy URL scheme (want http or https)";
	if (n < sl + 3 || memcmp(s + sl, "://", 3) != 0)
		return "proxy URL must start with http:// or https://";
	*rest = s + sl + 3;
	return NULL;
}

/*
 * Turns one trimmed, non-empty GOPROXY entry into an absolute http(s) URL
 * with a lower-case scheme and no trailing '/'.
 */
static const char *
entry_url(const char *s, size_t n, char **out)
{
	const char *why, *scheme, *rest, *slash;
	size_t rn, len;

	if ((why = entry_keyword(s, n)) != NULL ||
	    (why = entry_chars(s, n)) != NULL ||
	    (why = entry_scheme(s, n, &scheme, &rest)) != NULL)
		return why;
	rn = (size_t)(s + n - rest);
	slash = memchr(rest, '/', rn);
	if ((why = check_authority(rest, slash ? (size_t)(slash - rest) : rn)))
		return why;
	while (rn > 0 && rest[rn - 1] == '/')
		rn--;
	len = strlen(scheme) + 3 + rn + 1;
	*out = xcalloc(1, len);
	snprintf(*out, len, "%s://%.*s", scheme, (int)rn, rest);
	return NULL;
}

const char *
config_parse_proxy(const char *list, struct upstream **ups, size_t *n,
    bool *offline)
{
	struct upstream *v = NULL;
	const char *p = list, *s, *e, *why;
	size_t nv = 0;
	bool off = false, fallback;
	char *url;

	*ups = NULL;
	*n = 0;
	*offline = false;
	if (list == NULL || *list == '\0')
		return "empty proxy list";
	while (*p != '\0') {
		s = p;
		e = p + strcspn(p, ",|");
		fallback = *e == '|';
		p = *e ? e + 1 : e;
		trim(&s, &e);
		if (s == e)
			continue;
		if (span_is(s, e, "off")) {
			off = nv == 0;
			break;
		}
		if (span_is(s, e, "direct"))
			url = xstrdup("direct");
		else if ((why = entry_url(s, (size_t)(e - s), &url)) != NULL) {
			config_free_upstreams(v, nv);
			return why;
		}
		v = xreallocarray(v, nv + 1, sizeof(*v));
		v[nv].url = url;
		v[nv].fallback_on_error = fallback;
		v[nv].direct = span_is(s, e, "direct");
		nv++;
	}
	if (nv == 0 && !off)
		return "proxy list contains no entries";
	*ups = v;
	*n = nv;
	*offline = off;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* -sumdb                                                              */

/* One entry: NAME or KEY, optionally followed by =URL. */
static const char *
parse_sumdb_entry(const char *s, const char *e, struct sumdb_conf *db)
{
	const char *eq = s, *id_end, *plus;
	struct upstream *ups;
	size_t n;
	bool off;
	char *url;
	const char *why;

	/* The URL starts at "=http"; a key's base64 is 44 characters of
	 * 33 bytes and never holds '='. */
	while ((eq = memchr(eq, '=', (size_t)(e - eq))) != NULL &&
	    strncmp(eq + 1, "http", 4) != 0)
		eq++;
	id_end = eq ? eq : e;
	plus = memchr(s, '+', (size_t)(id_end - s));
	if (!route_sumdb_name_ok(s, (size_t)((plus ? plus : id_end) - s)))
		return "malformed checksum database name";
	db->name = xstrndup(s, (size_t)((plus ? plus : id_end) - s));
	if (plus)
		db->key = xstrndup(s, (size_t)(id_end - s));
	else if (strcmp(db->name, "sum.golang.org") == 0)
		db->key = xstrdup(SUMDB_GOLANG_KEY);
	if (eq)
		url = xstrndup(eq + 1, (size_t)(e - eq - 1));
	else {
		url = xreallocarray(NULL, strlen(db->name) + 9, 1);
		sprintf(url, "https://%s", db->name);
		db->discover = true;
	}
	why = config_parse_proxy(url, &ups, &n, &off);
	free(url);
	if (why != NULL)
		return why;
	if (n != 1 || ups[0].direct) {
		config_free_upstreams(ups, n);
		return "a checksum database needs one http(s) URL";
	}
	db->url = ups[0].url;
	ups[0].url = NULL;
	config_free_upstreams(ups, n);
	return NULL;
}

const char *
config_parse_sumdb(const char *list, struct sumdb_conf **dbs, size_t *count)
{
	const char *p = list, *s, *e, *why;
	struct sumdb_conf *out = NULL;
	size_t n = 0;

	*dbs = NULL;
	*count = 0;
	s = list;
	e = list + strlen(list);
	trim(&s, &e);
	if ((size_t)(e - s) == 3 && memcmp(s, "off", 3) == 0)
		return NULL;
	while (next_element(&p, &s, &e)) {
		out = xreallocarray(out, n + 1, sizeof(*out));
		memset(&out[n], 0, sizeof(out[n]));
		why = parse_sumdb_entry(s, e, &out[n++]);
		if (why != NULL) {
			config_free_sumdbs(out, n);
			return why;
		}
	}
	if (n == 0)
		return "empty list (use \"off\" to proxy no checksum database)";
	*dbs = out;
	*count = n;
	return NULL;
}

void
config_free_sumdbs(struct sumdb_conf *dbs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(dbs[i].name);
		free(dbs[i].url);
		free(dbs[i].key);
	}
	free(dbs);
}
