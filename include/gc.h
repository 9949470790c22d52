/*
 * gc: the disk cap (-cacheMaxSize).  When the cache grows past the cap, a
 * background thread evicts least-recently-used entries until it is back
 * under 90% of the cap.  The units of eviction are whole versions (a
 * version's .info, .mod, .zip and .ziphash together), single mutable files
 * (@v/list, @latest, @query answers: least recently refreshed first) and
 * checksum-database files.  Temp files and goproxyd's verified-tree record
 * are never evicted.
 *
 * "Recently used" is the newest of a unit's mtime and atime and of the
 * last time goproxyd served it (gc_note_use, a lock-free store into a
 * small table, so it costs a hash per hit and no syscall).  A file a
 * request is still reading is unlinked, never truncated: the reader keeps
 * its open file to the end.
 *
 * Contract: gc_run() is one synchronous pass (the thread's, and
 * `goproxyd gc`'s); nothing scans the cache per request.
 */
#ifndef GOPROXYD_GC_H
#define GOPROXYD_GC_H

#include <stdint.h>

#include "config.h"

struct gc_result {
	uint64_t files, bytes;              /* in the cache after the pass */
	uint64_t evicted_units, evicted_bytes;
};

int gc_start(const struct config *cfg);
void gc_stop(void);
/* A cache key was just served. */
void gc_note_use(const char *key);
/* The cache grew: wake the thread if it is over the cap. */
void gc_check(void);
/* Evicted so far by the thread (for /metrics). */
void gc_evicted(uint64_t *units, uint64_t *bytes);

int gc_run(const char *dir, uint64_t max_bytes, struct gc_result *res);

/* `goproxyd gc -cacheDir DIR -cacheMaxSize SIZE`: the exit status. */
int gccmd_main(int argc, char **argv);

#endif
