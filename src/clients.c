/*
 * clients: see include/clients.h.  clients_start/stop run on the main
 * thread, sweep() and clients_sweep() on the sweeper thread it starts,
 * everything else on the serving threads (libmicrohttpd's callbacks in
 * server.c).
 *
 * State is split into stripes by a hash of the client address, each with
 * its own lock: a stripe holds the per-address counts of its addresses
 * and the list of their open connections, which the sweeper walks one
 * stripe at a time.  A connection's deadline is an atomic, so the hit path
 * sets it without a lock.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "clients.h"
#include "clock.h"
#include "log.h"
#include "text.h"

#define STRIPES 64
#define BUCKETS 64   /* per stripe */

struct host {
	struct host *next;
	unsigned char addr[16];
	unsigned char len;
	unsigned conns;
};

struct client_conn {
	struct client_conn *prev, *next;
	struct host *host;
	unsigned stripe;
	int fd;
	atomic_llong deadline_ms;   /* 0: not waiting for headers */
};

struct stripe {
	pthread_mutex_t mu;
	struct host *buckets[BUCKETS];
	struct client_conn *conns;
};

static struct stripe stripes[STRIPES];
static int64_t timeout_ms;
static unsigned limit;
static atomic_ullong refused, timed_out;
static pthread_t sweeper;
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cv = PTHREAD_COND_INITIALIZER;
static bool stopping, started;

/* The address bytes of sa (an IPv4-mapped IPv6 address counts as IPv4). */
static size_t addr_key(const struct sockaddr *sa, const unsigned char **key)
{
	if (sa->sa_family == AF_INET) {
		*key = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
		return 4;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		*key = a->s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			*key += 12;
			return 4;
		}
		return 16;
	}
	*key = NULL;
	return 0;
}

static struct host **find(struct stripe *s, uint32_t h, const unsigned char *k, size_t n)
{
	struct host **pp = &s->buckets[(h / STRIPES) % BUCKETS];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->len == n && memcmp((*pp)->addr, k, n) == 0)
			break;
	return pp;
}

static uint32_t hash_key(const unsigned char *k, size_t n)
{
	return text_hash((const char *)k, n);
}

bool clients_admit(const struct sockaddr *sa)
{
	const unsigned char *k;
	size_t n;
	uint32_t h;
	struct stripe *s;
	struct host *hp;
	bool ok;

	if (limit == 0 || (n = addr_key(sa, &k)) == 0)
		return true;
	h = hash_key(k, n);
	s = &stripes[h % STRIPES];
	pthread_mutex_lock(&s->mu);
	hp = *find(s, h, k, n);
	ok = hp == NULL || hp->conns < limit;
	pthread_mutex_unlock(&s->mu);
	if (!ok)
		atomic_fetch_add(&refused, 1);
	return ok;
}

struct client_conn *clients_open(int fd, const struct sockaddr *sa)
{
	struct client_conn *c = malloc(sizeof *c);
	const unsigned char *k = NULL;
	size_t n = sa ? addr_key(sa, &k) : 0;
	uint32_t h = hash_key(k ? k : (const unsigned char *)"", n);
	struct stripe *s = &stripes[h % STRIPES];
	struct host **pp = NULL;

	if (c == NULL)
		return NULL;
	c->fd = fd;
	c->host = NULL;
	c->stripe = h % STRIPES;
	atomic_init(&c->deadline_ms, monotonic_ms() + timeout_ms);
	pthread_mutex_lock(&s->mu);
	if (n > 0 && *(pp = find(s, h, k, n)) == NULL && (*pp = calloc(1, sizeof **pp)) != NULL) {
		memcpy((*pp)->addr, k, n);
		(*pp)->len = (unsigned char)n;
	}
	if (n > 0 && (c->host = *pp) != NULL)
		c->host->conns++;
	c->prev = NULL;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	pthread_mutex_unlock(&s->mu);
	return c;
}

void clients_close(struct client_conn *c)
{
	struct stripe *s;
	struct host **pp;

	if (c == NULL)
		return;
	s = &stripes[c->stripe];
	pthread_mutex_lock(&s->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->host && --c->host->conns == 0) {
		pp = find(s, hash_key(c->host->addr, c->host->len), c->host->addr, c->host->len);
		*pp = c->host->next;
		free(c->host);
	}
	pthread_mutex_unlock(&s->mu);
	free(c);
}

void clients_headers_done(struct client_conn *c)
{
	if (c)
		atomic_store_explicit(&c->deadline_ms, 0, memory_order_relaxed);
}

void clients_answered(struct client_conn *c)
{
	if (c)
		atomic_store_explicit(&c->deadline_ms, monotonic_ms() + timeout_ms,
		                      memory_order_relaxed);
}

/* Shuts down every connection of s past its header deadline.  Under the
 * stripe lock, so no fd here has been closed (and perhaps reused) yet. */
static void sweep_stripe(struct stripe *s, int64_t now)
{
	pthread_mutex_lock(&s->mu);
	for (struct client_conn *c = s->conns; c; c = c->next) {
		long long d = atomic_load_explicit(&c->deadline_ms, memory_order_relaxed);

		if (d != 0 && now >= d) {
			atomic_store_explicit(&c->deadline_ms, 0, memory_order_relaxed);
			shutdown(c->fd, SHUT_RDWR);
			atomic_fetch_add(&timed_out, 1);
		}
	}
	pthread_mutex_unlock(&s->mu);
}

void clients_sweep(int64_t now_ms)
{
	for (int i = 0; i < STRIPES; i++)
		sweep_stripe(&stripes[i], now_ms);
}

static void *sweep(void *arg)
{
	int64_t period = timeout_ms / 4 > 250 ? 250 : timeout_ms / 4 < 10 ? 10 : timeout_ms / 4;
	struct timespec ts;

	(void)arg;
	pthread_mutex_lock(&stop_mu);
	while (!stopping) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)(period % 1000) * 1000000L;
		ts.tv_sec += period / 1000 + ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		if (pthread_cond_timedwait(&stop_cv, &stop_mu, &ts) != ETIMEDOUT)
			continue;
		pthread_mutex_unlock(&stop_mu);
		clients_sweep(monotonic_ms());
		pthread_mutex_lock(&stop_mu);
	}
	pthread_mutex_unlock(&stop_mu);
	return NULL;
}

int clients_start(int64_t header_timeout_ms, unsigned max_per_addr)
{
	pthread_condattr_t ca;
	int err;

	timeout_ms = header_timeout_ms;
	limit = max_per_addr;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&stripes[i].mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&stop_cv, &ca);
	pthread_condattr_destroy(&ca);
	stopping = false;
	if ((err = pthread_create(&sweeper, NULL, sweep, NULL)) != 0) {
		log_error("cannot start the header-deadline thread: %s", strerror(err));
		return -1;
	}
	started = true;
	return 0;
}

void clients_stop(void)
{
	if (!started)
		return;
	pthread_mutex_lock(&stop_mu);
	stopping = true;
	pthread_cond_signal(&stop_cv);
	pthread_mutex_unlock(&stop_mu);
	pthread_join(sweeper, NULL);
	started = false;
}

void clients_counts(uint64_t *refused_per_addr, uint64_t *header_timeouts)
{
	*refused_per_addr = atomic_load(&refused);
	*header_timeouts = atomic_load(&timed_out);
}
