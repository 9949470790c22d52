/*
 * validate: is an upstream's answer fit to be stored and served?
 *
 * Contract: each check returns NULL if the content is acceptable, or a
 * static one-line reason.  Nothing here writes anything.  A check of
 * buf[0..len) reads only those bytes: buf need not end in a NUL.
 */
#ifndef GOPROXYD_VALIDATE_H
#define GOPROXYD_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "modpath.h"
#include "route.h"

/* Size limits on upstream bodies, by kind (the zip limit is the go
 * command's MaxZipFile, the .mod limit its MaxGoMod). */
uint64_t validate_limit(const struct request *r);

/* .info / @latest: a JSON object whose "Version" is canonical and fits the
 * module path; if want is non-NULL, Version must equal it.  The Version
 * found is copied to version (MP_VERSION_MAX bytes). */
const char *validate_info(const char *buf, size_t len, const char *path,
                          const char *want, char *version);

/* @v/list: text with no NUL bytes whose lines are blank or start with a
 * valid semantic version (any further fields are the go command's). */
const char *validate_list(const char *buf, size_t len);

/* .mod: a well-formed go.mod with a module line (gomod.h).  The module
 * line may name another path: the go command reports that itself. */
const char *validate_mod(const char *buf, size_t len);

/* A checksum database's answer: a hash tile is exactly W*32 bytes, a
 * lookup starts with its record id, latest with a tree note. */
const char *validate_sumdb(const struct request *r, const char *buf, size_t len);

/* .zip: readable by libzip, total uncompressed size within the go
 * command's limit, and every entry named "<path>@<version>/...". */
const char *validate_zip(int fd, const char *path, const char *version);

#endif
