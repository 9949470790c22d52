/*
 * flight: one upstream fetch per cache key, however many requests want it,
 * and a short memory of files the upstreams said do not exist.
 *
 * Contract: a request that missed the cache calls flight_join() with a
 * waiter it owns.  The first joiner for a key gets the new flight back and
 * must start its fetch (fetch_submit()); later joiners attach to it.  When
 * the fetch ends, whoever ends it (the fetcher or a store thread) calls
 * flight_finish() exactly once, which gives each waiter its own
 * copy of the result (its own fd to the one stored file, never a shared
 * stream) and calls its wake() exactly once.  The waiter must stay valid
 * until then.  flight_finish() frees the flight.
 *
 * A warming flight (warm.h) starts with no waiter, from
 * flight_start_warm(); it stays warm (low priority, see fetchq.h) until a
 * request joins it, which makes it a client's and calls the promoted hook.
 * The finished hook sees every flight that ends, before its result's fd is
 * closed.  Hooks are set once, at start-up, before any flight exists.
 */
#ifndef GOPROXYD_FLIGHT_H
#define GOPROXYD_FLIGHT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cache.h"
#include "route.h"

enum fetch_status {
	FETCH_OK,        /* fd holds the complete, validated answer */
	FETCH_NOTFOUND,  /* every upstream asked said 404/410 */
	FETCH_FAILED,    /* an upstream failed (5xx, timeout, reset, bad content) */
};

struct fetch_result {
	enum fetch_status status;
	int res_fd;              /* FETCH_OK: read-only view of the answer */
	uint64_t size;
	struct timespec mtime;
	char reason[320];        /* otherwise: one line for the client */
};

#define FLIGHT_NOTE_NOTFOUND "notfound "

struct waiter {
	struct waiter *next;
	void (*wake)(struct waiter *w);
	struct fetch_result result;   /* filled before wake() */
};

struct flight {
	struct flight *next;          /* hash chain */
	struct waiter *waiters;
	struct request req;
	atomic_bool fl_warm;          /* warming, and no request has joined */
	bool fl_started_warm;         /* created by flight_start_warm() */
	/* The fetch lock shared with other instances (peer.h), if taken:
	 * flight_finish() lets go of it before any waiter wakes, leaving
	 * FLIGHT_NOTE_NOTFOUND "<reason>" in it for a FETCH_NOTFOUND. */
	struct cache_lock fl_lock;
	bool fl_lock_held;
	bool fl_from_s3;              /* the body being stored came from the S3 store */
	bool fl_s3_replace;           /* the S3 object was refused: overwrite it */
	int64_t fl_s3_fetched;        /* from the S3 store: when it was fetched upstream (Unix s), or 0 */
	char key[CACHE_KEY_MAX];
};

/* Attaches w to the fetch for key.  hold(arg) is called while the table
 * is locked, after w is attached, so a caller can suspend its connection
 * before any wake() can reach it.  Returns the flight if this call created
 * it (the caller then starts its fetch), NULL if it joined one. */
struct flight *flight_join(const struct request *r, const char *key, struct waiter *w,
                           void (*hold)(void *), void *arg);

/* Creates a warming flight for key, with no waiter: NULL if a fetch of key
 * is already in progress.  The caller starts its fetch. */
struct flight *flight_start_warm(const struct request *r, const char *key);
/* Is f still warming only (no request joined)?  Any thread. */
bool flight_is_warm(const struct flight *f);

/* Ends the fetch: takes ownership of res->res_fd (closed here). */
void flight_finish(struct flight *f, const struct fetch_result *res);

/* promoted(): a request joined a warming flight (called outside the lock).
 * finished(f, res, warm): f ended with res (res_fd still open); warm says
 * no request ever joined it.  Either may be NULL. */
void flight_set_hooks(void (*promoted)(void),
                      void (*finished)(const struct flight *f, const struct fetch_result *res,
                                       bool warm));

/* Fetches now running or queued, and the requests waiting on them;
 * flight_count_warm() counts those still warming only. */
unsigned flight_count(void);
unsigned flight_count_warm(void);
unsigned flight_waiters(void);

/* Negative cache: remember that key was not found, for ttl_ms. */
void negcache_add(const char *key, const char *reason, int64_t ttl_ms);
/* True (and reason copied) if key was recently not found. */
bool negcache_get(const char *key, char *reason, size_t n);

#endif
