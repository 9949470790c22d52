/*
 * glob: GOPRIVATE-style patterns (-exclude, -noSumPatterns), matched the
 * way the go command matches GOPRIVATE: Go's path.Match, and
 * module.MatchPrefixPatterns on top of it.
 *
 * Contract: pure functions over bytes, no allocation, no global state: safe
 * from any thread.  Runes ('?', character classes) are decoded with Go's
 * UTF-8 rules (text.h).  A malformed pattern never matches; config.c
 * refuses one at start-up (glob_path_match(glob, n, "", 0) < 0).
 */
#ifndef GOPROXYD_GLOB_H
#define GOPROXYD_GLOB_H

#include <stdbool.h>
#include <stddef.h>

/* Go's path.Match on spans: 1 match, 0 no match, -1 malformed pattern. */
int glob_path_match(const char *pat, size_t plen, const char *name, size_t nlen);

/* module.MatchPrefixPatterns: does any comma-separated glob match a
 * leading run of path elements of modpath? */
bool config_match_patterns(char *const *globs, size_t n, const char *modpath);

#endif
