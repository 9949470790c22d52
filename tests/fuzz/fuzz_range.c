/*
 * fuzz_range: range_parse() (src/range.c) on any header value and file
 * size.  Input: 8 bytes of file size (little-endian; the fuzzer may keep
 * it small), then the header value (cut at a NUL).
 * Invariants: the result is -1, 0 or 1; 1 means first <= last < size and
 * the header begins with "bytes=" (any case); -1 needs that prefix too,
 * and 0 leaves first and last untouched.  And the answer is the one of
 * ref_parse() below, range.h's contract written another way (split at
 * the first '-', then each side all digits).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* s[0..n) all ASCII digits (n may be 0) into *v; false on another byte
 * or a value past 2^64-1. */
static int ref_number(const char *s, size_t n, uint64_t *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' ||
		    __builtin_mul_overflow(*v, 10, v) ||
		    __builtin_add_overflow(*v, (uint64_t)(s[i] - '0'), v))
			return 0;
	}
	return 1;
}

static int ref_parse(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
	const char *s = h + 6, *dash;
	size_t an, bn;
	uint64_t a, b;

	if (strncasecmp(h, "bytes=", 6) != 0 || (dash = strchr(s, '-')) == NULL)
		return 0;
	an = (size_t)(dash - s);
	bn = strlen(dash + 1);
	if (!ref_number(s, an, &a) || !ref_number(dash + 1, bn, &b) || (an == 0 && bn == 0))
		return 0;
	if (an == 0) {   /* suffix: the last b bytes */
		if (b == 0 || size == 0)
			return -1;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return 1;
	}
	if (bn > 0 && b < a)
		return 0;
	if (a >= size)
		return -1;
	*first = a;
	*last = bn == 0 || b >= size ? size - 1 : b;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t rfirst = 77, rlast = 77;
	uint64_t fsize = 0, first = 77, last = 77;
	char *h;
	int r;

	if (size < 8)
		return 0;
	for (int i = 7; i >= 0; i--)
		fsize = fsize << 8 | data[i];
	/* Mostly small sizes, where the edges are, but every size now and then. */
	if (!(data[7] & 0x80))
		fsize &= 0xffff;
	h = malloc(size - 8 + 1);
	if (h == NULL)
		return 0;
	memcpy(h, data + 8, size - 8);
	h[size - 8] = '\0';

	r = range_parse(h, fsize, &first, &last);
	if (r != -1 && r != 0 && r != 1)
		abort();
	if (r != 0 && strncasecmp(h, "bytes=", 6) != 0)
		abort();
	if (r == 1 && !(first <= last && last < fsize))
		abort();
	if (r == 0 && (first != 77 || last != 77))
		abort();
	if (ref_parse(h, fsize, &rfirst, &rlast) != r || rfirst != first || rlast != last)
		abort();
	if (range_parse(NULL, fsize, &first, &last) != 0)
		abort();
	free(h);
	return 0;
}
