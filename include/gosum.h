/*
 * gosum: the module lists that `goproxyd prefetch` and `goproxyd import`
 * take as arguments.
 *
 *   go.sum         "<module> <version> h1:<hash>" and
 *                  "<module> <version>/go.mod h1:<hash>" lines: what to
 *                  fetch, and the hash each fetched file must have (a
 *                  trust anchor of its own)
 *   module list    "<module> <version>" lines, as `go list -m all` prints
 *                  them (a line without a version, the main module, and
 *                  anything after the version, such as "=> replacement",
 *                  are ignored)
 *
 * Contract: every module path and version that comes out passed the go
 * command's rules (modpath.h; versions canonical).  A malformed line is an
 * error naming its line number; parsing stops there.  Pure apart from
 * gosum_load() reading one file; main thread (the subcommands).  A struct
 * gosum owns its lines (gosum_free()).
 */
#ifndef GOPROXYD_GOSUM_H
#define GOPROXYD_GOSUM_H

#include <stdbool.h>
#include <stddef.h>

#include "dirhash.h"
#include "modpath.h"

struct gosum_line {
	char path[MP_PATH_MAX];
	char version[MP_VERSION_MAX];
	bool gomod;                   /* a "<version>/go.mod" line */
	char hash[DIRHASH_SIZE];      /* "h1:..." */
};

struct gosum {
	struct gosum_line *lines;     /* sorted by (path, version, gomod) once loaded */
	size_t n, cap;
};

/* Adds the lines of buf[0..len) (a go.sum) to g; name is for messages.
 * Returns 0, or -1 with a reason ("go.sum:3: ...") in why. */
int gosum_parse(struct gosum *g, const char *name, const char *buf, size_t len,
                char *why, size_t n);
/* Reads the file at path and parses it (gosum_parse). */
int gosum_load(struct gosum *g, const char *path, char *why, size_t n);
/* Sorts g for gosum_find(); call after the last parse. */
void gosum_sort(struct gosum *g);
/* The h1: hash g holds for path@version's zip (gomod false) or go.mod,
 * or NULL. */
const char *gosum_find(const struct gosum *g, const char *path, const char *version, bool gomod);
void gosum_free(struct gosum *g);

/* Calls fn(arg, path, version) for every "<module> <version>" line of
 * buf[0..len); a non-zero return stops it and is returned.  Returns 0, or
 * -1 with a reason in why for a malformed line. */
int gosum_modlist(const char *buf, size_t len, const char *name,
                  int (*fn)(void *arg, const char *path, const char *version), void *arg,
                  char *why, size_t n);

/* Splits "module@version" into its parts, checked; version may be
 * "latest".  NULL, or a static reason. */
const char *gosum_split_at(const char *arg, char *path, size_t pn, char *version, size_t vn);

#endif
