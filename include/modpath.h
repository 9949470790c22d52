/*
 * modpath: the go command's module path and version rules
 * (golang.org/x/mod/module and golang.org/x/mod/semver), as pure functions.
 *
 * Contract: nothing here allocates, touches the filesystem or keeps state.
 * Functions that can fail return NULL on success and a static, one-line,
 * human-readable reason on failure (suitable as an HTTP 400 body).
 * Output buffers are always NUL-terminated on success; on failure their
 * contents are unspecified.
 */
#ifndef GOPROXYD_MODPATH_H
#define GOPROXYD_MODPATH_H

#include <stdbool.h>
#include <stddef.h>

/* Bounds a disk cache must impose (x/mod has none), on escaped forms.
 * route_parse() enforces them: an escaped path of at most MP_PATH_MAX - 1
 * bytes (buffers of MP_PATH_MAX hold it with its NUL), each escaped path
 * element and the escaped version at most MP_ELEM_MAX bytes. */
#define MP_PATH_MAX     512   /* whole escaped module path, with NUL */
#define MP_ELEM_MAX     200   /* one escaped path element, or an escaped version */
#define MP_VERSION_MAX  (MP_ELEM_MAX + 1)

/* module.CheckPath: general path checks plus the module-specific ones
 * (first element, major-version suffix, gopkg.in). */
const char *mp_check_path(const char *path);

/* module's checkElem(elem, filePath) plus EscapeVersion's "no '!'": the
 * file-name element check that versions and version queries must pass.
 * Stricter than x/mod in one way: non-ASCII letters are refused (x/mod
 * would accept them here but cannot escape them). */
const char *mp_check_version_elem(const char *v);

/* module.CheckFilePath on path[0..n): a file path inside a module zip.
 * NULL if valid, else a static reason.  As in x/mod, an element may hold
 * any Unicode letter (unicode.IsLetter, as of the Go release unicode.h was
 * generated from), in strictly valid UTF-8; no other non-ASCII rune. */
const char *mp_check_file_path(const char *path, size_t n);

/* Case-encoding: each 'A'-'Z' becomes '!' + lowercase. Fails if the result
 * does not fit in outsz, or (as x/mod's escapeString) on '!' or non-ASCII.
 * Does not otherwise validate (callers validate first). */
const char *mp_escape(const char *in, char *out, size_t outsz);

/* module.UnescapePath: strict '!' decoding (no raw uppercase, no bytes
 * >= 0x80, '!' only before 'a'-'z'), then mp_check_path. */
const char *mp_unescape_path(const char *esc, char *out, size_t outsz);

/* module.UnescapeVersion: strict '!' decoding, then mp_check_version_elem. */
const char *mp_unescape_version(const char *esc, char *out, size_t outsz);

/* semver.IsValid. */
bool mp_semver_valid(const char *v);

/* semver.IsValid(v) && module.CanonicalVersion(v) == v
 * (vX.Y.Z[-pre], build metadata only as "+incompatible"). */
bool mp_is_canonical(const char *v);

/* module.IsPseudoVersion. */
bool mp_is_pseudo(const char *v);

/* module.CheckPathMajor(version, pathMajor-of-path): does this canonical
 * version fit this module path (/vN suffix, gopkg.in .vN, +incompatible)?
 * Like module.Check it first requires semver.IsValid(version); the path
 * must already have passed mp_check_path. */
const char *mp_check_path_major(const char *path, const char *version);

/* semver.Compare for valid versions: <0, 0, >0. An invalid version sorts
 * before every valid one, and two invalid ones compare equal. */
int mp_semver_compare(const char *a, const char *b);

#endif
