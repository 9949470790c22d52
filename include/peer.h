/*
 * peer: one upstream fetch per file among the instances that share a cache
 * directory.  Before a flight's first attempt the fetcher claims the key's
 * fetch lock (cache.h's cache_lock_*).  The instance that gets it fetches;
 * the others wait, without fetching, polling the lock with backoff (20 ms
 * doubling to 500 ms), and serve the file the holder publishes.  When the
 * holder dies the kernel drops its lock and the next waiter takes over the
 * fetch.  A holder that said "not found" leaves that in the lock file, so
 * its waiters answer 404 without asking again.  A holder that shows no
 * sign of progress (its heartbeat, at most once a second while its body
 * arrives) for twice -stallTimeout is given up on: the waiter fetches the
 * file itself, and the rename keeps the duplicate harmless.
 *
 * Contract: everything on the fetcher thread.  The lock lives in the
 * flight (fl_lock), and flight_finish() lets go of it, wherever the fetch
 * ends, before any waiter of this process wakes.  A peer
 * in PEER_WAIT belongs to this file until its resume() is called, exactly
 * once: with finished set, the flight has been ended here (the caller frees
 * what holds the peer); otherwise the caller must fetch the file now.
 */
#ifndef GOPROXYD_PEER_H
#define GOPROXYD_PEER_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "flight.h"

struct peer {
	struct peer *pr_next;         /* in the waiting list */
	struct flight *pr_flight;
	int64_t pr_due_ms;            /* monotonic: next look at the lock */
	int64_t pr_delay_ms;          /* current backoff */
	int64_t pr_moved_ms;          /* monotonic: the holder's heartbeat last moved */
	int64_t pr_stamp;             /* the holder's heartbeat then */
	int64_t pr_touched_ms;        /* holder: our last heartbeat */
	void (*pr_resume)(struct peer *p, bool finished);
};

enum peer_claim {
	PEER_FETCH,   /* fetch it here (holding the lock, or without one) */
	PEER_WAIT,    /* another instance fetches it: resume() follows */
	PEER_DONE,    /* it was published meanwhile: the flight is ended */
};

/* The freshness of mutable files, the negative-cache time and the stall
 * timeout, from the config. */
void peer_init(int64_t expire_ms, int64_t neg_cache_ms, int64_t stall_ms);
void peer_prepare(struct peer *p, struct flight *f, void (*resume)(struct peer *, bool));
enum peer_claim peer_claim(struct peer *p);
/* Looks at the waiting peers that are due; returns the milliseconds until
 * the next is due, or -1 when none waits. */
int64_t peer_poll(void);
/* The holder's heartbeat, rate-limited here. */
void peer_touch(struct peer *p);
/* Shutdown: every waiting peer ends its flight with FETCH_FAILED. */
void peer_abort_all(const char *reason);
/* For /metrics: flights now waiting for another instance; flights ended
 * with another instance's answer (its published file, or its "not found");
 * fetches taken over from a holder that died or showed no progress. */
unsigned peer_waiting(void);
uint64_t peer_served(void);
uint64_t peer_takeovers(void);

#endif
