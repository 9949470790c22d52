/*
 * Unit tests for src/dirhash.c, src/note.c and src/tlog.c (the checksum
 * database verifier).
 *
 * Vectors: the empty go.mod hash and the sum.golang.org key from
 * docs/protocol.md; a module zip whose h1: hash was computed by the real go
 * command; RFC 6962 reference tree roots; a lookup response and tile served
 * by tests/lib/fakesumdb.py (signed by its pure-Python Ed25519, which the
 * real go command accepts, see tests/integration/test_fakesumdb_gocmd.py).
 * Trees for the proofs are built here from leaf hashes and served by an
 * in-memory tile reader that can tamper with any hash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dirhash.h"
#include "note.h"
#include "tlog.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Fail with the vector that broke, not just the line. */
#define EXPECT(cond, ...)                                               \
	do {                                                            \
		if (!(cond)) {                                          \
			print_error("%s:%d: ", __FILE__, __LINE__);     \
			print_error(__VA_ARGS__);                       \
			print_error("\n");                              \
			fail();                                         \
		}                                                       \
	} while (0)

#define OK(expr)                                                        \
	do {                                                            \
		const char *err_ = (expr);                              \
		EXPECT(err_ == NULL, "%s: %s", #expr, err_);            \
	} while (0)

#define FAILS(expr)                                                     \
	do {                                                            \
		const char *err_ = (expr);                              \
		EXPECT(err_ != NULL, "%s: unexpectedly succeeded", #expr); \
	} while (0)

/* ------------------------------------------------------------------ */
/* Embedded vectors (generated at development time; see the comments). */

/* example.com/tiny@v1.0.0: 5 entries (one a directory, mixed stored and
 * deflated, not in sorted order), written by python3 zipfile. */
static const unsigned char tiny_zip[] = {
	0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
	0x21, 0x50, 0x57, 0x90, 0x1f, 0xcb, 0x27, 0x00, 0x00, 0x00, 0x27, 0x00,
	0x00, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c,
	0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x74, 0x69, 0x6e, 0x79, 0x40, 0x76,
	0x31, 0x2e, 0x30, 0x2e, 0x30, 0x2f, 0x74, 0x69, 0x6e, 0x79, 0x2e, 0x67,
	0x6f, 0x2b, 0x48, 0x4c, 0xce, 0x4e, 0x4c, 0x4f, 0x55, 0x28, 0xc9, 0xcc,
	0xab, 0xe4, 0xe2, 0xd2, 0xd7, 0x57, 0x88, 0x50, 0xc8, 0x2c, 0x56, 0xc8,
	0xcf, 0x4b, 0xd5, 0xe3, 0x4a, 0xce, 0xcf, 0x2b, 0x2e, 0x01, 0xf2, 0x6d,
	0x15, 0x0c, 0xb9, 0x00, 0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00,
	0x08, 0x00, 0x00, 0x00, 0x21, 0x50, 0xa9, 0x7e, 0xe2, 0x15, 0x1a, 0x00,
	0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x1e, 0x00, 0x00, 0x00, 0x65, 0x78,
	0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x74, 0x69,
	0x6e, 0x79, 0x40, 0x76, 0x31, 0x2e, 0x30, 0x2e, 0x30, 0x2f, 0x67, 0x6f,
	0x2e, 0x6d, 0x6f, 0x64, 0xcb, 0xcd, 0x4f, 0x29, 0xcd, 0x49, 0x55, 0x48,
	0xad, 0x48, 0xcc, 0x2d, 0xc8, 0x49, 0xd5, 0x4b, 0xce, 0xcf, 0xd5, 0x2f,
	0xc9, 0xcc, 0xab, 0xe4, 0x02, 0x00, 0x50, 0x4b, 0x03, 0x04, 0x14, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x50, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00,
	0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x2f,
	0x74, 0x69, 0x6e, 0x79, 0x40, 0x76, 0x31, 0x2e, 0x30, 0x2e, 0x30, 0x2f,
	0x73, 0x75, 0x62, 0x2f, 0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x21, 0x50, 0x08, 0x8e, 0x04, 0x79, 0x0d, 0x00,
	0x00, 0x00, 0x0d, 0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x65, 0x78,
	0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x74, 0x69,
	0x6e, 0x79, 0x40, 0x76, 0x31, 0x2e, 0x30, 0x2e, 0x30, 0x2f, 0x4c, 0x49,
	0x43, 0x45, 0x4e, 0x53, 0x45, 0x74, 0x69, 0x6e, 0x79, 0x20, 0x6c, 0x69,
	0x63, 0x65, 0x6e, 0x73, 0x65, 0x0a, 0x50, 0x4b, 0x03, 0x04, 0x14, 0x00,
	0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x21, 0x50, 0x38, 0x88, 0x25, 0x7d,
	0x0e, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00,
	0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x2f,
	0x74, 0x69, 0x6e, 0x79, 0x40, 0x76, 0x31, 0x2e, 0x30, 0x2e, 0x30, 0x2f,
	0x73, 0x75, 0x62, 0x2f, 0x62, 0x2e, 0x67, 0x6f, 0x2b, 0x48, 0x4c, 0xce,
	0x4e, 0x4c, 0x4f, 0x55, 0x28, 0x2e, 0x4d, 0xe2, 0x02, 0x00, 0x50, 0x4b,
	0x01, 0x02, 0x14, 0x03, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
	0x21, 0x50, 0x57, 0x90, 0x1f, 0xcb, 0x27, 0x00, 0x00, 0x00, 0x27, 0x00,
	0x00, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0xa4, 0x01, 0x00, 0x00, 0x00, 0x00, 0x65, 0x78, 0x61, 0x6d,
	0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x74, 0x69, 0x6e, 0x79,
	0x40, 0x76, 0x31, 0x2e, 0x30, 0x2e, 0x30, 0x2f, 0x74, 0x69, 0x6e, 0x79,
	0x2e, 0x67, 0x6f, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14, 0x00, 0x00,
	0x00, 0x08, 0x00, 0x00, 0x00, 0x21, 0x50, 0xa9, 0x7e, 0xe2, 0x15, 0x1a,
	0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x1e, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa4, 0x01, 0x64, 0x00, 0x00,
	0x00, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d,
	0x2f, 0x74, 0x69, 0x6e, 0x79, 0x40, 0x76, 0x31, 0x2e, 0x30, 0x2e, 0x30,
	0x2f, 0x67, 0x6f, 0x2e, 0x6d, 0x6f, 0x64, 0x50, 0x4b, 0x01, 0x02, 0x14,
	0x03, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x50, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1c,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa4,
	0x01, 0xba, 0x00, 0x00, 0x00, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,
	0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x74, 0x69, 0x6e, 0x79, 0x40, 0x76, 0x31,
	0x2e, 0x30, 0x2e, 0x30, 0x2f, 0x73, 0x75, 0x62, 0x2f, 0x50, 0x4b, 0x01,
	0x02, 0x14, 0x03, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21,
	0x50, 0x08, 0x8e, 0x04, 0x79, 0x0d, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x00,
	0x00, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0xa4, 0x01, 0xf4, 0x00, 0x00, 0x00, 0x65, 0x78, 0x61, 0x6d, 0x70,
	0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x74, 0x69, 0x6e, 0x79, 0x40,
	0x76, 0x31, 0x2e, 0x30, 0x2e, 0x30, 0x2f, 0x4c, 0x49, 0x43, 0x45, 0x4e,
	0x53, 0x45, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14, 0x00, 0x00, 0x00,
	0x08, 0x00, 0x00, 0x00, 0x21, 0x50, 0x38, 0x88, 0x25, 0x7d, 0x0e, 0x00,
	0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa4, 0x01, 0x3e, 0x01, 0x00, 0x00,
	0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x2f,
	0x74, 0x69, 0x6e, 0x79, 0x40, 0x76, 0x31, 0x2e, 0x30, 0x2e, 0x30, 0x2f,
	0x73, 0x75, 0x62, 0x2f, 0x62, 0x2e, 0x67, 0x6f, 0x50, 0x4b, 0x05, 0x06,
	0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x05, 0x00, 0x7e, 0x01, 0x00, 0x00,
	0x8a, 0x01, 0x00, 0x00, 0x00, 0x00,
};

/* `go mod download -json example.com/tiny@v1.0.0` (go1.19.8, file:// GOPROXY) */
#define TINY_ZIP_H1 "h1:DQ8+2dpdqLq3VYzzLQL2yDZZYmHkC+3KVm3El7OPOpI="
#define TINY_MOD_H1 "h1:fFKn0pE9rOHvRxkVEAOmYkCZu8NJKbPjfwAhP5M6EBk="
#define TINY_MOD "module example.com/tiny\n"

/* example.com/gozip@v1.2.3 written by Go's archive/zip (data descriptors,
 * flag 0x8), as upstream proxies' zips are. */
static const unsigned char gozip_zip[] = {
	0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x08, 0x00, 0x08, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c,
	0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x67, 0x6f, 0x7a, 0x69, 0x70, 0x40,
	0x76, 0x31, 0x2e, 0x32, 0x2e, 0x33, 0x2f, 0x67, 0x6f, 0x2e, 0x6d, 0x6f,
	0x64, 0xca, 0xcd, 0x4f, 0x29, 0xcd, 0x49, 0x55, 0x48, 0xad, 0x48, 0xcc,
	0x2d, 0xc8, 0x49, 0xd5, 0x4b, 0xce, 0xcf, 0xd5, 0x4f, 0xcf, 0xaf, 0xca,
	0x2c, 0xe0, 0xe2, 0x4a, 0xcf, 0x57, 0x30, 0xd4, 0x33, 0xb4, 0xe4, 0x02,
	0x04, 0x00, 0x00, 0xff, 0xff, 0x50, 0x4b, 0x07, 0x08, 0xef, 0x7d, 0x67,
	0x86, 0x28, 0x00, 0x00, 0x00, 0x22, 0x00, 0x00, 0x00, 0x50, 0x4b, 0x03,
	0x04, 0x14, 0x00, 0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21,
	0x00, 0x00, 0x00, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63,
	0x6f, 0x6d, 0x2f, 0x67, 0x6f, 0x7a, 0x69, 0x70, 0x40, 0x76, 0x31, 0x2e,
	0x32, 0x2e, 0x33, 0x2f, 0x67, 0x6f, 0x7a, 0x69, 0x70, 0x2e, 0x67, 0x6f,
	0x2a, 0x48, 0x4c, 0xce, 0x4e, 0x4c, 0x4f, 0x55, 0x48, 0xcf, 0xaf, 0xca,
	0x2c, 0xe0, 0xe2, 0xd2, 0xd7, 0x57, 0x88, 0x52, 0xc8, 0x2c, 0x56, 0xa8,
	0x4a, 0x4d, 0xd1, 0xe3, 0x4a, 0xce, 0xcf, 0x2b, 0x2e, 0x51, 0x88, 0x52,
	0xb0, 0x55, 0x50, 0xaa, 0x52, 0xe2, 0x02, 0x04, 0x00, 0x00, 0xff, 0xff,
	0x50, 0x4b, 0x07, 0x08, 0xc6, 0x76, 0x53, 0xea, 0x30, 0x00, 0x00, 0x00,
	0x2a, 0x00, 0x00, 0x00, 0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x08, 0x00,
	0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x65, 0x78,
	0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x67, 0x6f,
	0x7a, 0x69, 0x70, 0x40, 0x76, 0x31, 0x2e, 0x32, 0x2e, 0x33, 0x2f, 0x69,
	0x6e, 0x74, 0x65, 0x72, 0x6e, 0x61, 0x6c, 0x2f, 0x5a, 0x65, 0x64, 0x2e,
	0x67, 0x6f, 0x2a, 0x48, 0x4c, 0xce, 0x4e, 0x4c, 0x4f, 0x55, 0xc8, 0xcc,
	0x2b, 0x49, 0x2d, 0xca, 0x4b, 0xcc, 0xe1, 0x02, 0x04, 0x00, 0x00, 0xff,
	0xff, 0x50, 0x4b, 0x07, 0x08, 0xea, 0xb7, 0x79, 0x06, 0x17, 0x00, 0x00,
	0x00, 0x11, 0x00, 0x00, 0x00, 0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x08,
	0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x65,
	0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x67,
	0x6f, 0x7a, 0x69, 0x70, 0x40, 0x76, 0x31, 0x2e, 0x32, 0x2e, 0x33, 0x2f,
	0x4c, 0x49, 0x43, 0x45, 0x4e, 0x53, 0x45, 0x4a, 0xcf, 0xaf, 0xca, 0x2c,
	0x50, 0xc8, 0xc9, 0x4c, 0x4e, 0xcd, 0x2b, 0x4e, 0xe5, 0x02, 0x04, 0x00,
	0x00, 0xff, 0xff, 0x50, 0x4b, 0x07, 0x08, 0x98, 0x8c, 0xbd, 0xb3, 0x14,
	0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x50, 0x4b, 0x01, 0x02, 0x14,
	0x00, 0x14, 0x00, 0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0xef,
	0x7d, 0x67, 0x86, 0x28, 0x00, 0x00, 0x00, 0x22, 0x00, 0x00, 0x00, 0x1f,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,
	0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x67, 0x6f, 0x7a, 0x69, 0x70, 0x40, 0x76,
	0x31, 0x2e, 0x32, 0x2e, 0x33, 0x2f, 0x67, 0x6f, 0x2e, 0x6d, 0x6f, 0x64,
	0x50, 0x4b, 0x01, 0x02, 0x14, 0x00, 0x14, 0x00, 0x08, 0x00, 0x08, 0x00,
	0x00, 0x00, 0x00, 0x00, 0xc6, 0x76, 0x53, 0xea, 0x30, 0x00, 0x00, 0x00,
	0x2a, 0x00, 0x00, 0x00, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x75, 0x00, 0x00, 0x00, 0x65, 0x78,
	0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x67, 0x6f,
	0x7a, 0x69, 0x70, 0x40, 0x76, 0x31, 0x2e, 0x32, 0x2e, 0x33, 0x2f, 0x67,
	0x6f, 0x7a, 0x69, 0x70, 0x2e, 0x67, 0x6f, 0x50, 0x4b, 0x01, 0x02, 0x14,
	0x00, 0x14, 0x00, 0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0xea,
	0xb7, 0x79, 0x06, 0x17, 0x00, 0x00, 0x00, 0x11, 0x00, 0x00, 0x00, 0x28,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0xf4, 0x00, 0x00, 0x00, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,
	0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x67, 0x6f, 0x7a, 0x69, 0x70, 0x40, 0x76,
	0x31, 0x2e, 0x32, 0x2e, 0x33, 0x2f, 0x69, 0x6e, 0x74, 0x65, 0x72, 0x6e,
	0x61, 0x6c, 0x2f, 0x5a, 0x65, 0x64, 0x2e, 0x67, 0x6f, 0x50, 0x4b, 0x01,
	0x02, 0x14, 0x00, 0x14, 0x00, 0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x98, 0x8c, 0xbd, 0xb3, 0x14, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00,
	0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x61, 0x01, 0x00, 0x00, 0x65, 0x78, 0x61, 0x6d, 0x70,
	0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x67, 0x6f, 0x7a, 0x69, 0x70,
	0x40, 0x76, 0x31, 0x2e, 0x32, 0x2e, 0x33, 0x2f, 0x4c, 0x49, 0x43, 0x45,
	0x4e, 0x53, 0x45, 0x50, 0x4b, 0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x04,
	0x00, 0x04, 0x00, 0x40, 0x01, 0x00, 0x00, 0xc3, 0x01, 0x00, 0x00, 0x00,
	0x00,
};

#define GOZIP_ZIP_H1 "h1:vOVmYazrXIfu9RMdpFbjGrjGzRiR4pCWPGIKZuQohSk="   /* go mod download */
#define GOZIP_MOD_H1 "h1:poNMHc6D6rm3pSN+3DUcJi/yFXtAkr02IAoPI1qJQKk="
#define GOZIP_MOD "module example.com/gozip\n\ngo 1.19\n"

/* tests/lib/fakesumdb.py with its default key, 5 records
 * (example.com/mI vI.0.I), tree of 5. */
#define TEST_VKEY "sum.test.example+6724f847+ARQMCoXmY8wz6L7iOfLvOcetnNzDHn2czlMHcJ6KCMS5"
/* GET /lookup/example.com/m3@v1.0.3 */
static const char lookup3[] =
	"3\n"
	"example.com/m3 v1.0.3 h1:R9FgfvyS5OO3Zb5lx+wqwGNSRFXTauIBrsfMzUpuQx4=\n"
	"example.com/m3 v1.0.3/go.mod h1:FTgSrl/qC3OgEb8ovXzqk2REN8P+MmC3stfh4vn0a94=\n"
	"\n"
	"go.sum database tree\n"
	"5\n"
	"j4gzsouRX3YePKgUyyG0PAY0tPbXovzlM/z8uUz17fs=\n"
	"\n"
	"\xE2\x80\x94 sum.test.example ZyT4R/0d/bsZLci0Sy6cOEk35VYFa+kGBWFtXqkUqjHD6PemKQML0TUB/SUPSm8XyfxxNWG/J2pHqoGhvRC9csXphQw=\n";
/* GET /tile/8/0/000.p/5 */
static const unsigned char tile5[] = {
	0xef, 0xf3, 0x6d, 0x20, 0xfa, 0xe7, 0x8f, 0x05, 0xa9, 0xbd, 0x2c, 0xdd,
	0x74, 0xb5, 0xcd, 0x69, 0xe7, 0xbe, 0x53, 0x15, 0xca, 0xb8, 0x19, 0xab,
	0xd4, 0xa6, 0x91, 0xb8, 0x35, 0xd7, 0xa0, 0x05, 0x4f, 0xcb, 0x8c, 0x5e,
	0xe7, 0xea, 0x76, 0xad, 0x21, 0x21, 0xd6, 0x7a, 0xc5, 0x76, 0x1e, 0xb0,
	0xbe, 0x20, 0x8d, 0x35, 0xc1, 0xb8, 0x8c, 0x60, 0x8f, 0x68, 0x73, 0x27,
	0x89, 0x23, 0x8c, 0x12, 0x29, 0x4a, 0x2b, 0xf3, 0xf5, 0xd5, 0xed, 0xeb,
	0xcb, 0x25, 0x2c, 0x85, 0xaf, 0x27, 0xaf, 0x82, 0xa3, 0x9f, 0xac, 0x4f,
	0x65, 0x6f, 0xf3, 0x40, 0x8c, 0x64, 0x74, 0x51, 0x26, 0x11, 0xde, 0x23,
	0x3c, 0xfe, 0x4f, 0x1a, 0x4e, 0x42, 0x3d, 0xd6, 0x95, 0xd3, 0xa3, 0x8f,
	0xb2, 0x1b, 0x2c, 0xd2, 0xc7, 0x54, 0x84, 0xd2, 0x48, 0xdf, 0xfa, 0xdd,
	0x22, 0x6f, 0x5e, 0xe1, 0x80, 0x9f, 0xcd, 0xed, 0xc5, 0x1e, 0x76, 0x6f,
	0x09, 0x39, 0x32, 0xac, 0x0e, 0x1e, 0x74, 0xe1, 0xc4, 0x42, 0x4f, 0x5f,
	0x8e, 0x4b, 0x6d, 0x10, 0x5d, 0x07, 0xa5, 0x58, 0x5c, 0x84, 0x19, 0x7e,
	0x99, 0xe1, 0xbb, 0xde,
};

/* A zip with an entry named "m@v1/a\nb". */
static const unsigned char newline_zip[] = {
	0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x21, 0x50, 0x83, 0x16, 0xdc, 0x8c, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x6d, 0x40, 0x76, 0x31, 0x2f, 0x61,
	0x0a, 0x62, 0x78, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x50, 0x83, 0x16, 0xdc, 0x8c, 0x01,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00, 0x00,
	0x00, 0x6d, 0x40, 0x76, 0x31, 0x2f, 0x61, 0x0a, 0x62, 0x50, 0x4b, 0x05,
	0x06, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x36, 0x00, 0x00,
	0x00, 0x27, 0x00, 0x00, 0x00, 0x00, 0x00,
};

/* A zip with two entries named "m@v1/a". */
static const unsigned char dup_zip[] = {
	0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x21, 0x50, 0x83, 0x16, 0xdc, 0x8c, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x6d, 0x40, 0x76, 0x31, 0x2f, 0x61,
	0x78, 0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x21, 0x50, 0x15, 0x26, 0xdb, 0xfb, 0x01, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x6d, 0x40, 0x76, 0x31, 0x2f,
	0x61, 0x79, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x21, 0x50, 0x83, 0x16, 0xdc, 0x8c, 0x01, 0x00,
	0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00,
	0x6d, 0x40, 0x76, 0x31, 0x2f, 0x61, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03,
	0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x50, 0x15, 0x26,
	0xdb, 0xfb, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01,
	0x25, 0x00, 0x00, 0x00, 0x6d, 0x40, 0x76, 0x31, 0x2f, 0x61, 0x50, 0x4b,
	0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x02, 0x00, 0x68, 0x00,
	0x00, 0x00, 0x4a, 0x00, 0x00, 0x00, 0x00, 0x00,
};


/* ------------------------------------------------------------------ */
/* Helpers */

static void hex32(const char *hex, uint8_t out[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

/* A memfd holding buf, positioned at its end (dirhash_zip must rewind). */
static int mem_fd(const void *buf, size_t len)
{
	int fd = memfd_create("zip", 0);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	return fd;
}

/* ------------------------------------------------------------------ */
/* dirhash */

static void test_dirhash_mod(void **state)
{
	char out[DIRHASH_SIZE];

	(void)state;
	dirhash_mod("", 0, out);
	assert_string_equal(out, "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY=");
	assert_int_equal(strlen(out), DIRHASH_LEN);
	dirhash_mod(TINY_MOD, strlen(TINY_MOD), out);
	assert_string_equal(out, TINY_MOD_H1);
}

static void test_dirhash_zip_matches_go(void **state)
{
	char out[DIRHASH_SIZE];
	int fd = mem_fd(tiny_zip, sizeof tiny_zip);

	(void)state;
	OK(dirhash_zip(fd, NULL, out));
	assert_string_equal(out, TINY_ZIP_H1);
	/* Again on the same fd: it is not consumed, and the prefix is honoured. */
	memset(out, 0, sizeof out);
	OK(dirhash_zip(fd, "example.com/tiny@v1.0.0/", out));
	assert_string_equal(out, TINY_ZIP_H1);
	FAILS(dirhash_zip(fd, "example.com/other@v1.0.0/", out));
	FAILS(dirhash_zip(fd, "example.com/tiny@v1.0.0/sub/", out));
	assert_int_equal(close(fd), 0);   /* still ours, still open */

	fd = mem_fd(gozip_zip, sizeof gozip_zip);
	OK(dirhash_zip(fd, "example.com/gozip@v1.2.3/", out));
	assert_string_equal(out, GOZIP_ZIP_H1);
	close(fd);
	dirhash_mod(GOZIP_MOD, strlen(GOZIP_MOD), out);
	assert_string_equal(out, GOZIP_MOD_H1);
}

static void test_dirhash_zip_errors(void **state)
{
	char out[DIRHASH_SIZE];
	unsigned char bad[sizeof tiny_zip];
	int fd;

	(void)state;
	fd = mem_fd(newline_zip, sizeof newline_zip);
	FAILS(dirhash_zip(fd, NULL, out));
	close(fd);

	fd = mem_fd(dup_zip, sizeof dup_zip);
	FAILS(dirhash_zip(fd, NULL, out));
	close(fd);

	fd = mem_fd("not a zip file at all", 21);
	FAILS(dirhash_zip(fd, NULL, out));
	close(fd);

	fd = mem_fd("", 0);
	FAILS(dirhash_zip(fd, NULL, out));
	close(fd);

	/* Corrupt the deflated content of the first entry (tiny.go): its CRC
	 * (or the inflater) must catch it. The data starts after the 30-byte
	 * local header and the 31-byte name. */
	memcpy(bad, tiny_zip, sizeof bad);
	bad[30 + 31 + 5] ^= 0x55;
	fd = mem_fd(bad, sizeof bad);
	FAILS(dirhash_zip(fd, NULL, out));
	close(fd);

	FAILS(dirhash_zip(-1, NULL, out));
}

/* ------------------------------------------------------------------ */
/* note */

#define SUM_GOLANG_ORG "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"

static void test_vkey_sum_golang_org(void **state)
{
	struct note_verifier v;
	char key[sizeof SUM_GOLANG_ORG];

	(void)state;
	OK(note_parse_vkey(SUM_GOLANG_ORG, &v));
	assert_string_equal(v.name, "sum.golang.org");
	assert_int_equal(v.name_len, 14);
	assert_int_equal(v.hash, 0x033de0ae);
	assert_int_equal(v.key[0], 0xce);   /* "Ac4z..." = 01 ce 33 ... */
	assert_int_equal(v.key[1], 0x33);

	/* Upper-case hex is accepted (strconv.ParseUint). */
	OK(note_parse_vkey("sum.golang.org+033DE0AE+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8", &v));
	assert_int_equal(v.hash, 0x033de0ae);

	static const char *const bad[] = {
		"",
		"sum.golang.org",
		"sum.golang.org+033de0ae",
		"sum.golang.org+033de0af+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",  /* hash */
		"sum.golang.org+33de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",   /* 7 digits */
		"sum.golang.org+0x3de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
		"sum.golang.com+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",  /* name */
		"sum golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
		"+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
		"sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn",   /* base64 */
		"sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8=",
		"sum.golang.org+033de0ae+",
	};
	for (size_t i = 0; i < N(bad); i++)
		EXPECT(note_parse_vkey(bad[i], &v) != NULL, "accepted bad key %s", bad[i]);

	/* One character changed in the key: the hash no longer matches. */
	memcpy(key, SUM_GOLANG_ORG, sizeof key);
	key[sizeof key - 3] = 'B';
	FAILS(note_parse_vkey(key, &v));
}

/* A signer made here with OpenSSL, for notes fakesumdb cannot produce. */
struct signer {
	EVP_PKEY *pk;
	char vkey[200];
	char name[64];
	uint32_t hash;
};

static void b64enc(const uint8_t *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static void signer_init(struct signer *s, const char *name, uint8_t seedbyte)
{
	uint8_t seed[32], pub[33], sum[32], buf[300];
	size_t publen = 32, nlen = strlen(name);
	char b64[64];

	memset(seed, seedbyte, sizeof seed);
	s->pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	assert_non_null(s->pk);
	pub[0] = 0x01;
	assert_int_equal(EVP_PKEY_get_raw_public_key(s->pk, pub + 1, &publen), 1);
	memcpy(buf, name, nlen);
	buf[nlen] = '\n';
	memcpy(buf + nlen + 1, pub, 33);
	assert_int_equal(EVP_Digest(buf, nlen + 34, sum, NULL, EVP_sha256(), NULL), 1);
	s->hash = (uint32_t)sum[0] << 24 | (uint32_t)sum[1] << 16 | (uint32_t)sum[2] << 8 | sum[3];
	b64enc(pub, 33, b64);
	snprintf(s->vkey, sizeof s->vkey, "%s+%08x+%s", name, s->hash, b64);
	snprintf(s->name, sizeof s->name, "%s", name);
}

/* Append "— name base64(hash||sig(text))\n" to out. */
static void signer_line(struct signer *s, const char *text, char *out, size_t outsz)
{
	uint8_t raw[68];
	size_t siglen = 64;
	char b64[100];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	raw[0] = (uint8_t)(s->hash >> 24), raw[1] = (uint8_t)(s->hash >> 16);
	raw[2] = (uint8_t)(s->hash >> 8), raw[3] = (uint8_t)s->hash;
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->pk), 1);
	assert_int_equal(EVP_DigestSign(ctx, raw + 4, &siglen, (const uint8_t *)text,
	    strlen(text)), 1);
	EVP_MD_CTX_free(ctx);
	b64enc(raw, 68, b64);
	snprintf(out + strlen(out), outsz - strlen(out), "\xE2\x80\x94 %s %s\n", s->name, b64);
}

/* The signed note inside lookup3. */
static const char *lookup3_note(void)
{
	return strstr(lookup3, "\n\ngo.sum") + 2;
}

static void test_note_fakesumdb_vector(void **state)
{
	struct note_verifier v;
	const char *note = lookup3_note();
	size_t len = strlen(note), tlen = 0;
	char buf[1024];

	(void)state;
	OK(note_parse_vkey(TEST_VKEY, &v));
	assert_string_equal(v.name, "sum.test.example");
	OK(note_verify(note, len, &v, &tlen));
	assert_int_equal(tlen, strlen("go.sum database tree\n5\n"
	    "j4gzsouRX3YePKgUyyG0PAY0tPbXovzlM/z8uUz17fs=\n"));
	assert_memory_equal(note, "go.sum database tree\n5\n", 23);

	/* Tampered text: the tree size. */
	memcpy(buf, note, len + 1);
	buf[21] = '6';
	FAILS(note_verify(buf, len, &v, &tlen));
	/* Tampered signature bytes (inside the base64, keeping it valid). */
	memcpy(buf, note, len + 1);
	buf[len - 10] = buf[len - 10] == 'A' ? 'B' : 'A';
	FAILS(note_verify(buf, len, &v, &tlen));
	/* Tampered key hash in the signature: the line is by an unknown key. */
	memcpy(buf, note, len + 1);
	{
		char *sig = strstr(buf, "example ") + 8;
		sig[1] = sig[1] == 'A' ? 'B' : 'A';
	}
	FAILS(note_verify(buf, len, &v, &tlen));
	/* Truncated: no final newline. */
	FAILS(note_verify(note, len - 1, &v, &tlen));
	/* Another key of the same name. */
	OK(note_parse_vkey(SUM_GOLANG_ORG, &v));
	FAILS(note_verify(note, len, &v, &tlen));
}

static void test_note_rules(void **state)
{
	static const char text[] = "go.sum database tree\n7\n"
	    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";
	struct signer me, other;
	struct note_verifier v;
	char msg[16384];
	size_t tlen;

	(void)state;
	signer_init(&me, "test.example/db", 7);
	signer_init(&other, "other.example", 9);
	OK(note_parse_vkey(me.vkey, &v));

	/* Signed by me. */
	snprintf(msg, sizeof msg, "%s\n", text);
	signer_line(&me, text, msg, sizeof msg);
	OK(note_verify(msg, strlen(msg), &v, &tlen));
	assert_int_equal(tlen, strlen(text));

	/* Unknown signers before and after are ignored. */
	snprintf(msg, sizeof msg, "%s\n", text);
	signer_line(&other, text, msg, sizeof msg);
	signer_line(&me, text, msg, sizeof msg);
	signer_line(&other, text, msg, sizeof msg);
	OK(note_verify(msg, strlen(msg), &v, NULL));

	/* Only unknown signers. */
	snprintf(msg, sizeof msg, "%s\n", text);
	signer_line(&other, text, msg, sizeof msg);
	FAILS(note_verify(msg, strlen(msg), &v, NULL));

	/* A bad signature by me fails even next to a good one. */
	snprintf(msg, sizeof msg, "%s\n", text);
	signer_line(&me, "go.sum database tree\n8\n", msg, sizeof msg);
	signer_line(&me, text, msg, sizeof msg);
	FAILS(note_verify(msg, strlen(msg), &v, NULL));

	/* The text is split at the LAST blank line: a blank line inside the
	 * text belongs to the text. */
	{
		static const char t2[] = "line one\n\nline three\n";
		snprintf(msg, sizeof msg, "%s\n", t2);
		signer_line(&me, t2, msg, sizeof msg);
		OK(note_verify(msg, strlen(msg), &v, &tlen));
		assert_int_equal(tlen, strlen(t2));
	}

	/* Malformed: no blank line, control characters, bad UTF-8, a
	 * non-signature line, an empty signature block. */
	snprintf(msg, sizeof msg, "%s", text);
	signer_line(&me, text, msg, sizeof msg);
	FAILS(note_verify(msg, strlen(msg), &v, NULL));
	{
		static const char t3[] = "tab\there\n";
		snprintf(msg, sizeof msg, "%s\n", t3);
		signer_line(&me, t3, msg, sizeof msg);
		FAILS(note_verify(msg, strlen(msg), &v, NULL));
	}
	{
		static const char t4[] = "bad \xC0\x80 utf8\n";
		snprintf(msg, sizeof msg, "%s\n", t4);
		signer_line(&me, t4, msg, sizeof msg);
		FAILS(note_verify(msg, strlen(msg), &v, NULL));
	}
	{
		static const char t5[] = "good \xE2\x82\xAC utf8 \xF0\x9F\x98\x80\n";
		snprintf(msg, sizeof msg, "%s\n", t5);
		signer_line(&me, t5, msg, sizeof msg);
		OK(note_verify(msg, strlen(msg), &v, NULL));
	}
	snprintf(msg, sizeof msg, "%s\n", text);
	signer_line(&me, text, msg, sizeof msg);
	strcat(msg, "- not a signature\n");
	FAILS(note_verify(msg, strlen(msg), &v, NULL));
	snprintf(msg, sizeof msg, "%s\n", text);
	FAILS(note_verify(msg, strlen(msg), &v, NULL));
	/* A NUL byte inside the message is a control character. */
	snprintf(msg, sizeof msg, "%s\n", text);
	signer_line(&me, text, msg, sizeof msg);
	tlen = strlen(msg);
	msg[3] = '\0';
	FAILS(note_verify(msg, tlen, &v, NULL));

	/* At most 100 signatures. */
	snprintf(msg, sizeof msg, "%s\n", text);
	signer_line(&me, text, msg, sizeof msg);
	for (int i = 0; i < 99; i++)
		signer_line(&other, text, msg, sizeof msg);
	OK(note_verify(msg, strlen(msg), &v, NULL));
	signer_line(&other, text, msg, sizeof msg);
	FAILS(note_verify(msg, strlen(msg), &v, NULL));

	EVP_PKEY_free(me.pk);
	EVP_PKEY_free(other.pk);
}

static void test_note_names_and_base64(void **state)
{
	uint8_t out[8];
	size_t n;

	(void)state;
	assert_true(note_valid_name("sum.golang.org", 14));
	assert_true(note_valid_name("h\xC3\xA9llo/x", 8));
	assert_false(note_valid_name("", 0));
	assert_false(note_valid_name("a+b", 3));
	assert_false(note_valid_name("a b", 3));
	assert_false(note_valid_name("a\xC2\xA0" "b", 4));        /* U+00A0 */
	assert_false(note_valid_name("a\xE3\x80\x80" "b", 5));    /* U+3000 */
	assert_false(note_valid_name("a\xFF", 2));

	OK(note_b64_decode("AQID", 4, out, sizeof out, &n));
	assert_int_equal(n, 3);
	OK(note_b64_decode("AQI=", 4, out, sizeof out, &n));
	assert_int_equal(n, 2);
	OK(note_b64_decode("AQ==", 4, out, sizeof out, &n));
	assert_int_equal(n, 1);
	assert_int_equal(out[0], 1);
	OK(note_b64_decode("", 0, out, sizeof out, &n));
	assert_int_equal(n, 0);
	FAILS(note_b64_decode("AQ=", 3, out, sizeof out, &n));
	FAILS(note_b64_decode("A===", 4, out, sizeof out, &n));
	FAILS(note_b64_decode("AQ=A", 4, out, sizeof out, &n));
	FAILS(note_b64_decode("AQ==AQID", 8, out, sizeof out, &n));
	FAILS(note_b64_decode("AQ-_", 4, out, sizeof out, &n));
	FAILS(note_b64_decode("AQIDBAUGBwgJ", 12, out, sizeof out, &n));   /* 9 > 8 */
}

/* ------------------------------------------------------------------ */
/* tlog: hashing, indexes, tree notes, tile paths */

static void test_rfc6962_roots(void **state)
{
	static const char *const leaves[] = {
		"", "\x00", "\x10", "\x20\x21", "\x30\x31", "\x40\x41\x42\x43",
		"\x50\x51\x52\x53\x54\x55\x56\x57",
		"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
	};
	static const size_t lens[] = { 0, 1, 1, 2, 2, 4, 8, 16 };
	static const char *const roots[] = {
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	};
	uint8_t h[8][32], want[32], x[32];

	(void)state;
	for (int i = 0; i < 8; i++)
		tlog_record_hash(leaves[i], lens[i], h[i]);
	hex32(roots[0], want);
	assert_memory_equal(h[0], want, 32);
	tlog_node_hash(h[0], h[1], x);
	hex32(roots[1], want);
	assert_memory_equal(x, want, 32);
	/* The remaining roots are checked by test_tree_hash_vs_mth through
	 * the same recursive definition; pin two more here. */
	{
		uint8_t a[32], b[32], c[32], d[32];
		tlog_node_hash(h[0], h[1], a);
		tlog_node_hash(h[2], h[3], b);
		tlog_node_hash(a, b, c);        /* root of 4 */
		hex32(roots[3], want);
		assert_memory_equal(c, want, 32);
		tlog_node_hash(c, h[4], d);     /* root of 5 */
		hex32(roots[4], want);
		assert_memory_equal(d, want, 32);
	}
}

static void test_stored_hash_index(void **state)
{
	static const struct { int level; int64_t n, index; } v[] = {
		{ 0, 0, 0 }, { 0, 1, 1 }, { 1, 0, 2 }, { 0, 2, 3 }, { 0, 3, 4 },
		{ 1, 1, 5 }, { 2, 0, 6 }, { 0, 4, 7 }, { 0, 5, 8 }, { 1, 2, 9 },
		{ 0, 6, 10 }, { 0, 7, 11 }, { 1, 3, 12 }, { 2, 1, 13 }, { 3, 0, 14 },
	};

	(void)state;
	for (size_t i = 0; i < N(v); i++) {
		int level;
		int64_t n;
		EXPECT(tlog_stored_hash_index(v[i].level, v[i].n) == v[i].index,
		    "StoredHashIndex(%d, %lld)", v[i].level, (long long)v[i].n);
		tlog_split_stored_hash_index(v[i].index, &level, &n);
		EXPECT(level == v[i].level && n == v[i].n, "Split(%lld)", (long long)v[i].index);
	}
	for (int64_t x = 0; x < 100000; x++) {
		int level;
		int64_t n;
		tlog_split_stored_hash_index(x, &level, &n);
		EXPECT(tlog_stored_hash_index(level, n) == x, "round trip %lld", (long long)x);
	}
	{
		int level;
		int64_t n, x = tlog_stored_hash_index(5, ((int64_t)1 << 40) + 3);
		tlog_split_stored_hash_index(x, &level, &n);
		assert_int_equal(level, 5);
		assert_true(n == ((int64_t)1 << 40) + 3);
	}
}

static void test_parse_tree(void **state)
{
	static const char good[] = "go.sum database tree\n5\n"
	    "j4gzsouRX3YePKgUyyG0PAY0tPbXovzlM/z8uUz17fs=\n";
	static const char *const bad[] = {
		"go.sum database tree\n05\nj4gzsouRX3YePKgUyyG0PAY0tPbXovzlM/z8uUz17fs=\n",
		"go.sum database tree\n-1\nj4gzsouRX3YePKgUyyG0PAY0tPbXovzlM/z8uUz17fs=\n",
		"go.sum database tree\n+5\nj4gzsouRX3YePKgUyyG0PAY0tPbXovzlM/z8uUz17fs=\n",
		"go.sum database tree\n\nj4gzsouRX3YePKgUyyG0PAY0tPbXovzlM/z8uUz17fs=\n",
		"go.sum database tree\n5\nj4gzsouRX3YePKgUyyG0PAY0tPbXovzlM/z8uUz17fs=",
		"go.sum database tree\n5\nj4gzsouRX3YePKgUyyG0PAY0tPbXovzlM/z8uUz17f=\n",
		"go.sum database tree\n5\nj4gzsouRX3YePKgUyyG0PAY0tPbXovzlM/z8uUz17fsAAAA\n",
		"go.sum database tree v2\n5\nj4gzsouRX3YePKgUyyG0PAY0tPbXovzlM/z8uUz17fs=\n",
		"go.sum database tree\n99999999999999999999\nj4gzsouRX3YePKgUyyG0PAY0tPbXovzlM/z8uUz17fs=\n",
		"",
	};
	struct tlog_tree t;
	char buf[256];

	(void)state;
	OK(tlog_parse_tree(good, strlen(good), &t));
	assert_int_equal(t.n, 5);
	assert_int_equal(t.hash[0], 0x8f);
	snprintf(buf, sizeof buf, "%sextra line\nmore\n", good);
	OK(tlog_parse_tree(buf, strlen(buf), &t));
	assert_int_equal(t.n, 5);
	OK(tlog_parse_tree("go.sum database tree\n0\n"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", 68, &t));
	assert_int_equal(t.n, 0);
	for (size_t i = 0; i < N(bad); i++)
		EXPECT(tlog_parse_tree(bad[i], strlen(bad[i]), &t) != NULL, "accepted %s", bad[i]);
}

static void test_tile_paths(void **state)
{
	static const struct { struct tlog_tile t; const char *path; } v[] = {
		{ { 8, 0, 1234067, 1 }, "tile/8/0/x001/x234/067.p/1" },
		{ { 8, 0, 1234067, 256 }, "tile/8/0/x001/x234/067" },
		{ { 3, 4, 1234067, 1 }, "tile/3/4/x001/x234/067.p/1" },
		{ { 3, 4, 1234067, 8 }, "tile/3/4/x001/x234/067" },
		{ { 8, -1, 0, 256 }, "tile/8/data/000" },
		{ { 8, -1, 7, 3 }, "tile/8/data/007.p/3" },
		{ { 8, 2, 0, 255 }, "tile/8/2/000.p/255" },
		{ { 8, 1, 1000, 256 }, "tile/8/1/x001/000" },
		{ { 8, 1, 999, 256 }, "tile/8/1/999" },
		{ { 30, 63, 123456789, 1 }, "tile/30/63/x123/x456/789.p/1" },
		{ { 1, 0, 0, 1 }, "tile/1/0/000.p/1" },
		{ { 8, 0, 999999999999999999, 256 }, "tile/8/0/x999/x999/x999/x999/x999/999" },
	};
	static const char *const bad[] = {
		"tile/8/0/1234067", "tile/8/0/x001/x234/67", "tile/8/0/001/234/067",
		"tile/8/0/x001/x234/067.p/0", "tile/8/0/x001/x234/067.p/256",
		"tile/8/0/x001/x234/067.p/01", "tile/8/0/000.p/", "tile/08/0/000",
		"tile/8/00/000", "tile/8/-1/000", "tile/8/64/000", "tile/31/0/000",
		"tile/0/0/000", "tile/8/0/x000/001", "tile/8/0/", "tile/8/0",
		"tile/8/Data/000", "tiles/8/0/000", "/tile/8/0/000", "tile/8/0/000/",
		"tile/8/0/x1000/000", "tile/8/0/000.p/1/", "tile/8/0/0000",
		"tile/+8/0/000", "tile/8/+0/000", "tile/8/0/+00",
		"tile/8/0/x009/x223/x372/x036/x854/x775/x807/000",
		"tile/8/0/x001/x000/x000/x000/x000/x000/000",   /* n >= 10^18 */
	};
	char buf[TLOG_TILE_PATH_MAX];
	struct tlog_tile t;

	(void)state;
	for (size_t i = 0; i < N(v); i++) {
		OK(tlog_tile_path(&v[i].t, buf, sizeof buf));
		EXPECT(strcmp(buf, v[i].path) == 0, "path %s, want %s", buf, v[i].path);
		OK(tlog_parse_tile_path(v[i].path, &t));
		EXPECT(t.h == v[i].t.h && t.l == v[i].t.l && t.n == v[i].t.n && t.w == v[i].t.w,
		    "parse %s", v[i].path);
	}
	for (size_t i = 0; i < N(bad); i++)
		EXPECT(tlog_parse_tile_path(bad[i], &t) != NULL, "accepted %s", bad[i]);
	FAILS(tlog_tile_path(&(struct tlog_tile){ 8, 0, 0, 257 }, buf, sizeof buf));
	FAILS(tlog_tile_path(&(struct tlog_tile){ 8, 0, 1234067, 1 }, buf, 10));

	/* TileForIndex */
	t = tlog_tile_for_index(8, tlog_stored_hash_index(0, 1234067 * 256 + 5));
	assert_true(t.l == 0 && t.n == 1234067 && t.w == 6);
	t = tlog_tile_for_index(8, tlog_stored_hash_index(8, 300));
	assert_true(t.l == 1 && t.n == 1 && t.w == 45);
	t = tlog_tile_for_index(2, tlog_stored_hash_index(1, 1));
	assert_true(t.l == 0 && t.n == 0 && t.w == 4);
}

static void test_parse_lookup(void **state)
{
	int64_t id;
	const char *rec, *note;
	size_t rlen, nlen;
	char buf[1024];

	(void)state;
	OK(sumdb_parse_lookup(lookup3, strlen(lookup3), &id, &rec, &rlen, &note, &nlen));
	assert_int_equal(id, 3);
	assert_true(rec == lookup3 + 2);
	assert_int_equal(rlen, strlen(
	    "example.com/m3 v1.0.3 h1:R9FgfvyS5OO3Zb5lx+wqwGNSRFXTauIBrsfMzUpuQx4=\n"
	    "example.com/m3 v1.0.3/go.mod h1:FTgSrl/qC3OgEb8ovXzqk2REN8P+MmC3stfh4vn0a94=\n"));
	assert_true(rec[rlen - 1] == '\n');
	assert_true(note == rec + rlen + 1);
	assert_int_equal(nlen, strlen(lookup3) - (size_t)(note - lookup3));
	assert_memory_equal(note, "go.sum database tree\n", 21);

	static const char *const bad[] = {
		"", "3", "3\n", "x\nrec\n\nnote", "-3\nrec\n\nnote", "+3\nrec\n\nnote",
		"03\nrec\n\nnote", "3\nrec\nnote", "3\nre\tc\n\nnote", "3\nr\xFF" "ec\n\nnote",
		"99999999999999999999\nrec\n\nnote",
	};
	for (size_t i = 0; i < N(bad); i++)
		EXPECT(sumdb_parse_lookup(bad[i], strlen(bad[i]), &id, &rec, &rlen, &note, &nlen) != NULL,
		    "accepted %s", bad[i]);
	snprintf(buf, sizeof buf, "0\nrec\n\n");
	OK(sumdb_parse_lookup(buf, strlen(buf), &id, &rec, &rlen, &note, &nlen));
	assert_int_equal(nlen, 0);
}

/* ------------------------------------------------------------------ */
/* tlog: an in-memory log and tile reader */

#define MAXLV 40

struct store {
	int h;
	int64_t n;                      /* leaves */
	uint8_t (*lv[MAXLV])[32];       /* lv[k][i]: hash of leaves [i 2^k, (i+1) 2^k) */
	int64_t cnt[MAXLV];
	/* Tampering: flip a bit of hash slot `slot` of tile (tl, tn). */
	bool tamper, forge;             /* forge: write forged[] instead */
	int tl, slot;
	int64_t tn;
	uint8_t forged[32];
	/* Fetch log and failure injection. */
	struct tlog_tile seen[512];
	int nseen;
	const char *fail;
	bool short_tile;
};

static void leaf_data(int64_t i, int variant, char *buf, size_t sz)
{
	snprintf(buf, sz, variant ? "leaf %lld (fork)\n" : "leaf %lld\n", (long long)i);
}

/* Leaves 0..n-1; leaf `forked` (if >= 0) has other data. */
static void store_init(struct store *s, int h, int64_t n, int64_t forked)
{
	char buf[64];

	memset(s, 0, sizeof *s);
	s->h = h;
	s->n = n;
	for (int k = 0; k < MAXLV; k++) {
		s->cnt[k] = n >> k;
		s->lv[k] = s->cnt[k] ? calloc((size_t)s->cnt[k], 32) : NULL;
	}
	for (int64_t i = 0; i < n; i++) {
		leaf_data(i, i == forked, buf, sizeof buf);
		tlog_record_hash(buf, strlen(buf), s->lv[0][i]);
	}
	for (int k = 1; k < MAXLV; k++)
		for (int64_t i = 0; i < s->cnt[k]; i++)
			tlog_node_hash(s->lv[k - 1][2 * i], s->lv[k - 1][2 * i + 1], s->lv[k][i]);
}

static void store_free(struct store *s)
{
	for (int k = 0; k < MAXLV; k++)
		free(s->lv[k]);
}

static const char *store_read(void *arg, const struct tlog_tile *t, uint8_t **data, size_t *len)
{
	struct store *s = arg;
	int level = t->l * t->h;
	int64_t start = t->n << t->h;
	uint8_t *d;

	if (s->fail != NULL)
		return s->fail;
	if (t->h != s->h || t->l < 0 || level >= MAXLV || start + t->w > s->cnt[level])
		return "store: no such tile";
	if (s->nseen < (int)N(s->seen))
		s->seen[s->nseen++] = *t;
	d = malloc((size_t)t->w * 32);
	memcpy(d, s->lv[level][start], (size_t)t->w * 32);
	if (s->tamper && t->l == s->tl && t->n == s->tn && s->slot < t->w) {
		if (s->forge)
			memcpy(d + s->slot * 32, s->forged, 32);
		else
			d[s->slot * 32 + 7] ^= 0x10;
	}
	*data = d;
	*len = (size_t)t->w * 32 - (s->short_tile ? 1 : 0);
	return NULL;
}

/* RFC 6962 MTH over leaves [lo, hi) of s, recursively. */
static void mth(const struct store *s, int64_t lo, int64_t hi, uint8_t out[32])
{
	int64_t k = 1;
	uint8_t l[32], r[32];

	if (hi - lo == 1) {
		memcpy(out, s->lv[0][lo], 32);
		return;
	}
	while (k * 2 < hi - lo)
		k *= 2;
	mth(s, lo, lo + k, l);
	mth(s, lo + k, hi, r);
	tlog_node_hash(l, r, out);
}

static struct tlog_tree tree_of(const struct store *s, int64_t n)
{
	struct tlog_tree t = { .n = n };

	if (n > 0)
		mth(s, 0, n, t.hash);
	return t;
}

static void test_tree_hash_vs_mth(void **state)
{
	static const int heights[] = { 1, 2, 3, 8 };
	struct store s;
	uint8_t got[32];

	(void)state;
	for (size_t hi = 0; hi < N(heights); hi++) {
		store_init(&s, heights[hi], 1100, -1);
		for (int64_t n = 0; n <= 1100; n++) {
			struct tlog_tree t = tree_of(&s, n);
			OK(tlog_tree_hash(heights[hi], n, store_read, &s, got));
			EXPECT(memcmp(got, t.hash, 32) == 0, "h=%d n=%lld", heights[hi], (long long)n);
		}
		store_free(&s);
	}
	/* RFC 6962 vectors, through tiles. */
	{
		static const char *const leaves[] = {
			"", "\x00", "\x10", "\x20\x21", "\x30\x31", "\x40\x41\x42\x43",
			"\x50\x51\x52\x53\x54\x55\x56\x57",
			"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
		};
		static const size_t lens[] = { 0, 1, 1, 2, 2, 4, 8, 16 };
		static const char *const roots[] = {
			"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
			"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
			"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
			"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
			"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
			"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
		};
		uint8_t want[32];
		store_init(&s, 2, 8, -1);
		for (int i = 0; i < 8; i++)
			tlog_record_hash(leaves[i], lens[i], s.lv[0][i]);
		for (int k = 1; k < MAXLV; k++)
			for (int64_t i = 0; i < s.cnt[k]; i++)
				tlog_node_hash(s.lv[k - 1][2 * i], s.lv[k - 1][2 * i + 1], s.lv[k][i]);
		for (int n = 3; n <= 8; n++) {
			OK(tlog_tree_hash(2, n, store_read, &s, got));
			hex32(roots[n - 3], want);
			EXPECT(memcmp(got, want, 32) == 0, "RFC 6962 root of %d", n);
		}
		store_free(&s);
	}
	FAILS(tlog_tree_hash(0, 5, store_read, &s, got));
	FAILS(tlog_tree_hash(8, -1, store_read, &s, got));
}

static void check_all_records(int h, int64_t maxn, bool tamper_all)
{
	struct store s;
	char rec[64];

	store_init(&s, h, maxn, -1);
	for (int64_t n = 1; n <= maxn; n++) {
		struct tlog_tree t = tree_of(&s, n);
		for (int64_t id = 0; id < n; id++) {
			struct tlog_tile seen[512];
			int nseen;

			leaf_data(id, 0, rec, sizeof rec);
			s.nseen = 0;
			OK(tlog_check_record(h, &t, id, rec, strlen(rec), store_read, &s));
			leaf_data(id, 1, rec, sizeof rec);
			EXPECT(tlog_check_record(h, &t, id, rec, strlen(rec), store_read, &s) != NULL,
			    "h=%d n=%lld: other data accepted as record %lld", h, (long long)n, (long long)id);
			leaf_data(id + 1, 0, rec, sizeof rec);
			EXPECT(tlog_check_record(h, &t, id, rec, strlen(rec), store_read, &s) != NULL,
			    "h=%d n=%lld: record %lld accepted as %lld", h, (long long)n,
			    (long long)id + 1, (long long)id);
			if (!tamper_all)
				continue;
			/* Every hash of every tile read is authenticated. */
			nseen = s.nseen;
			memcpy(seen, s.seen, sizeof seen);
			leaf_data(id, 0, rec, sizeof rec);
			for (int i = 0; i < nseen; i++) {
				for (int slot = 0; slot < seen[i].w; slot++) {
					s.tamper = true, s.tl = seen[i].l, s.tn = seen[i].n, s.slot = slot;
					EXPECT(tlog_check_record(h, &t, id, rec, strlen(rec), store_read, &s) != NULL,
					    "h=%d n=%lld id=%lld: tampered tile L=%d N=%lld slot %d accepted",
					    h, (long long)n, (long long)id, seen[i].l, (long long)seen[i].n, slot);
					s.tamper = false;
				}
			}
		}
	}
	store_free(&s);
}

static void test_check_record_h2(void **state)
{
	(void)state;
	check_all_records(2, 70, true);
}

static void test_check_record_h8(void **state)
{
	(void)state;
	check_all_records(8, 20, true);
	/* Larger trees, with full tiles and level-1 (and level-2) tiles. */
	{
		struct store s;
		char rec[64];
		static const int64_t sizes[] = { 255, 256, 257, 511, 512, 513, 65535, 65536, 65537, 70000 };
		store_init(&s, 8, 70000, -1);
		for (size_t i = 0; i < N(sizes); i++) {
			struct tlog_tree t = tree_of(&s, sizes[i]);
			static const int64_t ids[] = { 0, 1, 255, 256, 300, 511, 512, 65535, 65536, 69999 };
			for (size_t j = 0; j < N(ids); j++) {
				if (ids[j] >= sizes[i])
					continue;
				leaf_data(ids[j], 0, rec, sizeof rec);
				OK(tlog_check_record(8, &t, ids[j], rec, strlen(rec), store_read, &s));
				leaf_data(ids[j], 1, rec, sizeof rec);
				FAILS(tlog_check_record(8, &t, ids[j], rec, strlen(rec), store_read, &s));
			}
		}
		/* In a tree of 70000 the proof for record 300 needs the full
		 * tile 0/001, the full level-1 tile 1/000, and the partial tiles
		 * of the size decomposition. Tamper the full level-0 tile. */
		{
			struct tlog_tree t = tree_of(&s, 70000);
			leaf_data(300, 0, rec, sizeof rec);
			s.tamper = true, s.tl = 0, s.tn = 1, s.slot = 200;
			FAILS(tlog_check_record(8, &t, 300, rec, strlen(rec), store_read, &s));
			s.tl = 1, s.tn = 0, s.slot = 1;
			FAILS(tlog_check_record(8, &t, 300, rec, strlen(rec), store_read, &s));
			s.tl = 2, s.tn = 0, s.slot = 0;
			FAILS(tlog_check_record(8, &t, 300, rec, strlen(rec), store_read, &s));
			s.tamper = false;
		}
		store_free(&s);
	}
}

/* A forged record with a forged full level-0 tile that holds its hash,
 * while the tree-size tiles stay honest: what the go command of Go 1.19
 * accepts (its TileHashReader starts the parent checks at len(stx) and so
 * skips this tile; see tests/lib/fakesumdb.py mode forged-tile). */
static void test_forged_full_tile(void **state)
{
	static const char forged[] = "example.com/evil v1.0.0 h1:AAAA\n";
	struct store s;
	struct tlog_tree t;

	(void)state;
	store_init(&s, 8, 300, -1);
	t = tree_of(&s, 300);
	s.tamper = s.forge = true;
	s.tl = 0, s.tn = 0, s.slot = 5;
	tlog_record_hash(forged, strlen(forged), s.forged);
	FAILS(tlog_check_record(8, &t, 5, forged, strlen(forged), store_read, &s));
	/* The same forgery inside a tree-size (partial) tile is caught by
	 * the root: record 260 of 300 lives in tile 0/001.p/44. */
	s.tn = 1, s.slot = 4;
	FAILS(tlog_check_record(8, &t, 260, forged, strlen(forged), store_read, &s));
	store_free(&s);
}

static void test_check_record_failures(void **state)
{
	static const char my_err[] = "network is down";
	struct store s;
	struct tlog_tree t;
	char rec[64];

	(void)state;
	store_init(&s, 8, 600, -1);
	t = tree_of(&s, 600);
	leaf_data(42, 0, rec, sizeof rec);
	OK(tlog_check_record(8, &t, 42, rec, strlen(rec), store_read, &s));
	/* id out of range */
	FAILS(tlog_check_record(8, &t, 600, rec, strlen(rec), store_read, &s));
	FAILS(tlog_check_record(8, &t, -1, rec, strlen(rec), store_read, &s));
	/* wrong root */
	t.hash[0] ^= 1;
	FAILS(tlog_check_record(8, &t, 42, rec, strlen(rec), store_read, &s));
	t.hash[0] ^= 1;
	/* wrong size for the same root */
	t.n = 599;
	FAILS(tlog_check_record(8, &t, 42, rec, strlen(rec), store_read, &s));
	t.n = 600;
	/* the record text must match exactly (the trailing newline counts) */
	FAILS(tlog_check_record(8, &t, 42, rec, strlen(rec) - 1, store_read, &s));
	/* reader errors come back unchanged */
	s.fail = my_err;
	assert_ptr_equal(tlog_check_record(8, &t, 42, rec, strlen(rec), store_read, &s), my_err);
	s.fail = NULL;
	/* short tile data */
	s.short_tile = true;
	FAILS(tlog_check_record(8, &t, 42, rec, strlen(rec), store_read, &s));
	s.short_tile = false;
	/* a different tile height than the store's: the reader fails */
	FAILS(tlog_check_record(4, &t, 42, rec, strlen(rec), store_read, &s));
	FAILS(tlog_check_record(31, &t, 42, rec, strlen(rec), store_read, &s));
	/* empty tree */
	t.n = 0;
	FAILS(tlog_check_record(8, &t, 0, rec, strlen(rec), store_read, &s));
	store_free(&s);
}

static void test_fakesumdb_lookup(void **state)
{
	struct note_verifier v;
	struct tlog_tree t;
	int64_t id;
	const char *rec, *note;
	size_t rlen, nlen, tlen;
	struct store s;
	char bad[1024];

	(void)state;
	/* A store whose level-0 row is the served tile. */
	memset(&s, 0, sizeof s);
	s.h = 8;
	s.n = 5;
	s.cnt[0] = 5;
	s.lv[0] = malloc(sizeof tile5);
	memcpy(s.lv[0], tile5, sizeof tile5);

	OK(note_parse_vkey(TEST_VKEY, &v));
	OK(sumdb_parse_lookup(lookup3, strlen(lookup3), &id, &rec, &rlen, &note, &nlen));
	OK(note_verify(note, nlen, &v, &tlen));
	OK(tlog_parse_tree(note, tlen, &t));
	assert_int_equal(t.n, 5);
	OK(tlog_check_record(8, &t, id, rec, rlen, store_read, &s));
	assert_int_equal(s.nseen, 1);
	assert_true(s.seen[0].l == 0 && s.seen[0].n == 0 && s.seen[0].w == 5);

	/* The record with one hash changed. */
	memcpy(bad, rec, rlen);
	bad[30] = bad[30] == 'A' ? 'B' : 'A';
	FAILS(tlog_check_record(8, &t, id, bad, rlen, store_read, &s));
	/* The right record under another id. */
	FAILS(tlog_check_record(8, &t, 2, rec, rlen, store_read, &s));
	/* A tampered tile. */
	s.tamper = true, s.tl = 0, s.tn = 0, s.slot = 0;
	FAILS(tlog_check_record(8, &t, id, rec, rlen, store_read, &s));
	s.tamper = false;
	/* The tree hash from the tile alone matches the signed root. */
	{
		uint8_t h[32];
		OK(tlog_tree_hash(8, 5, store_read, &s, h));
		assert_memory_equal(h, t.hash, 32);
	}
	free(s.lv[0]);
}

static void test_consistency(void **state)
{
	static const int heights[] = { 2, 8 };
	struct store honest, fork;
	struct tlog_tree o, nw;

	(void)state;
	for (size_t hi = 0; hi < N(heights); hi++) {
		int h = heights[hi];
		store_init(&honest, h, 300, -1);
		store_init(&fork, h, 300, 3);
		for (int64_t n = 1; n <= 300; n += (n < 40 ? 1 : 37)) {
			nw = tree_of(&honest, n);
			for (int64_t m = 0; m <= n; m++) {
				o = tree_of(&honest, m);
				EXPECT(tlog_check_consistency(h, &o, &nw, store_read, &honest) == NULL,
				    "h=%d: %lld -> %lld", h, (long long)m, (long long)n);
				/* The forked history (leaf 3 rewritten) is not a prefix. */
				if (m > 3) {
					o = tree_of(&fork, m);
					const char *err = tlog_check_consistency(h, &o, &nw, store_read, &honest);
					EXPECT(err != NULL && strncmp(err, "SECURITY ERROR", 14) == 0,
					    "h=%d: fork %lld -> %lld: %s", h, (long long)m, (long long)n, err);
					/* Seen from the fork's side, with the fork's tiles. */
					o = tree_of(&honest, m);
					nw = tree_of(&fork, n);
					EXPECT(tlog_check_consistency(h, &o, &nw, store_read, &fork) != NULL,
					    "h=%d: honest %lld -> fork %lld", h, (long long)m, (long long)n);
					nw = tree_of(&honest, n);
					/* The forked log's tiles do not support the honest root. */
					EXPECT(tlog_check_consistency(h, &o, &nw, store_read, &fork) != NULL,
					    "h=%d: fork tiles %lld -> %lld", h, (long long)m, (long long)n);
				}
			}
		}
		/* Old larger than new; a non-empty old tree of size 0. */
		o = tree_of(&honest, 10);
		nw = tree_of(&honest, 9);
		FAILS(tlog_check_consistency(h, &o, &nw, store_read, &honest));
		o = tree_of(&honest, 0);
		o.hash[5] = 1;
		FAILS(tlog_check_consistency(h, &o, &nw, store_read, &honest));
		o = tree_of(&honest, 0);
		nw = tree_of(&honest, 0);
		OK(tlog_check_consistency(h, &o, &nw, store_read, &honest));
		store_free(&honest);
		store_free(&fork);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dirhash_mod),
		cmocka_unit_test(test_dirhash_zip_matches_go),
		cmocka_unit_test(test_dirhash_zip_errors),
		cmocka_unit_test(test_vkey_sum_golang_org),
		cmocka_unit_test(test_note_fakesumdb_vector),
		cmocka_unit_test(test_note_rules),
		cmocka_unit_test(test_note_names_and_base64),
		cmocka_unit_test(test_rfc6962_roots),
		cmocka_unit_test(test_stored_hash_index),
		cmocka_unit_test(test_parse_tree),
		cmocka_unit_test(test_tile_paths),
		cmocka_unit_test(test_parse_lookup),
		cmocka_unit_test(test_tree_hash_vs_mth),
		cmocka_unit_test(test_check_record_h2),
		cmocka_unit_test(test_check_record_h8),
		cmocka_unit_test(test_forged_full_tile),
		cmocka_unit_test(test_check_record_failures),
		cmocka_unit_test(test_fakesumdb_lookup),
		cmocka_unit_test(test_consistency),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
