/*
 * verifycmd: `goproxyd verify`, the offline check of a cache directory.
 * Every cached .zip and .mod is re-hashed and checked against the checksum
 * database (as verify.h does before caching) or, with -gosum FILE, against
 * that go.sum.  Failures are printed one per line ("FAIL <module>@<version>
 * <file>: <reason>"); -purge removes each failing version's files.  Ends
 * with "verified N, failed N, skipped N".
 *
 * Contract: returns the process exit status: 0 nothing failed, 1 something
 * failed (or could not be checked), 2 a usage error.
 */
#ifndef GOPROXYD_VERIFYCMD_H
#define GOPROXYD_VERIFYCMD_H

int verifycmd_main(int argc, char **argv);

#endif
