/*
 * catalog: an in-memory index of the module versions in the cache, for
 * the front page and /catalog (frontpage.h).  A version is listed while
 * at least one of its .info, .mod and .zip files is cached; the index
 * remembers which of the three, and when the newest was cached.
 *
 * It is kept up to date by events, never by walking the tree per
 * request: catalog_note() when a file is published (store.c, cache.c),
 * catalog_forget() when one is evicted (gc.c).  catalog_start() rebuilds
 * it from the cache directory on a thread of its own, so start-up and
 * hits never wait for the walk; a file evicted while the walk runs is
 * kept out of what the walk found.
 *
 * Memory is bounded: at most CATALOG_MAX_VERSIONS versions are listed;
 * further ones are left out, and catalog_stats() says so until goproxyd
 * restarts.  Every entry costs a small block plus its version string, and
 * a module's path is stored once for all its versions.
 *
 * Contract: keys are cache keys (cache.h), "<esc path>/@v/<esc version>.ext";
 * other keys are ignored.  Every function is safe from any thread; the
 * readers hold the index's lock only while they copy out what they were
 * asked for, through the visitor, which must not call back into the
 * catalog.  Without catalog_start() (goproxyd gc, unit tests of other
 * files) catalog_note() and catalog_forget() do nothing.  Strings handed to
 * a visitor are the escaped forms and live only for the call.
 */
#ifndef GOPROXYD_CATALOG_H
#define GOPROXYD_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CATALOG_MAX_VERSIONS 1000000

/* Which of a version's files are cached. */
enum { CATALOG_INFO = 1, CATALOG_MOD = 2, CATALOG_ZIP = 4 };

struct catalog_stats {
	size_t versions, modules;
	bool full;             /* a version was left out for CATALOG_MAX_VERSIONS */
	size_t bytes;          /* memory the index allocated (blocks, strings, array) */
	bool building;         /* the start-up walk is still running */
};

/* One listed version; esc_path and esc_version are valid during the call.
 * A non-zero return stops the walk. */
typedef int (*catalog_visit_fn)(void *arg, const char *esc_path, const char *esc_version,
                                unsigned files, int64_t time_s);

/* Enables the index and starts the walk of root (the cache directory). */
int catalog_start(const char *root);
/* Stops the walk if it still runs, and frees the index. */
void catalog_stop(void);
/* A file was published under key, at time_s (seconds since the epoch). */
void catalog_note(const char *key, int64_t time_s);
/* The file under key is gone; key may also be a version's unit
 * "<esc path>/@v/<esc version>" (gc.h), which forgets all its files. */
void catalog_forget(const char *key);

void catalog_stats(struct catalog_stats *st);

/* Up to max versions in (escaped path, escaped version) byte order,
 * starting after (after_path, after_version) when after_path is not NULL.
 * *more says whether further versions follow the last one visited. */
void catalog_walk(const char *after_path, const char *after_version, size_t max,
                  catalog_visit_fn fn, void *arg, bool *more);
/* The versions of modules whose path (as the go command writes it, not
 * escaped) contains q, ignoring case: at most max versions, in the order
 * of catalog_walk; *more as there. */
void catalog_search(const char *q, size_t max, catalog_visit_fn fn, void *arg, bool *more);
/* The max most recently cached versions, newest first. */
void catalog_recent(size_t max, catalog_visit_fn fn, void *arg);

/* For unit tests: the index without its walk, and its walk run here. */
void catalog_enable_for_test(void);
int catalog_rebuild_now(const char *root);

#endif
