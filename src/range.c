/*
 * range: see include/range.h.  Runs on whichever thread calls it (the
 * serving threads, from respond.c); it touches nothing but its arguments.
 */
#include <stdbool.h>
#include <stddef.h>
#include <strings.h>

#include "range.h"

/* 1*DIGIT at *p into *v, advancing *p; false when there is no digit or the
 * number does not fit in 64 bits. */
static bool digits(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t n = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*p = s;
	*v = n;
	return true;
}

/* suffix-range: "-" 1*DIGIT, the last n bytes. */
static int suffix(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
	uint64_t n;

	if (!digits(&h, &n) || *h != '\0')
		return 0;
	if (n == 0 || size == 0)
		return -1;
	*first = n >= size ? 0 : size - n;
	*last = size - 1;
	return 1;
}

int range_parse(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
	uint64_t a, b;

	if (h == NULL || strncasecmp(h, "bytes=", 6) != 0)
		return 0;
	h += 6;
	if (*h == '-')
		return suffix(h + 1, size, first, last);
	if (!digits(&h, &a) || *h++ != '-')
		return 0;
	if (*h == '\0')
		b = UINT64_MAX;
	else if (!digits(&h, &b) || *h != '\0' || b < a)
		return 0;
	if (a >= size)
		return -1;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return 1;
}
