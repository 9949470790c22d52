/*
 * hot: ready responses for small cached files, so a repeated hit costs
 * one fstatat() instead of open, fstat, read, a heap buffer and close.
 *
 * Contract: a response is kept for a small file (at most the small-body
 * size), keyed by its cache key and checked against the file's inode, size
 * and mtime on every use, so a file removed by the disk cap or `goproxyd
 * verify -purge`, or replaced by a refresh, is never served from here.  A
 * response whose headers age (a mutable file's Cache-Control max-age, or
 * its freshness) is kept only until the deadline its caller gives.  The
 * table is direct-mapped with a lock per slot and bounded in bytes;
 * libmicrohttpd's reference counting lets one response be queued on many
 * connections at once.
 */
#ifndef GOPROXYD_HOT_H
#define GOPROXYD_HOT_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"

/* Queues the kept response for key on c if it is still current; returns
 * its body size through *size. */
bool hot_queue(const char *key, struct MHD_Connection *c, uint64_t *size);
/* Keeps r (the caller's reference passes to the table) for the file e
 * describes, until the monotonic time until_ms (0: for as long as the file
 * is unchanged); false, with r untouched, if it is not kept. */
bool hot_put(const char *key, const struct cache_entry *e, struct MHD_Response *r,
             int64_t until_ms);
void hot_clear(void);

#endif
