/*
 * range: the Range request header as RFC 9110 section 14.1 defines it,
 * for a single range only.  A pure function: no libmicrohttpd, no
 * allocation, no global state, so a unit test or a fuzz target links it
 * alone.
 *
 * Contract: range_parse(h, size, &first, &last) returns 1 with
 * first <= last < size when h is "bytes=" followed by exactly one
 * satisfiable range; -1 when it is one well-formed range that cannot be
 * satisfied (first-pos at or past size, a zero-length suffix, or any
 * range of an empty file); 0 when the header must be ignored and the
 * whole file sent: h NULL, another unit, several ranges, anything but
 * ASCII digits in the positions (signs, spaces, tabs), last-pos before
 * first-pos, or a number past 2^64-1.  "bytes" matches case-insensitively
 * as the RFC says; nothing else is accepted.
 */
#ifndef GOPROXYD_RANGE_H
#define GOPROXYD_RANGE_H

#include <stdint.h>

int range_parse(const char *h, uint64_t size, uint64_t *first, uint64_t *last);

#endif
