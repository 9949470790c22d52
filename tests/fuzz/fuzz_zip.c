/*
 * fuzz_zip: validate_zip() (src/validate.c), the .zip check, on any bytes.
 * The production function takes a file descriptor, so the input is
 * written to a memfd and the check runs on it unchanged, as the store
 * threads run it on a fetched temp file (module example.com/m, v1.0.0).
 *
 * Invariants: the check leaves the descriptor open and its offset
 * irrelevant (it is run twice, with the same answer); an accepted zip,
 * reopened here with libzip, has only entries named
 * "example.com/m@v1.0.0/..." whose rest is empty or passes
 * module.CheckFilePath (mp_check_file_path).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zip.h>

#include "modpath.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PREFIX "example.com/m@v1.0.0/"

static void check(int ok)
{
	if (!ok)
		abort();
}

/* Every entry of an accepted zip, read back independently. */
static void check_accepted(const uint8_t *data, size_t size)
{
	zip_error_t err;
	zip_source_t *src;
	zip_t *z;
	zip_int64_t n;

	zip_error_init(&err);
	src = zip_source_buffer_create(data, size, 0, &err);
	check(src != NULL);
	z = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
	check(z != NULL);
	n = zip_get_num_entries(z, 0);
	for (zip_int64_t i = 0; i < n; i++) {
		const char *name = zip_get_name(z, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
		size_t len;

		check(name != NULL && strncmp(name, PREFIX, strlen(PREFIX)) == 0);
		name += strlen(PREFIX);
		len = strlen(name);
		if (len > 0 && name[len - 1] == '/')
			len--;
		check(len == 0 || mp_check_file_path(name, len) == NULL);
	}
	zip_discard(z);   /* frees src too */
	zip_error_fini(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz_zip", MFD_CLOEXEC);
	const char *r1, *r2;

	check(fd >= 0);
	check(size == 0 || write(fd, data, size) == (ssize_t)size);
	r1 = validate_zip(fd, "example.com/m", "v1.0.0");
	r2 = validate_zip(fd, "example.com/m", "v1.0.0");
	check(r1 == r2);
	check(r1 == NULL || (r1[0] != '\0' && strchr(r1, '\n') == NULL));
	check(close(fd) == 0);
	if (r1 == NULL)
		check_accepted(data, size);
	return 0;
}
