/*
 * unicode: the two Unicode properties goproxyd needs to check file names
 * inside module zips as golang.org/x/mod does: unicode.IsLetter (module's
 * fileNameOK allows any letter) and x/mod zip's strToFold (its case-fold
 * collision check).  The tables are generated from the Go toolchain's
 * unicode package (tools/mkunicode.go), so they match the go command built
 * with that release, independent of the C library and of the locale.
 *
 * Contract: pure functions over constant tables, safe from any thread.
 */
#ifndef GOPROXYD_UNICODE_H
#define GOPROXYD_UNICODE_H

#include <stdbool.h>
#include <stdint.h>

/* unicode.IsLetter(r); false for a negative r (an invalid rune). */
bool uni_is_letter(int32_t r);

/* The rune strToFold maps r to: the smallest rune equivalent to r under
 * Unicode simple case folding (unicode.SimpleFold's orbit), except that
 * A-Z map to a-z.  Two names collide iff their runes fold alike. */
int32_t uni_fold(int32_t r);

#endif
