/*
 * addr: hosts and ports, as -listen takes them and as upstream URLs name
 * them.  Go's net.SplitHostPort rules: an IPv6 address needs brackets; a
 * host is a name, a dotted IPv4 address, or [IPv6] with an optional %zone.
 *
 * Contract: pure functions, no global state, safe from any thread.  The
 * *_ok checks look at the span [s, s+n) only and allocate nothing;
 * config_parse_listen returns NULL or a static one-line reason, and on
 * success the strings it gives belong to the caller (free()); allocation
 * failure aborts (parseutil.h).
 */
#ifndef GOPROXYD_ADDR_H
#define GOPROXYD_ADDR_H

#include <stddef.h>

/* host:port, [v6]:port or :port -> host (NULL for empty) and port. */
const char *config_parse_listen(const char *s, char **host, char **port);

/* Decimal port 0..65535, no sign, at most five digits: 1 and *port set,
 * or 0. */
int addr_port_ok(const char *s, size_t n, unsigned *port);

/* An IPv6 literal (without its brackets), optionally with a "%zone". */
int addr_ipv6_ok(const char *s, size_t n);

/* A host name or dotted IPv4 address (not IPv6: that needs brackets). */
int addr_hostname_ok(const char *s, size_t n);

#endif
