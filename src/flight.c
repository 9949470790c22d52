/* flight: see include/flight.h.  Any thread: serving threads join, the
 * store and fetcher threads finish. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flight.h"
#include "text.h"

#define FLIGHT_BUCKETS 1024
#define NEG_SLOTS 4096

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct flight *table[FLIGHT_BUCKETS];
static unsigned n_flights, n_waiters, n_warm;
static void (*on_promoted)(void);
static void (*on_finished)(const struct flight *f, const struct fetch_result *res, bool warm);

struct neg_slot {
	char *key;
	char *reason;
	struct timespec expires;   /* CLOCK_MONOTONIC */
};
static struct neg_slot neg[NEG_SLOTS];

static struct flight **find_slot(const char *key)
{
	struct flight **fp = &table[text_hash_str(key) % FLIGHT_BUCKETS];

	while (*fp && strcmp((*fp)->key, key) != 0)
		fp = &(*fp)->next;
	return fp;
}

void flight_set_hooks(void (*promoted)(void),
                      void (*finished)(const struct flight *f, const struct fetch_result *res,
                                       bool warm))
{
	on_promoted = promoted;
	on_finished = finished;
}

/* A new flight for key in slot *fp; the table is locked. */
static struct flight *create(struct flight **fp, const struct request *r, const char *key)
{
	struct flight *f = calloc(1, sizeof *f);

	if (f == NULL)
		abort();   /* a few hundred bytes: nothing sensible to do */
	f->req = *r;
	f->fl_lock.cl_fd = f->fl_lock.cl_dirfd = -1;
	strcpy(f->key, key);
	*fp = f;
	n_flights++;
	return f;
}

struct flight *flight_join(const struct request *r, const char *key, struct waiter *w,
                           void (*hold)(void *), void *arg)
{
	struct flight **fp, *f, *started = NULL;
	bool promoted = false;

	pthread_mutex_lock(&lock);
	fp = find_slot(key);
	if ((f = *fp) == NULL)
		f = started = create(fp, r, key);
	else if (atomic_exchange(&f->fl_warm, false)) {
		n_warm--;
		promoted = true;
	}
	w->next = f->waiters;
	f->waiters = w;
	n_waiters++;
	hold(arg);
	pthread_mutex_unlock(&lock);
	if (promoted && on_promoted)
		on_promoted();
	return started;
}

struct flight *flight_start_warm(const struct request *r, const char *key)
{
	struct flight **fp, *f = NULL;

	pthread_mutex_lock(&lock);
	fp = find_slot(key);
	if (*fp == NULL) {
		f = create(fp, r, key);
		atomic_store(&f->fl_warm, true);
		f->fl_started_warm = true;
		n_warm++;
	}
	pthread_mutex_unlock(&lock);
	return f;
}

bool flight_is_warm(const struct flight *f)
{
	return atomic_load(&f->fl_warm);
}

/* Lets go of the fetch lock: the other instances waiting for this file
 * may go on once the answer is in place (or noted in the lock). */
static void release_lock(struct flight *f, const struct fetch_result *res)
{
	char note[400];

	if (f->fl_lock.cl_fd < 0 && f->fl_lock.cl_dirfd < 0)
		return;
	if (res->status == FETCH_NOTFOUND)
		snprintf(note, sizeof note, FLIGHT_NOTE_NOTFOUND "%.320s", res->reason);
	cache_lock_release(&f->fl_lock, f->fl_lock_held,
	                   res->status == FETCH_NOTFOUND ? note : NULL);
	f->fl_lock_held = false;
}

void flight_finish(struct flight *f, const struct fetch_result *res)
{
	struct waiter *w, *next;
	struct flight **fp;
	bool warm;

	release_lock(f, res);
	pthread_mutex_lock(&lock);
	fp = find_slot(f->key);
	if (*fp == f)
		*fp = f->next;
	if ((warm = atomic_exchange(&f->fl_warm, false)))
		n_warm--;
	for (w = f->waiters; w; w = next) {
		next = w->next;   /* wake() may free w once resumed */
		n_waiters--;
		w->result = *res;
		if (res->status == FETCH_OK)
			w->result.res_fd = dup(res->res_fd);
		if (res->status == FETCH_OK && w->result.res_fd < 0) {
			w->result.status = FETCH_FAILED;
			strcpy(w->result.reason, "out of file descriptors");
		}
		w->wake(w);
	}
	pthread_mutex_unlock(&lock);
	if (on_finished)
		on_finished(f, res, warm);
	/* Counted until the hook has started what it starts: a fetch count of
	 * 0 means nothing more is coming. */
	pthread_mutex_lock(&lock);
	n_flights--;
	pthread_mutex_unlock(&lock);
	if (res->status == FETCH_OK)
		close(res->res_fd);
	free(f);
}

unsigned flight_count(void)
{
	unsigned n;

	pthread_mutex_lock(&lock);
	n = n_flights;
	pthread_mutex_unlock(&lock);
	return n;
}

unsigned flight_count_warm(void)
{
	unsigned n;

	pthread_mutex_lock(&lock);
	n = n_warm;
	pthread_mutex_unlock(&lock);
	return n;
}

unsigned flight_waiters(void)
{
	unsigned n;

	pthread_mutex_lock(&lock);
	n = n_waiters;
	pthread_mutex_unlock(&lock);
	return n;
}

static bool expired(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

void negcache_add(const char *key, const char *reason, int64_t ttl_ms)
{
	struct neg_slot *s = &neg[text_hash_str(key) % NEG_SLOTS];
	char *k, *rs;

	if (ttl_ms <= 0)
		return;
	k = strdup(key);
	rs = strdup(reason);
	if (k == NULL || rs == NULL) {
		free(k);
		free(rs);
		return;
	}
	pthread_mutex_lock(&lock);
	/* Direct-mapped: a collision evicts the older entry, which only costs
	 * one more upstream request. */
	free(s->key);
	free(s->reason);
	s->key = k;
	s->reason = rs;
	clock_gettime(CLOCK_MONOTONIC, &s->expires);
	s->expires.tv_sec += ttl_ms / 1000;
	s->expires.tv_nsec += (ttl_ms % 1000) * 1000000;
	if (s->expires.tv_nsec >= 1000000000) {
		s->expires.tv_sec++;
		s->expires.tv_nsec -= 1000000000;
	}
	pthread_mutex_unlock(&lock);
}

bool negcache_get(const char *key, char *reason, size_t n)
{
	struct neg_slot *s = &neg[text_hash_str(key) % NEG_SLOTS];
	bool hit = false;

	pthread_mutex_lock(&lock);
	if (s->key && strcmp(s->key, key) == 0 && !expired(&s->expires)) {
		snprintf(reason, n, "%s", s->reason);
		hit = true;
	}
	pthread_mutex_unlock(&lock);
	return hit;
}
