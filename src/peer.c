/* peer: see include/peer.h.  The fetcher thread only; the lock is let go
 * by flight_finish(), wherever the flight ends. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "peer.h"

#define FIRST_DELAY_MS 20
#define MAX_DELAY_MS 500
#define NOTE_NOTFOUND FLIGHT_NOTE_NOTFOUND

static int64_t expire_ms, neg_ms, stall_ms;
static struct peer *waiting;      /* fetcher thread only */
static atomic_uint n_waiting;
static atomic_ullong n_served, n_takeovers;

void peer_init(int64_t expire, int64_t neg_cache, int64_t stall)
{
	expire_ms = expire;
	neg_ms = neg_cache;
	stall_ms = stall;
}

void peer_prepare(struct peer *p, struct flight *f, void (*resume)(struct peer *, bool))
{
	memset(p, 0, sizeof *p);
	p->pr_flight = f;
	p->pr_resume = resume;
}

/* Ends the flight with the cached file if another instance published it:
 * any immutable file, a mutable one only while fresh. */
static bool served(struct peer *p)
{
	struct flight *f = p->pr_flight;
	struct cache_entry e;
	struct fetch_result res = { .status = FETCH_OK };

	if (cache_open(f->key, &e) < 0)
		return false;
	if (!f->req.immutable && cache_age_ms(&e) >= expire_ms) {
		close(e.ce_fd);
		return false;
	}
	res.res_fd = e.ce_fd;
	res.size = e.size;
	res.mtime = e.mtime;
	flight_finish(f, &res);
	atomic_fetch_add(&n_served, 1);
	return true;
}

/* Ends the flight with the holder's "not found", if it left one. */
static bool notfound(struct peer *p)
{
	char note[400];
	struct fetch_result res = { .status = FETCH_NOTFOUND, .res_fd = -1 };
	struct flight *f = p->pr_flight;

	if (cache_lock_note(&p->pr_flight->fl_lock, note, sizeof note) <= 0 ||
	    strncmp(note, NOTE_NOTFOUND, strlen(NOTE_NOTFOUND)) != 0)
		return false;
	snprintf(res.reason, sizeof res.reason, "%.300s", note + strlen(NOTE_NOTFOUND));
	if (f->req.immutable)
		negcache_add(f->key, res.reason, neg_ms);
	flight_finish(f, &res);
	atomic_fetch_add(&n_served, 1);
	return true;
}

static void wait_on(struct peer *p)
{
	int64_t now = monotonic_ms();

	p->pr_flight->fl_lock_held = false;
	p->pr_stamp = cache_lock_stamp(&p->pr_flight->fl_lock);
	p->pr_moved_ms = now;
	p->pr_delay_ms = FIRST_DELAY_MS;
	p->pr_due_ms = now + FIRST_DELAY_MS;
	p->pr_next = waiting;
	waiting = p;
	atomic_fetch_add(&n_waiting, 1);
}

/* The lock was got (r == 1) or could not be had (r < 0): serve what is
 * there, or fetch. */
static enum peer_claim settle(struct peer *p, int r)
{
	if (r < 0) {
		log_warn("no fetch lock for %s (%s): fetching without one", p->pr_flight->key,
		         strerror(-r));
		return PEER_FETCH;
	}
	p->pr_flight->fl_lock_held = true;
	/* served() ends the flight, which lets go of the lock */
	return served(p) ? PEER_DONE : PEER_FETCH;
}

enum peer_claim peer_claim(struct peer *p)
{
	int r = cache_lock_try(p->pr_flight->key, &p->pr_flight->fl_lock);

	if (r != 0)
		return settle(p, r);
	wait_on(p);
	return PEER_WAIT;
}

/* A waiting peer's next step: PEER_WAIT to go on waiting. */
static enum peer_claim look(struct peer *p, int64_t now)
{
	int64_t stamp;
	int r = cache_lock_retry(&p->pr_flight->fl_lock);
	bool dead = r == 1;   /* released without unlinking: its holder died */

	if (r == 2) {   /* the holder is done */
		if (served(p) || notfound(p))
			return PEER_DONE;   /* the flight, and its lock, are gone */
		if ((r = cache_lock_try(p->pr_flight->key, &p->pr_flight->fl_lock)) == 0) {
			p->pr_stamp = cache_lock_stamp(&p->pr_flight->fl_lock);
			p->pr_moved_ms = now;
			return PEER_WAIT;
		}
	}
	if (r != 0) {
		if (dead) {
			log_info("fetching %s: the instance that held its fetch is gone",
			         p->pr_flight->key);
			atomic_fetch_add(&n_takeovers, 1);
		}
		return settle(p, r);
	}
	if ((stamp = cache_lock_stamp(&p->pr_flight->fl_lock)) != p->pr_stamp) {
		p->pr_stamp = stamp;
		p->pr_moved_ms = now;
	} else if (now - p->pr_moved_ms > 2 * stall_ms) {
		log_warn("fetching %s: the instance that holds its fetch shows no progress for %lld ms",
		         p->pr_flight->key, (long long)(now - p->pr_moved_ms));
		cache_lock_release(&p->pr_flight->fl_lock, false, NULL);
		atomic_fetch_add(&n_takeovers, 1);
		return PEER_FETCH;
	}
	return PEER_WAIT;
}

int64_t peer_poll(void)
{
	int64_t now = monotonic_ms(), next = -1;
	struct peer **pp = &waiting, *p;

	while ((p = *pp) != NULL) {
		enum peer_claim c = p->pr_due_ms <= now ? look(p, now) : PEER_WAIT;

		if (c == PEER_WAIT) {
			if (p->pr_due_ms <= now) {
				p->pr_delay_ms = p->pr_delay_ms * 2 > MAX_DELAY_MS ? MAX_DELAY_MS
				                                                   : p->pr_delay_ms * 2;
				p->pr_due_ms = now + p->pr_delay_ms;
			}
			if (next < 0 || p->pr_due_ms - now < next)
				next = p->pr_due_ms - now;
			pp = &p->pr_next;
			continue;
		}
		*pp = p->pr_next;
		atomic_fetch_sub(&n_waiting, 1);
		p->pr_resume(p, c == PEER_DONE);
	}
	return next;
}

void peer_touch(struct peer *p)
{
	int64_t now;

	if (!p->pr_flight->fl_lock_held || (now = monotonic_ms()) - p->pr_touched_ms < 1000)
		return;
	p->pr_touched_ms = now;
	cache_lock_touch(&p->pr_flight->fl_lock);
}

void peer_abort_all(const char *reason)
{
	struct fetch_result res = { .status = FETCH_FAILED, .res_fd = -1 };
	struct peer *p;

	snprintf(res.reason, sizeof res.reason, "%.300s", reason);
	while ((p = waiting) != NULL) {
		waiting = p->pr_next;
		atomic_fetch_sub(&n_waiting, 1);
		flight_finish(p->pr_flight, &res);
		p->pr_resume(p, true);
	}
}

unsigned peer_waiting(void)
{
	return atomic_load(&n_waiting);
}

uint64_t peer_served(void)
{
	return atomic_load(&n_served);
}

uint64_t peer_takeovers(void)
{
	return atomic_load(&n_takeovers);
}
