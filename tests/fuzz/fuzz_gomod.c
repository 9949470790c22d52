/*
 * fuzz_gomod: gomod_parse() (src/gomod.c), the .mod check, on any bytes,
 * with validate_mod()'s call (no callback) and with a require callback.
 * Invariants: both calls agree; an accepted go.mod has a module path that
 * is NUL-terminated in its buffer and non-empty; every require has a
 * non-empty path and a valid semantic version, NUL-terminated; the parse is the same when
 * run twice (no hidden state).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gomod.h"
#include "modpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *on_require(void *arg, const struct gomod_require *req)
{
	size_t *n = arg;

	if (memchr(req->path, '\0', sizeof req->path) == NULL ||
	    memchr(req->version, '\0', sizeof req->version) == NULL)
		abort();
	if (req->path[0] == '\0' || !mp_semver_valid(req->version))
		abort();
	(*n)++;
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct gomod a, b;
	const char *ra, *rb;
	size_t reqs = 0;

	ra = gomod_parse(buf, size, &a, NULL, NULL);
	rb = gomod_parse(buf, size, &b, on_require, &reqs);
	if (ra != rb)
		abort();
	if (ra != NULL)
		return 0;
	if (memchr(a.module, '\0', sizeof a.module) == NULL ||
	    memchr(a.go, '\0', sizeof a.go) == NULL)
		abort();
	if (a.module[0] == '\0' || strcmp(a.module, b.module) != 0 || strcmp(a.go, b.go) != 0)
		abort();
	return 0;
}
