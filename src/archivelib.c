/* archivelib: see include/archivelib.h.  Main thread of export/import. */
#include <dlfcn.h>
#include <stdio.h>

#include "archivelib.h"

const struct archivelib *archivelib_load(char *err, size_t errlen)
{
	static struct archivelib lib;
	static int loaded;
	void *h;

	if (loaded)
		return &lib;
	if ((h = dlopen(ARCHIVELIB_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(err, errlen, "cannot load libarchive (install libarchive13): %s", dlerror());
		return NULL;
	}
	/* The handle is kept: the table points into the library until exit. */
#define ARCHIVELIB_RESOLVE(f) \
	if ((*(void **)&lib.f = dlsym(h, #f)) == NULL) { \
		snprintf(err, errlen, "%s: no symbol %s", ARCHIVELIB_SONAME, #f); \
		return NULL; \
	}
	ARCHIVELIB_FUNCS(ARCHIVELIB_RESOLVE)
#undef ARCHIVELIB_RESOLVE
	loaded = 1;
	return &lib;
}
