/*
 * addr.c: host and port grammars: -listen's host:port (Go's
 * net.SplitHostPort, then a port, a host name, an IPv4 address or a
 * bracketed IPv6 address), and the pieces an upstream URL's host[:port]
 * is checked with.
 *
 * Contract: see include/addr.h.  Pure functions, no global state: any
 * thread (config.c calls them at start-up, on the main thread).
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "parseutil.h"

/* ------------------------------------------------------------------ */
/* Hosts and ports (shared by -listen and upstream URLs)               */

/* Decimal port 0..65535, no sign, at most five digits. */
int
addr_port_ok(const char *s, size_t n, unsigned *port)
{
	unsigned v = 0;
	size_t i;

	if (n == 0 || n > 5)
		return 0;
	for (i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return 0;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return 0;
	*port = v;
	return 1;
}

/* An IPv6 literal, optionally with a "%zone". */
int
addr_ipv6_ok(const char *s, size_t n)
{
	char buf[INET6_ADDRSTRLEN + 1];
	struct in6_addr a;
	const char *pct = memchr(s, '%', n);
	size_t alen = pct ? (size_t)(pct - s) : n;
	size_t i;

	if (alen == 0 || alen >= sizeof(buf))
		return 0;
	if (pct != NULL) {
		if (pct + 1 == s + n)
			return 0;
		for (i = alen + 1; i < n; i++)
			if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f ||
			    s[i] == ']' || s[i] == '[')
				return 0;
	}
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	return inet_pton(AF_INET6, buf, &a) == 1;
}

/* A host name or dotted IPv4 address (not IPv6: that needs brackets). */
int
addr_hostname_ok(const char *s, size_t n)
{
	char buf[INET_ADDRSTRLEN];
	struct in_addr a;
	int numeric = 1;
	size_t i;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!is_digit(c) && c != '.')
			numeric = 0;
		if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' &&
		    c != '_')
			return 0;
	}
	if (!numeric)
		return 1;
	if (n >= sizeof(buf))
		return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET, buf, &a) == 1;
}

/* ------------------------------------------------------------------ */
/* -listen                                                             */

/* net.SplitHostPort, returning spans into s. */
static const char *
split_host_port(const char *s, const char **h, size_t *hn, const char **p)
{
	const char *last = strrchr(s, ':'), *end;
	size_t j = 0, k = 0;

	if (last == NULL)
		return "missing port in address";
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return "missing ']' in address";
		if (end[1] == '\0')
			return "missing port in address";
		if (end + 1 != last)
			return end[1] == ':' ? "too many colons in address" :
			    "missing port in address";
		*h = s + 1;
		*hn = (size_t)(end - s - 1);
		j = 1;
		k = (size_t)(end - s) + 1;
	} else {
		*h = s;
		*hn = (size_t)(last - s);
		if (memchr(s, ':', *hn) != NULL)
			return "too many colons in address "
			    "(write IPv6 addresses in brackets: [::1]:8080)";
	}
	if (strchr(s + j, '[') != NULL)
		return "unexpected '[' in address";
	if (strchr(s + k, ']') != NULL)
		return "unexpected ']' in address";
	*p = last + 1;
	return NULL;
}

const char *
config_parse_listen(const char *s, char **host, char **port)
{
	const char *h, *p, *why;
	char buf[8];
	size_t hn;
	unsigned v;

	*host = *port = NULL;
	if ((why = split_host_port(s, &h, &hn, &p)) != NULL)
		return why;
	if (*p == '\0')
		return "missing port in address";
	if (!addr_port_ok(p, strlen(p), &v))
		return "invalid port (want a number from 0 to 65535)";
	if (s[0] == '[') {
		if (!addr_ipv6_ok(h, hn))
			return "invalid IPv6 address in brackets";
	} else if (hn > 0 && !addr_hostname_ok(h, hn)) {
		return "invalid host (want a name, an IPv4 address "
		    "or [IPv6] in brackets)";
	}
	snprintf(buf, sizeof(buf), "%u", v);
	*host = hn > 0 ? xstrndup(h, hn) : NULL;
	*port = xstrdup(buf);
	return NULL;
}
