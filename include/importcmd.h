/*
 * importcmd: `goproxyd import -cacheDir DIR [-sumdb ...] [-gosum FILE]... FILE`
 * stores a bundle (bundle.h) written by `goproxyd export` into a cache,
 * on the far side of an air gap, trusting nothing in it unproved:
 *
 *   - every entry must be in the manifest with its size and SHA-256, and
 *     every manifest entry must arrive;
 *   - every file must pass the checks a fetched one passes (validate.h);
 *   - every .mod/.zip is proved against the bundled checksum-database
 *     records and tiles (verify.h, fed from the bundle through
 *     verify_set_source(): the signed tree head under the configured
 *     -sumdb key, the record's inclusion proof, the tree against the last
 *     one verified) or, for modules the database does not cover (-sumdb
 *     off, -noSumPatterns), against the -gosum files.
 *
 * A version is stored whole or not at all: a failing file is reported
 * with its reason and nothing of its version is stored.  Each accepted
 * file is published atomically (temp file, fsync, rename), so a daemon may
 * serve the directory meanwhile.  An immutable file that is cached with
 * other content is a conflict: reported, never overwritten (and nothing
 * else of that version is stored).  @v/list files are merged (the union,
 * sorted); an @latest replaces the cached one only if it names a higher
 * version.  Proofs enter the cache only once they hold.
 *
 * Output: "FAIL <path>: <reason>" and "CONFLICT <path>: ..." lines, then
 * "imported N, unchanged N, failed N, conflicts N".
 *
 * Contract: returns the exit status: 0 all stored, 1 anything failed or
 * conflicted, 2 a usage error.  Main thread.
 */
#ifndef GOPROXYD_IMPORTCMD_H
#define GOPROXYD_IMPORTCMD_H

int importcmd_main(int argc, char **argv);

#endif
