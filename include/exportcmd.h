/*
 * exportcmd: `goproxyd export -cacheDir DIR -o FILE [-since TIME] [GOSUM...]`
 * writes a bundle (bundle.h) of cache entries for the far side of an air
 * gap: all module files, those modified since TIME, or those the given
 * go.sum files name (with their modules' @v/list and @latest); for every
 * .mod/.zip the cached lookup record of each -sumdb database that has
 * one, and that database's cached tiles, so that import can prove each
 * file; and the manifest.
 *
 * The archive is streamed: files are read twice (hashed for the
 * manifest, which comes first, then copied), never held in memory; it is
 * written to a temp file beside FILE, fsynced and renamed.
 *
 * Contract: returns the exit status: 0 written, 1 failed (nothing is left
 * at FILE), 2 a usage error.  Main thread.
 */
#ifndef GOPROXYD_EXPORTCMD_H
#define GOPROXYD_EXPORTCMD_H

int exportcmd_main(int argc, char **argv);

#endif
