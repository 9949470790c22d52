/*
 * fuzz_range: range_parse() (src/range.c) on any header value and file
 * size.  Input: 8 bytes of file size (little-endian; the fuzzer may keep
 * it small), then the header value (cut at a NUL).
 * Invariants: the result is -1, 0 or 1; 1 means first <= last < size and
 * the header begins with "bytes=" (any case); -1 needs that prefix too,
 * and 0 leaves first and last untouched.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
	if (range_parse(NULL, fsize, &first, &last) != 0)
		abort();
	free(h);
	return 0;
}
