/*
 * prefetch: `goproxyd prefetch -cacheDir DIR [daemon flags] [-j N] ARG...`
 * fills a cache ahead of need, for a mirror that will serve offline.
 *
 * ARG is a go.sum (each "M V h1:" line: .info, .mod, .zip; each
 * "M V/go.mod h1:" line: .mod), a go.mod (its requirements and, through
 * their go.mod files, the whole module graph), M@V or M@latest, or "-"
 * (lines "M V" on standard input, as `go list -m all` prints them).  Every
 * module named also gets its @v/list and @latest.
 *
 * Every file goes through the daemon's own pipeline, not a copy of it:
 * flight.h (one fetch per file), fetch.h (the -proxy list and its rules,
 * retries, timeouts; -j is -maxFetches), store.h (validation, checksum
 * database verification, atomic publish).  The go.sum files given are a
 * trust anchor too: a fetched .mod or .zip whose h1: hash differs from its
 * go.sum line is refused (store_set_check()).  A file already in the
 * cache (a mutable one: fresh by -cacheExpire) is not fetched again.
 *
 * Output: progress on standard error (a bar on a terminal, else a line
 * every few seconds); on standard output one "FAIL <module>@<version>
 * <file>: <reason>" line per failure and the summary "fetched N, cached N,
 * failed N".
 *
 * Contract: returns the exit status: 0 all done, 1 something failed (or
 * the cache could not be opened), 2 a usage error.  Main thread; the
 * fetch pipeline's threads only hand results back (wake()).
 */
#ifndef GOPROXYD_PREFETCH_H
#define GOPROXYD_PREFETCH_H

int prefetch_main(int argc, char **argv);

#endif
