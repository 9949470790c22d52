/*
 * verify: a fetched .mod or .zip is checked against the checksum database
 * before it is published, so a poisoned upstream cannot poison the cache.
 *
 *   h1: hash of the file (dirhash.h)
 *   -> the database's lookup record for <path>@<version> (cache or network)
 *   -> its signed tree note, verified with the database's key (note.h)
 *   -> the record's inclusion in that tree, proved through tiles (tlog.h)
 *   -> that tree against the latest tree verified before: a database that
 *      forks or rewinds is caught
 *   -> the record's line for the file equals the hash.
 * Lookups and tiles are stored in the cache only once they are proved.
 *
 * Contract: verify_file() is the synchronous check (used by the verifier
 * thread and by `goproxyd verify`); it returns 0, or -1 with a one-line
 * reason.  verify_submit() queues a check on the verifier pool (a few
 * threads of its own, since a check may wait on the database), which
 * calls done() exactly once, with NULL for a file that passed.  Nothing
 * here blocks the caller of verify_submit().
 */
#ifndef GOPROXYD_VERIFY_H
#define GOPROXYD_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "route.h"

typedef void (*verify_done_fn)(void *arg, const char *reason);

/* Loads each database's last verified tree from the cache (call after
 * cache_init, httpget_init and sumdb_url_init). */
int verify_init(const struct config *cfg);
/* The verifier pool, for verify_submit(). */
int verify_start(void);
/* Checks what is queued until the deadline, fails what is left, and joins
 * the pool. */
void verify_stop(int64_t deadline_ms);

/* Must r's answer be verified before it is cached?  .mod and .zip, unless
 * -noSumPatterns or -exclude matches or no database is proxied; golang.org/toolchain
 * always. */
bool verify_wanted(const struct request *r);

int verify_file(const struct request *r, int fd, char *reason, size_t n);
/* Just the h1: hash of a .zip or .mod (out: DIRHASH_SIZE bytes). */
int verify_hash(const struct request *r, int fd, char *out, char *reason, size_t n);
/* fd stays the caller's and must stay open until done() is called; done()
 * runs on a verifier thread, or on the caller's if the pool is stopping. */
void verify_submit(const struct request *r, int fd, verify_done_fn done, void *arg);

/* Answers the database's requests from elsewhere than the network:
 * fn(arg, name, rest, &data, &len) returns 0 with a malloc'd copy of the
 * answer to "<database URL>/<rest>" (rest: "lookup/..." or "tile/..."),
 * or -1 for "not there" (a 404).  For `goproxyd import`, whose proofs
 * travel in the bundle; the proofs are checked exactly as fetched ones,
 * and stored in the cache only once they hold.  Set it before any check
 * (not while the verifier pool runs); NULL restores the network. */
typedef int (*verify_source_fn)(void *arg, const char *name, const char *rest, char **data,
                                size_t *len);
void verify_set_source(verify_source_fn fn, void *arg);

/* Files rejected so far. */
uint64_t verify_rejected(void);

#endif
