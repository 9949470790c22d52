/*
 * units.c: quantities on the command line: Go's time.ParseDuration (the
 * timeouts and expiries) and byte sizes (-cacheMaxSize).
 *
 * Contract: see include/units.h.  Pure functions, no allocation, no global
 * state: any thread (config.c calls them at start-up, on the main thread).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parseutil.h"
#include "units.h"

#define NS_PER_MS       1000000ULL

/* ------------------------------------------------------------------ */
/* Durations: Go's time.ParseDuration                                  */

static const struct {
	const char *name;
	uint64_t ns;
} units[] = {
	{ "ns", 1 },
	{ "us", 1000 },
	{ "\xc2\xb5s", 1000 },          /* U+00B5 micro sign */
	{ "\xce\xbcs", 1000 },          /* U+03BC Greek mu */
	{ "ms", 1000000 },
	{ "s", 1000000000ULL },
	{ "m", 60ULL * 1000000000ULL },
	{ "h", 3600ULL * 1000000000ULL },
};

static uint64_t
unit_ns(const char *u, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0)
			return units[i].ns;
	return 0;
}

/* leadingInt: -1 on overflow. */
static int
leading_int(const char **s, uint64_t *x)
{
	const uint64_t lim = 1ULL << 63;

	*x = 0;
	for (; is_digit((unsigned char)**s); (*s)++) {
		if (*x > lim / 10)
			return -1;
		*x = *x * 10 + (uint64_t)(**s - '0');
		if (*x > lim)
			return -1;
	}
	return 0;
}

/* leadingFraction: digits beyond 2^63 precision are dropped. */
static void
leading_fraction(const char **s, uint64_t *x, double *scale)
{
	const uint64_t lim = 1ULL << 63;
	bool overflow = false;
	uint64_t y;

	*x = 0;
	*scale = 1;
	for (; is_digit((unsigned char)**s); (*s)++) {
		if (overflow)
			continue;
		if (*x > (lim - 1) / 10) {
			overflow = true;
			continue;
		}
		y = *x * 10 + (uint64_t)(**s - '0');
		if (y > lim) {
			overflow = true;
			continue;
		}
		*x = y;
		*scale *= 10;
	}
}

/* One "[0-9]*(.[0-9]*)?unit" term, added to *d (nanoseconds). */
static const char *
duration_term(const char **sp, uint64_t *d)
{
	const uint64_t lim = 1ULL << 63;
	const char *s = *sp, *start, *u;
	uint64_t v, f = 0, unit;
	double scale = 1;
	bool pre, post = false;

	if (!(*s == '.' || is_digit((unsigned char)*s)))
		return "invalid duration (e.g. 300ms, 30s, 5m, 1h30m)";
	start = s;
	if (leading_int(&s, &v) < 0)
		return "duration out of range";
	pre = s != start;
	if (*s == '.') {
		start = ++s;
		leading_fraction(&s, &f, &scale);
		post = s != start;
	}
	if (!pre && !post)
		return "invalid duration (e.g. 300ms, 30s, 5m, 1h30m)";
	for (u = s; *s != '\0' && *s != '.' && !is_digit((unsigned char)*s); s++)
		;
	if (s == u)
		return "missing unit in duration (want ns, us, ms, s, m or h)";
	if ((unit = unit_ns(u, (size_t)(s - u))) == 0)
		return "unknown unit in duration (want ns, us, ms, s, m or h)";
	if (v > lim / unit)
		return "duration out of range";
	v *= unit;
	if (f > 0) {
		v += (uint64_t)((double)f * ((double)unit / scale));
		if (v > lim)
			return "duration out of range";
	}
	*d += v;
	if (*d > lim)
		return "duration out of range";
	*sp = s;
	return NULL;
}

const char *
config_parse_duration(const char *s, int64_t *ms)
{
	const char *why;
	uint64_t d = 0;
	bool neg = false;

	if (s == NULL || *s == '\0')
		return "empty duration";
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (strcmp(s, "0") == 0) {
		*ms = 0;
		return NULL;
	}
	if (*s == '\0')
		return "invalid duration (e.g. 300ms, 30s, 5m, 1h30m)";
	while (*s != '\0')
		if ((why = duration_term(&s, &d)) != NULL)
			return why;
	if (neg && d > 0)
		return "negative duration";
	if (d > (1ULL << 63) - 1)
		return "duration out of range";
	*ms = (int64_t)(d / NS_PER_MS);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Sizes                                                               */

/* A byte count with an optional binary suffix K, M, G, T, which may be
 * followed by B or iB (e.g. 512M, 50G, 1KiB). */
const char *
config_parse_size(const char *v, uint64_t *bytes)
{
	static const char units[] = "KMGT";
	const char *u;
	char *end;
	unsigned long long n;
	int shift = 0;

	if (*v < '0' || *v > '9')
		return "want a size such as 50G, 512M or 0";
	errno = 0;
	n = strtoull(v, &end, 10);
	if (*end != '\0') {
		if ((u = strchr(units, *end)) == NULL || (end[1] != '\0' && strcmp(end + 1, "iB") != 0 &&
		    strcmp(end + 1, "B") != 0))
			return "want a size such as 50G, 512M or 0";
		shift = 10 * (int)(u - units + 1);
	}
	if (errno != 0 || n > (UINT64_MAX >> shift))
		return "size too large";
	*bytes = (uint64_t)n << shift;
	return NULL;
}
