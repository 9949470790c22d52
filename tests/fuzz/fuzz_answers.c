/*
 * fuzz_answers: the checks on an upstream's other answers (src/validate.c):
 * validate_info() (.info and @latest JSON), validate_list() (@v/list) and
 * validate_sumdb() (checksum-database lookups, latest and tiles) on any
 * bytes, in an exactly sized buffer (the contract is buf[0..len)).
 *
 * Invariants: an accepted .info names a canonical version that fits the
 * module path (and equals the wanted one when there is one); an accepted
 * list has no NUL byte and starts every non-blank line with a valid
 * semantic version; an accepted hash tile is exactly W*32 bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modpath.h"
#include "route.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static void check_info(const char *buf, size_t len)
{
	char version[MP_VERSION_MAX];

	if (validate_info(buf, len, "example.com/m/v2", NULL, version) == NULL)
		check(mp_is_canonical(version) &&
		      mp_check_path_major("example.com/m/v2", version) == NULL);
	if (validate_info(buf, len, "example.com/m", "v1.0.0", version) == NULL)
		check(strcmp(version, "v1.0.0") == 0);
}

static void check_list(const char *buf, size_t len)
{
	char v[MP_VERSION_MAX];
	size_t i = 0;

	if (validate_list(buf, len) != NULL)
		return;
	check(memchr(buf, '\0', len) == NULL);
	while (i < len) {
		size_t n = 0;

		while (i < len && strchr(" \t\r\v\f", buf[i]) != NULL)
			i++;
		while (i + n < len && strchr(" \t\r\v\f\n", buf[i + n]) == NULL)
			n++;
		check(n < sizeof v);
		memcpy(v, buf + i, n);
		v[n] = '\0';
		check(n == 0 || mp_semver_valid(v));
		while (i < len && buf[i] != '\n')
			i++;
		i++;
	}
}

static void check_sumdb(const char *buf, size_t len)
{
	static const enum sumdb_kind kinds[] = {
		SUMDB_SUPPORTED, SUMDB_LATEST, SUMDB_LOOKUP, SUMDB_TILE, SUMDB_DATA_TILE,
	};
	struct request r;

	memset(&r, 0, sizeof r);
	r.kind = REQ_SUMDB;
	r.tile_width = 2;
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		r.sumdb_kind = kinds[i];
		if (validate_sumdb(&r, buf, len) == NULL && kinds[i] == SUMDB_TILE)
			check(len == 64);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exactly sized, so ASan sees any read past buf[len - 1]. */
	char *buf = malloc(size ? size : 1);

	check(buf != NULL);
	memcpy(buf, data, size);
	check_info(buf, size);
	check_list(buf, size);
	check_sumdb(buf, size);
	free(buf);
	return 0;
}
