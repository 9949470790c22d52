/*
 * fetchq: which waiting fetch starts next.  A transfer holds a socket and
 * a temp file until it ends, and a stalled upstream can hold one for
 * minutes; so no one source of stalls may take every transfer there is.
 *
 *   - At most `total` transfers run at once (-maxFetches: sockets and temp
 *     files are what is scarce).
 *   - One group (a module path, or a checksum database) runs at most
 *     `per_group` of them: a module whose files all hang upstream leaves
 *     the rest for every other module.
 *   - One upstream (a -proxy entry, or the checksum databases) runs at
 *     most `per_upstream`: another upstream always has room.
 *   - Among the entries that may start, the group with the fewest running
 *     goes first, then the oldest entry; an entry in retry backoff waits
 *     for its time.
 *   - Low-priority entries (warming, see warm.h; is_low() says which, at
 *     each pop, so an entry a client now waits for counts as a client's)
 *     start only when no other entry may, only while `low_reserve`
 *     transfers would stay free for clients, and at most `low_running` at
 *     once.  A client's entry never waits behind a low one: its group share
 *     counts only the clients' entries running (a low entry's counts all).
 *
 * Contract: pure bookkeeping, no I/O and no locking: one thread (the
 * fetcher) owns a queue.  Entries are embedded in the caller's structs
 * and stay the caller's; fetchq_pop() counts an entry as running until
 * fetchq_done() is called with it, with the group and upstream it had
 * when popped.
 */
#ifndef GOPROXYD_FETCHQ_H
#define GOPROXYD_FETCHQ_H

#include <stdbool.h>
#include <stdint.h>

struct fetchq_entry {
	struct fetchq_entry *next;   /* waiting list, oldest first */
	uint64_t group;              /* e.g. text_hash_str(module path) */
	unsigned upstream;           /* 0 .. n_upstreams-1 */
	int64_t not_before;          /* monotonic ms: not started before */
	bool ran_low;                /* set by fetchq_pop(): counted as low priority */
};

struct fetchq_limits {
	unsigned total, per_group, per_upstream;
	unsigned low_running, low_reserve;   /* low-priority entries: see above */
};

struct fetchq_group;   /* running count of one group */

struct fetchq {
	struct fetchq_limits lim;
	struct fetchq_entry *head, **tail;
	unsigned waiting, running, running_low;
	bool (*is_low)(const struct fetchq_entry *e);   /* NULL: none is */
	unsigned n_upstreams;
	unsigned *upstream_running;    /* per upstream; out-of-range ones count as the last */
	struct fetchq_group *groups;   /* open addressing, n_slots (a power of 2) */
	unsigned n_slots;
};

/* The limits -maxFetches max_fetches implies: per group a quarter of it,
 * per upstream three quarters (each at least 1); low-priority entries at
 * most half of it, and a quarter (at least 1 of 2 or more) kept free. */
struct fetchq_limits fetchq_limits_for(unsigned max_fetches);

int fetchq_init(struct fetchq *q, const struct fetchq_limits *lim, unsigned n_upstreams);
void fetchq_free(struct fetchq *q);
/* Which entries are low priority (asked at every pop; NULL: none). */
void fetchq_set_low(struct fetchq *q, bool (*is_low)(const struct fetchq_entry *e));

/* Adds e at the end of the waiting list. */
void fetchq_push(struct fetchq *q, struct fetchq_entry *e);
/* Takes the next entry that may start now and counts it running.  NULL if
 * none may: then *next_due is the earliest not_before of the entries still
 * in backoff (when a retry becomes due), or -1 if there are none. */
struct fetchq_entry *fetchq_pop(struct fetchq *q, int64_t now, int64_t *next_due);
/* A running entry ended (it may be pushed again afterwards). */
void fetchq_done(struct fetchq *q, const struct fetchq_entry *e);
/* Empties the waiting list and returns it, oldest first. */
struct fetchq_entry *fetchq_take_all(struct fetchq *q);

#endif
