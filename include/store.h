/*
 * store: a finished transfer becomes a cache file.  On the store's own
 * pool of disk threads, the temp file holding an upstream's answer is
 * validated (validate.h), handed to the checksum database when it must be
 * verified (verify.h), then published (fsync, rename) and its flight
 * ended (flight.h), so every waiting request is answered; the directory
 * fsync follows the answer.  Nothing here touches the network, and the
 * fetcher never waits on the disk.
 *
 *   store_submit ──▶ disk thread: validate ──▶ verifier pool (.mod/.zip)
 *                                   │                 │
 *                                   ▼                 ▼
 *                       disk thread: publish, flight_finish, fsync dir
 *
 * Contract: store_submit() takes ownership of the temp file and never
 * blocks.  It calls done() exactly once, on a store or verifier thread:
 * STORE_FINISHED when the flight has been ended (published, or refused by
 * verification, or the disk failed), STORE_REJECTED with a reason when the
 * content is unfit (the flight is still open: the caller may ask another
 * upstream or end it).
 */
#ifndef GOPROXYD_STORE_H
#define GOPROXYD_STORE_H

#include <stdint.h>

#include "cache.h"
#include "flight.h"

enum store_outcome { STORE_FINISHED, STORE_REJECTED };

typedef void (*store_done_fn)(void *arg, enum store_outcome o, const char *reason);

/* An extra check of every fetched answer, after validation and before
 * checksum-database verification (`goproxyd prefetch` anchors .mod/.zip to
 * a go.sum with it; the daemon sets none).  It reads the temp file on fd
 * (pread, offsets its own) and returns NULL, or a reason (which it may
 * write to buf[0..n)): the answer is then STORE_REJECTED.  Runs on a disk
 * thread; set it before the first fetch. */
typedef const char *(*store_check_fn)(const struct request *r, int fd, char *buf, size_t n);
void store_set_check(store_check_fn fn);

/* The disk pool (call after cache_init and verify_start). */
int store_start(void);
/* Stores what is queued, then joins the pool; call after verify_stop(). */
void store_stop(void);

/* origin: where the body came from (a URL), for messages. */
void store_submit(struct flight *f, struct cache_tmp *tmp, uint64_t size, const char *origin,
                  store_done_fn done, void *arg);

#endif
