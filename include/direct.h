/*
 * direct: a fetch from a module's origin repository ("direct" in -proxy,
 * and every -exclude module), by running the real go command, as every
 * peer does: it knows go-get discovery, GOVCS, git/hg/svn, pseudo-versions,
 * +incompatible, major-version subdirectories and the module zip rules.
 *
 *   .info, .mod, @latest, queries   go list -m -json M@V
 *   .zip                            go mod download -json M@V
 *   @v/list                         go list -m -json -versions -retracted M
 *
 * The children share one GOPATH of goproxyd's own,
 * <cacheDir>/.goproxyd-direct/ (cache.h: CACHE_DIRECT_DIR), so a
 * repository cloned once is reused for its next versions.  That tree is
 * the go command's, never served, exported or evicted as module files.
 * A child runs without a shell (argv only, after route.h validated the
 * path and version), in its own process group, stdin /dev/null, with
 * bounded output; the group is killed after -directTimeout and at
 * shutdown.  At most -maxDirect children run at once; more wait in order.
 * The answer is copied from the child's GOMODCACHE (or, for a list,
 * built from its JSON) into a cache temp file beside the final name, for
 * the caller to hand to the store like any upstream answer.
 *
 * Contract: direct_submit() never blocks and calls done() exactly once, on
 * a direct thread (or on the caller's thread when stopping).  A reason
 * holds no credential (any "user:password@" is removed).  Needs
 * cache_init(); direct_start() is a no-op unless config_uses_direct().
 */
#ifndef GOPROXYD_DIRECT_H
#define GOPROXYD_DIRECT_H

#include <stdint.h>

#include "cache.h"
#include "config.h"
#include "route.h"

enum direct_status {
	DIRECT_OK,        /* tmp holds the answer */
	DIRECT_NOTFOUND,  /* the go command said no: reason is its error */
	DIRECT_FAILED,    /* it could not run, timed out, or goproxyd stops */
};

struct direct_result {
	enum direct_status status;
	struct cache_tmp tmp;     /* DIRECT_OK: owned by the callee of done() */
	uint64_t size;
	char reason[320];
};

typedef void (*direct_done_fn)(void *arg, struct direct_result *res);

/* Checks that the go command runs (else logs why and returns -1) and
 * starts the pool of -maxDirect threads. */
int direct_start(const struct config *cfg);
/* Kills every running child's process group, fails what is queued, and
 * joins the pool.  A no-op when not started. */
void direct_stop(void);

/* Fetches the file key answers r from r->path's origin. */
void direct_submit(const struct request *r, const char *key, direct_done_fn done, void *arg);

/* Children running now (for /metrics). */
uint64_t direct_running(void);

/* Removes "user:password@" after every "://" in s, in place. */
void direct_redact(char *s);

#endif
